//! Owns [`Ingest`], the ingest [`Domain`]: each gather reads the platform's database (runs
//! table and retention windows), the pure `evaluate` grades ingest trends and retention. An
//! unreachable database turns both snapshots `fail` with the reason; the next gather recovers by
//! itself. Timer, publishing, last snapshots and HTTP are the framework's (`telemesh_service`);
//! the domain adds the run-report route ([`crate::http`]).

use std::time::Duration;
use telemesh_core::config::Section as _;

use anyhow::Context as _;
use telemesh_core::config::Secret;
use telemesh_core::{topics, Snapshot};
use telemesh_service::{Domain, Evaluation, NotConfigured, Routes, ServiceHandle};

use crate::render::unavailable;
use crate::retention::TableObservation;
use crate::settings::{IngestSettings, RetentionPolicy, TrendPolicy};
use crate::source::{SourceDb, TableName};
use crate::trends::RunsByDimension;
use crate::{http, retention, trends};

/// The service name in snapshot sources.
pub const SERVICE_NAME: &str = "ingest";

/// What one gather read from the platform's database.
#[derive(Debug, Clone)]
pub enum IngestState {
    /// The database did not answer: why.
    Unreachable(String),
    /// What could be read: the recent runs (or why the runs table could not be read) and one
    /// observation per retention table.
    Read {
        runs: Result<RunsByDimension, String>,
        observations: Vec<TableObservation>,
    },
}

/// The ingest domain.
#[derive(Debug)]
pub struct Ingest {
    interval_seconds: u64,
    trend_policy: TrendPolicy,
    retention_policy: RetentionPolicy,
    runs_table: TableName,
    /// `None` while no source database is configured.
    db: Option<SourceDb>,
    api_token: Secret,
}

impl Ingest {
    /// The domain for `settings` (validated here). Fails on invalid settings or a source URL
    /// that cannot be parsed — not on an unreachable database. Without a source URL it runs as
    /// the not-configured block naming `ingest.source_url`.
    pub fn new(settings: &IngestSettings) -> anyhow::Result<Self> {
        settings.validate()?;
        let runs_table = TableName::parse(&settings.runs_table).map_err(anyhow::Error::msg)?;
        let db = if settings.is_configured() {
            Some(
                SourceDb::connect_lazy(settings)
                    .context("cannot set up the platform database pool")?,
            )
        } else {
            None
        };
        Ok(Self {
            interval_seconds: settings.interval_seconds.max(1),
            trend_policy: settings.trend_policy(),
            retention_policy: settings.retention_policy(),
            runs_table,
            db,
            api_token: settings.api_token.clone(),
        })
    }

    /// The platform database, when configured.
    pub fn db(&self) -> Option<&SourceDb> {
        self.db.as_ref()
    }
}

/// Reads the platform's database once.
async fn read(
    db: &SourceDb,
    runs_table: &TableName,
    trend_policy: &TrendPolicy,
    retention_policy: &RetentionPolicy,
) -> IngestState {
    if let Err(e) = db.ping().await {
        tracing::warn!(error = %e, url = %db.redacted_url(), "platform database unreachable");
        return IngestState::Unreachable(e.to_string());
    }
    let runs = db
        .recent_runs(runs_table, trend_policy.window_runs)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot read the runs table");
            format!(
                "cannot read runs table {}: {e}",
                runs_table.display(db.backend())
            )
        });
    let observations = db.observe_all(retention_policy, chrono::Utc::now()).await;
    IngestState::Read { runs, observations }
}

impl Domain for Ingest {
    type State = IngestState;

    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec![topics::INGEST_TRENDS, topics::RETENTION]
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds)
    }

    fn not_configured(&self) -> Option<NotConfigured> {
        self.db.is_none().then(|| {
            NotConfigured::new(
                "ingest.source_url",
                "the platform database whose runs table and retention windows ingest grades",
            )
        })
    }

    async fn gather(&mut self) -> IngestState {
        match &self.db {
            Some(db) => {
                read(
                    db,
                    &self.runs_table,
                    &self.trend_policy,
                    &self.retention_policy,
                )
                .await
            }
            None => IngestState::Unreachable("no source database configured".into()),
        }
    }

    fn evaluate(&self, state: &IngestState, at: &Evaluation) -> Vec<Snapshot> {
        let (source, now, interval) = (&at.source, at.now, self.interval_seconds);
        match state {
            IngestState::Unreachable(error) => vec![
                unavailable(
                    topics::INGEST_TRENDS,
                    trends::TITLE,
                    source,
                    interval,
                    error,
                    now,
                ),
                unavailable(
                    topics::RETENTION,
                    retention::TITLE,
                    source,
                    interval,
                    error,
                    now,
                ),
            ],
            IngestState::Read { runs, observations } => {
                let trends = match runs {
                    Ok(runs) => trends::evaluate(&self.trend_policy, source, runs, now),
                    Err(error) => unavailable(
                        topics::INGEST_TRENDS,
                        trends::TITLE,
                        source,
                        interval,
                        error,
                        now,
                    ),
                };
                let retention =
                    retention::evaluate(&self.retention_policy, source, observations, now);
                vec![trends, retention]
            }
        }
    }

    fn routes(&self, service: &ServiceHandle) -> Option<Routes> {
        let db = self.db.clone()?;
        Some(http::routes(
            db,
            self.runs_table.clone(),
            service.clone(),
            self.api_token.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use telemesh_core::Grade;
    use telemesh_service::testing::TestService;

    use super::*;

    #[actix::test]
    async fn without_a_source_database_both_kinds_name_the_setting_and_no_route_is_served() {
        let svc = TestService::start(Ingest::new(&IngestSettings::default()).expect("valid"))
            .expect("service starts");
        for kind in [topics::INGEST_TRENDS, topics::RETENTION] {
            let published = svc.wait_published(kind, 1, Duration::from_secs(5)).await;
            assert_eq!(published.len(), 1, "{kind}");
            assert_eq!(published[0].status, Grade::Warn);
            assert!(
                published[0].summary.contains("ingest.source_url"),
                "{}",
                published[0].summary
            );
        }
        let client = reqwest::Client::new();
        let latest: Vec<Snapshot> = client
            .get(svc.url("/api/v1/snapshots/latest"))
            .send()
            .await
            .expect("service answers")
            .json()
            .await
            .expect("a JSON array");
        assert_eq!(latest.len(), 2);
        for (path, code) in [("/health/live", 200), ("/metrics", 200)] {
            let r = client.get(svc.url(path)).send().await.expect("answers");
            assert_eq!(r.status().as_u16(), code, "{path}");
        }
        let r = client
            .post(svc.url(http::RUNS_PATH))
            .body("{}")
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status().as_u16(), 404, "no database, no run reports");
        svc.service.stop(false).await;
    }

    #[test]
    fn an_invalid_runs_table_is_refused_at_construction() {
        let settings = IngestSettings {
            runs_table: "runs; DROP TABLE x".into(),
            ..IngestSettings::default()
        };
        assert!(Ingest::new(&settings).is_err());
    }
}
