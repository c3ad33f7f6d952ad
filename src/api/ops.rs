//! Liveness and readiness for orchestrators.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(liveness))
        .route("/readyz", get(readiness))
}

/// The process is up and serving HTTP.
async fn liveness() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Data is loaded and requests can be answered.
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
