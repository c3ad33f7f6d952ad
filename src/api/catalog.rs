//! `/api/catalog`: agents, model listings, subscriptions, stocks and returns.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, CallerId, SymbolList};
use super::schema;
use crate::catalog::evaluation::evaluation;
use crate::catalog::listing::{Listing, Subscription};
use crate::catalog::returns::{trailing_return, MONTH_TRADING_DAYS};
use crate::catalog::ItemKind;
use crate::error::ApiError;
use crate::market::{Interval, Span};
use crate::models::gate::closes_fingerprint;
use crate::models::walkforward::{self, Plan, WalkError};
use crate::models::{Budget, ModelError};
use crate::startup::AppState;

/// Symbols fetched at once for returns.
const FETCH_CONCURRENCY: usize = 8;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agents))
        .routes(routes!(models))
        .routes(routes!(enhanced_models))
        .routes(routes!(subscriptions))
        .routes(routes!(subscribe))
        .routes(routes!(unsubscribe))
        .routes(routes!(stocks))
        .routes(routes!(past_month_return))
        .routes(routes!(backtest))
}

#[utoipa::path(get, path = "/api/catalog/agents", tag = "catalog", responses((status = 200, body = schema::AgentsResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn agents(State(state): State<AppState>) -> Json<Value> {
    let agents = &state.catalog.agents;
    Json(json!({ "success": true, "agents": agents, "total": agents.len() }))
}

#[utoipa::path(get, path = "/api/catalog/models", tag = "catalog", responses((status = 200, body = schema::ModelsResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn models(State(state): State<AppState>) -> Json<Value> {
    let items = served_models(&state, Listing::Models);
    Json(json!({ "success": true, "total": items.len(), "models": items }))
}

#[utoipa::path(get, path = "/api/catalog/enhanced_models", tag = "catalog", responses((status = 200, body = schema::EnhancedModelsResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn enhanced_models(State(state): State<AppState>) -> Json<Value> {
    let items = served_models(&state, Listing::EnhancedModels);
    Json(json!({ "success": true, "total": items.len(), "enhanced_models": items }))
}

/// Served models in `listing`, each merged with its catalog entry. A served
/// model without an entry is listed under `enhanced_models` from its own
/// description, so the two lists never share an id.
fn served_models(state: &AppState, listing: Listing) -> Vec<Value> {
    state
        .registry
        .infos()
        .filter_map(|info| {
            let entry = state.catalog.model(info.name);
            let in_listing = entry.map_or(Listing::EnhancedModels, |e| e.listing);
            if in_listing != listing {
                return None;
            }
            let free = Subscription {
                monthly: 0.0,
                annual: 0.0,
            };
            Some(json!({
                "id": info.name,
                "name": entry.map_or(info.name, |e| e.name.as_str()),
                "category": entry.map_or(info.category, |e| e.category.as_str()),
                "description": entry.map_or(info.description, |e| e.description.as_str()),
                "tier": entry.map(|e| e.tier.clone()).unwrap_or_default(),
                "subscription": entry.map_or(&free, |e| &e.subscription),
                "features": entry.map(|e| e.features.clone()).unwrap_or_default(),
                "complexity": info.complexity,
                "latency": info.latency,
                "evaluation": evaluation(info.name, state.measurements.as_deref()),
            }))
        })
        .collect()
}

#[utoipa::path(get, path = "/api/catalog/subscriptions", tag = "catalog", params(("X-User-Id" = Option<String>, Header, description = "caller without API keys (default `default`)")), responses((status = 200, body = schema::SubscriptionsResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn subscriptions(
    State(state): State<AppState>,
    CallerId(user): CallerId,
) -> Result<Json<Value>, ApiError> {
    let subs = state.subscriptions.list(&user).await?;
    Ok(Json(json!({ "success": true, "subscriptions": subs })))
}

#[derive(Deserialize)]
struct SubscriptionChange {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default)]
    id: Option<String>,
}

