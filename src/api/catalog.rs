//! `/api/catalog`: agents, model listings, subscriptions, stocks and returns.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::enhanced_ml::provided_series;
use super::extract::{ApiJson, CallerId, SymbolList};
use super::schema;
use crate::catalog::evaluation::evaluation;
use crate::catalog::listing::{Listing, Subscription};
use crate::catalog::returns::{trailing_return, MONTH_TRADING_DAYS};
use crate::catalog::ItemKind;
use crate::error::ApiError;
use crate::market::{Interval, Span};
use crate::models::gate::closes_fingerprint;
use crate::models::rebalance::{self, RebalanceError, Schedule};
use crate::models::walkforward::{self, Plan, WalkError};
use crate::models::{Budget, InputType, ModelError, ModelInput, Predictor, PriceSeries};
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
    let stocks = state.market.priceable_stocks();
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
                        Ok(r) => {
                            let mut result = json!({
                                "symbol": symbol,
                                "return": r.value,
                                "start_price": r.start_price,
                                "end_price": r.end_price,
                                "as_of": h.as_of().map(|d| d.to_string()),
                                "provider": h.provider,
                            });
                            if let Some(age) = h.stale_age {
                                result["stale"] = json!(true);
                                result["stale_age_secs"] = json!(age.as_secs());
                            }
                            result
                        }
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
    // The legacy route sent 0 when nothing could be priced (valid_count says so).
    let average = if valid.is_empty() {
        0.0
    } else {
        valid.iter().sum::<f64>() / valid.len() as f64
    };
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
    /// One symbol, or several separated by commas (for the optimiser).
    #[serde(default)]
    stock_symbol: Option<String>,
    /// Several symbols (for the optimiser).
    #[serde(default)]
    stock_symbols: Option<Vec<String>>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    params: Option<Value>,
}

