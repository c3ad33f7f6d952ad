//! The Yahoo chart client against a local mock replaying Yahoo's payloads.

use std::time::Duration;

use chrono::NaiveDate;
use tickcast::market::yahoo::{YahooEndpoint, YahooProvider};
use tickcast::market::{Interval, Provider, ProviderError, Span};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/yahoo/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn provider(server: &MockServer, timeout_ms: u64) -> YahooProvider {
    YahooProvider::new(&YahooEndpoint {
        base_url: format!("{}/", server.uri()),
        timeout_ms,
    })
    .unwrap()
}

fn json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

#[tokio::test]
async fn daily_history_uses_adjusted_closes_and_skips_null_bars() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v8/finance/chart/AAPL"))
        .and(query_param("interval", "1d"))
        .and(query_param("range", "5d"))
        .respond_with(json(fixture("chart_AAPL_daily.json")))
        .expect(1)
        .mount(&server)
        .await;
    let bars = provider(&server, 1000)
        .await
        .history("AAPL", Span::LastBars(4), Interval::Daily)
        .await
        .unwrap();
    assert_eq!(bars.len(), 4, "last 4 of the 5 non-null bars");
    let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
    assert_eq!(closes, [227.77, 228.03, 228.75, 229.87]);
    assert_eq!(bars[0].open, Some(225.25));
    assert_eq!(bars[0].volume, Some(44686000.0));
    assert_eq!(
        bars[3].date(),
        NaiveDate::from_ymd_opt(2024, 11, 22).unwrap()
    );
}

#[tokio::test]
async fn date_ranges_are_sent_as_epoch_periods() {
    let server = MockServer::start().await;
    Mock::given(path("/v8/finance/chart/AAPL"))
        .and(query_param("period1", "1731628800"))
        .and(query_param("period2", "1732320000"))
        .respond_with(json(fixture("chart_AAPL_daily.json")))
        .expect(1)
        .mount(&server)
        .await;
    let span = Span::Dates {
        start: NaiveDate::from_ymd_opt(2024, 11, 15).unwrap(),
        end: NaiveDate::from_ymd_opt(2024, 11, 22).unwrap(),
    };
    let bars = provider(&server, 1000)
        .await
        .history("AAPL", span, Interval::Daily)
        .await
        .unwrap();
    assert_eq!(bars.len(), 5);
}

#[tokio::test]
async fn intraday_bars_use_unadjusted_closes() {
    let server = MockServer::start().await;
    Mock::given(path("/v8/finance/chart/AAPL"))
        .and(query_param("interval", "5m"))
        .respond_with(json(fixture("chart_AAPL_5m.json")))
        .mount(&server)
        .await;
    let p = provider(&server, 1000).await;
    let bars = p
        .history("AAPL", Span::LastBars(10), Interval::Minutes(5))
        .await
        .unwrap();
    assert_eq!(
        bars.iter().map(|b| b.close).collect::<Vec<_>>(),
        [229.1, 229.4, 229.8]
    );
    let err = p
        .history("AAPL", Span::LastBars(10), Interval::Minutes(7))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unsupported(_)));
}

