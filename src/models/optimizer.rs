//! `realtime_portfolio_optimizer`: the registry's face of the portfolio
//! optimiser. Its params are checked once, per-asset values resolved
//! against the assets given, and [`portfolio::optimize`]'s report returned
//! as the contract's allocation.

use std::collections::{BTreeMap, HashSet};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::params::{expected, Count, Given, IntervalLevel};
use super::portfolio::{self, AssetSeries, Method, OptimizeError, OptimizeParams};
use super::prediction::{FrontierPortfolio, OptimisedAllocation};
use super::{Allocation, Budget, InputType, Model, ModelError, ModelInfo, ModelInput, Prediction};

pub const NAME: &str = "realtime_portfolio_optimizer";

/// One year of daily bars when the caller names symbols without prices.
const DEFAULT_LOOKBACK_BARS: usize = 252;

pub struct PortfolioOptimizer {
    info: ModelInfo,
}

impl Default for PortfolioOptimizer {
    fn default() -> Self {
        PortfolioOptimizer {
            info: ModelInfo {
                name: NAME,
                category: "portfolio_optimization",
                description: "Long-only allocations by equal weight, minimum variance, maximum Sharpe, risk parity or minimum CVaR, and the efficient frontier, solved exactly",
                input_type: InputType::MultiSeries,
                output_type: "allocation",
                complexity: "medium",
                latency: "<1ms (min variance) to 5ms (min CVaR) for 20 assets x 252 days",
            },
        }
    }
}

expected! {
    AString: "a string";
    PerPeriod: "a number (per period)";
    MinMax: "[min, max]";
    Positive: "a positive number";
    ANumber: "a number";
}

/// A value per asset: `{symbol: x}`, or an array in asset order.
#[derive(Debug, Clone, PartialEq)]
pub enum PerAsset {
    BySymbol(BTreeMap<String, f64>),
    InOrder(Vec<f64>),
}

impl<'de> Deserialize<'de> for PerAsset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match &value {
            Value::Object(map) => map
                .iter()
                .map(|(s, v)| {
                    v.as_f64().map(|x| (s.clone(), x)).ok_or_else(|| {
                        D::Error::custom(format!(".{s} must be a number, got {v}"))
                    })
                })
                .collect::<Result<_, _>>()
                .map(PerAsset::BySymbol),
            _ => serde_json::from_value(value.clone())
                .map(PerAsset::InOrder)
                .map_err(|_| {
                    D::Error::custom(format!(
                        "must be an object of symbol -> number, or an array in asset order, got {value}"
                    ))
                }),
        }
    }
}

impl PerAsset {
    /// The values in the order of `symbols` (0 for a symbol not named).
    fn in_order_of(&self, name: &str, symbols: &[String]) -> Result<Vec<f64>, ModelError> {
        match self {
            PerAsset::BySymbol(map) => {
                let known: HashSet<&String> = symbols.iter().collect();
                if let Some(unknown) = map.keys().find(|k| !known.contains(k)) {
                    return Err(ModelError::InvalidInput(format!(
                        "params.{name} names {unknown:?}, which is not among the assets"
                    )));
                }
                Ok(symbols
                    .iter()
                    .map(|s| map.get(s).copied().unwrap_or(0.0))
                    .collect())
            }
            PerAsset::InOrder(values) if values.len() != symbols.len() => {
                Err(ModelError::InvalidInput(format!(
                    "params.{name} has {} values for {} assets",
                    values.len(),
                    symbols.len()
                )))
            }
            PerAsset::InOrder(values) => Ok(values.clone()),
        }
    }
}

/// The symbols a request names: a non-empty list.
#[derive(Debug, Clone, PartialEq)]
pub struct Symbols(pub Vec<String>);

impl<'de> Deserialize<'de> for Symbols {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let symbols: Vec<String> = serde_json::from_value(value)
            .map_err(|_| D::Error::custom("must be an array of strings"))?;
        if symbols.is_empty() {
            return Err(D::Error::custom("is empty"));
        }
        Ok(Symbols(symbols))
    }
}

/// Bars of daily history when prices come from the data layer: at least 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookbackDays(pub usize);

