//! Owns event-bus health beside the domains of every process: it grades the transport the
//! process publishes through (`standalone`'s in-process bus, `serve <domain>`'s Kafka
//! producer), so it is not a line of the domain table but joins each process started from it.

use std::sync::Arc;

use anyhow::Context as _;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_event_bus::EventBusDomain;
use telemesh_service::{start, RunningService, ServiceOptions};

use crate::config::TelemeshConfig;

/// The event-bus domain on `publisher`'s transport, when enabled.
pub fn event_bus(
    cfg: &TelemeshConfig,
    publisher: &SnapshotPublisher,
) -> anyhow::Result<Option<RunningService>> {
    if !cfg.event_bus_health.enabled {
        return Ok(None);
    }
    let domain = EventBusDomain::new(
        cfg.event_bus_health.clone(),
        Arc::clone(publisher.transport()),
    );
    let service = start(
        domain,
        ServiceOptions {
            instance: cfg.service.instance.clone(),
            publisher: publisher.clone(),
            http_addr: None,
        },
    )
    .context("cannot start the event-bus domain")?;
    Ok(Some(service))
}
