//! The Fyers v3 client against a local mock replaying Fyers payloads.

use std::time::Duration;

use chrono::NaiveDate;
use secrecy::SecretString;
use tickcast::market::fyers::{FyersEndpoint, FyersProvider};
use tickcast::market::{Interval, Provider, ProviderError, Span};
use wiremock::matchers::{header, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "eyJ-secret-access-token";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/fyers/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn fyers(server: &MockServer) -> FyersProvider {
    let endpoint = FyersEndpoint {
        base_url: format!("{}/data", server.uri()),
        timeout_ms: 300,
    };
    FyersProvider::new(&endpoint, "APPID-100", SecretString::from(TOKEN)).unwrap()
}

fn json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test]
async fn history_sends_credentials_and_parses_candles() {
    let server = MockServer::start().await;
    Mock::given(path("/data/history"))
        .and(header(
            "authorization",
            format!("APPID-100:{TOKEN}").as_str(),
        ))
        .and(header("version", "3"))
        .and(query_param("symbol", "NSE:RELIANCE-EQ"))
        .and(query_param("resolution", "D"))
        .and(query_param("date_format", "1"))
        .and(query_param("cont_flag", "1"))
        .respond_with(json(fixture("history.json")))
        .expect(1)
        .mount(&server)
        .await;
    let span = Span::Dates {
        start: day(2024, 1, 1),
        end: day(2024, 1, 5),
    };
    let bars = fyers(&server)
        .history("NSE:RELIANCE-EQ", span, Interval::Daily)
        .await
        .unwrap();
    assert_eq!(
        bars.iter().map(|b| b.close).collect::<Vec<_>>(),
        [2590.3, 2615.8, 2608.1]
    );
    assert_eq!(bars[0].volume, Some(5123400.0));
    assert_eq!(bars[0].date(), day(2024, 1, 2));
}

#[tokio::test]
async fn long_daily_ranges_are_split_into_366_day_calls() {
    let server = MockServer::start().await;
    for (from, to) in [
        ("2021-01-01", "2022-01-01"),
        ("2022-01-02", "2023-01-02"),
        ("2023-01-03", "2023-12-31"),
    ] {
        Mock::given(path("/data/history"))
            .and(query_param("range_from", from))
            .and(query_param("range_to", to))
            .respond_with(json(fixture("history.json")))
            .expect(1)
            .mount(&server)
            .await;
    }
    let span = Span::Dates {
        start: day(2021, 1, 1),
        end: day(2023, 12, 31),
    };
    let bars = fyers(&server)
        .history("NSE:RELIANCE-EQ", span, Interval::Daily)
        .await
        .unwrap();
    assert_eq!(bars.len(), 3, "repeated bars across chunks are kept once");
}

#[tokio::test]
async fn quotes_are_batched_fifty_symbols_a_call() {
    let server = MockServer::start().await;
    Mock::given(path("/data/quotes"))
        .respond_with(json(fixture("quotes.json")))
        .expect(3)
        .mount(&server)
        .await;
    let symbols: Vec<String> = (0..120).map(|i| format!("NSE:S{i}-EQ")).collect();
    let answers = fyers(&server).quotes(&symbols).await.unwrap();
    assert_eq!(answers.len(), 120);
    assert!(answers
        .iter()
        .all(|(_, a)| matches!(a, Err(ProviderError::NotFound { .. }))));
}

#[tokio::test]
async fn quotes_parse_fields_and_per_symbol_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/data/quotes"))
        .and(query_param("symbols", "NSE:SBIN-EQ,NSE:NOSUCH-EQ"))
        .respond_with(json(fixture("quotes.json")))
        .mount(&server)
        .await;
    let answers = fyers(&server)
        .quotes(&["NSE:SBIN-EQ".to_string(), "NSE:NOSUCH-EQ".to_string()])
        .await
        .unwrap();
    let q = answers[0].1.as_ref().unwrap();
    assert_eq!(
        (q.price, q.change, q.change_pct),
        (675.4, Some(1.2), Some(0.18))
    );
    assert_eq!(
        (q.open, q.high, q.low, q.volume),
        (Some(650.0), Some(680.0), Some(645.0), Some(1234567.0))
    );
    assert_eq!(q.timestamp.timestamp(), 1775001600);
    assert_eq!(q.provider, "fyers");
    assert!(matches!(answers[1].1, Err(ProviderError::NotFound { .. })));
}

#[tokio::test]
async fn auth_errors_are_typed_and_never_show_the_token() {
    let server = MockServer::start().await;
    Mock::given(path("/data/history"))
        .respond_with(
            ResponseTemplate::new(401).set_body_raw(fixture("auth_error.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let provider = fyers(&server);
    let err = provider
        .history("NSE:SBIN-EQ", Span::LastBars(5), Interval::Daily)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err}");
    assert!(err.is_provider_failure());
    for text in [err.to_string(), format!("{err:?}"), format!("{provider:?}")] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
    }
}

#[tokio::test]
async fn throttling_bad_bodies_and_slowness_are_failures() {
    let server = MockServer::start().await;
    Mock::given(path("/data/quotes"))
        .and(query_param("symbols", "NSE:A-EQ"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "2"))
        .mount(&server)
        .await;
    Mock::given(path("/data/quotes"))
        .and(query_param("symbols", "NSE:B-EQ"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html>maintenance</html>", "text/html"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/data/quotes"))
        .and(query_param("symbols", "NSE:C-EQ"))
        .respond_with(json(fixture("quotes.json")).set_delay(Duration::from_secs(1)))
        .mount(&server)
        .await;
    let p = fyers(&server);
    let q = |s: &str| {
        let p = &p;
        let s = s.to_string();
        async move { p.quotes(&[s]).await.unwrap_err() }
    };
    assert_eq!(
        q("NSE:A-EQ").await,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    assert!(matches!(q("NSE:B-EQ").await, ProviderError::Malformed(_)));
    assert_eq!(q("NSE:C-EQ").await, ProviderError::Timeout);
}

#[tokio::test]
async fn new_credentials_apply_to_the_next_call() {
    let server = MockServer::start().await;
    Mock::given(path("/data/quotes"))
        .and(header("authorization", "APPID-200:fresh-token"))
        .respond_with(json(fixture("quotes.json")))
        .expect(1)
        .mount(&server)
        .await;
    let p = fyers(&server);
    p.set_credentials("APPID-200", SecretString::from("fresh-token"));
    let answers = p.quotes(&["NSE:SBIN-EQ".to_string()]).await.unwrap();
    assert!(answers[0].1.is_ok());
}

#[tokio::test]
async fn every_history_chunk_spends_its_own_permit_of_the_quota() {
    let server = MockServer::start().await;
    Mock::given(path("/data/history"))
        .respond_with(json(fixture("history.json")))
        .mount(&server)
        .await;
    let quota = tickcast::market::limiter::QuotaConfig {
        per_minute: Some(2),
        ..Default::default()
    };
    let limited = fyers(&server).with_quota(&quota, Duration::ZERO);
    // Three 366-day chunks, two permits: the third chunk is never sent.
    let span = Span::Dates {
        start: day(2021, 1, 1),
        end: day(2023, 12, 31),
    };
    let err = limited
        .history("NSE:RELIANCE-EQ", span, Interval::Daily)
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::QuotaSpent);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    let stats = limited.quota().unwrap().stats();
    assert_eq!((stats.waits, stats.rejections), (1, 1));
}
