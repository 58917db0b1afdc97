//! Owns the execution journal (DOMAINS.md §5.4): every journaled
//! `telemetry.operational.execution` snapshot is also written, in the same transaction and
//! only when its snapshot row is new (so exactly once), to `execution_snapshots` (a
//! TimescaleDB hypertable on `recorded_at` when the journal is one) on PostgreSQL and SQLite;
//! [`ExecutionRow::from_snapshot`] derives the row (pure, tolerant of any producer's shape);
//! recent / latest / summarise reads serve `GET /api/v1/execution/journal` and the summary's
//! `execution_journal` block.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Postgres, Row, Sqlite};
use telemesh_core::{topics, DetailValue, Snapshot};
use uuid::Uuid;

use super::{parse_ts, ts, Journal, JournalError, JournalRecord};

/// Default and maximum rows of one read.
pub const DEFAULT_LIMIT: u32 = 5;
pub const MAX_LIMIT: u32 = 500;

/// One row of `execution_snapshots`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExecutionRow {
    pub snapshot_id: Uuid,
    pub service: String,
    pub instance: String,
    pub strategy_id: Option<String>,
    /// The snapshot's grade (`ok` / `warn` / `fail`, the mesh's scale).
    pub status: String,
    pub fill_rate: Option<f64>,
    pub failure_rate: Option<f64>,
    pub orders_submitted: Option<i64>,
    pub orders_executed: Option<i64>,
    pub orders_failed: Option<i64>,
    pub pending_orders: Option<i64>,
    pub avg_latency_ms: Option<f64>,
    pub max_latency_ms: Option<f64>,
    pub drop_copy_lag_seconds: Option<f64>,
    pub drop_copy_active: Option<bool>,
    pub connection_healthy: Option<bool>,
    pub sessions_active: Option<Value>,
    pub issues: Option<Value>,
    pub policy: Option<Value>,
    pub state: Option<Value>,
    pub metadata: Option<Value>,
    pub recorded_at: DateTime<Utc>,
}

/// A read of the execution journal; every filter is optional.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionQuery {
    pub service: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: u32,
}

impl Default for ExecutionQuery {
    fn default() -> Self {
        Self {
            service: None,
            since: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// Counts over the rows a query selects (without its limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExecutionTotals {
    pub total_snapshots: i64,
    pub last_recorded_at: Option<DateTime<Utc>>,
    pub status_counts: BTreeMap<String, i64>,
    pub service_counts: BTreeMap<String, i64>,
}

/// What `GET /api/v1/execution/journal` and the summary's `execution_journal` block show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExecutionJournalView {
    pub latest: Option<ExecutionRow>,
    pub recent: Vec<ExecutionRow>,
    pub totals: ExecutionTotals,
}

fn metric(s: &Snapshot, name: &str) -> Option<f64> {
    s.metrics.get(name).copied().filter(|v| v.is_finite())
}

/// A count only when the metric is a whole number that fits (hostile producers send
/// anything).
fn count(s: &Snapshot, name: &str) -> Option<i64> {
    metric(s, name)
        .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= i64::MAX as f64)
        .map(|v| v as i64)
}

fn detail<'a>(s: &'a Snapshot, component: &str, key: &str) -> Option<&'a DetailValue> {
    s.component(component).and_then(|c| c.details.get(key))
}

fn flag(s: &Snapshot, component: &str, key: &str) -> Option<bool> {
    match detail(s, component, key) {
        Some(DetailValue::Bool(b)) => Some(*b),
        Some(DetailValue::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Some(true),
            "false" | "no" | "0" | "off" => Some(false),
            _ => None,
        },
        Some(DetailValue::Int(i)) => Some(*i != 0),
        _ => None,
    }
}

/// Empty JSON values are stored as NULL.
fn non_empty(v: Value) -> Option<Value> {
    match &v {
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        _ => Some(v),
    }
}

