//! The pump's side of the link, without a socket: roles, staging and commit by hash, stale
//! changes, retries.

use itb_dose::{Concentration, DeviceProfile, Volume};
use itb_link::Role;
use itb_link::device::Device;
use itb_link::message::{self, Request, RequestBody, Response, ResponseBody, StagedChange};
use itb_pump::{Implant, Instant, Pump, PumpTime};

fn start() -> Instant {
    Instant::from_timestamp("2026-11-25T10:00:00Z".parse().expect("valid"))
}

fn device() -> Device {
    let prescription = itb_dose::toml::from_toml(
        "mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n[ptm]\nbolus_dose = \"20 micrograms\"\n\
         bolus_duration = \"10 min\"\nlockout = \"2 h\"\nmax_boluses_per_day = 3\n",
    )
    .expect("valid");
    Device::new(
        Pump::implant(Implant {
            profile: DeviceProfile::built_in("synchromed-ii-20").expect("profile"),
            at: start(),
            clock: PumpTime::from_ms(start().as_ms()),
            catheter_cm: 50,
            rate_error_ppm: 0,
            fill: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            prescription,
        })
        .expect("implant"),
    )
}

fn ask(device: &mut Device, role: Role, at: Instant, id: u64, body: RequestBody) -> ResponseBody {
    let outcome = device.handle(role, at, &message::encode(&Request { id, body }));
    let response: Response = message::decode(&outcome.response).expect("a response");
    assert_eq!(response.id, id);
    response.body
}

fn refusal_code(body: &ResponseBody) -> &str {
    match body {
        ResponseBody::Refused { code, .. } => code,
        _ => "",
    }
}

const NEW_THERAPY: &str = "mode = \"simple_continuous\"\ndose = \"460 micrograms/day\"\n";

#[test]
fn a_patient_session_can_ask_for_a_bolus_and_nothing_else() {
    let mut device = device();
    let t = start().plus(itb_dose::Duration::hours(1));
    for (id, body) in [
        RequestBody::Interrogate {},
        RequestBody::StageTherapy { prescription_toml: NEW_THERAPY.to_owned() },
        RequestBody::Stop { reason: None },
        RequestBody::SingleBolus { dose_ng: 50_000, duration_ms: 600_000, then_stop: false, reason: None },
        RequestBody::Commit { hash: vec![0; 32], reason: None },
    ]
    .into_iter()
    .enumerate()
    {
        let answer = ask(&mut device, Role::Patient, t, 100 + id as u64, body.clone());
        assert_eq!(refusal_code(&answer), "not_permitted", "{body:?}");
    }
    assert!(matches!(
        ask(&mut device, Role::Patient, t, 2, RequestBody::PtmStatus {}),
        ResponseBody::PtmStatus { allowed_per_24h: 3, .. }
    ));
    assert!(matches!(
        ask(&mut device, Role::Patient, t, 3, RequestBody::PtmBolus {}),
        ResponseBody::BolusStarted { dose_ng: 20_000, .. }
    ));
}

