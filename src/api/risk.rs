//! `/api/risk`: portfolio Value at Risk and expected shortfall, their
//! per-asset contributions, and a backtest of the one-day forecasts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::schema::{now, Failures};
use super::state::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::forecast::input::{fetch_histories, provided_series};
use crate::market::Staleness;
use crate::models::risk::{self, Method, Portfolio, RiskError, RiskParams, RiskReport};
use crate::models::{PriceSeries, SeriesError};

/// Most returns one window may hold.
pub const MAX_LOOKBACK: usize = 5000;
/// Most days one backtest may test.
pub const MAX_BACKTEST: usize = 2500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(value_at_risk))
}

/// The request: a portfolio (symbols and weights, or closes as
/// `price_data`) and what to compute. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"symbols": ["AAPL", "MSFT", "JNJ"], "weights": [0.5, 0.3, 0.2], "levels": [0.95, 0.99], "horizon_days": 1, "methods": ["historical", "parametric", "cornish_fisher", "filtered_historical"], "lookback_days": 1000, "backtest_days": 500}))]
pub struct VarBody {
    /// The assets, in the order of `weights` given as an array. Required
    /// without `price_data`; with it, orders and selects its series.
    #[serde(default)]
    pub symbols: Option<Vec<String>>,
    /// Required: an array in symbol order, or `{symbol: weight}` naming
    /// every symbol. Must sum to 1 (within 1e-6); negative weights are
    /// short positions.
    #[serde(default)]
    pub weights: Option<Value>,
    /// `{symbol: [closes, oldest first]}`, as for the optimiser; the series
    /// are aligned on their most recent common window.
    #[serde(default)]
    pub price_data: Option<Value>,
    /// Confidence levels, each strictly between 0 and 1 (default
    /// `[0.95, 0.99]`, at most 8).
    #[serde(default)]
    pub levels: Option<Vec<f64>>,
    /// 1 to 250 (default 1).
    #[serde(default)]
    pub horizon_days: Option<usize>,
    /// Default: all four.
    #[serde(default)]
    pub methods: Option<Vec<Method>>,
    /// Returns in the window (default 1000, 100 to 5000; fewer when the
    /// history is shorter, as the answer says).
    #[serde(default)]
    pub lookback_days: Option<usize>,
    /// Days of one-day forecasts backtested (default 500, at most 2500;
    /// 0 for none).
    #[serde(default)]
    pub backtest_days: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct VarResponse {
    pub success: bool,
    #[serde(flatten)]
    pub report: RiskReport,
    /// `request`, or the provider(s) that supplied the prices.
    pub data_source: String,
    /// Date of the newest bar, when prices came from the data layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    #[serde(flatten)]
    pub staleness: Staleness,
    pub timestamp: String,
}

/// Value at Risk and Conditional VaR (expected shortfall) of a
/// constant-weight portfolio at each level, by historical simulation,
/// parametric normal, Cornish-Fisher and filtered historical simulation
/// (GARCH(1,1), else EWMA); per-symbol component and marginal
/// contributions; and a backtest of one-day forecasts (exceedances,
/// Kupiec and Christoffersen p-values). Losses are positive fractions.
#[utoipa::path(post, path = "/api/risk/var", tag = "risk", request_body = VarBody, responses((status = 200, body = VarResponse), Failures))]
async fn value_at_risk(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VarBody>,
) -> Result<Json<VarResponse>, ApiError> {
    let params = params_of(&body)?;
    if matches!(body.weights, None | Some(Value::Null)) {
        return Err(no_weights());
    }
    let limits = &state.settings.limits;
    let prices = match &body.price_data {
        Some(data) => from_request(
            data,
            body.symbols.as_deref(),
            limits.max_series,
            limits.max_prices_per_series,
        )?,
        None => {
            let symbols = body.symbols.as_deref().ok_or_else(|| {
                ApiError::invalid(
                    "send symbols (with weights), or price_data as {symbol: [closes]}",
                )
            })?;
            check_symbols(symbols, limits.max_series)?;
            let bars = (params.lookback + params.backtest + 1).min(limits.max_prices_per_series);
            fetched(&state, symbols, bars).await?
        }
    };
    let weights = weights_of(body.weights.as_ref(), &prices.symbols)?;
    let portfolio = Portfolio::new(prices.symbols, weights, &prices.closes, prices.dates)
        .map_err(risk_error)?;
    let report = tokio::task::spawn_blocking(move || risk::assess(&portfolio, &params))
        .await
        .map_err(|e| ApiError::internal(format!("the VaR computation panicked: {e}")))?
        .map_err(risk_error)?;
    Ok(Json(VarResponse {
        success: true,
        report,
        data_source: prices.data_source,
        as_of: prices.as_of,
        staleness: prices.stale_age.into(),
        timestamp: now(),
    }))
}

fn params_of(body: &VarBody) -> Result<RiskParams, ApiError> {
    let lookback = body.lookback_days.unwrap_or(risk::DEFAULT_LOOKBACK);
    if lookback > MAX_LOOKBACK {
        return Err(ApiError::invalid(format!(
            "lookback_days must be at most {MAX_LOOKBACK}, got {lookback}"
        )));
    }
    let backtest = body.backtest_days.unwrap_or(risk::DEFAULT_BACKTEST);
    if backtest > MAX_BACKTEST {
        return Err(ApiError::invalid(format!(
            "backtest_days must be at most {MAX_BACKTEST}, got {backtest}"
        )));
    }
    RiskParams::new(
        body.levels
            .clone()
            .unwrap_or_else(|| risk::DEFAULT_LEVELS.to_vec()),
        body.horizon_days.unwrap_or(1),
        body.methods.clone().unwrap_or_else(|| Method::ALL.to_vec()),
        lookback,
        backtest,
    )
    .map_err(risk_error)
}

fn risk_error(e: RiskError) -> ApiError {
    match e {
        RiskError::InvalidInput(m) => ApiError::invalid(m),
        RiskError::InsufficientData(m) => ApiError::insufficient_data(m),
        RiskError::Failed(m) => ApiError::new(ErrorCode::ModelFailed, m),
    }
}

fn check_symbols(symbols: &[String], max: usize) -> Result<(), ApiError> {
    if symbols.is_empty() {
        return Err(ApiError::invalid("symbols is empty"));
    }
    if symbols.len() > max {
        return Err(ApiError::invalid(format!(
            "symbols: {} given, at most {max}",
            symbols.len()
        )));
    }
    Ok(())
}

/// Aligned closes of the portfolio's assets and where they came from.
struct Prices {
    symbols: Vec<String>,
    closes: Vec<Vec<f64>>,
    dates: Option<Vec<NaiveDate>>,
    data_source: String,
    as_of: Option<NaiveDate>,
    stale_age: Option<std::time::Duration>,
}

/// `price_data` as `{symbol: [closes]}` in the order `symbols` names (or
/// its own), each checked as a price series, cut to the most recent window
/// they share.
fn from_request(
    data: &Value,
    symbols: Option<&[String]>,
    max_series: usize,
    max_prices: usize,
) -> Result<Prices, ApiError> {
    let Value::Object(map) = data else {
        return Err(ApiError::invalid(
            "price_data must be an object of symbol -> closes",
        ));
    };
    if map.len() > max_series {
        return Err(ApiError::invalid(format!(
            "price_data: {} series given, at most {max_series}",
            map.len()
        )));
    }
    let order: Vec<String> = match symbols {
        Some(s) => {
            check_symbols(s, max_series)?;
            s.to_vec()
        }
        None => map.keys().cloned().collect(),
    };
    if order.is_empty() {
        return Err(ApiError::invalid("price_data is empty"));
    }
    let mut closes = Vec::with_capacity(order.len());
    for symbol in &order {
        let field = format!("price_data.{symbol}");
        let series = map.get(symbol).ok_or_else(|| {
            ApiError::invalid(format!("symbols names {symbol:?}, which price_data lacks"))
        })?;
        let Value::Array(items) = series else {
            return Err(ApiError::invalid(format!(
                "{field} must be an array of prices"
            )));
        };
        if items.len() > max_prices {
            return Err(ApiError::invalid(format!(
                "{field}: {} prices given, at most {max_prices} per series",
                items.len()
            )));
        }
        let values = items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64()
                    .ok_or_else(|| ApiError::invalid(format!("{field}[{i}] is {v}, not a number")))
            })
            .collect::<Result<Vec<f64>, _>>()?;
        let checked = PriceSeries::new(values).map_err(|e| match e {
            SeriesError::Empty => ApiError::invalid(format!("{field} is empty")),
            other => ApiError::invalid(format!("{field}{other}")),
        })?;
        closes.push(checked.closes().to_vec());
    }
    let len = closes.iter().map(Vec::len).min().unwrap_or(0);
    let closes = closes
        .into_iter()
        .map(|c| c[c.len() - len..].to_vec())
        .collect();
    Ok(Prices {
        symbols: order,
        closes,
        dates: None,
        data_source: "request".into(),
        as_of: None,
        stale_age: None,
    })
}

