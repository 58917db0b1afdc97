//! The CI telemetry domain (issue 13, DOMAINS.md §8.2 and §9): what GitHub and test tools send
//! in, parsed and validated, and the pure grading of it.
//!
//! - [`webhook`]: `X-Hub-Signature-256` verification (constant-time) and the replay guard by
//!   `X-GitHub-Delivery`.
//! - [`github`]: the `workflow_run` payload model and the alert decision of §8.2.
//! - [`junit`]: JUnit XML (pytest, cargo-nextest / libtest, Maven Surefire) and the plan's
//!   `flake_runs.json`.
//! - [`coverage`]: Cobertura XML and LCOV, overall and per-directory ("domain") coverage.
//! - [`flakes`]: flake detection over per-test history.
//! - [`evaluate`]: the pure evaluators of `telemetry.ci.pipeline`, `telemetry.ci.flakes` and
//!   `telemetry.ci.coverage`.
//! - [`history`]: the `telemetry.ci.history` records that journal per-test history, coverage
//!   and formatter trends and pipeline runs, and reading them back from the aggregator.
//! - [`journal`]: the aggregator client that seeds the domain's state from the journal.
//! - [`http`]: the intake routes (webhook, report and coverage uploads).
//! - [`intake`]: the bounded in-memory state the webhook, poller and uploads feed.
//! - [`poller`]: the GitHub REST poller (ETag, rate limits) for hosts without inbound HTTP.
//! - [`reports_dir`]: test reports and coverage read from a directory (`ci.reports_dir`).
//! - [`kinds`]: the kind names this domain publishes.
//! - [`settings`]: the `[ci]` section.
//! - [`domain`]: [`domain::CiDomain`], the domain on `telemesh-service`.

pub mod coverage;
pub mod domain;
pub mod evaluate;
pub mod flakes;
pub mod github;
pub mod history;
pub mod http;
pub mod intake;
pub mod journal;
pub mod junit;
pub mod kinds;
pub mod poller;
pub mod reports_dir;
pub mod settings;
pub mod webhook;
