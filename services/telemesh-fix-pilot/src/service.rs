//! Owns [`FixPilotService`], the actix actor of `telemesh serve fix-pilot`: it starts the
//! configured FIX sessions, hosts the order gateway (order requests from Kafka through
//! [`crate::order_gateway`] → trading session; execution reports → Kafka), feeds the
//! [`Reconciler`], keeps the session telemetry, and publishes `telemetry.execution.fix_pilot`
//! and `telemetry.execution.dropcopy` every `interval_seconds`.
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
use telemesh_core::codec::CONTENT_TYPE_HEADER;
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::kafka::{ensure_topics, KafkaPublisher, KafkaSubscriber, TopicSpec};
use telemesh_core::transport::{OutboundMessage, Publisher, SnapshotPublisher, Subscriber};
use telemesh_core::{topics, Snapshot, Source};
use tokio::sync::mpsc;

use crate::evaluate::{evaluate_dropcopy, evaluate_pilot};
use crate::gateway::{OrderRequest, RequestError};
use crate::order_gateway::{
    self, ConsumerTopics, GatewayOrder, GatewayPolicy, OrderGateway, Outcome, Prepared,
    RejectReason,
};
use crate::reconciler::{Reconciler, Stream};
use crate::report::{normalize, tags, JsonFields};
use crate::session::{
    CancelOrder, FixSession, OrderMessage, SessionEvent, SessionLink, SessionSnapshot,
};
use crate::settings::{ExecutionsSource, FixPilotSettings, PilotPolicy, SessionSettings};
use crate::state::{PilotState, QueueState, SessionState, SessionStatus};

/// Capacity of the inbound queue from the sessions.
const INBOUND_CAPACITY: usize = 8_192;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Input from the Kafka side (the platform's execution reports; order requests go through
/// [`order_gateway::run_consumer`]).
#[derive(Debug)]
enum KafkaInput {
    PlatformReport(Vec<u8>),
    Failed(String),
}

/// The last snapshots of both kinds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshots {
    pub pilot: Option<Snapshot>,
    pub dropcopy: Option<Snapshot>,
    /// `telemetry.operational.execution`.
    pub execution: Option<Snapshot>,
}

/// Asks for the last published snapshots.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Snapshots")]
pub struct GetSnapshots;

/// Asks for the current state (evaluated on demand, not published).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PilotState")]
pub struct GetState;

/// Evaluates and publishes both snapshots now; answers with them.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Snapshots")]
pub struct PublishNow;

/// Submits an order request directly, as if read from the orders topic now: the same
/// checks (duplicate ClOrdID, session wait, journal) and the same send; answers when it is
/// sent or rejected.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), RequestError>")]
pub struct Submit(pub OrderRequest);

/// Logs the sessions out and stops the actor.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The FIX pilot domain service.
pub struct FixPilotService {
    settings: FixPilotSettings,
    policy: PilotPolicy,
    kafka: KafkaSettings,
    source: Source,
    publisher: SnapshotPublisher,
    recon: Reconciler,
    trading: SessionState,
    dropcopy: SessionState,
    queues: QueueState,
    sessions: Vec<FixSession>,
    trading_link: Option<SessionLink>,
    dropcopy_link: Option<SessionLink>,
    inbound_tx: Option<mpsc::Sender<SessionEvent>>,
    executions: Option<Arc<dyn Publisher>>,
    gateway: Option<OrderGateway>,
    last: Snapshots,
    last_tick: Option<chrono::DateTime<Utc>>,
}

