//! The pump: firmware (what it believes and enforces) beside the world (what is true).
//!
//! A [`Pump`] is a deterministic state machine on the true timeline. [`Pump::advance_to`]
//! delivers drug, raises and repeats alarms and drains the battery, jumping from one event to the
//! next ([`Pump::next_event_at`]), so that its cost is proportional to the events crossed, not to
//! the time span. [`Pump::handle`] applies a programmer's or PTM's command, or refuses it with a
//! reason. [`Pump::act`] applies the simulation's hooks: refills done by hand, faults.
//!
//! The pump composes two types that never share state: the firmware (`firmware::Firmware`,
//! belief) and the [`World`] (truth).
//!
//! # Invariants
//! - Time only moves forward; a command or action dated before `now` happens at `now`.
//! - Mass balance in the world holds to the nanogram after every step (asserted in debug).
//! - No command passes the profile's hard limits (rates, boluses, PTM lockout and daily
//!   maximum, reservoir capacity); every refusal has a code, a sentence, and a log entry.
//! - The event log, the therapy history, the PTM history and the request memory are bounded.

use itb_dose::{Concentration, DeviceProfile, Prescription, Volume, VolumeRate};

use crate::alarm::AlarmKind;
use crate::command::{Actor, Command, Refusal, Reply, Request, WorldAction};
use crate::log::EventLog;
use crate::status::Status;
use crate::time::{Instant, PumpTime};
use crate::world::{Fluid, InjectInto, World};

mod firmware;

use firmware::Firmware;

/// Programs kept in the therapy history.
pub const THERAPY_HISTORY_MAX: usize = 16;
/// Request ids remembered for retries.
pub const REQUESTS_REMEMBERED: usize = 64;
/// Guard against a scheduling bug: events processed at one instant.
const EVENTS_PER_INSTANT_MAX: u32 = 64;

/// How a pump is implanted.
#[derive(Debug, Clone)]
pub struct Implant {
    /// The device model.
    pub profile: DeviceProfile,
    /// When.
    pub at: Instant,
    /// What the pump's clock reads then.
    pub clock: PumpTime,
    /// Catheter length, cm.
    pub catheter_cm: u32,
    /// The pump's true delivery error, parts per million (within the labelled accuracy for a
    /// good pump).
    pub rate_error_ppm: i64,
    /// Filled in theatre.
    pub fill: Volume,
    /// Of this concentration.
    pub concentration: Concentration,
    /// Programmed in recovery.
    pub prescription: Prescription,
}

/// A program in the therapy history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HistoryEntry {
    /// Its number, from 1.
    pub number: u64,
    /// When it was programmed.
    pub at: Instant,
    /// What.
    pub prescription: Prescription,
}

/// Counters a summary needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Counters {
    /// Alarm tones sounded.
    pub tones: u64,
    /// Commands handled (telemetry exchanges).
    pub commands: u64,
    /// Commands refused.
    pub refused: u64,
    /// Events processed by `advance_to`.
    pub events: u64,
    /// Volume the firmware commanded, nanolitres.
    pub commanded: Volume,
}

/// An implanted pump: its firmware (belief) and the world around it (truth).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pump {
    firmware: Firmware,
    world: World,
}

impl Pump {
    /// Implants a pump, fills it and starts its therapy. The catheter starts empty: program a
    /// priming bolus to fill it, or the first drug out fills it instead of reaching the patient.
    pub fn implant(implant: Implant) -> Result<Self, Refusal> {
        let mut firmware = Firmware::implant(&implant)?;
        let mut world = World::new(firmware.dead_volume(), implant.rate_error_ppm);
        let capacity = implant.profile.reservoir.capacity.value;
        world.inject(Fluid::of(implant.fill, implant.concentration), InjectInto::Reservoir, capacity);
        firmware.after_world_change(&world);
        Ok(Pump { firmware, world })
    }

    // ---- reading ------------------------------------------------------------------------------

