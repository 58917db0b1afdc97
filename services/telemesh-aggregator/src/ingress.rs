//! Owns the ingress loop: consume, decode, dead-letter what cannot be decoded, journal in
//! batches, then record progress, then update the summary.
//!
//! Delivery rules (the heart of the aggregator):
//! - a message's position is committed only after the journal transaction holding it (or the
//!   dead-letter publish of it) succeeded: at-least-once from the transport, and the
//!   idempotent journal insert makes the effect exactly-once;
//! - a message that cannot be decoded goes to `telemetry.dlq` with headers naming its topic,
//!   partition, offset and the error (Kafka Connect's `__connect.errors.*` convention);
//! - when the journal is down, consumption pauses (the subscriber stays in its group), the
//!   batch is retried with backoff, and consumption resumes when the journal is back;
//! - actors are called with `send().await`, which honours mailbox capacity (backpressure).
//!
//! Tracing: each message gets a `process <topic>` consumer span, a child of the producer's
//! `send <topic>` span when the message carries a W3C `traceparent` header, with OpenTelemetry
//! messaging attributes, the dispatch lag (generated_at → processing), the bus backlog and the
//! journal mailbox depth; its children `journal.append` and `summary.update` time the batch
//! write and the summary update that included this message.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Addr;
use chrono::{DateTime, Utc};
use serde::Serialize;
use telemesh_alerting::actor::{AlertActor, IngestionHeld, IngestionProgress, ObserveAlerts};
use telemesh_core::codec::{self, CodecError, CONTENT_TYPE_HEADER};
use telemesh_core::telemetry;
use telemesh_core::topics;
use telemesh_core::transport::{
    highest_positions, InboundMessage, OutboundMessage, Publisher, Subscriber,
};
use telemesh_core::Snapshot;
use tokio::sync::watch;
use tracing::field::Empty;
use tracing::{Instrument, Span};
use uuid::Uuid;

use crate::actors::journal::{AppendBatch, JournalActor};
use crate::actors::summary::{Observe, SummaryActor};
use crate::journal::{JournalRecord, KafkaCoords};
use crate::metrics::{label, AggregatorMetrics};

/// Header prefix of dead-letter metadata (Kafka Connect convention).
pub const DLQ_HEADER_PREFIX: &str = "__connect.errors.";

/// What the ingress loop is doing, for readiness and diagnostics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngressStatus {
    pub running: bool,
    /// True while consumption is paused because the journal is down.
    pub paused: bool,
    pub last_error: Option<String>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub consumed: u64,
    pub journaled: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
}

/// Shared handle on [`IngressStatus`].
pub type SharedIngressStatus = Arc<Mutex<IngressStatus>>;

/// What the loop needs.
#[derive(Debug)]
pub struct Ingress {
    pub subscriber: Box<dyn Subscriber>,
    pub dlq: Arc<dyn Publisher>,
    pub topic_prefix: String,
    /// Whether positions are Kafka coordinates worth journaling.
    pub record_kafka_coords: bool,
    pub journal: Addr<JournalActor>,
    pub summary: Addr<SummaryActor>,
    /// The alert actor, when alerting is enabled.
    pub alerts: Option<Addr<AlertActor>>,
    pub metrics: Arc<AggregatorMetrics>,
    pub status: SharedIngressStatus,
    pub batch_size: usize,
    pub batch_linger: Duration,
}

/// A decoded message waiting for its journal commit.
struct Accepted {
    snapshot: Snapshot,
    message: InboundMessage,
    /// Its `process <topic>` span, closed when the message is fully handled.
    span: Span,
}

