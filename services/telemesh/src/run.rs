//! Owns running the services: the actix system, signal handling, the table of the mesh's
//! domains ([`DOMAINS`]), and the wiring of transport, journal and services for `standalone`,
//! `serve aggregator` and `serve <domain>`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use telemesh_aggregator::{
    subscribed_topics, Aggregator, AlertingParts, Journal, JournalSettings, TransportParts,
};
use telemesh_alerting::actor::SystemClock;
use telemesh_cache_health::CacheHealthDomain;
use telemesh_ci::domain::CiDomain;
use telemesh_core::config::SecretUrl;
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::kafka::{KafkaPublisher, KafkaSubscriber};
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_fix_pilot::FixPilot;
use telemesh_incident_response::IncidentResponse;
use telemesh_ingest::Ingest;
use telemesh_kafka_readiness::KafkaReadiness;
use telemesh_service::{Domain, RunningService, ServiceOptions};
use telemesh_system_validation::SystemValidationDomain;

use crate::config::TelemeshConfig;

/// How `serve <name>` and `standalone` start one domain of the mesh.
pub struct DomainEntry {
    /// The domain's service name: `serve <name>`, the snapshots' `source.service`.
    pub name: &'static str,
    /// Builds the domain from its settings and starts it on the framework.
    pub start: fn(&TelemeshConfig, ServiceOptions) -> anyhow::Result<RunningService>,
}

/// Every domain of the mesh. A new domain is its crate, one line here and its settings field in
/// `config.rs`; `standalone` runs every entry and `serve <name>` finds it here.
#[rustfmt::skip]
pub const DOMAINS: &[DomainEntry] = &[
    DomainEntry { name: telemesh_kafka_readiness::SERVICE_NAME, start: |c, o| run(KafkaReadiness::new(&c.kafka_readiness, &c.kafka), o) },
    DomainEntry { name: telemesh_ingest::SERVICE_NAME, start: |c, o| run(Ingest::new(&c.ingest)?, o) },
    DomainEntry { name: telemesh_incident_response::SERVICE_NAME, start: |c, o| run(IncidentResponse::new(c.incident_response.clone()), o) },
    DomainEntry { name: telemesh_fix_pilot::SERVICE_NAME, start: |c, o| run(FixPilot::start(c.fix_pilot.clone(), &c.kafka), o) },
    DomainEntry { name: telemesh_cache_health::SERVICE, start: |c, o| run(CacheHealthDomain::new(c.cache_health.clone()), o) },
    DomainEntry { name: telemesh_system_validation::SERVICE, start: |c, o| run(SystemValidationDomain::new(c.system_validation.clone()), o) },
    DomainEntry { name: telemesh_ci::domain::NAME, start: |c, o| run(CiDomain::new(c.ci.clone()), o) },
];

fn run<D: Domain>(domain: D, options: ServiceOptions) -> anyhow::Result<RunningService> {
    Ok(telemesh_service::start(domain, options)?)
}

/// What `serve` accepts: the aggregator and every domain of [`DOMAINS`].
pub fn serve_names() -> Vec<&'static str> {
    std::iter::once("aggregator")
        .chain(DOMAINS.iter().map(|d| d.name))
        .collect()
}

/// Installs logging and tracing as `service`, then runs `f` to completion on an actix system;
/// queued spans are flushed (bounded by the export timeout) when it returns.
pub fn with_system<F, Fut>(cfg: TelemeshConfig, service: &str, f: F) -> anyhow::Result<()>
where
    F: FnOnce(TelemeshConfig) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let identity = telemesh_core::telemetry::Identity::new(
        service,
        cfg.service.instance.clone(),
        env!("CARGO_PKG_VERSION"),
    );
    let _telemetry = telemesh_core::telemetry::init(&cfg.log, &cfg.tracing, &identity)?;
    actix::System::new().block_on(f(cfg))
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
}

/// Connects the journal, retrying for up to a minute so a pod may start before its database.
async fn connect_journal(settings: &JournalSettings) -> anyhow::Result<Journal> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match Journal::connect(settings).await {
            Ok(journal) => return Ok(journal),
            Err(e @ telemesh_aggregator::journal::JournalError::Unavailable(_))
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "journal not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e).context("cannot open the journal"),
        }
    }
}

/// Alerting of the aggregator: settings, the process environment (channel secrets) and the
/// system clock.
fn alerting_parts(cfg: &TelemeshConfig) -> AlertingParts {
    AlertingParts {
        settings: cfg.alerting.clone(),
        env: telemesh_core::config::process_env(),
        clock: Arc::new(SystemClock),
    }
}

/// `telemesh standalone`.
pub async fn standalone(cfg: TelemeshConfig) -> anyhow::Result<()> {
    run_standalone(cfg, None).await
}

/// `telemesh demo`: standalone plus the scenario producer ([`crate::demo`]), its phases `step`
/// long, paging to `<data dir>/alerts.log` unless channels are configured.
pub async fn demo(cfg: TelemeshConfig, step: Duration) -> anyhow::Result<()> {
    run_standalone(cfg, Some(step)).await
}

