//! Owns the Kafka transport (rdkafka with its bundled librdkafka).
//!
//! Delivery contract:
//! - Producer: `acks=all`, `enable.idempotence=true`; `publish` resolves only when the broker
//!   acknowledged the write (or failed it, which the caller counts and retries).
//! - Consumer: `enable.auto.commit=true` with `enable.auto.offset.store=false`. Offsets are
//!   *stored* only through [`Subscriber::commit`], which the aggregator calls after the
//!   journal transaction holding those messages committed; the background committer then
//!   commits stored offsets only. On partition revoke and on close, stored offsets are
//!   committed synchronously. A crash therefore replays at most the uncommitted tail, and the
//!   journal's idempotent insert turns that replay into no new rows.
//! - While the subscriber is paused (journal outage), partitions assigned by a rebalance are
//!   paused in the rebalance callback too, so nothing new is fetched into memory.
//! - Messages are at most [`MAX_MESSAGE_BYTES`] (`message.max.bytes`), aligned with the
//!   decoder's payload limit.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::codec::MAX_MESSAGE_BYTES;
use crate::config::KafkaSettings;
use crate::transport::stats::{BrokerStats, StatsRecorder, TransportStats};
use crate::transport::{
    Delivered, InboundMessage, OutboundMessage, Position, Publisher, Subscriber, TransportError,
};

/// How often librdkafka emits its statistics JSON (`statistics.interval.ms`) for producers
/// and consumers.
pub const STATISTICS_INTERVAL_MS: u64 = 5000;
/// `queue.buffering.max.messages` of the producer: the capacity event-bus health grades
/// the producer queue against.
pub const PRODUCER_QUEUE_CAPACITY: u64 = 100_000;

/// The settings every client shares: brokers, security, client id.
pub fn client_config(settings: &KafkaSettings) -> Result<ClientConfig, TransportError> {
    if !settings.is_configured() {
        return Err(TransportError::NotConfigured);
    }
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", settings.broker_list().join(","))
        .set("client.id", &settings.client_id)
        .set("security.protocol", &settings.security_protocol)
        .set(
            "socket.timeout.ms",
            settings.request_timeout_ms.max(1000).to_string(),
        )
        .set("log_level", "4");
    if !settings.sasl_mechanism.is_empty() {
        config.set("sasl.mechanism", &settings.sasl_mechanism);
    }
    if !settings.username.is_empty() {
        config.set("sasl.username", &settings.username);
    }
    if !settings.password.is_empty() {
        config.set("sasl.password", settings.password.expose());
    }
    if !settings.ssl_ca_location.is_empty() {
        config.set("ssl.ca.location", &settings.ssl_ca_location);
    }
    Ok(config)
}

fn setup_error(e: KafkaError) -> TransportError {
    TransportError::Setup(e.to_string())
}

/// Fetches cluster metadata within `timeout`; returns the ids of the brokers that answered.
pub fn check_connectivity(
    consumer: &BaseConsumer,
    timeout: Duration,
) -> Result<Vec<i32>, TransportError> {
    let metadata = consumer.fetch_metadata(None, timeout).map_err(|e| {
        TransportError::Unreachable(format!(
            "{e}; check [kafka] brokers and that the cluster is up"
        ))
    })?;
    Ok(metadata.brokers().iter().map(|b| b.id()).collect())
}

/// What the producer's client context and the publisher share: the publish counters and
/// librdkafka's latest statistics.
#[derive(Debug, Default)]
struct ProducerShared {
    recorder: StatsRecorder,
    latest: std::sync::Mutex<Option<LibrdkafkaStats>>,
}

/// The producer's client context: keeps librdkafka's latest statistics and errors.
#[derive(Debug, Default)]
pub struct ProducerStats(Arc<ProducerShared>);

/// What event-bus health needs of one librdkafka statistics emission.
#[derive(Debug, Clone, PartialEq)]
pub struct LibrdkafkaStats {
    pub at: chrono::DateTime<Utc>,
    /// `msg_cnt`: messages in the producer queues.
    pub msg_cnt: u64,
    /// `msg_max`: their maximum.
    pub msg_max: u64,
    pub brokers: Vec<BrokerStats>,
}

