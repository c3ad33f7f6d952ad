//! `/dashboard`: the analytics page and its assets, built into the binary
//! (no files at run time, no CDN). The page calls the same JSON API as any
//! client, with the same auth.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;
use crate::error::{ApiError, ErrorCode};

const INDEX: &[u8] = include_bytes!("../../assets/dashboard/index.html");

/// The page's files by name, with their media types.
const ASSETS: [(&str, &str, &[u8]); 5] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dashboard/style.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dashboard/vendor/uPlot.min.css"),
    ),
    (
        "LICENSE-uPlot",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/dashboard/vendor/LICENSE-uPlot"),
    ),
];

/// Scripts, styles and calls from this origin only.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(asset))
}

fn served(media_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    // The build is the version: revalidate rather than keep a stale page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// The dashboard page (service, models, forecast, backtest, portfolio).
#[utoipa::path(get, path = "/dashboard", tag = "dashboard", responses((status = 200, description = "the dashboard's HTML", content_type = "text/html")))]
async fn page() -> Response {
    served("text/html; charset=utf-8", INDEX)
}

/// The dashboard's scripts, styles and the charting library's licence.
#[utoipa::path(get, path = "/dashboard/assets/{file}", tag = "dashboard", params(("file" = String, Path, description = "e.g. app.js")), responses((status = 200, description = "the asset"), (status = 404, description = "no such asset")))]
async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, media_type, body)| served(media_type, body))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no dashboard asset {file:?}")))
}
