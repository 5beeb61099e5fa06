//! The pump's side of the link: a message in, the pump's answer out. Sans-IO: the caller owns
//! the clock, the socket and the disk.
//!
//! - **Roles as types.** [`authorize`] turns a request and the session's [`Role`] into either a
//!   [`ClinicianRequest`] (which only a clinician session can hold) or a [`PatientRequest`] (PTM
//!   status and bolus, nothing else). A patient session cannot even express a therapy change.
//! - **Transactions for therapy.** A therapy change or refill is *staged*: the pump answers old
//!   beside new, with warnings and the hash of that summary. Only a `commit` carrying that hash,
//!   while the pump is still in the state the summary was made from, changes delivery. A session
//!   that breaks before the commit leaves the old therapy running; the staged change expires.
//! - **Idempotency.** Every answer is remembered by `(role, request id)` (bounded); a retry gets
//!   the first answer and acts once.

use std::collections::VecDeque;

use blake2::{Blake2s256, Digest};
use itb_dose::calc::bridge::bridge;
use itb_dose::calc::refill::{RefillInputs, pump_volume_rate, refill_schedule};
use itb_dose::{Baclofen, Concentration, DoseRate, Duration, Mass, Prescription, Stability, Volume};
use itb_pump::world::InjectInto;
use itb_pump::{
    Actor, AlarmKind, Command, EventKind, Instant, Pump, PumpTime, Refusal, Reply, Request as PumpRequest, WorldAction,
};