/// Each symbol's daily closes from the data layer, on the dates they share.
async fn fetched(state: &AppState, symbols: &[String], bars: usize) -> Result<Prices, ApiError> {
    let histories = fetch_histories(&state.market, symbols, bars).await?;
    let mut providers: Vec<String> = Vec::new();
    let (mut as_of, mut stale_age) = (None, None);
    let mut series = Vec::with_capacity(histories.len());
    for (symbol, history) in &histories {
        if !providers.contains(&history.provider) {
            providers.push(history.provider.clone());
        }
        as_of = as_of.max(history.as_of());
        stale_age = stale_age.max(history.stale_age);
        // Refuses (as the provider's fault) closes no model should see.
        provided_series(symbol, &history.provider, history.closes())?;
        series.push(
            history
                .candles()
                .iter()
                .map(|c| (c.date(), c.close))
                .collect::<Vec<_>>(),
        );
    }
    let (dates, closes) = risk::on_shared_dates(&series);
    Ok(Prices {
        symbols: symbols.to_vec(),
        closes,
        dates: Some(dates),
        data_source: providers.join(","),
        as_of,
        stale_age,
    })
}

fn no_weights() -> ApiError {
    ApiError::invalid(
        "weights is required: an array in symbol order, or {symbol: weight}, summing to 1",
    )
}

