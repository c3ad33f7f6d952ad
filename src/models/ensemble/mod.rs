//! The adaptive ensemble's building blocks.

pub mod features;
pub mod mlp;
pub mod weights;
