//! Exactly-once effect: duplicate deliveries and an aggregator restart mid-stream against
//! real Kafka and PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use telemesh_aggregator::AggregatorSettings;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, journal_counts, kafka_aggregator, pg_journal, snapshot, wait_for_rows,
    KafkaTestbed,
};
use telemesh_integration_tests::wait_until;

#[actix_rt::test]
async fn the_same_snapshot_delivered_twice_gives_one_row() {
    let bed = KafkaTestbed::start(1, &aggregator_settings(), Encoding::Bincode).await;
    let s = snapshot(topics::KAFKA_READINESS, "kafka-readiness", "a", Grade::Ok);
    bed.publisher.publish(&s).await.unwrap();
    bed.publisher.publish(&s).await.unwrap();
    let marker = snapshot(topics::KAFKA_READINESS, "kafka-readiness", "b", Grade::Ok);
    bed.publisher.publish(&marker).await.unwrap();

    // both copies and the marker were consumed, and only two rows exist
    let status = Arc::clone(&bed.aggregator.ingress_status);
    wait_until("three messages consumed", Duration::from_secs(30), || {
        let consumed = status.lock().unwrap().consumed;
        async move { (consumed >= 3).then_some(()) }
    })
    .await;
    assert_eq!(journal_counts(&bed.db).await, (2, 2));
    let st = bed.aggregator.ingress_status.lock().unwrap().clone();
    assert_eq!((st.journaled, st.duplicates), (2, 1), "{st:?}");
    bed.aggregator.stop().await;
}

#[actix_rt::test]
async fn a_restart_mid_stream_journals_every_snapshot_exactly_once() {
    const TOTAL: usize = 1500;
    let settings = AggregatorSettings {
        batch_size: 50,
        ..aggregator_settings()
    };
    let bed = KafkaTestbed::start(3, &settings, Encoding::Json).await;
    let kinds = [
        topics::KAFKA_READINESS,
        topics::INGEST_TRENDS,
        topics::RETENTION,
    ];
    let stream: Vec<_> = (0..TOTAL)
        .map(|i| {
            snapshot(
                kinds[i % kinds.len()],
                "svc",
                &format!("i{}", i % 7),
                Grade::Ok,
            )
        })
        .collect();
    let ids: HashSet<_> = stream.iter().map(|s| s.id).collect();
    let producer = {
        let publisher = bed.publisher.clone();
        let stream = stream.clone();
        actix_rt::spawn(async move {
            for s in &stream {
                publisher.publish(s).await.expect("publish");
            }
        })
    };

    // stop the aggregator once part of the stream is journaled, while the rest still flows
    let db = bed.db.clone();
    wait_until("some snapshots journaled", Duration::from_secs(60), || {
        let db = db.clone();
        async move { (journal_counts(&db).await.0 >= 200).then_some(()) }
    })
    .await;
    bed.aggregator.stop().await;
    let at_stop = journal_counts(&db).await.0;
    assert!(
        at_stop < TOTAL as i64,
        "the stop came too late to test a restart: {at_stop}"
    );

    let second = kafka_aggregator(&bed.kafka, &db, &settings).await;
    producer.await.unwrap();
    wait_for_rows(&db, TOTAL as i64, Duration::from_secs(120)).await;
    // give a replay the chance to show up as extra rows
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(journal_counts(&db).await, (TOTAL as i64, TOTAL as i64));

    let telemesh_aggregator::Journal::Postgres(pg) = pg_journal(&db).await else {
        unreachable!("a postgres url opens the postgres journal")
    };
    let stored: HashSet<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM telemetry_snapshots")
        .fetch_all(pg.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, ids, "journal holds exactly the published ids");
    second.stop().await;
}
