//! Market data: symbols, providers and the data manager in front of them.
//! Knows nothing of models or HTTP.

pub mod binance;
pub mod breaker;
pub mod cache;
pub mod calendar;
pub mod dataset;
pub mod ec2;
pub mod fyers;
pub mod http;
pub mod limiter;
pub mod local;
pub mod manager;
pub mod prices;
pub mod provider;
pub mod stats;
pub mod symbols;
pub mod yahoo;

pub use manager::{
    CachePolicy, DataManager, HistoryObserver, MarketError, MarketHealth, PriceableStock,
    QuoteReport,
};
pub use prices::{Candle, History, Interval, Quote, Span, Staleness};
pub use provider::{Provider, ProviderError};
pub use symbols::{SymbolForm, SymbolMapper};
