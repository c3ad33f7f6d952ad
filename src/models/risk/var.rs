//! Value at Risk and expected shortfall of a portfolio by three methods
//! (historical simulation, parametric normal, Cornish-Fisher), each with
//! its per-asset decomposition.
//!
//! Sign convention: returns are simple returns (fractions); VaR and CVaR
//! are *losses*, so a VaR of 0.02 means a 2 % loss is exceeded with
//! probability `1 − level`. Component contributions are Euler's,
//! `wᵢ ∂VaR/∂wᵢ`, which add up to the VaR because every estimator here is
//! homogeneous of degree one in the weights; `marginal` is `∂VaR/∂wᵢ`.

use ndarray::{Array1, Array2, Axis};

use super::distribution::{norm_pdf, norm_ppf};

/// Slack on `n (1 − level)` before rounding up, so that
/// `1000 · (1 − 0.95) = 50.000000000000044` counts as 50 scenarios.
const TAIL_COUNT_SLACK: f64 = 1e-9;

/// One method's figures at one level.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub var: f64,
    pub cvar: f64,
    /// `wᵢ ∂VaR/∂wᵢ` per asset; sums to `var`.
    pub var_contributions: Vec<f64>,
    /// `wᵢ ∂CVaR/∂wᵢ` per asset; sums to `cvar`.
    pub cvar_contributions: Vec<f64>,
    /// `∂VaR/∂wᵢ` per asset.
    pub marginal_var: Vec<f64>,
}

/// `k = ⌈n (1 − level)⌉`, at least 1: the rank (from the worst) of the
/// scenario whose loss is the historical VaR.
pub fn tail_count(n: usize, level: f64) -> usize {
    ((n as f64 * (1.0 - level) - TAIL_COUNT_SLACK).ceil() as usize).clamp(1, n.max(1))
}

/// Scenario order by portfolio return, worst first; ties by scenario
/// index, so the VaR scenario is well defined.
fn ranked(totals: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..totals.len()).collect();
    order.sort_by(|&a, &b| totals[a].total_cmp(&totals[b]).then(a.cmp(&b)));
    order
}

/// Scenario weighting by an empirical distribution: `per_unit[j, i]` is
/// asset `i`'s return per unit of weight in scenario `j`, so scenario `j`'s
/// portfolio return is `Σᵢ wᵢ per_unit[j, i]`.
///
/// VaR is minus the `k`-th worst portfolio return; its contributions are
/// minus each asset's weighted return in that scenario (the conditional
/// expectation `E[wᵢ Xᵢ | X_p = VaR]` estimated by the one scenario at the
/// quantile: exact in sum, noisy per asset). CVaR is minus the mean of the
/// portfolio returns at or below the VaR return, and its contributions the
/// means of each asset's weighted returns over those same scenarios.
pub fn empirical(per_unit: &Array2<f64>, weights: &[f64], level: f64) -> Estimate {
    let w = Array1::from(weights.to_vec());
    let totals = per_unit.dot(&w).to_vec();
    let order = ranked(&totals);
    let at = order[tail_count(totals.len(), level) - 1];
    let q = totals[at];
    let tail: Vec<usize> = order
        .iter()
        .copied()
        .take_while(|&j| totals[j] <= q)
        .collect();
    let n_tail = tail.len() as f64;
    let marginal_var: Vec<f64> = per_unit.row(at).iter().map(|x| -x).collect();
    let var_contributions = marginal_var
        .iter()
        .zip(weights)
        .map(|(m, w)| m * w)
        .collect();
    let cvar_contributions = (0..weights.len())
        .map(|i| -weights[i] * tail.iter().map(|&j| per_unit[[j, i]]).sum::<f64>() / n_tail)
        .collect();
    Estimate {
        var: -q,
        cvar: -tail.iter().map(|&j| totals[j]).sum::<f64>() / n_tail,
        var_contributions,
        cvar_contributions,
        marginal_var,
    }
}

/// Historical `horizon`-day scenarios: one per overlapping window of
/// `horizon` consecutive days, each asset's return compounded over the
/// window, `∏(1 + rᵢ) − 1`. The portfolio's return in a window is then the
/// weighted sum: the weights are held from the window's start (no
/// rebalancing within it), which for one day is the constant-weight
/// portfolio's daily return and keeps the split by asset exact.
pub fn historical_scenarios(returns: &Array2<f64>, horizon: usize) -> Array2<f64> {
    let (t, n) = returns.dim();
    let rows = (t + 1).saturating_sub(horizon);
    let mut out = Array2::<f64>::zeros((rows, n));
    for j in 0..rows {
        for i in 0..n {
            let growth: f64 = (j..j + horizon).map(|d| 1.0 + returns[[d, i]]).product();
            out[[j, i]] = growth - 1.0;
        }
    }
    out
}

