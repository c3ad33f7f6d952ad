//! Filtered historical simulation (Barone-Adesi et al.): the portfolio's
//! past returns standardised by a volatility model, `zⱼ = (rⱼ − μ) / σⱼ`,
//! then rescaled by the model's forecast for the days ahead. The shocks
//! keep their empirical shape (fat tails, skew); the scale is today's.
//!
//! The volatility model is a GARCH(1,1) with normal quasi-likelihood and a
//! constant mean, fitted to the portfolio's percent returns by
//! [`volatility::fit_returns`] (arch's defaults); when that fit fails, or
//! gives a variance that is not a positive number, RiskMetrics' EWMA
//! (`λ = 0.94`, zero mean) stands in and the answer says why.

use ndarray::Array2;
use serde::Serialize;

use crate::models::volatility::baselines::{
    realised_variance, Ewma, REALISED_WINDOW, RISKMETRICS_LAMBDA,
};
use crate::models::volatility::{self, GarchFit, GarchSpec, Params};

/// Which volatility model filtered the returns.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VolatilityModel {
    /// `garch` (GARCH(1,1), normal, constant mean) or `ewma` (RiskMetrics).
    pub model: &'static str,
    /// The GARCH parameters (percent returns: `mu` in percent, `omega` in
    /// squared percent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Params>,
    /// The EWMA decay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// Why the GARCH fit was not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// Returns the model was fitted on (GARCH) or seeded from (EWMA).
    pub fitted_on: usize,
}

#[derive(Debug, Clone)]
enum Recursion {
    Garch(Box<GarchFit>),
    Ewma(Ewma),
}

/// A volatility filter run over a return series: the mean, each return's
/// conditional deviation (from the returns before it), and the state to
/// carry it forward.
#[derive(Debug, Clone)]
pub struct Filter {
    pub mean: f64,
    /// `σⱼ` of each return so far, as a fraction.
    pub sigma: Vec<f64>,
    /// `σ²` of the next, unseen day (fraction squared).
    next_variance: f64,
    recursion: Recursion,
    pub model: VolatilityModel,
}

impl Filter {
    /// GARCH(1,1) fitted to `returns` (fractions), else EWMA.
    pub fn fit(returns: &[f64]) -> Filter {
        match Filter::garch(returns) {
            Ok(f) => f,
            Err(reason) => {
                let mut f = Filter::ewma(returns);
                f.model.fallback_reason = Some(reason);
                f
            }
        }
    }

    /// The GARCH(1,1) filter of `returns`, or why there is none.
    pub fn garch(returns: &[f64]) -> Result<Filter, String> {
        let percent: Vec<f64> = returns.iter().map(|r| 100.0 * r).collect();
        let fit = volatility::fit_returns(&percent, GarchSpec::default())
            .map_err(|e| format!("the GARCH(1,1) fit failed: {e}"))?;
        let sigma: Vec<f64> = fit
            .conditional_variance
            .iter()
            .map(|s| s.sqrt() / 100.0)
            .collect();
        let next_variance = fit.next_variance / 1e4;
        if !sigma
            .iter()
            .chain(std::iter::once(&next_variance))
            .all(|s| s.is_finite() && *s > 0.0)
        {
            return Err(
                "the GARCH(1,1) fit gave a conditional variance that is not positive".into(),
            );
        }
        Ok(Filter {
            mean: fit.params.mu.unwrap_or(0.0) / 100.0,
            sigma,
            next_variance,
            model: VolatilityModel {
                model: "garch",
                params: Some(fit.params),
                lambda: None,
                fallback_reason: None,
                fitted_on: returns.len(),
            },
            recursion: Recursion::Garch(Box::new(fit)),
        })
    }

    /// RiskMetrics' EWMA with mean zero: `σ²₀` is the mean square of the
    /// first [`REALISED_WINDOW`] returns (all of them when fewer), then
    /// `σ²ⱼ₊₁ = λ σ²ⱼ + (1 − λ) rⱼ²`.
    pub fn ewma(returns: &[f64]) -> Filter {
        let seed_window = &returns[..returns.len().min(REALISED_WINDOW)];
        let seed = realised_variance(seed_window).unwrap_or(0.0);
        let mut ewma =
            Ewma::new(RISKMETRICS_LAMBDA, seed).expect("a fixed decay and a square mean");
        let mut sigma = Vec::with_capacity(returns.len());
        for &r in returns {
            sigma.push(ewma.variance().sqrt());
            ewma.update(r);
        }
        Filter {
            mean: 0.0,
            sigma,
            next_variance: ewma.variance(),
            model: VolatilityModel {
                model: "ewma",
                params: None,
                lambda: Some(RISKMETRICS_LAMBDA),
                fallback_reason: None,
                fitted_on: seed_window.len(),
            },
            recursion: Recursion::Ewma(ewma),
        }
    }

