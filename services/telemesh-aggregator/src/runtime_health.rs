//! Owns the runtime health components of DOMAINS.md §4 that the aggregator's `/health` shows
//! (beside its own journal/transport/ingress checks), each graded with its age, from the
//! latest snapshots in the summary (pure: the summary, the exporter reading and `now` come in
//! as arguments):
//!
//! - `fix_connectivity`: the FIX pilot's `sessions` component (`telemetry.execution.fix_pilot`).
//! - `market_data`: the stalest dimension of the ingest trends (`telemetry.ingest.trends`
//!   `latest_age_seconds` plus the snapshot's own age): `warn` after
//!   [`MARKET_DATA_WARN_SECONDS`], `fail` after [`MARKET_DATA_FAIL_SECONDS`].
//! - `telemetry_exporters`: this process's OTLP span export (failures within
//!   [`EXPORT_FAILURE_WINDOW_SECONDS`] are `warn`) and the mesh's event-bus health snapshots
//!   (`telemetry.event_bus.health`: delivery errors and publish failures of every publisher).
//!
//! Fixed flaw of the original: a component whose input is not part of this deployment (no
//! such kind expected and none received) is `not_applicable` instead of `warn` forever; one
//! that is expected but silent is `warn`, and a stale input is at least `warn`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use telemesh_core::{topics, DetailValue, Grade};

use crate::summary::{DomainBlock, Summary};

/// The event-bus health kind (R's domain, issue 14).
pub const EVENT_BUS_HEALTH: &str = "telemetry.event_bus.health";
/// Market data older than this is `warn` (§4.1 ingest warn age).
pub const MARKET_DATA_WARN_SECONDS: f64 = 900.0;
/// Market data older than this is `fail` (§4.1 ingest fail age).
pub const MARKET_DATA_FAIL_SECONDS: f64 = 1800.0;
/// An OTLP export failure within this many seconds is `warn`.
pub const EXPORT_FAILURE_WINDOW_SECONDS: f64 = 300.0;

/// A runtime health grade: the mesh's grades plus `not_applicable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeStatus {
    Ok,
    Warn,
    Fail,
    NotApplicable,
}

impl RuntimeStatus {
    fn of(g: Grade) -> Self {
        match g {
            Grade::Ok => RuntimeStatus::Ok,
            Grade::Warn => RuntimeStatus::Warn,
            Grade::Fail => RuntimeStatus::Fail,
        }
    }

    /// The grade it counts as in the overall (`not_applicable` counts as `ok`).
    pub fn grade(self) -> Grade {
        match self {
            RuntimeStatus::Ok | RuntimeStatus::NotApplicable => Grade::Ok,
            RuntimeStatus::Warn => Grade::Warn,
            RuntimeStatus::Fail => Grade::Fail,
        }
    }
}

/// One runtime health component.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RuntimeComponent {
    pub name: &'static str,
    pub status: RuntimeStatus,
    pub summary: String,
    /// When its input was produced (the snapshot's `generated_at`).
    pub generated_at: Option<DateTime<Utc>>,
    /// Age of its input, seconds (for `market_data`: the age of the data itself).
    pub age_seconds: Option<f64>,
    pub metadata: Value,
}

/// This process's OTLP span export counters, with when a failure was last seen.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExporterReading {
    pub exported: u64,
    pub dropped: u64,
    pub failures: u64,
    pub last_failure_at: Option<DateTime<Utc>>,
}

/// Remembers when the export failure counter last grew (the counters only ever grow).
#[derive(Debug, Default)]
pub struct ExporterWatch {
    last: Option<ExporterReading>,
}

impl ExporterWatch {
    pub const fn new() -> Self {
        Self { last: None }
    }

    /// Folds the current counters in at `now`.
    pub fn observe(
        &mut self,
        exported: u64,
        dropped: u64,
        failures: u64,
        now: DateTime<Utc>,
    ) -> ExporterReading {
        let last_failure_at = match self.last {
            Some(prev) if failures > prev.failures => Some(now),
            Some(prev) => prev.last_failure_at,
            // first look: failures before it happened at an unknown time, count them as now
            None if failures > 0 => Some(now),
            None => None,
        };
        let reading = ExporterReading {
            exported,
            dropped,
            failures,
            last_failure_at,
        };
        self.last = Some(reading);
        reading
    }
}

