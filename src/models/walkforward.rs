//! Walk-forward backtests of any served predictor.
//!
//! The test days are cut into blocks of `retrain_every` days. At the first
//! day of each block the model is fitted with the closes up to that day
//! (networks keep their pretrained weights unless `params.fit = "series"`),
//! then forecasts the next day's return from each day of the block with the
//! closes up to that day. [`super::backtest::run`] trades those forecasts:
//! the forecast made at day `t` sets the position over day `t + 1`.
//!
//! With a `target_volatility` the position is the signal's sign times
//! `min(MAX_LEVERAGE, target / σₜ)`, `σₜ` the EWMA (RiskMetrics, λ 0.94)
//! forecast of the next day's volatility from the closes up to day `t`
//! ([`backtest::volatility_target_sizes`]); without one it is the sign.

use std::time::Instant;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::backtest::{self, BacktestError, Performance, Rules};
use super::budget::{Budget, Stopped};
use super::params::{bounds, names_of, parse, Count, Flag, Number, RawParams};
use super::{Ahead, Horizon, ModelError, Run};

/// How the backtest trades and refits, from the request's `params`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Plan {
    /// Trading days between refits.
    pub retrain_every: usize,
    pub threshold: f64,
    pub allow_short: bool,
    pub transaction_cost_bps: f64,
    /// Annualised volatility the positions are sized to (0.15 = 15 %);
    /// absent, every position is one unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_volatility: Option<f64>,
    /// Daily returns a year the figures are annualised with: the traded
    /// asset's calendar (252 for stocks, 365 for crypto) unless the request
    /// sets it.
    pub periods_per_year: f64,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            retrain_every: 21,
            threshold: 0.0,
            allow_short: false,
            transaction_cost_bps: 10.0,
            target_volatility: None,
            periods_per_year: crate::market::calendar::EQUITY_PERIODS_PER_YEAR,
        }
    }
}

/// Closes a volatility target wants before the first traded day: the
/// EWMA's 21-return seed and 78 updates, after which the seed weighs less
/// than 1 % (0.94^78).
pub const TARGET_HISTORY: usize = 100;

bounds! {
    Threshold: 0.0, 0.1, "0 to 0.1";
    Bps: 0.0, 100.0, "0 to 100";
    /// Above 0: the smallest positive double is the least target.
    TargetVolatility: f64::MIN_POSITIVE, 2.0, "0 (excluded) to 2";
    PeriodsPerYear: 1.0, 366.0, "1 to 366";
}

/// The plan's params as a request writes them.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PlanRequest {
    retrain_every: Option<Count<1, 504>>,
    threshold: Option<Number<Threshold>>,
    allow_short: Option<Flag>,
    transaction_cost_bps: Option<Number<Bps>>,
    target_volatility: Option<Number<TargetVolatility>>,
    periods_per_year: Option<Number<PeriodsPerYear>>,
}

impl Plan {
    /// The plan in a backtest's `params`, and the params left for the model.
    pub fn split(params: &RawParams) -> Result<(Plan, RawParams), ModelError> {
        let (plan, model): (RawParams, RawParams) = params
            .clone()
            .into_iter()
            .partition(|(k, _)| names_of::<PlanRequest>().contains(&k.as_str()));
        let r: PlanRequest = parse(&plan)?;
        let defaults = Plan::default();
        let plan = Plan {
            retrain_every: r.retrain_every.map_or(defaults.retrain_every, Count::get),
            threshold: r.threshold.map_or(defaults.threshold, Number::get),
            allow_short: r.allow_short.map_or(defaults.allow_short, |f| f.0),
            transaction_cost_bps: r
                .transaction_cost_bps
                .map_or(defaults.transaction_cost_bps, Number::get),
            target_volatility: r.target_volatility.map(Number::get),
            periods_per_year: r
                .periods_per_year
                .map_or(defaults.periods_per_year, Number::get),
        };
        Ok((plan, model))
    }

