//! Owns the PostgreSQL/TimescaleDB journal: the write pool and the separate read pool (each
//! connection with a server-side `statement_timeout`), migrations, the TimescaleDB detection
//! with its plain-PostgreSQL fallback (or a refusal when it is required), the batched
//! idempotent insert (binary `COPY` into a staging table, then `INSERT … SELECT … ON CONFLICT
//! DO NOTHING` and the latest-per-source upsert, in one transaction), history reads that an
//! index serves in O(limit), and retention.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool, Postgres, QueryBuilder, Row};
use telemesh_core::Snapshot;
use uuid::Uuid;

use super::copy::{self, STAGING_COLUMNS};
use super::{
    parse_body, JournalError, JournalRecord, KafkaCoords, Layout, RetentionOutcome,
    RetentionPolicy, SnapshotQuery, StoredSnapshot,
};
use crate::settings::{JournalSettings, TimescaleMode};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Rows one retention `DELETE` removes at most (plain PostgreSQL), so no statement runs long.
const RETENTION_BATCH: i64 = 10_000;

/// The per-connection staging table of the write path (temporary, emptied at each commit).
const CREATE_STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS telemesh_journal_staging (\
       id uuid NOT NULL, kind text NOT NULL, service text NOT NULL, instance text NOT NULL, \
       status text NOT NULL, generated_at timestamptz NOT NULL, received_at timestamptz NOT NULL, \
       summary text NOT NULL, body jsonb NOT NULL, kafka_topic text, kafka_partition integer, \
       kafka_offset bigint) ON COMMIT DELETE ROWS";

/// The journal on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgJournal {
    /// Writes (and pings).
    pool: PgPool,
    /// Whether `pool` is this handle's own (see [`PgJournal::with_own_writer`]).
    own_writer: bool,
    /// History queries and summary refreshes; the write pool when `read_max_connections = 0`.
    read: PgPool,
    read_timeout: Duration,
    layout: Layout,
    load: StagingLoad,
    pub(super) retention: Option<RetentionPolicy>,
}

/// How a batch gets into the staging table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StagingLoad {
    /// Binary `COPY … FROM STDIN`: the fast path on a PostgreSQL server.
    Copy,
    /// One `INSERT … SELECT FROM UNNEST(arrays)`: for PGlite (PostgreSQL compiled to WASM, the
    /// TimescaleDB test server), whose wire protocol has no `COPY FROM STDIN`.
    Unnest,
}

/// What the server offers for TimescaleDB, as probed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimescaleProbe {
    /// `CREATE EXTENSION` has run in this database (its version).
    pub installed: Option<String>,
    /// The server has the extension's files (`pg_available_extensions`).
    pub available: bool,
    /// The library is loaded (`shared_preload_libraries`, or its settings are registered).
    pub preloaded: bool,
}

/// What to do about TimescaleDB, decided from the mode and the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimescaleDecision {
    /// Use it (creating the extension first when `create` is set).
    Use { create: bool },
    /// Plain PostgreSQL; `warning` is logged once when TimescaleDB was wanted but unusable.
    Plain { warning: Option<String> },
    /// `journal.timescale = "required"` and it is unusable: refuse to start with this message.
    Refuse(String),
}

const PRELOAD_HINT: &str = "add timescaledb to shared_preload_libraries in postgresql.conf \
     (shared_preload_libraries = 'timescaledb') and restart PostgreSQL";

/// The TimescaleDB decision: a pure function of the mode and what the server offers.
pub fn decide_timescale(mode: TimescaleMode, probe: &TimescaleProbe) -> TimescaleDecision {
    if mode == TimescaleMode::Off {
        return TimescaleDecision::Plain { warning: None };
    }
    let unusable = if !probe.available && probe.installed.is_none() {
        format!(
            "timescaledb is not installed on the PostgreSQL server; install the timescaledb \
             package for this PostgreSQL version, then {PRELOAD_HINT}"
        )
    } else if !probe.preloaded {
        format!("timescaledb is installed but not preloaded; {PRELOAD_HINT}")
    } else {
        return TimescaleDecision::Use {
            create: probe.installed.is_none(),
        };
    };
    if mode == TimescaleMode::Required {
        TimescaleDecision::Refuse(format!(
            "journal.timescale = \"required\" but {unusable} (or set journal.timescale = \"auto\" \
             to run on plain PostgreSQL)"
        ))
    } else {
        TimescaleDecision::Plain {
            warning: Some(format!(
                "{unusable}; journaling on plain PostgreSQL (B-tree on generated_at, batched DELETE for retention)"
            )),
        }
    }
}

