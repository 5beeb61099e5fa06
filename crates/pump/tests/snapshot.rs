//! The snapshot is the pump's non-volatile memory: a pump restored from it has the same future as
//! the pump that wrote it, and no byte string restores an inconsistent pump or panics.
#![cfg(feature = "serde")]

mod common;

use ciborium::Value;
use common::*;
use itb_dose::{Concentration, Duration, Mass, Volume};
use itb_pump::snapshot::SNAPSHOT_VERSION;
use itb_pump::world::{CatheterState, InjectInto};
use itb_pump::{
    AlarmKind, Command, EventKind, Instant, Pump, PumpTime, Request, SnapshotError, WorldAction, from_snapshot,
    to_snapshot,
};
use proptest::prelude::*;

const FLEX_WITH_PTM: &str = "mode = \"flex\"\n\
    [[flex.steps]]\nstart = \"00:00\"\nrate = \"300 micrograms/day\"\n\
    [[flex.steps]]\nstart = \"07:00\"\nrate = \"500 micrograms/day\"\n\
    [[flex.steps]]\nstart = \"22:00\"\nrate = \"350 micrograms/day\"\n\
    [ptm]\nbolus_dose = \"25 micrograms\"\nbolus_duration = \"10 min\"\nlockout = \"3 h\"\nmax_boluses_per_day = 4\n";

const CONTINUOUS_WITH_PTM: &str = "mode = \"simple_continuous\"\ndose = \"450 micrograms/day\"\n\
    [ptm]\nbolus_dose = \"20 micrograms\"\nbolus_duration = \"15 min\"\nlockout = \"4 h\"\nmax_boluses_per_day = 3\n";

#[derive(Debug, Clone)]
enum Step {
    Command(u64, Command),
    Act(WorldAction),
}

fn h(hours: u64) -> Duration {
    Duration::hours(hours)
}

/// Flex with PTM at 500 micrograms/mL (12 mL, so the low-reservoir alarm comes in about two
/// weeks), PTM boluses with a lockout refusal and a retry, an MRI stall, a catheter leak, a clock
/// change, a refill to 2000 micrograms/mL with a bridge, boluses during the bridge, a new program,
/// a catheter revision with priming, a memory error.
fn script() -> Vec<(Instant, Step)> {
    let t = start();
    let c = |id, command| Step::Command(id, command);
    vec![
        (t, c(1, Command::PrimingBolus { catheter_only: false })),
        (t.plus(days(1)).plus(h(2)), c(2, Command::PtmBolus)),
        (t.plus(days(1)).plus(h(3)), c(3, Command::PtmBolus)),
        (t.plus(days(1)).plus(h(5)), c(4, Command::PtmBolus)),
        (t.plus(days(2)), c(2, Command::PtmBolus)),
        (t.plus(days(3)), Step::Act(WorldAction::MriScan { stall_for: h(6) })),
        (t.plus(days(3)).plus(h(7)), c(5, Command::ClearAlarm { kind: AlarmKind::MotorStall })),
        (t.plus(days(5)), Step::Act(WorldAction::Catheter(CatheterState::Leaking { fraction_ppm: 200_000 }))),
        (t.plus(days(6)), c(6, Command::SetClock { reading: PumpTime::from_ms(t.plus(days(6)).plus(h(1)).as_ms()) })),
        (t.plus(days(14)), c(7, Command::Interrogate)),
        (t.plus(days(14)).plus(h(1)), c(8, Command::ClearAlarm { kind: AlarmKind::LowReservoir })),
        (t.plus(days(15)), Step::Act(WorldAction::Withdraw)),
        (
            t.plus(days(15)),
            Step::Act(WorldAction::Inject {
                volume: Volume::ml(20),
                concentration: Concentration::micrograms_per_ml(2000),
                into: InjectInto::Reservoir,
            }),
        ),
        (
            t.plus(days(15)),
            c(
                9,
                Command::Refill {
                    volume: Volume::ml(20),
                    concentration: Concentration::micrograms_per_ml(2000),
                    bridge: true,
                },
            ),
        ),
        (t.plus(days(15)).plus(Duration::minutes(5)), c(10, Command::PtmBolus)),
        (
            t.plus(days(16)),
            c(11, Command::SingleBolus { dose: Mass::micrograms(50), duration: h(1), then_stop: false }),
        ),
        (t.plus(days(20)), c(12, Command::Program { prescription: prescription(CONTINUOUS_WITH_PTM) })),
        (t.plus(days(25)), c(13, Command::SetAlarmThreshold { threshold: Volume::ml(3) })),
        (t.plus(days(30)), Step::Act(WorldAction::ReplaceCatheter)),
        (t.plus(days(30)), c(14, Command::PrimingBolus { catheter_only: true })),
        (t.plus(days(31)), c(15, Command::PtmBolus)),
        (t.plus(days(40)), Step::Act(WorldAction::MemoryError { critical: false })),
    ]
}

