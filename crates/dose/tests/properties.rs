//! Property tests of the vocabulary's invariants.

use itb_dose::calc::refill::{RefillInputs, refill_schedule};
use itb_dose::prescription::{DayPattern, FlexSchedule, FlexStep, PeriodicBolus, Prescription, PtmLimits, Therapy};
use itb_dose::{Baclofen, Concentration, DoseRate, Duration, Mass, Rounding, Stability, TimeOfDay, Volume, VolumeRate};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;

fn concentration() -> impl Strategy<Value = Baclofen> {
    (10_000u64..=2_000_000).prop_map(|ng| Baclofen::new(Concentration::ng_per_ml(ng)).expect("in range"))
}

fn refill_inputs(
    dose: DoseRate,
    fill_nl: u64,
    alarm_nl: u64,
    drug: Baclofen,
    stability_days: u64,
    margin_days: u16,
) -> RefillInputs {
    RefillInputs {
        fill: Volume::nl(fill_nl),
        drug,
        daily_dose: dose,
        alarm_threshold: Volume::nl(alarm_nl.min(fill_nl)),
        stability: Stability::days(stability_days).expect("valid"),
        margin_days,
        start: Timestamp::from_second(1_780_000_000).expect("valid"),
        filled_at: None,
        zone: TimeZone::get("Europe/London").expect("bundled"),
    }
}

fn day_pattern() -> impl Strategy<Value = DayPattern> {
    (proptest::collection::btree_set(1u16..1440, 0..12), proptest::collection::vec(1u64..=5_000_000, 13)).prop_map(
        |(starts, rates)| {
            let steps = std::iter::once(0u16)
                .chain(starts)
                .zip(rates)
                .map(|(minute, rate)| FlexStep {
                    start: TimeOfDay::from_minutes(minute).expect("in day"),
                    rate: DoseRate::ng_per_day(rate),
                })
                .collect();
            DayPattern::new("flex", steps).expect("valid by construction")
        },
    )
}

fn ptm() -> impl Strategy<Value = Option<PtmLimits>> {
    proptest::option::of((1u64..=500_000, 1u64..=60, 15u64..=1440, 1u32..=24).prop_map(
        |(bolus, duration_min, lockout_min, max)| PtmLimits {
            bolus: Mass::ng(bolus),
            bolus_duration: Duration::minutes(duration_min.min(lockout_min)),
            lockout: Duration::minutes(lockout_min),
            max_per_day: max,
        },
    ))
}

fn prescription() -> impl Strategy<Value = Prescription> {
    let divisors = [10u64, 15, 20, 30, 60, 90, 120, 180, 240, 360, 480, 720, 1440];
    let therapy = prop_oneof![
        Just(Therapy::Stopped),
        (1u64..=5_000_000).prop_map(|ng| Therapy::SimpleContinuous { rate: DoseRate::ng_per_day(ng) }),
        day_pattern().prop_map(|day| Therapy::Flex(FlexSchedule::Daily(day))),
        proptest::collection::vec(day_pattern(), 7).prop_map(|days| {
            let days: [DayPattern; 7] = days.try_into().expect("seven");
            Therapy::Flex(FlexSchedule::Weekly(Box::new(days)))
        }),
        (1u64..=500_000, proptest::sample::select(divisors.to_vec()), 0u16..1440, 0u64..=5_000_000).prop_map(
            |(bolus, interval_min, first, basal)| Therapy::PeriodicBolus(PeriodicBolus {
                bolus: Mass::ng(bolus),
                bolus_duration: Duration::minutes((interval_min / 2).max(1)),
                interval: Duration::minutes(interval_min),
                first_at: TimeOfDay::from_minutes(first).expect("in day"),
                basal: DoseRate::ng_per_day(basal),
            })
        ),
    ];
    (therapy, ptm()).prop_map(|(therapy, ptm)| Prescription::new(therapy, ptm).expect("valid by construction"))
}

