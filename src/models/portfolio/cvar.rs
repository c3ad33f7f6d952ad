//! Minimum conditional value at risk (expected shortfall) of the window's
//! daily simple returns, by the linear programme of Rockafellar and Uryasev
//! (2000), and the empirical VaR and CVaR of any portfolio.
//!
//! With `T` scenarios `r_t` (the observed return rows) and level `β`:
//!
//! ```text
//! min  α + 1/((1-β) T) Σ u_t
//! s.t. u_t >= -r_t'w - α,  u_t >= 0,  1'w = 1,  lo <= w <= hi
//! ```
//!
//! whose optimal value is the portfolio's CVaR at `β` and whose `α` lies in
//! the set of its VaRs.

use clarabel::algebra::CscMatrix;
use clarabel::solver::SupportedConeT;
use ndarray::{Array1, Array2};
use serde::Serialize;
use utoipa::ToSchema;

use super::solve::{normalise, run_clarabel, Constraints, SolveError, Solved};

/// A portfolio's tail losses at a confidence level, as positive fractions
/// of its value per period (0.02 = a 2 % daily loss).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct TailRisk {
    pub level: f64,
    /// The lower `level`-quantile of the losses: the smallest loss `ℓ`
    /// with at least a `level` share of the losses at or below it.
    #[serde(rename = "value_at_risk")]
    pub var: f64,
    /// The mean of the worst `1 - level` share of the losses (expected
    /// shortfall), the fractional scenario at the quantile counted in part.
    pub cvar: f64,
}

/// Empirical VaR and CVaR of `losses` at `level` in (0, 1): the minimum of
/// the Rockafellar-Uryasev function `F(α) = α + Σ (L - α)+ / ((1-level) T)`
/// and the smallest `α` that attains it. `losses` must not be empty.
pub fn tail_risk(losses: &[f64], level: f64) -> TailRisk {
    let mut sorted = losses.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a)); // worst first
    let t = sorted.len();
    let tail = (1.0 - level) * t as f64;
    // The (⌊tail⌋ + 1)-th worst loss; the nudge keeps a tail that is a
    // whole number of scenarios (1 - 0.95 = 0.050000000000000044) whole.
    let m = ((tail + 1e-9).floor() as usize + 1).min(t);
    let var = sorted[m - 1];
    let excess: f64 = sorted[..m - 1].iter().map(|l| l - var).sum();
    TailRisk {
        level,
        var,
        cvar: var + excess / tail,
    }
}

/// Each period's loss `-r_t'w` of weights `w` over return rows `returns`.
pub fn losses(returns: &Array2<f64>, w: &[f64]) -> Vec<f64> {
    let w = Array1::from(w.to_vec());
    returns.dot(&w).iter().map(|r| -r).collect()
}

