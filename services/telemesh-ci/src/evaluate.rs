//! Owns the grading of CI telemetry: pure functions from a [`CiPolicy`] and gathered state to
//! the `telemetry.ci.pipeline`, `telemetry.ci.flakes` and `telemetry.ci.coverage` snapshots.
//! No I/O, no clock: `now` is passed in. Boundaries (tested in `evaluate/tests.rs`):
//!
//! - pipeline: the main pipeline's last decisive run (failure / timed_out / cancelled or
//!   success; other conclusions are ignored, §8.2) — failure-type → `fail`, success → `ok`,
//!   none yet → `warn`; last run older than `stale_after` (strictly) → `warn`; another
//!   workflow whose last run on a branch failed → `warn`.
//! - flakes: flaky tests ≥ `warn_flaky` → `warn`, ≥ `fail_flaky` → `fail`; no upload in the
//!   window → `warn`.
//! - coverage: overall < `coverage_floor` → `fail`; a drop from the previous report strictly
//!   greater than `max_coverage_drop` points → `warn`; any domain < `domain_threshold` is
//!   lagging → `warn`; no report yet → `warn`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use telemesh_core::snapshot::escape_cell;
use telemesh_core::{Component, DetailValue, Grade, Snapshot, Source};

use crate::coverage::{DomainCoverage, FormatterMode};
use crate::flakes::{short, FlakeFindings};
use crate::github::{Conclusion, PipelineRun};
use crate::kinds;

/// Grading thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct CiPolicy {
    /// The main pipeline: a workflow name or workflow file path (the plan's `CI`).
    pub main_workflow: String,
    /// Branches whose runs count for the main pipeline; empty = every branch (the plan).
    pub main_branches: Vec<String>,
    pub stale_after: Duration,
    pub warn_flaky: usize,
    pub fail_flaky: usize,
    pub coverage_floor: f64,
    pub max_coverage_drop: f64,
    pub domain_threshold: f64,
}

impl Default for CiPolicy {
    fn default() -> Self {
        Self {
            main_workflow: "CI".to_owned(),
            main_branches: Vec::new(),
            stale_after: Duration::days(7),
            warn_flaky: 1,
            fail_flaky: 5,
            coverage_floor: 70.0,
            max_coverage_drop: 1.0,
            domain_threshold: 80.0,
        }
    }
}

impl CiPolicy {
    fn is_main(&self, run: &PipelineRun) -> bool {
        run.is_workflow(&self.main_workflow)
            && (self.main_branches.is_empty()
                || run
                    .branch
                    .as_ref()
                    .is_some_and(|b| self.main_branches.contains(b)))
    }
}

/// Component names.
pub const MAIN_PIPELINE: &str = "main_pipeline";
pub const FRESHNESS: &str = "freshness";
pub const WORKFLOWS: &str = "workflows";
pub const POLLER: &str = "poller";
/// The component saying where the graded history came from (see [`add_journal`]).
pub const JOURNAL: &str = "journal";
pub const FLAKY_TESTS: &str = "flaky_tests";
pub const REPORTS: &str = "reports";
pub const OVERALL: &str = "overall";
pub const DOMAINS: &str = "domains";
pub const FORMATTER: &str = "formatter";

fn text(s: impl Into<String>) -> DetailValue {
    DetailValue::Text(s.into())
}

fn opt(s: &Option<String>) -> DetailValue {
    s.clone().map_or(DetailValue::Null, DetailValue::Text)
}

fn time(t: Option<DateTime<Utc>>) -> DetailValue {
    t.map_or(DetailValue::Null, |t| DetailValue::Text(t.to_rfc3339()))
}

