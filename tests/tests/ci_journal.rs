//! The CI history in the journal database (issue 13), on real servers: the CI domain publishes
//! `telemetry.ci.history` records for each accepted upload, the aggregator journals them into
//! `ci_test_results` / `ci_trends` / `ci_pipeline_runs` exactly once (PostgreSQL, SQLite and
//! TimescaleDB, where they are hypertables; over the in-process transport and real Kafka) and
//! serves them on `GET /api/v1/ci/*`; a CI domain started afresh (a restart, or a second
//! replica) reads them back and grades the same flaky test, coverage drop and run. Hostile uploads are split, clipped or refused with a reason, and
//! the next upload goes through. Fixtures are the real report files of `tests/fixtures/ci`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::{json, Value};
use telemesh_aggregator::journal::ci::{CiPage, CiQuery, CiTable};
use telemesh_aggregator::journal::{JournalRecord, Layout};
use telemesh_aggregator::settings::JournalSettings;
use telemesh_aggregator::{
    subscribed_topics, Aggregator, AggregatorSettings, Journal, TransportParts,
};
use telemesh_ci::coverage::DomainCoverage;
use telemesh_ci::domain::CiDomain;
use telemesh_ci::evaluate::CoverageEntry;
use telemesh_ci::flakes::TestUpload;
use telemesh_ci::github::PipelineRun;
use telemesh_ci::history::{coverage_record, run_record, upload_records};
use telemesh_ci::junit::{parse_report, Outcome, ReportFormat, TestCase, TestReport};
use telemesh_ci::settings::CiSettings;
use telemesh_core::config::{Secret, SecretUrl};
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{Component, Encoding, Grade, Snapshot, Source};
use telemesh_integration_tests::{
    fixtures, namespace, reset_timescale, timescale_settings, timescale_url, wait_until, TestEnv,
};
use telemesh_service::{RunningService, ServiceOptions};

const TOKEN: &str = "ci-upload-token";
const WEBHOOK_SECRET: &str = "ci-webhook-secret";
const COMMIT: &str = "5779607b49aab1200488439f02372c57b4f75444";
const WAIT: Duration = Duration::from_secs(60);

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ci")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0)
        .single()
        .expect("time")
}

fn source() -> Source {
    Source::new("ci", "journal-test")
}

fn upload(id: &str, at: DateTime<Utc>, commit: &str, report: TestReport) -> TestUpload {
    TestUpload {
        upload_id: id.into(),
        recorded_at: at,
        commit: commit.into(),
        branch: Some("main".into()),
        run_id: Some(id.into()),
        run_url: Some(format!("https://github.com/o/r/actions/runs/{id}")),
        suite: Some("pytest".into()),
        report,
    }
}

/// `n` tests with `name`-byte names holding NUL characters and failure texts full of them
/// (`text` times a 6-character piece).
fn hostile_report(n: usize, name: usize, text: usize) -> TestReport {
    TestReport {
        format: ReportFormat::Junit,
        cases: (0..n)
            .map(|i| TestCase {
                test_id: format!("t{i:05}\0{}", "n".repeat(name.saturating_sub(7))),
                outcome: if i % 3 == 0 {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                },
                duration_seconds: 0.01,
                failure: (i % 3 == 0).then(|| "boom\0\u{1}".repeat(text)),
                retried_failures: 0,
            })
            .collect(),
    }
}

fn run(id: u64, conclusion: &str, at: DateTime<Utc>) -> PipelineRun {
    serde_json::from_value(json!({
        "run_id": id, "workflow": "CI", "workflow_path": ".github/workflows/ci.yml",
        "run_number": 7, "run_attempt": 1, "display_title": "fix", "event": "push",
        "conclusion": conclusion, "branch": "main", "commit": COMMIT, "actor": "octocat",
        "url": format!("https://github.com/o/r/actions/runs/{id}"), "repository": "o/r",
        "repository_url": null, "started_at": null, "completed_at": at.to_rfc3339(),
    }))
    .expect("a run")
}

fn batch(records: Vec<Snapshot>) -> Vec<JournalRecord> {
    records
        .into_iter()
        .map(|snapshot| JournalRecord {
            snapshot,
            received_at: Utc::now(),
            kafka: None,
        })
        .collect()
}

