//! Typed settings: built-in defaults, then `<config dir>/default.toml`, then
//! `<config dir>/<environment>.toml`, then `TICKCAST_*` environment variables
//! (plus the legacy `ENVIRONMENT`, `FYERS_APP_ID`, `FYERS_ACCESS_TOKEN`), then
//! CLI flags. A bad value stops startup with a message naming the key.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use crate::environment::Environment;

/// The defaults shipped in the binary, so it starts from any directory.
const BUILT_IN_DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Bearer token for `/api/admin/*` (TICKCAST_ADMIN_TOKEN). Empty: admin routes answer 403.
    pub admin_token: SecretString,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub limits: Limits,
    pub data: DataSettings,
    pub catalog: CatalogSettings,
    pub models: ModelSettings,
    pub backtest: BacktestSettings,
    pub tracking: TrackingSettings,
    pub lifecycle: LifecycleSettings,
    pub ab: AbSettings,
    pub stream: StreamSettings,
    pub auth: AuthSettings,
    pub market: MarketSettings,
    pub yahoo: EndpointSettings,
    pub binance: EndpointSettings,
    pub fyers: FyersSettings,
}

/// A public API needing no credentials (Yahoo Finance's chart API,
/// Binance's spot API) and the quota tickcast allows itself there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    pub base_url: String,
    pub timeout_ms: u64,
    pub quota: QuotaSettings,
}

/// Upstream requests allowed to a provider per window; an absent window
/// is unlimited, `burst` the largest burst in any (default: its count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    pub per_second: Option<u32>,
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub port: u16,
    pub request_timeout_secs: u64,
    pub body_limit_bytes: usize,
    pub cors_allowed_origins: Vec<String>,
    /// `ADDR:PORT` to serve `/metrics` on instead of the main port; empty:
    /// the main port.
    pub metrics_address: String,
    /// A connection that has not sent a whole request head within this is
    /// closed (slow clients, idle keep-alive connections).
    pub header_read_timeout_secs: u64,
    /// Open connections beyond this are closed at once.
    pub max_connections: usize,
    /// Longest a shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    /// The level of the one line logged per request (method, path,
    /// status, latency): shown when `level` lets it through.
    pub access: AccessLevel,
}

/// A level for the per-request access line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Caps on request sizes, checked at the HTTP edge.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_prices_per_series: usize,
    pub max_series: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub prices_dir: PathBuf,
    /// How often, at most, the price directory is checked for changed files.
    pub rescan_secs: u64,
    /// Empty: the mapping built into the binary.
    pub symbol_mapping_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// Pretrained weights and model cards (`tickcast train` writes them).
    pub dir: PathBuf,
    /// Per-series fits (`params.fit = "series"`) running at once.
    pub fit_concurrency: usize,
    /// Fits waiting for a slot; beyond this a request gets 503 `busy`.
    pub fit_queue: usize,
    /// Longest a fit trains; it then keeps its best epoch so far.
    pub fit_time_budget_secs: u64,
    /// Fitted networks kept for repeated requests.
    pub fit_cache_capacity: u64,
}

/// Versions of the networks, their retraining and the promotion gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSettings {
    /// The model registry; empty: `<models.dir>/registry`.
    pub registry_dir: PathBuf,
    /// The newest closes are split into these many years of training,
    /// early-stopping and held-out test (the gate's) data.
    pub train_years: u32,
    pub validation_years: u32,
    pub test_years: u32,
    /// Stocks trained on; empty: those of the embedded dataset.
    pub symbols: Vec<String>,
    /// Epoch cap and window stride of a retraining run; 0: the
    /// pretraining plan's.
    pub max_epochs: usize,
    pub stride: usize,
    /// A run stops training after this long, keeping its best epoch.
    pub time_budget_secs: u64,
    /// Runs waiting behind the one training; beyond: 503 `busy`.
    pub queue: usize,
    /// Promotion gate: the largest accepted increase of the RMSE ratio and
    /// drop of directional accuracy (at the ends of their 95 % intervals).
    pub max_rmse_ratio_increase: f64,
    pub max_accuracy_drop: f64,
    pub bootstrap_resamples: usize,
    /// Scheduled retraining: every this many hours (0: off) ...
    pub retrain_every_hours: u64,
    /// ... when at least this many closes newer than the champion's data
    /// have arrived for some stock.
    pub retrain_min_new_closes: usize,
}

