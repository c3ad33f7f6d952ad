//! The Binance spot client against a local mock replaying Binance's
//! payloads (klines and 24-hour tickers in the exchange's own shapes, with
//! the embedded dataset's real prices; see tests/fixtures/binance/README.md).

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde_json::{json, Value};
use tickcast::market::binance::{BinanceEndpoint, BinanceProvider};
use tickcast::market::{Interval, Provider, ProviderError, Span};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/binance/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn provider(server: &MockServer, timeout_ms: u64) -> BinanceProvider {
    BinanceProvider::new(&BinanceEndpoint {
        base_url: format!("{}/", server.uri()),
        timeout_ms,
    })
    .unwrap()
}

fn json_body(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// Binance daily klines of the embedded BTC-USD closes from index `from`
/// to `to` (open, high and low equal to the close: the dataset has closes).
fn klines(from: usize, to: usize) -> Value {
    let table = tickcast::market::dataset::embedded_crypto().unwrap();
    let bars = &table["BTC-USD"][from..to];
    Value::Array(
        bars.iter()
            .map(|b| {
                let open = b.time.timestamp_millis();
                let c = b.close.to_string();
                json!([
                    open,
                    c,
                    c,
                    c,
                    c,
                    "100.0",
                    open + 86_399_999,
                    "0",
                    0,
                    "0",
                    "0",
                    "0"
                ])
            })
            .collect(),
    )
}

#[tokio::test]
async fn daily_history_reads_klines_oldest_first() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v3/klines"))
        .and(query_param("symbol", "BTCUSDT"))
        .and(query_param("interval", "1d"))
        .and(query_param("limit", "5"))
        .respond_with(json_body(fixture("klines_BTCUSDT_1d.json")))
        .expect(1)
        .mount(&server)
        .await;
    let bars = provider(&server, 1000)
        .history("BTCUSDT", Span::LastBars(4), Interval::Daily)
        .await
        .unwrap();
    assert_eq!(bars.len(), 4, "the newest 4 of the 5 sent");
    let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
    assert_eq!(closes, [80301.1, 79075.9, 78425.6, 78264.1]);
    assert_eq!(bars[3].open, Some(78425.6));
    assert_eq!(bars[3].high, Some(79737.3));
    assert_eq!(bars[3].volume, Some(152629.013));
    assert_eq!(bars[3].date(), NaiveDate::from_ymd_opt(2026, 9, 9).unwrap());
}

#[tokio::test]
async fn the_kline_still_open_is_not_a_daily_bar() {
    let server = MockServer::start().await;
    let today = Utc::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_millis();
    let yesterday = today - 86_400_000;
    let body = json!([
        [
            yesterday,
            "100",
            "110",
            "90",
            "105",
            "1",
            today - 1,
            "0",
            0,
            "0",
            "0",
            "0"
        ],
        [
            today,
            "105",
            "106",
            "104",
            "105.5",
            "1",
            today + 86_399_999,
            "0",
            0,
            "0",
            "0",
            "0"
        ]
    ]);
    Mock::given(path("/api/v3/klines"))
        .respond_with(json_body(body.to_string()))
        .mount(&server)
        .await;
    let bars = provider(&server, 1000)
        .history("BTCUSDT", Span::LastBars(5), Interval::Daily)
        .await
        .unwrap();
    assert_eq!(bars.len(), 1);
    assert_eq!(bars[0].close, 105.0);
}

#[tokio::test]
async fn more_than_a_thousand_bars_are_fetched_page_by_page_backwards() {
    let server = MockServer::start().await;
    // The newest 1 000 first, then the 501 before the oldest of them.
    let newest = klines(1078, 2078);
    let first_open = newest[0][0].as_i64().unwrap();
    Mock::given(path("/api/v3/klines"))
        .and(query_param("limit", "1000"))
        .and(query_param_is_missing("endTime"))
        .respond_with(json_body(newest.to_string()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/klines"))
        .and(query_param("limit", "501"))
        .and(query_param("endTime", (first_open - 1).to_string()))
        .respond_with(json_body(klines(577, 1078).to_string()))
        .expect(1)
        .mount(&server)
        .await;
    let bars = provider(&server, 1000)
        .history("BTCUSDT", Span::LastBars(1500), Interval::Daily)
        .await
        .unwrap();
    assert_eq!(bars.len(), 1500);
    assert!(bars.windows(2).all(|w| w[0].time < w[1].time), "in order");
    let table = tickcast::market::dataset::embedded_crypto().unwrap();
    assert_eq!(bars[0].close, table["BTC-USD"][578].close);
    assert_eq!(bars[1499].close, table["BTC-USD"][2077].close);
}

#[tokio::test]
async fn date_ranges_are_sent_as_millisecond_bounds() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/klines"))
        .and(query_param("startTime", "1788566400000"))
        .and(query_param("endTime", "1788998399999"))
        .respond_with(json_body(fixture("klines_BTCUSDT_1d.json")))
        .expect(1)
        .mount(&server)
        .await;
    let span = Span::Dates {
        start: NaiveDate::from_ymd_opt(2026, 9, 5).unwrap(),
        end: NaiveDate::from_ymd_opt(2026, 9, 9).unwrap(),
    };
    let bars = provider(&server, 1000)
        .history("BTCUSDT", span, Interval::Daily)
        .await
        .unwrap();
    assert_eq!(bars.len(), 5);
}

#[tokio::test]
async fn intraday_klines_have_binance_sizes_only() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/klines"))
        .and(query_param("interval", "1h"))
        .respond_with(json_body(fixture("klines_BTCUSDT_1d.json")))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server, 1000);
    assert!(p
        .history("BTCUSDT", Span::LastBars(3), Interval::Minutes(60))
        .await
        .is_ok());
    assert!(matches!(
        p.history("BTCUSDT", Span::LastBars(3), Interval::Minutes(90))
            .await,
        Err(ProviderError::Unsupported(_))
    ));
}

