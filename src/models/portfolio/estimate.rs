//! Return and risk estimates from aligned closes: simple returns, their
//! sample mean, and a covariance (sample, Ledoit-Wolf shrinkage, or the
//! sample correlation scaled by GARCH(1,1) volatility forecasts).

use ndarray::{Array1, Array2, Axis};

use crate::models::volatility::{self, GarchSpec, VolatilityError};

/// Simple returns of the last `len` closes of every series, one column per
/// asset, oldest row first.
pub fn simple_returns(series: &[&[f64]], len: usize) -> Array2<f64> {
    let rows = len.saturating_sub(1);
    let mut r = Array2::<f64>::zeros((rows, series.len()));
    for (j, closes) in series.iter().enumerate() {
        let tail = &closes[closes.len() - len..];
        for (i, pair) in tail.windows(2).enumerate() {
            r[[i, j]] = pair[1] / pair[0] - 1.0;
        }
    }
    r
}

pub fn mean(returns: &Array2<f64>) -> Array1<f64> {
    returns
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(returns.ncols()))
}

fn centred(returns: &Array2<f64>) -> Array2<f64> {
    returns - &mean(returns)
}

/// Sample covariance with `T - 1` in the denominator (as pandas and numpy do).
pub fn sample_covariance(returns: &Array2<f64>) -> Array2<f64> {
    let x = centred(returns);
    let t = returns.nrows() as f64;
    x.t().dot(&x) / (t - 1.0).max(1.0)
}

/// F with F'F the sample covariance: the centred returns over sqrt(T - 1).
pub fn sample_factor(returns: &Array2<f64>) -> Array2<f64> {
    let t = returns.nrows() as f64;
    centred(returns) / (t - 1.0).max(1.0).sqrt()
}

/// Ledoit-Wolf shrinkage towards a scaled identity, computed exactly as
/// scikit-learn's `LedoitWolf` (centred data, empirical covariance divided
/// by `T`). Returns the covariance and the shrinkage intensity.
pub fn ledoit_wolf(returns: &Array2<f64>) -> (Array2<f64>, f64) {
    let x = centred(returns);
    let (t, p) = (x.nrows() as f64, x.ncols() as f64);
    let emp = x.t().dot(&x) / t;
    let mu = emp.diag().sum() / p;
    let x2 = x.mapv(|v| v * v);
    let beta_sum = x2.t().dot(&x2).sum();
    let delta_sum = x.t().dot(&x).mapv(|v| v * v).sum() / (t * t);
    let beta = (beta_sum / t - delta_sum) / (p * t);
    let delta = (delta_sum - 2.0 * mu * emp.diag().sum() + p * mu * mu) / p;
    let beta = beta.min(delta);
    let shrinkage = if beta <= 0.0 || delta <= 0.0 {
        0.0
    } else {
        beta / delta
    };
    let mut shrunk = emp * (1.0 - shrinkage);
    for i in 0..shrunk.nrows() {
        shrunk[[i, i]] += shrinkage * mu;
    }
    (shrunk, shrinkage)
}

/// Sample correlation of the return columns. An asset whose returns do not
/// vary has no correlation to speak of: it is taken as uncorrelated with
/// the others (1 on its diagonal, 0 elsewhere), which keeps the matrix
/// positive semi-definite.
pub fn sample_correlation(returns: &Array2<f64>) -> Array2<f64> {
    let cov = sample_covariance(returns);
    let sd: Vec<f64> = cov.diag().iter().map(|v| v.max(0.0).sqrt()).collect();
    Array2::from_shape_fn(cov.dim(), |(i, j)| {
        // From the upper triangle only, so the matrix is exactly symmetric.
        let (i, j) = (i.min(j), i.max(j));
        if i == j {
            1.0
        } else if sd[i] > 0.0 && sd[j] > 0.0 {
            (cov[[i, j]] / (sd[i] * sd[j])).clamp(-1.0, 1.0)
        } else {
            0.0
        }
    })
}

