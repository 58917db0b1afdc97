//! Event-bus health over the real transports: the in-process bus (a full channel, a waiting
//! publisher, dead letters, a stopped consumer), real Kafka (`TELEMESH_TEST_KAFKA_BROKERS`,
//! librdkafka statistics with the broker UP) and a Kafka outage (a broker address that
//! refuses connections: publishes fail, no broker is UP). Timings are not asserted: round-trip
//! thresholds are set out of reach.

use std::sync::Arc;
use std::time::Duration;

use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::kafka::KafkaPublisher;
use telemesh_core::transport::{OutboundMessage, Publisher, Subscriber as _};
use telemesh_core::{topics, Grade, Snapshot, Source};
use telemesh_event_bus::evaluate::{ACTIVITY, BROKERS, DELIVERY, HANDLERS, QUEUE, RUNNING};
use telemesh_event_bus::{EventBusDomain, EventBusSettings, KIND};
use telemesh_service::{Domain, Evaluation};

fn settings() -> EventBusSettings {
    EventBusSettings {
        rtt_warn_ms: 600_000.0,
        rtt_fail_ms: 600_000.0,
        ..EventBusSettings::default()
    }
}

fn message(topic: &str) -> OutboundMessage {
    OutboundMessage {
        topic: topic.into(),
        key: Some("it/1".into()),
        headers: vec![],
        payload: b"{}".to_vec(),
    }
}

async fn gather_and_grade(domain: &mut EventBusDomain) -> Snapshot {
    let state = domain.gather().await;
    let at = Evaluation {
        source: Source::new("event-bus", "it"),
        now: chrono::Utc::now(),
    };
    let mut snapshots = domain.evaluate(&state, &at);
    assert_eq!(snapshots.len(), 1);
    let s = snapshots.remove(0);
    s.validate().expect("valid snapshot");
    assert_eq!(s.kind, KIND);
    s
}

fn status(s: &Snapshot, name: &str) -> Grade {
    s.component(name)
        .unwrap_or_else(|| panic!("{name} missing: {:#?}", s.components))
        .status
}

#[tokio::test]
async fn the_in_process_bus_full_waiting_dead_letters_and_a_stopped_consumer() {
    let bus = InProcessBus::new(4, ["t"]);
    let publisher = bus.publisher();
    let mut domain = EventBusDomain::new(settings(), Arc::clone(&publisher));

    let s = gather_and_grade(&mut domain).await;
    assert_eq!(status(&s, HANDLERS), Grade::Warn, "no consumer yet");
    assert_eq!(status(&s, ACTIVITY), Grade::Warn, "nothing published yet");

    let mut subscriber = bus.subscriber().expect("subscriber");
    for _ in 0..4 {
        publisher
            .publish(message("t"))
            .await
            .expect("room in the channel");
    }
    let waiting = {
        let publisher = Arc::clone(&publisher);
        tokio::spawn(async move { publisher.publish(message("t")).await })
    };
    for _ in 0..500 {
        if publisher.stats().map(|s| s.in_flight) == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = gather_and_grade(&mut domain).await;
    assert_eq!(
        status(&s, QUEUE),
        Grade::Fail,
        "4 of 4: {:#?}",
        s.component(QUEUE)
    );
    assert_eq!(s.metrics["in_flight"], 1.0);
    assert_eq!(status(&s, HANDLERS), Grade::Ok);
    assert_eq!(status(&s, RUNNING), Grade::Ok);

    // the consumer drains; one message is dead-lettered
    for _ in 0..5 {
        subscriber
            .poll(Duration::from_secs(5))
            .await
            .expect("poll")
            .expect("a message");
    }
    waiting
        .await
        .expect("join")
        .expect("delivered once there was room");
    publisher.publish(message(topics::DLQ)).await.expect("dlq");
    let s = gather_and_grade(&mut domain).await;
    assert_eq!(status(&s, QUEUE), Grade::Ok);
    assert_eq!(
        status(&s, HANDLERS),
        Grade::Warn,
        "{:#?}",
        s.component(HANDLERS)
    );
    // nothing new since: back to ok
    let s = gather_and_grade(&mut domain).await;
    assert_eq!(status(&s, HANDLERS), Grade::Ok);

    // the consumer stops: publishes fail, the bus is not running
    subscriber.close().await.expect("close");
    drop(subscriber);
    assert!(publisher.publish(message("t")).await.is_err());
    let s = gather_and_grade(&mut domain).await;
    assert_eq!(status(&s, RUNNING), Grade::Fail);
    assert_eq!(status(&s, DELIVERY), Grade::Warn);
    assert_eq!(s.status, Grade::Fail);
}

fn kafka_settings(brokers: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: brokers.into(),
        message_timeout_ms: 3000,
        ..KafkaSettings::default()
    }
}

