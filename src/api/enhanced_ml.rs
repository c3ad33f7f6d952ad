//! `/api/enhanced_ml_models`: list, predict, batch predict and live
//! performance, over the forecasting service.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, CallerId};
use super::schema::{
    now, params_of, BatchBody, BatchResponse, Failures, ModelList, PerformanceResponse,
    PredictBody, PredictionResponse,
};
use super::state::AppState;
use crate::error::ApiError;
use crate::forecast::distinct_models;
use crate::forecast::input::PriceRequest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(predict))
        .routes(routes!(batch_predict))
        .routes(routes!(performance))
}

impl PredictBody {
    /// The prices and the params, apart (the prices are moved, not copied:
    /// they may be megabytes).
    fn split(self) -> (PriceRequest, Option<serde_json::Value>) {
        let prices = PriceRequest {
            symbol: self.symbol,
            price_data: self.price_data,
        };
        (prices, self.params)
    }
}

/// Live figures of the forecasts served for symbols, scored as their
/// target closes arrived.
#[utoipa::path(get, path = "/api/enhanced_ml_models/performance", tag = "enhanced_ml_models", responses((status = 200, body = PerformanceResponse), Failures))]
async fn performance(State(state): State<AppState>) -> Json<PerformanceResponse> {
    Json(state.forecasts.performance().into())
}

#[utoipa::path(get, path = "/api/enhanced_ml_models/list", tag = "enhanced_ml_models", responses((status = 200, body = ModelList)))]
async fn list(State(state): State<AppState>) -> Response {
    // Everything but the timestamp is built once: the models served do not change.
    let prefix = state.bodies.model_list.get_or_init(|| {
        let metadata: std::collections::BTreeMap<_, _> = state
            .forecasts
            .models()
            .map(|i| (i.name, i.clone()))
            .collect();
        let whole = serde_json::to_string(&ModelList {
            success: true,
            enhanced_models: metadata.keys().copied().collect(),
            total_models: metadata.len(),
            metadata,
            timestamp: String::new(),
        })
        .expect("the model list serialises");
        // `timestamp` is the last field: keep up to its opening quote.
        whole
            .strip_suffix("\"}")
            .expect("the model list ends with its timestamp")
            .to_string()
    });
    let body = format!("{prefix}{}\"}}", now());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[utoipa::path(post, path = "/api/enhanced_ml_models/predict/{model_name}", tag = "enhanced_ml_models", params(("model_name" = String, Path, description = "a served model, e.g. lstm_predictor", example = "lstm_predictor")), request_body = PredictBody, responses((status = 200, body = PredictionResponse), Failures))]
async fn predict(
    State(state): State<AppState>,
    Path(model_name): Path<String>,
    CallerId(caller): CallerId,
    ApiJson(body): ApiJson<PredictBody>,
) -> Result<Json<PredictionResponse>, ApiError> {
    let (prices, params) = body.split();
    let params = params_of(params)?;
    let served = state
        .forecasts
        .predict(&model_name, &prices, &params, &caller)
        .await?;
    Ok(Json(served.into()))
}

#[utoipa::path(post, path = "/api/enhanced_ml_models/batch_predict", tag = "enhanced_ml_models", request_body = BatchBody, responses((status = 200, body = BatchResponse), Failures))]
async fn batch_predict(
    State(state): State<AppState>,
    CallerId(caller): CallerId,
    ApiJson(batch): ApiJson<BatchBody>,
) -> Result<Json<BatchResponse>, ApiError> {
    let names = distinct_models(batch.models)?;
    let (prices, params) = batch.request.split();
    let params = params_of(params)?;
    let outcomes = state
        .forecasts
        .predict_batch(&names, &prices, &params, &caller)
        .await;
    Ok(Json(BatchResponse::new(prices.symbol, names, outcomes)))
}
