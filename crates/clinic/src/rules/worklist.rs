//! The refill worklist's rules: a pump's refill-due date from the record, and its bucket on a
//! given day.
//!
//! The date itself is `itb-dose`'s rule ([`itb_dose::review::figures`], the same as `itb calc
//! refill` and the programmer's reading of a pump's status): from the latest refill or
//! interrogation (the reservoir then, the drug and when it went in), the prescription in force
//! with every allowed PTM bolus taken, the pump's alarm threshold, the drug's stability and the
//! service margin.

use itb_dose::review::{PumpSide, RefillPolicy, figures};
use itb_dose::{Concentration, Prescription, Volume};
use jiff::Timestamp;
use jiff::civil::Date;

/// Where the record's knowledge of a pump's reservoir comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// When the reservoir held `reservoir`.
    pub at: Timestamp,
    /// The reservoir then.
    pub reservoir: Volume,
    /// The drug in it.
    pub concentration: Concentration,
    /// When that drug went in.
    pub filled_at: Timestamp,
    /// The pump's low-reservoir alarm threshold.
    pub alarm_threshold: Volume,
    /// The prescription in force, if any.
    pub prescription: Option<Prescription>,
    /// When the pump said its low-reservoir alarm sounded, if it had by `at`.
    pub alarm_sounded_at: Option<Timestamp>,
}

/// A pump's refill-due figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The instant by which the refill must be done.
    pub due_by: Timestamp,
    /// Its date in the service's zone.
    pub due_on: Date,
    /// When the low-reservoir alarm will sound (`None`: the pump delivers nothing).
    pub alarm_at: Option<Timestamp>,
    /// When the drug in the reservoir expires.
    pub expires_at: Timestamp,
    /// Which limit sets the date: `low_reservoir_alarm` or `drug_stability`.
    pub limited_by: &'static str,
}

/// The refill-due figures, or why none can be computed (the pump is `unknown`: interrogate).
pub fn refill_due(reference: &Reference, policy: &RefillPolicy) -> Result<Due, String> {
    let Some(prescription) = reference.prescription.clone() else {
        return Err("no prescription is on record for this pump: record one or interrogate the pump".to_owned());
    };
    let side = PumpSide {
        delivering: true,
        prescription: Some(prescription),
        concentration: reference.concentration,
        reservoir: reference.reservoir,
        alarm_threshold: reference.alarm_threshold,
        filled_at: Some(reference.filled_at),
    };
    let figures = figures(&side, reference.at, policy);
    let schedule = figures.schedule.ok_or_else(|| {
        format!(
            "no refill date can be computed from the record (drug of {}); interrogate the pump",
            itb_dose::text::concentration(reference.concentration)
        )
    })?;
    if reference.reservoir <= reference.alarm_threshold {
        // The alarm has already sounded: its instant is the pump's word, or the record's
        // estimate back from the reading (at the worst-case rate, rounded to the earlier
        // instant); the refill was due then, never later because of a later reading.
        let below = reference.alarm_threshold.saturating_sub(reference.reservoir);
        let back = figures.daily_volume.time_to_move(below, itb_dose::Rounding::Up).unwrap_or(itb_dose::Duration::ZERO);
        let estimated = reference.at.checked_sub(back.to_signed()).unwrap_or(reference.at);
        let alarm_at = reference.alarm_sounded_at.unwrap_or(estimated).min(reference.at);
        let (limit, limited_by) = if alarm_at <= schedule.expires_at {
            (alarm_at, "low_reservoir_alarm")
        } else {
            (schedule.expires_at, "drug_stability")
        };
        let margin = jiff::SignedDuration::from_hours(24 * i64::from(policy.margin_days));
        let due_by = Timestamp::from_second(limit.checked_sub(margin).unwrap_or(limit).as_second()).unwrap_or(limit);
        return Ok(Due {
            due_by,
            due_on: policy.zone.to_datetime(due_by).date(),
            alarm_at: Some(alarm_at),
            expires_at: schedule.expires_at,
            limited_by,
        });
    }
    Ok(Due {
        due_by: schedule.due_by,
        due_on: schedule.due_on,
        alarm_at: schedule.alarm_at,
        expires_at: schedule.expires_at,
        limited_by: schedule.limited_by.as_str(),
    })
}

/// Days before the refill-due date a next refill is offered for **[model]**: a week in hand for
/// a cancelled clinic or a missed visit.
pub const BOOK_DAYS_BEFORE_DUE: i64 = 7;

/// The date offered for the next refill: a week before it is due, but never before `today`.
pub fn suggested_booking(due_on: Date, today: Date) -> Date {
    due_on.checked_sub(jiff::Span::new().days(BOOK_DAYS_BEFORE_DUE)).unwrap_or(due_on).max(today)
}

/// A bucket of the worklist, in the order the worklist shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// The refill-due date is before the day.
    Overdue,
    /// No date can be computed: interrogate. Never shown as fine.
    Unknown,
    /// Due within 7 days (the day itself to 7 days after).
    Due7,
    /// Due within 28 days.
    Due28,
    /// Due later.
    Later,
}

