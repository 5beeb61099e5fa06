//! The log's entries as the wire carries them: CBOR, externally tagged, snake_case, fields
//! named with their units. Another crate sends these values; this test pins their shape.
#![cfg(feature = "serde")]

use ciborium::Value;
use itb_dose::prescription::Mode;
use itb_pump::{Actor, AlarmKind, Event, LogEntry, LogText, PumpTime, RefusalCode};

fn cbor<T: serde::Serialize>(value: &T) -> Value {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("encodes");
    ciborium::from_reader(bytes.as_slice()).expect("decodes as CBOR")
}

fn back<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("encodes");
    ciborium::from_reader(bytes.as_slice()).map_err(|e| e.to_string())
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| (text(k), v.clone())).collect())
}

fn tagged(tag: &str, fields: &[(&str, Value)]) -> Value {
    map(&[(tag, map(fields))])
}

#[test]
fn each_kind_of_entry_has_its_deliberate_shape() {
    let reason = LogText::new("dose raised 10%: spasms at night").expect("valid");
    let cases: Vec<(Event, Value)> = vec![
        (Event::Implanted, text("implanted")),
        (
            Event::TherapyProgrammed {
                program: 2,
                mode: Mode::PeriodicBolus,
                max_day_ng: 440_000,
                previous_max_day_ng: 400_000,
                worst_case_day_ng: 540_000,
                previous_worst_case_day_ng: 400_000,
                raised: true,
                by: Actor::Clinician,
            },
            tagged(
                "therapy_programmed",
                &[
                    ("program", int(2)),
                    ("mode", text("periodic_bolus")),
                    ("max_day_ng", int(440_000)),
                    ("previous_max_day_ng", int(400_000)),
                    ("worst_case_day_ng", int(540_000)),
                    ("previous_worst_case_day_ng", int(400_000)),
                    ("raised", Value::Bool(true)),
                    ("by", text("clinician")),
                ],
            ),
        ),
        (
            Event::ReservoirWithdrawn { withdrawn_nl: 1_950_000, expected_nl: 2_000_000 },
            tagged("reservoir_withdrawn", &[("withdrawn_nl", int(1_950_000)), ("expected_nl", int(2_000_000))]),
        ),
        (
            Event::Refilled { expected_nl: 0, filled_nl: 20_000_000, concentration_ng_per_ml: 2_000_000 },
            tagged(
                "refilled",
                &[("expected_nl", int(0)), ("filled_nl", int(20_000_000)), ("concentration_ng_per_ml", int(2_000_000))],
            ),
        ),
        (Event::ClinicianReason { reason }, tagged("clinician_reason", &[("reason", text(reason.as_str()))])),
        (Event::PtmBolus { dose_ng: 25_000 }, tagged("ptm_bolus", &[("dose_ng", int(25_000))])),
        (Event::PtmRefused { code: RefusalCode::PtmLockout }, tagged("ptm_refused", &[("code", text("ptm_lockout"))])),
        (
            Event::CommandRefused { code: RefusalCode::RequestIdReused },
            tagged("command_refused", &[("code", text("request_id_reused"))]),
        ),
        (
            Event::ClockSet { before_ms: 1_796_205_600_000, after_ms: 1_796_209_200_000 },
            tagged("clock_set", &[("before_ms", int(1_796_205_600_000)), ("after_ms", int(1_796_209_200_000))]),
        ),
        (
            Event::AlarmRaised(AlarmKind::ElectiveReplacement),
            map(&[("alarm_raised", text("elective_replacement_indicator"))]),
        ),
        (Event::AlarmCleared(AlarmKind::LowReservoir), map(&[("alarm_cleared", text("low_reservoir"))])),
        (Event::MotorStallDetected, text("motor_stall_detected")),
        (Event::MemoryError { critical: true }, tagged("memory_error", &[("critical", Value::Bool(true))])),
    ];
    for (event, shape) in cases {
        assert_eq!(cbor(&event), shape, "{event:?}");
        assert_eq!(back::<Event>(&shape), Ok(event), "{event:?} reads back");
        // The tag is the kind's name.
        let tag = match &shape {
            Value::Text(tag) => tag.clone(),
            Value::Map(entries) => entries[0].0.as_text().expect("a text tag").to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(tag, event.kind().as_str());
    }
    let entry = LogEntry { seq: 42, at: PumpTime::from_ms(1_796_205_600_000), event: Event::Stopped };
    assert_eq!(
        cbor(&entry),
        map(&[("seq", int(42)), ("pump_time_ms", int(1_796_205_600_000)), ("event", text("stopped"))])
    );
}

#[test]
fn codes_and_alarms_are_their_names() {
    for code in RefusalCode::ALL {
        assert_eq!(cbor(&code), text(code.as_str()));
    }
    for kind in AlarmKind::ALL {
        assert_eq!(cbor(&kind), text(kind.as_str()));
    }
    for actor in [Actor::Clinician, Actor::Patient, Actor::Simulator, Actor::Implant] {
        assert_eq!(cbor(&actor), text(actor.as_str()));
    }
}

#[test]
fn what_the_log_could_not_hold_is_refused_on_decode() {
    let long = tagged("clinician_reason", &[("reason", text(&"a".repeat(161)))]);
    let error = back::<Event>(&long).expect_err("too long");
    assert!(error.contains("160 bytes"), "{error}");
    assert!(back::<Event>(&tagged("clinician_reason", &[("reason", text(""))])).is_err());
    assert!(back::<Event>(&tagged("clinician_reason", &[("reason", text("a\nb"))])).is_err());
    assert!(back::<Event>(&text("exploded")).is_err(), "an unknown kind");
    assert!(back::<Event>(&map(&[("alarm_raised", text("lowReservoir"))])).is_err(), "not snake_case");
}

/// An entry with a field the pump does not know is refused, not read with the field dropped
/// (the wire promises closed maps).
#[test]
fn an_unknown_field_inside_an_event_is_refused() {
    let extra = tagged(
        "reservoir_withdrawn",
        &[("withdrawn_nl", int(1)), ("expected_nl", int(1)), ("gap_explained", Value::Bool(true))],
    );
    let error = back::<Event>(&extra).expect_err("an unknown field");
    assert!(error.contains("gap_explained"), "{error}");
    assert!(
        back::<Event>(&tagged("reservoir_withdrawn", &[("withdrawn_nl", int(1)), ("expected_nl", int(1))])).is_ok()
    );
}
