//! Hostile input over real Kafka into real PostgreSQL: records the database refuses, values
//! the decoder refuses, producer clocks in the future and oversized records all end in
//! `telemetry.dlq` with their reason, and the record after each one is journaled.

use std::time::Duration;

use chrono::Utc;
use telemesh_aggregator::ingress::{DLQ_HEADER_PREFIX, DLQ_TRUNCATED_HEADER};
use telemesh_core::codec::MAX_MESSAGE_BYTES;
use telemesh_core::transport::{InboundMessage, OutboundMessage};
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, journal_counts, read_topic, snapshot, KafkaTestbed,
};

const JSON: &str = "application/vnd.telemesh.snapshot.v1+json";

fn header(m: &InboundMessage, name: &str) -> Option<String> {
    m.header(&format!("{DLQ_HEADER_PREFIX}{name}"))
        .map(str::to_owned)
}

async fn raw_json(bed: &KafkaTestbed, key: &str, payload: Vec<u8>) -> i64 {
    let topic = topics::topic_name(&bed.kafka.topic_prefix, topics::KAFKA_READINESS);
    bed.transport
        .publish(OutboundMessage {
            topic,
            key: Some(key.into()),
            headers: vec![("content-type".into(), JSON.as_bytes().to_vec())],
            payload,
        })
        .await
        .expect("publish raw message")
        .offset
}

#[actix_rt::test]
async fn a_record_the_database_refuses_is_dead_lettered_and_its_batch_journaled() {
    let settings = telemesh_aggregator::AggregatorSettings {
        // one batch for all four records: the refusal must be bisected out of it
        batch_linger_ms: 500,
        ..aggregator_settings()
    };
    let bed = KafkaTestbed::start(1, &settings, Encoding::Bincode).await;
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&bed.db).await.unwrap();
        sqlx::query(
            "ALTER TABLE telemetry_snapshots ADD CONSTRAINT no_evil CHECK (service <> 'evil')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let kind = topics::KAFKA_READINESS;
    let good = |i: &str| snapshot(kind, "svc", i, Grade::Ok);
    let evil = snapshot(kind, "evil", "x", Grade::Ok);
    for s in [good("a"), evil.clone(), good("b"), good("c")] {
        bed.publisher.publish(&s).await.unwrap();
    }
    bed.wait_for_rows(3, Duration::from_secs(30)).await;

    let dlq_topic = topics::topic_name(&bed.kafka.topic_prefix, topics::DLQ);
    let dlq = read_topic(&bed.kafka, &dlq_topic, 1, Duration::from_secs(30)).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(header(&dlq[0], "stage").as_deref(), Some("journal"));
    assert_eq!(
        header(&dlq[0], "exception.class.name").as_deref(),
        Some("journal_refused")
    );
    let message = header(&dlq[0], "exception.message").unwrap();
    assert!(message.contains("no_evil"), "{message}");
    assert!(message.contains("23514"), "{message}");
    assert_eq!(header(&dlq[0], "offset").as_deref(), Some("1"));

    // the journal is not "down": readiness stays 200, and the next record goes through
    let ready = reqwest::get(format!("http://{}/health/ready", bed.aggregator.http_addr))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    bed.publisher.publish(&good("d")).await.unwrap();
    bed.wait_for_rows(4, Duration::from_secs(30)).await;
    let status = bed.aggregator.ingress_status.lock().unwrap().clone();
    assert_eq!(status.refused, 1);
    assert_eq!(status.dead_lettered, 1);
    assert!(!status.paused);
    bed.aggregator.stop().await;
}

