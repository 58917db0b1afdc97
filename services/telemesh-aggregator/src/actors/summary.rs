//! Owns the summary actor: the latest snapshot per (kind, source), updated after each journal
//! commit and read by the HTTP API. With several aggregator replicas each consumes only its
//! partitions, so the actor can also refresh from the shared journal on a timer, which makes
//! every replica's summary converge.
//!
//! The summary's JSON and Markdown are rendered once per change (and once a second, so ages
//! and staleness move on) into a [`SummaryCache`] that the HTTP handler serves from memory
//! without a round trip through this actor.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;
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

/// The summary, rendered.
#[derive(Debug, Clone, Default)]
pub struct RenderedSummary {
    pub json: Bytes,
    pub markdown: Bytes,
    /// `json` and `markdown` gzip-compressed, for clients that accept it (compressed once per
    /// rendering, not per request).
    pub json_gzip: Bytes,
    pub markdown_gzip: Bytes,
    /// The `now` it was rendered for.
    pub at: Option<DateTime<Utc>>,
}

/// The latest rendering, shared with the HTTP handlers (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct SummaryCache(Arc<RwLock<Arc<RenderedSummary>>>);

impl SummaryCache {
    /// The current rendering (empty bodies before the actor's first render).
    pub fn get(&self) -> Arc<RenderedSummary> {
        match self.0.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set(&self, rendered: RenderedSummary) {
        let rendered = Arc::new(rendered);
        match self.0.write() {
            Ok(mut current) => *current = rendered,
            Err(poisoned) => *poisoned.into_inner() = rendered,
        }
    }
}

/// How often the summary's `execution_journal` block is re-read without a new row.
pub const EXECUTION_JOURNAL_EVERY: Duration = Duration::from_secs(10);

/// How often the cached rendering is redone without a change (ages, staleness).
pub const RERENDER_EVERY: Duration = Duration::from_secs(1);

/// The shortest gap between two renderings after changes: a burst of batches (a backlog
/// draining, or a thousand snapshots a second) costs one rendering per gap, not one per batch;
/// the first change after a quiet gap renders at once.
pub const MIN_RENDER_GAP: Duration = Duration::from_millis(250);

/// The summary actor.
#[derive(Debug)]
pub struct SummaryActor {
    state: SummaryState,
    /// When the cache was last rendered, and whether a coalesced rendering is scheduled.
    rendered_at: Option<std::time::Instant>,
    render_scheduled: bool,
    policy: StalenessPolicy,
    mailbox_capacity: usize,
    refresh: Option<JournalRefresh>,
    cache: SummaryCache,
    /// Where newly journaled snapshots are announced (the live page and `telemesh tail`).
    live: Option<tokio::sync::broadcast::Sender<Snapshot>>,
    /// The journal the `execution_journal` block is read from, and the last read.
    execution_journal: Option<Journal>,
    execution_view: Option<crate::journal::execution::ExecutionJournalView>,
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
            rendered_at: None,
            render_scheduled: false,
            policy,
            mailbox_capacity,
            refresh: None,
            cache: SummaryCache::default(),
            live: None,
            execution_journal: None,
            execution_view: None,
        }
    }

    /// The rendering this actor keeps up to date (take it before starting the actor).
    pub fn cache(&self) -> SummaryCache {
        self.cache.clone()
    }

    /// Renders after a change: at once when the last rendering is at least [`MIN_RENDER_GAP`]
    /// old, otherwise once at the end of the gap (however many changes arrive meanwhile).
    fn changed(&mut self, ctx: &mut Context<Self>) {
        if self.render_scheduled {
            return;
        }
        let since = self.rendered_at.map_or(MIN_RENDER_GAP, |at| at.elapsed());
        if since >= MIN_RENDER_GAP {
            self.render();
        } else {
            self.render_scheduled = true;
            ctx.run_later(MIN_RENDER_GAP - since, |actor, _| {
                actor.render_scheduled = false;
                actor.render();
            });
        }
    }

    /// Renders the summary as of now into the cache.
    fn render(&mut self) {
        self.rendered_at = Some(std::time::Instant::now());
        let now = Utc::now();
        let mut summary = self.state.summary(&self.policy, now);
        summary.execution_journal = self.execution_view.clone();
        let json = match serde_json::to_vec(&summary) {
            Ok(json) => json,
            Err(e) => {
                tracing::warn!(error = %e, "cannot render the summary as JSON; serving the previous one");
                return;
            }
        };
        let markdown = summary.to_markdown().into_bytes();
        self.cache.set(RenderedSummary {
            json_gzip: gzip(&json),
            markdown_gzip: gzip(&markdown),
            json: Bytes::from(json),
            markdown: Bytes::from(markdown),
            at: Some(now),
        });
    }
}

/// `data` gzip-compressed (writing to memory cannot fail; an empty answer would only make the
/// handler serve the identity body).
fn gzip(data: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    match encoder.write_all(data).and_then(|()| encoder.finish()) {
        Ok(compressed) => Bytes::from(compressed),
        Err(_) => Bytes::new(),
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

    /// Shows the execution journal (recent and latest rows, totals) in the summary, read
    /// every [`EXECUTION_JOURNAL_EVERY`] and after each journaled execution snapshot.
    pub fn with_execution_journal(mut self, journal: Journal) -> Self {
        self.execution_journal = Some(journal);
        self
    }

    fn read_execution_journal(&self, ctx: &mut Context<Self>) {
        let Some(journal) = self.execution_journal.clone() else {
            return;
        };
        let read = async move {
            journal
                .execution_view(&crate::journal::execution::ExecutionQuery::default())
                .await
        };
        ctx.spawn(
            read.into_actor(self)
                .map(|result, actor, ctx| match result {
                    Ok(view) => {
                        actor.execution_view = Some(view);
                        actor.changed(ctx);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "execution journal read for the summary failed")
                    }
                }),
        );
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
        self.render();
        ctx.run_interval(RERENDER_EVERY, |actor, _| actor.render());
        if self.execution_journal.is_some() {
            self.read_execution_journal(ctx);
            ctx.run_interval(EXECUTION_JOURNAL_EVERY, |actor, ctx| {
                actor.read_execution_journal(ctx)
            });
        }
        if let Some(refresh) = self.refresh.clone() {
            ctx.run_interval(refresh.every, move |actor, ctx| {
                let refresh = refresh.clone();
                let read = async move { refresh.journal.latest(Utc::now() - refresh.window).await };
                ctx.spawn(read.into_actor(actor).map(|result, actor, ctx| match result {
                    Ok(latest) => {
                        let now = Utc::now();
                        for snapshot in latest {
                            actor.state.observe_received(snapshot, now);
                        }
                        actor.changed(ctx);
                    }
                    Err(e) => tracing::warn!(error = %e, "summary refresh from the journal failed"),
                }));
            });
        }
    }
}

impl Handler<Observe> for SummaryActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, ctx: &mut Self::Context) {
        if msg.0.is_empty() {
            return;
        }
        if msg
            .0
            .iter()
            .any(|s| s.kind == telemesh_core::topics::EXECUTION)
        {
            self.read_execution_journal(ctx);
        }
        let received_at = Utc::now();
        // copies for the live stream only while someone watches it
        let live = self.live.clone().filter(|live| live.receiver_count() > 0);
        for snapshot in msg.0 {
            if let Some(live) = &live {
                // a watcher that left meanwhile is fine
                let _ = live.send(snapshot.clone());
            }
            self.state.observe_received(snapshot, received_at);
        }
        self.changed(ctx);
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
