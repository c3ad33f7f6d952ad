//! The LSTM and Transformer return forecasters (candle, CPU): architectures,
//! training, pretrained weights with their model cards, and the predictors
//! that serve them.

pub mod card;
pub mod fit;
pub mod kernels;
pub mod lstm;
pub mod metrics;
pub mod params;
pub mod predictor;
pub mod pretrain;
pub mod train;
pub mod transformer;
pub mod windows;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub use lstm::{Lstm, LstmConfig};
pub use transformer::{Transformer, TransformerConfig};

pub const LSTM: &str = "lstm_predictor";
pub const TRANSFORMER: &str = "transformer_predictor";

/// Which network, with its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    Lstm(LstmConfig),
    Transformer(TransformerConfig),
}

impl Architecture {
    pub fn sequence_length(&self) -> usize {
        match self {
            Architecture::Lstm(c) => c.sequence_length,
            Architecture::Transformer(c) => c.sequence_length,
        }
    }
}

/// A network and the variables that hold its weights.
pub struct Network {
    pub architecture: Architecture,
    varmap: VarMap,
    model: Box<dyn Module + Send + Sync>,
}

impl Network {
    /// A new network with weights drawn from `seed` (see [`seed_vars`]).
    pub fn seeded(architecture: Architecture, seed: u64) -> candle_core::Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = build(&architecture, vb)?;
        let network = Network {
            architecture,
            varmap,
            model,
        };
        network.reseed(seed)?;
        Ok(network)
    }

    /// A network with the weights in `safetensors` (as [`Network::save`] wrote them).
    pub fn from_bytes(architecture: Architecture, safetensors: &[u8]) -> candle_core::Result<Self> {
        let network = Network::seeded(architecture, 0)?;
        let stored = candle_core::safetensors::load_buffer(safetensors, &Device::Cpu)?;
        let data = network
            .varmap
            .data()
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (name, var) in data.iter() {
            let value = stored.get(name).ok_or_else(|| {
                candle_core::Error::Msg(format!("weights lack the variable {name}"))
            })?;
            var.set(value)?;
        }
        if stored.len() != data.len() {
            candle_core::bail!(
                "weights hold {} variables, the architecture {}",
                stored.len(),
                data.len()
            );
        }
        drop(data);
        Ok(network)
    }

    /// Writes the weights as safetensors.
    pub fn save(&self, path: &std::path::Path) -> candle_core::Result<()> {
        let tensors: std::collections::HashMap<String, Tensor> = self
            .named_vars()
            .into_iter()
            .map(|(name, var)| (name, var.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&tensors, path)
    }

    /// Every weight, in name order (for comparing networks).
    pub fn flat_weights(&self) -> candle_core::Result<Vec<f32>> {
        let mut all = Vec::new();
        for (_, var) in self.named_vars() {
            all.extend(var.as_tensor().flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(all)
    }

    /// Variables in name order (the order seeding and hashing rely on).
    pub fn named_vars(&self) -> Vec<(String, candle_core::Var)> {
        sorted_vars(&self.varmap)
    }

    pub fn vars(&self) -> Vec<candle_core::Var> {
        self.named_vars().into_iter().map(|(_, v)| v).collect()
    }

    fn reseed(&self, seed: u64) -> candle_core::Result<()> {
        seed_vars(&self.varmap, seed)
    }

    /// `xs [B, T, 1]` -> scaled predictions `[B, 1]`.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.model.forward(xs)
    }

    /// Scaled predictions for windows of scaled returns.
    pub fn predict(&self, windows: &[&[f32]]) -> candle_core::Result<Vec<f32>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let t = windows[0].len();
        let flat: Vec<f32> = windows.iter().flat_map(|w| w.iter().copied()).collect();
        let xs = Tensor::from_vec(flat, (windows.len(), t, 1), &Device::Cpu)?;
        self.forward(&xs)?.flatten_all()?.to_vec1::<f32>()
    }
}

fn build(
    architecture: &Architecture,
    vb: VarBuilder,
) -> candle_core::Result<Box<dyn Module + Send + Sync>> {
    Ok(match architecture {
        Architecture::Lstm(cfg) => Box::new(Lstm::new(cfg, vb)?),
        Architecture::Transformer(cfg) => Box::new(Transformer::new(cfg, vb)?),
    })
}

/// The variables of `varmap` in name order.
pub fn sorted_vars(varmap: &VarMap) -> Vec<(String, candle_core::Var)> {
    let data = varmap.data().lock().unwrap_or_else(|p| p.into_inner());
    let mut vars: Vec<(String, candle_core::Var)> =
        data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Overwrites every variable in name order from a generator seeded with
/// `seed` (candle's CPU RNG cannot be seeded): PyTorch's
/// uniform(+-1/sqrt(fan_in)) rule; layer norms (`.ln` in the name) keep
/// their constant start.
pub fn seed_vars(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let vars = sorted_vars(varmap);
    let fan_in = |name: &str, shape: &[usize]| -> usize {
        if shape.len() == 2 {
            return shape[1];
        }
        // A bias takes its layer's fan-in, from the sibling weight.
        let prefix = name.rsplit_once('.').map_or("", |(p, _)| p);
        vars.iter()
            .find(|(n, v)| {
                v.dims().len() == 2
                    && (n == &format!("{prefix}.weight") || n == &format!("{prefix}.weight_hh"))
            })
            .map_or(shape[0], |(_, v)| v.dims()[1])
    };
    for (name, var) in &vars {
        if name.contains(".ln") {
            continue;
        }
        let shape = var.dims().to_vec();
        let bound = 1.0 / (fan_in(name, &shape).max(1) as f32).sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        var.set(&Tensor::from_vec(values, shape, &Device::Cpu)?)?;
    }
    Ok(())
}
