//! Portfolio risk: one-day and `h`-day Value at Risk and Conditional VaR
//! (expected shortfall) of a constant-weight portfolio, by historical
//! simulation, parametric normal, Cornish-Fisher and filtered historical
//! simulation; per-asset contributions; and a backtest of one-day
//! forecasts (Kupiec, Christoffersen). Pure and synchronous.
//!
//! Conventions: the portfolio's return on a day is `Σᵢ wᵢ rᵢ` of the
//! assets' simple returns (weights held constant, i.e. rebalanced daily),
//! over the last `lookback` returns. VaR and CVaR are positive loss
//! fractions. Historical VaR at level `a` over `n` scenarios is minus the
//! `⌈n (1 − a)⌉`-th smallest return, CVaR minus the mean of the returns at
//! or below it.

pub mod backtest;
pub mod distribution;
pub mod filtered;
pub mod var;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::NaiveDate;
use ndarray::{s, Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::models::portfolio::estimate::simple_returns;
use backtest::Backtest;
use filtered::{Filter, VolatilityModel};
use var::{Estimate, Moments};

/// Fewest scenarios (returns in a window, or overlapping `h`-day windows)
/// any method works on; also enough for a GARCH(1,1) fit.
pub const MIN_SCENARIOS: usize = 100;
/// Most levels one request may ask for.
pub const MAX_LEVELS: usize = 8;
/// Longest horizon, in trading days (a year).
pub const MAX_HORIZON: usize = 250;
/// Weights must sum to one within this.
pub const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;
pub const DEFAULT_LEVELS: [f64; 2] = [0.95, 0.99];
pub const DEFAULT_LOOKBACK: usize = 1000;
pub const DEFAULT_BACKTEST: usize = 500;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RiskError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    InsufficientData(String),
    /// The data gave a method no finite answer.
    #[error("{0}")]
    Failed(String),
}