async fn read(j: &Journal, table: CiTable, q: CiQuery) -> CiPage {
    j.ci_read(table, &q).await.expect("read the CI history")
}

async fn all_tests(
    j: &Journal,
    q: CiQuery,
) -> Vec<telemesh_aggregator::journal::ci::TestResultRow> {
    let mut rows = Vec::new();
    loop {
        let CiPage::Tests(page) = read(
            j,
            CiTable::Tests,
            CiQuery {
                offset: rows.len() as u32,
                ..q.clone()
            },
        )
        .await
        else {
            panic!("test rows")
        };
        let full = page.len() as u32 == q.limit;
        rows.extend(page);
        if !full {
            return rows;
        }
    }
}

/// Exactly once, split, clipped, filtered, paged, upserted and retained, on any journal
/// (`hostile` tests with `name`-byte names and `text` pieces of failure text in the big upload;
/// `per_batch` records per journal batch).
async fn behaves_like_a_ci_journal(
    j: &Journal,
    hostile: usize,
    name: usize,
    text: usize,
    per_batch: usize,
) {
    let run1 = parse_report(&fixture("junit/pytest-run1.xml")).expect("pytest run 1");
    let cases = run1.cases.len();
    let first = upload("u-run1", t0(), COMMIT, run1.clone());
    let n_hostile = hostile;
    let hostile = upload(
        "u-hostile",
        t0() + ChronoDuration::minutes(1),
        "hostile",
        hostile_report(n_hostile, name, text),
    );
    let entry = CoverageEntry {
        label: "b1".into(),
        recorded_at: t0(),
        percent: 81.25,
        domains: vec![DomainCoverage {
            domain: "calc/alpha".into(),
            files: 1,
            lines_valid: 4,
            lines_covered: 4,
            percent: 100.0,
        }],
    };
    let mut records = upload_records(&first, &source());
    let hostile_records = upload_records(&hostile, &source());
    if n_hostile > telemesh_ci::history::MAX_PART_CASES {
        assert!(hostile_records.len() > 1, "a big report is split");
    }
    records.extend(hostile_records);
    records.push(coverage_record("e1", &entry, &source()));
    records.push(run_record(&run(42, "failure", t0()), &source(), t0()));
    // another producer's record of the kind with a shape nobody knows: journaled, no CI rows
    let mut foreign = Snapshot::new("telemetry.ci.history", Source::new("x", "y"), t0());
    foreign.push(
        Component::new("tests", Grade::Ok, "?").detail("cases", "DROP TABLE ci_test_results"),
    );
    records.push(foreign);
    let count = records.len();
    let mut inserted = 0;
    for chunk in records.chunks(per_batch) {
        inserted += j
            .insert_batch(&batch(chunk.to_vec()))
            .await
            .expect("insert")
            .len();
    }
    assert_eq!(inserted, count);
    for chunk in records.chunks(per_batch) {
        assert!(
            j.insert_batch(&batch(chunk.to_vec()))
                .await
                .expect("replay")
                .is_empty(),
            "publishing the same records again adds no snapshot"
        );
    }

    let commit = all_tests(
        j,
        CiQuery {
            commit: Some(COMMIT.into()),
            ..CiQuery::default()
        },
    )
    .await;
    assert_eq!(commit.len(), cases, "rows once");
    let positions: Vec<i64> = commit.iter().map(|r| r.position).collect();
    assert_eq!(positions, (0..cases as i64).collect::<Vec<_>>());
    assert!(commit.iter().all(|r| r.upload_id == "u-run1"
        && r.suite.as_deref() == Some("pytest")
        && r.recorded_at == t0()));
    let flaky = commit
        .iter()
        .find(|r| r.test_id == "test_calc::test_flaky_network")
        .expect("the flaky test's row");
    assert_eq!(flaky.outcome, "failed");
    assert!(flaky
        .failure
        .as_deref()
        .is_some_and(|f| f.contains("deliberately flaky")));

    // the hostile upload: every case once, in order, NUL replaced, paged by 1000
    let all = all_tests(
        j,
        CiQuery {
            limit: 1_000,
            ..CiQuery::default()
        },
    )
    .await;
    assert_eq!(all.len(), cases + n_hostile);
    let hostile_rows: Vec<_> = all.iter().filter(|r| r.commit == "hostile").collect();
    assert_eq!(hostile_rows.len(), n_hostile);
    for (i, r) in hostile_rows.iter().enumerate() {
        assert_eq!(r.position, i as i64);
        assert!(
            r.test_id.starts_with(&format!("t{i:05}\u{FFFD}")),
            "{}",
            &r.test_id[..10]
        );
    }
    assert!(hostile_rows[0]
        .failure
        .as_deref()
        .is_some_and(|f| f.starts_with("boom\u{FFFD}\u{1}")));

    let one = all_tests(
        j,
        CiQuery {
            test: Some("test_calc::test_flaky_network".into()),
            ..CiQuery::default()
        },
    )
    .await;
    assert_eq!(one.len(), 1);
    let later = all_tests(
        j,
        CiQuery {
            since: Some(t0() + ChronoDuration::seconds(30)),
            ..CiQuery::default()
        },
    )
    .await;
    assert_eq!(
        later.len(),
        n_hostile,
        "since is inclusive and filters by time"
    );

    let CiPage::Trends(trends) = read(j, CiTable::Trends, CiQuery::default()).await else {
        panic!("trend rows")
    };
    assert_eq!(trends.len(), 1);
    assert_eq!(trends[0].percent, Some(81.25));
    assert_eq!(
        trends[0]
            .detail
            .as_ref()
            .map(|d| d["domains"][0]["domain"].clone()),
        Some(json!("calc/alpha"))
    );

    // a run's newer record replaces it (success after failure of the same attempt)
    let fixed = run(42, "success", t0() + ChronoDuration::minutes(5));
    j.insert_batch(&batch(vec![run_record(&fixed, &source(), t0())]))
        .await
        .expect("insert run");
    let CiPage::Runs(runs) = read(j, CiTable::Runs, CiQuery::default()).await else {
        panic!("run rows")
    };
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].conclusion.as_deref(), Some("success"));
    assert_eq!(runs[0].run["url"], "https://github.com/o/r/actions/runs/42");

    // retention removes the CI rows with the snapshots
    j.retain(t0() + ChronoDuration::days(1))
        .await
        .expect("retain");
    assert!(read(j, CiTable::Tests, CiQuery::default()).await.is_empty());
    assert!(read(j, CiTable::Trends, CiQuery::default())
        .await
        .is_empty());
    assert!(read(j, CiTable::Runs, CiQuery::default()).await.is_empty());
}

