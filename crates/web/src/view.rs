//! Text for people from the record's JSON: dates as `25 Nov 2026`, volumes in mL, doses in
//! micrograms written in full, NHS numbers 3-3-4, and the status tags.

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::Value;

/// `25 Nov 2026` from a `YYYY-MM-DD` date or an RFC 3339 instant (in the service's zone);
/// "not known" when absent.
pub fn date(value: &Value) -> String {
    value.as_str().map_or_else(|| "not known".to_owned(), date_text)
}

/// As [`date`], from text.
pub fn date_text(text: &str) -> String {
    if let Ok(day) = text.parse::<Date>() {
        return itb_dose::text::civil_date(day);
    }
    match text.parse::<Timestamp>() {
        Ok(at) => itb_dose::text::date(at, &itb_dose::text::service_zone()),
        Err(_) => text.to_owned(),
    }
}

/// A date a person typed: `2026-12-20` (what a date picker sends), or day, month and year as
/// `20/12/2026`, `20 12 2026` or `20-12-2026`.
pub fn parse_day(text: &str) -> Option<Date> {
    let text = text.trim();
    if let Ok(day) = text.parse::<Date>() {
        return Some(day);
    }
    let parts: Vec<&str> = text.split(['/', ' ', '-', '.']).filter(|p| !p.is_empty()).collect();
    let [d, m, y] = parts.as_slice() else { return None };
    let (d, m, y) = (d.parse::<i8>().ok()?, m.parse::<i8>().ok()?, y.parse::<i16>().ok()?);
    if !(1900..=2200).contains(&y) {
        return None;
    }
    Date::new(y, m, d).ok()
}

/// As [`when`], with `absent` when there is none.
pub fn when_or(value: &Value, absent: &str) -> String {
    if value.is_null() { absent.to_owned() } else { when(value) }
}

/// `about 6 years and 10 months`, `about 45 days`: a long span of days for reading.
pub fn days_left(value: &Value) -> String {
    let Some(days) = value.as_i64() else { return "not known".to_owned() };
    if days < 90 {
        return format!("about {days} {}", if days == 1 { "day" } else { "days" });
    }
    let (years, months) = (days / 365, (days % 365) / 30);
    let unit = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match (years, months) {
        (0, m) => format!("about {}", unit(m, "month", "months")),
        (y, 0) => format!("about {}", unit(y, "year", "years")),
        (y, m) => format!("about {} and {}", unit(y, "year", "years"), unit(m, "month", "months")),
    }
}

/// `Wed 25 Nov 2026 10:00` from an RFC 3339 instant.
pub fn when(value: &Value) -> String {
    match value.as_str().and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(at) => itb_dose::text::date_time(at, &itb_dose::text::service_zone()),
        None => "not known".to_owned(),
    }
}

/// The day an instant or date falls on, in the service's zone.
pub fn day_of(value: &Value) -> Option<Date> {
    let text = value.as_str()?;
    if let Ok(day) = text.parse::<Date>() {
        return Some(day);
    }
    let at = text.parse::<Timestamp>().ok()?;
    Some(itb_dose::text::service_zone().to_datetime(at).date())
}

/// A number of the record (exact decimal) as written.
pub fn number(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => "not known".to_owned(),
    }
}

/// `20 mL`, to the 0.01 mL a person reads (the record keeps it to the nanolitre).
pub fn ml(value: &Value) -> String {
    match itb_clinic::model::read_ml("", value) {
        Ok(volume) => itb_dose::text::volume(volume),
        Err(_) => "not known".to_owned(),
    }
}

/// `0.175 mL`: a small volume (a day's) to the microlitre.
pub fn ml_fine(value: &Value) -> String {
    match itb_clinic::model::read_ml("", value) {
        Ok(volume) => itb_dose::text::volume_fine(volume),
        Err(_) => "not known".to_owned(),
    }
}

/// `414.29 micrograms a day`: a daily dose to the 0.01 micrograms a person reads.
pub fn per_day(value: &Value) -> String {
    match itb_clinic::model::read_micrograms("", value) {
        Ok(exact) => format!("{} a day", itb_dose::text::mass(exact)),
        Err(_) => "not known".to_owned(),
    }
}

/// `2000 micrograms/mL`.
pub fn concentration(value: &Value) -> String {
    match itb_clinic::model::read_micrograms_per_ml("", value) {
        Ok(exact) => itb_dose::text::concentration(exact),
        Err(_) => "not known".to_owned(),
    }
}

