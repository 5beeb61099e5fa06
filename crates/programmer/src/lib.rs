//! `itb-programmer`: the clinician programmer's workflows as a library, and the patient's
//! therapy manager.
//!
//! Every workflow returns typed values, never text: a [`PumpStatus`], a [`LogPage`], a
//! [`PendingChange`] with its [`Review`] (figures old beside new, and warnings each with a code,
//! a severity and a sentence, from `itb-dose`'s rules), a [`Committed`] change, a
//! [`Withdrawal`] with its refill gap. `itb program` renders them for a person; the clinic calls
//! the same functions.
//!
//! # The rules of a change
//! - Every therapy change and refill is **staged** on the pump, which checks it against its
//!   hard limits and says what it will do and the state it was staged against; the programmer
//!   **reviews** it with `itb_dose::review`; the person confirms; the programmer **commits** it
//!   by the hash the pump gave. Anything else leaves the old therapy running.
//! - A review with a dangerous warning (an increase above the guideline or within 24 hours of
//!   the last, a rate that looks entered per hour, a titration check that cannot run, a stopped
//!   pump, a refill gap above the device's limit, a concentration change without a bridge)
//!   commits only with a [`Confirmation::Override`] carrying a written [`OverrideReason`], which
//!   the pump keeps in its log. [`Confirmation::Reviewed`] (a "yes") never passes it.
//! - The titration check reads the pump's log as data (typed events, clock settings undone);
//!   when the log cannot say whether the dose rose in the last 24 hours, the check says so and
//!   the increase needs an override.
//! - A refill withdraws first and compares withdrawn with expected; from then on the pump's log
//!   and this library say what physically happened, whatever the person does next.
//!
//! # Layers
//! `itb` (cli) and `itb-clinic` -> `itb-programmer` -> `itb-link` -> `itb-pump` -> `itb-dose`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod history;
pub mod link;
pub mod ptm;
pub mod status;

use itb_dose::calc::refill_gap::RefillGap;
use itb_dose::calc::titrate::{self, LastIncrease};
use itb_dose::review::{self, ChangeKind, OverrideReason, Patient, PumpSide, RefillPolicy, Review, ReviewInputs};
use itb_dose::{Concentration, Duration, Mass, Prescription, Volume};
use itb_link::message::{self, LOG_READ_MAX, Request, RequestBody, Response, ResponseBody, Staged, StagedChange};
use itb_pump::{AlarmKind, DeliveryState};
use jiff::Timestamp;
use jiff::civil::DateTime;

pub use error::{ProgrammerError, Refused};
pub use history::{LogEntry, LogPage};
pub use link::{LinkError, MemoryLink, PumpLink, TcpLink};
pub use status::{Alarm, PumpStatus};

/// Pages of the log read at most to find the last increase (the log holds at most a few
/// thousand entries; each page is [`LOG_READ_MAX`]).
pub const HISTORY_PAGES_MAX: usize = 16;

/// A staged change, reviewed: ready to show old beside new and to commit. Its parts are read
/// through methods: what is committed is exactly what was staged and reviewed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    kind: ChangeKind,
    against: PumpStatus,
    old: PumpSide,
    new: PumpSide,
    review: Review,
    patient: Patient,
    last_increase: LastIncrease,
    withdrawal: Option<Withdrawal>,
    hash: Vec<u8>,
    expires_at: Timestamp,
}

impl PendingChange {
    /// What kind of change.
    pub fn kind(&self) -> ChangeKind {
        self.kind
    }
    /// The pump as it was staged against.
    pub fn against(&self) -> &PumpStatus {
        &self.against
    }
    /// The pump now, as a side of the review.
    pub fn before(&self) -> &PumpSide {
        &self.old
    }
    /// The pump after the change.
    pub fn after(&self) -> &PumpSide {
        &self.new
    }
    /// The review: figures, titration check, warnings.
    pub fn review(&self) -> &Review {
        &self.review
    }
    /// The patient, as given for the titration check.
    pub fn patient(&self) -> Patient {
        self.patient
    }
    /// What the pump's history says about the last increase.
    pub fn last_increase(&self) -> &LastIncrease {
        &self.last_increase
    }
    /// A refill's withdrawal, as the pump recorded it.
    pub fn withdrawal(&self) -> Option<Withdrawal> {
        self.withdrawal
    }
    /// The pump's hash of the staged change: the commit names it.
    pub fn hash(&self) -> &[u8] {
        &self.hash
    }
    /// The pump discards the staged change at this instant.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

/// How the person confirmed a reviewed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// They read every line and said yes. Enough unless a warning is dangerous.
    Reviewed,
    /// They read every line and go ahead despite the dangerous warnings, for this reason (kept in
    /// the pump's log).
    Override(OverrideReason),
}

