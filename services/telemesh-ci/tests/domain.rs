//! The CI domain on the framework (in-process transport, real HTTP on port 0): a signed
//! failing run of the main pipeline publishes a failing `telemetry.ci.pipeline` at once, the
//! next success an ok one; uploads publish flakes and coverage; unconfigured, it says which
//! setting to set.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use telemesh_ci::domain::CiDomain;
use telemesh_ci::kinds;
use telemesh_ci::settings::CiSettings;
use telemesh_ci::webhook::signature_header;
use telemesh_core::config::Secret;
use telemesh_core::Grade;
use telemesh_service::testing::TestService;

const SECRET: &str = "hook";
const TOKEN: &str = "upload";

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/ci")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn run_body(conclusion: &str, run_id: u64) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(
        "github/workflow_run.completed.success.payload.json",
    ))
    .expect("json");
    v["workflow_run"]["conclusion"] = conclusion.into();
    v["workflow_run"]["id"] = run_id.into();
    serde_json::to_vec(&v).expect("json")
}

fn settings() -> CiSettings {
    CiSettings {
        interval_seconds: 3600,
        main_workflow: "test".into(),
        webhook_secret: Secret::new(SECRET),
        api_token: Secret::new(TOKEN),
        ..CiSettings::default()
    }
}

async fn deliver(
    client: &reqwest::Client,
    svc: &TestService,
    body: Vec<u8>,
    delivery: &str,
) -> u16 {
    client
        .post(svc.url("/api/v1/ci/github"))
        .header("x-github-event", "workflow_run")
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            signature_header(SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

#[actix::test]
async fn failing_then_recovering_main_pipeline_is_published_at_once() {
    let svc = TestService::start(CiDomain::new(settings())).expect("start");
    let first = svc
        .wait_published(kinds::PIPELINE, 1, Duration::from_secs(10))
        .await;
    assert_eq!(
        first.last().map(|s| s.status),
        Some(Grade::Warn),
        "no run seen yet"
    );
    let client = reqwest::Client::new();

    assert_eq!(
        deliver(&client, &svc, run_body("failure", 1), "d-1").await,
        202
    );
    let published = svc
        .wait_published(kinds::PIPELINE, 2, Duration::from_secs(10))
        .await;
    let failed = published.last().expect("published");
    assert_eq!(failed.status, Grade::Fail, "{}", failed.summary);
    let main = failed.component("main_pipeline").expect("main_pipeline");
    assert_eq!(main.details["conclusion"], "failure".into());
    assert_eq!(main.details["actor"], "Codertocat".into());

    assert_eq!(
        deliver(&client, &svc, run_body("success", 2), "d-2").await,
        202
    );
    let published = svc
        .wait_published(kinds::PIPELINE, 3, Duration::from_secs(10))
        .await;
    let recovered = published.last().expect("published");
    assert_eq!(
        recovered.component("main_pipeline").map(|c| c.status),
        Some(Grade::Ok)
    );
    // The example's run is from 2020: older than stale_after_hours, so the snapshot warns.
    assert_eq!(
        recovered.component("freshness").map(|c| c.status),
        Some(Grade::Warn)
    );
    assert!(published
        .last()
        .is_some_and(|s| s.metrics.contains_key("time_to_recovery_seconds")));
    svc.service.stop(false).await;
}

#[actix::test]
async fn uploads_publish_flakes_and_coverage() {
    let svc = TestService::start(CiDomain::new(settings())).expect("start");
    svc.wait_published(kinds::FLAKES, 1, Duration::from_secs(10))
        .await;
    let client = reqwest::Client::new();
    for run in ["junit/pytest-run1.xml", "junit/pytest-run2.xml"] {
        let status = client
            .post(svc.url("/api/v1/ci/reports?commit=abc123&branch=main&suite=pytest"))
            .bearer_auth(TOKEN)
            .body(fixture(run))
            .send()
            .await
            .expect("send")
            .status();
        assert_eq!(status.as_u16(), 201);
    }
    let flakes = svc
        .wait_published(kinds::FLAKES, 3, Duration::from_secs(10))
        .await;
    let last = flakes.last().expect("flakes");
    assert_eq!(last.status, Grade::Warn, "{}", last.summary);
    assert!(
        last.markdown.contains("test_flaky_network"),
        "{}",
        last.markdown
    );

    let status = client
        .post(svc.url("/api/v1/ci/coverage?label=build-1"))
        .bearer_auth(TOKEN)
        .body(fixture("coverage/coverage.lcov"))
        .send()
        .await
        .expect("send")
        .status();
    assert_eq!(status.as_u16(), 201);
    let coverage = svc
        .wait_published(kinds::COVERAGE, 4, Duration::from_secs(10))
        .await;
    let last = coverage.last().expect("coverage");
    assert_eq!(last.metrics.get("coverage_percent"), Some(&68.75));
    assert_eq!(last.status, Grade::Fail, "68.75 % is below the 70 % floor");
    svc.service.stop(false).await;
}

#[actix::test]
async fn unconfigured_domain_names_the_setting() {
    let svc = TestService::start(CiDomain::new(CiSettings::default())).expect("start");
    let published = svc
        .wait_published(kinds::PIPELINE, 1, Duration::from_secs(10))
        .await;
    let block = published.first().expect("block");
    assert_eq!(block.status, Grade::Warn);
    assert!(
        block.summary.contains("ci.webhook_secret"),
        "{}",
        block.summary
    );
    svc.service.stop(false).await;
}

/// An upload is published as history records, a webhook run as one too (on the next cycle),
/// and a journal that cannot be read is a `warn` component naming the setting to check.
#[actix_rt::test]
async fn history_records_are_published_and_an_unreachable_journal_is_graded() {
    // a port nothing listens on: bound, then released
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let svc = TestService::start(CiDomain::new(CiSettings {
        aggregator_url: format!("http://{closed}"),
        aggregator_timeout_seconds: 2,
        ..settings()
    }))
    .expect("start");
    let client = reqwest::Client::new();
    let r = client
        .post(svc.url("/api/v1/ci/reports?commit=abc&suite=pytest"))
        .bearer_auth(TOKEN)
        .body(fixture("junit/pytest-run1.xml"))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 201);
    let answer: Value = r.json().await.expect("json");
    let records = svc
        .wait_published(kinds::HISTORY, 1, Duration::from_secs(10))
        .await;
    assert_eq!(records.len(), 1, "{answer}");
    assert_eq!(records[0].components[0].name, "tests");
    assert_eq!(records[0].status, Grade::Ok);
    assert_eq!(
        deliver(&client, &svc, run_body("failure", 77), "d-77").await,
        202
    );
    let records = svc
        .wait_published(kinds::HISTORY, 2, Duration::from_secs(10))
        .await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].components[0].name, "run");

    let graded = svc.service.handle().run_now().await;
    let flakes = graded
        .iter()
        .find(|s| s.kind == kinds::FLAKES)
        .expect("flakes");
    let journal = flakes.component("journal").expect("journal component");
    assert_eq!(journal.status, Grade::Warn);
    assert!(
        journal.summary.contains("ci.aggregator_url"),
        "{}",
        journal.summary
    );
    assert_eq!(
        svc.published(kinds::HISTORY).len(),
        2,
        "a run is published once"
    );
    svc.service.stop(false).await;
}

/// A report file in `ci.reports_dir` goes the upload's way: published as a history record
/// (so the journal keeps it), kept, moved to `processed/`; a second gather publishes nothing.
#[actix_rt::test]
async fn a_report_file_is_published_as_history_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("pytest@abc123.xml"),
        fixture("junit/pytest-run1.xml"),
    )
    .expect("write report");
    let svc = TestService::start(CiDomain::new(CiSettings {
        reports_dir: dir.path().display().to_string(),
        ..settings()
    }))
    .expect("start");
    // a file is read once it is unchanged between two gathers
    let mut records = Vec::new();
    for _ in 0..5 {
        svc.service.handle().run_now().await;
        records = svc.published(kinds::HISTORY);
        if !records.is_empty() {
            break;
        }
    }
    assert_eq!(records.len(), 1, "one history record for the file");
    assert_eq!(records[0].components[0].name, "tests");
    assert!(dir.path().join("processed/pytest@abc123.xml").exists());
    svc.service.handle().run_now().await;
    assert_eq!(svc.published(kinds::HISTORY).len(), 1, "published once");
    svc.service.stop(false).await;
}
