//! Trading a forecaster's signal: positions from out-of-sample forecasts,
//! transaction costs on position changes, and the performance figures of
//! the strategy against buy-and-hold of the same stock.
//!
//! The forecast made with closes up to day `t` sets the position held over
//! day `t + 1`'s return, never over its own day's. Positions are the
//! signal's sign (-1, 0 or 1), optionally sized to a volatility target
//! ([`volatility_target_sizes`]).

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::volatility::baselines::{Ewma, REALISED_WINDOW, RISKMETRICS_LAMBDA};

use crate::market::calendar::EQUITY_PERIODS_PER_YEAR;

/// The largest size a volatility target may give a position: twice the
/// capital, long or short, however calm the stock.
pub const MAX_LEVERAGE: f64 = 2.0;

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
    /// Daily bars a year of the traded asset's calendar, for annualising
    /// (252 for a stock, 365 for crypto).
    pub periods_per_year: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            threshold: 0.0,
            allow_short: false,
            cost: 0.001,
            periods_per_year: EQUITY_PERIODS_PER_YEAR,
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
    /// Daily returns a year that volatility and Sharpe are annualised
    /// with: 252 for stocks (or a mix holding any), 365 for crypto.
    pub periods_per_year: f64,
    /// The value of 1 invested in the strategy and in the benchmark at the
    /// close of each day, the first day's close before any return.
    pub equity_curve: Vec<EquityPoint>,
}

/// One day of the equity curves.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EquityPoint {
    pub date: NaiveDate,
    pub strategy: f64,
    pub benchmark: f64,
}

