//! The contract's request bodies and answers: the very types handlers
//! parse and serialise, so the OpenAPI document (`/openapi.json`, UI at
//! `/docs`) cannot drift from what is sent.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::catalog::returns::MonthReturn;
use crate::catalog::{Agent, CatalogModel, ItemKind, Subscriptions};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::forecast::backtest::{BacktestResult, Tested};
use crate::forecast::price_data::PriceData;
use crate::forecast::Served;
use crate::market::{local, MarketHealth, PriceableStock, Quote, QuoteReport, Staleness};
use crate::models::tracking::{ModelPerformance, Report, WeightsSnapshot};
use crate::models::{ModelInfo, Prediction, RawParams};

/// Every 4xx and 5xx answer documents the contract's error body.
#[derive(utoipa::IntoResponses)]
pub enum Failures {
    /// Bad input, unknown model or symbol, too little data, rate limited.
    #[response(status = "4XX")]
    Client(ErrorBody),
    /// No data provider, busy, timed out, or a fault of tickcast.
    #[response(status = "5XX")]
    Server(ErrorBody),
}

pub fn now() -> String {
    Utc::now().to_rfc3339()
}

/// The `params` of a request: an object, empty when absent.
pub fn params_of(params: Option<Value>) -> Result<RawParams, ApiError> {
    match params {
        None | Some(Value::Null) => Ok(RawParams::new()),
        Some(Value::Object(p)) => Ok(p),
        Some(_) => Err(ApiError::invalid("params must be a JSON object")),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
}

/// `{"symbols": [...]}`, as the data endpoints take it.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"symbols": ["AAPL", "MSFT", "RELIANCE.NS"]}))]
pub struct SymbolsRequest {
    #[serde(default)]
    pub symbols: Vec<String>,
}

impl SymbolsRequest {
    /// Refuses an empty list (with the legacy message) and one over `cap`.
    pub fn check(&self, cap: usize) -> Result<(), ApiError> {
        if self.symbols.is_empty() {
            return Err(ApiError::invalid("No symbols provided"));
        }
        if self.symbols.len() > cap {
            return Err(ApiError::invalid(format!(
                "symbols: {} given, at most {cap} per request",
                self.symbols.len()
            )));
        }
        Ok(())
    }
}

#[derive(Serialize, ToSchema)]
pub struct HealthDetail {
    #[serde(flatten)]
    pub market: MarketHealth,
    pub timestamp: String,
}

#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    pub success: bool,
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: &'static str,
    pub timestamp: String,
    pub health: HealthDetail,
}

#[derive(Serialize, ToSchema)]
pub struct MissingSymbol {
    pub symbol: String,
    pub reason: String,
}

