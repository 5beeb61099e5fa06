//! What a programmer or PTM can ask of the pump, what the pump answers, and why it refuses.

use std::fmt;

use itb_dose::{Concentration, Duration, Mass, Prescription, Volume};

use crate::alarm::AlarmKind;
use crate::status::Status;
use crate::text::LogText;
use crate::time::{Instant, PumpTime};

/// A command the firmware understands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Command {
    /// Read the full status.
    Interrogate,
    /// Replace the therapy.
    Program {
        /// The new prescription.
        prescription: Prescription,
    },
    /// Tell the firmware what was withdrawn from the reservoir (the refill's first step): it
    /// then believes the reservoir empty until the refill.
    RecordWithdrawal {
        /// The volume the nurse measured in the syringe.
        volume: Volume,
    },
    /// Tell the firmware the reservoir was refilled (after withdrawing the old drug).
    Refill {
        /// Volume now in the reservoir.
        volume: Volume,
        /// Its concentration.
        concentration: Concentration,
        /// After a concentration change: push the old drug out of the tubing and catheter at
        /// the old concentration's rates first.
        bridge: bool,
    },
    /// A clinician's single bolus, in place of the therapy while it runs.
    SingleBolus {
        /// Dose.
        dose: Mass,
        /// Over.
        duration: Duration,
        /// Afterwards: stop the pump (true) or return to the therapy (false).
        then_stop: bool,
    },
    /// Fill the empty catheter (and tubing) at the priming rate.
    PrimingBolus {
        /// After a catheter revision only the catheter is empty.
        catheter_only: bool,
    },
    /// A patient's bolus from the PTM.
    PtmBolus,
    /// Set the pump's clock.
    SetClock {
        /// What the clock should read now.
        reading: PumpTime,
    },
    /// Set the low-reservoir alarm threshold.
    SetAlarmThreshold {
        /// The threshold.
        threshold: Volume,
    },
    /// Clear (silence) an alarm.
    ClearAlarm {
        /// Which.
        kind: AlarmKind,
    },
    /// Stop delivery.
    Stop,
    /// Resume the programmed therapy.
    Resume,
}

impl Command {
    /// True for commands that deliver drug: they must carry a request id so that a retry
    /// delivers once.
    pub fn delivers_drug(&self) -> bool {
        matches!(self, Command::SingleBolus { .. } | Command::PrimingBolus { .. } | Command::PtmBolus)
    }
    /// The command's name, for logs and refusals.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Interrogate => "interrogate",
            Command::Program { .. } => "program",
            Command::RecordWithdrawal { .. } => "record_withdrawal",
            Command::Refill { .. } => "refill",
            Command::SingleBolus { .. } => "single_bolus",
            Command::PrimingBolus { .. } => "priming_bolus",
            Command::PtmBolus => "ptm_bolus",
            Command::SetClock { .. } => "set_clock",
            Command::SetAlarmThreshold { .. } => "set_alarm_threshold",
            Command::ClearAlarm { .. } => "clear_alarm",
            Command::Stop => "stop",
            Command::Resume => "resume",
        }
    }
}

/// Who asks the pump for something, or changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Actor {
    /// A clinician, through the clinician programmer.
    Clinician,
    /// The patient, through the patient therapy manager.
    Patient,
    /// A simulation's script (the simulator's own commands).
    Simulator,
    /// The implant procedure: the pump's first programming, in theatre.
    Implant,
}

impl Actor {
    /// The name used in logs and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Clinician => "clinician",
            Actor::Patient => "patient",
            Actor::Simulator => "simulator",
            Actor::Implant => "implant",
        }
    }
    /// Who, in words: `the clinician`.
    pub fn describe(self) -> &'static str {
        match self {
            Actor::Clinician => "the clinician",
            Actor::Patient => "the patient",
            Actor::Simulator => "the simulation's script",
            Actor::Implant => "the implant team",
        }
    }
}

