//! Owns running the services: the actix system, signal handling, and the wiring of transport,
//! journal and services for `standalone`, `serve aggregator` and `serve kafka-readiness`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use anyhow::{bail, Context as _};
use telemesh_aggregator::{
    subscribed_topics, Aggregator, Journal, JournalSettings, TransportParts,
};
use telemesh_core::config::SecretUrl;
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::kafka::{KafkaPublisher, KafkaSubscriber};
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_core::Source;
use telemesh_kafka_readiness::{GetLastSnapshot, ReadinessService};

use crate::config::TelemeshConfig;
use crate::service_http;

/// Installs tracing, then runs `f` to completion on an actix system.
pub fn with_system<F, Fut>(cfg: TelemeshConfig, f: F) -> anyhow::Result<()>
where
    F: FnOnce(TelemeshConfig) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    telemesh_core::telemetry::init(&cfg.log)?;
    actix::System::new().block_on(f(cfg))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
    let aggregator = Aggregator::start(
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
    )
    .await?;
    let publisher = SnapshotPublisher::new(bus.publisher(), cfg.kafka.encoding, "");
    let _readiness = readiness_service(&cfg, publisher);
    tracing::info!(
        journal = %journal_settings.url.redacted(),
        "telemesh standalone running: summary at http://{}/api/v1/summary?format=markdown",
        aggregator.http_addr
    );
    shutdown_signal().await;
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
    let aggregator = Aggregator::start(
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
    let service = readiness_service(&cfg, publisher);
    let server = service_http::start(
        &cfg.http.addr,
        transport,
        Arc::new(move || {
            let service = service.clone();
            Box::pin(async move { service.send(GetLastSnapshot).await.ok().flatten() })
        }),
    )?;
    shutdown_signal().await;
    server.stop(true).await;
    Ok(())
}
