//! Owns the `[incident_response]` configuration section and the clamped
//! [`IncidentResponsePolicy`] derived from it (DOMAINS.md §3.8.1 policy defaults, §3.8.6 gate
//! defaults, plus where the live inputs are read from).

use serde::{Deserialize, Serialize};
use telemesh_core::config::{Invalid, Secret, Section};

/// The list-valued keys of `[incident_response]`, for the config loader (comma lists in env).
pub const LIST_KEYS: &[&str] = &[
    "incident_response.required_runbooks",
    "incident_response.gate_warn_block_categories",
];

/// The categories whose `warn` issues block a deployment by default (§3.8.6).
pub const DEFAULT_WARN_BLOCK_CATEGORIES: &[&str] = &[
    "missing_runbooks",
    "primary_roster",
    "open_incidents",
    "postmortem_backlog",
    "metrics_mtta",
    "metrics_mttr",
];

/// Which alerts of the aggregator count as incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentSeverity {
    /// Every alert, `warning` and `critical` (default).
    #[default]
    Warning,
    /// Only `critical` alerts.
    Critical,
}

/// `[incident_response]`: the incident-response service's policy and its live inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentResponseSettings {
    /// Whether the service evaluates and publishes at all. Default: true.
    pub enabled: bool,
    /// Seconds between two evaluations. Default: 60.
    pub interval_seconds: u64,

    // --- §3.8.1 policy
    /// Runbook ids that must exist (case-insensitive). Default: none.
    pub required_runbooks: Vec<String>,
    /// Days after which the last training session is overdue (`warn`; `fail` past twice).
    /// Default: 90.
    pub training_interval_days: u32,
    /// Days after which the last drill is overdue (`warn`; `fail` past twice). Default: 60.
    pub drill_interval_days: u32,
    /// Fewest primary responders on call (fewer is `fail`). Default: 1.
    pub minimum_primary_responders: u32,
    /// Fewest secondary responders on call (fewer is `warn`). Default: 1.
    pub minimum_secondary_responders: u32,
    /// Hours a resolved critical alert may wait for its postmortem link (past it `warn`, past
    /// twice `fail`). Default: 24.
    pub postmortem_sla_hours: f64,
    /// Most open incidents tolerated: more is `fail`, exactly this many (when > 0) is `warn`.
    /// Default: 1.
    pub maximum_open_incidents: u32,
    /// Whether ChatOps must be ready (not ready is `warn`). Default: true.
    pub require_chatops: bool,
    /// Whether the paging channels are ready, used only when `aggregator_url` is empty; with
    /// an aggregator, readiness is read live from its channel health (at least one channel,
    /// none down). Default: false.
    pub chatops_ready: bool,
    /// Mean time to acknowledge at or above this is `warn`; <= 0 disables. Default: 30.
    pub mtta_warn_minutes: f64,
    /// Mean time to acknowledge at or above this is `fail`; <= 0 disables. Default: 60.
    pub mtta_fail_minutes: f64,
    /// Mean time to resolve at or above this is `warn`; <= 0 disables. Default: 180.
    pub mttr_warn_minutes: f64,
    /// Mean time to resolve at or above this is `fail`; <= 0 disables. Default: 360.
    pub mttr_fail_minutes: f64,
    /// Alert history older than this (hours since last fetched) is `warn`; <= 0 disables.
    /// Default: 24.
    pub metrics_stale_warn_hours: f64,
    /// Alert history older than this is `fail`; <= 0 disables. Default: 48.
    pub metrics_stale_fail_hours: f64,
    /// Whether a major incident must have happened (been reviewed) recently. Default: false.
    pub require_major_incident_history: bool,
    /// Days after which the last major incident is too old (`warn`). Default: 180.
    pub major_incident_review_interval_days: u32,
    /// `fail` at or above interval × multiplier days (>= 1.0). Default: 2.0.
    pub major_incident_fail_multiplier: f64,

    // --- live inputs
    /// Directory of Markdown runbooks with front matter. Default: empty, meaning the runbooks
    /// shipped in the binary (the repository's `docs/runbooks`).
    pub runbook_dir: String,
    /// Days after which a runbook's `last_reviewed` is overdue (`warn`), unless its front
    /// matter sets `review_interval_days`. Default: 90.
    pub runbook_review_days: u32,
    /// The on-call schedule (TOML). Default: empty, meaning no roster (no responders).
    pub roster_file: String,
    /// JSON-lines log of drills and training sessions, used only when `aggregator_url` is
    /// empty (with an aggregator they are stored in its journal database);
    /// `POST /api/v1/activities` appends to it. Default: `incident-activity.jsonl`.
    pub activity_log: String,
    /// Base URL of the aggregator whose alert history is read (`http://host:port`). Default:
    /// empty, meaning no alert history.
    pub aggregator_url: String,
    /// Optional bearer token for the aggregator's read API. Default: empty.
    pub aggregator_token: Secret,
    /// Timeout of one alert-history request, in seconds. Default: 5.
    pub aggregator_timeout_seconds: u64,
    /// Days of alert history MTTA and MTTR are averaged over. Default: 30.
    pub metrics_window_days: u32,
    /// Which alerts count as incidents. Default: `warning` (every alert).
    pub incident_min_severity: IncidentSeverity,

    // --- §3.8.6 gate
    /// Whether every `warn` issue blocks a deployment. Default: false.
    pub gate_block_on_warn: bool,
    /// Categories whose `warn` issues block a deployment. Default: `missing_runbooks`,
    /// `primary_roster`, `open_incidents`, `postmortem_backlog`, `metrics_mtta`, `metrics_mttr`.
    pub gate_warn_block_categories: Vec<String>,

    // --- HTTP
    /// Bearer token `POST /api/v1/activities` requires (it can satisfy the deployment gate).
    /// Default: empty, meaning the endpoint is disabled (403 naming this setting).
    pub api_token: Secret,
}