fn settings(url: &str) -> JournalSettings {
    JournalSettings {
        url: SecretUrl::new(url),
        ..JournalSettings::default()
    }
}

#[tokio::test]
async fn ci_history_in_postgres() {
    let db = TestEnv::get().fresh_database(&namespace()).await;
    let j = Journal::connect(&settings(&db)).await.expect("connect");
    behaves_like_a_ci_journal(&j, 10_000, 1000, 40, usize::MAX).await;
    j.close().await;
}

#[tokio::test]
async fn ci_history_in_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/journal.db", dir.path().display());
    let j = Journal::connect(&settings(&url)).await.expect("connect");
    behaves_like_a_ci_journal(&j, 10_000, 1000, 40, usize::MAX).await;
    j.close().await;
}

#[tokio::test]
async fn ci_history_on_timescale_is_in_hypertables() {
    let url = timescale_url();
    reset_timescale(&url).await;
    let j = Journal::connect(&timescale_settings(&url))
        .await
        .expect("connect to the TimescaleDB test server");
    assert!(
        matches!(j.layout(), Layout::Timescale { .. }),
        "{:?}",
        j.layout()
    );
    let Journal::Postgres(pg) = &j else {
        unreachable!("a Timescale layout is a PostgreSQL journal")
    };
    let hypertables: Vec<String> = sqlx::query_scalar(
        "SELECT hypertable_name::text FROM timescaledb_information.hypertables \
         WHERE hypertable_name LIKE 'ci_%' ORDER BY 1",
    )
    .fetch_all(pg.pool())
    .await
    .expect("hypertables");
    assert_eq!(hypertables, ["ci_test_results", "ci_trends"]);
    // PGlite (WASM, the dev TimescaleDB server) drops the connection on a statement of a few
    // tens of KB (plain snapshots too, not only the CI rows): the split of big reports is
    // covered on PostgreSQL and SQLite above, here a report small enough for one small record
    behaves_like_a_ci_journal(&j, 300, 12, 1, 1).await;
    j.close().await;
}

