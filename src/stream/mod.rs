//! Live feeds: channels of quotes, forecasts and data-layer health. Each
//! channel someone watches is polled once through the data manager (so
//! quotas, caches, breakers and fallback apply unchanged) however many
//! clients watch it, and fanned out with a broadcast channel; a channel
//! nobody watches any more stops being polled.
//!
//! Transports (WebSocket, Server-Sent Events) sit in `api::stream`; both
//! read a [`Session`]'s frames.

pub mod channel;
pub mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::StreamSettings;
use crate::error::{ApiError, ErrorCode};
use crate::forecast::input::PriceRequest;
use crate::forecast::{ForecastService, Served};
use crate::market::{DataManager, Interval, Span};
pub use channel::{Channel, ChannelError};
pub use session::Session;

/// Messages a channel keeps for subscribers that are behind: a poll
/// publishes at most one per channel, so this is many polls' worth.
const CHANNEL_CAPACITY: usize = 64;
/// Whom stream forecasts are made for (one forecast serves every subscriber),
/// which fixes their A/B arm per symbol.
const STREAM_CALLER: &str = "stream";

/// Turns a served forecast into the predict answer's JSON (the shape is the
/// HTTP layer's, handed in so this module needs none of it).
pub type RenderForecast = Arc<dyn Fn(Served) -> Value + Send + Sync>;

/// One message of a channel, its data serialised once for every client.
#[derive(Debug)]
pub struct Event {
    /// `quote`, `forecast`, `health` or `error`.
    pub kind: &'static str,
    pub channel: String,
    pub time: DateTime<Utc>,
    /// The `data` object (or, for errors, `code` and `error`), as JSON.
    pub body: String,
}

impl Event {
    fn data(kind: &'static str, channel: &Channel, data: &Value) -> Event {
        Event {
            kind,
            channel: channel.to_string(),
            time: Utc::now(),
            body: data.to_string(),
        }
    }

    fn error(channel: &Channel, e: &ApiError) -> Event {
        Event {
            kind: "error",
            channel: channel.to_string(),
            time: Utc::now(),
            body: serde_json::json!({"code": e.code(), "error": e.public_message()}).to_string(),
        }
    }

    /// The message as a client receives it, numbered `seq` on its channel.
    pub fn frame(&self, seq: u64) -> String {
        let channel = Value::from(self.channel.as_str());
        let time = self.time.to_rfc3339_opts(SecondsFormat::Millis, true);
        if self.kind == "error" {
            // {"type": "error", "channel", "seq", "time", "code", "error"}
            let fields = self.body.trim_start_matches('{');
            format!(r#"{{"type":"error","channel":{channel},"seq":{seq},"time":"{time}",{fields}"#)
        } else {
            format!(
                r#"{{"type":"{}","channel":{channel},"seq":{seq},"time":"{time}","data":{}}}"#,
                self.kind, self.body
            )
        }
    }
}

struct Topic {
    sender: broadcast::Sender<Arc<Event>>,
    /// The newest message, sent at once to each new subscriber.
    latest: Arc<Mutex<Option<Arc<Event>>>>,
}

pub struct Hub {
    market: Arc<DataManager>,
    forecasts: Arc<ForecastService>,
    render: RenderForecast,
    pub settings: StreamSettings,
    topics: Mutex<HashMap<Channel, Topic>>,
    connections: AtomicUsize,
    stopping: CancellationToken,
}

/// Holds one of `stream.max_connections`; released on drop.
pub struct Admission(Arc<Hub>);

impl Drop for Admission {
    fn drop(&mut self) {
        let open = self.0.connections.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!("tickcast_stream_connections").set(open as f64);
    }
}

impl Hub {
    pub fn new(
        market: Arc<DataManager>,
        forecasts: Arc<ForecastService>,
        render: RenderForecast,
        settings: StreamSettings,
    ) -> Self {
        Hub {
            market,
            forecasts,
            render,
            settings,
            topics: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            stopping: CancellationToken::new(),
        }
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.settings.poll_interval_ms)
    }

