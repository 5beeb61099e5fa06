//! Programming pumps from the clinic through `itb-programmer`: interrogate, stage a therapy
//! or a refill and review it old beside new, commit it by hash. Each programming stores the
//! review that was shown, its hash and the pump's answer; a link that drops mid-commit is
//! reconciled by interrogating, and the record follows what the pump says.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use itb_dose::review::OverrideReason;
use itb_dose::{Prescription, Volume};
use itb_programmer::{Confirmation, MemoryLink, PendingChange, Programmer, ProgrammerError, PumpStatus};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::problem::parse_body;
use crate::api::{ApiError, AppState, Caller};
use crate::error::{ClinicError, invalid};
use crate::model::{
    instant, micrograms, micrograms_per_ml, ml, prescription_json, read_micrograms_per_ml, read_ml, review_json,
};
use crate::rules::access::Permission;
use crate::store::record::{InterrogationInput, RefillInput, Settings};

/// How long a staged change waits for its commit.
pub const STAGED_MINUTES: i64 = 15;

/// What was staged.
#[derive(Debug, Clone)]
pub enum StagedKind {
    /// A therapy.
    Therapy {
        /// The prescription.
        prescription: Prescription,
        /// Why.
        reason: String,
    },
    /// A refill after a withdrawal.
    Refill {
        /// What the refill records.
        input: Box<RefillInput>,
        /// The pump's estimate before the withdrawal.
        expected: Volume,
    },
}

/// A change staged on a pump, awaiting its commit.
pub struct Staged {
    kind: StagedKind,
    programmer: Programmer<MemoryLink>,
    pending: PendingChange,
    by: i64,
    review: Value,
    hash: String,
    staged_at: Timestamp,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged").field("hash", &self.hash).finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pump_error(e: ProgrammerError) -> ApiError {
    match e {
        ProgrammerError::Input(text) => ApiError(invalid("body", text)),
        ProgrammerError::Refused(refused) => {
            ApiError(ClinicError::Conflict(format!("the pump refused: {}", refused.message)))
        }
        other => ApiError(ClinicError::Pump(other.to_string())),
    }
}

/// What an interrogation reported, as the record stores it.
pub fn reported(status: &PumpStatus) -> Value {
    let schedule = status.figures.schedule.as_ref();
    json!({
        "read_at": instant(status.at),
        "profile": status.profile,
        "reservoir_ml": ml(status.reservoir),
        "capacity_ml": ml(status.capacity),
        "concentration_micrograms_per_ml": micrograms_per_ml(status.concentration),
        "filled_at": instant(status.filled_at),
        "alarm_threshold_ml": ml(status.alarm_threshold),
        "prescription": status.prescription.as_ref().map(prescription_json),
        "program_number": status.program_number,
        "state": status.state.as_str(),
        "awaiting_refill": status.awaiting_refill,
        "alarms": status.alarms.iter().map(|a| json!({"kind": a.kind.as_str(), "critical": a.critical, "raised_at": instant(a.raised_at)})).collect::<Vec<_>>(),
        "motor_stalled": status.motor_stalled,
        "battery_remaining_days": status.battery_remaining.as_ms() / 86_400_000,
        "replace_by": instant(status.replace_by),
        "elective_replacement": status.elective_replacement,
        "ptm_boluses_last_24h": status.ptm_boluses_last_24h,
        "worst_case_day_micrograms": micrograms(status.figures.worst_case_day.as_ng()),
        // Once the alarm has sounded, its instant is the one the pump raised it at (to the second,
        // as every refill date is), not the reading's.
        "low_reservoir_alarm_at": status
            .alarms
            .iter()
            .find(|a| a.kind == itb_pump::AlarmKind::LowReservoir)
            .map(|a| crate::store::record::whole_second(a.raised_at))
            .or_else(|| schedule.and_then(|s| s.alarm_at))
            .map(instant),
        "refill_due_by": schedule.map(|s| instant(s.due_by)),
    })
}

