//! What can go wrong, typed: each kind becomes one RFC 9457 problem in the API and one message
//! on the command line.

/// One field that is wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's name in the request (`volume_added_ml`, `prescription.dose`).
    pub field: String,
    /// What is wrong and what to do.
    pub detail: String,
}

/// An error of the clinic.
#[derive(Debug, thiserror::Error)]
pub enum ClinicError {
    /// The request is wrong; nothing was written.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// Not there (or not the caller's to see).
    #[error("{0}")]
    NotFound(String),
    /// The record does not allow it now (a state, a duplicate).
    #[error("{0}")]
    Conflict(String),
    /// The caller's role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// Not signed in, or the sign-in is wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// Too many failed sign-ins: wait.
    #[error("{detail}")]
    TooManyAttempts {
        /// What to do.
        detail: String,
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// The review has a dangerous warning and no written override reason was given.
    #[error("override_reason: this change needs a written reason to go ahead (an override): {dangers}")]
    NeedsOverride {
        /// The dangerous warnings' sentences.
        dangers: String,
        /// The review (JSON), to show old beside new.
        review: serde_json::Value,
    },
    /// The pump could not be reached or refused; the record is unchanged unless said.
    #[error("{0}")]
    Pump(String),
    /// The database failed.
    #[error("the database failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Something that should not happen.
    #[error("{0}")]
    Internal(String),
}

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.detail)).collect::<Vec<_>>().join("; ")
}

/// One invalid field.
pub fn invalid(field: &str, detail: impl Into<String>) -> ClinicError {
    ClinicError::Invalid(vec![FieldError { field: field.to_owned(), detail: detail.into() }])
}

/// Collects field errors: `Ok` when there are none.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    /// Adds one.
    pub fn add(&mut self, field: &str, detail: impl Into<String>) {
        self.0.push(FieldError { field: field.to_owned(), detail: detail.into() });
    }
    /// Takes a result's error as this field's.
    pub fn take<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.add(field, e.to_string())).ok()
    }
    /// Takes a result whose error already names its fields (a reader of a field).
    pub fn absorb<T>(&mut self, result: Result<T, ClinicError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(ClinicError::Invalid(errors)) => {
                self.0.extend(errors);
                None
            }
            Err(other) => {
                self.add("body", other.to_string());
                None
            }
        }
    }
    /// `Err` with every problem, or `Ok`.
    pub fn finish(self) -> Result<(), ClinicError> {
        if self.0.is_empty() { Ok(()) } else { Err(ClinicError::Invalid(self.0)) }
    }
}
