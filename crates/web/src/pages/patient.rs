//! The patient record: a summary, charts, a timeline; the patient list; the GP letter.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use itb_clinic::api::AppState;
use itb_clinic::rules::access::{Permission, Role};
use serde::Deserialize;
use serde_json::Value;

use super::{Layout, PageError, page_id, render, render_form};
use crate::chart::{Chart, Series, Style};
use crate::form::Problems;
use crate::session::Viewer;
use crate::view::{self, Tag};

/// A line of a summary list.
pub struct Line {
    pub label: String,
    pub value: String,
}

impl Line {
    pub fn new(label: &str, value: impl Into<String>) -> Self {
        Self { label: label.to_owned(), value: value.into() }
    }
}

/// An alert on the record.
pub struct Alert {
    pub title: String,
    pub text: String,
}

/// A refill gap waiting for its review.
pub struct GapToReview {
    pub refill_id: i64,
    pub text: String,
    pub error: Option<String>,
}

/// A pump on the record.
pub struct PumpView {
    pub id: i64,
    pub implanted: bool,
    pub heading: String,
    pub lines: Vec<Line>,
    pub due: Vec<Line>,
    pub tag: Tag,
    pub reservoir_chart: String,
    pub dose_chart: String,
    pub gaps: Vec<GapToReview>,
}

/// An event of the timeline.
pub struct Event {
    pub at: String,
    pub when: String,
    pub what: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "patient.html")]
struct PatientPage {
    layout: Layout,
    id: i64,
    nhs: String,
    summary: Vec<Line>,
    alerts: Vec<Alert>,
    pumps: Vec<PumpView>,
    events: Vec<Event>,
    may_interrogate: bool,
    may_prescribe: bool,
    may_refill: bool,
    may_book: bool,
    may_review_gap: bool,
    notice: String,
    problems: Problems,
}

#[derive(Debug, Deserialize, Default)]
pub struct RecordQuery {
    done: Option<String>,
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn ms(value: &Value) -> Option<i64> {
    value.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).map(jiff::Timestamp::as_millisecond)
}

fn num(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// What a notice after a change says.
fn notice(done: Option<&str>) -> String {
    match done {
        Some("booked") => "The appointment is booked.".to_owned(),
        Some("reviewed") => "The review of the refill gap is recorded.".to_owned(),
        Some("moved") => "The appointment is updated.".to_owned(),
        _ => String::new(),
    }
}

/// `GET /patients/{id}`.
pub async fn record(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    q: Result<Query<RecordQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let done = q.ok().and_then(|q| q.0.done);
    record_page(&state, &viewer, id, notice(done.as_deref()), Problems::none()).await
}

/// A patient's record, with the problems of a refused gap review (the field
/// `note-{refill id}`).
pub async fn record_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    notice: String,
    problems: Problems,
) -> Result<Response, PageError> {
    viewer.may_read(id)?;
    let now = state.clock.now();
    let patient = state.store.patient(id, now).await?;
    let name = format!("{} {}", view::text(&patient["given_name"]), view::text(&patient["family_name"]));
    let mut summary = vec![
        Line::new("NHS number", view::text(&patient["nhs_number_display"])),
        Line::new("Date of birth", view::date(&patient["date_of_birth"])),
        Line::new("Stage", view::stage(&patient["stage"])),
        Line::new(
            "Cause of spasticity",
            match (patient["origin"].as_str(), patient["injury_level"].as_str()) {
                (Some("spinal"), Some(level)) => format!("Spinal, injury at {level}"),
                (Some("spinal"), None) => "Spinal".to_owned(),
                (Some("cerebral"), _) => "Cerebral".to_owned(),
                _ => "Not recorded".to_owned(),
            },
        ),
        Line::new("GP practice", view::text(&patient["gp_practice"])),
    ];
    if let Some(weight) = patient["weight_kg"].as_f64() {
        summary.push(Line::new("Weight", format!("{weight} kg")));
    }
    let needs = view::text(&patient["communication_needs"]);
    if !needs.is_empty() {
        summary.push(Line::new("Communication needs", needs));
    }
    let mut alerts = Vec::new();
    if patient["high_risk"].as_bool().unwrap_or(false) {
        alerts.push(Alert {
            title: "High risk of harm from withdrawal".to_owned(),
            text: crate::form::sentence(&view::text(&patient["high_risk_reason"])),
        });
    }
    let mut pumps = Vec::new();
    let mut events = Vec::new();
    for pump in list(&patient["pumps"]) {
        let pump_id = pump["id"].as_i64().unwrap_or(0);
        pumps.push(pump_view(state, pump, now, &mut alerts, &mut events, &problems).await?);
        let _ = pump_id;
    }
    let appointments = state.store.appointments(None, Some(id), 200, 0).await?;
    for a in &appointments.items {
        let kind = view::appointment_kind(a["kind"].as_str().unwrap_or(""));
        let tag = view::appointment_tag(a["state"].as_str().unwrap_or(""));
        events.push(Event {
            at: a["on"].as_str().map_or_else(String::new, |d| format!("{d}T12:00:00Z")),
            when: a["on"].as_str().map_or_else(|| "No date yet".to_owned(), view::date_text),
            what: format!("Appointment: {kind}"),
            detail: match a["note"].as_str().filter(|n| !n.trim().is_empty()) {
                Some(note) => format!("{}. {}", tag.text, crate::form::sentence(note)),
                None => format!("{}.", tag.text),
            },
        });
    }
    events.sort_by(|a, b| b.at.cmp(&a.at));
    events.truncate(200);
    let title = if viewer.user.role == Role::Patient { "My record".to_owned() } else { name };
    Ok(render_form(
        &PatientPage {
            layout: viewer.layout(title),
            id,
            nhs: view::text(&patient["nhs_number_display"]),
            summary,
            alerts,
            pumps,
            events,
            may_interrogate: viewer.may(Permission::Interrogate),
            may_prescribe: viewer.may(Permission::Prescribe),
            may_refill: viewer.may(Permission::Refill),
            may_book: viewer.may(Permission::ManageAppointments),
            may_review_gap: viewer.may(Permission::ReviewGap),
            notice,
            problems: problems.clone(),
        },
        &problems,
    ))
}

