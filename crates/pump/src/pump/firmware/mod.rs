//! The firmware: what the pump believes and enforces.
//!
//! [`Firmware`] holds everything the pump knows: the programmed therapy compiled to volume rates
//! on its own clock, its reservoir estimate, boluses, PTM history, alarms, battery bookkeeping,
//! the event log, the therapy history and the request memory. It never holds or reads the
//! world's state: it drives the motor through an actuator and reads its sensors at an instant
//! (see [`crate::sense`]); the [`Pump`](super::Pump) composes it with the world.

use std::cell::Cell;
use std::collections::VecDeque;

use itb_dose::profile::SERVICE_LIFE_MAX;
use itb_dose::quantity::MS_PER_DAY;
use itb_dose::{Concentration, DeviceProfile, Duration, Prescription, Volume, VolumeRate};

use crate::alarm::{AlarmKind, Alarms};
use crate::command::{Actor, Command, Refusal, Reply};
use crate::log::{Event, EventLog};
use crate::sense::{Motor, MotorCurrent, Sensors};
use crate::status::{DeliveryState, Status, Withdrawal};
use crate::text::LogText;
use crate::therapy::Rates;
use crate::time::{Instant, PumpClock};

mod commands;

use super::{Counters, HistoryEntry, Implant, REQUESTS_REMEMBERED, THERAPY_HISTORY_MAX};

/// PTM bolus starts remembered (at least the most allowed in 24 hours).
const PTM_STARTS_MAX: usize = 64;
/// Telemetry sessions allowed between two battery checks (their charge is in the bound).
const SESSIONS_PER_BATTERY_CHECK: u64 = 64;

/// A commanded rate computed at `(now, generation)`, with its next scheduled change.
type RateCache = (Instant, u64, VolumeRate, Option<Instant>);

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Program {
    prescription: Prescription,
    rates: Rates,
    /// The highest rate of `rates`.
    max_rate: VolumeRate,
    /// The PTM bolus's rate, on top of the therapy's.
    ptm_rate: VolumeRate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
enum OverrideKind {
    SingleBolus { then_stop: bool },
    Priming,
}

/// A bolus in place of the therapy: time-bound (single) or volume-bound (priming).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Override {
    kind: OverrideKind,
    rate: VolumeRate,
    ends_at: Option<Instant>,
    remaining: Volume,
}

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Bridge {
    remaining: Volume,
    old_rates: Rates,
    old_max_rate: VolumeRate,
    old_concentration: Concentration,
}

#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct PtmRunning {
    rate: VolumeRate,
    ends_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
enum Halt {
    LowBatteryReset,
    CriticalMemoryError,
}

/// A request the firmware answered, kept so that a retry gets the same answer. Its key,
/// `(by, id)`, is kept apart (in `Firmware::request_keys`, at the same index) so that looking a
/// request up reads only the keys.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Remembered {
    command: Command,
    reason: Option<LogText>,
    answer: Result<Reply, Refusal>,
}

/// Battery bookkeeping, in charge units scaled by a million.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Battery {
    /// Exact integral of the commanded rate: nanolitre-milliseconds per day.
    moved_nl_ms: u128,
    tones: u64,
    sessions: u64,
    /// The cell's lost capacity as last sensed, parts per million.
    capacity_loss_ppm: u32,
}

/// What the pump believes and enforces.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(super) struct Firmware {
    profile: DeviceProfile,
    now: Instant,
    implanted_at: Instant,
    clock: PumpClock,
    dead_volume: Volume,
    catheter_volume: Volume,
    reservoir: Volume,
    /// When the drug in the reservoir went in (implant or the last refill): its stability runs
    /// from here.
    filled_at: Instant,
    /// A withdrawal was recorded and the refill has not been.
    awaiting_refill: bool,
    /// The withdrawal told to it, until the refill.
    withdrawal: Option<Withdrawal>,
    concentration: Concentration,
    alarm_threshold: Volume,
    program: Option<Program>,
    program_number: u64,
    stopped: bool,
    halt: Option<Halt>,
    end_of_service: bool,
    override_bolus: Option<Override>,
    bridge: Option<Bridge>,
    ptm: Option<PtmRunning>,
    ptm_starts: VecDeque<Instant>,
    remainder: u128,
    stall_detected: bool,
    eri_seen: bool,
    battery_check_at: Instant,
    battery_exact: bool,
    sessions_since_battery_check: u64,
    /// The commanded rate and its next change, for one `(now, generation)`: the rate is asked
    /// for several times per event and is worth computing once.
    #[cfg_attr(feature = "serde", serde(skip))]
    rate_cache: Cell<Option<RateCache>>,
    generation: u64,
    /// When the firmware first sensed its driven motor not turning, unless it has seen it turn
    /// (or stopped driving it) since.
    motor_silent_since: Option<Instant>,
    alarms: Alarms,
    battery: Battery,
    log: EventLog,
    history: VecDeque<HistoryEntry>,
    /// The keys of `requests`, index for index.
    request_keys: VecDeque<(Actor, u64)>,
    requests: VecDeque<Remembered>,
    counters: Counters,
    /// The reason of the request being handled, logged after its change's entry: set and
    /// cleared within one `handle`.
    #[cfg_attr(feature = "serde", serde(skip))]
    reason: Option<LogText>,
}

