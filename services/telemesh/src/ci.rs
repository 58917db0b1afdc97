//! Owns `telemesh ci flakes`: the flake digest the plan's summariser printed (§9.1) —
//! sessions, failures, failing and flaky tests, the newest failures and the main pipeline's
//! run history with links — read from the aggregator's journal API (`GET /api/v1/snapshots`
//! of `telemetry.ci.flakes` and `telemetry.ci.pipeline`), as Markdown or JSON. Its gaps are
//! fixed: the history comes from the journaled runs, and xfails are not failures.

use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::operator::{base_url, client, finish, get_json, runtime, urlencode, Failure, Target};

/// `telemesh ci …`.
#[derive(Debug, clap::Subcommand)]
pub enum CiCommand {
    /// The flake digest: sessions, failures, failing and flaky tests, run history with links.
    Flakes {
        #[command(flatten)]
        target: Target,
        /// RFC 3339 time or a span back from now (7d, 24h, 90m). Default: 7d.
        #[arg(long)]
        since: Option<String>,
        /// markdown or json.
        #[arg(long, default_value = "markdown")]
        format: String,
    },
}

/// Runs a `telemesh ci` subcommand.
pub fn run(command: &CiCommand) -> ExitCode {
    match command {
        CiCommand::Flakes {
            target,
            since,
            format,
        } => flakes(target, since.as_deref(), format),
    }
}

/// `--since`: RFC 3339, or a span back from now (`7d`, `24h`, `90m`).
pub fn parse_since(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let (digits, unit) = v.split_at(v.len().saturating_sub(1));
    let n: i64 = digits
        .parse()
        .ok()
        .filter(|n| (1..=36_500 * 24 * 60).contains(n))
        .ok_or_else(|| format!("--since {value:?}: use RFC 3339 or a span like 7d, 24h, 90m"))?;
    let span = match unit {
        "d" => Duration::days(n.min(36_500)),
        "h" => Duration::hours(n.min(36_500 * 24)),
        "m" => Duration::minutes(n),
        _ => {
            return Err(format!(
                "--since {value:?}: use RFC 3339 or a span like 7d, 24h, 90m"
            ))
        }
    };
    Ok(now - span)
}

