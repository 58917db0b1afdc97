//! Owns [`SnapshotPublisher`]: encodes snapshots, names their topic, key and headers, and
//! retries failed publishes with backoff so a snapshot is never silently dropped.
//!
//! Observability: each publish is a `send <topic>` producer span (OpenTelemetry messaging
//! conventions) whose W3C `traceparent` travels in the message headers, and is counted in
//! [`PublisherMetrics`] (produced, failed attempts, given up, latency by kind).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::codec::{self, Encoding, CONTENT_TYPE_HEADER};
use crate::metrics::{self, label, PublisherMetrics};
use crate::snapshot::{Snapshot, Source};
use crate::topics;
use crate::transport::{Delivered, OutboundMessage, Publisher, TransportError};

/// Counters of one publisher, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct PublishStats {
    pub published: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub given_up: AtomicU64,
}

/// A snapshot metric > 0 marking an instance's last word before it shuts down.
pub const DEPARTED_METRIC: &str = "departed";

/// Publishes snapshots on a [`Publisher`].
#[derive(Debug, Clone)]
pub struct SnapshotPublisher {
    inner: Arc<dyn Publisher>,
    encoding: Encoding,
    topic_prefix: String,
    max_attempts: u32,
    stats: Arc<PublishStats>,
    metrics: PublisherMetrics,
}

/// Why a snapshot was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot encode snapshot: {0}")]
    Encode(#[from] codec::CodecError),
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: TransportError },
}

impl SnapshotPublisher {
    pub fn new(
        inner: Arc<dyn Publisher>,
        encoding: Encoding,
        topic_prefix: impl Into<String>,
    ) -> Self {
        Self {
            inner,
            encoding,
            topic_prefix: topic_prefix.into(),
            max_attempts: 8,
            stats: Arc::default(),
            metrics: metrics::global().publisher.clone(),
        }
    }

    /// Reports into `metrics` instead of the process-wide [`metrics::global`] ones.
    pub fn with_metrics(mut self, metrics: PublisherMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &PublisherMetrics {
        &self.metrics
    }

    /// Sets how many attempts are made before giving up (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn stats(&self) -> Arc<PublishStats> {
        Arc::clone(&self.stats)
    }

    pub fn transport(&self) -> &Arc<dyn Publisher> {
        &self.inner
    }

    /// Builds the message of a snapshot: topic = prefix + kind, key = `<service>/<instance>`,
    /// `content-type` header naming the encoding.
    pub fn message(&self, snapshot: &Snapshot) -> Result<OutboundMessage, codec::CodecError> {
        let (payload, content_type) = codec::encode(snapshot, self.encoding)?;
        Ok(OutboundMessage {
            topic: topics::topic_name(&self.topic_prefix, &snapshot.kind),
            key: Some(snapshot.source.key()),
            headers: vec![(
                CONTENT_TYPE_HEADER.to_owned(),
                content_type.to_string().into_bytes(),
            )],
            payload,
        })
    }

    /// Publishes, retrying with exponential backoff (100 ms doubling to 5 s). Each failed
    /// attempt is counted and logged; the same snapshot id is resent, so the journal's
    /// idempotent insert absorbs any duplicate a retry creates.
    ///
    /// Runs in a `send <topic>` producer span (a child of the caller's span) whose context is
    /// injected into the message's `traceparent` header.
    pub async fn publish(&self, snapshot: &Snapshot) -> Result<Delivered, PublishError> {
        self.publish_inner(snapshot).await
    }

