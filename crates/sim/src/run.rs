//! Runs a scenario: the pump, event by event, with the scenario's actions between.

use serde::Serialize;

use itb_dose::{Mass, Volume};
use itb_pump::world::{Fluid, InjectInto};
use itb_pump::{Command, Event, Implant, Instant, Pump, PumpTime, Reply, Request, WorldAction};

use crate::scenario::{Action, Scenario};

/// Most samples kept for plots; beyond this they are thinned evenly.
pub const SAMPLES_MAX: usize = 4_000;
/// Most timeline entries kept; beyond this the rest are counted, not listed.
pub const TIMELINE_MAX: usize = 20_000;

/// One point of the plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// True time, ms since the epoch.
    pub at_ms: i64,
    /// The firmware's reservoir estimate, nanolitres.
    pub reservoir_estimate_nl: u64,
    /// The real reservoir, nanolitres.
    pub reservoir_true_nl: u64,
    /// The commanded rate, nanolitres per day.
    pub rate_nl_per_day: u64,
    /// The rate drug really leaves the reservoir, nanolitres per day.
    pub true_rate_nl_per_day: u64,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// True instant, RFC 3339 UTC.
    pub at: String,
    /// The pump's clock.
    pub pump_time: String,
    /// A short kind (`alarm`, `refill`, `refused`, ...).
    pub kind: String,
    /// What happened.
    pub text: String,
    #[serde(skip)]
    at_instant: Instant,
}

/// A refill's comparison of what the pump expected with what was withdrawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefillCheck {
    /// When.
    pub at: String,
    /// The firmware's estimate, mL.
    pub expected_ml: f64,
    /// Withdrawn, mL.
    pub withdrawn_ml: f64,
    /// Expected minus withdrawn, mL (positive: less came out than expected).
    pub gap_ml: f64,
    /// The gap is above the profile's warning level.
    pub warning: bool,
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// When.
    pub at: String,
    /// The command.
    pub command: String,
    /// The refusal code.
    pub code: String,
    /// Why, for a person.
    pub reason: String,
}

/// An alarm raised during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmRecord {
    /// Which.
    pub alarm: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Critical or not.
    pub critical: bool,
}

/// What the run shows at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The scenario's name.
    pub scenario: String,
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339.
    pub end: String,
    /// Volume the pump commanded, mL.
    pub commanded_ml: f64,
    /// Drug that reached the cerebrospinal fluid, micrograms.
    pub to_csf_micrograms: f64,
    /// Drug that went into tissue (leaks, pocket fills), micrograms.
    pub to_tissue_micrograms: f64,
    /// Drug withdrawn at refills, micrograms.
    pub withdrawn_micrograms: f64,
    /// Drug in the tubing and catheter at the end, micrograms.
    pub in_catheter_micrograms: f64,
    /// The firmware's reservoir estimate at the end, mL.
    pub reservoir_estimate_ml: f64,
    /// The real reservoir at the end, mL.
    pub reservoir_true_ml: f64,
    /// The pump's state at the end.
    pub state: String,
    /// Estimated battery life left at the end, days.
    pub battery_remaining_days: f64,
    /// ERI reached.
    pub elective_replacement: bool,
    /// Alarms raised, in order.
    pub alarms: Vec<AlarmRecord>,
    /// Refills with their expected-against-withdrawn check.
    pub refills: Vec<RefillCheck>,
    /// Commands refused, with their reasons.
    pub refused: Vec<Refused>,
    /// Alarm tones sounded.
    pub tones: u64,
    /// Events the pump processed.
    pub events: u64,
    /// Mass and volume balance held to the unit throughout.
    pub mass_balance_holds: bool,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The summary.
    pub summary: Summary,
    /// The timeline.
    pub timeline: Vec<TimelineEntry>,
    /// Timeline entries not listed because of the bound.
    pub timeline_omitted: u64,
    /// Points for plots.
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

fn ml(volume: Volume) -> f64 {
    volume.as_nl() as f64 / 1_000_000.0
}

fn micrograms(mass: Mass) -> f64 {
    mass.as_ng() as f64 / 1_000.0
}