impl SubscriptionChange {
    fn parse(self) -> Result<(ItemKind, String), ApiError> {
        let kind = match self.kind.as_ref().and_then(Value::as_str) {
            Some("agent") => ItemKind::Agent,
            Some("model") => ItemKind::Model,
            _ => {
                return Err(ApiError::BadRequest {
                    code: "invalid_type",
                    message: "type must be \"agent\" or \"model\"".into(),
                })
            }
        };
        let id = self
            .id
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ApiError::invalid("id is required"))?;
        Ok((kind, id))
    }
}

#[utoipa::path(post, path = "/api/catalog/subscribe", tag = "catalog", request_body = schema::SubscriptionChangeBody, params(("X-User-Id" = Option<String>, Header, description = "caller without API keys (default `default`)")), responses((status = 200, body = schema::SubscriptionsResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn subscribe(
    State(state): State<AppState>,
    CallerId(user): CallerId,
    ApiJson(change): ApiJson<SubscriptionChange>,
) -> Result<Json<Value>, ApiError> {
    let (kind, id) = change.parse()?;
    let known = match kind {
        ItemKind::Agent => state.catalog.agent(&id).is_some(),
        ItemKind::Model => state.registry.get(&id).is_some(),
    };
    if !known {
        return Err(ApiError::NotFound {
            code: "unknown_id",
            message: format!(
                "no {} with id {id:?}",
                if kind == ItemKind::Agent {
                    "agent"
                } else {
                    "model"
                }
            ),
        });
    }
    let subs = state.subscriptions.subscribe(&user, kind, &id).await?;
    Ok(Json(json!({ "success": true, "subscriptions": subs })))
}

#[utoipa::path(post, path = "/api/catalog/unsubscribe", tag = "catalog", request_body = schema::SubscriptionChangeBody, params(("X-User-Id" = Option<String>, Header, description = "caller without API keys (default `default`)")), responses((status = 200, body = schema::SubscriptionsResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn unsubscribe(
    State(state): State<AppState>,
    CallerId(user): CallerId,
    ApiJson(change): ApiJson<SubscriptionChange>,
) -> Result<Json<Value>, ApiError> {
    let (kind, id) = change.parse()?;
    let subs = state.subscriptions.unsubscribe(&user, kind, &id).await?;
    Ok(Json(json!({ "success": true, "subscriptions": subs })))
}

#[utoipa::path(get, path = "/api/catalog/stocks", tag = "catalog", responses((status = 200, body = schema::StocksResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn stocks(State(state): State<AppState>) -> Json<Value> {
    let stocks = state.market.mapper().stocks();
    Json(json!({ "success": true, "stocks": stocks, "total": stocks.len() }))
}

