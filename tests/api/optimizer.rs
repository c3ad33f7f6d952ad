//! `predict/realtime_portfolio_optimizer` over HTTP, as frontends call it.

use crate::helpers::{embedded_closes, spawn_app};
use serde_json::{json, Value};

const URL: &str = "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer";

fn last(symbol: &str, n: usize) -> Vec<f64> {
    let closes = embedded_closes(symbol);
    closes[closes.len() - n..].to_vec()
}

fn weight_sum(body: &Value) -> f64 {
    body["allocation"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w.as_f64().unwrap())
        .sum()
}

#[tokio::test]
async fn the_contract_example_returns_every_field() {
    let app = spawn_app().await;
    // The contract's example names GOOGL, which the caller sends prices for.
    let body = json!({
        "price_data": {"AAPL": last("AAPL", 120), "MSFT": last("MSFT", 120), "GOOGL": last("XOM", 120)},
        "params": {"method": "max_sharpe"}
    });
    let (status, resp) = app.post(URL, &body).await;
    assert_eq!(status, 200, "{resp}");
    for field in [
        "allocation",
        "risk_contributions",
        "expected_return",
        "expected_volatility",
        "sharpe_ratio",
        "optimization_method",
        "rebalance_needed",
        "transaction_costs",
        "diversification_ratio",
        "model_name",
        "timestamp",
        "data_source",
        "annualized",
        "solver",
        "observations",
    ] {
        assert!(!resp[field].is_null(), "missing {field}: {resp}");
    }
    assert_eq!(resp["optimization_method"], "max_sharpe");
    assert_eq!(resp["data_source"], "request");
    assert_eq!(resp["observations"], 119);
    assert!((weight_sum(&resp) - 1.0).abs() < 1e-9);
    let rc: f64 = resp["risk_contributions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((rc - 1.0).abs() < 1e-9);
    assert_eq!(resp["rebalance_needed"], true);
    assert_eq!(resp["solver"]["name"], "clarabel");
}

#[tokio::test]
async fn symbols_without_prices_use_a_year_of_embedded_history() {
    let app = spawn_app().await;
    let symbols = [
        "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT",
        "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
    ];
    let (status, resp) = app
        .post(
            URL,
            &json!({"params": {"symbols": symbols, "method": "min_variance"}}),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["data_source"], "local");
    assert_eq!(resp["as_of"], "2022-12-28");
    assert_eq!(resp["observations"], 251);
    // The true minimum on this window, not the 1.29 % of equal weights.
    let vol = resp["expected_volatility"].as_f64().unwrap();
    assert!((vol - 0.00936).abs() < 1e-5, "{vol}");
    assert!((resp["allocation"]["JNJ"].as_f64().unwrap() - 0.370).abs() < 1e-3);
}

#[tokio::test]
async fn every_method_and_current_weights_work() {
    let app = spawn_app().await;
    let prices = json!({"KO": last("KO", 60), "PEP": last("PEP", 60), "JNJ": last("JNJ", 60)});
    for method in ["equal_weight", "min_variance", "max_sharpe", "risk_parity"] {
        let (status, resp) = app
            .post(
                URL,
                &json!({"price_data": prices, "params": {"method": method}}),
            )
            .await;
        assert_eq!(status, 200, "{method}: {resp}");
        assert!((weight_sum(&resp) - 1.0).abs() < 1e-9, "{method}");
    }
    let body = json!({"price_data": prices, "params": {
        "method": "equal_weight",
        "current_weights": {"KO": 0.34, "PEP": 0.33, "JNJ": 0.33},
        "cost_rate": 0.002
    }});
    let (_, resp) = app.post(URL, &body).await;
    assert_eq!(resp["rebalance_needed"], false);
    let turnover = (0.34 - 1.0 / 3.0) + 2.0 * (1.0 / 3.0 - 0.33);
    assert!((resp["transaction_costs"].as_f64().unwrap() - 0.002 * turnover).abs() < 1e-12);
}

#[tokio::test]
async fn garch_covariance_over_http() {
    let app = spawn_app().await;
    let body = json!({"params": {"symbols": ["AAPL", "JNJ", "KO", "XOM"], "method": "min_variance", "covariance": "garch"}});
    let (status, resp) = app.post(URL, &body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["covariance"], "garch");
    assert!((weight_sum(&resp) - 1.0).abs() < 1e-9);
    let short = json!({
        "price_data": {"AAPL": last("AAPL", 60), "KO": last("KO", 60)},
        "params": {"covariance": "garch"}
    });
    let (status, resp) = app.post(URL, &short).await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (422, Some("insufficient_data"))
    );
    assert!(
        resp["error"].as_str().is_some_and(|e| e.contains("100")),
        "{resp}"
    );
    let flat = json!({
        "price_data": {"AAPL": last("AAPL", 120), "KO": vec![42.0; 120]},
        "params": {"covariance": "garch"}
    });
    let (status, resp) = app.post(URL, &flat).await;
    assert_eq!((status, resp["code"].as_str()), (422, Some("model_failed")));
    assert!(
        resp["error"].as_str().is_some_and(|e| e.contains("KO")),
        "{resp}"
    );
}