impl LibrdkafkaStats {
    /// Reads one statistics emission; internal pseudo-brokers (no node id) are left out and
    /// negative gauges (librdkafka's "unknown") read as 0.
    pub fn from_statistics(statistics: &Statistics, at: chrono::DateTime<Utc>) -> Self {
        let ms = |us: i64| (us >= 0).then(|| us as f64 / 1000.0);
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        let mut brokers: Vec<BrokerStats> = statistics
            .brokers
            .values()
            .filter(|b| b.source != "internal")
            .map(|b| BrokerStats {
                name: b.name.clone(),
                state: b.state.clone(),
                rtt_avg_ms: b.rtt.as_ref().filter(|w| w.cnt > 0).and_then(|w| ms(w.avg)),
                rtt_p99_ms: b.rtt.as_ref().filter(|w| w.cnt > 0).and_then(|w| ms(w.p99)),
                outbuf_cnt: count(b.outbuf_cnt),
                outbuf_msg_cnt: count(b.outbuf_msg_cnt),
                waitresp_cnt: count(b.waitresp_cnt),
                txerrs: b.txerrs,
                txretries: b.txretries,
                req_timeouts: b.req_timeouts,
            })
            .collect();
        brokers.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            at,
            msg_cnt: statistics.msg_cnt,
            msg_max: statistics.msg_max,
            brokers,
        }
    }
}

impl ClientContext for ProducerStats {
    fn stats(&self, statistics: Statistics) {
        let parsed = LibrdkafkaStats::from_statistics(&statistics, Utc::now());
        *self.0.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(parsed);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka producer error");
        self.0.recorder.error(&format!("{error}: {reason}"));
    }
}

/// A producer with `acks=all` and idempotence on.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer<ProducerStats>,
    shared: Arc<ProducerShared>,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl KafkaPublisher {
    pub fn new(settings: &KafkaSettings) -> Result<Self, TransportError> {
        let shared = Arc::new(ProducerShared::default());
        let producer: FutureProducer<ProducerStats> = client_config(settings)?
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set(
                "message.timeout.ms",
                settings.message_timeout_ms.to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                PRODUCER_QUEUE_CAPACITY.to_string(),
            )
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string())
            .create_with_context(ProducerStats(Arc::clone(&shared)))
            .map_err(setup_error)?;
        Ok(Self {
            producer,
            shared,
            timeout: Duration::from_millis(settings.message_timeout_ms),
        })
    }

    /// Waits until every queued message is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), TransportError> {
        self.producer
            .flush(timeout)
            .map_err(|e| TransportError::Publish {
                topic: "*".into(),
                detail: e.to_string(),
            })
    }
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, message: OutboundMessage) -> Result<Delivered, TransportError> {
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record = FutureRecord::to(&message.topic)
            .payload(&message.payload)
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key);
        }
        let recorder = &self.shared.recorder;
        let _in_flight = recorder.start();
        match self.producer.send(record, self.timeout).await {
            Ok(delivery) => {
                recorder.delivered(&message.topic);
                Ok(Delivered {
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            Err((err, _)) => {
                recorder.failed(&err.to_string());
                Err(TransportError::Publish {
                    topic: message.topic.clone(),
                    detail: err.to_string(),
                })
            }
        }
    }

    fn stats(&self) -> Option<TransportStats> {
        let context = &self.shared;
        let mut stats = context.recorder.snapshot("kafka");
        stats.queue_depth = u64::try_from(self.producer.in_flight_count()).unwrap_or(0);
        stats.queue_capacity = Some(PRODUCER_QUEUE_CAPACITY);
        let latest = context
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match latest {
            Some(latest) => {
                stats.running = latest.brokers.iter().any(|b| b.state == "UP");
                stats.queue_capacity = Some(latest.msg_max)
                    .filter(|m| *m > 0)
                    .or(stats.queue_capacity);
                stats.queue_depth = stats.queue_depth.max(latest.msg_cnt);
                stats.retries = latest.brokers.iter().map(|b| b.txretries).sum();
                stats.stats_at = Some(latest.at);
                stats.brokers = latest.brokers;
            }
            // no statistics yet (first seconds): no evidence of an outage
            None => stats.running = true,
        }
        Some(stats)
    }

    async fn check(&self, timeout: Duration) -> Result<(), TransportError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| TransportError::Unreachable(e.to_string()))
        })
        .await
        .map_err(|e| TransportError::Unreachable(e.to_string()))?
    }
}

