//! The market data every provider speaks: daily or intraday candles and
//! latest quotes.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Marks an answer made from last-good prices (every provider down):
/// `stale: true` and their age; nothing when the prices are fresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Staleness {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_age_secs: Option<u64>,
}

impl From<Option<std::time::Duration>> for Staleness {
    fn from(age: Option<std::time::Duration>) -> Self {
        Staleness {
            stale: age.map(|_| true),
            stale_age_secs: age.map(|a| a.as_secs()),
        }
    }
}

/// One bar. `close` is the adjusted close where the source has one;
/// fields a source does not carry stay `None` rather than being invented.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candle {
    pub time: DateTime<Utc>,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: f64,
    pub volume: Option<f64>,
}

impl Candle {
    /// A daily bar known only by its close.
    pub fn daily_close(date: NaiveDate, close: f64) -> Self {
        Candle {
            time: date.and_time(chrono::NaiveTime::MIN).and_utc(),
            open: None,
            high: None,
            low: None,
            close,
            volume: None,
        }
    }

    pub fn date(&self) -> NaiveDate {
        self.time.date_naive()
    }
}

/// The latest price of a symbol, in the contract's shape.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Quote {
    pub price: f64,
    /// Against the previous close; `None` with a single bar.
    pub change: Option<f64>,
    /// Percent (1.5 = 1.5 %), as the legacy API and Fyers report it.
    pub change_pct: Option<f64>,
    pub volume: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub open: Option<f64>,
    pub timestamp: DateTime<Utc>,
    pub provider: String,
    /// Set when every provider failed and this is the last good quote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_age_secs: Option<u64>,
    /// True with `stale_age_secs`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl Quote {
    /// A quote from the last bar and the bar before it.
    pub fn from_bars(last: &Candle, previous: Option<&Candle>, provider: &str) -> Self {
        let change = previous.map(|p| last.close - p.close);
        let change_pct = previous.map(|p| (last.close / p.close - 1.0) * 100.0);
        Quote {
            price: last.close,
            change,
            change_pct,
            volume: last.volume,
            high: last.high,
            low: last.low,
            open: last.open,
            timestamp: last.time,
            provider: provider.to_string(),
            stale_age_secs: None,
            stale: false,
        }
    }
}

/// Which bars a caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// The most recent `n` bars the provider has.
    LastBars(usize),
    /// Bars dated within `start..=end`.
    Dates { start: NaiveDate, end: NaiveDate },
}

/// Bar size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    Daily,
    Minutes(u32),
}

/// Bars for one symbol, and where they came from: the newest of a cached
/// series, shared rather than copied.
#[derive(Debug, Clone)]
pub struct History {
    bars: std::sync::Arc<[Candle]>,
    /// Index of the first bar served.
    start: usize,
    pub provider: String,
    /// Set when every provider failed and this is the last good answer.
    pub stale_age: Option<std::time::Duration>,
}

impl History {
    pub fn new(candles: Vec<Candle>, provider: impl Into<String>) -> Self {
        Self::newest(candles.into(), usize::MAX, provider)
    }

    /// The newest `n` of `bars` (all of them when there are fewer).
    pub fn newest(bars: std::sync::Arc<[Candle]>, n: usize, provider: impl Into<String>) -> Self {
        History {
            start: bars.len().saturating_sub(n),
            bars,
            provider: provider.into(),
            stale_age: None,
        }
    }

    /// The newest `n` of these bars (all of them when there are fewer).
    pub fn last(&self, n: usize) -> History {
        History {
            start: self.bars.len() - self.candles().len().min(n),
            ..self.clone()
        }
    }

    /// Bars oldest first.
    pub fn candles(&self) -> &[Candle] {
        &self.bars[self.start..]
    }

    pub fn closes(&self) -> Vec<f64> {
        self.candles().iter().map(|c| c.close).collect()
    }

    /// The date of the newest bar.
    pub fn as_of(&self) -> Option<NaiveDate> {
        self.candles().last().map(Candle::date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_change_is_against_the_previous_close() {
        let d = NaiveDate::from_ymd_opt(2022, 12, 27).unwrap();
        let prev = Candle::daily_close(d, 100.0);
        let last = Candle::daily_close(d.succ_opt().unwrap(), 102.0);
        let q = Quote::from_bars(&last, Some(&prev), "local");
        assert_eq!(q.price, 102.0);
        assert_eq!(q.change, Some(2.0));
        assert!((q.change_pct.unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(q.open, None);
        assert_eq!(q.timestamp.to_rfc3339(), "2022-12-28T00:00:00+00:00");
        assert_eq!(Quote::from_bars(&last, None, "local").change, None);
    }
}