/// A change in percent the record wrote exactly (`354.1665`, `-20`), to the 0.01 % a person
/// reads, signed: `+354.17%`, `-20%`.
pub fn percent(exact: &str) -> String {
    let (negative, digits) = exact.strip_prefix('-').map_or((false, exact), |d| (true, d));
    let (whole, part) = digits.split_once('.').unwrap_or((digits, ""));
    let part: String = part.chars().chain(std::iter::repeat('0')).take(6).collect();
    match (whole.parse::<i64>(), part.parse::<i64>()) {
        (Ok(w), Ok(p)) => {
            let micro = w.saturating_mul(1_000_000).saturating_add(p);
            let text = itb_dose::text::percent(if negative { -micro } else { micro });
            if micro > 0 && !negative { format!("+{text}") } else { text }
        }
        _ => "not known".to_owned(),
    }
}

/// What the pump was doing when it was read, in words.
pub fn pump_state(value: &Value) -> String {
    match value.as_str() {
        Some("therapy") => "Running the prescription",
        Some("bridge") => "Giving a bridge bolus after a refill",
        Some("single_bolus") => "Giving a bolus",
        Some("priming") => "Priming the catheter",
        Some("stopped") => "Stopped: no drug is delivered",
        Some("halted") => "Halted by an alarm: no drug is delivered",
        Some("end_of_service") => "End of service: the battery is spent, no drug is delivered",
        _ => "Not reported",
    }
    .to_owned()
}

/// A titration check's verdict in words.
pub fn titration_verdict(value: &str) -> &'static str {
    match value {
        "no_change" => "No change in the daily dose",
        "reduction" => "A reduction",
        "within_guideline" => "An increase within the guideline",
        "exceeds_guideline" => "An increase above the guideline",
        "too_soon" => "An increase too soon after the last",
        _ => "Not checked",
    }
}

/// An NHS number as people read it, 3-3-4 (as stored when it is not a valid one).
pub fn nhs(digits: &str) -> String {
    digits.parse::<itb_clinic::rules::nhs::NhsNumber>().map_or_else(|_| digits.to_owned(), |n| n.to_string())
}

/// A text field, or "".
pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// What limits a refill date, in words.
pub fn limited_by(value: &Value) -> String {
    match value.as_str() {
        Some("low_reservoir_alarm") => "the low-reservoir alarm".to_owned(),
        Some("drug_stability") => "the drug's stability limit".to_owned(),
        Some(other) => other.replace('_', " "),
        None => "not known".to_owned(),
    }
}

/// A status tag: its colour class and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `red`, `orange`, `yellow`, `blue`, `green` or `grey`.
    pub colour: &'static str,
    /// The words.
    pub text: String,
}

impl Tag {
    /// A tag.
    pub fn new(colour: &'static str, text: impl Into<String>) -> Self {
        Self { colour, text: text.into() }
    }
}

/// The tag of a worklist bucket.
pub fn bucket_tag(bucket: &str) -> Tag {
    match bucket {
        "overdue" => Tag::new("red", "Overdue"),
        "unknown" => Tag::new("grey", "Unknown"),
        "due_7" => Tag::new("orange", "Due within 7 days"),
        "due_28" => Tag::new("yellow", "Due within 28 days"),
        _ => Tag::new("green", "Fine"),
    }
}

/// A worklist bucket's heading.
pub fn bucket_heading(bucket: &str) -> &'static str {
    match bucket {
        "overdue" => "Overdue",
        "unknown" => "Refill date unknown",
        "due_7" => "Due within 7 days",
        "due_28" => "Due within 28 days",
        _ => "Due later",
    }
}

/// The tag of an appointment's state.
pub fn appointment_tag(state: &str) -> Tag {
    match state {
        "requested" => Tag::new("grey", "Requested"),
        "scheduled" => Tag::new("blue", "Booked"),
        "arrived" => Tag::new("yellow", "Arrived"),
        "completed" => Tag::new("green", "Completed"),
        "missed" => Tag::new("red", "Missed"),
        _ => Tag::new("grey", "Cancelled"),
    }
}

/// An appointment's kind in words.
pub fn appointment_kind(kind: &str) -> &'static str {
    match kind {
        "refill" => "Refill",
        "wound_check" => "Wound check",
        "neurosurgical_follow_up" => "Neurosurgical follow-up",
        "dose_review" => "Dose review",
        "annual_review" => "Annual review",
        "battery_replacement" => "Pump replacement (battery)",
        "post_mri_check" => "Pump check after MRI",
        _ => "Appointment",
    }
}

/// A stage of the pathway in words.
pub fn stage(value: &Value) -> String {
    match value.as_str() {
        Some("assessment") => "Assessment".to_owned(),
        Some("screening") => "Screening trial".to_owned(),
        Some("titration") => "Titration after implant".to_owned(),
        Some("maintenance") => "Maintenance".to_owned(),
        Some(other) => other.replace('_', " "),
        None => "not known".to_owned(),
    }
}

