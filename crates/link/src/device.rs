//! The pump's side of the link: a message in, the pump's answer out. Sans-IO: the caller owns
//! the clock, the socket and the disk.
//!
//! - **Roles as types.** [`authorize`] turns a request and the session's [`Role`] into either a
//!   [`ClinicianRequest`] (which only a clinician session can hold) or a [`PatientRequest`] (PTM
//!   status and bolus, nothing else). A patient session cannot even express a therapy change.
//! - **Transactions for therapy.** A therapy change or refill is *staged*: the pump checks it
//!   against its hard limits on a copy of itself and answers what it will do, the state it was
//!   staged against, and a hash of both. Only a `commit` carrying that hash, while the pump is
//!   still in that state (therapy, concentration, reservoir withdrawals and refills, alarm
//!   threshold, clock, alarms, delivery state), changes delivery. A session that breaks before
//!   the commit leaves the old therapy running; the staged change expires after 10 minutes.
//! - **No clinical advice.** The pump enforces its hard limits and says what it will do; the
//!   programmer reviews the change with the rules of `itb-dose`.
//! - **Idempotency keyed by the request itself.** Every answer is remembered by the session's
//!   role, the full 64-bit request id and a hash of the request body (bounded): a retry gets
//!   the first answer and acts once; the same id with another body is refused
//!   (`request_id_reused`) and acts on nothing.

use std::collections::VecDeque;

use blake2::{Blake2s256, Digest};
use itb_dose::{Concentration, Duration, Mass, Prescription, Volume};
use itb_pump::world::InjectInto;
use itb_pump::{
    Actor, AlarmKind, Command, EventKind, Instant, LogText, Pump, PumpTime, Refusal, Reply, Request as PumpRequest,
    WorldAction,
};
use serde::Serialize;

use crate::message::{
    self, AlarmInfo, LOG_READ_MAX, LogLine, Request, RequestBody, Response, ResponseBody, Staged, StagedChange,
    StatusInfo, WithdrawalInfo,
};
use crate::trust::Role;

/// How long a staged change waits for its commit.
pub const STAGED_LIFETIME: Duration = Duration::minutes(10);
/// Answers remembered for retries.
pub const ANSWERS_REMEMBERED: usize = 64;

/// Proof that the session is a clinician's. Only [`authorize`] makes one.
#[derive(Debug)]
pub struct ClinicianCap(());

/// A request a clinician session may make.
#[derive(Debug)]
pub struct ClinicianRequest {
    _cap: ClinicianCap,
    body: RequestBody,
}

/// The only requests a patient session can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientRequest {
    /// Short status.
    Status,
    /// A PTM bolus.
    Bolus,
}

/// An authorized request.
#[derive(Debug)]
pub enum Authorized {
    /// From a clinician.
    Clinician(ClinicianRequest),
    /// From a patient.
    Patient(PatientRequest),
}

/// Sorts a request by the session's role; a patient asking for anything but the PTM's two
/// requests is refused.
pub fn authorize(role: Role, body: RequestBody) -> Result<Authorized, String> {
    match (role, body) {
        (Role::Patient, RequestBody::PtmStatus {}) => Ok(Authorized::Patient(PatientRequest::Status)),
        (Role::Patient, RequestBody::PtmBolus {}) => Ok(Authorized::Patient(PatientRequest::Bolus)),
        (Role::Patient, other) => Err(format!(
            "a patient's therapy manager may ask for a bolus or the short status only, not {}",
            other.name()
        )),
        (Role::Clinician, RequestBody::PtmBolus {}) => {
            Err("a PTM bolus is the patient's; a clinician gives a single_bolus".to_owned())
        }
        (Role::Clinician, body) => Ok(Authorized::Clinician(ClinicianRequest { _cap: ClinicianCap(()), body })),
    }
}

#[derive(Debug, Clone)]
enum Change {
    Therapy(Prescription),
    Refill { fill: Volume, concentration: Concentration, bridge: bool },
}

impl Change {
    fn message(&self) -> StagedChange {
        match self {
            Change::Therapy(prescription) => {
                StagedChange::Therapy { prescription_toml: itb_dose::toml::to_toml(prescription) }
            }
            Change::Refill { fill, concentration, bridge } => StagedChange::Refill {
                fill_nl: fill.as_nl(),
                concentration_ng_per_ml: concentration.as_ng_per_ml(),
                bridge: *bridge,
            },
        }
    }
}