impl Default for IncidentResponseSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 60,
            required_runbooks: Vec::new(),
            training_interval_days: 90,
            drill_interval_days: 60,
            minimum_primary_responders: 1,
            minimum_secondary_responders: 1,
            postmortem_sla_hours: 24.0,
            maximum_open_incidents: 1,
            require_chatops: true,
            chatops_ready: false,
            mtta_warn_minutes: 30.0,
            mtta_fail_minutes: 60.0,
            mttr_warn_minutes: 180.0,
            mttr_fail_minutes: 360.0,
            metrics_stale_warn_hours: 24.0,
            metrics_stale_fail_hours: 48.0,
            require_major_incident_history: false,
            major_incident_review_interval_days: 180,
            major_incident_fail_multiplier: 2.0,
            runbook_dir: String::new(),
            runbook_review_days: 90,
            roster_file: String::new(),
            activity_log: "incident-activity.jsonl".into(),
            aggregator_url: String::new(),
            aggregator_token: Secret::default(),
            aggregator_timeout_seconds: 5,
            metrics_window_days: 30,
            incident_min_severity: IncidentSeverity::Warning,
            gate_block_on_warn: false,
            gate_warn_block_categories: DEFAULT_WARN_BLOCK_CATEGORIES
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            api_token: Secret::default(),
        }
    }
}

fn invalid(key: &str, detail: impl Into<String>) -> Invalid {
    Invalid::new(format!("incident_response.{key}"), detail)
}

impl Section for IncidentResponseSettings {
    fn name(&self) -> &'static str {
        "incident_response"
    }

    fn list_keys() -> &'static [&'static str] {
        LIST_KEYS
    }

    /// Rejects values that cannot work, naming the key.
    fn validate(&self) -> Result<(), Invalid> {
        self.check()
    }
}

