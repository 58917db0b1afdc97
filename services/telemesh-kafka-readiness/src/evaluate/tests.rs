//! Data-driven tests of every grading rule of `evaluate`, at, below and above each threshold.

use chrono::{Duration, TimeZone};

use super::*;
use crate::settings::ReadinessSettings;
use crate::state::{ConnectionState, PartitionLag, ProvisioningState, PublisherState, TopicState};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5)
        .single()
        .expect("valid time")
}

/// warn lag > 100, fail lag > 1000, warn stale > 60 s, fail stale > 300 s, 2 publishers.
fn policy() -> ReadinessPolicy {
    ReadinessSettings {
        warn_lag_messages: 100,
        fail_lag_messages: 1000,
        warn_stale_seconds: 60.0,
        fail_stale_seconds: 300.0,
        min_publishers: 2,
        min_partitions: 2,
        ..ReadinessSettings::default()
    }
    .policy()
}

fn topic(name: &str, partitions: i32) -> TopicState {
    TopicState {
        name: name.into(),
        exists: partitions > 0,
        partitions,
    }
}

fn publisher(topic: &str, messages: i64) -> PublisherState {
    PublisherState {
        topic: topic.into(),
        messages_in_window: messages,
        end_offset: 100 + messages,
    }
}

/// Group `g` with one partition per lag value (committed = 1000, high = 1000 + lag).
fn group(lags: &[i64], recorded_ago: i64, progress_ago: i64) -> GroupLag {
    GroupLag {
        group: "g".into(),
        recorded_at: Some(now() - Duration::seconds(recorded_ago)),
        partitions: lags
            .iter()
            .enumerate()
            .map(|(i, lag)| PartitionLag::new("t.a", i as i32, Some(1000), 1000 + lag))
            .collect(),
        last_progress_at: Some(now() - Duration::seconds(progress_ago)),
        error: None,
    }
}

/// Everything healthy: one broker, two topics with 3 partitions, 3 active publishers, lag 0.
fn healthy() -> ReadinessState {
    ReadinessState {
        connection: ConnectionState {
            configured: true,
            description: "Kafka(bootstrap=k:9092)".into(),
            brokers_answered: vec![1],
            error: None,
        },
        topics: vec![topic("t.a", 3), topic("t.b", 3)],
        provisioning: None,
        publishers: vec![
            publisher("t.a", 5),
            publisher("t.b", 1),
            publisher("t.c", 2),
        ],
        lag: vec![group(&[0], 0, 0)],
        probe_errors: vec![],
    }
}

fn source() -> Source {
    Source::new("kafka-readiness", "test")
}

struct Case {
    name: &'static str,
    setup: fn(&mut ReadinessPolicy, &mut ReadinessState),
    component: &'static str,
    grade: Grade,
    contains: &'static str,
}

fn set_publishers(s: &mut ReadinessState, active: usize) {
    s.publishers = (0..4)
        .map(|i| publisher(&format!("t.p{i}"), i64::from(i < active)))
        .collect();
}

