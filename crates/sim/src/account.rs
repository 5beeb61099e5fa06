//! Drug reaching the CSF against the prescription: what the clinician meant the patient to get
//! ([`Intent`]), integrated exactly over each local day, beside what reached the CSF that day,
//! and the time with nothing reaching the CSF while a therapy is prescribed.
//!
//! # What "prescribed" means here
//! The therapy the pump was programmed with, on the pump's own clock (a flex pattern per weekday
//! follows the pump's weekday), plus the boluses a clinician gave and the PTM boluses the pump
//! granted, each spread over its duration. Nothing is prescribed while the clinician has stopped
//! the pump, and nothing during a priming bolus (it fills the catheter; it is not a dose). A
//! pump halted by a fault, at end of service, or with an empty reservoir still has its therapy
//! prescribed: that is the harm to show.
//!
//! # Bounds
//! One [`DayFigures`] per local day of the run (at most [`crate::scenario::SPAN_MAX`] plus a day),
//! and at most [`PERIODS_MAX`] periods without drug listed (all of them counted).

use itb_dose::prescription::{FlexSchedule, Therapy};
use itb_dose::quantity::MS_PER_DAY;
use itb_dose::{Duration, Mass, Prescription};
use itb_pump::{Instant, PumpTime};

/// A day is above or below the prescribed dose when the drug reaching the CSF differs from it
/// by more than this many percent. **[model]**: day-to-day delivery of a working pump is well
/// within it (the labelled accuracy is 14.5 % over a refill interval, most of it systematic),
/// and the errors the simulator is for (a skipped bridge bolus: a quarter of the dose; a 40 %
/// leak; a wrong concentration: a quarter or four times) are far outside it. Correct it here.
pub const DOSE_TOLERANCE_PERCENT: u64 = 10;

/// Most periods without drug listed; the rest are counted in the total.
pub const PERIODS_MAX: usize = 100;

/// A step shorter than this that moved nothing tells nothing (the pump moves less than a
/// nanolitre in a second at its least rate): it keeps the state of the step before it.
const SHORTEST_TELLING_STEP: Duration = Duration::minutes(1);

/// Drug spread evenly over `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct Spread {
    dose: Mass,
    start: Instant,
    end: Instant,
}

impl Spread {
    /// The part of the dose within `[a, b)`, in nanogram-milliseconds per day (the unit the
    /// therapy integrates in).
    fn integral(&self, a: Instant, b: Instant) -> u128 {
        let from = a.max(self.start);
        let to = b.min(self.end);
        let length = self.end.since(self.start).as_ms();
        if to <= from || length == 0 {
            return 0;
        }
        let overlap = u128::from(to.since(from).as_ms());
        u128::from(self.dose.as_ng()) * overlap * u128::from(MS_PER_DAY) / u128::from(length)
    }
}

#[derive(Debug, Clone, Copy)]
enum Bolus {
    /// A clinician's single bolus: its dose replaces the therapy while it runs.
    Single { spread: Spread, then_stop: bool },
    /// A priming bolus: nothing is meant to reach the patient while it fills the catheter.
    Priming,
}

/// What the clinician meant the patient to receive, now.
#[derive(Debug, Clone)]
pub(crate) struct Intent {
    prescription: Prescription,
    /// The prescription's therapy delivers something (its largest day is not zero).
    therapy_has_drug: bool,
    /// Pump clock minus true time, ms.
    clock_offset_ms: i64,
    stopped: bool,
    bolus: Option<Bolus>,
    ptm: Option<Spread>,
}

impl Intent {
    pub(crate) fn new(prescription: Prescription, clock_offset_ms: i64) -> Self {
        let therapy_has_drug = !prescription.daily_totals().max.is_zero();
        Self { prescription, therapy_has_drug, clock_offset_ms, stopped: false, bolus: None, ptm: None }
    }

    // ---- changes (the caller accrues up to now first) -------------------------------------

