//! The backtest service: a served model walked forward over a stock's (or
//! several stocks') daily closes from the data layer. Predictors trade
//! their own next-day signal ([`walkforward`]); the optimiser's allocation
//! is rebalanced ([`rebalance`]). Backtests run on a blocking thread under
//! a gate (bounded concurrency and queue), within a time budget, are
//! cancelled when their request goes, and are kept for identical requests
//! on unchanged prices.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::input::{fetch_histories, on_shared_dates, provided_series, InputLimits};
use crate::error::ApiError;
use crate::market::calendar::Calendar;
use crate::market::{DataManager, Interval, Span};
use crate::models::fit_cache::{closes_fingerprint, FitCache};
use crate::models::rebalance::{self, RebalanceError, Rebalanced, Schedule};
use crate::models::walkforward::{self, Plan, WalkError, WalkForward};
use crate::models::{
    Allocation, Budget, InputType, ModelError, ModelInput, Prediction, PriceSeries, RawParams,
    Registry, Run,
};

/// A period the catalog page offers, in trading days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub name: &'static str,
    pub days: usize,
}

impl Period {
    const ALL: [Period; 4] = [
        Period {
            name: "3mo",
            days: 63,
        },
        Period {
            name: "6mo",
            days: 126,
        },
        Period {
            name: "1y",
            days: 252,
        },
        Period {
            name: "2y",
            days: 504,
        },
    ];

    pub fn parse(name: &str) -> Result<Period, ApiError> {
        Self::ALL
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                ApiError::invalid(format!("period {name:?} is not one of 3mo, 6mo, 1y, 2y"))
            })
    }
}

/// What a backtest is asked to test.
#[derive(Debug, Clone)]
pub struct BacktestRequest {
    pub model_id: String,
    pub symbols: Vec<String>,
    pub period: Period,
    /// The plan's params and the model's.
    pub params: RawParams,
}

/// A predictor's signal traded on one stock.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignalBacktest {
    #[serde(flatten)]
    #[schema(inline)]
    pub walk: WalkForward,
    pub plan: Plan,
    /// What was measured, in words.
    pub strategy: String,
}

/// How an allocation was rebalanced.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AllocationPlan {
    pub method: String,
    pub lookback_days: usize,
    pub retrain_every: usize,
    pub transaction_cost_bps: f64,
}

/// The optimiser's allocation rebalanced over several stocks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AllocationBacktest {
    #[serde(flatten)]
    #[schema(inline)]
    pub tested: Rebalanced,
    /// The last allocation, by symbol.
    pub weights: BTreeMap<String, f64>,
    pub plan: AllocationPlan,
    /// What was measured, in words.
    pub strategy: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BacktestResult {
    Signal(SignalBacktest),
    Allocation(AllocationBacktest),
}

/// A finished backtest and what it was made from.
#[derive(Debug)]
pub struct Tested {
    pub model: &'static str,
    pub result: Arc<BacktestResult>,
    /// An identical backtest on the same prices answered it.
    pub cached: bool,
    pub data_source: String,
    /// Age of the last-good prices used, when a provider was down.
    pub stale_age: Option<Duration>,
}

/// Limits of the backtest service, from `[backtest]` in the config.
#[derive(Debug, Clone, Copy)]
pub struct BacktestPolicy {
    pub time_budget: Duration,
    pub concurrency: usize,
    pub queue: usize,
    pub cache_capacity: u64,
}

pub struct BacktestService {
    registry: Arc<Registry>,
    market: Arc<DataManager>,
    done: Arc<FitCache<BacktestResult>>,
    time_budget: Duration,
    limits: InputLimits,
}

impl BacktestService {
    pub fn new(
        registry: Arc<Registry>,
        market: Arc<DataManager>,
        policy: BacktestPolicy,
        limits: InputLimits,
    ) -> Self {
        BacktestService {
            registry,
            market,
            done: Arc::new(FitCache::new(
                "backtests",
                policy.concurrency,
                policy.queue,
                policy.cache_capacity,
            )),
            time_budget: policy.time_budget,
            limits,
        }
    }

