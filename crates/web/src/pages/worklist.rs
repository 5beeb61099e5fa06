//! The worklist: the nurse's start page.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use itb_clinic::api::AppState;
use itb_clinic::rules::access::Permission;
use itb_clinic::rules::worklist::Bucket;
use itb_clinic::store::record::service_date;
use serde::Deserialize;
use serde_json::Value;

use super::{Layout, PageError, render};
use crate::session::Viewer;
use crate::view::{self, Tag};

/// Rows a page shows.
pub const PAGE_ROWS: i64 = 100;
/// Rows the printable clinic list shows on one page.
pub const PRINT_ROWS: i64 = 500;

#[derive(Debug, Deserialize, Default)]
pub struct Filters {
    bucket: Option<String>,
    sort: Option<String>,
    page: Option<String>,
    print: Option<String>,
}

/// A bucket's count, linked to its filter.
pub struct Count {
    pub key: &'static str,
    pub heading: &'static str,
    pub colour: &'static str,
    pub count: i64,
}

/// A pump on the worklist.
pub struct Row {
    pub patient_id: i64,
    pub name: String,
    pub nhs: String,
    pub tag: Tag,
    pub due: String,
    pub alarm: String,
    pub limited_by: String,
    pub booked: String,
    pub booking_after_due: bool,
    pub high_risk: bool,
    pub gap_review: bool,
    pub unknown_reason: String,
}

/// A line of a list beside the buckets.
pub struct Side {
    pub href: String,
    pub name: String,
    pub nhs: String,
    pub detail: String,
}

/// An appointment today.
pub struct Today {
    pub href: String,
    pub name: String,
    pub kind: &'static str,
    pub tag: Tag,
    pub place: String,
}

#[derive(Template)]
#[template(path = "worklist.html")]
struct WorklistPage {
    layout: Layout,
    on: String,
    counts: Vec<Count>,
    bucket: String,
    sort: String,
    rows: Vec<Row>,
    shown_from: i64,
    shown_to: i64,
    total: i64,
    previous: Option<String>,
    next: Option<String>,
    replacements: Vec<Side>,
    mri: Vec<Side>,
    gaps: Vec<Side>,
    today: Vec<Today>,
    print: bool,
}

