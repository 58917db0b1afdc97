//! Owns the snapshot journal: the `telemetry_snapshots` table on PostgreSQL/TimescaleDB (the
//! aggregator in production) or SQLite (standalone), with embedded migrations.
//!
//! Invariant: inserts are idempotent on the snapshot id (`ON CONFLICT DO NOTHING`), so a
//! replayed Kafka message never adds a row; one batch is one transaction, which also keeps the
//! latest-per-source table (`telemetry_latest`, the summary's seed) up to date.

mod activity;
mod alerts;
pub mod ci;
mod copy;
pub mod execution;
pub mod history;
mod postgres;
mod sqlite;

use chrono::{DateTime, Utc};
use serde::Serialize;
use telemesh_core::Snapshot;
use uuid::Uuid;

use crate::settings::JournalSettings;

pub use activity::ActivityStore;
pub use alerts::AlertStore;
pub use postgres::{decide_timescale, PgJournal, TimescaleDecision, TimescaleProbe};
pub use sqlite::SqliteJournal;

/// Where a journaled snapshot came from on Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KafkaCoords {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl KafkaCoords {
    /// The coordinates of a row, when all three columns are set.
    fn from_columns(
        topic: Option<String>,
        partition: Option<i32>,
        offset: Option<i64>,
    ) -> Option<Self> {
        Some(Self {
            topic: topic?,
            partition: partition?,
            offset: offset?,
        })
    }
}

/// One row to journal.
#[derive(Debug, Clone)]
pub struct JournalRecord {
    pub snapshot: Snapshot,
    pub received_at: DateTime<Utc>,
    pub kafka: Option<KafkaCoords>,
}

/// One journaled row, as read back.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSnapshot {
    pub received_at: DateTime<Utc>,
    pub kafka: Option<KafkaCoords>,
    pub snapshot: Snapshot,
}

/// A history query; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotQuery {
    pub kind: Option<String>,
    pub service: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// Which time-series layout the PostgreSQL journal uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum Layout {
    /// A TimescaleDB hypertable on `generated_at`.
    Timescale { version: String },
    /// Plain PostgreSQL with B-tree indexes on `generated_at`.
    PlainPostgres,
    /// The standalone SQLite file.
    Sqlite,
}

/// Why the journal failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("journal url is empty: set [journal] url (TELEMESH__JOURNAL__URL) to postgres://… or sqlite://…")]
    NotConfigured,
    #[error("unsupported journal url scheme in {0:?}: use postgres:// or sqlite://")]
    UnsupportedUrl(String),
    #[error("journal unavailable: {0}")]
    Unavailable(String),
    #[error("journal migration failed: {0}")]
    Migration(String),
    #[error("journal row is corrupt: {0}")]
    Corrupt(String),
    /// The database refused the data itself (SQLSTATE class 22 data exception, 23 integrity
    /// constraint violation, 54 program limit exceeded; SQLite constraint/too-big/mismatch).
    /// Retrying the same rows cannot succeed.
    #[error("journal refused the record (sqlstate {code}): {message}")]
    Refused { code: String, message: String },
    /// A journal call did not finish within its client-side bound.
    #[error("journal did not answer within {0:?}: the database may be wedged or overloaded; check its locks and load")]
    Timeout(std::time::Duration),
    /// A setting or the server's setup makes the journal unusable; retrying will not help.
    #[error("journal cannot start: {0}")]
    Setup(String),
}

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalErrorKind {
    /// Connection, timeout, resource or configuration trouble: pause and retry the same rows.
    Transient,
    /// The rows themselves are refused: find the offending record(s) and dead-letter them.
    Permanent,
}

impl JournalError {
    /// How the ingress should react to this error.
    pub fn kind(&self) -> JournalErrorKind {
        match self {
            JournalError::Refused { .. } | JournalError::Corrupt(_) => JournalErrorKind::Permanent,
            _ => JournalErrorKind::Transient,
        }
    }
}

/// SQLSTATE classes that refuse the data of a record, not the database being unavailable.
const PERMANENT_SQLSTATE_CLASSES: [&str; 3] = ["22", "23", "54"];

/// SQLite primary result codes that refuse the data: SQLITE_TOOBIG, SQLITE_CONSTRAINT,
/// SQLITE_MISMATCH.
const PERMANENT_SQLITE_CODES: [i64; 3] = [18, 19, 20];

/// Whether a database error code refuses the record (see [`JournalErrorKind`]).
pub fn is_permanent_code(code: &str, postgres: bool) -> bool {
    if postgres {
        code.len() == 5 && PERMANENT_SQLSTATE_CLASSES.contains(&&code[..2])
    } else {
        code.parse::<i64>()
            .is_ok_and(|c| PERMANENT_SQLITE_CODES.contains(&(c & 0xff)))
    }
}

/// How long journal rows are kept and how often the retention job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub keep_days: u64,
    pub every: std::time::Duration,
}

