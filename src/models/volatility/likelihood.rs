//! The variance recursion and the log-likelihood, computed as arch computes
//! them, so that a maximum here is arch's maximum.
//!
//! arch starts the recursion from a backcast, an exponentially weighted
//! (0.94) mean of the first 75 squared residuals, and keeps every
//! conditional variance inside loose bounds around an EWMA of the squared
//! residuals. Both are computed once, from the residuals at the starting
//! mean, and stay fixed while the parameters move.

use std::f64::consts::PI;

use super::{Distribution, GarchSpec, Mean, Model, Params, VolatilityError};

/// Squared residuals the backcast and the EWMA bounds start from.
const BACKCAST_LEN: usize = 75;
const BACKCAST_DECAY: f64 = 0.94;
const LN_2PI: f64 = 1.837_877_066_409_345_5;
/// Student's t shape bounds arch imposes: `ν > 2` keeps the variance finite.
pub(crate) const NU_BOUNDS: (f64, f64) = (2.05, 500.0);

/// Where each parameter sits in the estimation vector: mean, variance,
/// then distribution parameters, as in arch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub mu: Option<usize>,
    pub omega: usize,
    pub alpha: usize,
    pub gamma: Option<usize>,
    pub beta: usize,
    pub nu: Option<usize>,
    pub len: usize,
}

impl Layout {
    pub fn of(spec: GarchSpec) -> Self {
        let mut next = 0;
        let mut take = || {
            next += 1;
            next - 1
        };
        let mu = (spec.mean == Mean::Constant).then(&mut take);
        let omega = take();
        let alpha = take();
        let gamma = (spec.model == Model::Gjr).then(&mut take);
        let beta = take();
        let nu = (spec.distribution == Distribution::StudentT).then(&mut take);
        Layout {
            mu,
            omega,
            alpha,
            gamma,
            beta,
            nu,
            len: next,
        }
    }

    pub fn params(&self, x: &[f64]) -> Params {
        let at = |i: usize| x.get(i).copied().unwrap_or(f64::NAN);
        Params {
            mu: self.mu.map(at),
            omega: at(self.omega),
            alpha: at(self.alpha),
            gamma: self.gamma.map(at),
            beta: at(self.beta),
            nu: self.nu.map(at),
        }
    }
}

/// The coefficients of `σ²ₜ = ω + α ε²ₜ₋₁ + γ ε²ₜ₋₁ 1[εₜ₋₁ < 0] + β σ²ₜ₋₁`
/// (`γ = 0` for GARCH).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recursion {
    pub omega: f64,
    pub alpha: f64,
    pub gamma: f64,
    pub beta: f64,
}

impl Recursion {
    pub fn of(params: &Params) -> Self {
        Recursion {
            omega: params.omega,
            alpha: params.alpha,
            gamma: params.gamma.unwrap_or(0.0),
            beta: params.beta,
        }
    }

    /// `α + γ/2 + β`: with symmetric shocks a fall happens half the time,
    /// so this is the rate at which a variance shock decays.
    pub fn persistence(&self) -> f64 {
        self.alpha + 0.5 * self.gamma + self.beta
    }

    /// The first variance: every pre-sample term replaced by the backcast
    /// (half of it for the asymmetric term).
    fn first(&self, backcast: f64) -> f64 {
        self.omega + self.alpha * backcast + self.gamma * 0.5 * backcast + self.beta * backcast
    }

    /// The variance after a shock `e` at variance `s`.
    pub fn next(&self, e: f64, s: f64) -> f64 {
        let e2 = e * e;
        let mut next = self.omega + self.alpha * e2;
        if e < 0.0 {
            next += self.gamma * e2;
        }
        next + self.beta * s
    }
}

/// Keeps a variance within `[lower, upper]`, past `upper` only
/// logarithmically (arch's `bounds_check`), so the likelihood stays finite
/// for any parameters.
fn bounded(s: f64, (lower, upper): (f64, f64)) -> f64 {
    if s < lower {
        lower
    } else if s > upper {
        if s > f64::MAX {
            upper + 1000.0
        } else {
            upper + (s / upper).ln()
        }
    } else {
        s
    }
}

/// The density of the standardised shocks, as a per-period negative
/// log-likelihood of a residual `e` with conditional variance `s`.
#[derive(Debug, Clone, Copy)]
enum Density {
    Normal,
    StudentT { nu: f64, constant: f64 },
}

