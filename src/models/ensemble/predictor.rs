//! `adaptive_ensemble`: five learners fitted to the request's own series and
//! blended by their recent accuracy.
//!
//! For a series of closes the ensemble builds the technical feature rows
//! ([`super::features`]) and, for each learner in parallel:
//! 1. fits it to the rows before the adaptation window (the last
//!    `adaptation_window` rows, with `horizon - 1` rows purged between so no
//!    training target overlaps the window) and forecasts the window: these
//!    are out-of-sample forecasts;
//! 2. refits it to every row and forecasts from the latest close.
//!
//! Weights are the inverse of each learner's mean absolute error over the
//! window, normalised to 1 ([`super::weights::inverse_mae`]). The blend's own
//! window forecasts give `validation` and `confidence`: the Laplace-smoothed
//! share of window forecasts whose direction was right, `(hits + 1) / (n + 2)`.
//! `ensemble_agreement` is `1 / (1 + sd / typical)`, where `sd` is the spread
//! of the learners' forecasts and `typical` the mean absolute return over the
//! horizon in the training rows: 1 when they agree exactly, 0.5 when they
//! disagree by a typical move.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::features::{self, Row, WARM_UP};
use super::learners::Learner;
use super::weights::{inverse_mae, Excluded, TrackRecord};
use crate::models::gate::{closes_fingerprint, FitCache};
use crate::models::neural::fit::FitPolicy;
use crate::models::neural::metrics::HeldOut;
use crate::models::{Budget, InputType, ModelError, ModelInfo, ModelInput, Predictor};

pub const NAME: &str = "adaptive_ensemble";

/// Fewest rows the learners are fitted to before the adaptation window.
pub const MIN_TRAINING_ROWS: usize = 50;
/// Closes fetched when the caller names a symbol: about a trading year.
const LOOKBACK: usize = 250;
/// Newest closes a fit reads: bounds its time (the SVR is quadratic in
/// rows) whatever the request sends.
pub const MAX_CLOSES: usize = 2000;

/// The request's ensemble settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnsembleParams {
    pub horizon: usize,
    pub adaptation_window: usize,
    pub seed: u64,
}

impl Default for EnsembleParams {
    fn default() -> Self {
        EnsembleParams {
            horizon: 1,
            adaptation_window: 50,
            seed: 7,
        }
    }
}

fn bounded(params: &Value, key: &str, range: (u64, u64)) -> Result<Option<u64>, ModelError> {
    let Some(v) = params.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    // The legacy horizon is a string like "1_period".
    let n = v.as_u64().or_else(|| {
        v.as_str()
            .and_then(|s| s.strip_suffix("_period"))
            .and_then(|s| s.parse().ok())
    });
    match n {
        Some(n) if (range.0..=range.1).contains(&n) => Ok(Some(n)),
        _ => Err(ModelError::InvalidInput(format!(
            "params.{key} must be an integer from {} to {}, got {v}",
            range.0, range.1
        ))),
    }
}

impl EnsembleParams {
    pub fn from_params(params: &Value) -> Result<Self, ModelError> {
        let mut p = EnsembleParams::default();
        for key in ["prediction_horizon", "horizon"] {
            if let Some(h) = bounded(params, key, (1, 20))? {
                p.horizon = h as usize;
            }
        }
        if let Some(w) = bounded(params, "adaptation_window", (10, 500))? {
            p.adaptation_window = w as usize;
        }
        if let Some(seed) = params.get("seed").filter(|v| !v.is_null()) {
            p.seed = seed.as_u64().ok_or_else(|| {
                ModelError::InvalidInput(format!(
                    "params.seed must be a non-negative integer, got {seed}"
                ))
            })?;
        }
        Ok(p)
    }

    /// Closes needed: the features' warm-up, the horizon, the training rows,
    /// the purge and the window.
    pub fn min_closes(&self) -> usize {
        WARM_UP + self.horizon + MIN_TRAINING_ROWS + (self.horizon - 1) + self.adaptation_window
    }
}

