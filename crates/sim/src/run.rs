//! Runs a scenario: the pump, event by event, with the scenario's actions between.
//!
//! # Cost
//! The runner steps to each pump event (`next_event_at`), each local midnight and each action,
//! reads only the log entries written since the last step ([`itb_pump::EventLog::since`]) and
//! never builds the pump's status except to answer an `interrogate` action: its cost per event
//! is a small constant on top of the library's (docs/BENCHMARKS.md).
//!
//! # Bounds
//! Samples: at most three per time bucket ([`SAMPLE_BUCKETS`] over the run); timeline:
//! [`TIMELINE_MAX`] entries, the rest counted; alarms: [`ALARMS_MAX`], the rest counted; per-day
//! figures: one per local day (at most 12 years); refills and refusals: at most one per action.
//!
//! # Exactness
//! Every quantity inside is an integer (nanograms, nanolitres, milliseconds); `f64` appears only
//! when the report is written as JSON.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

use itb_dose::text;
use itb_dose::{Duration, Mass, Volume};
use itb_pump::world::{Fluid, InjectInto, Ledger, TissueByCause, TissueCause};
use itb_pump::{AlarmKind, Command, Event, Implant, Instant, LogEntry, Pump, PumpTime, Reply, Request, WorldAction};

use crate::account::{DOSE_TOLERANCE_PERCENT, DayFigures, Days, Intent, Period, Verdict};
use crate::scenario::{Action, Scenario};
use crate::words;

/// Time buckets the samples are kept in: at most three samples each (the first, the one with
/// the highest rate, the last), whatever the length of the run.
pub const SAMPLE_BUCKETS: usize = 1_500;
/// Most samples kept.
pub const SAMPLES_MAX: usize = 3 * (SAMPLE_BUCKETS + 1);
/// Most timeline entries kept; beyond this the rest are counted, not listed.
pub const TIMELINE_MAX: usize = 20_000;
/// Most alarms listed; beyond this the rest are counted.
pub const ALARMS_MAX: usize = 1_000;

/// One point of the plots: the state at `at_ms`, and the rates over the step `[from_ms, at_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Start of the step, true time, ms since the epoch.
    pub from_ms: i64,
    /// End of the step, true time, ms since the epoch.
    pub at_ms: i64,
    /// The firmware's reservoir estimate at `at_ms`, nanolitres.
    pub reservoir_estimate_nl: u64,
    /// The real reservoir at `at_ms`, nanolitres.
    pub reservoir_true_nl: u64,
    /// The commanded rate over the step, nanolitres per day.
    pub rate_nl_per_day: u64,
    /// The rate drug really left the reservoir over the step, nanolitres per day.
    pub true_rate_nl_per_day: u64,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// True instant.
    pub at: Instant,
    /// The pump's clock then.
    pub pump_time: PumpTime,
    /// A short kind, a code name (`alarm`, `refill_warning`, `refused`, ...).
    pub kind: &'static str,
    /// What happened, in words.
    pub text: String,
}

/// A refill's comparison of what the pump expected with what was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefillCheck {
    /// When.
    pub at: Instant,
    /// The firmware's estimate.
    pub expected: Volume,
    /// Withdrawn.
    pub withdrawn: Volume,
    /// The gap is above the profile's warning level.
    pub warning: bool,
}

impl RefillCheck {
    /// Expected minus withdrawn, nanolitres (positive: less came out than expected).
    pub fn gap_nl(&self) -> i128 {
        i128::from(self.expected.as_nl()) - i128::from(self.withdrawn.as_nl())
    }
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// When.
    pub at: Instant,
    /// The command's code name (`ptm_bolus`).
    pub command: &'static str,
    /// The refusal's code name (`ptm_lockout`).
    pub code: &'static str,
    /// Why, for a person.
    pub reason: String,
}

/// An alarm raised during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmRecord {
    /// Which.
    pub kind: AlarmKind,
    /// When.
    pub at: Instant,
}

impl AlarmRecord {
    /// Critical (two-tone) or not.
    pub fn critical(&self) -> bool {
        self.kind.severity() == itb_pump::Severity::Critical
    }
}

