//! Per-provider call counters, read by health without touching a provider.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Latencies kept for percentiles.
const RECENT: usize = 1024;

#[derive(Debug, Default)]
pub struct ProviderStats {
    /// The last `RECENT` call latencies in microseconds.
    recent: Mutex<Recent>,
    calls: AtomicU64,
    failures: AtomicU64,
    latency_micros: AtomicU64,
    last_call_failed: AtomicBool,
    /// Why the most recent failed call failed, and when.
    last_error: Mutex<Option<(String, chrono::DateTime<chrono::Utc>)>>,
}

/// Recent latencies and their percentiles, computed once per change (health
/// is polled far more often than a provider is called).
#[derive(Debug, Default)]
struct Recent {
    micros: VecDeque<u64>,
    /// p50, p95 and p99 in milliseconds, while `micros` is unchanged.
    percentiles: Option<[f64; 3]>,
}

impl Recent {
    fn push(&mut self, micros: u64) {
        if self.micros.len() == RECENT {
            self.micros.pop_front();
        }
        self.micros.push_back(micros);
        self.percentiles = None;
    }

    fn percentiles(&mut self) -> [f64; 3] {
        if let Some(known) = self.percentiles {
            return known;
        }
        let mut sorted: Vec<u64> = self.micros.iter().copied().collect();
        sorted.sort_unstable();
        // Nearest-rank percentile, in milliseconds.
        let pct = |q: f64| match sorted.len() {
            0 => 0.0,
            n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0,
        };
        let computed = [pct(0.50), pct(0.95), pct(0.99)];
        self.percentiles = Some(computed);
        computed
    }
}

/// A snapshot in the contract's `performance_metrics` shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct ProviderMetrics {
    /// Percent of calls that did not fail (100 before the first call).
    pub success_rate: f64,
    pub total_calls: u64,
    pub avg_latency_ms: f64,
    /// Percentiles over the last 1024 calls.
    pub p50_latency_ms: f64,
    pub p95_latency_ms: f64,
    pub p99_latency_ms: f64,
    pub circuit_breaker_state: &'static str,
    /// The latest failure's reason (e.g. an expired token) and time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Waits for and refusals by our own quota for this provider, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<super::limiter::LimiterStats>,
}

impl ProviderStats {
    pub fn record(&self, provider: &'static str, elapsed: Duration, failed: bool) {
        let outcome = if failed { "failure" } else { "success" };
        metrics::counter!("tickcast_provider_calls_total", "provider" => provider, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("tickcast_provider_latency_seconds", "provider" => provider)
            .record(elapsed.as_secs_f64());
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.last_call_failed.store(failed, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.fetch_add(micros, Ordering::Relaxed);
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(micros);
    }

    /// Keeps the reason of a failed call for health.
    pub fn record_error(&self, reason: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((reason, chrono::Utc::now()));
    }

    /// Whether the most recent call failed (false before any call).
    pub fn is_failing(&self) -> bool {
        self.last_call_failed.load(Ordering::Relaxed)
    }

    /// Whether the provider has been called and its most recent call did
    /// not fail: it is answering now, as far as anyone knows.
    pub fn is_answering(&self) -> bool {
        self.calls.load(Ordering::Relaxed) > 0 && !self.is_failing()
    }

    pub fn snapshot(&self, circuit_breaker_state: &'static str) -> ProviderMetrics {
        let calls = self.calls.load(Ordering::Relaxed);
        let failures = self.failures.load(Ordering::Relaxed).min(calls);
        let latency = self.latency_micros.load(Ordering::Relaxed);
        let (success_rate, avg_latency_ms) = if calls == 0 {
            (100.0, 0.0)
        } else {
            (
                100.0 * (calls - failures) as f64 / calls as f64,
                latency as f64 / calls as f64 / 1000.0,
            )
        };
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let [p50, p95, p99] = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .percentiles();
        ProviderMetrics {
            success_rate,
            total_calls: calls,
            avg_latency_ms,
            p50_latency_ms: p50,
            p95_latency_ms: p95,
            p99_latency_ms: p99,
            last_error: last_error.as_ref().map(|(reason, _)| reason.clone()),
            last_error_at: last_error.map(|(_, at)| at),
            circuit_breaker_state,
            rate_limit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reports_rates_and_mean_latency() {
        let stats = ProviderStats::default();
        assert_eq!(stats.snapshot("closed").success_rate, 100.0);
        stats.record("p", Duration::from_millis(2), false);
        stats.record("p", Duration::from_millis(4), false);
        stats.record("p", Duration::from_millis(6), false);
        stats.record("p", Duration::from_millis(8), true);
        let m = stats.snapshot("closed");
        assert_eq!(m.total_calls, 4);
        assert_eq!(m.success_rate, 75.0);
        assert_eq!(m.avg_latency_ms, 5.0);
        assert_eq!(
            (m.p50_latency_ms, m.p95_latency_ms, m.p99_latency_ms),
            (4.0, 8.0, 8.0)
        );
        // Kept between calls, and recomputed after the next one.
        assert_eq!(stats.snapshot("closed").p50_latency_ms, 4.0);
        for _ in 0..4 {
            stats.record("p", Duration::from_millis(20), false);
        }
        assert_eq!(stats.snapshot("closed").p50_latency_ms, 8.0);
    }
}
