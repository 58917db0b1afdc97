//! Journal outage: PostgreSQL is stopped while snapshots flow over Kafka. Readiness turns 503,
//! nothing crashes, consumption pauses; after PostgreSQL returns every snapshot lands.
//! Its own test binary, because stopping the shared server would break concurrent tests.

use std::sync::Arc;
use std::time::Duration;

use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, journal_counts, snapshot, KafkaTestbed,
};
use telemesh_integration_tests::{wait_until, TestEnv};

struct RestartPostgres(TestEnv);

impl Drop for RestartPostgres {
    fn drop(&mut self) {
        // whatever happened, leave PostgreSQL running for whoever comes next
        self.0.dev_services("pg-start");
    }
}

async fn publish(publisher: &SnapshotPublisher, label: &str, n: usize, grade: Grade) {
    for i in 0..n {
        let s = snapshot(
            topics::KAFKA_READINESS,
            "svc",
            &format!("{label}{i}"),
            grade,
        );
        publisher.publish(&s).await.unwrap();
    }
}

async fn wait_for_ready(url: &str, want: u16) {
    wait_until(
        &format!("/health/ready to answer {want}"),
        Duration::from_secs(30),
        || async move {
            let got = reqwest::get(url)
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (got == want).then_some(())
        },
    )
    .await;
}

#[actix_rt::test]
async fn a_journal_outage_pauses_consumption_and_loses_nothing() {
    let bed = KafkaTestbed::start(1, &aggregator_settings(), Encoding::Bincode).await;
    let ready_url = format!("http://{}/health/ready", bed.aggregator.http_addr);

    publish(&bed.publisher, "before", 20, Grade::Ok).await;
    bed.wait_for_rows(20, Duration::from_secs(30)).await;
    wait_for_ready(&ready_url, 200).await;

    let env = TestEnv::get();
    env.dev_services("pg-stop");
    let guard = RestartPostgres(env);
    publish(&bed.publisher, "during", 30, Grade::Warn).await;
    wait_for_ready(&ready_url, 503).await;
    let status = Arc::clone(&bed.aggregator.ingress_status);
    wait_until(
        "consumption paused with the loop alive",
        Duration::from_secs(30),
        || {
            let s = status.lock().unwrap().clone();
            async move { (s.paused && s.running).then_some(()) }
        },
    )
    .await;
    let live = reqwest::get(format!("http://{}/health/live", bed.aggregator.http_addr))
        .await
        .unwrap();
    assert_eq!(live.status(), 200, "the process is alive during the outage");

    drop(guard); // pg-start
    publish(&bed.publisher, "after", 10, Grade::Ok).await;
    bed.wait_for_rows(60, Duration::from_secs(60)).await;
    wait_for_ready(&ready_url, 200).await;
    assert_eq!(journal_counts(&bed.db).await, (60, 60));
    bed.aggregator.stop().await;
}
