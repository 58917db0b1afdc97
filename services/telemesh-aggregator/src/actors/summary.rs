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
}

impl SummaryActor {
    pub fn new(policy: StalenessPolicy, seed: Vec<Snapshot>, mailbox_capacity: usize) -> Self {
        let mut state = SummaryState::default();
        let now = Utc::now();
        for snapshot in seed {
            state.observe_received(snapshot, now);
        }
        Self {
            state,
            policy,
            mailbox_capacity,
            refresh: None,
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
                        let now = Utc::now();
                        for snapshot in latest {
                            actor.state.observe_received(snapshot, now);
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
        let received_at = Utc::now();
        for snapshot in msg.0 {
            self.state.observe_received(snapshot, received_at);
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