impl BacktestRequest {
    /// The symbols asked for: `stock_symbols`, else `stock_symbol` split
    /// at commas; at least one, distinct, within `cap`.
    fn symbols(&self, cap: usize) -> Result<Vec<String>, ApiError> {
        let raw: Vec<String> = match (&self.stock_symbols, &self.stock_symbol) {
            (Some(list), _) => list.clone(),
            (None, Some(one)) => one.split(',').map(str::to_string).collect(),
            (None, None) => Vec::new(),
        };
        let symbols: Vec<String> = raw
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if symbols.is_empty() {
            return Err(ApiError::invalid("stock_symbol is required"));
        }
        if symbols.len() > cap {
            return Err(ApiError::invalid(format!(
                "{} symbols given, at most {cap}",
                symbols.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = symbols
            .iter()
            .find(|s| !seen.insert(s.to_ascii_uppercase()))
        {
            return Err(ApiError::invalid(format!("{dup} is named twice")));
        }
        Ok(symbols)
    }
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

/// Walk-forward backtest of any served model on daily closes from the data
/// layer: a predictor's own signal traded on one stock (see
/// `models::walkforward`), or the optimiser's allocation of several stocks
/// rebalanced (see `models::rebalance`; with one stock, buy-and-hold).
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
        .ok_or_else(|| ApiError::invalid("model_id is required"))?
        .to_string();
    // The legacy page prefixes enhanced models with `enhanced_`.
    let model = super::enhanced_ml::served_model(&state, &model_id, Some("enhanced_"))?;
    let symbols = req.symbols(state.settings.limits.max_series)?;
    let period = req.period.clone().unwrap_or_else(|| "1y".into());
    let days = period_days(&period).ok_or_else(|| {
        ApiError::invalid(format!("period {period:?} is not one of 3mo, 6mo, 1y, 2y"))
    })?;
    let params = match &req.params {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => return Err(ApiError::invalid("params must be a JSON object")),
    };
    let plan = Plan::from_params(&params)?;
    let name = model.info().name;
    let tested = match model.info().input_type {
        InputType::PriceSeries => {
            let [symbol] = symbols.as_slice() else {
                return Err(ApiError::invalid(format!(
                    "{name} forecasts one stock; name one stock_symbol, not {}",
                    symbols.len()
                )));
            };
            backtest_forecaster(&state, model, symbol, &period, days, params, plan).await?
        }
        InputType::MultiSeries => {
            backtest_allocation(&state, model, &symbols, &period, days, params, plan).await?
        }
    };
    let mut body = json!({
        "success": true,
        "model_id": model_id,
        "model_name": name,
        "stock_symbol": req.stock_symbol.clone().unwrap_or_else(|| symbols.join(",")),
        "stock_symbols": symbols,
        "period": period,
        "data_source": tested.data_source,
        "backtest_result": tested.result,
        "timestamp": chrono::Utc::now().to_rfc3339(),
    });
    if let Some(age) = tested.stale_age {
        body["stale"] = json!(true);
        body["stale_age_secs"] = json!(age.as_secs());
    }
    Ok(Json(body))
}

/// A backtest's result and where its prices came from.
struct Tested {
    result: Value,
    data_source: String,
    stale_age: Option<std::time::Duration>,
}

/// Runs `walk` on a blocking thread under the backtest gate, from the
/// cache when an identical backtest ran on the same prices; the bool says
/// whether it was cached. Dropping the request cancels the walk.
async fn run_backtest(
    state: &AppState,
    key: String,
    walk: impl FnOnce(&Budget) -> Result<Value, ModelError> + Send + 'static,
) -> Result<(Value, bool), ApiError> {
    // Dropped with this request (done, timed out or disconnected), which
    // stops the walk and frees its slot.
    let (budget, _cancel_on_drop) = Budget::cancellable();
    let time_budget = std::time::Duration::from_secs(state.settings.backtest.time_budget_secs);
    let cache = Arc::clone(&state.backtests);
    let (result, cached) = tokio::task::spawn_blocking(move || {
        cache.get_or_fit(key, &budget, || walk(&budget.within(time_budget)))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("a backtest panicked: {e}")))??;
    Ok((Value::clone(&result), cached))
}

async fn backtest_forecaster(
    state: &AppState,
    model: Arc<dyn Predictor>,
    symbol: &str,
    period: &str,
    days: usize,
    params: Value,
    plan: Plan,
) -> Result<Tested, ApiError> {
    // The model's history before the first traded day, then the period.
    let warm_up = model
        .lookback(&params)
        .min(state.settings.limits.max_prices_per_series);
    let history = state
        .market
        .history(symbol, Span::LastBars(warm_up + days + 1), Interval::Daily)
        .await?;
    provided_series(symbol, &history.provider, history.closes())?;
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
    let strategy = format!(
        "{name}'s next-day forecast traded on {symbol}: long above {}{}, else flat; {} bps per change; refitted every {} trading days; benchmark: buy-and-hold",
        plan.threshold,
        if plan.allow_short { ", short below minus it" } else { "" },
        plan.transaction_cost_bps,
        plan.retrain_every
    );
    let (result, cached) = run_backtest(state, key, move |budget| {
        let walked = walkforward::run(model.as_ref(), &bars, start, &params, &plan, budget)
            .map_err(|e| match e {
                WalkError::Model(e) => e,
                WalkError::Backtest(e) => ModelError::InsufficientData(e.to_string()),
                e @ WalkError::OutOfTime { .. } => ModelError::OutOfTime(e.to_string()),
                e @ WalkError::Cancelled { .. } => ModelError::Cancelled(e.to_string()),
            })?;
        let mut result = json!(walked);
        result["plan"] = json!(plan);
        result["strategy"] = json!(strategy);
        Ok(result)
    })
    .await?;
    let mut result = result;
    result["cached"] = json!(cached);
    Ok(Tested {
        result,
        data_source: history.provider,
        stale_age: history.stale_age,
    })
}

/// The optimiser's allocation of `symbols` rebalanced every
/// `plan.retrain_every` days from the `lookback_days` closes before, on the
/// dates every symbol has; with one symbol, buy-and-hold of it.
async fn backtest_allocation(
    state: &AppState,
    model: Arc<dyn Predictor>,
    symbols: &[String],
    period: &str,
    days: usize,
    params: Value,
    plan: Plan,
) -> Result<Tested, ApiError> {
    let lookback = model
        .lookback(&params)
        .clamp(2, state.settings.limits.max_prices_per_series);
    let bars = lookback + days + 1;
    let fetches = symbols.iter().cloned().map(|symbol| {
        let market = Arc::clone(&state.market);
        async move {
            let history = market
                .history(&symbol, Span::LastBars(bars), Interval::Daily)
                .await;
            (symbol, history)
        }
    });
    let fetched: Vec<_> = futures::stream::iter(fetches)
        .buffered(FETCH_CONCURRENCY)
        .collect()
        .await;
    let mut histories = Vec::with_capacity(fetched.len());
    let mut failed = Vec::new();
    for (symbol, history) in fetched {
        match history {
            Ok(h) => histories.push((symbol, h)),
            Err(e) => failed.push((symbol, ApiError::from(e))),
        }
    }
    if !failed.is_empty() {
        return Err(ApiError::of_symbols(failed));
    }
    // The dates every symbol has, oldest first.
    let mut shared: std::collections::BTreeSet<chrono::NaiveDate> =
        histories[0].1.candles().iter().map(|c| c.date()).collect();
    for (_, h) in &histories[1..] {
        let dates: std::collections::HashSet<_> = h.candles().iter().map(|c| c.date()).collect();
        shared.retain(|d| dates.contains(d));
    }
    let dates: Vec<chrono::NaiveDate> = shared.into_iter().collect();
    let mut closes: Vec<Vec<f64>> = Vec::with_capacity(histories.len());
    for (symbol, h) in &histories {
        let by_date: std::collections::HashMap<_, _> =
            h.candles().iter().map(|c| (c.date(), c.close)).collect();
        let series: Vec<f64> = dates
            .iter()
            .filter_map(|d| by_date.get(d).copied())
            .collect();
        closes.push(
            provided_series(symbol, &h.provider, series)?
                .closes()
                .to_vec(),
        );
    }
    let needed = if symbols.len() == 1 {
        days + 1
    } else {
        days + 1 + symbols.len() + 2
    };
    if dates.len() < needed {
        return Err(ApiError::insufficient_data(format!(
            "a {period} backtest of {} needs {needed} daily closes on dates they all share, they share {}",
            symbols.join(", "),
            dates.len()
        )));
    }
    let start = dates.len() - days - 1;
    let fingerprint: Vec<f64> = closes.iter().flatten().copied().collect();
    let key = format!(
        "{}|{}|{period}|{params}|{}|{}",
        model.info().name,
        symbols.join(","),
        dates[0],
        closes_fingerprint(&fingerprint)
    );
    let method = params
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("max_sharpe")
        .to_string();
    let schedule = Schedule {
        every: plan.retrain_every,
        cost: plan.transaction_cost_bps / 10_000.0,
    };
    let strategy = if symbols.len() == 1 {
        format!(
            "buy and hold: with one stock ({}) the optimiser can only invest fully in it",
            symbols[0]
        )
    } else {
        format!(
            "{method} weights of {} from the {lookback} closes before each rebalance, every {} trading days, {} bps on turnover, holdings drifting in between; benchmark: equal weight rebalanced on the same days at the same cost",
            symbols.join(", "),
            plan.retrain_every,
            plan.transaction_cost_bps
        )
    };
    let names = symbols.to_vec();
    let (result, cached) = run_backtest(state, key, move |budget| {
        let mut allocate = |t: usize| -> Result<Option<Vec<f64>>, ModelError> {
            if names.len() == 1 {
                return Ok(Some(vec![1.0]));
            }
            let from = (t + 1).saturating_sub(lookback);
            let assets = names
                .iter()
                .zip(&closes)
                .map(|(name, c)| {
                    PriceSeries::new(c[from..=t].to_vec())
                        .map(|s| (name.clone(), s))
                        .map_err(|e| ModelError::InvalidInput(format!("{name}{e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            match model.predict(&ModelInput::Assets(assets), &params, budget) {
                Ok(fields) => Ok(Some(
                    names
                        .iter()
                        .map(|n| fields["allocation"][n].as_f64().unwrap_or(0.0))
                        .collect(),
                )),
                // No portfolio on this day (e.g. nothing beats the risk-free
                // rate): the holdings are kept, and counted.
                Err(ModelError::Infeasible(_) | ModelError::InsufficientData(_)) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let tested = rebalance::run(&dates, &closes, start, schedule, &mut allocate, budget)
            .map_err(|e| match e {
                RebalanceError::Model(e) => e,
                other => ModelError::InsufficientData(other.to_string()),
            })?;
        let mut result = json!(tested);
        result["weights"] = names
            .iter()
            .zip(&tested.last_weights)
            .map(|(n, w)| (n.clone(), json!(w)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        result["strategy"] = json!(strategy);
        result["plan"] = json!({
            "method": method,
            "lookback_days": lookback,
            "retrain_every": plan.retrain_every,
            "transaction_cost_bps": plan.transaction_cost_bps,
        });
        Ok(result)
    })
    .await?;
    let mut result = result;
    result["cached"] = json!(cached);
    let providers: Vec<&str> = {
        let mut p: Vec<&str> = histories.iter().map(|(_, h)| h.provider.as_str()).collect();
        p.dedup();
        p
    };
    Ok(Tested {
        result,
        data_source: providers.join(","),
        stale_age: histories.iter().filter_map(|(_, h)| h.stale_age).max(),
    })
}
