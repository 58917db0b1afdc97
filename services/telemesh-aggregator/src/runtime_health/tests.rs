//! The runtime health components at, below and above each boundary, from real summaries.

use chrono::Duration;
use telemesh_core::{Component, Snapshot, Source};

use super::*;
use crate::summary::{StalenessPolicy, SummaryState};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("time")
}

fn policy(expected: &[&str]) -> StalenessPolicy {
    StalenessPolicy {
        stale_factor: 3.0,
        default_interval_seconds: 30.0,
        expected_kinds: expected.iter().map(|k| (*k).to_owned()).collect(),
    }
}

fn summary_of(snapshots: Vec<Snapshot>, expected: &[&str]) -> Summary {
    let mut state = SummaryState::default();
    for s in snapshots {
        state.observe_received(s, now());
    }
    state.summary(&policy(expected), now())
}

fn snap(kind: &str, age_seconds: i64, components: Vec<Component>) -> Snapshot {
    let mut s = Snapshot::new(
        kind,
        Source::new("svc", "a"),
        now() - Duration::seconds(age_seconds),
    );
    for c in components {
        s.push(c);
    }
    s.summary = format!("{kind} summary");
    s
}

fn component(summary: &Summary, name: &str, otlp: &ExporterReading) -> RuntimeComponent {
    runtime_components(summary, otlp, now())
        .into_iter()
        .find(|c| c.name == name)
        .expect("component")
}

#[test]
fn three_components_in_order() {
    let names: Vec<&str> = runtime_components(
        &summary_of(Vec::new(), &[]),
        &ExporterReading::default(),
        now(),
    )
    .iter()
    .map(|c| c.name)
    .collect();
    assert_eq!(
        names,
        ["fix_connectivity", "market_data", "telemetry_exporters"]
    );
}

#[test]
fn fix_connectivity_follows_the_pilot_sessions() {
    let otlp = ExporterReading::default();
    let sessions = |g: Grade| {
        vec![Component::new("sessions", g, format!("sessions {g}")).detail("trading", "active")]
    };
    let table = [
        (summary_of(Vec::new(), &[]), RuntimeStatus::NotApplicable),
        (
            summary_of(Vec::new(), &[topics::FIX_PILOT]),
            RuntimeStatus::Warn,
        ),
        (
            summary_of(vec![snap(topics::FIX_PILOT, 0, sessions(Grade::Ok))], &[]),
            RuntimeStatus::Ok,
        ),
        (
            summary_of(vec![snap(topics::FIX_PILOT, 0, sessions(Grade::Fail))], &[]),
            RuntimeStatus::Fail,
        ),
        // stale: 3 x 30 s is the limit
        (
            summary_of(vec![snap(topics::FIX_PILOT, 90, sessions(Grade::Ok))], &[]),
            RuntimeStatus::Ok,
        ),
        (
            summary_of(vec![snap(topics::FIX_PILOT, 91, sessions(Grade::Ok))], &[]),
            RuntimeStatus::Warn,
        ),
    ];
    for (summary, want) in table {
        let c = component(&summary, "fix_connectivity", &otlp);
        assert_eq!(c.status, want, "{c:?}");
    }
    let c = component(
        &summary_of(vec![snap(topics::FIX_PILOT, 10, sessions(Grade::Ok))], &[]),
        "fix_connectivity",
        &otlp,
    );
    assert_eq!(c.age_seconds, Some(10.0));
    assert_eq!(c.metadata["trading"], "active");
}

