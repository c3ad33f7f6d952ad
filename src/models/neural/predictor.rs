//! `lstm_predictor` and `transformer_predictor`: pretrained networks served
//! by inference only.
//!
//! A forecast reads the last `sequence_length` daily log returns, scales
//! them by their own volatility, and turns the network's output back into a
//! return for the next period. `confidence` is the calibrated hit rate of
//! similar-sized forecasts on the validation years (see
//! [`super::metrics::Calibration`]); `validation` reports the held-out test
//! years from the model card.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::card::ModelCard;
use super::fit::{FitParams, FitPolicy, SeriesFitter};
use super::params::NetworkParams;
use super::windows::{latest, unscale};
use super::{Architecture, Network};
use crate::models::interval::Residual;
use crate::models::params::level_or_default;
use crate::models::prediction::{NetworkDetails, PredictionInterval, SeriesFit};
use crate::models::{
    Ahead, Budget, Forecast, ForecastDetails, Horizon, InputType, Model, ModelError, ModelInfo,
    ModelInput, Prediction,
};

pub use super::{LSTM, TRANSFORMER};

/// A pretrained network and its card.
pub struct NeuralPredictor {
    info: ModelInfo,
    network: Network,
    card: ModelCard,
    fitter: Arc<SeriesFitter>,
}

/// Closes fetched for a per-series fit when the caller names a symbol.
const FIT_LOOKBACK: usize = 1000;
/// Held-out forecasts of the pretrained network on the request's own
/// series that calibrate its prediction interval (about a trading year).
pub const CALIBRATION_POINTS: usize = 250;

/// The network's forecasts at `origins` of `closes` beside what followed:
/// calibration points for a prediction interval.
fn residuals(
    network: &Network,
    closes: &[f64],
    fp: &FitParams,
    origins: Range<usize>,
) -> Result<Vec<Residual>, ModelError> {
    if origins.is_empty() {
        return Ok(Vec::new());
    }
    let predicted = forecasts_at(
        network,
        closes,
        fp.sequence_length,
        fp.horizon,
        origins.clone(),
    )?;
    Ok(origins
        .zip(predicted)
        .map(|(t, p)| Residual::at(closes, t, fp.horizon, p))
        .collect())
}

/// The last [`CALIBRATION_POINTS`] closes of `closes` (after the first
/// window) whose target `horizon` periods on is known.
pub fn calibration_origins(closes: &[f64], sequence_length: usize, horizon: usize) -> Range<usize> {
    let end = closes.len().saturating_sub(horizon);
    end.saturating_sub(CALIBRATION_POINTS).max(sequence_length)..end.max(sequence_length)
}

/// The network's scaled output for one window.
fn infer(network: &Network, inputs: &[f32]) -> Result<f32, ModelError> {
    network
        .predict(&[inputs])
        .map_err(|e| ModelError::internal("inference failed", e))?
        .first()
        .copied()
        .ok_or_else(|| ModelError::Internal("the network returned no forecast".into()))
}

/// Where the pretrained weights live: `dir` if it holds them, else the
/// `models/` directory of the source tree this binary was built from.
pub fn locate(dir: &Path, model: &str) -> Option<PathBuf> {
    crate::models::locate_file(dir, &format!("{model}.safetensors"))
        .and_then(|f| f.parent().map(Path::to_path_buf))
}

