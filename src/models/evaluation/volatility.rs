//! The volatility models against naive baselines on the held-out years:
//! one-day-ahead variance forecasts of every stock, refitted every 21 days
//! on the closes a request by symbol would fetch, scored by QLIKE and MSE
//! against the realised squared return, with Diebold-Mariano tests per
//! stock and on the cross-sectional mean loss.

use serde::{Deserialize, Serialize};

use super::{stocks, test_start};
use crate::market::dataset::PriceTable;
use crate::models::volatility::evaluate::{evaluate, Evaluation, EvaluationConfig, Window};
use crate::models::volatility::loss::{diebold_mariano, DieboldMariano};
use crate::models::volatility::{GarchSpec, VolatilityError};

/// Returns a fit sees: the closes a request by symbol fetches, less one.
pub const FIT_RETURNS: usize = 999;
/// Trading days between refits.
pub const REFIT_EVERY: usize = 21;

/// A model's and its baselines' mean losses, and GARCH minus baseline tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolatilitySummary {
    pub spec: String,
    pub stocks: usize,
    /// Stock-days forecast.
    pub samples: usize,
    pub qlike: Losses,
    pub mse: Losses,
    /// Stocks on which the model's mean QLIKE is below each baseline's.
    pub stocks_beating_ewma: usize,
    pub stocks_beating_realised: usize,
    /// On the daily cross-sectional mean of the QLIKE differences; a
    /// negative statistic favours the model.
    pub dm_qlike_vs_ewma: Option<Test>,
    pub dm_qlike_vs_realised: Option<Test>,
    pub dm_mse_vs_ewma: Option<Test>,
    pub dm_mse_vs_realised: Option<Test>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    pub model: f64,
    pub ewma: f64,
    pub realised_21d: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Test {
    pub statistic: f64,
    pub p_value: f64,
    pub days: usize,
}

impl From<DieboldMariano> for Test {
    fn from(d: DieboldMariano) -> Self {
        Test {
            statistic: d.statistic,
            p_value: d.p_value,
            days: d.n,
        }
    }
}

/// Every stock's evaluation of `spec` over the held-out years.
pub fn evaluate_stocks(
    table: &PriceTable,
    spec: GarchSpec,
    progress: &dyn Fn(&str),
) -> Result<Vec<(String, Evaluation)>, VolatilityError> {
    let (_, to) = super::test_dates();
    stocks(table)
        .into_iter()
        .map(|symbol| {
            let bars = &table[&symbol];
            let end = bars.partition_point(|b| b.date() <= to);
            let closes: Vec<f64> = bars[..end].iter().map(|b| b.close).collect();
            // Returns whose date is in the held-out years.
            let test_periods = end - 1 - test_start(bars);
            let config = EvaluationConfig {
                spec,
                test_periods,
                refit_every: REFIT_EVERY,
                window: Window::Rolling(FIT_RETURNS),
                ..EvaluationConfig::default()
            };
            let e = evaluate(&closes, &config)?;
            progress(&format!(
                "{symbol}: {spec:?} QLIKE {:.4} vs EWMA {:.4} vs 21-day {:.4}",
                e.garch.mean_qlike, e.ewma.mean_qlike, e.realised.mean_qlike
            ));
            Ok((symbol, e))
        })
        .collect()
}

/// The daily mean over stocks of `pick`'s loss differences (the series
/// must cover the same days: the embedded stocks share a calendar).
fn panel_test(
    per_stock: &[(String, Evaluation)],
    pick: impl Fn(&Evaluation) -> (&[f64], &[f64]),
) -> Option<Test> {
    let days = per_stock.iter().map(|(_, e)| pick(e).0.len()).min()?;
    let n = per_stock.len() as f64;
    let mean = |side: usize| -> Vec<f64> {
        (0..days)
            .map(|t| {
                per_stock
                    .iter()
                    .map(|(_, e)| {
                        let (a, b) = pick(e);
                        let s = if side == 0 { a } else { b };
                        s[s.len() - days + t]
                    })
                    .sum::<f64>()
                    / n
            })
            .collect()
    };
    diebold_mariano(&mean(0), &mean(1), 1).ok().map(Test::from)
}

