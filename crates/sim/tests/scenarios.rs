//! Every example scenario runs, and shows what it is meant to show: the alarms, the refill
//! checks, where the drug went (to the nanogram) and the drug reaching the CSF each day against
//! the prescription.

use itb_dose::{Duration, Mass, Volume};
use itb_pump::world::{Fluid, TissueCause};
use itb_pump::{AlarmKind, Instant};
use itb_sim::account::Verdict;
use itb_sim::{RunReport, Scenario, run};

fn example_text(name: &str) -> String {
    let path = format!("{}/../../examples/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).expect("example scenario exists")
}

fn run_text(name: &str, text: &str) -> RunReport {
    let scenario = Scenario::from_toml(text).expect("example scenario is valid");
    let report = run(&scenario).expect("runs");
    assert!(report.summary.mass_balance_holds, "{name}: mass balance");
    let balance = &report.summary.mass_balance;
    assert!(balance.holds(), "{name}: {balance:?}");
    assert_eq!(balance.inflow(), balance.accounted(), "{name}: in and out");
    report
}

fn run_example(name: &str) -> RunReport {
    run_text(name, &example_text(name))
}

fn at(text: &str) -> Instant {
    Instant::from_timestamp(text.parse().expect("instant"))
}

fn alarms(report: &RunReport) -> Vec<(AlarmKind, Instant)> {
    report.summary.alarms.iter().map(|a| (a.kind, a.at)).collect()
}

/// `(date, reached the CSF, prescribed)` of each day off the prescribed dose.
fn days_off(report: &RunReport) -> Vec<(String, u64, u64, Verdict)> {
    report
        .csf_per_day
        .iter()
        .filter(|d| d.verdict() != Verdict::AsPrescribed)
        .map(|d| (d.date.to_string(), d.to_csf.as_ng(), d.prescribed.as_ng(), d.verdict()))
        .collect()
}

#[test]
fn every_example_balances_to_the_nanogram() {
    let dir = format!("{}/../../examples/scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).expect("read");
            let report = run_text(&path.display().to_string(), &text);
            let b = report.summary.mass_balance;
            let causes: u64 = b.tissue.iter().map(|(_, f)| f.mass.as_ng()).sum();
            assert_eq!(causes, b.to_tissue.mass.as_ng(), "{}", path.display());
            count += 1;
        }
    }
    assert!(count >= 9, "{count} examples");
}

#[test]
fn a_year_of_refills_never_alarms_and_never_misses_a_dose() {
    let report = run_example("year-simple-continuous");
    assert!(report.summary.alarms.is_empty());
    assert_eq!(report.summary.refills.len(), 4);
    assert!(report.summary.refills.iter().all(|r| !r.warning));
    // 0.31 mL of priming, then 365 days less 18.6 minutes at 0.2 mL/day.
    assert_eq!(report.summary.commanded, Volume::nl(73_307_416));
    assert_eq!(report.summary.time_without_drug, Duration::ZERO);
    assert_eq!((report.summary.days_below_prescribed, report.summary.days_above_prescribed), (0, 0));
    // 366 local days (part days at each end), each as prescribed.
    assert_eq!(report.csf_per_day.len(), 366);
    assert!(days_off(&report).is_empty());
}

#[test]
fn a_missed_refill_ends_in_the_empty_reservoir_alarm_and_days_without_drug() {
    let report = run_example("missed-refill");
    // Priming ends at 10:18:36; then 17.69 mL to the alarm at 0.2 mL/day: 88 days 10 h 48 min.
    assert_eq!(
        alarms(&report),
        vec![
            (AlarmKind::LowReservoir, at("2027-02-21T21:06:36Z")),
            (AlarmKind::EmptyReservoir, at("2027-03-03T21:06:36Z"))
        ]
    );
    assert!(report.summary.tones > 300, "critical tones every 10 minutes: {}", report.summary.tones);
    // Nothing reaches the CSF from the empty reservoir to the emergency refill at 101 days.
    let s = &report.summary;
    assert_eq!(s.periods_without_drug.len(), 1);
    assert_eq!(s.periods_without_drug[0].start, at("2027-03-03T21:06:36Z"));
    assert_eq!(s.periods_without_drug[0].end, at("2027-03-06T10:00:00Z"));
    assert_eq!(s.time_without_drug, Duration::ms(((2 * 24 + 12) * 3_600 + 53 * 60 + 24) * 1_000));
    let off: Vec<String> = days_off(&report).into_iter().map(|d| d.0).collect();
    assert_eq!(off, vec!["2027-03-03", "2027-03-04", "2027-03-05", "2027-03-06"]);
    assert_eq!(s.days_below_prescribed, 4);
}

