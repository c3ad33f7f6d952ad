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
use serde_json::{json, Map, Value};

use super::card::ModelCard;
use super::fit::{FitParams, FitPolicy, SeriesFitter};
use super::windows::{latest, unscale};
use super::{Architecture, Network};
use crate::models::{Budget, InputType, ModelError, ModelInfo, ModelInput, Predictor};

pub const LSTM: &str = "lstm_predictor";
pub const TRANSFORMER: &str = "transformer_predictor";

/// A pretrained network and its card.
pub struct NeuralPredictor {
    info: ModelInfo,
    network: Network,
    card: ModelCard,
    fitter: Arc<SeriesFitter>,
}

/// Closes fetched for a per-series fit when the caller names a symbol.
const FIT_LOOKBACK: usize = 1000;

/// The network's scaled output for one window.
fn infer(network: &Network, inputs: &[f32]) -> Result<f32, ModelError> {
    network
        .predict(&[inputs])
        .map_err(|e| ModelError::Failed(format!("inference failed: {e}")))?
        .first()
        .copied()
        .ok_or_else(|| ModelError::Failed("the network returned no forecast".into()))
}

/// Whether the request asks for a fit to its own series.
fn wants_fit(params: &Value) -> Result<bool, ModelError> {
    match params.get("fit") {
        Some(Value::String(s)) if s == "series" => Ok(true),
        Some(Value::String(s)) if s == "pretrained" => Ok(false),
        Some(other) => Err(ModelError::InvalidInput(format!(
            "params.fit must be \"series\" or \"pretrained\", got {other}"
        ))),
        None => Ok(params.get("epochs").is_some_and(|v| !v.is_null())),
    }
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

    /// The network fitted (or a cached fit) to `closes` per `params`; the
    /// bool says whether it came from the cache.
    fn fit_to(
        &self,
        closes: &[f64],
        params: &Value,
        budget: &Budget,
    ) -> Result<(Arc<super::fit::Fitted>, FitParams, bool), ModelError> {
        let fp = FitParams::from_params(params, self.sequence_length())?;
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
        let (fitted, cached) = self.fitter.fit(
            self.info.name,
            architecture,
            &self.network,
            closes,
            &fp,
            budget,
        )?;
        Ok((fitted, fp, cached))
    }

    /// Fits (or reuses a fit of) the network to `closes` and forecasts from it.
    fn predict_fitted(
        &self,
        closes: &[f64],
        params: &Value,
        budget: &Budget,
    ) -> Result<Map<String, Value>, ModelError> {
        let (fitted, fp, cached) = self.fit_to(closes, params, budget)?;
        let (inputs, scale) = latest(closes, fp.sequence_length)
            .ok_or_else(|| ModelError::Failed("no window to forecast from".into()))?;
        let output = infer(&fitted.network, &inputs)?;
        let mut fields = self.forecast_fields(
            closes,
            output,
            unscale(output, scale, fp.horizon).exp_m1(),
            fitted.calibration.confidence(f64::from(output)),
            fp.sequence_length,
            fp.horizon,
        )?;
        fields.insert("model_version".into(), json!(fitted.version));
        fields.insert("validation".into(), json!(fitted.validation));
        let r = &fitted.report;
        fields.insert(
            "fit".into(),
            json!({
                "mode": "series",
                "fine_tuned_from_pretrained": fitted.fine_tuned,
                "cached": cached,
                "epochs_run": r.epochs_run,
                "best_epoch": r.best_epoch,
                "stopped_early": r.stopped_early,
                "out_of_time": r.out_of_time,
                "training_seconds": r.seconds,
                "validation_loss": r.best_validation_loss(),
                "params": fitted.params,
            }),
        );
        Ok(fields)
    }

    /// The contract's forecast fields.
    fn forecast_fields(
        &self,
        closes: &[f64],
        output: f32,
        predicted_return: f64,
        confidence: f64,
        sequence_length: usize,
        horizon: usize,
    ) -> Result<Map<String, Value>, ModelError> {
        if !predicted_return.is_finite() || !output.is_finite() {
            return Err(ModelError::Failed(
                "the network produced a non-finite forecast".into(),
            ));
        }
        let current_price = closes[closes.len() - 1];
        let mut fields = Map::new();
        fields.insert(
            "predicted_price".into(),
            json!(current_price * (1.0 + predicted_return)),
        );
        fields.insert("predicted_return".into(), json!(predicted_return));
        fields.insert("current_price".into(), json!(current_price));
        fields.insert("confidence".into(), json!(confidence));
        fields.insert("model_type".into(), json!(self.info.name));
        fields.insert(
            "prediction_horizon".into(),
            json!(format!("{horizon}_period")),
        );
        fields.insert("sequence_length".into(), json!(sequence_length));
        if let Architecture::Transformer(cfg) = &self.card.architecture {
            fields.insert("attention_heads".into(), json!(cfg.attention_heads));
        }
        Ok(fields)
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

    /// Checks params this pretrained network can honour.
    fn check_params(&self, params: &Value) -> Result<(), ModelError> {
        let t = self.sequence_length();
        if let Some(v) = params.get("sequence_length") {
            match v.as_u64() {
                Some(n) if n as usize == t => {}
                Some(0) => {
                    return Err(ModelError::InvalidInput(
                        "params.sequence_length must be at least 1".into(),
                    ))
                }
                Some(n) => {
                    return Err(ModelError::InvalidInput(format!(
                        "params.sequence_length {n}: the pretrained {} reads {t} returns; other lengths need params.fit = \"series\"",
                        self.info.name
                    )))
                }
                None => {
                    return Err(ModelError::InvalidInput(
                        "params.sequence_length must be a positive integer".into(),
                    ))
                }
            }
        }
        for key in ["prediction_horizon", "horizon"] {
            if let Some(v) = params.get(key) {
                let one = v.as_u64() == Some(1) || v.as_str() == Some("1_period");
                if !one {
                    return Err(ModelError::InvalidInput(format!(
                        "params.{key} {v}: the pretrained {} forecasts 1 period ahead; other horizons need params.fit = \"series\"",
                        self.info.name
                    )));
                }
            }
        }
        Ok(())
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
        .map_err(|e| ModelError::Failed(format!("inference failed: {e}")))?;
    Ok(outputs
        .iter()
        .zip(&windows)
        .map(|(&output, (_, scale))| unscale(output, *scale, horizon).exp_m1())
        .collect())
}

impl Predictor for NeuralPredictor {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn forecast_ahead(
        &self,
        closes: &[f64],
        fit_at: usize,
        at: Range<usize>,
        params: &Value,
        budget: &Budget,
    ) -> Result<Vec<f64>, ModelError> {
        if wants_fit(params)? {
            let (fitted, fp, _) = self.fit_to(&closes[..=fit_at], params, budget)?;
            return forecasts_at(&fitted.network, closes, fp.sequence_length, fp.horizon, at);
        }
        self.check_params(params)?;
        forecasts_at(
            &self.network,
            closes,
            self.sequence_length(),
            self.card.horizon,
            at,
        )
    }

    fn lookback(&self, params: &Value) -> usize {
        match wants_fit(params) {
            Ok(true) => FIT_LOOKBACK,
            _ => self.sequence_length() + 1,
        }
    }

    fn predict(
        &self,
        input: &ModelInput,
        params: &Value,
        budget: &Budget,
    ) -> Result<Map<String, Value>, ModelError> {
        let series = input.series()?;
        if wants_fit(params)? {
            return self.predict_fitted(series.closes(), params, budget);
        }
        self.check_params(params)?;
        let t = self.sequence_length();
        let closes = series.closes();
        let (inputs, scale) = latest(closes, t).ok_or_else(|| {
            ModelError::InsufficientData(format!(
                "{} needs at least {} prices ({t} returns), got {}",
                self.info.name,
                t + 1,
                closes.len()
            ))
        })?;
        let output = infer(&self.network, &inputs)?;
        let mut fields = self.forecast_fields(
            closes,
            output,
            unscale(output, scale, self.card.horizon).exp_m1(),
            self.card.calibration.confidence(f64::from(output)),
            t,
            self.card.horizon,
        )?;
        fields.insert("model_version".into(), json!(self.card.version));
        fields.insert("validation".into(), json!(self.card.test));
        Ok(fields)
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
            p.predict(&input, &Value::Null, &Budget::unlimited())
                .unwrap()["predicted_return"]
                .as_f64()
                .unwrap()
        };
        assert_ne!(forecast(calm), forecast(falling));
    }
}
