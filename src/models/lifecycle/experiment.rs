//! A/B tests on live traffic: which arm serves a forecast, and how each
//! arm has done since.
//!
//! A forecast's arm is a pure function of (model, caller, symbol): the
//! first 8 bytes of SHA-256 over them, read as a fraction of 2^64, below
//! the configured share means the challenger. The same caller asking for
//! the same symbol always gets the same arm (for as long as the champion,
//! the challenger and the share stay), and the split over many callers is
//! the share.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::models::interval::{normal_quantile, wilson_interval};
use crate::models::tracking::ScoreSums;

use super::gate::{Estimate, Margins};

/// The version that served a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Champion,
    Challenger,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Champion => "champion",
            Arm::Challenger => "challenger",
        }
    }
}

/// Where (model, caller, symbol) falls in [0, 1).
pub fn position(model: &str, caller: &str, symbol: &str) -> f64 {
    let mut h = Sha256::new();
    for part in [model, caller, symbol] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// The arm of (model, caller, symbol) when `share` of traffic goes to the
/// challenger.
pub fn assign(model: &str, caller: &str, symbol: &str, share: f64) -> Arm {
    if share > 0.0 && position(model, caller, symbol) < share {
        Arm::Challenger
    } else {
        Arm::Champion
    }
}

/// One arm's live figures, each with its 95 % interval.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ArmScores {
    pub version: String,
    pub scored: u64,
    /// Share of forecasts with the sign of the return (Wilson interval).
    pub hit_rate: Option<Estimate>,
    /// Mean |forecast - actual| (normal interval).
    pub mae: Option<Estimate>,
    /// RMSE against the no-change forecast's (delta-method interval).
    pub rmse_ratio: Option<Estimate>,
}

const Z95: f64 = 1.959_963_984_540_054;

/// A rate within rounding of 0 or 1, as that.
fn snap(rate: f64) -> f64 {
    if rate < 1e-12 {
        0.0
    } else if rate > 1.0 - 1e-12 {
        1.0
    } else {
        rate
    }
}

impl ArmScores {
    pub fn of(version: &str, s: &ScoreSums) -> Self {
        let n = s.n as f64;
        let hit_rate = (s.n > 0).then(|| {
            let (lower, upper) =
                wilson_interval(s.hits as usize, s.n as usize, 0.95).unwrap_or((0.0, 1.0));
            Estimate {
                estimate: s.hits as f64 / n,
                lower: snap(lower),
                upper: snap(upper),
            }
        });
        // An interval needs a spread: at least two forecasts.
        let mae = (s.n > 1).then(|| {
            let mean = s.abs_error / n;
            let variance = ((s.sq_error - n * mean * mean) / (n - 1.0)).max(0.0);
            let half = Z95 * (variance / n).sqrt();
            Estimate {
                estimate: mean,
                lower: (mean - half).max(0.0),
                upper: mean + half,
            }
        });
        let rmse_ratio = ratio_of_means(s).map(|(r, se)| Estimate {
            estimate: r.sqrt(),
            lower: (r - Z95 * se).max(0.0).sqrt(),
            upper: (r + Z95 * se).sqrt(),
        });
        ArmScores {
            version: version.to_string(),
            scored: s.n,
            hit_rate,
            mae,
            rmse_ratio,
        }
    }
}

/// R = mean(error^2) / mean(actual^2) and its standard error by the delta
/// method (linearising the ratio of two means).
fn ratio_of_means(s: &ScoreSums) -> Option<(f64, f64)> {
    if s.n < 2 || s.sq_actual <= 0.0 {
        return None;
    }
    let n = s.n as f64;
    let (me, ma) = (s.sq_error / n, s.sq_actual / n);
    let r = me / ma;
    let var_e = (s.sq_error_sq / n - me * me).max(0.0);
    let var_a = (s.sq_actual_sq / n - ma * ma).max(0.0);
    let cov = s.sq_error_sq_actual / n - me * ma;
    let var_r = ((var_e - 2.0 * r * cov + r * r * var_a) / (ma * ma * n)).max(0.0);
    Some((r, var_r.sqrt()))
}