impl std::fmt::Debug for FixPilotService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixPilotService")
            .field("source", &self.source)
            .finish()
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
    /// A service for `settings`, using `kafka` for the order and execution topics and
    /// publishing snapshots through `publisher` as `source`. Nothing runs until it is started.
    pub fn new(
        settings: FixPilotSettings,
        kafka: KafkaSettings,
        source: Source,
        publisher: SnapshotPublisher,
    ) -> Self {
        let mut trading = session_state(&settings.trading);
        if settings.executions_source == ExecutionsSource::Kafka {
            trading.configured = false;
        }
        Self {
            policy: settings.policy(),
            recon: Reconciler::new(settings.recon_policy()),
            dropcopy: session_state(&settings.dropcopy),
            trading,
            settings,
            kafka,
            source,
            publisher,
            queues: QueueState::default(),
            sessions: Vec::new(),
            trading_link: None,
            dropcopy_link: None,
            inbound_tx: None,
            executions: None,
            gateway: None,
            last: Snapshots::default(),
            last_tick: None,
        }
    }

    fn session_mut(&mut self, role: Stream) -> &mut SessionState {
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

    fn evaluate(&mut self) -> Snapshots {
        let state = self.state();
        let now = Utc::now();
        let pilot = evaluate_pilot(&self.policy, &state, self.source.clone(), now);
        let dropcopy = evaluate_dropcopy(&self.policy, &state, self.source.clone(), now);
        let execution = crate::execution::evaluate_pilot_execution(
            &self.settings.execution,
            &state,
            self.source.clone(),
            now,
        );
        if self
            .last
            .pilot
            .as_ref()
            .is_none_or(|l| l.status != pilot.status)
        {
            tracing::info!(status = %pilot.status, summary = %pilot.summary, "fix pilot");
        }
        if self
            .last
            .dropcopy
            .as_ref()
            .is_none_or(|l| l.status != dropcopy.status)
        {
            tracing::info!(status = %dropcopy.status, summary = %dropcopy.summary, "drop-copy reconciliation");
        }
        self.last = Snapshots {
            pilot: Some(pilot),
            dropcopy: Some(dropcopy),
            execution,
        };
        self.last.clone()
    }

    fn publish(&mut self, ctx: &mut Context<Self>) -> Snapshots {
        let snapshots = self.evaluate();
        let publisher = self.publisher.clone();
        let out = snapshots.clone();
        ctx.spawn(
            async move {
                for s in [out.pilot, out.dropcopy, out.execution]
                    .into_iter()
                    .flatten()
                {
                    publisher.publish_or_log(&s).await;
                }
            }
            .into_actor(self),
        );
        snapshots
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

    fn publish_execution(&mut self, report: &crate::report::ExecReport) {
        let Some(publisher) = self.executions.clone() else {
            return;
        };
        let payload = match serde_json::to_vec(report) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode execution report");
                return;
            }
        };
        let message = OutboundMessage {
            topic: topics::topic_name(&self.kafka.topic_prefix, &self.settings.executions_topic),
            key: Some(report.cl_ord_id.clone()),
            headers: vec![(CONTENT_TYPE_HEADER.to_owned(), b"application/json".to_vec())],
            payload,
        };
        self.queues.executions_published += 1;
        actix::spawn(async move {
            if let Err(e) = publisher.publish(message).await {
                tracing::warn!(error = %e, "execution report not published");
            }
        });
    }

    fn on_kafka_input(&mut self, input: KafkaInput) {
        match input {
            KafkaInput::PlatformReport(payload) => {
                let now = now_ms();
                self.queues.inbound_processed += 1;
                match JsonFields::parse(&payload).and_then(|f| f.report()) {
                    Ok(report) => {
                        self.recon.on_report(Stream::Trading, report, now);
                    }
                    Err(rejection) => {
                        tracing::warn!(reason = %rejection, "platform execution report rejected");
                        self.recon.on_rejected(Stream::Trading, &rejection, now);
                    }
                }
            }
            KafkaInput::Failed(detail) => {
                tracing::warn!(detail = %detail, "kafka consumer of the fix pilot stopped");
            }
        }
    }

    /// Builds the FIX message of a request (a cancel takes symbol, side and quantity from the
    /// order book), or rejects it.
    fn prepare(&self, order: GatewayOrder) -> Result<Prepared, Outcome> {
        let (message, cl_ord_id) = match order.request {
            OrderRequest::New(new) => {
                let cl = new.cl_ord_id.clone();
                (OrderMessage::New(new), cl)
            }
            OrderRequest::Cancel {
                cl_ord_id,
                orig_cl_ord_id,
            } => {
                let Some(orig) = self.recon.orders().by_cl_ord_id(&orig_cl_ord_id) else {
                    let detail = RequestError::UnknownOrder {
                        cl_ord_id: cl_ord_id.clone(),
                        orig_cl_ord_id,
                    }
                    .to_string();
                    return Err(Outcome::rejected(
                        Some(&cl_ord_id),
                        RejectReason::UnknownOrder,
                        detail,
                    ));
                };
                let cancel = CancelOrder {
                    cl_ord_id: cl_ord_id.clone(),
                    orig_cl_ord_id: orig.cl_ord_id.clone(),
                    symbol: orig.symbol.clone(),
                    side: orig.side,
                    order_qty: orig.order_qty,
                };
                (OrderMessage::Cancel(cancel), cl_ord_id)
            }
        };
        Ok(Prepared {
            cl_ord_id,
            message,
            created_ms: order.created_ms,
            request: order.position,
        })
    }

    /// Runs one order request through the gateway; the book and the counters follow its
    /// outcome.
    fn order(&mut self, order: GatewayOrder) -> ResponseActFuture<Self, Outcome> {
        let prepared = match self.prepare(order) {
            Ok(p) => p,
            Err(outcome) => {
                self.queues.orders_refused += 1;
                return Box::pin(actix::fut::ready(outcome));
            }
        };
        let link = self.trading_link.clone();
        let gateway = self.gateway.clone();
        let message = prepared.message.clone();
        self.queues.outbound_pending += 1;
        Box::pin(
            async move {
                match gateway {
                    Some(gateway) => gateway.process(link, prepared).await,
                    None if link.is_none() => Outcome::rejected(
                        Some(&prepared.cl_ord_id),
                        RejectReason::NoSession,
                        "the trading session is not configured or not started: nothing sent",
                    ),
                    None => Outcome::rejected(
                        Some(&prepared.cl_ord_id),
                        RejectReason::StoreUnavailable,
                        "the order gateway is not started: nothing sent",
                    ),
                }
            }
            .into_actor(self)
            .map(move |outcome, act, _| {
                act.queues.outbound_pending = act.queues.outbound_pending.saturating_sub(1);
                match &outcome {
                    Outcome::Sent { replayed, .. } => {
                        if !replayed {
                            act.queues.orders_sent += 1;
                        }
                        let now = now_ms();
                        match &message {
                            OrderMessage::New(o) => act.recon.orders_mut().on_sent(o, now),
                            OrderMessage::Cancel(c) => {
                                act.recon.orders_mut().on_cancel_sent(
                                    &c.cl_ord_id,
                                    &c.orig_cl_ord_id,
                                    now,
                                );
                            }
                            OrderMessage::PossResend(_) => {}
                        }
                    }
                    Outcome::Rejected { .. } => act.queues.orders_refused += 1,
                }
                outcome
            }),
        )
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

    fn start_kafka(&mut self, ctx: &mut Context<Self>) {
        if !self.kafka.is_configured() {
            tracing::info!("kafka not configured: no order topic, no execution topic");
            return;
        }
        let prefix = self.kafka.topic_prefix.clone();
        let kafka = KafkaSettings {
            group_id: self.settings.consumer_group.clone(),
            ..self.kafka.clone()
        };
        let specs: Vec<TopicSpec> = [
            &self.settings.orders_topic,
            &self.settings.executions_topic,
            &self.settings.order_events_topic,
        ]
        .into_iter()
        .map(|t| TopicSpec {
            name: topics::topic_name(&prefix, t),
            partitions: 1,
            replication_factor: 1,
        })
        .collect();
        let ensure = {
            let kafka = kafka.clone();
            async move {
                match ensure_topics(&kafka, &specs).await {
                    Ok(report) if !report.failed.is_empty() => {
                        tracing::warn!(failed = ?report.failed, "some fix pilot topics could not be created")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "fix pilot topics not checked"),
                }
            }
        };
        if self.settings.executions_source == ExecutionsSource::Fix {
            match KafkaPublisher::new(&self.kafka) {
                Ok(p) => self.executions = Some(Arc::new(p)),
                Err(e) => {
                    tracing::error!(error = %e, "execution reports will not be published")
                }
            }
            let topics = ConsumerTopics {
                orders: topics::topic_name(&prefix, &self.settings.orders_topic),
                events: topics::topic_name(&prefix, &self.settings.order_events_topic),
            };
            let service = ctx.address().recipient();
            actix::spawn(async move {
                ensure.await;
                order_gateway::run_consumer(kafka, topics, service).await;
            });
            return;
        }
        let (tx, rx) = mpsc::channel::<KafkaInput>(1_024);
        ctx.add_stream(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }));
        let full = topics::topic_name(&prefix, &self.settings.executions_topic);
        actix::spawn(async move {
            ensure.await;
            let mut subscriber = match KafkaSubscriber::new(&kafka, std::slice::from_ref(&full)) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(KafkaInput::Failed(e.to_string())).await;
                    return;
                }
            };
            loop {
                match subscriber.poll(Duration::from_millis(500)).await {
                    Ok(Some(message)) => {
                        let position = message.position();
                        if tx
                            .send(KafkaInput::PlatformReport(message.payload))
                            .await
                            .is_err()
                        {
                            break; // the service stopped
                        }
                        if let Err(e) = subscriber.commit(&[position]) {
                            tracing::warn!(error = %e, "offset not stored");
                        }
                    }
                    Ok(None) => {
                        if tx.is_closed() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, topic = %full, "poll failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            let _ = subscriber.close().await;
        });
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
        let every = Duration::from_secs(self.settings.interval_seconds.max(1));
        ctx.run_later(Duration::from_secs(1), |act, ctx| {
            act.publish(ctx);
        });
        ctx.run_interval(every, |act, ctx| {
            act.publish(ctx);
        });
    }
}