impl NeuralPredictor {
    /// Loads `<model>.json` and `<model>.safetensors` from `dir`.
    pub fn load(dir: &Path, model: &str) -> anyhow::Result<Self> {
        let found = locate(dir, model).with_context(|| {
            format!(
                "no pretrained weights for {model} in {} (run `tickcast train`)",
                dir.display()
            )
        })?;
        let card_path = found.join(format!("{model}.json"));
        let card: ModelCard = serde_json::from_slice(
            &std::fs::read(&card_path)
                .with_context(|| format!("reading {}", card_path.display()))?,
        )
        .with_context(|| format!("parsing {}", card_path.display()))?;
        let weights_path = found.join(format!("{model}.safetensors"));
        let weights = std::fs::read(&weights_path)
            .with_context(|| format!("reading {}", weights_path.display()))?;
        let network = Network::from_bytes(card.architecture.clone(), &weights)
            .with_context(|| format!("loading {}", weights_path.display()))?;
        let info = match &card.architecture {
            Architecture::Lstm(_) => ModelInfo {
                name: LSTM,
                category: "deep_learning",
                description: "LSTM over volatility-scaled daily log returns, pretrained on 20 US stocks (2005-2014), forecasting the next period's return",
                input_type: InputType::PriceSeries,
                output_type: "price_prediction",
                complexity: "high",
                latency: "<1ms (inference only)",
            },
            Architecture::Transformer(_) => ModelInfo {
                name: TRANSFORMER,
                category: "deep_learning",
                description: "Transformer encoder over volatility-scaled daily log returns, pretrained on 20 US stocks (2005-2014), forecasting the next period's return",
                input_type: InputType::PriceSeries,
                output_type: "price_prediction",
                complexity: "high",
                latency: "<1ms (inference only)",
            },
        };
        if info.name != card.model {
            anyhow::bail!(
                "{} describes {}, not {model}",
                card_path.display(),
                card.model
            );
        }
        Ok(NeuralPredictor {
            info,
            network,
            card,
            fitter: Arc::new(SeriesFitter::new(FitPolicy::default())),
        })
    }

    /// Shares `fitter` (and its limits) for per-series fits.
    pub fn with_fitter(mut self, fitter: Arc<SeriesFitter>) -> Self {
        self.fitter = fitter;
        self
    }

    /// The network fitted (or a cached fit) to `closes` per `fp`; the bool
    /// says whether it came from the cache.
    fn fit_to(
        &self,
        closes: &[f64],
        fp: &FitParams,
        budget: &Budget,
    ) -> Result<(Arc<super::fit::Fitted>, bool), ModelError> {
        if closes.len() < fp.min_closes() {
            return Err(ModelError::InsufficientData(format!(
                "fitting {} with sequence_length {} and horizon {} needs at least {} prices, got {}",
                self.info.name,
                fp.sequence_length,
                fp.horizon,
                fp.min_closes(),
                closes.len()
            )));
        }
        let architecture = match &self.card.architecture {
            Architecture::Lstm(c) => Architecture::Lstm(super::LstmConfig {
                sequence_length: fp.sequence_length,
                ..c.clone()
            }),
            Architecture::Transformer(c) => Architecture::Transformer(super::TransformerConfig {
                sequence_length: fp.sequence_length,
                ..c.clone()
            }),
        };
        self.fitter.fit(
            self.info.name,
            &self.card.version,
            architecture,
            &self.network,
            closes,
            fp,
            budget,
        )
    }

    /// Fits (or reuses a fit of) the network to `closes` and forecasts from it.
    fn predict_fitted(
        &self,
        closes: &[f64],
        fp: &FitParams,
        level: f64,
        budget: &Budget,
    ) -> Result<Forecast, ModelError> {
        let (fitted, cached) = self.fit_to(closes, fp, budget)?;
        let (inputs, scale) = latest(closes, fp.sequence_length)
            .ok_or_else(|| ModelError::Internal("no window to forecast from".into()))?;
        let output = infer(&fitted.network, &inputs)?;
        let r = &fitted.report;
        let fit = SeriesFit {
            mode: "series",
            fine_tuned_from_pretrained: fitted.fine_tuned,
            cached,
            epochs_run: r.epochs_run,
            best_epoch: r.best_epoch,
            stopped_early: r.stopped_early,
            out_of_time: r.out_of_time,
            training_seconds: r.seconds,
            validation_loss: r.best_validation_loss(),
            params: fitted.params.clone(),
        };
        let mut forecast = self.forecast(
            closes,
            output,
            unscale(output, scale, fp.horizon).exp_m1(),
            fitted.calibration.confidence(f64::from(output)),
            fp,
            Some(fit),
        )?;
        // The fit's own held-out windows, the last of the series.
        let end = closes.len() - fp.horizon;
        let held = end - fitted.validation.samples..end;
        let calibration = residuals(&fitted.network, closes, fp, held)?;
        forecast.prediction_interval = Some(Box::new(PredictionInterval::conformal(
            &calibration,
            closes,
            forecast.predicted_return,
            level,
        )));
        forecast.model_version = Some(fitted.version.clone());
        forecast.validation = Some(fitted.validation.clone());
        Ok(forecast)
    }

