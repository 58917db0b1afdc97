//! Owns the thin adapter around the hotfix engine (pinned `=0.13.0`): the only module that
//! names engine types. It starts one FIX 4.4 initiator per configured session with a file
//! sequence store, accepts custom tags (≥ 5000), turns every inbound application message into
//! plain `(tag, text)` fields and every engine callback into a [`SessionEvent`], and sends our
//! NewOrderSingle / OrderCancelRequest messages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotfix::application::{InboundDecision, OutboundDecision};
use hotfix::config::{SessionConfig, ValidationConfig};
use hotfix::field_types::Timestamp;
use hotfix::initiator::Initiator;
use hotfix::message::{OutboundMessage, Part};
use hotfix::session::error::SendOutcome;
use hotfix::session::{SessionHandle, Status};
use hotfix::store::FileStore;
use hotfix::{fix44, Application, Message};
use tokio::sync::mpsc;

use crate::codes::Side;
use crate::fixed::Fixed;
use crate::orders::NewOrder;
use crate::reconciler::Stream;
use crate::settings::SessionSettings;
use crate::state::SessionStatus;

/// Which of the pilot's sessions.
pub type SessionRole = Stream;

/// What a session reports to the service.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The engine changed state.
    State {
        role: SessionRole,
        status: SessionStatus,
    },
    Logon {
        role: SessionRole,
    },
    Logout {
        role: SessionRole,
        reason: String,
    },
    /// An application message (header and body fields as text).
    Message {
        role: SessionRole,
        msg_type: String,
        fields: Vec<(u32, String)>,
    },
}

/// A cancel request for an order we sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CancelOrder {
    pub cl_ord_id: String,
    pub orig_cl_ord_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_qty: Fixed,
}

/// A message the pilot sends on the trading session.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderMessage {
    New(NewOrder),
    Cancel(CancelOrder),
    /// The same request again after a crash left it in doubt: PossResend (97) = Y, so the
    /// venue checks the ClOrdID before acting on it.
    PossResend(Box<OrderMessage>),
}

impl OrderMessage {
    /// This message marked PossResend (97=Y).
    pub fn poss_resend(self) -> Self {
        match self {
            OrderMessage::PossResend(_) => self,
            other => OrderMessage::PossResend(Box::new(other)),
        }
    }
}

impl OutboundMessage for OrderMessage {
    fn write(&self, m: &mut Message) {
        match self {
            OrderMessage::PossResend(inner) => {
                m.header_mut().set(fix44::POSS_RESEND, "Y");
                inner.write(m);
            }
            OrderMessage::New(o) => {
                m.set(fix44::CL_ORD_ID, o.cl_ord_id.as_str());
                m.set(fix44::HANDL_INST, "1");
                m.set(fix44::SYMBOL, o.symbol.as_str());
                m.set(fix44::SIDE, o.side.code());
                m.set(fix44::TRANSACT_TIME, Timestamp::utc_now());
                m.set(fix44::ORDER_QTY, o.order_qty.to_string().as_str());
                match o.price {
                    Some(px) => {
                        m.set(fix44::ORD_TYPE, "2");
                        m.set(fix44::PRICE, px.to_string().as_str());
                    }
                    None => m.set(fix44::ORD_TYPE, "1"),
                }
                if let Some(account) = &o.account {
                    m.set(fix44::ACCOUNT, account.as_str());
                }
            }
            OrderMessage::Cancel(c) => {
                m.set(fix44::ORIG_CL_ORD_ID, c.orig_cl_ord_id.as_str());
                m.set(fix44::CL_ORD_ID, c.cl_ord_id.as_str());
                m.set(fix44::SYMBOL, c.symbol.as_str());
                m.set(fix44::SIDE, c.side.code());
                m.set(fix44::TRANSACT_TIME, Timestamp::utc_now());
                m.set(fix44::ORDER_QTY, c.order_qty.to_string().as_str());
            }
        }
    }

    fn message_type(&self) -> &str {
        match self {
            OrderMessage::New(_) => "D",
            OrderMessage::Cancel(_) => "F",
            OrderMessage::PossResend(inner) => inner.message_type(),
        }
    }
}

/// Why a session could not start or a message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("cannot open the sequence store in {dir}: {detail}; set a writable store_dir")]
    Store { dir: String, detail: String },
    #[error("cannot start the FIX session {session}: {detail}")]
    Start { session: String, detail: String },
    #[error("cannot send on the trading session: {0}; retry once it is logged on")]
    Send(String),
    #[error("the trading session is disconnected: nothing was sent; retry once it is logged on")]
    Disconnected,
    #[error("the application dropped the message")]
    Dropped,
}

/// Sequence numbers and state as the engine reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    pub next_sender_seq: u64,
    pub next_target_seq: u64,
    pub status: SessionStatus,
}

