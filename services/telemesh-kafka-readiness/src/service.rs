//! Owns [`ReadinessService`]: the actix actor that, on start and then every
//! `interval_seconds`, probes Kafka, grades the state and publishes
//! `telemetry.kafka.readiness`, keeping the last snapshot for [`GetLastSnapshot`].
//!
//! Probes never overlap: the probe is taken out of the actor while it runs, and a tick that
//! finds it gone is skipped. Publish failures are retried, counted and logged by the
//! [`SnapshotPublisher`]; the next tick publishes a fresh snapshot.
//!
//! Each tick is the root span of a snapshot's trace, `evaluate telemetry.kafka.readiness`,
//! covering probe, evaluate and publish; the publisher's `send` span and the aggregator's
//! `process` span continue it.

use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use chrono::Utc;
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Snapshot, Source};
use tracing::Instrument;

use crate::evaluate::evaluate;
use crate::probe::KafkaProbe;
use crate::settings::{ReadinessPolicy, ReadinessSettings};

/// Asks a running [`ReadinessService`] for its last snapshot (`None` before the first probe
/// finished, or when the service is disabled).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<Snapshot>")]
pub struct GetLastSnapshot;

/// The Kafka readiness domain service.
#[derive(Debug)]
pub struct ReadinessService {
    settings: ReadinessSettings,
    policy: ReadinessPolicy,
    kafka: KafkaSettings,
    source: Source,
    publisher: SnapshotPublisher,
    /// `None` while a probe runs (it is moved into the running future).
    probe: Option<KafkaProbe>,
    last: Option<Snapshot>,
    skipped_ticks: u64,
}

impl ReadinessService {
    /// A service probing the cluster of `kafka` and publishing through `publisher` as `source`.
    /// Nothing runs until it is started (`Actor::start`) or [`ReadinessService::run_once`] is
    /// called.
    pub fn new(
        settings: ReadinessSettings,
        kafka: KafkaSettings,
        source: Source,
        publisher: SnapshotPublisher,
    ) -> Self {
        Self {
            policy: settings.policy(),
            probe: Some(KafkaProbe::new(&settings, kafka.clone())),
            settings,
            kafka,
            source,
            publisher,
            last: None,
            skipped_ticks: 0,
        }
    }

    /// Probes, evaluates, keeps and publishes one snapshot, outside the actor (tests, one-shot
    /// tools). A publish failure is logged and does not change the returned snapshot.
    pub async fn run_once(&mut self) -> Snapshot {
        let probe = self
            .probe
            .take()
            .unwrap_or_else(|| KafkaProbe::new(&self.settings, self.kafka.clone()));
        let span = journey_span(&self.source);
        let (probe, snapshot) = probe_and_evaluate(probe, self.policy.clone(), self.source.clone())
            .instrument(span.clone())
            .await;
        self.probe = Some(probe);
        self.keep(snapshot.clone());
        self.publisher
            .publish_or_log(&snapshot)
            .instrument(span)
            .await;
        snapshot
    }

    /// The last snapshot produced, if any.
    pub fn last_snapshot(&self) -> Option<&Snapshot> {
        self.last.as_ref()
    }

    /// Ticks skipped because the previous probe was still running.
    pub fn skipped_ticks(&self) -> u64 {
        self.skipped_ticks
    }

    fn keep(&mut self, snapshot: Snapshot) {
        let changed = self
            .last
            .as_ref()
            .is_none_or(|l| l.status != snapshot.status);
        if changed {
            tracing::info!(status = %snapshot.status, summary = %snapshot.summary, "kafka readiness");
        } else {
            tracing::debug!(status = %snapshot.status, summary = %snapshot.summary, "kafka readiness");
        }
        self.last = Some(snapshot);
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(probe) = self.probe.take() else {
            self.skipped_ticks += 1;
            tracing::warn!(
                skipped = self.skipped_ticks,
                "previous kafka probe still running; skipping this tick (raise [kafka_readiness] interval_seconds if this repeats)"
            );
            return;
        };
        let span = journey_span(&self.source);
        let run = probe_and_evaluate(probe, self.policy.clone(), self.source.clone())
            .instrument(span.clone())
            .into_actor(self)
            .then(move |(probe, snapshot), act, _| {
                act.keep(snapshot.clone());
                let publisher = act.publisher.clone();
                async move {
                    publisher.publish_or_log(&snapshot).await;
                    probe
                }
                .instrument(span)
                .into_actor(act)
            })
            .map(|probe, act, _| act.probe = Some(probe));
        ctx.spawn(run);
    }
}

