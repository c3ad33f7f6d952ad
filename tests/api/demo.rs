//! `tickcast demo` against a running service.

use crate::helpers::{spawn_app, spawn_app_with, test_registry};

#[tokio::test]
async fn the_demo_runs_every_scenario_against_the_service() {
    let app = spawn_app().await;
    let mut report = Vec::new();
    let outcome = tickcast::demo::run(&app.address, &mut report, false)
        .await
        .unwrap();
    let report = String::from_utf8(report).unwrap();
    assert!(outcome.failed.is_empty(), "{report}");
    for section in [
        "== health",
        "== portfolio data",
        "== predictions",
        "== batch prediction",
        "== portfolio optimiser",
        "== backtest",
        "6 scenarios passed, 0 failed",
    ] {
        assert!(report.contains(section), "{section} missing:\n{report}");
    }
    // Real figures from the service, not placeholders.
    for model in [
        "lstm_predictor",
        "transformer_predictor",
        "adaptive_ensemble",
        "risk_parity",
    ] {
        assert!(report.contains(model), "{model}");
    }
    assert!(report.contains("125.67"), "AAPL's last embedded close");
}

#[tokio::test]
async fn a_failing_scenario_is_reported_and_the_rest_still_run() {
    // This service serves neither the networks nor the optimiser.
    let app = spawn_app_with(|_| {}, test_registry()).await;
    let mut report = Vec::new();
    let outcome = tickcast::demo::run(&app.address, &mut report, false)
        .await
        .unwrap();
    let report = String::from_utf8(report).unwrap();
    let failed: Vec<&str> = outcome.failed.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        failed.contains(&"predictions") && failed.contains(&"backtest"),
        "{report}"
    );
    assert!(outcome.passed.contains(&"portfolio data".to_string()));
    assert!(
        report.contains("FAILED: ") && report.contains("unknown model"),
        "{report}"
    );
}
