//! A model's input, from the request's prices or from the data layer:
//! checked closes (finite, in range, no absurd moves) for one series or
//! several, and where they came from.

use std::time::Duration;

use chrono::NaiveDate;
use futures::StreamExt;
use serde_json::Value;

use super::price_data::{Closes, PriceData};
use crate::error::ApiError;
use crate::market::calendar::{AssetClass, Calendar};
use crate::market::{DataManager, History, Interval, MarketError, Span};
use crate::models::{InputType, ModelInput, PriceSeries, Run, SeriesError};

/// Symbols whose history is fetched at once for one request.
const FETCH_CONCURRENCY: usize = 8;

/// Caps on what one request may send or ask for.
#[derive(Debug, Clone, Copy)]
pub struct InputLimits {
    pub max_prices_per_series: usize,
    pub max_series: usize,
}

/// Prices a request sent or named.
#[derive(Debug, Clone, Default)]
pub struct PriceRequest {
    pub symbol: Option<String>,
    pub price_data: Option<PriceData>,
}

/// A model's input and where it came from.
pub struct Resolved {
    pub input: ModelInput,
    /// `request`, or the provider(s) that supplied the prices.
    pub data_source: String,
    /// Date of the newest bar, when prices came from the data layer.
    pub as_of: Option<NaiveDate>,
    /// Age of the oldest last-good answer used, when a provider was down.
    pub stale_age: Option<Duration>,
}

/// The outcome of fetching a symbol's history once for several models.
pub type Prefetched = Result<History, MarketError>;

/// The input of `run` for `request`: its own prices, or a symbol's (or
/// several's) from the data layer, `prefetched` when a batch fetched them.
pub async fn resolve(
    market: &DataManager,
    limits: &InputLimits,
    run: &dyn Run,
    request: &PriceRequest,
    prefetched: Option<&Prefetched>,
) -> Result<Resolved, ApiError> {
    let lookback = run.lookback().clamp(1, limits.max_prices_per_series);
    match run.info().input_type {
        InputType::PriceSeries => {
            if let Some(data) = &request.price_data {
                let PriceData::Series(closes) = data else {
                    return Err(ApiError::invalid("price_data must be an array of prices"));
                };
                let series = checked_series("price_data", closes, limits)?;
                return Ok(from_request(ModelInput::Series(series)));
            }
            let symbol = request.symbol.as_deref().ok_or_else(|| {
                ApiError::invalid("send price_data (closes, oldest first) or a symbol")
            })?;
            let history = match prefetched {
                Some(Ok(history)) => history.last(lookback),
                Some(Err(e)) => return Err(e.clone().into()),
                None => {
                    market
                        .history(symbol, Span::LastBars(lookback), Interval::Daily)
                        .await?
                }
            };
            Ok(Resolved {
                input: ModelInput::Series(provided_series(
                    symbol,
                    &history.provider,
                    history.closes(),
                )?),
                as_of: history.as_of(),
                stale_age: history.stale_age,
                data_source: history.provider,
            })
        }
        InputType::MultiSeries => {
            let wanted = requested_symbols(run.assets(), limits)?;
            match &request.price_data {
                Some(data) => assets_sent(data, wanted, limits).map(from_request),
                None => {
                    let symbols = wanted.ok_or_else(|| {
                        ApiError::invalid("send price_data as {symbol: [closes]} or params.symbols")
                    })?;
                    fetch_assets(market, &symbols, lookback).await
                }
            }
        }
    }
}

fn from_request(input: ModelInput) -> Resolved {
    Resolved {
        input,
        data_source: "request".into(),
        as_of: None,
        stale_age: None,
    }
}

/// The assets a multi-series request names, within the cap.
fn requested_symbols(
    named: Option<&[String]>,
    limits: &InputLimits,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(symbols) = named else {
        return Ok(None);
    };
    if symbols.len() > limits.max_series {
        return Err(ApiError::invalid(format!(
            "params.symbols: {} given, at most {}",
            symbols.len(),
            limits.max_series
        )));
    }
    Ok(Some(symbols.to_vec()))
}

