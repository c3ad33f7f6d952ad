use std::collections::HashSet;
use std::sync::Arc;

use crate::helpers::{embedded_closes, spawn_app, spawn_app_in, spawn_app_with, test_registry};
use serde_json::json;

#[tokio::test]
async fn agents_come_from_the_catalog_file() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/catalog/agents").await;
    assert_eq!(status, 200);
    let agents = body["agents"].as_array().unwrap();
    assert_eq!(body["total"], agents.len());
    for a in agents {
        for field in [
            "id",
            "name",
            "category",
            "description",
            "tier",
            "subscription",
            "features",
        ] {
            assert!(!a[field].is_null(), "agent lacks {field}: {a}");
        }
        assert!(a["subscription"]["monthly"].is_number());
    }
}

#[tokio::test]
async fn model_listings_show_only_served_models_and_never_share_an_id() {
    let app = spawn_app().await;
    let (_, models) = app.get("/api/catalog/models").await;
    let (_, enhanced) = app.get("/api/catalog/enhanced_models").await;
    assert_eq!(
        (models["total"].as_u64(), enhanced["total"].as_u64()),
        (Some(1), Some(4))
    );
    let networks: Vec<&str> = enhanced["enhanced_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        networks,
        [
            "adaptive_ensemble",
            "garch_volatility",
            "lstm_predictor",
            "transformer_predictor"
        ]
    );
    let optimizer = &models["models"][0];
    assert_eq!(optimizer["id"], "realtime_portfolio_optimizer");
    assert_eq!(optimizer["name"], "Portfolio Optimizer");
    assert!(optimizer["tier"].is_array() && optimizer["subscription"]["monthly"].is_number());

    let app = spawn_app_with(|_| {}, test_registry()).await;
    let (_, models) = app.get("/api/catalog/models").await;
    let (_, enhanced) = app.get("/api/catalog/enhanced_models").await;
    let ids = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (ids(&models, "models"), ids(&enhanced, "enhanced_models"));
    let all: HashSet<_> = a.iter().chain(b.iter()).collect();
    assert_eq!(all.len(), a.len() + b.len(), "an id is in both lists");
    assert_eq!(all.len(), 2);
    let drift = &enhanced["enhanced_models"][0];
    assert_eq!(drift["complexity"], "low");
    assert_eq!(drift["latency"], "<1ms");
}

