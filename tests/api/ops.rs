use crate::helpers::{spawn_app, spawn_app_with, test_registry};
use serde_json::json;

#[tokio::test]
async fn liveness_and_readiness_answer_ok() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await, (200, json!({"status": "ok"})));
    assert_eq!(app.get("/readyz").await, (200, json!({"status": "ready"})));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(resp.headers().contains_key("x-request-id"));
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me");
}

#[tokio::test]
async fn cors_is_open_by_default() {
    let app = spawn_app().await;
    let resp = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url("/api/enhanced_ml_models/list"),
        )
        .header("origin", "https://frontend.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn responses_are_gzipped_when_asked() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/api/catalog/stocks"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let mut app = spawn_app_with(|_| {}, test_registry()).await;
    let client = app.client.clone();
    let url = app.url("/api/enhanced_ml_models/predict/mean_drift");
    let in_flight = tokio::spawn(async move {
        let body =
            json!({"price_data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "params": {"sleep_ms": 400}});
        client
            .post(url)
            .json(&body)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    app.begin_shutdown();
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    let server = &mut app.server;
    server.await.unwrap().unwrap();
    assert!(app.client.get(app.url("/healthz")).send().await.is_err());
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_format() {
    let app = spawn_app().await;
    app.post(
        "/api/production_api/portfolio_data",
        &json!({"symbols": ["AAPL"]}),
    )
    .await;
    app.post(
        "/api/catalog/past_month_return",
        &json!({"symbols": ["KO"]}),
    )
    .await;
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for needle in [
        "tickcast_http_requests_total{method=\"POST\",route=\"/api/production_api/portfolio_data\",status=\"200\"}",
        "tickcast_provider_calls_total{provider=\"local\",outcome=\"success\"}",
        "tickcast_provider_latency_seconds_bucket{provider=\"local\"",
        "tickcast_cache_requests_total{cache=\"history\",result=\"miss\"}",
        "tickcast_circuit_breaker_state{provider=\"local\"} 0",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