/// A/B tests of a challenger against its champion on live forecasts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbSettings {
    /// Share of (caller, symbol) pairs the challenger answers; 0: none.
    pub share: f64,
    /// The live gate judges a challenger once its arm has this many
    /// scored forecasts ...
    pub min_scored: u64,
    /// ... looking every this many seconds.
    pub check_secs: u64,
}

/// Access control for `/api/*` (off while `api_keys` is empty).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub api_keys: Vec<ApiKeySettings>,
    /// Each caller's rate (by API key, else by client IP); `per_second = 0`
    /// turns it off.
    pub quota: CallerQuota,
    /// Failed admin-token attempts a client may make per minute (and at
    /// once); beyond: 429 before the token is compared.
    pub admin_failures_per_minute: u32,
}

/// One API key: its SHA-256 (hex) or the environment variable holding it,
/// never the key itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// Who the key belongs to; subscriptions are kept under this name.
    pub owner: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub env: String,
    /// A gateway calling for its users: its `X-User-Id` names the user.
    #[serde(default)]
    pub trusted_gateway: bool,
    /// This key's own rate, instead of `auth.quota`.
    #[serde(default)]
    pub quota: Option<CallerQuota>,
}

impl ApiKeySettings {
    /// The key's SHA-256: from `sha256`, or of the value of the environment
    /// variable `env` names (looked up through `env_var`); `Err` says why
    /// the entry is unusable.
    pub fn digest(&self, env_var: impl Fn(&str) -> Option<String>) -> Result<[u8; 32], String> {
        if self.owner.trim().is_empty() {
            return Err("owner is empty".into());
        }
        match (self.sha256.trim().is_empty(), self.env.trim().is_empty()) {
            (false, true) => parse_sha256_hex(&self.sha256)
                .ok_or_else(|| "sha256 must be 64 hexadecimal digits".to_string()),
            (true, false) => {
                let key = env_var(self.env.trim())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("environment variable {} is not set", self.env))?;
                Ok(sha2::Sha256::digest(key.as_bytes()).into())
            }
            _ => Err("give exactly one of sha256 or env".into()),
        }
    }
}

fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerQuota {
    pub per_second: u32,
    pub burst: u32,
}

/// `POST /api/catalog/backtest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestSettings {
    /// Longest a backtest may forecast; then 503 `timeout`.
    pub time_budget_secs: u64,
    /// Backtests running at once; `queue` more wait, the rest get 503 `busy`.
    pub concurrency: usize,
    pub queue: usize,
    /// Finished backtests kept for identical requests on the same data.
    pub cache_capacity: u64,
}

/// Live feeds over WebSocket and Server-Sent Events (`/api/stream`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// How often each watched channel is polled through the data manager.
    pub poll_interval_ms: u64,
    /// Messages that may wait for one client before it is closed as too slow.
    pub max_lag_messages: usize,
    /// A WebSocket that sends nothing (not even a pong) this long is closed.
    pub idle_timeout_secs: u64,
    pub max_subscriptions_per_connection: usize,
    /// Open streams (WebSocket and SSE) beyond this are refused with 503.
    pub max_connections: usize,
}

