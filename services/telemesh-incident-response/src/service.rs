//! Owns [`IncidentResponseService`]: the actix actor that, on start and then every
//! `interval_seconds`, collects the live inputs, grades them and publishes
//! `telemetry.operational.incident_response`, keeping the last snapshot for
//! [`GetLastSnapshot`] and the deployment gate ([`GetGate`]). [`RecordActivity`] records a
//! drill or training session (in the journal database through the aggregator, or the local
//! activity log without one); [`EvaluateNow`] re-evaluates at once.
//!
//! Evaluations never overlap: the collector sits behind an async mutex; a tick that finds it
//! busy is skipped, [`EvaluateNow`] waits for it. Publishing runs in its own task so an
//! unreachable transport never delays an answer; failures are retried, counted and logged by
//! the [`SnapshotPublisher`].

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseActFuture, WrapFuture,
};
use chrono::Utc;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{Snapshot, Source};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::activity::{Activity, ActivityError, ActivitySink};
use crate::collect::Collector;
use crate::evaluate::evaluate;
use crate::gate::{gate, gate_without_snapshot, Gate};
use crate::settings::{GateSettings, IncidentResponsePolicy, IncidentResponseSettings};

/// Asks for the last snapshot (`None` before the first evaluation finished).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<Snapshot>")]
pub struct GetLastSnapshot;

/// Asks for the deployment gate of the last snapshot (blocked when there is none yet).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Gate")]
pub struct GetGate;

/// Evaluates (and publishes) now, waiting for a running evaluation first; answers the fresh
/// snapshot.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Snapshot")]
pub struct EvaluateNow;

/// Appends a validated activity to the activity log.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ActivityError>")]
pub struct RecordActivity(pub Activity);

/// The incident-response domain service.
#[derive(Debug)]
pub struct IncidentResponseService {
    settings: IncidentResponseSettings,
    policy: IncidentResponsePolicy,
    gate_settings: GateSettings,
    source: Source,
    publisher: SnapshotPublisher,
    collector: Arc<Mutex<Collector>>,
    last: Option<Snapshot>,
    skipped_ticks: u64,
    activities: ActivitySink,
}

impl IncidentResponseService {
    /// A service reading the inputs of `settings` and publishing through `publisher` as
    /// `source`. Nothing runs until it is started (`Actor::start`) or
    /// [`IncidentResponseService::run_once`] is called.
    pub fn new(
        settings: IncidentResponseSettings,
        source: Source,
        publisher: SnapshotPublisher,
    ) -> Self {
        Self {
            policy: settings.policy(),
            gate_settings: settings.gate_settings(),
            collector: Arc::new(Mutex::new(Collector::new(settings.clone()))),
            activities: ActivitySink::from_settings(&settings),
            settings,
            source,
            publisher,
            last: None,
            skipped_ticks: 0,
        }
    }

    /// Collects, evaluates, keeps and publishes one snapshot outside the actor (tests,
    /// one-shot tools).
    pub async fn run_once(&mut self) -> Snapshot {
        let guard = Arc::clone(&self.collector).lock_owned().await;
        let snapshot = collect_and_evaluate(guard, self.policy.clone(), self.source.clone()).await;
        self.keep(snapshot.clone());
        self.publisher.publish_or_log(&snapshot).await;
        snapshot
    }

    /// The last snapshot produced, if any.
    pub fn last_snapshot(&self) -> Option<&Snapshot> {
        self.last.as_ref()
    }

    /// The gate of the last snapshot.
    pub fn gate(&self) -> Gate {
        match &self.last {
            Some(s) => gate(s, &self.gate_settings),
            None => gate_without_snapshot(&self.gate_settings),
        }
    }

    /// Ticks skipped because the previous evaluation was still running.
    pub fn skipped_ticks(&self) -> u64 {
        self.skipped_ticks
    }

    fn keep(&mut self, snapshot: Snapshot) {
        let changed = self
            .last
            .as_ref()
            .is_none_or(|l| l.status != snapshot.status);
        if changed {
            tracing::info!(status = %snapshot.status, summary = %snapshot.summary, "incident response");
        } else {
            tracing::debug!(status = %snapshot.status, summary = %snapshot.summary, "incident response");
        }
        self.last = Some(snapshot);
    }

    fn keep_and_publish(&mut self, snapshot: Snapshot) {
        self.keep(snapshot.clone());
        let publisher = self.publisher.clone();
        actix::spawn(async move {
            publisher.publish_or_log(&snapshot).await;
        });
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Ok(guard) = Arc::clone(&self.collector).try_lock_owned() else {
            self.skipped_ticks += 1;
            tracing::warn!(
                skipped = self.skipped_ticks,
                "previous incident-response evaluation still running; skipping this tick (raise [incident_response] interval_seconds or lower aggregator_timeout_seconds if this repeats)"
            );
            return;
        };
        let run = collect_and_evaluate(guard, self.policy.clone(), self.source.clone())
            .into_actor(self)
            .map(|snapshot, act, _| act.keep_and_publish(snapshot));
        ctx.spawn(run);
    }
}