/// Whether the arms differ: the hit rates (two-proportion normal test) or
/// the squared-error ratios (delta method on their logs) differ at an
/// overall 5 % level (2.5 % each).
pub fn significant(champion: &ScoreSums, challenger: &ScoreSums) -> bool {
    let z = normal_quantile(1.0 - 0.025 / 2.0);
    let hits = (champion.n > 0 && challenger.n > 0) && {
        let (n1, n2) = (champion.n as f64, challenger.n as f64);
        let (p1, p2) = (champion.hits as f64 / n1, challenger.hits as f64 / n2);
        let se = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
        se > 0.0 && ((p2 - p1) / se).abs() > z
    };
    let errors = match (ratio_of_means(champion), ratio_of_means(challenger)) {
        (Some((r1, se1)), Some((r2, se2))) if r1 > 0.0 && r2 > 0.0 => {
            let se = ((se1 / r1).powi(2) + (se2 / r2).powi(2)).sqrt();
            se > 0.0 && ((r2.ln() - r1.ln()) / se).abs() > z
        }
        _ => false,
    };
    hits || errors
}

/// What the live scores say of a challenger.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveVerdict {
    /// Too few scored forecasts, or the intervals do not decide yet.
    Wait(String),
    /// Not worse than the champion beyond the margins.
    Promote(String),
    /// Worse than the champion beyond a margin.
    Retire(String),
}

