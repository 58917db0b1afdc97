//! Owns the safety of the Kafka order gateway: every order request read from
//! `[fix_pilot] orders_topic` ends as exactly one of *sent* (the trading session took it: it
//! has a FIX sequence number and is in the session's store) or *rejected with a reason*, and
//! that outcome is published on `order_events_topic` before the request's offset is
//! committed. Never silently dropped, never sent twice.
//!
//! - The orders consumer starts at `latest` for a new group, and commits the first offset it
//!   is given before acting on it, so a crash before the first commit resumes there.
//! - A request older than `max_request_age_seconds` when it would be sent is rejected (`aged`).
//! - ClOrdIDs are journaled in [`ClOrdIdStore`] (a JSON-lines file, fsync'd before the send),
//!   so a duplicate is refused across restarts, and a request redelivered after a crash is
//!   recognised by its Kafka position: already sent → its `sent` event again, nothing sent; in
//!   doubt (crash between journal and send) → sent again with PossResend (97=Y).
//! - No session: the request waits up to `session_wait_seconds`, then is rejected
//!   (`no_session`).
//!
//! [`admit`] and [`age_check`] are pure; [`OrderGateway::process`] runs one request against a
//! session; [`run_consumer`] is the Kafka loop.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Message, Recipient};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use telemesh_core::codec::CONTENT_TYPE_HEADER;
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::kafka::{KafkaPublisher, KafkaSubscriber, OffsetReset};
use telemesh_core::transport::{OutboundMessage, Position, Publisher, Subscriber};

use crate::gateway::{OrderRequest, RequestError};
use crate::session::{OrderMessage, SessionError, SessionLink};
use crate::state::SessionStatus;

/// The journal file inside `gateway_store_dir`.
pub const STORE_FILE: &str = "cl_ord_ids.jsonl";

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The gateway's limits, from `[fix_pilot]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GatewayPolicy {
    pub max_age_ms: i64,
    pub session_wait: Duration,
}

/// Why a request was rejected: the `reason` of a rejected order event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not the documented JSON schema, or a value that cannot be sent.
    Invalid,
    /// Older than `max_request_age_seconds` (or no time to tell its age by).
    Aged,
    /// `created_at` ahead of the gateway's clock by more than the maximum age.
    FromTheFuture,
    /// Its ClOrdID was already used by another request.
    DuplicateClOrdId,
    /// A cancel naming an order the pilot does not know.
    UnknownOrder,
    /// The trading session was not logged on within `session_wait_seconds`.
    NoSession,
    /// Redelivered after a crash that may have come after the send, and now too old to send
    /// again: ask the venue.
    InDoubt,
    /// The ClOrdID journal cannot be read or written: nothing is sent without it.
    StoreUnavailable,
    /// The session refused the message after it was journaled.
    SendFailed,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Invalid => "invalid",
            RejectReason::Aged => "aged",
            RejectReason::FromTheFuture => "from_the_future",
            RejectReason::DuplicateClOrdId => "duplicate_cl_ord_id",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::NoSession => "no_session",
            RejectReason::InDoubt => "in_doubt",
            RejectReason::StoreUnavailable => "store_unavailable",
            RejectReason::SendFailed => "send_failed",
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent {
        cl_ord_id: String,
        /// The FIX MsgSeqNum it went out with (none when only the journal knows it was sent).
        seq_num: Option<u64>,
        /// Sent again with PossResend (97=Y) after a crash left it in doubt.
        poss_resend: bool,
        /// A redelivery of a request already sent: nothing was sent this time.
        replayed: bool,
    },
    Rejected {
        cl_ord_id: Option<String>,
        reason: RejectReason,
        detail: String,
    },
}

impl Outcome {
    pub fn rejected(
        cl_ord_id: Option<&str>,
        reason: RejectReason,
        detail: impl Into<String>,
    ) -> Self {
        Outcome::Rejected {
            cl_ord_id: cl_ord_id.map(str::to_owned),
            reason,
            detail: detail.into(),
        }
    }