    /// Carries the filter through `later` returns with its parameters held
    /// (no refit): each gets the deviation forecast the day before it.
    pub fn extend(&mut self, later: &[f64]) {
        for &r in later {
            self.sigma.push(self.next_variance.sqrt());
            self.next_variance = match &mut self.recursion {
                Recursion::Garch(fit) => {
                    fit.variance_after(self.next_variance * 1e4, 100.0 * r) / 1e4
                }
                Recursion::Ewma(ewma) => {
                    ewma.update(r);
                    ewma.variance()
                }
            };
        }
    }

    /// The deviation of the sum of the next `horizon` days' returns:
    /// `√(Σₖ σ²_{T+k})` from GARCH's analytic `k`-step forecasts
    /// (`σ²_{T+k} = ω + (α + β) σ²_{T+k−1}`), or `√h σ_{T+1}` for EWMA,
    /// whose forecast is flat.
    pub fn horizon_sigma(&self, horizon: usize) -> f64 {
        match &self.recursion {
            Recursion::Garch(fit) => {
                let omega = fit.params.omega / 1e4;
                std::iter::successors(Some(self.next_variance), |s| {
                    Some(omega + fit.persistence * s)
                })
                .take(horizon)
                .sum::<f64>()
                .sqrt()
            }
            Recursion::Ewma(_) => (horizon as f64 * self.next_variance).sqrt(),
        }
    }
}

/// Filtered scenarios for `horizon` days, per asset and unit of weight:
/// with `kⱼ = σ_h / σⱼ` (`σ_h` the horizon deviation forecast),
/// `per_unit[j, i] = kⱼ rⱼᵢ + (h − kⱼ) μ`, so that the portfolio's scenario
/// `Σᵢ wᵢ per_unit[j, i] = h μ + kⱼ (r_pⱼ − μ) = h μ + σ_h zⱼ` (weights sum
/// to one): the standardised shock rescaled, the mean shared by weight.
pub fn scenarios(
    returns: &Array2<f64>,
    mean: f64,
    sigma: &[f64],
    horizon_sigma: f64,
    horizon: usize,
) -> Array2<f64> {
    let h = horizon as f64;
    let mut out = returns.clone();
    for (mut row, s) in out.rows_mut().into_iter().zip(sigma) {
        let k = horizon_sigma / s;
        row.mapv_inplace(|r| k * r + (h - k) * mean);
    }
    out
}

/// One-day filtered VaR at each level for day `t` from the standardised
/// shocks `z` of the window before it: `−(μ + σₜ z₍ₖ₎)`, `z₍ₖ₎` the `k`-th
/// smallest shock (a positive scale keeps the order).
pub fn one_day_var(sorted_shocks: &[f64], mean: f64, sigma: f64, level: f64) -> f64 {
    let k = super::var::tail_count(sorted_shocks.len(), level);
    -(mean + sigma * sorted_shocks[k - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                0.01 * ((i as f64 * 0.7).sin() + 0.3 * (i as f64 * 2.3).cos())
                    * (1.0 + (i / 50 % 2) as f64)
            })
            .collect()
    }

    #[test]
    fn ewma_follows_riskmetrics_and_carries_forward() {
        let r = series(60);
        let whole = Filter::ewma(&r);
        let seed = r[..21].iter().map(|x| x * x).sum::<f64>() / 21.0;
        assert_eq!(whole.sigma[0], seed.sqrt());
        let s1 = 0.94 * seed + 0.06 * r[0] * r[0];
        assert!((whole.sigma[1] - s1.sqrt()).abs() < 1e-15);
        let mut part = Filter::ewma(&r[..40]);
        part.extend(&r[40..]);
        // The seed month is the same, so carrying forward is filtering all.
        assert_eq!(part.sigma, whole.sigma);
        assert!((part.horizon_sigma(4) - 2.0 * whole.next_variance.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn filtered_scenarios_rescale_the_shocks() {
        let r = Array2::from_shape_vec((2, 2), vec![0.01, -0.02, 0.03, 0.0]).unwrap();
        let per_unit = scenarios(&r, 0.001, &[0.01, 0.02], 0.015, 1);
        let w = [0.25, 0.75];
        for j in 0..2 {
            let rp = w[0] * r[[j, 0]] + w[1] * r[[j, 1]];
            let z = (rp - 0.001) / [0.01, 0.02][j];
            let total = w[0] * per_unit[[j, 0]] + w[1] * per_unit[[j, 1]];
            assert!((total - (0.001 + 0.015 * z)).abs() < 1e-15);
        }
    }

    #[test]
    fn a_garch_fit_on_too_few_returns_falls_back_to_ewma() {
        let f = Filter::fit(&series(50));
        assert_eq!(f.model.model, "ewma");
        assert!(f
            .model
            .fallback_reason
            .as_deref()
            .unwrap()
            .contains("GARCH"));
        let g = Filter::fit(&series(600));
        assert_eq!(g.model.model, "garch", "{:?}", g.model.fallback_reason);
        assert_eq!(g.sigma.len(), 600);
    }
}