impl RetentionPolicy {
    /// `None` when `journal.retention_days = 0` (keep everything).
    pub fn from_settings(settings: &JournalSettings) -> Option<Self> {
        (settings.retention_days > 0).then(|| Self {
            keep_days: settings.retention_days,
            every: std::time::Duration::from_secs(settings.retention_interval_minutes.max(1) * 60),
        })
    }

    /// Rows generated before this are removed by a run at `now`.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::days(i64::try_from(self.keep_days).unwrap_or(i64::MAX / 86_400_000))
    }
}

/// What one retention run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Rows removed by `DELETE` (plain PostgreSQL, SQLite).
    pub rows_deleted: u64,
    /// Chunks removed by `drop_chunks` (TimescaleDB).
    pub chunks_dropped: u64,
}

impl From<sqlx::Error> for JournalError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            let postgres = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some();
            if let Some(code) = db.code() {
                if is_permanent_code(&code, postgres) {
                    return JournalError::Refused {
                        code: code.into_owned(),
                        message: db.message().to_owned(),
                    };
                }
            }
        }
        JournalError::Unavailable(e.to_string())
    }
}

/// The journal, on one of its backends.
#[derive(Debug, Clone)]
pub enum Journal {
    Postgres(PgJournal),
    Sqlite(SqliteJournal),
}

impl Journal {
    /// Connects and migrates the journal named by `settings.url`.
    pub async fn connect(settings: &JournalSettings) -> Result<Self, JournalError> {
        telemesh_core::config::Section::validate(settings)
            .map_err(|e| JournalError::Setup(e.to_string()))?;
        let url = settings.url.expose().trim();
        if url.is_empty() {
            return Err(JournalError::NotConfigured);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Journal::Postgres(PgJournal::connect(settings).await?))
        } else if url.starts_with("sqlite:") {
            Ok(Journal::Sqlite(SqliteJournal::connect(settings).await?))
        } else {
            Err(JournalError::UnsupportedUrl(settings.url.redacted()))
        }
    }

    /// Inserts a batch in one transaction; returns the ids of the rows that were new
    /// (a snapshot already journaled is skipped).
    pub async fn insert_batch(&self, records: &[JournalRecord]) -> Result<Vec<Uuid>, JournalError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Journal::Postgres(j) => j.insert_batch(records).await,
            Journal::Sqlite(j) => j.insert_batch(records).await,
        }
    }

    /// History, newest first.
    pub async fn query(&self, query: &SnapshotQuery) -> Result<Vec<StoredSnapshot>, JournalError> {
        match self {
            Journal::Postgres(j) => j.query(query).await,
            Journal::Sqlite(j) => j.query(query).await,
        }
    }

    /// The newest snapshot of each (kind, source) generated after `since`, from the
    /// latest-per-source table (as many rows as sources, whatever the journal's size).
    pub async fn latest(&self, since: DateTime<Utc>) -> Result<Vec<Snapshot>, JournalError> {
        match self {
            Journal::Postgres(j) => j.latest(since).await,
            Journal::Sqlite(j) => j.latest(since).await,
        }
    }

    /// Closes the connection pool, waiting for in-flight queries: call before the runtime
    /// that drives them goes away (dropping a pool with queries in flight outside a Tokio
    /// context panics inside sqlx).
    pub async fn close(&self) {
        match self {
            Journal::Postgres(j) => j.close().await,
            Journal::Sqlite(j) => j.pool().close().await,
        }
    }

    /// A handle for the ingress writer on its own thread: on PostgreSQL its writes use one
    /// connection of their own, opened lazily by the runtime that first writes; otherwise the
    /// same handle. Call from that runtime; close with [`Journal::close_own_writer`].
    pub fn with_own_writer(&self) -> Journal {
        match self {
            Journal::Postgres(j) => Journal::Postgres(j.with_own_writer()),
            Journal::Sqlite(_) => self.clone(),
        }
    }

    /// Closes what [`Journal::with_own_writer`] opened (nothing for a shared handle).
    pub async fn close_own_writer(&self) {
        if let Journal::Postgres(j) = self {
            j.close_own_writer().await;
        }
    }

    /// Removes the rows generated before `cutoff` (see `journal.retention_days`).
    pub async fn retain(&self, cutoff: DateTime<Utc>) -> Result<RetentionOutcome, JournalError> {
        match self {
            Journal::Postgres(j) => j.retain(cutoff).await,
            Journal::Sqlite(j) => j.retain(cutoff).await,
        }
    }

    /// Round trip to the database.
    pub async fn ping(&self) -> Result<(), JournalError> {
        match self {
            Journal::Postgres(j) => j.ping().await,
            Journal::Sqlite(j) => j.ping().await,
        }
    }

    /// The retention configured at connect time (`None`: keep everything).
    pub fn retention(&self) -> Option<RetentionPolicy> {
        match self {
            Journal::Postgres(j) => j.retention,
            Journal::Sqlite(j) => j.retention,
        }
    }

    pub fn layout(&self) -> Layout {
        match self {
            Journal::Postgres(j) => j.layout().clone(),
            Journal::Sqlite(_) => Layout::Sqlite,
        }
    }
}

