//! `/api/stream` (WebSocket) and `/api/stream/sse` (Server-Sent Events):
//! the transports of the live feeds in [`crate::stream`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::{SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Access, Caller};
use super::schema::Failures;
use super::state::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::stream::session::error_message;
use crate::stream::{Admission, Hub, Session};

/// How long a browser has to send `{"action": "auth", "key": ...}`.
const AUTH_WINDOW: Duration = Duration::from_secs(5);
/// Longest client message read.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Close codes (RFC 6455): going away, policy violation, message too big.
const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(websocket))
        .routes(routes!(sse))
}

fn busy() -> ApiError {
    ApiError::new(
        ErrorCode::Busy,
        "too many open streams (stream.max_connections); retry later",
    )
    .retry_after(5)
}

/// Live quotes, forecasts and health over a WebSocket: send
/// `{"action": "subscribe", "channels": ["quotes:AAPL", "forecasts:lstm_predictor:AAPL", "health"]}`,
/// receive `{"type", "channel", "seq", "time", "data"}` messages. With API
/// keys, the key is a header of the upgrade or the first message
/// `{"action": "auth", "key": "..."}` within 5 s.
#[utoipa::path(get, path = "/api/stream", tag = "stream", responses((status = 101, description = "switching to the WebSocket protocol"), Failures))]
async fn websocket(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let admission = state.streams.admit().ok_or_else(busy)?;
    let needs_key = state.access.requires_keys() && caller.is_none();
    let (hub, access) = (Arc::clone(&state.streams), Arc::clone(&state.access));
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            run_socket(socket, hub, access, needs_key, admission).await
        }))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn run_socket(
    mut socket: WebSocket,
    hub: Arc<Hub>,
    access: Arc<Access>,
    needs_key: bool,
    _admission: Admission,
) {
    if needs_key {
        if let Err(why) = authenticate(&mut socket, &access).await {
            let _ = socket
                .send(Message::Text(error_message("unauthorized", &why).into()))
                .await;
            let _ = socket.send(close(POLICY, "unauthorized")).await;
            return;
        }
    }
    let (mut sink, mut incoming) = socket.split();
    let mut session = Session::new(Arc::clone(&hub));
    let overflow = session.overflow_signal();
    let idle = Duration::from_secs(hub.settings.idle_timeout_secs);
    let mut pings = tokio::time::interval((idle / 3).max(Duration::from_millis(100)));
    pings.tick().await;
    let mut heard = Instant::now();
    let ending = loop {
        tokio::select! {
            () = hub.stopped() => break Ending::Stopping,
            () = overflow.notified() => break Ending::TooSlow,
            message = incoming.next() => {
                heard = Instant::now();
                let replies = match message {
                    Some(Ok(Message::Text(text))) => handle(&mut session, text.as_str()),
                    Some(Ok(Message::Binary(_))) => vec![error_message("invalid_input", "messages are JSON text")],
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Ending::Gone,
                    Some(Ok(_)) => Vec::new(), // pings are answered by the library; pongs keep us alive
                };
                if let Err(ending) = send_all(&mut sink, replies, &overflow, &hub).await {
                    break ending;
                }
            }
            frames = session.next_frames() => {
                if let Err(ending) = send_all(&mut sink, frames, &overflow, &hub).await {
                    break ending;
                }
            }
            _ = pings.tick() => {
                if heard.elapsed() > idle {
                    break Ending::Idle;
                }
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break Ending::Gone;
                }
            }
        }
    };
    let frame = match ending {
        Ending::Gone => return,
        Ending::Stopping => close(GOING_AWAY, "server shutting down"),
        Ending::TooSlow => {
            metrics::counter!("tickcast_stream_clients_closed_slow_total").increment(1);
            close(
                POLICY,
                "too slow: stream.max_lag_messages messages were waiting",
            )
        }
        Ending::Idle => close(
            POLICY,
            "idle: nothing received within stream.idle_timeout_secs",
        ),
    };
    // A client that stopped reading may never take the close frame.
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
}

/// Why a WebSocket ends.
enum Ending {
    /// The client closed or the connection broke.
    Gone,
    Stopping,
    TooSlow,
    Idle,
}

/// Sends `frames`, giving up (so the connection closes) when the client
/// stops reading or the service stops meanwhile.
async fn send_all(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    frames: Vec<String>,
    overflow: &Notify,
    hub: &Hub,
) -> Result<(), Ending> {
    for frame in frames {
        tokio::select! {
            sent = sink.send(Message::Text(frame.into())) => sent.map_err(|_| Ending::Gone)?,
            () = overflow.notified() => return Err(Ending::TooSlow),
            () = hub.stopped() => return Err(Ending::Stopping),
        }
    }
    Ok(())
}