    pub async fn run(&self, request: BacktestRequest) -> Result<Tested, ApiError> {
        // The legacy page prefixes enhanced models with `enhanced_`.
        let model = self
            .registry
            .resolve(&request.model_id, Some("enhanced_"))
            .ok_or_else(|| {
                ApiError::new(
                    crate::error::ErrorCode::UnknownModel,
                    format!(
                        "unknown model {:?}; served models: [{}]",
                        request.model_id,
                        self.registry.names().join(", ")
                    ),
                )
            })?;
        if request.symbols.len() > self.limits.max_series {
            return Err(ApiError::invalid(format!(
                "{} symbols given, at most {}",
                request.symbols.len(),
                self.limits.max_series
            )));
        }
        // Figures annualise with the assets' calendar unless the request
        // sets periods_per_year; crypto alone counts a period's days in
        // calendar days (a 1y backtest is 365 of them).
        let calendar = Calendar::of(&request.symbols);
        let mut raw = request.params.clone();
        raw.entry("periods_per_year")
            .or_insert_with(|| calendar.periods_per_year().into());
        let (plan, params) = Plan::split(&raw)?;
        let period = Period {
            days: calendar.bars_for_trading_days(request.period.days),
            ..request.period
        };
        let run = model.configure(&params)?;
        match run.info().input_type {
            InputType::PriceSeries => {
                let [symbol] = request.symbols.as_slice() else {
                    return Err(ApiError::invalid(format!(
                        "{} forecasts one stock; name one stock_symbol, not {}",
                        run.info().name,
                        request.symbols.len()
                    )));
                };
                Plan::check_horizon(run.horizon())?;
                self.signal(run, symbol, period, &params, plan).await
            }
            InputType::MultiSeries => {
                self.allocation(run, &request.symbols, period, &params, plan)
                    .await
            }
        }
    }

    /// Runs `walk` on a blocking thread under the gate, from the cache when
    /// an identical backtest ran on the same prices (the bool says so).
    /// Dropping the request cancels the walk and frees its slot.
    async fn walk(
        &self,
        key: String,
        walk: impl FnOnce(&Budget) -> Result<BacktestResult, ModelError> + Send + 'static,
    ) -> Result<(Arc<BacktestResult>, bool), ApiError> {
        let (budget, _cancel_on_drop) = Budget::cancellable();
        let time_budget = self.time_budget;
        let done = Arc::clone(&self.done);
        let walked = tokio::task::spawn_blocking(move || {
            done.get_or_fit(key, &budget, || walk(&budget.within(time_budget)))
        })
        .await
        .map_err(|e| ApiError::internal(format!("a backtest panicked: {e}")))??;
        Ok(walked)
    }

