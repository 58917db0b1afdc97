//! The open kind catalogue and the HTTP intake end to end: a kind outside the catalogue,
//! produced by a separate process over real Kafka or sent to `POST /api/v1/snapshots` (over
//! Kafka and in-process), is journaled and shown as "unlisted"; hostile intake bodies get 4xx
//! JSON and publish nothing; the `docs/producers.md` examples (curl, Python urllib) work
//! against a running aggregator.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use std::sync::Arc;
use telemesh_aggregator::{subscribed_topics, Aggregator, AggregatorSettings, TransportParts};

use telemesh_core::config::{KafkaSettings, Secret};
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::kafka::{ensure_topics, KafkaPublisher, TopicSpec};
use telemesh_core::transport::Publisher;
use telemesh_core::{topics, Component, Encoding, Grade, Snapshot, Source};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, journal_counts, pg_journal, KafkaTestbed,
};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};
use tokio::process::Command;

const TOKEN: &str = "intake-test-token";
const WAIT: Duration = Duration::from_secs(60);
const PRODUCERS_MD: &str = include_str!("../../docs/producers.md");
const READINESS_MD: &str = include_str!("../../docs/readiness.md");

fn settings(token: &str) -> AggregatorSettings {
    AggregatorSettings {
        intake_token: Secret::new(token),
        intake_max_batch: 3,
        intake_max_body_bytes: 64 * 1024,
        ..aggregator_settings()
    }
}

struct InProcess {
    aggregator: Aggregator,
    db: String,
    url: String,
}

async fn in_process(token: &str) -> InProcess {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let bus = InProcessBus::new(64, subscribed_topics(""));
    let aggregator = Aggregator::start(
        &settings(token),
        "127.0.0.1:0",
        "",
        pg_journal(&db).await,
        TransportParts::in_process(
            bus.subscriber().expect("in-process subscriber"),
            bus.publisher(),
        ),
    )
    .await
    .expect("start aggregator");
    InProcess {
        url: format!("http://{}", aggregator.http_addr),
        aggregator,
        db,
    }
}

fn snapshot(kind: &str, grade: Grade) -> Snapshot {
    let mut s = Snapshot::new(kind, Source::new("team-x", "http"), Utc::now());
    s.push(Component::new("feed", grade, format!("feed is {grade}")));
    s.summary = format!("team x feed is {grade}");
    s.metric("interval_seconds", 60.0);
    s.markdown = s.render_markdown(kind);
    s
}

fn body_of(snapshots: &[&Snapshot]) -> Vec<u8> {
    serde_json::to_vec(snapshots).expect("encode")
}

async fn post(
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/api/v1/snapshots"))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("POST /api/v1/snapshots");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text}"));
    (status, json, challenge)
}

async fn get_json(url: &str) -> Value {
    let text = reqwest::get(url)
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
}

/// Waits until the summary has a block of `kind` with `grade`; returns the block.
async fn wait_block(url: &str, kind: &str, grade: &str) -> Value {
    let summary = format!("{url}/api/v1/summary");
    wait_until(&format!("{kind} {grade} in the summary"), WAIT, || {
        let summary = summary.clone();
        async move {
            let body = reqwest::get(summary).await.ok()?.text().await.ok()?;
            let json: Value = serde_json::from_str(&body).ok()?;
            let block = json["domains"][kind].clone();
            (block["status"] == grade).then_some(block)
        }
    })
    .await
}

async fn journaled(url: &str, kind: &str) -> Vec<Value> {
    let body = get_json(&format!("{url}/api/v1/snapshots?kind={kind}")).await;
    body["snapshots"].as_array().cloned().unwrap_or_default()
}

/// Checks that `kind` is shown as unlisted in the JSON summary, the Markdown summary and the
/// page.
async fn assert_unlisted(url: &str, kind: &str) {
    let summary = get_json(&format!("{url}/api/v1/summary")).await;
    assert_eq!(summary["domains"][kind]["listed"], false, "{summary}");
    assert_eq!(summary["domains"][kind]["title"], kind, "{summary}");
    assert_eq!(
        summary["domains"][topics::KAFKA_READINESS]["listed"],
        Value::Null,
        "no kafka readiness block in these tests"
    );
    let markdown = reqwest::get(format!("{url}/api/v1/summary?format=markdown"))
        .await
        .expect("markdown")
        .text()
        .await
        .expect("markdown body");
    assert!(
        markdown.contains(&format!("| {kind} (unlisted) |")),
        "{markdown}"
    );
    let page = reqwest::get(format!("{url}/domains/{kind}"))
        .await
        .expect("page")
        .text()
        .await
        .expect("page body");
    assert!(page.contains("class=\"unlisted\""), "{page}");
    let index = reqwest::get(format!("{url}/"))
        .await
        .expect("index")
        .text()
        .await
        .expect("index body");
    assert!(index.contains(&format!("data-kind=\"{kind}\"")), "{index}");
    assert!(index.contains(">unlisted</span>"), "{index}");
}

