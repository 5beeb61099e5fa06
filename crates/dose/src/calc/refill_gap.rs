//! The refill gap: what came out of the reservoir against what the pump expected.
//!
//! At every refill the old drug is withdrawn and measured. A gap between the volume withdrawn
//! and the pump's estimate of more than 1 mL for a 20 mL pump, or 2 mL for a 40 mL pump, is
//! potentially consequential (Maino 2017; docs/DOMAIN.md) and stops the refill until it is
//! explained: less than expected suggests over-infusion, a leak at the pump or an earlier pocket
//! fill (the patient may have had too much); more than expected suggests the pump delivered
//! less than it counted, through an occluded catheter or a stalled motor (the patient may have
//! had too little). The threshold is the device profile's `reservoir.refill_gap_warning`.

use crate::quantity::Volume;
use crate::text;

/// Which way the gap goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapDirection {
    /// Less came out than expected.
    Less,
    /// More came out than expected.
    More,
}

impl GapDirection {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            GapDirection::Less => "less",
            GapDirection::More => "more",
        }
    }
}

/// The comparison of a refill's withdrawn volume with the pump's estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefillGap {
    /// The pump's estimate of the reservoir before the withdrawal.
    pub expected: Volume,
    /// The volume withdrawn.
    pub withdrawn: Volume,
    /// The difference, either way.
    pub gap: Volume,
    /// Which way, when there is a gap.
    pub direction: Option<GapDirection>,
    /// The device's threshold: a larger gap stops the refill.
    pub limit: Volume,
}

impl RefillGap {
    /// Compares `withdrawn` with `expected` against the device's `limit`.
    pub fn assess(expected: Volume, withdrawn: Volume, limit: Volume) -> Self {
        let direction = match withdrawn.cmp(&expected) {
            std::cmp::Ordering::Less => Some(GapDirection::Less),
            std::cmp::Ordering::Greater => Some(GapDirection::More),
            std::cmp::Ordering::Equal => None,
        };
        let gap = Volume::nl(expected.as_nl().abs_diff(withdrawn.as_nl()));
        Self { expected, withdrawn, gap, direction, limit }
    }

    /// True when the gap is above the device's threshold: the refill stops until it is
    /// explained.
    pub fn stops_the_refill(&self) -> bool {
        self.gap > self.limit
    }

    /// What may explain the gap, for the person at the pump.
    pub fn suspect(&self) -> &'static str {
        match self.direction {
            Some(GapDirection::Less) => "over-infusion, a leak at the pump, or an earlier pocket fill",
            Some(GapDirection::More) => {
                "an occluded catheter or a stalled motor (the pump delivered less than it counted)"
            }
            None => "nothing",
        }
    }

    /// What to check the patient for.
    pub fn watch_for(&self) -> &'static str {
        match self.direction {
            Some(GapDirection::Less) => "overdose (drowsiness, weakness, slow breathing)",
            Some(GapDirection::More) => "withdrawal (returning spasms, itching, fever)",
            None => "nothing in particular",
        }
    }

    /// One sentence: the figures, and what they mean.
    pub fn sentence(&self) -> String {
        let figures =
            format!("Withdrawn {}; the pump expected {}", text::volume(self.withdrawn), text::volume(self.expected));
        match self.direction {
            None => format!("{figures}: no gap."),
            Some(direction) if !self.stops_the_refill() => format!(
                "{figures}: {} {}, within the {} this pump allows.",
                text::volume(self.gap),
                if direction == GapDirection::Less { "less" } else { "more" },
                text::volume(self.limit)
            ),
            Some(direction) => format!(
                "{figures}: {} {} than expected, above the {} this pump allows. Suspect {}. Do not refill until this is explained; check the patient for {}.",
                text::volume(self.gap),
                if direction == GapDirection::Less { "LESS" } else { "MORE" },
                text::volume(self.limit),
                self.suspect(),
                self.watch_for()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples() {
        let one_ml = Volume::ml(1);
        // 17 mL expected, 15.5 mL out of a 20 mL pump: 1.5 mL less, above 1 mL.
        let gap = RefillGap::assess(Volume::ml(17), Volume::nl(15_500_000), one_ml);
        assert_eq!(gap.gap, Volume::nl(1_500_000));
        assert_eq!(gap.direction, Some(GapDirection::Less));
        assert!(gap.stops_the_refill());
        assert!(gap.sentence().contains("1.5 mL LESS than expected, above the 1 mL"), "{}", gap.sentence());
        assert!(gap.sentence().contains("over-infusion"));
        // Exactly 1 mL is within the limit ("more than 1 mL" is consequential).
        let edge = RefillGap::assess(Volume::ml(17), Volume::ml(18), one_ml);
        assert_eq!(edge.direction, Some(GapDirection::More));
        assert!(!edge.stops_the_refill());
        // 1 nL more is above it.
        assert!(RefillGap::assess(Volume::ml(17), Volume::nl(18_000_001), one_ml).stops_the_refill());
        // A 40 mL pump allows 2 mL.
        assert!(!RefillGap::assess(Volume::ml(30), Volume::nl(28_100_000), Volume::ml(2)).stops_the_refill());
        let none = RefillGap::assess(Volume::ml(3), Volume::ml(3), one_ml);
        assert_eq!((none.gap, none.direction, none.stops_the_refill()), (Volume::ZERO, None, false));
    }
}
