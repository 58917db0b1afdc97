//! Owns the alert actor: feeds snapshots, the host's ingestion state and a clock into the
//! [`AlertEngine`], applies its actions in order (an alert and its pages are stored in one
//! transaction, then queued), and serves acknowledgements and manual resolves. Among replicas
//! only the holder of the alerting leadership evaluates and pages: when it takes the lead it
//! restores open alerts, rebuilds the watched sources from the journal and resumes the outbox;
//! when it loses the lead it drops all of that at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::pin::Pin;

use actix::fut;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use telemesh_core::Snapshot;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::channels::{Channel, IssueBook, Notification};
use crate::dispatch::{ChannelHealth, Dispatcher, RetrySchedule};
use crate::engine::{Action, Alert, AlertEngine, AlertError, AlertPolicy};
use crate::metrics::AlertMetrics;
use crate::repo::{AlertRepo, Leadership, StateFilter};

/// Where the actor reads the time (tests drive a [`ManualClock`]).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut now) = self.0.lock() {
            *now = at;
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_else(|_| Utc::now())
    }
}

/// Snapshots to evaluate (as they are consumed: evaluation does not wait for the journal).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ObserveAlerts(pub Vec<Snapshot>);

/// Acknowledge an open alert.
#[derive(Debug, Message)]
#[rtype(result = "Result<Alert, AlertError>")]
pub struct Acknowledge {
    pub id: Uuid,
    pub by: String,
    pub note: Option<String>,
}

/// Resolve an open alert by hand.
#[derive(Debug, Message)]
#[rtype(result = "Result<Alert, AlertError>")]
pub struct ResolveAlert {
    pub id: Uuid,
    pub by: String,
    pub note: Option<String>,
}

/// Link a postmortem to an alert (open or resolved).
#[derive(Debug, Message)]
#[rtype(result = "Result<Alert, AlertError>")]
pub struct SetPostmortem {
    pub id: Uuid,
    pub url: String,
}

/// Channel health, by channel name.
#[derive(Debug, Message)]
#[rtype(result = "BTreeMap<String, ChannelHealth>")]
pub struct GetChannelHealth;

/// The host's ingestion stopped taking in snapshots (journal down); `cause` names why.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct IngestionHeld {
    pub cause: String,
}

/// The host's ingestion made progress; `backlog` is how far behind the transport it is.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct IngestionProgress {
    pub backlog: Option<u64>,
}

/// Stops the actor and gives up the alerting leadership (shutdown).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopAlerting;

/// Whether this replica holds the alerting leadership.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct IsLeader;

/// Runs the timers now (tests with a manual clock).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TickNow;

/// A batch of engine actions, and who to tell when it has been carried out.
type Effects = (Vec<Action>, Option<oneshot::Sender<()>>);

/// Everything the alert actor is made of.
#[derive(Debug)]
pub struct AlertActorParts {
    pub policy: AlertPolicy,
    pub channels: Vec<Channel>,
    /// Channel name → the channel that takes what it could not deliver.
    pub fallbacks: std::collections::HashMap<String, String>,
    pub schedule: RetrySchedule,
    pub repo: Arc<dyn AlertRepo>,
    pub issues: Arc<dyn IssueBook>,
    pub leadership: Arc<dyn Leadership>,
    pub clock: Arc<dyn Clock>,
    pub summary_url: String,
    pub tick: Duration,
    /// How often a follower tries to take the lead and the leader checks it still has it.
    pub leader_poll: Duration,
    /// With replicas: how often the leader reads every source's newest snapshot from the
    /// journal (those other replicas consumed).
    pub journal_poll: Option<Duration>,
    /// How far back the watched sources are rebuilt from the journal.
    pub seed_window: chrono::Duration,
    /// Backlog (messages) above which ingestion counts as lagging.
    pub lag_threshold: u64,
    /// Without word of ingestion progress for this long (a journal write hanging before it
    /// fails), staleness is held.
    pub stall_after: Duration,
    pub metrics: AlertMetrics,
    /// Where the leader shows its channel health (the host's runtime summary), refreshed
    /// every [`HEALTH_EVERY`]; `None` = nowhere.
    pub show_health: Option<HealthSink>,
}