impl Density {
    fn new(nu: Option<f64>) -> Self {
        match nu {
            None => Density::Normal,
            Some(nu) => Density::StudentT {
                nu,
                constant: ln_gamma((nu + 1.0) / 2.0)
                    - ln_gamma(nu / 2.0)
                    - (PI * (nu - 2.0)).ln() / 2.0,
            },
        }
    }

    fn nll(&self, e: f64, s: f64) -> f64 {
        match *self {
            Density::Normal => 0.5 * (LN_2PI + s.ln() + e * e / s),
            Density::StudentT { nu, constant } => {
                -(constant
                    - 0.5 * s.ln()
                    - (nu + 1.0) / 2.0 * (1.0 + e * e / (s * (nu - 2.0))).ln())
            }
        }
    }
}

/// Returns ready for estimation under one spec, with arch's fixed start-up
/// variance and variance bounds.
#[derive(Debug, Clone)]
pub(crate) struct Sample<'a> {
    pub returns: &'a [f64],
    pub layout: Layout,
    /// The mean the backcast was computed at: the sample mean, or 0.
    pub start_mean: f64,
    pub backcast: f64,
    /// Mean squared starting residual: the scale of `ω`'s bounds.
    pub mean_square: f64,
    bounds: Vec<(f64, f64)>,
}

impl<'a> Sample<'a> {
    pub fn new(returns: &'a [f64], spec: GarchSpec) -> Result<Self, VolatilityError> {
        let n = returns.len();
        if n < 2 {
            return Err(VolatilityError::InsufficientData {
                what: "returns",
                needed: 2,
                got: n,
            });
        }
        let start_mean = match spec.mean {
            Mean::Constant => returns.iter().sum::<f64>() / n as f64,
            Mean::Zero => 0.0,
        };
        let resids: Vec<f64> = returns.iter().map(|r| r - start_mean).collect();
        let mean_square = resids.iter().map(|e| e * e).sum::<f64>() / n as f64;
        let centre = resids.iter().sum::<f64>() / n as f64;
        let variance = resids.iter().map(|e| (e - centre).powi(2)).sum::<f64>() / n as f64;
        if !(variance.is_finite() && variance > 0.0 && mean_square.is_finite()) {
            return Err(VolatilityError::InvalidInput(
                "the returns must vary, and their squares must be finite".into(),
            ));
        }
        let backcast = backcast(&resids);
        let bounds = variance_bounds(&resids, backcast, variance);
        Ok(Sample {
            returns,
            layout: Layout::of(spec),
            start_mean,
            backcast,
            mean_square,
            bounds,
        })
    }

    pub fn len(&self) -> usize {
        self.returns.len()
    }

    /// Walks the recursion at `x`, handing each period's residual and
    /// conditional variance to `visit`; returns the next period's variance.
    fn walk(&self, x: &[f64], mut visit: impl FnMut(f64, f64)) -> f64 {
        let params = self.layout.params(x);
        let recursion = Recursion::of(&params);
        let mu = params.mu.unwrap_or(0.0);
        let mut s = recursion.first(self.backcast);
        for (r, &bounds) in self.returns.iter().zip(&self.bounds) {
            let e = r - mu;
            let bounded = bounded(s, bounds);
            visit(e, bounded);
            s = recursion.next(e, bounded);
        }
        if s < 0.0 {
            0.0
        } else {
            s
        }
    }

    fn density(&self, x: &[f64]) -> Density {
        Density::new(self.layout.nu.and_then(|i| x.get(i).copied()))
    }

    /// The negative log-likelihood at `x`, with no constraint checked.
    pub fn nll(&self, x: &[f64]) -> f64 {
        let density = self.density(x);
        let mut total = 0.0;
        self.walk(x, |e, s| total += density.nll(e, s));
        total
    }

    /// Each period's negative log-likelihood (for the score covariance).
    pub fn nll_terms(&self, x: &[f64]) -> Vec<f64> {
        let density = self.density(x);
        let mut terms = Vec::with_capacity(self.len());
        self.walk(x, |e, s| terms.push(density.nll(e, s)));
        terms
    }

