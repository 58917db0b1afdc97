//! The ingest service against real PostgreSQL: every trend rule (§3.6) and retention rule
//! (§3.7) at, just below and just above its boundary on seeded runs and market-data tables,
//! the per-dimension window, silent dimensions, empty tables and gaps, run reports over HTTP,
//! an outage of the source database, and one end-to-end run through Kafka to the aggregator.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, Row};
use telemesh_core::config::{Secret, SecretUrl, Section as _};
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Encoding, Grade, Snapshot, Source};
use telemesh_ingest::settings::{ExpectedInterval, RetentionTable};
use telemesh_ingest::source::{window_sql, Backend};
use telemesh_ingest::{retention, trends, Ingest, IngestSettings, SourceDb, TableName};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, create_topics, kafka_aggregator, kafka_publisher,
};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};
use telemesh_service::{RunningService, ServiceHandle, ServiceOptions};

const RUNS_DDL: &str = "CREATE SCHEMA telemetry; \
    CREATE TABLE telemetry.ingest_runs (run_id TEXT PRIMARY KEY, dimension TEXT NOT NULL, status TEXT NOT NULL, \
      rows_written INTEGER NOT NULL, freshness_seconds DOUBLE PRECISION, ingest_duration_seconds DOUBLE PRECISION, \
      executed_at TIMESTAMPTZ NOT NULL, source TEXT, symbols TEXT, metadata TEXT); \
    CREATE INDEX telemetry_ingest_runs_dimension_idx ON telemetry.ingest_runs (dimension, executed_at DESC); \
    CREATE SCHEMA market_data; CREATE SCHEMA macro_data;";

/// A fresh platform database with the runs table and the market-data schemas.
async fn platform_db(env: &TestEnv, name: &str) -> (String, PgConnection) {
    let url = env.fresh_database(name).await;
    let mut conn = PgConnection::connect(&url)
        .await
        .expect("connect platform db");
    conn.execute(RUNS_DDL).await.expect("create runs table");
    (url, conn)
}

/// Now, to the second, so seeded boundaries are exact.
fn reference_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

async fn insert_run(
    conn: &mut PgConnection,
    run_id: &str,
    dimension: &str,
    status: &str,
    rows: i32,
    freshness: Option<f64>,
    executed_at: DateTime<Utc>,
) {
    sqlx::query(
        "INSERT INTO telemetry.ingest_runs (run_id, dimension, status, rows_written, freshness_seconds, \
         ingest_duration_seconds, executed_at, source, symbols, metadata) \
         VALUES ($1, $2, $3, $4, $5, 1.0, $6, 'vendor', '[\"AAPL\"]', '{}')",
    )
    .bind(run_id)
    .bind(dimension)
    .bind(status)
    .bind(rows)
    .bind(freshness)
    .bind(executed_at)
    .execute(conn)
    .await
    .expect("insert run");
}

/// Seeds `dimension` with runs one minute apart, the newest one minute before `now`:
/// (status, rows, freshness) newest first.
async fn seed_series(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    dimension: &str,
    runs: &[(&str, i32, Option<f64>)],
) {
    for (i, (status, rows, freshness)) in runs.iter().enumerate() {
        let at = now - Duration::minutes(i as i64 + 1);
        insert_run(
            conn,
            &format!("{dimension}-{i}"),
            dimension,
            status,
            *rows,
            *freshness,
            at,
        )
        .await;
    }
}

/// Creates `market_data.<name>` with an index on `ts` and the given timestamps.
async fn market_table(conn: &mut PgConnection, name: &str, ts: &[DateTime<Utc>]) {
    conn.execute(
        format!(
            "CREATE TABLE market_data.{name} (symbol TEXT NOT NULL DEFAULT 'AAPL', ts TIMESTAMPTZ NOT NULL, close DOUBLE PRECISION); \
             CREATE INDEX {name}_ts_idx ON market_data.{name} (ts);"
        )
        .as_str(),
    )
    .await
    .expect("create market table");
    sqlx::query(&format!("INSERT INTO market_data.{name} (ts, close) SELECT t, 1.0 FROM UNNEST($1::timestamptz[]) AS t"))
        .bind(ts)
        .execute(conn)
        .await
        .expect("seed market table");
}

/// The run-report token of the tests' ingest services.
const TOKEN: &str = "ingest-test-token";