#[actix_rt::test]
async fn hostile_intake_bodies_get_4xx_json_and_publish_nothing_then_valid_ones_are_journaled() {
    let run = in_process(TOKEN).await;
    let url = &run.url;
    let ok = snapshot("telemetry.team_x.latency", Grade::Warn);
    let good = body_of(&[&ok]);

    // the token comes first
    let (status, body, challenge) = post(url, None, "application/json", good.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    assert!(challenge.is_some_and(|c| c.starts_with("Bearer")));
    let (status, body, _) = post(url, Some("wrong"), "application/json", good.clone()).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    let (status, _, _) = post(url, Some(TOKEN), "text/plain", good.clone()).await;
    assert_eq!(status, 415);

    let mut nul = serde_json::to_value(&ok).unwrap();
    nul["summary"] = json!("nul \u{0} inside");
    let mut wrong_type = serde_json::to_value(&ok).unwrap();
    wrong_type["components"] = json!("not a list");
    let mut bad_kind = serde_json::to_value(&ok).unwrap();
    bad_kind["kind"] = json!("telemetry.Team.X");
    let mut dlq_kind = serde_json::to_value(&ok).unwrap();
    dlq_kind["kind"] = json!(topics::DLQ);
    let mut future = serde_json::to_value(&ok).unwrap();
    future["generated_at"] = json!((Utc::now() + chrono::Duration::days(1)).to_rfc3339());
    let mut nan_metric = serde_json::to_string(&ok).unwrap();
    nan_metric = nan_metric.replace("\"interval_seconds\":60.0", "\"interval_seconds\":NaN");
    let four = body_of(&[&ok, &ok, &ok, &ok]);
    let huge = {
        let mut s = ok.clone();
        s.summary = "x".repeat(70 * 1024);
        body_of(&[&s])
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty body", vec![], 400, "invalid_json"),
        (
            "malformed JSON",
            b"{\"id\": ".to_vec(),
            400,
            "invalid_snapshot",
        ),
        ("not an object", b"42".to_vec(), 400, "invalid_json"),
        ("empty batch", b"[]".to_vec(), 400, "empty_batch"),
        (
            "wrong types",
            serde_json::to_vec(&wrong_type).unwrap(),
            400,
            "invalid_snapshot",
        ),
        (
            "NUL",
            serde_json::to_vec(&nul).unwrap(),
            400,
            "invalid_snapshot",
        ),
        ("NaN", nan_metric.into_bytes(), 400, "invalid_snapshot"),
        (
            "bad kind",
            serde_json::to_vec(&bad_kind).unwrap(),
            400,
            "invalid_kind",
        ),
        (
            "DLQ kind",
            serde_json::to_vec(&json!([ok, dlq_kind])).unwrap(),
            400,
            "invalid_kind",
        ),
        (
            "future",
            serde_json::to_vec(&future).unwrap(),
            400,
            "invalid_snapshot",
        ),
        ("huge batch", four, 413, "batch_too_large"),
        ("huge body", huge, 413, "body_too_large"),
        (
            "invalid UTF-8",
            b"{\"id\": \"\xff\xfe\"}".to_vec(),
            400,
            "invalid_snapshot",
        ),
    ];
    for (what, body, status, error) in cases {
        let (got, answer, _) = post(url, Some(TOKEN), "application/json", body).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(error)),
            "{what}: {answer}"
        );
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {answer}"
        );
    }

    // a valid batch: an unlisted kind and a listed one
    let listed = snapshot(topics::INGEST_TRENDS, Grade::Ok);
    let (status, answer, _) = post(
        url,
        Some(TOKEN),
        "application/json; charset=utf-8",
        body_of(&[&ok, &listed]),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["snapshots"][0]["id"], ok.id.to_string());
    assert_eq!(answer["snapshots"][0]["topic"], "telemetry.team_x.latency");
    wait_block(url, "telemetry.team_x.latency", "warn").await;
    wait_block(url, topics::INGEST_TRENDS, "ok").await;
    // FIFO bus: had any refused body been published, it would be journaled before these two
    let (rows, distinct) = journal_counts(&run.db).await;
    assert_eq!(
        (rows, distinct),
        (2, 2),
        "only the valid batch was journaled"
    );
    assert_unlisted(url, "telemetry.team_x.latency").await;
    let summary = get_json(&format!("{url}/api/v1/summary")).await;
    assert_eq!(summary["domains"][topics::INGEST_TRENDS]["listed"], true);
    assert_eq!(
        summary["domains"][topics::INGEST_TRENDS]["title"],
        "Ingest trends"
    );
    // the same snapshot again: accepted, journaled once (idempotent on the id)
    let (status, _, _) = post(url, Some(TOKEN), "application/json", good).await;
    assert_eq!(status, 202);
    let stream_kind = get_json(&format!("{url}/api/v1/snapshots?kind=telemetry.nope")).await;
    assert_eq!(stream_kind["error"], "unknown_kind", "{stream_kind}");
    assert!(
        stream_kind["detail"]
            .as_str()
            .unwrap()
            .contains("telemetry.<area>.<name>"),
        "{stream_kind}"
    );
    run.aggregator.stop().await;
}

