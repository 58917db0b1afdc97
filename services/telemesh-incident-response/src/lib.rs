//! The incident-response domain service: grades incident readiness from live inputs —
//! Markdown runbooks, the on-call roster, the drill and training log and the aggregator's
//! alert history — per DOMAINS.md §3.8, publishes `telemetry.operational.incident_response`,
//! and answers a deployment gate over HTTP.
//!
//! - [`settings`]: the `[incident_response]` section, its [`IncidentResponsePolicy`] and
//!   [`GateSettings`].
//! - [`runbooks`], [`roster`], [`activity`], [`alerts`]: reading each input.
//! - [`collect`]: [`Collector`], gathering an [`IncidentResponseState`] from the inputs.
//! - [`evaluate`](mod@evaluate): the pure grading ([`evaluate()`]).
//! - [`gate`](mod@gate): the pure deployment gate ([`gate()`]).
//! - [`service`]: [`IncidentResponse`], the domain run by `telemesh_service`.
//! - [`http`]: its own routes: the gate, the snapshot and the activities.

pub mod activity;
pub mod alerts;
pub mod collect;
pub mod evaluate;
pub mod gate;
pub mod http;
pub mod roster;
pub mod runbooks;
pub mod service;
pub mod settings;
pub mod state;

pub use activity::{Activity, ActivityError, ActivityKind, InvalidActivity};
pub use alerts::{Alert, AlertHistoryClient, AlertHistoryError, AlertList};
pub use collect::Collector;
pub use evaluate::{evaluate, snapshot_issues, Issue};
pub use gate::{gate, Gate, GateDecision};
pub use service::{IncidentResponse, SERVICE_NAME};
pub use settings::{
    GateSettings, IncidentResponsePolicy, IncidentResponseSettings, IncidentSeverity, LIST_KEYS,
};
pub use state::IncidentResponseState;
