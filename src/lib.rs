//! tickcast: stock price predictions and portfolio optimisation over real
//! market data, behind the legacy service's JSON API.

pub mod api;
pub mod catalog;
pub mod config;
pub mod demo;
pub mod environment;
pub mod error;
pub mod forecast;
pub mod market;
pub mod models;
pub mod startup;
pub mod stream;
pub mod telemetry;
pub mod throttle;

pub use api::state::AppState;
pub use startup::Application;