fn rate_volume(rate: VolumeRate, from: u128, over: Duration) -> (Volume, u128) {
    // The remainder is below a day, so the sum fits in u64 for any realistic rate and span;
    // u128 division is several times slower, so it is the fallback only.
    if let Some(total) = rate.as_nl_per_day().checked_mul(over.as_ms()).and_then(|v| v.checked_add(from as u64)) {
        return (Volume::nl(total / MS_PER_DAY), u128::from(total % MS_PER_DAY));
    }
    let total = from + u128::from(rate.as_nl_per_day()) * u128::from(over.as_ms());
    let day = u128::from(MS_PER_DAY);
    (Volume::nl(u64::try_from(total / day).unwrap_or(u64::MAX)), total % day)
}

/// Time at `rate` (with `remainder` already accumulated) until `need` has been moved.
fn time_to_move(rate: VolumeRate, remainder: u128, need: Volume) -> Option<Duration> {
    if rate.is_zero() {
        return None;
    }
    if let Some(target) = need.as_nl().checked_mul(MS_PER_DAY) {
        let ms = target.saturating_sub(remainder as u64).div_ceil(rate.as_nl_per_day());
        return Some(Duration::ms(ms));
    }
    let target = u128::from(need.as_nl()) * u128::from(MS_PER_DAY);
    let ms = target.saturating_sub(remainder).div_ceil(u128::from(rate.as_nl_per_day()));
    Some(Duration::ms(u64::try_from(ms).unwrap_or(u64::MAX)))
}

impl Firmware {
    /// The firmware of a pump just implanted: told its fill and programmed. The hard limits are
    /// checked before anything else, so that a refused implant changes nothing.
    pub(super) fn implant(implant: &Implant) -> Result<Self, Refusal> {
        Self::check_clock(implant.clock)?;
        let profile = implant.profile.clone();
        let catheter_volume = profile
            .fluid_path
            .catheter_per_cm
            .value
            .checked_mul(u64::from(implant.catheter_cm))
            .unwrap_or(Volume::ZERO);
        let dead_volume = catheter_volume.checked_add(profile.fluid_path.pump_tubing.value).unwrap_or(catheter_volume);
        let log_capacity = usize::try_from(profile.log.capacity.value).unwrap_or(1024);
        let mut firmware = Firmware {
            now: implant.at,
            implanted_at: implant.at,
            clock: PumpClock::set(implant.at, implant.clock),
            dead_volume,
            catheter_volume,
            reservoir: Volume::ZERO,
            filled_at: implant.at,
            awaiting_refill: false,
            withdrawal: None,
            concentration: implant.concentration,
            alarm_threshold: profile.reservoir.low_alarm_default.value,
            program: None,
            program_number: 0,
            stopped: false,
            halt: None,
            end_of_service: false,
            override_bolus: None,
            bridge: None,
            ptm: None,
            ptm_starts: VecDeque::with_capacity(PTM_STARTS_MAX),
            remainder: 0,
            stall_detected: false,
            eri_seen: false,
            battery_check_at: implant.at,
            battery_exact: true,
            sessions_since_battery_check: 0,
            rate_cache: Cell::new(None),
            generation: 0,
            motor_silent_since: None,
            alarms: Alarms::default(),
            battery: Battery::default(),
            log: EventLog::new(log_capacity),
            history: VecDeque::with_capacity(THERAPY_HISTORY_MAX),
            request_keys: VecDeque::with_capacity(REQUESTS_REMEMBERED),
            requests: VecDeque::with_capacity(REQUESTS_REMEMBERED),
            counters: Counters::default(),
            reason: None,
            profile,
        };
        firmware.record(Event::Implanted);
        firmware.check_concentration(implant.concentration)?;
        firmware.check_fill(implant.fill)?;
        firmware.reservoir = implant.fill;
        firmware.check_program(&implant.prescription)?;
        firmware.set_program(implant.prescription.clone(), Actor::Implant);
        Ok(firmware)
    }