/// The weights of least CVaR at `level` over the return rows `returns`
/// (one row per period, one column per asset) within per-asset `bounds`,
/// with their tail risk. The LP may have several optimal portfolios; the
/// interior-point method returns one near the centre of that face.
pub fn min_cvar(
    returns: &Array2<f64>,
    level: f64,
    bounds: (f64, f64),
) -> Result<(Solved, TailRisk), SolveError> {
    let (t, n) = returns.dim();
    // Variables: w (n), α, u (t). Returns scaled to a largest magnitude of
    // 1 give the interior-point tolerances a meaning; w is unchanged and α,
    // u and the objective scale with them.
    let largest = returns.iter().fold(0.0_f64, |m, r| m.max(r.abs()));
    let scale = if largest > 0.0 && largest.is_finite() {
        1.0 / largest
    } else {
        1.0
    };
    let alpha = n;
    let u = |k: usize| n + 1 + k;
    let vars = n + 1 + t;
    let mut q = vec![0.0; vars];
    q[alpha] = 1.0;
    let weight = 1.0 / ((1.0 - level) * t as f64);
    for k in 0..t {
        q[u(k)] = weight;
    }
    let mut c = Constraints::new();
    c.row(&(0..n).map(|i| (i, 1.0)).collect::<Vec<_>>(), 1.0);
    let mut terms = Vec::with_capacity(n + 2);
    for k in 0..t {
        // r_t'w + α + u_t >= 0
        terms.clear();
        terms.extend((0..n).map(|i| (i, -returns[[k, i]] * scale)));
        terms.push((alpha, -1.0));
        terms.push((u(k), -1.0));
        c.row(&terms, 0.0);
    }
    for k in 0..t {
        c.row(&[(u(k), -1.0)], 0.0); // u_t >= 0
    }
    let bounded = c.weight_bounds(n, bounds);
    let (a, b) = c.matrix(vars);
    let inequalities = 2 * t + bounded;
    let cones = [
        SupportedConeT::ZeroConeT(1),
        SupportedConeT::NonnegativeConeT(inequalities),
    ];
    let p = CscMatrix::zeros((vars, vars));
    let (x, status, iterations) = run_clarabel(&p, &q, &a, &b, &cones, "CVaR LP")?;
    let weights = normalise(x[..n].to_vec());
    let risk = tail_risk(&losses(returns, &weights), level);
    Ok((
        Solved {
            weights,
            solver: "clarabel",
            status: format!("{status:?}"),
            iterations,
        },
        risk,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn tail_risk_counts_the_fractional_scenario_in_part() {
        // 10 losses, level 0.75: the tail is 2.5 scenarios, VaR the 3rd worst.
        let losses: Vec<f64> = (1..=10).map(f64::from).collect();
        let r = tail_risk(&losses, 0.75);
        assert_eq!(r.var, 8.0);
        assert!((r.cvar - (10.0 + 9.0 + 0.5 * 8.0) / 2.5).abs() < 1e-12);
        // A whole tail (level 0.8: 2 scenarios) is the mean of the worst 2,
        // and VaR the smallest minimiser of F, the 3rd worst.
        let r = tail_risk(&losses, 0.8);
        assert_eq!(r.var, 8.0);
        assert!((r.cvar - 9.5).abs() < 1e-12);
        // Order does not matter; a tail under one scenario is the worst loss.
        let mut shuffled = losses.clone();
        shuffled.reverse();
        shuffled.swap(2, 7);
        let r = tail_risk(&shuffled, 0.95);
        assert_eq!((r.var, r.cvar), (10.0, 10.0));
    }

    #[test]
    fn tail_risk_is_the_minimum_of_the_rockafellar_uryasev_function() {
        let losses = [
            0.013, -0.004, 0.021, 0.0, -0.017, 0.008, 0.034, -0.002, 0.011,
        ];
        for level in [0.5, 0.7, 0.9, 0.95] {
            let r = tail_risk(&losses, level);
            let f = |a: f64| {
                a + losses.iter().map(|l| (l - a).max(0.0)).sum::<f64>()
                    / ((1.0 - level) * losses.len() as f64)
            };
            let best = (-400..=400)
                .map(|i| f(f64::from(i) * 1e-4))
                .fold(f64::INFINITY, f64::min);
            assert!((f(r.var) - r.cvar).abs() < 1e-15, "{level}");
            assert!(r.cvar <= best + 1e-15, "{level}: {} > {best}", r.cvar);
        }
    }

    #[test]
    fn min_cvar_picks_the_asset_without_a_bad_tail() {
        // B loses 5 % once, A 1 % once; at level 0.8 the tail is one
        // scenario, so CVaR is the worst loss, max(0.02 w - 0.01,
        // 0.05 - 0.055 w) for a weight w in A: least at w = 0.8.
        let returns = array![
            [0.01, 0.02],
            [-0.01, 0.01],
            [0.005, -0.05],
            [0.0, 0.03],
            [0.002, 0.01]
        ];
        let (s, r) = min_cvar(&returns, 0.8, (0.0, 1.0)).unwrap();
        assert!((s.weights[0] - 0.8).abs() < 1e-7, "{:?}", s.weights);
        assert!((r.cvar - 0.006).abs() < 1e-9, "{r:?}");
        // Bounds hold.
        let (s, _) = min_cvar(&returns, 0.8, (0.3, 0.7)).unwrap();
        assert!((s.weights[0] - 0.7).abs() < 1e-7, "{:?}", s.weights);
    }
}
