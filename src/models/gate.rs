//! Bounded concurrency for expensive fits: at most `concurrency` run, at
//! most `queue` wait, the rest are turned away (and answered 503 busy);
//! and the cache of fits in front of it.

use std::sync::{Arc, Condvar, Mutex};

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

impl Gate {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Gate {
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
            concurrency: concurrency.max(1),
            queue,
        }
    }

    /// A slot once one is free, waiting in the queue if it has room;
    /// `None` when the queue is full too.
    pub fn enter(&self) -> Option<Slot<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 >= self.concurrency {
            if state.1 >= self.queue {
                return None;
            }
            state.1 += 1;
            while state.0 >= self.concurrency {
                state = self.freed.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            state.1 -= 1;
        }
        state.0 += 1;
        Some(Slot(self))
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
    /// cached. The bool says whether it came from the cache.
    pub fn get_or_fit(
        &self,
        key: String,
        fit: impl FnOnce() -> Result<T, ModelError>,
    ) -> Result<(Arc<T>, bool), ModelError> {
        if let Some(hit) = self.cache.get(&key) {
            return Ok((hit, true));
        }
        self.cache
            .try_get_with(key, || {
                let _slot = self.gate.enter().ok_or_else(|| {
                    ModelError::Busy(format!(
                        "{} {} are running and {} waiting; retry shortly",
                        self.gate.concurrency, self.what, self.gate.queue
                    ))
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
        let first = gate.enter().expect("a free slot");
        let waiter = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || gate.enter().is_some())
        };
        while gate.state.lock().unwrap().1 == 0 {
            std::thread::yield_now();
        }
        assert!(gate.enter().is_none(), "running 1 and 1 waiting: full");
        drop(first);
        assert!(waiter.join().unwrap(), "the waiter gets the freed slot");
    }
}
