//! `tickcast demo`: the legacy demo's scenarios, run over HTTP against a
//! service (a running one, or one started in this process on local data),
//! printed as a readable report.

use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::{json, Value};

/// The five stocks of the optimiser and quote scenarios.
pub const STOCKS: [&str; 5] = ["AAPL", "MSFT", "JNJ", "KO", "XOM"];
const PREDICTORS: [&str; 3] = [
    "lstm_predictor",
    "transformer_predictor",
    "adaptive_ensemble",
];
const METHODS: [&str; 4] = ["equal_weight", "min_variance", "max_sharpe", "risk_parity"];

/// How the scenarios went.
#[derive(Debug, Default)]
pub struct Outcome {
    pub passed: Vec<String>,
    pub failed: Vec<(String, String)>,
}

struct Client {
    base: String,
    http: reqwest::Client,
    progress: bool,
}

impl Client {
    /// Calls `path` (POST when `body` is given) and returns the JSON body; a
    /// spinner shows while a call takes longer than a second.
    async fn call(&self, label: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base, path);
        let request = match &body {
            Some(b) => self.http.post(&url).json(b),
            None => self.http.get(&url),
        };
        let spinner = self.progress.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message(label.to_string());
            bar
        });
        let started = Instant::now();
        let send = request.send();
        tokio::pin!(send);
        let response = loop {
            tokio::select! {
                r = &mut send => break r,
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if let Some(bar) = spinner.as_ref().filter(|_| started.elapsed() > Duration::from_secs(1)) {
                        bar.tick();
                    }
                }
            }
        };
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        let response = response.with_context(|| format!("{url}: no answer"))?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .with_context(|| format!("{url}: not JSON"))?;
        if !status.is_success() {
            anyhow::bail!(
                "{url}: {status}: {}",
                value["error"].as_str().unwrap_or("(no error message)")
            );
        }
        Ok(value)
    }
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{:+.3} %", x * 100.0))
}

fn share(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{:.3} %", x * 100.0))
}

fn num(v: &Value, decimals: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{x:.decimals$}"))
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// Runs every scenario against `base` (e.g. `http://127.0.0.1:8080`),
/// writing the report to `out`. A failed scenario is reported and the
/// others still run.
pub async fn run(base: &str, out: &mut dyn Write, progress: bool) -> anyhow::Result<Outcome> {
    let client = Client {
        base: base.trim_end_matches('/').to_string(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
        progress,
    };
    let mut outcome = Outcome::default();
    writeln!(out, "tickcast demo against {}\n", client.base)?;
    // Each scenario's section, timed; a failure is reported and the rest run.
    let mut report = |name: &str, started: Instant, result: anyhow::Result<String>| {
        match result {
            Ok(text) => {
                writeln!(
                    out,
                    "== {name} ({:.2} s)\n{text}",
                    started.elapsed().as_secs_f64()
                )?;
                outcome.passed.push(name.to_string());
            }
            Err(e) => {
                writeln!(out, "== {name}: FAILED: {e:#}\n")?;
                outcome.failed.push((name.to_string(), format!("{e:#}")));
            }
        }
        anyhow::Ok(())
    };
    let started = Instant::now();
    report("health", started, health(&client).await)?;
    let started = Instant::now();
    report("portfolio data", started, quotes(&client).await)?;
    let started = Instant::now();
    report("predictions", started, predictions(&client).await)?;
    let started = Instant::now();
    report("batch prediction", started, batch(&client).await)?;
    let started = Instant::now();
    report("portfolio optimiser", started, optimiser(&client).await)?;
    let started = Instant::now();
    report("backtest", started, backtest(&client).await)?;
    writeln!(
        out,
        "{} scenarios passed, {} failed",
        outcome.passed.len(),
        outcome.failed.len()
    )?;
    Ok(outcome)
}

async fn health(c: &Client) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let h = c.call("health", "/api/production_api/health", None).await?;
        writeln!(
            out,
            "status {}, environment {}, providers tried in order: {}",
            h["status"].as_str().unwrap_or("?"),
            h["health"]["environment"].as_str().unwrap_or("?"),
            h["health"]["provider_priority"]
        )?;
        let mut t = table(&["provider", "success rate", "calls", "breaker"]);
        if let Some(metrics) = h["health"]["performance_metrics"].as_object() {
            for (name, m) in metrics {
                t.add_row(vec![
                    name.clone(),
                    format!("{} %", num(&m["success_rate"], 1)),
                    m["total_calls"].to_string(),
                    m["circuit_breaker_state"]
                        .as_str()
                        .unwrap_or("?")
                        .to_string(),
                ]);
            }
        }
        writeln!(out, "{t}")?;
    }
    Ok(out)
}

