//! The OpenAPI document covers every route, and every documented route is
//! served.

use crate::helpers::spawn_app;
use serde_json::Value;

/// The contract's routes, plus tickcast's own.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/enhanced_ml_models/list"),
    ("post", "/api/enhanced_ml_models/predict/{model_name}"),
    ("post", "/api/enhanced_ml_models/batch_predict"),
    ("get", "/api/enhanced_ml_models/performance"),
    ("get", "/api/production_api/health"),
    ("post", "/api/production_api/portfolio_data"),
    ("get", "/api/production_api/history"),
    ("get", "/api/catalog/agents"),
    ("get", "/api/catalog/models"),
    ("get", "/api/catalog/enhanced_models"),
    ("get", "/api/catalog/subscriptions"),
    ("post", "/api/catalog/subscribe"),
    ("post", "/api/catalog/unsubscribe"),
    ("get", "/api/catalog/stocks"),
    ("post", "/api/catalog/past_month_return"),
    ("post", "/api/catalog/backtest"),
    ("post", "/api/options/price"),
    ("post", "/api/options/implied_volatility"),
    ("get", "/api/stream"),
    ("get", "/api/stream/sse"),
    ("post", "/api/risk/var"),
    ("get", "/api/admin/market_data_provider"),
    ("post", "/api/admin/market_data_provider"),
    ("get", "/api/enhanced_ml_models/versions"),
    ("get", "/api/enhanced_ml_models/versions/{model_name}"),
    ("get", "/api/enhanced_ml_models/experiments"),
    ("post", "/api/admin/models/{model_name}/retrain"),
    ("post", "/api/admin/models/{model_name}/promote"),
    ("post", "/api/admin/models/{model_name}/rollback"),
    ("get", "/api/admin/training_runs"),
    ("get", "/api/admin/training_runs/{run_id}"),
    ("get", "/dashboard"),
    ("get", "/dashboard/assets/{file}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn documented(spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((method.clone(), path.clone()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_spec_documents_every_route_and_only_served_ones() {
    let app = spawn_app().await;
    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    let documented = documented(&spec);
    for (method, path) in ROUTES.iter().filter(|r| r.1 != "/openapi.json") {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is served but not documented"
        );
    }
    assert_eq!(documented.len(), ROUTES.len() - 1, "{documented:?}");
    // Each documented operation reaches a handler (not the 404/405 fallbacks).
    for (method, path) in &documented {
        let url = app.url(
            &path
                .replace("{model_name}", "lstm_predictor")
                .replace("{file}", "app.js"),
        );
        let req = match method.as_str() {
            "get" => app.client.get(url),
            "post" => app.client.post(url).json(&serde_json::json!({})),
            other => panic!("unexpected method {other}"),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(
            status != 405 && !text.contains("no route for"),
            "{method} {path}: {status} {text}"
        );
    }
    // Every operation has a success response with a schema and error bodies.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            // The WebSocket answers by switching protocols; a retraining
            // run is accepted, to finish later.
            let success = match path.as_str() {
                "/api/stream" => "101",
                "/api/admin/models/{model_name}/retrain" => "202",
                _ => "200",
            };
            assert!(op["responses"][success].is_object(), "{method} {path}");
        }
    }
}

#[tokio::test]
async fn the_docs_page_renders_the_spec() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("swagger-ui"),
        "{}",
        &html[..html.len().min(300)]
    );
    let init = app.get_text("/docs/swagger-initializer.js").await;
    assert!(init.contains("/openapi.json"));
}