/// `price_data` as `{symbol: [closes]}`, in the order `wanted` names (or
/// its own).
fn assets_sent(
    data: &PriceData,
    wanted: Option<Vec<String>>,
    limits: &InputLimits,
) -> Result<ModelInput, ApiError> {
    let PriceData::BySymbol(map) = data else {
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
        let series = checked_series(&format!("price_data.{symbol}"), data, limits)?;
        assets.push((symbol, series));
    }
    Ok(ModelInput::Assets(assets))
}

/// Each symbol's history, fetched side by side (bounded), deep enough for
/// `bars` closes on the dates they all share: a crypto pair among stocks
/// trades on every calendar day, so more of its bars span the same time,
/// and one whose bars start after the stocks' first (its data runs later
/// than theirs, as the embedded datasets do) is fetched again reaching
/// back to it. Every symbol that fails is named.
pub async fn fetch_histories(
    market: &DataManager,
    symbols: &[String],
    bars: usize,
) -> Result<Vec<(String, History)>, ApiError> {
    let calendar = Calendar::of(symbols);
    let depths: Vec<usize> = symbols
        .iter()
        .map(|s| calendar.bars_of(AssetClass::of(s), bars))
        .collect();
    let mut histories = fetch_each(market, symbols, &depths).await?;
    let first_session = histories
        .iter()
        .filter(|(s, _)| AssetClass::of(s) == AssetClass::Equity)
        .filter_map(|(_, h)| h.candles().first().map(|c| c.date()))
        .min();
    let Some(first_session) = first_session else {
        return Ok(histories);
    };
    for (i, (symbol, history)) in histories.iter_mut().enumerate() {
        let starts = history.candles().first().map(|c| c.date());
        let Some(late) = starts
            .filter(|_| AssetClass::of(symbol) == AssetClass::Crypto)
            .map(|d| (d - first_session).num_days())
            .filter(|days| *days > 0)
        else {
            continue;
        };
        let deeper = depths[i] + usize::try_from(late).unwrap_or(0) + 7;
        *history = fetch_each(market, std::slice::from_ref(symbol), &[deeper])
            .await?
            .remove(0)
            .1;
    }
    Ok(histories)
}

/// The newest `depths[i]` daily bars of each `symbols[i]`, side by side.
async fn fetch_each(
    market: &DataManager,
    symbols: &[String],
    depths: &[usize],
) -> Result<Vec<(String, History)>, ApiError> {
    let fetches =
        symbols
            .iter()
            .cloned()
            .zip(depths.iter().copied())
            .map(|(symbol, depth)| async move {
                let history = market
                    .history(&symbol, Span::LastBars(depth), Interval::Daily)
                    .await;
                (symbol, history)
            });
    let fetched: Vec<(String, Result<History, MarketError>)> = futures::stream::iter(fetches)
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
    if failed.is_empty() {
        Ok(histories)
    } else {
        Err(ApiError::of_symbols(failed))
    }
}

/// Where several histories came from: their providers (once each, in the
/// order met), the newest bar's date and the oldest stale age.
pub struct Provenance {
    pub data_source: String,
    pub as_of: Option<NaiveDate>,
    pub stale_age: Option<Duration>,
}

impl Provenance {
    pub fn of(histories: &[(String, History)]) -> Self {
        let mut providers: Vec<&str> = Vec::new();
        let (mut as_of, mut stale_age) = (None, None);
        for (_, history) in histories {
            if !providers.contains(&history.provider.as_str()) {
                providers.push(&history.provider);
            }
            as_of = as_of.max(history.as_of());
            stale_age = stale_age.max(history.stale_age);
        }
        Provenance {
            data_source: providers.join(","),
            as_of,
            stale_age,
        }
    }
}

