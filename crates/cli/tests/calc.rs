//! Black-box tests of `itb calc` through the real binary.

mod common;

use common::itb;

use serde_json::Value;

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = itb(&all);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// A refusal: non-zero exit, nothing on stdout, one line on stderr that contains `expected`.
fn refused(args: &[&str], expected: &str) {
    let output = itb(args);
    assert!(!output.status.success(), "{args:?} was accepted");
    assert!(output.stdout.is_empty(), "{args:?} printed {}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: expected '{expected}' in: {stderr}");
}

const START: &str = "--start=2026-11-25T10:00:00Z";

#[test]
fn refill_worked_example() {
    let out = json(&["calc", "refill", "--fill-ml", "20", "--concentration", "2000", "--dose", "400", START]);
    assert_eq!(out["daily_volume_ml"], 0.2);
    assert_eq!(out["days_to_low_reservoir_alarm"], 90);
    assert_eq!(out["days_to_empty"], 100);
    assert_eq!(out["low_reservoir_alarm_at"], "2027-02-23T10:00:00Z");
    assert_eq!(out["empty_at"], "2027-03-05T10:00:00Z");
    assert_eq!(out["drug_expires_at"], "2027-05-24T10:00:00Z");
    assert_eq!(out["refill_due_by"], "2027-02-23T10:00:00Z");
    assert_eq!(out["refill_due_on"], "2027-02-23");
    assert_eq!(out["limited_by"], "low_reservoir_alarm");
}

#[test]
fn refill_with_worst_case_ptm_and_margin() {
    // 333 + 4 x 25 = 433 micrograms/day of 2000: 0.2165 mL/day; 18 mL lasts 83.14087759... days,
    // rounded down to 6 places; the instants are rounded down to the second.
    let out = json(&[
        "calc",
        "refill",
        "--fill-ml",
        "20",
        "--concentration",
        "2000",
        "--dose",
        "333",
        "--ptm-bolus",
        "25",
        "--ptm-per-day",
        "4",
        "--margin-days",
        "3",
        START,
    ]);
    assert_eq!(out["daily_volume_ml"], 0.2165);
    assert_eq!(out["days_to_low_reservoir_alarm"], 83.140877);
    assert_eq!(out["low_reservoir_alarm_at"], "2027-02-16T13:22:51Z");
    assert_eq!(out["refill_due_by"], "2027-02-13T13:22:51Z");
    assert_eq!(out["refill_due_on"], "2027-02-13");
}

#[test]
fn refill_limited_by_stability() {
    let out = json(&["calc", "refill", "--fill-ml", "40", "--concentration", "2000", "--dose", "200", START]);
    assert_eq!(out["limited_by"], "drug_stability");
    assert_eq!(out["refill_due_on"], "2027-05-24");
    let short = json(&[
        "calc",
        "refill",
        "--fill-ml",
        "20",
        "--concentration",
        "2000",
        "--dose",
        "400",
        "--stability-days",
        "60",
        START,
    ]);
    assert_eq!(short["limited_by"], "drug_stability");
    assert_eq!(short["refill_due_by"], "2027-01-24T10:00:00Z");
}

#[test]
fn refill_from_a_prescription_file_assumes_every_ptm_bolus() {
    let from_file = json(&[
        "calc",
        "refill",
        "--fill-ml",
        "20",
        "--concentration",
        "2000",
        "--prescription",
        "examples/prescriptions/simple-continuous-ptm.toml",
        START,
    ]);
    let from_flags = json(&[
        "calc",
        "refill",
        "--fill-ml",
        "20",
        "--concentration",
        "2000",
        "--dose",
        "350",
        "--ptm-bolus",
        "25",
        "--ptm-per-day",
        "4",
        START,
    ]);
    assert_eq!(from_file["refill_due_by"], from_flags["refill_due_by"]);
    assert_eq!(from_file["daily_dose_micrograms_per_day"], 450);
}

#[test]
fn refill_due_on_is_the_local_date() {
    // The due instant 23:30 UTC in summer is 00:30 the next day in London, the same day in UTC.
    let args = [
        "calc",
        "refill",
        "--fill-ml",
        "20",
        "--concentration",
        "2000",
        "--dose",
        "400",
        "--start=2027-04-02T23:30:00Z",
    ];
    let london = json(&args);
    assert_eq!(london["refill_due_on"], "2027-07-02");
    let mut utc = args.to_vec();
    utc.extend(["--tz", "UTC"]);
    assert_eq!(json(&utc)["refill_due_on"], "2027-07-01");
}