fn status_of(s: &Status) -> SessionStatus {
    match s {
        Status::AwaitingLogon => SessionStatus::AwaitingLogon,
        Status::AwaitingResend {
            begin,
            end,
            attempts,
        } => SessionStatus::AwaitingResend {
            begin: *begin,
            end: *end,
            attempts: *attempts,
        },
        Status::AwaitingLogout => SessionStatus::AwaitingLogout,
        Status::Active => SessionStatus::Active,
        Status::LoggedOut => SessionStatus::LoggedOut,
        Status::Disconnected => SessionStatus::Disconnected,
    }
}

/// Every header and body field of a message as `(tag, text)`.
fn fields_of(m: &Message) -> Vec<(u32, String)> {
    let header = m.header().get_field_map();
    let body = m.get_field_map();
    header
        .fields
        .iter()
        .chain(body.fields.iter())
        .map(|(tag, field)| (tag.get(), String::from_utf8_lossy(&field.data).into_owned()))
        .collect()
}

struct App {
    role: SessionRole,
    events: mpsc::Sender<SessionEvent>,
    drops: Arc<AtomicU64>,
}

impl App {
    async fn emit(&self, event: SessionEvent) {
        // back-pressure the session for a while, then drop (counted) rather than stall it
        match tokio::time::timeout(Duration::from_secs(2), self.events.send(event)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {} // the service stopped
            Err(_) => {
                self.drops.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    session = self.role.name(),
                    "inbound queue full: message dropped"
                );
            }
        }
    }
}

#[async_trait::async_trait]
impl Application for App {
    type Outbound = OrderMessage;

    async fn on_outbound_message(&self, _msg: &OrderMessage) -> OutboundDecision {
        OutboundDecision::Send
    }

    async fn on_inbound_message(&self, msg: &Message) -> InboundDecision {
        let msg_type = msg
            .header()
            .get::<&str>(fix44::MSG_TYPE)
            .map(str::to_owned)
            .unwrap_or_default();
        self.emit(SessionEvent::Message {
            role: self.role,
            msg_type,
            fields: fields_of(msg),
        })
        .await;
        InboundDecision::Accept
    }

    async fn on_logout(&mut self, reason: &str) {
        self.emit(SessionEvent::Logout {
            role: self.role,
            reason: reason.to_owned(),
        })
        .await;
    }

    async fn on_logon(&mut self) {
        self.emit(SessionEvent::Logon { role: self.role }).await;
    }

    async fn on_state_change(&self, _from: &Status, to: &Status) {
        self.emit(SessionEvent::State {
            role: self.role,
            status: status_of(to),
        })
        .await;
    }
}

/// One running initiator session.
pub struct FixSession {
    role: SessionRole,
    initiator: Initiator<OrderMessage>,
    handle: SessionHandle<OrderMessage>,
    drops: Arc<AtomicU64>,
}

impl std::fmt::Debug for FixSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixSession")
            .field("role", &self.role)
            .finish()
    }
}

impl FixSession {
    /// Starts the initiator of `settings`; it connects, logs on and reconnects by itself.
    pub async fn start(
        role: SessionRole,
        settings: &SessionSettings,
        events: mpsc::Sender<SessionEvent>,
    ) -> Result<Self, SessionError> {
        let config = SessionConfig {
            begin_string: "FIX.4.4".into(),
            sender_comp_id: settings.sender_comp_id.clone(),
            target_comp_id: settings.target_comp_id.clone(),
            data_dictionary_path: None,
            connection_host: settings.host.clone(),
            connection_port: settings.port,
            tls_config: None,
            heartbeat_interval: settings.heartbeat_interval_seconds,
            logon_timeout: settings.logon_timeout_seconds,
            logout_timeout: 2,
            reconnect_interval: settings.reconnect_interval_seconds,
            reset_on_logon: settings.reset_on_logon,
            schedule: None,
            // venues send custom tags (>= 5000): accept them
            validation: ValidationConfig::builder()
                .validate_user_defined_fields(false)
                .build(),
        };
        let name = format!("{}-{}", settings.sender_comp_id, settings.target_comp_id);
        let store =
            FileStore::new(&settings.store_dir, &name).map_err(|e| SessionError::Store {
                dir: settings.store_dir.clone(),
                detail: e.to_string(),
            })?;
        let drops = Arc::new(AtomicU64::new(0));
        let app = App {
            role,
            events,
            drops: Arc::clone(&drops),
        };
        let initiator =
            Initiator::start(config, app, store)
                .await
                .map_err(|e| SessionError::Start {
                    session: settings.describe(),
                    detail: e.to_string(),
                })?;
        let handle = initiator.session_handle();
        Ok(Self {
            role,
            initiator,
            handle,
            drops,
        })
    }

    pub fn role(&self) -> SessionRole {
        self.role
    }

