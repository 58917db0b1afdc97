//! Tests of the SQLite source: the per-dimension window, run inserts through a read-write
//! connection while the pool stays read-only, min/max of a time column, and name handling.
//! (PostgreSQL is covered by the integration tests in tests/tests/ingest.rs.)

use chrono::Duration;
use sqlx::Executor;
use telemesh_core::config::SecretUrl;

use super::*;
use crate::run::validate_report;

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().expect("time")
}

async fn sqlite_platform(dir: &tempfile::TempDir) -> IngestSettings {
    let path = dir.path().join("platform.db");
    let url = format!("sqlite://{}", path.display());
    let mut conn = SqliteConnectOptions::from_str(&url)
        .expect("url")
        .create_if_missing(true)
        .connect()
        .await
        .expect("create sqlite file");
    conn.execute(
        "CREATE TABLE telemetry_ingest_runs (run_id TEXT PRIMARY KEY, dimension TEXT NOT NULL, status TEXT NOT NULL, \
         rows_written INTEGER NOT NULL, freshness_seconds REAL, ingest_duration_seconds REAL, executed_at TEXT NOT NULL, \
         source TEXT, symbols TEXT, metadata TEXT); \
         CREATE INDEX telemetry_ingest_runs_dimension_idx ON telemetry_ingest_runs (dimension, executed_at DESC); \
         CREATE TABLE market_data_daily_bars (symbol TEXT, ts TEXT NOT NULL); \
         CREATE INDEX market_data_daily_bars_ts_idx ON market_data_daily_bars (ts); \
         INSERT INTO market_data_daily_bars VALUES ('A', '2025-11-01 00:00:00'), ('A', '2026-11-27T00:00:00Z'); \
         CREATE TABLE market_data_empty (ts TEXT);",
    )
    .await
    .expect("schema");
    conn.close().await.expect("close");
    IngestSettings {
        source_url: SecretUrl::new(url),
        ..IngestSettings::default()
    }
}

fn report(dimension: &str, run_id: &str, minutes_ago: i64, rows: i64) -> RunReport {
    let body = serde_json::json!({
        "run_id": run_id,
        "dimension": dimension,
        "status": "ok",
        "rows_written": rows,
        "finished_at": (now() - Duration::minutes(minutes_ago)).to_rfc3339(),
        "symbols": ["AAPL"],
    });
    validate_report(body.to_string().as_bytes(), now()).expect("valid report")
}

#[actix_rt::test]
async fn sqlite_source_reads_each_dimension_window_and_takes_run_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = sqlite_platform(&dir).await;
    let db = SourceDb::connect_lazy(&settings).expect("pool");
    assert_eq!(db.backend(), Backend::Sqlite);
    db.ping().await.expect("ping");
    assert!(db.session_is_read_only().await.expect("read-only check"));
    let table = TableName::parse(&settings.runs_table).expect("table");
    for i in 0..30 {
        assert!(db
            .insert_run(&table, &report("chatty", &format!("c{i:02}"), i, 100))
            .await
            .expect("insert"));
    }
    assert!(db
        .insert_run(&table, &report("quiet", "q1", 600, 5))
        .await
        .expect("insert"));
    assert!(
        !db.insert_run(&table, &report("quiet", "q1", 600, 5))
            .await
            .expect("duplicate"),
        "same run_id twice"
    );
    let runs = db.recent_runs(&table, 10).await.expect("runs");
    assert_eq!(runs["chatty"].len(), 10);
    assert_eq!(runs["chatty"][0].run_id, "c00", "newest first");
    assert_eq!(
        runs["quiet"].len(),
        1,
        "a chatty dimension does not crowd out a quiet one"
    );
    assert_eq!(runs["quiet"][0].symbols, vec!["AAPL"]);
    assert_eq!(runs["quiet"][0].executed_at, now() - Duration::minutes(600));

    let policy = |table: &str, gap: Option<u32>| TablePolicy {
        name: table.into(),
        table: table.into(),
        time_column: "ts".into(),
        target_days: 365,
        minimum_days: 300,
        optional: false,
        max_gap_hours: gap,
    };
    let w = db
        .observe_table(&policy("market_data.daily_bars", Some(120)), now())
        .await
        .expect("window");
    assert_eq!(w.earliest, Some("2025-11-01T00:00:00Z".parse().expect("t")));
    assert_eq!(w.latest, Some("2026-11-27T00:00:00Z".parse().expect("t")));
    assert!(matches!(w.gap_check, GapCheck::Unsupported(_)));
    let w = db
        .observe_table(&policy("market_data.empty", None), now())
        .await
        .expect("empty");
    assert_eq!((w.earliest, w.latest), (None, None));
    assert!(db
        .observe_table(&policy("market_data.missing", None), now())
        .await
        .is_err());
}

#[actix_rt::test]
async fn an_unreachable_file_is_reported_not_panicked() {
    let settings = IngestSettings {
        source_url: SecretUrl::new("sqlite:///nonexistent-dir/platform.db"),
        acquire_timeout_ms: 200,
        ..IngestSettings::default()
    };
    let db = SourceDb::connect_lazy(&settings).expect("lazy pool");
    assert!(db.ping().await.is_err());
    assert_eq!(
        SourceDb::connect_lazy(&IngestSettings::default()).unwrap_err(),
        SourceError::NotConfigured
    );
}

#[test]
fn table_names_are_validated_and_mapped_per_backend() {
    let t = TableName::parse("telemetry.ingest_runs").expect("parse");
    assert_eq!(t.sql(Backend::Postgres), "\"telemetry\".\"ingest_runs\"");
    assert_eq!(t.sql(Backend::Sqlite), "\"telemetry_ingest_runs\"");
    assert_eq!(t.display(Backend::Sqlite), "telemetry_ingest_runs");
    assert_eq!(
        TableName::parse("runs")
            .expect("plain")
            .sql(Backend::Postgres),
        "\"runs\""
    );
    for bad in ["", "a.b.c", "1x", "x;drop", "x\"y", "a.", "sch ema.t"] {
        assert!(TableName::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn sqlite_time_text_parses_in_common_shapes() {
    let t: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().expect("t");
    for s in [
        "2026-11-28T12:00:00Z",
        "2026-11-28T13:00:00+01:00",
        "2026-11-28 12:00:00",
        "2026-11-28T12:00:00.000000",
        "2026-11-28 12:00:00+00:00",
        "1795867200",
    ] {
        assert_eq!(parse_time_text(s), Some(t), "{s}");
    }
    assert_eq!(
        parse_time_text("2026-11-28"),
        Some("2026-11-28T00:00:00Z".parse().expect("d"))
    );
    assert_eq!(parse_time_text("soon"), None);
}
