//! The travel check a patient makes before going away: will the pump hold enough drug until
//! they are back? The answer is the refill-due date's (the earlier of the low-reservoir alarm
//! and the drug's stability limit, worst case), with a week in hand for delays on the way back.

use jiff::civil::Date;

/// Days in hand a trip should leave before the refill-due date **[model]**: a delayed flight
/// or a missed train must not take a patient past it.
pub const MARGIN_DAYS: i64 = 7;

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Back with a week or more in hand.
    Holds,
    /// Back before the refill is due, but with less than a week in hand.
    Tight,
    /// Back after the refill is due: the refill must come first.
    RefillFirst,
    /// The refill is already overdue: it comes before anything else.
    Overdue,
}

impl Verdict {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Tight => "tight",
            Verdict::RefillFirst => "refill_first",
            Verdict::Overdue => "overdue",
        }
    }
}

/// The answer, with the sentence a patient reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TravelCheck {
    /// The verdict.
    pub verdict: Verdict,
    /// Days from the return to the refill-due date (negative: after it).
    pub days_in_hand: i64,
    /// What to do, in plain words.
    pub sentence: String,
}

/// Why a travel check cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TravelError {
    /// The return date is already past.
    #[error("the date you come back, {0}, is in the past: give the day you will be home")]
    BackInThePast(String),
}

/// Whether a pump due for a refill by `due_on` holds enough until the patient is back on
/// `back_on`, asked on `today`.
pub fn check(back_on: Date, due_on: Date, today: Date) -> Result<TravelCheck, TravelError> {
    if back_on < today {
        return Err(TravelError::BackInThePast(crate::text::civil_date(back_on)));
    }
    let days_in_hand = back_on.until(due_on).map(|span| i64::from(span.get_days())).unwrap_or(0);
    let (back, due) = (crate::text::civil_date(back_on), crate::text::civil_date(due_on));
    let later = match days_in_hand {
        0 => "on the day you are back".to_owned(),
        1 => "the day after you are back".to_owned(),
        n => format!("{n} days after you are back"),
    };
    let (verdict, sentence) = if due_on < today {
        (
            Verdict::Overdue,
            format!(
                "No. Your refill is overdue: it was due by {due}. Call the service today, and do not travel until your pump has been refilled."
            ),
        )
    } else if days_in_hand >= MARGIN_DAYS {
        (
            Verdict::Holds,
            format!(
                "Yes. Your pump should hold enough drug until you are back on {back}: your refill is due by {due}, {later}. Keep your refill appointment."
            ),
        )
    } else if days_in_hand >= 0 {
        (
            Verdict::Tight,
            format!(
                "Only just. Your refill is due by {due}, {later} on {back}, so a delay on the way home could take you past it. Call the service before you go to bring your refill forward."
            ),
        )
    } else {
        (
            Verdict::RefillFirst,
            format!(
                "No. Your refill is due by {due}, before you are back on {back}. Call the service now to have your pump refilled before you go. Do not travel without a refill: running out can cause dangerous withdrawal."
            ),
        )
    };
    Ok(TravelCheck { verdict, days_in_hand, sentence })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn a_week_in_hand_holds_less_is_tight_and_after_the_due_date_the_refill_comes_first() {
        let today = date(2026, 11, 25);
        let due = date(2026, 12, 23);
        let holds = check(date(2026, 12, 16), due, today).expect("checks");
        assert_eq!((holds.verdict, holds.days_in_hand), (Verdict::Holds, 7));
        assert!(holds.sentence.starts_with("Yes. "), "{}", holds.sentence);
        assert_eq!(
            holds.sentence,
            "Yes. Your pump should hold enough drug until you are back on 16 Dec 2026: your refill is due by 23 Dec 2026, 7 days after you are back. Keep your refill appointment."
        );
        let tight = check(date(2026, 12, 17), due, today).expect("checks");
        assert_eq!((tight.verdict, tight.days_in_hand), (Verdict::Tight, 6));
        let same_day = check(due, due, today).expect("checks");
        assert_eq!((same_day.verdict, same_day.days_in_hand), (Verdict::Tight, 0));
        assert!(
            same_day.sentence.contains("23 Dec 2026, on the day you are back on 23 Dec 2026"),
            "{}",
            same_day.sentence
        );
        let next_day = check(date(2026, 12, 22), due, today).expect("checks");
        assert!(next_day.sentence.contains("the day after you are back"), "{}", next_day.sentence);
        // Overdue already: whatever the trip, the refill comes first.
        let overdue = check(date(2026, 11, 26), date(2026, 11, 22), today).expect("checks");
        assert_eq!(overdue.verdict, Verdict::Overdue);
        assert!(
            overdue.sentence.starts_with("No. Your refill is overdue: it was due by 22 Nov 2026."),
            "{}",
            overdue.sentence
        );
        let late = check(date(2026, 12, 24), due, today).expect("checks");
        assert_eq!((late.verdict, late.days_in_hand), (Verdict::RefillFirst, -1));
        assert!(late.sentence.contains("before you go"));
        assert_eq!(check(date(2026, 11, 24), due, today), Err(TravelError::BackInThePast("24 Nov 2026".to_owned())));
    }
}
