//! Rate limits as the generic cell rate algorithm (GCRA): each permit moves
//! a theoretical arrival time one emission interval on, and a request
//! conforms while that time is at most the burst tolerance ahead of now.
//!
//! Written here rather than taken from `governor` for two things it lacks:
//! several windows (per second, minute, hour) granted all together or not
//! at all, so a window that refuses never spends the others' permits; and a
//! look without taking, so a caller over a limit is refused before its
//! request is even examined.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// One window: `count` permits per `per`, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Time between permits at the sustained rate.
    interval: Duration,
    /// How far ahead of now the arrival time may run (burst - 1 intervals).
    tolerance: Duration,
}

impl Window {
    /// `None` when `count` is 0 (no limit).
    pub fn new(count: u32, per: Duration, burst: u32) -> Option<Self> {
        if count == 0 {
            return None;
        }
        let interval = per / count;
        let burst = burst.clamp(1, count);
        Some(Window {
            interval,
            tolerance: interval * (burst - 1),
        })
    }

    /// How long until a permit conforms, given the window's arrival time.
    fn wait(&self, tat: Instant, now: Instant) -> Duration {
        tat.max(now)
            .saturating_duration_since(now)
            .saturating_sub(self.tolerance)
    }
}

/// Several windows over one stream of permits.
#[derive(Debug)]
pub struct Gcra {
    windows: Vec<Window>,
    tats: Mutex<Vec<Instant>>,
}

impl Gcra {
    pub fn new(windows: Vec<Window>) -> Self {
        let now = Instant::now();
        Gcra {
            tats: Mutex::new(vec![now; windows.len()]),
            windows,
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.windows.is_empty()
    }

    /// Takes a permit from every window, or from none: `Err` is the wait
    /// until all of them would grant one.
    pub fn try_take(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        let wait = self
            .windows
            .iter()
            .zip(tats.iter())
            .map(|(w, &tat)| w.wait(tat, now))
            .max()
            .unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            return Err(wait);
        }
        for (w, tat) in self.windows.iter().zip(tats.iter_mut()) {
            *tat = (*tat).max(now) + w.interval;
        }
        Ok(())
    }
}

/// One window per key (a client address, say), with a bounded number of
/// keys: keys whose arrival time has passed hold nothing and are forgotten.
/// Without a window, every key is granted everything.
#[derive(Debug)]
pub struct KeyedGcra<K> {
    window: Option<Window>,
    tats: Mutex<HashMap<K, Instant>>,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> KeyedGcra<K> {
    pub fn new(window: Option<Window>, max_keys: usize) -> Self {
        KeyedGcra {
            window,
            tats: Mutex::new(HashMap::new()),
            max_keys: max_keys.max(1),
        }
    }

    /// Whether `key` would be granted a permit now, without taking it.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(window) = self.window else {
            return Ok(());
        };
        let now = Instant::now();
        let tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        match tats.get(key) {
            Some(&tat) => match window.wait(tat, now) {
                wait if wait.is_zero() => Ok(()),
                wait => Err(wait),
            },
            None => Ok(()),
        }
    }

    /// Takes a permit for `key`; `Err` is the wait until one conforms.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        let Some(window) = self.window else {
            return Ok(());
        };
        let now = Instant::now();
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() >= self.max_keys && !tats.contains_key(key) {
            tats.retain(|_, tat| *tat > now);
            if tats.len() >= self.max_keys {
                // Every tracked key is still limited: a new one waits as
                // long as the window's whole burst takes to refill.
                return Err(window.tolerance + window.interval);
            }
        }
        let tat = tats.entry(key.clone()).or_insert(now);
        let wait = window.wait(*tat, now);
        if !wait.is_zero() {
            return Err(wait);
        }
        *tat = (*tat).max(now) + window.interval;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(count: u32, burst: u32) -> Window {
        Window::new(count, Duration::from_secs(60), burst).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_grants_its_burst_then_one_permit_per_interval() {
        let g = Gcra::new(vec![per_minute(60, 3)]);
        for _ in 0..3 {
            g.try_take().unwrap();
        }
        assert_eq!(g.try_take(), Err(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        g.try_take().unwrap();
        assert!(g.try_take().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusing_window_spends_no_other_windows_permits() {
        // 10 a second, but only 2 a minute.
        let g = Gcra::new(vec![
            Window::new(10, Duration::from_secs(1), 10).unwrap(),
            per_minute(2, 2),
        ]);
        g.try_take().unwrap();
        g.try_take().unwrap();
        for _ in 0..100 {
            let wait = g.try_take().unwrap_err();
            assert_eq!(wait, Duration::from_secs(30), "the minute window decides");
        }
        // The per-second window was not drained by the refusals: after the
        // minute window refills, both grant at once.
        tokio::time::advance(Duration::from_secs(60)).await;
        g.try_take().unwrap();
        g.try_take().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_limited_apart_and_checking_takes_nothing() {
        let k = KeyedGcra::new(Some(per_minute(2, 2)), 100);
        for _ in 0..10 {
            k.check(&"a").unwrap();
        }
        k.take(&"a").unwrap();
        k.take(&"a").unwrap();
        assert!(k.check(&"a").is_err());
        assert!(k.take(&"a").is_err());
        k.take(&"b").unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        k.check(&"a").unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_key_map_stays_bounded() {
        let k = KeyedGcra::new(Some(per_minute(1, 1)), 2);
        k.take(&1).unwrap();
        k.take(&2).unwrap();
        assert!(k.take(&3).is_err(), "full of limited keys");
        tokio::time::advance(Duration::from_secs(61)).await;
        k.take(&3).unwrap();
        assert!(k.tats.lock().unwrap().len() <= 2);
    }
}
