//! The networks' lifecycle, its pure parts: the registry on disk
//! ([`store`]), training runs ([`runs`]), the promotion gate on held-out
//! data ([`gate`]), A/B assignment and live scores ([`experiment`]), the
//! swappable served model ([`serving`]), and the functions that seed,
//! load and compare versions. The service that retrains in the background
//! and applies the gates is `crate::forecast::lifecycle`; the states are
//! described in `docs/model-lifecycle.md`.

pub mod experiment;
pub mod gate;
pub mod runs;
pub mod serving;
pub mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use crate::market::dataset::PriceTable;
use crate::models::neural::card::ModelCard;
use crate::models::neural::fit::SeriesFitter;
use crate::models::neural::metrics::forecasts;
use crate::models::neural::predictor::NeuralPredictor;
use crate::models::neural::pretrain::{self, Period};
use crate::models::neural::{Network, LSTM, TRANSFORMER};
use gate::{Margins, Paired, Verdict};
use serving::Loaded;
use store::{Provenance, State, Store, VersionRecord};

/// The networks with a lifecycle.
pub const MODELS: [&str; 2] = [LSTM, TRANSFORMER];

/// The last date of a card's test period (the newest data it saw).
pub fn data_end(card: &ModelCard) -> anyhow::Result<NaiveDate> {
    let (_, to) = card.data.test.split_once("..").with_context(|| {
        format!(
            "{}: test period {:?} has no end",
            card.version, card.data.test
        )
    })?;
    NaiveDate::parse_from_str(to, "%Y-%m-%d")
        .with_context(|| format!("{}: test period end {to:?}", card.version))
}