    async fn signal(
        &self,
        run: Arc<dyn Run>,
        symbol: &str,
        period: Period,
        params: &RawParams,
        plan: Plan,
    ) -> Result<Tested, ApiError> {
        // The model's history before the first traded day (and the volatility
        // forecast's, when positions are sized), then the period.
        let days = period.days;
        let sizing = if plan.target_volatility.is_some() {
            walkforward::TARGET_HISTORY
        } else {
            0
        };
        let warm_up = run
            .lookback()
            .max(sizing)
            .min(self.limits.max_prices_per_series);
        let history = self
            .market
            .history(symbol, Span::LastBars(warm_up + days + 1), Interval::Daily)
            .await?;
        provided_series(symbol, &history.provider, history.closes())?;
        let bars: Vec<(NaiveDate, f64)> = history
            .candles()
            .iter()
            .map(|c| (c.date(), c.close))
            .collect();
        if bars.len() < days + 2 {
            return Err(ApiError::insufficient_data(format!(
                "a {} backtest needs {} daily closes of {symbol}, {} has {}",
                period.name,
                days + 1,
                history.provider,
                bars.len()
            )));
        }
        let start = bars.len() - days - 1;
        let closes: Vec<f64> = bars.iter().map(|b| b.1).collect();
        let model = run.info().name;
        let key = format!(
            "{model}|{}|{}|{}|{}",
            period.name,
            serde_json::Value::Object(with_plan(params, &plan)),
            bars[0].0,
            closes_fingerprint(&closes)
        );
        let sized = plan.target_volatility.map_or(String::new(), |target| {
            format!(
                "; sized to {target} annualised volatility by the EWMA (lambda 0.94) forecast from the closes up to each day, at most {}x",
                crate::models::backtest::MAX_LEVERAGE
            )
        });
        let strategy = format!(
            "{model}'s next-day forecast traded on {symbol}: long above {}{}, else flat{sized}; {} bps per change; refitted every {} trading days; benchmark: buy-and-hold",
            plan.threshold,
            if plan.allow_short { ", short below minus it" } else { "" },
            plan.transaction_cost_bps,
            plan.retrain_every
        );
        let (result, cached) = self
            .walk(key, move |budget| {
                let walk = walkforward::run(run.as_ref(), &bars, start, &plan, budget).map_err(
                    |e| match e {
                        WalkError::Model(e) => e,
                        WalkError::Backtest(e) => ModelError::InsufficientData(e.to_string()),
                        e @ WalkError::OutOfTime { .. } => ModelError::OutOfTime(e.to_string()),
                        e @ WalkError::Cancelled { .. } => ModelError::Cancelled(e.to_string()),
                    },
                )?;
                Ok(BacktestResult::Signal(SignalBacktest {
                    walk,
                    plan,
                    strategy,
                }))
            })
            .await?;
        Ok(Tested {
            model,
            result,
            cached,
            data_source: history.provider,
            stale_age: history.stale_age,
        })
    }

    /// The optimiser's allocation of `symbols` rebalanced every
    /// `plan.retrain_every` days from the run's lookback of closes before,
    /// on the dates every symbol has; with one symbol, buy-and-hold of it.
    async fn allocation(
        &self,
        run: Arc<dyn Run>,
        symbols: &[String],
        period: Period,
        params: &RawParams,
        plan: Plan,
    ) -> Result<Tested, ApiError> {
        if plan.target_volatility.is_some() {
            return Err(ApiError::invalid(
                "params.target_volatility sizes a predictor's signal; the optimiser's backtest holds fully invested weights and does not take it",
            ));
        }
        let days = period.days;
        let lookback = run.lookback().clamp(2, self.limits.max_prices_per_series);
        let histories = fetch_histories(&self.market, symbols, lookback + days + 1).await?;
        let (dates, closes) = on_shared_dates(&histories)?;
        let needed = if symbols.len() == 1 {
            days + 1
        } else {
            days + 1 + symbols.len() + 2
        };
        if dates.len() < needed {
            return Err(ApiError::insufficient_data(format!(
                "a {} backtest of {} needs {needed} daily closes on dates they all share, they share {}",
                period.name,
                symbols.join(", "),
                dates.len()
            )));
        }
        let start = dates.len() - days - 1;
        let fingerprint: Vec<f64> = closes.iter().flatten().copied().collect();
        let key = format!(
            "{}|{}|{}|{}|{}|{}",
            run.info().name,
            symbols.join(","),
            period.name,
            serde_json::Value::Object(with_plan(params, &plan)),
            dates[0],
            closes_fingerprint(&fingerprint)
        );
        let method = params
            .get("method")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("max_sharpe")
            .to_string();
        let strategy = if symbols.len() == 1 {
            format!(
                "buy and hold: with one stock ({}) the optimiser can only invest fully in it",
                symbols[0]
            )
        } else {
            format!(
                "{method} weights of {} from the {lookback} closes before each rebalance, every {} trading days, {} bps on turnover, holdings drifting in between; benchmark: equal weight rebalanced on the same days at the same cost",
                symbols.join(", "),
                plan.retrain_every,
                plan.transaction_cost_bps
            )
        };
        let allocation_plan = AllocationPlan {
            method,
            lookback_days: lookback,
            retrain_every: plan.retrain_every,
            transaction_cost_bps: plan.transaction_cost_bps,
        };
        let schedule = Schedule {
            every: plan.retrain_every,
            cost: plan.transaction_cost_bps / 10_000.0,
            periods_per_year: plan.periods_per_year,
        };
        let names = symbols.to_vec();
        let model = run.info().name;
        let (result, cached) = self
            .walk(key, move |budget| {
                let mut allocate =
                    |t: usize| allocate_at(run.as_ref(), &names, &closes, t, lookback, budget);
                let tested =
                    rebalance::run(&dates, &closes, start, schedule, &mut allocate, budget)
                        .map_err(|e| match e {
                            RebalanceError::Model(e) => e,
                            other => ModelError::InsufficientData(other.to_string()),
                        })?;
                Ok(BacktestResult::Allocation(AllocationBacktest {
                    weights: names
                        .iter()
                        .cloned()
                        .zip(tested.last_weights.iter().copied())
                        .collect(),
                    tested,
                    plan: allocation_plan,
                    strategy,
                }))
            })
            .await?;
        let mut providers: Vec<&str> = histories.iter().map(|(_, h)| h.provider.as_str()).collect();
        providers.dedup();
        Ok(Tested {
            model,
            result,
            cached,
            data_source: providers.join(","),
            stale_age: histories.iter().filter_map(|(_, h)| h.stale_age).max(),
        })
    }
}

