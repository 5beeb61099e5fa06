//! Commands and the simulation's hooks: the firmware's hard limits live here.

use itb_dose::drug::{DILUTION_MAX, DILUTION_MIN};
use itb_dose::prescription::Therapy;
use itb_dose::{Concentration, Duration, Mass, Prescription, Rounding, Volume, VolumeRate};

use super::{
    Bridge, Firmware, Halt, HistoryEntry, Override, OverrideKind, Program, PtmRunning, Remembered, Withdrawal,
};
use super::{PTM_STARTS_MAX, REQUESTS_REMEMBERED, SESSIONS_PER_BATTERY_CHECK, THERAPY_HISTORY_MAX};
use crate::alarm::AlarmKind;
use crate::command::{Actor, Command, Refusal, RefusalCode, Reply, Request};
use crate::log::Event;
use crate::sense::Sensors;
use crate::therapy::{Rates, volume_rate};
use crate::time::{Instant, PumpClock, PumpTime};
use crate::world::InjectInto;

impl Firmware {
    /// Handles a request at `now` (the pump has run to it). A request remembered by its sender
    /// and id returns the first answer without acting again if it is the same command (a
    /// retried bolus delivers once), and is refused if it is another.
    pub(in crate::pump) fn handle(&mut self, request: Request, sensors: &impl Sensors) -> Result<Reply, Refusal> {
        self.touch();
        let seen = request.id.and_then(|id| {
            let index = self.request_keys.iter().position(|key| *key == (request.by, id))?;
            Some((id, self.requests.get(index)?))
        });
        let reused = match seen {
            Some((_, seen)) if seen.command == request.command && seen.reason == request.reason => {
                return seen.answer.clone();
            }
            Some((id, seen)) => Some((id, seen.command.name())),
            None => None,
        };
        self.counters.commands += 1;
        self.battery.sessions += 1;
        self.sessions_since_battery_check += 1;
        // Commands that can raise the fastest rate the pump may run move the battery check.
        let moves_bound = matches!(
            request.command,
            Command::Program { .. }
                | Command::Refill { .. }
                | Command::SingleBolus { .. }
                | Command::PrimingBolus { .. }
                | Command::Resume
        );
        let answer = if let Some((id, earlier)) = reused {
            Err(Refusal::new(
                RefusalCode::RequestIdReused,
                format!(
                    "request id {id} was already used for another command ({earlier}); nothing was done: \
                     send a new action with a new id"
                ),
            ))
        } else if request.command.delivers_drug() && request.id.is_none() {
            Err(Refusal::new(
                RefusalCode::RequestIdMissing,
                "a dose command needs a request id, so that a retry cannot deliver twice",
            ))
        } else {
            self.reason = request.reason;
            let answer = self.apply(request.command.clone(), request.by);
            // A command that changed nothing that is logged (an interrogation) keeps its reason too.
            if let (Ok(_), Some(reason)) = (&answer, self.reason.take()) {
                self.record(Event::ClinicianReason { reason });
            }
            answer
        };
        if let Err(refusal) = &answer {
            self.counters.refused += 1;
            let code = refusal.code;
            let event = if code == RefusalCode::PtmLockout || code == RefusalCode::PtmDailyMax {
                Event::PtmRefused { code }
            } else {
                Event::CommandRefused { code }
            };
            self.record(event);
        }
        self.touch();
        self.sense_motor(sensors);
        if moves_bound || self.sessions_since_battery_check >= SESSIONS_PER_BATTERY_CHECK {
            self.refresh_battery(sensors);
        }
        // A refused reuse is not remembered: the id keeps its first command and answer.
        if let Some(id) = request.id
            && reused.is_none()
        {
            if self.requests.len() == REQUESTS_REMEMBERED {
                self.request_keys.pop_front();
                self.requests.pop_front();
            }
            self.request_keys.push_back((request.by, id));
            let remembered = Remembered { command: request.command, reason: request.reason, answer: answer.clone() };
            self.requests.push_back(remembered);
        }
        answer
    }

    /// After the world changed at `now` (a simulation hook): the firmware reads its sensors.
    pub(in crate::pump) fn after_world_change(&mut self, sensors: &impl Sensors) {
        self.touch();
        self.sense(sensors);
    }

