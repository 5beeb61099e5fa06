//! The pump's behaviour at exact instants, one test per behaviour.

mod common;

use common::*;
use itb_dose::calc::refill::{RefillInputs, refill_schedule};
use itb_dose::{Baclofen, Concentration, Duration, Mass, Stability, Volume, VolumeRate};
use itb_pump::world::{CatheterState, InjectInto};
use itb_pump::{
    AlarmKind, Command, DeliveryState, Event, EventKind, Instant, PumpTime, RefusalCode, Reply, WorldAction,
};

fn raised_at(pump: &itb_pump::Pump, kind: AlarmKind) -> Option<Instant> {
    pump.status().alarms.iter().find(|a| a.kind == kind).map(|a| a.raised_at)
}

fn floor_second(at: Instant) -> i64 {
    at.as_ms().div_euclid(1000)
}

#[test]
fn low_reservoir_alarm_matches_the_refill_calculation_to_the_second() {
    for (dose, concentration) in [(400, 2000), (333, 2000), (100, 1500), (777, 500), (45, 50)] {
        let mut pump = implant(continuous(dose), 20, concentration);
        pump.advance_to(start().plus(days(400)));
        let schedule = refill_schedule(&RefillInputs {
            fill: Volume::ml(20),
            drug: Baclofen::new(Concentration::micrograms_per_ml(concentration)).expect("in range"),
            daily_dose: itb_dose::DoseRate::micrograms_per_day(dose),
            alarm_threshold: Volume::ml(2),
            stability: Stability::default(),
            margin_days: 0,
            start: start().to_timestamp(),
            filled_at: None,
            zone: jiff::tz::TimeZone::UTC,
        })
        .expect("computes");
        let alarm = raised_at(&pump, AlarmKind::LowReservoir).expect("alarm raised");
        let expected = schedule.alarm_at.expect("an alarm date").as_second();
        assert_eq!(floor_second(alarm), expected, "{dose} micrograms/day of {concentration}");
        let empty = raised_at(&pump, AlarmKind::EmptyReservoir).expect("empty raised");
        assert_eq!(floor_second(empty), schedule.empty_at.expect("an empty date").as_second());
    }
}

#[test]
fn simple_continuous_worked_example() {
    let mut pump = implant(continuous(400), 20, 2000);
    pump.advance_to(start().plus(days(90)).minus(Duration::ms(1)));
    assert!(!pump.alarm_active(AlarmKind::LowReservoir));
    pump.advance_to(start().plus(days(90)));
    assert_eq!(raised_at(&pump, AlarmKind::LowReservoir), Some(at("2027-02-23T10:00:00Z")));
    assert_eq!(pump.reservoir_estimate(), Volume::ml(2));
    // Alarm tones hourly: at raising and at each hour after.
    pump.advance_to(at("2027-02-23T15:00:00Z"));
    let alarm = pump.status().alarms.into_iter().find(|a| a.kind == AlarmKind::LowReservoir).expect("active");
    assert_eq!(alarm.tones, 6);
    // The alarm cannot be cleared while the reservoir is low; a refill clears it.
    let refused = pump.handle(
        at("2027-02-23T15:00:00Z"),
        itb_pump::Request::clinician(None, Command::ClearAlarm { kind: AlarmKind::LowReservoir }),
    );
    assert_eq!(refused.map_err(|r| r.code), Err(RefusalCode::AlarmCauseRemains));
    pump.act(at("2027-02-23T15:00:00Z"), WorldAction::Withdraw);
    ok(
        &mut pump,
        at("2027-02-23T15:00:00Z"),
        Command::Refill {
            volume: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            bridge: false,
        },
    );
    assert!(!pump.alarm_active(AlarmKind::LowReservoir));
}

#[test]
fn flex_delivers_the_integral_of_its_steps_on_the_pump_clock() {
    // 00:00-06:00 at 480, 06:00-24:00 at 240 micrograms/day: (480*6 + 240*18)/24 = 300 a day.
    let flex = prescription(
        "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"480 micrograms/day\"\n\
         [[flex.steps]]\nstart = \"06:00\"\nrate = \"240 micrograms/day\"\n",
    );
    let mut pump = implant(flex, 20, 2000);
    pump.advance_to(at("2026-11-26T05:59:00Z"));
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(240_000));
    pump.advance_to(at("2026-11-26T10:00:00Z"));
    // One whole day: 300 micrograms = 0.15 mL.
    assert_eq!(pump.counters().commanded, Volume::nl(150_000));
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(120_000));
    // Setting the clock an hour ahead moves the schedule: at 04:30 UTC the pump reads 05:30.
    ok(
        &mut pump,
        at("2026-11-26T10:00:00Z"),
        Command::SetClock { reading: PumpTime::from_civil("2026-11-26T11:00".parse().expect("valid")) },
    );
    pump.advance_to(at("2026-11-27T04:59:00Z"));
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(240_000), "05:59 on the pump clock is the night step");
    pump.advance_to(at("2026-11-27T05:00:00Z"));
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(120_000), "06:00 on the pump clock");
    let clock_set = pump.log().iter().find(|e| matches!(e.event, Event::ClockSet { .. })).expect("logged");
    assert_eq!(
        clock_set.event,
        Event::ClockSet {
            before_ms: PumpTime::from_civil("2026-11-26T10:00".parse().expect("valid")).as_ms(),
            after_ms: PumpTime::from_civil("2026-11-26T11:00".parse().expect("valid")).as_ms(),
        }
    );
}