#[test]
fn mri_stall_is_detected_refused_then_cleared_and_the_patient_misses_eighteen_hours() {
    let report = run_example("mri-delayed-recovery");
    assert_eq!(alarms(&report), vec![(AlarmKind::MotorStall, at("2026-12-10T14:05:00Z"))]);
    assert_eq!(report.summary.refused.len(), 1);
    assert_eq!(report.summary.refused[0].code, "alarm_cause_remains");
    assert!(
        report.timeline.iter().any(|e| e.text.contains("motor running again") && e.at == at("2026-12-11T08:00:00Z"))
    );
    assert_eq!(report.summary.time_without_drug, Duration::hours(18));
    // 10 December: 14 hours of 400 micrograms/day; 11 December: 16 hours.
    let off = days_off(&report);
    assert_eq!(off.len(), 2);
    assert_eq!((off[0].0.as_str(), off[0].1 / 1_000), ("2026-12-10", 233));
    assert_eq!((off[1].0.as_str(), off[1].1 / 1_000), ("2026-12-11", 266));
}

#[test]
fn a_catheter_leak_shows_in_the_truth_not_the_reservoir() {
    let report = run_example("catheter-leak");
    assert!(!report.summary.refills[0].warning);
    // 40 % of 60 days x 400 micrograms/day went into tissue, less 4 nanograms of rounding
    // (the leak is rounded down to the nanolitre at each step).
    let leak = report.summary.mass_balance.tissue.get(TissueCause::CatheterLeak);
    assert_eq!(leak.mass, Mass::ng(9_599_996));
    assert_eq!(report.summary.mass_balance.to_tissue, leak);
    // Every day from the leak (25 December, day 30) to the end is below the prescription:
    // 240 of 400 micrograms a day reach the CSF.
    let off = days_off(&report);
    assert_eq!(off.len(), 61);
    assert_eq!(off[0], ("2026-12-25".to_owned(), 306_668, 400_000, Verdict::Below));
    assert_eq!(off[1], ("2026-12-26".to_owned(), 240_000, 400_000, Verdict::Below));
    assert_eq!(report.summary.time_without_drug, Duration::ZERO, "some drug still reaches the CSF");
}

#[test]
fn a_bridge_keeps_the_dose_and_skipping_it_loses_three_quarters_for_a_day_and_a_half() {
    let bridged = run_example("concentration-change-bridge");
    let skipped = run_example("concentration-change-no-bridge");
    assert!(days_off(&bridged).is_empty());
    // Without the bridge the patient loses 300 micrograms/day for 37.2 hours: 465 micrograms.
    let lost = bridged.summary.mass_balance.to_csf.mass.as_ng() - skipped.summary.mass_balance.to_csf.mass.as_ng();
    assert_eq!(lost, 465_000);
    // 15 December: 10 h at 400 and 14 h at 100 micrograms/day (225); 16 December: 23.2 h at
    // 100 and 0.8 h at 400 (110). Each within a nanogram of rounding.
    assert_eq!(
        days_off(&skipped),
        vec![
            ("2026-12-15".to_owned(), 224_999, 400_000, Verdict::Below),
            ("2026-12-16".to_owned(), 109_999, 400_000, Verdict::Below)
        ]
    );
    assert_eq!(skipped.summary.days_below_prescribed, 2);
}

#[test]
fn a_pocket_fill_is_found_at_the_next_refill_and_the_patient_had_nothing_for_two_weeks() {
    let report = run_example("pocket-fill");
    let last = report.summary.refills.last().expect("refills");
    assert!(last.warning);
    assert_eq!(last.withdrawn, Volume::ZERO);
    let b = &report.summary.mass_balance;
    // 20 mL of 2000 micrograms/mL: exactly 40 000 micrograms, all of it by pocket fill.
    let pocket = Fluid { volume: Volume::ml(20), mass: Mass::micrograms(40_000) };
    assert_eq!(b.tissue.get(TissueCause::PocketFill), pocket);
    assert_eq!(b.injected_elsewhere, pocket);
    assert_eq!(b.to_tissue, pocket);
    // The figures a reader adds up: 40 mL into the reservoir and 20 mL elsewhere.
    assert_eq!(b.into_reservoir, Fluid { volume: Volume::ml(40), mass: Mass::micrograms(80_000) });
    assert_eq!(b.in_reservoir.volume, Volume::nl(19_600_000));
    assert_eq!(b.in_tubing_and_catheter, Fluid { volume: Volume::nl(310_000), mass: Mass::micrograms(620) });
    assert_eq!(b.withdrawn.volume, Volume::nl(2_892_584));
    assert_eq!(b.inflow(), (120_000_000, 60_000_000));
    // The reservoir was really empty from the pocket fill to the next refill: 14 days.
    assert_eq!(report.summary.time_without_drug, Duration::days(14));
    assert_eq!(report.summary.days_below_prescribed, 15);
}