/// A command, who sends it, and the request id that makes retries safe.
///
/// The pump remembers the last [`REQUESTS_REMEMBERED`](crate::REQUESTS_REMEMBERED) requests by
/// `(by, id)`, with their command and answer: the same key with the same command is a retry and
/// gets the first answer without acting again; the same key with another command is refused
/// ([`RefusalCode::RequestIdReused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Unique per intended action of its sender; a retry carries the same id and gets the
    /// first answer.
    pub id: Option<u64>,
    /// Who sends it.
    pub by: Actor,
    /// The command.
    pub command: Command,
    /// A clinician's written reason, logged after the change it explains
    /// ([`Event::ClinicianReason`](crate::Event::ClinicianReason)) if the command succeeds.
    pub reason: Option<LogText>,
}

impl Request {
    /// A request from `by`, without a reason.
    pub fn new(by: Actor, id: Option<u64>, command: Command) -> Self {
        Self { id, by, command, reason: None }
    }
    /// A clinician's request.
    pub fn clinician(id: Option<u64>, command: Command) -> Self {
        Self::new(Actor::Clinician, id, command)
    }
    /// The patient's request.
    pub fn patient(id: Option<u64>, command: Command) -> Self {
        Self::new(Actor::Patient, id, command)
    }
    /// A simulation script's request.
    pub fn simulator(id: Option<u64>, command: Command) -> Self {
        Self::new(Actor::Simulator, id, command)
    }
    /// The same request with a written reason.
    pub fn with_reason(self, reason: LogText) -> Self {
        Self { reason: Some(reason), ..self }
    }
}

/// What the pump answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Reply {
    /// The full status.
    Status(Box<Status>),
    /// Done, with what now holds.
    Done(String),
    /// A bolus started.
    BolusStarted {
        /// Its dose (priming: the drug it moves).
        dose: Mass,
        /// When it ends (priming: the estimate at the priming rate).
        ends_at: Instant,
    },
    /// The withdrawal was recorded: the reservoir is empty until the refill.
    WithdrawalRecorded {
        /// What the firmware expected in the reservoir.
        expected: Volume,
        /// What was withdrawn, as measured.
        withdrawn: Volume,
    },
    /// The refill was recorded.
    Refilled {
        /// The volume the firmware expected in the reservoir at the refill (0 after a recorded
        /// withdrawal).
        expected_withdrawal: Volume,
        /// Whether a bridge bolus runs now.
        bridging: bool,
    },
}

/// Who a refusal blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The request breaks a limit or rule: change the request.
    Caller,
    /// The pump cannot do it in its state: see the device.
    Device,
}

/// Why a command was refused. With `serde`, each is its [`RefusalCode::as_str`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum RefusalCode {
    /// A rate above the pump's greatest.
    RateAboveMax,
    /// A rate below the pump's least.
    RateBelowMin,
    /// A bolus above the pump's largest.
    BolusAboveMax,
    /// A bolus shorter than the shortest.
    BolusTooShort,
    /// More flex steps than the pump holds.
    TooManyFlexSteps,
    /// A flex step shorter than the shortest.
    FlexStepTooShort,
    /// PTM limits beyond the pump's.
    PtmLimitsOutOfRange,
    /// No PTM limits are programmed.
    PtmNotProgrammed,
    /// Within the lockout of the last PTM bolus.
    PtmLockout,
    /// The daily maximum of PTM boluses is used up.
    PtmDailyMax,
    /// A bolus is already running.
    BolusRunning,
    /// The pump is stopped.
    PumpStopped,
    /// Delivery is halted by a fault until the pump is programmed.
    PumpHalted,
    /// The pump has reached end of service.
    EndOfService,
    /// The reservoir is empty.
    ReservoirEmpty,
    /// More than the reservoir holds.
    FillAboveCapacity,
    /// A concentration outside the drug's range.
    ConcentrationOutOfRange,
    /// An alarm threshold outside the reservoir.
    ThresholdOutOfRange,
    /// An alarm whose cause is still there.
    AlarmCauseRemains,
    /// An alarm that is not active.
    AlarmNotActive,
    /// Nothing to resume or no therapy to deliver.
    NoTherapy,
    /// A dose command without a request id.
    RequestIdMissing,
    /// A clock reading before 2000-01-01 00:00 or from 2100-01-01 00:00 on.
    ClockOutOfRange,
    /// A request id its sender already used for another command.
    RequestIdReused,
    /// A bolus of no drug (it would stop the therapy while it runs).
    BolusEmpty,
    /// A bolus longer than the longest.
    BolusTooLong,
    /// Resume asked of a pump that is not stopped.
    NotStopped,
}

