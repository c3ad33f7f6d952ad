use crate::helpers::{embedded_closes, spawn_app, spawn_app_with, test_registry, MeanDrift};
use serde_json::json;

const PREDICT: &str = "/api/enhanced_ml_models/predict/mean_drift";

#[tokio::test]
async fn list_shows_only_served_models() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/enhanced_ml_models/list").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["enhanced_models"],
        json!([
            "adaptive_ensemble",
            "garch_volatility",
            "lstm_predictor",
            "realtime_portfolio_optimizer",
            "transformer_predictor"
        ])
    );
    assert_eq!(body["total_models"], 5);
    assert_eq!(
        body["metadata"]["lstm_predictor"]["input_type"],
        "price_series"
    );
    let meta = &body["metadata"]["realtime_portfolio_optimizer"];
    assert_eq!(
        (meta["input_type"].as_str(), meta["output_type"].as_str()),
        (Some("multi_series"), Some("allocation"))
    );

    let app = spawn_app_with(|_| {}, test_registry()).await;
    let (_, body) = app.get("/api/enhanced_ml_models/list").await;
    assert_eq!(
        body["enhanced_models"],
        json!(["mean_drift", "price_weighted"])
    );
    let meta = &body["metadata"]["mean_drift"];
    assert_eq!(meta["input_type"], "price_series");
    assert_eq!(meta["output_type"], "price_prediction");
    assert_eq!(
        body["metadata"]["price_weighted"]["input_type"],
        "multi_series"
    );
}

#[tokio::test]
async fn unknown_models_get_404() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/predict/crystal_ball",
            &json!({"price_data": [1.0, 2.0]}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "unknown_model");
}

#[tokio::test]
async fn predicts_from_request_prices() {
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let prices = [100.0, 101.0, 102.0, 101.0, 103.0, 104.0, 105.0];
    let (status, body) = app.post(PREDICT, &json!({ "price_data": prices })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["model_name"], MeanDrift::NAME);
    assert_eq!(body["model_type"], MeanDrift::NAME);
    assert_eq!(body["data_source"], "request");
    assert_eq!(body["current_price"], 105.0);
    assert!(body["timestamp"].is_string());
    assert!(body.get("as_of").is_none());
}

#[tokio::test]
async fn predicts_by_symbol_from_the_data_layer_with_the_models_lookback() {
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let (status, body) = app
        .post(
            PREDICT,
            &json!({"symbol": "AAPL", "params": {"lookback": 40}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data_source"], "local");
    assert_eq!(body["as_of"], "2022-12-28");
    assert_eq!(body["symbol"], "AAPL");
    assert_eq!(body["observations"], 40);
    assert_eq!(
        body["current_price"],
        *embedded_closes("AAPL").last().unwrap()
    );
}

#[tokio::test]
async fn bad_prices_are_refused_naming_the_element() {
    let app = spawn_app_with(|c| c.limits.max_prices_per_series = 1000, test_registry()).await;
    let cases = [
        (json!({"price_data": [1.0, 2.0, 0.0]}), "price_data[2]"),
        (json!({"price_data": [1.0, -2.0]}), "price_data[1]"),
        (json!({"price_data": [1.0, "2"]}), "price_data[1]"),
        (json!({"price_data": []}), "price_data is empty"),
        (
            json!({"price_data": "1,2,3"}),
            "price_data must be an array",
        ),
        (json!({"price_data": vec![1.0; 1001]}), "at most 1000"),
        (
            json!({"price_data": [1.0, 2.0], "params": [1]}),
            "params must be a JSON object",
        ),
        (json!({}), "price_data"),
        (json!({"symbol": "AA PL"}), "invalid symbol"),
    ];
    for (body, expected) in cases {
        let (status, resp) = app.post(PREDICT, &body).await;
        assert_eq!(status, 400, "{body} -> {resp}");
        assert_eq!(resp["success"], false);
        let error = resp["error"].as_str().unwrap();
        assert!(
            error.contains(expected),
            "{body}: {error:?} lacks {expected:?}"
        );
    }
    // Non-finite numbers are not JSON at all.
    let (status, resp) = app
        .post_raw(
            PREDICT,
            "application/json",
            br#"{"price_data": [1.0, NaN]}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (400, Some("invalid_input"))
    );
    let (status, _) = app
        .post_raw(
            PREDICT,
            "application/json",
            br#"{"price_data": [1.0, 1e999]}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn too_short_series_and_unknown_symbols_are_explained() {
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let (status, body) = app.post(PREDICT, &json!({"price_data": [1.0, 2.0]})).await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "insufficient_data");
    assert!(body["error"].as_str().unwrap().contains("needs at least 6"));
    let (status, body) = app.post(PREDICT, &json!({"symbol": "NOSUCH"})).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "unknown_symbol");
}

#[tokio::test]
async fn multi_series_models_take_an_object_or_symbols() {
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let url = "/api/enhanced_ml_models/predict/price_weighted";
    let (status, body) = app
        .post(
            url,
            &json!({"price_data": {"A": [1.0, 3.0], "B": [2.0, 1.0, 1.0]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allocation"], json!({"A": 0.75, "B": 0.25}));

    let (status, body) = app
        .post(url, &json!({"params": {"symbols": ["AAPL", "MSFT"]}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data_source"], "local");
    assert_eq!(body["lengths"], json!({"AAPL": 10, "MSFT": 10}));

    let (status, body) = app
        .post(
            url,
            &json!({"price_data": {"A": [1.0]}, "params": {"symbols": ["A", "Z"]}}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("\"Z\""));
    let (status, _) = app.post(url, &json!({"price_data": [1.0, 2.0]})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn batch_runs_each_model_and_isolates_failures() {
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/batch_predict",
            &json!({"models": ["mean_drift", "no_such_model"], "symbol": "MSFT"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["models_run"], json!(["mean_drift", "no_such_model"]));
    assert_eq!(body["symbol"], "MSFT");
    assert_eq!(body["results"]["mean_drift"]["success"], true);
    assert_eq!(body["results"]["no_such_model"]["code"], "unknown_model");
    assert!(body["results"]["no_such_model"]["error"].is_string());
    assert!(body["batch_timestamp"].is_string());

    for empty in [json!({}), json!({"models": []})] {
        let (status, body) = app
            .post("/api/enhanced_ml_models/batch_predict", &empty)
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "No models specified");
    }
}

#[tokio::test]
async fn a_panicking_model_is_a_500_and_the_server_stays_up() {
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let (status, body) = app
        .post(
            PREDICT,
            &json!({"price_data": [1.0, 2.0], "params": {"panic": true}}),
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "internal_error");
    assert_eq!(app.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn slow_requests_time_out_with_a_json_body() {
    let app = spawn_app_with(|c| c.server.request_timeout_secs = 1, test_registry()).await;
    let body = json!({"price_data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "params": {"sleep_ms": 1500}});
    let (status, resp) = app.post(PREDICT, &body).await;
    assert_eq!(status, 503);
    assert_eq!(resp["code"], "timeout");
}
