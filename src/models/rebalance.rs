//! Backtests of an allocation: a portfolio of several assets set to an
//! allocator's target weights on every `every`-th trading day, from closes
//! up to that day only, its holdings drifting with prices in between, and
//! the turnover of each rebalance paying `cost`; against the equal-weight
//! portfolio rebalanced on the same days at the same cost.
//!
//! The first allocation is the starting position (neither side pays to get
//! in), so with one asset both sides are buy-and-hold of it.

use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use super::backtest::{Performance, Trading};
use super::budget::Budget;
use super::ModelError;

/// When and at what cost the portfolio is rebalanced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Schedule {
    /// Trading days between rebalances.
    pub every: usize,
    /// Cost of turning the whole portfolio over once (0.001 = 10 bps).
    pub cost: f64,
    /// Daily returns a year, for annualising (252 unless every asset is crypto).
    pub periods_per_year: f64,
}

/// A finished rebalancing backtest.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rebalanced {
    #[serde(flatten)]
    pub performance: Performance,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Rebalance days on which the allocator answered.
    pub rebalances: usize,
    /// Rebalance days on which it had no answer (holdings kept).
    pub skipped_rebalances: usize,
    /// The weights of the last allocation, in asset order.
    pub last_weights: Vec<f64>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RebalanceError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("a backtest needs at least 2 days after its start, got {0}")]
    TooShort(usize),
    #[error("closes of {assets} assets over {days} days are needed, one series per asset")]
    Misaligned { assets: usize, days: usize },
    #[error("the allocator gave {got} weights for {assets} assets")]
    BadWeights { got: usize, assets: usize },
    #[error("the allocator had no answer on the first rebalance day, {0}")]
    NoStart(NaiveDate),
}

/// A portfolio's holdings as weights of its value (the rest is cash).
struct Book {
    weights: Vec<f64>,
}

impl Book {
    /// Moves to `target`; the turnover traded.
    fn rebalance(&mut self, target: &[f64]) -> f64 {
        let turnover = self
            .weights
            .iter()
            .zip(target)
            .map(|(held, want)| (want - held).abs())
            .sum();
        self.weights.copy_from_slice(target);
        turnover
    }

    /// The day's return on the asset returns `r`, the holdings drifting.
    fn hold(&mut self, r: &[f64]) -> f64 {
        let cash = 1.0 - self.weights.iter().sum::<f64>();
        let grown: Vec<f64> = self
            .weights
            .iter()
            .zip(r)
            .map(|(w, r)| w * (1.0 + r))
            .collect();
        let total = cash + grown.iter().sum::<f64>();
        for (w, g) in self.weights.iter_mut().zip(&grown) {
            *w = if total > 0.0 { g / total } else { 0.0 };
        }
        total - 1.0
    }
}