fn seconds(from: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    ((now - from).num_milliseconds() as f64 / 1000.0).max(0.0)
}

/// The block of `kind`: `Err(component)` when it is not applicable or silent.
fn input<'a>(
    summary: &'a Summary,
    name: &'static str,
    kind: &str,
    what: &str,
) -> Result<&'a DomainBlock, RuntimeComponent> {
    let missing = |status, summary: String| RuntimeComponent {
        name,
        status,
        summary,
        generated_at: None,
        age_seconds: None,
        metadata: json!({ "kind": kind }),
    };
    match summary.domains.get(kind) {
        None => Err(missing(
            RuntimeStatus::NotApplicable,
            format!("no {what} in this deployment ({kind} neither expected nor received)"),
        )),
        Some(b) if b.snapshot.is_none() => Err(missing(
            RuntimeStatus::Warn,
            format!("{kind} is expected but no snapshot was received yet"),
        )),
        Some(b) => Ok(b),
    }
}

/// Escalates a component fed by a stale block to at least `warn`.
fn staleness(c: &mut RuntimeComponent, block: &DomainBlock) {
    if block.stale && c.status.grade() < Grade::Warn {
        c.status = RuntimeStatus::Warn;
        c.summary = format!(
            "{} (stale: last snapshot {:.0}s ago)",
            c.summary,
            block.age_seconds.unwrap_or(0.0)
        );
    }
}

fn fix_connectivity(summary: &Summary) -> RuntimeComponent {
    let block = match input(summary, "fix_connectivity", topics::FIX_PILOT, "FIX pilot") {
        Ok(b) => b,
        Err(c) => return c,
    };
    let Some(snapshot) = block.snapshot.as_ref() else {
        unreachable!("input() returns blocks with a snapshot")
    };
    let sessions = snapshot.component("sessions");
    let status = sessions.map_or(snapshot.status, |c| c.status);
    let text = sessions.map_or(snapshot.summary.clone(), |c| c.summary.clone());
    let detail = |k: &str| {
        sessions
            .and_then(|c| c.details.get(k))
            .map(Value::from)
            .unwrap_or(Value::Null)
    };
    let mut c = RuntimeComponent {
        name: "fix_connectivity",
        status: RuntimeStatus::of(status),
        summary: text,
        generated_at: block.generated_at,
        age_seconds: block.age_seconds,
        metadata: json!({
            "source": snapshot.source.to_string(),
            "trading": detail("trading"),
            "dropcopy": detail("dropcopy"),
        }),
    };
    staleness(&mut c, block);
    c
}

fn market_data(summary: &Summary) -> RuntimeComponent {
    let block = match input(
        summary,
        "market_data",
        topics::INGEST_TRENDS,
        "market-data ingest",
    ) {
        Ok(b) => b,
        Err(c) => return c,
    };
    let Some(snapshot) = block.snapshot.as_ref() else {
        unreachable!("input() returns blocks with a snapshot")
    };
    let snapshot_age = block.age_seconds.unwrap_or(0.0);
    let mut ages = BTreeMap::new();
    for c in &snapshot.components {
        let age = match c.details.get("latest_age_seconds") {
            Some(DetailValue::Float(f)) if f.is_finite() => Some(*f),
            Some(DetailValue::Int(i)) => Some(*i as f64),
            _ => None,
        };
        if let Some(age) = age {
            ages.insert(c.name.clone(), (age.max(0.0) + snapshot_age).round());
        }
    }
    let stalest = ages
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, v)| (k.clone(), *v));
    let (status, text) = match &stalest {
        None => (
            RuntimeStatus::Warn,
            "no ingest run recorded: market-data freshness is unknown".to_owned(),
        ),
        Some((dim, age)) if *age > MARKET_DATA_FAIL_SECONDS => (
            RuntimeStatus::Fail,
            format!("market data stale: {dim} last ingested {age:.0}s ago (fail after {MARKET_DATA_FAIL_SECONDS:.0}s)"),
        ),
        Some((dim, age)) if *age > MARKET_DATA_WARN_SECONDS => (
            RuntimeStatus::Warn,
            format!("market data aging: {dim} last ingested {age:.0}s ago (warn after {MARKET_DATA_WARN_SECONDS:.0}s)"),
        ),
        Some((dim, age)) => (
            RuntimeStatus::Ok,
            format!("market data fresh: stalest dimension {dim} ingested {age:.0}s ago"),
        ),
    };
    let mut c = RuntimeComponent {
        name: "market_data",
        status,
        summary: text,
        generated_at: block.generated_at,
        age_seconds: stalest.as_ref().map(|(_, a)| *a),
        metadata: json!({
            "dimension_age_seconds": ages,
            "snapshot_age_seconds": snapshot_age,
            "warn_seconds": MARKET_DATA_WARN_SECONDS,
            "fail_seconds": MARKET_DATA_FAIL_SECONDS,
        }),
    };
    staleness(&mut c, block);
    c
}

