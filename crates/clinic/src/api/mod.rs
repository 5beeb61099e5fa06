//! The JSON API under `/api/v1/`: bearer tokens, the role table on every endpoint, RFC 9457
//! problem details naming the field, pagination on every list, `Idempotency-Key` on every
//! POST, and the OpenAPI document at `/api/v1/openapi.json`.

pub mod endpoints;
pub mod handlers;
pub mod idempotency;
pub mod openapi;
pub mod problem;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use tokio::sync::Mutex;

use crate::clock::ServiceClock;
use crate::error::ClinicError;
use crate::fleet::Fleet;
use crate::programming::Staged;
use crate::rules::access::{Permission, Role, allows};
use crate::store::Store;
use crate::store::users::User;
pub use problem::ApiError;

/// Largest request body.
pub const BODY_MAX: usize = 256 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The record.
    pub store: Store,
    /// The service's clock.
    pub clock: ServiceClock,
    /// The virtual pumps the clinic can reach (the demo's), if any.
    pub fleet: Option<Arc<Fleet>>,
    /// Changes staged on pumps, awaiting commit, by pump id.
    pub staged: Arc<Mutex<HashMap<i64, Staged>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("store", &self.store.describe()).finish_non_exhaustive()
    }
}

impl AppState {
    /// A service over `store`, reading `clock`.
    pub fn new(store: Store, clock: ServiceClock) -> Self {
        Self { store, clock, fleet: None, staged: Arc::new(Mutex::new(HashMap::new())) }
    }
    /// With virtual pumps to program.
    #[must_use]
    pub fn with_fleet(mut self, fleet: Arc<Fleet>) -> Self {
        self.fleet = Some(fleet);
        self
    }
}

/// The signed-in caller.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl Caller {
    /// Refuses unless the role allows `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if allows(self.0.role, permission) {
            Ok(())
        } else {
            Err(ApiError(ClinicError::Forbidden(format!(
                "a {} may not {}",
                self.0.role.describe(),
                permission.describe()
            ))))
        }
    }
    /// Refuses unless the caller may read patient `patient_id`'s record: a patient only their
    /// own (others look absent to them).
    pub fn may_read(&self, patient_id: i64) -> Result<(), ApiError> {
        self.require(Permission::ReadRecord)?;
        if self.0.role == Role::Patient && self.0.patient_id != Some(patient_id) {
            return Err(ApiError(ClinicError::NotFound("there is no such record".to_owned())));
        }
        Ok(())
    }
    /// Refuses unless the caller may read the record of pump `pump_id`'s patient.
    pub async fn may_read_pump(&self, state: &AppState, pump_id: i64) -> Result<(), ApiError> {
        self.require(Permission::ReadRecord)?;
        self.may_read(state.store.pump_patient(pump_id).await?)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(ApiError(ClinicError::Unauthorized(
                "sign in first: POST /api/v1/auth/token, then send 'Authorization: Bearer <token>'".to_owned(),
            )));
        };
        match state.store.user_for_token(token.trim(), state.clock.now()).await? {
            Some(user) => Ok(Caller(user)),
            None => Err(ApiError(ClinicError::Unauthorized(
                "this token is unknown or has expired: sign in again".to_owned(),
            ))),
        }
    }
}

/// The API's router.
pub fn router(state: AppState) -> Router {
    routes(state).fallback(handlers::not_found)
}

/// The API's routes without a fallback, to merge beside other routes (the pages).
pub fn routes(state: AppState) -> Router {
    let api = endpoints::routes()
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(DefaultBodyLimit::max(BODY_MAX));
    Router::new().merge(api).with_state(state)
}
