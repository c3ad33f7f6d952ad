//! What a model answers: a forecast of one price series, or an allocation
//! over several. These are serialised as they are into the contract's
//! answer (the API adds the fields every answer has), so their field names
//! are the contract's and their schema is the published one.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ensemble::params::EnsembleParams;
use super::interval::{self, Residual};
use super::neural::fit::FitParams;
use super::neural::metrics::HeldOut;
use super::params::Horizon;
use super::portfolio::cvar::TailRisk;
use super::portfolio::{Annualized, CovarianceEstimator, Method, SolverInfo};
use super::volatility::{Distribution, Mean, Model as VolModel, Params};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Prediction {
    Forecast(Forecast),
    Allocation(Allocation),
    Volatility(VolatilityForecast),
}

impl Prediction {
    pub fn forecast(&self) -> Option<&Forecast> {
        match self {
            Prediction::Forecast(f) => Some(f),
            Prediction::Allocation(_) | Prediction::Volatility(_) => None,
        }
    }

    pub fn forecast_mut(&mut self) -> Option<&mut Forecast> {
        match self {
            Prediction::Forecast(f) => Some(f),
            Prediction::Allocation(_) | Prediction::Volatility(_) => None,
        }
    }
}

/// A forecast of the return `horizon` periods after the last close.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Forecast {
    /// The last close x (1 + `predicted_return`).
    pub predicted_price: f64,
    /// A fraction, over the horizon.
    pub predicted_return: f64,
    /// The last close.
    pub current_price: f64,
    /// 0..1, measured (see README).
    pub confidence: f64,
    /// `"<n>_period"`.
    #[serde(rename = "prediction_horizon", serialize_with = "horizon_label")]
    #[schema(value_type = String, example = "1_period")]
    pub horizon: Horizon,
    /// The weights that made it, when they have a version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The arm of the model's A/B test that served it, while one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ab_arm: Option<crate::models::lifecycle::experiment::Arm>,
    /// Held-out figures behind it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<HeldOut>,
    /// Where the return is likely to land, calibrated on held-out forecasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction_interval: Option<Box<PredictionInterval>>,
    #[serde(flatten)]
    pub details: ForecastDetails,
}

/// A split conformal prediction interval of a forecast's return and price.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PredictionInterval {
    /// The coverage aimed at (0.9 unless `params.interval_level` says).
    pub level: f64,
    /// `null` (with the other bounds) when too few held-out forecasts back
    /// the level: the honest interval is then the whole line.
    pub lower_return: Option<f64>,
    pub upper_return: Option<f64>,
    pub lower_price: Option<f64>,
    pub upper_price: Option<f64>,
    pub method: String,
    /// Held-out forecasts the interval is calibrated on.
    pub calibration_points: usize,
}

impl PredictionInterval {
    /// `predicted_return ± q σ` from `calibration` (see
    /// [`interval::conformal_interval`]), `σ` the volatility at the last of
    /// `closes`; a return below -100 % is cut at -100 % (a price of 0).
    pub fn conformal(
        calibration: &[Residual],
        closes: &[f64],
        predicted_return: f64,
        level: f64,
    ) -> Self {
        let last = closes.len() - 1;
        let scale = interval::volatility_at(closes, last);
        let i = interval::conformal_interval(calibration, predicted_return, scale, level);
        let bounded = i.is_bounded();
        let lower = bounded.then_some(i.lower.max(-1.0));
        let upper = bounded.then_some(i.upper);
        let price = |r: Option<f64>| r.map(|r| closes[last] * (1.0 + r));
        let method = if bounded {
            format!(
                "split conformal: |error| / volatility of {} held-out forecasts, times the {}-day volatility now ({scale:.5})",
                calibration.len(),
                interval::VOLATILITY_WINDOW
            )
        } else {
            format!(
                "split conformal: {} held-out forecasts are too few for level {level} (it needs {}), so the interval is unbounded",
                calibration.len(),
                interval::points_needed(level)
            )
        };
        PredictionInterval {
            level,
            lower_return: lower,
            upper_return: upper,
            lower_price: price(lower),
            upper_price: price(upper),
            method,
            calibration_points: calibration.len(),
        }
    }
}

impl Forecast {
    /// A forecast of `predicted_return` from `current_price`.
    pub fn new(
        predicted_return: f64,
        current_price: f64,
        confidence: f64,
        horizon: Horizon,
        details: ForecastDetails,
    ) -> Self {
        Forecast {
            predicted_price: current_price * (1.0 + predicted_return),
            predicted_return,
            current_price,
            confidence,
            horizon,
            model_version: None,
            ab_arm: None,
            validation: None,
            prediction_interval: None,
            details,
        }
    }
}

fn horizon_label<S: serde::Serializer>(h: &Horizon, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.label())
}