    /// The answer of the direct [`crate::Submit`] path.
    pub fn into_result(self) -> Result<(), RequestError> {
        match self {
            Outcome::Sent { .. } => Ok(()),
            Outcome::Rejected {
                cl_ord_id,
                reason: RejectReason::NoSession,
                ..
            } => Err(RequestError::NoSession(cl_ord_id.unwrap_or_default())),
            Outcome::Rejected {
                cl_ord_id,
                reason,
                detail,
            } => Err(RequestError::Rejected {
                cl_ord_id: cl_ord_id.unwrap_or_default(),
                reason: reason.code(),
                detail,
            }),
        }
    }
}

/// Where a request came from on Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRef {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl RequestRef {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// One message on `order_events_topic` (JSON, keyed by ClOrdID).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Absent when the request could not be read.
    pub cl_ord_id: Option<String>,
    /// `sent` or `rejected`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_num: Option<u64>,
    #[serde(default)]
    pub poss_resend: bool,
    #[serde(default)]
    pub replayed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestRef>,
    pub at: DateTime<Utc>,
}

impl OrderEvent {
    pub fn new(outcome: &Outcome, request: Option<RequestRef>, at: DateTime<Utc>) -> Self {
        match outcome {
            Outcome::Sent {
                cl_ord_id,
                seq_num,
                poss_resend,
                replayed,
            } => Self {
                cl_ord_id: Some(cl_ord_id.clone()),
                outcome: "sent".into(),
                reason: None,
                detail: None,
                seq_num: *seq_num,
                poss_resend: *poss_resend,
                replayed: *replayed,
                request,
                at,
            },
            Outcome::Rejected {
                cl_ord_id,
                reason,
                detail,
            } => Self {
                cl_ord_id: cl_ord_id.clone(),
                outcome: "rejected".into(),
                reason: Some(*reason),
                detail: Some(detail.clone()),
                seq_num: None,
                poss_resend: false,
                replayed: false,
                request,
                at,
            },
        }
    }
}

// ---------------------------------------------------------------- the ClOrdID journal

/// The state of a journaled ClOrdID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendState {
    /// Journaled before the send; the send's result is not journaled (yet).
    Sending,
    /// The session took it.
    Sent,
}

/// One journaled ClOrdID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEntry {
    pub cl_ord_id: String,
    pub state: SendState,
    /// `topic/partition/offset` of the request, when it came from Kafka.
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub seq_num: Option<u64>,
    pub at: DateTime<Utc>,
}

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the ClOrdID journal {path}: {source}; set fix_pilot.gateway_store_dir to a writable directory on persistent storage")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the ClOrdID journal {path} is corrupt at line {line}: {detail}; move it aside only after checking the venue's orders for those ClOrdIDs")]
    Corrupt {
        path: String,
        line: usize,
        detail: String,
    },
}

/// Every ClOrdID the gateway journaled: an append-only JSON-lines file, one `write` + `fsync`
/// per state change, read back whole at start. A torn last line (a crash mid-write) is cut
/// off; damage anywhere else stops the gateway rather than risk a duplicate.
#[derive(Debug)]
pub struct ClOrdIdStore {
    path: PathBuf,
    file: File,
    entries: HashMap<String, StoreEntry>,
    in_flight: HashSet<String>,
}

