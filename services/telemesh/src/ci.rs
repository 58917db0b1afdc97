//! Owns `telemesh ci flakes`: the flake digest the plan's summariser printed (§9.1) —
//! sessions, failures, failing and flaky tests, the newest failures and the run history with
//! links — computed with the CI domain's own `flakes::detect` over the per-test history in the
//! journal database (the aggregator's `GET /api/v1/ci/tests` and `GET /api/v1/ci/runs`, paged),
//! as Markdown or JSON. Its gaps are fixed: the history comes from the journaled runs, and
//! xfails are not failures.

use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use telemesh_ci::flakes::{detect, FlakePolicy, TestUpload};
use telemesh_ci::github::PipelineRun;
use telemesh_ci::history::{runs_from_rows, uploads_from_rows, RunRow, TestRow};

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

/// Rows asked for per request (the aggregator's maximum) and the most pages read.
const PAGE: usize = 10_000;
const MAX_PAGES: usize = 100;

/// Builds the digest of the uploads and runs recorded in `[since, now]`.
pub fn digest(
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    uploads: &[TestUpload],
    runs: &[PipelineRun],
) -> Value {
    let policy = FlakePolicy {
        window: now - since,
        newest_failures: usize::MAX,
        ..FlakePolicy::default()
    };
    let found = detect(uploads, &policy, now);
    let mut failing: Vec<String> = found
        .newest_failures
        .iter()
        .map(|f| f.test_id.clone())
        .collect();
    failing.sort();
    failing.dedup();
    let newest: Vec<Value> = found
        .newest_failures
        .iter()
        .take(FlakePolicy::default().newest_failures)
        .map(|f| serde_json::to_value(f).unwrap_or_default())
        .collect();
    let mut ordered: Vec<&PipelineRun> = runs
        .iter()
        .filter(|r| r.completed_at.or(r.started_at).is_none_or(|t| t >= since))
        .collect();
    ordered.sort_by_key(|r| std::cmp::Reverse((r.completed_at, r.run_id, r.run_attempt)));
    let history: Vec<Value> = ordered
        .iter()
        .map(|r| {
            json!({
                "run_id": r.run_id,
                "run_number": r.run_number,
                "run_attempt": r.run_attempt,
                "workflow": r.workflow,
                "conclusion": r.conclusion.as_str(),
                "branch": r.branch,
                "commit": r.commit,
                "run_url": r.url,
                "completed_at": r.completed_at,
            })
        })
        .collect();
    json!({
        "since": since.to_rfc3339(),
        "generated_at": now.to_rfc3339(),
        "sessions": found.uploads,
        "cases": found.cases,
        "failure_count": found.failures,
        "failing_tests": failing,
        "flaky_tests": found.flaky,
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

/// Every row of a paged CI history endpoint since `at` (URL-encoded).
async fn all_rows<T: DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    at: &str,
) -> Result<Vec<T>, Failure> {
    let mut rows = Vec::new();
    for page in 0..MAX_PAGES {
        let answer = get_json(
            http,
            base,
            &format!("{path}?since={at}&limit={PAGE}&offset={}", page * PAGE),
        )
        .await?;
        let entries: Vec<T> = serde_json::from_value(answer["entries"].clone()).map_err(|e| {
            Failure::refused(format!(
                "{path} did not answer CI history rows ({e}); is --aggregator a telemesh aggregator of this version?"
            ))
        })?;
        let full = entries.len() >= PAGE;
        rows.extend(entries);
        if !full {
            break;
        }
    }
    Ok(rows)
}

/// `telemesh ci flakes`.
pub fn flakes(target: &Target, since: Option<&str>, format: &str) -> ExitCode {
    finish((|| {
        if !matches!(format, "markdown" | "json") {
            return Err(Failure::refused(format!(
                "--format {format:?}: use markdown or json"
            )));
        }
        let now = Utc::now();
        let since = parse_since(since.unwrap_or("7d"), now).map_err(Failure::refused)?;
        let base = base_url(target)?;
        let http = client()?;
        let at = urlencode(&since.to_rfc3339());
        let (tests, runs) = runtime()?.block_on(async {
            let tests: Vec<TestRow> = all_rows(&http, &base, "/api/v1/ci/tests", &at).await?;
            let runs: Vec<RunRow> = all_rows(&http, &base, "/api/v1/ci/runs", &at).await?;
            Ok::<_, Failure>((tests, runs))
        })?;
        let d = digest(
            since,
            now,
            &uploads_from_rows(&tests),
            &runs_from_rows(&runs),
        );
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
    use telemesh_ci::junit::{Outcome, ReportFormat, TestCase, TestReport};

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

    fn upload(id: &str, minutes: i64, commit: &str, cases: &[(&str, Outcome)]) -> TestUpload {
        TestUpload {
            upload_id: id.into(),
            recorded_at: t0() + Duration::minutes(minutes),
            commit: commit.into(),
            branch: Some("main".into()),
            run_id: Some(id.into()),
            run_url: Some(format!("https://gh/{id}")),
            suite: None,
            report: TestReport {
                format: ReportFormat::Junit,
                cases: cases
                    .iter()
                    .map(|(name, outcome)| TestCase {
                        test_id: (*name).into(),
                        outcome: *outcome,
                        duration_seconds: 0.1,
                        failure: outcome.is_failure().then(|| "boom".to_owned()),
                        retried_failures: 0,
                    })
                    .collect(),
            },
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn run(id: u64, conclusion: &str, minutes: i64) -> PipelineRun {
        serde_json::from_value(json!({
            "run_id": id, "workflow": "CI", "workflow_path": null, "run_number": id,
            "run_attempt": 1, "display_title": "t", "event": "push",
            "conclusion": conclusion, "branch": "main", "commit": "abc", "actor": null,
            "url": format!("https://gh/runs/{id}"), "repository": null, "repository_url": null,
            "started_at": null,
            "completed_at": (t0() + Duration::minutes(minutes)).to_rfc3339(),
        }))
        .expect("a run")
    }

    #[test]
    fn digest_finds_flakes_across_uploads_and_renders_hostile_text_safely() {
        let hostile = "a|b`c\u{1b}[31m";
        let uploads = [
            upload(
                "1",
                1,
                "abc",
                &[
                    ("t1", Outcome::Failed),
                    (hostile, Outcome::Failed),
                    ("x", Outcome::XFailed),
                ],
            ),
            upload(
                "2",
                2,
                "abc",
                &[
                    ("t1", Outcome::Passed),
                    (hostile, Outcome::Passed),
                    ("t2", Outcome::Failed),
                ],
            ),
            // before --since: not counted
            upload("0", -600, "old", &[("t9", Outcome::Failed)]),
        ];
        let runs = [
            run(2, "success", 3),
            run(1, "failure", 1),
            run(0, "failure", -600),
        ];
        let d = digest(t0(), t0() + Duration::hours(1), &uploads, &runs);
        assert_eq!(d["sessions"], 2);
        assert_eq!(d["failure_count"], 3, "xfail is not a failure: {d}");
        assert_eq!(d["failing_tests"], json!([hostile, "t1", "t2"]));
        let flaky: Vec<&str> = d["flaky_tests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["test_id"].as_str())
            .collect();
        assert_eq!(flaky, [hostile, "t1"]);
        assert_eq!(d["history"].as_array().map(Vec::len), Some(2), "{d}");
        let md = render_markdown(&d);
        assert!(
            md.contains("- #2: success on main (https://gh/runs/2)"),
            "{md}"
        );
        assert!(md.contains("- #1: failure on main"), "{md}");
        assert!(md.contains("a\\|b'c"), "{md}");
        assert!(!md.contains('\u{1b}'), "control characters removed: {md}");
        let empty = render_markdown(&digest(t0(), t0(), &[], &[]));
        assert!(
            empty.contains("No flaky tests") && empty.contains("No runs recorded"),
            "{empty}"
        );
    }
}
