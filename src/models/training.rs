//! The one training loop for every network tickcast trains (the LSTM, the
//! Transformer, the ensemble's MLP): AdamW on mini-batches in a seeded
//! order, global gradient clipping, early stopping on a monitored loss with
//! the best epoch's weights restored, and a budget checked between batches
//! (out of time keeps the best epoch so far; cancelled is an error). The
//! same seed, data and thread count give the same weights.

use std::time::Instant;

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::budget::{Budget, Stopped};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub max_epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without a better monitored loss before stopping.
    pub patience: usize,
    /// Least fall of the monitored loss that counts as better.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_improvement: f64,
    /// Largest global gradient norm; larger gradients are scaled down.
    /// `None`: unclipped.
    pub clip_norm: Option<f64>,
    pub seed: u64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            max_epochs: 30,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            patience: 4,
            min_improvement: 0.0,
            clip_norm: Some(1.0),
            seed: 7,
        }
    }
}

/// What the loop trains.
pub trait Objective {
    /// The variables the optimiser moves.
    fn vars(&self) -> Vec<Var>;
    /// Rows of the training set.
    fn training_rows(&self) -> usize;
    /// Mean loss over the training rows `batch`, differentiable.
    fn batch_loss(&self, batch: &[usize]) -> candle_core::Result<Tensor>;
    /// Mean loss on the held-back rows, `None` when there are none: the
    /// epoch's training loss is then monitored and the last weights kept.
    fn validation_loss(&self) -> candle_core::Result<Option<f64>>;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss before training and after each epoch (empty
    /// without a validation set).
    pub validation_loss: Vec<f64>,
    /// The epoch whose weights were kept (at least 1 once an epoch ran).
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub stopped_early: bool,
    /// True when the time budget ended training.
    pub out_of_time: bool,
    pub seconds: f64,
}

impl TrainReport {
    pub fn initial_validation_loss(&self) -> f64 {
        self.validation_loss.first().copied().unwrap_or(f64::NAN)
    }

    pub fn best_validation_loss(&self) -> f64 {
        self.validation_loss
            .get(self.best_epoch)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// Scales the gradients down to a global norm of `max_norm`.
fn clip_gradients(
    grads: &mut candle_core::backprop::GradStore,
    vars: &[Var],
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

fn snapshot(vars: &[Var]) -> candle_core::Result<Vec<Tensor>> {
    vars.iter().map(|v| v.as_tensor().copy()).collect()
}

/// Trains `objective`'s variables by `cfg`, within `budget`.
pub fn train(
    objective: &impl Objective,
    cfg: &TrainConfig,
    budget: &Budget,
) -> candle_core::Result<TrainReport> {
    let rows = objective.training_rows();
    if rows == 0 {
        candle_core::bail!("training needs at least one training row");
    }
    let started = Instant::now();
    let vars = objective.vars();
    let mut optimizer = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..rows).collect();
    let initial = objective.validation_loss()?;
    let validated = initial.is_some();
    let mut report = TrainReport {
        train_loss: Vec::new(),
        validation_loss: initial.into_iter().collect(),
        best_epoch: 0,
        epochs_run: 0,
        stopped_early: false,
        out_of_time: false,
        seconds: 0.0,
    };
    let mut best_loss = f64::INFINITY;
    let mut best = if validated {
        snapshot(&vars)?
    } else {
        Vec::new()
    };
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
            let loss = objective.batch_loss(chunk)?;
            epoch_loss += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            let mut grads = loss.backward()?;
            if let Some(max_norm) = cfg.clip_norm {
                clip_gradients(&mut grads, &vars, max_norm)?;
            }
            optimizer.step(&grads)?;
        }
        report.epochs_run = epoch;
        report.train_loss.push(epoch_loss / rows as f64);
        let monitored = match objective.validation_loss()? {
            Some(loss) => {
                report.validation_loss.push(loss);
                loss
            }
            None => epoch_loss / rows as f64,
        };
        // The first epoch is kept even if it does not beat the untrained
        // start: a network is never served untrained.
        if report.best_epoch == 0 || monitored < best_loss - cfg.min_improvement {
            report.best_epoch = epoch;
            best_loss = monitored;
            if validated {
                best = snapshot(&vars)?;
            }
        } else if epoch - report.best_epoch >= cfg.patience {
            report.stopped_early = true;
            break;
        }
    }
    if validated {
        for (var, value) in vars.iter().zip(&best) {
            var.set(value)?;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
