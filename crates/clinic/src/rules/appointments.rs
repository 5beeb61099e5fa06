//! Appointments: their kinds, the states they move through, and the dates surgery calls for.

use jiff::civil::Date;

/// What an appointment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A refill of the pump.
    Refill,
    /// The wound check 10 days after surgery.
    WoundCheck,
    /// The neurosurgical follow-up 6-8 weeks after surgery.
    NeurosurgicalFollowUp,
    /// A review of the dose.
    DoseReview,
    /// The annual review.
    AnnualReview,
    /// Replacement of a pump whose battery is ending.
    BatteryReplacement,
    /// The check of the pump after an MRI scan (the motor may stall in the magnet).
    PostMriCheck,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Refill,
        Kind::WoundCheck,
        Kind::NeurosurgicalFollowUp,
        Kind::DoseReview,
        Kind::AnnualReview,
        Kind::BatteryReplacement,
        Kind::PostMriCheck,
    ];
    /// The name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Refill => "refill",
            Kind::WoundCheck => "wound_check",
            Kind::NeurosurgicalFollowUp => "neurosurgical_follow_up",
            Kind::DoseReview => "dose_review",
            Kind::AnnualReview => "annual_review",
            Kind::BatteryReplacement => "battery_replacement",
            Kind::PostMriCheck => "post_mri_check",
        }
    }
    /// Reads a name.
    pub fn parse(text: &str) -> Result<Kind, String> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("'{}' is not a kind of appointment; use one of {}", short(text), names.join(", "))
        })
    }
}

/// Where an appointment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Asked for, no date yet (or a suggested one).
    Requested,
    /// Booked for a date.
    Scheduled,
    /// The patient is here.
    Arrived,
    /// Done.
    Completed,
    /// Called off.
    Cancelled,
    /// The patient did not come.
    Missed,
}

impl State {
    /// Every state.
    pub const ALL: [State; 6] =
        [State::Requested, State::Scheduled, State::Arrived, State::Completed, State::Cancelled, State::Missed];
    /// The name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Scheduled => "scheduled",
            State::Arrived => "arrived",
            State::Completed => "completed",
            State::Cancelled => "cancelled",
            State::Missed => "missed",
        }
    }
    /// Reads a name.
    pub fn parse(text: &str) -> Result<State, String> {
        State::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = State::ALL.iter().map(|k| k.as_str()).collect();
            format!("'{}' is not an appointment state; use one of {}", short(text), names.join(", "))
        })
    }
    /// Still to happen (counts as the booking of its kind).
    pub fn is_open(self) -> bool {
        matches!(self, State::Requested | State::Scheduled | State::Arrived)
    }
}

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Whether an appointment may move from `from` to `to`, and why not. A scheduled appointment
/// may be scheduled again (moved to another date); completed, cancelled and missed are final.
pub fn transition(from: State, to: State, has_date: bool) -> Result<(), String> {
    use State as S;
    let allowed = match from {
        S::Requested => matches!(to, S::Scheduled | S::Cancelled),
        S::Scheduled => matches!(to, S::Scheduled | S::Arrived | S::Cancelled | S::Missed),
        S::Arrived => matches!(to, S::Completed | S::Cancelled),
        S::Completed | S::Cancelled | S::Missed => false,
    };
    if !allowed {
        return Err(format!(
            "an appointment that is {} cannot become {}{}",
            from.as_str(),
            to.as_str(),
            if matches!(from, S::Completed | S::Cancelled | S::Missed) { ": it is closed; book a new one" } else { "" }
        ));
    }
    if to == S::Scheduled && !has_date {
        return Err("a scheduled appointment needs its date (on)".to_owned());
    }
    Ok(())
}

/// The follow-ups an implant calls for: the wound check 10 days after, and the neurosurgical
/// follow-up 6 weeks after (the window closes at 8 weeks).
pub fn after_surgery(surgery_on: Date) -> Vec<(Kind, Date)> {
    let plus = |days: i64| surgery_on.checked_add(jiff::Span::new().days(days)).unwrap_or(surgery_on);
    vec![(Kind::WoundCheck, plus(10)), (Kind::NeurosurgicalFollowUp, plus(42))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn closed_appointments_stay_closed_and_scheduling_needs_a_date() {
        assert!(transition(State::Requested, State::Scheduled, true).is_ok());
        assert!(transition(State::Requested, State::Scheduled, false).is_err());
        assert!(transition(State::Scheduled, State::Arrived, true).is_ok());
        assert!(transition(State::Arrived, State::Completed, true).is_ok());
        assert!(transition(State::Requested, State::Completed, true).is_err());
        for closed in [State::Completed, State::Cancelled, State::Missed] {
            for to in State::ALL {
                assert!(transition(closed, to, true).is_err());
            }
        }
    }

    #[test]
    fn wound_check_at_10_days_follow_up_at_6_weeks() {
        assert_eq!(
            after_surgery(date(2026, 11, 25)),
            vec![(Kind::WoundCheck, date(2026, 12, 5)), (Kind::NeurosurgicalFollowUp, date(2027, 1, 6))]
        );
    }
}
