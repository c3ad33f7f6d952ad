//! Liveness and readiness for orchestrators.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema;
use crate::startup::AppState;

/// Liveness, readiness and (unless it has its own address) metrics.
pub fn router(with_metrics: bool) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::new()
        .routes(routes!(liveness))
        .routes(routes!(readiness));
    if with_metrics {
        router.routes(routes!(prometheus))
    } else {
        router
    }
}

/// `/metrics` alone, for `server.metrics_address`.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", axum::routing::get(prometheus))
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = schema::Status)))]
async fn liveness() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Data is loaded and requests can be answered.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = schema::Status), (status = 503, body = schema::ErrorBody)))]
async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "starting", "success": false, "code": "not_ready", "error": "data is still loading" }),
            ),
        )
    }
}

/// Prometheus text format: provider calls and latency, cache hits and
/// misses, HTTP requests by route and status.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
async fn prometheus() -> Response {
    match crate::telemetry::metrics_handle() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => {
            crate::error::ApiError::Internal("metrics recorder unavailable".into()).into_response()
        }
    }
}
