//! The administrator's pages: the audit log with the chain's verification, and users.

use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use itb_clinic::api::AppState;
use itb_clinic::rules::access::{Permission, Role};
use serde::Deserialize;
use serde_json::Value;

use super::{Layout, PageError, render, render_form};
use crate::form::{Problems, problems_of};
use crate::session::Viewer;
use crate::view;

/// Entries a page of the log shows.
pub const AUDIT_ROWS: i64 = 100;

/// An entry of the log, for people.
pub struct EntryRow {
    pub seq: i64,
    pub when: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    verified: Option<(bool, String)>,
    rows: Vec<EntryRow>,
    subject: String,
    total: i64,
    next: Option<String>,
    previous: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    verify: Option<String>,
    subject: Option<String>,
    page: Option<String>,
}

fn detail_text(detail: &Value) -> String {
    match detail {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) if s.parse::<jiff::Timestamp>().is_ok() => view::when(v),
                    Value::String(s) => s.clone(),
                    Value::Object(_) | Value::Array(_) => "(recorded)".to_owned(),
                    other => other.to_string(),
                };
                format!("{}: {}", k.replace('_', " "), value.chars().take(120).collect::<String>())
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `GET /admin/audit?verify=&subject=&page=`.
pub async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    viewer.require(Permission::Audit)?;
    let q = q.map(|q| q.0).unwrap_or_default();
    let page =
        q.page.as_deref().unwrap_or("1").parse::<i64>().ok().filter(|p| (1..=1_000_000).contains(p)).unwrap_or(1);
    let subject: String = q.subject.as_deref().unwrap_or("").trim().chars().take(60).collect();
    let verified = if q.verify.is_some() {
        let v = state.store.verify_audit().await?;
        Some(if v.valid {
            (true, format!("The chain of {} entries is whole: every entry's hash matches the one before.", v.entries))
        } else {
            (
                false,
                format!(
                    "The chain is broken at entry {}: {}. Tell the service's information governance lead now.",
                    v.first_broken.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
                    v.problem.unwrap_or_default()
                ),
            )
        })
    } else {
        None
    };
    let listed = state
        .store
        .audit_entries((!subject.is_empty()).then_some(subject.as_str()), AUDIT_ROWS, (page - 1) * AUDIT_ROWS)
        .await?;
    let rows = listed
        .items
        .iter()
        .map(|e| EntryRow {
            seq: e.seq,
            when: view::when(&Value::from(e.at.as_str())),
            actor: e.actor.clone(),
            action: e.action.replace(['.', '_'], " "),
            subject: e.subject.clone(),
            detail: detail_text(&e.detail),
        })
        .collect();
    let shown = page * AUDIT_ROWS;
    let link = |p: i64| format!("/admin/audit?subject={}&page={p}", view::url_encode(&subject));
    Ok(render(&AuditPage {
        layout: viewer.layout("Audit log"),
        verified,
        rows,
        total: listed.total,
        next: (shown < listed.total).then(|| link(page + 1)),
        previous: (page > 1).then(|| link(page - 1)),
        subject,
    }))
}

/// A user, for the list.
pub struct UserRow {
    pub username: String,
    pub role: String,
    pub patient: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<UserRow>,
    roles: Vec<(&'static str, String)>,
    username: String,
    role: String,
    patient_id: String,
    problems: Problems,
    notice: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct UsersQuery {
    added: Option<String>,
}

async fn users_page(
    state: &AppState,
    viewer: &Viewer,
    form: (String, String, String),
    problems: Problems,
    notice: String,
) -> Result<Response, PageError> {
    let users = state.store.users(500, 0).await?;
    let rows = users
        .items
        .iter()
        .map(|u| UserRow {
            username: u.username.clone(),
            role: view::role(u.role),
            patient: u.patient_id.map(|p| format!("record {p}")).unwrap_or_default(),
        })
        .collect();
    Ok(render_form(
        &UsersPage {
            layout: viewer.layout("Users"),
            rows,
            roles: Role::ALL.iter().map(|r| (r.as_str(), view::role(*r))).collect(),
            username: form.0,
            role: form.1,
            patient_id: form.2,
            problems: problems.clone(),
            notice,
        },
        &problems,
    ))
}

/// `GET /admin/users`.
pub async fn users(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<UsersQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    viewer.require(Permission::ManageUsers)?;
    let notice = q
        .ok()
        .and_then(|q| q.0.added)
        .map(|name| format!("{} can now sign in.", name.chars().take(40).collect::<String>()))
        .unwrap_or_default();
    users_page(&state, &viewer, Default::default(), Problems::none(), notice).await
}

/// `POST /admin/users`: adds a user.
pub async fn add_user(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Result<Response, PageError> {
    let fields = viewer.form(&body)?;
    viewer.require(Permission::ManageUsers)?;
    let username = fields.get("username").to_owned();
    let role_text = fields.get("role").to_owned();
    let patient_text = fields.get("patient_id").to_owned();
    let password = fields.raw("password").to_owned();
    let mut problems = Problems::none();
    let role = role_text.parse::<Role>().ok();
    if role.is_none() {
        problems.add("role", "Choose the person's role");
    }
    let patient_id = if patient_text.is_empty() {
        None
    } else {
        match patient_text.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                problems.add("patient_id", "Enter the number of the patient's record, such as 12");
                None
            }
        }
    };
    if let (Some(role), true) = (role, problems.is_empty()) {
        match state
            .store
            .add_user(&viewer.user.username, &username, role, &password, patient_id, state.clock.now())
            .await
        {
            Ok(user) => {
                return Ok(
                    Redirect::to(&format!("/admin/users?added={}", view::url_encode(&user.username))).into_response()
                );
            }
            Err(e) => match problems_of(&e, str::to_owned) {
                Some(p) => problems.0.extend(p.into_iter().map(|mut p| {
                    if p.field.is_empty() {
                        p.field = "username".to_owned();
                    }
                    p
                })),
                None => return Err(PageError::from(e)),
            },
        }
    }
    users_page(&state, &viewer, (username, role_text, patient_text), problems, String::new()).await
}
