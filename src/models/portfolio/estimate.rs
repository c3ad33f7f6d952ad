//! Return and risk estimates from aligned closes: simple returns, their
//! sample mean, and a covariance (sample, or Ledoit-Wolf shrinkage).

use ndarray::{Array1, Array2, Axis};

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
}
