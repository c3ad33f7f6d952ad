//! Trailing returns from real closes.

use serde::Serialize;

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
