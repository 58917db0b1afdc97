//! Owns the PostgreSQL/TimescaleDB journal: connection pool, migrations, the TimescaleDB
//! detection with its plain-PostgreSQL fallback, and the batched idempotent insert (UNNEST).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use telemesh_core::Snapshot;
use uuid::Uuid;

use super::{
    body_json, parse_body, wants_timescale, JournalError, JournalRecord, KafkaCoords, Layout,
    SnapshotQuery, StoredSnapshot,
};
use crate::settings::JournalSettings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// SQLSTATEs that mean "TimescaleDB cannot be used here": not available / not preloaded,
/// insufficient privilege, object not in prerequisite state.
const TIMESCALE_FALLBACK_STATES: [&str; 3] = ["0A000", "42501", "55000"];

/// The journal on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgJournal {
    pool: PgPool,
    layout: Layout,
}

impl PgJournal {
    pub(super) async fn connect(settings: &JournalSettings) -> Result<Self, JournalError> {
        let options: PgConnectOptions =
            settings.url.expose().parse().map_err(|e: sqlx::Error| {
                JournalError::Unavailable(format!(
                    "bad journal url {}: {e}",
                    settings.url.redacted()
                ))
            })?;
        let options = options.application_name("telemesh-aggregator");
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms.max(100)))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| JournalError::Migration(e.to_string()))?;
        let layout = prepare_layout(&pool, wants_timescale(settings)).await?;
        tracing::info!(?layout, "postgres journal ready");
        Ok(Self { pool, layout })
    }

    pub(super) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(super) async fn insert_batch(
        &self,
        records: &[JournalRecord],
    ) -> Result<Vec<Uuid>, JournalError> {
        let mut ids = Vec::with_capacity(records.len());
        let mut kinds = Vec::with_capacity(records.len());
        let mut services = Vec::with_capacity(records.len());
        let mut instances = Vec::with_capacity(records.len());
        let mut statuses = Vec::with_capacity(records.len());
        let mut generated = Vec::with_capacity(records.len());
        let mut received = Vec::with_capacity(records.len());
        let mut summaries = Vec::with_capacity(records.len());
        let mut bodies = Vec::with_capacity(records.len());
        let mut topics: Vec<Option<String>> = Vec::with_capacity(records.len());
        let mut partitions: Vec<Option<i32>> = Vec::with_capacity(records.len());
        let mut offsets: Vec<Option<i64>> = Vec::with_capacity(records.len());
        for r in records {
            let s = &r.snapshot;
            ids.push(s.id);
            kinds.push(s.kind.clone());
            services.push(s.source.service.clone());
            instances.push(s.source.instance.clone());
            statuses.push(s.status.as_str().to_owned());
            generated.push(s.generated_at);
            received.push(r.received_at);
            summaries.push(s.summary.clone());
            bodies.push(body_json(s)?);
            topics.push(r.kafka.as_ref().map(|k| k.topic.clone()));
            partitions.push(r.kafka.as_ref().map(|k| k.partition));
            offsets.push(r.kafka.as_ref().map(|k| k.offset));
        }
        let mut tx = self.pool.begin().await?;
        let inserted: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO telemetry_snapshots \
               (id, kind, service, instance, status, generated_at, received_at, summary, body, \
                kafka_topic, kafka_partition, kafka_offset) \
             SELECT id, kind, service, instance, status, generated_at, received_at, summary, body::jsonb, \
                    kafka_topic, kafka_partition, kafka_offset \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], \
                         $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::int4[], $12::int8[]) \
                  AS t(id, kind, service, instance, status, generated_at, received_at, summary, body, \
                       kafka_topic, kafka_partition, kafka_offset) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&services)
        .bind(&instances)
        .bind(&statuses)
        .bind(&generated)
        .bind(&received)
        .bind(&summaries)
        .bind(&bodies)
        .bind(&topics)
        .bind(&partitions)
        .bind(&offsets)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted)
    }

    pub(super) async fn query(
        &self,
        q: &SnapshotQuery,
    ) -> Result<Vec<StoredSnapshot>, JournalError> {
        let rows = sqlx::query(
            "SELECT body::text AS body, received_at, kafka_topic, kafka_partition, kafka_offset \
             FROM telemetry_snapshots \
             WHERE ($1::text IS NULL OR kind = $1) \
               AND ($2::text IS NULL OR service = $2) \
               AND ($3::timestamptz IS NULL OR generated_at >= $3) \
               AND ($4::timestamptz IS NULL OR generated_at < $4) \
             ORDER BY generated_at DESC, id DESC \
             LIMIT $5",
        )
        .bind(&q.kind)
        .bind(&q.service)
        .bind(q.since)
        .bind(q.until)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let body: String = row.try_get("body")?;
                let topic: Option<String> = row.try_get("kafka_topic")?;
                let partition: Option<i32> = row.try_get("kafka_partition")?;
                let offset: Option<i64> = row.try_get("kafka_offset")?;
                Ok(StoredSnapshot {
                    received_at: row.try_get("received_at")?,
                    kafka: KafkaCoords::from_columns(topic, partition, offset),
                    snapshot: parse_body(&body)?,
                })
            })
            .collect()
    }

    pub(super) async fn latest(&self, since: DateTime<Utc>) -> Result<Vec<Snapshot>, JournalError> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (kind, service, instance) body::text AS body \
             FROM telemetry_snapshots WHERE generated_at >= $1 \
             ORDER BY kind, service, instance, generated_at DESC",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| parse_body(&row.try_get::<String, _>("body")?))
            .collect()
    }

    pub(super) async fn ping(&self) -> Result<(), JournalError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Number of journaled rows with this id (0 or 1): for tests and diagnostics.
    pub async fn count_id(&self, id: Uuid) -> Result<i64, JournalError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM telemetry_snapshots WHERE id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Turns the table into a hypertable when TimescaleDB can be used, else makes sure the
