//! Bounded concurrency for expensive fits: at most `concurrency` run, at
//! most `queue` wait, the rest are turned away (and answered 503 busy).

use std::sync::{Condvar, Mutex};

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
