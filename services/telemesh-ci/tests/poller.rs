//! The poller against a local HTTP server standing in for the GitHub REST API, serving run
//! lists made of the published `workflow_run` example runs (octokit): a 200 with an ETag, a
//! 304 for the same ETag, a 403 with the rate limit exhausted after which no request is made
//! until the reset time, and hostile answers.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Utc;
use serde_json::{json, Value};
use telemesh_ci::intake::{Capacity, CiStore};
use telemesh_ci::poller::{PollOutcome, Poller};
use telemesh_core::config::Secret;

fn example_run(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/ci/github")
        .join(name);
    let v: Value = serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("json");
    v["workflow_run"].clone()
}

/// A scripted answer: status, headers, body.
struct Answer(u16, Vec<(&'static str, String)>, String);

#[derive(Default)]
struct Seen {
    requests: Vec<(String, Option<String>, Option<String>)>,
    answers: Vec<Answer>,
}

async fn handle(req: HttpRequest, seen: web::Data<Arc<Mutex<Seen>>>) -> HttpResponse {
    let mut seen = seen.lock().expect("lock");
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    seen.requests.push((
        format!("{}?{}", req.path(), req.query_string()),
        header("authorization"),
        header("if-none-match"),
    ));
    if seen.answers.is_empty() {
        return HttpResponse::InternalServerError().finish();
    }
    let Answer(status, headers, body) = seen.answers.remove(0);
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"));
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    response.body(body)
}

fn serve(answers: Vec<Answer>) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen {
        requests: Vec::new(),
        answers,
    }));
    let data = web::Data::new(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(handle))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    actix_rt::spawn(server);
    (url, seen)
}

#[actix_rt::test]
async fn etag_not_modified_and_rate_limit_are_honoured() {
    let list = json!({
        "total_count": 2,
        "workflow_runs": [
            example_run("workflow_run.completed.success.payload.json"),
            example_run("workflow_run.completed.manual-dispatch.payload.json"),
        ]
    });
    let reset = Utc::now().timestamp() + 3600;
    let (url, seen) = serve(vec![
        Answer(
            200,
            vec![
                ("etag", "W/\"abc\"".into()),
                ("x-ratelimit-remaining", "59".into()),
            ],
            list.to_string(),
        ),
        Answer(
            304,
            vec![("x-ratelimit-remaining", "58".into())],
            String::new(),
        ),
        Answer(
            403,
            vec![
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset.to_string()),
            ],
            json!({"message": "API rate limit exceeded"}).to_string(),
        ),
    ]);
    let store = CiStore::new(Capacity::default());
    let mut poller = Poller::new(
        &url,
        "octo-org/octo-repo",
        "ci.yml",
        Secret::new("tok"),
        Duration::from_secs(5),
    );

    // Only the completed run is kept (the dispatch example is still queued).
    assert_eq!(
        poller.poll(&store, Utc::now()).await,
        PollOutcome::Fetched { changed: 1 }
    );
    assert_eq!(store.view().runs.len(), 1);
    assert_eq!(store.view().runs[0].run_id, 289782451);
    assert_eq!(
        poller.poll(&store, Utc::now()).await,
        PollOutcome::NotModified
    );
    let limited = poller.poll(&store, Utc::now()).await;
    assert!(
        matches!(limited, PollOutcome::RateLimited { until } if until.timestamp() == reset),
        "{limited:?}"
    );
    // Blocked until the reset: no request is made.
    assert!(matches!(
        poller.poll(&store, Utc::now()).await,
        PollOutcome::RateLimited { .. }
    ));

    let seen = seen.lock().expect("lock");
    assert_eq!(seen.requests.len(), 3, "no request while rate-limited");
    for (path, auth, _) in &seen.requests {
        assert_eq!(
            path,
            "/repos/octo-org/octo-repo/actions/workflows/ci.yml/runs?per_page=50"
        );
        assert_eq!(auth.as_deref(), Some("Bearer tok"));
    }
    assert_eq!(seen.requests[0].2, None);
    assert_eq!(seen.requests[1].2.as_deref(), Some("W/\"abc\""));
}

#[actix_rt::test]
async fn hostile_answers_are_failures_that_store_nothing() {
    let (url, _) = serve(vec![
        Answer(200, vec![], "{\"workflow_runs\": 3}".into()),
        Answer(200, vec![], "not json".into()),
        Answer(404, vec![], String::new()),
        Answer(
            403,
            vec![],
            json!({"message": "Resource not accessible by integration"}).to_string(),
        ),
    ]);
    let store = CiStore::new(Capacity::default());
    let mut poller = Poller::new(
        &url,
        "o/r",
        "ci.yml",
        Secret::new("tok"),
        Duration::from_secs(5),
    );
    for _ in 0..4 {
        let outcome = poller.poll(&store, Utc::now()).await;
        assert!(matches!(outcome, PollOutcome::Failed(_)), "{outcome:?}");
    }
    assert!(store.view().runs.is_empty());
    // An unreachable API is a failure too, not a panic.
    let mut gone = Poller::new(
        "http://127.0.0.1:9",
        "o/r",
        "ci.yml",
        Secret::default(),
        Duration::from_secs(2),
    );
    assert!(matches!(
        gone.poll(&store, Utc::now()).await,
        PollOutcome::Failed(_)
    ));
}
