//! Owns [`EventBusDomain`], event-bus health as a [`Domain`] of the framework. It is built on
//! the process's transport (`Arc<dyn Publisher>`, the one its other domains publish through),
//! so the binary adds it beside any domain, in any process that publishes, standalone included.

use std::sync::Arc;
use std::time::Duration;

use telemesh_core::config::{Invalid, Section};
use telemesh_core::transport::Publisher;
use telemesh_core::Snapshot;
use telemesh_service::{Domain, Evaluation};

use crate::evaluate::{evaluate, BusState, KIND};
use crate::settings::EventBusSettings;

/// The service name (`Source.service`).
pub const SERVICE: &str = "event-bus";

/// Event-bus health of one transport.
#[derive(Debug)]
pub struct EventBusDomain {
    settings: EventBusSettings,
    transport: Arc<dyn Publisher>,
    previous: Option<telemesh_core::transport::TransportStats>,
}

impl EventBusDomain {
    /// Grades `transport`: pass the same publisher the process's domains publish through.
    pub fn new(settings: EventBusSettings, transport: Arc<dyn Publisher>) -> Self {
        Self {
            settings,
            transport,
            previous: None,
        }
    }
}

impl Domain for EventBusDomain {
    type State = BusState;

    fn name(&self) -> &'static str {
        SERVICE
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec![KIND]
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.interval_seconds)
    }

    fn gather(&mut self) -> impl std::future::Future<Output = BusState> + Send + '_ {
        let stats = self.transport.stats();
        let previous = match &stats {
            Some(now) => self.previous.replace(now.clone()),
            None => self.previous.take(),
        };
        std::future::ready(BusState { stats, previous })
    }

    fn evaluate(&self, state: &BusState, at: &Evaluation) -> Vec<Snapshot> {
        vec![evaluate(&self.settings, state, at.source.clone(), at.now)]
    }
}

impl Section for EventBusSettings {
    fn name(&self) -> &'static str {
        "event_bus_health"
    }

    fn validate(&self) -> Result<(), Invalid> {
        EventBusSettings::validate(self)
            .map_err(|e| Invalid::new(format!("event_bus_health.{}", e.key), e.detail))
    }
}
