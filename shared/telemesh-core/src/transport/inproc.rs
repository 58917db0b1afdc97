//! Owns the in-process transport of `telemesh standalone`: one bounded channel from every
//! publisher to the one subscriber, so a slow consumer blocks publishers (backpressure)
//! instead of dropping messages. Messages for topics nobody subscribed to (the dead-letter
//! topic in standalone mode) are retained in a bounded buffer and logged. Like a librdkafka
//! subscription, a routed name starting with `^` is a regex (the aggregator routes every
//! `telemetry.<area>.<name>` topic that way).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::mpsc;

use crate::transport::stats::{StatsRecorder, TransportStats};
use crate::transport::{
    Delivered, InboundMessage, OutboundMessage, Position, Publisher, Subscriber, TransportError,
};

/// `messaging.system` of spans over the in-process bus. Headers (including `traceparent`)
/// travel unchanged, so standalone traces look like Kafka ones.
pub const MESSAGING_SYSTEM: &str = "telemesh_inproc";

/// How many messages of unsubscribed topics are kept for inspection.
const RETAINED_CAPACITY: usize = 1000;

/// The in-process bus. Create it once, hand [`InProcessBus::publisher`] to every service and
/// take the one [`InProcessBus::subscriber`] for the aggregator.
#[derive(Debug)]
pub struct InProcessBus {
    routed: HashSet<String>,
    /// Routed names that start with `^`, compiled.
    patterns: Vec<regex_lite::Regex>,
    tx: mpsc::Sender<InboundMessage>,
    rx: Mutex<Option<mpsc::Receiver<InboundMessage>>>,
    offsets: Mutex<HashMap<String, i64>>,
    retained: Mutex<VecDeque<InboundMessage>>,
    stats: StatsRecorder,
}

impl InProcessBus {
    /// A bus whose subscriber receives `routed` topics through a channel of `capacity`. A
    /// name starting with `^` is a regex matched against the whole topic name; one that does
    /// not compile routes nothing and is logged.
    pub fn new<I, S>(capacity: usize, routed: I) -> Arc<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (patterns, names): (Vec<String>, Vec<String>) = routed
            .into_iter()
            .map(Into::into)
            .partition(|name| name.starts_with('^'));
        let patterns = patterns
            .iter()
            .filter_map(|p| match regex_lite::Regex::new(p) {
                Ok(re) => Some(re),
                Err(e) => {
                    tracing::error!(pattern = %p, error = %e, "in-process subscription pattern does not compile; it routes nothing");
                    None
                }
            })
            .collect();
        Arc::new(Self {
            routed: names.into_iter().collect(),
            patterns,
            tx,
            rx: Mutex::new(Some(rx)),
            offsets: Mutex::default(),
            retained: Mutex::default(),
            stats: StatsRecorder::default(),
        })
    }

    pub fn publisher(self: &Arc<Self>) -> Arc<dyn Publisher> {
        Arc::new(InProcessPublisher {
            bus: Arc::clone(self),
        })
    }

    /// The subscriber of the routed topics; `None` after the first call.
    pub fn subscriber(self: &Arc<Self>) -> Option<InProcessSubscriber> {
        let rx = self.rx.lock().ok()?.take()?;
        Some(InProcessSubscriber {
            rx,
            bus: Arc::clone(self),
            committed: HashMap::new(),
            paused: false,
        })
    }

    /// Messages published to topics nobody subscribed to (newest last).
    pub fn retained(&self, topic: &str) -> Vec<InboundMessage> {
        self.retained
            .lock()
            .map(|r| r.iter().filter(|m| m.topic == topic).cloned().collect())
            .unwrap_or_default()
    }

    /// Messages waiting in the channel: the in-process equivalent of consumer lag.
    pub fn backlog(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// True when the subscriber receives `topic`.
    pub fn routes(&self, topic: &str) -> bool {
        self.routed.contains(topic) || self.patterns.iter().any(|re| re.is_match(topic))
    }

    /// The bus's health: channel depth against capacity, publishes waiting for room (in
    /// flight), drops of the retained buffer, dead letters, whether the subscriber is alive.
    pub fn stats(&self) -> TransportStats {
        let mut stats = self.stats.snapshot(MESSAGING_SYSTEM);
        let taken = self.rx.lock().map(|rx| rx.is_none()).unwrap_or(true);
        let alive = !self.tx.is_closed();
        stats.running = alive;
        stats.queue_depth = self.backlog() as u64;
        stats.queue_capacity = Some(self.tx.max_capacity() as u64);
        stats.subscribers = Some(u64::from(taken && alive));
        stats
    }

    fn next_offset(&self, topic: &str) -> i64 {
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        let next = offsets.entry(topic.to_owned()).or_insert(0);
        let offset = *next;
        *next += 1;
        offset
    }
}

