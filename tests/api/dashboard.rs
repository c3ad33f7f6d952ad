//! The dashboard's files and the history route it charts, over HTTP.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<meta name="viewport""#));
    for asset in [
        "app.js",
        "style.css",
        "uPlot.iife.min.js",
        "uPlot.min.css",
        "LICENSE-uPlot",
    ] {
        assert!(
            html.contains(asset) || asset.starts_with("LICENSE"),
            "{asset} linked"
        );
        let r = app
            .client
            .get(app.url(&format!("/dashboard/assets/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(!r.bytes().await.unwrap().is_empty(), "{asset}");
    }
    let (status, body) = app.get("/dashboard/assets/secrets.toml").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    let (status, _) = app.get("/dashboard/assets/..%2Fsrc%2Fmain.rs").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn history_serves_the_newest_daily_bars_oldest_first() {
    let app = spawn_app().await;
    let (status, body) = app
        .get("/api/production_api/history?symbol=AAPL&bars=5")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data_source"], "local");
    assert_eq!(body["as_of"], "2022-12-28");
    let bars = body["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 5);
    let closes = crate::helpers::embedded_closes("AAPL");
    assert_eq!(bars[4]["close"], closes[closes.len() - 1]);
    assert_eq!(bars[4]["date"], "2022-12-28");
    assert!(bars[0]["date"].as_str() < bars[4]["date"].as_str());
    let (_, default) = app.get("/api/production_api/history?symbol=BTC-USD").await;
    assert_eq!(default["bars"].as_array().unwrap().len(), 120);

    for (query, says) in [
        ("symbol=AAPL&bars=0", "bars is 0"),
        ("symbol=AAPL&bars=5001", "1 to 5000"),
        ("bars=3", "symbol"),
        ("symbol=AAPL&bars=abc", "bars"),
        ("symbol=AAPL&colour=red", "colour"),
    ] {
        let (status, body): (u16, Value) = app
            .get(&format!("/api/production_api/history?{query}"))
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(says), "{query}: {error}");
    }
    let (status, body) = app.get("/api/production_api/history?symbol=NOPE").await;
    assert_eq!(status, 404, "{body}");
}
