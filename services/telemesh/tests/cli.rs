//! Black-box tests of the built `telemesh` binary: standalone starts with no Kafka and no
//! PostgreSQL and its summary answers; check-config prints redacted config and names bad keys.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_telemesh");

/// A command with no `TELEMESH__` variables from the caller's environment.
fn telemesh() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("TELEMESH__") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

#[test]
fn standalone_starts_without_kafka_or_postgres_and_the_summary_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = telemesh()
        .args([
            "standalone",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .env("TELEMESH__KAFKA_READINESS__INTERVAL_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let summary = loop {
        if let Some((200, body)) = http_get(port, "/api/v1/summary") {
            let json: serde_json::Value =
                serde_json::from_str(chunked_body(&body)).unwrap_or_default();
            if json["domains"]["telemetry.kafka.readiness"].is_object() {
                break json;
            }
        }
        assert!(
            Instant::now() < deadline,
            "standalone summary did not show kafka readiness in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let block = &summary["domains"]["telemetry.kafka.readiness"];
    assert_eq!(
        block["status"], "warn",
        "kafka not configured is warn, not fail: {block}"
    );
    assert!(
        block["snapshot"]["summary"]
            .as_str()
            .unwrap()
            .contains("not configured"),
        "{block}"
    );
    assert!(block["age_seconds"].as_f64().is_some());
    let (status, _) = http_get(port, "/health/ready").unwrap();
    assert_eq!(status, 200);
    assert!(
        dir.path().join("telemesh.db").exists(),
        "the SQLite journal lives in --data-dir"
    );
}

/// Strips HTTP/1.1 chunked framing if present (actix-web answers JSON with a length, but be safe).
fn chunked_body(body: &str) -> &str {
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |i| i + 1);
    &body[start..end]
}

#[test]
fn check_config_prints_effective_config_with_secrets_redacted() {
    let out = telemesh()
        .arg("check-config")
        .env("TELEMESH__KAFKA__PASSWORD", "hunter2")
        .env(
            "TELEMESH__JOURNAL__URL",
            "postgres://u:hunter2@db:5432/telemesh",
        )
        .env("TELEMESH__INGEST__API_TOKEN", "hunter2")
        .env("TELEMESH__INCIDENT_RESPONSE__API_TOKEN", "hunter2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(
        stdout.contains("postgres://u:***@db:5432/telemesh"),
        "{stdout}"
    );
    assert!(stdout.contains("[kafka_readiness]"), "{stdout}");
    assert_eq!(
        stdout.matches("api_token = \"<redacted>\"").count(),
        2,
        "the ingest and incident-response tokens: {stdout}"
    );
}

#[test]
fn check_config_names_the_bad_key_and_exits_2() {
    for (key, value, expect) in [
        (
            "TELEMESH__KAFKA_READINESS__WARN_LAG_MESSAGES",
            "lots",
            "kafka_readiness.warn_lag_messages",
        ),
        ("TELEMESH__HTTP__PORTT", "1", "portt"),
        (
            "TELEMESH__AGGREGATOR__BATCH_SIZE",
            "0",
            "aggregator.batch_size",
        ),
        // one key per section's `Section::validate`, each with a hostile value
        (
            "TELEMESH__KAFKA_READINESS__WARN_STALE_SECONDS",
            "-inf",
            "invalid config key `kafka_readiness.warn_stale_seconds`",
        ),
        (
            "TELEMESH__INGEST__RUNS_TABLE",
            "runs; DROP TABLE x",
            "invalid config key `ingest.runs_table`",
        ),
        (
            "TELEMESH__INCIDENT_RESPONSE__AGGREGATOR_URL",
            "https://",
            "invalid config key `incident_response.aggregator_url`",
        ),
        (
            "TELEMESH__FIX_PILOT__INTERVAL_SECONDS",
            "0",
            "invalid config key `fix_pilot.interval_seconds`",
        ),
        (
            "TELEMESH__ALERTING__TIMEZONE",
            "Mars/Olympus",
            "invalid config key `alerting.timezone`",
        ),
        (
            "TELEMESH__JOURNAL__READ_TIMEOUT_MS",
            "1",
            "invalid config key `journal.read_timeout_ms`",
        ),
        (
            "TELEMESH__TRACING__SAMPLE_RATIO",
            "NaN",
            "invalid config key `tracing.sample_ratio`",
        ),
        (
            "TELEMESH__KAFKA__SECURITY_PROTOCOL",
            "carrier-pigeon",
            "invalid config key `kafka.security_protocol`",
        ),
        (
            "TELEMESH__HTTP__ADDR",
            "localhost",
            "override it with TELEMESH__HTTP__ADDR",
        ),
        (
            "TELEMESH__STANDALONE__CHANNEL_CAPACITY",
            "0",
            "invalid config key `standalone.channel_capacity`",
        ),
        (
            "TELEMESH__CI__REPORTS_DIR",
            "/",
            "invalid config key `ci.reports_dir`",
        ),
    ] {
        let out = telemesh()
            .arg("check-config")
            .env(key, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{key}: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[kafka]\nencoding = \"xml\"\n").unwrap();
    let out = telemesh()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kafka.encoding"));
}

/// Runs `telemesh <args> --http <free port> --data-dir <temp dir>` in that temp dir with no
/// configuration; stopped when the guard drops.
fn run_local(args: &[&str]) -> (tempfile::TempDir, u16, Running) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = telemesh()
        .current_dir(dir.path())
        .args(args)
        .args(["--http", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (dir, port, Running(child))
}

/// Every domain's kinds, as `standalone` publishes them with no configuration.
const EVERY_DOMAIN: [(&str, &str); 7] = [
    ("telemetry.kafka.readiness", "kafka-readiness"),
    ("telemetry.ingest.trends", "ingest"),
    ("telemetry.data_backbone.retention", "ingest"),
    (
        "telemetry.operational.incident_response",
        "incident-response",
    ),
    ("telemetry.execution.fix_pilot", "fix-pilot"),
    ("telemetry.execution.dropcopy", "fix-pilot"),
    (
        "telemetry.operational.system_validation",
        "system-validation",
    ),
];

#[test]
fn standalone_with_no_configuration_shows_every_domain_and_names_what_to_set() {
    let (_dir, port, _guard) = run_local(&["standalone"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let summary = loop {
        if let Some((200, body)) = http_get(port, "/api/v1/summary") {
            let json: serde_json::Value =
                serde_json::from_str(chunked_body(&body)).unwrap_or_default();
            if EVERY_DOMAIN
                .iter()
                .all(|(kind, _)| json["domains"][kind].is_object())
            {
                break json;
            }
        }
        assert!(
            Instant::now() < deadline,
            "standalone summary did not show every domain in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for (kind, service) in EVERY_DOMAIN {
        let block = &summary["domains"][kind];
        assert_eq!(block["snapshot"]["source"]["service"], service, "{block}");
        assert!(
            ["ok", "warn", "fail"].contains(&block["status"].as_str().unwrap_or_default()),
            "{block}"
        );
    }
    // the unconfigured domains say which setting to set
    for (kind, setting) in [
        ("telemetry.ingest.trends", "ingest.source_url"),
        ("telemetry.data_backbone.retention", "ingest.source_url"),
        ("telemetry.execution.fix_pilot", "fix_pilot.trading.port"),
        ("telemetry.execution.dropcopy", "fix_pilot.trading.port"),
        (
            "telemetry.operational.system_validation",
            "system_validation.report_path",
        ),
        // a laptop has no platform cache: warn, not a page
        ("telemetry.cache.health", "cache_health.url"),
    ] {
        let block = &summary["domains"][kind];
        assert_eq!(block["status"], "warn", "{block}");
        let text = block["snapshot"]["summary"].as_str().unwrap_or_default();
        assert!(text.contains(setting), "{kind}: {text}");
    }
    // incident response runs: it grades its inputs rather than saying it is not configured
    let incident = &summary["domains"]["telemetry.operational.incident_response"];
    let text = incident["snapshot"]["summary"].as_str().unwrap_or_default();
    assert!(!text.starts_with("not configured"), "{incident}");
}

/// The status of the `demo/demo` source of `kind` in a summary, if listed.
fn demo_status(summary: &serde_json::Value, kind: &str) -> Option<String> {
    summary["domains"][kind]["sources"]
        .as_array()?
        .iter()
        .find(|s| s["service"] == "demo" && s["instance"] == "demo")
        .and_then(|s| s["status"].as_str())
        .map(str::to_owned)
}

#[test]
fn demo_shows_a_failure_and_its_recovery_and_the_alert_log_has_the_page_and_its_resolution() {
    let (dir, port, _guard) = run_local(&["demo", "--step-seconds", "1.5"]);
    let kind = "telemetry.ingest.trends";
    // the demo source of a kind goes through fail, then back to ok
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(seen.iter().any(|s| s == "fail")
        && seen.iter().skip_while(|s| *s != "fail").any(|s| s == "ok"))
    {
        assert!(
            Instant::now() < deadline,
            "no failure and recovery of the demo source in time; seen {seen:?}"
        );
        if let Some((200, body)) = http_get(port, "/api/v1/summary") {
            let json: serde_json::Value =
                serde_json::from_str(chunked_body(&body)).unwrap_or_default();
            if let Some(status) = demo_status(&json, kind) {
                if seen.last() != Some(&status) {
                    seen.push(status);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // the alert log has the page and its resolution for the demo source
    let log = dir.path().join("alerts.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let events: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|e: &serde_json::Value| {
                e["alert"]["kind"] == kind && e["alert"]["service"] == "demo"
            })
            .collect();
        let opened = events.iter().any(|e| e["event"] == "open");
        let resolved = events
            .iter()
            .any(|e| e["event"] == "resolve" && e["status"] == "resolved");
        if opened && resolved {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no page and resolution of {kind} in {}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
