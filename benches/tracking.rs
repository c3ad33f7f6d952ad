//! Live tracking's cost per served forecast and per served history, with
//! the store nearly empty and with it full, to show both stay flat as it
//! grows (recording dedups by hash and drops the oldest from a queue; a
//! served history with nothing due is a lookup).
//!
//! Run: cargo bench --bench tracking

use std::hint::black_box;

use chrono::{Duration, NaiveDate, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tickcast::models::tracking::{Forecast, Tracker};

/// Forecast `i`, distinct from every other: 50 symbols, 3 models, a new
/// day every 150 forecasts.
fn forecast(i: u64) -> Forecast {
    let day = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + Duration::days((i / 150) as i64);
    Forecast {
        model: format!("model_{}", i % 3),
        model_version: "v1".into(),
        symbol: format!("S{}", i % 50),
        made_at: Utc::now(),
        as_of: day,
        horizon: 1,
        current_price: 100.0,
        predicted_return: 0.001,
        confidence: 0.5,
        interval: None,
    }
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracking_record");
    for capacity in [1_000usize, 100_000] {
        let tracker = Tracker::new(capacity, 100);
        // Fill to capacity, so every new forecast also drops the oldest.
        for i in 0..capacity as u64 * 2 {
            tracker.record(forecast(i));
        }
        let mut i = capacity as u64 * 2;
        group.bench_with_input(BenchmarkId::from_parameter(capacity), &capacity, |b, _| {
            b.iter(|| {
                i += 1;
                tracker.record(black_box(forecast(i)));
            })
        });
    }
    group.finish();
}

fn observe(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracking_observe_nothing_due");
    let bars: Vec<(NaiveDate, f64)> = (0..1000)
        .map(|d| {
            (
                NaiveDate::from_ymd_opt(2015, 1, 1).unwrap() + Duration::days(d),
                100.0,
            )
        })
        .collect();
    for capacity in [1_000usize, 100_000] {
        let tracker = Tracker::new(capacity, 100);
        for i in 0..capacity as u64 {
            tracker.record(forecast(i));
        }
        group.bench_with_input(BenchmarkId::from_parameter(capacity), &capacity, |b, _| {
            b.iter(|| tracker.observe(black_box("S7"), &bars))
        });
    }
    group.finish();
}

criterion_group!(benches, record, observe);
criterion_main!(benches);
