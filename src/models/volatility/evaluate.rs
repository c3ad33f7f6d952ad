//! Out-of-sample comparison of a GARCH model with the naive baselines:
//! one-day-ahead variance forecasts over a held-out stretch at the end of
//! the series, each scored against that day's squared return.
//!
//! Refitting every day costs a full maximisation per day, so the model is
//! refitted every `refit_every` days (a trading month by default) on the
//! returns before the refit day; in between, its parameters stay fixed and
//! the variance recursion is carried forward through each new return, which
//! is how a fitted model is used in production.

use serde::{Deserialize, Serialize};

use super::baselines::{realised_variance, Ewma, REALISED_WINDOW, RISKMETRICS_LAMBDA};
use super::loss::{diebold_mariano, qlike, squared_error, DieboldMariano};
use super::{fit_returns, percent_returns, GarchFit, GarchSpec, VolatilityError, MIN_CLOSES};

/// The returns each refit sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Every return before the refit day.
    #[default]
    Expanding,
    /// The last this many returns before the refit day.
    Rolling(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    pub spec: GarchSpec,
    /// Held-out days at the end of the series, each forecast one day ahead.
    pub test_periods: usize,
    /// Days between refits.
    pub refit_every: usize,
    pub window: Window,
    pub ewma_lambda: f64,
    /// Returns in the realised-variance baseline.
    pub realised_window: usize,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            spec: GarchSpec::default(),
            test_periods: 500,
            refit_every: 21,
            window: Window::Expanding,
            ewma_lambda: RISKMETRICS_LAMBDA,
            realised_window: REALISED_WINDOW,
        }
    }
}

/// One forecaster's mean losses over the held-out days (variances in
/// squared percent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    pub mean_qlike: f64,
    pub mean_mse: f64,
}

/// Diebold-Mariano tests of GARCH's losses minus a baseline's: a negative
/// statistic favours GARCH. `None` where the test is undefined (the losses
/// differ by a constant, or are not finite).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    pub qlike: Option<DieboldMariano>,
    pub mse: Option<DieboldMariano>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub config: EvaluationConfig,
    pub periods: usize,
    pub refits: usize,
    /// Refits that failed, each leaving the previous fit in use.
    pub failed_refits: usize,
    pub garch: Score,
    pub ewma: Score,
    pub realised: Score,
    pub garch_vs_ewma: Comparison,
    pub garch_vs_realised: Comparison,
    /// Each forecaster's daily losses, for tests across series.
    #[serde(skip)]
    pub losses: DailyLosses,
}

/// The three forecasters' loss series over the held-out days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyLosses {
    pub garch: Losses,
    pub ewma: Losses,
    pub realised: Losses,
}

/// One forecaster's loss series over the held-out days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Losses {
    pub qlike: Vec<f64>,
    pub mse: Vec<f64>,
}

impl Losses {
    fn push(&mut self, realised: f64, forecast: f64) {
        self.qlike.push(qlike(realised, forecast));
        self.mse.push(squared_error(realised, forecast));
    }

    fn score(&self) -> Score {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        Score {
            mean_qlike: mean(&self.qlike),
            mean_mse: mean(&self.mse),
        }
    }

    fn against(&self, baseline: &Losses) -> Comparison {
        Comparison {
            qlike: diebold_mariano(&self.qlike, &baseline.qlike, 1).ok(),
            mse: diebold_mariano(&self.mse, &baseline.mse, 1).ok(),
        }
    }
}

