//! The cache of expensive fits and the bounded concurrency behind it: at
//! most `concurrency` fits run and `queue` wait, the rest are turned away
//! (and answered 503 busy); a waiter whose budget ends leaves the queue.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::budget::{Budget, Stopped};
use super::neural::card::fingerprint;
use super::ModelError;

/// Admission to a bounded pool of fit slots.
pub struct Gate {
    state: Mutex<(usize, usize)>, // (running, waiting)
    freed: Condvar,
    concurrency: usize,
    queue: usize,
}

pub struct Slot<'a>(&'a Gate);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 -= 1;
        self.0.freed.notify_one();
    }
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken and the queue is full.
    Full,
    /// The waiter's budget ended in the queue.
    Stopped(Stopped),
}

/// How often a waiter looks at its budget.
const BUDGET_POLL: Duration = Duration::from_millis(20);

impl Gate {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Gate {
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
            concurrency: concurrency.max(1),
            queue,
        }
    }

    /// A slot once one is free, waiting in the queue if it has room and
    /// while `budget` lasts.
    pub fn enter(&self, budget: &Budget) -> Result<Slot<'_>, Refused> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 >= self.concurrency {
            if state.1 >= self.queue {
                return Err(Refused::Full);
            }
            state.1 += 1;
            while state.0 >= self.concurrency {
                if let Err(why) = budget.check() {
                    state.1 -= 1;
                    return Err(Refused::Stopped(why));
                }
                state = self
                    .freed
                    .wait_timeout(state, BUDGET_POLL)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            state.1 -= 1;
        }
        state.0 += 1;
        Ok(Slot(self))
    }
}

/// A fingerprint of a close series, for cache keys.
pub fn closes_fingerprint(closes: &[f64]) -> String {
    let data: Vec<u8> = closes.iter().flat_map(|c| c.to_le_bytes()).collect();
    fingerprint(&data)
}

/// Fits kept by key (bounded, moka) and made under a [`Gate`]: concurrent
/// requests for one key share one fit.
pub struct FitCache<T> {
    /// What is fitted, for the busy message ("series fits").
    what: &'static str,
    gate: Gate,
    cache: moka::sync::Cache<String, Arc<T>>,
}

impl<T: Send + Sync + 'static> FitCache<T> {
    pub fn new(what: &'static str, concurrency: usize, queue: usize, capacity: u64) -> Self {
        FitCache {
            what,
            gate: Gate::new(concurrency, queue),
            cache: moka::sync::Cache::new(capacity),
        }
    }

    /// The fit for `key`, made by `fit` under the gate when it is not
    /// cached (waiting for a slot while `budget` lasts). The bool says
    /// whether it came from the cache.
    pub fn get_or_fit(
        &self,
        key: String,
        budget: &Budget,
        fit: impl FnOnce() -> Result<T, ModelError>,
    ) -> Result<(Arc<T>, bool), ModelError> {
        if let Some(hit) = self.cache.get(&key) {
            return Ok((hit, true));
        }
        self.cache
            .try_get_with(key, || {
                let _slot = self.gate.enter(budget).map_err(|refused| match refused {
                    Refused::Full => ModelError::Busy(format!(
                        "{} {} are running and {} waiting; retry shortly",
                        self.gate.concurrency, self.what, self.gate.queue
                    )),
                    Refused::Stopped(why) => {
                        ModelError::stopped(&format!("waiting for a slot for {}", self.what), why)
                    }
                })?;
                fit().map(Arc::new)
            })
            .map(|fitted| (fitted, false))
            .map_err(|e| (*e).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_gate_admits_up_to_its_concurrency_and_queue_then_refuses() {
        let gate = Arc::new(Gate::new(1, 1));
        let budget = Budget::unlimited();
        let first = gate.enter(&budget).expect("a free slot");
        let waiter = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || gate.enter(&Budget::unlimited()).is_ok())
        };
        while gate.state.lock().unwrap().1 == 0 {
            std::thread::yield_now();
        }
        assert!(
            matches!(gate.enter(&budget), Err(Refused::Full)),
            "running 1 and 1 waiting: full"
        );
        drop(first);
        assert!(waiter.join().unwrap(), "the waiter gets the freed slot");
    }

    #[test]
    fn a_cancelled_waiter_leaves_the_queue() {
        let gate = Arc::new(Gate::new(1, 1));
        let _running = gate.enter(&Budget::unlimited()).expect("a free slot");
        let (budget, guard) = Budget::cancellable();
        let waiter = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || gate.enter(&budget).err())
        };
        while gate.state.lock().unwrap().1 == 0 {
            std::thread::yield_now();
        }
        drop(guard);
        assert_eq!(
            waiter.join().unwrap(),
            Some(Refused::Stopped(Stopped::Cancelled))
        );
        assert_eq!(gate.state.lock().unwrap().1, 0, "the queue place is free");
    }
}
