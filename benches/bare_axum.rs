//! The framework's limit for the HTTP comparison (`benches/http_limit.sh`):
//! a bare axum server answering `GET /{*path}` with the bytes of a file,
//! as JSON, and nothing else (no middleware, no logging).
//!
//!     cargo build --release --example bare_axum
//!     target/release/examples/bare_axum 8301 body.json

use axum::http::header;
use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: bare_axum PORT BODY_FILE");
    let body: &'static [u8] = std::fs::read(args.next().expect("usage: bare_axum PORT BODY_FILE"))
        .expect("the body file reads")
        .leak();
    let app = Router::new().route(
        "/{*path}",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is free");
    axum::serve(listener, app).await.expect("serves");
}
