//! tickcast's allocations against reference solvers (PyPortfolioOpt,
//! scipy, scikit-learn; see tests/reference/make_fixtures.py) on windows of
//! the embedded dataset, plus the optimality conditions checked directly.

use ndarray::{Array1, Array2};
use serde_json::Value;
use tickcast::models::portfolio::{
    estimate, optimize, AssetSeries, CovarianceEstimator, Method, OptimizeParams,
};

struct Fixture {
    assets: Vec<AssetSeries>,
    bounds: (f64, f64),
    covariance: CovarianceEstimator,
    expected: Value,
}

fn fixture(name: &str) -> Fixture {
    let path = format!(
        "{}/tests/reference/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let assets = v["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let symbol = s.as_str().unwrap().to_string();
            let closes = v["closes"][&symbol]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect();
            AssetSeries { symbol, closes }
        })
        .collect();
    let b = &v["params"]["weight_bounds"];
    Fixture {
        assets,
        bounds: (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()),
        covariance: v["params"]["covariance"].as_str().unwrap().parse().unwrap(),
        expected: v["expected"].clone(),
    }
}

fn solve(f: &Fixture, method: Method) -> Vec<f64> {
    let params = OptimizeParams {
        method,
        covariance: f.covariance,
        weight_bounds: Some(f.bounds),
        ..Default::default()
    };
    let report = optimize(&f.assets, &params).unwrap_or_else(|e| panic!("{method}: {e}"));
    assert!((report.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    report.weights
}

fn reference(f: &Fixture, method: &str) -> Vec<f64> {
    f.expected[method]["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn estimates(f: &Fixture) -> (Array1<f64>, Array2<f64>) {
    let series: Vec<&[f64]> = f.assets.iter().map(|a| a.closes.as_slice()).collect();
    let len = series.iter().map(|s| s.len()).min().unwrap();
    let r = estimate::simple_returns(&series, len);
    let cov = match f.covariance {
        CovarianceEstimator::Sample => estimate::sample_covariance(&r),
        CovarianceEstimator::LedoitWolf => estimate::ledoit_wolf(&r).0,
        CovarianceEstimator::Garch => {
            let vols: Vec<f64> = series
                .iter()
                .map(|s| estimate::garch_volatility(&s[s.len() - len..]).unwrap())
                .collect();
            estimate::scaled_correlation(&r, &vols)
        }
    };
    (estimate::mean(&r), cov)
}

/// Min variance: the marginal variance (Σw)_i is one common λ on assets
/// strictly inside their bounds, at least λ at the lower bound, at most λ at the upper.
fn assert_min_variance_kkt(f: &Fixture, w: &[f64]) {
    let (_, cov) = estimates(f);
    let g = cov.dot(&Array1::from(w.to_vec()));
    let (lo, hi) = f.bounds;
    let free: Vec<usize> = (0..w.len())
        .filter(|&i| w[i] > lo + 1e-6 && w[i] < hi - 1e-6)
        .collect();
    let lambda = free.iter().map(|&i| g[i]).sum::<f64>() / free.len() as f64;
    for i in 0..w.len() {
        let rel = (g[i] - lambda) / lambda;
        if free.contains(&i) {
            assert!(rel.abs() < 1e-5, "asset {i}: (Σw)_i off λ by {rel:e}");
        } else if w[i] <= lo + 1e-6 {
            assert!(
                rel > -1e-5,
                "asset {i} at its lower bound but cheaper than λ ({rel:e})"
            );
        } else {
            assert!(
                rel < 1e-5,
                "asset {i} at its upper bound but dearer than λ ({rel:e})"
            );
        }
    }
}

/// Max Sharpe (no bounds): on held assets Σw is proportional to μ - r_f,
/// and no excluded asset would raise the Sharpe ratio.
fn assert_max_sharpe_kkt(f: &Fixture, w: &[f64]) {
    let (mu, cov) = estimates(f);
    let wa = Array1::from(w.to_vec());
    let g = cov.dot(&wa);
    let sharpe = wa.dot(&mu) / wa.dot(&g).sqrt();
    let var = wa.dot(&g);
    let ret = wa.dot(&mu);
    // Gradient of the Sharpe ratio is ∝ μ - (ret/var) Σw: zero on held assets, <= 0 elsewhere.
    for i in 0..w.len() {
        let grad = mu[i] - ret / var * g[i];
        let scale = mu.iter().map(|m| m.abs()).fold(0.0, f64::max);
        if w[i] > 1e-6 {
            assert!(
                grad.abs() / scale < 1e-5,
                "asset {i}: Sharpe gradient {grad:e} on a held asset"
            );
        } else {
            assert!(
                grad / scale < 1e-5,
                "asset {i}: adding it would raise the Sharpe ratio"
            );
        }
    }
    assert!(sharpe > 0.0);
}

fn assert_equal_risk(f: &Fixture, w: &[f64]) {
    let (_, cov) = estimates(f);
    let wa = Array1::from(w.to_vec());
    let g = cov.dot(&wa);
    let var = wa.dot(&g);
    let target = 1.0 / w.len() as f64;
    for i in 0..w.len() {
        let rc = w[i] * g[i] / var;
        assert!(
            ((rc - target) / target).abs() < 1e-6,
            "asset {i}: risk share {rc} vs {target}"
        );
    }
}

const ALL: [&str; 5] = [
    "sp20_last252",
    "sp5_last60",
    "near_singular",
    "sp20_last252_bounded",
    "sp20_last60_ledoit_wolf",
];

/// Solves every named fixture with `method`, compares with the reference
/// weights (max |Δw| < 1e-4) and runs `check` on the weights.
fn matches_references(names: &[&str], method: Method, check: impl Fn(&Fixture, &[f64])) {
    for name in names {
        let f = fixture(name);
        let w = solve(&f, method);
        let d = max_abs_diff(&w, &reference(&f, &method.to_string()));
        assert!(d < 1e-4, "{name} {method}: max |Δw| = {d:e}");
        check(&f, &w);
    }
}

#[test]
fn min_variance_matches_the_references() {
    matches_references(&ALL, Method::MinVariance, assert_min_variance_kkt);
}

#[test]
fn max_sharpe_matches_the_references() {
    matches_references(&ALL, Method::MaxSharpe, |f, w| {
        if f.bounds == (0.0, 1.0) {
            assert_max_sharpe_kkt(f, w);
        }
    });
}

#[test]
fn risk_parity_matches_the_references_and_equalises_risk() {
    // Risk parity takes no bounds, so the bounded fixture has no reference.
    let unbounded: Vec<&str> = ALL
        .into_iter()
        .filter(|n| !n.ends_with("bounded"))
        .collect();
    matches_references(&unbounded, Method::RiskParity, assert_equal_risk);
}

#[test]
fn ledoit_wolf_matches_scikit_learn() {
    let f = fixture("sp20_last60_ledoit_wolf");
    let (_, cov) = estimates(&f);
    let reference = f.expected["covariance"].as_array().unwrap();
    for (i, row) in reference.iter().enumerate() {
        for (j, v) in row.as_array().unwrap().iter().enumerate() {
            let v = v.as_f64().unwrap();
            assert!(
                (cov[[i, j]] - v).abs() < 1e-12 + 1e-9 * v.abs(),
                "[{i},{j}] {} vs {v}",
                cov[[i, j]]
            );
        }
    }
}

#[test]
fn min_variance_reaches_the_true_minimum_not_equal_weights() {
    // The legacy solver stopped at 1/n here (1.29 % daily volatility).
    let f = fixture("sp20_last252");
    let params = OptimizeParams {
        method: Method::MinVariance,
        ..Default::default()
    };
    let report = optimize(&f.assets, &params).unwrap();
    assert!(
        (report.expected_volatility - 0.00936).abs() < 0.00001,
        "{}",
        report.expected_volatility
    );
    let equal = optimize(
        &f.assets,
        &OptimizeParams {
            method: Method::EqualWeight,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        (equal.expected_volatility - 0.0129).abs() < 0.0001,
        "{}",
        equal.expected_volatility
    );
    let max_sharpe = optimize(&f.assets, &OptimizeParams::default()).unwrap();
    assert!(
        (max_sharpe.sharpe_ratio - 0.165).abs() < 0.001,
        "{}",
        max_sharpe.sharpe_ratio
    );
}
