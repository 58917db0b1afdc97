//! Owns the alert actor: feeds journaled snapshots and a clock into the [`AlertEngine`],
//! applies its actions in order (store first, then notify), restores open alerts and
//! unanswered notifications after a restart, and serves acknowledgements and manual resolves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use telemesh_core::Snapshot;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::alerting::channels::Notification;
use crate::alerting::dispatch::{ChannelHealth, Dispatcher};
use crate::alerting::engine::{Action, Alert, AlertEngine, AlertError};
use crate::alerting::store::AlertStore;
use crate::metrics::AggregatorMetrics;

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

/// Journaled snapshots to evaluate.
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

/// Runs the timers now (tests with a manual clock).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TickNow;

/// A batch of engine actions, and who to tell when it has been carried out.
type Effects = (Vec<Action>, Option<oneshot::Sender<()>>);

/// The alert actor.
#[derive(Debug)]
pub struct AlertActor {
    engine: AlertEngine,
    store: AlertStore,
    dispatcher: Dispatcher,
    clock: Arc<dyn Clock>,
    summary_url: String,
    tick: Duration,
    metrics: Arc<AggregatorMetrics>,
    /// Effects run in order by one worker; the optional sender is told when a batch is done.
    effects: Option<mpsc::UnboundedSender<Effects>>,
}

impl AlertActor {
    /// An actor whose engine already holds the open alerts of `store` (see [`AlertActor::restore`]).
    pub fn new(
        engine: AlertEngine,
        store: AlertStore,
        dispatcher: Dispatcher,
        clock: Arc<dyn Clock>,
        summary_url: String,
        tick: Duration,
        metrics: Arc<AggregatorMetrics>,
    ) -> Self {
        Self {
            engine,
            store,
            dispatcher,
            clock,
            summary_url,
            tick,
            metrics,
            effects: None,
        }
    }

    /// Loads the open alerts of a previous run into `engine` and re-sends its unanswered
    /// notifications.
    pub async fn restore(
        engine: &mut AlertEngine,
        store: &AlertStore,
        dispatcher: &Dispatcher,
    ) -> Result<usize, crate::journal::JournalError> {
        let open = store
            .list(crate::alerting::store::StateFilter::Open, 100_000)
            .await?;
        let count = open.len();
        engine.restore(open);
        dispatcher.resume_pending().await;
        Ok(count)
    }

    fn apply(&mut self, actions: Vec<Action>) {
        self.apply_then(actions, None);
    }

    fn apply_then(&mut self, actions: Vec<Action>, done: Option<oneshot::Sender<()>>) {
        self.metrics
            .alerts_open
            .set(self.engine.open_alerts().count() as i64);
        if actions.is_empty() && done.is_none() {
            return;
        }
        if let Some(tx) = &self.effects {
            if tx.send((actions, done)).is_err() {
                tracing::error!("alert effects worker stopped");
            }
        }
    }
}

impl Actor for AlertActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // effects run in order, one at a time: an alert is stored before it is paged
        let (tx, mut rx) = mpsc::unbounded_channel::<Effects>();
        self.effects = Some(tx);
        let store = self.store.clone();
        let dispatcher = self.dispatcher.clone();
        let summary_url = self.summary_url.clone();
        actix_rt::spawn(async move {
            while let Some((actions, done)) = rx.recv().await {
                for action in actions {
                    match action {
                        Action::Persist(alert) => {
                            if let Err(e) = store.upsert(&alert).await {
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
        ctx.run_interval(self.tick, |actor, _| {
            let now = actor.clock.now();
            let actions = actor.engine.tick(now);
            actor.apply(actions);
        });
    }
}

impl Handler<ObserveAlerts> for AlertActor {
    type Result = ();

    fn handle(&mut self, msg: ObserveAlerts, _: &mut Self::Context) {
        let now = self.clock.now();
        let mut actions = Vec::new();
        for snapshot in &msg.0 {
            actions.extend(self.engine.observe(snapshot, now));
        }
        // group_wait 0 pages without waiting for the next tick
        actions.extend(self.engine.tick(now));
        self.apply(actions);
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
}

impl Handler<Acknowledge> for AlertActor {
    type Result = ResponseFuture<Result<Alert, AlertError>>;

    fn handle(&mut self, msg: Acknowledge, _: &mut Self::Context) -> Self::Result {
        match self
            .engine
            .acknowledge(msg.id, &msg.by, msg.note, self.clock.now())
        {
            Ok(actions) => self.apply_and_store(msg.id, actions),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl Handler<ResolveAlert> for AlertActor {
    type Result = ResponseFuture<Result<Alert, AlertError>>;

    fn handle(&mut self, msg: ResolveAlert, _: &mut Self::Context) -> Self::Result {
        match self
            .engine
            .resolve(msg.id, &msg.by, msg.note, self.clock.now())
        {
            Ok(actions) => self.apply_and_store(msg.id, actions),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl Handler<SetPostmortem> for AlertActor {
    type Result = ResponseFuture<Result<Alert, AlertError>>;

    fn handle(&mut self, msg: SetPostmortem, _: &mut Self::Context) -> Self::Result {
        if let Some(alert) = self.engine.set_postmortem(msg.id, &msg.url) {
            return self.apply_and_store(msg.id, vec![Action::Persist(Box::new(alert))]);
        }
        let store = self.store.clone();
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
        MessageResult(self.dispatcher.health())
    }
}

impl Handler<TickNow> for AlertActor {
    type Result = ();

    fn handle(&mut self, _: TickNow, _: &mut Self::Context) {
        let actions = self.engine.tick(self.clock.now());
        self.apply(actions);
    }
}