#[test]
fn a_new_therapy_is_logged_with_its_mode_its_dose_the_dose_it_replaced_and_who() {
    use itb_dose::prescription::Mode;
    use itb_pump::{Actor, Request};
    let mut pump = implant(continuous(400), 20, 2000);
    let programmed = |pump: &itb_pump::Pump| -> Vec<Event> {
        pump.log().iter().map(|e| e.event).filter(|e| e.kind() == EventKind::TherapyProgrammed).collect()
    };
    let flex = prescription(
        "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"480 micrograms/day\"\n\
         [[flex.steps]]\nstart = \"06:00\"\nrate = \"240 micrograms/day\"\n",
    );
    pump.handle(start(), Request::clinician(Some(1), Command::Program { prescription: flex })).expect("programmed");
    pump.handle(start(), Request::simulator(None, Command::Program { prescription: continuous(250) }))
        .expect("programmed");
    assert_eq!(
        programmed(&pump),
        [
            Event::TherapyProgrammed {
                program: 1,
                mode: Mode::SimpleContinuous,
                max_day_ng: 400_000,
                previous_max_day_ng: 0,
                worst_case_day_ng: 400_000,
                previous_worst_case_day_ng: 0,
                raised: true,
                by: Actor::Implant,
            },
            Event::TherapyProgrammed {
                program: 2,
                mode: Mode::Flex,
                max_day_ng: 300_000,
                previous_max_day_ng: 400_000,
                worst_case_day_ng: 300_000,
                previous_worst_case_day_ng: 400_000,
                raised: false,
                by: Actor::Clinician,
            },
            Event::TherapyProgrammed {
                program: 3,
                mode: Mode::SimpleContinuous,
                max_day_ng: 250_000,
                previous_max_day_ng: 300_000,
                worst_case_day_ng: 250_000,
                previous_worst_case_day_ng: 300_000,
                raised: false,
                by: Actor::Simulator,
            },
        ]
    );
}

#[test]
fn a_clinicians_reason_is_logged_right_after_the_change_it_explains() {
    use itb_pump::{LogText, Request};
    let reason = |text: &str| LogText::new(text).expect("valid reason");
    let mut pump = implant(continuous(400), 20, 500);
    let t = start().plus(days(10));
    let why = reason("spasticity worse at night; +10% agreed with Dr Okafor");
    let program = Command::Program { prescription: continuous(440) };
    pump.handle(t, Request::clinician(Some(1), program.clone()).with_reason(why)).expect("programmed");
    // A refill to a new concentration with a bridge: the reason follows the refill's own entry,
    // before the bridge's.
    pump.act(t, WorldAction::Withdraw);
    let concentration = Concentration::micrograms_per_ml(2000);
    pump.act(t, WorldAction::Inject { volume: Volume::ml(20), concentration, into: InjectInto::Reservoir });
    let stronger = reason("stronger solution: fewer refills");
    let refill = Command::Refill { volume: Volume::ml(20), concentration, bridge: true };
    pump.handle(t, Request::clinician(Some(2), refill).with_reason(stronger)).expect("refilled");
    // A refused command's reason is not logged.
    let too_big = Command::SingleBolus { dose: Mass::micrograms(600), duration: Duration::hours(1), then_stop: false };
    let refused = pump.handle(t, Request::clinician(Some(3), too_big).with_reason(reason("test dose")));
    assert_eq!(refused.map_err(|r| r.code), Err(RefusalCode::BolusAboveMax));
    // A retry of the same request logs nothing again; the same id with another reason is refused.
    pump.handle(t, Request::clinician(Some(1), program.clone()).with_reason(why)).expect("the first answer");
    let other = pump.handle(t, Request::clinician(Some(1), program).with_reason(reason("typo fixed")));
    assert_eq!(other.map_err(|r| r.code), Err(RefusalCode::RequestIdReused));
    let log: Vec<Event> = pump.log().iter().map(|e| e.event).collect();
    let at = log.iter().position(|e| matches!(e, Event::TherapyProgrammed { program: 2, .. })).expect("logged");
    assert_eq!(log[at + 1], Event::ClinicianReason { reason: why });
    assert_eq!(log[at + 2].kind(), EventKind::Refilled);
    assert_eq!(log[at + 3], Event::ClinicianReason { reason: stronger });
    assert_eq!(log[at + 4].kind(), EventKind::BridgeStarted);
    assert_eq!(pump.log().count(EventKind::ClinicianReason), 2);
    assert_eq!(log[at + 1].describe(), "clinician's reason: spasticity worse at night; +10% agreed with Dr Okafor");
}

#[test]
fn weekly_flex_follows_the_weekday() {
    let mut text = String::from("mode = \"flex\"\n");
    for day in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] {
        let rate = if day == "thursday" { 480 } else { 240 };
        text.push_str(&format!("[[flex.{day}]]\nstart = \"00:00\"\nrate = \"{rate} micrograms/day\"\n"));
    }
    // Implanted on Wednesday 25 November at 10:00.
    let mut pump = implant(prescription(&text), 20, 2000);
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(120_000));
    pump.advance_to(at("2026-11-26T00:00:00Z"));
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(240_000), "Thursday");
    pump.advance_to(at("2026-11-27T00:00:00Z"));
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(120_000), "Friday");
}

#[test]
fn periodic_bolus_delivers_each_day_the_same() {
    // 40 micrograms over 1 h every 6 h from 02:00 over 120 a day: 280 micrograms = 0.14 mL a day.
    let periodic = prescription(
        "mode = \"periodic_bolus\"\n[periodic]\nbolus_dose = \"40 micrograms\"\nbolus_duration = \"1 h\"\n\
         interval = \"6 h\"\nfirst_bolus_at = \"02:00\"\nbasal = \"120 micrograms/day\"\n",
    );
    let mut pump = implant(periodic, 20, 2000);
    pump.advance_to(at("2026-11-25T14:30:00Z"));
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(540_000), "a bolus runs 14:00-15:00");
    pump.advance_to(at("2026-11-26T10:00:00Z"));
    assert_eq!(pump.counters().commanded, Volume::nl(140_000));
}

