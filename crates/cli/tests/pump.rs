//! Black-box tests of `itb pump` through the real binary.

mod common;

use common::itb;

#[test]
fn simulate_prints_a_timeline_and_summary_and_draws_svg() {
    let svg = std::env::temp_dir().join(format!("itb-test-{}.svg", std::process::id()));
    let svg_arg = svg.display().to_string();
    let output = itb(&["pump", "simulate", "--scenario", "examples/scenarios/missed-refill.toml", "--svg", &svg_arg]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("2027-02-21 21:06 [2027-02-21 21:06]  alarm              ALARM low reservoir"), "{text}");
    assert!(text.contains("empty_reservoir (critical)"), "{text}");
    assert!(text.contains("Mass balance held throughout             yes"), "{text}");
    let drawing = std::fs::read_to_string(&svg).expect("svg written");
    assert!(drawing.starts_with("<svg") && drawing.contains("empty_reservoir") && drawing.contains("<polyline"));
    let _ = std::fs::remove_file(&svg);
}

#[test]
fn simulate_json_has_the_summary_and_timeline() {
    let output = itb(&["pump", "simulate", "--scenario", "examples/scenarios/pocket-fill.toml", "--json"]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["summary"]["to_tissue_micrograms"], 40000.0);
    assert_eq!(json["summary"]["refills"][1]["warning"], true);
    assert!(json["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["kind"] == "pocket_fill")));
}

#[test]
fn simulate_refuses_a_bad_scenario_with_one_sentence() {
    let dir = std::env::temp_dir().join(format!("itb-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "name = \"x\"\nprofile = \"synchromed-iii\"\n").expect("write");
    let output = itb(&["pump", "simulate", "--scenario", &file.display().to_string()]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--scenario"), "{stderr}");
    let missing = itb(&["pump", "simulate", "--scenario", "no-such.toml"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read no-such.toml"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A scenario file in a fresh directory; the directory is removed by the caller.
fn scenario_file(tag: &str, text: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("itb-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("scenario.toml");
    std::fs::write(&file, text).expect("write");
    let path = file.display().to_string();
    (dir, path)
}

const HEAD: &str = "name = \"x\"\nprofile = \"synchromed-ii-20\"\nstart = \"2026-11-25T10:00:00Z\"\nuntil = \"30 day\"\n\
                    [implant]\ncatheter_cm = 50\nfill = \"20 mL\"\nconcentration = \"2000 micrograms/mL\"\n\
                    prescription = { mode = \"simple_continuous\", dose = \"400 micrograms/day\" }\n";

#[test]
fn simulate_refuses_actions_out_of_order_and_overfills_naming_the_line() {
    let refill = |at: &str, volume: &str| {
        format!(
            "[[actions]]\nat = \"{at}\"\naction = \"refill\"\nvolume = \"{volume}\"\nconcentration = \"2000 micrograms/mL\"\n"
        )
    };
    // HEAD is 9 lines: the first action starts on line 10, the second on line 15.
    let cases = [
        (
            "order",
            format!("{HEAD}{}{}", refill("20 day", "20 mL"), refill("10 day", "20 mL")),
            "line 16: actions[2].at",
        ),
        ("overfill", format!("{HEAD}{}", refill("20 day", "40 mL")), "line 13: actions[1].volume"),
    ];
    for (tag, text, expected) in cases {
        let (dir, path) = scenario_file(tag, &text);
        let output = itb(&["pump", "simulate", "--scenario", &path]);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!output.status.success(), "{tag}");
        assert!(output.stdout.is_empty(), "{tag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("--scenario") && stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn battery_curve_spans_five_to_seven_years() {
    let output = itb(&["pump", "battery", "--json"]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let curve = json["curve"].as_array().expect("curve");
    let years: Vec<f64> = curve.iter().filter_map(|p| p["years"].as_f64()).collect();
    assert_eq!(years.first(), Some(&7.0));
    assert!(years.windows(2).all(|w| w[1] <= w[0]), "{years:?}");
    let at_two_ml = curve.iter().find(|p| p["daily_volume_ml"] == 2.0).expect("2 mL/day");
    assert_eq!(at_two_ml["years"], 5.0);
}
