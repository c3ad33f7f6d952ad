//! Portfolio risk over the data layer: the portfolio of a request (its
//! weights, and its closes sent or fetched and aligned on shared dates),
//! assessed on the blocking pool.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::Value;

use super::input::{fetch_histories, on_shared_dates, series_from_json, InputLimits, Provenance};
use crate::config::Limits;
use crate::error::{ApiError, ErrorCode};
use crate::market::DataManager;
use crate::models::risk::{self, Portfolio, RiskError, RiskParams, RiskReport};

/// The portfolio a request describes: weights with symbols, or with
/// `price_data`.
pub struct PortfolioRequest<'a> {
    pub symbols: Option<&'a [String]>,
    pub weights: Option<&'a Value>,
    pub price_data: Option<&'a Value>,
}

/// A risk report and what its prices came from.
pub struct Assessed {
    pub report: RiskReport,
    pub data_source: String,
    pub as_of: Option<NaiveDate>,
    pub stale_age: Option<std::time::Duration>,
}

pub async fn assess(
    market: &DataManager,
    limits: &Limits,
    request: PortfolioRequest<'_>,
    params: RiskParams,
) -> Result<Assessed, ApiError> {
    if matches!(request.weights, None | Some(Value::Null)) {
        return Err(no_weights());
    }
    let prices = match request.price_data {
        Some(data) => from_request(
            data,
            request.symbols,
            limits.max_series,
            limits.max_prices_per_series,
        )?,
        None => {
            let symbols = request.symbols.ok_or_else(|| {
                ApiError::invalid(
                    "send symbols (with weights), or price_data as {symbol: [closes]}",
                )
            })?;
            check_symbols(symbols, limits.max_series)?;
            let bars = (params.lookback + params.backtest + 1).min(limits.max_prices_per_series);
            fetched(market, symbols, bars).await?
        }
    };
    let weights = weights_of(request.weights, &prices.symbols)?;
    let portfolio = Portfolio::new(prices.symbols, weights, &prices.closes, prices.dates)
        .map_err(risk_error)?;
    let report = tokio::task::spawn_blocking(move || risk::assess(&portfolio, &params))
        .await
        .map_err(|e| ApiError::internal(format!("the VaR computation panicked: {e}")))?
        .map_err(risk_error)?;
    Ok(Assessed {
        report,
        data_source: prices.data_source,
        as_of: prices.as_of,
        stale_age: prices.stale_age,
    })
}

pub fn risk_error(e: RiskError) -> ApiError {
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
        let limits = InputLimits {
            max_prices_per_series: max_prices,
            max_series,
        };
        let checked = series_from_json(&field, series, &limits)?;
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
async fn fetched(
    market: &DataManager,
    symbols: &[String],
    bars: usize,
) -> Result<Prices, ApiError> {
    let histories = fetch_histories(market, symbols, bars).await?;
    let provenance = Provenance::of(&histories);
    let (dates, closes) = on_shared_dates(&histories)?;
    Ok(Prices {
        symbols: symbols.to_vec(),
        closes,
        as_of: dates.last().copied().or(provenance.as_of),
        dates: Some(dates),
        data_source: provenance.data_source,
        stale_age: provenance.stale_age,
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
