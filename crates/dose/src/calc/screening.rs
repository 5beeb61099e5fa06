//! The screening trial ladder and the starting dose after implant.
//!
//! Screening (Lioresal/Gablofen labels; Saulino et al. 2016; the leaflet): a bolus of
//! 50 micrograms (25 micrograms for small patients), observed for 4-8 hours; without a response,
//! 75 micrograms at least 24 hours later, then 100 micrograms. No response at 100 micrograms:
//! not a candidate for a pump.
//!
//! Starting daily dose after implant: twice the effective screening dose, delivered over
//! 24 hours; the same as the screening dose if its effect lasted more than 8 hours or it caused
//! side effects. No increase in the first 24 hours.

use crate::quantity::{DoseRate, Mass};

/// The standard ladder.
pub const LADDER: [Mass; 3] = [Mass::micrograms(50), Mass::micrograms(75), Mass::micrograms(100)];
/// The ladder for small patients, starting lower.
pub const LADDER_SMALL: [Mass; 4] =
    [Mass::micrograms(25), Mass::micrograms(50), Mass::micrograms(75), Mass::micrograms(100)];
/// Effect lasting longer than this keeps the starting dose equal to the screening dose.
pub const LONG_EFFECT_HOURS: u32 = 8;

/// The ladder for a patient.
pub fn ladder(small_patient: bool) -> &'static [Mass] {
    if small_patient { &LADDER_SMALL } else { &LADDER }
}

/// One screening bolus and its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trial {
    /// The bolus.
    pub dose: Mass,
    /// Whether the agreed response was seen.
    pub responded: bool,
}

/// Where the screening stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreeningStatus {
    /// Give this bolus next.
    NextDose(Mass),
    /// Responded: a candidate, with the effective dose and the starting daily dose.
    Candidate {
        /// The bolus that worked.
        effective: Mass,
        /// The starting daily dose after implant.
        starting: DoseRate,
    },
    /// No response at the top of the ladder.
    NotCandidate,
}

impl ScreeningStatus {
    /// The name used in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScreeningStatus::NextDose(_) => "next_dose",
            ScreeningStatus::Candidate { .. } => "candidate",
            ScreeningStatus::NotCandidate => "not_candidate",
        }
    }
}

/// The screening outcome with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreeningOutcome {
    /// The ladder used.
    pub ladder: &'static [Mass],
    /// Where it stands.
    pub status: ScreeningStatus,
    /// Sentences that explain it.
    pub reasons: Vec<String>,
}

/// How the effective dose behaved, for the starting dose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EffectObserved {
    /// Hours the effect lasted, if measured.
    pub effect_hours: Option<u32>,
    /// Whether the effective dose caused side effects.
    pub side_effects: bool,
}

/// Why the trials given do not follow the ladder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreeningError {
    /// A trial dose that is not the next step.
    #[error("trial {number} was {given}; the next step of the ladder ({ladder}) was {expected}")]
    OffLadder {
        /// 1-based trial number.
        number: usize,
        /// The dose given.
        given: Mass,
        /// The dose expected.
        expected: Mass,
        /// The ladder, as text.
        ladder: String,
    },
    /// A trial after a response, or after the top of the ladder.
    #[error("trial {number} comes after the ladder ended ({why}); remove it")]
    AfterEnd {
        /// 1-based trial number.
        number: usize,
        /// Why the ladder had ended.
        why: &'static str,
    },
}

fn ladder_text(ladder: &[Mass]) -> String {
    ladder.iter().map(|m| m.number().to_string()).collect::<Vec<_>>().join(", ") + " micrograms"
}

/// The starting daily dose for an effective screening bolus.
pub fn starting_dose(effective: Mass, observed: EffectObserved) -> (DoseRate, Vec<String>) {
    let long = observed.effect_hours.is_some_and(|h| h > LONG_EFFECT_HOURS);
    let mut reasons = Vec::new();
    let starting = if long || observed.side_effects {
        if long {
            reasons.push(format!(
                "The effect lasted more than {LONG_EFFECT_HOURS} hours, so the starting daily dose equals the screening dose, {effective}, over 24 hours."
            ));
        }
        if observed.side_effects {
            reasons.push(format!(
                "The screening dose caused side effects, so the starting daily dose equals it, {effective}, over 24 hours."
            ));
        }
        DoseRate::ng_per_day(effective.as_ng())
    } else {
        reasons.push(format!(
            "The starting daily dose is twice the effective screening dose of {effective}, over 24 hours."
        ));
        DoseRate::ng_per_day(effective.as_ng().saturating_mul(2))
    };
    reasons.push("Do not increase the dose in the first 24 hours after implant.".to_owned());
    (starting, reasons)
}

