//! Losses of a variance forecast against the realised squared return, and
//! the Diebold-Mariano test of whether two forecasters' mean losses differ.
//!
//! A squared return is an unbiased but very noisy proxy of the day's
//! variance; QLIKE and MSE are the two losses that still rank forecasts as
//! the true variance would (Patton 2011). QLIKE punishes under-prediction,
//! the costly error for risk, far more than MSE, which is dominated by a
//! few extreme days.

use serde::Serialize;

use super::VolatilityError;

/// QLIKE, `ln h + r²/h`, of forecast `h` for realised `r²`. It differs from
/// the normalised form `r²/h − ln(r²/h) − 1` by `ln r² + 1`, which does not
/// depend on the forecast, so mean differences and Diebold-Mariano tests are
/// the same; unlike that form it stays finite on a day with no price change
/// (`r² = 0`). `h` must be positive.
pub fn qlike(realised: f64, forecast: f64) -> f64 {
    forecast.ln() + realised / forecast
}

/// `(r² − h)²`.
pub fn squared_error(realised: f64, forecast: f64) -> f64 {
    (realised - forecast).powi(2)
}

/// The Diebold-Mariano test of equal mean loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DieboldMariano {
    /// Mean of `loss_a − loss_b`: negative when `a` forecasts better.
    pub mean_difference: f64,
    /// `mean / √(long-run variance / n)`, asymptotically standard normal.
    pub statistic: f64,
    /// Two-sided, from the normal.
    pub p_value: f64,
    /// Newey-West lags used (`horizon − 1`).
    pub lags: usize,
    pub n: usize,
}

/// Diebold-Mariano on the loss series `a` and `b` of `horizon`-step-ahead
/// forecasts of the same periods. The long-run variance of the differences
/// is Newey-West's with `horizon − 1` lags (Bartlett weights), since
/// `h`-step forecast errors overlap for `h − 1` periods.
pub fn diebold_mariano(
    a: &[f64],
    b: &[f64],
    horizon: usize,
) -> Result<DieboldMariano, VolatilityError> {
    if a.len() != b.len() {
        return Err(VolatilityError::InvalidInput(format!(
            "the loss series differ in length ({} and {})",
            a.len(),
            b.len()
        )));
    }
    if horizon == 0 {
        return Err(VolatilityError::BadHorizon(horizon));
    }
    let n = a.len();
    if n < 2 || n <= horizon {
        return Err(VolatilityError::InsufficientData {
            what: "losses",
            needed: (horizon + 1).max(2),
            got: n,
        });
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if d.iter().any(|v| !v.is_finite()) {
        return Err(VolatilityError::InvalidInput(
            "the losses must be finite".into(),
        ));
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    let autocovariance = |k: usize| {
        d[k..]
            .iter()
            .zip(&d)
            .map(|(x, y)| (x - mean) * (y - mean))
            .sum::<f64>()
            / n as f64
    };
    let lags = horizon - 1;
    let long_run = (1..=lags).fold(autocovariance(0), |acc, k| {
        acc + 2.0 * (1.0 - k as f64 / (lags + 1) as f64) * autocovariance(k)
    });
    if !(long_run > 0.0 && long_run.is_finite()) {
        return Err(VolatilityError::InvalidInput(
            "the loss differences do not vary, so the test is undefined".into(),
        ));
    }
    let statistic = mean / (long_run / n as f64).sqrt();
    Ok(DieboldMariano {
        mean_difference: mean,
        statistic,
        p_value: erfc(statistic.abs() / std::f64::consts::SQRT_2),
        lags,
        n,
    })
}

/// The complementary error function, to about 1e-13 relative: the Taylor
/// series of erf below 2, the Laplace continued fraction above.
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        let x2 = x * x;
        let mut term = x;
        let mut sum = x;
        for k in 1..60 {
            term *= -x2 / k as f64;
            let add = term / (2 * k + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return 1.0 - sum * std::f64::consts::FRAC_2_SQRT_PI;
    }
    let mut fraction = x;
    for k in (1..=60).rev() {
        fraction = x + (k as f64 / 2.0) / fraction;
    }
    (-x * x).exp() / (fraction * std::f64::consts::PI.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        // Reference values from Python's math.erfc.
        for (x, expected) in [
            (0.1, 0.887_537_083_981_715_2),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_266),
            (3.0, 2.209_049_699_858_543_8e-5),
            (5.0, 1.537_459_794_428_035_1e-12),
            (-1.0, 1.842_700_792_949_715),
        ] {
            let got = erfc(x);
            assert!(
                (got - expected).abs() <= 1e-12 * expected,
                "erfc({x}) = {got}"
            );
        }
    }

    #[test]
    fn qlike_is_smallest_at_the_true_variance_and_finite_at_zero() {
        assert!(qlike(2.0, 2.0) < qlike(2.0, 1.9) && qlike(2.0, 2.0) < qlike(2.0, 2.1));
        assert!(qlike(0.0, 1.5).is_finite());
        assert_eq!(squared_error(3.0, 1.0), 4.0);
    }

    #[test]
    fn diebold_mariano_by_hand() {
        // d = [1, -1, 2, 0]: mean 0.5, γ0 = (0.25 + 2.25 + 2.25 + 0.25) / 4.
        let a = [2.0, 0.0, 3.0, 1.0];
        let b = [1.0; 4];
        let dm = diebold_mariano(&a, &b, 1).unwrap();
        assert!((dm.statistic - 0.5 / (1.25f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((dm.p_value - erfc(dm.statistic / std::f64::consts::SQRT_2)).abs() < 1e-15);
        // One Newey-West lag: γ1 = ((-1.5)(0.5) + (1.5)(-1.5) + (-0.5)(1.5)) / 4.
        let dm2 = diebold_mariano(&a, &b, 2).unwrap();
        let long_run = 1.25 + 2.0 * 0.5 * (-3.75 / 4.0);
        assert!((dm2.statistic - 0.5 / (long_run / 4.0f64).sqrt()).abs() < 1e-12);
        assert_eq!(dm2.lags, 1);
        assert!(diebold_mariano(&a, &a, 1).is_err());
        assert!(diebold_mariano(&a, &b[..3], 1).is_err());
    }
}
