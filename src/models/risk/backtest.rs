//! VaR backtests: one-day forecasts made each day from the window of
//! returns before it, checked against that day's return. An exceedance is
//! a day whose return is below minus its VaR. Kupiec's proportion of
//! failures tests the exceedance rate against `1 − level`; Christoffersen's
//! independence test asks whether an exceedance makes the next one more
//! likely (clustered exceedances mean the forecast reacts too slowly).
//! Both likelihood ratios are `χ²(1)` under the null.

use serde::Serialize;

use super::distribution::chi2_1_sf;

/// The backtest of one method at one level.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Backtest {
    /// Days tested.
    pub days: usize,
    /// Days whose return was below minus that day's VaR.
    pub exceedances: usize,
    /// `days (1 − level)`.
    pub expected: f64,
    /// `exceedances / days`.
    pub exceedance_rate: f64,
    /// Kupiec's `LR_pof = −2 ln[(1−p)^{T−x} p^x / (1−x/T)^{T−x} (x/T)^x]`.
    pub kupiec_statistic: f64,
    /// `P(χ²₁ > LR_pof)`.
    pub kupiec_p_value: f64,
    /// Christoffersen's `LR_ind` from the day-to-day transition counts.
    pub christoffersen_statistic: f64,
    /// `P(χ²₁ > LR_ind)`.
    pub christoffersen_p_value: f64,
}

/// `a ln b`, with `0 ln 0 = 0` (the likelihood of an event never seen
/// with probability 0 is 1).
fn xlogy(a: f64, b: f64) -> f64 {
    if a == 0.0 {
        0.0
    } else {
        a * b.ln()
    }
}

/// Kupiec's proportion-of-failures statistic for `x` exceedances in `t`
/// days at exceedance probability `p`; 0 when `x / t = p`.
pub fn kupiec(x: usize, t: usize, p: f64) -> f64 {
    let (x, t) = (x as f64, t as f64);
    let rate = x / t;
    let null = xlogy(t - x, 1.0 - p) + xlogy(x, p);
    let fitted = xlogy(t - x, 1.0 - rate) + xlogy(x, rate);
    (-2.0 * (null - fitted)).max(0.0)
}

/// Christoffersen's independence statistic for a sequence of exceedance
/// indicators: with `nᵢⱼ` the days in state `j` after a day in state `i`,
/// `π₀ = n₀₁ / (n₀₀ + n₀₁)`, `π₁ = n₁₁ / (n₁₀ + n₁₁)` and
/// `π = (n₀₁ + n₁₁) / Σ n`, `LR_ind = −2 [ln L(π) − ln L(π₀, π₁)]`. Zero
/// counts drop out through `0 ln 0 = 0`, so no exceedance (or only
/// exceedances) gives 0, and no day after an exceedance leaves `π₁` out.
pub fn christoffersen(hits: &[bool]) -> f64 {
    let mut n = [[0.0f64; 2]; 2];
    for pair in hits.windows(2) {
        n[pair[0] as usize][pair[1] as usize] += 1.0;
    }
    let [[n00, n01], [n10, n11]] = n;
    let ratio = |a: f64, b: f64| if a + b > 0.0 { b / (a + b) } else { 0.0 };
    let (pi0, pi1, pi) = (
        ratio(n00, n01),
        ratio(n10, n11),
        ratio(n00 + n10, n01 + n11),
    );
    let restricted = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi);
    let free = xlogy(n00, 1.0 - pi0) + xlogy(n01, pi0) + xlogy(n10, 1.0 - pi1) + xlogy(n11, pi1);
    (-2.0 * (restricted - free)).max(0.0)
}

impl Backtest {
    /// The tests of `hits` (one per day, `true` for an exceedance) against
    /// a VaR at `level`.
    pub fn of(hits: &[bool], level: f64) -> Backtest {
        let days = hits.len();
        let exceedances = hits.iter().filter(|&&h| h).count();
        let p = 1.0 - level;
        let kupiec_statistic = kupiec(exceedances, days, p);
        let christoffersen_statistic = christoffersen(hits);
        Backtest {
            days,
            exceedances,
            expected: days as f64 * p,
            exceedance_rate: exceedances as f64 / days.max(1) as f64,
            kupiec_statistic,
            kupiec_p_value: chi2_1_sf(kupiec_statistic),
            christoffersen_statistic,
            christoffersen_p_value: chi2_1_sf(christoffersen_statistic),
        }
    }
}

/// Exceedances of one-day VaR forecasts over the last `days` of
/// `returns` (portfolio returns, oldest first): the forecast for day `t`
/// is `forecast(t, &returns[t − window..t])`, one VaR per level, so it sees
/// only the `window` returns before the day. `hits[level][day]`.
pub fn exceedances(
    returns: &[f64],
    days: usize,
    window: usize,
    levels: usize,
    mut forecast: impl FnMut(usize, &[f64]) -> Vec<f64>,
) -> Vec<Vec<bool>> {
    let n = returns.len();
    let mut hits = vec![Vec::with_capacity(days); levels];
    for t in n - days..n {
        let vars = forecast(t, &returns[t - window..t]);
        for (level_hits, var) in hits.iter_mut().zip(vars) {
            level_hits.push(returns[t] < -var);
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kupiec_is_zero_at_the_expected_rate_and_grows_away_from_it() {
        assert!(kupiec(25, 500, 0.05).abs() < 1e-12);
        assert!(kupiec(40, 500, 0.05) > kupiec(30, 500, 0.05));
        // No exceedance at all: -2 T ln(1 - p).
        assert!((kupiec(0, 500, 0.01) + 2.0 * 500.0 * 0.99f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn christoffersen_sees_clusters() {
        let spread: Vec<bool> = (0..200).map(|i| i % 20 == 0).collect();
        let clustered: Vec<bool> = (0..200).map(|i| (i % 100) < 5).collect();
        assert!(christoffersen(&clustered) > 10.0 * christoffersen(&spread).max(0.1));
        assert_eq!(christoffersen(&[false; 50]), 0.0);
        assert_eq!(christoffersen(&[true; 50]), 0.0);
        let b = Backtest::of(&[false; 100], 0.99);
        assert_eq!(b.exceedances, 0);
        assert!((b.expected - 1.0).abs() < 1e-12);
        assert_eq!(b.christoffersen_p_value, 1.0);
        assert!(b.kupiec_p_value < 1.0);
    }

    #[test]
    fn forecasts_see_only_the_window_before_the_day() {
        let r: Vec<f64> = (0..10).map(|i| -(i as f64)).collect();
        let mut seen = Vec::new();
        let hits = exceedances(&r, 3, 4, 1, |t, w| {
            seen.push((t, w.to_vec()));
            vec![7.5]
        });
        assert_eq!(seen[0], (7, vec![-3.0, -4.0, -5.0, -6.0]));
        assert_eq!(hits, vec![vec![false, true, true]]);
    }
}
