//! The plumbing every telemesh service shares, plus the wire contract re-exported from
//! `telemesh-wire` under its old paths.
//!
//! - Re-exported from [`telemesh_wire`] (the contract, no I/O): [`snapshot`], [`grade`],
//!   [`codec`], [`limits`], [`topics`] (kind pattern, topic of a kind), [`catalogue`] (known
//!   kinds) and [`schema`] (the JSON Schema). Code that only builds or reads snapshots can
//!   depend on `telemesh-wire` alone.
//! - [`config`]: layered configuration (TOML file, then `TELEMESH__SECTION__KEY` variables).
//! - [`telemetry`]: logging (human or JSON lines) and OpenTelemetry tracing over OTLP, with
//!   the W3C `traceparent` helpers for message headers.
//! - [`metrics`]: the Prometheus metrics every process shares (publisher, tracing, build info).
//! - [`transport`]: the transport trait and its Kafka and in-process implementations.
//! - [`auth`]: the constant-time bearer-token check of mutating HTTP endpoints.
//!
//! Architecture invariant: this crate opens no database connection; the only sockets it opens
//! are the Kafka clients a caller asks [`transport::kafka`] for.

pub mod activity;
pub mod auth;
pub mod config;
pub mod metrics;
pub mod telemetry;
pub mod transport;

pub use telemesh_wire::{catalogue, codec, grade, limits, schema, snapshot, topics};
pub use telemesh_wire::{CodecError, ContentType, Encoding};
pub use telemesh_wire::{Component, DetailValue, Details, Grade, Snapshot, Source};
