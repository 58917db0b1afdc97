//! Owns [`IncidentResponse`], the incident-response [`Domain`]: each gather collects the live
//! inputs (runbooks, roster, drills and training from the journal or the local activity log, the
//! aggregator's alert history), the pure
//! [`evaluate()`] grades them as `telemetry.operational.incident_response`. Timer, publishing,
//! the last snapshot and HTTP are the framework's (`telemesh_service`); the domain adds the
//! deployment gate, the snapshot and the activities routes ([`crate::http`]).

use std::time::Duration;

use chrono::Utc;
use telemesh_core::Snapshot;
use telemesh_service::{Domain, Evaluation, NotConfigured, Routes, ServiceHandle};

use crate::activity::ActivitySink;
use crate::collect::Collector;
use crate::evaluate::{evaluate, KIND};
use crate::http;
use crate::settings::{IncidentResponsePolicy, IncidentResponseSettings};
use crate::state::IncidentResponseState;

/// The service name of the domain (`serve incident-response`, the snapshots' source).
pub const SERVICE_NAME: &str = "incident-response";

/// The incident-response domain.
#[derive(Debug)]
pub struct IncidentResponse {
    settings: IncidentResponseSettings,
    policy: IncidentResponsePolicy,
    collector: Collector,
}

impl IncidentResponse {
    /// The domain reading the inputs of `settings`.
    pub fn new(settings: IncidentResponseSettings) -> Self {
        Self {
            policy: settings.policy(),
            collector: Collector::new(settings.clone()),
            settings,
        }
    }
}

impl Domain for IncidentResponse {
    type State = IncidentResponseState;

    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec![KIND]
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.interval_seconds.max(1))
    }

    fn not_configured(&self) -> Option<NotConfigured> {
        (!self.settings.enabled).then(|| {
            NotConfigured::new(
                "incident_response.enabled",
                "incident response is disabled; set it to true to grade runbooks, roster, drills and alert history",
            )
        })
    }

    async fn gather(&mut self) -> IncidentResponseState {
        self.collector.collect(Utc::now()).await
    }

    fn evaluate(&self, state: &IncidentResponseState, at: &Evaluation) -> Vec<Snapshot> {
        vec![evaluate(&self.policy, state, at.source.clone(), at.now)]
    }

    fn routes(&self, service: &ServiceHandle) -> Option<Routes> {
        Some(http::routes(
            service.clone(),
            self.settings.gate_settings(),
            ActivitySink::from_settings(&self.settings),
            self.settings.api_token.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use telemesh_core::config::Secret;
    use telemesh_service::testing::TestService;

    use super::*;

    const TOKEN: &str = "incident-unit-token";

    #[actix::test]
    async fn the_service_serves_its_gate_snapshot_and_activities_and_records_a_drill() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("activity.jsonl");
        let settings = IncidentResponseSettings {
            runbook_dir: dir.path().join("runbooks").display().to_string(),
            roster_file: dir.path().join("roster.toml").display().to_string(),
            activity_log: log.display().to_string(),
            api_token: Secret::new(TOKEN),
            ..IncidentResponseSettings::default()
        };
        let svc = TestService::start(IncidentResponse::new(settings)).expect("service starts");
        let published = svc.wait_published(KIND, 1, Duration::from_secs(10)).await;
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].source.service, SERVICE_NAME);
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(svc.url(path)).send();
        for (path, code) in [
            ("/health/live", 200),
            ("/health/ready", 200),
            ("/metrics", 200),
            ("/api/v1/snapshots/latest", 200),
            (http::SNAPSHOT_PATH, 200),
            (http::GATE_PATH, 200),
        ] {
            let r = get(path).await.expect("answers");
            assert_eq!(r.status().as_u16(), code, "{path}");
        }
        let r = get("/api/v1/nope").await.expect("answers");
        assert_eq!(r.status().as_u16(), 404);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "not_found");
        let r = client
            .post(svc.url(http::ACTIVITIES_PATH))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(r#"{"kind":"drill","by":"alice","note":"unit drill"}"#)
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status().as_u16(), 201);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["recorded"]["kind"], "drill");
        assert!(body["snapshot_status"].is_string(), "{body}");
        let written = std::fs::read_to_string(&log).expect("activity log");
        assert!(written.contains("unit drill"), "{written}");
        assert!(
            svc.published(KIND).len() >= 2,
            "the drill ran the domain at once"
        );
        let r = client
            .post(svc.url(http::ACTIVITIES_PATH))
            .bearer_auth("wrong")
            .body(r#"{"kind":"drill","by":"mallory"}"#)
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status().as_u16(), 403);
        svc.service.stop(false).await;
    }

    #[actix::test]
    async fn a_disabled_domain_names_its_setting() {
        let settings = IncidentResponseSettings {
            enabled: false,
            ..IncidentResponseSettings::default()
        };
        let svc = TestService::start(IncidentResponse::new(settings)).expect("service starts");
        let published = svc.wait_published(KIND, 1, Duration::from_secs(5)).await;
        assert_eq!(published.len(), 1);
        assert!(
            published[0].summary.contains("incident_response.enabled"),
            "{}",
            published[0].summary
        );
        svc.service.stop(false).await;
    }
}