async fn connect(state: &AppState, pump_id: i64) -> Result<Programmer<MemoryLink>, ApiError> {
    state.store.pump_patient(pump_id).await?;
    let settings: Settings = state.store.settings().await?;
    state
        .fleet
        .as_ref()
        .and_then(|fleet| fleet.programmer(pump_id, settings.policy()))
        .ok_or_else(|| ApiError(ClinicError::Pump(format!("the clinic cannot reach pump {pump_id}: no communicator is connected to it; record what the pump reported instead (POST /api/v1/pumps/{pump_id}/interrogations)"))))
}

async fn record_status(
    state: &AppState,
    caller: &Caller,
    pump_id: i64,
    status: &PumpStatus,
) -> Result<Value, ApiError> {
    let input = InterrogationInput { at: instant(status.at), reported: reported(status) };
    Ok(state.store.record_interrogation(&caller.0, pump_id, input, state.clock.now()).await?)
}

/// `POST /api/v1/pumps/{id}/interrogate`.
pub async fn interrogate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let recorded = interrogate_pump(&state, &caller, id).await?;
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}

/// Interrogates pump `id` through the clinic's programmer and records what it reported.
pub async fn interrogate_pump(state: &AppState, caller: &Caller, id: i64) -> Result<Value, ApiError> {
    caller.require(Permission::Interrogate)?;
    let mut programmer = connect(state, id).await?;
    let status = programmer.interrogate().await.map_err(pump_error)?;
    record_status(state, caller, id, &status).await
}

/// A therapy to stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TherapyInput {
    /// The prescription (the fields of a prescription file).
    pub prescription: Value,
    /// Why it changes.
    pub reason: Option<String>,
}

fn staged_view(staged: &Staged, pump_id: i64) -> Value {
    json!({
        "pump_id": pump_id,
        "kind": match staged.kind { StagedKind::Therapy { .. } => "therapy", StagedKind::Refill { .. } => "refill" },
        "hash": staged.hash,
        "expires_at": instant(staged.pending.expires_at()),
        "review": staged.review,
        "prescription": match &staged.kind {
            StagedKind::Therapy { prescription, .. } => prescription_json(prescription),
            StagedKind::Refill { .. } => Value::Null,
        },
        "reason": match &staged.kind {
            StagedKind::Therapy { reason, .. } => Value::from(reason.as_str()),
            StagedKind::Refill { .. } => Value::Null,
        },
        "refill": match &staged.kind {
            StagedKind::Therapy { .. } => Value::Null,
            StagedKind::Refill { input, .. } => json!({
                "volume_added_ml": input.volume_added_ml, "concentration_micrograms_per_ml": input.concentration_micrograms_per_ml,
                "lot": input.lot, "expires_on": input.expires_on, "second_checker": input.second_checker, "place": input.place,
            }),
        },
        "withdrawal": staged.pending.withdrawal().map(|w| json!({
            "volume_withdrawn_ml": ml(w.withdrawn), "volume_expected_ml": ml(w.expected), "gap_ml": ml(w.gap.gap),
            "gap_needs_review": w.gap.stops_the_refill(), "gap": w.gap.sentence(),
        })),
    })
}

/// Keeps a reviewed change until its commit (replacing any earlier one on the pump): what the
/// person is shown.
async fn keep_staged(
    state: &AppState,
    pump_id: i64,
    kind: StagedKind,
    programmer: Programmer<MemoryLink>,
    pending: PendingChange,
    by: i64,
) -> Value {
    let staged = Staged {
        review: review_json(pending.review()),
        hash: hex(pending.hash()),
        kind,
        programmer,
        pending,
        by,
        staged_at: state.clock.now(),
    };
    let view = staged_view(&staged, pump_id);
    state.staged.lock().await.insert(pump_id, staged);
    view
}

/// `POST /api/v1/pumps/{id}/program/therapy`: stage and review; nothing changes until commit.
pub async fn stage_therapy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Permission::Prescribe)?;
    let input: TherapyInput = parse_body(&body)?;
    Ok(Json(stage_therapy_on(&state, &caller, id, input).await?))
}

