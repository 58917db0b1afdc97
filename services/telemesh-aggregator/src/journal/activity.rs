//! Owns the drill and training log in the journal database (`telemesh_incident_activities`):
//! recording one activity and reading the newest of each kind, on PostgreSQL and SQLite alike.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, SqlitePool};
use telemesh_core::activity::{Activity, ActivityKind, LatestActivities};
use uuid::Uuid;

use super::{ts, Journal, JournalError};

const INSERT: &str = "INSERT INTO telemesh_incident_activities \
     (id, kind, at, recorded_by, note, received_at) VALUES ($1, $2, $3, $4, $5, $6)";
const NEWEST: &str = "SELECT kind, at, recorded_by, note FROM telemesh_incident_activities \
     WHERE kind = $1 ORDER BY at DESC, id DESC LIMIT 1";
const COUNT: &str = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM telemesh_incident_activities";

#[derive(Debug, Clone)]
enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// The activity log, on the journal's database.
#[derive(Debug, Clone)]
pub struct ActivityStore {
    db: Db,
}

fn row_to_activity(
    kind: String,
    at: String,
    by: String,
    note: String,
) -> Result<Activity, JournalError> {
    let kind = match kind.as_str() {
        "drill" => ActivityKind::Drill,
        "training" => ActivityKind::Training,
        other => {
            return Err(JournalError::Corrupt(format!(
                "telemesh_incident_activities holds kind {other:?}"
            )))
        }
    };
    let at = DateTime::parse_from_rfc3339(&at)
        .map_err(|e| {
            JournalError::Corrupt(format!(
                "telemesh_incident_activities holds time {at:?}: {e}"
            ))
        })?
        .with_timezone(&Utc);
    Ok(Activity { kind, at, by, note })
}

impl ActivityStore {
    pub fn for_journal(journal: &Journal) -> Self {
        let db = match journal {
            Journal::Postgres(j) => Db::Postgres(j.pool().clone()),
            Journal::Sqlite(j) => Db::Sqlite(j.pool().clone()),
        };
        Self { db }
    }

    /// Records one validated activity received at `received_at`; returns its id.
    pub async fn record(
        &self,
        activity: &Activity,
        received_at: DateTime<Utc>,
    ) -> Result<Uuid, JournalError> {
        let id = Uuid::now_v7();
        let binds = [
            id.to_string(),
            activity.kind.as_str().to_owned(),
            ts(activity.at),
            activity.by.clone(),
            activity.note.clone(),
            ts(received_at),
        ];
        match &self.db {
            Db::Postgres(pool) => {
                let mut query = sqlx::query(INSERT);
                for b in binds {
                    query = query.bind(b);
                }
                query.execute(pool).await?;
            }
            Db::Sqlite(pool) => {
                let sql = INSERT.replace('$', "?");
                let mut query = sqlx::query(&sql);
                for b in binds {
                    query = query.bind(b);
                }
                query.execute(pool).await?;
            }
        }
        Ok(id)
    }

    /// The newest drill, the newest training session and how many activities there are.
    pub async fn latest(&self) -> Result<LatestActivities, JournalError> {
        let mut latest = LatestActivities::default();
        for kind in [ActivityKind::Drill, ActivityKind::Training] {
            let row: Option<(String, String, String, String)> = match &self.db {
                Db::Postgres(pool) => sqlx::query(NEWEST)
                    .bind(kind.as_str())
                    .fetch_optional(pool)
                    .await?
                    .map(|r| -> Result<_, sqlx::Error> {
                        Ok((
                            r.try_get("kind")?,
                            r.try_get("at")?,
                            r.try_get("recorded_by")?,
                            r.try_get("note")?,
                        ))
                    })
                    .transpose()?,
                Db::Sqlite(pool) => sqlx::query(&NEWEST.replace('$', "?"))
                    .bind(kind.as_str())
                    .fetch_optional(pool)
                    .await?
                    .map(|r| -> Result<_, sqlx::Error> {
                        Ok((
                            r.try_get("kind")?,
                            r.try_get("at")?,
                            r.try_get("recorded_by")?,
                            r.try_get("note")?,
                        ))
                    })
                    .transpose()?,
            };
            let activity = row
                .map(|(k, at, by, note)| row_to_activity(k, at, by, note))
                .transpose()?;
            match kind {
                ActivityKind::Drill => latest.last_drill = activity,
                ActivityKind::Training => latest.last_training = activity,
            }
        }
        let count: i64 = match &self.db {
            Db::Postgres(pool) => sqlx::query(COUNT).fetch_one(pool).await?.try_get("n")?,
            Db::Sqlite(pool) => sqlx::query(COUNT).fetch_one(pool).await?.try_get("n")?,
        };
        latest.entries = u64::try_from(count).unwrap_or_default();
        Ok(latest)
    }
}
