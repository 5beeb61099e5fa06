//! `Idempotency-Key` on every POST: the first request with a key runs and its answer is kept;
//! a retry with the same key and the same request gets the same answer without running again;
//! the same key with a different request is refused. Keys belong to the signed-in user.
//!
//! A key is claimed before the request runs. If the service stops between the change and
//! keeping its answer, the claim stays unfinished: a retry is told to look at the record
//! rather than risk doing the change twice.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, BODY_MAX};
use crate::error::{ClinicError, invalid};
use crate::store::{int_opt, text, text_opt};

/// The header.
pub const HEADER: &str = "idempotency-key";
/// Longest key.
pub const KEY_MAX: usize = 200;
/// Largest answer kept.
const RESPONSE_MAX: usize = 4 * 1024 * 1024;

fn problem(e: ClinicError) -> Response {
    ApiError(e).into_response()
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // A sign-in is never replayed: its answer is a secret and it changes nothing in the record.
    if request.method() != Method::POST || request.uri().path() == "/api/v1/auth/token" {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let Some(key) = key
        .to_str()
        .ok()
        .map(str::to_owned)
        .filter(|k| !k.is_empty() && k.len() <= KEY_MAX && k.chars().all(|c| c.is_ascii_graphic()))
    else {
        return problem(invalid(
            "Idempotency-Key",
            format!("give a key of 1 to {KEY_MAX} printable characters without spaces, such as a UUID"),
        ));
    };
    // Keys belong to a user; without a valid token the handler answers 401.
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned);
    let user_id = match token {
        Some(token) => match state.store.user_for_token(token.trim(), state.clock.now()).await {
            Ok(Some(user)) => user.id,
            Ok(None) => return next.run(request).await,
            Err(e) => return problem(e),
        },
        None => return next.run(request).await,
    };
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, BODY_MAX).await {
        Ok(bytes) => bytes,
        Err(_) => return problem(invalid("body", format!("the request is larger than {} KiB", BODY_MAX / 1024))),
    };
    let mut digest = Sha256::new();
    digest.update(parts.method.as_str().as_bytes());
    digest.update([0]);
    digest.update(parts.uri.path().as_bytes());
    digest.update([0]);
    digest.update(&bytes);
    let request_hash: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
    match claim(&state, user_id, &key, &request_hash).await {
        Ok(Claim::Fresh) => {}
        Ok(Claim::Replay(response)) => return response,
        Err(e) => return problem(e),
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = response.status();
    if status.is_server_error() {
        // The change may or may not have been recorded before the failure: the key stays
        // claimed, and a retry is told to look at the record (never done twice).
        return response;
    }
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, RESPONSE_MAX).await else {
        return problem(ClinicError::Internal("the answer was too large to keep".to_owned()));
    };
    if let Err(e) = keep(&state, user_id, &key, status, location.as_deref(), &bytes).await {
        eprintln!("itb serve: could not keep the answer for an idempotency key: {e}");
    }
    Response::from_parts(parts, Body::from(bytes))
}

enum Claim {
    Fresh,
    Replay(Response),
}

async fn claim(state: &AppState, user_id: i64, key: &str, request_hash: &str) -> Result<Claim, ClinicError> {
    let mut tx = state.store.begin().await?;
    let row = sqlx::query("SELECT * FROM idempotency WHERE user_id = $1 AND key = $2")
        .bind(user_id)
        .bind(key)
        .fetch_optional(tx.conn())
        .await?;
    let Some(row) = row else {
        sqlx::query("INSERT INTO idempotency (user_id, key, request_hash, state, created_at_ms) VALUES ($1, $2, $3, 'pending', $4)")
            .bind(user_id)
            .bind(key)
            .bind(request_hash)
            .bind(state.clock.now().as_millisecond())
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        return Ok(Claim::Fresh);
    };
    if text(&row, "request_hash")? != request_hash {
        return Err(invalid(
            "Idempotency-Key",
            "this key was used for a different request; use a new key for a new request",
        ));
    }
    if text(&row, "state")? != "done" {
        return Err(ClinicError::Conflict(
            "a request with this Idempotency-Key is running or did not finish; look at the record before sending it again with a new key".to_owned(),
        ));
    }
    let status = int_opt(&row, "status")?
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body = text_opt(&row, "body")?.unwrap_or_default();
    let mut response =
        Response::builder().status(status).body(Body::from(body)).map_err(|e| ClinicError::Internal(e.to_string()))?;
    let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Some(location) = text_opt(&row, "location")?
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(Claim::Replay(response))
}

async fn keep(
    state: &AppState,
    user_id: i64,
    key: &str,
    status: StatusCode,
    location: Option<&str>,
    body: &[u8],
) -> Result<(), ClinicError> {
    let mut tx = state.store.begin().await?;
    sqlx::query(
        "UPDATE idempotency SET state = 'done', status = $1, location = $2, body = $3 WHERE user_id = $4 AND key = $5",
    )
    .bind(i64::from(status.as_u16()))
    .bind(location)
    .bind(String::from_utf8_lossy(body).into_owned())
    .bind(user_id)
    .bind(key)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}
