//! Training a network on windows of returns: MSE on scaled targets, with
//! early stopping on a chronologically later validation set, by the shared
//! training loop ([`crate::models::training`]).

use candle_core::{Device, Tensor};

use super::windows::Window;
use super::Network;
use crate::models::budget::Budget;
use crate::models::training::{self, Objective};
pub use crate::models::training::{TrainConfig, TrainReport};

/// Inputs `[N, T, 1]` and targets `[N, 1]` of some windows.
fn batch(windows: &[&Window]) -> candle_core::Result<(Tensor, Tensor)> {
    let t = windows.first().map_or(0, |w| w.inputs.len());
    let xs: Vec<f32> = windows
        .iter()
        .flat_map(|w| w.inputs.iter().copied())
        .collect();
    let ys: Vec<f32> = windows.iter().map(|w| w.target).collect();
    Ok((
        Tensor::from_vec(xs, (windows.len(), t, 1), &Device::Cpu)?,
        Tensor::from_vec(ys, (windows.len(), 1), &Device::Cpu)?,
    ))
}

/// Mean squared error of the network on `windows`, in batches.
pub fn loss_on(
    network: &Network,
    windows: &[Window],
    batch_size: usize,
) -> candle_core::Result<f64> {
    let mut total = 0.0;
    for chunk in windows.chunks(batch_size.max(1) * 8) {
        let refs: Vec<&Window> = chunk.iter().collect();
        let (xs, ys) = batch(&refs)?;
        let err = network.forward(&xs)?.detach().sub(&ys)?;
        total += f64::from(err.sqr()?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(total / windows.len().max(1) as f64)
}

/// Windows of one series as the training loop sees them.
struct WindowObjective<'a> {
    network: &'a Network,
    train: &'a [Window],
    validation: &'a [Window],
    batch_size: usize,
}

impl Objective for WindowObjective<'_> {
    fn vars(&self) -> Vec<candle_core::Var> {
        self.network.vars()
    }

    fn training_rows(&self) -> usize {
        self.train.len()
    }

    fn batch_loss(&self, rows: &[usize]) -> candle_core::Result<Tensor> {
        let refs: Vec<&Window> = rows.iter().map(|&i| &self.train[i]).collect();
        let (xs, ys) = batch(&refs)?;
        candle_nn::loss::mse(&self.network.forward(&xs)?, &ys)
    }

    fn validation_loss(&self) -> candle_core::Result<Option<f64>> {
        loss_on(self.network, self.validation, self.batch_size).map(Some)
    }
}

/// Trains `network` on `train`, keeping the weights of the epoch with the
/// lowest loss on `validation`, by the shared training loop.
pub fn train(
    network: &Network,
    train: &[Window],
    validation: &[Window],
    cfg: &TrainConfig,
    budget: &Budget,
) -> candle_core::Result<TrainReport> {
    if train.is_empty() || validation.is_empty() {
        candle_core::bail!("training needs both training and validation windows");
    }
    let objective = WindowObjective {
        network,
        train,
        validation,
        batch_size: cfg.batch_size,
    };
    training::train(&objective, cfg, budget)
}

#[cfg(test)]
mod tests {
    use super::super::windows::windows;
    use super::super::{Architecture, LstmConfig, TransformerConfig};
    use super::*;

    fn small_lstm() -> Architecture {
        Architecture::Lstm(LstmConfig {
            sequence_length: 10,
            hidden_size: 8,
            num_layers: 2,
        })
    }

    fn small_transformer() -> Architecture {
        Architecture::Transformer(TransformerConfig {
            sequence_length: 10,
            d_model: 8,
            attention_heads: 2,
            feed_forward: 16,
            num_layers: 2,
        })
    }

    /// Closes whose returns follow a learnable rule: each return is minus
    /// 0.8 times the one before, plus a little deterministic noise.
    fn mean_reverting(n: usize) -> Vec<f64> {
        let mut closes = vec![100.0];
        let mut r = 0.01;
        for i in 0..n {
            let noise = ((i * 7919) % 13) as f64 / 13.0 - 0.5;
            r = -0.8 * r + 0.004 * noise;
            closes.push(closes.last().unwrap() * r.exp());
        }
        closes
    }

    #[test]
    fn every_variable_receives_a_gradient() {
        for arch in [small_lstm(), small_transformer()] {
            let net = Network::seeded(arch.clone(), 1).unwrap();
            let ws = windows(&mean_reverting(60), 10, 1);
            let refs: Vec<&Window> = ws.iter().collect();
            let (xs, ys) = batch(&refs).unwrap();
            let loss = candle_nn::loss::mse(&net.forward(&xs).unwrap(), &ys).unwrap();
            let grads = loss.backward().unwrap();
            for (name, var) in net.named_vars() {
                let g = grads.get(var.as_tensor());
                assert!(g.is_some(), "{arch:?}: {name} gets no gradient");
                let norm = g.unwrap().sqr().unwrap().sum_all().unwrap();
                assert!(
                    norm.to_scalar::<f32>().unwrap() > 0.0,
                    "{name}: zero gradient"
                );
            }
        }
    }

    #[test]
    fn a_time_budget_stops_training_and_keeps_the_best_epoch() {
        let ws = windows(&mean_reverting(400), 10, 1);
        let (fit, held) = ws.split_at(300);
        let net = Network::seeded(small_lstm(), 1).unwrap();
        let cfg = TrainConfig {
            max_epochs: 200,
            patience: 200,
            batch_size: 8,
            ..TrainConfig::default()
        };
        let budget = Budget::unlimited().within(std::time::Duration::from_millis(300));
        let report = train(&net, fit, held, &cfg, &budget).unwrap();
        assert!(report.out_of_time);
        assert!(report.epochs_run < 200);
        let best = report.best_validation_loss();
        let now = loss_on(&net, held, 64).unwrap();
        assert!(
            (best - now).abs() < 1e-6,
            "kept the best epoch: {best} vs {now}"
        );
    }

    #[test]
    fn training_learns_a_pattern_and_the_seed_fixes_the_weights() {
        let ws = windows(&mean_reverting(600), 10, 1);
        let (fit, held) = ws.split_at(480);
        let cfg = TrainConfig {
            max_epochs: 15,
            batch_size: 32,
            learning_rate: 5e-3,
            ..TrainConfig::default()
        };
        for arch in [small_lstm(), small_transformer()] {
            let a = Network::seeded(arch.clone(), 3).unwrap();
            let report = train(&a, fit, held, &cfg, &Budget::unlimited()).unwrap();
            let (before, after) = (
                report.initial_validation_loss(),
                report.best_validation_loss(),
            );
            assert!(after < 0.5 * before, "{arch:?}: {before} -> {after}");

            let b = Network::seeded(arch.clone(), 3).unwrap();
            train(&b, fit, held, &cfg, &Budget::unlimited()).unwrap();
            assert_eq!(
                a.flat_weights().unwrap(),
                b.flat_weights().unwrap(),
                "{arch:?}"
            );
            let c = Network::seeded(arch.clone(), 4).unwrap();
            assert_ne!(a.flat_weights().unwrap(), c.flat_weights().unwrap());
        }
    }
}
