//! The exact solvers. Minimum variance (also for a target return) and
//! maximum Sharpe are convex QPs solved by Clarabel (interior point); risk
//! parity is the strictly convex log-barrier problem of Spinu, solved by
//! cyclical coordinate descent. The CVaR linear programme in `cvar.rs`
//! shares the Clarabel plumbing here.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use ndarray::{Array1, Array2};

/// What a solver returns: weights (summing to 1) and how it got there.
#[derive(Debug, Clone)]
pub struct Solved {
    pub weights: Vec<f64>,
    pub solver: &'static str,
    pub status: String,
    pub iterations: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    #[error("{0}")]
    Infeasible(String),
    #[error("{0}")]
    Failed(String),
}

/// Upper-triangular CSC of `scale * m` over the first `n` variables of a
/// problem with `vars` variables.
pub(super) fn triu(m: &Array2<f64>, scale: f64, vars: usize) -> CscMatrix<f64> {
    let n = m.nrows();
    let (mut rows, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..n {
        for i in 0..=j {
            let v = scale * m[[i, j]];
            if v != 0.0 {
                rows.push(i);
                cols.push(j);
                vals.push(v);
            }
        }
    }
    CscMatrix::new_from_triplets(vars, vars, rows, cols, vals)
}

/// Constraint rows as (row, col, value) triplets, with `b` and cone sizes.
pub(super) struct Constraints {
    rows: Vec<usize>,
    cols: Vec<usize>,
    vals: Vec<f64>,
    b: Vec<f64>,
}

impl Constraints {
    pub(super) fn new() -> Self {
        Constraints {
            rows: vec![],
            cols: vec![],
            vals: vec![],
            b: vec![],
        }
    }

    /// Adds `sum(coef * x[col]) (+ s) = rhs`; returns nothing.
    pub(super) fn row(&mut self, terms: &[(usize, f64)], rhs: f64) {
        let r = self.b.len();
        for &(c, v) in terms {
            if v != 0.0 {
                self.rows.push(r);
                self.cols.push(c);
                self.vals.push(v);
            }
        }
        self.b.push(rhs);
    }

    /// Adds `lo <= w_i <= hi` for the first `n` variables as inequality
    /// rows (`w_i <= 1` is implied by the budget and left out); returns
    /// how many rows it added.
    pub(super) fn weight_bounds(&mut self, n: usize, (lo, hi): (f64, f64)) -> usize {
        for i in 0..n {
            self.row(&[(i, -1.0)], -lo); // w_i >= lo
        }
        if hi >= 1.0 {
            return n;
        }
        for i in 0..n {
            self.row(&[(i, 1.0)], hi); // w_i <= hi
        }
        2 * n
    }

    pub(super) fn matrix(self, vars: usize) -> (CscMatrix<f64>, Vec<f64>) {
        let m = self.b.len();
        (
            CscMatrix::new_from_triplets(m, vars, self.rows, self.cols, self.vals),
            self.b,
        )
    }
}

/// Solves min ½x'Px + q'x s.t. Ax + s = b, s in `cones`; `what` names the
/// problem in a failure.
pub(super) fn run_clarabel(
    p: &CscMatrix<f64>,
    q: &[f64],
    a: &CscMatrix<f64>,
    b: &[f64],
    cones: &[SupportedConeT<f64>],
    what: &str,
) -> Result<(Vec<f64>, SolverStatus, u32), SolveError> {
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(1e-12)
        .tol_gap_rel(1e-12)
        .tol_feas(1e-12)
        .build()
        .map_err(|e| SolveError::Failed(format!("solver settings: {e:?}")))?;
    let mut solver = DefaultSolver::new(p, q, a, b, cones, settings)
        .map_err(|e| SolveError::Failed(format!("solver setup: {e:?}")))?;
    solver.solve();
    let status = solver.solution.status;
    match status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {
            Ok((solver.solution.x.clone(), status, solver.info.iterations))
        }
        SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => Err(
            SolveError::Infeasible("no portfolio satisfies the constraints".to_string()),
        ),
        other => Err(SolveError::Failed(format!(
            "the {what} solver stopped with status {other:?}"
        ))),
    }
}

/// Scale that brings the largest variance to 1: the optimum is unchanged
/// and the interior-point tolerances become meaningful for daily returns.
pub(super) fn unit_scale(cov: &Array2<f64>) -> f64 {
    let max = cov.diag().iter().cloned().fold(0.0, f64::max);
    if max > 0.0 && max.is_finite() {
        1.0 / max
    } else {
        1.0
    }
}

/// min w'Σw  s.t.  1'w = 1, lo <= w <= hi.
pub fn min_variance(cov: &Array2<f64>, bounds: (f64, f64)) -> Result<Solved, SolveError> {
    min_variance_with(cov, None, bounds)
}

