//! One client's subscriptions, whatever the transport: a forwarder per
//! channel moves the channel's messages into the client's outbox (at most
//! `stream.max_lag_messages` waiting), and [`Session::next_frames`] hands
//! the transport what to send, numbered per channel. A client that falls
//! behind skips to each channel's newest message and is told how many it
//! missed; one whose outbox fills is signalled ([`Session::overflow_signal`]) and
//! closed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::task::JoinHandle;

use super::{Channel, Event, Hub};

/// Messages taken from the outbox at once: enough to see that several of a
/// channel wait and keep only the newest.
const DRAIN: usize = 256;

enum Outgoing {
    Event(Arc<Event>),
    /// A broadcast receiver fell this far behind its channel.
    Lagged(String, u64),
}

pub struct Session {
    hub: Arc<Hub>,
    subscriptions: HashMap<Channel, JoinHandle<()>>,
    sender: mpsc::Sender<Outgoing>,
    outbox: mpsc::Receiver<Outgoing>,
    overflow: Arc<Notify>,
    /// Messages sent per channel: the next one's `seq` is one more.
    sent: HashMap<String, u64>,
}

impl Session {
    pub fn new(hub: Arc<Hub>) -> Self {
        let (sender, outbox) = mpsc::channel(hub.settings.max_lag_messages);
        Session {
            hub,
            subscriptions: HashMap::new(),
            sender,
            outbox,
            overflow: Arc::new(Notify::new()),
            sent: HashMap::new(),
        }
    }

    /// Subscribes to each name; answers the `subscribed` acknowledgement
    /// (or `None` when nothing was added) and an error message per name
    /// refused.
    pub fn subscribe(&mut self, names: &[String]) -> (Option<String>, Vec<String>) {
        let mut added = Vec::new();
        let mut errors = Vec::new();
        for name in names {
            let channel = match self.hub.parse(name) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(error_message(e.code(), e.message()));
                    continue;
                }
            };
            if self.subscriptions.contains_key(&channel) {
                added.push(channel.to_string());
                continue;
            }
            if self.subscriptions.len() >= self.hub.settings.max_subscriptions_per_connection {
                errors.push(error_message(
                    "too_many_subscriptions",
                    &format!(
                        "{channel}: a connection may hold at most {} subscriptions",
                        self.hub.settings.max_subscriptions_per_connection
                    ),
                ));
                continue;
            }
            let (receiver, latest) = self.hub.subscribe(&channel);
            let forwarder = tokio::spawn(forward(
                receiver,
                latest,
                channel.to_string(),
                self.sender.clone(),
                Arc::clone(&self.overflow),
            ));
            metrics::gauge!("tickcast_stream_subscriptions", "kind" => channel.kind())
                .increment(1.0);
            added.push(channel.to_string());
            self.subscriptions.insert(channel, forwarder);
        }
        let ack = (!added.is_empty())
            .then(|| json!({"type": "subscribed", "channels": added}).to_string());
        (ack, errors)
    }

    pub fn unsubscribe(&mut self, names: &[String]) -> (Option<String>, Vec<String>) {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for name in names {
            match self.hub.parse(name) {
                Ok(channel) => {
                    if let Some(forwarder) = self.subscriptions.remove(&channel) {
                        forwarder.abort();
                        metrics::gauge!("tickcast_stream_subscriptions", "kind" => channel.kind())
                            .decrement(1.0);
                    }
                    removed.push(channel.to_string());
                }
                Err(e) => errors.push(error_message(e.code(), e.message())),
            }
        }
        let ack = (!removed.is_empty())
            .then(|| json!({"type": "unsubscribed", "channels": removed}).to_string());
        (ack, errors)
    }

    pub fn subscriptions(&self) -> usize {
        self.subscriptions.len()
    }

    /// Notified when the client's outbox is full: it has stopped reading.
    pub fn overflow_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.overflow)
    }

    /// The next frames to send: everything waiting, each channel's newest
    /// message only, after a `lagged` notice for a channel that skipped.
    /// Pending while nothing waits.
    pub async fn next_frames(&mut self) -> Vec<String> {
        let mut batch = Vec::new();
        if self.outbox.recv_many(&mut batch, DRAIN).await == 0 {
            return Vec::new();
        }
        // Newest per channel, and how many of it were skipped.
        let mut newest: BTreeMap<String, (Option<Arc<Event>>, u64, usize)> = BTreeMap::new();
        for (order, item) in batch.into_iter().enumerate() {
            match item {
                Outgoing::Event(event) => {
                    let entry = newest
                        .entry(event.channel.clone())
                        .or_insert((None, 0, order));
                    if entry.0.is_some() {
                        entry.1 += 1;
                    }
                    entry.0 = Some(event);
                    entry.2 = order;
                }
                Outgoing::Lagged(channel, missed) => {
                    newest.entry(channel).or_insert((None, 0, order)).1 += missed;
                }
            }
        }
        let mut ordered: Vec<_> = newest.into_iter().collect();
        ordered.sort_by_key(|(_, (_, _, order))| *order);
        let mut frames = Vec::with_capacity(ordered.len());
        for (channel, (event, missed, _)) in ordered {
            if missed > 0 {
                metrics::counter!("tickcast_stream_messages_dropped_total").increment(missed);
                frames.push(
                    json!({"type": "lagged", "channel": channel, "missed": missed}).to_string(),
                );
            }
            if let Some(event) = event {
                let seq = self.sent.entry(channel).or_insert(0);
                *seq += 1;
                frames.push(event.frame(*seq));
            }
        }
        metrics::counter!("tickcast_stream_messages_sent_total").increment(frames.len() as u64);
        frames
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for (channel, forwarder) in self.subscriptions.drain() {
            forwarder.abort();
            metrics::gauge!("tickcast_stream_subscriptions", "kind" => channel.kind())
                .decrement(1.0);
        }
    }
}

/// `{"type": "error", "code", "error"}`.
pub fn error_message(code: &str, error: &str) -> String {
    json!({"type": "error", "code": code, "error": error}).to_string()
}

async fn forward(
    mut receiver: broadcast::Receiver<Arc<Event>>,
    latest: Option<Arc<Event>>,
    channel: String,
    outbox: mpsc::Sender<Outgoing>,
    overflow: Arc<Notify>,
) {
    let push = |item: Outgoing| match outbox.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            overflow.notify_one();
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    };
    if let Some(event) = latest {
        if !push(Outgoing::Event(event)) {
            return;
        }
    }
    loop {
        let item = match receiver.recv().await {
            Ok(event) => Outgoing::Event(event),
            Err(broadcast::error::RecvError::Lagged(n)) => Outgoing::Lagged(channel.clone(), n),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !push(item) {
            return;
        }
    }
}
