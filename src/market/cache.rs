//! Bounded TTL caches for upstream answers. Concurrent requests for the
//! same key share one upstream call, and the last good answer is kept after
//! it expires so it can be served, marked stale, when every provider fails.
//!
//! [`TtlCache`] keeps one answer per key. [`HistoryCache`] keeps one series
//! of bars per symbol and interval, the deepest fetched, and serves any
//! number of the newest bars out of it, weighed in bytes.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::prices::Candle;

/// Whether an answer is current or the last known good one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Freshness {
    Fresh,
    Stale { age: Duration },
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct CacheStats {
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
    /// Percent of lookups answered without an upstream call.
    pub hit_rate: f64,
    pub stale_served: u64,
    /// Bytes held, for caches weighed in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// Hit, miss and stale counters of one cache, also exported as metrics.
struct Counters {
    /// Label for metrics.
    name: &'static str,
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
    /// When the counters were made, and the miss count and milliseconds
    /// since then at the cache's last bookkeeping run (see
    /// [`Counters::recount_due`]).
    born: Instant,
    recounted_misses: AtomicU64,
    recounted_ms: AtomicU64,
}

/// The longest expired entries stay in a cache's reported count while
/// nothing is written: its bookkeeping runs at least this often when its
/// stats are read.
const RECOUNT_EVERY: Duration = Duration::from_secs(1);

impl Counters {
    fn new(name: &'static str) -> Self {
        Counters {
            name,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
            born: Instant::now(),
            recounted_misses: AtomicU64::new(0),
            recounted_ms: AtomicU64::new(0),
        }
    }

    /// Whether the cache must run its pending bookkeeping before its entry
    /// count is read: after a write (every write is counted as a miss once
    /// it has landed) or once [`RECOUNT_EVERY`] has passed. Health reads
    /// stats on every poll, and the bookkeeping takes the cache's
    /// housekeeping lock.
    fn recount_due(&self) -> bool {
        let misses = self.misses.load(Ordering::Relaxed);
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let written = self.recounted_misses.swap(misses, Ordering::Relaxed) != misses;
        let last = self.recounted_ms.load(Ordering::Relaxed);
        let due = written || now.saturating_sub(last) >= RECOUNT_EVERY.as_millis() as u64;
        if due {
            self.recounted_ms.store(now, Ordering::Relaxed);
        }
        due
    }

    fn hit(&self) {
        self.count("hit", &self.hits);
    }

    fn miss(&self) {
        self.count("miss", &self.misses);
    }

    fn stale(&self) {
        self.count("stale", &self.stale_served);
    }

    fn count(&self, result: &'static str, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tickcast_cache_requests_total", "cache" => self.name, "result" => result)
            .increment(1);
    }

    /// A failed fetch's answer: `last`, the last good value when one may
    /// stand in, marked stale with its age; else the error.
    fn after_failure<V, E>(
        &self,
        err: Arc<E>,
        last: Option<(V, Instant)>,
    ) -> Result<(V, Freshness), Arc<E>> {
        self.miss();
        let (value, stored) = last.ok_or(err)?;
        self.stale();
        Ok((
            value,
            Freshness::Stale {
                age: stored.elapsed(),
            },
        ))
    }

    fn stats(&self, entries: u64) -> CacheStats {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let lookups = hits + misses;
        CacheStats {
            entries,
            hits,
            misses,
            hit_rate: if lookups == 0 {
                0.0
            } else {
                100.0 * hits as f64 / lookups as f64
            },
            stale_served: self.stale_served.load(Ordering::Relaxed),
            bytes: None,
        }
    }
}

pub struct TtlCache<K, V> {
    fresh: moka::future::Cache<K, V>,
    last_good: moka::future::Cache<K, (V, Instant)>,
    counters: Counters,
}

impl<K, V> TtlCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `capacity` entries bound both the fresh and the last-good copies.
    pub fn new(name: &'static str, capacity: u64, ttl: Duration) -> Self {
        Self::weighted(name, capacity, ttl, |_, _| 1)
    }

    /// `capacity` bounds the summed `weight` of the fresh copies, and again
    /// of the last-good ones.
    pub fn weighted(
        name: &'static str,
        capacity: u64,
        ttl: Duration,
        weight: fn(&K, &V) -> u32,
    ) -> Self {
        TtlCache {
            fresh: moka::future::Cache::builder()
                .max_capacity(capacity)
                .weigher(weight)
                .time_to_live(ttl)
                .build(),
            last_good: moka::future::Cache::builder()
                .max_capacity(capacity)
                .weigher(move |k, v: &(V, Instant)| weight(k, &v.0))
                .build(),
            counters: Counters::new(name),
        }
    }

    /// The cached value, or `fetch`'s (shared with concurrent callers of the
    /// same key). When `fetch` fails with an error `serve_stale` accepts,
    /// the last good value if there is one.
    pub async fn get_or_fetch<E, F>(
        &self,
        key: K,
        fetch: F,
        serve_stale: impl Fn(&E) -> bool,
    ) -> Result<(V, Freshness), Arc<E>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        match self
            .fresh
            .entry(key.clone())
            .or_try_insert_with(fetch)
            .await
        {
            Ok(entry) => {
                if entry.is_fresh() {
                    self.counters.miss();
                    self.last_good
                        .insert(key, (entry.value().clone(), Instant::now()))
                        .await;
                } else {
                    self.counters.hit();
                }
                Ok((entry.into_value(), Freshness::Fresh))
            }
            Err(err) => {
                let last = match serve_stale(&err) {
                    true => self.last_good.get(&key).await,
                    false => None,
                };
                self.counters.after_failure(err, last)
            }
        }
    }

    /// The fresh value for `key`, counted as a hit when present.
    pub async fn get(&self, key: &K) -> Option<V> {
        let value = self.fresh.get(key).await;
        if value.is_some() {
            self.counters.hit();
        }
        value
    }

    /// Stores a value fetched by the caller (counted as a miss).
    pub async fn put(&self, key: K, value: V) {
        self.last_good
            .insert(key.clone(), (value.clone(), Instant::now()))
            .await;
        self.fresh.insert(key, value).await;
        self.counters.miss();
    }

    /// The last good value for `key`, however old, and its age.
    pub async fn last_good(&self, key: &K) -> Option<(V, Duration)> {
        let (value, stored) = self.last_good.get(key).await?;
        self.counters.stale();
        Some((value, stored.elapsed()))
    }

    pub async fn stats(&self) -> CacheStats {
        if self.counters.recount_due() {
            self.fresh.run_pending_tasks().await;
        }
        self.counters.stats(self.fresh.entry_count())
    }
}

