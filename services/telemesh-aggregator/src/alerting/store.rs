//! Owns the alert store in the journal database: alert records, GitHub issue numbers per
//! fingerprint, and the notification log whose `pending` rows are re-sent after a restart.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{PgPool, Row, SqlitePool};
use uuid::Uuid;

use super::channels::{IssueBook, Notification};
use super::engine::{Alert, AlertState};
use crate::journal::{Journal, JournalError};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Which alerts a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// Pending or firing (acknowledged or not).
    Open,
    Pending,
    Firing,
    Acknowledged,
    Resolved,
    All,
}

impl std::str::FromStr for StateFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "open" => StateFilter::Open,
            "pending" => StateFilter::Pending,
            "firing" => StateFilter::Firing,
            "acknowledged" => StateFilter::Acknowledged,
            "resolved" => StateFilter::Resolved,
            "all" => StateFilter::All,
            other => {
                return Err(format!(
                    "state={other:?}; use open, pending, firing, acknowledged, resolved or all"
                ))
            }
        })
    }
}

/// One row of the notification log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedNotification {
    pub id: Uuid,
    pub channel: String,
    pub alert_id: Uuid,
    pub event: String,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub attempts: i64,
    pub detail: String,
    pub created_at: String,
}

/// The alert store, on the journal's database.
#[derive(Debug, Clone)]
pub enum AlertStore {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// PostgreSQL numbers its parameters `$n`; SQLite takes `?n`.
macro_rules! q {
    ($self:expr, $sql:expr) => {
        match $self {
            AlertStore::Postgres(_) => $sql.to_owned(),
            AlertStore::Sqlite(_) => $sql.replace('$', "?"),
        }
    };
}

impl AlertStore {
    pub fn for_journal(journal: &Journal) -> Self {
        match journal {
            Journal::Postgres(j) => AlertStore::Postgres(j.pool().clone()),
            Journal::Sqlite(j) => AlertStore::Sqlite(j.pool().clone()),
        }
    }

    async fn execute(&self, sql: &str, binds: Vec<Option<String>>) -> Result<(), JournalError> {
        let sql = q!(self, sql);
        match self {
            AlertStore::Postgres(pool) => {
                let mut query = sqlx::query(&sql);
                for b in binds {
                    query = query.bind(b);
                }
                query.execute(pool).await?;
            }
            AlertStore::Sqlite(pool) => {
                let mut query = sqlx::query(&sql);
                for b in binds {
                    query = query.bind(b);
                }
                query.execute(pool).await?;
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
        let rows: Vec<Vec<Option<String>>> = match self {
            AlertStore::Postgres(pool) => {
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
            AlertStore::Sqlite(pool) => {
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

    /// Inserts or replaces an alert record.
    pub async fn upsert(&self, alert: &Alert) -> Result<(), JournalError> {
        let doc = serde_json::to_string(alert).map_err(|e| JournalError::Corrupt(e.to_string()))?;
        let state = match alert.state {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        self.execute(
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
        )
        .await
    }

    /// Alerts, newest first. `Acknowledged` means firing with an acknowledgement.
    pub async fn list(&self, filter: StateFilter, limit: u32) -> Result<Vec<Alert>, JournalError> {
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
            let alert: Alert =
                serde_json::from_str(&doc).map_err(|e| JournalError::Corrupt(e.to_string()))?;
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
    pub async fn get(&self, id: Uuid) -> Result<Option<Alert>, JournalError> {
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
            .map(|doc| serde_json::from_str(&doc).map_err(|e| JournalError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Records a notification for a channel before it is sent.
    pub async fn log_pending(&self, n: &Notification, channel: &str) -> Result<(), JournalError> {
        let payload = serde_json::to_string(n).map_err(|e| JournalError::Corrupt(e.to_string()))?;
        let now = ts(Utc::now());
        self.execute(
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
        )
        .await
    }

    /// Records how a notification ended for a channel.
    pub async fn log_outcome(
        &self,
        id: Uuid,
        channel: &str,
        outcome: &str,
        status: Option<u16>,
        attempts: u32,
        detail: &str,
    ) -> Result<(), JournalError> {
        self.execute(
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
        .await
    }

    /// Notifications recorded but not yet answered (e.g. interrupted by a restart).
    pub async fn pending_notifications(&self) -> Result<Vec<(String, Notification)>, JournalError> {
        let rows = self
            .fetch(
                "SELECT channel, payload FROM telemesh_alert_notifications WHERE outcome = $1 ORDER BY created_at",
                vec![Some("pending".into())],
                &["channel", "payload"],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let channel = r.first().cloned().flatten().unwrap_or_default();
                let payload = r.get(1).cloned().flatten().unwrap_or_default();
                serde_json::from_str(&payload)
                    .map(|n| (channel, n))
                    .map_err(|e| JournalError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// The notification log of one alert.
    pub async fn notifications(
        &self,
        alert_id: Uuid,
    ) -> Result<Vec<LoggedNotification>, JournalError> {
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
