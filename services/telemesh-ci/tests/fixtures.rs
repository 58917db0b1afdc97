//! Feeds the real fixtures under `tests/fixtures/ci/` (octokit's published webhook payloads,
//! reports written by pytest, Maven Surefire and libtest, coverage.py's Cobertura and LCOV)
//! through the parsers, the flake detector and the evaluators.

use std::path::PathBuf;

use chrono::{Duration, TimeZone, Utc};
use telemesh_ci::coverage::{parse_coverage, CoverageFormat};
use telemesh_ci::evaluate::{self, CiPolicy, CoverageEntry, CoverageState};
use telemesh_ci::flakes::{detect, FlakePolicy, TestUpload};
use telemesh_ci::github::{parse_workflow_run_event, AlertAction, Conclusion};
use telemesh_ci::junit::{parse_report, Outcome};
use telemesh_ci::webhook::{signature_header, verify_signature};
use telemesh_core::{Grade, Source};

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/ci")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn octokit_workflow_run_examples_parse() {
    let body = fixture("github/workflow_run.completed.success.payload.json");
    let run = parse_workflow_run_event(&body)
        .expect("parses")
        .expect("completed");
    assert_eq!(run.run_id, 289782451);
    // The run's name is empty in this example: the workflow's name is used.
    assert_eq!(run.workflow, "test");
    assert_eq!(
        run.workflow_path.as_deref(),
        Some(".github/workflows/test.yml")
    );
    assert_eq!(run.run_number, 163);
    assert_eq!(run.conclusion, Conclusion::Success);
    assert_eq!(run.branch.as_deref(), Some("master"));
    assert_eq!(run.commit, "3484a3fb816e0859fd6e1cea078d76385ff50625");
    assert_eq!(run.actor.as_deref(), Some("Codertocat"));
    assert_eq!(
        run.url,
        "https://github.com/octo-org/octo-repo/actions/runs/289782451"
    );
    assert_eq!(run.repository.as_deref(), Some("octo-org/octo-repo"));
    assert_eq!(
        run.display_title,
        "ci(action): update actions/setup-node digest to 8c91899"
    );
    assert_eq!(run.alert_action(), AlertAction::Resolve);
    assert!(run.is_workflow("test") && run.is_workflow(".github/workflows/test.yml"));

    let prs = fixture("github/workflow_run.completed.with-pull-requests.payload.json");
    assert!(parse_workflow_run_event(&prs).expect("parses").is_some());
    // Not completed, or no conclusion yet: nothing to record.
    for name in [
        "github/workflow_run.completed.manual-dispatch.payload.json",
        "github/workflow_run.requested.payload.json",
        "github/workflow_run.requested.action-required.payload.json",
    ] {
        assert!(
            parse_workflow_run_event(&fixture(name))
                .expect("parses")
                .is_none(),
            "{name}"
        );
    }
}

/// The example with only its `conclusion` changed (the package has no failing example).
fn with_conclusion(conclusion: &str) -> Vec<u8> {
    let body = fixture("github/workflow_run.completed.success.payload.json");
    let mut value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    value["workflow_run"]["conclusion"] = conclusion.into();
    serde_json::to_vec(&value).expect("json")
}

#[test]
fn conclusions_map_to_the_plan_lifecycle() {
    for (conclusion, want) in [
        ("failure", AlertAction::OpenOrAppend),
        ("timed_out", AlertAction::OpenOrAppend),
        ("cancelled", AlertAction::OpenOrAppend),
        ("success", AlertAction::Resolve),
        ("skipped", AlertAction::Nothing),
        ("neutral", AlertAction::Nothing),
        ("action_required", AlertAction::Nothing),
    ] {
        let body = with_conclusion(conclusion);
        let run = parse_workflow_run_event(&body)
            .expect("parses")
            .expect("completed");
        assert_eq!(run.alert_action(), want, "{conclusion}");
        // A signed example verifies; one changed byte does not.
        let header = signature_header(b"s3cret", &body);
        assert!(verify_signature(b"s3cret", Some(header.as_bytes()), &body).is_ok());
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert!(verify_signature(b"s3cret", Some(header.as_bytes()), &tampered).is_err());
    }
}

