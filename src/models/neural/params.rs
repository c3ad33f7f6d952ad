//! The networks' params: inference with the pretrained weights (the
//! default), or a fit to the request's own series (`fit: "series"`, or any
//! `epochs`).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::fit::FitParams;
use crate::models::params::{bounds, either_horizon, Count, Horizon, IntervalLevel, Number};
use crate::models::ModelError;

bounds! {
    LearningRate: 1e-6, 0.1, "1e-6 to 0.1";
}

/// How a request wants the network used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitMode {
    Pretrained,
    Series,
}

impl<'de> Deserialize<'de> for FitMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match value.as_str() {
            Some("series") => Ok(FitMode::Series),
            Some("pretrained") => Ok(FitMode::Pretrained),
            _ => Err(D::Error::custom(format!(
                "must be \"series\" or \"pretrained\", got {value}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkParams {
    pub fit: Option<FitMode>,
    pub sequence_length: Option<Count<1, 250>>,
    pub prediction_horizon: Option<Horizon>,
    pub horizon: Option<Horizon>,
    pub epochs: Option<Count<1, 200>>,
    pub learning_rate: Option<Number<LearningRate>>,
    pub batch_size: Option<Count<1, 1024>>,
    pub seed: Option<Count<0, 4_294_967_295>>,
    pub interval_level: Option<IntervalLevel>,
}

/// The shortest window a fit trains on.
const MIN_FIT_WINDOW: usize = 2;

impl NetworkParams {
    /// Whether the request asks for a fit to its own series.
    pub fn fits(&self) -> bool {
        match self.fit {
            Some(mode) => mode == FitMode::Series,
            None => self.epochs.is_some(),
        }
    }

    /// The horizon asked for and the key it came under.
    pub fn given_horizon(&self) -> Option<(&'static str, Horizon)> {
        either_horizon(self.prediction_horizon, self.horizon)
    }

    /// The params of a fit, a window of `default_window` unless given.
    pub fn fit_params(&self, default_window: usize) -> Result<FitParams, ModelError> {
        let sequence_length = self.sequence_length.map_or(default_window, Count::get);
        if sequence_length < MIN_FIT_WINDOW {
            return Err(ModelError::InvalidInput(format!(
                "params.sequence_length must be an integer from {MIN_FIT_WINDOW} to 250, got {sequence_length}"
            )));
        }
        Ok(FitParams {
            sequence_length,
            horizon: self.given_horizon().map_or(1, |(_, h)| h.periods()),
            epochs: self.epochs.map_or(20, Count::get),
            learning_rate: self.learning_rate.map_or(1e-3, Number::get),
            batch_size: self.batch_size.map_or(64, Count::get),
            seed: self.seed.map_or(7, |s| s.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::params::parse;
    use serde_json::json;

    fn params(v: Value) -> Result<NetworkParams, ModelError> {
        parse(v.as_object().unwrap())
    }

    #[test]
    fn fit_params_are_bounded() {
        let p = params(json!({"epochs": 5})).unwrap();
        assert!(p.fits());
        let fp = p.fit_params(20).unwrap();
        assert_eq!((fp.epochs, fp.sequence_length, fp.horizon), (5, 20, 1));
        for bad in [
            json!({"epochs": 1_000_000_000u64}),
            json!({"epochs": 0}),
            json!({"sequence_length": 0}),
            json!({"learning_rate": -1.0}),
            json!({"batch_size": "big"}),
            json!({"fit": "everything"}),
            json!({"epoch": 3}),
        ] {
            assert!(params(bad.clone()).is_err(), "{bad}");
        }
        let one = params(json!({"fit": "series", "sequence_length": 1})).unwrap();
        assert!(one.fit_params(20).is_err());
    }

    #[test]
    fn every_horizon_form_and_key_is_read_alike() {
        for given in [
            json!({"prediction_horizon": 5}),
            json!({"prediction_horizon": "5_period"}),
            json!({"horizon": 5}),
        ] {
            let p = params(given).unwrap();
            assert_eq!(p.given_horizon().unwrap().1.periods(), 5);
            assert_eq!(p.fit_params(20).unwrap().horizon, 5);
        }
    }
}