/// Live scoring of served forecasts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingSettings {
    /// Forecasts kept waiting for their target close (oldest dropped beyond).
    pub capacity: usize,
    /// Scored forecasts per model behind the rolling hit rate and MAE.
    pub window: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    pub file: PathBuf,
    pub subscriptions_db: PathBuf,
    /// Subscriptions one caller may hold; beyond: 400.
    pub max_subscriptions_per_caller: usize,
    /// Callers the store keeps subscriptions for; beyond: 429.
    pub max_subscribers: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSettings {
    /// Unset: development until the EC2 probe finds production.
    #[serde(default)]
    pub environment: Option<Environment>,
    pub ec2_probe_url: String,
    pub ec2_probe_timeout_ms: u64,
    pub providers: Vec<ProviderName>,
    pub history_cache_ttl_secs: u64,
    pub quote_cache_ttl_secs: u64,
    pub breaker_failure_threshold: u32,
    pub breaker_cool_down_secs: u64,
    pub breaker_failure_rate: f64,
    pub breaker_failure_window: usize,
    pub rate_limit_max_wait_ms: u64,
    pub cache_capacity: u64,
    /// Bytes of bars the history cache keeps (and as many of last-good ones).
    pub history_cache_bytes: u64,
    /// Ask each live provider for one quote at startup, so the stock
    /// listing knows which can deliver.
    pub probe_on_start: bool,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FyersSettings {
    pub app_id: String,
    pub access_token: SecretString,
    pub base_url: String,
    pub timeout_ms: u64,
    pub quota: QuotaSettings,
}

impl FyersSettings {
    /// Fyers is usable only with both an app id and a token.
    pub fn is_configured(&self) -> bool {
        !self.app_id.trim().is_empty() && !self.access_token.expose_secret().trim().is_empty()
    }
}

impl fmt::Debug for FyersSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FyersSettings")
            .field("app_id", &self.app_id)
            .field("access_token", &"[redacted]")
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// A market data provider this build can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Local,
    Yfinance,
    Fyers,
    Binance,
}

impl ProviderName {
    /// The name the provider reports (and the contract uses).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Local => "local",
            ProviderName::Yfinance => "yfinance",
            ProviderName::Fyers => "fyers",
            ProviderName::Binance => "binance",
        }
    }
}

/// Overrides given on the command line; they win over every other layer.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CliOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// A configuration problem, naming the key and the reason.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn key(key: &str, reason: impl fmt::Display) -> Self {
        ConfigError(format!("`{key}`: {reason}"))
    }
}

impl Settings {
    /// Loads settings. `config_path` is a directory holding `default.toml`
    /// and `<environment>.toml`, or a single TOML file; a missing default
    /// directory is fine, an explicitly named missing path is not.
    pub fn load(
        config_path: &Path,
        path_is_explicit: bool,
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        Self::load_from(config_path, path_is_explicit, cli, |k| {
            std::env::var(k).ok()
        })
    }

    /// As [`Settings::load`], reading legacy variables through `env`
    /// (`TICKCAST_*` variables are always read from the process).
    pub fn load_from(
        config_path: &Path,
        path_is_explicit: bool,
        cli: &CliOverrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut base = Figment::from(Toml::string(BUILT_IN_DEFAULTS));
        let config_dir = if config_path.is_file() {
            base = base.merge(Toml::file_exact(config_path));
            None
        } else if config_path.is_dir() {
            let defaults = config_path.join("default.toml");
            if defaults.is_file() {
                base = base.merge(Toml::file_exact(defaults));
            }
            Some(config_path)
        } else if path_is_explicit {
            return Err(ConfigError::key(
                "--config",
                format!("{} does not exist", config_path.display()),
            ));
        } else {
            None
        };

        let overrides = |figment: Figment| -> Result<Figment, ConfigError> {
            let mut figment =
                figment.merge(Env::prefixed("TICKCAST_").ignore(&["config"]).split("__"));
            if let Some(raw) = env("ENVIRONMENT").filter(|v| !v.trim().is_empty()) {
                let parsed: Environment = raw
                    .parse()
                    .map_err(|e| ConfigError::key("ENVIRONMENT", e))?;
                figment = figment.merge(("market.environment", parsed.as_str()));
            }
            if let Some(app_id) = env("FYERS_APP_ID") {
                figment = figment.merge(("fyers.app_id", app_id));
            }
            if let Some(token) = env("FYERS_ACCESS_TOKEN") {
                figment = figment.merge(("fyers.access_token", token));
            }
            Ok(figment.merge(Serialized::defaults(ServerOverrides { server: cli })))
        };

        // The environment picks the per-environment file, so read it first.
        let environment: Environment = overrides(base.clone())?
            .extract_inner::<Option<Environment>>("market.environment")
            .or_else(|e| match e.missing() {
                true => Ok(None),
                false => Err(describe(e)),
            })?
            .unwrap_or_default();
        if let Some(dir) = config_dir {
            let file = dir.join(format!("{}.toml", environment.as_str()));
            if file.is_file() {
                base = base.merge(Toml::file_exact(file));
            }
        }
        let settings: Settings = overrides(base)?.extract().map_err(describe)?;
        settings.validate()?;
        for (i, key) in settings.auth.api_keys.iter().enumerate() {
            key.digest(&env).map_err(|reason| {
                ConfigError::key(&format!("auth.api_keys[{i}] ({})", key.owner), reason)
            })?;
        }
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_counts()?;
        self.validate_budgets()?;
        self.validate_market()?;
        self.validate_server()
    }

