//! Option pricing over the data layer: a batch of options, each priced (or
//! its implied volatility found) from the request's inputs, or from a
//! symbol's last close and its realised or GARCH forecast volatility.
//! Each option stands alone: one that cannot be priced gets its own error
//! in place and the rest are priced.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};
use crate::market::calendar::AssetClass;
use crate::market::{DataManager, Interval, Span};
use crate::models::options::{
    self, implied, Greeks, Kind, Method, OptionError, OptionInputs, Style, DEFAULT_STEPS,
};
use crate::models::volatility::{self, GarchSpec};

/// Most options one request may carry.
pub const MAX_OPTIONS: usize = 10_000;
/// Most distinct symbols one request may price from the data layer.
pub const MAX_SYMBOLS: usize = 20;
/// Tree nodes one request may roll back, over all its options (a few
/// seconds of one core): the cost of trees grows with the square of steps.
pub const MAX_TREE_NODES: f64 = 4e9;
/// Daily closes fetched for a symbol: four years for the GARCH fit.
const HISTORY_BARS: usize = 1001;
/// Fewest returns a realised volatility is measured from.
const MIN_REALISED_RETURNS: usize = 21;
/// Trees a binomial price with greeks rolls (the price, then vega and
/// rho bumped either way), and what a bisection for implied volatility
/// rolls at most.
const TREES_PER_PRICE: f64 = 5.0;
const TREES_PER_IMPLIED: f64 = 50.0;

/// Where a symbol's volatility comes from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum VolatilitySource {
    /// Standard deviation of the last year's daily log returns, x sqrt(252)
    /// for a stock, x sqrt(365) over 365 returns for crypto.
    Realised,
    /// A GARCH(1,1) fitted to the symbol's last four years, its forecast
    /// variance averaged over the trading days to expiry, annualised.
    Garch,
}

/// What an answer is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Price,
    ImpliedVolatility,
}

/// One option as a request sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionRequest {
    pub kind: Kind,
    /// `european` (default) or `american`.
    #[serde(default)]
    pub style: Option<Style>,
    /// The underlying's price; or give `forward`, or `symbol`.
    pub spot: Option<f64>,
    /// The forward to expiry, in place of `spot`.
    pub forward: Option<f64>,
    /// A symbol whose last close is the spot.
    pub symbol: Option<String>,
    pub strike: f64,
    /// Years to expiry (Actual/365), above 0.
    pub expiry_years: f64,
    /// Annualised fraction (0.25 is 25 %); or `volatility_source` with a symbol.
    pub volatility: Option<f64>,
    pub volatility_source: Option<VolatilitySource>,
    /// Continuously compounded risk-free rate, a fraction.
    pub rate: f64,
    /// Continuously compounded dividend yield, a fraction (default 0).
    #[serde(default)]
    pub dividend_yield: f64,
    /// `analytic` (European default), `binomial` (American default) or `baw`.
    pub method: Option<Method>,
    /// Binomial tree steps (default 500).
    pub steps: Option<usize>,
    /// The option's price, for implied volatility only.
    pub price: Option<f64>,
}

/// Where an option's spot and volatility came from, when from a symbol.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Underlying {
    pub symbol: String,
    /// Date of the last close used as the spot.
    pub as_of: Option<NaiveDate>,
    pub data_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volatility_source: Option<VolatilitySource>,
}

/// An option priced, or its implied volatility found, with what it was
/// priced from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Valued {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub greeks: Option<Greeks>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implied_volatility: Option<f64>,
    pub method: Method,
    pub style: Style,
    pub kind: Kind,
    pub spot: f64,
    pub strike: f64,
    pub expiry_years: f64,
    /// The volatility priced with (absent for implied volatility).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volatility: Option<f64>,
    pub rate: f64,
    pub dividend_yield: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub underlying: Option<Underlying>,
}

/// An option checked against the request's rules, before the data layer.
#[derive(Debug, Clone)]
struct Checked {
    request: OptionRequest,
    style: Style,
    method: Method,
    steps: usize,
}

/// A symbol's prices as the options on it need them.
struct Market {
    spot: f64,
    as_of: Option<NaiveDate>,
    data_source: String,
    closes: Vec<f64>,
}

pub struct OptionDesk<'a> {
    market: &'a DataManager,
}

impl<'a> OptionDesk<'a> {
    pub fn new(market: &'a DataManager) -> Self {
        OptionDesk { market }
    }