#[actix_rt::test]
async fn intake_without_a_token_is_disabled_and_names_the_setting() {
    let run = in_process("").await;
    let body = body_of(&[&snapshot("telemetry.team_x.latency", Grade::Ok)]);
    let (status, answer, _) = post(&run.url, Some("anything"), "application/json", body).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"], "disabled");
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains("aggregator.intake_token"), "{detail}");
    assert!(
        detail.contains("TELEMESH__AGGREGATOR__INTAKE_TOKEN"),
        "{detail}"
    );
    run.aggregator.stop().await;
}

#[actix_rt::test]
async fn an_unlisted_kind_from_a_separate_process_and_from_http_intake_travels_over_kafka() {
    let bed = KafkaTestbed::start(1, &settings(TOKEN), Encoding::Bincode).await;
    let url = format!("http://{}", bed.aggregator.http_addr);
    let prefix = bed.kafka.topic_prefix.clone();

    // a producer process of its own creates its topic after the aggregator started and
    // publishes a kind no catalogue lists
    let kind = "telemetry.team_x.feed";
    let out = Command::new(env!("CARGO_BIN_EXE_produce_snapshot"))
        .args([&bed.kafka.brokers, &prefix, kind, "warn"])
        .output()
        .await
        .expect("run the produce_snapshot process");
    assert!(
        out.status.success(),
        "produce_snapshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let block = wait_block(&url, kind, "warn").await;
    assert_eq!(block["snapshot"]["id"], id);
    assert_eq!(block["snapshot"]["source"]["instance"], "separate-process");
    let rows = journaled(&url, kind).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["kafka"]["topic"], format!("{prefix}{kind}"));
    assert_unlisted(&url, kind).await;

    // the same through HTTP intake: published to the kind's Kafka topic, acknowledged, then
    // consumed and journaled like any record
    let http_kind = "telemetry.team_y.orders";
    let report = ensure_topics(
        &bed.kafka,
        &[TopicSpec {
            name: topics::topic_name(&prefix, http_kind),
            partitions: 1,
            replication_factor: 1,
        }],
    )
    .await
    .expect("create topic");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let sent = snapshot(http_kind, Grade::Fail);
    let (status, answer, _) = post(&url, Some(TOKEN), "application/json", body_of(&[&sent])).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["snapshots"][0]["topic"],
        format!("{prefix}{http_kind}")
    );
    assert!(answer["snapshots"][0]["offset"].as_i64().unwrap() >= 0);
    let block = wait_block(&url, http_kind, "fail").await;
    assert_eq!(block["snapshot"]["id"], sent.id.to_string());
    assert_eq!(block["listed"], false);
    let rows = journaled(&url, http_kind).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["kafka"]["offset"], answer["snapshots"][0]["offset"]);
    // hostile bodies over Kafka publish nothing either
    let (status, _, _) = post(&url, Some(TOKEN), "application/json", b"[{}]".to_vec()).await;
    assert_eq!(status, 400);
    let (rows_total, _) = journal_counts(&bed.db).await;
    assert_eq!(rows_total, 2);
    bed.aggregator.stop().await;
}