/// min w'Σw  s.t.  μ'w >= target, 1'w = 1, lo <= w <= hi: a point of the
/// efficient frontier (the return constraint binds for any target above
/// the minimum-variance portfolio's return).
pub fn min_variance_for_return(
    cov: &Array2<f64>,
    mean: &Array1<f64>,
    target: f64,
    bounds: (f64, f64),
) -> Result<Solved, SolveError> {
    min_variance_with(cov, Some((mean, target)), bounds)
}

fn min_variance_with(
    cov: &Array2<f64>,
    target: Option<(&Array1<f64>, f64)>,
    bounds: (f64, f64),
) -> Result<Solved, SolveError> {
    let n = cov.nrows();
    let scale = unit_scale(cov);
    let p = triu(cov, 2.0 * scale, n);
    let mut c = Constraints::new();
    c.row(&(0..n).map(|i| (i, 1.0)).collect::<Vec<_>>(), 1.0);
    let bounded = c.weight_bounds(n, bounds);
    if let Some((mean, target)) = target {
        // Returns scaled like Σ keep the row of order one.
        let k = scale.sqrt();
        let terms: Vec<(usize, f64)> = (0..n).map(|i| (i, -mean[i] * k)).collect();
        c.row(&terms, -target * k); // μ'w >= target
    }
    let (a, b) = c.matrix(n);
    let inequalities = bounded + usize::from(target.is_some());
    let cones = [
        SupportedConeT::ZeroConeT(1),
        SupportedConeT::NonnegativeConeT(inequalities),
    ];
    let (x, status, iterations) = run_clarabel(&p, &vec![0.0; n], &a, &b, &cones, "QP")?;
    Ok(Solved {
        weights: normalise(x),
        solver: "clarabel",
        status: format!("{status:?}"),
        iterations,
    })
}

/// The tangency portfolio by the homogenised QP: min y'Σy s.t.
/// (μ - r_f)'y = 1, 1'y = κ, lo·κ <= y <= hi·κ, κ >= 0; then w = y / κ.
pub fn max_sharpe(
    cov: &Array2<f64>,
    mean: &Array1<f64>,
    risk_free: f64,
    bounds: (f64, f64),
) -> Result<Solved, SolveError> {
    let n = cov.nrows();
    let best = mean.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if best <= risk_free {
        return Err(SolveError::Infeasible(format!(
            "no asset has an expected return above the risk-free rate ({risk_free}); \
             the maximum-Sharpe portfolio does not exist"
        )));
    }
    let kappa = n;
    let vars = n + 1;
    let scale = unit_scale(cov);
    let p = triu(cov, 2.0 * scale, vars);
    let mut c = Constraints::new();
    // Excess returns scaled like Σ keeps y of order one.
    let excess: Vec<(usize, f64)> = (0..n)
        .map(|i| (i, (mean[i] - risk_free) * scale.sqrt()))
        .collect();
    c.row(&excess, 1.0);
    let mut budget: Vec<(usize, f64)> = (0..n).map(|i| (i, 1.0)).collect();
    budget.push((kappa, -1.0));
    c.row(&budget, 0.0);
    let (lo, hi) = bounds;
    for i in 0..n {
        c.row(&[(i, -1.0), (kappa, lo)], 0.0); // y_i >= lo κ
    }
    let upper = hi < 1.0;
    if upper {
        for i in 0..n {
            c.row(&[(i, 1.0), (kappa, -hi)], 0.0); // y_i <= hi κ
        }
    }
    c.row(&[(kappa, -1.0)], 0.0); // κ >= 0
    let (a, b) = c.matrix(vars);
    let inequalities = n + if upper { n } else { 0 } + 1;
    let cones = [
        SupportedConeT::ZeroConeT(2),
        SupportedConeT::NonnegativeConeT(inequalities),
    ];
    let (x, status, iterations) = run_clarabel(&p, &vec![0.0; vars], &a, &b, &cones, "QP")?;
    let k = x[kappa];
    if !(k.is_finite() && k > 0.0) {
        return Err(SolveError::Failed(format!(
            "degenerate tangency solution (κ = {k})"
        )));
    }
    Ok(Solved {
        weights: normalise(x[..n].iter().map(|y| y / k).collect()),
        solver: "clarabel",
        status: format!("{status:?}"),
        iterations,
    })
}