async fn pump_view(
    state: &AppState,
    pump: &Value,
    now: jiff::Timestamp,
    alerts: &mut Vec<Alert>,
    events: &mut Vec<Event>,
    problems: &Problems,
) -> Result<PumpView, PageError> {
    let pump_id = pump["id"].as_i64().unwrap_or(0);
    let implanted = pump["state"].as_str() == Some("implanted");
    let rx = &pump["prescription"];
    let refill = &pump["refill"];
    let refills = state.store.refills(pump_id, 100, 0).await?;
    let prescriptions = state.store.prescriptions(pump_id, 100, 0).await?;
    let readings = state.store.interrogations(pump_id, 100, 0).await?;
    let mut lines = vec![
        Line::new("Pump", view::profile(&pump["profile"])),
        Line::new("Serial number", view::text(&pump["serial"])),
        Line::new("Implanted", view::date(&pump["implanted_at"])),
        Line::new(
            "Catheter",
            format!(
                "{} cm, tip at {}",
                view::number(&pump["catheter_cm"]),
                pump["catheter_tip_level"].as_str().unwrap_or("an unrecorded level")
            ),
        ),
        Line::new("Prescription", view::prescription(&rx["prescription"])),
        Line::new(
            "Daily dose",
            format!(
                "{} on the largest day; {} at most with every PTM bolus taken",
                view::per_day(&rx["largest_day_micrograms"]),
                view::per_day(&rx["worst_case_day_micrograms"])
            ),
        ),
        Line::new("Drug", format!("Baclofen {}", view::concentration(&pump["concentration_micrograms_per_ml"]))),
        Line::new("Low-reservoir alarm volume", view::ml(&pump["alarm_threshold_ml"])),
    ];
    if let Some(last) = refills.items.first() {
        lines.push(Line::new(
            "Last refill",
            format!(
                "{}: {} added, lot {}, by {} checked by {}",
                view::date(&last["at"]),
                view::ml(&last["volume_added_ml"]),
                view::text(&last["lot"]),
                view::text(&last["nurse"]),
                view::text(&last["second_checker"])
            ),
        ));
    }
    let battery_end = view::date(&pump["end_of_service_on"]);
    lines.push(Line::new(
        "Battery",
        if pump["elective_replacement"].as_bool().unwrap_or(false) {
            format!("Elective replacement indicator on: replace before {battery_end}")
        } else {
            format!("Expected to last until {battery_end}")
        },
    ));
    if !implanted {
        lines.push(Line::new(
            "Explanted",
            format!("{}: {}", view::date(&pump["explanted_at"]), view::text(&pump["explant_reason"])),
        ));
    }
    let due = vec![
        Line::new("Next refill due", view::date(&refill["refill_due_on"])),
        Line::new("Low-reservoir alarm expected", view::date(&refill["low_reservoir_alarm_at"])),
        Line::new("Drug expires in the pump", view::date(&refill["drug_expires_at"])),
        Line::new("Refill date limited by", view::limited_by(&refill["limited_by"])),
    ];
    let today = itb_clinic::store::record::service_date(now);
    let tag = match (refill["refill_due_on"].as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok()), implanted) {
        (_, false) => Tag::new("grey", "Explanted"),
        (None, true) => Tag::new("grey", "Refill date unknown"),
        (Some(d), true) => {
            let bucket = itb_clinic::rules::worklist::Bucket::of(Some(d), today);
            view::bucket_tag(bucket.as_str())
        }
    };
    if implanted {
        if let Some(reason) = refill["unknown_reason"].as_str() {
            alerts.push(Alert { title: "Refill date unknown".to_owned(), text: crate::form::sentence(reason) });
        }
        if pump["replacement_due"].is_object() || pump["elective_replacement"].as_bool().unwrap_or(false) {
            alerts.push(Alert {
                title: "Pump replacement due".to_owned(),
                text: format!("The battery is expected to end by {battery_end}: plan the replacement."),
            });
        }
    }
    let mut gaps = Vec::new();
    for r in &refills.items {
        let gap_text = if r["gap_direction"].is_null() {
            format!("the volume withdrawn ({}) was the volume expected", view::ml(&r["volume_withdrawn_ml"]))
        } else {
            format!(
                "{} {} than expected came out (expected {}, withdrawn {})",
                view::ml(&r["gap_ml"]),
                if r["gap_direction"].as_str() == Some("more") { "more" } else { "less" },
                view::ml(&r["volume_expected_ml"]),
                view::ml(&r["volume_withdrawn_ml"])
            )
        };
        if r["gap_needs_review"].as_bool().unwrap_or(false) && !r["gap_reviewed"].as_bool().unwrap_or(false) {
            alerts.push(Alert {
                title: "Refill gap to review".to_owned(),
                text: format!("At the refill on {}, {gap_text}.", view::date(&r["at"])),
            });
            let refill_id = r["id"].as_i64().unwrap_or(0);
            gaps.push(GapToReview {
                refill_id,
                text: gap_text.clone(),
                error: problems.at(&format!("note-{refill_id}")).map(str::to_owned),
            });
        }
        let mut detail = format!(
            "{} of {} added (lot {}, expires {}); {}. Next due {}.",
            view::ml(&r["volume_added_ml"]),
            view::concentration(&r["concentration_micrograms_per_ml"]),
            view::text(&r["lot"]),
            view::date(&r["expires_on"]),
            gap_text,
            view::date(&r["refill_due_on"])
        );
        if let Some(review) = r["gap_review"].as_object() {
            detail.push_str(&format!(
                " Gap reviewed: {}",
                review.get("note").and_then(Value::as_str).unwrap_or_default()
            ));
        }
        events.push(Event {
            at: view::text(&r["at"]),
            when: view::when(&r["at"]),
            what: format!("Refill by {} checked by {}", view::text(&r["nurse"]), view::text(&r["second_checker"])),
            detail,
        });
    }
    for p in &prescriptions.items {
        let mut detail = format!("{}. Reason: {}", view::prescription(&p["prescription"]), view::text(&p["reason"]));
        if let Some(o) = p["override_reason"].as_str() {
            detail.push_str(&format!(". Warning overridden: {o}"));
        }
        events.push(Event {
            at: view::text(&p["at"]),
            when: view::when(&p["at"]),
            what: format!(
                "Prescription version {} by {}",
                view::number(&p["version"]),
                view::text(&p["authorised_by"])
            ),
            detail,
        });
    }
    let mut reading_points = Vec::new();
    for i in &readings.items {
        let reported = &i["reported"];
        if let Some(at) = ms(&i["at"]) {
            reading_points.push((at, num(&reported["reservoir_ml"])));
        }
        events.push(Event {
            at: view::text(&i["at"]),
            when: view::when(&i["at"]),
            what: "Interrogation".to_owned(),
            detail: format!(
                "The pump reported {} in the reservoir. {}.",
                view::ml(&reported["reservoir_ml"]),
                view::pump_state(&reported["state"])
            ),
        });
        for alarm in list(&reported["alarms"]) {
            events.push(Event {
                at: view::text(&alarm["raised_at"]),
                when: view::when(&alarm["raised_at"]),
                what: format!("Alarm: {}", alarm["kind"].as_str().unwrap_or("").replace('_', " ")),
                detail: if alarm["critical"].as_bool().unwrap_or(false) {
                    "Critical alarm raised by the pump.".to_owned()
                } else {
                    "Alarm raised by the pump.".to_owned()
                },
            });
        }
    }
    reading_points.sort_by_key(|p| p.0);
    // The reservoir: each fill down to the next withdrawal, then the estimate to the alarm.
    let mut fills: Vec<&Value> = refills.items.iter().collect();
    fills.sort_by_key(|r| ms(&r["at"]));
    let mut record_line = Vec::new();
    for r in &fills {
        if let Some(at) = ms(&r["at"]) {
            record_line.push((at, num(&r["volume_withdrawn_ml"])));
            record_line.push((at, num(&r["volume_added_ml"])));
        }
    }
    let mut projection = Vec::new();
    if implanted {
        if let Some(at) = ms(&pump["reservoir"]["at"]) {
            projection.push((at, num(&pump["reservoir"]["volume_ml"])));
        }
        if let Some(alarm) = ms(&refill["low_reservoir_alarm_at"]) {
            projection.push((alarm, num(&pump["alarm_threshold_ml"])));
        }
    }
    let reservoir_chart = Chart {
        id: format!("reservoir-{pump_id}"),
        title: "Drug in the reservoir".to_owned(),
        description: format!(
            "Millilitres in the reservoir at each refill (withdrawn, then filled), {} pump readings as dots, and the expected fall to the alarm volume of {} on {} as a dashed line.",
            reading_points.len(),
            view::ml(&pump["alarm_threshold_ml"]),
            view::date(&refill["low_reservoir_alarm_at"])
        ),
        unit: "mL",
        series: vec![
            Series { style: Style::Line, points: record_line },
            Series { style: Style::Dashed, points: projection },
            Series { style: Style::Dots, points: reading_points },
        ],
        threshold: Some((num(&pump["alarm_threshold_ml"]), format!("alarm at {}", view::ml(&pump["alarm_threshold_ml"])))),
        today: now.as_millisecond(),
    }
    .svg();
    let mut versions: Vec<&Value> = prescriptions.items.iter().collect();
    versions.sort_by_key(|p| ms(&p["at"]));
    let mut dose_line = Vec::new();
    for p in &versions {
        if let Some(at) = ms(&p["at"]) {
            if let Some(last) = dose_line.last().map(|&(_, y): &(i64, f64)| y) {
                dose_line.push((at, last));
            }
            dose_line.push((at, num(&p["largest_day_micrograms"])));
        }
    }
    if let Some(&(_, y)) = dose_line.last() {
        dose_line.push((now.as_millisecond(), y));
    }
    let dose_chart = Chart {
        id: format!("dose-{pump_id}"),
        title: "Daily dose".to_owned(),
        description: format!(
            "Micrograms a day on the largest day of each prescription, {} {}, now {}.",
            versions.len(),
            if versions.len() == 1 { "version" } else { "versions" },
            view::per_day(&rx["largest_day_micrograms"])
        ),
        unit: "micrograms a day",
        series: vec![Series { style: Style::Line, points: dose_line }],
        threshold: None,
        today: now.as_millisecond(),
    }
    .svg();
    Ok(PumpView {
        id: pump_id,
        implanted,
        heading: format!("{} pump {}", if implanted { "Implanted" } else { "Explanted" }, view::text(&pump["serial"])),
        lines,
        due,
        tag,
        reservoir_chart,
        dose_chart,
        gaps,
    })
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchQuery {
    q: Option<String>,
    page: Option<String>,
}

