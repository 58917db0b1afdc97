//! Owns the alert store in the journal database: the aggregator's implementation of
//! `telemesh_alerting::repo::AlertRepo` (alert records, GitHub issue numbers per fingerprint,
//! and the notification log whose `pending` rows are the outbox re-sent after a restart).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, SqlitePool};
use uuid::Uuid;

use telemesh_alerting::channels::{IssueBook, Notification};
use telemesh_alerting::engine::{Alert, AlertState};
use telemesh_alerting::repo::{AlertRepo, LoggedNotification, OutboxEntry, RepoError, StateFilter};
use telemesh_core::Snapshot;

use super::{ts, Journal, JournalError};

/// SQL with `$n` parameters and its text binds.
type Statement = (&'static str, Vec<Option<String>>);

fn upsert_statement(alert: &Alert) -> Result<Statement, RepoError> {
    let doc = serde_json::to_string(alert).map_err(corrupt)?;
    let state = match alert.state {
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    };
    Ok((
        "INSERT INTO telemesh_alerts (id, fingerprint, state, kind, service, severity, pending_since, updated_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, severity = excluded.severity, \
           updated_at = excluded.updated_at, doc = excluded.doc",
        vec![
            Some(alert.id.to_string()),
            Some(alert.fingerprint.clone()),
            Some(state.into()),
            Some(alert.kind.clone()),
            Some(alert.service.clone()),
            Some(alert.severity.clone()),
            Some(ts(alert.pending_since)),
            Some(ts(Utc::now())),
            Some(doc),
        ],
    ))
}

/// The outbox row of a notification for one channel (kept if it exists already).
fn pending_statement(n: &Notification, channel: &str) -> Result<Statement, RepoError> {
    let payload = serde_json::to_string(n).map_err(corrupt)?;
    let now = ts(Utc::now());
    Ok((
        "INSERT INTO telemesh_alert_notifications \
           (id, channel, alert_id, event, outcome, status_code, attempts, detail, created_at, updated_at, payload) \
         VALUES ($1, $2, $3, $4, 'pending', NULL, 0, '', $5, $6, $7) ON CONFLICT DO NOTHING",
        vec![
            Some(n.id.to_string()),
            Some(channel.into()),
            Some(n.alert.id.to_string()),
            Some(n.event.name().into()),
            Some(now.clone()),
            Some(now),
            Some(payload),
        ],
    ))
}

#[derive(Debug, Clone)]
enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// The alert store, on the journal's database.
#[derive(Debug, Clone)]
pub struct AlertStore {
    db: Db,
    journal: Journal,
}

impl From<JournalError> for RepoError {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::Corrupt(detail) => RepoError::Corrupt(detail),
            other => RepoError::Unavailable(other.to_string()),
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(e.to_string())
}

/// PostgreSQL numbers its parameters `$n`; SQLite takes `?n`.
macro_rules! q {
    ($self:expr, $sql:expr) => {
        match &$self.db {
            Db::Postgres(_) => $sql.to_owned(),
            Db::Sqlite(_) => $sql.replace('$', "?"),
        }
    };
}

impl AlertStore {
    pub fn for_journal(journal: &Journal) -> Self {
        let db = match journal {
            Journal::Postgres(j) => Db::Postgres(j.pool().clone()),
            Journal::Sqlite(j) => Db::Sqlite(j.pool().clone()),
        };
        Self {
            db,
            journal: journal.clone(),
        }
    }

    async fn execute(
        &self,
        sql: &'static str,
        binds: Vec<Option<String>>,
    ) -> Result<(), JournalError> {
        self.execute_all(vec![(sql, binds)]).await
    }

    /// Runs the statements in one transaction.
    async fn execute_all(&self, statements: Vec<Statement>) -> Result<(), JournalError> {
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for (sql, binds) in statements {
                    let sql = q!(self, sql);
                    let mut query = sqlx::query(&sql);
                    for b in binds {
                        query = query.bind(b);
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for (sql, binds) in statements {
                    let sql = q!(self, sql);
                    let mut query = sqlx::query(&sql);
                    for b in binds {
                        query = query.bind(b);
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Rows as text columns.
    async fn fetch(
        &self,
        sql: &str,
        binds: Vec<Option<String>>,
        columns: &[&str],
    ) -> Result<Vec<Vec<Option<String>>>, JournalError> {
        let sql = q!(self, sql);
        let rows: Vec<Vec<Option<String>>> = match &self.db {
            Db::Postgres(pool) => {
                let mut query = sqlx::query(&sql);
                for b in binds {
                    query = query.bind(b);
                }
                query
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| {
                        columns
                            .iter()
                            .map(|c| r.try_get::<Option<String>, _>(*c).ok().flatten())
                            .collect()
                    })
                    .collect()
            }
            Db::Sqlite(pool) => {
                let mut query = sqlx::query(&sql);
                for b in binds {
                    query = query.bind(b);
                }
                query
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| {
                        columns
                            .iter()
                            .map(|c| r.try_get::<Option<String>, _>(*c).ok().flatten())
                            .collect()
                    })
                    .collect()
            }
        };
        Ok(rows)
    }
}

#[async_trait]
impl AlertRepo for AlertStore {
    /// Inserts or replaces an alert record.
    async fn upsert(&self, alert: &Alert) -> Result<(), RepoError> {
        Ok(self.execute_all(vec![upsert_statement(alert)?]).await?)
    }

    async fn upsert_with_outbox(
        &self,
        alert: &Alert,
        n: &Notification,
        channels: &[String],
    ) -> Result<(), RepoError> {
        let mut statements = vec![upsert_statement(alert)?];
        for channel in channels {
            statements.push(pending_statement(n, channel)?);
        }
        Ok(self.execute_all(statements).await?)
    }

    /// Alerts, newest first. `Acknowledged` means firing with an acknowledgement.
    async fn list(&self, filter: StateFilter, limit: u32) -> Result<Vec<Alert>, RepoError> {
        let (clause, state) = match filter {
            StateFilter::Open => ("state <> $1", "resolved"),
            StateFilter::Pending => ("state = $1", "pending"),
            StateFilter::Firing | StateFilter::Acknowledged => ("state = $1", "firing"),
            StateFilter::Resolved => ("state = $1", "resolved"),
            StateFilter::All => ("state <> $1", "-"),
        };
        let rows = self
            .fetch(
                &format!("SELECT doc FROM telemesh_alerts WHERE {clause} ORDER BY pending_since DESC LIMIT {limit}"),
                vec![Some(state.into())],
                &["doc"],
            )
            .await?;
        let mut alerts = Vec::with_capacity(rows.len());
        for row in rows {
            let doc = row.into_iter().next().flatten().unwrap_or_default();
            let alert: Alert = serde_json::from_str(&doc).map_err(corrupt)?;
            let keep = match filter {
                StateFilter::Firing => alert.acknowledged_at.is_none(),
                StateFilter::Acknowledged => alert.acknowledged_at.is_some(),
                _ => true,
            };
            if keep {
                alerts.push(alert);
            }
        }
        Ok(alerts)
    }

    /// One alert by id.
    async fn get(&self, id: Uuid) -> Result<Option<Alert>, RepoError> {
        let rows = self
            .fetch(
                "SELECT doc FROM telemesh_alerts WHERE id = $1",
                vec![Some(id.to_string())],
                &["doc"],
            )
            .await?;
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .map(|doc| serde_json::from_str(&doc).map_err(corrupt))
            .transpose()
    }

    /// Records a notification for a channel before it is sent.
    async fn log_pending(&self, n: &Notification, channel: &str) -> Result<(), RepoError> {
        Ok(self
            .execute_all(vec![pending_statement(n, channel)?])
            .await?)
    }

    /// Records how a notification ended for a channel.
    async fn log_outcome(
        &self,
        id: Uuid,
        channel: &str,
        outcome: &str,
        status: Option<u16>,
        attempts: u32,
        detail: &str,
    ) -> Result<(), RepoError> {
        Ok(self.execute(
            "UPDATE telemesh_alert_notifications SET outcome = $1, status_code = CAST($2 AS INTEGER), \
               attempts = CAST($3 AS INTEGER), detail = $4, updated_at = $5 WHERE id = $6 AND channel = $7",
            vec![
                Some(outcome.into()),
                status.map(|s| s.to_string()),
                Some(attempts.to_string()),
                Some(detail.chars().take(500).collect()),
                Some(ts(Utc::now())),
                Some(id.to_string()),
                Some(channel.into()),
            ],
        )
        .await?)
    }

    async fn pending_notifications(&self) -> Result<Vec<OutboxEntry>, RepoError> {
        let rows = self
            .fetch(
                "SELECT channel, payload, CAST(attempts AS TEXT) AS attempts, created_at \
                 FROM telemesh_alert_notifications WHERE outcome = $1 ORDER BY created_at",
                vec![Some("pending".into())],
                &["channel", "payload", "attempts", "created_at"],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let col = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                let notification = serde_json::from_str(&col(1)).map_err(corrupt)?;
                Ok(OutboxEntry {
                    channel: col(0),
                    notification,
                    attempts: col(2).parse().unwrap_or_default(),
                    created_at: DateTime::parse_from_rfc3339(&col(3))
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_else(|_| Utc::now()),
                })
            })
            .collect()
    }

    /// The notification log of one alert.
    async fn notifications(&self, alert_id: Uuid) -> Result<Vec<LoggedNotification>, RepoError> {
        let rows = self
            .fetch(
                "SELECT id, channel, alert_id, event, outcome, CAST(status_code AS TEXT) AS status_code, \
                   CAST(attempts AS TEXT) AS attempts, detail, created_at \
                 FROM telemesh_alert_notifications WHERE alert_id = $1 ORDER BY created_at",
                vec![Some(alert_id.to_string())],
                &["id", "channel", "alert_id", "event", "outcome", "status_code", "attempts", "detail", "created_at"],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let col = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                LoggedNotification {
                    id: col(0).parse().unwrap_or_default(),
                    channel: col(1),
                    alert_id: col(2).parse().unwrap_or_default(),
                    event: col(3),
                    outcome: col(4),
                    status_code: col(5).parse().ok(),
                    attempts: col(6).parse().unwrap_or_default(),
                    detail: col(7),
                    created_at: col(8),
                }
            })
            .collect())
    }

    async fn latest_snapshots(&self, since: DateTime<Utc>) -> Result<Vec<Snapshot>, RepoError> {
        Ok(self.journal.latest(since).await?)
    }
}

#[async_trait]
impl IssueBook for AlertStore {
    async fn issue(&self, fingerprint: &str, channel: &str) -> Option<u64> {
        let rows = self
            .fetch(
                "SELECT CAST(issue_number AS TEXT) AS n FROM telemesh_alert_issues WHERE fingerprint = $1 AND channel = $2",
                vec![Some(fingerprint.into()), Some(channel.into())],
                &["n"],
            )
            .await
            .ok()?;
        rows.into_iter().next()?.into_iter().next()??.parse().ok()
    }

    async fn remember(&self, fingerprint: &str, channel: &str, number: u64) {
        let result = self
            .execute(
                "INSERT INTO telemesh_alert_issues (fingerprint, channel, issue_number) VALUES ($1, $2, CAST($3 AS BIGINT)) \
                 ON CONFLICT (fingerprint, channel) DO UPDATE SET issue_number = excluded.issue_number",
                vec![Some(fingerprint.into()), Some(channel.into()), Some(number.to_string())],
            )
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, fingerprint, channel, number, "could not store the github issue number");
        }
    }
}

