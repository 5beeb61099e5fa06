//! The refill, as the steps a nurse follows: confirm the patient and the pump; the volume the
//! pump should hold; the drug, its batch and expiry; the volume added; a bridge bolus when the
//! concentration changes; the second checker. Staging empties the reservoir through the
//! programmer, which measures what came out: the gap is then on the review page, where a gap
//! over the device's threshold stops the refill until the nurse writes a review, and the second
//! checker confirms with their own password before the commit.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use itb_clinic::api::AppState;
use itb_clinic::programming::{self, ProgramRefill};
use itb_clinic::rules::access::Permission;
use serde_json::Value;

use super::patient::Line;
use super::programming::PumpHeading;
use super::{Layout, PageError, page_id, render_form};
use crate::form::{Problems, problems_of};
use crate::session::Viewer;
use crate::view;

/// What the nurse typed.
#[derive(Debug, Clone, Default)]
pub struct RefillForm {
    pub checked: bool,
    pub concentration: String,
    pub lot: String,
    pub expires_on: String,
    pub volume: String,
    pub bridge: bool,
    pub place: String,
    pub checker: String,
}

/// A clinician who may check a refill.
pub struct Checker {
    pub username: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "refill.html")]
struct RefillPage {
    layout: Layout,
    head: PumpHeading,
    identity: Vec<Line>,
    other: Option<String>,
    gap_pending: bool,
    expected: String,
    current_concentration: String,
    capacity: String,
    form: RefillForm,
    checkers: Vec<Checker>,
    problems: Problems,
}

async fn page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    form: Option<RefillForm>,
    problems: Problems,
) -> Result<Response, PageError> {
    let patient_id = state.store.pump_patient(id).await?;
    viewer.may_read(patient_id)?;
    let now = state.clock.now();
    // The patient's record holds the pump as `store.pump` reads it: one read for both.
    let patient = state.store.patient(patient_id, now).await?;
    let pump = patient["pumps"]
        .as_array()
        .and_then(|pumps| pumps.iter().find(|p| p["id"].as_i64() == Some(id)))
        .cloned()
        .unwrap_or_default();
    if pump["state"].as_str() != Some("implanted") {
        return Err(PageError::Refused("This pump has been explanted: it cannot be refilled.".to_owned()));
    }
    let (row, rx) = state.store.pump_state(id).await?;
    let expected = itb_clinic::store::record::expected_now(&row, rx.as_ref(), now);
    let capacity = row.device().map(|d| d.reservoir.capacity.value).ok();
    let name = format!("{} {}", view::text(&patient["given_name"]), view::text(&patient["family_name"]));
    let head = PumpHeading {
        pump_id: id,
        patient_id,
        patient: name.clone(),
        nhs: view::text(&patient["nhs_number_display"]),
        serial: view::text(&pump["serial"]),
    };
    let identity = vec![
        Line::new("Name", name),
        Line::new("NHS number", view::text(&patient["nhs_number_display"])),
        Line::new("Date of birth", view::date(&patient["date_of_birth"])),
        Line::new("Pump", view::profile(&pump["profile"])),
        Line::new("Pump serial number", view::text(&pump["serial"])),
        Line::new("Prescription", view::prescription(&pump["prescription"]["prescription"])),
        Line::new("Refill due", view::date(&pump["refill"]["refill_due_on"])),
    ];
    let concentration = view::number(&pump["concentration_micrograms_per_ml"]);
    let capacity_ml = capacity.map(|c| itb_dose::text::volume(c).replace(" mL", "")).unwrap_or_default();
    let form = form.unwrap_or_else(|| RefillForm {
        concentration: concentration.clone(),
        volume: capacity_ml.clone(),
        place: "clinic".to_owned(),
        ..RefillForm::default()
    });
    let users = state.store.users(500, 0).await?;
    let checkers = users
        .items
        .iter()
        .filter(|u| u.role.is_clinical() && u.id != viewer.user.id)
        .map(|u| Checker { username: u.username.clone(), label: format!("{} ({})", u.username, u.role.describe()) })
        .collect();
    Ok(render_form(
        &RefillPage {
            layout: viewer.layout("Refill the pump"),
            head,
            identity,
            other: super::programming::staged_by_another(state, viewer, id).await?,
            gap_pending: pump["gap_review_pending"].as_bool().unwrap_or(false),
            expected: itb_dose::text::volume(expected),
            current_concentration: view::concentration(&pump["concentration_micrograms_per_ml"]),
            capacity: capacity.map(itb_dose::text::volume).unwrap_or_default(),
            form,
            checkers,
            problems: problems.clone(),
        },
        &problems,
    ))
}

