//! Integration tests of the incident-response service with real inputs: runbooks, roster and
//! activity log in a temporary directory, the alert-history client against a small local HTTP
//! server speaking the aggregator's alert-list and activities contract (real socket), and the
//! service's HTTP endpoints over a real socket. Needs neither Kafka nor PostgreSQL
//! (in-process transport); the real aggregator's activity storage is tested in `activities`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{json, Value};
use telemesh_core::config::Secret;
use telemesh_core::{topics, Grade, Snapshot, Source};
use telemesh_incident_response::alerts::{AlertHistoryClient, AlertHistoryError};
use telemesh_incident_response::{
    gate, runbooks, snapshot_issues, GateDecision, IncidentResponse, IncidentResponseSettings,
};
use telemesh_service::testing::TestService;
use telemesh_service::{Domain, Evaluation};

// ---------------------------------------------------------------- fake aggregator

/// Request lines and `authorization` headers a fake aggregator saw.
type Seen = Vec<(String, Option<String>)>;

/// A tiny HTTP server answering every request with the current (status, body) and recording
/// the request line and `authorization` header it saw.
#[derive(Clone, Default)]
struct FakeAggregator {
    answer: Arc<Mutex<(u16, String)>>,
    channels: Arc<Mutex<(u16, String)>>,
    /// The answer of `GET /api/v1/activities/latest`.
    latest: Arc<Mutex<(u16, String)>>,
    seen: Arc<Mutex<Seen>>,
}

