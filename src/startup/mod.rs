//! Builds the application from settings: market data, models, the
//! forecasting and backtest services, catalog, store, router; then serves.

pub mod server;
pub mod settings;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::auth::Access;
use crate::api::state::{AppState, Services};
use crate::catalog::{Catalog, SubscriptionLimits, SubscriptionStore};
use crate::config::{Environment, ProviderName, Settings};
use crate::forecast::backtest::BacktestService;
use crate::forecast::lifecycle::Lifecycle;
use crate::forecast::ForecastService;
use crate::market::binance::BinanceProvider;
use crate::market::ec2::Ec2Probe;
use crate::market::fyers::FyersProvider;
use crate::market::local::LocalProvider;
use crate::market::yahoo::YahooProvider;
use crate::market::{DataManager, HistoryObserver, Provider, SymbolMapper};
use crate::models::evaluation::load_measurements;
use crate::models::lifecycle;
use crate::models::neural::fit::SeriesFitter;
use crate::models::tracking::Tracker;
use crate::models::Registry;
use server::{serve_connections, ConnectionLimits};

/// The symbol mapping: the configured file, else the built-in one.
fn symbol_mapper(settings: &Settings) -> anyhow::Result<SymbolMapper> {
    match &settings.data.symbol_mapping_file {
        path if path.as_os_str().is_empty() => Ok(SymbolMapper::built_in()?),
        path => {
            let file = std::fs::File::open(path).with_context(|| {
                format!("data.symbol_mapping_file: cannot open {}", path.display())
            })?;
            SymbolMapper::from_reader(std::io::BufReader::new(file))
                .with_context(|| format!("data.symbol_mapping_file: {}", path.display()))
        }
    }
}

/// Every provider, in the configured order; those not in it wait as
/// standbys the admin switch can bring in.
async fn market(settings: &Settings) -> anyhow::Result<DataManager> {
    let prices_dir = settings.data.prices_dir.clone();
    let rescan = Duration::from_secs(settings.data.rescan_secs);
    let local = tokio::task::spawn_blocking(move || {
        LocalProvider::load(&prices_dir).map(|p| p.rescanning_every(rescan))
    })
    .await
    .context("loading price data")??;
    tracing::info!(
        symbols = local.symbols().len(),
        as_of = %local.as_of().map(|d| d.to_string()).unwrap_or_default(),
        "local price data loaded"
    );
    let max_wait = settings::quota_wait(settings);
    let local: Arc<dyn Provider> = Arc::new(local);
    let yahoo: Arc<dyn Provider> = Arc::new(
        YahooProvider::new(&settings::yahoo_endpoint(&settings.yahoo))
            .context("yahoo provider")?
            .with_quota(&settings::quota(&settings.yahoo.quota), max_wait),
    );
    let fyers: Arc<dyn Provider> = Arc::new(
        FyersProvider::new(
            &settings::fyers_endpoint(settings),
            &settings.fyers.app_id,
            settings.fyers.access_token.clone(),
        )
        .context("fyers provider")?
        .with_quota(&settings::quota(&settings.fyers.quota), max_wait),
    );
    let binance: Arc<dyn Provider> = Arc::new(
        BinanceProvider::new(&settings::binance_endpoint(&settings.binance))
            .context("binance provider")?
            .with_quota(&settings::quota(&settings.binance.quota), max_wait),
    );
    let priority = settings.provider_priority();
    let provider = |name: &ProviderName| match name {
        ProviderName::Local => Arc::clone(&local),
        ProviderName::Yfinance => Arc::clone(&yahoo),
        ProviderName::Fyers => Arc::clone(&fyers),
        ProviderName::Binance => Arc::clone(&binance),
    };
    tracing::info!(
        ?priority,
        environment = settings.environment().as_str(),
        "market data providers"
    );
    let mut market = DataManager::new(
        priority.iter().map(provider).collect(),
        Arc::new(symbol_mapper(settings)?),
        settings.environment(),
        settings::cache_policy(settings),
        settings::breaker(settings),
    );
    for standby in [
        ProviderName::Yfinance,
        ProviderName::Fyers,
        ProviderName::Binance,
    ] {
        if !priority.contains(&standby) {
            market = market.with_standby(provider(&standby));
        }
    }
    Ok(market)
}

