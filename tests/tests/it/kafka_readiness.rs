//! Kafka readiness against the real broker: consumer lag from committed offsets, missing and
//! provisioned topics, recent publishers from end offsets, and an unreachable cluster. Runs on
//! actix's current-thread runtime, like the service.

use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::kafka::{client_config, ensure_topics, TopicSpec};
use telemesh_core::{topics, DetailValue, Encoding, Grade, Snapshot, Source};
use telemesh_integration_tests::fixtures::{kafka_publisher, read_topic};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};
use telemesh_kafka_readiness::{evaluate, KafkaProbe, KafkaReadiness, ReadinessSettings};
use telemesh_service::ServiceOptions;

fn source() -> Source {
    Source::new("kafka-readiness", "it")
}

async fn create(kafka: &KafkaSettings, kinds: &[&str], partitions: i32) -> Vec<String> {
    let specs: Vec<TopicSpec> = kinds
        .iter()
        .map(|kind| TopicSpec {
            name: topics::topic_name(&kafka.topic_prefix, kind),
            partitions,
            replication_factor: 1,
        })
        .collect();
    let report = ensure_topics(kafka, &specs).await.expect("create topics");
    assert!(
        report.failed.is_empty(),
        "topic creation failed: {:?}",
        report.failed
    );
    specs.into_iter().map(|s| s.name).collect()
}

/// Produces `n` messages to partition 0 of `topic`, stamped `age` ago.
async fn produce(kafka: &KafkaSettings, topic: &str, n: usize, age: chrono::Duration) {
    let producer: FutureProducer = client_config(kafka)
        .expect("kafka configured")
        .set("acks", "all")
        .create()
        .expect("producer");
    let timestamp = (Utc::now() - age).timestamp_millis();
    for i in 0..n {
        let payload = format!("message {i}");
        let record = FutureRecord::<str, str>::to(topic)
            .partition(0)
            .payload(&payload)
            .timestamp(timestamp);
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
}

/// Commits `offset` for partition 0 of `topic` as `group`, without joining the group.
async fn commit(kafka: &KafkaSettings, group: &str, topic: &str, offset: i64) {
    let consumer: BaseConsumer = client_config(kafka)
        .expect("kafka configured")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("group consumer");
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(offset))
            .expect("offset");
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    })
    .await
    .expect("commit task");
}

fn component<'a>(snapshot: &'a Snapshot, name: &str) -> &'a telemesh_core::Component {
    snapshot
        .component(name)
        .unwrap_or_else(|| panic!("no {name} component in {snapshot:#?}"))
}

