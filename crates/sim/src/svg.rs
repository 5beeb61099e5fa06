//! A plot of a run as SVG, on one time axis: the reservoir (the pump's estimate against the
//! truth), the delivery rate (commanded against real), the drug reaching the CSF each day beside
//! the prescribed dose, and the alarms in words. Written by hand: a few hundred lines of SVG do
//! not need a plotting crate.
//!
//! Every label is placed to fit inside the picture: text widths are estimated from the font
//! size (generously), date ticks and alarm labels move or are left out rather than run off the
//! edge or over each other, and a note says when alarm labels were left out.

use std::fmt::Write;

use itb_dose::{Duration, Volume};
use itb_pump::Instant;

use crate::account::{DayFigures, Verdict};
use crate::run::RunReport;
use crate::words;

/// The picture's width, px.
pub const WIDTH: f64 = 960.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 24.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;
const PANEL: f64 = 140.0;
const ALARM_PANEL: f64 = 96.0;
/// Room above a panel for its title and legend.
const HEADER: f64 = 26.0;
const GAP: f64 = 18.0;
const TOP: f64 = 64.0;
const FONT: f64 = 12.0;
const SMALL: f64 = 11.0;
/// Estimated width of one character, as a share of the font size (sans-serif averages about
/// 0.5; capitals and digits are wider).
const CHAR_WIDTH: f64 = 0.62;
const ALARM_ROW: f64 = 14.0;
const HOUR_MS: i64 = 3_600_000;
/// Room above the highest value, so that a line does not run along the frame.
const HEADROOM: f64 = 1.08;

const BLUE: &str = "#1f77b4";
const ORANGE: &str = "#ff7f0e";
const GREEN: &str = "#2ca02c";
const PURPLE: &str = "#9467bd";
const TEAL: &str = "#17becf";
const RED: &str = "#d62728";
const AMBER: &str = "#e6a700";
const GREY: &str = "#999";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Estimated width of `text` at `size` px.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * CHAR_WIDTH
}

/// `text` cut with an ellipsis to fit `width` at `size`.
fn fitted(text: &str, size: f64, width: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_owned();
    }
    let keep = ((width / (size * CHAR_WIDTH)) as usize).saturating_sub(1);
    let mut cut: String = text.chars().take(keep).collect();
    cut.push('…');
    cut
}

/// A number for an axis: at most three decimals, trailing zeros trimmed.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-0" { "0".to_owned() } else { text.to_owned() }
}

/// A round top for an axis and its step: 1, 2 or 5 times a power of ten, at most 5 steps.
fn nice_axis(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return (1.0, 0.5);
    }
    let rough = max / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|s| s * 5.0 >= max).unwrap_or(10.0 * power);
    ((max / step).ceil() * step, step)
}

/// A time scale from the run's start to its end onto the plot's width.
#[derive(Clone, Copy)]
struct Scale {
    t0: i64,
    span: f64,
}

impl Scale {
    fn x(&self, ms: i64) -> f64 {
        LEFT + ((ms - self.t0) as f64 / self.span).clamp(0.0, 1.0) * PLOT
    }
}

/// Steps between date ticks, shortest first, with their label format.
enum TickStep {
    Hours(u64),
    Days(u64),
    Months(i8),
}

