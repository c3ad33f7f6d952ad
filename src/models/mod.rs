//! Models and the registry that serves them. Pure and synchronous:
//! callers run predictions on a blocking thread.
//!
//! A model declares its params as a type ([`Model::Params`]), parsed once
//! at the edge ([`Predictor::configure`]) into a [`Run`]: the model with
//! checked params, which knows its lookback and horizon and answers a
//! typed [`Prediction`].

pub mod backtest;
pub mod budget;
pub mod ensemble;
pub mod evaluation;
pub mod fit_cache;
pub mod interval;
pub mod lifecycle;
pub mod neural;
pub mod optimizer;
pub mod options;
pub mod params;
pub mod portfolio;
pub mod prediction;
pub mod rebalance;
pub mod risk;
pub mod series;
pub mod tracking;
pub mod training;
pub mod volatility;
pub mod walkforward;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use budget::{Budget, Stopped};
pub use params::{Horizon, RawParams};
pub use prediction::{Allocation, Forecast, ForecastDetails, Prediction};
pub use series::{PriceSeries, SeriesError};

/// What a model takes as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// One price series (`price_data: [..]`).
    PriceSeries,
    /// Several named series (`price_data: {"AAPL": [..], ..}`).
    MultiSeries,
}

/// The contract's `metadata` entry for a model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// The data gave the model nothing it could fit, e.g. every learner of
    /// the ensemble failed on this series (422).
    #[error("{0}")]
    Unfit(String),
    /// A fault of the model itself: a bug, logged and answered 500.
    #[error("{0}")]
    Internal(String),
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

    /// A fault inside a model's own machinery (tensors, solvers).
    pub fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        ModelError::Internal(format!("{what}: {e}"))
    }
}

/// One step of a walk-forward backtest ([`walkforward`]): the model,
/// fitted with `closes[..=fit_at]` only (or kept at its pretrained
/// weights), forecasts the next period's return from each `t` in `at` (all
/// at or after `fit_at`) with `closes[..=t]` only.
#[derive(Debug, Clone)]
pub struct Ahead<'a> {
    pub closes: &'a [f64],
    pub fit_at: usize,
    pub at: Range<usize>,
}

/// A model, written against its own params type.
pub trait Model: Send + Sync + 'static {
    /// The params a request may give, checked as they are parsed.
    type Params: DeserializeOwned + Send + Sync + 'static;

    fn info(&self) -> &ModelInfo;

    /// Checks that span fields or need the model (e.g. a window length the
    /// pretrained network reads).
    fn check(&self, _params: &Self::Params) -> Result<(), ModelError> {
        Ok(())
    }

    /// Daily bars to fetch when the caller names a symbol instead of sending prices.
    fn lookback(&self, params: &Self::Params) -> usize;

    /// Periods ahead its forecasts are for.
    fn horizon(&self, _params: &Self::Params) -> Horizon {
        Horizon::ONE
    }

    /// The assets, in order, a multi-series request names in its params.
    fn assets<'p>(&self, _params: &'p Self::Params) -> Option<&'p [String]> {
        None
    }

    /// Long work stops when `budget` says so.
    fn predict(
        &self,
        input: &ModelInput,
        params: &Self::Params,
        budget: &Budget,
    ) -> Result<Prediction, ModelError>;

    /// Walk-forward forecasts ([`walkforward`]) for `ahead`.
    fn forecast_ahead(
        &self,
        _ahead: Ahead<'_>,
        _params: &Self::Params,
        _budget: &Budget,
    ) -> Result<Vec<f64>, ModelError> {
        Err(ModelError::InvalidInput(format!(
            "{} does not forecast a price series, so it cannot be backtested",
            self.info().name
        )))
    }
}

/// A served model, its params not yet read.
pub trait Predictor: Send + Sync {
    fn info(&self) -> &ModelInfo;
    fn param_names(&self) -> &'static [&'static str];
    /// Parses and checks `params` once: a run of the model with them.
    fn configure(&self, params: &RawParams) -> Result<Arc<dyn Run>, ModelError>;

    /// [`Predictor::configure`] for one caller asking about `symbol`, and
    /// the A/B arm that answers, for a model with an experiment running.
    fn configure_for(
        &self,
        params: &RawParams,
        _caller: &str,
        _symbol: &str,
    ) -> Result<(Arc<dyn Run>, Option<lifecycle::experiment::Arm>), ModelError> {
        Ok((self.configure(params)?, None))
    }
}

