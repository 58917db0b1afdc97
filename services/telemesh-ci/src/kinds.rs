//! Owns the names of the snapshot kinds the CI domain publishes.

/// Last run per workflow/branch, failure streak, time to recovery; fails while the main
/// pipeline is failing (this is what pages through the alerting lifecycle).
pub const PIPELINE: &str = "telemetry.ci.pipeline";
/// Flaky tests in the window and the newest failures.
pub const FLAKES: &str = "telemetry.ci.flakes";
/// Coverage, its trend, lagging domains and the formatter mode.
pub const COVERAGE: &str = "telemetry.ci.coverage";

/// Every kind this domain publishes.
pub const ALL: [&str; 3] = [PIPELINE, FLAKES, COVERAGE];

/// The history records the aggregator journals (per-test results, coverage and formatter
/// entries, pipeline runs; `history.rs`). Not graded and not a heartbeat, so not in [`ALL`]:
/// no not-configured block and no departed snapshot is published for it.
pub const HISTORY: &str = "telemetry.ci.history";