impl RefusalCode {
    /// Every code, in order.
    pub const ALL: [RefusalCode; 27] = [
        RefusalCode::RateAboveMax,
        RefusalCode::RateBelowMin,
        RefusalCode::BolusAboveMax,
        RefusalCode::BolusTooShort,
        RefusalCode::TooManyFlexSteps,
        RefusalCode::FlexStepTooShort,
        RefusalCode::PtmLimitsOutOfRange,
        RefusalCode::PtmNotProgrammed,
        RefusalCode::PtmLockout,
        RefusalCode::PtmDailyMax,
        RefusalCode::BolusRunning,
        RefusalCode::PumpStopped,
        RefusalCode::PumpHalted,
        RefusalCode::EndOfService,
        RefusalCode::ReservoirEmpty,
        RefusalCode::FillAboveCapacity,
        RefusalCode::ConcentrationOutOfRange,
        RefusalCode::ThresholdOutOfRange,
        RefusalCode::AlarmCauseRemains,
        RefusalCode::AlarmNotActive,
        RefusalCode::NoTherapy,
        RefusalCode::RequestIdMissing,
        RefusalCode::ClockOutOfRange,
        RefusalCode::RequestIdReused,
        RefusalCode::BolusEmpty,
        RefusalCode::BolusTooLong,
        RefusalCode::NotStopped,
    ];

    /// The code used in logs and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::RateAboveMax => "rate_above_max",
            RefusalCode::RateBelowMin => "rate_below_min",
            RefusalCode::BolusAboveMax => "bolus_above_max",
            RefusalCode::BolusTooShort => "bolus_too_short",
            RefusalCode::TooManyFlexSteps => "too_many_flex_steps",
            RefusalCode::FlexStepTooShort => "flex_step_too_short",
            RefusalCode::PtmLimitsOutOfRange => "ptm_limits_out_of_range",
            RefusalCode::PtmNotProgrammed => "ptm_not_programmed",
            RefusalCode::PtmLockout => "ptm_lockout",
            RefusalCode::PtmDailyMax => "ptm_daily_max",
            RefusalCode::BolusRunning => "bolus_running",
            RefusalCode::PumpStopped => "pump_stopped",
            RefusalCode::PumpHalted => "pump_halted",
            RefusalCode::EndOfService => "end_of_service",
            RefusalCode::ReservoirEmpty => "reservoir_empty",
            RefusalCode::FillAboveCapacity => "fill_above_capacity",
            RefusalCode::ConcentrationOutOfRange => "concentration_out_of_range",
            RefusalCode::ThresholdOutOfRange => "threshold_out_of_range",
            RefusalCode::AlarmCauseRemains => "alarm_cause_remains",
            RefusalCode::AlarmNotActive => "alarm_not_active",
            RefusalCode::NoTherapy => "no_therapy",
            RefusalCode::RequestIdMissing => "request_id_missing",
            RefusalCode::ClockOutOfRange => "clock_out_of_range",
            RefusalCode::RequestIdReused => "request_id_reused",
            RefusalCode::BolusEmpty => "bolus_empty",
            RefusalCode::BolusTooLong => "bolus_too_long",
            RefusalCode::NotStopped => "not_stopped",
        }
    }
    /// Why, in a few words for people: `the reservoir is empty`.
    pub fn describe(self) -> &'static str {
        match self {
            RefusalCode::RateAboveMax => "a rate above the pump's greatest",
            RefusalCode::RateBelowMin => "a rate below the pump's least",
            RefusalCode::BolusAboveMax => "a bolus above the pump's largest",
            RefusalCode::BolusTooShort => "a bolus shorter than the pump's shortest",
            RefusalCode::TooManyFlexSteps => "more flex steps than the pump holds",
            RefusalCode::FlexStepTooShort => "a flex step shorter than the pump's shortest",
            RefusalCode::PtmLimitsOutOfRange => "PTM limits beyond the pump's",
            RefusalCode::PtmNotProgrammed => "no PTM boluses are prescribed",
            RefusalCode::PtmLockout => "within the lockout after the last bolus",
            RefusalCode::PtmDailyMax => "every bolus allowed in 24 hours has been taken",
            RefusalCode::BolusRunning => "a bolus is running",
            RefusalCode::PumpStopped => "the pump is stopped",
            RefusalCode::PumpHalted => "the pump stopped after a fault",
            RefusalCode::EndOfService => "the pump has reached end of service",
            RefusalCode::ReservoirEmpty => "the reservoir is empty",
            RefusalCode::FillAboveCapacity => "more than the reservoir holds",
            RefusalCode::ConcentrationOutOfRange => "a concentration outside the drug's range",
            RefusalCode::ThresholdOutOfRange => "an alarm threshold outside the reservoir",
            RefusalCode::AlarmCauseRemains => "the alarm's cause is still there",
            RefusalCode::AlarmNotActive => "the alarm is not sounding",
            RefusalCode::NoTherapy => "there is no therapy",
            RefusalCode::RequestIdMissing => "a dose command without a request id",
            RefusalCode::ClockOutOfRange => "a clock reading outside 2000 to 2099",
            RefusalCode::RequestIdReused => "a request id already used for another command",
            RefusalCode::BolusEmpty => "a bolus of no drug",
            RefusalCode::BolusTooLong => "a bolus longer than the pump's longest",
            RefusalCode::NotStopped => "the pump is not stopped",
        }
    }
    /// Who is to blame.
    pub fn blame(self) -> Blame {
        match self {
            RefusalCode::PumpHalted
            | RefusalCode::EndOfService
            | RefusalCode::ReservoirEmpty
            | RefusalCode::AlarmCauseRemains => Blame::Device,
            _ => Blame::Caller,
        }
    }
}

