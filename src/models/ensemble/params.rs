//! The ensemble's params, as requests send them and as a fit uses them.

use serde::{Deserialize, Serialize};

use super::features::WARM_UP;
use crate::models::interval::DEFAULT_LEVEL;
use crate::models::params::{
    either_horizon, level_or_default, Count, Horizon, IntervalLevel, Seed,
};

/// Fewest rows the learners are fitted to before the adaptation window.
pub const MIN_TRAINING_ROWS: usize = 50;

/// The request's ensemble settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "EnsembleRequest")]
pub struct EnsembleParams {
    pub horizon: usize,
    pub adaptation_window: usize,
    pub seed: u64,
    /// The prediction interval's level: applied to a fit, not part of it.
    #[serde(skip_serializing)]
    pub interval_level: f64,
}

impl Default for EnsembleParams {
    fn default() -> Self {
        EnsembleParams {
            horizon: 1,
            adaptation_window: 50,
            seed: 7,
            interval_level: DEFAULT_LEVEL,
        }
    }
}

/// The params as a request writes them.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct EnsembleRequest {
    prediction_horizon: Option<Horizon>,
    horizon: Option<Horizon>,
    adaptation_window: Option<Count<10, 500>>,
    seed: Option<Seed>,
    interval_level: Option<IntervalLevel>,
}

impl From<EnsembleRequest> for EnsembleParams {
    fn from(r: EnsembleRequest) -> Self {
        let defaults = EnsembleParams::default();
        EnsembleParams {
            horizon: either_horizon(r.prediction_horizon, r.horizon)
                .map_or(defaults.horizon, |(_, h)| h.periods()),
            adaptation_window: r
                .adaptation_window
                .map_or(defaults.adaptation_window, Count::get),
            seed: r.seed.map_or(defaults.seed, |s| s.0),
            interval_level: level_or_default(r.interval_level),
        }
    }
}

impl EnsembleParams {
    /// Closes needed: the features' warm-up, the horizon, the training rows,
    /// the purge and the window.
    pub fn min_closes(&self) -> usize {
        WARM_UP + self.horizon + MIN_TRAINING_ROWS + (self.horizon - 1) + self.adaptation_window
    }
}