    /// [`SnapshotPublisher::publish`] for a domain service's timer: an invalid snapshot or a
    /// publish that gave up is logged (and counted by the publisher), never propagated, since
    /// the next tick publishes a fresh snapshot. Returns whether it was delivered.
    pub async fn publish_or_log(&self, snapshot: &Snapshot) -> bool {
        match self.publish_inner(snapshot).await {
            Ok(delivered) => {
                tracing::debug!(
                    kind = %snapshot.kind,
                    partition = delivered.partition,
                    offset = delivered.offset,
                    "snapshot published"
                );
                true
            }
            Err(e @ PublishError::Encode(_)) => {
                tracing::error!(error = %e, kind = %snapshot.kind, snapshot_id = %snapshot.id, "invalid snapshot not published");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, kind = %snapshot.kind, snapshot_id = %snapshot.id, "snapshot not published; the next tick publishes a fresh one");
                false
            }
        }
    }

    /// On shutdown (SIGTERM): publishes a final snapshot of `source` for each of `kinds`
    /// carrying [`DEPARTED_METRIC`], so the aggregator retires the instance at once instead of
    /// letting it turn stale. Gives up after `within` per kind: a shutdown never hangs on a
    /// broker (the instance is then retired once a newer one reports, or turns stale).
    pub async fn publish_departed(&self, kinds: &[&str], source: &Source, within: Duration) {
        for kind in kinds {
            let mut snapshot = Snapshot::new(*kind, source.clone(), chrono::Utc::now());
            snapshot.summary = format!(
                "{} instance {} is shutting down",
                source.service, source.instance
            );
            snapshot.metric(DEPARTED_METRIC, 1.0);
            match tokio::time::timeout(within, self.publish_inner(&snapshot)).await {
                Ok(Ok(_)) => tracing::info!(kind, instance = %source.instance, "departed snapshot published"),
                Ok(Err(e)) => tracing::warn!(error = %e, kind, "departed snapshot not published; the instance will be retired when a newer one reports"),
                Err(_) => tracing::warn!(kind, "departed snapshot not published in time; the instance will be retired when a newer one reports"),
            }
        }
    }

    async fn publish_inner(&self, snapshot: &Snapshot) -> Result<Delivered, PublishError> {
        let mut message = self.message(snapshot)?;
        let span = tracing::info_span!(
            "send",
            otel.name = %format!("send {}", message.topic),
            otel.kind = "producer",
            otel.status_code = tracing::field::Empty,
            messaging.system = self.inner.messaging_system(),
            messaging.operation.name = "send",
            messaging.operation.type = "send",
            messaging.destination.name = %message.topic,
            messaging.kafka.message.key = message.key.as_deref().unwrap_or_default(),
            messaging.destination.partition.id = tracing::field::Empty,
            messaging.kafka.offset = tracing::field::Empty,
            error.type = tracing::field::Empty,
            telemesh.snapshot.id = %snapshot.id,
            telemesh.snapshot.kind = %snapshot.kind,
            telemesh.publish.attempts = tracing::field::Empty,
        );
        crate::telemetry::inject_context(&span, &mut message.headers);
        let kind = label("kind", &snapshot.kind);
        let started = Instant::now();
        let outcome = self
            .send_with_retries(snapshot, message, &kind, &span)
            .instrument(span.clone())
            .await;
        match &outcome {
            Ok(delivered) => {
                self.metrics
                    .publish_duration_seconds
                    .get_or_create(&kind)
                    .observe(started.elapsed().as_secs_f64());
                self.metrics.produced.get_or_create(&kind).inc();
                span.record(
                    "messaging.destination.partition.id",
                    delivered.partition.to_string(),
                );
                span.record("messaging.kafka.offset", delivered.offset);
            }
            Err(_) => {
                self.metrics.given_up.get_or_create(&kind).inc();
                span.record("otel.status_code", "ERROR");
                span.record("error.type", "publish_given_up");
            }
        }
        outcome
    }

    async fn send_with_retries(
        &self,
        snapshot: &Snapshot,
        message: OutboundMessage,
        kind: &metrics::Labels,
        span: &tracing::Span,
    ) -> Result<Delivered, PublishError> {
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.inner.publish(message.clone()).await {
                Ok(delivered) => {
                    self.stats.published.fetch_add(1, Ordering::Relaxed);
                    span.record("telemesh.publish.attempts", attempt);
                    return Ok(delivered);
                }
                Err(err) => {
                    self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    self.metrics.failed_attempts.get_or_create(kind).inc();
                    span.record("telemesh.publish.attempts", attempt);
                    tracing::warn!(
                        topic = %message.topic,
                        snapshot_id = %snapshot.id,
                        attempt,
                        error = %err,
                        "snapshot publish failed"
                    );
                    if attempt >= self.max_attempts {
                        self.stats.given_up.fetch_add(1, Ordering::Relaxed);
                        return Err(PublishError::GaveUp {
                            attempts: attempt,
                            last: err,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::inproc::InProcessBus;
    use crate::transport::Subscriber as _;

    #[tokio::test]
    async fn departed_snapshots_name_the_instance_for_every_kind() {
        let bus = InProcessBus::new(8, [topics::FIX_PILOT, topics::DROPCOPY]);
        let mut subscriber = bus.subscriber().expect("subscriber");
        let publisher = SnapshotPublisher::new(bus.publisher(), Encoding::Json, "");
        let source = Source::new("fix-pilot", "pod-7");
        publisher
            .publish_departed(
                &[topics::FIX_PILOT, topics::DROPCOPY],
                &source,
                Duration::from_secs(5),
            )
            .await;
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let message = subscriber
                .poll(Duration::from_secs(1))
                .await
                .expect("poll")
                .expect("a departed snapshot");
            let snapshot =
                codec::decode(message.header(CONTENT_TYPE_HEADER), &message.payload).unwrap();
            assert_eq!(snapshot.source, source);
            assert_eq!(snapshot.metrics.get(DEPARTED_METRIC), Some(&1.0));
            kinds.push(snapshot.kind);
        }
        kinds.sort();
        assert_eq!(kinds, [topics::DROPCOPY, topics::FIX_PILOT]);
    }
}