async fn quotes(c: &Client) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let body = json!({ "symbols": STOCKS });
        let q = c
            .call("quotes", "/api/production_api/portfolio_data", Some(body))
            .await?;
        let mut t = table(&["symbol", "price", "change", "as of", "provider"]);
        for s in STOCKS {
            let p = &q["portfolio_data"][s];
            t.add_row(vec![
                s.to_string(),
                num(&p["price"], 2),
                format!("{} %", num(&p["change_pct"], 2)),
                p["timestamp"]
                    .as_str()
                    .unwrap_or("-")
                    .chars()
                    .take(10)
                    .collect(),
                p["provider"].as_str().unwrap_or("-").to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(out)
}

async fn predictions(c: &Client) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let mut t = table(&[
            "model",
            "last close",
            "forecast",
            "next close",
            "confidence",
            "as of",
            "time",
        ]);
        for model in PREDICTORS {
            let started = Instant::now();
            let p = c
                .call(
                    &format!("{model} on AAPL"),
                    &format!("/api/enhanced_ml_models/predict/{model}"),
                    Some(json!({ "symbol": "AAPL" })),
                )
                .await?;
            t.add_row(vec![
                model.to_string(),
                num(&p["current_price"], 2),
                pct(&p["predicted_return"]),
                num(&p["predicted_price"], 2),
                num(&p["confidence"], 3),
                p["as_of"].as_str().unwrap_or("-").to_string(),
                format!("{:.0} ms", started.elapsed().as_secs_f64() * 1000.0),
            ]);
        }
        writeln!(out, "AAPL, next trading day:\n{t}")?;
    }
    Ok(out)
}

async fn batch(c: &Client) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let body = json!({ "models": PREDICTORS, "symbol": "MSFT" });
        let b = c
            .call(
                "batch on MSFT",
                "/api/enhanced_ml_models/batch_predict",
                Some(body),
            )
            .await?;
        let mut t = table(&["model", "forecast", "confidence"]);
        for model in PREDICTORS {
            let r = &b["results"][model];
            let forecast = match r["error"].as_str() {
                Some(e) => format!("error: {e}"),
                None => pct(&r["predicted_return"]),
            };
            t.add_row(vec![model.to_string(), forecast, num(&r["confidence"], 3)]);
        }
        writeln!(out, "MSFT, all predictors in one request:\n{t}")?;
    }
    Ok(out)
}

async fn optimiser(c: &Client) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let mut header = vec!["method"];
        header.extend(STOCKS);
        header.extend(["daily vol", "daily Sharpe"]);
        let mut t = table(&header);
        for method in METHODS {
            let body = json!({ "params": { "symbols": STOCKS, "method": method } });
            let o = c
                .call(
                    method,
                    "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer",
                    Some(body),
                )
                .await?;
            let mut row = vec![method.to_string()];
            row.extend(STOCKS.iter().map(|s| num(&o["allocation"][s], 3)));
            row.push(share(&o["expected_volatility"]));
            row.push(num(&o["sharpe_ratio"], 3));
            t.add_row(row);
        }
        writeln!(
            out,
            "Weights of {} from their daily closes:\n{t}",
            STOCKS.join(", ")
        )?;
    }
    Ok(out)
}

async fn backtest(c: &Client) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let body = json!({ "model_id": "lstm_predictor", "stock_symbol": "AAPL", "period": "1y" });
        let b = c
            .call("backtest", "/api/catalog/backtest", Some(body))
            .await?;
        let r = &b["backtest_result"];
        let mut t = table(&["", "total return", "volatility", "Sharpe", "max drawdown"]);
        t.add_row(vec![
            "lstm_predictor, long/flat".to_string(),
            pct(&r["total_return"]),
            share(&r["annual_volatility"]),
            num(&r["sharpe_ratio"], 2),
            share(&r["max_drawdown"]),
        ]);
        let bh = &r["benchmark"];
        t.add_row(vec![
            "buy and hold".to_string(),
            pct(&bh["total_return"]),
            share(&bh["annual_volatility"]),
            num(&bh["sharpe_ratio"], 2),
            share(&bh["max_drawdown"]),
        ]);
        writeln!(
            out,
            "AAPL {} to {}, {} trades, 10 bps each:\n{t}",
            r["first_day"].as_str().unwrap_or("?"),
            r["last_day"].as_str().unwrap_or("?"),
            r["trades"]
        )?;
    }
    Ok(out)
}
