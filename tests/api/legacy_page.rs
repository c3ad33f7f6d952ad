//! What the legacy catalog page reads, held to the legacy service's field
//! names and types: every stock it lists can be priced, predicted and
//! backtested with the data the configured providers can deliver.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    spawn_app, spawn_app_with, yahoo_answering, yahoo_chart_of, yahoo_first, TestApp,
};

async fn stocks(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get("/api/catalog/stocks").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], body["stocks"].as_array().unwrap().len());
    body["stocks"].as_array().unwrap().clone()
}

#[tokio::test]
async fn offline_the_stock_list_holds_the_local_data_each_saying_so() {
    let app = spawn_app().await;
    let listed = stocks(&app).await;
    assert_eq!(
        listed.len(),
        23,
        "20 embedded stocks, the S&P 500, BTC-USD and ETH-USD"
    );
    for stock in &listed {
        for field in ["yfinance_symbol", "fyers_symbol", "name"] {
            assert!(stock[field].is_string(), "{field}: {stock}");
        }
        assert_eq!(stock["data_source"], "local", "{stock}");
    }
    assert_eq!(listed[0]["yfinance_symbol"], "AAPL");
    assert_eq!(listed[0]["name"], "Apple Inc.");
    assert_eq!(listed[22]["yfinance_symbol"], "^GSPC");
    for coin in ["BTC-USD", "ETH-USD"] {
        assert!(
            listed.iter().any(|s| s["yfinance_symbol"] == coin),
            "{coin} listed"
        );
    }
    assert!(listed
        .iter()
        .all(|s| !s["yfinance_symbol"].as_str().unwrap().ends_with(".NS")));
}