/// Stages a therapy on pump `id` and reviews it; nothing changes until commit.
pub async fn stage_therapy_on(
    state: &AppState,
    caller: &Caller,
    id: i64,
    input: TherapyInput,
) -> Result<Value, ApiError> {
    caller.require(Permission::Prescribe)?;
    let prescription = crate::model::read_prescription("prescription", &input.prescription)?;
    let reason = input.reason.unwrap_or_else(|| "programmed from the clinic".to_owned());
    let patient = state.store.patient(state.store.pump_patient(id).await?, state.clock.now()).await?;
    let origin = match patient["origin"].as_str() {
        Some("spinal") => Some(itb_dose::calc::titrate::Origin::Spinal),
        Some("cerebral") => Some(itb_dose::calc::titrate::Origin::Cerebral),
        _ => None,
    };
    let age = patient["date_of_birth"].as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok()).and_then(|born| {
        let today = crate::store::record::service_date(state.clock.now());
        born.until(today).ok().and_then(|s| s.total((jiff::Unit::Year, born)).ok())
    });
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let facts = itb_dose::review::Patient { origin, age_years: age.map(|y| y.floor().max(0.0) as u32) };
    let mut programmer = connect(state, id).await?;
    let pending = programmer.stage_therapy(&prescription, facts).await.map_err(pump_error)?;
    Ok(keep_staged(state, id, StagedKind::Therapy { prescription, reason }, programmer, pending, caller.0.id).await)
}

/// A refill to stage: the fields of `POST /api/v1/pumps/{id}/program/refill`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramRefill {
    /// mL added.
    pub volume_added_ml: Value,
    /// The drug's concentration.
    pub concentration_micrograms_per_ml: Value,
    /// The vial's batch.
    pub lot: String,
    /// The drug's expiry, `YYYY-MM-DD`.
    pub expires_on: String,
    /// The second checker's username.
    pub second_checker: String,
    /// A bridge bolus when the concentration changes.
    pub bridge: Option<bool>,
    /// `clinic` or `home`.
    pub place: Option<String>,
}

/// `POST /api/v1/pumps/{id}/program/refill`: checks the refill against the pump's limits,
/// withdraws (the gap is known from here), stages the refill and reviews it.
pub async fn stage_refill(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Permission::Refill)?;
    let input: ProgramRefill = parse_body(&body)?;
    Ok(Json(stage_refill_on(&state, &caller, id, input).await?))
}