    // ---- reading ------------------------------------------------------------------------------

    /// The current instant.
    pub(super) fn now(&self) -> Instant {
        self.now
    }
    /// The device profile.
    pub(super) fn profile(&self) -> &DeviceProfile {
        &self.profile
    }
    /// The event log.
    pub(super) fn log(&self) -> &EventLog {
        &self.log
    }
    /// The therapy history, oldest first (bounded).
    pub(super) fn history(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.history.iter()
    }
    /// Counters.
    pub(super) fn counters(&self) -> Counters {
        self.counters
    }
    /// The tubing and catheter volume the firmware was told at implant.
    pub(super) fn knows_request(&self, by: Actor, id: u64) -> bool {
        self.request_keys.iter().any(|key| *key == (by, id))
    }
    pub(super) fn remembered(&self, by: Actor, id: u64) -> Option<(&Command, &Result<Reply, Refusal>)> {
        let index = self.request_keys.iter().position(|key| *key == (by, id))?;
        self.requests.get(index).map(|r| (&r.command, &r.answer))
    }
    pub(super) fn dead_volume(&self) -> Volume {
        self.dead_volume
    }
    /// The firmware's reservoir estimate.
    pub(super) fn reservoir_estimate(&self) -> Volume {
        self.reservoir
    }
    /// True once the Elective Replacement Indicator has come on.
    pub(super) fn elective_replacement(&self) -> bool {
        self.eri_seen
    }
    /// True when `kind` is sounding.
    pub(super) fn alarm_active(&self, kind: AlarmKind) -> bool {
        self.alarms.is_active(kind)
    }

    /// The status, as an interrogation reads it (without charging a telemetry session).
    pub(super) fn status(&self) -> Status {
        let (rate, _) = self.commanded_rate();
        let (ptm_next_allowed_at, ptm_in_24h) = self.ptm_window();
        Status {
            at: self.now,
            pump_time: self.clock.read(self.now),
            profile: self.profile.name.clone(),
            implanted_at: self.implanted_at,
            reservoir: self.reservoir,
            filled_at: self.filled_at,
            awaiting_refill: self.awaiting_refill,
            withdrawal: self.withdrawal,
            concentration: self.concentration,
            alarm_threshold: self.alarm_threshold,
            prescription: self.program.as_ref().map(|p| p.prescription.clone()),
            program_number: self.program_number,
            state: self.delivery_state(),
            rate,
            ptm_bolus_running: self.ptm.is_some(),
            ptm_boluses_last_24h: ptm_in_24h,
            ptm_next_allowed_at,
            alarms: self.alarms.active().copied().collect(),
            motor_stalled: self.stall_detected,
            battery_remaining: self.battery_remaining(),
            elective_replacement: self.eri_seen,
            log_next_seq: self.log.next_seq(),
        }
    }

    fn delivery_state(&self) -> DeliveryState {
        if self.end_of_service {
            DeliveryState::EndOfService
        } else if self.halt.is_some() {
            DeliveryState::Halted
        } else if let Some(bolus) = &self.override_bolus {
            match bolus.kind {
                OverrideKind::SingleBolus { .. } => DeliveryState::SingleBolus,
                OverrideKind::Priming => DeliveryState::Priming,
            }
        } else if self.stopped || self.program.is_none() {
            DeliveryState::Stopped
        } else if self.bridge.is_some() {
            DeliveryState::Bridge
        } else {
            DeliveryState::Therapy
        }
    }

    // ---- delivery -----------------------------------------------------------------------------

