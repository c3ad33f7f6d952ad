//! `/api/enhanced_ml_models`: list, predict and batch predict over the
//! model registry. Prices come from the request or, by symbol, from the
//! data manager.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::schema;
use crate::config::Limits;
use crate::error::ApiError;
use crate::market::{History, Interval, Span};
use crate::models::tracking::{Forecast, WeightsSnapshot};
use crate::models::{Budget, InputType, ModelInput, Predictor, PriceSeries, SeriesError};
use crate::startup::AppState;

/// Most models one batch may name.
const MAX_BATCH_MODELS: usize = 16;
/// Symbols whose history is fetched at once for one request.
const FETCH_CONCURRENCY: usize = 8;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(predict))
        .routes(routes!(batch_predict))
        .routes(routes!(performance))
}

/// Live figures of the forecasts served for symbols, scored as their
/// target closes arrived.
#[utoipa::path(get, path = "/api/enhanced_ml_models/performance", tag = "enhanced_ml_models", responses((status = 200, body = schema::PerformanceResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn performance(State(state): State<AppState>) -> Json<Value> {
    let report = state.tracker.report();
    Json(json!({
        "success": true,
        "performance": report.models,
        "pending": report.pending,
        "dropped": report.dropped,
        "capacity": report.capacity,
        "ensemble_weights": {
            "current": report.ensemble_weights.first(),
            "history": report.ensemble_weights,
        },
        "timestamp": Utc::now().to_rfc3339(),
    }))
}

/// Keeps a forecast served from the data layer's prices so it is scored
/// when its target close arrives.
fn track(
    state: &AppState,
    model_name: &str,
    symbol: &str,
    as_of: NaiveDate,
    fields: &Map<String, Value>,
) {
    let Ok(symbol) = crate::market::manager::validate_symbol(symbol) else {
        return;
    };
    let (Some(predicted_return), Some(current_price)) = (
        fields.get("predicted_return").and_then(Value::as_f64),
        fields.get("current_price").and_then(Value::as_f64),
    ) else {
        return; // not a price forecast
    };
    let horizon = fields
        .get("prediction_horizon")
        .and_then(Value::as_str)
        .and_then(|h| h.strip_suffix("_period"))
        .and_then(|h| h.parse().ok())
        .unwrap_or(1usize);
    let now = Utc::now();
    state.tracker.record(Forecast {
        model: model_name.to_string(),
        model_version: fields
            .get("model_version")
            .and_then(Value::as_str)
            .unwrap_or("fitted per request")
            .to_string(),
        symbol: symbol.clone(),
        made_at: now,
        as_of,
        horizon,
        current_price,
        predicted_return,
        confidence: fields
            .get("confidence")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
    });
    if let Some(Value::Object(weights)) = fields.get("model_weights") {
        state.tracker.record_weights(WeightsSnapshot {
            symbol,
            at: now,
            weights: weights
                .iter()
                .filter_map(|(k, v)| v.as_f64().map(|w| (k.clone(), w)))
                .collect(),
        });
    }
}

#[utoipa::path(get, path = "/api/enhanced_ml_models/list", tag = "enhanced_ml_models", responses((status = 200, body = schema::ModelList)))]
async fn list(State(state): State<AppState>) -> Json<Value> {
    let metadata: BTreeMap<&str, _> = state.registry.infos().map(|i| (i.name, i)).collect();
    Json(json!({
        "success": true,
        "enhanced_models": state.registry.names(),
        "metadata": metadata,
        "total_models": state.registry.len(),
        "timestamp": Utc::now().to_rfc3339(),
    }))
}

#[derive(Deserialize, Default)]
pub struct PredictRequest {
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default)]
    price_data: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
}

#[derive(Deserialize)]
struct BatchRequest {
    #[serde(default)]
    models: Vec<String>,
    #[serde(flatten)]
    request: PredictRequest,
}

#[utoipa::path(post, path = "/api/enhanced_ml_models/predict/{model_name}", tag = "enhanced_ml_models", params(("model_name" = String, Path, description = "a served model, e.g. lstm_predictor", example = "lstm_predictor")), request_body = schema::PredictBody, responses((status = 200, body = schema::Prediction), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn predict(
    State(state): State<AppState>,
    Path(model_name): Path<String>,
    ApiJson(req): ApiJson<PredictRequest>,
) -> Result<Json<Value>, ApiError> {
    run_model(&state, &model_name, &req, None)
        .await
        .map(|m| Json(Value::Object(m)))
}