#[test]
fn a_retried_bolus_delivers_once() {
    let mut device = device();
    let t = start().plus(itb_dose::Duration::hours(1));
    let first = ask(&mut device, Role::Patient, t, 9, RequestBody::PtmBolus {});
    let again = ask(&mut device, Role::Patient, t.plus(itb_dose::Duration::seconds(3)), 9, RequestBody::PtmBolus {});
    assert_eq!(first, again);
    assert_eq!(device.pump().log().count(itb_pump::EventKind::PtmBolus), 1);
    // A new id within the lockout is refused with the time it will be allowed.
    let refused =
        ask(&mut device, Role::Patient, t.plus(itb_dose::Duration::minutes(30)), 10, RequestBody::PtmBolus {});
    match refused {
        ResponseBody::Refused { code, retry_at_ms, .. } => {
            assert_eq!(code, "ptm_lockout");
            assert_eq!(retry_at_ms, Some(t.plus(itb_dose::Duration::hours(2)).as_ms()));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn request_ids_are_whole_at_the_pump() {
    // Ids a and a + 2^63 used to reach the pump as the same id (shifted left by one).
    let mut device = device();
    let t = start().plus(itb_dose::Duration::hours(1));
    let first = ask(&mut device, Role::Patient, t, 9, RequestBody::PtmBolus {});
    let later = t.plus(itb_dose::Duration::hours(3));
    let second = ask(&mut device, Role::Patient, later, 9 + (1 << 63), RequestBody::PtmBolus {});
    assert!(matches!(second, ResponseBody::BolusStarted { .. }), "{second:?}");
    assert_ne!(first, second);
    assert_eq!(device.pump().log().count(itb_pump::EventKind::PtmBolus), 2);
}

#[test]
fn therapy_changes_are_staged_reviewed_and_committed_by_hash() {
    let mut device = device();
    let t = start().plus(itb_dose::Duration::days(2));
    let staged = match ask(
        &mut device,
        Role::Clinician,
        t,
        1,
        RequestBody::StageTherapy { prescription_toml: NEW_THERAPY.to_owned() },
    ) {
        ResponseBody::Staged(staged) => staged,
        other => panic!("expected a staged change, got {other:?}"),
    };
    // What the pump will do, and the state it was staged against: no clinical advice.
    let expected = itb_dose::toml::to_toml(&itb_dose::toml::from_toml(NEW_THERAPY).expect("valid"));
    assert_eq!(staged.change, StagedChange::Therapy { prescription_toml: expected });
    assert_eq!(staged.against.program_number, 1);
    assert_eq!(staged.against.reservoir_nl, 19_600_000);
    // Nothing changes until the commit.
    assert_eq!(device.pump().status().program_number, 1);
    let wrong = ask(&mut device, Role::Clinician, t, 2, RequestBody::Commit { hash: vec![7; 32], reason: None });
    assert_eq!(refusal_code(&wrong), "hash_mismatch");
    assert_eq!(device.pump().status().program_number, 1);
    let done = ask(&mut device, Role::Clinician, t, 3, RequestBody::Commit { hash: staged.hash.clone(), reason: None });
    assert!(matches!(done, ResponseBody::Done { .. }), "{done:?}");
    assert_eq!(device.pump().status().program_number, 2);
    // The same commit retried answers the same and programs nothing more.
    assert_eq!(
        ask(&mut device, Role::Clinician, t, 3, RequestBody::Commit { hash: staged.hash.clone(), reason: None }),
        done
    );
    assert_eq!(device.pump().status().program_number, 2);
}

#[test]
fn a_stale_or_expired_staged_change_is_refused_and_the_old_therapy_runs() {
    let mut device = device();
    let t = start().plus(itb_dose::Duration::days(2));
    let ResponseBody::Staged(staged) = ask(
        &mut device,
        Role::Clinician,
        t,
        1,
        RequestBody::StageTherapy { prescription_toml: NEW_THERAPY.to_owned() },
    ) else {
        panic!("staged");
    };
    // Someone stops and resumes the pump in between: the reviewed "old" is no longer true.
    ask(&mut device, Role::Clinician, t, 2, RequestBody::Stop { reason: None });
    ask(&mut device, Role::Clinician, t, 3, RequestBody::Resume { reason: None });
    let old = device.pump().status().prescription;
    let stale =
        ask(&mut device, Role::Clinician, t, 4, RequestBody::Commit { hash: staged.hash.clone(), reason: None });
    assert_eq!(refusal_code(&stale), "stale_change");
    assert_eq!(device.pump().status().program_number, 1);
    assert_eq!(device.pump().status().prescription, old, "the old therapy runs, unchanged");
    assert_eq!(device.pump().log().count(itb_pump::EventKind::TherapyProgrammed), 1);
    // Staged, then the session goes away: after 10 minutes the change is gone.
    let ResponseBody::Staged(again) = ask(
        &mut device,
        Role::Clinician,
        t,
        5,
        RequestBody::StageTherapy { prescription_toml: NEW_THERAPY.to_owned() },
    ) else {
        panic!("staged");
    };
    let late = ask(
        &mut device,
        Role::Clinician,
        t.plus(itb_dose::Duration::minutes(11)),
        6,
        RequestBody::Commit { hash: again.hash, reason: None },
    );
    assert_eq!(refusal_code(&late), "nothing_staged");
    assert_eq!(device.pump().status().state, itb_pump::DeliveryState::Therapy);
}

#[test]
fn a_refill_is_withdraw_then_stage_then_commit() {
    let mut device = device();
    let t = start().plus(itb_dose::Duration::days(60));
    let stage = RequestBody::StageRefill { fill_nl: 20_000_000, concentration_ng_per_ml: 500_000, bridge: true };
    // Out of limits is refused before anything is withdrawn; within limits, the withdrawal comes first.
    let too_much = RequestBody::StageRefill { fill_nl: 25_000_000, concentration_ng_per_ml: 500_000, bridge: true };
    assert_eq!(refusal_code(&ask(&mut device, Role::Clinician, t, 11, too_much)), "fill_above_capacity");
    assert_eq!(refusal_code(&ask(&mut device, Role::Clinician, t, 1, stage.clone())), "not_withdrawn");
    let withdrawn = ask(&mut device, Role::Clinician, t, 2, RequestBody::WithdrawReservoir {});
    assert_eq!(
        withdrawn,
        ResponseBody::Withdrawn { withdrawn_nl: 8_000_000, expected_nl: 8_000_000, at_ms: t.as_ms() }
    );
    // The pump's log says what came out, and the pump believes its reservoir empty.
    assert_eq!(device.pump().status().reservoir, Volume::ZERO);
    assert!(device.pump().status().awaiting_refill);
    let ResponseBody::Staged(staged) = ask(&mut device, Role::Clinician, t, 3, stage) else { panic!("staged") };
    assert_eq!(
        staged.change,
        StagedChange::Refill { fill_nl: 20_000_000, concentration_ng_per_ml: 500_000, bridge: true }
    );
    let done = ask(&mut device, Role::Clinician, t, 4, RequestBody::Commit { hash: staged.hash, reason: None });
    assert_eq!(done, ResponseBody::Done { message: "refilled; bridge bolus running".to_owned() });
    assert_eq!(device.pump().world().reservoir().volume, Volume::ml(20));
    // Over the hard limit: refused at staging, nothing staged.
    ask(&mut device, Role::Clinician, t, 5, RequestBody::WithdrawReservoir {});
    let too_much = RequestBody::StageRefill { fill_nl: 25_000_000, concentration_ng_per_ml: 500_000, bridge: true };
    assert_eq!(refusal_code(&ask(&mut device, Role::Clinician, t, 6, too_much)), "fill_above_capacity");
}

/// Ids `a` and `a + 2^63` are different requests; a reused id with another body is refused and
/// does nothing; the same request again gets the first answer and acts once.
#[test]
fn idempotency_is_keyed_by_the_request_itself() {
    let mut device = device();
    let t = start().plus(itb_dose::Duration::days(1));
    let bolus = || RequestBody::SingleBolus { dose_ng: 50_000, duration_ms: 600_000, then_stop: false, reason: None };
    let a = 41;
    let first = ask(&mut device, Role::Clinician, t, a, bolus());
    assert!(matches!(first, ResponseBody::BolusStarted { dose_ng: 50_000, .. }), "{first:?}");
    let later = t.plus(itb_dose::Duration::hours(1));
    let second = ask(&mut device, Role::Clinician, later, a + (1 << 63), bolus());
    assert!(
        matches!(second, ResponseBody::BolusStarted { dose_ng: 50_000, .. }),
        "a new bolus, not the old answer: {second:?}"
    );
    assert_eq!(device.pump().log().count(itb_pump::EventKind::SingleBolusStarted), 2);
    // The same request again: the first answer, and nothing more delivered.
    assert_eq!(ask(&mut device, Role::Clinician, later, a + (1 << 63), bolus()), second);
    assert_eq!(device.pump().log().count(itb_pump::EventKind::SingleBolusStarted), 2);
    // A stop reusing an id: refused, and the pump runs on.
    let reused = ask(&mut device, Role::Clinician, later, a, RequestBody::Stop { reason: None });
    assert_eq!(refusal_code(&reused), "request_id_reused");
    assert_eq!(device.pump().log().count(itb_pump::EventKind::Stopped), 0);
    assert_ne!(device.pump().status().state, itb_pump::DeliveryState::Stopped);
    // The same id from the other role is another request.
    assert!(matches!(
        ask(&mut device, Role::Patient, later, a, RequestBody::PtmStatus {}),
        ResponseBody::PtmStatus { .. }
    ));
}

/// An unknown field beside a request without fields, written by an independent encoder, is
/// refused and does nothing.
#[test]
fn an_unknown_field_is_refused_and_nothing_is_done() {
    use ciborium::Value::{Bool, Integer, Map, Text};
    let mut device = device();
    let t = start().plus(itb_dose::Duration::hours(2));
    let stop = Map(vec![
        (Text("id".into()), Integer(5.into())),
        (
            Text("body".into()),
            Map(vec![(Text("type".into()), Text("stop".into())), (Text("force".into()), Bool(true))]),
        ),
    ]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&stop, &mut bytes).expect("encodes");
    let outcome = device.handle(Role::Clinician, t, &bytes);
    let response: Response = message::decode(&outcome.response).expect("a response");
    assert_eq!(refusal_code(&response.body), "malformed");
    assert!(!outcome.changed);
    assert_eq!(device.pump().status().state, itb_pump::DeliveryState::Therapy);
    assert_eq!(device.pump().log().count(itb_pump::EventKind::Stopped), 0);
}

#[test]
fn garbage_is_refused_without_acting() {
    let mut device = device();
    let outcome = device.handle(Role::Clinician, start(), &[0xde, 0xad, 0xbe, 0xef]);
    assert!(!outcome.changed);
    let response: Response = message::decode(&outcome.response).expect("a response");
    assert_eq!(refusal_code(&response.body), "malformed");
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Bytes from anywhere never panic the device, and a patient's never change the therapy.
        #[test]
        fn arbitrary_payloads_never_panic_or_reprogram(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..256), 1..8)) {
            let mut device = device();
            for payload in payloads {
                let outcome = device.handle(Role::Patient, start(), &payload);
                prop_assert!(message::decode::<Response>(&outcome.response).is_ok());
                prop_assert_eq!(device.pump().status().program_number, 1);
                let outcome = device.handle(Role::Clinician, start(), &payload);
                prop_assert!(message::decode::<Response>(&outcome.response).is_ok());
            }
        }
    }
}

