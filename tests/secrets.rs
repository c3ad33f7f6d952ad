//! The Fyers token never reaches a log line, a response or an error, at any
//! log level. Its own test binary, so it can own the global log subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tickcast::config::{CliOverrides, ProviderName, Settings};
use tickcast::Application;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "tok-9f8e7d6c5b4a-SECRET";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_fyers_token_appears_in_no_log_response_or_error() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let fyers = MockServer::start().await;
    Mock::given(path("/data/history"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            r#"{"code":-8,"message":"Your token has expired. Please generate a token","s":"error"}"#,
            "application/json",
        ))
        .mount(&fyers)
        .await;
    Mock::given(path("/data/quotes"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
        .mount(&fyers)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let cli = CliOverrides {
        bind: Some("127.0.0.1".into()),
        port: Some(0),
    };
    let base = format!("{}/data", fyers.uri());
    let env = move |key: &str| match key {
        "FYERS_APP_ID" => Some("APPID-100".to_string()),
        "FYERS_ACCESS_TOKEN" => Some(TOKEN.to_string()),
        _ => None,
    };
    let mut settings =
        Settings::load_from(std::path::Path::new("/nonexistent"), false, &cli, env).unwrap();
    settings.market.providers = vec![ProviderName::Fyers, ProviderName::Local];
    settings.fyers.base_url = base;
    settings.catalog.subscriptions_db = dir.path().join("subs.db");
    settings.lifecycle.registry_dir = dir.path().join("registry");
    settings.data.prices_dir = dir.path().join("prices");
    assert!(!format!("{settings:?}").contains(TOKEN));

    let app = Application::build_with(settings, tickcast::models::served())
        .await
        .unwrap();
    let url = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let mut bodies = Vec::new();
    for (route, body) in [
        (
            "/api/production_api/portfolio_data",
            json!({"symbols": ["RELIANCE.NS", "AAPL"]}),
        ),
        (
            "/api/catalog/past_month_return",
            json!({"symbols": ["NSE:SBIN-EQ", "AAPL"]}),
        ),
        (
            "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
            json!({"params": {"symbols": ["NSE:SBIN-EQ", "AAPL"]}}),
        ),
    ] {
        let resp = client
            .post(format!("{url}{route}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        bodies.push(resp.text().await.unwrap());
    }
    let health = client
        .get(format!("{url}/api/production_api/health"))
        .send()
        .await
        .unwrap();
    let health: Value = health.json().await.unwrap();
    bodies.push(health.to_string());
    bodies.push(
        client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );

    // The calls really went to Fyers and failed, and that was logged.
    let fyers_health = &health["health"]["performance_metrics"]["fyers"];
    assert_eq!(fyers_health["success_rate"], 0.0);
    // The latest failure is the 500 from /quotes or the expired token from /history.
    let last_error = fyers_health["last_error"].as_str().unwrap();
    assert!(
        last_error.contains("not authorised") || last_error.contains("HTTP 500"),
        "{last_error}"
    );
    assert!(fyers_health["last_error_at"].is_string());
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("provider call failed"), "{logs}");
    assert!(
        logs.contains("token has expired"),
        "the reason is logged: {logs}"
    );
    assert!(
        bodies[0].contains("\"AAPL\""),
        "local data still answers: {}",
        bodies[0]
    );
    for text in bodies.iter().chain([&logs]) {
        assert!(!text.contains(TOKEN), "token leaked in: {text}");
    }
    let requests = fyers.received_requests().await.unwrap();
    assert!(requests.iter().any(|r| r
        .headers
        .get("authorization")
        .is_some_and(|v| v.to_str().unwrap().ends_with(TOKEN))));
}
