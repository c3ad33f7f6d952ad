//! A bounded TTL cache for upstream answers. Concurrent requests for the
//! same key share one upstream call, and the last good answer is kept after
//! it expires so it can be served, marked stale, when every provider fails.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Whether an answer is current or the last known good one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Freshness {
    Fresh,
    Stale { age: Duration },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CacheStats {
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
    /// Percent of lookups answered without an upstream call.
    pub hit_rate: f64,
    pub stale_served: u64,
}

pub struct TtlCache<K, V> {
    /// Label for metrics.
    name: &'static str,
    fresh: moka::future::Cache<K, V>,
    last_good: moka::future::Cache<K, (V, Instant)>,
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
}

impl<K, V> TtlCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `capacity` bounds both the fresh and the last-good copies.
    pub fn new(name: &'static str, capacity: u64, ttl: Duration) -> Self {
        TtlCache {
            name,
            fresh: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            last_good: moka::future::Cache::builder()
                .max_capacity(capacity)
                .build(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
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
                    self.count("miss", &self.misses);
                    self.last_good
                        .insert(key, (entry.value().clone(), Instant::now()))
                        .await;
                } else {
                    self.count("hit", &self.hits);
                }
                Ok((entry.into_value(), Freshness::Fresh))
            }
            Err(err) => {
                self.count("miss", &self.misses);
                if !serve_stale(&err) {
                    return Err(err);
                }
                match self.last_good.get(&key).await {
                    Some((value, stored)) => {
                        self.count("stale", &self.stale_served);
                        Ok((
                            value,
                            Freshness::Stale {
                                age: stored.elapsed(),
                            },
                        ))
                    }
                    None => Err(err),
                }
            }
        }
    }

    /// The fresh value for `key`, counted as a hit when present.
    pub async fn get(&self, key: &K) -> Option<V> {
        let value = self.fresh.get(key).await;
        if value.is_some() {
            self.count("hit", &self.hits);
        }
        value
    }

    /// Stores a value fetched by the caller (counted as a miss).
    pub async fn put(&self, key: K, value: V) {
        self.count("miss", &self.misses);
        self.last_good
            .insert(key.clone(), (value.clone(), Instant::now()))
            .await;
        self.fresh.insert(key, value).await;
    }

    /// The last good value for `key`, however old, and its age.
    pub async fn last_good(&self, key: &K) -> Option<(V, Duration)> {
        let (value, stored) = self.last_good.get(key).await?;
        self.count("stale", &self.stale_served);
        Some((value, stored.elapsed()))
    }

    fn count(&self, result: &'static str, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tickcast_cache_requests_total", "cache" => self.name, "result" => result)
            .increment(1);
    }

    pub async fn stats(&self) -> CacheStats {
        self.fresh.run_pending_tasks().await;
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let lookups = hits + misses;
        CacheStats {
            entries: self.fresh.entry_count(),
            hits,
            misses,
            hit_rate: if lookups == 0 {
                0.0
            } else {
                100.0 * hits as f64 / lookups as f64
            },
            stale_served: self.stale_served.load(Ordering::Relaxed),
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
}
