//! Owns the [`Domain`] trait and the small types it speaks in.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use telemesh_core::{Component, Grade, Snapshot, Source};

use crate::service::ServiceHandle;

/// Extra routes a domain adds to its service's HTTP server (called once per server worker).
pub type Routes = Arc<dyn Fn(&mut actix_web::web::ServiceConfig) + Send + Sync>;

/// Where and when an evaluation happens: the snapshots' source and their `generated_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub source: Source,
    pub now: DateTime<Utc>,
}

/// Why a domain cannot run as configured: the one dotted setting to set (e.g.
/// `fix_pilot.trading.host`), what it is for, and the grade of the block that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotConfigured {
    pub setting: &'static str,
    pub detail: String,
    pub grade: Grade,
}

impl NotConfigured {
    /// A `warn` block: the domain is not running because `setting` is not set.
    pub fn new(setting: &'static str, detail: impl Into<String>) -> Self {
        Self {
            setting,
            detail: detail.into(),
            grade: Grade::Warn,
        }
    }

    /// The same block with another grade (e.g. `fail` where running unconfigured is an incident).
    pub fn graded(mut self, grade: Grade) -> Self {
        self.grade = grade;
        self
    }

    /// The environment variable that sets [`NotConfigured::setting`].
    pub fn env_var(&self) -> String {
        telemesh_core::config::env_var_name(self.setting)
    }

    /// One snapshot of `kind` saying the domain is not configured and naming the setting.
    pub fn snapshot(&self, kind: &str, title: &str, at: &Evaluation) -> Snapshot {
        let mut snapshot = Snapshot::new(kind, at.source.clone(), at.now);
        snapshot.status = self.grade;
        snapshot.summary = format!(
            "not configured: set {} ({}) — {}",
            self.setting,
            self.env_var(),
            self.detail
        );
        snapshot.push(
            Component::new("configuration", self.grade, snapshot.summary.clone())
                .detail("setting", self.setting)
                .detail("environment", self.env_var()),
        );
        snapshot.markdown = snapshot.render_markdown(title);
        snapshot
    }
}

/// One domain of the mesh. The framework calls `gather` on its timer (never two at once), hands
/// the state to the pure `evaluate`, keeps and publishes what it returns.
pub trait Domain: Send + 'static {
    /// What one gather returns.
    type State: Send + 'static;

    /// The service's name: the source's `service`, the tracing service, `serve <name>`.
    fn name(&self) -> &'static str;

    /// The kinds this domain publishes (for the not-configured block and the departed snapshots).
    fn kinds(&self) -> Vec<&'static str>;

    /// How often it gathers.
    fn interval(&self) -> Duration;

    /// How long a gather may take before the framework grades it `fail`; the interval by default.
    fn gather_timeout(&self) -> Duration {
        self.interval()
    }

    /// `Some` when the domain cannot run as configured: the framework then publishes the graded
    /// block of [`NotConfigured`] for each kind instead of gathering.
    fn not_configured(&self) -> Option<NotConfigured> {
        None
    }

    /// Gathers the state (the domain's I/O). Dropped, and graded `fail`, after `gather_timeout`.
    fn gather(&mut self) -> impl Future<Output = Self::State> + Send + '_;

    /// Grades the state: pure, no I/O, deterministic for a given state and evaluation.
    fn evaluate(&self, state: &Self::State, at: &Evaluation) -> Vec<Snapshot>;

    /// Extra HTTP routes, served beside the framework's own.
    fn routes(&self, _service: &ServiceHandle) -> Option<Routes> {
        None
    }

    /// Registers the domain's own metric families on its service's registry.
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}

    /// Called once on shutdown, after the last gather finished (log out, flush, …).
    fn stop(&mut self) -> impl Future<Output = ()> + Send + '_ {
        async {}
    }
}
