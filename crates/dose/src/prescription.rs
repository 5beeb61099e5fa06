//! Prescriptions: what the pump is told to deliver, in every mode it has.
//!
//! A [`Prescription`] cannot exist invalid: it is built only through [`Prescription::new`] (or
//! from TOML text, see [`crate::toml`]), which checks every structural rule and each field
//! against the vocabulary's limits. Device limits (the pump's own maximum rate, its minimum flex
//! step) are checked again by the pump against its profile; clinical judgement (titration
//! steps) by [`crate::calc::titrate`].

use std::fmt;

use crate::quantity::{DoseRate, Duration, Mass, TimeOfDay};

/// The vocabulary's ceilings. They catch slips of a decimal point or of a unit, not clinical
/// judgement: each is well above anything on record.
pub mod limits {
    use crate::quantity::{DoseRate, Duration, Mass};

    /// Any continuous, basal or flex-step rate: 5000 micrograms/day, more than twice the
    /// highest maintenance dose on record (2003 micrograms/day, docs/DOMAIN.md).
    pub const RATE_MAX: DoseRate = DoseRate::micrograms_per_day(5_000);
    /// A periodic or PTM bolus: 500 micrograms, five times the largest screening dose.
    pub const BOLUS_MAX: Mass = Mass::micrograms(500);
    /// Flex steps in one day (SynchroMed II: up to 13).
    pub const FLEX_STEPS_MAX: usize = 13;
    /// Shortest bolus duration.
    pub const BOLUS_DURATION_MIN: Duration = Duration::minutes(1);
    /// Shortest PTM lockout between the starts of two boluses.
    pub const PTM_LOCKOUT_MIN: Duration = Duration::minutes(15);
    /// Most PTM boluses in any 24 hours.
    pub const PTM_PER_DAY_MAX: u32 = 24;
}

/// The days of a weekly flex pattern, Monday first (ISO 8601).
pub const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// One step of a flex day: from `start` until the next step's start (or midnight), at `rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlexStep {
    /// When the step starts, on the pump's clock.
    pub start: TimeOfDay,
    /// The dose rate during the step.
    pub rate: DoseRate,
}

/// A day of flex steps that covers 00:00 to 24:00 with no gap and no overlap.
///
/// # Invariants
/// 1 to 13 steps; the first starts at 00:00; starts strictly increase; every rate is positive
/// and at most [`limits::RATE_MAX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPattern {
    steps: Vec<FlexStep>,
}

impl DayPattern {
    /// The steps, in time order.
    pub fn steps(&self) -> &[FlexStep] {
        &self.steps
    }
    /// Each step with its length.
    pub fn steps_with_length(&self) -> impl Iterator<Item = (FlexStep, Duration)> + '_ {
        self.steps.iter().enumerate().map(|(index, step)| {
            let end = self.steps.get(index + 1).map_or(TimeOfDay::MINUTES_PER_DAY, |next| next.start.minutes());
            (*step, Duration::minutes(u64::from(end - step.start.minutes())))
        })
    }
    /// The rate in force at `time`.
    pub fn rate_at(&self, time: TimeOfDay) -> DoseRate {
        self.steps.iter().rev().find(|step| step.start <= time).map_or(DoseRate::ZERO, |step| step.rate)
    }
    /// The day's total: the exact integral of the steps, rounded down once at the end.
    pub fn total(&self) -> Mass {
        let sum_ng_minutes: u128 = self
            .steps_with_length()
            .map(|(step, length)| u128::from(step.rate.as_ng_per_day()) * u128::from(length.as_ms() / 60_000))
            .sum();
        let minutes_per_day = u128::from(TimeOfDay::MINUTES_PER_DAY);
        Mass::ng(u64::try_from(sum_ng_minutes / minutes_per_day).unwrap_or(u64::MAX))
    }
}

