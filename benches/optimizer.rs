//! Portfolio optimiser end to end (returns, covariance, solve) per method,
//! for 20 assets x 252 days (the real embedded stocks), and 100 x 756 and
//! 500 x 1260 (synthetic, see `synthetic_closes`); min CVaR on 20 x 252,
//! 20 x 1260 (real) and 100 x 1260 (synthetic), and a 20-point efficient
//! frontier on 20 x 252 and 100 x 1260. `qp_form` times the min-variance
//! and max-Sharpe solves alone with the covariance posed dense (P = 2Σ) and
//! in factor form (z = Fw, F the centred returns over sqrt(T - 1)), from
//! which `solve::faster_form` picks.
//!
//! Run: cargo bench --bench optimizer (`-- min_cvar`, `-- frontier` or
//! `-- qp_form` for those groups alone).
//! Reference: python benches/reference/pypfopt_bench.py and
//! python benches/reference/cvar_bench.py (same inputs).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tickcast::market::dataset;
use tickcast::models::portfolio::solve::{self, Risk};
use tickcast::models::portfolio::{estimate, optimize, AssetSeries, Method, OptimizeParams};

/// splitmix64, so the Python reference can draw the same numbers.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `assets` series of `days` closes: asset k follows real stock k mod 20's
/// daily returns over the last `days` closes, plus uniform noise of ±0.5 %
/// from splitmix64(k * 1_000_003 + t); asset k < 20 is the real stock itself.
fn synthetic_closes(assets: usize, days: usize) -> Vec<AssetSeries> {
    let table = dataset::embedded().expect("embedded data");
    let real: Vec<(&String, Vec<f64>)> = table
        .iter()
        .filter(|(s, _)| !s.starts_with('^'))
        .map(|(s, bars)| {
            (
                s,
                bars[bars.len() - days..].iter().map(|b| b.close).collect(),
            )
        })
        .collect();
    (0..assets)
        .map(|k| {
            let (symbol, base) = &real[k % real.len()];
            if k < real.len() {
                return AssetSeries {
                    symbol: symbol.to_string(),
                    closes: base.clone(),
                };
            }
            let mut closes = vec![100.0];
            for t in 1..days {
                let u = (splitmix((k as u64) * 1_000_003 + t as u64) >> 11) as f64
                    / (1u64 << 53) as f64;
                let r = base[t] / base[t - 1] - 1.0 + 0.01 * (u - 0.5);
                closes.push(closes[t - 1] * (1.0 + r));
            }
            AssetSeries {
                symbol: format!("{symbol}_{k}"),
                closes,
            }
        })
        .collect()
}

fn methods(c: &mut Criterion) {
    for (assets, days) in [(20, 252), (100, 756), (500, 1260)] {
        let data = synthetic_closes(assets, days);
        let mut group = c.benchmark_group(format!("optimize_{assets}x{days}"));
        if assets >= 100 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(10));
        }
        for method in [
            Method::EqualWeight,
            Method::MinVariance,
            Method::MaxSharpe,
            Method::RiskParity,
        ] {
            let params = OptimizeParams {
                method,
                ..Default::default()
            };
            group.bench_with_input(BenchmarkId::from_parameter(method), &data, |b, data| {
                b.iter(|| optimize(black_box(data), &params).expect("solves"))
            });
        }
        group.finish();
    }
}

fn tail_and_frontier(c: &mut Criterion) {
    let mut group = c.benchmark_group("min_cvar");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (assets, days) in [(20, 252), (20, 1260), (100, 1260)] {
        let data = synthetic_closes(assets, days);
        let params = OptimizeParams {
            method: Method::MinCvar,
            ..Default::default()
        };
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{assets}x{days}")),
            &data,
            |b, data| b.iter(|| optimize(black_box(data), &params).expect("solves")),
        );
    }
    group.finish();
    let mut group = c.benchmark_group("efficient_frontier_20");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (assets, days) in [(20, 252), (100, 1260)] {
        let data = synthetic_closes(assets, days);
        let params = OptimizeParams {
            method: Method::EfficientFrontier,
            frontier_points: 20,
            ..Default::default()
        };
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{assets}x{days}")),
            &data,
            |b, data| b.iter(|| optimize(black_box(data), &params).expect("solves")),
        );
    }
    group.finish();
}

fn qp_forms(c: &mut Criterion) {
    let mut group = c.benchmark_group("qp_form");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (assets, days) in [(20, 252), (100, 756), (500, 1260)] {
        let data = synthetic_closes(assets, days);
        let series: Vec<&[f64]> = data.iter().map(|a| a.closes.as_slice()).collect();
        let returns = estimate::simple_returns(&series, days);
        let cov = estimate::sample_covariance(&returns);
        let mean = estimate::mean(&returns);
        let factor = estimate::sample_factor(&returns);
        let forms = [
            ("dense", Risk::Dense(&cov)),
            (
                "factor",
                Risk::Factor {
                    cov: &cov,
                    factor: &factor,
                },
            ),
        ];
        for (name, risk) in forms {
            let id = |m: &str| BenchmarkId::new(format!("{m}_{name}"), format!("{assets}x{days}"));
            group.bench_function(id("min_variance"), |b| {
                b.iter(|| solve::min_variance_posed(black_box(risk), (0.0, 1.0)).expect("solves"))
            });
            group.bench_function(id("max_sharpe"), |b| {
                b.iter(|| {
                    solve::max_sharpe_posed(black_box(risk), &mean, 0.0, (0.0, 1.0))
                        .expect("solves")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, methods, tail_and_frontier, qp_forms);
criterion_main!(benches);
