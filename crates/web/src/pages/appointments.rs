//! Appointments: a day's list and a week's view, booking, and moving an appointment through
//! arrived, completed, missed and cancelled.

use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use itb_clinic::api::AppState;
use itb_clinic::rules::access::Permission;
use itb_clinic::rules::appointments::{Kind, State as Visit, transition};
use itb_clinic::store::record::{AppointmentChange, AppointmentInput, service_date};
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::Value;

use super::{Layout, PageError, page_id, render, render_form};
use crate::form::{Fields, Problems, problems_of};
use crate::session::Viewer;
use crate::view::{self, Tag};

/// A state an appointment may move to, for its form.
pub struct Move {
    pub value: &'static str,
    pub label: &'static str,
}

/// An appointment in a list.
pub struct Row {
    pub id: i64,
    pub patient_href: String,
    pub name: String,
    pub nhs: String,
    pub kind: &'static str,
    pub tag: Tag,
    pub place: &'static str,
    pub note: String,
    pub moves: Vec<Move>,
    /// What was typed, when a change was refused.
    pub chosen: String,
    pub reason: String,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct DayQuery {
    on: Option<String>,
    done: Option<String>,
}

fn parse_day(text: Option<&str>, today: Date) -> Result<Date, PageError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(today),
        Some(t) => view::parse_day(t).ok_or_else(|| {
            PageError::BadRequest(format!(
                "'{}' is not a date: choose a day from the calendar.",
                itb_clinic::model::short(t)
            ))
        }),
    }
}

fn moves(state: &str, has_date: bool) -> Vec<Move> {
    let Ok(from) = Visit::parse(state) else { return Vec::new() };
    [
        (Visit::Arrived, "Arrived"),
        (Visit::Completed, "Completed"),
        (Visit::Missed, "Missed"),
        (Visit::Cancelled, "Cancelled"),
    ]
    .into_iter()
    .filter(|(to, _)| transition(from, *to, has_date).is_ok())
    .map(|(to, label)| Move { value: to.as_str(), label })
    .collect()
}

async fn rows(state: &AppState, items: &[Value], may_move: bool) -> Result<Vec<Row>, PageError> {
    let ids: Vec<i64> = items.iter().filter_map(|a| a["patient_id"].as_i64()).collect();
    let names = state.store.patient_names(&ids).await?;
    Ok(items
        .iter()
        .map(|a| {
            let patient = a["patient_id"].as_i64().unwrap_or(0);
            let (name, nhs) = names.get(&patient).cloned().unwrap_or_default();
            let state_text = a["state"].as_str().unwrap_or("");
            Row {
                id: a["id"].as_i64().unwrap_or(0),
                patient_href: format!("/patients/{patient}"),
                name,
                nhs: view::nhs(&nhs),
                kind: view::appointment_kind(a["kind"].as_str().unwrap_or("")),
                tag: view::appointment_tag(state_text),
                place: if a["place"].as_str() == Some("home") { "Home visit" } else { "Clinic" },
                note: view::text(&a["note"]),
                moves: if may_move { moves(state_text, !a["on"].is_null()) } else { Vec::new() },
                chosen: String::new(),
                reason: String::new(),
                error: None,
            }
        })
        .collect())
}

#[derive(Template)]
#[template(path = "appointments.html")]
struct DayPage {
    layout: Layout,
    day: String,
    day_iso: String,
    previous: String,
    next: String,
    week: String,
    rows: Vec<Row>,
    notice: String,
    problems: Problems,
}

/// `GET /appointments?on=`: a day's appointments.
pub async fn day(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<DayQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    viewer.require(Permission::Worklist)?;
    let q = q.map(|q| q.0).unwrap_or_default();
    let today = service_date(state.clock.now());
    let on = parse_day(q.on.as_deref(), today)?;
    let notice = if q.done.as_deref() == Some("moved") { "The appointment is updated." } else { "" };
    day_page(&state, &viewer, on, notice, Problems::none(), None).await
}