impl IncidentResponseSettings {
    fn check(&self) -> Result<(), Invalid> {
        for (key, value, example) in [
            ("interval_seconds", self.interval_seconds, "60"),
            (
                "aggregator_timeout_seconds",
                self.aggregator_timeout_seconds,
                "5",
            ),
            (
                "runbook_review_days",
                u64::from(self.runbook_review_days),
                "90",
            ),
            (
                "metrics_window_days",
                u64::from(self.metrics_window_days),
                "30",
            ),
        ] {
            if value == 0 {
                return Err(invalid(
                    key,
                    format!("must be at least 1: set e.g. {example}"),
                ));
            }
        }
        for (key, value) in [
            ("postmortem_sla_hours", self.postmortem_sla_hours),
            ("mtta_warn_minutes", self.mtta_warn_minutes),
            ("mtta_fail_minutes", self.mtta_fail_minutes),
            ("mttr_warn_minutes", self.mttr_warn_minutes),
            ("mttr_fail_minutes", self.mttr_fail_minutes),
            ("metrics_stale_warn_hours", self.metrics_stale_warn_hours),
            ("metrics_stale_fail_hours", self.metrics_stale_fail_hours),
        ] {
            if !value.is_finite() {
                return Err(invalid(
                    key,
                    format!("is {value}: set a finite number (<= 0 disables the threshold)"),
                ));
            }
        }
        if self.postmortem_sla_hours < 0.0 {
            return Err(invalid(
                "postmortem_sla_hours",
                "must be >= 0: set the hours a postmortem may take, e.g. 24",
            ));
        }
        if !self.major_incident_fail_multiplier.is_finite()
            || self.major_incident_fail_multiplier < 1.0
        {
            return Err(invalid(
                "major_incident_fail_multiplier",
                format!(
                    "is {}: set a number >= 1.0, e.g. 2.0",
                    self.major_incident_fail_multiplier
                ),
            ));
        }
        let url = self.aggregator_url.trim();
        if !url.is_empty() {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .unwrap_or_default();
            if rest.is_empty() {
                return Err(invalid(
                    "aggregator_url",
                    format!("is {url:?}: set the aggregator's base URL, e.g. http://aggregator:8080, or leave it empty"),
                ));
            }
        }
        if self
            .required_runbooks
            .iter()
            .any(|r| r.trim().contains(char::is_whitespace))
        {
            return Err(invalid(
                "required_runbooks",
                "holds an id with spaces inside: runbook ids are single words like redis-cache-outage",
            ));
        }
        Ok(())
    }

    /// The policy the evaluator grades with: thresholds <= 0 become `None` (disabled), lists
    /// normalised.
    pub fn policy(&self) -> IncidentResponsePolicy {
        IncidentResponsePolicy {
            required_runbooks: normalize(&self.required_runbooks),
            training_interval_days: f64::from(self.training_interval_days),
            drill_interval_days: f64::from(self.drill_interval_days),
            minimum_primary_responders: self.minimum_primary_responders as usize,
            minimum_secondary_responders: self.minimum_secondary_responders as usize,
            postmortem_sla_hours: finite_non_negative(self.postmortem_sla_hours),
            maximum_open_incidents: self.maximum_open_incidents as usize,
            require_chatops: self.require_chatops,
            mtta_warn_minutes: positive(self.mtta_warn_minutes),
            mtta_fail_minutes: positive(self.mtta_fail_minutes),
            mttr_warn_minutes: positive(self.mttr_warn_minutes),
            mttr_fail_minutes: positive(self.mttr_fail_minutes),
            metrics_stale_warn_hours: positive(self.metrics_stale_warn_hours),
            metrics_stale_fail_hours: positive(self.metrics_stale_fail_hours),
            require_major_incident_history: self.require_major_incident_history,
            major_incident_review_interval_days: f64::from(
                self.major_incident_review_interval_days,
            ),
            major_incident_fail_multiplier: if self.major_incident_fail_multiplier.is_finite() {
                self.major_incident_fail_multiplier.max(1.0)
            } else {
                1.0
            },
            interval_seconds: self.interval_seconds,
        }
    }

