//! Owns the transport abstraction between domain services and the aggregator: a
//! [`Publisher`] that delivers messages durably (or says it did not) and a [`Subscriber`]
//! whose progress is only recorded when the caller says a message is durably processed.
//!
//! Two implementations: [`kafka`] (rdkafka, `acks=all`, idempotent producer, consumer group
//! whose offsets are stored only after the journal commit) and [`inproc`] (bounded channels
//! that apply backpressure, for `telemesh standalone`). [`SnapshotPublisher`] sits on top of
//! either and turns snapshots into messages.

pub mod inproc;
pub mod kafka;
mod publisher;
pub mod stats;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use publisher::{PublishError, PublishStats, SnapshotPublisher, DEPARTED_METRIC};
pub use stats::{BrokerStats, TransportStats};

/// Message headers as ordered (name, value) pairs.
pub type Headers = Vec<(String, Vec<u8>)>;

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub topic: String,
    pub key: Option<String>,
    pub headers: Headers,
    pub payload: Vec<u8>,
}

/// Where a published message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// The coordinates of a consumed message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A consumed message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub headers: Headers,
    pub payload: Vec<u8>,
    /// The broker or producer timestamp, when the transport has one.
    pub timestamp: Option<DateTime<Utc>>,
}

impl InboundMessage {
    /// The first header with that name (case-insensitive) as UTF-8, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn position(&self) -> Position {
        Position {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// Why the transport failed. Cloneable so it can cross actor boundaries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("kafka is not configured: set [kafka] brokers (TELEMESH__KAFKA__BROKERS)")]
    NotConfigured,
    #[error("kafka client setup failed: {0}")]
    Setup(String),
    #[error("publish to {topic} failed: {detail}")]
    Publish { topic: String, detail: String },
    #[error("consume failed: {0}")]
    Consume(String),
    #[error("offset store failed: {0}")]
    Commit(String),
    #[error("transport unreachable: {0}")]
    Unreachable(String),
    #[error("the in-process bus is closed: the aggregator side has stopped")]
    Closed,
}

/// Sends messages; `publish` returns only once the message is durably accepted.
#[async_trait]
pub trait Publisher: Send + Sync + fmt::Debug {
    async fn publish(&self, message: OutboundMessage) -> Result<Delivered, TransportError>;

    /// Checks that the transport answers within `timeout`.
    async fn check(&self, timeout: Duration) -> Result<(), TransportError>;

    /// The `messaging.system` of spans over this transport (OpenTelemetry conventions).
    fn messaging_system(&self) -> &'static str {
        "kafka"
    }

    /// The transport's own health counters (queue, in flight, errors, brokers), when it
    /// keeps them; read by the event-bus health domain.
    fn stats(&self) -> Option<TransportStats> {
        None
    }
}

/// Receives messages of the subscribed topics.
///
/// Contract: progress recorded with [`Subscriber::commit`] is where a restarted consumer
/// resumes, so callers commit a position only after its message is durably processed.
#[async_trait]
pub trait Subscriber: Send + fmt::Debug {
    /// Waits up to `timeout` for the next message; `None` when none arrived.
    async fn poll(&mut self, timeout: Duration) -> Result<Option<InboundMessage>, TransportError>;

    /// Records that every message up to and including each position is processed.
    fn commit(&mut self, processed: &[Position]) -> Result<(), TransportError>;

    /// Stops fetching new messages (backpressure) while staying in the group.
    fn pause(&mut self) -> Result<(), TransportError>;

    /// Undoes [`Subscriber::pause`].
    fn resume(&mut self) -> Result<(), TransportError>;

    /// Checks that the transport answers within `timeout`.
    async fn check(&self, timeout: Duration) -> Result<(), TransportError>;

    /// Flushes recorded progress synchronously before the subscriber is dropped.
    async fn close(&mut self) -> Result<(), TransportError>;

    /// Messages published but not yet consumed (consumer lag), when the transport knows it.
    fn backlog(&self) -> Option<u64> {
        None
    }

    /// The consumer group this subscriber belongs to, if the transport has groups.
    fn consumer_group(&self) -> Option<&str> {
        None
    }

    /// The `messaging.system` of spans over this transport (OpenTelemetry conventions).
    fn messaging_system(&self) -> &'static str {
        "kafka"
    }
}

/// The highest position per (topic, partition) of `positions`: what to commit after a batch.
pub fn highest_positions<'a, I: IntoIterator<Item = &'a Position>>(positions: I) -> Vec<Position> {
    let mut highest: std::collections::BTreeMap<(String, i32), i64> = Default::default();
    for p in positions {
        let entry = highest
            .entry((p.topic.clone(), p.partition))
            .or_insert(p.offset);
        *entry = (*entry).max(p.offset);
    }
    highest
        .into_iter()
        .map(|((topic, partition), offset)| Position {
            topic,
            partition,
            offset,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_positions_keeps_one_per_partition() {
        let p = |t: &str, part, off| Position {
            topic: t.into(),
            partition: part,
            offset: off,
        };
        let got = highest_positions(&[p("a", 0, 3), p("a", 0, 7), p("a", 1, 2), p("b", 0, 1)]);
        assert_eq!(got, vec![p("a", 0, 7), p("a", 1, 2), p("b", 0, 1)]);
    }
}