/// plain-PostgreSQL BRIN index exists. Same columns either way.
async fn prepare_layout(pool: &PgPool, try_timescale: bool) -> Result<Layout, JournalError> {
    if try_timescale {
        if let Some(version) = timescale_version(pool).await? {
            sqlx::query(
                "SELECT create_hypertable('telemetry_snapshots', 'generated_at', \
                   chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE, migrate_data => TRUE)",
            )
            .execute(pool)
            .await
            .map_err(|e| JournalError::Migration(format!("create_hypertable: {e}")))?;
            return Ok(Layout::Timescale { version });
        }
    }
    sqlx::query(
        "CREATE INDEX IF NOT EXISTS telemetry_snapshots_generated_brin \
         ON telemetry_snapshots USING brin (generated_at) WITH (pages_per_range = 32)",
    )
    .execute(pool)
    .await
    .map_err(|e| JournalError::Migration(e.to_string()))?;
    Ok(Layout::PlainPostgres)
}

/// The TimescaleDB version usable in this database, creating the extension when the server
/// has it; `None` (plain PostgreSQL) when it is absent or cannot be created.
async fn timescale_version(pool: &PgPool) -> Result<Option<String>, JournalError> {
    const INSTALLED: &str = "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'";
    if let Some(version) = sqlx::query_scalar::<_, String>(INSTALLED)
        .fetch_optional(pool)
        .await?
    {
        return Ok(Some(version));
    }
    let available: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
            .fetch_optional(pool)
            .await?;
    if available.is_none() {
        tracing::info!("timescaledb is not installed on the server; using plain PostgreSQL (BRIN on generated_at)");
        return Ok(None);
    }
    match sqlx::query("CREATE EXTENSION IF NOT EXISTS timescaledb")
        .execute(pool)
        .await
    {
        Ok(_) => Ok(sqlx::query_scalar::<_, String>(INSTALLED)
            .fetch_optional(pool)
            .await?),
        Err(sqlx::Error::Database(e))
            if e.code()
                .is_some_and(|c| TIMESCALE_FALLBACK_STATES.contains(&c.as_ref())) =>
        {
            tracing::warn!(error = %e, "timescaledb unavailable; using plain PostgreSQL");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