/// `model` as the registry serves it.
pub fn serve<M: Model>(model: Arc<M>) -> Arc<dyn Predictor> {
    Arc::new(Served(model))
}

/// A model with checked params, ready to run (on any thread).
pub trait Run: Send + Sync {
    fn info(&self) -> &ModelInfo;
    fn lookback(&self) -> usize;
    fn horizon(&self) -> Horizon;
    fn assets(&self) -> Option<&[String]>;
    fn predict(&self, input: &ModelInput, budget: &Budget) -> Result<Prediction, ModelError>;
    fn forecast_ahead(&self, ahead: Ahead<'_>, budget: &Budget) -> Result<Vec<f64>, ModelError>;
}

/// A [`Model`] as the registry serves it.
struct Served<M>(Arc<M>);

/// A [`Model`] with parsed params.
struct Configured<M: Model> {
    model: Arc<M>,
    params: M::Params,
}

impl<M: Model> Predictor for Served<M> {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }

    fn param_names(&self) -> &'static [&'static str] {
        params::names_of::<M::Params>()
    }

    fn configure(&self, params: &RawParams) -> Result<Arc<dyn Run>, ModelError> {
        let params: M::Params = params::parse(params)?;
        self.0.check(&params)?;
        Ok(Arc::new(Configured {
            model: Arc::clone(&self.0),
            params,
        }))
    }
}

impl<M: Model> Run for Configured<M> {
    fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    fn lookback(&self) -> usize {
        self.model.lookback(&self.params)
    }

    fn horizon(&self) -> Horizon {
        self.model.horizon(&self.params)
    }

    fn assets(&self) -> Option<&[String]> {
        self.model.assets(&self.params)
    }

    fn predict(&self, input: &ModelInput, budget: &Budget) -> Result<Prediction, ModelError> {
        self.model.predict(input, &self.params, budget)
    }

    fn forecast_ahead(&self, ahead: Ahead<'_>, budget: &Budget) -> Result<Vec<f64>, ModelError> {
        self.model.forecast_ahead(ahead, &self.params, budget)
    }
}

/// The models this service actually serves, by name.
#[derive(Default, Clone)]
pub struct Registry {
    models: BTreeMap<&'static str, Arc<dyn Predictor>>,
}

impl Registry {
    pub fn register<M: Model>(&mut self, model: M) {
        self.models
            .insert(model.info().name, Arc::new(Served(Arc::new(model))));
    }

    /// Serves `predictor` under its name, replacing any model of that name.
    pub fn insert(&mut self, predictor: Arc<dyn Predictor>) {
        self.models.insert(predictor.info().name, predictor);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Predictor>> {
        self.models.get(name).cloned()
    }

    /// The model called `name`, or, with `legacy_prefix`, `name` without it
    /// (the legacy catalog page writes `enhanced_lstm_predictor`).
    pub fn resolve(&self, name: &str, legacy_prefix: Option<&str>) -> Option<Arc<dyn Predictor>> {
        self.get(name).or_else(|| {
            legacy_prefix
                .and_then(|prefix| name.strip_prefix(prefix))
                .and_then(|n| self.get(n))
        })
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
    registry.register(optimizer::PortfolioOptimizer::default());
    // One fitter, so the concurrency limit covers both networks.
    let fitter = Arc::new(neural::fit::SeriesFitter::new(fit_policy));
    for name in [neural::LSTM, neural::TRANSFORMER] {
        let predictor = neural::predictor::NeuralPredictor::load(models_dir, name)?
            .with_fitter(Arc::clone(&fitter));
        registry.register(predictor);
    }
    registry.register(ensemble::predictor::AdaptiveEnsemble::new(fit_policy));
    registry.register(volatility::predictor::GarchVolatility::default());
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
