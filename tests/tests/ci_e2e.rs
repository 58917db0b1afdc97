//! The CI-failure alert end to end: the real CI domain (`telemesh_service::start`, its webhook
//! on a real port, secret set) receives GitHub's published `workflow_run` example (octokit's,
//! `tests/fixtures/ci/github`; only `conclusion`, `id` and `run_number` changed) signed with
//! HMAC-SHA256; its `telemetry.ci.pipeline` snapshots flow over real Kafka to a real aggregator
//! journaling in real PostgreSQL with alerting on; the GitHub and Slack channels point at local
//! HTTP servers standing in for the GitHub API and Slack. Every request they receive is counted:
//! a failure opens exactly one "CI failure alerts" issue (label created) and one Slack message,
//! a second failing run comments on the same issue, a replayed delivery does nothing, the next
//! success comments "CI recovered" and closes it. A second test drives a `Repeat` (still
//! failing, no new run) through the real channels: a reminder on Slack, nothing on GitHub, and
//! never a second issue.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use telemesh_aggregator::{subscribed_topics, Aggregator, AlertingParts, TransportParts};
use telemesh_alerting::actor::SystemClock;
use telemesh_alerting::channels::{slack_payload, Channel, MemoryIssueBook};
use telemesh_alerting::engine::{AlertEngine, Event, Rule, Target};
use telemesh_alerting::{AlertingSettings, ChannelSettings, RuleSettings};
use telemesh_ci::domain::CiDomain;
use telemesh_ci::evaluate::{pipeline, CiPolicy};
use telemesh_ci::github::parse_workflow_run_event;
use telemesh_ci::settings::CiSettings;
use telemesh_ci::webhook::signature_header;
use telemesh_core::config::Secret;
use telemesh_core::transport::kafka::{KafkaPublisher, KafkaSubscriber};
use telemesh_core::transport::Publisher;
use telemesh_core::{Encoding, Grade, Source};
use telemesh_integration_tests::fake_http::{FakeReceiver, Received};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, create_topics, kafka_publisher, pg_journal,
};
use telemesh_integration_tests::{namespace, notifications_of, wait_until, TestEnv};
use telemesh_service::ServiceOptions;

const SECRET: &str = "e2e-webhook-secret";
const REPO: &str = "octo-org/octo-repo";

/// octokit's completed `workflow_run` example with this conclusion, run id and number.
fn example(conclusion: &str, run_id: u64, run_number: u64) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ci/github/workflow_run.completed.success.payload.json");
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("json");
    v["workflow_run"]["conclusion"] = conclusion.into();
    v["workflow_run"]["id"] = run_id.into();
    v["workflow_run"]["run_number"] = run_number.into();
    serde_json::to_vec(&v).expect("json")
}

