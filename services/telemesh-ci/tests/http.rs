//! The intake over real HTTP (an actix server on port 0, reqwest as the client) with the
//! published GitHub payloads and the real report files: signature good / bad / missing /
//! replayed, hostile uploads answered 4xx JSON with nothing stored, and a flaky test found
//! across two uploads for one commit.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{App, HttpServer};
use chrono::Utc;
use serde_json::Value;
use telemesh_ci::evaluate::{self, CiPolicy};
use telemesh_ci::flakes::{detect, FlakePolicy};
use telemesh_ci::http::{configure, CiHttp};
use telemesh_ci::intake::{Capacity, CiStore};
use telemesh_ci::webhook::signature_header;
use telemesh_core::config::Secret;
use telemesh_core::{Grade, Source};

const SECRET: &str = "webhook-secret";
const TOKEN: &str = "upload-token";

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/ci")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

struct Server {
    base: String,
    store: CiStore,
    changes: Arc<AtomicUsize>,
    client: reqwest::Client,
}

fn start() -> Server {
    let store = CiStore::new(Capacity::default());
    let changes = Arc::new(AtomicUsize::new(0));
    let counter = changes.clone();
    let state = CiHttp {
        store: store.clone(),
        webhook_secret: Secret::new(SECRET),
        api_token: Secret::new(TOKEN),
        on_change: Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }),
        recorder: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = HttpServer::new(move || App::new().configure(|cfg| configure(cfg, state.clone())))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
    actix_rt::spawn(server);
    Server {
        base: format!("http://{addr}"),
        store,
        changes,
        client: reqwest::Client::new(),
    }
}

impl Server {
    async fn webhook(
        &self,
        body: &[u8],
        signature: Option<String>,
        delivery: &str,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/api/v1/ci/github", self.base))
            .header("x-github-event", "workflow_run")
            .header("x-github-delivery", delivery)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        let response = req.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    async fn upload(
        &self,
        path: &str,
        query: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}?{query}", self.base))
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let response = req.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }
}

fn failing_example(conclusion: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(
        "github/workflow_run.completed.success.payload.json",
    ))
    .expect("json");
    v["workflow_run"]["conclusion"] = conclusion.into();
    serde_json::to_vec(&v).expect("json")
}

#[actix_rt::test]
async fn webhook_signature_good_bad_missing_and_replayed() {
    let s = start();
    let body = fixture("github/workflow_run.completed.success.payload.json");
    let good = signature_header(SECRET.as_bytes(), &body);

    let (status, json) = s.webhook(&body, None, "d-1").await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("bad_signature"))
    );
    let (status, _) = s
        .webhook(&body, Some(signature_header(b"wrong", &body)), "d-1")
        .await;
    assert_eq!(status, 401);
    let (status, _) = s.webhook(&body, Some("sha256=nothex".into()), "d-1").await;
    assert_eq!(status, 401);
    assert!(
        s.store.view().runs.is_empty(),
        "nothing stored on a refused delivery"
    );

    let (status, json) = s.webhook(&body, Some(good.clone()), "d-1").await;
    assert_eq!(
        (status, json["status"].as_str()),
        (202, Some("recorded")),
        "{json}"
    );
    assert_eq!(s.store.view().runs.len(), 1);
    let changes = s.changes.load(Ordering::SeqCst);

    // The same delivery id again (GitHub's redelivery, or an attacker's replay): ignored.
    let failed = failing_example("failure");
    let (status, json) = s
        .webhook(
            &failed,
            Some(signature_header(SECRET.as_bytes(), &failed)),
            "d-1",
        )
        .await;
    assert_eq!((status, json["status"].as_str()), (200, Some("replayed")));
    assert_eq!(s.store.view().runs[0].conclusion.as_str(), "success");
    assert_eq!(
        s.changes.load(Ordering::SeqCst),
        changes,
        "no re-evaluation for a replay"
    );

    // A new delivery of the failed run replaces the run's conclusion.
    let (status, _) = s
        .webhook(
            &failed,
            Some(signature_header(SECRET.as_bytes(), &failed)),
            "d-2",
        )
        .await;
    assert_eq!(status, 202);
    let view = s.store.view();
    assert_eq!(view.runs.len(), 1);
    assert_eq!(view.runs[0].conclusion.as_str(), "failure");
    let policy = CiPolicy {
        main_workflow: "test".into(),
        ..CiPolicy::default()
    };
    let snapshot = evaluate::pipeline(&policy, &view.runs, Source::new("ci", "t"), Utc::now());
    assert_eq!(snapshot.status, Grade::Fail);
}

