//! A circuit breaker per provider: after `failure_threshold` consecutive
//! failures it opens and calls skip the provider; after `cool_down` it lets
//! exactly one probe through (half-open); the probe's outcome closes or
//! re-opens it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub cool_down: Duration,
    /// Also open when at least this share of the last `failure_window`
    /// calls failed (0 disables).
    pub failure_rate: f64,
    pub failure_window: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(60),
            failure_rate: 0.5,
            failure_window: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    /// `window`: recent outcomes (true = failed), at most `failure_window`.
    Closed {
        consecutive_failures: u32,
        window: std::collections::VecDeque<bool>,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        probe_in_flight: bool,
    },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    /// The provider it guards, for metrics.
    name: &'static str,
    config: BreakerConfig,
    state: Mutex<State>,
}

/// Leave to call the provider. Dropping it unreported (e.g. the caller went
/// away) counts as a failure, so a half-open breaker never waits forever
/// for a probe that will not report.
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    reported: bool,
}

impl Permit<'_> {
    pub fn succeeded(mut self) {
        self.reported = true;
        self.breaker.record(self.probe, true);
    }

    pub fn failed(mut self) {
        self.reported = true;
        self.breaker.record(self.probe, false);
    }

    /// Neither success nor failure (e.g. an unknown symbol): frees a probe slot.
    pub fn neutral(mut self) {
        self.reported = true;
        if self.probe {
            self.breaker.record(true, true);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.record(self.probe, false);
        }
    }
}

impl CircuitBreaker {
    pub fn new(name: &'static str, config: BreakerConfig) -> Self {
        set_gauge(name, BreakerState::Closed);
        CircuitBreaker {
            name,
            config,
            state: Mutex::new(State::Closed {
                consecutive_failures: 0,
                window: Default::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is always valid between statements, so a poisoned lock is safe to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permit to call, or `None` while open (or while a probe is out).
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen {
                    probe_in_flight: true,
                };
                true
            }
            State::Open { .. }
            | State::HalfOpen {
                probe_in_flight: true,
            } => return None,
            State::HalfOpen {
                probe_in_flight: false,
            } => {
                *state = State::HalfOpen {
                    probe_in_flight: true,
                };
                true
            }
        };
        Some(Permit {
            breaker: self,
            probe,
            reported: false,
        })
    }

    fn record(&self, probe: bool, success: bool) {
        let mut state = self.lock();
        self.transition(&mut state, probe, success);
        let now = match *state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        };
        set_gauge(self.name, now);
    }

    fn transition(&self, state: &mut State, probe: bool, success: bool) {
        let open = State::Open {
            until: Instant::now() + self.config.cool_down,
        };
        if probe {
            *state = if success {
                State::Closed {
                    consecutive_failures: 0,
                    window: Default::default(),
                }
            } else {
                open
            };
            return;
        }
        let State::Closed {
            consecutive_failures,
            window,
        } = state
        else {
            // Calls admitted before the breaker opened report late: ignore them.
            return;
        };
        *consecutive_failures = if success {
            0
        } else {
            *consecutive_failures + 1
        };
        let size = self.config.failure_window;
        if size > 0 {
            if window.len() == size {
                window.pop_front();
            }
            window.push_back(!success);
        }
        let failed = window.iter().filter(|f| **f).count();
        let rate_exceeded = self.config.failure_rate > 0.0
            && size > 0
            && window.len() == size
            && failed as f64 >= self.config.failure_rate * size as f64;
        if *consecutive_failures >= self.config.failure_threshold || rate_exceeded {
            *state = open;
        }
    }

    pub fn state(&self) -> BreakerState {
        self.current()
    }

    fn current(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// `tickcast_circuit_breaker_state{provider}`: 0 closed, 1 half-open, 2 open.
fn set_gauge(provider: &'static str, state: BreakerState) {
    let value = match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    };
    metrics::gauge!("tickcast_circuit_breaker_state", "provider" => provider).set(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(
            "test",
            BreakerConfig {
                failure_threshold: 3,
                cool_down: Duration::from_secs(10),
                failure_rate: 0.5,
                failure_window: 10,
            },
        )
    }

    fn fail(b: &CircuitBreaker, times: usize) {
        for _ in 0..times {
            b.try_acquire().expect("allowed").failed();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_only() {
        let b = breaker();
        fail(&b, 2);
        b.try_acquire().unwrap().succeeded();
        fail(&b, 2);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        fail(&b, 1);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn opens_when_half_of_the_recent_calls_fail_even_if_never_three_in_a_row() {
        let b = breaker();
        for _ in 0..4 {
            fail(&b, 1);
            b.try_acquire().unwrap().succeeded();
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "8 calls: window not full yet"
        );
        fail(&b, 1);
        assert_eq!(b.state(), BreakerState::Closed, "4 of 9 failed");
        fail(&b, 1);
        // The window holds the last 10 calls: 5 failed, at the 50 % threshold.
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn half_opens_after_the_cool_down_with_exactly_one_probe() {
        let b = breaker();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(b.try_acquire().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.try_acquire().expect("one probe");
        assert!(b.try_acquire().is_none(), "only one probe at a time");
        probe.succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_another_cool_down() {
        let b = breaker();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        b.try_acquire().unwrap().failed();
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(b.try_acquire().is_none());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(b.try_acquire().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_counts_as_failed_and_a_neutral_one_closes() {
        let b = breaker();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(b.try_acquire().unwrap());
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(10)).await;
        b.try_acquire().unwrap().neutral();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
