//! Owns the grading of system validation: pure functions from the settings and a
//! [`ValidationState`] to a `telemetry.operational.system_validation` [`Snapshot`]
//! (DOMAINS.md §3.10.2–3.10.3, on the ok/warn/fail scale: `pass` is `ok`). No I/O, no clock.
//!
//! Fixed flaws: a missing report is graded (`warn`), not silently skipped; a report without a
//! readable timestamp is aged from when it arrived, not from "now" (it turns stale like any
//! other); reliability judges real history (earlier reports this process graded), not just
//! the current one; status strings are parsed (see [`crate::report`]); unreadable fields are
//! named in a `warn`.
//!
//! Components, in order: `report` (age, origin, unreadable fields), `checks`, `reliability`.

use chrono::{DateTime, Duration, Utc};
use telemesh_core::{Component, Grade, Snapshot, Source};

use crate::report::{Outcome, Report};
use crate::settings::SystemValidationSettings;
use crate::state::{HistoryEntry, Origin, ValidationState};

/// The snapshot kind (and topic) this domain publishes.
pub const KIND: &str = "telemetry.operational.system_validation";
/// The Markdown title of the snapshot.
pub const TITLE: &str = "System validation";

pub const REPORT: &str = "report";
pub const CHECKS: &str = "checks";
pub const RELIABILITY: &str = "reliability";

/// A report dated further than this in the future is suspicious (clock skew).
const FUTURE_TOLERANCE_SECONDS: i64 = 300;
/// Failing check names listed in the summary and details.
const LISTED_FAILURES: usize = 20;

/// The counts of a report (§3.10.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub success_rate: f64,
}

/// Total, passed, failed and success rate of a report.
pub fn counts(report: &Report) -> Counts {
    let listed = (report.checks.len() + report.checks_dropped) as u64;
    let total = report
        .total_checks
        .filter(|t| *t >= listed)
        .unwrap_or(listed);
    let passed = report
        .passed_checks
        .filter(|p| *p <= total)
        .unwrap_or_else(|| {
            report
                .checks
                .iter()
                .filter(|c| c.outcome == Outcome::Passed)
                .count() as u64
        });
    let success_rate = report.success_rate.unwrap_or(if total == 0 {
        0.0
    } else {
        passed as f64 / total as f64
    });
    Counts {
        total,
        passed,
        failed: total.saturating_sub(passed),
        success_rate,
    }
}

fn outcome_grade(outcome: Outcome) -> Option<Grade> {
    match outcome {
        Outcome::Passed | Outcome::Unknown => None,
        Outcome::Warned => Some(Grade::Warn),
        Outcome::Failed => Some(Grade::Fail),
    }
}

/// The grade of the checks alone: none → warn, all passed → ok, some → warn, none passed →
/// fail; raised by the report's own `status` and `summary.status`.
pub fn checks_grade(report: &Report) -> Grade {
    let c = counts(report);
    let mut grade = if c.total == 0 {
        Grade::Warn
    } else if c.passed >= c.total {
        Grade::Ok
    } else if c.passed > 0 {
        Grade::Warn
    } else {
        Grade::Fail
    };
    for status in [report.status, report.summary_status].into_iter().flatten() {
        if let Some(g) = outcome_grade(status) {
            grade.escalate(g);
        }
    }
    grade
}

/// The time a report is aged from.
pub fn report_time(report: &Report, received_at: DateTime<Utc>) -> DateTime<Utc> {
    report.timestamp.unwrap_or(received_at)
}

