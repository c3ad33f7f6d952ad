//! A network served under its model name by whichever version is champion,
//! with its challenger answering the A/B share of (caller, symbol) pairs.
//! Versions are swapped in place when the registry changes; a run already
//! configured keeps the version it started with.

use std::sync::{Arc, RwLock};

use super::experiment::{assign, Arm};
use crate::models::neural::params::NetworkParams;
use crate::models::neural::predictor::NeuralPredictor;
use crate::models::{ModelError, ModelInfo, Predictor, RawParams, Run};

/// One version, as served and as the gate reads it.
#[derive(Clone)]
pub struct Loaded {
    pub network: Arc<NeuralPredictor>,
    served: Arc<dyn Predictor>,
}

impl Loaded {
    pub fn new(network: NeuralPredictor) -> Self {
        let network = Arc::new(network);
        Loaded {
            served: crate::models::serve(Arc::clone(&network)),
            network,
        }
    }

    pub fn version(&self) -> &str {
        &self.network.card().version
    }
}

#[derive(Clone)]
struct Arms {
    champion: Loaded,
    challenger: Option<Loaded>,
}

pub struct LiveModel {
    info: ModelInfo,
    param_names: &'static [&'static str],
    arms: RwLock<Arms>,
    /// Share of (caller, symbol) pairs the challenger answers.
    share: f64,
}

impl LiveModel {
    pub fn new(champion: Loaded, challenger: Option<Loaded>, share: f64) -> Self {
        LiveModel {
            info: champion.served.info().clone(),
            param_names: champion.served.param_names(),
            arms: RwLock::new(Arms {
                champion,
                challenger,
            }),
            share,
        }
    }

    fn arms(&self) -> Arms {
        self.arms.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn champion(&self) -> Loaded {
        self.arms().champion
    }

    pub fn challenger(&self) -> Option<Loaded> {
        self.arms().challenger
    }

    pub fn share(&self) -> f64 {
        self.share
    }

    /// Serves `champion` and `challenger` from now on.
    pub fn replace(&self, champion: Loaded, challenger: Option<Loaded>) {
        *self.arms.write().unwrap_or_else(|p| p.into_inner()) = Arms {
            champion,
            challenger,
        };
    }
}

impl Predictor for LiveModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn param_names(&self) -> &'static [&'static str] {
        self.param_names
    }

    fn configure(&self, params: &RawParams) -> Result<Arc<dyn Run>, ModelError> {
        self.arms().champion.served.configure(params)
    }

    fn configure_for(
        &self,
        params: &RawParams,
        caller: &str,
        symbol: &str,
    ) -> Result<(Arc<dyn Run>, Option<Arm>), ModelError> {
        let arms = self.arms();
        // A fit to the request's own closes is a model of its own, not a
        // version's forecast: experiments compare the versions' forecasts.
        let fits = crate::models::params::parse::<NetworkParams>(params).is_ok_and(|p| p.fits());
        let Some(challenger) = arms.challenger.filter(|_| self.share > 0.0 && !fits) else {
            return Ok((arms.champion.served.configure(params)?, None));
        };
        let arm = assign(self.info.name, caller, symbol, self.share);
        let version = match arm {
            Arm::Champion => &arms.champion,
            Arm::Challenger => &challenger,
        };
        metrics::counter!("tickcast_ab_forecasts_total", "model" => self.info.name, "arm" => arm.as_str())
            .increment(1);
        Ok((version.served.configure(params)?, Some(arm)))
    }
}
