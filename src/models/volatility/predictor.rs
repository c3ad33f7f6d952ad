//! `garch_volatility`: GARCH(1,1) or GJR-GARCH(1,1) fitted by maximum
//! likelihood to the request's own series, forecasting the conditional
//! volatility of each period ahead.

use serde::Deserialize;

use super::{fit, Distribution, GarchSpec, Mean, Model as Kind, VolatilityError, TRADING_DAYS};
use crate::models::params::{bounds, Count, Number};
use crate::models::prediction::VolatilityForecast;
use crate::models::{Budget, InputType, Model, ModelError, ModelInfo, ModelInput, Prediction};

pub const NAME: &str = "garch_volatility";

/// Closes fetched when the caller names a symbol: about four trading years.
const LOOKBACK: usize = 1000;

/// What a request may set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GarchParams {
    /// `garch` (default) or `gjr`.
    pub model: Option<Kind>,
    /// `normal` (default) or `t` (Student's t).
    pub distribution: Option<Innovations>,
    /// `constant` (default) or `zero`.
    pub mean: Option<Mean>,
    /// Periods ahead, 1 to 250 (default 1).
    pub horizon: Option<Count<1, 250>>,
    /// Daily closes fetched when the caller names a symbol (default 1000).
    pub lookback_days: Option<Count<100, 5000>>,
    /// Periods a year the forecasts annualise with (default: the symbol's
    /// calendar, 252 for stocks and 365 for crypto).
    pub periods_per_year: Option<Number<PeriodsPerYear>>,
}

bounds! {
    PeriodsPerYear: 1.0, 1e6, "1 to 1000000";
}

/// The innovations' distribution as requests name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Innovations {
    Normal,
    #[serde(alias = "student_t")]
    T,
}

impl GarchParams {
    pub fn spec(&self) -> GarchSpec {
        let distribution = match self.distribution {
            Some(Innovations::T) => Distribution::StudentT,
            _ => Distribution::Normal,
        };
        GarchSpec::new(
            self.model.unwrap_or_default(),
            distribution,
            self.mean.unwrap_or_default(),
        )
    }
}

pub struct GarchVolatility {
    info: ModelInfo,
}

impl Default for GarchVolatility {
    fn default() -> Self {
        GarchVolatility {
            info: ModelInfo {
                name: NAME,
                category: "volatility",
                description: "GARCH(1,1) or GJR-GARCH(1,1), normal or Student-t, fitted by maximum likelihood to the series; conditional volatility 1 to 250 periods ahead",
                input_type: InputType::PriceSeries,
                output_type: "volatility_forecast",
                complexity: "medium",
                latency: "10-40ms for 1000 closes",
            },
        }
    }
}

impl From<VolatilityError> for ModelError {
    fn from(e: VolatilityError) -> Self {
        match e {
            VolatilityError::InsufficientData { .. } => ModelError::InsufficientData(e.to_string()),
            VolatilityError::DidNotConverge(_) => ModelError::Unfit(e.to_string()),
            _ => ModelError::InvalidInput(e.to_string()),
        }
    }
}

impl Model for GarchVolatility {
    type Params = GarchParams;

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn lookback(&self, params: &GarchParams) -> usize {
        params.lookback_days.map_or(LOOKBACK, Count::get)
    }

    fn predict(
        &self,
        input: &ModelInput,
        params: &GarchParams,
        _: &Budget,
    ) -> Result<Prediction, ModelError> {
        let closes = input.series()?.closes();
        let spec = params.spec();
        let fitted = fit(closes, spec)?;
        let horizon = params.horizon.map_or(1, Count::get);
        let periods = params.periods_per_year.map_or(TRADING_DAYS, Number::get);
        let ahead = fitted.forecast(horizon, periods)?;
        Ok(Prediction::Volatility(VolatilityForecast {
            volatility_forecast: ahead.volatility,
            annualized_volatility_forecast: ahead.annualised,
            periods_per_year: ahead.periods_per_year,
            horizon,
            model: spec.model,
            distribution: spec.distribution,
            mean: spec.mean,
            parameters: fitted.params,
            std_errors: fitted.std_errors,
            log_likelihood: fitted.loglikelihood,
            aic: fitted.aic,
            bic: fitted.bic,
            persistence: fitted.persistence,
            half_life: fitted.half_life,
            observations: fitted.nobs,
            current_price: closes[closes.len() - 1],
            units: UNITS,
        }))
    }
}

/// How the figures read.
const UNITS: &str = "fitted to simple returns in percent (100 r) with arch's backcast start; mu in percent and omega in squared percent per period; volatilities as fractions (0.012 = 1.2 % per period), annualised with sqrt(periods_per_year)";
