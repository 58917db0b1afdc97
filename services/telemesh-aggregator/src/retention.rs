//! Owns the journal retention job: every `journal.retention_interval_minutes` it removes the
//! rows older than `journal.retention_days` (`Journal::retain`: `drop_chunks` on a hypertable,
//! batched `DELETE` elsewhere) and records the outcome in the retention metrics.

use std::sync::Arc;

use chrono::Utc;

use crate::journal::{Journal, RetentionOutcome, RetentionPolicy};
use crate::metrics::{label, AggregatorMetrics};

/// Runs retention once now and records it; answers what was removed.
pub async fn run_once(
    journal: &Journal,
    policy: RetentionPolicy,
    metrics: &AggregatorMetrics,
) -> Option<RetentionOutcome> {
    let now = Utc::now();
    match journal.retain(policy.cutoff(now)).await {
        Ok(outcome) => {
            metrics
                .retention_runs
                .get_or_create(&label("outcome", "ok"))
                .inc();
            metrics
                .retention_rows_deleted
                .inc_by(outcome.rows_deleted);
            metrics
                .retention_chunks_dropped
                .inc_by(outcome.chunks_dropped);
            metrics
                .retention_last_success
                .set(now.timestamp_millis() as f64 / 1000.0);
            tracing::info!(
                rows_deleted = outcome.rows_deleted,
                chunks_dropped = outcome.chunks_dropped,
                keep_days = policy.keep_days,
                "journal retention ran"
            );
            Some(outcome)
        }
        Err(e) => {
            metrics
                .retention_runs
                .get_or_create(&label("outcome", "error"))
                .inc();
            tracing::warn!(error = %e, "journal retention failed; it runs again next interval");
            None
        }
    }
}

/// Starts the job when the journal has a retention policy: a first run right away, then one
/// every interval. Abort the handle to stop it.
pub fn spawn(journal: Journal, metrics: Arc<AggregatorMetrics>) -> Option<tokio::task::JoinHandle<()>> {
    let policy = journal.retention()?;
    Some(actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(policy.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_once(&journal, policy, &metrics).await;
        }
    }))
}