    /// Every count, size and duration that must not be 0.
    fn validate_counts(&self) -> Result<(), ConfigError> {
        let (server, market, models) = (&self.server, &self.market, &self.models);
        let stream = &self.stream;
        let counts: [(&str, u64); 34] = [
            ("stream.poll_interval_ms", stream.poll_interval_ms),
            ("stream.max_lag_messages", stream.max_lag_messages as u64),
            ("stream.idle_timeout_secs", stream.idle_timeout_secs),
            (
                "stream.max_subscriptions_per_connection",
                stream.max_subscriptions_per_connection as u64,
            ),
            ("stream.max_connections", stream.max_connections as u64),
            ("server.request_timeout_secs", server.request_timeout_secs),
            ("server.body_limit_bytes", server.body_limit_bytes as u64),
            (
                "server.header_read_timeout_secs",
                server.header_read_timeout_secs,
            ),
            ("server.max_connections", server.max_connections as u64),
            (
                "limits.max_prices_per_series",
                self.limits.max_prices_per_series as u64,
            ),
            ("limits.max_series", self.limits.max_series as u64),
            ("market.cache_capacity", market.cache_capacity),
            ("market.history_cache_bytes", market.history_cache_bytes),
            ("market.ec2_probe_timeout_ms", market.ec2_probe_timeout_ms),
            (
                "market.breaker_failure_threshold",
                u64::from(market.breaker_failure_threshold),
            ),
            ("models.fit_concurrency", models.fit_concurrency as u64),
            ("models.fit_time_budget_secs", models.fit_time_budget_secs),
            ("models.fit_cache_capacity", models.fit_cache_capacity),
            ("backtest.time_budget_secs", self.backtest.time_budget_secs),
            ("backtest.concurrency", self.backtest.concurrency as u64),
            ("backtest.cache_capacity", self.backtest.cache_capacity),
            (
                "catalog.max_subscriptions_per_caller",
                self.catalog.max_subscriptions_per_caller as u64,
            ),
            (
                "catalog.max_subscribers",
                self.catalog.max_subscribers as u64,
            ),
            (
                "auth.admin_failures_per_minute",
                u64::from(self.auth.admin_failures_per_minute),
            ),
            ("tracking.capacity", self.tracking.capacity as u64),
            ("tracking.window", self.tracking.window as u64),
            (
                "lifecycle.validation_years",
                u64::from(self.lifecycle.validation_years),
            ),
            ("lifecycle.test_years", u64::from(self.lifecycle.test_years)),
            (
                "lifecycle.time_budget_secs",
                self.lifecycle.time_budget_secs,
            ),
            (
                "lifecycle.bootstrap_resamples",
                self.lifecycle.bootstrap_resamples as u64,
            ),
            ("ab.check_secs", self.ab.check_secs),
            ("yahoo.timeout_ms", self.yahoo.timeout_ms),
            ("fyers.timeout_ms", self.fyers.timeout_ms),
            ("binance.timeout_ms", self.binance.timeout_ms),
        ];
        match counts.iter().find(|(_, value)| *value == 0) {
            Some((key, _)) => Err(ConfigError::key(key, "must be greater than 0")),
            None => Ok(()),
        }
    }