/// Publishes onto an [`InProcessBus`]; waits while the channel is full.
#[derive(Debug, Clone)]
pub struct InProcessPublisher {
    bus: Arc<InProcessBus>,
}

#[async_trait]
impl Publisher for InProcessPublisher {
    async fn publish(&self, message: OutboundMessage) -> Result<Delivered, TransportError> {
        let _in_flight = self.bus.stats.start();
        let offset = self.bus.next_offset(&message.topic);
        let topic = message.topic.clone();
        let inbound = InboundMessage {
            topic: message.topic,
            partition: 0,
            offset,
            key: message.key.map(String::into_bytes),
            headers: message.headers,
            payload: message.payload,
            timestamp: Some(Utc::now()),
        };
        if self.bus.routes(&inbound.topic) {
            if self.bus.tx.send(inbound).await.is_err() {
                self.bus.stats.failed(&TransportError::Closed.to_string());
                return Err(TransportError::Closed);
            }
            self.bus.stats.delivered(&topic);
        } else {
            tracing::warn!(topic = %inbound.topic, offset, "in-process message retained: no subscriber for this topic");
            let mut retained = self.bus.retained.lock().unwrap_or_else(|e| e.into_inner());
            if retained.len() == RETAINED_CAPACITY {
                retained.pop_front();
                self.bus.stats.dropped();
            }
            retained.push_back(inbound);
            self.bus.stats.delivered(&topic);
        }
        Ok(Delivered {
            partition: 0,
            offset,
        })
    }

    async fn check(&self, _timeout: Duration) -> Result<(), TransportError> {
        if self.bus.tx.is_closed() {
            Err(TransportError::Closed)
        } else {
            Ok(())
        }
    }

    fn messaging_system(&self) -> &'static str {
        MESSAGING_SYSTEM
    }

    fn stats(&self) -> Option<TransportStats> {
        Some(self.bus.stats())
    }
}

/// The aggregator's end of an [`InProcessBus`].
#[derive(Debug)]
pub struct InProcessSubscriber {
    rx: mpsc::Receiver<InboundMessage>,
    bus: Arc<InProcessBus>,
    committed: HashMap<(String, i32), i64>,
    paused: bool,
}

impl InProcessSubscriber {
    /// The highest committed offset of a topic's partition 0, if any.
    pub fn committed(&self, topic: &str) -> Option<i64> {
        self.committed.get(&(topic.to_owned(), 0)).copied()
    }

    pub fn bus(&self) -> &Arc<InProcessBus> {
        &self.bus
    }
}

