//! The adaptive ensemble: a cold fit (five learners, each fitted twice: on
//! the rows before the adaptation window and on all rows) of AAPL's last
//! 250, 500 and 2000 closes, each learner alone on the 500-close rows, and
//! a cached prediction through the served model.
//! benches/reference/sklearn_ensemble.py fits the same five learners on
//! the same features with scikit-learn.
//!
//! Run: RAYON_NUM_THREADS=1 cargo bench --bench ensemble

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tickcast::market::dataset;
use tickcast::models::ensemble::features;
use tickcast::models::ensemble::learners::Learner;
use tickcast::models::ensemble::predictor::{blend, EnsembleParams};
use tickcast::models::Budget;
use tickcast::models::{ModelInput, PriceSeries, RawParams};

fn aapl(n: usize) -> Vec<f64> {
    let table = dataset::embedded().expect("embedded data");
    let bars = &table["AAPL"];
    bars[bars.len() - n..].iter().map(|b| b.close).collect()
}

fn cold_fit(c: &mut Criterion) {
    let mut group = c.benchmark_group("ensemble_cold_fit");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let params = EnsembleParams::default();
    for n in [250, 500, 2000] {
        let closes = aapl(n);
        group.bench_function(format!("{n}_closes"), |b| {
            b.iter(|| blend(black_box(&closes), &params, &Budget::unlimited()).unwrap())
        });
    }
    group.finish();
}

fn each_learner(c: &mut Criterion) {
    let rows = features::rows(&aapl(500), 1);
    let x: Vec<Vec<f64>> = rows.iter().map(|r| r.features.to_vec()).collect();
    let y: Vec<f64> = rows.iter().map(|r| r.target).collect();
    let mut group = c.benchmark_group("learner_fit_500_closes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for learner in Learner::ALL {
        group.bench_function(learner.name(), |b| {
            b.iter(|| {
                learner
                    .fit_predict(black_box(&x), &y, &x[..1], 7, &Budget::unlimited())
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn cached(c: &mut Criterion) {
    let registry = tickcast::models::served();
    let ensemble = registry
        .get("adaptive_ensemble")
        .unwrap()
        .configure(&RawParams::new())
        .unwrap();
    let input = ModelInput::Series(PriceSeries::new(aapl(250)).unwrap());
    ensemble.predict(&input, &Budget::unlimited()).unwrap();
    c.bench_function("ensemble_cached_predict_250_closes", |b| {
        b.iter(|| {
            ensemble
                .predict(black_box(&input), &Budget::unlimited())
                .unwrap()
        })
    });
}

criterion_group!(benches, cold_fit, each_learner, cached);
criterion_main!(benches);
