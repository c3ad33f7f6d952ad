//! Trailing returns from real closes.

use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use chrono::NaiveDate;

use crate::market::calendar::{AssetClass, Month};
use crate::market::{DataManager, Interval, Span, Staleness};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodReturn {
    #[serde(rename = "return")]
    pub value: f64,
    pub start_price: f64,
    pub end_price: f64,
}

/// The simple return over `month` of dated closes (oldest first): the
/// legacy close[-1] / close[-22] - 1 for a stock, from the close 30
/// calendar days back for crypto. Or how much history is missing.
pub fn month_return(
    dates: &[NaiveDate],
    closes: &[f64],
    month: Month,
) -> Result<PeriodReturn, String> {
    let start = month.start(dates).ok_or_else(|| match month {
        Month::Sessions(n) => format!(
            "needs {} daily closes, only {} available",
            n + 1,
            closes.len()
        ),
        Month::CalendarDays(d) => format!(
            "needs a close {d} days before the newest, the {} available start later",
            closes.len()
        ),
    })?;
    let end_price = closes[closes.len() - 1];
    let start_price = closes[start];
    Ok(PeriodReturn {
        value: end_price / start_price - 1.0,
        start_price,
        end_price,
    })
}

/// One symbol's past-month return, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum MonthReturn {
    Priced {
        symbol: String,
        /// A fraction: close[-1] / close[-22] - 1 for a stock; for crypto,
        /// against the close 30 calendar days before the newest.
        #[serde(rename = "return")]
        value: f64,
        start_price: f64,
        end_price: f64,
        as_of: Option<String>,
        provider: String,
        #[serde(flatten)]
        staleness: Staleness,
    },
    Failed {
        symbol: String,
        error: String,
    },
}

impl MonthReturn {
    pub fn value(&self) -> Option<f64> {
        match self {
            MonthReturn::Priced { value, .. } => Some(*value),
            MonthReturn::Failed { .. } => None,
        }
    }
}

/// Symbols fetched at once for returns.
const FETCH_CONCURRENCY: usize = 8;

/// Each symbol's return over the past month of its calendar ([`Month`]),
/// in order, fetched side by side (bounded).
pub async fn past_month(market: &DataManager, symbols: &[String]) -> Vec<MonthReturn> {
    let returns = symbols.iter().cloned().map(|symbol| async move {
        let month = Month::of(AssetClass::of(&symbol));
        let history = market
            .history(&symbol, Span::LastBars(month.bars()), Interval::Daily)
            .await;
        let h = match history {
            Ok(h) => h,
            Err(e) => {
                return MonthReturn::Failed {
                    symbol,
                    error: e.to_string(),
                }
            }
        };
        let dates: Vec<NaiveDate> = h.candles().iter().map(|c| c.date()).collect();
        match month_return(&dates, &h.closes(), month) {
            Ok(r) => MonthReturn::Priced {
                value: r.value,
                start_price: r.start_price,
                end_price: r.end_price,
                as_of: h.as_of().map(|d| d.to_string()),
                staleness: h.stale_age.into(),
                provider: h.provider,
                symbol,
            },
            Err(reason) => MonthReturn::Failed {
                error: format!("{symbol}: {reason}"),
                symbol,
            },
        }
    });
    futures::stream::iter(returns)
        .buffered(FETCH_CONCURRENCY)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: u32, every: u64) -> Vec<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        (0..n)
            .map(|i| first + chrono::Days::new(u64::from(i) * every))
            .collect()
    }

    #[test]
    fn a_stock_month_spans_22_closes() {
        let closes: Vec<f64> = (1..=30).map(f64::from).collect();
        let month = Month::of(AssetClass::Equity);
        let r = month_return(&days(30, 1), &closes, month).unwrap();
        assert_eq!((r.start_price, r.end_price), (9.0, 30.0));
        assert!((r.value - (30.0 / 9.0 - 1.0)).abs() < 1e-15);
        let err = month_return(&days(21, 1), &closes[..21], month).unwrap_err();
        assert_eq!(err, "needs 22 daily closes, only 21 available");
    }

    #[test]
    fn a_crypto_month_spans_30_calendar_days() {
        let closes: Vec<f64> = (1..=40).map(f64::from).collect();
        let month = Month::of(AssetClass::Crypto);
        // Daily closes: the start is 30 closes back, not 21.
        let r = month_return(&days(40, 1), &closes, month).unwrap();
        assert_eq!((r.start_price, r.end_price), (10.0, 40.0));
        // A close every other day: 15 closes back is 30 days back.
        let r = month_return(&days(40, 2), &closes, month).unwrap();
        assert_eq!(r.start_price, 25.0);
        assert!(month_return(&days(25, 1), &closes[..25], month).is_err());
    }
}
