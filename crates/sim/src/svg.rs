//! A plot of a run as SVG: reservoir (the pump's estimate against the truth), delivery rate, and
//! alarms, on one time axis. Written by hand: a few lines of SVG do not need a plotting crate.

use std::fmt::Write;

use crate::run::RunReport;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const PANEL: f64 = 150.0;
const GAP: f64 = 40.0;
const TOP: f64 = 64.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Draws the run. `capacity_ml` scales the reservoir panel; `zone` labels the dates.
pub fn plot(report: &RunReport, capacity: itb_dose::Volume, zone: &jiff::tz::TimeZone) -> String {
    let capacity_ml = capacity.as_nl() as f64 / 1_000_000.0;
    let samples = &report.samples;
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return String::from("<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    };
    let t0 = first.at_ms as f64;
    let span = ((last.at_ms - first.at_ms) as f64).max(1.0);
    let plot_width = WIDTH - LEFT - RIGHT;
    let x = |ms: i64| LEFT + (ms as f64 - t0) / span * plot_width;
    let height = TOP + 3.0 * PANEL + 2.0 * GAP + 50.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        escape(&report.summary.scenario)
    );

    let panel_top = |index: f64| TOP + index * (PANEL + GAP);
    let frame = |svg: &mut String, index: f64, title: &str| {
        let top = panel_top(index);
        let _ = writeln!(
            svg,
            "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{plot_width}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#999\"/>"
        );
        let _ = writeln!(svg, "<text x=\"{LEFT}\" y=\"{}\" fill=\"#333\">{}</text>", top - 6.0, escape(title));
    };

    // Reservoir.
    frame(&mut svg, 0.0, "Reservoir (mL): the pump's estimate (blue) and the truth (orange)");
    let top = panel_top(0.0);
    let y_res = |nl: u64| top + PANEL - (nl as f64 / 1_000_000.0 / capacity_ml).min(1.0) * PANEL;
    for (values, colour, dash) in [
        (samples.iter().map(|s| (s.at_ms, s.reservoir_estimate_nl)).collect::<Vec<_>>(), "#1f77b4", ""),
        (
            samples.iter().map(|s| (s.at_ms, s.reservoir_true_nl)).collect::<Vec<_>>(),
            "#ff7f0e",
            " stroke-dasharray=\"5,3\"",
        ),
    ] {
        let points: Vec<String> = values.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y_res(*v))).collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"{dash} points=\"{}\"/>",
            points.join(" ")
        );
    }
    for fraction in [0.0, 0.5, 1.0] {
        let y = top + PANEL - fraction * PANEL;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            capacity_ml * fraction
        );
    }

    // Rates as steps.
    frame(&mut svg, 1.0, "Delivery rate (mL/day): commanded (green) and real (purple)");
    let top = panel_top(1.0);
    let max_rate =
        samples.iter().map(|s| s.rate_nl_per_day.max(s.true_rate_nl_per_day)).max().unwrap_or(1).max(1) as f64;
    let y_rate = |r: u64| top + PANEL - r as f64 / max_rate * PANEL;
    for (pick, colour, dash) in [
        (&(|s: &crate::run::Sample| s.rate_nl_per_day) as &dyn Fn(&crate::run::Sample) -> u64, "#2ca02c", ""),
        (&|s: &crate::run::Sample| s.true_rate_nl_per_day, "#9467bd", " stroke-dasharray=\"4,3\""),
    ] {
        let mut points = Vec::with_capacity(samples.len() * 2);
        let mut previous: Option<u64> = None;
        for sample in samples {
            if let Some(prev) = previous {
                points.push(format!("{:.1},{:.1}", x(sample.at_ms), y_rate(prev)));
            }
            points.push(format!("{:.1},{:.1}", x(sample.at_ms), y_rate(pick(sample))));
            previous = Some(pick(sample));
        }
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.2\"{dash} points=\"{}\"/>",
            points.join(" ")
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        LEFT - 6.0,
        top + 4.0,
        max_rate / 1_000_000.0
    );
    let _ = writeln!(svg, "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">0</text>", LEFT - 6.0, top + PANEL + 4.0);

    // Alarms.
    frame(&mut svg, 2.0, "Alarms raised (red: critical, amber: non-critical)");
    let top = panel_top(2.0);
    for (index, alarm) in report.summary.alarms.iter().enumerate() {
        let ax = x(alarm.at.as_ms());
        let colour = if alarm.critical() { "#d62728" } else { "#e6a700" };
        let label_y = top + 16.0 + (index % 8) as f64 * 16.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{ax:.1}\" y1=\"{top}\" x2=\"{ax:.1}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            top + PANEL
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{label_y:.1}\" fill=\"{colour}\">{}</text>",
            ax + 3.0,
            escape(&crate::words::alarm_name(alarm.kind))
        );
    }

    // Time axis.
    let axis_y = panel_top(2.0) + PANEL + 18.0;
    for step in 0..=6 {
        let ms = first.at_ms + ((last.at_ms - first.at_ms) as f64 * f64::from(step) / 6.0) as i64;
        let label = jiff::Timestamp::from_millisecond(ms)
            .map(|t| zone.to_datetime(t).strftime("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let anchor = match step {
            0 => "start",
            6 => "end",
            _ => "middle",
        };
        let _ = writeln!(svg, "<text x=\"{:.1}\" y=\"{axis_y:.1}\" text-anchor=\"{anchor}\">{label}</text>", x(ms));
    }
    svg.push_str("</svg>\n");
    svg
}
