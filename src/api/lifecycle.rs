//! The networks' versions and A/B tests (public), and their retraining,
//! promotion and rollback (`/api/admin`, behind the admin token).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin::Admin;
use super::extract::ApiJson;
use super::schema::{now, Failures};
use super::state::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::forecast::lifecycle::{Experiment, Lifecycle, LifecycleError, Version};
use crate::models::lifecycle::runs::TrainingRun;
use crate::models::lifecycle::store::VersionRecord;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(versions))
        .routes(routes!(model_versions))
        .routes(routes!(experiments))
        .routes(routes!(retrain))
        .routes(routes!(training_runs))
        .routes(routes!(training_run))
        .routes(routes!(promote))
        .routes(routes!(rollback))
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match &e {
            LifecycleError::UnknownModel(_) => {
                ApiError::new(ErrorCode::UnknownModel, e.to_string())
            }
            LifecycleError::UnknownVersion { .. } => {
                ApiError::new(ErrorCode::UnknownId, e.to_string())
            }
            LifecycleError::Conflict(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
            LifecycleError::Busy(_) => {
                ApiError::new(ErrorCode::Busy, e.to_string()).retry_after(60)
            }
            LifecycleError::Internal(err) => ApiError::internal(format!("{err:#}")),
        }
    }
}

fn lifecycle(state: &AppState) -> Result<Arc<Lifecycle>, ApiError> {
    state.lifecycle.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "this service was built without the networks, so it keeps no model versions",
        )
    })
}

/// `f` on the blocking pool: registry changes lock, write and sync files.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LifecycleError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("model lifecycle: {e}")))?
        .map_err(ApiError::from)
}

#[derive(Serialize, ToSchema)]
pub struct VersionsResponse {
    pub success: bool,
    pub versions: Vec<Version>,
    pub timestamp: String,
}

/// Every version of every network, oldest first, with its card and state.
#[utoipa::path(get, path = "/api/enhanced_ml_models/versions", tag = "enhanced_ml_models", responses((status = 200, body = VersionsResponse), Failures))]
async fn versions(State(state): State<AppState>) -> Result<Json<VersionsResponse>, ApiError> {
    list_versions(&state, None).await
}

/// Every version of one network, oldest first.
#[utoipa::path(get, path = "/api/enhanced_ml_models/versions/{model_name}", tag = "enhanced_ml_models", params(("model_name" = String, Path, example = "lstm_predictor")), responses((status = 200, body = VersionsResponse), Failures))]
async fn model_versions(
    State(state): State<AppState>,
    Path(model_name): Path<String>,
) -> Result<Json<VersionsResponse>, ApiError> {
    list_versions(&state, Some(model_name)).await
}