#[tokio::test]
async fn an_unlisted_pair_is_not_found_not_a_failure() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/klines"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_raw(fixture("invalid_symbol.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let err = provider(&server, 1000)
        .history("NOPEUSDT", Span::LastBars(5), Interval::Daily)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::NotFound {
            symbol: "NOPEUSDT".into()
        }
    );
    assert!(!err.is_provider_failure());
}

/// Whether an error is the one a response should give.
type Expected = fn(&ProviderError) -> bool;

#[tokio::test]
async fn upstream_failures_are_typed() {
    let cases: Vec<(ResponseTemplate, Expected)> = vec![
        (
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_raw(fixture("too_many_requests.json"), "application/json"),
            |e| {
                *e == ProviderError::RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                }
            },
        ),
        (
            ResponseTemplate::new(418).insert_header("Retry-After", "120"),
            |e| {
                *e == ProviderError::RateLimited {
                    retry_after: Some(Duration::from_secs(120)),
                }
            },
        ),
        (
            ResponseTemplate::new(502).set_body_string("<html><body>Bad gateway</body></html>"),
            |e| matches!(e, ProviderError::Upstream { status: 502, .. }),
        ),
        (json_body("{\"klines\": ".into()), |e| {
            matches!(e, ProviderError::Malformed(_))
        }),
        (json_body("{\"code\": 0}".into()), |e| {
            matches!(e, ProviderError::Malformed(_))
        }),
        (json_body("[[1, \"1\"]]".into()), |e| {
            matches!(e, ProviderError::Malformed(_))
        }),
        (
            json_body(fixture("klines_BTCUSDT_1d.json")).set_delay(Duration::from_millis(500)),
            |e| *e == ProviderError::Timeout,
        ),
    ];
    for (response, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(path("/api/v3/klines"))
            .respond_with(response)
            .mount(&server)
            .await;
        let err = provider(&server, 200)
            .history("BTCUSDT", Span::LastBars(5), Interval::Daily)
            .await
            .unwrap_err();
        assert!(expected(&err), "unexpected {err:?}");
        assert!(err.is_provider_failure(), "{err:?}");
    }
}

#[tokio::test]
async fn quotes_come_from_the_24_hour_ticker() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .and(query_param("symbol", "BTCUSDT"))
        .respond_with(json_body(fixture("ticker_BTCUSDT.json")))
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .and(query_param("symbol", "NOPEUSDT"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_raw(fixture("invalid_symbol.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let answers = provider(&server, 1000)
        .quotes(&["BTCUSDT".into(), "NOPEUSDT".into()])
        .await
        .unwrap();
    let quote = answers[0].1.as_ref().unwrap();
    assert_eq!(quote.price, 78264.1);
    assert_eq!(quote.change, Some(-161.5));
    assert_eq!(quote.change_pct, Some(-0.206));
    assert_eq!((quote.high, quote.low), (Some(79737.3), Some(77706.1)));
    assert_eq!(quote.volume, Some(152629.013));
    assert_eq!(quote.provider, "binance");
    assert_eq!(
        quote.timestamp.to_rfc3339(),
        "2026-09-09T23:59:59.999+00:00"
    );
    assert!(matches!(answers[1].1, Err(ProviderError::NotFound { .. })));
}

#[tokio::test]
async fn quotes_fail_as_a_whole_when_binance_is_down() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let err = provider(&server, 1000)
        .quotes(&["BTCUSDT".into(), "ETHUSDT".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Upstream { status: 503, .. }));
}