/// Date ticks at local midnights (or first days of months, or hours for a short run), as
/// `(instant, label)`: `25 Nov`, with the year on the first tick and where it changes.
fn date_ticks(start: Instant, end: Instant, zone: &jiff::tz::TimeZone) -> Vec<(Instant, String)> {
    let span = end.since(start);
    let steps = [
        TickStep::Hours(3),
        TickStep::Hours(6),
        TickStep::Hours(12),
        TickStep::Days(1),
        TickStep::Days(2),
        TickStep::Days(7),
        TickStep::Days(14),
        TickStep::Months(1),
        TickStep::Months(2),
        TickStep::Months(3),
        TickStep::Months(6),
        TickStep::Months(12),
        TickStep::Months(24),
    ];
    let most = 9u64;
    let step = steps
        .iter()
        .find(|step| {
            let length = match step {
                TickStep::Hours(h) => Duration::hours(*h),
                TickStep::Days(d) => Duration::days(*d),
                TickStep::Months(m) => Duration::days(30 * u64::from(m.unsigned_abs())),
            };
            span.as_ms() / length.as_ms().max(1) < most
        })
        .unwrap_or(&TickStep::Months(24));
    let local = |at: Instant| zone.to_datetime(at.to_timestamp());
    let instant = |dt: jiff::civil::DateTime| {
        zone.to_ambiguous_timestamp(dt).compatible().map(Instant::from_timestamp).unwrap_or(end)
    };
    let first = local(start);
    let mut at = match step {
        TickStep::Hours(h) => {
            let hour = (first.hour() as u64).div_ceil(*h) * h;
            let midnight = first.date().to_datetime(jiff::civil::Time::midnight());
            instant(midnight).plus(Duration::hours(hour))
        }
        TickStep::Days(_) => {
            let midnight = first.date().to_datetime(jiff::civil::Time::midnight());
            if instant(midnight) >= start {
                instant(midnight)
            } else {
                instant(midnight.date().tomorrow().map_or(midnight, |d| d.to_datetime(jiff::civil::Time::midnight())))
            }
        }
        TickStep::Months(months) => {
            let first_of_month = first.date().first_of_month();
            let mut date = first_of_month;
            if instant(date.to_datetime(jiff::civil::Time::midnight())) < start {
                date = date.checked_add(jiff::Span::new().months(1)).unwrap_or(date);
            }
            // Months that divide the year fall on the same months each year.
            let step = i64::from(*months).clamp(1, 12) as i8;
            while (date.month() - 1) % step != 0 {
                date = date.checked_add(jiff::Span::new().months(1)).unwrap_or(date);
            }
            instant(date.to_datetime(jiff::civil::Time::midnight()))
        }
    };
    let mut ticks = Vec::new();
    let mut last_year = None;
    while at <= end && ticks.len() < 32 {
        let dt = local(at);
        let mut label = match step {
            TickStep::Hours(_) => dt.strftime("%-d %b %H:%M").to_string(),
            _ => dt.strftime("%-d %b").to_string(),
        };
        if last_year != Some(dt.year()) {
            label.push_str(&format!(" {}", dt.year()));
            last_year = Some(dt.year());
        }
        ticks.push((at, label));
        let next = match step {
            TickStep::Hours(h) => at.plus(Duration::hours(*h)),
            TickStep::Days(d) => {
                let date = dt.date().checked_add(jiff::Span::new().days(*d as i64)).unwrap_or(dt.date());
                instant(date.to_datetime(jiff::civil::Time::midnight()))
            }
            TickStep::Months(m) => {
                let date = dt.date().checked_add(jiff::Span::new().months(*m)).unwrap_or(dt.date());
                instant(date.to_datetime(jiff::civil::Time::midnight()))
            }
        };
        if next <= at {
            break;
        }
        at = next;
    }
    ticks
}

struct Drawing {
    svg: String,
}