/// Where the drug went, in mass and volume, so that a reader can add it up:
/// `injected into the reservoir + injected elsewhere = in the reservoir + in the tubing and
/// catheter + reached the CSF + into tissue + withdrawn`, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassBalance {
    /// Injected into the reservoir (implant fill and refills).
    pub into_reservoir: Fluid,
    /// Injected elsewhere: pocket fills, and what overflowed the reservoir.
    pub injected_elsewhere: Fluid,
    /// In the reservoir at the end.
    pub in_reservoir: Fluid,
    /// In the pump tubing and catheter at the end.
    pub in_tubing_and_catheter: Fluid,
    /// Reached the cerebrospinal fluid.
    pub to_csf: Fluid,
    /// Went into tissue; [`MassBalance::tissue`] by cause.
    pub to_tissue: Fluid,
    /// Into tissue by cause; adds up to `to_tissue`.
    pub tissue: TissueByCause,
    /// Withdrawn from the reservoir at refills.
    pub withdrawn: Fluid,
}

fn sum(fluids: &[Fluid]) -> (u128, u128) {
    fluids
        .iter()
        .fold((0, 0), |(mass, volume), f| (mass + u128::from(f.mass.as_ng()), volume + u128::from(f.volume.as_nl())))
}

impl MassBalance {
    fn of(ledger: &Ledger, reservoir: Fluid, path: Fluid) -> Self {
        Self {
            into_reservoir: ledger.into_reservoir,
            injected_elsewhere: ledger.into_pocket,
            in_reservoir: reservoir,
            in_tubing_and_catheter: path,
            to_csf: ledger.to_csf,
            to_tissue: ledger.to_tissue,
            tissue: ledger.tissue,
            withdrawn: ledger.withdrawn,
        }
    }
    /// Drug and volume that came in: (nanograms, nanolitres).
    pub fn inflow(&self) -> (u128, u128) {
        sum(&[self.into_reservoir, self.injected_elsewhere])
    }
    /// Drug and volume accounted for: (nanograms, nanolitres).
    pub fn accounted(&self) -> (u128, u128) {
        sum(&[self.in_reservoir, self.in_tubing_and_catheter, self.to_csf, self.to_tissue, self.withdrawn])
    }
    /// In equals out to the nanogram and nanolitre, and the causes add up to the tissue total.
    pub fn holds(&self) -> bool {
        self.inflow() == self.accounted() && self.tissue.total() == self.to_tissue
    }
}

/// What the run shows at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The scenario's name.
    pub scenario: String,
    /// Start.
    pub start: Instant,
    /// End.
    pub end: Instant,
    /// Volume the pump commanded (its own count).
    pub commanded: Volume,
    /// The firmware's reservoir estimate at the end.
    pub reservoir_estimate: Volume,
    /// The pump's state at the end, a code name (`therapy`, `end_of_service`).
    pub state: &'static str,
    /// Estimated battery life left at the end.
    pub battery_remaining: Duration,
    /// ERI reached.
    pub elective_replacement: bool,
    /// Where the drug went.
    pub mass_balance: MassBalance,
    /// Drug prescribed over the run ([`crate::account`]).
    pub prescribed: Mass,
    /// Time with nothing reaching the CSF while drug was prescribed.
    pub time_without_drug: Duration,
    /// Those times (at most [`crate::account::PERIODS_MAX`]).
    pub periods_without_drug: Vec<Period>,
    /// Periods without drug not listed.
    pub periods_without_drug_omitted: u64,
    /// Days with more than [`DOSE_TOLERANCE_PERCENT`] less drug reaching the CSF than prescribed.
    pub days_below_prescribed: u64,
    /// Days with more than [`DOSE_TOLERANCE_PERCENT`] more.
    pub days_above_prescribed: u64,
    /// Alarms raised, in order (at most [`ALARMS_MAX`]).
    pub alarms: Vec<AlarmRecord>,
    /// Alarms raised but not listed.
    pub alarms_omitted: u64,
    /// Refills with their expected-against-withdrawn check.
    pub refills: Vec<RefillCheck>,
    /// Commands refused, with their reasons.
    pub refused: Vec<Refused>,
    /// Alarm tones sounded.
    pub tones: u64,
    /// Events the pump processed.
    pub events: u64,
    /// Mass and volume balance held to the unit after every step.
    pub mass_balance_holds: bool,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The summary.
    pub summary: Summary,
    /// The timeline.
    pub timeline: Vec<TimelineEntry>,
    /// Timeline entries not listed because of the bound.
    pub timeline_omitted: u64,
    /// Drug reaching the CSF against the prescription, per local day.
    pub csf_per_day: Vec<DayFigures>,
    /// Points for plots (not in the JSON).
    pub samples: Vec<Sample>,
}

/// Why a scenario could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pump could not be implanted: {0}")]
pub struct RunError(pub String);

// ---- sampling -----------------------------------------------------------------------------------

