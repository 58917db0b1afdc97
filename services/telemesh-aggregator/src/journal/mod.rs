//! Owns the snapshot journal: the `telemetry_snapshots` table on PostgreSQL/TimescaleDB (the
//! aggregator in production) or SQLite (standalone), with embedded migrations.
//!
//! Invariant: inserts are idempotent on the snapshot id (`ON CONFLICT DO NOTHING`), so a
//! replayed Kafka message never adds a row; one batch is one transaction.

pub mod history;
mod postgres;
mod sqlite;

use chrono::{DateTime, Utc};
use serde::Serialize;
use telemesh_core::Snapshot;
use uuid::Uuid;

use crate::settings::{JournalSettings, TimescaleMode};

pub use postgres::PgJournal;
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
    /// Plain PostgreSQL with a BRIN index on `generated_at`.
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
}

impl From<sqlx::Error> for JournalError {
    fn from(e: sqlx::Error) -> Self {
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

    /// The newest snapshot of each (kind, source) generated after `since`.
    pub async fn latest(&self, since: DateTime<Utc>) -> Result<Vec<Snapshot>, JournalError> {
        match self {
            Journal::Postgres(j) => j.latest(since).await,
            Journal::Sqlite(j) => j.latest(since).await,
        }
    }

    /// Round trip to the database.
    pub async fn ping(&self) -> Result<(), JournalError> {
        match self {
            Journal::Postgres(j) => j.ping().await,
            Journal::Sqlite(j) => j.ping().await,
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
fn body_json(snapshot: &Snapshot) -> Result<String, JournalError> {
    serde_json::to_string(snapshot).map_err(|e| JournalError::Corrupt(e.to_string()))
}

fn parse_body(body: &str) -> Result<Snapshot, JournalError> {
    serde_json::from_str(body).map_err(|e| JournalError::Corrupt(e.to_string()))
}

/// Whether TimescaleDB should be attempted.
fn wants_timescale(settings: &JournalSettings) -> bool {
    settings.timescale == TimescaleMode::Auto
}
