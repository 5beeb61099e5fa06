//! The message catalogue: what travels inside the channel's payloads, as CBOR (RFC 8949).
//!
//! Every message is a CBOR map with a `"type"` text field naming it, snake_case, so that an
//! independent implementation (see `.ci/interop.py`) can speak it with a generic CBOR library.
//! Quantities are exact integers whose unit is in the field's name (`fill_nl`,
//! `concentration_ng_per_ml`, `at_ms` for milliseconds since the Unix epoch); prescriptions travel
//! as their canonical TOML text and are checked by `itb-dose` on arrival.
//!
//! A request carries an `id`: a retry of the same action carries the same id and the same body
//! and receives the first answer, so a retried bolus delivers once; the same id with another
//! body is refused (`request_id_reused`). Every map is closed: an unknown `type` or an unknown
//! field anywhere is refused, never ignored.
//!
//! The pump's side gives no clinical advice: a staged change comes back as what the pump will
//! do and the state it was staged against; the programmer (`itb-programmer`) reviews it with
//! the rules of `itb-dose`.

use serde::{Deserialize, Serialize};

/// Most log entries one `read_log` returns.
pub const LOG_READ_MAX: u16 = 256;
/// Largest encoded message accepted, in bytes (within one channel payload).
pub const MESSAGE_MAX_LEN: usize = 60_000;

/// A request to the pump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Unique per intended action; a retry carries the same id (and the same body).
    pub id: u64,
    /// What is asked.
    pub body: RequestBody,
}

/// What a request asks. Requests without fields are empty maps beside their `type`, so that an
/// unknown field is refused for them too (serde ignores extra fields beside a unit variant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequestBody {
    /// Full status (clinician).
    Interrogate {},
    /// Log entries from a sequence number (clinician).
    ReadLog {
        /// First sequence number wanted.
        from_seq: u64,
        /// Most entries wanted (at most [`LOG_READ_MAX`]).
        max: u16,
    },
    /// Stage a new therapy: the pump checks it against its hard limits and answers what it
    /// will do, the state it was staged against, and a hash to commit by (clinician).
    StageTherapy {
        /// The prescription as TOML text.
        prescription_toml: String,
    },
    /// Withdraw everything from the reservoir: on the virtual device, the nurse's syringe; the
    /// pump logs what came out and believes its reservoir empty (clinician).
    WithdrawReservoir {},
    /// Stage a refill (clinician). Before the old drug is withdrawn, the pump only checks it
    /// against its limits and answers `not_withdrawn`.
    StageRefill {
        /// Volume injected into the reservoir, nanolitres.
        fill_nl: u64,
        /// Its concentration, nanograms per mL.
        concentration_ng_per_ml: u64,
        /// Run a bridge bolus if the concentration changes.
        bridge: bool,
    },
    /// Commit the staged change whose hash is `hash` (clinician).
    Commit {
        /// The staged change's hash (32 bytes, BLAKE2s-256).
        #[serde(with = "serde_bytes")]
        hash: Vec<u8>,
        /// The clinician's written reason for going ahead despite a dangerous warning, kept in
        /// the pump's log (at most 160 bytes).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Discard the staged change (clinician).
    Discard {},
    /// Set the pump's clock to a wall-clock reading (clinician).
    SetClock {
        /// Milliseconds since 1970-01-01T00:00 on the wall clock (no zone).
        pump_time_ms: i64,
        /// The clinician's written reason, kept in the pump's log (at most 160 bytes).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Set the low-reservoir alarm threshold (clinician).
    SetAlarmThreshold {
        /// Nanolitres.
        threshold_nl: u64,
        /// The clinician's written reason, kept in the pump's log (at most 160 bytes).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Clear an alarm (clinician).
    ClearAlarm {
        /// The alarm's code, as in `itb_pump::AlarmKind::as_str`.
        alarm: String,
    },
    /// Stop delivery (clinician).
    Stop {
        /// The clinician's written reason, kept in the pump's log (at most 160 bytes).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Resume the therapy (clinician).
    Resume {
        /// The clinician's written reason, kept in the pump's log (at most 160 bytes).
        #[serde(default)]
        reason: Option<String>,
    },
    /// After an MRI scan: is the motor running? (clinician)
    PostMriCheck {},
    /// A clinician's single bolus.
    SingleBolus {
        /// Dose, nanograms.
        dose_ng: u64,
        /// Over, milliseconds.
        duration_ms: u64,
        /// Stop the pump afterwards.
        then_stop: bool,
        /// The clinician's written reason, kept in the pump's log (at most 160 bytes).
        #[serde(default)]
        reason: Option<String>,
    },
    /// A priming bolus (clinician).
    PrimingBolus {
        /// After a catheter revision only the catheter is empty.
        catheter_only: bool,
        /// The clinician's written reason, kept in the pump's log (at most 160 bytes).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Short status for the patient (patient or clinician).
    PtmStatus {},
    /// A patient bolus (patient).
    PtmBolus {},
}

impl RequestBody {
    /// The message's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            RequestBody::Interrogate {} => "interrogate",
            RequestBody::ReadLog { .. } => "read_log",
            RequestBody::StageTherapy { .. } => "stage_therapy",
            RequestBody::WithdrawReservoir {} => "withdraw_reservoir",
            RequestBody::StageRefill { .. } => "stage_refill",
            RequestBody::Commit { .. } => "commit",
            RequestBody::Discard {} => "discard",
            RequestBody::SetClock { .. } => "set_clock",
            RequestBody::SetAlarmThreshold { .. } => "set_alarm_threshold",
            RequestBody::ClearAlarm { .. } => "clear_alarm",
            RequestBody::Stop { .. } => "stop",
            RequestBody::Resume { .. } => "resume",
            RequestBody::PostMriCheck {} => "post_mri_check",
            RequestBody::SingleBolus { .. } => "single_bolus",
            RequestBody::PrimingBolus { .. } => "priming_bolus",
            RequestBody::PtmStatus {} => "ptm_status",
            RequestBody::PtmBolus {} => "ptm_bolus",
        }
    }
}

/// The pump's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The answer.
    pub body: ResponseBody,
}

/// An active alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmInfo {
    /// Its code (`itb_pump::AlarmKind::as_str`).
    pub alarm: String,
    /// Critical (two-tone) or not.
    pub critical: bool,
    /// When raised.
    pub raised_at_ms: i64,
}