async fn list_versions(
    state: &AppState,
    model: Option<String>,
) -> Result<Json<VersionsResponse>, ApiError> {
    let lifecycle = lifecycle(state)?;
    let versions = blocking(move || lifecycle.versions(model.as_deref())).await?;
    Ok(Json(VersionsResponse {
        success: true,
        versions,
        timestamp: now(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ExperimentsResponse {
    pub success: bool,
    pub experiments: Vec<Experiment>,
    pub timestamp: String,
}

/// The A/B tests running now, each arm's live scores with 95 % intervals.
#[utoipa::path(get, path = "/api/enhanced_ml_models/experiments", tag = "enhanced_ml_models", responses((status = 200, body = ExperimentsResponse), Failures))]
async fn experiments(State(state): State<AppState>) -> Result<Json<ExperimentsResponse>, ApiError> {
    Ok(Json(ExperimentsResponse {
        success: true,
        experiments: lifecycle(&state)?.experiments(),
        timestamp: now(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RunResponse {
    pub success: bool,
    pub run_id: String,
    pub run: TrainingRun,
}

/// Queues a retraining run of the network on the newest closes; it is
/// gated and registered in the background (see `/api/admin/training_runs`).
#[utoipa::path(post, path = "/api/admin/models/{model_name}/retrain", tag = "admin", security(("admin_token" = [])), params(("model_name" = String, Path, example = "lstm_predictor")), responses((status = 202, body = RunResponse), Failures))]
async fn retrain(
    _: Admin,
    State(state): State<AppState>,
    Path(model_name): Path<String>,
) -> Result<(StatusCode, Json<RunResponse>), ApiError> {
    let lifecycle = lifecycle(&state)?;
    let run = blocking(move || lifecycle.retrain(&model_name, "admin")).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunResponse {
            success: true,
            run_id: run.run_id.clone(),
            run,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct RunsResponse {
    pub success: bool,
    /// Newest first.
    pub runs: Vec<TrainingRun>,
}

/// Training runs, newest first, with their state and outcome.
#[utoipa::path(get, path = "/api/admin/training_runs", tag = "admin", security(("admin_token" = [])), responses((status = 200, body = RunsResponse), Failures))]
async fn training_runs(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<RunsResponse>, ApiError> {
    Ok(Json(RunsResponse {
        success: true,
        runs: {
            let lifecycle = lifecycle(&state)?;
            blocking(move || Ok(lifecycle.training_runs())).await?
        },
    }))
}

/// One training run.
#[utoipa::path(get, path = "/api/admin/training_runs/{run_id}", tag = "admin", security(("admin_token" = [])), params(("run_id" = String, Path)), responses((status = 200, body = RunResponse), Failures))]
async fn training_run(
    _: Admin,
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<RunResponse>, ApiError> {
    let lifecycle = lifecycle(&state)?;
    let id = run_id.clone();
    let run = blocking(move || Ok(lifecycle.training_run(&id)))
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownId, format!("no training run {run_id:?}"))
        })?;
    Ok(Json(RunResponse {
        success: true,
        run_id,
        run,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": "lstm_predictor-20261201120000-0123456789", "by": "alice"}))]
pub struct PromoteBody {
    pub version: String,
    /// Who promotes, recorded as `promoted_by` (default `admin`).
    #[serde(default)]
    pub by: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// Who rolls back, recorded as `promoted_by` of the restored version.
    #[serde(default)]
    pub by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ChampionResponse {
    pub success: bool,
    /// The version now serving.
    pub champion: VersionRecord,
}

/// A name for `promoted_by`: printable ASCII, at most 64 characters.
fn actor(by: Option<String>) -> Result<String, ApiError> {
    let by = by.unwrap_or_else(|| "admin".into());
    let by = by.trim();
    if by.is_empty() || by.len() > 64 || !by.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(ApiError::invalid(
            "by must be 1 to 64 printable ASCII characters",
        ));
    }
    Ok(by.to_string())
}

/// Makes a version the champion, by hand (the gate is not asked).
#[utoipa::path(post, path = "/api/admin/models/{model_name}/promote", tag = "admin", security(("admin_token" = [])), params(("model_name" = String, Path, example = "lstm_predictor")), request_body = PromoteBody, responses((status = 200, body = ChampionResponse), Failures))]
async fn promote(
    _: Admin,
    State(state): State<AppState>,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<PromoteBody>,
) -> Result<Json<ChampionResponse>, ApiError> {
    let by = actor(body.by)?;
    let lifecycle = lifecycle(&state)?;
    let version = body.version.trim().to_string();
    let champion = blocking(move || lifecycle.promote(&model_name, &version, &by)).await?;
    Ok(Json(ChampionResponse {
        success: true,
        champion,
    }))
}

/// Restores the champion before the current one, which retires.
#[utoipa::path(post, path = "/api/admin/models/{model_name}/rollback", tag = "admin", security(("admin_token" = [])), params(("model_name" = String, Path, example = "lstm_predictor")), request_body(content = Option<RollbackBody>, description = "optional"), responses((status = 200, body = ChampionResponse), Failures))]
async fn rollback(
    _: Admin,
    State(state): State<AppState>,
    Path(model_name): Path<String>,
    body: Bytes,
) -> Result<Json<ChampionResponse>, ApiError> {
    let body: RollbackBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid body: {e}")))?
    };
    let by = actor(body.by)?;
    let lifecycle = lifecycle(&state)?;
    let champion = blocking(move || lifecycle.roll_back(&model_name, &by)).await?;
    Ok(Json(ChampionResponse {
        success: true,
        champion,
    }))
}