/// Applies a step; the outcome as text, so that two pumps' answers can be compared.
fn apply(pump: &mut Pump, t: Instant, step: &Step) -> String {
    match step {
        Step::Command(id, command) => {
            format!("{:?}", pump.handle(t, Request::clinician(Some(*id), command.clone())))
        }
        Step::Act(action) => format!("{:?}", pump.act(t, *action)),
    }
}

fn new_pump() -> Pump {
    implant(prescription(FLEX_WITH_PTM), 12, 500)
}

/// Two pumps are the same: what they report, their logs, the truth, their counters, their next
/// event, and every byte of their state.
fn assert_same(a: &Pump, b: &Pump, when: &str) {
    assert_eq!(format!("{:?}", a.status()), format!("{:?}", b.status()), "status {when}");
    assert_eq!(a.log().iter().collect::<Vec<_>>(), b.log().iter().collect::<Vec<_>>(), "log {when}");
    assert_eq!(a.world().ledger(), b.world().ledger(), "ledger {when}");
    assert_eq!(a.world().reservoir(), b.world().reservoir(), "true reservoir {when}");
    assert_eq!(a.world().fluid_path(), b.world().fluid_path(), "fluid path {when}");
    assert_eq!(a.counters(), b.counters(), "counters {when}");
    assert_eq!(a.next_event_at(), b.next_event_at(), "next event {when}");
    assert_eq!(a.history().collect::<Vec<_>>(), b.history().collect::<Vec<_>>(), "history {when}");
    assert!(to_snapshot(a) == to_snapshot(b), "state bytes {when}");
}

fn restore(pump: &Pump) -> Pump {
    let bytes = to_snapshot(pump);
    let restored = from_snapshot(&bytes).expect("a pump's own snapshot restores");
    assert!(to_snapshot(&restored) == bytes, "snapshot -> restore -> snapshot gives the same bytes");
    restored
}

/// The pump at `split`, with every step up to it applied.
fn run_until(split: Instant) -> Pump {
    let mut pump = new_pump();
    for (t, step) in script().iter().filter(|(t, _)| *t <= split) {
        apply(&mut pump, *t, step);
    }
    pump.advance_to(split);
    pump
}

/// Restores at `split`, then drives the original and the copy alike through the rest of the
/// script and 200 days more.
fn assert_same_future_from(split: Instant) {
    let mut original = run_until(split);
    let mut restored = restore(&original);
    let when = format!("restored at {split}");
    assert_same(&original, &restored, &when);
    for (t, step) in script().iter().filter(|(t, _)| *t > split) {
        let a = apply(&mut original, *t, step);
        let b = apply(&mut restored, *t, step);
        assert_eq!(a, b, "answer to {step:?} at {t}, {when}");
        assert_same(&original, &restored, &format!("after {step:?} at {t}, {when}"));
    }
    let end = script().last().map_or(split, |(t, _)| *t).max(split).plus(days(200));
    let mut t = split;
    while t < end {
        t = t.plus(days(10)).min(end);
        original.advance_to(t);
        restored.advance_to(t);
        assert_same(&original, &restored, &format!("at {t}, {when}"));
    }
}