/// Historical simulation: [`empirical`] over [`historical_scenarios`].
pub fn historical(returns: &Array2<f64>, weights: &[f64], level: f64, horizon: usize) -> Estimate {
    empirical(&historical_scenarios(returns, horizon), weights, level)
}

/// The sample figures the parametric methods use: per-asset means, the
/// sample covariance (`T − 1`), and the centred returns.
struct Sample {
    mean: Array1<f64>,
    centred: Array2<f64>,
    /// `Σ w`.
    cov_w: Array1<f64>,
    /// Portfolio mean and standard deviation (`√(wᵀ Σ w)`).
    mu_p: f64,
    sd_p: f64,
}

impl Sample {
    fn of(returns: &Array2<f64>, weights: &[f64]) -> Sample {
        let t = returns.nrows() as f64;
        let w = Array1::from(weights.to_vec());
        let mean = returns
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(returns.ncols()));
        let centred = returns - &mean;
        let cov = centred.t().dot(&centred) / (t - 1.0).max(1.0);
        let cov_w = cov.dot(&w);
        Sample {
            mu_p: mean.dot(&w),
            sd_p: w.dot(&cov_w).max(0.0).sqrt(),
            mean,
            centred,
            cov_w,
        }
    }
}

/// Parametric normal VaR: the portfolio return over `h` days is normal
/// with mean `h μ_p` and standard deviation `√h σ_p` (sample mean and
/// covariance of the daily returns). `VaR = −h μ_p + z_a √h σ_p`,
/// `CVaR = −h μ_p + √h σ_p φ(z_a) / (1 − a)`, with `z_a = Φ⁻¹(a)`.
pub fn parametric(returns: &Array2<f64>, weights: &[f64], level: f64, horizon: usize) -> Estimate {
    let s = Sample::of(returns, weights);
    let (h, rh) = (horizon as f64, (horizon as f64).sqrt());
    let z = norm_ppf(level);
    let shortfall = norm_pdf(z) / (1.0 - level);
    let marginal_var: Vec<f64> = (0..weights.len())
        .map(|i| -h * s.mean[i] + z * rh * s.cov_w[i] / s.sd_p)
        .collect();
    let marginal_cvar =
        (0..weights.len()).map(|i| -h * s.mean[i] + shortfall * rh * s.cov_w[i] / s.sd_p);
    Estimate {
        var: -h * s.mu_p + z * rh * s.sd_p,
        cvar: -h * s.mu_p + shortfall * rh * s.sd_p,
        var_contributions: marginal_var
            .iter()
            .zip(weights)
            .map(|(m, w)| m * w)
            .collect(),
        cvar_contributions: marginal_cvar.zip(weights).map(|(m, w)| m * w).collect(),
        marginal_var,
    }
}

/// Skewness and excess kurtosis of a one-day return distribution, scaled
/// to `h` independent days: `S / √h` and `K / h`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub skew: f64,
    pub excess_kurtosis: f64,
}

/// The Cornish-Fisher expansion of the standard normal quantile `z` for a
/// distribution of this shape, and its expected shortfall below `z`:
/// `∫_{−∞}^{z} cf(x) φ(x) dx / Φ(z)` in closed form, from the truncated
/// normal moments `∫ x φ = −φ(z)`, `∫ x² φ = Φ(z) − z φ(z)`,
/// `∫ x³ φ = −(z² + 2) φ(z)`.
#[derive(Debug, Clone, Copy)]
struct Expansion {
    z: f64,
    p: f64,
    s: f64,
    k: f64,
}

impl Expansion {
    fn quantile(&self) -> f64 {
        let (z, s, k) = (self.z, self.s, self.k);
        z + (z * z - 1.0) * s / 6.0 + (z.powi(3) - 3.0 * z) * k / 24.0
            - (2.0 * z.powi(3) - 5.0 * z) * s * s / 36.0
    }
    /// `(∂q/∂S, ∂q/∂K)`.
    fn quantile_slopes(&self) -> (f64, f64) {
        let (z, s) = (self.z, self.s);
        (
            (z * z - 1.0) / 6.0 - (2.0 * z.powi(3) - 5.0 * z) * s / 18.0,
            (z.powi(3) - 3.0 * z) / 24.0,
        )
    }
    fn shortfall(&self) -> f64 {
        let (z, s, k) = (self.z, self.s, self.k);
        norm_pdf(z) / self.p
            * (-1.0 - z * s / 6.0 + (1.0 - z * z) * k / 24.0 - (1.0 - 2.0 * z * z) * s * s / 36.0)
    }
    /// `(∂ES/∂S, ∂ES/∂K)` of [`Expansion::shortfall`].
    fn shortfall_slopes(&self) -> (f64, f64) {
        let (z, s) = (self.z, self.s);
        let c = norm_pdf(z) / self.p;
        (
            c * (-z / 6.0 - (1.0 - 2.0 * z * z) * s / 18.0),
            c * (1.0 - z * z) / 24.0,
        )
    }
}

