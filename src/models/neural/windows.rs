//! Closes -> the networks' inputs and targets.
//!
//! A window is `len` daily log returns ending at a close. Each window is
//! scaled by its own volatility (the standard deviation of its returns), so
//! one network serves calm and volatile stocks and regimes alike; the target
//! is the log return `horizon` periods after the window, in the same units
//! (divided by `scale * sqrt(horizon)`). Scaled values are clipped to
//! +-[`Z_CLIP`] so a single crash day cannot dominate a loss.

/// Largest magnitude of a scaled input or target.
pub const Z_CLIP: f32 = 5.0;
/// Floor on a window's scale (a flat window has zero volatility).
const MIN_SCALE: f64 = 1e-6;

/// Log returns of consecutive closes (all closes must be positive).
pub fn log_returns(closes: &[f64]) -> Vec<f64> {
    closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

/// A window's volatility scale: the standard deviation (ddof 0) of its returns.
pub fn scale_of(returns: &[f64]) -> f64 {
    let n = returns.len().max(1) as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    var.sqrt().max(MIN_SCALE)
}

fn clip(z: f64) -> f32 {
    (z as f32).clamp(-Z_CLIP, Z_CLIP)
}

/// The network input for returns scaled by `scale`.
pub fn scaled(returns: &[f64], scale: f64) -> Vec<f32> {
    returns.iter().map(|r| clip(r / scale)).collect()
}

/// One example: the scaled window, its scale, and what followed it.
#[derive(Debug, Clone)]
pub struct Window {
    pub inputs: Vec<f32>,
    pub scale: f64,
    /// Scaled target (clipped), what the network learns.
    pub target: f32,
    /// The log return over the horizon, unscaled and unclipped.
    pub actual: f64,
    /// Index (into the closes) of the last close the window saw.
    pub last_close: usize,
}

/// Turns a scaled network output back into a log return over `horizon`.
pub fn unscale(output: f32, scale: f64, horizon: usize) -> f64 {
    f64::from(output) * scale * (horizon as f64).sqrt()
}

/// The input for predicting after the last close: `None` if there are fewer
/// than `len + 1` closes.
pub fn latest(closes: &[f64], len: usize) -> Option<(Vec<f32>, f64)> {
    let tail = closes.get(closes.len().checked_sub(len + 1)?..)?;
    let returns = log_returns(tail);
    let scale = scale_of(&returns);
    Some((scaled(&returns, scale), scale))
}

/// Every window of `len` returns whose target `horizon` periods later is
/// inside `closes`, oldest first.
pub fn windows(closes: &[f64], len: usize, horizon: usize) -> Vec<Window> {
    let returns = log_returns(closes);
    // Window k covers returns[k..k+len]; its last close is closes[k+len].
    let count = returns.len().saturating_sub(len + horizon - 1);
    (0..count)
        .map(|k| {
            let window = &returns[k..k + len];
            let scale = scale_of(window);
            let actual: f64 = returns[k + len..k + len + horizon].iter().sum();
            Window {
                inputs: scaled(window, scale),
                scale,
                target: clip(actual / (scale * (horizon as f64).sqrt())),
                actual,
                last_close: k + len,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_see_only_closes_up_to_their_last_and_target_the_next() {
        let closes = [100.0, 101.0, 99.0, 102.0, 103.0, 101.0];
        let ws = windows(&closes, 3, 1);
        assert_eq!(ws.len(), 2);
        let w = &ws[0];
        assert_eq!(w.last_close, 3);
        assert!((w.actual - (103.0f64 / 102.0).ln()).abs() < 1e-12);
        let r = log_returns(&closes[..4]);
        assert_eq!(w.scale, scale_of(&r));
        assert_eq!(w.inputs, scaled(&r, w.scale));
        assert_eq!(ws[1].last_close, 4);
        // The newest window, for a prediction, ends at the last close.
        let (inputs, scale) = latest(&closes, 3).unwrap();
        assert_eq!(scale, scale_of(&log_returns(&closes[2..])));
        assert_eq!(inputs.len(), 3);
        assert!(latest(&closes[..3], 3).is_none());
    }

    #[test]
    fn multi_period_targets_sum_the_returns_and_scale_by_root_horizon() {
        let closes = [100.0, 110.0, 99.0, 120.0, 90.0, 95.0, 97.0];
        let ws = windows(&closes, 2, 3);
        assert_eq!(ws.len(), 2);
        let w = &ws[0];
        assert!((w.actual - (95.0f64 / 99.0).ln()).abs() < 1e-12);
        let z = (w.actual / (w.scale * 3f64.sqrt())) as f32;
        assert_eq!(w.target, z.clamp(-Z_CLIP, Z_CLIP));
        assert!((unscale(w.target, w.scale, 3) - w.actual).abs() < 1e-6 || z.abs() > Z_CLIP);
    }
}