/// A day's appointments, with the problems of a refused change (`typed`: the appointment and
/// the state and reason typed for it, kept).
async fn day_page(
    state: &AppState,
    viewer: &Viewer,
    on: Date,
    notice: &str,
    problems: Problems,
    typed: Option<(i64, String, String)>,
) -> Result<Response, PageError> {
    let listed = state.store.appointments(Some(on), None, 500, 0).await?;
    let mut rows = rows(state, &listed.items, viewer.may(Permission::ManageAppointments)).await?;
    if let Some((id, to, reason)) = &typed
        && let Some(row) = rows.iter_mut().find(|r| r.id == *id)
    {
        row.reason = reason.clone();
        row.chosen = to.clone();
        row.error = problems.at(&format!("reason-{id}")).map(str::to_owned);
    }
    let shift = |days: i64| on.checked_add(jiff::Span::new().days(days)).unwrap_or(on).to_string();
    Ok(render_form(
        &DayPage {
            problems: problems.clone(),
            layout: viewer.layout(format!("Appointments on {}", itb_dose::text::civil_date(on))),
            day: itb_dose::text::civil_date(on),
            day_iso: on.to_string(),
            previous: shift(-1),
            next: shift(1),
            week: week_start(on).to_string(),
            rows,
            notice: notice.to_owned(),
        },
        &problems,
    ))
}

fn week_start(on: Date) -> Date {
    let back = i64::from(on.weekday().to_monday_zero_offset());
    on.checked_sub(jiff::Span::new().days(back)).unwrap_or(on)
}

/// A day of the week view.
pub struct WeekDay {
    pub heading: String,
    pub href: String,
    pub rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "week.html")]
struct WeekPage {
    layout: Layout,
    days: Vec<WeekDay>,
    previous: String,
    next: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct WeekQuery {
    start: Option<String>,
}

/// `GET /appointments/week?start=`: Monday to Sunday.
pub async fn week(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<WeekQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    viewer.require(Permission::Worklist)?;
    let today = service_date(state.clock.now());
    let start = week_start(parse_day(q.as_ref().ok().and_then(|q| q.start.as_deref()), today)?);
    let mut days = Vec::new();
    for offset in 0..7 {
        let on = start.checked_add(jiff::Span::new().days(offset)).unwrap_or(start);
        let listed = state.store.appointments(Some(on), None, 200, 0).await?;
        days.push(WeekDay {
            heading: on.strftime("%a %-d %b").to_string(),
            href: format!("/appointments?on={on}"),
            rows: rows(&state, &listed.items, false).await?,
        });
    }
    let shift = |d: i64| start.checked_add(jiff::Span::new().days(d)).unwrap_or(start).to_string();
    Ok(render(&WeekPage {
        layout: viewer.layout(format!("Appointments in the week of {}", itb_dose::text::civil_date(start))),
        days,
        previous: shift(-7),
        next: shift(7),
    }))
}

/// What the booking form holds.
#[derive(Debug, Clone, Default)]
pub struct Booking {
    pub patient_id: i64,
    pub pump_id: Option<i64>,
    pub kind: String,
    pub on: String,
    pub place: String,
    pub note: String,
    /// Why a refill is booked after its due date (asked for only then).
    pub late_reason: String,
}

/// A kind of appointment, for the form.
pub struct KindOption {
    pub value: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "book.html")]
struct BookPage {
    layout: Layout,
    patient: String,
    booking: Booking,
    pump: String,
    kinds: Vec<KindOption>,
    due: String,
    problems: Problems,
}

#[derive(Debug, Deserialize, Default)]
pub struct NewQuery {
    patient: Option<String>,
    pump: Option<String>,
    kind: Option<String>,
}

