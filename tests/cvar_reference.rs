//! Minimum-CVaR portfolios and efficient frontiers against skfolio, scipy's
//! HiGHS and PyPortfolioOpt (see tests/reference/cvar_fixtures.py) on the
//! 20 embedded stocks' last 252 closes, plus optimality checked directly.

use ndarray::{Array1, Array2};
use serde_json::Value;
use tickcast::models::portfolio::{cvar, estimate, optimize, AssetSeries, Method, OptimizeParams};

fn json(name: &str) -> Value {
    let path = format!(
        "{}/tests/reference/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The input of every case here: tests/reference/fixtures/sp20_last252.json.
fn assets() -> Vec<AssetSeries> {
    let v = json("sp20_last252");
    v["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let symbol = s.as_str().unwrap().to_string();
            let closes = numbers(&v["closes"][&symbol]);
            AssetSeries { symbol, closes }
        })
        .collect()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn returns(assets: &[AssetSeries]) -> Array2<f64> {
    let series: Vec<&[f64]> = assets.iter().map(|a| a.closes.as_slice()).collect();
    estimate::simple_returns(&series, series[0].len())
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn bounds(v: &Value) -> (f64, f64) {
    let b = numbers(&v["params"]["weight_bounds"]);
    (b[0], b[1])
}

const CVAR_CASES: [&str; 3] = [
    "cvar_sp20_last252",
    "cvar_sp20_last252_99",
    "cvar_sp20_last252_bounded",
];

#[test]
fn min_cvar_matches_skfolio_and_highs() {
    let assets = assets();
    for name in CVAR_CASES {
        let f = json(name);
        let e = &f["expected"];
        // The reference is the LP's only answer: over the optimal face no
        // weight moves by more than this, and both solvers agree.
        assert!(e["max_weight_range_on_optimal_face"].as_f64().unwrap() < 1e-5);
        assert!(
            e["max_abs_weight_difference_skfolio_highs"]
                .as_f64()
                .unwrap()
                < 1e-9
        );
        let level = f["params"]["cvar_level"].as_f64().unwrap();
        let params = OptimizeParams {
            method: Method::MinCvar,
            cvar_level: level,
            weight_bounds: Some(bounds(&f)),
            ..Default::default()
        };
        let r = optimize(&assets, &params).unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = max_abs_diff(&r.weights, &numbers(&e["weights"]));
        // The bar is 1e-4; the two interior-point solves agree far closer.
        assert!(d < 1e-9, "{name}: max |Δw| = {d:e}");
        let risk = r.tail_risk.expect("min_cvar reports its tail risk");
        assert_eq!(risk.level, level);
        let reference = e["cvar"].as_f64().unwrap();
        assert!(
            (risk.cvar - reference).abs() < 1e-12,
            "{name}: CVaR {} vs {reference}",
            risk.cvar
        );
        let var = e["value_at_risk"].as_f64().unwrap();
        assert!(
            (risk.var - var).abs() < 1e-12,
            "{name}: VaR {} vs {var}",
            risk.var
        );
        assert!(r.solver.status.contains("Solved"), "{}", r.solver.status);
        assert_eq!(r.method, Method::MinCvar);
    }
}

#[test]
fn min_cvar_measures_the_reference_weights_as_skfolio_does() {
    // tail_risk alone, on skfolio's weights: the same VaR and CVaR.
    let r = returns(&assets());
    for name in CVAR_CASES {
        let f = json(name);
        let e = &f["expected"];
        let level = f["params"]["cvar_level"].as_f64().unwrap();
        let risk = cvar::tail_risk(&cvar::losses(&r, &numbers(&e["weights"])), level);
        assert!(
            (risk.cvar - e["cvar"].as_f64().unwrap()).abs() < 1e-14,
            "{name}"
        );
        assert!(
            (risk.var - e["value_at_risk"].as_f64().unwrap()).abs() < 1e-14,
            "{name}"
        );
    }
}

#[test]
fn min_cvar_beats_every_other_method_on_cvar() {
    // Its CVaR is no more than any other allocation's, the one-stock
    // corners included, and its volatility no less than min variance's.
    let assets = assets();
    let r = returns(&assets);
    let p = |method| OptimizeParams {
        method,
        ..Default::default()
    };
    let best = optimize(&assets, &p(Method::MinCvar)).unwrap();
    let best_cvar = best.tail_risk.unwrap().cvar;
    for method in [
        Method::EqualWeight,
        Method::MinVariance,
        Method::MaxSharpe,
        Method::RiskParity,
    ] {
        let other = optimize(&assets, &p(method)).unwrap();
        let c = cvar::tail_risk(&cvar::losses(&r, &other.weights), 0.95).cvar;
        assert!(best_cvar <= c + 1e-12, "{method}: {c} < {best_cvar}");
        assert!(other.tail_risk.is_none() && other.frontier.is_none());
    }
    for i in 0..assets.len() {
        let mut corner = vec![0.0; assets.len()];
        corner[i] = 1.0;
        let c = cvar::tail_risk(&cvar::losses(&r, &corner), 0.95).cvar;
        assert!(best_cvar <= c + 1e-12, "{}", assets[i].symbol);
    }
    let min_var = optimize(&assets, &p(Method::MinVariance)).unwrap();
    assert!(best.expected_volatility >= min_var.expected_volatility - 1e-12);
}

#[test]
fn efficient_frontier_matches_pypfopt() {
    let assets = assets();
    for name in ["frontier_sp20_last252", "frontier_sp20_last252_bounded"] {
        let f = json(name);
        let points = f["params"]["points"].as_u64().unwrap() as usize;
        let params = OptimizeParams {
            method: Method::EfficientFrontier,
            frontier_points: points,
            weight_bounds: Some(bounds(&f)),
            ..Default::default()
        };
        let r = optimize(&assets, &params).unwrap_or_else(|e| panic!("{name}: {e}"));
        let frontier = r.frontier.as_ref().expect("a frontier");
        let expected = f["expected"]["points"].as_array().unwrap();
        assert_eq!(frontier.len(), points);
        assert_eq!(expected.len(), points);
        for (k, (got, want)) in frontier.iter().zip(expected).enumerate() {
            let d = max_abs_diff(&got.weights, &numbers(&want["weights"]));
            assert!(d < 1e-5, "{name} point {k}: max |Δw| = {d:e}");
            let vol = want["volatility"].as_f64().unwrap();
            assert!(
                (got.volatility - vol).abs() < 1e-10,
                "{name} point {k}: volatility {} vs {vol}",
                got.volatility
            );
            let ret = want["expected_return"].as_f64().unwrap();
            assert!((got.expected_return - ret).abs() < 1e-9, "{name} point {k}");
        }
        let top = f["expected"]["max_return"].as_f64().unwrap();
        let last = frontier.last().unwrap();
        assert!((last.expected_return - top).abs() < 1e-9 * top.abs().max(1e-4));
        // The answer's own weights are the frontier's best Sharpe point.
        let best = frontier
            .iter()
            .max_by(|a, b| a.sharpe.total_cmp(&b.sharpe))
            .unwrap();
        assert_eq!(r.weights, best.weights);
        assert!((r.sharpe_ratio - best.sharpe).abs() < 1e-12);
    }
}

#[test]
fn efficient_frontier_points_are_min_variance_for_their_return() {
    // No frontier point is beaten by a blend of its neighbours: the
    // frontier's volatility is convex in return, and each point has no
    // more variance than any other point of at least its return.
    let assets = assets();
    let r = optimize(
        &assets,
        &OptimizeParams {
            method: Method::EfficientFrontier,
            ..Default::default()
        },
    )
    .unwrap();
    let f = r.frontier.unwrap();
    assert_eq!(f.len(), 20);
    let cov = estimate::sample_covariance(&returns(&assets));
    let var = |w: &[f64]| {
        let w = Array1::from(w.to_vec());
        w.dot(&cov.dot(&w))
    };
    for t in f.windows(3) {
        let blend: Vec<f64> = t[0]
            .weights
            .iter()
            .zip(&t[2].weights)
            .map(|(a, b)| 0.5 * (a + b))
            .collect();
        assert!(var(&t[1].weights) <= var(&blend) + 1e-12);
    }
    for (i, p) in f.iter().enumerate() {
        for q in &f[i + 1..] {
            assert!(q.volatility >= p.volatility - 1e-12);
        }
    }
}