/// One learner's part in a blend.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub learner: Learner,
    pub weight: f64,
    pub forecast: f64,
}

/// A fitted ensemble's forecast from the latest close.
#[derive(Debug, Clone, PartialEq)]
pub struct Blend {
    pub members: Vec<Member>,
    pub failed: Vec<Excluded>,
    pub predicted_return: f64,
    pub agreement: f64,
    pub confidence: f64,
    pub validation: HeldOut,
    pub closes_used: usize,
    pub training_rows: usize,
    pub training_seconds: f64,
}

/// What one learner made of the series.
struct Outcome {
    window: Result<Vec<f64>, String>,
    /// The latest close's forecast, then the later rows'.
    latest: Result<Vec<f64>, String>,
}

fn split(rows: &[Row]) -> (Vec<Vec<f64>>, Vec<f64>) {
    rows.iter().map(|r| (r.features.to_vec(), r.target)).unzip()
}

/// Fits the ensemble to the newest [`MAX_CLOSES`] of `closes` and forecasts
/// `params.horizon` periods on, within `budget`.
pub fn blend(
    closes: &[f64],
    params: &EnsembleParams,
    budget: &Budget,
) -> Result<Blend, ModelError> {
    blend_ahead(closes, &[], params, budget).map(|(blend, _)| blend)
}