#[test]
fn a_wrong_concentration_gives_a_quarter_of_the_dose() {
    let report = run_example("wrong-concentration");
    // 500 micrograms/mL in the syringe, the pump told 2000: once the tubing and catheter have
    // emptied of the old drug (37.2 hours), 100 of 400 micrograms a day reach the CSF.
    let off = days_off(&report);
    assert!(off.iter().all(|d| d.3 == Verdict::Below), "{off:?}");
    let whole: Vec<_> = off.iter().filter(|d| d.1 == 100_000).collect();
    assert!(whole.len() >= 5, "{off:?}");
    assert!(report.timeline.iter().any(|e| e.kind == "wrong_concentration"));
}

#[test]
fn flex_with_ptm_refuses_presses_within_the_lockout_and_counts_the_boluses_as_prescribed() {
    let report = run_example("flex-nightly-ptm");
    assert_eq!(report.summary.refused.len(), 4);
    assert!(report.summary.refused.iter().all(|r| r.code == "ptm_lockout"));
    assert!(
        report.summary.refused[0].reason.contains("next allowed Fri 27 Nov 2026 11:00"),
        "{:?}",
        report.summary.refused
    );
    let presses = report.timeline.iter().filter(|e| e.kind == "ptm").count();
    assert_eq!(presses, 13);
    // The PTM boluses are part of the prescription: no day is off.
    assert!(days_off(&report).is_empty());
    assert_eq!(report.summary.prescribed, report.summary.mass_balance.to_csf.mass);
}

#[test]
fn an_unprimed_catheter_leaves_the_patient_without_drug_until_it_fills() {
    let text = example_text("year-simple-continuous").replace("prime = true", "prime = false");
    let report = run_text("unprimed", &text);
    // 0.31 mL of tubing and catheter at 0.2 mL/day: 37.2 hours before any drug arrives. The
    // moment the catheter fills is found from the volumes within a step, to the nanolitre (0.4 s
    // at 0.2 mL/day).
    let without = report.summary.time_without_drug.as_ms();
    assert!(without.abs_diff(133_920_000) < 1_000, "{without} ms");
    assert_eq!(report.summary.periods_without_drug[0].start, report.summary.start);
}

#[test]
fn nothing_for_people_is_debug_text_or_a_code_name() {
    for name in ["catheter-leak", "mri-delayed-recovery", "flex-nightly-ptm", "missed-refill"] {
        let report = run_example(name);
        for entry in &report.timeline {
            assert!(!entry.text.contains('{') && !entry.text.contains("ppm"), "{name}: {}", entry.text);
            assert!(!entry.text.contains("_"), "{name}: {}", entry.text);
        }
        for refused in &report.summary.refused {
            assert!(!refused.reason.contains('_') && !refused.reason.contains('Z'), "{}", refused.reason);
        }
    }
}

#[test]
fn a_refusal_names_the_alarm_in_words() {
    let text = format!(
        "{}\n[[actions]]\nat = \"2 day\"\naction = \"clear_alarm\"\nalarm = \"low_reservoir\"\n",
        example_text("catheter-leak").split("[[actions]]").next().expect("head")
    );
    let report = run_text("clear an alarm that is not sounding", &text);
    assert_eq!(report.summary.refused.len(), 1);
    assert_eq!(report.summary.refused[0].code, "alarm_not_active");
    assert_eq!(report.summary.refused[0].reason, "the low reservoir alarm is not sounding");
}

#[test]
fn ten_years_stay_bounded() {
    let text = std::fs::read_to_string(format!("{}/benches/ten-years.toml", env!("CARGO_MANIFEST_DIR"))).expect("read");
    let report = run_text("ten years", &text);
    assert!(report.samples.len() <= itb_sim::run::SAMPLES_MAX, "{}", report.samples.len());
    assert!(report.timeline.len() <= itb_sim::run::TIMELINE_MAX);
    assert!(report.summary.alarms.len() <= itb_sim::run::ALARMS_MAX);
    assert!(report.csf_per_day.len() <= 3_654, "{}", report.csf_per_day.len());
    assert!(report.summary.periods_without_drug.len() <= itb_sim::account::PERIODS_MAX);
    assert!(report.samples.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "samples in time order");
    // The pump reaches End of Service at 7 years and nobody replaces it.
    assert_eq!(report.summary.state, "end_of_service");
    assert!(report.summary.time_without_drug > Duration::days(365));
}
