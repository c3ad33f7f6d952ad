//! Held-out forecast quality and the confidence calibration built from it.
//!
//! Every figure compares simple returns over the horizon: the forecast
//! against what happened, and against the naive forecast of no change
//! (return 0), whose RMSE is the root mean square of the actual returns.

use serde::{Deserialize, Serialize};

/// Forecast quality on data the model did not train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldOut {
    /// Dates the targets fall in, `YYYY-MM-DD..YYYY-MM-DD`.
    pub period: String,
    pub samples: usize,
    /// Share of forecasts with the sign of the actual return (a zero
    /// forecast or a zero return counts as a miss).
    pub directional_accuracy: f64,
    pub rmse: f64,
    /// RMSE of the zero-return forecast on the same samples.
    pub naive_rmse: f64,
    pub mae: f64,
}

impl HeldOut {
    /// Scores `(predicted, actual)` simple-return pairs.
    pub fn score(period: String, pairs: &[(f64, f64)]) -> Self {
        let n = pairs.len().max(1) as f64;
        let hits = pairs.iter().filter(|(p, a)| p * a > 0.0).count();
        let mse = pairs.iter().map(|(p, a)| (p - a).powi(2)).sum::<f64>() / n;
        let naive = pairs.iter().map(|(_, a)| a * a).sum::<f64>() / n;
        let mae = pairs.iter().map(|(p, a)| (p - a).abs()).sum::<f64>() / n;
        HeldOut {
            period,
            samples: pairs.len(),
            directional_accuracy: hits as f64 / n,
            rmse: mse.sqrt(),
            naive_rmse: naive.sqrt(),
            mae,
        }
    }

    /// RMSE relative to the naive forecast (below 1: better than no change).
    pub fn rmse_ratio(&self) -> f64 {
        if self.naive_rmse > 0.0 {
            self.rmse / self.naive_rmse
        } else {
            f64::NAN
        }
    }
}

/// Confidence as a calibrated hit rate: forecasts are grouped by the size of
/// the network's scaled output (equal-count bins on validation data), and a
/// new forecast's confidence is the share of validation forecasts in its bin
/// whose direction was right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Upper edges of |scaled output| for each bin but the last.
    pub edges: Vec<f64>,
    pub hit_rates: Vec<f64>,
    pub samples_per_bin: Vec<usize>,
}

impl Calibration {
    /// Bins `(scaled output, actual return)` pairs into `bins` groups.
    pub fn fit(pairs: &[(f64, f64)], bins: usize) -> Self {
        let mut sorted: Vec<(f64, f64)> = pairs.iter().map(|&(p, a)| (p.abs(), p * a)).collect();
        sorted.sort_by(|x, y| x.0.total_cmp(&y.0));
        let bins = bins.clamp(1, sorted.len().max(1));
        let mut edges = Vec::new();
        let mut hit_rates = Vec::new();
        let mut samples_per_bin = Vec::new();
        for b in 0..bins {
            let lo = b * sorted.len() / bins;
            let hi = (b + 1) * sorted.len() / bins;
            let bin = &sorted[lo..hi];
            let hits = bin.iter().filter(|(_, signed)| *signed > 0.0).count();
            hit_rates.push(hits as f64 / bin.len().max(1) as f64);
            samples_per_bin.push(bin.len());
            if b + 1 < bins {
                edges.push(bin.last().map_or(0.0, |x| x.0));
            }
        }
        Calibration {
            edges,
            hit_rates,
            samples_per_bin,
        }
    }

    /// The validation hit rate of forecasts as large as `scaled_output`.
    pub fn confidence(&self, scaled_output: f64) -> f64 {
        let size = scaled_output.abs();
        let bin = self.edges.iter().take_while(|&&edge| size > edge).count();
        self.hit_rates.get(bin).copied().unwrap_or(0.5)
    }
}

/// `(scaled output, predicted simple return, actual simple return)` per window.
pub fn forecasts(
    network: &super::Network,
    windows: &[super::windows::Window],
    horizon: usize,
) -> candle_core::Result<Vec<(f64, f64, f64)>> {
    let mut out = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(512) {
        let inputs: Vec<&[f32]> = chunk.iter().map(|w| w.inputs.as_slice()).collect();
        for (w, y) in chunk.iter().zip(network.predict(&inputs)?) {
            let predicted = super::windows::unscale(y, w.scale, horizon).exp_m1();
            out.push((f64::from(y), predicted, w.actual.exp_m1()));
        }
    }
    Ok(out)
}

pub fn held_out(period: String, forecasts: &[(f64, f64, f64)]) -> HeldOut {
    let pairs: Vec<(f64, f64)> = forecasts.iter().map(|&(_, p, a)| (p, a)).collect();
    HeldOut::score(period, &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_against_the_no_change_forecast() {
        let pairs = [(0.01, 0.02), (-0.01, 0.01), (0.02, 0.0), (-0.03, -0.01)];
        let h = HeldOut::score("p".into(), &pairs);
        assert_eq!(h.samples, 4);
        assert_eq!(h.directional_accuracy, 0.5);
        let mse: f64 = (0.0001 + 0.0004 + 0.0004 + 0.0004) / 4.0;
        assert!((h.rmse - mse.sqrt()).abs() < 1e-15);
        assert!((h.naive_rmse - (0.0006f64 / 4.0).sqrt()).abs() < 1e-15);
        assert!((h.mae - 0.07 / 4.0).abs() < 1e-15);
    }

    #[test]
    fn confidence_is_the_hit_rate_of_similar_sized_forecasts() {
        // Small forecasts: direction right 1 time in 4; large ones: 3 in 4.
        let pairs = [
            (0.1, 1.0),
            (0.1, -1.0),
            (-0.2, 1.0),
            (0.2, -1.0),
            (1.0, 1.0),
            (-1.1, -1.0),
            (1.2, 1.0),
            (1.3, -1.0),
        ];
        let c = Calibration::fit(&pairs, 2);
        assert_eq!(c.hit_rates, [0.25, 0.75]);
        assert_eq!(c.edges, [0.2]);
        assert_eq!(c.confidence(-0.05), 0.25);
        assert_eq!(c.confidence(0.2), 0.25);
        assert_eq!(c.confidence(-5.0), 0.75);
    }
}
