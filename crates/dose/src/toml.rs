//! Prescriptions as TOML text: the format of a clinician's file and of the test fixtures.
//!
//! Every quantity is a string with its unit (`dose = "400 micrograms/day"`); a bare number is
//! refused because its unit would be a guess. Unknown fields are refused, so a misspelt field
//! is an error rather than a silently ignored limit. See `examples/prescriptions/` for one file
//! per mode.
//!
//! ```toml
//! mode = "simple_continuous"
//! dose = "400 micrograms/day"
//!
//! [ptm]
//! bolus_dose = "25 micrograms"
//! bolus_duration = "10 min"
//! lockout = "3 h"
//! max_boluses_per_day = 4
//! ```

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::prescription::{
    DayPattern, FlexSchedule, FlexStep, PeriodicBolus, Prescription, PrescriptionError, PtmLimits, Therapy, WEEKDAYS,
};
use crate::quantity::{DoseRate, QuantityError, TimeOfDay};

/// Why a prescription file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TomlError {
    /// Not TOML, or not the shape of a prescription (a misspelt or missing field).
    #[error("the prescription file is not valid: {0}")]
    Syntax(String),
    /// A field whose text is not a valid quantity.
    #[error("{field}: {source}")]
    Quantity {
        /// The field.
        field: String,
        /// Why.
        source: QuantityError,
    },
    /// A field that is not a time of day.
    #[error("{field}: {message}")]
    Field {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// Readable, but not a valid prescription.
    #[error(transparent)]
    Prescription(#[from] PrescriptionError),
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrescription {
    mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flex: Option<RawFlex>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    periodic: Option<RawPeriodic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ptm: Option<RawPtm>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlex {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<RawStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monday: Option<Vec<RawStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tuesday: Option<Vec<RawStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wednesday: Option<Vec<RawStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thursday: Option<Vec<RawStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    friday: Option<Vec<RawStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    saturday: Option<Vec<RawStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sunday: Option<Vec<RawStep>>,
}

impl RawFlex {
    fn weekdays(&self) -> [&Option<Vec<RawStep>>; 7] {
        [&self.monday, &self.tuesday, &self.wednesday, &self.thursday, &self.friday, &self.saturday, &self.sunday]
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    start: String,
    rate: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriodic {
    bolus_dose: String,
    bolus_duration: String,
    interval: String,
    #[serde(default = "midnight")]
    first_bolus_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    basal: Option<String>,
}

fn midnight() -> String {
    "00:00".to_owned()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPtm {
    bolus_dose: String,
    bolus_duration: String,
    lockout: String,
    max_boluses_per_day: u32,
}

fn quantity<T: FromStr<Err = QuantityError>>(field: &str, text: &str) -> Result<T, TomlError> {
    text.parse().map_err(|source| TomlError::Quantity { field: field.to_owned(), source })
}

fn time_of_day(field: &str, text: &str) -> Result<TimeOfDay, TomlError> {
    text.parse().map_err(|e: crate::quantity::TimeOfDayError| TomlError::Field {
        field: field.to_owned(),
        message: e.to_string(),
    })
}

fn misplaced(mode: &str, part: &str) -> TomlError {
    TomlError::Field {
        field: part.to_owned(),
        message: format!("mode \"{mode}\" does not take '{part}'; remove it or change the mode"),
    }
}

fn missing(mode: &str, part: &str) -> TomlError {
    TomlError::Field { field: part.to_owned(), message: format!("mode \"{mode}\" needs '{part}'") }
}

fn day_pattern(day: &str, raw: &[RawStep]) -> Result<DayPattern, TomlError> {
    let mut steps = Vec::with_capacity(raw.len());
    for (index, step) in raw.iter().enumerate() {
        let field = format!("{day}.steps[{}]", index + 1);
        steps.push(FlexStep {
            start: time_of_day(&format!("{field}.start"), &step.start)?,
            rate: quantity(&format!("{field}.rate"), &step.rate)?,
        });
    }
    Ok(DayPattern::new(day, steps)?)
}

fn flex_schedule(raw: &RawFlex) -> Result<FlexSchedule, TomlError> {
    let weekdays = raw.weekdays();
    let weekly_given = weekdays.iter().filter(|d| d.is_some()).count();
    match (&raw.steps, weekly_given) {
        (Some(steps), 0) => Ok(FlexSchedule::Daily(day_pattern("flex", steps)?)),
        (None, 7) => {
            let mut days = Vec::with_capacity(7);
            for (name, steps) in WEEKDAYS.iter().zip(weekdays) {
                let steps = steps.as_deref().unwrap_or_default();
                days.push(day_pattern(&format!("flex.{name}"), steps)?);
            }
            let days: [DayPattern; 7] = days.try_into().map_err(|_| TomlError::Syntax("seven weekdays".into()))?;
            Ok(FlexSchedule::Weekly(Box::new(days)))
        }
        _ => Err(TomlError::Field {
            field: "flex".to_owned(),
            message:
                "give either [[flex.steps]] (the same every day) or all seven of [[flex.monday]] .. [[flex.sunday]]"
                    .to_owned(),
        }),
    }
}

/// A TOML error as one sentence with its line: "line 4: unknown field `dose`, expected ...".
pub fn error_sentence(text: &str, error: &::toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1;
            format!("line {line}: {}", error.message().trim())
        }
        None => error.message().trim().to_owned(),
    }
}

/// Reads a prescription from TOML text.
pub fn from_toml(text: &str) -> Result<Prescription, TomlError> {
    let raw: RawPrescription = ::toml::from_str(text).map_err(|e| TomlError::Syntax(error_sentence(text, &e)))?;
    let mode = raw.mode.as_str();
    let allowed: &[&str] = match mode {
        "stopped" => &[],
        "simple_continuous" => &["dose"],
        "flex" => &["flex"],
        "periodic_bolus" => &["periodic"],
        other => {
            return Err(TomlError::Field {
                field: "mode".to_owned(),
                message: format!(
                    "\"{other}\" is not a mode; use one of \"stopped\", \"simple_continuous\", \"flex\", \"periodic_bolus\""
                ),
            });
        }
    };
    for (part, given) in
        [("dose", raw.dose.is_some()), ("flex", raw.flex.is_some()), ("periodic", raw.periodic.is_some())]
    {
        if given && !allowed.contains(&part) {
            return Err(misplaced(mode, part));
        }
        if !given && allowed.contains(&part) {
            return Err(missing(mode, part));
        }
    }
    let therapy = match mode {
        "simple_continuous" => {
            let rate: DoseRate = quantity("dose", raw.dose.as_deref().unwrap_or_default())?;
            Therapy::SimpleContinuous { rate }
        }
        "flex" => Therapy::Flex(flex_schedule(raw.flex.as_ref().ok_or_else(|| missing(mode, "flex"))?)?),
        "periodic_bolus" => {
            let p = raw.periodic.as_ref().ok_or_else(|| missing(mode, "periodic"))?;
            Therapy::PeriodicBolus(PeriodicBolus {
                bolus: quantity("periodic.bolus_dose", &p.bolus_dose)?,
                bolus_duration: quantity("periodic.bolus_duration", &p.bolus_duration)?,
                interval: quantity("periodic.interval", &p.interval)?,
                first_at: time_of_day("periodic.first_bolus_at", &p.first_bolus_at)?,
                basal: match &p.basal {
                    Some(text) => quantity("periodic.basal", text)?,
                    None => DoseRate::ZERO,
                },
            })
        }
        _ => Therapy::Stopped,
    };
    let ptm = match &raw.ptm {
        Some(p) => Some(PtmLimits {
            bolus: quantity("ptm.bolus_dose", &p.bolus_dose)?,
            bolus_duration: quantity("ptm.bolus_duration", &p.bolus_duration)?,
            lockout: quantity("ptm.lockout", &p.lockout)?,
            max_per_day: p.max_boluses_per_day,
        }),
        None => None,
    };
    Ok(Prescription::new(therapy, ptm)?)
}

fn raw_steps(pattern: &DayPattern) -> Vec<RawStep> {
    pattern.steps().iter().map(|s| RawStep { start: s.start.to_string(), rate: s.rate.to_string() }).collect()
}

/// Writes a prescription as TOML text that [`from_toml`] reads back to the same value.
pub fn to_toml(prescription: &Prescription) -> String {
    let therapy = prescription.therapy();
    let mut raw = RawPrescription { mode: therapy.mode_name().to_owned(), ..RawPrescription::default() };
    match therapy {
        Therapy::Stopped => {}
        Therapy::SimpleContinuous { rate } => raw.dose = Some(rate.to_string()),
        Therapy::Flex(FlexSchedule::Daily(day)) => {
            raw.flex = Some(RawFlex { steps: Some(raw_steps(day)), ..RawFlex::default() });
        }
        Therapy::Flex(FlexSchedule::Weekly(days)) => {
            let [mo, tu, we, th, fr, sa, su] = days.as_ref();
            raw.flex = Some(RawFlex {
                steps: None,
                monday: Some(raw_steps(mo)),
                tuesday: Some(raw_steps(tu)),
                wednesday: Some(raw_steps(we)),
                thursday: Some(raw_steps(th)),
                friday: Some(raw_steps(fr)),
                saturday: Some(raw_steps(sa)),
                sunday: Some(raw_steps(su)),
            });
        }
        Therapy::PeriodicBolus(p) => {
            raw.periodic = Some(RawPeriodic {
                bolus_dose: p.bolus.to_string(),
                bolus_duration: p.bolus_duration.to_string(),
                interval: p.interval.to_string(),
                first_bolus_at: p.first_at.to_string(),
                basal: (!p.basal.is_zero()).then(|| p.basal.to_string()),
            });
        }
    }
    raw.ptm = prescription.ptm().map(|p| RawPtm {
        bolus_dose: p.bolus.to_string(),
        bolus_duration: p.bolus_duration.to_string(),
        lockout: p.lockout.to_string(),
        max_boluses_per_day: p.max_per_day,
    });
    // A value of these plain types always serialises; an empty string would only hide a bug.
    ::toml::to_string(&raw).unwrap_or_default()
}

/// With the `serde` feature a [`Prescription`] is serialised as its canonical TOML text
/// ([`to_toml`]) and read back through [`from_toml`], with every check: an invalid prescription
/// cannot be restored from serialised data.
#[cfg(feature = "serde")]
impl Serialize for Prescription {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_toml(self))
    }
}

#[cfg(feature = "serde")]
impl<'de> Deserialize<'de> for Prescription {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        from_toml(&text).map_err(|e| serde::de::Error::custom(format!("invalid prescription: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::Mass;

    #[test]
    fn reads_each_mode() {
        let simple = from_toml("mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n").expect("valid");
        assert_eq!(simple.daily_totals().max, Mass::micrograms(400));
        let stopped = from_toml("mode = \"stopped\"\n").expect("valid");
        assert_eq!(stopped.daily_totals().max, Mass::ZERO);
        let flex = from_toml(
            "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"300 micrograms/day\"\n\
             [[flex.steps]]\nstart = \"12:00\"\nrate = \"500 micrograms/day\"\n",
        )
        .expect("valid");
        assert_eq!(flex.daily_totals().max, Mass::micrograms(400));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_carries_a_prescription_as_its_checked_text() {
        #[derive(Serialize, Deserialize)]
        struct Holder {
            prescription: Prescription,
            at: TimeOfDay,
        }
        let text = "mode = \"periodic_bolus\"\n[periodic]\nbolus_dose = \"50 micrograms\"\nbolus_duration = \"1 h\"\n\
                    interval = \"6 h\"\nfirst_bolus_at = \"02:00\"\nbasal = \"120 micrograms/day\"\n";
        let prescription = from_toml(text).expect("valid");
        let at = TimeOfDay::hm(23, 59).expect("valid");
        let written = ::toml::to_string(&Holder { prescription: prescription.clone(), at }).expect("serialises");
        let back: Holder = ::toml::from_str(&written).expect("reads back");
        assert_eq!((back.prescription, back.at), (prescription, at));
        let invalid = "prescription = \"mode = \\\"simple_continuous\\\"\\ndose = \\\"0 micrograms/day\\\"\"\nat = 0\n";
        let error = ::toml::from_str::<Holder>(invalid).map(|_| ()).expect_err("invalid");
        assert!(error.to_string().contains("dose is 0 micrograms/day"), "{error}");
        let late =
            format!("prescription = {:?}\nat = 1440\n", to_toml(&from_toml("mode = \"stopped\"").expect("valid")));
        let error = ::toml::from_str::<Holder>(&late).map(|_| ()).expect_err("24:00");
        assert!(error.to_string().contains("not a time of day"), "{error}");
    }

    #[test]
    fn refuses_what_a_clinician_did_not_mean() {
        let typo = from_toml(
            "mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n[ptm]\nbolus_dose = \"25 micrograms\"\nbolus_duration = \"10 min\"\nlockout = \"3 h\"\nmax_bolus_per_day = 4\n",
        );
        assert!(matches!(typo, Err(TomlError::Syntax(ref m)) if m.contains("max_bolus_per_day")), "{typo:?}");
        let bare = from_toml("mode = \"simple_continuous\"\ndose = \"400\"\n");
        assert!(matches!(bare, Err(TomlError::Quantity { ref field, .. }) if field == "dose"), "{bare:?}");
        let mg = from_toml("mode = \"simple_continuous\"\ndose = \"0.4 mg/day\"\n");
        assert!(matches!(mg, Err(TomlError::Quantity { source: QuantityError::Milligrams { .. }, .. })), "{mg:?}");
        let extra = from_toml("mode = \"stopped\"\ndose = \"400 micrograms/day\"\n");
        assert!(matches!(extra, Err(TomlError::Field { ref field, .. }) if field == "dose"), "{extra:?}");
        let mode = from_toml("mode = \"continuous\"\n");
        assert!(matches!(mode, Err(TomlError::Field { ref field, .. }) if field == "mode"), "{mode:?}");
    }
}