/// Takes the channel-health snapshot (see [`crate::dispatch::health_snapshot`]).
#[derive(Clone)]
pub struct HealthSink(pub Arc<dyn Fn(Snapshot) + Send + Sync>);

impl std::fmt::Debug for HealthSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthSink")
    }
}

/// How often the leader refreshes its channel health in the summary.
pub const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// What a replica has while it leads.
#[derive(Debug)]
struct Term {
    dispatcher: Dispatcher,
    /// Effects run in order by one worker; the optional sender is told when a batch is done.
    effects: mpsc::UnboundedSender<Effects>,
}

/// The alert actor.
#[derive(Debug)]
pub struct AlertActor {
    parts: AlertActorParts,
    engine: AlertEngine,
    term: Option<Term>,
    /// A leadership attempt or check is in flight.
    polling: bool,
    /// When the host last reported ingestion progress.
    last_progress: std::time::Instant,
}

impl AlertActor {
    pub fn new(parts: AlertActorParts) -> Self {
        Self {
            engine: AlertEngine::new(parts.policy.clone()),
            parts,
            term: None,
            polling: false,
            last_progress: std::time::Instant::now(),
        }
    }

    fn apply(&mut self, actions: Vec<Action>) {
        self.apply_then(actions, None);
    }

    fn apply_then(&mut self, actions: Vec<Action>, done: Option<oneshot::Sender<()>>) {
        self.parts
            .metrics
            .open
            .set(self.engine.open_alerts().count() as i64);
        if actions.is_empty() && done.is_none() {
            return;
        }
        match &self.term {
            Some(term) => {
                if term.effects.send((actions, done)).is_err() {
                    tracing::error!("alert effects worker stopped");
                }
            }
            None => tracing::warn!("not the alerting leader; dropping alert actions"),
        }
    }

    /// Polls the leadership; takes the lead (restoring state) or drops it.
    fn poll_leadership(&mut self, ctx: &mut Context<Self>) {
        if self.polling {
            return;
        }
        self.polling = true;
        let leadership = Arc::clone(&self.parts.leadership);
        let leading = self.term.is_some();
        ctx.wait(
            async move { leadership.try_lead().await }
                .into_actor(self)
                .then(move |result, actor, _| {
                    let lead = match result {
                        Ok(lead) => lead,
                        Err(e) => {
                            // the lock lives in the database: while it cannot be reached nobody
                            // can take it over, so the current role stays (see docs/on-call.md)
                            tracing::warn!(error = %e, leading, "alerting leadership check failed; keeping the current role");
                            leading
                        }
                    };
                    let fut: Pin<Box<dyn ActorFuture<Self, Output = ()>>> = match (leading, lead) {
                        (false, true) => Box::pin(actor.take_lead()),
                        (true, false) => {
                            actor.step_down();
                            Box::pin(fut::ready(()))
                        }
                        _ => Box::pin(fut::ready(())),
                    };
                    fut
                })
                .map(|_, actor, _| actor.polling = false),
        );
    }

    fn step_down(&mut self) {
        tracing::warn!("lost the alerting leadership; another replica pages now");
        self.term = None;
        self.engine = AlertEngine::new(self.parts.policy.clone());
        self.parts.metrics.open.set(0);
    }