/// A flex schedule: the same day every day, or a pattern per weekday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlexSchedule {
    /// One pattern for every day.
    Daily(DayPattern),
    /// A pattern per weekday, Monday first.
    Weekly(Box<[DayPattern; 7]>),
}

impl FlexSchedule {
    /// The patterns with their day labels, in cycle order.
    pub fn days(&self) -> Vec<(&'static str, &DayPattern)> {
        match self {
            FlexSchedule::Daily(day) => vec![("every day", day)],
            FlexSchedule::Weekly(days) => WEEKDAYS.iter().copied().zip(days.iter()).collect(),
        }
    }
}

/// Boluses of `bolus` over `bolus_duration`, every `interval` from `first_at`, over `basal`.
///
/// # Invariants
/// `interval` divides 24 hours, so every day has the same boluses at the same times;
/// `bolus_duration` is shorter than `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodicBolus {
    /// Drug in each bolus.
    pub bolus: Mass,
    /// How long each bolus takes.
    pub bolus_duration: Duration,
    /// From the start of one bolus to the start of the next.
    pub interval: Duration,
    /// The time of day of the first bolus of each day's cycle.
    pub first_at: TimeOfDay,
    /// The continuous rate beneath the boluses (zero for none).
    pub basal: DoseRate,
}

impl PeriodicBolus {
    /// Boluses in a day.
    pub fn boluses_per_day(&self) -> u64 {
        Duration::DAY.as_ms() / self.interval.as_ms()
    }
    /// The day's total: basal plus every bolus.
    pub fn total(&self) -> Mass {
        let boluses = self.bolus.as_ng().saturating_mul(self.boluses_per_day());
        Mass::ng(self.basal.as_ng_per_day().saturating_add(boluses))
    }
}

/// The limits of patient-activated boluses (the Patient Therapy Manager).
///
/// # Invariants
/// Dose positive and at most [`limits::BOLUS_MAX`]; duration at least
/// [`limits::BOLUS_DURATION_MIN`] and no longer than the lockout; lockout at least
/// [`limits::PTM_LOCKOUT_MIN`] and at most a day; 1 to [`limits::PTM_PER_DAY_MAX`] boluses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtmLimits {
    /// Drug in each bolus.
    pub bolus: Mass,
    /// How long each bolus takes.
    pub bolus_duration: Duration,
    /// Least time from the start of one bolus to the start of the next.
    pub lockout: Duration,
    /// Most boluses in any 24 hours.
    pub max_per_day: u32,
}

impl PtmLimits {
    /// Most boluses that can start within any 24 hours: the daily maximum, or fewer if the
    /// lockout allows fewer.
    pub fn boluses_possible_per_day(&self) -> u64 {
        let by_lockout = Duration::DAY.as_ms().div_ceil(self.lockout.as_ms());
        u64::from(self.max_per_day).min(by_lockout)
    }
    /// The drug if every allowed bolus is taken: the worst case a refill date must assume.
    pub fn worst_case_per_day(&self) -> Mass {
        Mass::ng(self.bolus.as_ng().saturating_mul(self.boluses_possible_per_day()))
    }
}

/// What the pump delivers on its own, without the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Therapy {
    /// Nothing is delivered.
    Stopped,
    /// One rate all day.
    SimpleContinuous {
        /// The daily dose.
        rate: DoseRate,
    },
    /// Steps through the day.
    Flex(FlexSchedule),
    /// Boluses at an interval over an optional basal rate.
    PeriodicBolus(PeriodicBolus),
}

/// The mode a therapy runs in, without its settings: small enough for a pump's log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Mode {
    /// Nothing is delivered.
    Stopped,
    /// One rate all day.
    SimpleContinuous,
    /// Steps through the day.
    Flex,
    /// Boluses at an interval over an optional basal rate.
    PeriodicBolus,
}

impl Mode {
    /// Every mode, in order.
    pub const ALL: [Mode; 4] = [Mode::Stopped, Mode::SimpleContinuous, Mode::Flex, Mode::PeriodicBolus];