async fn collect_and_evaluate(
    mut collector: OwnedMutexGuard<Collector>,
    policy: IncidentResponsePolicy,
    source: Source,
) -> Snapshot {
    let state = collector.collect(Utc::now()).await;
    evaluate(&policy, &state, source, Utc::now())
}

impl Actor for IncidentResponseService {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !self.settings.enabled {
            tracing::info!(
                "incident response disabled ([incident_response] enabled = false): evaluating only on request"
            );
            return;
        }
        tracing::info!(
            interval_seconds = self.settings.interval_seconds,
            runbook_dir = %self.settings.runbook_dir,
            roster_file = %self.settings.roster_file,
            activity_log = %self.settings.activity_log,
            aggregator_url = %self.settings.aggregator_url,
            "incident response started"
        );
        self.tick(ctx);
        let every = Duration::from_secs(self.settings.interval_seconds.max(1));
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
    }
}

impl Handler<GetLastSnapshot> for IncidentResponseService {
    type Result = Option<Snapshot>;

    fn handle(&mut self, _: GetLastSnapshot, _: &mut Self::Context) -> Self::Result {
        self.last.clone()
    }
}

impl Handler<GetGate> for IncidentResponseService {
    type Result = actix::MessageResult<GetGate>;

    fn handle(&mut self, _: GetGate, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(self.gate())
    }
}

impl Handler<EvaluateNow> for IncidentResponseService {
    type Result = ResponseActFuture<Self, Snapshot>;

    fn handle(&mut self, _: EvaluateNow, _: &mut Self::Context) -> Self::Result {
        let collector = Arc::clone(&self.collector);
        let policy = self.policy.clone();
        let source = self.source.clone();
        Box::pin(
            async move {
                let guard = collector.lock_owned().await;
                collect_and_evaluate(guard, policy, source).await
            }
            .into_actor(self)
            .map(|snapshot, act, _| {
                act.keep_and_publish(snapshot.clone());
                snapshot
            }),
        )
    }
}

impl Handler<RecordActivity> for IncidentResponseService {
    type Result = actix::ResponseFuture<Result<(), ActivityError>>;

    fn handle(&mut self, msg: RecordActivity, _: &mut Self::Context) -> Self::Result {
        let sink = self.activities.clone();
        Box::pin(async move {
            sink.record(&msg.0).await?;
            tracing::info!(kind = msg.0.kind.as_str(), by = %msg.0.by, at = %msg.0.at, "activity recorded");
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use telemesh_core::transport::inproc::InProcessBus;
    use telemesh_core::{topics, Encoding, Grade};

    use super::*;
    use crate::activity::ActivityKind;
    use crate::gate::GateDecision;

    fn service(settings: IncidentResponseSettings) -> (IncidentResponseService, SnapshotPublisher) {
        let bus = InProcessBus::new(16, [topics::INCIDENT_RESPONSE]);
        let publisher = SnapshotPublisher::new(bus.publisher(), Encoding::Json, "");
        let service = IncidentResponseService::new(
            settings,
            Source::new("incident-response", "test"),
            publisher.clone(),
        );
        (service, publisher)
    }

    #[tokio::test]
    async fn run_once_with_no_inputs_fails_on_the_roster_and_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut service, publisher) = service(IncidentResponseSettings {
            runbook_dir: dir.path().display().to_string(),
            activity_log: dir.path().join("log.jsonl").display().to_string(),
            ..Default::default()
        });
        assert_eq!(service.gate().blocking_codes, vec!["no_snapshot"]);
        let snapshot = service.run_once().await;
        assert_eq!(snapshot.kind, topics::INCIDENT_RESPONSE);
        assert_eq!(snapshot.status, Grade::Fail);
        assert_eq!(publisher.stats().published.load(Ordering::Relaxed), 1);
        let gate = service.gate();
        assert_eq!(gate.status, GateDecision::Block);
        assert!(gate
            .blocking_codes
            .contains(&"issue_primary_roster_fail".to_owned()));
    }

    #[actix::test]
    async fn the_actor_evaluates_on_start_and_records_activities() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log.jsonl");
        let (service, _) = service(IncidentResponseSettings {
            runbook_dir: dir.path().display().to_string(),
            activity_log: log.display().to_string(),
            ..Default::default()
        });
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
        assert!(last
            .component("drills")
            .is_some_and(|c| c.status == Grade::Warn));
        addr.send(RecordActivity(Activity {
            kind: ActivityKind::Drill,
            at: Utc::now(),
            by: "alice".into(),
            note: String::new(),
        }))
        .await
        .expect("actor answers")
        .expect("recorded");
        let fresh = addr.send(EvaluateNow).await.expect("actor answers");
        assert!(fresh
            .component("drills")
            .is_some_and(|c| c.status == Grade::Ok));
        let gate = addr.send(GetGate).await.expect("actor answers");
        assert_eq!(gate.metadata.snapshot_id, Some(fresh.id.to_string()));
    }
}