fn settings(url: &str) -> IngestSettings {
    IngestSettings {
        source_url: SecretUrl::new(url),
        api_token: Secret::new(TOKEN),
        interval_seconds: 1,
        acquire_timeout_ms: 1_000,
        ..IngestSettings::default()
    }
}

fn grades(s: &Snapshot) -> BTreeMap<String, Grade> {
    s.components
        .iter()
        .map(|c| (c.name.clone(), c.status))
        .collect()
}

fn source() -> Source {
    Source::new("ingest", "it")
}

#[actix_rt::test]
async fn trend_rules_hold_per_dimension_on_runs_read_from_postgres() {
    let env = TestEnv::get();
    let (url, mut conn) = platform_db(&env, &namespace()).await;
    let now = reference_now();
    let prev = [("ok", 100, None), ("ok", 80, None), ("ok", 120, None)];
    for (dimension, latest_rows) in [
        ("rows_at", 50),
        ("rows_below", 49),
        ("rows_above", 51),
        ("rows_zero", 0),
    ] {
        let mut runs = vec![("ok", latest_rows, None)];
        runs.extend_from_slice(&prev);
        seed_series(&mut conn, now, dimension, &runs).await;
    }
    for (dimension, latest) in [
        ("fresh_at", 15.0),
        ("fresh_below", 14.9),
        ("fresh_above", 15.1),
    ] {
        seed_series(
            &mut conn,
            now,
            dimension,
            &[
                ("ok", 10, Some(latest)),
                ("ok", 10, Some(20.0)),
                ("ok", 10, Some(10.0)),
            ],
        )
        .await;
    }
    let ok = ("ok", 10, None);
    seed_series(&mut conn, now, "latest_failed", &[("error", 10, None), ok]).await;
    seed_series(
        &mut conn,
        now,
        "latest_warning",
        &[("degraded", 10, None), ok],
    )
    .await;
    seed_series(
        &mut conn,
        now,
        "unknown_status",
        &[("pending", 10, None), ok],
    )
    .await;
    seed_series(
        &mut conn,
        now,
        "two_failures",
        &[("failed", 10, None), ("FAIL", 10, None), ok],
    )
    .await;
    seed_series(&mut conn, now, "failure_run2", &[ok, ("fail", 10, None)]).await;
    seed_series(
        &mut conn,
        now,
        "failure_run3",
        &[ok, ok, ("error", 10, None)],
    )
    .await;
    seed_series(
        &mut conn,
        now,
        "failure_run4",
        &[ok, ok, ok, ("error", 10, None)],
    )
    .await;
    // silence: expected every hour, fail after three
    for (dimension, seconds) in [
        ("silent_below", 3_599),
        ("silent_at", 3_600),
        ("silent_above", 3_601),
        ("silent_fail_at", 10_800),
        ("silent_fail_above", 10_801),
    ] {
        insert_run(
            &mut conn,
            dimension,
            dimension,
            "ok",
            10,
            None,
            now - Duration::seconds(seconds),
        )
        .await;
    }
    // a chatty dimension with 200 newer runs must not crowd out a quiet one with 2 older runs
    for i in 0..200 {
        insert_run(
            &mut conn,
            &format!("chatty-{i:03}"),
            "chatty",
            "ok",
            10,
            None,
            now - Duration::seconds(i),
        )
        .await;
    }
    insert_run(
        &mut conn,
        "quiet-0",
        "quiet",
        "ok",
        10,
        None,
        now - Duration::hours(5),
    )
    .await;
    insert_run(
        &mut conn,
        "quiet-1",
        "quiet",
        "failed",
        10,
        None,
        now - Duration::hours(6),
    )
    .await;

    let s = IngestSettings {
        default_expected_interval_seconds: 3_600,
        dimensions: vec!["never_reported".into(), "quiet".into()],
        expected_intervals: vec![ExpectedInterval {
            dimension: "quiet".into(),
            seconds: 86_400,
        }],
        ..settings(&url)
    };
    let db = SourceDb::connect_lazy(&s).expect("pool");
    assert!(
        db.session_is_read_only().await.expect("read-only check"),
        "sessions must be read-only"
    );
    let table = TableName::parse(&s.runs_table).expect("runs table");
    let runs = db
        .recent_runs(&table, s.window_runs as usize)
        .await
        .expect("read runs");
    assert_eq!(
        runs["chatty"].len(),
        10,
        "each dimension reads its own window"
    );
    assert_eq!(runs["chatty"][0].run_id, "chatty-000", "newest first");
    assert_eq!(
        runs["quiet"].len(),
        2,
        "the quiet dimension is read despite 200 newer chatty runs"
    );
    assert_eq!(runs["rows_at"][0].symbols, vec!["AAPL"]);

    let snapshot = trends::evaluate(&s.trend_policy(), &source(), &runs, now);
    let expected: BTreeMap<String, Grade> = [
        ("rows_at", Grade::Ok),
        ("rows_below", Grade::Warn),
        ("rows_above", Grade::Ok),
        ("rows_zero", Grade::Warn),
        ("fresh_at", Grade::Ok),
        ("fresh_below", Grade::Ok),
        ("fresh_above", Grade::Warn),
        ("latest_failed", Grade::Fail),
        ("latest_warning", Grade::Warn),
        ("unknown_status", Grade::Warn),
        ("two_failures", Grade::Fail),
        ("failure_run2", Grade::Fail),
        ("failure_run3", Grade::Fail),
        ("failure_run4", Grade::Ok),
        ("silent_below", Grade::Ok),
        ("silent_at", Grade::Ok),
        ("silent_above", Grade::Warn),
        ("silent_fail_at", Grade::Warn),
        ("silent_fail_above", Grade::Fail),
        ("chatty", Grade::Ok),
        ("quiet", Grade::Fail),
        ("never_reported", Grade::Warn),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(grades(&snapshot), expected, "{}", snapshot.markdown);
    let summary_of = |name: &str| {
        snapshot
            .component(name)
            .map(|c| c.summary.clone())
            .unwrap_or_default()
    };
    assert_eq!(summary_of("rows_below"), "rows dropped from ~100 to 49");
    assert!(summary_of("rows_zero").starts_with("latest run wrote 0 rows"));
    assert_eq!(
        summary_of("fresh_above"),
        "freshness regressed from 10.0 s to 15.1 s"
    );
    assert!(summary_of("two_failures").contains("2 consecutive failures"));
    assert!(summary_of("quiet").contains("recent history includes failures"));
    assert!(summary_of("silent_fail_above").starts_with("stopped reporting"));
    assert_eq!(snapshot.status, Grade::Fail);
    assert!(
        snapshot.markdown.contains("#### quiet: FAIL"),
        "{}",
        snapshot.markdown
    );
    assert_eq!(snapshot.validate(), Ok(()));
}

/// Timestamps every 24 h from `from` to `to` (inclusive), without those strictly inside
/// `hole`, plus the hole's end.
fn daily_with_hole(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    hole: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        if hole.is_none_or(|(a, b)| t <= a || t >= b) {
            out.push(t);
        }
        t += Duration::hours(24);
    }
    if let Some((_, b)) = hole {
        out.push(b);
    }
    out
}