impl ClOrdIdStore {
    /// Opens (creating) `dir/cl_ord_ids.jsonl` and reads it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(STORE_FILE);
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let existed = path.exists();
        let bytes = if existed {
            std::fs::read(&path).map_err(io)?
        } else {
            Vec::new()
        };
        let mut entries = HashMap::new();
        let mut good_len = 0usize;
        for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            if !line.ends_with(b"\n") {
                // only the last chunk lacks its newline: a write cut short by a crash, never
                // fsync'd, so never followed by a send
                tracing::warn!(path = %path.display(), "ClOrdID journal: torn last line cut off");
                break;
            }
            good_len += line.len();
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let entry =
                serde_json::from_slice::<StoreEntry>(text).map_err(|e| StoreError::Corrupt {
                    path: path.display().to_string(),
                    line: i + 1,
                    detail: e.to_string(),
                })?;
            entries.insert(entry.cl_ord_id.clone(), entry);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if good_len < bytes.len() {
            file.set_len(good_len as u64).map_err(io)?;
        }
        if !existed {
            // make the new file's directory entry durable too
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(Self {
            path,
            file,
            entries,
            in_flight: HashSet::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, cl_ord_id: &str) -> Option<&StoreEntry> {
        self.entries.get(cl_ord_id)
    }

    /// Appends `entry` and fsyncs before returning.
    pub fn record(&mut self, entry: StoreEntry) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(&entry).map_err(|e| StoreError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| StoreError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
        self.entries.insert(entry.cl_ord_id.clone(), entry);
        Ok(())
    }
}

// ---------------------------------------------------------------- pure decisions

/// What to do with a request, decided before anything is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Send it (again with PossResend when a crash left it in doubt).
    Send { poss_resend: bool },
    /// A redelivery of a request the session already took: answer `sent` again, send nothing.
    AlreadySent { seq_num: Option<u64> },
    Reject {
        reason: RejectReason,
        detail: String,
    },
}

/// Whether a request created at `created_ms` may still be sent at `now_ms`.
pub fn age_check(
    created_ms: Option<i64>,
    now_ms: i64,
    policy: &GatewayPolicy,
) -> Result<(), (RejectReason, String)> {
    let Some(created) = created_ms else {
        return Err((
            RejectReason::Aged,
            "the request has no created_at and no Kafka timestamp: its age is unknown, so it is not sent; add created_at".into(),
        ));
    };
    let age = now_ms.saturating_sub(created);
    if age > policy.max_age_ms {
        return Err((
            RejectReason::Aged,
            format!(
                "the request is {:.1} s old, more than fix_pilot.max_request_age_seconds ({:.1} s): not sent; send a new request if the order is still wanted",
                age as f64 / 1000.0,
                policy.max_age_ms as f64 / 1000.0
            ),
        ));
    }
    if -age > policy.max_age_ms {
        return Err((
            RejectReason::FromTheFuture,
            format!(
                "created_at is {:.1} s ahead of the gateway's clock: not sent; check the producer's clock",
                -age as f64 / 1000.0
            ),
        ));
    }
    Ok(())
}

/// Decides a request from the journal entry of its ClOrdID, whether another request with
/// that ClOrdID is being processed, where it came from, and its age.
pub fn admit(
    cl_ord_id: &str,
    journaled: Option<&StoreEntry>,
    in_flight: bool,
    request: Option<&str>,
    created_ms: Option<i64>,
    now_ms: i64,
    policy: &GatewayPolicy,
) -> Admission {
    if in_flight {
        return Admission::Reject {
            reason: RejectReason::DuplicateClOrdId,
            detail: format!("ClOrdID {cl_ord_id} is being sent by another request right now"),
        };
    }
    if let Some(entry) = journaled {
        let redelivery = request.is_some() && entry.request.as_deref() == request;
        return match (redelivery, entry.state) {
            (true, SendState::Sent) => Admission::AlreadySent {
                seq_num: entry.seq_num,
            },
            (true, SendState::Sending) => match age_check(created_ms, now_ms, policy) {
                Ok(()) => Admission::Send { poss_resend: true },
                Err((_, why)) => Admission::Reject {
                    reason: RejectReason::InDoubt,
                    detail: format!(
                        "a crash came between journaling ClOrdID {cl_ord_id} and the venue's answer, and {why}; ask the venue whether it has ClOrdID {cl_ord_id}"
                    ),
                },
            },
            (false, _) => Admission::Reject {
                reason: RejectReason::DuplicateClOrdId,
                detail: format!(
                    "ClOrdID {cl_ord_id} was already used at {} ({}): nothing sent; use a new ClOrdID",
                    entry.at.to_rfc3339(),
                    match entry.state {
                        SendState::Sent => "sent",
                        SendState::Sending => "sent or in doubt",
                    }
                ),
            },
        };
    }
    match age_check(created_ms, now_ms, policy) {
        Ok(()) => Admission::Send { poss_resend: false },
        Err((reason, detail)) => Admission::Reject { reason, detail },
    }
}

// ---------------------------------------------------------------- one request

/// A request ready for the session: the FIX message is built (a cancel needs the order book).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub cl_ord_id: String,
    pub message: OrderMessage,
    pub created_ms: Option<i64>,
    pub request: Option<RequestRef>,
}

