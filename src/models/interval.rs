//! Prediction intervals with distribution-free coverage: split conformal
//! prediction, its adaptive online form (ACI), and the coverage achieved.
//!
//! Split conformal: score each calibration point, held out from fitting the
//! point forecaster, by `|y − ŷ|`, or by `|y − ŷ| / σ` where a volatility
//! `σ` known at forecast time should widen the interval on turbulent days.
//! For exchangeable data the `k`-th smallest of `n` scores, with
//! `k = ⌈(n + 1)(1 − α)⌉`, is a half-width that covers a new point with
//! probability at least `1 − α`. It is an order statistic, not an
//! interpolated quantile: numpy's `quantile` at `k/n` picks a neighbour.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntervalError {
    #[error("the series differ in length ({0} and {1})")]
    LengthMismatch(usize, usize),
    #[error("{what}[{index}] is {value}: {rule}")]
    BadValue {
        what: &'static str,
        index: usize,
        value: f64,
        rule: &'static str,
    },
    #[error("{0}")]
    InvalidInput(String),
}

impl IntervalError {
    /// The contract's machine code for this error.
    pub fn code(&self) -> &'static str {
        "invalid_input"
    }
}

/// The split-conformal half-width at `level = 1 − α`: the `k`-th smallest
/// score, `k = ⌈(n + 1) · level⌉`. A product within 1e-9 of an integer
/// counts as that integer, so that a level computed as `1 − α` in floating
/// point does not pick the next score.
///
/// `None` when no finite half-width exists: `k > n` (the level is too high
/// for `n` scores, so the interval is the whole line), or a score or the
/// level is NaN. A level of 0 or less needs no score and gives `−∞` (the
/// empty set).
pub fn conformal_quantile(scores: &[f64], level: f64) -> Option<f64> {
    if level.is_nan() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let n = scores.len();
    let position = (n as f64 + 1.0) * level;
    let k = (position - 1e-9 * position.abs().max(1.0)).ceil();
    if k <= 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if k > n as f64 {
        return None;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(k as usize - 1).copied()
}

/// Conformity scores `|y − ŷ|`.
pub fn absolute_scores(actual: &[f64], predicted: &[f64]) -> Result<Vec<f64>, IntervalError> {
    same_length(actual, predicted)?;
    Ok(actual
        .iter()
        .zip(predicted)
        .map(|(y, p)| (y - p).abs())
        .collect())
}

/// Conformity scores `|y − ŷ| / σ`, with `σ` a volatility estimate known
/// when `ŷ` was made (for example a GARCH one-step forecast), so that the
/// interval `ŷ ± q σ` widens with volatility.
pub fn scaled_scores(
    actual: &[f64],
    predicted: &[f64],
    scale: &[f64],
) -> Result<Vec<f64>, IntervalError> {
    same_length(actual, predicted)?;
    same_length(actual, scale)?;
    if let Some((index, &value)) = scale
        .iter()
        .enumerate()
        .find(|(_, s)| !(s.is_finite() && **s > 0.0))
    {
        return Err(IntervalError::BadValue {
            what: "scale",
            index,
            value,
            rule: "scales must be finite and greater than 0",
        });
    }
    Ok(actual
        .iter()
        .zip(predicted)
        .zip(scale)
        .map(|((y, p), s)| (y - p).abs() / s)
        .collect())
}

fn same_length(a: &[f64], b: &[f64]) -> Result<(), IntervalError> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(IntervalError::LengthMismatch(a.len(), b.len()))
    }
}

/// A prediction interval at a nominal coverage `level`. Unbounded ends are
/// infinite (and serialise as `null` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub level: f64,
    pub lower: f64,
    pub upper: f64,
}

impl Interval {
    /// `center ± half_width`: the whole line when `half_width` is `None`,
    /// the point `center` when it is negative (the empty conformal set, which
    /// for continuous data covers just as often: never).
    pub fn symmetric(center: f64, half_width: Option<f64>, level: f64) -> Self {
        let (lower, upper) = match half_width {
            None => (f64::NEG_INFINITY, f64::INFINITY),
            Some(h) => {
                let h = h.max(0.0);
                (center - h, center + h)
            }
        };
        Interval {
            level,
            lower,
            upper,
        }
    }

