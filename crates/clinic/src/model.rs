//! The record's data as it crosses the API: serde types whose field names are the contract.
//! Quantities are JSON numbers in the unit their name ends with (`_ml`,
//! `_micrograms_per_ml`), exact to the nanolitre or nanogram; instants RFC 3339 UTC; dates
//! `YYYY-MM-DD`.

use itb_dose::{Concentration, Prescription, Volume};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ClinicError, invalid};

/// A count of small units as a JSON number of the large one (`places` decimals), exactly.
fn to_json(count: u64, places: u32) -> Value {
    let scale = 10u64.pow(places);
    if count.is_multiple_of(scale) {
        return Value::from(count / scale);
    }
    // count / scale, correctly rounded, prints as its shortest decimal: the exact one.
    #[allow(clippy::cast_precision_loss)]
    let number = count as f64 / scale as f64;
    serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
}

/// Reads a JSON number of the large unit into small units, refusing more decimals than
/// `places`, negatives and non-numbers.
fn from_json(value: &Value, places: u32, step: &str) -> Result<u64, String> {
    let Value::Number(number) = value else {
        return Err(format!("give a number (such as 20 or 0.5), not {}", kind(value)));
    };
    if let Some(whole) = number.as_u64() {
        return whole.checked_mul(10u64.pow(places)).ok_or_else(|| "this number is too large".to_owned());
    }
    let float = number.as_f64().ok_or_else(|| "give a number".to_owned())?;
    if !float.is_finite() || float < 0.0 {
        return Err("give a number that is not negative".to_owned());
    }
    #[allow(clippy::cast_precision_loss)]
    let scaled = float * 10u64.pow(places) as f64;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-3 {
        return Err(format!("give at most {places} decimal places; the smallest step is {step}"));
    }
    if rounded >= 9.0e15 {
        return Err("this number is too large".to_owned());
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(rounded as u64)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A volume as JSON millilitres.
pub fn ml(volume: Volume) -> Value {
    to_json(volume.as_nl(), 6)
}

/// A concentration as JSON micrograms per mL.
pub fn micrograms_per_ml(concentration: Concentration) -> Value {
    to_json(concentration.as_ng_per_ml(), 3)
}

/// A mass as JSON micrograms.
pub fn micrograms(ng: u64) -> Value {
    to_json(ng, 3)
}

/// Reads `field` as a volume in mL.
pub fn read_ml(field: &str, value: &Value) -> Result<Volume, ClinicError> {
    from_json(value, 6, "0.000001 mL").map(Volume::nl).map_err(|e| invalid(field, e))
}

/// Reads `field` as a concentration in micrograms/mL.
pub fn read_micrograms_per_ml(field: &str, value: &Value) -> Result<Concentration, ClinicError> {
    from_json(value, 3, "0.001 micrograms/mL").map(Concentration::ng_per_ml).map_err(|e| invalid(field, e))
}

/// Reads `field` as a mass in micrograms.
pub fn read_micrograms(field: &str, value: &Value) -> Result<itb_dose::Mass, ClinicError> {
    from_json(value, 3, "0.001 micrograms").map(itb_dose::Mass::ng).map_err(|e| invalid(field, e))
}

/// Reads `field` as kilograms into grams.
pub fn read_kg(field: &str, value: &Value) -> Result<u64, ClinicError> {
    from_json(value, 3, "1 gram (0.001 kg)").map_err(|e| invalid(field, e))
}

/// An instant as RFC 3339 UTC, to the second (or millisecond when it has one).
pub fn instant(at: Timestamp) -> String {
    if at.subsec_millisecond() == 0 {
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

/// An instant from milliseconds in the record.
pub fn instant_ms(ms: i64) -> String {
    instant(Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Reads an RFC 3339 instant (with an offset or `Z`).
pub fn read_instant(field: &str, text: &str) -> Result<Timestamp, ClinicError> {
    text.parse::<Timestamp>().map_err(|_| {
        invalid(
            field,
            format!("'{}' is not an instant; write it as RFC 3339, such as 2026-11-25T10:00:00Z", short(text)),
        )
    })
}

/// Reads a `YYYY-MM-DD` date.
pub fn read_date(field: &str, text: &str) -> Result<Date, ClinicError> {
    text.parse::<Date>().map_err(|_| {
        invalid(field, format!("'{}' is not a date; write it as YYYY-MM-DD, such as 2026-11-25", short(text)))
    })
}

/// The first 40 characters of something a person typed, for a message.
pub fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

/// A prescription as JSON: the same fields as the TOML prescription files.
pub fn prescription_json(prescription: &Prescription) -> Value {
    let text = itb_dose::toml::to_toml(prescription);
    toml::from_str::<toml::Value>(&text).ok().and_then(|v| serde_json::to_value(v).ok()).unwrap_or(Value::Null)
}

/// Reads a prescription from JSON with the fields of a TOML prescription file.
pub fn read_prescription(field: &str, value: &Value) -> Result<Prescription, ClinicError> {
    if !value.is_object() {
        return Err(invalid(
            field,
            "give the prescription as an object with the fields of a prescription file, such as {\"mode\": \"simple_continuous\", \"dose\": \"400 micrograms/day\"}",
        ));
    }
    let toml_value =
        toml::Value::try_from(value).map_err(|e| invalid(field, format!("this prescription cannot be read: {e}")))?;
    let text =
        toml::to_string(&toml_value).map_err(|e| invalid(field, format!("this prescription cannot be read: {e}")))?;
    itb_dose::toml::from_toml(&text).map_err(|e| invalid(field, e.to_string()))
}

/// Prescription TOML as stored, read back (it was written by this program).
pub fn stored_prescription(text: &str) -> Result<Prescription, ClinicError> {
    itb_dose::toml::from_toml(text)
        .map_err(|e| ClinicError::Internal(format!("a stored prescription cannot be read: {e}")))
}

/// A page of a list: `limit` (1-500, default 100) items from `offset`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Page {
    /// Items to return.
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u64>,
}

/// Largest page.
pub const PAGE_MAX: u32 = 500;

impl Page {
    /// The limit and offset, checked.
    pub fn bounds(&self) -> Result<(i64, i64), ClinicError> {
        let limit = self.limit.unwrap_or(100);
        if limit == 0 || limit > PAGE_MAX {
            return Err(invalid("limit", format!("give a limit from 1 to {PAGE_MAX}")));
        }
        let offset =
            i64::try_from(self.offset.unwrap_or(0)).map_err(|_| invalid("offset", "this offset is too large"))?;
        Ok((i64::from(limit), offset))
    }
}

/// A page of items with the total.
#[derive(Debug, Clone, Serialize)]
pub struct Listed<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many there are in all.
    pub total: i64,
    /// The limit used.
    pub limit: i64,
    /// The offset used.
    pub offset: i64,
}

fn figures_json(figures: &itb_dose::review::Figures) -> Value {
    let schedule = figures.schedule.as_ref();
    serde_json::json!({
        "largest_day_micrograms": micrograms(figures.max_day.as_ng()),
        "mean_day_micrograms": micrograms(figures.mean_day.as_ng()),
        "worst_case_day_micrograms": micrograms(figures.worst_case_day.as_ng()),
        "daily_volume_ml": ml(Volume::nl(figures.daily_volume.as_nl_per_day())),
        "low_reservoir_alarm_at": schedule.and_then(|s| s.alarm_at).map(instant),
        "drug_expires_at": schedule.map(|s| instant(s.expires_at)),
        "refill_due_by": schedule.map(|s| instant(s.due_by)),
        "refill_due_on": schedule.map(|s| s.due_on.to_string()),
        "limited_by": schedule.map(|s| s.limited_by.as_str()),
    })
}

/// A review as JSON: the figures old beside new, the titration check, and every warning with
/// its code, severity, sentence and whether it needs an override.
pub fn review_json(review: &itb_dose::review::Review) -> Value {
    serde_json::json!({
        "change": review.change.as_str(),
        "old": figures_json(&review.old),
        "new": figures_json(&review.new),
        "titration": review.titration.as_ref().map(|t| serde_json::json!({
            "verdict": t.verdict.as_str(),
            "change_percent": itb_dose::calc::titrate::percent_text(t.change_micro_percent),
            "band_percent": [t.band_percent.0, t.band_percent.1],
            "reasons": t.reasons,
            "above_maintenance_top_micrograms_per_day": t.above_maintenance.map(|d| micrograms(d.as_ng_per_day())),
        })),
        "warnings": review.warnings.iter().map(|w| serde_json::json!({
            "code": w.code.as_str(),
            "severity": w.severity.as_str(),
            "sentence": w.sentence,
            "needs_override": w.needs_override(),
        })).collect::<Vec<_>>(),
        "needs_override": review.needs_override(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_cross_json_exactly() {
        for nl in [0u64, 1, 150_000, 12_345_678, 20_000_000, 19_999_999, 40_000_000] {
            let json = ml(Volume::nl(nl));
            let text = serde_json::to_string(&json).expect("json");
            let back: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(read_ml("v", &back).expect("reads"), Volume::nl(nl), "{text}");
        }
        assert_eq!(serde_json::to_string(&ml(Volume::nl(12_345_678))).expect("json"), "12.345678");
        assert!(read_ml("v", &serde_json::json!(1.0000001)).is_err());
        assert!(read_ml("v", &serde_json::json!(-1)).is_err());
        assert!(read_ml("v", &serde_json::json!("20")).is_err());
    }

    #[test]
    fn prescriptions_cross_json_with_the_toml_fields() {
        let json = serde_json::json!({"mode": "simple_continuous", "dose": "400 micrograms/day"});
        let rx = read_prescription("prescription", &json).expect("reads");
        assert_eq!(prescription_json(&rx), json);
        let err = read_prescription(
            "prescription",
            &serde_json::json!({"mode": "simple_continuous", "dose": "400 micrograms/hr"}),
        )
        .expect_err("refused")
        .to_string();
        assert!(err.starts_with("prescription: "), "{err}");
    }
}
