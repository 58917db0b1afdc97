//! Owns [`FixPilot`], the FIX pilot [`Domain`]: its sessions, order gateway and reconciler stay
//! an actor ([`FixPilotService`]); each gather asks it for its [`PilotState`] (and refreshes the
//! FIX metric families from it), the pure evaluators grade `telemetry.execution.fix_pilot` and
//! `telemetry.execution.dropcopy`. Timer, publishing, last snapshots and HTTP are the
//! framework's (`telemesh_service`); `stop` logs the sessions out.

use std::time::Duration;

use actix::{Actor, Addr};
use telemesh_core::config::KafkaSettings;
use telemesh_core::{topics, Component, Grade, Snapshot};
use telemesh_service::{Domain, Evaluation, NotConfigured};

use crate::evaluate::{evaluate_dropcopy, evaluate_pilot};
use crate::execution::{evaluate_pilot_execution, EXECUTION_KIND};
use crate::metrics::FixMetrics;
use crate::service::{FixPilotService, GetState, Shutdown};
use crate::settings::{FixPilotSettings, PilotPolicy};
use crate::state::PilotState;

/// The service name of the domain (`serve fix-pilot`, the snapshots' source).
pub const SERVICE_NAME: &str = "fix-pilot";

/// The FIX pilot domain.
#[derive(Debug)]
pub struct FixPilot {
    settings: FixPilotSettings,
    policy: PilotPolicy,
    /// `None` while the pilot is disabled or has no session configured.
    pilot: Option<Addr<FixPilotService>>,
    metrics: FixMetrics,
    /// The first gather waits until this instant: the sessions get a moment to log on before
    /// they are first graded.
    first_gather_at: Option<tokio::time::Instant>,
}

/// How long after start the first gather waits for the sessions to log on.
const LOGON_GRACE: Duration = Duration::from_secs(1);

impl FixPilot {
    /// The domain for `settings`, using `kafka` for the order and execution topics. Starts the
    /// sessions' actor when a session is configured; must run inside an actix system.
    pub fn start(settings: FixPilotSettings, kafka: &KafkaSettings) -> Self {
        let runs = settings.enabled
            && (settings.trading.is_configured() || settings.dropcopy.is_configured());
        let pilot = runs.then(|| FixPilotService::new(settings.clone(), kafka.clone()).start());
        Self {
            policy: settings.policy(),
            settings,
            pilot,
            metrics: FixMetrics::default(),
            first_gather_at: Some(tokio::time::Instant::now() + LOGON_GRACE),
        }
    }

    /// The sessions' actor (order submission, state), when it runs.
    pub fn pilot(&self) -> Option<&Addr<FixPilotService>> {
        self.pilot.as_ref()
    }
}

/// A `fail` snapshot of `kind` when the sessions' actor no longer answers.
fn unanswered(kind: &str, detail: &str, at: &Evaluation) -> Snapshot {
    let mut snapshot = Snapshot::new(kind, at.source.clone(), at.now);
    snapshot.status = Grade::Fail;
    snapshot.summary = format!(
        "the FIX pilot's sessions stopped answering ({detail}); restart the fix-pilot service"
    );
    snapshot.push(Component::new(
        "sessions",
        Grade::Fail,
        snapshot.summary.clone(),
    ));
    snapshot.markdown = snapshot.render_markdown("FIX pilot");
    snapshot
}

