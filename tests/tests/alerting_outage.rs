//! Alerting through a journal outage longer than the stale window: PostgreSQL is stopped
//! while three sources keep reporting. One cause alert ("journal down") pages and resolves on
//! recovery; no source pages as stale. Its own test binary, because stopping the shared
//! server would break concurrent tests.

use std::sync::Arc;
use std::time::Duration;

use telemesh_aggregator::{subscribed_topics, Aggregator, AlertingParts, TransportParts};
use telemesh_alerting::actor::SystemClock;
use telemesh_alerting::{AlertingSettings, ChannelSettings};
use telemesh_core::config::Secret;
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fake_http::FakeReceiver;
use telemesh_integration_tests::fixtures::{aggregator_settings, pg_journal, snapshot};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};

struct RestartPostgres(TestEnv);

impl Drop for RestartPostgres {
    fn drop(&mut self) {
        // whatever happened, leave PostgreSQL running for whoever comes next
        self.0.dev_services("pg-start");
    }
}

#[actix_rt::test]
async fn a_journal_outage_longer_than_the_stale_window_pages_one_cause_not_a_storm() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let receiver = FakeReceiver::start();
    let settings = AlertingSettings {
        group_wait_seconds: 0.2,
        tick_ms: 50,
        retry_initial_seconds: 0.1,
        retry_max_seconds: 0.5,
        leader_poll_ms: 200,
        channels: vec![ChannelSettings {
            name: "ops".into(),
            kind: "webhook".into(),
            url: Secret::new(format!("{}/hook", receiver.url)),
            timeout_ms: 1_000,
            ..ChannelSettings::default()
        }],
        ..AlertingSettings::default()
    };
    let bus = InProcessBus::new(64, subscribed_topics(""));
    let subscriber = bus.subscriber().unwrap();
    let aggregator = Aggregator::start_with(
        &aggregator_settings(),
        "127.0.0.1:0",
        "",
        pg_journal(&db).await,
        TransportParts::in_process(subscriber, bus.publisher()),
        Some(AlertingParts {
            settings,
            env: Default::default(),
            clock: Arc::new(SystemClock),
        }),
    )
    .await
    .unwrap();
    let publisher = SnapshotPublisher::new(bus.publisher(), Encoding::Json, "");
    // three sources reporting every 0.5 s: stale after 1.5 s of silence
    let beating = actix_rt::spawn(async move {
        loop {
            for instance in ["a", "b", "c"] {
                let mut s = snapshot(topics::INGEST_TRENDS, "ingest", instance, Grade::Ok);
                s.metric("interval_seconds", 0.5);
                let _ = publisher.publish(&s).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received().is_empty(), "steady state pages nothing");

    let restart = RestartPostgres(env.clone());
    env.dev_services("pg-stop");
    // the cause pages while the journal is down (the page does not need the database)
    let opened = wait_until("the cause alert", Duration::from_secs(30), || {
        let got = receiver.received();
        async move { (!got.is_empty()).then_some(got) }
    })
    .await;
    assert_eq!(opened[0].body["event"], "open");
    assert_eq!(opened[0].body["alert"]["kind"], "telemesh.aggregator");
    assert!(
        opened[0].body["alert"]["summary"]
            .as_str()
            .unwrap()
            .contains("journal down"),
        "{:?}",
        opened[0].body
    );
    // longer than the stale window, several times over
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop(restart);
    let all = wait_until("the cause alert resolved", Duration::from_secs(60), || {
        let got = receiver.received();
        async move { (got.len() >= 2).then_some(got) }
    })
    .await;
    assert_eq!(all[1].body["event"], "resolve");
    assert_eq!(all[1].body["alert"]["kind"], "telemesh.aggregator");
    // caught up: still no staleness page
    tokio::time::sleep(Duration::from_secs(4)).await;
    let events: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            (
                r.body["event"].as_str().unwrap_or_default().to_owned(),
                r.body["alert"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("open".to_owned(), "telemesh.aggregator".to_owned()),
            ("resolve".to_owned(), "telemesh.aggregator".to_owned())
        ],
        "one cause alert, no staleness storm"
    );
    beating.abort();
    aggregator.stop().await;
}