#[actix_rt::test]
async fn retention_rules_hold_on_real_market_data_tables() {
    let env = TestEnv::get();
    let (url, mut conn) = platform_db(&env, &namespace()).await;
    let now = reference_now();
    let day = Duration::days(1);
    let target = now - Duration::days(365);
    let minimum = now - Duration::days(300);
    let one = Duration::seconds(1);
    let coverage_tables = [
        ("cov_at", target),
        ("cov_below", target + one),
        ("cov_above", target - one),
        ("cov_far_beyond", now - Duration::days(900)),
        ("min_at", minimum),
        ("min_below", minimum + one),
        ("min_below_optional", minimum + one),
    ];
    for (name, earliest) in coverage_tables {
        market_table(&mut conn, name, &[earliest, now]).await;
    }
    market_table(&mut conn, "empty", &[]).await;
    market_table(&mut conn, "empty_optional", &[]).await;
    let hole_start = now - Duration::days(100);
    let max_gap = Duration::hours(120);
    for (name, length) in [
        ("gap_at", max_gap),
        ("gap_below", max_gap - one),
        ("gap_above", max_gap + one),
    ] {
        let ts = daily_with_hole(
            now - Duration::days(400),
            now,
            Some((hole_start, hole_start + length)),
        );
        market_table(&mut conn, name, &ts).await;
    }
    // a gap before the target window does not count
    let ts = daily_with_hole(
        now - Duration::days(400),
        now,
        Some((now - Duration::days(399), now - Duration::days(370))),
    );
    market_table(&mut conn, "gap_before_window", &ts).await;
    // the stretch since the newest row counts
    for (name, stale) in [("tail_at", max_gap), ("tail_above", max_gap + one)] {
        let ts = daily_with_hole(now - Duration::days(400), now - stale - day, None);
        let mut ts = ts;
        ts.push(now - stale);
        market_table(&mut conn, name, &ts).await;
    }

    let table = |name: &str, minimum_days: u32, optional: bool, max_gap_hours: Option<u32>| {
        RetentionTable {
            name: name.into(),
            table: if name == "missing" {
                "market_data.does_not_exist".into()
            } else {
                format!("market_data.{name}")
            },
            time_column: "ts".into(),
            target_days: 365,
            minimum_days: Some(minimum_days),
            optional,
            max_gap_hours,
        }
    };
    let mut tables: Vec<RetentionTable> = coverage_tables
        .iter()
        .map(|(name, _)| table(name, 300, name.ends_with("optional"), None))
        .collect();
    tables.push(table("empty", 300, false, Some(120)));
    tables.push(table("empty_optional", 300, true, None));
    tables.push(table("missing", 300, false, None));
    for name in [
        "gap_at",
        "gap_below",
        "gap_above",
        "gap_before_window",
        "tail_at",
        "tail_above",
    ] {
        tables.push(table(name, 300, false, Some(120)));
    }
    let s = IngestSettings {
        retention: tables,
        ..settings(&url)
    };
    s.validate().expect("valid settings");
    let policy = s.retention_policy();
    let db = SourceDb::connect_lazy(&s).expect("pool");
    let observations = db.observe_all(&policy, now).await;
    let snapshot = retention::evaluate(&policy, &source(), &observations, now);
    let expected: BTreeMap<String, Grade> = [
        ("cov_at", Grade::Ok),
        ("cov_below", Grade::Warn),
        ("cov_above", Grade::Ok),
        ("cov_far_beyond", Grade::Ok),
        ("min_at", Grade::Warn),
        ("min_below", Grade::Fail),
        ("min_below_optional", Grade::Warn),
        ("empty", Grade::Fail),
        ("empty_optional", Grade::Warn),
        ("missing", Grade::Fail),
        ("gap_at", Grade::Ok),
        ("gap_below", Grade::Ok),
        ("gap_above", Grade::Warn),
        ("gap_before_window", Grade::Ok),
        ("tail_at", Grade::Ok),
        ("tail_above", Grade::Warn),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(grades(&snapshot), expected, "{}", snapshot.markdown);
    let summary_of = |name: &str| {
        snapshot
            .component(name)
            .map(|c| c.summary.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        summary_of("cov_far_beyond"),
        "coverage 900.0 d (target 365 d)",
        "no cap: older history is fine"
    );
    assert!(
        summary_of("gap_above").contains("gap of 5.0 d from"),
        "{}",
        summary_of("gap_above")
    );
    assert!(
        summary_of("tail_above").contains("no rows since"),
        "{}",
        summary_of("tail_above")
    );
    assert!(
        summary_of("missing").starts_with("failed to query retention window"),
        "{}",
        summary_of("missing")
    );
    assert!(
        summary_of("empty").starts_with("no rows in market_data.empty"),
        "{}",
        summary_of("empty")
    );
    assert!(
        snapshot
            .markdown
            .contains("| Dataset | Table | Oldest row |"),
        "{}",
        snapshot.markdown
    );
    assert_eq!(snapshot.validate(), Ok(()));
}

#[actix_rt::test]
async fn retention_reads_only_the_ends_of_the_time_index() {
    let env = TestEnv::get();
    let (_, mut conn) = platform_db(&env, &namespace()).await;
    conn.execute(
        "CREATE TABLE market_data.big (symbol TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL, close DOUBLE PRECISION); \
         INSERT INTO market_data.big SELECT 'S' || (g % 50), now() - g * interval '1 minute', g FROM generate_series(1, 200000) g; \
         CREATE INDEX big_ts_idx ON market_data.big (ts); ANALYZE market_data.big;",
    )
    .await
    .expect("seed big table");
    let table = TableName::parse("market_data.big").expect("name");
    let sql = window_sql(&table.sql(Backend::Postgres), "\"ts\"");
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
        .fetch_all(&mut conn)
        .await
        .expect("explain");
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Only Scan") || plan.contains("Index Scan"),
        "{plan}"
    );
    assert!(
        !plan.contains("Seq Scan"),
        "min/max must not scan the table:\n{plan}"
    );
}

/// A publisher into an in-process bus nobody consumes (messages are retained).
fn local_publisher() -> SnapshotPublisher {
    let bus = InProcessBus::new(64, Vec::<String>::new());
    SnapshotPublisher::new(bus.publisher(), Encoding::Json, "")
}

/// The ingest domain of `settings` on port 0, publishing through `publisher` as `instance`.
fn start_ingest(
    settings: &IngestSettings,
    instance: &str,
    publisher: SnapshotPublisher,
) -> RunningService {
    let domain = Ingest::new(settings).expect("valid ingest settings");
    telemesh_service::start(
        domain,
        ServiceOptions {
            instance: instance.into(),
            publisher,
            http_addr: Some("127.0.0.1:0".into()),
        },
    )
    .expect("start ingest")
}

/// `http://<where the service listens>`.
fn base(service: &RunningService) -> String {
    format!("http://{}", service.http_addr().expect("serves HTTP"))
}

/// The newest snapshots of both kinds.
struct Last {
    trends: Option<Snapshot>,
    retention: Option<Snapshot>,
}

fn last_of(service: &ServiceHandle) -> Last {
    Last {
        trends: service.latest_of(topics::INGEST_TRENDS),
        retention: service.latest_of(topics::RETENTION),
    }
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .expect("post run");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[actix_rt::test]
async fn run_reports_are_validated_and_recorded_in_the_platform_table() {
    let env = TestEnv::get();
    let (url, mut conn) = platform_db(&env, &namespace()).await;
    let handle = start_ingest(&settings(&url), "it", local_publisher());
    let runs_url = format!("{}/api/v1/ingest/runs", base(&handle));
    let finished = Utc::now() - Duration::minutes(1);
    let good = json!({
        "run_id": "report-1",
        "dimension": "daily_bars",
        "status": "success",
        "rows_written": 1200,
        "freshness_seconds": 42.5,
        "started_at": (finished - Duration::minutes(10)).to_rfc3339(),
        "finished_at": finished.to_rfc3339(),
        "source": "vendor-a",
        "symbols": ["AAPL", "MSFT"],
        "metadata": {"plan": "nightly"},
    });
    let bad: Vec<(&str, Value, &str)> = vec![
        ("rows_written", json!(-5), "rows_written"),
        ("status", json!("finished"), "status"),
        (
            "finished_at",
            json!((finished - Duration::minutes(11)).to_rfc3339()),
            "finished_at",
        ),
        (
            "finished_at",
            json!((Utc::now() + Duration::hours(1)).to_rfc3339()),
            "finished_at",
        ),
        ("dimension", Value::Null, "dimension"),
        ("freshness_seconds", json!("fresh"), "freshness_seconds"),
        ("rows", json!(1), "rows"),
    ];
    for (field, value, expected) in bad {
        let mut body = good.clone();
        body[field] = value;
        let (status, answer) = post(&runs_url, &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(answer["error"], "invalid_run", "{answer}");
        assert_eq!(answer["field"], expected, "{answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap_or_default()
                .starts_with(expected),
            "{answer}"
        );
    }
    let r = reqwest::Client::new()
        .post(&runs_url)
        .bearer_auth(TOKEN)
        .body("not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM telemetry.ingest_runs")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 0, "rejected reports write nothing");

    let (status, answer) = post(&runs_url, &good).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "recorded");
    assert_eq!(answer["table"], "telemetry.ingest_runs");
    let (status, answer) = post(&runs_url, &good).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    let row = sqlx::query(
        "SELECT dimension, status, rows_written, freshness_seconds, ingest_duration_seconds, executed_at, symbols, metadata \
         FROM telemetry.ingest_runs WHERE run_id = 'report-1'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("recorded row");
    let text = |c: &str| row.try_get::<String, _>(c).expect(c);
    let number = |c: &str| row.try_get::<Option<f64>, _>(c).expect(c);
    assert_eq!(
        (text("dimension"), text("status")),
        ("daily_bars".to_owned(), "success".to_owned())
    );
    assert_eq!(row.try_get::<i32, _>("rows_written").expect("rows"), 1200);
    assert_eq!(
        (
            number("freshness_seconds"),
            number("ingest_duration_seconds")
        ),
        (Some(42.5), Some(600.0))
    );
    assert_eq!(
        row.try_get::<DateTime<Utc>, _>("executed_at")
            .expect("executed_at"),
        finished.trunc_subsecs(6)
    );
    assert_eq!(
        serde_json::from_str::<Value>(&text("symbols")).expect("symbols json"),
        json!(["AAPL", "MSFT"])
    );
    assert_eq!(
        serde_json::from_str::<Value>(&text("metadata")).expect("metadata json"),
        json!({"plan": "nightly"})
    );

    // the recorded run shows up in the trends snapshot
    let service = handle.handle().clone();
    let daily = wait_until(
        "the reported run in the trends snapshot",
        StdDuration::from_secs(20),
        || {
            let service = service.clone();
            async move {
                let last = last_of(&service);
                let c = last.trends?.component("daily_bars").cloned()?;
                (c.details.get("runs_in_window") == Some(&1usize.into())).then_some(c)
            }
        },
    )
    .await;
    assert_eq!(daily.status, Grade::Ok, "{daily:?}");

    let base = base(&handle);
    for (path, code) in [
        ("/health/live", 200),
        ("/health/ready", 200),
        ("/api/v1/snapshots/latest", 200),
        ("/api/v1/nope", 404),
    ] {
        let r = reqwest::get(format!("{base}{path}")).await.expect("get");
        assert_eq!(r.status().as_u16(), code, "{path}");
    }
    handle.stop(false).await;
}

#[actix_rt::test]
async fn run_reports_adapt_to_the_column_types_of_the_platform_table() {
    let env = TestEnv::get();
    let (url, mut conn) = platform_db(&env, &namespace()).await;
    conn.execute(
        "CREATE TABLE telemetry.typed_runs (run_id UUID PRIMARY KEY, dimension TEXT NOT NULL, status VARCHAR(16) NOT NULL, \
           rows_written BIGINT NOT NULL, freshness_seconds REAL, ingest_duration_seconds NUMERIC(10,3), \
           executed_at TIMESTAMP NOT NULL, source TEXT, symbols JSONB, metadata JSONB)",
    )
    .await
    .expect("typed runs table");
    let db = SourceDb::connect_lazy(&settings(&url)).expect("pool");
    let typed_settings = IngestSettings {
        runs_table: "telemetry.typed_runs".into(),
        ..settings(&url)
    };
    let server = start_ingest(&typed_settings, "it", local_publisher());
    let runs_url = format!("{}/api/v1/ingest/runs", base(&server));
    let report = |run_id: &str| {
        json!({
            "run_id": run_id, "dimension": "intraday_trades", "status": "warning", "rows_written": 7,
            "ingest_duration_seconds": 1.5, "finished_at": "2026-01-15T13:30:00+01:00", "symbols": ["X"],
        })
    };
    let (status, answer) = post(&runs_url, &report("not-a-uuid")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("rejected_by_table")),
        "{answer}"
    );
    let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let (status, answer) = post(&runs_url, &report(id)).await;
    assert_eq!(status, 201, "{answer}");
    let (executed_at, symbols): (chrono::NaiveDateTime, Value) = sqlx::query_as(
        "SELECT executed_at, symbols FROM telemetry.typed_runs WHERE run_id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&mut conn)
    .await
    .expect("typed row");
    assert_eq!(
        executed_at.to_string(),
        "2026-01-15 12:30:00",
        "stored as UTC wall time"
    );
    assert_eq!(symbols, json!(["X"]));
    let runs = db
        .recent_runs(&TableName::parse("telemetry.typed_runs").expect("name"), 10)
        .await
        .expect("read typed runs");
    assert_eq!(
        runs["intraday_trades"][0].executed_at.to_rfc3339(),
        "2026-01-15T12:30:00+00:00"
    );
    assert_eq!(
        runs["intraday_trades"][0].ingest_duration_seconds,
        Some(1.5)
    );

    // a runs table that does not exist is the platform's problem, not the client's
    let missing_settings = IngestSettings {
        runs_table: "telemetry.nope".into(),
        ..settings(&url)
    };
    let missing = start_ingest(&missing_settings, "it", local_publisher());
    let (status, answer) = post(
        &format!("{}/api/v1/ingest/runs", base(&missing)),
        &report(id),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("does not exist"),
        "{answer}"
    );
    server.stop(false).await;
    missing.stop(false).await;
}

#[actix_rt::test]
async fn the_service_survives_the_source_database_going_away_and_coming_back() {
    let env = TestEnv::get();
    let name = namespace();
    let (url, mut conn) = platform_db(&env, &name).await;
    let now = reference_now();
    seed_series(
        &mut conn,
        now,
        "daily_bars",
        &[("ok", 10, None), ("ok", 10, None)],
    )
    .await;
    conn.close().await.expect("close seeding connection");
    let handle = start_ingest(&settings(&url), "it", local_publisher());
    let service = handle.handle().clone();
    let last = move || {
        let service = service.clone();
        async move { Some(last_of(&service)) }
    };
    let reachable = |s: &Snapshot| s.component("source_database").is_none();
    wait_until(
        "a first evaluation from the reachable database",
        StdDuration::from_secs(20),
        || {
            let last = last.clone();
            async move { last().await?.trends.filter(|s| reachable(s)).map(|_| ()) }
        },
    )
    .await;

    // a real outage of that database: no new connections, existing sessions killed
    let mut admin = PgConnection::connect(&env.database_url)
        .await
        .expect("admin connection");
    admin
        .execute(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false").as_str())
        .await
        .expect("disallow");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .expect("terminate sessions");
    let (trends_down, retention_down) = wait_until(
        "fail snapshots while the database is down",
        StdDuration::from_secs(30),
        || {
            let last = last.clone();
            async move {
                let l = last().await?;
                let (t, r) = (l.trends?, l.retention?);
                (!reachable(&t) && !reachable(&r)).then_some((t, r))
            }
        },
    )
    .await;
    for s in [&trends_down, &retention_down] {
        assert_eq!(s.status, Grade::Fail);
        assert!(
            s.summary
                .starts_with("cannot read the platform database: platform database unreachable"),
            "{}",
            s.summary
        );
        assert_eq!(s.metrics.get("interval_seconds"), Some(&1.0));
    }
    let base = base(&handle);
    assert_eq!(
        reqwest::get(format!("{base}/health/live"))
            .await
            .expect("live")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{base}/health/ready"))
            .await
            .expect("ready")
            .status()
            .as_u16(),
        200,
        "readiness is the transport's; the outage is graded in the snapshots"
    );
    let report = json!({"dimension": "daily_bars", "status": "ok", "rows_written": 1, "finished_at": Utc::now().to_rfc3339()});
    let (status, answer) = post(&format!("{base}/api/v1/ingest/runs"), &report).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "unavailable");

    admin
        .execute(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true").as_str())
        .await
        .expect("allow");
    let back = wait_until(
        "graded snapshots once the database is back",
        StdDuration::from_secs(30),
        || {
            let last = last.clone();
            async move {
                let l = last().await?;
                let (t, r) = (l.trends?, l.retention?);
                (reachable(&t) && reachable(&r)).then_some(t)
            }
        },
    )
    .await;
    assert!(back.component("daily_bars").is_some(), "{}", back.markdown);
    assert_eq!(
        reqwest::get(format!("{base}/health/ready"))
            .await
            .expect("ready")
            .status()
            .as_u16(),
        200
    );
    handle.stop(false).await;
}

#[actix_rt::test]
async fn ingest_snapshots_travel_over_kafka_into_the_aggregator_summary() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 1).await;
    let journal = env.fresh_database(&ns).await;
    let aggregator = kafka_aggregator(&kafka, &journal, &aggregator_settings()).await;
    let (platform, mut conn) = platform_db(&env, &format!("{ns}_platform")).await;
    let now = reference_now();
    seed_series(
        &mut conn,
        now,
        "daily_bars",
        &[("ok", 100, Some(10.0)), ("ok", 100, Some(10.0))],
    )
    .await;
    market_table(
        &mut conn,
        "daily_bars",
        &daily_with_hole(now - Duration::days(400), now, None),
    )
    .await;
    let s = IngestSettings {
        dimensions: vec!["daily_bars".into()],
        retention: vec![RetentionTable {
            name: "daily_bars".into(),
            table: "market_data.daily_bars".into(),
            time_column: "ts".into(),
            target_days: 365,
            minimum_days: Some(300),
            optional: false,
            max_gap_hours: Some(120),
        }],
        interval_seconds: 2,
        ..settings(&platform)
    };
    let handle = start_ingest(&s, "e2e", kafka_publisher(&kafka, Encoding::Bincode));

    let url = format!("http://{}/api/v1/summary", aggregator.http_addr);
    let domains: Value = wait_until(
        "both ingest kinds in the summary",
        StdDuration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let json: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
                let domains = json["domains"].clone();
                (domains[topics::INGEST_TRENDS].is_object()
                    && domains[topics::RETENTION].is_object())
                .then_some(domains)
            }
        },
    )
    .await;
    for (kind, title) in [
        (topics::INGEST_TRENDS, "### Ingest trends: OK"),
        (topics::RETENTION, "### Data retention: OK"),
    ] {
        let block = &domains[kind];
        assert_eq!(block["status"], "ok", "{kind}: {block}");
        assert_eq!(
            block["expected_interval_seconds"], 2.0,
            "the interval_seconds metric arrives: {block}"
        );
        assert_eq!(block["snapshot"]["source"]["service"], "ingest");
        let markdown = block["snapshot"]["markdown"].as_str().unwrap_or_default();
        assert!(markdown.starts_with(title), "{markdown}");
    }
    let md = reqwest::get(format!("{url}?format=markdown"))
        .await
        .expect("markdown")
        .text()
        .await
        .expect("text");
    assert!(
        md.contains("Ingest trends") && md.contains("Data retention"),
        "{md}"
    );
    handle.stop(false).await;
    aggregator.stop().await;
}

