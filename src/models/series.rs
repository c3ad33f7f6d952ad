//! A price series that has already been checked: non-empty, every close
//! finite and positive. Models take this type, so they never see bad prices.

#[derive(Debug, Clone, PartialEq)]
pub struct PriceSeries(Vec<f64>);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("is empty")]
    Empty,
    #[error("[{index}] is {value}: prices must be finite and greater than 0")]
    BadPrice { index: usize, value: f64 },
}

impl PriceSeries {
    pub fn new(closes: Vec<f64>) -> Result<Self, SeriesError> {
        if closes.is_empty() {
            return Err(SeriesError::Empty);
        }
        if let Some((index, &value)) = closes
            .iter()
            .enumerate()
            .find(|(_, p)| !(p.is_finite() && **p > 0.0))
        {
            return Err(SeriesError::BadPrice { index, value });
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
}