    /// Restores open alerts and watched sources, starts the channel workers and resumes the
    /// outbox. Ingestion counts as held until the host reports progress (it may be catching
    /// up), so a restart does not page about sources that merely wait in the backlog.
    fn take_lead(&mut self) -> impl ActorFuture<Self, Output = ()> {
        let repo = Arc::clone(&self.parts.repo);
        let since = self.parts.clock.now() - self.parts.seed_window;
        async move {
            let open = repo.list(StateFilter::Open, 100_000).await;
            let seen = repo.latest_snapshots(since).await;
            (open, seen)
        }
        .into_actor(self)
        .then(|(open, seen), actor, _| {
            let (open, seen) = match (open, seen) {
                (Ok(open), Ok(seen)) => (open, seen),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "cannot restore alert state; not taking the alerting leadership yet");
                    let leadership = Arc::clone(&actor.parts.leadership);
                    let give_up: Pin<Box<dyn ActorFuture<Self, Output = ()>>> =
                        Box::pin(async move { leadership.release().await }.into_actor(actor));
                    return give_up;
                }
            };
            let now = actor.parts.clock.now();
            let mut engine = AlertEngine::new(actor.parts.policy.clone());
            let restored = open.len();
            engine.restore(open);
            let mut actions = Vec::new();
            for snapshot in &seen {
                actions.extend(engine.catch_up(snapshot, now));
            }
            engine.hold(now);
            actor.engine = engine;
            let dispatcher = Dispatcher::start(
                actor.parts.channels.clone(),
                Some(Arc::clone(&actor.parts.repo)),
                Arc::clone(&actor.parts.issues),
                actor.parts.metrics.clone(),
                actor.parts.schedule,
                &actor.parts.fallbacks,
            );
            let effects = spawn_effects(
                Arc::clone(&actor.parts.repo),
                dispatcher.clone(),
                actor.parts.summary_url.clone(),
            );
            actor.term = Some(Term {
                dispatcher: dispatcher.clone(),
                effects,
            });
            tracing::info!(restored, watched = seen.len(), "took the alerting leadership");
            actor.apply(actions);
            Box::pin(
                async move {
                    let resumed = dispatcher.resume_pending().await;
                    if resumed > 0 {
                        tracing::info!(resumed, "outbox resumed");
                    }
                }
                .into_actor(actor),
            )
        })
    }

    /// Evaluates the newest journaled snapshot of every source (consumed by any replica).
    fn poll_journal(&mut self, ctx: &mut Context<Self>) {
        if self.term.is_none() {
            return;
        }
        let repo = Arc::clone(&self.parts.repo);
        let since = self.parts.clock.now() - self.parts.seed_window;
        ctx.spawn(
            async move { repo.latest_snapshots(since).await }
                .into_actor(self)
                .map(|result, actor, _| match result {
                    Ok(snapshots) => actor.catch_up(&snapshots),
                    Err(e) => tracing::warn!(error = %e, "could not read the newest snapshots for alerting"),
                }),
        );
    }

    fn catch_up(&mut self, snapshots: &[Snapshot]) {
        if self.term.is_none() {
            return;
        }
        let now = self.parts.clock.now();
        let mut actions = Vec::new();
        for snapshot in snapshots {
            actions.extend(self.engine.catch_up(snapshot, now));
        }
        actions.extend(self.engine.tick(now));
        self.apply(actions);
    }

    fn observe(&mut self, snapshots: &[Snapshot]) {
        if self.term.is_none() {
            return;
        }
        let now = self.parts.clock.now();
        let mut actions = Vec::new();
        for snapshot in snapshots {
            actions.extend(self.engine.observe(snapshot, now));
        }
        // group_wait 0 pages without waiting for the next tick
        actions.extend(self.engine.tick(now));
        self.apply(actions);
    }
}

