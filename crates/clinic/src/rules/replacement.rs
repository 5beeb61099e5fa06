//! When a pump's battery calls for its replacement: the Elective Replacement Indicator is on,
//! or the end of service is within 6 months.

use jiff::civil::Date;

/// Months before the end of service that a replacement is planned.
pub const EOS_WITHIN_MONTHS: i64 = 6;

/// Why the pump is due for replacement on `on`, or `None`.
pub fn replacement_due(eri: bool, eos_on: Option<Date>, on: Date) -> Option<String> {
    if eri {
        return Some("the Elective Replacement Indicator is on: plan the replacement now".to_owned());
    }
    let eos = eos_on?;
    let horizon = on.checked_add(jiff::Span::new().months(EOS_WITHIN_MONTHS)).ok()?;
    (eos <= horizon).then(|| {
        format!(
            "the battery's end of service is expected on {}, within 6 months: plan the replacement",
            itb_dose::text::civil_date(eos)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn eri_or_end_of_service_within_six_months() {
        let on = date(2026, 11, 25);
        assert!(replacement_due(true, None, on).is_some());
        assert!(replacement_due(false, Some(date(2027, 5, 25)), on).is_some());
        assert!(replacement_due(false, Some(date(2027, 5, 26)), on).is_none());
        assert!(replacement_due(false, None, on).is_none());
    }
}
