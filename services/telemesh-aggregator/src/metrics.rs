//! Owns the aggregator's Prometheus metrics (names follow `telemesh_<subsystem>_<name>_<unit>`,
//! counters end in `_total`, labels are low-cardinality: kind, reason, actor; the spec is
//! `docs/metrics.md`) and their text encoding. The process-wide core metrics (publisher,
//! tracing export) are registered alongside, so one scrape shows them too.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A label set such as `[("kind", "telemetry.kafka.readiness")]`.
pub type Labels = Vec<(String, String)>;

/// Builds a one-label set.
pub fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_owned(), value.to_owned())]
}

/// Every metric the aggregator exports.
#[derive(Debug)]
pub struct AggregatorMetrics {
    registry: Registry,
    pub consumed: Family<Labels, Counter>,
    pub journaled: Family<Labels, Counter>,
    pub duplicates: Counter,
    pub dead_letters: Family<Labels, Counter>,
    pub journal_errors: Counter,
    pub batch_size: Histogram,
    pub journal_write_seconds: Histogram,
    pub end_to_end_lag_seconds: Histogram,
    pub journal_up: Gauge,
    pub ingress_paused: Gauge,
    pub domain_grade: Family<Labels, Gauge>,
    pub domain_age_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    /// Messages sent to an actor and not yet answered, by actor (`journal`, `summary`).
    pub mailbox_depth: Family<Labels, Gauge>,
    /// Messages published but not yet consumed (Kafka consumer lag / in-process backlog).
    pub consumer_lag: Gauge,
    /// Time from generated_at to the start of processing in the aggregator.
    pub dispatch_lag_seconds: Histogram,
    /// Alert notifications by channel and outcome.
    pub alert_notifications: Family<Labels, Counter>,
    /// Alerts pending or firing.
    pub alerts_open: Gauge,
    /// Journal retention runs, by outcome (`ok`, `error`).
    pub retention_runs: Family<Labels, Counter>,
    /// Journal rows removed by retention (`DELETE` on plain PostgreSQL and SQLite).
    pub retention_rows_deleted: Counter,
    /// Hypertable chunks removed by retention (`drop_chunks` on TimescaleDB).
    pub retention_chunks_dropped: Counter,
    /// Unix time of the last successful retention run.
    pub retention_last_success: Gauge<f64, AtomicU64>,
}

impl Default for AggregatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregatorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("telemesh");
        let m = Self {
            consumed: Family::default(),
            journaled: Family::default(),
            duplicates: Counter::default(),
            dead_letters: Family::default(),
            journal_errors: Counter::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            journal_write_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            end_to_end_lag_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            journal_up: Gauge::default(),
            ingress_paused: Gauge::default(),
            domain_grade: Family::default(),
            domain_age_seconds: Family::default(),
            mailbox_depth: Family::default(),
            consumer_lag: Gauge::default(),
            dispatch_lag_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            alert_notifications: Family::default(),
            alerts_open: Gauge::default(),
            retention_runs: Family::default(),
            retention_rows_deleted: Counter::default(),
            retention_chunks_dropped: Counter::default(),
            retention_last_success: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "alert_notifications",
            "Alert notifications by channel and outcome (delivered, failed)",
            m.alert_notifications.clone(),
        );
        registry.register(
            "alerts_open",
            "Alerts pending or firing",
            m.alerts_open.clone(),
        );
        registry.register(
            "aggregator_messages_consumed",
            "Messages read from the transport, by kind",
            m.consumed.clone(),
        );
        registry.register(
            "aggregator_snapshots_journaled",
            "Snapshots newly written to the journal, by kind",
            m.journaled.clone(),
        );
        registry.register(
            "aggregator_snapshots_duplicate",
            "Snapshots already in the journal (redelivered), skipped",
            m.duplicates.clone(),
        );
        registry.register(
            "aggregator_dead_letters",
            "Messages sent to the dead-letter topic, by kind and reason",
            m.dead_letters.clone(),
        );
        registry.register(
            "aggregator_journal_errors",
            "Failed journal writes (each is retried)",
            m.journal_errors.clone(),
        );
        registry.register(
            "aggregator_journal_batch_size_snapshots",
            "Snapshots per journal transaction",
            m.batch_size.clone(),
        );
        registry.register(
            "aggregator_journal_write_duration_seconds",
            "Time of one journal transaction",
            m.journal_write_seconds.clone(),
        );
        registry.register(
            "aggregator_end_to_end_lag_seconds",
            "Time from generated_at to journal commit",
            m.end_to_end_lag_seconds.clone(),
        );
        registry.register(
            "aggregator_journal_up",
            "1 when the last journal operation succeeded",
            m.journal_up.clone(),
        );
        registry.register(
            "aggregator_ingress_paused",
            "1 while consumption is paused by a journal outage",
            m.ingress_paused.clone(),
        );
        registry.register(
            "domain_grade",
            "Latest grade per domain: 0 ok, 1 warn, 2 fail",
            m.domain_grade.clone(),
        );
        registry.register(
            "domain_snapshot_age_seconds",
            "Age of the newest snapshot per domain",
            m.domain_age_seconds.clone(),
        );
        registry.register(
            "aggregator_mailbox_depth_messages",
            "Messages sent by the ingress to an actor and not yet answered, by actor",
            m.mailbox_depth.clone(),
        );
        registry.register(
            "aggregator_consumer_lag_messages",
            "Messages published but not yet consumed (Kafka consumer lag, in-process backlog)",
            m.consumer_lag.clone(),
        );
        registry.register(
            "aggregator_dispatch_lag_seconds",
            "Time from generated_at to the start of processing in the aggregator",
            m.dispatch_lag_seconds.clone(),
        );
        registry.register(
            "aggregator_journal_retention_runs",
            "Journal retention runs, by outcome (ok, error)",
            m.retention_runs.clone(),
        );
        registry.register(
            "aggregator_journal_retention_rows_deleted",
            "Journal rows removed by retention (DELETE: plain PostgreSQL, SQLite)",
            m.retention_rows_deleted.clone(),
        );
        registry.register(
            "aggregator_journal_retention_chunks_dropped",
            "Hypertable chunks removed by retention (drop_chunks: TimescaleDB)",
            m.retention_chunks_dropped.clone(),
        );
        registry.register(
            "aggregator_journal_retention_last_success_timestamp_seconds",
            "Unix time of the last successful journal retention run",
            m.retention_last_success.clone(),
        );
        telemesh_core::metrics::global().register(&mut registry);
        telemesh_core::metrics::register_build_info(
            &mut registry,
            "aggregator",
            env!("CARGO_PKG_VERSION"),
        );
        Self { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = encode(&mut out, &self.registry);
        out
    }
}
