//! The pages: the frame every page shares, the error pages, and one module a group of pages.

pub mod admin;
pub mod appointments;
pub mod me;
pub mod patient;
pub mod programming;
pub mod refill;
pub mod worklist;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use itb_clinic::api::ApiError;
use itb_clinic::error::ClinicError;
use itb_clinic::rules::access::Permission;

use crate::session::Viewer;

/// A link in the header.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Where.
    pub href: &'static str,
    /// Its words.
    pub text: &'static str,
}

/// The frame of a page: its title, who is signed in, the header's links.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page's title (its h1 and the window's title).
    pub title: String,
    /// Who is signed in, in words.
    pub who: Option<String>,
    /// The header's links.
    pub nav: Vec<NavLink>,
    /// The session's CSRF token, for the sign-out form and every other form.
    pub csrf: String,
}

impl Layout {
    /// A page for anyone (sign-in, errors before sign-in).
    pub fn public(title: &str) -> Self {
        Self { title: title.to_owned(), who: None, nav: Vec::new(), csrf: String::new() }
    }
    /// A page for the person signed in: the links their role may follow.
    pub fn signed_in(title: String, viewer: &Viewer) -> Self {
        let mut nav = Vec::new();
        if viewer.may(Permission::Worklist) {
            nav.push(NavLink { href: "/worklist", text: "Worklist" });
            nav.push(NavLink { href: "/appointments", text: "Appointments" });
            nav.push(NavLink { href: "/patients", text: "Patients" });
        }
        if viewer.may(Permission::Audit) {
            nav.push(NavLink { href: "/admin/audit", text: "Audit log" });
        }
        if viewer.may(Permission::ManageUsers) {
            nav.push(NavLink { href: "/admin/users", text: "Users" });
        }
        if viewer.user.role == itb_clinic::rules::access::Role::Patient {
            nav.push(NavLink { href: "/me", text: "My pump" });
            nav.push(NavLink { href: "/me/card", text: "My pump card" });
        }
        let who = format!("{} ({})", viewer.user.username, viewer.user.role.describe());
        Self { title, who: Some(who), nav, csrf: viewer.csrf.clone() }
    }
}

/// Renders a page.
pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The page could not be drawn: {e}. Tell the service's administrator."),
        )
            .into_response(),
    }
}

/// Renders a form's page: 422 when it shows problems with what was sent.
pub fn render_form<T: Template>(page: &T, problems: &crate::form::Problems) -> Response {
    let mut response = render(page);
    if !problems.is_empty() && response.status().is_success() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not allowed for this role.
    Forbidden(String),
    /// Nothing there.
    NotFound(String),
    /// A request the page cannot read.
    BadRequest(String),
    /// Something refused that the page cannot put right on a form.
    Refused(String),
    /// The pump could not be reached or answered with an error.
    Pump(String),
    /// The service failed.
    Internal(String),
    /// Go elsewhere.
    Redirect(String),
}

impl From<ClinicError> for PageError {
    fn from(e: ClinicError) -> Self {
        match e {
            ClinicError::NotFound(_) => PageError::NotFound("There is no such record.".to_owned()),
            ClinicError::Forbidden(text) => PageError::Forbidden(crate::form::sentence(&text)),
            ClinicError::Unauthorized(_) => PageError::Redirect("/sign-in".to_owned()),
            ClinicError::Invalid(fields) => PageError::BadRequest(
                fields.iter().map(|f| crate::form::sentence(&f.detail)).collect::<Vec<_>>().join(" "),
            ),
            ClinicError::Conflict(text) => PageError::Refused(crate::form::sentence(&text)),
            ClinicError::NeedsOverride { dangers, .. } => PageError::Refused(dangers),
            ClinicError::TooManyAttempts { detail, .. } => PageError::Refused(crate::form::sentence(&detail)),
            ClinicError::Pump(text) => PageError::Pump(crate::form::sentence(&text)),
            ClinicError::Database(_) | ClinicError::Internal(_) => PageError::Internal(
                "The service could not finish this. Nothing was changed by this page. Try again; if it happens again, tell the service's administrator."
                    .to_owned(),
            ),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::from(e.0)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::Redirect(to) => return Redirect::to(&to).into_response(),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "You cannot use this page", m),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Page not found", m),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "There is a problem", m),
            PageError::Refused(m) => (StatusCode::CONFLICT, "This cannot be done now", m),
            PageError::Pump(m) => (StatusCode::BAD_GATEWAY, "The pump could not be reached", m),
            PageError::Internal(m) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Sorry, there is a problem with the service", m)
            }
        };
        let mut response = render(&ErrorPage { layout: Layout::public(title), message });
        *response.status_mut() = status;
        response
    }
}

/// `GET /`: each role's start page.
pub async fn home(viewer: Result<Viewer, Response>) -> Response {
    match viewer {
        Ok(v) => Redirect::to(crate::session::start_page(v.user.role)).into_response(),
        Err(_) => Redirect::to("/sign-in").into_response(),
    }
}

/// Any other address: a page for people, a problem for the API.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return itb_clinic::api::handlers::not_found().await;
    }
    PageError::NotFound(
        "If you typed the web address, check it is correct. If you followed a link, go back to the worklist."
            .to_owned(),
    )
    .into_response()
}

/// The `id` of a page's address, refusing nonsense.
pub fn page_id(id: &str) -> Result<i64, PageError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| PageError::NotFound("There is no such record.".to_owned()))
}
