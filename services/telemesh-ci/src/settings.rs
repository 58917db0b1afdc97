//! Owns the `[ci]` configuration section and the grading policy derived from it.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use telemesh_core::config::{Invalid, Secret, Section};

use crate::evaluate::CiPolicy;
use crate::flakes::FlakePolicy;

/// The list-valued keys of `[ci]` (comma lists in the environment).
pub const LIST_KEYS: &[&str] = &["ci.main_branches"];

/// `[ci]`: where CI data comes from and how it is graded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CiSettings {
    /// Seconds between two evaluations (new data also re-evaluates at once). Default: 60.
    pub interval_seconds: u64,
    /// The main pipeline: a workflow name (the plan's `CI`) or its file path
    /// (`.github/workflows/ci.yml`). Its failures page. Default: `CI`.
    pub main_workflow: String,
    /// Branches whose main-pipeline runs count; empty = every branch (the plan). Default: empty.
    pub main_branches: Vec<String>,
    /// The GitHub webhook's secret (`X-Hub-Signature-256`); empty disables
    /// `POST /api/v1/ci/github`. Default: empty.
    pub webhook_secret: Secret,
    /// Bearer token of the report and coverage uploads; empty disables them. Default: empty.
    pub api_token: Secret,
    /// A main pipeline whose newest run is older than this is `warn`. Default: 168.
    pub stale_after_hours: u64,
    /// The flake window. Default: 168 (7 days).
    pub flake_window_hours: u64,
    /// Pass/fail flips in the window that make a test flaky. Default: 2.
    pub flip_threshold: u32,
    /// Flaky tests at or above this are `warn`. Default: 1.
    pub warn_flaky_tests: usize,
    /// Flaky tests at or above this are `fail`. Default: 5.
    pub fail_flaky_tests: usize,
    /// Overall coverage below this percent is `fail`. Default: 70.
    pub coverage_floor: f64,
    /// A drop from the previous report of more than this many points is `warn`. Default: 1.
    pub max_coverage_drop: f64,
    /// A domain (directory) below this percent is lagging (`warn`). Default: 80 (the plan's).
    pub domain_threshold: f64,
    /// The GitHub REST API base of the poller. Default: `https://api.github.com`.
    pub github_api: String,
    /// `owner/name` to poll workflow runs of (hosts without inbound HTTP); empty = no poller.
    pub poll_repository: String,
    /// The workflow file name (`ci.yml`) or id to poll. Default: empty.
    pub poll_workflow: String,
    /// Token of the poller (a fine-grained token with `actions: read`). Default: empty.
    pub github_token: Secret,
    /// Base URL of the aggregator (`http://host:port`) whose journal holds the CI history
    /// (`GET /api/v1/ci/*`): read at start and then each cycle, so a restarted or second
    /// replica grades the same flakes, coverage trend and runs. Empty: history is in memory
    /// only (lost on restart; run one replica). Default: empty.
    pub aggregator_url: String,
    /// Optional bearer token for the aggregator's read API. Default: empty.
    pub aggregator_token: Secret,
    /// Timeout of one history request, in seconds. Default: 10.
    pub aggregator_timeout_seconds: u64,
    /// A directory CI jobs write test reports and coverage into (read each gather, files
    /// moved to `processed/` or `refused/`: docs/ci.md "Reports from a directory"); empty =
    /// none. Default: empty.
    pub reports_dir: String,
}

impl Default for CiSettings {
    fn default() -> Self {
        Self {
            interval_seconds: 60,
            main_workflow: "CI".to_owned(),
            main_branches: Vec::new(),
            webhook_secret: Secret::default(),
            api_token: Secret::default(),
            stale_after_hours: 168,
            flake_window_hours: 168,
            flip_threshold: 2,
            warn_flaky_tests: 1,
            fail_flaky_tests: 5,
            coverage_floor: 70.0,
            max_coverage_drop: 1.0,
            domain_threshold: 80.0,
            github_api: "https://api.github.com".to_owned(),
            poll_repository: String::new(),
            poll_workflow: String::new(),
            github_token: Secret::default(),
            aggregator_url: String::new(),
            aggregator_token: Secret::default(),
            aggregator_timeout_seconds: 10,
            reports_dir: String::new(),
        }
    }
}

impl CiSettings {
    pub fn policy(&self) -> CiPolicy {
        CiPolicy {
            main_workflow: self.main_workflow.clone(),
            main_branches: self.main_branches.clone(),
            stale_after: Duration::hours(self.stale_after_hours.min(24 * 3650) as i64),
            warn_flaky: self.warn_flaky_tests,
            fail_flaky: self.fail_flaky_tests,
            coverage_floor: self.coverage_floor,
            max_coverage_drop: self.max_coverage_drop,
            domain_threshold: self.domain_threshold,
        }
    }

    /// Whether the poller runs (a repository and a workflow are set).
    pub fn polls(&self) -> bool {
        !self.poll_repository.trim().is_empty() && !self.poll_workflow.trim().is_empty()
    }

    pub fn flake_policy(&self) -> FlakePolicy {
        FlakePolicy {
            window: Duration::hours(self.flake_window_hours.min(24 * 3650) as i64),
            flip_threshold: self.flip_threshold,
            ..FlakePolicy::default()
        }
    }
}

fn percent(key: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(key, "must be a percentage from 0 to 100"))
    }
}

