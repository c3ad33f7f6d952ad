//! Portfolio VaR of 20 assets (the embedded stocks, equal weights) over
//! their last 1 501 closes: a 1 000-day window, levels 0.95 and 0.99, one
//! day, and a backtest of the last 500 days; all four methods together and
//! each alone.
//!
//! Run: cargo bench --bench risk
//! Reference: python benches/reference/var_bench.py (same inputs).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tickcast::models::risk::{assess, Method, Portfolio, RiskParams};

const SYMBOLS: [&str; 20] = [
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT",
    "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
];
const CLOSES: usize = 1501;

fn portfolio() -> Portfolio {
    let file = std::fs::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sp500_dataset.csv.gz"
    ))
    .expect("embedded data");
    let mut csv = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    let headers = csv.headers().expect("header").clone();
    let columns: Vec<usize> = SYMBOLS
        .iter()
        .map(|s| headers.iter().position(|h| h == *s).expect("symbol"))
        .collect();
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.expect("row")).collect();
    let closes: Vec<Vec<f64>> = columns
        .iter()
        .map(|&c| {
            rows[rows.len() - CLOSES..]
                .iter()
                .map(|r| r[c].parse().expect("close"))
                .collect()
        })
        .collect();
    let symbols = SYMBOLS.iter().map(|s| s.to_string()).collect();
    Portfolio::new(symbols, vec![1.0 / 20.0; 20], &closes, None).expect("portfolio")
}

fn var(c: &mut Criterion) {
    let portfolio = portfolio();
    let mut group = c.benchmark_group("var_20x1000_backtest_500");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    let runs: [(&str, Vec<Method>); 5] = [
        ("all_methods", Method::ALL.to_vec()),
        ("historical", vec![Method::Historical]),
        ("parametric", vec![Method::Parametric]),
        ("cornish_fisher", vec![Method::CornishFisher]),
        ("filtered_historical", vec![Method::FilteredHistorical]),
    ];
    for (name, methods) in runs {
        let params = RiskParams::new(vec![0.95, 0.99], 1, methods, 1000, 500).expect("params");
        group.bench_function(name, |b| {
            b.iter(|| assess(black_box(&portfolio), &params).expect("assess"))
        });
    }
    group.finish();
}

criterion_group!(benches, var);
criterion_main!(benches);
