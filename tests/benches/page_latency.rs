//! Time from a domain snapshot turning `fail` to the webhook receiving the page, with
//! `group_wait` at its default (5 s) and at 0, through the real aggregator (in-process
//! transport, PostgreSQL journal). Needs the dev services:
//! `source <(deploy/local/dev-services env) && cargo bench -p telemesh-integration-tests --bench page_latency`

use std::sync::Arc;
use std::time::{Duration, Instant};

use telemesh_aggregator::{subscribed_topics, Aggregator, AlertingParts, TransportParts};
use telemesh_alerting::actor::SystemClock;
use telemesh_alerting::{AlertingSettings, ChannelSettings};
use telemesh_core::config::Secret;
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fake_http::FakeReceiver;
use telemesh_integration_tests::fixtures::{aggregator_settings, pg_journal, snapshot};
use telemesh_integration_tests::{namespace, TestEnv};

fn main() {
    actix_rt::System::new().block_on(async {
        let defaults = AlertingSettings::default();
        for group_wait in [defaults.group_wait_seconds, 0.0] {
            let mut samples = Vec::new();
            for _ in 0..3 {
                samples.push(measure(group_wait).await);
            }
            samples.sort();
            println!(
                "page latency (group_wait {group_wait} s, tick {} ms): median {:.3} s, min {:.3} s, max {:.3} s over {} runs",
                defaults.tick_ms,
                samples[1].as_secs_f64(),
                samples[0].as_secs_f64(),
                samples[2].as_secs_f64(),
                samples.len()
            );
        }
    });
}

async fn measure(group_wait: f64) -> Duration {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let webhook = FakeReceiver::start();
    let settings = AlertingSettings {
        group_wait_seconds: group_wait,
        channels: vec![ChannelSettings {
            name: "webhook".into(),
            kind: "webhook".into(),
            url: Secret::new(webhook.url.clone()),
            ..ChannelSettings::default()
        }],
        ..AlertingSettings::default()
    };
    let bus = InProcessBus::new(64, subscribed_topics(""));
    let subscriber = bus.subscriber().expect("subscriber");
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
    .expect("aggregator");
    let publisher = SnapshotPublisher::new(bus.publisher(), Encoding::Bincode, "");
    let failing = snapshot(topics::INGEST_TRENDS, "ingest", "a", Grade::Fail);
    let start = Instant::now();
    publisher.publish(&failing).await.expect("publish");
    while webhook.received().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no page within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let latency = webhook.received()[0].at - start;
    aggregator.stop().await;
    webhook.stop().await;
    latency
}