#[test]
fn the_replace_by_date_is_always_set_and_never_beyond_the_service_life() {
    let mut device = device();
    // 7 x 365.25 days.
    let service_life_end = start().plus(itb_dose::Duration::ms(2_556 * 86_400_000 + 18 * 3_600_000));
    for days in [0u64, 1, 300, 2000] {
        let at = start().plus(itb_dose::Duration::days(days));
        let ResponseBody::Status(status) =
            ask(&mut device, Role::Clinician, at, 100 + days, RequestBody::Interrogate {})
        else {
            panic!("status");
        };
        assert!(status.replace_by_ms > at.as_ms(), "day {days}");
        assert!(status.replace_by_ms <= service_life_end.as_ms(), "day {days}");
    }
}

mod random_sessions {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Wait(u64),
        Clinician(RequestBody),
        CommitStaged,
        Patient(RequestBody),
    }

    fn clinician() -> impl Strategy<Value = RequestBody> {
        prop_oneof![
            Just(RequestBody::Interrogate {}),
            (50u64..=900).prop_map(|d| RequestBody::StageTherapy {
                prescription_toml: format!("mode = \"simple_continuous\"\ndose = \"{d} micrograms/day\"\n")
            }),
            Just(RequestBody::WithdrawReservoir {}),
            (0u64..=25, prop::sample::select(vec![500_000u64, 2_000_000, 3_000_000]), any::<bool>()).prop_map(
                |(ml, c, bridge)| RequestBody::StageRefill {
                    fill_nl: ml * 1_000_000,
                    concentration_ng_per_ml: c,
                    bridge
                }
            ),
            prop::collection::vec(any::<u8>(), 32).prop_map(|hash| RequestBody::Commit { hash, reason: None }),
            Just(RequestBody::Discard {}),
            Just(RequestBody::Stop { reason: None }),
            Just(RequestBody::Resume { reason: None }),
            Just(RequestBody::PostMriCheck {}),
            (1u64..=5).prop_map(|ml| RequestBody::SetAlarmThreshold { threshold_nl: ml * 1_000_000, reason: None }),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0u64..=3 * 86_400_000).prop_map(Step::Wait),
            4 => clinician().prop_map(Step::Clinician),
            2 => Just(Step::CommitStaged),
            2 => prop_oneof![Just(RequestBody::PtmBolus {}), Just(RequestBody::PtmStatus {}), Just(RequestBody::Stop { reason: None })].prop_map(Step::Patient),
        ]
    }

    /// What a review showed, as the test sees it: everything a change must not have moved.
    type Seen = (u64, u64, bool, String, Vec<String>, Vec<u64>);

    fn seen(device: &Device) -> Seen {
        use itb_pump::EventKind::*;
        let status = device.pump().status();
        let log = device.pump().log();
        (
            status.program_number,
            status.alarm_threshold.as_nl(),
            status.awaiting_refill,
            status.state.as_str().to_owned(),
            status.alarms.iter().map(|a| a.kind.as_str().to_owned()).collect(),
            [Stopped, Resumed, Refilled, ReservoirWithdrawn, ClockSet, AlarmThresholdSet, AlarmRaised, AlarmCleared]
                .iter()
                .map(|kind| log.count(*kind))
                .collect(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever two sessions send, the therapy changes only by a commit of a staged
        /// summary's hash, a patient never changes it, and mass balance holds.
        #[test]
        fn therapy_changes_only_by_a_committed_hash(steps in prop::collection::vec(step(), 1..40)) {
            let mut device = device();
            let mut t = start();
            let mut last_hash: Option<Vec<u8>> = None;
            let mut staged_against: Option<(Seen, itb_pump::Instant)> = None;
            for (index, step) in steps.into_iter().enumerate() {
                let id = index as u64 + 1;
                let before = device.pump().status().program_number;
                let refills_before = device.pump().log().count(itb_pump::EventKind::Refilled);
                let mut committed = false;
                match step {
                    Step::Wait(ms) => t = t.plus(itb_dose::Duration::ms(ms)),
                    Step::Clinician(body) => {
                        let is_commit = matches!(body, RequestBody::Commit { .. });
                        let answer = ask(&mut device, Role::Clinician, t, id, body);
                        if let ResponseBody::Staged(staged) = &answer {
                            last_hash = Some(staged.hash.clone());
                            staged_against = Some((seen(&device), t));
                        }
                        // A random hash never commits.
                        if is_commit {
                            prop_assert!(matches!(answer, ResponseBody::Refused { .. }), "{answer:?}");
                        }
                    }
                    Step::CommitStaged => {
                        let hash = last_hash.clone().unwrap_or_default();
                        let now_seen = {
                            device.advance_to(t);
                            seen(&device)
                        };
                        let answer = ask(&mut device, Role::Clinician, t, id, RequestBody::Commit { hash, reason: None });
                        committed = matches!(answer, ResponseBody::Done { .. });
                        // A commit applies only against the state it was staged against, within
                        // 10 minutes: a stale commit that went through would fail here.
                        if committed {
                            let (staged_seen, staged_at) = staged_against.clone().expect("something was staged");
                            prop_assert_eq!(&now_seen, &staged_seen, "committed against a changed pump at step {}", index);
                            prop_assert!(t < staged_at.plus(itb_dose::Duration::minutes(10)), "committed after expiry");
                        }
                    }
                    Step::Patient(body) => {
                        ask(&mut device, Role::Patient, t, id, body);
                    }
                }
                let status = device.pump().status();
                let refilled = device.pump().log().count(itb_pump::EventKind::Refilled) > refills_before;
                prop_assert!(status.program_number == before || committed, "program changed without a commit at step {index}");
                prop_assert!(!refilled || committed, "refilled without a commit at step {index}");
                prop_assert!(device.pump().world().mass_balance_holds());
            }
        }
    }
}

/// An id the firmware would refuse never touches the reservoir: the device asks the firmware's
/// memory first (the device's own memory of answers is bounded and volatile).
#[test]
fn a_reused_id_never_withdraws_or_injects() {
    let mut device = device();
    let t = start().plus(itb_dose::Duration::days(10));
    ask(&mut device, Role::Clinician, t, 5, RequestBody::SetAlarmThreshold { threshold_nl: 3_000_000, reason: None });
    // Enough other requests for the device to forget id 5; the firmware remembers it.
    for id in 100..170 {
        ask(&mut device, Role::Clinician, t, id, RequestBody::Interrogate {});
    }
    let before = device.pump().world().reservoir().volume;
    let reused = ask(&mut device, Role::Clinician, t, 5, RequestBody::WithdrawReservoir {});
    assert_eq!(refusal_code(&reused), "request_id_reused");
    assert_eq!(device.pump().world().reservoir().volume, before, "nothing was withdrawn");
    assert!(!device.pump().status().awaiting_refill);
    // A second withdrawal while one is recorded is refused too, and withdraws nothing.
    let first = ask(&mut device, Role::Clinician, t, 200, RequestBody::WithdrawReservoir {});
    assert!(matches!(first, ResponseBody::Withdrawn { .. }), "{first:?}");
    let second = ask(&mut device, Role::Clinician, t, 201, RequestBody::WithdrawReservoir {});
    assert_eq!(refusal_code(&second), "already_withdrawn");
    let recorded = device.pump().status().withdrawal.expect("recorded until the refill");
    assert_eq!(recorded.withdrawn, before);
}

/// The device restarts between a withdrawal and its retry (its answers are volatile): the retry
/// is answered with what the firmware recorded, not refused as a reused id.
#[test]
fn a_withdrawal_retried_after_a_restart_gets_what_was_recorded() {
    let mut device = device();
    let t = start().plus(itb_dose::Duration::days(10));
    let first = ask(&mut device, Role::Clinician, t, 42, RequestBody::WithdrawReservoir {});
    let ResponseBody::Withdrawn { withdrawn_nl, expected_nl, .. } = first.clone() else { panic!("{first:?}") };
    let mut restarted = Device::new(device.pump().clone());
    let retry = ask(
        &mut restarted,
        Role::Clinician,
        t.plus(itb_dose::Duration::seconds(5)),
        42,
        RequestBody::WithdrawReservoir {},
    );
    assert_eq!(retry, first);
    assert_eq!((withdrawn_nl, expected_nl), (18_000_000, 18_000_000));
    assert_eq!(restarted.pump().world().reservoir().volume, Volume::ZERO);
}
