//! Owns the journal actor: the single place that writes and reads the journal, recording
//! whether the journal is up for readiness and metrics. Every call is bounded client-side
//! (`write_timeout`, `read_timeout`): a wedged database becomes [`JournalError::Timeout`], a
//! transient error, instead of a hung caller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use uuid::Uuid;

use crate::journal::{
    Journal, JournalError, JournalErrorKind, JournalRecord, Layout, SnapshotQuery, StoredSnapshot,
};
use crate::metrics::AggregatorMetrics;

/// Whether the journal is reachable, as last observed.
#[derive(Debug, Default)]
pub struct JournalHealth {
    up: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl JournalHealth {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn record<T>(&self, metrics: &AggregatorMetrics, result: &Result<T, JournalError>) {
        // a refused record says nothing about the database being down
        let up = result
            .as_ref()
            .map_or_else(|e| e.kind() == JournalErrorKind::Permanent, |_| true);
        self.up.store(up, Ordering::Relaxed);
        metrics.journal_up.set(i64::from(up));
        if let Ok(mut last) = self.last_error.lock() {
            *last = result.as_ref().err().map(ToString::to_string);
        }
    }
}

/// Writes one batch in one transaction; answers the ids of the rows that were new. The
/// records are shared, so retrying a batch does not copy it.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Uuid>, JournalError>")]
pub struct AppendBatch(pub Arc<[JournalRecord]>);

/// Default client-side bound of a journal write.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default client-side bound of a journal read.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `call` within `limit`; a call that does not finish in time is dropped (which cancels
/// the query client-side) and becomes [`JournalError::Timeout`].
pub async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, JournalError>>,
) -> Result<T, JournalError> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(JournalError::Timeout(limit)))
}

/// Reads history.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<StoredSnapshot>, JournalError>")]
pub struct QuerySnapshots(pub SnapshotQuery);

/// Checks the journal answers.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), JournalError>")]
pub struct Ping;

/// The journal actor.
#[derive(Debug)]
pub struct JournalActor {
    journal: Journal,
    health: Arc<JournalHealth>,
    metrics: Arc<AggregatorMetrics>,
    mailbox_capacity: usize,
    write_timeout: Duration,
    read_timeout: Duration,
}

impl JournalActor {
    pub fn new(
        journal: Journal,
        health: Arc<JournalHealth>,
        metrics: Arc<AggregatorMetrics>,
        mailbox_capacity: usize,
    ) -> Self {
        health.up.store(true, Ordering::Relaxed);
        metrics.journal_up.set(1);
        Self {
            journal,
            health,
            metrics,
            mailbox_capacity,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// Sets the client-side bounds of writes and reads (zero keeps the default).
    pub fn with_timeouts(mut self, write: Duration, read: Duration) -> Self {
        if !write.is_zero() {
            self.write_timeout = write;
        }
        if !read.is_zero() {
            self.read_timeout = read;
        }
        self
    }

    pub fn layout(&self) -> Layout {
        self.journal.layout()
    }

    /// Gives the actor a write connection of its own (see [`Journal::with_own_writer`]): call
    /// on the thread the actor runs on.
    pub fn with_own_writer(mut self) -> Self {
        self.journal = self.journal.with_own_writer();
        self
    }
}

/// Closes the actor's own write connection (see [`JournalActor::with_own_writer`]); send
/// before its arbiter stops, once nothing writes any more.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct CloseWriter;

impl Handler<CloseWriter> for JournalActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: CloseWriter, _: &mut Self::Context) -> Self::Result {
        let journal = self.journal.clone();
        Box::pin(async move { journal.close_own_writer().await })
    }
}

impl Actor for JournalActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
    }
}

impl Handler<AppendBatch> for JournalActor {
    type Result = ResponseFuture<Result<Vec<Uuid>, JournalError>>;