    /// The forecast from the network's output for the latest window.
    fn forecast(
        &self,
        closes: &[f64],
        output: f32,
        predicted_return: f64,
        confidence: f64,
        fp: &FitParams,
        fit: Option<SeriesFit>,
    ) -> Result<Forecast, ModelError> {
        if !predicted_return.is_finite() || !output.is_finite() {
            return Err(ModelError::Internal(
                "the network produced a non-finite forecast".into(),
            ));
        }
        let attention_heads = match &self.card.architecture {
            Architecture::Transformer(cfg) => Some(cfg.attention_heads),
            Architecture::Lstm(_) => None,
        };
        let horizon = Horizon::new(fp.horizon).unwrap_or(Horizon::ONE);
        let details = ForecastDetails::Network(NetworkDetails {
            sequence_length: fp.sequence_length,
            attention_heads,
            fit,
        });
        let current_price = closes[closes.len() - 1];
        Ok(Forecast::new(
            predicted_return,
            current_price,
            confidence,
            horizon,
            details,
        ))
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    fn sequence_length(&self) -> usize {
        self.card.architecture.sequence_length()
    }

    /// The params of the pretrained network: its own window and horizon.
    fn pretrained(&self) -> FitParams {
        FitParams {
            sequence_length: self.sequence_length(),
            horizon: self.card.horizon,
            epochs: 0,
            learning_rate: 0.0,
            batch_size: 0,
            seed: self.card.training.seed,
        }
    }
}

/// Next-period return forecasts of `network` from each `t` in `at`, each
/// from the `sequence_length` returns up to `closes[t]` only.
fn forecasts_at(
    network: &Network,
    closes: &[f64],
    sequence_length: usize,
    horizon: usize,
    at: Range<usize>,
) -> Result<Vec<f64>, ModelError> {
    let windows = at
        .map(|t| {
            latest(&closes[..=t], sequence_length).ok_or_else(|| {
                ModelError::InsufficientData(format!(
                    "a forecast needs {} prices before it, got {}",
                    sequence_length + 1,
                    t + 1
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let inputs: Vec<&[f32]> = windows.iter().map(|(w, _)| w.as_slice()).collect();
    let outputs = network
        .predict(&inputs)
        .map_err(|e| ModelError::internal("inference failed", e))?;
    Ok(outputs
        .iter()
        .zip(&windows)
        .map(|(&output, (_, scale))| unscale(output, *scale, horizon).exp_m1())
        .collect())
}

impl Model for NeuralPredictor {
    type Params = NetworkParams;

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The pretrained network reads its own window and forecasts one
    /// period; anything else needs a fit.
    fn check(&self, params: &NetworkParams) -> Result<(), ModelError> {
        if params.fits() {
            return params.fit_params(self.sequence_length()).map(|_| ());
        }
        let t = self.sequence_length();
        if let Some(n) = params.sequence_length.map(|n| n.get()).filter(|n| *n != t) {
            return Err(ModelError::InvalidInput(format!(
                "params.sequence_length {n}: the pretrained {} reads {t} returns; other lengths need params.fit = \"series\"",
                self.info.name
            )));
        }
        if let Some((key, h)) = params.given_horizon().filter(|(_, h)| h.periods() != 1) {
            return Err(ModelError::InvalidInput(format!(
                "params.{key} {h}: the pretrained {} forecasts 1 period ahead; other horizons need params.fit = \"series\"",
                self.info.name
            )));
        }
        Ok(())
    }

    fn lookback(&self, params: &NetworkParams) -> usize {
        if params.fits() {
            FIT_LOOKBACK
        } else {
            // The window, and the windows before it that calibrate the interval.
            self.sequence_length() + 1 + CALIBRATION_POINTS
        }
    }

    fn horizon(&self, params: &NetworkParams) -> Horizon {
        params.given_horizon().map_or(Horizon::ONE, |(_, h)| h)
    }

    fn forecast_ahead(
        &self,
        Ahead { closes, fit_at, at }: Ahead<'_>,
        params: &NetworkParams,
        budget: &Budget,
    ) -> Result<Vec<f64>, ModelError> {
        if params.fits() {
            let fp = params.fit_params(self.sequence_length())?;
            let (fitted, _) = self.fit_to(&closes[..=fit_at], &fp, budget)?;
            return forecasts_at(&fitted.network, closes, fp.sequence_length, fp.horizon, at);
        }
        forecasts_at(
            &self.network,
            closes,
            self.sequence_length(),
            self.card.horizon,
            at,
        )
    }

    fn predict(
        &self,
        input: &ModelInput,
        params: &NetworkParams,
        budget: &Budget,
    ) -> Result<Prediction, ModelError> {
        let closes = input.series()?.closes();
        let level = level_or_default(params.interval_level);
        if params.fits() {
            let fp = params.fit_params(self.sequence_length())?;
            return self
                .predict_fitted(closes, &fp, level, budget)
                .map(Prediction::Forecast);
        }
        let t = self.sequence_length();
        let (inputs, scale) = latest(closes, t).ok_or_else(|| {
            ModelError::InsufficientData(format!(
                "{} needs at least {} prices ({t} returns), got {}",
                self.info.name,
                t + 1,
                closes.len()
            ))
        })?;
        let output = infer(&self.network, &inputs)?;
        let mut forecast = self.forecast(
            closes,
            output,
            unscale(output, scale, self.card.horizon).exp_m1(),
            self.card.calibration.confidence(f64::from(output)),
            &self.pretrained(),
            None,
        )?;
        let fp = self.pretrained();
        let origins = calibration_origins(closes, t, fp.horizon);
        let calibration = residuals(&self.network, closes, &fp, origins)?;
        forecast.prediction_interval = Some(Box::new(PredictionInterval::conformal(
            &calibration,
            closes,
            forecast.predicted_return,
            level,
        )));
        forecast.model_version = Some(self.card.version.clone());
        forecast.validation = Some(self.card.test.clone());
        Ok(Prediction::Forecast(forecast))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::evaluation::evaluate_network;

    fn pretrained(model: &str) -> NeuralPredictor {
        NeuralPredictor::load(Path::new("models"), model).expect("pretrained weights")
    }

    #[test]
    fn pretrained_weights_are_trained_and_their_cards_hold_measured_figures() {
        let table = crate::market::dataset::embedded().unwrap();
        for model in [LSTM, TRANSFORMER] {
            let p = pretrained(model);
            let card = p.card();
            // Trained: the weights moved away from their seeded start and the
            // training loss fell.
            let start = Network::seeded(card.architecture.clone(), card.training.seed).unwrap();
            assert_ne!(
                start.flat_weights().unwrap(),
                p.network.flat_weights().unwrap()
            );
            let losses = &card.report.train_loss;
            assert!(losses.last() < losses.first(), "{model}: {losses:?}");
            assert!(card.report.best_epoch >= 1);
            // The card's test figures are what these weights score now.
            let measured = evaluate_network(&table, &p).unwrap().pooled;
            assert_eq!(measured.samples, card.test.samples, "{model}");
            assert!(
                (measured.rmse - card.test.rmse).abs() < 1e-9
                    && (measured.directional_accuracy - card.test.directional_accuracy).abs()
                        < 1e-9,
                "{model}: card {:?}, measured {measured:?}",
                card.test
            );
        }
    }

    #[test]
    fn the_forecast_moves_with_the_input_window() {
        let p = pretrained(LSTM);
        let calm: Vec<f64> = (0..30).map(|i| 100.0 + (i % 3) as f64 * 0.1).collect();
        let falling: Vec<f64> = (0..30).map(|i| 100.0 * 0.99f64.powi(i)).collect();
        let forecast = |closes: Vec<f64>| {
            let input = ModelInput::Series(crate::models::PriceSeries::new(closes).unwrap());
            let made = p
                .predict(&input, &NetworkParams::default(), &Budget::unlimited())
                .unwrap();
            made.forecast().unwrap().predicted_return
        };
        assert_ne!(forecast(calm), forecast(falling));
    }
}