    /// Positions are held one day, so the forecasts traded must be of one day.
    pub fn check_horizon(horizon: Horizon) -> Result<(), ModelError> {
        if horizon == Horizon::ONE {
            Ok(())
        } else {
            Err(ModelError::InvalidInput(format!(
                "params.prediction_horizon {horizon}: a backtest trades next-day forecasts, so the horizon is 1"
            )))
        }
    }

    pub fn rules(&self) -> Rules {
        Rules {
            threshold: self.threshold,
            allow_short: self.allow_short,
            cost: self.transaction_cost_bps / 10_000.0,
            periods_per_year: self.periods_per_year,
        }
    }
}

/// A finished walk-forward backtest.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WalkForward {
    #[serde(flatten)]
    pub performance: Performance,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Forecasts the model made (one per traded day).
    pub forecasts: usize,
    /// Times the model was fitted.
    pub refits: usize,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Backtest(#[from] BacktestError),
    #[error("the backtest ran out of its time budget after {done} of {total} days; try a shorter period or a larger retrain_every")]
    OutOfTime { done: usize, total: usize },
    #[error(
        "the backtest was cancelled after {done} of {total} days: the request it was for has gone"
    )]
    Cancelled { done: usize, total: usize },
}

/// Every forecast for days `start..` of `closes`, made block by block; the
/// model is handed only the closes up to each block's last forecast day.
/// Stops between blocks (and inside the model's own long work) when
/// `budget` ends.
pub fn forecasts(
    model: &dyn Run,
    closes: &[f64],
    start: usize,
    plan: &Plan,
    budget: &Budget,
) -> Result<(Vec<f64>, usize), WalkError> {
    // The last close has no next day to trade.
    let last = closes.len().saturating_sub(1);
    let mut out = Vec::with_capacity(last.saturating_sub(start));
    let mut refits = 0;
    let mut block = start;
    while block < last {
        let (done, total) = (out.len(), last - start);
        let stopped = |why| match why {
            Stopped::OutOfTime => WalkError::OutOfTime { done, total },
            Stopped::Cancelled => WalkError::Cancelled { done, total },
        };
        budget.check().map_err(stopped)?;
        let end = (block + plan.retrain_every).min(last);
        let block_forecasts = match model.forecast_ahead(
            Ahead {
                closes: &closes[..end],
                fit_at: block,
                at: block..end,
            },
            budget,
        ) {
            Ok(made) => made,
            Err(e) => {
                // A model stopped by the budget stops the whole walk.
                budget.check().map_err(stopped)?;
                return Err(e.into());
            }
        };
        if block_forecasts.len() != end - block || block_forecasts.iter().any(|f| !f.is_finite()) {
            return Err(ModelError::Internal(format!(
                "{} made {} forecasts (some not finite) for {} days",
                model.info().name,
                block_forecasts.len(),
                end - block
            ))
            .into());
        }
        out.extend(block_forecasts);
        refits += 1;
        block = end;
    }
    Ok((out, refits))
}

