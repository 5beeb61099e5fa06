//! The titration check: is a proposed change of daily dose within the guideline?
//!
//! Guideline (Lioresal/Gablofen labels; Saulino et al. 2016; DOMAIN.md): increase at most once
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
    /// The origin of the spasticity.
    pub origin: Origin,
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
        (false, Origin::Spinal) => (10, 30),
        (false, Origin::Cerebral) => (5, 15),
    };
    let population = match (child, inputs.origin) {
        (true, _) => "patients under 18".to_owned(),
        (false, origin) => format!("adults with spasticity of {origin} origin"),
    };
    let mut reasons = Vec::new();
    if inputs.age_years.is_none() {
        reasons.push("Age not given: the adult band is used; give the age for a patient under 18.".to_owned());
    }
    let percent = percent_text(change_micro_percent);
    let change = format!("{} to {} ({percent}%)", inputs.current, inputs.proposed);
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
        let too_soon = inputs.last_increase_at.and_then(|last| {
            let since = inputs.at.duration_since(last);
            let since_ms = u64::try_from(since.as_millis()).unwrap_or(0);
            (since_ms < INCREASE_INTERVAL_MIN.as_ms()).then_some((last, Duration::ms(since_ms)))
        });
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
        let (maintenance_min, _) = maintenance_range(inputs.origin, inputs.age_years);
        let caution = MAINTENANCE_INCREASE_CAUTION_PERCENT;
        if inputs.current >= maintenance_min && difference * 100 > current * u128::from(caution) {
            reasons.push(format!(
                "At a maintenance dose ({} or more) an increase of more than {caution}% may be excessive.",
                maintenance_min
            ));
        }
        if let Some((last, since)) = too_soon {
            reasons.push(format!(
                "The last increase was at {last}, {} before this change; increases must be at least 24 hours apart.",
                since
            ));
            Verdict::TooSoon
        } else if above_band {
            Verdict::ExceedsGuideline
        } else {
            Verdict::WithinGuideline
        }
    };
    let (_, maintenance_max) = maintenance_range(inputs.origin, inputs.age_years);
    if inputs.proposed > maintenance_max {
        reasons.push(format!(
            "{} is above the usual maintenance range for {population} (up to {maintenance_max}).",
            inputs.proposed
        ));
    }
    Ok(TitrationCheck { change_micro_percent, band_percent, verdict, reasons })
}

/// The usual maintenance range for the origin and age.
pub fn maintenance_range(origin: Origin, age_years: Option<u32>) -> (DoseRate, DoseRate) {
    match (age_years, origin) {
        (Some(age), _) if age < 12 => MAINTENANCE_UNDER_12,
        (_, Origin::Spinal) => MAINTENANCE_SPINAL,
        (_, Origin::Cerebral) => MAINTENANCE_CEREBRAL,
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
            origin,
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
    fn refuses_what_it_cannot_judge() {
        let zero = check(&TitrationInputs {
            current: DoseRate::ZERO,
            proposed: DoseRate::micrograms_per_day(100),
            origin: Origin::Spinal,
            age_years: None,
            last_increase_at: None,
            at: at("2026-11-25T10:00:00Z"),
        });
        assert_eq!(zero, Err(TitrationError::NoCurrentDose));
    }
}
