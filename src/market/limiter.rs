//! Per-provider rate limiting: every quota (per second, minute, hour) must
//! have room before a call goes upstream. A caller waits at most a bounded
//! time; past it the call is refused so the data manager can try the next
//! provider instead of queueing without end.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

/// Quotas for one provider; an absent window is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LimiterStats {
    /// Calls that had to wait for capacity.
    pub waits: u64,
    /// Calls refused after the bounded wait.
    pub rejections: u64,
}

pub struct ProviderRateLimiter {
    windows: Vec<DefaultDirectRateLimiter>,
    max_wait: Duration,
    waits: AtomicU64,
    rejections: AtomicU64,
}

impl ProviderRateLimiter {
    pub fn new(quota: &QuotaConfig, max_wait: Duration) -> Self {
        let burst = quota.burst.and_then(NonZeroU32::new);
        let windows = [
            (
                quota.per_second,
                Quota::per_second as fn(NonZeroU32) -> Quota,
            ),
            (quota.per_minute, Quota::per_minute),
            (quota.per_hour, Quota::per_hour),
        ]
        .into_iter()
        .filter_map(|(count, make)| {
            let count = NonZeroU32::new(count?)?;
            let quota = make(count);
            let quota = match burst {
                Some(b) if b < count => quota.allow_burst(b),
                _ => quota,
            };
            Some(RateLimiter::direct(quota))
        })
        .collect();
        ProviderRateLimiter {
            windows,
            max_wait,
            waits: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
        }
    }

    /// Takes one permit from every window, waiting at most `max_wait` in all.
    pub async fn acquire(&self) -> Result<(), Throttled> {
        if self.windows.iter().all(|w| w.check().is_ok()) {
            return Ok(());
        }
        // A window without room: wait (bounded) for all of them.
        self.waits.fetch_add(1, Ordering::Relaxed);
        let all_ready = async {
            for window in &self.windows {
                window.until_ready().await;
            }
        };
        match tokio::time::timeout(self.max_wait, all_ready).await {
            Ok(()) => Ok(()),
            Err(_) => {
                self.rejections.fetch_add(1, Ordering::Relaxed);
                Err(Throttled {
                    waited: self.max_wait,
                })
            }
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

    #[tokio::test]
    async fn no_quota_means_no_limit() {
        let limiter = ProviderRateLimiter::new(&QuotaConfig::default(), Duration::ZERO);
        for _ in 0..1000 {
            limiter.acquire().await.unwrap();
        }
    }
}