/// Everything handlers reach, built from `settings` around `registry`.
pub async fn build_state(settings: Settings, mut registry: Registry) -> anyhow::Result<AppState> {
    // Install the recorder before anything records.
    let _ = crate::telemetry::metrics_handle();
    let market = Arc::new(market(&settings).await?);
    let catalog = Catalog::load(&settings.catalog.file)?
        .with_measurements(load_measurements(&settings.models.dir));
    for name in registry.names() {
        if catalog.model(name).is_none() {
            tracing::warn!(
                model = name,
                "served model has no catalog entry; listed from its own description"
            );
        }
    }
    let subscriptions = SubscriptionStore::open(
        &settings.catalog.subscriptions_db,
        SubscriptionLimits {
            per_caller: settings.catalog.max_subscriptions_per_caller,
            callers: settings.catalog.max_subscribers,
        },
    )?;
    let tracker = Arc::new(Tracker::new(
        settings.tracking.capacity,
        settings.tracking.window,
    ));
    market.observe_with(Arc::clone(&tracker) as Arc<dyn HistoryObserver>);
    let lifecycle = open_lifecycle(&settings, &mut registry, &market, &tracker)?;
    let registry = Arc::new(registry);
    let limits = settings::input_limits(&settings);
    let forecasts = Arc::new(ForecastService::new(
        Arc::clone(&registry),
        Arc::clone(&market),
        tracker,
        limits,
    ));
    let render: crate::stream::RenderForecast = Arc::new(|served| {
        serde_json::to_value(crate::api::schema::PredictionResponse::from(served))
            .unwrap_or(serde_json::Value::Null)
    });
    let streams = Arc::new(crate::stream::Hub::new(
        Arc::clone(&market),
        Arc::clone(&forecasts),
        render,
        settings.stream.clone(),
    ));
    let backtests = BacktestService::new(
        registry,
        Arc::clone(&market),
        settings::backtest_policy(&settings),
        limits,
    );
    let access = Access::new(&settings.auth, |name| std::env::var(name).ok())?;
    if access.requires_keys() {
        tracing::info!(
            keys = settings.auth.api_keys.len(),
            "API keys required on /api/*"
        );
    }
    if settings.ec2_probe_wanted() {
        spawn_environment_probe(&settings, Arc::clone(&market));
    }
    if settings.market.probe_on_start {
        let market = Arc::clone(&market);
        tokio::spawn(async move { market.probe_live_providers().await });
    }
    Ok(AppState::new(Services {
        settings: Arc::new(settings),
        market,
        forecasts,
        streams,
        backtests: Arc::new(backtests),
        catalog: Arc::new(catalog),
        subscriptions,
        access: Arc::new(access),
        ready: Arc::new(AtomicBool::new(true)),
        bodies: Arc::default(),
        lifecycle,
    }))
}

/// The model lifecycle alone (for `tickcast train --register`): the
/// registry, on the configured data layer.
pub async fn lifecycle(settings: &Settings) -> anyhow::Result<Arc<Lifecycle>> {
    let _ = crate::telemetry::metrics_handle();
    let market = Arc::new(market(settings).await?);
    let tracker = Arc::new(Tracker::new(
        settings.tracking.capacity,
        settings.tracking.window,
    ));
    open_registry(settings, market, tracker)
}

/// The lifecycle over the registry `settings` name, on `market` and `tracker`.
fn open_registry(
    settings: &Settings,
    market: Arc<DataManager>,
    tracker: Arc<Tracker>,
) -> anyhow::Result<Arc<Lifecycle>> {
    let root = settings.registry_dir();
    Lifecycle::open(
        &root,
        &settings.models.dir,
        settings.lifecycle.clone(),
        settings.ab.clone(),
        Arc::new(SeriesFitter::new(settings::fit_policy(settings))),
        market,
        tracker,
    )
    .with_context(|| format!("opening the model registry {}", root.display()))
}

