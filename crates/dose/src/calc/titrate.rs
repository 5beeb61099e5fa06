//! The titration check: is a proposed change of daily dose within the guideline?
//!
//! Guideline (Lioresal/Gablofen labels; Saulino et al. 2016; docs/DOMAIN.md): increase at most once
//! per 24 hours, by 10-30 % for adults of spinal origin, 5-15 % for adults of cerebral origin
//! and for patients under 18; at maintenance doses an increase of more than 20 % may be
//! excessive; reduce by 10-20 % for side effects.
//!
//! The check advises; it does not prescribe. Every verdict comes with the sentences that
//! explain it, for the screen and the audit log.

use std::fmt;

use jiff::Timestamp;

use crate::quantity::{DoseRate, Duration};

/// The origin of the spasticity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Spinal cord injury, multiple sclerosis.
    Spinal,
    /// Cerebral palsy, brain injury.
    Cerebral,
}

impl Origin {
    /// The name used on command lines and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Spinal => "spinal",
            Origin::Cerebral => "cerebral",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Age at which the adult bands apply.
pub const ADULT_AGE_YEARS: u32 = 18;
/// Least time between two increases.
pub const INCREASE_INTERVAL_MIN: Duration = Duration::hours(24);
/// Above this percentage an increase at a maintenance dose may be excessive.
pub const MAINTENANCE_INCREASE_CAUTION_PERCENT: u64 = 20;
/// Reductions for side effects: 10-20 %.
pub const REDUCTION_BAND_PERCENT: (u64, u64) = (10, 20);

/// The usual maintenance range, adult spinal origin (micrograms/day).
pub const MAINTENANCE_SPINAL: (DoseRate, DoseRate) =
    (DoseRate::micrograms_per_day(300), DoseRate::micrograms_per_day(800));
/// The usual maintenance range, adult cerebral origin.
pub const MAINTENANCE_CEREBRAL: (DoseRate, DoseRate) =
    (DoseRate::micrograms_per_day(90), DoseRate::micrograms_per_day(703));
/// The usual maintenance range, under 12 years.
pub const MAINTENANCE_UNDER_12: (DoseRate, DoseRate) =
    (DoseRate::micrograms_per_day(24), DoseRate::micrograms_per_day(1199));

/// What the check is asked.
#[derive(Debug, Clone, Copy)]
pub struct TitrationInputs {
    /// Today's daily dose.
    pub current: DoseRate,
    /// The proposed daily dose.
    pub proposed: DoseRate,
    /// The origin of the spasticity, if known. Without it an adult is held to the largest step
    /// of any band ([`LARGEST_STEP_PERCENT`]); a patient under 18 has the children's band
    /// whatever the origin.
    pub origin: Option<Origin>,
    /// Age in whole years, if known.
    pub age_years: Option<u32>,
    /// When the dose was last increased, if known.
    pub last_increase_at: Option<Timestamp>,
    /// When the change would be made.
    pub at: Timestamp,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same dose.
    NoChange,
    /// A reduction.
    Reduction,
    /// An increase within the guideline band.
    WithinGuideline,
    /// An increase above the guideline band.
    ExceedsGuideline,
    /// An increase less than 24 hours after the last one.
    TooSoon,
}

impl Verdict {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NoChange => "no_change",
            Verdict::Reduction => "reduction",
            Verdict::WithinGuideline => "within_guideline",
            Verdict::ExceedsGuideline => "exceeds_guideline",
            Verdict::TooSoon => "too_soon",
        }
    }
}

/// The result of a titration check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitrationCheck {
    /// Change in millionths of a percent, signed (`12_500_000` is +12.5 %).
    pub change_micro_percent: i64,
    /// The guideline band for an increase, in percent.
    pub band_percent: (u64, u64),
    /// The verdict.
    pub verdict: Verdict,
    /// Sentences that explain the verdict and any caution.
    pub reasons: Vec<String>,
    /// When the proposed dose is above the usual maintenance range for the patient: the top of
    /// that range.
    pub above_maintenance: Option<DoseRate>,
}

