//! The pretrained LSTM and Transformer, served through predict and batch_predict.

use serde_json::{json, Value};

use crate::helpers::{embedded_closes, spawn_app};

const LSTM: &str = "/api/enhanced_ml_models/predict/lstm_predictor";
const TRANSFORMER: &str = "/api/enhanced_ml_models/predict/transformer_predictor";

fn last(symbol: &str, n: usize) -> Vec<f64> {
    let closes = embedded_closes(symbol);
    closes[closes.len() - n..].to_vec()
}

/// Every field the contract and the model card promise.
fn assert_forecast(body: &Value, model: &str, sequence_length: u64) {
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["model_name"], model);
    assert_eq!(body["model_type"], model);
    assert_eq!(body["prediction_horizon"], "1_period");
    assert_eq!(body["sequence_length"], sequence_length);
    let current = body["current_price"].as_f64().unwrap();
    let ret = body["predicted_return"].as_f64().unwrap();
    let price = body["predicted_price"].as_f64().unwrap();
    assert!((price - current * (1.0 + ret)).abs() < 1e-9 * current);
    assert!(ret.abs() < 0.2, "a daily forecast of {ret}");
    let confidence = body["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    assert!(body["model_version"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{model}-")));
    let v = &body["validation"];
    assert_eq!(v["period"], "2019-01-01..2022-12-31");
    assert!(v["samples"].as_u64().unwrap() > 10_000);
    for key in ["directional_accuracy", "rmse", "naive_rmse", "mae"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(body["timestamp"].is_string());
}

#[tokio::test]
async fn both_networks_forecast_a_named_symbol_from_the_data_layer() {
    let app = spawn_app().await;
    let (status, body) = app.post(LSTM, &json!({"symbol": "AAPL"})).await;
    assert_eq!(status, 200, "{body}");
    assert_forecast(&body, "lstm_predictor", 20);
    assert_eq!(body["data_source"], "local");
    assert_eq!(body["current_price"], 125.674);

    let (status, body) = app.post(TRANSFORMER, &json!({"symbol": "AAPL"})).await;
    assert_eq!(status, 200, "{body}");
    assert_forecast(&body, "transformer_predictor", 30);
    assert_eq!(body["attention_heads"], 4);
}

#[tokio::test]
async fn forecasts_follow_the_prices_sent_and_repeat_exactly() {
    let app = spawn_app().await;
    let aapl = last("AAPL", 250);
    let xom = last("XOM", 250);
    for path in [LSTM, TRANSFORMER] {
        let (status, a) = app.post(path, &json!({ "price_data": aapl })).await;
        assert_eq!(status, 200, "{a}");
        assert_eq!(a["data_source"], "request");
        assert_eq!(a["current_price"], *aapl.last().unwrap());
        let (_, again) = app.post(path, &json!({ "price_data": aapl })).await;
        assert_eq!(a["predicted_return"], again["predicted_return"]);
        let (_, b) = app.post(path, &json!({ "price_data": xom })).await;
        assert_ne!(a["predicted_return"], b["predicted_return"], "{path}");
    }
}

#[tokio::test]
async fn batch_predict_runs_both_networks_together() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/batch_predict",
            &json!({
                "models": ["lstm_predictor", "transformer_predictor"],
                "price_data": last("MSFT", 100)
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_forecast(&body["results"]["lstm_predictor"], "lstm_predictor", 20);
    assert_forecast(
        &body["results"]["transformer_predictor"],
        "transformer_predictor",
        30,
    );
}

#[tokio::test]
async fn short_or_bad_input_gets_a_4xx_naming_the_problem() {
    let app = spawn_app().await;
    let (status, body) = app.post(LSTM, &json!({"price_data": last("KO", 20)})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("insufficient_data"))
    );
    assert!(
        body["error"].as_str().unwrap().contains("21 prices"),
        "{body}"
    );
    let (status, body) = app
        .post(TRANSFORMER, &json!({"price_data": last("KO", 30)}))
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("31 prices"),
        "{body}"
    );

    let mut prices = last("KO", 40);
    for bad in [json!(0.0), json!(-3.0), json!("NaN"), json!(null)] {
        let mut sent: Vec<Value> = prices.iter().map(|p| json!(p)).collect();
        sent[7] = bad.clone();
        let (status, body) = app.post(LSTM, &json!({ "price_data": sent })).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    prices.truncate(40);
    for (params, expected) in [
        (json!({"sequence_length": 0}), "sequence_length"),
        (json!({"sequence_length": 50}), "sequence_length"),
        (json!({"sequence_length": "long"}), "sequence_length"),
        (json!({"prediction_horizon": 5}), "prediction_horizon"),
    ] {
        let (status, body) = app
            .post(LSTM, &json!({ "price_data": prices, "params": params }))
            .await;
        assert_eq!(status, 400, "{params}: {body}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{body}");
    }
}

