//! Forms: the fields a page sent, and the problems shown in the error summary and at each
//! field.

use axum::body::Bytes;
use itb_clinic::error::ClinicError;

use crate::pages::PageError;

/// Most fields a form may send.
const FIELDS_MAX: usize = 400;

/// The fields of a submitted form, in order (a name may repeat).
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Reads an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &Bytes) -> Result<Self, PageError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
            PageError::BadRequest("This form could not be read. Go back, reload the page and try again.".to_owned())
        })?;
        if pairs.len() > FIELDS_MAX {
            return Err(PageError::BadRequest(format!("A form has at most {FIELDS_MAX} fields.")));
        }
        Ok(Self(pairs))
    }
    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.raw(name).trim()
    }
    /// The first value of `name` as sent.
    pub fn raw(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
    }
    /// Every value of `name`, in order, trimmed.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.trim()).collect()
    }
    /// Whether a checkbox or button `name` was sent.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
    /// `name` as text of at most `max` characters, or `None` when blank.
    pub fn text(&self, name: &str, max: usize) -> Option<String> {
        let value = self.get(name);
        (!value.is_empty()).then(|| value.chars().take(max).collect())
    }
}

/// A problem with what was entered: shown in the error summary (linked to its field) and again
/// at the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field's id ("" for the form as a whole).
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The problems of a form, in the order of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// No problems.
    pub fn none() -> Self {
        Self(Vec::new())
    }
    /// The message at `field`, if any.
    pub fn at(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|p| p.field == field).map(|p| p.message.as_str())
    }
    /// Adds one.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(field, message));
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The problems.
    pub fn list(&self) -> &[Problem] {
        &self.0
    }
}

/// The problems a refusal of the record or the pump names: each field's, or the whole form's.
/// `rename` maps a field of the API to the page's field id.
pub fn problems_of(error: &ClinicError, rename: impl Fn(&str) -> String) -> Option<Vec<Problem>> {
    match error {
        ClinicError::Invalid(fields) => {
            Some(fields.iter().map(|f| Problem::new(rename(&f.field), sentence(&f.detail))).collect())
        }
        ClinicError::Conflict(text) | ClinicError::Pump(text) => Some(vec![Problem::new("", sentence(text))]),
        ClinicError::NeedsOverride { dangers, .. } => Some(vec![Problem::new(
            "override_reason",
            format!("{} Write why this change is right for this patient.", dangers.trim()),
        )]),
        _ => None,
    }
}

/// A message as a sentence: a capital first letter and a full stop.
pub fn sentence(text: &str) -> String {
    let mut out = itb_dose::text::capitalised(text.trim());
    if !out.ends_with(['.', '!', '?']) && !out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_keep_their_order_and_blank_ones_read_as_none() {
        let fields = Fields::parse(&Bytes::from_static(b"step_rate=300&step_rate=500&lot=+&csrf=ab")).expect("reads");
        assert_eq!(fields.all("step_rate"), vec!["300", "500"]);
        assert_eq!(fields.text("lot", 40), None);
        assert_eq!(fields.get("csrf"), "ab");
        assert!(!fields.has("bridge"));
    }

    #[test]
    fn messages_become_sentences() {
        assert_eq!(
            sentence("the drug expired on 1 Nov 2026: do not use it"),
            "The drug expired on 1 Nov 2026: do not use it."
        );
        assert_eq!(sentence("Done."), "Done.");
    }
}
