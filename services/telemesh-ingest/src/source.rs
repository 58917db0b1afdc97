//! Owns the connection to the platform's database (PostgreSQL/TimescaleDB or a SQLite file):
//! reading each dimension's newest ingest runs, the oldest/newest timestamps and the gaps of
//! market-data tables through index probes, and the one write the service does — inserting
//! an accepted run report into the platform's runs table.
//!
//! Sessions are read-only by default (PostgreSQL `default_transaction_read_only=on`, SQLite
//! `read_only`); only [`SourceDb::insert_run`] opens a read-write transaction. The telemesh
//! journal is never touched here.

use std::str::FromStr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Row, SqlitePool};

use crate::retention::{Gap, GapCheck, TableObservation, TableWindow};
use crate::run::{IngestRun, RunReport};
use crate::settings::{IngestSettings, RetentionPolicy, TablePolicy};
use crate::trends::RunsByDimension;

/// The most index probes one table's gap walk may make.
pub const MAX_GAP_PROBES: usize = 10_000;

/// The columns of the runs table (DOMAINS.md §5.3).
pub const RUN_COLUMNS: [&str; 10] = [
    "run_id",
    "dimension",
    "status",
    "rows_written",
    "freshness_seconds",
    "ingest_duration_seconds",
    "executed_at",
    "source",
    "symbols",
    "metadata",
];

/// Which kind of database the platform uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The backend a URL names, if supported.
    pub fn of_url(url: &str) -> Option<Self> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// A validated `schema.table` (or `table`) name; each part matches `^[A-Za-z_][A-Za-z0-9_]*$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

impl TableName {
    /// Parses `schema.table` or `table`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() > 2 || parts.iter().any(|p| !valid_ident(p)) {
            return Err(format!(
                "{s:?} is not a table name: use `schema.table` or `table`, each part letters, digits and _ (not starting with a digit)"
            ));
        }
        Ok(match parts.as_slice() {
            [schema, name] => Self {
                schema: Some((*schema).to_owned()),
                name: (*name).to_owned(),
            },
            _ => Self {
                schema: None,
                name: s.to_owned(),
            },
        })
    }

    /// The quoted name in SQL: `"schema"."table"` on PostgreSQL, `"schema_table"` on SQLite.
    pub fn sql(&self, backend: Backend) -> String {
        match (backend, &self.schema) {
            (Backend::Postgres, Some(schema)) => format!("\"{schema}\".\"{}\"", self.name),
            (Backend::Sqlite, Some(schema)) => format!("\"{schema}_{}\"", self.name),
            (_, None) => format!("\"{}\"", self.name),
        }
    }

    /// The name as people see it on `backend` (unquoted).
    pub fn display(&self, backend: Backend) -> String {
        self.sql(backend).replace('"', "")
    }
}

/// Why the platform's database could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("ingest source is not configured: set [ingest] source_url (TELEMESH__INGEST__SOURCE_URL) to postgres://… or sqlite://…")]
    NotConfigured,
    #[error("unsupported source url {0:?}: use postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    #[error("bad source url {url}: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("platform database unreachable: {0}")]
    Unavailable(String),
    #[error("query failed: {0}")]
    Query(String),
    /// The database refused a value (SQLSTATE class 22 or 23), e.g. a `run_id` that is not a
    /// UUID for a `uuid` column: the client's data, not an outage.
    #[error("the platform database refused the value: {0}")]
    Rejected(String),
    #[error("{0}")]
    Schema(String),
}

impl From<sqlx::Error> for SourceError {
    fn from(e: sqlx::Error) -> Self {
        let unreachable = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                ["08", "57P", "53", "28"].iter().any(|p| c.starts_with(p))
                    || c == "55000"
                    || c == "3D000"
            }),
            _ => false,
        };
        let rejected = matches!(&e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")));
        if unreachable {
            SourceError::Unavailable(e.to_string())
        } else if rejected {
            SourceError::Rejected(e.to_string())
        } else {
            SourceError::Query(e.to_string())
        }
    }
}

#[derive(Debug, Clone)]
enum Pool {
    Postgres(PgPool),
    Sqlite {
        pool: SqlitePool,
        /// Options of the one-off read-write connection of [`SourceDb::insert_run`].
        write: Box<SqliteConnectOptions>,
    },
}