/// Both curves compounded from 1, dated by `strategy`'s days (the
/// benchmark's are the same days).
fn equity_curve(strategy: &[(NaiveDate, f64)], benchmark: &[(NaiveDate, f64)]) -> Vec<EquityPoint> {
    let (mut s, mut b) = (1.0, 1.0);
    strategy
        .iter()
        .zip(benchmark)
        .map(|((date, rs), (_, rb))| {
            s *= 1.0 + rs;
            b *= 1.0 + rb;
            EquityPoint {
                date: *date,
                strategy: s,
                benchmark: b,
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BacktestError {
    #[error("a backtest needs at least 2 days, got {0}")]
    TooShort(usize),
    #[error("{forecasts} forecasts for {days} days: one per day is needed")]
    Mismatch { forecasts: usize, days: usize },
    #[error("{sizes} position sizes for {days} days: one per day is needed")]
    SizesMismatch { sizes: usize, days: usize },
}

/// The size of each day's position that aims at `target` annualised
/// volatility: `min(MAX_LEVERAGE, target / σₜ)`, where `σₜ` is RiskMetrics'
/// EWMA (λ = 0.94, [`Ewma`]) forecast of the volatility of day `t + 1`'s
/// return made from the returns up to day `t` only (`closes[..=t]`),
/// annualised by `√periods_per_year`. The EWMA is seeded with the realised variance of
/// the first [`REALISED_WINDOW`] returns, so a day with fewer returns
/// behind it has no forecast and size 0 (flat). A stock that has not moved
/// has `σₜ = 0` and gets the largest size.
pub fn volatility_target_sizes(closes: &[f64], target: f64, periods_per_year: f64) -> Vec<f64> {
    let mut sizes = vec![0.0; closes.len()];
    // Fractions: the recursion is the same in any unit of return.
    let returns: Vec<f64> = closes.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let Some(seed) = returns.get(..REALISED_WINDOW) else {
        return sizes;
    };
    let Ok(mut ewma) = Ewma::seeded(seed, RISKMETRICS_LAMBDA) else {
        return sizes;
    };
    for (t, size) in sizes.iter_mut().enumerate().skip(REALISED_WINDOW) {
        // returns[t - 1] is the return into day t, the newest one known then.
        if t > REALISED_WINDOW {
            ewma.update(returns[t - 1]);
        }
        let sigma = ewma.variance().max(0.0).sqrt() * periods_per_year.sqrt();
        *size = (target / sigma).min(MAX_LEVERAGE);
    }
    sizes
}

/// The position held over day `t + 1` for each day `t`: the sign
/// [`Rules::position`] gives `forecasts[t]` (0 without a forecast), times
/// `sizes[t]` when positions are sized.
pub fn positions(forecasts: &[Option<f64>], sizes: Option<&[f64]>, rules: &Rules) -> Vec<f64> {
    forecasts
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let sign = f.map_or(0.0, |f| rules.position(f));
            match sizes {
                Some(sizes) if sign != 0.0 => sign * sizes[t],
                _ => sign,
            }
        })
        .collect()
}

/// Trades `forecasts[t]` (made with closes up to `days[t]`, `None` when the
/// model had too little history) over the return from `days[t]` to
/// `days[t + 1]`, one unit at a time. The last day's forecast has no next
/// day and is ignored.
pub fn run(
    days: &[(NaiveDate, f64)],
    forecasts: &[Option<f64>],
    rules: &Rules,
) -> Result<Performance, BacktestError> {
    run_sized(days, forecasts, None, rules)
}

/// [`run`] with each day's position scaled by `sizes[t]` (known at day
/// `t`, e.g. [`volatility_target_sizes`]); `None` trades one unit. Costs
/// are paid on the absolute change of the position, so resizing costs too.
pub fn run_sized(
    days: &[(NaiveDate, f64)],
    forecasts: &[Option<f64>],
    sizes: Option<&[f64]>,
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
    if let Some(sizes) = sizes.filter(|s| s.len() != days.len()) {
        return Err(BacktestError::SizesMismatch {
            sizes: sizes.len(),
            days: days.len(),
        });
    }
    let held_at = positions(forecasts, sizes, rules);
    let mut strategy = Vec::with_capacity(days.len() - 1);
    let mut benchmark = Vec::with_capacity(days.len() - 1);
    let (mut held, mut turnover, mut trades, mut in_market, mut hits) = (0.0, 0.0, 0, 0, 0);
    for t in 0..days.len() - 1 {
        let position = held_at[t];
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
        rules.periods_per_year,
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
    /// The figures of a strategy's and its benchmark's dated daily
    /// returns, annualised with `periods_per_year`.
    pub fn of(
        strategy: &[(NaiveDate, f64)],
        benchmark: &[(NaiveDate, f64)],
        trading: Trading,
        periods_per_year: f64,
    ) -> Self {
        let daily: Vec<f64> = strategy.iter().map(|(_, r)| *r).collect();
        let stats = Stats::of(&daily, periods_per_year);
        let benchmark_daily: Vec<f64> = benchmark.iter().map(|(_, r)| *r).collect();
        let benchmark_stats = Stats::of(&benchmark_daily, periods_per_year);
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
            periods_per_year,
            equity_curve: equity_curve(strategy, benchmark),
        }
    }
}

/// Figures of a daily return series (fractions; volatility and Sharpe
/// annualised over the calendar's periods a year, Sharpe with a zero
/// risk-free rate).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub total_return: f64,
    pub annual_volatility: f64,
    pub sharpe_ratio: f64,
    pub max_drawdown: f64,
}

impl Stats {
    pub fn of(daily: &[f64], periods_per_year: f64) -> Self {
        let n = daily.len().max(1) as f64;
        let mean = daily.iter().sum::<f64>() / n;
        let sd = if daily.len() > 1 {
            (daily.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stats {
            total_return: compound(daily),
            annual_volatility: sd * periods_per_year.sqrt(),
            sharpe_ratio: if sd > 0.0 {
                mean / sd * periods_per_year.sqrt()
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

    /// Closes from 100 whose daily returns are normal with sd `calm` for
    /// the first `n` days, then `wild` for `n` more (a seeded Box-Muller
    /// draw), one a day from 2024-01-01.
    pub(crate) fn regime_change(n: usize, calm: f64, wild: f64) -> Vec<(NaiveDate, f64)> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let mut close = 100.0;
        (0..2 * n + 1)
            .map(|i| {
                if i > 0 {
                    let (u, v): (f64, f64) = (rng.random(), rng.random());
                    let z = (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                    close *= 1.0 + z * if i <= n { calm } else { wild };
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

    #[test]
    fn target_sizes_use_the_ewma_of_past_returns_only_and_are_capped() {
        let closes: Vec<f64> = regime_change(150, 0.01, 0.03).iter().map(|d| d.1).collect();
        let sizes = volatility_target_sizes(&closes, 0.15, 252.0);
        assert_eq!(sizes.len(), closes.len());
        // No forecast before 21 returns: flat.
        assert!(sizes[..REALISED_WINDOW].iter().all(|s| *s == 0.0));
        // Each size from the EWMA of the returns into days 1..=t, worked out
        // afresh for that day.
        let returns: Vec<f64> = closes.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        for t in [REALISED_WINDOW, 40, 150, 151, 300] {
            let ewma = Ewma::seeded(&returns[..t], RISKMETRICS_LAMBDA).unwrap();
            let sigma = ewma.variance().sqrt() * 252f64.sqrt();
            let expected = (0.15 / sigma).min(MAX_LEVERAGE);
            assert!((sizes[t] - expected).abs() < 1e-12, "day {t}");
        }
        // Calm days: 1 % a day is 15.9 % a year, about one unit; wild: a third.
        assert!((0.7..1.3).contains(&sizes[140]), "{}", sizes[140]);
        assert!((0.2..0.5).contains(&sizes[300]), "{}", sizes[300]);
        // A stock that does not move is sized at the cap, not at infinity.
        let flat = volatility_target_sizes(&[50.0; 40], 0.15, 252.0);
        assert_eq!(
            flat[REALISED_WINDOW..],
            [MAX_LEVERAGE; 40 - REALISED_WINDOW]
        );
        assert_eq!(
            volatility_target_sizes(&closes[..REALISED_WINDOW], 0.1, 252.0),
            [0.0; 21]
        );
    }

    #[test]
    fn todays_sized_position_does_not_see_a_later_close() {
        let closes: Vec<f64> = regime_change(100, 0.01, 0.02).iter().map(|d| d.1).collect();
        let always_long = vec![Some(0.01); closes.len()];
        let rules = Rules::default();
        let base = positions(
            &always_long,
            Some(&volatility_target_sizes(&closes, 0.15, 252.0)),
            &rules,
        );
        for k in [REALISED_WINDOW + 1, 60, 150, 200] {
            // Close k is after day k - 1: days up to k - 1 keep their
            // positions; day k, which knows close k, changes.
            let mut moved = closes.clone();
            for c in &mut moved[k..] {
                *c *= 1.3;
            }
            moved[k] *= 1.2;
            let after = positions(
                &always_long,
                Some(&volatility_target_sizes(&moved, 0.15, 252.0)),
                &rules,
            );
            assert_eq!(base[..k], after[..k], "a change at close {k}");
            assert_ne!(base[k], after[k], "close {k} is known on day {k}");
        }
    }

    #[test]
    fn sized_positions_pay_costs_on_every_resize() {
        let days = regime_change(40, 0.01, 0.03);
        let long = vec![Some(0.01); days.len()];
        let sizes =
            volatility_target_sizes(&days.iter().map(|d| d.1).collect::<Vec<_>>(), 0.2, 252.0);
        let p = run_sized(&days, &long, Some(&sizes), &Rules::default()).unwrap();
        let held = positions(&long, Some(&sizes), &Rules::default());
        let turnover: f64 = held[..days.len() - 1]
            .iter()
            .scan(0.0, |prev, &x| {
                let change = (x - *prev).abs();
                *prev = x;
                Some(change)
            })
            .sum();
        assert!((p.turnover - turnover).abs() < 1e-12);
        assert!(p.turnover > MAX_LEVERAGE.min(sizes[REALISED_WINDOW]));
        assert_eq!(
            run_sized(&days, &long, Some(&sizes[1..]), &Rules::default()),
            Err(BacktestError::SizesMismatch {
                sizes: days.len() - 1,
                days: days.len()
            })
        );
        // Unsized, always long is one entry of one unit.
        let unit = run_sized(&days, &long, None, &Rules::default()).unwrap();
        assert_eq!((unit.turnover, unit.trades), (1.0, 1));
    }

    #[test]
    fn the_equity_curves_compound_to_the_totals() {
        let days = alternating(11);
        let p = run(&days, &perfect(&days), &Rules::default()).unwrap();
        assert_eq!(p.equity_curve.len(), p.days);
        let last = p.equity_curve.last().unwrap();
        assert!((last.strategy - 1.0 - p.total_return).abs() < 1e-12);
        assert!((last.benchmark - 1.0 - p.benchmark_total_return).abs() < 1e-12);
        assert_eq!(last.date, days[10].0);
    }

    #[test]
    fn volatility_and_sharpe_annualise_with_the_assets_calendar() {
        let daily: Vec<f64> = (0..200)
            .map(|i| if i % 3 == 0 { -0.01 } else { 0.008 })
            .collect();
        let stock = Stats::of(&daily, 252.0);
        let coin = Stats::of(&daily, 365.0);
        let ratio = (365.0f64 / 252.0).sqrt();
        assert!((coin.annual_volatility / stock.annual_volatility - ratio).abs() < 1e-12);
        assert!((coin.sharpe_ratio / stock.sharpe_ratio - ratio).abs() < 1e-12);
        // The same daily volatility needs a smaller position under 365 days.
        let closes: Vec<f64> = std::iter::successors(Some(100.0), |c| Some(c * 1.01))
            .take(40)
            .enumerate()
            .map(|(i, c)| if i % 2 == 0 { c } else { c * 0.99 })
            .collect();
        let (s252, s365) = (
            volatility_target_sizes(&closes, 0.1, 252.0),
            volatility_target_sizes(&closes, 0.1, 365.0),
        );
        let t = closes.len() - 1;
        assert!(
            (s252[t] / s365[t] - ratio).abs() < 1e-9,
            "{} {}",
            s252[t],
            s365[t]
        );
    }
}