/// Grades completed runs (any order) into `telemetry.ci.pipeline`.
pub fn pipeline(
    policy: &CiPolicy,
    runs: &[PipelineRun],
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut ordered: Vec<&PipelineRun> = runs.iter().collect();
    ordered.sort_by_key(|r| (r.completed_at, r.run_id, r.run_attempt));
    let main: Vec<&PipelineRun> = ordered
        .iter()
        .copied()
        .filter(|r| policy.is_main(r))
        .filter(|r| r.conclusion.is_failure() || r.conclusion == Conclusion::Success)
        .collect();
    let mut snapshot = Snapshot::new(kinds::PIPELINE, source, now);

    // Failure streak and time to recovery over the decisive main runs.
    let mut streak = 0u64;
    let mut streak_start: Option<DateTime<Utc>> = None;
    let mut last_recovery: Option<Duration> = None;
    for r in &main {
        if r.conclusion.is_failure() {
            if streak == 0 {
                streak_start = r.completed_at;
            }
            streak += 1;
        } else {
            if streak > 0 {
                if let (Some(start), Some(end)) = (streak_start, r.completed_at) {
                    last_recovery = Some(end - start);
                }
            }
            streak = 0;
            streak_start = None;
        }
    }

    let component = match main.last() {
        None => Component::new(
            MAIN_PIPELINE,
            Grade::Warn,
            format!("no completed run of {} seen yet", policy.main_workflow),
        )
        .detail("workflow", policy.main_workflow.clone()),
        Some(run) => {
            let grade = if run.conclusion.is_failure() {
                Grade::Fail
            } else {
                Grade::Ok
            };
            let summary = if grade == Grade::Fail {
                format!(
                    "{} #{} {} on {} ({} failing run{} in a row)",
                    run.workflow,
                    run.run_number,
                    run.conclusion.as_str(),
                    run.branch.as_deref().unwrap_or("n/a"),
                    streak,
                    if streak == 1 { "" } else { "s" }
                )
            } else {
                format!(
                    "{} #{} succeeded on {}",
                    run.workflow,
                    run.run_number,
                    run.branch.as_deref().unwrap_or("n/a")
                )
            };
            run_details(Component::new(MAIN_PIPELINE, grade, summary), run)
                .detail("failure_streak", streak as i64)
                .detail("streak_started_at", time(streak_start))
        }
    };
    snapshot.push(component);

    // Freshness of the main pipeline's newest run.
    let newest = main.last().and_then(|r| r.completed_at);
    let freshness = match newest {
        None => Component::new(FRESHNESS, Grade::Ok, "no runs to age"),
        Some(at) => {
            let age = now - at;
            let grade = if age > policy.stale_after {
                Grade::Warn
            } else {
                Grade::Ok
            };
            Component::new(
                FRESHNESS,
                grade,
                format!(
                    "last main-pipeline run {} h ago (stale after {} h)",
                    age.num_hours(),
                    policy.stale_after.num_hours()
                ),
            )
            .detail("age_seconds", age.num_seconds())
        }
    };
    snapshot.push(freshness);

    // Last run per (workflow, branch) of every other workflow.
    let mut last: BTreeMap<(String, String), &PipelineRun> = BTreeMap::new();
    for r in ordered.iter().copied().filter(|r| !policy.is_main(r)) {
        last.insert(
            (r.workflow.clone(), r.branch.clone().unwrap_or_default()),
            r,
        );
    }
    let failing: Vec<&&PipelineRun> = last
        .values()
        .filter(|r| r.conclusion.is_failure())
        .collect();
    let grade = if failing.is_empty() {
        Grade::Ok
    } else {
        Grade::Warn
    };
    let list = last
        .values()
        .map(|r| {
            let mut m = BTreeMap::new();
            m.insert("workflow".to_owned(), text(r.workflow.clone()));
            m.insert("branch".to_owned(), opt(&r.branch));
            m.insert("conclusion".to_owned(), text(r.conclusion.as_str()));
            m.insert(
                "run_number".to_owned(),
                DetailValue::Int(r.run_number as i64),
            );
            m.insert("run_url".to_owned(), text(r.url.clone()));
            DetailValue::Map(m)
        })
        .collect::<Vec<_>>();
    snapshot.push(
        Component::new(
            WORKFLOWS,
            grade,
            format!(
                "{} other workflow/branch pair{}, {} failing",
                last.len(),
                if last.len() == 1 { "" } else { "s" },
                failing.len()
            ),
        )
        .detail("last_runs", DetailValue::List(list)),
    );

    snapshot.metric("failure_streak", streak as f64);
    snapshot.metric("runs_seen", runs.len() as f64);
    if let Some(d) = last_recovery {
        snapshot.metric("time_to_recovery_seconds", d.num_seconds() as f64);
    }
    snapshot.summary = match snapshot.component(MAIN_PIPELINE) {
        Some(c) => c.summary.clone(),
        None => String::new(),
    };
    let mut md = snapshot.render_markdown("CI pipeline");
    if let Some(d) = last_recovery {
        md.push_str(&format!(
            "\nLast time to recovery: {} min.\n",
            d.num_minutes()
        ));
    }
    if let Some(run) = main.last() {
        md.push_str(&format!(
            "\nLast run: [{} #{}]({}) ({}, commit `{}`, by {}).\n",
            escape_cell(&run.display_title),
            run.run_number,
            run.url,
            run.conclusion.as_str(),
            short(&run.commit),
            run.actor.as_deref().unwrap_or("n/a")
        ));
    }
    snapshot.markdown = md;
    snapshot
}

