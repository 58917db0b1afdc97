//! The execution journal (`execution_snapshots`, DOMAINS.md §5.4) written and read back on
//! real servers: plain PostgreSQL, TimescaleDB (PGlite from `deploy/local/dev-services`,
//! where it is a hypertable) and SQLite. Rows come from the FIX pilot's own evaluator; a
//! replayed batch adds no row; a hostile execution snapshot from another producer is
//! journaled with NULLs where its shape is wrong.

use chrono::{DateTime, Duration, Utc};
use telemesh_aggregator::journal::execution::ExecutionQuery;
use telemesh_aggregator::journal::{JournalRecord, Layout};
use telemesh_aggregator::settings::JournalSettings;
use telemesh_aggregator::Journal;
use telemesh_core::config::SecretUrl;
use telemesh_core::{topics, Component, Grade, Snapshot, Source};
use telemesh_fix_pilot::execution::{
    evaluate_execution, ExecutionPolicy, ExecutionState, Latency, RejectionReason,
};
use telemesh_integration_tests::fixtures::snapshot;
use telemesh_integration_tests::{
    namespace, reset_timescale, timescale_settings, timescale_url, TestEnv,
};

fn settings(url: &str) -> JournalSettings {
    JournalSettings {
        url: SecretUrl::new(url),
        ..JournalSettings::default()
    }
}

fn state(submitted: u64, executed: u64, failed: u64) -> ExecutionState {
    ExecutionState {
        orders_submitted: submitted,
        orders_executed: executed,
        orders_failed: failed,
        pending_orders: 1,
        ack_latency: Latency::of(vec![5, 10, 40]),
        fill_latency: Latency::of(vec![12, 30]),
        rejections: vec![RejectionReason {
            reason: "risk limit".into(),
            total: failed,
            recent: failed,
            previous: 0,
        }],
        via_fix: true,
        connection_healthy: true,
        trading_state: "active".into(),
        drop_copy_configured: true,
        drop_copy_active: true,
        drop_copy_lag_seconds: Some(0.25),
        dropped_messages: 0,
        drop_copy_open_breaks: 0,
        sessions_active: vec!["trading".into(), "dropcopy".into()],
        last_error: None,
        last_execution_ms: None,
    }
}

fn execution(instance: &str, s: &ExecutionState, at: DateTime<Utc>) -> JournalRecord {
    let snapshot = evaluate_execution(
        &ExecutionPolicy::default(),
        s,
        Source::new("fix-pilot", instance),
        at,
    );
    JournalRecord {
        snapshot,
        received_at: Utc::now(),
        kafka: None,
    }
}

/// Another producer's execution snapshot with the wrong shape everywhere.
fn hostile(at: DateTime<Utc>) -> JournalRecord {
    let mut s = Snapshot::new(topics::EXECUTION, Source::new("desk-gateway", "x"), at);
    s.push(
        Component::new("connection", Grade::Fail, "odd")
            .detail("healthy", "perhaps")
            .detail("issues", 7i64),
    );
    s.metric("orders_submitted", 1e300);
    s.metric("orders_failed", -2.0);
    s.metric("fill_rate", 0.5);
    s.summary = "hostile".into();
    JournalRecord {
        snapshot: s,
        received_at: Utc::now(),
        kafka: None,
    }
}

