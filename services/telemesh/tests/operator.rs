//! The operator commands of the built `telemesh` binary against a running aggregator (real
//! PostgreSQL journal, real snapshots): `summary` on a terminal (through `script`, a pty) and
//! piped, `summary --watch`, `tail` (lines and `--json`), `alerts` and `alerts ack`, `export`
//! with and without `--allow-missing`, and the documented exit codes.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use telemesh_aggregator::Aggregator;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Grade, Snapshot};
use telemesh_integration_tests::fixtures::{in_process_aggregator, snapshot, InProcessAggregator};
use telemesh_integration_tests::wait_until;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_telemesh");
const TOKEN: &str = "operator-token";
const WAIT: Duration = Duration::from_secs(20);

/// A command with no `TELEMESH` variables from the caller's environment.
fn telemesh() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("TELEMESH") || key == "NO_COLOR" {
            cmd.env_remove(key);
        }
    }
    cmd.kill_on_drop(true);
    cmd
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(args: &[&str]) -> Output {
    let out = telemesh()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run telemesh");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the binary on a pseudo-terminal (`script`), so stdout is a TTY.
async fn run_tty(args: &[&str]) -> Output {
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run script (util-linux) to give telemesh a terminal");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct Running {
    aggregator: Aggregator,
    publisher: SnapshotPublisher,
    url: String,
}

async fn start() -> Running {
    let InProcessAggregator {
        aggregator,
        publisher,
        url,
    } = in_process_aggregator(TOKEN).await;
    Running {
        aggregator,
        publisher,
        url,
    }
}

impl Running {
    async fn publish(&self, s: &Snapshot) {
        self.publisher.publish(s).await.expect("publish");
    }

    async fn api(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.url))
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    async fn wait_grade(&self, kind: &str, grade: &str) {
        wait_until(&format!("{kind} = {grade}"), WAIT, || async move {
            (self.api("/api/v1/summary").await["domains"][kind]["status"] == grade).then_some(())
        })
        .await;
    }
}

fn graded(kind: &str, grade: Grade, summary: &str) -> Snapshot {
    let mut s = snapshot(kind, "svc", "pod-1", grade);
    s.summary = summary.into();
    s
}

#[actix_rt::test]
async fn summary_is_coloured_on_a_terminal_and_plain_when_piped() {
    let r = start().await;
    r.publish(&graded(topics::KAFKA_READINESS, Grade::Ok, "brokers ready"))
        .await;
    r.publish(&graded(
        topics::RETENTION,
        Grade::Fail,
        "gap \x1b]0;owned\x07\x1b[2J here",
    ))
    .await;
    r.wait_grade(topics::RETENTION, "fail").await;

    let piped = run(&["summary", "--aggregator", &r.url]).await;
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(
        piped.stdout.starts_with("telemesh FAIL"),
        "{}",
        piped.stdout
    );
    assert!(!piped.stdout.contains('\x1b'), "no escapes when piped");
    assert!(
        piped.stdout.contains("gap  ]0;owned  [2J here"),
        "{}",
        piped.stdout
    );
    let fail_line = piped
        .stdout
        .find("telemetry.data_backbone.retention")
        .unwrap();
    assert!(fail_line < piped.stdout.find("telemetry.kafka.readiness").unwrap());

    let tty = run_tty(&["summary", "--aggregator", &r.url]).await;
    assert_eq!(tty.code, 0, "{}{}", tty.stdout, tty.stderr);
    assert!(tty.stdout.contains("\x1b[1;31mFAIL"), "{:?}", tty.stdout);
    assert!(tty.stdout.contains("\x1b[32mOK"), "{:?}", tty.stdout);
    // only our own colour codes: the snapshot's escapes were neutralised
    assert!(!tty.stdout.contains("\x1b]0;owned") && !tty.stdout.contains("\x1b[2J"));

    // --watch redraws until stopped
    let mut watch = telemesh()
        .args([
            "summary",
            "--watch",
            "--interval",
            "0.5",
            "--aggregator",
            &r.url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut renderings = 0;
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("telemesh FAIL") {
                renderings += 1;
                if renderings == 2 {
                    break;
                }
            }
        }
    })
    .await
    .expect("two renderings of --watch");
    watch.kill().await.unwrap();
    r.aggregator.stop().await;
}