/// Commits stored offsets synchronously when partitions are revoked, so the next owner of a
/// partition starts after the last journaled message, not at an older auto-commit. Also keeps
/// the consumer lag librdkafka reports in its statistics (every 5 s).
#[derive(Debug, Default)]
pub struct CommitOnRevoke {
    /// Sum of `consumer_lag` over assigned partitions; -1 until known.
    lag: Arc<AtomicI64>,
    /// Set while the subscriber is paused: newly assigned partitions are paused as well.
    paused: Arc<AtomicBool>,
}

impl ClientContext for CommitOnRevoke {
    fn stats(&self, statistics: Statistics) {
        let lags = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag);
        let mut total = None;
        for lag in lags {
            *total.get_or_insert(0) += lag;
        }
        self.lag.store(total.unwrap_or(-1), Ordering::Relaxed);
    }
}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!(
                    partitions = partitions.count(),
                    "committed stored offsets on revoke"
                ),
                // nothing stored since the last commit is not a failure
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "commit on revoke failed; the next owner may replay journaled messages (deduplicated)")
                }
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            if self.paused.load(Ordering::SeqCst) && partitions.count() > 0 {
                match consumer.pause(partitions) {
                    Ok(()) => tracing::info!(
                        partitions = partitions.count(),
                        "paused partitions assigned while ingestion is paused"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "pausing newly assigned partitions failed")
                    }
                }
            }
        }
    }
}

/// A consumer-group member of the subscribed topics.
pub struct KafkaSubscriber {
    consumer: StreamConsumer<CommitOnRevoke>,
    /// A group-less client for metadata checks, which block and so run off the event loop.
    probe: Arc<BaseConsumer>,
    paused: Arc<AtomicBool>,
    lag: Arc<AtomicI64>,
    group: String,
}

impl std::fmt::Debug for KafkaSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscriber")
            .field("paused", &self.paused.load(Ordering::Relaxed))
            .finish()
    }
}

/// Where a consumer group without a stored offset starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The oldest retained message (telemetry: nothing is missed).
    Earliest,
    /// Only messages produced after the member joined (order requests: a new group never
    /// replays history).
    Latest,
}

impl OffsetReset {
    fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
        }
    }
}

impl KafkaSubscriber {
    /// Joins `settings.group_id` and subscribes to `topics`, reading from the earliest offset
    /// when the group has none. A name starting with `^` is a librdkafka regex subscription
    /// (POSIX extended): topics created later that match are picked up within
    /// `settings.metadata_refresh_ms`.
    pub fn new(settings: &KafkaSettings, topics: &[String]) -> Result<Self, TransportError> {
        Self::starting_at(settings, topics, OffsetReset::Earliest)
    }

