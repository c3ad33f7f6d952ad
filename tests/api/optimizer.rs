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
            json!({"price_data": {"A": [1.0, "2", 3.0], "B": [1.0, 2.0, 3.0]}}),
            400,
            "price_data.A[1] is \"2\", not a number",
        ),
        (
            json!({"price_data": {"A": [1.0, 2.0, 3.0], "B": {"close": 1.0}}}),
            400,
            "price_data.B must be an array of prices",
        ),
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

const TWENTY: [&str; 20] = [
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT",
    "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
];

#[tokio::test]
async fn min_cvar_reports_its_tail_risk() {
    let app = spawn_app().await;
    let (status, resp) = app
        .post(
            URL,
            &json!({"params": {"symbols": TWENTY, "method": "min_cvar"}}),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["optimization_method"], "min_cvar");
    assert_eq!(resp["observations"], 251);
    assert!((weight_sum(&resp) - 1.0).abs() < 1e-9);
    // The year to 2022-12-28, as tests/reference/fixtures/cvar_sp20_last252.json.
    let tail = &resp["tail_risk"];
    assert_eq!(tail["level"], 0.95);
    let cvar = tail["cvar"].as_f64().unwrap();
    assert!((cvar - 0.017_655_486_9).abs() < 1e-9, "{tail}");
    let var = tail["value_at_risk"].as_f64().unwrap();
    assert!(var > 0.0 && var < cvar, "{tail}");
    assert!((resp["allocation"]["JNJ"].as_f64().unwrap() - 0.4534).abs() < 1e-3);
    assert!(resp.get("frontier").is_none());

    // A higher level looks further into the tail.
    let (status, resp99) = app
        .post(
            URL,
            &json!({"params": {"symbols": TWENTY, "method": "min_cvar", "cvar_level": 0.99, "weight_bounds": [0.0, 0.5]}}),
        )
        .await;
    assert_eq!(status, 200, "{resp99}");
    assert_eq!(resp99["tail_risk"]["level"], 0.99);
    assert!(resp99["tail_risk"]["cvar"].as_f64().unwrap() > cvar);
    assert!(resp99["allocation"]
        .as_object()
        .unwrap()
        .values()
        .all(|w| w.as_f64().unwrap() <= 0.5 + 1e-9));
}

#[tokio::test]
async fn efficient_frontier_answers_points_for_plotting() {
    let app = spawn_app().await;
    let five = ["AAPL", "JNJ", "KO", "MSFT", "XOM"];
    let (status, resp) = app
        .post(
            URL,
            &json!({"params": {"symbols": five, "method": "efficient_frontier", "points": 7}}),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["optimization_method"], "efficient_frontier");
    let frontier = resp["frontier"].as_array().unwrap();
    assert_eq!(frontier.len(), 7);
    let number = |v: &Value, k: &str| v[k].as_f64().unwrap();
    for pair in frontier.windows(2) {
        assert!(number(&pair[1], "expected_return") > number(&pair[0], "expected_return"));
        assert!(number(&pair[1], "volatility") >= number(&pair[0], "volatility"));
    }
    for p in frontier {
        let weights = p["weights"].as_object().unwrap();
        assert_eq!(weights.len(), 5);
        let total: f64 = weights.values().map(|w| w.as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let sharpe = number(p, "expected_return") / number(p, "volatility");
        assert!((number(p, "sharpe") - sharpe).abs() < 1e-12);
    }
    // The first point is the min-variance portfolio; the top-level
    // allocation is the point of highest Sharpe ratio.
    let (_, min_var) = app
        .post(
            URL,
            &json!({"params": {"symbols": five, "method": "min_variance"}}),
        )
        .await;
    assert!(
        (number(&frontier[0], "volatility") - number(&min_var, "expected_volatility")).abs()
            < 1e-12
    );
    let best = frontier
        .iter()
        .max_by(|a, b| number(a, "sharpe").total_cmp(&number(b, "sharpe")))
        .unwrap();
    assert_eq!(resp["allocation"], best["weights"]);
    assert!((number(&resp, "sharpe_ratio") - number(best, "sharpe")).abs() < 1e-12);
    assert!(resp.get("tail_risk").is_none());

    // 20 points by default.
    let (status, resp) = app
        .post(
            URL,
            &json!({"params": {"symbols": five, "method": "efficient_frontier", "weight_bounds": [0.1, 0.4]}}),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["frontier"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn cvar_and_frontier_params_are_checked() {
    let app = spawn_app().await;
    let two = json!({"A": last("KO", 30), "B": last("PEP", 30)});
    let cases = [
        (
            json!({"method": "min_cvar", "cvar_level": 1.0}),
            "params.cvar_level must be a number from 0 to 1, both exclusive",
        ),
        (
            json!({"method": "min_cvar", "cvar_level": 0}),
            "params.cvar_level",
        ),
        (
            json!({"method": "min_cvar", "cvar_level": "high"}),
            "params.cvar_level",
        ),
        (
            json!({"method": "max_sharpe", "cvar_level": 0.9}),
            "params.cvar_level applies to method min_cvar only, not max_sharpe",
        ),
        (
            json!({"cvar_level": 0.9}),
            "params.cvar_level applies to method min_cvar only",
        ),
        (
            json!({"method": "efficient_frontier", "points": 1}),
            "params.points must be an integer from 2 to 200",
        ),
        (
            json!({"method": "efficient_frontier", "points": 201}),
            "params.points",
        ),
        (
            json!({"method": "efficient_frontier", "points": 2.5}),
            "params.points",
        ),
        (
            json!({"method": "min_cvar", "points": 5}),
            "params.points applies to method efficient_frontier only, not min_cvar",
        ),
        (
            json!({"method": "min_cvar", "weight_bounds": [0.6, 1.0]}),
            "weight_bounds",
        ),
        (
            json!({"method": "efficient_frontier", "weight_bounds": [0.0, 0.4]}),
            "weight_bounds",
        ),
    ];
    for (params, expected) in cases {
        let (status, resp) = app
            .post(URL, &json!({"price_data": two, "params": params}))
            .await;
        assert_eq!(status, 400, "{params}: {resp}");
        assert_eq!(resp["success"], false);
        assert_eq!(resp["code"], "invalid_input", "{resp}");
        let error = resp["error"].as_str().unwrap();
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }
    // Too few prices for the covariance behind the reported volatility.
    let short = json!({"A": [1.0, 1.1, 1.2], "B": [2.0, 2.1, 2.0]});
    for method in ["min_cvar", "efficient_frontier"] {
        let (status, resp) = app
            .post(
                URL,
                &json!({"price_data": short, "params": {"method": method}}),
            )
            .await;
        assert_eq!(
            (status, resp["code"].as_str()),
            (422, Some("insufficient_data")),
            "{resp}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_tail_risk_and_the_frontier() {
    let app = spawn_app().await;
    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let schemas = &spec["components"]["schemas"];
    let allocation = &schemas["OptimisedAllocation"]["properties"];
    for field in ["tail_risk", "frontier"] {
        assert!(allocation.get(field).is_some(), "{field}: {allocation}");
    }
    for field in ["expected_return", "volatility", "sharpe", "weights"] {
        assert!(
            schemas["FrontierPortfolio"]["properties"]
                .get(field)
                .is_some(),
            "{field}"
        );
    }
    for field in ["level", "value_at_risk", "cvar"] {
        assert!(
            schemas["TailRisk"]["properties"].get(field).is_some(),
            "{field}"
        );
    }
}