    pub fn contains(&self, y: f64) -> bool {
        self.lower <= y && y <= self.upper
    }

    pub fn is_bounded(&self) -> bool {
        self.lower.is_finite() && self.upper.is_finite()
    }

    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }
}

/// A calibrated split-conformal forecaster's half-width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SplitConformal {
    pub level: f64,
    /// The score quantile; `None` when the interval is the whole line.
    pub quantile: Option<f64>,
}

impl SplitConformal {
    /// Calibrates on `scores` at `level` in (0, 1).
    pub fn calibrate(scores: &[f64], level: f64) -> Result<Self, IntervalError> {
        if !(level > 0.0 && level < 1.0) {
            return Err(IntervalError::InvalidInput(format!(
                "level must be between 0 and 1, got {level}"
            )));
        }
        if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| s.is_nan()) {
            return Err(IntervalError::BadValue {
                what: "scores",
                index,
                value,
                rule: "scores must be numbers",
            });
        }
        Ok(SplitConformal {
            level,
            quantile: conformal_quantile(scores, level),
        })
    }

    /// The interval around `prediction`; `scale` is the new point's `σ` for
    /// scaled scores, 1 for absolute ones.
    pub fn interval(&self, prediction: f64, scale: f64) -> Interval {
        Interval::symmetric(prediction, self.quantile.map(|q| q * scale), self.level)
    }
}

/// Adaptive conformal inference (Gibbs & Candès 2021): an online `αₜ`
/// nudged after each outcome, `αₜ₊₁ = αₜ + γ (α − errₜ)`, with `errₜ = 1`
/// on a miss. Misses lower `αₜ` and widen later intervals, so the long-run
/// miss rate approaches `α` even when the data drift and the calibration
/// scores stop being exchangeable with new points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdaptiveConformal {
    target: f64,
    gamma: f64,
    alpha: f64,
}

impl AdaptiveConformal {
    /// Targets miss rate `alpha` in (0, 1) with step size `gamma ≥ 0`
    /// (0 is plain split conformal; Gibbs & Candès use about 0.005).
    pub fn new(alpha: f64, gamma: f64) -> Result<Self, IntervalError> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(IntervalError::InvalidInput(format!(
                "alpha must be between 0 and 1, got {alpha}"
            )));
        }
        if !(gamma.is_finite() && gamma >= 0.0) {
            return Err(IntervalError::InvalidInput(format!(
                "gamma must be finite and not negative, got {gamma}"
            )));
        }
        Ok(AdaptiveConformal {
            target: alpha,
            gamma,
            alpha,
        })
    }

    /// The current `αₜ`, which may leave [0, 1].
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The level the next interval is built at: `1 − αₜ` clamped to [0, 1];
    /// at 1 the interval is the whole line.
    pub fn level(&self) -> f64 {
        (1.0 - self.alpha).clamp(0.0, 1.0)
    }

    /// Records whether the last interval covered its outcome.
    pub fn observe(&mut self, covered: bool) {
        let err = if covered { 0.0 } else { 1.0 };
        self.alpha += self.gamma * (self.target - err);
    }

    /// The next interval: `center ± q · scale`, `q` the conformal quantile of
    /// `scores` at [`level`](Self::level).
    pub fn interval(&self, scores: &[f64], center: f64, scale: f64) -> Interval {
        let level = self.level();
        Interval::symmetric(
            center,
            conformal_quantile(scores, level).map(|q| q * scale),
            level,
        )
    }
}

/// How often intervals covered their outcomes, with a confidence interval
/// for the true coverage rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coverage {
    pub covered: usize,
    pub n: usize,
    pub rate: f64,
    /// Wilson score interval for the rate at `confidence`.
    pub lower: f64,
    pub upper: f64,
    pub confidence: f64,
}