/// A VaR method.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Historical,
    Parametric,
    CornishFisher,
    FilteredHistorical,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Historical,
        Method::Parametric,
        Method::CornishFisher,
        Method::FilteredHistorical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Historical => "historical",
            Method::Parametric => "parametric",
            Method::CornishFisher => "cornish_fisher",
            Method::FilteredHistorical => "filtered_historical",
        }
    }

    /// How the method goes from one day to `h` days.
    pub fn horizon_rule(self) -> &'static str {
        match self {
            Method::Historical => {
                "overlapping h-day windows of the history; each asset's return compounded over the window, weights held from its start"
            }
            Method::Parametric => "mean times h, standard deviation times sqrt(h)",
            Method::CornishFisher => {
                "mean times h, standard deviation times sqrt(h), skewness over sqrt(h), excess kurtosis over h (independent days)"
            }
            Method::FilteredHistorical => {
                "mean times h; the standardised shocks times the volatility model's h-day deviation, sqrt of the sum of its 1..h-step variance forecasts"
            }
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to compute, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskParams {
    /// Confidence levels, each strictly between 0 and 1, distinct.
    pub levels: Vec<f64>,
    /// Days, `1..=MAX_HORIZON`.
    pub horizon: usize,
    /// Distinct, in the order asked.
    pub methods: Vec<Method>,
    /// Returns in the window (at most; fewer when the history is shorter).
    pub lookback: usize,
    /// Days backtested; 0 for none.
    pub backtest: usize,
}

impl RiskParams {
    pub fn new(
        levels: Vec<f64>,
        horizon: usize,
        methods: Vec<Method>,
        lookback: usize,
        backtest: usize,
    ) -> Result<RiskParams, RiskError> {
        let bad = |m: String| Err(RiskError::InvalidInput(m));
        if levels.is_empty() || levels.len() > MAX_LEVELS {
            return bad(format!(
                "levels: give 1 to {MAX_LEVELS} levels, got {}",
                levels.len()
            ));
        }
        if let Some(l) = levels.iter().find(|l| !(**l > 0.0 && **l < 1.0)) {
            return bad(format!(
                "levels: each level must be strictly between 0 and 1, got {l}"
            ));
        }
        let distinct: BTreeSet<String> = levels.iter().map(|l| level_key(*l)).collect();
        if distinct.len() != levels.len() {
            return bad("levels: each level may appear once".into());
        }
        if !(1..=MAX_HORIZON).contains(&horizon) {
            return bad(format!(
                "horizon_days must be an integer from 1 to {MAX_HORIZON}, got {horizon}"
            ));
        }
        if methods.is_empty() {
            return bad("methods: name at least one of historical, parametric, cornish_fisher, filtered_historical".into());
        }
        let mut unique = Vec::with_capacity(methods.len());
        for m in methods {
            if !unique.contains(&m) {
                unique.push(m);
            }
        }
        if lookback < MIN_SCENARIOS {
            return bad(format!(
                "lookback_days must be at least {MIN_SCENARIOS}, got {lookback}"
            ));
        }
        Ok(RiskParams {
            levels,
            horizon,
            methods: unique,
            lookback,
            backtest,
        })
    }
}

/// A level as the answer's key: the shortest decimal that reads back as
/// the same number (`0.95`, `0.975`).
pub fn level_key(level: f64) -> String {
    format!("{level}")
}

/// Assets, their weights and aligned closes (oldest first).
#[derive(Debug, Clone)]
pub struct Portfolio {
    symbols: Vec<String>,
    weights: Vec<f64>,
    /// Daily simple returns, one row per day, one column per asset.
    returns: Array2<f64>,
    /// The date of each return, when the closes came with dates.
    dates: Option<Vec<NaiveDate>>,
}

impl Portfolio {
    /// `closes[i]` are asset `i`'s closes on the same days (equal lengths);
    /// `dates`, when given, the day of each close. Weights are in symbol
    /// order, finite, may be negative (short positions), and must sum to
    /// one within [`WEIGHT_SUM_TOLERANCE`].
    pub fn new(
        symbols: Vec<String>,
        weights: Vec<f64>,
        closes: &[Vec<f64>],
        dates: Option<Vec<NaiveDate>>,
    ) -> Result<Portfolio, RiskError> {
        let bad = |m: String| Err(RiskError::InvalidInput(m));
        let n = symbols.len();
        if n == 0 {
            return bad("symbols: name at least one asset".into());
        }
        if symbols.iter().collect::<BTreeSet<_>>().len() != n {
            return bad("symbols: each symbol may appear once".into());
        }
        if weights.len() != n {
            return bad(format!(
                "weights: {} weights for {n} symbols",
                weights.len()
            ));
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
            return bad(format!(
                "weights: the weight of {} is not a finite number",
                symbols[i]
            ));
        }
        let sum: f64 = weights.iter().sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return bad(format!(
                "weights must sum to 1 (within {WEIGHT_SUM_TOLERANCE}), got {sum}; negative weights are short positions"
            ));
        }
        if closes.len() != n {
            return bad(format!("{} price series for {n} symbols", closes.len()));
        }
        let len = closes[0].len();
        if closes.iter().any(|c| c.len() != len) {
            return bad("the price series must be aligned (of equal length)".into());
        }
        if let Some(d) = &dates {
            if d.len() != len {
                return bad(format!("{} dates for {len} closes", d.len()));
            }
        }
        if let Some((i, _)) = closes
            .iter()
            .enumerate()
            .find(|(_, c)| c.iter().any(|p| !(p.is_finite() && *p > 0.0)))
        {
            return bad(format!(
                "the closes of {} must be finite and greater than 0",
                symbols[i]
            ));
        }
        let series: Vec<&[f64]> = closes.iter().map(Vec::as_slice).collect();
        Ok(Portfolio {
            symbols,
            weights,
            returns: simple_returns(&series, len),
            dates: dates.map(|d| d.into_iter().skip(1).collect()),
        })
    }

    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The asset returns, one row per day.
    pub fn returns(&self) -> &Array2<f64> {
        &self.returns
    }

    /// The portfolio's daily returns `Σᵢ wᵢ rᵢ`.
    pub fn portfolio_returns(&self) -> Vec<f64> {
        self.returns
            .dot(&Array1::from(self.weights.clone()))
            .to_vec()
    }
}