    pub(crate) fn programmed(&mut self, prescription: Prescription) {
        self.therapy_has_drug = !prescription.daily_totals().max.is_zero();
        self.prescription = prescription;
        self.stopped = false;
    }
    pub(crate) fn stopped(&mut self) {
        self.stopped = true;
        self.bolus = None;
        self.ptm = None;
    }
    pub(crate) fn resumed(&mut self) {
        self.stopped = false;
    }
    pub(crate) fn single_bolus(&mut self, dose: Mass, start: Instant, end: Instant, then_stop: bool) {
        let then_stop = then_stop || self.stopped;
        self.stopped = false;
        self.bolus = Some(Bolus::Single { spread: Spread { dose, start, end }, then_stop });
    }
    pub(crate) fn priming(&mut self) {
        self.bolus = Some(Bolus::Priming);
    }
    pub(crate) fn ptm_bolus(&mut self, dose: Mass, start: Instant, end: Instant) {
        self.ptm = Some(Spread { dose, start, end });
    }
    /// A single or priming bolus ended.
    pub(crate) fn bolus_ended(&mut self) {
        if let Some(Bolus::Single { then_stop: true, .. }) = self.bolus {
            self.stopped = true;
        }
        self.bolus = None;
    }
    /// A fault halted the pump or it reached end of service: boluses end, the therapy stays
    /// prescribed.
    pub(crate) fn interrupted(&mut self) {
        self.bolus = None;
        self.ptm = None;
    }
    pub(crate) fn clock_set(&mut self, reading: PumpTime, at: Instant) {
        self.clock_offset_ms = reading.as_ms().saturating_sub(at.as_ms());
    }

    // ---- reading ------------------------------------------------------------------------------

    /// True while drug is meant to reach the patient: a therapy with a non-zero daily dose (or
    /// a clinician's bolus) and the pump neither stopped by the clinician nor priming.
    pub(crate) fn drug_prescribed(&self) -> bool {
        match self.bolus {
            Some(Bolus::Priming) => false,
            Some(Bolus::Single { spread, .. }) => !spread.dose.is_zero(),
            None => !self.stopped && self.therapy_has_drug,
        }
    }

    /// The drug prescribed over `[a, b)`, nanograms (rounded down), if nothing changes within.
    pub(crate) fn mass(&self, a: Instant, b: Instant) -> u64 {
        if b <= a {
            return 0;
        }
        let base = match self.bolus {
            Some(Bolus::Priming) => 0,
            Some(Bolus::Single { spread, .. }) => spread.integral(a, b),
            None if self.stopped => 0,
            None => {
                let from = a.as_ms().saturating_add(self.clock_offset_ms);
                let to = b.as_ms().saturating_add(self.clock_offset_ms);
                therapy_integral(self.prescription.therapy(), from, to)
            }
        };
        let ptm = self.ptm.map_or(0, |spread| spread.integral(a, b));
        u64::try_from((base + ptm) / u128::from(MS_PER_DAY)).unwrap_or(u64::MAX)
    }
}

/// The integral of a therapy's dose rate over pump-clock milliseconds `[from, to)`, in
/// nanogram-milliseconds per day: exact, to be divided by a day once.
pub(crate) fn therapy_integral(therapy: &Therapy, from: i64, to: i64) -> u128 {
    if to <= from {
        return 0;
    }
    let span = (to - from) as u128;
    let day = MS_PER_DAY as i64;
    match therapy {
        Therapy::Stopped => 0,
        Therapy::SimpleContinuous { rate } => u128::from(rate.as_ng_per_day()) * span,
        Therapy::Flex(schedule) => {
            let mut total = 0u128;
            let mut t = from;
            while t < to {
                let day_start = t.div_euclid(day) * day;
                let day_end = (day_start + day).min(to);
                let pattern = match schedule {
                    FlexSchedule::Daily(pattern) => pattern,
                    FlexSchedule::Weekly(days) => &days[PumpTime::from_ms(day_start).weekday()],
                };
                for (step, length) in pattern.steps_with_length() {
                    let step_start = day_start + step.start.since_midnight().as_ms() as i64;
                    let step_end = step_start + length.as_ms() as i64;
                    let overlap = step_end.min(day_end) - step_start.max(t);
                    if overlap > 0 {
                        total += u128::from(step.rate.as_ng_per_day()) * overlap as u128;
                    }
                }
                t = day_end;
            }
            total
        }
        Therapy::PeriodicBolus(periodic) => {
            // The interval divides the day, so the boluses repeat every interval on the pump's
            // clock, from the first bolus's time of day.
            let interval = periodic.interval.as_ms() as i64;
            let length = (periodic.bolus_duration.as_ms() as i64).min(interval);
            let first = periodic.first_at.since_midnight().as_ms() as i64;
            let in_bolus_before = |x: i64| -> i128 {
                let since = x - first;
                let periods = since.div_euclid(interval.max(1));
                let phase = since.rem_euclid(interval.max(1));
                i128::from(periods) * i128::from(length) + i128::from(phase.min(length))
            };
            let bolus_ms = u128::try_from(in_bolus_before(to) - in_bolus_before(from)).unwrap_or(0);
            let basal = u128::from(periodic.basal.as_ng_per_day()) * span;
            let boluses =
                u128::from(periodic.bolus.as_ng()) * bolus_ms * u128::from(MS_PER_DAY) / (length.max(1) as u128);
            basal + boluses
        }
    }
}

