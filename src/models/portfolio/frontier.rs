//! The mean-variance efficient frontier under per-asset bounds: portfolios
//! evenly spaced in expected return from the minimum-variance portfolio's
//! to the highest return the bounds allow, each the least-variance
//! portfolio reaching its return.

use ndarray::{Array1, Array2};
use serde::Serialize;

use super::solve::{self, SolveError};

/// One portfolio of the frontier; figures per period, like the returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontierPoint {
    pub expected_return: f64,
    pub volatility: f64,
    /// `(expected_return - risk_free) / volatility`, 0 when the volatility is.
    pub sharpe: f64,
    pub weights: Vec<f64>,
}

/// The frontier, the interior-point iterations it took in all, and the
/// solver's status (`Solved` unless a point was only `AlmostSolved`).
#[derive(Debug, Clone)]
pub struct Frontier {
    pub points: Vec<FrontierPoint>,
    pub iterations: u32,
    pub status: String,
}

impl Frontier {
    /// The point of highest Sharpe ratio (the first of equals).
    pub fn best_sharpe(&self) -> &FrontierPoint {
        self.points
            .iter()
            .reduce(|best, p| if p.sharpe > best.sharpe { p } else { best })
            .expect("a frontier has at least 2 points")
    }
}

/// The highest return `mean'w` with `1'w = 1` and `lo <= w <= hi`, and its
/// weights: everything at `lo`, the rest poured into the best assets in
/// turn up to `hi` (the LP's greedy solution).
pub fn max_return(mean: &Array1<f64>, (lo, hi): (f64, f64)) -> (f64, Vec<f64>) {
    let n = mean.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| mean[b].total_cmp(&mean[a]));
    let mut w = vec![lo; n];
    let mut left = 1.0 - lo * n as f64;
    for i in order {
        let add = (hi - lo).min(left).max(0.0);
        w[i] += add;
        left -= add;
    }
    (w.iter().zip(mean).map(|(w, m)| w * m).sum(), w)
}

/// `points` (>= 2) frontier portfolios of `mean` and `cov` within `bounds`,
/// lowest return first. When the bounds leave no room above the
/// minimum-variance return, every point is that portfolio.
pub fn efficient_frontier(
    cov: &Array2<f64>,
    mean: &Array1<f64>,
    risk_free: f64,
    bounds: (f64, f64),
    points: usize,
) -> Result<Frontier, SolveError> {
    let lowest = solve::min_variance(cov, bounds)?;
    let mut iterations = lowest.iterations;
    let mut status = lowest.status.clone();
    let start: f64 = weighted(mean, &lowest.weights);
    let (top, _) = max_return(mean, bounds);
    // A span within rounding of the returns' size is no span: the bounds
    // pin the portfolio.
    let size = mean.iter().fold(0.0_f64, |m, r| m.max(r.abs()));
    let span = if top - start > 1e-12 * size {
        top - start
    } else {
        0.0
    };
    let figures = |weights: Vec<f64>| {
        let w = Array1::from(weights.clone());
        let expected_return = w.dot(mean);
        let volatility = w.dot(&cov.dot(&w)).max(0.0).sqrt();
        let sharpe = if volatility > 0.0 {
            (expected_return - risk_free) / volatility
        } else {
            0.0
        };
        FrontierPoint {
            expected_return,
            volatility,
            sharpe,
            weights,
        }
    };
    let mut out = Vec::with_capacity(points);
    out.push(figures(lowest.weights.clone()));
    for k in 1..points {
        if span == 0.0 {
            out.push(figures(lowest.weights.clone()));
            continue;
        }
        // The last target is the top itself, which only the greedy corner
        // reaches: pulled in by 1e-9 of the span so the feasible set keeps
        // an interior for the interior-point method.
        let mut target = start + span * k as f64 / (points - 1) as f64;
        if k == points - 1 {
            target -= 1e-9 * span;
        }
        let s = solve::min_variance_for_return(cov, mean, target, bounds)?;
        iterations += s.iterations;
        if s.status != "Solved" {
            status = s.status;
        }
        out.push(figures(s.weights));
    }
    Ok(Frontier {
        points: out,
        iterations,
        status,
    })
}

fn weighted(mean: &Array1<f64>, w: &[f64]) -> f64 {
    w.iter().zip(mean).map(|(w, m)| w * m).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn three() -> (Array2<f64>, Array1<f64>) {
        (
            array![
                [0.04, 0.006, 0.01],
                [0.006, 0.09, 0.012],
                [0.01, 0.012, 0.16]
            ],
            array![0.08, 0.12, 0.10],
        )
    }

    #[test]
    fn max_return_fills_the_best_assets_up_to_their_bound() {
        let (_, mean) = three();
        let (r, w) = max_return(&mean, (0.0, 1.0));
        assert_eq!(w, [0.0, 1.0, 0.0]);
        assert!((r - 0.12).abs() < 1e-15);
        let (r, w) = max_return(&mean, (0.1, 0.5));
        for (got, want) in w.iter().zip([0.1, 0.5, 0.4]) {
            assert!((got - want).abs() < 1e-15, "{w:?}");
        }
        assert!((r - (0.008 + 0.06 + 0.04)).abs() < 1e-15);
    }

    #[test]
    fn the_frontier_runs_from_min_variance_to_max_return() {
        let (cov, mean) = three();
        let f = efficient_frontier(&cov, &mean, 0.0, (0.0, 1.0), 11).unwrap();
        assert_eq!(f.points.len(), 11);
        let min_var = solve::min_variance(&cov, (0.0, 1.0)).unwrap();
        assert_eq!(f.points[0].weights, min_var.weights);
        let last = f.points.last().unwrap();
        assert!((last.expected_return - 0.12).abs() < 1e-8, "{last:?}");
        assert!((last.weights[1] - 1.0).abs() < 1e-6, "{last:?}");
        let step = (0.12 - f.points[0].expected_return) / 10.0;
        for pair in f.points.windows(2) {
            // Evenly spaced returns, volatility rising with them.
            let gap = pair[1].expected_return - pair[0].expected_return;
            assert!((gap - step).abs() < 1e-8, "{gap} vs {step}");
            assert!(pair[1].volatility > pair[0].volatility);
        }
        for p in &f.points {
            assert!((p.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!((p.sharpe - p.expected_return / p.volatility).abs() < 1e-15);
        }
        // The best Sharpe on the frontier is within 1 % of the tangency
        // portfolio's (11 points are a coarse grid).
        let tangency = solve::max_sharpe(&cov, &mean, 0.0, (0.0, 1.0)).unwrap();
        let w = Array1::from(tangency.weights);
        let best = w.dot(&mean) / w.dot(&cov.dot(&w)).sqrt();
        assert!(f.best_sharpe().sharpe <= best + 1e-12);
        assert!(f.best_sharpe().sharpe > 0.99 * best, "{best}");
    }

    #[test]
    fn bounds_that_pin_the_portfolio_give_a_flat_frontier() {
        let (cov, mean) = three();
        let third = 1.0 / 3.0;
        let f = efficient_frontier(&cov, &mean, 0.0, (third, third), 4).unwrap();
        assert_eq!(f.points.len(), 4);
        for p in &f.points {
            assert_eq!(p, &f.points[0]);
        }
    }
}
