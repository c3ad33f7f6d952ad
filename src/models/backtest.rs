//! Trading a forecaster's signal: positions from out-of-sample forecasts,
//! transaction costs on position changes, and the performance figures of
//! the strategy against buy-and-hold of the same stock.
//!
//! The forecast made with closes up to day `t` sets the position held over
//! day `t + 1`'s return, never over its own day's.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

/// Trading days a year, for annualising.
const TRADING_DAYS: f64 = 252.0;

/// How a forecast becomes a position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Long when the forecast return exceeds this (short below its
    /// negative when shorting is allowed); otherwise flat.
    pub threshold: f64,
    pub allow_short: bool,
    /// Cost of changing the position by 1 (all in or all out), as a
    /// fraction: 10 bps = 0.001.
    pub cost: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            threshold: 0.0,
            allow_short: false,
            cost: 0.001,
        }
    }
}

impl Rules {
    /// The position (-1, 0 or 1) a forecast return calls for.
    pub fn position(&self, forecast: f64) -> f64 {
        if forecast > self.threshold {
            1.0
        } else if self.allow_short && forecast < -self.threshold {
            -1.0
        } else {
            0.0
        }
    }
}

/// One calendar month's compounded return.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MonthlyReturn {
    /// `YYYY-MM`.
    pub date: String,
    #[serde(rename = "return")]
    pub value: f64,
}

/// The strategy's figures (fractions; volatility and Sharpe annualised).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Performance {
    pub total_return: f64,
    pub annual_volatility: f64,
    pub sharpe_ratio: f64,
    /// Largest fall from a peak of the equity curve, as a positive fraction.
    pub max_drawdown: f64,
    /// Share of days in the market whose return had the position's sign.
    pub hit_rate: f64,
    /// Sum of absolute position changes (1 = all in or all out once).
    pub turnover: f64,
    /// Days on which the position changed.
    pub trades: usize,
    pub days: usize,
    pub monthly_returns: Vec<MonthlyReturn>,
    pub benchmark_total_return: f64,
    pub benchmark_monthly_returns: Vec<MonthlyReturn>,
    /// Buy-and-hold of the same stock over the same days.
    pub benchmark: Stats,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BacktestError {
    #[error("a backtest needs at least 2 days, got {0}")]
    TooShort(usize),
    #[error("{forecasts} forecasts for {days} days: one per day is needed")]
    Mismatch { forecasts: usize, days: usize },
}

/// Trades `forecasts[t]` (made with closes up to `days[t]`, `None` when the
/// model had too little history) over the return from `days[t]` to
/// `days[t + 1]`. The last day's forecast has no next day and is ignored.
pub fn run(
    days: &[(NaiveDate, f64)],
    forecasts: &[Option<f64>],
    rules: &Rules,
) -> Result<Performance, BacktestError> {
    if days.len() < 2 {
        return Err(BacktestError::TooShort(days.len()));
    }
    if forecasts.len() != days.len() {
        return Err(BacktestError::Mismatch {
            forecasts: forecasts.len(),
            days: days.len(),
        });
    }
    let mut strategy = Vec::with_capacity(days.len() - 1);
    let mut benchmark = Vec::with_capacity(days.len() - 1);
    let (mut held, mut turnover, mut trades, mut in_market, mut hits) = (0.0, 0.0, 0, 0, 0);
    for t in 0..days.len() - 1 {
        let position = forecasts[t].map_or(0.0, |f| rules.position(f));
        let change = (position - held).abs();
        if change > 0.0 {
            trades += 1;
            turnover += change;
        }
        held = position;
        let ret = days[t + 1].1 / days[t].1 - 1.0;
        if position != 0.0 {
            in_market += 1;
            if position * ret > 0.0 {
                hits += 1;
            }
        }
        strategy.push((days[t + 1].0, position * ret - rules.cost * change));
        benchmark.push((days[t + 1].0, ret));
    }
    let hit_rate = if in_market > 0 {
        hits as f64 / in_market as f64
    } else {
        0.0
    };
    Ok(Performance::of(
        &strategy,
        &benchmark,
        Trading {
            hit_rate,
            turnover,
            trades,
        },
    ))
}