/// Each history's closes on the dates all of them have (oldest first):
/// markets with other holidays, or crypto that trades every day, aligned
/// before any return is taken. Closes no model should see are refused as
/// the provider's fault.
pub fn on_shared_dates(
    histories: &[(String, History)],
) -> Result<(Vec<NaiveDate>, Vec<Vec<f64>>), ApiError> {
    let mut series = Vec::with_capacity(histories.len());
    for (symbol, history) in histories {
        provided_series(symbol, &history.provider, history.closes())?;
        series.push(
            history
                .candles()
                .iter()
                .map(|c| (c.date(), c.close))
                .collect::<Vec<_>>(),
        );
    }
    Ok(crate::models::risk::on_shared_dates(&series))
}

/// The newest `bars` closes of each symbol on the dates they share.
async fn fetch_assets(
    market: &DataManager,
    symbols: &[String],
    bars: usize,
) -> Result<Resolved, ApiError> {
    let histories = fetch_histories(market, symbols, bars).await?;
    let provenance = Provenance::of(&histories);
    let (dates, closes) = on_shared_dates(&histories)?;
    let mut assets = Vec::with_capacity(histories.len());
    for ((symbol, history), closes) in histories.into_iter().zip(closes) {
        let newest = closes[closes.len().saturating_sub(bars)..].to_vec();
        let series = provided_series(&symbol, &history.provider, newest).map_err(|e| {
            if closes.is_empty() {
                ApiError::insufficient_data(format!(
                    "{} share no date with closes",
                    symbols.join(", ")
                ))
            } else {
                e
            }
        })?;
        assets.push((symbol, series));
    }
    Ok(Resolved {
        input: ModelInput::Assets(assets),
        data_source: provenance.data_source,
        // The newest date the closes used share, not any one's newest.
        as_of: dates.last().copied().or(provenance.as_of),
        stale_age: provenance.stale_age,
    })
}

/// Closes a provider sent for `symbol`, refused (as the provider's fault)
/// when no model should see them.
pub fn provided_series(
    symbol: &str,
    provider: &str,
    closes: Vec<f64>,
) -> Result<PriceSeries, ApiError> {
    PriceSeries::new(closes).map_err(|e| {
        ApiError::new(
            crate::error::ErrorCode::UpstreamUnavailable,
            format!("{provider} sent unusable prices for {symbol}: {e}"),
        )
    })
}

/// `value` as the price series of `field`, each entry checked (see
/// [`checked_series`]).
pub fn series_from_json(
    field: &str,
    value: &Value,
    limits: &InputLimits,
) -> Result<PriceSeries, ApiError> {
    checked_series(field, &Closes::from(value), limits)
}

/// The closes sent as `field`, checked: an array of numbers only, within
/// the cap, each finite, in range and no absurd move from the one before.
pub fn checked_series(
    field: &str,
    closes: &Closes,
    limits: &InputLimits,
) -> Result<PriceSeries, ApiError> {
    let too_many = |len: usize| {
        ApiError::invalid(format!(
            "{field}: {len} prices given, at most {} per series",
            limits.max_prices_per_series
        ))
    };
    let numbers = match closes {
        Closes::NotArray(_) => {
            return Err(ApiError::invalid(format!(
                "{field} must be an array of prices"
            )))
        }
        Closes::NotNumbers { len, .. } if *len > limits.max_prices_per_series => {
            return Err(too_many(*len))
        }
        Closes::NotNumbers { index, entry, .. } => {
            return Err(ApiError::invalid(format!(
                "{field}[{index}] is {entry}, not a number"
            )))
        }
        Closes::Numbers(numbers) if numbers.len() > limits.max_prices_per_series => {
            return Err(too_many(numbers.len()))
        }
        Closes::Numbers(numbers) => numbers,
    };
    PriceSeries::new(numbers.clone()).map_err(|e| match e {
        SeriesError::Empty => ApiError::invalid(format!("{field} is empty")),
        other => ApiError::invalid(format!("{field}{other}")),
    })
}
