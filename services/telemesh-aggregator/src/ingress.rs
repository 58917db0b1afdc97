//! Owns the ingress loop: consume, decode, dead-letter what cannot be decoded, journal in
//! batches, then record progress, then update the summary.
//!
//! Delivery rules (the heart of the aggregator):
//! - a message's position is committed only after the journal transaction holding it (or the
//!   dead-letter publish of it) succeeded: at-least-once from the transport, and the
//!   idempotent journal insert makes the effect exactly-once;
//! - a message that cannot be decoded, breaks a limit of `telemesh_core::limits` or is dated
//!   too far in the future goes to `telemetry.dlq` with headers naming its topic, partition,
//!   offset, stage and the error (Kafka Connect's `__connect.errors.*` convention);
//! - a record the database refuses (a permanent journal error) is found by bisecting its batch
//!   and dead-lettered with stage `journal` and the database's message; the rest of the batch
//!   is journaled;
//! - when the journal is down (a transient error, including a client-side timeout),
//!   consumption pauses (the subscriber stays in its group), the batch is retried with
//!   backoff, and consumption resumes when the journal is back;
//! - batches are bounded in count and bytes, the records of a batch are shared across
//!   retries, and what arrives while paused is kept in a capped queue;
//! - the loop beats a heartbeat; `/health/live` turns 503 when it has not beaten for
//!   `liveness_stall_seconds` (a batch stuck with work waiting, or a dead loop);
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
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use telemesh_alerting::actor::{AlertActor, IngestionHeld, IngestionProgress, ObserveAlerts};
use telemesh_core::codec::{self, CodecError, CONTENT_TYPE_HEADER, MAX_MESSAGE_BYTES};
use telemesh_core::limits;
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
use crate::journal::{JournalError, JournalErrorKind, JournalRecord, KafkaCoords};
use crate::metrics::{label, AggregatorMetrics, Labels};
use crate::settings::AggregatorSettings;

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
    /// Records the database refused (also counted in `dead_lettered`).
    pub refused: u64,
    /// The last time the loop made progress or was idle with nothing waiting.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// `/health/live` answers 503 when the heartbeat is older than this (0 = never).
    pub liveness_stall_seconds: u64,
    /// Set while dead-letter writes of one record keep failing (readiness 503 says why).
    pub dlq_failing: Option<String>,
    /// Messages received while paused, waiting for the next batch (capped).
    pub pending: usize,
}

impl IngressStatus {
    /// Why the loop counts as wedged at `now`, if it does.
    pub fn wedged(&self, now: DateTime<Utc>) -> Option<String> {
        if !self.running || self.liveness_stall_seconds == 0 {
            return None;
        }
        let beat = self.heartbeat_at?;
        let silent = (now - beat).num_seconds();
        (silent > self.liveness_stall_seconds as i64).then(|| {
            format!(
                "ingress made no progress for {silent}s with work waiting (limit {}s): {}",
                self.liveness_stall_seconds,
                self.last_error.as_deref().unwrap_or("no error recorded")
            )
        })
    }
}

/// The bounds of the ingress loop (see `[aggregator]` in `docs/configuration.md`).
#[derive(Debug, Clone)]
pub struct IngressLimits {
    /// `generated_at` further ahead of the receive time than this is dead-lettered.
    pub max_future_skew: chrono::Duration,
    /// A batch stops growing at this many payload bytes.
    pub max_batch_bytes: usize,
    /// Messages kept while consumption is paused; beyond it the loop stops polling.
    pub max_pending: usize,
    /// Client-side bound of one journal round trip.
    pub journal_timeout: Duration,
    /// After this many failed dead-letter writes of one record, readiness turns 503 and an
    /// error-level log says why.
    pub dlq_alert_after: u32,
    /// After this many failed dead-letter writes of one record, move past it (lost): only when
    /// the operator set it (0 = keep retrying).
    pub dlq_skip_after: u32,
}

impl Default for IngressLimits {
    fn default() -> Self {
        Self::from_settings(&AggregatorSettings::default())
    }
}