/// The model's params with the plan's, as one cache key part.
fn with_plan(params: &RawParams, plan: &Plan) -> RawParams {
    let mut all = params.clone();
    if let Ok(serde_json::Value::Object(plan)) = serde_json::to_value(plan) {
        all.extend(plan);
    }
    all
}

/// The allocation on day `t` from the `lookback` closes up to it; `None`
/// when the method has no portfolio that day (e.g. nothing beats the
/// risk-free rate, or a GARCH fit of `covariance: "garch"` failed on that
/// window), so the holdings are kept.
fn allocate_at(
    run: &dyn Run,
    names: &[String],
    closes: &[Vec<f64>],
    t: usize,
    lookback: usize,
    budget: &Budget,
) -> Result<Option<Vec<f64>>, ModelError> {
    if names.len() == 1 {
        return Ok(Some(vec![1.0]));
    }
    let from = (t + 1).saturating_sub(lookback);
    let assets = names
        .iter()
        .zip(closes)
        .map(|(name, c)| {
            PriceSeries::new(c[from..=t].to_vec())
                .map(|s| (name.clone(), s))
                .map_err(|e| ModelError::InvalidInput(format!("{name}{e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    match run.predict(&ModelInput::Assets(assets), budget) {
        Ok(Prediction::Allocation(Allocation::Optimised(a))) => Ok(Some(
            names
                .iter()
                .map(|n| a.allocation.get(n).copied().unwrap_or(0.0))
                .collect(),
        )),
        Ok(_) => Err(ModelError::Internal(
            "the optimiser gave no allocation".into(),
        )),
        Err(ModelError::Infeasible(_) | ModelError::InsufficientData(_) | ModelError::Unfit(_)) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebalance_whose_garch_fit_fails_keeps_the_holdings() {
        let mut registry = Registry::default();
        registry.register(crate::models::optimizer::PortfolioOptimizer::default());
        let params = serde_json::json!({"covariance": "garch", "method": "min_variance"});
        let run = registry
            .get(crate::models::optimizer::NAME)
            .unwrap()
            .configure(params.as_object().unwrap())
            .unwrap();
        let table = crate::market::dataset::embedded().unwrap();
        let aapl: Vec<f64> = table["AAPL"].iter().map(|b| b.close).collect();
        let aapl = aapl[aapl.len() - 300..].to_vec();
        // KO trades at 42 until day 200, then moves with AAPL.
        let ko: Vec<f64> = (0..300)
            .map(|t| {
                if t <= 200 {
                    42.0
                } else {
                    42.0 * aapl[t] / aapl[200]
                }
            })
            .collect();
        let names = ["AAPL".to_string(), "KO".to_string()];
        let closes = vec![aapl, ko];
        let budget = Budget::unlimited();
        let at = |t| allocate_at(run.as_ref(), &names, &closes, t, 150, &budget);
        assert_eq!(at(199).unwrap(), None, "KO never moved in the window");
        let weights = at(299).unwrap().expect("both move in this window");
        assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}