#[test]
fn ptm_lockout_daily_maximum_and_retries() {
    let with_ptm = prescription(
        "mode = \"simple_continuous\"\ndose = \"240 micrograms/day\"\n[ptm]\nbolus_dose = \"24 micrograms\"\n\
         bolus_duration = \"12 min\"\nlockout = \"3 h\"\nmax_boluses_per_day = 2\n",
    );
    let mut pump = implant(with_ptm, 20, 2000);
    let t0 = start().plus(Duration::hours(1));
    let first = pump.handle(t0, request(1, Command::PtmBolus)).expect("allowed");
    assert_eq!(first, Reply::BolusStarted { dose: Mass::micrograms(24), ends_at: t0.plus(Duration::minutes(12)) });
    // The same request again (a retry after a dropped link) delivers nothing more.
    let retry = pump.handle(t0.plus(Duration::seconds(5)), request(1, Command::PtmBolus)).expect("same answer");
    assert_eq!(retry, first);
    // Within the lockout: refused, with the time it will be allowed.
    let early = pump.handle(t0.plus(Duration::hours(2)), request(2, Command::PtmBolus)).expect_err("lockout");
    assert_eq!(early.code, RefusalCode::PtmLockout);
    assert_eq!(early.retry_at, Some(t0.plus(Duration::hours(3))));
    pump.handle(t0.plus(Duration::hours(3)), request(3, Command::PtmBolus)).expect("after the lockout");
    let third = pump.handle(t0.plus(Duration::hours(7)), request(4, Command::PtmBolus)).expect_err("daily max");
    assert_eq!(third.code, RefusalCode::PtmDailyMax);
    assert_eq!(third.retry_at, Some(t0.plus(Duration::hours(24))));
    pump.handle(t0.plus(Duration::hours(24)), request(5, Command::PtmBolus)).expect("a day after the first");
    // Three boluses of 24 micrograms (0.012 mL each) on top of 26 hours at 0.12 mL/day.
    pump.advance_to(start().plus(Duration::hours(26)));
    let basal = Volume::nl(130_000);
    assert_eq!(pump.counters().commanded, Volume::nl(basal.as_nl() + 3 * 12_000));
    assert_eq!(pump.log().count(EventKind::PtmBolus), 3);
    assert_eq!(pump.log().count(EventKind::PtmRefused), 2);
    // A dose command without a request id is refused.
    let no_id = pump.handle(start().plus(Duration::hours(30)), itb_pump::Request::clinician(None, Command::PtmBolus));
    assert_eq!(no_id.map_err(|r| r.code), Err(RefusalCode::RequestIdMissing));
}

fn ptm_pump() -> itb_pump::Pump {
    implant(
        prescription(
            "mode = \"simple_continuous\"\ndose = \"240 micrograms/day\"\n[ptm]\nbolus_dose = \"24 micrograms\"\n\
             bolus_duration = \"12 min\"\nlockout = \"1 h\"\nmax_boluses_per_day = 6\n",
        ),
        20,
        2000,
    )
}

#[test]
fn a_request_is_remembered_by_who_sent_it_its_whole_id_and_its_command() {
    use itb_pump::{Actor, Request};
    let mut pump = ptm_pump();
    let t = start().plus(Duration::hours(1));
    let first = pump.handle(t, Request::patient(Some(7), Command::PtmBolus)).expect("delivered");
    // A retry of the same request: the first answer, nothing delivered again.
    let retry = pump.handle(t.plus(Duration::seconds(5)), Request::patient(Some(7), Command::PtmBolus));
    assert_eq!(retry, Ok(first.clone()));
    assert_eq!(pump.log().count(EventKind::PtmBolus), 1);
    // The same id with the top bit set is another request: after the lockout it delivers.
    let later = t.plus(Duration::hours(2));
    let other = pump.handle(later, Request::patient(Some(7 + (1 << 63)), Command::PtmBolus)).expect("delivered");
    assert_ne!(other, first);
    assert_eq!(pump.log().count(EventKind::PtmBolus), 2);
    // The clinician's id 7 is not the patient's: a stop is a stop.
    let stop = pump.handle(later, Request::clinician(Some(7), Command::Stop));
    assert!(matches!(stop, Ok(Reply::Done(_))), "{stop:?}");
    assert_eq!(pump.status().state, DeliveryState::Stopped);
    ok(&mut pump, later, Command::Resume);
    // The patient's id 7 again, for another command: refused, and nothing done.
    let reused = pump.handle(later, Request::new(Actor::Patient, Some(7), Command::Stop)).expect_err("reused");
    assert_eq!(reused.code, RefusalCode::RequestIdReused);
    assert_eq!(reused.code.as_str(), "request_id_reused");
    assert!(reused.message.contains("new id"), "{}", reused.message);
    assert_eq!(pump.status().state, DeliveryState::Therapy, "the reused id stopped nothing");
    let last = pump.log().iter().last().expect("logged").event;
    assert_eq!(last, Event::CommandRefused { code: RefusalCode::RequestIdReused });
    // The refusal is not remembered in place of the first answer.
    assert_eq!(pump.handle(later, Request::patient(Some(7), Command::PtmBolus)), Ok(first));
    assert_eq!(pump.log().count(EventKind::PtmBolus), 2);
}