#[test]
fn the_script_is_a_rich_history() {
    let pump = run_until(start().plus(days(60)));
    let log = pump.log();
    for kind in [
        EventKind::PrimingStarted,
        EventKind::PtmBolus,
        EventKind::PtmRefused,
        EventKind::MotorStallDetected,
        EventKind::MotorStallRecovered,
        EventKind::ClockSet,
        EventKind::Refilled,
        EventKind::BridgeStarted,
        EventKind::BridgeEnded,
        EventKind::SingleBolusStarted,
        EventKind::TherapyProgrammed,
        EventKind::AlarmThresholdSet,
        EventKind::MemoryError,
    ] {
        assert!(log.count(kind) > 0, "the history has {}", kind.as_str());
    }
    let raised = |kind| log.iter().any(|e| e.event == itb_pump::Event::AlarmRaised(kind));
    assert!(raised(AlarmKind::LowReservoir) && raised(AlarmKind::MotorStall));
    assert!(!pump.world().ledger().to_tissue.mass.is_zero(), "the leak put drug into tissue");
}

#[test]
fn a_restored_pump_has_the_same_future_after_a_rich_history() {
    // After the whole script, with the memory error and the threshold alarm active.
    assert_same_future_from(start().plus(days(45)));
}

#[test]
fn a_restored_pump_has_the_same_future_from_any_point() {
    let t = start();
    let mut splits: Vec<Instant> = script().iter().map(|(at, _)| *at).collect();
    splits.extend([
        t,
        t.plus(Duration::minutes(3)),                          // priming
        t.plus(days(1)).plus(h(2)).plus(Duration::minutes(4)), // PTM bolus running
        t.plus(days(3)).plus(Duration::minutes(2)),            // stalled, not yet noticed
        t.plus(days(3)).plus(h(2)),                            // stall noticed
        t.plus(days(13)),                                      // low-reservoir alarm sounding
        t.plus(days(15)).plus(Duration::minutes(7)),           // bridge and PTM bolus running
        t.plus(days(16)).plus(Duration::minutes(30)),          // single bolus during the bridge
        t.plus(days(30)).plus(Duration::minutes(1)),           // priming a new catheter
    ]);
    splits.sort();
    splits.dedup();
    for split in splits {
        assert_same_future_from(split);
    }
}

#[test]
fn snapshot_restore_snapshot_gives_the_same_bytes() {
    for day in [0, 1, 3, 15, 16, 45, 400] {
        let pump = run_until(start().plus(days(day)));
        let bytes = to_snapshot(&pump);
        let again = to_snapshot(&from_snapshot(&bytes).expect("restores"));
        assert!(bytes == again, "day {day}");
        println!("day {day}: {} log entries, snapshot {} bytes", pump.log().len(), bytes.len());
    }
    // A typical pump a month after implant, for the record.
    let bytes = to_snapshot(&run_until(start().plus(days(30))));
    println!("snapshot of a pump after 30 days of the script: {} bytes", bytes.len());
    assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
}

#[test]
fn a_pump_with_a_wrapped_log_restores_with_the_same_future() {
    let with_ptm = prescription(
        "mode = \"simple_continuous\"\ndose = \"240 micrograms/day\"\n[ptm]\nbolus_dose = \"10 micrograms\"\n\
         bolus_duration = \"5 min\"\nlockout = \"15 min\"\nmax_boluses_per_day = 24\n",
    );
    let mut original = implant(with_ptm, 20, 2000);
    for i in 0..1_500u64 {
        let _ = original.handle(start().plus(Duration::minutes(16 * i)), request(i, Command::PtmBolus));
    }
    assert_eq!(original.log().len(), original.log().capacity(), "the ring has wrapped");
    let mut restored = restore(&original);
    println!("a pump with a full event log: {} bytes", to_snapshot(&original).len());
    assert_same(&original, &restored, "with a wrapped log");
    for i in 1_500..1_700u64 {
        let t = start().plus(Duration::minutes(16 * i));
        let a = original.handle(t, request(i, Command::PtmBolus));
        let b = restored.handle(t, request(i, Command::PtmBolus));
        assert_eq!(a, b);
    }
    let end = original.now().plus(days(200));
    original.advance_to(end);
    restored.advance_to(end);
    assert_same(&original, &restored, "200 days after a wrapped log");
}

