//! Fitting a GARCH-family model to a price series, and its variance forecast.

use serde::Serialize;

use super::covariance::robust_std_errors;
use super::likelihood::{Recursion, Sample};
use super::mle::maximise;
use super::{percent_returns, GarchSpec, Params, VolatilityError, MAX_HORIZON, MIN_CLOSES};

/// A fitted model. Variances are of percent returns (squared percent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GarchFit {
    pub spec: GarchSpec,
    /// Returns the model was fitted on.
    pub nobs: usize,
    pub params: Params,
    /// Robust (Bollerslev-Wooldridge) standard errors; `None` when the
    /// Hessian at the estimate is singular.
    pub std_errors: Option<Params>,
    pub loglikelihood: f64,
    /// `2k − 2 ln L`.
    pub aic: f64,
    /// `k ln n − 2 ln L`.
    pub bic: f64,
    /// `α + γ/2 + β`: the share of a variance shock left after one period
    /// (arch's stationarity constraint keeps it at most 1).
    pub persistence: f64,
    /// Periods until a variance shock has halved, `ln ½ / ln(persistence)`;
    /// `None` when the persistence is 1 and shocks never decay.
    pub half_life: Option<f64>,
    /// `σ²ₜ` for each return.
    pub conditional_variance: Vec<f64>,
    /// `σ²_{T+1}`, the variance of the next, unseen return.
    pub next_variance: f64,
    pub iterations: Iterations,
}

/// What the likelihood maximisation took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Iterations {
    /// Nelder-Mead iterations from arch's starting point.
    pub simplex: u64,
    /// Newton steps from where the simplex stopped.
    pub newton: usize,
}

/// Conditional variance forecasts for the next `h = 1..=horizon` periods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VarianceForecast {
    /// `σ²_{T+h}` in squared percent per period.
    pub variance: Vec<f64>,
    /// `σ_{T+h}` as a fraction per period (`√variance / 100`).
    pub volatility: Vec<f64>,
    /// `volatility · √periods_per_year`.
    pub annualised: Vec<f64>,
    pub periods_per_year: f64,
}

/// Fits `spec` by maximum likelihood to the percent simple returns of
/// `closes` (oldest first), as `arch_model(r, ...).fit()` does.
pub fn fit(closes: &[f64], spec: GarchSpec) -> Result<GarchFit, VolatilityError> {
    if closes.len() < MIN_CLOSES {
        return Err(VolatilityError::InsufficientData {
            what: "closes",
            needed: MIN_CLOSES,
            got: closes.len(),
        });
    }
    fit_returns(&percent_returns(closes)?, spec)
}

/// Fits `spec` to returns already in percent.
pub fn fit_returns(returns: &[f64], spec: GarchSpec) -> Result<GarchFit, VolatilityError> {
    if returns.len() + 1 < MIN_CLOSES {
        return Err(VolatilityError::InsufficientData {
            what: "returns",
            needed: MIN_CLOSES - 1,
            got: returns.len(),
        });
    }
    if let Some(index) = returns.iter().position(|r| !r.is_finite()) {
        return Err(VolatilityError::InvalidInput(format!(
            "returns[{index}] is {}: returns must be finite",
            returns[index]
        )));
    }
    let sample = Sample::new(returns, spec)?;
    let estimate = maximise(&sample)?;
    let layout = sample.layout;
    let params = layout.params(&estimate.x);
    let std_errors = robust_std_errors(&sample, &estimate.x).map(|se| layout.params(&se));
    let (conditional_variance, next_variance) = sample.variances(&estimate.x);
    let loglikelihood = -estimate.nll;
    let k = layout.len as f64;
    let n = returns.len() as f64;
    let persistence = Recursion::of(&params).persistence();
    Ok(GarchFit {
        spec,
        nobs: returns.len(),
        params,
        std_errors,
        loglikelihood,
        aic: 2.0 * k - 2.0 * loglikelihood,
        bic: k * n.ln() - 2.0 * loglikelihood,
        persistence,
        half_life: half_life(persistence),
        conditional_variance,
        next_variance,
        iterations: Iterations {
            simplex: estimate.simplex_iterations,
            newton: estimate.newton_steps,
        },
    })
}

