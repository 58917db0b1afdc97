//! `telemesh ci flakes` of the built binary against a real aggregator on a real PostgreSQL
//! journal: the CI domain's history records of two real pytest report uploads for one commit
//! (a deliberately flaky test failing, then passing) and two runs are journaled; the digest
//! read from `GET /api/v1/ci/tests` and `/runs` names the flaky test, the failures and the
//! run history with links, as JSON and Markdown; bad arguments exit 2.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use telemesh_ci::flakes::TestUpload;
use telemesh_ci::github::PipelineRun;
use telemesh_ci::history::{run_record, upload_records};
use telemesh_ci::junit::parse_report;
use telemesh_core::Source;
use telemesh_integration_tests::fixtures::{in_process_aggregator, InProcessAggregator};
use telemesh_integration_tests::wait_until;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_telemesh");
const COMMIT: &str = "5779607b49aab1200488439f02372c57b4f75444";

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/ci")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

async fn telemesh(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("TELEMESH") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run telemesh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(id: u64, conclusion: &str, minutes_ago: i64) -> PipelineRun {
    serde_json::from_value(json!({
        "run_id": id, "workflow": "CI", "workflow_path": ".github/workflows/ci.yml",
        "run_number": id, "run_attempt": 1, "display_title": "fix", "event": "push",
        "conclusion": conclusion, "branch": "main", "commit": COMMIT, "actor": "octocat",
        "url": format!("https://github.com/o/r/actions/runs/{id}"), "repository": "o/r",
        "repository_url": null, "started_at": null,
        "completed_at": (Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339(),
    }))
    .expect("a run")
}

#[actix_rt::test]
async fn flakes_digest_reads_the_journaled_history() {
    let InProcessAggregator {
        aggregator,
        publisher,
        url,
    } = in_process_aggregator("ci-flakes-token").await;
    let source = Source::new("ci", "cli-test");
    for (i, report) in ["junit/pytest-run1.xml", "junit/pytest-run2.xml"]
        .iter()
        .enumerate()
    {
        let upload = TestUpload {
            upload_id: format!("upload-{i}"),
            recorded_at: Utc::now() - chrono::Duration::minutes(30 - i as i64),
            commit: COMMIT.into(),
            branch: Some("main".into()),
            run_id: Some(format!("{}", 100 + i)),
            run_url: Some(format!("https://github.com/o/r/actions/runs/{}", 100 + i)),
            suite: Some("pytest".into()),
            report: parse_report(&fixture(report)).expect("fixture report"),
        };
        for r in upload_records(&upload, &source) {
            publisher.publish(&r).await.expect("publish");
        }
    }
    for r in [run(100, "failure", 29), run(101, "success", 28)] {
        publisher
            .publish(&run_record(&r, &source, Utc::now()))
            .await
            .expect("publish run");
    }
    wait_until("the runs are journaled", Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let body: Value = reqwest::get(format!("{url}/api/v1/ci/runs"))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (body["count"] == 2).then_some(())
        }
    })
    .await;

    let (code, stdout, stderr) = telemesh(&[
        "ci",
        "flakes",
        "--aggregator",
        &url,
        "--since",
        "2h",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let d: Value = serde_json::from_str(&stdout).expect("JSON digest");
    assert_eq!(d["sessions"], 2, "{d}");
    assert_eq!(
        d["flaky_tests"][0]["test_id"], "pytest:test_calc::test_flaky_network",
        "{d}"
    );
    assert_eq!(
        d["flaky_tests"][0]["last_run_url"],
        "https://github.com/o/r/actions/runs/100"
    );
    assert!(
        d["failing_tests"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("pytest:test_calc::test_flaky_network"))),
        "{d}"
    );
    let history = d["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{d}");
    assert_eq!(history[0]["conclusion"], "success", "newest first");
    assert_eq!(
        history[1]["run_url"],
        "https://github.com/o/r/actions/runs/100"
    );

    let (code, md, stderr) =
        telemesh(&["ci", "flakes", "--aggregator", &url, "--since", "2h"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(md.contains("# CI flake digest since"), "{md}");
    assert!(md.contains("test_flaky_network"), "{md}");
    assert!(
        md.contains("- #100: failure on main (https://github.com/o/r/actions/runs/100)"),
        "{md}"
    );

    // a window before the history holds none of it
    let (code, md, _) = telemesh(&[
        "ci",
        "flakes",
        "--aggregator",
        &url,
        "--since",
        "2000-01-01T00:00:00Z",
    ])
    .await;
    assert_eq!(code, 0);
    assert!(
        md.contains("test_flaky_network"),
        "everything since 2000: {md}"
    );
    let (code, md, _) = telemesh(&["ci", "flakes", "--aggregator", &url, "--since", "1m"]).await;
    assert_eq!(code, 0);
    assert!(
        md.contains("No flaky tests") && md.contains("No runs recorded"),
        "{md}"
    );

    for bad in [
        vec!["--format", "yaml"],
        vec!["--since", "yesterday"],
        vec!["--since", "0d"],
    ] {
        let mut args = vec!["ci", "flakes", "--aggregator", url.as_str()];
        args.extend(bad.iter().copied());
        let (code, _, stderr) = telemesh(&args).await;
        assert_eq!(code, 2, "{bad:?}: {stderr}");
        assert!(stderr.contains("--"), "{stderr}");
    }
    aggregator.stop().await;
}
