//! Black-box tests: the real router on a free port, called over HTTP.

mod admin;
mod catalog;
mod enhanced_ml;
mod environment;
mod errors;
mod helpers;
mod ops;
mod optimizer;
mod production;