/// The full status: what the pump knows and believes, nothing derived by clinical rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusInfo {
    /// True time of the reading.
    pub now_ms: i64,
    /// The pump's clock, wall-clock milliseconds.
    pub pump_time_ms: i64,
    /// The device profile.
    pub profile: String,
    /// Reservoir capacity.
    pub capacity_nl: u64,
    /// The gap at refill above which to stop and investigate (the profile's).
    pub refill_gap_warning_nl: u64,
    /// The pump tubing and catheter volume the pump was told at implant.
    pub dead_volume_nl: u64,
    /// The firmware's reservoir estimate.
    pub reservoir_nl: u64,
    /// When the drug in the reservoir went in (implant or the last refill), true time.
    pub filled_at_ms: i64,
    /// The concentration in the reservoir.
    pub concentration_ng_per_ml: u64,
    /// Low-reservoir alarm threshold.
    pub alarm_threshold_nl: u64,
    /// The old drug was withdrawn and the pump awaits its refill.
    pub awaiting_refill: bool,
    /// While it awaits its refill: the withdrawal it was told of.
    pub withdrawal: Option<WithdrawalInfo>,
    /// The programmed therapy, TOML.
    pub prescription_toml: Option<String>,
    /// The program's number.
    pub program_number: u64,
    /// therapy, bridge, single_bolus, priming, stopped, halted, end_of_service.
    pub state: String,
    /// Volume rate now.
    pub rate_nl_per_day: u64,
    /// Active alarms.
    pub alarms: Vec<AlarmInfo>,
    /// Motor known stalled.
    pub motor_stalled: bool,
    /// Battery life left, milliseconds.
    pub battery_remaining_ms: u64,
    /// Replace the pump by this instant: the estimated End of Service, never later than the
    /// service life allows.
    pub replace_by_ms: i64,
    /// ERI reached.
    pub elective_replacement: bool,
    /// PTM boluses in the last 24 hours.
    pub ptm_boluses_last_24h: u32,
    /// Next PTM bolus allowed at, if not now.
    pub ptm_next_allowed_at_ms: Option<i64>,
    /// Next log sequence number.
    pub log_next_seq: u64,
}

/// A withdrawal as the pump recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalInfo {
    /// Withdrawn, nanolitres.
    pub withdrawn_nl: u64,
    /// The pump's estimate before, nanolitres.
    pub expected_nl: u64,
    /// When (true time).
    pub at_ms: i64,
}