#[utoipa::path(post, path = "/api/catalog/past_month_return", tag = "catalog", request_body = schema::SymbolsRequest, responses((status = 200, body = schema::ReturnsResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn past_month_return(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SymbolList>,
) -> Result<Json<Value>, ApiError> {
    req.check(state.settings.limits.max_series)?;
    let results: Vec<Value> = futures::stream::iter(req.symbols.iter().cloned())
        .map(|symbol| {
            let market = Arc::clone(&state.market);
            async move {
                let history = market
                    .history(
                        &symbol,
                        Span::LastBars(MONTH_TRADING_DAYS + 1),
                        Interval::Daily,
                    )
                    .await;
                match history {
                    Ok(h) => match trailing_return(&h.closes(), MONTH_TRADING_DAYS) {
                        Ok(r) => json!({
                            "symbol": symbol,
                            "return": r.value,
                            "start_price": r.start_price,
                            "end_price": r.end_price,
                            "as_of": h.as_of().map(|d| d.to_string()),
                            "provider": h.provider,
                        }),
                        Err(reason) => {
                            json!({ "symbol": symbol, "error": format!("{symbol}: {reason}") })
                        }
                    },
                    Err(e) => json!({ "symbol": symbol, "error": e.to_string() }),
                }
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .collect()
        .await;
    let valid: Vec<f64> = results
        .iter()
        .filter_map(|r| r["return"].as_f64())
        .collect();
    let average = (!valid.is_empty()).then(|| valid.iter().sum::<f64>() / valid.len() as f64);
    Ok(Json(json!({
        "success": true,
        "results": results,
        "average_return": average,
        "valid_count": valid.len(),
        "total_count": results.len(),
    })))
}

#[derive(Deserialize)]
struct BacktestRequest {
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default)]
    stock_symbol: Option<String>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    params: Option<Value>,
}

/// Trading days in each period the catalog page offers.
fn period_days(period: &str) -> Option<usize> {
    match period {
        "3mo" => Some(63),
        "6mo" => Some(126),
        "1y" => Some(252),
        "2y" => Some(504),
        _ => None,
    }
}

/// Walk-forward backtest of a served predictor on a stock's daily closes
/// from the data layer (see `models::walkforward`).
#[utoipa::path(post, path = "/api/catalog/backtest", tag = "catalog", request_body = schema::BacktestBody, responses((status = 200, body = schema::BacktestResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn backtest(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BacktestRequest>,
) -> Result<Json<Value>, ApiError> {
    let model_id = req
        .model_id
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid("model_id is required"))?;
    // The legacy page prefixes enhanced models with `enhanced_`.
    let model = super::enhanced_ml::served_model(&state, model_id, Some("enhanced_"))?;
    let symbol = req
        .stock_symbol
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("stock_symbol is required"))?
        .to_string();
    let period = req.period.unwrap_or_else(|| "1y".into());
    let days = period_days(&period).ok_or_else(|| {
        ApiError::invalid(format!("period {period:?} is not one of 3mo, 6mo, 1y, 2y"))
    })?;
    let params = match req.params {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(ApiError::invalid("params must be a JSON object")),
    };
    let plan = Plan::from_params(&params)?;
    // The model's history before the first traded day, then the period.
    let warm_up = model
        .lookback(&params)
        .min(state.settings.limits.max_prices_per_series);
    let history = state
        .market
        .history(&symbol, Span::LastBars(warm_up + days + 1), Interval::Daily)
        .await?;
    let bars: Vec<(chrono::NaiveDate, f64)> = history
        .candles()
        .iter()
        .map(|c| (c.date(), c.close))
        .collect();
    if bars.len() < days + 2 {
        return Err(ApiError::insufficient_data(format!(
            "a {period} backtest needs {} daily closes of {symbol}, {} has {}",
            days + 1,
            history.provider,
            bars.len()
        )));
    }
    let start = bars.len() - days - 1;
    let closes: Vec<f64> = bars.iter().map(|b| b.1).collect();
    let name = model.info().name;
    let key = format!(
        "{name}|{period}|{params}|{}|{}",
        bars[0].0,
        closes_fingerprint(&closes)
    );
    // Dropped with this request (done, timed out or disconnected), which
    // stops the walk and frees its slot.
    let (budget, _cancel_on_drop) = Budget::cancellable();
    let time_budget = std::time::Duration::from_secs(state.settings.backtest.time_budget_secs);
    let cache = Arc::clone(&state.backtests);
    let worker_params = params.clone();
    let (result, cached) = tokio::task::spawn_blocking(move || {
        cache.get_or_fit(key, &budget, || {
            let walked = walkforward::run(
                model.as_ref(),
                &bars,
                start,
                &worker_params,
                &plan,
                &budget.within(time_budget),
            )
            .map_err(|e| match e {
                WalkError::Model(e) => e,
                WalkError::Backtest(e) => ModelError::InsufficientData(e.to_string()),
                e @ WalkError::OutOfTime { .. } => ModelError::OutOfTime(e.to_string()),
                e @ WalkError::Cancelled { .. } => ModelError::Cancelled(e.to_string()),
            })?;
            Ok(json!({ "walk": walked, "plan": plan }))
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("backtest of {name} panicked: {e}")))??;
    let mut backtest_result = result["walk"].clone();
    backtest_result["plan"] = result["plan"].clone();
    backtest_result["cached"] = json!(cached);
    Ok(Json(json!({
        "success": true,
        "model_id": model_id,
        "model_name": name,
        "stock_symbol": symbol,
        "period": period,
        "data_source": history.provider,
        "backtest_result": backtest_result,
        "timestamp": chrono::Utc::now().to_rfc3339(),
    })))
}