    /// The current instant.
    pub fn now(&self) -> Instant {
        self.firmware.now()
    }
    /// The device profile.
    pub fn profile(&self) -> &DeviceProfile {
        self.firmware.profile()
    }
    /// The event log.
    pub fn log(&self) -> &EventLog {
        self.firmware.log()
    }
    /// The therapy history, oldest first (bounded).
    pub fn history(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.firmware.history()
    }
    /// The truth.
    pub fn world(&self) -> &World {
        &self.world
    }
    /// Counters.
    pub fn counters(&self) -> Counters {
        self.firmware.counters()
    }
    /// The tubing and catheter volume the firmware was told at implant.
    pub fn dead_volume(&self) -> Volume {
        self.firmware.dead_volume()
    }
    /// True when the firmware remembers a request from `by` with this id (its answer, or a
    /// refusal of another body under it, would be given without acting). A caller that must
    /// act on the world before the command (a withdrawal, a refill's injection) asks first.
    pub fn knows_request(&self, by: Actor, id: u64) -> bool {
        self.firmware.knows_request(by, id)
    }
    /// The command and answer the firmware remembers for a request from `by` with this id
    /// (a device that lost its own memory of answers, after a restart, answers a retry from it).
    pub fn remembered(&self, by: Actor, id: u64) -> Option<(&Command, &Result<Reply, Refusal>)> {
        self.firmware.remembered(by, id)
    }
    /// The firmware's reservoir estimate.
    pub fn reservoir_estimate(&self) -> Volume {
        self.firmware.reservoir_estimate()
    }
    /// True once the Elective Replacement Indicator has come on.
    pub fn elective_replacement(&self) -> bool {
        self.firmware.elective_replacement()
    }
    /// True when `kind` is sounding.
    pub fn alarm_active(&self, kind: AlarmKind) -> bool {
        self.firmware.alarm_active(kind)
    }
    /// The status, as an interrogation reads it (without charging a telemetry session).
    pub fn status(&self) -> Status {
        self.firmware.status()
    }

    // ---- running ------------------------------------------------------------------------------

    /// The next instant at which anything changes: a schedule step, a bolus end, a reservoir
    /// threshold, an alarm tone, a motor check, ERI or EOS (the firmware's schedule), or a change
    /// in the world such as a stall ending (physics, which the firmware senses when it comes).
    pub fn next_event_at(&self) -> Option<Instant> {
        let (rate, schedule_change) = self.firmware.commanded_rate();
        self.next_event_from(rate, schedule_change)
    }

    fn next_event_from(&self, rate: VolumeRate, schedule_change: Option<Instant>) -> Option<Instant> {
        let firmware = self.firmware.next_event_from(rate, schedule_change);
        match (firmware, self.world.next_change_at(self.now())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the pump to `t`.
    pub fn advance_to(&mut self, t: Instant) {
        let mut same_instant = 0;
        loop {
            let (rate, change) = self.firmware.commanded_rate();
            let due = self.next_event_from(rate, change).filter(|e| *e <= t);
            let step_to = due.unwrap_or(t);
            if step_to > self.firmware.now() {
                self.firmware.integrate_at(step_to, rate, &mut self.world);
                debug_assert!(self.world.mass_balance_holds(), "mass balance broken at {step_to}");
                same_instant = 0;
            }
            if due.is_none() {
                break;
            }
            self.firmware.process_due(&self.world);
            same_instant += 1;
            if same_instant > EVENTS_PER_INSTANT_MAX {
                debug_assert!(false, "scheduling made no progress at {}", self.firmware.now());
                break;
            }
        }
    }

    /// Handles a request at `t` (the pump first runs to `t`). A request id seen before returns
    /// the first answer without acting again: a retried bolus delivers once.
    pub fn handle(&mut self, t: Instant, request: Request) -> Result<Reply, Refusal> {
        self.advance_to(t.max(self.now()));
        let answer = self.firmware.handle(request, &self.world);
        debug_assert!(self.world.mass_balance_holds());
        answer
    }

    /// Applies a simulation hook at `t`: a refill step done by hand, or a fault.
    pub fn act(&mut self, t: Instant, action: WorldAction) -> Option<Fluid> {
        self.advance_to(t.max(self.now()));
        let now = self.now();
        let mut withdrawn = None;
        match action {
            WorldAction::Withdraw => withdrawn = Some(self.world.withdraw()),
            WorldAction::Inject { volume, concentration, into } => {
                let capacity = self.profile().reservoir.capacity.value;
                self.world.inject(Fluid::of(volume, concentration), into, capacity);
            }
            WorldAction::MriScan { stall_for } => self.world.stall_motor(now.plus(stall_for)),
            WorldAction::Catheter(state) => self.world.set_catheter(state),
            WorldAction::ReplaceCatheter => self.world.replace_catheter(self.world.fluid_path_capacity()),
            WorldAction::RateError { ppm } => self.world.set_rate_error_ppm(ppm),
            WorldAction::BatteryDefect { capacity_loss_ppm } => self.world.battery_defect(capacity_loss_ppm),
            WorldAction::LowBatteryReset => self.firmware.low_battery_reset(),
            WorldAction::MemoryError { critical } => self.firmware.memory_error(critical),
        }
        self.firmware.after_world_change(&self.world);
        debug_assert!(self.world.mass_balance_holds());
        withdrawn
    }

    // ---- restoring ----------------------------------------------------------------------------

    /// Checks a pump read back from a snapshot: the world's mass balance, every bound, and that
    /// the compiled program is the one its prescription gives at the pump's concentration. A
    /// pump that fails is refused, never run.
    #[cfg(feature = "serde")]
    pub(crate) fn check_restored(&self) -> Result<(), String> {
        let capacity = self.profile().reservoir.capacity.value;
        self.world.check_restored(self.dead_volume(), capacity)?;
        self.firmware.check_restored()
    }
}