/// The dates every series has (oldest first) and each series' closes on
/// them: closes from different markets or with gaps, aligned.
pub fn on_shared_dates(series: &[Vec<(NaiveDate, f64)>]) -> (Vec<NaiveDate>, Vec<Vec<f64>>) {
    let Some(first) = series.first() else {
        return (Vec::new(), Vec::new());
    };
    let mut shared: BTreeSet<NaiveDate> = first.iter().map(|(d, _)| *d).collect();
    for s in &series[1..] {
        let dates: BTreeSet<NaiveDate> = s.iter().map(|(d, _)| *d).collect();
        shared.retain(|d| dates.contains(d));
    }
    let dates: Vec<NaiveDate> = shared.into_iter().collect();
    let closes = series
        .iter()
        .map(|s| {
            let by_date: HashMap<NaiveDate, f64> = s.iter().copied().collect();
            dates.iter().map(|d| by_date[d]).collect()
        })
        .collect();
    (dates, closes)
}

/// One method at one level, keyed by symbol.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LevelRisk {
    /// Value at Risk: the loss (a positive fraction of the portfolio's
    /// value) exceeded with probability `1 − level` over the horizon.
    pub var: f64,
    /// Conditional VaR (expected shortfall): the mean loss beyond the VaR.
    pub cvar: f64,
    /// Component VaR per symbol, `wᵢ ∂VaR/∂wᵢ`; sums to `var`.
    pub contributions: BTreeMap<String, f64>,
    /// Component CVaR per symbol; sums to `cvar`.
    pub cvar_contributions: BTreeMap<String, f64>,
    /// Marginal VaR per symbol, `∂VaR/∂wᵢ`: the VaR added per unit of
    /// weight moved into the symbol.
    pub marginal: BTreeMap<String, f64>,
}

/// The window the figures come from.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Window {
    /// Daily returns used (the lookback asked for, or all there were).
    pub returns: usize,
    /// Scenarios of historical simulation: `returns − horizon + 1`.
    pub historical_scenarios: usize,
    /// Of the daily portfolio returns (population moments): the
    /// Cornish-Fisher inputs. The expansion is only monotone, and so only
    /// trustworthy, for moderate values; a crash in the window can push
    /// the excess kurtosis past 10.
    pub skewness: f64,
    pub excess_kurtosis: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_date: Option<NaiveDate>,
}

/// How the backtest ran.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BacktestWindow {
    /// Days tested: the last `days` returns.
    pub days: usize,
    /// Returns before each tested day that its forecast uses:
    /// `min(lookback, returns − days)`.
    pub rolling_window: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_date: Option<NaiveDate>,
    /// The filtered method's volatility model, fitted once on the window
    /// before the first tested day and carried forward without refits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volatility_model: Option<VolatilityModel>,
}

pub type ByMethod<T> = BTreeMap<String, BTreeMap<String, T>>;

/// Everything computed for a portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RiskReport {
    pub symbols: Vec<String>,
    pub weights: BTreeMap<String, f64>,
    pub levels: Vec<String>,
    pub horizon_days: usize,
    /// Per method, how one day becomes `horizon_days`.
    pub horizon_method: BTreeMap<String, String>,
    /// The lookback asked for, in returns.
    pub lookback_days_requested: usize,
    /// The lookback used: at most the returns available.
    pub lookback_days: usize,
    pub window: Window,
    /// `{method: {level: {var, cvar, contributions, ...}}}`.
    pub results: ByMethod<LevelRisk>,
    /// The filtered method's volatility model on the lookback window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volatility_model: Option<VolatilityModel>,
    /// `{method: {level: {exceedances, expected, kupiec_p_value, ...}}}` of
    /// one-day forecasts; absent for `backtest_days` 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtest: Option<ByMethod<Backtest>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtest_window: Option<BacktestWindow>,
}

