//! Owns assembling and stopping the aggregator: journal actor, summary actor (seeded from the
//! journal), ingress loop and HTTP server. Must run inside an actix `System`.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr};
use anyhow::Context as _;
use chrono::Utc;
use telemesh_core::topics;
use telemesh_core::transport::{Publisher, Subscriber};
use tokio::sync::watch;

use crate::actors::alert::{AlertActor, Clock};
use crate::actors::journal::{JournalActor, JournalHealth};
use crate::actors::summary::{JournalRefresh, SummaryActor};
use crate::alerting::channels::{Channel, IssueBook};
use crate::alerting::dispatch::Dispatcher;
use crate::alerting::store::AlertStore;
use crate::alerting::{AlertEngine, AlertingSettings};
use crate::http::{self, AppState};
use crate::ingress::{Ingress, IngressStatus, SharedIngressStatus};
use crate::journal::Journal;
use crate::metrics::AggregatorMetrics;
use crate::settings::AggregatorSettings;
use crate::summary::StalenessPolicy;

/// The transport the aggregator consumes from and dead-letters to.
#[derive(Debug)]
pub struct TransportParts {
    pub subscriber: Box<dyn Subscriber>,
    pub publisher: Arc<dyn Publisher>,
    /// `kafka` or `in-process`, for health output.
    pub name: &'static str,
    /// Whether message coordinates are Kafka's (journaled with each row).
    pub kafka_coords: bool,
}

/// What alerting needs beyond the aggregator settings.
#[derive(Debug, Clone)]
pub struct AlertingParts {
    pub settings: AlertingSettings,
    /// The environment, for channel secrets named by `url_env` / `token_env`.
    pub env: HashMap<String, String>,
    /// The clock of the alert timers (tests pass a manual one).
    pub clock: Arc<dyn Clock>,
}

async fn start_alerting(
    parts: &AlertingParts,
    settings: &AggregatorSettings,
    store: AlertStore,
    metrics: Arc<AggregatorMetrics>,
) -> anyhow::Result<Addr<AlertActor>> {
    let policy = parts
        .settings
        .policy(settings.stale_factor, settings.default_interval_seconds)
        .map_err(anyhow::Error::msg)?;
    let channels = parts
        .settings
        .channels
        .iter()
        .map(|c| Channel::from_settings(c, &parts.env))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let issues: Arc<dyn IssueBook> = Arc::new(store.clone());
    let dispatcher = Dispatcher::start(channels, Some(store.clone()), issues, Arc::clone(&metrics));
    let mut engine = AlertEngine::new(policy);
    let restored = AlertActor::restore(&mut engine, &store, &dispatcher)
        .await
        .context("cannot read alert state from the journal database")?;
    tracing::info!(
        restored,
        channels = parts.settings.channels.len(),
        "alerting ready"
    );
    Ok(AlertActor::new(
        engine,
        store,
        dispatcher,
        Arc::clone(&parts.clock),
        parts.settings.summary_url.clone(),
        Duration::from_millis(parts.settings.tick_ms),
        metrics,
    )
    .start())
}

/// The topics the aggregator subscribes to under `prefix`.
pub fn subscribed_topics(prefix: &str) -> Vec<String> {
    topics::SNAPSHOT_KINDS
        .iter()
        .map(|kind| topics::topic_name(prefix, kind))
        .collect()
}

/// Snapshots a slow `/api/v1/stream` reader may fall behind before it is told it lagged.
const LIVE_CAPACITY: usize = 1024;

