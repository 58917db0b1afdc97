//! Owns the FIX pilot's Prometheus metrics (`docs/metrics.md`): session state per session and
//! reconciliation breaks by kind, refreshed from the pilot's state at each scrape.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::{PilotState, SessionStatus};

type Labels = Vec<(String, String)>;

fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_owned(), value.to_owned())]
}

/// The FIX metric families; register once, update before each scrape.
#[derive(Debug, Clone, Default)]
pub struct FixMetrics {
    session_state: Family<Labels, Gauge>,
    breaks: Family<Labels, Counter>,
    open_breaks: Family<Labels, Gauge>,
    degraded: Gauge,
}

impl FixMetrics {
    /// Adds the families to a registry whose prefix is `telemesh`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "fix_session_state",
            "FIX session state: 1 logged on, 0 otherwise",
            self.session_state.clone(),
        );
        registry.register(
            "fix_reconciliation_breaks",
            "Reconciliation breaks found, by kind",
            self.breaks.clone(),
        );
        registry.register(
            "fix_reconciliation_open_breaks",
            "Reconciliation breaks still open, by kind",
            self.open_breaks.clone(),
        );
        registry.register(
            "fix_reconciliation_degraded",
            "1 while reconciliation is degraded (a session down or resending)",
            self.degraded.clone(),
        );
    }

    /// Copies the pilot's current state into the families.
    pub fn update(&self, state: &PilotState) {
        for (name, session) in [("trading", &state.trading), ("dropcopy", &state.dropcopy)] {
            if session.configured {
                let up = matches!(
                    session.status,
                    SessionStatus::Active | SessionStatus::AwaitingResend { .. }
                );
                self.session_state
                    .get_or_create(&label("session", name))
                    .set(i64::from(up));
            }
        }
        let Some(recon) = &state.recon else { return };
        for (kind, total) in &recon.total_breaks {
            let counter = self.breaks.get_or_create(&label("kind", kind));
            let seen = counter.get();
            if *total > seen {
                counter.inc_by(total - seen);
            }
        }
        for (kind, open) in &recon.open_breaks {
            self.open_breaks
                .get_or_create(&label("kind", kind))
                .set(*open as i64);
        }
        self.degraded.set(i64::from(recon.degraded));
    }
}
