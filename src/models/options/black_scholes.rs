//! Black-Scholes-Merton: European options with a continuous dividend
//! yield, in closed form.

use super::{norm_cdf, norm_pdf, Kind, OptionInputs, Sensitivities};

/// `d1` and `d2` of the formula.
fn d1_d2(o: &OptionInputs) -> (f64, f64) {
    let sd = o.volatility * o.expiry_years.sqrt();
    let d1 = ((o.spot / o.strike).ln()
        + (o.rate - o.dividend_yield + 0.5 * o.volatility * o.volatility) * o.expiry_years)
        / sd;
    (d1, d1 - sd)
}

pub fn price(o: &OptionInputs) -> f64 {
    let (d1, d2) = d1_d2(o);
    let (sq, kr) = (o.spot * o.dividend_discount(), o.strike * o.discount());
    match o.kind {
        Kind::Call => sq * norm_cdf(d1) - kr * norm_cdf(d2),
        Kind::Put => kr * norm_cdf(-d2) - sq * norm_cdf(-d1),
    }
}

pub fn value(o: &OptionInputs) -> Sensitivities {
    let (d1, d2) = d1_d2(o);
    let t = o.expiry_years;
    let (qd, rd) = (o.dividend_discount(), o.discount());
    let (sq, kr) = (o.spot * qd, o.strike * rd);
    let sqrt_t = t.sqrt();
    let pdf = norm_pdf(d1);
    let gamma = qd * pdf / (o.spot * o.volatility * sqrt_t);
    let vega = sq * pdf * sqrt_t;
    // Time decay of the volatility term, common to calls and puts.
    let decay = -sq * pdf * o.volatility / (2.0 * sqrt_t);
    match o.kind {
        Kind::Call => {
            let (n1, n2) = (norm_cdf(d1), norm_cdf(d2));
            Sensitivities {
                price: sq * n1 - kr * n2,
                delta: qd * n1,
                gamma,
                vega,
                theta: decay - o.rate * kr * n2 + o.dividend_yield * sq * n1,
                rho: kr * t * n2,
            }
        }
        Kind::Put => {
            let (n1, n2) = (norm_cdf(-d1), norm_cdf(-d2));
            Sensitivities {
                price: kr * n2 - sq * n1,
                delta: -qd * n1,
                gamma,
                vega,
                theta: decay + o.rate * kr * n2 - o.dividend_yield * sq * n1,
                rho: -kr * t * n2,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(kind: Kind) -> OptionInputs {
        OptionInputs::new(kind, 100.0, 105.0, 182.0 / 365.0, 0.25, 0.05, 0.02).unwrap()
    }

    #[test]
    fn the_probed_quantlib_case_to_twelve_digits() {
        // QuantLib 1.44 AnalyticEuropeanEngine (dependency notes, §14).
        let call = value(&case(Kind::Call));
        assert!((call.price - 5.509484468018).abs() < 1e-11);
        assert!((call.delta - 0.4542800440).abs() < 1e-9);
        assert!((call.vega - 27.74264118).abs() < 1e-7);
        assert!((call.theta - -8.04208022).abs() < 1e-7);
        let put = value(&case(Kind::Put));
        assert!((put.price - 8.916343808960).abs() < 1e-11);
        assert!((put.rho - -31.16240663).abs() < 1e-7);
    }

    #[test]
    fn calls_and_puts_keep_parity() {
        let (c, p) = (price(&case(Kind::Call)), price(&case(Kind::Put)));
        let o = case(Kind::Call);
        let parity = o.spot * o.dividend_discount() - o.strike * o.discount();
        assert!((c - p - parity).abs() < 1e-12);
    }
}