impl Bucket {
    /// Every bucket, in worklist order: overdue first, then the pumps whose date is unknown
    /// (they may be overdue), then by date.
    pub const ALL: [Bucket; 5] = [Bucket::Overdue, Bucket::Unknown, Bucket::Due7, Bucket::Due28, Bucket::Later];
    /// The name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Overdue => "overdue",
            Bucket::Unknown => "unknown",
            Bucket::Due7 => "due_7",
            Bucket::Due28 => "due_28",
            Bucket::Later => "later",
        }
    }
    /// The range of refill-due dates in this bucket on `on`: from (inclusive) and before
    /// (exclusive); `None` for [`Bucket::Unknown`], which has no date.
    pub fn dates(self, on: Date) -> Option<(Option<Date>, Option<Date>)> {
        let plus = |days: i64| on.checked_add(jiff::Span::new().days(days)).ok();
        match self {
            Bucket::Overdue => Some((None, Some(on))),
            Bucket::Unknown => None,
            Bucket::Due7 => Some((Some(on), plus(8))),
            Bucket::Due28 => Some((plus(8), plus(29))),
            Bucket::Later => Some((plus(29), None)),
        }
    }
    /// The bucket of a pump due on `due_on` (`None`: unknown), seen on `on`.
    pub fn of(due_on: Option<Date>, on: Date) -> Bucket {
        let Some(due_on) = due_on else { return Bucket::Unknown };
        Bucket::ALL
            .into_iter()
            .find(|bucket| {
                bucket.dates(on).is_some_and(|(from, before)| {
                    from.is_none_or(|from| due_on >= from) && before.is_none_or(|before| due_on < before)
                })
            })
            .unwrap_or(Bucket::Later)
    }
}

/// A booking falls after the refill-due date: the pump will run past its date.
pub fn booking_after_due(booked_on: Option<Date>, due_on: Option<Date>) -> bool {
    matches!((booked_on, due_on), (Some(booked), Some(due)) if booked > due)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_refill_is_offered_a_week_before_it_is_due_but_never_in_the_past() {
        let today = jiff::civil::date(2026, 11, 25);
        assert_eq!(suggested_booking(jiff::civil::date(2027, 2, 23), today), jiff::civil::date(2027, 2, 16));
        assert_eq!(suggested_booking(jiff::civil::date(2026, 11, 29), today), today);
        assert_eq!(suggested_booking(jiff::civil::date(2026, 11, 20), today), today);
    }

    use super::*;
    use jiff::civil::date;

    #[test]
    fn buckets_on_25_nov_2026() {
        let on = date(2026, 11, 25);
        assert_eq!(Bucket::of(None, on), Bucket::Unknown);
        assert_eq!(Bucket::of(Some(date(2026, 11, 24)), on), Bucket::Overdue);
        assert_eq!(Bucket::of(Some(date(2026, 11, 25)), on), Bucket::Due7);
        assert_eq!(Bucket::of(Some(date(2026, 12, 2)), on), Bucket::Due7);
        assert_eq!(Bucket::of(Some(date(2026, 12, 3)), on), Bucket::Due28);
        assert_eq!(Bucket::of(Some(date(2026, 12, 23)), on), Bucket::Due28);
        assert_eq!(Bucket::of(Some(date(2026, 12, 24)), on), Bucket::Later);
    }

    #[test]
    fn a_booking_after_the_due_date_is_flagged_and_on_it_is_not() {
        assert!(booking_after_due(Some(date(2026, 12, 3)), Some(date(2026, 12, 2))));
        assert!(!booking_after_due(Some(date(2026, 12, 2)), Some(date(2026, 12, 2))));
        assert!(!booking_after_due(None, Some(date(2026, 12, 2))));
    }

    #[test]
    fn due_date_is_the_alarm_at_400_micrograms_a_day_from_20_ml_at_2000() {
        // 400 micrograms/day at 2000 micrograms/mL is 0.2 mL/day; 18 mL above a 2 mL alarm: 90 days.
        let reference = Reference {
            at: "2026-11-25T10:00:00Z".parse().expect("instant"),
            reservoir: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            filled_at: "2026-11-25T10:00:00Z".parse().expect("instant"),
            alarm_threshold: Volume::ml(2),
            prescription: Some(
                Prescription::simple_continuous(itb_dose::DoseRate::micrograms_per_day(400)).expect("rx"),
            ),
            alarm_sounded_at: None,
        };
        let policy = RefillPolicy { margin_days: 0, ..RefillPolicy::default() };
        let due = refill_due(&reference, &policy).expect("computed");
        assert_eq!(due.alarm_at, Some("2027-02-23T10:00:00Z".parse().expect("instant")));
        assert_eq!(due.due_on, date(2027, 2, 23));
        assert_eq!(due.limited_by, "low_reservoir_alarm");
        // Read 93 days after the fill, 1.4 mL left: the alarm sounded 3 days before (0.6 mL
        // below the 2 mL threshold at 0.2 mL a day), and the refill stays overdue.
        let late = Reference {
            at: "2027-02-26T10:00:00Z".parse().expect("instant"),
            reservoir: Volume::nl(1_400_000),
            ..reference.clone()
        };
        let due_late = refill_due(&late, &policy).expect("computed");
        assert_eq!(due_late.alarm_at, Some("2027-02-23T10:00:00Z".parse().expect("instant")));
        assert_eq!(due_late.due_on, date(2027, 2, 23));
        let told = Reference { alarm_sounded_at: Some("2027-02-23T09:00:00Z".parse().expect("instant")), ..late };
        assert_eq!(
            refill_due(&told, &policy).expect("computed").alarm_at,
            Some("2027-02-23T09:00:00Z".parse().expect("instant"))
        );
        let none = Reference { prescription: None, ..reference };
        assert!(refill_due(&none, &policy).is_err());
    }

    proptest::proptest! {
        #[test]
        fn every_date_falls_in_exactly_one_bucket(offset in -400i64..400) {
            let on = date(2026, 11, 25);
            let due = on.checked_add(jiff::Span::new().days(offset)).expect("date");
            let count = Bucket::ALL.iter().filter(|b| b.dates(on).is_some_and(|(from, before)| {
                from.is_none_or(|f| due >= f) && before.is_none_or(|b| due < b)
            })).count();
            proptest::prop_assert_eq!(count, 1);
        }
    }
}