/// The state a staged change was made against: if any of it moves, the change is stale. Each
/// count is of log entries ever written, so a change and its undoing (stop, then resume) still
/// count as a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Fingerprint {
    program_number: u64,
    concentration_ng_per_ml: u64,
    alarm_threshold_nl: u64,
    awaiting_refill: bool,
    state: &'static str,
    alarms: Vec<&'static str>,
    /// Counts of the log entries that change what a review showed.
    counts: Vec<u64>,
}

/// The log entries whose every occurrence makes a staged change stale.
const STALE_AFTER: [EventKind; 17] = [
    EventKind::TherapyProgrammed,
    EventKind::Stopped,
    EventKind::Resumed,
    EventKind::Refilled,
    EventKind::ReservoirWithdrawn,
    EventKind::BridgeStarted,
    EventKind::SingleBolusStarted,
    EventKind::PrimingStarted,
    EventKind::PtmBolus,
    EventKind::ClockSet,
    EventKind::AlarmThresholdSet,
    EventKind::AlarmRaised,
    EventKind::AlarmCleared,
    EventKind::MotorStallDetected,
    EventKind::MotorStallRecovered,
    EventKind::EndOfService,
    EventKind::LowBatteryReset,
];

#[derive(Debug, Clone)]
struct Pending {
    change: Change,
    hash: Vec<u8>,
    fingerprint: Fingerprint,
    expires_at: Instant,
}

/// One remembered answer.
#[derive(Debug, Clone)]
struct Answer {
    role: Role,
    id: u64,
    body_hash: [u8; 32],
    response: Vec<u8>,
}

/// What handling a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The encoded response.
    pub response: Vec<u8>,
    /// The pump's state changed: persist it before sending the response.
    pub changed: bool,
}

/// The virtual pump behind the link.
#[derive(Debug, Clone)]
pub struct Device {
    pump: Pump,
    pending: Option<Pending>,
    answers: VecDeque<Answer>,
}

fn refused(code: &str, message: impl Into<String>) -> ResponseBody {
    ResponseBody::Refused { code: code.to_owned(), message: message.into(), retry_at_ms: None }
}

fn from_refusal(refusal: &Refusal) -> ResponseBody {
    ResponseBody::Refused {
        code: refusal.code.as_str().to_owned(),
        message: refusal.message.clone(),
        retry_at_ms: refusal.retry_at.map(Instant::as_ms),
    }
}

fn reused(id: u64) -> ResponseBody {
    refused(
        "request_id_reused",
        format!("request id {id} was used before for another request; nothing was done: give a new action a new id"),
    )
}

fn hash_of<T: Serialize>(value: &T) -> [u8; 32] {
    Blake2s256::digest(message::encode(value)).into()
}

/// A written reason as the pump keeps it.
fn reason_text(reason: Option<&str>) -> Result<Option<LogText>, ResponseBody> {
    reason
        .map(|text| {
            LogText::new(text).map_err(|error| {
                refused("invalid_reason", format!("the reason cannot be kept in the pump's log: {error}"))
            })
        })
        .transpose()
}

impl Device {
    /// A device around a pump.
    pub fn new(pump: Pump) -> Self {
        Self { pump, pending: None, answers: VecDeque::with_capacity(ANSWERS_REMEMBERED) }
    }
    /// The pump.
    pub fn pump(&self) -> &Pump {
        &self.pump
    }
    /// Runs the pump to `now` (for a device that ticks between requests).
    pub fn advance_to(&mut self, now: Instant) {
        self.pump.advance_to(now);
    }

