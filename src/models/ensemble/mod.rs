//! The adaptive ensemble's building blocks.

pub mod features;
pub mod learners;
pub mod mlp;
pub mod params;
pub mod predictor;
pub mod scale;
pub mod weights;