proptest! {
    #[test]
    fn more_dose_never_gives_a_later_refill(
        dose in 0u64..=5_000_000, extra in 0u64..=5_000_000, fill in 0u64..=40_000_000,
        alarm in 0u64..=5_000_000, drug in concentration(), stability in 1u64..=180, margin in 0u16..=30,
    ) {
        let less = refill_schedule(&refill_inputs(DoseRate::ng_per_day(dose), fill, alarm, drug, stability, margin)).expect("computes");
        let more = refill_schedule(&refill_inputs(DoseRate::ng_per_day(dose + extra), fill, alarm, drug, stability, margin)).expect("computes");
        prop_assert!(more.due_by <= less.due_by);
        prop_assert!(more.due_by <= more.expires_at);
        if let (Some(a), Some(b)) = (more.alarm_at, less.alarm_at) { prop_assert!(a <= b); }
    }

    #[test]
    fn worst_case_ptm_is_never_later(prescription in prescription(), fill in 0u64..=40_000_000, drug in concentration()) {
        let totals = prescription.daily_totals();
        let with = refill_schedule(&refill_inputs(prescription.worst_case_rate(), fill, 2_000_000, drug, 180, 0)).expect("computes");
        let without = refill_schedule(&refill_inputs(DoseRate::ng_per_day(totals.max.as_ng()), fill, 2_000_000, drug, 180, 0)).expect("computes");
        prop_assert!(with.due_by <= without.due_by);
        // The worst case is the largest day plus every bolus the limits allow in 24 hours,
        // counted here by pressing at every lockout from midnight.
        let boluses = prescription.ptm().map_or(0u64, |ptm| {
            let mut presses = 0u64;
            let mut at = 0u64;
            while at < Duration::DAY.as_ms() && presses < u64::from(ptm.max_per_day) {
                presses += 1;
                at += ptm.lockout.as_ms();
            }
            presses
        });
        let bolus = prescription.ptm().map_or(0, |ptm| ptm.bolus.as_ng());
        prop_assert_eq!(totals.max_with_ptm.as_ng(), totals.max.as_ng() + boluses * bolus);
    }

    /// The day's total equals the integral of the rate in force, minute by minute, rounded
    /// down once.
    #[test]
    fn daily_totals_equal_the_integral(day in day_pattern()) {
        let integral: u128 = (0..1440u16)
            .map(|minute| u128::from(day.rate_at(TimeOfDay::from_minutes(minute).expect("in day")).as_ng_per_day()))
            .sum();
        prop_assert_eq!(u128::from(day.total().as_ng()), integral / 1440);
    }

    #[test]
    fn prescriptions_round_trip_through_toml(prescription in prescription()) {
        let text = itb_dose::toml::to_toml(&prescription);
        let back = itb_dose::toml::from_toml(&text);
        prop_assert_eq!(back, Ok(prescription), "{}", text);
    }

    #[test]
    fn quantities_round_trip_through_text(count in any::<u64>(), minutes in 0u16..1440, ms in 0u64..=10_000_000_000_000) {
        prop_assert_eq!(Mass::ng(count).to_string().parse(), Ok(Mass::ng(count)));
        prop_assert_eq!(Volume::nl(count).to_string().parse(), Ok(Volume::nl(count)));
        prop_assert_eq!(Concentration::ng_per_ml(count).to_string().parse(), Ok(Concentration::ng_per_ml(count)));
        prop_assert_eq!(DoseRate::ng_per_day(count).to_string().parse(), Ok(DoseRate::ng_per_day(count)));
        prop_assert_eq!(VolumeRate::nl_per_day(count).to_string().parse(), Ok(VolumeRate::nl_per_day(count)));
        prop_assert_eq!(Duration::ms(ms).to_string().parse(), Ok(Duration::ms(ms)));
        let time = TimeOfDay::from_minutes(minutes).expect("in day");
        prop_assert_eq!(time.to_string().parse(), Ok(time));
    }

    /// Each conversion rounds once: down and up differ by at most one unit and bracket the
    /// exact value.
    #[test]
    fn conversions_bracket_the_exact_value(rate in 0u64..=10_000_000, ms in 0u64..=1_000_000_000_000, ng_per_ml in 1u64..=2_000_000) {
        let rate = DoseRate::ng_per_day(rate);
        let duration = Duration::ms(ms);
        let down = rate.mass_over(duration, Rounding::Down).expect("fits");
        let up = rate.mass_over(duration, Rounding::Up).expect("fits");
        let exact = u128::from(rate.as_ng_per_day()) * u128::from(ms);
        prop_assert!(u128::from(down.as_ng()) * 86_400_000 <= exact);
        prop_assert!(u128::from(up.as_ng()) * 86_400_000 >= exact);
        prop_assert!(up.as_ng() - down.as_ng() <= 1);
        let concentration = Concentration::ng_per_ml(ng_per_ml);
        let volume = rate.volume_rate_at(concentration, Rounding::Up).expect("fits");
        // Rounding the volume up never delivers less than the prescribed dose.
        prop_assert!(volume.dose_rate_at(concentration, Rounding::Up).expect("fits") >= rate);
    }
}

/// A pump's dosing history on the true timeline: (ms before now, from, to), oldest first, and
/// clock jumps (after which event, by how much) applied to its readings.
type DoseChanges = Vec<(u64, u64, u64)>;
type ClockJumps = Vec<(usize, i64)>;

fn dose_history() -> impl Strategy<Value = (DoseChanges, ClockJumps)> {
    let event = (0u64..=3 * 86_400_000, 1u64..=900, 1u64..=900);
    (prop::collection::vec(event, 1..12), prop::collection::vec((0usize..12, -3_600_000i64..=86_400_000), 0..4))
}

proptest! {
    /// The 24-hour rule answers from true time: setting the pump's clock anywhere between
    /// entries (back for summer time, forward a day) changes nothing, and the answer is the
    /// last increase within 24 hours found by brute force.
    #[test]
    fn clock_settings_never_hide_or_invent_an_increase((events, jumps) in dose_history()) {
        use itb_dose::calc::titrate::{DoseHistoryEvent, LastIncrease, last_increase};
        let mut ago: Vec<(u64, u64, u64)> = events;
        ago.sort_by_key(|change| std::cmp::Reverse(change.0));
        let now_true: i64 = 1_800_000_000_000;
        let build = |with_jumps: bool| {
            let mut offset = 0i64;
            let mut history = Vec::new();
            for (index, (before, from, to)) in ago.iter().enumerate() {
                let true_at = now_true - *before as i64;
                history.push(DoseHistoryEvent::Programmed {
                    at_pump_ms: true_at + offset,
                    from: DoseRate::micrograms_per_day(*from),
                    to: DoseRate::micrograms_per_day(*to),
                    raised: to > from,
                });
                for (_, jump) in jumps.iter().filter(|(after, _)| with_jumps && *after == index) {
                    let reading = true_at + offset;
                    history.push(DoseHistoryEvent::ClockSet { before_ms: reading, after_ms: reading + jump });
                    offset += jump;
                }
            }
            (history, now_true + offset)
        };
        let (plain, now_plain) = build(false);
        let (jumped, now_jumped) = build(true);
        let expected = ago
            .iter()
            .filter(|(before, from, to)| *before < 86_400_000 && to > from)
            .map(|(before, _, _)| Duration::ms(*before))
            .min();
        prop_assert_eq!(last_increase(&plain, true, now_plain), LastIncrease::Known(expected));
        prop_assert_eq!(last_increase(&jumped, true, now_jumped), LastIncrease::Known(expected));
    }
}