fn cases() -> Vec<Case> {
    vec![
        // --- connection
        Case {
            name: "healthy connection",
            setup: |_, _| {},
            component: CONNECTION,
            grade: Grade::Ok,
            contains: "1 broker answered",
        },
        Case {
            name: "metadata error fails",
            setup: |_, s| s.connection.error = Some("timed out".into()),
            component: CONNECTION,
            grade: Grade::Fail,
            contains: "cannot reach kafka: timed out",
        },
        Case {
            name: "no brokers in metadata fails",
            setup: |_, s| s.connection.brokers_answered.clear(),
            component: CONNECTION,
            grade: Grade::Fail,
            contains: "no brokers",
        },
        Case {
            name: "probe errors warn",
            setup: |_, s| s.probe_errors.push("watermarks of t.a/0: timed out".into()),
            component: CONNECTION,
            grade: Grade::Warn,
            contains: "1 probe call failed",
        },
        Case {
            name: "unreachable skips the other components as warn",
            setup: |_, s| s.connection.error = Some("timed out".into()),
            component: TOPICS,
            grade: Grade::Warn,
            contains: "skipped: kafka unreachable",
        },
        // --- topics
        Case {
            name: "all topics exist",
            setup: |_, _| {},
            component: TOPICS,
            grade: Grade::Ok,
            contains: "all 2 topics exist",
        },
        Case {
            name: "required topics but none configured fails",
            setup: |_, s| s.topics.clear(),
            component: TOPICS,
            grade: Grade::Fail,
            contains: "none are configured",
        },
        Case {
            name: "optional topics and none configured warns",
            setup: |p, s| {
                p.require_topics = false;
                s.topics.clear();
            },
            component: TOPICS,
            grade: Grade::Warn,
            contains: "optional",
        },
        Case {
            name: "missing required topic fails",
            setup: |_, s| s.topics[1] = topic("t.b", 0),
            component: TOPICS,
            grade: Grade::Fail,
            contains: "1 of 2 topics missing: t.b; create them or set",
        },
        Case {
            name: "missing optional topic warns",
            setup: |p, s| {
                p.require_topics = false;
                s.topics[1] = topic("t.b", 0);
            },
            component: TOPICS,
            grade: Grade::Warn,
            contains: "missing: t.b (topics not required)",
        },
        Case {
            name: "provisioning failure fails",
            setup: |p, s| {
                p.provision_topics = true;
                s.topics[1] = topic("t.b", 0);
                s.provisioning = Some(ProvisioningState {
                    created: vec![],
                    existing: vec!["t.a".into()],
                    failed: vec![("t.b".into(), "policy violation".into())],
                });
            },
            component: TOPICS,
            grade: Grade::Fail,
            contains: "provisioning failed for 1 topic (t.b: policy violation)",
        },
        Case {
            name: "provisioning failure fails even for optional topics",
            setup: |p, s| {
                p.require_topics = false;
                s.provisioning = Some(ProvisioningState {
                    failed: vec![("t.b".into(), "no result returned".into())],
                    ..ProvisioningState::default()
                });
            },
            component: TOPICS,
            grade: Grade::Fail,
            contains: "provisioning failed",
        },
        Case {
            name: "provisioning failure of a topic not expected here only warns",
            setup: |p, s| {
                p.provision_topics = true;
                s.provisioning = Some(ProvisioningState {
                    created: vec![],
                    existing: vec![],
                    failed: vec![("t.ci.history".into(), "topic authorization failed".into())],
                });
            },
            component: TOPICS,
            grade: Grade::Warn,
            contains: "provisioning failed for 1 topic of catalogue kinds not expected here (t.ci.history: topic authorization failed)",
        },
        Case {
            name: "created topics are ok",
            setup: |p, s| {
                p.provision_topics = true;
                s.provisioning = Some(ProvisioningState {
                    created: vec!["t.b".into()],
                    existing: vec!["t.a".into()],
                    failed: vec![],
                });
            },
            component: TOPICS,
            grade: Grade::Ok,
            contains: "1 just created: t.b",
        },
        Case {
            name: "partitions at min_partitions are ok",
            setup: |_, s| s.topics[0] = topic("t.a", 2),
            component: TOPICS,
            grade: Grade::Ok,
            contains: "all 2 topics exist",
        },
        Case {
            name: "partitions below min_partitions warn",
            setup: |_, s| s.topics[0] = topic("t.a", 1),
            component: TOPICS,
            grade: Grade::Warn,
            contains: "fewer partitions than min_partitions 2: t.a (1)",
        },
        // --- publishers (min 2)
        Case {
            name: "publishers above min",
            setup: |_, s| set_publishers(s, 3),
            component: PUBLISHERS,
            grade: Grade::Ok,
            contains: "3 of 4 telemetry topics received messages",
        },
        Case {
            name: "publishers at min",
            setup: |_, s| set_publishers(s, 2),
            component: PUBLISHERS,
            grade: Grade::Ok,
            contains: "2 of 4",
        },
        Case {
            name: "publishers below min warn",
            setup: |_, s| set_publishers(s, 1),
            component: PUBLISHERS,
            grade: Grade::Warn,
            contains: "below min_publishers 2",
        },
        Case {
            name: "no publishers fail",
            setup: |_, s| set_publishers(s, 0),
            component: PUBLISHERS,
            grade: Grade::Fail,
            contains: "not publishing",
        },
        Case {
            name: "no publishers with min 0 is optional",
            setup: |p, s| {
                p.min_publishers = 0;
                set_publishers(s, 0);
            },
            component: PUBLISHERS,
            grade: Grade::Ok,
            contains:
                "0 of 4 telemetry topics received messages in the last 900s (publishers optional)",
        },
        Case {
            name: "some publishers with min 0 is ok",
            setup: |p, s| {
                p.min_publishers = 0;
                set_publishers(s, 1);
            },
            component: PUBLISHERS,
            grade: Grade::Ok,
            contains: "optional",
        },
        Case {
            name: "min 1 with one publisher is ok",
            setup: |p, s| {
                p.min_publishers = 1;
                set_publishers(s, 1);
            },
            component: PUBLISHERS,
            grade: Grade::Ok,
            contains: "1 of 4",
        },
        // --- consumer lag: total lag thresholds (warn > 100, fail > 1000)
        Case {
            name: "lag 0",
            setup: |_, _| {},
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "group g: lag 0 within thresholds",
        },
        Case {
            name: "lag at warn is ok",
            setup: |_, s| s.lag = vec![group(&[60, 40], 0, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "lag 100 within thresholds",
        },
        Case {
            name: "lag above warn warns",
            setup: |_, s| s.lag = vec![group(&[61, 40], 0, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Warn,
            contains: "lag 101 > warn 100",
        },
        Case {
            name: "lag at fail warns",
            setup: |_, s| s.lag = vec![group(&[1000], 0, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Warn,
            contains: "lag 1000 > warn 100",
        },
        Case {
            name: "lag above fail fails",
            setup: |_, s| s.lag = vec![group(&[1001], 0, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Fail,
            contains: "lag 1001 > fail 1000",
        },
        Case {
            name: "uncommitted partitions do not count as lag",
            setup: |_, s| {
                let mut g = group(&[50], 0, 0);
                g.partitions
                    .push(PartitionLag::new("t.b", 0, None, 1_000_000));
                s.lag = vec![g];
            },
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "lag 50 within",
        },
        // --- staleness of the measurement (warn > 60 s, fail > 300 s, forced even at lag 0)
        Case {
            name: "measurement at warn staleness is ok",
            setup: |_, s| s.lag = vec![group(&[0], 60, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "within thresholds",
        },
        Case {
            name: "measurement above warn staleness warns",
            setup: |_, s| s.lag = vec![group(&[0], 61, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Warn,
            contains: "measurement is 61s old > warn 60s",
        },
        Case {
            name: "measurement at fail staleness warns",
            setup: |_, s| s.lag = vec![group(&[0], 300, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Warn,
            contains: "300s old > warn 60s",
        },
        Case {
            name: "measurement above fail staleness fails",
            setup: |_, s| s.lag = vec![group(&[0], 301, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Fail,
            contains: "301s old > fail 300s",
        },
        Case {
            name: "a measurement from the future is not stale",
            setup: |_, s| s.lag = vec![group(&[0], -3600, 0)],
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "within thresholds",
        },
        Case {
            name: "failed read with a fresh previous measurement is ok",
            setup: |_, s| {
                let mut g = group(&[5], 10, 0);
                g.error = Some("coordinator not available".into());
                s.lag = vec![g];
            },
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "latest read failed (coordinator not available)",
        },
        // --- stalled consumer (lag > 0 and no committed progress)
        Case {
            name: "lagging without progress at warn is ok",
            setup: |_, s| s.lag = vec![group(&[5], 0, 60)],
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "lag 5 within",
        },
        Case {
            name: "lagging without progress above warn warns",
            setup: |_, s| s.lag = vec![group(&[5], 0, 61)],
            component: CONSUMER_LAG,
            grade: Grade::Warn,
            contains: "stalled: lag 5 but no committed progress for 61s > warn 60s",
        },
        Case {
            name: "lagging without progress at fail warns",
            setup: |_, s| s.lag = vec![group(&[5], 0, 300)],
            component: CONSUMER_LAG,
            grade: Grade::Warn,
            contains: "stalled",
        },
        Case {
            name: "lagging without progress above fail fails",
            setup: |_, s| s.lag = vec![group(&[5], 0, 301)],
            component: CONSUMER_LAG,
            grade: Grade::Fail,
            contains: "stalled: lag 5 but no committed progress for 301s > fail 300s",
        },
        Case {
            name: "caught up without progress is not stalled",
            setup: |_, s| s.lag = vec![group(&[0], 0, 10_000)],
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "within thresholds",
        },
        // --- availability of the lag
        Case {
            name: "unmeasured optional group warns",
            setup: |_, s| {
                s.lag = vec![GroupLag::unavailable(
                    "g",
                    "group coordinator not available",
                )]
            },
            component: CONSUMER_LAG,
            grade: Grade::Warn,
            contains: "group g: lag unavailable (group coordinator not available)",
        },
        Case {
            name: "unmeasured required group fails",
            setup: |p, s| {
                p.require_consumer = true;
                s.lag = vec![GroupLag::unavailable("g", "timed out")];
            },
            component: CONSUMER_LAG,
            grade: Grade::Fail,
            contains: "lag unavailable (timed out)",
        },
        Case {
            name: "no committed offsets with optional consumer is ok",
            setup: |_, s| s.lag[0].partitions = vec![PartitionLag::new("t.a", 0, None, 10)],
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "no committed offsets yet (consumer not required)",
        },
        Case {
            name: "no committed offsets with required consumer fails",
            setup: |p, s| {
                p.require_consumer = true;
                s.lag[0].partitions = vec![PartitionLag::new("t.a", 0, None, 10)];
            },
            component: CONSUMER_LAG,
            grade: Grade::Fail,
            contains: "no committed offsets: the consumer is required",
        },
        Case {
            name: "no group with optional consumer is ok",
            setup: |_, s| s.lag.clear(),
            component: CONSUMER_LAG,
            grade: Grade::Ok,
            contains: "no consumer group to measure",
        },
        Case {
            name: "no group with required consumer fails",
            setup: |p, s| {
                p.require_consumer = true;
                s.lag.clear();
            },
            component: CONSUMER_LAG,
            grade: Grade::Fail,
            contains: "no consumer group is configured",
        },
        Case {
            name: "several groups make one component graded by the worst",
            setup: |_, s| {
                let mut other = group(&[2000], 0, 0);
                other.group = "h".into();
                s.lag.push(other);
            },
            component: CONSUMER_LAG,
            grade: Grade::Fail,
            contains:
                "group g: lag 0 within thresholds (warn > 100); group h: lag 2000 > fail 1000",
        },
    ]
}

#[test]
fn every_rule_grades_as_specified() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut p = policy();
        let mut s = healthy();
        (case.setup)(&mut p, &mut s);
        let snap = evaluate(&p, &s, source(), now());
        assert_eq!(snap.validate(), Ok(()), "{}", case.name);
        let Some(c) = snap.component(case.component) else {
            failures.push(format!("{}: no component {}", case.name, case.component));
            continue;
        };
        if c.status != case.grade || !c.summary.contains(case.contains) {
            failures.push(format!(
                "{}: got {} {:?}, want {} containing {:?}",
                case.name, c.status, c.summary, case.grade, case.contains
            ));
        }
        let worst = Grade::worst(snap.components.iter().map(|c| c.status));
        if snap.status != worst {
            failures.push(format!(
                "{}: overall {} is not the worst component {}",
                case.name, snap.status, worst
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rule(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn healthy_cluster_is_ok_with_a_readable_summary_and_metrics() {
    let snap = evaluate(&policy(), &healthy(), source(), now());
    assert_eq!(snap.status, Grade::Ok);
    assert_eq!(snap.kind, "telemetry.kafka.readiness");
    let names: Vec<&str> = snap.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [CONNECTION, TOPICS, PUBLISHERS, CONSUMER_LAG]);
    assert_eq!(
        snap.summary,
        "kafka ready: 1 broker, 2 topics exist, 3 publisher topics active, consumer lag 0"
    );
    for (metric, value) in [
        ("brokers_up", 1.0),
        ("topics_expected", 2.0),
        ("topics_missing", 0.0),
        ("active_publishers", 3.0),
        ("total_lag", 0.0),
        ("max_lag", 0.0),
        ("consumer_groups", 1.0),
        ("interval_seconds", 30.0),
        ("kafka_configured", 1.0),
    ] {
        assert_eq!(snap.metrics.get(metric), Some(&value), "{metric}");
    }
    assert!(
        snap.markdown.starts_with("### Kafka readiness: OK"),
        "{}",
        snap.markdown
    );
    assert!(
        snap.markdown.contains("| consumer_lag | OK |"),
        "{}",
        snap.markdown
    );
    assert!(
        snap.markdown.contains("| g | 0 | 0 | 0 | 0s ago | - |"),
        "{}",
        snap.markdown
    );
}

#[test]
fn not_configured_is_warn_never_fail_even_when_everything_is_required() {
    let mut p = policy();
    p.require_consumer = true;
    p.require_topics = true;
    let state = ReadinessState {
        connection: ConnectionState {
            configured: false,
            description: "kafka not configured".into(),
            ..ConnectionState::default()
        },
        ..ReadinessState::default()
    };
    let snap = evaluate(&p, &state, source(), now());
    assert_eq!(snap.status, Grade::Warn);
    assert!(snap.summary.contains("not configured"), "{}", snap.summary);
    let connection = snap.component(CONNECTION).expect("connection");
    assert_eq!(connection.status, Grade::Warn);
    assert!(connection.summary.starts_with("kafka not configured"));
    for name in [TOPICS, PUBLISHERS, CONSUMER_LAG] {
        let c = snap.component(name).expect(name);
        assert_eq!(
            (c.status, c.summary.as_str()),
            (Grade::Warn, "skipped: kafka not configured")
        );
    }
    assert_eq!(snap.metrics.get("kafka_configured"), Some(&0.0));
    assert_eq!(snap.validate(), Ok(()));
}

#[test]
fn a_problem_summary_names_the_failing_components() {
    let mut s = healthy();
    s.topics[1] = topic("t.b", 0);
    s.lag = vec![group(&[101], 0, 0)];
    let snap = evaluate(&policy(), &s, source(), now());
    assert_eq!(snap.status, Grade::Fail);
    assert!(
        snap.summary
            .starts_with("kafka FAIL: topics fail: 1 of 2 topics missing: t.b"),
        "{}",
        snap.summary
    );
    assert!(
        snap.summary
            .contains("consumer_lag warn: group g: lag 101 > warn 100"),
        "{}",
        snap.summary
    );
    assert_eq!(snap.metrics.get("topics_missing"), Some(&1.0));
    assert_eq!(snap.metrics.get("total_lag"), Some(&101.0));
}

#[test]
fn lag_details_are_per_group() {
    let mut s = healthy();
    let mut g = group(&[30, 20], 5, 5);
    g.partitions.push(PartitionLag::new("t.b", 0, None, 7));
    s.lag = vec![g];
    let snap = evaluate(&policy(), &s, source(), now());
    let c = snap.component(CONSUMER_LAG).expect("lag");
    let Some(DetailValue::Map(groups)) = c.details.get("groups") else {
        panic!("groups detail missing: {:?}", c.details);
    };
    let Some(DetailValue::Map(g)) = groups.get("g") else {
        panic!("group g missing: {groups:?}");
    };
    assert_eq!(g.get("total_lag"), Some(&DetailValue::Int(50)));
    assert_eq!(g.get("max_lag"), Some(&DetailValue::Int(30)));
    assert_eq!(g.get("uncommitted_partitions"), Some(&DetailValue::Int(1)));
    assert_eq!(g.get("staleness_seconds"), Some(&DetailValue::Float(5.0)));
    assert_eq!(g.get("status"), Some(&DetailValue::Text("ok".into())));
}

#[test]
fn clamped_fail_threshold_never_grades_below_warn() {
    let p = ReadinessSettings {
        warn_lag_messages: 100,
        fail_lag_messages: 10,
        ..ReadinessSettings::default()
    }
    .policy();
    let mut s = healthy();
    for (lag, grade) in [(100, Grade::Ok), (101, Grade::Fail)] {
        s.lag = vec![group(&[lag], 0, 0)];
        let snap = evaluate(&p, &s, source(), now());
        assert_eq!(
            snap.component(CONSUMER_LAG).map(|c| c.status),
            Some(grade),
            "lag {lag}"
        );
    }
}
