//! End-to-end throughput: snapshots per second from publish (Kafka, acks=all) to journal commit
//! (PostgreSQL), through the real aggregator. Needs the dev services:
//! `source <(deploy/local/dev-services env) && cargo bench -p telemesh-integration-tests --bench e2e`
//! Optional: `E2E_SNAPSHOTS=20000` (default 10000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use telemesh_core::transport::kafka::KafkaPublisher;
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, create_topics, journal_counts, kafka_aggregator, snapshot,
};
use telemesh_integration_tests::{namespace, TestEnv};

fn main() {
    let total: usize = std::env::var("E2E_SNAPSHOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    actix_rt::System::new().block_on(run(total));
}

async fn run(total: usize) {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 3).await;
    let db = env.fresh_database(&ns).await;
    let aggregator = kafka_aggregator(&kafka, &db, &aggregator_settings()).await;
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&kafka).expect("publisher"));
    for encoding in [Encoding::Bincode] {
        let publisher =
            SnapshotPublisher::new(Arc::clone(&transport), encoding, kafka.topic_prefix.clone());
        let kinds = [
            topics::KAFKA_READINESS,
            topics::INGEST_TRENDS,
            topics::RETENTION,
        ];
        let stream: Vec<_> = (0..total)
            .map(|i| snapshot(kinds[i % 3], "bench", &format!("i{}", i % 16), Grade::Ok))
            .collect();
        let start = Instant::now();
        for chunk in stream.chunks(1000) {
            let results = join_all(chunk.iter().map(|s| publisher.publish(s))).await;
            assert!(results.iter().all(Result::is_ok), "publish failed");
        }
        let published = start.elapsed();
        loop {
            if journal_counts(&db).await.0 as usize >= total {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "journal did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let journaled = start.elapsed();
        println!(
            "e2e ({}): {total} snapshots; published (acks=all) in {:.2} s = {:.0}/s; publish→journal {:.2} s = {:.0} snapshots/s",
            encoding.as_str(),
            published.as_secs_f64(),
            total as f64 / published.as_secs_f64(),
            journaled.as_secs_f64(),
            total as f64 / journaled.as_secs_f64()
        );
    }
    aggregator.stop().await;
}