/// Grades `state` into a snapshot generated at `now`.
pub fn evaluate(
    settings: &SystemValidationSettings,
    state: &ValidationState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut snapshot = Snapshot::new(KIND, source, now);
    match state {
        ValidationState::NoReport { expected_at } => {
            let where_ = match expected_at {
                Some(path) => format!("no report at {path} yet and none uploaded"),
                None => "no report uploaded yet".to_owned(),
            };
            let summary = format!("{where_}: run the validator, or POST its report to /api/v1/system-validation/report");
            snapshot.push(Component::new(REPORT, Grade::Warn, summary.clone()));
            snapshot.summary = summary;
        }
        ValidationState::Unreadable {
            origin,
            received_at,
            error,
        } => {
            let summary = format!("the report from {origin} cannot be read: {error}");
            snapshot.push(
                Component::new(REPORT, Grade::Fail, summary.clone())
                    .detail("origin", origin.to_string())
                    .detail("received_at", received_at.to_rfc3339()),
            );
            snapshot.summary = summary;
        }
        ValidationState::Report {
            report,
            origin,
            received_at,
            history,
        } => graded(
            settings,
            report,
            origin,
            *received_at,
            history,
            now,
            &mut snapshot,
        ),
    }
    snapshot.markdown = snapshot.render_markdown(TITLE);
    snapshot
}

fn graded(
    settings: &SystemValidationSettings,
    report: &Report,
    origin: &Origin,
    received_at: DateTime<Utc>,
    history: &[HistoryEntry],
    now: DateTime<Utc>,
    snapshot: &mut Snapshot,
) {
    let at = report_time(report, received_at);
    let age_hours = (now - at).num_milliseconds() as f64 / 3_600_000.0;
    snapshot.push(freshness(settings, report, origin, at, age_hours, now));
    snapshot.metric("report_age_hours", age_hours.max(0.0));

    let c = counts(report);
    let grade = checks_grade(report);
    snapshot.metric("total_checks", c.total as f64);
    snapshot.metric("passed_checks", c.passed as f64);
    snapshot.metric("failed_checks", c.failed as f64);
    snapshot.metric("success_rate", c.success_rate);
    let failing: Vec<String> = report
        .checks
        .iter()
        .filter(|ch| ch.outcome != Outcome::Passed)
        .take(LISTED_FAILURES)
        .map(|ch| match &ch.message {
            Some(m) => format!("{} ({m})", ch.name),
            None => ch.name.clone(),
        })
        .collect();
    let mut summary = format!(
        "{}/{} checks passed (success {:.2}%)",
        c.passed,
        c.total,
        c.success_rate * 100.0
    );
    if !failing.is_empty() {
        summary.push_str(&format!("; not passed: {}", failing.join(", ")));
    }
    if let Some(m) = &report.summary_message {
        summary.push_str(&format!("; validator says: {m}"));
    }
    let mut checks = Component::new(CHECKS, grade, summary)
        .detail("total_checks", c.total)
        .detail("passed_checks", c.passed)
        .detail("failed_checks", c.failed)
        .detail("success_rate", c.success_rate)
        .detail("failing_checks", failing);
    if let Some(v) = &report.validator {
        checks = checks.detail("validator", v.as_str());
    }
    if let Some(v) = &report.version {
        checks = checks.detail("version", v.as_str());
    }
    snapshot.push(checks);

    let current = HistoryEntry {
        at,
        grade,
        success_rate: c.success_rate,
    };
    let reliability = reliability(settings, current, history, now, snapshot);
    snapshot.push(reliability);

    let worst: Vec<String> = snapshot
        .components
        .iter()
        .filter(|x| x.status == snapshot.status && x.status != Grade::Ok)
        .map(|x| x.summary.clone())
        .collect();
    snapshot.summary = if worst.is_empty() {
        format!(
            "{}/{} checks passed, report {:.1} h old",
            c.passed,
            c.total,
            age_hours.max(0.0)
        )
    } else {
        worst.join("; ")
    };
}

