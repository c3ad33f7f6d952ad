//! Liveness and readiness for orchestrators.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::Status;
use super::state::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};

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
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Status)))]
async fn liveness() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Data is loaded and requests can be answered.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Status), (status = 503, body = ErrorBody)))]
async fn readiness(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        Json(Status { status: "ready" }).into_response()
    } else {
        // The legacy pollers read `status`; the rest is the error body.
        let mut body =
            serde_json::json!(ApiError::new(ErrorCode::NotReady, "data is still loading").body());
        body["status"] = "starting".into();
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
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
        None => ApiError::internal("metrics recorder unavailable").into_response(),
    }
}