/// Opens the model registry and serves its champions (and challengers)
/// in place of the networks `registry` holds; none when it holds none.
fn open_lifecycle(
    settings: &Settings,
    registry: &mut Registry,
    market: &Arc<DataManager>,
    tracker: &Arc<Tracker>,
) -> anyhow::Result<Option<Arc<Lifecycle>>> {
    if !lifecycle::MODELS.iter().all(|m| registry.get(m).is_some()) {
        return Ok(None);
    }
    let lifecycle = open_registry(settings, Arc::clone(market), Arc::clone(tracker))?;
    for live in lifecycle.served() {
        registry.insert(live);
    }
    lifecycle.spawn_background();
    Ok(Some(lifecycle))
}

/// Probes for EC2 in the background; on EC2, switches the data manager to
/// production and its provider order. Startup never waits for it.
fn spawn_environment_probe(settings: &Settings, market: Arc<DataManager>) {
    let url = settings.market.ec2_probe_url.clone();
    let timeout = std::time::Duration::from_millis(settings.market.ec2_probe_timeout_ms);
    let production: Vec<&'static str> = settings
        .provider_priority_in(Environment::Production)
        .iter()
        .map(|p| p.as_str())
        .collect();
    tokio::spawn(async move {
        match crate::market::ec2::probe(&url, timeout).await {
            Ec2Probe::OnEc2 => {
                market.adopt_environment(Environment::Production, &production);
                tracing::info!(
                    priority = ?market.priority(),
                    "EC2 metadata service found: running as production"
                );
            }
            Ec2Probe::NotEc2(reason) => {
                tracing::info!(%reason, "not on EC2: running as development");
            }
        }
    });
}

/// A bound listener and the router it will serve.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// `server.metrics_address`, when metrics have their own listener.
    metrics: Option<TcpListener>,
    state: AppState,
}

impl Application {
    /// Builds with the models this build serves.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let registry =
            crate::models::served_from(&settings.models.dir, settings::fit_policy(&settings))?;
        Self::build_with(settings, registry).await
    }

    /// Builds with a given registry (tests use their own models). When it
    /// holds both networks, they are served from the model registry
    /// instead: its champions, fitting per series under the settings' policy.
    pub async fn build_with(settings: Settings, registry: Registry) -> anyhow::Result<Self> {
        let addr = settings.socket_addr();
        let state = build_state(settings, registry).await?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (server.bind / server.port)"))?;
        let metrics =
            match state.settings.server.metrics_address.trim() {
                "" => None,
                address => Some(TcpListener::bind(address).await.with_context(|| {
                    format!("cannot listen on {address} (server.metrics_address)")
                })?),
            };
        let router = crate::api::router(state.clone());
        Ok(Application {
            listener,
            router,
            metrics,
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served when it has its own listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves. Then connections with no request
    /// in flight are closed at once, in-flight requests finish, and after
    /// `server.shutdown_timeout_secs` whatever is left is abandoned. The
    /// separate metrics listener, if any, stops with the rest.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let ready = Arc::clone(&self.state.ready);
        let server = &self.state.settings.server;
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            max_connections: server.max_connections,
            shutdown_timeout: Duration::from_secs(server.shutdown_timeout_secs),
        };
        let stopping = CancellationToken::new();
        {
            let stopping = stopping.clone();
            let streams = Arc::clone(&self.state.streams);
            tokio::spawn(async move {
                shutdown.await;
                ready.store(false, Ordering::Release);
                tracing::info!("shutting down: finishing in-flight requests");
                streams.stop();
                stopping.cancel();
            });
        }
        let metrics = self.metrics.map(|listener| {
            let router = crate::api::ops::metrics_router();
            tokio::spawn(serve_connections(
                listener,
                router,
                limits,
                stopping.clone(),
            ))
        });
        serve_connections(self.listener, self.router, limits, stopping).await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        Ok(())
    }
}
