//! The adaptive ensemble, fitted to the request's series and served through
//! predict and batch_predict.

use serde_json::{json, Value};

use crate::helpers::{embedded_closes, spawn_app};

const ENSEMBLE: &str = "/api/enhanced_ml_models/predict/adaptive_ensemble";
const LEARNERS: [&str; 5] = [
    "extra_trees",
    "gradient_boosting",
    "mlp",
    "random_forest",
    "svr",
];

fn last(symbol: &str, n: usize) -> Vec<f64> {
    let closes = embedded_closes(symbol);
    closes[closes.len() - n..].to_vec()
}

/// Every contract field, with weights summing to 1 over the five learners.
fn assert_blend(body: &Value) {
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["model_type"], "adaptive_ensemble");
    assert_eq!(body["prediction_horizon"], "1_period");
    let current = body["current_price"].as_f64().unwrap();
    let ret = body["predicted_return"].as_f64().unwrap();
    let price = body["predicted_price"].as_f64().unwrap();
    assert!((price - current * (1.0 + ret)).abs() < 1e-9 * current);
    assert!(ret.abs() < 0.2, "a daily forecast of {ret}");
    for key in ["confidence", "ensemble_agreement"] {
        let v = body[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    let weights = body["model_weights"].as_object().unwrap();
    let names: Vec<&str> = weights.keys().map(String::as_str).collect();
    assert_eq!(names, LEARNERS);
    let total: f64 = weights.values().map(|w| w.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "weights sum to {total}");
    let individual = body["individual_predictions"].as_object().unwrap();
    let failed = body["models_failed"].as_array().unwrap();
    for name in LEARNERS {
        let listed_failed = failed.iter().any(|f| f["name"] == name);
        assert!(
            individual.contains_key(name) || listed_failed,
            "{name} neither forecast nor failed: {body}"
        );
    }
    for used in body["models_used"].as_array().unwrap() {
        assert!(weights[used.as_str().unwrap()].as_f64().unwrap() > 0.0);
    }
    assert_eq!(body["validation"]["samples"], 50);
}

#[tokio::test]
async fn the_ensemble_forecasts_250_real_closes_with_every_contract_field() {
    let app = spawn_app().await;
    let aapl = last("AAPL", 250);
    // Fits are cached process-wide; a seed no other test uses keeps this
    // request's first fit its own.
    let request = json!({ "price_data": aapl, "params": {"seed": 20_261_125} });
    let (status, body) = app.post(ENSEMBLE, &request).await;
    assert_eq!(status, 200, "{body}");
    assert_blend(&body);
    assert_eq!(body["data_source"], "request");
    assert_eq!(body["fit"]["cached"], false);
    assert_eq!(body["models_failed"], json!([]), "all five fit real closes");

    // The same input and seed: the same answer, now from the cache.
    let (_, again) = app.post(ENSEMBLE, &request).await;
    assert_eq!(again["fit"]["cached"], true);
    for key in [
        "predicted_return",
        "model_weights",
        "individual_predictions",
        "confidence",
    ] {
        assert_eq!(body[key], again[key], "{key}");
    }
    // Another series gives another forecast.
    let (_, xom) = app
        .post(ENSEMBLE, &json!({ "price_data": last("XOM", 250) }))
        .await;
    assert_ne!(body["predicted_return"], xom["predicted_return"]);
}

#[tokio::test]
async fn a_named_symbol_is_fetched_and_batches_mix_the_ensemble_with_networks() {
    let app = spawn_app().await;
    let (status, body) = app.post(ENSEMBLE, &json!({"symbol": "MSFT"})).await;
    assert_eq!(status, 200, "{body}");
    assert_blend(&body);
    assert_eq!(body["data_source"], "local");

    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/batch_predict",
            &json!({
                "models": ["adaptive_ensemble", "lstm_predictor"],
                "price_data": last("KO", 200),
                "params": {"adaptation_window": 30}
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let blend = &body["results"]["adaptive_ensemble"];
    assert_blend_window(blend, 30);
    assert!(body["results"]["lstm_predictor"]["predicted_return"].is_number());
}

fn assert_blend_window(body: &Value, window: u64) {
    assert_eq!(body["adaptation_window"], window, "{body}");
    assert_eq!(body["validation"]["samples"], window);
}

#[tokio::test]
async fn too_few_closes_or_bad_params_get_a_4xx_naming_the_problem() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(ENSEMBLE, &json!({"price_data": last("KO", 100)}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("insufficient_data"))
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at least 121 prices"),
        "{body}"
    );

    let prices = last("KO", 200);
    let mut sent: Vec<Value> = prices.iter().map(|p| json!(p)).collect();
    sent[9] = json!(-1.0);
    let (status, _) = app.post(ENSEMBLE, &json!({ "price_data": sent })).await;
    assert_eq!(status, 400);
    for params in [
        json!({"adaptation_window": 2}),
        json!({"adaptation_window": "wide"}),
        json!({"horizon": 99}),
        json!({"seed": "x"}),
    ] {
        let (status, body) = app
            .post(ENSEMBLE, &json!({ "price_data": prices, "params": params }))
            .await;
        assert_eq!(status, 400, "{params}: {body}");
    }
}