/// Runs effects in order, one at a time: an alert is stored (with its outbox rows) before it
/// is queued for sending.
fn spawn_effects(
    repo: Arc<dyn AlertRepo>,
    dispatcher: Dispatcher,
    summary_url: String,
) -> mpsc::UnboundedSender<Effects> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Effects>();
    actix_rt::spawn(async move {
        while let Some((actions, done)) = rx.recv().await {
            let mut actions = actions.into_iter().peekable();
            while let Some(action) = actions.next() {
                match action {
                    Action::Persist(alert) => {
                        let pages = matches!(actions.peek(), Some(Action::Notify { alert: next, .. }) if next.id == alert.id);
                        if pages {
                            if let Some(Action::Notify {
                                event, channels, ..
                            }) = actions.next()
                            {
                                let n = Notification {
                                    id: Uuid::now_v7(),
                                    event,
                                    alert: (*alert).clone(),
                                    summary_url: summary_url.clone(),
                                    drill: false,
                                };
                                let channels = dispatcher.known(&channels);
                                match repo.upsert_with_outbox(&alert, &n, &channels).await {
                                    Ok(()) => dispatcher.enqueue_written(n, &channels),
                                    Err(e) => {
                                        tracing::error!(error = %e, alert = %alert.id, "could not store the alert and its pages; sending anyway");
                                        dispatcher.dispatch(n, &channels).await;
                                    }
                                }
                            }
                        } else if let Err(e) = repo.upsert(&alert).await {
                            tracing::error!(error = %e, alert = %alert.id, "could not store alert state");
                        }
                    }
                    Action::Notify {
                        alert,
                        event,
                        channels,
                    } => {
                        let n = Notification {
                            id: Uuid::now_v7(),
                            event,
                            alert: *alert,
                            summary_url: summary_url.clone(),
                            drill: false,
                        };
                        dispatcher.dispatch(n, &channels).await;
                    }
                }
            }
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    });
    tx
}

impl Actor for AlertActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.poll_leadership(ctx);
        ctx.run_interval(self.parts.leader_poll, |actor, ctx| {
            actor.poll_leadership(ctx)
        });
        ctx.run_interval(self.parts.tick, |actor, _| {
            if actor.term.is_some() {
                let now = actor.parts.clock.now();
                if actor.last_progress.elapsed() > actor.parts.stall_after {
                    // ingestion is stuck (e.g. a journal write hanging): hold staleness
                    actor.engine.hold(now);
                }
                let actions = actor.engine.tick(now);
                actor.apply(actions);
            }
        });
        if self.parts.show_health.is_some() {
            ctx.run_interval(HEALTH_EVERY, |actor, _| {
                if let (Some(term), Some(sink)) = (&actor.term, &actor.parts.show_health) {
                    (sink.0)(crate::dispatch::health_snapshot(
                        &term.dispatcher.health(),
                        actor.parts.clock.now(),
                        HEALTH_EVERY.as_secs_f64() * 2.0,
                    ));
                }
            });
        }
        if let Some(every) = self.parts.journal_poll {
            ctx.run_interval(every, |actor, ctx| actor.poll_journal(ctx));
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let leadership = Arc::clone(&self.parts.leadership);
        actix_rt::spawn(async move { leadership.release().await });
    }
}

impl Handler<ObserveAlerts> for AlertActor {
    type Result = ();

    fn handle(&mut self, msg: ObserveAlerts, _: &mut Self::Context) {
        self.observe(&msg.0);
    }
}

impl Handler<IngestionHeld> for AlertActor {
    type Result = ();

    fn handle(&mut self, msg: IngestionHeld, _: &mut Self::Context) {
        if self.term.is_some() {
            let actions = self
                .engine
                .ingestion_held(&msg.cause, self.parts.clock.now());
            self.apply(actions);
        }
    }
}

impl Handler<IngestionProgress> for AlertActor {
    type Result = ();

    fn handle(&mut self, msg: IngestionProgress, _: &mut Self::Context) {
        self.last_progress = std::time::Instant::now();
        if self.term.is_none() {
            return;
        }
        let now = self.parts.clock.now();
        let backlog = msg.backlog.unwrap_or(0);
        let actions = if backlog > self.parts.lag_threshold {
            self.engine
                .ingestion_held(&format!("consumer lag: {backlog} messages behind"), now)
        } else if self.engine.is_held() {
            self.engine.ingestion_resumed(now)
        } else {
            Vec::new()
        };
        self.apply(actions);
    }
}

impl Handler<StopAlerting> for AlertActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: StopAlerting, _: &mut Self::Context) -> Self::Result {
        let term = self.term.take();
        let leadership = Arc::clone(&self.parts.leadership);
        Box::pin(
            async move {
                if let Some(term) = term {
                    // let a page being sent get recorded, then drop the queues
                    term.dispatcher.settle(Duration::from_secs(3)).await;
                }
                leadership.release().await
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        )
    }
}