/// Why a titration check cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TitrationError {
    /// No current dose to take a percentage of.
    #[error(
        "the current daily dose is 0; a titration step is a percentage of a running dose (for a first dose, use the screening calculation)"
    )]
    NoCurrentDose,
    /// The last increase is after the change.
    #[error("the last increase ({last}) is after the time of the change ({at})")]
    LastIncreaseInFuture {
        /// The last increase.
        last: Timestamp,
        /// The change.
        at: Timestamp,
    },
    /// An impossible age.
    #[error("an age of {0} years is not possible; give the age in whole years, 0 to 130")]
    Age(u32),
}

/// The largest increase any guideline band allows (adults of spinal origin, 10-30 %): the bound
/// a change is held to when the patient's origin and age are not given.
pub const LARGEST_STEP_PERCENT: u64 = 30;

/// When the last increase is closer than [`INCREASE_INTERVAL_MIN`] to `at`: how long ago it was.
pub fn too_soon_after(last_increase_at: Option<Timestamp>, at: Timestamp) -> Option<Duration> {
    let last = last_increase_at?;
    let since_ms = u64::try_from(at.duration_since(last).as_millis()).unwrap_or(0);
    (since_ms < INCREASE_INTERVAL_MIN.as_ms()).then_some(Duration::ms(since_ms))
}

/// One entry of a pump's dosing history, on the pump's own clock (wall-clock milliseconds, no
/// zone), as its event log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseHistoryEvent {
    /// The pump was implanted and its first therapy started: for the 24-hour rule this is the
    /// first increase (no increase in the first 24 hours after implant).
    Implanted {
        /// Pump-clock reading.
        at_pump_ms: i64,
    },
    /// A therapy was programmed, from one largest daily dose to another; `raised` says whether
    /// any day (or the worst case with every PTM bolus) got more: an increase.
    Programmed {
        /// Pump-clock reading.
        at_pump_ms: i64,
        /// The largest daily dose before.
        from: DoseRate,
        /// The largest daily dose after.
        to: DoseRate,
        /// Some day of the week, or the worst case with every PTM bolus, got more drug.
        raised: bool,
    },
    /// Delivery stopped (the clinician stopped the pump, a fault halted it, a stopped therapy
    /// was programmed).
    DeliveryOff {
        /// Pump-clock reading.
        at_pump_ms: i64,
    },
    /// Delivery resumed without a new therapy.
    DeliveryOn {
        /// Pump-clock reading.
        at_pump_ms: i64,
    },
    /// The pump's clock was set: readings before it are on the old clock.
    ClockSet {
        /// The reading just before.
        before_ms: i64,
        /// The reading just after.
        after_ms: i64,
    },
}

/// What a pump's history says about the last increase, for the 24-hour rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastIncrease {
    /// The history reaches back far enough: the last increase (or the implant) within it, as
    /// true time before now, or `None` when there was none within the last 24 hours.
    Known(Option<Duration>),
    /// The history does not reach back far enough, or is inconsistent: why.
    Unknown(String),
}

impl LastIncrease {
    /// The instant of the last increase within 24 hours of `at`, if known and any.
    pub fn at(&self, at: Timestamp) -> Option<Timestamp> {
        match self {
            LastIncrease::Known(Some(ago)) => at.checked_sub(ago.to_signed()).ok(),
            _ => None,
        }
    }
}