/// One daily bar; fields the source lacks are `null`.
#[derive(Serialize, ToSchema)]
pub struct DailyBar {
    pub date: String,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: f64,
    pub volume: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryResponse {
    pub success: bool,
    /// As requested.
    pub symbol: String,
    /// The provider the bars came from.
    pub data_source: String,
    /// The newest bar's date.
    pub as_of: Option<String>,
    /// Oldest first.
    pub bars: Vec<DailyBar>,
    #[serde(flatten)]
    pub staleness: Staleness,
}

impl HistoryResponse {
    pub fn new(symbol: String, history: crate::market::History) -> Self {
        HistoryResponse {
            success: true,
            symbol,
            as_of: history.as_of().map(|d| d.to_string()),
            bars: history
                .candles()
                .iter()
                .map(|c| DailyBar {
                    date: c.date().to_string(),
                    open: c.open,
                    high: c.high,
                    low: c.low,
                    close: c.close,
                    volume: c.volume,
                })
                .collect(),
            staleness: history.stale_age.into(),
            data_source: history.provider,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PortfolioDataResponse {
    pub success: bool,
    /// Keyed by the symbol as requested.
    pub portfolio_data: BTreeMap<String, Quote>,
    /// The symbols as sent.
    pub symbols_requested: Vec<String>,
    pub symbols_requested_count: usize,
    pub symbols_found: usize,
    pub symbols_missing: Vec<MissingSymbol>,
    pub timestamp: String,
    /// The date of the local data, when quotes come from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

impl PortfolioDataResponse {
    pub fn new(symbols_requested: Vec<String>, report: QuoteReport) -> Self {
        // Local data is a snapshot: say how old it is.
        let as_of = report
            .found
            .iter()
            .filter(|(_, q)| q.provider == local::NAME)
            .map(|(_, q)| q.timestamp.date_naive())
            .max();
        let portfolio_data: BTreeMap<String, Quote> = report.found.into_iter().collect();
        PortfolioDataResponse {
            success: true,
            symbols_found: portfolio_data.len(),
            portfolio_data,
            symbols_requested_count: symbols_requested.len(),
            symbols_requested,
            symbols_missing: report
                .missing
                .into_iter()
                .map(|(symbol, reason)| MissingSymbol { symbol, reason })
                .collect(),
            timestamp: now(),
            as_of: as_of.map(|d| d.to_string()),
        }
    }
}

/// `timestamp` stays the last field: the list is served prebuilt up to it.
#[derive(Serialize, ToSchema)]
pub struct ModelList {
    pub success: bool,
    pub enhanced_models: Vec<&'static str>,
    pub metadata: BTreeMap<&'static str, ModelInfo>,
    pub total_models: usize,
    pub timestamp: String,
}

/// Prices by value (`price_data`) or by `symbol` (fetched by the service).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"symbol": "AAPL", "params": {}}))]
pub struct PredictBody {
    #[serde(default)]
    pub symbol: Option<String>,
    /// Closes oldest first, or for the optimiser `{symbol: [closes]}`.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub price_data: Option<PriceData>,
    /// Model parameters (e.g. `fit`, `epochs`, `method`, `symbols`).
    #[serde(default)]
    pub params: Option<Value>,
}

/// A prediction with the fields every answer has.
#[derive(Serialize, ToSchema)]
pub struct PredictionResponse {
    pub success: bool,
    pub model_name: &'static str,
    pub model_type: &'static str,
    pub timestamp: String,
    /// `request`, or the provider(s) that supplied the prices.
    pub data_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The date of the newest close, when prices came from the data layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(flatten)]
    pub staleness: Staleness,
    #[serde(flatten)]
    pub prediction: Prediction,
}

impl From<Served> for PredictionResponse {
    fn from(s: Served) -> Self {
        PredictionResponse {
            success: true,
            model_name: s.model,
            model_type: s.model,
            timestamp: now(),
            data_source: s.data_source,
            symbol: s.symbol,
            as_of: s.as_of.map(|d| d.to_string()),
            staleness: s.stale_age.into(),
            prediction: s.prediction,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"models": ["lstm_predictor", "transformer_predictor"], "symbol": "AAPL"}))]
pub struct BatchBody {
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(flatten)]
    pub request: PredictBody,
}

/// One model's answer in a batch: its prediction, or why it has none.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchResult {
    Served(Box<PredictionResponse>),
    Failed {
        #[serde(flatten)]
        error: ErrorBody,
        model_name: String,
    },
}

#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    pub success: bool,
    pub symbol: Option<String>,
    pub models_run: Vec<String>,
    pub results: BTreeMap<String, BatchResult>,
    pub batch_timestamp: String,
}

