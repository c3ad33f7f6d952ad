//! The promotion gate: a challenger may replace the champion only if, on
//! the same held-out windows, it is not worse beyond configured margins.
//!
//! Both versions forecast every window of the challenger's test period.
//! Two figures are compared, each as challenger minus champion:
//!
//! - the RMSE ratio against the no-change forecast (lower is better), and
//! - directional accuracy (higher is better).
//!
//! Their 95 % intervals come from a paired bootstrap: windows are drawn
//! with replacement (the same draw for both versions, so what the two
//! share cancels) `resamples` times from a fixed seed, and the 2.5 % and
//! 97.5 % percentiles are read off. The challenger passes when the upper
//! end of the RMSE-ratio difference is at most `rmse_ratio` and the lower
//! end of the accuracy difference is at least `-directional_accuracy`: a
//! non-inferiority test, so a challenger is refused when the data cannot
//! rule out that it is worse by more than the margin.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::models::interval::wilson_interval;

/// How much worse than the champion a challenger may be, and how the
/// intervals are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Margins {
    /// Largest accepted increase of the RMSE ratio.
    pub rmse_ratio: f64,
    /// Largest accepted drop of directional accuracy.
    pub directional_accuracy: f64,
    pub resamples: usize,
    pub seed: u64,
}

impl Default for Margins {
    fn default() -> Self {
        Margins {
            rmse_ratio: 0.01,
            directional_accuracy: 0.02,
            resamples: 1000,
            seed: 17,
        }
    }
}

/// One held-out window: both versions' forecasts of a simple return, and
/// the return that followed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    pub champion: f64,
    pub challenger: f64,
    pub actual: f64,
}

/// An estimate with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Estimate {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// One version's figures on the gate's windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionScores {
    /// Bootstrap interval.
    pub rmse_ratio: Estimate,
    /// Wilson interval.
    pub directional_accuracy: Estimate,
}

/// The gate's finding, kept in the challenger's card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verdict {
    pub passed: bool,
    pub reason: String,
    /// Dates of the windows compared.
    pub period: String,
    pub samples: usize,
    pub champion_version: String,
    pub champion: VersionScores,
    pub challenger: VersionScores,
    /// Challenger minus champion.
    pub rmse_ratio_difference: Estimate,
    pub accuracy_difference: Estimate,
    pub margins: Margins,
}

/// Sums over a set of windows that the figures are read from.
#[derive(Default, Clone, Copy)]
struct Sums {
    champion_sq: f64,
    challenger_sq: f64,
    actual_sq: f64,
    champion_hits: usize,
    challenger_hits: usize,
}

impl Sums {
    fn add(&mut self, p: &Paired) {
        self.champion_sq += (p.champion - p.actual).powi(2);
        self.challenger_sq += (p.challenger - p.actual).powi(2);
        self.actual_sq += p.actual * p.actual;
        self.champion_hits += usize::from(p.champion * p.actual > 0.0);
        self.challenger_hits += usize::from(p.challenger * p.actual > 0.0);
    }

    fn ratios(&self) -> (f64, f64) {
        let naive = self.actual_sq.max(f64::MIN_POSITIVE);
        (
            (self.champion_sq / naive).sqrt(),
            (self.challenger_sq / naive).sqrt(),
        )
    }
}

/// The 2.5 % and 97.5 % percentiles of `values` (sorted here).
fn percentiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

fn wilson(hits: usize, n: usize) -> Estimate {
    let (lower, upper) = wilson_interval(hits, n, 0.95).unwrap_or((0.0, 1.0));
    Estimate {
        estimate: hits as f64 / n.max(1) as f64,
        lower,
        upper,
    }
}

