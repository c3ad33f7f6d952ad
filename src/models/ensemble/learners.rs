//! The five base learners, each fitted to standardised features and a
//! standardised target: RandomForest, ExtraTrees, gradient boosting and an
//! RBF-kernel SVR from smartcore, and the candle MLP.
//!
//! Hyper-parameters follow the legacy scikit-learn ensemble (50 trees or
//! rounds per tree model, SVR with C 1 and epsilon 0.1 on the standardised
//! target, MLP 50/25). A learner that errors, panics or forecasts a
//! non-finite value reports why instead of a number.

use std::panic::{catch_unwind, AssertUnwindSafe};

use smartcore::ensemble::extra_trees_regressor::{
    ExtraTreesRegressor, ExtraTreesRegressorParameters,
};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::svm::svr::{SVRParameters, SVR};
use smartcore::svm::Kernels;
use smartcore::xgboost::xgb_regressor::Objective;
use smartcore::xgboost::{XGRegressor, XGRegressorParameters};

use super::mlp::{Mlp, MlpParams};
use super::scale::Standardiser;
use crate::models::Budget;

/// A base learner of the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Learner {
    RandomForest,
    GradientBoosting,
    ExtraTrees,
    Svr,
    Mlp,
}

/// Trees (or boosting rounds) per tree model, as the legacy ensemble.
const TREES: usize = 50;
/// Depth bound of the forests' trees: deep enough to fit, bounded in time.
const FOREST_DEPTH: u16 = 8;

impl Learner {
    pub const ALL: [Learner; 5] = [
        Learner::RandomForest,
        Learner::GradientBoosting,
        Learner::ExtraTrees,
        Learner::Svr,
        Learner::Mlp,
    ];

