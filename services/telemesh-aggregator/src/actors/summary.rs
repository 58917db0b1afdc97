//! Owns the summary actor: the latest snapshot per (kind, source), updated after each journal
//! commit and read by the HTTP API.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use telemesh_core::Snapshot;

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
        }
    }
}

impl Actor for SummaryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
    }
}

impl Handler<Observe> for SummaryActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, _: &mut Self::Context) {
        for snapshot in msg.0 {
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