    /// Values every option in `raw` (JSON objects, in order). The request
    /// as a whole is refused only when it is malformed or too large.
    pub async fn value(
        &self,
        raw: Vec<Value>,
        ask: Ask,
    ) -> Result<Vec<Result<Valued, ApiError>>, ApiError> {
        if raw.is_empty() {
            return Err(ApiError::invalid("options must list at least one option"));
        }
        if raw.len() > MAX_OPTIONS {
            return Err(ApiError::invalid(format!(
                "options lists {} options; at most {MAX_OPTIONS} are priced per request",
                raw.len()
            )));
        }
        let checked: Vec<Result<Checked, ApiError>> = raw
            .into_iter()
            .enumerate()
            .map(|(i, v)| check(i, v, ask))
            .collect();
        let work: f64 = checked.iter().flatten().map(|c| tree_nodes(c, ask)).sum();
        if work > MAX_TREE_NODES {
            return Err(ApiError::invalid(format!(
                "the binomial trees asked for would roll back {work:.3e} nodes; at most {MAX_TREE_NODES:.0e} per request (fewer steps, baw, or a smaller batch)"
            )));
        }
        let symbols: Vec<String> = {
            let mut s: Vec<String> = checked
                .iter()
                .flatten()
                .filter_map(|c| c.request.symbol.clone())
                .collect();
            s.sort();
            s.dedup();
            s
        };
        if symbols.len() > MAX_SYMBOLS {
            return Err(ApiError::invalid(format!(
                "options name {} symbols; at most {MAX_SYMBOLS} per request",
                symbols.len()
            )));
        }
        let markets = self.fetch(symbols).await;
        tokio::task::spawn_blocking(move || value_all(checked, &markets, ask))
            .await
            .map_err(|e| ApiError::internal(format!("option pricing panicked: {e}")))
    }

    async fn fetch(&self, symbols: Vec<String>) -> BTreeMap<String, Result<Market, ApiError>> {
        let fetches = symbols.into_iter().map(|symbol| async move {
            let history = self
                .market
                .history(&symbol, Span::LastBars(HISTORY_BARS), Interval::Daily)
                .await;
            let market = history.map_err(ApiError::from).and_then(|h| {
                let closes = h.closes();
                let spot = *closes.last().ok_or_else(|| {
                    ApiError::insufficient_data(format!("no closes for {symbol}"))
                })?;
                Ok(Market {
                    spot,
                    as_of: h.as_of(),
                    data_source: h.provider.clone(),
                    closes,
                })
            });
            (symbol, market)
        });
        futures::stream::iter(fetches).buffered(4).collect().await
    }
}

/// The option at `index` of the request, parsed and checked for what does
/// not need the data layer.
fn check(index: usize, raw: Value, ask: Ask) -> Result<Checked, ApiError> {
    let at = format!("options[{index}]");
    let request: OptionRequest = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            at.clone()
        } else {
            format!("{at}.{path}")
        };
        ApiError::invalid(format!("{field}: {}", e.inner()))
    })?;
    let refuse = |message: String| Err(ApiError::invalid(format!("{at}: {message}")));
    let given = [
        ("spot", request.spot.is_some()),
        ("forward", request.forward.is_some()),
        ("symbol", request.symbol.is_some()),
    ];
    let named: Vec<&str> = given.iter().filter(|(_, g)| *g).map(|(n, _)| *n).collect();
    if named.len() != 1 {
        return refuse(format!(
            "give exactly one of spot, forward or symbol for the underlying, got {}",
            if named.is_empty() {
                "none".to_string()
            } else {
                named.join(", ")
            }
        ));
    }
    match ask {
        Ask::Price => {
            if request.price.is_some() {
                return refuse("price is read by /api/options/implied_volatility only".into());
            }
            match (
                request.volatility,
                request.volatility_source,
                &request.symbol,
            ) {
                (Some(_), Some(_), _) => {
                    return refuse("give volatility or volatility_source, not both".into())
                }
                (None, None, _) => return refuse(
                    "volatility is required (or a symbol with volatility_source realised or garch)"
                        .into(),
                ),
                (None, Some(_), None) => {
                    return refuse("volatility_source needs a symbol to measure".into())
                }
                _ => {}
            }
        }
        Ask::ImpliedVolatility => {
            if request.volatility.is_some() || request.volatility_source.is_some() {
                return refuse(
                    "volatility is what implied_volatility finds; give price instead".into(),
                );
            }
            if request.price.is_none() {
                return refuse("price is required".into());
            }
        }
    }
    if let Some(symbol) = &request.symbol {
        crate::market::manager::validate_symbol(symbol)
            .map_err(|e| ApiError::invalid(format!("{at}.symbol: {e}")))?;
    }
    let style = request.style.unwrap_or(Style::European);
    let method = request.method.unwrap_or(Method::default_for(style));
    options::check_method(style, method).map_err(|e| ApiError::invalid(format!("{at}: {e}")))?;
    if request.steps.is_some() && method != Method::Binomial {
        return refuse(format!(
            "steps applies to method binomial, not {}",
            method_name(method)
        ));
    }
    let steps = request.steps.unwrap_or(DEFAULT_STEPS);
    if !(2..=options::MAX_STEPS).contains(&steps) {
        return refuse(format!(
            "steps must be an integer from 2 to {}, got {steps}",
            options::MAX_STEPS
        ));
    }
    let mut request = request;
    request.symbol = request.symbol.map(|s| s.trim().to_uppercase());
    Ok(Checked {
        request,
        style,
        method,
        steps,
    })
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Analytic => "analytic",
        Method::Binomial => "binomial",
        Method::Baw => "baw",
    }
}

