//! The plot shows what reached the patient, and every label fits inside the picture.

use itb_sim::{Scenario, run, svg};

fn drawing(path: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).expect("read");
    let scenario = Scenario::from_toml(&text).expect("valid");
    let report = run(&scenario).expect("runs");
    svg::plot(&report, scenario.profile.reservoir.capacity.value, &scenario.zone)
}

/// Every `<text>`: (x, y, anchor, font size, content).
fn texts(svg: &str) -> Vec<(f64, f64, String, f64, String)> {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..].split('"').next()?.to_owned())
    };
    svg.split("<text")
        .skip(1)
        .filter_map(|rest| {
            let (tag, after) = rest.split_once('>')?;
            let content =
                after.split("</text>").next()?.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
            let x = attribute(tag, "x")?.parse().ok()?;
            let y = attribute(tag, "y")?.parse().ok()?;
            let anchor = attribute(tag, "text-anchor").unwrap_or_else(|| "start".to_owned());
            let size = attribute(tag, "font-size").and_then(|s| s.parse().ok()).unwrap_or(12.0);
            let rotated = tag.contains("rotate(");
            (!rotated).then_some((x, y, anchor, size, content))
        })
        .collect()
}

fn extent(x: f64, anchor: &str, width: f64) -> (f64, f64) {
    match anchor {
        "end" => (x - width, x),
        "middle" => (x - width / 2.0, x + width / 2.0),
        _ => (x, x + width),
    }
}

const EXAMPLES: [&str; 10] = [
    "examples/scenarios/year-simple-continuous.toml",
    "examples/scenarios/missed-refill.toml",
    "examples/scenarios/pocket-fill.toml",
    "examples/scenarios/catheter-leak.toml",
    "examples/scenarios/concentration-change-no-bridge.toml",
    "examples/scenarios/concentration-change-bridge.toml",
    "examples/scenarios/wrong-concentration.toml",
    "examples/scenarios/mri-delayed-recovery.toml",
    "examples/scenarios/flex-nightly-ptm.toml",
    "crates/sim/benches/ten-years.toml",
];

#[test]
fn every_label_fits_inside_the_picture_and_alarm_labels_do_not_collide() {
    for path in EXAMPLES {
        let svg = drawing(path);
        let height: f64 = svg
            .split("height=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
            .and_then(|h| h.parse().ok())
            .expect("height");
        let all = texts(&svg);
        assert!(all.len() > 20, "{path}");
        for (x, y, anchor, size, content) in &all {
            let (left, right) = extent(*x, anchor, svg::text_width(content, *size));
            assert!(left >= 0.0 && right <= svg::WIDTH, "{path}: '{content}' spans {left:.0}..{right:.0}");
            assert!(*y - size >= 0.0 && *y <= height, "{path}: '{content}' at y {y}");
        }
        // Alarm labels (the words of an alarm name) on one row never overlap.
        let names =
            ["Low reservoir", "Empty reservoir", "Motor stall", "Elective replacement indicator", "End of service"];
        let labels: Vec<_> = all.iter().filter(|t| names.contains(&t.4.as_str())).collect();
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                if (a.1 - b.1).abs() < 1.0 {
                    let ea = extent(a.0, &a.2, svg::text_width(&a.4, a.3));
                    let eb = extent(b.0, &b.2, svg::text_width(&b.4, b.3));
                    assert!(ea.1 <= eb.0 || eb.1 <= ea.0, "{path}: '{}' and '{}' overlap", a.4, b.4);
                }
            }
        }
    }
}

#[test]
fn the_plot_has_a_csf_panel_legend_axis_titles_and_words_not_codes() {
    let svg = drawing("examples/scenarios/missed-refill.toml");
    for expected in [
        "Drug reaching the CSF, each day",
        "prescribed dose",
        "as prescribed",
        "below",
        "no drug at all",
        "pump&apos;s estimate",
        "micrograms/day",
        "mL/day",
        ">mL<",
        "Date (Europe/London)",
        "Low reservoir",
        "Empty reservoir",
        "26 Nov 2026",
        "7 Jan 2027",
    ]
    .iter()
    .map(|e| e.replace("&apos;", "'"))
    {
        assert!(svg.contains(&expected), "missing '{expected}'");
    }
    for code in ["low_reservoir", "empty_reservoir", "2026-", "T10:00"] {
        assert!(!svg.contains(code), "'{code}' in the drawing");
    }
}

#[test]
fn the_csf_panel_shows_a_skipped_bridge_as_days_below() {
    let skipped = drawing("examples/scenarios/concentration-change-no-bridge.toml");
    let bridged = drawing("examples/scenarios/concentration-change-bridge.toml");
    // Days below are drawn as red bars; with the bridge there are none.
    let red_bars = |svg: &str| svg.lines().any(|l| l.starts_with("<path") && l.contains("fill=\"#d62728\""));
    assert!(red_bars(&skipped));
    assert!(!red_bars(&bridged));
}
