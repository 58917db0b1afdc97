//! Owns running the services: the actix system, signal handling, and the wiring of transport,
//! journal and services for `standalone`, `serve aggregator` and `serve kafka-readiness`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use anyhow::{bail, Context as _};
use telemesh_aggregator::{
    subscribed_topics, Aggregator, AlertingParts, Journal, JournalSettings, TransportParts,
};
use telemesh_alerting::actor::SystemClock;
use telemesh_core::config::SecretUrl;
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::kafka::{KafkaPublisher, KafkaSubscriber};
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_core::{topics, Source};
use telemesh_fix_pilot::{
    FixMetrics, FixPilotService, GetSnapshots, GetState, Shutdown as FixShutdown,
};
use telemesh_incident_response::IncidentResponseService;
use telemesh_ingest::IngestHandle;
use telemesh_kafka_readiness::{GetLastSnapshot, ReadinessService};

use crate::config::TelemeshConfig;
use crate::service_http;

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

fn readiness_service(
    cfg: &TelemeshConfig,
    publisher: SnapshotPublisher,
) -> actix::Addr<ReadinessService> {
    let source = Source::new("kafka-readiness", cfg.service.instance.clone());
    ReadinessService::new(
        cfg.kafka_readiness.clone(),
        cfg.kafka.clone(),
        source,
        publisher,
    )
    .start()
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
    let data_dir = PathBuf::from(&cfg.standalone.data_dir);
    std::fs::create_dir_all(&data_dir).with_context(|| {
        format!(
            "cannot create data directory {}; pass --data-dir",
            data_dir.display()
        )
    })?;
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
        TransportParts {
            subscriber: Box::new(subscriber),
            publisher: bus.publisher(),
            name: "in-process",
            kafka_coords: false,
        },
        Some(alerting_parts(&cfg)),
    )
    .await?;
    let publisher = SnapshotPublisher::new(bus.publisher(), cfg.kafka.encoding, "");
    let _readiness = readiness_service(&cfg, publisher.clone());
    let feeds = crate::feeds::standalone(&cfg, &publisher)?;
    // the ingest service joins when a platform database is configured; its run-report endpoint
    // takes any free port (the API holds [http] addr)
    let ingest = if cfg.ingest.is_configured() {
        let source = Source::new(telemesh_ingest::SERVICE_NAME, cfg.service.instance.clone());
        let handle = IngestHandle::start(&cfg.ingest, "127.0.0.1:0", source, publisher.clone())?;
        tracing::info!(http = %handle.http_addr, "ingest service: report runs with POST /api/v1/ingest/runs");
        Some(handle)
    } else {
        None
    };
    // incident response joins when an on-call roster is configured (without one it grades `fail`)
    let incident = if cfg.incident_response.roster_file.is_empty() {
        None
    } else {
        let source = Source::new("incident-response", cfg.service.instance.clone());
        let service =
            IncidentResponseService::new(cfg.incident_response.clone(), source, publisher.clone())
                .start();
        let (bound, server) = telemesh_incident_response::serve_http(
            "127.0.0.1:0",
            service,
            None,
            cfg.incident_response.api_token.clone(),
        )?;
        tracing::info!(http = %bound, "incident-response: deployment gate at /api/v1/gate");
        Some(server)
    };
    // the FIX pilot joins only when a venue is configured: unconfigured, it would grade `fail`
    let fix_pilot = cfg.fix_pilot.trading.is_configured().then(|| {
        FixPilotService::new(
            cfg.fix_pilot.clone(),
            cfg.kafka.clone(),
            Source::new("fix-pilot", cfg.service.instance.clone()),
            publisher,
        )
        .start()
    });
    tracing::info!(
        journal = %journal_settings.url.redacted(),
        "telemesh standalone running: summary at http://{}/api/v1/summary?format=markdown",
        aggregator.http_addr
    );
    shutdown_signal().await;
    if let Some(fix_pilot) = fix_pilot {
        let _ = fix_pilot.send(FixShutdown).await;
    }
    if let Some(ingest) = ingest {
        ingest.stop().await;
    }
    if let Some(server) = incident {
        server.stop(true).await;
    }
    crate::feeds::stop(feeds).await;
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
        TransportParts {
            subscriber: Box::new(subscriber),
            publisher,
            name: "kafka",
            kafka_coords: true,
        },
        Some(alerting_parts(&cfg)),
    )
    .await?;
    tracing::info!(kafka = %cfg.kafka.describe(), group = %cfg.kafka.group_id, "aggregator consuming");
    shutdown_signal().await;
    aggregator.stop().await;
    Ok(())
}

/// `telemesh serve kafka-readiness`.
pub async fn kafka_readiness(cfg: TelemeshConfig) -> anyhow::Result<()> {
    if !cfg.kafka.is_configured() {
        bail!("serve kafka-readiness needs Kafka: set [kafka] brokers (TELEMESH__KAFKA__BROKERS)");
    }
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&cfg.kafka)?);
    let publisher = SnapshotPublisher::new(
        Arc::clone(&transport),
        cfg.kafka.encoding,
        cfg.kafka.topic_prefix.clone(),
    );
    let service = readiness_service(&cfg, publisher.clone());
    let server = service_http::start(
        &cfg.http.addr,
        transport,
        Arc::new(move || {
            let service = service.clone();
            Box::pin(async move { service.send(GetLastSnapshot).await.ok().flatten() })
        }),
    )?;
    shutdown_signal().await;
    depart(
        &publisher,
        &[topics::KAFKA_READINESS],
        "kafka-readiness",
        &cfg,
    )
    .await;
    server.stop(true).await;
    Ok(())
}