fn telemetry_exporters(
    summary: &Summary,
    otlp: &ExporterReading,
    now: DateTime<Utc>,
) -> RuntimeComponent {
    let mut status = RuntimeStatus::Ok;
    let mut parts = Vec::new();
    let since_failure = otlp.last_failure_at.map(|t| seconds(t, now));
    match since_failure {
        Some(s) if s <= EXPORT_FAILURE_WINDOW_SECONDS => {
            status = RuntimeStatus::Warn;
            parts.push(format!(
                "OTLP span export failed {s:.0}s ago ({} failures, {} spans dropped)",
                otlp.failures, otlp.dropped
            ));
        }
        _ if otlp.exported == 0 && otlp.failures == 0 => {
            parts.push("no OTLP span export from this process".to_owned())
        }
        _ => parts.push(format!(
            "OTLP: {} spans exported, {} failures",
            otlp.exported, otlp.failures
        )),
    }
    let mut generated_at = None;
    let mut age = since_failure;
    let mut bus = Value::Null;
    match input(
        summary,
        "telemetry_exporters",
        EVENT_BUS_HEALTH,
        "event-bus health",
    ) {
        Ok(block) => {
            if let Some(snapshot) = block.snapshot.as_ref() {
                let mut g = snapshot.status;
                if block.stale {
                    g.escalate(Grade::Warn);
                }
                if g.escalate_status(&mut status) {
                    parts.push(format!("event bus {}: {}", g, snapshot.summary));
                } else {
                    parts.push(format!("event bus {g}"));
                }
                generated_at = block.generated_at;
                age = block.age_seconds;
                bus = json!({
                    "status": g,
                    "summary": snapshot.summary,
                    "stale": block.stale,
                    "sources": block.sources.len(),
                });
            }
        }
        Err(c) if c.status == RuntimeStatus::Warn => {
            status = worst(status, RuntimeStatus::Warn);
            parts.push(c.summary);
        }
        Err(_) => {}
    }
    RuntimeComponent {
        name: "telemetry_exporters",
        status,
        summary: parts.join("; "),
        generated_at,
        age_seconds: age,
        metadata: json!({
            "otlp": {
                "spans_exported": otlp.exported,
                "spans_dropped": otlp.dropped,
                "export_failures": otlp.failures,
                "last_failure_at": otlp.last_failure_at,
            },
            "event_bus": bus,
        }),
    }
}

fn worst(a: RuntimeStatus, b: RuntimeStatus) -> RuntimeStatus {
    if b.grade() > a.grade() {
        b
    } else {
        a
    }
}

trait EscalateStatus {
    /// Raises `status` to this grade; true when it was raised.
    fn escalate_status(self, status: &mut RuntimeStatus) -> bool;
}

impl EscalateStatus for Grade {
    fn escalate_status(self, status: &mut RuntimeStatus) -> bool {
        if self > status.grade() {
            *status = RuntimeStatus::of(self);
            true
        } else {
            false
        }
    }
}

/// The three components, in order.
pub fn runtime_components(
    summary: &Summary,
    otlp: &ExporterReading,
    now: DateTime<Utc>,
) -> Vec<RuntimeComponent> {
    vec![
        fix_connectivity(summary),
        market_data(summary),
        telemetry_exporters(summary, otlp, now),
    ]
}

#[cfg(test)]
mod tests;
