//! The one door to market data: asks providers in priority order, keeps
//! per-provider counters, and keys answers by the symbol as the caller wrote it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use super::cache::{Bars, CacheStats, Freshness, HistoryCache, TtlCache};
use super::limiter::ProviderRateLimiter;
use super::prices::{History, Interval, Quote, Span};
use super::provider::{Provider, ProviderError};
use super::stats::{ProviderMetrics, ProviderStats};
use super::symbols::{normalize, SymbolMapper};
use crate::environment::Environment;

/// Longest symbol accepted; real ones are far shorter.
const MAX_SYMBOL_LEN: usize = 40;

#[derive(Debug, Clone, thiserror::Error)]
pub enum MarketError {
    #[error("invalid symbol {symbol:?}: {reason}")]
    InvalidSymbol { symbol: String, reason: String },
    #[error("no data for {symbol} ({reason})")]
    NotFound { symbol: String, reason: String },
    #[error("no provider could supply {symbol}: {details}")]
    Unavailable { symbol: String, details: String },
}

/// Quotes keyed by the caller's symbols, and the ones nobody had, with why.
#[derive(Debug, Default)]
pub struct QuoteReport {
    pub found: Vec<(String, Quote)>,
    pub missing: Vec<(String, String)>,
    /// The missing symbols a provider could not answer for now (down,
    /// limited), as opposed to none having them.
    pub unavailable: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MarketHealth {
    /// `healthy`, `degraded` or `unhealthy` (sent beside `health`).
    #[serde(skip_serializing)]
    pub status: &'static str,
    pub environment: &'static str,
    pub providers: Vec<&'static str>,
    pub provider_priority: Vec<&'static str>,
    pub performance_metrics: std::collections::BTreeMap<&'static str, ProviderMetrics>,
    pub cache_stats: std::collections::BTreeMap<&'static str, u64>,
    pub symbol_mappings_loaded: usize,
    /// Hits, misses and entries of the history cache.
    pub history_cache: CacheStats,
    /// Hits, misses and entries of the quote cache.
    pub quote_cache: CacheStats,
}

/// A stock the provider chain can price now: its symbols in both forms
/// (the legacy listing's fields; `fyers_symbol` is empty where Fyers has
/// none) and the provider its data would come from.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PriceableStock {
    pub yfinance_symbol: String,
    pub fyers_symbol: String,
    pub name: String,
    pub data_source: &'static str,
}

/// Least time between probes of live providers that are not answering.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How long answers are kept, and how much of them.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub history_ttl: std::time::Duration,
    pub quote_ttl: std::time::Duration,
    /// Most quotes kept (and as many last-good ones).
    pub capacity: u64,
    /// Bytes of bars the history cache keeps (and again of last-good ones).
    pub history_bytes: u64,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            history_ttl: std::time::Duration::from_secs(3600),
            quote_ttl: std::time::Duration::from_secs(30),
            capacity: 10_000,
            history_bytes: 64 << 20,
        }
    }
}

type HistoryKey = (String, Interval);

/// Bars fetched for a request of the newest `n`: the next of a few fixed
/// depths, so a series grows in at most a handful of upstream calls
/// however the lookbacks asked for vary.
fn fetch_depth(n: usize) -> usize {
    const DEPTHS: [usize; 5] = [64, 256, 1024, 4096, 16384];
    DEPTHS.into_iter().find(|&d| d >= n).unwrap_or(n)
}

struct Source {
    provider: Arc<dyn Provider>,
    stats: ProviderStats,
    breaker: CircuitBreaker,
}

impl Source {
    /// Whether this provider can deliver `symbol` (in Yahoo form) now: a
    /// provider holding its own data has it, or a live one is answering
    /// (its breaker closed) and knows the symbol in its own form.
    fn delivers(
        &self,
        symbol: &str,
        held: Option<&[super::provider::Holding]>,
        mapper: &SymbolMapper,
    ) -> bool {
        match held {
            Some(held) => held.iter().any(|h| h.symbol == symbol),
            None => {
                self.stats.is_answering()
                    && self.breaker.state() == BreakerState::Closed
                    && mapper
                        .to_form(symbol, self.provider.symbol_form())
                        .is_some()
            }
        }
    }

    /// Leave to call: `Err` says why the provider is skipped this time.
    /// (Our own quota is spent per upstream request, inside the provider.)
    fn admit(&self) -> Result<super::breaker::Permit<'_>, &'static str> {
        self.breaker.try_acquire().ok_or("circuit open")
    }

    /// Feeds one call's outcome to the counters and the breaker. Unknown
    /// symbols say nothing about the provider's health.
    fn report<T>(
        &self,
        name: &'static str,
        started: Instant,
        answer: &Result<T, ProviderError>,
        permit: super::breaker::Permit<'_>,
    ) {
        let failed = answer
            .as_ref()
            .is_err_and(ProviderError::is_provider_failure);
        self.stats.record(name, started.elapsed(), failed);
        match answer {
            Ok(_) => permit.succeeded(),
            Err(e) if failed => {
                tracing::warn!(provider = name, error = %e, "provider call failed");
                self.stats.record_error(e.to_string());
                permit.failed()
            }
            Err(e) => {
                tracing::debug!(provider = name, error = %e, "provider has no answer");
                permit.neutral()
            }
        }
    }
}