/// A series of bars as a provider answered it.
#[derive(Debug)]
pub struct Bars {
    pub candles: Arc<[Candle]>,
    pub provider: String,
    /// The provider had no older bars: these start where its series starts.
    pub complete: bool,
}

impl Bars {
    /// Whether the newest `n` bars can be served from these.
    pub fn covers(&self, n: usize) -> bool {
        self.complete || self.candles.len() >= n
    }

    /// `older`'s bars before `newer`'s first, then `newer`'s: a deeper series
    /// brought up to date by a shallower fetch from the same provider.
    fn updated(older: &Bars, newer: &Arc<Bars>) -> Arc<Bars> {
        let Some(first) = newer.candles.first() else {
            return Arc::clone(newer);
        };
        if older.provider != newer.provider || newer.complete {
            return Arc::clone(newer);
        }
        let kept = older.candles.partition_point(|c| c.time < first.time);
        if kept == 0 {
            return Arc::clone(newer);
        }
        let candles: Vec<Candle> = older.candles[..kept]
            .iter()
            .chain(newer.candles.iter())
            .cloned()
            .collect();
        Arc::new(Bars {
            candles: candles.into(),
            provider: newer.provider.clone(),
            complete: older.complete,
        })
    }

    /// Approximate bytes held, for the cache's budget.
    fn weight(&self) -> u32 {
        let bytes = self.candles.len() * std::mem::size_of::<Candle>()
            + self.provider.len()
            + std::mem::size_of::<Self>();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// One cached series per key (symbol and interval), the deepest fetched:
/// a request for the newest `n` bars is sliced out of it, so neither
/// varying `n` nor several models' lookbacks multiply memory or upstream
/// calls. A miss fetches `depth` bars (at least `n`; callers round it up so
/// growing requests refetch only a few times); concurrent fetches of the
/// same key and depth share one upstream call.
pub struct HistoryCache<K> {
    fresh: moka::future::Cache<K, Arc<Bars>>,
    last_good: moka::future::Cache<K, (Arc<Bars>, Instant)>,
    /// Fetches in flight, held only so concurrent callers share them.
    fetches: moka::future::Cache<(K, usize), Arc<Bars>>,
    counters: Counters,
}

impl<K> HistoryCache<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// `budget_bytes` bounds the fresh series, and again the last-good ones
    /// (the two mostly share their bars).
    pub fn new(name: &'static str, budget_bytes: u64, ttl: Duration) -> Self {
        let weigh = |_: &K, bars: &Arc<Bars>| bars.weight();
        HistoryCache {
            fresh: moka::future::Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(weigh)
                .time_to_live(ttl)
                .build(),
            last_good: moka::future::Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|_, (bars, _): &(Arc<Bars>, Instant)| bars.weight())
                .build(),
            fetches: moka::future::Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|_, bars: &Arc<Bars>| bars.weight())
                .build(),
            counters: Counters::new(name),
        }
    }

    /// Cached bars covering the newest `n`, else `fetch(depth)`'s (shared
    /// with concurrent callers of the same key and depth). When `fetch`
    /// fails with an error `serve_stale` accepts, the last good bars if
    /// they cover `n`.
    pub async fn get_or_fetch<E, F, Fut>(
        &self,
        key: K,
        n: usize,
        depth: usize,
        fetch: F,
        serve_stale: impl Fn(&E) -> bool,
    ) -> Result<(Arc<Bars>, Freshness), Arc<E>>
    where
        F: FnOnce(usize) -> Fut,
        Fut: Future<Output = Result<Bars, E>>,
        E: Send + Sync + 'static,
    {
        if let Some(bars) = self.fresh.get(&key).await.filter(|b| b.covers(n)) {
            self.counters.hit();
            return Ok((bars, Freshness::Fresh));
        }
        let depth = depth.max(n);
        let flight = (key.clone(), depth);
        let answer = self
            .fetches
            .entry(flight.clone())
            .or_try_insert_with(async {
                let bars = Arc::new(fetch(depth).await?);
                self.keep(&key, &bars).await;
                Ok(bars)
            })
            .await;
        match answer {
            Ok(entry) => {
                if entry.is_fresh() {
                    self.counters.miss();
                    self.fetches.invalidate(&flight).await;
                } else {
                    self.counters.hit();
                }
                Ok((entry.into_value(), Freshness::Fresh))
            }
            Err(err) => {
                let last = match serve_stale(&err) {
                    true => self.last_good.get(&key).await,
                    false => None,
                };
                let last = last.filter(|(bars, _)| bars.covers(n));
                self.counters.after_failure(err, last)
            }
        }
    }

    /// Keeps a fetched series as the key's fresh one, and brings the last
    /// good one up to date with it (keeping any older bars it holds).
    async fn keep(&self, key: &K, bars: &Arc<Bars>) {
        let fresh = match self.fresh.get(key).await {
            Some(held) => Bars::updated(&held, bars),
            None => Arc::clone(bars),
        };
        self.fresh.insert(key.clone(), fresh).await;
        let good = match self.last_good.get(key).await {
            Some((held, _)) => Bars::updated(&held, bars),
            None => Arc::clone(bars),
        };
        self.last_good
            .insert(key.clone(), (good, Instant::now()))
            .await;
    }

    /// Counts, and the bytes of the fresh series as the budget weighs them.
    pub async fn stats(&self) -> CacheStats {
        if self.counters.recount_due() {
            self.fresh.run_pending_tasks().await;
        }
        CacheStats {
            bytes: Some(self.fresh.weighted_size()),
            ..self.counters.stats(self.fresh.entry_count())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn concurrent_requests_for_one_key_share_one_fetch() {
        let cache: Arc<TtlCache<String, u32>> =
            Arc::new(TtlCache::new("test", 100, Duration::from_secs(60)));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
                tokio::spawn(async move {
                    cache
                        .get_or_fetch(
                            "AAPL".to_string(),
                            async {
                                calls.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                Ok::<_, String>(7)
                            },
                            |_| true,
                        )
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), (7, Freshness::Fresh));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let stats = cache.stats().await;
        assert_eq!((stats.misses, stats.hits, stats.entries), (1, 999, 1));
    }

    #[tokio::test]
    async fn the_entry_count_shows_writes_at_once_and_expiries_within_the_recount_interval() {
        let cache: TtlCache<String, u32> = TtlCache::new("test", 100, Duration::from_millis(50));
        assert_eq!(cache.stats().await.entries, 0);
        cache.put("AAPL".into(), 1).await;
        assert_eq!(cache.stats().await.entries, 1);
        cache.put("MSFT".into(), 2).await;
        assert_eq!(cache.stats().await.entries, 2);
        // Expired, nothing written since: still counted until the recount.
        tokio::time::sleep(RECOUNT_EVERY + Duration::from_millis(100)).await;
        assert_eq!(cache.stats().await.entries, 0);
    }

    #[tokio::test]
    async fn failures_serve_the_last_good_value_marked_stale() {
        let cache: TtlCache<&str, u32> = TtlCache::new("test", 100, Duration::from_millis(30));
        let ok = cache
            .get_or_fetch("k", async { Ok::<_, String>(1) }, |_| true)
            .await
            .unwrap();
        assert_eq!(ok, (1, Freshness::Fresh));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let down = || async { Err::<u32, _>("down".to_string()) };
        let not_found = cache.get_or_fetch("k", down(), |e| e != "down").await;
        assert!(
            not_found.is_err(),
            "errors the caller excludes are not masked"
        );
        let (value, freshness) = cache.get_or_fetch("k", down(), |_| true).await.unwrap();
        assert_eq!(value, 1);
        assert!(matches!(freshness, Freshness::Stale { age } if age >= Duration::from_millis(30)));
        assert_eq!(cache.stats().await.stale_served, 1);
    }

    #[tokio::test]
    async fn failures_with_nothing_cached_are_errors_and_are_not_cached() {
        let cache: TtlCache<&str, u32> = TtlCache::new("test", 100, Duration::from_secs(60));
        let err = cache
            .get_or_fetch("k", async { Err::<u32, _>("down".to_string()) }, |_| true)
            .await
            .unwrap_err();
        assert_eq!(*err, "down");
        let ok = cache
            .get_or_fetch("k", async { Ok::<_, String>(2) }, |_| true)
            .await
            .unwrap();
        assert_eq!(ok, (2, Freshness::Fresh));
    }

    fn series(n: usize, from_day: u32) -> Vec<Candle> {
        let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        (0..n)
            .map(|i| {
                let day = start + chrono::Days::new(u64::from(from_day) + i as u64);
                Candle::daily_close(day, 100.0 + i as f64)
            })
            .collect()
    }

    /// A provider holding `held` bars: a fetch of `depth` gets the newest.
    async fn provide(held: usize, depth: usize, calls: &AtomicUsize) -> Result<Bars, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        let all = series(held, 0);
        let newest = all[held.saturating_sub(depth)..].to_vec();
        Ok(Bars {
            complete: newest.len() < depth,
            candles: newest.into(),
            provider: "p".into(),
        })
    }

    #[tokio::test]
    async fn every_lookback_is_sliced_from_one_series_per_key() {
        let cache: HistoryCache<&str> = HistoryCache::new("test", 1 << 20, Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        let get = |n: usize, depth: usize| {
            cache.get_or_fetch("k", n, depth, |d| provide(500, d, &calls), |_| true)
        };
        let (bars, _) = get(10, 64).await.unwrap();
        assert_eq!(bars.candles.len(), 64);
        for n in 1..=64 {
            get(n, 64).await.unwrap();
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "shorter lookbacks are hits"
        );
        // Deeper than held: one fetch, which then serves every depth.
        let (bars, _) = get(300, 1024).await.unwrap();
        assert_eq!((bars.candles.len(), bars.complete), (500, true));
        for n in [1, 64, 300, 499, 500, 9000, 20_000] {
            let (bars, _) = get(n, 16384).await.unwrap();
            assert!(bars.covers(n));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.stats().await.entries, 1);
    }

    #[tokio::test]
    async fn the_cache_keeps_to_its_byte_budget() {
        let one = Bars {
            candles: series(1000, 0).into(),
            provider: "p".into(),
            complete: true,
        }
        .weight() as u64;
        let cache: HistoryCache<u32> = HistoryCache::new("test", 5 * one, Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        for key in 0..50 {
            cache
                .get_or_fetch(key, 1000, 1000, |d| provide(1000, d, &calls), |_| true)
                .await
                .unwrap();
        }
        let stats = cache.stats().await;
        assert!(stats.bytes.unwrap() <= 5 * one, "{stats:?}");
        assert!(stats.entries <= 5, "{stats:?}");
    }

    #[tokio::test]
    async fn the_last_good_series_stays_deep_when_a_shallow_fetch_updates_it() {
        let cache: HistoryCache<&str> =
            HistoryCache::new("test", 1 << 20, Duration::from_millis(20));
        let calls = AtomicUsize::new(0);
        cache
            .get_or_fetch("k", 400, 400, |d| provide(500, d, &calls), |_| true)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        // A shallow fetch of newer bars (one day on).
        let newer = || async {
            Ok::<_, String>(Bars {
                candles: series(10, 491).into(),
                provider: "p".into(),
                complete: false,
            })
        };
        cache
            .get_or_fetch("k", 10, 10, |_| newer(), |_| true)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let down = |_| async { Err::<Bars, _>("down".to_string()) };
        let (stale, freshness) = cache
            .get_or_fetch("k", 400, 400, down, |_| true)
            .await
            .unwrap();
        assert!(matches!(freshness, Freshness::Stale { .. }));
        // Days 100..=490 as first fetched, then 491..=500.
        assert_eq!(stale.candles.len(), 401, "the old bars, then the new ones");
        assert!(stale.candles.windows(2).all(|w| w[0].time < w[1].time));
    }
}