impl IngressLimits {
    pub fn from_settings(s: &AggregatorSettings) -> Self {
        Self {
            max_future_skew: chrono::Duration::seconds(
                i64::try_from(s.max_future_skew_seconds).unwrap_or(i64::MAX / 1000),
            ),
            max_batch_bytes: s.max_batch_bytes.max(1),
            max_pending: s.max_pending_messages.max(s.batch_size),
            journal_timeout: Duration::from_millis(s.journal_write_timeout_ms.max(1))
                + Duration::from_secs(1),
            dlq_alert_after: s.dlq_alert_after_failures.max(1),
            dlq_skip_after: s.dlq_skip_after_failures,
        }
    }
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
    pub limits: IngressLimits,
}

/// A decoded message waiting for its journal commit (its snapshot travels in the batch's
/// journal records, and comes back from them for the summary).
struct Accepted {
    id: Uuid,
    kind: String,
    generated_at: DateTime<Utc>,
    message: InboundMessage,
    /// Its `process <topic>` span, closed when the message is fully handled.
    span: Span,
}

const IDLE_POLL: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Longest `exception.message` header of a dead letter.
const MAX_DLQ_MESSAGE_CHARS: usize = 2_000;
/// Room kept under [`MAX_MESSAGE_BYTES`] for the record framing of a dead letter.
const DLQ_FRAMING_BYTES: usize = 4_096;
/// The dead-letter header that says the payload was cut, holding its original size.
pub const DLQ_TRUNCATED_HEADER: &str = "__connect.errors.payload.truncated";
/// The dead-letter header that says the original headers were dropped to fit.
pub const DLQ_HEADERS_DROPPED_HEADER: &str = "__connect.errors.headers.dropped";

fn header_bytes(headers: &[(String, Vec<u8>)]) -> usize {
    headers.iter().map(|(k, v)| k.len() + v.len() + 8).sum()
}

/// The dead letter of `message`: its key, headers and payload plus `__connect.errors.*`
/// metadata. It always fits [`MAX_MESSAGE_BYTES`]: a payload too large is cut (with
/// [`DLQ_TRUNCATED_HEADER`] = the original size), and original headers too large are dropped
/// (with [`DLQ_HEADERS_DROPPED_HEADER`]).
pub fn dead_letter_record(
    dlq_topic: String,
    message: &InboundMessage,
    stage: &str,
    class: &str,
    detail: &str,
) -> OutboundMessage {
    let mut meta: Vec<(String, Vec<u8>)> = Vec::new();
    let mut put =
        |k: &str, v: String| meta.push((format!("{DLQ_HEADER_PREFIX}{k}"), v.into_bytes()));
    put("topic", message.topic.clone());
    put("partition", message.partition.to_string());
    put("offset", message.offset.to_string());
    put("stage", stage.to_owned());
    put("connector.name", "telemesh-aggregator".into());
    put("exception.class.name", class.to_owned());
    put(
        "exception.message",
        detail.chars().take(MAX_DLQ_MESSAGE_CHARS).collect(),
    );
    let key = message
        .key
        .as_ref()
        .map(|k| String::from_utf8_lossy(k).into_owned());
    let budget = MAX_MESSAGE_BYTES - DLQ_FRAMING_BYTES;
    let key_len = key.as_ref().map_or(0, String::len);
    let mut original = message.headers.clone();
    // 2 × 64 bytes: room for the truncation / dropped headers themselves
    let fixed = |meta: &[(String, Vec<u8>)], original: &[(String, Vec<u8>)]| {
        key_len + header_bytes(meta) + header_bytes(original) + 128
    };
    if fixed(&meta, &original) > budget / 2 {
        meta.push((
            DLQ_HEADERS_DROPPED_HEADER.to_owned(),
            header_bytes(&original).to_string().into_bytes(),
        ));
        original.clear();
    }
    let room = budget.saturating_sub(fixed(&meta, &original));
    let payload = if message.payload.len() > room {
        meta.push((
            DLQ_TRUNCATED_HEADER.to_owned(),
            message.payload.len().to_string().into_bytes(),
        ));
        message.payload[..room].to_vec()
    } else {
        message.payload.clone()
    };
    original.extend(meta);
    OutboundMessage {
        topic: dlq_topic,
        key,
        headers: original,
        payload,
    }
}