#[tokio::test]
async fn bad_optimiser_inputs_get_4xx_naming_the_problem() {
    let app = spawn_app().await;
    let two = json!({"A": last("KO", 30), "B": last("PEP", 30)});
    let cases = [
        (
            json!({"price_data": {"A": last("KO", 30)}}),
            400,
            "at least 2 assets",
        ),
        (
            json!({"price_data": {"A": [1.0, 2.0, 3.0], "B": [1.0, 2.0, 3.0]}}),
            422,
            "need at least 4 prices",
        ),
        (
            json!({"price_data": {"A": [1.0, 0.0, 3.0], "B": [1.0, 2.0, 3.0]}}),
            400,
            "price_data.A[1]",
        ),
        (
            json!({"price_data": two, "params": {"method": "magic"}}),
            400,
            "unknown method \"magic\"",
        ),
        (
            json!({"price_data": two, "params": {"weight_bounds": [0.6, 1.0]}}),
            400,
            "weight_bounds",
        ),
        (
            json!({"price_data": two, "params": {"risk_budget": {"A": 0.9, "B": 0.9}, "method": "risk_parity"}}),
            400,
            "risk_budget",
        ),
        (
            json!({"price_data": two, "params": {"covariance": "guess"}}),
            400,
            "covariance",
        ),
        (
            json!({"price_data": two, "params": {"risk_free_rate": "high"}}),
            400,
            "params.risk_free_rate",
        ),
        (
            json!({"price_data": two, "params": {"symbols": ["A", "A"]}}),
            400,
            "more than once",
        ),
        (json!({"price_data": [1.0, 2.0]}), 400, "object"),
        (
            json!({"price_data": two, "params": {"risk_free_rate": 1.0}}),
            422,
            "risk-free",
        ),
    ];
    for (body, status, expected) in cases {
        let (got, resp) = app.post(URL, &body).await;
        assert_eq!(got, status, "{expected}: {resp}");
        let error = resp["error"].as_str().unwrap();
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }
}

#[tokio::test]
async fn batch_runs_the_optimiser_with_other_models() {
    let app = spawn_app().await;
    let body = json!({
        "models": ["realtime_portfolio_optimizer", "adaptive_ensemble"],
        "price_data": {"KO": last("KO", 60), "PEP": last("PEP", 60)},
        "params": {"method": "risk_parity"}
    });
    let (status, resp) = app
        .post("/api/enhanced_ml_models/batch_predict", &body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        resp["results"]["realtime_portfolio_optimizer"]["optimization_method"],
        "risk_parity"
    );
    // The ensemble reads one series, so the optimiser's object is refused
    // for it alone.
    assert_eq!(
        resp["results"]["adaptive_ensemble"]["code"],
        "invalid_input"
    );
}
