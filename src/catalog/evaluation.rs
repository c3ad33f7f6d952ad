//! The catalog's `evaluation` of a model: scores from 0 to 10, each a
//! fixed formula of what `tickcast evaluate` measured on the held-out years
//! (see docs/evaluation.md). A category nothing measures is left out of
//! `detailed_scores` (the legacy page shows every category present as a
//! number out of 10) and of `overall_score`; `details` names it.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::models::evaluation::intervals::IntervalSummary;
use crate::models::evaluation::volatility::VolatilitySummary;
use crate::models::evaluation::{BacktestSummary, HeldOutSummary, Measurements, ModelMeasurement};

/// The scores' names, in the legacy order.
pub const SCORES: [&str; 6] = [
    "risk_return",
    "data_quality",
    "model_logic",
    "code_quality",
    "testing_validation",
    "governance_compliance",
];

/// Held-out samples at which testing_validation's sample factor is full.
const FULL_SAMPLES: f64 = 20_000.0;
/// Stocks at which its breadth factor is full.
const FULL_STOCKS: f64 = 20.0;

fn clamp10(x: f64) -> f64 {
    (x.clamp(0.0, 10.0) * 100.0).round() / 100.0
}

/// 5 + 5 x (strategy Sharpe - benchmark Sharpe): 5 means no better than
/// the benchmark, each 0.2 of annual Sharpe is a point.
pub fn risk_return(m: &ModelMeasurement) -> Option<f64> {
    let b = m.backtest.as_ref()?;
    Some(clamp10(
        5.0 + 5.0 * (b.sharpe_ratio - b.benchmark_sharpe_ratio),
    ))
}

/// A forecaster: 5 + 100 x (accuracy - always-up accuracy) + 100 x (1 -
/// RMSE ratio): 5 means no edge over forecasting a rise or no change; each
/// percentage point of either edge is a point. A volatility model: 5 - 2.5
/// x the Diebold-Mariano statistic of its QLIKE against the stronger of its
/// naive baselines: 5 means no better, a significant edge (DM -2) is 10.
pub fn model_logic(m: &ModelMeasurement) -> Option<f64> {
    if let Some(h) = &m.held_out {
        return Some(clamp10(
            5.0 + 100.0 * (h.directional_accuracy - h.always_up_accuracy)
                + 100.0 * (1.0 - h.rmse_ratio),
        ));
    }
    let dm = weakest_edge(m.volatility.as_ref()?)?;
    Some(clamp10(5.0 - 2.5 * dm))
}

/// The larger (least favourable) QLIKE DM statistic of a volatility model
/// against its two baselines.
fn weakest_edge(v: &VolatilitySummary) -> Option<f64> {
    let (a, b) = (v.dm_qlike_vs_ewma?, v.dm_qlike_vs_realised?);
    Some(a.statistic.max(b.statistic))
}

/// The held-out evidence behind a model's figures: (samples, stocks).
fn evidence(m: &ModelMeasurement) -> (usize, usize) {
    match (&m.held_out, &m.volatility, &m.backtest) {
        (Some(h), _, _) => (h.samples, h.stocks),
        (None, Some(v), _) => (v.samples, v.stocks),
        (None, None, Some(b)) => (b.days, b.stocks),
        (None, None, None) => (0, 0),
    }
}

/// 10 x min(1, log10(samples) / log10(20 000)) x min(1, stocks / 20):
/// how much held-out evidence stands behind the other scores.
pub fn testing_validation(m: &ModelMeasurement) -> f64 {
    let (samples, stocks) = evidence(m);
    let depth = ((samples.max(1) as f64).log10() / FULL_SAMPLES.log10()).min(1.0);
    let breadth = (stocks as f64 / FULL_STOCKS).min(1.0);
    clamp10(10.0 * depth * breadth)
}

/// One category's score.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Score {
    /// 0..10.
    pub score: f64,
    pub description: &'static str,
    /// The formula and its inputs.
    pub details: String,
}

/// What the scores were computed from, and when.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Measured {
    pub measured_at: String,
    pub period: String,
    pub version: String,
    /// `null` for a model with no held-out forecasts (the optimiser).
    #[schema(value_type = Option<Object>)]
    pub held_out: Option<HeldOutSummary>,
    #[schema(value_type = Option<Object>)]
    pub backtest: Option<BacktestSummary>,
    /// Held-out coverage of its prediction intervals (price forecasters).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub intervals: Option<IntervalSummary>,
    /// Its volatility forecasts against naive baselines (volatility models).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub volatility: Option<VolatilitySummary>,
}

/// A model's `evaluation`: only categories something measures are present.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Evaluation {
    /// The mean of the measured scores (absent when nothing is measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overall_score: Option<f64>,
    pub detailed_scores: BTreeMap<&'static str, Score>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    pub details: String,
}

fn score(value: f64, description: &'static str, details: String) -> Score {
    Score {
        score: value,
        description,
        details,
    }
}