/// When a batch that starts with `first` stops lingering: `linger` after `first`'s transport
/// timestamp, but no later than `latest` (linger from the batch's start). A timestamp ahead of
/// `now` (a producer's clock) counts as just sent; one older than `linger` closes the batch
/// with what is already there. Pure.
fn linger_deadline(
    latest: Instant,
    linger: Duration,
    first: &InboundMessage,
    now: DateTime<Utc>,
) -> Instant {
    let Some(sent) = first.timestamp else {
        return latest;
    };
    let waited = (now - sent).to_std().unwrap_or(Duration::ZERO);
    latest.min(Instant::now() + linger.saturating_sub(waited))
}

/// What is left in a journal record whose snapshot went on to the summary: allocation-free.
fn taken() -> Snapshot {
    Snapshot {
        id: Uuid::nil(),
        kind: String::new(),
        source: telemesh_core::Source::new(String::new(), String::new()),
        generated_at: DateTime::<Utc>::MIN_UTC,
        status: telemesh_core::Grade::Ok,
        summary: String::new(),
        components: Vec::new(),
        metrics: std::collections::BTreeMap::new(),
        markdown: String::new(),
    }
}

/// A consumed message waiting for its batch; decoded already when it was fetched while the
/// previous batch was being written (so decoding overlaps the database's work).
struct Fetched {
    message: InboundMessage,
    decoded: Option<Result<Snapshot, CodecError>>,
}

impl Fetched {
    fn new(message: InboundMessage) -> Self {
        Self {
            message,
            decoded: None,
        }
    }
}

/// Counts per kind within one batch, added to a `kind`-labelled counter once per kind rather
/// than looked up (and its labels built) per message.
#[derive(Default)]
struct PerKind(Vec<(String, u64)>);

impl PerKind {
    fn count(&mut self, kind: &str) {
        match self.0.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => self.0.push((kind.to_owned(), 1)),
        }
    }

    fn add_to(self, counter: &Family<Labels, Counter>) {
        for (kind, n) in self.0 {
            counter.get_or_create(&label("kind", &kind)).inc_by(n);
        }
    }
}

/// Why a message is dead-lettered.
struct Reject<'a> {
    stage: &'static str,
    class: &'a str,
    detail: String,
}

impl Ingress {
    fn update(&self, f: impl FnOnce(&mut IngressStatus)) {
        if let Ok(mut status) = self.status.lock() {
            f(&mut status);
        }
    }

    /// Records progress for liveness.
    fn beat(&self) {
        self.update(|s| s.heartbeat_at = Some(Utc::now()));
    }

