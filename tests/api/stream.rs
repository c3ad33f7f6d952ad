//! Live feeds over a real WebSocket client (tokio-tungstenite) and over
//! Server-Sent Events, against a mock Yahoo upstream whose price moves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{spawn_app_with, test_registry, yahoo_first, TestApp};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Yahoo chart whose last price is whatever the test sets (in cents),
/// or one cent more on every request when `rising`.
#[derive(Clone)]
struct MovingPrice {
    cents: Arc<AtomicU64>,
    rising: bool,
}

impl MovingPrice {
    fn new(cents: u64, rising: bool) -> Self {
        MovingPrice {
            cents: Arc::new(AtomicU64::new(cents)),
            rising,
        }
    }

    fn set(&self, cents: u64) {
        self.cents.store(cents, Ordering::SeqCst);
    }
}

impl Respond for MovingPrice {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let cents = if self.rising {
            self.cents.fetch_add(1, Ordering::SeqCst)
        } else {
            self.cents.load(Ordering::SeqCst)
        };
        let price = cents as f64 / 100.0;
        let symbol = request
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("AAPL")
            .to_string();
        let now = chrono::Utc::now().timestamp();
        let body = json!({"chart": {"result": [{
            "meta": {"currency": "USD", "symbol": symbol, "regularMarketPrice": price},
            "timestamp": [now - 86_400, now],
            "indicators": {
                "quote": [{"open": [100.0, price], "high": [100.0, price], "low": [100.0, price],
                           "close": [100.0, price], "volume": [1000, 1000]}],
                "adjclose": [{"adjclose": [100.0, price]}],
            },
        }], "error": null}});
        ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json")
    }
}

async fn upstream(price: &MovingPrice) -> MockServer {
    let yahoo = MockServer::start().await;
    Mock::given(wiremock::matchers::path_regex("^/v8/finance/chart/"))
        .respond_with(price.clone())
        .mount(&yahoo)
        .await;
    yahoo
}

async fn streaming_app(yahoo: &MockServer, poll_ms: u64, lag: usize) -> TestApp {
    let uri = yahoo.uri();
    spawn_app_with(
        move |s| {
            yahoo_first(s, uri, &[]);
            s.market.quote_cache_ttl_secs = 0;
            s.yahoo.quota.per_second = Some(100_000);
            s.yahoo.quota.per_minute = None;
            s.yahoo.quota.per_hour = None;
            s.yahoo.quota.burst = Some(100_000);
            s.stream.poll_interval_ms = poll_ms;
            s.stream.max_lag_messages = lag;
            s.stream.max_subscriptions_per_connection = 60;
        },
        test_registry(),
    )
    .await
}

fn ws_url(app: &TestApp) -> String {
    app.url("/api/stream").replacen("http", "ws", 1)
}

