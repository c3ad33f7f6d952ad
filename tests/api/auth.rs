//! Access control: API keys, per-caller rate limits, caller identity.

use crate::helpers::{spawn_app_with, test_registry, TestApp};
use serde_json::{json, Value};
use tickcast::config::{ApiKeySettings, CallerQuota};

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn key(owner: &str, secret: &str) -> ApiKeySettings {
    ApiKeySettings {
        owner: owner.into(),
        sha256: sha256_hex(secret),
        env: String::new(),
        trusted_gateway: false,
        quota: None,
    }
}

async fn keyed_app(quota: Option<CallerQuota>) -> TestApp {
    spawn_app_with(
        |s| {
            let mut gateway = key("gateway", "gateway-key");
            gateway.trusted_gateway = true;
            let mut limited = key("limited", "limited-key");
            limited.quota = quota;
            s.auth.api_keys = vec![
                key("alice", "alice-key"),
                key("bob", "bob-key"),
                gateway,
                limited,
            ];
        },
        test_registry(),
    )
    .await
}

async fn get_with(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut req = app.client.get(app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = crate::helpers::read(resp).await;
    (status, body, retry)
}

async fn post_with(
    app: &TestApp,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = app.client.post(app.url(path)).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    crate::helpers::read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn with_keys_configured_api_routes_need_one() {
    let app = keyed_app(None).await;
    let (status, body, _) = get_with(&app, "/api/catalog/agents", &[]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(body["success"], false);
    let (status, _, _) = get_with(
        &app,
        "/api/catalog/agents",
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = get_with(
        &app,
        "/api/catalog/agents",
        &[("authorization", "Bearer alice-key")],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = get_with(
        &app,
        "/api/enhanced_ml_models/list",
        &[("x-api-key", "bob-key")],
    )
    .await;
    assert_eq!(status, 200);
    // Ops endpoints stay open.
    for open in ["/healthz", "/readyz", "/api/production_api/health"] {
        let (status, _, _) = get_with(&app, open, &[]).await;
        assert_eq!(status, 200, "{open}");
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
}

#[tokio::test]
async fn a_burst_beyond_the_quota_gets_429_with_retry_after() {
    let app = keyed_app(Some(CallerQuota {
        per_second: 1,
        burst: 3,
    }))
    .await;
    let auth = [("x-api-key", "limited-key")];
    for _ in 0..3 {
        let (status, _, _) = get_with(&app, "/api/catalog/agents", &auth).await;
        assert_eq!(status, 200);
    }
    let (status, body, retry) = get_with(&app, "/api/catalog/agents", &auth).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    // Other callers have their own budget.
    let (status, _, _) = get_with(&app, "/api/catalog/agents", &[("x-api-key", "alice-key")]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn subscriptions_belong_to_the_key_and_only_a_gateway_names_users() {
    let app = keyed_app(None).await;
    let change = json!({"type": "agent", "id": "risk_monitor"});
    let (status, _) = post_with(
        &app,
        "/api/catalog/subscribe",
        &change,
        &[("x-api-key", "alice-key")],
    )
    .await;
    assert_eq!(status, 200);
    let agents = |body: &Value| body["subscriptions"]["agents"].clone();
    let (_, mine, _) = get_with(
        &app,
        "/api/catalog/subscriptions",
        &[("x-api-key", "alice-key")],
    )
    .await;
    assert_eq!(agents(&mine), json!(["risk_monitor"]));
    // Bob cannot read or change Alice's by naming her.
    let bob = [("x-api-key", "bob-key"), ("x-user-id", "alice")];
    let (_, theirs, _) = get_with(&app, "/api/catalog/subscriptions", &bob).await;
    assert_eq!(agents(&theirs), json!([]));
    post_with(&app, "/api/catalog/unsubscribe", &change, &bob).await;
    let (_, still, _) = get_with(
        &app,
        "/api/catalog/subscriptions",
        &[("x-api-key", "alice-key")],
    )
    .await;
    assert_eq!(agents(&still), json!(["risk_monitor"]));
    // A trusted gateway speaks for its users.
    let gateway = [("x-api-key", "gateway-key"), ("x-user-id", "carol")];
    post_with(&app, "/api/catalog/subscribe", &change, &gateway).await;
    let (_, carol, _) = get_with(&app, "/api/catalog/subscriptions", &gateway).await;
    assert_eq!(agents(&carol), json!(["risk_monitor"]));
}

#[tokio::test]
async fn without_keys_callers_are_limited_by_address_when_a_quota_is_set() {
    let app = spawn_app_with(
        |s| {
            s.auth.quota = CallerQuota {
                per_second: 1,
                burst: 2,
            }
        },
        test_registry(),
    )
    .await;
    for _ in 0..2 {
        let (status, _, _) = get_with(&app, "/api/catalog/agents", &[]).await;
        assert_eq!(status, 200);
    }
    let (status, _, retry) = get_with(&app, "/api/catalog/agents", &[]).await;
    assert_eq!(status, 429);
    assert!(retry.is_some());
}

#[tokio::test]
async fn metrics_can_have_their_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.server.metrics_address = "127.0.0.1:0".into();
    let app = tickcast::Application::build_with(settings, test_registry())
        .await
        .unwrap();
    let (main, metrics) = (app.local_addr().unwrap(), app.metrics_addr().unwrap());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let on_main = client
        .get(format!("http://{main}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_main.status(), 404);
    let own = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("tickcast_"));
}
