//! Owns the plain data the evaluators grade: per-session telemetry ([`SessionState`]), queue
//! counters ([`QueueState`]) and the whole [`PilotState`]. No engine types.

use serde::Serialize;

use crate::orders::OrderPosture;
use crate::reconciler::ReconSummary;
use crate::settings::ExecutionsSource;

/// A session's FIX state, mirroring the engine's without depending on it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Configured, not started yet.
    #[default]
    NotStarted,
    /// Connecting or waiting for the venue's Logon.
    AwaitingLogon,
    /// Logged on.
    Active,
    /// Logged on, recovering a sequence gap (ResendRequest in flight).
    AwaitingResend {
        begin: u64,
        end: u64,
        attempts: usize,
    },
    AwaitingLogout,
    LoggedOut,
    Disconnected,
}

impl SessionStatus {
    pub fn name(&self) -> &'static str {
        match self {
            SessionStatus::NotStarted => "not_started",
            SessionStatus::AwaitingLogon => "awaiting_logon",
            SessionStatus::Active => "active",
            SessionStatus::AwaitingResend { .. } => "awaiting_resend",
            SessionStatus::AwaitingLogout => "awaiting_logout",
            SessionStatus::LoggedOut => "logged_out",
            SessionStatus::Disconnected => "disconnected",
        }
    }

    /// Logged on (possibly recovering a gap).
    pub fn is_logged_on(&self) -> bool {
        matches!(
            self,
            SessionStatus::Active | SessionStatus::AwaitingResend { .. }
        )
    }
}

/// Telemetry of one FIX session.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionState {
    pub configured: bool,
    /// `SENDER->TARGET@host:port`.
    pub endpoint: String,
    pub status: SessionStatus,
    /// When the status last changed (ms since the epoch).
    pub since_ms: Option<i64>,
    pub heartbeat_interval_s: u64,
    pub last_inbound_ms: Option<i64>,
    pub next_sender_seq: Option<u64>,
    pub next_target_seq: Option<u64>,
    /// Sequence gaps detected (times a resend started).
    pub gaps: u64,
    /// ResendRequests sent (attempts).
    pub resend_requests: u64,
    pub messages_in: u64,
    pub poss_dup_in: u64,
    pub logons: u64,
    /// Logons after the first: each one followed a disconnect.
    pub reconnects: u64,
    pub disconnects: u64,
    pub last_logout_reason: Option<String>,
    /// Messages rejected as execution reports (bad input), this session.
    pub rejected: u64,
}

impl SessionState {
    /// Age of the last inbound message, ms.
    pub fn heartbeat_age_ms(&self, now_ms: i64) -> Option<i64> {
        self.last_inbound_ms
            .map(|t| now_ms.saturating_sub(t).max(0))
    }

    /// The in-flight resend range, if any.
    pub fn resend_in_flight(&self) -> Option<(u64, u64)> {
        match self.status {
            SessionStatus::AwaitingResend { begin, end, .. } => Some((begin, end)),
            _ => None,
        }
    }
}

/// Queue counters of the gateway and the inbound path.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueState {
    /// Inbound messages received from the sessions, not yet processed.
    pub inbound_backlog: u64,
    /// Inbound messages processed.
    pub inbound_processed: u64,
    /// Inbound messages dropped because the queue was full.
    pub inbound_drops: u64,
    /// Order requests read from Kafka, not yet sent (or refused) on the trading session.
    pub outbound_pending: u64,
    pub orders_sent: u64,
    /// Order requests refused (bad JSON, unknown order to cancel, session down).
    pub orders_refused: u64,
    pub executions_published: u64,
    pub executions_publish_failed: u64,
}

/// Everything the `telemetry.execution.fix_pilot` snapshot is graded from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PilotState {
    pub executions_source: ExecutionsSource,
    pub trading: SessionState,
    pub dropcopy: SessionState,
    pub queues: QueueState,
    pub orders: OrderPosture,
    /// The reconciliation, when a drop copy is configured.
    pub recon: Option<ReconSummary>,
    /// Execution readiness, derived from the order book and the fields above
    /// ([`crate::execution::ExecutionState::derive`]; `None` until derived).
    pub execution: Option<crate::execution::ExecutionState>,
}
