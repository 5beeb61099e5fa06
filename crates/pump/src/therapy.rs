//! A prescription compiled for the motor: volume rates on the pump's clock.

use itb_dose::calc::refill::pump_volume_rate;
use itb_dose::prescription::{FlexSchedule, Therapy};
use itb_dose::quantity::MS_PER_DAY;
use itb_dose::{Baclofen, Concentration, DoseRate, Prescription, Rounding, VolumeRate};

use crate::time::PumpTime;

/// A flex day: (start, ms of day; rate).
type CompiledDay = Vec<(u64, VolumeRate)>;

/// Volume rates of a therapy at one concentration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Rates {
    /// Nothing.
    Stopped,
    /// One rate.
    Continuous(VolumeRate),
    /// One day for every day, or seven (Monday first).
    Flex(Vec<CompiledDay>),
    /// Boluses over a basal.
    Periodic {
        /// Between boluses.
        basal: VolumeRate,
        /// During a bolus (basal included).
        during_bolus: VolumeRate,
        /// First bolus, ms of day.
        first_ms: u64,
        /// Start to start, ms.
        interval_ms: u64,
        /// Bolus length, ms.
        duration_ms: u64,
    },
}

/// The volume rate for `dose` of `concentration`, as the pump runs it.
pub fn volume_rate(dose: DoseRate, concentration: Concentration) -> VolumeRate {
    Baclofen::new(concentration)
        .ok()
        .and_then(|drug| pump_volume_rate(dose, drug))
        .or_else(|| dose.volume_rate_at(concentration, Rounding::Up))
        .unwrap_or(VolumeRate::ZERO)
}

impl Rates {
    /// Compiles `prescription` at `concentration`.
    pub fn compile(prescription: &Prescription, concentration: Concentration) -> Self {
        match prescription.therapy() {
            Therapy::Stopped => Rates::Stopped,
            Therapy::SimpleContinuous { rate } => Rates::Continuous(volume_rate(*rate, concentration)),
            Therapy::Flex(schedule) => {
                let days = match schedule {
                    FlexSchedule::Daily(day) => vec![day],
                    FlexSchedule::Weekly(days) => days.iter().collect(),
                };
                Rates::Flex(
                    days.into_iter()
                        .map(|day| {
                            day.steps()
                                .iter()
                                .map(|s| (s.start.since_midnight().as_ms(), volume_rate(s.rate, concentration)))
                                .collect()
                        })
                        .collect(),
                )
            }
            Therapy::PeriodicBolus(p) => {
                let bolus_rate = p.bolus.rate_over(p.bolus_duration, Rounding::Up).unwrap_or(DoseRate::ZERO);
                let during = p.basal.checked_add(bolus_rate).unwrap_or(DoseRate::ZERO);
                Rates::Periodic {
                    basal: volume_rate(p.basal, concentration),
                    during_bolus: volume_rate(during, concentration),
                    first_ms: p.first_at.since_midnight().as_ms(),
                    interval_ms: p.interval.as_ms(),
                    duration_ms: p.bolus_duration.as_ms(),
                }
            }
        }
    }

    /// Every distinct rate the therapy can run, for limit checks.
    pub fn all_rates(&self) -> Vec<VolumeRate> {
        match self {
            Rates::Stopped => vec![],
            Rates::Continuous(rate) => vec![*rate],
            Rates::Flex(days) => days.iter().flatten().map(|(_, r)| *r).collect(),
            Rates::Periodic { basal, during_bolus, .. } => vec![*basal, *during_bolus],
        }
    }

    /// The highest rate the therapy runs.
    pub fn max_rate(&self) -> VolumeRate {
        match self {
            Rates::Stopped => VolumeRate::ZERO,
            Rates::Continuous(rate) => *rate,
            Rates::Flex(days) => days.iter().flatten().map(|(_, r)| *r).max().unwrap_or(VolumeRate::ZERO),
            Rates::Periodic { basal, during_bolus, .. } => (*basal).max(*during_bolus),
        }
    }

    /// The rate at pump time `at` and the pump time of the next change strictly after it
    /// (`None` if it never changes).
    pub fn at(&self, at: PumpTime) -> (VolumeRate, Option<PumpTime>) {
        let tod = at.ms_of_day();
        let day_start = at.as_ms() - tod as i64;
        let day_ms = MS_PER_DAY as i64;
        match self {
            Rates::Stopped => (VolumeRate::ZERO, None),
            Rates::Continuous(rate) => (*rate, None),
            Rates::Flex(days) => {
                let day = if days.len() == 7 { &days[at.weekday()] } else { &days[0] };
                // Steps are in time order from 00:00: the first whose successor starts later.
                let index = day.partition_point(|(start, _)| *start <= tod).saturating_sub(1);
                let rate = day.get(index).map_or(VolumeRate::ZERO, |(_, r)| *r);
                let next = day.get(index + 1).map_or(day_start + day_ms, |(start, _)| day_start + *start as i64);
                (rate, Some(PumpTime::from_ms(next)))
            }
            Rates::Periodic { basal, during_bolus, first_ms, interval_ms, duration_ms } => {
                let phase = (tod as i64 - *first_ms as i64).rem_euclid(*interval_ms as i64) as u64;
                if phase < *duration_ms {
                    (*during_bolus, Some(PumpTime::from_ms(at.as_ms() + (*duration_ms - phase) as i64)))
                } else {
                    (*basal, Some(PumpTime::from_ms(at.as_ms() + (*interval_ms - phase) as i64)))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_rates_and_boundaries() {
        let text = "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"240 micrograms/day\"\n\
                    [[flex.steps]]\nstart = \"06:00\"\nrate = \"480 micrograms/day\"\n";
        let prescription = itb_dose::toml::from_toml(text).expect("valid");
        let rates = Rates::compile(&prescription, Concentration::micrograms_per_ml(2000));
        let five = PumpTime::from_ms(5 * 3_600_000);
        assert_eq!(rates.at(five), (VolumeRate::nl_per_day(120_000), Some(PumpTime::from_ms(6 * 3_600_000))));
        let six = PumpTime::from_ms(6 * 3_600_000);
        assert_eq!(rates.at(six), (VolumeRate::nl_per_day(240_000), Some(PumpTime::from_ms(MS_PER_DAY as i64))));
    }

    #[test]
    fn periodic_phases() {
        let text = "mode = \"periodic_bolus\"\n[periodic]\nbolus_dose = \"50 micrograms\"\nbolus_duration = \"1 h\"\n\
                    interval = \"6 h\"\nfirst_bolus_at = \"02:00\"\nbasal = \"120 micrograms/day\"\n";
        let prescription = itb_dose::toml::from_toml(text).expect("valid");
        let rates = Rates::compile(&prescription, Concentration::micrograms_per_ml(2000));
        let hour = 3_600_000i64;
        // 01:00: basal until 02:00.
        assert_eq!(
            rates.at(PumpTime::from_ms(hour)),
            (VolumeRate::nl_per_day(60_000), Some(PumpTime::from_ms(2 * hour)))
        );
        // 02:30: bolus (1200 + 120 micrograms/day = 0.66 mL/day) until 03:00.
        assert_eq!(
            rates.at(PumpTime::from_ms(2 * hour + hour / 2)),
            (VolumeRate::nl_per_day(660_000), Some(PumpTime::from_ms(3 * hour)))
        );
    }
}
