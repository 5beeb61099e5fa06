//! The message catalogue: what travels inside the channel's payloads, as CBOR (RFC 8949).
//!
//! Every message is a CBOR map with a `"type"` text field naming it, snake_case, so that an
//! independent implementation (see `.ci/interop.py`) can speak it with a generic CBOR library.
//! Quantities are exact integers whose unit is in the field's name (`fill_nl`,
//! `concentration_ng_per_ml`, `at_ms` for milliseconds since the Unix epoch); prescriptions travel
//! as their canonical TOML text and are checked by `itb-dose` on arrival.
//!
//! A request carries an `id`: a retry of the same action carries the same id and receives the
//! first answer, so a retried bolus delivers once.

use serde::{Deserialize, Serialize};

/// Most log entries one `read_log` returns.
pub const LOG_READ_MAX: u16 = 256;
/// Largest encoded message accepted, in bytes (within one channel payload).
pub const MESSAGE_MAX_LEN: usize = 60_000;

/// A request to the pump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Unique per intended action; a retry carries the same id.
    pub id: u64,
    /// What is asked.
    pub body: RequestBody,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequestBody {
    /// Full status (clinician).
    Interrogate,
    /// Log entries from a sequence number (clinician).
    ReadLog {
        /// First sequence number wanted.
        from_seq: u64,
        /// Most entries wanted (at most [`LOG_READ_MAX`]).
        max: u16,
    },
    /// Stage a new therapy: the pump answers old beside new with a hash (clinician).
    StageTherapy {
        /// The prescription as TOML text.
        prescription_toml: String,
    },
    /// Withdraw everything from the reservoir: on the virtual device, the nurse's syringe
    /// (clinician). Answers what came out beside what the pump expected.
    WithdrawReservoir,
    /// Stage a refill: the pump answers old beside new with a hash (clinician).
    StageRefill {
        /// Volume injected into the reservoir, nanolitres.
        fill_nl: u64,
        /// Its concentration, nanograms per mL.
        concentration_ng_per_ml: u64,
        /// Run a bridge bolus if the concentration changes.
        bridge: bool,
    },
    /// Commit the staged change whose summary hashed to `hash` (clinician).
    Commit {
        /// The hash of the reviewed summary (32 bytes, BLAKE2s-256).
        #[serde(with = "serde_bytes")]
        hash: Vec<u8>,
    },
    /// Discard the staged change (clinician).
    Discard,
    /// Set the pump's clock to a wall-clock reading (clinician).
    SetClock {
        /// Milliseconds since 1970-01-01T00:00 on the wall clock (no zone).
        pump_time_ms: i64,
    },
    /// Set the low-reservoir alarm threshold (clinician).
    SetAlarmThreshold {
        /// Nanolitres.
        threshold_nl: u64,
    },
    /// Clear an alarm (clinician).
    ClearAlarm {
        /// The alarm's name, as in `itb_pump::AlarmKind::as_str`.
        alarm: String,
    },
    /// Stop delivery (clinician).
    Stop,
    /// Resume the therapy (clinician).
    Resume,
    /// After an MRI scan: is the motor running? (clinician)
    PostMriCheck,
    /// A clinician's single bolus.
    SingleBolus {
        /// Dose, nanograms.
        dose_ng: u64,
        /// Over, milliseconds.
        duration_ms: u64,
        /// Stop the pump afterwards.
        then_stop: bool,
    },
    /// A priming bolus (clinician).
    PrimingBolus {
        /// After a catheter revision only the catheter is empty.
        catheter_only: bool,
    },
    /// Short status for the patient (patient or clinician).
    PtmStatus,
    /// A patient bolus (patient).
    PtmBolus,
}

impl RequestBody {
    /// The message's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            RequestBody::Interrogate => "interrogate",
            RequestBody::ReadLog { .. } => "read_log",
            RequestBody::StageTherapy { .. } => "stage_therapy",
            RequestBody::WithdrawReservoir => "withdraw_reservoir",
            RequestBody::StageRefill { .. } => "stage_refill",
            RequestBody::Commit { .. } => "commit",
            RequestBody::Discard => "discard",
            RequestBody::SetClock { .. } => "set_clock",
            RequestBody::SetAlarmThreshold { .. } => "set_alarm_threshold",
            RequestBody::ClearAlarm { .. } => "clear_alarm",
            RequestBody::Stop => "stop",
            RequestBody::Resume => "resume",
            RequestBody::PostMriCheck => "post_mri_check",
            RequestBody::SingleBolus { .. } => "single_bolus",
            RequestBody::PrimingBolus { .. } => "priming_bolus",
            RequestBody::PtmStatus => "ptm_status",
            RequestBody::PtmBolus => "ptm_bolus",
        }
    }
}

