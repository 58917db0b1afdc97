//! `telemesh alert drill` end to end: the built binary fires a test alert through Slack, webhook
//! and GitHub receivers (local sockets), resolves it, prints each answer and records the drill.

use std::time::Duration;

use telemesh_integration_tests::fake_http::FakeReceiver;

#[actix_rt::test]
async fn the_drill_opens_and_resolves_through_every_channel_and_is_recorded() {
    let slack = FakeReceiver::start();
    let webhook = FakeReceiver::start();
    let github = FakeReceiver::start();
    let record = FakeReceiver::start();
    webhook.fail_next(&[(503, None)]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("telemesh.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[alerting]
drill_record_url = "{record}/api/v1/activities"
drill_record_token = "drill-record-token"

[[alerting.channels]]
name = "ops-slack"
type = "slack"
url_env = "DRILL_SLACK_URL"

[[alerting.channels]]
name = "ops-webhook"
type = "webhook"
url = "{webhook}/hook"

[[alerting.channels]]
name = "ops-github"
type = "github"
api_url = "{github}"
repo = "acme/ops"
token_env = "DRILL_GITHUB_TOKEN"
"#,
            record = record.url,
            webhook = webhook.url,
            github = github.url
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_telemesh"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TELEMESH__") {
            cmd.env_remove(key);
        }
    }
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        cmd.args(["alert", "drill", "--config"])
            .arg(&config)
            .env("DRILL_SLACK_URL", format!("{}/services/T/B/X", slack.url))
            .env("DRILL_GITHUB_TOKEN", "drill-token")
            .output(),
    )
    .await
    .expect("drill finished in time")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("alert drill passed"), "{stdout}");
    assert!(stdout.contains("opened issue #1"), "{stdout}");
    assert!(
        stdout.contains("2 attempt(s)"),
        "the webhook's 503 was retried: {stdout}"
    );
    assert!(!stdout.contains("drill-token"), "secrets never print");

    let events = |r: &FakeReceiver| {
        r.received()
            .iter()
            .map(|x| x.body["event"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        events(&webhook),
        ["open", "open", "resolve"],
        "503 then the retried open, then the resolve"
    );
    assert!(webhook.received()[1].body["drill"].as_bool().unwrap());
    assert_eq!(slack.received().len(), 2);
    assert!(slack.received()[0].body["text"]
        .as_str()
        .unwrap()
        .contains("[DRILL]"));
    let gh: Vec<(String, String)> = github
        .received()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        gh[0],
        ("POST".to_owned(), "/repos/acme/ops/issues".to_owned())
    );
    assert!(
        gh.contains(&("PATCH".to_owned(), "/repos/acme/ops/issues/1".to_owned())),
        "{gh:?}"
    );
    let recorded = record.received();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].body["kind"], "drill");
    assert_eq!(recorded[0].path, "/api/v1/activities");
    assert_eq!(
        recorded[0].authorization.as_deref(),
        Some("Bearer drill-record-token")
    );
}

#[actix_rt::test]
async fn drill_output_never_shows_a_secret_when_the_network_fails() {
    // a port that refuses connections: every channel fails with a network error
    let closed = FakeReceiver::start();
    let addr = closed.url.clone();
    closed.stop().await;
    let secrets = [
        "slack-secret-D1R2L3",
        "webhook-secret-W4X5",
        "ghp_drill-secret-G6H7",
    ];
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("telemesh.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[alerting.channels]]
name = "ops-slack"
type = "slack"
url = "{addr}/services/T/B/{slack}"
max_attempts = 1

[[alerting.channels]]
name = "ops-webhook"
type = "webhook"
url_env = "DRILL_WEBHOOK_URL"
max_attempts = 1

[[alerting.channels]]
name = "ops-github"
type = "github"
api_url = "{addr}"
repo = "acme/ops"
token = "{token}"
max_attempts = 1
"#,
            slack = secrets[0],
            token = secrets[2],
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_telemesh"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TELEMESH__") {
            cmd.env_remove(key);
        }
    }
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        cmd.args(["alert", "drill", "--config"])
            .arg(&config)
            .env(
                "DRILL_WEBHOOK_URL",
                format!("{addr}/hook?key={}", secrets[1]),
            )
            .output(),
    )
    .await
    .expect("drill finished in time")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a broken paging path fails the drill"
    );
    assert!(stdout.contains("FAILED request failed"), "{stdout}");
    for secret in secrets {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked:\n{stdout}\n{stderr}"
        );
    }
}