/// A patient found.
pub struct Found {
    pub id: i64,
    pub name: String,
    pub nhs: String,
    pub born: String,
    pub stage: String,
}

#[derive(Template)]
#[template(path = "patients.html")]
struct PatientsPage {
    layout: Layout,
    q: String,
    found: Vec<Found>,
    total: i64,
    next: Option<String>,
}

/// `GET /patients?q=`: patients by family name.
pub async fn search(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    if viewer.user.role == Role::Patient {
        return Err(PageError::Redirect("/me".to_owned()));
    }
    viewer.require(Permission::ReadRecord)?;
    let q = q.map(|q| q.0).unwrap_or_default();
    let text: String = q.q.as_deref().unwrap_or("").trim().chars().take(60).collect();
    let page = q.page.as_deref().unwrap_or("1").parse::<i64>().ok().filter(|p| (1..=10_000).contains(p)).unwrap_or(1);
    let listed = if text.is_empty() {
        state.store.patients(None, 50, (page - 1) * 50).await?
    } else {
        state.store.find_patients(&text, 50, (page - 1) * 50).await?
    };
    let found: Vec<Found> = listed
        .items
        .iter()
        .map(|p| Found {
            id: p["id"].as_i64().unwrap_or(0),
            name: format!("{}, {}", view::text(&p["family_name"]).to_uppercase(), view::text(&p["given_name"])),
            nhs: view::text(&p["nhs_number_display"]),
            born: view::date(&p["date_of_birth"]),
            stage: view::stage(&p["stage"]),
        })
        .collect();
    let shown = (page - 1) * 50 + i64::try_from(found.len()).unwrap_or(0);
    Ok(render(&PatientsPage {
        layout: viewer.layout("Patients"),
        next: (shown < listed.total).then(|| format!("/patients?q={}&page={}", view::url_encode(&text), page + 1)),
        q: text,
        found,
        total: listed.total,
    }))
}