    /// The mode's name as written in files and on the wire: `simple_continuous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Stopped => "stopped",
            Mode::SimpleContinuous => "simple_continuous",
            Mode::Flex => "flex",
            Mode::PeriodicBolus => "periodic_bolus",
        }
    }
    /// The mode in words, for people: `simple continuous`.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Stopped => "stopped",
            Mode::SimpleContinuous => "simple continuous",
            Mode::Flex => "flex",
            Mode::PeriodicBolus => "periodic bolus",
        }
    }
}

impl Therapy {
    /// The therapy's mode.
    pub fn mode(&self) -> Mode {
        match self {
            Therapy::Stopped => Mode::Stopped,
            Therapy::SimpleContinuous { .. } => Mode::SimpleContinuous,
            Therapy::Flex(_) => Mode::Flex,
            Therapy::PeriodicBolus(_) => Mode::PeriodicBolus,
        }
    }
    /// The mode's name as written in files and on screens (`self.mode().as_str()`).
    pub fn mode_name(&self) -> &'static str {
        self.mode().as_str()
    }
}

/// A complete, valid prescription: a therapy and, if the patient has a PTM, its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prescription {
    therapy: Therapy,
    ptm: Option<PtmLimits>,
}

/// The drug of one day of a prescription's cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotal {
    /// `"every day"` or a weekday.
    pub day: &'static str,
    /// What the therapy delivers that day, without PTM boluses.
    pub total: Mass,
}

/// The daily totals of a prescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyTotals {
    /// Each day of the cycle.
    pub days: Vec<DayTotal>,
    /// The largest day, without PTM.
    pub max: Mass,
    /// The mean day, rounded down, without PTM.
    pub mean: Mass,
    /// Every allowed PTM bolus taken.
    pub ptm_worst_case: Mass,
    /// The largest day with every allowed PTM bolus: the figure refill dates assume.
    pub max_with_ptm: Mass,
}

/// Why a prescription is not valid. Each names the field and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrescriptionError {
    /// A field is outside its range.
    #[error("{field} is {value}; it must be {rule}")]
    OutOfRange {
        /// The field, as named in files (`ptm.bolus_dose`, `flex.steps[2].rate`).
        field: String,
        /// The value given.
        value: String,
        /// The rule it breaks, with the limit.
        rule: String,
    },
    /// A flex day with no steps or too many.
    #[error("{day} has {count} flex steps; a day has 1 to {max} steps")]
    StepCount {
        /// The day.
        day: String,
        /// Steps given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A flex day that does not start at midnight.
    #[error(
        "{day}: the first flex step starts at {start}; it must start at 00:00 so that the steps cover the whole day"
    )]
    FirstStepNotAtMidnight {
        /// The day.
        day: String,
        /// Its first start.
        start: TimeOfDay,
    },
    /// Steps out of order or at the same time.
    #[error(
        "{day}: flex step {step} starts at {start}, not after step {previous_step} at {previous}; steps must be in time order with no two at the same time"
    )]
    StepsOutOfOrder {
        /// The day.
        day: String,
        /// 1-based step number.
        step: usize,
        /// Its start.
        start: TimeOfDay,
        /// The step before.
        previous_step: usize,
        /// Its start.
        previous: TimeOfDay,
    },
    /// A periodic interval that does not divide the day.
    #[error(
        "periodic.interval is {interval}; it must divide 24 hours exactly (for example 3 h, 4 h, 6 h, 8 h, 12 h or 24 h) so that every day has the same boluses"
    )]
    IntervalNotDividingDay {
        /// The interval given.
        interval: Duration,
    },
}

fn out_of_range(field: &str, value: impl fmt::Display, rule: impl Into<String>) -> PrescriptionError {
    PrescriptionError::OutOfRange { field: field.to_owned(), value: value.to_string(), rule: rule.into() }
}

