//! Naive variance forecasts that a GARCH model has to beat to be worth its
//! parameters: last month's realised variance, and RiskMetrics' EWMA.
//! Both treat returns as mean zero: at a daily horizon the drift is noise
//! next to the variance.

use super::VolatilityError;

/// RiskMetrics' (1996) daily decay.
pub const RISKMETRICS_LAMBDA: f64 = 0.94;

/// A trading month, the realised-variance window.
pub const REALISED_WINDOW: usize = 21;

/// The mean square of `recent` percent returns, as the forecast of the next
/// period's variance; `None` for no returns.
pub fn realised_variance(recent: &[f64]) -> Option<f64> {
    (!recent.is_empty()).then(|| recent.iter().map(|r| r * r).sum::<f64>() / recent.len() as f64)
}

/// RiskMetrics' exponentially weighted variance,
/// `σ²ₜ₊₁ = λ σ²ₜ + (1 − λ) r²ₜ`, holding the forecast for the next period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    lambda: f64,
    variance: f64,
}

impl Ewma {
    /// An average with decay `lambda` in (0, 1), starting at `seed`.
    pub fn new(lambda: f64, seed: f64) -> Result<Self, VolatilityError> {
        if !(lambda > 0.0 && lambda < 1.0) {
            return Err(VolatilityError::InvalidInput(format!(
                "the EWMA decay must be between 0 and 1, got {lambda}"
            )));
        }
        if !(seed.is_finite() && seed >= 0.0) {
            return Err(VolatilityError::InvalidInput(format!(
                "the EWMA seed variance must be finite and not negative, got {seed}"
            )));
        }
        Ok(Ewma {
            lambda,
            variance: seed,
        })
    }

    /// The average after `returns`: seeded with the realised variance of the
    /// first [`REALISED_WINDOW`] returns (so it starts from data, not from an
    /// arbitrary level, and looks no further ahead than that month), then
    /// updated with each later one. The seed's weight after `t` updates is
    /// `λᵗ`, under 1 % after 75 periods at 0.94.
    pub fn seeded(returns: &[f64], lambda: f64) -> Result<Self, VolatilityError> {
        let (seed, rest) =
            returns
                .split_at_checked(REALISED_WINDOW)
                .ok_or(VolatilityError::InsufficientData {
                    what: "returns to seed the EWMA",
                    needed: REALISED_WINDOW,
                    got: returns.len(),
                })?;
        let mut ewma = Ewma::new(lambda, realised_variance(seed).unwrap_or(0.0))?;
        for &r in rest {
            ewma.update(r);
        }
        Ok(ewma)
    }

    /// The forecast of the next period's variance.
    pub fn variance(&self) -> f64 {
        self.variance
    }

    /// Takes in the return of the period just forecast.
    pub fn update(&mut self, r: f64) {
        self.variance = self.lambda * self.variance + (1.0 - self.lambda) * r * r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realised_variance_is_the_mean_square() {
        assert_eq!(realised_variance(&[1.0, -2.0, 3.0]), Some(14.0 / 3.0));
        assert_eq!(realised_variance(&[]), None);
    }

    #[test]
    fn ewma_follows_the_riskmetrics_recursion() {
        let mut returns = vec![1.0; REALISED_WINDOW];
        returns.push(2.0);
        let ewma = Ewma::seeded(&returns, RISKMETRICS_LAMBDA).unwrap();
        assert!((ewma.variance() - (0.94 + 0.06 * 4.0)).abs() < 1e-12);
        assert!(Ewma::seeded(&returns[..5], 0.94).is_err());
        assert!(Ewma::new(1.0, 1.0).is_err() && Ewma::new(0.9, f64::NAN).is_err());
    }
}