impl BatchResponse {
    /// Each model's outcome under its name: one failing never fails the batch.
    pub fn new(
        symbol: Option<String>,
        models_run: Vec<String>,
        outcomes: Vec<Result<Served, ApiError>>,
    ) -> Self {
        let results = models_run
            .iter()
            .zip(outcomes)
            .map(|(name, outcome)| {
                let result = match outcome {
                    Ok(served) => BatchResult::Served(Box::new(served.into())),
                    Err(e) => BatchResult::Failed {
                        error: e.body(),
                        model_name: name.clone(),
                    },
                };
                (name.clone(), result)
            })
            .collect();
        BatchResponse {
            success: true,
            symbol,
            models_run,
            results,
            batch_timestamp: now(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EnsembleWeights {
    /// The newest served ensemble weights.
    #[schema(value_type = Option<Object>)]
    pub current: Option<WeightsSnapshot>,
    /// Newest first, at most 100.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<WeightsSnapshot>,
}

#[derive(Serialize, ToSchema)]
pub struct PerformanceResponse {
    pub success: bool,
    /// Model -> scored, pending, hit_rate, mae, window, ... (see README).
    #[schema(value_type = BTreeMap<String, Object>)]
    pub performance: BTreeMap<String, ModelPerformance>,
    pub pending: usize,
    pub dropped: u64,
    pub capacity: usize,
    pub ensemble_weights: EnsembleWeights,
    pub timestamp: String,
}

impl From<Report> for PerformanceResponse {
    fn from(report: Report) -> Self {
        PerformanceResponse {
            success: true,
            performance: report.models,
            pending: report.pending,
            dropped: report.dropped,
            capacity: report.capacity,
            ensemble_weights: EnsembleWeights {
                current: report.ensemble_weights.first().cloned(),
                history: report.ensemble_weights,
            },
            timestamp: now(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AgentsResponse {
    pub success: bool,
    pub agents: Vec<Agent>,
    pub total: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ModelsResponse {
    pub success: bool,
    pub models: Vec<CatalogModel>,
    pub total: usize,
}

#[derive(Serialize, ToSchema)]
pub struct EnhancedModelsResponse {
    pub success: bool,
    pub enhanced_models: Vec<CatalogModel>,
    pub total: usize,
}

impl AgentsResponse {
    pub fn new(agents: Vec<Agent>) -> Self {
        AgentsResponse {
            success: true,
            total: agents.len(),
            agents,
        }
    }
}

impl ModelsResponse {
    pub fn new(models: Vec<CatalogModel>) -> Self {
        ModelsResponse {
            success: true,
            total: models.len(),
            models,
        }
    }
}

impl EnhancedModelsResponse {
    pub fn new(enhanced_models: Vec<CatalogModel>) -> Self {
        EnhancedModelsResponse {
            success: true,
            total: enhanced_models.len(),
            enhanced_models,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionsResponse {
    pub success: bool,
    pub subscriptions: Subscriptions,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"type": "agent", "id": "risk_monitor"}))]
pub struct SubscriptionChangeBody {
    /// `agent` or `model`.
    #[serde(rename = "type", default)]
    #[schema(value_type = String)]
    pub kind: Option<Value>,
    #[serde(default)]
    pub id: Option<String>,
}

impl SubscriptionsResponse {
    pub fn new(subscriptions: Subscriptions) -> Self {
        SubscriptionsResponse {
            success: true,
            subscriptions,
        }
    }
}

impl SubscriptionChangeBody {
    /// The kind and id named, or why they are not usable.
    pub fn parse(self) -> Result<(ItemKind, String), ApiError> {
        let kind = match self.kind.as_ref().and_then(Value::as_str) {
            Some("agent") => ItemKind::Agent,
            Some("model") => ItemKind::Model,
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidType,
                    "type must be \"agent\" or \"model\"",
                ))
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

#[derive(Serialize, ToSchema)]
pub struct StocksResponse {
    pub success: bool,
    pub stocks: Vec<PriceableStock>,
    pub total: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ReturnsResponse {
    pub success: bool,
    pub results: Vec<MonthReturn>,
    /// 0 when nothing could be priced.
    pub average_return: f64,
    pub valid_count: usize,
    pub total_count: usize,
}

impl ReturnsResponse {
    pub fn new(results: Vec<MonthReturn>) -> Self {
        let valid: Vec<f64> = results.iter().filter_map(MonthReturn::value).collect();
        // The legacy route sent 0 when nothing could be priced (valid_count says so).
        let average_return = if valid.is_empty() {
            0.0
        } else {
            valid.iter().sum::<f64>() / valid.len() as f64
        };
        ReturnsResponse {
            success: true,
            average_return,
            valid_count: valid.len(),
            total_count: results.len(),
            results,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "1y"}))]
pub struct BacktestBody {
    #[serde(default)]
    pub model_id: Option<String>,
    /// One stock, or several separated by commas (optimiser).
    #[serde(default)]
    pub stock_symbol: Option<String>,
    /// Several stocks (optimiser).
    #[serde(default)]
    pub stock_symbols: Option<Vec<String>>,
    /// `3mo`, `6mo`, `1y` (default) or `2y`.
    #[serde(default)]
    pub period: Option<String>,
    /// `retrain_every`, `threshold`, `allow_short`, `transaction_cost_bps`, model params.
    #[serde(default)]
    pub params: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct BacktestResultBody {
    #[serde(flatten)]
    pub result: BacktestResult,
    /// An identical backtest on the same prices answered it.
    pub cached: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BacktestResponse {
    pub success: bool,
    pub model_id: String,
    pub model_name: &'static str,
    pub stock_symbol: String,
    pub stock_symbols: Vec<String>,
    pub period: &'static str,
    pub data_source: String,
    pub backtest_result: BacktestResultBody,
    pub timestamp: String,
    #[serde(flatten)]
    pub staleness: Staleness,
}

impl BacktestBody {
    /// The symbols asked for: `stock_symbols`, else `stock_symbol` split
    /// at commas; at least one, each once.
    pub fn symbols(&self) -> Result<Vec<String>, ApiError> {
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
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = symbols
            .iter()
            .find(|s| !seen.insert(s.to_ascii_uppercase()))
        {
            return Err(ApiError::invalid(format!("{dup} is named twice")));
        }
        Ok(symbols)
    }

    pub fn model_id(&self) -> Result<&str, ApiError> {
        self.model_id
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::invalid("model_id is required"))
    }
}

impl BacktestResponse {
    pub fn new(body: &BacktestBody, symbols: Vec<String>, period: &'static str, t: Tested) -> Self {
        BacktestResponse {
            success: true,
            model_id: body.model_id.clone().unwrap_or_default(),
            model_name: t.model,
            stock_symbol: body
                .stock_symbol
                .clone()
                .unwrap_or_else(|| symbols.join(",")),
            stock_symbols: symbols,
            period,
            data_source: t.data_source,
            backtest_result: BacktestResultBody {
                result: BacktestResult::clone(&t.result),
                cached: t.cached,
            },
            timestamp: now(),
            staleness: t.stale_age.into(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"provider": "fyers", "app_id": "XXXX-100", "access_token": "..."}))]
pub struct ProviderSwitchBody {
    /// `yfinance` or `fyers`.
    pub provider: String,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub access_token: Option<secrecy::SecretString>,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderResponse {
    pub success: bool,
    pub provider: Option<&'static str>,
    pub provider_priority: Vec<&'static str>,
}
