//! tickcast: stock price predictions and portfolio optimisation over real
//! market data, behind the legacy service's JSON API.

pub mod api;
pub mod catalog;
pub mod config;
pub mod demo;
pub mod error;
pub mod market;
pub mod models;
pub mod startup;
pub mod telemetry;
pub mod throttle;

pub use startup::{AppState, Application};
