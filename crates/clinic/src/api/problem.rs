//! Errors as RFC 9457 problem details (`application/problem+json`), naming the field.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ClinicError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub ClinicError);

impl From<ClinicError> for ApiError {
    fn from(e: ClinicError) -> Self {
        Self(e)
    }
}

/// The problem's status, type and title.
pub fn classify(e: &ClinicError) -> (StatusCode, &'static str, &'static str) {
    match e {
        ClinicError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid", "The request has a problem"),
        ClinicError::NeedsOverride { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "override-needed", "This change needs a written reason to go ahead")
        }
        ClinicError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
        ClinicError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "The record does not allow this now"),
        ClinicError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Your role does not allow this"),
        ClinicError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Sign in first"),
        ClinicError::TooManyAttempts { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, "too-many-attempts", "Too many failed sign-ins")
        }
        ClinicError::Pump(_) => (StatusCode::BAD_GATEWAY, "pump", "The pump could not do this"),
        ClinicError::Database(_) | ClinicError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong in the service")
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = classify(&self.0);
        let detail = match &self.0 {
            ClinicError::Invalid(errors) if errors.len() == 1 => format!("{}: {}", errors[0].field, errors[0].detail),
            ClinicError::Invalid(errors) => {
                format!("{} fields have a problem; each is listed under errors", errors.len())
            }
            ClinicError::Database(e) => {
                eprintln!("itb serve: database error: {e}");
                "the database failed; the change was not recorded; try again, and tell the administrator if it happens again".to_owned()
            }
            ClinicError::Internal(e) => {
                eprintln!("itb serve: internal error: {e}");
                format!("{e}; the change was not recorded")
            }
            other => other.to_string(),
        };
        let mut body = json!({"type": format!("urn:itb:problem:{kind}"), "title": title, "status": status.as_u16(), "detail": detail});
        match &self.0 {
            ClinicError::Invalid(errors) => body["errors"] = json!(errors),
            ClinicError::NeedsOverride { dangers, review } => {
                body["errors"] = json!([{"field": "override_reason", "detail": format!("this change needs a written reason to go ahead (an override): {dangers}")}]);
                body["review"] = review.clone();
            }
            _ => {}
        }
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let ClinicError::TooManyAttempts { retry_after_s, .. } = &self.0
            && let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Reads a JSON body into `T`, naming the field of the first problem.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError(crate::error::invalid("body", "send a JSON object (Content-Type: application/json)")));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde's own words, without its position in the text.
        let message = message.split(" at line ").next().unwrap_or(&message).replace('`', "'");
        let (field, message) = match message.strip_prefix("missing field '") {
            Some(rest) => {
                let name = rest.trim_end_matches('\'');
                let field = if field == "body" { name.to_owned() } else { format!("{field}.{name}") };
                (field, "this is required".to_owned())
            }
            None => (field, message),
        };
        ApiError(crate::error::invalid(&field, message))
    })
}