impl<'de> Deserialize<'de> for LookbackDays {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        value
            .as_u64()
            .filter(|d| *d >= 2)
            .map(|d| LookbackDays(d as usize))
            .ok_or_else(|| D::Error::custom("must be a whole number of daily bars, at least 2"))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerParams {
    /// Which assets, in which order, when the data layer supplies them (or
    /// which of `price_data` to use).
    pub symbols: Option<Symbols>,
    pub lookback_days: Option<LookbackDays>,
    method: Option<Given<String, AString>>,
    covariance: Option<Given<String, AString>>,
    risk_free_rate: Option<Given<f64, PerPeriod>>,
    weight_bounds: Option<Given<[f64; 2], MinMax>>,
    risk_budget: Option<PerAsset>,
    current_weights: Option<PerAsset>,
    periods_per_year: Option<Given<f64, Positive>>,
    rebalance_threshold: Option<Given<f64, ANumber>>,
    cost_rate: Option<Given<f64, ANumber>>,
    /// `min_cvar` only: the confidence level, in (0, 1).
    cvar_level: Option<IntervalLevel>,
    /// `efficient_frontier` only: how many portfolios.
    points: Option<Count<2, { portfolio::MAX_FRONTIER_POINTS as u64 }>>,
}

impl OptimizerParams {
    /// The optimiser's options for assets `symbols` (in this order).
    pub fn options(&self, symbols: &[String]) -> Result<OptimizeParams, ModelError> {
        let mut opts = self.settings()?;
        opts.risk_budget = self
            .risk_budget
            .as_ref()
            .map(|b| b.in_order_of("risk_budget", symbols))
            .transpose()?;
        opts.current_weights = self
            .current_weights
            .as_ref()
            .map(|w| w.in_order_of("current_weights", symbols))
            .transpose()?;
        Ok(opts)
    }

    /// The options that do not depend on the assets.
    fn settings(&self) -> Result<OptimizeParams, ModelError> {
        let mut opts = OptimizeParams::default();
        if let Some(method) = &self.method {
            opts.method = method
                .0
                .parse()
                .map_err(|e| ModelError::InvalidInput(format!("params.method: {e}")))?;
        }
        if let Some(cov) = &self.covariance {
            opts.covariance = cov
                .0
                .parse()
                .map_err(|e| ModelError::InvalidInput(format!("params.covariance: {e}")))?;
        }
        if let Some(rf) = &self.risk_free_rate {
            opts.risk_free_rate = rf.0;
        }
        if let Some(bounds) = &self.weight_bounds {
            opts.weight_bounds = Some((bounds.0[0], bounds.0[1]));
        }
        if let Some(p) = &self.periods_per_year {
            opts.periods_per_year = p.0;
        }
        if let Some(t) = &self.rebalance_threshold {
            opts.rebalance_threshold = t.0;
        }
        if let Some(c) = &self.cost_rate {
            opts.cost_rate = c.0;
        }
        // A param of another method is refused rather than ignored: the
        // caller meant something the answer would not do.
        let only_for = |name: &str, method: Method| {
            ModelError::InvalidInput(format!(
                "params.{name} applies to method {method} only, not {}",
                opts.method
            ))
        };
        if let Some(level) = self.cvar_level {
            if opts.method != Method::MinCvar {
                return Err(only_for("cvar_level", Method::MinCvar));
            }
            opts.cvar_level = level.get();
        }
        if let Some(points) = self.points {
            if opts.method != Method::EfficientFrontier {
                return Err(only_for("points", Method::EfficientFrontier));
            }
            opts.frontier_points = points.get();
        }
        Ok(opts)
    }

    /// The method named (the default, max Sharpe, when none is).
    pub fn method_name(&self) -> &str {
        self.method.as_ref().map_or("max_sharpe", |m| m.0.as_str())
    }
}

impl Model for PortfolioOptimizer {
    type Params = OptimizerParams;

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The method and covariance names are checked before any data is
    /// fetched; per-asset values once the assets are known.
    fn check(&self, params: &OptimizerParams) -> Result<(), ModelError> {
        params.settings().map(|_| ())
    }