impl ExecutionRow {
    /// The row of an execution snapshot: figures from its metrics, flags and sessions from
    /// the `connection`, `drop_copy` and `sessions` components, `issues` and `policy`
    /// gathered from every component, `state` = the metrics. Whatever is missing or
    /// malformed is NULL.
    pub fn from_snapshot(s: &Snapshot) -> Self {
        let mut issues = Vec::new();
        let mut policy = serde_json::Map::new();
        let mut strategy_id = None;
        for c in &s.components {
            if let Some(DetailValue::List(list)) = c.details.get("issues") {
                for i in list {
                    let mut v = Value::from(i);
                    if let Value::Object(o) = &mut v {
                        o.insert("component".into(), Value::from(c.name.clone()));
                    }
                    issues.push(v);
                }
            }
            if let Some(p @ DetailValue::Map(_)) = c.details.get("policy") {
                policy.insert(c.name.clone(), Value::from(p));
            }
            if let Some(DetailValue::Text(t)) = c.details.get("strategy_id") {
                strategy_id.get_or_insert_with(|| t.clone());
            }
        }
        let state: serde_json::Map<String, Value> = s
            .metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| (k.clone(), Value::from(*v)))
            .collect();
        let sessions = detail(s, "sessions", "active").map(Value::from);
        Self {
            snapshot_id: s.id,
            service: s.source.service.clone(),
            instance: s.source.instance.clone(),
            strategy_id,
            status: s.status.as_str().to_owned(),
            fill_rate: metric(s, "fill_rate"),
            failure_rate: metric(s, "failure_rate"),
            orders_submitted: count(s, "orders_submitted"),
            orders_executed: count(s, "orders_executed"),
            orders_failed: count(s, "orders_failed"),
            pending_orders: count(s, "pending_orders"),
            avg_latency_ms: metric(s, "avg_latency_ms"),
            max_latency_ms: metric(s, "max_latency_ms"),
            drop_copy_lag_seconds: metric(s, "drop_copy_lag_seconds"),
            drop_copy_active: flag(s, "drop_copy", "active"),
            connection_healthy: flag(s, "connection", "healthy"),
            sessions_active: sessions.and_then(non_empty),
            issues: non_empty(Value::Array(issues)),
            policy: non_empty(Value::Object(policy)),
            state: non_empty(Value::Object(state)),
            metadata: non_empty(serde_json::json!({
                "kind": s.kind,
                "summary": s.summary,
            })),
            recorded_at: s.generated_at,
        }
    }
}

/// The execution snapshots among `records` whose snapshot row is new (`inserted`).
fn new_execution_rows(records: &[JournalRecord], inserted: &[Uuid]) -> Vec<ExecutionRow> {
    records
        .iter()
        .filter(|r| r.snapshot.kind == topics::EXECUTION && inserted.contains(&r.snapshot.id))
        .map(|r| ExecutionRow::from_snapshot(&r.snapshot))
        .collect()
}

fn json_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

fn parse_json(text: Option<String>) -> Result<Option<Value>, JournalError> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| JournalError::Corrupt(format!("execution_snapshots json: {e}")))
}

const COLUMNS: &str = "snapshot_id, service, instance, strategy_id, status, fill_rate, \
    failure_rate, orders_submitted, orders_executed, orders_failed, pending_orders, \
    avg_latency_ms, max_latency_ms, drop_copy_lag_seconds, drop_copy_active, \
    connection_healthy, sessions_active, issues, policy, state, metadata, recorded_at";