/// Adds the poller's last outcome to a pipeline snapshot: a failed poll is `warn` (the runs
/// may be out of date), a rate-limited one `ok` with the time it resumes.
pub fn add_poller(snapshot: &mut Snapshot, poll: &crate::poller::PollOutcome) {
    use crate::poller::PollOutcome;
    let (grade, summary) = match poll {
        PollOutcome::Fetched { changed } => (
            Grade::Ok,
            format!("polled: {changed} new or changed run(s)"),
        ),
        PollOutcome::NotModified => (Grade::Ok, "polled: not modified (ETag)".to_owned()),
        PollOutcome::RateLimited { until } => (
            Grade::Ok,
            format!(
                "rate limit exhausted: next poll after {}",
                until.to_rfc3339()
            ),
        ),
        PollOutcome::Failed(detail) => (Grade::Warn, format!("poll failed: {detail}")),
    };
    snapshot.push(Component::new(POLLER, grade, summary.clone()));
    snapshot
        .markdown
        .push_str(&format!("\nPoller: {}.\n", escape_cell(&summary)));
}

/// The `journal` component: where the history graded came from. A failed read of the
/// aggregator's journal is `warn` (the grading may miss other replicas' or earlier uploads).
pub fn add_journal(snapshot: &mut Snapshot, read: &Result<usize, String>) {
    let (grade, summary) = match read {
        Ok(rows) => (
            Grade::Ok,
            format!("history read back from the journal ({rows} new row(s))"),
        ),
        Err(detail) => (Grade::Warn, format!("journal history not read: {detail}")),
    };
    snapshot.push(Component::new(JOURNAL, grade, summary.clone()));
    snapshot
        .markdown
        .push_str(&format!("\nHistory: {}.\n", escape_cell(&summary)));
}

/// The run's fields in the component details the CI-failure alert renders (§8.2 bullets).
fn run_details(c: Component, run: &PipelineRun) -> Component {
    c.detail("workflow", run.workflow.clone())
        .detail("display_title", run.display_title.clone())
        .detail("run_id", run.run_id as i64)
        .detail("run_number", run.run_number as i64)
        .detail("run_attempt", run.run_attempt as i64)
        .detail("event", opt(&run.event))
        .detail("conclusion", run.conclusion.as_str().to_owned())
        .detail("branch", opt(&run.branch))
        .detail("commit", run.commit.clone())
        .detail("actor", opt(&run.actor))
        .detail("run_url", run.url.clone())
        .detail("repository", opt(&run.repository))
        .detail("repository_url", opt(&run.repository_url))
        .detail("completed_at", time(run.completed_at))
}

