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
            metrics.retention_rows_deleted.inc_by(outcome.rows_deleted);
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
pub fn spawn(
    journal: Journal,
    metrics: Arc<AggregatorMetrics>,
) -> Option<tokio::task::JoinHandle<()>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalRecord;
    use crate::settings::JournalSettings;
    use telemesh_core::{Component, Grade, Snapshot, Source};

    fn record(days_ago: i64) -> JournalRecord {
        let mut s = Snapshot::new(
            "telemetry.kafka.readiness",
            Source::new("kr", format!("i{days_ago}")),
            Utc::now() - chrono::Duration::days(days_ago),
        );
        s.push(Component::new("c", Grade::Ok, "fine"));
        JournalRecord {
            snapshot: s,
            received_at: Utc::now(),
            kafka: None,
        }
    }

    #[tokio::test]
    async fn a_run_removes_old_rows_and_counts_them_in_the_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let settings = JournalSettings {
            url: telemesh_core::config::SecretUrl::new(format!(
                "sqlite://{}/j.db",
                dir.path().display()
            )),
            retention_days: 7,
            ..JournalSettings::default()
        };
        let journal = Journal::connect(&settings).await.unwrap();
        let policy = journal.retention().expect("retention_days = 7 is a policy");
        assert_eq!(policy.every, std::time::Duration::from_secs(3600));
        journal
            .insert_batch(&[record(30), record(8), record(6), record(0)])
            .await
            .unwrap();
        let metrics = AggregatorMetrics::new();
        let outcome = run_once(&journal, policy, &metrics).await.unwrap();
        assert_eq!(outcome.rows_deleted, 2);
        let text = metrics.encode();
        assert!(
            text.contains("telemesh_aggregator_journal_retention_rows_deleted_total 2"),
            "{text}"
        );
        assert!(
            text.contains("telemesh_aggregator_journal_retention_runs_total{outcome=\"ok\"} 1"),
            "{text}"
        );
        // the latest-per-source rows of sources silent since the cutoff are gone too
        let latest = journal
            .latest(Utc::now() - chrono::Duration::days(365))
            .await
            .unwrap();
        assert_eq!(latest.len(), 2);
        assert!(JournalSettings::default().retention_days == 0);
        assert!(RetentionPolicy::from_settings(&JournalSettings::default()).is_none());
    }
}
