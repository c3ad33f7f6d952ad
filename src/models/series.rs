//! A price series that has already been checked: non-empty, every close
//! finite, positive and within the range real prices take, and no move from
//! one close to the next beyond [`MAX_MOVE`]. Models take this type, so they
//! never see prices whose returns, means or variances overflow.

/// Smallest accepted close (sub-cent crypto tokens trade near 1e-8).
pub const MIN_PRICE: f64 = 1e-8;
/// Largest accepted close.
pub const MAX_PRICE: f64 = 1e12;
/// Largest ratio between consecutive closes, either way: a thousandfold
/// rise or a fall of 99.9 % in one period is not a price series.
pub const MAX_MOVE: f64 = 1e3;

#[derive(Debug, Clone, PartialEq)]
pub struct PriceSeries(Vec<f64>);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("is empty")]
    Empty,
    #[error("[{index}] is {value}: prices must be finite and greater than 0")]
    BadPrice { index: usize, value: f64 },
    #[error("[{index}] is {value:?}: prices must be between 1e-8 and 1e12")]
    OutOfRange { index: usize, value: f64 },
    #[error("[{index}] is {value:?}, {ratio:.3e} times the close before it: consecutive closes may differ at most a thousandfold")]
    ExtremeMove {
        index: usize,
        value: f64,
        ratio: f64,
    },
}

impl PriceSeries {
    pub fn new(closes: Vec<f64>) -> Result<Self, SeriesError> {
        if closes.is_empty() {
            return Err(SeriesError::Empty);
        }
        for (index, &value) in closes.iter().enumerate() {
            if !(value.is_finite() && value > 0.0) {
                return Err(SeriesError::BadPrice { index, value });
            }
            if !(MIN_PRICE..=MAX_PRICE).contains(&value) {
                return Err(SeriesError::OutOfRange { index, value });
            }
            if index > 0 {
                let ratio = value / closes[index - 1];
                if !(1.0 / MAX_MOVE..=MAX_MOVE).contains(&ratio) {
                    return Err(SeriesError::ExtremeMove {
                        index,
                        value,
                        ratio,
                    });
                }
            }
        }
        Ok(PriceSeries(closes))
    }

    pub fn closes(&self) -> &[f64] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The newest close.
    pub fn last(&self) -> f64 {
        // `new` refuses empty series.
        self.0.last().copied().unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_non_positive_or_non_finite_prices() {
        assert_eq!(PriceSeries::new(vec![]), Err(SeriesError::Empty));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = PriceSeries::new(vec![1.0, bad]).unwrap_err();
            assert!(
                matches!(err, SeriesError::BadPrice { index: 1, .. }),
                "{bad}"
            );
        }
        assert_eq!(PriceSeries::new(vec![1.0, 2.0]).unwrap().last(), 2.0);
    }

    #[test]
    fn refuses_prices_out_of_range_and_moves_beyond_a_thousandfold() {
        let err = PriceSeries::new(vec![1e13, 1e13]).unwrap_err();
        assert!(matches!(err, SeriesError::OutOfRange { index: 0, .. }));
        let err = PriceSeries::new(vec![1.0, 2.0, 2001.0]).unwrap_err();
        assert!(matches!(err, SeriesError::ExtremeMove { index: 2, .. }));
        let err = PriceSeries::new(vec![10.0, 0.009]).unwrap_err();
        assert!(matches!(err, SeriesError::ExtremeMove { index: 1, .. }));
        // The bounds themselves are accepted.
        PriceSeries::new(vec![1.0, 1000.0, 1.0, 0.001]).unwrap();
        PriceSeries::new(vec![MIN_PRICE, MIN_PRICE * 999.0, MAX_PRICE]).unwrap_err();
        PriceSeries::new(vec![MIN_PRICE, MIN_PRICE * 999.0]).unwrap();
    }
}
