//! The domain's own configuration types, made from [`Settings`]: the
//! config module knows nothing of the domain, and the domain nothing of
//! the config file.

use std::time::Duration;

use crate::config::{EndpointSettings, QuotaSettings, Settings};
use crate::forecast::backtest::BacktestPolicy;
use crate::forecast::input::InputLimits;
use crate::market::binance::BinanceEndpoint;
use crate::market::breaker::BreakerConfig;
use crate::market::fyers::FyersEndpoint;
use crate::market::limiter::QuotaConfig;
use crate::market::yahoo::YahooEndpoint;
use crate::market::CachePolicy;
use crate::models::neural::fit::FitPolicy;

pub fn quota(q: &QuotaSettings) -> QuotaConfig {
    QuotaConfig {
        per_second: q.per_second,
        per_minute: q.per_minute,
        per_hour: q.per_hour,
        burst: q.burst,
    }
}

pub fn yahoo_endpoint(y: &EndpointSettings) -> YahooEndpoint {
    YahooEndpoint {
        base_url: y.base_url.clone(),
        timeout_ms: y.timeout_ms,
    }
}

pub fn binance_endpoint(b: &EndpointSettings) -> BinanceEndpoint {
    BinanceEndpoint {
        base_url: b.base_url.clone(),
        timeout_ms: b.timeout_ms,
    }
}

pub fn fyers_endpoint(s: &Settings) -> FyersEndpoint {
    FyersEndpoint {
        base_url: s.fyers.base_url.clone(),
        timeout_ms: s.fyers.timeout_ms,
    }
}

/// Longest a provider call waits for its own quota.
pub fn quota_wait(s: &Settings) -> Duration {
    Duration::from_millis(s.market.rate_limit_max_wait_ms)
}

pub fn cache_policy(s: &Settings) -> CachePolicy {
    CachePolicy {
        history_ttl: Duration::from_secs(s.market.history_cache_ttl_secs),
        quote_ttl: Duration::from_secs(s.market.quote_cache_ttl_secs),
        capacity: s.market.cache_capacity,
        history_bytes: s.market.history_cache_bytes,
    }
}

pub fn breaker(s: &Settings) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: s.market.breaker_failure_threshold,
        cool_down: Duration::from_secs(s.market.breaker_cool_down_secs),
        failure_rate: s.market.breaker_failure_rate,
        failure_window: s.market.breaker_failure_window,
    }
}

pub fn fit_policy(s: &Settings) -> FitPolicy {
    FitPolicy {
        concurrency: s.models.fit_concurrency,
        queue: s.models.fit_queue,
        time_budget: Duration::from_secs(s.models.fit_time_budget_secs),
        cache_capacity: s.models.fit_cache_capacity,
    }
}

pub fn backtest_policy(s: &Settings) -> BacktestPolicy {
    BacktestPolicy {
        time_budget: Duration::from_secs(s.backtest.time_budget_secs),
        concurrency: s.backtest.concurrency,
        queue: s.backtest.queue,
        cache_capacity: s.backtest.cache_capacity,
    }
}

pub fn input_limits(s: &Settings) -> InputLimits {
    InputLimits {
        max_prices_per_series: s.limits.max_prices_per_series,
        max_series: s.limits.max_series,
    }
}