/// Keeps at most three samples per time bucket: the first, the highest rate, the last.
#[derive(Debug)]
struct Sampler {
    start_ms: i64,
    bucket_ms: i64,
    bucket: i64,
    kept: [Option<Sample>; 3],
    samples: Vec<Sample>,
}

impl Sampler {
    fn new(start: Instant, end: Instant) -> Self {
        let span = end.as_ms().saturating_sub(start.as_ms()).max(1);
        Self {
            start_ms: start.as_ms(),
            bucket_ms: (span / SAMPLE_BUCKETS as i64).max(1),
            bucket: 0,
            kept: [None; 3],
            samples: Vec::with_capacity(SAMPLES_MAX.min(1_024)),
        }
    }
    fn push(&mut self, sample: Sample) {
        let bucket = (sample.at_ms - self.start_ms) / self.bucket_ms;
        if bucket != self.bucket {
            self.flush();
            self.bucket = bucket;
        }
        let rate = |s: &Sample| s.rate_nl_per_day.max(s.true_rate_nl_per_day);
        match &mut self.kept {
            [first @ None, _, _] => *first = Some(sample),
            [Some(_), peak, last] => {
                if peak.is_none_or(|p| rate(&sample) > rate(&p)) {
                    *peak = Some(sample);
                }
                *last = Some(sample);
            }
        }
    }
    fn flush(&mut self) {
        let [first, peak, last] = std::mem::take(&mut self.kept);
        for sample in [first, peak, last].into_iter().flatten() {
            if self.samples.last() != Some(&sample) && self.samples.len() < SAMPLES_MAX {
                self.samples.push(sample);
            }
        }
    }
    fn finish(mut self) -> Vec<Sample> {
        self.flush();
        self.samples
    }
}

// ---- the runner ---------------------------------------------------------------------------------

struct Runner<'s> {
    scenario: &'s Scenario,
    pump: Pump,
    log_seen: u64,
    entries: Vec<LogEntry>,
    intent: Intent,
    days: Days,
    sampler: Sampler,
    timeline: Vec<TimelineEntry>,
    omitted: u64,
    refills: Vec<RefillCheck>,
    refused: Vec<Refused>,
    alarms: Vec<AlarmRecord>,
    alarms_omitted: u64,
    balance_held: bool,
    next_request: u64,
    /// The pump's clock minus true time, ms (changed only by the runner's `set_clock`).
    clock_offset_ms: i64,
    /// The pump is at end of service or halted by a fault: it delivers nothing until the next
    /// action, so the runner need not stop at its events (alarm tones).
    quiet: bool,
    ledger_at_last_refill: Ledger,
    // The state at the end of the last step.
    last_at: Instant,
    last_csf: Fluid,
    last_leak: Volume,
    last_path: Volume,
    last_commanded: Volume,
    last_reservoir: Volume,
    last_rates: (u64, u64),
}

/// Volume over a span as a rate per day.
fn per_day(volume: u64, span_ms: u64) -> u64 {
    scale(volume, itb_dose::quantity::MS_PER_DAY, span_ms)
}

/// `value * by / over`, rounded down, in u64 when it fits (u128 division is slow).
fn scale(value: u64, by: u64, over: u64) -> u64 {
    let over = over.max(1);
    match value.checked_mul(by) {
        Some(product) => product / over,
        None => u64::try_from(u128::from(value) * u128::from(by) / u128::from(over)).unwrap_or(u64::MAX),
    }
}

