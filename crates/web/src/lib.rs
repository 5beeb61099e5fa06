//! The ITB service's pages, served by `itb serve` beside the JSON API: server-rendered HTML
//! from templates compiled into the binary, our own CSS and a little progressive JavaScript,
//! every page working without it.
//!
//! # Invariants
//! - Every page checks the signed-in person's role against the role table of
//!   `itb_clinic::rules::access` (the one in docs/ROLES.md) before it reads anything; a patient
//!   sees only their own record.
//! - Sessions live in a secure, HTTP-only, same-site cookie holding a sign-in token of the
//!   record; every form that changes anything carries the session's CSRF token, and a POST from
//!   another origin is refused.
//! - Every rule the pages show is the record's or `itb-dose`'s: pages never compute a dose, a
//!   date or a verdict of their own, and send every change through the same functions as the
//!   API, so its audit entry is the same.
//! - People read "micrograms" in full, dates as `25 Nov 2026`, NHS numbers 3-3-4; no code
//!   names reach a screen.

#![forbid(unsafe_code)]

mod assets;
mod chart;
mod form;
mod pages;
mod session;
mod view;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use itb_clinic::api::AppState;

pub use session::{COOKIE, csrf_token};

/// Largest form body.
pub const FORM_MAX: usize = 64 * 1024;

/// The pages and the JSON API under one router: what `itb serve` serves.
pub fn router(state: AppState) -> Router {
    use pages::{admin, appointments, me, patient, programming, refill, worklist};
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/worklist", get(worklist::page))
        .route("/patients", get(patient::search))
        .route("/patients/{id}", get(patient::record))
        .route("/patients/{id}/letter", get(patient::letter))
        .route("/pumps/{id}/interrogate", post(programming::interrogate))
        .route("/pumps/{id}/status", get(programming::status))
        .route("/pumps/{id}/prescribe", get(programming::editor).post(programming::stage))
        .route("/pumps/{id}/review", get(programming::review))
        .route("/pumps/{id}/commit", post(programming::commit))
        .route("/pumps/{id}/discard", post(programming::discard))
        .route("/pumps/{id}/done", get(programming::done))
        .route("/pumps/{id}/refill", get(refill::form).post(refill::stage))
        .route("/refills/{id}/review", post(refill::review_gap))
        .route("/appointments", get(appointments::day).post(appointments::book))
        .route("/appointments/week", get(appointments::week))
        .route("/appointments/new", get(appointments::new_form))
        .route("/appointments/{id}/state", post(appointments::change))
        .route("/me", get(me::page))
        .route("/me/card", get(me::card))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/users", get(admin::users).post(admin::add_user))
        .route("/assets/itb.css", get(assets::css))
        .route("/assets/itb.js", get(assets::js))
        .layer(axum::middleware::from_fn(session::same_origin))
        .layer(DefaultBodyLimit::max(FORM_MAX))
        .layer(axum::middleware::from_fn(headers))
        .with_state(state.clone());
    pages.merge(itb_clinic::api::routes(state)).fallback(pages::not_found)
}

/// What every page's answer carries: no caching of a patient's record, no framing, no
/// scripts or styles but ours. (Layered on the pages' routes only, not the API's.)
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
