//! Builds the application from settings: data, catalog, store, router.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::{Catalog, SubscriptionStore};
use crate::config::{Environment, ProviderName, Settings};
use crate::market::breaker::BreakerConfig;
use crate::market::ec2::Ec2Probe;
use crate::market::fyers::{FyersEndpoint, FyersProvider};
use crate::market::local::LocalProvider;
use crate::market::yahoo::YahooProvider;
use crate::market::{CachePolicy, DataManager, Provider, SymbolMapper};
use crate::models::evaluation::{load_measurements, Measurements};
use crate::models::gate::FitCache;
use crate::models::tracking::Tracker;
use crate::models::Registry;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub market: Arc<DataManager>,
    pub registry: Arc<Registry>,
    pub catalog: Arc<Catalog>,
    pub subscriptions: SubscriptionStore,
    /// The Fyers client, for switching credentials at runtime.
    pub fyers: Arc<FyersProvider>,
    /// Set once data is loaded; read by `/readyz`.
    pub ready: Arc<AtomicBool>,
    /// What `tickcast evaluate` measured, for the catalog's scores.
    pub measurements: Option<Arc<Measurements>>,
    /// Served forecasts waiting to be scored, and their scores.
    pub tracker: Arc<Tracker>,
    /// Finished backtests, and the limit on running ones.
    pub backtests: Arc<FitCache<serde_json::Value>>,
    /// API keys and per-caller rate limits.
    pub access: Arc<crate::api::auth::Access>,
}

impl AppState {
    pub async fn build(settings: Settings, registry: Registry) -> anyhow::Result<Self> {
        // Install the recorder before anything records.
        let _ = crate::telemetry::metrics_handle();
        let mapper = match &settings.data.symbol_mapping_file {
            path if path.as_os_str().is_empty() => SymbolMapper::built_in()?,
            path => {
                let file = std::fs::File::open(path).with_context(|| {
                    format!("data.symbol_mapping_file: cannot open {}", path.display())
                })?;
                SymbolMapper::from_reader(std::io::BufReader::new(file))
                    .with_context(|| format!("data.symbol_mapping_file: {}", path.display()))?
            }
        };
        let prices_dir = settings.data.prices_dir.clone();
        let rescan = std::time::Duration::from_secs(settings.data.rescan_secs);
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
        // Every provider is built; those not in the priority wait as
        // standbys the admin switch can bring in.
        let max_wait = std::time::Duration::from_millis(settings.market.rate_limit_max_wait_ms);
        let local: Arc<dyn Provider> = Arc::new(local);
        let yahoo: Arc<dyn Provider> = Arc::new(
            YahooProvider::new(&settings.yahoo)
                .context("yahoo provider")?
                .with_quota(&settings.yahoo, max_wait),
        );
        let endpoint = FyersEndpoint {
            base_url: settings.fyers.base_url.clone(),
            timeout_ms: settings.fyers.timeout_ms,
        };
        let fyers = Arc::new(
            FyersProvider::new(
                &endpoint,
                &settings.fyers.app_id,
                settings.fyers.access_token.clone(),
            )
            .context("fyers provider")?
            .with_quota(&settings.fyers.quota, max_wait),
        );
        let priority = settings.provider_priority();
        let provider = |name: &ProviderName| -> Arc<dyn Provider> {
            match name {
                ProviderName::Local => Arc::clone(&local),
                ProviderName::Yfinance => Arc::clone(&yahoo),
                ProviderName::Fyers => Arc::clone(&fyers) as Arc<dyn Provider>,
            }
        };
        let providers: Vec<Arc<dyn Provider>> = priority.iter().map(provider).collect();
        let standbys: Vec<Arc<dyn Provider>> = [ProviderName::Yfinance, ProviderName::Fyers]
            .iter()
            .filter(|p| !priority.contains(p))
            .map(provider)
            .collect();
        tracing::info!(
            ?priority,
            environment = settings.environment().as_str(),
            "market data providers"
        );
        let cache = CachePolicy {
            history_ttl: std::time::Duration::from_secs(settings.market.history_cache_ttl_secs),
            quote_ttl: std::time::Duration::from_secs(settings.market.quote_cache_ttl_secs),
            capacity: settings.market.cache_capacity,
            history_bytes: settings.market.history_cache_bytes,
        };
        let mut market = DataManager::new(
            providers,
            Arc::new(mapper),
            settings.environment(),
            cache,
            BreakerConfig {
                failure_threshold: settings.market.breaker_failure_threshold,
                cool_down: std::time::Duration::from_secs(settings.market.breaker_cool_down_secs),
                failure_rate: settings.market.breaker_failure_rate,
                failure_window: settings.market.breaker_failure_window,
            },
        );
        for standby in standbys {
            market = market.with_standby(standby);
        }

        let catalog = Catalog::load(&settings.catalog.file)?;
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
            crate::catalog::SubscriptionLimits {
                per_caller: settings.catalog.max_subscriptions_per_caller,
                callers: settings.catalog.max_subscribers,
            },
        )?;