/// What a staged change will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StagedChange {
    /// Program this therapy.
    Therapy {
        /// The prescription as the pump will run it (canonical TOML).
        prescription_toml: String,
    },
    /// Refill: the reservoir holds `fill_nl` of `concentration_ng_per_ml` after it.
    Refill {
        /// Volume, nanolitres.
        fill_nl: u64,
        /// Concentration, nanograms per mL.
        concentration_ng_per_ml: u64,
        /// A bridge bolus runs if the concentration changes.
        bridge: bool,
    },
}

/// A staged change: what the pump will do, the state it was staged against, and the hash to
/// commit by. The pump gives no clinical advice; the programmer reviews the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staged {
    /// What the pump will do.
    pub change: StagedChange,
    /// The pump when the change was staged: the "old" of the review.
    pub against: StatusInfo,
    /// BLAKE2s-256 of the canonical CBOR of the change and the pump state it was staged
    /// against (see docs/PROTOCOL.md).
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
    /// The staged change is discarded at this instant if not committed.
    pub expires_at_ms: i64,
}

/// A log entry: its typed event and the pump's own sentence for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLine {
    /// Sequence number.
    pub seq: u64,
    /// Pump clock, wall-clock milliseconds.
    pub pump_time_ms: i64,
    /// What happened, as data.
    pub event: itb_pump::Event,
    /// What happened, in a sentence for people.
    pub text: String,
}

/// What the pump answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseBody {
    /// Full status.
    Status(Box<StatusInfo>),
    /// Log entries.
    Log {
        /// The entries, oldest first.
        entries: Vec<LogLine>,
        /// The oldest sequence number the pump still holds (1 until the ring wraps).
        first_seq: u64,
        /// The next sequence number.
        next_seq: u64,
    },
    /// A staged change to review.
    Staged(Box<Staged>),
    /// What was withdrawn against what was expected.
    Withdrawn {
        /// Withdrawn, nanolitres.
        withdrawn_nl: u64,
        /// The pump's estimate before, nanolitres.
        expected_nl: u64,
        /// When (true time).
        at_ms: i64,
    },
    /// Done.
    Done {
        /// What now holds, in the pump's words.
        message: String,
    },
    /// A bolus started.
    BolusStarted {
        /// Dose, nanograms.
        dose_ng: u64,
        /// Ends at.
        ends_at_ms: i64,
    },
    /// After an MRI: the motor's state.
    MriCheck {
        /// The firmware knows the motor is stalled.
        motor_stalled: bool,
        /// Stalls detected since implant.
        stalls_detected: u64,
        /// Recoveries logged since implant.
        recoveries: u64,
        /// The motor-stall alarm is active.
        stall_alarm: bool,
        /// Delivery state.
        state: String,
    },
    /// The patient's short status.
    PtmStatus {
        /// Boluses in the last 24 hours.
        boluses_last_24h: u32,
        /// Allowed per 24 hours (0: no PTM prescribed).
        allowed_per_24h: u32,
        /// Next allowed at, if not now.
        next_allowed_at_ms: Option<i64>,
        /// Alarms sounding, by code.
        alarms: Vec<String>,
    },
    /// Refused, with why and when to try again.
    Refused {
        /// A code (`ptm_lockout`, `not_permitted`, `stale_change`, `request_id_reused`, ...).
        code: String,
        /// For a person.
        message: String,
        /// When the same request could succeed.
        retry_at_ms: Option<i64>,
    },
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Larger than [`MESSAGE_MAX_LEN`].
    #[error("message of {0} bytes is larger than {MESSAGE_MAX_LEN}")]
    TooLarge(usize),
    /// Not CBOR of the expected shape.
    #[error("not a valid message: {0}")]
    Invalid(String),
}

/// Encodes a message as CBOR.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail; an empty payload would be refused by the peer.
    let _ = ciborium::into_writer(message, &mut bytes);
    bytes
}

