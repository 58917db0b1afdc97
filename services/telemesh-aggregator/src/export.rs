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

    /// The export's sections, in order, and the snapshot kind behind each.
    pub fn sections(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ExportName::Operational => &[("incident_response", topics::INCIDENT_RESPONSE)],
            ExportName::DataBackbone => &[
                ("kafka_readiness", topics::KAFKA_READINESS),
                ("ingest_trends", topics::INGEST_TRENDS),
                ("data_retention", topics::RETENTION),
            ],
            ExportName::RiskCompliance => &[
                ("execution", topics::FIX_PILOT),
                ("execution_dropcopy", topics::DROPCOPY),
            ],
        }
    }

    fn kind_of(self, section: &str) -> Option<&'static str> {
        self.sections()
            .iter()
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

/// Builds an export from the summary; `requested` empty means every section of the export.
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

    #[test]
    fn every_section_present_gives_rows_with_datadog_codes() {
        let s = summary(&[
            (topics::KAFKA_READINESS, Grade::Ok),
            (topics::INGEST_TRENDS, Grade::Warn),
            (topics::RETENTION, Grade::Fail),
        ]);
        let e = build(ExportName::DataBackbone, &s, &[], false, BTreeMap::new()).unwrap();
        assert_eq!(e.status, Grade::Fail);
        assert!(e.missing_sections.is_empty());
        let codes: Vec<(&str, u8)> = e
            .rows
            .iter()
            .map(|r| (r.section.as_str(), r.status_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("kafka_readiness", 0),
                ("ingest_trends", 1),
                ("data_retention", 2)
            ]
        );
        assert_eq!(e.snapshots["ingest_trends"].kind, topics::INGEST_TRENDS);
    }

    #[test]
    fn missing_sections_are_refused_unless_allowed() {
        let s = summary(&[(topics::KAFKA_READINESS, Grade::Ok)]);
        let err = build(ExportName::DataBackbone, &s, &[], false, BTreeMap::new()).unwrap_err();
        assert_eq!(
            err,
            ExportError::Missing {
                sections: vec!["ingest_trends".into(), "data_retention".into()],
                kinds: vec![topics::INGEST_TRENDS.into(), topics::RETENTION.into()],
            }
        );
        let e = build(ExportName::DataBackbone, &s, &[], true, BTreeMap::new()).unwrap();
        assert_eq!(e.status, Grade::Warn);
        assert_eq!(e.missing_sections, vec!["ingest_trends", "data_retention"]);
        assert_eq!(e.rows[1].status_code, 3);
        // asking only for what is there succeeds; repeats collapse
        let only = vec!["kafka_readiness".to_string(), "kafka_readiness".to_string()];
        let e = build(ExportName::DataBackbone, &s, &only, false, BTreeMap::new()).unwrap();
        assert_eq!(e.sections_requested, vec!["kafka_readiness"]);
        assert_eq!(e.status, Grade::Ok);
    }

    #[test]
    fn unknown_sections_name_the_known_ones() {
        let s = summary(&[]);
        let err = build(
            ExportName::Operational,
            &s,
            &["<img src=x>".into()],
            true,
            BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("incident_response"), "{err}");
    }
}