#[tokio::test]
async fn subscriptions_are_per_caller_and_validated() {
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let (status, body) = app
        .post(
            "/api/catalog/subscribe",
            &json!({"type": "agent", "id": "risk_monitor"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["subscriptions"],
        json!({"agents": ["risk_monitor"], "models": []})
    );
    let (status, body) = app
        .post(
            "/api/catalog/subscribe",
            &json!({"type": "model", "id": "mean_drift"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["subscriptions"]["models"], json!(["mean_drift"]));

    let (_, other) = app
        .get_as("someone-else", "/api/catalog/subscriptions")
        .await;
    assert_eq!(other["subscriptions"], json!({"agents": [], "models": []}));

    let (status, body) = app
        .post(
            "/api/catalog/subscribe",
            &json!({"type": "robot", "id": "x"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_type")));
    let (status, body) = app
        .post("/api/catalog/subscribe", &json!({"id": "x"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_type")));
    let (status, body) = app
        .post(
            "/api/catalog/subscribe",
            &json!({"type": "model", "id": "nonexistent"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_id")));
    let (status, _) = app
        .post("/api/catalog/subscribe", &json!({"type": "agent"}))
        .await;
    assert_eq!(status, 400);

    let (status, body) = app
        .post(
            "/api/catalog/unsubscribe",
            &json!({"type": "agent", "id": "risk_monitor"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["subscriptions"],
        json!({"agents": [], "models": ["mean_drift"]})
    );
}

#[tokio::test]
async fn concurrent_subscribes_lose_nothing() {
    let app = spawn_app().await;
    let agents = [
        "momentum_trader",
        "portfolio_rebalancer",
        "risk_monitor",
        "nifty_watch",
    ];
    let calls = (0..40).map(|i| {
        let (client, url) = (app.client.clone(), app.url("/api/catalog/subscribe"));
        let id = agents[i % agents.len()];
        async move {
            client
                .post(url)
                .header("x-user-id", format!("user{}", i % 5))
                .json(&json!({"type": "agent", "id": id}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    for status in futures::future::join_all(calls).await {
        assert_eq!(status, 200);
    }
    for user in 0..5 {
        let (_, body) = app
            .get_as(&format!("user{user}"), "/api/catalog/subscriptions")
            .await;
        assert_eq!(
            body["subscriptions"]["agents"].as_array().unwrap().len(),
            4,
            "user{user}"
        );
    }
}

#[tokio::test]
async fn subscriptions_survive_a_restart() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    {
        let mut app = spawn_app_in(Arc::clone(&dir), |_| {}, test_registry()).await;
        let (status, _) = app
            .post(
                "/api/catalog/subscribe",
                &json!({"type": "agent", "id": "nifty_watch"}),
            )
            .await;
        assert_eq!(status, 200);
        app.begin_shutdown();
        (&mut app.server).await.unwrap().unwrap();
    }
    let app = spawn_app_in(dir, |_| {}, test_registry()).await;
    let (_, body) = app.get("/api/catalog/subscriptions").await;
    assert_eq!(body["subscriptions"]["agents"], json!(["nifty_watch"]));
}

#[tokio::test]
async fn bad_caller_ids_are_refused() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_as(&"a".repeat(200), "/api/catalog/subscriptions")
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("X-User-Id"));
}

#[tokio::test]
async fn a_mapped_stock_that_can_be_priced_is_listed_with_its_mapping() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    std::fs::create_dir_all(dir.path().join("prices")).unwrap();
    std::fs::write(
        dir.path().join("prices/RELIANCE.NS.csv"),
        "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,1,1,1,2590.3,2590.3,5\n2024-01-03,1,1,1,2615.8,2615.8,5\n",
    )
    .unwrap();
    let app = crate::helpers::spawn_app_in(dir, |_| {}, tickcast::models::served()).await;
    let (status, body) = app.get("/api/catalog/stocks").await;
    assert_eq!(status, 200);
    let stocks = body["stocks"].as_array().unwrap();
    assert_eq!(body["total"], stocks.len());
    assert_eq!(
        stocks[0],
        json!({
            "yfinance_symbol": "RELIANCE.NS",
            "fyers_symbol": "NSE:RELIANCE-EQ",
            "name": "Reliance Industries Ltd",
            "data_source": "local"
        })
    );
}

#[tokio::test]
async fn past_month_return_is_computed_from_real_closes() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/catalog/past_month_return",
            &json!({"symbols": ["AAPL", "XOM", "NOPE"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let expected = |sym: &str| {
        let c = embedded_closes(sym);
        (
            c[c.len() - 1] / c[c.len() - 22] - 1.0,
            c[c.len() - 22],
            c[c.len() - 1],
        )
    };
    let (aapl, start, end) = expected("AAPL");
    let r = &body["results"][0];
    assert_eq!(r["symbol"], "AAPL");
    assert_eq!(r["return"], aapl);
    assert_eq!(r["start_price"], start);
    assert_eq!(r["end_price"], end);
    assert_eq!(r["as_of"], "2022-12-28");
    let xom = expected("XOM").0;
    assert_eq!(body["results"][1]["return"], xom);
    assert_eq!(body["results"][2]["symbol"], "NOPE");
    assert!(body["results"][2]["error"].is_string());
    assert_eq!(body["valid_count"], 2);
    assert_eq!(body["total_count"], 3);
    assert_eq!(body["average_return"], (aapl + xom) / 2.0);

    let (status, _) = app
        .post("/api/catalog/past_month_return", &json!({"symbols": []}))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn every_served_model_carries_a_measured_deterministic_evaluation() {
    let app = spawn_app().await;
    let (_, first) = app.get("/api/catalog/models").await;
    let (_, enhanced) = app.get("/api/catalog/enhanced_models").await;
    let (_, again) = app.get("/api/catalog/models").await;
    assert_eq!(first, again, "two calls, identical bodies");
    let items: Vec<&serde_json::Value> = first["models"]
        .as_array()
        .unwrap()
        .iter()
        .chain(enhanced["enhanced_models"].as_array().unwrap())
        .collect();
    assert_eq!(items.len(), 5);
    for item in items {
        let e = &item["evaluation"];
        let overall = e["overall_score"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=10.0).contains(&overall), "{}: {e}", item["id"]);
        let scores = e["detailed_scores"].as_object().unwrap();
        // Only what is measured is present, each as a number out of 10.
        let measured: Vec<f64> = scores
            .values()
            .map(|s| s["score"].as_f64().expect("a measured score"))
            .collect();
        assert!(measured.len() >= 2, "{}", item["id"]);
        assert!(measured.iter().all(|s| (0.0..=10.0).contains(s)));
        let mean = measured.iter().sum::<f64>() / measured.len() as f64;
        assert!(
            (mean - overall).abs() < 0.01,
            "overall is the mean of the measured scores"
        );
        for s in scores.values() {
            assert!(s["description"].is_string() && s["details"].is_string());
        }
        assert!(e["measured"]["measured_at"].is_string());
        // A backtest, or for a volatility model its losses against the baselines.
        let m = &e["measured"];
        assert!(
            m["backtest"]["sharpe_ratio"].is_number()
                || m["volatility"]["qlike"]["model"].is_number(),
            "{}: {m}",
            item["id"]
        );
    }
}