/// Checks a refill against the pump's limits, withdraws (the gap is known from here), stages
/// the refill and reviews it.
pub async fn stage_refill_on(
    state: &AppState,
    caller: &Caller,
    id: i64,
    input: ProgramRefill,
) -> Result<Value, ApiError> {
    caller.require(Permission::Refill)?;
    let added = read_ml("volume_added_ml", &input.volume_added_ml)?;
    let concentration =
        read_micrograms_per_ml("concentration_micrograms_per_ml", &input.concentration_micrograms_per_ml)?;
    let expires_on = crate::model::read_date("expires_on", &input.expires_on)?;
    if expires_on < crate::store::record::service_date(state.clock.now()) {
        return Err(ApiError(invalid(
            "expires_on",
            format!("this drug expired on {}: do not use it", itb_dose::text::civil_date(expires_on)),
        )));
    }
    let checker = state.store.user_named(input.second_checker.trim()).await?;
    match checker {
        Some(c) if c.id != caller.0.id && c.role.is_clinical() => {}
        Some(c) if c.id == caller.0.id => {
            return Err(ApiError(invalid(
                "second_checker",
                "the second checker must be a different person from the nurse: two people sign every refill",
            )));
        }
        _ => return Err(ApiError(invalid("second_checker", "name a clinician who checks this refill with you"))),
    }
    let lot = input.lot.trim().to_owned();
    if lot.is_empty() || lot.chars().count() > 40 {
        return Err(ApiError(invalid("lot", "give the batch (lot) number on the vial, at most 40 characters")));
    }
    if !matches!(input.place.as_deref().unwrap_or("clinic"), "clinic" | "home") {
        return Err(ApiError(invalid("place", "a refill is done in clinic or at home")));
    }
    let bridge = input.bridge.unwrap_or(false);
    let mut programmer = connect(state, id).await?;
    let status = programmer.interrogate().await.map_err(pump_error)?;
    programmer.check_refill(added, concentration, bridge).await.map_err(pump_error)?;
    let withdrawal = match status.withdrawal {
        Some(done) => done,
        None => {
            let withdrawal = programmer.withdraw(status.refill_gap_limit).await.map_err(pump_error)?;
            // From here the reservoir is empty, whatever happens next: the record says so.
            let answer = json!({
                "volume_withdrawn_ml": ml(withdrawal.withdrawn), "volume_expected_ml": ml(withdrawal.expected),
                "gap_ml": ml(withdrawal.gap.gap), "gap_needs_review": withdrawal.gap.stops_the_refill(),
                "at": instant(withdrawal.at),
            });
            state
                .store
                .record_programming(
                    &caller.0,
                    id,
                    "withdrawal",
                    &Value::Null,
                    "",
                    &answer,
                    "withdrawn: the reservoir is empty until the refill is committed",
                    state.clock.now(),
                )
                .await?;
            withdrawal
        }
    };
    let pending = programmer.stage_refill(added, concentration, bridge).await.map_err(pump_error)?;
    let refill = RefillInput {
        at: String::new(),
        volume_withdrawn_ml: ml(withdrawal.withdrawn),
        volume_added_ml: ml(added),
        concentration_micrograms_per_ml: micrograms_per_ml(concentration),
        lot,
        expires_on: expires_on.to_string(),
        nurse: caller.0.username.clone(),
        second_checker: input.second_checker.trim().to_owned(),
        place: input.place,
        drug: None,
    };
    let kind = StagedKind::Refill { input: Box::new(refill), expected: withdrawal.expected };
    Ok(keep_staged(state, id, kind, programmer, pending, caller.0.id).await)
}

/// A commit: the hash of the change reviewed, and the written reason where a warning needs one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitInput {
    /// The hash shown with the review.
    pub hash: String,
    /// Why a dangerous change is made.
    pub override_reason: Option<String>,
    /// A refill: the second checker's own password, confirming it in person. Checked as a
    /// sign-in (audited) before the commit; the programming records that it was.
    pub second_checker_password: Option<String>,
}

/// The change staged on pump `id`, as the review shows it (`None` when nothing is staged or it
/// has expired), with the id of the user who staged it.
pub async fn staged_on(state: &AppState, id: i64) -> Option<(Value, i64)> {
    let map = state.staged.lock().await;
    let staged = map.get(&id)?;
    let expires = staged.staged_at.checked_add(jiff::SignedDuration::from_mins(STAGED_MINUTES)).ok()?;
    (state.clock.now() <= expires).then(|| (staged_view(staged, id), staged.by))
}

/// Forgets the change staged on pump `id` by `by` (the person left the review): the pump
/// keeps running what it ran.
pub async fn discard_staged(state: &AppState, id: i64, by: i64) -> bool {
    let mut map = state.staged.lock().await;
    if map.get(&id).is_some_and(|s| s.by == by) {
        map.remove(&id);
        return true;
    }
    false
}

/// `POST /api/v1/pumps/{id}/program/commit`: commits the staged change by its hash.
pub async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // Both kinds of change are committed by the roles that may make them: check before reading.
    if !(crate::rules::access::allows(caller.0.role, Permission::Prescribe)
        || crate::rules::access::allows(caller.0.role, Permission::Refill))
    {
        caller.require(Permission::Prescribe)?;
    }
    let input: CommitInput = parse_body(&body)?;
    Ok(Json(commit_on(&state, &caller, id, input).await?))
}