        let market = Arc::new(market);
        let tracker = Arc::new(Tracker::new(
            settings.tracking.capacity,
            settings.tracking.window,
        ));
        market.observe_with(Arc::clone(&tracker) as Arc<dyn crate::market::HistoryObserver>);
        let measurements = load_measurements(&settings.models.dir).map(Arc::new);
        let backtests = Arc::new(FitCache::new(
            "backtests",
            settings.backtest.concurrency,
            settings.backtest.queue,
            settings.backtest.cache_capacity,
        ));
        let access =
            crate::api::auth::Access::new(&settings.auth, |name| std::env::var(name).ok())?;
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

        Ok(AppState {
            settings: Arc::new(settings),
            market,
            registry: Arc::new(registry),
            catalog: Arc::new(catalog),
            subscriptions,
            fyers,
            ready: Arc::new(AtomicBool::new(true)),
            measurements,
            tracker,
            backtests,
            access: Arc::new(access),
        })
    }
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
            crate::models::served_from(&settings.models.dir, settings.models.fit_policy())?;
        Self::build_with(settings, registry).await
    }

    /// Builds with a given registry (tests use their own models).
    pub async fn build_with(settings: Settings, registry: Registry) -> anyhow::Result<Self> {
        let addr = settings.socket_addr();
        let state = AppState::build(settings, registry).await?;
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
            tokio::spawn(async move {
                shutdown.await;
                ready.store(false, Ordering::Release);
                tracing::info!("shutting down: finishing in-flight requests");
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

/// What one peer may hold of the server, and how long shutdown waits.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    header_read_timeout: Duration,
    max_connections: usize,
    shutdown_timeout: Duration,
}

/// Counts a connection's requests between dispatch and response.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The accept loop (axum's `serve` has no header read timeout): HTTP/1 and
/// HTTP/2 per connection, each connection's peer address for the per-IP
/// rate limit, and a shutdown that closes idle connections at once and
/// waits (bounded) for in-flight requests.
async fn serve_connections(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    stopping: CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::{Service, ServiceExt};

    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let connections = TaskTracker::new();
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping.cancelled() => break,
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            metrics::counter!("tickcast_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(service) = make_service.call(peer).await;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&in_flight);
        let service = hyper_util::service::TowerToHyperService::new(
            service
                .map_request(|req: axum::http::Request<hyper::body::Incoming>| {
                    req.map(axum::body::Body::new)
                })
                .map_future(move |response| {
                    let request = InFlight::start(&counted);
                    async move {
                        let response = response.await;
                        drop(request);
                        response
                    }
                }),
        );
        let builder = builder.clone();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let _permit = permit;
            // hyper's timeout starts with the first byte (the protocol is
            // sniffed before it), so a silent connection is timed here.
            let mut first = [0u8; 1];
            let spoke = tokio::time::timeout(limits.header_read_timeout, stream.peek(&mut first));
            let spoke = tokio::select! {
                spoke = spoke => matches!(spoke, Ok(Ok(n)) if n > 0),
                () = stopping.cancelled() => false,
            };
            if !spoke {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(e) = ended {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                }
                () = stopping.cancelled() => {
                    // Nothing in flight (idle, or half a request head): close
                    // now. Otherwise finish the request, then close.
                    if in_flight.load(Ordering::Acquire) > 0 {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(limits.shutdown_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            deadline_secs = limits.shutdown_timeout.as_secs(),
            "shutdown deadline passed; abandoning the requests still running"
        );
    }
}
