//! `/api/production_api`: data-layer health and live quotes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, SymbolList};
use super::schema;
use crate::error::ApiError;
use crate::market::local;
use crate::startup::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(portfolio_data))
}

/// Data-layer health for ops pollers. Reads counters only; never calls a provider.
#[utoipa::path(get, path = "/api/production_api/health", tag = "production_api", responses((status = 200, body = schema::HealthResponse)))]
async fn health(State(state): State<AppState>) -> Json<Value> {
    let h = state.market.health().await;
    let now = Utc::now().to_rfc3339();
    Json(json!({
        "success": true,
        "status": h.status,
        "timestamp": now,
        "health": {
            "environment": h.environment,
            "providers": h.providers,
            "provider_priority": h.provider_priority,
            "performance_metrics": h.performance_metrics,
            "cache_stats": h.cache_stats,
            "symbol_mappings_loaded": h.symbol_mappings_loaded,
            "history_cache": h.history_cache,
            "quote_cache": h.quote_cache,
            "timestamp": now,
        },
    }))
}

#[utoipa::path(post, path = "/api/production_api/portfolio_data", tag = "production_api", request_body = schema::SymbolsRequest, responses((status = 200, body = schema::PortfolioDataResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn portfolio_data(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SymbolList>,
) -> Result<Json<Value>, ApiError> {
    req.check(state.settings.limits.max_series)?;
    let report = state.market.quotes(&req.symbols).await;
    // Local data is a snapshot: say how old it is.
    let as_of = report
        .found
        .iter()
        .filter(|(_, q)| q.provider == local::NAME)
        .map(|(_, q)| q.timestamp.date_naive())
        .max();
    let portfolio_data: BTreeMap<String, _> = report.found.into_iter().collect();
    let symbols_found = portfolio_data.len();
    let symbols_missing: Vec<Value> = report
        .missing
        .into_iter()
        .map(|(symbol, reason)| json!({ "symbol": symbol, "reason": reason }))
        .collect();
    let mut body = json!({
        "success": true,
        "portfolio_data": portfolio_data,
        // The list as sent, as the legacy route answered; the count beside it.
        "symbols_requested": req.symbols,
        "symbols_requested_count": req.symbols.len(),
        "symbols_found": symbols_found,
        "symbols_missing": symbols_missing,
        "timestamp": Utc::now().to_rfc3339(),
    });
    if let Some(date) = as_of {
        body["as_of"] = json!(date.to_string());
    }
    Ok(Json(body))
}