/// Where a screening stands after `trials`, in order.
pub fn screening(
    small_patient: bool,
    trials: &[Trial],
    observed: EffectObserved,
) -> Result<ScreeningOutcome, ScreeningError> {
    let ladder = ladder(small_patient);
    let mut reasons = Vec::new();
    if small_patient {
        reasons.push("Small patient: the ladder starts at 25 micrograms.".to_owned());
    }
    for (index, trial) in trials.iter().enumerate() {
        let number = index + 1;
        if index > 0 && trials[index - 1].responded {
            return Err(ScreeningError::AfterEnd { number, why: "the previous trial responded" });
        }
        let expected =
            *ladder.get(index).ok_or(ScreeningError::AfterEnd { number, why: "100 micrograms is the top" })?;
        if trial.dose != expected {
            return Err(ScreeningError::OffLadder { number, given: trial.dose, expected, ladder: ladder_text(ladder) });
        }
    }
    let status = match trials.last() {
        Some(last) if last.responded => {
            let (starting, mut why) = starting_dose(last.dose, observed);
            reasons.push(format!(
                "Responded to {}: a candidate for a pump, if the goals are achievable and the MDT agrees.",
                last.dose
            ));
            reasons.append(&mut why);
            ScreeningStatus::Candidate { effective: last.dose, starting }
        }
        Some(last) if trials.len() == ladder.len() => {
            reasons.push(format!("No response at {}: not a candidate for intrathecal baclofen.", last.dose));
            ScreeningStatus::NotCandidate
        }
        Some(last) => {
            let next = ladder[trials.len()];
            reasons.push(format!(
                "No response at {}: give {next} at least 24 hours later and observe for 4-8 hours (physiotherapy review at 2-3 hours).",
                last.dose
            ));
            ScreeningStatus::NextDose(next)
        }
        None => {
            let first = ladder[0];
            reasons.push(format!("Start with {first} and observe for 4-8 hours (physiotherapy review at 2-3 hours)."));
            ScreeningStatus::NextDose(first)
        }
    };
    Ok(ScreeningOutcome { ladder, status, reasons })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(micrograms: u64, responded: bool) -> Trial {
        Trial { dose: Mass::micrograms(micrograms), responded }
    }

    #[test]
    fn the_ladder_steps_up_then_stops() {
        let none = EffectObserved::default();
        let start = screening(false, &[], none).expect("valid");
        assert_eq!(start.status, ScreeningStatus::NextDose(Mass::micrograms(50)));
        let second = screening(false, &[trial(50, false)], none).expect("valid");
        assert_eq!(second.status, ScreeningStatus::NextDose(Mass::micrograms(75)));
        let responded = screening(false, &[trial(50, false), trial(75, true)], none).expect("valid");
        assert_eq!(
            responded.status,
            ScreeningStatus::Candidate { effective: Mass::micrograms(75), starting: DoseRate::micrograms_per_day(150) }
        );
        let failed = screening(false, &[trial(50, false), trial(75, false), trial(100, false)], none).expect("valid");
        assert_eq!(failed.status, ScreeningStatus::NotCandidate);
        let small = screening(true, &[], none).expect("valid");
        assert_eq!(small.status, ScreeningStatus::NextDose(Mass::micrograms(25)));
    }

    #[test]
    fn starting_dose_rules() {
        let long = EffectObserved { effect_hours: Some(10), side_effects: false };
        assert_eq!(starting_dose(Mass::micrograms(50), long).0, DoseRate::micrograms_per_day(50));
        let exactly_eight = EffectObserved { effect_hours: Some(8), side_effects: false };
        assert_eq!(starting_dose(Mass::micrograms(50), exactly_eight).0, DoseRate::micrograms_per_day(100));
        let side = EffectObserved { effect_hours: None, side_effects: true };
        assert_eq!(starting_dose(Mass::micrograms(100), side).0, DoseRate::micrograms_per_day(100));
    }

    #[test]
    fn trials_must_follow_the_ladder() {
        let none = EffectObserved::default();
        let skip = screening(false, &[trial(50, false), trial(100, true)], none);
        assert!(matches!(skip, Err(ScreeningError::OffLadder { number: 2, .. })), "{skip:?}");
        let after = screening(false, &[trial(50, true), trial(75, true)], none);
        assert!(matches!(after, Err(ScreeningError::AfterEnd { number: 2, .. })), "{after:?}");
        let beyond =
            screening(false, &[trial(50, false), trial(75, false), trial(100, false), trial(125, false)], none);
        assert!(matches!(beyond, Err(ScreeningError::AfterEnd { number: 4, .. })), "{beyond:?}");
    }
}