    /// The battery voltage dipped: the pump reset and stopped.
    pub(in crate::pump) fn low_battery_reset(&mut self) {
        self.touch();
        self.halt(Halt::LowBatteryReset, AlarmKind::LowBatteryReset, Event::LowBatteryReset);
    }

    /// The firmware found a memory error.
    pub(in crate::pump) fn memory_error(&mut self, critical: bool) {
        self.touch();
        if critical {
            self.halt(Halt::CriticalMemoryError, AlarmKind::CriticalMemoryError, Event::MemoryError { critical: true });
        } else {
            self.record(Event::MemoryError { critical: false });
            if self.alarms.raise(AlarmKind::MemoryError, self.now) {
                self.record(Event::AlarmRaised(AlarmKind::MemoryError));
            }
        }
    }

    fn halt(&mut self, halt: Halt, alarm: AlarmKind, event: Event) {
        self.halt = Some(halt);
        self.override_bolus = None;
        self.ptm = None;
        self.record(event);
        if self.alarms.raise(alarm, self.now) {
            self.record(Event::AlarmRaised(alarm));
        }
    }

    fn apply(&mut self, command: Command, by: Actor) -> Result<Reply, Refusal> {
        // What was withdrawn is a record of what a nurse did: kept even at end of service.
        if self.end_of_service
            && !matches!(command, Command::Interrogate | Command::ClearAlarm { .. } | Command::RecordWithdrawal { .. })
        {
            return Err(Refusal::new(
                RefusalCode::EndOfService,
                "the pump has reached end of service and delivers nothing; replace it",
            ));
        }
        match command {
            Command::Interrogate => Ok(Reply::Status(Box::new(self.status()))),
            Command::Program { prescription } => {
                self.check_program(&prescription)?;
                self.set_program(prescription, by);
                self.halt = None;
                self.stopped = false;
                Ok(Reply::Done(format!("programmed: {}", self.program_text())))
            }
            Command::RecordWithdrawal { volume } => Ok(self.record_withdrawal(volume)),
            Command::Refill { volume, concentration, bridge } => self.refill(volume, concentration, bridge),
            Command::SingleBolus { dose, duration, then_stop } => self.single_bolus(dose, duration, then_stop),
            Command::PrimingBolus { catheter_only } => self.priming(catheter_only),
            Command::PtmBolus => self.ptm_bolus(),
            Command::SetClock { reading } => {
                Self::check_clock(reading)?;
                let before = self.clock.read(self.now);
                self.clock = PumpClock::set(self.now, reading);
                self.record_change(Event::ClockSet { before_ms: before.as_ms(), after_ms: reading.as_ms() });
                Ok(Reply::Done(format!("clock set from {} to {}", before.to_people(), reading.to_people())))
            }
            Command::SetAlarmThreshold { threshold } => {
                let capacity = self.profile.reservoir.capacity.value;
                if threshold.is_zero() || threshold >= capacity {
                    return Err(Refusal::new(
                        RefusalCode::ThresholdOutOfRange,
                        format!(
                            "the low-reservoir alarm threshold must be more than 0 mL and less than the reservoir's {capacity}"
                        ),
                    ));
                }
                self.alarm_threshold = threshold;
                self.record_change(Event::AlarmThresholdSet { threshold_nl: threshold.as_nl() });
                if self.reservoir > threshold && self.alarms.clear(AlarmKind::LowReservoir) {
                    self.record(Event::AlarmCleared(AlarmKind::LowReservoir));
                }
                self.check_reservoir_alarms();
                Ok(Reply::Done(format!("low-reservoir alarm threshold set to {threshold}")))
            }
            Command::ClearAlarm { kind } => self.clear_alarm(kind),
            Command::Stop => {
                self.stopped = true;
                self.override_bolus = None;
                self.ptm = None;
                self.record_change(Event::Stopped);
                Ok(Reply::Done("stopped: no drug is delivered until the pump is resumed".to_owned()))
            }
            Command::Resume => {
                if !self.stopped && self.halt.is_none() {
                    return Err(Refusal::new(RefusalCode::NotStopped, "the pump is not stopped: nothing to resume"));
                }
                if self.halt.is_some() {
                    return Err(Refusal::new(
                        RefusalCode::PumpHalted,
                        "the pump stopped after a fault; program it to start again",
                    ));
                }
                if self.program.is_none() {
                    return Err(Refusal::new(RefusalCode::NoTherapy, "there is no therapy to resume; program one"));
                }
                self.stopped = false;
                self.record_change(Event::Resumed);
                Ok(Reply::Done(format!("resumed: {}", self.program_text())))
            }
        }
    }

