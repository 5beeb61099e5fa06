//! The programmer's workflows against a virtual pump behind the real channel: the seams found
//! in review, each as a test that failed before the change.

mod common;

use common::{Bench, CONTINUOUS_400_PTM, block, prescription};
use itb_dose::calc::titrate::{LastIncrease, Origin};
use itb_dose::review::{OverrideReason, Patient, Severity, WarningCode};
use itb_dose::{Concentration, Duration, Volume};
use itb_programmer::{Action, Confirmation, Done, ProgrammerError};
use itb_pump::{AlarmKind, Event};

fn reason(text: &str) -> Confirmation {
    Confirmation::Override(OverrideReason::parse(text).expect("a reason"))
}

/// Plans and carries out a setting, with a reason when its warning needs one.
async fn act(programmer: &mut itb_programmer::Programmer<itb_programmer::MemoryLink>, action: Action) {
    let planned = programmer.plan(action).await.expect("planned");
    let confirmation = if planned.warning().needs_override() {
        reason("a test of this setting, intended")
    } else {
        Confirmation::Reviewed
    };
    programmer.carry_out(&planned, confirmation).await.expect("done");
}

fn codes(change: &itb_programmer::PendingChange) -> Vec<WarningCode> {
    change.review().warnings.iter().map(|w| w.code).collect()
}

const SPINAL_ADULT: Patient = Patient { origin: Some(Origin::Spinal), age_years: Some(45) };

