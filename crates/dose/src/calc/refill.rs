//! The refill schedule: when the low-reservoir alarm sounds, when the reservoir runs dry, when
//! the drug expires, and so when the refill is due.
//!
//! # Rounding
//! - The daily volume is rounded **up** to the nanolitre: the pump ([`pump_volume_rate`]) runs at
//!   exactly this rate, so the pump and this calculation agree to the millisecond, and rounding
//!   up brings every date forward, never back.
//! - Times to the alarm and to empty are rounded **down** to the millisecond; the instants built
//!   from them are rounded **down** to the whole second.
//! - The margin is whole days of 24 hours, taken from the earlier limit.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::drug::{Baclofen, Stability};
use crate::quantity::{DoseRate, Duration, Rounding, Volume, VolumeRate};

/// The volume rate a pump runs to deliver `dose` from `drug`: rounded up to the nanolitre per
/// day (see the module's rounding rules). `None` only on overflow.
pub fn pump_volume_rate(dose: DoseRate, drug: Baclofen) -> Option<VolumeRate> {
    dose.volume_rate_at(drug.concentration(), Rounding::Up)
}

/// What a refill schedule is computed from.
#[derive(Debug, Clone)]
pub struct RefillInputs {
    /// The volume in the reservoir at `start`.
    pub fill: Volume,
    /// The drug in the reservoir.
    pub drug: Baclofen,
    /// The worst-case daily dose: the largest day of the prescription, with every allowed PTM
    /// bolus taken (see [`crate::Prescription::worst_case_rate`]).
    pub daily_dose: DoseRate,
    /// The low-reservoir alarm threshold.
    pub alarm_threshold: Volume,
    /// How long the drug may stay in the reservoir.
    pub stability: Stability,
    /// Days before the earlier limit that the service wants the refill done.
    pub margin_days: u16,
    /// When the reservoir held `fill`.
    pub start: Timestamp,
    /// When the drug went into the reservoir, if before `start` (a pump interrogated weeks
    /// after its refill): the stability limit runs from here. `None`: at `start`.
    pub filled_at: Option<Timestamp>,
    /// The service's time zone, for the refill-due date.
    pub zone: TimeZone,
}

/// Which limit sets the refill date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefillLimit {
    /// The low-reservoir alarm comes first (or at the same time as expiry).
    LowReservoirAlarm,
    /// The drug expires first.
    DrugStability,
}

impl RefillLimit {
    /// The name used in JSON and files.
    pub fn as_str(self) -> &'static str {
        match self {
            RefillLimit::LowReservoirAlarm => "low_reservoir_alarm",
            RefillLimit::DrugStability => "drug_stability",
        }
    }
    /// A phrase for people.
    pub fn describe(self) -> &'static str {
        match self {
            RefillLimit::LowReservoirAlarm => "the low-reservoir alarm",
            RefillLimit::DrugStability => "the drug's stability limit",
        }
    }
}

/// The schedule. Times are `None` when nothing is delivered (a stopped pump never alarms for
/// low reservoir, but its drug still expires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefillSchedule {
    /// The daily dose assumed.
    pub daily_dose: DoseRate,
    /// The volume the pump moves each day.
    pub daily_volume: VolumeRate,
    /// From start to the low-reservoir alarm.
    pub to_alarm: Option<Duration>,
    /// From start to an empty reservoir.
    pub to_empty: Option<Duration>,
    /// The low-reservoir alarm instant.
    pub alarm_at: Option<Timestamp>,
    /// The empty-reservoir instant.
    pub empty_at: Option<Timestamp>,
    /// The drug-expiry instant.
    pub expires_at: Timestamp,
    /// The instant by which the refill must be done.
    pub due_by: Timestamp,
    /// The refill-due date in the service's time zone.
    pub due_on: Date,
    /// Which limit set the date.
    pub limited_by: RefillLimit,
}

/// Why a refill schedule cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefillError {
    /// The alarm threshold is above the fill.
    #[error(
        "the low-reservoir alarm threshold ({alarm}) is above the fill volume ({fill}); it must be at most the fill"
    )]
    AlarmAboveFill {
        /// The threshold.
        alarm: Volume,
        /// The fill.
        fill: Volume,
    },
    /// Numbers too large to place in time.
    #[error("the refill dates fall outside the calendar; check the fill volume, dose and start")]
    OutOfCalendar,
}

fn add(start: Timestamp, duration: Duration) -> Result<Timestamp, RefillError> {
    let at = start.checked_add(duration.to_signed()).map_err(|_| RefillError::OutOfCalendar)?;
    // Round down to the whole second: never later than the truth.
    Timestamp::from_second(at.as_second()).map_err(|_| RefillError::OutOfCalendar)
}

