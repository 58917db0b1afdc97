//! The journal on each of its layouts against real servers: plain PostgreSQL, TimescaleDB
//! (PGlite with TimescaleDB from `deploy/local/dev-services`, one connection) and SQLite.
//! Every test asserts the layout it got; the same behaviour checks run on all three; the
//! history queries are checked with `EXPLAIN` to be index-served on a million-row table.

use chrono::{DateTime, Duration, Utc};
use sqlx::Connection;
use telemesh_aggregator::journal::{JournalError, JournalRecord, Layout, SnapshotQuery};
use telemesh_aggregator::settings::{JournalSettings, TimescaleMode};
use telemesh_aggregator::Journal;
use telemesh_core::config::SecretUrl;
use telemesh_core::{topics, Grade, Snapshot};
use telemesh_integration_tests::fixtures::snapshot;
use telemesh_integration_tests::{
    namespace, raw_connection, reset_timescale, timescale_settings, timescale_url, TestEnv,
};

/// The TimescaleDB test server takes one connection at a time: its tests take turns.
static TIMESCALE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn settings(url: &str) -> JournalSettings {
    JournalSettings {
        url: SecretUrl::new(url),
        ..JournalSettings::default()
    }
}

fn record(kind: &str, service: &str, instance: &str, at: DateTime<Utc>) -> JournalRecord {
    let mut s = snapshot(kind, service, instance, Grade::Warn);
    s.generated_at = at;
    JournalRecord {
        snapshot: s,
        received_at: Utc::now(),
        kafka: None,
    }
}

fn all(limit: u32) -> SnapshotQuery {
    SnapshotQuery {
        limit,
        ..SnapshotQuery::default()
    }
}

/// The behaviour every layout must have: idempotent batches, newest-first filtered history,
/// the latest-per-source table (newer wins, redelivered older does not), retention.
async fn behaves_like_a_journal(j: &Journal) {
    let now = Utc::now();
    let kr = topics::KAFKA_READINESS;
    let it = topics::INGEST_TRENDS;
    let old = record(kr, "kr", "i1", now - Duration::days(10));
    let a = record(kr, "kr", "i1", now - Duration::minutes(10));
    let b = record(kr, "kr", "i1", now - Duration::minutes(5));
    let c = record(it, "ingest", "i1", now - Duration::minutes(1));
    // hostile text survives the write path unchanged
    let mut d = record(it, "ingest", "i2 \t\"\\N\n🚨", now - Duration::minutes(2));
    d.snapshot.summary = "tab\there, \"quotes\", back\\slash, \\N, newline\n, ünïcødé 🚨".into();
    d.kafka = Some(telemesh_aggregator::journal::KafkaCoords {
        topic: "x.telemetry.ingest.trends".into(),
        partition: i32::MAX,
        offset: i64::MAX,
    });

    let first = vec![old.clone(), a.clone(), b.clone(), c.clone(), d.clone()];
    let mut new = j.insert_batch(&first).await.expect("insert batch");
    new.sort();
    let mut want: Vec<_> = first.iter().map(|r| r.snapshot.id).collect();
    want.sort();
    assert_eq!(new, want, "every row of a first batch is new");
    // a redelivered batch (plus one new row) adds only the new row
    let e = record(kr, "kr", "i2", now - Duration::minutes(3));
    let again = j
        .insert_batch(&[a.clone(), e.clone(), b.clone()])
        .await
        .expect("insert redelivered batch");
    assert_eq!(again, vec![e.snapshot.id]);

    let rows = j.query(&all(100)).await.expect("query all");
    let ids: Vec<_> = rows.iter().map(|r| r.snapshot.id).collect();
    assert_eq!(
        ids,
        vec![
            c.snapshot.id,
            d.snapshot.id,
            e.snapshot.id,
            b.snapshot.id,
            a.snapshot.id,
            old.snapshot.id
        ],
        "newest first"
    );
    let hostile = rows
        .iter()
        .find(|r| r.snapshot.id == d.snapshot.id)
        .unwrap();
    assert_eq!(hostile.snapshot, d.snapshot);
    assert_eq!(hostile.kafka, d.kafka);
    assert_eq!(j.query(&all(2)).await.unwrap().len(), 2, "limit");
    let filtered = j
        .query(&SnapshotQuery {
            kind: Some(kr.into()),
            service: Some("kr".into()),
            since: Some(now - Duration::minutes(7)),
            until: Some(now),
            limit: 10,
        })
        .await
        .expect("filtered query");
    let ids: Vec<_> = filtered.iter().map(|r| r.snapshot.id).collect();
    assert_eq!(ids, vec![e.snapshot.id, b.snapshot.id]);

    // latest per source: newest of each (kind, service, instance), within the window
    let mut latest = j.latest(now - Duration::hours(24)).await.expect("latest");
    latest.sort_by_key(|s| s.id);
    let mut want: Vec<Snapshot> = vec![
        b.snapshot.clone(),
        c.snapshot.clone(),
        d.snapshot.clone(),
        e.snapshot.clone(),
    ];
    want.sort_by_key(|s| s.id);
    assert_eq!(latest, want);
    // an older snapshot of a source arriving late does not replace its newest
    let late = record(kr, "kr", "i1", now - Duration::minutes(30));
    j.insert_batch(std::slice::from_ref(&late)).await.unwrap();
    let latest = j.latest(now - Duration::hours(24)).await.unwrap();
    assert!(latest.contains(&b.snapshot) && !latest.contains(&late.snapshot));
    // …and a newer one in a batch with an older one of the same source does
    let newer = record(kr, "kr", "i1", now - Duration::seconds(30));
    let older = record(kr, "kr", "i1", now - Duration::seconds(40));
    j.insert_batch(&[newer.clone(), older]).await.unwrap();
    let latest = j.latest(now - Duration::hours(24)).await.unwrap();
    assert!(latest.contains(&newer.snapshot) && !latest.contains(&b.snapshot));
    assert_eq!(latest.len(), 4);

    // retention removes what is older than the cutoff, and only that
    let before = j.query(&all(1000)).await.unwrap().len();
    let outcome = j.retain(now - Duration::days(5)).await.expect("retain");
    let after = j.query(&all(1000)).await.unwrap();
    assert_eq!(after.len(), before - 1, "{outcome:?}");
    assert!(after.iter().all(|r| r.snapshot.id != old.snapshot.id));
    assert!(
        outcome.rows_deleted + outcome.chunks_dropped >= 1,
        "{outcome:?}"
    );
    let again = j
        .retain(now - Duration::days(5))
        .await
        .expect("retain again");
    assert_eq!(again.rows_deleted, 0);
    assert_eq!(j.query(&all(1000)).await.unwrap().len(), before - 1);
}