/// Commits the change staged on pump `id` by its hash; what the pump answered is recorded.
pub async fn commit_on(state: &AppState, caller: &Caller, id: i64, input: CommitInput) -> Result<Value, ApiError> {
    if !(crate::rules::access::allows(caller.0.role, Permission::Prescribe)
        || crate::rules::access::allows(caller.0.role, Permission::Refill))
    {
        caller.require(Permission::Prescribe)?;
    }
    // A refill's second checker confirms with their own password, checked as their sign-in
    // (slow by design), outside the lock on every pump's staged change; the hash is checked
    // again under the lock below, so a change restaged meanwhile is not committed.
    let mut checker_signed_in = false;
    if let Some(password) = &input.second_checker_password {
        let checker = {
            let map = state.staged.lock().await;
            match map.get(&id) {
                Some(staged) if staged.by == caller.0.id && input.hash.trim() == staged.hash => match &staged.kind {
                    StagedKind::Refill { input: refill, .. } => Some(refill.second_checker.clone()),
                    StagedKind::Therapy { .. } => None,
                },
                // Refused below, with the reason.
                _ => None,
            }
        };
        if let Some(checker) = checker {
            match state.store.sign_in(&checker, password, state.clock.now()).await {
                Ok((token, _)) => {
                    state.store.sign_out(&token.token, state.clock.now()).await?;
                    checker_signed_in = true;
                }
                Err(ClinicError::Unauthorized(_)) => {
                    return Err(ApiError(invalid(
                        "second_checker_password",
                        format!("the password is not {checker}'s: the second checker enters their own"),
                    )));
                }
                Err(ClinicError::TooManyAttempts { detail, .. }) => {
                    return Err(ApiError(invalid("second_checker_password", detail)));
                }
                Err(e) => return Err(ApiError(e)),
            }
        }
    }
    let mut map = state.staged.lock().await;
    let Some(staged) = map.get(&id) else {
        caller.require(Permission::Prescribe)?;
        return Err(ApiError(ClinicError::Conflict(
            "nothing is staged on this pump: stage the change and review it first".to_owned(),
        )));
    };
    match staged.kind {
        StagedKind::Therapy { .. } => caller.require(Permission::Prescribe)?,
        StagedKind::Refill { .. } => caller.require(Permission::Refill)?,
    }
    if staged.by != caller.0.id {
        return Err(ApiError(ClinicError::Conflict(
            "this change was staged by someone else: they commit it, or stage it again yourself".to_owned(),
        )));
    }
    if input.hash.trim() != staged.hash {
        return Err(ApiError(invalid(
            "hash",
            "this is not the hash of the change staged on the pump: review the change again",
        )));
    }
    if state.clock.now()
        > staged.staged_at.checked_add(jiff::SignedDuration::from_mins(STAGED_MINUTES)).unwrap_or(staged.staged_at)
    {
        map.remove(&id);
        return Err(ApiError(ClinicError::Conflict(
            "the staged change expired: stage it again and review it".to_owned(),
        )));
    }
    let confirmation = match (&input.override_reason, staged.pending.review().needs_override()) {
        (_, false) => Confirmation::Reviewed,
        (Some(reason), true) => Confirmation::Override(
            OverrideReason::parse(reason).map_err(|e| ApiError(invalid("override_reason", e.to_string())))?,
        ),
        (None, true) => {
            let dangers: Vec<String> = staged.pending.review().dangers().map(|w| w.sentence.clone()).collect();
            return Err(ApiError(ClinicError::NeedsOverride {
                dangers: dangers.join(" "),
                review: staged.review.clone(),
            }));
        }
    };
    let Some(mut staged) = map.remove(&id) else {
        return Err(ApiError(ClinicError::Conflict("nothing is staged on this pump".to_owned())));
    };
    drop(map);
    let now = state.clock.now();
    let result = staged.programmer.commit(&staged.pending, confirmation.clone()).await;
    let override_text = match &confirmation {
        Confirmation::Override(reason) => Some(reason.as_str().to_owned()),
        Confirmation::Reviewed => None,
    };
    let (committed_status, answer, outcome) = match result {
        Ok(committed) => {
            let status = committed.status.clone();
            (status, json!({"message": committed.message}), "committed")
        }
        Err(ProgrammerError::CommitUncertain(why)) => {
            // Reconcile: what does the pump run now?
            let status = staged.programmer.interrogate().await.ok();
            let took = status.as_ref().is_some_and(|s| match &staged.kind {
                StagedKind::Therapy { prescription, .. } => s.prescription.as_ref() == Some(prescription),
                StagedKind::Refill { .. } => !s.awaiting_refill,
            });
            let outcome = match (&status, took) {
                (Some(_), true) => "committed (reconciled by interrogation)",
                (Some(_), false) => "not committed (reconciled by interrogation)",
                (None, _) => "uncertain",
            };
            (status, json!({"error": why}), outcome)
        }
        Err(other) => {
            state
                .store
                .record_programming(
                    &caller.0,
                    id,
                    kind_name(&staged.kind),
                    &staged.review,
                    &staged.hash,
                    &json!({"error": other.to_string()}),
                    "refused",
                    now,
                )
                .await?;
            return Err(pump_error(other));
        }
    };
    // The written reason and the checker's sign-in are kept with what the pump answered.
    let mut answer = answer;
    if let Some(map) = answer.as_object_mut() {
        if let Some(reason) = &override_text {
            map.insert("override_reason".to_owned(), Value::from(reason.as_str()));
        }
        if matches!(staged.kind, StagedKind::Refill { .. }) {
            map.insert("second_checker_signed_in".to_owned(), Value::Bool(checker_signed_in));
        }
    }
    let programming = state
        .store
        .record_programming(&caller.0, id, kind_name(&staged.kind), &staged.review, &staged.hash, &answer, outcome, now)
        .await?;
    let mut recorded = Value::Null;
    if outcome.starts_with("committed") {
        let recorded_result = match &staged.kind {
            StagedKind::Therapy { prescription, reason } => {
                let verdict = staged.pending.review().titration.as_ref().map(|t| t.verdict.as_str());
                state
                    .store
                    .record_programmed_therapy(
                        &caller.0,
                        id,
                        prescription,
                        now,
                        reason,
                        &staged.review,
                        verdict,
                        override_text.as_deref(),
                    )
                    .await
            }
            StagedKind::Refill { input, expected } => {
                let input = RefillInput { at: instant(now), ..(**input).clone() };
                state.store.record_refill_expecting(&caller.0, id, input, Some(*expected), now).await
            }
        };
        recorded = match recorded_result {
            Ok(value) => value,
            Err(e) => {
                // The pump changed; the record must still learn what it runs.
                if let Some(status) = &committed_status {
                    let _ = record_status(state, caller, id, status).await;
                }
                return Err(ApiError(ClinicError::Pump(format!(
                    "the pump was changed (committed), but the record could not be written: {e}; record this {} in the record by hand now, before the patient leaves",
                    kind_name(&staged.kind)
                ))));
            }
        };
    }
    if let Some(status) = &committed_status {
        record_status(state, caller, id, status).await?;
    }
    if outcome == "uncertain" {
        return Err(ApiError(ClinicError::Pump("the link dropped during the commit and the pump could not be interrogated: the pump runs either the old or the new settings; interrogate it before the patient leaves".to_owned())));
    }
    Ok(json!({
        "programming_id": programming,
        "outcome": outcome,
        "answer": answer,
        "recorded": recorded,
        "pump": state.store.pump(id, state.clock.now()).await?,
    }))
}

fn kind_name(kind: &StagedKind) -> &'static str {
    match kind {
        StagedKind::Therapy { .. } => "therapy",
        StagedKind::Refill { .. } => "refill",
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<u32>,
    offset: Option<u64>,
}

/// `GET /api/v1/pumps/{id}/programmings`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.may_read_pump(&state, id).await?;
    let q = q.map_err(|_| ApiError(invalid("query", "limit and offset are whole numbers")))?.0;
    let (limit, offset) = crate::model::Page { limit: q.limit, offset: q.offset }.bounds()?;
    Ok(Json(json!(state.store.programmings(id, limit, offset).await?)))
}