/// Trades days `start..` of `closes` (one series per asset, aligned on
/// `dates`). On rebalance days `allocate(t)` gives target weights from
/// closes up to day `t` only, or `None` when it has no answer then.
pub fn run(
    dates: &[NaiveDate],
    closes: &[Vec<f64>],
    start: usize,
    schedule: Schedule,
    allocate: &mut dyn FnMut(usize) -> Result<Option<Vec<f64>>, ModelError>,
    budget: &Budget,
) -> Result<Rebalanced, RebalanceError> {
    let started = Instant::now();
    let (assets, days) = (closes.len(), dates.len());
    if assets == 0 || closes.iter().any(|c| c.len() != days) {
        return Err(RebalanceError::Misaligned { assets, days });
    }
    if days < start + 2 {
        return Err(RebalanceError::TooShort(days.saturating_sub(start)));
    }
    let every = schedule.every.max(1);
    let equal = vec![1.0 / assets as f64; assets];
    let (mut strategy, mut benchmark) = (
        Book {
            weights: vec![0.0; assets],
        },
        Book {
            weights: vec![0.0; assets],
        },
    );
    let (mut strategy_days, mut benchmark_days) = (Vec::new(), Vec::new());
    let (mut rebalances, mut skipped, mut trades, mut turnover) = (0, 0, 0, 0.0);
    let (mut in_market, mut up_days) = (0, 0);
    for t in start..days - 1 {
        let (mut cost, mut benchmark_cost) = (0.0, 0.0);
        if (t - start).is_multiple_of(every) {
            budget
                .check()
                .map_err(|why| ModelError::stopped("the allocation backtest", why))?;
            match allocate(t)? {
                Some(target) if target.len() != assets => {
                    return Err(RebalanceError::BadWeights {
                        got: target.len(),
                        assets,
                    })
                }
                Some(target) => {
                    let traded = strategy.rebalance(&target);
                    let benchmark_traded = benchmark.rebalance(&equal);
                    // The first allocation is where both start, free.
                    if t > start {
                        cost = schedule.cost * traded;
                        benchmark_cost = schedule.cost * benchmark_traded;
                        turnover += traded;
                        trades += usize::from(traded > 1e-12);
                    }
                    rebalances += 1;
                }
                None if t == start => return Err(RebalanceError::NoStart(dates[t])),
                None => skipped += 1,
            }
        }
        let r: Vec<f64> = closes.iter().map(|c| c[t + 1] / c[t] - 1.0).collect();
        let day = strategy.hold(&r) - cost;
        if strategy.weights.iter().sum::<f64>() > 0.0 {
            in_market += 1;
            up_days += usize::from(day > 0.0);
        }
        strategy_days.push((dates[t + 1], day));
        benchmark_days.push((dates[t + 1], benchmark.hold(&r) - benchmark_cost));
    }
    let trading = Trading {
        hit_rate: if in_market > 0 {
            up_days as f64 / in_market as f64
        } else {
            0.0
        },
        turnover,
        trades,
    };
    Ok(Rebalanced {
        performance: Performance::of(
            &strategy_days,
            &benchmark_days,
            trading,
            schedule.periods_per_year,
        ),
        first_day: dates[start],
        last_day: dates[days - 1],
        rebalances,
        skipped_rebalances: skipped,
        last_weights: strategy.weights,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(n: usize) -> Vec<NaiveDate> {
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        (0..n)
            .map(|i| start + chrono::Days::new(i as u64))
            .collect()
    }

    #[test]
    fn one_asset_fully_invested_is_buy_and_hold_on_both_sides() {
        let closes = vec![vec![100.0, 110.0, 99.0, 108.9]];
        let w = run(
            &dates(4),
            &closes,
            0,
            Schedule {
                every: 1,
                cost: 0.001,
                periods_per_year: 252.0,
            },
            &mut |_| Ok(Some(vec![1.0])),
            &Budget::unlimited(),
        )
        .unwrap();
        let p = &w.performance;
        assert!((p.total_return - 0.089).abs() < 1e-12, "{}", p.total_return);
        assert_eq!(p.total_return, p.benchmark_total_return);
        assert_eq!((p.trades, p.turnover), (0, 0.0), "nothing to trade");
        assert_eq!(w.rebalances, 3);
    }

    #[test]
    fn holdings_drift_between_rebalances_and_turnover_pays_the_cost() {
        // Asset a doubles on day 1, then nothing moves; b is flat.
        let closes = vec![vec![1.0, 2.0, 2.0, 2.0], vec![1.0, 1.0, 1.0, 1.0]];
        let w = run(
            &dates(4),
            &closes,
            0,
            Schedule {
                every: 2,
                cost: 0.01,
                periods_per_year: 252.0,
            },
            &mut |_| Ok(Some(vec![0.5, 0.5])),
            &Budget::unlimited(),
        )
        .unwrap();
        // Day 1: +50 %; the weights drift to 2/3, 1/3; day 2 rebalances
        // back to halves: turnover 1/3, cost 1/300 of the value.
        let p = &w.performance;
        assert!((p.turnover - 1.0 / 3.0).abs() < 1e-12, "{}", p.turnover);
        let expected = 1.5 * (1.0 - 0.01 / 3.0) - 1.0;
        assert!(
            (p.total_return - expected).abs() < 1e-12,
            "{}",
            p.total_return
        );
        assert_eq!(
            p.total_return, p.benchmark_total_return,
            "equal weight is the same here"
        );
        assert_eq!((w.rebalances, p.trades), (2, 1));
    }

    #[test]
    fn a_day_without_an_answer_keeps_the_holdings_and_is_counted() {
        let closes = vec![vec![1.0, 1.1, 1.2, 1.3], vec![1.0, 0.9, 0.8, 0.7]];
        let mut calls = 0;
        let w = run(
            &dates(4),
            &closes,
            0,
            Schedule {
                every: 1,
                cost: 0.0,
                periods_per_year: 252.0,
            },
            &mut |t| {
                calls += 1;
                Ok((t == 0).then(|| vec![1.0, 0.0]))
            },
            &Budget::unlimited(),
        )
        .unwrap();
        assert_eq!((calls, w.rebalances, w.skipped_rebalances), (3, 1, 2));
        assert!((w.performance.total_return - 0.3).abs() < 1e-12);
        let err = run(
            &dates(4),
            &closes,
            0,
            Schedule {
                every: 1,
                cost: 0.0,
                periods_per_year: 252.0,
            },
            &mut |_| Ok(None),
            &Budget::unlimited(),
        )
        .unwrap_err();
        assert!(matches!(err, RebalanceError::NoStart(_)), "{err}");
    }
}
