//! Technical features of a close series, each computed at a close `t` from
//! closes up to and including `t` only (no look-ahead).
//!
//! The set is the legacy service's eleven:
//!
//! | feature | definition at close t |
//! |---|---|
//! | `ma_gap_{5,10,20}` | close / mean(last n closes) - 1 |
//! | `volatility_{5,10,20}` | standard deviation (ddof 0) of the last n simple returns |
//! | `momentum_{3,7,14}` | close / close n periods earlier - 1 |
//! | `rsi_14` | 100 - 100 / (1 + mean gain / mean loss) over the last 14 returns (simple means; 100 when no loss) |
//! | `bollinger_position` | (close - lower) / (upper - lower), bands = mean(20) +- 2 sd(20), ddof 0; 0.5 when the band is flat |

/// Names, in column order.
pub const NAMES: [&str; 11] = [
    "ma_gap_5",
    "ma_gap_10",
    "ma_gap_20",
    "volatility_5",
    "volatility_10",
    "volatility_20",
    "momentum_3",
    "momentum_7",
    "momentum_14",
    "rsi_14",
    "bollinger_position",
];

/// The first close index with every feature defined: 20 returns back.
pub const WARM_UP: usize = 20;

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn std_dev(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// The features at close `t` (needs `t >= WARM_UP`).
pub fn at(closes: &[f64], t: usize) -> [f64; 11] {
    debug_assert!(t >= WARM_UP && t < closes.len());
    let close = closes[t];
    let last = |n: usize| &closes[t + 1 - n..=t];
    let returns: Vec<f64> = closes[t - WARM_UP..=t]
        .windows(2)
        .map(|w| w[1] / w[0] - 1.0)
        .collect();
    let last_returns = |n: usize| &returns[returns.len() - n..];
    let ma_gap = |n: usize| close / mean(last(n)) - 1.0;
    let momentum = |n: usize| close / closes[t - n] - 1.0;
    let (gain, loss) = last_returns(14)
        .iter()
        .fold((0.0, 0.0), |(g, l), r| (g + r.max(0.0), l + (-r).max(0.0)));
    let rsi = if loss == 0.0 {
        100.0
    } else {
        100.0 - 100.0 / (1.0 + gain / loss)
    };
    let (band_mean, band_sd) = (mean(last(20)), std_dev(last(20)));
    let bollinger = if band_sd > 0.0 {
        (close - (band_mean - 2.0 * band_sd)) / (4.0 * band_sd)
    } else {
        0.5
    };
    [
        ma_gap(5),
        ma_gap(10),
        ma_gap(20),
        std_dev(last_returns(5)),
        std_dev(last_returns(10)),
        std_dev(last_returns(20)),
        momentum(3),
        momentum(7),
        momentum(14),
        rsi,
        bollinger,
    ]
}

/// One supervised row: the features at close `t` and the simple return
/// from `t` to `t + horizon`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub t: usize,
    pub features: [f64; 11],
    pub target: f64,
}

/// Every row whose target lies inside `closes`, oldest first.
pub fn rows(closes: &[f64], horizon: usize) -> Vec<Row> {
    (WARM_UP..closes.len().saturating_sub(horizon))
        .map(|t| Row {
            t,
            features: at(closes, t),
            target: closes[t + horizon] / closes[t] - 1.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wavy(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 100.0 + 10.0 * (i as f64 * 0.3).sin() + i as f64 * 0.1)
            .collect()
    }

    #[test]
    fn features_never_look_past_their_close() {
        let closes = wavy(60);
        let mut changed = closes.clone();
        for c in &mut changed[31..] {
            *c *= 1.5;
        }
        assert_eq!(at(&closes, 30), at(&changed, 30));
        assert_ne!(at(&closes, 31), at(&changed, 31));
    }

    #[test]
    fn features_match_their_definitions_on_a_hand_checked_series() {
        // 21 closes rising by 1 from 100: every return is positive.
        let closes: Vec<f64> = (0..21).map(|i| 100.0 + i as f64).collect();
        let f = at(&closes, 20);
        assert!((f[0] - (120.0 / 118.0 - 1.0)).abs() < 1e-12, "ma_gap_5");
        assert!((f[2] - (120.0 / 110.5 - 1.0)).abs() < 1e-12, "ma_gap_20");
        assert!((f[6] - (120.0 / 117.0 - 1.0)).abs() < 1e-12, "momentum_3");
        assert!((f[8] - (120.0 / 106.0 - 1.0)).abs() < 1e-12, "momentum_14");
        assert_eq!(f[9], 100.0, "no losses: RSI 100");
        // Bollinger: mean 110.5, sd of 101..=120 is sqrt((20^2-1)/12).
        let sd = ((400.0f64 - 1.0) / 12.0).sqrt();
        assert!((f[10] - (120.0 - 110.5 + 2.0 * sd) / (4.0 * sd)).abs() < 1e-12);
        // A flat series: zero volatility, mid band, RSI 100.
        let flat = at(&[50.0; 21], 20);
        assert_eq!(flat[3..6], [0.0; 3]);
        assert_eq!((flat[9], flat[10]), (100.0, 0.5));
    }

    #[test]
    fn rows_target_the_return_after_their_close() {
        let closes = wavy(30);
        let rs = rows(&closes, 2);
        assert_eq!(rs.len(), 30 - 2 - WARM_UP);
        let first = &rs[0];
        assert_eq!(first.t, WARM_UP);
        assert_eq!(first.target, closes[22] / closes[20] - 1.0);
    }
}
