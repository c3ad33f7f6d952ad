//! The adaptive ensemble's building blocks.

pub mod features;
pub mod weights;