    /// Handles one payload from a session of `role` at `now`.
    pub fn handle(&mut self, role: Role, now: Instant, payload: &[u8]) -> Outcome {
        self.pump.advance_to(now);
        if let Some(pending) = &self.pending
            && pending.expires_at <= self.pump.now()
        {
            self.pending = None;
        }
        let request: Request = match message::decode(payload) {
            Ok(request) => request,
            Err(error) => {
                let body = refused("malformed", format!("{error}; nothing was done"));
                return Outcome { response: message::encode(&Response { id: 0, body }), changed: false };
            }
        };
        // The body as decoded, encoded again: the same request however its map was ordered.
        let body_hash = hash_of(&request.body);
        if let Some(answer) = self.answers.iter().find(|a| a.role == role && a.id == request.id) {
            if answer.body_hash == body_hash {
                return Outcome { response: answer.response.clone(), changed: false };
            }
            return Outcome {
                response: message::encode(&Response { id: request.id, body: reused(request.id) }),
                changed: false,
            };
        }
        let (body, changed) = match authorize(role, request.body) {
            Err(why) => (refused("not_permitted", why), false),
            Ok(Authorized::Patient(patient)) => self.patient(patient, request.id),
            Ok(Authorized::Clinician(clinician)) => self.clinician(clinician, request.id),
        };
        let response = message::encode(&Response { id: request.id, body });
        if self.answers.len() == ANSWERS_REMEMBERED {
            self.answers.pop_front();
        }
        self.answers.push_back(Answer { role, id: request.id, body_hash, response: response.clone() });
        Outcome { response, changed }
    }

    fn command(&mut self, by: Actor, id: u64, reason: Option<LogText>, command: Command) -> Result<Reply, Refusal> {
        let now = self.pump.now();
        self.pump.handle(now, PumpRequest { id: Some(id), by, reason, command })
    }

    fn patient(&mut self, request: PatientRequest, id: u64) -> (ResponseBody, bool) {
        match request {
            PatientRequest::Status => (self.ptm_status(), false),
            PatientRequest::Bolus => match self.command(Actor::Patient, id, None, Command::PtmBolus) {
                Ok(Reply::BolusStarted { dose, ends_at }) => {
                    (ResponseBody::BolusStarted { dose_ng: dose.as_ng(), ends_at_ms: ends_at.as_ms() }, true)
                }
                Ok(other) => (refused("unexpected", format!("the pump answered {}", reply_name(&other))), true),
                Err(refusal) => (from_refusal(&refusal), true),
            },
        }
    }

    fn ptm_status(&self) -> ResponseBody {
        let status = self.pump.status();
        let allowed = status.prescription.as_ref().and_then(|p| p.ptm().map(|l| l.max_per_day)).unwrap_or(0);
        ResponseBody::PtmStatus {
            boluses_last_24h: status.ptm_boluses_last_24h,
            allowed_per_24h: allowed,
            next_allowed_at_ms: status.ptm_next_allowed_at.map(Instant::as_ms),
            alarms: status.alarms.iter().map(|a| a.kind.as_str().to_owned()).collect(),
        }
    }