fn freshness(
    settings: &SystemValidationSettings,
    report: &Report,
    origin: &Origin,
    at: DateTime<Utc>,
    age_hours: f64,
    now: DateTime<Utc>,
) -> Component {
    let mut grade = Grade::Ok;
    let mut parts = vec![format!("from {origin}, {:.1} h old", age_hours.max(0.0))];
    if age_hours > settings.fail_stale_hours {
        grade.escalate(Grade::Fail);
        parts.push(format!(
            "stale: older than {} h; run the validator",
            settings.fail_stale_hours
        ));
    } else if age_hours > settings.warn_stale_hours {
        grade.escalate(Grade::Warn);
        parts.push(format!("older than {} h", settings.warn_stale_hours));
    }
    if at > now + Duration::seconds(FUTURE_TOLERANCE_SECONDS) {
        grade.escalate(Grade::Warn);
        parts.push("dated in the future: check the validator's clock".into());
    }
    if !report.problems.is_empty() {
        grade.escalate(Grade::Warn);
        parts.push(format!("unreadable: {}", report.problems.join("; ")));
    }
    Component::new(REPORT, grade, parts.join("; "))
        .detail("origin", origin.to_string())
        .detail("generated_at", at.to_rfc3339())
        .detail("age_hours", age_hours.max(0.0))
        .detail("problems", report.problems.clone())
}

fn reliability(
    settings: &SystemValidationSettings,
    current: HistoryEntry,
    history: &[HistoryEntry],
    now: DateTime<Utc>,
    snapshot: &mut Snapshot,
) -> Component {
    let entries: Vec<HistoryEntry> = std::iter::once(current)
        .chain(history.iter().copied())
        .collect();
    let fail_streak = entries
        .iter()
        .take_while(|e| e.grade == Grade::Fail)
        .count() as u32;
    let warn_streak = entries
        .iter()
        .take_while(|e| e.grade == Grade::Warn)
        .count() as u32;
    let window_start = now - Duration::milliseconds((settings.window_hours * 3_600_000.0) as i64);
    let in_window: Vec<f64> = entries
        .iter()
        .filter(|e| e.at >= window_start)
        .map(|e| e.success_rate)
        .collect();
    let mut grade = Grade::Ok;
    let mut parts = Vec::new();
    if fail_streak >= settings.fail_fail_streak {
        grade.escalate(Grade::Fail);
        parts.push(format!("{fail_streak} failed reports in a row"));
    } else if fail_streak >= settings.warn_fail_streak {
        grade.escalate(Grade::Warn);
        parts.push(format!("{fail_streak} failed report(s) in a row"));
    }
    if fail_streak == 0 && warn_streak >= settings.warn_warn_streak {
        grade.escalate(Grade::Warn);
        parts.push(format!("{warn_streak} warn reports in a row"));
    }
    let average = if in_window.is_empty() {
        grade.escalate(Grade::Warn);
        parts.push(format!("no report in the last {} h", settings.window_hours));
        None
    } else {
        let avg = in_window.iter().sum::<f64>() / in_window.len() as f64;
        if avg < settings.fail_success_rate {
            grade.escalate(Grade::Fail);
            parts.push(format!(
                "average success {:.2}% below {:.2}%",
                avg * 100.0,
                settings.fail_success_rate * 100.0
            ));
        } else if avg < settings.warn_success_rate {
            grade.escalate(Grade::Warn);
            parts.push(format!(
                "average success {:.2}% below {:.2}%",
                avg * 100.0,
                settings.warn_success_rate * 100.0
            ));
        }
        snapshot.metric("average_success_rate", avg);
        Some(avg)
    };
    snapshot.metric("fail_streak", f64::from(fail_streak));
    let summary = if parts.is_empty() {
        format!(
            "{} report(s) in {} h, average success {:.2}%",
            in_window.len(),
            settings.window_hours,
            average.unwrap_or(0.0) * 100.0
        )
    } else {
        format!("reliability: {}", parts.join(", "))
    };
    Component::new(RELIABILITY, grade, summary)
        .detail("samples_considered", in_window.len())
        .detail("fail_streak", fail_streak)
        .detail("warn_streak", warn_streak)
        .detail("average_success_rate", average)
        .detail("window_hours", settings.window_hours)
}

#[cfg(test)]
mod tests;