    /// A place for one more stream, or `None` at `stream.max_connections`.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let max = self.settings.max_connections;
        let taken = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        metrics::gauge!("tickcast_stream_connections").set((taken + 1) as f64);
        Some(Admission(Arc::clone(self)))
    }

    pub fn is_model(&self, name: &str) -> bool {
        self.forecasts.registry().names().contains(&name)
    }

    pub fn parse(&self, name: &str) -> Result<Channel, ChannelError> {
        Channel::parse(name, |m| self.is_model(m))
    }

    /// Resolves when the service shuts down.
    pub async fn stopped(&self) {
        self.stopping.cancelled().await
    }

    /// Tells every stream to close, and every poller to stop.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// A receiver of `channel`'s messages and its newest one; starts the
    /// channel's poller when nobody watched it yet.
    fn subscribe(
        self: &Arc<Self>,
        channel: &Channel,
    ) -> (broadcast::Receiver<Arc<Event>>, Option<Arc<Event>>) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(topic) = topics.get(channel) {
            let latest = topic
                .latest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return (topic.sender.subscribe(), latest);
        }
        let (sender, receiver) = broadcast::channel(CHANNEL_CAPACITY);
        let latest = Arc::new(Mutex::new(None));
        topics.insert(
            channel.clone(),
            Topic {
                sender: sender.clone(),
                latest: Arc::clone(&latest),
            },
        );
        metrics::gauge!("tickcast_stream_channels_polled").set(topics.len() as f64);
        let hub = Arc::clone(self);
        let channel = channel.clone();
        tokio::spawn(async move { hub.poll(channel, sender, latest).await });
        (receiver, None)
    }

    /// Forgets `channel` if nobody watches it; true when it was forgotten.
    fn release_if_unwatched(&self, channel: &Channel) -> bool {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let unwatched = topics
            .get(channel)
            .is_some_and(|t| t.sender.receiver_count() == 0);
        if unwatched {
            topics.remove(channel);
            metrics::gauge!("tickcast_stream_channels_polled").set(topics.len() as f64);
        }
        unwatched
    }

    /// Polls `channel` every `stream.poll_interval_ms` while anyone
    /// watches, publishing what changed.
    async fn poll(
        self: Arc<Self>,
        channel: Channel,
        sender: broadcast::Sender<Arc<Event>>,
        latest: Arc<Mutex<Option<Arc<Event>>>>,
    ) {
        let mut ticks = tokio::time::interval(self.poll_interval());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut state = PollState::default();
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.stopping.cancelled() => return,
            }
            if self.release_if_unwatched(&channel) {
                return;
            }
            metrics::counter!("tickcast_stream_upstream_polls_total", "kind" => channel.kind())
                .increment(1);
            if let Some(event) = self.poll_once(&channel, &mut state).await {
                let event = Arc::new(event);
                *latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&event));
                let _ = sender.send(event);
            }
        }
    }

    /// The channel's news since the last poll, if any.
    async fn poll_once(&self, channel: &Channel, state: &mut PollState) -> Option<Event> {
        let outcome: Result<Option<(&'static str, Value)>, ApiError> = match channel {
            Channel::Quotes(symbol) => {
                let mut report = self.market.quotes(std::slice::from_ref(symbol)).await;
                match report.found.pop() {
                    Some((_, quote)) => serde_json::to_value(&quote)
                        .map(|v| Some(("quote", v)))
                        .map_err(|e| ApiError::internal(e.to_string())),
                    None => {
                        let code = if report.unavailable.is_empty() {
                            ErrorCode::UnknownSymbol
                        } else {
                            ErrorCode::UpstreamUnavailable
                        };
                        Err(report
                            .missing
                            .pop()
                            .map(|(s, why)| ApiError::new(code, format!("no quote for {s}: {why}")))
                            .unwrap_or_else(|| ApiError::internal("no quote and no reason")))
                    }
                }
            }
            Channel::Forecasts { model, symbol } => self.forecast(model, symbol, state).await,
            Channel::Health => {
                let health = self.market.health().await;
                let mut value = serde_json::to_value(&health).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut value {
                    map.insert("status".into(), Value::from(health.status));
                }
                // Counters move on every call; only a change of status or
                // of a breaker is news.
                let fingerprint = format!(
                    "{}|{:?}|{}",
                    health.status,
                    health.provider_priority,
                    health
                        .performance_metrics
                        .iter()
                        .map(|(p, m)| format!("{p}={}", m.circuit_breaker_state))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                if state.fingerprint.as_deref() == Some(fingerprint.as_str()) {
                    Ok(None)
                } else {
                    state.fingerprint = Some(fingerprint);
                    Ok(Some(("health", value)))
                }
            }
        };
        match outcome {
            Ok(Some((kind, data))) => {
                let body = data.to_string();
                if kind != "health" && state.last_body.as_deref() == Some(body.as_str()) {
                    return None;
                }
                state.last_body = Some(body);
                state.last_error = None;
                Some(Event::data(kind, channel, &data))
            }
            Ok(None) => None,
            Err(e) => {
                // The same failure is told once, not on every poll.
                let said = e.public_message();
                if state.last_error.as_deref() == Some(said.as_str()) {
                    return None;
                }
                state.last_error = Some(said);
                state.last_body = None;
                Some(Event::error(channel, &e))
            }
        }
    }

    /// A new forecast when the symbol has a bar newer than the last one
    /// forecast from.
    async fn forecast(
        &self,
        model: &str,
        symbol: &str,
        state: &mut PollState,
    ) -> Result<Option<(&'static str, Value)>, ApiError> {
        let newest = self
            .market
            .history(symbol, Span::LastBars(1), Interval::Daily)
            .await?
            .as_of();
        if newest.is_some() && newest == state.forecast_from {
            return Ok(None);
        }
        let prices = PriceRequest {
            symbol: Some(symbol.to_string()),
            price_data: None,
        };
        let served = self
            .forecasts
            .predict(model, &prices, &Default::default(), STREAM_CALLER)
            .await?;
        state.forecast_from = newest;
        Ok(Some(("forecast", (self.render)(served))))
    }
}

/// What a poller remembers between polls, to publish only news.
#[derive(Default)]
struct PollState {
    last_body: Option<String>,
    last_error: Option<String>,
    fingerprint: Option<String>,
    forecast_from: Option<NaiveDate>,
}