    fn assets<'p>(&self, params: &'p OptimizerParams) -> Option<&'p [String]> {
        params.symbols.as_ref().map(|s| s.0.as_slice())
    }

    fn lookback(&self, params: &OptimizerParams) -> usize {
        params.lookback_days.map_or(DEFAULT_LOOKBACK_BARS, |d| d.0)
    }

    fn predict(
        &self,
        input: &ModelInput,
        params: &OptimizerParams,
        _budget: &Budget,
    ) -> Result<Prediction, ModelError> {
        let ModelInput::Assets(assets) = input else {
            return Err(ModelError::InvalidInput(
                "price_data must be an object of symbol -> closes".into(),
            ));
        };
        let symbols: Vec<String> = assets.iter().map(|(s, _)| s.clone()).collect();
        let opts = params.options(&symbols)?;
        let series: Vec<AssetSeries> = assets
            .iter()
            .map(|(symbol, s)| AssetSeries {
                symbol: symbol.clone(),
                closes: s.closes().to_vec(),
            })
            .collect();
        let report = portfolio::optimize(&series, &opts).map_err(from_optimize_error)?;
        let by_symbol = |values: &[f64]| -> BTreeMap<String, f64> {
            report
                .symbols
                .iter()
                .cloned()
                .zip(values.iter().copied())
                .collect()
        };
        Ok(Prediction::Allocation(Allocation::Optimised(Box::new(
            OptimisedAllocation {
                allocation: by_symbol(&report.weights),
                risk_contributions: by_symbol(&report.risk_contributions),
                expected_return: report.expected_return,
                expected_volatility: report.expected_volatility,
                sharpe_ratio: report.sharpe_ratio,
                optimization_method: report.method,
                rebalance_needed: report.rebalance_needed,
                transaction_costs: report.transaction_costs,
                turnover: report.turnover,
                diversification_ratio: report.diversification_ratio,
                annualized: report.annualized.clone(),
                solver: report.solver.clone(),
                observations: report.observations,
                covariance: report.covariance,
                risk_free_rate: opts.risk_free_rate,
                tail_risk: report.tail_risk.map(Box::new),
                frontier: report.frontier.as_ref().map(|points| {
                    points
                        .iter()
                        .map(|p| FrontierPortfolio {
                            expected_return: p.expected_return,
                            volatility: p.volatility,
                            sharpe: p.sharpe,
                            weights: by_symbol(&p.weights),
                        })
                        .collect()
                }),
            },
        ))))
    }
}

fn from_optimize_error(err: OptimizeError) -> ModelError {
    let message = err.to_string();
    match err.code() {
        "insufficient_data" => ModelError::InsufficientData(message),
        "infeasible" => ModelError::Infeasible(message),
        "model_failed" => ModelError::Unfit(message),
        "invalid_input" => ModelError::InvalidInput(message),
        _ => ModelError::Internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{PriceSeries, RawParams, Registry, Run};
    use serde_json::json;

    fn optimiser(params: serde_json::Value) -> Result<std::sync::Arc<dyn Run>, ModelError> {
        let mut registry = Registry::default();
        registry.register(PortfolioOptimizer::default());
        let raw: RawParams = params.as_object().unwrap().clone();
        registry.get(NAME).unwrap().configure(&raw)
    }

    /// The last `n` embedded closes of each of `symbols`, as a request's
    /// assets; `flat` replaces one stock's closes by a constant.
    fn assets(symbols: &[&str], n: usize, flat: Option<&str>) -> ModelInput {
        let table = crate::market::dataset::embedded().unwrap();
        ModelInput::Assets(
            symbols
                .iter()
                .map(|s| {
                    let closes: Vec<f64> = table[*s].iter().map(|b| b.close).collect();
                    let mut window = closes[closes.len() - n..].to_vec();
                    if flat == Some(*s) {
                        window.fill(42.0);
                    }
                    (s.to_string(), PriceSeries::new(window).unwrap())
                })
                .collect(),
        )
    }

    #[test]
    fn garch_covariance_is_a_param_and_reported_in_the_answer() {
        let run = optimiser(json!({"method": "min_variance", "covariance": "garch"})).unwrap();
        let symbols = ["AAPL", "JNJ", "KO"];
        let answer = run
            .predict(&assets(&symbols, 252, None), &Budget::unlimited())
            .unwrap();
        let answer = serde_json::to_value(answer).unwrap();
        assert_eq!(answer["covariance"], "garch", "{answer}");
        assert_eq!(answer["observations"], 251);
        let err = optimiser(json!({"covariance": "garch_t"})).err().unwrap();
        assert!(
            err.to_string()
                .contains("expected sample, ledoit_wolf or garch"),
            "{err}"
        );
    }

    #[test]
    fn garch_refusals_map_to_the_contracts_codes() {
        let run = optimiser(json!({"covariance": "garch", "method": "risk_parity"})).unwrap();
        let short = run
            .predict(&assets(&["AAPL", "KO"], 60, None), &Budget::unlimited())
            .unwrap_err();
        assert!(
            matches!(&short, ModelError::InsufficientData(m) if m.contains("at least 100 prices")),
            "{short:?}"
        );
        let flat = run
            .predict(
                &assets(&["AAPL", "KO"], 150, Some("KO")),
                &Budget::unlimited(),
            )
            .unwrap_err();
        assert!(
            matches!(&flat, ModelError::Unfit(m) if m.contains("KO's closes")),
            "{flat:?}"
        );
    }
}
