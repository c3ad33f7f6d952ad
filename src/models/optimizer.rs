//! `realtime_portfolio_optimizer`: the registry's face of the portfolio
//! optimiser. Parses the request params, runs [`portfolio::optimize`] and
//! shapes the contract's allocation fields.

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::portfolio::{self, AssetSeries, OptimizeError, OptimizeParams};
use super::{Budget, InputType, ModelError, ModelInfo, ModelInput, Predictor};

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
                description: "Long-only allocations by equal weight, minimum variance, maximum Sharpe or risk parity, solved exactly",
                input_type: InputType::MultiSeries,
                output_type: "allocation",
                complexity: "medium",
                latency: "<1ms for 20 assets",
            },
        }
    }
}

impl Predictor for PortfolioOptimizer {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn lookback(&self, params: &Value) -> usize {
        params
            .get("lookback_days")
            .and_then(Value::as_u64)
            .map_or(DEFAULT_LOOKBACK_BARS, |d| d as usize)
    }

    fn predict(
        &self,
        input: &ModelInput,
        params: &Value,
        _budget: &Budget,
    ) -> Result<Map<String, Value>, ModelError> {
        let ModelInput::Assets(assets) = input else {
            return Err(ModelError::InvalidInput(
                "price_data must be an object of symbol -> closes".into(),
            ));
        };
        if let Some(v) = params.get("lookback_days") {
            if v.as_u64().is_none_or(|d| d < 2) {
                return Err(ModelError::InvalidInput(
                    "params.lookback_days must be a whole number of daily bars, at least 2".into(),
                ));
            }
        }
        let symbols: Vec<String> = assets.iter().map(|(s, _)| s.clone()).collect();
        let opts = parse_params(params, &symbols)?;
        let series: Vec<AssetSeries> = assets
            .iter()
            .map(|(symbol, s)| AssetSeries {
                symbol: symbol.clone(),
                closes: s.closes().to_vec(),
            })
            .collect();
        let report = portfolio::optimize(&series, &opts).map_err(from_optimize_error)?;

        let by_symbol = |values: &[f64]| -> Map<String, Value> {
            report
                .symbols
                .iter()
                .zip(values)
                .map(|(s, v)| (s.clone(), json!(v)))
                .collect()
        };
        let mut out = Map::new();
        out.insert("allocation".into(), by_symbol(&report.weights).into());
        out.insert(
            "risk_contributions".into(),
            by_symbol(&report.risk_contributions).into(),
        );
        out.insert("expected_return".into(), json!(report.expected_return));
        out.insert(
            "expected_volatility".into(),
            json!(report.expected_volatility),
        );
        out.insert("sharpe_ratio".into(), json!(report.sharpe_ratio));
        out.insert("optimization_method".into(), json!(report.method));
        out.insert("rebalance_needed".into(), json!(report.rebalance_needed));
        out.insert("transaction_costs".into(), json!(report.transaction_costs));
        out.insert("turnover".into(), json!(report.turnover));
        out.insert(
            "diversification_ratio".into(),
            json!(report.diversification_ratio),
        );
        out.insert("annualized".into(), json!(report.annualized));
        out.insert("solver".into(), json!(report.solver));
        out.insert("observations".into(), json!(report.observations));
        out.insert("covariance".into(), json!(report.covariance));
        out.insert("risk_free_rate".into(), json!(opts.risk_free_rate));
        Ok(out)
    }
}

fn from_optimize_error(err: OptimizeError) -> ModelError {
    let message = err.to_string();
    match err.code() {
        "insufficient_data" => ModelError::InsufficientData(message),
        "infeasible" => ModelError::Infeasible(message),
        "invalid_input" => ModelError::InvalidInput(message),
        _ => ModelError::Failed(message),
    }
}

/// `params.<name>` as `T`, or a message naming the param.
fn param<T: DeserializeOwned>(
    params: &Value,
    name: &str,
    expected: &str,
) -> Result<Option<T>, ModelError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|_| {
            ModelError::InvalidInput(format!("params.{name} must be {expected}, got {v}"))
        }),
    }
}

/// A per-asset value given as `{symbol: x}` or as an array in asset order.
fn per_asset(
    params: &Value,
    name: &str,
    symbols: &[String],
) -> Result<Option<Vec<f64>>, ModelError> {
    let expected = "an object of symbol -> number, or an array in asset order";
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            let known: std::collections::HashSet<&String> = symbols.iter().collect();
            if let Some(unknown) = map.keys().find(|k| !known.contains(k)) {
                return Err(ModelError::InvalidInput(format!(
                    "params.{name} names {unknown:?}, which is not among the assets"
                )));
            }
            symbols
                .iter()
                .map(|s| match map.get(s) {
                    None => Ok(0.0),
                    Some(v) => v.as_f64().ok_or_else(|| {
                        ModelError::InvalidInput(format!(
                            "params.{name}.{s} must be a number, got {v}"
                        ))
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => {
            let values: Vec<f64> = param(params, name, expected)?.unwrap_or_default();
            if values.len() != symbols.len() {
                return Err(ModelError::InvalidInput(format!(
                    "params.{name} has {} values for {} assets",
                    values.len(),
                    symbols.len()
                )));
            }
            Ok(Some(values))
        }
    }
}

fn parse_params(params: &Value, symbols: &[String]) -> Result<OptimizeParams, ModelError> {
    let mut opts = OptimizeParams::default();
    if let Some(method) = param::<String>(params, "method", "a string")? {
        opts.method = method
            .parse()
            .map_err(|e| ModelError::InvalidInput(format!("params.method: {e}")))?;
    }
    if let Some(cov) = param::<String>(params, "covariance", "a string")? {
        opts.covariance = cov
            .parse()
            .map_err(|e| ModelError::InvalidInput(format!("params.covariance: {e}")))?;
    }
    if let Some(rf) = param(params, "risk_free_rate", "a number (per period)")? {
        opts.risk_free_rate = rf;
    }
    if let Some([lo, hi]) = param::<[f64; 2]>(params, "weight_bounds", "[min, max]")? {
        opts.weight_bounds = Some((lo, hi));
    }
    opts.risk_budget = per_asset(params, "risk_budget", symbols)?;
    opts.current_weights = per_asset(params, "current_weights", symbols)?;
    if let Some(p) = param(params, "periods_per_year", "a positive number")? {
        opts.periods_per_year = p;
    }
    if let Some(t) = param(params, "rebalance_threshold", "a number")? {
        opts.rebalance_threshold = t;
    }
    if let Some(c) = param(params, "cost_rate", "a number")? {
        opts.cost_rate = c;
    }
    Ok(opts)
}