/// Scores `config.spec`, RiskMetrics and the realised variance on the last
/// `config.test_periods` returns of `closes` (oldest first).
pub fn evaluate(closes: &[f64], config: &EvaluationConfig) -> Result<Evaluation, VolatilityError> {
    let returns = percent_returns(closes)?;
    let n = returns.len();
    let test = config.test_periods;
    if test < 2 || config.refit_every == 0 || config.realised_window == 0 {
        return Err(VolatilityError::InvalidInput(
            "test_periods must be at least 2, refit_every and realised_window at least 1".into(),
        ));
    }
    let needed = match config.window {
        Window::Expanding => MIN_CLOSES - 1,
        Window::Rolling(w) if w + 1 >= MIN_CLOSES => w,
        Window::Rolling(w) => {
            return Err(VolatilityError::InvalidInput(format!(
                "a rolling window needs at least {} returns, got {w}",
                MIN_CLOSES - 1
            )))
        }
    }
    .max(config.realised_window)
    .max(REALISED_WINDOW);
    if n < test + needed {
        return Err(VolatilityError::InsufficientData {
            what: "closes",
            needed: test + needed + 1,
            got: closes.len(),
        });
    }
    let start = n - test;
    let mut ewma = Ewma::seeded(&returns[..start], config.ewma_lambda)?;
    let (mut garch, mut baseline_ewma, mut baseline_realised) =
        (Losses::default(), Losses::default(), Losses::default());
    let (mut refits, mut failed_refits) = (0, 0);
    let mut current: Option<(GarchFit, f64)> = None;
    for t in start..n {
        if (t - start).is_multiple_of(config.refit_every) {
            let window = match config.window {
                Window::Expanding => &returns[..t],
                Window::Rolling(w) => &returns[t - w..t],
            };
            match fit_returns(window, config.spec) {
                Ok(fit) => {
                    let next = fit.next_variance;
                    current = Some((fit, next));
                    refits += 1;
                }
                Err(e) if current.is_none() => return Err(e),
                Err(_) => failed_refits += 1,
            }
        }
        let Some((fit, variance)) = current.as_mut() else {
            return Err(VolatilityError::DidNotConverge(
                "no fit to forecast with".into(),
            ));
        };
        let r = returns[t];
        let realised = r * r;
        garch.push(realised, *variance);
        baseline_ewma.push(realised, ewma.variance());
        let recent = realised_variance(&returns[t - config.realised_window..t]).unwrap_or(0.0);
        baseline_realised.push(realised, recent);
        *variance = fit.variance_after(*variance, r);
        ewma.update(r);
    }
    Ok(Evaluation {
        config: *config,
        periods: test,
        refits,
        failed_refits,
        garch: garch.score(),
        ewma: baseline_ewma.score(),
        realised: baseline_realised.score(),
        garch_vs_ewma: garch.against(&baseline_ewma),
        garch_vs_realised: garch.against(&baseline_realised),
        losses: DailyLosses {
            garch,
            ewma: baseline_ewma,
            realised: baseline_realised,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closes whose percent returns follow a GARCH(1,1) driven by a
    /// splitmix64 stream (Box-Muller normals).
    fn garch_closes(n: usize) -> Vec<f64> {
        let mut state = 7u64;
        let mut uniform = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let (omega, alpha, beta): (f64, f64, f64) = (0.05, 0.1, 0.85);
        let mut s = omega / (1.0 - alpha - beta);
        let mut closes = vec![100.0];
        for _ in 0..n {
            let (u, v) = (uniform().max(1e-300), uniform());
            let r = s.sqrt() * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            s = omega + alpha * r * r + beta * s;
            let last = closes[closes.len() - 1];
            closes.push(last * (1.0 + r / 100.0));
        }
        closes
    }

    #[test]
    fn garch_beats_the_baselines_on_garch_data() {
        let closes = garch_closes(3000);
        let config = EvaluationConfig {
            test_periods: 2000,
            refit_every: 100,
            window: Window::Rolling(800),
            ..EvaluationConfig::default()
        };
        let e = evaluate(&closes, &config).unwrap();
        assert_eq!((e.periods, e.refits, e.failed_refits), (2000, 20, 0));
        assert!(e.garch.mean_qlike < e.ewma.mean_qlike, "{e:?}");
        assert!(e.garch.mean_qlike < e.realised.mean_qlike, "{e:?}");
        assert!(e.garch.mean_mse < e.realised.mean_mse, "{e:?}");
        let dm = e.garch_vs_realised.qlike.unwrap();
        assert!(
            dm.statistic < -2.0 && dm.p_value < 0.05 && dm.n == 2000,
            "{dm:?}"
        );
    }

    #[test]
    fn refuses_windows_it_cannot_fill() {
        let closes = garch_closes(300);
        let too_long = EvaluationConfig {
            test_periods: 250,
            ..EvaluationConfig::default()
        };
        assert_eq!(
            evaluate(&closes, &too_long).unwrap_err().code(),
            "insufficient_data"
        );
        let tiny_window = EvaluationConfig {
            test_periods: 50,
            window: Window::Rolling(20),
            ..EvaluationConfig::default()
        };
        assert_eq!(
            evaluate(&closes, &tiny_window).unwrap_err().code(),
            "invalid_input"
        );
        let never_refit = EvaluationConfig {
            refit_every: 0,
            ..EvaluationConfig::default()
        };
        assert_eq!(
            evaluate(&closes, &never_refit).unwrap_err().code(),
            "invalid_input"
        );
    }
}
