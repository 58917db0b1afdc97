//! Black-box observability of the built binary against the real Kafka broker and PostgreSQL
//! server: `serve kafka-readiness` and `serve aggregator` run as two processes exporting spans
//! to a real OTLP/gRPC receiver in this test. One snapshot yields one trace across both
//! processes with OpenTelemetry messaging attributes; both `/metrics` parse as Prometheus text
//! and their counters move by exactly one snapshot; every log line is JSON with the configured
//! context, and no configured secret appears in any of them.

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use telemesh_integration_tests::fixtures::create_topics;
use telemesh_integration_tests::{namespace, TestEnv};

const BIN: &str = env!("CARGO_BIN_EXE_telemesh");
const KIND: &str = "telemetry.kafka.readiness";

struct Running(Child);

impl Running {
    /// SIGTERM, then wait up to 20 s for a graceful exit (spans flushed), then kill.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

fn spawn(service: &str, env: &[(String, String)], log: &Path) -> Running {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("TELEMESH__") || key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["serve", service])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(log).unwrap()));
    Running(cmd.spawn().unwrap())
}

/// `/metrics` parsed with a Prometheus text parser: (name, labels) → value.
async fn scrape(addr: &str) -> Option<prometheus_parse::Scrape> {
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    Some(prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text"))
}

/// The value of `name` whose labels include every pair of `labels` (summed), if present.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for sample in scrape.samples.iter().filter(|s| s.metric == name) {
        if labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v)) {
            let v = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(ref buckets) => {
                    buckets.last().map(|b| b.count).unwrap_or(0.0)
                }
                _ => continue,
            };
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn attr<'a>(span: &'a ExportedSpan, key: &str) -> &'a str {
    span.attributes
        .get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("span {} has no {key}: {:?}", span.name, span.attributes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_snapshot_is_one_trace_with_metrics_and_json_logs_across_two_processes() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 1).await;
    let db = env.fresh_database(&ns).await;
    let mut collector = FakeCollectorServer::start().await.expect("otlp receiver");
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("kafka-secret-{ns}");
    let topic = format!("{}{KIND}", kafka.topic_prefix);

    let common: Vec<(String, String)> = [
        ("TELEMESH__KAFKA__BROKERS", kafka.brokers.as_str()),
        ("TELEMESH__KAFKA__TOPIC_PREFIX", kafka.topic_prefix.as_str()),
        ("TELEMESH__KAFKA__GROUP_ID", kafka.group_id.as_str()),
        ("TELEMESH__KAFKA__CLIENT_ID", kafka.client_id.as_str()),
        ("TELEMESH__KAFKA__PASSWORD", secret.as_str()),
        ("TELEMESH__SERVICE__INSTANCE", "obs-1"),
        ("TELEMESH__LOG__FORMAT", "json"),
        (
            "TELEMESH__LOG__LEVEL",
            "info,telemesh_aggregator=debug,telemesh_core=debug,telemesh_kafka_readiness=debug",
        ),
        ("TELEMESH__LOG__CONTEXT", "region=eu,tier=prod"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let agg_addr = free_addr();
    let svc_addr = free_addr();
    let mut agg_env = common.clone();
    agg_env.extend([
        ("TELEMESH__JOURNAL__URL".to_owned(), db.clone()),
        ("TELEMESH__HTTP__ADDR".to_owned(), agg_addr.clone()),
        (
            "TELEMESH__AGGREGATOR__BATCH_LINGER_MS".to_owned(),
            "20".to_owned(),
        ),
    ]);
    let mut svc_env = common.clone();
    svc_env.extend([
        ("TELEMESH__HTTP__ADDR".to_owned(), svc_addr.clone()),
        // one snapshot at start, then none during the test: counters are exact
        (
            "TELEMESH__KAFKA_READINESS__INTERVAL_SECONDS".to_owned(),
            "3600".to_owned(),
        ),
        // the event-bus domain would publish a second kind whose snapshots share the
        // aggregator's unlabelled lag histograms
        (
            "TELEMESH__EVENT_BUS_HEALTH__ENABLED".to_owned(),
            "false".to_owned(),
        ),
    ]);
    let agg_log = dir.path().join("aggregator.log");
    let svc_log = dir.path().join("readiness.log");
    let mut aggregator = spawn("aggregator", &agg_env, &agg_log);
    let mut readiness = spawn("kafka-readiness", &svc_env, &svc_log);

    // metrics: the one snapshot is produced once, consumed once, journaled once
    let produced = wait_for(
        "the readiness snapshot produced",
        Duration::from_secs(60),
        || {
            let addr = svc_addr.clone();
            async move {
                let s = scrape(&addr).await?;
                value(
                    &s,
                    "telemesh_publisher_snapshots_produced_total",
                    &[("kind", KIND)],
                )
                .filter(|v| *v >= 1.0)
                .map(|v| (v, s))
            }
        },
    )
    .await;
    let (produced, svc_metrics) = produced;
    assert_eq!(produced, 1.0);
    assert_eq!(
        value(
            &svc_metrics,
            "telemesh_publisher_publish_duration_seconds",
            &[("kind", KIND)]
        ),
        Some(1.0),
        "one publish latency observation"
    );
    assert_eq!(
        value(
            &svc_metrics,
            "telemesh_build_info",
            &[("service", "kafka-readiness")]
        ),
        Some(1.0)
    );
    let agg_metrics = wait_for("the snapshot journaled", Duration::from_secs(60), || {
        let addr = agg_addr.clone();
        async move {
            let s = scrape(&addr).await?;
            value(
                &s,
                "telemesh_aggregator_snapshots_journaled_total",
                &[("kind", KIND)],
            )
            .filter(|v| *v >= 1.0)
            .map(|_| s)
        }
    })
    .await;
    for (name, expected) in [
        ("telemesh_aggregator_snapshots_journaled_total", 1.0),
        ("telemesh_aggregator_messages_consumed_total", 1.0),
        ("telemesh_aggregator_end_to_end_lag_seconds", 1.0),
        ("telemesh_aggregator_dispatch_lag_seconds", 1.0),
    ] {
        let labels: &[(&str, &str)] = if name.ends_with("_total") {
            &[("kind", KIND)]
        } else {
            &[]
        };
        assert_eq!(value(&agg_metrics, name, labels), Some(expected), "{name}");
    }
    assert_eq!(
        value(&agg_metrics, "telemesh_aggregator_dead_letters_total", &[]).unwrap_or(0.0),
        0.0
    );
    assert!(value(&agg_metrics, "telemesh_domain_grade", &[("kind", KIND)]).is_some());
    assert!(value(
        &agg_metrics,
        "telemesh_domain_snapshot_age_seconds",
        &[("kind", KIND)]
    )
    .is_some());
    assert!(value(
        &agg_metrics,
        "telemesh_aggregator_mailbox_depth_messages",
        &[("actor", "journal")]
    )
    .is_some());
    assert_eq!(
        value(
            &agg_metrics,
            "telemesh_build_info",
            &[("service", "aggregator")]
        ),
        Some(1.0)
    );

    // traces: evaluate → send (readiness process) → process → journal.append, summary.update
    // (aggregator process), all in one trace
    let mut spans: Vec<ExportedSpan> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let by_name = |spans: &[ExportedSpan], name: &str| -> Option<ExportedSpan> {
        spans.iter().find(|s| s.name == name).cloned()
    };
    loop {
        spans.extend(
            collector
                .exported_spans(1, Duration::from_millis(500))
                .await,
        );
        let names = ["summary.update", "journal.append"];
        let complete = by_name(&spans, &format!("send {topic}")).is_some()
            && by_name(&spans, &format!("process {topic}")).is_some()
            && names.iter().all(|n| by_name(&spans, n).is_some())
            && by_name(&spans, &format!("evaluate {KIND}")).is_some();
        if complete {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spans missing; got {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
    let evaluate = by_name(&spans, &format!("evaluate {KIND}")).unwrap();
    let send = by_name(&spans, &format!("send {topic}")).unwrap();
    let process = by_name(&spans, &format!("process {topic}")).unwrap();
    let journal = by_name(&spans, "journal.append").unwrap();
    let summary = by_name(&spans, "summary.update").unwrap();
    for span in [&send, &process, &journal, &summary] {
        assert_eq!(
            span.trace_id, evaluate.trace_id,
            "{} is in another trace",
            span.name
        );
    }
    assert_eq!(send.parent_span_id, evaluate.span_id);
    assert_eq!(
        process.parent_span_id, send.span_id,
        "process continues the producer's context"
    );
    assert_eq!(journal.parent_span_id, process.span_id);
    assert_eq!(summary.parent_span_id, process.span_id);
    assert!(
        send.kind.to_lowercase().contains("producer"),
        "{}",
        send.kind
    );
    assert!(
        process.kind.to_lowercase().contains("consumer"),
        "{}",
        process.kind
    );
    for span in [&send, &process] {
        assert!(
            attr(span, "messaging.system").contains("\"kafka\""),
            "{span:?}"
        );
        assert!(attr(span, "messaging.destination.name").contains(&topic));
    }
    assert!(attr(&send, "messaging.kafka.offset").contains("IntValue"));
    assert!(attr(&process, "messaging.kafka.offset").contains("IntValue"));
    assert!(attr(&process, "messaging.consumer.group.name").contains(&kafka.group_id));
    assert!(attr(&process, "messaging.operation.type").contains("process"));
    assert!(attr(&process, "telemesh.dispatch_lag_seconds").contains("DoubleValue"));
    assert!(attr(&process, "telemesh.mailbox.depth").contains("IntValue"));
    let attrs: HashMap<_, _> = process.attributes.iter().collect();
    assert!(attrs.contains_key(&"telemesh.snapshot.id".to_owned()));

    // logs: graceful stop, then every line of both processes is JSON with identity + context
    readiness.stop();
    aggregator.stop();
    for (path, service) in [(&agg_log, "aggregator"), (&svc_log, "kafka-readiness")] {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            lines += 1;
            let json: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{service} log line is not JSON ({e}): {line}"));
            assert_eq!(json["service"], service, "{line}");
            assert_eq!(json["instance"], "obs-1", "{line}");
            assert_eq!(json["version"], env!("CARGO_PKG_VERSION"), "{line}");
            assert_eq!(json["region"], "eu", "{line}");
            assert_eq!(json["tier"], "prod", "{line}");
            assert!(json["level"].is_string() && json["timestamp"].is_string());
            assert!(
                !line.contains(&secret),
                "secret in a {service} log line: {line}"
            );
            assert!(
                !line.contains(":telemesh@"),
                "database password in a {service} log line: {line}"
            );
        }
        assert!(lines >= 3, "{service} logged only {lines} lines:\n{text}");
    }
}
