//! `/api/production_api`: data-layer health, live quotes and daily history.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::schema::{
    now, Failures, HealthDetail, HealthResponse, HistoryResponse, PortfolioDataResponse,
    SymbolsRequest,
};
use super::state::AppState;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(portfolio_data))
        .routes(routes!(history))
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

/// Daily bars served when a request names no count, and the most it may.
const DEFAULT_HISTORY_BARS: usize = 120;
const MAX_HISTORY_BARS: usize = 5000;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// e.g. `AAPL`, `RELIANCE.NS`, `BTC-USD`.
    symbol: String,
    /// The newest daily bars, 1 to 5000 (default 120).
    bars: Option<usize>,
}

/// A symbol's newest daily bars from the data layer (the provider chain,
/// its caches and fallback), oldest first.
#[utoipa::path(get, path = "/api/production_api/history", tag = "production_api", params(HistoryQuery), responses((status = 200, body = HistoryResponse), Failures))]
async fn history(
    State(state): State<AppState>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryResponse>, ApiError> {
    // The rejection says which field is wrong (axum's own answer would not).
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let bars = query.bars.unwrap_or(DEFAULT_HISTORY_BARS);
    if !(1..=MAX_HISTORY_BARS).contains(&bars) {
        return Err(ApiError::invalid(format!(
            "bars is {bars}; it must be 1 to {MAX_HISTORY_BARS}"
        )));
    }
    let history = state
        .market
        .history(
            &query.symbol,
            crate::market::Span::LastBars(bars),
            crate::market::Interval::Daily,
        )
        .await?;
    Ok(Json(HistoryResponse::new(query.symbol, history)))
}