async fn behaves_like_an_execution_journal(j: &Journal) {
    let t0 = Utc::now() - Duration::minutes(10);
    let first = execution("a", &state(10, 9, 1), t0);
    let second = execution("a", &state(20, 16, 4), t0 + Duration::minutes(1));
    let odd = hostile(t0 + Duration::minutes(2));
    let other_kind = JournalRecord {
        snapshot: snapshot(topics::FIX_PILOT, "fix-pilot", "a", Grade::Ok),
        received_at: Utc::now(),
        kafka: None,
    };
    let batch = vec![first.clone(), other_kind, second.clone(), odd.clone()];
    let inserted = j.insert_batch(&batch).await.expect("insert");
    assert_eq!(inserted.len(), 4);
    // a replayed batch (Kafka redelivery) journals nothing twice
    assert!(j.insert_batch(&batch).await.expect("replay").is_empty());

    let all = ExecutionQuery {
        limit: 100,
        ..ExecutionQuery::default()
    };
    let rows = j.execution_recent(&all).await.expect("recent");
    assert_eq!(rows.len(), 3, "one row per execution snapshot: {rows:#?}");
    // newest first
    assert_eq!(rows[0].snapshot_id, odd.snapshot.id);
    assert_eq!(rows[1].snapshot_id, second.snapshot.id);
    assert_eq!(rows[2].snapshot_id, first.snapshot.id);

    let row = &rows[1];
    assert_eq!(row.service, "fix-pilot");
    assert_eq!(row.status, second.snapshot.status.as_str());
    assert_eq!(row.status, "fail", "rejection rate 20% with 20 orders");
    assert_eq!(
        (
            row.orders_submitted,
            row.orders_executed,
            row.orders_failed,
            row.pending_orders
        ),
        (Some(20), Some(16), Some(4), Some(1))
    );
    assert_eq!(row.fill_rate, Some(0.8));
    assert_eq!(row.failure_rate, Some(0.2));
    assert_eq!(row.max_latency_ms, Some(40.0));
    assert_eq!(row.drop_copy_lag_seconds, Some(0.25));
    assert_eq!(row.drop_copy_active, Some(true));
    assert_eq!(row.connection_healthy, Some(true));
    assert_eq!(
        row.sessions_active,
        Some(serde_json::json!(["trading", "dropcopy"]))
    );
    let issues = row.issues.as_ref().expect("issues");
    assert!(
        issues
            .as_array()
            .expect("a list")
            .iter()
            .any(|i| i["code"] == "rejection_rate_high" && i["severity"] == "fail"),
        "{issues}"
    );
    assert_eq!(
        row.policy.as_ref().expect("policy")["fills"]["min_fill_rate"],
        0.9
    );
    assert_eq!(row.state.as_ref().expect("state")["ack_p50_ms"], 10.0);
    // times round-trip at microsecond precision
    assert_eq!(row.recorded_at, second.snapshot.generated_at);

    let odd_row = &rows[0];
    assert_eq!(odd_row.service, "desk-gateway");
    assert_eq!(
        (
            odd_row.orders_submitted,
            odd_row.orders_failed,
            odd_row.connection_healthy
        ),
        (None, None, None)
    );
    assert_eq!(odd_row.fill_rate, Some(0.5));
    assert_eq!(odd_row.issues, None);

    // filters: service, since, limit; totals ignore the limit
    let pilot_only = ExecutionQuery {
        service: Some("fix-pilot".into()),
        limit: 1,
        ..ExecutionQuery::default()
    };
    let view = j.execution_view(&pilot_only).await.expect("view");
    assert_eq!(view.recent.len(), 1);
    assert_eq!(
        view.latest.as_ref().map(|r| r.snapshot_id),
        Some(second.snapshot.id)
    );
    assert_eq!(view.totals.total_snapshots, 2);
    assert_eq!(
        view.totals.last_recorded_at,
        Some(second.snapshot.generated_at)
    );
    assert_eq!(view.totals.service_counts.get("fix-pilot"), Some(&2));
    let since = ExecutionQuery {
        since: Some(t0 + Duration::seconds(30)),
        limit: 100,
        ..ExecutionQuery::default()
    };
    let view = j.execution_view(&since).await.expect("since");
    assert_eq!(view.recent.len(), 2);
    assert_eq!(view.totals.total_snapshots, 2);
    let statuses: i64 = view.totals.status_counts.values().sum();
    assert_eq!(statuses, 2);
    let none = ExecutionQuery {
        limit: 0,
        ..ExecutionQuery::default()
    };
    assert!(j.execution_recent(&none).await.expect("limit 0").is_empty());

    // retention takes execution rows with the journal's
    j.retain(t0 + Duration::seconds(30)).await.expect("retain");
    let left = j.execution_recent(&all).await.expect("after retention");
    assert_eq!(left.len(), 2, "the row before the cutoff is gone");
}

#[tokio::test]
async fn execution_journal_on_postgres() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let j = Journal::connect(&settings(&db)).await.expect("connect");
    assert_eq!(j.layout(), Layout::PlainPostgres);
    behaves_like_an_execution_journal(&j).await;
    j.close().await;
}

#[tokio::test]
async fn execution_journal_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/j.db", dir.path().display());
    let j = Journal::connect(&settings(&url)).await.expect("connect");
    assert_eq!(j.layout(), Layout::Sqlite);
    behaves_like_an_execution_journal(&j).await;
    j.close().await;
}

#[tokio::test]
async fn execution_journal_on_timescale_is_a_hypertable() {
    let url = timescale_url();
    reset_timescale(&url).await;
    let j = Journal::connect(&timescale_settings(&url))
        .await
        .expect("connect to the TimescaleDB test server");
    assert!(
        matches!(j.layout(), Layout::Timescale { .. }),
        "{:?}",
        j.layout()
    );
    let Journal::Postgres(pg) = &j else {
        unreachable!("a Timescale layout is a PostgreSQL journal")
    };
    let hypertables: Vec<String> = sqlx::query_scalar(
        "SELECT hypertable_name::text FROM timescaledb_information.hypertables ORDER BY 1",
    )
    .fetch_all(pg.pool())
    .await
    .expect("hypertables");
    assert_eq!(
        hypertables,
        [
            "ci_test_results",
            "ci_trends",
            "execution_snapshots",
            "telemetry_snapshots"
        ]
    );
    behaves_like_an_execution_journal(&j).await;
    j.close().await;
}