/// How a strategy traded, besides what it returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trading {
    pub hit_rate: f64,
    pub turnover: f64,
    pub trades: usize,
}

impl Performance {
    /// The figures of a strategy's and its benchmark's dated daily returns.
    pub fn of(
        strategy: &[(NaiveDate, f64)],
        benchmark: &[(NaiveDate, f64)],
        trading: Trading,
    ) -> Self {
        let daily: Vec<f64> = strategy.iter().map(|(_, r)| *r).collect();
        let stats = Stats::of(&daily);
        let benchmark_daily: Vec<f64> = benchmark.iter().map(|(_, r)| *r).collect();
        let benchmark_stats = Stats::of(&benchmark_daily);
        Performance {
            total_return: stats.total_return,
            annual_volatility: stats.annual_volatility,
            sharpe_ratio: stats.sharpe_ratio,
            max_drawdown: stats.max_drawdown,
            hit_rate: trading.hit_rate,
            turnover: trading.turnover,
            trades: trading.trades,
            days: daily.len(),
            monthly_returns: monthly(strategy),
            benchmark_total_return: benchmark_stats.total_return,
            benchmark_monthly_returns: monthly(benchmark),
            benchmark: benchmark_stats,
        }
    }
}

/// Figures of a daily return series (fractions; volatility and Sharpe
/// annualised over 252 days, Sharpe with a zero risk-free rate).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub total_return: f64,
    pub annual_volatility: f64,
    pub sharpe_ratio: f64,
    pub max_drawdown: f64,
}

