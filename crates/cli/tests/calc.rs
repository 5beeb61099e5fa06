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

/// The text a person reads (stdout of a successful command without --json).
fn text(args: &[&str]) -> String {
    let output = itb(args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn refill_text_is_for_people() {
    let worked = text(&["calc", "refill", "--fill-ml", "20", "--concentration", "2000", "--dose", "400", START]);
    assert_eq!(
        worked,
        "Refill schedule
  Fill                        20 mL of baclofen 2000 micrograms/mL
  Daily dose assumed          400 micrograms/day
  Daily volume                0.2 mL/day
  Filled                      Wed 25 Nov 2026 10:00
  Low-reservoir alarm (2 mL)  Tue 23 Feb 2027 10:00 (after 90 days)
  Reservoir empty             Fri 5 Mar 2027 10:00 (after 100 days)
  Drug expires (180 days)     Mon 24 May 2027 11:00
  REFILL DUE BY               Tue 23 Feb 2027 10:00
  Refill due on               23 Feb 2027

  - The refill date is set by the low-reservoir alarm.
"
    );
    // Derived figures rounded (0.2165 mL/day, 83.140877 days), the zone named when not London's.
    let ptm = text(&[
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
        "--profile",
        "synchromed-ii-20",
        "--tz",
        "UTC",
        START,
    ]);
    assert_eq!(
        ptm,
        "Refill schedule
  Pump                        synchromed-ii-20, 20 mL reservoir
  Fill                        20 mL of baclofen 2000 micrograms/mL
  Daily dose assumed          433 micrograms/day: 333 micrograms/day + 100 micrograms of PTM boluses (every allowed bolus taken)
  Daily volume                0.217 mL/day
  Filled                      Wed 25 Nov 2026 10:00 UTC
  Low-reservoir alarm (2 mL)  Tue 16 Feb 2027 13:22 UTC (after 83 days 3 h)
  Reservoir empty             Thu 25 Feb 2027 19:05 UTC (after 92 days 9 h)
  Drug expires (180 days)     Mon 24 May 2027 10:00 UTC
  REFILL DUE BY               Sat 13 Feb 2027 13:22 UTC
  Refill due on               13 Feb 2027

  - The refill date is set by the low-reservoir alarm, less the service's margin of 3 days.
"
    );
    let flex = text(&[
        "calc",
        "refill",
        "--fill-ml",
        "20",
        "--concentration",
        "2000",
        "--prescription",
        "examples/prescriptions/flex-nightly.toml",
        START,
    ]);
    assert!(
        flex.contains(
            "  Daily dose assumed          366.67 micrograms/day: the largest day of the flex prescription\n"
        ),
        "{flex}"
    );
    assert!(flex.contains("  Daily volume                0.183 mL/day\n"), "{flex}");
    let with_ptm = text(&[
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
    assert!(
        with_ptm.contains(
            "450 micrograms/day: the largest day of the simple continuous prescription, 350 micrograms, \
             + 100 micrograms of PTM boluses (every allowed bolus taken)"
        ),
        "{with_ptm}"
    );
    let stopped = text(&[
        "calc",
        "refill",
        "--fill-ml",
        "20",
        "--concentration",
        "2000",
        "--prescription",
        "examples/prescriptions/stopped.toml",
        START,
    ]);
    assert!(
        stopped.contains("  Daily dose assumed          0 micrograms/day: the prescription is stopped (no delivery)\n"),
        "{stopped}"
    );
    assert!(stopped.contains("  Reservoir empty             never: nothing is delivered\n"), "{stopped}");
}

#[test]
fn bridge_prime_titrate_and_totals_text_is_for_people() {
    let bridge = text(&[
        "calc",
        "bridge",
        "--old-concentration",
        "2000",
        "--new-concentration",
        "700",
        "--dose",
        "333",
        "--profile",
        "synchromed-ii-20",
        "--catheter-cm",
        "47",
    ]);
    assert_eq!(
        bridge,
        "Bridge bolus after a concentration change
  Change                  2000 micrograms/mL to 700 micrograms/mL, at 333 micrograms/day
  Dead volume (old drug)  0.3 mL holding 606.8 micrograms
  Bridge rate             0.167 mL/day (333 micrograms/day of the old drug)
  Bridge duration         1 day 19 h
  Rate after the bridge   0.476 mL/day (333 micrograms/day of the new drug)

  - Without a bridge the old drug would be delivered at the new rate: 951.43 micrograms/day (285.71% of the prescribed dose) for 15 h 18 min, an OVERDOSE.
"
    );
    let prime = text(&["calc", "prime", "--profile", "synchromed-ii-20", "--catheter-cm", "47", "--catheter-only"]);
    assert!(prime.contains("  Volume to fill  0.1 mL (empty catheter)\n"), "{prime}");
    assert!(prime.contains("  Duration        6 min\n"), "{prime}");
    let titrate = text(&["calc", "titrate", "--current", "333", "--proposed", "377", "--origin", "cerebral"]);
    assert!(titrate.contains("  Change          333 micrograms/day to 377 micrograms/day (13.21%)\n"), "{titrate}");
    assert!(titrate.contains("  Verdict         WITHIN GUIDELINE\n"), "{titrate}");
    let weekly = text(&["calc", "totals", "--prescription", "examples/prescriptions/flex-weekly.toml"]);
    assert!(weekly.contains("  Prescription            flex, a pattern for each day of the week\n"), "{weekly}");
    assert!(weekly.contains("  Tuesday                 330 micrograms\n"), "{weekly}");
    assert!(weekly.contains("  Mean day                308.57 micrograms\n"), "{weekly}");
    let periodic = text(&["calc", "totals", "--prescription", "examples/prescriptions/simple-continuous-ptm.toml"]);
    assert!(
        periodic.contains(
            "simple continuous 350 micrograms/day; PTM 25 micrograms over 10 min, at least 3 h apart, at most 4 in 24 hours"
        ),
        "{periodic}"
    );
}

#[test]
fn calc_text_has_no_code_names_debug_text_or_machine_dates() {
    let commands: &[&[&str]] = &[
        &[
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
            START,
        ],
        &[
            "calc",
            "refill",
            "--fill-ml",
            "20",
            "--concentration",
            "2000",
            "--prescription",
            "examples/prescriptions/flex-weekly.toml",
            START,
        ],
        &[
            "calc",
            "refill",
            "--fill-ml",
            "20",
            "--concentration",
            "2000",
            "--prescription",
            "examples/prescriptions/periodic-bolus.toml",
            START,
        ],
        &[
            "calc",
            "bridge",
            "--old-concentration",
            "2000",
            "--new-concentration",
            "700",
            "--dose",
            "333",
            "--profile",
            "synchromed-ii-20",
            "--catheter-cm",
            "47",
        ],
        &[
            "calc",
            "bridge",
            "--old-concentration",
            "500",
            "--new-concentration",
            "500",
            "--dose",
            "333",
            "--dead-volume-ml",
            "0.3",
        ],
        &["calc", "prime", "--profile", "synchromed-ii-20", "--catheter-cm", "47"],
        &[
            "calc",
            "titrate",
            "--current",
            "333",
            "--proposed",
            "377",
            "--origin",
            "spinal",
            "--last-increase-at",
            "2026-11-25T00:00:00Z",
            "--at",
            "2026-11-25T10:00:00Z",
        ],
        &["calc", "screening", "--trial", "50:no-response", "--trial", "75:responded"],
        &["calc", "screening", "--trial", "50:no", "--trial", "75:no", "--trial", "100:no"],
        &["calc", "gas", "--goal", "1:3:2", "--goal", "0:2:2", "--goal", "-1:1:1"],
        &["calc", "totals", "--prescription", "examples/prescriptions/flex-weekly.toml"],
        &["calc", "totals", "--prescription", "examples/prescriptions/periodic-bolus.toml"],
        &["calc", "totals", "--prescription", "examples/prescriptions/flex-nightly.toml"],
    ];
    for args in commands {
        let out = text(args);
        for forbidden in ["_", "{", "Some(", "ppm", "mcg", "µg", "T10:00", ":00Z", "2026-", "2027-", "Europe/London"] {
            assert!(!out.contains(forbidden), "{args:?}: '{forbidden}' in\n{out}");
        }
        // Volumes to 0.01 mL, doses to 0.01 micrograms, volume rates to 0.001 mL/day.
        assert!(
            !out.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .any(|n| n.split('.').nth(1).is_some_and(|f| f.len() > 3)),
            "{args:?}: {out}"
        );
    }
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

/// A file in a fresh temporary directory (removed by the caller), for profiles and prescriptions.
fn temp_file(tag: &str, name: &str, text: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("itb-calc-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write");
    let path = file.display().to_string();
    (dir, path)
}

/// The one line on stderr of a refused command.
fn refusal(args: &[&str]) -> String {
    let output = itb(args);
    assert!(!output.status.success(), "{args:?} was accepted");
    assert!(output.stdout.is_empty(), "{args:?} printed {}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr).trim_end().to_owned();
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    stderr
}

#[test]
fn refill_knows_the_pump_from_its_profile() {
    let base = ["calc", "refill", "--concentration", "2000", "--dose", "400", START];
    let with = |extra: &[&'static str]| base.iter().copied().chain(extra.iter().copied()).collect::<Vec<_>>();
    // A full 20 mL pump: the worked example, with the profile's 2 mL alarm.
    let full = json(&with(&["--fill-ml", "20", "--profile", "synchromed-ii-20"]));
    assert_eq!(full["days_to_low_reservoir_alarm"], 90);
    assert_eq!(full["low_reservoir_alarm_at"], "2027-02-23T10:00:00Z");
    assert_eq!(full["low_reservoir_alarm_ml"], 2);
    assert_eq!(full["reservoir_ml"], 20);
    // 30 mL fits the 40 mL pump: 28 mL at 0.2 mL/day is 140 days to the alarm.
    let forty = json(&with(&["--fill-ml", "30", "--profile", "synchromed-ii-40"]));
    assert_eq!(forty["days_to_low_reservoir_alarm"], 140);
    assert_eq!(forty["low_reservoir_alarm_at"], "2027-04-14T10:00:00Z");
    assert_eq!(forty["reservoir_ml"], 40);
    // ...but not the 20 mL pump, named by profile or by its capacity.
    assert_eq!(
        refusal(&with(&["--fill-ml", "30", "--profile", "synchromed-ii-20"])),
        "itb: --fill-ml: 30 mL is more than the synchromed-ii-20 reservoir holds (20 mL); \
         give at most 20 mL, or the --profile of the pump being filled"
    );
    assert_eq!(
        refusal(&with(&["--fill-ml", "20.5", "--reservoir-ml", "20"])),
        "itb: --fill-ml: 20.5 mL is more than the reservoir holds (--reservoir-ml 20 mL); give at most 20 mL"
    );
    let exact = json(&with(&["--fill-ml", "20", "--reservoir-ml", "20"]));
    assert_eq!(exact["days_to_low_reservoir_alarm"], 90);
    assert_eq!(exact["reservoir_ml"], 20);
    assert_eq!(exact["low_reservoir_alarm_ml"], 2);
    // Without the pump, nothing is known of its reservoir, and the alarm is 2 mL.
    let unknown = json(&with(&["--fill-ml", "30"]));
    assert_eq!(unknown["reservoir_ml"], Value::Null);
    assert_eq!(unknown["low_reservoir_alarm_ml"], 2);
    refused(&with(&["--fill-ml", "20", "--reservoir-ml", "0"]), "--reservoir-ml");
    refused(&with(&["--fill-ml", "20", "--reservoir-ml", "20 mg"]), "--reservoir-ml");
    refused(&with(&["--fill-ml", "20", "--profile", "synchromed-iii"]), "--profile");
    let conflict = refusal(&with(&["--fill-ml", "20", "--profile", "synchromed-ii-20", "--reservoir-ml", "20"]));
    assert!(conflict.contains("--reservoir-ml") && conflict.contains("--profile"), "{conflict}");
}

#[test]
fn refill_takes_the_alarm_default_from_the_profile() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/synchromed-ii-20.toml"))
        .expect("profile")
        .replace("low_alarm_default = { value = \"2 mL\"", "low_alarm_default = { value = \"3 mL\"");
    let (dir, path) = temp_file("alarm", "three-ml.toml", &text);
    let args = ["calc", "refill", "--fill-ml", "20", "--concentration", "2000", "--dose", "400", START, "--profile"];
    let mut from_profile = args.to_vec();
    from_profile.push(&path);
    // 17 mL at 0.2 mL/day: 85 days to the alarm.
    let out = json(&from_profile);
    assert_eq!(out["days_to_low_reservoir_alarm"], 85);
    assert_eq!(out["low_reservoir_alarm_at"], "2027-02-18T10:00:00Z");
    assert_eq!(out["low_reservoir_alarm_ml"], 3);
    // The flag still wins.
    let mut flagged = from_profile.clone();
    flagged.extend(["--alarm-ml", "2"]);
    let out = json(&flagged);
    assert_eq!(out["days_to_low_reservoir_alarm"], 90);
    assert_eq!(out["low_reservoir_alarm_ml"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refill_refuses_a_dose_beyond_the_vocabulary_as_a_prescription_file_does() {
    let with = |extra: &[&str]| {
        let base = ["calc", "refill", "--fill-ml", "20", "--concentration", "2000", START];
        base.iter().chain(extra.iter()).map(|s| (*s).to_owned()).collect::<Vec<String>>()
    };
    fn args(all: &[String]) -> Vec<&str> {
        all.iter().map(String::as_str).collect()
    }
    let ptm = |bolus: &str, count: &str| {
        format!(
            "[ptm]\nbolus_dose = \"{bolus} micrograms\"\nbolus_duration = \"10 min\"\nlockout = \"3 h\"\nmax_boluses_per_day = {count}\n"
        )
    };
    let continuous = "mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n";
    let cases = [
        (vec!["--dose", "5001"], "--dose", "mode = \"simple_continuous\"\ndose = \"5001 micrograms/day\"\n".to_owned()),
        (
            vec!["--dose", "400", "--ptm-bolus", "501", "--ptm-per-day", "4"],
            "--ptm-bolus",
            format!("{continuous}{}", ptm("501", "4")),
        ),
        (
            vec!["--dose", "400", "--ptm-bolus", "25", "--ptm-per-day", "25"],
            "--ptm-per-day",
            format!("{continuous}{}", ptm("25", "25")),
        ),
    ];
    for (flags, flag, file) in cases {
        let (dir, path) = temp_file("ceiling", "prescription.toml", &file);
        let from_file = refusal(&args(&with(&["--prescription", &path])));
        let _ = std::fs::remove_dir_all(&dir);
        let sentence = from_file.split_once(".toml: ").map(|(_, s)| s.to_owned()).expect("the file's sentence");
        let from_flags = refusal(&args(&with(&flags)));
        assert_eq!(from_flags, format!("itb: {flag}: {sentence}"), "{flags:?}");
    }
    // The ceilings themselves are allowed: 5000 micrograms/day, 24 boluses of 500 micrograms.
    let most = json(&args(&with(&["--dose", "5000", "--ptm-bolus", "500", "--ptm-per-day", "24"])));
    assert_eq!(most["daily_dose_micrograms_per_day"], 17000);
    // No delivery is not a slip: the drug's stability sets the date, as with a stopped file.
    let none = json(&args(&with(&["--dose", "0"])));
    assert_eq!(none["limited_by"], "drug_stability");
}
