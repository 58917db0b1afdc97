//! The CI-failure alert end to end without a database: `telemetry.ci.pipeline` snapshots graded
//! by the CI domain from GitHub's published `workflow_run` example (conclusion changed in
//! memory), through the alerting engine's fingerprint lifecycle, delivered by the real GitHub
//! and Slack channels to local HTTP servers standing in for the GitHub API and Slack: one
//! "CI failure alerts" issue opened (label `ci-alert` created when missing), appended,
//! commented "CI recovered" and closed; Slack gets the plan's message.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use telemesh_alerting::channels::{Channel, MemoryIssueBook};
use telemesh_alerting::engine::{AlertEngine, Event, Rule, Target};
use telemesh_alerting::{AlertPolicy, AlertingSettings, ChannelSettings};
use telemesh_ci::evaluate::{pipeline, CiPolicy};
use telemesh_ci::github::{parse_workflow_run_event, PipelineRun};
use telemesh_core::config::Secret;
use telemesh_core::{Grade, Snapshot, Source};
use telemesh_integration_tests::fake_http::FakeReceiver;
use telemesh_integration_tests::notifications_of;

fn example_run(conclusion: &str, run_id: u64, run_number: u64, actor: Option<&str>) -> PipelineRun {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ci/github/workflow_run.completed.success.payload.json");
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("json");
    v["workflow_run"]["conclusion"] = conclusion.into();
    v["workflow_run"]["id"] = run_id.into();
    v["workflow_run"]["run_number"] = run_number.into();
    v["workflow_run"]["updated_at"] = Utc::now().to_rfc3339().into();
    if actor.is_none() {
        v["workflow_run"]["actor"] = Value::Null;
        v["workflow_run"]["triggering_actor"] = Value::Null;
    }
    let body = serde_json::to_vec(&v).expect("json");
    parse_workflow_run_event(&body)
        .expect("parses")
        .expect("completed")
}

fn graded(runs: &[PipelineRun], at: DateTime<Utc>) -> Snapshot {
    let policy = CiPolicy {
        main_workflow: "test".into(),
        ..CiPolicy::default()
    };
    pipeline(&policy, runs, Source::new("ci", "ci-0"), at)
}

fn policy() -> AlertPolicy {
    let mut policy = AlertingSettings::default()
        .policy(3.0, 60.0)
        .expect("default policy");
    policy.rules = vec![Rule {
        name: "ci".into(),
        kinds: vec!["telemetry.ci.pipeline".into()],
        target: Target::Components(vec!["main_pipeline".into()]),
        grade: Grade::Fail,
        channels: vec!["github".into(), "slack".into()],
        suppress: Duration::zero(),
    }];
    policy.group_wait = Duration::zero();
    policy.group_interval = Duration::zero();
    policy
}

