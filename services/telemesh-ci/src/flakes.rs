//! Owns flake detection over per-test history (pure). A test is flaky in the window when
//! (a) for one commit it failed in one upload and passed in a later one, (b) it passed
//! within one run only after retries (`flakyFailure`/`rerunFailure`), or (c) its outcome
//! flipped between pass and failure at least `flip_threshold` times across the window's
//! uploads (oldest first, whatever the commit). Skips and xfails are neither.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::junit::{Outcome, TestReport};

/// One uploaded report with the run it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestUpload {
    /// Unique per upload (a UUID from the intake).
    pub upload_id: String,
    pub recorded_at: DateTime<Utc>,
    pub commit: String,
    #[serde(default)]
    pub branch: Option<String>,
    /// The CI run's id (e.g. GitHub's run id and attempt) when known.
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_url: Option<String>,
    /// The test suite's name (e.g. `pytest`, `cargo`), to keep suites apart.
    #[serde(default)]
    pub suite: Option<String>,
    pub report: TestReport,
}

/// Detection parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FlakePolicy {
    pub window: Duration,
    /// Pass↔failure flips across the window that make a test flaky.
    pub flip_threshold: u32,
    /// How many newest failures to list.
    pub newest_failures: usize,
}

impl Default for FlakePolicy {
    fn default() -> Self {
        Self {
            window: Duration::days(7),
            flip_threshold: 2,
            newest_failures: 10,
        }
    }
}

/// One flaky test and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlakyTest {
    pub test_id: String,
    pub reasons: Vec<String>,
    pub failures: u32,
    pub passes: u32,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_failure: Option<String>,
    pub last_run_url: Option<String>,
}

/// One failure occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureSeen {
    pub test_id: String,
    pub at: DateTime<Utc>,
    pub commit: String,
    pub branch: Option<String>,
    pub run_url: Option<String>,
    pub failure: Option<String>,
}

/// What the window holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlakeFindings {
    pub window_start: DateTime<Utc>,
    pub uploads: usize,
    pub cases: usize,
    pub failures: usize,
    pub flaky: Vec<FlakyTest>,
    /// Newest first.
    pub newest_failures: Vec<FailureSeen>,
}

/// Finds flaky tests among `uploads` recorded in `(now - window, now]`.
pub fn detect(uploads: &[TestUpload], policy: &FlakePolicy, now: DateTime<Utc>) -> FlakeFindings {
    let window_start = now - policy.window;
    let mut in_window: Vec<&TestUpload> = uploads
        .iter()
        .filter(|u| u.recorded_at > window_start && u.recorded_at <= now)
        .collect();
    in_window.sort_by(|a, b| (a.recorded_at, &a.upload_id).cmp(&(b.recorded_at, &b.upload_id)));

    #[derive(Default)]
    struct Track<'a> {
        failures: u32,
        passes: u32,
        flips: u32,
        last: Option<bool>,
        failed_commits: Vec<&'a str>,
        reasons: Vec<String>,
        last_failure_at: Option<DateTime<Utc>>,
        last_failure: Option<String>,
        last_run_url: Option<String>,
    }
    let mut tracks: BTreeMap<String, Track<'_>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut cases = 0;
    for upload in &in_window {
        for case in &upload.report.cases {
            cases += 1;
            let failed = match case.outcome {
                Outcome::Passed => false,
                Outcome::Failed | Outcome::Error => true,
                Outcome::Skipped | Outcome::XFailed => continue,
            };
            let key = match &upload.suite {
                Some(suite) => format!("{suite}:{}", case.test_id),
                None => case.test_id.clone(),
            };
            let t = tracks.entry(key.clone()).or_default();
            if t.last.is_some_and(|last| last != failed) {
                t.flips += 1;
            }
            t.last = Some(failed);
            if failed {
                t.failures += 1;
                t.failed_commits.push(&upload.commit);
                t.last_failure_at = Some(upload.recorded_at);
                t.last_failure = case.failure.clone();
                t.last_run_url = upload.run_url.clone();
                failures.push(FailureSeen {
                    test_id: key,
                    at: upload.recorded_at,
                    commit: upload.commit.clone(),
                    branch: upload.branch.clone(),
                    run_url: upload.run_url.clone(),
                    failure: case.failure.clone(),
                });
            } else {
                t.passes += 1;
                if t.failed_commits.contains(&upload.commit.as_str()) {
                    let reason = format!("failed then passed on commit {}", short(&upload.commit));
                    if !t.reasons.contains(&reason) {
                        t.reasons.push(reason);
                    }
                }
                if case.retried_failures > 0 {
                    t.reasons.push(format!(
                        "passed after {} retried failure(s) in one run",
                        case.retried_failures
                    ));
                }
            }
        }
    }
    let flaky = tracks
        .into_iter()
        .filter_map(|(test_id, mut t)| {
            if t.flips >= policy.flip_threshold {
                t.reasons
                    .push(format!("{} pass/fail flips in the window", t.flips));
            }
            (!t.reasons.is_empty()).then_some(FlakyTest {
                test_id,
                reasons: t.reasons,
                failures: t.failures,
                passes: t.passes,
                last_failure_at: t.last_failure_at,
                last_failure: t.last_failure,
                last_run_url: t.last_run_url,
            })
        })
        .collect();
    let total_failures = failures.len();
    failures.reverse();
    failures.truncate(policy.newest_failures);
    FlakeFindings {
        window_start,
        uploads: in_window.len(),
        cases,
        failures: total_failures,
        flaky,
        newest_failures: failures,
    }
}

