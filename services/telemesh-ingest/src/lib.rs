//! The ingest domain service (`telemesh serve ingest`): grades market-data ingest trends
//! (`telemetry.ingest.trends`) and data retention (`telemetry.data_backbone.retention`)
//! continuously, per dimension, from the platform's own database, and accepts run reports
//! from ingest jobs that do not write the runs table themselves.
//!
//! - [`settings`]: the `[ingest]` section and the policies derived from it.
//! - [`trends`], [`retention`]: pure evaluators `evaluate(policy, source, observations, now)`.
//! - [`run`]: the run record, status words and run-report validation.
//! - [`source`]: the platform database (read-only sessions; the one write is a run report).
//! - [`service`]: [`Ingest`], the domain run by `telemesh_service`.
//! - [`http`]: its own route, `POST /api/v1/ingest/runs`.
//!
//! Architecture invariant: this crate never opens the telemesh journal; only the aggregator
//! writes it. Its one write goes to the platform's runs table.

pub mod http;
pub mod render;
pub mod retention;
pub mod run;
pub mod service;
pub mod settings;
pub mod source;
pub mod trends;

pub use service::{Ingest, IngestState, SERVICE_NAME};
pub use settings::{IngestSettings, LIST_KEYS};
pub use source::{SourceDb, SourceError, TableName};