async fn book_page(
    state: &AppState,
    viewer: &Viewer,
    booking: Booking,
    problems: Problems,
) -> Result<Response, PageError> {
    viewer.may_read(booking.patient_id)?;
    let now = state.clock.now();
    let patient = state.store.patient(booking.patient_id, now).await?;
    let name = format!(
        "{} {}, NHS number {}",
        view::text(&patient["given_name"]),
        view::text(&patient["family_name"]),
        view::text(&patient["nhs_number_display"])
    );
    let mut due = String::new();
    let mut pump = String::new();
    if let Some(pump_id) = booking.pump_id {
        let p = state.store.pump(pump_id, now).await?;
        if p["patient_id"].as_i64() != Some(booking.patient_id) {
            return Err(PageError::BadRequest("This pump is not this patient's.".to_owned()));
        }
        due = view::date(&p["refill"]["refill_due_on"]);
        pump = format!("Pump {}", view::text(&p["serial"]));
    }
    let kinds =
        Kind::ALL.iter().map(|k| KindOption { value: k.as_str(), label: view::appointment_kind(k.as_str()) }).collect();
    Ok(render_form(
        &BookPage {
            layout: viewer.layout("Book an appointment"),
            patient: name,
            booking,
            pump,
            kinds,
            due,
            problems: problems.clone(),
        },
        &problems,
    ))
}

/// `GET /appointments/new?patient=&pump=&kind=`.
pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<NewQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    viewer.require(Permission::ManageAppointments)?;
    let q = q.map(|q| q.0).unwrap_or_default();
    let patient_id = page_id(q.patient.as_deref().unwrap_or(""))?;
    let pump_id = q.pump.as_deref().filter(|p| !p.is_empty()).map(page_id).transpose()?;
    let booking = Booking {
        patient_id,
        pump_id,
        kind: q.kind.unwrap_or_else(|| "refill".to_owned()),
        place: "clinic".to_owned(),
        ..Booking::default()
    };
    book_page(&state, &viewer, booking, Problems::none()).await
}

fn booking_of(fields: &Fields) -> Result<Booking, PageError> {
    Ok(Booking {
        patient_id: page_id(fields.get("patient_id"))?,
        pump_id: Some(fields.get("pump_id")).filter(|p| !p.is_empty()).map(page_id).transpose()?,
        kind: fields.get("kind").to_owned(),
        on: fields.get("on").to_owned(),
        place: if fields.get("place") == "home" { "home" } else { "clinic" }.to_owned(),
        note: fields.text("note", 400).unwrap_or_default(),
        late_reason: fields.text("late_reason", 300).unwrap_or_default(),
    })
}

