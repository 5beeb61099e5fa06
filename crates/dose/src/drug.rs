//! Intrathecal baclofen: the presentations on the market, custom dilutions, and the stability
//! limit of drug in a pump reservoir.

use std::fmt;

use crate::quantity::{Concentration, Duration};

/// A licensed intrathecal baclofen product strength (docs/DOMAIN.md: Lioresal Intrathecal, Gablofen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    /// Brand names that come in this strength.
    pub brands: &'static str,
    /// The labelled concentration.
    pub concentration: Concentration,
    /// What the strength is used for.
    pub use_for: &'static str,
}

/// The licensed strengths, weakest first.
pub const PRESENTATIONS: [Presentation; 4] = [
    Presentation {
        brands: "Lioresal Intrathecal, Gablofen",
        concentration: Concentration::micrograms_per_ml(50),
        use_for: "screening test doses",
    },
    Presentation {
        brands: "Lioresal Intrathecal, Gablofen",
        concentration: Concentration::micrograms_per_ml(500),
        use_for: "pump reservoir",
    },
    Presentation {
        brands: "Gablofen",
        concentration: Concentration::micrograms_per_ml(1000),
        use_for: "pump reservoir",
    },
    Presentation {
        brands: "Lioresal Intrathecal, Gablofen",
        concentration: Concentration::micrograms_per_ml(2000),
        use_for: "pump reservoir",
    },
];

/// Custom dilutions are made from a licensed strength, so none can be stronger than the
/// strongest one; and below 10 micrograms/mL a 20 mL reservoir would hold less than a day of
/// even the smallest maintenance dose on record (12 micrograms/day).
pub const DILUTION_MIN: Concentration = Concentration::micrograms_per_ml(10);
/// See [`DILUTION_MIN`].
pub const DILUTION_MAX: Concentration = Concentration::micrograms_per_ml(2000);

/// Where a reservoir's drug comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A licensed strength, as supplied.
    Licensed(Presentation),
    /// Diluted by pharmacy from a licensed strength.
    CustomDilution,
}

/// A baclofen solution at a concentration within the documented range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baclofen {
    concentration: Concentration,
}

/// Why a concentration is not one this system accepts for a reservoir.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "concentration {concentration} is outside the range {min} to {max}: no licensed strength is stronger than {max}, and weaker solutions cannot last a refill interval"
)]
pub struct ConcentrationOutOfRange {
    /// The concentration given.
    pub concentration: Concentration,
    /// The least accepted.
    pub min: Concentration,
    /// The most accepted.
    pub max: Concentration,
}

impl Baclofen {
    /// A solution at `concentration`, refused outside [`DILUTION_MIN`]..=[`DILUTION_MAX`].
    pub fn new(concentration: Concentration) -> Result<Self, ConcentrationOutOfRange> {
        if concentration < DILUTION_MIN || concentration > DILUTION_MAX {
            return Err(ConcentrationOutOfRange { concentration, min: DILUTION_MIN, max: DILUTION_MAX });
        }
        Ok(Self { concentration })
    }
    /// The concentration.
    pub fn concentration(self) -> Concentration {
        self.concentration
    }
    /// A licensed strength, or a custom dilution.
    pub fn source(self) -> Source {
        PRESENTATIONS
            .iter()
            .find(|p| p.concentration == self.concentration)
            .map_or(Source::CustomDilution, |p| Source::Licensed(*p))
    }
}

impl fmt::Display for Baclofen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source() {
            Source::Licensed(_) => write!(f, "baclofen {}", self.concentration),
            Source::CustomDilution => write!(f, "baclofen {} (custom dilution)", self.concentration),
        }
    }
}

/// How long drug may stay in a reservoir before it must be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stability {
    days: u16,
}

/// Why a stability limit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a stability limit of {days} days is outside 1 to {max} days: drug may stay in the reservoir at most {max} days (the manufacturer's limit)"
)]
pub struct StabilityOutOfRange {
    /// The days given.
    pub days: u64,
    /// The manufacturer's limit.
    pub max: u16,
}

impl Stability {
    /// The manufacturer's limit: refill at least every 180 days.
    pub const MANUFACTURER_DAYS: u16 = 180;
    /// The manufacturer's limit.
    pub const MANUFACTURER: Self = Self { days: Self::MANUFACTURER_DAYS };

    /// A service's own limit, which may be shorter than the manufacturer's, never longer.
    pub fn days(days: u64) -> Result<Self, StabilityOutOfRange> {
        match u16::try_from(days) {
            Ok(d) if (1..=Self::MANUFACTURER_DAYS).contains(&d) => Ok(Self { days: d }),
            _ => Err(StabilityOutOfRange { days, max: Self::MANUFACTURER_DAYS }),
        }
    }
    /// The limit as a span of 24-hour days.
    pub fn duration(self) -> Duration {
        Duration::days(u64::from(self.days))
    }
    /// The limit in days.
    pub fn in_days(self) -> u16 {
        self.days
    }
}

impl Default for Stability {
    fn default() -> Self {
        Self::MANUFACTURER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licensed_strengths_and_dilutions() {
        let licensed = Baclofen::new(Concentration::micrograms_per_ml(2000)).expect("in range");
        assert!(matches!(licensed.source(), Source::Licensed(p) if p.brands.contains("Lioresal")));
        let diluted = Baclofen::new(Concentration::micrograms_per_ml(1500)).expect("in range");
        assert_eq!(diluted.source(), Source::CustomDilution);
        assert_eq!(diluted.to_string(), "baclofen 1500 micrograms/mL (custom dilution)");
        assert!(Baclofen::new(Concentration::micrograms_per_ml(3000)).is_err());
        assert!(Baclofen::new(Concentration::micrograms_per_ml(5)).is_err());
    }

    #[test]
    fn stability_never_beyond_the_manufacturer() {
        assert_eq!(Stability::default().in_days(), 180);
        assert_eq!(Stability::days(90).map(Stability::in_days), Ok(90));
        assert!(Stability::days(181).is_err());
        assert!(Stability::days(0).is_err());
    }
}
