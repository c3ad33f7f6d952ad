//! Trailing returns from real closes.

use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use crate::market::{DataManager, Interval, Span, Staleness};

/// Trading days in the legacy "past month": close[-1] / close[-22] - 1.
pub const MONTH_TRADING_DAYS: usize = 21;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodReturn {
    #[serde(rename = "return")]
    pub value: f64,
    pub start_price: f64,
    pub end_price: f64,
}

/// The simple return over the last `days` trading days, or how many closes are missing.
pub fn trailing_return(closes: &[f64], days: usize) -> Result<PeriodReturn, String> {
    let needed = days + 1;
    if closes.len() < needed {
        return Err(format!(
            "needs {needed} daily closes, only {} available",
            closes.len()
        ));
    }
    let end_price = closes[closes.len() - 1];
    let start_price = closes[closes.len() - needed];
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
        /// A fraction: close[-1] / close[-22] - 1.
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

/// Each symbol's return over the last [`MONTH_TRADING_DAYS`], in order,
/// fetched side by side (bounded).
pub async fn past_month(market: &DataManager, symbols: &[String]) -> Vec<MonthReturn> {
    let returns = symbols.iter().cloned().map(|symbol| async move {
        let history = market
            .history(
                &symbol,
                Span::LastBars(MONTH_TRADING_DAYS + 1),
                Interval::Daily,
            )
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
        match trailing_return(&h.closes(), MONTH_TRADING_DAYS) {
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

    #[test]
    fn month_return_spans_22_closes() {
        let closes: Vec<f64> = (1..=30).map(f64::from).collect();
        let r = trailing_return(&closes, MONTH_TRADING_DAYS).unwrap();
        assert_eq!((r.start_price, r.end_price), (9.0, 30.0));
        assert!((r.value - (30.0 / 9.0 - 1.0)).abs() < 1e-15);
        let err = trailing_return(&closes[..21], MONTH_TRADING_DAYS).unwrap_err();
        assert_eq!(err, "needs 22 daily closes, only 21 available");
    }
}
