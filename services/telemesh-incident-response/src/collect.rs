//! Owns [`Collector`]: gathers an [`IncidentResponseState`] from the live inputs — the
//! runbooks (a directory, or those shipped in the binary), the roster file, the activity log
//! (the aggregator's journal database, or a local file) and the aggregator's alert history —
//! at a given moment. Nothing here fails: every input problem becomes an [`InputFinding`].
//!
//! The last alert history fetched is kept, so when the aggregator is briefly unreachable the
//! grading goes on with it and its age shows as `metrics_staleness`.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::activity;
use crate::alerts::{self, Alert, AlertHistoryClient};
use crate::roster;
use crate::runbooks;
use crate::settings::IncidentResponseSettings;
use crate::state::{AlertHistoryStatus, IncidentResponseState, InputFinding, RunbookReview};

/// Reads the inputs named by the settings.
#[derive(Debug)]
pub struct Collector {
    settings: IncidentResponseSettings,
    client: Result<Option<AlertHistoryClient>, String>,
    /// The last successful fetch: when, and what.
    cache: Option<(DateTime<Utc>, Vec<Alert>)>,
    activities: activity::ActivitySink,
    /// The last activity read without problems, graded on while the aggregator is unreachable.
    activity_cache: Option<activity::ActivityLog>,
}

fn days(d: chrono::Duration) -> f64 {
    (d.num_milliseconds() as f64 / 86_400_000.0).max(0.0)
}

impl Collector {
    pub fn new(settings: IncidentResponseSettings) -> Self {
        let url = settings.aggregator_url.trim();
        let client = if url.is_empty() {
            Ok(None)
        } else {
            AlertHistoryClient::new(
                url,
                settings.aggregator_token.clone(),
                Duration::from_secs(settings.aggregator_timeout_seconds.max(1)),
            )
            .map(Some)
            .map_err(|e| e.to_string())
        };
        Self {
            activities: activity::ActivitySink::from_settings(&settings),
            activity_cache: None,
            settings,
            client,
            cache: None,
        }
    }

    /// The settings read from.
    pub fn settings(&self) -> &IncidentResponseSettings {
        &self.settings
    }

    /// Gathers the state at `now`.
    pub async fn collect(&mut self, now: DateTime<Utc>) -> IncidentResponseState {
        let mut state = IncidentResponseState {
            chatops_ready: self.settings.chatops_ready,
            ..IncidentResponseState::default()
        };
        self.runbooks(&mut state, now);
        self.activities(&mut state, now).await;
        self.roster(&mut state, now);
        self.alert_history(&mut state, now).await;
        state
    }

    fn runbooks(&self, state: &mut IncidentResponseState, now: DateTime<Utc>) {
        let dir = self.settings.runbook_dir.trim();
        let scan = if dir.is_empty() {
            runbooks::scan_embedded()
        } else {
            runbooks::scan(Path::new(dir))
        };
        for problem in scan.problems {
            state
                .findings
                .push(InputFinding::warn("runbook_file", problem));
        }
        let today = now.date_naive();
        for r in scan.runbooks {
            state.available_runbooks.push(r.id.clone());
            state.runbooks.push(RunbookReview {
                age_days: (today - r.last_reviewed).num_days(),
                interval_days: r
                    .review_interval_days
                    .unwrap_or(self.settings.runbook_review_days),
                id: r.id,
                owner: r.owner,
                file: r.file,
                last_reviewed: r.last_reviewed,
            });
        }
    }

    async fn activities(&mut self, state: &mut IncidentResponseState, now: DateTime<Utc>) {
        let mut log = self.activities.read().await;
        if log.problems.is_empty() {
            self.activity_cache = Some(log.clone());
        } else if let Some(cached) = &self.activity_cache {
            log.last_drill = log.last_drill.or_else(|| cached.last_drill.clone());
            log.last_training = log.last_training.or_else(|| cached.last_training.clone());
        }
        for problem in log.problems {
            state
                .findings
                .push(InputFinding::warn("activity_log", problem));
        }
        state.training_age_days = log.last_training.map(|a| days(now - a.at));
        state.drill_age_days = log.last_drill.map(|a| days(now - a.at));
    }

    fn roster(&self, state: &mut IncidentResponseState, now: DateTime<Utc>) {
        let file = self.settings.roster_file.trim();
        if file.is_empty() {
            state.findings.push(InputFinding::warn(
                "roster_file",
                "no on-call roster configured: set [incident_response] roster_file to the schedule (see docs/incident-response.md)",
            ));
            return;
        }
        let reading = roster::read(Path::new(file), now);
        if let Some(problem) = reading.problem {
            state
                .findings
                .push(InputFinding::warn("roster_file", problem));
        }
        state.primary_oncall = reading.primary;
        state.secondary_oncall = reading.secondary;
        state.rotation = reading.rotation;
    }

