//! The ensemble's MLP regressor (candle): standardised features, two ReLU
//! hidden layers (50 and 25, as the legacy scikit-learn `MLPRegressor`), a
//! linear output, trained by the shared training loop on the standardised
//! target with a seeded start, stopping early on the newest rows held back
//! for validation.

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{linear, Linear, VarBuilder, VarMap};

use super::scale::Standardiser;
use crate::models::neural::seed_vars;
use crate::models::training::{self, Objective, TrainConfig};
use crate::models::Budget;

#[derive(Debug, Clone, PartialEq)]
pub struct MlpParams {
    pub hidden: [usize; 2],
    /// Most epochs; fewer when the training loss stops improving.
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Share of the newest rows held back to stop training when their loss
    /// stops improving (the best epoch's weights are kept); 0 stops on the
    /// training loss instead.
    pub validation_share: f64,
    pub seed: u64,
}

impl Default for MlpParams {
    fn default() -> Self {
        MlpParams {
            hidden: [50, 25],
            epochs: 100,
            // A year of closes is one batch: a step per epoch keeps the
            // fit in tens of milliseconds.
            batch_size: 256,
            learning_rate: 1e-2,
            weight_decay: 1e-4,
            validation_share: 0.1,
            seed: 7,
        }
    }
}

impl MlpParams {
    /// scikit-learn's stopping rule: the monitored loss (validation, else
    /// the epoch's training loss) has not improved on the best by 1e-4 for
    /// 10 epochs. Gradients are clipped only when they would blow up.
    fn training(&self) -> TrainConfig {
        TrainConfig {
            max_epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            patience: 10,
            min_improvement: 1e-4,
            clip_norm: Some(MAX_GRADIENT_NORM),
            seed: self.seed,
        }
    }
}

/// Largest global gradient norm of an MLP step: on standardised features
/// and targets, far above what a healthy fit produces.
const MAX_GRADIENT_NORM: f64 = 10.0;

/// The standardised rows as the training loop sees them: the first
/// `split` train, the rest (if any) validate.
struct MlpObjective<'a> {
    mlp: &'a Mlp,
    vars: Vec<Var>,
    xs: &'a Tensor,
    ys: &'a Tensor,
    split: usize,
    validation: Option<(Tensor, Tensor)>,
}

impl Objective for MlpObjective<'_> {
    fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }

    fn training_rows(&self) -> usize {
        self.split
    }

    fn batch_loss(&self, rows: &[usize]) -> candle_core::Result<Tensor> {
        let rows: Vec<u32> = rows.iter().map(|&i| i as u32).collect();
        let index = Tensor::from_slice(&rows, rows.len(), &Device::Cpu)?;
        let (bx, by) = (
            self.xs.index_select(&index, 0)?,
            self.ys.index_select(&index, 0)?,
        );
        candle_nn::loss::mse(&self.mlp.forward(&bx)?, &by)
    }

    fn validation_loss(&self) -> candle_core::Result<Option<f64>> {
        let Some((vx, vy)) = &self.validation else {
            return Ok(None);
        };
        let loss = candle_nn::loss::mse(&self.mlp.forward(vx)?, vy)?.to_scalar::<f32>()?;
        Ok(Some(f64::from(loss)))
    }
}

/// Fewest rows on each side of a validation split.
const MIN_SPLIT_ROWS: usize = 5;

pub struct Mlp {
    layers: [Linear; 3],
    scale: Standardiser,
    /// Epochs trained before the stopping rule ended the fit.
    pub epochs_run: usize,
}