    fn clinician(&mut self, request: ClinicianRequest, id: u64) -> (ResponseBody, bool) {
        let done = |result: Result<Reply, Refusal>| match result {
            Ok(Reply::Done(message)) => (ResponseBody::Done { message }, true),
            Ok(Reply::BolusStarted { dose, ends_at }) => {
                (ResponseBody::BolusStarted { dose_ng: dose.as_ng(), ends_at_ms: ends_at.as_ms() }, true)
            }
            Ok(other) => (ResponseBody::Done { message: reply_name(&other).to_owned() }, true),
            Err(refusal) => (from_refusal(&refusal), true),
        };
        let by = Actor::Clinician;
        match request.body {
            RequestBody::Interrogate {} => (ResponseBody::Status(Box::new(self.status_info())), false),
            RequestBody::ReadLog { from_seq, max } => {
                let log = self.pump.log();
                let entries = log
                    .read_from(from_seq, usize::from(max.min(LOG_READ_MAX)))
                    .into_iter()
                    .map(|e| LogLine {
                        seq: e.seq,
                        pump_time_ms: e.at.as_ms(),
                        event: e.event,
                        text: e.event.describe(),
                    })
                    .collect();
                let first_seq = log.iter().next().map_or(log.next_seq(), |e| e.seq);
                (ResponseBody::Log { entries, first_seq, next_seq: log.next_seq() }, false)
            }
            RequestBody::StageTherapy { prescription_toml } => match itb_dose::toml::from_toml(&prescription_toml) {
                Ok(prescription) => self.stage(Change::Therapy(prescription)),
                Err(error) => (refused("invalid_prescription", error.to_string()), false),
            },
            RequestBody::WithdrawReservoir {} => {
                // The firmware's memory of ids first: nothing may touch the reservoir under an
                // id it would refuse.
                if self.pump.knows_request(by, id) {
                    // After a restart the device has forgotten its answer; the firmware has not:
                    // a retry of this very withdrawal is answered with what it recorded.
                    let withdrawal = self.pump.status().withdrawal;
                    let recorded = self.pump.remembered(by, id).and_then(|(command, answer)| match (command, answer) {
                        (Command::RecordWithdrawal { .. }, Ok(Reply::WithdrawalRecorded { expected, withdrawn })) => {
                            Some((*expected, *withdrawn))
                        }
                        _ => None,
                    });
                    return match (recorded, withdrawal) {
                        (Some((expected, withdrawn)), Some(pending)) => (
                            ResponseBody::Withdrawn {
                                withdrawn_nl: withdrawn.as_nl(),
                                expected_nl: expected.as_nl(),
                                at_ms: pending.at.as_ms(),
                            },
                            false,
                        ),
                        _ => (reused(id), false),
                    };
                }
                if let Some(before) = self.pump.status().withdrawal {
                    return (
                        refused(
                            "already_withdrawn",
                            format!(
                                "the old drug was already withdrawn ({} at {}); nothing more was withdrawn: stage the refill",
                                itb_dose::text::volume(before.withdrawn),
                                itb_dose::text::date_time(before.at.to_timestamp(), &itb_dose::text::service_zone())
                            ),
                        ),
                        false,
                    );
                }
                let expected = self.pump.reservoir_estimate();
                let now = self.pump.now();
                let withdrawn = self.pump.act(now, WorldAction::Withdraw).unwrap_or_default();
                // The nurse tells the pump what came out: its log records it, and it believes
                // its reservoir empty until the refill.
                let recorded = self.command(by, id, None, Command::RecordWithdrawal { volume: withdrawn.volume });
                if let Err(refusal) = recorded {
                    return (from_refusal(&refusal), true);
                }
                let body = ResponseBody::Withdrawn {
                    withdrawn_nl: withdrawn.volume.as_nl(),
                    expected_nl: expected.as_nl(),
                    at_ms: now.as_ms(),
                };
                (body, true)
            }
            RequestBody::StageRefill { fill_nl, concentration_ng_per_ml, bridge } => {
                let change = Change::Refill {
                    fill: Volume::nl(fill_nl),
                    concentration: Concentration::ng_per_ml(concentration_ng_per_ml),
                    bridge,
                };
                // The pump's limits first: a programmer can check a refill before anything is
                // withdrawn, so that bad input never leaves an emptied reservoir.
                if let Err(refusal) = self.dry_run(&change) {
                    return (from_refusal(&refusal), false);
                }
                if !self.pump.status().awaiting_refill {
                    return (
                        refused(
                            "not_withdrawn",
                            "the refill is within the pump's limits; withdraw the old drug first (withdraw_reservoir) and compare it with what the pump expected",
                        ),
                        false,
                    );
                }
                self.stage(change)
            }
            RequestBody::Commit { hash, reason } => match reason_text(reason.as_deref()) {
                Ok(reason) => self.commit(&hash, id, reason),
                Err(body) => (body, false),
            },
            RequestBody::Discard {} => {
                let had = self.pending.take().is_some();
                let message = if had { "the staged change was discarded" } else { "nothing was staged" };
                (ResponseBody::Done { message: message.to_owned() }, false)
            }
            RequestBody::SetClock { pump_time_ms, reason } => match reason_text(reason.as_deref()) {
                Ok(reason) => {
                    done(self.command(by, id, reason, Command::SetClock { reading: PumpTime::from_ms(pump_time_ms) }))
                }
                Err(body) => (body, false),
            },
            RequestBody::SetAlarmThreshold { threshold_nl, reason } => match reason_text(reason.as_deref()) {
                Ok(reason) => done(self.command(
                    by,
                    id,
                    reason,
                    Command::SetAlarmThreshold { threshold: Volume::nl(threshold_nl) },
                )),
                Err(body) => (body, false),
            },
            RequestBody::ClearAlarm { alarm } => match AlarmKind::parse(&alarm) {
                Some(kind) => done(self.command(by, id, None, Command::ClearAlarm { kind })),
                None => (refused("unknown_alarm", format!("'{alarm}' is not an alarm")), false),
            },
            RequestBody::Stop { reason } => match reason_text(reason.as_deref()) {
                Ok(reason) => done(self.command(by, id, reason, Command::Stop)),
                Err(body) => (body, false),
            },
            RequestBody::Resume { reason } => match reason_text(reason.as_deref()) {
                Ok(reason) => done(self.command(by, id, reason, Command::Resume)),
                Err(body) => (body, false),
            },
            RequestBody::PostMriCheck {} => (self.mri_check(), false),
            RequestBody::SingleBolus { dose_ng, duration_ms, then_stop, reason } => {
                match reason_text(reason.as_deref()) {
                    Ok(reason) => done(self.command(
                        by,
                        id,
                        reason,
                        Command::SingleBolus {
                            dose: Mass::ng(dose_ng),
                            duration: Duration::ms(duration_ms),
                            then_stop,
                        },
                    )),
                    Err(body) => (body, false),
                }
            }
            RequestBody::PrimingBolus { catheter_only, reason } => match reason_text(reason.as_deref()) {
                Ok(reason) => done(self.command(by, id, reason, Command::PrimingBolus { catheter_only })),
                Err(body) => (body, false),
            },
            RequestBody::PtmStatus {} => (self.ptm_status(), false),
            RequestBody::PtmBolus {} => (refused("not_permitted", "a PTM bolus is the patient's"), false),
        }
    }

