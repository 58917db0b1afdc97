//! The telemesh wire contract, with no I/O dependency (no Kafka client, database, HTTP server,
//! async runtime or OTLP exporter): what a producer or a consumer of the `telemetry.*` topics
//! needs to build, encode, decode and check a snapshot.
//!
//! - [`snapshot`]: the snapshot envelope v1 and its building blocks ([`Grade`], [`Component`], …).
//! - [`grade`]: ok / warn / fail.
//! - [`codec`]: bincode 1.3 and JSON encodings, chosen by the `content-type` header.
//! - [`limits`]: decode-time limits (NUL, time range, nesting, sizes, producer clock skew).
//! - [`topics`]: the kind pattern (`telemetry.<area>.<name>`) and the topic of a kind.
//! - [`catalogue`]: the known kinds (title, expected interval, owner, docs link), as data.
//! - [`schema`]: the JSON Schema of the envelope (`docs/snapshot.schema.json`).
//!
//! `telemesh-core` re-exports every module under its old path (`telemesh_core::codec`, …).

pub mod catalogue;
pub mod codec;
pub mod grade;
pub mod limits;
pub mod schema;
pub mod snapshot;
pub mod topics;

pub use codec::{CodecError, ContentType, Encoding};
pub use grade::Grade;
pub use snapshot::{Component, DetailValue, Details, Snapshot, Source};
