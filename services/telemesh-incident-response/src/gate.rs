//! Owns the deployment gate (DOMAINS.md §3.8.6): a pure function from an incident-response
//! snapshot and [`GateSettings`] to a [`Gate`] that tells a deploy pipeline whether it may
//! deploy (`status` `allow` or `block`) and why.
//!
//! - each `fail` issue blocks (code `issue_<category>_fail`);
//! - each `warn` issue blocks when `block_on_warn` or its category is warn-blocking (code
//!   `issue_<category>_warn_blocked`), else it is a warning (code `issue_<category>_warn`);
//! - a `fail` snapshot with no blocking reason makes its issues (or a status line) blocking
//!   (code `status_fail`); a `warn` snapshot with neither makes them warnings (`status_warn`);
//! - `grade` is the snapshot status, forced to `fail` by any blocking reason; the gate blocks
//!   when `grade` is `fail` or any reason blocks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use telemesh_core::{Grade, Snapshot};

use crate::evaluate::{issue_counts, snapshot_issues, Issue};
use crate::settings::GateSettings;

/// What the pipeline should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateDecision {
    Allow,
    Block,
}

/// The deployment gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// `allow` or `block`.
    pub status: GateDecision,
    /// The §3.8.6 gate status: the snapshot status, forced to `fail` when anything blocks.
    pub grade: Grade,
    pub is_blocking: bool,
    /// Why deploying is blocked (de-duplicated, evaluation order).
    pub blocking_reasons: Vec<String>,
    /// What deserves attention without blocking.
    pub warnings: Vec<String>,
    pub blocking_codes: Vec<String>,
    pub warning_codes: Vec<String>,
    pub metadata: GateMetadata,
}

/// The context of a gate decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateMetadata {
    pub snapshot_status: Option<Grade>,
    pub snapshot_id: Option<String>,
    pub snapshot_generated_at: Option<String>,
    pub snapshot_summary: Option<String>,
    /// Issues per severity.
    pub issue_counts: BTreeMap<String, usize>,
    /// Issue messages per category.
    pub issue_catalog: BTreeMap<String, Vec<String>>,
    /// Worst severity per category.
    pub issue_category_severity: BTreeMap<String, Grade>,
    pub highest_issue_severity: Grade,
    pub block_on_warn: bool,
    /// Sorted.
    pub warn_block_categories: Vec<String>,
}

/// A reason code part: lower-case, runs of non-alphanumerics collapsed to `_`, empty →
/// `unknown`.
fn code_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_owned();
    if out.is_empty() {
        "unknown".to_owned()
    } else {
        out
    }
}

/// A reason code from its parts, e.g. `["issue", "open_incidents", "warn"]`.
pub fn reason_code(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| code_part(p))
        .collect::<Vec<_>>()
        .join("_")
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The gate of `snapshot` under `settings`.
pub fn gate(snapshot: &Snapshot, settings: &GateSettings) -> Gate {
    gate_of(
        snapshot.status,
        &snapshot_issues(snapshot),
        settings,
        Some(snapshot),
    )
}

