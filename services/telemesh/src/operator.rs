//! Owns the operator commands that talk to a running aggregator over its HTTP API:
//! `telemesh summary [--watch]`, `telemesh tail`, `telemesh alerts [ack|resolve ID]` and
//! `telemesh export NAME`. Colour only when stdout is a terminal (and `NO_COLOR` is unset);
//! every string from a snapshot is stripped of control characters before it reaches the
//! terminal.
//!
//! Exit codes: 0 done; 1 the aggregator could not be reached or failed (5xx); 2 the request
//! was refused (bad input, unknown alert, wrong token) or an export misses sections.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

/// Where the aggregator is.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Base URL of the aggregator's HTTP API [default: http://<[http] addr of the config>].
    #[arg(long, value_name = "URL", env = "TELEMESH_AGGREGATOR_URL")]
    pub aggregator: Option<String>,
    /// TOML configuration file, for the default aggregator address.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `telemesh alerts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Acknowledge an open alert (you own it; escalation stops).
    Ack(Change),
    /// Resolve an open alert.
    Resolve(Change),
}

/// Who changes which alert.
#[derive(Debug, Args)]
pub struct Change {
    /// Alert id (from `telemesh alerts`).
    pub id: String,
    /// Who acts (recorded on the alert).
    #[arg(long, env = "USER")]
    pub by: String,
    #[arg(long)]
    pub note: Option<String>,
    /// The aggregator's `[alerting] api_token`.
    #[arg(long, env = "TELEMESH_API_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// A failed command: what to print and which exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn unreachable(e: impl std::fmt::Display) -> Self {
        Self {
            code: 1,
            message: e.to_string(),
        }
    }

    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::unreachable(format!("{e:#}"))
    }
}

pub(crate) fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("telemesh: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The base URL: `--aggregator`, else the configuration's `[http] addr`.
pub(crate) fn base_url(target: &Target) -> Result<String, Failure> {
    let url = match &target.aggregator {
        Some(url) => url.clone(),
        None => {
            let cfg = crate::config::TelemeshConfig::load(
                target.config.as_deref(),
                &telemesh_core::config::process_env(),
            )
            .map_err(|e| Failure::refused(e.to_string()))?;
            format!("http://{}", cfg.http.addr)
        }
    };
    let url = url.trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Failure::refused(format!(
            "--aggregator {url:?} is not an http(s) URL; use e.g. http://127.0.0.1:8080"
        )));
    }
    Ok(url)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::unreachable(format!("cannot start the async runtime: {e}")))
}

pub(crate) fn client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(Failure::unreachable)
}

/// GET `path` as JSON; 4xx → refused (code 2) with the API's detail, else unreachable.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    base: &str,
    path: &str,
) -> Result<Value, Failure> {
    let response = http
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| not_reached(base, e))?;
    answer(response).await
}

fn not_reached(base: &str, e: reqwest::Error) -> Failure {
    Failure::unreachable(format!(
        "cannot reach the aggregator at {base} ({e}); is it running? pass --aggregator URL"
    ))
}

async fn answer(response: reqwest::Response) -> Result<Value, Failure> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let detail = body["detail"].as_str().unwrap_or("no detail").to_owned();
    if status.is_client_error() {
        Err(Failure {
            code: 2,
            message: format!("refused ({}): {detail}", status.as_u16()),
        })
    } else {
        Err(Failure::unreachable(format!(
            "the aggregator failed ({}): {detail}; try again or check its /health",
            status.as_u16()
        )))
    }
}

/// Text from the API with control characters (terminal escapes, newlines) replaced.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// How to print: colour or not.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub fn for_stdout() -> Self {
        Self {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// A grade word, padded to 4, coloured on a terminal.
    pub fn grade(self, grade: &str) -> String {
        let word = format!("{:<4}", clean(grade).to_uppercase());
        if !self.colour {
            return word;
        }
        let code = match grade {
            "ok" => "32",
            "warn" => "33",
            "fail" => "1;31",
            _ => "2",
        };
        format!("\x1b[{code}m{word}\x1b[0m")
    }
}

