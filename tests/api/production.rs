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
    assert_eq!(
        h["providers"],
        json!(["local", "yfinance", "fyers", "binance"]),
        "standbys included"
    );
    assert_eq!(h["provider_priority"], json!(["local"]));
    let local = &h["performance_metrics"]["local"];
    assert_eq!(local["total_calls"], 0);
    assert_eq!(local["success_rate"], 100.0);
    assert_eq!(local["circuit_breaker_state"], "closed");
    assert!(local["avg_latency_ms"].is_number());
    assert_eq!(h["cache_stats"]["local"], 23);
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
    assert_eq!(body["symbols_requested"].as_array().unwrap().len(), 3);
    assert_eq!(body["symbols_requested_count"], 3);
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

mod live_providers {
    use crate::helpers::spawn_app_with;
    use serde_json::json;
    use tickcast::config::ProviderName;
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn app_with_yahoo_at(server: &MockServer) -> crate::helpers::TestApp {
        let uri = server.uri();
        spawn_app_with(
            move |s| {
                s.market.providers = vec![ProviderName::Yfinance, ProviderName::Local];
                s.yahoo.base_url = uri;
                s.yahoo.timeout_ms = 500;
            },
            tickcast::models::served(),
        )
        .await
    }

    #[tokio::test]
    async fn a_failing_primary_falls_back_to_local_data() {
        let yahoo = MockServer::start().await;
        Mock::given(path("/v8/finance/chart/AAPL"))
            .respond_with(ResponseTemplate::new(500))
            .expect(2)
            .mount(&yahoo)
            .await;
        let app = app_with_yahoo_at(&yahoo).await;
        let (status, body) = app
            .post(
                "/api/production_api/portfolio_data",
                &json!({"symbols": ["AAPL"]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["portfolio_data"]["AAPL"]["provider"], "local");
        let (status, body) = app
            .post(
                "/api/catalog/past_month_return",
                &json!({"symbols": ["AAPL"]}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["results"][0]["provider"], "local");

        let (_, health) = app.get("/api/production_api/health").await;
        assert_eq!(health["status"], "degraded");
        assert_eq!(
            health["health"]["provider_priority"],
            json!(["yfinance", "local"])
        );
        let yf = &health["health"]["performance_metrics"]["yfinance"];
        assert_eq!(
            (yf["total_calls"].as_u64(), yf["success_rate"].as_f64()),
            (Some(2), Some(0.0))
        );
    }

    #[tokio::test]
    async fn a_spent_quota_falls_through_to_the_next_provider_and_shows_in_health() {
        let yahoo = MockServer::start().await;
        Mock::given(wiremock::matchers::path_regex("^/v8/finance/chart/"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(crate::helpers::yahoo_chart(), "application/json"),
            )
            .expect(2)
            .mount(&yahoo)
            .await;
        let uri = yahoo.uri();
        let app = spawn_app_with(
            move |s| {
                s.market.providers = vec![ProviderName::Yfinance, ProviderName::Local];
                s.yahoo.base_url = uri;
                s.yahoo.quota = tickcast::config::QuotaSettings {
                    per_minute: Some(2),
                    ..Default::default()
                };
                s.market.rate_limit_max_wait_ms = 20;
            },
            tickcast::models::served(),
        )
        .await;
        let mut providers = Vec::new();
        // Distinct symbols, so no answer comes from the quote cache.
        for symbol in [
            "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
        ] {
            let (status, body) = app
                .post(
                    "/api/production_api/portfolio_data",
                    &json!({ "symbols": [symbol] }),
                )
                .await;
            assert_eq!(status, 200);
            providers.push(
                body["portfolio_data"][symbol]["provider"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(providers.iter().filter(|p| *p == "yfinance").count(), 2);
        assert_eq!(providers.iter().filter(|p| *p == "local").count(), 8);
        let (_, health) = app.get("/api/production_api/health").await;
        let limits = &health["health"]["performance_metrics"]["yfinance"]["rate_limit"];
        assert_eq!(limits, &json!({"waits": 8, "rejections": 8}));
    }

    #[tokio::test]
    async fn a_healthy_primary_answers_and_is_named() {
        let yahoo = MockServer::start().await;
        let chart = crate::helpers::yahoo_chart();
        Mock::given(path("/v8/finance/chart/AAPL"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(chart, "application/json"))
            .mount(&yahoo)
            .await;
        let app = app_with_yahoo_at(&yahoo).await;
        let (_, body) = app
            .post(
                "/api/production_api/portfolio_data",
                &json!({"symbols": ["AAPL"]}),
            )
            .await;
        assert_eq!(body["portfolio_data"]["AAPL"]["provider"], "yfinance");
        assert_eq!(body["portfolio_data"]["AAPL"]["price"], 229.87);
        assert!(
            body.get("as_of").is_none(),
            "live data carries no snapshot date"
        );
    }
}
