//! `POST /api/catalog/backtest`: walk-forward backtests of served predictors.

use crate::helpers::{embedded_closes, spawn_app};
use serde_json::{json, Value};

fn compound(months: &Value) -> f64 {
    months
        .as_array()
        .unwrap()
        .iter()
        .fold(1.0, |e, m| e * (1.0 + m["return"].as_f64().unwrap()))
        - 1.0
}

#[tokio::test]
async fn every_served_predictor_backtests_a_year_of_aapl_with_the_legacy_fields() {
    let app = spawn_app().await;
    let closes = embedded_closes("AAPL");
    // Buy-and-hold over the last 252 returns of the embedded data.
    let held = closes[closes.len() - 1] / closes[closes.len() - 253] - 1.0;
    for model in [
        "lstm_predictor",
        "enhanced_transformer_predictor",
        "adaptive_ensemble",
    ] {
        let request = json!({"model_id": model, "stock_symbol": "AAPL", "period": "1y"});
        let (status, body) = app.post("/api/catalog/backtest", &request).await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(
            (body["success"].as_bool(), body["model_id"].as_str()),
            (Some(true), Some(model))
        );
        assert_eq!(
            (body["stock_symbol"].as_str(), body["period"].as_str()),
            (Some("AAPL"), Some("1y"))
        );
        let r = &body["backtest_result"];
        for field in [
            "total_return",
            "annual_volatility",
            "sharpe_ratio",
            "max_drawdown",
        ] {
            assert!(r[field].is_f64(), "{model}: {field} in {r}");
        }
        assert!(r["max_drawdown"].as_f64().unwrap() >= 0.0);
        assert_eq!(r["days"], 252);
        assert_eq!(r["forecasts"], 252);
        assert_eq!(r["refits"], 12, "252 days refitted every 21");
        let months = r["monthly_returns"].as_array().unwrap();
        assert!((12..=13).contains(&months.len()), "{months:?}");
        let month = months[0]["date"].as_str().unwrap();
        assert!(month.len() == 7 && month.as_bytes()[4] == b'-', "{month}");
        // The months compound to the totals; the benchmark is buy-and-hold.
        assert!(
            (compound(&r["monthly_returns"]) - r["total_return"].as_f64().unwrap()).abs() < 1e-9
        );
        assert!(
            (compound(&r["benchmark_monthly_returns"]) - held).abs() < 1e-9,
            "{model}"
        );
        assert!((r["benchmark_total_return"].as_f64().unwrap() - held).abs() < 1e-9);
        assert_eq!(r["cached"], false);

        // The same request on the same data is answered from the cache.
        let (status, again) = app.post("/api/catalog/backtest", &request).await;
        assert_eq!(status, 200);
        assert_eq!(again["backtest_result"]["cached"], true);
        assert_eq!(again["backtest_result"]["total_return"], r["total_return"]);
    }
}

#[tokio::test]
async fn trading_rules_come_from_params() {
    let app = spawn_app().await;
    let request = |params: Value| json!({"model_id": "lstm_predictor", "stock_symbol": "MSFT", "period": "3mo", "params": params});
    let (_, free) = app
        .post(
            "/api/catalog/backtest",
            &request(json!({"transaction_cost_bps": 0})),
        )
        .await;
    let (_, costly) = app
        .post(
            "/api/catalog/backtest",
            &request(json!({"transaction_cost_bps": 50})),
        )
        .await;
    let (free, costly) = (&free["backtest_result"], &costly["backtest_result"]);
    assert_eq!(free["trades"], costly["trades"], "same signal");
    let trades = free["trades"].as_u64().unwrap();
    if trades > 0 {
        assert!(costly["total_return"].as_f64() < free["total_return"].as_f64());
    }
    let (status, body) = app
        .post(
            "/api/catalog/backtest",
            &request(json!({"allow_short": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["backtest_result"]["plan"]["allow_short"], true);
}

#[tokio::test]
async fn a_volatility_target_sizes_the_signal_and_is_answered_in_the_plan() {
    let app = spawn_app().await;
    let request = |params: Value| json!({"model_id": "lstm_predictor", "stock_symbol": "MSFT", "period": "6mo", "params": params});
    let (status, unit) = app.post("/api/catalog/backtest", &request(json!({}))).await;
    assert_eq!(status, 200, "{unit}");
    assert!(unit["backtest_result"]["plan"]
        .get("target_volatility")
        .is_none());
    let (status, sized) = app
        .post(
            "/api/catalog/backtest",
            &request(json!({"target_volatility": 0.1})),
        )
        .await;
    assert_eq!(status, 200, "{sized}");
    let (unit, sized) = (&unit["backtest_result"], &sized["backtest_result"]);
    assert_eq!(sized["plan"]["target_volatility"], 0.1);
    assert!(
        sized["strategy"]
            .as_str()
            .is_some_and(|s| s.contains("sized to 0.1 annualised volatility")),
        "{sized}"
    );
    // The same forecasts traded, sized: the days and forecasts agree.
    assert_eq!(sized["days"], unit["days"]);
    assert_eq!(sized["forecasts"], unit["forecasts"]);
    if unit["trades"].as_u64() > Some(0) {
        assert_ne!(sized["turnover"], unit["turnover"]);
    }
    // The optimiser's allocation backtest does not take it.
    let (status, body) = app
        .post(
            "/api/catalog/backtest",
            &json!({"model_id": "realtime_portfolio_optimizer", "stock_symbols": ["AAPL", "KO"], "params": {"target_volatility": 0.1}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_input"))
    );
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("target_volatility")),
        "{body}"
    );
}

#[tokio::test]
async fn bad_backtest_requests_get_clear_errors() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"stock_symbol": "AAPL", "period": "1y"}),
            400,
            "invalid_input",
        ),
        (
            json!({"model_id": "lstm_predictor", "period": "1y"}),
            400,
            "invalid_input",
        ),
        (
            json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "5y"}),
            400,
            "invalid_input",
        ),
        (
            json!({"model_id": "crystal_ball", "stock_symbol": "AAPL", "period": "1y"}),
            404,
            "unknown_model",
        ),
        (
            json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL,MSFT", "period": "1y"}),
            400,
            "invalid_input",
        ),
        (
            json!({"model_id": "realtime_portfolio_optimizer", "stock_symbols": ["AAPL", "aapl"]}),
            400,
            "invalid_input",
        ),
        (
            json!({"model_id": "lstm_predictor", "stock_symbol": "NOPE", "period": "1y"}),
            404,
            "unknown_symbol",
        ),
        (
            json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "params": {"retrain_every": 0}}),
            400,
            "invalid_input",
        ),
        (
            json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "params": {"horizon": 5}}),
            400,
            "invalid_input",
        ),
        (
            json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "params": {"target_volatility": 0}}),
            400,
            "invalid_input",
        ),
        (
            json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "params": [1]}),
            400,
            "invalid_input",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = app.post("/api/catalog/backtest", &request).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{request}: {body}"
        );
        assert_eq!(body["success"], false);
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
}