#[actix_rt::test]
async fn exit_codes_say_unreachable_and_refused_apart() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = run(&["summary", "--aggregator", &closed]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot reach the aggregator"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--aggregator"), "{}", out.stderr);
    let out = run(&["summary", "--aggregator", "ftp://x"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let r = start().await;
    let out = run(&["export", "no-such-export", "--aggregator", &r.url]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("refused (404)"), "{}", out.stderr);
    let out = run(&["tail", "--kind", "<script>", "--aggregator", &r.url]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("unknown kind"), "{}", out.stderr);
    let out = run(&["alerts", "--state", "bogus", "--aggregator", &r.url]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    r.aggregator.stop().await;
}

#[actix_rt::test]
async fn export_refuses_missing_sections_unless_allowed_and_writes_a_file() {
    let r = start().await;
    // operational: the plan's four sections, only incident_response reported so far
    let sections = [
        (
            "professional_readiness",
            topics::PROFESSIONAL_READINESS,
            Grade::Ok,
        ),
        ("security", topics::SECURITY, Grade::Warn),
        ("incident_response", topics::INCIDENT_RESPONSE, Grade::Ok),
        ("system_validation", topics::SYSTEM_VALIDATION, Grade::Fail),
    ];
    r.publish(&graded(
        topics::INCIDENT_RESPONSE,
        Grade::Ok,
        "incident_response report",
    ))
    .await;
    r.wait_grade(topics::INCIDENT_RESPONSE, "ok").await;
    let out = run(&["export", "operational", "--aggregator", &r.url]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    for (section, kind, _) in &sections {
        let named = out.stderr.contains(section) && out.stderr.contains(kind);
        assert_eq!(named, *section != "incident_response", "{}", out.stderr);
    }
    assert!(out.stdout.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops.json");
    let out = run(&[
        "export",
        "operational",
        "--allow-missing",
        "--output",
        file.to_str().unwrap(),
        "--aggregator",
        &r.url,
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("missing sections"), "{}", out.stderr);
    let export: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        export["missing_sections"],
        serde_json::json!(["professional_readiness", "security", "system_validation"])
    );
    for (i, (section, kind, _)) in sections.iter().enumerate() {
        assert_eq!(export["rows"][i]["section"], *section);
        assert_eq!(export["rows"][i]["kind"], *kind);
    }
    assert_eq!(
        export["snapshots"]["incident_response"]["summary"],
        "incident_response report"
    );
    assert_eq!(export["rows"][0]["status_code"], 3);
    assert_eq!(export["rows"][2]["status_code"], 0);
    // a repeated --section collapses and narrows the export to what is there
    let out = run(&[
        "export",
        "operational",
        "--section",
        "incident_response",
        "--section",
        "incident_response",
        "--aggregator",
        &r.url,
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let export: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        export["sections_requested"],
        serde_json::json!(["incident_response"])
    );
    // every section reported: the complete export needs no --allow-missing
    for (section, kind, grade) in &sections {
        r.publish(&graded(kind, *grade, &format!("{section} report")))
            .await;
        r.wait_grade(kind, grade.as_str()).await;
    }
    let out = run(&["export", "operational", "--aggregator", &r.url]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let export: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(export["missing_sections"], serde_json::json!([]));
    assert_eq!(export["status"], "fail");
    for (i, (section, kind, grade)) in sections.iter().enumerate() {
        let block = &export["snapshots"][section];
        assert_eq!(block["kind"], *kind, "{section}");
        assert_eq!(block["status"], grade.as_str(), "{section}");
        assert_eq!(block["summary"], format!("{section} report"), "{section}");
        assert_eq!(export["rows"][i]["status"], grade.as_str(), "{section}");
    }
    // an extra section only by name
    let out = run(&[
        "export",
        "risk-compliance",
        "--section",
        "fix_pilot",
        "--aggregator",
        &r.url,
    ])
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains(topics::FIX_PILOT), "{}", out.stderr);
    r.aggregator.stop().await;
}

#[actix_rt::test]
async fn tail_follows_snapshots_live_and_alerts_can_be_acknowledged() {
    let r = start().await;
    let mut tail = telemesh()
        .args([
            "tail",
            "--kind",
            topics::INGEST_TRENDS,
            "--aggregator",
            &r.url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut json_tail = telemesh()
        .args(["tail", "--json", "--aggregator", &r.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for child in [&mut tail, &mut json_tail] {
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::time::timeout(WAIT, async {
            while let Some(line) = errors.next_line().await.unwrap() {
                if line.contains("following snapshots") {
                    break;
                }
            }
        })
        .await
        .expect("tail connects and says so");
    }
    let mut json_lines = BufReader::new(json_tail.stdout.take().unwrap()).lines();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    r.publish(&graded(
        topics::KAFKA_READINESS,
        Grade::Ok,
        "not for the kind filter",
    ))
    .await;
    let ingest = graded(topics::INGEST_TRENDS, Grade::Fail, "ingest stopped");
    r.publish(&ingest).await;
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a tail line")
        .unwrap()
        .unwrap();
    assert!(
        line.contains("FAIL")
            && line.contains(topics::INGEST_TRENDS)
            && line.contains("svc/pod-1 ")
            && line.ends_with("ingest stopped"),
        "{line}"
    );
    let seen = tokio::time::timeout(WAIT, async {
        while let Some(line) = json_lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == ingest.id.to_string() {
                return v;
            }
        }
        panic!("json tail ended")
    })
    .await
    .expect("the json tail sees the snapshot");
    assert_eq!(seen["summary"], "ingest stopped");
    tail.kill().await.unwrap();
    json_tail.kill().await.unwrap();

    // alerts: list, refuse a wrong token, acknowledge
    let id = wait_until("an open alert", WAIT, || async {
        let body = r.api("/api/v1/alerts").await;
        body["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["state"] == "firing")
            .and_then(|a| a["id"].as_str().map(str::to_owned))
    })
    .await;
    let out = run(&["alerts", "--aggregator", &r.url]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&id) && out.stdout.contains("ingest stopped"),
        "{}",
        out.stdout
    );
    let out = run(&[
        "alerts",
        "--aggregator",
        &r.url,
        "ack",
        &id,
        "--by",
        "bob",
        "--token",
        "wrong",
    ])
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("refused (403)"), "{}", out.stderr);
    let out = telemesh()
        .args(["alerts", "--aggregator", &r.url, "ack", &id, "--by", "bob"])
        .env("TELEMESH_API_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("acknowledged {id} by bob")));
    let alert = r.api(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(alert["alert"]["acknowledged_by"], "bob");
    let out = run(&["alerts", "--aggregator", &r.url]).await;
    assert!(out.stdout.contains("bob"), "{}", out.stdout);
    let out = run(&[
        "alerts",
        "--aggregator",
        &r.url,
        "resolve",
        "not-a-uuid",
        "--by",
        "bob",
        "--token",
        TOKEN,
    ])
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    r.aggregator.stop().await;
}