/// Computes the refill schedule.
pub fn refill_schedule(inputs: &RefillInputs) -> Result<RefillSchedule, RefillError> {
    if inputs.alarm_threshold > inputs.fill {
        return Err(RefillError::AlarmAboveFill { alarm: inputs.alarm_threshold, fill: inputs.fill });
    }
    let daily_volume = pump_volume_rate(inputs.daily_dose, inputs.drug).ok_or(RefillError::OutOfCalendar)?;
    let above_alarm = inputs.fill.saturating_sub(inputs.alarm_threshold);
    let to_alarm = daily_volume.time_to_move(above_alarm, Rounding::Down);
    let to_empty = daily_volume.time_to_move(inputs.fill, Rounding::Down);
    let alarm_at = to_alarm.map(|d| add(inputs.start, d)).transpose()?;
    let empty_at = to_empty.map(|d| add(inputs.start, d)).transpose()?;
    let expires_at = add(inputs.filled_at.unwrap_or(inputs.start), inputs.stability.duration())?;
    let (limit_at, limited_by) = match alarm_at {
        Some(alarm) if alarm <= expires_at => (alarm, RefillLimit::LowReservoirAlarm),
        _ => (expires_at, RefillLimit::DrugStability),
    };
    let margin = Duration::days(u64::from(inputs.margin_days)).to_signed();
    let due_by = limit_at.checked_sub(margin).map_err(|_| RefillError::OutOfCalendar)?;
    let due_on = inputs.zone.to_datetime(due_by).date();
    Ok(RefillSchedule {
        daily_dose: inputs.daily_dose,
        daily_volume,
        to_alarm,
        to_empty,
        alarm_at,
        empty_at,
        expires_at,
        due_by,
        due_on,
        limited_by,
    })
}