/// The log-likelihood of percent `returns` under `spec` at given
/// `params`, with the start-up variance and bounds a fit would use.
pub fn loglikelihood(
    returns: &[f64],
    spec: GarchSpec,
    params: &Params,
) -> Result<f64, VolatilityError> {
    let sample = Sample::new(returns, spec)?;
    let x: Vec<f64> = spec
        .parameter_names()
        .iter()
        .map(|name| {
            params.get(name).ok_or_else(|| {
                VolatilityError::InvalidInput(format!("params has no {name} for this spec"))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(-sample.nll(&x))
}

/// `ln ½ / ln p` periods; `None` for `p ≥ 1`, 0 for `p ≤ 0`.
fn half_life(persistence: f64) -> Option<f64> {
    if persistence >= 1.0 || persistence.is_nan() {
        None
    } else if persistence <= 0.0 {
        Some(0.0)
    } else {
        Some(0.5f64.ln() / persistence.ln())
    }
}

impl GarchFit {
    /// arch's analytic forecast: `σ²_{T+1}` from the last return, then
    /// `σ²_{T+h} = ω + (α + γ/2 + β) σ²_{T+h−1}`, since a future shock's
    /// expected square is its variance and it is negative half the time.
    pub fn forecast(
        &self,
        horizon: usize,
        periods_per_year: f64,
    ) -> Result<VarianceForecast, VolatilityError> {
        if !(1..=MAX_HORIZON).contains(&horizon) {
            return Err(VolatilityError::BadHorizon(horizon));
        }
        if !(periods_per_year.is_finite() && periods_per_year > 0.0) {
            return Err(VolatilityError::InvalidInput(format!(
                "periods_per_year must be a positive number, got {periods_per_year}"
            )));
        }
        let omega = self.params.omega;
        let variance: Vec<f64> = std::iter::successors(Some(self.next_variance), |s| {
            Some(omega + self.persistence * s)
        })
        .take(horizon)
        .collect();
        let volatility: Vec<f64> = variance.iter().map(|s| s.sqrt() / 100.0).collect();
        let annualised = volatility
            .iter()
            .map(|v| v * periods_per_year.sqrt())
            .collect();
        Ok(VarianceForecast {
            variance,
            volatility,
            annualised,
            periods_per_year,
        })
    }

    /// The long-run variance `ω / (1 − persistence)` forecasts revert to;
    /// `None` when the persistence is 1.
    pub fn unconditional_variance(&self) -> Option<f64> {
        (self.persistence < 1.0).then(|| self.params.omega / (1.0 - self.persistence))
    }

    /// The variance of the period after a return `r` made at variance
    /// `variance`, with the parameters held fixed: the fitted filter carried
    /// forward through a new return without refitting.
    pub fn variance_after(&self, variance: f64, r: f64) -> f64 {
        let e = r - self.params.mu.unwrap_or(0.0);
        Recursion::of(&self.params).next(e, variance).max(0.0)
    }

    /// The variance of the period after `returns`, which follow the fitted
    /// ones, with the parameters held fixed.
    pub fn next_variance_after(&self, returns: &[f64]) -> f64 {
        returns
            .iter()
            .fold(self.next_variance, |s, &r| self.variance_after(s, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::volatility::{Distribution, Mean, Model};

    /// Deterministic GARCH(1,1) returns from a splitmix64 uniform stream
    /// turned normal by Box-Muller.
    fn simulated(n: usize, omega: f64, alpha: f64, beta: f64) -> Vec<f64> {
        let mut state = 42u64;
        let mut uniform = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut s = omega / (1.0 - alpha - beta);
        (0..n)
            .map(|_| {
                let (u, v) = (uniform().max(1e-300), uniform());
                let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                let r = s.sqrt() * z;
                s = omega + alpha * r * r + beta * s;
                r
            })
            .collect()
    }

    #[test]
    fn recovers_simulated_parameters() {
        let returns = simulated(4000, 0.05, 0.08, 0.9);
        let fit = fit_returns(
            &returns,
            GarchSpec::new(Model::Garch, Distribution::Normal, Mean::Zero),
        )
        .unwrap();
        let se = fit.std_errors.unwrap();
        assert!((fit.params.alpha - 0.08).abs() < 4.0 * se.alpha, "{fit:?}");
        assert!((fit.params.beta - 0.9).abs() < 4.0 * se.beta, "{fit:?}");
        assert!(fit.half_life.unwrap() > 10.0);
        assert_eq!(fit.conditional_variance.len(), 4000);
        assert!((fit.aic - (6.0 - 2.0 * fit.loglikelihood)).abs() < 1e-9);
    }

    #[test]
    fn forecasts_revert_to_the_long_run_variance() {
        let returns = simulated(1500, 0.05, 0.08, 0.9);
        let fit = fit_returns(&returns, GarchSpec::default()).unwrap();
        let f = fit.forecast(250, 252.0).unwrap();
        let long_run = fit.unconditional_variance().unwrap();
        assert_eq!(f.variance[0], fit.next_variance);
        assert!((f.variance[249] - long_run).abs() < (f.variance[0] - long_run).abs());
        assert!((f.annualised[3] - f.variance[3].sqrt() / 100.0 * 252f64.sqrt()).abs() < 1e-15);
        assert_eq!(fit.forecast(0, 252.0).unwrap_err().code(), "invalid_input");
        assert_eq!(
            fit.forecast(251, 252.0).unwrap_err().code(),
            "invalid_input"
        );
        assert_eq!(fit.forecast(5, 0.0).unwrap_err().code(), "invalid_input");
        let carried = fit.next_variance_after(&[1.0]);
        let p = fit.params;
        let e = 1.0 - p.mu.unwrap();
        assert!((carried - (p.omega + p.alpha * e * e + p.beta * fit.next_variance)).abs() < 1e-12);
    }

    #[test]
    fn refuses_what_it_cannot_fit() {
        let spec = GarchSpec::default();
        assert_eq!(
            fit(&[100.0; 99], spec).unwrap_err().code(),
            "insufficient_data"
        );
        assert_eq!(
            fit(&[100.0; 150], spec).unwrap_err().code(),
            "invalid_input"
        );
        let mut closes: Vec<f64> = (0..150).map(|i| 100.0 + (i % 7) as f64).collect();
        closes[20] = -1.0;
        assert_eq!(fit(&closes, spec).unwrap_err().code(), "invalid_input");
        closes[20] = f64::INFINITY;
        assert_eq!(fit(&closes, spec).unwrap_err().code(), "invalid_input");
    }

    #[test]
    fn never_panics_on_odd_but_finite_data() {
        let spec = GarchSpec::new(Model::Gjr, Distribution::StudentT, Mean::Constant);
        let spiky: Vec<f64> = (0..200)
            .map(|i| {
                if i == 150 {
                    1e6
                } else {
                    100.0 + (i % 3) as f64 * 1e-9
                }
            })
            .collect();
        let almost_flat: Vec<f64> = (0..200)
            .map(|i| if i == 100 { 100.01 } else { 100.0 })
            .collect();
        let tiny: Vec<f64> = (0..300)
            .map(|i| 1e-200 * (1.0 + 0.01 * ((i * 7919) % 13) as f64))
            .collect();
        for closes in [spiky, almost_flat, tiny] {
            if let Ok(fit) = fit(&closes, spec) {
                assert!(fit.loglikelihood.is_finite());
                assert!(fit.persistence <= 1.0 + 1e-12);
                let f = fit.forecast(10, 252.0).unwrap();
                assert!(f.variance.iter().all(|v| *v >= 0.0));
            }
        }
    }
}