/// How a day's drug compares with the prescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within [`DOSE_TOLERANCE_PERCENT`] of the prescribed dose.
    AsPrescribed,
    /// More than the tolerance below it.
    Below,
    /// More than the tolerance above it (or any drug when none was prescribed).
    Above,
}

impl Verdict {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::AsPrescribed => "as_prescribed",
            Verdict::Below => "below",
            Verdict::Above => "above",
        }
    }
}

/// One local day of the run (the first and last may be part days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayFigures {
    /// The date in the scenario's zone.
    pub date: jiff::civil::Date,
    /// The part of the day within the run.
    pub covered: Duration,
    /// Drug that reached the CSF.
    pub to_csf: Mass,
    /// Drug prescribed.
    pub prescribed: Mass,
    /// Time with nothing reaching the CSF while drug was prescribed.
    pub without_drug: Duration,
}

impl DayFigures {
    /// The day against the prescription, with [`DOSE_TOLERANCE_PERCENT`].
    pub fn verdict(&self) -> Verdict {
        let csf = u128::from(self.to_csf.as_ng()) * 100;
        let prescribed = u128::from(self.prescribed.as_ng());
        if prescribed == 0 {
            return if self.to_csf.is_zero() { Verdict::AsPrescribed } else { Verdict::Above };
        }
        if csf < prescribed * u128::from(100 - DOSE_TOLERANCE_PERCENT) {
            Verdict::Below
        } else if csf > prescribed * u128::from(100 + DOSE_TOLERANCE_PERCENT) {
            Verdict::Above
        } else {
            Verdict::AsPrescribed
        }
    }
}

/// A stretch of time with nothing reaching the CSF while drug was prescribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// From.
    pub start: Instant,
    /// Until.
    pub end: Instant,
}

/// Per-day figures and periods without drug, built step by step.
#[derive(Debug)]
pub(crate) struct Days {
    zone: jiff::tz::TimeZone,
    days: Vec<DayFigures>,
    /// Where the current day ends (the next local midnight).
    day_end: Instant,
    /// Prescribed drug is accrued up to here.
    accrued_to: Instant,
    periods: Vec<Period>,
    periods_omitted: u64,
    /// The last step ended with nothing reaching the CSF while drug was prescribed.
    dry: bool,
    without_drug: Duration,
}

/// The local midnight after `at` in `zone` (a day later if the zone has none).
fn next_midnight(at: Instant, zone: &jiff::tz::TimeZone) -> Instant {
    let local = zone.to_datetime(at.to_timestamp());
    local
        .date()
        .tomorrow()
        .ok()
        .and_then(|date| zone.to_ambiguous_timestamp(date.to_datetime(jiff::civil::Time::midnight())).compatible().ok())
        .map(Instant::from_timestamp)
        .filter(|midnight| *midnight > at)
        .unwrap_or(at.plus(Duration::DAY))
}