/// The volume the record expects in the reservoir `elapsed` after it held `fill` of `drug`,
/// delivering `mean_day` a day: what the nurse should withdraw at a refill when no
/// interrogation gives the pump's own estimate. The volume moved is rounded up (as the pump's
/// rate is) and never more than the fill. PTM boluses the patient took are not in the record:
/// less may come out than this; an interrogation before the refill gives the pump's count.
pub fn expected_reservoir(fill: Volume, drug: Baclofen, mean_day: DoseRate, elapsed: Duration) -> Volume {
    let moved = pump_volume_rate(mean_day, drug).and_then(|rate| rate.volume_over(elapsed, Rounding::Up));
    moved.map_or(Volume::ZERO, |moved| fill.saturating_sub(moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::Concentration;

    #[test]
    fn expected_reservoir_after_ten_days_of_400_micrograms_a_day_at_2000() {
        // 400 micrograms/day at 2000 micrograms/mL moves 0.2 mL a day: 2 mL in 10 days.
        let drug = Baclofen::new(Concentration::micrograms_per_ml(2000)).expect("in range");
        let left = expected_reservoir(Volume::ml(20), drug, DoseRate::micrograms_per_day(400), Duration::days(10));
        assert_eq!(left, Volume::ml(18));
        let dry = expected_reservoir(Volume::ml(2), drug, DoseRate::micrograms_per_day(400), Duration::days(30));
        assert_eq!(dry, Volume::ZERO);
    }

    fn inputs(fill_ml: u64, concentration: u64, dose: u64) -> RefillInputs {
        RefillInputs {
            fill: Volume::ml(fill_ml),
            drug: Baclofen::new(Concentration::micrograms_per_ml(concentration)).expect("in range"),
            daily_dose: DoseRate::micrograms_per_day(dose),
            alarm_threshold: Volume::ml(2),
            stability: Stability::default(),
            margin_days: 0,
            start: "2026-11-25T10:00:00Z".parse().expect("valid"),
            filled_at: None,
            zone: TimeZone::get("Europe/London").expect("bundled zone"),
        }
    }

    /// (fill mL, concentration, dose/day, margin) -> (days to alarm, due on, limited by)
    #[test]
    fn worked_examples() {
        type Case = ((u64, u64, u64, u16), (Option<u64>, &'static str, RefillLimit));
        let cases: &[Case] = &[
            // 20 mL of 2000 at 400/day: 0.2 mL/day; 18 mL to the alarm = 90 days.
            ((20, 2000, 400, 0), (Some(90), "2027-02-23", RefillLimit::LowReservoirAlarm)),
            // The same with a 7-day margin.
            ((20, 2000, 400, 7), (Some(90), "2027-02-16", RefillLimit::LowReservoirAlarm)),
            // 40 mL of 2000 at 200/day: 0.1 mL/day; 380 days to the alarm; expiry at 180 wins.
            ((40, 2000, 200, 0), (Some(380), "2027-05-24", RefillLimit::DrugStability)),
            // 20 mL of 500 at 100/day: 0.2 mL/day; 90 days.
            ((20, 500, 100, 0), (Some(90), "2027-02-23", RefillLimit::LowReservoirAlarm)),
            // 40 mL of 500 at 100/day: 0.2 mL/day; 38 mL to the alarm = 190 days; expiry wins.
            ((40, 500, 100, 0), (Some(190), "2027-05-24", RefillLimit::DrugStability)),
        ];
        for &((fill, conc, dose, margin), (days, due_on, limit)) in cases {
            let mut input = inputs(fill, conc, dose);
            input.margin_days = margin;
            let schedule = refill_schedule(&input).expect("computes");
            assert_eq!(schedule.to_alarm, days.map(Duration::days), "{fill} {conc} {dose}");
            assert_eq!(schedule.due_on.to_string(), due_on, "{fill} {conc} {dose} {margin}");
            assert_eq!(schedule.limited_by, limit, "{fill} {conc} {dose}");
        }
    }

    #[test]
    fn a_tie_between_alarm_and_expiry_names_the_alarm() {
        let mut input = inputs(20, 2000, 400);
        input.stability = Stability::days(90).expect("valid");
        let schedule = refill_schedule(&input).expect("computes");
        assert_eq!(schedule.alarm_at, Some(schedule.expires_at));
        assert_eq!(schedule.limited_by, RefillLimit::LowReservoirAlarm);
    }

    #[test]
    fn uneven_volumes_round_toward_the_earlier_date() {
        // 20 mL of 2000 at 333/day: 0.1665 mL/day; 18 / 0.1665 = 108.108108... days.
        let schedule = refill_schedule(&inputs(20, 2000, 333)).expect("computes");
        assert_eq!(schedule.daily_volume, VolumeRate::nl_per_day(166_500));
        // 18_000_000 nL * 86_400_000 ms / 166_500 nL = 9_340_540_540.54 ms, rounded down; the
        // alarm instant is rounded down to the second.
        assert_eq!(schedule.to_alarm, Some(Duration::ms(9_340_540_540)));
        assert_eq!(schedule.alarm_at.map(|at| at.as_second() - input_start()), Some(9_340_540));
        // 100 micrograms/day of 1500 micrograms/mL: 0.0666... mL/day rounds up to 66_667 nL/day.
        let thirds = refill_schedule(&inputs(20, 1500, 100)).expect("computes");
        assert_eq!(thirds.daily_volume, VolumeRate::nl_per_day(66_667));
    }

    fn input_start() -> i64 {
        inputs(20, 2000, 400).start.as_second()
    }

    #[test]
    fn a_stopped_pump_is_due_at_expiry() {
        let schedule = refill_schedule(&inputs(20, 2000, 0)).expect("computes");
        assert_eq!(schedule.alarm_at, None);
        assert_eq!(schedule.limited_by, RefillLimit::DrugStability);
        assert_eq!(schedule.due_on.to_string(), "2027-05-24");
    }

    #[test]
    fn the_due_date_is_the_local_date() {
        // 23:30 UTC on 1 July is 00:30 BST on 2 July in London: the local date is the 2nd.
        let mut input = inputs(20, 2000, 400);
        input.start = "2027-04-02T23:30:00Z".parse().expect("valid");
        let schedule = refill_schedule(&input).expect("computes");
        assert_eq!(schedule.due_by.to_string(), "2027-07-01T23:30:00Z");
        assert_eq!(schedule.due_on.to_string(), "2027-07-02");
    }

    #[test]
    fn the_drug_expires_from_its_fill_not_from_the_reading() {
        // Read 100 days after a refill of 20 mL at 2000 micrograms/mL, 100 micrograms/day
        // (0.05 mL/day, 15 mL left): the alarm is 260 days away, the drug expires in 80.
        let mut input = inputs(15, 2000, 100);
        let filled: Timestamp = "2026-08-17T10:00:00Z".parse().expect("valid");
        input.filled_at = Some(filled);
        let schedule = refill_schedule(&input).expect("computes");
        assert_eq!(schedule.expires_at.to_string(), "2027-02-13T10:00:00Z");
        assert_eq!(schedule.limited_by, RefillLimit::DrugStability);
        assert_eq!(schedule.due_on.to_string(), "2027-02-13");
    }

    #[test]
    fn an_alarm_above_the_fill_is_refused() {
        let mut input = inputs(1, 2000, 400);
        input.alarm_threshold = Volume::ml(2);
        assert!(matches!(refill_schedule(&input), Err(RefillError::AlarmAboveFill { .. })));
    }
}
