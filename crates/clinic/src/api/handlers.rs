//! The handlers: each checks the caller's role first, then reads its body, then asks the store.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::problem::parse_body;
use super::{ApiError, AppState, Caller};
use crate::error::{ClinicError, invalid};
use crate::model::{Page, read_date, read_instant};
use crate::rules::access::{Permission, Role};
use crate::store::record::{self, Settings, service_date};

type Result<T> = std::result::Result<T, ApiError>;

fn created(location: String, body: Value) -> Response {
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response()
}

fn id_of(value: &Value) -> i64 {
    value.get("id").and_then(Value::as_i64).unwrap_or(0)
}

/// Any path the API does not have.
pub async fn not_found() -> Response {
    ApiError(ClinicError::NotFound("there is no such address in this API; see /api/v1/openapi.json".to_owned()))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    username: String,
    password: String,
}

/// `POST /api/v1/auth/token`.
pub async fn sign_in(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>> {
    let input: SignIn = parse_body(&body)?;
    let (token, user) = state.store.sign_in(input.username.trim(), &input.password, state.clock.now()).await?;
    Ok(Json(json!({"token": token.token, "expires_at": token.expires_at, "user": user})))
}

/// `GET /api/v1/me`.
pub async fn me(caller: Caller) -> Json<Value> {
    Json(json!(caller.0))
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    on: Option<String>,
    patient_id: Option<i64>,
    subject: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

impl ListQuery {
    fn page(&self) -> Result<(i64, i64)> {
        Ok(Page { limit: self.limit, offset: self.offset }.bounds()?)
    }
}

fn query(q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>) -> Result<ListQuery> {
    q.map(|Query(q)| q).map_err(|e| {
        let text = e.body_text();
        let text = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text).to_owned();
        ApiError(invalid("query", format!("{text}; limit and offset are whole numbers, on is YYYY-MM-DD")))
    })
}

/// `GET /api/v1/patients`.
pub async fn list_patients(
    State(state): State<AppState>,
    caller: Caller,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    caller.require(Permission::ReadRecord)?;
    let q = query(q)?;
    let (limit, offset) = q.page()?;
    if caller.0.role == Role::Patient {
        let own = match caller.0.patient_id {
            Some(id) => vec![state.store.patient(id, state.clock.now()).await?],
            None => vec![],
        };
        return Ok(Json(json!({"items": own, "total": own.len(), "limit": limit, "offset": 0})));
    }
    Ok(Json(json!(state.store.patients(q.q.as_deref(), limit, offset).await?)))
}

/// `POST /api/v1/patients`.
pub async fn register_patient(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<Response> {
    caller.require(Permission::RegisterPatient)?;
    let input = parse_body(&body)?;
    let patient = state.store.create_patient(&caller.0, input, state.clock.now()).await?;
    Ok(created(format!("/api/v1/patients/{}", id_of(&patient)), patient))
}

/// `GET /api/v1/patients/{id}`.
pub async fn get_patient(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<Json<Value>> {
    caller.may_read(id)?;
    Ok(Json(state.store.patient(id, state.clock.now()).await?))
}

/// `PATCH /api/v1/patients/{id}`.
pub async fn update_patient(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    caller.require(Permission::RegisterPatient)?;
    let input = parse_body(&body)?;
    Ok(Json(state.store.update_patient(&caller.0, id, input, state.clock.now()).await?))
}

/// `POST /api/v1/patients/{id}/pumps`.
pub async fn implant_pump(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response> {
    caller.require(Permission::ManagePumps)?;
    let input: record::PumpInput = parse_body(&body)?;
    let pump = state.store.implant_pump(&caller.0, id, input, state.clock.now()).await?;
    if let Some(fleet) = &state.fleet {
        fleet.implanted(&state.store, id_of(&pump)).await?;
    }
    Ok(created(format!("/api/v1/pumps/{}", id_of(&pump)), pump))
}

/// `GET /api/v1/pumps/{id}`.
pub async fn get_pump(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<Json<Value>> {
    caller.may_read_pump(&state, id).await?;
    Ok(Json(state.store.pump(id, state.clock.now()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Explant {
    at: String,
    reason: String,
}

/// `POST /api/v1/pumps/{id}/explant`.
pub async fn explant_pump(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    caller.require(Permission::ManagePumps)?;
    let input: Explant = parse_body(&body)?;
    let pump = state.store.explant_pump(&caller.0, id, &input.at, &input.reason, state.clock.now()).await?;
    if let Some(fleet) = &state.fleet {
        fleet.explanted(id).await;
    }
    Ok(Json(pump))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatteryEstimate {
    at: String,
    remaining_days: Option<u64>,
    elective_replacement: bool,
    end_of_service_on: Option<String>,
}

/// `POST /api/v1/pumps/{id}/battery`.
pub async fn add_battery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    caller.require(Permission::ManagePumps)?;
    let input: BatteryEstimate = parse_body(&body)?;
    let at = read_instant("at", &input.at)?;
    let eos = input.end_of_service_on.as_deref().map(|d| read_date("end_of_service_on", d)).transpose()?;
    if input.remaining_days.is_some_and(|d| d > 20_000) {
        return Err(ApiError(invalid("remaining_days", "give whole days, at most 20000")));
    }
    let remaining = input.remaining_days.map(itb_dose::Duration::days);
    Ok(Json(
        state
            .store
            .add_battery_estimate(&caller.0, id, at, remaining, input.elective_replacement, eos, state.clock.now())
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairedKey {
    role: String,
    public_key: String,
}

/// `POST /api/v1/pumps/{id}/keys`.
pub async fn pair_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    caller.require(Permission::ManagePumps)?;
    let input: PairedKey = parse_body(&body)?;
    Ok(Json(state.store.pair_key(&caller.0, id, &input.role, &input.public_key, state.clock.now()).await?))
}

/// `GET /api/v1/pumps/{id}/prescriptions`.
pub async fn list_prescriptions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    caller.may_read_pump(&state, id).await?;
    let (limit, offset) = query(q)?.page()?;
    Ok(Json(json!(state.store.prescriptions(id, limit, offset).await?)))
}

/// `POST /api/v1/pumps/{id}/prescriptions`.
pub async fn prescribe(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response> {
    caller.require(Permission::Prescribe)?;
    let input = parse_body(&body)?;
    let prescription = state.store.prescribe(&caller.0, id, input, state.clock.now()).await?;
    Ok(created(format!("/api/v1/pumps/{id}/prescriptions"), prescription))
}

/// `POST /api/v1/pumps/{id}/prescriptions/review`.
pub async fn review_prescription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    caller.require(Permission::Prescribe)?;
    let input: record::PrescriptionInput = parse_body(&body)?;
    let prescription = crate::model::read_prescription("prescription", &input.prescription)?;
    let at = match &input.at {
        Some(at) => read_instant("at", at)?,
        None => state.clock.now(),
    };
    let review = state.store.review_prescription(id, &prescription, at).await?;
    Ok(Json(crate::model::review_json(&review)))
}

/// `GET /api/v1/pumps/{id}/refills`.
pub async fn list_refills(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    caller.may_read_pump(&state, id).await?;
    let (limit, offset) = query(q)?.page()?;
    Ok(Json(json!(state.store.refills(id, limit, offset).await?)))
}

/// `POST /api/v1/pumps/{id}/refills`.
pub async fn record_refill(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response> {
    caller.require(Permission::Refill)?;
    let input = parse_body(&body)?;
    let refill = state.store.record_refill(&caller.0, id, input, state.clock.now()).await?;
    Ok(created(format!("/api/v1/refills/{}", id_of(&refill)), refill))
}

/// `GET /api/v1/refills/{id}`.
pub async fn get_refill(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<Json<Value>> {
    caller.require(Permission::ReadRecord)?;
    caller.may_read(state.store.refill_patient(id).await?)?;
    Ok(Json(state.store.refill(id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GapReview {
    note: String,
}

/// `POST /api/v1/refills/{id}/review`.
pub async fn review_gap(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    caller.require(Permission::ReviewGap)?;
    let input: GapReview = parse_body(&body)?;
    Ok(Json(state.store.review_refill_gap(&caller.0, id, &input.note, state.clock.now()).await?))
}

/// `GET /api/v1/pumps/{id}/interrogations`.
pub async fn list_interrogations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    caller.may_read_pump(&state, id).await?;
    let (limit, offset) = query(q)?.page()?;
    Ok(Json(json!(state.store.interrogations(id, limit, offset).await?)))
}

/// `POST /api/v1/pumps/{id}/interrogations`.
pub async fn record_interrogation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response> {
    caller.require(Permission::Interrogate)?;
    let input = parse_body(&body)?;
    let recorded = state.store.record_interrogation(&caller.0, id, input, state.clock.now()).await?;
    Ok(created(format!("/api/v1/pumps/{id}/interrogations"), recorded))
}

/// `GET /api/v1/appointments`.
pub async fn list_appointments(
    State(state): State<AppState>,
    caller: Caller,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    caller.require(Permission::ReadRecord)?;
    let q = query(q)?;
    let (limit, offset) = q.page()?;
    let on = q.on.as_deref().map(|d| read_date("on", d)).transpose()?;
    let patient = if caller.0.role == Role::Patient {
        let own =
            caller.0.patient_id.ok_or_else(|| ApiError(ClinicError::NotFound("there is no such record".to_owned())))?;
        if q.patient_id.is_some_and(|p| p != own) {
            return Err(ApiError(ClinicError::NotFound("there is no such record".to_owned())));
        }
        Some(own)
    } else {
        q.patient_id
    };
    Ok(Json(json!(state.store.appointments(on, patient, limit, offset).await?)))
}

/// `POST /api/v1/appointments`.
pub async fn book_appointment(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<Response> {
    caller.require(Permission::ManageAppointments)?;
    let input = parse_body(&body)?;
    let appointment = state.store.book_appointment(&caller.0, input, state.clock.now()).await?;
    Ok(created(format!("/api/v1/appointments/{}", id_of(&appointment)), appointment))
}

/// `GET /api/v1/appointments/{id}`.
pub async fn get_appointment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>> {
    caller.require(Permission::ReadRecord)?;
    caller.may_read(state.store.appointment_patient(id).await?)?;
    Ok(Json(state.store.appointment(id).await?))
}

/// `POST /api/v1/appointments/{id}/state`.
pub async fn change_appointment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    caller.require(Permission::ManageAppointments)?;
    let input = parse_body(&body)?;
    Ok(Json(state.store.change_appointment(&caller.0, id, input, state.clock.now()).await?))
}

/// `GET /api/v1/worklist?on=YYYY-MM-DD`.
pub async fn worklist(
    State(state): State<AppState>,
    caller: Caller,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    caller.require(Permission::Worklist)?;
    let q = query(q)?;
    let (limit, offset) = q.page()?;
    let on = match q.on.as_deref() {
        Some(d) => read_date("on", d)?,
        None => service_date(state.clock.now()),
    };
    Ok(Json(state.store.worklist(on, limit, offset).await?))
}

/// `GET /api/v1/settings`.
pub async fn get_settings(State(state): State<AppState>, _caller: Caller) -> Result<Json<Value>> {
    Ok(Json(json!(state.store.settings().await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsInput {
    margin_days: u16,
    stability_days: Option<u16>,
}

/// `PUT /api/v1/settings`.
pub async fn set_settings(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<Json<Value>> {
    caller.require(Permission::ManageSettings)?;
    let input: SettingsInput = parse_body(&body)?;
    let settings = Settings {
        margin_days: input.margin_days,
        stability_days: input.stability_days.unwrap_or(Settings::default().stability_days),
    };
    Ok(Json(json!(state.store.set_settings(&caller.0, settings, state.clock.now()).await?)))
}

/// `GET /api/v1/audit`.
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    caller.require(Permission::Audit)?;
    let q = query(q)?;
    let (limit, offset) = q.page()?;
    Ok(Json(json!(state.store.audit_entries(q.subject.as_deref(), limit, offset).await?)))
}

/// `GET /api/v1/audit/verify`.
pub async fn verify_audit(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    caller.require(Permission::Audit)?;
    Ok(Json(json!(state.store.verify_audit().await?)))
}

/// `GET /api/v1/users`.
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    caller.require(Permission::ManageUsers)?;
    let (limit, offset) = query(q)?.page()?;
    Ok(Json(json!(state.store.users(limit, offset).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserInput {
    username: String,
    role: String,
    password: String,
    patient_id: Option<i64>,
}

/// `POST /api/v1/users`.
pub async fn add_user(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<Response> {
    caller.require(Permission::ManageUsers)?;
    let input: UserInput = parse_body(&body)?;
    let role: Role = input.role.parse().map_err(|e: String| ApiError(invalid("role", e)))?;
    let user = state
        .store
        .add_user(&caller.0.username, input.username.trim(), role, &input.password, input.patient_id, state.clock.now())
        .await?;
    Ok(created(format!("/api/v1/users/{}", user.id), json!(user)))
}
