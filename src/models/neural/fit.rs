//! Fitting a network to the caller's own series (`params.fit = "series"` or
//! `params.epochs`): the pretrained weights are fine-tuned when the window
//! length matches, otherwise a fresh network is trained.
//!
//! Fits are expensive, so they are cached by (model, params, data
//! fingerprint), identical concurrent requests share one fit, at most
//! `concurrency` run at once with at most `queue` more waiting (beyond that:
//! busy), and each stops at a time budget keeping its best epoch.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::card::fingerprint;
use super::metrics::{Calibration, HeldOut};
use super::train::{train, TrainConfig, TrainReport};
use super::windows::{windows, Window};
use super::{Architecture, Network};
use crate::models::fit_cache::{closes_fingerprint, FitCache};
use crate::models::{Budget, ModelError};

/// Limits on per-series fitting, from `[models]` in the config.
#[derive(Debug, Clone, Copy)]
pub struct FitPolicy {
    pub concurrency: usize,
    pub queue: usize,
    pub time_budget: Duration,
    pub cache_capacity: u64,
}

impl Default for FitPolicy {
    fn default() -> Self {
        FitPolicy {
            concurrency: 2,
            queue: 8,
            time_budget: Duration::from_secs(10),
            cache_capacity: 64,
        }
    }
}

/// What a request may change, checked at the edge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitParams {
    pub sequence_length: usize,
    pub horizon: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub batch_size: usize,
    pub seed: u64,
}

/// Windows kept back (the newest) to stop training and measure the fit.
const VALIDATION_SHARE: f64 = 0.2;
/// Fewest training windows a fit accepts.
const MIN_TRAIN_WINDOWS: usize = 40;
const MIN_VALIDATION_WINDOWS: usize = 10;

impl FitParams {
    /// Closes a fit of these params needs.
    pub fn min_closes(&self) -> usize {
        let windows = MIN_TRAIN_WINDOWS + MIN_VALIDATION_WINDOWS;
        self.sequence_length + self.horizon + windows
    }
}

/// A network fitted to one series.
pub struct Fitted {
    pub network: Network,
    pub params: FitParams,
    pub report: TrainReport,
    pub validation: HeldOut,
    pub calibration: Calibration,
    pub fine_tuned: bool,
    pub version: String,
}

/// Per-series fits shared by the served networks.
pub struct SeriesFitter {
    policy: FitPolicy,
    fits: FitCache<Fitted>,
}

impl SeriesFitter {
    pub fn new(policy: FitPolicy) -> Self {
        SeriesFitter {
            policy,
            fits: FitCache::new(
                "series fits",
                policy.concurrency,
                policy.queue,
                policy.cache_capacity,
            ),
        }
    }

    /// The fit of `architecture` (starting from `pretrained`, version
    /// `base_version`, when it has the same shape) to `closes`, from the
    /// cache when this exact fit was made. The bool says whether it came
    /// from the cache.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        &self,
        model: &str,
        base_version: &str,
        architecture: Architecture,
        pretrained: &Network,
        closes: &[f64],
        params: &FitParams,
        budget: &Budget,
    ) -> Result<(Arc<Fitted>, bool), ModelError> {
        // Versions of a model share the fitter: each fits from its own weights.
        let key = format!(
            "{model}|{base_version}|{}|{}",
            serde_json::to_string(params).unwrap_or_default(),
            closes_fingerprint(closes)
        );
        self.fits.get_or_fit(key, budget, || {
            let budget = budget.within(self.policy.time_budget);
            fit_series(model, architecture, pretrained, closes, params, &budget)
        })
    }
}

fn fit_series(
    model: &str,
    architecture: Architecture,
    pretrained: &Network,
    closes: &[f64],
    params: &FitParams,
    budget: &Budget,
) -> Result<Fitted, ModelError> {
    let failed = |e: candle_core::Error| ModelError::internal("building the network", e);
    let all: Vec<Window> = windows(closes, params.sequence_length, params.horizon);
    let held = ((all.len() as f64 * VALIDATION_SHARE).ceil() as usize).max(MIN_VALIDATION_WINDOWS);
    let split = all.len().saturating_sub(held);
    let (fit_set, validation_set) = all.split_at(split);
    let network = Network::seeded(architecture.clone(), params.seed).map_err(failed)?;
    let fine_tuned = pretrained.architecture == architecture;
    if fine_tuned {
        for ((_, to), (_, from)) in network.named_vars().iter().zip(pretrained.named_vars()) {
            to.set(from.as_tensor()).map_err(failed)?;
        }
    }
    let cfg = TrainConfig {
        max_epochs: params.epochs,
        batch_size: params.batch_size,
        learning_rate: params.learning_rate,
        seed: params.seed,
        ..TrainConfig::default()
    };
    let report =
        train(&network, fit_set, validation_set, &cfg, budget).map_err(|e| {
            match budget.check() {
                Err(why) => ModelError::stopped(&format!("fitting {model}"), why),
                Ok(()) => ModelError::Unfit(format!("training failed: {e}")),
            }
        })?;
    if report.best_epoch == 0 {
        return Err(ModelError::OutOfTime(format!(
            "fitting {model}: the time budget ended before its first epoch; send fewer prices or fewer epochs"
        )));
    }
    let forecasts =
        super::metrics::forecasts(&network, validation_set, params.horizon).map_err(failed)?;
    let validation = super::metrics::held_out(
        format!("last {} windows of the series", validation_set.len()),
        &forecasts,
    );
    let calibration = Calibration::fit(
        &forecasts
            .iter()
            .map(|&(y, _, a)| (y, a))
            .collect::<Vec<_>>(),
        3,
    );
    let weights = network.flat_weights().map_err(failed)?;
    let bytes: Vec<u8> = weights.iter().flat_map(|w| w.to_le_bytes()).collect();
    Ok(Fitted {
        version: format!("{model}-series-{}", fingerprint(&bytes)),
        network,
        params: params.clone(),
        report,
        validation,
        calibration,
        fine_tuned,
    })
}