#[test]
fn single_bolus_returns_to_the_prior_mode_or_stops() {
    let mut pump = implant(continuous(240), 20, 2000);
    let t = start().plus(Duration::hours(1));
    let reply = pump.handle(
        t,
        request(7, Command::SingleBolus { dose: Mass::micrograms(50), duration: Duration::hours(1), then_stop: false }),
    );
    assert_eq!(reply, Ok(Reply::BolusStarted { dose: Mass::micrograms(50), ends_at: t.plus(Duration::hours(1)) }));
    assert_eq!(pump.status().state, DeliveryState::SingleBolus);
    assert_eq!(pump.status().rate, VolumeRate::nl_per_day(600_000));
    pump.advance_to(t.plus(Duration::hours(1)));
    assert_eq!(pump.status().state, DeliveryState::Therapy);
    pump.handle(
        t.plus(Duration::hours(2)),
        request(
            8,
            Command::SingleBolus { dose: Mass::micrograms(25), duration: Duration::minutes(30), then_stop: true },
        ),
    )
    .expect("accepted");
    pump.advance_to(t.plus(Duration::hours(3)));
    assert_eq!(pump.status().state, DeliveryState::Stopped);
    // Hard limit: more than the largest bolus.
    let big = pump.handle(
        t.plus(Duration::hours(3)),
        request(
            9,
            Command::SingleBolus { dose: Mass::micrograms(501), duration: Duration::hours(1), then_stop: false },
        ),
    );
    assert_eq!(big.map_err(|r| r.code), Err(RefusalCode::BolusAboveMax));
}

#[test]
fn priming_fills_the_catheter_before_any_drug_reaches_the_patient() {
    let mut pump = implant(continuous(400), 20, 2000);
    // 0.31 mL at 24 mL/day (1 mL/h): 18.6 minutes.
    let reply = pump.handle(start(), request(1, Command::PrimingBolus { catheter_only: false })).expect("priming");
    assert_eq!(
        reply,
        Reply::BolusStarted { dose: Mass::micrograms(620), ends_at: start().plus(Duration::ms(1_116_000)) }
    );
    pump.advance_to(start().plus(Duration::ms(1_115_999)));
    assert_eq!(pump.status().state, DeliveryState::Priming);
    assert_eq!(pump.world().ledger().to_csf.mass, Mass::ZERO, "nothing reaches the CSF while the catheter fills");
    pump.advance_to(start().plus(Duration::ms(1_116_000)));
    assert_eq!(pump.status().state, DeliveryState::Therapy);
    assert_eq!(pump.world().fluid_path().volume, Volume::nl(310_000));
    pump.advance_to(start().plus(days(1)).plus(Duration::ms(1_116_000)));
    // After priming, a day of therapy puts a day's dose into the CSF (to the nanogram rounding).
    let csf = pump.world().ledger().to_csf.mass.as_ng();
    assert!(csf.abs_diff(400_000) <= 2, "{csf}");
}

fn try_refill(
    pump: &mut itb_pump::Pump,
    t: Instant,
    micrograms_per_ml: u64,
    bridge: bool,
) -> Result<Reply, itb_pump::Refusal> {
    pump.act(t, WorldAction::Withdraw);
    let concentration = Concentration::micrograms_per_ml(micrograms_per_ml);
    pump.act(t, WorldAction::Inject { volume: Volume::ml(20), concentration, into: InjectInto::Reservoir });
    pump.handle(
        t,
        itb_pump::Request::clinician(None, Command::Refill { volume: Volume::ml(20), concentration, bridge }),
    )
}

fn refill_to(pump: &mut itb_pump::Pump, t: Instant, micrograms_per_ml: u64, bridge: bool) -> Reply {
    try_refill(pump, t, micrograms_per_ml, bridge).expect("refill")
}

#[test]
fn a_recorded_withdrawal_empties_the_estimate_until_the_refill() {
    use itb_pump::Request;
    let mut pump = implant(continuous(400), 20, 2000);
    let t = start().plus(days(30));
    pump.advance_to(t);
    let expected = pump.reservoir_estimate();
    assert_eq!(expected, Volume::ml(14));
    pump.act(t, WorldAction::Withdraw);
    let withdrawn = Volume::nl(13_950_000);
    let reply = pump.handle(t, Request::clinician(None, Command::RecordWithdrawal { volume: withdrawn }));
    assert_eq!(reply, Ok(Reply::WithdrawalRecorded { expected, withdrawn }));
    let status = pump.status();
    assert_eq!(status.reservoir, Volume::ZERO, "it believes what was measured: the reservoir is empty");
    assert!(status.awaiting_refill);
    assert!(pump.alarm_active(AlarmKind::LowReservoir) && pump.alarm_active(AlarmKind::EmptyReservoir));
    let events: Vec<Event> = pump.log().iter().map(|e| e.event).collect();
    assert_eq!(
        events[events.len() - 3..],
        [
            Event::ReservoirWithdrawn { withdrawn_nl: 13_950_000, expected_nl: 14_000_000 },
            Event::AlarmRaised(AlarmKind::LowReservoir),
            Event::AlarmRaised(AlarmKind::EmptyReservoir),
        ]
    );
    let bolus = Command::SingleBolus { dose: Mass::micrograms(50), duration: Duration::hours(1), then_stop: false };
    let refused = pump.handle(t, request(1, bolus)).expect_err("nothing to deliver");
    assert_eq!(refused.code, RefusalCode::ReservoirEmpty);
    let concentration = Concentration::micrograms_per_ml(2000);
    pump.act(t, WorldAction::Inject { volume: Volume::ml(20), concentration, into: InjectInto::Reservoir });
    let refill = Command::Refill { volume: Volume::ml(20), concentration, bridge: false };
    let reply = pump.handle(t, Request::clinician(None, refill)).expect("refilled");
    assert_eq!(reply, Reply::Refilled { expected_withdrawal: Volume::ZERO, bridging: false });
    let refilled = pump.log().iter().find(|e| e.event.kind() == EventKind::Refilled).expect("logged").event;
    assert_eq!(refilled, Event::Refilled { expected_nl: 0, filled_nl: 20_000_000, concentration_ng_per_ml: 2_000_000 });
    assert!(!pump.status().awaiting_refill);
    assert!(!pump.alarm_active(AlarmKind::LowReservoir) && !pump.alarm_active(AlarmKind::EmptyReservoir));
}