/// A committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The pump's words.
    pub message: String,
    /// The written reason, when the change was an override.
    pub reason: Option<OverrideReason>,
    /// The pump after the change, interrogated again (`None` if that interrogation failed: the
    /// commit itself was confirmed).
    pub status: Option<PumpStatus>,
}

/// What came out of the reservoir, against what the pump expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// Withdrawn.
    pub withdrawn: Volume,
    /// The pump's estimate before.
    pub expected: Volume,
    /// When (true time).
    pub at: Timestamp,
    /// The comparison, against the device's limit.
    pub gap: RefillGap,
}

/// A clinician's action that delivers drug at once or restarts delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A single bolus in place of the therapy while it runs.
    SingleBolus {
        /// Its dose.
        dose: Mass,
        /// Over.
        over: Duration,
    },
    /// A priming bolus after implant, or (`catheter_only`) after a catheter revision.
    Prime {
        /// Only the catheter is empty.
        catheter_only: bool,
    },
    /// Resume the therapy of a stopped pump.
    Resume,
    /// Set the low-reservoir alarm threshold.
    SetAlarmThreshold {
        /// The new threshold.
        threshold: Volume,
    },
    /// Set the pump's clock to a wall-clock reading (local time; the pump knows no zone).
    SetClock {
        /// The reading.
        reading: DateTime,
    },
}

/// A planned action, judged: what it will do and its warning. [`Programmer::carry_out`]
/// judges it again against the pump as it is then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    action: Action,
    warning: itb_dose::review::Warning,
    status: PumpStatus,
}

impl Planned {
    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }
    /// Its warning (always read; a danger needs a written reason).
    pub fn warning(&self) -> &itb_dose::review::Warning {
        &self.warning
    }
    /// The pump when it was planned.
    pub fn status(&self) -> &PumpStatus {
        &self.status
    }
}

/// What a carried-out action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// A bolus started.
    Bolus(BolusStarted),
    /// The pump's words.
    Message(String),
}

/// What the pump's log says for a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The last increase (the 24-hour rule).
    pub last_increase: LastIncrease,
    /// While delivery is off: how long, and what it delivered before.
    pub off: titrate::DeliveryOff,
}

/// A bolus that started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BolusStarted {
    /// Its dose.
    pub dose: Mass,
    /// When it ends.
    pub ends_at: Timestamp,
}

pub use itb_dose::review::MriAdvice;

/// The post-MRI check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MriCheck {
    /// The pump knows its motor is stalled.
    pub motor_stalled: bool,
    /// Stalls detected since implant.
    pub stalls_detected: u64,
    /// Recoveries since implant.
    pub recoveries: u64,
    /// The motor-stall alarm is on.
    pub stall_alarm: bool,
    /// What the pump is doing.
    pub state: DeliveryState,
    /// What to do.
    pub advice: MriAdvice,
}

/// The clinician programmer, over one link to one pump.
#[derive(Debug)]
pub struct Programmer<L> {
    link: L,
    next_id: u64,
    policy: RefillPolicy,
}

fn refused(code: String, message: String, retry_at_ms: Option<i64>) -> ProgrammerError {
    let retry_at = retry_at_ms.and_then(|ms| Timestamp::from_millisecond(ms).ok());
    ProgrammerError::Refused(Refused { code, message, retry_at })
}

fn unexpected(what: &str, answer: &ResponseBody) -> ProgrammerError {
    match answer {
        ResponseBody::Refused { code, message, retry_at_ms } => refused(code.clone(), message.clone(), *retry_at_ms),
        other => ProgrammerError::Protocol(format!("{what}: the pump answered {}", answer_name(other))),
    }
}

