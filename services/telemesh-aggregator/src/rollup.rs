//! Owns the readiness roll-ups at the top of the summary, computed on demand from the
//! latest snapshot of each input kind (pure): data-backbone readiness
//! (`telemetry.data_backbone.readiness`, DOMAINS.md §3.12) and the operational readiness
//! roll-up (§3.13).
//!
//! Why in the aggregator and not a domain: both are functions of other domains' latest
//! snapshots, which only the aggregator holds (a domain would have to consume every input
//! topic and keep its own copy of the summary state, and would lag it by one interval); the
//! brief computes §3.13 "whenever the runtime summary is requested", and so does this.
//!
//! Each component is one input kind graded as its snapshot (the worst source), at least
//! `warn` when that input is stale; only inputs that exist are components; a roll-up with
//! no input is absent. Overall = worst component; `generated_at` = the newest input.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use telemesh_core::{topics, Grade};

use crate::summary::DomainBlock;

/// (component name, input kind) of data-backbone readiness, in order.
pub const DATA_BACKBONE_INPUTS: [(&str, &str); 7] = [
    ("ingest_health", topics::INGEST_TRENDS),
    ("ingest_scheduler", topics::INGEST_SCHEDULER),
    ("retention", topics::RETENTION),
    ("validation", topics::DATA_BACKBONE_VALIDATION),
    ("kafka_streaming", topics::KAFKA_READINESS),
    ("event_bus", "telemetry.event_bus.health"),
    ("redis_cache", "telemetry.cache.health"),
];

/// (component name, input kind) of the operational roll-up, in order.
pub const OPERATIONAL_INPUTS: [(&str, &str); 5] = [
    ("system_validation", topics::SYSTEM_VALIDATION),
    ("incident_response", topics::INCIDENT_RESPONSE),
    ("drift_sentry", "telemetry.sensory.drift"),
    ("operational_slos", "telemetry.operational.slos"),
    ("execution", topics::EXECUTION),
];

/// One input of a roll-up.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RollupComponent {
    pub name: String,
    #[schema(value_type = crate::http::openapi::GradeDoc)]
    pub status: Grade,
    pub summary: String,
    /// The input kind.
    pub kind: String,
    pub generated_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<f64>,
    pub stale: bool,
}

/// A roll-up: its kind, grade, components and counts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rollup {
    pub kind: String,
    #[schema(value_type = crate::http::openapi::GradeDoc)]
    pub status: Grade,
    pub summary: String,
    pub generated_at: Option<DateTime<Utc>>,
    pub components: Vec<RollupComponent>,
    pub component_count: usize,
    /// Components per grade (`ok`, `warn`, `fail`, each present).
    pub status_breakdown: BTreeMap<String, usize>,
}

/// The roll-ups shown at the top of the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub data_backbone: Option<Rollup>,
    pub operational: Option<Rollup>,
}

fn rollup(
    kind: &str,
    inputs: &[(&str, &str)],
    domains: &BTreeMap<String, DomainBlock>,
) -> Option<Rollup> {
    let mut components = Vec::new();
    for (name, input) in inputs {
        let Some(block) = domains.get(*input) else {
            continue;
        };
        let Some(snapshot) = block.snapshot.as_ref() else {
            continue; // expected but silent: the summary's own block says so
        };
        let mut status = snapshot.status;
        let mut summary = snapshot.summary.clone();
        if block.stale {
            status.escalate(Grade::Warn);
            summary = format!(
                "{summary} (stale: last snapshot {:.0}s ago)",
                block.age_seconds.unwrap_or(0.0)
            );
        }
        components.push(RollupComponent {
            name: (*name).to_owned(),
            status,
            summary,
            kind: (*input).to_owned(),
            generated_at: block.generated_at,
            age_seconds: block.age_seconds,
            stale: block.stale,
        });
    }
    if components.is_empty() {
        return None;
    }
    let status = Grade::worst(components.iter().map(|c| c.status));
    let mut status_breakdown: BTreeMap<String, usize> = [Grade::Ok, Grade::Warn, Grade::Fail]
        .iter()
        .map(|g| (g.as_str().to_owned(), 0))
        .collect();
    for c in &components {
        *status_breakdown
            .entry(c.status.as_str().to_owned())
            .or_default() += 1;
    }
    let degraded: Vec<String> = components
        .iter()
        .filter(|c| c.status != Grade::Ok)
        .map(|c| format!("{} {}", c.name, c.status))
        .collect();
    let summary = if degraded.is_empty() {
        format!("all {} components ok", components.len())
    } else {
        format!(
            "{} of {} components degraded: {}",
            degraded.len(),
            components.len(),
            degraded.join(", ")
        )
    };
    Some(Rollup {
        kind: kind.to_owned(),
        status,
        summary,
        generated_at: components.iter().filter_map(|c| c.generated_at).max(),
        component_count: components.len(),
        components,
        status_breakdown,
    })
}

