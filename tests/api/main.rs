//! Black-box tests: the real router on a free port, called over HTTP.

mod abuse;
mod admin;
mod auth;
mod backtest;
mod catalog;
mod crypto;
mod demo;
mod enhanced_ml;
mod ensemble;
mod environment;
mod errors;
mod golden;
mod hardening;
mod helpers;
mod intervals;
mod legacy_page;
mod networks;
mod openapi;
mod ops;
mod optimizer;
mod options;
mod production;
mod risk;
mod stream;
mod tracking;
mod volatility;