    fn program_text(&self) -> String {
        self.program.as_ref().map_or_else(|| "no therapy".to_owned(), |p| p.prescription.to_string())
    }

    fn clear_alarm(&mut self, kind: AlarmKind) -> Result<Reply, Refusal> {
        if !self.alarms.is_active(kind) {
            return Err(Refusal::new(
                RefusalCode::AlarmNotActive,
                format!("the {} alarm is not sounding", kind.label()),
            ));
        }
        let cause = match kind {
            AlarmKind::LowReservoir if self.reservoir <= self.alarm_threshold => {
                Some("the reservoir is still at or below the alarm threshold: refill it")
            }
            AlarmKind::EmptyReservoir if self.reservoir.is_zero() => Some("the reservoir is still empty: refill it"),
            AlarmKind::EndOfService => Some("the pump has reached end of service: replace it"),
            AlarmKind::MotorStall if self.stall_detected => {
                Some("the motor is still stalled: check again later, and watch for withdrawal")
            }
            _ => None,
        };
        if let Some(cause) = cause {
            return Err(Refusal::new(RefusalCode::AlarmCauseRemains, cause));
        }
        self.alarms.clear(kind);
        self.record_change(Event::AlarmCleared(kind));
        Ok(Reply::Done(format!("{} alarm cleared", kind.label())))
    }

    // ---- hard limits --------------------------------------------------------------------------

    pub(super) fn check_concentration(&self, concentration: Concentration) -> Result<(), Refusal> {
        if concentration < DILUTION_MIN || concentration > DILUTION_MAX {
            return Err(Refusal::new(
                RefusalCode::ConcentrationOutOfRange,
                format!("{concentration} is outside {DILUTION_MIN} to {DILUTION_MAX}"),
            ));
        }
        Ok(())
    }

    /// A clock reading from 2000-01-01 00:00 up to 2100-01-01 00:00; anything else is a mistake.
    pub(super) fn check_clock(reading: PumpTime) -> Result<(), Refusal> {
        if reading.is_settable() {
            return Ok(());
        }
        Err(Refusal::new(
            RefusalCode::ClockOutOfRange,
            format!(
                "the pump's clock can be set from {} up to, not including, {}; not to {}",
                PumpTime::EARLIEST.to_people(),
                PumpTime::END.to_people(),
                reading.to_people()
            ),
        ))
    }

    pub(super) fn check_fill(&self, volume: Volume) -> Result<(), Refusal> {
        let capacity = self.profile.reservoir.capacity.value;
        if volume > capacity {
            return Err(Refusal::new(
                RefusalCode::FillAboveCapacity,
                format!("{volume} is more than the reservoir holds ({capacity})"),
            ));
        }
        Ok(())
    }

    fn check_rate(&self, rate: VolumeRate, what: &str) -> Result<(), Refusal> {
        let rates = &self.profile.rates;
        if rate > rates.max.value {
            return Err(Refusal::new(
                RefusalCode::RateAboveMax,
                format!("{what} needs {rate}, above the pump's greatest rate of {}", rates.max.value),
            ));
        }
        if !rate.is_zero() && rate < rates.min.value {
            return Err(Refusal::new(
                RefusalCode::RateBelowMin,
                format!(
                    "{what} needs {rate}, below the pump's least rate of {} (use a weaker concentration)",
                    rates.min.value
                ),
            ));
        }
        Ok(())
    }

    fn check_bolus(&self, dose: Mass, duration: Duration, what: &str) -> Result<(), Refusal> {
        let limits = &self.profile.limits;
        if dose > limits.bolus_max.value {
            return Err(Refusal::new(
                RefusalCode::BolusAboveMax,
                format!("{what} of {dose} is above the pump's largest bolus of {}", limits.bolus_max.value),
            ));
        }
        if duration < limits.bolus_duration_min.value {
            return Err(Refusal::new(
                RefusalCode::BolusTooShort,
                format!(
                    "{what} over {duration} is shorter than the pump's shortest bolus, {}",
                    limits.bolus_duration_min.value
                ),
            ));
        }
        if duration > limits.bolus_duration_max.value {
            return Err(Refusal::new(
                RefusalCode::BolusTooLong,
                format!(
                    "{what} over {duration} is longer than the pump's longest bolus, {}",
                    limits.bolus_duration_max.value
                ),
            ));
        }
        if dose.is_zero() {
            return Err(Refusal::new(
                RefusalCode::BolusEmpty,
                format!("{what} holds no drug; to stop delivery, stop the pump"),
            ));
        }
        Ok(())
    }

