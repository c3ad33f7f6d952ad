//! `tickcast evaluate`: held-out quality of every served forecaster, per
//! stock and pooled, written as `docs/model-performance.md`.

pub mod intervals;
pub mod volatility;

use std::fmt::Write as _;

use super::ensemble::learners::Learner;
use super::ensemble::predictor::{blend, EnsembleParams};
use super::interval::{volatility_at, Residual, DEFAULT_LEVEL};
use super::neural::metrics::{forecasts, held_out, HeldOut};
use super::neural::predictor::{NeuralPredictor, CALIBRATION_POINTS};
use super::neural::pretrain::{stocks, windows_in, TEST};
use super::neural::windows::windows;
use crate::market::dataset::PriceTable;
use intervals::{IntervalOutcome, IntervalSummary};
use volatility::VolatilitySummary;

/// One model's held-out results.
pub struct ModelEvaluation {
    pub model: String,
    pub version: String,
    pub per_stock: Vec<(String, HeldOut)>,
    pub pooled: HeldOut,
    /// Share of held-out returns above zero: the accuracy of always forecasting a rise.
    pub up_share: f64,
    /// What else the report says about this model.
    pub notes: Vec<String>,
    /// Each held-out forecast's prediction interval and outcome (served
    /// forecasters only).
    pub intervals: Vec<IntervalOutcome>,
}

/// Mean and 95 % confidence interval (Student t) of per-stock values.
pub fn mean_ci(values: &[f64]) -> (f64, f64, f64) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return (mean, f64::NAN, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_975(n - 1) * (var / n as f64).sqrt();
    (mean, mean - half, mean + half)
}

/// The 97.5 % quantile of Student's t with `df` degrees of freedom.
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    TABLE.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

pub fn evaluate_network(
    table: &PriceTable,
    predictor: &NeuralPredictor,
) -> candle_core::Result<ModelEvaluation> {
    let card = predictor.card();
    let t = card.architecture.sequence_length();
    let period = format!("{}..{}", TEST.0, TEST.1);
    let mut per_stock = Vec::new();
    let mut all = Vec::new();
    let mut intervals = Vec::new();
    for symbol in stocks(table) {
        let ws = windows_in(table, &symbol, t, card.horizon, TEST);
        let f = forecasts(predictor.network(), &ws, card.horizon)?;
        per_stock.push((symbol.clone(), held_out(period.clone(), &f)));
        all.extend(f);
        intervals.extend(network_intervals(table, &symbol, predictor)?);
    }
    let up_share = all.iter().filter(|f| f.2 > 0.0).count() as f64 / all.len().max(1) as f64;
    Ok(ModelEvaluation {
        up_share,
        model: card.model.clone(),
        version: card.version.clone(),
        per_stock,
        pooled: held_out(period, &all),
        notes: Vec::new(),
        intervals,
    })
}

/// The pretrained network's held-out forecasts of `symbol` with their
/// intervals at the default level, each calibrated on the
/// [`CALIBRATION_POINTS`] forecasts before it, as a request by symbol is.
fn network_intervals(
    table: &PriceTable,
    symbol: &str,
    predictor: &NeuralPredictor,
) -> candle_core::Result<Vec<IntervalOutcome>> {
    let card = predictor.card();
    let (len, h) = (card.architecture.sequence_length(), card.horizon);
    let bars = &table[symbol];
    let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
    let all = windows(&closes, len, h);
    let (from, to) = test_dates();
    let tested: Vec<usize> = (0..all.len())
        .filter(|&k| (from..=to).contains(&bars[all[k].last_close + h].date()))
        .collect();
    let (Some(&first), Some(&last)) = (tested.first(), tested.last()) else {
        return Ok(Vec::new());
    };
    let start = first.saturating_sub(CALIBRATION_POINTS);
    let made = forecasts(predictor.network(), &all[start..=last], h)?;
    let residuals: Vec<Residual> = made
        .iter()
        .zip(&all[start..=last])
        .map(|(&(_, predicted, actual), w)| Residual {
            predicted,
            actual,
            scale: volatility_at(&closes, w.last_close),
        })
        .collect();
    Ok(tested
        .iter()
        .map(|&k| {
            let i = k - start;
            let r = residuals[i];
            let calibration = &residuals[i.saturating_sub(CALIBRATION_POINTS)..i];
            let t = all[k].last_close;
            IntervalOutcome::of(
                symbol,
                calibration,
                &closes,
                t,
                r.predicted,
                r.actual,
                DEFAULT_LEVEL,
            )
        })
        .collect())
}

