//! Owns the aggregator's alert history: the HTTP client of
//! `GET {aggregator_url}/api/v1/alerts?state=all&limit=1000` and the pure derivation of open
//! incidents, MTTA/MTTR, the postmortem backlog and the last major incident from it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use telemesh_core::config::Secret;

use crate::settings::IncidentSeverity;
use crate::state::IncidentResponseMetrics;

/// The path of the aggregator's alert list.
pub const ALERTS_PATH: &str = "/api/v1/alerts";
/// The path of the aggregator's notification-channel health.
pub const CHANNELS_PATH: &str = "/api/v1/alerts/channels";
/// The snapshot kind of the alert drill's synthetic alert (never an incident).
pub const DRILL_KIND: &str = "telemesh.drill";
/// How many alerts one fetch asks for.
pub const FETCH_LIMIT: usize = 1000;

/// Severity of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    Warning,
    Critical,
    /// A severity this service does not know (treated as `warning`).
    #[serde(other)]
    Other,
}

/// Lifecycle state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Acknowledged,
    Resolved,
    /// A state this service does not know (open unless `resolved_at` is set).
    #[serde(other)]
    Other,
}

/// One alert of the aggregator's history (unknown fields are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    #[serde(default)]
    pub fingerprint: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub component: Option<String>,
    pub severity: AlertSeverity,
    pub state: AlertState,
    #[serde(default)]
    pub summary: String,
    /// When the first page went out; `None` while pending (waiting out `group_wait`) or when
    /// it cleared before any page. Such alerts never paged anyone and are not incidents.
    #[serde(default)]
    pub opened_at: Option<DateTime<Utc>>,
    /// When the condition was first seen.
    #[serde(default)]
    pub pending_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub resolution: Option<String>,
    #[serde(default)]
    pub postmortem_url: Option<String>,
}

impl Alert {
    /// True unless the alert is resolved.
    pub fn is_open(&self) -> bool {
        self.state != AlertState::Resolved && self.resolved_at.is_none()
    }

    /// True for the synthetic alert of `telemesh alert drill`.
    pub fn is_drill(&self) -> bool {
        self.kind == DRILL_KIND
    }

    /// An alert is an incident when it paged someone (has `opened_at`), is not a drill, and
    /// is at least `min` severe.
    fn counts_as_incident(&self, min: IncidentSeverity) -> bool {
        self.opened_at.is_some()
            && !self.is_drill()
            && match min {
                IncidentSeverity::Warning => true,
                IncidentSeverity::Critical => self.severity == AlertSeverity::Critical,
            }
    }
}

/// The list answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertList {
    #[serde(default)]
    pub count: usize,
    pub alerts: Vec<Alert>,
}

/// The health of one notification channel (unknown fields are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStatus {
    #[serde(default)]
    pub kind: String,
    /// True after a notification exhausted its attempts, until the next success.
    #[serde(default)]
    pub down: bool,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The channel-health answer: channel name → health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelList {
    pub channels: std::collections::BTreeMap<String, ChannelStatus>,
}

/// Why the alert history could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum AlertHistoryError {
    #[error("cannot reach the aggregator at {url} ({detail}): check [incident_response] aggregator_url and that the aggregator is up")]
    Unreachable { url: String, detail: String },
    #[error("the aggregator answered {status} at {url}: {hint}")]
    Status {
        url: String,
        status: u16,
        hint: String,
    },
    #[error("the aggregator's alert list at {url} is not the expected JSON ({detail}); is aggregator_url the aggregator?")]
    Decode { url: String, detail: String },
}

/// Reads the aggregator's alert history.
#[derive(Debug, Clone)]
pub struct AlertHistoryClient {
    client: reqwest::Client,
    url: String,
    channels_url: String,
    token: Secret,
}