#[actix_rt::test]
async fn hostile_values_are_dead_lettered_with_their_reason_and_the_next_record_journaled() {
    let bed = KafkaTestbed::start(1, &aggregator_settings(), Encoding::Json).await;
    let kind = topics::KAFKA_READINESS;
    let base = snapshot(kind, "svc", "hostile", Grade::Ok);
    let json = serde_json::to_string(&base).unwrap();
    let summary = format!(
        "\"summary\":{}",
        serde_json::to_string(&base.summary).unwrap()
    );
    assert!(json.contains(&summary));

    let mut future = base.clone();
    future.id = uuid::Uuid::now_v7();
    future.generated_at = Utc::now() + chrono::Duration::hours(1);
    let mut ancient = base.clone();
    ancient.id = uuid::Uuid::now_v7();
    ancient.generated_at = chrono::DateTime::UNIX_EPOCH - chrono::Duration::days(1);
    // bigger than the decoder accepts, small enough for the producer
    let padding = " ".repeat(MAX_MESSAGE_BYTES - 2_000);
    let oversized = format!("{json}{padding}");

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "invalid_text",
            json.replacen(&summary, "\"summary\":\"nul \\u0000 here\"", 1)
                .into_bytes(),
        ),
        (
            "invalid_text",
            json.replacen(&summary, "\"summary\":\"\\ud800\"", 1)
                .into_bytes(),
        ),
        (
            "too_deep",
            json.replacen(
                "\"details\":{}",
                &format!(
                    "\"details\":{{\"k\":{}1{}}}",
                    "[".repeat(5_000),
                    "]".repeat(5_000)
                ),
                1,
            )
            .into_bytes(),
        ),
        ("future_generated_at", serde_json::to_vec(&future).unwrap()),
        ("time_out_of_range", serde_json::to_vec(&ancient).unwrap()),
        ("oversized", oversized.into_bytes()),
    ];
    let mut offsets = Vec::new();
    for (i, (_, payload)) in cases.iter().enumerate() {
        offsets.push(raw_json(&bed, &format!("hostile/{i}"), payload.clone()).await);
    }
    bed.publisher.publish(&base).await.unwrap();
    bed.wait_for_rows(1, Duration::from_secs(30)).await;

    let dlq_topic = topics::topic_name(&bed.kafka.topic_prefix, topics::DLQ);
    let dlq = read_topic(&bed.kafka, &dlq_topic, cases.len(), Duration::from_secs(30)).await;
    assert_eq!(dlq.len(), cases.len());
    for (i, ((reason, payload), m)) in cases.iter().zip(&dlq).enumerate() {
        assert_eq!(
            header(m, "exception.class.name").as_deref(),
            Some(*reason),
            "case {i}: {:?}",
            header(m, "exception.message")
        );
        assert_eq!(header(m, "stage").as_deref(), Some("decode"));
        assert_eq!(header(m, "offset"), Some(offsets[i].to_string()));
        if *reason == "oversized" {
            let original = m.header(DLQ_TRUNCATED_HEADER).expect("truncation header");
            assert_eq!(original, payload.len().to_string());
            assert!(m.payload.len() < payload.len());
            assert_eq!(
                &m.payload[..],
                &payload[..m.payload.len()],
                "a prefix is kept"
            );
        } else {
            assert_eq!(&m.payload, payload, "case {i}: the payload is kept whole");
        }
    }
    assert_eq!(journal_counts(&bed.db).await, (1, 1));
    bed.aggregator.stop().await;
}

#[actix_rt::test]
async fn a_wedged_database_times_out_turns_ready_and_live_503_and_recovers() {
    let settings = telemesh_aggregator::AggregatorSettings {
        journal_write_timeout_ms: 1_000,
        journal_read_timeout_ms: 1_000,
        liveness_stall_seconds: 3,
        shutdown_grace_seconds: 3,
        ..aggregator_settings()
    };
    let bed = KafkaTestbed::start(1, &settings, Encoding::Bincode).await;
    let base = format!("http://{}", bed.aggregator.http_addr);
    let status_of = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            reqwest::get(url)
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let kind = topics::KAFKA_READINESS;
    bed.publisher
        .publish(&snapshot(kind, "svc", "before", Grade::Ok))
        .await
        .unwrap();
    bed.wait_for_rows(1, Duration::from_secs(30)).await;
    assert_eq!(status_of("/health/live").await, 200);

    // wedge the journal: a transaction holds an exclusive lock on the table
    use sqlx::Connection;
    let mut locker = sqlx::PgConnection::connect(&bed.db).await.unwrap();
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE telemetry_snapshots IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    bed.publisher
        .publish(&snapshot(kind, "svc", "during", Grade::Ok))
        .await
        .unwrap();
    telemesh_integration_tests::wait_until("ready 503", Duration::from_secs(30), || async {
        (status_of("/health/ready").await == 503).then_some(())
    })
    .await;
    let last_error = bed
        .aggregator
        .ingress_status
        .lock()
        .unwrap()
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(last_error.contains("did not answer within"), "{last_error}");
    telemesh_integration_tests::wait_until("live 503", Duration::from_secs(30), || async {
        (status_of("/health/live").await == 503).then_some(())
    })
    .await;

    // unwedge: the retried batch lands, liveness and readiness come back
    tx.rollback().await.unwrap();
    bed.wait_for_rows(2, Duration::from_secs(30)).await;
    telemesh_integration_tests::wait_until(
        "live and ready 200",
        Duration::from_secs(30),
        || async {
            (status_of("/health/live").await == 200 && status_of("/health/ready").await == 200)
                .then_some(())
        },
    )
    .await;

    // wedge again and stop: shutdown is bounded by the grace even while writes hang
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE telemetry_snapshots IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    bed.publisher
        .publish(&snapshot(kind, "svc", "at-stop", Grade::Ok))
        .await
        .unwrap();
    telemesh_integration_tests::wait_until("paused", Duration::from_secs(30), || async {
        bed.aggregator
            .ingress_status
            .lock()
            .unwrap()
            .paused
            .then_some(())
    })
    .await;
    let stopped = tokio::time::timeout(Duration::from_secs(30), bed.aggregator.stop()).await;
    assert!(
        stopped.is_ok(),
        "stop() did not return while the journal was wedged"
    );
    tx.rollback().await.unwrap();
    assert_eq!(
        journal_counts(&bed.db).await,
        (2, 2),
        "the unjournaled record stays on the topic"
    );
}

