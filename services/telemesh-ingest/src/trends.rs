//! Owns the pure ingest-trends evaluator (`telemetry.ingest.trends`, DOMAINS.md §3.6): each
//! dimension is graded on a window of its own newest runs (not on the newest runs of all
//! dimensions together, quirk 7), plus a rule for a dimension that stopped reporting.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use telemesh_core::snapshot::escape_cell;
use telemesh_core::{topics, Component, DetailValue, Details, Grade, Snapshot, Source};

use crate::render::{human_duration, INTERVAL_METRIC};
use crate::run::{known_status, normalize_status, IngestRun};
use crate::settings::TrendPolicy;

/// The runs read from the journal, grouped by dimension (any order within a group).
pub type RunsByDimension = BTreeMap<String, Vec<IngestRun>>;

/// The snapshot title in Markdown.
pub const TITLE: &str = "Ingest trends";

/// The outcome of one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionTrend {
    pub dimension: String,
    pub status: Grade,
    pub issues: Vec<String>,
    /// The window, newest first.
    pub window: Vec<IngestRun>,
    pub expected_interval_seconds: u64,
    /// Seconds since the newest run; `None` when it never reported.
    pub age_seconds: Option<f64>,
}

/// Grades every dimension (configured ones first, then the others found, by name) and builds
/// the `telemetry.ingest.trends` snapshot as of `now`.
pub fn evaluate(
    policy: &TrendPolicy,
    source: &Source,
    runs: &RunsByDimension,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut names: Vec<&str> = policy.dimensions.iter().map(String::as_str).collect();
    for d in runs.keys() {
        if !names.contains(&d.as_str()) {
            names.push(d);
        }
    }
    names.retain(|d| !policy.ignore_dimensions.iter().any(|i| i == d));
    let empty = Vec::new();
    let trends: Vec<DimensionTrend> = names
        .iter()
        .map(|d| evaluate_dimension(policy, d, runs.get(*d).unwrap_or(&empty), now))
        .collect();

    let mut s = Snapshot::new(topics::INGEST_TRENDS, source.clone(), now);
    let any_history = trends.iter().any(|t| !t.window.is_empty());
    if trends.is_empty() {
        s.push(Component::new(
            "history",
            Grade::Warn,
            "no ingest history is available: no dimension is configured and the runs table is empty",
        ));
    }
    for t in &trends {
        s.push(component(t));
    }
    let count = |g: Grade| trends.iter().filter(|t| t.status == g).count();
    s.summary = if !any_history {
        "no ingest history is available: no run has been recorded yet; ingest jobs report runs via POST /api/v1/ingest/runs or the runs table".into()
    } else if trends.iter().all(|t| t.status == Grade::Ok) {
        format!(
            "all {} dimensions healthy over their last {} runs",
            trends.len(),
            policy.window_runs
        )
    } else {
        let bad: Vec<String> = trends
            .iter()
            .filter(|t| t.status != Grade::Ok)
            .map(|t| format!("{} {}: {}", t.dimension, t.status, t.issues.join(", ")))
            .collect();
        format!(
            "{} of {} dimensions need attention: {}",
            bad.len(),
            trends.len(),
            bad.join("; ")
        )
    };
    s.metric(INTERVAL_METRIC, policy.interval_seconds as f64);
    s.metric("window_runs", policy.window_runs as f64);
    s.metric("dimensions", trends.len() as f64);
    s.metric("dimensions_ok", count(Grade::Ok) as f64);
    s.metric("dimensions_warn", count(Grade::Warn) as f64);
    s.metric("dimensions_fail", count(Grade::Fail) as f64);
    s.markdown = markdown(&s, &trends);
    s
}

