//! Owns [`KafkaReadiness`], the Kafka readiness [`Domain`]: each gather probes the cluster
//! (never overlapping, bounded by the framework's timeout), the pure [`evaluate()`] grades it
//! as `telemetry.kafka.readiness`. Timer, publishing, last snapshot and HTTP are the
//! framework's (`telemesh_service`).

use std::time::Duration;

use chrono::Utc;
use telemesh_core::config::KafkaSettings;
use telemesh_core::{topics, Snapshot};
use telemesh_service::{Domain, Evaluation, NotConfigured};

use crate::evaluate::evaluate;
use crate::probe::KafkaProbe;
use crate::settings::{ReadinessPolicy, ReadinessSettings};
use crate::state::ReadinessState;

/// The service name of the domain (`serve kafka-readiness`, the snapshots' source).
pub const SERVICE_NAME: &str = "kafka-readiness";

/// The Kafka readiness domain.
#[derive(Debug)]
pub struct KafkaReadiness {
    settings: ReadinessSettings,
    policy: ReadinessPolicy,
    probe: KafkaProbe,
}

impl KafkaReadiness {
    /// The domain probing the cluster of `kafka` as `settings` say.
    pub fn new(settings: &ReadinessSettings, kafka: &KafkaSettings) -> Self {
        Self {
            policy: settings.policy(),
            probe: KafkaProbe::new(settings, kafka.clone()),
            settings: settings.clone(),
        }
    }
}

impl Domain for KafkaReadiness {
    type State = ReadinessState;

    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec![topics::KAFKA_READINESS]
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.interval_seconds.max(1))
    }

    fn not_configured(&self) -> Option<NotConfigured> {
        (!self.settings.enabled).then(|| {
            NotConfigured::new(
                "kafka_readiness.enabled",
                "kafka readiness is disabled; set it to true to probe the cluster",
            )
        })
    }

    async fn gather(&mut self) -> ReadinessState {
        self.probe.probe(Utc::now()).await
    }

    fn evaluate(&self, state: &ReadinessState, at: &Evaluation) -> Vec<Snapshot> {
        vec![evaluate(&self.policy, state, at.source.clone(), at.now)]
    }
}

#[cfg(test)]
mod tests {
    use telemesh_core::Grade;
    use telemesh_service::testing::TestService;

    use super::*;

    async fn get(svc: &TestService, path: &str) -> (u16, String) {
        let response = reqwest::get(svc.url(path)).await.expect("service answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    #[actix::test]
    async fn without_kafka_the_service_publishes_and_serves_a_warn_snapshot() {
        let domain = KafkaReadiness::new(&ReadinessSettings::default(), &KafkaSettings::default());
        let svc = TestService::start(domain).expect("service starts");
        let published = svc
            .wait_published(topics::KAFKA_READINESS, 1, Duration::from_secs(5))
            .await;
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].status, Grade::Warn);
        assert!(
            published[0].summary.contains("not configured"),
            "{}",
            published[0].summary
        );
        assert_eq!(published[0].source.service, SERVICE_NAME);
        let (status, body) = get(&svc, "/api/v1/snapshots/latest").await;
        assert_eq!(status, 200);
        let latest: Vec<Snapshot> = serde_json::from_str(&body).expect("a JSON array");
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].kind, topics::KAFKA_READINESS);
        assert_eq!(get(&svc, "/health/live").await.0, 200);
        assert_eq!(get(&svc, "/health/ready").await.0, 200);
        let (status, metrics) = get(&svc, "/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.contains("domain_gathers"), "{metrics}");
        svc.service.stop(false).await;
    }

    #[actix::test]
    async fn a_disabled_domain_never_probes_and_names_its_setting() {
        let settings = ReadinessSettings {
            enabled: false,
            ..ReadinessSettings::default()
        };
        let svc = TestService::start(KafkaReadiness::new(&settings, &KafkaSettings::default()))
            .expect("service starts");
        let published = svc
            .wait_published(topics::KAFKA_READINESS, 1, Duration::from_secs(5))
            .await;
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].status, Grade::Warn);
        assert!(
            published[0].summary.contains("kafka_readiness.enabled"),
            "{}",
            published[0].summary
        );
        svc.service.stop(false).await;
    }
}