/// Cornish-Fisher ("modified") VaR: the normal quantile corrected for the
/// sample skewness `S = m₃ / m₂^{3/2}` and excess kurtosis
/// `K = m₄ / m₂² − 3` of the portfolio's daily returns (population
/// moments, divisor `T`, as `scipy.stats.skew` and `kurtosis` by default),
/// with the mean and standard deviation of [`parametric`]. Over `h` days
/// the mean scales by `h`, the deviation by `√h`, `S` by `1/√h` and `K` by
/// `1/h` (sums of independent days). CVaR is the expected shortfall of the
/// expanded quantile function. Contributions are Euler's, with the
/// analytic derivatives of `S` and `K` in the weights
/// (`∂m₂/∂wᵢ = 2 E[cᵢ c_p]`, `∂m₃/∂wᵢ = 3 E[cᵢ c_p²]`,
/// `∂m₄/∂wᵢ = 4 E[cᵢ c_p³]`, `c` the centred returns).
pub fn cornish_fisher(
    returns: &Array2<f64>,
    weights: &[f64],
    level: f64,
    horizon: usize,
) -> Estimate {
    let s = Sample::of(returns, weights);
    let t = returns.nrows() as f64;
    let w = Array1::from(weights.to_vec());
    let cp = s.centred.dot(&w);
    let moment = |k: i32| cp.iter().map(|c| c.powi(k)).sum::<f64>() / t;
    let (m2, m3, m4) = (moment(2), moment(3), moment(4));
    let (h, rh) = (horizon as f64, (horizon as f64).sqrt());
    let e = Expansion {
        z: norm_ppf(1.0 - level),
        p: 1.0 - level,
        s: m3 / m2.powf(1.5) / rh,
        k: (m4 / (m2 * m2) - 3.0) / h,
    };
    let (q, es) = (e.quantile(), e.shortfall());
    let (dq_ds, dq_dk) = e.quantile_slopes();
    let (des_ds, des_dk) = e.shortfall_slopes();
    let n = weights.len();
    let mut marginal_var = Vec::with_capacity(n);
    let mut marginal_cvar = Vec::with_capacity(n);
    for i in 0..n {
        let ci = s.centred.column(i);
        let co = |k: i32| ci.iter().zip(&cp).map(|(a, c)| a * c.powi(k)).sum::<f64>() / t;
        let (dm2, dm3, dm4) = (2.0 * co(1), 3.0 * co(2), 4.0 * co(3));
        let ds = (dm3 / m2.powf(1.5) - 1.5 * m3 * dm2 / m2.powf(2.5)) / rh;
        let dk = (dm4 / (m2 * m2) - 2.0 * m4 * dm2 / m2.powi(3)) / h;
        let dsd = s.cov_w[i] / s.sd_p;
        marginal_var.push(-(h * s.mean[i] + rh * (dsd * q + s.sd_p * (dq_ds * ds + dq_dk * dk))));
        marginal_cvar
            .push(-(h * s.mean[i] + rh * (dsd * es + s.sd_p * (des_ds * ds + des_dk * dk))));
    }
    Estimate {
        var: -(h * s.mu_p + rh * s.sd_p * q),
        cvar: -(h * s.mu_p + rh * s.sd_p * es),
        var_contributions: marginal_var
            .iter()
            .zip(weights)
            .map(|(m, w)| m * w)
            .collect(),
        cvar_contributions: marginal_cvar
            .iter()
            .zip(weights)
            .map(|(m, w)| m * w)
            .collect(),
        marginal_var,
    }
}

/// Mean, sample standard deviation (`T − 1`) and population shape of one
/// return series: what the parametric methods need of a window of
/// portfolio returns (the backtest's one-day forecasts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub mean: f64,
    pub sd: f64,
    pub shape: Shape,
}

impl Moments {
    pub fn of(r: &[f64]) -> Moments {
        let t = r.len() as f64;
        let mean = r.iter().sum::<f64>() / t;
        let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
        for x in r {
            let c = x - mean;
            let c2 = c * c;
            m2 += c2;
            m3 += c2 * c;
            m4 += c2 * c2;
        }
        let sd = (m2 / (t - 1.0).max(1.0)).sqrt();
        let (m2, m3, m4) = (m2 / t, m3 / t, m4 / t);
        Moments {
            mean,
            sd,
            shape: Shape {
                skew: m3 / m2.powf(1.5),
                excess_kurtosis: m4 / (m2 * m2) - 3.0,
            },
        }
    }