/// Told of every daily history the data manager hands out.
pub trait HistoryObserver: Send + Sync {
    /// `symbol` is trimmed and upper-cased.
    fn observe(&self, symbol: &str, history: &History);
}

pub struct DataManager {
    /// Told of each daily history served (set once).
    observer: std::sync::OnceLock<Arc<dyn HistoryObserver>>,
    /// Every provider built, including standbys not in the order.
    sources: Vec<Source>,
    /// Indices into `sources`, in the order they are tried; changeable at runtime.
    order: std::sync::RwLock<Vec<usize>>,
    breaker_config: BreakerConfig,
    mapper: Arc<SymbolMapper>,
    /// Changes once if the EC2 probe finds production.
    environment: std::sync::RwLock<Environment>,
    history_cache: HistoryCache<HistoryKey>,
    quote_cache: TtlCache<String, Quote>,
    /// Identical concurrent fetches of the same symbols share one call.
    quote_batches: TtlCache<String, Arc<QuoteBatch>>,
    /// When live providers were last probed.
    probed: std::sync::Mutex<Option<Instant>>,
}

/// Quotes fetched for normalized symbols, and why the others are missing.
#[derive(Debug, Default)]
struct QuoteBatch {
    found: HashMap<String, Quote>,
    missing: HashMap<String, Missing>,
}

/// Why no provider answered for a symbol.
#[derive(Debug, Clone)]
struct Missing {
    /// Each provider's reason, in the order asked.
    reason: String,
    /// A provider could not answer now (then a last good quote may stand
    /// in), as opposed to every one not having the symbol.
    provider_failed: bool,
}

/// What a symbol nobody was asked for is missing for.
const NO_PROVIDER: &str = "no provider";

impl Default for Missing {
    fn default() -> Self {
        Missing {
            reason: NO_PROVIDER.to_string(),
            provider_failed: false,
        }
    }
}

impl Missing {
    fn add(&mut self, provider: &str, reason: &str, failed: bool) {
        // The first provider's answer replaces "no provider".
        if self.reason == NO_PROVIDER {
            self.reason.clear();
        }
        add_reason(&mut self.reason, format!("{provider}: {reason}"));
        self.provider_failed |= failed;
    }
}

impl DataManager {
    /// `providers` in the order they are tried.
    pub fn new(
        providers: Vec<Arc<dyn Provider>>,
        mapper: Arc<SymbolMapper>,
        environment: Environment,
        cache: CachePolicy,
        breaker: BreakerConfig,
    ) -> Self {
        let sources: Vec<Source> = providers
            .into_iter()
            .map(|provider| Source {
                breaker: CircuitBreaker::new(provider.name(), breaker),
                provider,
                stats: ProviderStats::default(),
            })
            .collect();
        DataManager {
            observer: std::sync::OnceLock::new(),
            order: std::sync::RwLock::new((0..sources.len()).collect()),
            sources,
            breaker_config: breaker,
            mapper,
            environment: std::sync::RwLock::new(environment),
            history_cache: HistoryCache::new("history", cache.history_bytes, cache.history_ttl),
            quote_cache: TtlCache::new("quotes", cache.capacity, cache.quote_ttl),
            // Weighed by quotes held, so the batches keep no more than the quote cache.
            quote_batches: TtlCache::weighted(
                "quote_batches",
                cache.capacity,
                cache.quote_ttl,
                |_, batch: &Arc<QuoteBatch>| {
                    u32::try_from(batch.found.len() + batch.missing.len()).unwrap_or(u32::MAX)
                },
            ),
            probed: std::sync::Mutex::new(None),
        }
    }

    /// Adds a provider that is not tried until [`DataManager::set_primary`] names it.
    pub fn with_standby(mut self, provider: Arc<dyn Provider>) -> Self {
        self.sources.push(Source {
            breaker: CircuitBreaker::new(provider.name(), self.breaker_config),
            provider,
            stats: ProviderStats::default(),
        });
        self
    }

    /// Puts the named provider first (bringing in a standby). Takes effect
    /// for the next request.
    pub fn set_primary(&self, name: &str) -> Result<(), String> {
        let index = self
            .sources
            .iter()
            .position(|s| s.provider.name() == name)
            .ok_or_else(|| format!("no provider named {name:?} is available"))?;
        let mut order = self.order.write().unwrap_or_else(|p| p.into_inner());
        order.retain(|&i| i != index);
        order.insert(0, index);
        Ok(())
    }

    /// Gives the named provider new credentials for its next call.
    pub fn set_credentials(
        &self,
        name: &str,
        app_id: &str,
        access_token: secrecy::SecretString,
    ) -> Result<(), String> {
        let source = self
            .sources
            .iter()
            .find(|s| s.provider.name() == name)
            .ok_or_else(|| format!("no provider named {name:?} is available"))?;
        if source.provider.set_credentials(app_id, access_token) {
            Ok(())
        } else {
            Err(format!("{name} takes no credentials"))
        }
    }

