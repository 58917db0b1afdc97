//! The event-bus health domain: grades the process's own transport — the Kafka producer
//! (queue, in-flight publishes, delivery errors, librdkafka's broker statistics) or the
//! in-process channel (depth against capacity, drops, dead letters, its consumer) — and
//! publishes `telemetry.event_bus.health` (DOMAINS.md §3.9). It reads
//! `telemesh_core::transport::Publisher::stats`, so the binary can add it beside any domain in
//! any process that publishes.
//!
//! - [`settings`]: the `[event_bus_health]` section.
//! - [`evaluate`](mod@evaluate): the pure grading ([`evaluate()`]) of a [`BusState`].
//! - [`domain`]: [`EventBusDomain`], the domain on the framework.

pub mod domain;
pub mod evaluate;
pub mod settings;

pub use domain::{EventBusDomain, SERVICE};
pub use evaluate::{evaluate, BusState, KIND};
pub use settings::{EventBusSettings, SettingsError};