/// Why a scenario could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pump could not be implanted: {0}")]
pub struct RunError(pub String);

struct Runner {
    pump: Pump,
    timeline: Vec<TimelineEntry>,
    omitted: u64,
    samples: Vec<Sample>,
    log_seen: u64,
    refills: Vec<RefillCheck>,
    refused: Vec<Refused>,
    alarms: Vec<AlarmRecord>,
    balance_held: bool,
    next_request: u64,
    ledger_at_last_refill: itb_pump::world::Ledger,
}

impl Runner {
    fn note(&mut self, at: Instant, kind: &str, text: String) {
        if self.timeline.len() >= TIMELINE_MAX {
            self.omitted += 1;
            return;
        }
        let pump_time = format!("{}", self.pump.status().pump_time);
        self.timeline.push(TimelineEntry {
            at: at.to_string(),
            pump_time,
            kind: kind.to_owned(),
            text,
            at_instant: at,
        });
    }

    fn sample(&mut self) {
        let status = self.pump.status();
        self.samples.push(Sample {
            at_ms: self.pump.now().as_ms(),
            reservoir_estimate_nl: status.reservoir.as_nl(),
            reservoir_true_nl: self.pump.world().reservoir().volume.as_nl(),
            rate_nl_per_day: status.rate.as_nl_per_day(),
            true_rate_nl_per_day: self.pump.world().true_rate(status.rate, self.pump.now()).as_nl_per_day(),
        });
        self.balance_held &= self.pump.world().mass_balance_holds();
    }

    /// Moves new log entries into the timeline.
    fn collect_log(&mut self) {
        let now = self.pump.now();
        let entries = self.pump.log().read_from(self.log_seen + 1, usize::MAX);
        for entry in entries {
            self.log_seen = entry.seq;
            if let Event::AlarmRaised(kind) = entry.event {
                self.alarms.push(AlarmRecord {
                    alarm: kind.as_str().to_owned(),
                    at: now.to_string(),
                    critical: kind.severity() == itb_pump::Severity::Critical,
                });
            }
            if let Some((kind, text)) = describe(&entry.event) {
                self.note(now, kind, text);
            }
        }
    }

    fn run_until(&mut self, t: Instant) {
        while let Some(next) = self.pump.next_event_at().filter(|n| *n <= t) {
            self.pump.advance_to(next);
            self.collect_log();
            self.sample();
            if self.pump.next_event_at() == Some(next) {
                break;
            }
        }
        self.pump.advance_to(t);
        self.collect_log();
        self.sample();
    }

    fn command(&mut self, at: Instant, command: Command) -> Option<Reply> {
        self.next_request += 1;
        let name = command.name();
        let result = self.pump.handle(at, Request::simulator(Some(self.next_request), command));
        self.collect_log();
        match result {
            Ok(reply) => Some(reply),
            Err(refusal) => {
                let mut reason = refusal.message.clone();
                if let Some(retry) = refusal.retry_at {
                    reason.push_str(&format!("; next allowed at {retry}"));
                }
                self.refused.push(Refused {
                    at: at.to_string(),
                    command: name.to_owned(),
                    code: refusal.code.as_str().to_owned(),
                    reason: reason.clone(),
                });
                self.note(at, "refused", format!("{name} refused ({}): {reason}", refusal.code.as_str()));
                None
            }
        }
    }