#[tokio::test]
async fn unknown_symbols_are_not_found_not_failures() {
    let server = MockServer::start().await;
    Mock::given(path("/v8/finance/chart/NOPE"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_raw(fixture("chart_not_found.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let err = provider(&server, 1000)
        .await
        .history("NOPE", Span::LastBars(5), Interval::Daily)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::NotFound {
            symbol: "NOPE".into()
        }
    );
    assert!(!err.is_provider_failure());
}

#[tokio::test]
async fn upstream_failures_are_typed() {
    let server = MockServer::start().await;
    let cases = [
        (
            "/v8/finance/chart/HTML",
            ResponseTemplate::new(503).set_body_raw(fixture("error_page.html"), "text/html"),
        ),
        (
            "/v8/finance/chart/BROKEN",
            ResponseTemplate::new(200)
                .set_body_raw("{\"chart\": {\"result\": [", "application/json"),
        ),
        (
            "/v8/finance/chart/SLOW1",
            ResponseTemplate::new(429).set_body_string("Too Many Requests"),
        ),
        (
            "/v8/finance/chart/SLOW2",
            ResponseTemplate::new(429).insert_header("Retry-After", "30"),
        ),
        (
            "/v8/finance/chart/OOPS",
            ResponseTemplate::new(500).set_body_string("internal error"),
        ),
        (
            "/v8/finance/chart/LATE",
            json(fixture("chart_AAPL_daily.json")).set_delay(Duration::from_millis(1000)),
        ),
    ];
    for (p, response) in cases {
        Mock::given(path(p))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    let yahoo = provider(&server, 200).await;
    let err = |s: &'static str| {
        let yahoo = &yahoo;
        async move {
            yahoo
                .history(s, Span::LastBars(5), Interval::Daily)
                .await
                .unwrap_err()
        }
    };
    assert!(matches!(
        err("HTML").await,
        ProviderError::Upstream { status: 503, .. }
    ));
    assert!(matches!(err("BROKEN").await, ProviderError::Malformed(_)));
    assert_eq!(
        err("SLOW1").await,
        ProviderError::RateLimited { retry_after: None }
    );
    assert_eq!(
        err("SLOW2").await,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    assert!(matches!(
        err("OOPS").await,
        ProviderError::Upstream { status: 500, .. }
    ));
    assert_eq!(err("LATE").await, ProviderError::Timeout);
    for e in [err("HTML").await, err("BROKEN").await, err("LATE").await] {
        assert!(e.is_provider_failure(), "{e}");
    }
}

#[tokio::test]
async fn quotes_come_from_the_regular_market_price() {
    let server = MockServer::start().await;
    Mock::given(path("/v8/finance/chart/AAPL"))
        .and(query_param("range", "5d"))
        .respond_with(json(fixture("chart_AAPL_daily.json")))
        .mount(&server)
        .await;
    Mock::given(path("/v8/finance/chart/NOPE"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_raw(fixture("chart_not_found.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let answers = provider(&server, 1000)
        .await
        .quotes(&["AAPL".to_string(), "NOPE".to_string()])
        .await
        .unwrap();
    let q = answers[0].1.as_ref().unwrap();
    assert_eq!(q.price, 229.87);
    assert!((q.change.unwrap() - (229.87 - 229.0)).abs() < 1e-9);
    assert_eq!(q.open, Some(228.88));
    assert_eq!(q.volume, Some(38168252.0));
    assert_eq!(q.provider, "yfinance");
    assert_eq!(q.timestamp.timestamp(), 1732222801);
    assert!(matches!(answers[1].1, Err(ProviderError::NotFound { .. })));
}

#[tokio::test]
async fn quotes_fail_as_a_whole_when_yahoo_is_down() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let err = provider(&server, 1000)
        .await
        .quotes(&["AAPL".to_string(), "MSFT".to_string()])
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Upstream { status: 502, .. }));
}

#[tokio::test]
async fn connection_failures_say_what_failed() {
    // A port nothing listens on: bind, note it, and close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yahoo = YahooProvider::new(&YahooEndpoint {
        base_url: format!("http://127.0.0.1:{port}"),
        timeout_ms: 1000,
    })
    .unwrap();
    let err = yahoo
        .history("AAPL", Span::LastBars(5), Interval::Daily)
        .await
        .unwrap_err();
    let ProviderError::Transport(message) = &err else {
        panic!("{err:?}")
    };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(err.is_provider_failure());
}

#[tokio::test]
async fn a_quote_fetch_spends_one_permit_per_symbol_requested() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(fixture("chart_AAPL_daily.json")))
        .mount(&server)
        .await;
    let endpoint = YahooEndpoint {
        base_url: server.uri(),
        timeout_ms: 1000,
    };
    let quota = tickcast::market::limiter::QuotaConfig {
        per_minute: Some(20),
        ..Default::default()
    };
    let yahoo = YahooProvider::new(&endpoint)
        .unwrap()
        .with_quota(&quota, Duration::ZERO);
    let symbols: Vec<String> = (0..500).map(|i| format!("S{i}")).collect();
    let answers = yahoo.quotes(&symbols).await.unwrap();
    let quoted = answers.iter().filter(|(_, a)| a.is_ok()).count();
    let spent = answers
        .iter()
        .filter(|(_, a)| a.as_ref().err() == Some(&ProviderError::QuotaSpent))
        .count();
    assert_eq!((quoted, spent), (20, 480));
    assert_eq!(server.received_requests().await.unwrap().len(), 20);
}