impl Handler<IsLeader> for AlertActor {
    type Result = bool;

    fn handle(&mut self, _: IsLeader, _: &mut Self::Context) -> bool {
        self.term.is_some()
    }
}

fn stored(actions: &[Action]) -> Option<Alert> {
    actions.iter().find_map(|a| match a {
        Action::Persist(alert) => Some((**alert).clone()),
        Action::Notify { .. } => None,
    })
}

impl AlertActor {
    /// Applies `actions` and answers with the alert once the effects worker has stored it (and
    /// everything queued before it), so a read right after the API call sees the change.
    fn apply_and_store(
        &mut self,
        id: Uuid,
        actions: Vec<Action>,
    ) -> ResponseFuture<Result<Alert, AlertError>> {
        let alert = stored(&actions);
        let (done, stored_signal) = oneshot::channel();
        self.apply_then(actions, Some(done));
        Box::pin(async move {
            let alert = alert.ok_or(AlertError::NotFound(id))?;
            let _ = stored_signal.await;
            Ok(alert)
        })
    }

    fn refuse_unless_leading(&self) -> Option<ResponseFuture<Result<Alert, AlertError>>> {
        self.term
            .is_none()
            .then(|| Box::pin(async { Err(AlertError::NotLeader) }) as _)
    }
}

impl Handler<Acknowledge> for AlertActor {
    type Result = ResponseFuture<Result<Alert, AlertError>>;

    fn handle(&mut self, msg: Acknowledge, _: &mut Self::Context) -> Self::Result {
        if let Some(refused) = self.refuse_unless_leading() {
            return refused;
        }
        match self
            .engine
            .acknowledge(msg.id, &msg.by, msg.note, self.parts.clock.now())
        {
            Ok(actions) => self.apply_and_store(msg.id, actions),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl Handler<ResolveAlert> for AlertActor {
    type Result = ResponseFuture<Result<Alert, AlertError>>;

    fn handle(&mut self, msg: ResolveAlert, _: &mut Self::Context) -> Self::Result {
        if let Some(refused) = self.refuse_unless_leading() {
            return refused;
        }
        match self
            .engine
            .resolve(msg.id, &msg.by, msg.note, self.parts.clock.now())
        {
            Ok(actions) => self.apply_and_store(msg.id, actions),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl Handler<SetPostmortem> for AlertActor {
    type Result = ResponseFuture<Result<Alert, AlertError>>;

    fn handle(&mut self, msg: SetPostmortem, _: &mut Self::Context) -> Self::Result {
        if let Some(refused) = self.refuse_unless_leading() {
            return refused;
        }
        if let Some(alert) = self.engine.set_postmortem(msg.id, &msg.url) {
            return self.apply_and_store(msg.id, vec![Action::Persist(Box::new(alert))]);
        }
        let store = Arc::clone(&self.parts.repo);
        Box::pin(async move {
            let mut alert = store
                .get(msg.id)
                .await
                .ok()
                .flatten()
                .ok_or(AlertError::NotFound(msg.id))?;
            alert.postmortem_url = Some(msg.url);
            store
                .upsert(&alert)
                .await
                .map_err(|_| AlertError::NotFound(msg.id))?;
            Ok(alert)
        })
    }
}

impl Handler<GetChannelHealth> for AlertActor {
    type Result = MessageResult<GetChannelHealth>;

    fn handle(&mut self, _: GetChannelHealth, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.term
                .as_ref()
                .map(|t| t.dispatcher.health())
                .unwrap_or_default(),
        )
    }
}

impl Handler<TickNow> for AlertActor {
    type Result = ();

    fn handle(&mut self, _: TickNow, _: &mut Self::Context) {
        if self.term.is_some() {
            let actions = self.engine.tick(self.parts.clock.now());
            self.apply(actions);
        }
    }
}