impl Section for CiSettings {
    fn name(&self) -> &'static str {
        "ci"
    }

    fn list_keys() -> &'static [&'static str] {
        LIST_KEYS
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.interval_seconds == 0 {
            return Err(Invalid::new("ci.interval_seconds", "must be at least 1"));
        }
        if self.main_workflow.trim().is_empty() {
            return Err(Invalid::new(
                "ci.main_workflow",
                "must name the main pipeline's workflow (e.g. CI) or its file path",
            ));
        }
        if self.stale_after_hours == 0 || self.flake_window_hours == 0 {
            return Err(Invalid::new(
                if self.stale_after_hours == 0 {
                    "ci.stale_after_hours"
                } else {
                    "ci.flake_window_hours"
                },
                "must be at least 1",
            ));
        }
        if self.flip_threshold == 0 {
            return Err(Invalid::new("ci.flip_threshold", "must be at least 1"));
        }
        if self.warn_flaky_tests == 0 || self.fail_flaky_tests < self.warn_flaky_tests {
            return Err(Invalid::new(
                "ci.fail_flaky_tests",
                "warn_flaky_tests must be at least 1 and fail_flaky_tests at least warn_flaky_tests",
            ));
        }
        if !self.poll_repository.is_empty() {
            let parts: Vec<&str> = self.poll_repository.split('/').collect();
            if parts.len() != 2
                || parts
                    .iter()
                    .any(|p| p.is_empty() || p.contains(char::is_whitespace))
            {
                return Err(Invalid::new(
                    "ci.poll_repository",
                    "must be owner/name, e.g. octo-org/octo-repo",
                ));
            }
            if self.poll_workflow.trim().is_empty() {
                return Err(Invalid::new(
                    "ci.poll_workflow",
                    "must name the workflow file (ci.yml) or id to poll",
                ));
            }
        }
        if !(self.github_api.starts_with("https://") || self.github_api.starts_with("http://")) {
            return Err(Invalid::new(
                "ci.github_api",
                "must be an http(s) URL, e.g. https://api.github.com",
            ));
        }
        let aggregator = self.aggregator_url.trim();
        if !(aggregator.is_empty()
            || aggregator.starts_with("https://")
            || aggregator.starts_with("http://"))
        {
            return Err(Invalid::new(
                "ci.aggregator_url",
                "must be the aggregator's http(s) URL, e.g. http://telemesh-aggregator:8080, or empty",
            ));
        }
        if self.aggregator_timeout_seconds == 0 {
            return Err(Invalid::new(
                "ci.aggregator_timeout_seconds",
                "must be at least 1",
            ));
        }
        if !self.reports_dir.is_empty()
            && (self.reports_dir.trim() != self.reports_dir
                || self.reports_dir.chars().any(char::is_control)
                || self.reports_dir.trim_end_matches('/').is_empty())
        {
            return Err(Invalid::new(
                "ci.reports_dir",
                "must be a directory path (no surrounding blanks or control characters, not /), e.g. /var/lib/telemesh/ci-reports",
            ));
        }
        percent("ci.coverage_floor", self.coverage_floor)?;
        percent("ci.max_coverage_drop", self.max_coverage_drop)?;
        percent("ci.domain_threshold", self.domain_threshold)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_each_bad_value_names_its_key() {
        assert_eq!(CiSettings::default().validate(), Ok(()));
        let bad: Vec<(CiSettings, &str)> = vec![
            (
                CiSettings {
                    interval_seconds: 0,
                    ..Default::default()
                },
                "ci.interval_seconds",
            ),
            (
                CiSettings {
                    main_workflow: " ".into(),
                    ..Default::default()
                },
                "ci.main_workflow",
            ),
            (
                CiSettings {
                    flake_window_hours: 0,
                    ..Default::default()
                },
                "ci.flake_window_hours",
            ),
            (
                CiSettings {
                    flip_threshold: 0,
                    ..Default::default()
                },
                "ci.flip_threshold",
            ),
            (
                CiSettings {
                    warn_flaky_tests: 3,
                    fail_flaky_tests: 2,
                    ..Default::default()
                },
                "ci.fail_flaky_tests",
            ),
            (
                CiSettings {
                    coverage_floor: f64::NAN,
                    ..Default::default()
                },
                "ci.coverage_floor",
            ),
            (
                CiSettings {
                    domain_threshold: 101.0,
                    ..Default::default()
                },
                "ci.domain_threshold",
            ),
            (
                CiSettings {
                    max_coverage_drop: -1.0,
                    ..Default::default()
                },
                "ci.max_coverage_drop",
            ),
            (
                CiSettings {
                    aggregator_url: "aggregator:8080".into(),
                    ..Default::default()
                },
                "ci.aggregator_url",
            ),
            (
                CiSettings {
                    aggregator_timeout_seconds: 0,
                    ..Default::default()
                },
                "ci.aggregator_timeout_seconds",
            ),
            (
                CiSettings {
                    reports_dir: " /reports".into(),
                    ..Default::default()
                },
                "ci.reports_dir",
            ),
            (
                CiSettings {
                    reports_dir: "/reports\n".into(),
                    ..Default::default()
                },
                "ci.reports_dir",
            ),
            (
                CiSettings {
                    reports_dir: "/".into(),
                    ..Default::default()
                },
                "ci.reports_dir",
            ),
        ];
        for (settings, key) in bad {
            assert_eq!(settings.validate().map_err(|e| e.key), Err(key.to_owned()));
        }
    }
}