    /// One-day normal VaR.
    pub fn normal_var(&self, level: f64) -> f64 {
        -self.mean + norm_ppf(level) * self.sd
    }

    /// One-day Cornish-Fisher VaR.
    pub fn cornish_fisher_var(&self, level: f64) -> f64 {
        let e = Expansion {
            z: norm_ppf(1.0 - level),
            p: 1.0 - level,
            s: self.shape.skew,
            k: self.shape.excess_kurtosis,
        };
        -(self.mean + self.sd * e.quantile())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic fat-tailed, correlated returns for three assets.
    fn returns(t: usize) -> Array2<f64> {
        let mut state = 7u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut r = Array2::<f64>::zeros((t, 3));
        for j in 0..t {
            let common = norm_ppf(uniform()) * if uniform() < 0.1 { 3.0 } else { 1.0 };
            for i in 0..3 {
                let scale = 0.01 * (1.0 + i as f64 * 0.3);
                r[[j, i]] = 0.0004 + scale * (0.6 * common + norm_ppf(uniform()));
            }
        }
        r
    }

    const W: [f64; 3] = [0.5, 0.3, 0.2];

    fn check_sums(e: &Estimate) {
        let v: f64 = e.var_contributions.iter().sum();
        let c: f64 = e.cvar_contributions.iter().sum();
        assert!((v - e.var).abs() < 1e-12 * e.var.abs(), "{v} vs {}", e.var);
        assert!(
            (c - e.cvar).abs() < 1e-12 * e.cvar.abs(),
            "{c} vs {}",
            e.cvar
        );
        assert!(e.cvar >= e.var, "{} < {}", e.cvar, e.var);
    }

    #[test]
    fn tail_count_rounds_up_without_float_noise() {
        assert_eq!(tail_count(1000, 0.95), 50);
        assert_eq!(tail_count(1000, 0.99), 10);
        assert_eq!(tail_count(999, 0.99), 10);
        assert_eq!(tail_count(100, 0.999), 1);
        assert_eq!(tail_count(10, 0.0), 10);
    }

    #[test]
    fn historical_var_is_minus_the_kth_worst_return() {
        let r = Array2::from_shape_vec((5, 1), vec![0.01, -0.03, 0.02, -0.01, -0.02]).unwrap();
        let e = historical(&r, &[1.0], 0.6, 1);
        // k = ceil(5 * 0.4) = 2: the second worst is -0.02; the tail is {-0.03, -0.02}.
        // (1 + r) - 1 rounds in the last bits.
        assert!((e.var - 0.02).abs() < 1e-15);
        assert!((e.cvar - 0.025).abs() < 1e-15);
    }

    #[test]
    fn contributions_add_up_for_every_method() {
        let r = returns(750);
        for h in [1, 10] {
            for level in [0.95, 0.99] {
                check_sums(&historical(&r, &W, level, h));
                check_sums(&parametric(&r, &W, level, h));
                check_sums(&cornish_fisher(&r, &W, level, h));
            }
        }
    }

    /// The analytic marginals are the derivatives of the VaR in the
    /// weights (central differences, the VaR as a function of free weights).
    #[test]
    fn analytic_marginals_are_derivatives() {
        let r = returns(750);
        for h in [1, 5] {
            for f in [parametric, cornish_fisher] {
                let e = f(&r, &W, 0.99, h);
                for i in 0..3 {
                    let step = 1e-6;
                    let (mut up, mut down) = (W, W);
                    up[i] += step;
                    down[i] -= step;
                    let slope =
                        (f(&r, &up, 0.99, h).var - f(&r, &down, 0.99, h).var) / (2.0 * step);
                    assert!(
                        (slope - e.marginal_var[i]).abs() < 1e-7,
                        "{i}: {slope} vs {}",
                        e.marginal_var[i]
                    );
                }
            }
        }
    }

    #[test]
    fn cornish_fisher_without_skew_or_kurtosis_is_normal() {
        let e = Expansion {
            z: norm_ppf(0.01),
            p: 0.01,
            s: 0.0,
            k: 0.0,
        };
        assert_eq!(e.quantile(), norm_ppf(0.01));
        assert!((e.shortfall() + norm_pdf(norm_ppf(0.01)) / 0.01).abs() < 1e-12);
    }

    #[test]
    fn one_series_moments_agree_with_the_portfolio_figures() {
        let r = returns(500);
        let rp: Vec<f64> = r.dot(&Array1::from(W.to_vec())).to_vec();
        let m = Moments::of(&rp);
        let p = parametric(&r, &W, 0.99, 1);
        let cf = cornish_fisher(&r, &W, 0.99, 1);
        assert!((m.normal_var(0.99) - p.var).abs() < 1e-14);
        assert!((m.cornish_fisher_var(0.99) - cf.var).abs() < 1e-14);
    }
}