/// What a forecaster adds to its forecast.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ForecastDetails {
    Network(NetworkDetails),
    Ensemble(EnsembleDetails),
    /// A model outside this crate (a test double, say) reporting its own
    /// extra fields.
    Reported(Reported),
}

/// Fields a model outside this crate reports for itself.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct Reported(pub Map<String, Value>);

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NetworkDetails {
    /// Returns the network reads.
    pub sequence_length: usize,
    /// The Transformer's heads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention_heads: Option<usize>,
    /// How the network was fitted to the request's own series, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit: Option<SeriesFit>,
}

/// A fit of a network to the request's series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesFit {
    /// Always `series`.
    pub mode: &'static str,
    pub fine_tuned_from_pretrained: bool,
    pub cached: bool,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub out_of_time: bool,
    pub training_seconds: f64,
    pub validation_loss: f64,
    #[schema(value_type = Object)]
    pub params: FitParams,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnsembleDetails {
    /// Every learner's weight (0 for one that failed).
    pub model_weights: BTreeMap<&'static str, f64>,
    /// Each learner's forecast return.
    pub individual_predictions: BTreeMap<&'static str, f64>,
    /// 0..1: 1 when the learners agree exactly.
    pub ensemble_agreement: f64,
    /// Learners with a weight above 0.
    pub models_used: Vec<&'static str>,
    pub models_failed: Vec<FailedLearner>,
    pub adaptation_window: usize,
    pub fit: EnsembleFit,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailedLearner {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnsembleFit {
    pub cached: bool,
    pub closes_used: usize,
    pub training_rows: usize,
    pub training_seconds: f64,
    #[schema(value_type = Object)]
    pub params: EnsembleParams,
}

/// Weights over several assets.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Allocation {
    Optimised(Box<OptimisedAllocation>),
    /// A model outside this crate reporting its own fields.
    Reported(Reported),
}

/// The optimiser's portfolio; per-period figures are daily.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OptimisedAllocation {
    /// Symbol -> weight, summing to 1.
    pub allocation: BTreeMap<String, f64>,
    /// Symbol -> share of portfolio variance.
    pub risk_contributions: BTreeMap<String, f64>,
    pub expected_return: f64,
    pub expected_volatility: f64,
    /// Per period, from the sample mean and covariance.
    pub sharpe_ratio: f64,
    #[schema(value_type = String)]
    pub optimization_method: Method,
    pub rebalance_needed: bool,
    pub transaction_costs: f64,
    pub turnover: f64,
    pub diversification_ratio: f64,
    #[schema(value_type = Object)]
    pub annualized: Annualized,
    #[schema(value_type = Object)]
    pub solver: SolverInfo,
    /// Return observations used.
    pub observations: usize,
    #[schema(value_type = String)]
    pub covariance: CovarianceEstimator,
    /// Per period.
    pub risk_free_rate: f64,
    /// `min_cvar` only: the allocation's empirical VaR and CVaR at
    /// `cvar_level`, positive daily loss fractions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail_risk: Option<Box<TailRisk>>,
    /// `efficient_frontier` only: its portfolios, lowest return first (the
    /// minimum-variance portfolio) to the highest return the bounds allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontier: Option<Vec<FrontierPortfolio>>,
}

/// One efficient-frontier portfolio; figures per period (daily).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FrontierPortfolio {
    pub expected_return: f64,
    pub volatility: f64,
    /// `(expected_return - risk_free_rate) / volatility`.
    pub sharpe: f64,
    /// Symbol -> weight, summing to 1.
    pub weights: BTreeMap<String, f64>,
}

/// A volatility model's forecast of the conditional volatility ahead.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VolatilityForecast {
    /// Each period ahead's conditional volatility, a fraction per period.
    pub volatility_forecast: Vec<f64>,
    /// The same, times `sqrt(periods_per_year)`.
    pub annualized_volatility_forecast: Vec<f64>,
    pub periods_per_year: f64,
    pub horizon: usize,
    pub model: VolModel,
    pub distribution: Distribution,
    pub mean: Mean,
    /// `mu`, `omega`, `alpha`, `gamma` (gjr), `beta`, `nu` (t), as arch names them.
    pub parameters: Params,
    /// Robust standard errors of `parameters`; `null` when the Hessian is singular.
    pub std_errors: Option<Params>,
    pub log_likelihood: f64,
    pub aic: f64,
    pub bic: f64,
    /// `alpha + gamma / 2 + beta`.
    pub persistence: f64,
    /// Periods for a variance shock to halve; `null` when it never decays.
    pub half_life: Option<f64>,
    /// Returns fitted.
    pub observations: usize,
    pub current_price: f64,
    pub units: &'static str,
}