/// Weights whose risk contributions w_i(Σw)_i / w'Σw equal `budget`, from
/// min ½y'Σy - Σ b_i ln y_i (strictly convex; its minimiser, normalised, is
/// the unique long-only solution).
pub fn risk_parity(
    cov: &Array2<f64>,
    budget: &[f64],
    tolerance: f64,
) -> Result<Solved, SolveError> {
    const MAX_SWEEPS: u32 = 100_000;
    let n = cov.nrows();
    let scale = unit_scale(cov);
    let s = cov * scale;
    if s.diag()
        .iter()
        .any(|&d| d.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
    {
        return Err(SolveError::Infeasible(
            "an asset has zero variance, so its risk contribution cannot be set".to_string(),
        ));
    }
    let mut y: Vec<f64> = (0..n).map(|i| (budget[i] / s[[i, i]]).sqrt()).collect();
    // Σy kept up to date so each coordinate step costs O(n).
    let mut sy: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| s[[i, j]] * y[j]).sum())
        .collect();
    for sweep in 1..=MAX_SWEEPS {
        for i in 0..n {
            let sii = s[[i, i]];
            let c = sy[i] - sii * y[i];
            let new = (-c + (c * c + 4.0 * sii * budget[i]).sqrt()) / (2.0 * sii);
            let delta = new - y[i];
            if delta != 0.0 {
                for j in 0..n {
                    sy[j] += s[[j, i]] * delta;
                }
                y[i] = new;
            }
        }
        // At the optimum y_i (Σy)_i = b_i for every i.
        let total: f64 = y.iter().zip(&sy).map(|(a, b)| a * b).sum();
        let worst = (0..n)
            .map(|i| ((y[i] * sy[i] / total) - budget[i]).abs() / budget[i])
            .fold(0.0, f64::max);
        if worst < tolerance {
            return Ok(Solved {
                weights: normalise(y),
                solver: "coordinate_descent",
                status: "Solved".to_string(),
                iterations: sweep,
            });
        }
        if !worst.is_finite() {
            break;
        }
    }
    Err(SolveError::Failed(
        "risk parity did not converge; the covariance may be singular".to_string(),
    ))
}

/// Clears numerical dust (below 1e-10, including tiny negatives from the
/// interior-point method) and rescales to sum to 1.
pub fn normalise(mut w: Vec<f64>) -> Vec<f64> {
    for v in w.iter_mut() {
        if v.is_nan() || *v < 1e-10 {
            *v = 0.0;
        }
    }
    let total: f64 = w.iter().sum();
    if total > 0.0 {
        for v in w.iter_mut() {
            *v /= total;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn three_assets() -> (Array2<f64>, Array1<f64>) {
        (
            array![
                [0.04, 0.006, 0.01],
                [0.006, 0.09, 0.012],
                [0.01, 0.012, 0.16]
            ],
            array![0.08, 0.12, 0.10],
        )
    }

    fn close(a: &[f64], b: &[f64], tol: f64) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn min_variance_of_a_known_case() {
        let (cov, _) = three_assets();
        let s = min_variance(&cov, (0.0, 1.0)).unwrap();
        close(&s.weights, &[0.6312, 0.2527, 0.1161], 1e-4);
    }

    #[test]
    fn max_sharpe_of_a_known_case() {
        let (cov, mean) = three_assets();
        let s = max_sharpe(&cov, &mean, 0.0, (0.0, 1.0)).unwrap();
        close(&s.weights, &[0.5191, 0.3509, 0.1301], 1e-4);
    }

    #[test]
    fn upper_bounds_bind() {
        let (cov, mean) = three_assets();
        let s = min_variance(&cov, (0.0, 0.5)).unwrap();
        assert!((s.weights[0] - 0.5).abs() < 1e-7, "{:?}", s.weights);
        let s = max_sharpe(&cov, &mean, 0.0, (0.2, 0.45)).unwrap();
        assert!(
            s.weights
                .iter()
                .all(|w| (0.2 - 1e-7..=0.45 + 1e-7).contains(w)),
            "{:?}",
            s.weights
        );
        assert!((s.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn no_positive_excess_return_means_no_tangency_portfolio() {
        let (cov, mean) = three_assets();
        let err = max_sharpe(&cov, &mean, 0.2, (0.0, 1.0)).unwrap_err();
        assert!(matches!(err, SolveError::Infeasible(_)));
    }

    #[test]
    fn risk_parity_equalises_contributions() {
        let (cov, _) = three_assets();
        let s = risk_parity(&cov, &[1.0 / 3.0; 3], 1e-12).unwrap();
        let w = Array1::from(s.weights.clone());
        let sw = cov.dot(&w);
        let var = w.dot(&sw);
        for i in 0..3 {
            assert!((w[i] * sw[i] / var - 1.0 / 3.0).abs() < 1e-10);
        }
        let budget = [0.5, 0.3, 0.2];
        let s = risk_parity(&cov, &budget, 1e-12).unwrap();
        let w = Array1::from(s.weights);
        let sw = cov.dot(&w);
        let var = w.dot(&sw);
        for i in 0..3 {
            assert!((w[i] * sw[i] / var - budget[i]).abs() < 1e-10);
        }
    }

    #[test]
    fn normalise_clears_dust() {
        assert_eq!(
            normalise(vec![0.5, -1e-12, 1e-11, 0.5]),
            [0.5, 0.0, 0.0, 0.5]
        );
    }
}
