//! tickcast's option engines against QuantLib 1.44 and a textbook CRR tree
//! written out in the fixture script (tests/reference/options_fixtures.py).

use serde_json::Value;
use tickcast::models::options::{
    self, baw, binomial, black_scholes, implied, Kind, Method, OptionError, OptionInputs,
    Sensitivities, Style,
};

fn fixture(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/reference/fixtures/options_{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file["cases"].as_array().unwrap().clone()
}

fn f(case: &Value, key: &str) -> f64 {
    case[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {case}"))
}

fn inputs(case: &Value) -> OptionInputs {
    let kind = match case["kind"].as_str().unwrap() {
        "call" => Kind::Call,
        _ => Kind::Put,
    };
    OptionInputs::new(
        kind,
        f(case, "spot"),
        f(case, "strike"),
        f(case, "expiry_years"),
        f(case, "volatility"),
        f(case, "rate"),
        f(case, "dividend_yield"),
    )
    .unwrap()
}

/// `|a − b|` against `b`'s size, with `floor` as the smallest size: below
/// it the figure is the difference of two numbers each near `floor` or
/// larger, and carries no more digits than they do.
fn error(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / b.abs().max(floor)
}

/// The figures of a valuation by name, for tables of comparisons.
fn figures(s: &Sensitivities) -> [(&'static str, f64); 6] {
    [
        ("price", s.price),
        ("delta", s.delta),
        ("gamma", s.gamma),
        ("vega", s.vega),
        ("theta", s.theta),
        ("rho", s.rho),
    ]
}

/// Worst error per figure over a set of cases.
#[derive(Default)]
struct Worst(Vec<(&'static str, f64, String)>);

impl Worst {
    fn see(&mut self, name: &'static str, e: f64, case: &Value) {
        match self.0.iter_mut().find(|(n, ..)| *n == name) {
            Some(w) if e > w.1 => *w = (name, e, case.to_string()),
            Some(_) => {}
            None => self.0.push((name, e, case.to_string())),
        }
    }

    fn assert_below(&self, tolerance: f64, what: &str) {
        for (name, e, case) in &self.0 {
            eprintln!("{what}: worst {name} error {e:.2e}");
            assert!(*e <= tolerance, "{what}: {name} off by {e:e} on {case}");
        }
    }
}

/// Figures are judged against at least this share of the spot: a theta
/// of 5e-4 is the difference of terms the size of the spot, each rounded
/// to about 1e-14 of it, so below 1e-3 of the spot the agreement is
/// 1e-13 of the spot (1e-11 on a spot of 100), which is what rounding
/// leaves to either library.
const EUROPEAN_FLOOR_SHARE: f64 = 1e-3;

#[test]
fn european_prices_and_greeks_equal_quantlib_to_1e_10() {
    let cases = fixture("european");
    assert!(cases.len() >= 500);
    let mut worst = Worst::default();
    for case in &cases {
        let ours = black_scholes::value(&inputs(case));
        let floor = EUROPEAN_FLOOR_SHARE * f(case, "spot");
        for (name, x) in figures(&ours) {
            worst.see(name, error(x, f(case, name), floor), case);
        }
        // The engine on its own returns the same price.
        assert_eq!(black_scholes::price(&inputs(case)), ours.price);
    }
    worst.assert_below(1e-10, "European vs QuantLib");
}

#[test]
fn american_trees_equal_the_textbook_tree_to_1e_6() {
    let mut worst = Worst::default();
    for case in &fixture("american") {
        let steps = case["steps"].as_u64().unwrap() as usize;
        let ours = binomial::value(&inputs(case), Style::American, steps).unwrap();
        for (name, x) in figures(&ours) {
            worst.see(name, (x - f(&case["crr"], name)).abs(), case);
        }
    }
    worst.assert_below(1e-6, "CRR vs the textbook tree");
}

#[test]
fn american_trees_converge_to_quantlibs_finite_differences() {
    // The tree's error shrinks as 1/steps: at the default 500 steps it is
    // within 2e-3 of the price (1.6e-3 worst on this grid), at 2 000 steps
    // within 1e-3.
    let mut at_500 = Worst::default();
    let mut at_2000 = Worst::default();
    for case in &fixture("american") {
        let o = inputs(case);
        let fd = f(case, "fd");
        // Against at least 1 % of the spot: far out of the money both
        // engines price a few hundredths and QuantLib's grid gives 0.
        let floor = 0.01 * o.spot;
        at_500.see("price", error(f(&case["crr"], "price"), fd, floor), case);
        if o.expiry_years >= 1.0 {
            let p = binomial::price(&o, Style::American, 2000).unwrap();
            at_2000.see("price", error(p, fd, floor), case);
        }
    }
    at_500.assert_below(2e-3, "CRR 500 steps vs QuantLib FD 1000x1000");
    at_2000.assert_below(1e-3, "CRR 2000 steps vs QuantLib FD 1000x1000");
}

#[test]
fn baw_equals_quantlibs_engine() {
    let mut prices = Worst::default();
    let mut greeks = Worst::default();
    for case in &fixture("american") {
        let o = inputs(case);
        let reference = &case["baw"];
        prices.see(
            "price",
            error(baw::price(&o), f(reference, "price"), 1e-2),
            case,
        );
        let ours = baw::value(&o);
        for (name, x) in figures(&ours) {
            if name != "price" && name != "theta" {
                greeks.see(name, error(x, f(reference, name), 1e-2), case);
            }
        }
    }
    prices.assert_below(1e-8, "BAW vs QuantLib");
    greeks.assert_below(1e-6, "BAW greeks vs QuantLib bumped alike");
}

/// A volatility change of 1e-10 moves the price by more than a few units
/// of its rounding: only then can a price give its volatility back to
/// 1e-10 (a deep in-the-money option's price changes by less than its
/// last digit).
fn resolves_1e_10(vega: f64, price: f64) -> bool {
    vega * 1e-10 > 4.0 * f64::EPSILON * price
}

#[test]
fn implied_volatility_round_trips_wherever_the_price_carries_it() {
    let (mut round_trips, mut coarse, mut refused) = (0, 0, 0);
    let (mut worst, mut from_quantlib) = (Worst::default(), Worst::default());
    for case in &fixture("european") {
        let o = inputs(case);
        let vol = o.volatility;
        let solve =
            |p: f64| implied::implied_volatility(&o, p, Style::European, Method::Analytic, 0);
        let ours = black_scholes::value(&o);
        if resolves_1e_10(ours.vega, ours.price) {
            let iv = solve(ours.price).unwrap_or_else(|e| panic!("{e} on {case}"));
            worst.see("implied_volatility", (iv - vol).abs(), case);
            // QuantLib's own digits thin out on prices far below the spot.
            if f(case, "price") > EUROPEAN_FLOOR_SHARE * o.spot {
                let ql = solve(f(case, "price")).unwrap();
                from_quantlib.see("implied_volatility", (ql - vol).abs(), case);
            }
            round_trips += 1;
        } else if let Ok(iv) = solve(ours.price) {
            // Coarser than 1e-10: any answer must still reprice the option
            // to the price's own resolution.
            let repriced = black_scholes::price(&o.with_volatility(iv));
            assert!(
                (repriced - ours.price).abs() <= 1e-12 * ours.price.max(1e-300),
                "{case}"
            );
            coarse += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!(
        "{round_trips} round trips to 1e-10, {coarse} coarser prices repriced, {refused} prices without volatility refused"
    );
    assert!(round_trips >= 900);
    worst.assert_below(1e-10, "implied volatility of our prices");
    from_quantlib.assert_below(1e-10, "implied volatility of QuantLib's prices");
}

#[test]
fn american_implied_volatility_round_trips_through_baw_and_the_tree() {
    let mut worst = Worst::default();
    let mut refused = 0;
    for case in fixture("american").iter().step_by(7) {
        let o = inputs(case);
        for method in [Method::Baw, Method::Binomial] {
            let at = |vol: f64| {
                options::price(&o.with_volatility(vol), Style::American, method, 200).unwrap()
            };
            let p = at(o.volatility);
            let vega = (at(o.volatility + 1e-4) - at(o.volatility - 1e-4)) / 2e-4;
            match implied::implied_volatility(&o, p, Style::American, method, 200) {
                Ok(iv) if resolves_1e_10(vega, p) => {
                    worst.see("implied_volatility", (iv - o.volatility).abs(), case)
                }
                Ok(iv) => assert!((at(iv) - p).abs() <= 1e-12 * p, "{case}"),
                // Deep in the money the price is all exercise value.
                Err(OptionError::NoAnswer(_)) => {
                    assert!((at(o.volatility + 1e-3) - p).abs() < 1e-9, "{case}");
                    refused += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    eprintln!("{refused} American prices without volatility refused");
    worst.assert_below(1e-10, "American implied volatility");
}