    /// Checks a prescription against the pump's hard limits at the current concentration.
    pub(super) fn check_program(&self, prescription: &Prescription) -> Result<(), Refusal> {
        self.check_program_at(prescription, self.concentration)
    }

    /// Checks a prescription against the pump's hard limits at `concentration`.
    fn check_program_at(&self, prescription: &Prescription, concentration: Concentration) -> Result<(), Refusal> {
        let limits = &self.profile.limits;
        let rates = Rates::compile(prescription, concentration);
        for rate in rates.all_rates() {
            self.check_rate(rate, "the therapy")?;
        }
        match prescription.therapy() {
            Therapy::Flex(schedule) => {
                for (day, pattern) in schedule.days() {
                    let steps = pattern.steps().len() as u64;
                    if steps > limits.flex_steps_max.value {
                        return Err(Refusal::new(
                            RefusalCode::TooManyFlexSteps,
                            format!("{day} has {steps} flex steps; the pump holds {}", limits.flex_steps_max.value),
                        ));
                    }
                    if let Some((step, length)) =
                        pattern.steps_with_length().find(|(_, length)| *length < limits.flex_step_min.value)
                    {
                        return Err(Refusal::new(
                            RefusalCode::FlexStepTooShort,
                            format!(
                                "{day}: the step at {} lasts {length}; the pump's shortest step is {}",
                                step.start, limits.flex_step_min.value
                            ),
                        ));
                    }
                }
            }
            Therapy::PeriodicBolus(periodic) => {
                self.check_bolus(periodic.bolus, periodic.bolus_duration, "the periodic bolus")?
            }
            Therapy::Stopped | Therapy::SimpleContinuous { .. } => {}
        }
        if let Some(ptm) = prescription.ptm() {
            self.check_bolus(ptm.bolus, ptm.bolus_duration, "the PTM bolus")?;
            if ptm.lockout < limits.ptm_lockout_min.value || u64::from(ptm.max_per_day) > limits.ptm_per_day_max.value {
                return Err(Refusal::new(
                    RefusalCode::PtmLimitsOutOfRange,
                    format!(
                        "PTM lockout {} and {} boluses a day are outside the pump's limits (lockout at least {}, at most {} a day)",
                        ptm.lockout, ptm.max_per_day, limits.ptm_lockout_min.value, limits.ptm_per_day_max.value
                    ),
                ));
            }
            let bolus_rate = Self::bolus_rate_at(ptm.bolus, ptm.bolus_duration, concentration);
            let highest = rates.all_rates().into_iter().max().unwrap_or(VolumeRate::ZERO);
            let combined = VolumeRate::nl_per_day(highest.as_nl_per_day().saturating_add(bolus_rate.as_nl_per_day()));
            self.check_rate(combined, "a PTM bolus on top of the therapy")?;
        }
        Ok(())
    }

    fn bolus_rate(&self, dose: Mass, duration: Duration) -> VolumeRate {
        Self::bolus_rate_at(dose, duration, self.concentration)
    }

    fn bolus_rate_at(dose: Mass, duration: Duration, concentration: Concentration) -> VolumeRate {
        let dose_rate = dose.rate_over(duration, Rounding::Up).unwrap_or(itb_dose::DoseRate::ZERO);
        volume_rate(dose_rate, concentration)
    }