/// The journal and the limits shared by every request.
#[derive(Debug, Clone)]
pub struct OrderGateway {
    store: Result<Arc<Mutex<ClOrdIdStore>>, String>,
    policy: GatewayPolicy,
}

impl OrderGateway {
    /// A gateway journaling in `dir`; if the journal cannot be opened, every request is
    /// rejected (`store_unavailable`) and the error says why.
    pub fn open(dir: &Path, policy: GatewayPolicy) -> Self {
        let store = ClOrdIdStore::open(dir)
            .map(|s| {
                tracing::info!(path = %s.path().display(), cl_ord_ids = s.len(), "ClOrdID journal open");
                Arc::new(Mutex::new(s))
            })
            .map_err(|e| {
                tracing::error!(error = %e, "order gateway: no ClOrdID journal, every order request will be rejected");
                e.to_string()
            });
        Self { store, policy }
    }

    fn lock(store: &Mutex<ClOrdIdStore>) -> std::sync::MutexGuard<'_, ClOrdIdStore> {
        // a panic while holding the lock leaves the journal itself consistent (fsync'd lines)
        store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs one request to its outcome: admission, waiting for the session, journal, send.
    pub async fn process(&self, link: Option<SessionLink>, prepared: Prepared) -> Outcome {
        let cl = prepared.cl_ord_id.clone();
        if link.is_none() {
            return Outcome::rejected(
                Some(&cl),
                RejectReason::NoSession,
                "the trading session is not configured or not started: nothing sent",
            );
        }
        let store = match &self.store {
            Ok(store) => Arc::clone(store),
            Err(e) => {
                return Outcome::rejected(Some(&cl), RejectReason::StoreUnavailable, e.clone())
            }
        };
        let request_key = prepared.request.as_ref().map(RequestRef::key);
        let admission = {
            let mut s = Self::lock(&store);
            let admission = admit(
                &cl,
                s.get(&cl),
                s.in_flight.contains(&cl),
                request_key.as_deref(),
                prepared.created_ms,
                now_ms(),
                &self.policy,
            );
            if matches!(admission, Admission::Send { .. }) {
                s.in_flight.insert(cl.clone());
            }
            admission
        };
        let poss_resend = match admission {
            Admission::Send { poss_resend } => poss_resend,
            Admission::AlreadySent { seq_num } => {
                return Outcome::Sent {
                    cl_ord_id: cl,
                    seq_num,
                    poss_resend: false,
                    replayed: true,
                }
            }
            Admission::Reject { reason, detail } => {
                return Outcome::rejected(Some(&cl), reason, detail)
            }
        };
        let outcome = self
            .send(link, &store, prepared, request_key, poss_resend)
            .await;
        Self::lock(&store).in_flight.remove(&cl);
        outcome
    }

