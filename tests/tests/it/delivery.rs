//! Exactly-once effect: duplicates deliveries and an aggregator restart mid-stream against
//! real Kafka and PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use telemesh_core::transport::kafka::KafkaPublisher;
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, create_topics, journal_counts, kafka_aggregator, snapshot,
};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};

#[actix_rt::test]
async fn the_same_snapshot_delivered_twice_gives_one_row() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 1).await;
    let db = env.fresh_database(&ns).await;
    let aggregator = kafka_aggregator(&kafka, &db, &aggregator_settings()).await;

    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&kafka).unwrap());
    let publisher =
        SnapshotPublisher::new(transport, Encoding::Bincode, kafka.topic_prefix.clone());
    let s = snapshot(topics::KAFKA_READINESS, "kafka-readiness", "a", Grade::Ok);
    publisher.publish(&s).await.unwrap();
    publisher.publish(&s).await.unwrap();
    let marker = snapshot(topics::KAFKA_READINESS, "kafka-readiness", "b", Grade::Ok);
    publisher.publish(&marker).await.unwrap();

    // both copies and the marker were consumed, and only two rows exist
    let status = Arc::clone(&aggregator.ingress_status);
    wait_until("three messages consumed", Duration::from_secs(30), || {
        let consumed = status.lock().unwrap().consumed;
        async move { (consumed >= 3).then_some(()) }
    })
    .await;
    assert_eq!(journal_counts(&db).await, (2, 2));
    let st = aggregator.ingress_status.lock().unwrap().clone();
    assert_eq!((st.journaled, st.duplicates), (2, 1), "{st:?}");
    aggregator.stop().await;
}

#[actix_rt::test]
async fn a_restart_mid_stream_journals_every_snapshot_exactly_once() {
    const TOTAL: usize = 1500;
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 3).await;
    let db = env.fresh_database(&ns).await;
    let settings = telemesh_aggregator::AggregatorSettings {
        batch_size: 50,
        ..aggregator_settings()
    };
    let first = kafka_aggregator(&kafka, &db, &settings).await;

    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&kafka).unwrap());
    let publisher = SnapshotPublisher::new(transport, Encoding::Json, kafka.topic_prefix.clone());
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
        let publisher = publisher.clone();
        let stream = stream.clone();
        actix_rt::spawn(async move {
            for s in &stream {
                publisher.publish(s).await.expect("publish");
            }
        })
    };

    // stop the aggregator once part of the stream is journaled, while the rest still flows
    let db_url = db.clone();
    wait_until("some snapshots journaled", Duration::from_secs(60), || {
        let db_url = db_url.clone();
        async move { (journal_counts(&db_url).await.0 >= 200).then_some(()) }
    })
    .await;
    first.stop().await;
    let at_stop = journal_counts(&db).await.0;
    assert!(
        at_stop < TOTAL as i64,
        "the stop came too late to test a restart: {at_stop}"
    );

    let second = kafka_aggregator(&kafka, &db, &settings).await;
    producer.await.unwrap();
    let db_url = db.clone();
    wait_until("every snapshot journaled", Duration::from_secs(120), || {
        let db_url = db_url.clone();
        async move { (journal_counts(&db_url).await.0 >= TOTAL as i64).then_some(()) }
    })
    .await;
    // give a replay the chance to show up as extra rows
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(journal_counts(&db).await, (TOTAL as i64, TOTAL as i64));

    let journal = telemesh_integration_tests::fixtures::pg_journal(&db).await;
    let telemesh_aggregator::Journal::Postgres(pg) = journal else {
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
