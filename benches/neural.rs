//! The LSTM and Transformer: inference of the pretrained models on one
//! window (through the predictor, as a request runs it), and one training
//! epoch on AAPL's last 1000 closes (979 windows of 20 returns for the
//! LSTM, 969 of 30 for the Transformers), batch 64, as
//! benches/reference/torch_train.py does with PyTorch.
//!
//! Run: RAYON_NUM_THREADS=1 cargo bench --bench neural
//! (the service runs candle on one thread per request; see docs/performance.md)

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tickcast::market::dataset;
use tickcast::models::neural::train::{train, TrainConfig};
use tickcast::models::neural::windows::windows;
use tickcast::models::neural::{Architecture, LstmConfig, Network, TransformerConfig};
use tickcast::models::Budget;
use tickcast::models::{ModelInput, PriceSeries, RawParams};

fn aapl(n: usize) -> Vec<f64> {
    let table = dataset::embedded().expect("embedded data");
    let bars = &table["AAPL"];
    bars[bars.len() - n..].iter().map(|b| b.close).collect()
}

fn inference(c: &mut Criterion) {
    let registry = tickcast::models::served();
    let input = ModelInput::Series(PriceSeries::new(aapl(250)).unwrap());
    let mut group = c.benchmark_group("inference");
    for model in ["lstm_predictor", "transformer_predictor"] {
        let run = registry
            .get(model)
            .unwrap()
            .configure(&RawParams::new())
            .unwrap();
        group.bench_function(model, |b| {
            b.iter(|| {
                run.predict(black_box(&input), &Budget::unlimited())
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn training_epoch(c: &mut Criterion) {
    let closes = aapl(1000);
    let mut group = c.benchmark_group("train_epoch_1000_closes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let transformer = |layers| {
        Architecture::Transformer(TransformerConfig {
            num_layers: layers,
            ..TransformerConfig::default()
        })
    };
    let cases = [
        ("lstm_h50", Architecture::Lstm(LstmConfig::default())),
        ("transformer_d64_1_layer", transformer(1)),
        ("transformer_d64_2_layers", transformer(2)),
    ];
    let cfg = TrainConfig {
        max_epochs: 1,
        ..TrainConfig::default()
    };
    for (name, architecture) in cases {
        let ws = windows(&closes, architecture.sequence_length(), 1);
        let network = Network::seeded(architecture, 7).unwrap();
        // Early stopping needs a validation set; a single batch keeps its cost small.
        let validation = &ws[ws.len() - 64..];
        group.bench_function(name, |b| {
            b.iter(|| {
                train(
                    &network,
                    black_box(&ws),
                    validation,
                    &cfg,
                    &Budget::unlimited(),
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, inference, training_epoch);
criterion_main!(benches);
