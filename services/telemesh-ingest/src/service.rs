//! Owns the [`IngestService`] actor: on its own timer it reads the platform's database,
//! grades ingest trends and retention, and publishes both snapshots. An unreachable database
//! turns both snapshots `fail` with the reason; the actor keeps going and recovers by itself.

use std::net::SocketAddr;
use telemesh_core::config::Section as _;

use actix::prelude::*;
use anyhow::Context as _;
use chrono::Utc;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Snapshot, Source};

use crate::http;
use crate::render::unavailable;
use crate::settings::{IngestSettings, RetentionPolicy, TrendPolicy};
use crate::source::{SourceDb, TableName};
use crate::{retention, trends};

/// The service name in snapshot sources.
pub const SERVICE_NAME: &str = "ingest";

/// The newest snapshots of the service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastSnapshots {
    pub trends: Option<Snapshot>,
    pub retention: Option<Snapshot>,
    /// Evaluations completed since start.
    pub evaluations: u64,
    /// Snapshots that could not be published (the publisher gave up).
    pub publish_failures: u64,
}

/// Asks for the newest snapshots.
#[derive(Debug, Message)]
#[rtype(result = "LastSnapshots")]
pub struct GetLastSnapshots;

/// Evaluates now (e.g. after a run report), in addition to the timer.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct EvaluateNow;

/// Stops the actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopService;

/// The ingest domain service.
#[derive(Debug)]
pub struct IngestService {
    interval_seconds: u64,
    trend_policy: TrendPolicy,
    retention_policy: RetentionPolicy,
    runs_table: TableName,
    db: SourceDb,
    source: Source,
    publisher: SnapshotPublisher,
    last: LastSnapshots,
    running: bool,
    again: bool,
}

impl IngestService {
    /// A service reading `db` with `settings` (validated here), publishing as `source`
    /// (service name [`SERVICE_NAME`]) on `publisher`. Start it with [`Actor::start`].
    pub fn new(
        settings: &IngestSettings,
        db: SourceDb,
        source: Source,
        publisher: SnapshotPublisher,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let runs_table = TableName::parse(&settings.runs_table).map_err(anyhow::Error::msg)?;
        Ok(Self {
            interval_seconds: settings.interval_seconds.max(1),
            trend_policy: settings.trend_policy(),
            retention_policy: settings.retention_policy(),
            runs_table,
            db,
            source,
            publisher,
            last: LastSnapshots::default(),
            running: false,
            again: false,
        })
    }

    fn evaluate(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            self.again = true;
            return;
        }
        self.running = true;
        let db = self.db.clone();
        let table = self.runs_table.clone();
        let trend_policy = self.trend_policy.clone();
        let retention_policy = self.retention_policy.clone();
        let source = self.source.clone();
        let interval = self.interval_seconds;
        let work = async move {
            evaluate_once(
                &db,
                &table,
                &trend_policy,
                &retention_policy,
                &source,
                interval,
            )
            .await
        };
        ctx.spawn(work.into_actor(self).map(|(trends, retention), act, ctx| {
            act.last.trends = Some(trends.clone());
            act.last.retention = Some(retention.clone());
            act.last.evaluations += 1;
            let publisher = act.publisher.clone();
            let publish = async move {
                let mut failures = 0;
                for s in [&trends, &retention] {
                    if !publisher.publish_or_log(s).await {
                        failures += 1;
                    }
                }
                failures
            };
            ctx.spawn(publish.into_actor(act).map(|failures, act, ctx| {
                act.last.publish_failures += failures;
                act.running = false;
                if std::mem::take(&mut act.again) {
                    act.evaluate(ctx);
                }
            }));
        }));
    }
}

/// Reads the platform's database once and grades both domains as of now.
pub async fn evaluate_once(
    db: &SourceDb,
    runs_table: &TableName,
    trend_policy: &TrendPolicy,
    retention_policy: &RetentionPolicy,
    source: &Source,
    interval_seconds: u64,
) -> (Snapshot, Snapshot) {
    let now = Utc::now();
    if let Err(e) = db.ping().await {
        tracing::warn!(error = %e, url = %db.redacted_url(), "platform database unreachable");
        let error = e.to_string();
        return (
            unavailable(
                topics::INGEST_TRENDS,
                trends::TITLE,
                source,
                interval_seconds,
                &error,
                now,
            ),
            unavailable(
                topics::RETENTION,
                retention::TITLE,
                source,
                interval_seconds,
                &error,
                now,
            ),
        );
    }
    let trends = match db.recent_runs(runs_table, trend_policy.window_runs).await {
        Ok(runs) => trends::evaluate(trend_policy, source, &runs, now),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the runs table");
            let error = format!(
                "cannot read runs table {}: {e}",
                runs_table.display(db.backend())
            );
            unavailable(
                topics::INGEST_TRENDS,
                trends::TITLE,
                source,
                interval_seconds,
                &error,
                now,
            )
        }
    };
    let observations = db.observe_all(retention_policy, now).await;
    let retention = retention::evaluate(retention_policy, source, &observations, now);
    (trends, retention)
}

impl Actor for IngestService {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(
            source = %self.db.redacted_url(),
            runs_table = %self.runs_table.display(self.db.backend()),
            interval_seconds = self.interval_seconds,
            tables = self.retention_policy.tables.len(),
            "ingest service started"
        );
        self.evaluate(ctx);
        ctx.run_interval(
            std::time::Duration::from_secs(self.interval_seconds),
            |act, ctx| act.evaluate(ctx),
        );
    }
}

impl Handler<GetLastSnapshots> for IngestService {
    type Result = MessageResult<GetLastSnapshots>;

    fn handle(&mut self, _: GetLastSnapshots, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.last.clone())
    }
}

impl Handler<EvaluateNow> for IngestService {
    type Result = ();

    fn handle(&mut self, _: EvaluateNow, ctx: &mut Self::Context) {
        self.evaluate(ctx);
    }
}

impl Handler<StopService> for IngestService {
    type Result = ();

    fn handle(&mut self, _: StopService, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// A running ingest service with its HTTP endpoints.
#[derive(Debug)]
pub struct IngestHandle {
    pub service: Addr<IngestService>,
    /// Where the run-report endpoint and the health endpoints listen.
    pub http_addr: SocketAddr,
    server: actix_web::dev::ServerHandle,
}

impl IngestHandle {
    /// Starts the actor and its HTTP server on `http_addr` (port 0 picks a free port).
    /// Must run inside an actix system. Fails on invalid settings, a source URL that cannot
    /// be parsed, or an address that cannot be bound — not on an unreachable database.
    pub fn start(
        settings: &IngestSettings,
        http_addr: &str,
        source: Source,
        publisher: SnapshotPublisher,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let db =
            SourceDb::connect_lazy(settings).context("cannot set up the platform database pool")?;
        let service = IngestService::new(settings, db.clone(), source, publisher)?.start();
        let runs_table = TableName::parse(&settings.runs_table).map_err(anyhow::Error::msg)?;
        let (addr, server) = http::serve_http(
            http_addr,
            db,
            runs_table,
            Some(service.clone()),
            settings.api_token.clone(),
        )?;
        Ok(Self {
            service,
            http_addr: addr,
            server,
        })
    }

    /// Stops the HTTP server, then the actor.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.service.send(StopService).await;
    }
}