/// Waits until librdkafka has emitted statistics (every 5 s, up to 60 s), then gathers once.
async fn with_statistics(publisher: &Arc<dyn Publisher>, domain: &mut EventBusDomain) -> Snapshot {
    for _ in 0..120 {
        if publisher.stats().and_then(|s| s.stats_at).is_some() {
            let s = gather_and_grade(domain).await;
            assert!(s.metrics.contains_key("brokers_up"), "{:#?}", s.components);
            return s;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("librdkafka emitted no statistics within 60 s");
}

#[tokio::test]
async fn real_kafka_brokers_up_with_statistics() {
    let brokers = std::env::var("TELEMESH_TEST_KAFKA_BROKERS").expect(
        "TELEMESH_TEST_KAFKA_BROKERS is not set: run `deploy/local/dev-services up` and source its env file",
    );
    let publisher: Arc<dyn Publisher> =
        Arc::new(KafkaPublisher::new(&kafka_settings(&brokers)).expect("producer"));
    let topic = format!("it-event-bus-{}", uuid_like());
    for _ in 0..3 {
        publisher.publish(message(&topic)).await.expect("delivered");
    }
    let mut domain = EventBusDomain::new(settings(), Arc::clone(&publisher));
    let s = with_statistics(&publisher, &mut domain).await;
    assert!(
        s.metrics["brokers_up"] >= 1.0,
        "{:#?}",
        s.component(BROKERS)
    );
    assert_eq!(status(&s, RUNNING), Grade::Ok);
    assert_eq!(
        status(&s, BROKERS),
        Grade::Ok,
        "{:#?}",
        s.component(BROKERS)
    );
    assert_eq!(status(&s, DELIVERY), Grade::Ok);
    assert_eq!(s.metrics["published_total"], 3.0);
    assert_eq!(s.status, Grade::Ok, "{:#?}", s.components);
    let stats = publisher.stats().expect("kafka stats");
    assert!(stats.brokers.iter().any(|b| b.state == "UP"));
    assert_eq!(stats.queue_capacity, Some(100_000));
}

#[tokio::test]
async fn a_kafka_outage_fails_publishes_and_leaves_no_broker_up() {
    // nothing listens on port 1: every connection is refused
    let publisher: Arc<dyn Publisher> =
        Arc::new(KafkaPublisher::new(&kafka_settings("127.0.0.1:1")).expect("producer"));
    let mut domain = EventBusDomain::new(settings(), Arc::clone(&publisher));
    let result = publisher.publish(message("it-outage")).await;
    assert!(result.is_err(), "nothing can be delivered: {result:?}");
    let s = with_statistics(&publisher, &mut domain).await;
    assert_eq!(s.metrics["brokers_up"], 0.0);
    assert_eq!(status(&s, RUNNING), Grade::Fail, "{:#?}", s.components);
    assert_eq!(
        status(&s, DELIVERY),
        Grade::Warn,
        "{:#?}",
        s.component(DELIVERY)
    );
    assert!(
        s.summary.contains("telemetry will be dropped"),
        "{}",
        s.summary
    );
}

#[actix::test]
async fn the_domain_runs_beside_others_on_the_framework() {
    let bus = InProcessBus::new(16, ["t"]);
    let _subscriber = bus.subscriber().expect("subscriber");
    let service = telemesh_service::testing::TestService::start(EventBusDomain::new(
        EventBusSettings {
            interval_seconds: 3600,
            ..settings()
        },
        bus.publisher(),
    ))
    .expect("start");
    let published = service
        .wait_published(KIND, 1, Duration::from_secs(30))
        .await;
    let s = published.first().expect("an event-bus snapshot");
    assert_eq!(s.source.service, "event-bus");
    assert_eq!(status(s, RUNNING), Grade::Ok);
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}
