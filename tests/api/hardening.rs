//! Requests built to exhaust memory, stall the service or grow its state:
//! each is answered at once and leaves nothing unbounded behind.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    spawn_app, spawn_app_with, test_registry, yahoo_answering, yahoo_chart_of, yahoo_first, TestApp,
};

const STOCKS: [&str; 10] = [
    "AAPL", "MSFT", "JNJ", "KO", "XOM", "JPM", "PG", "WMT", "PEP", "MRK",
];

async fn history_cache(app: &TestApp) -> Value {
    let (_, health) = app.get("/api/production_api/health").await;
    health["health"]["history_cache"].clone()
}

#[tokio::test]
async fn varying_lookbacks_keep_one_cached_series_per_symbol() {
    let app = spawn_app().await;
    for i in 1..=20 {
        let (status, body) = app
            .post(
                "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
                &json!({"params": {"symbols": STOCKS, "lookback_days": 9000 + i, "method": "equal_weight"}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // Clamped to the bars that exist: 8 313 closes, 8 312 returns.
        assert_eq!(body["observations"], 8312, "{body}");
    }
    let cache = history_cache(&app).await;
    assert_eq!(cache["entries"], 10, "one series per symbol: {cache}");
    assert_eq!(cache["misses"], 10, "{cache}");
    // Shorter lookbacks are slices of the same series.
    let (status, _) = app
        .post(
            "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
            &json!({"params": {"symbols": STOCKS, "lookback_days": 30, "method": "min_variance"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(history_cache(&app).await["misses"], 10);
}

#[tokio::test]
async fn the_history_cache_keeps_to_its_byte_budget() {
    let budget: u64 = 2 << 20;
    let app = spawn_app_with(
        |s| s.market.history_cache_bytes = budget,
        tickcast::models::served(),
    )
    .await;
    for symbol in STOCKS {
        let (status, _) = app
            .post(
                "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
                &json!({"params": {"symbols": [symbol, "^GSPC"], "lookback_days": 20000, "method": "equal_weight"}}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let cache = history_cache(&app).await;
    let bytes = cache["bytes"].as_u64().expect("the cache weighs its bytes");
    assert!(bytes > 0 && bytes <= budget, "{cache}");
    assert!(cache["entries"].as_u64().unwrap() < 11, "{cache}");
}

#[tokio::test]
async fn a_batch_of_models_on_one_symbol_makes_one_upstream_call() {
    let yahoo = MockServer::start().await;
    Mock::given(path_regex("^/v8/finance/chart/AAPL$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(yahoo_chart_of("AAPL", 300), "application/json"),
        )
        .mount(&yahoo)
        .await;
    let uri = yahoo.uri();
    let app = spawn_app_with(
        move |s| yahoo_first(s, uri, &[]),
        tickcast::models::served(),
    )
    .await;
    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/batch_predict",
            &json!({"models": ["lstm_predictor", "transformer_predictor", "adaptive_ensemble"], "symbol": "AAPL"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for model in [
        "lstm_predictor",
        "transformer_predictor",
        "adaptive_ensemble",
    ] {
        assert_eq!(body["results"][model]["data_source"], "yfinance", "{body}");
    }
    assert_eq!(yahoo.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_huge_batch_is_refused_at_once_while_others_are_served() {
    let app = spawn_app().await;
    // 125 000 distinct short names: about 930 KB, under the body limit.
    let names: Vec<String> = (0..125_000).map(|i| format!("{i:x}")).collect();
    let body = json!({ "models": names });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let batch = client
        .post(app.url("/api/enhanced_ml_models/batch_predict"))
        .json(&body)
        .send();
    let polls = async {
        let mut answered = 0;
        for _ in 0..20 {
            let r = client.get(app.url("/healthz")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            answered += 1;
        }
        answered
    };
    let (batch, answered) = tokio::join!(batch, polls);
    let (status, body) = crate::helpers::read(batch.expect("answered well within 10 s")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 16"),
        "{body}"
    );
    assert_eq!(answered, 20);
}

#[tokio::test]
async fn made_up_methods_add_no_metric_series() {
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("tickcast_http_requests_total{"))
            .count()
    };
    app.get("/api/catalog/stocks").await;
    let before = series(&app.get_text("/metrics").await);
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        let r = app
            .client
            .request(method, app.url("/api/catalog/stocks"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }
    let metrics = app.get_text("/metrics").await;
    assert!(
        !metrics.contains("method=\"M1"),
        "client methods became labels"
    );
    assert!(
        metrics.contains("method=\"other\""),
        "counted under one label"
    );
    // A handful more at most (other tests run concurrently), not 300.
    let after = series(&metrics);
    assert!(after < before + 20, "{before} -> {after} series");
}

#[tokio::test]
async fn subscriptions_are_capped_per_caller_and_in_all() {
    let app = spawn_app_with(
        |s| {
            s.catalog.max_subscriptions_per_caller = 2;
            s.catalog.max_subscribers = 3;
        },
        tickcast::models::served(),
    )
    .await;
    let subscribe = |user: String, kind: &'static str, id: &'static str| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url("/api/catalog/subscribe"))
                .header("x-user-id", user)
                .json(&json!({"type": kind, "id": id}))
                .send()
                .await
                .unwrap();
            crate::helpers::read(r).await
        }
    };
    for user in ["u1", "u2", "u3"] {
        let (status, body) = subscribe(user.into(), "model", "lstm_predictor").await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = subscribe("u4".into(), "model", "lstm_predictor").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("subscriptions_full")),
        "{body}"
    );
    subscribe("u1".into(), "model", "adaptive_ensemble").await;
    let (status, body) = subscribe("u1".into(), "model", "transformer_predictor").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("too_many_subscriptions")),
        "{body}"
    );
    let (_, subs) = app.get_as("u1", "/api/catalog/subscriptions").await;
    assert_eq!(
        subs["subscriptions"]["models"],
        json!(["adaptive_ensemble", "lstm_predictor"])
    );
}

/// A backtest whose fits take seconds: the LSTM trained on each block.
fn slow_backtest() -> Value {
    json!({"model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "2y",
           "params": {"fit": "series", "epochs": 200, "retrain_every": 5}})
}

/// Retries a quick backtest for `within`; whether one was admitted.
async fn quick_backtest_admitted(app: &TestApp, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        let (status, body) = app
            .post(
                "/api/catalog/backtest",
                &json!({"model_id": "transformer_predictor", "stock_symbol": "MSFT", "period": "3mo"}),
            )
            .await;
        match status {
            200 => return true,
            503 => assert_eq!(body["code"], "busy", "{body}"),
            other => panic!("{other}: {body}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn one_backtest_at_a_time(timeout_secs: u64) -> TestApp {
    spawn_app_with(
        move |s| {
            s.server.request_timeout_secs = timeout_secs;
            s.backtest.time_budget_secs = timeout_secs.min(25);
            s.models.fit_time_budget_secs = timeout_secs.min(10);
            s.backtest.concurrency = 1;
            s.backtest.queue = 0;
        },
        tickcast::models::served(),
    )
    .await
}

#[tokio::test]
async fn a_disconnected_backtest_stops_and_frees_its_slot() {
    let app = one_backtest_at_a_time(30).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let gone = impatient
        .post(app.url("/api/catalog/backtest"))
        .json(&slow_backtest())
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up first");
    assert!(
        quick_backtest_admitted(&app, Duration::from_secs(5)).await,
        "the abandoned walk kept its slot"
    );
}

#[tokio::test]
async fn a_timed_out_backtest_stops_and_frees_its_slot() {
    let app = one_backtest_at_a_time(2).await;
    let (status, body) = app.post("/api/catalog/backtest", &slow_backtest()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        quick_backtest_admitted(&app, Duration::from_secs(5)).await,
        "the timed-out walk kept its slot"
    );
}

#[test]
fn a_work_budget_longer_than_the_request_timeout_is_refused() {
    use tickcast::config::{CliOverrides, Settings};
    let dir = tempfile::tempdir().unwrap();
    for (key, section) in [
        ("time_budget_secs = 31", "backtest"),
        ("fit_time_budget_secs = 31", "models"),
    ] {
        std::fs::write(
            dir.path().join("default.toml"),
            format!("[server]\nrequest_timeout_secs = 30\n[{section}]\n{key}\n"),
        )
        .unwrap();
        let err = Settings::load_from(dir.path(), true, &CliOverrides::default(), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(section) && err.contains("request_timeout_secs"),
            "{err}"
        );
    }
}

#[test]
fn an_ensemble_fit_stops_at_its_budget() {
    use tickcast::models::ensemble::predictor::{blend, EnsembleParams};
    use tickcast::models::{Budget, ModelError};
    let closes = crate::helpers::embedded_closes("AAPL");
    let spent = Budget::unlimited().within(Duration::ZERO);
    let err = blend(
        &closes[closes.len() - 500..],
        &EnsembleParams::default(),
        &spent,
    )
    .unwrap_err();
    assert!(matches!(err, ModelError::OutOfTime(_)), "{err}");
    let (cancelled, guard) = Budget::cancellable();
    drop(guard);
    let err = blend(
        &closes[closes.len() - 500..],
        &EnsembleParams::default(),
        &cancelled,
    )
    .unwrap_err();
    assert!(matches!(err, ModelError::Cancelled(_)), "{err}");
}

#[tokio::test]
async fn a_burst_of_quote_requests_spends_no_more_upstream_requests_than_the_quota() {
    let yahoo = yahoo_answering(5).await;
    let uri = yahoo.uri();
    let app = spawn_app_with(
        move |s| {
            yahoo_first(s, uri, &[tickcast::config::ProviderName::Local]);
            s.yahoo.quota = tickcast::config::QuotaSettings {
                per_minute: Some(20),
                ..Default::default()
            };
            s.market.rate_limit_max_wait_ms = 0;
        },
        tickcast::models::served(),
    )
    .await;
    let requests = (0..4).map(|batch| {
        let symbols: Vec<String> = (0..500).map(|i| format!("Q{batch}X{i}")).collect();
        let app = &app;
        async move {
            app.post(
                "/api/production_api/portfolio_data",
                &json!({ "symbols": symbols }),
            )
            .await
        }
    });
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, 200, "{body}");
    }
    let sent = yahoo.received_requests().await.unwrap().len();
    assert!(sent <= 20, "{sent} requests reached Yahoo on a quota of 20");
    assert!(sent > 0);
}

#[tokio::test]
async fn failed_admin_tokens_are_limited_per_client() {
    let app = spawn_app_with(
        |s| {
            s.admin_token = secrecy::SecretString::from("right-token");
            s.auth.admin_failures_per_minute = 3;
        },
        tickcast::models::served(),
    )
    .await;
    let attempt = |token: &'static str| {
        let app = &app;
        async move {
            let r = app
                .client
                .get(app.url("/api/admin/market_data_provider"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.headers().get("retry-after").is_some(),
            )
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("guess").await, (401, false));
    }
    assert_eq!(attempt("guess").await, (429, true));
    // Refused before the token is compared: a right guess is no better.
    assert_eq!(attempt("right-token").await, (429, true));
}

#[tokio::test]
async fn prices_whose_returns_overflow_are_refused_naming_the_index() {
    let app = spawn_app().await;
    let closes: Vec<f64> = (0..200)
        .map(|i| if i % 2 == 0 { 1e308 } else { 1e300 })
        .collect();
    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/predict/adaptive_ensemble",
            &json!({ "price_data": closes }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("price_data[0]"),
        "{body}"
    );
    let jumps: Vec<f64> = (0..200)
        .map(|i| if i == 150 { 5e6 } else { 100.0 })
        .collect();
    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/predict/lstm_predictor",
            &json!({ "price_data": jumps }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("price_data[150]"),
        "{body}"
    );
}

#[tokio::test]
async fn every_model_answers_the_most_extreme_series_accepted_without_a_fault() {
    let app = spawn_app().await;
    let n = 300;
    let cases: [(&str, Vec<f64>); 5] = [
        ("flat", vec![42.0; n]),
        (
            "sub-cent",
            (0..n).map(|i| 1e-8 * (1.0 + (i % 7) as f64)).collect(),
        ),
        (
            "huge",
            (0..n).map(|i| 1e12 / (1.0 + (i % 5) as f64)).collect(),
        ),
        (
            "thousandfold swings",
            (0..n)
                .map(|i| if i % 2 == 0 { 1.0 } else { 999.0 })
                .collect(),
        ),
        (
            "one spike",
            (0..n)
                .map(|i| if i == n / 2 { 900.0 } else { 1.0 })
                .collect(),
        ),
    ];
    for (case, closes) in cases {
        for model in [
            "lstm_predictor",
            "transformer_predictor",
            "adaptive_ensemble",
        ] {
            let (status, body) = app
                .post(
                    &format!("/api/enhanced_ml_models/predict/{model}"),
                    &json!({ "price_data": closes }),
                )
                .await;
            assert!(
                status == 200 || status == 422,
                "{model} on {case}: {status} {body}"
            );
            if status == 200 {
                let price = body["predicted_price"].as_f64().unwrap();
                assert!(
                    price.is_finite() && price > 0.0,
                    "{model} on {case}: {body}"
                );
            }
        }
        let (status, body) = app
            .post(
                "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
                &json!({ "price_data": { "A": closes, "B": crate::helpers::embedded_closes("KO")[..n].to_vec() },
                         "params": {"method": "min_variance"} }),
            )
            .await;
        assert!(
            status == 200 || status == 422,
            "optimizer on {case}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once_and_finishes_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.server.header_read_timeout_secs = 30;
    settings.server.metrics_address = "127.0.0.1:0".into();
    let app = tickcast::Application::build_with(settings, test_registry())
        .await
        .unwrap();
    let address = app.local_addr().unwrap();
    let metrics = app.metrics_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let _silent = TcpStream::connect(address).await.unwrap();
    let mut half = TcpStream::connect(address).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let slow = reqwest::Client::new()
        .post(format!("http://{address}/api/enhanced_ml_models/predict/mean_drift"))
        .json(&json!({"price_data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "params": {"sleep_ms": 1500}}))
        .send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(finished.is_ok(), "shutdown waited for silent connections");
    assert!(started.elapsed() < Duration::from_secs(10));
    let slow = slow
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(slow.status(), 200);
    assert!(
        TcpStream::connect(metrics).await.is_err(),
        "the metrics listener stopped with the rest"
    );
}

#[tokio::test]
async fn every_symbol_that_cannot_be_fetched_is_named() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
            &json!({"params": {"symbols": ["AAPL", "NOPE1", "MSFT", "NOPE2"]}}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("NOPE1") && error.contains("NOPE2"),
        "{error}"
    );
    assert!(!error.contains("AAPL:"), "{error}");
}

/// Runs the built binary with `args` in `dir`, with `env` added.
fn tickcast(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tickcast"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("ENVIRONMENT")
        .env("TICKCAST_MARKET__PROVIDERS", "[\"local\"]")
        .env(
            "TICKCAST_MODELS__DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/models"),
        );
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

#[test]
fn a_bad_api_key_entry_exits_with_the_configuration_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tickcast.toml"),
        "[auth]\napi_keys = [{ owner = \"alice\", sha256 = \"not-hex\" }]\n",
    )
    .unwrap();
    let out = tickcast(
        dir.path(),
        &["--config", "tickcast.toml", "--port", "0"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auth.api_keys[0]") && stderr.contains("64 hexadecimal"),
        "{stderr}"
    );
}

#[test]
fn the_in_process_demo_leaves_nothing_in_the_temp_directory() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let out = tickcast(
        dir.path(),
        &["demo", "--in-process"],
        &[("TMPDIR", temp.to_str().unwrap()), ("RUST_LOG", "error")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&temp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