/// `D R D`: the sample correlation `R` of `returns` with the volatilities
/// `vols` (one per column, same units as the returns) on the diagonal of
/// `D`. Positive semi-definite whenever `R` is, for any volatilities.
pub fn scaled_correlation(returns: &Array2<f64>, vols: &[f64]) -> Array2<f64> {
    let r = sample_correlation(returns);
    Array2::from_shape_fn(r.dim(), |(i, j)| (vols[i] * vols[j]) * r[[i, j]])
}

/// The one-period-ahead volatility of the next simple return after
/// `closes` (oldest first), as a fraction per period: a GARCH(1,1) with
/// normal shocks and a constant mean ([`GarchSpec::default`]) fitted to
/// the closes' percent returns, its forecast variance (squared percent)
/// divided by 1e4. Needs [`volatility::MIN_CLOSES`] closes.
pub fn garch_volatility(closes: &[f64]) -> Result<f64, VolatilityError> {
    let fit = volatility::fit(closes, GarchSpec::default())?;
    let variance = fit.forecast(1, volatility::TRADING_DAYS)?.variance[0] / 1e4;
    if variance.is_finite() && variance > 0.0 {
        Ok(variance.sqrt())
    } else {
        Err(VolatilityError::InvalidInput(format!(
            "the forecast variance is {variance}, not a positive number"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn returns_use_the_most_recent_common_window() {
        let a = [1.0, 2.0, 4.0, 2.0];
        let b = [10.0, 11.0, 11.0];
        let r = simple_returns(&[&a, &b], 3);
        let expected = array![[1.0, 0.1], [-0.5, 0.0]];
        assert!((r - expected).iter().all(|d| d.abs() < 1e-15));
    }

    #[test]
    fn sample_covariance_matches_the_textbook_formula() {
        let r = array![[0.01, 0.02], [0.03, -0.01], [-0.02, 0.00]];
        let c = sample_covariance(&r);
        // var(x) with ddof 1: mean 0.00667, deviations .00333, .02333, -.02667
        let var0 = (0.01f64 / 3.0).powi(2) + (0.07f64 / 3.0).powi(2) + (0.08f64 / 3.0).powi(2);
        assert!((c[[0, 0]] - var0 / 2.0).abs() < 1e-15);
        assert_eq!(c[[0, 1]], c[[1, 0]]);
    }

    #[test]
    fn shrinkage_stays_between_zero_and_one_and_keeps_the_trace() {
        let r = array![
            [0.01, 0.02, 0.0],
            [0.03, -0.01, 0.01],
            [-0.02, 0.0, 0.02],
            [0.0, 0.01, -0.01]
        ];
        let (c, s) = ledoit_wolf(&r);
        assert!((0.0..=1.0).contains(&s), "{s}");
        let x = &r - &mean(&r);
        let emp = x.t().dot(&x) / 4.0;
        assert!((c.diag().sum() - emp.diag().sum()).abs() < 1e-15);
    }

    #[test]
    fn correlation_has_a_unit_diagonal_and_ignores_scale() {
        let r = array![[0.01, 0.02, 0.0], [0.03, -0.01, 0.0], [-0.02, 0.0, 0.0]];
        let c = sample_correlation(&r);
        let cov = sample_covariance(&r);
        let expected = cov[[0, 1]] / (cov[[0, 0]] * cov[[1, 1]]).sqrt();
        assert!((c[[0, 1]] - expected).abs() < 1e-15 && c[[0, 1]] == c[[1, 0]]);
        assert_eq!(c.diag().to_vec(), [1.0, 1.0, 1.0]);
        // The third asset does not move: uncorrelated, not NaN.
        assert_eq!((c[[0, 2]], c[[2, 1]]), (0.0, 0.0));
        let scaled = scaled_correlation(&r, &[0.1, 0.2, 0.3]);
        assert!((scaled[[0, 1]] - 0.02 * expected).abs() < 1e-15);
        assert!((scaled[[2, 2]] - 0.09).abs() < 1e-15);
    }
}
