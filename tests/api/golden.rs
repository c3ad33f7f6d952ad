//! A fixed list of requests over every route, good and bad input, each
//! model, seeded; their answers (minus timestamps, timings and cache
//! flags) must stay what `tests/golden/responses.json` holds. Run with
//! `RECORD_GOLDEN_ANSWERS=1` to write the file anew after a deliberate
//! change of the answers.

use serde_json::{json, Map, Value};

use crate::helpers::{embedded_closes, spawn_app, TestApp};

/// Keys whose values depend on when or how fast a request ran, or on what
/// other tests left in the process-wide fit caches.
const VOLATILE: [&str; 17] = [
    "at",
    "timestamp",
    "batch_timestamp",
    "made_at",
    "scored_at",
    "seconds",
    "training_seconds",
    "cached",
    "stale_age_secs",
    "performance_metrics",
    "cache_stats",
    "history_cache",
    "quote_cache",
    "last_error",
    "last_error_at",
    "last_updated",
    "x-request-id",
];

fn normalise(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k, normalise(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalise).collect()),
        other => other,
    }
}

enum Call {
    Get(&'static str),
    Post(&'static str, Value),
    Raw(&'static str, &'static str, &'static [u8]),
    Method(&'static str, &'static str),
}

fn cases() -> Vec<(&'static str, Call)> {
    use Call::{Get, Method, Post, Raw};
    let aapl = embedded_closes("AAPL");
    let last_100: Vec<f64> = aapl[aapl.len() - 100..].to_vec();
    let five = ["AAPL", "JNJ", "KO", "MSFT", "XOM"];
    let optimiser = "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer";
    let prices: Map<String, Value> = ["AAPL", "KO", "XOM"]
        .iter()
        .map(|s| {
            let c = embedded_closes(s);
            (s.to_string(), json!(c[c.len() - 60..]))
        })
        .collect();
    vec![
        ("healthz", Get("/healthz")),
        ("readyz", Get("/readyz")),
        ("provider_health", Get("/api/production_api/health")),
        (
            "quotes",
            Post(
                "/api/production_api/portfolio_data",
                json!({"symbols": ["AAPL", " msft", "RELIANCE.NS"]}),
            ),
        ),
        (
            "quotes_none",
            Post("/api/production_api/portfolio_data", json!({})),
        ),
        ("model_list", Get("/api/enhanced_ml_models/list")),
        (
            "lstm_by_symbol",
            Post(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                json!({"symbol": "AAPL"}),
            ),
        ),
        (
            "lstm_by_prices",
            Post(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                json!({"price_data": last_100}),
            ),
        ),
        (
            "lstm_fitted",
            Post(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                json!({"symbol": "AAPL", "params": {"fit": "series", "epochs": 2, "seed": 3}}),
            ),
        ),
        (
            "lstm_fitted_horizon",
            Post(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                json!({"price_data": last_100, "params": {"epochs": 1, "prediction_horizon": "2_period", "sequence_length": 10}}),
            ),
        ),
        (
            "transformer_by_symbol",
            Post(
                "/api/enhanced_ml_models/predict/transformer_predictor",
                json!({"symbol": "MSFT"}),
            ),
        ),
        (
            "ensemble_by_symbol",
            Post(
                "/api/enhanced_ml_models/predict/adaptive_ensemble",
                json!({"symbol": "KO"}),
            ),
        ),
        (
            "ensemble_params",
            Post(
                "/api/enhanced_ml_models/predict/adaptive_ensemble",
                json!({"symbol": "JNJ", "params": {"adaptation_window": 30, "prediction_horizon": "2_period", "seed": 11}}),
            ),
        ),
        (
            "optimiser_min_variance",
            Post(
                optimiser,
                json!({"params": {"symbols": five, "method": "min_variance"}}),
            ),
        ),
        (
            "optimiser_max_sharpe",
            Post(optimiser, json!({"params": {"symbols": five}})),
        ),
        (
            "optimiser_risk_parity",
            Post(
                optimiser,
                json!({"params": {"symbols": five, "method": "risk_parity", "covariance": "ledoit_wolf"}}),
            ),
        ),
        (
            "optimiser_equal_weight",
            Post(
                optimiser,
                json!({"params": {"symbols": five, "method": "equal_weight", "current_weights": {"AAPL": 0.5, "KO": 0.5}}}),
            ),
        ),
        (
            "optimiser_prices",
            Post(
                optimiser,
                json!({"price_data": prices, "params": {"method": "min_variance", "weight_bounds": [0.1, 0.6]}}),
            ),
        ),
        (
            "optimiser_bad_method",
            Post(
                optimiser,
                json!({"params": {"symbols": five, "method": "magic"}}),
            ),
        ),
        (
            "unknown_model",
            Post(
                "/api/enhanced_ml_models/predict/oracle",
                json!({"symbol": "AAPL"}),
            ),
        ),
        (
            "lstm_bad_window",
            Post(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                json!({"symbol": "AAPL", "params": {"sequence_length": 7}}),
            ),
        ),
        (
            "lstm_too_short",
            Post(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                json!({"price_data": [1.0, 2.0, 3.0]}),
            ),
        ),
        (
            "params_not_object",
            Post(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                json!({"symbol": "AAPL", "params": [1]}),
            ),
        ),
        (
            "ensemble_bad_window",
            Post(
                "/api/enhanced_ml_models/predict/adaptive_ensemble",
                json!({"symbol": "AAPL", "params": {"adaptation_window": 5}}),
            ),
        ),
        (
            "bad_json",
            Raw(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                "application/json",
                b"{\"symbol\": ",
            ),
        ),
        (
            "not_json",
            Raw(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                "text/plain",
                b"AAPL",
            ),
        ),
        (
            "batch",
            Post(
                "/api/enhanced_ml_models/batch_predict",
                json!({"models": ["lstm_predictor", "transformer_predictor", "adaptive_ensemble", "oracle"], "symbol": "AAPL"}),
            ),
        ),
        (
            "batch_empty",
            Post(
                "/api/enhanced_ml_models/batch_predict",
                json!({"models": []}),
            ),
        ),
        ("performance", Get("/api/enhanced_ml_models/performance")),
        ("agents", Get("/api/catalog/agents")),
        ("models", Get("/api/catalog/models")),
        ("enhanced_models", Get("/api/catalog/enhanced_models")),
        ("subscriptions", Get("/api/catalog/subscriptions")),
        (
            "subscribe",
            Post(
                "/api/catalog/subscribe",
                json!({"type": "agent", "id": "risk_monitor"}),
            ),
        ),
        (
            "subscribe_bad_type",
            Post(
                "/api/catalog/subscribe",
                json!({"type": "robot", "id": "x"}),
            ),
        ),
        (
            "subscribe_unknown",
            Post(
                "/api/catalog/subscribe",
                json!({"type": "model", "id": "oracle"}),
            ),
        ),
        (
            "unsubscribe",
            Post(
                "/api/catalog/unsubscribe",
                json!({"type": "agent", "id": "risk_monitor"}),
            ),
        ),
        ("stocks", Get("/api/catalog/stocks")),
        (
            "past_month",
            Post(
                "/api/catalog/past_month_return",
                json!({"symbols": ["AAPL", "XOM", "NOPE"]}),
            ),
        ),
        (
            "past_month_empty",
            Post("/api/catalog/past_month_return", json!({"symbols": []})),
        ),
        (
            "backtest_lstm",
            Post(
                "/api/catalog/backtest",
                json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "1y"}),
            ),
        ),
        (
            "backtest_ensemble",
            Post(
                "/api/catalog/backtest",
                json!({"model_id": "enhanced_adaptive_ensemble", "stock_symbol": "MSFT", "period": "3mo", "params": {"threshold": 0.001}}),
            ),
        ),
        (
            "backtest_optimiser",
            Post(
                "/api/catalog/backtest",
                json!({"model_id": "realtime_portfolio_optimizer", "stock_symbols": ["AAPL", "KO", "XOM"], "period": "6mo", "params": {"method": "risk_parity"}}),
            ),
        ),
        (
            "backtest_bad_period",
            Post(
                "/api/catalog/backtest",
                json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "5y"}),
            ),
        ),
        (
            "backtest_unknown_model",
            Post(
                "/api/catalog/backtest",
                json!({"model_id": "oracle", "stock_symbol": "AAPL"}),
            ),
        ),
        ("admin_disabled", Get("/api/admin/market_data_provider")),
        ("unknown_route", Get("/api/nope")),
        ("wrong_method", Method("DELETE", "/healthz")),
    ]
}

