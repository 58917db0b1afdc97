//! Dogfood: this project's own unit-test results, as JUnit written by libtest
//! (`deploy/local/junit-report`, run by `.ci/run` after the tests, which then runs this test
//! with `TELEMESH_CI_JUNIT_DIR` set), uploaded through the CI domain's real HTTP intake and
//! graded. Without the variable (a plain `cargo test`) the committed report of this crate,
//! written by the same script, is fed instead.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use telemesh_ci::domain::CiDomain;
use telemesh_ci::kinds;
use telemesh_ci::settings::CiSettings;
use telemesh_core::config::Secret;
use telemesh_service::testing::TestService;

fn reports() -> Vec<PathBuf> {
    match std::env::var_os("TELEMESH_CI_JUNIT_DIR") {
        Some(dir) => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| {
                    panic!(
                        "TELEMESH_CI_JUNIT_DIR {dir:?}: {e}; run deploy/local/junit-report first"
                    )
                })
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "xml"))
                .collect();
            files.sort();
            assert!(
                !files.is_empty(),
                "no JUnit reports in {dir:?}: run deploy/local/junit-report"
            );
            files
        }
        None => vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/ci/junit/libtest-telemesh-ci.xml")],
    }
}

#[actix::test]
async fn this_projects_own_junit_reports_go_through_the_intake() {
    let svc = TestService::start(CiDomain::new(CiSettings {
        interval_seconds: 3600,
        api_token: Secret::new("t"),
        ..CiSettings::default()
    }))
    .expect("start");
    svc.wait_published(kinds::FLAKES, 1, Duration::from_secs(10))
        .await;
    let client = reqwest::Client::new();
    let mut cases = 0;
    let files = reports();
    for file in &files {
        let body = std::fs::read(file).expect("read report");
        let suite = file.file_stem().and_then(|s| s.to_str()).unwrap_or("cargo");
        let response = client
            .post(svc.url(&format!(
                "/api/v1/ci/reports?commit=dogfood&branch=main&suite={suite}"
            )))
            .bearer_auth("t")
            .body(body)
            .send()
            .await
            .expect("upload");
        let status = response.status().as_u16();
        let json: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "{}: {json}", file.display());
        cases += json["cases"].as_u64().expect("cases");
    }
    assert!(cases > 0);
    let flakes = svc
        .wait_published(kinds::FLAKES, 1 + files.len(), Duration::from_secs(10))
        .await;
    let last = flakes.last().expect("flakes snapshot");
    assert!(
        last.summary.contains(&format!("in {} upload", files.len())),
        "{}",
        last.summary
    );
    println!(
        "dogfood: {} reports, {cases} test cases: {}",
        files.len(),
        last.summary
    );
    svc.service.stop(false).await;
}
