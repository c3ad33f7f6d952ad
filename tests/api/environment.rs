//! Environment detection (the EC2 probe) and the provider order it picks,
//! and the circuit breaker seen from outside, with upstreams on loopback mocks.

use std::time::Duration;

use serde_json::{json, Value};
use tickcast::config::Settings;
use wiremock::matchers::{header_exists, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{spawn_app_with, TestApp};

/// Settings that leave the environment to the probe, which asks `imds`.
/// Fyers has (fake) credentials so both orders are visible; no test here
/// sends it a request.
fn undecided(s: &mut Settings, imds: &MockServer) {
    s.market.providers.clear();
    s.market.environment = None;
    s.market.ec2_probe_url = imds.uri();
    s.fyers.app_id = "APP-100".into();
    s.fyers.access_token = "fake-token".to_string().into();
    s.fyers.base_url = "http://127.0.0.1:9".into();
    s.yahoo.base_url = "http://127.0.0.1:9".into();
    s.binance.base_url = "http://127.0.0.1:9".into();
}

async fn health(app: &TestApp) -> Value {
    let (status, body) = app.get("/api/production_api/health").await;
    assert_eq!(status, 200, "{body}");
    body["health"].clone()
}

/// Polls health until `done` holds (the probe runs in the background).
async fn health_when(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let h = health(app).await;
        if done(&h) {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "health never reached the expected state: {}",
        health(app).await
    );
}

async fn imds_answering(response: ResponseTemplate) -> MockServer {
    let imds = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/latest/api/token"))
        .and(header_exists("X-aws-ec2-metadata-token-ttl-seconds"))
        .respond_with(response)
        .mount(&imds)
        .await;
    imds
}

#[tokio::test]
async fn a_metadata_token_means_production_with_fyers_first() {
    let imds = imds_answering(ResponseTemplate::new(200).set_body_string("AQAEAF-token")).await;
    let app = spawn_app_with(|s| undecided(s, &imds), tickcast::models::served()).await;
    let h = health_when(&app, |h| h["environment"] == "production").await;
    assert_eq!(
        h["provider_priority"],
        json!(["fyers", "yfinance", "binance", "local"])
    );
    assert_eq!(
        imds.received_requests().await.unwrap().len(),
        1,
        "probed once"
    );
}

#[tokio::test]
async fn no_metadata_service_means_development_with_yahoo_first() {
    let imds = imds_answering(ResponseTemplate::new(404)).await;
    let app = spawn_app_with(|s| undecided(s, &imds), tickcast::models::served()).await;
    for _ in 0..100 {
        if !imds.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(imds.received_requests().await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let h = health(&app).await;
    assert_eq!(h["environment"], "development");
    assert_eq!(
        h["provider_priority"],
        json!(["yfinance", "fyers", "binance", "local"])
    );
}

#[tokio::test]
async fn a_silent_metadata_service_neither_delays_startup_nor_changes_anything() {
    let imds = imds_answering(
        ResponseTemplate::new(200)
            .set_body_string("late-token")
            .set_delay(Duration::from_secs(3)),
    )
    .await;
    let app = spawn_app_with(
        |s| {
            undecided(s, &imds);
            s.market.ec2_probe_timeout_ms = 100;
        },
        tickcast::models::served(),
    )
    .await;
    // Serving while the probe is still out.
    assert_eq!(health(&app).await["environment"], "development");
    // Past the probe's timeout the late token is ignored.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let h = health(&app).await;
    assert_eq!(h["environment"], "development");
    assert_eq!(
        h["provider_priority"],
        json!(["yfinance", "fyers", "binance", "local"])
    );
}

#[tokio::test]
async fn a_configured_environment_or_provider_list_skips_the_probe() {
    let imds = imds_answering(ResponseTemplate::new(200).set_body_string("token")).await;
    let staged = spawn_app_with(
        |s| {
            undecided(s, &imds);
            s.market.environment = Some(tickcast::config::Environment::Staging);
        },
        tickcast::models::served(),
    )
    .await;
    let listed = spawn_app_with(
        |s| {
            undecided(s, &imds);
            s.market.providers = vec![tickcast::config::ProviderName::Local];
        },
        tickcast::models::served(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(imds.received_requests().await.unwrap().is_empty());
    let h = health(&staged).await;
    assert_eq!(h["environment"], "staging");
    assert_eq!(
        h["provider_priority"],
        json!(["yfinance", "fyers", "binance", "local"])
    );
    assert_eq!(health(&listed).await["provider_priority"], json!(["local"]));
}

#[tokio::test]
async fn an_open_breaker_stops_calling_yahoo_until_a_probe_succeeds() {
    let yahoo = MockServer::start().await;
    Mock::given(path_regex("^/v8/finance/chart/"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&yahoo)
        .await;
    let chart = crate::helpers::yahoo_chart();
    Mock::given(path_regex("^/v8/finance/chart/"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(chart, "application/json"))
        .with_priority(2)
        .mount(&yahoo)
        .await;
    let uri = yahoo.uri();
    let app = spawn_app_with(
        move |s| {
            s.market.providers = vec![
                tickcast::config::ProviderName::Yfinance,
                tickcast::config::ProviderName::Local,
            ];
            s.yahoo.base_url = uri;
            s.market.breaker_failure_threshold = 2;
            s.market.breaker_failure_rate = 0.0;
            s.market.breaker_cool_down_secs = 1;
        },
        tickcast::models::served(),
    )
    .await;
    let provider_of = |symbol: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app
                .post(
                    "/api/production_api/portfolio_data",
                    &json!({ "symbols": [symbol] }),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["portfolio_data"][symbol]["provider"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let breaker = |h: &Value| h["performance_metrics"]["yfinance"]["circuit_breaker_state"].clone();

    // Two failures open the breaker; while open, Yahoo is not called at all.
    for symbol in ["AAPL", "AMD", "BAC", "BBY", "CVX"] {
        assert_eq!(provider_of(symbol).await, "local", "{symbol}");
    }
    assert_eq!(yahoo.received_requests().await.unwrap().len(), 2);
    assert_eq!(breaker(&health(&app).await), "open");

    // After the cool-down one probe goes through; it succeeds and closes the breaker.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(provider_of("GE").await, "yfinance");
    assert_eq!(yahoo.received_requests().await.unwrap().len(), 3);
    assert_eq!(breaker(&health(&app).await), "closed");
    assert_eq!(provider_of("HD").await, "yfinance");
}
