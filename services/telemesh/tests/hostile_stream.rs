//! The ingest invariant end to end, on the built binary (`telemesh serve aggregator`) over real
//! Kafka into real PostgreSQL: proptest generates hostile snapshots (NUL and unpaired
//! surrogates in strings and keys, pre-1970 / far-future / beyond-9999 times, deep nesting,
//! huge maps, oversized payloads, garbage) interleaved with good ones; the aggregator is
//! killed with SIGKILL in the middle of the stream and started again. Afterwards every good
//! record is journaled exactly once, every bad one is in the DLQ with its reason, the second
//! aggregator did not restart-loop, its peak RSS stayed under [`RSS_BOUND_KIB`], and SIGTERM
//! stops it cleanly (no panic in its output).

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use telemesh_aggregator::ingress::DLQ_HEADER_PREFIX;
use telemesh_core::codec::{self, MAX_MESSAGE_BYTES};
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::kafka::KafkaPublisher;
use telemesh_core::transport::kafka::KafkaSubscriber;
use telemesh_core::transport::Subscriber;
use telemesh_core::transport::{OutboundMessage, Publisher};
use telemesh_core::{topics, Component, DetailValue, Encoding, Grade, Snapshot, Source};
use telemesh_integration_tests::fixtures::{create_topics, journal_counts};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};

/// Peak resident set size allowed for the aggregator process under this stream.
const RSS_BOUND_KIB: u64 = 128 * 1024;

const BINCODE: &str = "application/vnd.telemesh.snapshot.v1+bincode";
const JSON: &str = "application/vnd.telemesh.snapshot.v1+json";

/// One generated record: what to send, and the DLQ reason expected (`None` = journaled).
#[derive(Debug, Clone)]
struct Case {
    content_type: &'static str,
    payload: Vec<u8>,
    expect: Option<&'static str>,
}

fn good_snapshot(instance: String, summary: String) -> Snapshot {
    let mut s = Snapshot::new(
        topics::KAFKA_READINESS,
        Source::new("hostile-stream", instance),
        Utc::now(),
    );
    s.push(Component::new("probe", Grade::Ok, "fine").detail("n", 1i64));
    s.summary = summary;
    s.metric("interval_seconds", 30.0);
    s
}

fn json_value(s: &Snapshot) -> serde_json::Value {
    serde_json::to_value(s).expect("snapshot to json")
}

fn raw_json(v: &serde_json::Value, expect: &'static str) -> Case {
    Case {
        content_type: JSON,
        payload: serde_json::to_vec(v).expect("json bytes"),
        expect: Some(expect),
    }
}