/// The gate of a status and its issues (the snapshot, when given, only adds metadata).
pub fn gate_of(
    status: Grade,
    issues: &[Issue],
    settings: &GateSettings,
    snapshot: Option<&Snapshot>,
) -> Gate {
    let blocking_category = |c: &str| {
        settings
            .warn_block_categories
            .iter()
            .any(|b| b.eq_ignore_ascii_case(c))
    };
    let mut blocking = Vec::new();
    let mut blocking_codes = Vec::new();
    let mut warnings = Vec::new();
    let mut warning_codes = Vec::new();
    for i in issues {
        match i.severity {
            Grade::Fail => {
                push_unique(&mut blocking, i.message.clone());
                push_unique(
                    &mut blocking_codes,
                    reason_code(&["issue", &i.category, "fail"]),
                );
            }
            Grade::Warn if settings.block_on_warn || blocking_category(&i.category) => {
                push_unique(&mut blocking, i.message.clone());
                push_unique(
                    &mut blocking_codes,
                    reason_code(&["issue", &i.category, "warn_blocked"]),
                );
            }
            Grade::Warn => {
                push_unique(&mut warnings, i.message.clone());
                push_unique(
                    &mut warning_codes,
                    reason_code(&["issue", &i.category, "warn"]),
                );
            }
            Grade::Ok => {}
        }
    }
    let messages = || -> Vec<String> {
        let all: Vec<String> = issues.iter().map(|i| i.message.clone()).collect();
        if all.is_empty() {
            vec![format!("incident response status is {status}")]
        } else {
            all
        }
    };
    if status == Grade::Fail && blocking.is_empty() {
        for m in messages() {
            push_unique(&mut blocking, m);
        }
        push_unique(&mut blocking_codes, "status_fail".into());
    } else if status == Grade::Warn && blocking.is_empty() && warnings.is_empty() {
        for m in messages() {
            push_unique(&mut warnings, m);
        }
        push_unique(&mut warning_codes, "status_warn".into());
    }
    let mut grade = status;
    if !blocking.is_empty() {
        grade = Grade::Fail;
    }
    let is_blocking = grade == Grade::Fail || !blocking.is_empty();
    let (counts, worst) = issue_counts(issues);
    let mut catalog: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in issues {
        catalog
            .entry(i.category.clone())
            .or_default()
            .push(i.message.clone());
    }
    let mut categories = settings.warn_block_categories.clone();
    categories.sort();
    Gate {
        status: if is_blocking {
            GateDecision::Block
        } else {
            GateDecision::Allow
        },
        grade,
        is_blocking,
        blocking_reasons: blocking,
        warnings,
        blocking_codes,
        warning_codes,
        metadata: GateMetadata {
            snapshot_status: Some(status),
            snapshot_id: snapshot.map(|s| s.id.to_string()),
            snapshot_generated_at: snapshot.map(|s| s.generated_at.to_rfc3339()),
            snapshot_summary: snapshot.map(|s| s.summary.clone()),
            issue_counts: counts,
            issue_catalog: catalog,
            highest_issue_severity: Grade::worst(worst.values().copied()),
            issue_category_severity: worst,
            block_on_warn: settings.block_on_warn,
            warn_block_categories: categories,
        },
    }
}