#[tokio::test]
async fn plain_postgres_journal() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let j = Journal::connect(&settings(&db)).await.expect("connect");
    assert_eq!(j.layout(), Layout::PlainPostgres);
    behaves_like_a_journal(&j).await;
}

#[tokio::test]
async fn sqlite_journal() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/j.db", dir.path().display());
    let j = Journal::connect(&settings(&url)).await.expect("connect");
    assert_eq!(j.layout(), Layout::Sqlite);
    behaves_like_a_journal(&j).await;
}

#[tokio::test]
async fn timescale_journal_is_a_hypertable_with_the_configured_chunks() {
    let url = timescale_url();
    let _turn = TIMESCALE.lock().await;
    reset_timescale(&url).await;
    let j = Journal::connect(&JournalSettings {
        chunk_interval_hours: 6,
        ..timescale_settings(&url)
    })
    .await
    .expect("connect to the TimescaleDB test server");
    let Layout::Timescale { version } = j.layout() else {
        panic!("expected the Timescale layout, got {:?}", j.layout());
    };
    assert!(version.starts_with('2'), "{version}");
    behaves_like_a_journal(&j).await;

    let Journal::Postgres(pg) = &j else {
        unreachable!("a Timescale layout is a PostgreSQL journal")
    };
    let pool = pg.pool();
    let interval: String = sqlx::query_scalar(
        "SELECT time_interval::text FROM timescaledb_information.dimensions \
         WHERE hypertable_name = 'telemetry_snapshots'",
    )
    .fetch_one(pool)
    .await
    .expect("hypertable dimension");
    assert_eq!(interval, "06:00:00");
    // time_bucket over the journal (what a status history runs)
    let buckets: Vec<(DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT time_bucket(INTERVAL '1 hour', generated_at) AS b, count(*) \
         FROM telemetry_snapshots GROUP BY b ORDER BY b",
    )
    .fetch_all(pool)
    .await
    .expect("time_bucket");
    assert!(!buckets.is_empty());
    assert_eq!(
        buckets.iter().map(|(_, n)| n).sum::<i64>(),
        j.query(&all(1000)).await.unwrap().len() as i64
    );
    // retention dropped the old row's chunk
    let chunks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM timescaledb_information.chunks \
         WHERE hypertable_name = 'telemetry_snapshots' AND range_end < now() - INTERVAL '5 days'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(chunks, 0, "drop_chunks left old chunks");

    // a restart on the existing hypertable keeps it and applies a changed chunk interval
    pool.close().await;
    drop(j);
    let j = Journal::connect(&JournalSettings {
        chunk_interval_hours: 12,
        ..timescale_settings(&url)
    })
    .await
    .expect("reconnect");
    assert!(matches!(j.layout(), Layout::Timescale { .. }));
    let Journal::Postgres(pg) = &j else {
        unreachable!()
    };
    let interval: String = sqlx::query_scalar(
        "SELECT time_interval::text FROM timescaledb_information.dimensions \
         WHERE hypertable_name = 'telemetry_snapshots'",
    )
    .fetch_one(pg.pool())
    .await
    .unwrap();
    assert_eq!(interval, "12:00:00");
    pg.pool().close().await;
}