/// Grades flake findings into `telemetry.ci.flakes`.
pub fn flakes(
    policy: &CiPolicy,
    findings: &FlakeFindings,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut snapshot = Snapshot::new(kinds::FLAKES, source, now);
    let n = findings.flaky.len();
    let grade = if n >= policy.fail_flaky {
        Grade::Fail
    } else if n >= policy.warn_flaky {
        Grade::Warn
    } else {
        Grade::Ok
    };
    let list = findings
        .flaky
        .iter()
        .map(|f| {
            let mut m = BTreeMap::new();
            m.insert("test_id".to_owned(), text(f.test_id.clone()));
            m.insert(
                "reasons".to_owned(),
                DetailValue::List(f.reasons.iter().cloned().map(DetailValue::Text).collect()),
            );
            m.insert("failures".to_owned(), DetailValue::Int(f.failures.into()));
            m.insert("passes".to_owned(), DetailValue::Int(f.passes.into()));
            m.insert("last_run_url".to_owned(), opt(&f.last_run_url));
            DetailValue::Map(m)
        })
        .collect();
    snapshot.push(
        Component::new(
            FLAKY_TESTS,
            grade,
            format!(
                "{n} flaky test{} in the window (warn at {}, fail at {})",
                if n == 1 { "" } else { "s" },
                policy.warn_flaky,
                policy.fail_flaky
            ),
        )
        .detail("flaky", DetailValue::List(list)),
    );
    let reports_grade = if findings.uploads == 0 {
        Grade::Warn
    } else {
        Grade::Ok
    };
    let newest = findings
        .newest_failures
        .iter()
        .map(|f| {
            let mut m = BTreeMap::new();
            m.insert("test_id".to_owned(), text(f.test_id.clone()));
            m.insert("at".to_owned(), text(f.at.to_rfc3339()));
            m.insert("commit".to_owned(), text(f.commit.clone()));
            m.insert("run_url".to_owned(), opt(&f.run_url));
            DetailValue::Map(m)
        })
        .collect();
    snapshot.push(
        Component::new(
            REPORTS,
            reports_grade,
            if findings.uploads == 0 {
                "no test report uploaded in the window".to_owned()
            } else {
                format!(
                    "{} upload{}, {} cases, {} failure{}",
                    findings.uploads,
                    if findings.uploads == 1 { "" } else { "s" },
                    findings.cases,
                    findings.failures,
                    if findings.failures == 1 { "" } else { "s" }
                )
            },
        )
        .detail("window_start", findings.window_start.to_rfc3339())
        .detail("newest_failures", DetailValue::List(newest)),
    );
    snapshot.metric("flaky_tests", n as f64);
    snapshot.metric("uploads", findings.uploads as f64);
    snapshot.metric("failures", findings.failures as f64);
    snapshot.summary = format!(
        "{n} flaky test{}, {} failure{} in {} upload{}",
        if n == 1 { "" } else { "s" },
        findings.failures,
        if findings.failures == 1 { "" } else { "s" },
        findings.uploads,
        if findings.uploads == 1 { "" } else { "s" }
    );
    let mut md = snapshot.render_markdown("CI flakes");
    if !findings.flaky.is_empty() {
        md.push_str("\n| Flaky test | Why | Failures | Passes |\n| --- | --- | --- | --- |\n");
        for f in &findings.flaky {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                escape_cell(&f.test_id).replace('`', "'"),
                escape_cell(&f.reasons.join("; ")),
                f.failures,
                f.passes
            ));
        }
    }
    snapshot.markdown = md;
    snapshot
}

/// One coverage report as journaled (the trend is a list of these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageEntry {
    pub label: String,
    pub recorded_at: DateTime<Utc>,
    pub percent: f64,
    pub domains: Vec<DomainCoverage>,
}

/// What the coverage evaluator grades: the trend (any order) and the last formatter entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageState {
    pub trend: Vec<CoverageEntry>,
    pub formatter: Option<FormatterMode>,
}