/// The first and last target dates of the held-out period.
fn test_dates() -> (chrono::NaiveDate, chrono::NaiveDate) {
    let day =
        |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("TEST is YYYY-MM-DD");
    (day(TEST.0), day(TEST.1))
}

/// Closes the ensemble is fitted to for each held-out forecast, as the
/// service fetches for a symbol.
pub const ENSEMBLE_HISTORY: usize = 250;

/// The adaptive ensemble and each of its learners on the test years: every
/// `stride`-th test day of every stock, the ensemble is fitted to the
/// [`ENSEMBLE_HISTORY`] closes up to that day (default params) and
/// forecasts the next day's return. Returns the ensemble first, then the
/// learners.
pub fn evaluate_ensemble(
    table: &PriceTable,
    stride: usize,
    progress: &dyn Fn(&str),
) -> Result<Vec<ModelEvaluation>, super::ModelError> {
    let params = EnsembleParams::default();
    let period = format!("{}..{}", TEST.0, TEST.1);
    let (from, to) = test_dates();
    let names: Vec<&str> = std::iter::once(super::ensemble::predictor::NAME)
        .chain(Learner::ALL.iter().map(|l| l.name()))
        .collect();
    // Per model: per stock, (predicted, actual) return pairs.
    type StockPairs = (String, Vec<(f64, f64)>);
    let mut pairs: Vec<Vec<StockPairs>> = vec![Vec::new(); names.len()];
    let mut confidence = (0.0, 0usize);
    let mut intervals = Vec::new();
    for symbol in stocks(table) {
        let bars = &table[&symbol];
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let days: Vec<usize> = (ENSEMBLE_HISTORY - 1..closes.len() - 1)
            .filter(|&t| (from..=to).contains(&bars[t + 1].time.date_naive()))
            .step_by(stride.max(1))
            .collect();
        let mut per_model: Vec<Vec<(f64, f64)>> = vec![Vec::new(); names.len()];
        for &t in &days {
            let history = &closes[t + 1 - ENSEMBLE_HISTORY..=t];
            let b = blend(history, &params, &super::Budget::unlimited())?;
            let actual = closes[t + 1] / closes[t] - 1.0;
            per_model[0].push((b.predicted_return, actual));
            let last = history.len() - 1;
            intervals.push(IntervalOutcome::of(
                &symbol,
                &b.residuals,
                history,
                last,
                b.predicted_return,
                actual,
                params.interval_level,
            ));
            confidence = (confidence.0 + b.confidence, confidence.1 + 1);
            for m in &b.members {
                let k = 1 + Learner::ALL
                    .iter()
                    .position(|l| *l == m.learner)
                    .expect("known");
                per_model[k].push((m.forecast, actual));
            }
        }
        progress(&format!("{symbol}: {} ensemble forecasts", days.len()));
        for (k, p) in per_model.into_iter().enumerate() {
            pairs[k].push((symbol.clone(), p));
        }
    }
    let mean_confidence = confidence.0 / confidence.1.max(1) as f64;
    Ok(names
        .iter()
        .zip(pairs)
        .enumerate()
        .map(|(k, (name, per_stock))| {
            let all: Vec<(f64, f64)> = per_stock.iter().flat_map(|(_, p)| p.clone()).collect();
            let pooled = HeldOut::score(period.clone(), &all);
            let mut notes = vec![format!(
                "Fitted per forecast to the {ENSEMBLE_HISTORY} closes up to the forecast day, every {stride}th test day."
            )];
            if k == 0 {
                notes.push(format!(
                    "Mean `confidence` over these forecasts: {mean_confidence:.4}; their directional accuracy: {:.4}.",
                    pooled.directional_accuracy
                ));
            }
            ModelEvaluation {
                model: name.to_string(),
                version: "fitted per request".into(),
                up_share: all.iter().filter(|p| p.1 > 0.0).count() as f64
                    / all.len().max(1) as f64,
                per_stock: per_stock
                    .into_iter()
                    .map(|(s, p)| (s, HeldOut::score(period.clone(), &p)))
                    .collect(),
                pooled,
                notes,
                intervals: if k == 0 { intervals.clone() } else { Vec::new() },
            }
        })
        .collect())
}