fn component<'a>(snapshot: &'a Value, name: &str) -> Option<&'a Value> {
    snapshot["components"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

/// Builds the digest from the newest flakes snapshot and the pipeline snapshots (newest first).
pub fn digest(since: DateTime<Utc>, flakes: Option<&Value>, pipelines: &[Value]) -> Value {
    let metric = |name: &str| {
        flakes
            .and_then(|f| f["metrics"][name].as_f64())
            .unwrap_or(0.0) as u64
    };
    let flaky = flakes
        .and_then(|f| component(f, "flaky_tests"))
        .map(|c| c["details"]["flaky"].clone())
        .unwrap_or_else(|| json!([]));
    let newest = flakes
        .and_then(|f| component(f, "reports"))
        .map(|c| c["details"]["newest_failures"].clone())
        .unwrap_or_else(|| json!([]));
    let mut failing: Vec<String> = newest
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["test_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    failing.sort();
    failing.dedup();
    let mut history: Vec<Value> = Vec::new();
    for p in pipelines {
        let Some(main) = component(p, "main_pipeline") else {
            continue;
        };
        let d = &main["details"];
        let Some(run_id) = d["run_id"].as_i64() else {
            continue;
        };
        if history.iter().any(|h| h["run_id"] == run_id) {
            continue;
        }
        history.push(json!({
            "run_id": run_id,
            "run_number": d["run_number"],
            "conclusion": d["conclusion"],
            "branch": d["branch"],
            "run_url": d["run_url"],
            "completed_at": d["completed_at"],
        }));
    }
    json!({
        "since": since.to_rfc3339(),
        "generated_at": flakes.map_or(Value::Null, |f| f["generated_at"].clone()),
        "sessions": metric("uploads"),
        "failure_count": metric("failures"),
        "failing_tests": failing,
        "flaky_tests": flaky,
        "newest_failures": newest,
        "history": history,
    })
}

fn cell(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => "n/a".to_owned(),
        other => other.to_string(),
    };
    crate::operator::clean(&s).replace('|', "\\|")
}

/// The digest as Markdown.
pub fn render_markdown(d: &Value) -> String {
    let mut out = format!(
        "# CI flake digest since {}\n\n- Sessions (report uploads): {}\n- Failures: {}\n- Failing tests: {}\n",
        cell(&d["since"]),
        d["sessions"],
        d["failure_count"],
        d["failing_tests"].as_array().map_or(0, Vec::len)
    );
    for t in d["failing_tests"].as_array().into_iter().flatten() {
        out.push_str(&format!("  - `{}`\n", cell(t).replace('`', "'")));
    }
    out.push_str("\n## Flaky tests\n\n");
    match d["flaky_tests"].as_array().filter(|a| !a.is_empty()) {
        None => out.push_str("No flaky tests in the window.\n"),
        Some(list) => {
            out.push_str(
                "| Test | Why | Failures | Passes | Last run |\n| --- | --- | --- | --- | --- |\n",
            );
            for f in list {
                let why: Vec<String> = f["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(cell)
                    .collect();
                out.push_str(&format!(
                    "| `{}` | {} | {} | {} | {} |\n",
                    cell(&f["test_id"]).replace('`', "'"),
                    why.join("; "),
                    f["failures"],
                    f["passes"],
                    cell(&f["last_run_url"])
                ));
            }
        }
    }
    out.push_str("\n## History\n\n");
    match d["history"].as_array().filter(|a| !a.is_empty()) {
        None => out.push_str("No runs recorded in the window.\n"),
        Some(runs) => {
            for r in runs {
                out.push_str(&format!(
                    "- #{}: {} on {} ({})\n",
                    cell(&r["run_number"]),
                    cell(&r["conclusion"]),
                    cell(&r["branch"]),
                    cell(&r["run_url"])
                ));
            }
        }
    }
    out
}

/// `telemesh ci flakes`.
pub fn flakes(target: &Target, since: Option<&str>, format: &str) -> ExitCode {
    finish((|| {
        if !matches!(format, "markdown" | "json") {
            return Err(Failure::refused(format!(
                "--format {format:?}: use markdown or json"
            )));
        }
        let since = parse_since(since.unwrap_or("7d"), Utc::now()).map_err(Failure::refused)?;
        let base = base_url(target)?;
        let http = client()?;
        let at = urlencode(&since.to_rfc3339());
        let (flakes, pipelines) = runtime()?.block_on(async {
            let flakes = get_json(
                &http,
                &base,
                &format!("/api/v1/snapshots?kind=telemetry.ci.flakes&since={at}&limit=1"),
            )
            .await?;
            let pipelines = get_json(
                &http,
                &base,
                &format!("/api/v1/snapshots?kind=telemetry.ci.pipeline&since={at}&limit=1000"),
            )
            .await?;
            Ok::<_, Failure>((flakes, pipelines))
        })?;
        let newest = flakes["snapshots"]
            .as_array()
            .and_then(|a| a.first())
            .map(|s| &s["snapshot"]);
        let runs: Vec<Value> = pipelines["snapshots"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["snapshot"].clone())
            .collect();
        let d = digest(since, newest, &runs);
        if format == "json" {
            println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
        } else {
            print!("{}", render_markdown(&d));
        }
        Ok(())
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_or_a_span_and_refuses_the_rest() {
        let now =
            DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z").map(|t| t.with_timezone(&Utc));
        let now = now.unwrap_or_default();
        assert_eq!(parse_since("7d", now), Ok(now - Duration::days(7)));
        assert_eq!(parse_since("24h", now), Ok(now - Duration::hours(24)));
        assert_eq!(
            parse_since("2026-11-01T00:00:00Z", now).map(|t| t.to_rfc3339()),
            Ok("2026-11-01T00:00:00+00:00".into())
        );
        for bad in ["", "d", "0d", "-1d", "7w", "99999999999d", "yesterday"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_dedupes_runs_and_renders_hostile_text_safely() {
        let flakes = json!({
            "generated_at": "2026-11-30T00:00:00Z",
            "metrics": {"uploads": 2.0, "failures": 3.0},
            "components": [
                {"name": "flaky_tests", "details": {"flaky": [{"test_id": "a|b`c\u{1b}[31m", "reasons": ["failed then passed on commit abc"], "failures": 1, "passes": 1, "last_run_url": "https://ci/1"}]}},
                {"name": "reports", "details": {"newest_failures": [{"test_id": "t2"}, {"test_id": "t1"}, {"test_id": "t2"}]}}
            ]
        });
        let run = |id: i64, conclusion: &str| json!({"components": [{"name": "main_pipeline", "details": {"run_id": id, "run_number": id, "conclusion": conclusion, "branch": "main", "run_url": format!("https://gh/{id}")}}]});
        let pipelines = [
            run(2, "success"),
            run(2, "success"),
            run(1, "failure"),
            json!({"components": []}),
        ];
        let d = digest(Utc::now(), Some(&flakes), &pipelines);
        assert_eq!(d["sessions"], 2);
        assert_eq!(d["failure_count"], 3);
        assert_eq!(d["failing_tests"], json!(["t1", "t2"]));
        assert_eq!(d["history"].as_array().map(Vec::len), Some(2));
        let md = render_markdown(&d);
        assert!(md.contains("- #2: success on main (https://gh/2)"), "{md}");
        assert!(md.contains("- #1: failure on main"), "{md}");
        assert!(md.contains("a\\|b'c"), "{md}");
        assert!(!md.contains('\u{1b}'), "control characters removed: {md}");
        let empty = render_markdown(&digest(Utc::now(), None, &[]));
        assert!(
            empty.contains("No flaky tests") && empty.contains("No runs recorded"),
            "{empty}"
        );
    }
}