/// [`blend`], and the fitted blend's forecasts from `later` feature rows
/// (of closes after the last one fitted to, for walk-forward tests), with
/// the same learners and weights.
pub fn blend_ahead(
    closes: &[f64],
    later: &[Vec<f64>],
    params: &EnsembleParams,
    budget: &Budget,
) -> Result<(Blend, Vec<f64>), ModelError> {
    let stopped = |why| ModelError::stopped(&format!("fitting {NAME}"), why);
    budget.check().map_err(stopped)?;
    let closes = &closes[closes.len().saturating_sub(MAX_CLOSES)..];
    if closes.len() < params.min_closes() {
        return Err(ModelError::InsufficientData(format!(
            "{NAME} with horizon {} and adaptation_window {} needs at least {} prices, got {}",
            params.horizon,
            params.adaptation_window,
            params.min_closes(),
            closes.len()
        )));
    }
    let started = Instant::now();
    let rows = features::rows(closes, params.horizon);
    let w = params.adaptation_window;
    let window_start = rows.len() - w;
    let training_end = window_start - (params.horizon - 1);
    let (train_x, train_y) = split(&rows[..training_end]);
    let (window_x, window_y) = split(&rows[window_start..]);
    let (all_x, all_y) = split(&rows);
    let mut latest = vec![features::at(closes, closes.len() - 1).to_vec()];
    latest.extend_from_slice(later);

    // Ten fits (each learner before the window and on all rows), one
    // thread each, so the slowest learner's two fits run side by side.
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let fits: Vec<_> = Learner::ALL
            .iter()
            .map(|&learner| {
                let (train_x, train_y, window_x) = (&train_x, &train_y, &window_x);
                let (all_x, all_y, latest) = (&all_x, &all_y, &latest);
                (
                    scope.spawn(move || {
                        learner.fit_predict(train_x, train_y, window_x, params.seed, budget)
                    }),
                    scope.spawn(move || {
                        learner.fit_predict(all_x, all_y, latest, params.seed, budget)
                    }),
                )
            })
            .collect();
        let joined = |h: std::thread::ScopedJoinHandle<'_, Result<Vec<f64>, String>>| {
            h.join()
                .unwrap_or_else(|_| Err("the fitting thread panicked".into()))
        };
        fits.into_iter()
            .map(|(window, latest)| Outcome {
                window: joined(window),
                latest: joined(latest),
            })
            .collect()
    });

    // A fit cut short is not a fit: the budget holds for the whole blend.
    budget.check().map_err(stopped)?;
    // Learners that could not fit are excluded with their reason; the rest
    // are weighted by their window errors.
    let mut failed = Vec::new();
    let mut kept = Vec::new();
    for (learner, outcome) in Learner::ALL.into_iter().zip(outcomes) {
        match (outcome.window, outcome.latest) {
            (Ok(window), Ok(latest)) if latest.iter().all(|f| f.is_finite()) => {
                kept.push((learner, window, latest))
            }
            (Err(reason), _) | (_, Err(reason)) => failed.push(Excluded {
                name: learner.name().into(),
                reason,
            }),
            (Ok(_), Ok(bad)) => failed.push(Excluded {
                name: learner.name().into(),
                reason: format!(
                    "non-finite forecast ({})",
                    bad.iter().find(|f| !f.is_finite()).unwrap_or(&f64::NAN)
                ),
            }),
        }
    }
    let records: Vec<TrackRecord> = kept
        .iter()
        .map(|(learner, window, _)| TrackRecord {
            name: learner.name(),
            predicted: window,
            actual: &window_y,
        })
        .collect();
    let (weights, excluded) = inverse_mae(&records, w);
    failed.extend(excluded);
    if weights.iter().all(|&w| w == 0.0) {
        let reasons: Vec<String> = failed
            .iter()
            .map(|e| format!("{}: {}", e.name, e.reason))
            .collect();
        return Err(ModelError::Failed(format!(
            "every learner failed: {}",
            reasons.join("; ")
        )));
    }

    let members: Vec<Member> = kept
        .iter()
        .zip(&weights)
        .map(|((learner, _, latest), &weight)| Member {
            learner: *learner,
            weight,
            forecast: latest[0],
        })
        .collect();
    let ahead: Vec<f64> = (1..latest.len())
        .map(|k| {
            kept.iter()
                .zip(&weights)
                .map(|((_, _, forecasts), weight)| weight * forecasts[k])
                .sum()
        })
        .collect();
    let predicted_return: f64 = members.iter().map(|m| m.weight * m.forecast).sum();
    let blended_window: Vec<(f64, f64)> = (0..w)
        .map(|k| {
            let p = kept
                .iter()
                .zip(&weights)
                .map(|((_, window, _), weight)| weight * window[k])
                .sum();
            (p, window_y[k])
        })
        .collect();
    let validation = HeldOut::score(
        format!("the series' last {w} forecasts (adaptation window)"),
        &blended_window,
    );
    let hits = (validation.directional_accuracy * w as f64).round();
    let confidence = (hits + 1.0) / (w as f64 + 2.0);

    let used: Vec<f64> = members
        .iter()
        .filter(|m| m.weight > 0.0)
        .map(|m| m.forecast)
        .collect();
    let mean = used.iter().sum::<f64>() / used.len() as f64;
    let sd = (used.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / used.len() as f64).sqrt();
    let typical = train_y.iter().map(|y| y.abs()).sum::<f64>() / train_y.len() as f64;
    let agreement = if typical > 0.0 {
        1.0 / (1.0 + sd / typical)
    } else {
        1.0
    };

    let blend = Blend {
        members,
        failed,
        predicted_return,
        agreement,
        confidence,
        validation,
        closes_used: closes.len(),
        training_rows: all_x.len(),
        training_seconds: started.elapsed().as_secs_f64(),
    };
    Ok((blend, ahead))
}

/// The served ensemble: bounded concurrent fits, cached by params and data.
pub struct AdaptiveEnsemble {
    info: ModelInfo,
    fits: FitCache<Blend>,
    /// Longest one blend may take to fit.
    time_budget: std::time::Duration,
}

