//! The accept loop: HTTP/1 and HTTP/2 per connection with a header read
//! timeout and a connection cap, and a shutdown that closes idle
//! connections at once and waits (bounded) for in-flight requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What one peer may hold of the server, and how long shutdown waits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

/// Counts a connection's requests between dispatch and response.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The accept loop (axum's `serve` has no header read timeout): HTTP/1 and
/// HTTP/2 per connection, each connection's peer address for the per-IP
/// rate limit, and a shutdown that closes idle connections at once and
/// waits (bounded) for in-flight requests.
pub async fn serve_connections(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    stopping: CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::{Service, ServiceExt};

    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let connections = TaskTracker::new();
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping.cancelled() => break,
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            metrics::counter!("tickcast_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(service) = make_service.call(peer).await;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&in_flight);
        let service = hyper_util::service::TowerToHyperService::new(
            service
                .map_request(|req: axum::http::Request<hyper::body::Incoming>| {
                    req.map(axum::body::Body::new)
                })
                .map_future(move |response| {
                    let request = InFlight::start(&counted);
                    async move {
                        let response = response.await;
                        drop(request);
                        response
                    }
                }),
        );
        let builder = builder.clone();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let _permit = permit;
            // hyper's timeout starts with the first byte (the protocol is
            // sniffed before it), so a silent connection is timed here.
            let mut first = [0u8; 1];
            let spoke = tokio::time::timeout(limits.header_read_timeout, stream.peek(&mut first));
            let spoke = tokio::select! {
                spoke = spoke => matches!(spoke, Ok(Ok(n)) if n > 0),
                () = stopping.cancelled() => false,
            };
            if !spoke {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(e) = ended {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                }
                () = stopping.cancelled() => {
                    // Nothing in flight (idle, or half a request head): close
                    // now. Otherwise finish the request, then close.
                    if in_flight.load(Ordering::Acquire) > 0 {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(limits.shutdown_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            deadline_secs = limits.shutdown_timeout.as_secs(),
            "shutdown deadline passed; abandoning the requests still running"
        );
    }
}
