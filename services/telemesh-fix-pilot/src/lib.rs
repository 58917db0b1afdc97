//! The FIX pilot domain service: FIX 4.4 trading and drop-copy sessions, the order gateway,
//! the drop-copy reconciler, and the `telemetry.execution.fix_pilot` and
//! `telemetry.execution.dropcopy` snapshots.
//!
//! - [`fixed`], [`codes`], [`report`]: exact decimals, FIX code sets, the engine-free
//!   [`ExecReport`] and its validation.
//! - [`orders`]: the order model of our side.
//! - [`reconciler`]: the pure drop-copy [`Reconciler`].
//! - [`settings`]: the `[fix_pilot]` section ([`FixPilotSettings`], [`LIST_KEYS`]).
//! - [`state`], [`evaluate`](mod@evaluate): the plain state and the pure grading of both snapshots.
//! - [`session`]: the thin hotfix adapter (the only module naming engine types).
//! - [`gateway`]: the order-request schema.
//! - [`order_gateway`]: the gateway's delivery guarantee (ClOrdID journal, age limit, order
//!   events, offsets committed only after an outcome).
//! - [`execution`]: execution readiness (`telemetry.operational.execution`) from the live
//!   order book, reconciler and sessions.
//! - [`service`]: [`FixPilotService`], the actor of the sessions and the reconciler.
//! - [`kafka_gateway`]: its Kafka side (order requests, execution reports).
//! - [`domain`]: [`FixPilot`], the domain run by `telemesh_service`.

pub mod codes;
pub mod domain;
pub mod evaluate;
pub mod execution;
pub mod fasthash;
pub mod fixed;
pub mod gateway;
pub mod kafka_gateway;
pub mod metrics;
pub mod order_gateway;
pub mod orders;
pub mod reconciler;
pub mod report;
pub mod service;
pub mod session;
pub mod settings;
pub mod state;

pub use domain::{FixPilot, SERVICE_NAME};
pub use fixed::Fixed;
pub use kafka_gateway::Submit;
pub use metrics::FixMetrics;
pub use reconciler::{Category, Outcome, ReconPolicy, ReconSummary, Reconciler, Stream};
pub use report::{ExecReport, Rejection};
pub use service::{FixPilotService, GetState, Shutdown};
pub use settings::{ExecutionsSource, FixPilotSettings, SessionSettings, LIST_KEYS};
