//! Owns the names of the snapshot kinds the CI domain publishes.

/// Last run per workflow/branch, failure streak, time to recovery; fails while the main
/// pipeline is failing (this is what pages through the alerting lifecycle).
pub const PIPELINE: &str = "telemetry.ci.pipeline";
/// Flaky tests in the window and the newest failures.
pub const FLAKES: &str = "telemetry.ci.flakes";
/// Coverage, its trend, lagging domains and the formatter mode.
pub const COVERAGE: &str = "telemetry.ci.coverage";
/// One parsed test-report upload (the per-test history the aggregator journals).
pub const TESTS: &str = "telemetry.ci.tests";

/// Every kind this domain publishes.
pub const ALL: [&str; 4] = [PIPELINE, FLAKES, COVERAGE, TESTS];