/// The pump's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The answer.
    pub body: ResponseBody,
}

/// An active alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmInfo {
    /// Its name.
    pub alarm: String,
    /// Critical (two-tone) or not.
    pub critical: bool,
    /// When raised.
    pub raised_at_ms: i64,
    /// What it means.
    pub meaning: String,
}

/// The full status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// True time of the reading.
    pub now_ms: i64,
    /// The pump's clock, wall-clock milliseconds.
    pub pump_time_ms: i64,
    /// The device profile.
    pub profile: String,
    /// Reservoir capacity.
    pub capacity_nl: u64,
    /// The gap at refill above which to stop and investigate.
    pub refill_gap_warning_nl: u64,
    /// The firmware's reservoir estimate.
    pub reservoir_nl: u64,
    /// The concentration in the reservoir.
    pub concentration_ng_per_ml: u64,
    /// Low-reservoir alarm threshold.
    pub alarm_threshold_nl: u64,
    /// The programmed therapy, TOML.
    pub prescription_toml: Option<String>,
    /// The program's number.
    pub program_number: u64,
    /// therapy, bridge, single_bolus, priming, stopped, halted, end_of_service.
    pub state: String,
    /// Volume rate now.
    pub rate_nl_per_day: u64,
    /// The prescription's largest day with every PTM bolus, nanograms.
    pub worst_case_daily_dose_ng: u64,
    /// When the low-reservoir alarm will sound at the worst-case rate, if it will.
    pub low_reservoir_alarm_at_ms: Option<i64>,
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

/// One side of a staged change: what is, or what would be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    /// The prescription, one line.
    pub therapy: String,
    /// Its TOML, if any.
    pub prescription_toml: Option<String>,
    /// Largest day without PTM, nanograms.
    pub max_day_ng: u64,
    /// Largest day with every PTM bolus, nanograms.
    pub worst_case_day_ng: u64,
    /// Reservoir, nanolitres.
    pub reservoir_nl: u64,
    /// Concentration, nanograms per mL.
    pub concentration_ng_per_ml: u64,
    /// Volume rate at the largest day, nanolitres per day.
    pub daily_volume_nl: u64,
    /// Low-reservoir alarm at, milliseconds since the epoch.
    pub low_reservoir_alarm_at_ms: Option<i64>,
}

/// A staged change: old beside new, warnings with reasons, and the hash to commit by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// What kind of change: `therapy` or `refill`.
    pub change: String,
    /// Now.
    pub old: Side,
    /// After the commit.
    pub new: Side,
    /// Sentences a clinician must read.
    pub warnings: Vec<String>,
    /// BLAKE2s-256 of the canonical CBOR of (change, old, new, warnings).
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
    /// The staged change is discarded at this instant if not committed.
    pub expires_at_ms: i64,
}

/// A log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Sequence number.
    pub seq: u64,
    /// Pump clock, wall-clock milliseconds.
    pub pump_time_ms: i64,
    /// Kind.
    pub kind: String,
    /// Details.
    pub detail: String,
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
        /// Above this gap, stop and investigate.
        warning_above_nl: u64,
    },
    /// Done.
    Done {
        /// What now holds.
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
        /// Delivery state.
        state: String,
        /// What to do.
        advice: String,
    },
    /// The patient's short status.
    PtmStatus {
        /// Boluses in the last 24 hours.
        boluses_last_24h: u32,
        /// Allowed per 24 hours (0: no PTM prescribed).
        allowed_per_24h: u32,
        /// Next allowed at, if not now.
        next_allowed_at_ms: Option<i64>,
        /// Alarms sounding, by name.
        alarms: Vec<String>,
    },
    /// Refused, with why and when to try again.
    Refused {
        /// A code (`ptm_lockout`, `not_permitted`, `stale_change`, ...).
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
        let value: ciborium::Value = ciborium::from_reader(encode(&RequestBody::Interrogate).as_slice()).expect("cbor");
        let map = value.as_map().expect("a map");
        assert_eq!(map[0].0.as_text(), Some("type"));
        assert_eq!(map[0].1.as_text(), Some("interrogate"));
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