/// The root span of one snapshot's journey (probe → evaluate → publish → … → journal).
fn journey_span(source: &Source) -> tracing::Span {
    tracing::info_span!(
        parent: None,
        "evaluate",
        otel.name = %format!("evaluate {}", topics::KAFKA_READINESS),
        telemesh.snapshot.kind = topics::KAFKA_READINESS,
        telemesh.source = %source.key(),
        telemesh.snapshot.id = tracing::field::Empty,
        telemesh.snapshot.status = tracing::field::Empty,
    )
}

async fn probe_and_evaluate(
    mut probe: KafkaProbe,
    policy: ReadinessPolicy,
    source: Source,
) -> (KafkaProbe, Snapshot) {
    let state = probe.probe(Utc::now()).await;
    let snapshot = evaluate(&policy, &state, source, Utc::now());
    let span = tracing::Span::current();
    span.record("telemesh.snapshot.id", snapshot.id.to_string());
    span.record("telemesh.snapshot.status", snapshot.status.to_string());
    (probe, snapshot)
}

impl Actor for ReadinessService {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !self.settings.enabled {
            tracing::info!(
                "kafka readiness disabled ([kafka_readiness] enabled = false): not probing"
            );
            return;
        }
        tracing::info!(
            kafka = %self.kafka.describe(),
            interval_seconds = self.settings.interval_seconds,
            "kafka readiness started"
        );
        self.tick(ctx);
        let every = Duration::from_secs(self.settings.interval_seconds.max(1));
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
    }
}

impl Handler<GetLastSnapshot> for ReadinessService {
    type Result = Option<Snapshot>;

    fn handle(&mut self, _: GetLastSnapshot, _: &mut Self::Context) -> Self::Result {
        self.last.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use telemesh_core::transport::inproc::InProcessBus;
    use telemesh_core::{Encoding, Grade};

    use super::*;

    fn service(settings: ReadinessSettings) -> (ReadinessService, SnapshotPublisher) {
        let bus = InProcessBus::new(16, [topics::KAFKA_READINESS]);
        let publisher = SnapshotPublisher::new(bus.publisher(), Encoding::Json, "");
        let service = ReadinessService::new(
            settings,
            KafkaSettings::default(),
            Source::new("kafka-readiness", "test"),
            publisher.clone(),
        );
        (service, publisher)
    }

    #[tokio::test]
    async fn run_once_without_kafka_publishes_a_warn_snapshot() {
        let (mut service, publisher) = service(ReadinessSettings::default());
        let snapshot = service.run_once().await;
        assert_eq!(snapshot.status, Grade::Warn);
        assert!(snapshot.summary.contains("not configured"));
        assert_eq!(service.last_snapshot(), Some(&snapshot));
        assert_eq!(publisher.stats().published.load(Ordering::Relaxed), 1);
    }

    #[actix::test]
    async fn the_actor_probes_on_start_and_answers_with_the_last_snapshot() {
        let (service, publisher) = service(ReadinessSettings::default());
        let addr = service.start();
        let mut last = None;
        for _ in 0..100 {
            last = addr.send(GetLastSnapshot).await.expect("actor answers");
            if last.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last = last.expect("a snapshot after start");
        assert_eq!(last.kind, topics::KAFKA_READINESS);
        assert_eq!(last.status, Grade::Warn);
        for _ in 0..100 {
            if publisher.stats().published.load(Ordering::Relaxed) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(publisher.stats().published.load(Ordering::Relaxed), 1);
    }

    #[actix::test]
    async fn a_disabled_service_never_probes() {
        let (service, _) = service(ReadinessSettings {
            enabled: false,
            ..ReadinessSettings::default()
        });
        let addr = service.start();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            addr.send(GetLastSnapshot).await.expect("actor answers"),
            None
        );
    }
}