impl FakeAggregator {
    fn start() -> (String, Self) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake aggregator");
        let addr = listener.local_addr().expect("local addr");
        let fake = FakeAggregator::default();
        fake.set(200, alert_list(&[]));
        fake.set_channels(200, channels(&[("slack", false)]));
        fake.set_latest(200, latest(None));
        let handle = fake.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut auth = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = Some(v.trim().to_owned());
                        }
                    }
                }
                handle
                    .seen
                    .lock()
                    .expect("lock")
                    .push((request_line.trim().to_owned(), auth));
                let recorded = Arc::new(Mutex::new((201, r#"{"id":"x"}"#.to_owned())));
                let source = if request_line.contains("/api/v1/alerts/channels") {
                    &handle.channels
                } else if request_line.contains("/api/v1/activities/latest") {
                    &handle.latest
                } else if request_line.starts_with("POST /api/v1/activities") {
                    &recorded
                } else {
                    &handle.answer
                };
                let (status, body) = source.lock().expect("lock").clone();
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (format!("http://{addr}"), fake)
    }

    fn set(&self, status: u16, body: String) {
        *self.answer.lock().expect("lock") = (status, body);
    }

    fn set_channels(&self, status: u16, body: String) {
        *self.channels.lock().expect("lock") = (status, body);
    }

    fn set_latest(&self, status: u16, body: String) {
        *self.latest.lock().expect("lock") = (status, body);
    }

    fn seen(&self) -> Seen {
        self.seen.lock().expect("lock").clone()
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One alert of the contract; times are minutes before now (`None` = null).
fn alert(
    id: &str,
    severity: &str,
    opened_min: i64,
    ack_min: Option<i64>,
    resolved_min: Option<i64>,
    postmortem: Option<&str>,
) -> Value {
    let now = Utc::now();
    let at = |m: i64| ts(now - ChronoDuration::minutes(m));
    let state = match (ack_min, resolved_min) {
        (_, Some(_)) => "resolved",
        (Some(_), None) => "acknowledged",
        _ => "firing",
    };
    json!({
        "id": id,
        "fingerprint": "0123abcd",
        "kind": "telemetry.kafka.readiness",
        "service": "kafka-readiness",
        "component": null,
        "severity": severity,
        "state": state,
        "summary": format!("alert {id}"),
        "opened_at": at(opened_min),
        "acknowledged_at": ack_min.map(at),
        "acknowledged_by": ack_min.map(|_| "alice"),
        "resolved_at": resolved_min.map(at),
        "resolution": resolved_min.map(|_| "manual"),
        "postmortem_url": postmortem,
    })
}

fn channels(list: &[(&str, bool)]) -> String {
    let map: serde_json::Map<String, Value> = list
        .iter()
        .map(|(name, down)| {
            (
                (*name).to_owned(),
                json!({"kind": "slack", "delivered": 3, "failed": 0, "retries": 0,
                       "consecutive_failures": 0, "down": down, "last_error": null,
                       "last_success_at": null}),
            )
        })
        .collect();
    json!({ "channels": map }).to_string()
}

fn alert_list(alerts: &[Value]) -> String {
    json!({ "count": alerts.len(), "alerts": alerts }).to_string()
}

// ---------------------------------------------------------------- inputs

struct Inputs {
    dir: tempfile::TempDir,
}

impl Inputs {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("runbooks")).expect("mkdir");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn runbook(&self, file: &str, text: &str) {
        std::fs::write(self.path("runbooks").join(file), text).expect("write runbook");
    }

    fn roster(&self, text: &str) {
        std::fs::write(self.path("roster.toml"), text).expect("write roster");
    }

    fn log_line(&self, line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("activity.jsonl"))
            .expect("open log");
        writeln!(f, "{line}").expect("write log");
    }

    /// Settings reading these inputs, with everything a healthy setup needs.
    fn settings(&self, aggregator_url: &str) -> IncidentResponseSettings {
        IncidentResponseSettings {
            interval_seconds: 3600,
            required_runbooks: vec!["redis-cache-outage".into()],
            runbook_dir: self.path("runbooks").display().to_string(),
            roster_file: self.path("roster.toml").display().to_string(),
            activity_log: self.path("activity.jsonl").display().to_string(),
            aggregator_url: aggregator_url.to_owned(),
            chatops_ready: true,
            ..IncidentResponseSettings::default()
        }
    }
}

fn good_runbook() -> String {
    format!(
        "---\nid: redis-cache-outage\nowner: platform-oncall\nlast_reviewed: {}\n---\n\n# Redis cache outage\n",
        Utc::now().date_naive()
    )
}

/// A roster whose single rotation has been on call since a Monday at least a week ago.
fn good_roster() -> String {
    let today = Utc::now().date_naive();
    let monday = today
        - ChronoDuration::days(i64::from(today.weekday().num_days_from_monday()))
        - ChronoDuration::days(7);
    format!(
        "timezone = \"UTC\"\nstart = \"{monday}\"\n\n[[rotation]]\nprimary = [\"alice\"]\nsecondary = [\"bob\"]\n"
    )
}

/// The aggregator's `GET /api/v1/activities/latest` answer: a training session a day ago and
/// the drill given.
fn latest(drill: Option<Value>) -> String {
    json!({
        "last_training": {"kind": "training", "at": ts(Utc::now() - ChronoDuration::days(1)), "by": "alice"},
        "last_drill": drill,
        "entries": 1,
    })
    .to_string()
}

fn recent_training_line() -> String {
    json!({"kind": "training", "at": ts(Utc::now() - ChronoDuration::days(1)), "by": "alice"})
        .to_string()
}

/// The domain for `settings`, run one gather and evaluation at a time as the framework runs it.
struct Runner(IncidentResponse);

impl Runner {
    async fn run_once(&mut self) -> Snapshot {
        let state = self.0.gather().await;
        let at = Evaluation {
            source: Source::new("incident-response", "it"),
            now: Utc::now(),
        };
        self.0.evaluate(&state, &at).remove(0)
    }
}

fn service(settings: IncidentResponseSettings) -> Runner {
    Runner(IncidentResponse::new(settings))
}

/// The domain for `settings` on port 0, its activities guarded by `token`.
fn serve(settings: IncidentResponseSettings, token: Secret) -> TestService {
    TestService::start(IncidentResponse::new(IncidentResponseSettings {
        api_token: token,
        ..settings
    }))
    .expect("serve")
}

fn issue(snapshot: &Snapshot, category: &str) -> Option<(Grade, String)> {
    snapshot_issues(snapshot)
        .into_iter()
        .find(|i| i.category == category)
        .map(|i| (i.severity, i.message))
}

// ---------------------------------------------------------------- tests

#[test]
fn the_shipped_runbooks_have_the_front_matter_the_service_reads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/runbooks");
    let scan = runbooks::scan(&dir);
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let ids: Vec<&str> = scan.runbooks.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(&"redis-cache-outage"), "{ids:?}");
    assert!(ids.contains(&"kafka-ingest-offset-recovery"), "{ids:?}");
    assert!(scan.runbooks.iter().all(|r| !r.owner.is_empty()));
}

