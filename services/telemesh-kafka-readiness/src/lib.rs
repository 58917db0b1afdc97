//! The Kafka readiness domain service: probes the Kafka cluster (brokers, topics, recent
//! publishers, consumer-group lag), grades it and publishes `telemetry.kafka.readiness`.
//!
//! - [`settings`]: the `[kafka_readiness]` section and its clamped [`ReadinessPolicy`].
//! - [`state`]: the plain data a probe gathers ([`ReadinessState`]).
//! - [`probe`]: [`KafkaProbe`], the real I/O with rdkafka.
//! - [`evaluate`](mod@evaluate): the pure grading ([`evaluate()`]).
//! - [`service`]: [`KafkaReadiness`], the domain run by `telemesh_service`.

pub mod evaluate;
pub mod probe;
pub mod service;
pub mod settings;
pub mod state;

pub use evaluate::evaluate;
pub use probe::KafkaProbe;
pub use service::{KafkaReadiness, SERVICE_NAME};
pub use settings::{ReadinessPolicy, ReadinessSettings};
pub use state::{
    ConnectionState, GroupLag, PartitionLag, ProvisioningState, PublisherState, ReadinessState,
    TopicState,
};