/// The first 12 characters of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::junit::{ReportFormat, TestCase};

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0)
            .single()
            .expect("time")
            + Duration::hours(h)
    }

    fn upload(id: &str, hour: i64, commit: &str, cases: &[(&str, Outcome, u32)]) -> TestUpload {
        TestUpload {
            upload_id: id.into(),
            recorded_at: at(hour),
            commit: commit.into(),
            branch: Some("main".into()),
            run_id: None,
            run_url: Some(format!("https://ci.example/{id}")),
            suite: None,
            report: TestReport {
                format: ReportFormat::Junit,
                cases: cases
                    .iter()
                    .map(|(t, o, r)| TestCase {
                        test_id: (*t).into(),
                        outcome: *o,
                        duration_seconds: 0.0,
                        failure: o.is_failure().then(|| format!("{t} broke")),
                        retried_failures: *r,
                    })
                    .collect(),
            },
        }
    }

    use Outcome::{Failed, Passed, Skipped, XFailed};

    #[test]
    fn each_rule_at_and_around_its_boundary() {
        let policy = FlakePolicy::default();
        // (uploads, expected flaky ids)
        let table: Vec<(Vec<TestUpload>, Vec<&str>)> = vec![
            // failed then passed on one commit → flaky
            (
                vec![
                    upload("1", 1, "c1", &[("t", Failed, 0)]),
                    upload("2", 2, "c1", &[("t", Passed, 0)]),
                ],
                vec!["t"],
            ),
            // passed then failed on one commit, one flip (< 2) → not flaky
            (
                vec![
                    upload("1", 1, "c1", &[("t", Passed, 0)]),
                    upload("2", 2, "c1", &[("t", Failed, 0)]),
                ],
                vec![],
            ),
            // fail then pass on different commits: one flip → a fix, not a flake
            (
                vec![
                    upload("1", 1, "c1", &[("t", Failed, 0)]),
                    upload("2", 2, "c2", &[("t", Passed, 0)]),
                ],
                vec![],
            ),
            // two flips across commits (at the threshold) → flaky
            (
                vec![
                    upload("1", 1, "c1", &[("t", Passed, 0)]),
                    upload("2", 2, "c2", &[("t", Failed, 0)]),
                    upload("3", 3, "c3", &[("t", Passed, 0)]),
                ],
                vec!["t"],
            ),
            // retried failure inside one run → flaky
            (vec![upload("1", 1, "c1", &[("t", Passed, 1)])], vec!["t"]),
            // skip and xfail break nothing
            (
                vec![
                    upload("1", 1, "c1", &[("t", Failed, 0)]),
                    upload("2", 2, "c1", &[("t", Skipped, 0)]),
                    upload("3", 3, "c1", &[("t", XFailed, 0)]),
                ],
                vec![],
            ),
            // the failure fell out of the 7-day window (window is (now-7d, now])
            (
                vec![
                    upload("1", 0, "c1", &[("t", Failed, 0)]),
                    upload("2", 2, "c1", &[("t", Passed, 0)]),
                ],
                vec![],
            ),
        ];
        let now = at(24 * 7);
        for (i, (uploads, want)) in table.into_iter().enumerate() {
            let found = detect(&uploads, &policy, now);
            let ids: Vec<&str> = found.flaky.iter().map(|f| f.test_id.as_str()).collect();
            assert_eq!(ids, want, "row {i}");
        }
    }

    #[test]
    fn newest_failures_are_listed_newest_first_and_capped() {
        let policy = FlakePolicy {
            newest_failures: 2,
            ..FlakePolicy::default()
        };
        let uploads: Vec<_> = (1..=3)
            .map(|h| upload(&h.to_string(), h, "c", &[("t", Failed, 0)]))
            .collect();
        let found = detect(&uploads, &policy, at(4));
        assert_eq!(found.failures, 3);
        let hours: Vec<_> = found.newest_failures.iter().map(|f| f.at).collect();
        assert_eq!(hours, [at(3), at(2)]);
    }
}
