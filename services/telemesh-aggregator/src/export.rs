//! Owns the snapshot exports (`DOMAINS.md` §7, `docs/exports.md`): `operational`,
//! `data-backbone` and `risk-compliance`, each a fixed set of named sections mapped to snapshot
//! kinds, built from the summary (the newest journaled snapshot per source). The payload has
//! both the plan's shape (`snapshots{section: block}`, `missing_sections`) and a flat `rows`
//! array that Grafana's JSON API data source and a DataDog custom check read directly
//! (`status_code` 0/1/2/3 = DataDog's OK/WARNING/CRITICAL/UNKNOWN). Pure: time comes in.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use telemesh_core::{topics, Grade};

use crate::summary::{DomainBlock, Summary};

/// The three exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExportName {
    Operational,
    DataBackbone,
    RiskCompliance,
}

impl ExportName {
    pub const ALL: [ExportName; 3] = [
        ExportName::Operational,
        ExportName::DataBackbone,
        ExportName::RiskCompliance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportName::Operational => "operational",
            ExportName::DataBackbone => "data-backbone",
            ExportName::RiskCompliance => "risk-compliance",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The export's default sections (`DOMAINS.md` §7), in order, and the snapshot kind
    /// behind each.
    pub fn sections(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ExportName::Operational => &[
                ("professional_readiness", topics::PROFESSIONAL_READINESS),
                ("security", topics::SECURITY),
                ("incident_response", topics::INCIDENT_RESPONSE),
                ("system_validation", topics::SYSTEM_VALIDATION),
            ],
            ExportName::DataBackbone => &[
                ("data_backbone", topics::DATA_BACKBONE),
                ("data_backbone_validation", topics::DATA_BACKBONE_VALIDATION),
                ("data_retention", topics::RETENTION),
                ("ingest_trends", topics::INGEST_TRENDS),
                ("ingest_scheduler", topics::INGEST_SCHEDULER),
                ("kafka_readiness", topics::KAFKA_READINESS),
            ],
            ExportName::RiskCompliance => &[
                ("risk", topics::RISK),
                ("execution", topics::EXECUTION),
                ("compliance_readiness", topics::COMPLIANCE_READINESS),
                ("compliance_workflows", topics::COMPLIANCE_WORKFLOWS),
                ("compliance", topics::COMPLIANCE),
                ("kyc", topics::KYC),
            ],
        }
    }

    /// Sections outside the defaults, exported only when asked for by name.
    pub fn extra_sections(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ExportName::Operational | ExportName::DataBackbone => &[],
            ExportName::RiskCompliance => &[
                ("execution_dropcopy", topics::DROPCOPY),
                ("fix_pilot", topics::FIX_PILOT),
            ],
        }
    }

    fn kind_of(self, section: &str) -> Option<&'static str> {
        self.sections()
            .iter()
            .chain(self.extra_sections())
            .find(|(s, _)| *s == section)
            .map(|(_, k)| *k)
    }
}

/// Why an export request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("unknown section {section:?} of the {export} export; its sections: {known}")]
    UnknownSection {
        export: &'static str,
        section: String,
        known: String,
    },
    #[error("missing sections {sections:?} (kinds {kinds:?} have no snapshot yet); wait for their services to report or pass allow_missing")]
    Missing {
        sections: Vec<String>,
        kinds: Vec<String>,
    },
}

/// DataDog's service-check status of a grade (`3` = UNKNOWN is for a missing section).
pub fn status_code(grade: Grade) -> u8 {
    match grade {
        Grade::Ok => 0,
        Grade::Warn => 1,
        Grade::Fail => 2,
    }
}

/// One section as exported.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = ExportSectionBlock)]
pub struct SectionBlock {
    pub kind: String,
    #[schema(value_type = crate::http::openapi::GradeDoc)]
    pub status: Grade,
    pub status_code: u8,
    pub generated_at: Option<String>,
    pub age_seconds: Option<f64>,
    pub stale: bool,
    pub summary: String,
    pub sources: usize,
    pub components: Vec<ComponentRow>,
    pub metrics: BTreeMap<String, f64>,
    pub markdown: String,
}