impl Runner<'_> {
    fn when(&self, at: Instant) -> String {
        text::date_time(at.to_timestamp(), &self.scenario.zone)
    }

    fn note(&mut self, at: Instant, kind: &'static str, text: impl FnOnce() -> String) {
        if self.timeline.len() >= TIMELINE_MAX {
            self.omitted += 1;
            return;
        }
        let pump_time = PumpTime::from_ms(at.as_ms().saturating_add(self.clock_offset_ms));
        self.timeline.push(TimelineEntry { at, pump_time, kind, text: text() });
    }

    /// Accounts the step from the last one to now: drug to the CSF, time without drug, a
    /// sample, the mass balance; then reads the log entries written in it.
    fn after_step(&mut self) {
        let now = self.pump.now();
        let world = self.pump.world();
        let ledger = world.ledger();
        let csf = ledger.to_csf;
        let reservoir = world.reservoir().volume;
        let commanded = self.pump.counters().commanded;
        let span = now.since(self.last_at).as_ms();
        // Within a step the commanded rate and the world's state are constant, so the part of
        // the step with drug leaving the catheter is the volume that left it over the volume
        // the motor moved at full flow: the rest is the catheter filling (at the start of the
        // step) or the real reservoir running dry (at its end).
        let exit = csf.volume.as_nl().saturating_sub(self.last_csf.volume.as_nl())
            + ledger.tissue.catheter_leak.volume.as_nl().saturating_sub(self.last_leak.as_nl());
        let factor = u64::try_from(1_000_000 + world.rate_error_ppm()).unwrap_or(0);
        let full = scale(commanded.as_nl().saturating_sub(self.last_commanded.as_nl()), factor, 1_000_000);
        let dry = if full > exit { Duration::ms(scale(span, full - exit, full)) } else { Duration::ZERO };
        let filling_first = self.last_path < world.fluid_path_capacity();
        self.days.step(
            self.last_at,
            now,
            csf.mass.saturating_sub(self.last_csf.mass),
            dry,
            filling_first,
            self.intent.drug_prescribed(),
        );
        self.last_leak = ledger.tissue.catheter_leak.volume;
        self.last_path = world.fluid_path().volume;
        if span > 0 {
            self.last_rates = (
                per_day(commanded.as_nl().saturating_sub(self.last_commanded.as_nl()), span),
                per_day(self.last_reservoir.as_nl().saturating_sub(reservoir.as_nl()), span),
            );
            self.sample();
        }
        self.balance_held &= self.pump.world().mass_balance_holds();
        let from = self.last_at;
        self.last_at = now;
        self.last_csf = csf;
        self.last_commanded = commanded;
        self.last_reservoir = reservoir;
        self.collect_log(from);
    }

    /// After an action: the world may have changed (a refill), so the next step starts here.
    fn rebase(&mut self) {
        self.collect_log(self.pump.now());
        let world = self.pump.world();
        self.balance_held &= world.mass_balance_holds();
        self.last_at = self.pump.now();
        self.last_csf = world.ledger().to_csf;
        self.last_leak = world.ledger().tissue.catheter_leak.volume;
        self.last_path = world.fluid_path().volume;
        self.last_commanded = self.pump.counters().commanded;
        self.last_reservoir = world.reservoir().volume;
        self.sample();
    }

    fn sample(&mut self) {
        let now = self.pump.now().as_ms();
        self.sampler.push(Sample {
            from_ms: self.last_at.as_ms().min(now),
            at_ms: now,
            reservoir_estimate_nl: self.pump.reservoir_estimate().as_nl(),
            reservoir_true_nl: self.pump.world().reservoir().volume.as_nl(),
            rate_nl_per_day: self.last_rates.0,
            true_rate_nl_per_day: self.last_rates.1,
        });
    }

    fn accrue(&mut self) {
        self.days.accrue(self.pump.now(), &self.intent);
    }

    /// Moves the log entries written since `from` into the timeline, the alarms and the intent.
    /// Each entry is dated by the pump's clock it carries (the offset changes only by the
    /// runner's `set_clock`), within the step.
    fn collect_log(&mut self, from: Instant) {
        let now = self.pump.now();
        self.entries.clear();
        self.entries.extend(self.pump.log().since(self.log_seen).copied());
        for index in 0..self.entries.len() {
            let entry = self.entries[index];
            self.log_seen = entry.seq;
            let at = Instant::from_ms(entry.at.as_ms().saturating_sub(self.clock_offset_ms)).clamp(from.min(now), now);
            match entry.event {
                Event::AlarmRaised(kind) => {
                    if self.alarms.len() < ALARMS_MAX {
                        self.alarms.push(AlarmRecord { kind, at });
                    } else {
                        self.alarms_omitted += 1;
                    }
                }
                Event::BolusEnded => {
                    self.days.accrue(at, &self.intent);
                    self.intent.bolus_ended();
                }
                Event::EndOfService => {
                    self.days.accrue(at, &self.intent);
                    self.intent.interrupted();
                    self.quiet = true;
                }
                _ => {}
            }
            match entry.event {
                // Refusals are noted by the runner with their full reasons.
                Event::PtmRefused { .. } | Event::CommandRefused { .. } => {}
                event => {
                    if self.timeline.len() >= TIMELINE_MAX {
                        self.omitted += 1;
                    } else {
                        let text = words::event(&event);
                        self.timeline.push(TimelineEntry { at, pump_time: entry.at, kind: event.category(), text });
                    }
                }
            }
        }
    }

    fn roll_day(&mut self) {
        self.accrue();
        self.days.next_day();
    }

    /// Runs to `t`, stopping at every pump event and local midnight on the way.
    fn run_until(&mut self, t: Instant) {
        let mut stuck = false;
        loop {
            let now = self.pump.now();
            let boundary = self.days.day_end();
            let mut target = t.min(boundary).max(now);
            // At end of service or halted by a fault, nothing the pump does until the next
            // action changes what reaches the patient: only alarm tones. Step by the day.
            if !stuck
                && !self.quiet
                && let Some(next) = self.pump.next_event_at().filter(|next| *next < target)
            {
                target = next;
            }
            self.pump.advance_to(target);
            self.after_step();
            // An event due now that processing does not clear: step past it.
            stuck = target == now && self.pump.next_event_at() == Some(now);
            if self.pump.now() >= boundary {
                self.roll_day();
            }
            if target >= t {
                break;
            }
        }
    }

    fn request(&mut self, command: Command) -> Request {
        self.next_request += 1;
        Request::simulator(Some(self.next_request), command)
    }

    fn command(&mut self, at: Instant, command: Command) -> Option<Reply> {
        let name = command.name();
        let request = self.request(command);
        let result = self.pump.handle(at, request);
        self.collect_log(at);
        match result {
            Ok(reply) => Some(reply),
            Err(refusal) => {
                let mut reason = words::sentence(&refusal.message);
                if let Some(retry) = refusal.retry_at {
                    reason.push_str(&format!("; next allowed {}", self.when(retry)));
                }
                let code = refusal.code.as_str();
                self.note(at, "refused", || {
                    format!("{} refused: {reason}", words::capitalised(&words::code_in_words(name)))
                });
                self.refused.push(Refused { at, command: name, code, reason });
                None
            }
        }
    }

    fn refill(&mut self, at: Instant, action: &Action) {
        let Action::Refill { volume, concentration, true_concentration, bridge, pocket_fill } = *action else { return };
        let expected = self.pump.reservoir_estimate();
        let withdrawn = self.pump.act(at, WorldAction::Withdraw).unwrap_or_default();
        let check = RefillCheck {
            at,
            expected,
            withdrawn: withdrawn.volume,
            warning: {
                let limit = self.pump.profile().reservoir.refill_gap_warning.value;
                (expected.as_nl().abs_diff(withdrawn.volume.as_nl())) > limit.as_nl()
            },
        };
        self.refills.push(check);
        let limit = self.pump.profile().reservoir.refill_gap_warning.value;
        self.note(at, if check.warning { "refill_warning" } else { "refill" }, || {
            let mut text =
                format!("withdrew {} (the pump expected {})", text::volume(withdrawn.volume), text::volume(expected));
            if check.warning {
                let gap = text::volume(Volume::nl(expected.as_nl().abs_diff(withdrawn.volume.as_nl())));
                let (direction, suspect) = if check.gap_nl() > 0 {
                    ("less", "over-infusion or a pocket fill at the last refill")
                } else {
                    ("more", "under-delivery: an occluded catheter or a stalled motor")
                };
                text.push_str(&format!(
                    ": WARNING {gap} {direction} than expected, above the {} warning level: suspect {suspect}",
                    text::volume(limit)
                ));
            }
            text
        });
        let ledger = self.pump.world().ledger();
        let since = self.ledger_at_last_refill;
        self.note(at, "truth", || {
            let csf = ledger.to_csf.mass.saturating_sub(since.to_csf.mass);
            let tissue = ledger.to_tissue.mass.saturating_sub(since.to_tissue.mass);
            let causes: Vec<String> = TissueCause::ALL
                .iter()
                .filter_map(|cause| {
                    let mass = ledger.tissue.get(*cause).mass.saturating_sub(since.tissue.get(*cause).mass);
                    (!mass.is_zero()).then(|| format!("{} {}", text::mass(mass), cause.describe()))
                })
                .collect();
            let causes = if causes.is_empty() { String::new() } else { format!(" ({})", causes.join(", ")) };
            format!(
                "since the last refill (the pump cannot know): {} reached the CSF, {} went into tissue{causes}",
                text::mass(csf),
                text::mass(tissue)
            )
        });
        self.ledger_at_last_refill = ledger;
        let into = if pocket_fill { InjectInto::Pocket } else { InjectInto::Reservoir };
        self.pump.act(at, WorldAction::Inject { volume, concentration: true_concentration, into });
        if pocket_fill {
            let drug = Fluid::of(volume, true_concentration);
            self.note(at, "pocket_fill", || {
                format!(
                    "POCKET FILL: {} ({}) injected under the skin, not into the reservoir",
                    text::volume(volume),
                    text::mass(drug.mass)
                )
            });
        }
        if true_concentration != concentration {
            self.note(at, "wrong_concentration", || {
                format!(
                    "WRONG CONCENTRATION: the syringe held {}, the pump was told {}",
                    text::concentration(true_concentration),
                    text::concentration(concentration)
                )
            });
        }
        self.command(at, Command::Refill { volume, concentration, bridge });
    }

    fn interrogate(&mut self, at: Instant) {
        let status = self.pump.status();
        let alarms: Vec<String> = status.alarms.iter().map(|a| words::alarm_name(a.kind).to_lowercase()).collect();
        let motor = if status.motor_stalled { ", MOTOR STALLED" } else { "" };
        let text = format!(
            "status: {}{motor}, reservoir estimate {}, rate {}, battery about {} left, alarms: {}",
            words::code_in_words(status.state.as_str()),
            text::volume(status.reservoir),
            text::volume_rate(status.rate),
            text::duration(Duration::days(status.battery_remaining.as_ms() / itb_dose::quantity::MS_PER_DAY)),
            if alarms.is_empty() { "none".to_owned() } else { alarms.join(", ") }
        );
        self.note(at, "interrogate", || text);
    }

    fn apply(&mut self, at: Instant, action: &Action, note: Option<&str>) {
        if let Some(note) = note {
            self.note(at, "note", || note.to_owned());
        }
        let command = match action {
            Action::Refill { .. } => return self.refill(at, action),
            Action::Interrogate => return self.interrogate(at),
            Action::Fault(fault) => {
                self.note(at, "fault", || words::fault(fault));
                self.pump.act(at, *fault);
                if matches!(fault, WorldAction::LowBatteryReset | WorldAction::MemoryError { critical: true }) {
                    self.accrue();
                    self.intent.interrupted();
                    self.quiet = true;
                }
                return;
            }
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
        };
        let Some(reply) = self.command(at, command) else { return };
        // What the clinician now means the patient to receive.
        self.accrue();
        let started = match reply {
            Reply::BolusStarted { dose, ends_at, .. } => Some((dose, ends_at)),
            _ => None,
        };
        match (action, started) {
            (Action::Program(prescription), _) => {
                self.intent.programmed(prescription.clone());
                self.quiet = false;
            }
            (Action::Stop, _) => self.intent.stopped(),
            (Action::Resume, _) => self.intent.resumed(),
            (Action::SingleBolus { then_stop, .. }, Some((dose, ends_at))) => {
                self.intent.single_bolus(dose, at, ends_at, *then_stop)
            }
            (Action::Prime { .. }, _) => self.intent.priming(),
            (Action::Ptm, Some((dose, ends_at))) => self.intent.ptm_bolus(dose, at, ends_at),
            (Action::SetClock(reading), _) => {
                self.clock_offset_ms = reading.as_ms().saturating_sub(at.as_ms());
                self.intent.clock_set(*reading, at);
            }
            _ => {}
        }
    }
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
    let clock_offset_ms = clock.as_ms().saturating_sub(scenario.start.as_ms());
    let mut runner = Runner {
        scenario,
        log_seen: 0,
        entries: Vec::with_capacity(16),
        intent: Intent::new(scenario.prescription.clone(), clock_offset_ms),
        days: Days::new(scenario.start, scenario.zone.clone()),
        sampler: Sampler::new(scenario.start, scenario.end),
        timeline: Vec::new(),
        omitted: 0,
        refills: Vec::new(),
        refused: Vec::new(),
        alarms: Vec::new(),
        alarms_omitted: 0,
        balance_held: true,
        next_request: 0,
        clock_offset_ms,
        quiet: false,
        ledger_at_last_refill: pump.world().ledger(),
        last_at: scenario.start,
        last_csf: Fluid::default(),
        last_leak: Volume::ZERO,
        last_path: Volume::ZERO,
        last_commanded: Volume::ZERO,
        last_reservoir: pump.world().reservoir().volume,
        last_rates: (0, 0),
        pump,
    };
    runner.rebase();
    if scenario.prime {
        runner.apply(scenario.start, &Action::Prime { catheter_only: false }, None);
        runner.rebase();
    }
    for timed in &scenario.actions {
        runner.run_until(timed.at);
        runner.apply(timed.at, &timed.action, timed.note.as_deref());
        runner.rebase();
    }
    runner.run_until(scenario.end);
    runner.accrue();
    let Runner {
        pump, timeline, omitted, days, sampler, alarms, alarms_omitted, refills, refused, balance_held, ..
    } = runner;
    let world = pump.world();
    let mass_balance = MassBalance::of(&world.ledger(), world.reservoir(), world.fluid_path());
    let (csf_per_day, periods, periods_omitted, time_without_drug) = days.finish();
    let count = |verdict| csf_per_day.iter().filter(|d| d.verdict() == verdict).count() as u64;
    let prescribed = csf_per_day.iter().fold(0u64, |sum, d| sum.saturating_add(d.prescribed.as_ng()));
    let status = pump.status();
    let summary = Summary {
        scenario: scenario.name.clone(),
        start: scenario.start,
        end: scenario.end,
        commanded: pump.counters().commanded,
        reservoir_estimate: pump.reservoir_estimate(),
        state: status.state.as_str(),
        battery_remaining: status.battery_remaining,
        elective_replacement: pump.elective_replacement(),
        mass_balance,
        prescribed: Mass::ng(prescribed),
        time_without_drug,
        periods_without_drug: periods,
        periods_without_drug_omitted: periods_omitted,
        days_below_prescribed: count(Verdict::Below),
        days_above_prescribed: count(Verdict::Above),
        alarms,
        alarms_omitted,
        refills,
        refused,
        tones: pump.counters().tones,
        events: pump.counters().events,
        mass_balance_holds: balance_held && mass_balance.holds() && world.mass_balance_holds(),
    };
    Ok(RunReport { summary, timeline, timeline_omitted: omitted, csf_per_day, samples: sampler.finish() })
}

