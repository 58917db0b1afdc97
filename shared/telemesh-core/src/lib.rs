//! The telemesh wire contract and the plumbing every telemesh service shares.
//!
//! - [`snapshot`]: the snapshot envelope v1 and its building blocks ([`Grade`], [`Component`], …).
//! - [`codec`]: bincode 1.3 and JSON encodings, chosen by the `content-type` header.
//! - [`limits`]: decode-time limits (NUL, time range, nesting, sizes, producer clock skew).
//! - [`topics`]: the Kafka topic names of the external contract.
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
pub mod codec;
pub mod config;
pub mod grade;
pub mod limits;
pub mod metrics;
pub mod snapshot;
pub mod telemetry;
pub mod topics;
pub mod transport;

pub use codec::{CodecError, ContentType, Encoding};
pub use grade::Grade;
pub use snapshot::{Component, DetailValue, Details, Snapshot, Source};