impl Days {
    pub(crate) fn new(start: Instant, zone: jiff::tz::TimeZone) -> Self {
        let date = zone.to_datetime(start.to_timestamp()).date();
        let day_end = next_midnight(start, &zone);
        Self {
            days: vec![DayFigures {
                date,
                covered: Duration::ZERO,
                to_csf: Mass::ZERO,
                prescribed: Mass::ZERO,
                without_drug: Duration::ZERO,
            }],
            zone,
            day_end,
            accrued_to: start,
            periods: Vec::new(),
            periods_omitted: 0,
            dry: false,
            without_drug: Duration::ZERO,
        }
    }

    /// The next day boundary: no step may cross it.
    pub(crate) fn day_end(&self) -> Instant {
        self.day_end
    }

    fn today(&mut self) -> &mut DayFigures {
        // The vector always holds the current day.
        let last = self.days.len() - 1;
        &mut self.days[last]
    }

    /// Adds the drug prescribed from the last accrual to `now` (within the current day) under
    /// `intent`. Call before the intent changes and at the end of each day.
    pub(crate) fn accrue(&mut self, now: Instant, intent: &Intent) {
        if now <= self.accrued_to {
            return;
        }
        let mass = intent.mass(self.accrued_to, now);
        let today = self.today();
        today.prescribed = Mass::ng(today.prescribed.as_ng().saturating_add(mass));
        self.accrued_to = now;
    }

