//! Owns the CI history tables (issue 13): every journaled `telemetry.ci.history` record is
//! also written, in the same transaction and only when its snapshot row is new (so exactly
//! once), to `ci_test_results` (one row per test of a report part), `ci_trends` (coverage
//! and formatter entries) or `ci_pipeline_runs` (one row per run and attempt, the newest
//! record wins), on PostgreSQL and SQLite; `ci_test_results` and `ci_trends` are
//! TimescaleDB hypertables on `recorded_at` when the journal is one. [`CiRows::from_snapshot`]
//! derives the rows (pure, tolerant: a `tests`/`coverage`/`formatter`/`run` component of a
//! shape it does not know yields no rows and a reason, a component of another name nothing,
//! never an error); reads serve `GET /api/v1/ci/{tests,coverage,runs}` oldest first, paged by
//! `offset`. Retention follows the journal's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Row, Sqlite};
use telemesh_core::{DetailValue, Snapshot};
use uuid::Uuid;

use super::{parse_ts, ts, Journal, JournalError, JournalRecord};

/// The kind of the CI history records.
pub const HISTORY_KIND: &str = "telemetry.ci.history";
/// Default and maximum rows of one read.
pub const DEFAULT_LIMIT: u32 = 1_000;
pub const MAX_LIMIT: u32 = 10_000;
/// The largest `offset` of one read.
pub const MAX_OFFSET: u32 = 1_000_000;
/// Outcome texts are clipped to this many characters.
const MAX_OUTCOME_CHARS: usize = 32;

/// One row of `ci_test_results`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TestResultRow {
    pub upload_id: String,
    /// The test's position in its upload (0-based, over every part).
    pub position: i64,
    pub test_id: String,
    /// `passed`, `failed`, `error`, `skipped`, `x_failed` (as the CI domain sent it).
    pub outcome: String,
    pub duration_seconds: Option<f64>,
    /// The failure text, clipped by the CI domain (4000 characters).
    pub failure: Option<String>,
    pub retried_failures: Option<i64>,
    pub commit: String,
    pub branch: Option<String>,
    pub run_id: Option<String>,
    pub run_url: Option<String>,
    pub suite: Option<String>,
    /// `junit` or `flake_runs`.
    pub format: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// One row of `ci_trends`: a coverage entry or a formatter-mode entry.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TrendRow {
    pub entry_id: String,
    /// `coverage` or `formatter`.
    pub entry_kind: String,
    /// The coverage label (commit or build), or the formatter mode.
    pub label: String,
    /// Overall coverage percent (coverage entries).
    pub percent: Option<f64>,
    /// The record's details: `domains` of a coverage entry, the counts of a formatter entry.
    #[schema(value_type = Object)]
    pub detail: Option<Value>,
    pub recorded_at: DateTime<Utc>,
}

/// One row of `ci_pipeline_runs`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunRow {
    pub run_id: i64,
    pub run_attempt: i64,
    pub workflow: Option<String>,
    pub conclusion: Option<String>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub run_url: Option<String>,
    /// The run as the CI domain published it.
    #[schema(value_type = Object)]
    pub run: Value,
    pub recorded_at: DateTime<Utc>,
}

/// The rows one history record yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CiRows {
    pub tests: Vec<TestResultRow>,
    pub trends: Vec<TrendRow>,
    pub runs: Vec<RunRow>,
    /// Why a `tests`, `coverage`, `formatter` or `run` component yielded no rows (its shape).
    pub refused: Vec<String>,
}

#[derive(Deserialize)]
struct PartMeta {
    upload_id: String,
    #[serde(default)]
    first_position: u32,
    commit: String,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_url: Option<String>,
    #[serde(default)]
    suite: Option<String>,
    #[serde(default)]
    format: Option<String>,
    cases: Vec<Value>,
}

#[derive(Deserialize)]
struct Case {
    test_id: String,
    outcome: String,
    #[serde(default)]
    duration_seconds: Option<f64>,
    #[serde(default)]
    failure: Option<String>,
    #[serde(default)]
    retried_failures: Option<i64>,
}

