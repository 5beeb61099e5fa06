//! Our own CSS and JavaScript, compiled into the binary.

use axum::http::header;
use axum::response::IntoResponse;

/// The style sheet.
pub const CSS: &str = include_str!("../assets/itb.css");
/// The progressive JavaScript (every page works without it).
pub const JS: &str = include_str!("../assets/itb.js");

/// `GET /assets/itb.css`.
pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], CSS)
}

/// `GET /assets/itb.js`.
pub async fn js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], JS)
}