fn bad_url(settings: &JournalSettings, e: sqlx::Error) -> JournalError {
    JournalError::Unavailable(format!("bad journal url {}: {e}", settings.url.redacted()))
}

/// A pool whose every connection runs `SET statement_timeout` (and `init`, when given) first.
async fn open_pool(
    options: PgConnectOptions,
    max: u32,
    acquire_timeout: Duration,
    statement_timeout_ms: u64,
    init: Option<&'static str>,
) -> Result<PgPool, JournalError> {
    Ok(PgPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(acquire_timeout)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // a fresh server session has no prepared statements; a server that hands one
                // session to successive clients (the PGlite test server) keeps the last one's,
                // whose names would collide with this connection's
                conn.execute("DEALLOCATE ALL").await?;
                if statement_timeout_ms > 0 {
                    conn.execute(
                        format!("SET statement_timeout = {statement_timeout_ms}").as_str(),
                    )
                    .await?;
                }
                if let Some(sql) = init {
                    conn.execute(sql).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

impl PgJournal {
    pub(super) async fn connect(settings: &JournalSettings) -> Result<Self, JournalError> {
        let options: PgConnectOptions = settings
            .url
            .expose()
            .parse()
            .map_err(|e| bad_url(settings, e))?;
        let acquire = Duration::from_millis(settings.acquire_timeout_ms.max(100));
        let pool = open_pool(
            options.clone().application_name("telemesh-aggregator"),
            settings.max_connections,
            acquire,
            settings.statement_timeout_ms,
            Some(CREATE_STAGING),
        )
        .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| JournalError::Migration(e.to_string()))?;
        let layout = prepare_layout(&pool, settings).await?;
        let version: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&pool)
            .await?;
        let load = if version.contains("Emscripten") {
            tracing::info!(%version, "WASM PostgreSQL (PGlite): batches load with UNNEST, not COPY");
            StagingLoad::Unnest
        } else {
            StagingLoad::Copy
        };
        let read = if settings.read_max_connections == 0 {
            pool.clone()
        } else {
            open_pool(
                options.application_name("telemesh-aggregator-read"),
                settings.read_max_connections,
                acquire,
                settings.read_timeout_ms,
                None,
            )
            .await?
        };
        tracing::info!(?layout, "postgres journal ready");
        Ok(Self {
            pool,
            own_writer: false,
            read,
            read_timeout: Duration::from_millis(settings.read_timeout_ms.max(100)),
            layout,
            load,
            retention: RetentionPolicy::from_settings(settings),
        })
    }

    pub(super) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Journals `records` in one transaction and answers the ids it newly inserted.
    ///
    /// The fast path (a PostgreSQL server) is a binary `COPY` straight into the journal table
    /// plus the latest-per-source upsert: the cost of a raw `COPY` and little more. A batch
    /// holding a record that is already journaled (a replay after a crash or a rebalance, or
    /// the same record twice) makes that `COPY` fail with a unique violation; the whole
    /// transaction is then rolled back and the batch goes the deduplicating way, through the
    /// staging table and `INSERT … ON CONFLICT DO NOTHING` (always the way on PGlite). Either
    /// way a record's row, its execution row and the latest upsert commit together, once.
    pub(super) async fn insert_batch(
        &self,
        records: &[JournalRecord],
    ) -> Result<Vec<Uuid>, JournalError> {
        let encoded = copy::encode(records)?;
        if self.load == StagingLoad::Copy {
            match self.insert_direct(records, &encoded).await {
                Err(JournalError::Refused { code, .. }) if code == UNIQUE_VIOLATION => {
                    tracing::debug!(
                        records = records.len(),
                        "batch holds an already journaled record (a replay): deduplicating it"
                    );
                }
                done => return done,
            }
        }
        self.insert_staged(records, &encoded).await
    }

    /// `COPY` into the journal table: fails with [`UNIQUE_VIOLATION`] on a replayed record.
    async fn insert_direct(
        &self,
        records: &[JournalRecord],
        encoded: &copy::Encoded,
    ) -> Result<Vec<Uuid>, JournalError> {
        let mut tx = self.pool.begin().await?;
        let mut copy_in = tx
            .copy_in_raw(&format!(
                "COPY telemetry_snapshots ({STAGING_COLUMNS}) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        copy_in.send(encoded.data.as_slice()).await?;
        copy_in.finish().await?;
        let inserted: Vec<Uuid> = records.iter().map(|r| r.snapshot.id).collect();
        derive_rows(&mut tx, records, &inserted).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Binary `COPY` (or `UNNEST` on PGlite) into the staging table, `INSERT … SELECT … ON
    /// CONFLICT DO NOTHING` into the journal, and the latest-per-source upsert.
    async fn insert_staged(
        &self,
        records: &[JournalRecord],
        encoded: &copy::Encoded,
    ) -> Result<Vec<Uuid>, JournalError> {
        let mut tx = self.pool.begin().await?;
        match self.load {
            StagingLoad::Copy => {
                let mut copy_in = tx
                    .copy_in_raw(&format!(
                        "COPY telemesh_journal_staging ({STAGING_COLUMNS}) FROM STDIN (FORMAT binary)"
                    ))
                    .await?;
                copy_in.send(encoded.data.as_slice()).await?;
                copy_in.finish().await?;
            }
            StagingLoad::Unnest => load_unnest(&mut tx, records, &encoded.bodies()?).await?,
        }
        let inserted: Vec<Uuid> = sqlx::query_scalar(&format!(
            "INSERT INTO telemetry_snapshots ({STAGING_COLUMNS}) \
             SELECT {STAGING_COLUMNS} FROM telemesh_journal_staging \
             ON CONFLICT DO NOTHING RETURNING id"
        ))
        .fetch_all(&mut *tx)
        .await?;
        derive_rows(&mut tx, records, &inserted).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// The history query's SQL with only the filters that are set, so the planner always sees
    /// a shape one of the `(…, generated_at DESC, id DESC)` indexes serves.
    fn history_sql<'a>(prefix: &str, q: &'a SnapshotQuery) -> QueryBuilder<'a, Postgres> {
        let mut b = QueryBuilder::new(prefix);
        b.push(
            " SELECT body::text AS body, received_at, kafka_topic, kafka_partition, kafka_offset \
             FROM telemetry_snapshots WHERE TRUE",
        );
        if let Some(kind) = &q.kind {
            b.push(" AND kind = ").push_bind(kind);
        }
        if let Some(service) = &q.service {
            b.push(" AND service = ").push_bind(service);
        }
        if let Some(since) = q.since {
            b.push(" AND generated_at >= ").push_bind(since);
        }
        if let Some(until) = q.until {
            b.push(" AND generated_at < ").push_bind(until);
        }
        b.push(" ORDER BY generated_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(q.limit));
        b
    }

    /// Runs a read on the read pool within the read timeout.
    async fn read<T, F>(&self, what: &str, read: F) -> Result<T, JournalError>
    where
        F: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        match tokio::time::timeout(self.read_timeout, read).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(JournalError::Unavailable(format!(
                "{what} took longer than journal.read_timeout_ms ({} ms); check the database load \
                 or narrow the query",
                self.read_timeout.as_millis()
            ))),
        }
    }

    pub(super) async fn query(
        &self,
        q: &SnapshotQuery,
    ) -> Result<Vec<StoredSnapshot>, JournalError> {
        let mut sql = Self::history_sql("", q);
        let rows = self
            .read("history query", sql.build().fetch_all(&self.read))
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

    /// The plan PostgreSQL chooses for the history query `q` (`EXPLAIN`, text format): for
    /// tests and diagnostics.
    pub async fn explain_history(&self, q: &SnapshotQuery) -> Result<String, JournalError> {
        let mut sql = Self::history_sql("EXPLAIN", q);
        let lines: Vec<String> = sql
            .build()
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        Ok(lines.join("\n"))
    }

    /// From the latest-per-source table: O(sources), not a scan of the journal.
    pub(super) async fn latest(&self, since: DateTime<Utc>) -> Result<Vec<Snapshot>, JournalError> {
        let rows = self
            .read(
                "latest-per-source read",
                sqlx::query(
                    "SELECT body::text AS body FROM telemetry_latest WHERE generated_at >= $1",
                )
                .bind(since)
                .fetch_all(&self.read),
            )
            .await?;
        rows.into_iter()
            .map(|row| parse_body(&row.try_get::<String, _>("body")?))
            .collect()
    }

    /// Removes rows generated before `cutoff`: whole chunks on a hypertable, batched `DELETE`s
    /// on plain PostgreSQL; the latest-per-source rows of sources silent since then go too.
    pub(super) async fn retain(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<RetentionOutcome, JournalError> {
        let mut outcome = RetentionOutcome::default();
        if matches!(self.layout, Layout::Timescale { .. }) {
            let dropped: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM drop_chunks('telemetry_snapshots', older_than => $1::timestamptz)",
            )
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await?;
            outcome.chunks_dropped = dropped.max(0) as u64;
        } else {
            loop {
                let deleted = sqlx::query(
                    "DELETE FROM telemetry_snapshots WHERE ctid = ANY(ARRAY(\
                       SELECT ctid FROM telemetry_snapshots WHERE generated_at < $1 LIMIT $2))",
                )
                .bind(cutoff)
                .bind(RETENTION_BATCH)
                .execute(&self.pool)
                .await?
                .rows_affected();
                outcome.rows_deleted += deleted;
                if deleted < RETENTION_BATCH as u64 {
                    break;
                }
            }
        }
        sqlx::query("DELETE FROM telemetry_latest WHERE generated_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        super::execution::retain_pg(&self.pool, cutoff).await?;
        super::ci::retain_pg(&self.pool, cutoff).await?;
        Ok(outcome)
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

    /// The write pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the read and the write pool, waiting for their in-flight queries.
    pub async fn close(&self) {
        self.read.close().await;
        self.pool.close().await;
    }

    /// A handle whose writes go through one connection of its own, opened on first use by the
    /// runtime that uses it (the journal actor's thread), so that thread's I/O never waits on
    /// another thread's event loop. Reads keep the shared read pool. PGlite serves a single
    /// connection, so there the handle shares the pool.
    pub(super) fn with_own_writer(&self) -> Self {
        if self.load == StagingLoad::Unnest {
            return self.clone();
        }
        let options = (*self.pool.connect_options())
            .clone()
            .application_name("telemesh-aggregator-writer");
        let pool = self
            .pool
            .options()
            .clone()
            .max_connections(1)
            .min_connections(0)
            .connect_lazy_with(options);
        Self {
            pool,
            own_writer: true,
            ..self.clone()
        }
    }

    /// Closes the pool of [`PgJournal::with_own_writer`] (nothing when the pool is shared).
    pub(super) async fn close_own_writer(&self) {
        if self.own_writer {
            self.pool.close().await;
        }
    }
}

/// Loads the batch into the staging table with one `INSERT … SELECT FROM UNNEST`.
async fn load_unnest(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    records: &[JournalRecord],
    bodies: &[&str],
) -> Result<(), JournalError> {
    let n = records.len();
    let (mut ids, mut kinds, mut services, mut instances) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut statuses, mut generated, mut received, mut summaries) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut topics: Vec<Option<String>> = Vec::with_capacity(n);
    let mut partitions: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut offsets: Vec<Option<i64>> = Vec::with_capacity(n);
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
        topics.push(r.kafka.as_ref().map(|k| k.topic.clone()));
        partitions.push(r.kafka.as_ref().map(|k| k.partition));
        offsets.push(r.kafka.as_ref().map(|k| k.offset));
    }
    sqlx::query(&format!(
        "INSERT INTO telemesh_journal_staging ({STAGING_COLUMNS}) \
         SELECT id, kind, service, instance, status, generated_at, received_at, summary, body::jsonb, \
                kafka_topic, kafka_partition, kafka_offset \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], \
                     $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::int4[], $12::int8[]) \
              AS t(id, kind, service, instance, status, generated_at, received_at, summary, body, \
                   kafka_topic, kafka_partition, kafka_offset)"
    ))
    .bind(&ids)
    .bind(&kinds)
    .bind(&services)
    .bind(&instances)
    .bind(&statuses)
    .bind(&generated)
    .bind(&received)
    .bind(&summaries)
    .bind(bodies)
    .bind(&topics)
    .bind(&partitions)
    .bind(&offsets)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What a batch's transaction writes besides the journal rows: the execution and CI rows of
/// the newly `inserted` snapshots and the latest-per-source upsert.
async fn derive_rows(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    records: &[JournalRecord],
    inserted: &[Uuid],
) -> Result<(), JournalError> {
    super::execution::insert_pg(tx, records, inserted).await?;
    super::ci::insert_pg(tx, records, inserted).await?;
    upsert_latest(tx, records).await
}

/// SQLSTATE of a unique violation: the fast path met an already journaled record.
const UNIQUE_VIOLATION: &str = "23505";

/// Upserts the newest record of each source in `records` into `telemetry_latest` (never
/// replacing a newer row): one statement of at most one row per source, which copies the rows
/// just written to the journal table (found by primary key) rather than sending and parsing
/// each body a second time.
async fn upsert_latest(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    records: &[JournalRecord],
) -> Result<(), JournalError> {
    let newest = super::newest_per_source(records);
    let ids: Vec<Uuid> = newest.iter().map(|&i| records[i].snapshot.id).collect();
    let generated: Vec<DateTime<Utc>> = newest
        .iter()
        .map(|&i| records[i].snapshot.generated_at)
        .collect();
    sqlx::query(
        "INSERT INTO telemetry_latest (kind, service, instance, generated_at, body) \
         SELECT s.kind, s.service, s.instance, s.generated_at, s.body \
         FROM UNNEST($1::uuid[], $2::timestamptz[]) AS t(id, generated_at) \
         JOIN telemetry_snapshots s ON s.id = t.id AND s.generated_at = t.generated_at \
         ON CONFLICT (kind, service, instance) DO UPDATE \
           SET generated_at = EXCLUDED.generated_at, body = EXCLUDED.body \
           WHERE telemetry_latest.generated_at < EXCLUDED.generated_at",
    )
    .bind(&ids)
    .bind(&generated)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Turns the table into a hypertable when TimescaleDB is usable (and wanted), else keeps it a
/// plain table; the B-tree indexes from the migrations serve both. Refuses when TimescaleDB is
/// required but unusable.
async fn prepare_layout(pool: &PgPool, settings: &JournalSettings) -> Result<Layout, JournalError> {
    let probe = probe_timescale(pool).await?;
    match decide_timescale(settings.timescale, &probe) {
        TimescaleDecision::Refuse(message) => Err(JournalError::Setup(message)),
        TimescaleDecision::Plain { warning } => {
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
            }
            Ok(Layout::PlainPostgres)
        }
        TimescaleDecision::Use { create } => {
            if create {
                match sqlx::query("CREATE EXTENSION IF NOT EXISTS timescaledb")
                    .execute(pool)
                    .await
                {
                    Ok(_) => {}
                    // e.g. no privilege to create it: usable later, plain PostgreSQL for now
                    Err(sqlx::Error::Database(e)) if settings.timescale == TimescaleMode::Auto => {
                        tracing::warn!(
                            "CREATE EXTENSION timescaledb failed ({e}); journaling on plain \
                             PostgreSQL (run it as a superuser, or set journal.timescale = \"off\")"
                        );
                        return Ok(Layout::PlainPostgres);
                    }
                    Err(e) => return Err(timescale_failed("CREATE EXTENSION timescaledb", e)),
                }
            }
            let version: String = sqlx::query_scalar(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
            )
            .fetch_one(pool)
            .await?;
            let hours = settings.chunk_interval_hours.max(1) as i32;
            sqlx::query(
                "SELECT create_hypertable('telemetry_snapshots', 'generated_at', \
                   chunk_time_interval => make_interval(hours => $1), if_not_exists => TRUE, \
                   migrate_data => TRUE, create_default_indexes => FALSE)",
            )
            .bind(hours)
            .execute(pool)
            .await
            .map_err(|e| timescale_failed("create_hypertable", e))?;
            // applies to chunks created from now on (a changed setting on an existing journal)
            sqlx::query(
                "SELECT set_chunk_time_interval('telemetry_snapshots', make_interval(hours => $1))",
            )
            .bind(hours)
            .execute(pool)
            .await
            .map_err(|e| timescale_failed("set_chunk_time_interval", e))?;
            super::execution::make_hypertable(pool, hours)
                .await
                .map_err(|e| timescale_failed("create_hypertable(execution_snapshots)", e))?;
            super::ci::make_hypertables(pool, hours)
                .await
                .map_err(|e| timescale_failed("create_hypertable(ci_*)", e))?;
            Ok(Layout::Timescale { version })
        }
    }
}

/// A TimescaleDB step failed: a database error stops the start (retrying would not help),
/// a connection error is an outage like any other.
fn timescale_failed(step: &str, e: sqlx::Error) -> JournalError {
    match e {
        sqlx::Error::Database(e) => {
            let hint = if e.message().contains("preload") {
                format!("; {PRELOAD_HINT}")
            } else {
                String::new()
            };
            JournalError::Setup(format!(
                "{step} failed: {e}{hint} (or set journal.timescale = \"off\" to journal on plain PostgreSQL)"
            ))
        }
        other => other.into(),
    }
}

/// What the server offers for TimescaleDB.
async fn probe_timescale(pool: &PgPool) -> Result<TimescaleProbe, JournalError> {
    let installed: Option<String> =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            .fetch_optional(pool)
            .await?;
    let available: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
    )
    .fetch_one(pool)
    .await?;
    // preloaded: named in shared_preload_libraries, or its settings are already registered
    // (an embedded build such as PGlite loads it without that setting)
    let preloaded: bool = sqlx::query_scalar(
        "SELECT current_setting('shared_preload_libraries') ~ '(^|[\\s,])\"?timescaledb' \
             OR EXISTS (SELECT 1 FROM pg_settings WHERE name LIKE 'timescaledb.%')",
    )
    .fetch_one(pool)
    .await?;
    Ok(TimescaleProbe {
        installed,
        available,
        preloaded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(installed: Option<&str>, available: bool, preloaded: bool) -> TimescaleProbe {
        TimescaleProbe {
            installed: installed.map(str::to_owned),
            available,
            preloaded,
        }
    }

    #[test]
    fn timescale_decisions_follow_the_mode_and_the_server() {
        use TimescaleMode::{Auto, Off, Required};
        let absent = probe(None, false, false);
        let not_preloaded = probe(None, true, false);
        let created_not_preloaded = probe(Some("2.17.0"), true, false);
        let ready = probe(None, true, true);
        let created = probe(Some("2.17.0"), true, true);
        for (mode, p, want) in [
            (Off, &ready, "plain-silent"),
            (Off, &absent, "plain-silent"),
            (Auto, &absent, "plain-warn"),
            (Auto, &not_preloaded, "plain-warn"),
            (Auto, &created_not_preloaded, "plain-warn"),
            (Auto, &ready, "create"),
            (Auto, &created, "use"),
            (Required, &absent, "refuse"),
            (Required, &not_preloaded, "refuse"),
            (Required, &created_not_preloaded, "refuse"),
            (Required, &ready, "create"),
            (Required, &created, "use"),
        ] {
            let got = decide_timescale(mode, p);
            let tag = match &got {
                TimescaleDecision::Plain { warning: None } => "plain-silent",
                TimescaleDecision::Plain { warning: Some(_) } => "plain-warn",
                TimescaleDecision::Use { create: true } => "create",
                TimescaleDecision::Use { create: false } => "use",
                TimescaleDecision::Refuse(_) => "refuse",
            };
            assert_eq!(tag, want, "{mode:?} {p:?}: {got:?}");
            if let TimescaleDecision::Refuse(m) | TimescaleDecision::Plain { warning: Some(m) } =
                &got
            {
                assert!(m.contains("shared_preload_libraries"), "{m}");
            }
        }
    }
}