use crate::message::{
    self, AlarmInfo, LOG_READ_MAX, LogLine, Request, RequestBody, Response, ResponseBody, Side, Staged, StatusInfo,
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
        (Role::Patient, RequestBody::PtmStatus) => Ok(Authorized::Patient(PatientRequest::Status)),
        (Role::Patient, RequestBody::PtmBolus) => Ok(Authorized::Patient(PatientRequest::Bolus)),
        (Role::Patient, other) => Err(format!(
            "a patient's therapy manager may ask for a bolus or the short status only, not {}",
            other.name()
        )),
        (Role::Clinician, RequestBody::PtmBolus) => {
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

/// The state a staged change was made against: if any of it moves, the change is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    program_number: u64,
    concentration: Concentration,
    refills: u64,
    stops: u64,
    resumes: u64,
    programs: u64,
}

#[derive(Debug, Clone)]
struct Pending {
    change: Change,
    hash: Vec<u8>,
    fingerprint: Fingerprint,
    expires_at: Instant,
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
    withdrawn_since_refill: bool,
    answers: VecDeque<((Role, u64), Vec<u8>)>,
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

fn timestamp(at: Instant) -> jiff::Timestamp {
    at.to_timestamp()
}

impl Device {
    /// A device around a pump.
    pub fn new(pump: Pump) -> Self {
        Self {
            pump,
            pending: None,
            withdrawn_since_refill: false,
            answers: VecDeque::with_capacity(ANSWERS_REMEMBERED),
        }
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
        if let Some((_, answer)) = self.answers.iter().find(|(key, _)| *key == (role, request.id)) {
            return Outcome { response: answer.clone(), changed: false };
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
        self.answers.push_back(((role, request.id), response.clone()));
        Outcome { response, changed }
    }

    fn command(&mut self, by: Actor, id: u64, command: Command) -> Result<Reply, Refusal> {
        self.pump.handle(self.pump.now(), PumpRequest::new(by, Some(id), command))
    }

    fn patient(&mut self, request: PatientRequest, id: u64) -> (ResponseBody, bool) {
        match request {
            PatientRequest::Status => (self.ptm_status(), false),
            PatientRequest::Bolus => match self.command(Actor::Patient, id, Command::PtmBolus) {
                Ok(Reply::BolusStarted { dose, ends_at }) => {
                    (ResponseBody::BolusStarted { dose_ng: dose.as_ng(), ends_at_ms: ends_at.as_ms() }, true)
                }
                Ok(other) => (refused("unexpected", format!("{other:?}")), true),
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
            Ok(other) => (ResponseBody::Done { message: format!("{other:?}") }, true),
            Err(refusal) => (from_refusal(&refusal), true),
        };
        match request.body {
            RequestBody::Interrogate => (ResponseBody::Status(Box::new(self.status_info())), false),
            RequestBody::ReadLog { from_seq, max } => {
                let entries = self
                    .pump
                    .log()
                    .read_from(from_seq, usize::from(max.min(LOG_READ_MAX)))
                    .into_iter()
                    .map(|e| LogLine {
                        seq: e.seq,
                        pump_time_ms: e.at.as_ms(),
                        kind: e.event.kind().as_str().to_owned(),
                        detail: e.event.describe(),
                    })
                    .collect();
                (ResponseBody::Log { entries, next_seq: self.pump.log().next_seq() }, false)
            }
            RequestBody::StageTherapy { prescription_toml } => match itb_dose::toml::from_toml(&prescription_toml) {
                Ok(prescription) => self.stage(Change::Therapy(prescription)),
                Err(error) => (refused("invalid_prescription", error.to_string()), false),
            },
            RequestBody::WithdrawReservoir => {
                let expected = self.pump.reservoir_estimate();
                let withdrawn = self.pump.act(self.pump.now(), WorldAction::Withdraw).unwrap_or_default();
                self.withdrawn_since_refill = true;
                let warning_above = self.pump.profile().reservoir.refill_gap_warning.value;
                let body = ResponseBody::Withdrawn {
                    withdrawn_nl: withdrawn.volume.as_nl(),
                    expected_nl: expected.as_nl(),
                    warning_above_nl: warning_above.as_nl(),
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
                if !self.withdrawn_since_refill {
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
            RequestBody::Commit { hash } => self.commit(&hash, id),
            RequestBody::Discard => {
                let had = self.pending.take().is_some();
                let message = if had { "the staged change was discarded" } else { "nothing was staged" };
                (ResponseBody::Done { message: message.to_owned() }, false)
            }
            RequestBody::SetClock { pump_time_ms } => {
                done(self.command(Actor::Clinician, id, Command::SetClock { reading: PumpTime::from_ms(pump_time_ms) }))
            }
            RequestBody::SetAlarmThreshold { threshold_nl } => done(self.command(
                Actor::Clinician,
                id,
                Command::SetAlarmThreshold { threshold: Volume::nl(threshold_nl) },
            )),
            RequestBody::ClearAlarm { alarm } => match AlarmKind::parse(&alarm) {
                Some(kind) => done(self.command(Actor::Clinician, id, Command::ClearAlarm { kind })),
                None => (refused("unknown_alarm", format!("'{alarm}' is not an alarm")), false),
            },
            RequestBody::Stop => done(self.command(Actor::Clinician, id, Command::Stop)),
            RequestBody::Resume => done(self.command(Actor::Clinician, id, Command::Resume)),
            RequestBody::PostMriCheck => (self.mri_check(), false),
            RequestBody::SingleBolus { dose_ng, duration_ms, then_stop } => done(self.command(
                Actor::Clinician,
                id,
                Command::SingleBolus { dose: Mass::ng(dose_ng), duration: Duration::ms(duration_ms), then_stop },
            )),
            RequestBody::PrimingBolus { catheter_only } => {
                done(self.command(Actor::Clinician, id, Command::PrimingBolus { catheter_only }))
            }
            RequestBody::PtmStatus => (self.ptm_status(), false),
            RequestBody::PtmBolus => (refused("not_permitted", "a PTM bolus is the patient's"), false),
        }
    }

    fn mri_check(&self) -> ResponseBody {
        let status = self.pump.status();
        let stalls = self.pump.log().count(EventKind::MotorStallDetected);
        let recoveries = self.pump.log().count(EventKind::MotorStallRecovered);
        let advice = if status.motor_stalled {
            "The motor is stalled: no drug is delivered. Check again within hours; watch for withdrawal and give oral baclofen as the team advises."
        } else if stalls > recoveries {
            "A stall was detected and not yet seen to recover: interrogate again."
        } else if status.alarms.iter().any(|a| a.kind == AlarmKind::MotorStall) {
            "The motor runs again: clear the motor-stall alarm."
        } else {
            "The motor runs: delivery continues as programmed."
        };
        ResponseBody::MriCheck {
            motor_stalled: status.motor_stalled,
            stalls_detected: stalls,
            recoveries,
            state: status.state.as_str().to_owned(),
            advice: advice.to_owned(),
        }
    }

    /// The status as the wire carries it.
    pub fn status_info(&self) -> StatusInfo {
        let status = self.pump.status();
        let profile = self.pump.profile();
        let worst = status.prescription.as_ref().map_or(DoseRate::ZERO, Prescription::worst_case_rate);
        let alarm_at = self.alarm_at(status.reservoir, status.concentration, worst);
        StatusInfo {
            now_ms: status.at.as_ms(),
            pump_time_ms: status.pump_time.as_ms(),
            profile: status.profile.clone(),
            capacity_nl: profile.reservoir.capacity.value.as_nl(),
            refill_gap_warning_nl: profile.reservoir.refill_gap_warning.value.as_nl(),
            reservoir_nl: status.reservoir.as_nl(),
            concentration_ng_per_ml: status.concentration.as_ng_per_ml(),
            alarm_threshold_nl: status.alarm_threshold.as_nl(),
            prescription_toml: status.prescription.as_ref().map(itb_dose::toml::to_toml),
            program_number: status.program_number,
            state: status.state.as_str().to_owned(),
            rate_nl_per_day: status.rate.as_nl_per_day(),
            worst_case_daily_dose_ng: worst.as_ng_per_day(),
            low_reservoir_alarm_at_ms: alarm_at.map(Instant::as_ms),
            alarms: status
                .alarms
                .iter()
                .map(|a| AlarmInfo {
                    alarm: a.kind.as_str().to_owned(),
                    critical: a.kind.severity() == itb_pump::Severity::Critical,
                    raised_at_ms: a.raised_at.as_ms(),
                    meaning: a.kind.describe().to_owned(),
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

    /// When the low-reservoir alarm sounds from `reservoir` at `dose` (the refill calculation).
    fn alarm_at(&self, reservoir: Volume, concentration: Concentration, dose: DoseRate) -> Option<Instant> {
        let drug = Baclofen::new(concentration).ok()?;
        let threshold = self.pump.status().alarm_threshold;
        let inputs = RefillInputs {
            fill: reservoir,
            drug,
            daily_dose: dose,
            alarm_threshold: threshold.min(reservoir),
            stability: Stability::default(),
            margin_days: 0,
            start: timestamp(self.pump.now()),
            zone: jiff::tz::TimeZone::UTC,
        };
        let schedule = refill_schedule(&inputs).ok()?;
        schedule.alarm_at.map(Instant::from_timestamp)
    }

    fn side(&self, prescription: Option<&Prescription>, reservoir: Volume, concentration: Concentration) -> Side {
        let totals = prescription.map(Prescription::daily_totals);
        let worst = totals.as_ref().map_or(Mass::ZERO, |t| t.max_with_ptm);
        let worst_rate = DoseRate::ng_per_day(worst.as_ng());
        let daily_volume = Baclofen::new(concentration)
            .ok()
            .and_then(|drug| pump_volume_rate(worst_rate, drug))
            .map_or(0, |v| v.as_nl_per_day());
        Side {
            therapy: prescription.map_or_else(|| "no therapy".to_owned(), ToString::to_string),
            prescription_toml: prescription.map(itb_dose::toml::to_toml),
            max_day_ng: totals.as_ref().map_or(0, |t| t.max.as_ng()),
            worst_case_day_ng: worst.as_ng(),
            reservoir_nl: reservoir.as_nl(),
            concentration_ng_per_ml: concentration.as_ng_per_ml(),
            daily_volume_nl: daily_volume,
            low_reservoir_alarm_at_ms: self.alarm_at(reservoir, concentration, worst_rate).map(Instant::as_ms),
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        let status = self.pump.status();
        let log = self.pump.log();
        Fingerprint {
            program_number: status.program_number,
            concentration: status.concentration,
            refills: log.count(EventKind::Refilled),
            stops: log.count(EventKind::Stopped),
            resumes: log.count(EventKind::Resumed),
            programs: log.count(EventKind::TherapyProgrammed),
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
        copy.handle(now, PumpRequest::clinician(None, command)).map(|_| ())
    }

    fn stage(&mut self, change: Change) -> (ResponseBody, bool) {
        if let Err(refusal) = self.dry_run(&change) {
            return (from_refusal(&refusal), false);
        }
        let staged = self.summary(&change);
        self.pending = Some(Pending {
            change,
            hash: staged.hash.clone(),
            fingerprint: self.fingerprint(),
            expires_at: self.pump.now().plus(STAGED_LIFETIME),
        });
        (ResponseBody::Staged(Box::new(staged)), false)
    }

    fn summary(&self, change: &Change) -> Staged {
        let status = self.pump.status();
        let current = status.prescription.as_ref();
        let old = self.side(current, status.reservoir, status.concentration);
        let (kind, new, warnings) = match change {
            Change::Therapy(prescription) => {
                let new = self.side(Some(prescription), status.reservoir, status.concentration);
                ("therapy", new.clone(), therapy_warnings(&old, &new, prescription))
            }
            Change::Refill { fill, concentration, bridge: with_bridge } => {
                let new = self.side(current, *fill, *concentration);
                let mut warnings = Vec::new();
                if *concentration != status.concentration {
                    let old_drug = Baclofen::new(status.concentration).ok();
                    let new_drug = Baclofen::new(*concentration).ok();
                    let dose = DoseRate::ng_per_day(old.max_day_ng);
                    if let (Some(old_drug), Some(new_drug)) = (old_drug, new_drug)
                        && let Ok(plan) = bridge(self.pump.dead_volume(), old_drug, new_drug, dose)
                    {
                        if *with_bridge {
                            warnings.push(format!(
                                "Concentration changes from {} to {}: a bridge bolus pushes the {} of old drug out at {} for {} h, then the new rate {} applies.",
                                status.concentration, concentration, plan.volume, plan.rate, plan.duration.hours_decimal(), plan.rate_after
                            ));
                        } else {
                            warnings.push(format!(
                                "Concentration changes from {} to {} WITHOUT a bridge bolus: for {} h the old drug in the catheter is delivered at the new rate, {} instead of {}.",
                                status.concentration, concentration, plan.skipped_duration.hours_decimal(), plan.skipped_daily_dose, dose
                            ));
                        }
                    }
                }
                if let Some(alarm) = new.low_reservoir_alarm_at_ms {
                    let expiry = self.pump.now().plus(Stability::default().duration());
                    if alarm > expiry.as_ms() {
                        warnings.push(format!(
                            "The drug expires before the low-reservoir alarm: the refill is due by {} (180 days).",
                            timestamp(expiry)
                        ));
                    }
                }
                ("refill", new, warnings)
            }
        };
        let mut hasher = Blake2s256::new();
        hasher.update(message::encode(&(kind, &old, &new, &warnings)));
        Staged {
            change: kind.to_owned(),
            old,
            new,
            warnings,
            hash: hasher.finalize().to_vec(),
            expires_at_ms: self.pump.now().plus(STAGED_LIFETIME).as_ms(),
        }
    }

    fn commit(&mut self, hash: &[u8], id: u64) -> (ResponseBody, bool) {
        let Some(pending) = self.pending.clone() else {
            return (refused("nothing_staged", "nothing is staged (or it expired): stage the change again"), false);
        };
        if pending.hash != hash {
            return (
                refused(
                    "hash_mismatch",
                    "the hash is not the staged change's: review the staged summary and commit its hash",
                ),
                false,
            );
        }
        if pending.fingerprint != self.fingerprint() {
            self.pending = None;
            return (
                refused(
                    "stale_change",
                    "the pump changed since this was staged: the old therapy still runs; stage again",
                ),
                false,
            );
        }
        self.pending = None;
        let result = match pending.change {
            Change::Therapy(prescription) => self.command(Actor::Clinician, id, Command::Program { prescription }),
            Change::Refill { fill, concentration, bridge } => {
                let now = self.pump.now();
                self.pump.act(now, WorldAction::Inject { volume: fill, concentration, into: InjectInto::Reservoir });
                self.withdrawn_since_refill = false;
                self.command(Actor::Clinician, id, Command::Refill { volume: fill, concentration, bridge })
            }
        };
        match result {
            Ok(Reply::Refilled { bridging, .. }) => {
                let message = if bridging { "refilled; bridge bolus running" } else { "refilled" };
                (ResponseBody::Done { message: message.to_owned() }, true)
            }
            Ok(Reply::Done(message)) => (ResponseBody::Done { message }, true),
            Ok(other) => (ResponseBody::Done { message: format!("{other:?}") }, true),
            Err(refusal) => (from_refusal(&refusal), true),
        }
    }
}

fn percent(old: u64, new: u64) -> Option<u128> {
    (old > 0).then(|| u128::from(new.abs_diff(old)) * 100 / u128::from(old))
}

fn therapy_warnings(old: &Side, new: &Side, prescription: &Prescription) -> Vec<String> {
    let mut warnings = Vec::new();
    let old_dose = Mass::ng(old.max_day_ng);
    let new_dose = Mass::ng(new.max_day_ng);
    if let Some(change) = percent(old.max_day_ng, new.max_day_ng) {
        if new.max_day_ng > old.max_day_ng {
            warnings.push(format!(
                "The largest daily dose rises {change}% from {old_dose} to {new_dose}: check it against the titration guideline (adults of spinal origin 10-30%, cerebral origin and children 5-15%, at most once in 24 hours)."
            ));
            if change > 30 {
                warnings.push(format!("An increase of {change}% is above every guideline step."));
            }
        } else if new.max_day_ng < old.max_day_ng && change > 20 {
            warnings.push(format!(
                "The largest daily dose falls {change}% from {old_dose} to {new_dose}: a cut of more than 20% at once can bring on withdrawal."
            ));
        }
    }
    // A flex step entered per hour instead of per day (ISMP): a step far above the old dose.
    if let itb_dose::Therapy::Flex(schedule) = prescription.therapy() {
        for (day, pattern) in schedule.days() {
            for step in pattern.steps() {
                if old.max_day_ng > 0 && step.rate.as_ng_per_day() >= old.max_day_ng.saturating_mul(3) {
                    warnings.push(format!(
                        "{day}: the step at {} runs at {}, three times or more the current daily dose: check it was not entered per hour.",
                        step.start, step.rate
                    ));
                }
            }
        }
    }
    if old.worst_case_day_ng != old.max_day_ng && prescription.ptm().is_none() {
        warnings.push("The new therapy has no PTM limits: the patient's PTM boluses will be refused.".to_owned());
    }
    if new.worst_case_day_ng != new.max_day_ng {
        warnings.push(format!(
            "With every PTM bolus taken the patient may receive {} a day; the refill date assumes this.",
            Mass::ng(new.worst_case_day_ng)
        ));
    }
    if let (Some(old_alarm), Some(new_alarm)) = (old.low_reservoir_alarm_at_ms, new.low_reservoir_alarm_at_ms)
        && new_alarm < old_alarm
    {
        let days = (old_alarm - new_alarm) / 86_400_000;
        if days > 0 {
            warnings.push(format!(
                "The low-reservoir alarm moves {days} days earlier, to {}: rebook the refill.",
                timestamp(Instant::from_ms(new_alarm))
            ));
        }
    }
    if prescription.therapy().mode_name() == "stopped" {
        warnings.push(
            "The new therapy delivers NOTHING: withdrawal can follow within hours to days. Never stop the pump for an MRI scan."
                .to_owned(),
        );
    }
    warnings
}