impl AdaptiveEnsemble {
    pub fn new(policy: FitPolicy) -> Self {
        AdaptiveEnsemble {
            info: ModelInfo {
                name: NAME,
                category: "ensemble",
                description: "RandomForest, GradientBoosting, ExtraTrees, SVR and MLP fitted to the series' technical features, blended by inverse recent error",
                input_type: InputType::PriceSeries,
                output_type: "price_prediction",
                complexity: "medium",
                latency: "<100ms fitted, <1ms cached",
            },
            fits: FitCache::new(
                "ensemble fits",
                policy.concurrency,
                policy.queue,
                policy.cache_capacity,
            ),
            time_budget: policy.time_budget,
        }
    }

    /// The blend for `closes`, from the cache when it was fitted before.
    /// The bool says whether it came from the cache.
    pub fn fitted(
        &self,
        closes: &[f64],
        params: &EnsembleParams,
        budget: &Budget,
    ) -> Result<(Arc<Blend>, bool), ModelError> {
        let key = format!(
            "{}|{}|{}|{}",
            params.horizon,
            params.adaptation_window,
            params.seed,
            closes_fingerprint(closes)
        );
        self.fits.get_or_fit(key, budget, || {
            blend(closes, params, &budget.within(self.time_budget))
        })
    }
}

impl Predictor for AdaptiveEnsemble {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn lookback(&self, params: &Value) -> usize {
        let needed = EnsembleParams::from_params(params)
            .unwrap_or_default()
            .min_closes();
        needed.max(LOOKBACK)
    }

    /// Fitted to the [`LOOKBACK`] closes up to `fit_at`, as a request naming
    /// a symbol would be.
    fn forecast_ahead(
        &self,
        closes: &[f64],
        fit_at: usize,
        at: std::ops::Range<usize>,
        params: &Value,
        budget: &Budget,
    ) -> Result<Vec<f64>, ModelError> {
        let p = EnsembleParams::from_params(params)?;
        let history = &closes[(fit_at + 1).saturating_sub(LOOKBACK.max(p.min_closes()))..=fit_at];
        let later: Vec<Vec<f64>> = at
            .clone()
            .filter(|&t| t > fit_at)
            .map(|t| features::at(&closes[..=t], t).to_vec())
            .collect();
        let (b, ahead) = blend_ahead(history, &later, &p, &budget.within(self.time_budget))?;
        let mut ahead = ahead.into_iter();
        Ok(at
            .map(|t| {
                if t > fit_at {
                    ahead.next().unwrap_or(f64::NAN)
                } else {
                    b.predicted_return
                }
            })
            .collect())
    }

    fn predict(
        &self,
        input: &ModelInput,
        params: &Value,
        budget: &Budget,
    ) -> Result<Map<String, Value>, ModelError> {
        let series = input.series()?;
        let p = EnsembleParams::from_params(params)?;
        let closes = series.closes();
        let (b, cached) = self.fitted(closes, &p, budget)?;
        let current_price = closes[closes.len() - 1];
        let weights: BTreeMap<&str, f64> = Learner::ALL
            .iter()
            .map(|l| {
                let w = b
                    .members
                    .iter()
                    .find(|m| m.learner == *l)
                    .map_or(0.0, |m| m.weight);
                (l.name(), w)
            })
            .collect();
        let individual: BTreeMap<&str, f64> = b
            .members
            .iter()
            .map(|m| (m.learner.name(), m.forecast))
            .collect();
        let used: Vec<&str> = b
            .members
            .iter()
            .filter(|m| m.weight > 0.0)
            .map(|m| m.learner.name())
            .collect();
        let failed: Vec<Value> = b
            .failed
            .iter()
            .map(|e| json!({"name": e.name, "reason": e.reason}))
            .collect();
        let mut fields = Map::new();
        fields.insert(
            "predicted_price".into(),
            json!(current_price * (1.0 + b.predicted_return)),
        );
        fields.insert("predicted_return".into(), json!(b.predicted_return));
        fields.insert("current_price".into(), json!(current_price));
        fields.insert("confidence".into(), json!(b.confidence));
        fields.insert("model_type".into(), json!(NAME));
        fields.insert(
            "prediction_horizon".into(),
            json!(format!("{}_period", p.horizon)),
        );
        fields.insert("model_weights".into(), json!(weights));
        fields.insert("individual_predictions".into(), json!(individual));
        fields.insert("ensemble_agreement".into(), json!(b.agreement));
        fields.insert("models_used".into(), json!(used));
        fields.insert("models_failed".into(), json!(failed));
        fields.insert("adaptation_window".into(), json!(p.adaptation_window));
        fields.insert("validation".into(), json!(b.validation));
        fields.insert(
            "fit".into(),
            json!({
                "cached": cached,
                "closes_used": b.closes_used,
                "training_rows": b.training_rows,
                "training_seconds": b.training_seconds,
                "params": p,
            }),
        );
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wavy(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 100.0 * (1.0 + 0.05 * (i as f64 * 0.37).sin() + 0.0005 * i as f64))
            .collect()
    }