impl Stats {
    pub fn of(daily: &[f64]) -> Self {
        let n = daily.len().max(1) as f64;
        let mean = daily.iter().sum::<f64>() / n;
        let sd = if daily.len() > 1 {
            (daily.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stats {
            total_return: compound(daily),
            annual_volatility: sd * TRADING_DAYS.sqrt(),
            sharpe_ratio: if sd > 0.0 {
                mean / sd * TRADING_DAYS.sqrt()
            } else {
                0.0
            },
            max_drawdown: max_drawdown(daily),
        }
    }
}

fn compound(returns: &[f64]) -> f64 {
    returns.iter().fold(1.0, |equity, r| equity * (1.0 + r)) - 1.0
}

fn max_drawdown(returns: &[f64]) -> f64 {
    let (mut equity, mut peak, mut worst) = (1.0f64, 1.0f64, 0.0f64);
    for r in returns {
        equity *= 1.0 + r;
        peak = peak.max(equity);
        worst = worst.max(1.0 - equity / peak);
    }
    worst
}

/// Daily returns compounded per calendar month, in date order.
fn monthly(daily: &[(NaiveDate, f64)]) -> Vec<MonthlyReturn> {
    let mut months: Vec<MonthlyReturn> = Vec::new();
    let mut current: Option<((i32, u32), f64)> = None;
    for (date, r) in daily {
        let key = (date.year(), date.month());
        match &mut current {
            Some((k, equity)) if *k == key => *equity *= 1.0 + r,
            _ => {
                if let Some(((y, m), equity)) = current.take() {
                    months.push(MonthlyReturn {
                        date: format!("{y:04}-{m:02}"),
                        value: equity - 1.0,
                    });
                }
                current = Some((key, 1.0 + r));
            }
        }
    }
    if let Some(((y, m), equity)) = current {
        months.push(MonthlyReturn {
            date: format!("{y:04}-{m:02}"),
            value: equity - 1.0,
        });
    }
    months
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Closes alternating +10 % and -10 % from 100, one a day from
    /// 2024-01-01.
    pub(crate) fn alternating(n: usize) -> Vec<(NaiveDate, f64)> {
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let mut close = 100.0;
        (0..n)
            .map(|i| {
                if i > 0 {
                    close *= if i % 2 == 1 { 1.1 } else { 0.9 };
                }
                (start + chrono::Days::new(i as u64), close)
            })
            .collect()
    }

    /// The forecast a perfect model makes at each day: the next return.
    fn perfect(days: &[(NaiveDate, f64)]) -> Vec<Option<f64>> {
        (0..days.len())
            .map(|t| days.get(t + 1).map(|next| next.1 / days[t].1 - 1.0))
            .collect()
    }

    #[test]
    fn a_perfect_long_only_model_captures_every_rise_and_pays_each_switch() {
        let days = alternating(11); // 10 returns: 5 rises, 5 falls
        let rules = Rules::default();
        let p = run(&days, &perfect(&days), &rules).unwrap();
        // In on each rise, out on each fall: 5 entries and 5 exits.
        assert_eq!((p.trades, p.turnover), (10, 10.0));
        // Entering costs on the rise day, exiting on the fall day.
        let expected = (1.1f64 - 0.001).powi(5) * (1.0f64 - 0.001).powi(5) - 1.0;
        assert!(
            (p.total_return - expected).abs() < 1e-12,
            "{}",
            p.total_return
        );
        assert_eq!(p.hit_rate, 1.0);
        // Each exit costs 0.1 % just after a new peak.
        assert!((p.max_drawdown - 0.001).abs() < 1e-12, "{}", p.max_drawdown);
        // Buy-and-hold: 1.1^5 * 0.9^5 - 1.
        assert!((p.benchmark_total_return - (0.99f64.powi(5) - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn shorting_also_captures_the_falls() {
        let days = alternating(11);
        let rules = Rules {
            allow_short: true,
            cost: 0.0,
            ..Rules::default()
        };
        let p = run(&days, &perfect(&days), &rules).unwrap();
        assert!((p.total_return - (1.1f64.powi(10) - 1.0)).abs() < 1e-9);
        assert_eq!(p.max_drawdown, 0.0);
        // From flat to long once, then long <-> short nine times.
        assert_eq!((p.trades, p.turnover), (10, 19.0));
    }

    #[test]
    fn a_forecast_is_applied_to_the_next_days_return_only() {
        // One rise forecast, made at day 2: the strategy holds only over
        // day 2 -> 3 (+10 %), not over day 1 -> 2 (-10 %).
        let days = alternating(6);
        let mut forecasts = vec![None; 6];
        forecasts[2] = Some(0.05);
        let rules = Rules {
            cost: 0.0,
            ..Rules::default()
        };
        let p = run(&days, &forecasts, &rules).unwrap();
        assert!((p.total_return - 0.1).abs() < 1e-12, "{}", p.total_return);
        assert_eq!((p.trades, p.hit_rate), (2, 1.0));
    }

    #[test]
    fn months_compound_their_days_and_bad_input_is_refused() {
        let days = vec![
            (NaiveDate::from_ymd_opt(2024, 1, 30).unwrap(), 100.0),
            (NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(), 110.0),
            (NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(), 121.0),
            (NaiveDate::from_ymd_opt(2024, 2, 2).unwrap(), 108.9),
        ];
        let p = run(
            &days,
            &[Some(1.0); 4],
            &Rules {
                cost: 0.0,
                ..Rules::default()
            },
        )
        .unwrap();
        let months: Vec<(&str, f64)> = p
            .benchmark_monthly_returns
            .iter()
            .map(|m| (m.date.as_str(), m.value))
            .collect();
        assert_eq!(months[0].0, "2024-01");
        assert!((months[0].1 - 0.1).abs() < 1e-12);
        assert!((months[1].1 - (1.1 * 0.9 - 1.0)).abs() < 1e-12);
        assert_eq!(p.monthly_returns, p.benchmark_monthly_returns);
        assert_eq!(
            run(&days[..1], &[None], &Rules::default()),
            Err(BacktestError::TooShort(1))
        );
        assert!(run(&days, &[None], &Rules::default()).is_err());
    }
}
