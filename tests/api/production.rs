use crate::helpers::{embedded_closes, spawn_app, spawn_app_in};
use serde_json::json;
use tickcast::models::Registry;

#[tokio::test]
async fn health_reports_every_contract_field_without_calling_providers() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/production_api/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(body["status"], "healthy");
    let h = &body["health"];
    assert_eq!(h["environment"], "development");
    assert_eq!(h["providers"], json!(["local"]));
    assert_eq!(h["provider_priority"], json!(["local"]));
    let local = &h["performance_metrics"]["local"];
    assert_eq!(local["total_calls"], 0);
    assert_eq!(local["success_rate"], 100.0);
    assert_eq!(local["circuit_breaker_state"], "closed");
    assert!(local["avg_latency_ms"].is_number());
    assert_eq!(h["cache_stats"]["local"], 21);
    assert!(h["symbol_mappings_loaded"].as_u64().unwrap() >= 50);
    assert!(h["timestamp"].is_string() && body["timestamp"].is_string());
}

#[tokio::test]
async fn portfolio_data_matches_the_embedded_closes() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/production_api/portfolio_data",
            &json!({"symbols": ["AAPL", " msft", "RELIANCE.NS"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let closes = embedded_closes("AAPL");
    let (last, prev) = (closes[closes.len() - 1], closes[closes.len() - 2]);
    let aapl = &body["portfolio_data"]["AAPL"];
    assert_eq!(aapl["price"], last);
    assert_eq!(aapl["change"], last - prev);
    assert_eq!(aapl["change_pct"], (last / prev - 1.0) * 100.0);
    assert_eq!(aapl["provider"], "local");
    assert_eq!(aapl["timestamp"], "2022-12-28T00:00:00Z");
    for absent in ["open", "high", "low", "volume"] {
        assert!(aapl[absent].is_null(), "{absent} must not be invented");
    }
    let msft = embedded_closes("MSFT");
    assert_eq!(
        body["portfolio_data"][" msft"]["price"],
        *msft.last().unwrap()
    );
    assert_eq!(body["symbols_requested"], 3);
    assert_eq!(body["symbols_found"], 2);
    assert_eq!(body["symbols_missing"][0]["symbol"], "RELIANCE.NS");
    assert!(body["symbols_missing"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not found"));
    assert_eq!(body["as_of"], "2022-12-28");
}

#[tokio::test]
async fn portfolio_data_refuses_missing_empty_and_oversize_symbol_lists() {
    let app = spawn_app().await;
    for body in [json!({}), json!({"symbols": []})] {
        let (status, resp) = app.post("/api/production_api/portfolio_data", &body).await;
        assert_eq!(status, 400);
        assert_eq!(resp["error"], "No symbols provided");
        assert_eq!(resp["code"], "invalid_input");
    }
    let many: Vec<String> = (0..501).map(|i| format!("S{i}")).collect();
    let (status, resp) = app
        .post(
            "/api/production_api/portfolio_data",
            &json!({ "symbols": many }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(resp["error"].as_str().unwrap().contains("at most 500"));
    let (status, resp) = app
        .post(
            "/api/production_api/portfolio_data",
            &json!({"symbols": "AAPL"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        resp["error"].as_str().unwrap().contains("symbols"),
        "{resp}"
    );
}

#[tokio::test]
async fn user_price_files_are_served_with_their_ohlcv() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    std::fs::create_dir_all(dir.path().join("prices")).unwrap();
    std::fs::write(
        dir.path().join("prices/RELIANCE.NS.csv"),
        "Date,Open,High,Low,Close,Adj Close,Volume\n\
         2024-01-02,2500,2550,2490,2540,2540,1000000\n\
         2024-01-03,2540,2600,2530,2590,2590,1200000\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prices/BROKEN.csv"),
        "Date,Close\nyesterday,1\n",
    )
    .unwrap();
    let app = spawn_app_in(dir, |_| {}, Registry::default()).await;
    let (status, body) = app
        .post(
            "/api/production_api/portfolio_data",
            &json!({"symbols": ["NSE:RELIANCE-EQ", "BROKEN"]}),
        )
        .await;
    assert_eq!(status, 200);
    let q = &body["portfolio_data"]["NSE:RELIANCE-EQ"];
    assert_eq!(q["price"], 2590.0);
    assert_eq!(q["open"], 2540.0);
    assert_eq!(q["high"], 2600.0);
    assert_eq!(q["volume"], 1200000.0);
    assert_eq!(body["symbols_missing"][0]["symbol"], "BROKEN");
}
