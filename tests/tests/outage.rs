//! Journal outage: PostgreSQL is stopped while snapshots flow over Kafka. Readiness turns 503,
//! nothing crashes, consumption pauses; after PostgreSQL returns every snapshot lands.
//! Its own test binary, because stopping the shared server would break concurrent tests.

use std::sync::Arc;
use std::time::Duration;

use telemesh_core::transport::kafka::KafkaPublisher;
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, create_topics, journal_counts, kafka_aggregator, snapshot,
};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};

struct RestartPostgres<'a>(&'a TestEnv);

impl Drop for RestartPostgres<'_> {
    fn drop(&mut self) {
        // whatever happened, leave PostgreSQL running for whoever comes next
        self.0.dev_services("pg-start");
    }
}

#[actix_rt::test]
async fn a_journal_outage_pauses_consumption_and_loses_nothing() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 1).await;
    let db = env.fresh_database(&ns).await;
    let aggregator = kafka_aggregator(&kafka, &db, &aggregator_settings()).await;
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&kafka).unwrap());
    let publisher =
        SnapshotPublisher::new(transport, Encoding::Bincode, kafka.topic_prefix.clone());
    let ready_url = format!("http://{}/health/ready", aggregator.http_addr);
    let ready = |url: String| async move {
        reqwest::get(url)
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };

    for i in 0..20 {
        publisher
            .publish(&snapshot(
                topics::KAFKA_READINESS,
                "svc",
                &format!("before{i}"),
                Grade::Ok,
            ))
            .await
            .unwrap();
    }
    let db_url = db.clone();
    wait_until("the first 20 journaled", Duration::from_secs(30), || {
        let db_url = db_url.clone();
        async move { (journal_counts(&db_url).await.0 == 20).then_some(()) }
    })
    .await;
    assert_eq!(ready(ready_url.clone()).await, 200);

    let guard = RestartPostgres(&env);
    env.dev_services("pg-stop");
    for i in 0..30 {
        publisher
            .publish(&snapshot(
                topics::KAFKA_READINESS,
                "svc",
                &format!("during{i}"),
                Grade::Warn,
            ))
            .await
            .unwrap();
    }
    let url = ready_url.clone();
    wait_until(
        "readiness 503 while the journal is down",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move { (ready(url).await == 503).then_some(()) }
        },
    )
    .await;
    let status = std::sync::Arc::clone(&aggregator.ingress_status);
    wait_until(
        "consumption paused with the loop alive",
        Duration::from_secs(30),
        || {
            let s = status.lock().unwrap().clone();
            async move { (s.paused && s.running).then_some(()) }
        },
    )
    .await;
    assert_eq!(
        reqwest::get(format!("http://{}/health/live", aggregator.http_addr))
            .await
            .unwrap()
            .status(),
        200
    );

    drop(guard); // pg-start
    for i in 0..10 {
        publisher
            .publish(&snapshot(
                topics::KAFKA_READINESS,
                "svc",
                &format!("after{i}"),
                Grade::Ok,
            ))
            .await
            .unwrap();
    }
    let db_url = db.clone();
    wait_until(
        "all 60 journaled after recovery",
        Duration::from_secs(60),
        || {
            let db_url = db_url.clone();
            async move { (journal_counts(&db_url).await.0 == 60).then_some(()) }
        },
    )
    .await;
    let url = ready_url.clone();
    wait_until("ready again", Duration::from_secs(30), || {
        let url = url.clone();
        async move { (ready(url).await == 200).then_some(()) }
    })
    .await;
    assert_eq!(journal_counts(&db).await, (60, 60));
    aggregator.stop().await;
}