/// Writes the execution rows of a batch inside its PostgreSQL transaction.
pub(super) async fn insert_pg(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    records: &[JournalRecord],
    inserted: &[Uuid],
) -> Result<(), JournalError> {
    for row in new_execution_rows(records, inserted) {
        sqlx::query(&format!(
            "INSERT INTO execution_snapshots ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18::jsonb, $19::jsonb, \
             $20::jsonb, $21::jsonb, $22) ON CONFLICT DO NOTHING"
        ))
        .bind(row.snapshot_id)
        .bind(&row.service)
        .bind(&row.instance)
        .bind(&row.strategy_id)
        .bind(&row.status)
        .bind(row.fill_rate)
        .bind(row.failure_rate)
        .bind(row.orders_submitted)
        .bind(row.orders_executed)
        .bind(row.orders_failed)
        .bind(row.pending_orders)
        .bind(row.avg_latency_ms)
        .bind(row.max_latency_ms)
        .bind(row.drop_copy_lag_seconds)
        .bind(row.drop_copy_active)
        .bind(row.connection_healthy)
        .bind(json_text(&row.sessions_active))
        .bind(json_text(&row.issues))
        .bind(json_text(&row.policy))
        .bind(json_text(&row.state))
        .bind(json_text(&row.metadata))
        .bind(row.recorded_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Writes the execution row of one snapshot inside the SQLite batch transaction, when its
/// snapshot row was new.
pub(super) async fn insert_sqlite(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    record: &JournalRecord,
    snapshot_was_new: bool,
) -> Result<(), JournalError> {
    if !snapshot_was_new || record.snapshot.kind != topics::EXECUTION {
        return Ok(());
    }
    let row = ExecutionRow::from_snapshot(&record.snapshot);
    sqlx::query(&format!(
        "INSERT INTO execution_snapshots ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
         ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
    ))
    .bind(row.snapshot_id.to_string())
    .bind(&row.service)
    .bind(&row.instance)
    .bind(&row.strategy_id)
    .bind(&row.status)
    .bind(row.fill_rate)
    .bind(row.failure_rate)
    .bind(row.orders_submitted)
    .bind(row.orders_executed)
    .bind(row.orders_failed)
    .bind(row.pending_orders)
    .bind(row.avg_latency_ms)
    .bind(row.max_latency_ms)
    .bind(row.drop_copy_lag_seconds)
    .bind(row.drop_copy_active)
    .bind(row.connection_healthy)
    .bind(json_text(&row.sessions_active))
    .bind(json_text(&row.issues))
    .bind(json_text(&row.policy))
    .bind(json_text(&row.state))
    .bind(json_text(&row.metadata))
    .bind(ts(row.recorded_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes `execution_snapshots` a hypertable on `recorded_at` (TimescaleDB journals only).
pub(super) async fn make_hypertable(pool: &PgPool, hours: i32) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT create_hypertable('execution_snapshots', 'recorded_at', \
           chunk_time_interval => make_interval(hours => $1), if_not_exists => TRUE, \
           migrate_data => TRUE, create_default_indexes => FALSE)",
    )
    .bind(hours)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes execution rows recorded before `cutoff` (with the journal's retention).
pub(super) async fn retain_pg(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<(), JournalError> {
    sqlx::query("DELETE FROM execution_snapshots WHERE recorded_at < $1")
        .bind(cutoff)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes execution rows recorded before `cutoff` (SQLite).
pub(super) async fn retain_sqlite(
    pool: &sqlx::SqlitePool,
    cutoff: DateTime<Utc>,
) -> Result<(), JournalError> {
    sqlx::query("DELETE FROM execution_snapshots WHERE recorded_at < ?")
        .bind(ts(cutoff))
        .execute(pool)
        .await?;
    Ok(())
}

fn row_pg(row: &sqlx::postgres::PgRow) -> Result<ExecutionRow, JournalError> {
    Ok(ExecutionRow {
        snapshot_id: row.try_get("snapshot_id")?,
        service: row.try_get("service")?,
        instance: row.try_get("instance")?,
        strategy_id: row.try_get("strategy_id")?,
        status: row.try_get("status")?,
        fill_rate: row.try_get("fill_rate")?,
        failure_rate: row.try_get("failure_rate")?,
        orders_submitted: row.try_get("orders_submitted")?,
        orders_executed: row.try_get("orders_executed")?,
        orders_failed: row.try_get("orders_failed")?,
        pending_orders: row.try_get("pending_orders")?,
        avg_latency_ms: row.try_get("avg_latency_ms")?,
        max_latency_ms: row.try_get("max_latency_ms")?,
        drop_copy_lag_seconds: row.try_get("drop_copy_lag_seconds")?,
        drop_copy_active: row.try_get("drop_copy_active")?,
        connection_healthy: row.try_get("connection_healthy")?,
        sessions_active: parse_json(row.try_get("sessions_active")?)?,
        issues: parse_json(row.try_get("issues")?)?,
        policy: parse_json(row.try_get("policy")?)?,
        state: parse_json(row.try_get("state")?)?,
        metadata: parse_json(row.try_get("metadata")?)?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

fn row_sqlite(row: &sqlx::sqlite::SqliteRow) -> Result<ExecutionRow, JournalError> {
    let id: String = row.try_get("snapshot_id")?;
    let recorded: String = row.try_get("recorded_at")?;
    Ok(ExecutionRow {
        snapshot_id: Uuid::parse_str(&id)
            .map_err(|e| JournalError::Corrupt(format!("snapshot_id {id:?}: {e}")))?,
        service: row.try_get("service")?,
        instance: row.try_get("instance")?,
        strategy_id: row.try_get("strategy_id")?,
        status: row.try_get("status")?,
        fill_rate: row.try_get("fill_rate")?,
        failure_rate: row.try_get("failure_rate")?,
        orders_submitted: row.try_get("orders_submitted")?,
        orders_executed: row.try_get("orders_executed")?,
        orders_failed: row.try_get("orders_failed")?,
        pending_orders: row.try_get("pending_orders")?,
        avg_latency_ms: row.try_get("avg_latency_ms")?,
        max_latency_ms: row.try_get("max_latency_ms")?,
        drop_copy_lag_seconds: row.try_get("drop_copy_lag_seconds")?,
        drop_copy_active: row.try_get("drop_copy_active")?,
        connection_healthy: row.try_get("connection_healthy")?,
        sessions_active: parse_json(row.try_get("sessions_active")?)?,
        issues: parse_json(row.try_get("issues")?)?,
        policy: parse_json(row.try_get("policy")?)?,
        state: parse_json(row.try_get("state")?)?,
        metadata: parse_json(row.try_get("metadata")?)?,
        recorded_at: parse_ts(&recorded)?,
    })
}

const PG_SELECT: &str = "SELECT snapshot_id, service, instance, strategy_id, status, fill_rate, \
    failure_rate, orders_submitted, orders_executed, orders_failed, pending_orders, \
    avg_latency_ms, max_latency_ms, drop_copy_lag_seconds, drop_copy_active, \
    connection_healthy, sessions_active::text AS sessions_active, issues::text AS issues, \
    policy::text AS policy, state::text AS state, metadata::text AS metadata, recorded_at \
    FROM execution_snapshots";

const SQLITE_SELECT: &str = "SELECT snapshot_id, service, instance, strategy_id, status, \
    fill_rate, failure_rate, orders_submitted, orders_executed, orders_failed, pending_orders, \
    avg_latency_ms, max_latency_ms, drop_copy_lag_seconds, drop_copy_active, \
    connection_healthy, sessions_active, issues, policy, state, metadata, recorded_at \
    FROM execution_snapshots";

fn counts(rows: Vec<(Option<String>, i64)>, null_as: &str) -> BTreeMap<String, i64> {
    rows.into_iter()
        .map(|(k, n)| (k.unwrap_or_else(|| null_as.to_owned()), n))
        .collect()
}

impl Journal {
    /// The newest execution rows first (at most `q.limit`; 0 reads none).
    pub async fn execution_recent(
        &self,
        q: &ExecutionQuery,
    ) -> Result<Vec<ExecutionRow>, JournalError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::from(q.limit.min(MAX_LIMIT));
        match self {
            Journal::Postgres(j) => {
                let rows = sqlx::query(&format!(
                    "{PG_SELECT} WHERE ($1::text IS NULL OR service = $1) \
                     AND ($2::timestamptz IS NULL OR recorded_at >= $2) \
                     ORDER BY recorded_at DESC, snapshot_id DESC LIMIT $3"
                ))
                .bind(&q.service)
                .bind(q.since)
                .bind(limit)
                .fetch_all(j.pool())
                .await?;
                rows.iter().map(row_pg).collect()
            }
            Journal::Sqlite(j) => {
                let rows = sqlx::query(&format!(
                    "{SQLITE_SELECT} WHERE (?1 IS NULL OR service = ?1) \
                     AND (?2 IS NULL OR recorded_at >= ?2) \
                     ORDER BY recorded_at DESC, snapshot_id DESC LIMIT ?3"
                ))
                .bind(&q.service)
                .bind(q.since.map(ts))
                .bind(limit)
                .fetch_all(j.pool())
                .await?;
                rows.iter().map(row_sqlite).collect()
            }
        }
    }

    /// Counts over the rows `q` selects, ignoring its limit.
    pub async fn execution_totals(
        &self,
        q: &ExecutionQuery,
    ) -> Result<ExecutionTotals, JournalError> {
        let filter_pg = "WHERE ($1::text IS NULL OR service = $1) \
                         AND ($2::timestamptz IS NULL OR recorded_at >= $2)";
        let filter_sqlite =
            "WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR recorded_at >= ?2)";
        match self {
            Journal::Postgres(j) => {
                let (total, last): (i64, Option<DateTime<Utc>>) = sqlx::query_as(&format!(
                    "SELECT count(*), max(recorded_at) FROM execution_snapshots {filter_pg}"
                ))
                .bind(&q.service)
                .bind(q.since)
                .fetch_one(j.pool())
                .await?;
                let by = |column: &str| {
                    format!(
                        "SELECT {column}, count(*) FROM execution_snapshots {filter_pg} \
                         GROUP BY {column}"
                    )
                };
                let status: Vec<(Option<String>, i64)> = sqlx::query_as(&by("status"))
                    .bind(&q.service)
                    .bind(q.since)
                    .fetch_all(j.pool())
                    .await?;
                let service: Vec<(Option<String>, i64)> = sqlx::query_as(&by("service"))
                    .bind(&q.service)
                    .bind(q.since)
                    .fetch_all(j.pool())
                    .await?;
                Ok(ExecutionTotals {
                    total_snapshots: total,
                    last_recorded_at: last,
                    status_counts: counts(status, "unknown"),
                    service_counts: counts(service, "execution"),
                })
            }
            Journal::Sqlite(j) => {
                let since = q.since.map(ts);
                let (total, last): (i64, Option<String>) = sqlx::query_as(&format!(
                    "SELECT count(*), max(recorded_at) FROM execution_snapshots {filter_sqlite}"
                ))
                .bind(&q.service)
                .bind(&since)
                .fetch_one(j.pool())
                .await?;
                let by = |column: &str| {
                    format!(
                        "SELECT {column}, count(*) FROM execution_snapshots {filter_sqlite} \
                         GROUP BY {column}"
                    )
                };
                let status: Vec<(Option<String>, i64)> = sqlx::query_as(&by("status"))
                    .bind(&q.service)
                    .bind(&since)
                    .fetch_all(j.pool())
                    .await?;
                let service: Vec<(Option<String>, i64)> = sqlx::query_as(&by("service"))
                    .bind(&q.service)
                    .bind(&since)
                    .fetch_all(j.pool())
                    .await?;
                Ok(ExecutionTotals {
                    total_snapshots: total,
                    last_recorded_at: last.as_deref().map(parse_ts).transpose()?,
                    status_counts: counts(status, "unknown"),
                    service_counts: counts(service, "execution"),
                })
            }
        }
    }

    /// Recent rows, the latest one and the totals of a query.
    pub async fn execution_view(
        &self,
        q: &ExecutionQuery,
    ) -> Result<ExecutionJournalView, JournalError> {
        let recent = self.execution_recent(q).await?;
        let totals = self.execution_totals(q).await?;
        Ok(ExecutionJournalView {
            latest: recent.first().cloned(),
            recent,
            totals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemesh_core::{Component, Grade, Source};

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::new(
            topics::EXECUTION,
            Source::new("fix-pilot", "a"),
            DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
        );
        s.push(
            Component::new("fills", Grade::Warn, "low")
                .detail(
                    "issues",
                    vec![DetailValue::Map(
                        [(
                            "code".to_owned(),
                            DetailValue::from("fill_rate_below_target"),
                        )]
                        .into_iter()
                        .collect(),
                    )],
                )
                .detail(
                    "policy",
                    DetailValue::Map(
                        [("min_fill_rate".to_owned(), DetailValue::Float(0.9))]
                            .into_iter()
                            .collect(),
                    ),
                ),
        );
        s.push(Component::new("connection", Grade::Ok, "up").detail("healthy", true));
        s.push(Component::new("drop_copy", Grade::Ok, "up").detail("active", "yes"));
        s.push(
            Component::new("sessions", Grade::Ok, "two")
                .detail("active", vec!["trading", "dropcopy"]),
        );
        s.metric("fill_rate", 0.5);
        s.metric("orders_submitted", 10.0);
        s
    }

    #[test]
    fn a_row_is_derived_from_the_snapshot() {
        let row = ExecutionRow::from_snapshot(&snapshot());
        assert_eq!(row.service, "fix-pilot");
        assert_eq!(row.status, "warn");
        assert_eq!(row.fill_rate, Some(0.5));
        assert_eq!(row.orders_submitted, Some(10));
        assert_eq!(row.orders_failed, None);
        assert_eq!(row.connection_healthy, Some(true));
        assert_eq!(row.drop_copy_active, Some(true), "tolerant: \"yes\"");
        assert_eq!(
            row.sessions_active,
            Some(serde_json::json!(["trading", "dropcopy"]))
        );
        assert_eq!(
            row.issues,
            Some(serde_json::json!([{"code": "fill_rate_below_target", "component": "fills"}]))
        );
        assert_eq!(
            row.policy,
            Some(serde_json::json!({"fills": {"min_fill_rate": 0.9}}))
        );
        assert_eq!(
            row.state,
            Some(serde_json::json!({"fill_rate": 0.5, "orders_submitted": 10.0}))
        );
    }

    #[test]
    fn hostile_shapes_become_null_never_an_error() {
        // another producer (HTTP intake) with the kind and nothing we expect
        let mut s = Snapshot::new(
            topics::EXECUTION,
            Source::new("someone", "x"),
            DateTime::from_timestamp(0, 0).expect("time"),
        );
        s.push(
            Component::new("connection", Grade::Ok, "?")
                .detail("healthy", "maybe")
                .detail("issues", "not a list"),
        );
        s.push(Component::new("sessions", Grade::Ok, "?").detail("active", Vec::<String>::new()));
        for (name, value) in [
            ("orders_submitted", 1e300),
            ("orders_executed", -3.0),
            ("orders_failed", 2.5),
            ("pending_orders", f64::NAN),
            ("fill_rate", f64::INFINITY),
        ] {
            s.metric(name, value);
        }
        let row = ExecutionRow::from_snapshot(&s);
        assert_eq!(
            (
                row.orders_submitted,
                row.orders_executed,
                row.orders_failed,
                row.pending_orders
            ),
            (None, None, None, None)
        );
        assert_eq!(row.fill_rate, None);
        assert_eq!(row.connection_healthy, None);
        assert_eq!(row.drop_copy_active, None);
        assert_eq!(row.sessions_active, None, "empty JSON is NULL");
        assert_eq!(row.issues, None);
        assert_eq!(row.policy, None);
    }
}
