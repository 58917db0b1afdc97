//! Owns the SQLite journal of standalone mode: one file in the data directory, WAL mode,
//! the same columns as PostgreSQL with times as fixed-width RFC 3339 text, the same
//! latest-per-source table and batched retention `DELETE`s.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use telemesh_core::Snapshot;
use uuid::Uuid;

use super::{
    body_json, parse_body, parse_ts, ts, JournalError, JournalRecord, KafkaCoords,
    RetentionOutcome, RetentionPolicy, SnapshotQuery, StoredSnapshot,
};
use crate::settings::JournalSettings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The journal in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    pool: SqlitePool,
    pub(super) retention: Option<RetentionPolicy>,
}

/// Rows one retention `DELETE` removes at most.
const RETENTION_BATCH: i64 = 10_000;

impl SqliteJournal {
    pub(super) async fn connect(settings: &JournalSettings) -> Result<Self, JournalError> {
        let options = SqliteConnectOptions::from_str(settings.url.expose())
            .map_err(|e| {
                JournalError::Unavailable(format!(
                    "bad journal url {}: {e}",
                    settings.url.redacted()
                ))
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.clamp(1, 4))
            .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms.max(100)))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| JournalError::Migration(e.to_string()))?;
        Ok(Self {
            pool,
            retention: RetentionPolicy::from_settings(settings),
        })
    }

    pub(super) async fn insert_batch(
        &self,
        records: &[JournalRecord],
    ) -> Result<Vec<Uuid>, JournalError> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = Vec::new();
        for r in records {
            let s = &r.snapshot;
            let body = body_json(s)?;
            let result = sqlx::query(
                "INSERT INTO telemetry_snapshots \
                   (id, kind, service, instance, status, generated_at, received_at, summary, body, \
                    kafka_topic, kafka_partition, kafka_offset) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(s.id.to_string())
            .bind(&s.kind)
            .bind(&s.source.service)
            .bind(&s.source.instance)
            .bind(s.status.as_str())
            .bind(ts(s.generated_at))
            .bind(ts(r.received_at))
            .bind(&s.summary)
            .bind(&body)
            .bind(r.kafka.as_ref().map(|k| k.topic.clone()))
            .bind(r.kafka.as_ref().map(|k| k.partition))
            .bind(r.kafka.as_ref().map(|k| k.offset))
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() > 0 {
                inserted.push(s.id);
            }
            super::execution::insert_sqlite(&mut tx, r, result.rows_affected() > 0).await?;
            super::ci::insert_sqlite(&mut tx, r, result.rows_affected() > 0).await?;
            sqlx::query(
                "INSERT INTO telemetry_latest (kind, service, instance, generated_at, body) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, service, instance) DO UPDATE \
                 SET generated_at = excluded.generated_at, body = excluded.body \
                 WHERE excluded.generated_at > telemetry_latest.generated_at",
            )
            .bind(&s.kind)
            .bind(&s.source.service)
            .bind(&s.source.instance)
            .bind(ts(s.generated_at))
            .bind(&body)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    pub(super) async fn query(
        &self,
        q: &SnapshotQuery,
    ) -> Result<Vec<StoredSnapshot>, JournalError> {
        let rows = sqlx::query(
            "SELECT body, received_at, kafka_topic, kafka_partition, kafka_offset \
             FROM telemetry_snapshots \
             WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR service = ?2) \
               AND (?3 IS NULL OR generated_at >= ?3) AND (?4 IS NULL OR generated_at < ?4) \
             ORDER BY generated_at DESC, id DESC LIMIT ?5",
        )
        .bind(&q.kind)
        .bind(&q.service)
        .bind(q.since.map(ts))
        .bind(q.until.map(ts))
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let body: String = row.try_get("body")?;
                let received: String = row.try_get("received_at")?;
                let topic: Option<String> = row.try_get("kafka_topic")?;
                let partition: Option<i32> = row.try_get("kafka_partition")?;
                let offset: Option<i64> = row.try_get("kafka_offset")?;
                Ok(StoredSnapshot {
                    received_at: parse_ts(&received)?,
                    kafka: KafkaCoords::from_columns(topic, partition, offset),
                    snapshot: parse_body(&body)?,
                })
            })
            .collect()
    }

    /// From the latest-per-source table.
    pub(super) async fn latest(&self, since: DateTime<Utc>) -> Result<Vec<Snapshot>, JournalError> {
        let rows = sqlx::query("SELECT body FROM telemetry_latest WHERE generated_at >= ?")
            .bind(ts(since))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| parse_body(&row.try_get::<String, _>("body")?))
            .collect()
    }

    /// Batched `DELETE`s of rows generated before `cutoff`.
    pub(super) async fn retain(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<RetentionOutcome, JournalError> {
        let mut outcome = RetentionOutcome::default();
        loop {
            let deleted = sqlx::query(
                "DELETE FROM telemetry_snapshots WHERE rowid IN (\
                   SELECT rowid FROM telemetry_snapshots WHERE generated_at < ? LIMIT ?)",
            )
            .bind(ts(cutoff))
            .bind(RETENTION_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            outcome.rows_deleted += deleted;
            if deleted < RETENTION_BATCH as u64 {
                break;
            }
        }
        sqlx::query("DELETE FROM telemetry_latest WHERE generated_at < ?")
            .bind(ts(cutoff))
            .execute(&self.pool)
            .await?;
        super::execution::retain_sqlite(&self.pool, cutoff).await?;
        super::ci::retain_sqlite(&self.pool, cutoff).await?;
        Ok(outcome)
    }

    pub(super) async fn ping(&self) -> Result<(), JournalError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use telemesh_core::{Component, Grade, Source};

    fn record(kind: &str, service: &str, minutes_ago: i64) -> JournalRecord {
        let mut s = Snapshot::new(
            kind,
            Source::new(service, "i1"),
            Utc::now() - chrono::Duration::minutes(minutes_ago),
        );
        s.push(Component::new("c", Grade::Warn, "w"));
        JournalRecord {
            snapshot: s,
            received_at: Utc::now(),
            kafka: None,
        }
    }

    async fn journal(dir: &tempfile::TempDir) -> Journal {
        let settings = JournalSettings {
            url: telemesh_core::config::SecretUrl::new(format!(
                "sqlite://{}/j.db",
                dir.path().display()
            )),
            ..JournalSettings::default()
        };
        Journal::connect(&settings).await.unwrap()
    }

    #[tokio::test]
    async fn inserts_are_idempotent_and_queries_filter_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(&dir).await;
        let a = record("telemetry.kafka.readiness", "kr", 10);
        let b = record("telemetry.kafka.readiness", "kr", 5);
        let c = record("telemetry.ingest.trends", "ingest", 1);
        assert_eq!(
            j.insert_batch(&[a.clone(), b.clone(), c.clone()])
                .await
                .unwrap()
                .len(),
            3
        );
        assert!(j
            .insert_batch(&[a.clone(), b.clone()])
            .await
            .unwrap()
            .is_empty());
        let all = j
            .query(&SnapshotQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].snapshot, c.snapshot);
        let kr = j
            .query(&SnapshotQuery {
                kind: Some("telemetry.kafka.readiness".into()),
                since: Some(Utc::now() - chrono::Duration::minutes(7)),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(kr.len(), 1);
        assert_eq!(kr[0].snapshot, b.snapshot);
        let latest = j
            .latest(Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(latest.len(), 2);
        assert!(latest.contains(&b.snapshot) && latest.contains(&c.snapshot));
    }
}
