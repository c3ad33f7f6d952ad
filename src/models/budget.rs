//! When blocking model work must stop: its time is up, or whoever asked for
//! it has gone (a request that timed out or whose client disconnected).
//! Long loops (walk-forward blocks, training epochs and batches, the
//! ensemble's fits, a queue for a fit slot) check their budget as they go,
//! so abandoned work frees its thread and its slot within moments.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why work stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("cancelled: the request it was for has gone")]
    Cancelled,
    #[error("out of its time budget")]
    OutOfTime,
}

/// A deadline and a cancellation flag; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    deadline: Option<Instant>,
    cancelled: Option<Arc<AtomicBool>>,
}

/// Cancels its budget when dropped: held by the request, dropped with it.
#[derive(Debug)]
pub struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Budget {
    /// No deadline, never cancelled.
    pub fn unlimited() -> Self {
        Budget::default()
    }

    /// A budget cancelled when the returned guard is dropped.
    pub fn cancellable() -> (Self, CancelOnDrop) {
        let flag = Arc::new(AtomicBool::new(false));
        let budget = Budget {
            deadline: None,
            cancelled: Some(Arc::clone(&flag)),
        };
        (budget, CancelOnDrop(flag))
    }

    /// This budget, ending `within` from now at the latest.
    pub fn within(&self, within: Duration) -> Self {
        let end = Instant::now().checked_add(within);
        Budget {
            deadline: match (self.deadline, end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            cancelled: self.cancelled.clone(),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Acquire))
    }

    pub fn is_out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// `Err` once the work should stop.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.is_cancelled() {
            Err(Stopped::Cancelled)
        } else if self.is_out_of_time() {
            Err(Stopped::OutOfTime)
        } else {
            Ok(())
        }
    }

    /// Time left before the deadline, if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_cancels_every_clone() {
        let (budget, guard) = Budget::cancellable();
        let shared = budget.within(Duration::from_secs(60));
        assert_eq!(shared.check(), Ok(()));
        drop(guard);
        assert_eq!(budget.check(), Err(Stopped::Cancelled));
        assert_eq!(shared.check(), Err(Stopped::Cancelled));
    }

    #[test]
    fn the_earlier_deadline_wins() {
        let budget = Budget::unlimited().within(Duration::from_secs(60));
        let shorter = budget.within(Duration::ZERO);
        assert_eq!(shorter.check(), Err(Stopped::OutOfTime));
        assert_eq!(
            shorter.within(Duration::from_secs(600)).check(),
            Err(Stopped::OutOfTime)
        );
        assert_eq!(budget.check(), Ok(()));
        assert_eq!(Budget::unlimited().remaining(), None);
    }
}