/// `GET /pumps/{id}/refill`.
pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    viewer.require(Permission::Refill)?;
    page(&state, &viewer, id, None, Problems::none()).await
}

fn json_number(text: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(text).map_or_else(|_| Value::String(text.to_owned()), Value::Number)
}

/// `POST /pumps/{id}/refill`: checks the answers, empties the reservoir through the programmer
/// and stages the refill; then its review.
pub async fn stage(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let fields = viewer.form(&body)?;
    viewer.require(Permission::Refill)?;
    let form = RefillForm {
        checked: fields.has("identity_checked"),
        concentration: fields.get("concentration_micrograms_per_ml").to_owned(),
        lot: fields.get("lot").chars().take(60).collect(),
        expires_on: fields.get("expires_on").to_owned(),
        volume: fields.get("volume_added_ml").to_owned(),
        bridge: fields.has("bridge"),
        place: if fields.get("place") == "home" { "home" } else { "clinic" }.to_owned(),
        checker: fields.get("second_checker").to_owned(),
    };
    let mut problems = Problems::none();
    if !form.checked {
        problems
            .add("identity_checked", "Confirm you have checked the patient's identity and the pump's serial number");
    }
    let decimal =
        |text: &str| !text.is_empty() && text.len() <= 12 && serde_json::from_str::<serde_json::Number>(text).is_ok();
    if !decimal(&form.concentration) {
        problems.add(
            "concentration_micrograms_per_ml",
            "Enter the concentration on the vial in micrograms/mL, such as 2000",
        );
    }
    if form.lot.is_empty() {
        problems.add("lot", "Enter the batch (lot) number on the vial");
    }
    let expires = view::parse_day(&form.expires_on);
    if expires.is_none() {
        problems.add("expires_on", "Enter the expiry date on the vial, such as 30/06/2027");
    }
    if !decimal(&form.volume) {
        problems.add("volume_added_ml", "Enter the volume to add in mL, such as 20");
    }
    if form.checker.is_empty() {
        problems.add("second_checker", "Choose who checks this refill with you");
    }
    if problems.is_empty() {
        let input = ProgramRefill {
            volume_added_ml: json_number(&form.volume),
            concentration_micrograms_per_ml: json_number(&form.concentration),
            lot: form.lot.clone(),
            expires_on: expires.map(|d| d.to_string()).unwrap_or_default(),
            second_checker: form.checker.clone(),
            bridge: Some(form.bridge),
            place: Some(form.place.clone()),
        };
        match programming::stage_refill_on(&state, &viewer.caller(), id, input).await {
            Ok(_) => return Ok(Redirect::to(&format!("/pumps/{id}/review")).into_response()),
            Err(e) => match problems_of(&e.0, |f| if f == "body" { String::new() } else { f.to_owned() }) {
                Some(p) => problems.0.extend(p),
                None => return Err(PageError::from(e)),
            },
        }
    }
    page(&state, &viewer, id, Some(form), problems).await
}

/// `POST /refills/{id}/review`: records the review of a refill gap.
pub async fn review_gap(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let fields = viewer.form(&body)?;
    viewer.require(Permission::ReviewGap)?;
    let patient_id = state.store.refill_patient(id).await?;
    viewer.may_read(patient_id)?;
    let note = fields.text("note", 2000).unwrap_or_default();
    let field = format!("note-{id}");
    if note.is_empty() {
        let mut problems = Problems::none();
        problems.add(field, "Write what the review of the refill gap found and what was done");
        return super::patient::record_page(&state, &viewer, patient_id, String::new(), problems).await;
    }
    if let Err(e) = state.store.review_refill_gap(&viewer.user, id, &note, state.clock.now()).await {
        return match problems_of(&e, |_| field.clone()) {
            Some(p) => super::patient::record_page(&state, &viewer, patient_id, String::new(), Problems(p)).await,
            None => Err(PageError::from(e)),
        };
    }
    Ok(Redirect::to(&format!("/patients/{patient_id}?done=reviewed")).into_response())
}
