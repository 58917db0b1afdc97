//! The telemesh aggregator: consumes snapshots from the transport, journals each exactly once
//! (PostgreSQL/TimescaleDB, or SQLite standalone), keeps the latest state, and serves the
//! HTTP API (health, metrics, summary, history).
//!
//! Architecture invariant: this is the only crate that talks to the journal database.

pub mod actors;
pub mod export;
pub mod http;
pub mod ingress;
pub mod journal;
pub mod metrics;
pub mod retention;
pub mod rollup;
pub mod runtime_health;
pub mod settings;
pub mod startup;
pub mod summary;
pub mod web;

pub use journal::Journal;
pub use settings::{AggregatorSettings, JournalSettings};
pub use startup::{catalogue_topics, subscribed_topics, Aggregator, AlertingParts, TransportParts};
