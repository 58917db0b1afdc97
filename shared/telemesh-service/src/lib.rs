//! The domain framework: one way to write a domain of the mesh.
//!
//! A domain implements [`Domain`]: its name and kinds, how often it gathers, how it gathers
//! its state (I/O, with a timeout), how it grades that state (a pure `evaluate`), and optional
//! extra HTTP routes and metric families. [`start`] runs it as one generic service that owns:
//!
//! - the timer, without overlap (a tick that finds the previous gather still running is
//!   skipped and counted);
//! - the gather timeout (a gather that overruns is graded `fail` for each of the domain's kinds);
//! - the "not configured" block (a domain that cannot run says which setting to set, graded,
//!   instead of being absent);
//! - the last snapshot of each kind ([`ServiceHandle::latest`]);
//! - publishing through the [`SnapshotPublisher`](telemesh_core::transport::SnapshotPublisher);
//! - the root span of each snapshot's trace (`evaluate <service>`);
//! - HTTP: `/health/live`, `/health/ready`, `/metrics`, `/api/v1/snapshots/latest` and the
//!   domain's own routes, bound on a given address (port 0 in tests);
//! - shutdown: the domain's `stop`, then a "departed" snapshot per kind so the aggregator retires
//!   the instance at once.
//!
//! [`testing`] starts a domain on port 0 over the in-process transport for tests.

mod domain;
mod http;
mod metrics;
mod service;
pub mod testing;

pub use domain::{Domain, Evaluation, NotConfigured, Routes};
pub use http::refused;
pub use service::{start, RunningService, ServiceError, ServiceHandle, ServiceOptions};