/// Decodes a message, refusing oversize input before parsing.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, MessageError> {
    if bytes.len() > MESSAGE_MAX_LEN {
        return Err(MessageError::TooLarge(bytes.len()));
    }
    ciborium::de::from_reader_with_recursion_limit(bytes, 32).map_err(|e| MessageError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_are_tagged_maps() {
        let request = Request {
            id: 7,
            body: RequestBody::StageRefill { fill_nl: 20_000_000, concentration_ng_per_ml: 2_000_000, bridge: true },
        };
        let bytes = encode(&request);
        assert_eq!(decode::<Request>(&bytes), Ok(request));
        let value: ciborium::Value =
            ciborium::from_reader(encode(&RequestBody::Interrogate {}).as_slice()).expect("cbor");
        let map = value.as_map().expect("a map");
        assert_eq!(map[0].0.as_text(), Some("type"));
        assert_eq!(map[0].1.as_text(), Some("interrogate"));
    }

    fn text(s: &str) -> ciborium::Value {
        ciborium::Value::Text(s.into())
    }

    fn map(entries: Vec<(&str, ciborium::Value)>) -> ciborium::Value {
        ciborium::Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
    }

    /// Every request, written by hand as an independent encoder would: accepted as it is, and
    /// refused with one unknown field beside it.
    #[test]
    fn unknown_fields_are_refused_in_every_request() {
        use ciborium::Value::{Bool, Bytes, Integer};
        let int = |n: u64| Integer(n.into());
        let bodies: Vec<Vec<(&str, ciborium::Value)>> = vec![
            vec![("type", text("interrogate"))],
            vec![("type", text("read_log")), ("from_seq", int(1)), ("max", int(10))],
            vec![("type", text("stage_therapy")), ("prescription_toml", text("mode = \"stopped\"\n"))],
            vec![("type", text("withdraw_reservoir"))],
            vec![
                ("type", text("stage_refill")),
                ("fill_nl", int(1)),
                ("concentration_ng_per_ml", int(1)),
                ("bridge", Bool(true)),
            ],
            vec![("type", text("commit")), ("hash", Bytes(vec![0; 32]))],
            vec![("type", text("commit")), ("hash", Bytes(vec![0; 32])), ("reason", text("a written reason"))],
            vec![("type", text("discard"))],
            vec![("type", text("set_clock")), ("pump_time_ms", int(1))],
            vec![("type", text("set_alarm_threshold")), ("threshold_nl", int(1))],
            vec![("type", text("clear_alarm")), ("alarm", text("motor_stall"))],
            vec![("type", text("stop"))],
            vec![("type", text("stop")), ("reason", text("a written reason"))],
            vec![("type", text("resume"))],
            vec![("type", text("resume")), ("reason", text("a written reason"))],
            vec![("type", text("post_mri_check"))],
            vec![
                ("type", text("single_bolus")),
                ("dose_ng", int(1)),
                ("duration_ms", int(1)),
                ("then_stop", Bool(false)),
            ],
            vec![("type", text("priming_bolus")), ("catheter_only", Bool(false))],
            vec![("type", text("ptm_status"))],
            vec![("type", text("ptm_bolus"))],
        ];
        for body in bodies {
            let name = format!("{:?}", body[0].1);
            let request = |body: Vec<(&str, ciborium::Value)>| encode(&map(vec![("id", int(7)), ("body", map(body))]));
            assert!(decode::<Request>(&request(body.clone())).is_ok(), "{name} as written");
            let mut extra = body.clone();
            extra.push(("then_stop", Bool(true)));
            if name.contains("single_bolus") {
                extra.pop();
                extra.push(("urgent", Bool(true)));
            }
            assert!(decode::<Request>(&request(extra)).is_err(), "{name} with an unknown field");
        }
        // An unknown field beside the body, too.
        let outer =
            encode(&map(vec![("id", int(7)), ("body", map(vec![("type", text("stop"))])), ("force", Bool(true))]));
        assert!(decode::<Request>(&outer).is_err());
    }

    #[test]
    fn garbage_and_oversize_are_refused() {
        assert!(decode::<Request>(&[0xff, 0x00, 0x13]).is_err());
        assert!(matches!(decode::<Request>(&vec![0u8; MESSAGE_MAX_LEN + 1]), Err(MessageError::TooLarge(_))));
        let unknown = encode(&ciborium::Value::Map(vec![
            (ciborium::Value::Text("id".into()), ciborium::Value::Integer(1.into())),
            (
                ciborium::Value::Text("body".into()),
                ciborium::Value::Map(vec![(
                    ciborium::Value::Text("type".into()),
                    ciborium::Value::Text("self_destruct".into()),
                )]),
            ),
        ]));
        assert!(decode::<Request>(&unknown).is_err());
    }
}