    pub(super) fn set_program(&mut self, prescription: Prescription, by: Actor) {
        self.program_number += 1;
        let rates = Rates::compile(&prescription, self.concentration);
        if let Some(bridge) = &mut self.bridge {
            bridge.old_rates = Rates::compile(&prescription, bridge.old_concentration);
            bridge.old_max_rate = bridge.old_rates.max_rate();
        }
        let totals = prescription.daily_totals();
        let previous = self.program.as_ref().map(|p| p.prescription.daily_totals());
        let max_day_ng = totals.max.as_ng();
        let previous_max_day_ng = previous.as_ref().map_or(0, |t| t.max.as_ng());
        let worst_case_day_ng = totals.max_with_ptm.as_ng();
        let raised = prescription.raises(self.program.as_ref().map(|p| &p.prescription));
        let previous_worst_case_day_ng = previous.as_ref().map_or(0, |t| t.max_with_ptm.as_ng());
        let mode = prescription.therapy().mode();
        if self.history.len() == THERAPY_HISTORY_MAX {
            self.history.pop_front();
        }
        self.history.push_back(HistoryEntry {
            number: self.program_number,
            at: self.now,
            prescription: prescription.clone(),
        });
        self.program = Some(self.compiled(prescription, rates));
        self.record_change(Event::TherapyProgrammed {
            program: self.program_number,
            mode,
            max_day_ng,
            previous_max_day_ng,
            worst_case_day_ng,
            previous_worst_case_day_ng,
            raised,
            by,
        });
    }

    pub(super) fn compiled(&self, prescription: Prescription, rates: Rates) -> Program {
        let max_rate = rates.max_rate();
        let ptm_rate = prescription.ptm().map_or(VolumeRate::ZERO, |p| self.bolus_rate(p.bolus, p.bolus_duration));
        Program { prescription, rates, max_rate, ptm_rate }
    }

    // ---- refill and boluses -------------------------------------------------------------------

    /// The refill's first step, as measured: the firmware believes the reservoir empty (it was
    /// emptied) and sounds the alarms it would for an empty reservoir until the refill.
    fn record_withdrawal(&mut self, withdrawn: Volume) -> Reply {
        let expected = self.reservoir;
        self.reservoir = Volume::ZERO;
        self.remainder = 0;
        self.awaiting_refill = true;
        self.withdrawal = Some(Withdrawal { withdrawn, expected, at: self.now });
        self.record_change(Event::ReservoirWithdrawn {
            withdrawn_nl: withdrawn.as_nl(),
            expected_nl: expected.as_nl(),
        });
        self.check_reservoir_alarms();
        Reply::WithdrawalRecorded { expected, withdrawn }
    }

    fn refill(&mut self, volume: Volume, concentration: Concentration, bridge: bool) -> Result<Reply, Refusal> {
        self.check_concentration(concentration)?;
        self.check_fill(volume)?;
        let old_concentration = self.concentration;
        let expected = self.reservoir;
        if let Some(program) = &self.program {
            self.check_program_at(&program.prescription, concentration)?;
        }
        self.reservoir = volume;
        self.filled_at = self.now;
        self.awaiting_refill = false;
        self.withdrawal = None;
        self.concentration = concentration;
        self.remainder = 0;
        let changed = old_concentration != concentration;
        let bridging = changed && bridge && self.program.is_some();
        if let Some(program) = self.program.take() {
            let rates = Rates::compile(&program.prescription, concentration);
            if bridging {
                let old_rates = Rates::compile(&program.prescription, old_concentration);
                let old_max_rate = old_rates.max_rate();
                self.bridge = Some(Bridge { remaining: self.dead_volume, old_rates, old_max_rate, old_concentration });
            } else if changed {
                self.bridge = None;
            }
            self.program = Some(self.compiled(program.prescription, rates));
        }
        self.record_change(Event::Refilled {
            expected_nl: expected.as_nl(),
            filled_nl: volume.as_nl(),
            concentration_ng_per_ml: concentration.as_ng_per_ml(),
        });
        if bridging {
            self.record(Event::BridgeStarted { volume_nl: self.dead_volume.as_nl() });
        }
        for kind in [AlarmKind::LowReservoir, AlarmKind::EmptyReservoir] {
            if self.alarms.clear(kind) {
                self.record(Event::AlarmCleared(kind));
            }
        }
        self.check_reservoir_alarms();
        Ok(Reply::Refilled { expected_withdrawal: expected, bridging })
    }

    fn deliverable(&self) -> Result<(), Refusal> {
        if self.halt.is_some() {
            return Err(Refusal::new(
                RefusalCode::PumpHalted,
                "the pump stopped after a fault; program it to start again",
            ));
        }
        if self.reservoir.is_zero() {
            return Err(Refusal::new(RefusalCode::ReservoirEmpty, "the reservoir is empty: refill it"));
        }
        if self.override_bolus.is_some() || self.ptm.is_some() {
            return Err(Refusal::new(RefusalCode::BolusRunning, "a bolus is running; wait until it ends"));
        }
        Ok(())
    }

