//! Training: AdamW on mini-batches, MSE on scaled targets, global gradient
//! clipping, early stopping on a chronologically later validation set, and a
//! seeded batch order, so the same seed, data and thread count give the same
//! weights. A budget stops it between batches: out of time keeps the best
//! epoch so far; cancelled is an error.

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::windows::Window;
use super::Network;
use crate::models::budget::{Budget, Stopped};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub max_epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Largest global gradient norm; larger gradients are scaled down.
    pub clip_norm: f64,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            max_epochs: 30,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            patience: 4,
            clip_norm: 1.0,
            seed: 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss before training and after each epoch.
    pub validation_loss: Vec<f64>,
    /// The epoch whose weights were kept (at least 1).
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub stopped_early: bool,
    /// True when the time budget ended training.
    pub out_of_time: bool,
    pub seconds: f64,
}

impl TrainReport {
    pub fn initial_validation_loss(&self) -> f64 {
        self.validation_loss[0]
    }
    pub fn best_validation_loss(&self) -> f64 {
        self.validation_loss[self.best_epoch]
    }
}

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

/// Scales the gradients down to a global norm of `max_norm`.
fn clip_gradients(
    grads: &mut candle_core::backprop::GradStore,
    vars: &[candle_core::Var],
    max_norm: f64,
) -> candle_core::Result<()> {
    let mut sum_sq = 0.0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum_sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = sum_sq.sqrt();
    if norm > max_norm && norm.is_finite() {
        let factor = max_norm / norm;
        for var in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (g * factor)?);
            }
        }
    }
    Ok(())
}

/// Trains `network` on `train`, keeping the weights of the epoch with the
/// lowest loss on `validation`. Stops when `budget` runs out (keeping the
/// best so far), or fails when it is cancelled.
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
    let started = Instant::now();
    let vars = network.vars();
    let mut optimizer = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut report = TrainReport {
        train_loss: Vec::new(),
        validation_loss: vec![loss_on(network, validation, cfg.batch_size)?],
        best_epoch: 0,
        epochs_run: 0,
        stopped_early: false,
        out_of_time: false,
        seconds: 0.0,
    };
    let mut best: Vec<Tensor> = snapshot(&vars)?;
    'epochs: for epoch in 1..=cfg.max_epochs {
        order.shuffle(&mut rng);
        let mut epoch_loss = 0.0;
        for chunk in order.chunks(cfg.batch_size.max(1)) {
            match budget.check() {
                Ok(()) => {}
                Err(Stopped::OutOfTime) => {
                    report.out_of_time = true;
                    break 'epochs;
                }
                Err(why @ Stopped::Cancelled) => candle_core::bail!("training {why}"),
            }
            let refs: Vec<&Window> = chunk.iter().map(|&i| &train[i]).collect();
            let (xs, ys) = batch(&refs)?;
            let loss = candle_nn::loss::mse(&network.forward(&xs)?, &ys)?;
            epoch_loss += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            let mut grads = loss.backward()?;
            clip_gradients(&mut grads, &vars, cfg.clip_norm)?;
            optimizer.step(&grads)?;
        }
        report.epochs_run = epoch;
        report.train_loss.push(epoch_loss / train.len() as f64);
        let validation_loss = loss_on(network, validation, cfg.batch_size)?;
        report.validation_loss.push(validation_loss);
        // The best trained epoch, even if none beats the untrained start:
        // a network is never served untrained.
        if report.best_epoch == 0 || validation_loss < report.best_validation_loss() {
            report.best_epoch = epoch;
            best = snapshot(&vars)?;
        } else if epoch - report.best_epoch >= cfg.patience {
            report.stopped_early = true;
            break;
        }
    }
    for (var, value) in vars.iter().zip(&best) {
        var.set(value)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn snapshot(vars: &[candle_core::Var]) -> candle_core::Result<Vec<Tensor>> {
    vars.iter().map(|v| v.as_tensor().copy()).collect()
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
