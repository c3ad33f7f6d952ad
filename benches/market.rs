//! Data-layer costs on the embedded dataset: quotes and history lookups
//! through the DataManager, and parsing the dataset at startup.
//!
//! Run: cargo bench --bench market

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tickcast::config::Environment;
use tickcast::market::breaker::BreakerConfig;
use tickcast::market::local::LocalProvider;
use tickcast::market::{dataset, CachePolicy, DataManager, Interval, Provider, Span, SymbolMapper};

const SYMBOLS: [&str; 20] = [
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT",
    "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
];

fn manager() -> DataManager {
    let table = dataset::embedded().expect("embedded dataset parses");
    let local: Arc<dyn Provider> = Arc::new(LocalProvider::from_table(table));
    let mapper = Arc::new(SymbolMapper::built_in().expect("mapping parses"));
    DataManager::new(
        vec![local],
        mapper,
        Environment::Development,
        CachePolicy::default(),
        BreakerConfig::default(),
    )
}

fn data_manager(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dm = manager();
    let symbols: Vec<String> = SYMBOLS.iter().map(|s| s.to_string()).collect();
    c.bench_function("quotes_20_symbols_local", |b| {
        b.iter(|| rt.block_on(dm.quotes(black_box(&symbols))))
    });
    c.bench_function("history_252_bars_local", |b| {
        b.iter(|| rt.block_on(dm.history(black_box("AAPL"), Span::LastBars(252), Interval::Daily)))
    });
}

/// 50 symbols (the 20 embedded stocks' series under 50 names) with every
/// quote already cached: the cost of a warm `portfolio_data` lookup.
fn warm_quotes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let table = dataset::embedded().expect("embedded dataset parses");
    let series: Vec<_> = table.values().cloned().collect();
    let wide: dataset::PriceTable = (0..50)
        .map(|i| (format!("S{i:02}"), series[i % series.len()].clone()))
        .collect();
    let local: Arc<dyn Provider> = Arc::new(LocalProvider::from_table(wide));
    let mapper = Arc::new(SymbolMapper::built_in().expect("mapping parses"));
    let dm = DataManager::new(
        vec![local],
        mapper,
        Environment::Development,
        CachePolicy {
            quote_ttl: std::time::Duration::from_secs(3600),
            ..CachePolicy::default()
        },
        BreakerConfig::default(),
    );
    let symbols: Vec<String> = (0..50).map(|i| format!("S{i:02}")).collect();
    rt.block_on(dm.quotes(&symbols));
    c.bench_function("quotes_50_symbols_warm_cache", |b| {
        b.iter(|| rt.block_on(dm.quotes(black_box(&symbols))))
    });
}

fn startup(c: &mut Criterion) {
    c.bench_function("parse_embedded_dataset", |b| b.iter(dataset::embedded));
}

criterion_group!(benches, data_manager, warm_quotes, startup);
criterion_main!(benches);
