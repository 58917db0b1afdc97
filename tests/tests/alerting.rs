//! Alerting end to end over real HTTP and a real PostgreSQL journal: local receivers stand in
//! for Slack, a webhook endpoint and the GitHub API (real sockets; they record what they get
//! and answer 429 or 500 when told to).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use telemesh_aggregator::{subscribed_topics, Aggregator, AlertingParts, TransportParts};
use telemesh_alerting::actor::{Clock, ManualClock, SystemClock, TickNow};
use telemesh_alerting::{AlertingSettings, ChannelSettings};
use telemesh_core::config::Secret;
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fake_http::{FakeReceiver, Received};
use telemesh_integration_tests::fixtures::{aggregator_settings, pg_journal, snapshot};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};

const TOKEN: &str = "alert-api-token";

struct Receivers {
    slack: FakeReceiver,
    webhook: FakeReceiver,
    github: FakeReceiver,
    manager: FakeReceiver,
}

impl Receivers {
    fn start() -> Self {
        Self {
            slack: FakeReceiver::start(),
            webhook: FakeReceiver::start(),
            github: FakeReceiver::start(),
            manager: FakeReceiver::start(),
        }
    }

    fn settings(&self) -> AlertingSettings {
        let channel = |name: &str, kind: &str, url: &str| ChannelSettings {
            name: name.into(),
            kind: kind.into(),
            url: Secret::new(url),
            max_attempts: 4,
            ..ChannelSettings::default()
        };
        AlertingSettings {
            api_token: Secret::new(TOKEN),
            group_wait_seconds: 0.2,
            group_interval_seconds: 0.0,
            tick_ms: 50,
            escalation_channels: vec!["manager".into()],
            channels: vec![
                channel("slack", "slack", &self.slack.url),
                channel("webhook", "webhook", &self.webhook.url),
                ChannelSettings {
                    api_url: self.github.url.clone(),
                    repo: "acme/ops".into(),
                    token: Secret::new("gh-token"),
                    ..channel("github", "github", "")
                },
                channel("manager", "webhook", &self.manager.url),
            ],
            ..AlertingSettings::default()
        }
    }
}

/// Every log line of this test binary (all tests), for the secret sweep; also printed when
/// `TEST_LOG` is set.
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(Default::default)
}

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        captured_logs().lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            eprint!("{}", String::from_utf8_lossy(buf));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

async fn start(
    db: &str,
    settings: AlertingSettings,
    clock: Arc<dyn Clock>,
) -> (Aggregator, SnapshotPublisher) {
    capture_logs();
    let bus = InProcessBus::new(64, subscribed_topics(""));
    let subscriber = bus.subscriber().unwrap();
    let aggregator = Aggregator::start_with(
        &aggregator_settings(),
        "127.0.0.1:0",
        "",
        pg_journal(db).await,
        TransportParts::in_process(subscriber, bus.publisher()),
        Some(AlertingParts {
            settings,
            env: Default::default(),
            clock,
        }),
    )
    .await
    .unwrap();
    (
        aggregator,
        SnapshotPublisher::new(bus.publisher(), Encoding::Json, ""),
    )
}

async fn publish(publisher: &SnapshotPublisher, grade: Grade, summary: &str) {
    let mut s = snapshot(topics::INGEST_TRENDS, "ingest", "a", grade);
    s.summary = summary.into();
    publisher.publish(&s).await.unwrap();
}

async fn wait_for(receiver: &FakeReceiver, what: &str, n: usize) -> Vec<Received> {
    wait_until(what, Duration::from_secs(20), || {
        let got = receiver.received();
        async move { (got.len() >= n).then_some(got) }
    })
    .await
}