#[tokio::test]
async fn a_price_file_dropped_in_appears_in_the_list() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let prices = dir.path().join("prices");
    std::fs::create_dir_all(&prices).unwrap();
    let mut csv = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 2).unwrap();
    for i in 0..300u64 {
        let c = 1500.0 + (i as f64 * 0.7).sin() * 20.0 + i as f64;
        csv.push_str(&format!(
            "{},{c},{c},{c},{c},{c},1000\n",
            start + chrono::Days::new(i)
        ));
    }
    std::fs::write(prices.join("INFY.NS.csv"), &csv).unwrap();
    std::fs::write(prices.join("TOY.csv"), &csv).unwrap();
    let app = crate::helpers::spawn_app_in(dir, |_| {}, tickcast::models::served()).await;
    let listed = stocks(&app).await;
    let infy = listed
        .iter()
        .find(|s| s["yfinance_symbol"] == "INFY.NS")
        .expect("a mapped stock with a local file is listed");
    assert_eq!(infy["fyers_symbol"], "NSE:INFY-EQ");
    assert_eq!(infy["data_source"], "local");
    assert_ne!(infy["name"], "INFY.NS", "named from the mapping");
    let toy = listed
        .iter()
        .find(|s| s["yfinance_symbol"] == "TOY")
        .unwrap();
    assert_eq!(
        (toy["name"].as_str(), toy["fyers_symbol"].as_str()),
        (Some("TOY"), Some(""))
    );
    let (status, body) = app
        .post(
            "/api/catalog/backtest",
            &json!({"model_id": "realtime_portfolio_optimizer", "stock_symbol": "INFY.NS", "period": "3mo"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn app_with_yahoo(yahoo: &MockServer) -> TestApp {
    let uri = yahoo.uri();
    spawn_app_with(
        move |s| {
            yahoo_first(s, uri, &[tickcast::config::ProviderName::Local]);
            s.market.probe_on_start = true;
        },
        tickcast::models::served(),
    )
    .await
}

#[tokio::test]
async fn with_a_live_provider_answering_the_mapping_is_listed_too() {
    let yahoo = yahoo_answering(30).await;
    let app = app_with_yahoo(&yahoo).await;
    let mut listed = Vec::new();
    for _ in 0..50 {
        listed = stocks(&app).await;
        if listed.len() > 23 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mapping = tickcast::market::SymbolMapper::built_in().unwrap();
    assert_eq!(listed.len(), mapping.len() + 23, "the union");
    // The mapping first, in its order, then the local data.
    assert_eq!(
        listed[0]["yfinance_symbol"],
        mapping.stocks()[0].yfinance_symbol
    );
    assert!(
        listed.iter().all(|s| s["data_source"] == "yfinance"),
        "Yahoo is tried first"
    );
}

#[tokio::test]
async fn with_the_live_provider_failing_only_local_data_is_listed() {
    let yahoo = MockServer::start().await;
    Mock::given(path_regex("^/v8/finance/chart/"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&yahoo)
        .await;
    let app = app_with_yahoo(&yahoo).await;
    for _ in 0..50 {
        if !yahoo.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let listed = stocks(&app).await;
    assert_eq!(listed.len(), 23);
    assert!(listed.iter().all(|s| s["data_source"] == "local"));
}

#[tokio::test]
async fn every_listed_stock_can_be_priced_predicted_and_backtested() {
    let app = spawn_app().await;
    let symbols: Vec<String> = stocks(&app)
        .await
        .iter()
        .map(|s| s["yfinance_symbol"].as_str().unwrap().to_string())
        .collect();
    let (status, body) = app
        .post(
            "/api/catalog/past_month_return",
            &json!({ "symbols": symbols }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid_count"], symbols.len(), "{body}");
    for symbol in &symbols {
        let (status, body) = app
            .post(
                "/api/enhanced_ml_models/predict/lstm_predictor",
                &json!({ "symbol": symbol }),
            )
            .await;
        assert_eq!(status, 200, "{symbol}: {body}");
        for model in ["transformer_predictor", "realtime_portfolio_optimizer"] {
            let (status, body) = app
                .post(
                    "/api/catalog/backtest",
                    &json!({"model_id": model, "stock_symbol": symbol, "period": "3mo"}),
                )
                .await;
            assert_eq!(status, 200, "{model} on {symbol}: {body}");
        }
    }
}

#[tokio::test]
async fn the_evaluation_holds_only_measured_scores_as_numbers() {
    let app = spawn_app().await;
    let (_, models) = app.get("/api/catalog/models").await;
    let (_, enhanced) = app.get("/api/catalog/enhanced_models").await;
    let items = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .chain(enhanced["enhanced_models"].as_array().unwrap());
    for item in items {
        let e = &item["evaluation"];
        assert!(e["overall_score"].is_number(), "{}", item["id"]);
        for (category, score) in e["detailed_scores"].as_object().unwrap() {
            assert!(
                score["score"].is_number(),
                "{}: {category} {score}",
                item["id"]
            );
        }
        for absent in ["data_quality", "code_quality", "governance_compliance"] {
            assert!(
                e["detailed_scores"].get(absent).is_none(),
                "{}: {absent}",
                item["id"]
            );
        }
        if item["id"] == "realtime_portfolio_optimizer" {
            assert!(e["detailed_scores"].get("model_logic").is_none());
        }
    }
}

#[tokio::test]
async fn every_listed_model_can_be_backtested_the_optimiser_as_it_allocates() {
    let app = spawn_app().await;
    let backtest = |body: Value| {
        let app = &app;
        async move { app.post("/api/catalog/backtest", &body).await }
    };
    // One stock: the optimiser can only hold it, so buy-and-hold.
    let (status, alone) = backtest(
        json!({"model_id": "realtime_portfolio_optimizer", "stock_symbol": "AAPL", "period": "1y"}),
    )
    .await;
    assert_eq!(status, 200, "{alone}");
    let (_, lstm) =
        backtest(json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "1y"}))
            .await;
    let r = &alone["backtest_result"];
    assert!(
        r["strategy"].as_str().unwrap().starts_with("buy and hold"),
        "{r}"
    );
    let held = lstm["backtest_result"]["benchmark"]["total_return"]
        .as_f64()
        .unwrap();
    assert!(
        (r["total_return"].as_f64().unwrap() - held).abs() < 1e-12,
        "{r}"
    );
    // Several: rebalanced walk-forward against equal weight.
    let (status, several) = backtest(json!({"model_id": "enhanced_realtime_portfolio_optimizer", "stock_symbols": ["AAPL", "JNJ", "KO", "XOM"], "period": "6mo", "params": {"method": "min_variance"}})).await;
    assert_eq!(status, 200, "{several}");
    let r = &several["backtest_result"];
    assert!(
        r["strategy"].as_str().unwrap().contains("min_variance"),
        "{r}"
    );
    assert!(
        r["strategy"].as_str().unwrap().contains("equal weight"),
        "{r}"
    );
    assert_eq!(r["days"], 126);
    assert_eq!(
        r["rebalances"].as_u64().unwrap() + r["skipped_rebalances"].as_u64().unwrap(),
        6
    );
    let weights: f64 = r["weights"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w.as_f64().unwrap())
        .sum();
    assert!((weights - 1.0).abs() < 1e-9, "{r}");
    for field in [
        "total_return",
        "annual_volatility",
        "sharpe_ratio",
        "max_drawdown",
    ] {
        assert!(
            r[field].is_number() && r["benchmark"][field].is_number(),
            "{field}"
        );
    }
    assert!(r["monthly_returns"].as_array().unwrap().len() >= 6);
    // A comma-separated stock_symbol says the same.
    let (_, commas) = backtest(json!({"model_id": "realtime_portfolio_optimizer", "stock_symbol": "AAPL,JNJ,KO,XOM", "period": "6mo", "params": {"method": "min_variance"}})).await;
    assert_eq!(commas["backtest_result"]["total_return"], r["total_return"]);
    // Predictors answer which strategy they measured too.
    assert!(lstm["backtest_result"]["strategy"]
        .as_str()
        .unwrap()
        .contains("buy-and-hold"));
}

#[tokio::test]
async fn symbols_requested_is_the_list_as_sent() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/production_api/portfolio_data",
            &json!({"symbols": ["AAPL", "msft"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["symbols_requested"], json!(["AAPL", "msft"]));
    assert_eq!(body["symbols_requested_count"], 2);
}

#[tokio::test]
async fn nothing_priced_averages_to_zero_as_the_legacy_route_did() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/catalog/past_month_return",
            &json!({"symbols": ["NOPE", "ZZZZ"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["average_return"].as_f64(),
            body["valid_count"].as_u64()
        ),
        (Some(0.0), Some(0))
    );
}

#[tokio::test]
async fn answers_built_from_a_last_good_copy_say_so_per_symbol() {
    let yahoo = MockServer::start().await;
    let chart = yahoo_chart_of("AAPL", 300);
    Mock::given(path_regex("^/v8/finance/chart/"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(chart, "application/json"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&yahoo)
        .await;
    Mock::given(path_regex("^/v8/finance/chart/"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(2)
        .mount(&yahoo)
        .await;
    let uri = yahoo.uri();
    let app = spawn_app_with(
        move |s| {
            yahoo_first(s, uri, &[]);
            s.market.history_cache_ttl_secs = 1;
            s.market.quote_cache_ttl_secs = 1;
            s.market.breaker_failure_threshold = 100;
        },
        tickcast::models::served(),
    )
    .await;
    let month = json!({"symbols": ["AAPL"]});
    let backtest = json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "3mo"});
    let (status, body) = app.post("/api/catalog/backtest", &backtest).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("stale").is_none(), "{body}");
    let (_, fresh) = app.post("/api/catalog/past_month_return", &month).await;
    assert!(fresh["results"][0].get("stale").is_none(), "{fresh}");
    let (_, quote) = app.post("/api/production_api/portfolio_data", &month).await;
    assert!(
        quote["portfolio_data"]["AAPL"].get("stale").is_none(),
        "{quote}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, stale) = app.post("/api/catalog/past_month_return", &month).await;
    assert_eq!(status, 200);
    let result = &stale["results"][0];
    assert_eq!(result["stale"], true, "{stale}");
    assert!(result["stale_age_secs"].is_u64());
    assert_eq!(result["return"], fresh["results"][0]["return"]);
    let (_, quote) = app.post("/api/production_api/portfolio_data", &month).await;
    let aapl = &quote["portfolio_data"]["AAPL"];
    assert_eq!(
        (aapl["stale"].as_bool(), aapl["stale_age_secs"].is_u64()),
        (Some(true), true),
        "{quote}"
    );
    let (status, body) = app.post("/api/catalog/backtest", &backtest).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stale"], true, "{body}");
}