/// Tells the aggregator this instance is going away (its alerts resolve as departed and it
/// leaves the summary) instead of letting it turn stale.
async fn depart(
    publisher: &SnapshotPublisher,
    kinds: &[&str],
    service: &str,
    cfg: &TelemeshConfig,
) {
    let source = Source::new(service, cfg.service.instance.clone());
    publisher
        .publish_departed(kinds, &source, Duration::from_secs(5))
        .await;
}

/// `telemesh serve fix-pilot`.
pub async fn fix_pilot(cfg: TelemeshConfig) -> anyhow::Result<()> {
    if !cfg.kafka.is_configured() {
        bail!("serve fix-pilot needs Kafka: set [kafka] brokers (TELEMESH__KAFKA__BROKERS)");
    }
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&cfg.kafka)?);
    let publisher = SnapshotPublisher::new(
        Arc::clone(&transport),
        cfg.kafka.encoding,
        cfg.kafka.topic_prefix.clone(),
    );
    let source = Source::new("fix-pilot", cfg.service.instance.clone());
    let service = FixPilotService::new(
        cfg.fix_pilot.clone(),
        cfg.kafka.clone(),
        source,
        publisher.clone(),
    )
    .start();
    let addr = service.clone();
    let fix_metrics = FixMetrics::default();
    let (registered, state_of) = (fix_metrics.clone(), service.clone());
    let server = service_http::start_with_metrics(
        &cfg.http.addr,
        transport,
        Arc::new(move || {
            let service = addr.clone();
            Box::pin(async move { service.send(GetSnapshots).await.ok().and_then(|s| s.pilot) })
        }),
        move |registry| registered.register(registry),
        Some(Arc::new(move || {
            let (service, metrics) = (state_of.clone(), fix_metrics.clone());
            Box::pin(async move {
                if let Ok(state) = service.send(GetState).await {
                    metrics.update(&state);
                }
            })
        })),
    )?;
    shutdown_signal().await;
    let _ = service.send(FixShutdown).await;
    depart(
        &publisher,
        &[topics::FIX_PILOT, topics::DROPCOPY],
        "fix-pilot",
        &cfg,
    )
    .await;
    server.stop(true).await;
    Ok(())
}

/// `telemesh serve ingest`.
pub async fn ingest(cfg: TelemeshConfig) -> anyhow::Result<()> {
    if !cfg.kafka.is_configured() {
        bail!("serve ingest needs Kafka: set [kafka] brokers (TELEMESH__KAFKA__BROKERS)");
    }
    if !cfg.ingest.is_configured() {
        bail!("serve ingest needs the platform database: set [ingest] source_url (TELEMESH__INGEST__SOURCE_URL)");
    }
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&cfg.kafka)?);
    let publisher = SnapshotPublisher::new(
        transport,
        cfg.kafka.encoding,
        cfg.kafka.topic_prefix.clone(),
    );
    let source = Source::new(telemesh_ingest::SERVICE_NAME, cfg.service.instance.clone());
    let handle = IngestHandle::start(&cfg.ingest, &cfg.http.addr, source, publisher.clone())?;
    tracing::info!(http = %handle.http_addr, "ingest service running: report runs with POST /api/v1/ingest/runs");
    shutdown_signal().await;
    depart(
        &publisher,
        &[topics::INGEST_TRENDS, topics::RETENTION],
        telemesh_ingest::SERVICE_NAME,
        &cfg,
    )
    .await;
    handle.stop().await;
    Ok(())
}

/// `telemesh serve incident-response`.
pub async fn incident_response(cfg: TelemeshConfig) -> anyhow::Result<()> {
    if !cfg.kafka.is_configured() {
        bail!(
            "serve incident-response needs Kafka: set [kafka] brokers (TELEMESH__KAFKA__BROKERS)"
        );
    }
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&cfg.kafka)?);
    let publisher = SnapshotPublisher::new(
        Arc::clone(&transport),
        cfg.kafka.encoding,
        cfg.kafka.topic_prefix.clone(),
    );
    let source = Source::new("incident-response", cfg.service.instance.clone());
    let service =
        IncidentResponseService::new(cfg.incident_response.clone(), source, publisher.clone())
            .start();
    let (bound, server) = telemesh_incident_response::serve_http(
        &cfg.http.addr,
        service,
        Some(transport),
        cfg.incident_response.api_token.clone(),
    )?;
    tracing::info!(http = %bound, "incident-response running: deployment gate at /api/v1/gate");
    shutdown_signal().await;
    depart(
        &publisher,
        &[topics::INCIDENT_RESPONSE],
        "incident-response",
        &cfg,
    )
    .await;
    server.stop(true).await;
    Ok(())
}