/// Compares the versions on `windows` (at least one), naming the
/// champion and the windows' period in the verdict.
pub fn compare(
    windows: &[Paired],
    margins: &Margins,
    champion_version: &str,
    period: &str,
) -> Verdict {
    let n = windows.len();
    let finite = windows
        .iter()
        .all(|w| w.champion.is_finite() && w.challenger.is_finite() && w.actual.is_finite());
    if n == 0 || !finite {
        let zero = Estimate {
            estimate: 0.0,
            lower: 0.0,
            upper: 0.0,
        };
        let scores = VersionScores {
            rmse_ratio: zero,
            directional_accuracy: zero,
        };
        return Verdict {
            passed: false,
            reason: if n == 0 {
                "no held-out windows to compare on".into()
            } else {
                "a version forecast a non-finite return on the held-out windows".into()
            },
            period: period.to_string(),
            samples: n,
            champion_version: champion_version.to_string(),
            champion: scores,
            challenger: scores,
            rmse_ratio_difference: zero,
            accuracy_difference: zero,
            margins: *margins,
        };
    }
    let mut all = Sums::default();
    windows.iter().for_each(|w| all.add(w));
    let (champion_ratio, challenger_ratio) = all.ratios();

    let mut rng = rand::rngs::StdRng::seed_from_u64(margins.seed);
    let draws = margins.resamples.max(1);
    let (mut champion_ratios, mut challenger_ratios) = (Vec::new(), Vec::new());
    let (mut ratio_diffs, mut accuracy_diffs) = (Vec::new(), Vec::new());
    for _ in 0..draws {
        let mut s = Sums::default();
        for _ in 0..n {
            s.add(&windows[rng.random_range(0..n)]);
        }
        let (c, h) = s.ratios();
        champion_ratios.push(c);
        challenger_ratios.push(h);
        ratio_diffs.push(h - c);
        accuracy_diffs.push((s.challenger_hits as f64 - s.champion_hits as f64) / n as f64);
    }
    let estimate = |estimate: f64, draws: &mut Vec<f64>| {
        let (lower, upper) = percentiles(draws);
        Estimate {
            estimate,
            lower,
            upper,
        }
    };
    let rmse_ratio_difference = estimate(challenger_ratio - champion_ratio, &mut ratio_diffs);
    let accuracy_difference = estimate(
        (all.challenger_hits as f64 - all.champion_hits as f64) / n.max(1) as f64,
        &mut accuracy_diffs,
    );
    let champion = VersionScores {
        rmse_ratio: estimate(champion_ratio, &mut champion_ratios),
        directional_accuracy: wilson(all.champion_hits, n),
    };
    let challenger = VersionScores {
        rmse_ratio: estimate(challenger_ratio, &mut challenger_ratios),
        directional_accuracy: wilson(all.challenger_hits, n),
    };

    let mut refusals = Vec::new();
    // A NaN refuses.
    let (upper, lower) = (rmse_ratio_difference.upper, accuracy_difference.lower);
    if upper.is_nan() || upper > margins.rmse_ratio {
        refusals.push(format!(
            "RMSE ratio {:.4} vs the champion's {:.4}: the increase may be up to {:.4} (95 % interval), more than the margin {}",
            challenger_ratio, champion_ratio, rmse_ratio_difference.upper, margins.rmse_ratio
        ));
    }
    if lower.is_nan() || lower < -margins.directional_accuracy {
        refusals.push(format!(
            "directional accuracy {:.4} vs the champion's {:.4}: the drop may be up to {:.4} (95 % interval), more than the margin {}",
            challenger.directional_accuracy.estimate,
            champion.directional_accuracy.estimate,
            -accuracy_difference.lower,
            margins.directional_accuracy
        ));
    }
    let passed = refusals.is_empty();
    let reason = if passed {
        format!(
            "not worse than {champion_version} beyond the margins on {n} held-out windows: RMSE ratio {challenger_ratio:.4} vs {champion_ratio:.4}, directional accuracy {:.4} vs {:.4}",
            challenger.directional_accuracy.estimate, champion.directional_accuracy.estimate
        )
    } else {
        refusals.join("; ")
    };
    Verdict {
        passed,
        reason,
        period: period.to_string(),
        samples: n,
        champion_version: champion_version.to_string(),
        champion,
        challenger,
        rmse_ratio_difference,
        accuracy_difference,
        margins: *margins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns that alternate in size and sign, deterministically.
    fn actuals(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let size = 0.005 + 0.01 * ((i * 7) % 11) as f64 / 11.0;
                if (i * 5) % 3 == 0 {
                    -size
                } else {
                    size
                }
            })
            .collect()
    }

    /// A forecast with the right sign on `skill` of the windows.
    fn forecaster(actual: &[f64], every: usize, size: f64) -> Vec<f64> {
        actual
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i % every == 0 {
                    -a.signum() * size
                } else {
                    a.signum() * size
                }
            })
            .collect()
    }

    fn paired(champion: &[f64], challenger: &[f64], actual: &[f64]) -> Vec<Paired> {
        (0..actual.len())
            .map(|i| Paired {
                champion: champion[i],
                challenger: challenger[i],
                actual: actual[i],
            })
            .collect()
    }

    #[test]
    fn a_challenger_as_good_as_the_champion_passes() {
        let a = actuals(2000);
        let f = forecaster(&a, 3, 0.001);
        let v = compare(&paired(&f, &f, &a), &Margins::default(), "v1", "p");
        assert!(v.passed, "{}", v.reason);
        assert_eq!(v.rmse_ratio_difference.estimate, 0.0);
        assert_eq!(
            (v.accuracy_difference.lower, v.accuracy_difference.upper),
            (0.0, 0.0)
        );
    }

    #[test]
    fn a_noisier_challenger_is_refused_on_its_rmse_ratio() {
        let a = actuals(2000);
        let champion = vec![0.0; a.len()];
        // Large forecasts with right signs 2 in 3: accuracy is fine, error is not.
        let noisy = forecaster(&a, 3, 0.05);
        let v = compare(
            &paired(&champion, &noisy, &a),
            &Margins::default(),
            "v1",
            "p",
        );
        assert!(!v.passed);
        assert!(v.reason.contains("RMSE ratio"), "{}", v.reason);
        assert!(v.challenger.rmse_ratio.estimate > 1.5);
        assert_eq!(v.champion.rmse_ratio.estimate, 1.0);
    }

    #[test]
    fn a_less_accurate_challenger_is_refused_on_direction() {
        let a = actuals(2000);
        let champion = forecaster(&a, 3, 0.0001); // right 2 in 3
        let challenger = forecaster(&a, 2, 0.0001); // right 1 in 2
        let v = compare(
            &paired(&champion, &challenger, &a),
            &Margins::default(),
            "v1",
            "p",
        );
        assert!(!v.passed);
        assert!(v.reason.contains("directional accuracy"), "{}", v.reason);
        assert!(v.accuracy_difference.upper < 0.0);
        let champion_accuracy = v.champion.directional_accuracy;
        assert!(champion_accuracy.lower < 0.667 && 0.667 < champion_accuracy.upper);
    }

    #[test]
    fn a_better_challenger_passes_and_the_intervals_bracket_the_estimates() {
        let a = actuals(1000);
        let champion = forecaster(&a, 2, 0.002);
        let challenger = forecaster(&a, 4, 0.002);
        let v = compare(
            &paired(&champion, &challenger, &a),
            &Margins::default(),
            "v1",
            "p",
        );
        assert!(v.passed, "{}", v.reason);
        for e in [
            v.rmse_ratio_difference,
            v.accuracy_difference,
            v.challenger.rmse_ratio,
        ] {
            assert!(e.lower <= e.estimate && e.estimate <= e.upper, "{e:?}");
        }
        assert!(v.accuracy_difference.lower > 0.0);
        // The same seed draws the same intervals.
        assert_eq!(
            v,
            compare(
                &paired(&champion, &challenger, &a),
                &Margins::default(),
                "v1",
                "p"
            )
        );
    }

    #[test]
    fn nothing_to_compare_or_a_non_finite_forecast_is_a_refusal() {
        let v = compare(&[], &Margins::default(), "v1", "p");
        assert!(!v.passed);
        let nan = Paired {
            champion: 0.0,
            challenger: f64::NAN,
            actual: 0.01,
        };
        let v = compare(&[nan; 10], &Margins::default(), "v1", "p");
        assert!(!v.passed);
        assert!(v.reason.contains("non-finite"), "{}", v.reason);
        assert!(serde_json::to_string(&v)
            .unwrap()
            .parse::<serde_json::Value>()
            .is_ok());
    }
}