/// Both roll-ups over the summary's domain blocks.
pub fn readiness(domains: &BTreeMap<String, DomainBlock>) -> Readiness {
    Readiness {
        data_backbone: rollup(topics::DATA_BACKBONE, &DATA_BACKBONE_INPUTS, domains),
        operational: rollup(
            "telemetry.operational.readiness",
            &OPERATIONAL_INPUTS,
            domains,
        ),
    }
}

impl Readiness {
    /// A Markdown table of the roll-ups and their components (empty when there are none).
    pub fn to_markdown(&self) -> String {
        let rollups: Vec<(&str, &Rollup)> = [
            ("Data backbone", self.data_backbone.as_ref()),
            ("Operational readiness", self.operational.as_ref()),
        ]
        .into_iter()
        .filter_map(|(t, r)| r.map(|r| (t, r)))
        .collect();
        if rollups.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "## Readiness\n\n| Roll-up | Component | Status | Summary |\n| --- | --- | --- | --- |\n",
        );
        for (title, r) in rollups {
            out.push_str(&format!(
                "| **{title}** | | **{}** | {} |\n",
                r.status.as_upper(),
                telemesh_core::snapshot::escape_cell(&r.summary)
            ));
            for c in &r.components {
                out.push_str(&format!(
                    "| | {} | {} | {} |\n",
                    c.name,
                    c.status.as_upper(),
                    telemesh_core::snapshot::escape_cell(&c.summary)
                ));
            }
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use telemesh_core::{Component, Snapshot, Source};

    use super::*;
    use crate::summary::{StalenessPolicy, SummaryState};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    fn domains(
        snapshots: Vec<(&str, Grade, i64)>,
        expected: &[&str],
    ) -> BTreeMap<String, DomainBlock> {
        let mut state = SummaryState::default();
        for (kind, grade, age) in snapshots {
            let mut s = Snapshot::new(
                kind,
                Source::new("svc", "a"),
                now() - Duration::seconds(age),
            );
            s.push(Component::new("c", grade, "x"));
            s.summary = format!("{kind} is {grade}");
            state.observe_received(s, now());
        }
        let policy = StalenessPolicy {
            stale_factor: 3.0,
            default_interval_seconds: 30.0,
            expected_kinds: expected.iter().map(|k| (*k).to_owned()).collect(),
        };
        state.summary(&policy, now()).domains
    }

    #[test]
    fn no_inputs_no_rollups() {
        let r = readiness(&domains(
            vec![],
            &[topics::SYSTEM_VALIDATION, topics::INGEST_TRENDS],
        ));
        assert_eq!(
            r,
            Readiness::default(),
            "expected but silent inputs are no components"
        );
        assert_eq!(r.to_markdown(), "");
    }

    #[test]
    fn components_follow_their_inputs_and_staleness() {
        let d = domains(
            vec![
                (topics::INGEST_TRENDS, Grade::Ok, 0),
                (topics::RETENTION, Grade::Warn, 0),
                (topics::KAFKA_READINESS, Grade::Ok, 91), // stale: 3 x 30 s
                (topics::SYSTEM_VALIDATION, Grade::Ok, 90), // at the limit: fresh
                (topics::INCIDENT_RESPONSE, Grade::Fail, 0),
                ("telemetry.sensory.drift", Grade::Warn, 5),
            ],
            &[],
        );
        let r = readiness(&d);
        let db = r.data_backbone.expect("data backbone");
        assert_eq!(db.kind, "telemetry.data_backbone.readiness");
        let got: Vec<(&str, Grade, bool)> = db
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.status, c.stale))
            .collect();
        assert_eq!(
            got,
            [
                ("ingest_health", Grade::Ok, false),
                ("retention", Grade::Warn, false),
                ("kafka_streaming", Grade::Warn, true),
            ]
        );
        assert_eq!(db.status, Grade::Warn);
        assert_eq!(db.status_breakdown["ok"], 1);
        assert_eq!(db.status_breakdown["warn"], 2);
        assert_eq!(db.status_breakdown["fail"], 0);
        assert_eq!(db.generated_at, Some(now()));
        assert!(
            db.summary.starts_with("2 of 3 components degraded"),
            "{}",
            db.summary
        );

        let op = r.operational.expect("operational");
        let got: Vec<(&str, Grade)> = op
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.status))
            .collect();
        assert_eq!(
            got,
            [
                ("system_validation", Grade::Ok),
                ("incident_response", Grade::Fail),
                ("drift_sentry", Grade::Warn),
            ]
        );
        assert_eq!(op.status, Grade::Fail);
        assert_eq!(op.component_count, 3);
        let md = Readiness {
            data_backbone: Some(db),
            operational: Some(op),
        }
        .to_markdown();
        assert!(md.starts_with("## Readiness"), "{md}");
        assert!(
            md.contains("| **Operational readiness** | | **FAIL** |"),
            "{md}"
        );
    }

    #[test]
    fn all_ok_says_so() {
        let r = readiness(&domains(vec![(topics::EXECUTION, Grade::Ok, 0)], &[]));
        let op = r.operational.expect("operational");
        assert_eq!(op.status, Grade::Ok);
        assert_eq!(op.summary, "all 1 components ok");
        assert!(r.data_backbone.is_none());
    }
}