/// Backtests `model` over `days[start..]`, the earlier days serving as the
/// model's history, while `budget` lasts.
pub fn run(
    model: &dyn Run,
    days: &[(NaiveDate, f64)],
    start: usize,
    plan: &Plan,
    budget: &Budget,
) -> Result<WalkForward, WalkError> {
    let started = Instant::now();
    if days.len() < start + 2 {
        return Err(BacktestError::TooShort(days.len().saturating_sub(start)).into());
    }
    let closes: Vec<f64> = days.iter().map(|d| d.1).collect();
    let (made, refits) = forecasts(model, &closes, start, plan, budget)?;
    let mut signal: Vec<Option<f64>> = made.iter().copied().map(Some).collect();
    signal.push(None); // the last day's forecast has no day to trade
                       // Sized from every close given, the model's history included.
    let sizes = plan
        .target_volatility
        .map(|target| backtest::volatility_target_sizes(&closes, target, plan.periods_per_year));
    let performance = backtest::run_sized(
        &days[start..],
        &signal,
        sizes.as_deref().map(|s| &s[start..]),
        &plan.rules(),
    )?;
    Ok(WalkForward {
        performance,
        first_day: days[start].0,
        last_day: days[days.len() - 1].0,
        forecasts: made.len(),
        refits,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::backtest::tests::{alternating, regime_change};
    use crate::models::{InputType, Model, ModelInfo, ModelInput, Prediction, Registry};
    use serde_json::json;

    /// Forecasts that the last move reverses: a perfect model of an
    /// alternating series, from past closes only.
    struct Reversal {
        info: ModelInfo,
    }

    impl Reversal {
        fn new() -> Self {
            Reversal {
                info: ModelInfo {
                    name: "reversal",
                    category: "test",
                    description: "forecasts minus the last return",
                    input_type: InputType::PriceSeries,
                    output_type: "price_prediction",
                    complexity: "low",
                    latency: "low",
                },
            }
        }
    }

    #[derive(serde::Deserialize)]
    struct NoParams {}

    impl Model for Reversal {
        type Params = NoParams;
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn lookback(&self, _: &NoParams) -> usize {
            2
        }
        fn predict(
            &self,
            _: &ModelInput,
            _: &NoParams,
            _: &Budget,
        ) -> Result<Prediction, ModelError> {
            unreachable!("backtests call forecast_ahead")
        }
        fn forecast_ahead(
            &self,
            Ahead { closes, fit_at, at }: Ahead<'_>,
            _: &NoParams,
            _: &Budget,
        ) -> Result<Vec<f64>, ModelError> {
            assert_eq!(closes.len(), at.end, "handed closes past the block");
            assert_eq!(fit_at, at.start);
            Ok(at.map(|t| -(closes[t] / closes[t - 1] - 1.0)).collect())
        }
    }

    /// Always forecasts a rise, from any closes.
    struct AlwaysLong {
        info: ModelInfo,
    }

    impl Model for AlwaysLong {
        type Params = NoParams;
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn lookback(&self, _: &NoParams) -> usize {
            2
        }
        fn predict(
            &self,
            _: &ModelInput,
            _: &NoParams,
            _: &Budget,
        ) -> Result<Prediction, ModelError> {
            unreachable!("backtests call forecast_ahead")
        }
        fn forecast_ahead(
            &self,
            Ahead { at, .. }: Ahead<'_>,
            _: &NoParams,
            _: &Budget,
        ) -> Result<Vec<f64>, ModelError> {
            Ok(at.map(|_| 0.01).collect())
        }
    }

    /// The reversal model, with no params.
    fn reversal() -> std::sync::Arc<dyn Run> {
        let mut registry = Registry::default();
        registry.register(Reversal::new());
        registry
            .get("reversal")
            .unwrap()
            .configure(&RawParams::new())
            .unwrap()
    }

    fn always_long() -> std::sync::Arc<dyn Run> {
        let mut registry = Registry::default();
        registry.register(AlwaysLong {
            info: ModelInfo {
                name: "always_long",
                ..Reversal::new().info
            },
        });
        registry
            .get("always_long")
            .unwrap()
            .configure(&RawParams::new())
            .unwrap()
    }

    fn plan_of(v: serde_json::Value) -> Plan {
        Plan::split(v.as_object().unwrap()).unwrap().0
    }

    #[test]
    fn a_volatility_target_holds_the_strategys_volatility_near_it() {
        // 400 days at 0.5 % a day (7.9 % a year), then 400 at 3 % (47.6 %).
        let days = regime_change(400, 0.005, 0.03);
        let start = TARGET_HISTORY;
        let walk = |plan: &Plan| {
            run(
                always_long().as_ref(),
                &days,
                start,
                plan,
                &Budget::unlimited(),
            )
            .unwrap()
            .performance
        };
        let unit = walk(&Plan::default());
        let target = 0.15;
        let sized = walk(&plan_of(json!({"target_volatility": target})));
        let (miss_sized, miss_unit) = (
            (sized.annual_volatility - target).abs(),
            (unit.annual_volatility - target).abs(),
        );
        let realised = format!(
            "target {target}: realised {:.4} sized, {:.4} one unit",
            sized.annual_volatility, unit.annual_volatility
        );
        assert!(miss_sized < miss_unit, "{realised}");
        assert!(miss_sized < 0.03, "{realised}");
        // Unsized, always long is buy-and-hold less one entry.
        assert_eq!((unit.trades, unit.turnover), (1, 1.0));
        // Sized, the calm half is levered towards the cap, and each day's
        // resize is traded (except on days held at the cap).
        assert!(
            sized.turnover > 2.0 && sized.trades > 400,
            "{}",
            sized.trades
        );
    }

    #[test]
    fn without_a_target_the_plan_and_the_figures_are_unchanged() {
        let days = alternating(60);
        let defaults = plan_of(json!({}));
        assert_eq!(defaults, Plan::default());
        assert_eq!(defaults.target_volatility, None);
        // The answered plan (and the backtest cache's key) has no
        // target, and says the calendar the figures are annualised with.
        assert_eq!(
            serde_json::to_value(&defaults).unwrap(),
            json!({"retrain_every": 21, "threshold": 0.0, "allow_short": false, "transaction_cost_bps": 10.0, "periods_per_year": 252.0})
        );
        // One unit long on each forecast rise: the figures of the unsized
        // backtest of the same signal, to the bit.
        let w = run(
            reversal().as_ref(),
            &days,
            1,
            &defaults,
            &Budget::unlimited(),
        )
        .unwrap();
        let closes: Vec<f64> = days.iter().map(|d| d.1).collect();
        let mut signal: Vec<Option<f64>> = (1..days.len() - 1)
            .map(|t| Some(-(closes[t] / closes[t - 1] - 1.0)))
            .collect();
        signal.push(None);
        let unit = backtest::run(&days[1..], &signal, &defaults.rules()).unwrap();
        assert_eq!(w.performance, unit);
        // 29 rises held, 29 entries and 28 exits (the last day is held).
        let expected = (1.1f64 - 0.001).powi(29) * (1.0f64 - 0.001).powi(28) - 1.0;
        assert!((w.performance.total_return - expected).abs() < 1e-12);
        assert_eq!((w.performance.trades, w.performance.turnover), (57, 57.0));
        // With a target the same signal is sized, so the figures move.
        let sized = plan_of(json!({"target_volatility": 0.15}));
        let s = run(reversal().as_ref(), &days, 1, &sized, &Budget::unlimited()).unwrap();
        assert_ne!(s.performance.total_return, w.performance.total_return);
        assert_eq!(
            serde_json::to_value(&sized).unwrap()["target_volatility"],
            0.15
        );
    }

    #[test]
    fn a_model_of_the_pattern_captures_every_rise_net_of_costs() {
        // Days 1..=10 traded (day 0 is history). Day 1 rose, so the model is
        // flat over day 2's fall, long over day 3's rise, and so on: four
        // rises held, four entries and four exits at 10 bps each.
        let days = alternating(11);
        let plan = Plan {
            retrain_every: 3,
            ..Plan::default()
        };
        let w = run(reversal().as_ref(), &days, 1, &plan, &Budget::unlimited()).unwrap();
        let expected = (1.1f64 - 0.001).powi(4) * (1.0f64 - 0.001).powi(4) - 1.0;
        assert!(
            (w.performance.total_return - expected).abs() < 1e-12,
            "{} vs {expected}",
            w.performance.total_return
        );
        assert_eq!(w.performance.trades, 8);
        assert_eq!(w.performance.hit_rate, 1.0);
        assert_eq!((w.forecasts, w.refits), (9, 3));
        // Shorting the falls too: every day after the first is captured.
        let short = Plan {
            allow_short: true,
            transaction_cost_bps: 0.0,
            ..plan
        };
        let w = run(reversal().as_ref(), &days, 1, &short, &Budget::unlimited()).unwrap();
        assert!((w.performance.total_return - (1.1f64.powi(9) - 1.0)).abs() < 1e-9);
    }

    #[test]
    fn an_exhausted_budget_stops_the_walk() {
        let days = alternating(50);
        let plan = Plan {
            retrain_every: 1,
            ..Plan::default()
        };
        let err = run(
            reversal().as_ref(),
            &days,
            1,
            &plan,
            &Budget::unlimited().within(std::time::Duration::ZERO),
        )
        .unwrap_err();
        assert!(matches!(err, WalkError::OutOfTime { .. }), "{err}");
        let (cancelled, guard) = Budget::cancellable();
        drop(guard);
        let err = run(reversal().as_ref(), &days, 1, &plan, &cancelled).unwrap_err();
        assert!(matches!(err, WalkError::Cancelled { done: 0, .. }), "{err}");
    }

    #[test]
    fn bad_plans_are_refused() {
        let split = |v: serde_json::Value| Plan::split(v.as_object().unwrap());
        for bad in [
            json!({"retrain_every": 0}),
            json!({"threshold": -0.1}),
            json!({"transaction_cost_bps": "ten"}),
            json!({"allow_short": 1}),
            json!({"target_volatility": 0}),
            json!({"target_volatility": -0.1}),
            json!({"target_volatility": 2.5}),
            json!({"target_volatility": "15%"}),
        ] {
            assert!(split(bad.clone()).is_err(), "{bad}");
        }
        assert!(Plan::check_horizon(Horizon::new(5).unwrap()).is_err());
        let (p, rest) = split(json!({"allow_short": true, "retrain_every": 5, "seed": 3})).unwrap();
        assert!(p.allow_short && p.retrain_every == 5);
        assert_eq!(p.rules().cost, 0.001);
        let err = split(json!({"target_volatility": 0})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "params.target_volatility must be a number from 0 (excluded) to 2, got 0"
        );
        for ok in [1e-3, 0.15, 2.0] {
            let (p, _) = split(json!({ "target_volatility": ok })).unwrap();
            assert_eq!(p.target_volatility, Some(ok));
        }
        assert_eq!(
            rest.keys().collect::<Vec<_>>(),
            ["seed"],
            "the rest is the model's"
        );
    }

    /// Shuffles the closes after `cut` (a deterministic permutation).
    fn shuffled_after(closes: &[f64], cut: usize) -> Vec<f64> {
        let mut out = closes.to_vec();
        let tail = &mut out[cut + 1..];
        tail.reverse();
        tail.rotate_left(tail.len() / 3);
        out
    }

    #[test]
    fn no_served_predictor_sees_past_the_day_it_forecasts_from() {
        let table = crate::market::dataset::embedded().unwrap();
        let closes: Vec<f64> = table["AAPL"].iter().map(|b| b.close).collect();
        let closes = &closes[closes.len() - 330..];
        let start = 270;
        let plan = Plan {
            retrain_every: 21,
            ..Plan::default()
        };
        let registry = crate::models::served();
        for name in [
            "lstm_predictor",
            "transformer_predictor",
            "adaptive_ensemble",
        ] {
            let model = registry
                .get(name)
                .unwrap()
                .configure(&RawParams::new())
                .unwrap();
            let (base, _) =
                forecasts(model.as_ref(), closes, start, &plan, &Budget::unlimited()).unwrap();
            // Cut inside the first block and at the end of it: the forecasts
            // up to the cut never change.
            for cut in [start + 7, start + 20] {
                let moved = shuffled_after(closes, cut);
                assert_ne!(moved[cut + 1..], closes[cut + 1..]);
                let (after, _) =
                    forecasts(model.as_ref(), &moved, start, &plan, &Budget::unlimited()).unwrap();
                let upto = cut - start + 1;
                assert_eq!(base[..upto], after[..upto], "{name} at cut {cut}");
                assert_ne!(
                    base[upto..],
                    after[upto..],
                    "{name}: the shuffle changed nothing"
                );
            }
        }
    }
}