#[test]
fn bridge_bolus_keeps_the_dose_through_a_concentration_change() {
    for bridge in [true, false] {
        let mut pump = implant(continuous(400), 20, 500);
        ok(&mut pump, start(), Command::PrimingBolus { catheter_only: false });
        let change = start().plus(days(10));
        let reply = refill_to(&mut pump, change, 2000, bridge);
        // 20 mL less the 0.31 mL of priming, less 0.8 mL/day for 10 days less the 18.6 minutes
        // of priming: 800_000 * (864_000_000 - 1_116_000) / 86_400_000 = 7_989_666 nL.
        let expected = Volume::nl(20_000_000 - 310_000 - 7_989_666);
        assert_eq!(reply, Reply::Refilled { expected_withdrawal: expected, bridging: bridge });
        let before = pump.world().ledger().to_csf.mass;
        // The bridge runs 0.31 mL at 0.8 mL/day: 9.3 hours.
        if bridge {
            pump.advance_to(change.plus(Duration::ms(33_480_000 - 1)));
            assert_eq!(pump.status().state, DeliveryState::Bridge);
            pump.advance_to(change.plus(Duration::ms(33_480_000)));
            assert_eq!(pump.status().state, DeliveryState::Therapy);
            assert_eq!(pump.log().count(EventKind::BridgeEnded), 1);
        }
        // Over the 9.3 hours the patient should get 400 * 9.3 / 24 = 155 micrograms.
        pump.advance_to(change.plus(Duration::ms(33_480_000)));
        let delivered = pump.world().ledger().to_csf.mass.as_ng() - before.as_ng();
        if bridge {
            assert!(delivered.abs_diff(155_000) <= 2, "bridged: {delivered}");
        } else {
            // Unbridged: old drug at the new rate, a quarter of the dose.
            assert!(delivered.abs_diff(38_750) <= 2, "unbridged: {delivered}");
        }
        assert!(pump.world().mass_balance_holds());
    }
}

#[test]
fn hard_limits_refuse_with_reasons() {
    // 1250 micrograms/day at 50 micrograms/mL is 25 mL/day: above the 24 mL/day maximum rate,
    // refused whichever way it would come: a new program, or a refill at a weaker concentration.
    let mut weak = implant(continuous(400), 20, 50);
    let too_fast = weak
        .handle(start(), itb_pump::Request::clinician(None, Command::Program { prescription: continuous(1_250) }))
        .expect_err("25 mL/day");
    assert_eq!(too_fast.code, RefusalCode::RateAboveMax);
    assert!(too_fast.message.contains("24 mL/day"), "{}", too_fast.message);
    ok(&mut weak, start(), Command::Program { prescription: continuous(1_000) });
    let refill = weak.handle(
        start(),
        itb_pump::Request::clinician(
            None,
            Command::Refill {
                volume: Volume::ml(20),
                concentration: Concentration::micrograms_per_ml(40),
                bridge: false,
            },
        ),
    );
    assert_eq!(refill.map_err(|r| r.code), Err(RefusalCode::RateAboveMax), "1000 micrograms/day at 40 is 25 mL/day");
    assert_eq!(weak.status().concentration, Concentration::micrograms_per_ml(50), "the refused refill changed nothing");
    let mut pump = implant(continuous(400), 20, 2000);
    ok(&mut pump, start(), Command::Stop);
    let refill = pump.handle(
        start(),
        itb_pump::Request::clinician(
            None,
            Command::Refill {
                volume: Volume::ml(25),
                concentration: Concentration::micrograms_per_ml(2000),
                bridge: false,
            },
        ),
    );
    assert_eq!(refill.map_err(|r| r.code), Err(RefusalCode::FillAboveCapacity));
    let fast =
        pump.handle(start(), itb_pump::Request::clinician(None, Command::Program { prescription: continuous(4_900) }));
    assert!(fast.is_ok(), "4900 micrograms/day of 2000 is 2.45 mL/day, within the rate");
    let many_steps = (0..13)
        .map(|h| format!("[[flex.steps]]\nstart = \"{:02}:00\"\nrate = \"300 micrograms/day\"\n", h))
        .collect::<String>();
    let with_short =
        format!("mode = \"flex\"\n{many_steps}[[flex.steps]]\nstart = \"13:10\"\nrate = \"300 micrograms/day\"\n");
    // 14 steps cannot even be a prescription; 13 with one of 10 minutes breaks the pump's minimum step.
    assert!(itb_dose::toml::from_toml(&with_short).is_err());
    let short_step = prescription(
        "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"300 micrograms/day\"\n\
         [[flex.steps]]\nstart = \"08:00\"\nrate = \"400 micrograms/day\"\n[[flex.steps]]\nstart = \"08:10\"\nrate = \"300 micrograms/day\"\n",
    );
    let refused = pump
        .handle(start(), itb_pump::Request::clinician(None, Command::Program { prescription: short_step }))
        .expect_err("step too short");
    assert_eq!(refused.code, RefusalCode::FlexStepTooShort);
    assert!(refused.message.contains("08:00"), "{}", refused.message);
    assert_eq!(pump.log().count(EventKind::CommandRefused), 2, "the fill and the short step");
}

#[test]
fn rate_below_the_minimum_is_refused() {
    let mut pump = implant(continuous(400), 20, 2000);
    // 50 micrograms/day of 2000 is 0.025 mL/day: below 0.048 mL/day.
    let refused = pump
        .handle(start(), itb_pump::Request::clinician(None, Command::Program { prescription: continuous(50) }))
        .expect_err("too slow");
    assert_eq!(refused.code, RefusalCode::RateBelowMin);
    assert!(refused.message.contains("weaker concentration"));
}