/// Grades the coverage trend into `telemetry.ci.coverage`.
pub fn coverage(
    policy: &CiPolicy,
    state: &CoverageState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut snapshot = Snapshot::new(kinds::COVERAGE, source, now);
    let mut trend: Vec<&CoverageEntry> = state.trend.iter().collect();
    trend.sort_by_key(|e| e.recorded_at);
    let latest = trend.last().copied();
    let previous = trend.len().checked_sub(2).map(|i| trend[i]);
    match latest {
        None => {
            snapshot.push(Component::new(
                OVERALL,
                Grade::Warn,
                "no coverage report yet",
            ));
            snapshot.push(Component::new(DOMAINS, Grade::Ok, "no coverage report yet"));
        }
        Some(latest) => {
            let drop = previous.map(|p| ((p.percent - latest.percent) * 100.0).round() / 100.0);
            let (grade, why) = if latest.percent < policy.coverage_floor {
                (
                    Grade::Fail,
                    format!("below the {:.2} % floor", policy.coverage_floor),
                )
            } else if drop.is_some_and(|d| d > policy.max_coverage_drop) {
                (
                    Grade::Warn,
                    format!("dropped more than {:.2} points", policy.max_coverage_drop),
                )
            } else {
                (
                    Grade::Ok,
                    "within the floor and the allowed drop".to_owned(),
                )
            };
            let trend_text = match (previous, drop) {
                (Some(p), Some(d)) => format!(" ({:+.2} since {})", -d, p.label),
                _ => String::new(),
            };
            snapshot.push(
                Component::new(
                    OVERALL,
                    grade,
                    format!("{:.2} %{trend_text}: {why}", latest.percent),
                )
                .detail("percent", latest.percent)
                .detail("label", latest.label.clone())
                .detail(
                    "previous_percent",
                    previous.map_or(DetailValue::Null, |p| p.percent.into()),
                )
                .detail("floor", policy.coverage_floor)
                .detail("max_drop", policy.max_coverage_drop),
            );
            let lagging: Vec<&DomainCoverage> = latest
                .domains
                .iter()
                .filter(|d| d.percent < policy.domain_threshold)
                .collect();
            let worst = latest
                .domains
                .iter()
                .min_by(|a, b| a.percent.total_cmp(&b.percent));
            let grade = if lagging.is_empty() {
                Grade::Ok
            } else {
                Grade::Warn
            };
            snapshot.push(
                Component::new(
                    DOMAINS,
                    grade,
                    format!(
                        "{} of {} domains below {:.0} %{}",
                        lagging.len(),
                        latest.domains.len(),
                        policy.domain_threshold,
                        worst.map_or(String::new(), |w| format!(
                            "; worst {} at {:.2} %",
                            w.domain, w.percent
                        ))
                    ),
                )
                .detail("threshold", policy.domain_threshold)
                .detail(
                    "lagging_domains",
                    DetailValue::List(lagging.iter().map(|d| text(d.domain.clone())).collect()),
                )
                .detail("lagging_count", lagging.len() as i64)
                .detail(
                    "worst_domain",
                    worst.map_or(DetailValue::Null, |w| text(w.domain.clone())),
                )
                .detail(
                    "worst_domain_coverage",
                    worst.map_or(DetailValue::Null, |w| w.percent.into()),
                ),
            );
            snapshot.metric("coverage_percent", latest.percent);
            snapshot.metric("lagging_domains", lagging.len() as f64);
            if let Some(d) = drop {
                snapshot.metric("coverage_drop_points", d);
            }
        }
    }
    let formatter = match &state.formatter {
        None => Component::new(FORMATTER, Grade::Ok, "formatter mode not reported"),
        Some(f) => Component::new(
            FORMATTER,
            Grade::Ok,
            if f.mode == "global" {
                "global: every file formatted".to_owned()
            } else {
                format!(
                    "{}: {} entries ({} directories, {} files)",
                    f.mode, f.total_entries, f.directory_count, f.file_count
                )
            },
        )
        .detail("mode", f.mode.clone())
        .detail("total_entries", f.total_entries as i64)
        .detail("directory_count", f.directory_count as i64)
        .detail("file_count", f.file_count as i64),
    };
    snapshot.push(formatter);
    snapshot.summary = snapshot
        .component(OVERALL)
        .map(|c| format!("coverage {}", c.summary))
        .unwrap_or_default();
    let mut md = snapshot.render_markdown("CI coverage");
    if trend.len() > 1 {
        md.push_str("\n| Report | Coverage |\n| --- | --- |\n");
        for e in trend.iter().rev().take(10) {
            md.push_str(&format!(
                "| {} | {:.2} % |\n",
                escape_cell(&e.label),
                e.percent
            ));
        }
    }
    snapshot.markdown = md;
    snapshot
}

#[cfg(test)]
mod tests;