impl Drawing {
    fn text(&mut self, x: f64, y: f64, anchor: &str, size: f64, fill: &str, text: &str) {
        let _ = writeln!(
            self.svg,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" font-size=\"{size}\" fill=\"{fill}\">{}</text>",
            escape(text)
        );
    }
    /// Text with a white halo, readable over lines.
    fn halo_text(&mut self, x: f64, y: f64, anchor: &str, size: f64, fill: &str, text: &str) {
        let _ = writeln!(
            self.svg,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" font-size=\"{size}\" fill=\"{fill}\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
            escape(text)
        );
    }
    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str, width: f64, dash: &str) {
        let dash = if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
        let _ = writeln!(
            self.svg,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/>"
        );
    }
    fn polyline(&mut self, points: &[(f64, f64)], stroke: &str, width: f64, dash: &str) {
        if points.is_empty() {
            return;
        }
        let dash = if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
        let mut text = String::with_capacity(points.len() * 12);
        for (x, y) in points {
            let _ = write!(text, "{x:.1},{y:.1} ");
        }
        let _ = writeln!(
            self.svg,
            "<polyline fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash} points=\"{}\"/>",
            text.trim_end()
        );
    }
    /// A panel's frame, title, legend, y axis (ticks, gridlines and a rotated title with units).
    fn panel(
        &mut self,
        top: f64,
        height: f64,
        title: &str,
        legend: &[(&str, &str, Swatch)],
        axis: Option<(&str, f64, f64)>,
    ) {
        let _ = writeln!(
            self.svg,
            "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{PLOT}\" height=\"{height}\" fill=\"none\" stroke=\"{GREY}\"/>"
        );
        let title_y = top - 9.0;
        // The legend, right-aligned on the title's line; the title gives way if both do not fit.
        let widths: Vec<f64> = legend.iter().map(|(label, _, _)| 22.0 + text_width(label, SMALL) + 12.0).collect();
        let legend_width: f64 = widths.iter().sum();
        let title = fitted(title, FONT, PLOT - legend_width - 16.0);
        let _ = writeln!(
            self.svg,
            "<text x=\"{LEFT}\" y=\"{title_y:.1}\" font-size=\"{FONT}\" font-weight=\"bold\" fill=\"#333\">{}</text>",
            escape(&title)
        );
        let mut x = (WIDTH - RIGHT - legend_width).max(LEFT + text_width(&title, FONT) + 16.0);
        for ((label, colour, swatch), width) in legend.iter().zip(&widths) {
            let y = title_y - 4.0;
            match swatch {
                Swatch::Line(dash) => self.line((x, y), (x + 18.0, y), colour, 2.0, dash),
                Swatch::Box => {
                    let _ = writeln!(
                        self.svg,
                        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"18\" height=\"9\" fill=\"{colour}\" fill-opacity=\"0.7\"/>",
                        y - 4.5
                    );
                }
                Swatch::Band => {
                    let _ = writeln!(
                        self.svg,
                        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"18\" height=\"5\" fill=\"{colour}\"/>",
                        y - 2.5
                    );
                }
            }
            self.text(x + 22.0, title_y, "start", SMALL, "#333", label);
            x += width;
        }
        if let Some((unit, max, step)) = axis {
            let mut value = 0.0;
            while value <= max + step / 2.0 {
                let y = top + height - value / max * height;
                if value > 0.0 && value < max + step / 2.0 {
                    self.line((LEFT, y), (LEFT + PLOT, y), "#e5e5e5", 1.0, "");
                }
                self.line((LEFT - 4.0, y), (LEFT, y), GREY, 1.0, "");
                self.text(LEFT - 7.0, y + 4.0, "end", SMALL, "#333", &number(value));
                value += step;
            }
            let cy = top + height / 2.0;
            let _ = writeln!(
                self.svg,
                "<text x=\"16\" y=\"{cy:.1}\" text-anchor=\"middle\" font-size=\"{SMALL}\" fill=\"#333\" transform=\"rotate(-90 16 {cy:.1})\">{}</text>",
                escape(unit)
            );
        }
    }
}