    /// Inbound messages dropped because the service's queue stayed full.
    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }

    /// A cheap handle for sending and polling from other tasks.
    pub fn link(&self) -> SessionLink {
        SessionLink {
            handle: self.handle.clone(),
        }
    }

    /// Logs out and stops reconnecting.
    pub async fn shutdown(self) {
        if let Err(e) = self.initiator.shutdown(false).await {
            tracing::debug!(session = self.role.name(), error = %e, "session shutdown");
        }
    }
}

/// A cloneable handle to a running session.
#[derive(Clone)]
pub struct SessionLink {
    handle: SessionHandle<OrderMessage>,
}

impl std::fmt::Debug for SessionLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionLink")
    }
}

impl SessionLink {
    /// Sequence numbers and state, or `None` when the session task is gone.
    pub async fn snapshot(&self) -> Option<SessionSnapshot> {
        let info = self.handle.get_session_info().await.ok()?;
        Some(SessionSnapshot {
            next_sender_seq: info.next_sender_seq_number,
            next_target_seq: info.next_target_seq_number,
            status: status_of(&info.status),
        })
    }

    /// Sends and waits until the message is persisted; returns its sequence number.
    pub async fn send(&self, message: OrderMessage) -> Result<u64, SessionError> {
        match self.handle.send(message).await {
            Ok(SendOutcome::Sent { sequence_number }) => Ok(sequence_number),
            Ok(SendOutcome::Dropped) => Err(SessionError::Dropped),
            // checked before the message is given a sequence number: it was not sent
            Err(hotfix::session::error::SendError::Disconnected) => Err(SessionError::Disconnected),
            Err(e) => Err(SessionError::Send(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{normalize, tags};

    #[test]
    fn orders_are_written_with_exact_decimals_and_read_back_as_fields() {
        let order = NewOrder {
            cl_ord_id: "C1".into(),
            symbol: "AAPL".into(),
            side: Side::Sell,
            order_qty: Fixed::parse("100").unwrap(),
            price: Some(Fixed::parse("10.05").unwrap()),
            account: Some("ACC".into()),
        };
        let mut m = Message::new("FIX.4.4", "D");
        let outbound = OrderMessage::New(order);
        assert_eq!(outbound.message_type(), "D");
        outbound.write(&mut m);
        let fields = fields_of(&m);
        for (tag, value) in [
            (35, "D"),
            (11, "C1"),
            (54, "2"),
            (38, "100"),
            (40, "2"),
            (44, "10.05"),
            (1, "ACC"),
        ] {
            assert!(
                fields.contains(&(tag, value.to_owned())),
                "{tag}={value} in {fields:?}"
            );
        }
        let cancel = OrderMessage::Cancel(CancelOrder {
            cl_ord_id: "C2".into(),
            orig_cl_ord_id: "C1".into(),
            symbol: "AAPL".into(),
            side: Side::Sell,
            order_qty: Fixed::from_int(100),
        });
        let mut m = Message::new("FIX.4.4", "F");
        cancel.write(&mut m);
        assert!(fields_of(&m).contains(&(41, "C1".to_owned())));
        let resend = cancel.clone().poss_resend().poss_resend();
        assert_eq!(resend.message_type(), "F");
        let mut m = Message::new("FIX.4.4", "F");
        resend.write(&mut m);
        let fields = fields_of(&m);
        assert!(fields.contains(&(97, "Y".to_owned())), "{fields:?}");
        assert!(fields.contains(&(41, "C1".to_owned())));
    }

    #[test]
    fn an_engine_message_normalizes_through_its_fields() {
        let mut m = Message::new("FIX.4.4", "8");
        for (def, value) in [
            (fix44::EXEC_ID, "E1"),
            (fix44::ORDER_ID, "O1"),
            (fix44::CL_ORD_ID, "C1"),
            (fix44::EXEC_TYPE, "F"),
            (fix44::ORD_STATUS, "2"),
            (fix44::SIDE, "1"),
            (fix44::SYMBOL, "AAPL"),
            (fix44::LAST_QTY, "100"),
            (fix44::LAST_PX, "10.5"),
            (fix44::CUM_QTY, "100"),
            (fix44::LEAVES_QTY, "0"),
        ] {
            m.set(def, value);
        }
        let report = normalize(&fields_of(&m), tags::ON_BEHALF_OF_COMP_ID).unwrap();
        assert_eq!(
            (report.exec_id.as_str(), report.last_px),
            ("E1", Fixed::parse("10.5").unwrap())
        );
    }

    #[test]
    fn engine_states_map_to_session_states() {
        assert_eq!(status_of(&Status::Active), SessionStatus::Active);
        assert_eq!(
            status_of(&Status::AwaitingResend {
                begin: 5,
                end: 9,
                attempts: 1
            }),
            SessionStatus::AwaitingResend {
                begin: 5,
                end: 9,
                attempts: 1
            }
        );
        assert!(!status_of(&Status::Disconnected).is_logged_on());
    }
}
