//! Conditional volatility: GARCH(1,1) and GJR-GARCH(1,1,1) fitted by maximum
//! likelihood to percent simple returns, their variance forecasts, and the
//! naive baselines and losses that judge them out of sample.
//!
//! The likelihood, its start-up variance, its constraints and its robust
//! standard errors follow the python `arch` package (8.0) with its defaults,
//! so a fit here reproduces `arch_model(r, vol="GARCH", ...).fit()` on the
//! same returns (see tests/volatility_reference.rs). Pure and synchronous.

pub mod baselines;
mod covariance;
pub mod evaluate;
mod garch;
mod likelihood;
pub mod loss;
mod mle;
mod numeric;
pub mod predictor;

pub use garch::{fit, fit_returns, loglikelihood, GarchFit, Iterations, VarianceForecast};

use serde::{Deserialize, Serialize};

/// Fewer closes than this leave too few returns to identify four to six
/// parameters.
pub const MIN_CLOSES: usize = 100;

/// Longest variance forecast, in periods.
pub const MAX_HORIZON: usize = 250;

/// Trading days a year, for annualising daily volatility.
pub const TRADING_DAYS: f64 = 252.0;

/// Which variance recursion.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// `σ²ₜ = ω + α ε²ₜ₋₁ + β σ²ₜ₋₁`.
    #[default]
    Garch,
    /// GJR-GARCH: adds `γ ε²ₜ₋₁ 1[εₜ₋₁ < 0]`, so falls raise volatility more
    /// than rises of the same size (the leverage effect).
    Gjr,
}

/// The law of the standardised shocks `εₜ / σₜ`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    #[default]
    Normal,
    /// Student's t scaled to unit variance, with `ν > 2` degrees of freedom
    /// estimated: daily returns have fatter tails than the normal.
    StudentT,
}

/// The conditional mean of the returns.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Mean {
    /// Returns are the shocks themselves.
    Zero,
    /// A constant drift `μ`, estimated with the variance parameters.
    #[default]
    Constant,
}

/// A volatility model: recursion, shock distribution and mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GarchSpec {
    pub model: Model,
    pub distribution: Distribution,
    pub mean: Mean,
}

impl GarchSpec {
    pub fn new(model: Model, distribution: Distribution, mean: Mean) -> Self {
        Self {
            model,
            distribution,
            mean,
        }
    }

    /// The estimated parameters' names, in arch's order.
    pub fn parameter_names(&self) -> Vec<&'static str> {
        let mut names = Vec::with_capacity(6);
        if self.mean == Mean::Constant {
            names.push("mu");
        }
        names.extend(["omega", "alpha"]);
        if self.model == Model::Gjr {
            names.push("gamma");
        }
        names.push("beta");
        if self.distribution == Distribution::StudentT {
            names.push("nu");
        }
        names
    }

    /// How many parameters are estimated (the `k` of AIC and BIC).
    pub fn num_params(&self) -> usize {
        self.parameter_names().len()
    }
}

/// One value per estimated parameter (estimates, or their standard errors),
/// under arch's names; parameters the spec lacks are `None`. Returns are in
/// percent, so `mu` is in percent and `omega` in squared percent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mu: Option<f64>,
    pub omega: f64,
    pub alpha: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    pub beta: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nu: Option<f64>,
}

impl Params {
    /// The value of the parameter called `name`, if the spec has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "mu" => self.mu,
            "omega" => Some(self.omega),
            "alpha" => Some(self.alpha),
            "gamma" => self.gamma,
            "beta" => Some(self.beta),
            "nu" => self.nu,
            _ => None,
        }
    }

    /// `(name, value)` for each parameter present, in arch's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> {
        [
            ("mu", self.mu),
            ("omega", Some(self.omega)),
            ("alpha", Some(self.alpha)),
            ("gamma", self.gamma),
            ("beta", Some(self.beta)),
            ("nu", self.nu),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VolatilityError {
    #[error("at least {needed} {what} are needed, got {got}")]
    InsufficientData {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    #[error("closes[{index}] is {value}: closes must be finite and greater than 0")]
    BadClose { index: usize, value: f64 },
    #[error("horizon must be between 1 and {MAX_HORIZON} periods, got {0}")]
    BadHorizon(usize),
    #[error("{0}")]
    InvalidInput(String),
    #[error("the likelihood maximisation did not converge: {0}")]
    DidNotConverge(String),
}

impl VolatilityError {
    /// The contract's machine code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            VolatilityError::InsufficientData { .. } => "insufficient_data",
            VolatilityError::BadClose { .. }
            | VolatilityError::BadHorizon(_)
            | VolatilityError::InvalidInput(_) => "invalid_input",
            VolatilityError::DidNotConverge(_) => "did_not_converge",
        }
    }
}

/// Simple returns in percent, `100 (pₜ / pₜ₋₁ − 1)`, the scale arch fits on
/// (its optimiser and variance bounds are tuned for variances near 1).
pub fn percent_returns(closes: &[f64]) -> Result<Vec<f64>, VolatilityError> {
    if let Some((index, &value)) = closes
        .iter()
        .enumerate()
        .find(|(_, p)| !(p.is_finite() && **p > 0.0))
    {
        return Err(VolatilityError::BadClose { index, value });
    }
    let returns: Vec<f64> = closes
        .windows(2)
        .map(|w| 100.0 * (w[1] / w[0] - 1.0))
        .collect();
    if let Some(index) = returns.iter().position(|r| !r.is_finite()) {
        return Err(VolatilityError::InvalidInput(format!(
            "the return from closes[{index}] to closes[{}] is not a finite number",
            index + 1
        )));
    }
    Ok(returns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_returns_refuse_bad_closes() {
        assert_eq!(
            percent_returns(&[100.0, 0.0]),
            Err(VolatilityError::BadClose {
                index: 1,
                value: 0.0
            })
        );
        assert!(matches!(
            percent_returns(&[1.0, f64::NAN]),
            Err(VolatilityError::BadClose { index: 1, .. })
        ));
        assert_eq!(
            percent_returns(&[1e-300, 1e300]).map_err(|e| e.code()),
            Err("invalid_input")
        );
        let r = percent_returns(&[100.0, 101.0, 99.99]).unwrap();
        assert!((r[0] - 1.0).abs() < 1e-12 && (r[1] + 1.0).abs() < 1e-12);
    }

    #[test]
    fn spec_names_parameters_like_arch() {
        let spec = GarchSpec::new(Model::Gjr, Distribution::StudentT, Mean::Zero);
        assert_eq!(
            spec.parameter_names(),
            ["omega", "alpha", "gamma", "beta", "nu"]
        );
        assert_eq!(
            GarchSpec::default().parameter_names(),
            ["mu", "omega", "alpha", "beta"]
        );
    }
}
