//! Charts drawn as SVG on the server: lines over time with a dashed projection, readings as
//! dots, a threshold and today. Each chart names itself and says what it shows in words, for
//! a screen reader.

use std::fmt::Write;

/// Width and height of the drawing, in SVG units.
const W: f64 = 640.0;
const H: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A solid line.
    Line,
    /// A dashed line: a projection, not a record.
    Dashed,
    /// Dots: readings.
    Dots,
}

/// A series: `(instant in ms, value)` points.
#[derive(Debug, Clone)]
pub struct Series {
    /// How it is drawn.
    pub style: Style,
    /// Its points, in time order.
    pub points: Vec<(i64, f64)>,
}

/// A chart over time.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Its id in the page (for the title and description).
    pub id: String,
    /// Its title.
    pub title: String,
    /// What it shows, in words.
    pub description: String,
    /// The unit of the vertical axis (`mL`, `micrograms a day`).
    pub unit: &'static str,
    /// The series.
    pub series: Vec<Series>,
    /// A horizontal line: its value and label.
    pub threshold: Option<(f64, String)>,
    /// Today, in ms.
    pub today: i64,
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A round step for an axis from 0 to `max`, about 4 ticks.
fn step_for(max: f64) -> f64 {
    let raw = (max / 4.0).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw)
}

fn month_label(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| itb_dose::text::service_zone().to_datetime(t).strftime("%b %Y").to_string())
        .unwrap_or_default()
}

impl Chart {
    /// The chart as an SVG element.
    pub fn svg(&self) -> String {
        let xs = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain([self.today]);
        let (x0, x1) = xs.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
        let ys = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        let y_max = ys.chain(self.threshold.as_ref().map(|t| t.0)).fold(0.0f64, f64::max).max(1.0);
        let step = step_for(y_max * 1.1);
        let y_top = (y_max * 1.1 / step).ceil() * step;
        let span = (x1 - x0).max(86_400_000) as f64;
        let px = |x: i64| LEFT + (x - x0) as f64 / span * (W - LEFT - RIGHT);
        let py = |y: f64| H - BOTTOM - y / y_top * (H - TOP - BOTTOM);
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"#,
            id = self.id,
            title = esc(&self.title),
            desc = esc(&self.description)
        );
        // Axes and ticks.
        let mut tick = 0.0;
        while tick <= y_top + 1e-9 {
            let y = py(tick);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d8dde0" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" fill="#212b32">{}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                trim(tick)
            );
            tick += step;
        }
        let _ = write!(
            out,
            r##"<text x="12" y="{TOP}" font-size="12" fill="#212b32" transform="rotate(-90 12 {TOP})" text-anchor="end">{}</text>"##,
            esc(self.unit)
        );
        for i in 0..=3 {
            let x = x0 + (x1 - x0) * i / 3;
            let anchor = match i {
                0 => "start",
                3 => "end",
                _ => "middle",
            };
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" fill="#212b32" text-anchor="{anchor}">{}</text>"##,
                px(x),
                H - 12.0,
                month_label(x)
            );
        }
        if let Some((value, label)) = &self.threshold {
            let y = py(*value);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d5281b" stroke-width="1.5" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#d5281b" text-anchor="end">{}</text>"##,
                W - RIGHT,
                W - RIGHT,
                y - 4.0,
                esc(label)
            );
        }
        let today = px(self.today);
        let (label_x, anchor) = if today > W - RIGHT - 50.0 { (today - 3.0, "end") } else { (today + 3.0, "start") };
        let _ = write!(
            out,
            r##"<line x1="{today:.1}" y1="{TOP}" x2="{today:.1}" y2="{:.1}" stroke="#4c6272" stroke-width="1"/><text x="{label_x:.1}" y="{:.1}" font-size="12" fill="#4c6272" text-anchor="{anchor}">today</text>"##,
            H - BOTTOM,
            TOP + 10.0
        );
        for series in &self.series {
            match series.style {
                Style::Dots => {
                    for (x, y) in &series.points {
                        let _ = write!(
                            out,
                            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#ffffff" stroke="#005eb8" stroke-width="2"/>"##,
                            px(*x),
                            py(*y)
                        );
                    }
                }
                Style::Line | Style::Dashed => {
                    if series.points.len() < 2 {
                        continue;
                    }
                    let path: Vec<String> =
                        series.points.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
                    let dash = if series.style == Style::Dashed { r#" stroke-dasharray="6 4""# } else { "" };
                    let _ = write!(
                        out,
                        r##"<polyline points="{}" fill="none" stroke="#005eb8" stroke-width="2"{dash}/>"##,
                        path.join(" ")
                    );
                }
            }
        }
        out.push_str("</svg>");
        out
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_names_itself_and_draws_each_series() {
        let chart = Chart {
            id: "reservoir".to_owned(),
            title: "Reservoir <volume>".to_owned(),
            description: "Refilled to 20 mL on 26 Aug 2026".to_owned(),
            unit: "mL",
            series: vec![
                Series { style: Style::Line, points: vec![(0, 20.0), (86_400_000 * 90, 2.0)] },
                Series { style: Style::Dashed, points: vec![(0, 20.0), (86_400_000, 19.8)] },
                Series { style: Style::Dots, points: vec![(86_400_000, 19.0)] },
            ],
            threshold: Some((2.0, "alarm at 2 mL".to_owned())),
            today: 86_400_000 * 100,
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg class=\"chart\""), "{svg}");
        assert!(svg.contains("<title id=\"reservoir-title\">Reservoir &lt;volume&gt;</title>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("stroke-dasharray=\"6 4\"").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("alarm at 2 mL"));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(step_for(22.0), 10.0);
        assert_eq!(step_for(440.0), 200.0);
    }
}