/// VaR, CVaR and contributions of `portfolio` by each method at each
/// level, and the backtest.
pub fn assess(portfolio: &Portfolio, params: &RiskParams) -> Result<RiskReport, RiskError> {
    let total = portfolio.returns.nrows();
    let h = params.horizon;
    let lookback = params.lookback.min(total);
    if lookback + 1 < MIN_SCENARIOS + h {
        return Err(RiskError::InsufficientData(format!(
            "{} closes give {total} returns; at least {} are needed ({MIN_SCENARIOS} scenarios of {h} day(s))",
            total + 1,
            MIN_SCENARIOS + h - 1
        )));
    }
    let backtest_window = if params.backtest == 0 {
        None
    } else {
        let window = params.lookback.min(total.saturating_sub(params.backtest));
        if total < params.backtest + MIN_SCENARIOS {
            return Err(RiskError::InsufficientData(format!(
                "a backtest of {} days needs at least {} returns ({} closes): each day's forecast uses the {MIN_SCENARIOS} or more returns before it; got {total} returns; send more prices or lower backtest_days",
                params.backtest,
                params.backtest + MIN_SCENARIOS,
                params.backtest + MIN_SCENARIOS + 1
            )));
        }
        Some(window)
    };

    let returns = portfolio
        .returns
        .slice(s![total - lookback.., ..])
        .to_owned();
    let weights = &portfolio.weights;
    let portfolio_returns: Vec<f64> = returns.dot(&Array1::from(weights.clone())).to_vec();
    let moments = Moments::of(&portfolio_returns);
    if moments.sd == 0.0 {
        return Err(RiskError::InvalidInput(
            "the portfolio's returns do not vary over the window: its risk cannot be estimated"
                .into(),
        ));
    }
    let filter = params
        .methods
        .contains(&Method::FilteredHistorical)
        .then(|| Filter::fit(&portfolio_returns));

    let mut results = ByMethod::new();
    for &method in &params.methods {
        let mut by_level = BTreeMap::new();
        let per_unit = match method {
            Method::Historical => Some(var::historical_scenarios(&returns, h)),
            Method::FilteredHistorical => filter
                .as_ref()
                .map(|f| filtered::scenarios(&returns, f.mean, &f.sigma, f.horizon_sigma(h), h)),
            _ => None,
        };
        for &level in &params.levels {
            let estimate = match (method, &per_unit) {
                (Method::Parametric, _) => var::parametric(&returns, weights, level, h),
                (Method::CornishFisher, _) => var::cornish_fisher(&returns, weights, level, h),
                (_, Some(p)) => var::empirical(p, weights, level),
                (_, None) => unreachable!("scenario methods build their scenarios"),
            };
            by_level.insert(
                level_key(level),
                level_risk(&portfolio.symbols, method, level, estimate)?,
            );
        }
        results.insert(method.name().to_string(), by_level);
    }

    let date = |i: usize| portfolio.dates.as_ref().map(|d| d[i]);
    let (backtest, backtest_window) = match backtest_window {
        None => (None, None),
        Some(window) => {
            let all = portfolio.portfolio_returns();
            let (tests, model) = run_backtest(&all, params, window);
            (
                Some(tests),
                Some(BacktestWindow {
                    days: params.backtest,
                    rolling_window: window,
                    first_date: date(total - params.backtest),
                    last_date: date(total - 1),
                    volatility_model: model,
                }),
            )
        }
    };
    Ok(RiskReport {
        symbols: portfolio.symbols.clone(),
        weights: portfolio
            .symbols
            .iter()
            .cloned()
            .zip(weights.iter().copied())
            .collect(),
        levels: params.levels.iter().map(|l| level_key(*l)).collect(),
        horizon_days: h,
        horizon_method: params
            .methods
            .iter()
            .map(|m| (m.name().to_string(), m.horizon_rule().to_string()))
            .collect(),
        lookback_days_requested: params.lookback,
        lookback_days: lookback,
        window: Window {
            returns: lookback,
            historical_scenarios: lookback + 1 - h,
            skewness: moments.shape.skew,
            excess_kurtosis: moments.shape.excess_kurtosis,
            first_date: date(total - lookback),
            last_date: date(total - 1),
        },
        results,
        volatility_model: filter.map(|f| f.model),
        backtest,
        backtest_window,
    })
}

