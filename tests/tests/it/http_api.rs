//! The HTTP API over real sockets: bad input answers 400 with a JSON error, the summary and
//! history answer in JSON and Markdown. Runs on the in-process transport with a PostgreSQL
//! journal, so it exercises the same API as production without Kafka.

use std::time::Duration;

use serde_json::Value;
use telemesh_aggregator::{subscribed_topics, Aggregator, TransportParts};
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{aggregator_settings, pg_journal, snapshot};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};

async fn start() -> (Aggregator, SnapshotPublisher) {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    start_on(&db, &aggregator_settings()).await
}

async fn start_on(
    db: &str,
    settings: &telemesh_aggregator::AggregatorSettings,
) -> (Aggregator, SnapshotPublisher) {
    let bus = InProcessBus::new(64, subscribed_topics(""));
    let subscriber = bus.subscriber().unwrap();
    let aggregator = Aggregator::start(
        settings,
        "127.0.0.1:0",
        "",
        pg_journal(db).await,
        TransportParts::in_process(subscriber, bus.publisher()),
    )
    .await
    .unwrap();
    (
        aggregator,
        SnapshotPublisher::new(bus.publisher(), Encoding::Json, ""),
    )
}

async fn get(aggregator: &Aggregator, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{}{}", aggregator.http_addr, path))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[actix_rt::test]
async fn bad_queries_answer_400_with_a_json_error() {
    let (aggregator, _) = start().await;
    for (path, code) in [
        ("/api/v1/snapshots?since=yesterday", "invalid_time"),
        ("/api/v1/snapshots?limit=-1", "invalid_limit"),
        ("/api/v1/snapshots?kind=telemetry.unknown", "unknown_kind"),
        ("/api/v1/snapshots?colour=blue", "unknown_parameter"),
        ("/api/v1/snapshots?limit=%zz", "invalid_limit"),
        ("/api/v1/summary?format=xml", "invalid_format"),
    ] {
        let (status, body) = get(&aggregator, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        assert_eq!(json["error"], code, "{path}: {body}");
        assert!(
            json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{path}: {body}"
        );
    }
    let (status, body) = get(&aggregator, "/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "not_found"
    );
    aggregator.stop().await;
}

#[actix_rt::test]
async fn summary_history_and_health_reflect_what_was_journaled() {
    let (aggregator, publisher) = start().await;
    let (status, body) = get(&aggregator, "/api/v1/summary").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "warn",
        "nothing reported yet is not ok"
    );

    let failing = snapshot(topics::INGEST_TRENDS, "ingest", "a", Grade::Fail);
    publisher
        .publish(&snapshot(
            topics::KAFKA_READINESS,
            "kafka-readiness",
            "a",
            Grade::Ok,
        ))
        .await
        .unwrap();
    publisher.publish(&failing).await.unwrap();
    let addr = aggregator.http_addr;
    let summary: Value = wait_until(
        "both domains in the summary",
        Duration::from_secs(10),
        || async move {
            let body = reqwest::get(format!("http://{addr}/api/v1/summary"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let json: Value = serde_json::from_str(&body).ok()?;
            (json["domains"].as_object()?.len() == 2).then_some(json)
        },
    )
    .await;
    assert_eq!(summary["status"], "fail");
    let block = &summary["domains"][topics::INGEST_TRENDS];
    assert_eq!(block["status"], "fail");
    assert_eq!(block["stale"], false);
    assert!(block["age_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(block["snapshot"]["id"], failing.id.to_string());
    assert!(block["markdown"].as_str().unwrap().contains("FAIL"));

    let (status, md) = get(&aggregator, "/api/v1/summary?format=markdown").await;
    assert_eq!(status, 200);
    assert!(md.starts_with("# telemesh runtime summary: FAIL"), "{md}");

    let (status, body) = get(
        &aggregator,
        &format!("/api/v1/snapshots?kind={}&limit=5", topics::INGEST_TRENDS),
    )
    .await;
    assert_eq!(status, 200);
    let history: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(history["count"], 1);
    assert_eq!(
        history["snapshots"][0]["snapshot"]["id"],
        failing.id.to_string()
    );

    let (status, body) = get(&aggregator, "/api/v1/snapshots/latest").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["count"], 2);

    // a failing domain makes graded health 503; liveness and readiness stay up
    assert_eq!(get(&aggregator, "/health").await.0, 503);
    assert_eq!(get(&aggregator, "/health/live").await.0, 200);
    assert_eq!(get(&aggregator, "/health/ready").await.0, 200);
    let (_, metrics) = get(&aggregator, "/metrics").await;
    assert!(
        metrics.contains("telemesh_domain_grade{kind=\"telemetry.ingest.trends\"} 2"),
        "{metrics}"
    );
    aggregator.stop().await;
}

#[actix_rt::test]
async fn replicas_that_refresh_from_the_journal_show_each_others_snapshots() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let settings = telemesh_aggregator::AggregatorSettings {
        summary_refresh_seconds: 1,
        ..aggregator_settings()
    };
    let (a, publisher_a) = start_on(&db, &settings).await;
    let (b, _) = start_on(&db, &settings).await;
    // only replica a consumes this snapshot (think: its partition)
    let s = snapshot(topics::RETENTION, "ingest", "a", Grade::Warn);
    publisher_a.publish(&s).await.unwrap();
    let addr = b.http_addr;
    let block: Value = wait_until(
        "replica b shows the snapshot replica a journaled",
        Duration::from_secs(15),
        || async move {
            let body = reqwest::get(format!("http://{addr}/api/v1/summary"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let json: Value = serde_json::from_str(&body).ok()?;
            let block = json["domains"][topics::RETENTION].clone();
            block.is_object().then_some(block)
        },
    )
    .await;
    assert_eq!(block["snapshot"]["id"], s.id.to_string());
    a.stop().await;
    b.stop().await;
}