    fn mri_check(&self) -> ResponseBody {
        let status = self.pump.status();
        ResponseBody::MriCheck {
            motor_stalled: status.motor_stalled,
            stalls_detected: self.pump.log().count(EventKind::MotorStallDetected),
            recoveries: self.pump.log().count(EventKind::MotorStallRecovered),
            stall_alarm: status.alarms.iter().any(|a| a.kind == AlarmKind::MotorStall),
            state: status.state.as_str().to_owned(),
        }
    }

    /// The status as the wire carries it: what the pump knows, nothing derived by clinical rules.
    pub fn status_info(&self) -> StatusInfo {
        let status = self.pump.status();
        let profile = self.pump.profile();
        StatusInfo {
            now_ms: status.at.as_ms(),
            pump_time_ms: status.pump_time.as_ms(),
            profile: status.profile.clone(),
            capacity_nl: profile.reservoir.capacity.value.as_nl(),
            refill_gap_warning_nl: profile.reservoir.refill_gap_warning.value.as_nl(),
            dead_volume_nl: self.pump.dead_volume().as_nl(),
            reservoir_nl: status.reservoir.as_nl(),
            filled_at_ms: status.filled_at.as_ms(),
            concentration_ng_per_ml: status.concentration.as_ng_per_ml(),
            alarm_threshold_nl: status.alarm_threshold.as_nl(),
            awaiting_refill: status.awaiting_refill,
            withdrawal: status.withdrawal.map(|w| WithdrawalInfo {
                withdrawn_nl: w.withdrawn.as_nl(),
                expected_nl: w.expected.as_nl(),
                at_ms: w.at.as_ms(),
            }),
            prescription_toml: status.prescription.as_ref().map(itb_dose::toml::to_toml),
            program_number: status.program_number,
            state: status.state.as_str().to_owned(),
            rate_nl_per_day: status.rate.as_nl_per_day(),
            alarms: status
                .alarms
                .iter()
                .map(|a| AlarmInfo {
                    alarm: a.kind.as_str().to_owned(),
                    critical: a.kind.severity() == itb_pump::Severity::Critical,
                    raised_at_ms: a.raised_at.as_ms(),
                })
                .collect(),
            motor_stalled: status.motor_stalled,
            battery_remaining_ms: status.battery_remaining.as_ms(),
            replace_by_ms: status.at.plus(status.battery_remaining).as_ms(),
            elective_replacement: status.elective_replacement,
            ptm_boluses_last_24h: status.ptm_boluses_last_24h,
            ptm_next_allowed_at_ms: status.ptm_next_allowed_at.map(Instant::as_ms),
            log_next_seq: status.log_next_seq,
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        let status = self.pump.status();
        let log = self.pump.log();
        Fingerprint {
            program_number: status.program_number,
            concentration_ng_per_ml: status.concentration.as_ng_per_ml(),
            alarm_threshold_nl: status.alarm_threshold.as_nl(),
            awaiting_refill: status.awaiting_refill,
            state: status.state.as_str(),
            alarms: status.alarms.iter().map(|a| a.kind.as_str()).collect(),
            counts: STALE_AFTER.iter().map(|kind| log.count(*kind)).collect(),
        }
    }

    /// Applies `change` to a copy of the pump: the pump's own hard limits judge it.
    fn dry_run(&self, change: &Change) -> Result<(), Refusal> {
        let mut copy = self.pump.clone();
        let now = copy.now();
        let command = match change {
            Change::Therapy(prescription) => Command::Program { prescription: prescription.clone() },
            Change::Refill { fill, concentration, bridge } => {
                Command::Refill { volume: *fill, concentration: *concentration, bridge: *bridge }
            }
        };
        copy.handle(now, PumpRequest { id: None, by: Actor::Clinician, reason: None, command }).map(|_| ())
    }

    fn stage(&mut self, change: Change) -> (ResponseBody, bool) {
        if let Err(refusal) = self.dry_run(&change) {
            return (from_refusal(&refusal), false);
        }
        let fingerprint = self.fingerprint();
        let message = change.message();
        let staged_at = self.pump.now();
        let hash = hash_of(&(&message, &fingerprint, staged_at.as_ms())).to_vec();
        let expires_at = staged_at.plus(STAGED_LIFETIME);
        let staged = Staged {
            change: message,
            against: self.status_info(),
            hash: hash.clone(),
            expires_at_ms: expires_at.as_ms(),
        };
        self.pending = Some(Pending { change, hash, fingerprint, expires_at });
        (ResponseBody::Staged(Box::new(staged)), false)
    }

    fn commit(&mut self, hash: &[u8], id: u64, reason: Option<LogText>) -> (ResponseBody, bool) {
        let Some(pending) = self.pending.clone() else {
            return (refused("nothing_staged", "nothing is staged (or it expired): stage the change again"), false);
        };
        if pending.hash != hash {
            return (
                refused(
                    "hash_mismatch",
                    "the hash is not the staged change's: review the staged change and commit its hash",
                ),
                false,
            );
        }
        if pending.fingerprint != self.fingerprint() {
            self.pending = None;
            return (
                refused(
                    "stale_change",
                    "the pump changed since this was staged (its therapy, reservoir, alarms, threshold, clock or state): the old therapy still runs; review it again",
                ),
                false,
            );
        }
        self.pending = None;
        let by = Actor::Clinician;
        let result = match pending.change {
            Change::Therapy(prescription) => self.command(by, id, reason, Command::Program { prescription }),
            Change::Refill { fill, concentration, bridge } => {
                if self.pump.knows_request(by, id) {
                    return (reused(id), false);
                }
                let now = self.pump.now();
                self.pump.act(now, WorldAction::Inject { volume: fill, concentration, into: InjectInto::Reservoir });
                self.command(by, id, reason, Command::Refill { volume: fill, concentration, bridge })
            }
        };
        match result {
            Ok(Reply::Refilled { bridging, .. }) => {
                let message = if bridging { "refilled; bridge bolus running" } else { "refilled" };
                (ResponseBody::Done { message: message.to_owned() }, true)
            }
            Ok(Reply::Done(message)) => (ResponseBody::Done { message }, true),
            Ok(other) => (ResponseBody::Done { message: reply_name(&other).to_owned() }, true),
            Err(refusal) => (from_refusal(&refusal), true),
        }
    }
}

fn reply_name(reply: &Reply) -> &'static str {
    match reply {
        Reply::Status(_) => "status",
        Reply::Done(_) => "done",
        Reply::BolusStarted { .. } => "bolus started",
        Reply::Refilled { .. } => "refilled",
        Reply::WithdrawalRecorded { .. } => "withdrawal recorded",
    }
}