fn tree_nodes(c: &Checked, ask: Ask) -> f64 {
    if c.method != Method::Binomial {
        return 0.0;
    }
    let n = c.steps as f64;
    let trees = match ask {
        Ask::Price => TREES_PER_PRICE,
        Ask::ImpliedVolatility => TREES_PER_IMPLIED,
    };
    trees * n * (n + 1.0) / 2.0
}

fn value_all(
    checked: Vec<Result<Checked, ApiError>>,
    markets: &BTreeMap<String, Result<Market, ApiError>>,
    ask: Ask,
) -> Vec<Result<Valued, ApiError>> {
    let mut vols = VolatilityCache::default();
    checked
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.and_then(|c| value_one(i, &c, markets, &mut vols, ask)))
        .collect()
}

fn value_one(
    index: usize,
    c: &Checked,
    markets: &BTreeMap<String, Result<Market, ApiError>>,
    vols: &mut VolatilityCache,
    ask: Ask,
) -> Result<Valued, ApiError> {
    let at = format!("options[{index}]");
    let r = &c.request;
    let mut underlying = None;
    let spot = match (r.spot, r.forward, &r.symbol) {
        (Some(s), _, _) => s,
        (_, Some(f), _) => {
            if !(f.is_finite() && f > 0.0) {
                return Err(ApiError::invalid(format!(
                    "{at}: forward must be a number above 0, got {f}"
                )));
            }
            OptionInputs::spot_of_forward(f, r.expiry_years, r.rate, r.dividend_yield)
        }
        (_, _, Some(symbol)) => {
            let market = markets
                .get(symbol)
                .ok_or_else(|| ApiError::internal(format!("{symbol} was not fetched")))?
                .as_ref()
                .map_err(|e| {
                    e.clone()
                        .with_message(format!("{at}.symbol: {}", e.public_message()))
                })?;
            underlying = Some(Underlying {
                symbol: symbol.clone(),
                as_of: market.as_of,
                data_source: market.data_source.clone(),
                volatility_source: r.volatility_source,
            });
            market.spot
        }
        _ => {
            return Err(ApiError::internal(
                "an option without an underlying passed its check",
            ))
        }
    };
    let volatility = match (ask, r.volatility, r.volatility_source, &r.symbol) {
        (Ask::ImpliedVolatility, ..) => None,
        (_, Some(v), _, _) => Some(v),
        (_, None, Some(source), Some(symbol)) => {
            let market = markets[symbol].as_ref().map_err(|e| e.clone())?;
            Some(
                vols.get(symbol, source, &market.closes, r.expiry_years)
                    .map_err(|e| {
                        let message = format!("{at}: {}", e.public_message());
                        e.with_message(message)
                    })?,
            )
        }
        _ => {
            return Err(ApiError::internal(
                "an option without a volatility passed its check",
            ))
        }
    };
    // The solver ignores the volatility of the inputs it is handed.
    let inputs = OptionInputs::new(
        r.kind,
        spot,
        r.strike,
        r.expiry_years,
        volatility.unwrap_or(0.2),
        r.rate,
        r.dividend_yield,
    )
    .map_err(|e| option_error(&at, e))?;
    let (greeks, implied_volatility) = match ask {
        Ask::Price => (
            Some(Greeks::from(
                options::value(&inputs, c.style, c.method, c.steps)
                    .map_err(|e| option_error(&at, e))?,
            )),
            None,
        ),
        Ask::ImpliedVolatility => {
            let price = r.price.unwrap_or(f64::NAN);
            let iv = implied::implied_volatility(&inputs, price, c.style, c.method, c.steps)
                .map_err(|e| option_error(&at, e))?;
            (None, Some(iv))
        }
    };
    Ok(Valued {
        greeks,
        implied_volatility,
        method: c.method,
        style: c.style,
        kind: r.kind,
        spot,
        strike: r.strike,
        expiry_years: r.expiry_years,
        volatility,
        rate: r.rate,
        dividend_yield: r.dividend_yield,
        steps: (c.method == Method::Binomial).then_some(c.steps),
        underlying,
    })
}

