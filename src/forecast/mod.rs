//! The forecasting service: "predict with this model, by these prices or
//! this symbol". It resolves the model and its params, fetches prices,
//! runs the model on a blocking thread (cancelled when the request goes),
//! and keeps every forecast served for a symbol for live tracking.
//! Backtests ([`backtest`]) run the same models over history.

pub mod backtest;
pub mod input;
pub mod lifecycle;
pub mod options;
pub mod price_data;
pub mod risk;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};

use crate::error::{ApiError, ErrorCode};
use crate::market::calendar::Calendar;
use crate::market::{DataManager, Interval, Span};
use crate::models::lifecycle::experiment::Arm;
use crate::models::tracking::{self, Report, Tracker, WeightsSnapshot};
use crate::models::{
    Budget, ForecastDetails, InputType, ModelInfo, Prediction, Predictor, RawParams, Registry, Run,
};
use input::{InputLimits, Prefetched, PriceRequest};

/// Most models one batch may name.
pub const MAX_BATCH_MODELS: usize = 16;

/// A prediction as served, and what it was made from.
#[derive(Debug)]
pub struct Served {
    pub model: &'static str,
    pub prediction: Prediction,
    /// `request`, or the provider(s) that supplied the prices.
    pub data_source: String,
    pub symbol: Option<String>,
    /// Date of the newest bar, when prices came from the data layer.
    pub as_of: Option<NaiveDate>,
    /// Age of the last-good prices used, when a provider was down.
    pub stale_age: Option<Duration>,
}

pub struct ForecastService {
    registry: Arc<Registry>,
    market: Arc<DataManager>,
    tracker: Arc<Tracker>,
    limits: InputLimits,
}

impl ForecastService {
    pub fn new(
        registry: Arc<Registry>,
        market: Arc<DataManager>,
        tracker: Arc<Tracker>,
        limits: InputLimits,
    ) -> Self {
        ForecastService {
            registry,
            market,
            tracker,
            limits,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The served model called `name` (or, with `legacy_prefix`, `name`
    /// without it); 404 `unknown_model` naming the served ones.
    pub fn model(
        &self,
        name: &str,
        legacy_prefix: Option<&str>,
    ) -> Result<Arc<dyn Predictor>, ApiError> {
        self.registry.resolve(name, legacy_prefix).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownModel,
                format!(
                    "unknown model {name:?}; served models: [{}]",
                    self.registry.names().join(", ")
                ),
            )
        })
    }

    pub fn models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.registry.infos()
    }

    /// Live figures of the forecasts served for symbols.
    pub fn performance(&self) -> Report {
        self.tracker.report()
    }

    /// `model_name`'s prediction for `prices` with `params`, asked by
    /// `caller` (whose A/B arm, while the model has a test running, is
    /// fixed by caller and symbol).
    pub async fn predict(
        &self,
        model_name: &str,
        prices: &PriceRequest,
        params: &RawParams,
        caller: &str,
    ) -> Result<Served, ApiError> {
        let model = self.model(model_name, None)?;
        let run = configure(
            model.as_ref(),
            &on_calendar(model.as_ref(), params, prices),
            prices,
            caller,
        )?;
        self.serve(run, prices, None).await
    }

    /// Several models on the same prices: each answers alone (one failing
    /// never fails the others). A symbol's history is fetched once, as
    /// deep as the deepest model needs, and each model reads its own
    /// params out of the shared ones.
    pub async fn predict_batch(
        &self,
        names: &[String],
        prices: &PriceRequest,
        params: &RawParams,
        caller: &str,
    ) -> Vec<Result<Served, ApiError>> {
        let runs: Vec<Result<Armed, ApiError>> = names
            .iter()
            .map(|name| {
                let model = self.model(name, None)?;
                let own = params_for(model.as_ref(), names, &self.registry, params);
                configure(
                    model.as_ref(),
                    &on_calendar(model.as_ref(), &own, prices),
                    prices,
                    caller,
                )
            })
            .collect();
        let prefetched = self.prefetch(&runs, prices).await;
        let served = runs.into_iter().map(|run| {
            let prefetched = prefetched.as_ref();
            async move { self.serve(run?, prices, prefetched).await }
        });
        futures::future::join_all(served).await
    }

    /// The batch's symbol history, fetched once for its price-series models.
    async fn prefetch(
        &self,
        runs: &[Result<Armed, ApiError>],
        prices: &PriceRequest,
    ) -> Option<Prefetched> {
        let symbol = match (&prices.price_data, &prices.symbol) {
            (None, Some(symbol)) => symbol,
            _ => return None,
        };
        let deepest = runs
            .iter()
            .flatten()
            .filter(|armed| armed.run.info().input_type == InputType::PriceSeries)
            .map(|armed| armed.run.lookback())
            .max()?;
        let bars = deepest.clamp(1, self.limits.max_prices_per_series);
        Some(
            self.market
                .history(symbol, Span::LastBars(bars), Interval::Daily)
                .await,
        )
    }

    async fn serve(
        &self,
        Armed { run, arm }: Armed,
        prices: &PriceRequest,
        prefetched: Option<&Prefetched>,
    ) -> Result<Served, ApiError> {
        let resolved =
            input::resolve(&self.market, &self.limits, run.as_ref(), prices, prefetched).await?;
        let model = run.info().name;
        let input = resolved.input;
        // Dropped with this request (done, timed out or disconnected),
        // which stops a fit still running for it.
        let (budget, _cancel_on_drop) = Budget::cancellable();
        let mut prediction = tokio::task::spawn_blocking(move || run.predict(&input, &budget))
            .await
            .map_err(|e| ApiError::internal(format!("model {model} panicked: {e}")))??;
        if let Some(forecast) = prediction.forecast_mut() {
            forecast.ab_arm = arm;
        }
        let served = Served {
            model,
            prediction,
            data_source: resolved.data_source,
            symbol: prices.symbol.clone(),
            as_of: resolved.as_of,
            stale_age: resolved.stale_age,
        };
        // Only fresh data-layer forecasts can be scored against the closes to come.
        if let (Some(symbol), Some(as_of), None) = (&served.symbol, served.as_of, served.stale_age)
        {
            self.track(&served, symbol, as_of);
        }
        Ok(served)
    }

    /// Keeps a forecast made from the data layer's prices so it is scored
    /// when its target close arrives.
    fn track(&self, served: &Served, symbol: &str, as_of: NaiveDate) {
        let Some(forecast) = served.prediction.forecast() else {
            return; // not a price forecast
        };
        let Ok(symbol) = crate::market::manager::validate_symbol(symbol) else {
            return;
        };
        let now = Utc::now();
        self.tracker.record(tracking::Forecast {
            model: served.model.to_string(),
            model_version: forecast
                .model_version
                .clone()
                .unwrap_or_else(|| "fitted per request".into()),
            symbol: symbol.clone(),
            made_at: now,
            as_of,
            horizon: forecast.horizon.periods(),
            current_price: forecast.current_price,
            predicted_return: forecast.predicted_return,
            confidence: forecast.confidence,
            interval: forecast.prediction_interval.as_ref().and_then(|i| {
                Some(tracking::ReturnInterval {
                    level: i.level,
                    lower_return: i.lower_return?,
                    upper_return: i.upper_return?,
                })
            }),
        });
        if let ForecastDetails::Ensemble(e) = &forecast.details {
            self.tracker.record_weights(WeightsSnapshot {
                symbol,
                at: now,
                weights: e
                    .model_weights
                    .iter()
                    .map(|(k, w)| (k.to_string(), *w))
                    .collect(),
            });
        }
    }
}

