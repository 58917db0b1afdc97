//! Poison input: undecodable messages go to `telemetry.dlq` with Kafka Connect-style error
//! headers, and the aggregator keeps consuming.

use std::time::Duration;

use telemesh_aggregator::ingress::DLQ_HEADER_PREFIX;
use telemesh_core::transport::OutboundMessage;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, read_topic, snapshot, KafkaTestbed,
};

#[actix_rt::test]
async fn garbage_and_unknown_content_types_are_dead_lettered_and_consumption_goes_on() {
    let bed = KafkaTestbed::start(1, &aggregator_settings(), Encoding::Bincode).await;
    let topic = topics::topic_name(&bed.kafka.topic_prefix, topics::KAFKA_READINESS);
    let raw = |content_type: Option<&str>, payload: &[u8]| OutboundMessage {
        topic: topic.clone(),
        key: Some("evil/1".into()),
        headers: content_type
            .map(|ct| vec![("content-type".to_owned(), ct.as_bytes().to_vec())])
            .unwrap_or_default(),
        payload: payload.to_vec(),
    };
    let garbage = bed
        .transport
        .publish(raw(
            Some("application/vnd.telemesh.snapshot.v1+bincode"),
            &[0xde, 0xad, 0xbe, 0xef],
        ))
        .await
        .unwrap();
    for (content_type, payload) in [
        (Some("text/plain"), &b"hello"[..]),
        (None, b"{}"),
        (Some("application/vnd.telemesh.snapshot.v9+json"), b"{}"),
    ] {
        bed.transport
            .publish(raw(content_type, payload))
            .await
            .unwrap();
    }
    bed.publisher
        .publish(&snapshot(
            topics::KAFKA_READINESS,
            "kafka-readiness",
            "a",
            Grade::Ok,
        ))
        .await
        .unwrap();
    // the good snapshot after the poison is journaled: consumption went on
    bed.wait_for_rows(1, Duration::from_secs(30)).await;

    let dlq_topic = topics::topic_name(&bed.kafka.topic_prefix, topics::DLQ);
    let dlq = read_topic(&bed.kafka, &dlq_topic, 4, Duration::from_secs(30)).await;
    assert_eq!(dlq.len(), 4, "four dead letters");
    let header = |i: usize, name: &str| {
        dlq[i]
            .header(&format!("{DLQ_HEADER_PREFIX}{name}"))
            .map(str::to_owned)
    };
    assert_eq!(header(0, "topic").as_deref(), Some(topic.as_str()));
    assert_eq!(header(0, "partition").as_deref(), Some("0"));
    assert_eq!(header(0, "offset"), Some(garbage.offset.to_string()));
    assert_eq!(
        header(0, "exception.class.name").as_deref(),
        Some("malformed")
    );
    assert_eq!(
        header(1, "exception.class.name").as_deref(),
        Some("unknown_content_type")
    );
    assert_eq!(
        header(2, "exception.class.name").as_deref(),
        Some("missing_content_type")
    );
    assert_eq!(
        header(3, "exception.class.name").as_deref(),
        Some("unsupported_version")
    );
    assert!(header(1, "exception.message")
        .unwrap()
        .contains("text/plain"));
    assert_eq!(
        dlq[0].payload,
        vec![0xde, 0xad, 0xbe, 0xef],
        "the original payload is kept"
    );
    assert_eq!(dlq[0].key.as_deref(), Some(&b"evil/1"[..]));

    let metrics = reqwest::get(format!("http://{}/metrics", bed.aggregator.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "telemesh_aggregator_dead_letters_total{kind=\"telemetry.kafka.readiness\",reason=\"malformed\"} 1"
        ),
        "{metrics}"
    );
    assert_eq!(
        bed.aggregator.ingress_status.lock().unwrap().dead_lettered,
        4
    );
    bed.aggregator.stop().await;
}
