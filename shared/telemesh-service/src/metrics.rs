//! Owns the framework's own metric families, the same for every domain (`docs/metrics.md`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Gathers, timeouts and skipped ticks of one domain service.
#[derive(Debug, Clone)]
pub(crate) struct ServiceMetrics {
    pub gathers: Counter,
    pub gather_timeouts: Counter,
    pub skipped_ticks: Counter,
    pub gather_seconds: Histogram,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        Self {
            gathers: Counter::default(),
            gather_timeouts: Counter::default(),
            skipped_ticks: Counter::default(),
            gather_seconds: Histogram::new([0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        }
    }
}

impl ServiceMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "domain_gathers",
            "Gathers the domain service ran (timer and on demand)",
            self.gathers.clone(),
        );
        registry.register(
            "domain_gather_timeouts",
            "Gathers that overran the domain's gather timeout (graded fail)",
            self.gather_timeouts.clone(),
        );
        registry.register(
            "domain_skipped_ticks",
            "Timer ticks skipped because the previous gather was still running",
            self.skipped_ticks.clone(),
        );
        registry.register(
            "domain_gather_duration_seconds",
            "How long each gather took",
            self.gather_seconds.clone(),
        );
    }
}