    /// The fitted conditional variances and the one-step-ahead variance
    /// after the last return.
    pub fn variances(&self, x: &[f64]) -> (Vec<f64>, f64) {
        let mut path = Vec::with_capacity(self.len());
        let next = self.walk(x, |_, s| path.push(s));
        (path, next)
    }

    /// Lower and upper bounds of each parameter (arch's).
    pub fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        let l = self.layout;
        let mut lower = vec![f64::NEG_INFINITY; l.len];
        let mut upper = vec![f64::INFINITY; l.len];
        let mut set = |i: usize, lo: f64, hi: f64| {
            lower[i] = lo;
            upper[i] = hi;
        };
        set(l.omega, 1e-8 * self.mean_square, 10.0 * self.mean_square);
        set(l.alpha, 0.0, 1.0);
        if let Some(g) = l.gamma {
            set(g, -1.0, 2.0);
        }
        set(l.beta, 0.0, 1.0);
        if let Some(nu) = l.nu {
            set(nu, NU_BOUNDS.0, NU_BOUNDS.1);
        }
        (lower, upper)
    }

    /// arch's linear constraints as rows `(a, b)` meaning `a · x ≥ b`:
    /// `α + γ ≥ 0` (GJR) and `α + γ/2 + β ≤ 1`.
    pub fn linear_constraints(&self) -> Vec<(Vec<f64>, f64)> {
        let l = self.layout;
        let mut rows = Vec::with_capacity(2);
        let mut persistence = vec![0.0; l.len];
        persistence[l.alpha] = -1.0;
        persistence[l.beta] = -1.0;
        if let Some(g) = l.gamma {
            let mut asymmetry = vec![0.0; l.len];
            asymmetry[l.alpha] = 1.0;
            asymmetry[g] = 1.0;
            rows.push((asymmetry, 0.0));
            persistence[g] = -0.5;
        }
        rows.push((persistence, -1.0));
        rows
    }

    /// Inside arch's bounds and its linear constraints.
    pub fn feasible(&self, x: &[f64]) -> bool {
        let (lower, upper) = self.bounds();
        x.len() == self.layout.len
            && x.iter()
                .zip(lower.iter().zip(&upper))
                .all(|(v, (lo, hi))| v >= lo && v <= hi)
            && self
                .linear_constraints()
                .iter()
                .all(|(a, b)| dot(a, x) >= *b)
    }

    /// arch's starting point: the sample mean, the best of its grid of
    /// variance parameters by Gaussian likelihood, and `ν` from the kurtosis
    /// of the standardised residuals.
    pub fn starting_point(&self) -> Vec<f64> {
        let l = self.layout;
        let grid = [0.01, 0.05, 0.1, 0.2];
        let persistences = [0.5, 0.7, 0.9, 0.98];
        let resids: Vec<f64> = self.returns.iter().map(|r| r - self.start_mean).collect();
        let gaussian = Sample {
            returns: &resids,
            layout: Layout::of(GarchSpec::new(
                if l.gamma.is_some() {
                    Model::Gjr
                } else {
                    Model::Garch
                },
                Distribution::Normal,
                Mean::Zero,
            )),
            ..self.clone()
        };
        let mut best: Option<(f64, Vec<f64>)> = None;
        for &alpha in &grid {
            for &gamma in &grid {
                for &persistence in &persistences {
                    let omega = (1.0 - persistence) * self.mean_square;
                    let candidate = match l.gamma {
                        Some(_) => vec![omega, alpha, gamma, persistence - alpha - gamma / 2.0],
                        None => vec![omega, alpha, persistence - alpha],
                    };
                    let nll = gaussian.nll(&candidate);
                    if best.as_ref().is_none_or(|(b, _)| nll < *b) {
                        best = Some((nll, candidate));
                    }
                }
            }
        }
        let variance = best.map(|(_, v)| v).unwrap_or_default();
        let mut x = Vec::with_capacity(l.len);
        if l.mu.is_some() {
            x.push(self.start_mean);
        }
        x.extend(&variance);
        if l.nu.is_some() {
            let (path, _) = gaussian.variances(&variance);
            let z: Vec<f64> = resids
                .iter()
                .zip(&path)
                .map(|(e, s)| e / s.sqrt())
                .collect();
            let k = kurtosis(&z);
            let nu = if k > 3.75 {
                (4.0 * k - 6.0) / (k - 3.0)
            } else {
                12.0
            };
            x.push(nu.max(4.0));
        }
        x
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// arch's backcast: `Σ wᵢ eᵢ²` over the first 75 residuals, `wᵢ ∝ 0.94ⁱ`.
fn backcast(resids: &[f64]) -> f64 {
    let tau = resids.len().min(BACKCAST_LEN);
    let weights: Vec<f64> = (0..tau).map(|i| BACKCAST_DECAY.powf(i as f64)).collect();
    let total: f64 = weights.iter().sum();
    resids
        .iter()
        .zip(&weights)
        .map(|(e, w)| e * e * (w / total))
        .sum()
}

/// arch's `variance_bounds`: an EWMA of the squared residuals, divided and
/// multiplied by 10⁶, with the lower bound at least `var/10⁸` and the upper
/// between `1 + max e²` and `10⁷ (1 + max e²)`.
fn variance_bounds(resids: &[f64], backcast: f64, variance: f64) -> Vec<(f64, f64)> {
    let max_square = resids.iter().map(|e| e * e).fold(0.0, f64::max);
    let floor = variance / 1e8;
    let (min_upper, max_upper) = (1.0 + max_square, 1e7 * (1.0 + max_square));
    let ewma = Recursion {
        omega: 0.0,
        alpha: 1.0 - BACKCAST_DECAY,
        gamma: 0.0,
        beta: BACKCAST_DECAY,
    };
    let mut s = ewma.first(backcast);
    resids
        .iter()
        .map(|&e| {
            let bounds = (
                (s / 1e6).max(floor),
                (s * 1e6).max(min_upper).min(max_upper),
            );
            s = ewma.next(e, s);
            bounds
        })
        .collect()
}

/// Pearson's kurtosis `m₄ / m₂²` (not excess), with population moments.
fn kurtosis(z: &[f64]) -> f64 {
    let n = z.len().max(1) as f64;
    let mean = z.iter().sum::<f64>() / n;
    let (m2, m4) = z.iter().fold((0.0, 0.0), |(m2, m4), v| {
        let d2 = (v - mean).powi(2);
        (m2 + d2, m4 + d2 * d2)
    });
    (m4 / n) / (m2 / n).powi(2)
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, nine terms: about 15 digits).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (PI / (PI * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let z = x - 1.0;
    let sum = COEFFS[1..]
        .iter()
        .enumerate()
        .fold(COEFFS[0], |acc, (i, c)| acc + c / (z + (i + 1) as f64));
    let t = z + G + 0.5;
    0.5 * (2.0 * PI).ln() + (z + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_known_values() {
        // Reference values from Python's math.lgamma.
        for (x, expected) in [
            (0.5, 0.572_364_942_924_700_4),
            (1.0, 0.0),
            (2.5, 0.284_682_870_472_919_6),
            (3.35, 1.039_279_023_253_960_6),
            (250.5, 1_131.284_001_332_255),
        ] {
            let got = ln_gamma(x);
            assert!(
                (got - expected).abs() <= 1e-13 * expected.abs().max(1.0),
                "lnΓ({x}) = {got}, expected {expected}"
            );
        }
    }

    #[test]
    fn first_variance_uses_the_backcast_for_every_lag() {
        let r = Recursion {
            omega: 0.1,
            alpha: 0.05,
            gamma: 0.1,
            beta: 0.8,
        };
        assert!((r.first(2.0) - (0.1 + 0.05 * 2.0 + 0.1 + 0.8 * 2.0)).abs() < 1e-15);
        assert!((r.next(-1.0, 2.0) - (0.1 + 0.05 + 0.1 + 1.6)).abs() < 1e-15);
        assert!((r.next(1.0, 2.0) - (0.1 + 0.05 + 1.6)).abs() < 1e-15);
    }

    #[test]
    fn bounds_bend_upward_past_the_upper_limit() {
        assert_eq!(bounded(0.5, (1.0, 10.0)), 1.0);
        assert_eq!(bounded(5.0, (1.0, 10.0)), 5.0);
        assert!((bounded(100.0, (1.0, 10.0)) - (10.0 + 10f64.ln())).abs() < 1e-12);
        assert_eq!(bounded(f64::INFINITY, (1.0, 10.0)), 1010.0);
    }
}
