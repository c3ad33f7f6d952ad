//! Long-only, fully invested portfolio optimisation from daily closes:
//! equal weight, minimum variance, maximum Sharpe, risk parity, minimum
//! CVaR and the efficient frontier, each solved exactly (or refused with
//! the reason).
//!
//! Returns are simple daily returns of the most recent window common to all
//! series; the mean is the sample mean and the covariance the sample
//! covariance (`T - 1`), or on request Ledoit-Wolf shrinkage or the sample
//! correlation scaled by each asset's GARCH(1,1) volatility forecast. Every
//! figure reported is per period (daily) unless under `annualized`.

pub mod cvar;
pub mod estimate;
pub mod frontier;
pub mod solve;

use std::fmt;
use std::str::FromStr;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use cvar::TailRisk;
use frontier::FrontierPoint;
use solve::{SolveError, Solved};

use super::volatility::{self, VolatilityError};

/// Relative accuracy of risk-parity contributions.
const RISK_PARITY_TOLERANCE: f64 = 1e-10;

#[derive(Debug, Clone)]
pub struct AssetSeries {
    pub symbol: String,
    /// Closes, oldest first.
    pub closes: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    EqualWeight,
    MinVariance,
    MaxSharpe,
    RiskParity,
    /// Least conditional value at risk of the window's daily returns.
    MinCvar,
    /// Frontier portfolios from min variance to max return; the weights
    /// are the frontier point of highest Sharpe ratio.
    EfficientFrontier,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::EqualWeight,
        Method::MinVariance,
        Method::MaxSharpe,
        Method::RiskParity,
        Method::MinCvar,
        Method::EfficientFrontier,
    ];
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "equal_weight" => Ok(Method::EqualWeight),
            "min_variance" => Ok(Method::MinVariance),
            "max_sharpe" => Ok(Method::MaxSharpe),
            "risk_parity" => Ok(Method::RiskParity),
            "min_cvar" => Ok(Method::MinCvar),
            "efficient_frontier" => Ok(Method::EfficientFrontier),
            other => Err(format!(
                "unknown method {other:?}: expected equal_weight, min_variance, max_sharpe, \
                 risk_parity, min_cvar or efficient_frontier"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CovarianceEstimator {
    Sample,
    LedoitWolf,
    /// `D R D`: `R` the sample correlation of the window's returns, `D` the
    /// diagonal of each asset's next-period volatility forecast by a
    /// GARCH(1,1) (normal shocks, constant mean) fitted to its closes of
    /// the same window. Needs [`volatility::MIN_CLOSES`] closes.
    Garch,
}

impl FromStr for CovarianceEstimator {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sample" => Ok(CovarianceEstimator::Sample),
            "ledoit_wolf" => Ok(CovarianceEstimator::LedoitWolf),
            "garch" => Ok(CovarianceEstimator::Garch),
            other => Err(format!(
                "unknown covariance {other:?}: expected sample, ledoit_wolf or garch"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OptimizeParams {
    pub method: Method,
    pub covariance: CovarianceEstimator,
    /// Per period, like the returns.
    pub risk_free_rate: f64,
    /// Per-asset `[min, max]` weight; `None` means `[0, 1]`.
    pub weight_bounds: Option<(f64, f64)>,
    /// Risk-parity budgets in asset order, positive, summing to 1.
    pub risk_budget: Option<Vec<f64>>,
    pub periods_per_year: f64,
    /// Current weights in asset order; `None` means starting from cash.
    pub current_weights: Option<Vec<f64>>,
    pub rebalance_threshold: f64,
    /// Cost per unit of turnover (0.001 = 10 bps).
    pub cost_rate: f64,
    /// Confidence level of min CVaR, in (0, 1).
    pub cvar_level: f64,
    /// Portfolios on the efficient frontier, 2 to [`MAX_FRONTIER_POINTS`].
    pub frontier_points: usize,
}

/// Default confidence level of `min_cvar`.
pub const DEFAULT_CVAR_LEVEL: f64 = 0.95;
/// Default and largest number of efficient-frontier portfolios.
pub const DEFAULT_FRONTIER_POINTS: usize = 20;
pub const MAX_FRONTIER_POINTS: usize = 200;

impl Default for OptimizeParams {
    fn default() -> Self {
        OptimizeParams {
            method: Method::MaxSharpe,
            covariance: CovarianceEstimator::Sample,
            risk_free_rate: 0.0,
            weight_bounds: None,
            risk_budget: None,
            periods_per_year: 252.0,
            current_weights: None,
            rebalance_threshold: 0.05,
            cost_rate: 0.001,
            cvar_level: DEFAULT_CVAR_LEVEL,
            frontier_points: DEFAULT_FRONTIER_POINTS,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Annualized {
    #[serde(rename = "return")]
    pub ret: f64,
    pub volatility: f64,
    pub sharpe: f64,
    /// Periods a year these are annualised with: 252 unless every asset is
    /// crypto (365), or as the request set it.
    pub periods_per_year: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SolverInfo {
    pub name: &'static str,
    pub status: String,
    pub iterations: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortfolioReport {
    pub symbols: Vec<String>,
    pub weights: Vec<f64>,
    /// Shares of portfolio variance, summing to 1.
    pub risk_contributions: Vec<f64>,
    pub expected_return: f64,
    pub expected_volatility: f64,
    pub sharpe_ratio: f64,
    pub diversification_ratio: f64,
    pub annualized: Annualized,
    pub solver: SolverInfo,
    /// Return observations used (common window length minus one).
    pub observations: usize,
    pub rebalance_needed: bool,
    pub turnover: f64,
    pub transaction_costs: f64,
    pub method: Method,
    pub covariance: CovarianceEstimator,
    /// Ledoit-Wolf shrinkage intensity (0 for the other estimators).
    pub shrinkage: f64,
    /// The weights' empirical VaR and CVaR at `cvar_level` (min CVaR only).
    pub tail_risk: Option<TailRisk>,
    /// Lowest return first (efficient frontier only).
    pub frontier: Option<Vec<FrontierPoint>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimizeError {
    #[error("at least 2 assets are needed, got {0}")]
    TooFewAssets(usize),
    #[error("symbol {0:?} appears more than once")]
    DuplicateSymbol(String),
    #[error("price_data.{symbol}[{index}] is {value}: prices must be finite and greater than 0")]
    BadPrice {
        symbol: String,
        index: usize,
        value: f64,
    },
    #[error("{0}")]
    InsufficientData(String),
    #[error("params.{name}: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    #[error("{0}")]
    Infeasible(String),
    /// The data gave an estimator nothing it could fit (a GARCH fit failed).
    #[error("{0}")]
    Unfit(String),
    #[error("{0}")]
    SolverFailed(String),
}

impl OptimizeError {
    /// The contract's machine code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            OptimizeError::TooFewAssets(_)
            | OptimizeError::DuplicateSymbol(_)
            | OptimizeError::BadPrice { .. }
            | OptimizeError::InvalidParam { .. } => "invalid_input",
            OptimizeError::InsufficientData(_) => "insufficient_data",
            OptimizeError::Infeasible(_) => "infeasible",
            OptimizeError::Unfit(_) => "model_failed",
            OptimizeError::SolverFailed(_) => "solver_failed",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Method::EqualWeight => "equal_weight",
            Method::MinVariance => "min_variance",
            Method::MaxSharpe => "max_sharpe",
            Method::RiskParity => "risk_parity",
            Method::MinCvar => "min_cvar",
            Method::EfficientFrontier => "efficient_frontier",
        };
        f.write_str(s)
    }
}

/// Return observations needed: a non-singular sample covariance (or sample
/// correlation) needs more observations than assets; equal weight and
/// shrinkage need only two; a GARCH fit needs [`volatility::MIN_CLOSES`]
/// closes whatever the method, since the report's figures use it.
pub fn min_observations(n_assets: usize, params: &OptimizeParams) -> usize {
    let sample = if params.method == Method::EqualWeight {
        2
    } else {
        n_assets + 1
    };
    match params.covariance {
        CovarianceEstimator::Sample => sample,
        CovarianceEstimator::LedoitWolf => 2,
        CovarianceEstimator::Garch => sample.max(volatility::MIN_CLOSES - 1),
    }
}

pub fn optimize(
    assets: &[AssetSeries],
    params: &OptimizeParams,
) -> Result<PortfolioReport, OptimizeError> {
    let n = assets.len();
    check_assets(assets)?;
    let bounds = check_params(n, params)?;

    let len = assets.iter().map(|a| a.closes.len()).min().unwrap_or(0);
    let needed = min_observations(n, params);
    if len < needed + 1 {
        let why = if params.covariance == CovarianceEstimator::Garch {
            format!(
                " and covariance garch (a GARCH(1,1) fit per asset needs at least {} closes)",
                volatility::MIN_CLOSES
            )
        } else {
            String::new()
        };
        return Err(OptimizeError::InsufficientData(format!(
            "{n} assets with {method}{why} need at least {} prices per asset ({needed} returns); \
             the shortest series has {len}",
            needed + 1,
            method = params.method,
        )));
    }
    let series: Vec<&[f64]> = assets.iter().map(|a| a.closes.as_slice()).collect();
    let returns = estimate::simple_returns(&series, len);
    if returns.iter().any(|r| !r.is_finite()) {
        return Err(OptimizeError::InvalidParam {
            name: "price_data",
            reason: "prices produce non-finite returns".into(),
        });
    }
    let mean = estimate::mean(&returns);
    let (cov, shrinkage) = match params.covariance {
        CovarianceEstimator::Sample => (estimate::sample_covariance(&returns), 0.0),
        CovarianceEstimator::LedoitWolf => estimate::ledoit_wolf(&returns),
        CovarianceEstimator::Garch => (garch_covariance(assets, len, &returns)?, 0.0),
    };

    let mut tail_risk = None;
    let mut frontier = None;
    let solved = match params.method {
        Method::EqualWeight => Ok(Solved {
            weights: vec![1.0 / n as f64; n],
            solver: "closed_form",
            status: "Solved".into(),
            iterations: 0,
        }),
        Method::MinVariance | Method::MaxSharpe => {
            // The sample covariance is F'F for the centred returns F: the
            // factor form can stand for it.
            let factor = (params.covariance == CovarianceEstimator::Sample
                && solve::faster_form(n, returns.nrows()) == solve::Form::Factor)
                .then(|| estimate::sample_factor(&returns));
            let risk = match &factor {
                Some(factor) => solve::Risk::Factor { cov: &cov, factor },
                None => solve::Risk::Dense(&cov),
            };
            if params.method == Method::MinVariance {
                solve::min_variance_posed(risk, bounds)
            } else {
                solve::max_sharpe_posed(risk, &mean, params.risk_free_rate, bounds)
            }
        }
        Method::RiskParity => {
            let equal = vec![1.0 / n as f64; n];
            let budget = params.risk_budget.as_deref().unwrap_or(&equal);
            solve::risk_parity(&cov, budget, RISK_PARITY_TOLERANCE).and_then(|s| {
                within_bounds(&s.weights, bounds)?;
                Ok(s)
            })
        }
        Method::MinCvar => cvar::min_cvar(&returns, params.cvar_level, bounds).map(|(s, risk)| {
            tail_risk = Some(risk);
            s
        }),
        Method::EfficientFrontier => frontier::efficient_frontier(
            &cov,
            &mean,
            params.risk_free_rate,
            bounds,
            params.frontier_points,
        )
        .map(|f| {
            let solved = Solved {
                weights: f.best_sharpe().weights.clone(),
                solver: "clarabel",
                status: f.status.clone(),
                iterations: f.iterations,
            };
            frontier = Some(f.points);
            solved
        }),
    }
    .map_err(|e| match e {
        SolveError::Infeasible(m) => OptimizeError::Infeasible(m),
        SolveError::Failed(m) => OptimizeError::SolverFailed(m),
    })?;

    let mut report = report(assets, params, &mean, &cov, shrinkage, len - 1, solved);
    report.tail_risk = tail_risk;
    report.frontier = frontier;
    Ok(report)
}

/// `D R D` from a GARCH(1,1) fit to each asset's last `len` closes (the
/// window `returns` were taken from); a failed fit is refused naming the
/// asset.
fn garch_covariance(
    assets: &[AssetSeries],
    len: usize,
    returns: &Array2<f64>,
) -> Result<Array2<f64>, OptimizeError> {
    let vols = assets
        .iter()
        .map(|a| {
            estimate::garch_volatility(&a.closes[a.closes.len() - len..])
                .map_err(|e| garch_failed(&a.symbol, e))
        })
        .collect::<Result<Vec<f64>, _>>()?;
    Ok(estimate::scaled_correlation(returns, &vols))
}

fn garch_failed(symbol: &str, e: VolatilityError) -> OptimizeError {
    let message = format!("covariance garch: the GARCH(1,1) fit to {symbol}'s closes failed: {e}");
    match e {
        VolatilityError::InsufficientData { .. } => OptimizeError::InsufficientData(message),
        _ => OptimizeError::Unfit(message),
    }
}

fn check_assets(assets: &[AssetSeries]) -> Result<(), OptimizeError> {
    if assets.len() < 2 {
        return Err(OptimizeError::TooFewAssets(assets.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for a in assets {
        if !seen.insert(a.symbol.trim().to_ascii_uppercase()) {
            return Err(OptimizeError::DuplicateSymbol(a.symbol.clone()));
        }
        if let Some((index, &value)) = a
            .closes
            .iter()
            .enumerate()
            .find(|(_, p)| !(p.is_finite() && **p > 0.0))
        {
            return Err(OptimizeError::BadPrice {
                symbol: a.symbol.clone(),
                index,
                value,
            });
        }
    }
    Ok(())
}

fn check_params(n: usize, p: &OptimizeParams) -> Result<(f64, f64), OptimizeError> {
    let invalid = |name, reason: String| Err(OptimizeError::InvalidParam { name, reason });
    if !p.risk_free_rate.is_finite() {
        return invalid("risk_free_rate", "must be a finite number".into());
    }
    if !(p.periods_per_year.is_finite() && p.periods_per_year > 0.0) {
        return invalid("periods_per_year", "must be greater than 0".into());
    }
    if !(p.rebalance_threshold.is_finite() && p.rebalance_threshold >= 0.0) {
        return invalid("rebalance_threshold", "must be 0 or more".into());
    }
    if !(p.cost_rate.is_finite() && (0.0..1.0).contains(&p.cost_rate)) {
        return invalid("cost_rate", "must be in [0, 1)".into());
    }
    let (lo, hi) = p.weight_bounds.unwrap_or((0.0, 1.0));
    if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi && hi <= 1.0) {
        return invalid(
            "weight_bounds",
            format!("[{lo}, {hi}] must satisfy 0 <= min <= max <= 1"),
        );
    }
    if lo * n as f64 > 1.0 + 1e-12 || hi * (n as f64) < 1.0 - 1e-12 {
        return invalid(
            "weight_bounds",
            format!("[{lo}, {hi}] cannot hold {n} weights summing to 1"),
        );
    }
    if !(p.cvar_level.is_finite() && 0.0 < p.cvar_level && p.cvar_level < 1.0) {
        return invalid(
            "cvar_level",
            format!("is {}: must be strictly between 0 and 1", p.cvar_level),
        );
    }
    if !(2..=MAX_FRONTIER_POINTS).contains(&p.frontier_points) {
        return invalid(
            "points",
            format!(
                "is {}: must be from 2 to {MAX_FRONTIER_POINTS}",
                p.frontier_points
            ),
        );
    }
    if let Some(budget) = &p.risk_budget {
        if budget.len() != n {
            return invalid(
                "risk_budget",
                format!("has {} values for {n} assets", budget.len()),
            );
        }
        if budget.iter().any(|b| !(b.is_finite() && *b > 0.0)) {
            return invalid("risk_budget", "every budget must be greater than 0".into());
        }
        let total: f64 = budget.iter().sum();
        if (total - 1.0).abs() > 1e-6 {
            return invalid("risk_budget", format!("budgets sum to {total}, not 1"));
        }
    }
    if let Some(current) = &p.current_weights {
        if current.len() != n {
            return invalid(
                "current_weights",
                format!("has {} values for {n} assets", current.len()),
            );
        }
        if current.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return invalid(
                "current_weights",
                "weights must be finite and 0 or more".into(),
            );
        }
    }
    Ok((lo, hi))
}

fn within_bounds(w: &[f64], (lo, hi): (f64, f64)) -> Result<(), SolveError> {
    match w.iter().find(|&&x| x < lo - 1e-9 || x > hi + 1e-9) {
        Some(x) => Err(SolveError::Infeasible(format!(
            "the risk-parity portfolio has a weight of {x:.6}, outside weight_bounds [{lo}, {hi}]; \
             risk parity does not take bounds, so widen or drop them"
        ))),
        None => Ok(()),
    }
}

fn report(
    assets: &[AssetSeries],
    params: &OptimizeParams,
    mean: &Array1<f64>,
    cov: &Array2<f64>,
    shrinkage: f64,
    observations: usize,
    solved: Solved,
) -> PortfolioReport {
    let w = Array1::from(solved.weights.clone());
    let sw = cov.dot(&w);
    let variance = w.dot(&sw).max(0.0);
    let volatility = variance.sqrt();
    let expected_return = w.dot(mean);
    let sharpe = if volatility > 0.0 {
        (expected_return - params.risk_free_rate) / volatility
    } else {
        0.0
    };
    let risk_contributions: Vec<f64> = if variance > 0.0 {
        w.iter()
            .zip(sw.iter())
            .map(|(wi, si)| wi * si / variance)
            .collect()
    } else {
        solved.weights.clone()
    };
    let weighted_vols: f64 = w
        .iter()
        .zip(cov.diag())
        .map(|(wi, v)| wi * v.max(0.0).sqrt())
        .sum();
    let diversification_ratio = if volatility > 0.0 {
        weighted_vols / volatility
    } else {
        1.0
    };
    let zeros = vec![0.0; w.len()];
    let current = params.current_weights.as_deref().unwrap_or(&zeros);
    let diffs: Vec<f64> = w.iter().zip(current).map(|(t, c)| (t - c).abs()).collect();
    let turnover: f64 = diffs.iter().sum();
    let periods = params.periods_per_year;
    PortfolioReport {
        symbols: assets.iter().map(|a| a.symbol.clone()).collect(),
        weights: solved.weights,
        risk_contributions,
        expected_return,
        expected_volatility: volatility,
        sharpe_ratio: sharpe,
        diversification_ratio,
        annualized: Annualized {
            ret: expected_return * periods,
            volatility: volatility * periods.sqrt(),
            sharpe: sharpe * periods.sqrt(),
            periods_per_year: periods,
        },
        solver: SolverInfo {
            name: solved.solver,
            status: solved.status,
            iterations: solved.iterations,
        },
        observations,
        rebalance_needed: diffs.iter().any(|d| *d > params.rebalance_threshold),
        turnover,
        transaction_costs: params.cost_rate * turnover,
        method: params.method,
        covariance: params.covariance,
        shrinkage,
        tail_risk: None,
        frontier: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(symbol: &str, closes: &[f64]) -> AssetSeries {
        AssetSeries {
            symbol: symbol.into(),
            closes: closes.to_vec(),
        }
    }

    fn wave(n: usize, phase: f64, drift: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                100.0
                    * (1.0 + drift).powi(i as i32)
                    * (1.0 + 0.02 * ((i as f64) * 0.7 + phase).sin())
            })
            .collect()
    }

    fn three() -> Vec<AssetSeries> {
        vec![
            asset("A", &wave(60, 0.0, 0.001)),
            asset("B", &wave(60, 1.0, 0.002)),
            asset("C", &wave(70, 2.5, 0.0005)),
        ]
    }

    #[test]
    fn refuses_bad_inputs_with_a_named_reason() {
        let p = OptimizeParams::default();
        assert_eq!(
            optimize(&three()[..1], &p).unwrap_err(),
            OptimizeError::TooFewAssets(1)
        );
        let mut dup = three();
        dup[1].symbol = "a".into();
        assert!(matches!(
            optimize(&dup, &p).unwrap_err(),
            OptimizeError::DuplicateSymbol(_)
        ));
        let mut bad = three();
        bad[2].closes[5] = 0.0;
        let err = optimize(&bad, &p).unwrap_err();
        assert_eq!(
            err.to_string(),
            "price_data.C[5] is 0: prices must be finite and greater than 0"
        );
        let short = vec![asset("A", &[1.0, 1.1, 1.2]), asset("B", &[2.0, 2.1, 2.0])];
        let err = optimize(&short, &p).unwrap_err();
        assert_eq!(err.code(), "insufficient_data");
        assert!(err.to_string().contains("at least 4 prices"), "{err}");
        for (bounds, name) in [
            ((0.5, 0.4), "weight_bounds"),
            ((0.4, 1.0), "weight_bounds"),
            ((0.0, 0.2), "weight_bounds"),
        ] {
            let p = OptimizeParams {
                weight_bounds: Some(bounds),
                ..Default::default()
            };
            let err = optimize(&three(), &p).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("params.{name}")),
                "{err}"
            );
        }
        let p = OptimizeParams {
            risk_budget: Some(vec![0.5, 0.5, 0.5]),
            method: Method::RiskParity,
            ..Default::default()
        };
        assert_eq!(optimize(&three(), &p).unwrap_err().code(), "invalid_input");
    }

    #[test]
    fn series_are_aligned_on_the_most_recent_common_window() {
        let p = OptimizeParams {
            method: Method::EqualWeight,
            ..Default::default()
        };
        let r = optimize(&three(), &p).unwrap();
        assert_eq!(r.observations, 59);
        assert_eq!(r.weights, [1.0 / 3.0; 3]);
        assert_eq!(r.solver.name, "closed_form");
    }

    #[test]
    fn every_method_reports_consistent_figures() {
        for method in [
            Method::EqualWeight,
            Method::MinVariance,
            Method::MaxSharpe,
            Method::RiskParity,
        ] {
            let p = OptimizeParams {
                method,
                ..Default::default()
            };
            let r = optimize(&three(), &p).unwrap();
            assert!(
                (r.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{method}"
            );
            assert!(
                (r.risk_contributions.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{method}"
            );
            assert!(r.weights.iter().all(|w| *w == 0.0 || *w >= 1e-10));
            assert!(r.diversification_ratio >= 1.0 - 1e-12);
            assert!(
                (r.annualized.volatility - r.expected_volatility * 252f64.sqrt()).abs() < 1e-12
            );
            assert!(r.rebalance_needed, "starting from cash always rebalances");
            assert!(
                (r.transaction_costs - 0.001).abs() < 1e-12,
                "turnover from cash is 1"
            );
        }
    }

    #[test]
    fn rebalancing_compares_with_current_weights() {
        let p = OptimizeParams {
            method: Method::EqualWeight,
            current_weights: Some(vec![0.34, 0.33, 0.33]),
            ..Default::default()
        };
        let r = optimize(&three(), &p).unwrap();
        assert!(!r.rebalance_needed);
        let expected = (0.34 - 1.0 / 3.0) + 2.0 * (1.0 / 3.0 - 0.33);
        assert!((r.turnover - expected).abs() < 1e-12);
        assert!((r.transaction_costs - 0.001 * expected).abs() < 1e-15);
    }

    #[test]
    fn max_sharpe_without_a_positive_excess_return_is_refused() {
        let falling = vec![
            asset(
                "A",
                &(0..40)
                    .map(|i| 100.0 - i as f64 + (i % 3) as f64)
                    .collect::<Vec<_>>(),
            ),
            asset(
                "B",
                &(0..40)
                    .map(|i| 50.0 - 0.5 * i as f64 + (i % 2) as f64)
                    .collect::<Vec<_>>(),
            ),
        ];
        let err = optimize(&falling, &OptimizeParams::default()).unwrap_err();
        assert_eq!(err.code(), "infeasible");
        assert!(err.to_string().contains("risk-free"), "{err}");
    }

    #[test]
    fn ledoit_wolf_copes_with_more_assets_than_observations() {
        let assets: Vec<AssetSeries> = (0..8)
            .map(|i| asset(&format!("S{i}"), &wave(6, i as f64, 0.001)))
            .collect();
        let p = OptimizeParams {
            method: Method::MinVariance,
            covariance: CovarianceEstimator::LedoitWolf,
            ..Default::default()
        };
        let r = optimize(&assets, &p).unwrap();
        assert!(r.shrinkage > 0.0 && r.shrinkage <= 1.0);
        assert!((r.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let sample = OptimizeParams {
            method: Method::MinVariance,
            ..Default::default()
        };
        assert_eq!(
            optimize(&assets, &sample).unwrap_err().code(),
            "insufficient_data"
        );
    }

    #[test]
    fn min_cvar_and_the_frontier_cope_with_few_observations_under_shrinkage() {
        // 8 assets, 5 returns: the CVaR LP has many optimal portfolios and
        // the shrunk covariance is the only invertible one; both still
        // answer a fully invested, bounded portfolio.
        let assets: Vec<AssetSeries> = (0..8)
            .map(|i| asset(&format!("S{i}"), &wave(6, i as f64, 0.001 * i as f64)))
            .collect();
        for method in [Method::MinCvar, Method::EfficientFrontier] {
            let p = OptimizeParams {
                method,
                covariance: CovarianceEstimator::LedoitWolf,
                weight_bounds: Some((0.0, 0.3)),
                frontier_points: 5,
                ..Default::default()
            };
            let r = optimize(&assets, &p).unwrap_or_else(|e| panic!("{method}: {e}"));
            assert!(
                (r.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{method}"
            );
            assert!(r.weights.iter().all(|w| *w <= 0.3 + 1e-7), "{method}");
            assert_eq!(r.tail_risk.is_some(), method == Method::MinCvar);
            assert_eq!(
                r.frontier.as_ref().map(Vec::len),
                (method == Method::EfficientFrontier).then_some(5)
            );
        }
        for (level, points) in [(1.0, 20), (0.0, 20), (f64::NAN, 20), (0.95, 1), (0.95, 201)] {
            let p = OptimizeParams {
                method: Method::MinCvar,
                cvar_level: level,
                frontier_points: points,
                ..Default::default()
            };
            assert_eq!(optimize(&three(), &p).unwrap_err().code(), "invalid_input");
        }
    }

    /// The last `n` embedded closes of each of `symbols`.
    fn embedded(symbols: &[&str], n: usize) -> Vec<AssetSeries> {
        let table = crate::market::dataset::embedded().unwrap();
        symbols
            .iter()
            .map(|s| {
                let closes: Vec<f64> = table[*s].iter().map(|b| b.close).collect();
                asset(s, &closes[closes.len() - n..])
            })
            .collect()
    }

    #[test]
    fn garch_covariance_is_the_sample_correlation_scaled_by_garch_forecasts() {
        // Series of different lengths: the common window is the last 300.
        let mut assets = embedded(&["AAPL", "JNJ", "KO", "XOM"], 300);
        assets[1].closes.splice(0..0, [50.0, 51.0, 50.5]);
        let len = 300;
        let series: Vec<&[f64]> = assets.iter().map(|a| a.closes.as_slice()).collect();
        let returns = estimate::simple_returns(&series, len);
        let cov = garch_covariance(&assets, len, &returns).unwrap();
        let sample = estimate::sample_covariance(&returns);
        for (i, a) in assets.iter().enumerate() {
            let window = &a.closes[a.closes.len() - len..];
            let fit = volatility::fit(window, volatility::GarchSpec::default()).unwrap();
            let variance = fit.forecast(1, 252.0).unwrap().variance[0] / 1e4;
            assert!(
                (cov[[i, i]] - variance).abs() <= 1e-12 * variance,
                "{}: {} vs {variance}",
                a.symbol,
                cov[[i, i]]
            );
            // Daily volatility of a large cap: a fraction, not percent.
            assert!((0.002..0.06).contains(&variance.sqrt()), "{variance}");
            for j in 0..assets.len() {
                let corr = cov[[i, j]] / (cov[[i, i]] * cov[[j, j]]).sqrt();
                let sample_corr = sample[[i, j]] / (sample[[i, i]] * sample[[j, j]]).sqrt();
                assert!((corr - sample_corr).abs() < 1e-12, "({i}, {j})");
            }
        }
        // Not the sample covariance itself: the diagonal is the forecast.
        assert!(cov
            .diag()
            .iter()
            .zip(sample.diag())
            .any(|(g, s)| (g - s).abs() > 0.05 * s));
        // Symmetric and positive semi-definite: x' C x >= 0.
        for probe in [[1.0, -1.0, 1.0, -1.0], [0.3, -0.9, 0.1, 0.5]] {
            let x = Array1::from(probe.to_vec());
            assert!(x.dot(&cov.dot(&x)) >= 0.0);
        }
        assert_eq!(cov, cov.t());
    }

    #[test]
    fn min_variance_solves_with_the_garch_covariance() {
        let assets = embedded(&["AAPL", "JNJ", "KO", "MSFT", "XOM"], 252);
        let p = OptimizeParams {
            method: Method::MinVariance,
            covariance: CovarianceEstimator::Garch,
            ..Default::default()
        };
        let r = optimize(&assets, &p).unwrap();
        assert_eq!(r.covariance, CovarianceEstimator::Garch);
        assert_eq!((r.observations, r.shrinkage), (251, 0.0));
        assert!((r.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(r.weights.iter().all(|w| (-1e-9..=1.0 + 1e-9).contains(w)));
        assert!(r.solver.status.contains("Solved"), "{}", r.solver.status);
        // The reported volatility is that of the GARCH covariance, and no
        // single asset (a corner of the simplex) has less.
        let series: Vec<&[f64]> = assets.iter().map(|a| a.closes.as_slice()).collect();
        let returns = estimate::simple_returns(&series, 252);
        let cov = garch_covariance(&assets, 252, &returns).unwrap();
        let w = Array1::from(r.weights.clone());
        assert!((w.dot(&cov.dot(&w)).sqrt() - r.expected_volatility).abs() < 1e-12);
        let lowest = cov.diag().iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(r.expected_volatility <= lowest.sqrt() + 1e-12);
        // A different answer from the sample covariance's.
        let sample = optimize(
            &assets,
            &OptimizeParams {
                method: Method::MinVariance,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(sample.covariance, CovarianceEstimator::Sample);
        assert!(r
            .weights
            .iter()
            .zip(&sample.weights)
            .any(|(g, s)| (g - s).abs() > 1e-3));
    }

    #[test]
    fn garch_needs_a_hundred_closes_and_names_an_asset_it_cannot_fit() {
        let p = OptimizeParams {
            method: Method::EqualWeight,
            covariance: CovarianceEstimator::Garch,
            ..Default::default()
        };
        let err = optimize(&embedded(&["AAPL", "KO"], 99), &p).unwrap_err();
        assert_eq!(err.code(), "insufficient_data");
        assert!(
            err.to_string().contains("covariance garch")
                && err.to_string().contains("at least 100 prices"),
            "{err}"
        );
        assert!(optimize(&embedded(&["AAPL", "KO"], 100), &p).is_ok());
        // A stock that never moves gives the likelihood nothing to fit.
        let mut assets = embedded(&["AAPL", "KO"], 150);
        assets[1].closes = vec![42.0; 150];
        let err = optimize(&assets, &p).unwrap_err();
        assert_eq!(err.code(), "model_failed");
        assert!(
            err.to_string()
                .starts_with("covariance garch: the GARCH(1,1) fit to KO's closes failed"),
            "{err}"
        );
        assert_eq!(
            "garch".parse::<CovarianceEstimator>(),
            Ok(CovarianceEstimator::Garch)
        );
        assert!("Garch".parse::<CovarianceEstimator>().is_err());
    }
}