fn age(seconds: Option<f64>) -> String {
    match seconds {
        None => "never".into(),
        Some(a) if a < 120.0 => format!("{a:.0}s"),
        Some(a) if a < 7200.0 => format!("{:.0}m", a / 60.0),
        Some(a) => format!("{:.1}h", a / 3600.0),
    }
}

/// Renders `/api/v1/summary` for a terminal.
pub fn render_summary(summary: &Value, style: Style) -> String {
    let mut out = format!(
        "telemesh {}  {}  (as of {})\n\n",
        style.grade(summary["status"].as_str().unwrap_or("?")),
        clean(summary["headline"].as_str().unwrap_or("")),
        clean(summary["generated_at"].as_str().unwrap_or(""))
    );
    let mut domains: Vec<(&String, &Value)> = summary["domains"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    let rank = |v: &Value| match v["status"].as_str() {
        Some("fail") => 0,
        Some("warn") => 1,
        _ => 2,
    };
    domains.sort_by(|a, b| rank(a.1).cmp(&rank(b.1)).then(a.0.cmp(b.0)));
    let width = domains
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(6)
        .max(6);
    out.push_str(&format!(
        "{:<4}  {:<width$}  {:>6}  {:<5}  SUMMARY\n",
        "", "DOMAIN", "AGE", "STALE"
    ));
    for (kind, d) in domains {
        let summary = d["snapshot"]["summary"]
            .as_str()
            .unwrap_or("no snapshot received yet");
        out.push_str(&format!(
            "{}  {:<width$}  {:>6}  {:<5}  {}\n",
            style.grade(d["status"].as_str().unwrap_or("?")),
            clean(kind),
            age(d["age_seconds"].as_f64()),
            if d["stale"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
            clean(summary)
        ));
    }
    out
}

/// `telemesh summary [--watch]`.
pub fn summary(target: &Target, watch: bool, interval: f64) -> ExitCode {
    finish((|| {
        let base = base_url(target)?;
        let http = client()?;
        let style = Style::for_stdout();
        runtime()?.block_on(async {
            let every = Duration::from_secs_f64(interval.clamp(0.5, 3600.0));
            loop {
                match get_json(&http, &base, "/api/v1/summary").await {
                    Ok(summary) => {
                        let mut out = std::io::stdout().lock();
                        if watch && style.colour {
                            let _ = write!(out, "\x1b[H\x1b[2J");
                        }
                        let _ = write!(out, "{}", render_summary(&summary, style));
                        if watch && !style.colour {
                            let _ = writeln!(out);
                        }
                        let _ = out.flush();
                    }
                    Err(f) if watch && f.code == 1 => {
                        eprintln!("telemesh: {}; retrying in {:.0}s", f.message, interval);
                    }
                    Err(f) => return Err(f),
                }
                if !watch {
                    return Ok(());
                }
                tokio::time::sleep(every).await;
            }
        })
    })())
}

/// One snapshot as one line.
pub fn tail_line(s: &Value, style: Style) -> String {
    format!(
        "{}  {}  {}  {}/{}  {}",
        clean(s["generated_at"].as_str().unwrap_or("")),
        style.grade(s["status"].as_str().unwrap_or("?")),
        clean(s["kind"].as_str().unwrap_or("")),
        clean(s["source"]["service"].as_str().unwrap_or("")),
        clean(s["source"]["instance"].as_str().unwrap_or("")),
        clean(s["summary"].as_str().unwrap_or(""))
    )
}

/// Takes the complete events off the front of `buffer` (bytes, so a character split between
/// two chunks stays whole); returns the `data` of each `snapshot` event.
pub fn drain_events(buffer: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
        let bytes: Vec<u8> = buffer.drain(..end + 2).collect();
        let event = String::from_utf8_lossy(&bytes);
        let mut name = "message";
        let mut data = Vec::new();
        for line in event.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = if v.trim() == "snapshot" {
                    "snapshot"
                } else {
                    "other"
                };
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if name == "snapshot" && !data.is_empty() {
            out.push(data.join("\n"));
        }
    }
    out
}

/// `telemesh tail`: follows `/api/v1/stream`, reconnecting when the connection drops.
pub fn tail(target: &Target, kind: Option<&str>, service: Option<&str>, json: bool) -> ExitCode {
    finish((|| {
        let base = base_url(target)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(Failure::unreachable)?;
        let style = Style::for_stdout();
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(k) = kind {
            query.push(("kind", k));
        }
        if let Some(s) = service {
            query.push(("service", s));
        }
        runtime()?.block_on(async {
            loop {
                let response = http
                    .get(format!("{base}/api/v1/stream"))
                    .query(&query)
                    .send()
                    .await;
                let mut response = match response {
                    Ok(r) if r.status().is_success() => r,
                    Ok(r) => {
                        answer(r).await?;
                        return Err(Failure::unreachable("unexpected answer"));
                    }
                    Err(e) => {
                        eprintln!(
                            "telemesh: cannot reach {base} ({e}); retrying in 2s (Ctrl-C stops)"
                        );
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        continue;
                    }
                };
                eprintln!("telemesh: following snapshots from {base} (Ctrl-C stops)");
                let mut buffer: Vec<u8> = Vec::new();
                while let Ok(Some(bytes)) = response.chunk().await {
                    buffer.extend_from_slice(&bytes);
                    for data in drain_events(&mut buffer) {
                        let Ok(snapshot) = serde_json::from_str::<Value>(&data) else {
                            continue;
                        };
                        let line = if json {
                            snapshot.to_string()
                        } else {
                            tail_line(&snapshot, style)
                        };
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                            return Ok(()); // stdout closed (e.g. `| head`)
                        }
                    }
                    if buffer.len() > 16 * 1024 * 1024 {
                        buffer.clear();
                    }
                }
                eprintln!("telemesh: connection to {base} lost; reconnecting in 2s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    })())
}

/// Renders `/api/v1/alerts` as a table.
pub fn render_alerts(body: &Value, style: Style) -> String {
    let alerts = body["alerts"].as_array().cloned().unwrap_or_default();
    if alerts.is_empty() {
        return "no open alerts\n".into();
    }
    let mut out = String::from("ID                                    GRADE  STATE     OWNER         KIND / SERVICE  SUMMARY\n");
    for a in alerts {
        let state = a["state"].as_str().unwrap_or("?");
        let owner = a["acknowledged_by"].as_str().unwrap_or("-");
        out.push_str(&format!(
            "{:<36}  {}   {:<8}  {:<12}  {} / {}  {}\n",
            clean(a["id"].as_str().unwrap_or("")),
            style.grade(a["grade"].as_str().unwrap_or("?")),
            clean(state),
            clean(owner),
            clean(a["kind"].as_str().unwrap_or("")),
            clean(a["service"].as_str().unwrap_or("")),
            clean(a["summary"].as_str().unwrap_or(""))
        ));
    }
    out
}

/// `telemesh alerts [--state S]` and `telemesh alerts ack|resolve ID`.
pub fn alerts(target: &Target, state: &str, action: Option<&AlertsAction>) -> ExitCode {
    finish((|| {
        let base = base_url(target)?;
        let http = client()?;
        let style = Style::for_stdout();
        runtime()?.block_on(async {
            let Some(action) = action else {
                let body = get_json(
                    &http,
                    &base,
                    &format!("/api/v1/alerts?state={}", urlencode(state)),
                )
                .await?;
                print!("{}", render_alerts(&body, style));
                return Ok(());
            };
            let (verb, change) = match action {
                AlertsAction::Ack(c) => ("ack", c),
                AlertsAction::Resolve(c) => ("resolve", c),
            };
            let mut body = serde_json::json!({ "by": change.by });
            if let Some(note) = &change.note {
                body["note"] = Value::String(note.clone());
            }
            let response = http
                .post(format!(
                    "{base}/api/v1/alerts/{}/{verb}",
                    urlencode(&change.id)
                ))
                .bearer_auth(&change.token)
                .json(&body)
                .timeout(Duration::from_secs(15))
                .send()
                .await
                .map_err(|e| not_reached(&base, e))?;
            let alert = answer(response).await?;
            println!(
                "{} {} by {}",
                if verb == "ack" {
                    "acknowledged"
                } else {
                    "resolved"
                },
                clean(alert["id"].as_str().unwrap_or(&change.id)),
                clean(&change.by)
            );
            Ok(())
        })
    })())
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `telemesh export NAME`.
pub fn export(
    target: &Target,
    name: &str,
    sections: &[String],
    allow_missing: bool,
    output: Option<&PathBuf>,
) -> ExitCode {
    finish((|| {
        let base = base_url(target)?;
        let http = client()?;
        let mut path = format!(
            "/api/v1/export/{}?allow_missing={allow_missing}",
            urlencode(name)
        );
        for s in sections {
            path.push_str(&format!("&section={}", urlencode(s)));
        }
        let payload = runtime()?.block_on(async {
            let response = http
                .get(format!("{base}{path}"))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|e| not_reached(&base, e))?;
            if response.status().as_u16() == 409 {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                return Err(Failure::refused(format!(
                    "the {name} export misses sections {} (kinds {}): wait for their services to report, or pass --allow-missing",
                    body["missing_sections"],
                    body["missing_kinds"]
                )));
            }
            answer(response).await
        })?;
        if let Some(missing) = payload["missing_sections"]
            .as_array()
            .filter(|m| !m.is_empty())
        {
            eprintln!(
                "telemesh: warning: missing sections {} (exported as unknown)",
                Value::Array(missing.clone())
            );
        }
        let text = serde_json::to_string_pretty(&payload).context("encode the export")?;
        match output {
            Some(file) => {
                std::fs::write(file, format!("{text}\n")).map_err(|e| {
                    Failure::refused(format!("cannot write {}: {e}", file.display()))
                })?;
                eprintln!("telemesh: wrote the {name} export to {}", file.display());
            }
            None => println!("{text}"),
        }
        Ok(())
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn terminal_escapes_from_snapshots_are_neutralised() {
        assert_eq!(clean("a\x1b[31mred\nb\r"), "a [31mred b ");
        let plain = Style { colour: false };
        let line = tail_line(
            &json!({"generated_at": "t", "status": "fail", "kind": "k",
                    "source": {"service": "s\x07", "instance": "i"}, "summary": "x\x1b]0;pwn\x07"}),
            plain,
        );
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        assert_eq!(line, "t  FAIL  k  s /i  x ]0;pwn ");
    }

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(Style { colour: false }.grade("warn"), "WARN");
        assert_eq!(Style { colour: true }.grade("ok"), "\x1b[32mOK  \x1b[0m");
    }

    #[test]
    fn events_are_taken_whole_from_the_stream() {
        let mut buffer = b"retry: 2000\n: connected\n\nevent: snapshot\nid: 1\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: snap".to_vec();
        assert_eq!(drain_events(&mut buffer), vec!["{\"a\":1}".to_string()]);
        assert_eq!(buffer, b"event: snap");
        // a character split across two chunks
        let text = "shot\ndata: {\"s\":\"é\"}\n\nevent: lagged\ndata: 3\n\n".as_bytes();
        let split = text.iter().position(|b| *b >= 0x80).unwrap() + 1;
        buffer.extend_from_slice(&text[..split]);
        assert!(drain_events(&mut buffer).is_empty());
        buffer.extend_from_slice(&text[split..]);
        assert_eq!(drain_events(&mut buffer), vec!["{\"s\":\"é\"}".to_string()]);
        assert!(buffer.is_empty());
    }

    #[test]
    fn summaries_list_worst_first() {
        let text = render_summary(
            &json!({"status": "fail", "headline": "h", "generated_at": "t", "domains": {
                "a.ok": {"status": "ok", "age_seconds": 3.0, "stale": false, "snapshot": {"summary": "fine"}},
                "b.fail": {"status": "fail", "age_seconds": null, "stale": true, "snapshot": null}
            }}),
            Style { colour: false },
        );
        assert!(
            text.find("b.fail").unwrap() < text.find("a.ok").unwrap(),
            "{text}"
        );
        assert!(text.contains("no snapshot received yet"));
        assert!(text.starts_with("telemesh FAIL  h"));
    }

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(urlencode("../x y"), "..%2Fx%20y");
    }
}