fn list(detail: Option<&DetailValue>) -> Vec<String> {
    match detail {
        Some(DetailValue::List(items)) => items
            .iter()
            .filter_map(|i| match i {
                DetailValue::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        other => panic!("expected a list detail, got {other:?}"),
    }
}

#[actix_rt::test]
async fn consumer_lag_from_committed_offsets_warns_and_fails_per_the_thresholds() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    let topic = create(&kafka, &[topics::FIX_PILOT], 1).await.remove(0);
    produce(&kafka, &topic, 30, chrono::Duration::zero()).await;
    let group = format!("{ns}-lagging");
    let settings = ReadinessSettings {
        topics: vec![topics::FIX_PILOT.into()],
        consumer_groups: vec![group.clone()],
        warn_lag_messages: 10,
        fail_lag_messages: 20,
        min_publishers: 0,
        ..ReadinessSettings::default()
    };
    let policy = settings.policy();
    let mut probe = KafkaProbe::new(&settings, kafka.clone());

    // committed offset -> lag against the high watermark 30 -> grade (strictly greater-than)
    for (committed, lag, grade) in [
        (30, 0, Grade::Ok),
        (20, 10, Grade::Ok),
        (19, 11, Grade::Warn),
        (10, 20, Grade::Warn),
        (9, 21, Grade::Fail),
    ] {
        commit(&kafka, &group, &topic, committed).await;
        let state = probe.probe(Utc::now()).await;
        let snapshot = evaluate(&policy, &state, source(), Utc::now());
        let lag_component = component(&snapshot, "consumer_lag");
        assert_eq!(
            lag_component.status, grade,
            "committed {committed}: {}",
            lag_component.summary
        );
        assert_eq!(
            snapshot.metrics.get("total_lag"),
            Some(&(lag as f64)),
            "committed {committed}"
        );
        assert!(
            lag_component
                .summary
                .contains(&format!("group {group}: lag {lag}")),
            "{}",
            lag_component.summary
        );
        let measured = &state.lag[0];
        assert_eq!(measured.partitions.len(), 1);
        assert_eq!(measured.partitions[0].committed, Some(committed));
        assert_eq!(measured.partitions[0].high_watermark, 30);
        assert_eq!(component(&snapshot, "connection").status, Grade::Ok);
        assert_eq!(component(&snapshot, "topics").status, Grade::Ok);
        assert_eq!(snapshot.status, grade, "{}", snapshot.summary);
        assert_eq!(snapshot.validate(), Ok(()));
    }
}

#[actix_rt::test]
async fn missing_topics_fail_and_provisioning_creates_them() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    let settings = ReadinessSettings {
        min_publishers: 0,
        ..ReadinessSettings::default()
    };
    let expected = settings.topics.len();

    let mut probe = KafkaProbe::new(&settings, kafka.clone());
    let state = probe.probe(Utc::now()).await;
    let snapshot = evaluate(&settings.policy(), &state, source(), Utc::now());
    assert_eq!(component(&snapshot, "connection").status, Grade::Ok);
    assert!(!state.connection.brokers_answered.is_empty());
    let topics_component = component(&snapshot, "topics");
    assert_eq!(
        topics_component.status,
        Grade::Fail,
        "{}",
        topics_component.summary
    );
    assert!(topics_component
        .summary
        .contains(&format!("{expected} of {expected} topics missing")));
    assert_eq!(
        snapshot.metrics.get("topics_missing"),
        Some(&(expected as f64))
    );
    assert_eq!(snapshot.status, Grade::Fail);

    let provisioning = ReadinessSettings {
        provision_topics: true,
        provision_partitions: 2,
        ..settings.clone()
    };
    let mut probe = KafkaProbe::new(&provisioning, kafka.clone());
    let state = probe.probe(Utc::now()).await;
    let snapshot = evaluate(&provisioning.policy(), &state, source(), Utc::now());
    let topics_component = component(&snapshot, "topics");
    assert_eq!(
        topics_component.status,
        Grade::Ok,
        "{}",
        topics_component.summary
    );
    assert!(
        topics_component.summary.contains("just created"),
        "{}",
        topics_component.summary
    );
    let report = state.provisioning.as_ref().expect("provisioning report");
    // the expected topics, and the topic of every other catalogue kind: a producer of a kind
    // the readiness service does not expect (the CI domain's history) finds its topic too
    let catalogue = telemesh_core::catalogue::entries().len();
    assert_eq!(report.created.len(), catalogue + 1, "{report:?}");
    assert!(report.failed.is_empty());
    assert!(report
        .created
        .iter()
        .all(|t| t.starts_with(&kafka.topic_prefix)));
    let history = topics::topic_name(&kafka.topic_prefix, "telemetry.ci.history");
    assert!(report.created.contains(&history), "{report:?}");
    // only the expected ones are graded (and counted) as topics
    assert_eq!(state.topics.len(), expected);

    // a later probe without provisioning sees them in the cluster's metadata, once every new
    // partition has a leader (until then reading its watermarks fails: a connection warning)
    let policy = settings.policy();
    let snapshot = wait_until(
        "provisioned topics visible",
        Duration::from_secs(30),
        || {
            let settings = settings.clone();
            let kafka = kafka.clone();
            let policy = policy.clone();
            async move {
                let state = KafkaProbe::new(&settings, kafka).probe(Utc::now()).await;
                let snapshot = evaluate(&policy, &state, source(), Utc::now());
                let settled = ["topics", "connection"]
                    .iter()
                    .all(|c| component(&snapshot, c).status == Grade::Ok);
                settled.then_some((snapshot, state))
            }
        },
    )
    .await;
    let (snapshot, state) = snapshot;
    assert!(
        state.topics.iter().all(|t| t.exists && t.partitions == 2),
        "{:?}",
        state.topics
    );
    assert_eq!(snapshot.metrics.get("topics_missing"), Some(&0.0));
    // the aggregator's group has committed nothing: fine while the consumer is not required
    let lag = component(&snapshot, "consumer_lag");
    assert_eq!(lag.status, Grade::Ok, "{}", lag.summary);
    assert!(
        lag.summary.contains("no committed offsets"),
        "{}",
        lag.summary
    );
    assert_eq!(snapshot.status, Grade::Ok, "{}", snapshot.summary);
}