    async fn send(
        &self,
        link: Option<SessionLink>,
        store: &Mutex<ClOrdIdStore>,
        prepared: Prepared,
        request_key: Option<String>,
        poss_resend: bool,
    ) -> Outcome {
        let cl = prepared.cl_ord_id.clone();
        let Some(link) = link else {
            return Outcome::rejected(
                Some(&cl),
                RejectReason::NoSession,
                "the trading session is not configured or not started: nothing sent",
            );
        };
        let message = if poss_resend {
            prepared.message.clone().poss_resend()
        } else {
            prepared.message.clone()
        };
        let deadline = tokio::time::Instant::now() + self.policy.session_wait;
        let mut journaled = poss_resend; // a request in doubt is journaled already
        loop {
            if !wait_for_session(&link, deadline).await {
                return Outcome::rejected(
                    Some(&cl),
                    RejectReason::NoSession,
                    format!(
                        "the trading session was not logged on within fix_pilot.session_wait_seconds ({:.1} s): nothing sent; send it again once the session is up",
                        self.policy.session_wait.as_secs_f64()
                    ),
                );
            }
            // the wait may have aged it
            if let Err((reason, detail)) = age_check(prepared.created_ms, now_ms(), &self.policy) {
                let reason = if poss_resend {
                    RejectReason::InDoubt
                } else {
                    reason
                };
                return Outcome::rejected(Some(&cl), reason, detail);
            }
            if !journaled {
                let entry = StoreEntry {
                    cl_ord_id: cl.clone(),
                    state: SendState::Sending,
                    request: request_key.clone(),
                    seq_num: None,
                    at: Utc::now(),
                };
                if let Err(e) = Self::lock(store).record(entry) {
                    return Outcome::rejected(
                        Some(&cl),
                        RejectReason::StoreUnavailable,
                        format!("{e}; nothing sent"),
                    );
                }
                journaled = true;
            }
            match link.send(message.clone()).await {
                Ok(seq) => {
                    let entry = StoreEntry {
                        cl_ord_id: cl.clone(),
                        state: SendState::Sent,
                        request: request_key,
                        seq_num: Some(seq),
                        at: Utc::now(),
                    };
                    if let Err(e) = Self::lock(store).record(entry) {
                        // it was sent: a redelivery finds it in doubt and resends with PossResend
                        tracing::error!(cl_ord_id = %cl, error = %e, "order sent but not journaled as sent");
                    }
                    return Outcome::Sent {
                        cl_ord_id: cl,
                        seq_num: Some(seq),
                        poss_resend,
                        replayed: false,
                    };
                }
                // refused before it got a sequence number: wait for the session again
                Err(SessionError::Disconnected) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    return Outcome::rejected(
                        Some(&cl),
                        RejectReason::SendFailed,
                        format!("{e}; the venue may or may not have ClOrdID {cl}: ask it, and do not reuse the ClOrdID"),
                    );
                }
            }
        }
    }
}