    fn handle(&mut self, msg: AppendBatch, _: &mut Self::Context) -> Self::Result {
        let journal = self.journal.clone();
        let health = Arc::clone(&self.health);
        let metrics = Arc::clone(&self.metrics);
        let limit = self.write_timeout;
        Box::pin(async move {
            let started = Instant::now();
            let result = bounded(limit, journal.insert_batch(&msg.0)).await;
            health.record(&metrics, &result);
            match &result {
                Ok(_) => {
                    metrics.batch_size.observe(msg.0.len() as f64);
                    metrics
                        .journal_write_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                Err(_) => {
                    metrics.journal_errors.inc();
                }
            }
            result
        })
    }
}

impl Handler<QuerySnapshots> for JournalActor {
    type Result = ResponseFuture<Result<Vec<StoredSnapshot>, JournalError>>;

    fn handle(&mut self, msg: QuerySnapshots, _: &mut Self::Context) -> Self::Result {
        let journal = self.journal.clone();
        let health = Arc::clone(&self.health);
        let metrics = Arc::clone(&self.metrics);
        let limit = self.read_timeout;
        Box::pin(async move {
            let result = bounded(limit, journal.query(&msg.0)).await;
            health.record(&metrics, &result);
            result
        })
    }
}

impl Handler<Ping> for JournalActor {
    type Result = ResponseFuture<Result<(), JournalError>>;

    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        let journal = self.journal.clone();
        let health = Arc::clone(&self.health);
        let metrics = Arc::clone(&self.metrics);
        let limit = self.read_timeout;
        Box::pin(async move {
            let result = bounded(limit, journal.ping()).await;
            health.record(&metrics, &result);
            result
        })
    }
}

/// Reads the bucketed status history (worst grade per kind and time bucket).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<crate::journal::history::HistoryBucket>, JournalError>")]
pub struct StatusHistory(pub crate::journal::history::HistoryQuery);

impl Handler<StatusHistory> for JournalActor {
    type Result = ResponseFuture<Result<Vec<crate::journal::history::HistoryBucket>, JournalError>>;

    fn handle(&mut self, msg: StatusHistory, _: &mut Self::Context) -> Self::Result {
        let journal = self.journal.clone();
        let health = Arc::clone(&self.health);
        let metrics = Arc::clone(&self.metrics);
        Box::pin(async move {
            let result = crate::journal::history::status_history(&journal, &msg.0).await;
            health.record(&metrics, &result);
            result
        })
    }
}

/// Reads one page of the CI history (`journal/ci.rs`).
#[derive(Debug, Message)]
#[rtype(result = "Result<crate::journal::ci::CiPage, JournalError>")]
pub struct CiHistory(
    pub crate::journal::ci::CiTable,
    pub crate::journal::ci::CiQuery,
);

impl Handler<CiHistory> for JournalActor {
    type Result = ResponseFuture<Result<crate::journal::ci::CiPage, JournalError>>;

    fn handle(&mut self, msg: CiHistory, _: &mut Self::Context) -> Self::Result {
        let journal = self.journal.clone();
        let health = Arc::clone(&self.health);
        let metrics = Arc::clone(&self.metrics);
        let limit = self.read_timeout;
        Box::pin(async move {
            let result = bounded(limit, journal.ci_read(msg.0, &msg.1)).await;
            health.record(&metrics, &result);
            result
        })
    }
}

/// Reads the execution journal (recent rows, latest, totals).
#[derive(Debug, Message)]
#[rtype(result = "Result<crate::journal::execution::ExecutionJournalView, JournalError>")]
pub struct ExecutionJournal(pub crate::journal::execution::ExecutionQuery);

impl Handler<ExecutionJournal> for JournalActor {
    type Result =
        ResponseFuture<Result<crate::journal::execution::ExecutionJournalView, JournalError>>;

    fn handle(&mut self, msg: ExecutionJournal, _: &mut Self::Context) -> Self::Result {
        let journal = self.journal.clone();
        let health = Arc::clone(&self.health);
        let metrics = Arc::clone(&self.metrics);
        let limit = self.read_timeout;
        Box::pin(async move {
            let result = bounded(limit, journal.execution_view(&msg.0)).await;
            health.record(&metrics, &result);
            result
        })
    }
}
