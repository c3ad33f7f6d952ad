//! Crypto pairs end to end: `BTC-USD` quoted, its history read, predicted,
//! optimised beside stocks and backtested, from the embedded dataset
//! offline and from Binance and Yahoo mocks replaying their payloads (the
//! embedded dataset's real closes in each API's own shape), with figures
//! annualised on each asset class's calendar.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tickcast::config::ProviderName;
use wiremock::matchers::{path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{spawn_app, spawn_app_with, yahoo_chart_of, TestApp};

const PREDICT: &str = "/api/enhanced_ml_models/predict";

/// Binance's klines endpoint over the embedded BTC-USD and ETH-USD closes:
/// the newest `limit` klines opening at or before `endTime`, as Binance
/// pages them; tickers from the newest two closes; unknown pairs -1121.
struct BinanceReplay {
    calls: Arc<AtomicUsize>,
}

impl Respond for BinanceReplay {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let query: std::collections::HashMap<String, String> =
            request.url.query_pairs().into_owned().collect();
        let series = match query.get("symbol").map(String::as_str) {
            Some("BTCUSDT") => "BTC-USD",
            Some("ETHUSDT") => "ETH-USD",
            _ => {
                return ResponseTemplate::new(400)
                    .set_body_string(r#"{"code":-1121,"msg":"Invalid symbol."}"#)
            }
        };
        let table = tickcast::market::dataset::embedded_crypto().unwrap();
        let bars = &table[series];
        if request.url.path() == "/api/v3/ticker/24hr" {
            let (prev, last) = (&bars[bars.len() - 2], &bars[bars.len() - 1]);
            let close_time = last.time.timestamp_millis() + 86_399_999;
            return ResponseTemplate::new(200).set_body_json(json!({
                "symbol": query["symbol"],
                "priceChange": format!("{:.2}", last.close - prev.close),
                "priceChangePercent": format!("{:.3}", (last.close / prev.close - 1.0) * 100.0),
                "lastPrice": last.close.to_string(),
                "openPrice": prev.close.to_string(),
                "highPrice": last.close.max(prev.close).to_string(),
                "lowPrice": last.close.min(prev.close).to_string(),
                "volume": "1000.0",
                "quoteVolume": "0",
                "openTime": last.time.timestamp_millis(),
                "closeTime": close_time,
                "count": 0
            }));
        }
        let limit: usize = query["limit"].parse().unwrap();
        let end = query
            .get("endTime")
            .map_or(i64::MAX, |e| e.parse::<i64>().unwrap());
        let upto = bars.partition_point(|b| b.time.timestamp_millis() <= end);
        let rows: Vec<Value> = bars[upto.saturating_sub(limit)..upto]
            .iter()
            .map(|b| {
                let open = b.time.timestamp_millis();
                let c = b.close.to_string();
                json!([
                    open,
                    c,
                    c,
                    c,
                    c,
                    "1000.0",
                    open + 86_399_999,
                    "0",
                    0,
                    "0",
                    "0",
                    "0"
                ])
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(rows)
    }
}

async fn binance_replaying() -> (MockServer, Arc<AtomicUsize>) {
    let server = MockServer::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(path_regex("^/api/v3/(klines|ticker/24hr)$"))
        .respond_with(BinanceReplay {
            calls: Arc::clone(&calls),
        })
        .mount(&server)
        .await;
    (server, calls)
}

/// Binance first, then the embedded data (stocks come from there).
async fn app_on_binance(binance: &MockServer) -> TestApp {
    let uri = binance.uri();
    spawn_app_with(
        move |s| {
            s.market.providers = vec![ProviderName::Binance, ProviderName::Local];
            s.binance.base_url = uri;
        },
        tickcast::models::served(),
    )
    .await
}

async fn quote(app: &TestApp, symbol: &str) -> Value {
    let (status, body) = app
        .post(
            "/api/production_api/portfolio_data",
            &json!({ "symbols": [symbol] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["portfolio_data"][symbol].clone()
}

/// The embedded BTC-USD closes, oldest first.
fn btc() -> Vec<f64> {
    tickcast::market::dataset::embedded_crypto().unwrap()["BTC-USD"]
        .iter()
        .map(|b| b.close)
        .collect()
}

#[tokio::test]
async fn offline_btc_is_listed_quoted_and_its_month_spans_30_days() {
    let app = spawn_app().await;
    let (_, listed) = app.get("/api/catalog/stocks").await;
    let btc_listing = listed["stocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["yfinance_symbol"] == "BTC-USD")
        .cloned()
        .expect("the embedded crypto is listed");
    assert_eq!(btc_listing["data_source"], "local");
    assert_eq!(btc_listing["fyers_symbol"], "", "Fyers lists no crypto");

    let closes = btc();
    let q = quote(&app, "BTC-USD").await;
    assert_eq!(q["price"], closes[closes.len() - 1]);
    assert_eq!(q["provider"], "local");

    let (status, body) = app
        .post(
            "/api/catalog/past_month_return",
            &json!({"symbols": ["BTC-USD", "AAPL"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = &body["results"][0];
    assert_eq!(r["symbol"], "BTC-USD");
    // Every day trades: 30 days back is 30 closes back, not 21.
    let expected = closes[closes.len() - 1] / closes[closes.len() - 31] - 1.0;
    let got = r["return"].as_f64().unwrap_or_else(|| panic!("{body}"));
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    assert_eq!(r["start_price"], closes[closes.len() - 31]);
}

#[tokio::test]
async fn garch_on_btc_annualises_with_365_days_unless_told_otherwise() {
    let app = spawn_app().await;
    let url = format!("{PREDICT}/garch_volatility");
    let (status, coin) = app.post(&url, &json!({"symbol": "BTC-USD"})).await;
    assert_eq!(status, 200, "{coin}");
    let p = &coin;
    assert_eq!(p["periods_per_year"], 365.0, "{coin}");
    let daily = p["volatility_forecast"][0].as_f64().unwrap();
    let annual = p["annualized_volatility_forecast"][0].as_f64().unwrap();
    assert!((annual - daily * 365f64.sqrt()).abs() < 1e-12);
    let (_, told) = app
        .post(
            &url,
            &json!({"symbol": "BTC-USD", "params": {"periods_per_year": 252}}),
        )
        .await;
    assert_eq!(told["periods_per_year"], 252.0, "{told}");
    let (_, stock) = app.post(&url, &json!({"symbol": "AAPL"})).await;
    assert_eq!(stock["periods_per_year"], 252.0, "{stock}");
}

#[tokio::test]
async fn the_optimiser_aligns_btc_with_stocks_on_shared_dates() {
    let app = spawn_app().await;
    let url = format!("{PREDICT}/realtime_portfolio_optimizer");
    let (status, mixed) = app
        .post(
            &url,
            &json!({"params": {"symbols": ["AAPL", "BTC-USD"], "method": "min_variance"}}),
        )
        .await;
    assert_eq!(status, 200, "{mixed}");
    // Equities and crypto share 2021-01-01..2022-12-28: a year of sessions,
    // annualised with the equities' 252.
    assert_eq!(mixed["annualized"]["periods_per_year"], 252.0, "{mixed}");
    assert_eq!(mixed["observations"], 251, "252 shared closes, 251 returns");
    assert_eq!(mixed["as_of"], "2022-12-28", "the last date both have");
    let daily = mixed["expected_volatility"].as_f64().unwrap();
    let annual = mixed["annualized"]["volatility"].as_f64().unwrap();
    assert!((annual - daily * 252f64.sqrt()).abs() < 1e-12);

    let (status, coins) = app
        .post(
            &url,
            &json!({"params": {"symbols": ["BTC-USD", "ETH-USD"], "method": "min_variance"}}),
        )
        .await;
    assert_eq!(status, 200, "{coins}");
    assert_eq!(coins["annualized"]["periods_per_year"], 365.0);
    let daily = coins["expected_volatility"].as_f64().unwrap();
    let annual = coins["annualized"]["volatility"].as_f64().unwrap();
    assert!((annual - daily * 365f64.sqrt()).abs() < 1e-12);
}

#[tokio::test]
async fn a_btc_backtest_year_is_365_days_annualised_with_365() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/catalog/backtest",
            &json!({"model_id": "lstm_predictor", "stock_symbol": "BTC-USD", "period": "1y"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = &body["backtest_result"];
    assert_eq!(r["days"], 365, "{r}");
    assert_eq!(r["periods_per_year"], 365.0);
    assert_eq!(r["plan"]["periods_per_year"], 365.0);
    let closes = btc();
    let held = closes[closes.len() - 1] / closes[closes.len() - 366] - 1.0;
    assert!((r["benchmark_total_return"].as_f64().unwrap() - held).abs() < 1e-9);

    let (status, mixed) = app
        .post(
            "/api/catalog/backtest",
            &json!({"model_id": "realtime_portfolio_optimizer", "stock_symbols": ["AAPL", "BTC-USD"], "period": "6mo"}),
        )
        .await;
    assert_eq!(status, 200, "{mixed}");
    let m = &mixed["backtest_result"];
    assert_eq!(m["days"], 126, "sessions shared with the stock: {m}");
    assert_eq!(m["periods_per_year"], 252.0);
    assert_eq!(m["last_day"], "2022-12-28", "the stock's last session");
}

#[tokio::test]
async fn binance_serves_btc_end_to_end_and_stocks_fall_through_to_local() {
    let (binance, calls) = binance_replaying().await;
    let app = app_on_binance(&binance).await;
    let closes = btc();

    let q = quote(&app, "BTC-USD").await;
    assert_eq!(q["provider"], "binance", "{q}");
    assert_eq!(q["price"], closes[closes.len() - 1]);
    let q = quote(&app, "AAPL").await;
    assert_eq!(q["provider"], "local", "Binance lists no stocks: {q}");

    let (status, body) = app
        .post(
            &format!("{PREDICT}/lstm_predictor"),
            &json!({"symbol": "BTC-USD"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data_source"], "binance", "{body}");
    assert_eq!(body["as_of"], "2026-09-09");

    let (status, mixed) = app
        .post(
            &format!("{PREDICT}/realtime_portfolio_optimizer"),
            &json!({"params": {"symbols": ["AAPL", "BTC-USD"], "method": "risk_parity"}}),
        )
        .await;
    assert_eq!(status, 200, "{mixed}");
    let sources = mixed["data_source"].as_str().unwrap();
    assert!(
        sources.contains("binance") && sources.contains("local"),
        "{sources}"
    );
    assert_eq!(mixed["observations"], 251);

    let (status, tested) = app
        .post(
            "/api/catalog/backtest",
            &json!({"model_id": "lstm_predictor", "stock_symbol": "BTC-USD", "period": "3mo"}),
        )
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["backtest_result"]["days"], 91, "3mo of crypto days");
    assert_eq!(tested["data_source"], "binance", "{tested}");
    assert!(calls.load(Ordering::SeqCst) >= 3);

    let (_, health) = app.get("/api/production_api/health").await;
    let metrics = &health["health"]["performance_metrics"]["binance"];
    assert_eq!(metrics["circuit_breaker_state"], "closed", "{health}");
    assert_eq!(metrics["success_rate"], 100.0, "{health}");
}

#[tokio::test]
async fn yahoo_serves_btc_usd_and_binance_stands_in_when_it_fails() {
    let yahoo = MockServer::start().await;
    Mock::given(path("/v8/finance/chart/BTC-USD"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(yahoo_chart_of("BTC-USD", 300), "application/json"),
        )
        .up_to_n_times(1)
        .mount(&yahoo)
        .await;
    Mock::given(path_regex("^/v8/finance/chart/"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&yahoo)
        .await;
    let (binance, _) = binance_replaying().await;
    let (yahoo_uri, binance_uri) = (yahoo.uri(), binance.uri());
    let app = spawn_app_with(
        move |s| {
            s.market.providers = vec![
                ProviderName::Yfinance,
                ProviderName::Binance,
                ProviderName::Local,
            ];
            s.yahoo.base_url = yahoo_uri;
            s.binance.base_url = binance_uri;
            s.market.breaker_failure_rate = 0.0;
        },
        tickcast::models::served(),
    )
    .await;
    let q = quote(&app, "BTC-USD").await;
    assert_eq!(q["provider"], "yfinance", "{q}");
    // Yahoo now fails: ETH-USD comes from Binance, a stock from local.
    let q = quote(&app, "ETH-USD").await;
    assert_eq!(q["provider"], "binance", "{q}");
    let q = quote(&app, "KO").await;
    assert_eq!(q["provider"], "local", "{q}");
}
