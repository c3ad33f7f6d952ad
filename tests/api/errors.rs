//! Malformed requests of every kind get a 4xx with the contract's body.

use crate::helpers::spawn_app;
use serde_json::json;

const URL: &str = "/api/production_api/portfolio_data";

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"success": false, "code": "not_found", "error": "no route for GET /api/nope"})
    );
    let resp = app
        .client
        .delete(app.url("/api/catalog/stocks"))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::helpers::read(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn malformed_bodies_are_400s_that_say_why() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "application/json",
            b"{\"symbols\": [".to_vec(),
            "not valid JSON",
        ),
        ("application/json", b"".to_vec(), "not valid JSON"),
        (
            "application/json",
            b"{\"symbols\": [1]}".to_vec(),
            "symbols[0]",
        ),
        (
            "application/json",
            vec![b'"', 0xff, 0xfe, b'"'],
            "not valid JSON",
        ),
        (
            "application/json",
            "[".repeat(10_000).into_bytes(),
            "invalid",
        ),
        (
            "application/json",
            format!(
                "{{\"symbols\": [\"AAPL\"], \"extra\": {}}}",
                "[".repeat(10_000)
            )
            .into_bytes(),
            "extra: expected value",
        ),
    ];
    for (content_type, body, expected) in cases {
        let (status, resp) = app.post_raw(URL, content_type, body).await;
        assert_eq!(status, 400, "{resp}");
        assert_eq!(resp["success"], false);
        let error = resp["error"].as_str().unwrap();
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_raw(URL, "text/plain", b"{\"symbols\": [\"AAPL\"]}".to_vec())
        .await;
    assert_eq!(status, 415);
    assert!(body["error"].as_str().unwrap().contains("application/json"));
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let app = spawn_app().await;
    let big = format!("{{\"symbols\": [\"{}\"]}}", "A".repeat(1_100_000));
    let (status, body) = app
        .post_raw(URL, "application/json", big.into_bytes())
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large");
}

#[tokio::test]
async fn unknown_fields_are_ignored_for_legacy_clients() {
    let app = spawn_app().await;
    let (status, _) = app
        .post(URL, &json!({"symbols": ["AAPL"], "client": "legacy-page"}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn deeply_nested_json_does_not_crash_the_server() {
    let app = spawn_app().await;
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!("{{\"symbols\": [\"AAPL\"], \"extra\": {nested}}}");
    let (status, _) = app
        .post_raw(URL, "application/json", body.into_bytes())
        .await;
    assert!(status == 200 || status == 400, "status {status}");
    let (status, body) = app
        .post_raw(URL, "application/json", nested.into_bytes())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(app.get("/healthz").await.0, 200);
}