/// Finds the last increase of the largest daily dose within the last 24 hours (true time) from
/// a pump's history, oldest first, read up to `now_pump_ms`. `complete` says the history starts
/// at the implant; otherwise it must itself reach back at least 24 hours, or the answer is
/// [`LastIncrease::Unknown`]. Clock settings are undone, so that a clock set back an hour (or
/// forward by a year) neither hides nor invents an increase.
pub fn last_increase(history: &[DoseHistoryEvent], complete: bool, now_pump_ms: i64) -> LastIncrease {
    // Walk back from now, adding up the clock's jumps: a reading `r` taken before jumps totalling
    // `shift` was `now - r - shift` of true time ago.
    let mut shift: i128 = 0;
    let window = i128::from(INCREASE_INTERVAL_MIN.as_ms());
    let ago = |reading: i64, shift: i128| i128::from(now_pump_ms) - i128::from(reading) - shift;
    let mut oldest_ago: Option<i128> = None;
    for event in history.iter().rev() {
        let (reading, increase, jump) = match *event {
            // The entry itself is read on the new clock; earlier ones on the old.
            DoseHistoryEvent::ClockSet { before_ms, after_ms } => {
                (after_ms, false, i128::from(after_ms) - i128::from(before_ms))
            }
            DoseHistoryEvent::Implanted { at_pump_ms } => (at_pump_ms, true, 0),
            DoseHistoryEvent::Programmed { at_pump_ms, raised, .. } => (at_pump_ms, raised, 0),
            DoseHistoryEvent::DeliveryOff { at_pump_ms } | DoseHistoryEvent::DeliveryOn { at_pump_ms } => {
                (at_pump_ms, false, 0)
            }
        };
        let elapsed = ago(reading, shift);
        shift += jump;
        if elapsed < 0 {
            return LastIncrease::Unknown(
                "the pump's log has an entry later than the pump's clock now; set the clock and check the log"
                    .to_owned(),
            );
        }
        oldest_ago = Some(elapsed);
        if elapsed >= window {
            return LastIncrease::Known(None);
        }
        if increase {
            return LastIncrease::Known(Some(Duration::ms(u64::try_from(elapsed).unwrap_or(0))));
        }
    }
    if complete {
        return LastIncrease::Known(None);
    }
    let covered = oldest_ago.map_or_else(
        || "no entries".to_owned(),
        |ms| crate::text::duration(Duration::ms(u64::try_from(ms).unwrap_or(0))),
    );
    LastIncrease::Unknown(format!(
        "the pump's log reaches back only {covered}, not the 24 hours the rule needs (older entries were overwritten)"
    ))
}

/// While delivery is off: how long, and what it delivered before (from the pump's history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryOff {
    /// How long delivery has been off, if the history says.
    pub for_: Option<Duration>,
    /// The largest day of the last therapy that delivered, if the history says.
    pub last_delivered_day: Option<crate::quantity::Mass>,
}