#[derive(Template)]
#[template(path = "letter.html")]
struct LetterPage {
    layout: Layout,
    today: String,
    gp: String,
    name: String,
    nhs: String,
    born: String,
    subject: String,
    paragraphs: Vec<String>,
    lines: Vec<Line>,
    signed: String,
}

/// `GET /patients/{id}/letter`: the letter to the GP after the latest prescription change or
/// refill, printable.
pub async fn letter(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    viewer.require(Permission::Worklist)?;
    viewer.may_read(id)?;
    let now = state.clock.now();
    let patient = state.store.patient(id, now).await?;
    let Some(pump) = list(&patient["pumps"]).iter().find(|p| p["state"].as_str() == Some("implanted")) else {
        return Err(PageError::Refused(
            "This patient has no implanted pump, so there is no refill or prescription to write to the GP about."
                .to_owned(),
        ));
    };
    let pump_id = pump["id"].as_i64().unwrap_or(0);
    let refills = state.store.refills(pump_id, 1, 0).await?;
    let rx = &pump["prescription"];
    let last_refill = refills.items.first();
    let refill_at = last_refill.and_then(|r| ms(&r["at"])).unwrap_or(0);
    let rx_at = ms(&rx["at"]).unwrap_or(0);
    let name = format!("{} {}", view::text(&patient["given_name"]), view::text(&patient["family_name"]));
    let refill = &pump["refill"];
    let mut paragraphs = Vec::new();
    let subject;
    if rx_at >= refill_at {
        subject = format!("Intrathecal baclofen: prescription changed on {}", view::date(&rx["at"]));
        paragraphs.push(format!(
            "We changed {name}'s intrathecal baclofen prescription on {}. The pump now gives {}.",
            view::date(&rx["at"]),
            view::prescription_plain(&rx["prescription"]),
        ));
        paragraphs.push(format!("Reason for the change: {}.", view::text(&rx["reason"]).trim_end_matches('.')));
    } else if let Some(r) = last_refill {
        subject = format!("Intrathecal baclofen: pump refilled on {}", view::date(&r["at"]));
        paragraphs.push(format!(
            "We refilled {name}'s intrathecal baclofen pump on {} with {} of baclofen {}. The prescription is unchanged: {}.",
            view::date(&r["at"]),
            view::ml(&r["volume_added_ml"]),
            view::concentration(&r["concentration_micrograms_per_ml"]),
            view::prescription_plain(&rx["prescription"])
        ));
    } else {
        subject = "Intrathecal baclofen: current treatment".to_owned();
    }
    paragraphs.push(format!(
        "The next refill is due by {}. Please do not prescribe oral baclofen changes without speaking to us, and contact us at once if {name} has signs of overdose (drowsiness, weakness of the legs, dizziness, slow or shallow breathing) or of withdrawal (more stiffness or spasms, itching, fever, a fast heart rate, low blood pressure, confusion). Withdrawal can be life-threatening: do not wait for the next appointment.",
        view::date(&refill["refill_due_on"])
    ));
    let lines = vec![
        Line::new(
            "Drug",
            format!("Baclofen {} intrathecal", view::concentration(&pump["concentration_micrograms_per_ml"])),
        ),
        Line::new("Prescription", view::prescription_plain(&rx["prescription"])),
        Line::new("Daily dose", view::per_day(&rx["largest_day_micrograms"])),
        Line::new("Pump", format!("{}, serial {}", view::profile(&pump["profile"]), view::text(&pump["serial"]))),
        Line::new("Next refill due", view::date(&refill["refill_due_on"])),
    ];
    Ok(render(&LetterPage {
        layout: viewer.layout("Letter to the GP"),
        today: itb_dose::text::civil_date(itb_clinic::store::record::service_date(now)),
        gp: view::text(&patient["gp_practice"]),
        name,
        nhs: view::text(&patient["nhs_number_display"]),
        born: view::date(&patient["date_of_birth"]),
        subject,
        paragraphs,
        lines,
        signed: viewer.user.username.clone(),
    }))
}