#[actix_rt::test]
async fn malformed_roster_and_runbook_files_are_findings_not_crashes() {
    let inputs = Inputs::new();
    inputs.runbook("redis.md", &good_runbook());
    inputs.runbook(
        "broken.md",
        "---\nid: broken\nowner: ops\nlast_reviewed: yesterday\n---\n",
    );
    inputs.roster("timezone = \"UTC\"\nstart = [\n");
    inputs.log_line(&recent_training_line());
    inputs.log_line("{not json");
    let mut service = service(inputs.settings(""));
    let snapshot = service.run_once().await;
    assert_eq!(snapshot.validate(), Ok(()));

    let (grade, message) = issue(&snapshot, "roster_file").expect("roster finding");
    assert_eq!(grade, Grade::Warn);
    assert!(
        message.contains("roster.toml") && message.contains("is not a valid roster"),
        "{message}"
    );
    let (grade, _) = issue(&snapshot, "primary_roster").expect("no responders");
    assert_eq!(grade, Grade::Fail);
    let (_, message) = issue(&snapshot, "runbook_file").expect("runbook finding");
    assert!(
        message.contains("broken.md") && message.contains("YYYY-MM-DD"),
        "{message}"
    );
    assert!(
        issue(&snapshot, "missing_runbooks").is_none(),
        "the good runbook still counts"
    );
    let (_, message) = issue(&snapshot, "activity_log").expect("log finding");
    assert!(message.contains("line 2"), "{message}");
    assert!(
        issue(&snapshot, "training").is_none(),
        "the good log line still counts"
    );
    let (_, message) = issue(&snapshot, "alert_history").expect("history finding");
    assert!(message.contains("no alert history configured"), "{message}");

    assert_eq!(snapshot.status, Grade::Fail);
    let roster = snapshot.component("roster").expect("roster component");
    assert_eq!(roster.status, Grade::Fail);
    assert!(roster.summary.contains("is not a valid roster"));
    let g = gate(
        &snapshot,
        &IncidentResponseSettings::default().gate_settings(),
    );
    assert_eq!(g.status, GateDecision::Block);
}

#[actix_rt::test]
async fn the_alert_history_client_speaks_the_aggregator_contract() {
    let (url, fake) = FakeAggregator::start();
    fake.set(
        200,
        alert_list(&[
            alert("a1", "critical", 30, Some(25), None, None),
            alert(
                "a2",
                "warning",
                600,
                Some(590),
                Some(500),
                Some("https://wiki/pm/a2"),
            ),
        ]),
    );
    let client = AlertHistoryClient::new(&url, Secret::new("s3cret"), Duration::from_secs(5))
        .expect("client");
    let alerts = client.fetch().await.expect("fetch");
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].id, "a1");
    assert!(alerts[0].is_open() && !alerts[1].is_open());
    let seen = fake.seen();
    assert_eq!(
        seen[0].0,
        "GET /api/v1/alerts?state=all&limit=1000 HTTP/1.1"
    );
    assert_eq!(seen[0].1.as_deref(), Some("Bearer s3cret"));

    fake.set(401, json!({"error": "unauthorized"}).to_string());
    let err = client.fetch().await.expect_err("401");
    assert!(matches!(err, AlertHistoryError::Status { status: 401, .. }));
    assert!(err.to_string().contains("aggregator_token"), "{err}");

    fake.set(200, "<html>".into());
    let err = client.fetch().await.expect_err("not json");
    assert!(matches!(err, AlertHistoryError::Decode { .. }), "{err}");

    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead: SocketAddr = closed.local_addr().expect("addr");
    drop(closed);
    let client = AlertHistoryClient::new(
        &format!("http://{dead}"),
        Secret::default(),
        Duration::from_secs(2),
    )
    .expect("client");
    let err = client.fetch().await.expect_err("unreachable");
    assert!(
        err.to_string().contains("cannot reach the aggregator"),
        "{err}"
    );
}