async fn run_standalone(mut cfg: TelemeshConfig, demo: Option<Duration>) -> anyhow::Result<()> {
    let data_dir = PathBuf::from(&cfg.standalone.data_dir);
    std::fs::create_dir_all(&data_dir).with_context(|| {
        format!(
            "cannot create data directory {}; pass --data-dir",
            data_dir.display()
        )
    })?;
    if demo.is_some() {
        if let Some(log) = crate::demo::prepare(&mut cfg, &data_dir) {
            tracing::info!(alerts = %log.display(), "demo: pages and resolutions are appended to this file");
        }
    }
    let mut journal_settings = cfg.journal.clone();
    if journal_settings.url.is_empty() {
        let path = data_dir
            .canonicalize()
            .unwrap_or(data_dir.clone())
            .join("telemesh.db");
        journal_settings.url = SecretUrl::new(format!("sqlite://{}", path.display()));
    }
    let journal = connect_journal(&journal_settings).await?;
    let bus = InProcessBus::new(cfg.standalone.channel_capacity, subscribed_topics(""));
    let Some(subscriber) = bus.subscriber() else {
        bail!("the in-process bus has no subscriber left");
    };
    let aggregator = Aggregator::start_with(
        &cfg.aggregator,
        &cfg.http.addr,
        "",
        journal,
        TransportParts::in_process(subscriber, bus.publisher()),
        Some(alerting_parts(&cfg)),
    )
    .await?;
    let publisher = SnapshotPublisher::new(bus.publisher(), cfg.kafka.encoding, "");
    let mut domains_cfg = cfg.clone();
    // a laptop has no platform cache: without a URL the cache block is a warn, never a page
    if domains_cfg.cache_health.url.is_empty() {
        domains_cfg.cache_health.expected = false;
    }
    // incident response reads this aggregator's own alert history unless told otherwise
    if domains_cfg.incident_response.aggregator_url.is_empty() {
        domains_cfg.incident_response.aggregator_url = format!("http://{}", aggregator.http_addr);
    }
    // the CI domain reads its history back from this aggregator's journal unless told otherwise
    if domains_cfg.ci.aggregator_url.is_empty() {
        domains_cfg.ci.aggregator_url = format!("http://{}", aggregator.http_addr);
    }
    // every domain runs; one that is not configured publishes a block naming its setting. Their
    // own endpoints take any free port (the API holds [http] addr).
    let mut services = Vec::with_capacity(DOMAINS.len());
    for domain in DOMAINS {
        let options = ServiceOptions {
            instance: cfg.service.instance.clone(),
            publisher: publisher.clone(),
            http_addr: Some("127.0.0.1:0".into()),
        };
        let service = (domain.start)(&domains_cfg, options)
            .with_context(|| format!("cannot start the {} domain", domain.name))?;
        if let Some(addr) = service.http_addr() {
            tracing::info!(domain = domain.name, http = %addr, "domain endpoints listening");
        }
        services.push(service);
    }
    services.extend(crate::feeds::event_bus(&cfg, &publisher)?);
    if let Some(step) = demo {
        let options = ServiceOptions {
            instance: crate::demo::DEMO.into(),
            publisher: publisher.clone(),
            http_addr: None,
        };
        services.push(run(crate::demo::Scenario::new(step), options)?);
        tracing::info!(
            step_seconds = step.as_secs_f64(),
            "demo: every kind walks ok → warn → fail → recovery (source demo/demo)"
        );
    }
    tracing::info!(
        journal = %journal_settings.url.redacted(),
        domains = DOMAINS.len(),
        "telemesh standalone running: summary at http://{}/api/v1/summary?format=markdown",
        aggregator.http_addr
    );
    shutdown_signal().await;
    for service in services {
        service.stop(false).await;
    }
    aggregator.stop().await;
    Ok(())
}

/// `telemesh serve aggregator`.
pub async fn aggregator(cfg: TelemeshConfig) -> anyhow::Result<()> {
    if !cfg.kafka.is_configured() {
        bail!("serve aggregator needs Kafka: set [kafka] brokers (TELEMESH__KAFKA__BROKERS)");
    }
    if cfg.journal.url.is_empty() {
        bail!("serve aggregator needs a journal: set [journal] url (TELEMESH__JOURNAL__URL)");
    }
    let journal = connect_journal(&cfg.journal).await?;
    let topics = subscribed_topics(&cfg.kafka.topic_prefix);
    let subscriber = KafkaSubscriber::new(&cfg.kafka, &topics)?;
    let publisher: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&cfg.kafka)?);
    let aggregator = Aggregator::start_with(
        &cfg.aggregator,
        &cfg.http.addr,
        &cfg.kafka.topic_prefix,
        journal,
        TransportParts::kafka(subscriber, publisher),
        Some(alerting_parts(&cfg)),
    )
    .await?;
    tracing::info!(kafka = %cfg.kafka.describe(), group = %cfg.kafka.group_id, "aggregator consuming");
    shutdown_signal().await;
    aggregator.stop().await;
    Ok(())
}

/// `telemesh serve <domain>`: the domain of [`DOMAINS`] named `name`, publishing to Kafka,
/// serving its endpoints on `[http] addr`; on shutdown it departs (the aggregator retires the
/// instance at once).
pub async fn domain(cfg: TelemeshConfig, name: String) -> anyhow::Result<()> {
    let Some(entry) = DOMAINS.iter().find(|d| d.name == name) else {
        bail!(
            "no domain named {name}; serve one of: {}",
            serve_names().join(", ")
        );
    };
    if !cfg.kafka.is_configured() {
        bail!("serve {name} needs Kafka: set [kafka] brokers (TELEMESH__KAFKA__BROKERS)");
    }
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&cfg.kafka)?);
    let publisher = SnapshotPublisher::new(
        transport,
        cfg.kafka.encoding,
        cfg.kafka.topic_prefix.clone(),
    );
    let options = ServiceOptions {
        instance: cfg.service.instance.clone(),
        publisher,
        http_addr: Some(cfg.http.addr.clone()),
    };
    let event_bus = crate::feeds::event_bus(&cfg, &options.publisher)?;
    let service = (entry.start)(&cfg, options)?;
    tracing::info!(domain = name, kafka = %cfg.kafka.describe(), "domain service running");
    shutdown_signal().await;
    service.stop(true).await;
    if let Some(event_bus) = event_bus {
        event_bus.stop(true).await;
    }
    Ok(())
}
