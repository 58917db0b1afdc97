//! Owns [`FixPilotService`], the actix actor behind the FIX pilot domain: it starts the
//! configured FIX sessions, hosts the order gateway (its Kafka side is in
//! [`crate::kafka_gateway`]), feeds the [`Reconciler`] and keeps the session telemetry; the
//! domain ([`crate::domain::FixPilot`]) asks it for its [`PilotState`] ([`GetState`]) at each
//! gather and grades and publishes it.
//!
//! Everything runs on the actor's thread; session callbacks and Kafka consumers only hand
//! messages over bounded channels. A message that cannot be read is counted as rejected; it
//! never stops a session or the reconciler.

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message,
    ResponseActFuture, StreamHandler, WrapFuture,
};
use chrono::Utc;
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::Publisher;
use tokio::sync::mpsc;

use crate::order_gateway::{GatewayPolicy, OrderGateway};
use crate::reconciler::{Reconciler, Stream};
use crate::report::{normalize, tags};
use crate::session::{FixSession, SessionEvent, SessionLink, SessionSnapshot};
use crate::settings::{ExecutionsSource, FixPilotSettings, SessionSettings};
use crate::state::{PilotState, QueueState, SessionState, SessionStatus};

/// Capacity of the inbound queue from the sessions.
const INBOUND_CAPACITY: usize = 8_192;

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Asks for the current state (what the domain grades).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PilotState")]
pub struct GetState;

/// Logs the sessions out and stops the actor.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The FIX pilot domain service.
pub struct FixPilotService {
    pub(crate) settings: FixPilotSettings,
    pub(crate) kafka: KafkaSettings,
    pub(crate) recon: Reconciler,
    pub(crate) trading: SessionState,
    pub(crate) dropcopy: SessionState,
    pub(crate) queues: QueueState,
    sessions: Vec<FixSession>,
    pub(crate) trading_link: Option<SessionLink>,
    dropcopy_link: Option<SessionLink>,
    inbound_tx: Option<mpsc::Sender<SessionEvent>>,
    pub(crate) executions: Option<Arc<dyn Publisher>>,
    pub(crate) gateway: Option<OrderGateway>,
    last_tick: Option<chrono::DateTime<Utc>>,
}

impl std::fmt::Debug for FixPilotService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixPilotService")
            .field("trading", &self.trading.endpoint)
            .field("dropcopy", &self.dropcopy.endpoint)
            .finish_non_exhaustive()
    }
}

fn session_state(s: &SessionSettings) -> SessionState {
    SessionState {
        configured: s.is_configured(),
        endpoint: if s.is_configured() {
            s.describe()
        } else {
            String::new()
        },
        heartbeat_interval_s: s.heartbeat_interval_seconds,
        ..SessionState::default()
    }
}

impl FixPilotService {
    /// A service for `settings`, using `kafka` for the order and execution topics. Nothing runs
    /// until it is started.
    pub fn new(settings: FixPilotSettings, kafka: KafkaSettings) -> Self {
        let mut trading = session_state(&settings.trading);
        if settings.executions_source == ExecutionsSource::Kafka {
            trading.configured = false;
        }
        Self {
            recon: Reconciler::new(settings.recon_policy()),
            dropcopy: session_state(&settings.dropcopy),
            trading,
            settings,
            kafka,
            queues: QueueState::default(),
            sessions: Vec::new(),
            trading_link: None,
            dropcopy_link: None,
            inbound_tx: None,
            executions: None,
            gateway: None,
            last_tick: None,
        }
    }

    pub(crate) fn session_mut(&mut self, role: Stream) -> &mut SessionState {
        match role {
            Stream::Trading => &mut self.trading,
            Stream::DropCopy => &mut self.dropcopy,
        }
    }

    /// The state graded by both evaluators.
    pub fn state(&self) -> PilotState {
        let now = now_ms();
        let mut queues = self.queues.clone();
        if let Some(tx) = &self.inbound_tx {
            queues.inbound_backlog = (tx.max_capacity() - tx.capacity()) as u64;
        }
        queues.inbound_drops = self.sessions.iter().map(FixSession::drops).sum();
        let mut state = PilotState {
            executions_source: self.settings.executions_source,
            trading: self.trading.clone(),
            dropcopy: self.dropcopy.clone(),
            queues,
            orders: self.recon.orders().posture(now),
            recon: self.dropcopy.configured.then(|| self.recon.summary(now)),
            execution: None,
        };
        state.execution = Some(crate::execution::ExecutionState::derive(
            self.recon.orders(),
            &state,
            &self.settings.execution,
            now,
        ));
        state
    }

    fn roll_day_if_due(&mut self) {
        let now = Utc::now();
        if let (Some(at), Some(last)) = (self.settings.day_roll(), self.last_tick) {
            if day_rolled(last, now, at) {
                tracing::info!(at = %at, "new trading day: execution matching starts over");
                self.recon.roll_day();
            }
        }
        self.last_tick = Some(now);
    }

