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

use super::features::{self, Row};
use super::learners::Learner;
pub use super::params::{EnsembleParams, MIN_TRAINING_ROWS};
use super::weights::{inverse_mae, Excluded, TrackRecord};
use crate::models::fit_cache::{closes_fingerprint, FitCache};
use crate::models::interval::{volatility_at, Residual};
use crate::models::neural::fit::FitPolicy;
use crate::models::neural::metrics::HeldOut;
use crate::models::params::Horizon;
use crate::models::prediction::PredictionInterval;
use crate::models::prediction::{EnsembleDetails, EnsembleFit, FailedLearner};
use crate::models::{
    Ahead, Budget, Forecast, ForecastDetails, InputType, Model, ModelError, ModelInfo, ModelInput,
    Prediction,
};

pub const NAME: &str = "adaptive_ensemble";

/// Closes fetched when the caller names a symbol: about a trading year.
const LOOKBACK: usize = 250;
/// Newest closes a fit reads: bounds its time (the SVR is quadratic in
/// rows) whatever the request sends.
pub const MAX_CLOSES: usize = 2000;

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
    /// The blend's adaptation-window forecasts: its interval's calibration.
    pub residuals: Vec<Residual>,
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

/// The feature rows a blend is fitted to, cut into the training rows (before
/// the window, purged), the adaptation window, and all of them.
struct Sets {
    train: (Vec<Vec<f64>>, Vec<f64>),
    window: (Vec<Vec<f64>>, Vec<f64>),
    /// The close each window row's forecast is made at.
    window_origins: Vec<usize>,
    all: (Vec<Vec<f64>>, Vec<f64>),
    /// The latest close's features, then the later rows'.
    queries: Vec<Vec<f64>>,
}

impl Sets {
    fn of(closes: &[f64], later: &[Vec<f64>], params: &EnsembleParams) -> Self {
        let rows = features::rows(closes, params.horizon);
        let window_start = rows.len() - params.adaptation_window;
        let training_end = window_start - (params.horizon - 1);
        let mut queries = vec![features::at(closes, closes.len() - 1).to_vec()];
        queries.extend_from_slice(later);
        Sets {
            train: split(&rows[..training_end]),
            window: split(&rows[window_start..]),
            window_origins: rows[window_start..].iter().map(|r| r.t).collect(),
            all: split(&rows),
            queries,
        }
    }
}