/// Registers the pretrained files of `model` in `models_dir` as its
/// champion when the registry has no version of it.
pub fn seed(store: &mut Store, models_dir: &Path, model: &str) -> anyhow::Result<()> {
    if !store.versions(Some(model)).is_empty() {
        return Ok(());
    }
    let found = crate::models::neural::predictor::locate(models_dir, model).with_context(|| {
        format!(
            "no pretrained weights for {model} in {} (run `tickcast train`)",
            models_dir.display()
        )
    })?;
    let card_bytes = std::fs::read(found.join(format!("{model}.json")))?;
    let card: ModelCard = serde_json::from_slice(&card_bytes)?;
    let staging = store.stage()?;
    for file in [format!("{model}.json"), format!("{model}.safetensors")] {
        std::fs::copy(found.join(&file), staging.dir.join(&file))
            .with_context(|| format!("copying {}", found.join(&file).display()))?;
    }
    let provenance = Provenance {
        build: "pretrained (tickcast train)".into(),
        run_id: None,
        gate: None,
    };
    std::fs::write(
        staging.dir.join("lifecycle.json"),
        serde_json::to_vec_pretty(&provenance)?,
    )?;
    let created_at = chrono::DateTime::parse_from_rfc3339(&card.trained_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    store.commit(
        staging,
        VersionRecord {
            model: model.to_string(),
            version: card.version.clone(),
            state: State::Champion,
            created_at,
            reason: format!("the pretrained weights in {}", found.display()),
            promoted_by: Some("seed".into()),
            promoted_at: Some(Utc::now()),
            run_id: None,
        },
    )?;
    tracing::info!(
        model,
        version = card.version,
        "model registry seeded with the pretrained weights"
    );
    Ok(())
}

/// Loads one version from its directory.
pub fn load(
    store: &Store,
    model: &str,
    version: &str,
    fitter: &Arc<SeriesFitter>,
) -> anyhow::Result<Loaded> {
    let dir = store.version_dir(model, version)?;
    if !dir.join(format!("{model}.safetensors")).is_file() {
        anyhow::bail!(
            "version {version} of {model} has no weights in {}",
            dir.display()
        );
    }
    let network = NeuralPredictor::load(&dir, model)?.with_fitter(Arc::clone(fitter));
    Ok(Loaded::new(network))
}

/// The champion and challenger of `model` as the registry names them.
pub fn load_arms(
    store: &Store,
    model: &str,
    fitter: &Arc<SeriesFitter>,
) -> anyhow::Result<(Loaded, Option<Loaded>)> {
    let champion = store
        .in_state(model, State::Champion)
        .with_context(|| format!("the registry names no champion of {model}"))?;
    let champion = load(store, model, &champion.version, fitter)?;
    let challenger = match store.in_state(model, State::Challenger) {
        Some(r) => Some(load(store, model, &r.version, fitter)?),
        None => None,
    };
    Ok((champion, challenger))
}

/// The gate's comparison of `challenger` with `champion` on every window
/// of `table` whose target falls in `test`.
pub fn compare_on(
    table: &PriceTable,
    test: Period,
    (champion_net, champion_version): (&Network, &str),
    challenger: &Network,
    margins: &Margins,
) -> anyhow::Result<Verdict> {
    let mut windows = Vec::new();
    for symbol in table.keys() {
        let theirs = pretrain::windows_between(
            table,
            symbol,
            champion_net.architecture.sequence_length(),
            1,
            test,
        );
        let ours = pretrain::windows_between(
            table,
            symbol,
            challenger.architecture.sequence_length(),
            1,
            test,
        );
        let theirs_at: HashMap<usize, f64> = theirs
            .iter()
            .map(|w| w.last_close)
            .zip(
                forecasts(champion_net, &theirs, 1)?
                    .into_iter()
                    .map(|f| f.1),
            )
            .collect();
        for (w, f) in ours.iter().zip(forecasts(challenger, &ours, 1)?) {
            if let Some(&c) = theirs_at.get(&w.last_close) {
                windows.push(Paired {
                    champion: c,
                    challenger: f.1,
                    actual: f.2,
                });
            }
        }
    }
    Ok(gate::compare(
        &windows,
        margins,
        champion_version,
        &format!("{}..{}", test.0, test.1),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::neural::pretrain::Split;
    use crate::models::neural::train::{train, TrainConfig};
    use crate::models::neural::windows::Window;
    use crate::models::Budget;

    const STOCKS: [&str; 5] = ["AAPL", "JNJ", "KO", "XOM", "WMT"];

    fn stocks() -> PriceTable {
        let mut all = crate::market::dataset::embedded().unwrap();
        all.retain(|symbol, _| STOCKS.contains(&symbol.as_str()));
        all
    }

    /// One epoch of the LSTM's pretraining plan on the training years of
    /// `STOCKS`, with the targets passed through `treat` first.
    fn trained(table: &PriceTable, treat: impl Fn(&mut [Window])) -> Network {
        let plan = pretrain::plans()
            .into_iter()
            .find(|p| p.model == LSTM)
            .unwrap();
        let split = Split::fixed();
        let symbols: Vec<String> = table.keys().cloned().collect();
        let t = plan.architecture.sequence_length();
        let mut train_set = pretrain::pooled(table, &symbols, t, split.train, 5);
        let stopping = pretrain::pooled(table, &symbols, t, split.validation, 10);
        treat(&mut train_set);
        let network = Network::seeded(plan.architecture.clone(), 7).unwrap();
        let cfg = TrainConfig {
            max_epochs: 1,
            ..plan.training
        };
        train(&network, &train_set, &stopping, &cfg, &Budget::unlimited()).unwrap();
        network
    }

    /// Targets moved to other windows (a fixed permutation) and negated:
    /// nothing left to learn but the wrong sign of the drift.
    fn shuffled_and_negated(windows: &mut [Window]) {
        let n = windows.len();
        let targets: Vec<f32> = windows.iter().map(|w| w.target).collect();
        for (i, w) in windows.iter_mut().enumerate() {
            w.target = -targets[(i * 7919 + n / 2) % n];
        }
    }

    #[test]
    fn the_gate_refuses_a_worse_network_and_passes_a_better_one() {
        let table = stocks();
        let test = Split::fixed().test;
        let margins = Margins::default();
        let pretrained = NeuralPredictor::load(Path::new("models"), LSTM).unwrap();
        let worse = trained(&table, shuffled_and_negated);
        let refused = compare_on(
            &table,
            test,
            (pretrained.network(), "pretrained"),
            &worse,
            &margins,
        )
        .unwrap();
        assert!(!refused.passed, "{}", refused.reason);
        assert!(refused.samples > 4000, "{}", refused.samples);
        assert!(
            refused.accuracy_difference.upper < 0.0,
            "{:?}",
            refused.accuracy_difference
        );

        // With the worse network as champion, an honestly trained one passes.
        let honest = trained(&table, |_| {});
        let passed = compare_on(&table, test, (&worse, "worse"), &honest, &margins).unwrap();
        assert!(passed.passed, "{}", passed.reason);
        assert!(
            passed.challenger.directional_accuracy.estimate
                > passed.champion.directional_accuracy.estimate
        );
    }
}