#[utoipa::path(post, path = "/api/enhanced_ml_models/batch_predict", tag = "enhanced_ml_models", request_body = schema::BatchBody, responses((status = 200, body = schema::BatchResponse), (status = "4XX", description = "Bad input, unknown model or symbol, too little data, rate limited", body = schema::ErrorBody), (status = "5XX", description = "No data provider, busy or timed out", body = schema::ErrorBody)))]
async fn batch_predict(
    State(state): State<AppState>,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<Json<Value>, ApiError> {
    if batch.models.is_empty() {
        return Err(ApiError::invalid("No models specified"));
    }
    let names = distinct_models(batch.models)?;
    // The symbol's history is fetched once, as deep as the deepest model
    // needs; each model reads its own lookback of it.
    let prefetched = match (&batch.request.price_data, &batch.request.symbol) {
        (None, Some(symbol)) => {
            let params = params_of(&batch.request)?;
            let deepest = names
                .iter()
                .filter_map(|name| state.registry.get(name))
                .filter(|m| m.info().input_type == InputType::PriceSeries)
                .map(|m| m.lookback(&params))
                .max();
            match deepest {
                Some(bars) => Some(
                    state
                        .market
                        .history(
                            symbol,
                            Span::LastBars(
                                bars.clamp(1, state.settings.limits.max_prices_per_series),
                            ),
                            Interval::Daily,
                        )
                        .await,
                ),
                None => None,
            }
        }
        _ => None,
    };
    let runs = names
        .iter()
        .map(|name| run_model(&state, name, &batch.request, prefetched.as_ref()));
    let outcomes = futures::future::join_all(runs).await;
    // One model failing never fails the batch.
    let results: Map<String, Value> = names
        .iter()
        .zip(outcomes)
        .map(|(name, outcome)| {
            let value = match outcome {
                Ok(fields) => Value::Object(fields),
                Err(e) => json!({
                    "success": false,
                    "error": e.public_message(),
                    "code": e.code(),
                    "model_name": name,
                }),
            };
            (name.clone(), value)
        })
        .collect();
    Ok(Json(json!({
        "success": true,
        "symbol": batch.request.symbol,
        "models_run": names,
        "results": results,
        "batch_timestamp": Utc::now().to_rfc3339(),
    })))
}

/// The batch's model names, first occurrence kept, in one pass that stops
/// at the first name over the cap (a huge list is refused in microseconds).
fn distinct_models(models: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut seen = std::collections::HashSet::with_capacity(MAX_BATCH_MODELS + 1);
    let mut names = Vec::with_capacity(MAX_BATCH_MODELS);
    for name in models {
        if seen.contains(&name) {
            continue;
        }
        if names.len() == MAX_BATCH_MODELS {
            return Err(ApiError::invalid(format!(
                "models: more than {MAX_BATCH_MODELS} distinct names given, at most {MAX_BATCH_MODELS} per batch"
            )));
        }
        seen.insert(name.clone());
        names.push(name);
    }
    Ok(names)
}

/// The served model called `name` (or, with `legacy_prefix`, `name`
/// without that prefix); 404 `unknown_model` naming the served ones.
pub(super) fn served_model(
    state: &AppState,
    name: &str,
    legacy_prefix: Option<&str>,
) -> Result<Arc<dyn Predictor>, ApiError> {
    state
        .registry
        .get(name)
        .or_else(|| {
            legacy_prefix
                .and_then(|prefix| name.strip_prefix(prefix))
                .and_then(|n| state.registry.get(n))
        })
        .ok_or_else(|| ApiError::NotFound {
            code: "unknown_model",
            message: format!(
                "unknown model {name:?}; served models: [{}]",
                state.registry.names().join(", ")
            ),
        })
}

/// The request's params: an object, empty when absent.
fn params_of(req: &PredictRequest) -> Result<Value, ApiError> {
    match &req.params {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(p @ Value::Object(_)) => Ok(p.clone()),
        Some(_) => Err(ApiError::invalid("params must be a JSON object")),
    }
}

/// The outcome of fetching a symbol's history once for several models.
type Prefetched = Result<History, crate::market::MarketError>;

/// Resolves the input for one model (from `prefetched` history when given),
/// runs it off the async workers and adds the contract's common fields.
async fn run_model(
    state: &AppState,
    model_name: &str,
    req: &PredictRequest,
    prefetched: Option<&Prefetched>,
) -> Result<Map<String, Value>, ApiError> {
    let model = served_model(state, model_name, None)?;
    let params = params_of(req)?;
    let resolved = resolve_input(state, model.as_ref(), req, &params, prefetched).await?;

    let worker_model = Arc::clone(&model);
    let input = resolved.input;
    let worker_params = params.clone();
    // Dropped with this request (done, timed out or disconnected), which
    // stops a fit still running for it.
    let (budget, _cancel_on_drop) = Budget::cancellable();
    let mut fields =
        tokio::task::spawn_blocking(move || worker_model.predict(&input, &worker_params, &budget))
            .await
            .map_err(|e| ApiError::Internal(format!("model {model_name} panicked: {e}")))??;

    fields.insert("success".into(), json!(true));
    fields.insert("model_name".into(), json!(model_name));
    fields
        .entry("model_type")
        .or_insert_with(|| json!(model_name));
    fields.insert("timestamp".into(), json!(Utc::now().to_rfc3339()));
    fields.insert("data_source".into(), json!(resolved.data_source));
    if let Some(symbol) = &req.symbol {
        fields.insert("symbol".into(), json!(symbol));
    }
    if let Some(as_of) = resolved.as_of {
        fields.insert("as_of".into(), json!(as_of.to_string()));
        if let (Some(symbol), None) = (&req.symbol, resolved.stale_age) {
            track(state, model_name, symbol, as_of, &fields);
        }
    }
    if let Some(age) = resolved.stale_age {
        fields.insert("stale".into(), json!(true));
        fields.insert("stale_age_secs".into(), json!(age.as_secs()));
    }
    Ok(fields)
}

struct ResolvedInput {
    input: ModelInput,
    /// `request`, or the provider that supplied the prices.
    data_source: String,
    /// Date of the newest bar, when prices came from the data layer.
    as_of: Option<NaiveDate>,
    /// Age of the oldest last-good answer used, when a provider was down.
    stale_age: Option<std::time::Duration>,
}

async fn resolve_input(
    state: &AppState,
    model: &dyn Predictor,
    req: &PredictRequest,
    params: &Value,
    prefetched: Option<&Prefetched>,
) -> Result<ResolvedInput, ApiError> {
    let limits = state.settings.limits;
    let lookback = model
        .lookback(params)
        .clamp(1, limits.max_prices_per_series);
    match model.info().input_type {
        InputType::PriceSeries => {
            if let Some(data) = &req.price_data {
                let series = series_from_json("price_data", data, &limits)?;
                return Ok(ResolvedInput {
                    input: ModelInput::Series(series),
                    data_source: "request".into(),
                    as_of: None,
                    stale_age: None,
                });
            }
            let symbol = req.symbol.as_deref().ok_or_else(|| {
                ApiError::invalid("send price_data (closes, oldest first) or a symbol")
            })?;
            let fetched = match prefetched {
                Some(Ok(history)) => fetched_from(symbol, history.last(lookback))?,
                Some(Err(e)) => return Err(e.clone().into()),
                None => fetch_series(state, symbol, lookback).await?,
            };
            Ok(ResolvedInput {
                input: ModelInput::Series(fetched.series),
                data_source: fetched.provider,
                as_of: fetched.as_of,
                stale_age: fetched.stale_age,
            })
        }
        InputType::MultiSeries => {
            let wanted = requested_symbols(params, &limits)?;
            if let Some(data) = &req.price_data {
                let Value::Object(map) = data else {
                    return Err(ApiError::invalid(
                        "price_data must be an object of symbol -> closes for this model",
                    ));
                };
                if map.len() > limits.max_series {
                    return Err(ApiError::invalid(format!(
                        "price_data: {} series given, at most {}",
                        map.len(),
                        limits.max_series
                    )));
                }
                let order: Vec<String> = wanted.unwrap_or_else(|| map.keys().cloned().collect());
                let mut assets = Vec::with_capacity(order.len());
                for symbol in order {
                    let data = map.get(&symbol).ok_or_else(|| {
                        ApiError::invalid(format!(
                            "params.symbols names {symbol:?}, which price_data lacks"
                        ))
                    })?;
                    let series = series_from_json(&format!("price_data.{symbol}"), data, &limits)?;
                    assets.push((symbol, series));
                }
                return Ok(ResolvedInput {
                    input: ModelInput::Assets(assets),
                    data_source: "request".into(),
                    as_of: None,
                    stale_age: None,
                });
            }
            let symbols = wanted.ok_or_else(|| {
                ApiError::invalid("send price_data as {symbol: [closes]} or params.symbols")
            })?;
            // Fetched side by side (bounded); every symbol that fails is named.
            let fetches = symbols.iter().cloned().map(|symbol| {
                let state = state.clone();
                async move { fetch_series(&state, &symbol, lookback).await }
            });
            let fetched: Vec<Result<Fetched, ApiError>> = futures::stream::iter(fetches)
                .buffered(FETCH_CONCURRENCY)
                .collect()
                .await;
            let mut assets = Vec::with_capacity(symbols.len());
            let mut providers: Vec<String> = Vec::new();
            let (mut as_of, mut stale_age) = (None, None);
            let mut failed: Vec<(String, ApiError)> = Vec::new();
            for (symbol, fetched) in symbols.into_iter().zip(fetched) {
                match fetched {
                    Ok(fetched) => {
                        if !providers.contains(&fetched.provider) {
                            providers.push(fetched.provider);
                        }
                        as_of = as_of.max(fetched.as_of);
                        stale_age = stale_age.max(fetched.stale_age);
                        assets.push((symbol, fetched.series));
                    }
                    Err(e) => failed.push((symbol, e)),
                }
            }
            if !failed.is_empty() {
                return Err(ApiError::of_symbols(failed));
            }
            Ok(ResolvedInput {
                input: ModelInput::Assets(assets),
                data_source: providers.join(","),
                as_of,
                stale_age,
            })
        }
    }
}

/// `params.symbols`, when given: a non-empty list of strings.
fn requested_symbols(params: &Value, limits: &Limits) -> Result<Option<Vec<String>>, ApiError> {
    let Some(raw) = params.get("symbols") else {
        return Ok(None);
    };
    let symbols: Vec<String> = serde_json::from_value(raw.clone())
        .map_err(|_| ApiError::invalid("params.symbols must be an array of strings"))?;
    if symbols.is_empty() {
        return Err(ApiError::invalid("params.symbols is empty"));
    }
    if symbols.len() > limits.max_series {
        return Err(ApiError::invalid(format!(
            "params.symbols: {} given, at most {}",
            symbols.len(),
            limits.max_series
        )));
    }
    Ok(Some(symbols))
}

struct Fetched {
    series: PriceSeries,
    provider: String,
    as_of: Option<NaiveDate>,
    stale_age: Option<std::time::Duration>,
}

async fn fetch_series(state: &AppState, symbol: &str, bars: usize) -> Result<Fetched, ApiError> {
    let history = state
        .market
        .history(symbol, Span::LastBars(bars), Interval::Daily)
        .await?;
    fetched_from(symbol, history)
}

/// A fetched history as a model's series, refusing prices no model should see.
fn fetched_from(symbol: &str, history: History) -> Result<Fetched, ApiError> {
    let series = provided_series(symbol, &history.provider, history.closes())?;
    Ok(Fetched {
        series,
        as_of: history.as_of(),
        stale_age: history.stale_age,
        provider: history.provider,
    })
}

/// Closes a provider sent for `symbol`, refused (as the provider's fault)
/// when no model should see them.
pub(super) fn provided_series(
    symbol: &str,
    provider: &str,
    closes: Vec<f64>,
) -> Result<PriceSeries, ApiError> {
    PriceSeries::new(closes).map_err(|e| {
        ApiError::UpstreamUnavailable(format!("{provider} sent unusable prices for {symbol}: {e}"))
    })
}

/// A JSON array of closes, checked: numbers only, within the cap, each
/// finite and positive.
fn series_from_json(field: &str, value: &Value, limits: &Limits) -> Result<PriceSeries, ApiError> {
    let Value::Array(items) = value else {
        return Err(ApiError::invalid(format!(
            "{field} must be an array of prices"
        )));
    };
    if items.len() > limits.max_prices_per_series {
        return Err(ApiError::invalid(format!(
            "{field}: {} prices given, at most {} per series",
            items.len(),
            limits.max_prices_per_series
        )));
    }
    let closes = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_f64()
                .ok_or_else(|| ApiError::invalid(format!("{field}[{i}] is {v}, not a number")))
        })
        .collect::<Result<Vec<f64>, _>>()?;
    PriceSeries::new(closes).map_err(|e| match e {
        SeriesError::Empty => ApiError::invalid(format!("{field} is empty")),
        other => ApiError::invalid(format!("{field}{other}")),
    })
}