#[actix_rt::test]
async fn a_transport_that_does_not_acknowledge_answers_503_and_the_client_may_retry() {
    // a real Kafka producer pointed at a closed port: nothing is ever acknowledged
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let unreachable = KafkaSettings {
        brokers: "127.0.0.1:1".into(),
        message_timeout_ms: 500,
        request_timeout_ms: 500,
        ..KafkaSettings::default()
    };
    let publisher: Arc<dyn Publisher> =
        Arc::new(KafkaPublisher::new(&unreachable).expect("kafka publisher"));
    let bus = InProcessBus::new(8, subscribed_topics(""));
    let aggregator = Aggregator::start(
        &settings(TOKEN),
        "127.0.0.1:0",
        "",
        pg_journal(&db).await,
        TransportParts::kafka(bus.subscriber().expect("in-process subscriber"), publisher),
    )
    .await
    .expect("start aggregator");
    let url = format!("http://{}", aggregator.http_addr);
    let a = snapshot("telemetry.team_x.latency", Grade::Ok);
    let b = snapshot("telemetry.team_x.other", Grade::Ok);
    let (status, answer, _) = post(&url, Some(TOKEN), "application/json", body_of(&[&a, &b])).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "unavailable");
    assert_eq!(answer["published"], json!([]));
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains("2 of 2"), "{detail}");
    assert!(detail.contains("retry the whole request"), "{detail}");
    assert_eq!(journal_counts(&db).await.0, 0);
    aggregator.stop().await;
}

/// The fenced block of `docs/producers.md` that follows `heading`.
fn example(heading: &str, fence: &str) -> String {
    let after = PRODUCERS_MD
        .split_once(heading)
        .unwrap_or_else(|| panic!("docs/producers.md has no {heading:?}"))
        .1;
    let start = after
        .split_once(&format!("```{fence}\n"))
        .unwrap_or_else(|| panic!("no ```{fence} block after {heading:?}"))
        .1;
    start
        .split_once("\n```")
        .expect("closing fence")
        .0
        .to_owned()
}

#[actix_rt::test]
async fn the_curl_and_python_examples_of_the_producer_docs_publish() {
    let run = in_process(TOKEN).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let python = dir.path().join("publish.py");
    std::fs::write(&python, example("### Python", "python")).expect("write python");
    let out = Command::new("python3")
        .arg(&python)
        .env("TELEMESH_URL", &run.url)
        .env("TELEMESH_TOKEN", TOKEN)
        .output()
        .await
        .expect("python3 must be installed to run the docs example");
    assert!(
        out.status.success(),
        "python example failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("'accepted': 1"));
    let block = wait_block(&run.url, "telemetry.trading_runtime.positions", "ok").await;
    assert_eq!(block["listed"], false);

    let out = Command::new("bash")
        .arg("-euc")
        .arg(example("### curl", "sh"))
        .env("TELEMESH_URL", &run.url)
        .env("TELEMESH_TOKEN", TOKEN)
        .output()
        .await
        .expect("bash and curl must be installed to run the docs example");
    assert!(
        out.status.success(),
        "curl example failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("curl printed the answer");
    assert_eq!(answer["accepted"], 1, "{answer}");
    wait_block(&run.url, "telemetry.trading_runtime.heartbeat", "ok").await;
    // the wrong token: the Python example exits non-zero with the refusal
    let out = Command::new("python3")
        .arg(&python)
        .env("TELEMESH_URL", &run.url)
        .env("TELEMESH_TOKEN", "wrong")
        .output()
        .await
        .expect("python3");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused (403)"));
    run.aggregator.stop().await;
}

/// The worked example of a trading-internal feed (`docs/readiness.md`, sensory drift published
/// with `curl`) is accepted, journaled, shown in the summary as an unlisted domain and counted in
/// the operational roll-up as `drift_sentry`.
#[actix_rt::test]
async fn the_sensory_drift_example_of_the_readiness_docs_shows_in_the_summary_and_roll_up() {
    let run = in_process(TOKEN).await;
    let script = READINESS_MD
        .split_once("## A trading-internal feed")
        .and_then(|(_, after)| after.split_once("```sh\n"))
        .and_then(|(_, block)| block.split_once("\n```"))
        .map(|(script, _)| script.to_owned())
        .expect("docs/readiness.md has the sensory drift curl example");
    let out = Command::new("bash")
        .arg("-euc")
        .arg(&script)
        .env("TELEMESH_URL", &run.url)
        .env("TELEMESH_TOKEN", TOKEN)
        .output()
        .await
        .expect("bash, curl and python3 must be installed to run the docs example");
    assert!(
        out.status.success(),
        "sensory drift example failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("curl printed the answer");
    assert_eq!(answer["accepted"], 1, "{answer}");
    let block = wait_block(&run.url, "telemetry.sensory.drift", "warn").await;
    assert_eq!(block["listed"], false, "{block}");
    let journal = journaled(&run.url, "telemetry.sensory.drift").await;
    assert_eq!(journal.len(), 1);
    let summary = get_json(&format!("{}/api/v1/summary", run.url)).await;
    let drift = summary["readiness"]["operational"]["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "drift_sentry").cloned())
        .unwrap_or_else(|| panic!("drift_sentry in the operational roll-up: {summary}"));
    assert_eq!(drift["status"], "warn", "{drift}");
    run.aggregator.stop().await;
}
