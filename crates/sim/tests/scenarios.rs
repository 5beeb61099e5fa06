//! Every example scenario runs, and shows what it is meant to show.

use itb_sim::{RunReport, Scenario, run};

fn run_example(name: &str) -> RunReport {
    let path = format!("{}/../../examples/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("example scenario exists");
    let scenario = Scenario::from_toml(&text).expect("example scenario is valid");
    let report = run(&scenario).expect("runs");
    assert!(report.summary.mass_balance_holds, "{name}: mass balance");
    report
}

fn alarms(report: &RunReport) -> Vec<(&str, &str)> {
    report.summary.alarms.iter().map(|a| (a.alarm.as_str(), a.at.as_str())).collect()
}

#[test]
fn a_year_of_refills_never_alarms() {
    let report = run_example("year-simple-continuous");
    assert!(report.summary.alarms.is_empty());
    assert_eq!(report.summary.refills.len(), 4);
    assert!(report.summary.refills.iter().all(|r| !r.warning));
    // 0.31 mL of priming, then 365 days less 18.6 minutes at 0.2 mL/day.
    assert_eq!(report.summary.commanded_ml, 73.307416);
}

#[test]
fn a_missed_refill_ends_in_the_empty_reservoir_alarm() {
    let report = run_example("missed-refill");
    // Priming ends at 10:18:36; then 17.69 mL to the alarm at 0.2 mL/day: 88 days 10 h 48 min.
    assert_eq!(
        alarms(&report),
        vec![("low_reservoir", "2027-02-21T21:06:36Z"), ("empty_reservoir", "2027-03-03T21:06:36Z"),]
    );
    assert!(report.summary.tones > 300, "critical tones every 10 minutes: {}", report.summary.tones);
}

#[test]
fn mri_stall_is_detected_refused_then_cleared() {
    let report = run_example("mri-delayed-recovery");
    assert_eq!(alarms(&report), vec![("motor_stall", "2026-12-10T14:05:00Z")]);
    assert_eq!(report.summary.refused.len(), 1);
    assert_eq!(report.summary.refused[0].code, "alarm_cause_remains");
    assert!(report.timeline.iter().any(|e| e.text.contains("motor running again") && e.at == "2026-12-11T08:00:00Z"));
}

#[test]
fn a_catheter_leak_shows_in_the_truth_not_the_reservoir() {
    let report = run_example("catheter-leak");
    assert!(!report.summary.refills[0].warning);
    // 40 % of 54 days x 400 micrograms/day went into tissue.
    assert_eq!(report.summary.to_tissue_micrograms, 9600.0);
}

#[test]
fn a_bridge_keeps_the_dose_and_skipping_it_loses_three_quarters_for_a_day_and_a_half() {
    let bridged = run_example("concentration-change-bridge");
    let skipped = run_example("concentration-change-no-bridge");
    // Without the bridge the patient loses 300 micrograms/day for 37.2 hours: 465 micrograms.
    let lost = bridged.summary.to_csf_micrograms - skipped.summary.to_csf_micrograms;
    assert!((lost - 465.0).abs() < 0.01, "{lost}");
}

#[test]
fn a_pocket_fill_is_found_at_the_next_refill() {
    let report = run_example("pocket-fill");
    let last = report.summary.refills.last().expect("refills");
    assert!(last.warning);
    assert_eq!(last.withdrawn_ml, 0.0);
    assert_eq!(report.summary.to_tissue_micrograms, 40_000.0);
}

#[test]
fn flex_with_ptm_refuses_presses_within_the_lockout() {
    let report = run_example("flex-nightly-ptm");
    assert_eq!(report.summary.refused.len(), 4);
    assert!(report.summary.refused.iter().all(|r| r.code == "ptm_lockout"));
    assert!(report.summary.refused[0].reason.contains("next allowed at 2026-11-27T11:00:00Z"));
    let presses = report.timeline.iter().filter(|e| e.kind == "ptm").count();
    assert_eq!(presses, 13);
}

#[test]
fn scenario_errors_name_the_field() {
    let bad = "name = \"x\"\nprofile = \"synchromed-ii-20\"\nstart = \"2026-11-25T10:00:00Z\"\nuntil = \"10 day\"\n\
               [implant]\ncatheter_cm = 50\nfill = \"20 mL\"\nconcentration = \"2 mg/mL\"\n\
               prescription = { mode = \"stopped\" }\n";
    let error = Scenario::from_toml(bad).expect_err("milligrams");
    assert!(error.to_string().starts_with("line 8: implant.concentration: "), "{error}");
    assert_eq!(error.line(), Some(8));
    let typo = bad.replace("catheter_cm", "catheter_length");
    assert!(Scenario::from_toml(&typo).is_err());
}