    /// Switches to `environment` with its provider order (names of built
    /// providers; unknown names are skipped). Takes effect for the next request.
    pub fn adopt_environment(&self, environment: Environment, order: &[&str]) {
        let indices: Vec<usize> = order
            .iter()
            .filter_map(|name| self.sources.iter().position(|s| s.provider.name() == *name))
            .collect();
        if !indices.is_empty() {
            *self.order.write().unwrap_or_else(|p| p.into_inner()) = indices;
        }
        *self.environment.write().unwrap_or_else(|p| p.into_inner()) = environment;
    }

    pub fn environment(&self) -> Environment {
        *self.environment.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The providers in the order they are tried.
    fn ordered(&self) -> Vec<&Source> {
        let order = self.order.read().unwrap_or_else(|p| p.into_inner());
        order.iter().filter_map(|&i| self.sources.get(i)).collect()
    }

    /// Provider names in the order they are tried.
    pub fn priority(&self) -> Vec<&'static str> {
        self.ordered().iter().map(|s| s.provider.name()).collect()
    }

    /// The provider tried first.
    pub fn primary(&self) -> Option<&'static str> {
        self.ordered().first().map(|s| s.provider.name())
    }

    pub fn mapper(&self) -> &SymbolMapper {
        &self.mapper
    }

    /// Bars for `symbol`: cached, or from the first provider that has them.
    /// The newest `n` bars of one cached series per symbol and interval
    /// (fewer when the provider has fewer); concurrent identical fetches
    /// share one upstream call; when every provider fails, the last good
    /// answer is served with its age. `Span::Dates` is fetched uncached.
    pub async fn history(
        &self,
        symbol: &str,
        span: Span,
        interval: Interval,
    ) -> Result<History, MarketError> {
        let key = validate_symbol(symbol)?;
        let Span::LastBars(n) = span else {
            let bars = self.fetch_history(symbol, &key, span, interval).await?;
            return Ok(History::newest(bars.candles, usize::MAX, bars.provider));
        };
        let n = n.max(1);
        let fetch =
            |depth: usize| self.fetch_history(symbol, &key, Span::LastBars(depth), interval);
        let answer = self
            .history_cache
            .get_or_fetch((key.clone(), interval), n, fetch_depth(n), fetch, |e| {
                matches!(e, MarketError::Unavailable { .. })
            })
            .await;
        let history = match answer {
            Ok((bars, freshness)) => {
                let mut history =
                    History::newest(Arc::clone(&bars.candles), n, bars.provider.clone());
                if let Freshness::Stale { age } = freshness {
                    history.stale_age = Some(age);
                }
                history
            }
            Err(e) => return Err(MarketError::clone(&e)),
        };
        if let (Some(observer), Interval::Daily) = (self.observer.get(), interval) {
            observer.observe(&key, &history);
        }
        Ok(history)
    }

    /// Tells `observer` of every daily history served from now on (the
    /// first observer set stays).
    pub fn observe_with(&self, observer: Arc<dyn HistoryObserver>) {
        let _ = self.observer.set(observer);
    }

    async fn fetch_history(
        &self,
        symbol: &str,
        key: &str,
        span: Span,
        interval: Interval,
    ) -> Result<Bars, MarketError> {
        let mut not_found = Vec::new();
        let mut failures = Vec::new();
        for source in self.ordered() {
            let name = source.provider.name();
            let Some(native) = self.mapper.to_form(key, source.provider.symbol_form()) else {
                not_found.push(format!("{name}: not listed"));
                continue;
            };
            let permit = match source.admit() {
                Ok(permit) => permit,
                Err(why) => {
                    failures.push(format!("{name}: {why}"));
                    continue;
                }
            };
            let started = Instant::now();
            let answer = source.provider.history(&native, span, interval).await;
            source.report(name, started, &answer, permit);
            match answer {
                Ok(candles) if !candles.is_empty() => {
                    let complete = match span {
                        Span::LastBars(asked) => candles.len() < asked,
                        Span::Dates { .. } => false,
                    };
                    return Ok(Bars {
                        candles: candles.into(),
                        provider: name.to_string(),
                        complete,
                    });
                }
                Ok(_) => not_found.push(format!("{name}: no bars in range")),
                Err(e) if e.is_unavailable() => failures.push(format!("{name}: {e}")),
                Err(e) => not_found.push(format!("{name}: {e}")),
            }
        }
        if failures.is_empty() {
            Err(MarketError::NotFound {
                symbol: symbol.trim().to_string(),
                reason: not_found.join("; "),
            })
        } else {
            Err(MarketError::Unavailable {
                symbol: symbol.trim().to_string(),
                details: failures.join("; "),
            })
        }
    }

    /// Latest quotes; each symbol comes from the first provider that has it.
    /// Quotes keyed by the caller's spelling: cached ones (30 s by default),
    /// the rest fetched together; when every provider fails for a symbol,
    /// its last good quote with `stale_age_secs`.
    pub async fn quotes(&self, symbols: &[String]) -> QuoteReport {
        let mut report = QuoteReport::default();
        let mut wanted: Vec<(String, String)> = Vec::new();
        for symbol in symbols {
            match validate_symbol(symbol) {
                Ok(key) => wanted.push((symbol.clone(), key)),
                Err(e) => report.missing.push((symbol.clone(), e.to_string())),
            }
        }
        let (mut known, misses) = self.cached_quotes(wanted.iter().map(|(_, k)| k)).await;
        let mut why_missing = HashMap::new();
        if !misses.is_empty() {
            let batch = self.shared_fetch(misses).await;
            for (key, quote) in &batch.found {
                self.quote_cache.put(key.clone(), quote.clone()).await;
                known.insert(key.clone(), quote.clone());
            }
            for (key, missing) in &batch.missing {
                if let Some(quote) = self.stand_in(key, missing).await {
                    known.insert(key.clone(), quote);
                } else {
                    why_missing.insert(
                        key.clone(),
                        (missing.reason.clone(), missing.provider_failed),
                    );
                }
            }
        }
        for (caller, key) in wanted {
            match known.get(&key) {
                Some(quote) => report.found.push((caller, quote.clone())),
                None => {
                    let (reason, failed) = why_missing
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| (NO_PROVIDER.into(), false));
                    if failed {
                        report.unavailable.push(caller.clone());
                    }
                    report.missing.push((caller, reason));
                }
            }
        }
        report
    }

    /// The cached quotes of `keys`, and the keys (sorted, once each) not cached.
    async fn cached_quotes<'k>(
        &self,
        keys: impl Iterator<Item = &'k String>,
    ) -> (HashMap<String, Quote>, Vec<String>) {
        let mut known = HashMap::new();
        let mut missed = std::collections::BTreeSet::new();
        for key in keys {
            if known.contains_key(key) || missed.contains(key) {
                continue;
            }
            if let Some(quote) = self.quote_cache.get(key).await {
                known.insert(key.clone(), quote);
            } else {
                missed.insert(key.clone());
            }
        }
        (known, missed.into_iter().collect())
    }

    /// Fetches `keys` once for every concurrent caller asking for the same
    /// ones. A batch in which a provider failed is shared but not kept:
    /// the error side is never cached.
    async fn shared_fetch(&self, keys: Vec<String>) -> Arc<QuoteBatch> {
        let fetch = async {
            let batch = self.fetch_quotes(&keys).await;
            if batch.missing.values().any(|m| m.provider_failed) {
                Err(batch)
            } else {
                Ok(Arc::new(batch))
            }
        };
        match self
            .quote_batches
            .get_or_fetch(keys.join(","), fetch, |_| false)
            .await
        {
            Ok((batch, _)) => batch,
            Err(partial) => partial,
        }
    }

    /// The last good quote of a key no provider could answer for now.
    async fn stand_in(&self, key: &String, missing: &Missing) -> Option<Quote> {
        if !missing.provider_failed {
            return None;
        }
        let (mut quote, age) = self.quote_cache.last_good(key).await?;
        quote.stale_age_secs = Some(age.as_secs());
        quote.stale = true;
        Some(quote)
    }

    /// Asks providers in order for normalized `keys`; each key from the
    /// first provider that has it.
    async fn fetch_quotes(&self, keys: &[String]) -> QuoteBatch {
        let mut found = HashMap::new();
        let mut pending: Vec<(String, Missing)> = keys
            .iter()
            .map(|k| (k.clone(), Missing::default()))
            .collect();
        for source in self.ordered() {
            if pending.is_empty() {
                break;
            }
            let answered = self.ask_for_quotes(source, &mut pending).await;
            let mut keep = Vec::with_capacity(pending.len());
            for ((key, missing), quote) in pending.into_iter().zip(answered) {
                if let Some(quote) = quote {
                    found.insert(key, quote);
                } else {
                    keep.push((key, missing));
                }
            }
            pending = keep;
        }
        QuoteBatch {
            found,
            missing: pending.into_iter().collect(),
        }
    }

    /// One provider's quotes for the `pending` keys, in their order; why
    /// each unanswered key is still missing is added to it.
    async fn ask_for_quotes(
        &self,
        source: &Source,
        pending: &mut [(String, Missing)],
    ) -> Vec<Option<Quote>> {
        let name = source.provider.name();
        let form = source.provider.symbol_form();
        let mut answered = vec![None; pending.len()];
        let mut asked: Vec<(usize, String)> = Vec::new();
        for (i, (key, missing)) in pending.iter_mut().enumerate() {
            match self.mapper.to_form(key, form) {
                Some(native) => asked.push((i, native)),
                None => missing.add(name, "not listed", false),
            }
        }
        if asked.is_empty() {
            return answered;
        }
        let permit = match source.admit() {
            Ok(permit) => permit,
            Err(why) => {
                for (i, _) in &asked {
                    pending[*i].1.add(name, why, true);
                }
                return answered;
            }
        };
        let natives: Vec<String> = asked.iter().map(|(_, n)| n.clone()).collect();
        let started = Instant::now();
        let answer = source.provider.quotes(&natives).await;
        source.report(name, started, &answer, permit);
        match answer {
            Ok(answers) => {
                for ((i, _), (_, result)) in asked.iter().zip(answers) {
                    match result {
                        Ok(quote) => answered[*i] = Some(quote),
                        Err(e) => pending[*i].1.add(name, &e.to_string(), e.is_unavailable()),
                    }
                }
            }
            Err(e) => {
                for (i, _) in &asked {
                    pending[*i].1.add(name, &e.to_string(), e.is_unavailable());
                }
            }
        }
        answered
    }

    /// The stocks the chain can price now, each with the first provider
    /// in the order that delivers it: the mapping's stocks (in its order)
    /// while a live provider answers, then the series providers hold
    /// themselves (local data). A live provider not answering is probed
    /// again in the background, at most once a minute.
    pub fn priceable_stocks(self: &Arc<Self>) -> Vec<PriceableStock> {
        let ordered = self.ordered();
        let holdings: Vec<Option<Vec<super::provider::Holding>>> =
            ordered.iter().map(|s| s.provider.holdings()).collect();
        let source_of = |symbol: &str| {
            ordered
                .iter()
                .zip(&holdings)
                .find(|(s, held)| s.delivers(symbol, held.as_deref(), &self.mapper))
                .map(|(s, _)| s.provider.name())
        };
        let mut stocks: Vec<PriceableStock> = Vec::new();
        let mut listed = std::collections::HashSet::new();
        for stock in self.mapper.stocks() {
            if let Some(source) = source_of(&stock.yfinance_symbol) {
                listed.insert(stock.yfinance_symbol.clone());
                stocks.push(PriceableStock {
                    yfinance_symbol: stock.yfinance_symbol.clone(),
                    fyers_symbol: stock.fyers_symbol.clone(),
                    name: stock.name.clone(),
                    data_source: source,
                });
            }
        }
        for held in holdings.iter().flatten().flatten() {
            if !listed.insert(held.symbol.clone()) {
                continue;
            }
            if let Some(source) = source_of(&held.symbol) {
                stocks.push(PriceableStock {
                    fyers_symbol: self.mapper.to_fyers(&held.symbol).unwrap_or_default(),
                    yfinance_symbol: held.symbol.clone(),
                    name: held.name.clone(),
                    data_source: source,
                });
            }
        }
        let silent = ordered
            .iter()
            .zip(&holdings)
            .any(|(s, held)| held.is_none() && !s.stats.is_answering());
        if silent && self.probe_due() {
            let manager = Arc::clone(self);
            tokio::spawn(async move { manager.probe_live_providers().await });
        }
        stocks
    }

    /// Whether a probe may run now (and, if so, marks it as run).
    fn probe_due(&self) -> bool {
        let mut probed = self.probed.lock().unwrap_or_else(|p| p.into_inner());
        let due = probed.is_none_or(|at| at.elapsed() >= PROBE_EVERY);
        if due {
            *probed = Some(Instant::now());
        }
        due
    }

    /// Asks each live provider in the order for one quote (the mapping's
    /// first stock), so health and the stock listing know which answer.
    /// Counted like any call (stats, breaker, quota).
    pub async fn probe_live_providers(&self) {
        let Some(probe) = self
            .mapper
            .stocks()
            .first()
            .map(|s| s.yfinance_symbol.clone())
        else {
            return;
        };
        for source in self.ordered() {
            if source.provider.holdings().is_some() {
                continue;
            }
            let name = source.provider.name();
            let Some(native) = self.mapper.to_form(&probe, source.provider.symbol_form()) else {
                continue;
            };
            let Ok(permit) = source.admit() else {
                continue;
            };
            let started = Instant::now();
            let answer = source.provider.quotes(&[native]).await;
            // One symbol asked: its own outcome is the call's.
            let answer = match answer {
                Ok(mut answers) if answers.len() == 1 => answers.remove(0).1.map(|_| ()),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            source.report(name, started, &answer, permit);
        }
        *self.probed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Counters only: never calls a provider.
    pub async fn health(&self) -> MarketHealth {
        let names: Vec<&'static str> = self.sources.iter().map(|s| s.provider.name()).collect();
        let ordered = self.ordered();
        let priority: Vec<&'static str> = ordered.iter().map(|s| s.provider.name()).collect();
        let performance_metrics = self
            .sources
            .iter()
            .map(|s| {
                let mut metrics = s.stats.snapshot(s.breaker.state().as_str());
                metrics.rate_limit = s.provider.quota().map(ProviderRateLimiter::stats);
                (s.provider.name(), metrics)
            })
            .collect();
        let cache_stats = self
            .sources
            .iter()
            .map(|s| (s.provider.name(), s.provider.cached_entries()))
            .collect();
        // Healthy while the first provider answers; degraded while a later
        // one stands in; unhealthy when the last call to each one failed.
        let failing: Vec<bool> = ordered
            .iter()
            .map(|s| s.stats.is_failing() || s.breaker.state() != BreakerState::Closed)
            .collect();
        let status = match failing.first() {
            None => "unhealthy",
            Some(false) => "healthy",
            Some(true) if failing.iter().all(|f| *f) => "unhealthy",
            Some(true) => "degraded",
        };
        MarketHealth {
            status,
            environment: self.environment().as_str(),
            providers: names,
            provider_priority: priority,
            performance_metrics,
            cache_stats,
            symbol_mappings_loaded: self.mapper.len(),
            history_cache: self.history_cache.stats().await,
            quote_cache: self.quote_cache.stats().await,
        }
    }
}

/// Appends why one more provider could not answer.
fn add_reason(reasons: &mut String, reason: String) {
    if !reasons.is_empty() {
        reasons.push_str("; ");
    }
    reasons.push_str(&reason);
}

/// Trims, upper-cases and checks a caller's symbol.
pub fn validate_symbol(raw: &str) -> Result<String, MarketError> {
    let symbol = normalize(raw);
    let invalid = |reason: &str| MarketError::InvalidSymbol {
        symbol: raw.to_string(),
        reason: reason.to_string(),
    };
    if symbol.is_empty() {
        return Err(invalid("empty"));
    }
    if symbol.len() > MAX_SYMBOL_LEN {
        return Err(invalid("longer than 40 characters"));
    }
    if !symbol
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".^:-&_=".contains(c))
    {
        return Err(invalid(
            "only letters, digits and . ^ : - & _ = are allowed",
        ));
    }
    Ok(symbol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::dataset::PriceTable;
    use crate::market::limiter::QuotaConfig;
    use crate::market::local::LocalProvider;
    use crate::market::prices::Candle;
    use crate::market::provider::QuoteAnswer;
    use crate::market::symbols::SymbolForm;
    use async_trait::async_trait;
    use chrono::NaiveDate;

    #[test]
    fn a_missing_symbols_reason_names_each_provider_asked() {
        let mut missing = Missing::default();
        assert_eq!(missing.reason, "no provider");
        missing.add("yfinance", "not found", false);
        missing.add("local", "not found", false);
        assert_eq!(missing.reason, "yfinance: not found; local: not found");
    }

    /// A provider that always fails, to exercise fallback.
    struct Broken;

    #[async_trait]
    impl Provider for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn symbol_form(&self) -> SymbolForm {
            SymbolForm::Fyers
        }
        async fn history(
            &self,
            _: &str,
            _: Span,
            _: Interval,
        ) -> Result<Vec<Candle>, ProviderError> {
            Err(ProviderError::Unavailable("connection refused".into()))
        }
        async fn quotes(&self, _: &[String]) -> Result<Vec<QuoteAnswer>, ProviderError> {
            Err(ProviderError::Unavailable("connection refused".into()))
        }
        fn cached_entries(&self) -> u64 {
            0
        }
    }

    fn local() -> Arc<dyn Provider> {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let mut table = PriceTable::new();
        table.insert(
            "RELIANCE.NS".into(),
            vec![
                Candle::daily_close(d, 2500.0),
                Candle::daily_close(d.succ_opt().unwrap(), 2550.0),
            ],
        );
        Arc::new(LocalProvider::from_table(table))
    }

    fn manager(providers: Vec<Arc<dyn Provider>>) -> DataManager {
        let mapper = Arc::new(SymbolMapper::built_in().unwrap());
        DataManager::new(
            providers,
            mapper,
            Environment::Development,
            CachePolicy::default(),
            BreakerConfig::default(),
        )
    }

    #[tokio::test]
    async fn falls_back_past_a_failing_provider_and_counts_it() {
        let dm = manager(vec![Arc::new(Broken), local()]);
        let h = dm
            .history("NSE:RELIANCE-EQ", Span::LastBars(10), Interval::Daily)
            .await
            .unwrap();
        assert_eq!(h.provider, "local");
        assert_eq!(h.closes(), [2500.0, 2550.0]);
        let health = dm.health().await;
        assert_eq!(health.status, "degraded");
        assert_eq!(health.performance_metrics["broken"].success_rate, 0.0);
        assert_eq!(health.performance_metrics["local"].total_calls, 1);
    }

    #[tokio::test]
    async fn quotes_are_keyed_by_the_callers_spelling() {
        let dm = manager(vec![Arc::new(Broken), local()]);
        let symbols = vec![
            " reliance.ns".to_string(),
            "NSE:RELIANCE-EQ".into(),
            "NOPE".into(),
            "".into(),
        ];
        let report = dm.quotes(&symbols).await;
        let found: Vec<&str> = report.found.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(found, [" reliance.ns", "NSE:RELIANCE-EQ"]);
        let missing: Vec<&str> = report.missing.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(missing, ["", "NOPE"]);
    }

    #[tokio::test]
    async fn unknown_symbols_are_not_found_but_failures_are_unavailable() {
        let dm = manager(vec![local()]);
        let err = dm
            .history("ZZZ", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::NotFound { .. }), "{err}");
        let dm = manager(vec![Arc::new(Broken)]);
        let err = dm
            .history("RELIANCE.NS", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::Unavailable { .. }), "{err}");
    }

    /// Serves a fixed series, counts calls, and can be switched off.
    #[derive(Default)]
    struct Flaky {
        calls: std::sync::atomic::AtomicUsize,
        quote_calls: std::sync::atomic::AtomicUsize,
        down: std::sync::atomic::AtomicBool,
        quota: Option<ProviderRateLimiter>,
    }

    #[async_trait]
    impl Provider for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn symbol_form(&self) -> SymbolForm {
            SymbolForm::Yahoo
        }
        async fn history(
            &self,
            symbol: &str,
            _: Span,
            _: Interval,
        ) -> Result<Vec<Candle>, ProviderError> {
            use std::sync::atomic::Ordering::SeqCst;
            if let Some(quota) = &self.quota {
                quota
                    .acquire()
                    .await
                    .map_err(|_| ProviderError::QuotaSpent)?;
            }
            self.calls.fetch_add(1, SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if self.down.load(SeqCst) {
                return Err(ProviderError::Unavailable("HTTP 503".into()));
            }
            if symbol != "AAPL" {
                return Err(ProviderError::NotFound {
                    symbol: symbol.into(),
                });
            }
            let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
            Ok(vec![Candle::daily_close(d, 190.0)])
        }
        async fn quotes(&self, symbols: &[String]) -> Result<Vec<QuoteAnswer>, ProviderError> {
            use std::sync::atomic::Ordering::SeqCst;
            self.quote_calls.fetch_add(1, SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if self.down.load(SeqCst) {
                return Err(ProviderError::Unavailable("HTTP 503".into()));
            }
            let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
            let bar = Candle::daily_close(d, 190.0);
            Ok(symbols
                .iter()
                .map(|s| {
                    let answer = if s == "AAPL" {
                        Ok(Quote::from_bars(&bar, None, "flaky"))
                    } else {
                        Err(ProviderError::NotFound { symbol: s.clone() })
                    };
                    (s.clone(), answer)
                })
                .collect())
        }
        fn cached_entries(&self) -> u64 {
            0
        }
        fn quota(&self) -> Option<&ProviderRateLimiter> {
            self.quota.as_ref()
        }
    }

    fn flaky_manager(ttl_ms: u64) -> (Arc<Flaky>, Arc<DataManager>) {
        flaky_manager_with(Flaky::default(), ttl_ms)
    }

    fn flaky_manager_with(flaky: Flaky, ttl_ms: u64) -> (Arc<Flaky>, Arc<DataManager>) {
        let flaky = Arc::new(flaky);
        let policy = CachePolicy {
            history_ttl: std::time::Duration::from_millis(ttl_ms),
            quote_ttl: std::time::Duration::from_millis(ttl_ms),
            capacity: 100,
            ..CachePolicy::default()
        };
        let mapper = Arc::new(SymbolMapper::built_in().unwrap());
        let dm = DataManager::new(
            vec![flaky.clone() as Arc<dyn Provider>, local()],
            mapper,
            Environment::Development,
            policy,
            BreakerConfig {
                failure_threshold: 3,
                cool_down: std::time::Duration::from_secs(60),
                ..BreakerConfig::default()
            },
        );
        (flaky, Arc::new(dm))
    }

    #[tokio::test]
    async fn a_thousand_concurrent_requests_make_one_upstream_call() {
        let (flaky, dm) = flaky_manager(60_000);
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let dm = Arc::clone(&dm);
                tokio::spawn(
                    async move { dm.history("aapl", Span::LastBars(5), Interval::Daily).await },
                )
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().closes(), [190.0]);
        }
        assert_eq!(flaky.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let cache = dm.health().await.history_cache;
        assert_eq!((cache.misses, cache.hits), (1, 999));
    }

    #[tokio::test]
    async fn when_providers_fail_the_last_good_answer_is_served_stale() {
        use std::sync::atomic::Ordering::SeqCst;
        let (flaky, dm) = flaky_manager(30);
        let fresh = dm
            .history("AAPL", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap();
        assert_eq!(fresh.stale_age, None);
        flaky.down.store(true, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        let stale = dm
            .history("AAPL", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap();
        assert!(stale.stale_age.is_some());
        assert_eq!(stale.closes(), [190.0]);
        // Any lookback is sliced from the one series kept (the provider had
        // no more bars than these).
        let deeper = dm
            .history("AAPL", Span::LastBars(900), Interval::Daily)
            .await
            .unwrap();
        assert_eq!(
            (deeper.closes(), deeper.stale_age.is_some()),
            (vec![190.0], true)
        );
        // Nothing cached for this one: the failure shows.
        let err = dm
            .history("MSFT", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::Unavailable { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_skips_the_provider_until_a_probe_succeeds() {
        use std::sync::atomic::Ordering::SeqCst;
        let (flaky, dm) = flaky_manager(60_000);
        flaky.down.store(true, SeqCst);
        // Distinct spans so no answer comes from the cache.
        for n in 1..=3 {
            let err = dm
                .history("AAPL", Span::LastBars(n), Interval::Daily)
                .await
                .unwrap_err();
            assert!(matches!(err, MarketError::Unavailable { .. }));
        }
        assert_eq!(
            dm.health().await.performance_metrics["flaky"].circuit_breaker_state,
            "open"
        );
        let err = dm
            .history("AAPL", Span::LastBars(4), Interval::Daily)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("circuit open"), "{err}");
        assert_eq!(
            flaky.calls.load(SeqCst),
            3,
            "the open breaker spared the provider"
        );
        // Unknown elsewhere, found by the fallback: served while the primary is out.
        let h = dm
            .history("RELIANCE.NS", Span::LastBars(1), Interval::Daily)
            .await
            .unwrap();
        assert_eq!(h.provider, "local");
        assert_eq!(dm.health().await.status, "degraded");

        tokio::time::advance(std::time::Duration::from_secs(60)).await;
        flaky.down.store(false, SeqCst);
        let h = dm
            .history("AAPL", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap();
        assert_eq!(h.provider, "flaky");
        assert_eq!(flaky.calls.load(SeqCst), 4, "one probe");
        let health = dm.health().await;
        assert_eq!(
            health.performance_metrics["flaky"].circuit_breaker_state,
            "closed"
        );
        assert_eq!(health.status, "healthy");
    }

    #[tokio::test]
    async fn a_spent_quota_sends_calls_to_the_next_provider_after_a_bounded_wait() {
        use std::sync::atomic::Ordering::SeqCst;
        let quota = QuotaConfig {
            per_minute: Some(2),
            ..Default::default()
        };
        let limited = Flaky {
            quota: Some(ProviderRateLimiter::new(
                &quota,
                std::time::Duration::from_millis(50),
            )),
            ..Flaky::default()
        };
        // Nothing kept, so every request asks the providers.
        let (flaky, dm) = flaky_manager_with(limited, 0);
        let started = std::time::Instant::now();
        for n in 1..=10 {
            // RELIANCE.NS: unknown to flaky (neutral), known to local.
            let h = dm
                .history("RELIANCE.NS", Span::LastBars(n), Interval::Daily)
                .await
                .unwrap();
            assert_eq!(h.provider, "local");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            flaky.calls.load(SeqCst),
            2,
            "only the quota reached the provider"
        );
        let limits = dm.health().await.performance_metrics["flaky"]
            .rate_limit
            .clone()
            .unwrap();
        assert_eq!((limits.waits, limits.rejections), (8, 8));
    }

    #[tokio::test]
    async fn a_thousand_concurrent_quote_requests_make_one_upstream_call() {
        let (flaky, dm) = flaky_manager(60_000);
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let dm = Arc::clone(&dm);
                tokio::spawn(async move { dm.quotes(&["AAPL".to_string()]).await })
            })
            .collect();
        for t in tasks {
            let report = t.await.unwrap();
            assert_eq!(report.found[0].1.price, 190.0);
        }
        assert_eq!(
            flaky.quote_calls.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
        // Later requests are answered from the quote cache.
        dm.quotes(&["aapl".to_string()]).await;
        assert_eq!(
            flaky.quote_calls.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
        assert!(dm.health().await.quote_cache.hits >= 1);
    }

    #[tokio::test]
    async fn quotes_fall_back_to_the_last_good_one_marked_stale() {
        use std::sync::atomic::Ordering::SeqCst;
        let (flaky, dm) = flaky_manager(30);
        let fresh = dm.quotes(&["AAPL".to_string()]).await;
        assert_eq!(fresh.found[0].1.stale_age_secs, None);
        flaky.down.store(true, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        let report = dm.quotes(&["AAPL".to_string(), "MSFT".to_string()]).await;
        assert_eq!(report.found.len(), 1);
        assert_eq!(report.found[0].1.stale_age_secs, Some(0));
        assert_eq!(report.missing[0].0, "MSFT");
        assert!(report.missing[0].1.contains("503"), "{:?}", report.missing);
    }

    #[tokio::test]
    async fn unknown_symbols_are_never_answered_from_stale_data() {
        let (_, dm) = flaky_manager(60_000);
        let err = dm
            .history("MSFT", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap_err();
        assert!(matches!(err, MarketError::NotFound { .. }));
    }

    #[test]
    fn symbols_are_checked_at_the_edge() {
        assert_eq!(validate_symbol(" aapl ").unwrap(), "AAPL");
        assert!(validate_symbol("   ").is_err());
        assert!(validate_symbol("AA PL").is_err());
        assert!(validate_symbol(&"A".repeat(41)).is_err());
        assert!(validate_symbol("EURUSD=X").is_ok());
    }
}