#[actix_rt::test]
async fn a_topic_with_a_message_inside_the_window_is_an_active_publisher() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    let mut kinds: Vec<&str> = topics::SNAPSHOT_KINDS.to_vec();
    kinds.push(topics::DLQ);
    create(&kafka, &kinds, 1).await;
    let fix_pilot = topics::topic_name(&kafka.topic_prefix, topics::FIX_PILOT);
    let dropcopy = topics::topic_name(&kafka.topic_prefix, topics::DROPCOPY);
    produce(&kafka, &fix_pilot, 1, chrono::Duration::zero()).await;
    // older than the 900 s window: the topic has messages but no recent publisher
    produce(&kafka, &dropcopy, 3, chrono::Duration::hours(2)).await;

    let publisher = kafka_publisher(&kafka, Encoding::Json);
    let settings = ReadinessSettings {
        min_publishers: 1,
        ..ReadinessSettings::default()
    };
    let service = telemesh_service::start(
        KafkaReadiness::new(&settings, &kafka),
        ServiceOptions {
            instance: source().instance,
            publisher: publisher.clone(),
            http_addr: None,
        },
    )
    .expect("start the readiness domain");
    // the first probe runs at start; the second once the first is published
    let handle = service.handle().clone();
    let first = wait_until("the first probe", Duration::from_secs(30), || {
        let handle = handle.clone();
        async move { handle.latest_of(topics::KAFKA_READINESS) }
    })
    .await;
    let second = handle.run_now().await.remove(0);
    for (run, snapshot) in [first, second].into_iter().enumerate() {
        let publishers = component(&snapshot, "publishers");
        assert_eq!(
            publishers.status,
            Grade::Ok,
            "run {run}: {}",
            publishers.summary
        );
        // the service's own topic never counts, so the second run still sees one publisher
        assert_eq!(
            list(publishers.details.get("active")),
            vec![fix_pilot.clone()],
            "run {run}"
        );
        let inactive = list(publishers.details.get("inactive"));
        assert!(inactive.contains(&dropcopy), "run {run}: {inactive:?}");
        assert!(!inactive
            .iter()
            .any(|t| t.ends_with(topics::DLQ) || t.ends_with(topics::KAFKA_READINESS)));
        assert_eq!(snapshot.metrics.get("active_publishers"), Some(&1.0));
        assert_eq!(
            snapshot.status,
            Grade::Ok,
            "run {run}: {}",
            snapshot.summary
        );
    }
    assert_eq!(
        handle.latest_of(topics::KAFKA_READINESS).map(|s| s.status),
        Some(Grade::Ok)
    );
    assert_eq!(
        publisher
            .stats()
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let readiness_topic = topics::topic_name(&kafka.topic_prefix, topics::KAFKA_READINESS);
    let published = read_topic(&kafka, &readiness_topic, 2, Duration::from_secs(30)).await;
    assert_eq!(
        published.len(),
        2,
        "both readiness snapshots are on {readiness_topic}"
    );
}

#[actix_rt::test]
async fn an_unreachable_cluster_fails_the_connection_and_skips_the_rest() {
    let kafka = KafkaSettings {
        brokers: "127.0.0.1:1".into(),
        request_timeout_ms: 1_000,
        ..KafkaSettings::default()
    };
    let settings = ReadinessSettings::default();
    let state = KafkaProbe::new(&settings, kafka).probe(Utc::now()).await;
    let snapshot = evaluate(&settings.policy(), &state, source(), Utc::now());
    let connection = component(&snapshot, "connection");
    assert_eq!(connection.status, Grade::Fail, "{}", connection.summary);
    assert!(
        connection.summary.starts_with("cannot reach kafka"),
        "{}",
        connection.summary
    );
    for name in ["topics", "publishers", "consumer_lag"] {
        assert_eq!(
            component(&snapshot, name).summary,
            "skipped: kafka unreachable"
        );
    }
    assert_eq!(snapshot.status, Grade::Fail);
}
