//! Owns the journal actor: the single place that writes and reads the journal, recording
//! whether the journal is up for readiness and metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix::prelude::*;
use uuid::Uuid;

use crate::journal::{Journal, JournalError, JournalRecord, Layout, SnapshotQuery, StoredSnapshot};
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
        let up = result.is_ok();
        self.up.store(up, Ordering::Relaxed);
        metrics.journal_up.set(i64::from(up));
        if let Ok(mut last) = self.last_error.lock() {
            *last = result.as_ref().err().map(ToString::to_string);
        }
    }
}

/// Writes one batch in one transaction; answers the ids of the rows that were new.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Uuid>, JournalError>")]
pub struct AppendBatch(pub Vec<JournalRecord>);

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
        }
    }

    pub fn layout(&self) -> Layout {
        self.journal.layout()
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
        Box::pin(async move {
            let started = Instant::now();
            let result = journal.insert_batch(&msg.0).await;
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
        Box::pin(async move {
            let result = journal.query(&msg.0).await;
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
        Box::pin(async move {
            let result = journal.ping().await;
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