/// A component of a section.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = ExportComponentRow)]
pub struct ComponentRow {
    pub name: String,
    #[schema(value_type = crate::http::openapi::GradeDoc)]
    pub status: Grade,
    pub summary: String,
}

/// One flat row per requested section (missing ones too, as `unknown` / 3).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = ExportRow)]
pub struct Row {
    pub section: String,
    pub kind: String,
    pub status: String,
    pub status_code: u8,
    pub age_seconds: Option<f64>,
    pub stale: bool,
    pub summary: String,
    pub generated_at: Option<String>,
}

/// The export payload.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Export {
    pub export: ExportName,
    pub generated_at: String,
    pub config: BTreeMap<String, String>,
    /// Worst grade of the present sections; `warn` when any is missing.
    #[schema(value_type = crate::http::openapi::GradeDoc)]
    pub status: Grade,
    pub sections_requested: Vec<String>,
    pub snapshots: BTreeMap<String, SectionBlock>,
    pub missing_sections: Vec<String>,
    pub missing_kinds: Vec<String>,
    pub rows: Vec<Row>,
}

fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn block(kind: &str, d: &DomainBlock) -> Option<SectionBlock> {
    let s = d.snapshot.as_ref()?;
    Some(SectionBlock {
        kind: kind.to_owned(),
        status: d.status,
        status_code: status_code(d.status),
        generated_at: d.generated_at.map(secs),
        age_seconds: d.age_seconds,
        stale: d.stale,
        summary: s.summary.clone(),
        sources: d.sources.len(),
        components: s
            .components
            .iter()
            .map(|c| ComponentRow {
                name: c.name.clone(),
                status: c.status,
                summary: c.summary.clone(),
            })
            .collect(),
        metrics: s.metrics.clone(),
        markdown: d.markdown.clone(),
    })
}