/// Applies the §3.6.3 rules and the silence rule to one dimension.
pub fn evaluate_dimension(
    policy: &TrendPolicy,
    dimension: &str,
    runs: &[IngestRun],
    now: DateTime<Utc>,
) -> DimensionTrend {
    let mut window: Vec<IngestRun> = runs.to_vec();
    window.sort_by(|a, b| {
        b.executed_at
            .cmp(&a.executed_at)
            .then_with(|| b.run_id.cmp(&a.run_id))
    });
    window.truncate(policy.window_runs.max(1));
    let interval = policy.expected_interval(dimension);
    let mut trend = DimensionTrend {
        dimension: dimension.to_owned(),
        status: Grade::Ok,
        issues: Vec::new(),
        window,
        expected_interval_seconds: interval,
        age_seconds: None,
    };
    let Some(latest) = trend.window.first().cloned() else {
        trend.status = Grade::Warn;
        trend.issues.push(format!(
            "no run recorded yet (expected every {})",
            human_duration(interval as f64)
        ));
        return trend;
    };
    let grades: Vec<Grade> = trend
        .window
        .iter()
        .map(|r| normalize_status(&r.status))
        .collect();
    let mut grade = grades[0];
    match grade {
        Grade::Fail => trend.issues.push("latest run failed".into()),
        Grade::Warn if known_status(&latest.status).is_none() => trend
            .issues
            .push(format!("latest run has unknown status {:?}", latest.status)),
        Grade::Warn => trend
            .issues
            .push("latest run completed with warnings".into()),
        Grade::Ok => {}
    }

    // failures
    let n = policy.consecutive_failures.max(1);
    let recent_end = policy.recent_failure_runs.min(grades.len());
    if grades.len() >= n && grades[..n].iter().all(|g| *g == Grade::Fail) {
        grade = Grade::Fail;
        if n > 1 {
            trend.issues.push(format!("{n} consecutive failures"));
        }
    } else if grade != Grade::Fail && recent_end > 1 {
        if let Some(i) = (1..recent_end).find(|i| grades[*i] == Grade::Fail) {
            grade = Grade::Fail;
            trend.issues.push(format!(
                "recent history includes failures (run #{} of the newest)",
                i + 1
            ));
        }
    }

    // rows written against the average of the previous runs in the window
    if trend.window.len() >= 2 {
        let previous = &trend.window[1..];
        let average =
            previous.iter().map(|r| r.rows_written as f64).sum::<f64>() / previous.len() as f64;
        if average > 0.0 {
            if latest.rows_written == 0 {
                grade.escalate(Grade::Warn);
                trend.issues.push(format!(
                    "latest run wrote 0 rows after a non-zero average of ~{average:.0}"
                ));
            } else if (latest.rows_written as f64) < policy.rows_drop_ratio * average {
                grade.escalate(Grade::Warn);
                trend.issues.push(format!(
                    "rows dropped from ~{average:.0} to {}",
                    latest.rows_written
                ));
            }
        }
    }

    // freshness against the best previous freshness in the window
    if trend.window.len() >= 2 {
        let best = trend.window[1..]
            .iter()
            .filter_map(|r| r.freshness_seconds)
            .fold(None, |acc: Option<f64>, f| {
                Some(acc.map_or(f, |a| a.min(f)))
            });
        if let (Some(current), Some(best)) = (latest.freshness_seconds, best) {
            if best > 0.0 && current > policy.freshness_regression_ratio * best {
                grade.escalate(Grade::Warn);
                trend.issues.push(format!(
                    "freshness regressed from {best:.1} s to {current:.1} s"
                ));
            }
        }
    }

    // silence: no run within the expected interval
    let age = ((now - latest.executed_at).num_milliseconds() as f64 / 1000.0).max(0.0);
    trend.age_seconds = Some(age);
    let interval_f = interval as f64;
    if age > policy.silent_fail_factor * interval_f {
        grade = Grade::Fail;
        trend.issues.push(format!(
            "stopped reporting: no run for {} (expected every {}, fail after {})",
            human_duration(age),
            human_duration(interval_f),
            human_duration(policy.silent_fail_factor * interval_f)
        ));
    } else if age > interval_f {
        grade.escalate(Grade::Warn);
        trend.issues.push(format!(
            "no run for {} (expected every {})",
            human_duration(age),
            human_duration(interval_f)
        ));
    }
    trend.status = grade;
    trend
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn component(t: &DimensionTrend) -> Component {
    let summary = if !t.issues.is_empty() {
        t.issues.join("; ")
    } else if let Some(latest) = t.window.first() {
        format!(
            "{} runs healthy; latest {} at {} wrote {} rows",
            t.window.len(),
            latest.status,
            iso(latest.executed_at),
            latest.rows_written
        )
    } else {
        "no runs".into()
    };
    let recent: Vec<DetailValue> = t
        .window
        .iter()
        .map(|r| {
            let mut m = Details::new();
            m.insert("run_id".into(), r.run_id.clone().into());
            m.insert("status".into(), normalize_status(&r.status).as_str().into());
            m.insert("raw_status".into(), r.status.clone().into());
            m.insert("rows_written".into(), r.rows_written.into());
            m.insert("freshness_seconds".into(), r.freshness_seconds.into());
            m.insert(
                "ingest_duration_seconds".into(),
                r.ingest_duration_seconds.into(),
            );
            m.insert("executed_at".into(), iso(r.executed_at).into());
            m.insert("source".into(), r.source.clone().into());
            m.insert("symbols".into(), r.symbols.clone().into());
            DetailValue::Map(m)
        })
        .collect();
    Component::new(t.dimension.clone(), t.status, summary)
        .detail(
            "statuses",
            t.window
                .iter()
                .map(|r| normalize_status(&r.status).as_str())
                .collect::<Vec<_>>(),
        )
        .detail(
            "rows_written",
            t.window.iter().map(|r| r.rows_written).collect::<Vec<_>>(),
        )
        .detail(
            "freshness_seconds",
            t.window
                .iter()
                .map(|r| r.freshness_seconds)
                .collect::<Vec<_>>(),
        )
        .detail("issues", t.issues.clone())
        .detail("runs_in_window", t.window.len())
        .detail("expected_interval_seconds", t.expected_interval_seconds)
        .detail(
            "latest_age_seconds",
            t.age_seconds.map(|a| (a * 10.0).round() / 10.0),
        )
        .detail(
            "latest_run_at",
            t.window.first().map(|r| iso(r.executed_at)),
        )
        .detail("recent_runs", DetailValue::List(recent))
}

fn markdown(s: &Snapshot, trends: &[DimensionTrend]) -> String {
    let mut out = s.render_markdown(TITLE);
    for t in trends {
        out.push_str(&format!(
            "\n#### {}: {}\n\n",
            escape_cell(&t.dimension),
            t.status.as_upper()
        ));
        if t.window.is_empty() {
            out.push_str("- no runs recorded\n");
        } else {
            let statuses: Vec<&str> = t
                .window
                .iter()
                .map(|r| normalize_status(&r.status).as_str())
                .collect();
            let rows: Vec<String> = t
                .window
                .iter()
                .map(|r| r.rows_written.to_string())
                .collect();
            let fresh: Vec<String> = t
                .window
                .iter()
                .map(|r| {
                    r.freshness_seconds
                        .map_or("∅".into(), |f| format!("{f:.1}s"))
                })
                .collect();
            out.push_str(&format!(
                "- last {} runs (newest first): {}\n- rows written: {}\n- freshness: {}\n",
                t.window.len(),
                statuses.join(", "),
                rows.join(", "),
                fresh.join(", ")
            ));
            if let Some(age) = t.age_seconds {
                out.push_str(&format!(
                    "- newest run {} ago (expected every {})\n",
                    human_duration(age),
                    human_duration(t.expected_interval_seconds as f64)
                ));
            }
        }
        if !t.issues.is_empty() {
            out.push_str("- issues:\n");
            for issue in &t.issues {
                out.push_str(&format!("  - {issue}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