fn check_rate(field: &str, rate: DoseRate) -> Result<(), PrescriptionError> {
    if rate.is_zero() || rate > limits::RATE_MAX {
        return Err(out_of_range(
            field,
            rate,
            format!("more than 0 and at most {} (for no delivery use mode \"stopped\")", limits::RATE_MAX),
        ));
    }
    Ok(())
}

fn check_bolus(field: &str, bolus: Mass) -> Result<(), PrescriptionError> {
    if bolus.is_zero() || bolus > limits::BOLUS_MAX {
        return Err(out_of_range(field, bolus, format!("more than 0 and at most {}", limits::BOLUS_MAX)));
    }
    Ok(())
}

impl DayPattern {
    /// Checks and builds a day; `day` names it in errors (`"flex"`, `"flex.monday"`).
    pub fn new(day: &str, steps: Vec<FlexStep>) -> Result<Self, PrescriptionError> {
        if steps.is_empty() || steps.len() > limits::FLEX_STEPS_MAX {
            return Err(PrescriptionError::StepCount {
                day: day.to_owned(),
                count: steps.len(),
                max: limits::FLEX_STEPS_MAX,
            });
        }
        if steps[0].start != TimeOfDay::MIDNIGHT {
            return Err(PrescriptionError::FirstStepNotAtMidnight { day: day.to_owned(), start: steps[0].start });
        }
        for (index, step) in steps.iter().enumerate() {
            check_rate(&format!("{day}.steps[{}].rate", index + 1), step.rate)?;
            if index > 0 && step.start <= steps[index - 1].start {
                return Err(PrescriptionError::StepsOutOfOrder {
                    day: day.to_owned(),
                    step: index + 1,
                    start: step.start,
                    previous_step: index,
                    previous: steps[index - 1].start,
                });
            }
        }
        Ok(Self { steps })
    }
}

impl PeriodicBolus {
    /// Checks a periodic bolus.
    pub fn check(self) -> Result<Self, PrescriptionError> {
        check_bolus("periodic.bolus_dose", self.bolus)?;
        if self.interval < Duration::minutes(10) || self.interval > Duration::DAY {
            return Err(out_of_range("periodic.interval", self.interval, "from 10 min to 24 h"));
        }
        if !Duration::DAY.as_ms().is_multiple_of(self.interval.as_ms()) {
            return Err(PrescriptionError::IntervalNotDividingDay { interval: self.interval });
        }
        if self.bolus_duration < limits::BOLUS_DURATION_MIN || self.bolus_duration >= self.interval {
            return Err(out_of_range(
                "periodic.bolus_duration",
                self.bolus_duration,
                format!("at least {} and shorter than the interval ({})", limits::BOLUS_DURATION_MIN, self.interval),
            ));
        }
        if !self.basal.is_zero() {
            check_rate("periodic.basal", self.basal)?;
        }
        Ok(self)
    }
}

impl PtmLimits {
    /// Checks PTM limits.
    pub fn check(self) -> Result<Self, PrescriptionError> {
        check_bolus("ptm.bolus_dose", self.bolus)?;
        if self.lockout < limits::PTM_LOCKOUT_MIN || self.lockout > Duration::DAY {
            return Err(out_of_range("ptm.lockout", self.lockout, format!("from {} to 24 h", limits::PTM_LOCKOUT_MIN)));
        }
        if self.bolus_duration < limits::BOLUS_DURATION_MIN || self.bolus_duration > self.lockout {
            return Err(out_of_range(
                "ptm.bolus_duration",
                self.bolus_duration,
                format!("at least {} and no longer than the lockout ({})", limits::BOLUS_DURATION_MIN, self.lockout),
            ));
        }
        if self.max_per_day == 0 || self.max_per_day > limits::PTM_PER_DAY_MAX {
            return Err(out_of_range(
                "ptm.max_boluses_per_day",
                self.max_per_day,
                format!("from 1 to {}", limits::PTM_PER_DAY_MAX),
            ));
        }
        Ok(self)
    }
}