fn answer_name(answer: &ResponseBody) -> &'static str {
    match answer {
        ResponseBody::Status(_) => "a status",
        ResponseBody::Log { .. } => "a log",
        ResponseBody::Staged(_) => "a staged change",
        ResponseBody::Withdrawn { .. } => "a withdrawal",
        ResponseBody::Done { .. } => "done",
        ResponseBody::BolusStarted { .. } => "a bolus",
        ResponseBody::MriCheck { .. } => "an MRI check",
        ResponseBody::PtmStatus { .. } => "a PTM status",
        ResponseBody::Refused { .. } => "a refusal",
    }
}

/// A wall-clock reading as the pump's clock holds it, or why it cannot.
fn pump_reading(reading: DateTime) -> Result<itb_pump::PumpTime, ProgrammerError> {
    let time = itb_pump::PumpTime::from_civil(reading);
    if !time.is_settable() {
        return Err(ProgrammerError::Input(format!(
            "{} is outside the pump's clock range: give a reading from {} up to, not including, {}",
            itb_dose::text::civil_date_time(reading),
            itb_pump::PumpTime::EARLIEST.to_people(),
            itb_pump::PumpTime::END.to_people()
        )));
    }
    Ok(time)
}

/// Sends one request with `id` and reads the answer (the shared step of the programmer and the
/// PTM).
pub(crate) async fn exchange<L: PumpLink>(link: &mut L, id: u64, body: RequestBody) -> Result<ResponseBody, LinkError> {
    let answer = link.exchange(&message::encode(&Request { id, body })).await?;
    let response: Response =
        message::decode(&answer).map_err(|e| LinkError(format!("the pump's answer cannot be read: {e}")))?;
    if response.id != id {
        return Err(LinkError(format!("the pump answered request {} instead of {id}", response.id)));
    }
    Ok(response.body)
}

impl<L: PumpLink> Programmer<L> {
    /// A programmer over `link`. Request ids start at `first_id` and count up: give a value
    /// no earlier session with this pump used (e.g. from the time and a random number), so that
    /// an id is never reused for another request.
    pub fn new(link: L, first_id: u64, policy: RefillPolicy) -> Self {
        Self { link, next_id: first_id, policy }
    }

    /// The service's refill policy this programmer computes dates with.
    pub fn policy(&self) -> &RefillPolicy {
        &self.policy
    }

