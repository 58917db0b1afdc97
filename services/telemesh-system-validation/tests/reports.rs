//! System validation on the framework with its real inputs: a report file another job writes
//! (fresh, replaced, stale, unreadable, missing) and the HTTP upload (token refusals, hostile
//! bodies, a good report graded at once and served as the latest snapshot).

use std::time::Duration;

use telemesh_core::config::Secret;
use telemesh_core::{Grade, Snapshot};
use telemesh_service::testing::TestService;
use telemesh_system_validation::evaluate::{CHECKS, RELIABILITY, REPORT};
use telemesh_system_validation::http::REPORT_PATH;
use telemesh_system_validation::{SystemValidationDomain, SystemValidationSettings, KIND};

fn report(passed: usize, failed: usize, age_hours: i64) -> String {
    let at = chrono::Utc::now() - chrono::Duration::hours(age_hours);
    let mut checks = Vec::new();
    for i in 0..passed {
        checks.push(format!(r#"{{"name":"ok{i}","status":"passed"}}"#));
    }
    for i in 0..failed {
        checks.push(format!(
            r#"{{"name":"bad{i}","status":"failed","message":"broken"}}"#
        ));
    }
    format!(
        r#"{{"timestamp":"{}","validator":"sysval","checks":[{}]}}"#,
        at.to_rfc3339(),
        checks.join(",")
    )
}

fn status(s: &Snapshot, name: &str) -> Grade {
    s.component(name)
        .unwrap_or_else(|| panic!("{name} missing: {:#?}", s.components))
        .status
}

async fn run_now(service: &TestService) -> Snapshot {
    let snapshots = service.service.handle().run_now().await;
    let s = snapshots
        .into_iter()
        .find(|s| s.kind == KIND)
        .expect("a system-validation snapshot");
    s.validate().expect("valid snapshot");
    s
}

#[actix::test]
async fn the_report_file_is_graded_replaced_aged_and_refused_when_unreadable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("system_validation_report.json");
    let service = TestService::start(SystemValidationDomain::new(SystemValidationSettings {
        report_path: path.display().to_string(),
        interval_seconds: 3600,
        ..SystemValidationSettings::default()
    }))
    .expect("start");

    // no file yet: graded, not silent
    let s = run_now(&service).await;
    assert_eq!(s.status, Grade::Warn);
    assert!(s.summary.contains("no report"), "{}", s.summary);

    std::fs::write(&path, report(20, 0, 1)).expect("write");
    let s = run_now(&service).await;
    assert_eq!(s.status, Grade::Ok, "{:#?}", s.components);
    assert_eq!(s.metrics["total_checks"], 20.0);

    // the validator's next run fails 2 checks of 20: 90 % → warn (checks and reliability)
    std::fs::write(&path, report(18, 2, 0)).expect("write");
    let s = run_now(&service).await;
    assert_eq!(status(&s, CHECKS), Grade::Warn);
    assert!(s.summary.contains("bad0 (broken)"), "{}", s.summary);
    assert_eq!(
        s.component(RELIABILITY).unwrap().details["samples_considered"],
        2u64.into(),
        "the previous report is history now"
    );

    // a report from three days ago is stale
    std::fs::write(&path, report(20, 0, 72)).expect("write");
    let s = run_now(&service).await;
    assert_eq!(
        status(&s, REPORT),
        Grade::Fail,
        "{:#?}",
        s.component(REPORT)
    );

    // a half-written file is refused as a whole
    std::fs::write(&path, "{\"timestamp\": \"2026-").expect("write");
    let s = run_now(&service).await;
    assert_eq!(s.status, Grade::Fail);
    assert!(s.summary.contains("cannot be read"), "{}", s.summary);
}

#[actix::test]
async fn an_upload_is_authenticated_bounded_parsed_and_graded_at_once() {
    let service = TestService::start(SystemValidationDomain::new(SystemValidationSettings {
        api_token: Secret::new("s3cret"),
        interval_seconds: 3600,
        ..SystemValidationSettings::default()
    }))
    .expect("start");
    let http = reqwest::Client::new();
    let url = service.url(REPORT_PATH);
    let post = |body: Vec<u8>, token: Option<&str>| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.send()
    };
    let good = report(9, 1, 0).into_bytes();
    assert_eq!(post(good.clone(), None).await.unwrap().status(), 401);
    assert_eq!(
        post(good.clone(), Some("nope")).await.unwrap().status(),
        403
    );
    for hostile in [
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"{\"checks\": ".to_vec(),
        "[".repeat(100_000).into_bytes(),
        vec![0xff; 64],
    ] {
        let response = post(hostile.clone(), Some("s3cret")).await.unwrap();
        assert_eq!(
            response.status(),
            400,
            "{:?}",
            String::from_utf8_lossy(&hostile[..hostile.len().min(20)])
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_report");
    }
    let huge = vec![b' '; telemesh_system_validation::report::MAX_REPORT_BYTES + 1];
    assert_eq!(post(huge, Some("s3cret")).await.unwrap().status(), 413);

    let response = post(good, Some("s3cret")).await.unwrap();
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "warn", "{body}");

    let latest: Vec<Snapshot> = http
        .get(service.url("/api/v1/snapshots/latest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = latest.iter().find(|s| s.kind == KIND).expect("latest");
    assert_eq!(s.metrics["passed_checks"], 9.0);
    assert!(s.summary.contains("HTTP upload") || s.component(REPORT).is_some());
    let published = service
        .wait_published(KIND, 1, Duration::from_secs(10))
        .await;
    assert!(published
        .iter()
        .any(|p| p.id.to_string() == body["id"].as_str().unwrap_or_default()));
}

#[actix::test]
async fn without_a_path_or_a_token_the_domain_says_what_to_set() {
    let service = TestService::start(SystemValidationDomain::new(
        SystemValidationSettings::default(),
    ))
    .expect("start");
    let published = service
        .wait_published(KIND, 1, Duration::from_secs(30))
        .await;
    let s = published.first().expect("a not-configured block");
    assert!(
        s.summary.contains("system_validation.report_path"),
        "{}",
        s.summary
    );
}
