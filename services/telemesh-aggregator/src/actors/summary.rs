//! Owns the summary actor: the latest snapshot per (kind, source), updated after each journal
//! commit and read by the HTTP API. With several aggregator replicas each consumes only its
//! partitions, so the actor can also refresh from the shared journal on a timer, which makes
//! every replica's summary converge.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use telemesh_core::Snapshot;

use crate::journal::Journal;
use crate::summary::{StalenessPolicy, Summary, SummaryState};

/// New journaled snapshots.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Observe(pub Vec<Snapshot>);

/// The summary as of `now`.
#[derive(Debug, Message)]
#[rtype(result = "Summary")]
pub struct GetSummary {
    pub now: DateTime<Utc>,
}

/// The newest snapshot of every (kind, source).
#[derive(Debug, Message)]
#[rtype(result = "Vec<Snapshot>")]
pub struct GetLatest;

/// The summary actor.
#[derive(Debug)]
pub struct SummaryActor {
    state: SummaryState,
    policy: StalenessPolicy,
    mailbox_capacity: usize,
    refresh: Option<JournalRefresh>,
    /// Where newly journaled snapshots are announced (the live page and `telemesh tail`).
    live: Option<tokio::sync::broadcast::Sender<Snapshot>>,
}

impl SummaryActor {
    pub fn new(policy: StalenessPolicy, seed: Vec<Snapshot>, mailbox_capacity: usize) -> Self {
        let mut state = SummaryState::default();
        for snapshot in seed {
            state.observe(snapshot);
        }
        Self {
            state,
            policy,
            mailbox_capacity,
            refresh: None,
            live: None,
        }
    }
}

/// Periodic refresh from the journal.
#[derive(Debug, Clone)]
pub struct JournalRefresh {
    pub journal: Journal,
    pub every: std::time::Duration,
    /// How far back a refresh looks for each source's newest snapshot.
    pub window: chrono::Duration,
}

impl SummaryActor {
    /// Refreshes from the journal on a timer (see [`JournalRefresh`]).
    pub fn with_refresh(mut self, refresh: JournalRefresh) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// Announces every observed (newly journaled) snapshot on `live`.
    pub fn with_live(mut self, live: tokio::sync::broadcast::Sender<Snapshot>) -> Self {
        self.live = Some(live);
        self
    }
}

impl Actor for SummaryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        if let Some(refresh) = self.refresh.clone() {
            ctx.run_interval(refresh.every, move |actor, ctx| {
                let refresh = refresh.clone();
                let read = async move { refresh.journal.latest(Utc::now() - refresh.window).await };
                ctx.spawn(read.into_actor(actor).map(|result, actor, _| match result {
                    Ok(latest) => {
                        for snapshot in latest {
                            actor.state.observe(snapshot);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "summary refresh from the journal failed"),
                }));
            });
        }
    }
}

impl Handler<Observe> for SummaryActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, _: &mut Self::Context) {
        for snapshot in msg.0 {
            if let Some(live) = &self.live {
                // no subscriber is fine: nobody is watching
                let _ = live.send(snapshot.clone());
            }
            self.state.observe(snapshot);
        }
    }
}

impl Handler<GetSummary> for SummaryActor {
    type Result = MessageResult<GetSummary>;

    fn handle(&mut self, msg: GetSummary, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.state.summary(&self.policy, msg.now))
    }
}

impl Handler<GetLatest> for SummaryActor {
    type Result = MessageResult<GetLatest>;

    fn handle(&mut self, _: GetLatest, _: &mut Self::Context) -> Self::Result {
        let mut latest: Vec<Snapshot> = self.state.latest().cloned().collect();
        latest.sort_by_key(|s| std::cmp::Reverse(s.generated_at));
        MessageResult(latest)
    }
}