/// Builds an export from the summary; `requested` (de-duplicated, in order) empty means the
/// export's default sections.
/// Missing sections are an error unless `allow_missing`.
pub fn build(
    name: ExportName,
    summary: &Summary,
    requested: &[String],
    allow_missing: bool,
    config: BTreeMap<String, String>,
) -> Result<Export, ExportError> {
    let mut sections: Vec<String> = Vec::new();
    for s in requested {
        if name.kind_of(s).is_none() {
            return Err(ExportError::UnknownSection {
                export: name.as_str(),
                section: s.clone(),
                known: name
                    .sections()
                    .iter()
                    .chain(name.extra_sections())
                    .map(|(s, _)| *s)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if !sections.contains(s) {
            sections.push(s.clone());
        }
    }
    if sections.is_empty() {
        sections = name
            .sections()
            .iter()
            .map(|(s, _)| (*s).to_owned())
            .collect();
    }
    let mut snapshots = BTreeMap::new();
    let mut missing_sections = Vec::new();
    let mut missing_kinds = Vec::new();
    let mut rows = Vec::new();
    for section in &sections {
        let kind = name.kind_of(section).unwrap_or_default();
        match summary.domains.get(kind).and_then(|d| block(kind, d)) {
            Some(b) => {
                rows.push(Row {
                    section: section.clone(),
                    kind: kind.to_owned(),
                    status: b.status.as_str().to_owned(),
                    status_code: b.status_code,
                    age_seconds: b.age_seconds,
                    stale: b.stale,
                    summary: b.summary.clone(),
                    generated_at: b.generated_at.clone(),
                });
                snapshots.insert(section.clone(), b);
            }
            None => {
                missing_sections.push(section.clone());
                missing_kinds.push(kind.to_owned());
                rows.push(Row {
                    section: section.clone(),
                    kind: kind.to_owned(),
                    status: "unknown".into(),
                    status_code: 3,
                    age_seconds: None,
                    stale: true,
                    summary: "no snapshot received yet".into(),
                    generated_at: None,
                });
            }
        }
    }
    if !missing_sections.is_empty() && !allow_missing {
        return Err(ExportError::Missing {
            sections: missing_sections,
            kinds: missing_kinds,
        });
    }
    let mut status = Grade::worst(snapshots.values().map(|b| b.status));
    if !missing_sections.is_empty() {
        status.escalate(Grade::Warn);
    }
    Ok(Export {
        export: name,
        generated_at: secs(summary.generated_at),
        config,
        status,
        sections_requested: sections,
        snapshots,
        missing_sections,
        missing_kinds,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{StalenessPolicy, SummaryState};
    use telemesh_core::{Component, Snapshot, Source};

    fn summary(kinds: &[(&str, Grade)]) -> Summary {
        let mut state = SummaryState::default();
        for (kind, grade) in kinds {
            let mut s = Snapshot::new(*kind, Source::new("svc", "i"), Utc::now());
            s.push(Component::new("c", *grade, "x"));
            s.summary = format!("{kind} {grade}");
            state.observe(s);
        }
        state.summary(
            &StalenessPolicy {
                stale_factor: 3.0,
                default_interval_seconds: 30.0,
                expected_kinds: vec![],
            },
            Utc::now(),
        )
    }

    #[test]
    fn names_round_trip() {
        for e in ExportName::ALL {
            assert_eq!(ExportName::parse(e.as_str()), Some(e));
        }
        assert_eq!(ExportName::parse("<script>"), None);
    }

    /// The plan's sections (`DOMAINS.md` §7), each export's in its order.
    const PLAN: [(ExportName, &[&str]); 3] = [
        (
            ExportName::Operational,
            &[
                "professional_readiness",
                "security",
                "incident_response",
                "system_validation",
            ],
        ),
        (
            ExportName::DataBackbone,
            &[
                "data_backbone",
                "data_backbone_validation",
                "data_retention",
                "ingest_trends",
                "ingest_scheduler",
                "kafka_readiness",
            ],
        ),
        (
            ExportName::RiskCompliance,
            &[
                "risk",
                "execution",
                "compliance_readiness",
                "compliance_workflows",
                "compliance",
                "kyc",
            ],
        ),
    ];

    #[test]
    fn default_sections_are_the_plans_each_on_its_own_consumed_kind() {
        let mut kinds = Vec::new();
        for (export, plan) in PLAN {
            let names: Vec<&str> = export.sections().iter().map(|(s, _)| *s).collect();
            assert_eq!(names, plan, "{}", export.as_str());
            for (section, kind) in export.sections().iter().chain(export.extra_sections()) {
                assert!(topics::is_snapshot_kind(kind), "{section}: {kind}");
                assert_eq!(kind.split('.').count(), 3, "{section}: {kind}");
                assert!(kind.starts_with("telemetry."), "{section}: {kind}");
                assert!(!kinds.contains(kind), "{kind} fills two sections");
                kinds.push(kind);
            }
        }
        // every kind the aggregator consumes fills some section
        for kind in topics::SNAPSHOT_KINDS.iter().chain(&topics::SECTION_KINDS) {
            assert!(kinds.contains(kind), "{kind} is in no export");
        }
    }

    #[test]
    fn every_section_present_gives_rows_with_datadog_codes() {
        let grades = [Grade::Ok, Grade::Warn, Grade::Fail];
        let present: Vec<(&str, Grade)> = ExportName::DataBackbone
            .sections()
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| (*kind, grades[i % 3]))
            .collect();
        let s = summary(&present);
        let e = build(ExportName::DataBackbone, &s, &[], false, BTreeMap::new()).unwrap();
        assert_eq!(e.status, Grade::Fail);
        assert!(e.missing_sections.is_empty());
        assert_eq!(e.sections_requested, PLAN[1].1);
        let codes: Vec<(&str, u8)> = e
            .rows
            .iter()
            .map(|r| (r.section.as_str(), r.status_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("data_backbone", 0),
                ("data_backbone_validation", 1),
                ("data_retention", 2),
                ("ingest_trends", 0),
                ("ingest_scheduler", 1),
                ("kafka_readiness", 2),
            ]
        );
        for (section, kind) in ExportName::DataBackbone.sections() {
            let block = &e.snapshots[*section];
            assert_eq!(block.kind, *kind);
            assert_eq!(block.summary, format!("{kind} {}", block.status));
        }
    }

    #[test]
    fn missing_sections_are_refused_unless_allowed() {
        let s = summary(&[
            (topics::KAFKA_READINESS, Grade::Ok),
            (topics::RETENTION, Grade::Ok),
        ]);
        let err = build(ExportName::DataBackbone, &s, &[], false, BTreeMap::new()).unwrap_err();
        assert_eq!(
            err,
            ExportError::Missing {
                sections: vec![
                    "data_backbone".into(),
                    "data_backbone_validation".into(),
                    "ingest_trends".into(),
                    "ingest_scheduler".into(),
                ],
                kinds: vec![
                    topics::DATA_BACKBONE.into(),
                    topics::DATA_BACKBONE_VALIDATION.into(),
                    topics::INGEST_TRENDS.into(),
                    topics::INGEST_SCHEDULER.into(),
                ],
            }
        );
        let e = build(ExportName::DataBackbone, &s, &[], true, BTreeMap::new()).unwrap();
        assert_eq!(e.status, Grade::Warn);
        assert_eq!(
            e.missing_sections,
            vec![
                "data_backbone",
                "data_backbone_validation",
                "ingest_trends",
                "ingest_scheduler"
            ]
        );
        let codes: Vec<u8> = e.rows.iter().map(|r| r.status_code).collect();
        assert_eq!(codes, vec![3, 3, 0, 3, 3, 0]);
        assert_eq!(
            e.snapshots.keys().collect::<Vec<_>>(),
            vec!["data_retention", "kafka_readiness"]
        );
        // asking only for what is there succeeds; repeats collapse
        let only = vec!["kafka_readiness".to_string(), "kafka_readiness".to_string()];
        let e = build(ExportName::DataBackbone, &s, &only, false, BTreeMap::new()).unwrap();
        assert_eq!(e.sections_requested, vec!["kafka_readiness"]);
        assert_eq!(e.status, Grade::Ok);
    }

    #[test]
    fn extra_sections_only_when_asked_for_and_de_duplicated() {
        let s = summary(&[
            (topics::DROPCOPY, Grade::Warn),
            (topics::FIX_PILOT, Grade::Ok),
        ]);
        // not part of the defaults: the defaults are all missing
        let e = build(ExportName::RiskCompliance, &s, &[], true, BTreeMap::new()).unwrap();
        assert_eq!(e.sections_requested, PLAN[2].1);
        assert!(e.snapshots.is_empty());
        let asked: Vec<String> = ["fix_pilot", "execution_dropcopy", "fix_pilot"]
            .map(String::from)
            .to_vec();
        let e = build(
            ExportName::RiskCompliance,
            &s,
            &asked,
            false,
            BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            e.sections_requested,
            vec!["fix_pilot", "execution_dropcopy"]
        );
        assert_eq!(e.snapshots["execution_dropcopy"].kind, topics::DROPCOPY);
        assert_eq!(e.snapshots["fix_pilot"].kind, topics::FIX_PILOT);
        assert_eq!(e.status, Grade::Warn);
        // extras belong to the risk-compliance export only
        let err = build(
            ExportName::DataBackbone,
            &s,
            &["fix_pilot".into()],
            true,
            BTreeMap::new(),
        )
        .unwrap_err();
        assert!(matches!(err, ExportError::UnknownSection { .. }), "{err}");
    }

    #[test]
    fn unknown_sections_name_the_known_ones() {
        let s = summary(&[]);
        let err = build(
            ExportName::RiskCompliance,
            &s,
            &["<img src=x>".into()],
            true,
            BTreeMap::new(),
        )
        .unwrap_err();
        for known in PLAN[2].1.iter().chain(&["execution_dropcopy", "fix_pilot"]) {
            assert!(err.to_string().contains(known), "{err}");
        }
    }
}