    /// Records the step `[from, to)` (within the current day): `to_csf` reached the CSF; `dry`
    /// is the part of the step with nothing reaching it (the runner's reckoning, at the start
    /// of the step when `dry_first`, else at its end); `drug_prescribed` held throughout.
    pub(crate) fn step(
        &mut self,
        from: Instant,
        to: Instant,
        to_csf: Mass,
        dry: Duration,
        dry_first: bool,
        drug_prescribed: bool,
    ) {
        let length = to.since(from);
        if length.is_zero() {
            return;
        }
        let today = self.today();
        today.to_csf = Mass::ng(today.to_csf.as_ng().saturating_add(to_csf.as_ng()));
        today.covered = Duration::ms(today.covered.as_ms() + length.as_ms());
        let (start, end) = if !drug_prescribed {
            (to, to)
        } else if to_csf.is_zero() {
            // Nothing at all: the whole step, unless it is too short to tell.
            if length >= SHORTEST_TELLING_STEP || self.dry { (from, to) } else { (to, to) }
        } else if dry < SHORTEST_TELLING_STEP {
            (to, to)
        } else if dry_first {
            (from, from.plus(dry.min(length)))
        } else {
            (to.minus(dry.min(length)), to)
        };
        self.dry = end == to && start < end;
        if start >= end {
            return;
        }
        let part = end.since(start);
        let today = self.today();
        today.without_drug = Duration::ms(today.without_drug.as_ms() + part.as_ms());
        self.without_drug = Duration::ms(self.without_drug.as_ms() + part.as_ms());
        let held = self.periods.len();
        match self.periods.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ if held < PERIODS_MAX => self.periods.push(Period { start, end }),
            _ => self.periods_omitted += 1,
        }
    }

    /// Closes the current day at its end (the caller has accrued to it) and opens the next.
    pub(crate) fn next_day(&mut self) {
        let start = self.day_end;
        self.day_end = next_midnight(start, &self.zone);
        self.days.push(DayFigures {
            date: self.zone.to_datetime(start.to_timestamp()).date(),
            covered: Duration::ZERO,
            to_csf: Mass::ZERO,
            prescribed: Mass::ZERO,
            without_drug: Duration::ZERO,
        });
    }

    pub(crate) fn finish(self) -> (Vec<DayFigures>, Vec<Period>, u64, Duration) {
        let mut days = self.days;
        // A run that ends exactly at midnight opened a day it never entered.
        if days.len() > 1 && days.last().is_some_and(|d| d.covered.is_zero() && d.prescribed.is_zero()) {
            days.pop();
        }
        (days, self.periods, self.periods_omitted, self.without_drug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prescription(text: &str) -> Prescription {
        itb_dose::toml::from_toml(text).expect("valid")
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn simple_continuous_integrates_by_the_millisecond() {
        let p = prescription("mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n");
        // Six hours of 400 micrograms/day: 100 micrograms.
        assert_eq!(therapy_integral(p.therapy(), 0, 6 * HOUR) / u128::from(MS_PER_DAY), 100_000);
    }

    #[test]
    fn flex_follows_its_steps_across_midnight() {
        let p = prescription(
            "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"240 micrograms/day\"\n\
             [[flex.steps]]\nstart = \"06:00\"\nrate = \"480 micrograms/day\"\n",
        );
        // 20:00 to 08:00: 4 h at 480, 6 h at 240, 2 h at 480: 80 + 60 + 40 = 180 micrograms.
        let day = MS_PER_DAY as i64;
        let ng = therapy_integral(p.therapy(), 20 * HOUR, day + 8 * HOUR) / u128::from(MS_PER_DAY);
        assert_eq!(ng, 180_000);
        // A whole day is the pattern's total.
        let whole = therapy_integral(p.therapy(), 5 * day, 6 * day) / u128::from(MS_PER_DAY);
        assert_eq!(whole, u128::from(p.daily_totals().max.as_ng()));
    }

    #[test]
    fn a_weekly_flex_pattern_differs_by_weekday() {
        let mut text = String::from("mode = \"flex\"\n");
        for (index, day) in itb_dose::prescription::WEEKDAYS.iter().enumerate() {
            let rate = if index == 6 { 700 } else { 350 };
            text.push_str(&format!("[[flex.{day}]]\nstart = \"00:00\"\nrate = \"{rate} micrograms/day\"\n"));
        }
        let p = prescription(&text);
        let day = MS_PER_DAY as i64;
        // 1970-01-04 (day 3) was a Sunday; day 4 a Monday.
        let sunday = therapy_integral(p.therapy(), 3 * day, 4 * day) / u128::from(MS_PER_DAY);
        let monday = therapy_integral(p.therapy(), 4 * day, 5 * day) / u128::from(MS_PER_DAY);
        assert_eq!((sunday, monday), (700_000, 350_000));
    }

    #[test]
    fn periodic_boluses_count_where_they_fall() {
        let p = prescription(
            "mode = \"periodic_bolus\"\n[periodic]\nbolus_dose = \"50 micrograms\"\nbolus_duration = \"1 h\"\n\
             interval = \"6 h\"\nfirst_bolus_at = \"02:00\"\nbasal = \"120 micrograms/day\"\n",
        );
        let day = MS_PER_DAY as i64;
        let whole = therapy_integral(p.therapy(), day, 2 * day) / u128::from(MS_PER_DAY);
        assert_eq!(whole, 120_000 + 4 * 50_000);
        // 02:30 to 03:00: half a bolus (25) and half an hour of basal (2.5).
        let half = therapy_integral(p.therapy(), 2 * HOUR + HOUR / 2, 3 * HOUR) / u128::from(MS_PER_DAY);
        assert_eq!(half, 27_500);
    }

    #[test]
    fn intent_stops_primes_and_boluses() {
        let p = prescription("mode = \"simple_continuous\"\ndose = \"480 micrograms/day\"\n");
        let t = |hours: i64| Instant::from_ms(hours * HOUR);
        let mut intent = Intent::new(p, 0);
        assert_eq!(intent.mass(t(0), t(1)), 20_000);
        intent.priming();
        assert!(!intent.drug_prescribed());
        assert_eq!(intent.mass(t(1), t(2)), 0);
        intent.bolus_ended();
        intent.ptm_bolus(Mass::micrograms(10), t(2), t(4));
        assert_eq!(intent.mass(t(2), t(3)), 20_000 + 5_000);
        intent.stopped();
        assert_eq!(intent.mass(t(3), t(4)), 0);
        intent.single_bolus(Mass::micrograms(50), t(4), t(5), false);
        assert_eq!(intent.mass(t(4), t(5)), 50_000);
        // A bolus given while stopped returns to stopped.
        intent.bolus_ended();
        assert!(!intent.drug_prescribed());
    }
}
