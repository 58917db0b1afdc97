//! Owns [`IncidentResponseState`]: the plain data gathered from the live inputs (runbooks,
//! roster, activity log, alert history) that the evaluator grades (DOMAINS.md §3.8.2, with
//! every field computed from live data instead of configuration). No I/O and no grading here.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use telemesh_core::Grade;

/// Everything one collection learned, ages computed at the collection time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentResponseState {
    /// Ids of the runbooks whose front matter parsed, in file-name order.
    pub available_runbooks: Vec<String>,
    /// One entry per parsed runbook, with its review age.
    pub runbooks: Vec<RunbookReview>,
    /// Days since the last training session; `None` when none is recorded.
    pub training_age_days: Option<f64>,
    /// Days since the last drill; `None` when none is recorded.
    pub drill_age_days: Option<f64>,
    /// Who is primary on call now.
    pub primary_oncall: Vec<String>,
    /// Who is secondary on call now.
    pub secondary_oncall: Vec<String>,
    /// Where the current rotation came from, when a roster was read.
    pub rotation: Option<RotationInfo>,
    /// Whether alert history was available (fetched now, or a cached earlier fetch).
    pub alert_history: AlertHistoryStatus,
    /// Ids of the open incidents (alerts not resolved). Empty without alert history.
    pub open_incidents: Vec<String>,
    /// Hours since the oldest resolved critical alert still without a postmortem link was
    /// resolved (0.0 when none is outstanding); `None` without alert history.
    pub postmortem_backlog_hours: Option<f64>,
    /// Ids of the resolved critical alerts still without a postmortem link.
    pub postmortems_outstanding: Vec<String>,
    pub chatops_ready: bool,
    /// Why chatops is not ready (e.g. channels down), when known.
    pub chatops_detail: Option<String>,
    /// Days since the newest critical alert was opened; `None` when there is none.
    pub last_major_incident_age_days: Option<f64>,
    /// Reliability metrics from the alert history; `None` without alert history.
    pub metrics: Option<IncidentResponseMetrics>,
    /// Problems with the inputs themselves (malformed files, unreachable aggregator).
    pub findings: Vec<InputFinding>,
}

/// One runbook read from the runbook directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RunbookReview {
    pub id: String,
    pub owner: String,
    /// The file name within the runbook directory.
    pub file: String,
    pub last_reviewed: NaiveDate,
    /// Whole days since `last_reviewed` (negative when it lies in the future).
    pub age_days: i64,
    /// The runbook's own `review_interval_days`, else the configured default.
    pub interval_days: u32,
}

/// The rotation on call now.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationInfo {
    /// The roster file read.
    pub file: String,
    /// 0-based index of the current rotation in the file.
    pub index: usize,
    /// How many rotations cycle.
    pub rotations: usize,
    /// When the current rotation took over and when it hands off (UTC).
    pub started_at: DateTime<Utc>,
    pub handoff_at: DateTime<Utc>,
    /// The roster's time zone as written.
    pub timezone: String,
}

/// Where the alert-history facts came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertHistoryStatus {
    /// True when `aggregator_url` is set.
    pub configured: bool,
    /// When the facts in use were fetched; `None` when never.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Alerts in the history in use.
    pub alerts: usize,
    /// Why the latest fetch failed, if it did.
    pub error: Option<String>,
}

/// Reliability metrics (§3.8.2 `IncidentResponseMetrics`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentResponseMetrics {
    /// Mean minutes from opened to acknowledged over the window.
    pub mtta_minutes: Option<f64>,
    /// Mean minutes from opened to resolved over the window.
    pub mttr_minutes: Option<f64>,
    /// Acknowledged incidents in the window (0 is `None`).
    pub acknowledged_incidents: Option<u64>,
    /// Resolved incidents in the window (0 is `None`).
    pub resolved_incidents: Option<u64>,
    pub sample_window_days: Option<f64>,
    /// Hours since the alert history in use was fetched.
    pub data_age_hours: Option<f64>,
}

impl IncidentResponseMetrics {
    /// True when at least one of MTTA, MTTR, acknowledged, resolved is known and non-zero
    /// (age alone does not count, §3.8.2).
    pub fn has_signal(&self) -> bool {
        self.mtta_minutes.is_some_and(|v| v != 0.0)
            || self.mttr_minutes.is_some_and(|v| v != 0.0)
            || self.acknowledged_incidents.is_some_and(|v| v != 0)
            || self.resolved_incidents.is_some_and(|v| v != 0)
    }
}

/// A problem with an input (file or endpoint), graded as an issue of `category`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFinding {
    /// `runbook_file`, `roster_file`, `activity_log` or `alert_history`.
    pub category: &'static str,
    pub severity: Grade,
    pub message: String,
}

impl InputFinding {
    pub fn warn(category: &'static str, message: impl Into<String>) -> Self {
        Self {
            category,
            severity: Grade::Warn,
            message: message.into(),
        }
    }
}