/// Each learner fitted twice, on its own thread: before the window
/// (forecasting it) and on all rows (forecasting the queries).
fn fit_learners(sets: &Sets, seed: u64, budget: &Budget) -> Vec<Outcome> {
    std::thread::scope(|scope| {
        let fits: Vec<_> = Learner::ALL
            .iter()
            .map(|&learner| {
                let (train, window, all) = (&sets.train, &sets.window.0, &sets.all);
                let queries = &sets.queries;
                (
                    scope.spawn(move || {
                        learner.fit_predict(&train.0, &train.1, window, seed, budget)
                    }),
                    scope.spawn(move || learner.fit_predict(&all.0, &all.1, queries, seed, budget)),
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
    })
}

/// A learner kept, with its window forecasts and its query forecasts.
type Kept = (Learner, Vec<f64>, Vec<f64>);

/// Learners that could not fit are excluded with their reason; the rest
/// are kept for weighing.
fn keep_fitted(outcomes: Vec<Outcome>) -> (Vec<Kept>, Vec<Excluded>) {
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
    (kept, failed)
}

/// The weighted sum of the kept learners' forecasts, `pick`ed from each.
fn weighted(kept: &[Kept], weights: &[f64], pick: impl Fn(&Kept) -> f64) -> f64 {
    kept.iter().zip(weights).map(|(k, w)| w * pick(k)).sum()
}

/// `1 / (1 + sd / typical)` of the used learners' forecasts.
fn agreement(members: &[Member], train_targets: &[f64]) -> f64 {
    let used: Vec<f64> = members
        .iter()
        .filter(|m| m.weight > 0.0)
        .map(|m| m.forecast)
        .collect();
    let mean = used.iter().sum::<f64>() / used.len() as f64;
    let sd = (used.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / used.len() as f64).sqrt();
    let typical = train_targets.iter().map(|y| y.abs()).sum::<f64>() / train_targets.len() as f64;
    if typical > 0.0 {
        1.0 / (1.0 + sd / typical)
    } else {
        1.0
    }
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
    let w = params.adaptation_window;
    let sets = Sets::of(closes, later, params);
    let outcomes = fit_learners(&sets, params.seed, budget);
    // A fit cut short is not a fit: the budget holds for the whole blend.
    budget.check().map_err(stopped)?;
    let (kept, mut failed) = keep_fitted(outcomes);
    let window_y = &sets.window.1;
    let records: Vec<TrackRecord> = kept
        .iter()
        .map(|(learner, window, _)| TrackRecord {
            name: learner.name(),
            predicted: window,
            actual: window_y,
        })
        .collect();
    let (weights, excluded) = inverse_mae(&records, w);
    failed.extend(excluded);
    if weights.iter().all(|&w| w == 0.0) {
        let reasons: Vec<String> = failed
            .iter()
            .map(|e| format!("{}: {}", e.name, e.reason))
            .collect();
        return Err(ModelError::Unfit(format!(
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
    let ahead: Vec<f64> = (1..sets.queries.len())
        .map(|k| weighted(&kept, &weights, |(_, _, forecasts)| forecasts[k]))
        .collect();
    let predicted_return: f64 = members.iter().map(|m| m.weight * m.forecast).sum();
    let blended_window: Vec<(f64, f64)> = (0..w)
        .map(|k| {
            (
                weighted(&kept, &weights, |(_, window, _)| window[k]),
                window_y[k],
            )
        })
        .collect();
    let validation = HeldOut::score(
        format!("the series' last {w} forecasts (adaptation window)"),
        &blended_window,
    );
    let hits = (validation.directional_accuracy * w as f64).round();
    let residuals = blended_window
        .iter()
        .zip(&sets.window_origins)
        .map(|(&(predicted, actual), &t)| Residual {
            predicted,
            actual,
            scale: volatility_at(closes, t),
        })
        .collect();
    let blend = Blend {
        agreement: agreement(&members, &sets.train.1),
        members,
        failed,
        predicted_return,
        confidence: (hits + 1.0) / (w as f64 + 2.0),
        validation,
        residuals,
        closes_used: closes.len(),
        training_rows: sets.all.0.len(),
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

/// The answer's view of a blend: every learner's weight, the forecasts of
/// those that fitted, and why the others did not.
fn details(b: &Blend, p: &EnsembleParams, cached: bool) -> EnsembleDetails {
    let weight_of = |l: Learner| {
        b.members
            .iter()
            .find(|m| m.learner == l)
            .map_or(0.0, |m| m.weight)
    };
    EnsembleDetails {
        model_weights: Learner::ALL
            .iter()
            .map(|&l| (l.name(), weight_of(l)))
            .collect(),
        individual_predictions: b
            .members
            .iter()
            .map(|m| (m.learner.name(), m.forecast))
            .collect::<BTreeMap<_, _>>(),
        ensemble_agreement: b.agreement,
        models_used: b
            .members
            .iter()
            .filter(|m| m.weight > 0.0)
            .map(|m| m.learner.name())
            .collect(),
        models_failed: b
            .failed
            .iter()
            .map(|e| FailedLearner {
                name: e.name.clone(),
                reason: e.reason.clone(),
            })
            .collect(),
        adaptation_window: p.adaptation_window,
        fit: EnsembleFit {
            cached,
            closes_used: b.closes_used,
            training_rows: b.training_rows,
            training_seconds: b.training_seconds,
            params: p.clone(),
        },
    }
}

impl Model for AdaptiveEnsemble {
    type Params = EnsembleParams;

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn lookback(&self, params: &EnsembleParams) -> usize {
        params.min_closes().max(LOOKBACK)
    }

    fn horizon(&self, params: &EnsembleParams) -> Horizon {
        Horizon::new(params.horizon).unwrap_or(Horizon::ONE)
    }

    /// Fitted to the [`LOOKBACK`] closes up to `fit_at`, as a request naming
    /// a symbol would be.
    fn forecast_ahead(
        &self,
        Ahead { closes, fit_at, at }: Ahead<'_>,
        p: &EnsembleParams,
        budget: &Budget,
    ) -> Result<Vec<f64>, ModelError> {
        let history = &closes[(fit_at + 1).saturating_sub(LOOKBACK.max(p.min_closes()))..=fit_at];
        let later: Vec<Vec<f64>> = at
            .clone()
            .filter(|&t| t > fit_at)
            .map(|t| features::at(&closes[..=t], t).to_vec())
            .collect();
        let (b, ahead) = blend_ahead(history, &later, p, &budget.within(self.time_budget))?;
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
        p: &EnsembleParams,
        budget: &Budget,
    ) -> Result<Prediction, ModelError> {
        let closes = input.series()?.closes();
        let (b, cached) = self.fitted(closes, p, budget)?;
        let mut forecast = Forecast::new(
            b.predicted_return,
            closes[closes.len() - 1],
            b.confidence,
            self.horizon(p),
            ForecastDetails::Ensemble(details(&b, p, cached)),
        );
        forecast.validation = Some(b.validation.clone());
        forecast.prediction_interval = Some(Box::new(PredictionInterval::conformal(
            &b.residuals,
            closes,
            b.predicted_return,
            p.interval_level,
        )));
        Ok(Prediction::Forecast(forecast))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let parse = |v: serde_json::Value| {
            crate::models::params::parse::<EnsembleParams>(v.as_object().unwrap())
        };
        for bad in [
            json!({"adaptation_window": 5}),
            json!({"horizon": 0}),
            json!({"prediction_horizon": "x_period"}),
            json!({"seed": -1}),
            json!({"epochs": 3}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        let p = parse(json!({"prediction_horizon": "3_period"})).unwrap();
        assert_eq!(p.horizon, 3);
    }
}