#[actix_rt::test]
async fn hostile_webhook_requests_get_4xx_json() {
    let s = start();
    // Signed garbage: authenticated but not a workflow_run event.
    let garbage = b"{\"action\": \"completed\", \"workflow_run\": 7}".to_vec();
    let (status, json) = s
        .webhook(
            &garbage,
            Some(signature_header(SECRET.as_bytes(), &garbage)),
            "g-1",
        )
        .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (422, Some("invalid_payload"))
    );
    // Oversized body: refused before the signature is even computed.
    let big = vec![b' '; telemesh_ci::webhook::MAX_WEBHOOK_BYTES + 1];
    let (status, json) = s
        .webhook(&big, Some(signature_header(SECRET.as_bytes(), &big)), "g-2")
        .await;
    assert_eq!((status, json["error"].as_str()), (413, Some("too_large")));
    // Bad delivery id.
    let body = fixture("github/workflow_run.completed.success.payload.json");
    let (status, _) = s
        .webhook(
            &body,
            Some(signature_header(SECRET.as_bytes(), &body)),
            "a b",
        )
        .await;
    assert_eq!(status, 400);
    assert!(s.store.view().runs.is_empty());
}

#[actix_rt::test]
async fn report_uploads_find_the_flaky_test_and_refuse_hostile_uploads() {
    let s = start();
    let commit = "commit=5779607b49aab1200488439f02372c57b4f75444&branch=main&suite=pytest";
    // Token missing / wrong.
    let (status, _) = s
        .upload(
            "/api/v1/ci/reports",
            commit,
            None,
            fixture("junit/pytest-run1.xml"),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .upload(
            "/api/v1/ci/reports",
            commit,
            Some("nope"),
            fixture("junit/pytest-run1.xml"),
        )
        .await;
    assert_eq!(status, 403);
    // Malformed XML, a non-JUnit document, missing commit, oversized body: 4xx JSON, nothing stored.
    let hostile: [(&str, Vec<u8>, u16, &str); 4] = [
        (
            commit,
            b"<testsuites><testcase name='a'>".to_vec(),
            422,
            "invalid_report",
        ),
        (
            commit,
            b"<html><body>hi</body></html>".to_vec(),
            422,
            "invalid_report",
        ),
        (
            "branch=main",
            fixture("junit/pytest-run1.xml"),
            400,
            "invalid_query",
        ),
        (
            commit,
            vec![b'<'; telemesh_ci::http::MAX_UPLOAD_BYTES + 1],
            413,
            "too_large",
        ),
    ];
    for (query, body, want, error) in hostile {
        let (status, json) = s
            .upload("/api/v1/ci/reports", query, Some(TOKEN), body)
            .await;
        assert_eq!(
            (status, json["error"].as_str()),
            (want, Some(error)),
            "{json}"
        );
    }
    assert!(s.store.view().uploads.is_empty(), "nothing stored");

    for run in ["junit/pytest-run1.xml", "junit/pytest-run2.xml"] {
        let (status, json) = s
            .upload("/api/v1/ci/reports", commit, Some(TOKEN), fixture(run))
            .await;
        assert_eq!((status, json["cases"].as_u64()), (201, Some(7)), "{json}");
    }
    let view = s.store.view();
    let found = detect(&view.uploads, &FlakePolicy::default(), Utc::now());
    let flaky: Vec<&str> = found.flaky.iter().map(|f| f.test_id.as_str()).collect();
    assert_eq!(flaky, ["pytest:test_calc::test_flaky_network"]);
}

#[actix_rt::test]
async fn coverage_uploads_are_parsed_graded_and_hostile_ones_refused() {
    let s = start();
    let (status, json) = s
        .upload(
            "/api/v1/ci/coverage",
            "label=build-1",
            Some(TOKEN),
            fixture("coverage/coverage.cobertura.xml"),
        )
        .await;
    assert_eq!(
        (status, json["percent"].as_f64()),
        (201, Some(68.75)),
        "{json}"
    );
    for (query, body, want) in [
        ("label=build-2", b"<coverage".to_vec(), 422),
        ("label=build-2", b"SF:a.py\nDA:one,1\n".to_vec(), 422),
        (
            "label=build-2&depth=0",
            fixture("coverage/coverage.lcov"),
            400,
        ),
        ("depth=2", fixture("coverage/coverage.lcov"), 400),
        ("label=build-2&formatter=tabs", Vec::new(), 400),
    ] {
        let (status, json) = s
            .upload("/api/v1/ci/coverage", query, Some(TOKEN), body)
            .await;
        assert_eq!(status, want, "{query}: {json}");
        assert!(json["detail"].is_string());
    }
    assert_eq!(
        s.store.view().coverage.trend.len(),
        1,
        "refused uploads stored nothing"
    );
    let (status, _) = s
        .upload(
            "/api/v1/ci/coverage",
            "label=build-2&formatter=allowlist",
            Some(TOKEN),
            b"src/\nsrc/a.rs\n".to_vec(),
        )
        .await;
    assert_eq!(status, 201);
    let view = s.store.view();
    let snapshot = evaluate::coverage(
        &CiPolicy::default(),
        &view.coverage,
        Source::new("ci", "t"),
        Utc::now(),
    );
    // 68.75 % is below the default 70 % floor.
    assert_eq!(
        snapshot.component("overall").map(|c| c.status),
        Some(Grade::Fail)
    );
    assert!(snapshot
        .component("formatter")
        .is_some_and(|c| c.summary.contains("2 entries")));
}
