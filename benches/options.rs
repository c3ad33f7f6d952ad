//! Option engines on the inputs of benches/reference/options_bench.py:
//! S = 100, K = 105, T = 182/365, σ = 25 %, r = 5 %, q = 2 %.
//!
//! Run: cargo bench --bench options
//! Reference: python benches/reference/options_bench.py (QuantLib 1.44).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tickcast::models::options::{
    baw, binomial, black_scholes, implied, Kind, Method, OptionInputs, Style,
};

fn probe(kind: Kind) -> OptionInputs {
    OptionInputs::new(kind, 100.0, 105.0, 182.0 / 365.0, 0.25, 0.05, 0.02).expect("inputs")
}

/// 1 000 European quotes over strikes 60-160 and expiries of 1 month to
/// 2 years, priced at 10-100 % volatility, the prices to invert.
fn quotes() -> Vec<(OptionInputs, f64)> {
    (0..1000)
        .map(|i| {
            let strike = 60.0 + (i % 100) as f64;
            let expiry = 1.0 / 12.0 + (i / 100) as f64 * 0.2;
            let vol = 0.1 + 0.09 * (i % 11) as f64;
            let kind = if strike >= 100.0 {
                Kind::Call
            } else {
                Kind::Put
            };
            let o =
                OptionInputs::new(kind, 100.0, strike, expiry, vol, 0.03, 0.01).expect("inputs");
            (o, black_scholes::price(&o))
        })
        .collect()
}

fn european(c: &mut Criterion) {
    let call = probe(Kind::Call);
    c.bench_function("european_price_and_greeks", |b| {
        b.iter(|| black_scholes::value(black_box(&call)))
    });
    c.bench_function("european_price", |b| {
        b.iter(|| black_scholes::price(black_box(&call)))
    });
    let quotes = quotes();
    c.bench_function("implied_volatility_1000", |b| {
        b.iter(|| {
            quotes
                .iter()
                .map(|(o, p)| {
                    implied::implied_volatility(
                        o,
                        black_box(*p),
                        Style::European,
                        Method::Analytic,
                        0,
                    )
                    .expect("iv")
                })
                .sum::<f64>()
        })
    });
}

fn american(c: &mut Criterion) {
    let put = probe(Kind::Put);
    let mut group = c.benchmark_group("american_put");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(6));
    group.bench_function("crr_500_price", |b| {
        b.iter(|| binomial::price(black_box(&put), Style::American, 500).expect("tree"))
    });
    group.bench_function("crr_500_price_and_greeks", |b| {
        b.iter(|| binomial::value(black_box(&put), Style::American, 500).expect("tree"))
    });
    group.bench_function("baw_price", |b| b.iter(|| baw::price(black_box(&put))));
    group.bench_function("baw_price_and_greeks", |b| {
        b.iter(|| baw::value(black_box(&put)))
    });
    group.finish();
}

criterion_group!(benches, european, american);
criterion_main!(benches);