/// Posts a signed delivery to the CI domain's webhook; returns (status, body).
async fn deliver(
    client: &reqwest::Client,
    base: &str,
    body: &[u8],
    delivery: &str,
    signature: Option<String>,
) -> (u16, Value) {
    let signature = signature.unwrap_or_else(|| signature_header(SECRET.as_bytes(), body));
    let response = client
        .post(format!("{base}/api/v1/ci/github"))
        .header("x-github-event", "workflow_run")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("deliver");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn alerting(github: &FakeReceiver, slack: &FakeReceiver) -> AlertingSettings {
    AlertingSettings {
        api_token: Secret::new("alert-token"),
        group_wait_seconds: 0.2,
        group_interval_seconds: 0.0,
        tick_ms: 50,
        rules: vec![RuleSettings {
            name: "ci-main-pipeline".into(),
            kinds: vec!["telemetry.ci.pipeline".into()],
            target: "components".into(),
            components: vec!["main_pipeline".into()],
            grade: Grade::Fail,
            channels: vec!["github".into(), "slack".into()],
            suppress_seconds: 0,
        }],
        channels: vec![
            ChannelSettings {
                name: "github".into(),
                kind: "github".into(),
                api_url: github.url.clone(),
                repo: REPO.into(),
                token: Secret::new("gh-token"),
                max_attempts: 4,
                ..ChannelSettings::default()
            },
            ChannelSettings {
                name: "slack".into(),
                kind: "slack".into(),
                url: Secret::new(slack.url.clone()),
                max_attempts: 4,
                ..ChannelSettings::default()
            },
        ],
        ..AlertingSettings::default()
    }
}

async fn wait_for(receiver: &FakeReceiver, what: &str, n: usize) -> Vec<Received> {
    wait_until(what, Duration::from_secs(60), || {
        let got = receiver.received();
        async move { (got.len() >= n).then_some(got) }
    })
    .await
}

fn shape(received: &[Received]) -> Vec<(String, String)> {
    received
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect()
}

fn texts(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.body["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[actix_rt::test]
async fn webhook_to_kafka_to_aggregator_opens_appends_and_closes_one_ci_issue() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 1).await;
    let db = env.fresh_database(&ns).await;
    let github = FakeReceiver::start();
    let slack = FakeReceiver::start();

    // The aggregator: Kafka in, PostgreSQL journal, alerting on.
    let subscriber = KafkaSubscriber::new(&kafka, &subscribed_topics(&kafka.topic_prefix))
        .expect("kafka subscriber");
    let transport: Arc<dyn Publisher> =
        Arc::new(KafkaPublisher::new(&kafka).expect("kafka publisher"));
    let aggregator = Aggregator::start_with(
        &aggregator_settings(),
        "127.0.0.1:0",
        &kafka.topic_prefix,
        pg_journal(&db).await,
        TransportParts::kafka(subscriber, Arc::clone(&transport)),
        Some(AlertingParts {
            settings: alerting(&github, &slack),
            env: HashMap::new(),
            clock: Arc::new(SystemClock),
        }),
    )
    .await
    .expect("start aggregator");

    // The CI domain, publishing to the same Kafka namespace.
    let ci = telemesh_service::start(
        CiDomain::new(CiSettings {
            interval_seconds: 3600,
            main_workflow: "test".into(),
            webhook_secret: Secret::new(SECRET),
            ..CiSettings::default()
        }),
        ServiceOptions {
            instance: "ci-e2e".into(),
            publisher: kafka_publisher(&kafka, Encoding::Json),
            http_addr: Some("127.0.0.1:0".into()),
        },
    )
    .expect("start ci domain");
    let base = format!("http://{}", ci.http_addr().expect("ci http"));
    let client = reqwest::Client::new();

    // The CI domain's first snapshot ("no completed run yet", warn) is journaled: the
    // aggregator consumes the namespace before the first failure is sent.
    let api = format!("http://{}", aggregator.http_addr);
    wait_until(
        "the first telemetry.ci.pipeline journaled",
        Duration::from_secs(60),
        || {
            let client = client.clone();
            let url = format!("{api}/api/v1/snapshots?kind=telemetry.ci.pipeline");
            async move {
                let body: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
                let rows = body.as_array().or_else(|| body["snapshots"].as_array())?;
                (!rows.is_empty()).then_some(())
            }
        },
    )
    .await;

    // A bad signature is refused before anything is parsed.
    let failure = example("failure", 1001, 163);
    let (status, _) = deliver(
        &client,
        &base,
        &failure,
        "d-0",
        Some(signature_header(b"wrong-secret", &failure)),
    )
    .await;
    assert_eq!(status, 401);

    // 1. failure → one issue (the label lookup answers 404: the label is created) + one Slack.
    github.fail_next(&[(404, None)]);
    let (status, body) = deliver(&client, &base, &failure, "d-1", None).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("recorded")));
    let opened = wait_for(&github, "the CI issue opened", 4).await;
    let sent = wait_for(&slack, "the first Slack message", 1).await;
    assert_eq!(
        shape(&opened),
        [
            ("GET".into(), format!("/repos/{REPO}/labels/ci-alert")),
            ("POST".into(), format!("/repos/{REPO}/labels")),
            ("GET".into(), format!("/repos/{REPO}/issues")),
            ("POST".into(), format!("/repos/{REPO}/issues")),
        ]
    );
    assert_eq!(opened[1].body["name"], "ci-alert");
    let issue = &opened[3].body;
    assert_eq!(issue["title"], "CI failure alerts");
    assert!(issue["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .any(|l| l == "ci-alert"));
    let issue_body = issue["body"].as_str().expect("issue body");
    for bullet in [
        "### CI failure detected",
        "- **Workflow:** test",
        "- **Run number:** 163",
        "- **Conclusion:** failure",
        "- **Branch:** master",
        "- **Commit:** 3484a3fb816e0859fd6e1cea078d76385ff50625",
        "- **Actor:** Codertocat",
        "- **Run:** https://github.com/octo-org/octo-repo/actions/runs/289782451",
    ] {
        assert!(issue_body.contains(bullet), "{bullet} in {issue_body}");
    }
    let first = &texts(&sent)[0];
    assert!(
        first.starts_with(
            ":rotating_light: *ci(action): update actions/setup-node digest to 8c91899*"
        ),
        "{first}"
    );
    for part in [
        "Run #163 (repository_dispatch)",
        "*Conclusion:* failure",
        "*Branch:* master",
        "*Actor:* Codertocat",
        "<https://github.com/octo-org/octo-repo/actions/runs/289782451|View run>",
        "<https://github.com/octo-org/octo-repo/issues?q=is%3Aissue+is%3Aopen+in%3Atitle+%22CI+failure+alerts%22|CI failure alerts issue>",
    ] {
        assert!(first.contains(part), "{part} in {first}");
    }

    // 2. a second failing run (timed out) → a comment on the same issue, no second issue.
    let (status, _) = deliver(
        &client,
        &base,
        &example("timed_out", 1002, 164),
        "d-2",
        None,
    )
    .await;
    assert_eq!(status, 202);
    let appended = wait_for(&github, "the failure comment", 6).await;
    let sent = wait_for(&slack, "the second Slack message", 2).await;
    assert_eq!(
        shape(&appended[4..]),
        [
            ("GET".into(), format!("/repos/{REPO}/labels/ci-alert")),
            ("POST".into(), format!("/repos/{REPO}/issues/1/comments")),
        ]
    );
    let comment = appended[5].body["body"].as_str().expect("comment");
    assert!(
        comment.starts_with("### CI failure detected")
            && comment.contains("- **Run number:** 164")
            && comment.contains("- **Conclusion:** timed_out"),
        "{comment}"
    );
    assert!(
        texts(&sent)[1].starts_with(":hourglass_flowing_sand:"),
        "{}",
        texts(&sent)[1]
    );

    // 3. a replayed delivery (same X-GitHub-Delivery) is ignored; the same run redelivered
    //    under a new id changes nothing either.
    let (status, body) = deliver(
        &client,
        &base,
        &example("timed_out", 1002, 164),
        "d-2",
        None,
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("replayed")));
    let (status, _) = deliver(
        &client,
        &base,
        &example("timed_out", 1002, 164),
        "d-2b",
        None,
    )
    .await;
    assert_eq!(status, 202);

    // 4. success → "CI recovered" on the same issue, then closed; Slack says so.
    let (status, _) = deliver(&client, &base, &example("success", 1003, 165), "d-3", None).await;
    assert_eq!(status, 202);
    let closed = wait_for(&github, "the recovery", 8).await;
    wait_for(&slack, "the recovery on Slack", 3).await;
    assert_eq!(
        shape(&closed[6..]),
        [
            ("POST".into(), format!("/repos/{REPO}/issues/1/comments")),
            ("PATCH".into(), format!("/repos/{REPO}/issues/1")),
        ]
    );
    let recovered = closed[6].body["body"].as_str().expect("recovery comment");
    assert!(
        recovered.starts_with("### CI recovered") && recovered.contains("- **Run number:** 165"),
        "{recovered}"
    );
    assert_eq!(closed[7].body["state"], "closed");

    // The alert is resolved in the journal.
    let alerts: Value = client
        .get(format!("{api}/api/v1/alerts?state=resolved"))
        .send()
        .await
        .expect("alerts")
        .json()
        .await
        .expect("alerts json");
    let alerts = alerts
        .as_array()
        .or_else(|| alerts["alerts"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "telemetry.ci.pipeline");

    // Exactly once: stop both (the outbox has nothing left to retry) and count every request.
    ci.stop(false).await;
    aggregator.stop().await;
    let github_calls = github.received();
    let slack_calls = slack.received();
    assert_eq!(github_calls.len(), 8, "{:?}", shape(&github_calls));
    assert_eq!(
        github_calls
            .iter()
            .filter(|r| r.method == "POST" && r.path == format!("/repos/{REPO}/issues"))
            .count(),
        1,
        "one issue"
    );
    assert!(github_calls
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer gh-token")));
    let slack_texts = texts(&slack_calls);
    assert_eq!(slack_texts.len(), 3, "{slack_texts:?}");
    assert!(
        slack_texts[2].starts_with(":white_check_mark: *CI recovered"),
        "{}",
        slack_texts[2]
    );
}

#[actix_rt::test]
async fn a_repeat_while_still_failing_reminds_on_slack_and_never_opens_a_second_issue() {
    let github = FakeReceiver::start();
    let slack = FakeReceiver::start();
    let settings = alerting(&github, &slack);
    let env = HashMap::new();
    let channel = |name: &str| {
        let s = settings
            .channels
            .iter()
            .find(|c| c.name == name)
            .expect("channel");
        Channel::from_settings(s, &env).expect("channel")
    };
    let (gh, sl) = (channel("github"), channel("slack"));
    let mut policy = settings.policy(3.0, 60.0).expect("policy");
    policy.rules = vec![Rule {
        name: "ci".into(),
        kinds: vec!["telemetry.ci.pipeline".into()],
        target: Target::Components(vec!["main_pipeline".into()]),
        grade: Grade::Fail,
        channels: vec!["github".into(), "slack".into()],
        suppress: chrono::Duration::zero(),
    }];
    policy.group_wait = chrono::Duration::zero();
    policy.repeat_interval = chrono::Duration::minutes(30);
    let mut engine = AlertEngine::new(policy);
    let run = parse_workflow_run_event(&example("failure", 7, 170))
        .expect("parses")
        .expect("completed");
    let at = chrono::Utc::now();
    let graded = |when| {
        pipeline(
            &CiPolicy {
                main_workflow: "test".into(),
                ..CiPolicy::default()
            },
            std::slice::from_ref(&run),
            Source::new("ci", "ci-0"),
            when,
        )
    };
    let mut actions = engine.observe(&graded(at), at);
    actions.extend(engine.tick(at + chrono::Duration::seconds(1)));
    let open = notifications_of(actions);
    assert_eq!(
        open.iter().map(|n| n.event.clone()).collect::<Vec<_>>(),
        [Event::Open]
    );
    // Still failing, unchanged, after repeat_interval: a Repeat.
    let later = at + chrono::Duration::minutes(31);
    // the same run graded again (the domain re-publishes each interval)
    let mut actions = engine.observe(&graded(later), later);
    actions.extend(engine.tick(later));
    let repeat = notifications_of(actions);
    assert_eq!(
        repeat.iter().map(|n| n.event.clone()).collect::<Vec<_>>(),
        [Event::Repeat]
    );

    // The issue was closed by hand (the issue book knows none, GitHub lists no open one): the
    // reminder must not open a new issue.
    let client = reqwest::Client::new();
    let book = MemoryIssueBook::default();
    gh.send(&client, &repeat[0], &book)
        .await
        .expect("github repeat");
    sl.send(&client, &repeat[0], &book)
        .await
        .expect("slack repeat");
    let calls = shape(&github.received());
    assert!(
        calls.iter().all(|(method, _)| method == "GET"),
        "a repeat only looks for the open issue: {calls:?}"
    );
    // Slack gets a reminder that does not read as a new failure.
    let text = slack_payload(&repeat[0])["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.starts_with(":repeat: *Still failing: ci(action): update actions/setup-node"),
        "{text}"
    );
    assert_eq!(texts(&slack.received()), [text]);

    // With the issue known, the repeat does not touch GitHub at all.
    let before = github.received().len();
    gh.send(&client, &open[0], &book)
        .await
        .expect("github open");
    let after_open = github.received().len();
    assert!(
        github.received()[before..]
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/issues")),
        "the open creates the issue"
    );
    gh.send(&client, &repeat[0], &book)
        .await
        .expect("github repeat");
    assert_eq!(
        github.received().len(),
        after_open,
        "the repeat sent nothing"
    );
}