    /// The name used in responses (`model_weights`, `individual_predictions`).
    pub fn name(self) -> &'static str {
        match self {
            Learner::RandomForest => "random_forest",
            Learner::GradientBoosting => "gradient_boosting",
            Learner::ExtraTrees => "extra_trees",
            Learner::Svr => "svr",
            Learner::Mlp => "mlp",
        }
    }

    /// Fits to `(rows, targets)` and forecasts each of `queries`. Only the
    /// MLP's training can stop part-way when `budget` ends.
    pub fn fit_predict(
        self,
        rows: &[Vec<f64>],
        targets: &[f64],
        queries: &[Vec<f64>],
        seed: u64,
        budget: &Budget,
    ) -> Result<Vec<f64>, String> {
        if rows.len() < 2 || rows.len() != targets.len() {
            return Err(format!(
                "needs at least 2 rows with one target each, got {} rows and {} targets",
                rows.len(),
                targets.len()
            ));
        }
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let scale = Standardiser::fit(rows, targets);
        let (x, y, q) = (
            scale.rows(rows),
            scale.targets(targets),
            scale.rows(queries),
        );
        // smartcore panics on some bad inputs rather than erroring.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.fit_predict_scaled(&x, &y, &q, seed, budget)
        }))
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("panicked while fitting: {why}"))
        })?;
        let forecasts: Vec<f64> = outcome.into_iter().map(|z| scale.unscale(z)).collect();
        match forecasts.iter().find(|f| !f.is_finite()) {
            Some(bad) => Err(format!("non-finite forecast ({bad})")),
            None => Ok(forecasts),
        }
    }

    fn fit_predict_scaled(
        self,
        rows: &[Vec<f64>],
        targets: &[f64],
        queries: &[Vec<f64>],
        seed: u64,
        budget: &Budget,
    ) -> Result<Vec<f64>, String> {
        if self == Learner::Mlp {
            let params = MlpParams {
                seed,
                ..MlpParams::default()
            };
            let mlp = Mlp::fit(rows, targets, &params, budget).map_err(|e| e.to_string())?;
            return mlp.predict(queries).map_err(|e| e.to_string());
        }
        let failed = |e: smartcore::error::Failed| e.to_string();
        let x = DenseMatrix::from_2d_vec(&rows.to_vec()).map_err(failed)?;
        let q = DenseMatrix::from_2d_vec(&queries.to_vec()).map_err(failed)?;
        let y = targets.to_vec();
        match self {
            Learner::RandomForest => {
                let params = RandomForestRegressorParameters::default()
                    .with_n_trees(TREES)
                    .with_max_depth(FOREST_DEPTH)
                    .with_seed(seed);
                RandomForestRegressor::fit(&x, &y, params)
                    .and_then(|m| m.predict(&q))
                    .map_err(failed)
            }
            Learner::ExtraTrees => {
                let params = ExtraTreesRegressorParameters::default()
                    .with_n_trees(TREES)
                    .with_max_depth(FOREST_DEPTH)
                    .with_seed(seed);
                ExtraTreesRegressor::fit(&x, &y, params)
                    .and_then(|m| m.predict(&q))
                    .map_err(failed)
            }
            Learner::GradientBoosting => {
                let params = XGRegressorParameters::default()
                    .with_n_estimators(TREES)
                    .with_learning_rate(0.1)
                    .with_max_depth(3)
                    .with_base_score(0.0)
                    .with_seed(seed)
                    .with_objective(Objective::MeanSquaredError);
                XGRegressor::fit(&x, &y, params)
                    .and_then(|m| m.predict(&q))
                    .map_err(failed)
            }
            Learner::Svr => {
                // gamma = 1 / features: scikit-learn's "scale" on standardised inputs.
                let gamma = 1.0 / rows[0].len().max(1) as f64;
                let params = SVRParameters::default()
                    .with_c(1.0)
                    .with_eps(0.1)
                    .with_kernel(Kernels::rbf().with_gamma(gamma));
                SVR::fit(&x, &y, &params)
                    .and_then(|m| m.predict(&q))
                    .map_err(failed)
            }
            Learner::Mlp => unreachable!("handled above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows and their targets.
    type Set = (Vec<Vec<f64>>, Vec<f64>);

    /// `y = 0.02 x0 - 0.01 x1 + 0.001` on a grid (train), and held-out
    /// points between the grid's (test).
    fn linear_case() -> (Set, Set) {
        let grid = |offset: f64| -> Vec<Vec<f64>> {
            (0..15)
                .flat_map(|i| {
                    (0..15).map(move |j| {
                        vec![i as f64 / 7.0 - 1.0 + offset, j as f64 / 7.0 - 1.0 + offset]
                    })
                })
                .collect()
        };
        let target = |r: &Vec<f64>| 0.02 * r[0] - 0.01 * r[1] + 0.001;
        let (train, test) = (grid(0.0), grid(0.05));
        let (y, truth) = (
            train.iter().map(target).collect(),
            test.iter().map(target).collect(),
        );
        ((train, y), (test, truth))
    }

    fn rmse(a: &[f64], b: &[f64]) -> f64 {
        (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
    }

    #[test]
    fn every_learner_fits_a_noiseless_linear_target_with_small_error() {
        let ((train, y), (test, truth)) = linear_case();
        // The target's own spread: a constant forecast scores about this.
        let spread = rmse(&truth, &vec![0.001; truth.len()]);
        for learner in Learner::ALL {
            let predicted = learner
                .fit_predict(&train, &y, &test, 7, &Budget::unlimited())
                .unwrap();
            let error = rmse(&predicted, &truth);
            assert!(
                error < 0.2 * spread,
                "{}: rmse {error:.5} vs spread {spread:.5}",
                learner.name()
            );
        }
    }

    #[test]
    fn the_same_data_and_seed_give_the_same_forecasts() {
        let ((train, y), (test, _)) = linear_case();
        for learner in Learner::ALL {
            let once = learner
                .fit_predict(&train, &y, &test, 11, &Budget::unlimited())
                .unwrap();
            let again = learner
                .fit_predict(&train, &y, &test, 11, &Budget::unlimited())
                .unwrap();
            assert_eq!(once, again, "{}", learner.name());
        }
    }

    #[test]
    fn bad_training_data_is_reported_not_forecast() {
        let rows = vec![vec![1.0, f64::NAN], vec![2.0, 1.0], vec![3.0, 2.0]];
        let y = [0.1, 0.2, 0.3];
        for learner in Learner::ALL {
            match learner.fit_predict(&rows, &y, &rows, 7, &Budget::unlimited()) {
                Err(reason) => assert!(!reason.is_empty()),
                Ok(forecasts) => assert!(
                    forecasts.iter().all(|f| f.is_finite()),
                    "{} forecast {forecasts:?}",
                    learner.name()
                ),
            }
        }
        assert!(Learner::Svr
            .fit_predict(&rows[..1], &y[..1], &rows, 7, &Budget::unlimited())
            .is_err());
    }
}