/// A running aggregator.
#[derive(Debug)]
pub struct Aggregator {
    pub http_addr: SocketAddr,
    pub journal: Addr<JournalActor>,
    pub summary: Addr<SummaryActor>,
    pub alerts: Option<Addr<AlertActor>>,
    pub ingress_status: SharedIngressStatus,
    pub metrics: Arc<AggregatorMetrics>,
    shutdown: watch::Sender<bool>,
    ingress: tokio::task::JoinHandle<()>,
    server: actix_web::dev::ServerHandle,
    server_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Aggregator {
    /// Starts every part without alerting; the HTTP API listens on `http_addr` (port 0 picks
    /// a free port).
    pub async fn start(
        settings: &AggregatorSettings,
        http_addr: &str,
        topic_prefix: &str,
        journal: Journal,
        transport: TransportParts,
    ) -> anyhow::Result<Self> {
        Self::start_with(settings, http_addr, topic_prefix, journal, transport, None).await
    }

    /// Starts every part, with alerting when `alerting` is given and enabled.
    pub async fn start_with(
        settings: &AggregatorSettings,
        http_addr: &str,
        topic_prefix: &str,
        journal: Journal,
        transport: TransportParts,
        alerting: Option<AlertingParts>,
    ) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let metrics = Arc::new(AggregatorMetrics::new());
        let layout = journal.layout();
        let seed_since = Utc::now() - chrono::Duration::hours(settings.seed_window_hours as i64);
        let seed = match journal.latest(seed_since).await {
            Ok(seed) => seed,
            Err(e) => {
                tracing::warn!(error = %e, "could not seed the summary from the journal; starting empty");
                Vec::new()
            }
        };
        tracing::info!(seeded = seed.len(), ?layout, "journal ready");
        let alert_store = AlertStore::for_journal(&journal);
        let refresh_journal = journal.clone();
        let health = Arc::new(JournalHealth::default());
        let journal = JournalActor::new(
            journal,
            Arc::clone(&health),
            Arc::clone(&metrics),
            settings.mailbox_capacity,
        )
        .start();
        let policy = StalenessPolicy {
            stale_factor: settings.stale_factor,
            default_interval_seconds: settings.default_interval_seconds,
            expected_kinds: settings.expected_kinds.clone(),
        };
        let mut summary = SummaryActor::new(policy, seed, settings.mailbox_capacity);
        if settings.summary_refresh_seconds > 0 {
            summary = summary.with_refresh(JournalRefresh {
                journal: refresh_journal,
                every: Duration::from_secs(settings.summary_refresh_seconds),
                window: chrono::Duration::minutes(
                    settings.summary_refresh_window_minutes.max(1) as i64
                ),
            });
        }
        let (live, _) = tokio::sync::broadcast::channel(LIVE_CAPACITY);
        let summary = summary.with_live(live.clone()).start();
        let (alerts, api_token) = match alerting.filter(|a| a.settings.enabled) {
            Some(parts) => (
                Some(
                    start_alerting(&parts, settings, alert_store.clone(), Arc::clone(&metrics))
                        .await?,
                ),
                parts.settings.api_token.clone(),
            ),
            None => (None, Default::default()),
        };
        let status: SharedIngressStatus = Arc::new(Mutex::new(IngressStatus::default()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ingress = Ingress {
            subscriber: transport.subscriber,
            dlq: Arc::clone(&transport.publisher),
            topic_prefix: topic_prefix.to_owned(),
            record_kafka_coords: transport.kafka_coords,
            journal: journal.clone(),
            summary: summary.clone(),
            alerts: alerts.clone(),
            metrics: Arc::clone(&metrics),
            status: Arc::clone(&status),
            batch_size: settings.batch_size,
            batch_linger: Duration::from_millis(settings.batch_linger_ms),
        };
        let ingress = actix_rt::spawn(ingress.run(shutdown_rx));
        let listener = TcpListener::bind(http_addr).with_context(|| {
            format!("cannot listen on {http_addr}; pick a free address with --http or [http] addr")
        })?;
        let local = listener.local_addr()?;
        let state = AppState {
            journal: journal.clone(),
            summary: summary.clone(),
            journal_health: health,
            transport: transport.publisher,
            transport_name: transport.name,
            ingress: Arc::clone(&status),
            metrics: Arc::clone(&metrics),
            layout,
            alert_store: alerts.as_ref().map(|_| alert_store),
            alerts: alerts.clone(),
            api_token,
            live,
        };
        let (server, server_future) = http::serve(listener, state)?;
        let server_task = actix_rt::spawn(server_future);
        tracing::info!(http = %local, "aggregator listening");
        Ok(Self {
            http_addr: local,
            journal,
            summary,
            alerts,
            ingress_status: status,
            metrics,
            shutdown,
            ingress,
            server,
            server_task,
        })
    }

    /// Stops consuming (committing progress), then stops the HTTP server.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.ingress.await {
            tracing::warn!(error = %e, "ingress task ended abnormally");
        }
        self.server.stop(true).await;
        let _ = self.server_task.await;
    }
}
