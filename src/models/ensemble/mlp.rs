//! The ensemble's MLP regressor (candle): standardised features, two ReLU
//! hidden layers (50 and 25, as the legacy scikit-learn `MLPRegressor`), a
//! linear output, trained with AdamW on mini-batches of the standardised
//! target with a seeded start and batch order, stopping early on the
//! newest rows held back for validation.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{linear, AdamW, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::scale::Standardiser;
use crate::models::neural::seed_vars;
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
        let vars = varmap.all_vars();
        let mut optimizer = AdamW::new(
            vars.clone(),
            ParamsAdamW {
                lr: p.learning_rate,
                weight_decay: p.weight_decay,
                ..Default::default()
            },
        )?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
        let mut order: Vec<u32> = (0..split as u32).collect();
        // scikit-learn's stopping rule: the monitored loss (validation, else
        // the epoch's training loss) has not improved on the best by
        // TOLERANCE for PATIENCE epochs.
        const TOLERANCE: f32 = 1e-4;
        const PATIENCE: usize = 10;
        let (mut best, mut stale, mut best_weights) = (f32::INFINITY, 0, None);
        for _ in 0..p.epochs {
            if budget.check().is_err() {
                break;
            }
            mlp.epochs_run += 1;
            order.shuffle(&mut rng);
            let mut total = 0.0;
            for chunk in order.chunks(p.batch_size.max(1)) {
                let index = Tensor::from_slice(chunk, chunk.len(), &Device::Cpu)?;
                let (bx, by) = (xs.index_select(&index, 0)?, ys.index_select(&index, 0)?);
                let loss = candle_nn::loss::mse(&mlp.forward(&bx)?, &by)?;
                optimizer.backward_step(&loss)?;
                total += loss.to_scalar::<f32>()? * chunk.len() as f32;
            }
            let monitored = match &validation {
                Some((vx, vy)) => {
                    candle_nn::loss::mse(&mlp.forward(vx)?, vy)?.to_scalar::<f32>()?
                }
                None => total / split as f32,
            };
            if monitored < best - TOLERANCE {
                (best, stale) = (monitored, 0);
                if validation.is_some() {
                    best_weights = Some(
                        vars.iter()
                            .map(|v| v.as_tensor().copy())
                            .collect::<candle_core::Result<Vec<_>>>()?,
                    );
                }
            } else {
                stale += 1;
                if stale >= PATIENCE {
                    break;
                }
            }
        }
        if let Some(weights) = best_weights {
            for (var, w) in vars.iter().zip(&weights) {
                var.set(w)?;
            }
        }
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
