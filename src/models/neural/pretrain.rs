//! `tickcast train`: trains the served networks on the embedded dataset,
//! pooled across its 20 stocks, with a chronological split by the date of
//! each window's target:
//!
//! | set | dates | used for |
//! |---|---|---|
//! | train | 2005-01-01..2014-12-31 | weights (every `stride`-th window, per plan) |
//! | validation | 2015-01-01..2018-12-31 | early stopping (every `stride`-th window), confidence calibration (all windows) |
//! | test | 2019-01-01..2022-12-31 | the reported figures only |

use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;

use super::card::{fingerprint, DataSplit, ModelCard};
use super::metrics::{forecasts, held_out, Calibration};
use super::train::{train, TrainConfig};
use super::windows::{windows, Window};
use super::{Architecture, LstmConfig, Network, TransformerConfig};
use crate::market::dataset::PriceTable;

pub const TRAIN: (&str, &str) = ("2005-01-01", "2014-12-31");
pub const VALIDATION: (&str, &str) = ("2015-01-01", "2018-12-31");
pub const TEST: (&str, &str) = ("2019-01-01", "2022-12-31");
/// Equal-count bins of the confidence calibration.
const CALIBRATION_BINS: usize = 5;

/// What to train for one served model.
#[derive(Debug, Clone)]
pub struct Plan {
    pub model: &'static str,
    pub architecture: Architecture,
    pub training: TrainConfig,
    /// Every `stride`-th window of the training and early-stopping sets.
    pub stride: usize,
}

pub fn plans() -> Vec<Plan> {
    vec![
        Plan {
            model: super::LSTM,
            architecture: Architecture::Lstm(LstmConfig::default()),
            training: TrainConfig {
                max_epochs: 20,
                ..TrainConfig::default()
            },
            stride: 2,
        },
        Plan {
            model: super::TRANSFORMER,
            architecture: Architecture::Transformer(TransformerConfig::default()),
            training: TrainConfig {
                max_epochs: 12,
                patience: 3,
                ..TrainConfig::default()
            },
            stride: 5,
        },
    ]
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("split dates are valid")
}

/// Dates from `from` to `to`, both included.
pub type Period = (NaiveDate, NaiveDate);

fn label((from, to): Period) -> String {
    format!("{from}..{to}")
}

/// A chronological split by the date of each window's target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    pub train: Period,
    pub validation: Period,
    pub test: Period,
}

impl Split {
    /// The split of the served networks' pretraining (the table above).
    pub fn fixed() -> Self {
        let p = |(from, to): (&str, &str)| (date(from), date(to));
        Split {
            train: p(TRAIN),
            validation: p(VALIDATION),
            test: p(TEST),
        }
    }

    /// The newest years up to `last`: `test_years` ending at `last`, the
    /// `validation_years` before them, the `train_years` before those.
    pub fn newest(
        last: NaiveDate,
        train_years: u32,
        validation_years: u32,
        test_years: u32,
    ) -> Self {
        let back = |d: NaiveDate, years: u32| {
            d.checked_sub_months(chrono::Months::new(12 * years))
                .unwrap_or(NaiveDate::MIN)
        };
        let day = chrono::Days::new(1);
        let test_from = back(last, test_years) + day;
        let validation_from = back(test_from - day, validation_years) + day;
        let train_from = back(validation_from - day, train_years) + day;
        Split {
            train: (train_from, validation_from - day),
            validation: (validation_from, test_from - day),
            test: (test_from, last),
        }
    }
}

/// The 20 stocks of the embedded dataset (the index is not a stock).
pub fn stocks(table: &PriceTable) -> Vec<String> {
    table
        .keys()
        .filter(|s| !s.starts_with('^'))
        .cloned()
        .collect()
}

/// A stock's windows whose target date falls in `range`.
pub fn windows_in(
    table: &PriceTable,
    symbol: &str,
    sequence_length: usize,
    horizon: usize,
    range: (&str, &str),
) -> Vec<Window> {
    windows_between(
        table,
        symbol,
        sequence_length,
        horizon,
        (date(range.0), date(range.1)),
    )
}

/// A stock's windows whose target date falls in `period`.
pub fn windows_between(
    table: &PriceTable,
    symbol: &str,
    sequence_length: usize,
    horizon: usize,
    (from, to): Period,
) -> Vec<Window> {
    let Some(bars) = table.get(symbol) else {
        return Vec::new();
    };
    let closes: Vec<f64> = bars.iter().map(|c| c.close).collect();
    windows(&closes, sequence_length, horizon)
        .into_iter()
        .filter(|w| {
            let target = bars[w.last_close + horizon].time.date_naive();
            (from..=to).contains(&target)
        })
        .collect()
}

