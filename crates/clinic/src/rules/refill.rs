//! The rules of a refill as the record keeps it: two different people sign it, the drug has not
//! expired, the volumes fit the pump, and the withdrawn volume is compared with the expected one
//! by `itb-dose`'s refill-gap rule (over the device's threshold: held for review).

use itb_dose::calc::refill_gap::RefillGap;
use itb_dose::{Baclofen, Concentration, DeviceProfile, Volume};
use jiff::civil::Date;

use crate::error::Problems;

/// What a refill states, checked by [`check`].
#[derive(Debug, Clone)]
pub struct RefillFacts<'a> {
    /// The pump's profile.
    pub profile: &'a DeviceProfile,
    /// The refill's date in the service's zone.
    pub on: Date,
    /// What the record expects in the reservoir.
    pub expected: Volume,
    /// What was withdrawn.
    pub withdrawn: Volume,
    /// What was added.
    pub added: Volume,
    /// The drug added.
    pub concentration: Concentration,
    /// Its expiry date.
    pub expires_on: Date,
    /// The nurse's user id.
    pub nurse: i64,
    /// The second checker's user id.
    pub second_checker: i64,
    /// The second checker is a clinician.
    pub second_checker_clinical: bool,
}

/// Checks a refill; on success, its gap.
pub fn check(facts: &RefillFacts<'_>, problems: &mut Problems) -> Option<RefillGap> {
    let capacity = facts.profile.reservoir.capacity.value;
    if facts.nurse == facts.second_checker {
        problems.add(
            "second_checker",
            "the second checker must be a different person from the nurse: two people sign every refill",
        );
    } else if !facts.second_checker_clinical {
        problems.add("second_checker", "the second checker must be a clinician (not an administrator or a patient)");
    }
    if facts.expires_on < facts.on {
        problems.add(
            "expires_on",
            format!(
                "this drug expired on {}: do not use it; take a new vial within its expiry date",
                itb_dose::text::civil_date(facts.expires_on)
            ),
        );
    }
    if facts.added.is_zero() {
        problems.add("volume_added_ml", "no drug was added: give the volume put into the reservoir");
    } else if facts.added > capacity {
        problems.add(
            "volume_added_ml",
            format!(
                "{} is more than this pump's reservoir holds ({}); check the volume",
                itb_dose::text::volume(facts.added),
                itb_dose::text::volume(capacity)
            ),
        );
    }
    if facts.withdrawn > capacity {
        problems.add(
            "volume_withdrawn_ml",
            format!(
                "{} is more than this pump's reservoir holds ({}); check the volume",
                itb_dose::text::volume(facts.withdrawn),
                itb_dose::text::volume(capacity)
            ),
        );
    }
    if let Err(e) = Baclofen::new(facts.concentration) {
        problems.add("concentration_micrograms_per_ml", e.to_string());
    }
    Some(RefillGap::assess(facts.expected, facts.withdrawn, facts.profile.reservoir.refill_gap_warning.value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn facts(profile: &DeviceProfile) -> RefillFacts<'_> {
        RefillFacts {
            profile,
            on: date(2026, 11, 25),
            expected: Volume::ml(4),
            withdrawn: Volume::ml(4),
            added: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            expires_on: date(2027, 6, 1),
            nurse: 1,
            second_checker: 2,
            second_checker_clinical: true,
        }
    }

    #[test]
    fn one_person_cannot_sign_twice_and_expired_drug_is_refused() {
        let profile = DeviceProfile::built_in("synchromed-ii-20").expect("profile");
        let mut problems = Problems::default();
        check(&RefillFacts { second_checker: 1, expires_on: date(2026, 11, 24), ..facts(&profile) }, &mut problems);
        let text = problems.finish().expect_err("refused").to_string();
        assert!(text.contains("second_checker: the second checker must be a different person"), "{text}");
        assert!(text.contains("expires_on: this drug expired on 24 Nov 2026"), "{text}");
    }

    #[test]
    fn a_gap_over_one_ml_on_a_20_ml_pump_needs_review_and_one_ml_does_not() {
        let profile = DeviceProfile::built_in("synchromed-ii-20").expect("profile");
        let mut problems = Problems::default();
        let gap = check(&RefillFacts { withdrawn: Volume::ml(3), ..facts(&profile) }, &mut problems).expect("gap");
        assert_eq!(gap.gap, Volume::ml(1));
        assert!(!gap.stops_the_refill());
        let gap =
            check(&RefillFacts { withdrawn: Volume::nl(2_999_999), ..facts(&profile) }, &mut problems).expect("gap");
        assert!(gap.stops_the_refill());
        assert!(problems.finish().is_ok());
    }
}