/// The JSON body stored for a snapshot (the JSON encoding of the envelope).
/// Indices (ascending) of the newest record of each source (kind, service, instance) in
/// `records`; of two with the same `generated_at` the later one wins. Pure.
fn newest_per_source(records: &[JournalRecord]) -> Vec<usize> {
    let mut newest: std::collections::HashMap<(&str, &str, &str), usize> =
        std::collections::HashMap::with_capacity(records.len().min(1024));
    for (i, r) in records.iter().enumerate() {
        let s = &r.snapshot;
        let key = (
            s.kind.as_str(),
            s.source.service.as_str(),
            s.source.instance.as_str(),
        );
        newest
            .entry(key)
            .and_modify(|at| {
                if records[*at].snapshot.generated_at <= s.generated_at {
                    *at = i;
                }
            })
            .or_insert(i);
    }
    let mut at: Vec<usize> = newest.into_values().collect();
    at.sort_unstable();
    at
}

/// Fixed-width UTC text, how SQLite tables keep times (so text order is time order).
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A time kept by [`ts`], read back.
fn parse_ts(s: &str) -> Result<DateTime<Utc>, JournalError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| JournalError::Corrupt(format!("timestamp {s:?}: {e}")))
}

fn body_json(snapshot: &Snapshot) -> Result<String, JournalError> {
    serde_json::to_string(snapshot).map_err(|e| JournalError::Corrupt(e.to_string()))
}

fn parse_body(body: &str) -> Result<Snapshot, JournalError> {
    serde_json::from_str(body).map_err(|e| JournalError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod error_kind_tests {
    use super::*;

    #[test]
    fn newest_per_source_keeps_one_record_per_source_newest_and_latest_on_ties() {
        use chrono::TimeZone;
        let at = |secs: i64| Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap();
        let record = |kind: &str, service: &str, instance: &str, secs| JournalRecord {
            snapshot: Snapshot::new(
                kind,
                telemesh_core::Source::new(service, instance),
                at(secs),
            ),
            received_at: at(secs),
            kafka: None,
        };
        let records = [
            record("telemetry.a.b", "s", "i1", 5), // 0: older than 2
            record("telemetry.a.b", "s", "i2", 1), // 1: only one of its source
            record("telemetry.a.b", "s", "i1", 9), // 2: newest of s/i1
            record("telemetry.a.b", "s", "i1", 3), // 3: out of order, older
            record("telemetry.c.d", "s", "i1", 9), // 4: another kind
            record("telemetry.c.d", "s", "i1", 9), // 5: same time as 4: the later wins
        ];
        assert_eq!(newest_per_source(&records), vec![1, 2, 5]);
        assert!(newest_per_source(&[]).is_empty());
    }

    #[test]
    fn sqlstate_classes_decide_permanent_or_transient() {
        // (code, postgres?, permanent?)
        let table = [
            ("22021", true, true),  // character_not_in_repertoire (NUL)
            ("22P05", true, true),  // untranslatable_character (jsonb \u0000)
            ("22008", true, true),  // datetime_field_overflow
            ("23514", true, true),  // check_violation
            ("23505", true, true),  // unique_violation
            ("54000", true, true),  // program_limit_exceeded
            ("08006", true, false), // connection_failure
            ("57014", true, false), // query_canceled (statement_timeout)
            ("53300", true, false), // too_many_connections
            ("40P01", true, false), // deadlock_detected
            ("55P03", true, false), // lock_not_available
            ("42P01", true, false), // undefined_table: a deployment problem, not the record
            ("2", true, false),
            ("", true, false),
            ("2067", false, true), // SQLITE_CONSTRAINT_UNIQUE
            ("275", false, true),  // SQLITE_CONSTRAINT_CHECK
            ("18", false, true),   // SQLITE_TOOBIG
            ("5", false, false),   // SQLITE_BUSY
            ("517", false, false), // SQLITE_BUSY_SNAPSHOT
            ("x", false, false),
        ];
        for (code, postgres, permanent) in table {
            assert_eq!(is_permanent_code(code, postgres), permanent, "{code}");
        }
    }

    #[test]
    fn kinds_of_errors() {
        let refused = JournalError::Refused {
            code: "23514".into(),
            message: "check".into(),
        };
        assert_eq!(refused.kind(), JournalErrorKind::Permanent);
        assert_eq!(
            JournalError::Unavailable("down".into()).kind(),
            JournalErrorKind::Transient
        );
        assert_eq!(
            JournalError::Timeout(std::time::Duration::from_secs(1)).kind(),
            JournalErrorKind::Transient
        );
    }
}