// ---- JSON ---------------------------------------------------------------------------------------
//
// Field names carry their units; quantities are numbers with at most 6 decimals; instants are
// RFC 3339 in UTC, dates YYYY-MM-DD; code names where a machine reads.

fn micrograms(mass: Mass) -> f64 {
    mass.as_ng() as f64 / 1_000.0
}
fn ml(volume: Volume) -> f64 {
    volume.as_nl() as f64 / 1_000_000.0
}
fn hours(duration: Duration) -> f64 {
    // To a millionth of an hour, rounded once from the exact milliseconds.
    itb_dose::decimal::div_round(u128::from(duration.as_ms()) * 10, 36) as f64 / 1_000_000.0
}
fn days(duration: Duration) -> f64 {
    (duration.as_ms() / 86_400) as f64 / 1_000.0
}

impl Serialize for TimelineEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("TimelineEntry", 4)?;
        out.serialize_field("at", &self.at.to_string())?;
        let pump_time = self.pump_time.to_civil().map_or_else(|| self.pump_time.to_string(), |t| t.to_string());
        out.serialize_field("pump_time", &pump_time)?;
        out.serialize_field("kind", self.kind)?;
        out.serialize_field("text", &self.text)?;
        out.end()
    }
}

impl Serialize for RefillCheck {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("RefillCheck", 5)?;
        out.serialize_field("at", &self.at.to_string())?;
        out.serialize_field("expected_ml", &ml(self.expected))?;
        out.serialize_field("withdrawn_ml", &ml(self.withdrawn))?;
        out.serialize_field("gap_ml", &(self.gap_nl() as f64 / 1_000_000.0))?;
        out.serialize_field("warning", &self.warning)?;
        out.end()
    }
}

