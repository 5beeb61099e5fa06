//! The patient's own view: the next refill and alarm dates in plain words, the travel check,
//! what overdose and withdrawal feel like and what to do, the service's contacts, and the
//! identification card.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use itb_clinic::api::AppState;
use itb_clinic::rules::access::Role;
use itb_clinic::store::record::service_date;
use itb_dose::calc::travel;
use serde::Deserialize;
use serde_json::Value;

use super::patient::Line;
use super::{Layout, PageError, render, render_form};
use crate::form::Problems;
use crate::session::Viewer;
use crate::view;

/// The service's contacts, as the patient's pages and card show them.
pub struct Contacts {
    pub daytime: &'static str,
    pub out_of_hours: &'static str,
    pub email: &'static str,
}

/// The demo service's contacts (numbers from the range Ofcom keeps for drama, so no one real is
/// called).
pub const CONTACTS: Contacts = Contacts {
    daytime: "01632 960 123 (Monday to Friday, 9am to 5pm)",
    out_of_hours: "01632 960 999 (the on-call neurosurgery registrar, evenings, nights and weekends)",
    email: "itb.service@example.nhs.uk",
};

/// The patient's own pump, from their record.
struct Own {
    name: String,
    nhs: String,
    pump: Option<Value>,
}

async fn own(state: &AppState, viewer: &Viewer) -> Result<(Own, i64), PageError> {
    if viewer.user.role != Role::Patient {
        return Err(PageError::Forbidden(
            "These pages are for patients, about their own pump. Staff see a patient's record from the worklist."
                .to_owned(),
        ));
    }
    let Some(id) = viewer.user.patient_id else {
        return Err(PageError::NotFound("Your account is not linked to a record: call the service.".to_owned()));
    };
    let patient = state.store.patient(id, state.clock.now()).await?;
    let pump = patient["pumps"]
        .as_array()
        .and_then(|pumps| pumps.iter().find(|p| p["state"].as_str() == Some("implanted")))
        .cloned();
    Ok((
        Own {
            name: format!("{} {}", view::text(&patient["given_name"]), view::text(&patient["family_name"])),
            nhs: view::text(&patient["nhs_number_display"]),
            pump,
        },
        id,
    ))
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    layout: Layout,
    has_pump: bool,
    overdue: bool,
    refill_due: String,
    alarm: String,
    booked: String,
    prescription: String,
    back: String,
    answer: Option<(String, String)>,
    problems: Problems,
    contacts: Contacts,
}

#[derive(Debug, Deserialize, Default)]
pub struct TravelQuery {
    back: Option<String>,
}

fn long_date(value: &Value) -> String {
    match view::day_of(value) {
        Some(day) => day.strftime("%A %-d %B %Y").to_string(),
        None => "not known yet: ask the service".to_owned(),
    }
}

/// `GET /me?back=`: the patient's own view with the travel check.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<TravelQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let (own, patient_id) = own(&state, &viewer).await?;
    let today = service_date(state.clock.now());
    let back = q.ok().and_then(|q| q.0.back).unwrap_or_default().trim().chars().take(20).collect::<String>();
    let mut problems = Problems::none();
    let mut answer = None;
    let mut overdue = false;
    let (mut refill_due, mut alarm, mut prescription, mut booked) =
        (String::new(), String::new(), String::new(), "No refill is booked yet: call the service.".to_owned());
    if let Some(pump) = &own.pump {
        let refill = &pump["refill"];
        refill_due = long_date(&refill["refill_due_on"]);
        overdue = view::day_of(&refill["refill_due_on"]).is_some_and(|d| d < today);
        alarm = long_date(&refill["low_reservoir_alarm_at"]);
        prescription = view::prescription_plain(&pump["prescription"]["prescription"]);
        let appointments = state.store.appointments(None, Some(patient_id), 100, 0).await?;
        if let Some(next) = appointments.items.iter().find(|a| {
            a["kind"].as_str() == Some("refill")
                && matches!(a["state"].as_str(), Some("scheduled" | "requested"))
                && view::day_of(&a["on"]).is_some_and(|d| d >= today)
        }) {
            booked = format!(
                "Your next refill is booked for {}{}.",
                long_date(&next["on"]),
                if next["place"].as_str() == Some("home") { ", at home" } else { ", in clinic" }
            );
        }
        if !back.is_empty() {
            match (view::parse_day(&back).ok_or(()), view::day_of(&refill["refill_due_on"])) {
                (Err(()), _) => problems.add("back", "Enter the date you come back, such as 20/12/2026"),
                (Ok(_), None) => problems.add(
                    "back",
                    "Your refill date is not known at the moment, so this cannot be checked: call the service",
                ),
                (Ok(back_on), Some(due_on)) => match travel::check(back_on, due_on, today) {
                    Ok(check) => {
                        let colour = match check.verdict {
                            travel::Verdict::Holds => "green",
                            travel::Verdict::Tight => "orange",
                            travel::Verdict::RefillFirst | travel::Verdict::Overdue => "red",
                        };
                        answer = Some((colour.to_owned(), check.sentence));
                    }
                    Err(e) => problems.add("back", crate::form::sentence(&e.to_string())),
                },
            }
        }
    }
    Ok(render_form(
        &MePage {
            layout: viewer.layout(format!("{}'s pump", own.name)),
            has_pump: own.pump.is_some(),
            overdue,
            refill_due,
            alarm,
            booked,
            prescription,
            back,
            answer,
            problems: problems.clone(),
            contacts: CONTACTS,
        },
        &problems,
    ))
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardPage {
    layout: Layout,
    lines: Vec<Line>,
    contacts: Contacts,
}

/// `GET /me/card`: the identification card, printable.
pub async fn card(State(state): State<AppState>, viewer: Viewer) -> Result<Response, PageError> {
    let (own, _) = own(&state, &viewer).await?;
    let mut lines = vec![Line::new("Name", own.name.clone()), Line::new("NHS number", own.nhs.clone())];
    match &own.pump {
        Some(pump) => {
            lines.push(Line::new("Pump", view::profile(&pump["profile"])));
            lines.push(Line::new("Serial number", view::text(&pump["serial"])));
            lines.push(Line::new("Implanted", view::date(&pump["implanted_at"])));
            lines.push(Line::new("Drug", "Baclofen, intrathecal (into the fluid around the spinal cord)"));
            lines.push(Line::new("Concentration", view::concentration(&pump["concentration_micrograms_per_ml"])));
            lines.push(Line::new("Daily dose", view::per_day(&pump["prescription"]["largest_day_micrograms"])));
        }
        None => lines.push(Line::new("Pump", "None implanted at present")),
    }
    Ok(render(&CardPage { layout: viewer.layout("My pump identification card"), lines, contacts: CONTACTS }))
}