#[actix_rt::test]
async fn alert_history_is_graded_and_kept_when_the_aggregator_goes_away() {
    let (url, fake) = FakeAggregator::start();
    let inputs = Inputs::new();
    inputs.runbook("redis.md", &good_runbook());
    inputs.roster(&good_roster());
    inputs.log_line(&recent_training_line());
    fake.set(
        200,
        alert_list(&[
            // two open incidents (max 1 → fail)
            alert("open-1", "critical", 20, Some(15), None, None),
            alert("open-2", "warning", 10, None, None, None),
            // a critical resolved 30 h ago without a postmortem (SLA 24 h → warn)
            alert(
                "done-1",
                "critical",
                35 * 60,
                Some(35 * 60 - 45),
                Some(30 * 60),
                None,
            ),
        ]),
    );
    fake.set_channels(200, channels(&[("slack", false), ("pager", true)]));
    let mut settings = inputs.settings(&url);
    settings.chatops_ready = false; // read live from the aggregator instead
    let mut service = service(settings);
    let snapshot = service.run_once().await;
    let (grade, message) = issue(&snapshot, "chatops").expect("a channel is down");
    assert_eq!(grade, Grade::Warn);
    assert!(
        message.contains("notification channels down: pager"),
        "{message}"
    );
    let (grade, message) = issue(&snapshot, "open_incidents").expect("open incidents");
    assert_eq!(grade, Grade::Fail);
    assert!(
        message.contains("2 open incidents exceed the maximum of 1"),
        "{message}"
    );
    let (grade, message) = issue(&snapshot, "postmortem_backlog").expect("backlog");
    assert_eq!(grade, Grade::Warn);
    assert!(message.contains("done-1"), "{message}");
    // MTTA: (5 + 45) / 2 = 25 min < 30 → no issue; MTTR 300 min ≥ 180 warn
    assert!(issue(&snapshot, "metrics_mtta").is_none());
    let (grade, _) = issue(&snapshot, "metrics_mttr").expect("mttr");
    assert_eq!(grade, Grade::Warn);
    assert_eq!(snapshot.metrics.get("open_incidents"), Some(&2.0));
    assert_eq!(snapshot.metrics.get("mtta_minutes"), Some(&25.0));
    let g = gate(
        &snapshot,
        &IncidentResponseSettings::default().gate_settings(),
    );
    assert_eq!(g.status, GateDecision::Block);
    assert!(g
        .blocking_codes
        .contains(&"issue_open_incidents_fail".to_owned()));
    assert!(g
        .blocking_codes
        .contains(&"issue_postmortem_backlog_warn_blocked".to_owned()));

    // the aggregator fails: the cached history is still graded, and the failure is a finding
    fake.set(503, json!({"error": "unavailable"}).to_string());
    fake.set_channels(200, channels(&[("slack", false)]));
    let snapshot = service.run_once().await;
    assert!(issue(&snapshot, "chatops").is_none(), "channels recovered");
    assert!(issue(&snapshot, "open_incidents").is_some());
    let (grade, message) = issue(&snapshot, "alert_history").expect("history finding");
    assert_eq!(grade, Grade::Warn);
    assert!(
        message.contains("503") && message.contains("grading the alert history fetched at"),
        "{message}"
    );
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json body"))
}

/// The activities token of the tests' HTTP servers.
const TOKEN: &str = "incident-test-token";

async fn post(client: &reqwest::Client, url: &str, body: &str) -> (u16, Value) {
    let r = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json body"))
}

