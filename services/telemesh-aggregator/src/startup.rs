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

use telemesh_alerting::actor::{AlertActor, AlertActorParts, Clock, HealthSink, StopAlerting};
use telemesh_alerting::channels::Channel;
use telemesh_alerting::http::AlertApi;
use telemesh_alerting::metrics::AlertMetrics;
use telemesh_alerting::repo::AlertRepo;
use telemesh_alerting::AlertingSettings;

use crate::actors::journal::{CloseWriter, JournalActor, JournalHealth};
use crate::actors::summary::{JournalRefresh, SummaryActor};
use crate::http::{self, AppState};
use crate::ingress::{Ingress, IngressLimits, IngressStatus, SharedIngressStatus};
use crate::journal::{AlertStore, Journal};
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

impl TransportParts {
    /// An in-process bus's subscriber and publisher (standalone, tests).
    pub fn in_process(
        subscriber: impl Subscriber + 'static,
        publisher: Arc<dyn Publisher>,
    ) -> Self {
        Self {
            subscriber: Box::new(subscriber),
            publisher,
            name: "in-process",
            kafka_coords: false,
        }
    }

    /// A Kafka consumer and publisher: each row keeps its topic, partition and offset.
    pub fn kafka(subscriber: impl Subscriber + 'static, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            subscriber: Box::new(subscriber),
            publisher,
            name: "kafka",
            kafka_coords: true,
        }
    }
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

fn start_alerting(
    parts: &AlertingParts,
    settings: &AggregatorSettings,
    store: AlertStore,
    metrics: &AggregatorMetrics,
    summary: Addr<SummaryActor>,
) -> anyhow::Result<Addr<AlertActor>> {
    let a = &parts.settings;
    let policy = a
        .policy(settings.stale_factor, settings.default_interval_seconds)
        .map_err(anyhow::Error::msg)?;
    let channels = a
        .channels
        .iter()
        .map(|c| Channel::from_settings(c, &parts.env))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let fallbacks = a
        .channels
        .iter()
        .filter(|c| !c.fallback.is_empty())
        .map(|c| (c.name.clone(), c.fallback.clone()))
        .collect();
    let schedule = a.outbox().map_err(anyhow::Error::msg)?;
    tracing::info!(channels = a.channels.len(), "alerting starting");
    Ok(AlertActor::new(AlertActorParts {
        policy,
        channels,
        fallbacks,
        schedule,
        repo: Arc::new(store.clone()),
        issues: Arc::new(store.clone()),
        leadership: store.leadership(),
        clock: Arc::clone(&parts.clock),
        summary_url: a.summary_url.clone(),
        tick: Duration::from_millis(a.tick_ms),
        leader_poll: Duration::from_millis(a.leader_poll_ms),
        journal_poll: (a.journal_poll_seconds > 0.0)
            .then(|| Duration::from_secs_f64(a.journal_poll_seconds)),
        seed_window: chrono::Duration::hours(settings.seed_window_hours as i64),
        lag_threshold: a.lag_hold_messages,
        stall_after: Duration::from_millis(a.stall_hold_ms),
        metrics: AlertMetrics {
            notifications: metrics.alert_notifications.clone(),
            open: metrics.alerts_open.clone(),
        },
        // channel health shows in the runtime summary as its own block
        show_health: Some(HealthSink(Arc::new(move |snapshot| {
            summary.do_send(crate::actors::summary::Observe(vec![snapshot]))
        }))),
    })
    .start())
}

/// What the aggregator subscribes to under `prefix`: one librdkafka regex subscription
/// (`^<prefix>telemetry\.<area>\.<name>$`, [`topics::subscription_pattern`]) covering every
/// valid kind, listed in the catalogue or not, including topics created after the start
/// (picked up within `kafka.metadata_refresh_ms`). `telemetry.dlq` and the FIX pilot's
/// `execution.*` order topics do not match. The in-process bus routes the same pattern.
pub fn subscribed_topics(prefix: &str) -> Vec<String> {
    vec![topics::subscription_pattern(prefix)]
}