/// Every `stride`-th window of each of `symbols` whose target is in `period`.
pub fn pooled(
    table: &PriceTable,
    symbols: &[String],
    sequence_length: usize,
    period: Period,
    stride: usize,
) -> Vec<Window> {
    symbols
        .iter()
        .flat_map(|s| {
            windows_between(table, s, sequence_length, 1, period)
                .into_iter()
                .step_by(stride.max(1))
        })
        .collect()
}

/// A trained network and its card (`version` not yet set).
pub struct Trained {
    pub network: Network,
    pub card: ModelCard,
}

/// Trains `plan` on `symbols` of `table` split by `split`: weights on the
/// training period, early stopping on the validation period (which also
/// calibrates confidence), figures on the test period. `budget` stops it.
pub fn fit(
    table: &PriceTable,
    symbols: &[String],
    plan: &Plan,
    split: &Split,
    budget: &crate::models::Budget,
    log: &dyn Fn(&str),
) -> anyhow::Result<Trained> {
    let t = plan.architecture.sequence_length();
    let train_set = pooled(table, symbols, t, split.train, plan.stride);
    let stopping_set = pooled(table, symbols, t, split.validation, plan.stride);
    log(&format!(
        "{}: {} training and {} validation windows from {} stocks",
        plan.model,
        train_set.len(),
        stopping_set.len(),
        symbols.len()
    ));
    let network = Network::seeded(plan.architecture.clone(), plan.training.seed)?;
    let started = Instant::now();
    let report = train(&network, &train_set, &stopping_set, &plan.training, budget)?;
    log(&format!(
        "{}: {} epochs in {:.1} s, validation loss {:.4} -> {:.4} (best epoch {})",
        plan.model,
        report.epochs_run,
        started.elapsed().as_secs_f64(),
        report.initial_validation_loss(),
        report.best_validation_loss(),
        report.best_epoch
    ));
    log(&format!(
        "{}: training loss by epoch {:.4?}, validation {:.4?}",
        plan.model, report.train_loss, report.validation_loss
    ));

    let validation_forecasts =
        forecasts(&network, &pooled(table, symbols, t, split.validation, 1), 1)?;
    let test_forecasts = forecasts(&network, &pooled(table, symbols, t, split.test, 1), 1)?;
    let calibration = Calibration::fit(
        &validation_forecasts
            .iter()
            .map(|&(y, _, a)| (y, a))
            .collect::<Vec<_>>(),
        CALIBRATION_BINS,
    );
    let card = ModelCard {
        model: plan.model.to_string(),
        version: String::new(),
        architecture: plan.architecture.clone(),
        horizon: 1,
        training: plan.training.clone(),
        data: DataSplit {
            symbols: symbols.to_vec(),
            train: label(split.train),
            validation: label(split.validation),
            test: label(split.test),
            stride: plan.stride,
            train_windows: train_set.len(),
            validation_windows: stopping_set.len(),
        },
        report,
        validation: held_out(label(split.validation), &validation_forecasts),
        test: held_out(label(split.test), &test_forecasts),
        calibration,
        trained_at: chrono::Utc::now().to_rfc3339(),
        threads: candle_core::utils::get_num_threads(),
    };
    Ok(Trained { network, card })
}

/// Trains one plan on the fixed split and writes `<model>.safetensors` and
/// `<model>.json` to `out`.
pub fn pretrain(
    table: &PriceTable,
    plan: &Plan,
    out: &Path,
    log: &dyn Fn(&str),
) -> anyhow::Result<ModelCard> {
    let symbols = stocks(table);
    let Trained { network, mut card } = fit(
        table,
        &symbols,
        plan,
        &Split::fixed(),
        &crate::models::Budget::unlimited(),
        log,
    )?;
    std::fs::create_dir_all(out)?;
    let weights_path = out.join(format!("{}.safetensors", plan.model));
    network.save(&weights_path)?;
    let weights = std::fs::read(&weights_path)?;
    card.version = format!(
        "{}-{}-{}",
        plan.model,
        chrono::Utc::now().format("%Y%m%d"),
        fingerprint(&weights)
    );
    std::fs::write(
        out.join(format!("{}.json", plan.model)),
        serde_json::to_string_pretty(&card)? + "\n",
    )?;
    log(&format!(
        "{}: test {} windows, directional accuracy {:.4}, RMSE ratio {:.4}; version {}",
        plan.model,
        card.test.samples,
        card.test.directional_accuracy,
        card.test.rmse_ratio(),
        card.version
    ));
    Ok(card)
}