fn case() -> impl Strategy<Value = Case> {
    let text = "[a-zA-Z0-9 äß€🙂-]{0,40}";
    let base = ("[a-z0-9]{1,12}", text).prop_map(|(i, t)| good_snapshot(i, t));
    prop_oneof![
        // good, in both encodings (the majority)
        6 => (base.clone(), any::<bool>()).prop_map(|(s, bin)| {
            let enc = if bin { Encoding::Bincode } else { Encoding::Json };
            let (payload, ct) = codec::encode(&s, enc).expect("good snapshot encodes");
            Case {
                content_type: if ct.encoding == Encoding::Bincode { BINCODE } else { JSON },
                payload,
                expect: None,
            }
        }),
        // NUL in a string or a key
        1 => (base.clone(), 0usize..3).prop_map(|(s, at)| {
            let mut v = json_value(&s);
            match at {
                0 => v["summary"] = "nul \u{0} inside".into(),
                1 => v["source"]["instance"] = "\u{0}".into(),
                _ => v["components"][0]["details"] = serde_json::json!({ "k\u{0}": 1 }),
            }
            raw_json(&v, "invalid_text")
        }),
        // an unpaired surrogate escape in a value or a key
        1 => (base.clone(), any::<bool>(), 0xd800u32..0xe000).prop_map(|(s, key, unit)| {
            let json = serde_json::to_string(&json_value(&s)).expect("json");
            let escape = format!("\\u{unit:04x}");
            let bad = if key {
                json.replacen("\"n\":1", &format!("\"{escape}\":1"), 1)
            } else {
                json.replacen("\"summary\":\"", &format!("\"summary\":\"{escape}"), 1)
            };
            Case { content_type: JSON, payload: bad.into_bytes(), expect: Some("invalid_text") }
        }),
        // nesting over the limit, up to far beyond what the stack would survive
        1 => (base.clone(), 33usize..60_000).prop_map(|(s, depth)| {
            let json = serde_json::to_string(&json_value(&s)).expect("json");
            let nested = format!("{}1{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
            let bad = json.replacen("\"n\":1", &format!("\"n\":{nested}"), 1);
            Case { content_type: JSON, payload: bad.into_bytes(), expect: Some("too_deep") }
        }),
        // huge maps
        1 => (base.clone(), 10_001usize..40_000).prop_map(|(mut s, n)| {
            s.components[0].details = (0..n)
                .map(|i| (format!("k{i}"), DetailValue::Int(i as i64)))
                .collect::<BTreeMap<_, _>>();
            let payload = serde_json::to_vec(&s).expect("json");
            Case { content_type: JSON, payload, expect: Some("too_many") }
        }),
        // producer clocks: ahead by more than the skew, before 1970, beyond 9999
        1 => (base.clone(), 0usize..3, 1i64..1_000_000).prop_map(|(mut s, which, n)| {
            let (at, expect) = match which {
                0 => (Utc::now() + chrono::Duration::minutes(6 + n % 1_000_000), "future_generated_at"),
                1 => (chrono::DateTime::UNIX_EPOCH - chrono::Duration::seconds(n), "time_out_of_range"),
                _ => (chrono::DateTime::<Utc>::MAX_UTC - chrono::Duration::seconds(n), "time_out_of_range"),
            };
            s.generated_at = at;
            raw_json(&json_value(&s), expect)
        }),
        // oversized: past the decoder limit, within what a producer can send
        1 => (base.clone(), 0usize..30_000).prop_map(|(s, extra)| {
            let mut payload = serde_json::to_vec(&s).expect("json");
            payload.resize(MAX_MESSAGE_BYTES - 32_000 + extra, b' ');
            Case { content_type: JSON, payload, expect: Some("oversized") }
        }),
        // garbage
        // (prefixed so it cannot start a valid document: JSON with `!`, bincode with an id and
        // a string length far past the payload)
        1 => (prop::collection::vec(any::<u8>(), 0..2_000), any::<bool>()).prop_map(|(bytes, bin)| {
            let mut payload = if bin { vec![0xff; 24] } else { b"!".to_vec() };
            payload.extend(bytes);
            Case {
                content_type: if bin { BINCODE } else { JSON },
                payload,
                expect: Some("malformed"),
            }
        }),
    ]
}

struct Aggregator {
    child: Child,
    port: u16,
}

impl Aggregator {
    fn start(env: &TestEnv, ns: &str, db: &str, log: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_telemesh"));
        for (key, _) in std::env::vars() {
            if key.starts_with("TELEMESH__") {
                cmd.env_remove(key);
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = cmd
            .args(["serve", "aggregator"])
            .env("TELEMESH__KAFKA__BROKERS", &env.kafka_brokers)
            .env("TELEMESH__KAFKA__TOPIC_PREFIX", format!("{ns}."))
            .env("TELEMESH__KAFKA__GROUP_ID", format!("{ns}-aggregator"))
            .env("TELEMESH__JOURNAL__URL", db)
            .env("TELEMESH__HTTP__ADDR", format!("127.0.0.1:{port}"))
            .env("TELEMESH__ALERTING__ENABLED", "false")
            .env("TELEMESH__AGGREGATOR__BATCH_LINGER_MS", "20")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start telemesh serve aggregator");
        Self { child, port }
    }

    /// Peak resident set size (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    async fn status(&self, path: &str) -> u16 {
        reqwest::get(format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_rt::test]
async fn hostile_stream_with_a_kill_9_journals_every_good_record_once_and_dead_letters_every_bad_one(
) {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 2).await;
    let db = env.fresh_database(&ns).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("aggregator.log");

    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let cases: Vec<Case> = prop::collection::vec(case(), 120)
        .new_tree(&mut runner)
        .expect("generate cases")
        .current();
    let good = cases.iter().filter(|c| c.expect.is_none()).count() as i64;
    let bad = cases.len() - good as usize;
    assert!(good > 0 && bad > 0, "a mix of good and bad: {good}/{bad}");

    let producer: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&kafka).unwrap());
    let topic = topics::topic_name(&kafka.topic_prefix, topics::KAFKA_READINESS);
    let mut expected: HashMap<(i32, i64), &'static str> = HashMap::new();
    let publish = |case: Case, i: usize| {
        let producer = Arc::clone(&producer);
        let topic = topic.clone();
        async move {
            let delivered = producer
                .publish(OutboundMessage {
                    topic,
                    key: Some(format!("hostile/{i}")),
                    headers: vec![("content-type".into(), case.content_type.as_bytes().to_vec())],
                    payload: case.payload,
                })
                .await
                .expect("publish");
            (delivered.partition, delivered.offset)
        }
    };

    let first = Aggregator::start(&env, &ns, &db, &log);
    let half = cases.len() / 2;
    for (i, case) in cases.iter().take(half).cloned().enumerate() {
        let expect = case.expect;
        let at = publish(case, i).await;
        if let Some(reason) = expect {
            expected.insert(at, reason);
        }
    }
    // let it get into the poisoned stream, then SIGKILL it mid-flight
    wait_until("some rows journaled", Duration::from_secs(60), || {
        let db = db.clone();
        async move { (journal_counts(&db).await.0 > 0).then_some(()) }
    })
    .await;
    drop(first); // kill -9

    let second = Aggregator::start(&env, &ns, &db, &log);
    for (i, case) in cases.iter().cloned().enumerate().skip(half) {
        let expect = case.expect;
        let at = publish(case, i).await;
        if let Some(reason) = expect {
            expected.insert(at, reason);
        }
    }
    wait_until(
        &format!("{good} journal rows"),
        Duration::from_secs(120),
        || {
            let db = db.clone();
            async move { (journal_counts(&db).await.0 >= good).then_some(()) }
        },
    )
    .await;

    // every bad record is in the DLQ with its reason (a kill -9 may dead-letter one twice)
    let dlq_topic = topics::topic_name(&kafka.topic_prefix, topics::DLQ);
    // (read until every expected dead letter is seen: a kill -9 can write some twice)
    let reader = KafkaSettings {
        group_id: format!("{ns}-dlq-reader"),
        ..kafka.clone()
    };
    let mut sub = KafkaSubscriber::new(&reader, std::slice::from_ref(&dlq_topic)).unwrap();
    let mut got: HashMap<(i32, i64), String> = HashMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline && !expected.keys().all(|k| got.contains_key(k)) {
        let Some(m) = sub.poll(Duration::from_millis(500)).await.unwrap() else {
            continue;
        };
        let h = |n: &str| {
            m.header(&format!("{DLQ_HEADER_PREFIX}{n}"))
                .map(str::to_owned)
        };
        let partition: i32 = h("partition").unwrap().parse().unwrap();
        let offset: i64 = h("offset").unwrap().parse().unwrap();
        got.insert((partition, offset), h("exception.class.name").unwrap());
    }
    for (at, reason) in &expected {
        assert_eq!(
            got.get(at).map(String::as_str),
            Some(*reason),
            "record at {at:?} should be dead-lettered as {reason}"
        );
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "only bad records are dead-lettered"
    );
    assert_eq!(
        journal_counts(&db).await,
        (good, good),
        "every good record journaled exactly once"
    );

    // no restart loop, still live and ready, memory bounded
    let mut second = second;
    assert!(
        second.child.try_wait().unwrap().is_none(),
        "the aggregator exited"
    );
    assert_eq!(second.status("/health/live").await, 200);
    assert_eq!(second.status("/health/ready").await, 200);
    let rss = second.peak_rss_kib();
    eprintln!(
        "hostile stream: {} records ({good} good, {bad} bad), aggregator peak RSS {rss} KiB (bound {RSS_BOUND_KIB} KiB)",
        cases.len()
    );
    assert!(
        rss < RSS_BOUND_KIB,
        "peak RSS {rss} KiB over the {RSS_BOUND_KIB} KiB bound"
    );

    // SIGTERM: a clean, bounded stop without a panic
    let pid = second.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let exit = wait_until("exit after SIGTERM", Duration::from_secs(30), || {
        let status = second.child.try_wait().unwrap();
        async move { status }
    })
    .await;
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exit.success(), "exit {exit:?}\n{output}");
    assert!(!output.contains("panicked"), "{output}");
}
