//! Owns delivery through the durable outbox: a notification is written to the notification
//! log (`pending`) before it is sent; one worker per channel (so a slow or rate-limited channel
//! delays only itself, and messages to a channel keep their order) retries it on a schedule
//! (exponential, capped, with jitter; a receiver's `Retry-After` in seconds or as an HTTP date
//! wins) until it is delivered or expires, then hands it to the channel's fallback. Every
//! attempt is recorded, so a restart resumes where the last run stopped. Enqueueing never
//! waits for a worker. Channel health (including expiries) feeds `/api/v1/alerts/channels`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::channels::{Channel, IssueBook, Notification, SendError, Sent};
use crate::metrics::AlertMetrics;
use crate::repo::AlertRepo;

/// Longest wait between two attempts, whatever a receiver asks for.
const MAX_WAIT: Duration = Duration::from_secs(120);

/// How a channel is doing.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ChannelHealth {
    pub kind: String,
    pub delivered: u64,
    pub failed: u64,
    pub retries: u64,
    pub consecutive_failures: u32,
    /// Notifications that expired undelivered (handed to the fallback when there is one).
    pub expired: u64,
    /// Notifications waiting in this channel's outbox.
    pub queued: u64,
    /// The channel that takes what this one could not deliver.
    pub fallback: Option<String>,
    /// True after a notification failed for good or expired, until the next success.
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

/// One notification in a channel's outbox.
#[derive(Debug, Clone)]
struct Job {
    n: Notification,
    attempts: u32,
    created_at: DateTime<Utc>,
}

/// Aborts the channel workers when the last [`Dispatcher`] clone is dropped (a replica that
/// loses the alerting leadership stops paging at once).
#[derive(Debug)]
struct Workers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &self.0 {
            worker.abort();
        }
    }
}

/// Routes notifications to per-channel workers through the outbox.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    senders: Arc<HashMap<String, mpsc::UnboundedSender<Job>>>,
    store: Option<Arc<dyn AlertRepo>>,
    health: SharedHealth,
    /// Jobs a worker has taken and not finished (sent and recorded) yet.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    _workers: Arc<Workers>,
}

impl RetrySchedule {
    /// The wait after `attempts` failed attempts: `initial` doubled per attempt, capped at
    /// `max`, then scaled by `jitter` in [0.5, 1] (spreads retries of many replicas/alerts).
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << doublings).min(self.max);
        base.mul_f64(jitter.clamp(0.5, 1.0))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(300),
            expire_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// A jitter factor in [0.5, 1) from the random bits of a fresh UUIDv7.
fn jitter() -> f64 {
    let random = (Uuid::now_v7().as_u128() & 0xffff) as f64 / 65536.0;
    0.5 + random / 2.0
}

/// What a worker needs.
#[derive(Debug, Clone)]
struct Worker {
    client: reqwest::Client,
    channel: Channel,
    fallback: Option<String>,
    store: Option<Arc<dyn AlertRepo>>,
    issues: Arc<dyn IssueBook>,
    health: SharedHealth,
    metrics: AlertMetrics,
    schedule: RetrySchedule,
}

impl Worker {
    fn health(&self, f: impl FnOnce(&mut ChannelHealth)) {
        if let Ok(mut map) = self.health.lock() {
            f(map.entry(self.channel.name.clone()).or_default());
        }
    }

