//! Owns the texts of the CI-failure alert (DOMAINS.md §8.2): when the alert is about the main
//! pipeline of `telemetry.ci.pipeline`, the GitHub channel keeps one issue titled
//! "CI failure alerts" (label `ci-alert`, created when missing) with the plan's "CI failure
//! detected" bullets, comments "CI recovered" and closes it on the first success, and Slack
//! gets the plan's message (status emoji by conclusion, run, branch, actor, links to the run
//! and to the alert issue). Pure rendering from the alert's `context` (the component details
//! the CI domain publishes); the lifecycle stays the engine's.

use serde_json::{json, Map, Value};

use crate::channels::Notification;
use crate::engine::Event;

/// The kind whose main-pipeline alert is rendered here.
pub const KIND: &str = "telemetry.ci.pipeline";
/// The component of that kind that pages.
pub const COMPONENT: &str = "main_pipeline";
/// The one issue's title.
pub const ISSUE_TITLE: &str = "CI failure alerts";
/// The issue's label, and how it is created when missing.
pub const LABEL: &str = "ci-alert";
pub const LABEL_COLOR: &str = "B60205";
pub const LABEL_DESCRIPTION: &str = "Failures of the main CI pipeline (opened by telemesh)";

/// Whether `n` is the CI-failure alert (the snapshot as a whole or its main-pipeline component).
pub fn applies(n: &Notification) -> bool {
    n.alert.kind == KIND && n.alert.component.as_deref().is_none_or(|c| c == COMPONENT)
}

fn field(ctx: &Map<String, Value>, key: &str) -> String {
    match ctx.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "n/a".to_owned(),
    }
}

/// The "CI failure detected" body (comment on append; the issue's first body).
pub fn failure_body(ctx: &Map<String, Value>) -> String {
    format!(
        "### CI failure detected\n\n- **Workflow:** {}\n- **Run number:** {}\n- **Conclusion:** {}\n- **Branch:** {}\n- **Commit:** {}\n- **Actor:** {}\n- **Run:** {}\n",
        field(ctx, "workflow"),
        field(ctx, "run_number"),
        field(ctx, "conclusion"),
        field(ctx, "branch"),
        field(ctx, "commit"),
        field(ctx, "actor"),
        field(ctx, "run_url"),
    )
}

/// The body of a newly opened issue.
pub fn issue_body(ctx: &Map<String, Value>) -> String {
    format!(
        "{}\nThis issue collects failures of the main CI pipeline; telemesh comments each further failure here and closes it once CI is healthy again.\n",
        failure_body(ctx)
    )
}

/// The "CI recovered" comment posted before the issue is closed.
pub fn recovery_comment(ctx: &Map<String, Value>) -> String {
    format!(
        "### CI recovered\n\n- **Workflow:** {}\n- **Run number:** {}\n- **Branch:** {}\n- **Commit:** {}\n- **Run:** {}\n\nThe main pipeline succeeded again; closing this issue.\n",
        field(ctx, "workflow"),
        field(ctx, "run_number"),
        field(ctx, "branch"),
        field(ctx, "commit"),
        field(ctx, "run_url"),
    )
}

/// The GitHub issue search for the open alert issue of `repository_url`
/// (`https://github.com/owner/repo`), as the plan's Slack message links it.
pub fn issue_search_url(ctx: &Map<String, Value>) -> Option<String> {
    let repo = ctx.get("repository_url")?.as_str()?.trim_end_matches('/');
    Some(format!(
        "{repo}/issues?q=is%3Aissue+is%3Aopen+in%3Atitle+%22CI+failure+alerts%22"
    ))
}

/// Escapes Slack's control characters in text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The plan's Slack message (`{"text": …}`); on resolve, a "CI recovered" line with the run.
pub fn slack_payload(n: &Notification) -> Value {
    let ctx = &n.alert.context;
    let conclusion = field(ctx, "conclusion");
    let run_url = field(ctx, "run_url");
    let title = match ctx.get("display_title").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => t.to_owned(),
        _ => format!("{} #{}", field(ctx, "workflow"), field(ctx, "run_number")),
    };
    let mut links = format!("<{}|View run>", slack_escape(&run_url));
    if let Some(search) = issue_search_url(ctx) {
        links.push_str(&format!(
            " · <{}|CI failure alerts issue>",
            slack_escape(&search)
        ));
    }
    let text = if n.event == Event::Resolve {
        format!(
            ":white_check_mark: *CI recovered: {}*\nRun #{} ({})\n*Branch:* {}\n{links}",
            slack_escape(&title),
            field(ctx, "run_number"),
            slack_escape(&field(ctx, "event")),
            slack_escape(&field(ctx, "branch")),
        )
    } else {
        let emoji = match conclusion.as_str() {
            "cancelled" => ":warning:",
            "timed_out" => ":hourglass_flowing_sand:",
            _ => ":rotating_light:",
        };
        // A reminder (no new run since the last page) must not read as a new failure.
        let (emoji, still) = match n.event {
            Event::Repeat => (":repeat:", "Still failing: "),
            _ => (emoji, ""),
        };
        format!(
            "{emoji} *{still}{}*\nRun #{} ({})\n*Conclusion:* {}\n*Branch:* {}\n*Actor:* {}\n{links}",
            slack_escape(&title),
            field(ctx, "run_number"),
            slack_escape(&field(ctx, "event")),
            slack_escape(&conclusion),
            slack_escape(&field(ctx, "branch")),
            slack_escape(&field(ctx, "actor")),
        )
    };
    json!({ "text": text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(conclusion: &str) -> Map<String, Value> {
        let v = json!({
            "workflow": "CI", "display_title": "fix: <script> & co", "run_number": 42,
            "conclusion": conclusion, "branch": "main", "commit": "abc123", "actor": "",
            "event": "push", "run_url": "https://github.com/o/r/actions/runs/9",
            "repository_url": "https://github.com/o/r"
        });
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn failure_body_has_the_plan_bullets_and_na_for_missing_values() {
        let body = failure_body(&ctx("failure"));
        for line in [
            "### CI failure detected",
            "- **Workflow:** CI",
            "- **Run number:** 42",
            "- **Conclusion:** failure",
            "- **Branch:** main",
            "- **Commit:** abc123",
            "- **Actor:** n/a",
            "- **Run:** https://github.com/o/r/actions/runs/9",
        ] {
            assert!(body.contains(line), "{line} in {body}");
        }
        assert!(failure_body(&Map::new()).contains("- **Workflow:** n/a"));
        assert!(issue_body(&ctx("failure")).contains("closes it once CI is healthy"));
        assert!(recovery_comment(&ctx("success")).starts_with("### CI recovered"));
    }

    #[test]
    fn issue_search_link() {
        assert_eq!(
            issue_search_url(&ctx("failure")).as_deref(),
            Some("https://github.com/o/r/issues?q=is%3Aissue+is%3Aopen+in%3Atitle+%22CI+failure+alerts%22")
        );
        assert_eq!(issue_search_url(&Map::new()), None);
    }
}