impl StreamHandler<SessionEvent> for FixPilotService {
    fn handle(&mut self, event: SessionEvent, _: &mut Context<Self>) {
        self.on_session_event(event);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl StreamHandler<KafkaInput> for FixPilotService {
    fn handle(&mut self, input: KafkaInput, _: &mut Context<Self>) {
        self.on_kafka_input(input);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<GetSnapshots> for FixPilotService {
    type Result = actix::MessageResult<GetSnapshots>;

    fn handle(&mut self, _: GetSnapshots, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.last.clone())
    }
}

impl Handler<GetState> for FixPilotService {
    type Result = actix::MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Context<Self>) -> Self::Result {
        self.recon.tick(now_ms());
        actix::MessageResult(self.state())
    }
}

impl Handler<PublishNow> for FixPilotService {
    type Result = actix::MessageResult<PublishNow>;

    fn handle(&mut self, _: PublishNow, ctx: &mut Context<Self>) -> Self::Result {
        self.recon.tick(now_ms());
        actix::MessageResult(self.publish(ctx))
    }
}

impl Handler<Submit> for FixPilotService {
    type Result = ResponseActFuture<Self, Result<(), RequestError>>;

    fn handle(&mut self, Submit(request): Submit, _: &mut Context<Self>) -> Self::Result {
        let order = GatewayOrder {
            request,
            created_ms: Some(now_ms()),
            position: None,
        };
        Box::pin(self.order(order).map(|outcome, _, _| outcome.into_result()))
    }
}

impl Handler<GatewayOrder> for FixPilotService {
    type Result = ResponseActFuture<Self, Outcome>;

    fn handle(&mut self, order: GatewayOrder, _: &mut Context<Self>) -> Self::Result {
        self.order(order)
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
    use telemesh_core::transport::inproc::InProcessBus;
    use telemesh_core::{Encoding, Grade};

    use super::*;

    fn service(settings: FixPilotSettings) -> (FixPilotService, SnapshotPublisher) {
        let bus = InProcessBus::new(16, [topics::FIX_PILOT, topics::DROPCOPY]);
        let publisher = SnapshotPublisher::new(bus.publisher(), Encoding::Json, "");
        let service = FixPilotService::new(
            settings,
            KafkaSettings::default(),
            Source::new("fix-pilot", "test"),
            publisher.clone(),
        );
        (service, publisher)
    }

    #[actix::test]
    async fn without_sessions_it_publishes_all_three_snapshots_and_says_what_is_missing() {
        let (service, publisher) = service(FixPilotSettings::default());
        let addr = service.start();
        let snapshots = addr.send(PublishNow).await.expect("actor answers");
        let pilot = snapshots.pilot.clone().expect("pilot snapshot");
        assert_eq!(pilot.status, Grade::Fail);
        assert!(
            pilot.summary.contains("trading session not configured"),
            "{}",
            pilot.summary
        );
        let dropcopy = snapshots.dropcopy.clone().expect("dropcopy snapshot");
        assert_eq!(dropcopy.status, Grade::Warn);
        let execution = snapshots.execution.clone().expect("execution snapshot");
        assert_eq!(execution.status, Grade::Fail, "{}", execution.summary);
        assert_eq!(
            execution.component("connection").map(|c| c.status),
            Some(Grade::Fail)
        );
        for _ in 0..100 {
            if publisher
                .stats()
                .published
                .load(std::sync::atomic::Ordering::Relaxed)
                == 3
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            publisher
                .stats()
                .published
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
        assert_eq!(
            addr.send(GetSnapshots).await.expect("actor answers"),
            snapshots
        );
        // an order cannot be sent without a trading session, and says so
        let order = crate::orders::NewOrder {
            cl_ord_id: "C1".into(),
            symbol: "AAPL".into(),
            side: crate::codes::Side::Buy,
            order_qty: crate::fixed::Fixed::from_int(1),
            price: None,
            account: None,
        };
        let refused = addr
            .send(Submit(OrderRequest::New(order)))
            .await
            .expect("actor answers");
        assert_eq!(refused, Err(RequestError::NoSession("C1".into())));
    }

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
        let (service, _) = service(FixPilotSettings {
            enabled: false,
            ..FixPilotSettings::default()
        });
        let addr = service.start();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            addr.send(GetSnapshots).await.expect("actor answers"),
            Snapshots::default()
        );
        let state = addr.send(GetState).await.expect("actor answers");
        assert_eq!(state.trading.status, SessionStatus::NotStarted);
    }
}