/// The gate when no snapshot has been evaluated yet: blocked (fail closed).
pub fn gate_without_snapshot(settings: &GateSettings) -> Gate {
    let mut g = gate_of(Grade::Fail, &[], settings, None);
    g.blocking_reasons =
        vec!["no incident-response snapshot evaluated yet: retry in a few seconds".into()];
    g.blocking_codes = vec!["no_snapshot".into()];
    g.metadata.snapshot_status = None;
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(category: &str, severity: Grade) -> Issue {
        Issue {
            category: category.into(),
            severity,
            message: format!("{category} {severity}"),
            detail: None,
        }
    }

    fn defaults() -> GateSettings {
        GateSettings::default()
    }

    struct Case {
        name: &'static str,
        status: Grade,
        issues: Vec<Issue>,
        settings: GateSettings,
        decision: GateDecision,
        grade: Grade,
        blocking_codes: &'static [&'static str],
        warning_codes: &'static [&'static str],
    }

    #[test]
    fn gate_rules() {
        let cases = vec![
            Case {
                name: "ok snapshot allows",
                status: Grade::Ok,
                issues: vec![],
                settings: defaults(),
                decision: GateDecision::Allow,
                grade: Grade::Ok,
                blocking_codes: &[],
                warning_codes: &[],
            },
            Case {
                name: "a fail issue blocks",
                status: Grade::Fail,
                issues: vec![issue("training", Grade::Fail)],
                settings: defaults(),
                decision: GateDecision::Block,
                grade: Grade::Fail,
                blocking_codes: &["issue_training_fail"],
                warning_codes: &[],
            },
            Case {
                name: "a warn in a default warn-blocking category blocks",
                status: Grade::Warn,
                issues: vec![
                    issue("open_incidents", Grade::Warn),
                    issue("chatops", Grade::Warn),
                ],
                settings: defaults(),
                decision: GateDecision::Block,
                grade: Grade::Fail,
                blocking_codes: &["issue_open_incidents_warn_blocked"],
                warning_codes: &["issue_chatops_warn"],
            },
            Case {
                name: "other warns are warnings and allow",
                status: Grade::Warn,
                issues: vec![
                    issue("chatops", Grade::Warn),
                    issue("drill", Grade::Warn),
                    issue("drill", Grade::Warn),
                ],
                settings: defaults(),
                decision: GateDecision::Allow,
                grade: Grade::Warn,
                blocking_codes: &[],
                warning_codes: &["issue_chatops_warn", "issue_drill_warn"],
            },
            Case {
                name: "block_on_warn blocks every warn",
                status: Grade::Warn,
                issues: vec![issue("chatops", Grade::Warn)],
                settings: GateSettings {
                    block_on_warn: true,
                    ..defaults()
                },
                decision: GateDecision::Block,
                grade: Grade::Fail,
                blocking_codes: &["issue_chatops_warn_blocked"],
                warning_codes: &[],
            },
            Case {
                name: "each default warn-blocking category",
                status: Grade::Warn,
                issues: vec![
                    issue("missing_runbooks", Grade::Warn),
                    issue("primary_roster", Grade::Warn),
                    issue("postmortem_backlog", Grade::Warn),
                    issue("metrics_mtta", Grade::Warn),
                    issue("metrics_mttr", Grade::Warn),
                    issue("metrics_staleness", Grade::Warn),
                ],
                settings: defaults(),
                decision: GateDecision::Block,
                grade: Grade::Fail,
                blocking_codes: &[
                    "issue_missing_runbooks_warn_blocked",
                    "issue_primary_roster_warn_blocked",
                    "issue_postmortem_backlog_warn_blocked",
                    "issue_metrics_mtta_warn_blocked",
                    "issue_metrics_mttr_warn_blocked",
                ],
                warning_codes: &["issue_metrics_staleness_warn"],
            },
            Case {
                name: "fail snapshot without fail issues blocks on status",
                status: Grade::Fail,
                issues: vec![],
                settings: defaults(),
                decision: GateDecision::Block,
                grade: Grade::Fail,
                blocking_codes: &["status_fail"],
                warning_codes: &[],
            },
            Case {
                name: "warn snapshot without issues warns on status",
                status: Grade::Warn,
                issues: vec![],
                settings: defaults(),
                decision: GateDecision::Allow,
                grade: Grade::Warn,
                blocking_codes: &[],
                warning_codes: &["status_warn"],
            },
            Case {
                name: "empty warn-blocking list lets warns through",
                status: Grade::Warn,
                issues: vec![issue("open_incidents", Grade::Warn)],
                settings: GateSettings {
                    block_on_warn: false,
                    warn_block_categories: vec![],
                },
                decision: GateDecision::Allow,
                grade: Grade::Warn,
                blocking_codes: &[],
                warning_codes: &["issue_open_incidents_warn"],
            },
        ];
        for c in cases {
            let g = gate_of(c.status, &c.issues, &c.settings, None);
            assert_eq!(g.status, c.decision, "{}", c.name);
            assert_eq!(g.grade, c.grade, "{}", c.name);
            assert_eq!(
                g.is_blocking,
                c.decision == GateDecision::Block,
                "{}",
                c.name
            );
            assert_eq!(g.blocking_codes, c.blocking_codes, "{}", c.name);
            assert_eq!(g.warning_codes, c.warning_codes, "{}", c.name);
            assert_eq!(
                g.blocking_reasons.is_empty(),
                c.blocking_codes.is_empty(),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn reason_codes_are_normalised() {
        assert_eq!(
            reason_code(&["issue", "Open Incidents!!", "fail"]),
            "issue_open_incidents_fail"
        );
        assert_eq!(reason_code(&["issue", "--", "warn"]), "issue_unknown_warn");
    }

    #[test]
    fn metadata_and_dedup() {
        let issues = vec![
            issue("drill", Grade::Warn),
            issue("drill", Grade::Warn),
            issue("training", Grade::Fail),
        ];
        let g = gate_of(Grade::Fail, &issues, &defaults(), None);
        assert_eq!(g.warnings, vec!["drill warn"]);
        assert_eq!(g.metadata.issue_counts.get("warn"), Some(&2));
        assert_eq!(g.metadata.issue_catalog.get("drill").map(Vec::len), Some(2));
        assert_eq!(g.metadata.highest_issue_severity, Grade::Fail);
        assert_eq!(
            g.metadata.issue_category_severity.get("drill"),
            Some(&Grade::Warn)
        );
        let mut sorted = g.metadata.warn_block_categories.clone();
        sorted.sort();
        assert_eq!(g.metadata.warn_block_categories, sorted);
        let json = serde_json::to_value(&g).expect("json");
        assert_eq!(json["status"], "block");
        assert_eq!(json["grade"], "fail");
        let none = gate_without_snapshot(&defaults());
        assert_eq!(none.status, GateDecision::Block);
        assert_eq!(none.blocking_codes, vec!["no_snapshot"]);
    }
}