/// `POST /appointments`: books; a refill booked after the refill-due date needs a note saying
/// why.
pub async fn book(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Result<Response, PageError> {
    let fields = viewer.form(&body)?;
    viewer.require(Permission::ManageAppointments)?;
    let booking = booking_of(&fields)?;
    viewer.may_read(booking.patient_id)?;
    let from_refill = fields.get("from") == "refill";
    let now = state.clock.now();
    let mut problems = Problems::none();
    let mut late = None;
    let on = view::parse_day(&booking.on);
    if booking.on.is_empty() {
        problems.add("on", "Choose the date of the appointment");
    } else if on.is_none() {
        problems.add("on", "Enter a real date, such as 16/02/2027");
    } else if on.is_some_and(|d| d < service_date(now)) {
        problems.add("on", "The date is in the past: choose today or a later day");
    } else if on.is_some_and(|d| d > service_date(now).checked_add(jiff::Span::new().years(2)).unwrap_or(d)) {
        problems.add(
            "on",
            "Book within the next two years: this date is further ahead than any appointment the service plans",
        );
    }
    // The same appointment twice (a form sent again) is refused.
    if let Some(day) = on
        && problems.is_empty()
    {
        let open = state.store.appointments(None, Some(booking.patient_id), 500, 0).await?;
        let same = open.items.iter().any(|a| {
            a["kind"].as_str() == Some(booking.kind.as_str())
                && a["pump_id"].as_i64() == booking.pump_id
                && a["on"].as_str() == Some(day.to_string().as_str())
                && matches!(a["state"].as_str(), Some("requested" | "scheduled" | "arrived"))
        });
        if same {
            problems.add(
                "on",
                format!(
                    "This appointment is already booked for {}: it was not booked twice",
                    itb_dose::text::civil_date(day)
                ),
            );
        }
    }
    if let (Some(pump_id), Some(day), "refill") = (booking.pump_id, on, booking.kind.as_str()) {
        let pump = state.store.pump(pump_id, now).await?;
        let due = pump["refill"]["refill_due_on"].as_str().and_then(|d| d.parse::<Date>().ok());
        if itb_clinic::rules::worklist::booking_after_due(Some(day), due) {
            let reason = itb_dose::review::OverrideReason::parse(&booking.late_reason);
            if !booking.late_reason.is_empty()
                && let Err(e) = &reason
            {
                problems.add("late_reason", crate::form::sentence(&e.to_string()));
            } else if booking.late_reason.is_empty() {
                problems.add(
                    "late_reason",
                    format!(
                        "{} is after the refill-due date of {}: the pump may alarm or run out first. Choose an earlier date, or write why the refill cannot be sooner",
                        itb_dose::text::civil_date(day),
                        view::date(&pump["refill"]["refill_due_on"])
                    ),
                );
            } else {
                late = Some(format!("Booked after the refill-due date: {}", booking.late_reason));
            }
        }
    }
    if problems.is_empty() {
        let input = AppointmentInput {
            patient_id: booking.patient_id,
            pump_id: booking.pump_id,
            kind: booking.kind.clone(),
            state: None,
            on: on.map(|d| d.to_string()),
            place: Some(booking.place.clone()),
            note: match (booking.note.as_str(), late) {
                ("", None) => None,
                (note, None) => Some(note.to_owned()),
                ("", Some(late)) => Some(late),
                (note, Some(late)) => Some(format!("{note}. {late}")),
            },
        };
        match state.store.book_appointment(&viewer.user, input, now).await {
            Ok(_) => return Ok(Redirect::to(&format!("/patients/{}?done=booked", booking.patient_id)).into_response()),
            Err(e) => match problems_of(&e, str::to_owned) {
                Some(p) => problems.0.extend(p),
                None => return Err(PageError::from(e)),
            },
        }
    }
    if from_refill && let Some(pump_id) = booking.pump_id {
        // Back to the refill's answer page, the booking as typed, so nothing is lost.
        let programmings = state.store.programmings(pump_id, 1, 0).await?;
        if let Some(p) = programmings.items.first() {
            let (head, pump) = super::programming::heading_of(&state, &viewer, pump_id).await?;
            return super::programming::done_page(&viewer, head, &pump, p, problems, Some(&booking), service_date(now));
        }
    }
    book_page(&state, &viewer, booking, problems).await
}

/// `POST /appointments/{id}/state`.
pub async fn change(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let fields = viewer.form(&body)?;
    viewer.require(Permission::ManageAppointments)?;
    let appointment = state.store.appointment(id).await?;
    let to = fields.get("state").to_owned();
    let typed_reason = fields.text("reason", 500).unwrap_or_default();
    let day = appointment["on"]
        .as_str()
        .and_then(|d| d.parse::<Date>().ok())
        .unwrap_or_else(|| service_date(state.clock.now()));
    let reason = match (typed_reason.as_str(), to.as_str()) {
        ("", "arrived") => "the patient arrived".to_owned(),
        ("", "completed") => "the appointment took place".to_owned(),
        ("", _) => {
            let mut problems = Problems::none();
            problems.add(format!("reason-{id}"), "Write why the appointment was missed or cancelled");
            return day_page(&state, &viewer, day, "", problems, Some((id, to, typed_reason))).await;
        }
        (typed, _) => typed.to_owned(),
    };
    let change = AppointmentChange { state: to.clone(), on: None, reason };
    if let Err(e) = state.store.change_appointment(&viewer.user, id, change, state.clock.now()).await {
        return match problems_of(&e, |_| format!("reason-{id}")) {
            Some(p) => day_page(&state, &viewer, day, "", Problems(p), Some((id, to, typed_reason))).await,
            None => Err(PageError::from(e)),
        };
    }
    Ok(Redirect::to(&format!("/appointments?on={day}&done=moved")).into_response())
}