#[async_trait]
impl Subscriber for InProcessSubscriber {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<InboundMessage>, TransportError> {
        if self.paused {
            tokio::time::sleep(timeout).await;
            return Ok(None);
        }
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Some(message)) => Ok(Some(message)),
            Ok(None) => Err(TransportError::Closed),
            Err(_) => Ok(None),
        }
    }

    fn commit(&mut self, processed: &[Position]) -> Result<(), TransportError> {
        for p in processed {
            let entry = self
                .committed
                .entry((p.topic.clone(), p.partition))
                .or_insert(p.offset);
            *entry = (*entry).max(p.offset);
        }
        Ok(())
    }

    fn pause(&mut self) -> Result<(), TransportError> {
        self.paused = true;
        Ok(())
    }

    fn resume(&mut self) -> Result<(), TransportError> {
        self.paused = false;
        Ok(())
    }

    async fn check(&self, _timeout: Duration) -> Result<(), TransportError> {
        Ok(())
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.rx.close();
        Ok(())
    }

    fn backlog(&self) -> Option<u64> {
        Some(self.bus.backlog() as u64)
    }

    fn messaging_system(&self) -> &'static str {
        MESSAGING_SYSTEM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str) -> OutboundMessage {
        OutboundMessage {
            topic: topic.into(),
            key: Some("svc/1".into()),
            headers: vec![],
            payload: b"x".to_vec(),
        }
    }

    #[tokio::test]
    async fn routed_messages_flow_in_order_and_a_full_channel_blocks() {
        let bus = InProcessBus::new(2, ["a"]);
        let publisher = bus.publisher();
        let mut sub = bus.subscriber().unwrap();
        assert!(bus.subscriber().is_none());
        publisher.publish(msg("a")).await.unwrap();
        publisher.publish(msg("a")).await.unwrap();
        // the third publish waits for room: backpressure, not a drop
        let blocked =
            tokio::time::timeout(Duration::from_millis(50), publisher.publish(msg("a"))).await;
        assert!(blocked.is_err());
        assert_eq!(bus.backlog(), 2);
        let first = sub.poll(Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(
            (first.offset, first.key.as_deref()),
            (0, Some(&b"svc/1"[..]))
        );
        sub.commit(&[first.position()]).unwrap();
        assert_eq!(sub.committed("a"), Some(0));
    }

    #[tokio::test]
    async fn a_caret_name_routes_every_matching_topic() {
        let pattern = crate::topics::subscription_pattern("t1.");
        let bus = InProcessBus::new(4, [pattern.as_str(), "exact"]);
        for (topic, routed) in [
            ("t1.telemetry.kafka.readiness", true),
            ("t1.telemetry.team_x.new_feed", true),
            ("exact", true),
            ("t1.telemetry.dlq", false),
            ("telemetry.team_x.new_feed", false),
            ("t1.execution.order_events", false),
            ("t1xtelemetry.a.b", false),
            ("t1.telemetry.a.b.c", false),
        ] {
            assert_eq!(bus.routes(topic), routed, "{topic}");
        }
        let broken = InProcessBus::new(1, ["^(unclosed"]);
        assert!(!broken.routes("^(unclosed"));
    }

    #[tokio::test]
    async fn stats_show_depth_waiting_publishes_dead_letters_and_a_closed_subscriber() {
        let bus = InProcessBus::new(2, ["a"]);
        let publisher = bus.publisher();
        let stats = publisher.stats().expect("in-process stats");
        assert_eq!((stats.running, stats.subscribers), (true, Some(0)));
        let mut sub = bus.subscriber().unwrap();
        publisher.publish(msg("a")).await.unwrap();
        publisher.publish(msg("a")).await.unwrap();
        let waiting = {
            let publisher = publisher.clone();
            tokio::spawn(async move { publisher.publish(msg("a")).await })
        };
        for _ in 0..500 {
            if bus.stats().in_flight == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = bus.stats();
        assert_eq!(stats.queue_depth, 2);
        assert_eq!(stats.queue_capacity, Some(2));
        assert_eq!(stats.in_flight, 1, "the third publish waits for room");
        assert_eq!(stats.subscribers, Some(1));
        publisher.publish(msg(crate::topics::DLQ)).await.unwrap();
        sub.poll(Duration::from_secs(1)).await.unwrap().unwrap();
        waiting.await.unwrap().unwrap();
        let stats = bus.stats();
        assert_eq!((stats.published, stats.handler_errors), (4, 1));
        sub.close().await.unwrap();
        drop(sub);
        assert!(publisher.publish(msg("a")).await.is_err());
        let stats = bus.stats();
        assert!(!stats.running);
        assert_eq!((stats.subscribers, stats.delivery_errors), (Some(0), 1));
        assert!(stats.last_error.is_some());
    }

    #[tokio::test]
    async fn retained_overflow_counts_as_dropped() {
        let bus = InProcessBus::new(2, ["a"]);
        let publisher = bus.publisher();
        for _ in 0..RETAINED_CAPACITY + 3 {
            publisher.publish(msg("other")).await.unwrap();
        }
        assert_eq!(bus.stats().dropped, 3);
    }

    #[tokio::test]
    async fn unrouted_topics_are_retained() {
        let bus = InProcessBus::new(2, ["a"]);
        bus.publisher().publish(msg("dlq")).await.unwrap();
        assert_eq!(bus.retained("dlq").len(), 1);
    }
}
