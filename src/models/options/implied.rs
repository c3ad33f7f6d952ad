//! Implied volatility: the volatility at which an engine's price equals a
//! quoted one. European prices are inverted by Jäckel's "Let's Be
//! Rational" (the `implied-vol` crate) on the undiscounted Black price;
//! American ones by bisection on the chosen engine, whose price rises with
//! volatility.
//!
//! Prices that no volatility gives (outside the no-arbitrage bounds) and
//! prices whose time value is lost in rounding (deep in the money) are
//! refused with the reason, not answered with a number.

use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility};

use super::{Method, OptionError, OptionInputs, Style, MAX_VOLATILITY};

/// A time value below this share of the price is rounding, not volatility.
const TIME_VALUE_RESOLUTION: f64 = 1e-12;
/// Bisection bracket for American prices.
const MIN_VOLATILITY: f64 = 1e-4;
/// Bisection stops when the bracket is this narrow.
const VOLATILITY_TOLERANCE: f64 = 1e-13;

/// The volatility that prices `o` (whose own volatility is not read) at
/// `price` by `method`.
pub fn implied_volatility(
    o: &OptionInputs,
    price: f64,
    style: Style,
    method: Method,
    steps: usize,
) -> Result<f64, OptionError> {
    super::check_method(style, method)?;
    if !(price.is_finite() && price > 0.0) {
        return Err(OptionError::InvalidInput(format!(
            "price must be a positive number, got {price}"
        )));
    }
    // Attainable prices lie strictly between the bounds.
    let (lower, upper) = bounds(o, style);
    if price <= lower {
        return Err(OptionError::NoAnswer(format!(
            "price {price} is at or below the no-arbitrage lower bound {lower} (the option's {} value): no volatility gives it",
            if style == Style::American { "exercise" } else { "discounted intrinsic" }
        )));
    }
    if price >= upper {
        return Err(OptionError::NoAnswer(format!(
            "price {price} is at or above the no-arbitrage upper bound {upper}: no volatility gives it"
        )));
    }
    if price - lower <= TIME_VALUE_RESOLUTION * price {
        return Err(OptionError::NoAnswer(format!(
            "price {price} is so deep in the money that its time value ({}) is below the price's resolution: it carries no volatility information",
            price - lower
        )));
    }
    match method {
        Method::Analytic => lets_be_rational(o, price),
        Method::Binomial | Method::Baw => bisect(o, price, style, method, steps),
    }
}

/// The prices no volatility can reach: for a European option the
/// discounted intrinsic value of the forward and the discounted asset
/// (call) or strike (put); an American option is worth at least exercise
/// now, and a put at most its strike.
fn bounds(o: &OptionInputs, style: Style) -> (f64, f64) {
    let (sq, kr) = (o.spot * o.dividend_discount(), o.strike * o.discount());
    let european_lower = (o.kind.sign() * (sq - kr)).max(0.0);
    let european_upper = match o.kind {
        super::Kind::Call => sq,
        super::Kind::Put => kr,
    };
    match style {
        Style::European => (european_lower, european_upper),
        Style::American => {
            let upper = match o.kind {
                super::Kind::Call => o.spot,
                super::Kind::Put => o.strike,
            };
            (european_lower.max(o.intrinsic()), upper)
        }
    }
}

fn lets_be_rational(o: &OptionInputs, price: f64) -> Result<f64, OptionError> {
    let discount = o.discount();
    let solved = ImpliedBlackVolatility::builder()
        .option_price(price / discount)
        .forward(o.forward())
        .strike(o.strike)
        .expiry(o.expiry_years)
        .is_call(o.kind == super::Kind::Call)
        .build()
        .and_then(|iv| iv.calculate::<DefaultSpecialFn>());
    match solved {
        Some(iv) if iv.is_finite() && iv > 0.0 => Ok(iv),
        _ => Err(OptionError::NoAnswer(format!(
            "price {price} carries no volatility information: its time value is too small to invert"
        ))),
    }
}

fn bisect(
    o: &OptionInputs,
    price: f64,
    style: Style,
    method: Method,
    steps: usize,
) -> Result<f64, OptionError> {
    let at = |vol: f64| super::price(&o.with_volatility(vol), style, method, steps);
    // A tree cannot be built below its lowest volatility.
    let floor = match method {
        Method::Binomial => 1.001 * super::binomial::min_volatility(o, steps),
        _ => 0.0,
    };
    let (mut lo, mut hi) = (MIN_VOLATILITY.max(floor), MAX_VOLATILITY);
    if at(lo)? > price {
        return Err(OptionError::NoAnswer(format!(
            "price {price} is below the {method:?} price at volatility {lo}: its time value is too small to invert"
        )));
    }
    if at(hi)? < price {
        return Err(OptionError::NoAnswer(format!(
            "price {price} is above the {method:?} price at volatility {hi}, the highest priced"
        )));
    }
    while hi - lo > VOLATILITY_TOLERANCE * hi {
        let mid = 0.5 * (lo + hi);
        if at(mid)? < price {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

#[cfg(test)]
mod tests {
    use super::super::{baw, black_scholes, Kind};
    use super::*;

    fn inputs(kind: Kind, strike: f64, vol: f64) -> OptionInputs {
        OptionInputs::new(kind, 100.0, strike, 0.5, vol, 0.05, 0.02).unwrap()
    }

    #[test]
    fn a_european_price_gives_back_its_volatility() {
        for (kind, strike, vol) in [
            (Kind::Call, 120.0, 0.3),
            (Kind::Put, 80.0, 0.05),
            (Kind::Call, 100.0, 1.5),
        ] {
            let o = inputs(kind, strike, vol);
            let iv = implied_volatility(
                &o,
                black_scholes::price(&o),
                Style::European,
                Method::Analytic,
                0,
            )
            .unwrap();
            assert!((iv - vol).abs() < 1e-10, "{kind:?} {strike} {vol}: {iv}");
        }
    }

    #[test]
    fn an_american_price_gives_back_its_volatility() {
        let o = OptionInputs::new(Kind::Put, 100.0, 110.0, 1.0, 0.35, 0.06, 0.0).unwrap();
        let p = baw::price(&o);
        let iv = implied_volatility(&o, p, Style::American, Method::Baw, 0).unwrap();
        assert!((iv - 0.35).abs() < 1e-10, "{iv}");
    }

    #[test]
    fn prices_outside_the_bounds_are_refused_with_the_reason() {
        let o = inputs(Kind::Call, 100.0, 0.2);
        let too_high = implied_volatility(&o, 100.0, Style::European, Method::Analytic, 0);
        assert!(matches!(&too_high, Err(OptionError::NoAnswer(m)) if m.contains("upper bound")));
        let deep = inputs(Kind::Call, 10.0, 0.2);
        let lower = deep.spot * deep.dividend_discount() - deep.strike * deep.discount();
        let below = implied_volatility(&deep, lower - 0.01, Style::European, Method::Analytic, 0);
        assert!(matches!(&below, Err(OptionError::NoAnswer(m)) if m.contains("lower bound")));
        // A 5 % vol on a strike of 10 has a time value far below 1e-12 of the price.
        let p = black_scholes::price(&deep.with_volatility(0.05));
        let lost = implied_volatility(&deep, p, Style::European, Method::Analytic, 0);
        assert!(matches!(&lost, Err(OptionError::NoAnswer(_))), "{lost:?}");
        assert!(matches!(
            implied_volatility(&o, -1.0, Style::European, Method::Analytic, 0),
            Err(OptionError::InvalidInput(_))
        ));
    }
}