impl Domain for FixPilot {
    type State = Result<PilotState, String>;

    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec![topics::FIX_PILOT, topics::DROPCOPY, EXECUTION_KIND]
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.interval_seconds.max(1))
    }

    fn gather_timeout(&self) -> Duration {
        self.interval() + LOGON_GRACE
    }

    fn not_configured(&self) -> Option<NotConfigured> {
        if !self.settings.enabled {
            return Some(NotConfigured::new(
                "fix_pilot.enabled",
                "the FIX pilot is disabled; set it to true to run its sessions",
            ));
        }
        self.pilot.is_none().then(|| {
            NotConfigured::new(
                "fix_pilot.trading.port",
                "the venue's FIX trading session (host, port, CompIDs); set fix_pilot.dropcopy.port too to reconcile its drop copy",
            )
        })
    }

    async fn gather(&mut self) -> Result<PilotState, String> {
        if let Some(at) = self.first_gather_at.take() {
            tokio::time::sleep_until(at).await;
        }
        let Some(pilot) = &self.pilot else {
            return Err("no session configured".into());
        };
        let state = pilot.send(GetState).await.map_err(|e| e.to_string())?;
        self.metrics.update(&state);
        Ok(state)
    }

    fn evaluate(&self, state: &Result<PilotState, String>, at: &Evaluation) -> Vec<Snapshot> {
        match state {
            Ok(state) => {
                let mut snapshots = vec![
                    evaluate_pilot(&self.policy, state, at.source.clone(), at.now),
                    evaluate_dropcopy(&self.policy, state, at.source.clone(), at.now),
                ];
                snapshots.extend(evaluate_pilot_execution(
                    &self.settings.execution,
                    state,
                    at.source.clone(),
                    at.now,
                ));
                snapshots
            }
            Err(detail) => vec![
                unanswered(topics::FIX_PILOT, detail, at),
                unanswered(topics::DROPCOPY, detail, at),
                unanswered(EXECUTION_KIND, detail, at),
            ],
        }
    }

    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    async fn stop(&mut self) {
        if let Some(pilot) = self.pilot.take() {
            let _ = pilot.send(Shutdown).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use telemesh_service::testing::TestService;

    use super::*;
    use crate::gateway::{OrderRequest, RequestError};
    use crate::kafka_gateway::Submit;

    #[actix::test]
    async fn without_sessions_both_kinds_name_the_setting_and_no_actor_runs() {
        let domain = FixPilot::start(FixPilotSettings::default(), &KafkaSettings::default());
        assert!(domain.pilot().is_none());
        let svc = TestService::start(domain).expect("service starts");
        for kind in [topics::FIX_PILOT, topics::DROPCOPY] {
            let published = svc.wait_published(kind, 1, Duration::from_secs(5)).await;
            assert_eq!(published.len(), 1, "{kind}");
            assert_eq!(published[0].status, Grade::Warn);
            assert!(
                published[0].summary.contains("fix_pilot.trading.port"),
                "{}",
                published[0].summary
            );
        }
        svc.service.stop(false).await;
    }

    #[actix::test]
    async fn a_dropcopy_only_pilot_grades_the_missing_trading_session_and_refuses_orders() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = FixPilotSettings::default();
        // a drop-copy venue nobody listens on: the session starts and keeps reconnecting
        settings.dropcopy.port = 9;
        settings.dropcopy.store_dir = dir.path().join("fix").display().to_string();
        settings.gateway_store_dir = dir.path().join("gateway").display().to_string();
        let domain = FixPilot::start(settings, &KafkaSettings::default());
        let pilot = domain.pilot().cloned().expect("the sessions' actor runs");
        let svc = TestService::start(domain).expect("service starts");
        let published = svc
            .wait_published(topics::FIX_PILOT, 1, Duration::from_secs(5))
            .await;
        assert_eq!(published[0].status, Grade::Fail);
        assert!(
            published[0]
                .summary
                .contains("trading session not configured"),
            "{}",
            published[0].summary
        );
        let metrics = reqwest::get(svc.url("/metrics"))
            .await
            .expect("answers")
            .text()
            .await
            .expect("text");
        assert!(metrics.contains("fix_session_state"), "{metrics}");
        let order = crate::orders::NewOrder {
            cl_ord_id: "C1".into(),
            symbol: "AAPL".into(),
            side: crate::codes::Side::Buy,
            order_qty: crate::fixed::Fixed::from_int(1),
            price: None,
            account: None,
        };
        let refused = pilot
            .send(Submit(OrderRequest::New(order)))
            .await
            .expect("actor answers");
        assert_eq!(refused, Err(RequestError::NoSession("C1".into())));
        svc.service.stop(false).await;
    }
}