impl Prescription {
    /// Checks and builds a prescription.
    pub fn new(therapy: Therapy, ptm: Option<PtmLimits>) -> Result<Self, PrescriptionError> {
        match &therapy {
            Therapy::Stopped => {}
            Therapy::SimpleContinuous { rate } => check_rate("dose", *rate)?,
            // Day patterns and periodic boluses are only built checked; check again to keep
            // the promise even for values built by hand.
            Therapy::Flex(schedule) => {
                for (day, pattern) in schedule.days() {
                    let name = if day == "every day" { "flex".to_owned() } else { format!("flex.{day}") };
                    DayPattern::new(&name, pattern.steps.clone())?;
                }
            }
            Therapy::PeriodicBolus(periodic) => {
                periodic.check()?;
            }
        }
        let ptm = ptm.map(PtmLimits::check).transpose()?;
        Ok(Self { therapy, ptm })
    }

    /// Simple continuous at `rate`, without PTM.
    pub fn simple_continuous(rate: DoseRate) -> Result<Self, PrescriptionError> {
        Self::new(Therapy::SimpleContinuous { rate }, None)
    }

    /// The therapy.
    pub fn therapy(&self) -> &Therapy {
        &self.therapy
    }
    /// The PTM limits, if the patient has a PTM.
    pub fn ptm(&self) -> Option<&PtmLimits> {
        self.ptm.as_ref()
    }

    /// Daily totals per day of the cycle, the largest and the mean day, and the worst case
    /// with every allowed PTM bolus.
    pub fn daily_totals(&self) -> DailyTotals {
        let days: Vec<DayTotal> = match &self.therapy {
            Therapy::Stopped => vec![DayTotal { day: "every day", total: Mass::ZERO }],
            Therapy::SimpleContinuous { rate } => vec![DayTotal { day: "every day", total: rate.per_day() }],
            Therapy::Flex(schedule) => {
                schedule.days().into_iter().map(|(day, pattern)| DayTotal { day, total: pattern.total() }).collect()
            }
            Therapy::PeriodicBolus(periodic) => vec![DayTotal { day: "every day", total: periodic.total() }],
        };
        let max = days.iter().map(|d| d.total).max().unwrap_or(Mass::ZERO);
        let sum: u128 = days.iter().map(|d| u128::from(d.total.as_ng())).sum();
        let mean = Mass::ng(u64::try_from(sum / days.len().max(1) as u128).unwrap_or(u64::MAX));
        let ptm_worst_case = self.ptm.map_or(Mass::ZERO, |ptm| ptm.worst_case_per_day());
        let max_with_ptm = max.checked_add(ptm_worst_case).unwrap_or(Mass::ng(u64::MAX));
        DailyTotals { days, max, mean, ptm_worst_case, max_with_ptm }
    }

    /// The drug of each day of the week, Monday first, without PTM boluses (a daily pattern is
    /// the same every day).
    pub fn week_totals(&self) -> [Mass; 7] {
        let totals = self.daily_totals();
        let mut week = [Mass::ZERO; 7];
        for (index, day) in week.iter_mut().enumerate() {
            *day = totals
                .days
                .iter()
                .find(|d| d.day == WEEKDAYS[index])
                .or_else(|| totals.days.first())
                .map_or(Mass::ZERO, |d| d.total);
        }
        week
    }

    /// True when `self`, replacing `before`, gives more drug on some day of the week, or more
    /// with every PTM bolus taken: an increase, for the rule of one increase in 24 hours.
    pub fn raises(&self, before: Option<&Prescription>) -> bool {
        let after_week = self.week_totals();
        let before_week = before.map_or([Mass::ZERO; 7], Prescription::week_totals);
        let worst_before = before.map_or(Mass::ZERO, |p| p.daily_totals().max_with_ptm);
        after_week.iter().zip(before_week).any(|(after, before)| *after > before)
            || self.daily_totals().max_with_ptm > worst_before
    }

