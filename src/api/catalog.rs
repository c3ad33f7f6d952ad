//! `/api/catalog`: agents, model listings, subscriptions, stocks and returns.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, CallerId, SymbolList};
use crate::catalog::listing::{Listing, Subscription};
use crate::catalog::returns::{trailing_return, MONTH_TRADING_DAYS};
use crate::catalog::ItemKind;
use crate::error::ApiError;
use crate::market::{Interval, Span};
use crate::startup::AppState;

/// Symbols fetched at once for returns.
const FETCH_CONCURRENCY: usize = 8;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/catalog/agents", get(agents))
        .route("/api/catalog/models", get(models))
        .route("/api/catalog/enhanced_models", get(enhanced_models))
        .route("/api/catalog/subscriptions", get(subscriptions))
        .route("/api/catalog/subscribe", post(subscribe))
        .route("/api/catalog/unsubscribe", post(unsubscribe))
        .route("/api/catalog/stocks", get(stocks))
        .route("/api/catalog/past_month_return", post(past_month_return))
}

async fn agents(State(state): State<AppState>) -> Json<Value> {
    let agents = &state.catalog.agents;
    Json(json!({ "success": true, "agents": agents, "total": agents.len() }))
}

async fn models(State(state): State<AppState>) -> Json<Value> {
    let items = served_models(&state, Listing::Models);
    Json(json!({ "success": true, "total": items.len(), "models": items }))
}

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
            }))
        })
        .collect()
}

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

async fn unsubscribe(
    State(state): State<AppState>,
    CallerId(user): CallerId,
    ApiJson(change): ApiJson<SubscriptionChange>,
) -> Result<Json<Value>, ApiError> {
    let (kind, id) = change.parse()?;
    let subs = state.subscriptions.unsubscribe(&user, kind, &id).await?;
    Ok(Json(json!({ "success": true, "subscriptions": subs })))
}

async fn stocks(State(state): State<AppState>) -> Json<Value> {
    let stocks = state.market.mapper().stocks();
    Json(json!({ "success": true, "stocks": stocks, "total": stocks.len() }))
}

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
