//! Predictors and the registry that serves them. Pure and synchronous:
//! callers run `predict` on a blocking thread.

pub mod backtest;
pub mod budget;
pub mod ensemble;
pub mod evaluation;
pub mod gate;
pub mod neural;
pub mod optimizer;
pub mod portfolio;
pub mod rebalance;
pub mod series;
pub mod tracking;
pub mod walkforward;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

pub use budget::{Budget, Stopped};
pub use series::{PriceSeries, SeriesError};

/// What a model takes as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// One price series (`price_data: [..]`).
    PriceSeries,
    /// Several named series (`price_data: {"AAPL": [..], ..}`).
    MultiSeries,
}

/// The contract's `metadata` entry for a model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: &'static str,
    pub category: &'static str,
    pub description: &'static str,
    pub input_type: InputType,
    pub output_type: &'static str,
    pub complexity: &'static str,
    pub latency: &'static str,
}

/// Prices handed to a model.
#[derive(Debug, Clone)]
pub enum ModelInput {
    Series(PriceSeries),
    Assets(Vec<(String, PriceSeries)>),
}

impl ModelInput {
    /// The one series a single-series model reads.
    pub fn series(&self) -> Result<&PriceSeries, ModelError> {
        match self {
            ModelInput::Series(series) => Ok(series),
            ModelInput::Assets(_) => Err(ModelError::InvalidInput(
                "price_data must be an array of closes".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    /// The input or params are wrong (400).
    #[error("{0}")]
    InvalidInput(String),
    /// Too little data for this model (422).
    #[error("{0}")]
    InsufficientData(String),
    /// Valid input with no answer, e.g. no tangency portfolio exists (422).
    #[error("{0}")]
    Infeasible(String),
    /// The model could not compute an answer.
    #[error("{0}")]
    Failed(String),
    /// Too much of this work is running or queued (503, retry later).
    #[error("{0}")]
    Busy(String),
    /// The work ran out of its time budget (503 timeout).
    #[error("{0}")]
    OutOfTime(String),
    /// The request the work was for has gone (503, retry).
    #[error("{0}")]
    Cancelled(String),
}

impl ModelError {
    /// Why `what` stopped early.
    pub fn stopped(what: &str, why: Stopped) -> Self {
        match why {
            Stopped::Cancelled => ModelError::Cancelled(format!("{what} was {why}")),
            Stopped::OutOfTime => ModelError::OutOfTime(format!("{what} ran {why}")),
        }
    }
}

pub trait Predictor: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// Daily bars to fetch when the caller names a symbol instead of sending prices.
    fn lookback(&self, params: &Value) -> usize;

    /// Model-specific response fields (the API adds the common ones).
    /// Long work stops when `budget` says so.
    fn predict(
        &self,
        input: &ModelInput,
        params: &Value,
        budget: &Budget,
    ) -> Result<Map<String, Value>, ModelError>;

    /// Walk-forward forecasts ([`walkforward`]): the model, fitted with
    /// `closes[..=fit_at]` only (or kept at its pretrained weights),
    /// forecasts the next period's return from each `t` in `at` (all at or
    /// after `fit_at`) with `closes[..=t]` only.
    fn forecast_ahead(
        &self,
        _closes: &[f64],
        _fit_at: usize,
        _at: std::ops::Range<usize>,
        _params: &Value,
        _budget: &Budget,
    ) -> Result<Vec<f64>, ModelError> {
        Err(ModelError::InvalidInput(format!(
            "{} does not forecast a price series, so it cannot be backtested",
            self.info().name
        )))
    }
}

/// The models this service actually serves, by name.
#[derive(Default, Clone)]
pub struct Registry {
    models: BTreeMap<&'static str, Arc<dyn Predictor>>,
}

impl Registry {
    pub fn register(&mut self, model: Arc<dyn Predictor>) {
        self.models.insert(model.info().name, model);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Predictor>> {
        self.models.get(name).cloned()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.models.keys().copied().collect()
    }

    pub fn infos(&self) -> impl Iterator<Item = &ModelInfo> {
        self.models.values().map(|m| m.info())
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// `dir/file` if it exists, else the same file in the `models/` directory
/// of the source tree this binary was built from.
pub fn locate_file(dir: &std::path::Path, file: &str) -> Option<std::path::PathBuf> {
    let built_from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    [dir.to_path_buf(), built_from]
        .into_iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file())
}

/// The models this build serves, with pretrained weights from `models_dir`
/// (or the source tree's `models/`).
pub fn served_from(
    models_dir: &std::path::Path,
    fit_policy: neural::fit::FitPolicy,
) -> anyhow::Result<Registry> {
    let mut registry = Registry::default();
    registry.register(Arc::new(optimizer::PortfolioOptimizer::default()));
    // One fitter, so the concurrency limit covers both networks.
    let fitter = Arc::new(neural::fit::SeriesFitter::new(fit_policy));
    for name in [neural::predictor::LSTM, neural::predictor::TRANSFORMER] {
        let predictor = neural::predictor::NeuralPredictor::load(models_dir, name)?
            .with_fitter(Arc::clone(&fitter));
        registry.register(Arc::new(predictor));
    }
    registry.register(Arc::new(ensemble::predictor::AdaptiveEnsemble::new(
        fit_policy,
    )));
    Ok(registry)
}

/// [`served_from`] the default `models/` directory; panics without the
/// pretrained weights (for tests and benchmarks).
pub fn served() -> Registry {
    static SERVED: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    SERVED
        .get_or_init(|| {
            served_from(
                std::path::Path::new("models"),
                neural::fit::FitPolicy::default(),
            )
            .expect("pretrained models load")
        })
        .clone()
}