#[test]
fn mri_stall_is_noticed_and_recovery_logged() {
    let mut pump = implant(continuous(480), 20, 2000);
    ok(&mut pump, start(), Command::PrimingBolus { catheter_only: false });
    let scan = start().plus(days(5));
    pump.act(scan, WorldAction::MriScan { stall_for: Duration::hours(6) });
    pump.advance_to(scan.plus(Duration::minutes(5)).minus(Duration::ms(1)));
    assert!(!pump.alarm_active(AlarmKind::MotorStall));
    pump.advance_to(scan.plus(Duration::minutes(5)));
    assert!(pump.alarm_active(AlarmKind::MotorStall), "noticed after the detection time");
    assert!(pump.status().motor_stalled);
    let csf_at_scan = pump.world().ledger().to_csf.mass;
    let estimate = pump.reservoir_estimate();
    pump.advance_to(scan.plus(Duration::hours(6)).minus(Duration::ms(1)));
    assert_eq!(pump.world().ledger().to_csf.mass, csf_at_scan, "nothing delivered while stalled");
    assert_eq!(pump.reservoir_estimate(), estimate, "the firmware knows nothing moves");
    pump.advance_to(scan.plus(Duration::hours(6)));
    assert!(!pump.status().motor_stalled);
    let recovered = pump.log().iter().find(|e| e.event == Event::MotorStallRecovered).expect("recovery logged");
    assert_eq!(recovered.at, pump.status().pump_time);
    // The alarm stays until the clinician clears it after checking.
    assert!(pump.alarm_active(AlarmKind::MotorStall));
    ok(&mut pump, scan.plus(Duration::hours(7)), Command::ClearAlarm { kind: AlarmKind::MotorStall });
    assert!(!pump.alarm_active(AlarmKind::MotorStall));
}

#[test]
fn the_firmware_cannot_tell_a_short_stall_from_a_long_one_until_it_senses_the_motor() {
    // Two scans, one stalling the motor for 6 minutes and one for 4 hours: until the short stall
    // ends, the pumps are alike in everything the firmware knows (the stall is noticed at 5
    // minutes in both); only the truth's schedule differs.
    let mut pumps = [Duration::minutes(6), Duration::hours(4)].map(|stall_for| {
        let mut pump = implant(continuous(480), 20, 2000);
        ok(&mut pump, start(), Command::PrimingBolus { catheter_only: false });
        pump.act(start().plus(days(1)), WorldAction::MriScan { stall_for });
        pump
    });
    let scan = start().plus(days(1));
    for seconds in (0..360).step_by(15) {
        let t = scan.plus(Duration::seconds(seconds));
        for pump in &mut pumps {
            pump.advance_to(t);
        }
        let [short, long] = &pumps;
        assert_eq!(short.status(), long.status(), "{seconds} s into the stall");
        assert_eq!(short.log().iter().collect::<Vec<_>>(), long.log().iter().collect::<Vec<_>>());
        assert_eq!(short.alarm_active(AlarmKind::MotorStall), seconds >= 300, "{seconds} s");
    }
    let [short, long] = &mut pumps;
    short.advance_to(scan.plus(Duration::minutes(6)));
    long.advance_to(scan.plus(Duration::minutes(6)));
    assert!(!short.status().motor_stalled, "the short stall ended and the firmware sensed the motor turn");
    assert!(long.status().motor_stalled);
}

#[test]
fn a_new_stall_is_timed_from_when_the_motor_was_last_seen_turning() {
    // A 4-minute stall ends unnoticed; the motor turns for 30 s; a second scan stalls it again.
    // The firmware saw it turn, so it notices the second stall 5 minutes after it began, not 5
    // minutes after the first; and the motor really delivered while it turned.
    let mut pump = implant(continuous(480), 20, 2000);
    ok(&mut pump, start(), Command::PrimingBolus { catheter_only: false });
    let scan = start().plus(days(1));
    pump.act(scan, WorldAction::MriScan { stall_for: Duration::minutes(4) });
    let reservoir = pump.world().reservoir().volume;
    let second = scan.plus(Duration::minutes(4)).plus(Duration::seconds(30));
    pump.act(second, WorldAction::MriScan { stall_for: Duration::hours(1) });
    // 0.24 mL/day for 30 s: 83.3 nL, whole nanolitres as the remainder allows.
    let moved = reservoir.as_nl() - pump.world().reservoir().volume.as_nl();
    assert!((83..=84).contains(&moved), "{moved} nL moved between the stalls");
    pump.advance_to(second.plus(Duration::minutes(5)).minus(Duration::ms(1)));
    assert!(!pump.alarm_active(AlarmKind::MotorStall), "noticed from when the firmware last saw the motor turn");
    pump.advance_to(second.plus(Duration::minutes(5)));
    assert!(pump.alarm_active(AlarmKind::MotorStall));
    assert_eq!(pump.log().count(EventKind::MotorStallDetected), 1);
}

#[test]
fn a_stopped_pump_does_not_notice_an_mri_stall() {
    let mut pump = implant(continuous(480), 20, 2000);
    ok(&mut pump, start(), Command::Stop);
    pump.act(start().plus(Duration::hours(1)), WorldAction::MriScan { stall_for: Duration::hours(2) });
    pump.advance_to(start().plus(Duration::hours(2)));
    assert!(!pump.alarm_active(AlarmKind::MotorStall), "stopped pumps delay stall detection: never stop before MRI");
    // Resumed while still stalled: noticed 5 minutes later.
    ok(&mut pump, start().plus(Duration::hours(2)), Command::Resume);
    pump.advance_to(start().plus(Duration::hours(2)).plus(Duration::minutes(5)));
    assert!(pump.alarm_active(AlarmKind::MotorStall));
}

