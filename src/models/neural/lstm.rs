//! A stacked LSTM over scaled returns with a linear head on the last hidden state.
//!
//! The cell is written out rather than taken from `candle_nn::LSTM`, so that
//! layers stack under one config and the input projection of every time step
//! is a single matmul up front; the recurrence over the steps is one op with
//! a hand-written backward pass ([`super::kernels::recurrence`]). Gate order
//! and parameter shapes follow PyTorch (`i, f, g, o`; `weight_ih [4H, in]`,
//! `weight_hh [4H, H]`, one bias).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::kernels::dense::Dense;
use super::kernels::recurrence::recurrence;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LstmConfig {
    /// Returns per input window.
    pub sequence_length: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
}

impl Default for LstmConfig {
    fn default() -> Self {
        LstmConfig {
            sequence_length: 20,
            hidden_size: 50,
            num_layers: 1,
        }
    }
}

struct Layer {
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor,
    hidden: usize,
}

impl Layer {
    fn new(input: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Layer {
            weight_ih: vb.get((4 * hidden, input), "weight_ih")?,
            weight_hh: vb.get((4 * hidden, hidden), "weight_hh")?,
            bias: vb.get(4 * hidden, "bias")?,
            hidden,
        })
    }

    /// `xs [B, T, in]` -> the hidden state of every step `[B, T, H]`, or only
    /// the last one `[B, H]` when `all` is false.
    fn forward(&self, xs: &Tensor, all: bool) -> Result<Tensor> {
        let (b, t, input) = xs.dims3()?;
        let projected = xs
            .reshape((b * t, input))?
            .matmul(&self.weight_ih.t()?)?
            .broadcast_add(&self.bias)?
            .reshape((b, t, 4 * self.hidden))?;
        let hs = recurrence(&projected, &self.weight_hh)?;
        if all {
            Ok(hs)
        } else {
            hs.narrow(1, t - 1, 1)?.squeeze(1)
        }
    }
}

pub struct Lstm {
    layers: Vec<Layer>,
    head: Dense,
}

impl Lstm {
    pub fn new(cfg: &LstmConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.num_layers)
            .map(|l| {
                let input = if l == 0 { 1 } else { cfg.hidden_size };
                Layer::new(input, cfg.hidden_size, vb.pp(format!("lstm.l{l}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let head = Dense::new(cfg.hidden_size, 1, vb.pp("head"))?;
        Ok(Lstm { layers, head })
    }
}

impl Module for Lstm {
    /// `xs [B, T, 1]` -> `[B, 1]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            xs = layer.forward(&xs, l != last)?;
        }
        self.head.forward(&xs)
    }
}