#[tokio::test]
async fn a_series_fit_trains_once_and_is_then_served_from_the_cache() {
    let app = spawn_app().await;
    let body = json!({
        "price_data": last("JNJ", 200),
        "params": {"fit": "series", "epochs": 3}
    });
    let (status, first) = app.post(LSTM, &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["fit"]["mode"], "series");
    assert_eq!(first["fit"]["cached"], false);
    assert_eq!(first["fit"]["fine_tuned_from_pretrained"], true);
    assert!(first["fit"]["epochs_run"].as_u64().unwrap() >= 1);
    assert!(first["model_version"]
        .as_str()
        .unwrap()
        .starts_with("lstm_predictor-series-"));
    assert_eq!(first["validation"]["samples"], 36);
    let (_, again) = app.post(LSTM, &body).await;
    assert_eq!(again["fit"]["cached"], true);
    assert_eq!(again["predicted_return"], first["predicted_return"]);

    // Another window length trains a fresh network; a longer horizon is allowed.
    let (status, other) = app
        .post(
            TRANSFORMER,
            &json!({
                "price_data": last("JNJ", 200),
                "params": {"fit": "series", "epochs": 2, "sequence_length": 10, "prediction_horizon": 5}
            }),
        )
        .await;
    assert_eq!(status, 200, "{other}");
    assert_eq!(other["fit"]["fine_tuned_from_pretrained"], false);
    assert_eq!(other["prediction_horizon"], "5_period");
    assert_eq!(other["sequence_length"], 10);
}

#[tokio::test]
async fn absurd_fit_params_and_short_series_are_refused() {
    let app = spawn_app().await;
    for (params, expected) in [
        (json!({"epochs": 1_000_000_000u64}), "epochs"),
        (
            json!({"fit": "series", "learning_rate": 5}),
            "learning_rate",
        ),
        (json!({"fit": "everything"}), "params.fit"),
        (
            json!({"fit": "series", "sequence_length": 0}),
            "sequence_length",
        ),
    ] {
        let (status, body) = app
            .post(
                LSTM,
                &json!({ "price_data": last("PG", 300), "params": params }),
            )
            .await;
        assert_eq!(status, 400, "{params}: {body}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{body}");
    }
    let (status, body) = app
        .post(
            LSTM,
            &json!({ "price_data": last("PG", 60), "params": {"epochs": 2} }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("insufficient_data"))
    );
    assert!(
        body["error"].as_str().unwrap().contains("71 prices"),
        "{body}"
    );
}

#[tokio::test]
async fn fits_beyond_the_concurrency_and_queue_get_busy_with_retry_after() {
    // The served networks fit under the settings' policy.
    let app = crate::helpers::spawn_app_with(
        |s| {
            s.models.fit_concurrency = 1;
            s.models.fit_queue = 0;
            s.models.fit_time_budget_secs = 3;
            s.models.fit_cache_capacity = 8;
        },
        tickcast::models::served(),
    )
    .await;
    let fit = |symbol: &str| json!({ "price_data": last(symbol, 1000), "params": {"fit": "series", "epochs": 200} });
    let ko = fit("KO");
    let slow = app.post(LSTM, &ko);
    let refused = async {
        // Let the first fit take the only slot.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let resp = app
            .client
            .post(app.url(LSTM))
            .json(&fit("PEP"))
            .send()
            .await
            .unwrap();
        let retry = resp.headers().get("retry-after").cloned();
        (crate::helpers::read(resp).await, retry)
    };
    let ((status, first), ((busy_status, busy), retry)) = tokio::join!(slow, refused);
    assert_eq!(status, 200, "{first}");
    assert_eq!((busy_status, busy["code"].as_str()), (503, Some("busy")));
    assert!(retry.is_some());
}