#[test]
fn refill_refuses_bad_input_with_one_sentence() {
    let base = ["calc", "refill", "--fill-ml", "20", "--concentration", "2000", START];
    let with = |extra: &[&'static str]| base.iter().copied().chain(extra.iter().copied()).collect::<Vec<_>>();
    refused(&with(&["--dose", "-5"]), "--dose");
    refused(&with(&["--dose", "0.4 mg/day"]), "milligrams");
    refused(&with(&["--dose", "400 mcg/day"]), "micrograms' in full");
    refused(&with(&["--dose", "400", "--tz", "Mars/Olympus"]), "--tz");
    refused(&with(&["--dose", "400", "--alarm-ml", "25"]), "--alarm-ml");
    refused(&with(&["--dose", "400", "--stability-days", "200"]), "--stability-days");
    refused(&with(&["--dose", "400", "--start", "yesterday"]), "--start");
    refused(&with(&["--dose", "abc"]), "--dose");
    refused(
        &[
            "calc",
            "refill",
            "--fill-ml",
            "20",
            "--concentration",
            "2000",
            "--dose",
            "400",
            "--start=9999-12-01T00:00:00Z",
        ],
        "--start",
    );
    refused(
        &["calc", "refill", "--fill-ml", "99999999999999", "--concentration", "2000", "--dose", "400"],
        "too large",
    );
    refused(&with(&[]), "--dose");
    refused(&["calc", "refill", "--fill-ml", "20", "--concentration", "0", "--dose", "400", START], "--concentration");
    refused(&["calc", "refill", "--fill-ml", "-1", "--concentration", "2000", "--dose", "400"], "--fill-ml");
    refused(
        &["calc", "refill", "--fill-ml", "20", "--concentration", "2000", "--dose", "400", "--ptm-bolus", "25"],
        "--ptm",
    );
}

#[test]
fn human_output_spells_micrograms_in_full() {
    let output = itb(&["calc", "refill", "--fill-ml", "20", "--concentration", "2000", "--dose", "400", START]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("2000 micrograms/mL"), "{text}");
    assert!(text.contains("REFILL DUE BY               Tue 23 Feb 2027 10:00 Europe/London"), "{text}");
    assert!(!text.contains("mcg") && !text.contains("µg"), "{text}");
}

#[test]
fn bridge_worked_examples() {
    let out = json(&[
        "calc",
        "bridge",
        "--old-concentration",
        "500",
        "--new-concentration",
        "2000",
        "--dose",
        "400",
        "--profile",
        "synchromed-ii-20",
        "--catheter-cm",
        "50",
    ]);
    assert_eq!(out["bridge_volume_ml"], 0.31);
    assert_eq!(out["bridge_rate_ml_per_day"], 0.8);
    assert_eq!(out["bridge_hours"], 9.3);
    assert_eq!(out["rate_after_ml_per_day"], 0.2);
    assert_eq!(out["skipped_bridge_dose_ratio"], 0.25);
    let down = json(&[
        "calc",
        "bridge",
        "--old-concentration",
        "2000",
        "--new-concentration",
        "500",
        "--dose",
        "400",
        "--dead-volume-ml",
        "0.5",
    ]);
    assert_eq!(down["bridge_rate_ml_per_day"], 0.2);
    assert_eq!(down["bridge_hours"], 60);
    assert_eq!(down["rate_after_ml_per_day"], 0.8);
    assert_eq!(down["skipped_bridge_daily_dose_micrograms_per_day"], 1600);
    refused(
        &["calc", "bridge", "--old-concentration", "2000", "--new-concentration", "500", "--dose", "400"],
        "--dead-volume-ml",
    );
    refused(
        &[
            "calc",
            "bridge",
            "--old-concentration",
            "2000",
            "--new-concentration",
            "500",
            "--dose",
            "400",
            "--profile",
            "nope",
            "--catheter-cm",
            "40",
        ],
        "synchromed-ii-20",
    );
}

#[test]
fn priming_worked_example() {
    let out = json(&["calc", "prime", "--profile", "synchromed-ii-20", "--catheter-cm", "50"]);
    assert_eq!(out["priming_volume_ml"], 0.31);
    assert_eq!(out["priming_rate_ml_per_day"], 24);
    assert_eq!(out["priming_hours"], 0.31);
    let revision = json(&["calc", "prime", "--profile", "synchromed-ii-20", "--catheter-cm", "50", "--catheter-only"]);
    assert_eq!(revision["priming_volume_ml"], 0.11);
}

#[test]
fn titration_verdicts() {
    let check = |args: &[&str]| {
        let mut all = vec!["calc", "titrate"];
        all.extend_from_slice(args);
        json(&all)
    };
    let within = check(&["--current", "200", "--proposed", "240", "--origin", "spinal", "--age", "40"]);
    assert_eq!(within["change_percent"], 20);
    assert_eq!(within["band_min_percent"], 10);
    assert_eq!(within["band_max_percent"], 30);
    assert_eq!(within["verdict"], "within_guideline");
    let exceeds = check(&["--current", "200", "--proposed", "240", "--origin", "cerebral", "--age", "40"]);
    assert_eq!(exceeds["verdict"], "exceeds_guideline");
    let child = check(&["--current", "100", "--proposed", "120", "--origin", "spinal", "--age", "9"]);
    assert_eq!(child["band_max_percent"], 15);
    assert_eq!(child["verdict"], "exceeds_guideline");
    let soon = check(&[
        "--current",
        "200",
        "--proposed",
        "300",
        "--origin",
        "spinal",
        "--last-increase-at",
        "2026-11-25T00:00:00Z",
        "--at",
        "2026-11-25T10:00:00Z",
    ]);
    assert_eq!(soon["verdict"], "too_soon");
    assert!(
        soon["reasons"].as_array().is_some_and(|r| r.iter().any(|s| s.as_str().unwrap_or("").contains("24 hours")))
    );
    let cut = check(&["--current", "300", "--proposed", "270", "--origin", "spinal"]);
    assert_eq!(cut["verdict"], "reduction");
    assert_eq!(cut["change_percent"], -10);
    let same = check(&["--current", "300", "--proposed", "300", "--origin", "spinal"]);
    assert_eq!(same["verdict"], "no_change");
    refused(&["calc", "titrate", "--current", "0", "--proposed", "100", "--origin", "spinal"], "--current");
    refused(&["calc", "titrate", "--current", "100", "--proposed", "120", "--origin", "spine"], "--origin");
}

#[test]
fn screening_ladder_and_starting_dose() {
    let next = json(&["calc", "screening", "--trial", "50:no-response"]);
    assert_eq!(next["status"], "next_dose");
    assert_eq!(next["next_dose_micrograms"], 75);
    let candidate = json(&["calc", "screening", "--trial", "50:no-response", "--trial", "75:responded"]);
    assert_eq!(candidate["status"], "candidate");
    assert_eq!(candidate["effective_dose_micrograms"], 75);
    assert_eq!(candidate["starting_dose_micrograms_per_day"], 150);
    let long = json(&["calc", "screening", "--effective-dose", "50", "--effect-hours", "12"]);
    assert_eq!(long["starting_dose_micrograms_per_day"], 50);
    let failed = json(&["calc", "screening", "--trial", "50:no", "--trial", "75:no", "--trial", "100:no"]);
    assert_eq!(failed["status"], "not_candidate");
    let small = json(&["calc", "screening", "--small"]);
    assert_eq!(small["ladder_micrograms"], serde_json::json!([25, 50, 75, 100]));
    refused(&["calc", "screening", "--trial", "50:no", "--trial", "100:yes"], "--trial");
}

#[test]
fn gas_t_scores() {
    assert_eq!(json(&["calc", "gas", "--goal", "0", "--goal", "0"])["t_score"], 50.0);
    assert_eq!(json(&["calc", "gas", "--goal", "1"])["t_score"], 60.0);
    // Two unweighted goals at +1: 50 + 20 / sqrt(2.6) = 62.403473...
    assert_eq!(json(&["calc", "gas", "--goal", "1", "--goal", "+1"])["t_score"], 62.403473);
    // w = 6 at -1, w = 1 at +2: 50 - 40 / sqrt(40.6) = 43.722352...
    assert_eq!(json(&["calc", "gas", "--goal", "-1:2:3", "--goal", "2:1:1"])["t_score"], 43.722352);
    refused(&["calc", "gas", "--goal", "3"], "--goal");
    refused(&["calc", "gas", "--goal", "1:4:1"], "--goal");
}

#[test]
fn totals_of_every_example_prescription() {
    let expected = [
        ("flex-nightly.toml", 366.666, 366.666, 0),
        ("flex-weekly.toml", 330.0, 308.571, 0),
        ("periodic-bolus.toml", 280.0, 280.0, 0),
        ("simple-continuous-ptm.toml", 350.0, 350.0, 100),
        ("simple-continuous.toml", 400.0, 400.0, 0),
        ("stopped.toml", 0.0, 0.0, 0),
    ];
    for (file, max, mean, ptm) in expected {
        let path = format!("examples/prescriptions/{file}");
        let out = json(&["calc", "totals", "--prescription", &path]);
        assert_eq!(out["max_day_micrograms"].as_f64(), Some(max), "{file}");
        assert_eq!(out["mean_day_micrograms"].as_f64(), Some(mean), "{file}");
        assert_eq!(out["ptm_worst_case_micrograms"], ptm, "{file}");
    }
    refused(&["calc", "totals", "--prescription", "no-such-file.toml"], "--prescription");
}