/// A refusal: its code, a sentence for the person, and when to try again if that helps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Refusal {
    /// Why, as a code.
    pub code: RefusalCode,
    /// Why, for the person.
    pub message: String,
    /// When the same request could succeed (PTM lockout and daily maximum).
    pub retry_at: Option<Instant>,
}

impl Refusal {
    /// A refusal without a retry time.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_at: None }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused ({}): {}", self.code.as_str(), self.message)?;
        if let Some(at) = self.retry_at {
            write!(f, " Next allowed at {at}.")?;
        }
        Ok(())
    }
}

/// Something that happens to the pump or the body, not a command: the simulation's hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldAction {
    /// Withdraw everything from the reservoir (the first step of a refill).
    Withdraw,
    /// Inject `volume` at `concentration` into the reservoir or, by mistake, the pocket.
    Inject {
        /// Volume injected.
        volume: Volume,
        /// Its true concentration.
        concentration: Concentration,
        /// Where it goes.
        into: crate::world::InjectInto,
    },
    /// An MRI scan stalls the motor for `stall_for`.
    MriScan {
        /// How long until the motor restarts.
        stall_for: Duration,
    },
    /// The catheter's state changes.
    Catheter(crate::world::CatheterState),
    /// The catheter is replaced: it starts empty and needs priming.
    ReplaceCatheter,
    /// The delivery error changes (parts per million over the commanded volume).
    RateError {
        /// Parts per million; +145000 is 14.5 % over.
        ppm: i64,
    },
    /// A battery defect loses a fraction of the remaining charge.
    BatteryDefect {
        /// Fraction of the capacity lost, parts per million.
        capacity_loss_ppm: u32,
    },
    /// The battery voltage dips: the pump resets and stops.
    LowBatteryReset,
    /// A memory error.
    MemoryError {
        /// Critical: delivery stops.
        critical: bool,
    },
}
