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
//! - [`service`]: [`FixPilotService`], the actix actor.

pub mod codes;
pub mod evaluate;
pub mod execution;
pub mod fasthash;
pub mod fixed;
pub mod gateway;
pub mod metrics;
pub mod order_gateway;
pub mod orders;
pub mod reconciler;
pub mod report;
pub mod service;
pub mod session;
pub mod settings;
pub mod state;

pub use fixed::Fixed;
pub use metrics::FixMetrics;
pub use reconciler::{Category, Outcome, ReconPolicy, ReconSummary, Reconciler, Stream};
pub use report::{ExecReport, Rejection};
pub use service::{
    FixPilotService, GetSnapshots, GetState, PublishNow, Shutdown, Snapshots, Submit,
};
pub use settings::{ExecutionsSource, FixPilotSettings, SessionSettings, LIST_KEYS};