async fn call(app: &TestApp, call: &Call) -> Value {
    let request = match call {
        Call::Get(path) => app.client.get(app.url(path)),
        Call::Post(path, body) => app.client.post(app.url(path)).json(body),
        Call::Raw(path, content_type, body) => app
            .client
            .post(app.url(path))
            .header("content-type", *content_type)
            .body(body.to_vec()),
        Call::Method(method, path) => app.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(path),
        ),
    };
    let (status, body) =
        crate::helpers::read(request.header("x-user-id", "golden").send().await.unwrap()).await;
    json!({"status": status, "body": normalise(body)})
}

#[tokio::test]
async fn answers_stay_as_recorded() {
    let app = spawn_app().await;
    let mut answers = Map::new();
    for (name, request) in cases() {
        answers.insert(name.to_string(), call(&app, &request).await);
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/responses.json");
    if std::env::var_os("RECORD_GOLDEN_ANSWERS").is_some() {
        let text = serde_json::to_string_pretty(&Value::Object(answers)).unwrap() + "\n";
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        return;
    }
    let recorded: Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("recorded answers")).unwrap();
    assert_eq!(
        recorded.keys().collect::<Vec<_>>(),
        answers.keys().collect::<Vec<_>>(),
        "the cases changed: record again"
    );
    for (name, answer) in &answers {
        assert_eq!(&recorded[name], answer, "{name}");
    }
}