/// A configured run and the A/B arm serving it, if a test is running.
struct Armed {
    run: Arc<dyn Run>,
    arm: Option<Arm>,
}

/// `model` configured with `params` for `caller` asking about the request's symbol.
fn configure(
    model: &dyn Predictor,
    params: &RawParams,
    prices: &PriceRequest,
    caller: &str,
) -> Result<Armed, ApiError> {
    let symbol = prices.symbol.as_deref().unwrap_or("");
    let (run, arm) = model.configure_for(params, caller, symbol)?;
    Ok(Armed { run, arm })
}

/// `params` with `periods_per_year` set by the assets' calendar (365 when
/// every asset named is crypto, else 252) for a model that annualises,
/// unless the request set it. The assets are the request's symbol, its
/// `params.symbols`, or the keys of its `price_data` object; a bare array
/// of closes with no symbol is read as a stock's.
fn on_calendar(model: &dyn Predictor, params: &RawParams, prices: &PriceRequest) -> RawParams {
    const KEY: &str = "periods_per_year";
    let mut params = params.clone();
    if !model.param_names().contains(&KEY) || params.contains_key(KEY) {
        return params;
    }
    let mut symbols: Vec<&str> = prices.symbol.iter().map(String::as_str).collect();
    if let Some(price_data::PriceData::BySymbol(series)) = &prices.price_data {
        symbols.extend(series.keys().map(String::as_str));
    } else if let Some(serde_json::Value::Array(named)) = params.get("symbols") {
        symbols.extend(named.iter().filter_map(serde_json::Value::as_str));
    }
    let periods = Calendar::of(&symbols).periods_per_year();
    params.insert(KEY.into(), periods.into());
    params
}

/// The shared params of a batch, less those that only the batch's other
/// models read: a key no model of the batch knows is still refused.
fn params_for(
    model: &dyn Predictor,
    batch: &[String],
    registry: &Registry,
    params: &RawParams,
) -> RawParams {
    let own: HashSet<&str> = model.param_names().iter().copied().collect();
    let others: HashSet<&str> = batch
        .iter()
        .filter_map(|name| registry.get(name))
        .flat_map(|m| m.param_names().iter().copied())
        .collect();
    params
        .iter()
        .filter(|(k, _)| own.contains(k.as_str()) || !others.contains(k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The batch's model names, first occurrence kept, in one pass that stops
/// at the first name over the cap (a huge list is refused in microseconds).
pub fn distinct_models(models: Vec<String>) -> Result<Vec<String>, ApiError> {
    if models.is_empty() {
        return Err(ApiError::invalid("No models specified"));
    }
    let mut seen = HashSet::with_capacity(MAX_BATCH_MODELS + 1);
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