    fn update_coverage(&mut self) {
        let now = now_ms();
        let trading_ok = self.settings.executions_source == ExecutionsSource::Kafka
            || self.trading.status == SessionStatus::Active;
        let dropcopy_ok = self.dropcopy.status == SessionStatus::Active;
        let reason = if !trading_ok {
            Some(format!("trading session {}", self.trading.status.name()))
        } else if !dropcopy_ok {
            Some(format!("drop copy {}", self.dropcopy.status.name()))
        } else {
            None
        };
        let covered = reason.is_none();
        if covered != self.recon.is_covered() || !covered {
            self.recon.set_coverage(covered, reason, now);
        }
    }

    fn on_session_event(&mut self, event: SessionEvent) {
        let now = now_ms();
        match event {
            SessionEvent::State { role, status } => {
                let s = self.session_mut(role);
                if matches!(status, SessionStatus::AwaitingResend { .. })
                    && !matches!(s.status, SessionStatus::AwaitingResend { .. })
                {
                    s.gaps += 1;
                }
                if let SessionStatus::AwaitingResend { attempts, .. } = status {
                    let previous = match s.status {
                        SessionStatus::AwaitingResend { attempts, .. } => attempts,
                        _ => 0,
                    };
                    s.resend_requests += attempts.saturating_sub(previous) as u64;
                }
                // a logon can go straight to AwaitingResend (a gap at logon), so logons are
                // counted on entering a logged-on state, not on the engine's logon callback
                if status.is_logged_on() && !s.status.is_logged_on() {
                    s.logons += 1;
                    if s.logons > 1 {
                        s.reconnects += 1;
                    }
                }
                if status == SessionStatus::Disconnected && s.status != SessionStatus::Disconnected
                {
                    s.disconnects += 1;
                }
                tracing::info!(
                    session = role.name(),
                    from = s.status.name(),
                    to = status.name(),
                    "fix session state"
                );
                s.status = status;
                s.since_ms = Some(now);
                self.update_coverage();
            }
            SessionEvent::Logon { role } => {
                self.session_mut(role).last_inbound_ms = Some(now);
            }
            SessionEvent::Logout { role, reason } => {
                tracing::warn!(session = role.name(), reason = %reason, "fix session logged out");
                self.session_mut(role).last_logout_reason = Some(reason);
            }
            SessionEvent::Message {
                role,
                msg_type,
                fields,
            } => {
                self.queues.inbound_processed += 1;
                let s = self.session_mut(role);
                s.messages_in += 1;
                s.last_inbound_ms = Some(now);
                if fields
                    .iter()
                    .any(|(t, v)| *t == tags::POSS_DUP_FLAG && v == "Y")
                {
                    s.poss_dup_in += 1;
                }
                if msg_type != "8" {
                    tracing::info!(session = role.name(), msg_type = %msg_type, "application message other than an execution report");
                    return;
                }
                match normalize(&fields, self.settings.source_tag) {
                    Ok(report) => {
                        if role == Stream::Trading {
                            self.publish_execution(&report);
                        }
                        if self.dropcopy.configured {
                            self.recon.on_report(role, report, now);
                        } else if role == Stream::Trading {
                            self.recon.orders_mut().apply(&report, now);
                        }
                    }
                    Err(rejection) => {
                        tracing::warn!(session = role.name(), reason = %rejection, "execution report rejected");
                        self.session_mut(role).rejected += 1;
                        self.recon.on_rejected(role, &rejection, now);
                    }
                }
            }
        }
    }