/// Sets `max.message.bytes` of a topic (the broker then refuses larger records).
async fn set_max_message_bytes(
    kafka: &telemesh_core::config::KafkaSettings,
    topic: &str,
    bytes: &str,
) {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .expect("admin client");
    let config = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", bytes);
    let results = admin
        .alter_configs([&config], &AdminOptions::new())
        .await
        .expect("alter topic config");
    for r in results {
        r.expect("alter topic config result");
    }
}

#[actix_rt::test]
async fn a_dead_letter_topic_that_refuses_writes_turns_ready_503_until_it_accepts_them() {
    let bed = KafkaTestbed::start(1, &aggregator_settings(), Encoding::Bincode).await;
    let dlq_topic = topics::topic_name(&bed.kafka.topic_prefix, topics::DLQ);
    set_max_message_bytes(&bed.kafka, &dlq_topic, "64").await;
    let ready = format!("http://{}/health/ready", bed.aggregator.http_addr);
    raw_json(&bed, "junk/1", b"not json".to_vec()).await;
    let body = telemesh_integration_tests::wait_until(
        "ready 503 naming the dead-letter topic",
        Duration::from_secs(60),
        || {
            let ready = ready.clone();
            async move {
                let r = reqwest::get(ready).await.ok()?;
                let code = r.status().as_u16();
                let body = r.text().await.ok()?;
                (code == 503 && body.contains("dead-letter topic refuses writes")).then_some(body)
            }
        },
    )
    .await;
    assert!(body.contains("failures"), "{body}");
    // nothing moves past the record while its dead letter is not written
    bed.publisher
        .publish(&snapshot(
            topics::KAFKA_READINESS,
            "svc",
            "after",
            Grade::Ok,
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(journal_counts(&bed.db).await.0, 0);

    // the operator fixes the topic: the dead letter is written, the next record journaled
    set_max_message_bytes(&bed.kafka, &dlq_topic, "1048588").await;
    bed.wait_for_rows(1, Duration::from_secs(60)).await;
    let dlq = read_topic(&bed.kafka, &dlq_topic, 1, Duration::from_secs(30)).await;
    assert_eq!(dlq.len(), 1);
    telemesh_integration_tests::wait_until("ready 200", Duration::from_secs(30), || {
        let ready = ready.clone();
        async move { (reqwest::get(ready).await.ok()?.status().as_u16() == 200).then_some(()) }
    })
    .await;
    bed.aggregator.stop().await;
}

#[actix_rt::test]
async fn an_operator_may_let_records_go_after_n_failed_dead_letter_writes() {
    let settings = telemesh_aggregator::AggregatorSettings {
        dlq_alert_after_failures: 2,
        dlq_skip_after_failures: 3,
        ..aggregator_settings()
    };
    let bed = KafkaTestbed::start(1, &settings, Encoding::Bincode).await;
    let dlq_topic = topics::topic_name(&bed.kafka.topic_prefix, topics::DLQ);
    set_max_message_bytes(&bed.kafka, &dlq_topic, "64").await;
    raw_json(&bed, "junk/1", b"not json".to_vec()).await;
    bed.publisher
        .publish(&snapshot(
            topics::KAFKA_READINESS,
            "svc",
            "after",
            Grade::Ok,
        ))
        .await
        .unwrap();
    bed.wait_for_rows(1, Duration::from_secs(60)).await;
    let metrics = reqwest::get(format!("http://{}/metrics", bed.aggregator.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("reason=\"lost_dlq_unavailable\"} 1"),
        "{metrics}"
    );
    assert!(bed
        .aggregator
        .ingress_status
        .lock()
        .unwrap()
        .dlq_failing
        .is_none());
    bed.aggregator.stop().await;
}
