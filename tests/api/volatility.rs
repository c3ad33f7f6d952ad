//! `garch_volatility` over HTTP: the same fits as the python `arch`
//! package (tests/reference/fixtures), by prices or by symbol.

use serde_json::{json, Value};

use crate::helpers::spawn_app;

const URL: &str = "/api/enhanced_ml_models/predict/garch_volatility";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/reference/fixtures/garch_{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[tokio::test]
async fn each_variant_matches_arch_on_the_same_closes() {
    let app = spawn_app().await;
    let reference = fixture("jnj");
    let closes = &reference["closes"];
    for fit in reference["fits"].as_array().unwrap() {
        let spec = &fit["spec"];
        let distribution = if spec["distribution"] == "student_t" {
            "t"
        } else {
            "normal"
        };
        let params = json!({
            "model": spec["model"], "distribution": distribution, "mean": spec["mean"],
            "horizon": reference["horizon"],
        });
        let (status, body) = app
            .post(URL, &json!({"price_data": closes, "params": params}))
            .await;
        assert_eq!(status, 200, "{spec}: {body}");
        for (name, expected) in fit["params"].as_object().unwrap() {
            let got = body["parameters"][name].as_f64().unwrap();
            assert!(
                close(got, expected.as_f64().unwrap(), 1e-3),
                "{spec} {name}: {got} vs {expected}"
            );
            assert!(body["std_errors"][name].as_f64().unwrap() > 0.0);
        }
        assert!(close(
            body["log_likelihood"].as_f64().unwrap(),
            fit["loglikelihood"].as_f64().unwrap(),
            1e-3
        ));
        // arch's variance forecasts are in squared percent per period.
        let vols = body["volatility_forecast"].as_array().unwrap();
        assert_eq!(vols.len(), 10);
        for (v, variance) in vols
            .iter()
            .zip(fit["variance_forecasts"].as_array().unwrap())
        {
            let expected = variance.as_f64().unwrap().sqrt() / 100.0;
            let got = v.as_f64().unwrap();
            assert!(
                (got / expected - 1.0).abs() < 1e-4,
                "{spec}: {got} vs {expected}"
            );
        }
        let annual = body["annualized_volatility_forecast"][0].as_f64().unwrap();
        assert!((annual - vols[0].as_f64().unwrap() * 252f64.sqrt()).abs() < 1e-12);
        let persistence = body["persistence"].as_f64().unwrap();
        assert!(close(
            persistence,
            fit["persistence"].as_f64().unwrap(),
            1e-3
        ));
        let half_life = body["half_life"].as_f64().unwrap();
        assert!(close(half_life, 0.5f64.ln() / persistence.ln(), 1e-9));
    }
}

#[tokio::test]
async fn by_symbol_it_fits_the_last_thousand_closes_and_is_listed() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(URL, &json!({"symbol": "XOM", "params": {"horizon": 5}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["observations"].as_u64(), body["data_source"].as_str()),
        (Some(999), Some("local"))
    );
    assert_eq!(body["volatility_forecast"].as_array().unwrap().len(), 5);
    assert_eq!(
        (body["model"].as_str(), body["distribution"].as_str()),
        (Some("garch"), Some("normal"))
    );
    assert!(body["parameters"].get("gamma").is_none() && body["parameters"].get("nu").is_none());
    let (_, list) = app.get("/api/enhanced_ml_models/list").await;
    assert!(list["enhanced_models"]
        .as_array()
        .unwrap()
        .contains(&json!("garch_volatility")));
    let (_, catalog) = app.get("/api/catalog/enhanced_models").await;
    let listed = catalog["enhanced_models"].as_array().unwrap();
    assert!(listed
        .iter()
        .any(|m| m["id"] == "garch_volatility" && m["name"] == "GARCH Volatility"));
}

#[tokio::test]
async fn bad_params_and_short_series_are_refused_clearly() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"symbol": "AAPL", "params": {"model": "egarch"}}),
            400,
            "params.model",
        ),
        (
            json!({"symbol": "AAPL", "params": {"distribution": "cauchy"}}),
            400,
            "params.distribution",
        ),
        (
            json!({"symbol": "AAPL", "params": {"horizon": 251}}),
            400,
            "params.horizon",
        ),
        (
            json!({"symbol": "AAPL", "params": {"mean": "ar"}}),
            400,
            "params.mean",
        ),
        (
            json!({"price_data": (1..=60).map(|i| 100.0 + f64::from(i % 7)).collect::<Vec<_>>()}),
            422,
            "100",
        ),
    ];
    for (request, status, says) in cases {
        let (got, body) = app.post(URL, &request).await;
        assert_eq!(got, status, "{request}: {body}");
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
    // A volatility model does not trade a signal: backtests refuse it plainly.
    let (status, body) = app
        .post(
            "/api/catalog/backtest",
            &json!({"model_id": "garch_volatility", "stock_symbol": "AAPL"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("cannot be backtested"));
}