async fn authenticate(socket: &mut WebSocket, access: &Access) -> Result<(), String> {
    let first = tokio::time::timeout(AUTH_WINDOW, socket.recv())
        .await
        .map_err(|_| {
            "no key: send {\"action\": \"auth\", \"key\": \"...\"} within 5 s".to_string()
        })?;
    let Some(Ok(Message::Text(text))) = first else {
        return Err("the first message must be {\"action\": \"auth\", \"key\": \"...\"}".into());
    };
    let message: Value = serde_json::from_str(text.as_str())
        .map_err(|_| "the first message is not JSON".to_string())?;
    if message["action"] != "auth" {
        return Err("the first message must be {\"action\": \"auth\", \"key\": \"...\"}".into());
    }
    let key = message["key"].as_str().unwrap_or("");
    access
        .admit_presented(key)
        .map(|_| ())
        .map_err(|e| e.public_message())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    action: String,
    #[serde(default)]
    channels: Vec<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    key: Option<String>,
}

/// A client's message: the acknowledgement and any errors to send back.
fn handle(session: &mut Session, text: &str) -> Vec<String> {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            return vec![error_message(
                "invalid_input",
                &format!("messages are {{\"action\": \"subscribe\" | \"unsubscribe\", \"channels\": [...]}}: {e}"),
            )]
        }
    };
    let mut names = Vec::with_capacity(message.channels.len());
    for channel in &message.channels {
        match channel.as_str() {
            Some(name) => names.push(name.to_string()),
            None => {
                return vec![error_message(
                    "invalid_input",
                    &format!("channel names are strings, got {channel}"),
                )]
            }
        }
    }
    let (ack, mut errors) = match message.action.as_str() {
        "subscribe" => session.subscribe(&names),
        "unsubscribe" => session.unsubscribe(&names),
        "auth" => (None, Vec::new()), // already admitted
        other => (
            None,
            vec![error_message(
                "invalid_input",
                &format!("unknown action {other:?}: use subscribe or unsubscribe"),
            )],
        ),
    };
    let mut replies: Vec<String> = ack.into_iter().collect();
    replies.append(&mut errors);
    replies
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct SseQuery {
    /// Comma-separated channels, e.g. `quotes:AAPL,health`.
    channels: String,
}

/// The same feeds as Server-Sent Events, for clients without WebSocket:
/// each event's data is the JSON of the WebSocket message.
#[utoipa::path(get, path = "/api/stream/sse", tag = "stream", params(SseQuery), responses((status = 200, description = "text/event-stream of the channels' messages", content_type = "text/event-stream"), Failures))]
async fn sse(
    State(state): State<AppState>,
    Query(query): Query<SseQuery>,
) -> Result<Response, ApiError> {
    let names: Vec<String> = query
        .channels
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err(ApiError::invalid("channels must name at least one channel"));
    }
    for name in &names {
        state.streams.parse(name).map_err(|e| {
            ApiError::new(
                match e.code() {
                    "unknown_channel" => ErrorCode::NotFound,
                    _ => ErrorCode::InvalidInput,
                },
                e.message().to_string(),
            )
        })?;
    }
    if names.len() > state.streams.settings.max_subscriptions_per_connection {
        return Err(ApiError::new(
            ErrorCode::TooManySubscriptions,
            format!(
                "at most {} channels per stream",
                state.streams.settings.max_subscriptions_per_connection
            ),
        ));
    }
    let admission = state.streams.admit().ok_or_else(busy)?;
    let hub = Arc::clone(&state.streams);
    let mut session = Session::new(Arc::clone(&hub));
    let (ack, _) = session.subscribe(&names);
    let events = sse_events(session, hub, admission, ack);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn sse_events(
    session: Session,
    hub: Arc<Hub>,
    admission: Admission,
    ack: Option<String>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let first = futures::stream::iter(ack.map(|a| Ok(SseEvent::default().data(a))));
    let rest = futures::stream::unfold(
        (session, hub, admission),
        |(mut session, hub, admission)| async move {
            let overflow = session.overflow_signal();
            let frames = tokio::select! {
                frames = session.next_frames() => frames,
                () = overflow.notified() => return None,
                () = hub.stopped() => return None,
            };
            let events: Vec<Result<SseEvent, Infallible>> = frames
                .into_iter()
                .map(|f| Ok(SseEvent::default().data(f)))
                .collect();
            Some((futures::stream::iter(events), (session, hub, admission)))
        },
    )
    .flatten();
    first.chain(rest)
}