impl Serialize for Refused {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("Refused", 4)?;
        out.serialize_field("at", &self.at.to_string())?;
        out.serialize_field("command", self.command)?;
        out.serialize_field("code", self.code)?;
        out.serialize_field("reason", &self.reason)?;
        out.end()
    }
}

impl Serialize for AlarmRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("AlarmRecord", 3)?;
        out.serialize_field("alarm", self.kind.as_str())?;
        out.serialize_field("at", &self.at.to_string())?;
        out.serialize_field("critical", &self.critical())?;
        out.end()
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("Period", 3)?;
        out.serialize_field("start", &self.start.to_string())?;
        out.serialize_field("end", &self.end.to_string())?;
        out.serialize_field("hours", &hours(self.end.since(self.start)))?;
        out.end()
    }
}

impl Serialize for DayFigures {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("DayFigures", 6)?;
        out.serialize_field("date", &self.date.to_string())?;
        out.serialize_field("hours_in_run", &hours(self.covered))?;
        out.serialize_field("to_csf_micrograms", &micrograms(self.to_csf))?;
        out.serialize_field("prescribed_micrograms", &micrograms(self.prescribed))?;
        out.serialize_field("without_drug_hours", &hours(self.without_drug))?;
        out.serialize_field("against_prescribed", self.verdict().as_str())?;
        out.end()
    }
}

