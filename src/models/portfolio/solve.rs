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
/// problem with `vars` variables, written column by column (the form
/// Clarabel takes, with no triplets to sort).
pub(super) fn triu(m: &Array2<f64>, scale: f64, vars: usize) -> CscMatrix<f64> {
    let n = m.nrows();
    let mut colptr = Vec::with_capacity(vars + 1);
    let mut rowval = Vec::with_capacity(n * (n + 1) / 2);
    let mut nzval = Vec::with_capacity(n * (n + 1) / 2);
    colptr.push(0);
    for j in 0..n {
        for i in 0..=j {
            let v = scale * m[[i, j]];
            if v != 0.0 {
                rowval.push(i);
                nzval.push(v);
            }
        }
        colptr.push(rowval.len());
    }
    colptr.resize(vars + 1, rowval.len());
    CscMatrix::new(vars, vars, colptr, rowval, nzval)
}

/// `scale` times the identity on variables `from..vars` of `vars`, as an
/// upper-triangular CSC.
fn identity_on(from: usize, vars: usize, scale: f64) -> CscMatrix<f64> {
    let colptr = (0..=vars).map(|j| j.saturating_sub(from)).collect();
    CscMatrix::new(
        vars,
        vars,
        colptr,
        (from..vars).collect(),
        vec![scale; vars - from],
    )
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

    /// The rows as a CSC matrix over `vars` variables. Rows were added in
    /// order, so a stable bucketing by column leaves each column's rows
    /// sorted: linear in the entries (a factor-form problem has hundreds of
    /// thousands). Repeated entries are summed.
    pub(super) fn matrix(self, vars: usize) -> (CscMatrix<f64>, Vec<f64>) {
        let m = self.b.len();
        let mut colptr = vec![0usize; vars + 1];
        for &c in &self.cols {
            colptr[c + 1] += 1;
        }
        for j in 0..vars {
            colptr[j + 1] += colptr[j];
        }
        let mut next = colptr.clone();
        let mut rowval = vec![0usize; self.vals.len()];
        let mut nzval = vec![0.0; self.vals.len()];
        for ((&r, &c), &v) in self.rows.iter().zip(&self.cols).zip(&self.vals) {
            rowval[next[c]] = r;
            nzval[next[c]] = v;
            next[c] += 1;
        }
        // Sum an entry given twice in one row (adjacent after bucketing).
        let (mut packed_rows, mut packed_vals) = (Vec::with_capacity(rowval.len()), Vec::new());
        packed_vals.reserve(nzval.len());
        let mut packed_ptr = Vec::with_capacity(vars + 1);
        packed_ptr.push(0);
        for j in 0..vars {
            let start = packed_rows.len();
            for k in colptr[j]..colptr[j + 1] {
                if packed_rows.len() > start && packed_rows.last() == Some(&rowval[k]) {
                    *packed_vals.last_mut().expect("an entry") += nzval[k];
                } else {
                    packed_rows.push(rowval[k]);
                    packed_vals.push(nzval[k]);
                }
            }
            packed_ptr.push(packed_rows.len());
        }
        (
            CscMatrix::new(m, vars, packed_ptr, packed_rows, packed_vals),
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
        // The default LDL method picks QDLDL for sparse systems and faer's
        // supernodal factorisation for dense ones (many assets); one
        // thread, as a solve runs on a blocking worker beside others.
        .max_threads(1)
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

/// How the variance w'Σw is put to the solver.
#[derive(Debug, Clone, Copy)]
pub enum Risk<'a> {
    /// Σ itself: P = 2Σ, an n x n dense block.
    Dense(&'a Array2<f64>),
    /// Σ = F'F, with `factor` F (k x n; the centred returns over
    /// sqrt(T - 1) for the sample covariance) and `cov` Σ for scaling:
    /// k more variables z = Fw, k equality rows, P = 2I on z.
    Factor {
        cov: &'a Array2<f64>,
        factor: &'a Array2<f64>,
    },
}

impl Risk<'_> {
    fn cov(&self) -> &Array2<f64> {
        match self {
            Risk::Dense(cov) | Risk::Factor { cov, .. } => cov,
        }
    }

    /// Variables the form adds after the problem's `lead` own.
    fn extra(&self) -> usize {
        match self {
            Risk::Dense(_) => 0,
            Risk::Factor { factor, .. } => factor.nrows(),
        }
    }

    /// P of `scale * x[..n]'Σx[..n]` over `lead + extra` variables.
    fn objective(&self, scale: f64, lead: usize) -> CscMatrix<f64> {
        let vars = lead + self.extra();
        match self {
            Risk::Dense(cov) => triu(cov, 2.0 * scale, vars),
            Risk::Factor { .. } => identity_on(lead, vars, 2.0),
        }
    }

    /// The rows z = sqrt(scale) F x[..n] (none for the dense form);
    /// returns how many equality rows it added.
    fn link(&self, c: &mut Constraints, scale: f64, lead: usize) -> usize {
        let Risk::Factor { factor, .. } = self else {
            return 0;
        };
        let k = scale.sqrt();
        let mut terms = Vec::with_capacity(factor.ncols() + 1);
        for (t, row) in factor.rows().into_iter().enumerate() {
            terms.clear();
            terms.extend(row.iter().enumerate().map(|(i, f)| (i, k * f)));
            terms.push((lead + t, -1.0));
            c.row(&terms, 0.0);
        }
        factor.nrows()
    }
}

/// The form that solves faster for `assets` and `observations` returns.
/// With more returns than assets the dense form is: the factor form's k
/// rows of n entries make the KKT system larger than the n x n block it
/// replaces (17-32x slower at 20 x 252 to 500 x 1260, see
/// docs/performance.md, "Portfolio optimiser"); with fewer, the factor
/// form's system is the smaller.
pub fn faster_form(assets: usize, observations: usize) -> Form {
    if observations < assets {
        Form::Factor
    } else {
        Form::Dense
    }
}

/// Which [`Risk`] form to pose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Dense,
    Factor,
}

/// min w'Σw  s.t.  1'w = 1, lo <= w <= hi.
pub fn min_variance(cov: &Array2<f64>, bounds: (f64, f64)) -> Result<Solved, SolveError> {
    min_variance_with(Risk::Dense(cov), None, bounds)
}

/// [`min_variance`] with Σ posed as `risk`.
pub fn min_variance_posed(risk: Risk, bounds: (f64, f64)) -> Result<Solved, SolveError> {
    min_variance_with(risk, None, bounds)
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
    min_variance_with(Risk::Dense(cov), Some((mean, target)), bounds)
}

fn min_variance_with(
    risk: Risk,
    target: Option<(&Array1<f64>, f64)>,
    bounds: (f64, f64),
) -> Result<Solved, SolveError> {
    let cov = risk.cov();
    let n = cov.nrows();
    let vars = n + risk.extra();
    let scale = unit_scale(cov);
    let p = risk.objective(scale, n);
    let mut c = Constraints::new();
    c.row(&(0..n).map(|i| (i, 1.0)).collect::<Vec<_>>(), 1.0);
    let equalities = 1 + risk.link(&mut c, scale, n);
    let bounded = c.weight_bounds(n, bounds);
    if let Some((mean, target)) = target {
        // Returns scaled like Σ keep the row of order one.
        let k = scale.sqrt();
        let terms: Vec<(usize, f64)> = (0..n).map(|i| (i, -mean[i] * k)).collect();
        c.row(&terms, -target * k); // μ'w >= target
    }
    let (a, b) = c.matrix(vars);
    let inequalities = bounded + usize::from(target.is_some());
    let cones = [
        SupportedConeT::ZeroConeT(equalities),
        SupportedConeT::NonnegativeConeT(inequalities),
    ];
    let (mut x, status, iterations) = run_clarabel(&p, &vec![0.0; vars], &a, &b, &cones, "QP")?;
    x.truncate(n);
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
    max_sharpe_posed(Risk::Dense(cov), mean, risk_free, bounds)
}

/// [`max_sharpe`] with Σ posed as `risk`.
pub fn max_sharpe_posed(
    risk: Risk,
    mean: &Array1<f64>,
    risk_free: f64,
    bounds: (f64, f64),
) -> Result<Solved, SolveError> {
    let cov = risk.cov();
    let n = cov.nrows();
    let best = mean.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if best <= risk_free {
        return Err(SolveError::Infeasible(format!(
            "no asset has an expected return above the risk-free rate ({risk_free}); \
             the maximum-Sharpe portfolio does not exist"
        )));
    }
    let kappa = n;
    let lead = n + 1;
    let vars = lead + risk.extra();
    let scale = unit_scale(cov);
    let p = risk.objective(scale, lead);
    let mut c = Constraints::new();
    // Excess returns scaled like Σ keeps y of order one.
    let excess: Vec<(usize, f64)> = (0..n)
        .map(|i| (i, (mean[i] - risk_free) * scale.sqrt()))
        .collect();
    c.row(&excess, 1.0);
    let mut budget: Vec<(usize, f64)> = (0..n).map(|i| (i, 1.0)).collect();
    budget.push((kappa, -1.0));
    c.row(&budget, 0.0);
    let equalities = 2 + risk.link(&mut c, scale, lead);
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
        SupportedConeT::ZeroConeT(equalities),
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

    /// Seeded returns (splitmix64): `t` rows, `n` assets with a common
    /// factor, so the assets correlate as stocks do.
    fn seeded_returns(t: usize, n: usize) -> Array2<f64> {
        let mut state = 7u64;
        let mut uniform = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut r = Array2::zeros((t, n));
        for i in 0..t {
            let market = 0.02 * uniform();
            for j in 0..n {
                r[[i, j]] = 0.002
                    + 0.0002 * (j % 5) as f64
                    + market
                    + 0.01 * (1.0 + j as f64 / n as f64) * uniform();
            }
        }
        r
    }

    #[test]
    fn dense_and_factor_forms_give_the_same_portfolios() {
        for (t, n) in [(60, 12), (40, 30)] {
            let r = seeded_returns(t, n);
            let cov = super::super::estimate::sample_covariance(&r);
            let mean = super::super::estimate::mean(&r);
            let factor = super::super::estimate::sample_factor(&r);
            let factored = Risk::Factor {
                cov: &cov,
                factor: &factor,
            };
            for bounds in [(0.0, 1.0), (0.01, 0.2)] {
                let dense = min_variance_posed(Risk::Dense(&cov), bounds).unwrap();
                let other = min_variance_posed(factored, bounds).unwrap();
                close(&dense.weights, &other.weights, 1e-6);
                assert_eq!(other.weights.len(), n);
                // Not a corner: many assets held.
                assert!(dense.weights.iter().filter(|w| **w > 1e-3).count() > 3);
                let dense = max_sharpe_posed(Risk::Dense(&cov), &mean, 0.0, bounds).unwrap();
                let other = max_sharpe_posed(factored, &mean, 0.0, bounds).unwrap();
                close(&dense.weights, &other.weights, 1e-6);
            }
        }
    }

    #[test]
    fn matrices_are_built_as_from_triplets() {
        let m = array![[2.0, 0.5, 0.0], [0.5, 3.0, -1.0], [0.0, -1.0, 4.0]];
        let direct = triu(&m, 2.0, 5);
        let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
        for j in 0..3 {
            for i in 0..=j {
                if m[[i, j]] != 0.0 {
                    rows.push(i);
                    cols.push(j);
                    vals.push(2.0 * m[[i, j]]);
                }
            }
        }
        assert_eq!(direct, CscMatrix::new_from_triplets(5, 5, rows, cols, vals));
        assert_eq!(
            identity_on(2, 4, 2.0),
            CscMatrix::new_from_triplets(4, 4, vec![2, 3], vec![2, 3], vec![2.0, 2.0])
        );
        let mut c = Constraints::new();
        c.row(&[(2, 1.0), (0, -1.0), (2, 0.5)], 1.0);
        c.row(&[(1, 3.0)], 0.0);
        c.row(&[(0, 4.0), (2, 5.0)], 2.0);
        let (a, b) = c.matrix(4);
        let expected = CscMatrix::new_from_triplets(
            3,
            4,
            vec![0, 0, 1, 2, 2],
            vec![2, 0, 1, 0, 2],
            vec![1.5, -1.0, 3.0, 4.0, 5.0],
        );
        assert_eq!((a, b), (expected, vec![1.0, 0.0, 2.0]));
    }

    #[test]
    fn normalise_clears_dust() {
        assert_eq!(
            normalise(vec![0.5, -1e-12, 1e-11, 0.5]),
            [0.5, 0.0, 0.0, 0.5]
        );
    }
}