    fn single_bolus(&mut self, dose: Mass, duration: Duration, then_stop: bool) -> Result<Reply, Refusal> {
        self.deliverable()?;
        self.check_bolus(dose, duration, "the bolus")?;
        let rate = self.bolus_rate(dose, duration);
        self.check_rate(rate, "the bolus")?;
        let ends_at = self.now.plus(duration);
        self.override_bolus = Some(Override {
            kind: OverrideKind::SingleBolus { then_stop: then_stop || self.stopped },
            rate,
            ends_at: Some(ends_at),
            remaining: Volume::ZERO,
        });
        self.stopped = false;
        self.record_change(Event::SingleBolusStarted { dose_ng: dose.as_ng() });
        Ok(Reply::BolusStarted { dose, ends_at })
    }

    fn priming(&mut self, catheter_only: bool) -> Result<Reply, Refusal> {
        self.deliverable()?;
        let volume = if catheter_only { self.catheter_volume } else { self.dead_volume };
        let rate = self.profile.rates.priming.value;
        let duration = rate.time_to_move(volume, Rounding::Up).unwrap_or(Duration::ZERO);
        self.override_bolus = Some(Override { kind: OverrideKind::Priming, rate, ends_at: None, remaining: volume });
        self.record_change(Event::PrimingStarted { volume_nl: volume.as_nl() });
        let dose = self.concentration.mass_in(volume, Rounding::Down).unwrap_or(Mass::ZERO);
        Ok(Reply::BolusStarted { dose, ends_at: self.now.plus(duration) })
    }

    /// PTM boluses started in the 24 hours before now, and when the next is allowed.
    pub(super) fn ptm_window(&self) -> (Option<Instant>, u32) {
        let Some(limits) = self.program.as_ref().and_then(|p| p.prescription.ptm().copied()) else {
            return (None, 0);
        };
        let day_ago = self.now.minus(Duration::DAY);
        // Starts are in time order, so those within the last 24 hours are a suffix.
        let count = self.ptm_starts.iter().rev().take_while(|at| **at > day_ago).count();
        let by_lockout = self.ptm_starts.back().map(|last| last.plus(limits.lockout)).filter(|at| *at > self.now);
        let max = limits.max_per_day as usize;
        let by_count = (count >= max)
            .then(|| self.ptm_starts.get(self.ptm_starts.len() - max).map(|at| at.plus(Duration::DAY)))
            .flatten();
        let count = count as u32;
        let next = match (by_lockout, by_count) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        (next, count)
    }

    fn ptm_bolus(&mut self) -> Result<Reply, Refusal> {
        let Some(limits) = self.program.as_ref().and_then(|p| p.prescription.ptm().copied()) else {
            return Err(Refusal::new(RefusalCode::PtmNotProgrammed, "no PTM boluses are prescribed for this pump"));
        };
        if self.stopped {
            return Err(Refusal::new(RefusalCode::PumpStopped, "the pump is stopped; contact the ITB team"));
        }
        // The lockout (which outlasts the bolus) comes first: it tells the patient when to try.
        let (next, count) = self.ptm_window();
        if let Some(next) = next {
            let (code, why) = if count >= limits.max_per_day {
                (
                    RefusalCode::PtmDailyMax,
                    format!("all {} boluses allowed in 24 hours have been taken", limits.max_per_day),
                )
            } else {
                (RefusalCode::PtmLockout, format!("the last bolus was less than {} ago", limits.lockout))
            };
            return Err(Refusal { code, message: why, retry_at: Some(next) });
        }
        self.deliverable()?;
        // Compiled with the program: the same rate every bolus.
        let rate = self.program.as_ref().map_or(VolumeRate::ZERO, |p| p.ptm_rate);
        let ends_at = self.now.plus(limits.bolus_duration);
        self.ptm = Some(PtmRunning { rate, ends_at });
        if self.ptm_starts.len() == PTM_STARTS_MAX {
            self.ptm_starts.pop_front();
        }
        self.ptm_starts.push_back(self.now);
        self.record_change(Event::PtmBolus { dose_ng: limits.bolus.as_ng() });
        Ok(Reply::BolusStarted { dose: limits.bolus, ends_at })
    }
}

impl InjectInto {
    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            InjectInto::Reservoir => "reservoir",
            InjectInto::Pocket => "pocket",
        }
    }
}