    /// The link, to close it.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    async fn ask(&mut self, body: RequestBody) -> Result<ResponseBody, ProgrammerError> {
        let id = self.fresh_id();
        exchange(&mut self.link, id, body).await.map_err(|e| ProgrammerError::Link(e.to_string()))
    }

    /// Reads the pump's full status.
    ///
    /// # Errors
    /// The link, or an answer that is not a status.
    pub async fn interrogate(&mut self) -> Result<PumpStatus, ProgrammerError> {
        match self.ask(RequestBody::Interrogate {}).await? {
            ResponseBody::Status(info) => PumpStatus::from_wire(&info, &self.policy),
            other => Err(unexpected("interrogate", &other)),
        }
    }

    /// Reads at most `max` log entries from sequence number `from` (at most [`LOG_READ_MAX`]).
    ///
    /// # Errors
    /// The link, or an answer that is not a log.
    pub async fn read_log(&mut self, from: u64, max: u16) -> Result<LogPage, ProgrammerError> {
        match self.ask(RequestBody::ReadLog { from_seq: from, max: max.min(LOG_READ_MAX) }).await? {
            ResponseBody::Log { entries, first_seq, next_seq } => {
                Ok(LogPage { entries: entries.iter().map(LogEntry::from_wire).collect(), first_seq, next_seq })
            }
            other => Err(unexpected("read_log", &other)),
        }
    }

    /// What the pump's log says, as of `status`, about the last increase of the daily dose
    /// (the 24-hour rule) and, when the pump delivers nothing, how long it has been off and what
    /// it delivered before: reads back page by page until the log answers both or reaches the
    /// implant.
    ///
    /// # Errors
    /// The link.
    pub async fn history(&mut self, status: &PumpStatus) -> Result<History, ProgrammerError> {
        let delivering = status::delivers(status.state) && status.figures.max_day.as_ng() > 0;
        let mut events = Vec::new();
        let mut end = status.log_next_seq;
        let mut answer = History {
            last_increase: LastIncrease::Unknown("the pump's log could not be read".to_owned()),
            off: titrate::DeliveryOff::default(),
        };
        for _ in 0..HISTORY_PAGES_MAX {
            let from = end.saturating_sub(u64::from(LOG_READ_MAX)).max(1);
            let page = self.read_log(from, LOG_READ_MAX).await?;
            let first_held = page.first_seq.max(1);
            let mut older: Vec<_> =
                page.entries.iter().filter(|e| e.seq < end).filter_map(LogEntry::dose_history).collect();
            older.append(&mut events);
            events = older;
            let read_from = from.max(first_held);
            let complete = read_from <= 1;
            answer.last_increase = titrate::last_increase(&events, complete, status.pump_time_ms);
            if !delivering {
                answer.off = titrate::delivery_off(&events, status.pump_time_ms);
            }
            let off_known = delivering || (answer.off.for_.is_some() && answer.off.last_delivered_day.is_some());
            let exhausted = read_from <= first_held;
            if (matches!(answer.last_increase, LastIncrease::Known(_)) && off_known) || exhausted {
                break;
            }
            end = read_from;
        }
        Ok(answer)
    }

    fn review_inputs(
        &self,
        kind: ChangeKind,
        against: &PumpStatus,
        new: PumpSide,
        patient: Patient,
        history: History,
        gap: Option<RefillGap>,
    ) -> ReviewInputs {
        ReviewInputs {
            change: kind,
            old: against.side(),
            new,
            at: against.at,
            policy: self.policy.clone(),
            dead_volume: against.dead_volume,
            patient,
            last_increase: history.last_increase,
            off: history.off,
            gap,
        }
    }

    fn pending(&self, staged: &Staged, patient: Patient, history: History) -> Result<PendingChange, ProgrammerError> {
        let against = PumpStatus::from_wire(&staged.against, &self.policy)?;
        // A refill is compared with the withdrawal the pump recorded, never with one the caller
        // brings.
        let withdrawal = against.withdrawal;
        let (kind, new) = match &staged.change {
            StagedChange::Therapy { prescription_toml } => {
                let prescription = itb_dose::toml::from_toml(prescription_toml)
                    .map_err(|e| ProgrammerError::Protocol(format!("the staged therapy cannot be read: {e}")))?;
                // Programming a therapy restarts a stopped or halted pump.
                (
                    ChangeKind::Therapy,
                    PumpSide {
                        prescription: Some(prescription),
                        delivering: against.state != DeliveryState::EndOfService,
                        ..against.side()
                    },
                )
            }
            StagedChange::Refill { fill_nl, concentration_ng_per_ml, bridge } => (
                ChangeKind::Refill { bridge: *bridge },
                PumpSide {
                    reservoir: Volume::nl(*fill_nl),
                    concentration: Concentration::ng_per_ml(*concentration_ng_per_ml),
                    // New drug: its stability runs from the refill, and the pump delivers again.
                    filled_at: None,
                    delivering: status::delivers(against.state),
                    ..against.side()
                },
            ),
        };
        let last_increase = history.last_increase.clone();
        let inputs = self.review_inputs(kind, &against, new.clone(), patient, history, withdrawal.map(|w| w.gap));
        Ok(PendingChange {
            kind,
            old: against.side(),
            new,
            review: review::review(&inputs),
            against,
            patient,
            last_increase,
            withdrawal,
            hash: staged.hash.clone(),
            expires_at: status::timestamp(staged.expires_at_ms)?,
        })
    }

    /// Stages a new therapy and reviews it: old beside new, the titration check against the
    /// pump's own history, every warning. Nothing changes on the pump until [`commit`].
    ///
    /// [`commit`]: Programmer::commit
    ///
    /// # Errors
    /// The link; the pump's refusal (a hard limit); an answer that cannot be read.
    pub async fn stage_therapy(
        &mut self,
        prescription: &Prescription,
        patient: Patient,
    ) -> Result<PendingChange, ProgrammerError> {
        let body = RequestBody::StageTherapy { prescription_toml: itb_dose::toml::to_toml(prescription) };
        let staged = match self.ask(body).await? {
            ResponseBody::Staged(staged) => staged,
            other => return Err(unexpected("stage_therapy", &other)),
        };
        let against = PumpStatus::from_wire(&staged.against, &self.policy)?;
        let history = self.history(&against).await?;
        self.pending(&staged, patient, history)
    }

    /// Checks a refill against the pump's hard limits before anything is withdrawn.
    ///
    /// # Errors
    /// The pump's refusal (nothing was withdrawn); the link.
    pub async fn check_refill(
        &mut self,
        fill: Volume,
        concentration: Concentration,
        bridge: bool,
    ) -> Result<(), ProgrammerError> {
        let body = RequestBody::StageRefill {
            fill_nl: fill.as_nl(),
            concentration_ng_per_ml: concentration.as_ng_per_ml(),
            bridge,
        };
        match self.ask(body).await? {
            ResponseBody::Refused { code, .. } if code == "not_withdrawn" => Ok(()),
            // Already withdrawn (the pump awaits its refill): within limits, and staged; the
            // refill stages its own again.
            ResponseBody::Staged(_) => {
                self.discard().await?;
                Ok(())
            }
            other => Err(unexpected("check_refill", &other)),
        }
    }

    /// The review a refill will have, before anything is withdrawn (without the gap, which only
    /// the withdrawal can tell): its dangers (a concentration change without a bridge, say) can
    /// be settled before the reservoir is emptied.
    pub fn preview_refill(
        &self,
        status: &PumpStatus,
        fill: Volume,
        concentration: Concentration,
        bridge: bool,
    ) -> Review {
        let new = PumpSide {
            reservoir: fill,
            concentration,
            filled_at: None,
            delivering: status::delivers(status.state),
            ..status.side()
        };
        let history = History { last_increase: LastIncrease::Known(None), off: titrate::DeliveryOff::default() };
        let inputs = self.review_inputs(ChangeKind::Refill { bridge }, status, new, Patient::default(), history, None);
        review::review(&inputs)
    }

    /// Withdraws the old drug (on the virtual device: the nurse's syringe) and compares it with
    /// what the pump expected. From here on the pump knows its reservoir is empty and logs it.
    ///
    /// # Errors
    /// The link (then interrogate: if the pump awaits its refill, the drug is out).
    pub async fn withdraw(&mut self, limit: Volume) -> Result<Withdrawal, ProgrammerError> {
        match self.ask(RequestBody::WithdrawReservoir {}).await? {
            ResponseBody::Withdrawn { withdrawn_nl, expected_nl, at_ms } => {
                let (withdrawn, expected) = (Volume::nl(withdrawn_nl), Volume::nl(expected_nl));
                Ok(Withdrawal {
                    withdrawn,
                    expected,
                    at: status::timestamp(at_ms)?,
                    gap: RefillGap::assess(expected, withdrawn, limit),
                })
            }
            other => Err(unexpected("withdraw", &other)),
        }
    }

    /// Stages the refill after the withdrawal and reviews it (with the gap, the concentration
    /// change and its bridge, the new dates).
    ///
    /// # Errors
    /// The link; the pump's refusal.
    pub async fn stage_refill(
        &mut self,
        fill: Volume,
        concentration: Concentration,
        bridge: bool,
    ) -> Result<PendingChange, ProgrammerError> {
        let body = RequestBody::StageRefill {
            fill_nl: fill.as_nl(),
            concentration_ng_per_ml: concentration.as_ng_per_ml(),
            bridge,
        };
        let staged = match self.ask(body).await? {
            ResponseBody::Staged(staged) => staged,
            other => return Err(unexpected("stage_refill", &other)),
        };
        // A refill restarts delivery from when the reservoir ran dry: the empty-reservoir alarm
        // or the withdrawal, whichever came first.
        let against = PumpStatus::from_wire(&staged.against, &self.policy)?;
        let empty_alarm = against.alarms.iter().find(|a| a.kind == AlarmKind::EmptyReservoir).map(|a| a.raised_at);
        let dry_since = [empty_alarm, against.withdrawal.map(|w| w.at)].into_iter().flatten().min();
        let off = titrate::DeliveryOff {
            for_: dry_since.map(|since| {
                Duration::ms(u64::try_from(against.at.duration_since(since).as_millis().max(0)).unwrap_or(0))
            }),
            last_delivered_day: Some(against.figures.max_day),
        };
        let history = History { last_increase: LastIncrease::Known(None), off };
        self.pending(&staged, Patient::default(), history)
    }

    /// Commits a reviewed change by its hash. A change with a dangerous warning needs
    /// [`Confirmation::Override`]. If the link drops, the same commit is sent once more (the
    /// pump answers a repeated request with its first answer).
    ///
    /// # Errors
    /// [`ProgrammerError::NeedsOverride`] (nothing was sent); the pump's refusal (the old
    /// therapy runs); [`ProgrammerError::CommitUncertain`] when the link failed twice.
    pub async fn commit(
        &mut self,
        change: &PendingChange,
        confirmation: Confirmation,
    ) -> Result<Committed, ProgrammerError> {
        let reason = match confirmation {
            Confirmation::Override(reason) => Some(reason),
            Confirmation::Reviewed if change.review.needs_override() => {
                return Err(ProgrammerError::NeedsOverride(change.review.dangers().cloned().collect()));
            }
            Confirmation::Reviewed => None,
        };
        let body = RequestBody::Commit { hash: change.hash.clone(), reason: reason.as_ref().map(|r| r.to_string()) };
        let id = self.fresh_id();
        let answer = match exchange(&mut self.link, id, body.clone()).await {
            Ok(answer) => answer,
            Err(first) => match exchange(&mut self.link, id, body).await {
                Ok(ResponseBody::Refused { code, .. }) if code == "nothing_staged" => {
                    return Err(ProgrammerError::CommitUncertain(format!(
                        "{first}; on the retry the pump had nothing staged"
                    )));
                }
                Ok(answer) => answer,
                Err(second) => return Err(ProgrammerError::CommitUncertain(format!("{first}; then {second}"))),
            },
        };
        match answer {
            ResponseBody::Done { message } => {
                let status = self.interrogate().await.ok();
                Ok(Committed { message, reason, status })
            }
            other => Err(unexpected("commit", &other)),
        }
    }

    /// Discards a staged change (the old therapy runs on).
    ///
    /// # Errors
    /// The link.
    pub async fn discard(&mut self) -> Result<(), ProgrammerError> {
        match self.ask(RequestBody::Discard {}).await? {
            ResponseBody::Done { .. } => Ok(()),
            other => Err(unexpected("discard", &other)),
        }
    }

    async fn done(&mut self, what: &str, body: RequestBody) -> Result<String, ProgrammerError> {
        match self.ask(body).await? {
            ResponseBody::Done { message } => Ok(message),
            other => Err(unexpected(what, &other)),
        }
    }

    /// Stops delivery. Dangerous (withdrawal can follow): it needs a written reason, which the
    /// pump keeps in its log. Never stop a pump for an MRI scan.
    ///
    /// # Errors
    /// The link; the pump's refusal.
    pub async fn stop(&mut self, reason: &OverrideReason) -> Result<String, ProgrammerError> {
        self.done("stop", RequestBody::Stop { reason: Some(reason.to_string()) }).await
    }

    /// Clears (silences) an alarm whose cause has gone.
    ///
    /// # Errors
    /// The link; the pump's refusal (the cause remains, the alarm is not on).
    pub async fn clear_alarm(&mut self, alarm: AlarmKind) -> Result<String, ProgrammerError> {
        self.done("clear_alarm", RequestBody::ClearAlarm { alarm: alarm.as_str().to_owned() }).await
    }

    /// Judges `action` against the pump as it is now.
    async fn judge(&mut self, action: Action) -> Result<Planned, ProgrammerError> {
        let status = self.interrogate().await?;
        let daily = status.figures.max_day;
        let profile = itb_dose::DeviceProfile::built_in(&status.profile).ok();
        let warning = match action {
            Action::SingleBolus { dose, over } => {
                review::clinician_bolus(review::ClinicianBolus::Single { dose, over }, daily)
            }
            Action::Prime { catheter_only } => {
                // The volume the pump will push: the catheter alone, or with the pump's tubing.
                let tubing = profile.as_ref().map_or(Volume::ZERO, |p| p.fluid_path.pump_tubing.value);
                let volume = if catheter_only { status.dead_volume.saturating_sub(tubing) } else { status.dead_volume };
                let drug = status.concentration.mass_in(volume, itb_dose::Rounding::Down).unwrap_or(Mass::ZERO);
                let rate = profile.as_ref().map_or(itb_dose::VolumeRate::ZERO, |p| p.rates.priming.value);
                let duration = rate.time_to_move(volume, itb_dose::Rounding::Up).unwrap_or(Duration::ZERO);
                review::clinician_bolus(review::ClinicianBolus::Priming { volume, drug, rate, duration }, daily)
            }
            Action::Resume => {
                if status.state != DeliveryState::Stopped {
                    return Err(ProgrammerError::Input(
                        "the pump is not stopped: there is nothing to resume (interrogate it to see what it does)"
                            .to_owned(),
                    ));
                }
                let history = self.history(&status).await?;
                review::resume_warning(history.off, daily)
            }
            Action::SetAlarmThreshold { threshold } => {
                review::alarm_threshold_change(status.alarm_threshold, threshold, status.figures.daily_volume)
            }
            Action::SetClock { reading } => {
                let target = pump_reading(reading)?;
                review::clock_setting(target.as_ms().saturating_sub(status.pump_time_ms), status.prescription.as_ref())
            }
        };
        Ok(Planned { action, warning, status })
    }

    /// Plans a clinician's action that delivers drug at once, restarts delivery or moves what
    /// the refill dates or the schedule hang on (a single bolus, a priming bolus, resuming a
    /// stopped pump, the alarm threshold, the clock) and judges it with `itb-dose`'s rules:
    /// nothing is sent until [`carry_out`](Programmer::carry_out).
    ///
    /// # Errors
    /// The link; [`ProgrammerError::Input`] for a clock reading the pump cannot hold.
    pub async fn plan(&mut self, action: Action) -> Result<Planned, ProgrammerError> {
        self.judge(action).await
    }

    /// Carries out a planned action: judges it again against the pump as it is now (if it has
    /// become more dangerous since it was read, nothing is sent and the new judgement comes back
    /// as [`ProgrammerError::Changed`]); a dangerous one needs [`Confirmation::Override`] (its
    /// reason is kept in the pump's log); a "yes" never passes it.
    ///
    /// # Errors
    /// [`ProgrammerError::NeedsOverride`] or [`ProgrammerError::Changed`] (nothing was sent); the
    /// pump's refusal; the link.
    pub async fn carry_out(&mut self, planned: &Planned, confirmation: Confirmation) -> Result<Done, ProgrammerError> {
        let now = self.judge(planned.action).await?;
        if now.warning.severity > planned.warning.severity {
            return Err(ProgrammerError::Changed(Box::new(now)));
        }
        let reason = match confirmation {
            Confirmation::Override(reason) => Some(reason.to_string()),
            Confirmation::Reviewed if now.warning.needs_override() || planned.warning.needs_override() => {
                return Err(ProgrammerError::NeedsOverride(vec![now.warning.clone()]));
            }
            Confirmation::Reviewed => None,
        };
        let body = match planned.action {
            Action::SingleBolus { dose, over } => {
                RequestBody::SingleBolus { dose_ng: dose.as_ng(), duration_ms: over.as_ms(), then_stop: false, reason }
            }
            Action::Prime { catheter_only } => RequestBody::PrimingBolus { catheter_only, reason },
            Action::Resume => RequestBody::Resume { reason },
            Action::SetAlarmThreshold { threshold } => {
                RequestBody::SetAlarmThreshold { threshold_nl: threshold.as_nl(), reason }
            }
            Action::SetClock { reading } => {
                RequestBody::SetClock { pump_time_ms: pump_reading(reading)?.as_ms(), reason }
            }
        };
        match self.ask(body).await? {
            ResponseBody::BolusStarted { dose_ng, ends_at_ms } => {
                Ok(Done::Bolus(BolusStarted { dose: Mass::ng(dose_ng), ends_at: status::timestamp(ends_at_ms)? }))
            }
            ResponseBody::Done { message } => Ok(Done::Message(message)),
            other => Err(unexpected("carry_out", &other)),
        }
    }

    /// After an MRI scan: does the motor run?
    ///
    /// # Errors
    /// The link.
    pub async fn post_mri_check(&mut self) -> Result<MriCheck, ProgrammerError> {
        match self.ask(RequestBody::PostMriCheck {}).await? {
            ResponseBody::MriCheck { motor_stalled, stalls_detected, recoveries, stall_alarm, state } => {
                let advice = MriAdvice::after_scan(motor_stalled, stalls_detected, recoveries, stall_alarm);
                let state = status::delivery_state(&state)?;
                Ok(MriCheck { motor_stalled, stalls_detected, recoveries, stall_alarm, state, advice })
            }
            other => Err(unexpected("post_mri_check", &other)),
        }
    }
}