fn level_risk(
    symbols: &[String],
    method: Method,
    level: f64,
    e: Estimate,
) -> Result<LevelRisk, RiskError> {
    let all_finite = [e.var, e.cvar]
        .iter()
        .chain(&e.var_contributions)
        .chain(&e.cvar_contributions)
        .chain(&e.marginal_var)
        .all(|x| x.is_finite());
    if !all_finite {
        return Err(RiskError::Failed(format!(
            "{method} at level {level} gave no finite VaR for these prices"
        )));
    }
    let keyed = |v: Vec<f64>| symbols.iter().cloned().zip(v).collect();
    Ok(LevelRisk {
        var: e.var,
        cvar: e.cvar,
        contributions: keyed(e.var_contributions),
        cvar_contributions: keyed(e.cvar_contributions),
        marginal: keyed(e.marginal_var),
    })
}

/// One-day forecasts for each of the last `params.backtest` days from the
/// `window` portfolio returns before it, by each method.
fn run_backtest(
    returns: &[f64],
    params: &RiskParams,
    window: usize,
) -> (ByMethod<Backtest>, Option<VolatilityModel>) {
    let n = returns.len();
    let days = params.backtest;
    let levels = &params.levels;
    let mut model = None;
    let mut tests = ByMethod::new();
    for &method in &params.methods {
        let hits = match method {
            Method::Historical => {
                backtest::exceedances(returns, days, window, levels.len(), |_, w| {
                    let mut sorted = w.to_vec();
                    sorted.sort_by(f64::total_cmp);
                    levels
                        .iter()
                        .map(|&l| -sorted[var::tail_count(sorted.len(), l) - 1])
                        .collect()
                })
            }
            Method::Parametric => {
                backtest::exceedances(returns, days, window, levels.len(), |_, w| {
                    let m = Moments::of(w);
                    levels.iter().map(|&l| m.normal_var(l)).collect()
                })
            }
            Method::CornishFisher => {
                backtest::exceedances(returns, days, window, levels.len(), |_, w| {
                    let m = Moments::of(w);
                    levels.iter().map(|&l| m.cornish_fisher_var(l)).collect()
                })
            }
            Method::FilteredHistorical => {
                let start = n - days - window;
                let mut filter = Filter::fit(&returns[start..n - days]);
                filter.extend(&returns[n - days..]);
                let hits = filtered_exceedances(
                    &returns[start..],
                    filter.mean,
                    &filter.sigma,
                    days,
                    window,
                    levels,
                );
                model = Some(filter.model);
                hits
            }
        };
        let by_level = levels
            .iter()
            .zip(hits)
            .map(|(&l, h)| (level_key(l), Backtest::of(&h, l)))
            .collect();
        tests.insert(method.name().to_string(), by_level);
    }
    (tests, model)
}

/// The filtered method's backtest exceedances, given the filter's mean and
/// each return's conditional deviation `sigma` (as long as `returns`): the
/// forecast for day `t` rescales the standardised shocks of the `window`
/// returns before it by `σₜ`.
pub fn filtered_exceedances(
    returns: &[f64],
    mean: f64,
    sigma: &[f64],
    days: usize,
    window: usize,
    levels: &[f64],
) -> Vec<Vec<bool>> {
    let shocks: Vec<f64> = returns
        .iter()
        .zip(sigma)
        .map(|(r, s)| (r - mean) / s)
        .collect();
    backtest::exceedances(returns, days, window, levels.len(), |t, _| {
        let mut sorted = shocks[t - window..t].to_vec();
        sorted.sort_by(f64::total_cmp);
        levels
            .iter()
            .map(|&l| filtered::one_day_var(&sorted, mean, sigma[t], l))
            .collect()
    })
}