    #[test]
    fn the_blend_weights_sum_to_one_and_match_the_forecast() {
        let closes = wavy(250);
        let b = blend(&closes, &EnsembleParams::default(), &Budget::unlimited()).unwrap();
        assert_eq!(b.members.len() + b.failed.len(), 5);
        let total: f64 = b.members.iter().map(|m| m.weight).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        let blended: f64 = b.members.iter().map(|m| m.weight * m.forecast).sum();
        assert_eq!(blended, b.predicted_return);
        assert_eq!(b.validation.samples, 50);
        assert!((0.0..=1.0).contains(&b.confidence) && (0.0..=1.0).contains(&b.agreement));
    }

    #[test]
    fn the_same_closes_and_seed_give_the_same_blend() {
        let closes = wavy(200);
        let p = EnsembleParams::default();
        let (a, b) = (
            blend(&closes, &p, &Budget::unlimited()).unwrap(),
            blend(&closes, &p, &Budget::unlimited()).unwrap(),
        );
        assert_eq!(a.members, b.members);
        assert_eq!(a.predicted_return, b.predicted_return);
        assert_eq!(a.confidence, b.confidence);
    }

    #[test]
    fn a_smooth_cycle_is_forecast_better_than_no_change() {
        // A deterministic cycle is learnable from its features.
        let b = blend(&wavy(300), &EnsembleParams::default(), &Budget::unlimited()).unwrap();
        assert!(b.validation.rmse_ratio() < 0.5, "{:?}", b.validation);
        assert!(
            b.validation.directional_accuracy > 0.8,
            "{:?}",
            b.validation
        );
    }

    #[test]
    fn only_the_newest_closes_are_fitted() {
        let long = wavy(MAX_CLOSES + 500);
        let p = EnsembleParams {
            adaptation_window: 10,
            ..EnsembleParams::default()
        };
        let b = blend(&long, &p, &Budget::unlimited()).unwrap();
        assert_eq!(b.closes_used, MAX_CLOSES);
        let newest = blend(&long[500..], &p, &Budget::unlimited()).unwrap();
        assert_eq!(b.members, newest.members);
    }

    #[test]
    fn too_few_closes_name_how_many_are_needed() {
        let p = EnsembleParams::default();
        assert_eq!(p.min_closes(), 121);
        let err = blend(&wavy(120), &p, &Budget::unlimited()).unwrap_err();
        assert!(
            err.to_string().contains("at least 121 prices, got 120"),
            "{err}"
        );
    }

    #[test]
    fn params_out_of_range_are_refused() {
        for bad in [
            json!({"adaptation_window": 5}),
            json!({"horizon": 0}),
            json!({"prediction_horizon": "x_period"}),
            json!({"seed": -1}),
        ] {
            assert!(EnsembleParams::from_params(&bad).is_err(), "{bad}");
        }
        let p = EnsembleParams::from_params(&json!({"prediction_horizon": "3_period"})).unwrap();
        assert_eq!(p.horizon, 3);
    }
}
