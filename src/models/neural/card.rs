//! Model cards: what a set of pretrained weights is, how it was trained and
//! how well it did, stored as JSON next to the safetensors weights.

use serde::{Deserialize, Serialize};

use super::metrics::{Calibration, HeldOut};
use super::train::{TrainConfig, TrainReport};
use super::Architecture;

/// A chronological split of the pooled dataset, by the date of each
/// window's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSplit {
    pub symbols: Vec<String>,
    pub train: String,
    pub validation: String,
    pub test: String,
    /// Only every `stride`-th window of the training and early-stopping sets
    /// is used (neighbouring windows share all but one return).
    pub stride: usize,
    pub train_windows: usize,
    pub validation_windows: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// The served name, e.g. `lstm_predictor`.
    pub model: String,
    /// `<model>-<date>-<hash of the weights>`.
    pub version: String,
    pub architecture: Architecture,
    pub horizon: usize,
    pub training: TrainConfig,
    pub data: DataSplit,
    pub report: TrainReport,
    /// Quality on the validation period (also the calibration data).
    pub validation: HeldOut,
    /// Quality on the held-out test period, never used for fitting or stopping.
    pub test: HeldOut,
    pub calibration: Calibration,
    pub trained_at: String,
    pub threads: usize,
}

/// A short, stable hash of weight bytes for version ids (FNV-1a, 64 bit).
pub fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")[..10].to_string()
}
