//! Goal Attainment Scaling: the T-score of a set of goals.
//!
//! T = 50 + 10 * sum(w_i x_i) / sqrt((1 - rho) * sum(w_i^2) + rho * (sum w_i)^2), with
//! rho = 0.3, x_i the attainment (-2 to +2) and w_i = importance x difficulty (each 0 to 3)
//! (Kiresuk and Sherman; Turner-Stokes 2009, with the corrected formula). A goal without
//! weights has weight 1. The score is a statistic, not a dose, so it is computed in `f64`.

/// The correlation between goal scores assumed by the formula.
pub const RHO: f64 = 0.3;
/// Most goals in one set.
pub const GOALS_MAX: usize = 20;

/// One goal's attainment and weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goal {
    /// Attainment, -2 (much less than expected) to +2 (much more).
    pub score: i8,
    /// Importance to the patient, 0 to 3.
    pub importance: u8,
    /// Difficulty, 0 to 3.
    pub difficulty: u8,
}

impl Goal {
    /// Weight: importance x difficulty.
    pub fn weight(self) -> u32 {
        u32::from(self.importance) * u32::from(self.difficulty)
    }
}

/// Why a set of goals cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GasError {
    /// No goals, or too many.
    #[error("{0} goals given; score 1 to {GOALS_MAX} goals")]
    Count(usize),
    /// A score outside -2..=2.
    #[error("goal {number} has attainment {score}; attainment is -2, -1, 0, +1 or +2")]
    Score {
        /// 1-based goal number.
        number: usize,
        /// The score.
        score: i8,
    },
    /// A weight outside 0..=3.
    #[error("goal {number} has {what} {value}; importance and difficulty are 0 to 3")]
    Weight {
        /// 1-based goal number.
        number: usize,
        /// "importance" or "difficulty".
        what: &'static str,
        /// The value.
        value: u8,
    },
    /// All weights zero.
    #[error("every goal has weight 0 (importance x difficulty); at least one goal must count")]
    NoWeight,
}

/// The GAS T-score.
pub fn t_score(goals: &[Goal]) -> Result<f64, GasError> {
    if goals.is_empty() || goals.len() > GOALS_MAX {
        return Err(GasError::Count(goals.len()));
    }
    for (index, goal) in goals.iter().enumerate() {
        let number = index + 1;
        if !(-2..=2).contains(&goal.score) {
            return Err(GasError::Score { number, score: goal.score });
        }
        for (what, value) in [("importance", goal.importance), ("difficulty", goal.difficulty)] {
            if value > 3 {
                return Err(GasError::Weight { number, what, value });
            }
        }
    }
    let weighted: i64 = goals.iter().map(|g| i64::from(g.weight()) * i64::from(g.score)).sum();
    let sum_w: u64 = goals.iter().map(|g| u64::from(g.weight())).sum();
    let sum_w2: u64 = goals.iter().map(|g| u64::from(g.weight()).pow(2)).sum();
    if sum_w == 0 {
        return Err(GasError::NoWeight);
    }
    let denominator = ((1.0 - RHO) * sum_w2 as f64 + RHO * (sum_w as f64).powi(2)).sqrt();
    Ok(50.0 + 10.0 * weighted as f64 / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal(score: i8, importance: u8, difficulty: u8) -> Goal {
        Goal { score, importance, difficulty }
    }

    #[test]
    fn worked_examples() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // Every goal met as expected: 50.
        assert!(close(t_score(&[goal(0, 1, 1), goal(0, 2, 3)]).expect("scores"), 50.0));
        // One goal a little better than expected: 50 + 10 * 1 / sqrt(0.7 + 0.3) = 60.
        assert!(close(t_score(&[goal(1, 1, 1)]).expect("scores"), 60.0));
        // Two unweighted goals at +1: 50 + 20 / sqrt(1.4 + 1.2) = 62.403473...
        assert!(close(t_score(&[goal(1, 1, 1), goal(1, 1, 1)]).expect("scores"), 50.0 + 20.0 / 2.6f64.sqrt()));
        // Weighted: w = 6 and 1; sum w x = 6*(-1) + 1*2 = -4; sum w^2 = 37; (sum w)^2 = 49;
        // T = 50 - 40 / sqrt(25.9 + 14.7) = 50 - 40 / sqrt(40.6).
        assert!(close(t_score(&[goal(-1, 2, 3), goal(2, 1, 1)]).expect("scores"), 50.0 - 40.0 / 40.6f64.sqrt()));
        // Three goals all at -2 (baseline): 50 - 60 / sqrt(2.1 + 2.7) = 22.6139...
        let baseline = t_score(&[goal(-2, 1, 1), goal(-2, 1, 1), goal(-2, 1, 1)]).expect("scores");
        assert!(close(baseline, 50.0 - 60.0 / 4.8f64.sqrt()), "{baseline}");
    }

    #[test]
    fn refuses_out_of_range_goals() {
        assert_eq!(t_score(&[]), Err(GasError::Count(0)));
        assert_eq!(t_score(&[goal(3, 1, 1)]), Err(GasError::Score { number: 1, score: 3 }));
        assert!(matches!(t_score(&[goal(1, 4, 1)]), Err(GasError::Weight { what: "importance", .. })));
        assert_eq!(t_score(&[goal(1, 0, 2)]), Err(GasError::NoWeight));
    }
}
