//! Owns starting the cache-health, event-bus-health and system-validation domains (issue 14):
//! beside the others in `standalone`, and as `serve cache-health` / `serve system-validation`
//! over Kafka. Event-bus health joins every process started here, on the same transport its
//! other domains publish through.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use telemesh_cache_health::CacheHealthDomain;
use telemesh_core::transport::kafka::KafkaPublisher;
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_event_bus::EventBusDomain;
use telemesh_service::{start, Domain, RunningService, ServiceOptions};
use telemesh_system_validation::SystemValidationDomain;

use crate::config::TelemeshConfig;

fn run<D: Domain>(
    cfg: &TelemeshConfig,
    domain: D,
    publisher: &SnapshotPublisher,
    http_addr: Option<String>,
) -> anyhow::Result<RunningService> {
    let name = domain.name();
    let service = start(
        domain,
        ServiceOptions {
            instance: cfg.service.instance.clone(),
            publisher: publisher.clone(),
            http_addr,
        },
    )
    .with_context(|| format!("cannot start the {name} domain"))?;
    if let Some(addr) = service.http_addr() {
        tracing::info!(service = name, http = %addr, "domain service listening");
    }
    Ok(service)
}

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
    run(cfg, domain, publisher, None).map(Some)
}

/// In `standalone`: event-bus health always (when enabled); cache health and system
/// validation when configured (unconfigured they would only say so, and cache health `fail`).
/// System validation's upload endpoint takes any free port (the API holds `[http] addr`).
pub fn standalone(
    cfg: &TelemeshConfig,
    publisher: &SnapshotPublisher,
) -> anyhow::Result<Vec<RunningService>> {
    let mut services = Vec::new();
    services.extend(event_bus(cfg, publisher)?);
    if cfg.cache_health.enabled && cfg.cache_health.is_configured() {
        let domain = CacheHealthDomain::new(cfg.cache_health.clone());
        services.push(run(cfg, domain, publisher, None)?);
    }
    if cfg.system_validation.enabled && cfg.system_validation.is_configured() {
        let domain = SystemValidationDomain::new(cfg.system_validation.clone());
        services.push(run(cfg, domain, publisher, Some("127.0.0.1:0".into()))?);
    }
    Ok(services)
}

/// Stops services in reverse order, each publishing its departed snapshots.
pub async fn stop(services: Vec<RunningService>) {
    for service in services.into_iter().rev() {
        service.stop(true).await;
    }
}

async fn serve<D: Domain>(cfg: TelemeshConfig, domain: D, what: &str) -> anyhow::Result<()> {
    if !cfg.kafka.is_configured() {
        bail!("serve {what} needs Kafka: set [kafka] brokers (TELEMESH__KAFKA__BROKERS)");
    }
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&cfg.kafka)?);
    let publisher = SnapshotPublisher::new(
        transport,
        cfg.kafka.encoding,
        cfg.kafka.topic_prefix.clone(),
    );
    let mut services = vec![run(&cfg, domain, &publisher, Some(cfg.http.addr.clone()))?];
    services.extend(event_bus(&cfg, &publisher)?);
    crate::run::shutdown_signal().await;
    stop(services).await;
    Ok(())
}

/// `telemesh serve cache-health`.
pub async fn cache_health(cfg: TelemeshConfig) -> anyhow::Result<()> {
    let domain = CacheHealthDomain::new(cfg.cache_health.clone());
    serve(cfg, domain, "cache-health").await
}

/// `telemesh serve system-validation`.
pub async fn system_validation(cfg: TelemeshConfig) -> anyhow::Result<()> {
    let domain = SystemValidationDomain::new(cfg.system_validation.clone());
    serve(cfg, domain, "system-validation").await
}