/// How long delivery has been off, as of `now_pump_ms`, and the largest day of the last
/// therapy that delivered, from a pump's history (oldest first). Clock settings are undone as
/// in [`last_increase`]. Fields the history cannot tell (older entries overwritten) are `None`.
pub fn delivery_off(history: &[DoseHistoryEvent], now_pump_ms: i64) -> DeliveryOff {
    let mut shift: i128 = 0;
    let mut off = DeliveryOff::default();
    let mut off_found = false;
    for event in history.iter().rev() {
        let ago = |reading: i64, shift: i128| {
            let ms = i128::from(now_pump_ms) - i128::from(reading) - shift;
            Duration::ms(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
        };
        match *event {
            DoseHistoryEvent::ClockSet { before_ms, after_ms } => {
                shift += i128::from(after_ms) - i128::from(before_ms);
            }
            DoseHistoryEvent::DeliveryOff { at_pump_ms } if !off_found => {
                off.for_ = Some(ago(at_pump_ms, shift));
                off_found = true;
            }
            DoseHistoryEvent::Programmed { at_pump_ms, to, from, .. } => {
                // A stopped therapy turns delivery off; any other turns it on (and restarts a
                // stopped or halted pump), so an older stop does not count.
                if !off_found {
                    if to.is_zero() {
                        off.for_ = Some(ago(at_pump_ms, shift));
                    }
                    off_found = true;
                }
                if off.last_delivered_day.is_none() {
                    let delivered = if to.is_zero() { from } else { to };
                    if !delivered.is_zero() {
                        off.last_delivered_day = Some(crate::quantity::Mass::ng(delivered.as_ng_per_day()));
                    }
                }
            }
            // Delivery came on after the last stop we would find further back: it is not off
            // since then (a later off event, seen first, has already been taken).
            DoseHistoryEvent::DeliveryOn { .. } | DoseHistoryEvent::Implanted { .. } => off_found = true,
            DoseHistoryEvent::DeliveryOff { .. } => {}
        }
        if off_found && off.last_delivered_day.is_some() {
            break;
        }
    }
    off
}

/// Formats millionths of a percent as a percentage with up to 6 decimals (`"12.5"`).
pub fn percent_text(micro_percent: i64) -> String {
    let sign = if micro_percent < 0 { "-" } else { "" };
    format!("{sign}{}", crate::decimal::format(micro_percent.unsigned_abs(), 6))
}

/// Checks a proposed change.
pub fn check(inputs: &TitrationInputs) -> Result<TitrationCheck, TitrationError> {
    if inputs.current.is_zero() {
        return Err(TitrationError::NoCurrentDose);
    }
    if let Some(age) = inputs.age_years
        && age > 130
    {
        return Err(TitrationError::Age(age));
    }
    if let Some(last) = inputs.last_increase_at
        && last > inputs.at
    {
        return Err(TitrationError::LastIncreaseInFuture { last, at: inputs.at });
    }
    let current = u128::from(inputs.current.as_ng_per_day());
    let proposed = u128::from(inputs.proposed.as_ng_per_day());
    let difference = proposed.abs_diff(current);
    // Round the magnitude to the nearest millionth of a percent.
    let magnitude = crate::decimal::div_round(difference * 100_000_000, current);
    let magnitude = i64::try_from(magnitude).unwrap_or(i64::MAX);
    let change_micro_percent = if proposed < current { -magnitude } else { magnitude };

    let child = inputs.age_years.is_some_and(|age| age < ADULT_AGE_YEARS);
    let band_percent = match (child, inputs.origin) {
        (true, _) => (5, 15),
        (false, Some(Origin::Cerebral)) => (5, 15),
        (false, _) => (10, LARGEST_STEP_PERCENT),
    };
    let population = match (child, inputs.origin) {
        (true, _) => "patients under 18".to_owned(),
        (false, Some(origin)) => format!("adults with spasticity of {origin} origin"),
        (false, None) => "adults (origin not given: the largest step of any band)".to_owned(),
    };
    let mut reasons = Vec::new();
    if inputs.age_years.is_none() {
        reasons.push("Age not given: the adult band is used; give the age for a patient under 18.".to_owned());
    }
    if inputs.origin.is_none() && !child {
        reasons.push(format!(
            "Origin not given: the increase is held to the largest step of any guideline ({LARGEST_STEP_PERCENT}%); give the origin to check it against the patient's own band (5-15% for cerebral origin)."
        ));
    }
    let percent = crate::text::percent(change_micro_percent);
    let change = format!(
        "{} to {} ({percent})",
        crate::text::dose_rate(inputs.current),
        crate::text::dose_rate(inputs.proposed)
    );
    let (band_min, band_max) = band_percent;

    let verdict = if proposed == current {
        reasons.push(format!("The proposed dose is the same as the current dose, {}.", inputs.current));
        Verdict::NoChange
    } else if proposed < current {
        let (least, most) = REDUCTION_BAND_PERCENT;
        reasons.push(format!("A reduction from {change}."));
        if difference * 100 > current * u128::from(most) {
            reasons.push(format!(
                "A reduction of more than {most}% at once can bring on withdrawal; for side effects the guideline reduces by {least}-{most}%, unless overdose needs more."
            ));
        }
        Verdict::Reduction
    } else {
        let too_soon = too_soon_after(inputs.last_increase_at, inputs.at);
        let above_band = difference * 100 > current * u128::from(band_max);
        let below_band = difference * 100 < current * u128::from(band_min);
        if above_band {
            reasons.push(format!(
                "An increase from {change} is more than the {band_min}-{band_max}% step of the guideline for {population}."
            ));
        } else if below_band {
            reasons.push(format!(
                "An increase from {change} is smaller than the usual {band_min}-{band_max}% step for {population}; it is within the guideline but may take longer to reach effect."
            ));
        } else {
            reasons.push(format!(
                "An increase from {change} is within the {band_min}-{band_max}% step of the guideline for {population}."
            ));
        }
        let caution = MAINTENANCE_INCREASE_CAUTION_PERCENT;
        if let Some((maintenance_min, _)) = maintenance_range(inputs.origin, inputs.age_years)
            && inputs.current >= maintenance_min
            && difference * 100 > current * u128::from(caution)
        {
            reasons.push(format!(
                "At a maintenance dose ({} or more) an increase of more than {caution}% may be excessive.",
                maintenance_min
            ));
        }
        if let Some(since) = too_soon {
            reasons.push(format!(
                "The last increase was {} before this change; increases must be at least 24 hours apart.",
                crate::text::duration(since)
            ));
            Verdict::TooSoon
        } else if above_band {
            Verdict::ExceedsGuideline
        } else {
            Verdict::WithinGuideline
        }
    };
    let above_maintenance =
        maintenance_range(inputs.origin, inputs.age_years).map(|(_, max)| max).filter(|max| inputs.proposed > *max);
    if let Some(maintenance_max) = above_maintenance {
        reasons.push(format!(
            "{} is above the usual maintenance range for {population} (up to {maintenance_max}).",
            crate::text::dose_rate(inputs.proposed)
        ));
    }
    Ok(TitrationCheck { change_micro_percent, band_percent, verdict, reasons, above_maintenance })
}

/// The usual maintenance range for the origin and age; `None` when the origin is not known
/// (from 12 years on the range depends on it).
pub fn maintenance_range(origin: Option<Origin>, age_years: Option<u32>) -> Option<(DoseRate, DoseRate)> {
    match (age_years, origin) {
        (Some(age), _) if age < 12 => Some(MAINTENANCE_UNDER_12),
        (_, Some(Origin::Spinal)) => Some(MAINTENANCE_SPINAL),
        (_, Some(Origin::Cerebral)) => Some(MAINTENANCE_CEREBRAL),
        (_, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("valid instant")
    }

    fn run(current: u64, proposed: u64, origin: Origin, age: Option<u32>, last: Option<&str>) -> TitrationCheck {
        check(&TitrationInputs {
            current: DoseRate::micrograms_per_day(current),
            proposed: DoseRate::micrograms_per_day(proposed),
            origin: Some(origin),
            age_years: age,
            last_increase_at: last.map(at),
            at: at("2026-11-25T10:00:00Z"),
        })
        .expect("checks")
    }

    #[test]
    fn worked_examples() {
        use Origin::{Cerebral, Spinal};
        type Case = (u64, u64, Origin, Option<u32>, Option<&'static str>, &'static str, (u64, u64), Verdict);
        let cases: &[Case] = &[
            (200, 200, Spinal, Some(40), None, "0", (10, 30), Verdict::NoChange),
            (200, 240, Spinal, Some(40), None, "20", (10, 30), Verdict::WithinGuideline),
            (200, 260, Spinal, Some(40), None, "30", (10, 30), Verdict::WithinGuideline),
            (200, 261, Spinal, Some(40), None, "30.5", (10, 30), Verdict::ExceedsGuideline),
            (200, 230, Cerebral, Some(40), None, "15", (5, 15), Verdict::WithinGuideline),
            (200, 240, Cerebral, Some(40), None, "20", (5, 15), Verdict::ExceedsGuideline),
            (200, 240, Spinal, Some(12), None, "20", (5, 15), Verdict::ExceedsGuideline),
            (200, 160, Spinal, Some(40), None, "-20", (10, 30), Verdict::Reduction),
            (300, 400, Spinal, Some(40), None, "33.333333", (10, 30), Verdict::ExceedsGuideline),
            // 23 h after the last increase: too soon wins over the band.
            (200, 220, Spinal, Some(40), Some("2026-11-24T11:00:00Z"), "10", (10, 30), Verdict::TooSoon),
            (200, 300, Spinal, Some(40), Some("2026-11-24T11:00:00Z"), "50", (10, 30), Verdict::TooSoon),
            // Exactly 24 h is allowed.
            (200, 220, Spinal, Some(40), Some("2026-11-24T10:00:00Z"), "10", (10, 30), Verdict::WithinGuideline),
            // A reduction is never too soon.
            (200, 180, Spinal, Some(40), Some("2026-11-25T09:00:00Z"), "-10", (10, 30), Verdict::Reduction),
        ];
        for &(current, proposed, origin, age, last, percent, band, verdict) in cases {
            let result = run(current, proposed, origin, age, last);
            let label = format!("{current} -> {proposed} {origin} {age:?} {last:?}");
            assert_eq!(percent_text(result.change_micro_percent), percent, "{label}");
            assert_eq!(result.band_percent, band, "{label}");
            assert_eq!(result.verdict, verdict, "{label}: {:?}", result.reasons);
            assert!(!result.reasons.is_empty(), "{label}");
        }
    }

    #[test]
    fn cautions_are_explained() {
        let maintenance = run(400, 500, Origin::Spinal, Some(40), None);
        assert_eq!(maintenance.verdict, Verdict::WithinGuideline);
        assert!(
            maintenance.reasons.iter().any(|r| r.contains("more than 20% may be excessive")),
            "{:?}",
            maintenance.reasons
        );
        let steep_cut = run(400, 200, Origin::Spinal, Some(40), None);
        assert!(steep_cut.reasons.iter().any(|r| r.contains("withdrawal")), "{:?}", steep_cut.reasons);
        let no_age = run(200, 220, Origin::Spinal, None, None);
        assert!(no_age.reasons[0].contains("Age not given"));
        let high = run(800, 900, Origin::Spinal, Some(40), None);
        assert!(high.reasons.iter().any(|r| r.contains("above the usual maintenance range")), "{:?}", high.reasons);
    }

    #[test]
    fn the_last_increase_from_a_pump_history() {
        use DoseHistoryEvent::{ClockSet, Implanted, Programmed};
        const H: i64 = 3_600_000;
        let day = 24 * H;
        let dose = DoseRate::micrograms_per_day;
        let t0 = 1_795_600_000_000; // a pump-clock reading in 2026
        let raise = |at: i64| Programmed { at_pump_ms: at, from: dose(400), to: dose(440), raised: true };
        let cut = |at: i64| Programmed { at_pump_ms: at, from: dose(440), to: dose(400), raised: false };
        // Raised 3 hours ago.
        let history = [Implanted { at_pump_ms: t0 }, raise(t0 + 2 * day)];
        assert_eq!(last_increase(&history, true, t0 + 2 * day + 3 * H), LastIncrease::Known(Some(Duration::hours(3))));
        // The implant itself counts: no increase in the first 24 hours.
        assert_eq!(last_increase(&history[..1], true, t0 + 5 * H), LastIncrease::Known(Some(Duration::hours(5))));
        // A cut since does not hide the increase before it.
        let history = [Implanted { at_pump_ms: t0 }, raise(t0 + 2 * day), cut(t0 + 2 * day + H)];
        assert_eq!(last_increase(&history, true, t0 + 2 * day + 2 * H), LastIncrease::Known(Some(Duration::hours(2))));
        // The clock set back an hour 22 hours after the increase: the clock reads 23 hours
        // later, but 24 hours have passed.
        let p = t0 + 2 * day;
        let history =
            [Implanted { at_pump_ms: t0 }, raise(p), ClockSet { before_ms: p + 22 * H, after_ms: p + 21 * H }];
        assert_eq!(last_increase(&history, true, p + 23 * H), LastIncrease::Known(None));
        // The clock set a year forward: 2 hours have passed, not a year.
        let year = 365 * day;
        let history = [Implanted { at_pump_ms: t0 }, raise(p), ClockSet { before_ms: p + H, after_ms: p + H + year }];
        assert_eq!(last_increase(&history, true, p + 2 * H + year), LastIncrease::Known(Some(Duration::hours(2))));
        // A history that starts 2 hours ago (older entries overwritten) cannot say.
        let partial = [cut(p)];
        assert!(
            matches!(last_increase(&partial, false, p + 2 * H), LastIncrease::Unknown(why) if why.contains("only 2 h"))
        );
        // ...but one that reaches back past 24 hours can.
        let reaching = [cut(p - 2 * day), cut(p)];
        assert_eq!(last_increase(&reaching, false, p + 2 * H), LastIncrease::Known(None));
        // An entry later than the clock now: inconsistent, so unknown.
        assert!(matches!(last_increase(&[raise(p + H)], true, p), LastIncrease::Unknown(_)));
        // Only the PTM limits rose: an increase all the same.
        let ptm = Programmed { at_pump_ms: p, from: dose(400), to: dose(400), raised: true };
        assert_eq!(
            last_increase(&[Implanted { at_pump_ms: t0 }, ptm], true, p + H),
            LastIncrease::Known(Some(Duration::hours(1)))
        );
    }

    #[test]
    fn how_long_delivery_has_been_off() {
        use DoseHistoryEvent::{ClockSet, DeliveryOff as Off, DeliveryOn as On, Implanted, Programmed};
        const H: i64 = 3_600_000;
        let dose = DoseRate::micrograms_per_day;
        let t0 = 1_795_600_000_000;
        let programmed = |at: i64, from: u64, to: u64| Programmed {
            at_pump_ms: at,
            from: dose(from),
            to: dose(to),
            raised: to > from,
        };
        // Stopped by the clinician 5 hours ago (the clock set back an hour since): off 6 hours,
        // 500 micrograms a day before.
        let history = [
            Implanted { at_pump_ms: t0 },
            programmed(t0, 0, 400),
            programmed(t0 + 30 * H, 400, 500),
            Off { at_pump_ms: t0 + 50 * H },
            ClockSet { before_ms: t0 + 52 * H, after_ms: t0 + 51 * H },
        ];
        let off = delivery_off(&history, t0 + 55 * H);
        assert_eq!(off.for_, Some(Duration::hours(6)));
        assert_eq!(off.last_delivered_day, Some(crate::quantity::Mass::micrograms(500)));
        // A stopped therapy programmed 3 hours ago.
        let history = [Implanted { at_pump_ms: t0 }, programmed(t0, 0, 400), programmed(t0 + 10 * H, 400, 0)];
        let off = delivery_off(&history, t0 + 13 * H);
        assert_eq!(
            (off.for_, off.last_delivered_day),
            (Some(Duration::hours(3)), Some(crate::quantity::Mass::micrograms(400)))
        );
        // Stopped, resumed, stopped again: the last stop counts.
        let history = [
            programmed(t0, 0, 400),
            Off { at_pump_ms: t0 + H },
            On { at_pump_ms: t0 + 2 * H },
            Off { at_pump_ms: t0 + 4 * H },
        ];
        assert_eq!(delivery_off(&history, t0 + 5 * H).for_, Some(Duration::hours(1)));
        // Nothing in the history: unknown.
        assert_eq!(delivery_off(&[], t0), DeliveryOff::default());
    }

    #[test]
    fn without_an_origin_an_adult_has_the_largest_step_and_a_child_the_childrens_band() {
        let judge = |age: Option<u32>, proposed: u64| {
            check(&TitrationInputs {
                current: DoseRate::micrograms_per_day(400),
                proposed: DoseRate::micrograms_per_day(proposed),
                origin: None,
                age_years: age,
                last_increase_at: None,
                at: at("2026-11-25T10:00:00Z"),
            })
            .expect("checks")
        };
        assert_eq!(judge(Some(40), 520).verdict, Verdict::WithinGuideline);
        assert_eq!(judge(Some(40), 521).verdict, Verdict::ExceedsGuideline);
        assert!(judge(Some(40), 520).reasons.iter().any(|r| r.starts_with("Origin not given")));
        // An 8-year-old: 5-15 %, whatever the origin.
        let child = judge(Some(8), 500);
        assert_eq!((child.band_percent, child.verdict), ((5, 15), Verdict::ExceedsGuideline));
        assert!(!child.reasons.iter().any(|r| r.starts_with("Origin not given")));
        // The maintenance range is known for a child under 12, not for an adult of unknown origin.
        assert_eq!(judge(Some(8), 1300).above_maintenance, Some(DoseRate::micrograms_per_day(1199)));
        assert_eq!(judge(Some(40), 900).above_maintenance, None);
    }

    #[test]
    fn refuses_what_it_cannot_judge() {
        let zero = check(&TitrationInputs {
            current: DoseRate::ZERO,
            proposed: DoseRate::micrograms_per_day(100),
            origin: Some(Origin::Spinal),
            age_years: None,
            last_increase_at: None,
            at: at("2026-11-25T10:00:00Z"),
        });
        assert_eq!(zero, Err(TitrationError::NoCurrentDose));
    }
}