    /// Runs until `shutdown` turns true; then commits stored progress and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        self.update(|s| s.running = true);
        let mut pending: VecDeque<Fetched> = VecDeque::new();
        while !*shutdown.borrow() {
            self.beat();
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

    /// Up to `batch_size` messages: waits for the first, then lingers for more, but never
    /// longer than `batch_linger` past the first message's transport timestamp (when it has
    /// one). So messages that queued up while the previous batch was being written go out at
    /// once with whatever else is already there (group commit): the linger adds latency only
    /// when traffic is sparse, and a busy stream waits about one write, not one write plus the
    /// linger.
    async fn collect_batch(&mut self, pending: &mut VecDeque<Fetched>) -> Vec<Fetched> {
        let mut batch: Vec<Fetched> = Vec::new();
        let mut bytes = 0usize;
        let max_bytes = self.limits.max_batch_bytes;
        while batch.len() < self.batch_size && bytes < max_bytes {
            match pending.pop_front() {
                Some(m) => {
                    bytes += m.message.payload.len();
                    batch.push(m);
                }
                None => break,
            }
        }
        let mut deadline = Instant::now() + self.batch_linger;
        if let Some(first) = batch.first() {
            deadline = linger_deadline(deadline, self.batch_linger, &first.message, Utc::now());
            let left = pending.len();
            self.update(|s| s.pending = left);
        }
        while batch.len() < self.batch_size && bytes < max_bytes {
            let wait = if batch.is_empty() {
                IDLE_POLL
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            match self.subscriber.poll(wait).await {
                Ok(Some(message)) => {
                    if batch.is_empty() {
                        deadline = linger_deadline(
                            Instant::now() + self.batch_linger,
                            self.batch_linger,
                            &message,
                            Utc::now(),
                        );
                    }
                    bytes += message.payload.len();
                    batch.push(Fetched::new(message));
                }
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
        batch: Vec<Fetched>,
        pending: &mut VecDeque<Fetched>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let positions: Vec<_> = batch.iter().map(|f| f.message.position()).collect();
        let now = Utc::now();
        let backlog = self.subscriber.backlog();
        if let Some(backlog) = backlog {
            self.metrics
                .consumer_lag
                .set(i64::try_from(backlog).unwrap_or(i64::MAX));
        }
        let batch_len = batch.len();
        let mut accepted = Vec::with_capacity(batch_len);
        let mut decoded_snapshots = Vec::with_capacity(batch_len);
        let mut consumed = PerKind::default();
        for Fetched { message, decoded } in batch {
            let kind =
                topics::kind_of_topic(&self.topic_prefix, &message.topic).unwrap_or("unknown");
            consumed.count(kind);
            let span = self.process_span(&message, batch_len, backlog);
            let decoded = decoded
                .unwrap_or_else(|| self.decode(&message))
                .and_then(|snapshot| {
                    limits::check_clock(&snapshot, now, self.limits.max_future_skew)?;
                    Ok(snapshot)
                });
            match decoded {
                Ok(snapshot) => {
                    let lag = (now - snapshot.generated_at)
                        .num_microseconds()
                        .unwrap_or(0)
                        .max(0) as f64
                        / 1e6;
                    self.metrics.dispatch_lag_seconds.observe(lag);
                    span.record("telemesh.dispatch_lag_seconds", lag);
                    span.record(
                        "telemesh.snapshot.id",
                        tracing::field::display(&snapshot.id),
                    );
                    span.record("telemesh.snapshot.kind", snapshot.kind.as_str());
                    accepted.push(Accepted {
                        id: snapshot.id,
                        kind: snapshot.kind.clone(),
                        generated_at: snapshot.generated_at,
                        message,
                        span,
                    });
                    decoded_snapshots.push(snapshot);
                }
                Err(error) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", error.class());
                    let reject = Reject {
                        stage: "decode",
                        class: error.class(),
                        detail: error.to_string(),
                    };
                    let sent = self
                        .dead_letter(&message, reject, kind, shutdown)
                        .instrument(span.clone())
                        .await;
                    if !sent {
                        return false;
                    }
                }
            }
        }
        consumed.add_to(&self.metrics.consumed);
        let mut records: Arc<[JournalRecord]> = accepted
            .iter()
            .zip(decoded_snapshots)
            .map(|(a, snapshot)| JournalRecord {
                snapshot,
                received_at: now,
                kafka: self.record_kafka_coords.then(|| KafkaCoords {
                    topic: a.message.topic.clone(),
                    partition: a.message.partition,
                    offset: a.message.offset,
                }),
            })
            .collect();
        // alert evaluation does not wait for the journal write
        if self.alerts.is_some() && !accepted.is_empty() {
            let _alert_spans: Vec<Span> = accepted
                .iter()
                .map(|a| tracing::info_span!(parent: &a.span, "alert.evaluate"))
                .collect();
            self.tell_alerts(ObserveAlerts(
                records.iter().map(|r| r.snapshot.clone()).collect(),
            ));
        }
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
        let (inserted, refused): (HashSet<Uuid>, Vec<(usize, JournalError)>) = if records.is_empty()
        {
            (HashSet::new(), Vec::new())
        } else {
            journal_depth.inc();
            let written = self
                .journal_bisecting(Arc::clone(&records), pending, shutdown)
                .await;
            journal_depth.dec();
            match written {
                Some((ids, refused)) => (ids.into_iter().collect(), refused),
                None => return false,
            }
        };
        for (a, span) in accepted.iter().zip(&journal_spans) {
            span.record("telemesh.journal.inserted", inserted.contains(&a.id));
        }
        drop(journal_spans);
        let refused_at: HashSet<usize> = refused.iter().map(|(i, _)| *i).collect();
        for (i, error) in &refused {
            let a = &accepted[*i];
            a.span.record("otel.status_code", "ERROR");
            a.span.record("error.type", "journal_refused");
            let reject = Reject {
                stage: "journal",
                class: "journal_refused",
                detail: error.to_string(),
            };
            let kind = a.kind.clone();
            let sent = self
                .dead_letter(&a.message, reject, &kind, shutdown)
                .instrument(a.span.clone())
                .await;
            if !sent {
                return false;
            }
            self.update(|s| s.refused += 1);
        }
        // the snapshots back from the records (moved when nothing else holds them any more)
        let snapshots: Vec<Snapshot> = match Arc::get_mut(&mut records) {
            Some(records) => records
                .iter_mut()
                .map(|r| std::mem::replace(&mut r.snapshot, taken()))
                .collect(),
            None => records.iter().map(|r| r.snapshot.clone()).collect(),
        };
        drop(records);
        let (accepted, snapshots): (Vec<Accepted>, Vec<Snapshot>) = accepted
            .into_iter()
            .zip(snapshots)
            .enumerate()
            .filter(|(i, _)| !refused_at.contains(i))
            .map(|(_, pair)| pair)
            .unzip();
        if let Err(e) = self.subscriber.commit(&highest_positions(&positions)) {
            tracing::warn!(error = %e, "offset store failed; these messages may be replayed (and deduplicated)");
        }
        let committed_at = Utc::now();
        let mut duplicates = 0;
        // a copy delivered twice within one batch is inserted once: the second is a duplicate
        let mut counted: HashSet<Uuid> = HashSet::with_capacity(inserted.len());
        let mut journaled = PerKind::default();
        for a in &accepted {
            if inserted.contains(&a.id) && counted.insert(a.id) {
                let lag = (committed_at - a.generated_at)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1e6;
                self.metrics.end_to_end_lag_seconds.observe(lag.max(0.0));
                journaled.count(&a.kind);
            } else {
                duplicates += 1;
            }
        }
        journaled.add_to(&self.metrics.journaled);
        self.metrics.duplicates.inc_by(duplicates);
        self.update(|s| {
            s.consumed += positions.len() as u64;
            s.journaled += inserted.len() as u64;
            s.duplicates += duplicates;
            s.last_message_at = Some(committed_at);
            s.heartbeat_at = Some(committed_at);
        });
        let spans: Vec<Span> = accepted.into_iter().map(|a| a.span).collect();
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
    /// moving past it before that would lose it (unless the operator set
    /// `dlq_skip_after_failures`). Returns false on shutdown.
    async fn dead_letter(
        &mut self,
        message: &InboundMessage,
        reject: Reject<'_>,
        kind: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let dlq = dead_letter_record(
            topics::topic_name(&self.topic_prefix, topics::DLQ),
            message,
            reject.stage,
            reject.class,
            &reject.detail,
        );
        tracing::warn!(
            topic = %message.topic,
            partition = message.partition,
            offset = message.offset,
            stage = reject.stage,
            reason = reject.class,
            error = %reject.detail,
            "message sent to the dead-letter topic"
        );
        let mut backoff = Duration::from_millis(100);
        let mut failures: u32 = 0;
        loop {
            match self.dlq.publish(dlq.clone()).await {
                Ok(_) => {
                    self.metrics
                        .dead_letters
                        .get_or_create(&vec![
                            ("kind".to_owned(), kind.to_owned()),
                            ("reason".to_owned(), reject.class.to_owned()),
                        ])
                        .inc();
                    self.update(|s| {
                        s.dead_lettered += 1;
                        s.dlq_failing = None;
                    });
                    self.beat();
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, failures, "dead-letter publish failed; retrying before moving on");
                    self.update(|s| s.last_error = Some(e.to_string()));
                    if failures == self.limits.dlq_alert_after {
                        let why = format!(
                            "dead-letter topic refuses writes ({failures} failures for {}[{}]@{}): {e}; \
                             fix the topic or the brokers, ingestion waits",
                            message.topic, message.partition, message.offset
                        );
                        tracing::error!(alert = true, "{why}");
                        // one cause alert (staleness held meanwhile); resolved by the next progress
                        self.tell_alerts(IngestionHeld { cause: why.clone() });
                        self.update(|s| s.dlq_failing = Some(why));
                    }
                    if self.limits.dlq_skip_after > 0 && failures >= self.limits.dlq_skip_after {
                        tracing::error!(
                            alert = true,
                            topic = %message.topic,
                            partition = message.partition,
                            offset = message.offset,
                            reason = reject.class,
                            "giving up on dead-lettering this record (aggregator.dlq_skip_after_failures): it is lost"
                        );
                        self.metrics
                            .dead_letters
                            .get_or_create(&vec![
                                ("kind".to_owned(), kind.to_owned()),
                                ("reason".to_owned(), "lost_dlq_unavailable".to_owned()),
                            ])
                            .inc();
                        self.update(|s| s.dlq_failing = None);
                        return true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return false,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Journals `records`, bisecting on permanent errors: returns the ids of the new rows and
    /// the refused records (index in `records`, the database's error), or `None` on shutdown.
    async fn journal_bisecting(
        &mut self,
        records: Arc<[JournalRecord]>,
        pending: &mut VecDeque<Fetched>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<(Vec<Uuid>, Vec<(usize, JournalError)>)> {
        let mut inserted = Vec::new();
        let mut refused = Vec::new();
        // ranges of `records` still to write, next one last
        let mut todo: Vec<std::ops::Range<usize>> = Vec::new();
        todo.push(0..records.len());
        while let Some(range) = todo.pop() {
            let part: Arc<[JournalRecord]> = if range.len() == records.len() {
                Arc::clone(&records)
            } else {
                records[range.clone()].into()
            };
            match self.journal_until_done(part, pending, shutdown).await? {
                Ok(ids) => inserted.extend(ids),
                Err(error) if range.len() == 1 => {
                    tracing::warn!(error = %error, "the journal refused a record; dead-lettering it");
                    refused.push((range.start, error));
                }
                Err(error) => {
                    tracing::info!(error = %error, records = range.len(), "the journal refused a batch; bisecting to find the record(s)");
                    let mid = range.start + range.len() / 2;
                    todo.push(mid..range.end);
                    todo.push(range.start..mid);
                }
            }
        }
        Some((inserted, refused))
    }

    /// Writes the batch, pausing consumption and retrying while the journal is down (transient
    /// errors). Returns the ids of the new rows, the permanent error that refused the batch,
    /// or `None` on shutdown.
    async fn journal_until_done(
        &mut self,
        records: Arc<[JournalRecord]>,
        pending: &mut VecDeque<Fetched>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Result<Vec<Uuid>, JournalError>> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let limit = self.limits.journal_timeout;
            let write =
                tokio::time::timeout(limit, self.journal.send(AppendBatch(Arc::clone(&records))));
            tokio::pin!(write);
            // while the database works (on the journal actor's own thread), the next messages
            // are fetched into `pending` and decoded (up to one batch ahead, not while paused):
            // decoding and the write overlap instead of taking turns; nothing is committed
            // before its own batch's transaction
            let mut prefetch = !self.status.lock().map(|s| s.paused).unwrap_or(true);
            let outcome = loop {
                let room = prefetch && pending.len() < self.batch_size;
                tokio::select! {
                    biased;
                    answer = &mut write => break match answer {
                        Ok(Ok(result)) => result,
                        Ok(Err(e)) => Err(JournalError::Unavailable(format!("journal actor unavailable: {e}"))),
                        Err(_) => Err(JournalError::Timeout(limit)),
                    },
                    _ = shutdown.changed() => return None,
                    polled = self.subscriber.poll(IDLE_POLL), if room => match polled {
                        Ok(Some(message)) => {
                            let decoded = self.decode(&message);
                            pending.push_back(Fetched { message, decoded: Some(decoded) });
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "consume error while writing; fetching again after the write");
                            prefetch = false;
                        }
                    },
                }
            };
            let answered = match &outcome {
                Ok(_) => true,
                Err(e) => e.kind() == JournalErrorKind::Permanent,
            };
            if answered {
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
                self.beat();
                return Some(outcome);
            }
            let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
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
            // keep the group membership alive while waiting; keep anything that arrives, up to
            // the cap (beyond it, messages wait in the consumer until the batch is written)
            let pending_bytes: usize = pending.iter().map(|m| m.message.payload.len()).sum();
            if pending.len() < self.limits.max_pending
                && pending_bytes < self.limits.max_batch_bytes
            {
                let wait = tokio::select! {
                    polled = self.subscriber.poll(backoff) => polled,
                    _ = shutdown.changed() => return None,
                };
                if let Ok(Some(message)) = wait {
                    pending.push_back(Fetched::new(message));
                    let queued = pending.len();
                    self.update(|s| s.pending = queued);
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return None,
                }
            }
            if *shutdown.borrow() {
                return None;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: usize, payload: usize) -> InboundMessage {
        InboundMessage {
            topic: "telemetry.kafka.readiness".into(),
            partition: 2,
            offset: 7,
            key: Some(b"svc/i".to_vec()),
            headers: vec![("x-big".into(), vec![b'h'; headers])],
            payload: vec![b'p'; payload],
            timestamp: None,
        }
    }

    #[test]
    fn the_linger_ends_linger_after_the_first_message_was_sent_never_later_than_from_the_start() {
        let linger = Duration::from_millis(50);
        let now = Utc::now();
        let latest = Instant::now() + linger;
        let ms = |n: i64| chrono::Duration::milliseconds(n);
        // (sent relative to now, remaining linger at most, at least)
        let table: [(Option<i64>, u64, u64); 6] = [
            (None, 50, 45),         // no timestamp: the whole linger
            (Some(0), 50, 45),      // just sent
            (Some(-20), 30, 25),    // sent 20 ms ago: 30 ms left
            (Some(-50), 0, 0),      // waited the whole linger already: close now
            (Some(-5_000), 0, 0),   // queued long ago (a backlog): close now
            (Some(60_000), 50, 45), // a producer clock ahead: counts as just sent
        ];
        for (sent, most, least) in table {
            let mut m = message(0, 1);
            m.timestamp = sent.map(|d| now + ms(d));
            let left = linger_deadline(latest, linger, &m, now)
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            assert!(left <= most && left >= least, "{sent:?}: {left} ms left");
        }
    }

    fn size(m: &OutboundMessage) -> usize {
        m.key.as_ref().map_or(0, String::len) + header_bytes(&m.headers) + m.payload.len()
    }

    #[test]
    fn dead_letters_always_fit_the_message_limit() {
        // (original header bytes, payload bytes, truncated?, headers dropped?)
        let table = [
            (10, 100, false, false),
            (10, 900_000, false, false),
            (10, 999_000, true, false),
            (10, 5_000_000, true, false),
            (600_000, 600_000, false, true),
            (600_000, 999_000, true, true),
            (2_000_000, 10, false, true),
        ];
        for (headers, payload, truncated, dropped) in table {
            let m = message(headers, payload);
            let dlq =
                dead_letter_record("dlq".into(), &m, "decode", "oversized", &"e".repeat(10_000));
            let find = |name: &str| {
                dlq.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            };
            assert!(
                size(&dlq) <= MAX_MESSAGE_BYTES - DLQ_FRAMING_BYTES,
                "{headers}/{payload}"
            );
            assert_eq!(
                find(DLQ_TRUNCATED_HEADER),
                truncated.then(|| payload.to_string()),
                "{headers}/{payload}"
            );
            assert_eq!(find(DLQ_HEADERS_DROPPED_HEADER).is_some(), dropped);
            assert_eq!(&dlq.payload[..], &m.payload[..dlq.payload.len()]);
            assert_eq!(find("__connect.errors.offset").as_deref(), Some("7"));
            assert_eq!(
                find("__connect.errors.exception.message").map(|m| m.len()),
                Some(MAX_DLQ_MESSAGE_CHARS)
            );
        }
    }
}
