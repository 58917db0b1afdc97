//! Owns the handles of alerting's Prometheus metrics. The host registers them in its registry
//! (the aggregator exports them as `telemesh_alert_notifications_total{channel,outcome}` and
//! `telemesh_alerts_open`); labels never carry a URL or a secret.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// A label set such as `[("channel", "slack")]`.
pub type Labels = Vec<(String, String)>;

/// Alerting's metrics (clones share their values with the registered ones).
#[derive(Debug, Clone, Default)]
pub struct AlertMetrics {
    /// Alert notifications by channel and outcome.
    pub notifications: Family<Labels, Counter>,
    /// Alerts pending or firing.
    pub open: Gauge,
}
