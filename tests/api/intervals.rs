//! Prediction intervals on every price forecast: split conformal on
//! held-out forecasts, scaled by the volatility at the forecast's close.

use serde_json::{json, Value};

use crate::helpers::{embedded_closes, spawn_app};

const FORECASTERS: [&str; 3] = [
    "lstm_predictor",
    "transformer_predictor",
    "adaptive_ensemble",
];

fn url(model: &str) -> String {
    format!("/api/enhanced_ml_models/predict/{model}")
}

/// The interval's bounds, checked against the forecast they belong to.
fn bounds(body: &Value) -> (f64, f64) {
    let i = &body["prediction_interval"];
    let (lo, hi) = (
        i["lower_return"].as_f64().unwrap(),
        i["upper_return"].as_f64().unwrap(),
    );
    let current = body["current_price"].as_f64().unwrap();
    let predicted = body["predicted_return"].as_f64().unwrap();
    assert!(lo < predicted && predicted < hi, "{body}");
    // Symmetric around the forecast (no cut at -100 % here).
    assert!(((hi - predicted) - (predicted - lo)).abs() < 1e-12);
    assert!((i["lower_price"].as_f64().unwrap() - current * (1.0 + lo)).abs() < 1e-9 * current);
    assert!((i["upper_price"].as_f64().unwrap() - current * (1.0 + hi)).abs() < 1e-9 * current);
    (lo, hi)
}

#[tokio::test]
async fn every_forecaster_answers_with_a_calibrated_interval_that_follows_the_level() {
    let app = spawn_app().await;
    for model in FORECASTERS {
        let (status, at_90) = app.post(&url(model), &json!({"symbol": "AAPL"})).await;
        assert_eq!(status, 200, "{at_90}");
        let i = &at_90["prediction_interval"];
        assert_eq!(i["level"], 0.9, "{model}");
        assert!(
            i["calibration_points"].as_u64().unwrap() >= 50,
            "{model}: {i}"
        );
        assert!(i["method"].as_str().unwrap().contains("conformal"));
        let (lo90, hi90) = bounds(&at_90);
        // A daily 90 % interval of a large stock: wider than 1 %, narrower than 30 %.
        assert!(
            hi90 - lo90 > 0.01 && hi90 - lo90 < 0.3,
            "{model}: {lo90}..{hi90}"
        );

        let half = json!({"symbol": "AAPL", "params": {"interval_level": 0.5}});
        let (status, at_50) = app.post(&url(model), &half).await;
        assert_eq!(status, 200, "{at_50}");
        let (lo50, hi50) = bounds(&at_50);
        assert!(lo90 < lo50 && hi50 < hi90, "{model}: 50 % inside 90 %");
        // The point forecast does not move with the level.
        assert_eq!(at_50["predicted_return"], at_90["predicted_return"]);

        // Same request, same interval.
        let (_, again) = app.post(&url(model), &json!({"symbol": "AAPL"})).await;
        assert_eq!(again["prediction_interval"], at_90["prediction_interval"]);
    }
}

#[tokio::test]
async fn a_turbulent_stretch_gets_a_wider_interval() {
    let app = spawn_app().await;
    let closes = embedded_closes("MSFT");
    let calm = closes[closes.len() - 400..].to_vec();
    // The same closes, with the last month's moves tripled.
    let mut wild = calm.clone();
    for t in wild.len() - 21..wild.len() {
        let r = calm[t] / calm[t - 1] - 1.0;
        wild[t] = wild[t - 1] * (1.0 + 3.0 * r);
    }
    let width = |body: &Value| {
        let (lo, hi) = bounds(body);
        hi - lo
    };
    let (_, a) = app
        .post(&url("lstm_predictor"), &json!({"price_data": calm}))
        .await;
    let (_, b) = app
        .post(&url("lstm_predictor"), &json!({"price_data": wild}))
        .await;
    assert!(
        width(&b) > 2.0 * width(&a),
        "{} vs {}",
        width(&b),
        width(&a)
    );
}

#[tokio::test]
async fn too_few_held_out_forecasts_give_an_unbounded_interval_not_a_made_up_one() {
    let app = spawn_app().await;
    let closes = embedded_closes("KO");
    let short = closes[closes.len() - 25..].to_vec();
    let (status, body) = app
        .post(&url("lstm_predictor"), &json!({"price_data": short}))
        .await;
    assert_eq!(status, 200, "{body}");
    let i = &body["prediction_interval"];
    assert_eq!(i["calibration_points"], 4, "{i}");
    assert!(
        i["lower_return"].is_null() && i["upper_price"].is_null(),
        "{i}"
    );
    assert!(i["method"].as_str().unwrap().contains("needs 9"), "{i}");
}

#[tokio::test]
async fn the_level_must_lie_strictly_between_0_and_1() {
    let app = spawn_app().await;
    for model in FORECASTERS {
        for bad in [json!(0), json!(1), json!(1.5), json!("high")] {
            let body = json!({"symbol": "AAPL", "params": {"interval_level": bad}});
            let (status, answer) = app.post(&url(model), &body).await;
            assert_eq!(status, 400, "{model} {bad}: {answer}");
            let error = answer["error"].as_str().unwrap();
            assert!(
                error.starts_with("params.interval_level must be"),
                "{error}"
            );
        }
    }
}