    fn poll_sessions(&mut self, ctx: &mut Context<Self>) {
        let links: Vec<(Stream, SessionLink)> = [
            self.trading_link.clone().map(|l| (Stream::Trading, l)),
            self.dropcopy_link.clone().map(|l| (Stream::DropCopy, l)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if links.is_empty() {
            return;
        }
        ctx.spawn(
            async move {
                let mut out: Vec<(Stream, Option<SessionSnapshot>)> = Vec::new();
                for (role, link) in links {
                    let snapshot = tokio::time::timeout(Duration::from_secs(1), link.snapshot())
                        .await
                        .ok()
                        .flatten();
                    out.push((role, snapshot));
                }
                out
            }
            .into_actor(self)
            .map(|out, act, _| {
                let now = now_ms();
                for (role, snapshot) in out {
                    let Some(snapshot) = snapshot else { continue };
                    let s = act.session_mut(role);
                    if s.next_target_seq
                        .is_some_and(|seq| snapshot.next_target_seq > seq)
                    {
                        s.last_inbound_ms = Some(now); // admin messages (heartbeats) count too
                    }
                    s.next_sender_seq = Some(snapshot.next_sender_seq);
                    s.next_target_seq = Some(snapshot.next_target_seq);
                    if s.status != snapshot.status && s.status == SessionStatus::NotStarted {
                        s.status = snapshot.status;
                        s.since_ms = Some(now);
                    }
                }
                act.update_coverage();
            }),
        );
    }

    fn start_sessions(&mut self, ctx: &mut Context<Self>) {
        let (tx, rx) = mpsc::channel::<SessionEvent>(INBOUND_CAPACITY);
        self.inbound_tx = Some(tx.clone());
        ctx.add_stream(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }));
        let mut wanted: Vec<(Stream, SessionSettings)> = Vec::new();
        if self.settings.executions_source == ExecutionsSource::Fix
            && self.settings.trading.is_configured()
        {
            wanted.push((Stream::Trading, self.settings.trading.clone()));
            self.gateway = Some(OrderGateway::open(
                std::path::Path::new(&self.settings.gateway_store_dir),
                GatewayPolicy {
                    max_age_ms: (self.settings.max_request_age_seconds * 1000.0).round() as i64,
                    session_wait: Duration::from_secs_f64(self.settings.session_wait_seconds),
                },
            ));
        }
        if self.settings.dropcopy.is_configured() {
            wanted.push((Stream::DropCopy, self.settings.dropcopy.clone()));
        }
        for (role, settings) in wanted {
            let tx = tx.clone();
            ctx.wait(
                async move { (role, settings.describe(), FixSession::start(role, &settings, tx).await) }
                    .into_actor(self)
                    .map(|(role, endpoint, result), act, _| match result {
                        Ok(session) => {
                            tracing::info!(session = role.name(), endpoint = %endpoint, "fix session started");
                            let link = session.link();
                            match role {
                                Stream::Trading => act.trading_link = Some(link),
                                Stream::DropCopy => act.dropcopy_link = Some(link),
                            }
                            act.session_mut(role).status = SessionStatus::AwaitingLogon;
                            act.sessions.push(session);
                        }
                        Err(e) => {
                            tracing::error!(session = role.name(), error = %e, "fix session not started");
                            act.session_mut(role).last_logout_reason = Some(e.to_string());
                        }
                    }),
            );
        }
    }
}

/// Whether the UTC time of day `at` passed in `(last, now]`.
pub fn day_rolled(
    last: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
    at: chrono::NaiveTime,
) -> bool {
    let today = now.date_naive().and_time(at).and_utc();
    let boundary = if today > now {
        today - chrono::Duration::days(1)
    } else {
        today
    };
    last < boundary && boundary <= now
}

impl Actor for FixPilotService {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !self.settings.enabled {
            tracing::info!("fix pilot disabled ([fix_pilot] enabled = false)");
            return;
        }
        tracing::info!(
            trading = %self.trading.endpoint,
            dropcopy = %self.dropcopy.endpoint,
            executions_source = ?self.settings.executions_source,
            "fix pilot starting"
        );
        self.start_sessions(ctx);
        self.start_kafka(ctx);
        ctx.run_interval(Duration::from_millis(500), |act, ctx| {
            act.roll_day_if_due();
            act.recon.tick(now_ms());
            act.poll_sessions(ctx);
        });
    }
}

impl StreamHandler<SessionEvent> for FixPilotService {
    fn handle(&mut self, event: SessionEvent, _: &mut Context<Self>) {
        self.on_session_event(event);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<GetState> for FixPilotService {
    type Result = actix::MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Context<Self>) -> Self::Result {
        self.recon.tick(now_ms());
        actix::MessageResult(self.state())
    }
}

impl Handler<Shutdown> for FixPilotService {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        let sessions = std::mem::take(&mut self.sessions);
        self.trading_link = None;
        self.dropcopy_link = None;
        Box::pin(
            async move {
                for s in sessions {
                    s.shutdown().await;
                }
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_rolls_once_when_its_time_passes() {
        use chrono::TimeZone;
        let at = chrono::NaiveTime::from_hms_opt(22, 0, 0).unwrap();
        let t = |h, m| Utc.with_ymd_and_hms(2026, 11, 27, h, m, 0).unwrap();
        assert!(!day_rolled(t(21, 0), t(21, 59), at));
        assert!(day_rolled(t(21, 59), t(22, 0), at));
        assert!(!day_rolled(t(22, 0), t(22, 1), at));
        assert!(day_rolled(
            t(21, 0),
            Utc.with_ymd_and_hms(2026, 11, 28, 1, 0, 0).unwrap(),
            at
        ));
    }

    #[actix::test]
    async fn a_disabled_service_runs_nothing() {
        let addr = FixPilotService::new(
            FixPilotSettings {
                enabled: false,
                ..FixPilotSettings::default()
            },
            KafkaSettings::default(),
        )
        .start();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let state = addr.send(GetState).await.expect("actor answers");
        assert_eq!(state.trading.status, SessionStatus::NotStarted);
    }
}