// ---- end to end: aggregator + CI domain over real HTTP ----

struct Mesh {
    aggregator: Aggregator,
    publisher: SnapshotPublisher,
    base: String,
}

/// An aggregator on `journal_url` fed by the in-process transport.
async fn in_process_mesh(journal_url: &str) -> Mesh {
    let journal = Journal::connect(&settings(journal_url))
        .await
        .expect("open journal");
    let bus = InProcessBus::new(1024, subscribed_topics(""));
    let aggregator = Aggregator::start(
        &AggregatorSettings::default(),
        "127.0.0.1:0",
        "",
        journal,
        TransportParts::in_process(bus.subscriber().expect("subscriber"), bus.publisher()),
    )
    .await
    .expect("start aggregator");
    let base = format!("http://{}", aggregator.http_addr);
    Mesh {
        aggregator,
        publisher: SnapshotPublisher::new(bus.publisher(), Encoding::Json, ""),
        base,
    }
}

/// An aggregator on a fresh PostgreSQL database consuming a fresh namespace of the real Kafka
/// broker, the CI domain publishing bincode to it.
async fn kafka_mesh() -> Mesh {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    fixtures::create_topics(&kafka, 1).await;
    let db = env.fresh_database(&ns).await;
    let aggregator =
        fixtures::kafka_aggregator(&kafka, &db, &fixtures::aggregator_settings()).await;
    let base = format!("http://{}", aggregator.http_addr);
    Mesh {
        aggregator,
        publisher: fixtures::kafka_publisher(&kafka, Encoding::Bincode),
        base,
    }
}

impl Mesh {
    fn publisher(&self) -> SnapshotPublisher {
        self.publisher.clone()
    }

    /// A CI domain publishing into this mesh and reading its history back from it.
    fn ci(&self, instance: &str) -> (RunningService, String) {
        let svc = telemesh_service::start(
            CiDomain::new(CiSettings {
                api_token: Secret::new(TOKEN),
                webhook_secret: Secret::new(WEBHOOK_SECRET),
                aggregator_url: self.base.clone(),
                interval_seconds: 3600,
                coverage_floor: 0.0,
                ..CiSettings::default()
            }),
            ServiceOptions {
                instance: instance.into(),
                publisher: self.publisher(),
                http_addr: Some("127.0.0.1:0".into()),
            },
        )
        .expect("start the CI domain");
        let url = format!("http://{}", svc.http_addr().expect("http"));
        (svc, url)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn count(&self, path: &str) -> u64 {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body["count"].as_u64().unwrap_or_default()
    }

    async fn wait_count(&self, path: &str, want: u64) {
        wait_until(&format!("{path} has {want} rows"), WAIT, || async move {
            (self.count(path).await == want).then_some(())
        })
        .await;
    }
}

async fn post(url: &str, query: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}?{query}"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn component<'a>(s: &'a Snapshot, name: &str) -> &'a Component {
    s.component(name)
        .unwrap_or_else(|| panic!("component {name} of {}", s.kind))
}

/// The lcov fixture with the `calc/alpha` file's lines uncovered (a coverage drop).
fn lowered_lcov() -> Vec<u8> {
    let text = String::from_utf8(fixture("coverage/coverage.lcov")).expect("utf-8");
    let lowered = text.replacen(
        "DA:1,1\nDA:2,1\nDA:5,1\nDA:6,1\nLF:4\nLH:4",
        "DA:1,0\nDA:2,0\nDA:5,0\nDA:6,0\nLF:4\nLH:0",
        1,
    );
    assert_ne!(lowered, text, "the fixture has the calc/alpha section");
    lowered.into_bytes()
}

