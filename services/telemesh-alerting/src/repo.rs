//! Owns the contract between alerting and its storage: [`AlertRepo`] (alert records, the
//! notification log that doubles as the outbox, GitHub issue numbers through [`IssueBook`],
//! and the newest snapshot of each source for rebuilding staleness after a restart). The
//! aggregator's journal implements it; this crate runs no SQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use telemesh_core::Snapshot;
use uuid::Uuid;

use crate::channels::{IssueBook, Notification};
use crate::engine::Alert;

/// Why the alert store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    #[error("alert store unavailable: {0}; check the journal database")]
    Unavailable(String),
    #[error("alert store row is corrupt: {0}")]
    Corrupt(String),
}

/// Which alerts a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// Pending or firing (acknowledged or not).
    Open,
    Pending,
    Firing,
    Acknowledged,
    Resolved,
    All,
}

impl std::str::FromStr for StateFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "open" => StateFilter::Open,
            "pending" => StateFilter::Pending,
            "firing" => StateFilter::Firing,
            "acknowledged" => StateFilter::Acknowledged,
            "resolved" => StateFilter::Resolved,
            "all" => StateFilter::All,
            other => {
                return Err(format!(
                    "state={other:?}; use open, pending, firing, acknowledged, resolved or all"
                ))
            }
        })
    }
}

/// One row of the notification log.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LoggedNotification {
    pub id: Uuid,
    pub channel: String,
    pub alert_id: Uuid,
    pub event: String,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub attempts: i64,
    pub detail: String,
    pub created_at: String,
}

/// A notification of the outbox not yet answered: written before it was first sent.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub channel: String,
    pub notification: Notification,
    /// Attempts made so far (by any run).
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// Where alert state lives.
#[async_trait]
pub trait AlertRepo: IssueBook {
    /// Inserts or replaces an alert record.
    async fn upsert(&self, alert: &Alert) -> Result<(), RepoError>;
    /// Stores an alert and writes its notification to the outbox of each channel, in one
    /// transaction: a crash cannot leave a firing alert whose page was never written.
    async fn upsert_with_outbox(
        &self,
        alert: &Alert,
        n: &Notification,
        channels: &[String],
    ) -> Result<(), RepoError>;
    /// Alerts, newest first. `Acknowledged` means firing with an acknowledgement.
    async fn list(&self, filter: StateFilter, limit: u32) -> Result<Vec<Alert>, RepoError>;
    /// One alert by id.
    async fn get(&self, id: Uuid) -> Result<Option<Alert>, RepoError>;
    /// Writes a notification for a channel to the outbox (outcome `pending`) before it is
    /// sent; writing the same id and channel twice keeps the first.
    async fn log_pending(&self, n: &Notification, channel: &str) -> Result<(), RepoError>;
    /// Records an attempt or how a notification ended for a channel (`pending` while it is
    /// still being retried, then `delivered`, `failed` or `expired`).
    async fn log_outcome(
        &self,
        id: Uuid,
        channel: &str,
        outcome: &str,
        status: Option<u16>,
        attempts: u32,
        detail: &str,
    ) -> Result<(), RepoError>;
    /// The outbox: notifications written but not yet answered, oldest first.
    async fn pending_notifications(&self) -> Result<Vec<OutboxEntry>, RepoError>;
    /// The notification log of one alert.
    async fn notifications(&self, alert_id: Uuid) -> Result<Vec<LoggedNotification>, RepoError>;
    /// The newest snapshot of each (kind, source) generated after `since`, to rebuild which
    /// sources the engine watches for staleness.
    async fn latest_snapshots(&self, since: DateTime<Utc>) -> Result<Vec<Snapshot>, RepoError>;
}

/// The alerting leadership among replicas: only the holder evaluates and pages.
#[async_trait]
pub trait Leadership: Send + Sync + std::fmt::Debug {
    /// Takes the leadership when free, or checks this replica still holds it; `Ok(true)`
    /// while this replica leads.
    async fn try_lead(&self) -> Result<bool, RepoError>;
    /// Gives the leadership up (on shutdown), so a follower takes over at once.
    async fn release(&self);
}

/// The leadership of a host that runs one replica (standalone, SQLite): always held.
#[derive(Debug, Default)]
pub struct SoleLeader;

#[async_trait]
impl Leadership for SoleLeader {
    async fn try_lead(&self) -> Result<bool, RepoError> {
        Ok(true)
    }

    async fn release(&self) {}
}