/// The advisory-lock key of the alerting leadership ("telemesh" in ASCII).
const LEADER_LOCK_KEY: i64 = 0x7465_6c65_6d65_7368;

/// How long a leadership connect or check may take before it counts as lost.
const LEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The alerting leadership as a PostgreSQL session-level advisory lock held on a dedicated
/// connection (not a pooled one: the lock lives exactly as long as that session). When the
/// leader dies its connection closes, PostgreSQL releases the lock, and the next follower
/// poll takes it. The leader checks its session on every poll; when the session is gone it
/// takes the lock again, and steps down only when PostgreSQL answers that another session
/// holds it. While PostgreSQL cannot be reached at all the answer is an error, and the actor
/// keeps its role (nobody can take the lock from a database that is down).
#[derive(Debug)]
pub struct PgLeadership {
    options: sqlx::postgres::PgConnectOptions,
    session: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
}

impl PgLeadership {
    async fn try_lead_inner(&self) -> Result<bool, sqlx::Error> {
        use sqlx::Connection as _;
        let mut session = self.session.lock().await;
        if let Some(conn) = session.as_mut() {
            match tokio::time::timeout(LEADER_TIMEOUT, sqlx::query("SELECT 1").execute(&mut *conn))
                .await
            {
                Ok(Ok(_)) => return Ok(true),
                Ok(Err(e)) => tracing::warn!(error = %e, "the alerting leadership session is gone"),
                Err(_) => tracing::warn!("the alerting leadership session does not answer"),
            }
            // the lock went with the session: take it again if it is still free
            *session = None;
        }
        let mut conn = tokio::time::timeout(
            LEADER_TIMEOUT,
            sqlx::PgConnection::connect_with(&self.options),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if got {
            *session = Some(conn);
        } else {
            let _ = conn.close().await;
        }
        Ok(got)
    }
}

#[async_trait]
impl telemesh_alerting::repo::Leadership for PgLeadership {
    async fn try_lead(&self) -> Result<bool, RepoError> {
        self.try_lead_inner()
            .await
            .map_err(|e| RepoError::Unavailable(e.to_string()))
    }

    async fn release(&self) {
        use sqlx::Connection as _;
        if let Some(conn) = self.session.lock().await.take() {
            let _ = conn.close().await;
        }
    }
}

impl AlertStore {
    /// The alerting leadership on this database: an advisory lock on PostgreSQL; SQLite
    /// (standalone, one process) always leads.
    pub fn leadership(&self) -> std::sync::Arc<dyn telemesh_alerting::repo::Leadership> {
        match &self.db {
            Db::Postgres(pool) => std::sync::Arc::new(PgLeadership {
                options: (*pool.connect_options()).clone(),
                session: tokio::sync::Mutex::new(None),
            }),
            Db::Sqlite(_) => std::sync::Arc::new(telemesh_alerting::repo::SoleLeader),
        }
    }
}
