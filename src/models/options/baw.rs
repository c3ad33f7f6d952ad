//! The Barone-Adesi-Whaley (1987) quadratic approximation of American
//! options, as QuantLib's `BaroneAdesiWhaleyApproximationEngine` computes
//! it (the same seed and Newton iteration for the critical price), so the
//! two agree to rounding. Greeks by central differences on the formula.

use super::{black_scholes, norm_cdf, norm_pdf, Kind, OptionInputs, Sensitivities};

/// Newton stops when value matching holds to this share of the strike.
const TOLERANCE: f64 = 1e-6;
/// Newton iterations before the last estimate is taken as it stands.
const MAX_ITERATIONS: usize = 100;
/// Relative bump of spot for delta and gamma.
const SPOT_BUMP: f64 = 1e-4;
/// Bump of volatility, rate and expiry (years).
const BUMP: f64 = 1e-4;

/// The quadratic's exponent `Q` for calls (`+`) or puts (`−`), with
/// `N = 2(r − q)/σ²` and `K = 2r/(σ²(1 − e^{−rT}))` (`2/σ²` at `r = 0`).
fn exponent(kind: Kind, n: f64, k: f64) -> f64 {
    let root = ((n - 1.0) * (n - 1.0) + 4.0 * k).sqrt();
    (-(n - 1.0) + kind.sign() * root) / 2.0
}

struct Coefficients {
    variance: f64,
    n: f64,
    k: f64,
    rd: f64,
    qd: f64,
}

fn coefficients(o: &OptionInputs) -> Coefficients {
    let variance = o.volatility * o.volatility * o.expiry_years;
    let (rd, qd) = (o.discount(), o.dividend_discount());
    let n = 2.0 * (qd / rd).ln() / variance;
    let k = if (rd - 1.0).abs() > 1000.0 * f64::EPSILON {
        -2.0 * rd.ln() / (variance * (1.0 - rd))
    } else {
        2.0 / variance
    };
    Coefficients {
        variance,
        n,
        k,
        rd,
        qd,
    }
}

pub fn price(o: &OptionInputs) -> f64 {
    let c = coefficients(o);
    if o.kind == Kind::Call && c.qd >= 1.0 {
        // Without dividends a call is never exercised early.
        return black_scholes::price(o);
    }
    let sk = critical_price(o, &c);
    let sd = c.variance.sqrt();
    let d1 = ((sk * c.qd / c.rd / o.strike).ln() + 0.5 * c.variance) / sd;
    let q = exponent(o.kind, c.n, c.k);
    let european = black_scholes::price(o);
    match o.kind {
        Kind::Call => {
            let a = (sk / q) * (1.0 - c.qd * norm_cdf(d1));
            if o.spot < sk {
                european + a * (o.spot / sk).powf(q)
            } else {
                o.spot - o.strike
            }
        }
        Kind::Put => {
            let a = -(sk / q) * (1.0 - c.qd * norm_cdf(-d1));
            if o.spot > sk {
                european + a * (o.spot / sk).powf(q)
            } else {
                o.strike - o.spot
            }
        }
    }
}

/// The spot at which exercising and holding are worth the same, found by
/// Newton's method from BAW's seed.
fn critical_price(o: &OptionInputs, c: &Coefficients) -> f64 {
    let strike = o.strike;
    let sd = c.variance.sqrt();
    let m = -2.0 * c.rd.ln() / c.variance;
    let bt = (c.qd / c.rd).ln();
    let qu = exponent(o.kind, c.n, m);
    let su = strike / (1.0 - 1.0 / qu);
    let mut si = match o.kind {
        Kind::Call => {
            let h = -(bt + 2.0 * sd) * strike / (su - strike);
            strike + (su - strike) * (1.0 - h.exp())
        }
        Kind::Put => {
            let h = (bt - 2.0 * sd) * strike / (strike - su);
            su + (strike - su) * h.exp()
        }
    };
    let q = exponent(o.kind, c.n, c.k);
    // Value matching, `LHS = RHS`, and the slope `bi` of RHS in S.
    let terms = |si: f64| {
        let d1 = ((si * c.qd / c.rd / strike).ln() + 0.5 * c.variance) / sd;
        let european = black_scholes::price(&o.with_spot(si));
        match o.kind {
            Kind::Call => {
                let lhs = si - strike;
                let rhs = european + (1.0 - c.qd * norm_cdf(d1)) * si / q;
                let bi =
                    c.qd * norm_cdf(d1) * (1.0 - 1.0 / q) + (1.0 - c.qd * norm_pdf(d1) / sd) / q;
                (lhs, rhs, bi)
            }
            Kind::Put => {
                let lhs = strike - si;
                let rhs = european - (1.0 - c.qd * norm_cdf(-d1)) * si / q;
                let bi =
                    -c.qd * norm_cdf(-d1) * (1.0 - 1.0 / q) - (1.0 + c.qd * norm_pdf(-d1) / sd) / q;
                (lhs, rhs, bi)
            }
        }
    };
    let (mut lhs, mut rhs, mut bi) = terms(si);
    for _ in 0..MAX_ITERATIONS {
        if (lhs - rhs).abs() / strike <= TOLERANCE {
            break;
        }
        si = match o.kind {
            Kind::Call => (strike + rhs - bi * si) / (1.0 - bi),
            Kind::Put => (strike - rhs + bi * si) / (1.0 + bi),
        };
        (lhs, rhs, bi) = terms(si);
    }
    si
}

pub fn value(o: &OptionInputs) -> Sensitivities {
    let v = price(o);
    let h = SPOT_BUMP * o.spot;
    let (up, down) = (
        price(&o.with_spot(o.spot + h)),
        price(&o.with_spot(o.spot - h)),
    );
    let hv = BUMP.min(0.5 * o.volatility);
    let vega = (price(&o.with_volatility(o.volatility + hv))
        - price(&o.with_volatility(o.volatility - hv)))
        / (2.0 * hv);
    let rho =
        (price(&o.with_rate(o.rate + BUMP)) - price(&o.with_rate(o.rate - BUMP))) / (2.0 * BUMP);
    let ht = BUMP.min(0.5 * o.expiry_years);
    // Calendar time passing shortens the expiry.
    let theta = -(price(&o.with_expiry(o.expiry_years + ht))
        - price(&o.with_expiry(o.expiry_years - ht)))
        / (2.0 * ht);
    Sensitivities {
        price: v,
        delta: (up - down) / (2.0 * h),
        gamma: (up - 2.0 * v + down) / (h * h),
        vega,
        theta,
        rho,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probed_quantlib_cases() {
        // QuantLib 1.44 BaroneAdesiWhaleyApproximationEngine (dependency notes, §14).
        let put =
            OptionInputs::new(Kind::Put, 100.0, 105.0, 182.0 / 365.0, 0.25, 0.05, 0.02).unwrap();
        assert!((price(&put) - 9.133083).abs() < 5e-7, "{}", price(&put));
        let call =
            OptionInputs::new(Kind::Call, 100.0, 105.0, 182.0 / 365.0, 0.25, 0.05, 0.06).unwrap();
        assert!((price(&call) - 4.711885).abs() < 5e-7, "{}", price(&call));
    }

    #[test]
    fn deep_in_the_money_puts_are_exercised() {
        let put = OptionInputs::new(Kind::Put, 40.0, 100.0, 1.0, 0.2, 0.08, 0.0).unwrap();
        assert_eq!(price(&put), 60.0);
    }
}