    async fn alert_history(&mut self, state: &mut IncidentResponseState, now: DateTime<Utc>) {
        let client = match &self.client {
            Ok(Some(client)) => client,
            Ok(None) => {
                state.findings.push(InputFinding::warn(
                    "alert_history",
                    "no alert history configured: set [incident_response] aggregator_url so open incidents, MTTA/MTTR and the postmortem backlog are graded",
                ));
                return;
            }
            Err(e) => {
                state.alert_history.configured = true;
                state.alert_history.error = Some(e.clone());
                state.findings.push(InputFinding::warn(
                    "alert_history",
                    format!("alert history client cannot be built: {e}"),
                ));
                return;
            }
        };
        state.alert_history.configured = true;
        match client.fetch_channels().await {
            Ok(channels) => {
                let down: Vec<&str> = channels
                    .iter()
                    .filter(|(_, c)| c.down)
                    .map(|(name, _)| name.as_str())
                    .collect();
                state.chatops_ready = !channels.is_empty() && down.is_empty();
                state.chatops_detail = if channels.is_empty() {
                    Some("the aggregator has no notification channels: add [[alerting.channels]] so pages reach people".into())
                } else if !down.is_empty() {
                    Some(format!(
                        "notification channels down: {}; see GET /api/v1/alerts/channels on the aggregator",
                        down.join(", ")
                    ))
                } else {
                    None
                };
            }
            Err(e) => {
                state.chatops_ready = false;
                state.chatops_detail = Some(format!("channel health unknown: {e}"));
            }
        }
        match client.fetch().await {
            Ok(alerts) => self.cache = Some((now, alerts)),
            Err(e) => {
                let message = match &self.cache {
                    Some((at, _)) => format!(
                        "{e}; grading the alert history fetched at {}",
                        at.to_rfc3339()
                    ),
                    None => format!("{e}; open incidents and reliability metrics are unknown"),
                };
                state.alert_history.error = Some(e.to_string());
                state
                    .findings
                    .push(InputFinding::warn("alert_history", message));
            }
        }
        let Some((fetched_at, alerts)) = &self.cache else {
            return;
        };
        let facts = alerts::facts(
            alerts,
            *fetched_at,
            now,
            self.settings.metrics_window_days,
            self.settings.incident_min_severity,
        );
        state.alert_history = AlertHistoryStatus {
            configured: true,
            fetched_at: Some(*fetched_at),
            alerts: alerts.len(),
            error: state.alert_history.error.take(),
        };
        state.open_incidents = facts.open_incidents;
        state.postmortem_backlog_hours = Some(facts.postmortem_backlog_hours);
        state.postmortems_outstanding = facts.postmortems_outstanding;
        state.last_major_incident_age_days = facts.last_major_incident_age_days;
        state.metrics = Some(facts.metrics);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[tokio::test]
    async fn files_are_read_and_problems_become_findings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runbooks = dir.path().join("runbooks");
        std::fs::create_dir(&runbooks).expect("mkdir");
        std::fs::write(
            runbooks.join("a.md"),
            "---\nid: a\nowner: ops\nlast_reviewed: 2026-01-01\n---\n",
        )
        .expect("write");
        std::fs::write(runbooks.join("b.md"), "---\nid: b\n").expect("write");
        let roster = dir.path().join("roster.toml");
        std::fs::write(
            &roster,
            "start = \"2026-11-02\"\n[[rotation]]\nprimary = [\"alice\"]\nsecondary = [\"bob\"]\n",
        )
        .expect("write");
        let log = dir.path().join("log.jsonl");
        std::fs::write(
            &log,
            "{\"kind\":\"drill\",\"at\":\"2026-11-09T12:00:00Z\",\"by\":\"a\"}\n",
        )
        .expect("write");
        let mut c = Collector::new(IncidentResponseSettings {
            runbook_dir: runbooks.display().to_string(),
            roster_file: roster.display().to_string(),
            activity_log: log.display().to_string(),
            ..Default::default()
        });
        let now = Utc
            .with_ymd_and_hms(2026, 11, 10, 12, 0, 0)
            .single()
            .expect("time");
        let s = c.collect(now).await;
        assert_eq!(s.available_runbooks, vec!["a"]);
        assert_eq!(s.runbooks[0].age_days, 313);
        assert_eq!(s.runbooks[0].interval_days, 90);
        assert_eq!(s.drill_age_days, Some(1.0));
        assert_eq!(s.training_age_days, None);
        assert_eq!(s.primary_oncall, vec!["alice"]);
        let cats: Vec<&str> = s.findings.iter().map(|f| f.category).collect();
        assert_eq!(cats, ["runbook_file", "alert_history"]);
        assert!(s.findings[0].message.contains("b.md"));
        assert!(s.findings[1]
            .message
            .contains("no alert history configured"));
        assert!(!s.alert_history.configured);
    }
}