/// Empirical coverage of `intervals` over `actual` outcomes.
pub fn coverage(
    actual: &[f64],
    intervals: &[Interval],
    confidence: f64,
) -> Result<Coverage, IntervalError> {
    if actual.len() != intervals.len() {
        return Err(IntervalError::LengthMismatch(actual.len(), intervals.len()));
    }
    let covered = actual
        .iter()
        .zip(intervals)
        .filter(|(y, i)| i.contains(**y))
        .count();
    let n = actual.len();
    let (lower, upper) = wilson_interval(covered, n, confidence)?;
    Ok(Coverage {
        covered,
        n,
        rate: covered as f64 / n as f64,
        lower,
        upper,
        confidence,
    })
}

/// The Wilson score interval for a binomial proportion `successes / n` at
/// `confidence` in (0, 1): unlike the normal approximation it stays inside
/// [0, 1] and keeps its coverage near rates of 0 or 1, where good intervals
/// live.
pub fn wilson_interval(
    successes: usize,
    n: usize,
    confidence: f64,
) -> Result<(f64, f64), IntervalError> {
    if n == 0 || successes > n {
        return Err(IntervalError::InvalidInput(format!(
            "need 0 <= successes <= n and n > 0, got {successes} of {n}"
        )));
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(IntervalError::InvalidInput(format!(
            "confidence must be between 0 and 1, got {confidence}"
        )));
    }
    let z = normal_quantile(0.5 + confidence / 2.0);
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Ok(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The standard normal quantile for `p` in (0, 1) (Acklam's rational
/// approximation, relative error below 1.2e-9).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// The coverage a forecast's interval aims at unless the request says.
pub const DEFAULT_LEVEL: f64 = 0.9;

/// Returns behind the volatility that scales a conformity score.
pub const VOLATILITY_WINDOW: usize = 21;

/// The volatility known at close `t`: the standard deviation (ddof 0) of
/// the simple returns over the [`VOLATILITY_WINDOW`] periods up to it
/// (fewer near the start), floored so a flat stretch never divides by 0.
pub fn volatility_at(closes: &[f64], t: usize) -> f64 {
    let from = t.saturating_sub(VOLATILITY_WINDOW);
    let returns: Vec<f64> = closes[from..=t.min(closes.len().saturating_sub(1))]
        .windows(2)
        .map(|w| w[1] / w[0] - 1.0)
        .collect();
    let n = returns.len().max(1) as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    var.sqrt().max(1e-6)
}

/// A forecast made at a past close, what followed, and the volatility
/// known when it was made: one calibration point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Residual {
    pub predicted: f64,
    pub actual: f64,
    pub scale: f64,
}

impl Residual {
    /// The forecast made at close `t` of `closes` for `horizon` periods on.
    pub fn at(closes: &[f64], t: usize, horizon: usize, predicted: f64) -> Self {
        Residual {
            predicted,
            actual: closes[t + horizon] / closes[t] - 1.0,
            scale: volatility_at(closes, t),
        }
    }

    /// `|actual − predicted| / scale`.
    pub fn score(&self) -> f64 {
        (self.actual - self.predicted).abs() / self.scale
    }
}

/// The split conformal interval of a return forecast: `predicted ± q σ`,
/// `q` the conformal quantile at `level` of the calibration points' scaled
/// scores and `σ` the volatility at the forecast's close. Unbounded (the
/// whole line) when too few points back the level.
pub fn conformal_interval(
    calibration: &[Residual],
    predicted: f64,
    scale: f64,
    level: f64,
) -> Interval {
    let scores: Vec<f64> = calibration.iter().map(Residual::score).collect();
    Interval::symmetric(
        predicted,
        conformal_quantile(&scores, level).map(|q| q * scale),
        level,
    )
}

/// Fewest calibration points that give a bounded interval at `level`:
/// the smallest `n` with `⌈(n + 1) level⌉ ≤ n`.
pub fn points_needed(level: f64) -> usize {
    (1..100_000)
        .find(|&n| conformal_quantile(&vec![0.0; n], level).is_some())
        .unwrap_or(100_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forecast_interval_widens_with_the_volatility_at_its_close() {
        let calm: Vec<f64> = (0..40).map(|i| 100.0 + (i % 2) as f64 * 0.1).collect();
        let mut wild = calm.clone();
        for (i, c) in wild.iter_mut().enumerate() {
            *c *= 1.0 + 0.05 * (i % 2) as f64;
        }
        assert!(volatility_at(&wild, 30) > 10.0 * volatility_at(&calm, 30));
        // Calibration points whose scaled scores are 1, 2, ..., 19.
        let points: Vec<Residual> = (1..20)
            .map(|k| Residual {
                predicted: 0.0,
                actual: k as f64 * 0.01,
                scale: 0.01,
            })
            .collect();
        // n = 19 at 0.9: the 18th smallest score, 18.
        let narrow = conformal_interval(&points, 0.001, 0.001, 0.9);
        let wide = conformal_interval(&points, 0.001, 0.01, 0.9);
        assert!((narrow.upper - (0.001 + 18.0 * 0.001)).abs() < 1e-12);
        assert!((wide.width() / narrow.width() - 10.0).abs() < 1e-9);
        // Too few points for 0.99: the whole line, not a made-up bound.
        assert!(!conformal_interval(&points, 0.0, 0.01, 0.99).is_bounded());
        assert_eq!(points_needed(0.9), 9);
        assert_eq!(points_needed(0.99), 99);
    }

    /// Standard normals from a splitmix64 stream (Box-Muller).
    fn normals(seed: u64, n: usize) -> Vec<f64> {
        let mut state = seed;
        let mut uniform = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (uniform().max(1e-300), uniform());
                (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
            })
            .collect()
    }

    #[test]
    fn order_statistic_by_hand() {
        let scores = [0.5, 0.1, 0.4, 0.3, 0.2];
        // k = ⌈6 · 0.5⌉ = 3, ⌈6 · 0.8⌉ = 5, ⌈6 · 0.9⌉ = 6 > 5.
        assert_eq!(conformal_quantile(&scores, 0.5), Some(0.3));
        assert_eq!(conformal_quantile(&scores, 0.8), Some(0.5));
        assert_eq!(conformal_quantile(&scores, 0.9), None);
        assert_eq!(conformal_quantile(&scores, 1.0), None);
        assert_eq!(conformal_quantile(&scores, 0.0), Some(f64::NEG_INFINITY));
        assert_eq!(conformal_quantile(&[], 0.5), None);
        assert_eq!(conformal_quantile(&[0.1, f64::NAN], 0.5), None);
        assert_eq!(conformal_quantile(&scores, f64::NAN), None);
    }

    #[test]
    fn thousand_scores_at_ninety_percent_pick_the_901st() {
        // Scores 1..=1000 in a scrambled order: the k-th smallest is k.
        let scores: Vec<f64> = (0..1000u64)
            .map(|i| ((i * 7919) % 1000 + 1) as f64)
            .collect();
        assert_eq!(conformal_quantile(&scores, 1.0 - 0.1), Some(901.0));
        // (n + 1)(1 − α) an integer in exact arithmetic, off by an ulp in
        // floating point: still that integer.
        let ninety_nine: Vec<f64> = (1..=99).map(f64::from).collect();
        assert_eq!(conformal_quantile(&ninety_nine, 0.9), Some(90.0));
        assert_eq!(conformal_quantile(&ninety_nine, 1.0 - 0.1), Some(90.0));
    }

    #[test]
    fn normal_quantile_matches_known_values() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.995, 2.575_829_303_548_901),
            (0.01, -2.326_347_874_040_841),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "Φ⁻¹({p})");
        }
    }

    #[test]
    fn split_conformal_covers_iid_normal_data() {
        let calibration = normals(1, 1000);
        let test = normals(2, 5000);
        let scores = absolute_scores(&calibration, &vec![0.0; 1000]).unwrap();
        let conformal = SplitConformal::calibrate(&scores, 0.9).unwrap();
        // The 901st smallest |z| of 1000 is near Φ⁻¹(0.95) = 1.645.
        assert!((conformal.quantile.unwrap() - 1.645).abs() < 0.1);
        let intervals: Vec<Interval> = test.iter().map(|_| conformal.interval(0.0, 1.0)).collect();
        let c = coverage(&test, &intervals, 0.95).unwrap();
        assert!((c.rate - 0.9).abs() < 0.02, "{c:?}");
        assert!(c.lower < c.rate && c.rate < c.upper && c.upper - c.lower < 0.03);
    }

    #[test]
    fn scaled_scores_widen_with_volatility() {
        let scores = scaled_scores(&[2.0, -1.0], &[0.0, 0.0], &[2.0, 0.5]).unwrap();
        assert_eq!(scores, [1.0, 2.0]);
        assert!(scaled_scores(&[1.0], &[0.0], &[0.0]).is_err());
        assert!(absolute_scores(&[1.0], &[]).is_err());
        let conformal = SplitConformal::calibrate(&[1.0, 2.0, 3.0, 4.0], 0.5).unwrap();
        let calm = conformal.interval(10.0, 1.0);
        let wild = conformal.interval(10.0, 3.0);
        assert_eq!((calm.lower, calm.upper), (7.0, 13.0));
        assert_eq!(wild.width(), 3.0 * calm.width());
    }

    #[test]
    fn aci_lowers_alpha_after_a_miss_and_raises_it_after_a_cover() {
        let mut aci = AdaptiveConformal::new(0.1, 0.01).unwrap();
        aci.observe(false);
        assert!((aci.alpha() - (0.1 + 0.01 * (0.1 - 1.0))).abs() < 1e-15);
        assert!(aci.level() > 0.9);
        let before = aci.alpha();
        aci.observe(true);
        assert!((aci.alpha() - (before + 0.01 * 0.1)).abs() < 1e-15);
        // Enough misses push the level to 1: the whole line.
        for _ in 0..20 {
            aci.observe(false);
        }
        assert_eq!(aci.level(), 1.0);
        let scores = [1.0, 2.0, 3.0];
        assert!(!aci.interval(&scores, 0.0, 1.0).is_bounded());
        // Covers only push the level down to 0: the point interval.
        let mut loose = AdaptiveConformal::new(0.5, 1.0).unwrap();
        loose.observe(true);
        loose.observe(true);
        assert_eq!(loose.level(), 0.0);
        assert_eq!(loose.interval(&scores, 5.0, 1.0).width(), 0.0);
        assert!(AdaptiveConformal::new(0.0, 0.01).is_err());
    }

    #[test]
    fn aci_keeps_coverage_when_volatility_shifts() {
        // Calibrated on calm data, tested on data twice as volatile: split
        // conformal under-covers, ACI recovers most of the target.
        let calm: Vec<f64> = normals(3, 500).iter().map(|z| z.abs()).collect();
        let wild: Vec<f64> = normals(4, 3000).iter().map(|z| 2.0 * z).collect();
        let mut aci = AdaptiveConformal::new(0.1, 0.005).unwrap();
        let fixed = SplitConformal::calibrate(&calm, 0.9).unwrap();
        let (mut aci_hits, mut fixed_hits) = (0, 0);
        for &y in &wild {
            let interval = aci.interval(&calm, 0.0, 1.0);
            let covered = interval.contains(y);
            aci_hits += usize::from(covered);
            fixed_hits += usize::from(fixed.interval(0.0, 1.0).contains(y));
            aci.observe(covered);
        }
        let (aci_rate, fixed_rate) = (aci_hits as f64 / 3000.0, fixed_hits as f64 / 3000.0);
        assert!(fixed_rate < 0.75, "{fixed_rate}");
        assert!(aci_rate > 0.85, "{aci_rate}");
    }

    #[test]
    fn wilson_interval_by_hand() {
        // 90 of 100 at 95 %: the textbook (0.8256, 0.9448).
        let (lo, hi) = wilson_interval(90, 100, 0.95).unwrap();
        assert!(
            (lo - 0.8256).abs() < 1e-4 && (hi - 0.9448).abs() < 1e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_interval(0, 10, 0.95).unwrap();
        assert!(lo == 0.0 && hi > 0.0 && hi < 0.35);
        assert!(wilson_interval(3, 2, 0.95).is_err() && wilson_interval(1, 2, 1.0).is_err());
    }
}