#[test]
fn hostile_webhook_bodies_are_errors_not_panics() {
    let long_branch = {
        let mut v: serde_json::Value = serde_json::from_slice(&fixture(
            "github/workflow_run.completed.success.payload.json",
        ))
        .expect("json");
        v["workflow_run"]["head_branch"] = "b".repeat(5000).into();
        serde_json::to_vec(&v).expect("json")
    };
    let bodies: [&[u8]; 6] = [
        b"",
        b"[]",
        b"{\"action\": \"completed\"}",
        b"{\"action\": \"completed\", \"workflow_run\": {\"id\": -1}}",
        b"\xff\xfe{",
        &long_branch,
    ];
    for body in bodies {
        assert!(
            parse_workflow_run_event(body).is_err(),
            "{:?}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
    }
}

#[test]
fn pytest_reports_parse_and_the_flaky_test_is_found_across_two_uploads_of_one_commit() {
    let run1 = parse_report(&fixture("junit/pytest-run1.xml")).expect("run 1");
    let run2 = parse_report(&fixture("junit/pytest-run2.xml")).expect("run 2");
    assert_eq!(run1.cases.len(), 7);
    let outcome = |r: &telemesh_ci::junit::TestReport, id: &str| {
        r.cases.iter().find(|c| c.test_id == id).map(|c| c.outcome)
    };
    assert_eq!(
        outcome(&run1, "test_calc::test_flaky_network"),
        Some(Outcome::Failed)
    );
    assert_eq!(
        outcome(&run2, "test_calc::test_flaky_network"),
        Some(Outcome::Passed)
    );
    assert_eq!(
        outcome(&run1, "test_calc::test_div_by_zero"),
        Some(Outcome::XFailed)
    );
    assert_eq!(
        outcome(&run1, "test_calc::test_skipped"),
        Some(Outcome::Skipped)
    );
    let failure = run1
        .cases
        .iter()
        .find(|c| c.test_id == "test_calc::test_flaky_network")
        .and_then(|c| c.failure.clone())
        .expect("failure text");
    assert!(failure.contains("deliberately flaky"), "{failure}");

    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 30, 1, 0, 0)
        .single()
        .expect("time");
    let upload = |id: &str, minutes: i64, report| TestUpload {
        upload_id: id.into(),
        recorded_at: t0 + Duration::minutes(minutes),
        commit: "5779607b49aab1200488439f02372c57b4f75444".into(),
        branch: Some("main".into()),
        run_id: Some(id.into()),
        run_url: Some(format!("https://github.com/o/r/actions/runs/{id}")),
        suite: Some("pytest".into()),
        report,
    };
    let uploads = [upload("1", 0, run1), upload("2", 10, run2)];
    let found = detect(&uploads, &FlakePolicy::default(), t0 + Duration::hours(1));
    let flaky: Vec<&str> = found.flaky.iter().map(|f| f.test_id.as_str()).collect();
    assert_eq!(flaky, ["pytest:test_calc::test_flaky_network"]);
    assert_eq!(
        found.failures, 3,
        "flaky once, always_fails twice; xfail is not a failure"
    );
    let s = evaluate::flakes(
        &CiPolicy::default(),
        &found,
        Source::new("ci", "t"),
        t0 + Duration::hours(1),
    );
    assert_eq!(s.status, Grade::Warn);
    assert!(s.markdown.contains("test_flaky_network"));
}

#[test]
fn surefire_report_parses() {
    let report = parse_report(&fixture("junit/surefire-TEST-demo.CalcTest.xml")).expect("parses");
    let mut got: Vec<(String, Outcome)> = report
        .cases
        .iter()
        .map(|c| (c.test_id.clone(), c.outcome))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("demo.CalcTest::adds".to_owned(), Outcome::Passed),
            (
                "demo.CalcTest::multipliesWrongly".to_owned(),
                Outcome::Failed
            ),
            ("demo.CalcTest::skipped".to_owned(), Outcome::Skipped),
            ("demo.CalcTest::throwsError".to_owned(), Outcome::Error),
        ]
    );
    let failure = report
        .cases
        .iter()
        .find(|c| c.outcome == Outcome::Failed)
        .and_then(|c| c.failure.as_deref())
        .expect("text");
    assert!(failure.starts_with("deliberate failure ==> expected: <7> but was: <6>\norg.opentest4j.AssertionFailedError"), "{failure}");
}

#[test]
fn libtest_junit_report_parses() {
    let report = parse_report(&fixture("junit/libtest-telemesh-ci.xml")).expect("parses");
    assert!(report.cases.len() >= 10, "{}", report.cases.len());
    assert!(report.cases.iter().all(|c| c.outcome == Outcome::Passed));
    assert!(report
        .cases
        .iter()
        .any(|c| c.test_id.contains("webhook::tests::")));
}

#[test]
fn cobertura_and_lcov_of_one_run_agree() {
    let cobertura = parse_coverage(&fixture("coverage/coverage.cobertura.xml")).expect("cobertura");
    let lcov = parse_coverage(&fixture("coverage/coverage.lcov")).expect("lcov");
    assert_eq!(cobertura.format, CoverageFormat::Cobertura);
    assert_eq!(lcov.format, CoverageFormat::Lcov);
    // line-rate 0.6875 × 100; LCOV has no rate, 11 of 16 lines.
    assert_eq!(cobertura.percent(), 68.75);
    assert_eq!(lcov.percent(), 68.75);
    assert_eq!(cobertura.domains(2), lcov.domains(2));
    let domains: Vec<(String, f64)> = lcov
        .domains(2)
        .into_iter()
        .map(|d| (d.domain, d.percent))
        .collect();
    assert_eq!(
        domains,
        [
            ("calc/alpha".to_owned(), 100.0),
            ("calc/beta".to_owned(), 58.33)
        ]
    );

    // Graded: 68.75 is below a 70 % floor; the previous report at 80 makes it a drop too.
    let now = Utc
        .with_ymd_and_hms(2026, 11, 30, 2, 0, 0)
        .single()
        .expect("time");
    let entry = |label: &str, hours: i64, percent: f64| CoverageEntry {
        label: label.into(),
        recorded_at: now - Duration::hours(hours),
        percent,
        domains: lcov.domains(2),
    };
    let state = CoverageState {
        trend: vec![entry("before", 2, 69.0), entry("now", 1, lcov.percent())],
        formatter: None,
    };
    let policy = CiPolicy {
        coverage_floor: 60.0,
        ..CiPolicy::default()
    };
    let s = evaluate::coverage(&policy, &state, Source::new("ci", "t"), now);
    assert_eq!(
        s.component("overall").map(|c| c.status),
        Some(Grade::Ok),
        "drop 0.25 ≤ 1"
    );
    assert_eq!(
        s.component("domains").map(|c| c.status),
        Some(Grade::Warn),
        "calc/beta lags"
    );
    let state = CoverageState {
        trend: vec![entry("before", 2, 80.0), entry("now", 1, lcov.percent())],
        formatter: None,
    };
    let s = evaluate::coverage(&policy, &state, Source::new("ci", "t"), now);
    assert_eq!(
        s.component("overall").map(|c| c.status),
        Some(Grade::Warn),
        "drop 11.25 > 1"
    );
}
