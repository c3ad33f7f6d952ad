//! `/api/options/price` and `/api/options/implied_volatility` over HTTP:
//! batches valued in order, each bad option refused in place, and a lone
//! bad option refused with the contract's body.

use serde_json::{json, Value};

use crate::helpers::{embedded_closes, spawn_app};

const PRICE: &str = "/api/options/price";
const IMPLIED: &str = "/api/options/implied_volatility";

fn probe_call() -> Value {
    json!({"kind": "call", "spot": 100.0, "strike": 105.0, "expiry_years": 182.0 / 365.0,
           "volatility": 0.25, "rate": 0.05, "dividend_yield": 0.02})
}

#[tokio::test]
async fn a_european_call_is_priced_with_its_greeks_in_market_units() {
    let app = spawn_app().await;
    let (status, body) = app.post(PRICE, &json!({"options": [probe_call()]})).await;
    assert_eq!(status, 200, "{body}");
    let r = &body["results"][0];
    // QuantLib 1.44: 5.509484468018, vega 27.74264118 per 1.0, theta
    // -8.04208022 per year, rho 19.90457706 per 1.0.
    assert!(
        (r["price"].as_f64().unwrap() - 5.509484468018).abs() < 1e-11,
        "{r}"
    );
    assert!((r["delta"].as_f64().unwrap() - 0.4542800440).abs() < 1e-9);
    assert!((r["vega"].as_f64().unwrap() - 0.2774264118).abs() < 1e-9);
    assert!((r["theta"].as_f64().unwrap() - -8.04208022 / 365.0).abs() < 1e-9);
    assert!((r["rho"].as_f64().unwrap() - 0.1990457706).abs() < 1e-9);
    assert_eq!(r["method"], "analytic");
    assert_eq!(r["style"], "european");
    assert!(body["units"]["vega"]
        .as_str()
        .unwrap()
        .contains("volatility point"));
    assert_eq!(
        (body["valued"].as_u64(), body["failed"].as_u64()),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn a_forward_in_place_of_the_spot_gives_the_same_option() {
    let app = spawn_app().await;
    let t: f64 = 182.0 / 365.0;
    let forward = 100.0 * ((0.05_f64 - 0.02) * t).exp();
    let mut on_forward = probe_call();
    on_forward.as_object_mut().unwrap().remove("spot");
    on_forward["forward"] = json!(forward);
    let (status, body) = app.post(PRICE, &json!({"options": [on_forward]})).await;
    assert_eq!(status, 200, "{body}");
    let price = body["results"][0]["price"].as_f64().unwrap();
    assert!((price - 5.509484468018).abs() < 1e-10, "{price}");
}

#[tokio::test]
async fn american_options_by_tree_and_baw() {
    let app = spawn_app().await;
    let put = |method: &str| {
        json!({"kind": "put", "style": "american", "method": method, "spot": 100.0, "strike": 105.0,
               "expiry_years": 182.0 / 365.0, "volatility": 0.25, "rate": 0.05, "dividend_yield": 0.02})
    };
    let (status, body) = app
        .post(PRICE, &json!({"options": [put("binomial"), put("baw")]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (tree, baw) = (&body["results"][0], &body["results"][1]);
    // The dependency notes' probe: our CRR 500 9.154623, QuantLib BAW 9.133083.
    assert!(
        (tree["price"].as_f64().unwrap() - 9.154623).abs() < 1e-6,
        "{tree}"
    );
    assert_eq!(tree["steps"], 500);
    assert!(
        (baw["price"].as_f64().unwrap() - 9.133083).abs() < 1e-6,
        "{baw}"
    );
    assert!(tree["delta"].as_f64().unwrap() < 0.0 && tree["theta"].as_f64().unwrap() < 0.0);
}

#[tokio::test]
async fn a_symbol_gives_the_spot_and_its_realised_or_garch_volatility() {
    let app = spawn_app().await;
    let closes = embedded_closes("AAPL");
    let last = *closes.last().unwrap();
    let on = |source: &str| {
        json!({"kind": "call", "symbol": "AAPL", "volatility_source": source, "strike": last,
               "expiry_years": 0.25, "rate": 0.04})
    };
    let (status, body) = app
        .post(PRICE, &json!({"options": [on("realised"), on("garch")]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let tail = &closes[closes.len() - 253..];
    let returns: Vec<f64> = tail.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let mean = returns.iter().sum::<f64>() / 252.0;
    let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 251.0).sqrt();
    let realised = &body["results"][0];
    assert_eq!(realised["spot"].as_f64().unwrap(), last);
    assert!(
        (realised["volatility"].as_f64().unwrap() - sd * 252f64.sqrt()).abs() < 1e-12,
        "{realised}"
    );
    assert_eq!(realised["underlying"]["symbol"], "AAPL");
    assert_eq!(realised["underlying"]["volatility_source"], "realised");
    assert!(realised["underlying"]["as_of"].is_string());
    let garch = body["results"][1]["volatility"].as_f64().unwrap();
    assert!(garch > 0.05 && garch < 1.5, "{garch}");
    assert_ne!(garch, realised["volatility"].as_f64().unwrap());
}

#[tokio::test]
async fn in_a_batch_each_bad_option_is_refused_in_place() {
    let app = spawn_app().await;
    let mut negative_vol = probe_call();
    negative_vol["volatility"] = json!(-0.2);
    let mut expired = probe_call();
    expired["expiry_years"] = json!(-0.1);
    let mut no_strike = probe_call();
    no_strike.as_object_mut().unwrap().remove("strike");
    let unknown = json!({"kind": "call", "symbol": "NOSUCHSYM", "volatility": 0.2, "strike": 10.0,
                         "expiry_years": 1.0, "rate": 0.0});
    let (status, body) = app
        .post(
            PRICE,
            &json!({"options": [probe_call(), negative_vol, expired, no_strike, unknown]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(results[0]["price"].is_number());
    for (i, field) in [(1, "volatility"), (2, "expiry_years"), (3, "strike")] {
        assert_eq!(results[i]["code"], "invalid_input", "{}", results[i]);
        let error = results[i]["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("options[{i}]")) && error.contains(field),
            "{error}"
        );
    }
    assert_eq!(results[4]["code"], "unknown_symbol", "{}", results[4]);
    assert_eq!(
        (body["valued"].as_u64(), body["failed"].as_u64()),
        (Some(1), Some(4))
    );
}

#[tokio::test]
async fn a_lone_bad_option_or_a_malformed_request_is_a_400_with_the_contracts_body() {
    let app = spawn_app().await;
    let mut american_analytic = probe_call();
    american_analytic["style"] = json!("american");
    american_analytic["method"] = json!("analytic");
    let mut both = probe_call();
    both["forward"] = json!(101.0);
    let mut neither = probe_call();
    neither.as_object_mut().unwrap().remove("spot");
    let mut no_vol = probe_call();
    no_vol.as_object_mut().unwrap().remove("volatility");
    let mut extra = probe_call();
    extra["colour"] = json!("red");
    let mut steps_on_analytic = probe_call();
    steps_on_analytic["steps"] = json!(100);
    let many: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    for body in [
        json!({"options": [american_analytic]}),
        json!({"options": [both]}),
        json!({"options": [neither]}),
        json!({"options": [no_vol]}),
        json!({"options": [extra]}),
        json!({"options": [steps_on_analytic]}),
        json!({"options": []}),
        json!({"options": "call"}),
        json!({"option": [probe_call()]}),
        json!({"options": many}),
    ] {
        let (status, answer) = app.post(PRICE, &body).await;
        assert_eq!(
            status,
            400,
            "{answer} for {}",
            &body.to_string()[..80.min(body.to_string().len())]
        );
        assert_eq!(answer["success"], false);
        assert_eq!(answer["code"], "invalid_input");
        assert!(answer["error"].as_str().unwrap().len() > 10);
    }
}

#[tokio::test]
async fn too_much_tree_work_is_refused_before_any_is_done() {
    let app = spawn_app().await;
    let deep = json!({"kind": "put", "style": "american", "spot": 100.0, "strike": 100.0,
                      "expiry_years": 1.0, "volatility": 0.2, "rate": 0.05, "steps": 10_000});
    let batch: Vec<Value> = (0..40).map(|_| deep.clone()).collect();
    let (status, body) = app.post(PRICE, &json!({"options": batch})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nodes"), "{body}");
}

#[tokio::test]
async fn implied_volatility_round_trips_and_refuses_prices_without_volatility() {
    let app = spawn_app().await;
    let (_, priced) = app.post(PRICE, &json!({"options": [probe_call()]})).await;
    let price = priced["results"][0]["price"].as_f64().unwrap();
    let mut quote = probe_call();
    quote.as_object_mut().unwrap().remove("volatility");
    quote["price"] = json!(price);
    let mut too_dear = quote.clone();
    too_dear["price"] = json!(150.0);
    let mut below = quote.clone();
    below["strike"] = json!(10.0);
    below["price"] = json!(80.0);
    let (status, body) = app
        .post(
            IMPLIED,
            &json!({"options": [quote, too_dear.clone(), below]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let iv = body["results"][0]["implied_volatility"].as_f64().unwrap();
    assert!((iv - 0.25).abs() < 1e-10, "{iv}");
    assert_eq!(body["results"][1]["code"], "infeasible");
    assert!(body["results"][1]["error"]
        .as_str()
        .unwrap()
        .contains("upper bound"));
    assert!(body["results"][2]["error"]
        .as_str()
        .unwrap()
        .contains("lower bound"));
    // Alone, the refusal is the answer: 422 with the reason.
    let (status, body) = app.post(IMPLIED, &json!({"options": [too_dear]})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "infeasible");
    // A volatility is what is solved for, not an input.
    let (status, _) = app.post(IMPLIED, &json!({"options": [probe_call()]})).await;
    assert_eq!(status, 400);
}
