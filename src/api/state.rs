//! What every handler may reach: the services, behind one cheap clone.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::auth::Access;
use crate::catalog::{Catalog, SubscriptionStore};
use crate::config::Settings;
use crate::forecast::backtest::BacktestService;
use crate::forecast::ForecastService;
use crate::market::DataManager;
use crate::stream::Hub;

/// The services every handler reaches, behind one `Arc`: axum clones the
/// state into each request (the route's service, then the `State`
/// extractor), and one reference count costs less than one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub settings: Arc<Settings>,
    pub market: Arc<DataManager>,
    pub forecasts: Arc<ForecastService>,
    pub backtests: Arc<BacktestService>,
    /// Live feeds (`/api/stream`).
    pub streams: Arc<Hub>,
    pub catalog: Arc<Catalog>,
    pub subscriptions: SubscriptionStore,
    /// API keys and per-caller rate limits.
    pub access: Arc<Access>,
    /// Set once data is loaded; read by `/readyz`.
    pub ready: Arc<AtomicBool>,
    /// Answers that only change with the process, serialised once.
    pub bodies: Arc<Prebuilt>,
    /// The networks' versions, retraining and A/B tests; absent when the
    /// service was built without the networks.
    pub lifecycle: Option<Arc<crate::forecast::lifecycle::Lifecycle>>,
}

/// Response bodies built on first use and kept: the served models never
/// change while the process runs.
#[derive(Default)]
pub struct Prebuilt {
    /// The model list up to its `timestamp` value.
    pub model_list: std::sync::OnceLock<String>,
}
