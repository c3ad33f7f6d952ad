//! A Transformer encoder over scaled returns: a linear embedding of each
//! return plus fixed sinusoidal positions, post-norm encoder layers
//! (multi-head self-attention and a ReLU feed-forward, as PyTorch's
//! `TransformerEncoderLayer` with `norm_first = false`), and a linear head on
//! the last position.
//!
//! The dense layers, attention and layer norm are ops with hand-written
//! backward passes ([`super::kernels`]); candle's fused `LayerNorm::forward`
//! and `softmax_last_dim` have none and would silently leave the encoder
//! untrained.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::kernels::attention::self_attention;
use super::kernels::dense::Dense;
use super::kernels::layer_norm::layer_norm;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    pub sequence_length: usize,
    pub d_model: usize,
    pub attention_heads: usize,
    pub feed_forward: usize,
    pub num_layers: usize,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            sequence_length: 30,
            d_model: 64,
            attention_heads: 4,
            feed_forward: 128,
            num_layers: 2,
        }
    }
}

const LN_EPS: f64 = 1e-5;

struct Norm {
    weight: Tensor,
    bias: Tensor,
}

impl Norm {
    fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Norm {
            weight: vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        layer_norm(xs, &self.weight, &self.bias, LN_EPS)
    }
}

struct EncoderLayer {
    qkv: Dense,
    out: Dense,
    norm1: Norm,
    ff1: Dense,
    ff2: Dense,
    norm2: Norm,
    heads: usize,
}

impl EncoderLayer {
    fn new(cfg: &TransformerConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        Ok(EncoderLayer {
            qkv: Dense::new(d, 3 * d, vb.pp("attn.qkv"))?,
            out: Dense::new(d, d, vb.pp("attn.out"))?,
            norm1: Norm::new(d, vb.pp("ln1"))?,
            ff1: Dense::new(d, cfg.feed_forward, vb.pp("ff1"))?,
            ff2: Dense::new(cfg.feed_forward, d, vb.pp("ff2"))?,
            norm2: Norm::new(d, vb.pp("ln2"))?,
            heads: cfg.attention_heads,
        })
    }

    fn attention(&self, xs: &Tensor) -> Result<Tensor> {
        let context = self_attention(&self.qkv.forward(xs)?, self.heads)?;
        self.out.forward(&context)
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.norm1.forward(&(xs + self.attention(xs)?)?)?;
        let ff = self.ff2.forward(&self.ff1.forward(&xs)?.relu()?)?;
        self.norm2.forward(&(xs + ff)?)
    }
}

pub struct Transformer {
    embed: Dense,
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    head: Dense,
}

/// Vaswani et al.'s fixed positional encoding, `[T, D]`.
fn sinusoidal_positions(t: usize, d: usize, device: &Device) -> Result<Tensor> {
    let mut table = vec![0f32; t * d];
    for pos in 0..t {
        for i in 0..d {
            let freq = 1.0 / 10000f64.powf((2 * (i / 2)) as f64 / d as f64);
            let angle = pos as f64 * freq;
            table[pos * d + i] = if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
        }
    }
    Tensor::from_vec(table, (t, d), device)
}

impl Transformer {
    pub fn new(cfg: &TransformerConfig, vb: VarBuilder) -> Result<Self> {
        if cfg.attention_heads == 0 || !cfg.d_model.is_multiple_of(cfg.attention_heads) {
            candle_core::bail!(
                "d_model {} is not a multiple of attention_heads {}",
                cfg.d_model,
                cfg.attention_heads
            );
        }
        let layers = (0..cfg.num_layers)
            .map(|l| EncoderLayer::new(cfg, vb.pp(format!("encoder.l{l}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Transformer {
            embed: Dense::new(1, cfg.d_model, vb.pp("embed"))?,
            positions: sinusoidal_positions(cfg.sequence_length, cfg.d_model, vb.device())?
                .to_dtype(DType::F32)?,
            layers,
            head: Dense::new(cfg.d_model, 1, vb.pp("head"))?,
        })
    }
}

impl Module for Transformer {
    /// `xs [B, T, 1]` -> `[B, 1]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let t = xs.dim(1)?;
        let mut hs = self
            .embed
            .forward(xs)?
            .broadcast_add(&self.positions.narrow(0, 0, t)?)?;
        for layer in &self.layers {
            hs = layer.forward(&hs)?;
        }
        self.head.forward(&hs.narrow(1, t - 1, 1)?.squeeze(1)?)
    }
}
