//! Per-provider rate limiting: every quota (per second, minute, hour) must
//! have room before a request goes upstream, and each upstream HTTP request
//! takes its own permit (a 500-symbol quote fetch is 500 requests to Yahoo).
//! A caller waits at most a bounded time; past it the request is refused so
//! the data manager can try the next provider instead of queueing without
//! end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::throttle::{Gcra, Window};

/// Quotas for one provider; an absent window is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuotaConfig {
    pub per_second: Option<u32>,
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    /// Largest burst in any window (default: the window's own count).
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit: no capacity within {waited:?}")]
pub struct Throttled {
    pub waited: Duration,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct LimiterStats {
    /// Calls that found no capacity at once.
    pub waits: u64,
    /// Calls refused: the capacity would not come back within the wait allowed.
    pub rejections: u64,
}

/// Our own quota for one provider, one permit per upstream HTTP request.
pub struct ProviderRateLimiter {
    quota: Gcra,
    max_wait: Duration,
    waits: AtomicU64,
    rejections: AtomicU64,
}

impl ProviderRateLimiter {
    pub fn new(quota: &QuotaConfig, max_wait: Duration) -> Self {
        let windows = [
            (quota.per_second, Duration::from_secs(1)),
            (quota.per_minute, Duration::from_secs(60)),
            (quota.per_hour, Duration::from_secs(3600)),
        ]
        .into_iter()
        .filter_map(|(count, per)| {
            let count = count?;
            Window::new(count, per, quota.burst.unwrap_or(count))
        })
        .collect();
        ProviderRateLimiter {
            quota: Gcra::new(windows),
            max_wait,
            waits: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
        }
    }

    /// Takes one permit from every window, waiting at most `max_wait` in
    /// all; a wait that would run past it is refused at once, so the caller
    /// can move on to the next provider.
    pub async fn acquire(&self) -> Result<(), Throttled> {
        let started = tokio::time::Instant::now();
        let mut waited = false;
        loop {
            let wait = match self.quota.try_take() {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            if !waited {
                waited = true;
                self.waits.fetch_add(1, Ordering::Relaxed);
            }
            if started.elapsed() + wait > self.max_wait {
                self.rejections.fetch_add(1, Ordering::Relaxed);
                return Err(Throttled {
                    waited: started.elapsed(),
                });
            }
            // Others may take the permit first: look again after the wait.
            tokio::time::sleep(wait).await;
        }
    }

    pub fn stats(&self) -> LimiterStats {
        LimiterStats {
            waits: self.waits.load(Ordering::Relaxed),
            rejections: self.rejections.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn waits_are_bounded_and_excess_is_refused() {
        // Per minute, so no cell comes back during the test however slow the machine.
        let quota = QuotaConfig {
            per_minute: Some(2),
            ..Default::default()
        };
        let limiter = ProviderRateLimiter::new(&quota, Duration::from_millis(50));
        let started = Instant::now();
        let mut granted = 0;
        for _ in 0..10 {
            if limiter.acquire().await.is_ok() {
                granted += 1;
            }
        }
        // The burst of 2 passes at once; each later call waits 50 ms and gives up.
        assert_eq!(granted, 2);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            limiter.stats(),
            LimiterStats {
                waits: 8,
                rejections: 8
            }
        );
    }

    #[tokio::test]
    async fn a_short_wait_is_granted() {
        let quota = QuotaConfig {
            per_second: Some(20),
            burst: Some(1),
            ..Default::default()
        };
        let limiter = ProviderRateLimiter::new(&quota, Duration::from_millis(500));
        limiter.acquire().await.unwrap();
        limiter.acquire().await.unwrap();
        assert_eq!(
            limiter.stats(),
            LimiterStats {
                waits: 1,
                rejections: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_call_spends_no_permit_of_any_window() {
        let quota = QuotaConfig {
            per_second: Some(10),
            per_minute: Some(3),
            ..Default::default()
        };
        let limiter = ProviderRateLimiter::new(&quota, Duration::ZERO);
        for _ in 0..3 {
            limiter.acquire().await.unwrap();
        }
        for _ in 0..50 {
            assert!(limiter.acquire().await.is_err());
        }
        // A minute on, the per-minute window has room again and the
        // per-second window was never drained by the refusals.
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..3 {
            limiter.acquire().await.unwrap();
        }
    }

    #[tokio::test]
    async fn no_quota_means_no_limit() {
        let limiter = ProviderRateLimiter::new(&QuotaConfig::default(), Duration::ZERO);
        for _ in 0..1000 {
            limiter.acquire().await.unwrap();
        }
    }
}
