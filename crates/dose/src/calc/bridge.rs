//! Bridge and priming boluses: moving drug through the dead volume of the pump tubing and
//! catheter.
//!
//! After a concentration change the tubing and catheter still hold old drug. A **bridge bolus**
//! pushes it out at the rate that gives the prescribed dose *at the old concentration*; only
//! then does the pump switch to the rate for the new concentration. Skipping the bridge delivers
//! the old drug at the new rate: the dose is scaled by old/new until the dead volume has
//! cleared (an overdose when moving to a weaker solution, an underdose when moving to a
//! stronger one).
//!
//! A **priming bolus** fills an empty catheter (and tubing) after implant or catheter revision,
//! at the profile's priming rate.
//!
//! # Rounding
//! Volume rates use the pump's rule (rounded up to the nanolitre per day, see
//! [`super::refill::pump_volume_rate`]). The bridge duration is rounded **down** to the
//! millisecond: the bridge never runs new drug at the old drug's rate.

use crate::drug::Baclofen;
use crate::quantity::{DoseRate, Duration, Mass, Rounding, Volume, VolumeRate};

use super::refill::pump_volume_rate;

/// A bridge bolus plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePlan {
    /// The dead volume that still holds old drug.
    pub volume: Volume,
    /// The rate during the bridge: the daily dose at the old concentration.
    pub rate: VolumeRate,
    /// How long the bridge runs.
    pub duration: Duration,
    /// The rate after the bridge: the daily dose at the new concentration.
    pub rate_after: VolumeRate,
    /// Old drug in the dead volume.
    pub old_drug_in_dead_volume: Mass,
    /// Without a bridge: the daily dose actually delivered while the dead volume clears.
    pub skipped_daily_dose: DoseRate,
    /// Without a bridge: how long the wrong dose lasts.
    pub skipped_duration: Duration,
    /// Without a bridge: delivered dose divided by prescribed dose (old/new concentration),
    /// in parts per million.
    pub skipped_ratio_ppm: u64,
}

/// Why a bridge cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// No dose: nothing pushes the old drug.
    #[error("the daily dose is 0; a bridge bolus needs the dose the pump will deliver")]
    NoDose,
    /// Numbers that overflow.
    #[error("the bridge figures are too large to compute; check the volume, dose and concentrations")]
    TooLarge,
}

/// Plans the bridge bolus from `old` to `new` for `dose`, over `dead_volume`.
pub fn bridge(dead_volume: Volume, old: Baclofen, new: Baclofen, dose: DoseRate) -> Result<BridgePlan, BridgeError> {
    if dose.is_zero() {
        return Err(BridgeError::NoDose);
    }
    let rate = pump_volume_rate(dose, old).ok_or(BridgeError::TooLarge)?;
    let rate_after = pump_volume_rate(dose, new).ok_or(BridgeError::TooLarge)?;
    let duration = rate.time_to_move(dead_volume, Rounding::Down).ok_or(BridgeError::TooLarge)?;
    let skipped_duration = rate_after.time_to_move(dead_volume, Rounding::Down).ok_or(BridgeError::TooLarge)?;
    let skipped_daily_dose =
        rate_after.dose_rate_at(old.concentration(), Rounding::Down).ok_or(BridgeError::TooLarge)?;
    let ratio = u128::from(old.concentration().as_ng_per_ml()) * 1_000_000
        / u128::from(new.concentration().as_ng_per_ml()).max(1);
    Ok(BridgePlan {
        volume: dead_volume,
        rate,
        duration,
        rate_after,
        old_drug_in_dead_volume: old
            .concentration()
            .mass_in(dead_volume, Rounding::Down)
            .ok_or(BridgeError::TooLarge)?,
        skipped_daily_dose,
        skipped_duration,
        skipped_ratio_ppm: u64::try_from(ratio).map_err(|_| BridgeError::TooLarge)?,
    })
}

/// A priming bolus plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimingPlan {
    /// The empty volume to fill.
    pub volume: Volume,
    /// The priming rate.
    pub rate: VolumeRate,
    /// How long priming takes, rounded up to the millisecond (the catheter is full at the end).
    pub duration: Duration,
}

/// Plans a priming bolus of `volume` at `rate`; `None` for a zero rate.
pub fn priming(volume: Volume, rate: VolumeRate) -> Option<PrimingPlan> {
    let duration = rate.time_to_move(volume, Rounding::Up)?;
    Some(PrimingPlan { volume, rate, duration })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::Concentration;

    fn drug(micrograms_per_ml: u64) -> Baclofen {
        Baclofen::new(Concentration::micrograms_per_ml(micrograms_per_ml)).expect("in range")
    }

    #[test]
    fn bridge_from_500_to_2000() {
        // 0.31 mL dead volume, 400 micrograms/day: 0.8 mL/day of 500, then 0.2 mL/day of 2000.
        let plan =
            bridge(Volume::nl(310_000), drug(500), drug(2000), DoseRate::micrograms_per_day(400)).expect("plans");
        assert_eq!(plan.rate, VolumeRate::nl_per_day(800_000));
        assert_eq!(plan.rate_after, VolumeRate::nl_per_day(200_000));
        // 0.31 / 0.8 day = 9.3 h.
        assert_eq!(plan.duration, Duration::ms(33_480_000));
        // Skipped: 0.2 mL/day of old 500 = 100 micrograms/day for 0.31 / 0.2 day = 37.2 h.
        assert_eq!(plan.skipped_daily_dose, DoseRate::micrograms_per_day(100));
        assert_eq!(plan.skipped_duration, Duration::ms(133_920_000));
        assert_eq!(plan.skipped_ratio_ppm, 250_000);
        assert_eq!(plan.old_drug_in_dead_volume, Mass::micrograms(155));
    }

    #[test]
    fn skipping_a_bridge_to_a_weaker_solution_overdoses() {
        let plan =
            bridge(Volume::nl(310_000), drug(2000), drug(500), DoseRate::micrograms_per_day(400)).expect("plans");
        assert_eq!(plan.skipped_daily_dose, DoseRate::micrograms_per_day(1600));
        assert_eq!(plan.skipped_ratio_ppm, 4_000_000);
    }

    #[test]
    fn priming_fills_at_the_profile_rate() {
        // 0.31 mL at 24 mL/day (1 mL/h) = 0.31 h = 18.6 min.
        let plan = priming(Volume::nl(310_000), VolumeRate::nl_per_day(24_000_000)).expect("plans");
        assert_eq!(plan.duration, Duration::ms(1_116_000));
        assert!(priming(Volume::ml(1), VolumeRate::ZERO).is_none());
    }
}