    /// Work budgets inside the request timeout, so work stops by itself
    /// (with its own message) before the request is cut off.
    fn validate_budgets(&self) -> Result<(), ConfigError> {
        let timeout = self.server.request_timeout_secs;
        for (key, budget) in [
            ("backtest.time_budget_secs", self.backtest.time_budget_secs),
            (
                "models.fit_time_budget_secs",
                self.models.fit_time_budget_secs,
            ),
        ] {
            if budget > timeout {
                return Err(ConfigError::key(
                    key,
                    format!(
                        "{budget} s is longer than server.request_timeout_secs ({timeout} s); work would go on after its request was answered"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_market(&self) -> Result<(), ConfigError> {
        let probe_url = self.market.ec2_probe_url.trim();
        if !probe_url.is_empty() && reqwest::Url::parse(probe_url).is_err() {
            return Err(ConfigError::key(
                "market.ec2_probe_url",
                format!("{probe_url:?} is not a URL"),
            ));
        }
        if !(0.0..=1.0).contains(&self.ab.share) {
            return Err(ConfigError::key("ab.share", "must be between 0 and 1"));
        }
        for (key, margin) in [
            (
                "lifecycle.max_rmse_ratio_increase",
                self.lifecycle.max_rmse_ratio_increase,
            ),
            (
                "lifecycle.max_accuracy_drop",
                self.lifecycle.max_accuracy_drop,
            ),
        ] {
            if !(0.0..=1.0).contains(&margin) {
                return Err(ConfigError::key(key, "must be between 0 and 1"));
            }
        }
        if self.lifecycle.train_years == 0 {
            return Err(ConfigError::key(
                "lifecycle.train_years",
                "must be greater than 0",
            ));
        }
        if !(0.0..=1.0).contains(&self.market.breaker_failure_rate) {
            return Err(ConfigError::key(
                "market.breaker_failure_rate",
                "must be between 0 and 1",
            ));
        }
        let providers = &self.market.providers;
        if providers.contains(&ProviderName::Fyers) && !self.fyers.is_configured() {
            return Err(ConfigError::key(
                "market.providers",
                "lists fyers, but fyers.app_id and fyers.access_token (FYERS_APP_ID, FYERS_ACCESS_TOKEN) are not both set",
            ));
        }
        if let Some(dup) = providers
            .iter()
            .enumerate()
            .find(|(i, p)| providers[..*i].contains(p))
        {
            return Err(ConfigError::key(
                "market.providers",
                format!("{:?} is listed twice", dup.1),
            ));
        }
        Ok(())
    }

    /// Where the model registry lives.
    pub fn registry_dir(&self) -> PathBuf {
        if self.lifecycle.registry_dir.as_os_str().is_empty() {
            self.models.dir.join("registry")
        } else {
            self.lifecycle.registry_dir.clone()
        }
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        self.server
            .bind
            .parse::<std::net::IpAddr>()
            .map_err(|e| ConfigError::key("server.bind", format!("{:?}: {e}", self.server.bind)))?;
        let metrics = self.server.metrics_address.trim();
        if !metrics.is_empty() && metrics.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::key(
                "server.metrics_address",
                format!("{metrics:?} is not ADDR:PORT"),
            ));
        }
        if self.server.cors_allowed_origins.is_empty() {
            return Err(ConfigError::key(
                "server.cors_allowed_origins",
                "must list at least one origin, or \"*\"",
            ));
        }
        for origin in &self.server.cors_allowed_origins {
            if origin != "*" && axum::http::HeaderValue::from_str(origin).is_err() {
                return Err(ConfigError::key(
                    "server.cors_allowed_origins",
                    format!("{origin:?} is not a valid origin"),
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::key("log.level", e))?;
        Ok(())
    }

    /// Providers in the order they are tried: `market.providers` when given,
    /// else by environment (production puts Fyers first).
    pub fn provider_priority(&self) -> Vec<ProviderName> {
        self.provider_priority_in(self.environment())
    }

    /// The environment in force before any probe: as configured, else development.
    pub fn environment(&self) -> Environment {
        self.market.environment.unwrap_or_default()
    }

    /// Whether the EC2 probe decides the environment: only when nothing
    /// configured it or the provider order, and the probe is not turned off.
    pub fn ec2_probe_wanted(&self) -> bool {
        self.market.environment.is_none()
            && self.market.providers.is_empty()
            && !self.market.ec2_probe_url.trim().is_empty()
    }

    /// [`Settings::provider_priority`] as it would be in `environment`.
    pub fn provider_priority_in(&self, environment: Environment) -> Vec<ProviderName> {
        if !self.market.providers.is_empty() {
            return self.market.providers.clone();
        }
        let fyers = self.fyers.is_configured().then_some(ProviderName::Fyers);
        let live = match environment {
            Environment::Production => [fyers, Some(ProviderName::Yfinance)],
            Environment::Development | Environment::Staging => {
                [Some(ProviderName::Yfinance), fyers]
            }
        };
        // Binance only answers for crypto pairs, after the general providers.
        live.into_iter()
            .flatten()
            .chain([ProviderName::Binance, ProviderName::Local])
            .collect()
    }

    pub fn socket_addr(&self) -> std::net::SocketAddr {
        // `validate` proved `bind` parses.
        let ip = self
            .server
            .bind
            .parse()
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        std::net::SocketAddr::new(ip, self.server.port)
    }
}

#[derive(Serialize)]
struct ServerOverrides<'a> {
    server: &'a CliOverrides,
}

/// Figment errors already name the key and the source; keep them on one line.
fn describe(err: figment::Error) -> ConfigError {
    let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
    ConfigError(messages.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(env: &[(&str, &str)], dir: &Path) -> Result<Settings, ConfigError> {
        let vars: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(dir, true, &CliOverrides::default(), move |k| {
            vars.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn built_in_defaults_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        let s = load_with(&[], dir.path()).unwrap();
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.server.bind, "127.0.0.1");
        assert_eq!(s.limits.max_series, 500);
        assert_eq!(
            s.market.environment, None,
            "unset until configured or probed"
        );
        assert_eq!(s.environment(), Environment::Development);
        assert!(s.ec2_probe_wanted());
        assert!(!s.fyers.is_configured());
    }

    #[test]
    fn the_ec2_probe_runs_only_when_nothing_decides_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let set = load_with(&[("ENVIRONMENT", "development")], dir.path()).unwrap();
        assert!(!set.ec2_probe_wanted(), "ENVIRONMENT wins");
        let file = dir.path().join("default.toml");
        std::fs::write(&file, "[market]\nproviders = [\"local\"]\n").unwrap();
        let listed = load_with(&[], dir.path()).unwrap();
        assert!(!listed.ec2_probe_wanted(), "an explicit order wins");
        std::fs::write(&file, "[market]\nec2_probe_url = \"\"\n").unwrap();
        let off = load_with(&[], dir.path()).unwrap();
        assert!(!off.ec2_probe_wanted(), "an empty URL turns it off");
    }

    #[test]
    fn legacy_environment_variable_accepts_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let s = load_with(&[("ENVIRONMENT", "PROD")], dir.path()).unwrap();
        assert_eq!(s.market.environment, Some(Environment::Production));
        let err = load_with(&[("ENVIRONMENT", "moon")], dir.path()).unwrap_err();
        assert!(err.to_string().contains("ENVIRONMENT"), "{err}");
    }

    #[test]
    fn environment_file_overrides_default_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("default.toml"), "[server]\nport = 9001\n").unwrap();
        std::fs::write(dir.path().join("staging.toml"), "[server]\nport = 9002\n").unwrap();
        assert_eq!(load_with(&[], dir.path()).unwrap().server.port, 9001);
        let staged = load_with(&[("ENVIRONMENT", "stage")], dir.path()).unwrap();
        assert_eq!(staged.server.port, 9002);
    }

    #[test]
    fn bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("default.toml");
        std::fs::write(&file, "[server]\nport = \"eighty\"\n").unwrap();
        let err = load_with(&[], dir.path()).unwrap_err().to_string();
        assert!(err.contains("server.port"), "{err}");

        std::fs::write(&file, "[limits]\nmax_series = 0\n").unwrap();
        let err = load_with(&[], dir.path()).unwrap_err().to_string();
        assert!(err.contains("limits.max_series"), "{err}");

        std::fs::write(&file, "[log]\nformat = \"xml\"\n").unwrap();
        let err = load_with(&[], dir.path()).unwrap_err().to_string();
        assert!(err.contains("log.format"), "{err}");

        std::fs::write(&file, "[server]\nprot = 1\n").unwrap();
        let err = load_with(&[], dir.path()).unwrap_err().to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn fyers_token_never_shows_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let s = load_with(
            &[
                ("FYERS_APP_ID", "APP-100"),
                ("FYERS_ACCESS_TOKEN", "sekrit-token"),
            ],
            dir.path(),
        )
        .unwrap();
        assert!(s.fyers.is_configured());
        assert!(!format!("{s:?}").contains("sekrit-token"));
    }

    #[test]
    fn provider_lists_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("default.toml");
        std::fs::write(&file, "[market]\nproviders = [\"yfinance\", \"local\"]\n").unwrap();
        let s = load_with(&[], dir.path()).unwrap();
        assert_eq!(
            s.market.providers,
            [ProviderName::Yfinance, ProviderName::Local]
        );
        for bad in ["[\"local\", \"local\"]", "[\"bloomberg\"]", "[\"fyers\"]"] {
            std::fs::write(&file, format!("[market]\nproviders = {bad}\n")).unwrap();
            let err = load_with(&[], dir.path()).unwrap_err().to_string();
            assert!(err.contains("providers"), "{bad}: {err}");
        }
    }

    #[test]
    fn priority_follows_the_environment_unless_listed() {
        use ProviderName::{Binance, Fyers, Local, Yfinance};
        let dir = tempfile::tempdir().unwrap();
        let creds = [("FYERS_APP_ID", "APP-100"), ("FYERS_ACCESS_TOKEN", "t")];
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Vars, &[ProviderName]); 5] = [
            (&[], &[Yfinance, Binance, Local]),
            (
                &[("ENVIRONMENT", "production")],
                &[Yfinance, Binance, Local],
            ),
            (&creds, &[Yfinance, Fyers, Binance, Local]),
            (
                &[creds[0], creds[1], ("ENVIRONMENT", "prod")],
                &[Fyers, Yfinance, Binance, Local],
            ),
            (
                &[creds[0], creds[1], ("ENVIRONMENT", "staging")],
                &[Yfinance, Fyers, Binance, Local],
            ),
        ];
        for (env, expected) in cases {
            assert_eq!(
                load_with(env, dir.path()).unwrap().provider_priority(),
                expected,
                "{env:?}"
            );
        }
        std::fs::write(
            dir.path().join("default.toml"),
            "[market]\nproviders = [\"local\"]\n",
        )
        .unwrap();
        let s = load_with(&[creds[0], creds[1], ("ENVIRONMENT", "prod")], dir.path()).unwrap();
        assert_eq!(
            s.provider_priority(),
            [Local],
            "an explicit list overrides the environment"
        );
    }

    #[test]
    fn cli_overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let cli = CliOverrides {
            bind: Some("0.0.0.0".into()),
            port: Some(1234),
        };
        let s = Settings::load_from(dir.path(), true, &cli, |_| None).unwrap();
        assert_eq!(s.socket_addr().to_string(), "0.0.0.0:1234");
    }

    #[test]
    fn explicit_missing_config_path_is_an_error() {
        let err = Settings::load_from(
            Path::new("/nonexistent/tickcast.toml"),
            true,
            &CliOverrides::default(),
            |_| None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--config"));
    }
}