#[test]
fn market_data_freshness_boundaries() {
    let otlp = ExporterReading::default();
    let trends = |ages: &[(&str, f64)], snapshot_age: i64| {
        snap(
            topics::INGEST_TRENDS,
            snapshot_age,
            ages.iter()
                .map(|(d, a)| {
                    Component::new(*d, Grade::Ok, "runs").detail("latest_age_seconds", *a)
                })
                .collect(),
        )
    };
    let table = [
        (trends(&[("daily", 899.0)], 0), RuntimeStatus::Ok),
        (trends(&[("daily", 900.0)], 0), RuntimeStatus::Ok),
        (trends(&[("daily", 901.0)], 0), RuntimeStatus::Warn),
        (trends(&[("daily", 1800.0)], 0), RuntimeStatus::Warn),
        (trends(&[("daily", 1801.0)], 0), RuntimeStatus::Fail),
        // the stalest dimension decides
        (
            trends(&[("daily", 10.0), ("intraday", 2000.0)], 0),
            RuntimeStatus::Fail,
        ),
        // the snapshot's own age adds to the data's
        (trends(&[("daily", 890.0)], 20), RuntimeStatus::Warn),
        (trends(&[], 0), RuntimeStatus::Warn),
    ];
    for (s, want) in table {
        let c = component(&summary_of(vec![s], &[]), "market_data", &otlp);
        assert_eq!(c.status, want, "{c:?}");
    }
    let c = component(
        &summary_of(vec![trends(&[("daily", 100.0)], 5)], &[]),
        "market_data",
        &otlp,
    );
    assert_eq!(c.age_seconds, Some(105.0));
    assert_eq!(
        component(&summary_of(Vec::new(), &[]), "market_data", &otlp).status,
        RuntimeStatus::NotApplicable
    );
    assert_eq!(
        component(
            &summary_of(Vec::new(), &[topics::INGEST_TRENDS]),
            "market_data",
            &otlp
        )
        .status,
        RuntimeStatus::Warn
    );
}

#[test]
fn exporter_failures_are_recent_for_the_window() {
    let mut watch = ExporterWatch::default();
    let t0 = now() - Duration::seconds(1000);
    assert_eq!(watch.observe(10, 0, 0, t0).last_failure_at, None);
    let failed = watch.observe(10, 5, 1, t0);
    assert_eq!(failed.last_failure_at, Some(t0));
    // no new failure: the time of the last one is kept
    let later = watch.observe(20, 5, 1, t0 + Duration::seconds(10));
    assert_eq!(later.last_failure_at, Some(t0));

    let empty = summary_of(Vec::new(), &[]);
    let at = |secs: i64| ExporterReading {
        exported: 20,
        dropped: 5,
        failures: 1,
        last_failure_at: Some(now() - Duration::seconds(secs)),
    };
    for (reading, want) in [
        (at(299), RuntimeStatus::Warn),
        (at(300), RuntimeStatus::Warn),
        (at(301), RuntimeStatus::Ok),
        (ExporterReading::default(), RuntimeStatus::Ok),
    ] {
        let c = component(&empty, "telemetry_exporters", &reading);
        assert_eq!(c.status, want, "{c:?}");
    }
    assert_eq!(
        component(&empty, "telemetry_exporters", &at(10)).age_seconds,
        Some(10.0)
    );
}

#[test]
fn event_bus_health_feeds_the_exporters() {
    let otlp = ExporterReading::default();
    for (grade, age, want) in [
        (Grade::Ok, 0, RuntimeStatus::Ok),
        (Grade::Fail, 0, RuntimeStatus::Fail),
        (Grade::Warn, 0, RuntimeStatus::Warn),
        (Grade::Ok, 91, RuntimeStatus::Warn), // stale
    ] {
        let s = snap(
            EVENT_BUS_HEALTH,
            age,
            vec![Component::new("kafka", grade, "publish failures")],
        );
        let c = component(&summary_of(vec![s], &[]), "telemetry_exporters", &otlp);
        assert_eq!(c.status, want, "{c:?}");
        assert_eq!(c.age_seconds, Some(age as f64));
    }
    let expected_silent = summary_of(Vec::new(), &[EVENT_BUS_HEALTH]);
    assert_eq!(
        component(&expected_silent, "telemetry_exporters", &otlp).status,
        RuntimeStatus::Warn
    );
}