/// Version of the measurements file's layout; bump on incompatible change.
pub const MEASUREMENTS_SCHEMA: u32 = 2;
/// Where `tickcast evaluate` writes the measurements the catalog scores.
pub const MEASUREMENTS_FILE: &str = "evaluation.json";

/// What `tickcast evaluate` measured, saved as `models/evaluation.json` and
/// read by the catalog at startup.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measurements {
    pub schema_version: u32,
    /// The day the measurements were taken (`YYYY-MM-DD`).
    pub measured_at: String,
    pub command: String,
    /// Held-out period (target dates).
    pub period: String,
    pub models: std::collections::BTreeMap<String, ModelMeasurement>,
}

/// One served model's measurements.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeasurement {
    pub version: String,
    /// Forecast quality on the held-out period (forecasters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<HeldOutSummary>,
    /// A backtest of its signal or allocation (not for volatility models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtest: Option<BacktestSummary>,
    /// Coverage of its prediction intervals (price forecasters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<IntervalSummary>,
    /// Its volatility forecasts against naive baselines (volatility models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<VolatilitySummary>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldOutSummary {
    pub samples: usize,
    pub stocks: usize,
    pub directional_accuracy: f64,
    /// Accuracy of always forecasting a rise on the same samples.
    pub always_up_accuracy: f64,
    /// RMSE over the no-change forecast's RMSE.
    pub rmse_ratio: f64,
    pub mae: f64,
}

/// Mean per-stock figures of backtests over the held-out period.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BacktestSummary {
    /// What was traded and how.
    pub strategy: String,
    pub stocks: usize,
    /// Trading days per stock.
    pub days: usize,
    pub sharpe_ratio: f64,
    /// The comparison's Sharpe ratio (buy-and-hold, or equal weight for
    /// the optimiser).
    pub benchmark_sharpe_ratio: f64,
    pub total_return: f64,
    pub benchmark_total_return: f64,
    pub max_drawdown: f64,
    pub benchmark_max_drawdown: f64,
}

/// The measurements in `dir` (or the source tree's `models/`), if any. A
/// file that cannot be read or has another layout is reported and skipped.
pub fn load_measurements(dir: &std::path::Path) -> Option<Measurements> {
    let path = super::locate_file(dir, MEASUREMENTS_FILE)?;
    let parsed = std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            serde_json::from_slice::<Measurements>(&bytes).map_err(|e| e.to_string())
        })
        .and_then(|m| {
            if m.schema_version == MEASUREMENTS_SCHEMA {
                Ok(m)
            } else {
                Err(format!(
                    "schema_version {} (this build reads {MEASUREMENTS_SCHEMA}; rerun `tickcast evaluate`)",
                    m.schema_version
                ))
            }
        });
    match parsed {
        Ok(m) => Some(m),
        Err(reason) => {
            tracing::warn!(file = %path.display(), %reason, "model measurements skipped; catalog scores omitted");
            None
        }
    }
}