    /// The rate that a refill date must assume: the largest day with every PTM bolus taken.
    pub fn worst_case_rate(&self) -> DoseRate {
        DoseRate::ng_per_day(self.daily_totals().max_with_ptm.as_ng())
    }
}

impl fmt::Display for Prescription {
    /// A one-line summary for lists and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.therapy {
            Therapy::Stopped => write!(f, "stopped (no delivery)")?,
            Therapy::SimpleContinuous { rate } => write!(f, "simple continuous {rate}")?,
            Therapy::Flex(schedule) => {
                let totals = self.daily_totals();
                let kind = match schedule {
                    FlexSchedule::Daily(day) => format!("{} steps a day", day.steps.len()),
                    FlexSchedule::Weekly(_) => "a pattern per weekday".to_owned(),
                };
                write!(f, "flex, {kind}, {} a day at most", totals.max)?;
            }
            Therapy::PeriodicBolus(p) => {
                write!(
                    f,
                    "periodic bolus {} over {} every {} from {}",
                    p.bolus, p.bolus_duration, p.interval, p.first_at
                )?;
                if !p.basal.is_zero() {
                    write!(f, " over a basal {}", p.basal)?;
                }
            }
        }
        if let Some(ptm) = &self.ptm {
            write!(
                f,
                "; PTM {} over {}, lockout {}, at most {} a day",
                ptm.bolus, ptm.bolus_duration, ptm.lockout, ptm.max_per_day
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(h: u16, m: u16, micrograms_per_day: u64) -> FlexStep {
        FlexStep { start: TimeOfDay::hm(h, m).expect("valid"), rate: DoseRate::micrograms_per_day(micrograms_per_day) }
    }

    #[test]
    fn modes_have_their_file_names() {
        let names: Vec<&str> = Mode::ALL.iter().map(|mode| mode.as_str()).collect();
        assert_eq!(names, ["stopped", "simple_continuous", "flex", "periodic_bolus"]);
        for mode in Mode::ALL {
            let text = match mode {
                Mode::Stopped => "mode = \"stopped\"\n".to_owned(),
                Mode::SimpleContinuous => "mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n".to_owned(),
                Mode::Flex => {
                    "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"300 micrograms/day\"\n".to_owned()
                }
                Mode::PeriodicBolus => "mode = \"periodic_bolus\"\n[periodic]\nbolus_dose = \"50 micrograms\"\n\
                     bolus_duration = \"1 h\"\ninterval = \"6 h\"\nfirst_bolus_at = \"02:00\"\n"
                    .to_owned(),
            };
            let prescription = crate::toml::from_toml(&text).expect("valid");
            assert_eq!(prescription.therapy().mode(), mode);
            assert_eq!(prescription.therapy().mode_name(), mode.as_str());
        }
        assert_eq!(Mode::SimpleContinuous.describe(), "simple continuous");
    }

    #[test]
    fn flex_day_total_is_the_integral() {
        // 300/day for 7 h, 500/day for 15 h, 300/day for 2 h:
        // (300*7 + 500*15 + 300*2) / 24 = 10200 / 24 = 425 micrograms.
        let day = DayPattern::new("flex", vec![step(0, 0, 300), step(7, 0, 500), step(22, 0, 300)]).expect("valid");
        assert_eq!(day.total(), Mass::micrograms(425));
        assert_eq!(day.rate_at(TimeOfDay::hm(6, 59).expect("valid")), DoseRate::micrograms_per_day(300));
        assert_eq!(day.rate_at(TimeOfDay::hm(7, 0).expect("valid")), DoseRate::micrograms_per_day(500));
    }

    #[test]
    fn flex_days_must_cover_the_day_in_order() {
        let late = DayPattern::new("flex", vec![step(1, 0, 300)]);
        assert!(matches!(late, Err(PrescriptionError::FirstStepNotAtMidnight { .. })));
        let unordered = DayPattern::new("flex", vec![step(0, 0, 300), step(8, 0, 400), step(6, 0, 500)]);
        assert!(matches!(unordered, Err(PrescriptionError::StepsOutOfOrder { step: 3, .. })));
        let same = DayPattern::new("flex", vec![step(0, 0, 300), step(0, 0, 400)]);
        assert!(matches!(same, Err(PrescriptionError::StepsOutOfOrder { step: 2, .. })));
        let many = (0..14).map(|h| step(h, 0, 100)).collect();
        assert!(matches!(DayPattern::new("flex", many), Err(PrescriptionError::StepCount { count: 14, .. })));
        let zero = DayPattern::new("flex", vec![step(0, 0, 0)]);
        assert!(matches!(zero, Err(PrescriptionError::OutOfRange { ref field, .. }) if field == "flex.steps[1].rate"));
    }

    #[test]
    fn periodic_bolus_totals_and_rules() {
        let periodic = PeriodicBolus {
            bolus: Mass::micrograms(50),
            bolus_duration: Duration::hours(1),
            interval: Duration::hours(6),
            first_at: TimeOfDay::hm(2, 0).expect("valid"),
            basal: DoseRate::micrograms_per_day(100),
        };
        let prescription = Prescription::new(Therapy::PeriodicBolus(periodic), None).expect("valid");
        assert_eq!(prescription.daily_totals().max, Mass::micrograms(300));
        let uneven = PeriodicBolus { interval: Duration::hours(7), ..periodic };
        assert!(matches!(uneven.check(), Err(PrescriptionError::IntervalNotDividingDay { .. })));
        let too_long = PeriodicBolus { bolus_duration: Duration::hours(6), ..periodic };
        assert!(
            matches!(too_long.check(), Err(PrescriptionError::OutOfRange { ref field, .. }) if field == "periodic.bolus_duration")
        );
    }

    #[test]
    fn ptm_worst_case_counts_every_allowed_bolus() {
        let ptm = PtmLimits {
            bolus: Mass::micrograms(25),
            bolus_duration: Duration::minutes(10),
            lockout: Duration::hours(3),
            max_per_day: 4,
        };
        let prescription =
            Prescription::new(Therapy::SimpleContinuous { rate: DoseRate::micrograms_per_day(400) }, Some(ptm))
                .expect("valid");
        let totals = prescription.daily_totals();
        assert_eq!(totals.ptm_worst_case, Mass::micrograms(100));
        assert_eq!(totals.max_with_ptm, Mass::micrograms(500));
        // A 8-hour lockout allows only 3 boluses in any 24 hours, even if 4 are permitted.
        let slow = PtmLimits { lockout: Duration::hours(8), ..ptm };
        assert_eq!(slow.worst_case_per_day(), Mass::micrograms(75));
        // A 7-hour lockout: boluses at 0, 7, 14 and 21 h fall in one 24-hour window.
        let seven = PtmLimits { lockout: Duration::hours(7), ..ptm };
        assert_eq!(seven.boluses_possible_per_day(), 4);
    }

    #[test]
    fn weekly_totals_give_max_and_mean() {
        let mut days: Vec<DayPattern> =
            (0..7).map(|_| DayPattern::new("flex.x", vec![step(0, 0, 400)]).expect("valid")).collect();
        days[5] = DayPattern::new("flex.saturday", vec![step(0, 0, 400), step(12, 0, 600)]).expect("valid");
        let weekly: [DayPattern; 7] = days.try_into().expect("seven days");
        let prescription =
            Prescription::new(Therapy::Flex(FlexSchedule::Weekly(Box::new(weekly))), None).expect("valid");
        let totals = prescription.daily_totals();
        assert_eq!(totals.days.len(), 7);
        assert_eq!(totals.days[5].day, "saturday");
        assert_eq!(totals.max, Mass::micrograms(500));
        // (6 * 400 + 500) / 7 = 414.285714... micrograms, rounded down to the nanogram.
        assert_eq!(totals.mean, Mass::ng(414_285));
    }
}