    /// Marks the state changed: cached derived values are stale.
    fn touch(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// The commanded volume rate now and the instant it next changes by the schedule.
    pub(super) fn commanded_rate(&self) -> (VolumeRate, Option<Instant>) {
        if let Some((at, generation, rate, change)) = self.rate_cache.get()
            && at == self.now
            && generation == self.generation
        {
            return (rate, change);
        }
        let (rate, change) = self.compute_commanded_rate();
        self.rate_cache.set(Some((self.now, self.generation, rate, change)));
        (rate, change)
    }

    fn compute_commanded_rate(&self) -> (VolumeRate, Option<Instant>) {
        if self.end_of_service || self.halt.is_some() {
            return (VolumeRate::ZERO, None);
        }
        if let Some(bolus) = &self.override_bolus {
            return (bolus.rate, bolus.ends_at);
        }
        if self.stopped {
            return (VolumeRate::ZERO, None);
        }
        let Some(program) = &self.program else { return (VolumeRate::ZERO, None) };
        let rates = self.bridge.as_ref().map_or(&program.rates, |b| &b.old_rates);
        let (base, next_local) = rates.at(self.clock.read(self.now));
        let mut next = next_local.map(|local| self.clock.instant_of(local));
        let mut rate = base;
        if let Some(ptm) = &self.ptm {
            rate = VolumeRate::nl_per_day(rate.as_nl_per_day().saturating_add(ptm.rate.as_nl_per_day()));
            next = Some(next.map_or(ptm.ends_at, |n| n.min(ptm.ends_at)));
        }
        (rate, next)
    }

    /// The next instant at which the firmware has something to do, given its commanded `rate`
    /// and the next `schedule_change`: a schedule step, a bolus end, a reservoir threshold, an
    /// alarm tone, a motor check, ERI or EOS.
    pub(super) fn next_event_from(&self, rate: VolumeRate, schedule_change: Option<Instant>) -> Option<Instant> {
        let mut next = schedule_change;
        let mut consider = |candidate: Option<Instant>| {
            if let Some(c) = candidate {
                next = Some(next.map_or(c, |n| n.min(c)));
            }
        };
        let after = |d: Option<Duration>| d.map(|d| self.now.plus(d));
        if !self.stall_detected {
            let threshold_gap = self.reservoir.checked_sub(self.alarm_threshold).filter(|g| !g.is_zero());
            if !self.alarms.is_active(AlarmKind::LowReservoir) {
                consider(after(threshold_gap.and_then(|g| time_to_move(rate, self.remainder, g))));
            }
            if !self.alarms.is_active(AlarmKind::EmptyReservoir) && !self.reservoir.is_zero() {
                consider(after(time_to_move(rate, self.remainder, self.reservoir)));
            }
            if let Some(bridge) = &self.bridge {
                consider(after(time_to_move(rate, self.remainder, bridge.remaining)));
            }
            if let Some(bolus) = &self.override_bolus
                && bolus.ends_at.is_none()
            {
                consider(after(time_to_move(rate, self.remainder, bolus.remaining)));
            }
        }
        consider(self.alarms.next_tone_at());
        consider(self.stall_check_at(rate));
        if !self.end_of_service {
            consider(Some(if self.battery_exact {
                self.battery_event_at(rate).unwrap_or(self.now)
            } else {
                self.battery_check_at
            }));
        }
        next.map(|n| n.max(self.now))
    }

    /// Drives the motor at `rate`, the commanded rate, from `now` to `until` (no event in
    /// between).
    pub(super) fn integrate_at(&mut self, until: Instant, rate: VolumeRate, motor: &mut impl Motor) {
        let span = until.since(self.now);
        if !rate.is_zero() {
            let (moved, remainder) = rate_volume(rate, self.remainder, span);
            self.remainder = remainder;
            self.battery.moved_nl_ms += u128::from(rate.as_nl_per_day()) * u128::from(span.as_ms());
            self.counters.commanded = self.counters.commanded.checked_add(moved).unwrap_or(self.counters.commanded);
            if !self.stall_detected {
                self.reservoir = self.reservoir.saturating_sub(moved);
                if let Some(bridge) = &mut self.bridge {
                    bridge.remaining = bridge.remaining.saturating_sub(moved);
                }
                if let Some(bolus) = &mut self.override_bolus {
                    bolus.remaining = bolus.remaining.saturating_sub(moved);
                }
            }
            motor.drive(moved, self.now);
        }
        self.now = until;
    }

    /// Handles everything due at `now`.
    pub(super) fn process_due(&mut self, sensors: &impl Sensors) {
        // Only what changes the commanded rate marks the state changed (`touch`): a boundary of
        // the schedule needs no mark, since the cached rate is for another instant.
        self.counters.events += 1;
        let critical = self.profile.alarms.critical_tone_interval.value;
        let non_critical = self.profile.alarms.non_critical_tone_interval.value;
        let tones = self.alarms.sound_due(self.now, critical, non_critical);
        self.battery.tones += tones;
        self.counters.tones += tones;
        // Boluses that end by time.
        if let Some(bolus) = self.override_bolus
            && bolus.ends_at.is_some_and(|end| end <= self.now)
        {
            self.end_override(bolus);
        }
        if self.ptm.is_some_and(|p| p.ends_at <= self.now) {
            self.ptm = None;
            self.touch();
        }
        // Volume thresholds.
        if !self.stall_detected {
            if let Some(bolus) = self.override_bolus
                && bolus.ends_at.is_none()
                && bolus.remaining.is_zero()
            {
                self.end_override(bolus);
            }
            if self.bridge.as_ref().is_some_and(|b| b.remaining.is_zero()) {
                self.bridge = None;
                self.touch();
                self.record(Event::BridgeEnded);
            }
        }
        self.check_reservoir_alarms();
        self.sense_motor(sensors);
        if self.battery_exact || self.now >= self.battery_check_at {
            self.refresh_battery(sensors);
        }
    }

    fn end_override(&mut self, bolus: Override) {
        self.override_bolus = None;
        self.touch();
        if let OverrideKind::SingleBolus { then_stop: true } = bolus.kind {
            self.stopped = true;
        }
        self.record(Event::BolusEnded);
    }

    fn check_reservoir_alarms(&mut self) {
        if self.reservoir <= self.alarm_threshold && self.alarms.raise(AlarmKind::LowReservoir, self.now) {
            self.record(Event::AlarmRaised(AlarmKind::LowReservoir));
        }
        if self.reservoir.is_zero() && self.alarms.raise(AlarmKind::EmptyReservoir, self.now) {
            self.record(Event::AlarmRaised(AlarmKind::EmptyReservoir));
        }
    }

    // ---- motor --------------------------------------------------------------------------------

    /// When the firmware checks for a stall: the detection time after it first sensed the
    /// driven motor not turning. It cannot know when a stall will end; if it ends first, the
    /// firmware senses the motor turn at that instant (the world's change is an event) and the
    /// check is off.
    fn stall_check_at(&self, rate: VolumeRate) -> Option<Instant> {
        if self.stall_detected || rate.is_zero() {
            return None;
        }
        self.motor_silent_since.map(|since| since.plus(self.profile.alarms.stall_detection.value))
    }

    /// Reads the motor's current now: a stall is noticed after the detection time without
    /// seeing the driven motor turn, and its recovery the first time it is seen turning again.
    /// Call whenever anything happens: the firmware watches its motor all the time it drives it.
    fn sense_motor(&mut self, sensors: &impl Sensors) {
        let (rate, _) = self.commanded_rate();
        match sensors.motor_current(self.now, !rate.is_zero()) {
            MotorCurrent::Idle => self.motor_silent_since = None,
            MotorCurrent::Turning => {
                self.motor_silent_since = None;
                if self.stall_detected {
                    self.stall_detected = false;
                    self.record(Event::MotorStallRecovered);
                }
            }
            MotorCurrent::Stalled => {
                let since = *self.motor_silent_since.get_or_insert(self.now);
                if !self.stall_detected && self.now >= since.plus(self.profile.alarms.stall_detection.value) {
                    self.stall_detected = true;
                    self.record(Event::MotorStallDetected);
                    if self.alarms.raise(AlarmKind::MotorStall, self.now) {
                        self.record(Event::AlarmRaised(AlarmKind::MotorStall));
                    }
                }
            }
        }
    }

    /// After anything outside the firmware's own schedule (a command, a change in the world):
    /// the firmware reads its sensors now.
    fn sense(&mut self, sensors: &impl Sensors) {
        self.sense_motor(sensors);
        self.refresh_battery(sensors);
    }

    // ---- battery ------------------------------------------------------------------------------

    fn scaled(value: u64) -> u128 {
        u128::from(value) * 1_000_000
    }

    fn capacity_scaled(&self) -> u128 {
        let capacity = Self::scaled(self.profile.battery.capacity.value);
        capacity * u128::from(1_000_000 - self.battery.capacity_loss_ppm.min(1_000_000)) / 1_000_000
    }

    /// Charge used so far, scaled by a million.
    fn used_scaled(&self) -> u128 {
        let b = &self.profile.battery;
        let day = u128::from(MS_PER_DAY);
        let age_ms = self.now.since(self.implanted_at).as_ms();
        // per_day * 1e6 * age / 86_400_000 = per_day * age * 10 / 864, in u64 when it fits.
        let by_age = match b.per_day.value.checked_mul(age_ms).and_then(|v| v.checked_mul(10)) {
            Some(v) => u128::from(v / 864),
            None => Self::scaled(b.per_day.value) * u128::from(age_ms) / day,
        };
        by_age
            + u128::from(b.per_ml.value) * self.battery.moved_nl_ms / day
            + Self::scaled(b.per_tone.value) * u128::from(self.battery.tones)
            + Self::scaled(b.per_session.value) * u128::from(self.battery.sessions)
    }

    /// Charge used per day at `rate`, scaled by a million.
    fn drain_per_day_scaled(&self, rate: VolumeRate) -> u128 {
        let b = &self.profile.battery;
        Self::scaled(b.per_day.value) + u128::from(b.per_ml.value) * u128::from(rate.as_nl_per_day())
    }

    /// The end of the service life: the profile's, and never more than 7 x 365.25 days even if a
    /// profile built in code says more.
    fn end_of_life(&self) -> Instant {
        self.implanted_at.plus(self.profile.battery.service_life_max.value.min(SERVICE_LIFE_MAX))
    }

    fn eri_reached(&self) -> bool {
        let (rate, _) = self.commanded_rate();
        let reserve_days = u128::from(self.profile.battery.eri_before_eos.value.as_ms()) / u128::from(MS_PER_DAY);
        let remaining = self.capacity_scaled().saturating_sub(self.used_scaled());
        remaining <= reserve_days * self.drain_per_day_scaled(rate)
            || self.now >= self.end_of_life().minus(self.profile.battery.eri_before_eos.value)
    }

    fn battery_event_at(&self, rate: VolumeRate) -> Option<Instant> {
        if self.end_of_service {
            return None;
        }
        let drain = self.drain_per_day_scaled(rate);
        let remaining = self.capacity_scaled().saturating_sub(self.used_scaled());
        let day = u128::from(MS_PER_DAY);
        let until_empty = Duration::ms(u64::try_from((remaining * day).div_ceil(drain)).unwrap_or(u64::MAX));
        let eos = self.now.plus(until_empty).min(self.end_of_life());
        if self.eri_seen {
            return Some(eos);
        }
        let reserve = self.profile.battery.eri_before_eos.value;
        let reserve_charge = u128::from(reserve.as_ms()) * drain / day;
        let until_eri = Duration::ms(
            u64::try_from((remaining.saturating_sub(reserve_charge) * day).div_ceil(drain)).unwrap_or(u64::MAX),
        );
        let eri = self.now.plus(until_eri).min(self.end_of_life().minus(reserve));
        Some(eri.min(eos))
    }

    fn check_battery(&mut self) {
        if self.end_of_service {
            return;
        }
        if self.used_scaled() >= self.capacity_scaled() || self.now >= self.end_of_life() {
            self.end_of_service = true;
            self.touch();
            self.override_bolus = None;
            self.bridge = None;
            self.ptm = None;
            self.record(Event::EndOfService);
            if self.alarms.raise(AlarmKind::EndOfService, self.now) {
                self.record(Event::AlarmRaised(AlarmKind::EndOfService));
            }
            return;
        }
        if !self.eri_seen && self.eri_reached() {
            self.eri_seen = true;
            if self.alarms.raise(AlarmKind::ElectiveReplacement, self.now) {
                self.record(Event::AlarmRaised(AlarmKind::ElectiveReplacement));
            }
        }
    }

    /// The fastest the commanded rate can run until the next command: the program's highest
    /// rate (or the bridge's) with a PTM bolus on top, or a running bolus.
    fn rate_bound(&self) -> VolumeRate {
        let program = self.program.as_ref().map_or(VolumeRate::ZERO, |p| p.max_rate);
        let bridge = self.bridge.as_ref().map_or(VolumeRate::ZERO, |b| b.old_max_rate);
        let bolus = self.override_bolus.map_or(VolumeRate::ZERO, |b| b.rate);
        let therapy = program
            .max(bridge)
            .as_nl_per_day()
            .saturating_add(self.program.as_ref().map_or(0, |p| p.ptm_rate.as_nl_per_day()));
        VolumeRate::nl_per_day(therapy).max(bolus)
    }

    /// Checks ERI and EOS now, and sets when to check next: the earliest instant either could
    /// come even at the fastest rate the pump may run (plus every alarm sounding), so that most
    /// events need no battery arithmetic; close to the end the check runs at every event.
    fn refresh_battery(&mut self, sensors: &impl Sensors) {
        self.battery.capacity_loss_ppm = sensors.battery_capacity_lost_ppm().min(1_000_000);
        self.check_battery();
        if self.end_of_service {
            return;
        }
        let day = u128::from(MS_PER_DAY);
        let alarms = &self.profile.alarms;
        let tones_per_day = u128::from(MS_PER_DAY.div_ceil(alarms.critical_tone_interval.value.as_ms().max(1))) + 1;
        let tone_drain =
            Self::scaled(self.profile.battery.per_tone.value) * tones_per_day * AlarmKind::ALL.len() as u128;
        let drain_max = self.drain_per_day_scaled(self.rate_bound()) + tone_drain;
        let remaining = self.capacity_scaled().saturating_sub(self.used_scaled());
        let reserve = if self.eri_seen { Duration::ZERO } else { self.profile.battery.eri_before_eos.value };
        let reserve_charge = u128::from(reserve.as_ms()) * drain_max / day;
        let session_slack =
            Self::scaled(self.profile.battery.per_session.value) * u128::from(SESSIONS_PER_BATTERY_CHECK);
        let gap = remaining.saturating_sub(reserve_charge).saturating_sub(session_slack);
        self.sessions_since_battery_check = 0;
        let safe = Duration::ms(u64::try_from(gap * day / drain_max).unwrap_or(u64::MAX));
        self.battery_exact = safe < Duration::DAY;
        let by_age = if self.eri_seen { self.end_of_life() } else { self.end_of_life().minus(reserve) };
        self.battery_check_at = self.now.plus(safe).min(by_age).max(self.now);
    }

    /// Estimated time to End of Service at the mean drain since implant.
    fn battery_remaining(&self) -> Duration {
        if self.end_of_service {
            return Duration::ZERO;
        }
        let age = self.now.since(self.implanted_at).as_ms().max(1);
        let used = self.used_scaled().max(1);
        let remaining = self.capacity_scaled().saturating_sub(used);
        let by_charge = u64::try_from(remaining * u128::from(age) / used).unwrap_or(u64::MAX);
        let by_age = self.end_of_life().since(self.now).as_ms();
        Duration::ms(by_charge.min(by_age))
    }

    // ---- restoring ----------------------------------------------------------------------------

    /// Checks firmware read back from a snapshot: every bound, and that the compiled program is
    /// the one its prescription gives at the pump's concentration.
    #[cfg(feature = "serde")]
    pub(super) fn check_restored(&self) -> Result<(), String> {
        let capacity = self.profile.reservoir.capacity.value;
        let log_capacity = usize::try_from(self.profile.log.capacity.value).unwrap_or(usize::MAX);
        self.log.check_restored(log_capacity)?;
        let bounds = [
            ("therapy history", self.history.len(), THERAPY_HISTORY_MAX),
            ("request memory", self.requests.len(), REQUESTS_REMEMBERED),
            ("PTM history", self.ptm_starts.len(), PTM_STARTS_MAX),
        ];
        if let Some((what, len, max)) = bounds.iter().find(|(_, len, max)| len > max) {
            return Err(format!("the {what} holds {len} entries, more than {max}"));
        }
        if self.request_keys.len() != self.requests.len() {
            return Err("the request memory's keys do not match its entries".to_owned());
        }
        if !self.ptm_starts.iter().zip(self.ptm_starts.iter().skip(1)).all(|(a, b)| a <= b) {
            return Err("the PTM history is not in time order".to_owned());
        }
        if self.now < self.implanted_at {
            return Err("the pump's time is before its implant".to_owned());
        }
        if self.filled_at < self.implanted_at || self.filled_at > self.now {
            return Err("the reservoir's fill time is outside the pump's life".to_owned());
        }
        if self.awaiting_refill != self.withdrawal.is_some() {
            return Err("a withdrawal is recorded but the pump does not await its refill, or the other way".to_owned());
        }
        if self.awaiting_refill && !self.reservoir.is_zero() {
            return Err("the pump awaits a refill but believes its reservoir holds drug".to_owned());
        }
        if self.reservoir > capacity || self.alarm_threshold.is_zero() || self.alarm_threshold >= capacity {
            return Err("the reservoir estimate or the alarm threshold is outside the reservoir".to_owned());
        }
        self.check_concentration(self.concentration).map_err(|refusal| refusal.message)?;
        if !self.alarms.slots_hold_their_kinds() {
            return Err("an alarm is in another alarm's slot".to_owned());
        }
        if let Some(program) = &self.program {
            let rates = Rates::compile(&program.prescription, self.concentration);
            let expected = self.compiled(program.prescription.clone(), rates);
            if program.rates != expected.rates
                || program.max_rate != expected.max_rate
                || program.ptm_rate != expected.ptm_rate
            {
                return Err("the compiled program does not match its prescription".to_owned());
            }
            if let Some(bridge) = &self.bridge {
                let old_rates = Rates::compile(&program.prescription, bridge.old_concentration);
                if bridge.old_rates != old_rates || bridge.old_max_rate != old_rates.max_rate() {
                    return Err("the bridge's rates do not match the prescription".to_owned());
                }
            }
        } else if self.bridge.is_some() {
            return Err("a bridge without a program".to_owned());
        }
        Ok(())
    }

    // ---- logging ------------------------------------------------------------------------------

    fn record(&mut self, event: Event) {
        self.log.push(self.clock.read(self.now), event);
    }

    /// Records a command's own entry, and right after it the clinician's reason if the request
    /// gave one.
    fn record_change(&mut self, event: Event) {
        self.record(event);
        if let Some(reason) = self.reason.take() {
            self.record(Event::ClinicianReason { reason });
        }
    }
}

#[cfg(test)]
mod tests {
    use itb_dose::Concentration;

