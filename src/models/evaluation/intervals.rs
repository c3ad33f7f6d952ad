//! Held-out coverage of the served prediction intervals: each held-out
//! forecast's interval is built exactly as a request would build it (the
//! same calibration points, the same volatility scale), and scored by
//! whether the actual return fell inside it.

use serde::{Deserialize, Serialize};

use crate::models::interval::{conformal_interval, volatility_at, wilson_interval, Residual};

/// Confidence of the coverage intervals reported.
const CI_CONFIDENCE: f64 = 0.95;

/// One held-out forecast's interval and outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalOutcome {
    pub symbol: String,
    /// The volatility at the forecast's close (its regime).
    pub scale: f64,
    /// Upper minus lower return; infinite when unbounded.
    pub width: f64,
    pub covered: bool,
}

impl IntervalOutcome {
    /// The interval from `calibration` around `predicted` at close `t` of
    /// `closes`, scored against `actual`.
    pub fn of(
        symbol: &str,
        calibration: &[Residual],
        closes: &[f64],
        t: usize,
        predicted: f64,
        actual: f64,
        level: f64,
    ) -> Self {
        let scale = volatility_at(closes, t);
        let i = conformal_interval(calibration, predicted, scale, level);
        IntervalOutcome {
            symbol: symbol.to_string(),
            scale,
            width: i.width(),
            covered: i.contains(actual),
        }
    }
}

/// Coverage of a group of held-out intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageRate {
    pub samples: usize,
    pub coverage: f64,
    /// Wilson 95 % interval of the coverage.
    pub coverage_low: f64,
    pub coverage_high: f64,
    /// Mean upper minus lower return.
    pub mean_width: f64,
}

impl CoverageRate {
    fn of<'a>(outcomes: impl Iterator<Item = &'a IntervalOutcome>) -> Option<Self> {
        let (mut n, mut covered, mut width) = (0usize, 0usize, 0.0);
        for o in outcomes {
            n += 1;
            covered += usize::from(o.covered);
            width += o.width;
        }
        let (coverage_low, coverage_high) = wilson_interval(covered, n, CI_CONFIDENCE).ok()?;
        Some(CoverageRate {
            samples: n,
            coverage: covered as f64 / n as f64,
            coverage_low,
            coverage_high,
            mean_width: width / n as f64,
        })
    }
}

/// A forecaster's interval coverage on the held-out years.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalSummary {
    pub level: f64,
    pub stocks: usize,
    pub pooled: CoverageRate,
    /// By the volatility at the forecast's close: the pooled thirds.
    pub calm: CoverageRate,
    pub normal: CoverageRate,
    pub turbulent: CoverageRate,
    pub per_stock: Vec<(String, CoverageRate)>,
}

impl IntervalSummary {
    pub fn of(outcomes: &[IntervalOutcome], level: f64) -> Option<Self> {
        let mut scales: Vec<f64> = outcomes.iter().map(|o| o.scale).collect();
        scales.sort_by(f64::total_cmp);
        let third = |k: usize| scales.get(scales.len() * k / 3).copied();
        let (low, high) = (third(1)?, third(2)?);
        let mut stocks: Vec<String> = outcomes.iter().map(|o| o.symbol.clone()).collect();
        stocks.dedup();
        let per_stock = stocks
            .iter()
            .filter_map(|s| {
                CoverageRate::of(outcomes.iter().filter(|o| &o.symbol == s)).map(|c| (s.clone(), c))
            })
            .collect::<Vec<_>>();
        Some(IntervalSummary {
            level,
            stocks: per_stock.len(),
            pooled: CoverageRate::of(outcomes.iter())?,
            calm: CoverageRate::of(outcomes.iter().filter(|o| o.scale < low))?,
            normal: CoverageRate::of(outcomes.iter().filter(|o| (low..high).contains(&o.scale)))?,
            turbulent: CoverageRate::of(outcomes.iter().filter(|o| o.scale >= high))?,
            per_stock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_is_counted_overall_by_regime_and_by_stock() {
        let outcome = |symbol: &str, scale: f64, covered: bool| IntervalOutcome {
            symbol: symbol.into(),
            scale,
            width: 2.0 * scale,
            covered,
        };
        let mut outcomes = Vec::new();
        for k in 0..90 {
            // Calm days always covered, turbulent ones covered half the time.
            let scale = 0.01 * (1 + k % 3) as f64;
            let covered = k % 3 != 2 || k % 2 == 0;
            outcomes.push(outcome(if k < 45 { "A" } else { "B" }, scale, covered));
        }
        let s = IntervalSummary::of(&outcomes, 0.9).unwrap();
        assert_eq!((s.pooled.samples, s.stocks), (90, 2));
        assert_eq!((s.calm.coverage, s.normal.coverage), (1.0, 1.0));
        assert!(
            (s.turbulent.coverage - 0.5).abs() < 0.05,
            "{:?}",
            s.turbulent
        );
        assert!(
            s.pooled.coverage_low < s.pooled.coverage && s.pooled.coverage < s.pooled.coverage_high
        );
        assert!((s.calm.mean_width - 0.02).abs() < 1e-12);
        assert_eq!(s.per_stock[0].1.samples, 45);
    }
}