/// Waits until the session is logged on (`active`); false when `deadline` passes first.
async fn wait_for_session(link: &SessionLink, deadline: tokio::time::Instant) -> bool {
    loop {
        let status = tokio::time::timeout(Duration::from_secs(1), link.snapshot())
            .await
            .ok()
            .flatten()
            .map(|s| s.status);
        if status == Some(SessionStatus::Active) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---------------------------------------------------------------- the Kafka loop

/// One order request for the service, answered with its outcome.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Outcome")]
pub struct GatewayOrder {
    pub request: OrderRequest,
    pub created_ms: Option<i64>,
    pub position: Option<RequestRef>,
}

/// Where the loop reads and writes.
#[derive(Debug, Clone)]
pub struct ConsumerTopics {
    pub orders: String,
    pub events: String,
}

/// Consumes order requests one at a time (group `kafka.group_id`, new groups start at
/// `latest`); hands each to `service`; publishes its outcome on the events topic (retrying
/// until Kafka takes it); only then commits its offset, synchronously. Returns when the
/// service stops.
pub async fn run_consumer(
    kafka: KafkaSettings,
    topics: ConsumerTopics,
    service: Recipient<GatewayOrder>,
) {
    let events = match KafkaPublisher::new(&kafka) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "order gateway: no order-events producer; order requests are not consumed");
            return;
        }
    };
    let mut subscriber = loop {
        match KafkaSubscriber::starting_at(
            &kafka,
            std::slice::from_ref(&topics.orders),
            OffsetReset::Latest,
        ) {
            Ok(s) => break s,
            Err(e) => {
                tracing::error!(error = %e, "order gateway: cannot consume order requests; retrying");
                if !service.connected() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    tracing::info!(topic = %topics.orders, group = %kafka.group_id, "order gateway consuming (new groups start at latest)");
    let mut pinned: HashSet<(String, i32)> = HashSet::new();
    loop {
        let message = match subscriber.poll(Duration::from_millis(500)).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                if !service.connected() {
                    break;
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, topic = %topics.orders, "poll failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let position = message.position();
        // a new group starts at latest: make that start durable before acting, so a crash
        // before the first commit resumes here instead of skipping to a later "latest"
        if pinned.insert((position.topic.clone(), position.partition)) {
            if let Err(e) = subscriber.commit_next(std::slice::from_ref(&position)) {
                tracing::warn!(error = %e, "order gateway: start offset not committed");
            }
        }
        let request = RequestRef {
            topic: position.topic.clone(),
            partition: position.partition,
            offset: position.offset,
        };
        let outcome = match OrderRequest::parse_with_time(&message.payload) {
            Err(e) => Outcome::rejected(None, RejectReason::Invalid, e.to_string()),
            Ok((order, created_at)) => {
                let created_ms = created_at
                    .or(message.timestamp)
                    .map(|t| t.timestamp_millis());
                let order = GatewayOrder {
                    request: order,
                    created_ms,
                    position: Some(request.clone()),
                };
                match service.send(order).await {
                    Ok(outcome) => outcome,
                    Err(_) => break, // the service stopped: the offset stays, a restart redelivers
                }
            }
        };
        log_outcome(&outcome, &request);
        let event = OrderEvent::new(&outcome, Some(request), Utc::now());
        if !publish_event(&events, &topics.events, &event, &service).await {
            break;
        }
        let next = Position {
            offset: position.offset + 1,
            ..position
        };
        if let Err(e) = subscriber.commit_next(&[next]) {
            tracing::warn!(error = %e, "order gateway: offset not committed; a restart redelivers the request (its outcome is answered again, it is not sent again)");
        }
    }
    let _ = subscriber.close().await;
    tracing::info!("order gateway stopped");
}

fn log_outcome(outcome: &Outcome, request: &RequestRef) {
    match outcome {
        Outcome::Sent {
            cl_ord_id,
            seq_num,
            replayed,
            poss_resend,
        } => {
            tracing::info!(cl_ord_id = %cl_ord_id, seq_num = ?seq_num, replayed, poss_resend, offset = request.offset, "order request sent")
        }
        Outcome::Rejected {
            cl_ord_id,
            reason,
            detail,
        } => {
            tracing::warn!(cl_ord_id = ?cl_ord_id, reason = reason.code(), detail = %detail, offset = request.offset, "order request rejected")
        }
    }
}

/// Publishes `event`, retrying with backoff until Kafka takes it; false when the service
/// stopped meanwhile (the offset is then not committed).
async fn publish_event(
    events: &KafkaPublisher,
    topic: &str,
    event: &OrderEvent,
    service: &Recipient<GatewayOrder>,
) -> bool {
    let payload = match serde_json::to_vec(event) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an order event");
            return false;
        }
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        let message = OutboundMessage {
            topic: topic.to_owned(),
            key: event.cl_ord_id.clone(),
            headers: vec![(CONTENT_TYPE_HEADER.to_owned(), b"application/json".to_vec())],
            payload: payload.clone(),
        };
        match events.publish(message).await {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, topic, "order event not published; retrying (the request's offset waits)");
                if !service.connected() {
                    return false;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: GatewayPolicy = GatewayPolicy {
        max_age_ms: 30_000,
        session_wait: Duration::from_secs(1),
    };

    fn entry(state: SendState, request: Option<&str>) -> StoreEntry {
        StoreEntry {
            cl_ord_id: "C1".into(),
            state,
            request: request.map(str::to_owned),
            seq_num: Some(7),
            at: Utc::now(),
        }
    }

    fn reason(a: Admission) -> Option<RejectReason> {
        match a {
            Admission::Reject { reason, .. } => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn the_age_limit_holds_at_its_boundary_both_ways() {
        let now = 1_000_000;
        assert_eq!(age_check(Some(now - 30_000), now, &POLICY), Ok(()));
        assert_eq!(
            age_check(Some(now - 30_001), now, &POLICY).map_err(|e| e.0),
            Err(RejectReason::Aged)
        );
        assert_eq!(age_check(Some(now + 30_000), now, &POLICY), Ok(()));
        assert_eq!(
            age_check(Some(now + 30_001), now, &POLICY).map_err(|e| e.0),
            Err(RejectReason::FromTheFuture)
        );
        assert_eq!(
            age_check(None, now, &POLICY).map_err(|e| e.0),
            Err(RejectReason::Aged)
        );
        assert_eq!(
            age_check(Some(i64::MIN), now, &POLICY).map_err(|e| e.0),
            Err(RejectReason::Aged)
        );
        assert_eq!(
            age_check(Some(i64::MAX), now, &POLICY).map_err(|e| e.0),
            Err(RejectReason::FromTheFuture)
        );
    }

    #[test]
    fn admission_table() {
        let now = 1_000_000;
        let fresh = Some(now - 1_000);
        let old = Some(now - 60_000);
        let sent = entry(SendState::Sent, Some("t/0/5"));
        let sending = entry(SendState::Sending, Some("t/0/5"));
        let direct = entry(SendState::Sent, None);
        // (journal entry, in flight, request position, created, expected)
        type Case<'a> = (
            Option<&'a StoreEntry>,
            bool,
            Option<&'a str>,
            Option<i64>,
            Admission,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                None,
                false,
                Some("t/0/5"),
                fresh,
                Admission::Send { poss_resend: false },
            ),
            (
                None,
                false,
                None,
                fresh,
                Admission::Send { poss_resend: false },
            ),
            (
                None,
                true,
                Some("t/0/5"),
                fresh,
                Admission::Reject {
                    reason: RejectReason::DuplicateClOrdId,
                    detail: String::new(),
                },
            ),
            (
                None,
                false,
                Some("t/0/5"),
                old,
                Admission::Reject {
                    reason: RejectReason::Aged,
                    detail: String::new(),
                },
            ),
            // the same Kafka message again (a crash before its offset was committed)
            (
                Some(&sent),
                false,
                Some("t/0/5"),
                old,
                Admission::AlreadySent { seq_num: Some(7) },
            ),
            (
                Some(&sending),
                false,
                Some("t/0/5"),
                fresh,
                Admission::Send { poss_resend: true },
            ),
            (
                Some(&sending),
                false,
                Some("t/0/5"),
                old,
                Admission::Reject {
                    reason: RejectReason::InDoubt,
                    detail: String::new(),
                },
            ),
            // another request with a used ClOrdID
            (
                Some(&sent),
                false,
                Some("t/0/6"),
                fresh,
                Admission::Reject {
                    reason: RejectReason::DuplicateClOrdId,
                    detail: String::new(),
                },
            ),
            (
                Some(&sending),
                false,
                Some("t/0/6"),
                fresh,
                Admission::Reject {
                    reason: RejectReason::DuplicateClOrdId,
                    detail: String::new(),
                },
            ),
            (
                Some(&sent),
                false,
                None,
                fresh,
                Admission::Reject {
                    reason: RejectReason::DuplicateClOrdId,
                    detail: String::new(),
                },
            ),
            (
                Some(&direct),
                false,
                None,
                fresh,
                Admission::Reject {
                    reason: RejectReason::DuplicateClOrdId,
                    detail: String::new(),
                },
            ),
            (
                Some(&direct),
                false,
                Some("t/0/5"),
                fresh,
                Admission::Reject {
                    reason: RejectReason::DuplicateClOrdId,
                    detail: String::new(),
                },
            ),
        ];
        for (i, (journaled, in_flight, request, created, expected)) in cases.into_iter().enumerate()
        {
            let got = admit("C1", journaled, in_flight, request, created, now, &POLICY);
            match (&expected, &got) {
                (Admission::Reject { reason: a, .. }, Admission::Reject { reason: b, detail }) => {
                    assert_eq!(a, b, "case {i}: {detail}");
                    assert!(
                        detail.contains("C1") || *b == RejectReason::Aged,
                        "case {i}: {detail}"
                    );
                }
                _ => assert_eq!(got, expected, "case {i}"),
            }
        }
        assert_eq!(
            reason(admit("C1", None, false, None, old, now, &POLICY)),
            Some(RejectReason::Aged)
        );
    }

    #[test]
    fn the_journal_survives_a_reopen_and_cuts_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = ClOrdIdStore::open(dir.path()).unwrap();
            assert!(store.is_empty());
            store
                .record(entry(SendState::Sending, Some("t/0/1")))
                .unwrap();
            let mut sent = entry(SendState::Sent, Some("t/0/1"));
            sent.seq_num = Some(12);
            store.record(sent).unwrap();
            let mut other = entry(SendState::Sending, None);
            other.cl_ord_id = "weird \"id\" ü".into();
            store.record(other).unwrap();
        }
        let path = dir.path().join(STORE_FILE);
        // a crash mid-write leaves half a line
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"cl_ord_id":"C9","state":"se"#).unwrap();
        drop(f);
        let store = ClOrdIdStore::open(dir.path()).unwrap();
        assert_eq!(store.len(), 2);
        let c1 = store.get("C1").unwrap();
        assert_eq!((c1.state, c1.seq_num), (SendState::Sent, Some(12)));
        assert_eq!(
            store.get("weird \"id\" ü").unwrap().state,
            SendState::Sending
        );
        assert!(store.get("C9").is_none());
        drop(store);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n') && !text.contains("C9"), "{text}");

        // damage in the middle is not guessed around
        std::fs::write(&path, format!("garbage\n{text}")).unwrap();
        let err = ClOrdIdStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { line: 1, .. }), "{err}");
    }

    #[test]
    fn an_unwritable_journal_is_an_error_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = ClOrdIdStore::open(&file).unwrap_err();
        assert!(
            err.to_string().contains("fix_pilot.gateway_store_dir"),
            "{err}"
        );
    }

    #[test]
    fn events_carry_the_outcome_and_reason() {
        let at = Utc::now();
        let request = RequestRef {
            topic: "t".into(),
            partition: 0,
            offset: 3,
        };
        let e = OrderEvent::new(
            &Outcome::rejected(None, RejectReason::Invalid, "bad"),
            Some(request.clone()),
            at,
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["outcome"], "rejected");
        assert_eq!(json["reason"], "invalid");
        assert_eq!(json["cl_ord_id"], serde_json::Value::Null);
        assert_eq!(json["request"]["offset"], 3);
        let e = OrderEvent::new(
            &Outcome::Sent {
                cl_ord_id: "C1".into(),
                seq_num: Some(4),
                poss_resend: false,
                replayed: true,
            },
            Some(request),
            at,
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            (
                json["outcome"].as_str(),
                json["seq_num"].as_u64(),
                json["replayed"].as_bool()
            ),
            (Some("sent"), Some(4), Some(true))
        );
        assert!(json.get("reason").is_none());
        for r in [
            RejectReason::Invalid,
            RejectReason::Aged,
            RejectReason::FromTheFuture,
            RejectReason::DuplicateClOrdId,
            RejectReason::UnknownOrder,
            RejectReason::NoSession,
            RejectReason::InDoubt,
            RejectReason::StoreUnavailable,
            RejectReason::SendFailed,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.code());
        }
    }
}