const IDLE_POLL: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Ingress {
    fn update(&self, f: impl FnOnce(&mut IngressStatus)) {
        if let Ok(mut status) = self.status.lock() {
            f(&mut status);
        }
    }

    /// Runs until `shutdown` turns true; then commits stored progress and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        self.update(|s| s.running = true);
        let mut pending: VecDeque<InboundMessage> = VecDeque::new();
        while !*shutdown.borrow() {
            let batch = tokio::select! {
                batch = self.collect_batch(&mut pending) => batch,
                _ = shutdown.changed() => break,
            };
            if batch.is_empty() {
                self.tell_alerts(IngestionProgress {
                    backlog: self.subscriber.backlog(),
                });
                continue;
            }
            if !self.process(batch, &mut pending, &mut shutdown).await {
                break;
            }
        }
        if let Err(e) = self.subscriber.close().await {
            tracing::warn!(error = %e, "final offset commit failed; uncommitted messages will be replayed (and deduplicated)");
        }
        self.update(|s| s.running = false);
        tracing::info!("ingress stopped");
    }

    /// Tells the alert actor (without waiting: alerting never slows ingestion).
    fn tell_alerts<M>(&self, msg: M)
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        AlertActor: actix::Handler<M>,
    {
        if let Some(alerts) = &self.alerts {
            alerts.do_send(msg);
        }
    }

    /// Up to `batch_size` messages: waits for the first, then lingers for more.
    async fn collect_batch(
        &mut self,
        pending: &mut VecDeque<InboundMessage>,
    ) -> Vec<InboundMessage> {
        let mut batch: Vec<InboundMessage> = Vec::new();
        while batch.len() < self.batch_size {
            match pending.pop_front() {
                Some(m) => batch.push(m),
                None => break,
            }
        }
        let deadline = Instant::now() + self.batch_linger;
        while batch.len() < self.batch_size {
            let wait = if batch.is_empty() {
                IDLE_POLL
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            if !batch.is_empty() && wait.is_zero() {
                break;
            }
            match self.subscriber.poll(wait).await {
                Ok(Some(message)) => batch.push(message),
                Ok(None) => {
                    if batch.is_empty() {
                        return batch;
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "consume error; retrying");
                    self.update(|s| s.last_error = Some(e.to_string()));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
        batch
    }

    /// Decodes, dead-letters, journals and commits one batch. Returns false on shutdown.
    async fn process(
        &mut self,
        batch: Vec<InboundMessage>,
        pending: &mut VecDeque<InboundMessage>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let positions: Vec<_> = batch.iter().map(InboundMessage::position).collect();
        let now = Utc::now();
        let backlog = self.subscriber.backlog();
        if let Some(backlog) = backlog {
            self.metrics
                .consumer_lag
                .set(i64::try_from(backlog).unwrap_or(i64::MAX));
        }
        let batch_len = batch.len();
        let mut accepted = Vec::with_capacity(batch_len);
        for message in batch {
            let kind =
                topics::kind_of_topic(&self.topic_prefix, &message.topic).unwrap_or("unknown");
            self.metrics
                .consumed
                .get_or_create(&label("kind", kind))
                .inc();
            let span = self.process_span(&message, batch_len, backlog);
            match self.decode(&message) {
                Ok(snapshot) => {
                    let lag = (now - snapshot.generated_at)
                        .num_microseconds()
                        .unwrap_or(0)
                        .max(0) as f64
                        / 1e6;
                    self.metrics.dispatch_lag_seconds.observe(lag);
                    span.record("telemesh.dispatch_lag_seconds", lag);
                    span.record("telemesh.snapshot.id", snapshot.id.to_string());
                    span.record("telemesh.snapshot.kind", snapshot.kind.as_str());
                    accepted.push(Accepted {
                        snapshot,
                        message,
                        span,
                    })
                }
                Err(error) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", error.class());
                    let sent = self
                        .dead_letter(&message, &error, kind, shutdown)
                        .instrument(span.clone())
                        .await;
                    if !sent {
                        return false;
                    }
                }
            }
        }
        // alert evaluation does not wait for the journal write
        if self.alerts.is_some() && !accepted.is_empty() {
            let _alert_spans: Vec<Span> = accepted
                .iter()
                .map(|a| tracing::info_span!(parent: &a.span, "alert.evaluate"))
                .collect();
            self.tell_alerts(ObserveAlerts(
                accepted.iter().map(|a| a.snapshot.clone()).collect(),
            ));
        }
        let records: Vec<JournalRecord> = accepted
            .iter()
            .map(|a| JournalRecord {
                snapshot: a.snapshot.clone(),
                received_at: now,
                kafka: self.record_kafka_coords.then(|| KafkaCoords {
                    topic: a.message.topic.clone(),
                    partition: a.message.partition,
                    offset: a.message.offset,
                }),
            })
            .collect();
        let journal_depth = self
            .metrics
            .mailbox_depth
            .get_or_create(&label("actor", "journal"))
            .clone();
        let depth = journal_depth.get() + 1;
        let journal_spans: Vec<Span> = accepted
            .iter()
            .map(|a| {
                a.span.record("telemesh.mailbox.depth", depth);
                tracing::info_span!(
                    parent: &a.span,
                    "journal.append",
                    telemesh.journal.batch_size = records.len(),
                    telemesh.journal.inserted = Empty,
                )
            })
            .collect();
        let inserted: HashSet<Uuid> = if records.is_empty() {
            HashSet::new()
        } else {
            journal_depth.inc();
            let written = self.journal_until_done(records, pending, shutdown).await;
            journal_depth.dec();
            match written {
                Some(ids) => ids.into_iter().collect(),
                None => return false,
            }
        };
        for (a, span) in accepted.iter().zip(&journal_spans) {
            span.record(
                "telemesh.journal.inserted",
                inserted.contains(&a.snapshot.id),
            );
        }
        drop(journal_spans);
        if let Err(e) = self.subscriber.commit(&highest_positions(&positions)) {
            tracing::warn!(error = %e, "offset store failed; these messages may be replayed (and deduplicated)");
        }
        let committed_at = Utc::now();
        let mut duplicates = 0;
        for a in &accepted {
            if inserted.contains(&a.snapshot.id) {
                let lag = (committed_at - a.snapshot.generated_at)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1e6;
                self.metrics.end_to_end_lag_seconds.observe(lag.max(0.0));
                self.metrics
                    .journaled
                    .get_or_create(&label("kind", &a.snapshot.kind))
                    .inc();
            } else {
                duplicates += 1;
            }
        }
        self.metrics.duplicates.inc_by(duplicates);
        self.update(|s| {
            s.consumed += positions.len() as u64;
            s.journaled += inserted.len() as u64;
            s.duplicates += duplicates;
            s.last_message_at = Some(committed_at);
        });
        let (snapshots, spans): (Vec<Snapshot>, Vec<Span>) =
            accepted.into_iter().map(|a| (a.snapshot, a.span)).unzip();
        if !snapshots.is_empty() {
            let summary_spans: Vec<Span> = spans
                .iter()
                .map(|span| tracing::info_span!(parent: span, "summary.update"))
                .collect();
            let summary_depth = self
                .metrics
                .mailbox_depth
                .get_or_create(&label("actor", "summary"))
                .clone();
            summary_depth.inc();
            let sent = self.summary.send(Observe(snapshots)).await;
            summary_depth.dec();
            if let Err(e) = sent {
                tracing::error!(error = %e, "summary actor unavailable");
            }
            drop(summary_spans);
        }
        drop(spans);
        self.tell_alerts(IngestionProgress { backlog });
        true
    }

    /// The `process <topic>` consumer span of one message, continuing the producer's trace.
    fn process_span(
        &self,
        message: &InboundMessage,
        batch_len: usize,
        backlog: Option<u64>,
    ) -> Span {
        let span = tracing::info_span!(
            parent: None,
            "process",
            otel.name = %format!("process {}", message.topic),
            otel.kind = "consumer",
            otel.status_code = Empty,
            messaging.system = self.subscriber.messaging_system(),
            messaging.operation.name = "process",
            messaging.operation.type = "process",
            messaging.destination.name = %message.topic,
            messaging.destination.partition.id = %message.partition,
            messaging.kafka.offset = message.offset,
            messaging.consumer.group.name = self.subscriber.consumer_group().unwrap_or_default(),
            messaging.batch.message_count = batch_len,
            messaging.message.body.size = message.payload.len(),
            telemesh.dispatch_lag_seconds = Empty,
            telemesh.mailbox.depth = Empty,
            telemesh.bus.backlog = backlog,
            telemesh.snapshot.id = Empty,
            telemesh.snapshot.kind = Empty,
            error.type = Empty,
        );
        telemetry::set_parent_from_headers(&span, &message.headers);
        span
    }

    fn decode(&self, message: &InboundMessage) -> Result<Snapshot, CodecError> {
        let snapshot = codec::decode(message.header(CONTENT_TYPE_HEADER), &message.payload)?;
        let expected = topics::kind_of_topic(&self.topic_prefix, &message.topic);
        if expected != Some(snapshot.kind.as_str()) {
            return Err(CodecError::Malformed {
                encoding: "envelope",
                detail: format!(
                    "snapshot kind {:?} arrived on topic {:?}; publish each kind on its own topic",
                    snapshot.kind, message.topic
                ),
            });
        }
        Ok(snapshot)
    }

    /// Publishes a poison message to the dead-letter topic, retrying until it is accepted:
    /// moving past it before that would lose it. Returns false on shutdown.
    async fn dead_letter(
        &mut self,
        message: &InboundMessage,
        error: &CodecError,
        kind: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut headers = message.headers.clone();
        let mut meta =
            |k: &str, v: String| headers.push((format!("{DLQ_HEADER_PREFIX}{k}"), v.into_bytes()));
        meta("topic", message.topic.clone());
        meta("partition", message.partition.to_string());
        meta("offset", message.offset.to_string());
        meta("stage", "decode".into());
        meta("connector.name", "telemesh-aggregator".into());
        meta("exception.class.name", error.class().into());
        meta("exception.message", error.to_string());
        let dlq = OutboundMessage {
            topic: topics::topic_name(&self.topic_prefix, topics::DLQ),
            key: message
                .key
                .as_ref()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            payload: message.payload.clone(),
        };
        tracing::warn!(
            topic = %message.topic,
            partition = message.partition,
            offset = message.offset,
            error = %error,
            "undecodable message sent to the dead-letter topic"
        );
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.dlq.publish(dlq.clone()).await {
                Ok(_) => {
                    self.metrics
                        .dead_letters
                        .get_or_create(&vec![
                            ("kind".to_owned(), kind.to_owned()),
                            ("reason".to_owned(), error.class().to_owned()),
                        ])
                        .inc();
                    self.update(|s| s.dead_lettered += 1);
                    return true;
                }
                Err(e) => {
                    tracing::error!(error = %e, "dead-letter publish failed; retrying before moving on");
                    self.update(|s| s.last_error = Some(e.to_string()));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return false,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Writes the batch, pausing consumption and retrying while the journal is down.
    /// Returns the ids of the new rows, or `None` on shutdown.
    async fn journal_until_done(
        &mut self,
        records: Vec<JournalRecord>,
        pending: &mut VecDeque<InboundMessage>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Vec<Uuid>> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let outcome = match self.journal.send(AppendBatch(records.clone())).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(e) => Err(format!("journal actor unavailable: {e}")),
            };
            match outcome {
                Ok(inserted) => {
                    if self.status.lock().map(|s| s.paused).unwrap_or(false) {
                        tracing::info!("journal is back; resuming consumption");
                        if let Err(e) = self.subscriber.resume() {
                            tracing::warn!(error = %e, "resume failed");
                        }
                        self.metrics.ingress_paused.set(0);
                        self.update(|s| {
                            s.paused = false;
                            s.last_error = None;
                        });
                    }
                    return Some(inserted);
                }
                Err(error) => {
                    let first = !self.status.lock().map(|s| s.paused).unwrap_or(true);
                    if first {
                        tracing::error!(error = %error, "journal write failed; pausing consumption until it recovers");
                        self.tell_alerts(IngestionHeld {
                            cause: format!("journal down: {error}"),
                        });
                        if let Err(e) = self.subscriber.pause() {
                            tracing::warn!(error = %e, "pause failed");
                        }
                        self.metrics.ingress_paused.set(1);
                    }
                    self.update(|s| {
                        s.paused = true;
                        s.last_error = Some(error);
                    });
                    // keep the group membership alive while waiting; keep anything that arrives
                    let wait = tokio::select! {
                        polled = self.subscriber.poll(backoff) => polled,
                        _ = shutdown.changed() => return None,
                    };
                    if let Ok(Some(message)) = wait {
                        pending.push_back(message);
                    }
                    if *shutdown.borrow() {
                        return None;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