// ---- tampering, with a valid checksum, so that the pump's own checks are reached --------------

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn field<'a>(value: &'a mut Value, key: &str) -> &'a mut Value {
    let Value::Map(entries) = value else { panic!("{key}: not a map") };
    entries.iter_mut().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v).expect(key)
}

/// The firmware's part of a decoded pump (the world's is beside it).
fn firmware(pump: &mut Value) -> &mut Value {
    field(pump, "firmware")
}

/// Re-encodes `pump` after `edit` changes its decoded form, with a version and a valid checksum.
fn tampered(pump: &Pump, version: u32, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut envelope: Value = ciborium::from_reader(to_snapshot(pump).as_slice()).expect("CBOR");
    let body = field(&mut envelope, "pump").as_bytes().expect("bytes").clone();
    let mut decoded: Value = ciborium::from_reader(body.as_slice()).expect("CBOR");
    edit(&mut decoded);
    let mut body = Vec::new();
    ciborium::into_writer(&decoded, &mut body).expect("encodes");
    *field(&mut envelope, "crc32") = Value::Integer(crc32(&body).into());
    *field(&mut envelope, "version") = Value::Integer(version.into());
    *field(&mut envelope, "pump") = Value::Bytes(body);
    let mut out = Vec::new();
    ciborium::into_writer(&envelope, &mut out).expect("encodes");
    out
}

fn add_one(value: &mut Value) {
    let Value::Integer(n) = value else { panic!("not an integer") };
    *n = (u64::try_from(*n).expect("u64") + 1).into();
}

#[test]
fn an_untouched_reencoding_restores() {
    let pump = run_until(start().plus(days(16)));
    let bytes = tampered(&pump, SNAPSHOT_VERSION, |_| {});
    assert!(from_snapshot(&bytes).is_ok());
}

#[test]
fn a_broken_mass_balance_is_refused() {
    let pump = run_until(start().plus(days(16)));
    let bytes = tampered(&pump, SNAPSHOT_VERSION, |p| {
        add_one(field(field(field(field(p, "world"), "ledger"), "to_csf"), "mass"))
    });
    let error = from_snapshot(&bytes).map(|_| ()).expect_err("refused");
    assert!(matches!(error, SnapshotError::Inconsistent(ref m) if m.contains("mass balance")), "{error}");
}

#[test]
fn tissue_by_cause_that_does_not_add_up_is_refused() {
    // The rich history has a catheter leak: moving a nanogram from one cause to another keeps
    // the total, and is still refused: the causes are part of the record.
    let pump = run_until(start().plus(days(45)));
    let tissue = pump.world().ledger().tissue;
    assert_eq!(tissue.total(), pump.world().ledger().to_tissue);
    assert!(!tissue.catheter_leak.mass.is_zero(), "the leak is kept as a leak");
    let bytes = tampered(&pump, SNAPSHOT_VERSION, |p| {
        add_one(field(field(field(field(field(p, "world"), "ledger"), "tissue"), "pocket_fill"), "mass"))
    });
    let error = from_snapshot(&bytes).map(|_| ()).expect_err("refused");
    assert!(matches!(error, SnapshotError::Inconsistent(ref m) if m.contains("by cause")), "{error}");
}

