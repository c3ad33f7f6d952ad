//! The OpenAPI document: the contract's request and response shapes as
//! schemas, and the spec served at `/openapi.json` (UI at `/docs`).
//! Handlers build their JSON with `json!`; these types describe it (the
//! fields every response has; responses may carry more).

#![allow(dead_code)] // the types exist to be described, not built

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// Every error: `success` false, a human-readable `error` and a stable `code`.
#[derive(ToSchema)]
#[schema(example = json!({"success": false, "error": "unknown model \"x\"; served models: [lstm_predictor]", "code": "unknown_model"}))]
pub struct ErrorBody {
    /// Always false.
    success: bool,
    error: String,
    /// `invalid_input`, `unknown_model`, `unknown_symbol`, `insufficient_data`,
    /// `rate_limited`, `upstream_unavailable`, `busy`, `timeout`, ...
    code: String,
}

#[derive(ToSchema)]
pub struct Status {
    status: String,
}

/// `{"symbols": [...]}`
#[derive(ToSchema)]
#[schema(example = json!({"symbols": ["AAPL", "MSFT", "RELIANCE.NS"]}))]
pub struct SymbolsRequest {
    symbols: Vec<String>,
}

#[derive(ToSchema)]
pub struct ProviderMetrics {
    /// Percent, 0..100.
    success_rate: f64,
    total_calls: u64,
    avg_latency_ms: f64,
    /// `closed`, `open` or `half_open`.
    circuit_breaker_state: String,
}

#[derive(ToSchema)]
pub struct HealthDetail {
    /// `development`, `staging` or `production`.
    environment: String,
    providers: Vec<String>,
    provider_priority: Vec<String>,
    performance_metrics: BTreeMap<String, ProviderMetrics>,
    cache_stats: BTreeMap<String, u64>,
    symbol_mappings_loaded: u64,
    timestamp: String,
}

#[derive(ToSchema)]
#[schema(example = json!({"success": true, "status": "healthy", "timestamp": "2026-11-25T20:00:00Z", "health": {"environment": "development", "providers": ["yfinance", "local"], "provider_priority": ["yfinance", "local"], "performance_metrics": {"local": {"success_rate": 100.0, "total_calls": 3, "avg_latency_ms": 0.1, "circuit_breaker_state": "closed"}}, "cache_stats": {"local": 21}, "symbol_mappings_loaded": 50, "timestamp": "2026-11-25T20:00:00Z"}}))]
pub struct HealthResponse {
    success: bool,
    /// `healthy`, `degraded` or `unhealthy`.
    status: String,
    timestamp: String,
    health: HealthDetail,
}

#[derive(ToSchema)]
pub struct QuoteBody {
    price: f64,
    change: Option<f64>,
    /// Percent.
    change_pct: Option<f64>,
    volume: Option<f64>,
    high: Option<f64>,
    low: Option<f64>,
    open: Option<f64>,
    timestamp: String,
    provider: String,
}

#[derive(ToSchema)]
pub struct PortfolioDataResponse {
    success: bool,
    /// Keyed by the symbol as requested.
    portfolio_data: BTreeMap<String, QuoteBody>,
    /// The symbols as sent.
    symbols_requested: Vec<String>,
    /// How many symbols were asked for.
    symbols_requested_count: u64,
    symbols_found: u64,
    timestamp: String,
}

#[derive(ToSchema)]
pub struct ModelMetadata {
    name: String,
    category: String,
    description: String,
    /// `price_series` or `multi_series`.
    input_type: String,
    /// `price_prediction` or `allocation`.
    output_type: String,
    complexity: String,
    latency: String,
}

#[derive(ToSchema)]
pub struct ModelList {
    success: bool,
    enhanced_models: Vec<String>,
    metadata: BTreeMap<String, ModelMetadata>,
    total_models: u64,
    timestamp: String,
}

/// Prices by value (`price_data`) or by `symbol` (fetched by the service).
#[derive(ToSchema)]
#[schema(example = json!({"symbol": "AAPL", "params": {}}))]
pub struct PredictBody {
    symbol: Option<String>,
    /// Closes oldest first, or for the optimiser `{symbol: [closes]}`.
    price_data: Option<Value>,
    /// Model parameters (e.g. `fit`, `epochs`, `method`, `symbols`).
    params: Option<Value>,
}

/// A predictor's forecast or the optimiser's allocation; model-specific
/// fields are added (see README).
#[derive(ToSchema)]
pub struct Prediction {
    success: bool,
    model_name: String,
    timestamp: String,
    /// `request`, or the provider that supplied the prices.
    data_source: String,
    predicted_price: Option<f64>,
    /// Fraction, next period.
    predicted_return: Option<f64>,
    current_price: Option<f64>,
    /// 0..1.
    confidence: Option<f64>,
    /// Optimiser: symbol -> weight, summing to 1.
    allocation: Option<BTreeMap<String, f64>>,
}

#[derive(ToSchema)]
#[schema(example = json!({"models": ["lstm_predictor", "transformer_predictor"], "symbol": "AAPL"}))]
pub struct BatchBody {
    models: Vec<String>,
    symbol: Option<String>,
    price_data: Option<Value>,
    params: Option<Value>,
}