fn test_start(bars: &[crate::market::Candle]) -> usize {
    let (from, _) = test_dates();
    // The first traded return is the first in the period.
    bars.partition_point(|b| b.date() < from).saturating_sub(1)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

/// Backtests `model` on every stock over the held-out period with the
/// default walk-forward plan (long when the forecast is above 0, 10 bps a
/// trade, refitted every 21 days) against buy-and-hold.
pub fn backtest_forecaster(
    table: &PriceTable,
    model: &dyn super::Predictor,
    progress: &dyn Fn(&str),
) -> Result<BacktestSummary, super::walkforward::WalkError> {
    use super::walkforward::{run, Plan};
    let plan = Plan::default();
    let model = model.configure(&super::RawParams::new())?;
    let (_, to) = test_dates();
    let mut runs = Vec::new();
    for symbol in stocks(table) {
        let bars: Vec<_> = table[&symbol]
            .iter()
            .filter(|b| b.date() <= to)
            .map(|b| (b.date(), b.close))
            .collect();
        let start = test_start(&table[&symbol]);
        let w = run(
            model.as_ref(),
            &bars,
            start,
            &plan,
            &super::Budget::unlimited(),
        )?;
        progress(&format!(
            "{} on {symbol}: Sharpe {:.3} vs buy-and-hold {:.3}",
            model.info().name,
            w.performance.sharpe_ratio,
            w.performance.benchmark.sharpe_ratio
        ));
        runs.push(w);
    }
    Ok(BacktestSummary {
        strategy: format!(
            "long when the forecast return is above {}, flat otherwise; {} bps per trade; refitted every {} trading days",
            plan.threshold, plan.transaction_cost_bps, plan.retrain_every
        ),
        stocks: runs.len(),
        days: runs.first().map_or(0, |w| w.performance.days),
        sharpe_ratio: mean(runs.iter().map(|w| w.performance.sharpe_ratio)),
        benchmark_sharpe_ratio: mean(runs.iter().map(|w| w.performance.benchmark.sharpe_ratio)),
        total_return: mean(runs.iter().map(|w| w.performance.total_return)),
        benchmark_total_return: mean(runs.iter().map(|w| w.performance.benchmark_total_return)),
        max_drawdown: mean(runs.iter().map(|w| w.performance.max_drawdown)),
        benchmark_max_drawdown: mean(runs.iter().map(|w| w.performance.benchmark.max_drawdown)),
    })
}

/// The optimiser's `method` portfolio of all stocks, re-optimised every 21
/// trading days from the 252 closes before, held at constant weights (10
/// bps on each rebalance's turnover), against the equal-weight portfolio.
pub fn backtest_allocator(
    table: &PriceTable,
    model: &dyn super::Predictor,
    method: &str,
) -> Result<BacktestSummary, super::ModelError> {
    use super::backtest::Stats;
    const WINDOW: usize = 252;
    const EVERY: usize = 21;
    const COST: f64 = 0.001;
    let symbols = stocks(table);
    let mut params = super::RawParams::new();
    params.insert("method".into(), method.into());
    let model = model.configure(&params)?;
    // Common dates: the stocks' bars aligned by date.
    let first = &table[&symbols[0]];
    let start = test_start(first);
    let (_, to) = test_dates();
    let dates: Vec<chrono::NaiveDate> = first[start..]
        .iter()
        .map(|b| b.date())
        .filter(|d| *d <= to)
        .collect();
    let close_on = |symbol: &str, date: chrono::NaiveDate| -> Option<f64> {
        let bars = &table[symbol];
        let i = bars.partition_point(|b| b.date() < date);
        bars.get(i).filter(|b| b.date() == date).map(|b| b.close)
    };
    let mut strategy = Vec::new();
    let mut equal = Vec::new();
    let mut held: Vec<f64> = vec![0.0; symbols.len()];
    for t in 0..dates.len() - 1 {
        if t % EVERY == 0 {
            let assets: Vec<(String, super::PriceSeries)> = symbols
                .iter()
                .map(|s| {
                    let bars = &table[s];
                    let end = bars.partition_point(|b| b.date() <= dates[t]);
                    let closes = bars[end.saturating_sub(WINDOW)..end]
                        .iter()
                        .map(|b| b.close)
                        .collect();
                    (
                        s.clone(),
                        super::PriceSeries::new(closes).expect("positive closes"),
                    )
                })
                .collect();
            let prediction = model.predict(
                &super::ModelInput::Assets(assets),
                &super::Budget::unlimited(),
            )?;
            let super::Prediction::Allocation(super::Allocation::Optimised(a)) = prediction else {
                return Err(super::ModelError::Internal(
                    "the optimiser gave no allocation".into(),
                ));
            };
            let weights: Vec<f64> = symbols
                .iter()
                .map(|s| a.allocation.get(s).copied().unwrap_or(0.0))
                .collect();
            let turnover: f64 = weights.iter().zip(&held).map(|(w, h)| (w - h).abs()).sum();
            held = weights;
            strategy.push(-COST * turnover);
        } else {
            strategy.push(0.0);
        }
        let returns: Vec<f64> = symbols
            .iter()
            .map(
                |s| match (close_on(s, dates[t]), close_on(s, dates[t + 1])) {
                    (Some(a), Some(b)) => b / a - 1.0,
                    _ => 0.0,
                },
            )
            .collect();
        let day: f64 = held.iter().zip(&returns).map(|(w, r)| w * r).sum();
        *strategy.last_mut().expect("pushed") += day;
        equal.push(returns.iter().sum::<f64>() / returns.len() as f64);
    }
    // The evaluation's stocks trade on exchange days.
    let periods = crate::market::calendar::EQUITY_PERIODS_PER_YEAR;
    let (s, b) = (Stats::of(&strategy, periods), Stats::of(&equal, periods));
    Ok(BacktestSummary {
        strategy: format!(
            "{method} weights over all {} stocks from the {WINDOW} closes before, re-optimised every {EVERY} trading days, 10 bps on turnover; benchmark: equal weight",
            symbols.len()
        ),
        stocks: symbols.len(),
        days: strategy.len(),
        sharpe_ratio: s.sharpe_ratio,
        benchmark_sharpe_ratio: b.sharpe_ratio,
        total_return: s.total_return,
        benchmark_total_return: b.total_return,
        max_drawdown: s.max_drawdown,
        benchmark_max_drawdown: b.max_drawdown,
    })
}

/// The pooled held-out figures of an evaluation.
pub fn held_out_summary(e: &ModelEvaluation) -> HeldOutSummary {
    HeldOutSummary {
        samples: e.pooled.samples,
        stocks: e.per_stock.len(),
        directional_accuracy: e.pooled.directional_accuracy,
        always_up_accuracy: e.up_share,
        rmse_ratio: e.pooled.rmse_ratio(),
        mae: e.pooled.mae,
    }
}

/// The report in Markdown: forecasts, their intervals, and the volatility
/// models.
pub fn report(evaluations: &[ModelEvaluation], volatility: &[VolatilityEvaluation]) -> String {
    let mut md = forecast_report(evaluations);
    md.push_str(&interval_report(evaluations));
    md.push_str(&volatility::report(volatility));
    md
}

/// A volatility model's summary and its per-stock evaluations.
pub type VolatilityEvaluation = (
    VolatilitySummary,
    Vec<(String, crate::models::volatility::evaluate::Evaluation)>,
);

fn interval_report(evaluations: &[ModelEvaluation]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Prediction intervals\n\n\
         Each held-out forecast's interval is built as the service builds it: split conformal\n\
         on the forecaster's own held-out forecasts (the pretrained networks: the {CALIBRATION_POINTS}\n\
         forecasts before it on the same stock; the ensemble: its adaptation window), each\n\
         |error| divided by the {}-day volatility at its close, times the volatility at the\n\
         forecast's close. Coverage is the share of actual returns inside the interval\n\
         (Wilson 95 % interval in brackets); regimes are the pooled thirds of that volatility.\n",
        crate::models::interval::VOLATILITY_WINDOW
    );
    let _ = writeln!(
        md,
        "| model | level | samples | coverage [95 % CI] | mean width | calm | normal | turbulent |\n|---|---|---|---|---|---|---|---|"
    );
    let summaries: Vec<(&str, IntervalSummary)> = evaluations
        .iter()
        .filter_map(|e| {
            Some((
                e.model.as_str(),
                IntervalSummary::of(&e.intervals, DEFAULT_LEVEL)?,
            ))
        })
        .collect();
    for (model, s) in &summaries {
        let p = &s.pooled;
        let _ = writeln!(
            md,
            "| {model} | {} | {} | {:.4} [{:.4}, {:.4}] | {:.4} | {:.4} | {:.4} | {:.4} |",
            s.level,
            p.samples,
            p.coverage,
            p.coverage_low,
            p.coverage_high,
            p.mean_width,
            s.calm.coverage,
            s.normal.coverage,
            s.turbulent.coverage
        );
    }
    for (model, s) in &summaries {
        let _ = writeln!(
            md,
            "\n### {model}: coverage per stock\n\n| stock | samples | coverage [95 % CI] | mean width |\n|---|---|---|---|"
        );
        for (stock, c) in &s.per_stock {
            let _ = writeln!(
                md,
                "| {stock} | {} | {:.4} [{:.4}, {:.4}] | {:.4} |",
                c.samples, c.coverage, c.coverage_low, c.coverage_high, c.mean_width
            );
        }
    }
    md
}