fn option_error(at: &str, e: OptionError) -> ApiError {
    match e {
        OptionError::InvalidInput(m) => ApiError::invalid(format!("{at}.{m}")),
        OptionError::NoAnswer(m) => ApiError::new(ErrorCode::Infeasible, format!("{at}: {m}")),
    }
}

/// Volatilities measured once per symbol and source (and, for GARCH,
/// fitted once per symbol) however many options a batch has on it.
#[derive(Default)]
struct VolatilityCache {
    realised: BTreeMap<String, Result<f64, ApiError>>,
    garch: BTreeMap<String, Result<volatility::GarchFit, ApiError>>,
}

impl VolatilityCache {
    fn get(
        &mut self,
        symbol: &str,
        source: VolatilitySource,
        closes: &[f64],
        expiry_years: f64,
    ) -> Result<f64, ApiError> {
        match source {
            VolatilitySource::Realised => self
                .realised
                .entry(symbol.to_string())
                .or_insert_with(|| realised_volatility(symbol, closes))
                .clone(),
            VolatilitySource::Garch => {
                let fit = self
                    .garch
                    .entry(symbol.to_string())
                    .or_insert_with(|| {
                        volatility::fit(closes, GarchSpec::default()).map_err(|e| {
                            ApiError::new(
                                ErrorCode::ModelFailed,
                                format!("no GARCH volatility for {symbol}: {e}"),
                            )
                        })
                    })
                    .as_ref()
                    .map_err(Clone::clone)?;
                let periods = AssetClass::of(symbol).periods_per_year();
                Ok(garch_term_volatility(fit, expiry_years, periods))
            }
        }
    }
}

/// Sample standard deviation of the last year's daily log returns,
/// annualised with the symbol's calendar: 252 trading days for a stock,
/// 365 days for crypto (a year of its returns either way).
pub fn realised_volatility(symbol: &str, closes: &[f64]) -> Result<f64, ApiError> {
    let periods = AssetClass::of(symbol).periods_per_year();
    let year = periods as usize;
    let tail = &closes[closes.len().saturating_sub(year + 1)..];
    let returns: Vec<f64> = tail.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    if returns.len() < MIN_REALISED_RETURNS || returns.iter().any(|r| !r.is_finite()) {
        return Err(ApiError::insufficient_data(format!(
            "{symbol} has {} usable daily returns; a realised volatility needs at least {MIN_REALISED_RETURNS}",
            returns.len()
        )));
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let variance = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Ok((variance * periods).sqrt())
}

/// The GARCH forecast's volatility over the option's life: the daily
/// variances `σ²_{T+1}, ..., σ²_{T+h}` for the `h = ⌈periods · expiry⌉`
/// days to expiry (252 a year for a stock, 365 for crypto), averaged and
/// annualised.
pub fn garch_term_volatility(
    fit: &volatility::GarchFit,
    expiry_years: f64,
    periods_per_year: f64,
) -> f64 {
    let days = (expiry_years * periods_per_year).ceil().max(1.0) as usize;
    let (omega, persistence) = (fit.params.omega, fit.persistence);
    let mut variance = fit.next_variance;
    let mut total = 0.0;
    for _ in 0..days {
        total += variance;
        variance = omega + persistence * variance;
    }
    // Squared percent per day to a fraction per year.
    (total / days as f64 / 1e4 * periods_per_year).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realised_volatility_annualises_with_the_symbols_calendar() {
        let closes: Vec<f64> = (0..100)
            .map(|i| 100.0 * (1.0 + 0.01 * (f64::from(i) * 0.7).sin()))
            .collect();
        let stock = realised_volatility("AAPL", &closes).unwrap();
        let coin = realised_volatility("BTC-USD", &closes).unwrap();
        // Fewer closes than a year of either: the same 99 returns.
        assert!((coin / stock - (365.0f64 / 252.0).sqrt()).abs() < 1e-12);
        // A crypto year is 365 returns, a stock's 252.
        let long: Vec<f64> = (0..600)
            .map(|i| 100.0 * (1.0 + 0.01 * (f64::from(i) * 0.7).sin()))
            .collect();
        let tail = |n: usize| realised_volatility("AAPL", &long[long.len() - n..]).unwrap();
        assert_eq!(realised_volatility("AAPL", &long).unwrap(), tail(253));
        let coin_tail = realised_volatility("BTC-USD", &long[long.len() - 366..]).unwrap();
        assert_eq!(realised_volatility("BTC-USD", &long).unwrap(), coin_tail);
    }
}