/// Withdrawn, then the nurse declines: the pump's log says what came out and when, the pump
/// believes its reservoir empty and alarms, and the refill can go on later from the recorded
/// withdrawal without blaming the pump for the missing drug.
#[test]
fn a_refill_declined_after_the_withdrawal_leaves_the_truth_in_the_log() {
    let bench = Bench::new(CONTINUOUS_400_PTM);
    bench.wait(Duration::days(30));
    block(async {
        let mut programmer = bench.programmer();
        let before = programmer.interrogate().await.expect("status");
        // 30 days at 0.2 mL/day.
        assert_eq!(before.reservoir, Volume::ml(14));
        let (fill, drug) = (Volume::ml(20), Concentration::micrograms_per_ml(2000));
        programmer.check_refill(fill, drug, true).await.expect("within limits");
        let withdrawal = programmer.withdraw(before.refill_gap_limit).await.expect("withdrawn");
        assert_eq!((withdrawal.withdrawn, withdrawal.expected), (Volume::ml(14), Volume::ml(14)));
        assert!(!withdrawal.gap.stops_the_refill());
        let staged = programmer.stage_refill(fill, drug, true).await.expect("staged");
        assert_eq!(staged.after().reservoir, fill);
        assert_eq!(staged.withdrawal(), Some(withdrawal), "the gap comes from what the pump recorded");
        // The nurse declines.
        programmer.discard().await.expect("discarded");
        let after = programmer.interrogate().await.expect("status");
        assert_eq!(after.reservoir, Volume::ZERO, "the pump believes what came out");
        assert!(after.awaiting_refill);
        assert!(after.alarms.iter().any(|a| a.kind == AlarmKind::EmptyReservoir), "{:?}", after.alarms);
        let log = programmer.read_log(1, 256).await.expect("log");
        let recorded = log
            .entries
            .iter()
            .find_map(|e| match e.event {
                Event::ReservoirWithdrawn { withdrawn_nl, expected_nl } => Some((withdrawn_nl, expected_nl)),
                _ => None,
            })
            .expect("the withdrawal is in the pump's log");
        assert_eq!(recorded, (14_000_000, 14_000_000));
        // An hour later the refill goes on from the recorded withdrawal.
        bench.wait(Duration::hours(1));
        let status = programmer.interrogate().await.expect("status");
        let again = status.withdrawal.expect("the pump keeps the withdrawal until the refill");
        assert_eq!(again.withdrawn, Volume::ml(14));
        assert_eq!(again.at, withdrawal.at);
        // A second withdrawal is refused: it would hide the first one's gap.
        match programmer.withdraw(status.refill_gap_limit).await {
            Err(ProgrammerError::Refused(refused)) => assert_eq!(refused.code, "already_withdrawn"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        programmer.check_refill(fill, drug, true).await.expect("within limits");
        let staged = programmer.stage_refill(fill, drug, true).await.expect("staged");
        let committed = programmer.commit(&staged, Confirmation::Reviewed).await.expect("committed");
        let status = committed.status.expect("interrogated after");
        assert_eq!(status.reservoir, fill);
        assert!(!status.awaiting_refill);
        assert_eq!(status.withdrawal, None);
        assert!(status.alarms.is_empty(), "{:?}", status.alarms);
        let log = programmer.read_log(1, 256).await.expect("log");
        let refilled = log.entries.iter().rev().find_map(|e| match e.event {
            Event::Refilled { expected_nl, .. } => Some(expected_nl),
            _ => None,
        });
        assert_eq!(refilled, Some(0), "the refill expected nothing left: no over-infusion is blamed");
    });
}

/// A flex step typed per hour instead of per day, with no origin or age given: "yes" is not
/// enough; a written reason is, and it is kept in the pump's log.
#[test]
fn a_rate_entered_per_hour_needs_a_written_reason_not_yes() {
    // 120 micrograms/day intended from 08:00 to 10:00; 120 micrograms an hour programmed.
    let bench = Bench::new("mode = \"simple_continuous\"\ndose = \"120 micrograms/day\"\n");
    bench.wait(Duration::days(2));
    let flex = prescription(
        "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"120 micrograms/day\"\n[[flex.steps]]\nstart = \"08:00\"\nrate = \"2880 micrograms/day\"\n[[flex.steps]]\nstart = \"10:00\"\nrate = \"120 micrograms/day\"\n",
    );
    block(async {
        let mut programmer = bench.programmer();
        let change = programmer.stage_therapy(&flex, Patient::default()).await.expect("staged");
        assert!(change.review().needs_override());
        assert!(codes(&change).contains(&WarningCode::PerHourSuspected), "{:?}", codes(&change));
        let refused = programmer.commit(&change, Confirmation::Reviewed).await;
        assert!(
            matches!(&refused, Err(ProgrammerError::NeedsOverride(dangers)) if dangers.iter().all(|w| w.severity == Severity::Danger)),
            "{refused:?}"
        );
        assert_eq!(bench.pump(|p| p.status().program_number), 1, "nothing was committed");
        let committed = programmer
            .commit(&change, reason("intended: consultant's rescue plan for night spasms"))
            .await
            .expect("committed with a reason");
        assert_eq!(committed.status.expect("status").program_number, 2);
        let log = programmer.read_log(1, 256).await.expect("log");
        let kept: Vec<String> = log
            .entries
            .iter()
            .filter_map(|e| match e.event {
                Event::ClinicianReason { reason } => Some(reason.as_str().to_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(kept, vec!["intended: consultant's rescue plan for night spasms".to_owned()]);
    });
}

/// The 24-hour rule reads the pump's log as data, with clock settings undone.
#[test]
fn the_titration_check_reads_the_pumps_history_as_data() {
    let bench = Bench::new(CONTINUOUS_400_PTM);
    bench.wait(Duration::days(2));
    let dose = |micrograms: u64| {
        prescription(&CONTINUOUS_400_PTM.replace("400 micrograms/day", &format!("{micrograms} micrograms/day")))
    };
    block(async {
        let mut programmer = bench.programmer();
        let first = programmer.stage_therapy(&dose(440), SPINAL_ADULT).await.expect("staged");
        assert_eq!(*first.last_increase(), LastIncrease::Known(None));
        assert!(!first.review().needs_override(), "{:?}", first.review().warnings);
        programmer.commit(&first, Confirmation::Reviewed).await.expect("within the guideline");
        // The clock is set back an hour (the end of summer time) two hours later.
        bench.wait(Duration::hours(2));
        let status = programmer.interrogate().await.expect("status");
        let back = status.pump_clock.checked_sub(jiff::Span::new().hours(1)).expect("an hour back");
        act(&mut programmer, Action::SetClock { reading: back }).await;
        // 23 hours after the increase (22 on the pump's clock): too soon.
        bench.wait(Duration::hours(21));
        let soon = programmer.stage_therapy(&dose(480), SPINAL_ADULT).await.expect("staged");
        assert_eq!(*soon.last_increase(), LastIncrease::Known(Some(Duration::hours(23))));
        assert_eq!(soon.review().warnings[0].code, WarningCode::IncreaseTooSoon);
        assert!(matches!(
            programmer.commit(&soon, Confirmation::Reviewed).await,
            Err(ProgrammerError::NeedsOverride(_))
        ));
        programmer.discard().await.expect("discarded");
        // 24 h 30 min after it (23 h 30 min on the pump's clock): allowed.
        bench.wait(Duration::minutes(90));
        let later = programmer.stage_therapy(&dose(480), SPINAL_ADULT).await.expect("staged");
        assert_eq!(*later.last_increase(), LastIncrease::Known(None));
        assert!(!later.review().needs_override(), "{:?}", later.review().warnings);
        programmer.commit(&later, Confirmation::Reviewed).await.expect("committed");
    });
}

/// When the log's ring has overwritten the last 24 hours, the check cannot run: the increase
/// stops unless overridden.
#[test]
fn a_titration_check_that_cannot_run_stops_the_increase() {
    let bench = Bench::new(CONTINUOUS_400_PTM);
    bench.wait(Duration::days(2));
    block(async {
        let mut programmer = bench.programmer();
        for round in 0..1_100u64 {
            let threshold = if round % 2 == 0 { Volume::ml(3) } else { Volume::ml(2) };
            act(&mut programmer, Action::SetAlarmThreshold { threshold }).await;
        }
        let capacity = bench.pump(|p| p.log().capacity() as u64);
        assert!(bench.pump(|p| p.log().next_seq()) > capacity + 1, "the ring has wrapped");
        let change = programmer
            .stage_therapy(&prescription(&CONTINUOUS_400_PTM.replace("400", "440")), SPINAL_ADULT)
            .await
            .expect("staged");
        assert!(matches!(change.last_increase(), LastIncrease::Unknown(_)), "{:?}", change.last_increase());
        assert_eq!(change.review().warnings[0].code, WarningCode::TitrationHistoryUnknown);
        assert!(matches!(
            programmer.commit(&change, Confirmation::Reviewed).await,
            Err(ProgrammerError::NeedsOverride(_))
        ));
        programmer
            .commit(&change, reason("checked the clinic record: no increase this week"))
            .await
            .expect("overridden");
    });
}

/// A change staged against one pump state is refused against another: after a withdrawal, a
/// threshold change, a clock setting, an alarm, a stop and resume. The old therapy runs on,
/// exactly as it was.
#[test]
fn a_staged_change_is_stale_when_anything_it_showed_has_changed() {
    type Meddle = fn(&Bench) -> ();
    let meddles: [(&str, Meddle); 5] = [
        ("withdrawal", |bench| {
            block(async {
                bench.programmer().withdraw(Volume::ml(1)).await.expect("withdrawn");
            })
        }),
        ("threshold", |bench| {
            block(async {
                act(&mut bench.programmer(), Action::SetAlarmThreshold { threshold: Volume::ml(3) }).await;
            })
        }),
        ("clock", |bench| {
            block(async {
                let mut programmer = bench.programmer();
                let status = programmer.interrogate().await.expect("status");
                let reading = status.pump_clock.checked_add(jiff::Span::new().minutes(2)).expect("reading");
                act(&mut programmer, Action::SetClock { reading }).await;
            })
        }),
        ("alarm", |bench| {
            // The reservoir reaches its alarm threshold while the change waits.
            bench.wait(Duration::minutes(9));
            let _ = bench.pump(|p| p.status());
        }),
        ("stop and resume", |bench| {
            block(async {
                let mut programmer = bench.programmer();
                programmer
                    .stop(&OverrideReason::parse("patient to theatre for revision").expect("reason"))
                    .await
                    .expect("stopped");
                let planned = programmer.plan(Action::Resume).await.expect("planned");
                programmer.carry_out(&planned, reason("back from theatre within the hour")).await.expect("resumed");
            })
        }),
    ];
    for (what, meddle) in meddles {
        let bench = Bench::new(CONTINUOUS_400_PTM);
        // For the alarm case, 4 minutes before the reservoir reaches 2 mL (90 days at 0.2 mL/day).
        let wait = if what == "alarm" {
            Duration::days(90).checked_sub(Duration::minutes(4)).expect("span")
        } else {
            Duration::days(2)
        };
        bench.wait(wait);
        let old = bench.pump(|p| p.status().prescription);
        let change = block(async {
            bench
                .programmer()
                .stage_therapy(&prescription(&CONTINUOUS_400_PTM.replace("400", "420")), SPINAL_ADULT)
                .await
                .expect("staged")
        });
        meddle(&bench);
        let result = block(async { bench.programmer().commit(&change, Confirmation::Reviewed).await });
        match result {
            Err(ProgrammerError::Refused(refused)) => assert_eq!(refused.code, "stale_change", "{what}"),
            other => panic!("{what}: expected stale_change, got {other:?}"),
        }
        assert_eq!(bench.pump(|p| p.status().prescription), old, "{what}: the old therapy runs");
        assert_eq!(bench.pump(|p| p.status().program_number), 1, "{what}");
    }
}

/// The patient's therapy manager over the same library: a bolus, then the lockout with its
/// time.
#[test]
fn the_ptm_asks_for_a_bolus_within_the_clinicians_limits() {
    let bench = Bench::new(CONTINUOUS_400_PTM);
    bench.wait(Duration::hours(3));
    block(async {
        let mut ptm = bench.ptm();
        let bolus = ptm.bolus().await.expect("a bolus");
        assert_eq!(bolus.dose, itb_dose::Mass::micrograms(20));
        bench.wait(Duration::minutes(30));
        match ptm.bolus().await {
            Err(ProgrammerError::Refused(refused)) => {
                assert_eq!(refused.code, "ptm_lockout");
                let expected = jiff::Timestamp::from_millisecond(common::start().as_ms()).expect("start")
                    + jiff::SignedDuration::from_hours(5);
                assert_eq!(refused.retry_at, Some(expected));
            }
            other => panic!("expected the lockout, got {other:?}"),
        }
        let status = ptm.status().await.expect("status");
        assert_eq!((status.boluses_last_24h, status.allowed_per_24h), (1, 3));
    });
}

/// A priming bolus, a large single bolus and a resume after a long stop: each planned, judged
/// and carried out only with a written reason; a small bolus with a "yes".
#[test]
fn boluses_and_restarts_are_confirmed_and_dangerous_ones_need_a_reason() {
    let bench = Bench::new(CONTINUOUS_400_PTM);
    bench.wait(Duration::days(2));
    block(async {
        let mut programmer = bench.programmer();
        // Priming a full catheter would push its whole content into the spinal fluid.
        let prime = programmer.plan(Action::Prime { catheter_only: false }).await.expect("planned");
        assert_eq!(prime.warning().severity, Severity::Danger);
        assert!(prime.warning().sentence.contains("EMPTY catheter"), "{}", prime.warning().sentence);
        assert!(matches!(
            programmer.carry_out(&prime, Confirmation::Reviewed).await,
            Err(ProgrammerError::NeedsOverride(_))
        ));
        assert_eq!(bench.pump(|p| p.log().count(itb_pump::EventKind::PrimingStarted)), 0, "nothing was sent");
        // A 50 microgram bolus: confirmed with a yes.
        let small = programmer
            .plan(Action::SingleBolus { dose: itb_dose::Mass::micrograms(50), over: Duration::minutes(10) })
            .await
            .expect("planned");
        assert_eq!(small.warning().severity, Severity::Caution);
        assert!(matches!(programmer.carry_out(&small, Confirmation::Reviewed).await, Ok(Done::Bolus(_))));
        // Stopped for two days, then resumed: a danger (tolerance falls).
        programmer
            .stop(&OverrideReason::parse("infection: catheter to be removed").expect("reason"))
            .await
            .expect("stopped");
        bench.wait(Duration::days(2));
        let resume = programmer.plan(Action::Resume).await.expect("planned");
        assert_eq!(resume.warning().code, WarningCode::DeliveryRestarts);
        assert_eq!(resume.warning().severity, Severity::Danger);
        assert!(resume.warning().sentence.contains("after 2 days off"), "{}", resume.warning().sentence);
        assert!(matches!(
            programmer.carry_out(&resume, Confirmation::Reviewed).await,
            Err(ProgrammerError::NeedsOverride(_))
        ));
        let resumed = programmer.carry_out(&resume, reason("consultant: resume at full dose, observed on ward")).await;
        assert!(matches!(resumed, Ok(Done::Message(_))), "{resumed:?}");
        // A therapy programmed onto a stopped pump restarts it: the review says so.
        programmer
            .stop(&OverrideReason::parse("infection: catheter to be removed").expect("reason"))
            .await
            .expect("stopped");
        bench.wait(Duration::days(3));
        let change = programmer.stage_therapy(&prescription(CONTINUOUS_400_PTM), SPINAL_ADULT).await.expect("staged");
        assert!(codes(&change).contains(&WarningCode::DeliveryRestarts), "{:?}", codes(&change));
        assert!(change.review().needs_override());
    });
}

/// Judged again when carried out: a resume read after 23 hours off, carried out after 25, is
/// not sent ("yes" was given for a caution that has become a danger).
#[test]
fn a_planned_action_that_became_more_dangerous_is_not_sent() {
    let bench = Bench::new(CONTINUOUS_400_PTM);
    bench.wait(Duration::days(2));
    block(async {
        let mut programmer = bench.programmer();
        programmer
            .stop(&OverrideReason::parse("infection: catheter to be removed").expect("reason"))
            .await
            .expect("stopped");
        bench.wait(Duration::hours(23));
        let resume = programmer.plan(Action::Resume).await.expect("planned");
        assert_eq!(resume.warning().severity, Severity::Caution, "{}", resume.warning().sentence);
        bench.wait(Duration::hours(2));
        match programmer.carry_out(&resume, Confirmation::Reviewed).await {
            Err(ProgrammerError::Changed(now)) => assert_eq!(now.warning().severity, Severity::Danger),
            other => panic!("expected the change to be caught, got {other:?}"),
        }
        assert_eq!(bench.pump(|p| p.status().state), itb_pump::DeliveryState::Stopped);
    });
}

/// Raising six weekdays counts as an increase for the 24-hour rule, though the largest day does
/// not change; and a threshold that leaves hours, not days, needs a reason.
#[test]
fn weekday_increases_count_and_a_short_alarm_warning_needs_a_reason() {
    let weekly = |weekday: u64, saturday: u64| {
        let mut text = String::from("mode = \"flex\"\n");
        for day in itb_dose::prescription::WEEKDAYS {
            let micrograms = if day == "saturday" { saturday } else { weekday };
            text.push_str(&format!("[[flex.{day}]]\nstart = \"00:00\"\nrate = \"{micrograms} micrograms/day\"\n"));
        }
        prescription(&text)
    };
    let bench = Bench::new(CONTINUOUS_400_PTM);
    bench.wait(Duration::days(2));
    block(async {
        let mut programmer = bench.programmer();
        let first = programmer.stage_therapy(&weekly(400, 600), SPINAL_ADULT).await.expect("staged");
        programmer.commit(&first, reason("weekend physiotherapy, plan agreed in clinic")).await.expect("committed");
        bench.wait(Duration::days(2));
        let rise = programmer.stage_therapy(&weekly(480, 600), SPINAL_ADULT).await.expect("staged");
        assert!(!rise.review().needs_override(), "{:?}", codes(&rise));
        programmer.commit(&rise, Confirmation::Reviewed).await.expect("committed");
        bench.wait(Duration::minutes(1));
        let again = programmer.stage_therapy(&weekly(520, 600), SPINAL_ADULT).await.expect("staged");
        assert!(codes(&again).contains(&WarningCode::IncreaseTooSoon), "{:?}", codes(&again));
        programmer.discard().await.expect("discarded");
        let threshold =
            programmer.plan(Action::SetAlarmThreshold { threshold: Volume::nl(1_000) }).await.expect("planned");
        assert_eq!(threshold.warning().code, WarningCode::AlarmThreshold);
        assert!(matches!(
            programmer.carry_out(&threshold, Confirmation::Reviewed).await,
            Err(ProgrammerError::NeedsOverride(_))
        ));
        assert_eq!(bench.pump(|p| p.status().alarm_threshold), Volume::ml(2));
    });
}
