//! The LSTM and Transformer: inference of the pretrained models (through
//! the predictor, as a request runs it: the latest window and the
//! calibration windows of its interval), the network alone on one window,
//! and one training
//! epoch on AAPL's last 1000 closes (979 windows of 20 returns for the
//! LSTM, 969 of 30 for the Transformers), batch 64, as
//! benches/reference/torch_train.py does with PyTorch.
//!
//! Run: RAYON_NUM_THREADS=1 cargo bench --bench neural
//! (the service runs candle on one thread per request; see docs/performance.md)

use std::hint::black_box;
use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use tickcast::market::dataset;
use tickcast::models::neural::train::{train, TrainConfig};
use tickcast::models::neural::windows::windows;
use tickcast::models::neural::{Architecture, LstmConfig, Network, TransformerConfig};
use tickcast::models::Budget;
use tickcast::models::{ModelInput, PriceSeries, RawParams};

// The service's allocator: the training thread and requests run with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The network alone on one window (batch 1), as PyTorch's `infer_us`
/// times it: what a forecast costs without its calibration.
fn forward_one_window(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_one_window");
    for (name, architecture) in [
        ("lstm_h50", Architecture::Lstm(LstmConfig::default())),
        (
            "transformer_d64_2_layers",
            Architecture::Transformer(TransformerConfig::default()),
        ),
    ] {
        let t = architecture.sequence_length();
        let network = Network::seeded(architecture, 7).unwrap();
        let window: Vec<f32> = (0..t).map(|i| (i as f32 * 0.7).sin()).collect();
        let xs = Tensor::from_vec(window, (1, t, 1), &Device::Cpu).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| network.forward(black_box(&xs)).unwrap())
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

criterion_group!(benches, inference, forward_one_window, training_epoch);
criterion_main!(benches);