#[test]
fn over_infusion_and_leaks_show_at_refill_or_in_the_csf() {
    let mut pump = implant(continuous(400), 20, 2000);
    ok(&mut pump, start(), Command::PrimingBolus { catheter_only: false });
    pump.act(start(), WorldAction::RateError { ppm: 200_000 });
    let refill_at = start().plus(days(60));
    pump.advance_to(refill_at);
    let expected = pump.reservoir_estimate();
    let withdrawn = pump.act(refill_at, WorldAction::Withdraw).expect("withdrawn");
    // Priming 0.31 mL, then 0.2 mL/day for 60 days less the 18.6 minutes of priming.
    let commanded = 310_000 + 200_000 * (60 * 86_400_000 - 1_116_000) / 86_400_000;
    assert_eq!(expected, Volume::nl(20_000_000 - commanded));
    // The motor really moved 20 % more than it was commanded.
    assert_eq!(withdrawn.volume, Volume::nl(20_000_000 - commanded * 12 / 10));
    assert!(expected.as_nl() - withdrawn.volume.as_nl() > 2_000_000);
    // A leak: the reservoir looks right, but less reaches the CSF.
    let mut leaking = implant(continuous(400), 20, 2000);
    ok(&mut leaking, start(), Command::PrimingBolus { catheter_only: false });
    let primed = start().plus(days(1));
    leaking.advance_to(primed);
    let csf_before = leaking.world().ledger().to_csf.mass.as_ng();
    leaking.act(primed, WorldAction::Catheter(CatheterState::Leaking { fraction_ppm: 500_000 }));
    leaking.advance_to(primed.plus(days(10)));
    let csf = leaking.world().ledger().to_csf.mass.as_ng() - csf_before;
    assert!(csf.abs_diff(2_000_000) <= 10, "half of 10 days x 400 micrograms: {csf}");
}

#[test]
fn pocket_fill_leaves_the_reservoir_empty_while_the_firmware_believes_it_full() {
    let mut pump = implant(continuous(400), 20, 2000);
    let t = start().plus(days(30));
    pump.act(t, WorldAction::Withdraw);
    pump.act(
        t,
        WorldAction::Inject {
            volume: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            into: InjectInto::Pocket,
        },
    );
    ok(
        &mut pump,
        t,
        Command::Refill {
            volume: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            bridge: false,
        },
    );
    assert_eq!(pump.reservoir_estimate(), Volume::ml(20));
    assert_eq!(pump.world().reservoir().volume, Volume::ZERO);
    assert_eq!(pump.world().ledger().to_tissue.mass, Mass::micrograms(40_000), "40 000 micrograms under the skin");
    pump.advance_to(t.plus(days(5)));
    assert!(pump.world().mass_balance_holds());
}

#[test]
fn battery_ends_service_at_seven_years_at_low_volume_with_eri_90_days_before() {
    // 0.1 mL/day: the charge would last 7.5 years; the pump stops at 7 years of 365.25 days
    // (2556.75 days), and its replace-by date is never later.
    let mut pump = implant(continuous(200), 20, 2000);
    let mut t = start();
    let eos = start().plus(Duration::ms(2_556_750 * 86_400));
    while t < eos.plus(days(10)) {
        let status = pump.status();
        assert!(status.at.plus(status.battery_remaining) <= eos, "replace by {} at {t}", status.at);
        t = t.plus(days(150));
        if try_refill(&mut pump, t, 2000, false).is_err() {
            break;
        }
    }
    let log: Vec<_> = pump.log().iter().copied().collect();
    let eri = log.iter().find(|e| e.event == Event::AlarmRaised(AlarmKind::ElectiveReplacement)).expect("ERI");
    let end = log.iter().find(|e| e.event == Event::EndOfService).expect("EOS");
    let clock = |i: Instant| PumpTime::from_ms(i.as_ms());
    assert_eq!(end.at, clock(eos));
    assert_eq!(eri.at, clock(eos.minus(days(90))));
    assert_eq!(pump.status().state, DeliveryState::EndOfService);
    let refused = pump.handle(t, itb_pump::Request::clinician(None, Command::Resume));
    assert_eq!(refused.map_err(|r| r.code), Err(RefusalCode::EndOfService));
}

#[test]
fn no_pump_outlives_seven_years_whatever_its_profile_says() {
    // A profile built in code is not checked as a file is: the pump holds the limit itself.
    let mut profile = itb_dose::DeviceProfile::built_in("synchromed-ii-20").expect("profile");
    profile.battery.service_life_max.value = days(3_000);
    profile.battery.capacity.value *= 10;
    let mut pump = itb_pump::Pump::implant(itb_pump::Implant {
        profile,
        at: start(),
        clock: PumpTime::from_ms(start().as_ms()),
        catheter_cm: 50,
        rate_error_ppm: 0,
        fill: Volume::ml(20),
        concentration: Concentration::micrograms_per_ml(2000),
        prescription: continuous(200),
    })
    .expect("implant");
    let limit = start().plus(itb_dose::profile::SERVICE_LIFE_MAX);
    let status = pump.status();
    assert!(status.at.plus(status.battery_remaining) <= limit);
    pump.advance_to(limit.minus(Duration::ms(1)));
    assert_ne!(pump.status().state, DeliveryState::EndOfService);
    pump.advance_to(limit);
    assert_eq!(pump.status().state, DeliveryState::EndOfService);
}

#[test]
fn battery_at_high_volume_lasts_about_five_years() {
    // 1000 micrograms/day of 500 micrograms/mL: 2 mL/day, refilled every 9 days.
    let mut pump = implant(continuous(1000), 20, 500);
    let mut t = start();
    while t < start().plus(days(3000)) {
        t = t.plus(days(9));
        if try_refill(&mut pump, t, 500, false).is_err() {
            break;
        }
    }
    let end = pump.log().iter().find(|e| e.event == Event::EndOfService).expect("EOS").at;
    let years = (end.as_ms() - start().as_ms()) as f64 / 86_400_000.0 / 365.25;
    assert!((4.9..5.0).contains(&years), "{years} years");
}