#[test]
fn a_log_beyond_its_bound_is_refused() {
    let pump = run_until(start().plus(days(16)));
    let bytes = tampered(&pump, SNAPSHOT_VERSION, |p| {
        *field(field(firmware(p), "log"), "capacity") = Value::Integer(2048.into())
    });
    let error = from_snapshot(&bytes).map(|_| ()).expect_err("refused");
    assert!(matches!(error, SnapshotError::Inconsistent(ref m) if m.contains("event log")), "{error}");
    let bytes = tampered(&pump, SNAPSHOT_VERSION, |p| {
        let Value::Array(entries) = field(field(firmware(p), "log"), "entries") else { panic!("entries") };
        entries.pop();
    });
    let error = from_snapshot(&bytes).map(|_| ()).expect_err("refused");
    assert!(matches!(error, SnapshotError::Inconsistent(ref m) if m.contains("event log")), "{error}");
}

#[test]
fn a_request_memory_whose_keys_do_not_match_is_refused() {
    let pump = run_until(start().plus(days(16)));
    let bytes = tampered(&pump, SNAPSHOT_VERSION, |p| {
        let Value::Array(keys) = field(firmware(p), "request_keys") else { panic!("request keys") };
        keys.pop();
    });
    let error = from_snapshot(&bytes).map(|_| ()).expect_err("refused");
    assert!(matches!(error, SnapshotError::Inconsistent(ref m) if m.contains("request memory")), "{error}");
}

#[test]
fn an_invalid_prescription_is_refused() {
    let pump = run_until(start().plus(days(16)));
    let bytes = tampered(&pump, SNAPSHOT_VERSION, |p| {
        let Value::Map(program) = field(firmware(p), "program") else { panic!("program") };
        let text = program.iter_mut().find(|(k, _)| k.as_text() == Some("prescription")).expect("prescription");
        text.1 = Value::Text("mode = \"simple_continuous\"\ndose = \"0.4 mg/day\"\n".to_owned());
    });
    let error = from_snapshot(&bytes).map(|_| ()).expect_err("refused");
    assert!(matches!(error, SnapshotError::Decode(ref m) if m.contains("milligrams")), "{error}");
}

#[test]
fn a_compiled_program_that_is_not_its_prescriptions_is_refused() {
    let pump = run_until(start().plus(days(16)));
    let bytes = tampered(&pump, SNAPSHOT_VERSION, |p| add_one(field(field(firmware(p), "program"), "max_rate")));
    let error = from_snapshot(&bytes).map(|_| ()).expect_err("refused");
    assert!(matches!(error, SnapshotError::Inconsistent(ref m) if m.contains("program")), "{error}");
}

#[test]
fn an_unknown_version_is_named() {
    let pump = run_until(start().plus(days(1)));
    let error = from_snapshot(&tampered(&pump, 7, |_| {})).map(|_| ()).expect_err("refused");
    assert_eq!(error, SnapshotError::UnknownVersion { found: 7, supported: SNAPSHOT_VERSION });
    assert!(error.to_string().contains("version 7"), "{error}");
}

// ---- arbitrary bytes ---------------------------------------------------------------------------

fn a_snapshot() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| to_snapshot(&run_until(start().plus(days(16))))).clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(from_snapshot(&bytes).is_err());
    }

    #[test]
    fn a_flipped_snapshot_is_refused_without_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
    ) {
        let mut bytes = a_snapshot();
        for (index, mask) in flips {
            let at = index.index(bytes.len());
            bytes[at] ^= mask;
        }
        if bytes != a_snapshot() {
            prop_assert!(from_snapshot(&bytes).is_err());
        }
    }

    #[test]
    fn a_truncated_snapshot_is_refused_without_panic(cut in any::<prop::sample::Index>()) {
        let mut bytes = a_snapshot();
        bytes.truncate(cut.index(bytes.len()));
        prop_assert!(from_snapshot(&bytes).is_err());
    }

    #[test]
    fn a_snapshot_with_bytes_inserted_is_refused_without_panic(
        at in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut bytes = a_snapshot();
        let at = at.index(bytes.len() + 1);
        bytes.splice(at..at, extra);
        prop_assert!(from_snapshot(&bytes).is_err());
    }
}