impl VolatilitySummary {
    pub fn of(spec: GarchSpec, per_stock: &[(String, Evaluation)]) -> Self {
        let samples: usize = per_stock.iter().map(|(_, e)| e.periods).sum();
        // Stock-day weighted means.
        let mean = |f: &dyn Fn(&Evaluation) -> f64| {
            per_stock
                .iter()
                .map(|(_, e)| f(e) * e.periods as f64)
                .sum::<f64>()
                / samples.max(1) as f64
        };
        VolatilitySummary {
            spec: format!("{:?} {:?} {:?}", spec.model, spec.distribution, spec.mean)
                .to_lowercase(),
            stocks: per_stock.len(),
            samples,
            qlike: Losses {
                model: mean(&|e| e.garch.mean_qlike),
                ewma: mean(&|e| e.ewma.mean_qlike),
                realised_21d: mean(&|e| e.realised.mean_qlike),
            },
            mse: Losses {
                model: mean(&|e| e.garch.mean_mse),
                ewma: mean(&|e| e.ewma.mean_mse),
                realised_21d: mean(&|e| e.realised.mean_mse),
            },
            stocks_beating_ewma: per_stock
                .iter()
                .filter(|(_, e)| e.garch.mean_qlike < e.ewma.mean_qlike)
                .count(),
            stocks_beating_realised: per_stock
                .iter()
                .filter(|(_, e)| e.garch.mean_qlike < e.realised.mean_qlike)
                .count(),
            dm_qlike_vs_ewma: panel_test(per_stock, |e| {
                (&e.losses.garch.qlike, &e.losses.ewma.qlike)
            }),
            dm_qlike_vs_realised: panel_test(per_stock, |e| {
                (&e.losses.garch.qlike, &e.losses.realised.qlike)
            }),
            dm_mse_vs_ewma: panel_test(per_stock, |e| (&e.losses.garch.mse, &e.losses.ewma.mse)),
            dm_mse_vs_realised: panel_test(per_stock, |e| {
                (&e.losses.garch.mse, &e.losses.realised.mse)
            }),
        }
    }
}

/// The volatility section of the report.
pub fn report(evaluations: &[super::VolatilityEvaluation]) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Volatility models\n\n\
         One-day-ahead variance forecasts of every stock over the held-out years, scored against\n\
         the realised squared percent return. The model is refitted every {REFIT_EVERY} trading days to\n\
         the {FIT_RETURNS} returns before (the closes a request by symbol fetches), its variance\n\
         carried through each new return in between. Baselines: RiskMetrics EWMA (lambda 0.94)\n\
         and the mean squared return of the previous 21 days. QLIKE is `ln h + r^2 / h` (lower is\n\
         better), MSE `(r^2 - h)^2`. Diebold-Mariano statistics are on the daily mean over\n\
         stocks of the model's loss minus the baseline's: negative favours the model.\n"
    );
    let _ = writeln!(
        md,
        "| model | stock-days | QLIKE model / EWMA / 21-day | DM vs EWMA (p) | DM vs 21-day (p) | stocks beating EWMA / 21-day | MSE model / EWMA / 21-day |\n|---|---|---|---|---|---|---|"
    );
    let dm = |t: &Option<Test>| {
        t.map_or("n/a".to_string(), |t| {
            format!("{:.3} ({:.4})", t.statistic, t.p_value)
        })
    };
    for (s, _) in evaluations {
        let _ = writeln!(
            md,
            "| {} | {} | {:.4} / {:.4} / {:.4} | {} | {} | {} / {} of {} | {:.2} / {:.2} / {:.2} |",
            s.spec,
            s.samples,
            s.qlike.model,
            s.qlike.ewma,
            s.qlike.realised_21d,
            dm(&s.dm_qlike_vs_ewma),
            dm(&s.dm_qlike_vs_realised),
            s.stocks_beating_ewma,
            s.stocks_beating_realised,
            s.stocks,
            s.mse.model,
            s.mse.ewma,
            s.mse.realised_21d
        );
    }
    for (s, per_stock) in evaluations {
        let _ = writeln!(
            md,
            "\n### {}: per stock\n\n| stock | days | QLIKE model / EWMA / 21-day | DM QLIKE vs EWMA (p) | DM QLIKE vs 21-day (p) | refits |\n|---|---|---|---|---|---|",
            s.spec
        );
        for (stock, e) in per_stock {
            let _ = writeln!(
                md,
                "| {stock} | {} | {:.4} / {:.4} / {:.4} | {} | {} | {} |",
                e.periods,
                e.garch.mean_qlike,
                e.ewma.mean_qlike,
                e.realised.mean_qlike,
                dm(&e.garch_vs_ewma.qlike.map(Test::from)),
                dm(&e.garch_vs_realised.qlike.map(Test::from)),
                e.refits
            );
        }
    }
    md
}
