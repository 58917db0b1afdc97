//! The system validation domain: grades the JSON report of an external validation run
//! (DOMAINS.md §3.10), read from a file or uploaded over HTTP, with its reliability over the
//! reports seen, and publishes `telemetry.operational.system_validation`.
//!
//! - [`settings`]: the `[system_validation]` section.
//! - [`report`]: the report parser (bounded, hostile input becomes named problems).
//! - [`state`]: what one gather knows ([`ValidationState`]).
//! - [`evaluate`](mod@evaluate): the pure grading ([`evaluate()`]).
//! - [`domain`]: [`SystemValidationDomain`], the domain on the framework (file + uploads).
//! - [`http`]: `POST /api/v1/system-validation/report` (bearer token).

pub mod domain;
pub mod evaluate;
pub mod http;
pub mod report;
pub mod settings;
pub mod state;

pub use domain::{SystemValidationDomain, SERVICE};
pub use evaluate::{evaluate, KIND};
pub use report::{parse_report, Report, ReportError};
pub use settings::{SettingsError, SystemValidationSettings};
pub use state::{HistoryEntry, Origin, ValidationState};