/// `{ "<name>_micrograms": .., "<name>_ml": .. }` pairs in a map.
fn fluid_fields<M: SerializeMap>(out: &mut M, name: &str, fluid: Fluid) -> Result<(), M::Error> {
    out.serialize_entry(&format!("{name}_micrograms"), &micrograms(fluid.mass))?;
    out.serialize_entry(&format!("{name}_ml"), &ml(fluid.volume))
}

struct ByCause<'a>(&'a TissueByCause);

impl Serialize for ByCause<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(2 * TissueCause::ALL.len()))?;
        for (cause, fluid) in self.0.iter() {
            fluid_fields(&mut out, cause.as_str(), fluid)?;
        }
        out.end()
    }
}

impl Serialize for MassBalance {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(None)?;
        fluid_fields(&mut out, "injected_into_reservoir", self.into_reservoir)?;
        fluid_fields(&mut out, "injected_elsewhere", self.injected_elsewhere)?;
        fluid_fields(&mut out, "in_reservoir", self.in_reservoir)?;
        fluid_fields(&mut out, "in_tubing_and_catheter", self.in_tubing_and_catheter)?;
        fluid_fields(&mut out, "to_csf", self.to_csf)?;
        fluid_fields(&mut out, "to_tissue", self.to_tissue)?;
        out.serialize_entry("to_tissue_by_cause", &ByCause(&self.tissue))?;
        fluid_fields(&mut out, "withdrawn", self.withdrawn)?;
        out.serialize_entry("balances", &self.holds())?;
        out.end()
    }
}

