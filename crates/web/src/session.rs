//! Sessions: sign-in and sign-out, the session cookie, the CSRF token of each session, and
//! the check that a form was sent from our own pages.

use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use itb_clinic::api::{AppState, Caller};
use itb_clinic::error::ClinicError;
use itb_clinic::rules::access::{Permission, Role, allows};
use itb_clinic::store::users::{TOKEN_HOURS, User};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::form::{Fields, Problems};
use crate::pages::{Layout, PageError, render};

/// The session cookie's name.
pub const COOKIE: &str = "itb_session";

/// The CSRF token of a session: derived from its secret sign-in token, so only a page of that
/// session can carry it.
pub fn csrf_token(session: &str) -> String {
    let digest = Sha256::digest(format!("itb csrf\0{session}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The person signed in to this browser.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Who.
    pub user: User,
    /// The session's token (the cookie).
    pub token: String,
    /// The session's CSRF token.
    pub csrf: String,
}

impl Viewer {
    /// As the API's caller.
    pub fn caller(&self) -> Caller {
        Caller(self.user.clone())
    }
    /// Refuses unless the role allows `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), PageError> {
        if allows(self.user.role, permission) {
            Ok(())
        } else {
            let role = self.user.role.describe();
            let article = if role.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
            Err(PageError::Forbidden(format!(
                "You are signed in as {article} {role}, who may not {}.",
                permission.describe()
            )))
        }
    }
    /// Whether the role allows `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        allows(self.user.role, permission)
    }
    /// Refuses unless the caller may read patient `patient_id`'s record: a patient only their
    /// own (others look absent).
    pub fn may_read(&self, patient_id: i64) -> Result<(), PageError> {
        self.require(Permission::ReadRecord)?;
        if self.user.role == Role::Patient && self.user.patient_id != Some(patient_id) {
            return Err(PageError::from(ClinicError::NotFound("there is no such record".to_owned())));
        }
        Ok(())
    }
    /// Reads a form sent from one of this session's pages, refusing any other.
    pub fn form(&self, body: &Bytes) -> Result<Fields, PageError> {
        let fields = Fields::parse(body)?;
        if fields.get("csrf") != self.csrf {
            return Err(PageError::Forbidden(
                "This form has expired or was not sent from this service's own page. Go back, reload the page and try again."
                    .to_owned(),
            ));
        }
        Ok(fields)
    }
    /// The page frame for this person.
    pub fn layout(&self, title: impl Into<String>) -> Layout {
        Layout::signed_in(title.into(), self)
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let back = || {
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let next = if parts.method == Method::GET { path } else { "/" };
            let mut response =
                Redirect::to(&format!("/sign-in?next={}", crate::view::url_encode(next))).into_response();
            response.headers_mut().insert(header::SET_COOKIE, expired_cookie());
            response
        };
        let Some(token) = cookie_token(&parts.headers) else { return Err(back()) };
        match state.store.user_for_token(&token, state.clock.now()).await {
            Ok(Some(user)) => Ok(Viewer { user, csrf: csrf_token(&token), token }),
            Ok(None) => Err(back()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

fn session_cookie(token: &str) -> HeaderValue {
    let text = format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}", TOKEN_HOURS * 3600);
    HeaderValue::from_str(&text).unwrap_or_else(|_| expired_cookie())
}

fn expired_cookie() -> HeaderValue {
    HeaderValue::from_static("itb_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// Refuses a form sent to the pages from another site: the browser's `Sec-Fetch-Site` says
/// `cross-site`, or its `Origin` names a host that is neither this request's `Host` nor the
/// `X-Forwarded-Host` a proxy in front set.
pub async fn same_origin(request: Request, next: Next) -> Response {
    if request.method() == Method::POST {
        let headers = request.headers();
        let text = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
        let cross_site = text("sec-fetch-site") == Some("cross-site");
        let origin_host = text("origin").map(|o| o.split_once("://").map_or(o, |(_, rest)| rest));
        let ours = [text("host"), text("x-forwarded-host")];
        // An opaque origin (`null`) is never one of ours.
        let foreign = origin_host.is_some_and(|o| !ours.contains(&Some(o)));
        if cross_site || foreign {
            return PageError::Forbidden(
                "This form was sent from another site, so it was not accepted. Use the service's own pages.".to_owned(),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Where a role starts.
pub fn start_page(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin/audit",
        Role::Patient => "/me",
        _ => "/worklist",
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    problems: Problems,
    username: String,
    next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// A `next` address only if it is one of ours.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 512
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-.~?=&%".contains(&b))
                && !n.contains("%2F%2F")
                && !n.contains("%5C") =>
        {
            n.to_owned()
        }
        _ => String::new(),
    }
}

/// `GET /sign-in`.
pub async fn sign_in_page(q: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = safe_next(q.as_ref().ok().and_then(|q| q.next.as_deref()));
    render(&SignInPage { layout: Layout::public("Sign in"), problems: Problems::none(), username: String::new(), next })
}

/// `POST /sign-in`. A session this browser already had ends first.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = match Fields::parse(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let username = fields.get("username").trim().to_owned();
    let password = fields.raw("password").to_owned();
    let next = safe_next(Some(fields.get("next")));
    let mut problems = Problems::none();
    if username.is_empty() {
        problems.add("username", "Enter your username");
    }
    if password.is_empty() {
        problems.add("password", "Enter your password");
    }
    if problems.is_empty() {
        match state.store.sign_in(&username, &password, state.clock.now()).await {
            Ok((token, user)) => {
                // A session this browser already had ends now.
                if let Some(old) = cookie_token(&headers)
                    && let Err(e) = state.store.sign_out(&old, state.clock.now()).await
                {
                    return PageError::from(e).into_response();
                }
                let to = if next.is_empty() { start_page(user.role).to_owned() } else { next };
                let mut response = Redirect::to(&to).into_response();
                response.headers_mut().insert(header::SET_COOKIE, session_cookie(&token.token));
                return response;
            }
            Err(ClinicError::Unauthorized(_)) => {
                problems.add("username", "The username or password is wrong: check both and try again");
            }
            Err(ClinicError::TooManyAttempts { detail, .. }) => {
                problems.add("username", itb_dose::text::capitalised(&detail));
            }
            Err(e) => return PageError::from(e).into_response(),
        }
    }
    let mut response = render(&SignInPage { layout: Layout::public("Sign in"), problems, username, next });
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response
}

/// `POST /sign-out`: the token stops working at once.
pub async fn sign_out(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    if let Err(e) = viewer.form(&body) {
        return e.into_response();
    }
    if let Err(e) = state.store.sign_out(&viewer.token, state.clock.now()).await {
        return PageError::from(e).into_response();
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().insert(header::SET_COOKIE, expired_cookie());
    response
}
