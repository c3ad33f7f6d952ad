//! The admin provider switch: closed without a configured token, guarded by
//! it, and effective for the next request.

use crate::helpers::{read, spawn_app, spawn_app_with};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{header, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const URL: &str = "/api/admin/market_data_provider";
const ADMIN: &str = "admin-secret-1";

async fn admin_app(fyers_base: Option<String>) -> crate::helpers::TestApp {
    spawn_app_with(
        move |s| {
            s.admin_token = SecretString::from(ADMIN);
            if let Some(base) = fyers_base {
                s.fyers.base_url = base;
            }
        },
        tickcast::models::served(),
    )
    .await
}

async fn call(
    app: &crate::helpers::TestApp,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = match &body {
        Some(b) => app.client.post(app.url(URL)).json(b),
        None => app.client.get(app.url(URL)),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn without_a_configured_token_the_switch_is_forbidden() {
    let app = spawn_app().await;
    let (status, body) = call(&app, Some("anything"), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401() {
    let app = admin_app(None).await;
    assert_eq!(call(&app, None, None).await.0, 401);
    let (status, body) = call(&app, Some("admin-secret-2"), None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = call(&app, Some(ADMIN), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"success": true, "provider": "local", "provider_priority": ["local"]})
    );
}

#[tokio::test]
async fn unsupported_or_incomplete_switches_are_400() {
    let app = admin_app(None).await;
    let (status, body) = call(&app, Some(ADMIN), Some(json!({"provider": "bloomberg"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("unsupported_provider"))
    );
    let (status, body) = call(&app, Some(ADMIN), Some(json!({"provider": "fyers"}))).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("access_token"));
}

#[tokio::test]
async fn switching_to_fyers_with_new_credentials_applies_to_the_next_request() {
    let fyers = MockServer::start().await;
    let quotes = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fyers/quotes.json"
    ))
    .unwrap();
    Mock::given(path("/data/quotes"))
        .and(header("authorization", "APP-7:fresh-token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(quotes, "application/json"))
        .expect(1)
        .mount(&fyers)
        .await;
    let app = admin_app(Some(format!("{}/data", fyers.uri()))).await;
    let (status, body) = call(
        &app,
        Some(ADMIN),
        Some(json!({"provider": "fyers", "app_id": "APP-7", "access_token": "fresh-token"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "fyers");
    assert_eq!(body["provider_priority"], json!(["fyers", "local"]));
    assert!(
        !body.to_string().contains("fresh-token"),
        "credentials are never echoed"
    );

    let (_, data) = app
        .post(
            "/api/production_api/portfolio_data",
            &json!({"symbols": ["SBIN.NS"]}),
        )
        .await;
    assert_eq!(data["portfolio_data"]["SBIN.NS"]["provider"], "fyers");
    assert_eq!(data["portfolio_data"]["SBIN.NS"]["price"], 675.4);
}