/// `GET /worklist?bucket=&sort=&page=&print=`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    filters: Result<Query<Filters>, QueryRejection>,
) -> Result<Response, PageError> {
    viewer.require(Permission::Worklist)?;
    let filters = filters.map(|q| q.0).unwrap_or_default();
    let only = match filters.bucket.as_deref().unwrap_or("") {
        "" | "all" => None,
        name => Some(
            Bucket::ALL
                .into_iter()
                .find(|b| b.as_str() == name)
                .ok_or_else(|| PageError::BadRequest("Choose a group of the worklist from the list.".to_owned()))?,
        ),
    };
    let sort = match filters.sort.as_deref().unwrap_or("due") {
        s @ ("due" | "name" | "nhs" | "booked") => s.to_owned(),
        _ => return Err(PageError::BadRequest("Sort by refill-due date, name, NHS number or booking.".to_owned())),
    };
    let page_number = filters.page.as_deref().unwrap_or("1").parse::<i64>().ok().filter(|p| (1..=100_000).contains(p));
    let Some(page_number) = page_number else {
        return Err(PageError::BadRequest("The page number is not one of this list's pages.".to_owned()));
    };
    let now = state.clock.now();
    let on = service_date(now);
    // The printable clinic list holds up to 500 pumps on its page.
    let rows_per_page = if filters.print.is_some() { PRINT_ROWS } else { PAGE_ROWS };
    let offset = (page_number - 1) * rows_per_page;
    let list = state.store.worklist_of(on, only, rows_per_page, offset).await?;
    let counts = Bucket::ALL
        .into_iter()
        .map(|b| {
            let tag = view::bucket_tag(b.as_str());
            Count {
                key: b.as_str(),
                heading: view::bucket_heading(b.as_str()),
                colour: tag.colour,
                count: list["counts"][b.as_str()].as_i64().unwrap_or(0),
            }
        })
        .collect();
    let mut rows: Vec<Row> = list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|item| Row {
            patient_id: item["patient_id"].as_i64().unwrap_or(0),
            name: view::text(&item["patient_name"]),
            nhs: view::text(&item["nhs_number_display"]),
            tag: view::bucket_tag(item["bucket"].as_str().unwrap_or("")),
            due: view::date(&item["refill_due_on"]),
            alarm: view::date(&item["low_reservoir_alarm_at"]),
            limited_by: view::limited_by(&item["limited_by"]),
            booked: item["booked_on"].as_str().map_or_else(|| "Not booked".to_owned(), view::date_text),
            booking_after_due: item["booking_after_due"].as_bool().unwrap_or(false),
            high_risk: item["high_risk"].as_bool().unwrap_or(false),
            gap_review: item["gap_review_pending"].as_bool().unwrap_or(false),
            unknown_reason: view::text(&item["unknown_reason"]),
        })
        .collect();
    match sort.as_str() {
        "name" => rows.sort_by(|a, b| surname(&a.name).cmp(surname(&b.name)).then(a.name.cmp(&b.name))),
        "nhs" => rows.sort_by(|a, b| a.nhs.cmp(&b.nhs)),
        "booked" => rows.sort_by_key(|r| (r.booked != "Not booked", !r.booking_after_due)),
        _ => {}
    }
    let total = list["total"].as_i64().unwrap_or(0);
    let sort_key = sort.clone();
    let print_flag = if filters.print.is_some() { "&print=1" } else { "" };
    let link = move |page: i64| {
        format!("/worklist?bucket={}&sort={}&page={page}{print_flag}", only.map_or("all", Bucket::as_str), sort_key)
    };
    let shown_to = offset + i64::try_from(rows.len()).unwrap_or(0);
    let side_ids: Vec<i64> = ["replacements_due", "post_mri_checks", "gaps_to_review"]
        .iter()
        .flat_map(|k| list[*k].as_array().map(Vec::as_slice).unwrap_or_default().iter())
        .filter_map(|i| i["patient_id"].as_i64())
        .collect();
    let appointments = state.store.appointments(Some(on), None, 200, 0).await?;
    let mut ids = side_ids;
    ids.extend(appointments.items.iter().filter_map(|a| a["patient_id"].as_i64()));
    let names = state.store.patient_names(&ids).await?;
    let name_of = |item: &Value| {
        let id = item["patient_id"].as_i64().unwrap_or(0);
        names.get(&id).map(|(n, _)| n.clone()).unwrap_or_default()
    };
    let side = |key: &str, detail: &dyn Fn(&Value) -> String| -> Vec<Side> {
        list[key]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|i| Side {
                href: format!("/patients/{}", i["patient_id"].as_i64().unwrap_or(0)),
                name: name_of(i),
                nhs: view::nhs(i["nhs_number"].as_str().unwrap_or("")),
                detail: detail(i),
            })
            .collect()
    };
    let replacements = side("replacements_due", &|i| {
        if i["elective_replacement"].as_bool().unwrap_or(false) {
            format!("Elective replacement indicator on; battery ends by {}", view::date(&i["end_of_service_on"]))
        } else {
            format!("Battery ends by {}", view::date(&i["end_of_service_on"]))
        }
    });
    let mri = side("post_mri_checks", &|i| {
        format!("{} on {}", view::appointment_tag(i["state"].as_str().unwrap_or("")).text, view::date(&i["on"]))
    });
    let gaps = side("gaps_to_review", &|i| {
        let direction = if i["gap_direction"].as_str() == Some("more") { "more" } else { "less" };
        format!(
            "{} {direction} than expected came out at the refill on {}",
            view::ml(&i["gap_ml"]),
            view::date(&i["at"])
        )
    });
    let today = appointments
        .items
        .iter()
        .map(|a| Today {
            href: format!("/patients/{}", a["patient_id"].as_i64().unwrap_or(0)),
            name: name_of(a),
            kind: view::appointment_kind(a["kind"].as_str().unwrap_or("")),
            tag: view::appointment_tag(a["state"].as_str().unwrap_or("")),
            place: if a["place"].as_str() == Some("home") { "Home visit" } else { "Clinic" }.to_owned(),
        })
        .collect();
    Ok(render(&WorklistPage {
        layout: viewer.layout("Refill worklist"),
        on: itb_dose::text::civil_date(on),
        counts,
        bucket: only.map_or("all", Bucket::as_str).to_owned(),
        sort,
        shown_from: if rows.is_empty() { 0 } else { offset + 1 },
        shown_to,
        total,
        previous: (page_number > 1).then(|| link(page_number - 1)),
        next: (shown_to < total).then(|| link(page_number + 1)),
        rows,
        replacements,
        mri,
        gaps,
        today,
        print: filters.print.is_some(),
    }))
}

fn surname(name: &str) -> &str {
    name.rsplit(' ').next().unwrap_or(name)
}