fn webhook_events(receiver: &FakeReceiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .map(|r| r.body["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn github_calls(receiver: &FakeReceiver) -> Vec<(String, String, Value)> {
    receiver
        .received()
        .into_iter()
        .map(|r| (r.method, r.path, r.body))
        .collect()
}

#[actix_rt::test]
async fn fire_append_resolve_and_refire_reach_slack_webhook_and_one_github_issue() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let rx = Receivers::start();
    let (aggregator, publisher) = start(&db, rx.settings(), Arc::new(SystemClock)).await;

    publish(&publisher, Grade::Fail, "rows dropped 40%").await;
    let slack = wait_for(&rx.slack, "slack page", 1).await;
    assert!(
        slack[0].body["text"].as_str().unwrap().contains("FIRING"),
        "{:?}",
        slack[0].body
    );
    assert_eq!(slack[0].body["blocks"][0]["type"], "header");
    wait_for(&rx.webhook, "webhook page", 1).await;
    let gh = wait_for(&rx.github, "github issue", 1).await;
    assert_eq!(
        (gh[0].method.as_str(), gh[0].path.as_str()),
        ("POST", "/repos/acme/ops/issues")
    );
    assert_eq!(gh[0].authorization.as_deref(), Some("Bearer gh-token"));
    assert!(gh[0].body["labels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().starts_with("fp-")));

    publish(&publisher, Grade::Fail, "rows dropped 80%").await;
    wait_for(&rx.webhook, "append", 2).await;
    wait_for(&rx.github, "comment", 2).await;
    publish(&publisher, Grade::Ok, "rows back to normal").await;
    wait_for(&rx.webhook, "resolve", 3).await;
    wait_for(&rx.github, "close", 4).await;
    publish(&publisher, Grade::Fail, "rows dropped again").await;
    wait_for(&rx.webhook, "re-fire", 4).await;
    wait_for(&rx.github, "reopen", 6).await;

    assert_eq!(
        webhook_events(&rx.webhook),
        ["open", "append", "resolve", "open"]
    );
    let calls = github_calls(&rx.github);
    let shape: Vec<(String, String)> = calls
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    assert_eq!(
        shape,
        [
            ("POST", "/repos/acme/ops/issues"),
            ("POST", "/repos/acme/ops/issues/1/comments"),
            ("POST", "/repos/acme/ops/issues/1/comments"),
            ("PATCH", "/repos/acme/ops/issues/1"),
            ("PATCH", "/repos/acme/ops/issues/1"),
            ("POST", "/repos/acme/ops/issues/1/comments"),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned())),
        "one issue per fingerprint: opened, commented, closed, reopened"
    );
    assert_eq!(calls[3].2["state"], "closed");
    assert_eq!(calls[4].2["state"], "open");
    assert!(
        rx.manager.received().is_empty(),
        "no escalation inside the deadline"
    );
    aggregator.stop().await;
}

#[actix_rt::test]
async fn a_restart_mid_alert_neither_pages_twice_nor_loses_the_alert() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let rx = Receivers::start();
    let (first, publisher) = start(&db, rx.settings(), Arc::new(SystemClock)).await;
    publish(&publisher, Grade::Fail, "freshness regressed").await;
    wait_for(&rx.webhook, "open", 1).await;
    first.stop().await;

    let (second, publisher) = start(&db, rx.settings(), Arc::new(SystemClock)).await;
    let open: Value = reqwest::get(format!(
        "http://{}/api/v1/alerts?state=open",
        second.http_addr
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        open["count"], 1,
        "the firing alert survived the restart: {open}"
    );
    publish(&publisher, Grade::Fail, "freshness regressed").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        webhook_events(&rx.webhook),
        ["open"],
        "no second page after the restart"
    );
    publish(&publisher, Grade::Ok, "fresh").await;
    wait_for(&rx.webhook, "resolve", 2).await;
    assert_eq!(webhook_events(&rx.webhook), ["open", "resolve"]);
    second.stop().await;
}

#[actix_rt::test]
async fn rate_limits_and_server_errors_are_retried_and_logged() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let rx = Receivers::start();
    rx.slack.fail_next(&[(429, Some(1))]);
    rx.webhook.fail_next(&[(500, None)]);
    let (aggregator, publisher) = start(&db, rx.settings(), Arc::new(SystemClock)).await;
    publish(&publisher, Grade::Fail, "rows dropped").await;
    let slack = wait_for(&rx.slack, "slack retry", 2).await;
    let gap = slack[1].at - slack[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After: 1 honoured, waited {gap:?}"
    );
    wait_for(&rx.webhook, "webhook retry", 2).await;

    let base = format!("http://{}", aggregator.http_addr);
    let alerts: Value = reqwest::get(format!("{base}/api/v1/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let detail: Value = wait_until("notification log written", Duration::from_secs(10), || {
        let url = format!("{base}/api/v1/alerts/{id}");
        async move {
            let d: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            let log = d["notifications"].as_array()?;
            log.iter().all(|n| n["outcome"] == "delivered").then_some(d)
        }
    })
    .await;
    let slack_log = detail["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["channel"] == "slack")
        .unwrap();
    assert_eq!(slack_log["attempts"], 2, "{slack_log}");
    let channels: Value = reqwest::get(format!("{base}/api/v1/alerts/channels"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(channels["channels"]["slack"]["retries"], 1, "{channels}");
    assert_eq!(channels["channels"]["slack"]["down"], false);
    aggregator.stop().await;
}

#[actix_rt::test]
async fn acknowledging_needs_the_token_and_records_who_and_when() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let rx = Receivers::start();
    let (aggregator, publisher) = start(&db, rx.settings(), Arc::new(SystemClock)).await;
    publish(&publisher, Grade::Fail, "rows dropped").await;
    wait_for(&rx.webhook, "open", 1).await;
    let base = format!("http://{}", aggregator.http_addr);
    let alerts: Value = reqwest::get(format!("{base}/api/v1/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let ack = |token: Option<&str>, body: Value| {
        let mut request = client
            .post(format!("{base}/api/v1/alerts/{id}/ack"))
            .json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send()
    };
    let by = serde_json::json!({"by": "alice", "note": "on it"});
    assert_eq!(ack(None, by.clone()).await.unwrap().status(), 401);
    assert_eq!(ack(Some("wrong"), by.clone()).await.unwrap().status(), 403);
    let still: Value = reqwest::get(format!("{base}/api/v1/alerts/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        still["alert"]["acknowledged_at"].is_null(),
        "refused requests change nothing"
    );
    let bad = ack(Some(TOKEN), serde_json::json!({"who": "alice"}))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"], "invalid_body");
    let ok = ack(Some(TOKEN), by).await.unwrap();
    assert_eq!(ok.status(), 200);
    let acked: Value = ok.json().await.unwrap();
    assert_eq!(acked["acknowledged_by"], "alice");
    assert!(acked["acknowledged_at"].is_string());
    wait_for(&rx.webhook, "acknowledge notice", 2).await;
    assert_eq!(webhook_events(&rx.webhook)[1], "acknowledge");

    let resolve = client
        .post(format!("{base}/api/v1/alerts/{id}/resolve"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"by": "alice", "note": "fixed upstream"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resolve.status(), 200);
    let resolved: Value = resolve.json().await.unwrap();
    assert_eq!(resolved["resolution"], "manual");
    wait_for(&rx.webhook, "manual resolve notice", 3).await;
    aggregator.stop().await;
}

#[actix_rt::test]
async fn unacknowledged_alerts_escalate_at_the_deadline_and_at_end_of_business_day() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let rx = Receivers::start();
    // a Wednesday in the past, so the real-time snapshots never look stale to this clock
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 16, 30, 0).unwrap(),
    ));
    let mut settings = rx.settings();
    settings.group_wait_seconds = 0.0;
    let (aggregator, publisher) = start(&db, settings, clock.clone()).await;
    let alerts = aggregator.alerts.clone().unwrap();
    publish(&publisher, Grade::Fail, "rows dropped").await;
    wait_for(&rx.webhook, "open", 1).await;

    clock.set(Utc.with_ymd_and_hms(2026, 11, 25, 17, 0, 1).unwrap());
    alerts.send(TickNow).await.unwrap();
    let eod = wait_for(&rx.manager, "end-of-day escalation", 1).await;
    assert_eq!(eod[0].body["event"], "escalate");
    assert!(
        eod[0].body["reason"]
            .as_str()
            .unwrap()
            .contains("end of the business day"),
        "{:?}",
        eod[0].body
    );

    // one business hour after 16:30 Wednesday is 09:30 Thursday
    clock.set(Utc.with_ymd_and_hms(2026, 11, 26, 9, 29, 0).unwrap());
    alerts.send(TickNow).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.manager.received().len(),
        1,
        "night time does not count toward the deadline"
    );
    clock.set(Utc.with_ymd_and_hms(2026, 11, 26, 9, 31, 0).unwrap());
    alerts.send(TickNow).await.unwrap();
    let late = wait_for(&rx.manager, "deadline escalation", 2).await;
    assert!(
        late[1].body["reason"]
            .as_str()
            .unwrap()
            .contains("not acknowledged"),
        "{:?}",
        late[1].body
    );

    // acknowledged: no further escalation at Thursday's close
    let base = format!("http://{}", aggregator.http_addr);
    let list: Value = reqwest::get(format!("{base}/api/v1/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["alerts"][0]["id"].as_str().unwrap().to_owned();
    let ack = reqwest::Client::new()
        .post(format!("{base}/api/v1/alerts/{id}/ack"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"by": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    clock.set(Utc.with_ymd_and_hms(2026, 11, 26, 17, 0, 5).unwrap());
    alerts.send(TickNow).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.manager.received().len(),
        2,
        "acknowledged alerts stop escalating"
    );
    aggregator.stop().await;
}

#[actix_rt::test]
async fn the_email_channel_sends_through_smtp() {
    use telemesh_integration_tests::fake_smtp::FakeSmtp;
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let smtp = FakeSmtp::start().await;
    let settings = AlertingSettings {
        group_wait_seconds: 0.0,
        channels: vec![ChannelSettings {
            name: "ops-email".into(),
            kind: "email".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: smtp.port,
            smtp_tls: "none".into(),
            from: "telemesh <telemesh@example.com>".into(),
            to: vec!["oncall@example.com".into()],
            ..ChannelSettings::default()
        }],
        ..AlertingSettings::default()
    };
    let (aggregator, publisher) = start(&db, settings, Arc::new(SystemClock)).await;
    publish(&publisher, Grade::Fail, "retention gap in md_trades").await;
    let messages = wait_until("an e-mail", Duration::from_secs(20), || {
        let m = smtp.messages();
        async move { (!m.is_empty()).then_some(m) }
    })
    .await;
    assert!(
        messages[0].contains("Subject: FIRING: [CRITICAL] telemetry.ingest.trends from ingest"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("retention gap in md_trades"));
    assert!(messages[0].contains("To: oncall@example.com"));
    aggregator.stop().await;
}

#[actix_rt::test]
async fn incident_response_grades_the_real_alert_history_and_gates_deploys() {
    use chrono::Datelike;
    use telemesh_incident_response::{gate as gate_of, IncidentResponse, IncidentResponseSettings};
    use telemesh_service::testing::TestService;

    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let rx = Receivers::start();
    let (aggregator, publisher) = start(&db, rx.settings(), Arc::new(SystemClock)).await;
    publish(&publisher, Grade::Fail, "rows dropped").await;
    wait_for(&rx.webhook, "open", 1).await;

    let dir = tempfile::tempdir().unwrap();
    let today = Utc::now().date_naive();
    let monday =
        today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()) + 7);
    let roster = dir.path().join("roster.toml");
    std::fs::write(&roster, format!("timezone = \"UTC\"\nstart = \"{monday}\"\n\n[[rotation]]\nprimary = [\"alice\"]\nsecondary = [\"bob\"]\n")).unwrap();
    let settings = IncidentResponseSettings {
        runbook_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/runbooks").into(),
        roster_file: roster.display().to_string(),
        activity_log: dir.path().join("activity.jsonl").display().to_string(),
        aggregator_url: format!("http://{}", aggregator.http_addr),
        ..IncidentResponseSettings::default()
    };
    let gate_settings = settings.gate_settings();
    let service = TestService::start(IncidentResponse::new(settings)).expect("start the domain");
    let handle = service.service.handle().clone();

    let open = handle.run_now().await.remove(0);
    assert_eq!(
        open.metrics.get("open_incidents"),
        Some(&1.0),
        "{}",
        open.markdown
    );
    assert!(
        open.component("incidents").unwrap().status >= Grade::Warn,
        "{}",
        open.markdown
    );
    let gate = gate_of(&open, &gate_settings);
    assert!(
        gate.is_blocking,
        "an open incident blocks deploys: {gate:?}"
    );
    assert!(
        gate.blocking_codes
            .iter()
            .any(|c| c.contains("open_incidents")),
        "{gate:?}"
    );

    // acknowledge and resolve through the real API: the incident closes and MTTA/MTTR appear
    let base = format!("http://{}", aggregator.http_addr);
    let list: Value = reqwest::get(format!("{base}/api/v1/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["alerts"][0]["id"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    for action in ["ack", "resolve"] {
        let r = client
            .post(format!("{base}/api/v1/alerts/{id}/{action}"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"by": "alice"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}");
    }
    let closed = handle.run_now().await.remove(0);
    assert_eq!(
        closed.metrics.get("open_incidents"),
        Some(&0.0),
        "{}",
        closed.markdown
    );
    assert!(
        closed.markdown.to_lowercase().contains("mtta"),
        "{}",
        closed.markdown
    );
    let gate = gate_of(&closed, &gate_settings);
    assert!(
        !gate
            .blocking_codes
            .iter()
            .any(|c| c.contains("open_incidents")),
        "{gate:?}"
    );
    aggregator.stop().await;
}

/// A webhook channel to `url` with a fast outbox schedule (tests stand in short times for
/// minutes and hours).
fn fast_outbox(channels: Vec<ChannelSettings>) -> AlertingSettings {
    AlertingSettings {
        api_token: Secret::new(TOKEN),
        group_wait_seconds: 0.0,
        tick_ms: 50,
        retry_initial_seconds: 0.1,
        retry_max_seconds: 0.5,
        channels,
        ..AlertingSettings::default()
    }
}

fn webhook(name: &str, url: &str) -> ChannelSettings {
    ChannelSettings {
        name: name.into(),
        kind: "webhook".into(),
        url: Secret::new(url),
        timeout_ms: 1_000,
        ..ChannelSettings::default()
    }
}

async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[actix_rt::test]
async fn a_receiver_down_for_a_while_gets_the_page_exactly_once_when_it_is_back() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let down = FakeReceiver::start();
    let addr = down.addr().to_owned();
    down.stop().await;
    let settings = fast_outbox(vec![webhook("ops", &format!("http://{addr}/hook"))]);
    let (aggregator, publisher) = start(&db, settings, Arc::new(SystemClock)).await;
    let base = format!("http://{}", aggregator.http_addr);
    publish(&publisher, Grade::Fail, "rows dropped").await;

    // down: the outbox keeps retrying (and shows it) instead of dropping the page
    let channels = wait_until("several failed attempts", Duration::from_secs(20), || {
        let url = format!("{base}/api/v1/alerts/channels");
        async move {
            let c = get_json(url).await;
            (c["channels"]["ops"]["retries"].as_u64()? >= 5).then_some(c)
        }
    })
    .await;
    assert_eq!(channels["channels"]["ops"]["delivered"], 0, "{channels}");
    let error = channels["channels"]["ops"]["last_error"].as_str().unwrap();
    assert!(!error.contains(&addr), "no URL in errors: {error}");
    tokio::time::sleep(Duration::from_secs(3)).await;

    let back = FakeReceiver::start_on(&addr);
    wait_for(&back, "the page after the receiver is back", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(webhook_events(&back), ["open"], "exactly one page");
    let alerts = get_json(format!("{base}/api/v1/alerts")).await;
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let detail = wait_until("the outbox row delivered", Duration::from_secs(10), || {
        let url = format!("{base}/api/v1/alerts/{id}");
        async move {
            let d = get_json(url).await;
            (d["notifications"][0]["outcome"] == "delivered").then_some(d)
        }
    })
    .await;
    assert!(
        detail["notifications"][0]["attempts"].as_u64().unwrap() > 5,
        "{detail}"
    );
    aggregator.stop().await;
    back.stop().await;
}

#[actix_rt::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let receiver = FakeReceiver::start();
    let settings = fast_outbox(vec![webhook("ops", &format!("{}/hook", receiver.url))]);
    let (aggregator, publisher) = start(&db, settings, Arc::new(SystemClock)).await;
    let at = Utc::now() + chrono::Duration::seconds(6);
    receiver.fail_next_raw(503, &at.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    publish(&publisher, Grade::Fail, "rows dropped").await;
    let got = wait_for(&receiver, "the retry", 2).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_secs(2),
        "waited for the date (5-6 s after publishing), not the 0.1 s backoff: {gap:?}"
    );
    aggregator.stop().await;
}

#[actix_rt::test]
async fn an_expired_page_goes_to_the_fallback_and_the_failure_shows_in_channels() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let dead = FakeReceiver::start();
    let addr = dead.addr().to_owned();
    dead.stop().await;
    let backup = FakeReceiver::start();
    let mut settings = fast_outbox(vec![
        ChannelSettings {
            fallback: "backup".into(),
            ..webhook("primary", &format!("http://{addr}/hook"))
        },
        webhook("backup", &format!("{}/hook", backup.url)),
    ]);
    settings.outbox_expire_seconds = 1.5;
    // pages go to the primary only; the backup takes what the primary could not deliver
    settings.rules[0].channels = vec!["primary".into()];
    let (aggregator, publisher) = start(&db, settings, Arc::new(SystemClock)).await;
    let base = format!("http://{}", aggregator.http_addr);
    publish(&publisher, Grade::Fail, "rows dropped").await;
    let got = wait_for(&backup, "the fallback page", 1).await;
    assert_eq!(got[0].body["event"], "open");
    let channels = get_json(format!("{base}/api/v1/alerts/channels")).await;
    let primary = &channels["channels"]["primary"];
    assert_eq!(primary["expired"], 1, "{channels}");
    assert_eq!(primary["down"], true, "{channels}");
    assert_eq!(primary["fallback"], "backup", "{channels}");
    let alerts = get_json(format!("{base}/api/v1/alerts")).await;
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let detail = wait_until("both outbox rows final", Duration::from_secs(10), || {
        let url = format!("{base}/api/v1/alerts/{id}");
        async move {
            let d = get_json(url).await;
            let log = d["notifications"].as_array()?.clone();
            (log.len() == 2 && log.iter().all(|n| n["outcome"] != "pending")).then_some(log)
        }
    })
    .await;
    let outcome = |channel: &str| {
        detail
            .iter()
            .find(|n| n["channel"] == channel)
            .map(|n| n["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(outcome("primary").as_deref(), Some("expired"));
    assert_eq!(outcome("backup").as_deref(), Some("delivered"));
    // the failure shows in the runtime summary too
    let summary = wait_until("alerting in the summary", Duration::from_secs(20), || {
        let url = format!("{base}/api/v1/summary");
        async move {
            let s = get_json(url).await;
            (s["domains"]["telemesh.alerting"]["status"] == "fail").then_some(s)
        }
    })
    .await;
    let block = &summary["domains"]["telemesh.alerting"]["snapshot"];
    assert!(
        block["summary"].as_str().unwrap().contains("primary"),
        "{block}"
    );
    aggregator.stop().await;
}

#[actix_rt::test]
async fn a_rolling_update_does_not_page_and_the_summary_shows_one_instance() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    let receiver = FakeReceiver::start();
    let mut settings = fast_outbox(vec![webhook("ops", &format!("{}/hook", receiver.url))]);
    settings.stale_channels = vec!["ops".into()];
    let (aggregator, publisher) = start(&db, settings, Arc::new(SystemClock)).await;
    let base = format!("http://{}", aggregator.http_addr);
    let beat = |instance: &str| {
        let mut s = snapshot(topics::INGEST_TRENDS, "ingest", instance, Grade::Ok);
        s.metric("interval_seconds", 0.5);
        s
    };
    // the old pod reports, the new pod starts, the old pod stops (stale after 1.5 s,
    // retired after 1 s of silence next to a newer instance)
    for _ in 0..4 {
        publisher.publish(&beat("old")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for _ in 0..16 {
        publisher.publish(&beat("new")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        receiver.received().is_empty(),
        "no page: {:?}",
        webhook_events(&receiver)
    );
    let all = get_json(format!("{base}/api/v1/alerts?state=all")).await;
    assert_eq!(all["count"], 0, "{all}");
    let summary = get_json(format!("{base}/api/v1/summary")).await;
    let sources: Vec<&str> = summary["domains"][topics::INGEST_TRENDS]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["instance"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["new"], "{summary}");

    // the new pod shuts down cleanly: its departed snapshot retires it, no staleness page
    let mut bye = beat("new");
    bye.metric(telemesh_alerting::engine::DEPARTED_METRIC, 1.0);
    publisher.publish(&bye).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        receiver.received().is_empty(),
        "{:?}",
        webhook_events(&receiver)
    );
    let summary = get_json(format!("{base}/api/v1/summary")).await;
    assert!(
        summary["domains"].get(topics::INGEST_TRENDS).is_none(),
        "{summary}"
    );
    aggregator.stop().await;
}

#[actix_rt::test]
async fn planted_secrets_never_leave_through_any_output_under_network_failures() {
    let env = TestEnv::get();
    let db = env.fresh_database(&namespace()).await;
    // every channel points at a closed port: every attempt is a network failure
    let closed = FakeReceiver::start();
    let addr = closed.addr().to_owned();
    closed.stop().await;
    let secrets = [
        "slack-secret-T0A1B2C3",
        "webhook-secret-Z9Y8X7",
        "webhook-query-secret-Q5",
        "ghp_github-secret-K4L5M6",
        "smtp-secret-P7Q8R9",
    ];
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let mut settings = fast_outbox(vec![
        ChannelSettings {
            kind: "slack".into(),
            ..webhook(
                "slack",
                &format!("http://{addr}/services/T0/B0/{}", secrets[0]),
            )
        },
        webhook(
            "hook",
            &format!("http://{addr}/hook/{}?token={}", secrets[1], secrets[2]),
        ),
        ChannelSettings {
            name: "github".into(),
            kind: "github".into(),
            api_url: format!("http://{addr}"),
            repo: "acme/ops".into(),
            token: Secret::new(secrets[3]),
            timeout_ms: 1_000,
            ..ChannelSettings::default()
        },
        ChannelSettings {
            name: "mail".into(),
            kind: "email".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: port,
            smtp_tls: "none".into(),
            from: "telemesh <telemesh@example.com>".into(),
            to: vec!["oncall@example.com".into()],
            username: "ops".into(),
            password: Secret::new(secrets[4]),
            timeout_ms: 1_000,
            ..ChannelSettings::default()
        },
    ]);
    settings.outbox_expire_seconds = 2.0;
    let (aggregator, publisher) = start(&db, settings, Arc::new(SystemClock)).await;
    let base = format!("http://{}", aggregator.http_addr);
    publish(&publisher, Grade::Fail, "rows dropped").await;
    wait_until("every channel expired", Duration::from_secs(30), || {
        let url = format!("{base}/api/v1/alerts/channels");
        async move {
            let c = get_json(url).await;
            let all = ["slack", "hook", "github", "mail"]
                .iter()
                .all(|n| c["channels"][n]["expired"].as_u64() == Some(1));
            all.then_some(())
        }
    })
    .await;
    let alerts = get_json(format!("{base}/api/v1/alerts")).await;
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let mut surfaces = Vec::new();
    for path in [
        "/api/v1/alerts".to_owned(),
        "/api/v1/alerts?state=all".to_owned(),
        format!("/api/v1/alerts/{id}"),
        "/api/v1/alerts/channels".to_owned(),
        "/api/v1/summary".to_owned(),
        "/api/v1/summary?format=markdown".to_owned(),
        "/metrics".to_owned(),
        "/health".to_owned(),
    ] {
        let body = reqwest::get(format!("{base}{path}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        surfaces.push((path, body));
    }
    let detail = &surfaces[2].1;
    assert!(
        detail.contains("request failed") || detail.contains("smtp"),
        "the failures are recorded (with their cause): {detail}"
    );
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(
        logs.contains("notification expired"),
        "the logs were captured"
    );
    surfaces.push(("logs".into(), logs));
    for (surface, text) in &surfaces {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret} leaked through {surface}: {}",
                &text[text.find(secret).unwrap().saturating_sub(200)..]
            );
        }
    }
    aggregator.stop().await;
}