/// The topics of the catalogue's kinds under `prefix` (to provision them ahead of producers).
pub fn catalogue_topics(prefix: &str) -> Vec<String> {
    telemesh_core::catalogue::entries()
        .iter()
        .map(|entry| topics::topic_name(prefix, &entry.kind))
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
    /// Closed last on stop, so no query is in flight when the runtime goes away.
    journal_handle: Journal,
    /// The journal actor's thread.
    journal_arbiter: actix::Arbiter,
    shutdown_grace: Duration,
    /// The journal retention job, when `journal.retention_days` is set.
    retention: Option<tokio::task::JoinHandle<()>>,
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
        telemesh_core::config::Section::validate(settings)?;
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
        let activities = crate::http::ActivityApi {
            store: Some(crate::journal::ActivityStore::for_journal(&journal)),
            token: settings.activities_token.clone(),
        };
        let refresh_journal = journal.clone();
        let retention = crate::retention::spawn(journal.clone(), Arc::clone(&metrics));
        let health = Arc::new(JournalHealth::default());
        let journal_handle = journal.clone();
        let journal = JournalActor::new(
            journal,
            Arc::clone(&health),
            Arc::clone(&metrics),
            settings.mailbox_capacity,
        )
        .with_timeouts(
            Duration::from_millis(settings.journal_write_timeout_ms),
            Duration::from_millis(settings.journal_read_timeout_ms),
        );
        // the journal actor runs on a thread of its own, with its own write connection: a
        // batch's encoding and database round trips overlap the ingress decoding the next one
        let journal_arbiter = actix::Arbiter::new();
        let journal = JournalActor::start_in_arbiter(&journal_arbiter.handle(), move |_| {
            journal.with_own_writer()
        });
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
        let summary = summary.with_execution_journal(journal_handle.clone());
        let summary_cache = summary.cache();
        let (live, _) = tokio::sync::broadcast::channel(LIVE_CAPACITY);
        let summary = summary.with_live(live.clone()).start();
        let (alerts, api_token) = match alerting.filter(|a| a.settings.enabled) {
            Some(parts) => (
                Some(start_alerting(
                    &parts,
                    settings,
                    alert_store.clone(),
                    &metrics,
                    summary.clone(),
                )?),
                parts.settings.api_token.clone(),
            ),
            None => (None, Default::default()),
        };
        let status: SharedIngressStatus = Arc::new(Mutex::new(IngressStatus {
            liveness_stall_seconds: settings.liveness_stall_seconds,
            ..IngressStatus::default()
        }));
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
            limits: IngressLimits::from_settings(settings),
        };
        let ingress = actix_rt::spawn(ingress.run(shutdown_rx));
        let listener = TcpListener::bind(http_addr).with_context(|| {
            format!("cannot listen on {http_addr}; pick a free address with --http or [http] addr")
        })?;
        let local = listener.local_addr()?;
        let intake = Arc::new(crate::http::intake::Intake::new(
            settings,
            Arc::clone(&transport.publisher),
            topic_prefix,
        ));
        let state = AppState {
            journal: journal.clone(),
            summary: summary.clone(),
            journal_health: health,
            transport: transport.publisher,
            transport_name: transport.name,
            ingress: Arc::clone(&status),
            metrics: Arc::clone(&metrics),
            layout,
            alert_api: AlertApi {
                actor: alerts.clone(),
                repo: alerts
                    .as_ref()
                    .map(|_| Arc::new(alert_store) as Arc<dyn AlertRepo>),
                api_token,
            },
            summary_cache,
            live,
            activities,
            intake,
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
            journal_handle,
            journal_arbiter,
            shutdown_grace: Duration::from_secs(settings.shutdown_grace_seconds.max(1)),
            retention,
        })
    }

    /// Stops consuming (committing the progress of what was journaled), stops the HTTP server
    /// and closes the journal pool, all within `shutdown_grace_seconds` even while the journal
    /// is failing; what is not committed by then is left to the next consumer.
    pub async fn stop(self) {
        if let Some(retention) = &self.retention {
            retention.abort();
        }
        let grace = self.shutdown_grace;
        let deadline = tokio::time::Instant::now() + grace;
        if let Some(alerts) = &self.alerts {
            // give up the alerting leadership at once, so another replica takes over
            let _ = tokio::time::timeout_at(deadline, alerts.send(StopAlerting)).await;
        }
        let _ = self.shutdown.send(true);
        let mut ingress = self.ingress;
        match tokio::time::timeout_at(deadline, &mut ingress).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "ingress task ended abnormally"),
            Err(_) => {
                tracing::warn!(?grace, "ingress did not stop within the shutdown grace; abandoning it (uncommitted messages are replayed by the next consumer)");
                ingress.abort();
            }
        }
        if tokio::time::timeout_at(deadline, self.server.stop(true))
            .await
            .is_err()
        {
            tracing::warn!("http server did not stop within the shutdown grace");
        }
        let _ = tokio::time::timeout_at(deadline, self.server_task).await;
        // the journal actor's write connection closes on its own thread, then the thread ends
        if tokio::time::timeout_at(deadline, self.journal.send(CloseWriter))
            .await
            .is_err()
        {
            tracing::warn!("journal writer did not close within the shutdown grace");
        }
        self.journal_arbiter.stop();
        // close the pool while the runtime is up: in-flight queries finish (each is bounded)
        if tokio::time::timeout_at(deadline, self.journal_handle.close())
            .await
            .is_err()
        {
            tracing::warn!("journal pool did not close within the shutdown grace");
        }
    }
}

/// Makes every panic fatal for the process: the default hook prints it, an error is logged,
/// and the process exits with status 70, so an actor or task that panics is never silently
/// dead (the orchestrator's restart policy takes over; offsets are committed only after the
/// journal, so nothing is lost). Call once from `main` of a long-running process, never from
/// tests.
pub fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        tracing::error!(panic = %info, "a task panicked; exiting so the process is restarted");
        std::process::exit(70);
    }));
}
