//! The likelihood maximisation: Nelder-Mead (argmin) from arch's starting
//! point on the likelihood penalised outside arch's constraints, then
//! projected Newton steps on numerical derivatives. A simplex stops short of
//! the optimum along flat directions (`ν`, `ω`); the Newton steps land on it,
//! so the estimate does not depend on where the simplex stopped.

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;

use super::likelihood::{dot, Sample};
use super::numeric::{gradient, hessian, solve, solve_spd, Matrix};
use super::VolatilityError;

/// The penalised objective outside the constraints: far above any
/// negative log-likelihood of real returns.
const PENALTY: f64 = 1e10;
/// Stop the simplex when its vertices' objective values spread less than this.
const SIMPLEX_TOLERANCE: f64 = 1e-5;
const MAX_SIMPLEX_ITERS: u64 = 5_000;
const MAX_NEWTON_STEPS: usize = 30;
/// A Newton step that gains less than this ends the search.
const NEWTON_TOLERANCE: f64 = 1e-9;
/// Slack within which a linear constraint the step would cross is held.
const REACH: f64 = 1e-4;
/// How far inside a held constraint a step lands, clear of rounding.
const MARGIN: f64 = 1e-10;

/// The maximum-likelihood estimate and how it was reached.
#[derive(Debug, Clone)]
pub(crate) struct Estimate {
    pub x: Vec<f64>,
    pub nll: f64,
    pub simplex_iterations: u64,
    pub newton_steps: usize,
}

/// The negative log-likelihood, or [`PENALTY`] outside the constraints or
/// where it is not finite.
fn penalised(sample: &Sample, x: &[f64]) -> f64 {
    if !sample.feasible(x) {
        return PENALTY;
    }
    let nll = sample.nll(x);
    if nll.is_finite() {
        nll.min(PENALTY)
    } else {
        PENALTY
    }
}

struct Penalised<'a, 'b>(&'a Sample<'b>);

impl CostFunction for Penalised<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(penalised(self.0, x))
    }
}

/// Maximises the likelihood of `sample` within arch's constraints.
pub(crate) fn maximise(sample: &Sample) -> Result<Estimate, VolatilityError> {
    let (lower, upper) = sample.bounds();
    let start: Vec<f64> = sample
        .starting_point()
        .iter()
        .zip(lower.iter().zip(&upper))
        .map(|(v, (lo, hi))| v.clamp(*lo, *hi))
        .collect();
    if penalised(sample, &start) >= PENALTY {
        return Err(VolatilityError::DidNotConverge(
            "the likelihood is not finite at the starting values".into(),
        ));
    }
    let simplex = initial_simplex(sample, &start);
    let solver = NelderMead::new(simplex)
        .with_sd_tolerance(SIMPLEX_TOLERANCE)
        .map_err(|e| VolatilityError::DidNotConverge(e.to_string()))?;
    let result = Executor::new(Penalised(sample), solver)
        .configure(|state| state.max_iters(MAX_SIMPLEX_ITERS))
        .timer(false)
        .run()
        .map_err(|e| VolatilityError::DidNotConverge(e.to_string()))?;
    let state = result.state();
    let simplex_iterations = state.get_iter();
    let best = state
        .get_best_param()
        .cloned()
        .unwrap_or_else(|| start.clone());
    let (x, nll, newton_steps) = polish(sample, best, &lower, &upper);
    if nll >= PENALTY {
        return Err(VolatilityError::DidNotConverge(
            "no parameters inside the constraints give a finite likelihood".into(),
        ));
    }
    Ok(Estimate {
        x,
        nll,
        simplex_iterations,
        newton_steps,
    })
}

/// The start and one vertex per parameter, each moved by a step on the scale
/// of that parameter's uncertainty, towards the inside of the constraints.
fn initial_simplex(sample: &Sample, start: &[f64]) -> Vec<Vec<f64>> {
    let l = sample.layout;
    let sd = sample.mean_square.sqrt();
    let mut vertices = vec![start.to_vec()];
    for i in 0..start.len() {
        let step = if Some(i) == l.mu {
            0.05 * sd
        } else if i == l.omega {
            0.5 * start[i]
        } else if Some(i) == l.nu {
            1.0
        } else if i == l.beta {
            -0.03
        } else {
            0.03
        };
        let vertex = [step, -step, step / 4.0, -step / 4.0]
            .iter()
            .map(|s| {
                let mut v = start.to_vec();
                v[i] += s;
                v
            })
            .find(|v| sample.feasible(v))
            .unwrap_or_else(|| {
                let mut v = start.to_vec();
                v[i] += step * 1e-3;
                v
            });
        vertices.push(vertex);
    }
    vertices
}

