//! Owns the Prometheus metrics every telemesh process shares (see `docs/metrics.md`): the
//! snapshot publisher's counters and latency histogram, the tracing pipeline's export counters
//! and build info. Names follow `telemesh_<subsystem>_<name>_<unit>`; counters end in `_total`;
//! labels are low-cardinality only (kind, reason, service, version).
//!
//! The process-wide instance is [`global`]; a service registers it into its own registry with
//! [`CoreMetrics::register`] (the metric handles are shared, so registering into several
//! registries reports the same values).

use std::sync::OnceLock;

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

/// A histogram family with the given buckets per label set.
pub type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn publish_histogram() -> Histogram {
    // 0.5 ms … ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// What a [`crate::transport::SnapshotPublisher`] reports.
#[derive(Debug, Clone)]
pub struct PublisherMetrics {
    /// Snapshots durably accepted by the transport, by kind.
    pub produced: Family<Labels, Counter>,
    /// Failed publish attempts (each is retried), by kind.
    pub failed_attempts: Family<Labels, Counter>,
    /// Snapshots given up on after every attempt failed, by kind.
    pub given_up: Family<Labels, Counter>,
    /// Time from the first attempt to the transport's acknowledgement, by kind.
    pub publish_duration_seconds: HistogramFamily,
}

impl Default for PublisherMetrics {
    fn default() -> Self {
        Self {
            produced: Family::default(),
            failed_attempts: Family::default(),
            given_up: Family::default(),
            publish_duration_seconds: Family::new_with_constructor(publish_histogram),
        }
    }
}

/// What the span export pipeline of [`crate::telemetry`] reports.
#[derive(Debug, Clone, Default)]
pub struct TracingStats {
    /// Spans the collector accepted.
    pub exported: Counter,
    /// Spans lost: export queue full, export failed or timed out.
    pub dropped: Counter,
    /// Export requests that failed or timed out.
    pub export_failures: Counter,
}

/// The metrics shared by every process.
#[derive(Debug, Clone, Default)]
pub struct CoreMetrics {
    pub publisher: PublisherMetrics,
    pub tracing: TracingStats,
}

impl CoreMetrics {
    /// Registers every metric into `registry`, which must have the `telemesh` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "publisher_snapshots_produced",
            "Snapshots durably accepted by the transport, by kind",
            self.publisher.produced.clone(),
        );
        registry.register(
            "publisher_publish_failures",
            "Failed publish attempts (each is retried), by kind",
            self.publisher.failed_attempts.clone(),
        );
        registry.register(
            "publisher_snapshots_given_up",
            "Snapshots not published after every attempt failed, by kind",
            self.publisher.given_up.clone(),
        );
        registry.register(
            "publisher_publish_duration_seconds",
            "Time from the first publish attempt to the transport's acknowledgement, by kind",
            self.publisher.publish_duration_seconds.clone(),
        );
        registry.register(
            "tracing_spans_exported",
            "Spans accepted by the OTLP collector",
            self.tracing.exported.clone(),
        );
        registry.register(
            "tracing_spans_dropped",
            "Spans dropped: export queue full, export failed or timed out",
            self.tracing.dropped.clone(),
        );
        registry.register(
            "tracing_export_failures",
            "OTLP export requests that failed or timed out",
            self.tracing.export_failures.clone(),
        );
    }
}

/// The process-wide core metrics.
pub fn global() -> &'static CoreMetrics {
    static GLOBAL: OnceLock<CoreMetrics> = OnceLock::new();
    GLOBAL.get_or_init(CoreMetrics::default)
}

/// Registers `telemesh_build_info{service, version} 1`.
pub fn register_build_info(registry: &mut Registry, service: &str, version: &str) {
    let info: Family<Labels, Gauge> = Family::default();
    info.get_or_create(&vec![
        ("service".to_owned(), service.to_owned()),
        ("version".to_owned(), version.to_owned()),
    ])
    .set(1);
    registry.register("build_info", "Build information (always 1)", info);
}

/// A registry with the `telemesh` prefix holding the [`global`] core metrics and build info:
/// the `/metrics` of a domain service.
pub fn service_registry(service: &str, version: &str) -> Registry {
    let mut registry = Registry::with_prefix("telemesh");
    global().register(&mut registry);
    register_build_info(&mut registry, service, version);
    registry
}

/// The Prometheus text exposition of `registry`.
pub fn encode_text(registry: &Registry) -> String {
    let mut out = String::new();
    // writing into a String cannot fail
    let _ = encode(&mut out, registry);
    out
}

/// Content type of [`encode_text`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec() {
        let m = CoreMetrics::default();
        m.publisher
            .produced
            .get_or_create(&label("kind", "k"))
            .inc();
        m.publisher
            .publish_duration_seconds
            .get_or_create(&label("kind", "k"))
            .observe(0.01);
        m.tracing.dropped.inc();
        let mut registry = Registry::with_prefix("telemesh");
        m.register(&mut registry);
        register_build_info(&mut registry, "svc", "1.2.3");
        let text = encode_text(&registry);
        for name in [
            "telemesh_publisher_snapshots_produced_total{kind=\"k\"} 1",
            "telemesh_publisher_publish_duration_seconds_count{kind=\"k\"} 1",
            "telemesh_tracing_spans_dropped_total 1",
            "telemesh_build_info{service=\"svc\",version=\"1.2.3\"} 1",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