impl Serialize for Summary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = &self.mass_balance;
        let mut out = s.serialize_map(None)?;
        out.serialize_entry("scenario", &self.scenario)?;
        out.serialize_entry("start", &self.start.to_string())?;
        out.serialize_entry("end", &self.end.to_string())?;
        out.serialize_entry("commanded_ml", &ml(self.commanded))?;
        out.serialize_entry("to_csf_micrograms", &micrograms(b.to_csf.mass))?;
        out.serialize_entry("to_tissue_micrograms", &micrograms(b.to_tissue.mass))?;
        out.serialize_entry("withdrawn_micrograms", &micrograms(b.withdrawn.mass))?;
        out.serialize_entry("in_catheter_micrograms", &micrograms(b.in_tubing_and_catheter.mass))?;
        out.serialize_entry("reservoir_estimate_ml", &ml(self.reservoir_estimate))?;
        out.serialize_entry("reservoir_true_ml", &ml(b.in_reservoir.volume))?;
        out.serialize_entry("mass_balance", b)?;
        out.serialize_entry("prescribed_micrograms", &micrograms(self.prescribed))?;
        out.serialize_entry("time_without_drug_hours", &hours(self.time_without_drug))?;
        out.serialize_entry("periods_without_drug", &self.periods_without_drug)?;
        out.serialize_entry("periods_without_drug_omitted", &self.periods_without_drug_omitted)?;
        out.serialize_entry("days_below_prescribed", &self.days_below_prescribed)?;
        out.serialize_entry("days_above_prescribed", &self.days_above_prescribed)?;
        out.serialize_entry("dose_tolerance_percent", &DOSE_TOLERANCE_PERCENT)?;
        out.serialize_entry("state", self.state)?;
        out.serialize_entry("battery_remaining_days", &days(self.battery_remaining))?;
        out.serialize_entry("elective_replacement", &self.elective_replacement)?;
        out.serialize_entry("alarms", &self.alarms)?;
        out.serialize_entry("alarms_omitted", &self.alarms_omitted)?;
        out.serialize_entry("refills", &self.refills)?;
        out.serialize_entry("refused", &self.refused)?;
        out.serialize_entry("tones", &self.tones)?;
        out.serialize_entry("events", &self.events)?;
        out.serialize_entry("mass_balance_holds", &self.mass_balance_holds)?;
        out.end()
    }
}

impl Serialize for RunReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("RunReport", 4)?;
        out.serialize_field("summary", &self.summary)?;
        out.serialize_field("timeline", &self.timeline)?;
        out.serialize_field("timeline_omitted", &self.timeline_omitted)?;
        out.serialize_field("csf_per_day", &self.csf_per_day)?;
        out.end()
    }
}