async fn history_survives_a_restart(m: Mesh) {
    let reports = format!("commit={COMMIT}&branch=main&suite=pytest&run_id=1");
    let n1 = parse_report(&fixture("junit/pytest-run1.xml"))
        .expect("run 1")
        .cases
        .len() as u64;
    let n2 = parse_report(&fixture("junit/pytest-run2.xml"))
        .expect("run 2")
        .cases
        .len() as u64;

    // replica "a" takes two report uploads for one commit and two coverage reports
    let (a, a_url) = m.ci("a");
    let (status, answer) = post(
        &format!("{a_url}/api/v1/ci/reports"),
        &reports,
        fixture("junit/pytest-run1.xml"),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["records"], 1, "{answer}");
    let (status, answer) = post(
        &format!("{a_url}/api/v1/ci/reports"),
        &format!("commit={COMMIT}&branch=main&suite=pytest&run_id=2"),
        fixture("junit/pytest-run2.xml"),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = post(
        &format!("{a_url}/api/v1/ci/coverage"),
        "label=b1",
        fixture("coverage/coverage.lcov"),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = post(
        &format!("{a_url}/api/v1/ci/coverage"),
        "label=b2",
        lowered_lcov(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    // and a failed run of the published webhook example
    let mut event: Value = serde_json::from_slice(&fixture(
        "github/workflow_run.completed.success.payload.json",
    ))
    .expect("webhook example");
    event["workflow_run"]["conclusion"] = "failure".into();
    let run_url = event["workflow_run"]["html_url"]
        .as_str()
        .expect("html_url")
        .to_owned();
    let body = serde_json::to_vec(&event).expect("json");
    let r = reqwest::Client::new()
        .post(format!("{a_url}/api/v1/ci/github"))
        .header("x-github-event", "workflow_run")
        .header("x-github-delivery", "delivery-1")
        .header(
            "x-hub-signature-256",
            telemesh_ci::webhook::signature_header(WEBHOOK_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status().as_u16(), 202);
    m.wait_count(&format!("/api/v1/ci/tests?commit={COMMIT}"), n1 + n2)
        .await;
    m.wait_count("/api/v1/ci/coverage", 2).await;
    m.wait_count("/api/v1/ci/runs", 1).await;
    a.stop(false).await;

    // replica "b" starts with empty memory: the history comes back from the journal
    let (b, b_url) = m.ci("b");
    let graded = b.handle().run_now().await;
    let flakes = graded
        .iter()
        .find(|s| s.kind == "telemetry.ci.flakes")
        .expect("flakes snapshot");
    assert_eq!(flakes.status, Grade::Warn, "{}", flakes.summary);
    let flaky = serde_json::Value::from(
        component(flakes, "flaky_tests")
            .details
            .get("flaky")
            .expect("flaky list"),
    );
    assert_eq!(
        flaky[0]["test_id"], "pytest:test_calc::test_flaky_network",
        "{flaky}"
    );
    assert_eq!(component(flakes, "journal").status, Grade::Ok);
    let coverage = graded
        .iter()
        .find(|s| s.kind == "telemetry.ci.coverage")
        .expect("coverage snapshot");
    let overall = component(coverage, "overall");
    assert_eq!(overall.status, Grade::Warn, "{}", overall.summary);
    assert!(overall.summary.contains("dropped"), "{}", overall.summary);
    let pipeline = graded
        .iter()
        .find(|s| s.kind == "telemetry.ci.pipeline")
        .expect("pipeline snapshot");
    assert!(
        serde_json::to_string(pipeline)
            .expect("json")
            .contains(&run_url),
        "the run comes back from the journal: {}",
        pipeline.summary
    );

    // the same report sent again after the restart is known: nothing new is journaled
    let (status, answer) = post(
        &format!("{b_url}/api/v1/ci/reports"),
        &reports,
        fixture("junit/pytest-run1.xml"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "already_recorded");

    // hostile uploads: split (10,000 tests, 1000-byte names with NUL), or refused with a reason
    let events: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({
                "nodeid": format!("tests/test_{i:05}.py::t\u{0}{}", "n".repeat(600)),
                "outcome": if i % 2 == 0 { "failed" } else { "passed" },
                "duration": "0.5",
                "longrepr": "E assert\u{0}".repeat(20),
            })
        })
        .collect();
    let big = serde_json::to_vec(&json!({"meta": {}, "events": events})).expect("json");
    let (status, answer) = post(
        &format!("{b_url}/api/v1/ci/reports"),
        "commit=hostile&suite=pytest",
        big,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert!(
        answer["records"].as_u64().is_some_and(|n| n > 1),
        "{answer}"
    );
    let refused: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "commit=nul",
            b"<testsuite><testcase name='a\0b'/></testsuite>".to_vec(),
            422,
            "invalid_report",
        ),
        (
            "commit=long",
            format!(
                "<testsuite><testcase name='{}'/></testsuite>",
                "x".repeat(2000)
            )
            .into_bytes(),
            422,
            "invalid_report",
        ),
        (
            "commit=a%00b",
            fixture("junit/pytest-run1.xml"),
            400,
            "invalid_query",
        ),
        (
            "commit=huge",
            vec![b' '; 16 * 1024 * 1024 + 1],
            413,
            "too_large",
        ),
    ];
    for (query, body, want, error) in refused {
        let (status, answer) = post(&format!("{b_url}/api/v1/ci/reports"), query, body).await;
        assert_eq!(status, want, "{query}: {answer}");
        assert_eq!(answer["error"], error, "{query}: {answer}");
        assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // the next upload goes through
    let (status, answer) = post(
        &format!("{b_url}/api/v1/ci/reports"),
        "commit=next&suite=pytest",
        fixture("junit/pytest-run2.xml"),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    m.wait_count("/api/v1/ci/tests?commit=next", n2).await;
    for commit in ["nul", "long", "huge"] {
        assert_eq!(
            m.count(&format!("/api/v1/ci/tests?commit={commit}")).await,
            0
        );
    }
    let mut hostile = 0;
    while hostile < 10_000 {
        let got = m
            .count(&format!(
                "/api/v1/ci/tests?commit=hostile&limit=10000&offset={hostile}"
            ))
            .await;
        if got == 0 {
            break;
        }
        hostile += got;
    }
    assert_eq!(hostile, 10_000, "every hostile test journaled once");

    // the same records published twice (a redelivery) are journaled once
    let again = upload(
        "u-again",
        Utc::now(),
        "again",
        parse_report(&fixture("junit/pytest-run2.xml")).expect("run 2"),
    );
    let publisher = m.publisher();
    for _ in 0..2 {
        for r in upload_records(&again, &source()) {
            publisher.publish(&r).await.expect("publish");
        }
    }
    let sentinel = upload(
        "u-sentinel",
        Utc::now(),
        "sentinel",
        parse_report(&fixture("junit/pytest-run1.xml")).expect("run 1"),
    );
    for r in upload_records(&sentinel, &source()) {
        publisher.publish(&r).await.expect("publish");
    }
    m.wait_count("/api/v1/ci/tests?commit=sentinel", n1).await;
    assert_eq!(m.count("/api/v1/ci/tests?commit=again").await, n2);

    // hostile read parameters are 400 JSON
    for query in [
        "limit=0",
        "limit=100000",
        "offset=-1",
        "since=yesterday",
        "commit=a%00b",
        "bogus=1",
    ] {
        let (status, body) = m.get(&format!("/api/v1/ci/tests?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    b.stop(false).await;
    m.aggregator.stop().await;
}

#[actix_rt::test]
async fn history_survives_a_restart_on_postgres() {
    let db = TestEnv::get().fresh_database(&namespace()).await;
    let m = in_process_mesh(&db).await;
    tokio::time::timeout(Duration::from_secs(300), history_survives_a_restart(m))
        .await
        .expect("within five minutes");
}

#[actix_rt::test]
async fn history_survives_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/journal.db", dir.path().display());
    let m = in_process_mesh(&url).await;
    tokio::time::timeout(Duration::from_secs(300), history_survives_a_restart(m))
        .await
        .expect("within five minutes");
}

#[actix_rt::test]
async fn history_survives_a_restart_over_kafka() {
    let m = kafka_mesh().await;
    tokio::time::timeout(Duration::from_secs(300), history_survives_a_restart(m))
        .await
        .expect("within five minutes");
}