/// The live part of the promotion gate, by the normal 95 % intervals of
/// the arms' differences (challenger minus champion) once the challenger
/// has at least `min_scored` scored forecasts: promote when the hit-rate
/// drop and the RMSE-ratio increase are both ruled out beyond the margins,
/// retire when either is shown beyond its margin, else wait for more.
pub fn live_verdict(
    champion: &ScoreSums,
    challenger: &ScoreSums,
    margins: &Margins,
    min_scored: u64,
) -> LiveVerdict {
    if challenger.n < min_scored.max(2) || champion.n < 2 {
        return LiveVerdict::Wait(format!(
            "{} of {} scored forecasts needed",
            challenger.n,
            min_scored.max(2)
        ));
    }
    let (n1, n2) = (champion.n as f64, challenger.n as f64);
    let (p1, p2) = (champion.hits as f64 / n1, challenger.hits as f64 / n2);
    let se_hits = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    let hits = (p2 - p1 - Z95 * se_hits, p2 - p1 + Z95 * se_hits);
    // The RMSE ratio is sqrt(R); its standard error by the delta method.
    let ratios = match (ratio_of_means(champion), ratio_of_means(challenger)) {
        (Some((r1, se1)), Some((r2, se2))) => {
            let (q1, q2) = (r1.sqrt(), r2.sqrt());
            let se = ((se1 / (2.0 * q1.max(1e-12))).powi(2)
                + (se2 / (2.0 * q2.max(1e-12))).powi(2))
            .sqrt();
            Some((q1, q2, q2 - q1 - Z95 * se, q2 - q1 + Z95 * se))
        }
        _ => None,
    };
    let figures = format!(
        "hit rate {p2:.4} vs {p1:.4} (difference {:.4}..{:.4}){}, {} vs {} scored forecasts",
        hits.0,
        hits.1,
        ratios.map_or(String::new(), |(q1, q2, lo, hi)| format!(
            ", RMSE ratio {q2:.4} vs {q1:.4} (difference {lo:.4}..{hi:.4})"
        )),
        challenger.n,
        champion.n
    );
    let worse = hits.1 < -margins.directional_accuracy
        || ratios.is_some_and(|(_, _, lo, _)| lo > margins.rmse_ratio);
    let not_worse = hits.0 >= -margins.directional_accuracy
        && ratios.is_some_and(|(_, _, _, hi)| hi <= margins.rmse_ratio);
    if worse {
        LiveVerdict::Retire(format!(
            "worse than the champion beyond the margins: {figures}"
        ))
    } else if not_worse {
        LiveVerdict::Promote(format!(
            "not worse than the champion beyond the margins: {figures}"
        ))
    } else {
        LiveVerdict::Wait(format!("undecided: {figures}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_caller_and_symbol_always_get_the_same_arm() {
        for share in [0.1, 0.5] {
            let first = assign("lstm_predictor", "alice", "AAPL", share);
            for _ in 0..10 {
                assert_eq!(assign("lstm_predictor", "alice", "AAPL", share), first);
            }
        }
        assert_eq!(assign("m", "alice", "AAPL", 0.0), Arm::Champion);
        assert_eq!(assign("m", "alice", "AAPL", 1.0), Arm::Challenger);
    }

    #[test]
    fn the_split_over_ten_thousand_callers_is_near_the_share() {
        for share in [0.1, 0.25, 0.5] {
            let challengers = (0..10_000)
                .filter(|i| {
                    assign("lstm_predictor", &format!("caller-{i}"), "AAPL", share)
                        == Arm::Challenger
                })
                .count();
            // Binomial(10 000, share): 4 standard deviations either side.
            let sd = (10_000.0 * share * (1.0 - share)).sqrt();
            let expected = 10_000.0 * share;
            assert!(
                (challengers as f64 - expected).abs() < 4.0 * sd,
                "{challengers} of 10 000 at share {share}"
            );
        }
    }

    fn sums(pairs: &[(f64, f64)]) -> ScoreSums {
        let mut s = ScoreSums::default();
        for &(p, a) in pairs {
            s.add(p, a);
        }
        s
    }

    fn outcomes(n: usize, right_every: usize, size: f64) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                let a: f64 = if i % 2 == 0 { 0.01 } else { -0.012 };
                let p = if i % right_every == 0 {
                    -a.signum() * size
                } else {
                    a.signum() * size
                };
                (p, a)
            })
            .collect()
    }

    #[test]
    fn arm_scores_follow_the_tracked_outcomes() {
        let s = sums(&[(0.01, 0.02), (-0.01, 0.01), (0.02, -0.01), (-0.03, -0.01)]);
        let arm = ArmScores::of("v2", &s);
        assert_eq!(arm.scored, 4);
        let hit = arm.hit_rate.unwrap();
        assert_eq!(hit.estimate, 0.5);
        assert!(hit.lower < 0.5 && hit.upper > 0.5);
        let mae = arm.mae.unwrap();
        assert!((mae.estimate - 0.08 / 4.0).abs() < 1e-15);
        let mse: f64 = (0.0001 + 0.0004 + 0.0009 + 0.0004) / 4.0;
        let naive: f64 = (0.0004 + 0.0001 + 0.0001 + 0.0001) / 4.0;
        let ratio = arm.rmse_ratio.unwrap();
        assert!((ratio.estimate - (mse / naive).sqrt()).abs() < 1e-12);
        assert!(ratio.lower <= ratio.estimate && ratio.estimate <= ratio.upper);
        assert!(ArmScores::of("v", &ScoreSums::default()).hit_rate.is_none());
        let one = ArmScores::of("v", &sums(&[(0.01, 0.02)]));
        assert_eq!(one.hit_rate.map(|h| h.upper), Some(1.0));
        assert!(one.mae.is_none() && one.rmse_ratio.is_none());
    }

    #[test]
    fn live_verdicts_wait_for_enough_scores_then_judge() {
        let good = sums(&outcomes(10_000, 3, 0.001));
        let m = Margins::default();
        let wait = |v: LiveVerdict| matches!(v, LiveVerdict::Wait(_));
        assert!(wait(live_verdict(
            &good,
            &sums(&outcomes(10, 3, 0.001)),
            &m,
            50
        )));
        assert!(matches!(
            live_verdict(&good, &good, &m, 50),
            LiveVerdict::Promote(_)
        ));
        // As good, but too few forecasts to rule out a 2-point drop.
        let few = sums(&outcomes(300, 3, 0.001));
        assert!(wait(live_verdict(&few, &few, &m, 50)));
        let worse = sums(&outcomes(2000, 2, 0.03));
        let LiveVerdict::Retire(why) = live_verdict(&good, &worse, &m, 50) else {
            panic!("a worse challenger is retired");
        };
        assert!(why.contains("hit rate") && why.contains("RMSE"), "{why}");
        assert!(significant(&good, &worse));
        assert!(!significant(&good, &good));
    }
}