    use super::*;

    /// Hardware the test controls: a motor that stalls when told, and what it was driven to move.
    #[derive(Default)]
    struct FakeHardware {
        stalled: bool,
        driven: Volume,
    }

    impl Sensors for FakeHardware {
        fn motor_current(&self, _at: Instant, driven: bool) -> MotorCurrent {
            match (driven, self.stalled) {
                (false, _) => MotorCurrent::Idle,
                (true, false) => MotorCurrent::Turning,
                (true, true) => MotorCurrent::Stalled,
            }
        }
        fn battery_capacity_lost_ppm(&self) -> u32 {
            0
        }
    }

    impl Motor for FakeHardware {
        fn drive(&mut self, commanded: Volume, _at: Instant) {
            self.driven = self.driven.checked_add(commanded).unwrap_or(self.driven);
        }
    }

    fn start() -> Instant {
        Instant::from_ms(1_796_205_600_000)
    }

    fn firmware(hardware: &FakeHardware) -> Firmware {
        let prescription =
            itb_dose::toml::from_toml("mode = \"simple_continuous\"\ndose = \"480 micrograms/day\"\n").expect("valid");
        let mut firmware = Firmware::implant(&Implant {
            profile: DeviceProfile::built_in("synchromed-ii-20").expect("profile"),
            at: start(),
            clock: crate::PumpTime::from_ms(start().as_ms()),
            catheter_cm: 50,
            rate_error_ppm: 0,
            fill: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            prescription,
        })
        .expect("implant");
        firmware.after_world_change(hardware);
        firmware
    }