    /// Stores `next` (each position is the next offset to read, not the last processed one)
    /// and commits every stored offset synchronously: when it returns `Ok`, a restart of the
    /// group resumes there even after a `kill -9`.
    pub fn commit_next(&mut self, next: &[Position]) -> Result<(), TransportError> {
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in next {
            tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.offset))
                .map_err(|e| TransportError::Commit(e.to_string()))?;
        }
        self.consumer
            .store_offsets(&tpl)
            .map_err(|e| TransportError::Commit(e.to_string()))?;
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            // already committed: nothing new to commit
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(e) => Err(TransportError::Commit(e.to_string())),
        }
    }

    /// Like [`KafkaSubscriber::new`], starting at `reset` when the group has no offset.
    pub fn starting_at(
        settings: &KafkaSettings,
        topics: &[String],
        reset: OffsetReset,
    ) -> Result<Self, TransportError> {
        let lag = Arc::new(AtomicI64::new(-1));
        let paused = Arc::new(AtomicBool::new(false));
        let consumer: StreamConsumer<CommitOnRevoke> = client_config(settings)?
            .set("group.id", &settings.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", reset.as_str())
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("statistics.interval.ms", "5000")
            // a `^regex` subscription sees topics created later on the next refresh
            .set(
                "topic.metadata.refresh.interval.ms",
                settings.metadata_refresh_ms.max(100).to_string(),
            )
            // bound what librdkafka prefetches into memory (defaults: 64 MiB queue, 50 MiB fetch)
            .set("queued.max.messages.kbytes", "16384")
            .set("fetch.max.bytes", "8388608")
            .create_with_context(CommitOnRevoke {
                lag: Arc::clone(&lag),
                paused: Arc::clone(&paused),
            })
            .map_err(setup_error)?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(setup_error)?;
        let probe: BaseConsumer = client_config(settings)?.create().map_err(setup_error)?;
        Ok(Self {
            consumer,
            probe: Arc::new(probe),
            paused,
            lag,
            group: settings.group_id.clone(),
        })
    }
}

fn to_inbound<M: Message>(message: &M) -> InboundMessage {
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|header| {
                    (
                        header.key.to_owned(),
                        header.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    InboundMessage {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        headers,
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        timestamp: message
            .timestamp()
            .to_millis()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
    }
}

#[async_trait]
impl Subscriber for KafkaSubscriber {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<InboundMessage>, TransportError> {
        match tokio::time::timeout(timeout, self.consumer.recv()).await {
            Err(_) => Ok(None),
            Ok(Ok(message)) => Ok(Some(to_inbound(&message))),
            Ok(Err(KafkaError::PartitionEOF(_))) => Ok(None),
            Ok(Err(e)) => Err(TransportError::Consume(e.to_string())),
        }
    }

    fn commit(&mut self, processed: &[Position]) -> Result<(), TransportError> {
        if processed.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in processed {
            // the stored offset is the next one to read: last processed + 1
            tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.offset + 1))
                .map_err(|e| TransportError::Commit(e.to_string()))?;
        }
        match self.consumer.store_offsets(&tpl) {
            Ok(()) => Ok(()),
            // the partition was revoked meanwhile: its new owner replays, the journal dedupes
            Err(KafkaError::StoreOffset(RDKafkaErrorCode::State)) => {
                tracing::info!(
                    "offsets of revoked partitions not stored; the new owner will replay them"
                );
                Ok(())
            }
            Err(e) => Err(TransportError::Commit(e.to_string())),
        }
    }

    fn pause(&mut self) -> Result<(), TransportError> {
        if !self.paused.swap(true, Ordering::SeqCst) {
            let assignment = self
                .consumer
                .assignment()
                .map_err(|e| TransportError::Consume(e.to_string()))?;
            self.consumer
                .pause(&assignment)
                .map_err(|e| TransportError::Consume(e.to_string()))?;
        }
        Ok(())
    }

    fn resume(&mut self) -> Result<(), TransportError> {
        if self.paused.swap(false, Ordering::SeqCst) {
            // everything assigned now, including partitions paused by a rebalance meanwhile
            let assignment = self
                .consumer
                .assignment()
                .map_err(|e| TransportError::Consume(e.to_string()))?;
            self.consumer
                .resume(&assignment)
                .map_err(|e| TransportError::Consume(e.to_string()))?;
        }
        Ok(())
    }

    async fn check(&self, timeout: Duration) -> Result<(), TransportError> {
        let probe = Arc::clone(&self.probe);
        tokio::task::spawn_blocking(move || check_connectivity(probe.as_ref(), timeout))
            .await
            .map_err(|e| TransportError::Unreachable(e.to_string()))?
            .map(|_| ())
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(e) => Err(TransportError::Commit(e.to_string())),
        }
    }

    fn backlog(&self) -> Option<u64> {
        u64::try_from(self.lag.load(Ordering::Relaxed)).ok()
    }

    fn consumer_group(&self) -> Option<&str> {
        Some(&self.group)
    }
}

/// A topic the mesh needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