async fn connect(app: &TestApp) -> Socket {
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(ws_url(app)),
    )
    .await
    .expect("an upgrade within 20 s")
    .expect("upgrade")
    .0
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON text message, skipping pings; `None` once closed.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a message within 20 s")?;
        match message.ok()? {
            Message::Text(text) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

async fn subscribe(socket: &mut Socket, channels: &[&str]) -> Value {
    send(socket, json!({"action": "subscribe", "channels": channels})).await;
    next(socket).await.unwrap()
}

async fn chart_requests(yahoo: &MockServer) -> usize {
    yahoo.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn a_quote_arrives_at_once_and_its_change_within_two_polls() {
    let price = MovingPrice::new(10_000, false);
    let yahoo = upstream(&price).await;
    let app = streaming_app(&yahoo, 100, 1000).await;
    let mut socket = connect(&app).await;
    let ack = subscribe(&mut socket, &["quotes:aapl"]).await;
    assert_eq!(
        ack,
        json!({"type": "subscribed", "channels": ["quotes:AAPL"]})
    );
    let first = next(&mut socket).await.unwrap();
    assert_eq!(first["type"], "quote", "{first}");
    assert_eq!(first["channel"], "quotes:AAPL");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["data"]["price"], 100.0);
    assert_eq!(first["data"]["provider"], "yfinance");
    assert!(chrono::DateTime::parse_from_rfc3339(first["time"].as_str().unwrap()).is_ok());
    // The same fields as a quote from portfolio_data.
    let (_, rest) = app
        .post(
            "/api/production_api/portfolio_data",
            &json!({"symbols": ["AAPL"]}),
        )
        .await;
    let mut keys: Vec<_> = first["data"].as_object().unwrap().keys().collect();
    let mut rest_keys: Vec<_> = rest["portfolio_data"]["AAPL"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    keys.sort();
    rest_keys.sort();
    assert_eq!(keys, rest_keys);

    let polls_before = chart_requests(&yahoo).await;
    price.set(10_150);
    let changed = next(&mut socket).await.unwrap();
    let polls_after = chart_requests(&yahoo).await;
    assert_eq!(changed["data"]["price"], 101.5, "{changed}");
    assert_eq!(changed["seq"], 2);
    // Counted in the upstream's own polls, not in wall time.
    assert!(
        polls_after - polls_before <= 3,
        "{polls_before} -> {polls_after}"
    );
}

#[tokio::test]
async fn two_hundred_clients_on_one_symbol_cost_one_upstream_poll_per_interval() {
    let price = MovingPrice::new(10_000, true);
    let yahoo = upstream(&price).await;
    let app = streaming_app(&yahoo, 200, 1000).await;
    let mut sockets = Vec::new();
    for _ in 0..200 {
        let mut socket = connect(&app).await;
        subscribe(&mut socket, &["quotes:AAPL"]).await;
        sockets.push(socket);
    }
    // Clients read late skip to the newest price, told how many they missed.
    for socket in &mut sockets {
        let mut first = next(socket).await.unwrap();
        if first["type"] == "lagged" {
            assert!(first["missed"].as_u64().unwrap() > 0);
            first = next(socket).await.unwrap();
        }
        assert_eq!(first["type"], "quote", "{first}");
    }
    let (before, started) = (chart_requests(&yahoo).await, std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls = chart_requests(&yahoo).await - before;
    let intervals = started.elapsed().as_millis() as usize / 200;
    assert!(
        polls >= 1 && polls <= intervals + 1,
        "{polls} polls in {intervals} intervals"
    );
    // Every client saw the same rising prices, in order.
    for socket in &mut sockets[..5] {
        let mut seqs = Vec::new();
        while seqs.len() < 2 {
            let m = next(socket).await.unwrap();
            if m["type"] == "quote" {
                seqs.push(m["seq"].as_u64().unwrap());
            }
        }
        assert!(seqs[1] > seqs[0]);
    }
}

/// A client whose socket takes a few bytes at a time and which never reads.
async fn stalled_client(app: &TestApp) -> Socket {
    let address = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(address.parse().unwrap()).await.unwrap();
    let request = ws_url(app).into_client_request().unwrap();
    let (socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    socket
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_without_slowing_the_others() {
    let price = MovingPrice::new(10_000, true);
    let yahoo = upstream(&price).await;
    let app = streaming_app(&yahoo, 20, 50).await;
    let symbols: Vec<String> = (0..40).map(|i| format!("quotes:S{i}")).collect();
    let names: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let mut stalled = stalled_client(&app).await;
    send(
        &mut stalled,
        json!({"action": "subscribe", "channels": names}),
    )
    .await;
    let mut reader = connect(&app).await;
    subscribe(&mut reader, &names).await;
    // The reader keeps up while the stalled client's outbox fills: what it
    // skips (only ever when the machine is too busy to write its frames
    // before the next poll) stays a small share of what it receives.
    let (mut skipped, mut seen) = (0, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < deadline {
        let message = next(&mut reader).await.unwrap();
        match message["type"].as_str().unwrap() {
            "lagged" => skipped += message["missed"].as_u64().unwrap(),
            "quote" => seen += 1,
            other => panic!("{other}: {message}"),
        }
    }
    assert!(seen > 300, "{seen}");
    assert!(skipped * 10 <= seen, "{skipped} skipped of {seen}");
    // The stalled client was closed as too slow ...
    let closed_slow = || async {
        let metrics = app.get_text("/metrics").await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("tickcast_stream_clients_closed_slow_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let waited = std::time::Instant::now();
    while closed_slow().await < 1.0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the stalled client is still open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ... so reading it now ends in its close, after what was buffered.
    let reading = std::time::Instant::now();
    loop {
        assert!(
            reading.elapsed() < Duration::from_secs(30),
            "the stalled client still streams"
        );
        match tokio::time::timeout(Duration::from_secs(10), stalled.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => break,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("the stalled client neither streams nor closes"),
        }
    }
}

#[tokio::test]
async fn bad_messages_get_error_messages_and_the_connection_stays() {
    let price = MovingPrice::new(10_000, false);
    let yahoo = upstream(&price).await;
    let app = streaming_app(&yahoo, 100, 1000).await;
    let mut socket = connect(&app).await;
    socket
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await.unwrap()["code"], "invalid_input");
    let unknown = subscribe(&mut socket, &["trades:AAPL"]).await;
    assert_eq!(unknown["type"], "error");
    assert_eq!(unknown["code"], "unknown_channel");
    let bad = subscribe(&mut socket, &["quotes:A B;"]).await;
    assert_eq!(bad["code"], "invalid_input");
    let many: Vec<String> = (0..61).map(|i| format!("quotes:S{i}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    send(
        &mut socket,
        json!({"action": "subscribe", "channels": names}),
    )
    .await;
    let ack = next(&mut socket).await.unwrap();
    assert_eq!(ack["channels"].as_array().unwrap().len(), 60);
    let refused = next(&mut socket).await.unwrap();
    assert_eq!(refused["code"], "too_many_subscriptions", "{refused}");
    send(
        &mut socket,
        json!({"action": "unsubscribe", "channels": names}),
    )
    .await;
    // Still served after all of it.
    loop {
        let m = next(&mut socket).await.unwrap();
        if m["type"] == "unsubscribed" {
            break;
        }
    }
}

#[tokio::test]
async fn forecasts_and_health_channels_send_at_once() {
    let app = spawn_app_with(|s| s.stream.poll_interval_ms = 100, test_registry()).await;
    let mut socket = connect(&app).await;
    subscribe(&mut socket, &["forecasts:mean_drift:AAPL", "health"]).await;
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 2 {
        let m = next(&mut socket).await.unwrap();
        got.insert(m["type"].as_str().unwrap().to_string(), m);
    }
    let forecast = &got["forecast"]["data"];
    let (_, rest) = app
        .post(
            "/api/enhanced_ml_models/predict/mean_drift",
            &json!({"symbol": "AAPL"}),
        )
        .await;
    let mut keys: Vec<_> = forecast.as_object().unwrap().keys().collect();
    let mut rest_keys: Vec<_> = rest.as_object().unwrap().keys().collect();
    keys.sort();
    rest_keys.sort();
    assert_eq!(keys, rest_keys, "{forecast}");
    assert_eq!(forecast["predicted_price"], rest["predicted_price"]);
    assert!(got["health"]["data"]["status"].is_string());
}

#[tokio::test]
async fn sse_delivers_the_same_messages() {
    let price = MovingPrice::new(10_000, false);
    let yahoo = upstream(&price).await;
    let app = streaming_app(&yahoo, 100, 1000).await;
    let mut socket = connect(&app).await;
    subscribe(&mut socket, &["quotes:AAPL"]).await;
    let over_ws = next(&mut socket).await.unwrap();
    let response = app
        .client
        .get(app.url("/api/stream/sse?channels=quotes:AAPL"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut response = response;
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let event: String = text[..end]
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            text.drain(..end + 2);
            if !event.is_empty() {
                events.push(serde_json::from_str::<Value>(&event).unwrap());
            }
        }
    }
    assert_eq!(
        events[0],
        json!({"type": "subscribed", "channels": ["quotes:AAPL"]})
    );
    let over_sse = &events[1];
    assert_eq!(over_sse["type"], "quote");
    assert_eq!(over_sse["seq"], 1);
    assert_eq!(over_sse["data"], over_ws["data"]);
    assert_eq!(over_sse["time"], over_ws["time"]);
    let (status, refused) = app.get("/api/stream/sse?channels=trades:AAPL").await;
    assert_eq!(status, 404, "{refused}");
}

#[tokio::test]
async fn shutdown_closes_streams_with_a_reason() {
    let mut app = spawn_app_with(|s| s.stream.poll_interval_ms = 100, test_registry()).await;
    let mut socket = connect(&app).await;
    subscribe(&mut socket, &["health"]).await;
    next(&mut socket).await.unwrap();
    app.begin_shutdown();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    let frame = close.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1001);
    assert!(frame.reason.contains("shutting down"));
}

mod keyed {
    use super::*;

    fn key(secret: &str) -> tickcast::config::ApiKeySettings {
        use sha2::Digest;
        tickcast::config::ApiKeySettings {
            owner: "alice".into(),
            sha256: sha2::Sha256::digest(secret.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            env: String::new(),
            trusted_gateway: false,
            quota: None,
        }
    }

    async fn keyed() -> TestApp {
        spawn_app_with(
            |s| s.auth.api_keys = vec![key("alice-key")],
            test_registry(),
        )
        .await
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_before_the_upgrade() {
        let app = keyed().await;
        let mut request = ws_url(&app).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("x-api-key", "wrong".parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401)
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let mut request = ws_url(&app).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", "Bearer alice-key".parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            subscribe(&mut socket, &["health"]).await["type"],
            "subscribed"
        );
    }

    #[tokio::test]
    async fn without_a_header_the_first_message_must_be_the_key() {
        let app = keyed().await;
        let mut socket = connect(&app).await;
        let refused = subscribe(&mut socket, &["health"]).await;
        assert_eq!(refused["code"], "unauthorized", "{refused}");
        match tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
            other => panic!("{other:?}"),
        }
        let mut socket = connect(&app).await;
        send(&mut socket, json!({"action": "auth", "key": "alice-key"})).await;
        assert_eq!(
            subscribe(&mut socket, &["health"]).await["type"],
            "subscribed"
        );
    }
}