    /// Runs the firmware alone to `t`, on its own schedule only.
    fn run(firmware: &mut Firmware, hardware: &mut FakeHardware, t: Instant) {
        loop {
            let (rate, change) = firmware.commanded_rate();
            let due = firmware.next_event_from(rate, change).filter(|at| *at <= t);
            firmware.integrate_at(due.unwrap_or(t), rate, hardware);
            if due.is_none() {
                break;
            }
            firmware.process_due(hardware);
        }
    }

    #[test]
    fn a_stall_is_noticed_only_by_sensing_the_motor_at_the_firmwares_own_check() {
        let mut hardware = FakeHardware::default();
        let mut firmware = firmware(&hardware);
        let detection = firmware.profile.alarms.stall_detection.value;
        let t1 = start().plus(Duration::hours(3));
        run(&mut firmware, &mut hardware, t1);
        // The motor stalls, and the firmware is woken (as the pump wakes it after any change in
        // the world): it senses the motor not turning, and checks again after the detection time.
        hardware.stalled = true;
        firmware.after_world_change(&hardware);
        let (rate, change) = firmware.commanded_rate();
        assert_eq!(firmware.next_event_from(rate, change), Some(t1.plus(detection)));
        run(&mut firmware, &mut hardware, t1.plus(detection).minus(Duration::ms(1)));
        assert!(!firmware.status().motor_stalled);
        run(&mut firmware, &mut hardware, t1.plus(detection));
        assert!(firmware.status().motor_stalled && firmware.alarm_active(AlarmKind::MotorStall));
        // Knowing the motor stalled, it keeps driving it but stops counting the drug as gone.
        let estimate = firmware.reservoir_estimate();
        let driven = hardware.driven;
        run(&mut firmware, &mut hardware, t1.plus(Duration::hours(2)));
        assert_eq!(firmware.reservoir_estimate(), estimate);
        assert!(hardware.driven > driven);
        // The motor turns again, unannounced: the firmware learns it the next time it runs, here
        // at the stall alarm's next tone (every 10 minutes from detection).
        hardware.stalled = false;
        let next_tone = t1.plus(detection).plus(Duration::minutes(120));
        run(&mut firmware, &mut hardware, next_tone.minus(Duration::ms(1)));
        assert!(firmware.status().motor_stalled, "not sensed yet");
        run(&mut firmware, &mut hardware, next_tone);
        assert!(!firmware.status().motor_stalled);
        let recovered: Vec<_> = firmware.log().iter().filter(|e| e.event == Event::MotorStallRecovered).collect();
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].at, firmware.clock.read(next_tone));
    }

    #[test]
    fn an_idle_motor_tells_the_firmware_nothing() {
        let mut hardware = FakeHardware { stalled: true, ..FakeHardware::default() };
        let mut firmware = firmware(&FakeHardware::default());
        firmware.stopped = true;
        firmware.touch();
        firmware.after_world_change(&hardware);
        run(&mut firmware, &mut hardware, start().plus(Duration::hours(5)));
        assert!(!firmware.status().motor_stalled);
        assert_eq!(hardware.driven, Volume::ZERO);
    }
}
