//! End to end: the Kafka readiness service probes the real broker and publishes over Kafka; the
//! aggregator journals the snapshot in PostgreSQL and `/api/v1/summary` shows the block.

use std::time::Duration;

use serde_json::Value;
use telemesh_core::{topics, Encoding};
use telemesh_integration_tests::fixtures::{aggregator_settings, journal_counts, KafkaTestbed};
use telemesh_integration_tests::wait_until;
use telemesh_kafka_readiness::{KafkaReadiness, ReadinessSettings};
use telemesh_service::ServiceOptions;

#[actix_rt::test]
async fn kafka_readiness_travels_over_kafka_into_the_journal_and_the_summary() {
    let bed = KafkaTestbed::start(1, &aggregator_settings(), Encoding::Bincode).await;
    let (kafka, aggregator, db) = (&bed.kafka, &bed.aggregator, &bed.db);
    let settings = ReadinessSettings {
        interval_seconds: 1,
        min_publishers: 0,
        ..ReadinessSettings::default()
    };
    let _service = telemesh_service::start(
        KafkaReadiness::new(&settings, kafka),
        ServiceOptions {
            instance: "e2e".into(),
            publisher: bed.publisher.clone(),
            http_addr: None,
        },
    )
    .expect("start the readiness domain");

    let url = format!("http://{}/api/v1/summary", aggregator.http_addr);
    let block: Value = wait_until(
        "kafka readiness in the summary",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let body = reqwest::get(url).await.ok()?.text().await.ok()?;
                let json: Value = serde_json::from_str(&body).ok()?;
                let block = json["domains"][topics::KAFKA_READINESS].clone();
                block.is_object().then_some(block)
            }
        },
    )
    .await;
    let snapshot = &block["snapshot"];
    assert_eq!(snapshot["source"]["service"], "kafka-readiness");
    assert!(
        ["ok", "warn"].contains(&block["status"].as_str().unwrap()),
        "a reachable broker with every topic is not fail: {block}"
    );
    assert_eq!(block["stale"], false);
    assert!(block["age_seconds"].as_f64().unwrap() < 30.0);
    let connection = snapshot["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "connection")
        .expect("connection component");
    assert_eq!(connection["status"], "ok", "{connection}");
    assert!(journal_counts(db).await.0 >= 1);

    // the journaled row carries its Kafka coordinates
    let (status, body) = {
        let r = reqwest::get(format!(
            "http://{}/api/v1/snapshots?kind={}&limit=1",
            aggregator.http_addr,
            topics::KAFKA_READINESS
        ))
        .await
        .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(status, 200);
    let history: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        history["snapshots"][0]["kafka"]["topic"],
        topics::topic_name(&kafka.topic_prefix, topics::KAFKA_READINESS)
    );
    bed.aggregator.stop().await;
}
