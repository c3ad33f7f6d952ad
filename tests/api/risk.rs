//! `POST /api/risk/var` over HTTP: the answer's shape for every method and
//! level, the figures of the hand-computed reference when the caller sends
//! its closes, symbols priced from the embedded data, and a 4xx with the
//! contract's body for every bad input.

use serde_json::{json, Value};

use crate::helpers::{embedded_closes, spawn_app};

const URL: &str = "/api/risk/var";
const METHODS: [&str; 4] = [
    "historical",
    "parametric",
    "cornish_fisher",
    "filtered_historical",
];

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/reference/fixtures/var_{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn last(symbol: &str, n: usize) -> Vec<f64> {
    let closes = embedded_closes(symbol);
    closes[closes.len() - n..].to_vec()
}

fn assert_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn symbols_and_weights_answer_every_method_and_level() {
    let app = spawn_app().await;
    let body = json!({"symbols": ["AAPL", "MSFT", "JNJ"], "weights": [0.5, 0.3, 0.2]});
    let (status, resp) = app.post(URL, &body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["success"], true);
    assert_eq!(resp["data_source"], "local");
    assert!(resp["as_of"].is_string(), "{resp}");
    assert_eq!(resp["lookback_days"], 1000);
    assert_eq!(resp["horizon_days"], 1);
    assert_eq!(resp["levels"], json!(["0.95", "0.99"]));
    for method in METHODS {
        assert!(resp["horizon_method"][method].is_string(), "{method}");
        for level in ["0.95", "0.99"] {
            let r = &resp["results"][method][level];
            let (var, cvar) = (r["var"].as_f64().unwrap(), r["cvar"].as_f64().unwrap());
            assert!(
                var > 0.0 && var < 0.2 && cvar >= var,
                "{method} {level}: {r}"
            );
            let sum: f64 = r["contributions"]
                .as_object()
                .unwrap()
                .values()
                .map(|x| x.as_f64().unwrap())
                .sum();
            assert!(
                (sum - var).abs() < 1e-12,
                "{method} {level}: {sum} vs {var}"
            );
            assert_eq!(r["marginal"].as_object().unwrap().len(), 3);
            let b = &resp["backtest"][method][level];
            assert_eq!(b["days"], 500, "{b}");
            assert!(b["exceedances"].as_u64().is_some());
            let expected = b["expected"].as_f64().unwrap();
            let p = if level == "0.95" { 0.05 } else { 0.01 };
            assert!((expected - 500.0 * p).abs() < 1e-9);
            for key in ["kupiec_p_value", "christoffersen_p_value"] {
                let v = b[key].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&v), "{key} {v}");
            }
        }
        // A higher level never has a smaller VaR.
        assert!(
            resp["results"][method]["0.99"]["var"].as_f64()
                >= resp["results"][method]["0.95"]["var"].as_f64()
        );
    }
    assert_eq!(
        resp["volatility_model"]["model"], "garch",
        "{}",
        resp["volatility_model"]
    );
    assert_eq!(resp["backtest_window"]["rolling_window"], 1000);
    assert!(resp["backtest_window"]["first_date"].is_string());
    assert_eq!(resp["window"]["last_date"], resp["as_of"]);
}