#[derive(Deserialize)]
struct CoverageMeta {
    entry_id: String,
    label: String,
    percent: f64,
}

#[derive(Deserialize)]
struct FormatterMeta {
    entry_id: String,
    mode: String,
}

#[derive(Deserialize)]
struct RunMeta {
    run_id: i64,
    #[serde(default)]
    run_attempt: Option<i64>,
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    conclusion: Option<Value>,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl CiRows {
    /// The rows of a `telemetry.ci.history` record (none for any other kind).
    pub fn from_snapshot(s: &Snapshot) -> Self {
        let mut rows = Self::default();
        if s.kind != HISTORY_KIND {
            return rows;
        }
        let at = s.generated_at;
        for c in &s.components {
            let details = Value::from(&DetailValue::Map(c.details.clone()));
            let refused = match c.name.as_str() {
                "tests" => rows.tests_of(details, at),
                "coverage" => rows.coverage_of(details, at),
                "formatter" => rows.formatter_of(details, at),
                "run" => rows.run_of(details, at),
                // another component (a newer producer's, the demo's scenario) carries no rows
                _ => Ok(()),
            };
            if let Err(reason) = refused {
                rows.refused
                    .push(format!("{}: {reason}", clip(&c.name, 64)));
            }
        }
        rows
    }

    fn tests_of(&mut self, details: Value, at: DateTime<Utc>) -> Result<(), String> {
        let meta: PartMeta = serde_json::from_value(details).map_err(|e| e.to_string())?;
        let mut skipped = 0usize;
        for (i, case) in meta.cases.into_iter().enumerate() {
            let Ok(case) = serde_json::from_value::<Case>(case) else {
                skipped += 1;
                continue;
            };
            self.tests.push(TestResultRow {
                upload_id: meta.upload_id.clone(),
                position: i64::from(meta.first_position) + i as i64,
                test_id: case.test_id,
                outcome: clip(&case.outcome, MAX_OUTCOME_CHARS),
                duration_seconds: case.duration_seconds.filter(|d| d.is_finite()),
                failure: case.failure,
                retried_failures: case.retried_failures,
                commit: meta.commit.clone(),
                branch: meta.branch.clone(),
                run_id: meta.run_id.clone(),
                run_url: meta.run_url.clone(),
                suite: meta.suite.clone(),
                format: meta.format.clone(),
                recorded_at: at,
            });
        }
        if skipped > 0 {
            return Err(format!("{skipped} case(s) without test_id and outcome"));
        }
        Ok(())
    }

    fn coverage_of(&mut self, details: Value, at: DateTime<Utc>) -> Result<(), String> {
        let meta: CoverageMeta =
            serde_json::from_value(details.clone()).map_err(|e| e.to_string())?;
        self.trends.push(TrendRow {
            entry_id: meta.entry_id,
            entry_kind: "coverage".into(),
            label: meta.label,
            percent: Some(meta.percent).filter(|p| p.is_finite()),
            detail: Some(details),
            recorded_at: at,
        });
        Ok(())
    }

    fn formatter_of(&mut self, details: Value, at: DateTime<Utc>) -> Result<(), String> {
        let meta: FormatterMeta =
            serde_json::from_value(details.clone()).map_err(|e| e.to_string())?;
        self.trends.push(TrendRow {
            entry_id: meta.entry_id,
            entry_kind: "formatter".into(),
            label: meta.mode,
            percent: None,
            detail: Some(details),
            recorded_at: at,
        });
        Ok(())
    }

    fn run_of(&mut self, details: Value, at: DateTime<Utc>) -> Result<(), String> {
        let meta: RunMeta = serde_json::from_value(details.clone()).map_err(|e| e.to_string())?;
        let conclusion = meta.conclusion.map(|c| match c {
            Value::String(s) => s,
            Value::Object(o) => o
                .get("other")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_owned(),
            other => other.to_string(),
        });
        self.runs.push(RunRow {
            run_id: meta.run_id,
            run_attempt: meta.run_attempt.unwrap_or(1),
            workflow: meta.workflow,
            conclusion: conclusion.map(|c| clip(&c, MAX_OUTCOME_CHARS)),
            branch: meta.branch,
            commit: meta.commit,
            run_url: meta.url,
            run: details,
            recorded_at: at,
        });
        Ok(())
    }
}

/// The rows of the history records among `records` whose snapshot row is new.
fn new_rows(records: &[JournalRecord], inserted: &[Uuid]) -> CiRows {
    let mut all = CiRows::default();
    for r in records
        .iter()
        .filter(|r| r.snapshot.kind == HISTORY_KIND && inserted.contains(&r.snapshot.id))
    {
        let rows = rows_of(&r.snapshot);
        all.tests.extend(rows.tests);
        all.trends.extend(rows.trends);
        all.runs.extend(rows.runs);
    }
    all
}

fn rows_of(s: &Snapshot) -> CiRows {
    let rows = CiRows::from_snapshot(s);
    for reason in &rows.refused {
        tracing::warn!(id = %s.id, source = %s.source.key(), %reason, "CI history record: part of it yields no rows (kept in the snapshot journal only)");
    }
    rows
}

/// Writes the CI rows of a batch inside its PostgreSQL transaction.
pub(super) async fn insert_pg(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    records: &[JournalRecord],
    inserted: &[Uuid],
) -> Result<(), JournalError> {
    let rows = new_rows(records, inserted);
    if !rows.tests.is_empty() {
        let t = &rows.tests;
        sqlx::query(
            "INSERT INTO ci_test_results (upload_id, position, test_id, outcome, \
             duration_seconds, failure, retried_failures, commit_sha, branch, run_id, run_url, \
             suite, format, recorded_at) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], \
             $5::float8[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], \
             $11::text[], $12::text[], $13::text[], $14::timestamptz[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(t.iter().map(|r| r.upload_id.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.test_id.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.outcome.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.duration_seconds).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.failure.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.retried_failures).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.commit.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.branch.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.run_url.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.suite.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.format.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.trends {
        sqlx::query(
            "INSERT INTO ci_trends (entry_id, entry_kind, label, percent, detail, recorded_at) \
             VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&r.entry_id)
        .bind(&r.entry_kind)
        .bind(&r.label)
        .bind(r.percent)
        .bind(r.detail.as_ref().map(Value::to_string))
        .bind(r.recorded_at)
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.runs {
        sqlx::query(
            "INSERT INTO ci_pipeline_runs (run_id, run_attempt, workflow, conclusion, branch, \
             commit_sha, run_url, run, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8::jsonb, $9) ON CONFLICT (run_id, run_attempt) DO UPDATE SET \
             workflow = excluded.workflow, conclusion = excluded.conclusion, \
             branch = excluded.branch, commit_sha = excluded.commit_sha, \
             run_url = excluded.run_url, run = excluded.run, recorded_at = excluded.recorded_at \
             WHERE excluded.recorded_at >= ci_pipeline_runs.recorded_at",
        )
        .bind(r.run_id)
        .bind(r.run_attempt)
        .bind(&r.workflow)
        .bind(&r.conclusion)
        .bind(&r.branch)
        .bind(&r.commit)
        .bind(&r.run_url)
        .bind(r.run.to_string())
        .bind(r.recorded_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Writes the CI rows of one record inside the SQLite batch transaction, when its snapshot
/// row was new.
pub(super) async fn insert_sqlite(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    record: &JournalRecord,
    snapshot_was_new: bool,
) -> Result<(), JournalError> {
    if !snapshot_was_new || record.snapshot.kind != HISTORY_KIND {
        return Ok(());
    }
    let rows = rows_of(&record.snapshot);
    for r in &rows.tests {
        sqlx::query(
            "INSERT INTO ci_test_results (upload_id, position, test_id, outcome, \
             duration_seconds, failure, retried_failures, commit_sha, branch, run_id, run_url, \
             suite, format, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&r.upload_id)
        .bind(r.position)
        .bind(&r.test_id)
        .bind(&r.outcome)
        .bind(r.duration_seconds)
        .bind(&r.failure)
        .bind(r.retried_failures)
        .bind(&r.commit)
        .bind(&r.branch)
        .bind(&r.run_id)
        .bind(&r.run_url)
        .bind(&r.suite)
        .bind(&r.format)
        .bind(ts(r.recorded_at))
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.trends {
        sqlx::query(
            "INSERT INTO ci_trends (entry_id, entry_kind, label, percent, detail, recorded_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&r.entry_id)
        .bind(&r.entry_kind)
        .bind(&r.label)
        .bind(r.percent)
        .bind(r.detail.as_ref().map(Value::to_string))
        .bind(ts(r.recorded_at))
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.runs {
        sqlx::query(
            "INSERT INTO ci_pipeline_runs (run_id, run_attempt, workflow, conclusion, branch, \
             commit_sha, run_url, run, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (run_id, run_attempt) DO UPDATE SET workflow = excluded.workflow, \
             conclusion = excluded.conclusion, branch = excluded.branch, \
             commit_sha = excluded.commit_sha, run_url = excluded.run_url, run = excluded.run, \
             recorded_at = excluded.recorded_at \
             WHERE excluded.recorded_at >= ci_pipeline_runs.recorded_at",
        )
        .bind(r.run_id)
        .bind(r.run_attempt)
        .bind(&r.workflow)
        .bind(&r.conclusion)
        .bind(&r.branch)
        .bind(&r.commit)
        .bind(&r.run_url)
        .bind(r.run.to_string())
        .bind(ts(r.recorded_at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Makes `ci_test_results` and `ci_trends` hypertables on `recorded_at` (TimescaleDB only).
pub(super) async fn make_hypertables(pool: &PgPool, hours: i32) -> Result<(), sqlx::Error> {
    for table in ["ci_test_results", "ci_trends"] {
        sqlx::query(
            "SELECT create_hypertable($1::regclass, 'recorded_at', \
               chunk_time_interval => make_interval(hours => $2), if_not_exists => TRUE, \
               migrate_data => TRUE, create_default_indexes => FALSE)",
        )
        .bind(table)
        .bind(hours)
        .execute(pool)
        .await?;
    }
    Ok(())
}

const TABLES: [&str; 3] = ["ci_test_results", "ci_trends", "ci_pipeline_runs"];

/// Removes CI rows recorded before `cutoff` (with the journal's retention).
pub(super) async fn retain_pg(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<(), JournalError> {
    for table in TABLES {
        sqlx::query(&format!("DELETE FROM {table} WHERE recorded_at < $1"))
            .bind(cutoff)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Removes CI rows recorded before `cutoff` (SQLite).
pub(super) async fn retain_sqlite(
    pool: &sqlx::SqlitePool,
    cutoff: DateTime<Utc>,
) -> Result<(), JournalError> {
    for table in TABLES {
        sqlx::query(&format!("DELETE FROM {table} WHERE recorded_at < ?"))
            .bind(ts(cutoff))
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// A read of the CI history; every filter is optional. Rows come oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct CiQuery {
    pub since: Option<DateTime<Utc>>,
    /// Test rows of this commit only.
    pub commit: Option<String>,
    /// Test rows of this test id only.
    pub test: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

impl Default for CiQuery {
    fn default() -> Self {
        Self {
            since: None,
            commit: None,
            test: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// Which table a read is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiTable {
    Tests,
    Trends,
    Runs,
}

/// The rows of one read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CiPage {
    Tests(Vec<TestResultRow>),
    Trends(Vec<TrendRow>),
    Runs(Vec<RunRow>),
}

impl CiPage {
    pub fn len(&self) -> usize {
        match self {
            CiPage::Tests(r) => r.len(),
            CiPage::Trends(r) => r.len(),
            CiPage::Runs(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn json_of(text: Option<String>) -> Result<Option<Value>, JournalError> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| JournalError::Corrupt(format!("ci json: {e}")))
}

const TEST_COLUMNS: &str = "upload_id, position, test_id, outcome, duration_seconds, failure, \
    retried_failures, commit_sha, branch, run_id, run_url, suite, format, recorded_at";

fn test_row<R>(row: &R, recorded_at: DateTime<Utc>) -> Result<TestResultRow, JournalError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TestResultRow {
        upload_id: row.try_get("upload_id")?,
        position: row.try_get("position")?,
        test_id: row.try_get("test_id")?,
        outcome: row.try_get("outcome")?,
        duration_seconds: row.try_get("duration_seconds")?,
        failure: row.try_get("failure")?,
        retried_failures: row.try_get("retried_failures")?,
        commit: row.try_get("commit_sha")?,
        branch: row.try_get("branch")?,
        run_id: row.try_get("run_id")?,
        run_url: row.try_get("run_url")?,
        suite: row.try_get("suite")?,
        format: row.try_get("format")?,
        recorded_at,
    })
}

fn trend_row<R>(row: &R, recorded_at: DateTime<Utc>) -> Result<TrendRow, JournalError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TrendRow {
        entry_id: row.try_get("entry_id")?,
        entry_kind: row.try_get("entry_kind")?,
        label: row.try_get("label")?,
        percent: row.try_get("percent")?,
        detail: json_of(row.try_get("detail")?)?,
        recorded_at,
    })
}

fn run_row<R>(row: &R, recorded_at: DateTime<Utc>) -> Result<RunRow, JournalError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RunRow {
        run_id: row.try_get("run_id")?,
        run_attempt: row.try_get("run_attempt")?,
        workflow: row.try_get("workflow")?,
        conclusion: row.try_get("conclusion")?,
        branch: row.try_get("branch")?,
        commit: row.try_get("commit_sha")?,
        run_url: row.try_get("run_url")?,
        run: json_of(row.try_get("run")?)?.unwrap_or(Value::Null),
        recorded_at,
    })
}

impl Journal {
    /// One page of CI history rows, oldest first (`q.limit` rows at most, from `q.offset`).
    pub async fn ci_read(&self, table: CiTable, q: &CiQuery) -> Result<CiPage, JournalError> {
        let limit = i64::from(q.limit.clamp(1, MAX_LIMIT));
        let offset = i64::from(q.offset.min(MAX_OFFSET));
        match self {
            Journal::Postgres(j) => {
                let sql = match table {
                    CiTable::Tests => format!(
                        "SELECT {TEST_COLUMNS} FROM ci_test_results \
                         WHERE ($1::timestamptz IS NULL OR recorded_at >= $1) \
                         AND ($2::text IS NULL OR commit_sha = $2) \
                         AND ($3::text IS NULL OR test_id = $3) \
                         ORDER BY recorded_at, upload_id, position LIMIT $4 OFFSET $5"
                    ),
                    CiTable::Trends => "SELECT entry_id, entry_kind, label, percent, \
                         detail::text AS detail, recorded_at FROM ci_trends \
                         WHERE ($1::timestamptz IS NULL OR recorded_at >= $1) \
                         AND ($2::text IS NULL OR $2 = $2) AND ($3::text IS NULL OR $3 = $3) \
                         ORDER BY recorded_at, entry_id LIMIT $4 OFFSET $5"
                        .to_owned(),
                    CiTable::Runs => "SELECT run_id, run_attempt, workflow, conclusion, branch, \
                         commit_sha, run_url, run::text AS run, recorded_at FROM ci_pipeline_runs \
                         WHERE ($1::timestamptz IS NULL OR recorded_at >= $1) \
                         AND ($2::text IS NULL OR commit_sha = $2) \
                         AND ($3::text IS NULL OR $3 = $3) \
                         ORDER BY recorded_at, run_id, run_attempt LIMIT $4 OFFSET $5"
                        .to_owned(),
                };
                let rows = sqlx::query(&sql)
                    .bind(q.since)
                    .bind(&q.commit)
                    .bind(&q.test)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(j.pool())
                    .await?;
                let at = |r: &sqlx::postgres::PgRow| r.try_get::<DateTime<Utc>, _>("recorded_at");
                Ok(match table {
                    CiTable::Tests => CiPage::Tests(
                        rows.iter()
                            .map(|r| test_row(r, at(r)?))
                            .collect::<Result<_, _>>()?,
                    ),
                    CiTable::Trends => CiPage::Trends(
                        rows.iter()
                            .map(|r| trend_row(r, at(r)?))
                            .collect::<Result<_, _>>()?,
                    ),
                    CiTable::Runs => CiPage::Runs(
                        rows.iter()
                            .map(|r| run_row(r, at(r)?))
                            .collect::<Result<_, _>>()?,
                    ),
                })
            }
            Journal::Sqlite(j) => {
                let sql = match table {
                    CiTable::Tests => format!(
                        "SELECT {TEST_COLUMNS} FROM ci_test_results \
                         WHERE (?1 IS NULL OR recorded_at >= ?1) \
                         AND (?2 IS NULL OR commit_sha = ?2) AND (?3 IS NULL OR test_id = ?3) \
                         ORDER BY recorded_at, upload_id, position LIMIT ?4 OFFSET ?5"
                    ),
                    CiTable::Trends => "SELECT entry_id, entry_kind, label, percent, detail, \
                         recorded_at FROM ci_trends WHERE (?1 IS NULL OR recorded_at >= ?1) \
                         AND (?2 IS NULL OR ?2 = ?2) AND (?3 IS NULL OR ?3 = ?3) \
                         ORDER BY recorded_at, entry_id LIMIT ?4 OFFSET ?5"
                        .to_owned(),
                    CiTable::Runs => "SELECT run_id, run_attempt, workflow, conclusion, branch, \
                         commit_sha, run_url, run, recorded_at FROM ci_pipeline_runs \
                         WHERE (?1 IS NULL OR recorded_at >= ?1) \
                         AND (?2 IS NULL OR commit_sha = ?2) AND (?3 IS NULL OR ?3 = ?3) \
                         ORDER BY recorded_at, run_id, run_attempt LIMIT ?4 OFFSET ?5"
                        .to_owned(),
                };
                let rows = sqlx::query(&sql)
                    .bind(q.since.map(ts))
                    .bind(&q.commit)
                    .bind(&q.test)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(j.pool())
                    .await?;
                let at = |r: &sqlx::sqlite::SqliteRow| -> Result<DateTime<Utc>, JournalError> {
                    parse_ts(&r.try_get::<String, _>("recorded_at")?)
                };
                Ok(match table {
                    CiTable::Tests => CiPage::Tests(
                        rows.iter()
                            .map(|r| test_row(r, at(r)?))
                            .collect::<Result<_, _>>()?,
                    ),
                    CiTable::Trends => CiPage::Trends(
                        rows.iter()
                            .map(|r| trend_row(r, at(r)?))
                            .collect::<Result<_, _>>()?,
                    ),
                    CiTable::Runs => CiPage::Runs(
                        rows.iter()
                            .map(|r| run_row(r, at(r)?))
                            .collect::<Result<_, _>>()?,
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemesh_core::{Component, Grade, Source};

    fn record(component: Component) -> Snapshot {
        let mut s = Snapshot::new(
            HISTORY_KIND,
            Source::new("ci", "a"),
            DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
        );
        s.push(component);
        s
    }

    fn map(v: Value) -> DetailValue {
        serde_json::from_value(v).expect("detail")
    }

    #[test]
    fn a_tests_part_yields_one_row_per_case_at_its_position() {
        let mut c = Component::new("tests", Grade::Ok, "2 tests");
        let DetailValue::Map(m) = map(serde_json::json!({
            "upload_id": "u1", "part": 2, "parts": 2, "first_position": 1000,
            "commit": "abc", "branch": "main", "run_id": null, "run_url": "https://ci/1",
            "suite": "pytest", "format": "junit",
            "cases": [
                {"test_id": "t::a", "outcome": "passed", "duration_seconds": 0.5,
                 "failure": null, "retried_failures": 0},
                {"test_id": "t::b", "outcome": "failed", "failure": "boom"}
            ]
        })) else {
            panic!("map")
        };
        c.details = m;
        let rows = CiRows::from_snapshot(&record(c));
        assert!(rows.refused.is_empty(), "{:?}", rows.refused);
        assert_eq!(rows.tests.len(), 2);
        assert_eq!(rows.tests[0].position, 1000);
        assert_eq!(rows.tests[1].position, 1001);
        assert_eq!(rows.tests[1].outcome, "failed");
        assert_eq!(rows.tests[1].failure.as_deref(), Some("boom"));
        assert_eq!(rows.tests[0].commit, "abc");
        assert_eq!(rows.tests[0].run_id, None);
        assert_eq!(
            rows.tests[0].recorded_at,
            DateTime::from_timestamp(1_700_000_000, 0).expect("time")
        );
    }

    #[test]
    fn hostile_shapes_yield_no_rows_and_a_reason_never_an_error() {
        let cases = [
            Component::new("tests", Grade::Ok, "no meta"),
            Component::new("tests", Grade::Ok, "bad cases")
                .detail("upload_id", "u")
                .detail("commit", "c")
                .detail("cases", "not a list"),
            Component::new("coverage", Grade::Ok, "text percent")
                .detail("entry_id", "e")
                .detail("label", "l")
                .detail("percent", "high"),
            Component::new("run", Grade::Ok, "no id").detail("run_id", "x"),
        ];
        for c in cases {
            let name = c.summary.clone();
            let rows = CiRows::from_snapshot(&record(c));
            assert!(
                rows.tests.is_empty() && rows.trends.is_empty() && rows.runs.is_empty(),
                "{name}"
            );
            assert_eq!(rows.refused.len(), 1, "{name}");
        }
        // a case without an outcome is skipped, the others kept
        let c = Component::new("tests", Grade::Ok, "mixed")
            .detail("upload_id", "u")
            .detail("commit", "c")
            .detail(
                "cases",
                DetailValue::List(vec![
                    map(serde_json::json!({"test_id": "a", "outcome": "passed"})),
                    map(serde_json::json!({"test_id": "b"})),
                ]),
            );
        let rows = CiRows::from_snapshot(&record(c));
        assert_eq!(rows.tests.len(), 1);
        assert_eq!(rows.refused.len(), 1);
        // a component of another name yields nothing, without a reason
        let rows = CiRows::from_snapshot(&record(Component::new("scenario", Grade::Fail, "demo")));
        assert_eq!(rows, CiRows::default());
        // another kind yields nothing
        let mut other = record(Component::new("tests", Grade::Ok, ""));
        other.kind = "telemetry.ci.flakes".into();
        assert_eq!(CiRows::from_snapshot(&other), CiRows::default());
    }

    #[test]
    fn coverage_formatter_and_run_records_yield_their_rows() {
        let cov = Component::new("coverage", Grade::Ok, "")
            .detail("entry_id", "e1")
            .detail("label", "abc")
            .detail("percent", 81.5)
            .detail("domains", DetailValue::List(vec![]));
        let fmt = Component::new("formatter", Grade::Ok, "")
            .detail("entry_id", "f1")
            .detail("mode", "global")
            .detail("total_entries", 0);
        let run = Component::new("run", Grade::Ok, "")
            .detail("run_id", 42)
            .detail("run_attempt", 2)
            .detail("workflow", "CI")
            .detail("conclusion", map(serde_json::json!({"other": "skipped"})))
            .detail("url", "https://gh/42");
        let rows = CiRows::from_snapshot(&record(cov));
        assert_eq!(rows.trends[0].percent, Some(81.5));
        assert_eq!(rows.trends[0].entry_kind, "coverage");
        let rows = CiRows::from_snapshot(&record(fmt));
        assert_eq!(rows.trends[0].label, "global");
        let rows = CiRows::from_snapshot(&record(run));
        assert_eq!(rows.runs[0].run_id, 42);
        assert_eq!(rows.runs[0].run_attempt, 2);
        assert_eq!(rows.runs[0].conclusion.as_deref(), Some("skipped"));
        assert_eq!(rows.runs[0].run["workflow"], "CI");
    }
}
