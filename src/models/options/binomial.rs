//! The Cox-Ross-Rubinstein binomial tree, as in the textbooks:
//! `u = e^{σ√dt}`, `d = 1/u`, `p = (e^{(r−q)dt} − d)/(u − d)`, values
//! discounted back one step at a time, with early exercise at every node
//! for American options. Greeks by finite differences: delta and gamma
//! from the nodes one and two steps in, theta from the middle node two
//! steps in (where the spot is back at today's), vega and rho by repricing
//! with the volatility and the rate bumped either way.

use super::{OptionError, OptionInputs, Sensitivities, Style};

/// The bump for vega and rho: small against the inputs, large against the
/// tree's rounding.
const BUMP: f64 = 1e-4;

/// A tree's value today and its values one and two steps in.
struct Rolled {
    v0: f64,
    v1: [f64; 2],
    v2: [f64; 3],
    u: f64,
    dt: f64,
}

pub fn price(o: &OptionInputs, style: Style, steps: usize) -> Result<f64, OptionError> {
    roll(o, style, steps).map(|r| r.v0)
}

pub fn value(o: &OptionInputs, style: Style, steps: usize) -> Result<Sensitivities, OptionError> {
    let tree = roll(o, style, steps)?;
    let s = o.spot;
    let (u, d) = (tree.u, 1.0 / tree.u);
    let delta = (tree.v1[1] - tree.v1[0]) / (s * u - s * d);
    let up = (tree.v2[2] - tree.v2[1]) / (s * u * u - s);
    let down = (tree.v2[1] - tree.v2[0]) / (s - s * d * d);
    let gamma = (up - down) / (0.5 * (s * u * u - s * d * d));
    let theta = (tree.v2[1] - tree.v0) / (2.0 * tree.dt);
    let h = BUMP.min(0.5 * o.volatility);
    let vega = (price(&o.with_volatility(o.volatility + h), style, steps)?
        - price(&o.with_volatility(o.volatility - h), style, steps)?)
        / (2.0 * h);
    let rho = (price(&o.with_rate(o.rate + BUMP), style, steps)?
        - price(&o.with_rate(o.rate - BUMP), style, steps)?)
        / (2.0 * BUMP);
    Ok(Sensitivities {
        price: tree.v0,
        delta,
        gamma,
        vega,
        theta,
        rho,
    })
}

/// The lowest volatility a tree of `steps` can be built with: the
/// up-move probability lies in (0, 1) only while `σ√dt > |r − q|dt`.
pub fn min_volatility(o: &OptionInputs, steps: usize) -> f64 {
    let dt = o.expiry_years / steps.max(1) as f64;
    (o.rate - o.dividend_yield).abs() * dt.sqrt()
}

fn roll(o: &OptionInputs, style: Style, steps: usize) -> Result<Rolled, OptionError> {
    if !(2..=super::MAX_STEPS).contains(&steps) {
        return Err(OptionError::InvalidInput(format!(
            "steps must be an integer from 2 to {}, got {steps}",
            super::MAX_STEPS
        )));
    }
    let n = steps;
    let dt = o.expiry_years / n as f64;
    let log_u = o.volatility * dt.sqrt();
    let (u, d) = (log_u.exp(), (-log_u).exp());
    let p = (((o.rate - o.dividend_yield) * dt).exp() - d) / (u - d);
    if !(p > 0.0 && p < 1.0) {
        return Err(OptionError::NoAnswer(format!(
            "the tree's up-move probability is {p}, outside (0, 1): with these rates and volatility it needs more steps (volatility x sqrt(dt) must exceed |rate - dividend_yield| x dt)"
        )));
    }
    let disc = (-o.rate * dt).exp();
    let (pu, pd) = (disc * p, disc * (1.0 - p));
    let sign = o.kind.sign();
    // spot(i, j) = S u^{2j − i}, read from one table of powers u^{k − n}.
    let powers: Vec<f64> = (0..=2 * n)
        .map(|k| o.spot * ((k as f64 - n as f64) * log_u).exp())
        .collect();
    let spot_at = |i: usize, j: usize| powers[n + 2 * j - i];
    let mut values: Vec<f64> = (0..=n)
        .map(|j| (sign * (spot_at(n, j) - o.strike)).max(0.0))
        .collect();
    let american = style == Style::American;
    let (mut v1, mut v2) = ([0.0; 2], [0.0; 3]);
    for i in (0..n).rev() {
        for j in 0..=i {
            let held = pu * values[j + 1] + pd * values[j];
            values[j] = if american {
                held.max(sign * (spot_at(i, j) - o.strike))
            } else {
                held
            };
        }
        match i {
            2 => v2.copy_from_slice(&values[..3]),
            1 => v1.copy_from_slice(&values[..2]),
            _ => {}
        }
    }
    Ok(Rolled {
        v0: values[0],
        v1,
        v2,
        u,
        dt,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{black_scholes, Kind};
    use super::*;

    fn inputs(kind: Kind, q: f64) -> OptionInputs {
        OptionInputs::new(kind, 100.0, 105.0, 182.0 / 365.0, 0.25, 0.05, q).unwrap()
    }

    #[test]
    fn a_european_tree_converges_to_black_scholes() {
        let o = inputs(Kind::Put, 0.02);
        let tree = price(&o, Style::European, 2000).unwrap();
        assert!((tree - black_scholes::price(&o)).abs() < 2e-3, "{tree}");
    }

    #[test]
    fn early_exercise_is_worth_something_for_a_put_only_with_rates_above_zero() {
        let o = inputs(Kind::Put, 0.02);
        let (am, eu) = (
            price(&o, Style::American, 500).unwrap(),
            price(&o, Style::European, 500).unwrap(),
        );
        assert!(am > eu, "{am} {eu}");
        // The dependency notes' probe of the same tree: 9.154623.
        assert!((am - 9.154623).abs() < 1e-6, "{am}");
        // A call without dividends is never exercised early.
        let c = inputs(Kind::Call, 0.0);
        let (am, eu) = (
            price(&c, Style::American, 300).unwrap(),
            price(&c, Style::European, 300).unwrap(),
        );
        assert!((am - eu).abs() < 1e-12);
    }

    #[test]
    fn tree_greeks_agree_with_black_scholes_on_a_european_option() {
        let o = inputs(Kind::Call, 0.02);
        let (tree, bs) = (
            value(&o, Style::European, 2000).unwrap(),
            black_scholes::value(&o),
        );
        assert!((tree.delta - bs.delta).abs() < 1e-3);
        assert!((tree.gamma - bs.gamma).abs() < 1e-3);
        assert!((tree.vega - bs.vega).abs() / bs.vega < 1e-2);
        assert!((tree.theta - bs.theta).abs() / bs.theta.abs() < 1e-2);
        assert!((tree.rho - bs.rho).abs() / bs.rho < 1e-2);
    }

    #[test]
    fn too_few_steps_for_the_rates_is_refused_not_priced() {
        let o = OptionInputs::new(Kind::Call, 100.0, 100.0, 10.0, 0.01, 0.5, 0.0).unwrap();
        assert!(matches!(
            price(&o, Style::American, 2),
            Err(OptionError::NoAnswer(_))
        ));
        assert!(matches!(
            price(&o, Style::American, 1),
            Err(OptionError::InvalidInput(_))
        ));
    }
}