/// Projected Newton steps from `x`, each halved until the penalised
/// objective falls. The Hessian is kept from step to step (it changes little
/// near the optimum) and recomputed when a step with it fails or gains
/// little; the search ends when a step with a fresh one does.
fn polish(
    sample: &Sample,
    mut x: Vec<f64>,
    lower: &[f64],
    upper: &[f64],
) -> (Vec<f64>, f64, usize) {
    let nll = |p: &[f64]| sample.nll(p);
    let rows = sample.linear_constraints();
    let mut fx = penalised(sample, &x);
    let mut steps = 0;
    let mut h = hessian(nll, &x);
    let mut fresh = true;
    while steps < MAX_NEWTON_STEPS && fx < PENALTY {
        let g = gradient(nll, &x);
        if g.iter().chain(h.iter().flatten()).any(|v| !v.is_finite()) {
            break;
        }
        let step = newton_step(&x, &g, &h, lower, upper, &rows);
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let candidate = step.at(&x, t, lower, upper);
            let fc = penalised(sample, &candidate);
            if fc < fx {
                accepted = Some((candidate, fc));
                break;
            }
            t *= 0.5;
        }
        let Some((candidate, fc)) = accepted else {
            if fresh {
                break;
            }
            h = hessian(nll, &x);
            fresh = true;
            continue;
        };
        steps += 1;
        let gain = fx - fc;
        x = candidate;
        fx = fc;
        if gain < NEWTON_TOLERANCE {
            // A stale Hessian crawls along flat directions (`ν`): only a
            // small gain with a fresh one means the optimum is reached.
            if fresh {
                break;
            }
            h = hessian(nll, &x);
            fresh = true;
        } else {
            fresh = false;
        }
    }
    (x, fx, steps)
}

/// A Newton step: a direction, and the parameters pinned to a bound.
struct Step {
    direction: Vec<f64>,
    pinned: Vec<Option<f64>>,
}

impl Step {
    /// The point a fraction `t` of the way along the step, kept in the box.
    fn at(&self, x: &[f64], t: f64, lower: &[f64], upper: &[f64]) -> Vec<f64> {
        (0..x.len())
            .map(|i| match self.pinned[i] {
                Some(bound) => bound,
                None => (x[i] + t * self.direction[i]).clamp(lower[i], upper[i]),
            })
            .collect()
    }
}

/// The Newton step from `x` within the constraints it would otherwise cross.
/// A parameter is pinned to a bound when the step would carry it through
/// while the gradient pushes it out; a linear constraint within
/// [`REACH`] that the step would cross is held as an equality, landing
/// [`MARGIN`] inside it, so the step slides along it (arch's persistence
/// constraint is active for near-integrated series).
fn newton_step(
    x: &[f64],
    g: &[f64],
    h: &Matrix,
    lower: &[f64],
    upper: &[f64],
    rows: &[(Vec<f64>, f64)],
) -> Step {
    let n = x.len();
    let mut pinned: Vec<Option<f64>> = vec![None; n];
    let mut held: Vec<usize> = Vec::new();
    let mut direction = vec![0.0; n];
    for _ in 0..=n + rows.len() {
        direction = constrained_newton(x, g, h, &pinned, rows, &held);
        let mut changed = false;
        for i in 0..n {
            if pinned[i].is_some() {
                continue;
            }
            let target = x[i] + direction[i];
            if target < lower[i] && g[i] > 0.0 {
                pinned[i] = Some(lower[i]);
                changed = true;
            } else if target > upper[i] && g[i] < 0.0 {
                pinned[i] = Some(upper[i]);
                changed = true;
            }
        }
        for (j, (a, b)) in rows.iter().enumerate() {
            let moved: Vec<f64> = x.iter().zip(&direction).map(|(v, d)| v + d).collect();
            if !held.contains(&j) && dot(a, x) - b < REACH && dot(a, &moved) < *b {
                held.push(j);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Step { direction, pinned }
}

/// Minimises the quadratic model `g·d + ½ d'Hd` with the pinned parameters'
/// moves fixed and the held rows as equalities (the KKT system), adding
/// `μ · diag|H|` until the system is solvable (positive definite when no
/// row is held); a diagonally scaled gradient step if never.
fn constrained_newton(
    x: &[f64],
    g: &[f64],
    h: &Matrix,
    pinned: &[Option<f64>],
    rows: &[(Vec<f64>, f64)],
    held: &[usize],
) -> Vec<f64> {
    let n = x.len();
    let free: Vec<usize> = (0..n).filter(|&i| pinned[i].is_none()).collect();
    let fixed: Vec<f64> = (0..n)
        .map(|i| pinned[i].map_or(0.0, |bound| bound - x[i]))
        .collect();
    let mut rhs: Vec<f64> = free.iter().map(|&i| -(g[i] + dot(&h[i], &fixed))).collect();
    for &j in held {
        let (a, b) = &rows[j];
        rhs.push(b + MARGIN - dot(a, x) - dot(a, &fixed));
    }
    let size = rhs.len();
    let mut mu = 0.0;
    for _ in 0..20 {
        let mut kkt = vec![vec![0.0; size]; size];
        for (p, &i) in free.iter().enumerate() {
            for (q, &j) in free.iter().enumerate() {
                kkt[p][q] = h[i][j];
            }
            kkt[p][p] += mu * h[i][i].abs().max(1e-12);
        }
        for (r, &j) in held.iter().enumerate() {
            for (p, &i) in free.iter().enumerate() {
                kkt[free.len() + r][p] = rows[j].0[i];
                kkt[p][free.len() + r] = rows[j].0[i];
            }
        }
        let solution = if held.is_empty() {
            solve_spd(&kkt, &rhs)
        } else {
            solve(&kkt, &rhs)
        };
        if let Some(solution) = solution.filter(|s| s.iter().all(|v| v.is_finite())) {
            let mut d = fixed;
            for (p, &i) in free.iter().enumerate() {
                d[i] = solution[p];
            }
            return d;
        }
        mu = if mu == 0.0 { 1e-6 } else { mu * 10.0 };
    }
    (0..n)
        .map(|i| match pinned[i] {
            Some(_) => fixed[i],
            None => -g[i] / h[i][i].abs().max(1e-12),
        })
        .collect()
}
