//! `/api/production_api`: data-layer health and live quotes.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::schema::{
    now, Failures, HealthDetail, HealthResponse, PortfolioDataResponse, SymbolsRequest,
};
use super::state::AppState;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(portfolio_data))
}

/// Data-layer health for ops pollers. Reads counters only; never calls a provider.
#[utoipa::path(get, path = "/api/production_api/health", tag = "production_api", responses((status = 200, body = HealthResponse)))]
async fn health(State(state): State<AppState>) -> Json<HealthResponse> {
    let market = state.market.health().await;
    let timestamp = now();
    Json(HealthResponse {
        success: true,
        status: market.status,
        timestamp: timestamp.clone(),
        health: HealthDetail { market, timestamp },
    })
}

/// Latest quotes, keyed by the symbols as sent; the ones nobody had are
/// listed with why.
#[utoipa::path(post, path = "/api/production_api/portfolio_data", tag = "production_api", request_body = SymbolsRequest, responses((status = 200, body = PortfolioDataResponse), Failures))]
async fn portfolio_data(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SymbolsRequest>,
) -> Result<Json<PortfolioDataResponse>, ApiError> {
    req.check(state.settings.limits.max_series)?;
    let report = state.market.quotes(&req.symbols).await;
    Ok(Json(PortfolioDataResponse::new(req.symbols, report)))
}
