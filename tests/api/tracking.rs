//! Live tracking: forecasts served for a symbol are scored when the data
//! layer delivers their target close (here: a user price file that grows).

use std::sync::Arc;

use crate::helpers::{spawn_app_in, wavy_prices};
use serde_json::json;

#[tokio::test]
async fn forecasts_are_scored_when_the_next_close_arrives() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let prices = dir.path().join("prices");
    std::fs::create_dir_all(&prices).unwrap();
    let file = prices.join("ZZZ.csv");
    let (text, _) = wavy_prices(200);
    std::fs::write(&file, &text).unwrap();
    let app = spawn_app_in(
        Arc::clone(&dir),
        |s| {
            s.data.rescan_secs = 0;
            s.market.history_cache_ttl_secs = 0;
        },
        tickcast::models::served(),
    )
    .await;

    let mut forecasts = Vec::new();
    for model in ["lstm_predictor", "adaptive_ensemble"] {
        let (status, body) = app
            .post(
                &format!("/api/enhanced_ml_models/predict/{model}"),
                &json!({"symbol": "ZZZ"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["as_of"], "2024-07-18");
        forecasts.push((
            model,
            body["predicted_return"].as_f64().unwrap(),
            body["current_price"].as_f64().unwrap(),
        ));
    }
    // Asked again on the same data: tracked once.
    app.post(
        "/api/enhanced_ml_models/predict/lstm_predictor",
        &json!({"symbol": "ZZZ"}),
    )
    .await;
    let (status, perf) = app.get("/api/enhanced_ml_models/performance").await;
    assert_eq!(status, 200);
    assert_eq!(perf["pending"], 2, "{perf}");
    assert_eq!(perf["performance"]["lstm_predictor"]["scored"], 0);
    assert_eq!(perf["performance"]["lstm_predictor"]["pending"], 1);
    let weights = &perf["ensemble_weights"]["current"];
    assert_eq!(weights["symbol"], "ZZZ");
    let total: f64 = weights["weights"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{weights}");

    // The next day's close arrives in the file: 1 % above the last close.
    let next = forecasts[0].2 * 1.01;
    let grown = format!("{text}2024-07-19,{next},{next},{next},{next},{next},1000\n");
    std::fs::write(&file, grown).unwrap();
    // Any fetch of ZZZ through the data layer scores what is due.
    let (status, _) = app
        .post(
            "/api/catalog/past_month_return",
            &json!({"symbols": ["ZZZ"]}),
        )
        .await;
    assert_eq!(status, 200);

    let (_, perf) = app.get("/api/enhanced_ml_models/performance").await;
    assert_eq!(perf["pending"], 0, "{perf}");
    for (model, predicted, current) in forecasts {
        let p = &perf["performance"][model];
        let actual = next / current - 1.0;
        assert_eq!(p["scored"], 1, "{model}: {p}");
        let hit = if predicted * actual > 0.0 { 1.0 } else { 0.0 };
        assert_eq!(p["hit_rate"].as_f64(), Some(hit), "{model}");
        let mae = p["mae"].as_f64().unwrap();
        assert!(
            (mae - (predicted - actual).abs()).abs() < 1e-12,
            "{model}: {p}"
        );
        assert_eq!(p["latest"][0]["target_date"], "2024-07-19");
        assert!(p["last_updated"].is_string());
    }

    let metrics = app.get_text("/metrics").await;
    for line in [
        "tickcast_predictions_scored_total{model=\"lstm_predictor\"}",
        "tickcast_prediction_hit_rate{model=\"adaptive_ensemble\"}",
        "tickcast_ensemble_weight{learner=\"random_forest\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from /metrics");
    }
}