async fn wait_for_snapshot(client: &reqwest::Client, base: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = get(client, &format!("{base}/api/v1/snapshot")).await;
        if status == 200 {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no snapshot within 5 s");
}

#[actix_rt::test]
async fn http_gate_allows_and_blocks_and_a_recorded_drill_feeds_the_next_evaluation() {
    let (url, fake) = FakeAggregator::start();
    let inputs = Inputs::new();
    inputs.runbook("redis.md", &good_runbook());
    inputs.roster(&good_roster());
    inputs.log_line(&recent_training_line());
    // history with signal and nothing open
    fake.set(
        200,
        alert_list(&[alert("old", "warning", 300, Some(295), Some(280), None)]),
    );
    let mut settings = inputs.settings(&url);
    settings.chatops_ready = false; // read live: one healthy channel
    let server = serve(settings, Secret::new(TOKEN));
    let base = server.base_url.clone();
    let client = reqwest::Client::new();

    let snapshot = wait_for_snapshot(&client, &base).await;
    assert_eq!(snapshot["kind"], topics::INCIDENT_RESPONSE);
    let (status, body) = get(&client, &format!("{base}/health/ready")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    let (status, _) = get(&client, &format!("{base}/health/live")).await;
    assert_eq!(status, 200);

    // no drill recorded yet: a warning, not a blocker
    let (status, gate) = get(&client, &format!("{base}/api/v1/gate")).await;
    assert_eq!(status, 200);
    assert_eq!(gate["status"], "allow", "{gate}");
    assert_eq!(gate["grade"], "warn");
    assert_eq!(gate["warning_codes"], json!(["issue_drill_warn"]));
    assert_eq!(gate["blocking_reasons"], json!([]));

    // bad requests name what is wrong
    let (status, body) = get(&client, &format!("{base}/api/v1/gate?force=1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = post(
        &client,
        &format!("{base}/api/v1/activities"),
        r#"{"kind":"party","by":"a"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_activity");
    assert_eq!(body["field"], "kind");
    let (status, body) = post(
        &client,
        &format!("{base}/api/v1/activities"),
        r#"{"kind":"drill"}"#,
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("by")));
    let (status, body) = post(
        &client,
        &format!("{base}/api/v1/activities"),
        r#"{"kind":"drill","by":"a","at":"soon"}"#,
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("at")));
    let (status, body) = get(&client, &format!("{base}/api/v1/nope")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    // record a drill: with an aggregator it is sent there (not to the local file), and the
    // evaluation that follows reads it back from the aggregator
    let before = std::fs::read_to_string(inputs.path("activity.jsonl")).expect("log");
    fake.set_latest(
        200,
        latest(Some(
            json!({"kind": "drill", "at": ts(Utc::now()), "by": "alice", "note": "alert drill"}),
        )),
    );
    let (status, body) = post(
        &client,
        &format!("{base}/api/v1/activities"),
        r#"{"kind":"drill","by":"alice","note":"alert drill"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["recorded"]["kind"], "drill");
    assert_eq!(body["snapshot_status"], "ok");
    assert_eq!(body["gate_status"], "allow");
    assert!(
        fake.seen()
            .iter()
            .any(|(line, _)| line.starts_with("POST /api/v1/activities ")),
        "{:?}",
        fake.seen()
    );
    let after = std::fs::read_to_string(inputs.path("activity.jsonl")).expect("log");
    assert_eq!(after, before, "the local file is only the fallback");
    let (_, snapshot) = get(&client, &format!("{base}/api/v1/snapshot")).await;
    let drills = snapshot["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "drills"))
        .expect("drills component");
    assert_eq!(drills["status"], "ok");
    let (_, gate) = get(&client, &format!("{base}/api/v1/gate")).await;
    assert_eq!(
        (gate["status"].as_str(), gate["grade"].as_str()),
        (Some("allow"), Some("ok"))
    );

    // an incident opens: one open at max 1 warns, and open_incidents warns block by default
    fake.set(
        200,
        alert_list(&[
            alert("new", "critical", 2, None, None, None),
            alert("old", "warning", 300, Some(295), Some(280), None),
        ]),
    );
    let fresh = server.service.handle().run_now().await.remove(0);
    assert_eq!(fresh.status, Grade::Warn);
    let (status, gate) = get(&client, &format!("{base}/api/v1/gate")).await;
    assert_eq!(status, 200);
    assert_eq!(gate["status"], "block", "{gate}");
    assert_eq!(gate["grade"], "fail");
    assert_eq!(
        gate["blocking_codes"],
        json!(["issue_open_incidents_warn_blocked"])
    );
    assert_eq!(gate["metadata"]["snapshot_status"], "warn");
    assert_eq!(gate["metadata"]["snapshot_id"], fresh.id.to_string());

    server.service.stop(false).await;
}

/// `POST /api/v1/activities` with an optional raw `Authorization` header.
async fn post_as(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
    body: &str,
) -> (u16, Value, Option<String>) {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, r.json().await.unwrap_or(Value::Null), challenge)
}

#[actix_rt::test]
async fn activities_need_the_token_before_the_body_is_read_and_hostile_requests_write_nothing() {
    let (url, _fake) = FakeAggregator::start();
    let inputs = Inputs::new();
    inputs.runbook("redis.md", &good_runbook());
    inputs.roster(&good_roster());
    inputs.log_line(&recent_training_line());
    let log = || std::fs::read_to_string(inputs.path("activity.jsonl")).expect("log");
    let before = log();
    let client = reqwest::Client::new();
    let good = r#"{"kind":"drill","by":"mallory","note":"forged drill"}"#;
    let huge_body = format!(r#"{{"kind":"drill","by":"{}"}}"#, "x".repeat(20 * 1024));

    // without an aggregator the local file is the log
    let settings = || IncidentResponseSettings {
        aggregator_url: String::new(),
        ..inputs.settings(&url)
    };
    // no token configured: disabled, whatever is presented, naming the setting
    let server = serve(settings(), Secret::default());
    let activities = server.url("/api/v1/activities");
    for auth in [None, Some("Bearer "), Some("Bearer anything")] {
        let (status, body, _) = post_as(&client, &activities, auth, good).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("disabled")),
            "{body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("incident_response.api_token")
                && detail.contains("TELEMESH__INCIDENT_RESPONSE__API_TOKEN"),
            "{detail}"
        );
    }
    server.service.stop(false).await;

    let server = serve(settings(), Secret::new(TOKEN));
    let activities = server.url("/api/v1/activities");
    let huge_token = format!("Bearer {}", "A".repeat(16 * 1024));
    let wrong_long = format!("Bearer {TOKEN}{TOKEN}");
    let cases: Vec<(Option<&str>, &str, u16)> = vec![
        (None, good, 401),
        (Some(""), good, 401),
        (Some("Basic aW5jaWRlbnQtdGVzdC10b2tlbg=="), good, 401),
        (Some(TOKEN), good, 401),
        (Some("Bearer"), good, 401),
        (Some("Bearer wrong-token"), good, 403),
        (Some("Bearer incident-test-toke"), good, 403),
        (Some(&wrong_long), good, 403),
        (Some(&huge_token), good, 403),
        // an invalid or oversized body is never read without the right token
        (None, "not json", 401),
        (Some("Bearer wrong-token"), "not json", 403),
        (Some("Bearer wrong-token"), &huge_body, 403),
        (None, &huge_body, 401),
    ];
    for (auth, body, expected) in cases {
        let (status, answer, challenge) = post_as(&client, &activities, auth, body).await;
        let shown = auth.map(|a| &a[..a.len().min(40)]);
        assert_eq!(status, expected, "{shown:?}: {answer}");
        assert!(
            !answer.to_string().contains(TOKEN),
            "the token never leaks: {answer}"
        );
        assert_eq!(challenge.is_some(), expected == 401, "{shown:?}");
    }
    assert_eq!(log(), before, "refused requests write nothing");

    // the right token: the body is read and validated only now
    let bearer = format!("Bearer {TOKEN}");
    let (status, answer, _) = post_as(&client, &activities, Some(&bearer), "not json").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_activity"))
    );
    let (status, answer, _) = post_as(&client, &activities, Some(&bearer), &huge_body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("too_large")),
        "{answer}"
    );
    assert_eq!(log(), before);
    let (status, answer, _) = post_as(&client, &activities, Some(&bearer), good).await;
    assert_eq!(status, 201, "{answer}");
    assert!(log().contains("forged drill"));
    server.service.stop(false).await;
}