/// The `evaluation` of `model`, from `measurements` when it was measured.
pub fn evaluation(model: &str, measurements: Option<&Measurements>) -> Evaluation {
    let measured = measurements.and_then(|all| all.models.get(model).map(|m| (all, m)));
    let Some((all, m)) = measured else {
        let why = match measurements {
            None => "no measurements file was loaded (run `tickcast evaluate`)".to_string(),
            Some(_) => format!("`tickcast evaluate` did not measure {model}"),
        };
        return Evaluation {
            overall_score: None,
            detailed_scores: BTreeMap::new(),
            measured: None,
            details: format!("No score: {why}."),
        };
    };
    let (samples, stocks) = evidence(m);
    let mut detailed = BTreeMap::new();
    if let (Some(b), Some(value)) = (&m.backtest, risk_return(m)) {
        detailed.insert(
            "risk_return",
            score(
                value,
                "Backtest Sharpe ratio against its benchmark on the held-out period",
                format!(
                    "5 + 5 x (Sharpe {:.3} - benchmark Sharpe {:.3}), clamped to 0..10; {}",
                    b.sharpe_ratio, b.benchmark_sharpe_ratio, b.strategy
                ),
            ),
        );
    }
    if let (Some(v), Some(logic)) = (&m.volatility, model_logic(m)) {
        detailed.insert(
            "model_logic",
            score(
                logic,
                "Volatility forecast edge over the naive baselines on held-out data",
                format!(
                    "5 - 2.5 x DM {:.3} (QLIKE against the stronger of EWMA and 21-day realised volatility; mean QLIKE {:.4} vs {:.4} and {:.4}), clamped to 0..10",
                    weakest_edge(v).unwrap_or(f64::NAN),
                    v.qlike.model,
                    v.qlike.ewma,
                    v.qlike.realised_21d
                ),
            ),
        );
    }
    if let (Some(h), Some(logic)) = (&m.held_out, model_logic(m)) {
        detailed.insert(
            "model_logic",
            score(
                logic,
                "Forecast edge over the naive forecasts on held-out data",
                format!(
                    "5 + 100 x (directional accuracy {:.4} - always-up {:.4}) + 100 x (1 - RMSE ratio {:.4}), clamped to 0..10",
                    h.directional_accuracy, h.always_up_accuracy, h.rmse_ratio
                ),
            ),
        );
    }
    detailed.insert(
        "testing_validation",
        score(
            testing_validation(m),
            "Held-out evidence behind the scores",
            format!(
                "10 x min(1, log10({samples} samples) / log10(20000)) x min(1, {stocks} stocks / 20)"
            ),
        ),
    );
    let scored: Vec<f64> = detailed.values().map(|s| s.score).collect();
    let overall = clamp10(scored.iter().sum::<f64>() / scored.len().max(1) as f64);
    let left_out: Vec<&str> = SCORES
        .iter()
        .copied()
        .filter(|name| !detailed.contains_key(*name))
        .collect();
    Evaluation {
        overall_score: Some(overall),
        details: format!(
            "Mean of the {} measured scores, measured {} by `{}` over {}; not measured and left out: {}.",
            scored.len(),
            all.measured_at,
            all.command,
            all.period,
            left_out.join(", ")
        ),
        detailed_scores: detailed,
        measured: Some(Measured {
            measured_at: all.measured_at.clone(),
            period: all.period.clone(),
            version: m.version.clone(),
            held_out: m.held_out.clone(),
            backtest: m.backtest.clone(),
            intervals: m.intervals.clone(),
            volatility: m.volatility.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::evaluation::{BacktestSummary, HeldOutSummary, MEASUREMENTS_SCHEMA};

    fn measured(accuracy: f64, rmse_ratio: f64, sharpe: f64) -> Measurements {
        let m = ModelMeasurement {
            version: "v1".into(),
            held_out: Some(HeldOutSummary {
                samples: 20_000,
                stocks: 20,
                directional_accuracy: accuracy,
                always_up_accuracy: 0.52,
                rmse_ratio,
                mae: 0.01,
            }),
            intervals: None,
            volatility: None,
            backtest: Some(BacktestSummary {
                strategy: "test".into(),
                stocks: 20,
                days: 1008,
                sharpe_ratio: sharpe,
                benchmark_sharpe_ratio: 0.5,
                total_return: 0.1,
                benchmark_total_return: 0.2,
                max_drawdown: 0.3,
                benchmark_max_drawdown: 0.35,
            }),
        };
        Measurements {
            schema_version: MEASUREMENTS_SCHEMA,
            measured_at: "2026-01-01".into(),
            command: "tickcast evaluate".into(),
            period: "2019-01-01..2022-12-31".into(),
            models: [("m".to_string(), m)].into(),
        }
    }

    #[test]
    fn no_edge_scores_five_and_edges_move_the_scores() {
        let none = measured(0.52, 1.0, 0.5);
        let e = serde_json::to_value(evaluation("m", Some(&none))).unwrap();
        assert_eq!(e["detailed_scores"]["model_logic"]["score"], 5.0);
        assert_eq!(e["detailed_scores"]["risk_return"]["score"], 5.0);
        assert_eq!(e["detailed_scores"]["testing_validation"]["score"], 10.0);
        // Three measured scores: (5 + 5 + 10) / 3.
        assert_eq!(e["overall_score"], 6.67);
        assert!(e["detailed_scores"].get("code_quality").is_none());
        assert!(e["details"].as_str().unwrap().contains("code_quality"));
        let better = measured(0.53, 0.99, 0.7);
        let e = serde_json::to_value(evaluation("m", Some(&better))).unwrap();
        assert_eq!(e["detailed_scores"]["model_logic"]["score"], 7.0);
        assert_eq!(e["detailed_scores"]["risk_return"]["score"], 6.0);
        assert_eq!(e["measured"]["measured_at"], "2026-01-01");
    }

    #[test]
    fn unmeasured_models_have_no_scores_and_say_why() {
        let e = evaluation("other", Some(&measured(0.5, 1.0, 0.5)));
        assert!(e.overall_score.is_none() && e.detailed_scores.is_empty());
        assert!(e.details.contains("did not measure"));
        let json = serde_json::to_value(evaluation("m", None)).unwrap();
        assert!(json.get("overall_score").is_none());
    }
}