#[tokio::test]
async fn timescale_required_refuses_plain_postgres_naming_the_setting() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let err = Journal::connect(&JournalSettings {
        timescale: TimescaleMode::Required,
        ..settings(&db)
    })
    .await
    .expect_err("plain PostgreSQL must be refused when TimescaleDB is required");
    assert!(matches!(err, JournalError::Setup(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("shared_preload_libraries") && message.contains("journal.timescale"),
        "{message}"
    );
    // auto falls back, off never tries
    for mode in [TimescaleMode::Auto, TimescaleMode::Off] {
        let j = Journal::connect(&JournalSettings {
            timescale: mode,
            ..settings(&db)
        })
        .await
        .expect("connect");
        assert_eq!(j.layout(), Layout::PlainPostgres, "{mode:?}");
    }
}

#[tokio::test]
async fn timescale_off_uses_plain_tables_on_a_timescale_server() {
    let url = timescale_url();
    let _turn = TIMESCALE.lock().await;
    reset_timescale(&url).await;
    let j = Journal::connect(&JournalSettings {
        timescale: TimescaleMode::Off,
        ..timescale_settings(&url)
    })
    .await
    .expect("connect");
    assert_eq!(j.layout(), Layout::PlainPostgres);
    let Journal::Postgres(pg) = &j else {
        unreachable!()
    };
    let hypertables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM timescaledb_information.hypertables")
            .fetch_one(pg.pool())
            .await
            .unwrap();
    assert_eq!(hypertables, 0);
    pg.pool().close().await;
}

/// The history query shapes the API produces.
fn api_query_shapes(now: DateTime<Utc>) -> Vec<SnapshotQuery> {
    let base = all(100);
    vec![
        base.clone(),
        SnapshotQuery {
            kind: Some(topics::KAFKA_READINESS.into()),
            ..base.clone()
        },
        SnapshotQuery {
            service: Some("svc-7".into()),
            ..base.clone()
        },
        SnapshotQuery {
            since: Some(now - Duration::hours(2)),
            until: Some(now - Duration::hours(1)),
            ..base.clone()
        },
        SnapshotQuery {
            kind: Some(topics::INGEST_TRENDS.into()),
            until: Some(now - Duration::days(3)),
            limit: 1000,
            ..base
        },
    ]
}

/// Asserts the plan reads an index in order and sorts nothing in full.
fn assert_index_served(plan: &str, q: &SnapshotQuery) {
    assert!(
        plan.contains("Index Scan") || plan.contains("Index Only Scan"),
        "{q:?} is not served from an index:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "{q:?} scans the table:\n{plan}");
    let full_sort = plan.lines().any(|l| {
        l.trim_start()
            .trim_start_matches("->  ")
            .starts_with("Sort ")
    });
    assert!(!full_sort, "{q:?} sorts the table:\n{plan}");
}

#[tokio::test]
async fn history_queries_are_index_served_on_a_million_rows() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let j = Journal::connect(&settings(&db)).await.expect("connect");
    assert_eq!(j.layout(), Layout::PlainPostgres);
    let Journal::Postgres(pg) = &j else {
        unreachable!()
    };
    // a million rows over 30 days, generated server-side (small bodies: the plan is the point)
    let mut raw = raw_connection(&db).await;
    sqlx::query(
        "INSERT INTO telemetry_snapshots (id, kind, service, instance, status, generated_at, \
           received_at, summary, body) \
         SELECT gen_random_uuid(), \
                (ARRAY['telemetry.kafka.readiness','telemetry.ingest.trends','telemetry.retention'])[1 + i % 3], \
                'svc-' || (i % 50), 'i' || (i % 4), 'ok', \
                now() - make_interval(secs => i * 2.6), now(), 'fine', '{}'::jsonb \
         FROM generate_series(1, 1000000) AS i",
    )
    .execute(&mut raw)
    .await
    .expect("generate a million rows");
    sqlx::query("ANALYZE telemetry_snapshots")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();
    for q in api_query_shapes(Utc::now()) {
        let plan = pg.explain_history(&q).await.expect("explain");
        assert_index_served(&plan, &q);
    }
}

#[tokio::test]
async fn timescale_history_queries_are_index_served() {
    let url = timescale_url();
    let _turn = TIMESCALE.lock().await;
    reset_timescale(&url).await;
    // no statement timeout: the rows are generated over the journal's own (only) connection
    let j = Journal::connect(&JournalSettings {
        statement_timeout_ms: 0,
        ..timescale_settings(&url)
    })
    .await
    .expect("connect");
    assert!(matches!(j.layout(), Layout::Timescale { .. }));
    let Journal::Postgres(pg) = &j else {
        unreachable!()
    };
    // fewer rows than on PostgreSQL (WASM speed), spread over ten daily chunks
    sqlx::query(
        "INSERT INTO telemetry_snapshots (id, kind, service, instance, status, generated_at, \
           received_at, summary, body) \
         SELECT gen_random_uuid(), \
                (ARRAY['telemetry.kafka.readiness','telemetry.ingest.trends','telemetry.retention'])[1 + i % 3], \
                'svc-' || (i % 50), 'i' || (i % 4), 'ok', \
                now() - make_interval(secs => i * 17.28), now(), 'fine', '{}'::jsonb \
         FROM generate_series(1, 50000) AS i",
    )
    .execute(pg.pool())
    .await
    .expect("generate rows");
    sqlx::query("ANALYZE telemetry_snapshots")
        .execute(pg.pool())
        .await
        .unwrap();
    for q in api_query_shapes(Utc::now()) {
        let plan = pg.explain_history(&q).await.expect("explain");
        assert_index_served(&plan, &q);
    }
    pg.pool().close().await;
}

/// Connections of the ingress writer to the database at `url`.
async fn writer_connections(url: &str) -> i64 {
    let mut conn = raw_connection(url).await;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = 'telemesh-aggregator-writer' AND datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_activity");
    conn.close().await.expect("close");
    n
}

/// The journal actor runs on a thread of its own and writes through one connection of its own
/// (opened by that thread's runtime on the first write): batches keep going through it, and
/// stopping the aggregator closes it.
#[actix_rt::test]
async fn the_ingress_writer_has_one_connection_of_its_own_closed_on_stop() {
    use std::time::Duration as StdDuration;
    use telemesh_core::Encoding;
    use telemesh_integration_tests::fixtures::{
        aggregator_settings, create_topics, kafka_aggregator, kafka_publisher, wait_for_rows,
    };
    use telemesh_integration_tests::wait_until;

    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 1).await;
    let db = env.fresh_database(&ns).await;
    let aggregator = kafka_aggregator(&kafka, &db, &aggregator_settings()).await;
    assert_eq!(
        writer_connections(&db).await,
        0,
        "opened on the first write"
    );
    let publisher = kafka_publisher(&kafka, Encoding::Bincode);
    // (snapshots to publish, journal rows then)
    for (round, (publish, rows)) in [(1, 1), (2, 3)].into_iter().enumerate() {
        for i in 0..publish {
            let s = snapshot(
                topics::KAFKA_READINESS,
                &format!("svc-{round}-{i}"),
                "i1",
                Grade::Ok,
            );
            publisher.publish(&s).await.expect("publish");
        }
        wait_for_rows(&db, rows, StdDuration::from_secs(30)).await;
        assert_eq!(writer_connections(&db).await, 1, "round {round}");
    }
    aggregator.stop().await;
    wait_until(
        "the writer connection closed",
        StdDuration::from_secs(10),
        || {
            let db = db.clone();
            async move { (writer_connections(&db).await == 0).then_some(()) }
        },
    )
    .await;
}
