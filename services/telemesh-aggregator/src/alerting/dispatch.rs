//! Owns delivery: one worker per channel (so a slow or rate-limited channel delays only
//! itself, and messages to a channel keep their order), retries with exponential backoff,
//! `Retry-After` honoured, every attempt's outcome written to the notification log, and
//! channel health for telemetry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use super::channels::{Channel, IssueBook, Notification, SendError, Sent};
use super::store::AlertStore;
use crate::metrics::AggregatorMetrics;

/// Longest wait between two attempts, whatever a receiver asks for.
const MAX_WAIT: Duration = Duration::from_secs(120);

/// How a channel is doing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelHealth {
    pub kind: String,
    pub delivered: u64,
    pub failed: u64,
    pub retries: u64,
    pub consecutive_failures: u32,
    /// True after a notification exhausted its attempts, until the next success.
    pub down: bool,
    pub last_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
}

/// Shared channel health.
pub type SharedHealth = Arc<Mutex<BTreeMap<String, ChannelHealth>>>;

/// Sends `n` through `channel`, retrying retryable failures. Returns the result and the
/// number of attempts made.
pub async fn deliver(
    client: &reqwest::Client,
    channel: &Channel,
    n: &Notification,
    issues: &dyn IssueBook,
    health: Option<&SharedHealth>,
) -> (Result<Sent, SendError>, u32) {
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match channel.send(client, n, issues).await {
            Ok(sent) => return (Ok(sent), attempt),
            Err(e) if e.permanent || attempt >= channel.max_attempts => return (Err(e), attempt),
            Err(e) => {
                let wait = e.retry_after.unwrap_or(backoff).min(MAX_WAIT);
                tracing::warn!(channel = %channel.name, attempt, error = %e, wait_ms = wait.as_millis() as u64, "notification failed; retrying");
                if let Some(h) = health {
                    if let Ok(mut map) = h.lock() {
                        map.entry(channel.name.clone()).or_default().retries += 1;
                    }
                }
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Routes notifications to per-channel workers.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    senders: HashMap<String, mpsc::Sender<Notification>>,
    store: Option<AlertStore>,
    health: SharedHealth,
}

impl Dispatcher {
    /// Starts one worker per channel on the current actix arbiter.
    pub fn start(
        channels: Vec<Channel>,
        store: Option<AlertStore>,
        issues: Arc<dyn IssueBook>,
        metrics: Arc<AggregatorMetrics>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("telemesh/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let health: SharedHealth = Arc::default();
        let mut senders = HashMap::new();
        for channel in channels {
            let (tx, mut rx) = mpsc::channel::<Notification>(1024);
            if let Ok(mut map) = health.lock() {
                map.insert(
                    channel.name.clone(),
                    ChannelHealth {
                        kind: channel.kind_name().into(),
                        ..ChannelHealth::default()
                    },
                );
            }
            senders.insert(channel.name.clone(), tx);
            let (client, store, issues, health, metrics) = (
                client.clone(),
                store.clone(),
                Arc::clone(&issues),
                Arc::clone(&health),
                Arc::clone(&metrics),
            );
            actix_rt::spawn(async move {
                while let Some(n) = rx.recv().await {
                    let (result, attempts) =
                        deliver(&client, &channel, &n, issues.as_ref(), Some(&health)).await;
                    let (outcome, status, detail) = match &result {
                        Ok(sent) => ("delivered", Some(sent.status), sent.detail.clone()),
                        Err(e) => ("failed", e.status, e.to_string()),
                    };
                    metrics
                        .alert_notifications
                        .get_or_create(&vec![
                            ("channel".to_owned(), channel.name.clone()),
                            ("outcome".to_owned(), outcome.to_owned()),
                        ])
                        .inc();
                    if let Ok(mut map) = health.lock() {
                        let h = map.entry(channel.name.clone()).or_default();
                        match &result {
                            Ok(_) => {
                                h.delivered += 1;
                                h.consecutive_failures = 0;
                                h.down = false;
                                h.last_success_at = Some(Utc::now());
                            }
                            Err(e) => {
                                h.failed += 1;
                                h.consecutive_failures += 1;
                                h.down = true;
                                h.last_error = Some(e.to_string());
                            }
                        }
                    }
                    match &result {
                        Ok(sent) => {
                            tracing::info!(channel = %channel.name, event = n.event.name(), alert = %n.alert.id, detail = %sent.detail, "notification delivered")
                        }
                        Err(e) => {
                            tracing::error!(channel = %channel.name, event = n.event.name(), alert = %n.alert.id, attempts, error = %e, "notification failed; the channel counts as down")
                        }
                    }
                    if let Some(store) = &store {
                        if let Err(e) = store
                            .log_outcome(n.id, &channel.name, outcome, status, attempts, &detail)
                            .await
                        {
                            tracing::error!(error = %e, "could not record the notification outcome");
                        }
                    }
                }
            });
        }
        Self {
            senders,
            store,
            health,
        }
    }

    /// Logs the notification as pending for each channel, then queues it. Unknown channel
    /// names are logged and skipped.
    pub async fn dispatch(&self, n: Notification, channels: &[String]) {
        for name in channels {
            let Some(tx) = self.senders.get(name) else {
                tracing::error!(channel = %name, "alert routed to an unknown channel");
                continue;
            };
            if let Some(store) = &self.store {
                if let Err(e) = store.log_pending(&n, name).await {
                    tracing::error!(error = %e, channel = %name, "could not log the notification; sending anyway");
                }
            }
            if tx.send(n.clone()).await.is_err() {
                tracing::error!(channel = %name, "channel worker stopped");
            }
        }
    }

    /// Re-queues notifications a previous run logged but never answered.
    pub async fn resume_pending(&self) {
        let Some(store) = &self.store else { return };
        match store.pending_notifications().await {
            Ok(pending) => {
                for (channel, n) in pending {
                    tracing::info!(channel = %channel, alert = %n.alert.id, event = n.event.name(), "re-sending a notification interrupted by a restart");
                    if let Some(tx) = self.senders.get(&channel) {
                        let _ = tx.send(n).await;
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "could not read pending notifications"),
        }
    }

    pub fn health(&self) -> BTreeMap<String, ChannelHealth> {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }
}