impl Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.layers[0].forward(xs)?.relu()?;
        let h = self.layers[1].forward(&h)?.relu()?;
        self.layers[2].forward(&h)
    }

    fn matrix(&self, rows: &[Vec<f64>]) -> candle_core::Result<Tensor> {
        let flat: Vec<f32> = self
            .scale
            .rows(rows)
            .into_iter()
            .flatten()
            .map(|x| x as f32)
            .collect();
        Tensor::from_vec(flat, (rows.len(), rows[0].len()), &Device::Cpu)
    }

    /// Fits `rows` (each of the same width) to `targets`, stopping early
    /// (with the best weights so far) when `budget` ends.
    pub fn fit(
        rows: &[Vec<f64>],
        targets: &[f64],
        p: &MlpParams,
        budget: &Budget,
    ) -> candle_core::Result<Self> {
        if rows.is_empty() || rows.len() != targets.len() {
            candle_core::bail!("the MLP needs as many targets as rows, and at least one");
        }
        let columns = rows[0].len();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let layers = [
            linear(columns, p.hidden[0], vb.pp("l0"))?,
            linear(p.hidden[0], p.hidden[1], vb.pp("l1"))?,
            linear(p.hidden[1], 1, vb.pp("l2"))?,
        ];
        seed_vars(&varmap, p.seed)?;
        let mut mlp = Mlp {
            layers,
            scale: Standardiser::fit(rows, targets),
            epochs_run: 0,
        };
        let xs = mlp.matrix(rows)?;
        let ys: Vec<f32> = mlp
            .scale
            .targets(targets)
            .into_iter()
            .map(|y| y as f32)
            .collect();
        let ys = Tensor::from_vec(ys, (targets.len(), 1), &Device::Cpu)?;
        // The newest rows validate when there are enough of both.
        let n = targets.len();
        let held = (n as f64 * p.validation_share).ceil() as usize;
        let split = if held >= MIN_SPLIT_ROWS && n - held >= MIN_SPLIT_ROWS {
            n - held
        } else {
            n
        };
        let validation = (split < n)
            .then(|| -> candle_core::Result<_> {
                Ok((
                    xs.narrow(0, split, n - split)?,
                    ys.narrow(0, split, n - split)?,
                ))
            })
            .transpose()?;
        let objective = MlpObjective {
            mlp: &mlp,
            vars: varmap.all_vars(),
            xs: &xs,
            ys: &ys,
            split,
            validation,
        };
        let report = training::train(&objective, &p.training(), budget)?;
        mlp.epochs_run = report.epochs_run;
        Ok(mlp)
    }

    pub fn predict(&self, rows: &[Vec<f64>]) -> candle_core::Result<Vec<f64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .forward(&self.matrix(rows)?)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(out
            .into_iter()
            .map(|z| self.scale.unscale(f64::from(z)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fits_a_noiseless_linear_target_closely() {
        // y = 2 x0 - x1 + 0.5 on a grid; held-out points in between.
        let grid = |offset: f64| -> Vec<Vec<f64>> {
            (0..15)
                .flat_map(|i| {
                    (0..15).map(move |j| vec![i as f64 / 7.0 - 1.0 + offset, j as f64 / 7.0 - 1.0])
                })
                .collect()
        };
        let target = |r: &Vec<f64>| 2.0 * r[0] - r[1] + 0.5;
        let (train, test) = (grid(0.0), grid(0.05));
        let y: Vec<f64> = train.iter().map(target).collect();
        // The capacity to fit (the grid's newest rows are its edge, so
        // holding them back would test extrapolation; stopping is pinned
        // by the noise test below).
        let params = MlpParams {
            epochs: 150,
            validation_share: 0.0,
            ..MlpParams::default()
        };
        let mlp = Mlp::fit(&train, &y, &params, &Budget::unlimited()).unwrap();
        let predicted = mlp.predict(&test).unwrap();
        let rmse = (test
            .iter()
            .zip(&predicted)
            .map(|(r, p)| (target(r) - p).powi(2))
            .sum::<f64>()
            / test.len() as f64)
            .sqrt();
        // The target's own spread is about 1.6.
        assert!(rmse < 0.05, "rmse {rmse}");
        // Same seed, same fit.
        let again = Mlp::fit(&train, &y, &params, &Budget::unlimited())
            .unwrap()
            .predict(&test)
            .unwrap();
        assert_eq!(predicted, again);
    }

    #[test]
    fn noise_stops_training_early_on_the_held_back_rows() {
        // Targets unrelated to the inputs: validation loss cannot improve
        // for long, so the fit stops well before its epoch limit.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let rows: Vec<Vec<f64>> = (0..200)
            .map(|_| {
                (0..11)
                    .map(|_| rand::Rng::random::<f64>(&mut rng))
                    .collect()
            })
            .collect();
        let noise: Vec<f64> = (0..200)
            .map(|_| rand::Rng::random::<f64>(&mut rng))
            .collect();
        let params = MlpParams {
            epochs: 500,
            ..MlpParams::default()
        };
        let mlp = Mlp::fit(&rows, &noise, &params, &Budget::unlimited()).unwrap();
        assert!(mlp.epochs_run < 100, "ran {} epochs", mlp.epochs_run);
        let without = MlpParams {
            validation_share: 0.0,
            ..params
        };
        let overfit = Mlp::fit(&rows, &noise, &without, &Budget::unlimited()).unwrap();
        assert!(overfit.epochs_run > mlp.epochs_run);
    }
}