/// How a legend entry is drawn.
enum Swatch {
    /// A line, solid or dashed (`"5,3"`).
    Line(&'static str),
    /// A filled box.
    Box,
    /// A thin filled band, as drawn along the bottom of a panel.
    Band,
}

/// The start of a day of the run: the run's start for the first, else the local midnight.
fn day_start(day: &DayFigures, first: bool, start: Instant, zone: &jiff::tz::TimeZone) -> Instant {
    if first {
        return start;
    }
    zone.to_ambiguous_timestamp(day.date.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .map(Instant::from_timestamp)
        .unwrap_or(start)
}

/// A day's drug as a rate per 24 hours, micrograms/day (part days scaled to a whole day).
fn per_day(mass_ng: u64, covered: Duration) -> f64 {
    if covered.is_zero() {
        return 0.0;
    }
    mass_ng as f64 / 1_000.0 * 86_400_000.0 / covered.as_ms() as f64
}

/// Draws the run. `capacity` scales the reservoir panel; `zone` labels the dates.
pub fn plot(report: &RunReport, capacity: Volume, zone: &jiff::tz::TimeZone) -> String {
    let summary = &report.summary;
    let scale = Scale { t0: summary.start.as_ms(), span: (summary.end.as_ms() - summary.start.as_ms()).max(1) as f64 };
    let panel_top = |index: usize| TOP + HEADER + index as f64 * (PANEL + HEADER + GAP);
    let alarm_top = panel_top(3);
    let axis_y = alarm_top + ALARM_PANEL + 18.0;
    let height = axis_y + 34.0;
    let mut d = Drawing { svg: String::new() };
    let _ = writeln!(
        d.svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"{FONT}\">"
    );
    let _ = writeln!(d.svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        d.svg,
        "<text x=\"{LEFT}\" y=\"26\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        escape(&fitted(&summary.scenario, 16.0, WIDTH - LEFT - RIGHT))
    );
    let when = |at: Instant| itb_dose::text::date_time(at.to_timestamp(), zone);
    let zone_name = zone.iana_name().unwrap_or("UTC");
    let subtitle = format!("{} to {} ({zone_name})", when(summary.start), when(summary.end));
    d.text(LEFT, 46.0, "start", FONT, "#555", &fitted(&subtitle, FONT, PLOT));

    // Date gridlines behind every panel.
    let ticks = date_ticks(summary.start, summary.end, zone);
    for (at, _) in &ticks {
        let x = scale.x(at.as_ms());
        for index in 0..3 {
            d.line((x, panel_top(index)), (x, panel_top(index) + PANEL), "#eee", 1.0, "");
        }
        d.line((x, alarm_top), (x, alarm_top + ALARM_PANEL), "#eee", 1.0, "");
    }

    // 1. Reservoir.
    let samples = &report.samples;
    let capacity_ml = (capacity.as_nl() as f64 / 1_000_000.0).max(0.001);
    let (reservoir_max, reservoir_step) = nice_axis(capacity_ml);
    let top = panel_top(0);
    d.panel(
        top,
        PANEL,
        "Reservoir",
        &[("pump's estimate", BLUE, Swatch::Line("")), ("truth", ORANGE, Swatch::Line("5,3"))],
        Some(("mL", reservoir_max, reservoir_step)),
    );
    let y_res = |nl: u64| top + PANEL - (nl as f64 / 1_000_000.0 / reservoir_max).min(1.0) * PANEL;
    let estimate: Vec<(f64, f64)> =
        samples.iter().map(|s| (scale.x(s.at_ms), y_res(s.reservoir_estimate_nl))).collect();
    let truth: Vec<(f64, f64)> = samples.iter().map(|s| (scale.x(s.at_ms), y_res(s.reservoir_true_nl))).collect();
    d.polyline(&estimate, BLUE, 1.5, "");
    d.polyline(&truth, ORANGE, 1.5, "5,3");

    // 2. Delivery rate, as steps over each sample's span.
    let top = panel_top(1);
    // The axis fits the rates held for an hour or more: a priming or PTM bolus at 50 times the
    // therapy's rate would flatten the rest. Shorter, faster steps run off the top, and say so.
    let rate = |s: &crate::run::Sample| s.rate_nl_per_day.max(s.true_rate_nl_per_day);
    let held = samples.iter().filter(|s| s.at_ms - s.from_ms >= HOUR_MS).map(rate).max();
    let fastest = samples.iter().map(rate).max().unwrap_or(0);
    let axis_rate = held.unwrap_or(fastest);
    let (rate_max, rate_step) = nice_axis(axis_rate as f64 / 1_000_000.0 * HEADROOM);
    d.panel(
        top,
        PANEL,
        "Delivery rate",
        &[
            ("commanded by the pump", GREEN, Swatch::Line("")),
            ("really leaving the reservoir", PURPLE, Swatch::Line("4,3")),
        ],
        Some(("mL/day", rate_max, rate_step)),
    );
    let y_rate = |nl: u64| top + PANEL - (nl as f64 / 1_000_000.0 / rate_max).min(1.0) * PANEL;
    for (pick, colour, dash) in [
        (&(|s: &crate::run::Sample| s.rate_nl_per_day) as &dyn Fn(&crate::run::Sample) -> u64, GREEN, ""),
        (&|s: &crate::run::Sample| s.true_rate_nl_per_day, PURPLE, "4,3"),
    ] {
        let mut points = Vec::with_capacity(samples.len() * 2);
        for sample in samples.iter().filter(|s| s.at_ms > s.from_ms) {
            let y = y_rate(pick(sample));
            points.push((scale.x(sample.from_ms), y));
            points.push((scale.x(sample.at_ms), y));
        }
        d.polyline(&points, colour, 1.2, dash);
    }
    if fastest as f64 / 1_000_000.0 > rate_max {
        let note = format!(
            "shorter boluses, up to {}, run off the top",
            itb_dose::text::volume_rate(itb_dose::VolumeRate::nl_per_day(fastest))
        );
        d.halo_text(LEFT + PLOT - 6.0, top + 14.0, "end", SMALL, "#555", &note);
    }

    // 3. Drug reaching the CSF each day, beside the prescribed dose.
    let top = panel_top(2);
    let days = &report.csf_per_day;
    let spans: Vec<(f64, f64, f64, f64, Verdict)> = days
        .iter()
        .enumerate()
        .map(|(index, day)| {
            let start = day_start(day, index == 0, summary.start, zone);
            let end = start.plus(day.covered);
            (
                scale.x(start.as_ms()),
                scale.x(end.as_ms()),
                per_day(day.to_csf.as_ng(), day.covered),
                per_day(day.prescribed.as_ng(), day.covered),
                day.verdict(),
            )
        })
        .filter(|(x0, x1, ..)| x1 > x0)
        .collect();
    let highest = spans.iter().map(|(_, _, csf, prescribed, _)| csf.max(*prescribed)).fold(0.0, f64::max);
    let (csf_max, csf_step) = nice_axis(highest * HEADROOM);
    d.panel(
        top,
        PANEL,
        "Drug reaching the CSF, each day",
        &[
            ("as prescribed", TEAL, Swatch::Box),
            ("below", RED, Swatch::Box),
            ("above", AMBER, Swatch::Box),
            ("prescribed dose", "#333", Swatch::Line("5,3")),
            ("no drug at all", RED, Swatch::Band),
        ],
        Some(("micrograms/day", csf_max, csf_step)),
    );
    let y_csf = |rate: f64| top + PANEL - (rate / csf_max).clamp(0.0, 1.0) * PANEL;
    // Bars, one path per colour; neighbouring days of the same height and colour are merged.
    for (verdict, colour) in [(Verdict::AsPrescribed, TEAL), (Verdict::Below, RED), (Verdict::Above, AMBER)] {
        let mut path = String::new();
        let mut run: Option<(f64, f64, f64)> = None;
        let flush = |run: &mut Option<(f64, f64, f64)>, path: &mut String| {
            if let Some((x0, x1, y)) = run.take() {
                let _ = write!(path, "M{x0:.1},{:.1}V{y:.1}H{x1:.1}V{:.1}Z", top + PANEL, top + PANEL);
            }
        };
        for (x0, x1, csf, _, v) in &spans {
            if *v != verdict {
                flush(&mut run, &mut path);
                continue;
            }
            let y = y_csf(*csf);
            match &mut run {
                Some((_, end, height)) if (*end - x0).abs() < 0.05 && (*height - y).abs() < 0.25 => *end = *x1,
                _ => {
                    flush(&mut run, &mut path);
                    run = Some((*x0, *x1, y));
                }
            }
        }
        flush(&mut run, &mut path);
        if !path.is_empty() {
            let _ = writeln!(d.svg, "<path d=\"{path}\" fill=\"{colour}\" fill-opacity=\"0.7\"/>");
        }
    }
    let mut prescribed = Vec::with_capacity(spans.len() * 2);
    for (x0, x1, _, rate, _) in &spans {
        prescribed.push((*x0, y_csf(*rate)));
        prescribed.push((*x1, y_csf(*rate)));
    }
    d.polyline(&prescribed, "#333", 1.3, "5,3");
    for period in &summary.periods_without_drug {
        let x0 = scale.x(period.start.as_ms());
        let x1 = scale.x(period.end.as_ms()).max(x0 + 1.0);
        let _ = writeln!(
            d.svg,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"5\" fill=\"{RED}\"/>",
            top + PANEL - 5.0,
            x1 - x0
        );
    }

    // 4. Alarms, in words, placed in rows so that no label runs over another or off the edge;
    // every line is drawn first, and labels have a white halo over the lines they cross.
    let top = alarm_top;
    let rows = ((ALARM_PANEL - 4.0) / ALARM_ROW).floor().max(1.0) as usize;
    let mut row_spans: Vec<Vec<(f64, f64)>> = vec![Vec::new(); rows];
    let mut labels: Vec<(f64, f64, &str, &str, String)> = Vec::new();
    let mut left_out = 0u64;
    for alarm in &summary.alarms {
        let x = scale.x(alarm.at.as_ms());
        let colour = if alarm.critical() { RED } else { AMBER };
        let label = words::alarm_name(alarm.kind);
        let width = text_width(&label, SMALL);
        // Right of the line if it fits, else left of it.
        let (x0, anchor, tx) = if x + 4.0 + width <= WIDTH - RIGHT - 2.0 {
            (x + 4.0, "start", x + 4.0)
        } else {
            (x - 4.0 - width, "end", x - 4.0)
        };
        let span = (x0 - 3.0, x0 + width + 3.0);
        let row = if x0 < LEFT + 2.0 {
            None
        } else {
            row_spans.iter().position(|taken| taken.iter().all(|(a, b)| span.1 <= *a || span.0 >= *b))
        };
        match row {
            Some(row) => {
                row_spans[row].push(span);
                labels.push((tx, top + 13.0 + row as f64 * ALARM_ROW, anchor, colour, label));
            }
            None => left_out += 1,
        }
    }
    let not_shown = left_out + summary.alarms_omitted;
    let title = match (summary.alarms.len(), not_shown) {
        (0, _) => "Alarms: none raised".to_owned(),
        (_, 0) => "Alarms".to_owned(),
        (_, n) => format!("Alarms ({n} more not labelled: see the summary)"),
    };
    d.panel(
        top,
        ALARM_PANEL,
        &title,
        &[("critical", RED, Swatch::Line("")), ("non-critical", AMBER, Swatch::Line(""))],
        None,
    );
    for alarm in &summary.alarms {
        let x = scale.x(alarm.at.as_ms());
        let colour = if alarm.critical() { RED } else { AMBER };
        d.line((x, top), (x, top + ALARM_PANEL), colour, 1.5, "");
    }
    for (x, y, anchor, colour, label) in &labels {
        d.halo_text(*x, *y, anchor, SMALL, colour, label);
    }

    // The time axis: dates in the scenario's zone.
    let mut taken: Vec<(f64, f64)> = Vec::new();
    for (at, label) in &ticks {
        let x = scale.x(at.as_ms());
        let width = text_width(label, SMALL);
        d.line((x, alarm_top + ALARM_PANEL), (x, alarm_top + ALARM_PANEL + 4.0), GREY, 1.0, "");
        let (anchor, x0) = if x - width / 2.0 < 2.0 {
            ("start", x)
        } else if x + width / 2.0 > WIDTH - 2.0 {
            ("end", x - width)
        } else {
            ("middle", x - width / 2.0)
        };
        if taken.iter().any(|(a, b)| x0 < *b + 6.0 && x0 + width > *a - 6.0) {
            continue;
        }
        taken.push((x0, x0 + width));
        d.text(x, axis_y, anchor, SMALL, "#333", label);
    }
    d.text(LEFT + PLOT / 2.0, axis_y + 20.0, "middle", FONT, "#333", &format!("Date ({zone_name})"));
    d.svg.push_str("</svg>\n");
    d.svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Instant {
        Instant::from_timestamp(text.parse().expect("instant"))
    }

    #[test]
    fn date_ticks_read_like_dates_with_the_year_where_it_changes() {
        let london = jiff::tz::TimeZone::get("Europe/London").expect("zone");
        let ticks = date_ticks(at("2026-11-25T10:00:00Z"), at("2027-03-05T10:00:00Z"), &london);
        let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, vec!["26 Nov 2026", "10 Dec", "24 Dec", "7 Jan 2027", "21 Jan", "4 Feb", "18 Feb", "4 Mar"]);
        let year = date_ticks(at("2026-11-25T10:00:00Z"), at("2027-11-25T10:00:00Z"), &london);
        let labels: Vec<&str> = year.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, vec!["1 Jan 2027", "1 Mar", "1 May", "1 Jul", "1 Sep", "1 Nov"]);
        let short = date_ticks(at("2026-11-25T10:00:00Z"), at("2026-12-09T10:00:00Z"), &london);
        let labels: Vec<&str> = short.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, vec!["26 Nov 2026", "28 Nov", "30 Nov", "2 Dec", "4 Dec", "6 Dec", "8 Dec"]);
        let years = date_ticks(at("2026-11-25T10:00:00Z"), at("2036-11-25T10:00:00Z"), &london);
        assert!(years.len() <= 9 && years.len() >= 4, "{years:?}");
        assert!(years.iter().all(|(_, l)| l.ends_with(char::is_numeric) && l.contains(" 20")), "{years:?}");
    }

    #[test]
    fn axes_are_round() {
        assert_eq!(nice_axis(20.0), (20.0, 5.0));
        assert_eq!(nice_axis(40.0), (40.0, 10.0));
        let (top, step) = nice_axis(0.25);
        assert!((top - 0.25).abs() < 1e-9 && (step - 0.05).abs() < 1e-9, "{top} {step}");
        assert_eq!(nice_axis(0.0), (1.0, 0.5));
        assert_eq!(number(0.30000000000000004), "0.3");
        assert_eq!(number(1600.0), "1600");
    }
}