    async fn record(&self, job: &Job, outcome: &str, status: Option<u16>, detail: &str) {
        if let Some(store) = &self.store {
            if let Err(e) = store
                .log_outcome(
                    job.n.id,
                    &self.channel.name,
                    outcome,
                    status,
                    job.attempts,
                    detail,
                )
                .await
            {
                tracing::error!(error = %e, channel = %self.channel.name, "could not record the notification outcome");
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .notifications
            .get_or_create(&vec![
                ("channel".to_owned(), self.channel.name.clone()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
    }

    /// Sends one job until it is delivered, fails for good or expires. Returns the job when
    /// it should go to the fallback channel.
    async fn run(&self, mut job: Job) -> Option<Job> {
        let name = &self.channel.name;
        loop {
            job.attempts += 1;
            let result = self
                .channel
                .send(&self.client, &job.n, self.issues.as_ref())
                .await;
            let error = match result {
                Ok(sent) => {
                    self.count("delivered");
                    self.health(|h| {
                        h.delivered += 1;
                        h.consecutive_failures = 0;
                        h.down = false;
                        h.last_success_at = Some(Utc::now());
                    });
                    tracing::info!(channel = %name, event = job.n.event.name(), alert = %job.n.alert.id, attempts = job.attempts, detail = %sent.detail, "notification delivered");
                    self.record(&job, "delivered", Some(sent.status), &sent.detail)
                        .await;
                    return None;
                }
                Err(e) => e,
            };
            let max_attempts = self.channel.max_attempts;
            self.health(|h| {
                h.consecutive_failures += 1;
                h.last_error = Some(error.to_string());
                // still retrying, but people should know the channel is not getting through
                if h.consecutive_failures >= max_attempts {
                    h.down = true;
                }
            });
            let age = (Utc::now() - job.created_at).to_std().unwrap_or_default();
            let left = self.schedule.expire_after.saturating_sub(age);
            if error.permanent || left.is_zero() {
                let outcome = if error.permanent { "failed" } else { "expired" };
                self.count(outcome);
                self.health(|h| {
                    h.failed += 1;
                    h.down = true;
                    if !error.permanent {
                        h.expired += 1;
                    }
                });
                tracing::error!(channel = %name, event = job.n.event.name(), alert = %job.n.alert.id, attempts = job.attempts, error = %error, fallback = ?self.fallback, "notification {outcome}; the channel counts as down");
                self.record(&job, outcome, error.status, &error.detail)
                    .await;
                return self.fallback.as_ref().map(|_| job);
            }
            let wait = error
                .retry_after
                .unwrap_or_else(|| self.schedule.backoff(job.attempts, jitter()))
                .min(left);
            tracing::warn!(channel = %name, attempt = job.attempts, error = %error, wait_ms = wait.as_millis() as u64, "notification failed; retrying");
            self.health(|h| h.retries += 1);
            self.record(&job, "pending", error.status, &error.detail)
                .await;
            tokio::time::sleep(wait).await;
        }
    }
}

impl Dispatcher {
    /// Starts one outbox worker per channel on the current actix arbiter.
    pub fn start(
        channels: Vec<Channel>,
        store: Option<Arc<dyn AlertRepo>>,
        issues: Arc<dyn IssueBook>,
        metrics: AlertMetrics,
        schedule: RetrySchedule,
        fallbacks: &HashMap<String, String>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("telemesh/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let health: SharedHealth = Arc::default();
        let mut senders = HashMap::new();
        let mut receivers = Vec::new();
        for channel in channels {
            let (tx, rx) = mpsc::unbounded_channel::<Job>();
            let fallback = fallbacks.get(&channel.name).cloned();
            if let Ok(mut map) = health.lock() {
                map.insert(
                    channel.name.clone(),
                    ChannelHealth {
                        kind: channel.kind_name().into(),
                        fallback: fallback.clone(),
                        ..ChannelHealth::default()
                    },
                );
            }
            senders.insert(channel.name.clone(), tx);
            receivers.push((channel, fallback, rx));
        }
        let senders = Arc::new(senders);
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = Vec::new();
        for (channel, fallback, mut rx) in receivers {
            let worker = Worker {
                client: client.clone(),
                channel,
                fallback,
                store: store.clone(),
                issues: Arc::clone(&issues),
                health: Arc::clone(&health),
                metrics: metrics.clone(),
                schedule,
            };
            let senders = Arc::clone(&senders);
            let in_flight = Arc::clone(&in_flight);
            workers.push(actix_rt::spawn(async move {
                use std::sync::atomic::Ordering::SeqCst;
                while let Some(job) = rx.recv().await {
                    worker.health(|h| h.queued = h.queued.saturating_sub(1));
                    in_flight.fetch_add(1, SeqCst);
                    let unsent = worker.run(job).await;
                    in_flight.fetch_sub(1, SeqCst);
                    let Some(job) = unsent else {
                        continue;
                    };
                    let Some(fallback) = &worker.fallback else {
                        continue;
                    };
                    let Some(tx) = senders.get(fallback) else {
                        tracing::error!(channel = %fallback, "fallback channel is not configured");
                        continue;
                    };
                    // a fresh outbox entry on the fallback channel, with its own expiry
                    let n = job.n;
                    if let Some(store) = &worker.store {
                        if let Err(e) = store.log_pending(&n, fallback).await {
                            tracing::error!(error = %e, channel = %fallback, "could not write the fallback notification to the outbox; sending anyway");
                        }
                    }
                    if let Ok(mut map) = worker.health.lock() {
                        map.entry(fallback.clone()).or_default().queued += 1;
                    }
                    let _ = tx.send(Job {
                        n,
                        attempts: 0,
                        created_at: Utc::now(),
                    });
                }
            }));
        }
        Self {
            senders,
            store,
            health,
            in_flight,
            _workers: Arc::new(Workers(workers)),
        }
    }

    fn enqueue(&self, channel: &str, job: Job) {
        let Some(tx) = self.senders.get(channel) else {
            tracing::error!(channel = %channel, "alert routed to an unknown channel");
            return;
        };
        if let Ok(mut map) = self.health.lock() {
            map.entry(channel.to_owned()).or_default().queued += 1;
        }
        if tx.send(job).is_err() {
            tracing::error!(channel = %channel, "channel worker stopped");
        }
    }

    /// The names among `channels` that are configured (others are logged and dropped).
    pub fn known(&self, channels: &[String]) -> Vec<String> {
        channels
            .iter()
            .filter(|name| {
                let known = self.senders.contains_key(*name);
                if !known {
                    tracing::error!(channel = %name, "alert routed to an unknown channel");
                }
                known
            })
            .cloned()
            .collect()
    }

    /// Queues a notification already written to the outbox (see
    /// [`AlertRepo::upsert_with_outbox`]). Never waits.
    pub fn enqueue_written(&self, n: Notification, channels: &[String]) {
        for name in channels {
            self.enqueue(
                name,
                Job {
                    n: n.clone(),
                    attempts: 0,
                    created_at: Utc::now(),
                },
            );
        }
    }

    /// Writes the notification to the outbox of each channel, then queues it. Unknown channel
    /// names are logged and skipped. Waits only for the outbox write, never for a worker.
    pub async fn dispatch(&self, n: Notification, channels: &[String]) {
        for name in channels {
            if !self.senders.contains_key(name) {
                tracing::error!(channel = %name, "alert routed to an unknown channel");
                continue;
            }
            if let Some(store) = &self.store {
                if let Err(e) = store.log_pending(&n, name).await {
                    tracing::error!(error = %e, channel = %name, "could not write the notification to the outbox; sending anyway");
                }
            }
            self.enqueue(
                name,
                Job {
                    n: n.clone(),
                    attempts: 0,
                    created_at: Utc::now(),
                },
            );
        }
    }

    /// Re-queues what the outbox holds: notifications a previous run (or a previous leader)
    /// wrote but never finished. Their attempts and age carry over.
    pub async fn resume_pending(&self) -> usize {
        let Some(store) = &self.store else { return 0 };
        match store.pending_notifications().await {
            Ok(pending) => {
                let count = pending.len();
                for entry in pending {
                    tracing::info!(channel = %entry.channel, alert = %entry.notification.alert.id, event = entry.notification.event.name(), attempts = entry.attempts, "re-sending a notification from the outbox");
                    self.enqueue(
                        &entry.channel,
                        Job {
                            n: entry.notification,
                            attempts: entry.attempts,
                            created_at: entry.created_at,
                        },
                    );
                }
                count
            }
            Err(e) => {
                tracing::error!(error = %e, "could not read the outbox");
                0
            }
        }
    }

    /// Waits (at most `within`) until no worker is in the middle of a notification, so a
    /// graceful stop does not cut a page between "sent" and "recorded" (which would make the
    /// next leader send it again).
    pub async fn settle(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn health(&self) -> BTreeMap<String, ChannelHealth> {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// When the outbox retries a notification and when it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Wait after the first failed attempt.
    pub initial: Duration,
    /// Longest wait between attempts of the schedule (a receiver's `Retry-After` may ask for
    /// longer, up to the expiry).
    pub max: Duration,
    /// Age at which an undelivered notification expires.
    pub expire_after: Duration,
}

/// The kind of the snapshot through which the alerting leader shows its channels in the
/// runtime summary.
pub const HEALTH_KIND: &str = "telemesh.alerting";

/// Channel health as a snapshot for the runtime summary: a channel that is down (failed or
/// expired notifications, or `max_attempts` failures in a row) is `fail`, one still retrying
/// is `warn`. Error texts are already redacted.
pub fn health_snapshot(
    health: &BTreeMap<String, ChannelHealth>,
    now: DateTime<Utc>,
    interval_seconds: f64,
) -> telemesh_core::Snapshot {
    use telemesh_core::{Component, Grade, Snapshot, Source};
    let mut snapshot = Snapshot::new(HEALTH_KIND, Source::new("telemesh-alerting", "leader"), now);
    for (name, h) in health {
        let (grade, summary) = if h.down {
            (
                Grade::Fail,
                format!(
                    "down: {} expired, {} failed; last error: {}",
                    h.expired,
                    h.failed,
                    h.last_error.as_deref().unwrap_or("none")
                ),
            )
        } else if h.consecutive_failures > 0 {
            (
                Grade::Warn,
                format!(
                    "retrying ({} failures in a row, {} queued)",
                    h.consecutive_failures, h.queued
                ),
            )
        } else {
            (Grade::Ok, format!("delivering ({} delivered)", h.delivered))
        };
        snapshot.push(Component::new(name.clone(), grade, summary));
    }
    snapshot.status = Grade::worst(snapshot.components.iter().map(|c| c.status));
    let down: Vec<&str> = snapshot
        .components
        .iter()
        .filter(|c| c.status == Grade::Fail)
        .map(|c| c.name.as_str())
        .collect();
    snapshot.summary = if down.is_empty() {
        format!("{} alert channel(s) delivering", health.len())
    } else {
        format!("alert channel(s) not delivering: {}", down.join(", "))
    };
    snapshot.metric(crate::engine::INTERVAL_METRIC, interval_seconds);
    snapshot.markdown = snapshot.render_markdown(HEALTH_KIND);
    snapshot
}