/// What [`ensure_topics`] did per topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsureTopicsReport {
    pub existing: Vec<String>,
    pub created: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// Creates the topics of `specs` that do not exist yet. A topic that already exists (or was
/// created concurrently) counts as existing; every other failure is reported per topic.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    specs: &[TopicSpec],
) -> Result<EnsureTopicsReport, TransportError> {
    let timeout = Duration::from_millis(settings.request_timeout_ms);
    let admin: AdminClient<DefaultClientContext> =
        client_config(settings)?.create().map_err(setup_error)?;
    let probe: BaseConsumer = client_config(settings)?.create().map_err(setup_error)?;
    let metadata = tokio::task::spawn_blocking(move || probe.fetch_metadata(None, timeout))
        .await
        .map_err(|e| TransportError::Unreachable(e.to_string()))?
        .map_err(|e| TransportError::Unreachable(e.to_string()))?;
    let mut report = EnsureTopicsReport::default();
    let mut missing = Vec::new();
    for spec in specs {
        if metadata
            .topics()
            .iter()
            .any(|t| t.name() == spec.name && t.error().is_none())
        {
            report.existing.push(spec.name.clone());
        } else {
            missing.push(spec);
        }
    }
    if missing.is_empty() {
        return Ok(report);
    }
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|s| {
            NewTopic::new(
                &s.name,
                s.partitions,
                TopicReplication::Fixed(s.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(timeout.saturating_mul(2)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| TransportError::Unreachable(e.to_string()))?;
    for result in results {
        match result {
            Ok(name) => report.created.push(name),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => report.existing.push(name),
            Err((name, code)) => report.failed.push((name, code.to_string())),
        }
    }
    for spec in &missing {
        let answered = report.created.contains(&spec.name)
            || report.existing.contains(&spec.name)
            || report.failed.iter().any(|(n, _)| n == &spec.name);
        if !answered {
            report
                .failed
                .push((spec.name.clone(), "no result returned".into()));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use rdkafka::statistics::{Broker, Window};

    use super::*;

    fn broker(name: &str, source: &str, state: &str, rtt: Option<Window>) -> Broker {
        Broker {
            name: name.into(),
            nodeid: if source == "internal" { -1 } else { 1 },
            source: source.into(),
            state: state.into(),
            outbuf_cnt: 3,
            outbuf_msg_cnt: -1, // librdkafka's "unknown"
            waitresp_cnt: 2,
            txerrs: 4,
            txretries: 5,
            req_timeouts: 6,
            rtt,
            ..Broker::default()
        }
    }

    #[test]
    fn librdkafka_statistics_are_read_per_broker_without_internal_ones() {
        let mut statistics = Statistics {
            msg_cnt: 7,
            msg_max: 100_000,
            ..Statistics::default()
        };
        let rtt = Window {
            avg: 2500,
            p99: 9000,
            cnt: 10,
            ..Window::default()
        };
        let empty = Window {
            avg: -1,
            cnt: 0,
            ..Window::default()
        };
        for b in [
            broker("b:9092/1", "learned", "UP", Some(rtt)),
            broker("a:9092/bootstrap", "configured", "DOWN", Some(empty)),
            broker(":0/internal", "internal", "UP", None),
        ] {
            statistics.brokers.insert(b.name.clone(), b);
        }
        let at = Utc::now();
        let s = LibrdkafkaStats::from_statistics(&statistics, at);
        assert_eq!((s.msg_cnt, s.msg_max, s.at), (7, 100_000, at));
        let names: Vec<_> = s.brokers.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a:9092/bootstrap", "b:9092/1"]);
        let up = &s.brokers[1];
        assert_eq!((up.rtt_avg_ms, up.rtt_p99_ms), (Some(2.5), Some(9.0)));
        assert_eq!(
            (up.outbuf_cnt, up.outbuf_msg_cnt, up.waitresp_cnt),
            (3, 0, 2)
        );
        assert_eq!((up.txerrs, up.txretries, up.req_timeouts), (4, 5, 6));
        assert_eq!(s.brokers[0].rtt_avg_ms, None, "no samples: no rtt");
    }
}
