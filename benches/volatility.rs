//! GARCH-family fits (maximisation plus robust standard errors) on the last
//! 2 500 closes of AAPL in the embedded data, read from the reference
//! fixture so that arch is timed on the very same closes; plus one
//! out-of-sample evaluation (500 held-out days, a refit every 21).
//!
//! Run: cargo bench --bench volatility
//! Reference: python benches/reference/arch_bench.py (same inputs).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tickcast::models::volatility::evaluate::{evaluate, EvaluationConfig};
use tickcast::models::volatility::{fit, Distribution, GarchSpec, Mean, Model};

fn closes() -> Vec<f64> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/fixtures/garch_aapl.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    doc["closes"]
        .as_array()
        .expect("closes")
        .iter()
        .map(|p| p.as_f64().expect("close"))
        .collect()
}

fn fits(c: &mut Criterion) {
    let closes = closes();
    let mut group = c.benchmark_group("garch_fit_2500");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(8));
    for (name, model, distribution) in [
        ("garch_normal", Model::Garch, Distribution::Normal),
        ("gjr_normal", Model::Gjr, Distribution::Normal),
        ("garch_t", Model::Garch, Distribution::StudentT),
        ("gjr_t", Model::Gjr, Distribution::StudentT),
    ] {
        let spec = GarchSpec::new(model, distribution, Mean::Constant);
        group.bench_function(name, |b| {
            b.iter(|| fit(black_box(&closes), spec).expect("fit"))
        });
    }
    group.finish();
}

fn evaluation(c: &mut Criterion) {
    let closes = closes();
    let mut group = c.benchmark_group("evaluate_2500");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("garch_normal_500_days_refit_21", |b| {
        b.iter(|| evaluate(black_box(&closes), &EvaluationConfig::default()).expect("evaluate"))
    });
    group.finish();
}

criterion_group!(benches, fits, evaluation);
criterion_main!(benches);