#[actix_rt::test]
async fn run_reports_need_the_token_before_the_body_is_read_and_hostile_requests_write_nothing() {
    let env = TestEnv::get();
    let (url, mut conn) = platform_db(&env, &namespace()).await;
    let client = reqwest::Client::new();
    let good = json!({"run_id": "forged-1", "dimension": "daily_bars", "status": "success",
        "rows_written": 1, "finished_at": Utc::now().to_rfc3339()})
    .to_string();
    let huge_body = format!(
        r#"{{"run_id":"{}","dimension":"daily_bars"}}"#,
        "x".repeat(300 * 1024)
    );
    let post_as = |url: String, auth: Option<String>, body: String| {
        let client = client.clone();
        async move {
            let mut request = client
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(value) = auth {
                request = request.header("authorization", value);
            }
            let r = request.send().await.expect("post");
            let status = r.status().as_u16();
            let challenge = r.headers().contains_key("www-authenticate");
            (
                status,
                r.json::<Value>().await.unwrap_or(Value::Null),
                challenge,
            )
        }
    };

    // no token configured: disabled, naming the setting
    let disabled = IngestSettings {
        api_token: Secret::default(),
        ..settings(&url)
    };
    let handle = start_ingest(&disabled, "it", local_publisher());
    let runs_url = format!("{}/api/v1/ingest/runs", base(&handle));
    for auth in [None, Some("Bearer x".to_owned())] {
        let (status, answer, _) = post_as(runs_url.clone(), auth, good.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("disabled")),
            "{answer}"
        );
        assert!(
            answer["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("ingest.api_token"),
            "{answer}"
        );
    }
    handle.stop(false).await;

    let handle = start_ingest(&settings(&url), "it", local_publisher());
    let runs_url = format!("{}/api/v1/ingest/runs", base(&handle));
    let cases: Vec<(Option<String>, String, u16)> = vec![
        (None, good.clone(), 401),
        (Some("Basic Zm9vOmJhcg==".into()), good.clone(), 401),
        (Some(TOKEN.into()), good.clone(), 401),
        (Some("Bearer wrong".into()), good.clone(), 403),
        (Some(format!("Bearer {TOKEN}x")), good.clone(), 403),
        (
            Some(format!("Bearer {}", "A".repeat(16 * 1024))),
            good.clone(),
            403,
        ),
        (None, "not json".into(), 401),
        (Some("Bearer wrong".into()), "not json".into(), 403),
        (Some("Bearer wrong".into()), huge_body.clone(), 403),
        (None, huge_body.clone(), 401),
    ];
    for (auth, body, expected) in cases {
        let shown = auth.as_deref().map(|a| a[..a.len().min(40)].to_owned());
        let (status, answer, challenge) = post_as(runs_url.clone(), auth, body).await;
        assert_eq!(status, expected, "{shown:?}: {answer}");
        assert_eq!(challenge, expected == 401, "{shown:?}");
        assert!(!answer.to_string().contains(TOKEN), "{answer}");
    }
    assert_eq!(
        run_count(&mut conn).await,
        0,
        "refused reports write nothing"
    );
    let bearer = Some(format!("Bearer {TOKEN}"));
    let (status, answer, _) = post_as(runs_url.clone(), bearer.clone(), huge_body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("too_large")),
        "{answer}"
    );
    let (status, answer, _) = post_as(runs_url.clone(), bearer, good).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(run_count(&mut conn).await, 1);
    handle.stop(false).await;
}

async fn run_count(conn: &mut PgConnection) -> i64 {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM telemetry.ingest_runs")
        .fetch_one(conn)
        .await
        .expect("count");
    count
}