#[tokio::test]
async fn price_data_gives_the_reference_figures() {
    let app = spawn_app().await;
    let doc = fixture("sp5");
    let weights: serde_json::Map<String, Value> = doc["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .zip(doc["weights"].as_array().unwrap())
        .map(|(s, w)| (s.as_str().unwrap().to_string(), w.clone()))
        .collect();
    let body = json!({
        "price_data": doc["closes"], "weights": weights, "levels": doc["levels"],
        "horizon_days": 10, "lookback_days": 1000, "backtest_days": 500,
    });
    let (status, resp) = app.post(URL, &body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["data_source"], "request");
    let expected = &doc["horizons"]["10"]["results"];
    for method in ["historical", "parametric", "cornish_fisher"] {
        for level in ["0.95", "0.975", "0.99"] {
            for key in ["var", "cvar"] {
                let got = resp["results"][method][level][key].as_f64().unwrap();
                let want = expected[method][level][key].as_f64().unwrap();
                assert!(
                    (got - want).abs() <= 1e-10 * want.abs(),
                    "{method} {level} {key}: {got} vs {want}"
                );
            }
            let got = resp["results"][method][level]["contributions"]["JPM"]
                .as_f64()
                .unwrap();
            let want = expected[method][level]["contributions"]["JPM"]
                .as_f64()
                .unwrap();
            assert!((got - want).abs() <= 1e-10 * expected[method][level]["var"].as_f64().unwrap());
        }
    }
    let tests = &doc["backtest"]["results"];
    for method in ["historical", "parametric", "cornish_fisher"] {
        for level in ["0.95", "0.975", "0.99"] {
            assert_eq!(
                resp["backtest"][method][level]["exceedances"],
                tests[method][level]["exceedances"]
            );
        }
    }
}

#[tokio::test]
async fn lookback_is_clamped_to_the_history_and_backtest_zero_skips_it() {
    let app = spawn_app().await;
    let body = json!({
        "price_data": {"AAPL": last("AAPL", 301), "XOM": last("XOM", 400)},
        "weights": {"AAPL": 0.6, "XOM": 0.4}, "methods": ["historical", "parametric"],
        "levels": [0.9], "backtest_days": 0,
    });
    let (status, resp) = app.post(URL, &body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["lookback_days_requested"], 1000);
    assert_eq!(resp["lookback_days"], 300);
    assert!(resp.get("backtest").is_none(), "{resp}");
    assert!(resp.get("volatility_model").is_none());
    assert_eq!(resp["results"].as_object().unwrap().len(), 2);
    assert!(
        resp["results"]["historical"]["0.9"]["var"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[tokio::test]
async fn shorts_are_allowed_when_the_weights_sum_to_one() {
    let app = spawn_app().await;
    let body = json!({"symbols": ["MSFT", "KO"], "weights": [1.5, -0.5], "backtest_days": 100, "lookback_days": 250});
    let (status, resp) = app.post(URL, &body).await;
    assert_eq!(status, 200, "{resp}");
    let c = &resp["results"]["parametric"]["0.99"]["contributions"];
    assert!(
        c["KO"].as_f64().is_some() && c["MSFT"].as_f64().unwrap() > 0.0,
        "{c}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_the_contracts_body() {
    let app = spawn_app().await;
    let prices = json!({"AAPL": last("AAPL", 700), "MSFT": last("MSFT", 700)});
    let cases = [
        ("missing weights", json!({"symbols": ["AAPL", "MSFT"]})),
        ("no portfolio at all", json!({"weights": [0.5, 0.5]})),
        (
            "weights mismatch",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [1.0]}),
        ),
        (
            "weights not summing to 1",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.6]}),
        ),
        (
            "weight for another symbol",
            json!({"symbols": ["AAPL", "MSFT"], "weights": {"AAPL": 0.5, "JNJ": 0.5}}),
        ),
        (
            "weight missing for a symbol",
            json!({"price_data": prices, "weights": {"AAPL": 1.0}}),
        ),
        (
            "weights of the wrong type",
            json!({"symbols": ["AAPL"], "weights": "all"}),
        ),
        (
            "level 1.2",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "levels": [0.95, 1.2]}),
        ),
        (
            "level 0",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "levels": [0.0]}),
        ),
        (
            "levels empty",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "levels": []}),
        ),
        (
            "level twice",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "levels": [0.99, 0.99]}),
        ),
        (
            "too many levels",
            json!({"symbols": ["AAPL"], "weights": [1.0], "levels": [0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98]}),
        ),
        (
            "unknown method",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "methods": ["monte_carlo"]}),
        ),
        (
            "no method",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "methods": []}),
        ),
        (
            "horizon 0",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "horizon_days": 0}),
        ),
        (
            "horizon 251",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "horizon_days": 251}),
        ),
        (
            "horizon negative",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "horizon_days": -1}),
        ),
        (
            "lookback too short",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "lookback_days": 20}),
        ),
        (
            "lookback too long",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "lookback_days": 100000}),
        ),
        (
            "backtest too long",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "backtest_days": 100000}),
        ),
        (
            "unknown field",
            json!({"symbols": ["AAPL", "MSFT"], "weights": [0.5, 0.5], "confidence": 0.99}),
        ),
        ("symbols empty", json!({"symbols": [], "weights": []})),
        (
            "symbol twice",
            json!({"symbols": ["AAPL", "AAPL"], "weights": [0.5, 0.5]}),
        ),
        (
            "symbol missing from price_data",
            json!({"price_data": prices, "symbols": ["AAPL", "JNJ"], "weights": [0.5, 0.5]}),
        ),
        (
            "price_data not an object",
            json!({"price_data": [1.0, 2.0], "weights": [1.0]}),
        ),
        (
            "a bad close",
            json!({"price_data": {"AAPL": [100.0, -1.0, 101.0]}, "weights": [1.0]}),
        ),
    ];
    for (what, body) in cases {
        let (status, resp) = app.post(URL, &body).await;
        assert_eq!(status, 400, "{what}: {resp}");
        assert_error(status, &resp, 400, "invalid_input");
    }
    let (status, resp) = app
        .post(URL, &json!({"symbols": ["ZZZQ"], "weights": [1.0]}))
        .await;
    assert_error(status, &resp, 404, "unknown_symbol");
}

#[tokio::test]
async fn too_little_history_is_insufficient_data() {
    let app = spawn_app().await;
    let cases = [
        // 80 returns: fewer than the 100 scenarios any method needs.
        json!({"price_data": {"AAPL": last("AAPL", 81)}, "weights": [1.0], "backtest_days": 0}),
        // 150 returns leave too few for ten-day windows... and for a 500-day backtest.
        json!({"price_data": {"AAPL": last("AAPL", 151)}, "weights": [1.0]}),
        json!({"price_data": {"AAPL": last("AAPL", 151)}, "weights": [1.0], "backtest_days": 0, "horizon_days": 60}),
    ];
    for body in cases {
        let (status, resp) = app.post(URL, &body).await;
        assert_error(status, &resp, 422, "insufficient_data");
    }
}