/// `weights` in symbol order: an array of as many numbers, or an object
/// naming each symbol once.
fn weights_of(weights: Option<&Value>, symbols: &[String]) -> Result<Vec<f64>, ApiError> {
    let number = |field: String, v: &Value| {
        v.as_f64()
            .ok_or_else(|| ApiError::invalid(format!("{field} is {v}, not a number")))
    };
    match weights {
        None | Some(Value::Null) => Err(no_weights()),
        Some(Value::Array(items)) => {
            if items.len() != symbols.len() {
                return Err(ApiError::invalid(format!(
                    "weights has {} values for {} symbols",
                    items.len(),
                    symbols.len()
                )));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| number(format!("weights[{i}]"), v))
                .collect()
        }
        Some(Value::Object(map)) => {
            if let Some(unknown) = map.keys().find(|k| !symbols.contains(k)) {
                return Err(ApiError::invalid(format!(
                    "weights names {unknown:?}, which is not among the symbols"
                )));
            }
            let by_symbol: BTreeMap<&String, &Value> = map.iter().collect();
            symbols
                .iter()
                .map(|s| {
                    let v = by_symbol.get(s).ok_or_else(|| {
                        ApiError::invalid(format!("weights has no weight for {s:?}"))
                    })?;
                    number(format!("weights.{s}"), v)
                })
                .collect()
        }
        Some(other) => Err(ApiError::invalid(format!(
            "weights must be an array in symbol order or an object of symbol -> weight, got {other}"
        ))),
    }
}