    /// The gate settings (§3.8.6): categories lower-cased, trimmed, de-duplicated.
    pub fn gate_settings(&self) -> GateSettings {
        GateSettings {
            block_on_warn: self.gate_block_on_warn,
            warn_block_categories: normalize(
                &self
                    .gate_warn_block_categories
                    .iter()
                    .map(|c| c.to_ascii_lowercase())
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

/// What turns a snapshot into a deployment decision (§3.8.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateSettings {
    pub block_on_warn: bool,
    pub warn_block_categories: Vec<String>,
}

impl Default for GateSettings {
    fn default() -> Self {
        IncidentResponseSettings::default().gate_settings()
    }
}

/// The §3.8.1 policy as the evaluator applies it. Disabled thresholds are `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentResponsePolicy {
    pub required_runbooks: Vec<String>,
    pub training_interval_days: f64,
    pub drill_interval_days: f64,
    pub minimum_primary_responders: usize,
    pub minimum_secondary_responders: usize,
    pub postmortem_sla_hours: f64,
    pub maximum_open_incidents: usize,
    pub require_chatops: bool,
    pub mtta_warn_minutes: Option<f64>,
    pub mtta_fail_minutes: Option<f64>,
    pub mttr_warn_minutes: Option<f64>,
    pub mttr_fail_minutes: Option<f64>,
    pub metrics_stale_warn_hours: Option<f64>,
    pub metrics_stale_fail_hours: Option<f64>,
    pub require_major_incident_history: bool,
    pub major_incident_review_interval_days: f64,
    /// Always >= 1.0.
    pub major_incident_fail_multiplier: f64,
    /// Seconds between evaluations, stated in each snapshot.
    pub interval_seconds: u64,
}

impl Default for IncidentResponsePolicy {
    fn default() -> Self {
        IncidentResponseSettings::default().policy()
    }
}

fn positive(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then_some(v)
}

fn finite_non_negative(v: f64) -> f64 {
    if v.is_finite() {
        v.max(0.0)
    } else {
        0.0
    }
}

/// Trims, drops blanks and duplicates, keeps the first-seen order.
pub fn normalize(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let item = item.trim();
        if !item.is_empty() && !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = IncidentResponseSettings::default();
        assert!(s.enabled);
        assert_eq!(s.interval_seconds, 60);
        assert!(s.required_runbooks.is_empty());
        assert_eq!((s.training_interval_days, s.drill_interval_days), (90, 60));
        assert_eq!(
            (s.minimum_primary_responders, s.minimum_secondary_responders),
            (1, 1)
        );
        assert_eq!(s.postmortem_sla_hours, 24.0);
        assert_eq!(s.maximum_open_incidents, 1);
        assert!(s.require_chatops && !s.chatops_ready);
        assert_eq!((s.mtta_warn_minutes, s.mtta_fail_minutes), (30.0, 60.0));
        assert_eq!((s.mttr_warn_minutes, s.mttr_fail_minutes), (180.0, 360.0));
        assert_eq!(
            (s.metrics_stale_warn_hours, s.metrics_stale_fail_hours),
            (24.0, 48.0)
        );
        assert!(!s.require_major_incident_history);
        assert_eq!(s.major_incident_review_interval_days, 180);
        assert_eq!(s.major_incident_fail_multiplier, 2.0);
        assert_eq!(
            s.runbook_dir, "",
            "empty = the runbooks shipped in the binary"
        );
        assert_eq!(s.runbook_review_days, 90);
        assert_eq!(s.roster_file, "");
        assert_eq!(s.activity_log, "incident-activity.jsonl");
        assert_eq!(s.aggregator_url, "");
        assert!(s.aggregator_token.is_empty());
        assert!(
            s.api_token.is_empty(),
            "activities are disabled until a token is set"
        );
        assert_eq!(s.metrics_window_days, 30);
        assert!(!s.gate_block_on_warn);
        assert_eq!(s.gate_warn_block_categories, DEFAULT_WARN_BLOCK_CATEGORIES);
        assert_eq!(s.validate(), Ok(()));
        let p = s.policy();
        assert_eq!(p.mtta_warn_minutes, Some(30.0));
        assert_eq!(p.major_incident_fail_multiplier, 2.0);
    }

    #[test]
    fn non_positive_thresholds_are_disabled() {
        let p = IncidentResponseSettings {
            mtta_warn_minutes: 0.0,
            mttr_fail_minutes: -1.0,
            metrics_stale_warn_hours: 0.0,
            ..Default::default()
        }
        .policy();
        assert_eq!(p.mtta_warn_minutes, None);
        assert_eq!(p.mttr_fail_minutes, None);
        assert_eq!(p.metrics_stale_warn_hours, None);
        assert_eq!(p.mtta_fail_minutes, Some(60.0));
    }

    #[test]
    fn impossible_values_name_their_key() {
        let cases: Vec<(IncidentResponseSettings, &str)> = vec![
            (
                IncidentResponseSettings {
                    interval_seconds: 0,
                    ..Default::default()
                },
                "interval_seconds",
            ),
            (
                IncidentResponseSettings {
                    runbook_review_days: 0,
                    ..Default::default()
                },
                "runbook_review_days",
            ),
            (
                IncidentResponseSettings {
                    metrics_window_days: 0,
                    ..Default::default()
                },
                "metrics_window_days",
            ),
            (
                IncidentResponseSettings {
                    aggregator_timeout_seconds: 0,
                    ..Default::default()
                },
                "aggregator_timeout_seconds",
            ),
            (
                IncidentResponseSettings {
                    mtta_warn_minutes: f64::NAN,
                    ..Default::default()
                },
                "mtta_warn_minutes",
            ),
            (
                IncidentResponseSettings {
                    postmortem_sla_hours: -1.0,
                    ..Default::default()
                },
                "postmortem_sla_hours",
            ),
            (
                IncidentResponseSettings {
                    major_incident_fail_multiplier: 0.5,
                    ..Default::default()
                },
                "major_incident_fail_multiplier",
            ),
            (
                IncidentResponseSettings {
                    aggregator_url: "aggregator:8080".into(),
                    ..Default::default()
                },
                "aggregator_url",
            ),
            (
                IncidentResponseSettings {
                    aggregator_url: "https://".into(),
                    ..Default::default()
                },
                "aggregator_url",
            ),
            (
                IncidentResponseSettings {
                    required_runbooks: vec!["redis cache".into()],
                    ..Default::default()
                },
                "required_runbooks",
            ),
        ];
        for (settings, key) in cases {
            let err = settings.validate().expect_err(key);
            assert_eq!(err.key, format!("incident_response.{key}"));
            assert!(
                err.to_string()
                    .contains(&format!("`incident_response.{key}`")),
                "{err}"
            );
        }
    }

    #[test]
    fn section_parses_with_unknown_keys_rejected() {
        let s: IncidentResponseSettings = toml::from_str(
            "required_runbooks = [\"a\", \" a\", \"b\"]\naggregator_token = \"t\"\nincident_min_severity = \"critical\"\n",
        )
        .expect("parse");
        assert_eq!(s.policy().required_runbooks, vec!["a", "b"]);
        assert_eq!(s.aggregator_token.expose(), "t");
        assert_eq!(s.incident_min_severity, IncidentSeverity::Critical);
        assert!(toml::from_str::<IncidentResponseSettings>("drill_days = 5\n").is_err());
        let g = IncidentResponseSettings {
            gate_warn_block_categories: vec![" Chatops".into(), "chatops".into()],
            ..Default::default()
        }
        .gate_settings();
        assert_eq!(g.warn_block_categories, vec!["chatops"]);
    }
}