/// The forecasts' section of the report.
fn forecast_report(evaluations: &[ModelEvaluation]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Model performance\n\n\
         Generated by `cargo run --release -- evaluate` from the pretrained weights in `models/`\n\
         and the embedded dataset; do not edit by hand.\n\n\
         Every figure is out of sample: the networks were trained on 2005-2014 and stopped\n\
         early on 2015-2018; the adaptive ensemble and its learners are fitted to the year of\n\
         closes before each forecast, as the service fits them per request; the test period is\n\
         {}..{} (the date of each forecast's target).\n\
         Forecasts are of the next day's simple return. The naive forecast is \"no change\"\n\
         (return 0), so an RMSE ratio below 1 beats it. Directional accuracy counts a zero\n\
         forecast or a zero return as a miss. The 95 % intervals are Student t intervals over\n\
         the 20 per-stock figures.\n",
        TEST.0, TEST.1
    );
    let _ = writeln!(
        md,
        "## Summary\n\n| model | version | samples | directional accuracy (pooled) | mean per stock [95 % CI] | RMSE ratio (pooled) | mean per stock [95 % CI] |\n|---|---|---|---|---|---|---|"
    );
    for e in evaluations {
        let acc: Vec<f64> = e
            .per_stock
            .iter()
            .map(|(_, h)| h.directional_accuracy)
            .collect();
        let ratio: Vec<f64> = e.per_stock.iter().map(|(_, h)| h.rmse_ratio()).collect();
        let (am, alo, ahi) = mean_ci(&acc);
        let (rm, rlo, rhi) = mean_ci(&ratio);
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {:.4} | {:.4} [{:.4}, {:.4}] | {:.4} | {:.4} [{:.4}, {:.4}] |",
            e.model,
            e.version,
            e.pooled.samples,
            e.pooled.directional_accuracy,
            am,
            alo,
            ahi,
            e.pooled.rmse_ratio(),
            rm,
            rlo,
            rhi
        );
    }
    if let Some(e) = evaluations.first() {
        let _ = writeln!(
            md,
            "\nFor scale: {:.4} of the held-out daily returns are positive, so always forecasting\n\
             a rise would score that directional accuracy (with an RMSE ratio near 1).",
            e.up_share
        );
    }
    for e in evaluations {
        let _ = writeln!(md, "\n## {}\n", e.model);
        for note in &e.notes {
            let _ = writeln!(md, "{note}\n");
        }
        let _ = writeln!(
            md,
            "| stock | samples | directional accuracy | RMSE | naive RMSE | RMSE ratio | MAE |\n|---|---|---|---|---|---|---|"
        );
        let rows = e
            .per_stock
            .iter()
            .map(|(s, h)| (s.as_str(), h))
            .chain([("all (pooled)", &e.pooled)]);
        for (symbol, h) in rows {
            let _ = writeln!(
                md,
                "| {} | {} | {:.4} | {:.5} | {:.5} | {:.4} | {:.5} |",
                symbol,
                h.samples,
                h.directional_accuracy,
                h.rmse,
                h.naive_rmse,
                h.rmse_ratio(),
                h.mae
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_measurements_are_what_the_code_measures_now() {
        let m = load_measurements(std::path::Path::new("models")).expect("models/evaluation.json");
        assert_eq!(m.schema_version, MEASUREMENTS_SCHEMA);
        let registry = crate::models::served();
        for name in registry.names() {
            assert!(m.models.contains_key(name), "{name} not measured");
        }
        // The LSTM is cheap to re-measure: its held-out figures and its
        // backtest must match the file.
        let table = crate::market::dataset::embedded().unwrap();
        let lstm = registry.get("lstm_predictor").unwrap();
        let file = &m.models["lstm_predictor"];
        let backtest = backtest_forecaster(&table, lstm.as_ref(), &|_| {}).unwrap();
        assert_eq!(Some(backtest), file.backtest);
        let predictor = super::super::neural::predictor::NeuralPredictor::load(
            std::path::Path::new("models"),
            "lstm_predictor",
        )
        .unwrap();
        let evaluated = evaluate_network(&table, &predictor).unwrap();
        assert_eq!(Some(held_out_summary(&evaluated)), file.held_out);
        let intervals = IntervalSummary::of(&evaluated.intervals, DEFAULT_LEVEL);
        assert_eq!(intervals, file.intervals);
    }

    #[test]
    fn confidence_intervals_use_student_t() {
        let (m, lo, hi) = mean_ci(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        // sd 1, n 3, t(2) 4.303
        assert!((hi - m - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        assert!((m - lo - 4.303 / 3f64.sqrt()).abs() < 1e-12);
    }
}