    fn refill(&mut self, at: Instant, action: &Action) {
        let Action::Refill { volume, concentration, true_concentration, bridge, pocket_fill } = *action else { return };
        self.pump.advance_to(at);
        self.collect_log();
        let expected = self.pump.reservoir_estimate();
        let withdrawn = self.pump.act(at, WorldAction::Withdraw).unwrap_or_default();
        let gap = expected.as_nl() as i128 - withdrawn.volume.as_nl() as i128;
        let limit = self.pump.profile().reservoir.refill_gap_warning.value;
        let warning = gap.unsigned_abs() > u128::from(limit.as_nl());
        self.refills.push(RefillCheck {
            at: at.to_string(),
            expected_ml: ml(expected),
            withdrawn_ml: ml(withdrawn.volume),
            gap_ml: gap as f64 / 1_000_000.0,
            warning,
        });
        let direction = if gap > 0 { "less" } else { "more" };
        let mut text = format!("withdrew {} (the pump expected {})", withdrawn.volume, expected);
        if warning {
            text.push_str(&format!(
                ": WARNING {} mL {direction} than expected, above {limit}: suspect over-infusion, a leak, a pocket fill or occlusion",
                itb_dose::decimal::format(gap.unsigned_abs() as u64, 6)
            ));
        }
        self.note(at, if warning { "refill_warning" } else { "refill" }, text);
        let ledger = self.pump.world().ledger();
        let since = &self.ledger_at_last_refill;
        let csf = ledger.to_csf.mass.saturating_sub(since.to_csf.mass);
        let tissue = ledger.to_tissue.mass.saturating_sub(since.to_tissue.mass);
        self.note(
            at,
            "truth",
            format!("truth since the last refill: {csf} reached the CSF, {tissue} went into tissue"),
        );
        self.ledger_at_last_refill = ledger;
        let into = if pocket_fill { InjectInto::Pocket } else { InjectInto::Reservoir };
        self.pump.act(at, WorldAction::Inject { volume, concentration: true_concentration, into });
        if pocket_fill {
            let drug = Fluid::of(volume, true_concentration);
            self.note(
                at,
                "pocket_fill",
                format!("POCKET FILL: {} ({}) injected under the skin, not into the reservoir", volume, drug.mass),
            );
        }
        if true_concentration != concentration {
            self.note(
                at,
                "wrong_concentration",
                format!(
                    "WRONG CONCENTRATION: the syringe held {true_concentration}, the pump was told {concentration}"
                ),
            );
        }
        self.command(at, Command::Refill { volume, concentration, bridge });
    }

    fn apply(&mut self, at: Instant, action: &Action, note: Option<&str>) {
        if let Some(note) = note {
            self.note(at, "note", note.to_owned());
        }
        let command = match action {
            Action::Refill { .. } => return self.refill(at, action),
            Action::Program(prescription) => Command::Program { prescription: prescription.clone() },
            Action::Ptm => Command::PtmBolus,
            Action::SingleBolus { dose, duration, then_stop } => {
                Command::SingleBolus { dose: *dose, duration: *duration, then_stop: *then_stop }
            }
            Action::Prime { catheter_only } => Command::PrimingBolus { catheter_only: *catheter_only },
            Action::SetClock(reading) => Command::SetClock { reading: *reading },
            Action::SetAlarmThreshold(threshold) => Command::SetAlarmThreshold { threshold: *threshold },
            Action::ClearAlarm(kind) => Command::ClearAlarm { kind: *kind },
            Action::Stop => Command::Stop,
            Action::Resume => Command::Resume,
            Action::Interrogate => {
                let status = self.pump.status();
                let alarms = status.alarms.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>().join(", ");
                let motor = if status.motor_stalled { ", MOTOR STALLED" } else { "" };
                self.note(
                    at,
                    "interrogate",
                    format!(
                        "status: {}{motor}, reservoir estimate {}, rate {}, battery about {} days left, alarms: {}",
                        status.state.as_str(),
                        status.reservoir,
                        status.rate,
                        status.battery_remaining.as_ms() / 86_400_000,
                        if alarms.is_empty() { "none".to_owned() } else { alarms }
                    ),
                );
                return;
            }
            Action::Fault(fault) => {
                self.note(at, "fault", fault_text(fault));
                self.pump.act(at, *fault);
                self.collect_log();
                return;
            }
        };
        self.command(at, command);
    }
}

/// A fault as timeline text.
fn fault_text(fault: &WorldAction) -> String {
    match fault {
        WorldAction::MriScan { stall_for } => format!("MRI scan: the motor stalls for {stall_for}"),
        WorldAction::Catheter(state) => format!("catheter now {state:?}"),
        WorldAction::ReplaceCatheter => "catheter replaced (empty)".to_owned(),
        WorldAction::RateError { ppm } => format!("delivery error now {ppm} ppm"),
        WorldAction::BatteryDefect { capacity_loss_ppm } => {
            format!("battery defect: {capacity_loss_ppm} ppm of capacity lost")
        }
        WorldAction::LowBatteryReset => "battery voltage dip".to_owned(),
        WorldAction::MemoryError { critical } => format!("memory fault (critical: {critical})"),
        WorldAction::Withdraw => "reservoir withdrawn".to_owned(),
        WorldAction::Inject { volume, concentration, into } => {
            format!("{volume} of {concentration} injected into the {}", into.as_str())
        }
    }
}

