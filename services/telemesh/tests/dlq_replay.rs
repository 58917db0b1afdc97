//! `telemesh dlq replay` against real Kafka and PostgreSQL: a record the journal refused is
//! dead-lettered, the cause is fixed, the replay puts it back on its topic and it is
//! journaled; replaying again adds nothing.

use std::time::Duration;

use telemesh_core::transport::OutboundMessage;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, journal_counts, read_topic, snapshot, KafkaTestbed,
};

async fn replay(bed: &KafkaTestbed, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_telemesh"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TELEMESH__") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .args(["dlq", "replay", "--idle-ms", "2000"])
        .args(args)
        .env("TELEMESH__KAFKA__BROKERS", &bed.kafka.brokers)
        .env("TELEMESH__KAFKA__TOPIC_PREFIX", &bed.kafka.topic_prefix)
        .env("TELEMESH__KAFKA__GROUP_ID", &bed.kafka.group_id)
        .output()
        .await
        .expect("run telemesh dlq replay");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "replay failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[actix_rt::test]
async fn replay_puts_fixed_dead_letters_back_and_nothing_is_doubled() {
    let bed = KafkaTestbed::start(1, &aggregator_settings(), Encoding::Bincode).await;
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&bed.db).await.unwrap();
    sqlx::query("ALTER TABLE telemetry_snapshots ADD CONSTRAINT no_evil CHECK (service <> 'evil')")
        .execute(&mut conn)
        .await
        .unwrap();
    let kind = topics::KAFKA_READINESS;
    bed.publisher
        .publish(&snapshot(kind, "svc", "a", Grade::Ok))
        .await
        .unwrap();
    bed.publisher
        .publish(&snapshot(kind, "evil", "x", Grade::Fail))
        .await
        .unwrap();
    bed.transport
        .publish(OutboundMessage {
            topic: topics::topic_name(&bed.kafka.topic_prefix, kind),
            key: Some("junk/1".into()),
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            payload: b"not a snapshot".to_vec(),
        })
        .await
        .unwrap();
    bed.publisher
        .publish(&snapshot(kind, "svc", "b", Grade::Ok))
        .await
        .unwrap();
    bed.wait_for_rows(2, Duration::from_secs(30)).await;
    let dlq_topic = topics::topic_name(&bed.kafka.topic_prefix, topics::DLQ);
    assert_eq!(
        read_topic(&bed.kafka, &dlq_topic, 2, Duration::from_secs(30))
            .await
            .len(),
        2
    );

    // a dry run publishes nothing
    let out = replay(&bed, &["--reason", "journal_refused", "--dry-run"]).await;
    assert!(out.contains("would replay 1 of 2"), "{out}");

    // fix the cause, replay only what the journal refused
    sqlx::query("ALTER TABLE telemetry_snapshots DROP CONSTRAINT no_evil")
        .execute(&mut conn)
        .await
        .unwrap();
    let out = replay(&bed, &["--reason", "journal_refused"]).await;
    assert!(out.contains("replayed 1 of 2"), "{out}");
    bed.wait_for_rows(3, Duration::from_secs(30)).await;
    let evil: i64 =
        sqlx::query_scalar("SELECT count(*) FROM telemetry_snapshots WHERE service = 'evil'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(evil, 1);

    // replaying everything again: the journaled one is deduplicated, the junk is dead-lettered again
    let out = replay(&bed, &[]).await;
    assert!(out.contains("replayed 2 of 2"), "{out}");
    read_topic(&bed.kafka, &dlq_topic, 3, Duration::from_secs(30)).await;
    let status = std::sync::Arc::clone(&bed.aggregator.ingress_status);
    telemesh_integration_tests::wait_until("the replays consumed", Duration::from_secs(30), || {
        let s = status.lock().unwrap().clone();
        async move { (s.duplicates >= 1 && s.dead_lettered >= 3).then_some(()) }
    })
    .await;
    assert_eq!(journal_counts(&bed.db).await, (3, 3), "nothing doubled");
    bed.aggregator.stop().await;
}