/// The platform's database. Cheap to clone (shares its pool).
#[derive(Debug, Clone)]
pub struct SourceDb {
    pool: Pool,
    redacted_url: String,
}

impl SourceDb {
    /// Builds the pool without connecting: connections are opened on first use, so the service
    /// starts (and reports the outage) while the database is down.
    pub fn connect_lazy(settings: &IngestSettings) -> Result<Self, SourceError> {
        let url = settings.source_url.expose().trim();
        if url.is_empty() {
            return Err(SourceError::NotConfigured);
        }
        let redacted_url = settings.source_url.redacted();
        let bad = |e: sqlx::Error| SourceError::BadUrl {
            url: redacted_url.clone(),
            detail: e.to_string(),
        };
        let acquire = StdDuration::from_millis(settings.acquire_timeout_ms.max(100));
        let pool = match Backend::of_url(url) {
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(bad)?
                    .application_name("telemesh-ingest")
                    .options([
                        ("default_transaction_read_only", "on".to_owned()),
                        ("TimeZone", "UTC".to_owned()),
                        (
                            "statement_timeout",
                            settings.statement_timeout_ms.max(1).to_string(),
                        ),
                    ]);
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(settings.max_connections.max(1))
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            Some(Backend::Sqlite) => {
                let write = SqliteConnectOptions::from_str(url)
                    .map_err(bad)?
                    .create_if_missing(false)
                    .busy_timeout(acquire)
                    .disable_statement_logging();
                let read = write.clone().read_only(true);
                Pool::Sqlite {
                    pool: SqlitePoolOptions::new()
                        .max_connections(settings.max_connections.max(1))
                        .acquire_timeout(acquire)
                        .connect_lazy_with(read),
                    write: Box::new(write),
                }
            }
            None => return Err(SourceError::UnsupportedUrl(redacted_url)),
        };
        Ok(Self { pool, redacted_url })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// The URL with its password redacted.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// One round trip.
    pub async fn ping(&self) -> Result<(), SourceError> {
        match &self.pool {
            Pool::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Pool::Sqlite { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Whether the service's sessions refuse writes outside [`SourceDb::insert_run`].
    pub async fn session_is_read_only(&self) -> Result<bool, SourceError> {
        match &self.pool {
            Pool::Postgres(pool) => {
                let v: String = sqlx::query_scalar("SHOW transaction_read_only")
                    .fetch_one(pool)
                    .await?;
                Ok(v == "on")
            }
            Pool::Sqlite { pool, .. } => {
                // a write that is rolled back either way
                let mut tx = pool.begin().await?;
                let attempt = sqlx::query("CREATE TABLE main.telemesh_read_only_probe (x)")
                    .execute(&mut *tx)
                    .await;
                tx.rollback().await?;
                Ok(attempt.is_err())
            }
        }
    }

    /// The `per_dimension` newest runs of every dimension of `table` (newest first within a
    /// dimension), each dimension read on its own so a chatty one cannot crowd out a quiet one.
    pub async fn recent_runs(
        &self,
        table: &TableName,
        per_dimension: usize,
    ) -> Result<RunsByDimension, SourceError> {
        let t = table.sql(self.backend());
        let limit = i64::try_from(per_dimension.max(1)).unwrap_or(i64::MAX);
        let mut out = RunsByDimension::new();
        match &self.pool {
            Pool::Postgres(pool) => {
                // loose index scan over the distinct dimensions, then each dimension's newest runs
                // through the (dimension, executed_at DESC) index
                let sql = format!(
                    "WITH RECURSIVE dims(dimension) AS ( \
                         (SELECT dimension FROM {t} ORDER BY dimension LIMIT 1) \
                       UNION ALL \
                         SELECT (SELECT x.dimension FROM {t} x WHERE x.dimension > dims.dimension ORDER BY x.dimension LIMIT 1) \
                         FROM dims WHERE dims.dimension IS NOT NULL) \
                     SELECT r.* FROM dims d CROSS JOIN LATERAL ( \
                         SELECT x.run_id::text AS run_id, x.dimension::text AS dimension, x.status::text AS status, \
                                x.rows_written::int8 AS rows_written, x.freshness_seconds::float8 AS freshness_seconds, \
                                x.ingest_duration_seconds::float8 AS ingest_duration_seconds, \
                                EXTRACT(EPOCH FROM x.executed_at)::float8 AS executed_epoch, \
                                x.source::text AS source, x.symbols::text AS symbols \
                         FROM {t} x WHERE x.dimension = d.dimension \
                         ORDER BY x.executed_at DESC, x.run_id DESC LIMIT $1) r \
                     WHERE d.dimension IS NOT NULL"
                );
                let rows = sqlx::query(&sql).bind(limit).fetch_all(pool).await?;
                for row in rows {
                    let epoch: Option<f64> = row.try_get("executed_epoch")?;
                    let Some(executed_at) = epoch.and_then(from_epoch) else {
                        continue;
                    };
                    let run = IngestRun {
                        run_id: row
                            .try_get::<Option<String>, _>("run_id")?
                            .unwrap_or_default(),
                        dimension: row
                            .try_get::<Option<String>, _>("dimension")?
                            .unwrap_or_default(),
                        status: row
                            .try_get::<Option<String>, _>("status")?
                            .unwrap_or_default(),
                        rows_written: row.try_get::<Option<i64>, _>("rows_written")?.unwrap_or(0),
                        freshness_seconds: row.try_get("freshness_seconds")?,
                        ingest_duration_seconds: row.try_get("ingest_duration_seconds")?,
                        executed_at,
                        source: row.try_get("source")?,
                        symbols: parse_symbols(row.try_get("symbols")?),
                    };
                    out.entry(run.dimension.clone()).or_default().push(run);
                }
            }
            Pool::Sqlite { pool, .. } => {
                let sql = format!(
                    "SELECT CAST(run_id AS TEXT) AS run_id, CAST(dimension AS TEXT) AS dimension, \
                            CAST(status AS TEXT) AS status, CAST(rows_written AS INTEGER) AS rows_written, \
                            CAST(freshness_seconds AS REAL) AS freshness_seconds, \
                            CAST(ingest_duration_seconds AS REAL) AS ingest_duration_seconds, \
                            CAST(executed_at AS TEXT) AS executed_at, CAST(source AS TEXT) AS source, \
                            CAST(symbols AS TEXT) AS symbols \
                     FROM (SELECT *, row_number() OVER (PARTITION BY dimension ORDER BY executed_at DESC, run_id DESC) AS rn \
                           FROM {t}) WHERE rn <= ?"
                );
                let rows = sqlx::query(&sql).bind(limit).fetch_all(pool).await?;
                for row in rows {
                    let text: Option<String> = row.try_get("executed_at")?;
                    let Some(executed_at) = text.as_deref().and_then(parse_time_text) else {
                        tracing::warn!(executed_at = ?text, "skipping an ingest run whose executed_at is not a time");
                        continue;
                    };
                    let run = IngestRun {
                        run_id: row
                            .try_get::<Option<String>, _>("run_id")?
                            .unwrap_or_default(),
                        dimension: row
                            .try_get::<Option<String>, _>("dimension")?
                            .unwrap_or_default(),
                        status: row
                            .try_get::<Option<String>, _>("status")?
                            .unwrap_or_default(),
                        rows_written: row.try_get::<Option<i64>, _>("rows_written")?.unwrap_or(0),
                        freshness_seconds: row.try_get("freshness_seconds")?,
                        ingest_duration_seconds: row.try_get("ingest_duration_seconds")?,
                        executed_at,
                        source: row.try_get("source")?,
                        symbols: parse_symbols(row.try_get("symbols")?),
                    };
                    out.entry(run.dimension.clone()).or_default().push(run);
                }
            }
        }
        Ok(out)
    }

    /// Observes every table of `policy`; a failure is recorded per table.
    pub async fn observe_all(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
    ) -> Vec<TableObservation> {
        let mut out = Vec::with_capacity(policy.tables.len());
        for t in &policy.tables {
            let result = self.observe_table(t, now).await.map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::warn!(table = %t.table, error = %e, "retention query failed");
            }
            out.push(TableObservation {
                name: t.name.clone(),
                result,
            });
        }
        out
    }

    /// The oldest and newest `time_column` values of one table (two index probes) and, when
    /// `max_gap_hours` is set, the stretches without rows since the target window start.
    pub async fn observe_table(
        &self,
        policy: &TablePolicy,
        now: DateTime<Utc>,
    ) -> Result<TableWindow, SourceError> {
        let table = TableName::parse(&policy.table).map_err(SourceError::Schema)?;
        let column = TableName::parse(&policy.time_column)
            .ok()
            .filter(|c| c.schema.is_none())
            .ok_or_else(|| {
                SourceError::Schema(format!("{:?} is not a column name", policy.time_column))
            })?;
        let t = table.sql(self.backend());
        let c = column.sql(self.backend());
        match &self.pool {
            Pool::Postgres(pool) => {
                let (earliest, latest): (Option<f64>, Option<f64>) =
                    sqlx::query_as(&window_sql(&t, &c)).fetch_one(pool).await?;
                let earliest = earliest.and_then(from_epoch);
                let latest = latest.and_then(from_epoch);
                let (gaps, gap_check) = match (policy.max_gap_hours, earliest) {
                    (None, _) => (Vec::new(), GapCheck::NotConfigured),
                    (Some(_), None) => (Vec::new(), GapCheck::Done),
                    (Some(hours), Some(earliest)) => {
                        let window_start = now - Duration::days(i64::from(policy.target_days));
                        walk_gaps(
                            pool,
                            &t,
                            &c,
                            earliest,
                            window_start,
                            Duration::hours(i64::from(hours)),
                        )
                        .await?
                    }
                };
                Ok(TableWindow {
                    earliest,
                    latest,
                    gaps,
                    gap_check,
                })
            }
            Pool::Sqlite { pool, .. } => {
                // one aggregate per statement, so SQLite's min/max optimisation uses the index
                let earliest: Option<String> =
                    sqlx::query_scalar(&format!("SELECT CAST((SELECT min({c}) FROM {t}) AS TEXT)"))
                        .fetch_one(pool)
                        .await?;
                let latest: Option<String> =
                    sqlx::query_scalar(&format!("SELECT CAST((SELECT max({c}) FROM {t}) AS TEXT)"))
                        .fetch_one(pool)
                        .await?;
                let parse = |v: Option<String>,
                             which: &str|
                 -> Result<Option<DateTime<Utc>>, SourceError> {
                    match v {
                        None => Ok(None),
                        Some(s) => parse_time_text(&s).map(Some).ok_or_else(|| {
                            SourceError::Schema(format!("the {which} {c} value {s:?} of {t} is not a time: store RFC 3339 text or epoch seconds"))
                        }),
                    }
                };
                Ok(TableWindow {
                    earliest: parse(earliest, "oldest")?,
                    latest: parse(latest, "newest")?,
                    gaps: Vec::new(),
                    gap_check: if policy.max_gap_hours.is_some() {
                        GapCheck::Unsupported("the gap check needs PostgreSQL".into())
                    } else {
                        GapCheck::NotConfigured
                    },
                })
            }
        }
    }

    /// Inserts an accepted run report into the platform's runs table in its own read-write
    /// transaction. Returns false when a run with that `run_id` already exists (needs a unique
    /// constraint on `run_id`, as in §5.3).
    pub async fn insert_run(
        &self,
        table: &TableName,
        report: &RunReport,
    ) -> Result<bool, SourceError> {
        let r = &report.run;
        let t = table.sql(self.backend());
        match &self.pool {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET TRANSACTION READ WRITE")
                    .execute(&mut *tx)
                    .await?;
                let types: Vec<(String, String)> = sqlx::query_as(
                    "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                     WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                )
                .bind(&t)
                .fetch_all(&mut *tx)
                .await?;
                if types.is_empty() {
                    return Err(SourceError::Schema(format!(
                        "runs table {} does not exist: create it (see docs/ingest.md) or set [ingest] runs_table",
                        table.display(Backend::Postgres)
                    )));
                }
                let mut casts = Vec::with_capacity(RUN_COLUMNS.len());
                for (i, column) in RUN_COLUMNS.iter().enumerate() {
                    let ty = types
                        .iter()
                        .find(|(name, _)| name == column)
                        .map(|(_, ty)| ty.as_str())
                        .ok_or_else(|| {
                            SourceError::Schema(format!(
                                "runs table {} has no column {column}: it needs the columns of docs/ingest.md",
                                table.display(Backend::Postgres)
                            ))
                        })?;
                    if !ty
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || " _(),.[]\"".contains(c))
                    {
                        return Err(SourceError::Schema(format!(
                            "column {column} has an unsupported type {ty:?}"
                        )));
                    }
                    casts.push(format!("CAST(${} AS {ty})", i + 1));
                }
                let sql = format!(
                    "INSERT INTO {t} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                    RUN_COLUMNS.join(", "),
                    casts.join(", ")
                );
                let done = sqlx::query(&sql)
                    .bind(&r.run_id)
                    .bind(&r.dimension)
                    .bind(&r.status)
                    .bind(r.rows_written.to_string())
                    .bind(r.freshness_seconds.map(|f| f.to_string()))
                    .bind(r.ingest_duration_seconds.map(|f| f.to_string()))
                    .bind(report.executed_at_text())
                    .bind(&r.source)
                    .bind(report.symbols_json())
                    .bind(report.metadata_json())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }
            Pool::Sqlite { write, .. } => {
                let mut conn = write.connect().await?;
                let sql = format!(
                    "INSERT INTO {t} ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    RUN_COLUMNS.join(", ")
                );
                let done = sqlx::query(&sql)
                    .bind(&r.run_id)
                    .bind(&r.dimension)
                    .bind(&r.status)
                    .bind(r.rows_written)
                    .bind(r.freshness_seconds)
                    .bind(r.ingest_duration_seconds)
                    .bind(report.executed_at_text())
                    .bind(&r.source)
                    .bind(report.symbols_json())
                    .bind(report.metadata_json())
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
                Ok(done?.rows_affected() == 1)
            }
        }
    }
}

/// The PostgreSQL query of a table's oldest and newest time (epoch seconds): each scalar
/// subquery is one probe at an end of an index whose leading column is the time column.
/// `table` and `column` are quoted SQL names ([`TableName::sql`]).
pub fn window_sql(table: &str, column: &str) -> String {
    format!(
        "SELECT EXTRACT(EPOCH FROM (SELECT min({column}) FROM {table}))::float8, \
                EXTRACT(EPOCH FROM (SELECT max({column}) FROM {table}))::float8"
    )
}

/// Walks the time index from the last row at or before `window_start`: each step probes the
/// last row within `max_gap` of the current one; when there is none, the next row after it
/// ends a gap. About two probes per `max_gap` of history, whatever the row count.
async fn walk_gaps(
    pool: &PgPool,
    t: &str,
    c: &str,
    earliest: DateTime<Utc>,
    window_start: DateTime<Utc>,
    max_gap: Duration,
) -> Result<(Vec<Gap>, GapCheck), SourceError> {
    let epoch = |expr: &str, filter: &str| {
        format!("SELECT EXTRACT(EPOCH FROM (SELECT {expr}({c}) FROM {t} WHERE {filter}))::float8")
    };
    let start_sql = epoch("max", &format!("{c} <= $1"));
    let within_sql = epoch("max", &format!("{c} > $1 AND {c} <= $2"));
    let next_sql = epoch("min", &format!("{c} > $1"));
    let start: Option<f64> = sqlx::query_scalar(&start_sql)
        .bind(window_start)
        .fetch_one(pool)
        .await?;
    let mut p = start.and_then(from_epoch).unwrap_or(earliest);
    let mut gaps = Vec::new();
    let mut probes = 1;
    loop {
        if probes >= MAX_GAP_PROBES {
            return Ok((gaps, GapCheck::Truncated(probes)));
        }
        probes += 1;
        let within: Option<f64> = sqlx::query_scalar(&within_sql)
            .bind(p)
            .bind(p + max_gap)
            .fetch_one(pool)
            .await?;
        if let Some(q) = within.and_then(from_epoch) {
            p = q;
            continue;
        }
        probes += 1;
        let next: Option<f64> = sqlx::query_scalar(&next_sql)
            .bind(p)
            .fetch_one(pool)
            .await?;
        match next.and_then(from_epoch) {
            Some(n) => {
                gaps.push(Gap { from: p, to: n });
                p = n;
            }
            None => return Ok((gaps, GapCheck::Done)),
        }
    }
}

/// Seconds since the epoch (microsecond precision) as a UTC time.
fn from_epoch(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    DateTime::from_timestamp_micros((seconds * 1e6).round() as i64)
}

/// A time stored as text in SQLite: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (UTC), a date, or
/// epoch seconds.
pub fn parse_time_text(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    s.parse::<f64>().ok().and_then(from_epoch)
}

/// The `symbols` column: a JSON array of strings; anything else is no symbols.
fn parse_symbols(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
