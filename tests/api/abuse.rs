//! Hostile clients: thousands of idle connections, headers sent byte by
//! byte, bodies built to hurt. The service stays up and answers others,
//! and every bad request gets a 4xx JSON body.

use std::time::Duration;

use crate::helpers::{spawn_app_with, test_registry, TestApp};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Raises this process's open-file limit to its hard limit and says how
/// many descriptors it may use.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

/// Peak resident memory of this process (the server runs in it), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn app_with_timeout(header_read_timeout_secs: u64) -> TestApp {
    spawn_app_with(
        |s| {
            s.server.header_read_timeout_secs = header_read_timeout_secs;
            s.server.body_limit_bytes = 64 * 1024;
        },
        test_registry(),
    )
    .await
}

fn address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// Whether the server closes `stream` within `within` (reads until EOF).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_to_end).await.is_ok()
}

#[tokio::test]
async fn thousands_of_idle_connections_neither_starve_others_nor_stay_forever() {
    // Both ends of each connection live in this process.
    let wanted = 5_000u64.min(raise_fd_limit().saturating_sub(500) / 2);
    let app = app_with_timeout(2).await;
    let addr = address(&app);
    let mut idle = Vec::with_capacity(wanted as usize);
    for _ in 0..wanted {
        match TcpStream::connect(&addr).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {} refused: {e}", idle.len()),
        }
    }
    // Someone else still gets answers while they sit there.
    let answered = tokio::time::timeout(Duration::from_secs(30), app.get("/healthz")).await;
    assert_eq!(answered.expect("answered while connections idle").0, 200);
    let (status, _) = app.get("/api/catalog/agents").await;
    assert_eq!(status, 200);
    // The idle ones are closed once the header read timeout passes.
    for stream in idle.iter_mut().step_by(500) {
        assert!(closed_within(stream, Duration::from_secs(30)).await);
    }
    println!(
        "{} idle connections held; peak RSS of tests and server {:.0} MiB",
        idle.len(),
        peak_rss_mib()
    );
    drop(idle);
    // A new connection: the pooled one idled past the same timeout, and
    // reusing it would race the server closing it.
    let fresh = reqwest::get(app.url("/healthz"))
        .await
        .expect("request sent");
    assert_eq!(fresh.status(), 200);
}

#[tokio::test]
async fn a_client_sending_headers_byte_by_byte_is_cut_off() {
    let app = app_with_timeout(1).await;
    let mut slow = TcpStream::connect(address(&app)).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut_off = false;
    for byte in head {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // After the timeout the server closes: reads see EOF.
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await
        {
            assert!(
                !String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
                "the slow request was served"
            );
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "the server waited for {} bytes at 5 a second",
        head.len()
    );
    assert_eq!(app.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn hostile_bodies_get_4xx_json_and_the_server_stays_up() {
    let app = app_with_timeout(10).await;
    let predict = "/api/enhanced_ml_models/predict/mean_drift";
    let over_limit = format!(
        "{{\"price_data\": [{}]}}",
        vec!["1.0"; 64 * 1024 / 4].join(",")
    );
    assert!(over_limit.len() > 64 * 1024);
    // 60 000 levels, inside the 64 KiB limit.
    let nested = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let many_symbols = serde_json::to_vec(&json!({ "symbols": vec!["AAPL"; 100_000] })).unwrap();
    let many_models =
        serde_json::to_vec(&json!({ "models": vec!["mean_drift"; 100_000] })).unwrap();
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (predict, "application/json", over_limit.into_bytes(), 413),
        (predict, "application/json", nested.into_bytes(), 400),
        (
            predict,
            "application/json",
            b"{\"symbol\": \"\xff\xfe\"}".to_vec(),
            400,
        ),
        (predict, "application/json", b"\xc3\x28".to_vec(), 400),
        (
            predict,
            "text/plain",
            b"{\"price_data\": [1, 2]}".to_vec(),
            415,
        ),
        (
            predict,
            "application/x-www-form-urlencoded",
            b"symbol=AAPL".to_vec(),
            415,
        ),
        (predict, "application/json", b"".to_vec(), 400),
        (
            predict,
            "application/json",
            b"{\"price_data\": [1, 2, \"x\"]}".to_vec(),
            400,
        ),
        (
            "/api/production_api/portfolio_data",
            "application/json",
            many_symbols,
            413,
        ),
        (
            "/api/enhanced_ml_models/batch_predict",
            "application/json",
            many_models,
            413,
        ),
    ];
    for (path, content_type, body, expected) in cases {
        let (status, json) = app.post_raw(path, content_type, body).await;
        assert_eq!(status, expected, "{path} {content_type}: {json}");
        assert_eq!(json["success"], false);
        assert!(
            json["error"].is_string() && json["code"].is_string(),
            "{json}"
        );
    }
    // Within the limits: 5 000 prices and unknown fields are fine.
    let (status, _) = app
        .post(
            predict,
            &json!({"price_data": vec![100.0; 5_000], "unknown": {"deep": [1, 2]}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            "/api/enhanced_ml_models/batch_predict",
            &json!({"models": vec!["mean_drift"; 1_000], "price_data": [1.0, 2.0]}),
        )
        .await;
    assert_eq!(status, 200, "duplicates collapse to one model: {body}");
    assert_eq!(app.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let app = app_with_timeout(1).await;
    let mut conn = TcpStream::connect(address(&app)).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then left idle: closed once the header timeout passes.
    assert!(closed_within(&mut conn, Duration::from_secs(30)).await);
}