#[actix_rt::test]
async fn failure_opens_appends_and_success_closes_one_ci_issue_with_the_plan_texts() {
    let github = FakeReceiver::start();
    let slack = FakeReceiver::start();
    let env = HashMap::new();
    let gh_channel = Channel::from_settings(
        &ChannelSettings {
            name: "github".into(),
            kind: "github".into(),
            api_url: github.url.clone(),
            repo: "octo-org/octo-repo".into(),
            token: Secret::new("gh-token"),
            ..ChannelSettings::default()
        },
        &env,
    )
    .expect("github channel");
    let slack_channel = Channel::from_settings(
        &ChannelSettings {
            name: "slack".into(),
            kind: "slack".into(),
            url: Secret::new(slack.url.clone()),
            ..ChannelSettings::default()
        },
        &env,
    )
    .expect("slack channel");
    let client = reqwest::Client::new();
    let book = MemoryIssueBook::default();
    let mut engine = AlertEngine::new(policy());
    let t0 = Utc::now();

    // The label lookup answers 404: the channel creates `ci-alert` before the issue.
    github.fail_next(&[(404, None)]);
    let mut runs = vec![example_run("failure", 1, 163, Some("Codertocat"))];
    let mut sent = Vec::new();
    let steps: Vec<(&str, u64, u64, Option<&str>)> = vec![
        ("timed_out", 2, 164, None),
        ("success", 3, 165, Some("Codertocat")),
    ];
    let mut at = t0;
    let mut first = engine.observe(&graded(&runs, at), at);
    first.extend(engine.tick(at + Duration::seconds(1)));
    let mut pages = notifications_of(first);
    for (conclusion, id, number, actor) in steps {
        for n in pages.drain(..) {
            sent.push(n.event.clone());
            gh_channel
                .send(&client, &n, &book)
                .await
                .expect("github send");
            slack_channel
                .send(&client, &n, &book)
                .await
                .expect("slack send");
        }
        at += Duration::minutes(10);
        runs.push(example_run(conclusion, id, number, actor));
        let mut a = engine.observe(&graded(&runs, at), at);
        a.extend(engine.tick(at + Duration::seconds(1)));
        pages = notifications_of(a);
    }
    for n in pages.drain(..) {
        sent.push(n.event.clone());
        gh_channel
            .send(&client, &n, &book)
            .await
            .expect("github send");
        slack_channel
            .send(&client, &n, &book)
            .await
            .expect("slack send");
    }
    assert_eq!(sent, [Event::Open, Event::Append, Event::Resolve]);

    let calls: Vec<(String, String, Value)> = github
        .received()
        .into_iter()
        .map(|r| (r.method, r.path, r.body))
        .collect();
    let shape: Vec<(&str, &str)> = calls
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            // open: the label (404 → created), the open issues (none titled "CI failure alerts"), the issue
            ("GET", "/repos/octo-org/octo-repo/labels/ci-alert"),
            ("POST", "/repos/octo-org/octo-repo/labels"),
            ("GET", "/repos/octo-org/octo-repo/issues"),
            ("POST", "/repos/octo-org/octo-repo/issues"),
            // append: the label (exists now), a comment on the same issue
            ("GET", "/repos/octo-org/octo-repo/labels/ci-alert"),
            ("POST", "/repos/octo-org/octo-repo/issues/1/comments"),
            // success: "CI recovered", then closed
            ("POST", "/repos/octo-org/octo-repo/issues/1/comments"),
            ("PATCH", "/repos/octo-org/octo-repo/issues/1"),
        ]
    );
    assert_eq!(calls[1].2["name"], "ci-alert");
    assert_eq!(calls[1].2["color"], "B60205");
    let issue = &calls[3].2;
    assert_eq!(issue["title"], "CI failure alerts");
    assert!(issue["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .any(|l| l == "ci-alert"));
    let body = issue["body"].as_str().expect("body");
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
        assert!(body.contains(bullet), "{bullet} in {body}");
    }
    let append = calls[5].2["body"].as_str().expect("comment");
    assert!(
        append.contains("- **Run number:** 164") && append.contains("- **Conclusion:** timed_out"),
        "{append}"
    );
    assert!(append.contains("- **Actor:** n/a"), "{append}");
    let recovered = calls[6].2["body"].as_str().expect("comment");
    assert!(
        recovered.starts_with("### CI recovered") && recovered.contains("- **Run number:** 165"),
        "{recovered}"
    );
    assert_eq!(calls[7].2["state"], "closed");
    assert!(github
        .received()
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer gh-token")));

    // Slack: the plan's message per failure (emoji by conclusion), then the recovery.
    let texts: Vec<String> = slack
        .received()
        .iter()
        .map(|r| r.body["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts[0].starts_with(
            ":rotating_light: *ci(action): update actions/setup-node digest to 8c91899*"
        ),
        "{}",
        texts[0]
    );
    assert!(texts[0].contains("Run #163 (repository_dispatch)"));
    assert!(
        texts[0].contains("*Conclusion:* failure")
            && texts[0].contains("*Branch:* master")
            && texts[0].contains("*Actor:* Codertocat")
    );
    assert!(texts[0]
        .contains("<https://github.com/octo-org/octo-repo/actions/runs/289782451|View run>"));
    assert!(texts[0].contains("<https://github.com/octo-org/octo-repo/issues?q=is%3Aissue+is%3Aopen+in%3Atitle+%22CI+failure+alerts%22|CI failure alerts issue>"));
    assert!(
        texts[1].starts_with(":hourglass_flowing_sand:"),
        "{}",
        texts[1]
    );
    assert!(
        texts[2].starts_with(":white_check_mark: *CI recovered"),
        "{}",
        texts[2]
    );
}

#[actix_rt::test]
async fn other_conclusions_do_nothing_and_cancelled_gets_the_warning_emoji() {
    let mut engine = AlertEngine::new(policy());
    let at = Utc::now();
    let skipped = graded(&[example_run("skipped", 1, 1, Some("a"))], at);
    let mut actions = engine.observe(&skipped, at);
    actions.extend(engine.tick(at + Duration::seconds(1)));
    assert!(
        notifications_of(actions).is_empty(),
        "skipped opens nothing"
    );

    let cancelled = graded(
        &[example_run("cancelled", 2, 2, Some("a"))],
        at + Duration::seconds(2),
    );
    let mut actions = engine.observe(&cancelled, at + Duration::seconds(2));
    actions.extend(engine.tick(at + Duration::seconds(3)));
    let pages = notifications_of(actions);
    assert_eq!(pages.len(), 1);
    let text = telemesh_alerting::channels::slack_payload(&pages[0]);
    assert!(
        text["text"]
            .as_str()
            .is_some_and(|t| t.starts_with(":warning:")),
        "{text}"
    );
}