/// A log event as timeline text; refusals are noted by the runner with their full reasons.
fn describe(event: &Event) -> Option<(&'static str, String)> {
    match event {
        Event::PtmRefused { .. } | Event::CommandRefused { .. } => None,
        other => Some((other.category(), other.describe())),
    }
}

fn thin(samples: Vec<Sample>) -> Vec<Sample> {
    if samples.len() <= SAMPLES_MAX {
        return samples;
    }
    let stride = samples.len().div_ceil(SAMPLES_MAX);
    let last = samples.last().copied();
    let mut kept: Vec<Sample> = samples.into_iter().step_by(stride).collect();
    if let Some(last) = last
        && kept.last() != Some(&last)
    {
        kept.push(last);
    }
    kept
}

/// Runs a scenario to its end.
pub fn run(scenario: &Scenario) -> Result<RunReport, RunError> {
    let clock = PumpTime::from_civil(scenario.zone.to_datetime(scenario.start.to_timestamp()));
    let pump = Pump::implant(Implant {
        profile: scenario.profile.clone(),
        at: scenario.start,
        clock,
        catheter_cm: scenario.catheter_cm,
        rate_error_ppm: scenario.rate_error_ppm,
        fill: scenario.fill,
        concentration: scenario.concentration,
        prescription: scenario.prescription.clone(),
    })
    .map_err(|refusal| RunError(refusal.to_string()))?;
    let mut runner = Runner {
        pump,
        timeline: Vec::new(),
        omitted: 0,
        samples: Vec::new(),
        log_seen: 0,
        refills: Vec::new(),
        refused: Vec::new(),
        alarms: Vec::new(),
        balance_held: true,
        next_request: 0,
        ledger_at_last_refill: itb_pump::world::Ledger::default(),
    };
    runner.collect_log();
    runner.sample();
    if scenario.prime {
        runner.command(scenario.start, Command::PrimingBolus { catheter_only: false });
    }
    for timed in &scenario.actions {
        if timed.at > scenario.end {
            break;
        }
        runner.run_until(timed.at);
        runner.apply(timed.at, &timed.action, timed.note.as_deref());
        runner.sample();
    }
    runner.run_until(scenario.end);
    let pump = &runner.pump;
    let status = pump.status();
    let world = pump.world();
    let ledger = world.ledger();
    runner.timeline.sort_by_key(|e| e.at_instant);
    let summary = Summary {
        scenario: scenario.name.clone(),
        start: scenario.start.to_string(),
        end: scenario.end.to_string(),
        commanded_ml: ml(pump.counters().commanded),
        to_csf_micrograms: micrograms(ledger.to_csf.mass),
        to_tissue_micrograms: micrograms(ledger.to_tissue.mass),
        withdrawn_micrograms: micrograms(ledger.withdrawn.mass),
        in_catheter_micrograms: micrograms(world.fluid_path().mass),
        reservoir_estimate_ml: ml(status.reservoir),
        reservoir_true_ml: ml(world.reservoir().volume),
        state: status.state.as_str().to_owned(),
        battery_remaining_days: (status.battery_remaining.as_ms() / 86_400) as f64 / 1_000.0,
        elective_replacement: status.elective_replacement,
        alarms: runner.alarms.clone(),
        refills: runner.refills.clone(),
        refused: runner.refused.clone(),
        tones: pump.counters().tones,
        events: pump.counters().events,
        mass_balance_holds: runner.balance_held && world.mass_balance_holds(),
    };
    Ok(RunReport {
        summary,
        timeline: runner.timeline,
        timeline_omitted: runner.omitted,
        samples: thin(runner.samples),
    })
}