impl AlertHistoryClient {
    /// A client of the aggregator at `base_url` (`http://host:port`), optionally with a bearer
    /// token, giving up on a request after `timeout`.
    pub fn new(
        base_url: &str,
        token: Secret,
        timeout: Duration,
    ) -> Result<Self, AlertHistoryError> {
        let base = base_url.trim().trim_end_matches('/');
        let url = format!("{base}{ALERTS_PATH}?state=all&limit={FETCH_LIMIT}");
        let channels_url = format!("{base}{CHANNELS_PATH}");
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| AlertHistoryError::Unreachable {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            client,
            url,
            channels_url,
            token,
        })
    }

    /// The URL fetched.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the history (newest first as the aggregator sends it).
    pub async fn fetch(&self) -> Result<Vec<Alert>, AlertHistoryError> {
        self.get_json::<AlertList>(&self.url)
            .await
            .map(|l| l.alerts)
    }

    /// Fetches the health of the aggregator's notification channels.
    pub async fn fetch_channels(
        &self,
    ) -> Result<std::collections::BTreeMap<String, ChannelStatus>, AlertHistoryError> {
        self.get_json::<ChannelList>(&self.channels_url)
            .await
            .map(|l| l.channels)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, AlertHistoryError> {
        let mut request = self.client.get(url);
        if !self.token.is_empty() {
            request = request.bearer_auth(self.token.expose());
        }
        let unreachable = |e: reqwest::Error| AlertHistoryError::Unreachable {
            url: url.to_owned(),
            detail: error_chain(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 => "set [incident_response] aggregator_token to a token the aggregator accepts".to_owned(),
                404 => "the aggregator's alerting is disabled or missing: set [alerting] enabled = true there, or check aggregator_url".to_owned(),
                _ => "see the aggregator's logs".to_owned(),
            };
            return Err(AlertHistoryError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                hint,
            });
        }
        let body = response.bytes().await.map_err(unreachable)?;
        serde_json::from_slice::<T>(&body).map_err(|e| AlertHistoryError::Decode {
            url: url.to_owned(),
            detail: e.to_string(),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What the alert history says, at `now`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFacts {
    pub open_incidents: Vec<String>,
    /// Hours since the oldest outstanding postmortem's alert was resolved (0.0 when none).
    pub postmortem_backlog_hours: f64,
    pub postmortems_outstanding: Vec<String>,
    pub last_major_incident_age_days: Option<f64>,
    pub metrics: IncidentResponseMetrics,
}

fn hours(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 3_600_000.0
}

/// Derives the facts from `alerts` fetched at `fetched_at`, at `now`: open incidents (not
/// resolved, of at least `min_severity`), MTTA/MTTR over alerts opened within the last
/// `window_days`, the postmortem backlog (resolved critical alerts without a postmortem
/// link), the last major (critical) incident, and the data age (`now - fetched_at`).
pub fn facts(
    alerts: &[Alert],
    fetched_at: DateTime<Utc>,
    now: DateTime<Utc>,
    window_days: u32,
    min_severity: IncidentSeverity,
) -> AlertFacts {
    let incidents: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.counts_as_incident(min_severity))
        .collect();
    let open_incidents = incidents
        .iter()
        .filter(|a| a.is_open())
        .map(|a| a.id.clone())
        .collect();
    let window_start = now - chrono::Duration::days(i64::from(window_days));
    let opened = |a: &Alert| a.opened_at.unwrap_or(now);
    let in_window: Vec<&&Alert> = incidents
        .iter()
        .filter(|a| opened(a) >= window_start)
        .collect();
    let ack: Vec<f64> = in_window
        .iter()
        .filter_map(|a| {
            a.acknowledged_at
                .map(|t| hours(t - opened(a)).max(0.0) * 60.0)
        })
        .collect();
    let res: Vec<f64> = in_window
        .iter()
        .filter_map(|a| a.resolved_at.map(|t| hours(t - opened(a)).max(0.0) * 60.0))
        .collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let critical: Vec<&&Alert> = incidents
        .iter()
        .filter(|a| a.severity == AlertSeverity::Critical)
        .collect();
    let outstanding: Vec<&&Alert> = critical
        .iter()
        .copied()
        .filter(|a| !a.is_open())
        .filter(|a| {
            a.postmortem_url
                .as_deref()
                .is_none_or(|u| u.trim().is_empty())
        })
        .collect();
    let postmortem_backlog_hours = outstanding
        .iter()
        .map(|a| hours(now - a.resolved_at.unwrap_or(now)).max(0.0))
        .reduce(f64::max)
        .unwrap_or(0.0);
    let last_major_incident_age_days = critical
        .iter()
        .filter_map(|a| a.opened_at)
        .max()
        .map(|t| (hours(now - t) / 24.0).max(0.0));
    AlertFacts {
        open_incidents,
        postmortem_backlog_hours,
        postmortems_outstanding: outstanding.iter().map(|a| a.id.clone()).collect(),
        last_major_incident_age_days,
        metrics: IncidentResponseMetrics {
            mtta_minutes: mean(&ack),
            mttr_minutes: mean(&res),
            acknowledged_incidents: (!ack.is_empty()).then_some(ack.len() as u64),
            resolved_incidents: (!res.is_empty()).then_some(res.len() as u64),
            sample_window_days: Some(f64::from(window_days)),
            data_age_hours: Some(hours(now - fetched_at).max(0.0)),
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn alert(
        id: &str,
        severity: AlertSeverity,
        opened_h: i64,
        ack_min: Option<i64>,
        res_min: Option<i64>,
    ) -> Alert {
        let opened_at = now() - Duration::hours(opened_h);
        let resolved_at = res_min.map(|m| opened_at + Duration::minutes(m));
        Alert {
            id: id.into(),
            fingerprint: "f".into(),
            kind: "telemetry.kafka.readiness".into(),
            service: "kafka-readiness".into(),
            component: None,
            severity,
            state: if resolved_at.is_some() {
                AlertState::Resolved
            } else if ack_min.is_some() {
                AlertState::Acknowledged
            } else {
                AlertState::Firing
            },
            summary: "s".into(),
            opened_at: Some(opened_at),
            pending_since: Some(opened_at),
            acknowledged_at: ack_min.map(|m| opened_at + Duration::minutes(m)),
            acknowledged_by: None,
            resolved_at,
            resolution: None,
            postmortem_url: None,
        }
    }

    #[test]
    fn facts_follow_the_history() {
        let mut with_pm = alert("d", AlertSeverity::Critical, 100, Some(5), Some(60));
        with_pm.postmortem_url = Some("https://wiki/pm/d".into());
        let alerts = vec![
            alert("a", AlertSeverity::Warning, 1, None, None),
            alert("b", AlertSeverity::Critical, 2, Some(10), None),
            // resolved 50 h ago, no postmortem
            alert("c", AlertSeverity::Critical, 52, Some(20), Some(120)),
            with_pm,
            // outside the 30-day window: not in MTTA/MTTR
            alert("e", AlertSeverity::Warning, 24 * 40, Some(600), Some(6000)),
        ];
        let f = facts(
            &alerts,
            now() - Duration::hours(2),
            now(),
            30,
            IncidentSeverity::Warning,
        );
        assert_eq!(f.open_incidents, vec!["a", "b"]);
        assert_eq!(f.postmortems_outstanding, vec!["c"]);
        assert!((f.postmortem_backlog_hours - 50.0).abs() < 1e-9);
        assert_eq!(f.metrics.acknowledged_incidents, Some(3));
        assert_eq!(f.metrics.mtta_minutes, Some((10.0 + 20.0 + 5.0) / 3.0));
        assert_eq!(f.metrics.resolved_incidents, Some(2));
        assert_eq!(f.metrics.mttr_minutes, Some(90.0));
        assert_eq!(f.metrics.data_age_hours, Some(2.0));
        assert_eq!(f.metrics.sample_window_days, Some(30.0));
        assert!((f.last_major_incident_age_days.expect("major") - 2.0 / 24.0).abs() < 1e-9);
        let critical_only = facts(&alerts, now(), now(), 30, IncidentSeverity::Critical);
        assert_eq!(critical_only.open_incidents, vec!["b"]);
        // never paged (pending) and drills are not incidents
        let mut pending = alert("p", AlertSeverity::Critical, 0, None, None);
        pending.opened_at = None;
        let mut drill = alert("d", AlertSeverity::Critical, 0, None, None);
        drill.kind = DRILL_KIND.into();
        let f = facts(
            &[pending, drill],
            now(),
            now(),
            30,
            IncidentSeverity::Warning,
        );
        assert!(f.open_incidents.is_empty());
        assert_eq!(f.last_major_incident_age_days, None);
    }

    #[test]
    fn an_empty_history_has_no_signal() {
        let f = facts(&[], now(), now(), 30, IncidentSeverity::Warning);
        assert!(f.open_incidents.is_empty());
        assert_eq!(f.postmortem_backlog_hours, 0.0);
        assert_eq!(f.last_major_incident_age_days, None);
        assert!(!f.metrics.has_signal());
    }

    #[test]
    fn the_contract_json_decodes() {
        let body = r#"{"count": 1, "alerts": [{"id": "0190", "fingerprint": "ab", "kind": "telemetry.kafka.readiness",
            "service": "kafka-readiness", "component": null, "severity": "critical", "state": "acknowledged",
            "summary": "kafka FAIL", "opened_at": "2026-11-10T10:00:00Z", "acknowledged_at": "2026-11-10T10:05:00+00:00",
            "acknowledged_by": "alice", "resolved_at": null, "resolution": null, "postmortem_url": null, "extra": 1}]}"#;
        let list: AlertList = serde_json::from_str(body).expect("decodes");
        assert_eq!(list.alerts[0].state, AlertState::Acknowledged);
        assert!(list.alerts[0].is_open());
        let odd: AlertList = serde_json::from_str(
            r#"{"alerts":[{"id":"x","severity":"page","state":"silenced","opened_at":"2026-11-10T10:00:00Z"}]}"#,
        )
        .expect("decodes");
        assert_eq!(odd.alerts[0].severity, AlertSeverity::Other);
        assert!(odd.alerts[0].is_open());
    }
}
