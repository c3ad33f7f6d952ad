//! The networks' lifecycle over HTTP: versions with their cards, a
//! retraining run gated and registered in the background, an A/B test on
//! live forecasts scored per arm, hand promotion and rollback.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{read, spawn_app_in, wavy_prices, TestApp};
use secrecy::SecretString;
use serde_json::{json, Value};

const ADMIN: &str = "admin-secret-lifecycle";

async fn admin(app: &TestApp, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = match body {
        Some(b) => app.client.post(app.url(path)).json(&b),
        None => app.client.get(app.url(path)),
    };
    read(req.bearer_auth(ADMIN).send().await.unwrap()).await
}

async fn forecast_as(app: &TestApp, caller: &str, symbol: &str) -> Value {
    let resp = app
        .client
        .post(app.url("/api/enhanced_ml_models/predict/lstm_predictor"))
        .header("x-user-id", caller)
        .json(&json!({ "symbol": symbol }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits for a training run to end; its last state.
async fn finished(app: &TestApp, run_id: &str) -> Value {
    for _ in 0..600 {
        let (status, body) = admin(app, &format!("/api/admin/training_runs/{run_id}"), None).await;
        assert_eq!(status, 200, "{body}");
        let state = body["run"]["state"].as_str().unwrap().to_string();
        if !matches!(state.as_str(), "queued" | "running") {
            return body["run"].clone();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("training run {run_id} did not finish in 5 minutes");
}

/// Small, fast runs; every challenger that trains is kept (wide margins)
/// and serves half of the (caller, symbol) pairs.
fn quick_runs(s: &mut tickcast::config::Settings) {
    s.admin_token = SecretString::from(ADMIN);
    s.lifecycle.symbols = vec!["AAPL".into(), "KO".into(), "XOM".into()];
    s.lifecycle.train_years = 2;
    s.lifecycle.max_epochs = 1;
    s.lifecycle.stride = 3;
    s.lifecycle.bootstrap_resamples = 200;
    s.lifecycle.max_rmse_ratio_increase = 1.0;
    s.lifecycle.max_accuracy_drop = 1.0;
    s.ab.share = 0.5;
    s.ab.min_scored = 1_000_000;
    s.data.rescan_secs = 0;
    s.market.history_cache_ttl_secs = 0;
}

#[tokio::test]
async fn versions_list_each_pretrained_champion_with_its_card() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_in(dir, |_| {}, tickcast::models::served()).await;
    let (status, body) = app.get("/api/enhanced_ml_models/versions").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let versions = body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{body}");
    for v in versions {
        assert_eq!(v["state"], "champion");
        assert_eq!(v["promoted_by"], "seed");
        for key in [
            "architecture",
            "training",
            "data",
            "report",
            "test",
            "trained_at",
        ] {
            assert!(!v["card"][key].is_null(), "card lacks {key}: {v}");
        }
        assert!(v["created_at"].is_string());
    }

    let (status, one) = app
        .get("/api/enhanced_ml_models/versions/lstm_predictor")
        .await;
    assert_eq!(status, 200);
    let champion = one["versions"][0]["version"].as_str().unwrap().to_string();
    assert_eq!(one["versions"].as_array().unwrap().len(), 1);
    // Forecasts name the version that made them; no A/B test runs.
    let (status, answer) = app
        .post(
            "/api/enhanced_ml_models/predict/lstm_predictor",
            &json!({"symbol": "AAPL"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["model_version"], champion);
    assert!(answer.get("ab_arm").is_none(), "{answer}");

    let (status, err) = app
        .get("/api/enhanced_ml_models/versions/adaptive_ensemble")
        .await;
    assert_eq!((status, err["code"].as_str()), (404, Some("unknown_model")));
    let (status, body) = app.get("/api/enhanced_ml_models/experiments").await;
    assert_eq!((status, body["experiments"].clone()), (200, json!([])));
}

#[tokio::test]
async fn admin_lifecycle_routes_need_the_token_and_refuse_bad_requests() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_in(dir, quick_runs, tickcast::models::served()).await;
    let retrain = "/api/admin/models/lstm_predictor/retrain";
    let (status, _) = app.post(retrain, &json!({})).await;
    assert_eq!(status, 401);
    let (status, body) = admin(&app, "/api/admin/models/nope/retrain", Some(json!({}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_model"))
    );
    let promote = "/api/admin/models/lstm_predictor/promote";
    let (status, body) = admin(&app, promote, Some(json!({"version": "v-none"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_id")),
        "{body}"
    );
    let (status, body) = admin(&app, promote, Some(json!({"versions": "x"}))).await;
    assert_eq!(status, 400, "{body}");
    let (_, versions) = app
        .get("/api/enhanced_ml_models/versions/lstm_predictor")
        .await;
    let champion = versions["versions"][0]["version"].clone();
    let (status, body) = admin(&app, promote, Some(json!({ "version": champion }))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let rollback = "/api/admin/models/lstm_predictor/rollback";
    let (status, body) = admin(&app, rollback, Some(json!({}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = admin(&app, "/api/admin/training_runs/none", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_id")));
}

#[tokio::test]
async fn a_retrained_challenger_serves_its_share_is_scored_per_arm_and_can_be_promoted_and_rolled_back(
) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let prices = dir.path().join("prices");
    std::fs::create_dir_all(&prices).unwrap();
    let file = prices.join("ZZZ.csv");
    let (text, closes) = wavy_prices(200);
    let last = closes[closes.len() - 1];
    std::fs::write(&file, &text).unwrap();
    let (app, run, seed) = retrained_in(Arc::clone(&dir), |_| {}).await;
    let run_id = run["run_id"].as_str().unwrap().to_string();
    assert_eq!(run["outcome"], "challenger", "{run}");
    assert_eq!(run["epochs_run"], 1);
    let challenger = run["version"].as_str().unwrap().to_string();
    let (_, runs) = admin(&app, "/api/admin/training_runs", None).await;
    assert_eq!(runs["runs"][0]["run_id"], run_id.as_str());

    let (_, versions) = app
        .get("/api/enhanced_ml_models/versions/lstm_predictor")
        .await;
    let listed = versions["versions"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let new = &listed[1];
    assert_eq!(
        (new["version"].as_str(), new["state"].as_str()),
        (Some(challenger.as_str()), Some("challenger"))
    );
    assert_eq!(new["run_id"], run_id.as_str());
    let card = &new["card"];
    assert_eq!(card["version"], challenger.as_str());
    assert_eq!(card["data"]["symbols"], json!(["AAPL", "KO", "XOM"]));
    // The newest year of the embedded closes is held out for the gate.
    assert_eq!(card["data"]["test"], "2021-12-29..2022-12-28");
    assert_eq!(card["training"]["seed"], 7);
    assert_eq!(card["report"]["train_loss"].as_array().unwrap().len(), 1);
    assert!(card["build"].as_str().unwrap().starts_with("tickcast "));
    let gate = &card["gate"];
    assert_eq!(
        (gate["passed"].as_bool(), gate["champion_version"].as_str()),
        (Some(true), Some(seed.as_str()))
    );
    let ratio = &gate["challenger"]["rmse_ratio"];
    assert!(ratio["lower"].as_f64() <= ratio["estimate"].as_f64());
    assert!(gate["samples"].as_u64().unwrap() > 500, "{gate}");

    // Half the callers get the challenger, each always the same arm.
    let mut arms = std::collections::BTreeMap::new();
    for i in 0..40 {
        let caller = format!("caller-{i}");
        let answer = forecast_as(&app, &caller, "ZZZ").await;
        let arm = answer["ab_arm"].as_str().unwrap().to_string();
        let expected = if arm == "challenger" {
            &challenger
        } else {
            &seed
        };
        assert_eq!(answer["model_version"], expected.as_str(), "{answer}");
        assert_eq!(
            forecast_as(&app, &caller, "ZZZ").await["ab_arm"],
            arm.as_str()
        );
        *arms.entry(arm).or_insert(0) += 1;
    }
    assert_eq!(arms.len(), 2, "{arms:?}");
    // A fit to the caller's own closes takes no part in the test.
    let resp = app
        .client
        .post(app.url("/api/enhanced_ml_models/predict/lstm_predictor"))
        .header("x-user-id", "caller-0")
        .json(&json!({"symbol": "ZZZ", "params": {"fit": "series", "epochs": 1}}))
        .send()
        .await
        .unwrap();
    let (status, fitted) = read(resp).await;
    assert_eq!(status, 200, "{fitted}");
    assert!(fitted.get("ab_arm").is_none(), "{fitted}");

    // The next close arrives: each version's forecast is scored apart.
    let next = last * 1.01;
    std::fs::write(
        &file,
        format!("{text}2024-07-19,{next},{next},{next},{next},{next},1000\n"),
    )
    .unwrap();
    let (status, _) = app
        .post(
            "/api/catalog/past_month_return",
            &json!({"symbols": ["ZZZ"]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.get("/api/enhanced_ml_models/experiments").await;
    assert_eq!(status, 200, "{body}");
    let experiment = &body["experiments"][0];
    assert_eq!(experiment["model"], "lstm_predictor");
    assert_eq!(
        (
            experiment["champion"].as_str(),
            experiment["challenger"].as_str()
        ),
        (Some(seed.as_str()), Some(challenger.as_str()))
    );
    assert_eq!(experiment["share"], 0.5);
    for arm in ["champion", "challenger"] {
        let scores = &experiment["arms"][arm];
        assert_eq!(scores["scored"], 1, "{arm}: {scores}");
        let hit = scores["hit_rate"]["estimate"].as_f64().unwrap();
        assert!(hit == 0.0 || hit == 1.0);
        // One forecast has no spread to put an interval on.
        assert!(
            scores["mae"].is_null() && scores["rmse_ratio"].is_null(),
            "{scores}"
        );
    }
    assert_eq!(experiment["significant"], false);

    // Promote by hand: the challenger answers everyone, recorded by whom.
    let (status, body) = admin(
        &app,
        "/api/admin/models/lstm_predictor/promote",
        Some(json!({"version": challenger, "by": "alice"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["champion"]["promoted_by"], "alice");
    assert!(body["champion"]["promoted_at"].is_string());
    let answer = forecast_as(&app, "caller-0", "ZZZ").await;
    assert_eq!(answer["model_version"], challenger.as_str());
    assert!(
        answer.get("ab_arm").is_none(),
        "no challenger left: {answer}"
    );

    // Roll back: the pretrained champion answers again.
    let (status, body) = admin(
        &app,
        "/api/admin/models/lstm_predictor/rollback",
        Some(json!({"by": "bob"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["champion"]["version"], seed.as_str());
    assert_eq!(
        forecast_as(&app, "caller-0", "ZZZ").await["model_version"],
        seed.as_str()
    );
    let (_, versions) = app
        .get("/api/enhanced_ml_models/versions/lstm_predictor")
        .await;
    let states: Vec<_> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].clone())
        .collect();
    assert_eq!(states, [json!("champion"), json!("retired")]);

    // Metrics count runs and versions by state. The recorder is
    // process-wide and other tests retrain the same model at the same
    // time, so the figures are at least this test's own.
    let metrics = app.get_text("/metrics").await;
    let value = |series: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{series} missing from /metrics:\n{metrics}"))
    };
    assert!(
        value("tickcast_training_runs_total{model=\"lstm_predictor\",outcome=\"challenger\"}")
            >= 1.0
    );
    // A gauge another test's registry may have just set: only its presence
    // is this test's.
    value("tickcast_model_versions{model=\"lstm_predictor\",state=\"retired\"}");
    assert!(
        value("tickcast_ab_forecasts_total{model=\"lstm_predictor\",arm=\"challenger\"}") >= 1.0
    );
}

#[tokio::test]
async fn a_restart_after_a_crash_mid_run_finds_the_registry_as_it_was() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut app = spawn_app_in(Arc::clone(&dir), quick_runs, tickcast::models::served()).await;
    let (_, before) = app.get("/api/enhanced_ml_models/versions").await;
    app.begin_shutdown();
    // What a process killed while writing a version leaves: a half-written
    // staging directory, and its run still marked running.
    let registry = dir.path().join("state/registry");
    std::fs::create_dir_all(registry.join(".staging-dead")).unwrap();
    std::fs::write(
        registry.join(".staging-dead/lstm_predictor.safetensors"),
        b"half",
    )
    .unwrap();
    let run = json!([{
        "run_id": "r-1", "model": "lstm_predictor", "state": "running",
        "requested_by": "admin", "requested_at": "2026-12-01T00:00:00Z"
    }]);
    std::fs::write(registry.join("runs.json"), run.to_string()).unwrap();

    let app = spawn_app_in(Arc::clone(&dir), quick_runs, tickcast::models::served()).await;
    let (_, after) = app.get("/api/enhanced_ml_models/versions").await;
    assert_eq!(after["versions"], before["versions"]);
    assert!(!registry.join(".staging-dead").exists());
    let (_, runs) = admin(&app, "/api/admin/training_runs", None).await;
    assert_eq!(runs["runs"][0]["state"], "interrupted", "{runs}");
}

/// Retrains the LSTM once in an app on `dir` under `configure` (on top of
/// quick runs); the app, the finished run and the pretrained version.
async fn retrained_in(
    dir: Arc<tempfile::TempDir>,
    configure: fn(&mut tickcast::config::Settings),
) -> (TestApp, Value, String) {
    let app = spawn_app_in(
        dir,
        |s| {
            quick_runs(s);
            configure(s);
        },
        tickcast::models::served(),
    )
    .await;
    let (_, versions) = app
        .get("/api/enhanced_ml_models/versions/lstm_predictor")
        .await;
    let seed = versions["versions"][0]["version"]
        .as_str()
        .unwrap()
        .to_string();
    // 202 with a run id, then trained, gated and registered.
    let (status, queued) = admin(
        &app,
        "/api/admin/models/lstm_predictor/retrain",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let run = finished(&app, queued["run_id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["run_id"], queued["run_id"]);
    (app, run, seed)
}

async fn retrained(configure: fn(&mut tickcast::config::Settings)) -> (TestApp, Value, String) {
    retrained_in(Arc::new(tempfile::tempdir().unwrap()), configure).await
}

#[tokio::test]
async fn without_an_ab_share_a_version_that_passes_the_gate_is_champion_at_once() {
    let (app, run, seed) = retrained(|s| s.ab.share = 0.0).await;
    assert_eq!(run["outcome"], "champion", "{run}");
    let version = run["version"].as_str().unwrap();
    assert!(run["reason"]
        .as_str()
        .unwrap()
        .starts_with("promoted by the gate"));
    let (_, answer) = app
        .post(
            "/api/enhanced_ml_models/predict/lstm_predictor",
            &json!({"symbol": "AAPL"}),
        )
        .await;
    assert_eq!(answer["model_version"], version);
    let (_, versions) = app
        .get("/api/enhanced_ml_models/versions/lstm_predictor")
        .await;
    let listed = &versions["versions"];
    assert_eq!(
        (listed[0]["version"].as_str(), listed[0]["state"].as_str()),
        (Some(seed.as_str()), Some("retired"))
    );
    assert_eq!(listed[1]["promoted_by"], "gate");
}

#[tokio::test]
async fn a_version_the_gate_refuses_is_retired_and_the_champion_keeps_serving() {
    // No margin at all: the challenger would have to be shown at least as
    // good on both figures, which one epoch on three stocks is not.
    let (app, run, seed) = retrained(|s| {
        s.lifecycle.max_rmse_ratio_increase = 0.0;
        s.lifecycle.max_accuracy_drop = 0.0;
    })
    .await;
    assert_eq!(run["outcome"], "retired", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(reason.starts_with("refused by the gate"), "{reason}");
    let (_, versions) = app
        .get("/api/enhanced_ml_models/versions/lstm_predictor")
        .await;
    let listed = &versions["versions"];
    assert_eq!(listed[0]["state"], "champion");
    assert_eq!(listed[1]["state"], "retired");
    assert_eq!(listed[1]["card"]["gate"]["passed"], false);
    let (_, answer) = app
        .post(
            "/api/enhanced_ml_models/predict/lstm_predictor",
            &json!({"symbol": "AAPL"}),
        )
        .await;
    assert_eq!(answer["model_version"], seed.as_str());
}

#[tokio::test]
async fn the_schedule_retrains_only_with_enough_closes_newer_than_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices");
    std::fs::create_dir_all(&prices).unwrap();
    // 200 closes of 2024, all after the pretrained versions' test years.
    std::fs::write(prices.join("ZZZ.csv"), wavy_prices(200).0).unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.lifecycle.symbols = vec!["ZZZ".into()];
    settings.lifecycle.retrain_min_new_closes = 201;
    let lifecycle = tickcast::startup::lifecycle(&settings).await.unwrap();
    lifecycle.scheduled_retrain().await;
    assert!(
        lifecycle.training_runs().is_empty(),
        "200 new closes, 201 needed"
    );

    settings.lifecycle.retrain_min_new_closes = 200;
    let lifecycle = tickcast::startup::lifecycle(&settings).await.unwrap();
    lifecycle.scheduled_retrain().await;
    let runs = lifecycle.training_runs();
    let models: Vec<_> = runs
        .iter()
        .map(|r| (r.model.as_str(), r.requested_by.as_str()))
        .collect();
    assert_eq!(
        models,
        [
            ("transformer_predictor", "scheduler"),
            ("lstm_predictor", "scheduler")
        ]
    );
    // 200 closes hold no training years: each run fails and registers nothing.
    let mut done = Vec::new();
    for _ in 0..200 {
        done = lifecycle.training_runs();
        if done.iter().all(|r| r.finished_at.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for run in &done {
        assert_eq!(
            run.state,
            tickcast::models::lifecycle::runs::RunState::Failed,
            "{run:?}"
        );
        assert!(
            run.reason.as_deref().unwrap().contains("windows"),
            "{run:?}"
        );
    }
    assert_eq!(lifecycle.versions(None).unwrap().len(), 2);
}