#[test]
fn a_battery_defect_brings_eri_forward() {
    let mut pump = implant(continuous(400), 20, 2000);
    pump.act(start().plus(days(10)), WorldAction::BatteryDefect { capacity_loss_ppm: 950_000 });
    pump.advance_to(start().plus(days(60)));
    assert!(pump.alarm_active(AlarmKind::ElectiveReplacement), "{:?}", pump.status().alarms);
    assert!(pump.status().battery_remaining < days(150));
}

#[test]
fn low_battery_reset_and_memory_errors_halt_until_programmed() {
    let mut pump = implant(continuous(400), 20, 2000);
    pump.act(start().plus(days(1)), WorldAction::LowBatteryReset);
    assert_eq!(pump.status().state, DeliveryState::Halted);
    assert!(pump.alarm_active(AlarmKind::LowBatteryReset));
    let resume = pump.handle(start().plus(days(1)), itb_pump::Request::clinician(None, Command::Resume));
    assert_eq!(resume.map_err(|r| r.code), Err(RefusalCode::PumpHalted));
    ok(&mut pump, start().plus(days(1)), Command::Program { prescription: continuous(400) });
    assert_eq!(pump.status().state, DeliveryState::Therapy);
    pump.act(start().plus(days(2)), WorldAction::MemoryError { critical: false });
    assert!(pump.alarm_active(AlarmKind::MemoryError));
    assert_eq!(pump.status().state, DeliveryState::Therapy);
}

#[test]
fn the_log_is_bounded_and_counts_survive_overwrite() {
    let with_ptm = prescription(
        "mode = \"simple_continuous\"\ndose = \"240 micrograms/day\"\n[ptm]\nbolus_dose = \"10 micrograms\"\n\
         bolus_duration = \"5 min\"\nlockout = \"15 min\"\nmax_boluses_per_day = 24\n",
    );
    let mut pump = implant(with_ptm, 20, 2000);
    for i in 0..2_000u64 {
        let _ = pump.handle(start().plus(Duration::minutes(16 * i)), request(i, Command::PtmBolus));
    }
    assert_eq!(pump.log().len(), pump.log().capacity());
    assert_eq!(pump.log().capacity(), 1024);
    let total: u64 = EventKind::ALL.iter().map(|k| pump.log().count(*k)).sum();
    assert_eq!(total + 1, pump.log().next_seq());
    assert_eq!(pump.log().count(EventKind::PtmBolus) + pump.log().count(EventKind::PtmRefused), 2_000);
    let first = pump.log().iter().next().expect("entries").seq;
    assert_eq!(first, pump.log().next_seq() - 1024);
}

#[test]
fn the_clock_is_set_only_to_a_plausible_reading() {
    let mut pump = implant(continuous(400), 20, 2000);
    let civil = |text: &str| PumpTime::from_civil(text.parse().expect("valid"));
    let before = pump.status().pump_time;
    for reading in [
        civil("1999-12-31T23:59:59.999"),
        civil("2100-01-01T00:00"),
        civil("1970-01-01T00:00"),
        PumpTime::from_ms(i64::MIN),
    ] {
        let refused = pump
            .handle(start(), itb_pump::Request::clinician(None, Command::SetClock { reading }))
            .expect_err("out of range");
        assert_eq!(refused.code, RefusalCode::ClockOutOfRange, "{reading:?}");
        assert!(
            refused.message.contains("from Sat 1 Jan 2000 00:00 up to, not including, Fri 1 Jan 2100 00:00"),
            "{}",
            refused.message
        );
        assert_eq!(pump.status().pump_time, before, "the clock is unchanged");
    }
    assert_eq!(pump.log().count(EventKind::CommandRefused), 4);
    for reading in [civil("2000-01-01T00:00"), civil("2099-12-31T23:59:59.999")] {
        ok(&mut pump, start(), Command::SetClock { reading });
        assert_eq!(pump.status().pump_time, reading);
    }
}

#[test]
fn an_implant_with_an_implausible_clock_is_refused() {
    for clock in [PumpTime::from_ms(0), PumpTime::from_civil("2100-01-01T00:00".parse().expect("valid"))] {
        let refused = itb_pump::Pump::implant(itb_pump::Implant {
            profile: itb_dose::DeviceProfile::built_in("synchromed-ii-20").expect("profile"),
            at: start(),
            clock,
            catheter_cm: 50,
            rate_error_ppm: 0,
            fill: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            prescription: continuous(400),
        })
        .map(|_| ())
        .expect_err("refused");
        assert_eq!(refused.code, RefusalCode::ClockOutOfRange);
    }
}

/// A bolus runs in place of the therapy: one of no drug, or longer than a day, would be a stop
/// in disguise; resuming a pump that is not stopped is refused (it would log a resume that did
/// nothing).
#[test]
fn an_empty_or_endless_bolus_and_a_needless_resume_are_refused() {
    let mut pump = implant(continuous(400), 20, 2000);
    let t = start().plus(Duration::hours(2));
    let refused = |pump: &mut itb_pump::Pump, id: u64, command: Command| {
        pump.handle(t, request(id, command)).expect_err("refused").code
    };
    let empty = Command::SingleBolus { dose: Mass::ZERO, duration: Duration::minutes(10), then_stop: false };
    assert_eq!(refused(&mut pump, 1, empty), RefusalCode::BolusEmpty);
    let week = Command::SingleBolus { dose: Mass::micrograms(1), duration: Duration::days(7), then_stop: false };
    assert_eq!(refused(&mut pump, 2, week), RefusalCode::BolusTooLong);
    assert_eq!(refused(&mut pump, 3, Command::Resume), RefusalCode::NotStopped);
    assert_eq!(pump.status().state, itb_pump::DeliveryState::Therapy);
    assert_eq!(pump.log().count(EventKind::Resumed), 0);
    // A day is the longest.
    let day = Command::SingleBolus { dose: Mass::micrograms(400), duration: Duration::DAY, then_stop: false };
    assert!(pump.handle(t, request(4, day)).is_ok());
}
