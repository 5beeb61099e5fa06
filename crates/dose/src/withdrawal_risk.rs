//! Who is at higher risk if intrathecal baclofen stops: the level of a spinal cord injury.
//!
//! Withdrawal is more dangerous in people with a spinal cord injury at T6 or above, in whom it
//! can bring autonomic dysreflexia as well as the fever, rebound spasticity and rhabdomyolysis
//! of withdrawal (docs/DOMAIN.md): the service flags them high-risk, sees them first within each
//! bucket of the refill worklist, and never lets their refill slip.

use std::fmt;
use std::str::FromStr;

/// A level of the spinal cord: cervical 1-8, thoracic 1-12, lumbar 1-5, sacral 1-5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpinalLevel {
    /// Position from the top: C1 is 1, C8 is 8, T1 is 9, T12 is 20, L1 is 21, S5 is 30.
    index: u8,
}

/// The highest (most cranial) level at which withdrawal is flagged high-risk: T6.
pub const HIGH_RISK_LOWEST: SpinalLevel = SpinalLevel { index: 8 + 6 };

const REGIONS: [(char, u8); 4] = [('C', 8), ('T', 12), ('L', 5), ('S', 5)];

/// A level that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a spinal level; write a letter and a number, such as C5, T6, L1 or S2 (C1-C8, T1-T12, L1-L5, S1-S5)"
)]
pub struct SpinalLevelError(pub String);

impl FromStr for SpinalLevel {
    type Err = SpinalLevelError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || SpinalLevelError(text.chars().take(20).collect());
        let trimmed = text.trim();
        let mut chars = trimmed.chars();
        let letter = chars.next().ok_or_else(error)?.to_ascii_uppercase();
        let number: u8 = chars.as_str().parse().map_err(|_| error())?;
        let mut before = 0u8;
        for (region, count) in REGIONS {
            if region == letter {
                return if (1..=count).contains(&number) { Ok(Self { index: before + number }) } else { Err(error()) };
            }
            before += count;
        }
        Err(error())
    }
}

impl fmt::Display for SpinalLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut before = 0u8;
        for (region, count) in REGIONS {
            if self.index <= before + count {
                return write!(f, "{region}{}", self.index - before);
            }
            before += count;
        }
        write!(f, "S{}", self.index.saturating_sub(before))
    }
}

/// Why a patient is at high risk if the drug stops, or `None`: a spinal cord injury at T6 or
/// above. Patients of cerebral origin, or without a level on record, are not flagged by this rule.
pub fn high_risk_reason(level: Option<SpinalLevel>) -> Option<String> {
    let level = level?;
    (level <= HIGH_RISK_LOWEST).then(|| {
        format!(
            "spinal cord injury at {level}, at or above T6: withdrawal can bring autonomic dysreflexia; never let a refill slip"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(text: &str) -> SpinalLevel {
        text.parse().expect("a level")
    }

    #[test]
    fn t6_and_above_are_high_risk_t7_and_below_are_not() {
        for high in ["C1", "C5", "C8", "T1", "T5", "T6", "t6"] {
            assert!(high_risk_reason(Some(level(high))).is_some(), "{high}");
        }
        for low in ["T7", "T12", "L1", "S5"] {
            assert_eq!(high_risk_reason(Some(level(low))), None, "{low}");
        }
        assert_eq!(high_risk_reason(None), None);
    }

    #[test]
    fn levels_read_and_write_back() {
        for text in ["C1", "C8", "T1", "T6", "T12", "L1", "L5", "S1", "S5"] {
            assert_eq!(level(text).to_string(), text);
        }
        for bad in ["", "T0", "T13", "C9", "X1", "T", "6", "T-1", "L6"] {
            assert!(bad.parse::<SpinalLevel>().is_err(), "{bad}");
        }
    }
}