#[derive(ToSchema)]
pub struct BatchResponse {
    success: bool,
    symbol: Option<String>,
    models_run: Vec<String>,
    /// Model name -> its prediction, or `{success: false, error, code}`.
    results: BTreeMap<String, Value>,
    batch_timestamp: String,
}

#[derive(ToSchema)]
pub struct PerformanceResponse {
    success: bool,
    /// Model -> scored, pending, hit_rate, mae, window, ... (see README).
    performance: BTreeMap<String, Value>,
    pending: u64,
    dropped: u64,
    capacity: u64,
    ensemble_weights: Value,
    timestamp: String,
}

#[derive(ToSchema)]
pub struct Price {
    monthly: f64,
    annual: f64,
}

#[derive(ToSchema)]
pub struct CatalogItem {
    id: String,
    name: String,
    category: String,
    description: String,
    /// Any of `S`, `M`, `H`.
    tier: Vec<String>,
    subscription: Price,
    features: Vec<String>,
}

#[derive(ToSchema)]
pub struct AgentsResponse {
    success: bool,
    agents: Vec<CatalogItem>,
    total: u64,
}

/// A served model's listing with its measured `evaluation` (docs/evaluation.md).
#[derive(ToSchema)]
pub struct ModelItem {
    id: String,
    name: String,
    category: String,
    description: String,
    tier: Vec<String>,
    subscription: Price,
    features: Vec<String>,
    complexity: String,
    latency: String,
    /// `{overall_score, detailed_scores, measured, details}`; only measured categories are present.
    evaluation: Value,
}

#[derive(ToSchema)]
pub struct ModelsResponse {
    success: bool,
    models: Vec<ModelItem>,
    total: u64,
}

#[derive(ToSchema)]
pub struct EnhancedModelsResponse {
    success: bool,
    enhanced_models: Vec<ModelItem>,
    total: u64,
}

#[derive(ToSchema)]
pub struct SubscriptionLists {
    agents: Vec<String>,
    models: Vec<String>,
}

#[derive(ToSchema)]
pub struct SubscriptionsResponse {
    success: bool,
    subscriptions: SubscriptionLists,
}

#[derive(ToSchema)]
#[schema(example = json!({"type": "agent", "id": "risk_monitor"}))]
pub struct SubscriptionChangeBody {
    /// `agent` or `model`.
    #[schema(rename = "type")]
    kind: String,
    id: String,
}

#[derive(ToSchema)]
pub struct Stock {
    yfinance_symbol: String,
    /// Empty where Fyers lists no such stock.
    fyers_symbol: String,
    name: String,
    /// The provider the stock's data comes from now.
    data_source: String,
}

#[derive(ToSchema)]
pub struct StocksResponse {
    success: bool,
    stocks: Vec<Stock>,
    total: u64,
}

#[derive(ToSchema)]
pub struct ReturnsResponse {
    success: bool,
    /// `{symbol, return, start_price, end_price}` or `{symbol, error}`.
    results: Vec<Value>,
    /// 0 when nothing could be priced.
    average_return: f64,
    valid_count: u64,
    total_count: u64,
}

#[derive(ToSchema)]
#[schema(example = json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "1y"}))]
pub struct BacktestBody {
    model_id: String,
    /// One stock, or several separated by commas (optimiser).
    stock_symbol: Option<String>,
    /// Several stocks (optimiser).
    stock_symbols: Option<Vec<String>>,
    /// `3mo`, `6mo`, `1y` (default) or `2y`.
    period: Option<String>,
    /// `retrain_every`, `threshold`, `allow_short`, `transaction_cost_bps`, model params.
    params: Option<Value>,
}

#[derive(ToSchema)]
pub struct MonthlyReturn {
    /// `YYYY-MM`.
    date: String,
    #[schema(rename = "return")]
    value: f64,
}

#[derive(ToSchema)]
pub struct BacktestResult {
    total_return: f64,
    annual_volatility: f64,
    sharpe_ratio: f64,
    /// Positive fraction.
    max_drawdown: f64,
    monthly_returns: Vec<MonthlyReturn>,
    benchmark_monthly_returns: Vec<MonthlyReturn>,
    hit_rate: f64,
    turnover: f64,
    trades: u64,
    days: u64,
    benchmark_total_return: f64,
    /// What was measured, in words.
    strategy: String,
}

#[derive(ToSchema)]
pub struct BacktestResponse {
    success: bool,
    model_id: String,
    stock_symbol: String,
    period: String,
    backtest_result: BacktestResult,
}

#[derive(ToSchema)]
#[schema(example = json!({"provider": "fyers", "app_id": "XXXX-100", "access_token": "..."}))]
pub struct ProviderSwitchBody {
    /// `yfinance` or `fyers`.
    provider: String,
    app_id: Option<String>,
    access_token: Option<String>,
}

#[derive(ToSchema)]
pub struct ProviderResponse {
    success: bool,
    provider: Option<String>,
    provider_priority: Vec<String>,
}