/// A pump model in words: `Programmable pump with a 20 mL reservoir`.
pub fn profile(value: &Value) -> String {
    match value.as_str() {
        Some(name) => itb_dose::profile::DeviceProfile::built_in(name).map_or_else(
            |_| "Programmable pump".to_owned(),
            |p| format!("Programmable pump with a {} reservoir", itb_dose::text::volume(p.reservoir.capacity.value)),
        ),
        None => "not known".to_owned(),
    }
}

/// A prescription in plain words for a patient or a GP: what reaches the patient, not the
/// pump's modes.
pub fn prescription_plain(value: &Value) -> String {
    use itb_dose::Therapy;
    use itb_dose::prescription::FlexSchedule;
    let Ok(rx) = itb_clinic::model::read_prescription("prescription", value) else { return "not known".to_owned() };
    let totals = rx.daily_totals();
    let mut words = match rx.therapy() {
        Therapy::Stopped => "no baclofen: the pump is stopped".to_owned(),
        Therapy::SimpleContinuous { rate } => {
            format!("{} a day, at a steady rate", itb_dose::text::mass(itb_dose::Mass::ng(rate.as_ng_per_day())))
        }
        Therapy::Flex(FlexSchedule::Daily(day)) => format!(
            "{} a day, at rates that change at {} times of day",
            itb_dose::text::mass(totals.max),
            day.steps().len()
        ),
        Therapy::Flex(FlexSchedule::Weekly(_)) => {
            format!("up to {} a day, in a pattern for each day of the week", itb_dose::text::mass(totals.max))
        }
        Therapy::PeriodicBolus(p) => format!(
            "{} a day, as a dose of {} every {}",
            itb_dose::text::mass(totals.max),
            itb_dose::text::mass(p.bolus),
            itb_dose::text::duration(p.interval)
        ),
    };
    if let Some(ptm) = rx.ptm() {
        words.push_str(&format!(
            "; with the handheld therapy manager, up to {} extra doses of {} a day, at least {} apart",
            ptm.max_per_day,
            itb_dose::text::mass(ptm.bolus),
            itb_dose::text::duration(ptm.lockout)
        ));
    }
    words
}

/// A prescription of the record (the fields of a prescription file) in words.
pub fn prescription(value: &Value) -> String {
    match itb_clinic::model::read_prescription("prescription", value) {
        Ok(rx) => itb_dose::text::prescription_words(&rx),
        Err(_) => "not known".to_owned(),
    }
}

/// Percent-encodes text for a query string.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A role in words, capitalised.
pub fn role(role: itb_clinic::rules::access::Role) -> String {
    itb_dose::text::capitalised(role.describe())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_and_quantities_read_as_people_write_them() {
        assert_eq!(date(&json!("2026-11-25")), "25 Nov 2026");
        assert_eq!(date(&json!("2026-11-24T23:30:00Z")), "24 Nov 2026");
        // Summer time: 23:30 UTC on 1 July is 00:30 on 2 July in London.
        assert_eq!(date(&json!("2026-07-01T23:30:00Z")), "2 Jul 2026");
        assert_eq!(date(&Value::Null), "not known");
        assert_eq!(ml(&json!(3.5)), "3.5 mL");
        assert_eq!(ml(&json!(4.999951)), "5 mL");
        assert_eq!(ml(&json!(1.500004)), "1.5 mL");
        assert_eq!(ml(&Value::Null), "not known");
        assert_eq!(per_day(&json!(400)), "400 micrograms a day");
        assert_eq!(per_day(&json!(414.285)), "414.29 micrograms a day");
        assert_eq!(pump_state(&json!("single_bolus")), "Giving a bolus");
        assert_eq!(percent("354.1665"), "+354.17%");
        assert_eq!(percent("-20"), "-20%");
        assert_eq!(percent("0"), "0%");
        assert_eq!(concentration(&json!(2000)), "2000 micrograms/mL");
        assert_eq!(url_encode("/worklist?bucket=due 7"), "/worklist%3Fbucket%3Ddue%207");
        let day = Date::new(2026, 12, 20).expect("date");
        for typed in ["2026-12-20", "20/12/2026", "20 12 2026", " 20-12-2026 ", "20.12.2026"] {
            assert_eq!(parse_day(typed), Some(day), "{typed}");
        }
        for wrong in ["31/02/2026", "20/12/26", "tomorrow", "2026-13-01", ""] {
            assert_eq!(parse_day(wrong), None, "{wrong}");
        }
    }
}
