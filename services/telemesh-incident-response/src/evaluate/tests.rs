//! Data-driven tests of every §3.8.3 grading rule of `evaluate`, at, below and above each
//! threshold, plus the snapshot shape (components, issue details, metrics, Markdown).

use chrono::{NaiveDate, TimeZone};

use super::*;
use crate::settings::IncidentResponseSettings;
use crate::state::{AlertHistoryStatus, IncidentResponseMetrics, InputFinding, RunbookReview};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// The §3.8.1 defaults, with two required runbooks.
fn policy() -> IncidentResponsePolicy {
    IncidentResponseSettings {
        required_runbooks: vec![
            "redis-cache-outage".into(),
            "kafka-ingest-offset-recovery".into(),
        ],
        ..IncidentResponseSettings::default()
    }
    .policy()
}

/// Everything healthy under `policy()`.
fn healthy() -> IncidentResponseState {
    IncidentResponseState {
        available_runbooks: vec![
            "Redis-Cache-Outage".into(),
            "kafka-ingest-offset-recovery".into(),
        ],
        runbooks: vec![RunbookReview {
            id: "redis-cache-outage".into(),
            owner: "platform".into(),
            file: "redis-cache-outage.md".into(),
            last_reviewed: NaiveDate::from_ymd_opt(2026, 10, 1).expect("date"),
            age_days: 40,
            interval_days: 90,
        }],
        training_age_days: Some(10.0),
        drill_age_days: Some(10.0),
        primary_oncall: vec!["alice".into()],
        secondary_oncall: vec!["bob".into()],
        rotation: None,
        alert_history: AlertHistoryStatus {
            configured: true,
            fetched_at: Some(now()),
            alerts: 3,
            error: None,
        },
        open_incidents: vec![],
        postmortem_backlog_hours: Some(0.0),
        postmortems_outstanding: vec![],
        chatops_ready: true,
        chatops_detail: None,
        last_major_incident_age_days: Some(10.0),
        metrics: Some(IncidentResponseMetrics {
            mtta_minutes: Some(5.0),
            mttr_minutes: Some(60.0),
            acknowledged_incidents: Some(3),
            resolved_incidents: Some(3),
            sample_window_days: Some(30.0),
            data_age_hours: Some(0.0),
        }),
        findings: vec![],
    }
}

struct Case {
    name: &'static str,
    setup: fn(&mut IncidentResponsePolicy, &mut IncidentResponseState),
    category: &'static str,
    /// `None`: no issue of this category.
    grade: Option<Grade>,
    contains: &'static str,
}

fn metrics(s: &mut IncidentResponseState) -> &mut IncidentResponseMetrics {
    s.metrics.get_or_insert_with(Default::default)
}

fn cases() -> Vec<Case> {
    vec![
        // --- missing_runbooks: case-insensitive, fail, sorted names
        Case {
            name: "all required runbooks present (case-insensitive)",
            setup: |_, _| {},
            category: "missing_runbooks",
            grade: None,
            contains: "",
        },
        Case {
            name: "missing runbooks fail, sorted",
            setup: |p, s| {
                s.available_runbooks.clear();
                p.required_runbooks = vec!["zeta".into(), "alpha".into()];
            },
            category: "missing_runbooks",
            grade: Some(Grade::Fail),
            contains: "missing required runbooks: alpha, zeta",
        },
        Case {
            name: "nothing required",
            setup: |p, s| {
                p.required_runbooks.clear();
                s.available_runbooks.clear();
            },
            category: "missing_runbooks",
            grade: None,
            contains: "",
        },
        // --- runbook_review: strict >
        Case {
            name: "runbook reviewed at its interval",
            setup: |_, s| s.runbooks[0].age_days = 90,
            category: "runbook_review",
            grade: None,
            contains: "",
        },
        Case {
            name: "runbook review overdue warns",
            setup: |_, s| s.runbooks[0].age_days = 91,
            category: "runbook_review",
            grade: Some(Grade::Warn),
            contains: "last reviewed 91 days ago, over its 90-day review interval",
        },
        // --- training: unknown warn, > interval warn, > 2x fail
        Case {
            name: "training unknown warns",
            setup: |_, s| s.training_age_days = None,
            category: "training",
            grade: Some(Grade::Warn),
            contains: "no training recorded",
        },
        Case {
            name: "training at interval",
            setup: |_, s| s.training_age_days = Some(90.0),
            category: "training",
            grade: None,
            contains: "",
        },
        Case {
            name: "training over interval warns",
            setup: |_, s| s.training_age_days = Some(90.1),
            category: "training",
            grade: Some(Grade::Warn),
            contains: "over the 90.0-day interval",
        },
        Case {
            name: "training at twice the interval warns",
            setup: |_, s| s.training_age_days = Some(180.0),
            category: "training",
            grade: Some(Grade::Warn),
            contains: "180.0 days ago",
        },
        Case {
            name: "training over twice the interval fails",
            setup: |_, s| s.training_age_days = Some(180.1),
            category: "training",
            grade: Some(Grade::Fail),
            contains: "more than twice",
        },
        // --- drill: same rules, 60-day interval
        Case {
            name: "drill unknown warns",
            setup: |_, s| s.drill_age_days = None,
            category: "drill",
            grade: Some(Grade::Warn),
            contains: "no drill recorded",
        },
        Case {
            name: "drill at interval",
            setup: |_, s| s.drill_age_days = Some(60.0),
            category: "drill",
            grade: None,
            contains: "",
        },
        Case {
            name: "drill over interval warns",
            setup: |_, s| s.drill_age_days = Some(61.0),
            category: "drill",
            grade: Some(Grade::Warn),
            contains: "over the 60.0-day interval",
        },
        Case {
            name: "drill at twice the interval warns",
            setup: |_, s| s.drill_age_days = Some(120.0),
            category: "drill",
            grade: Some(Grade::Warn),
            contains: "",
        },
        Case {
            name: "drill over twice the interval fails",
            setup: |_, s| s.drill_age_days = Some(120.5),
            category: "drill",
            grade: Some(Grade::Fail),
            contains: "run one now",
        },
        // --- rosters
        Case {
            name: "primary at minimum",
            setup: |_, _| {},
            category: "primary_roster",
            grade: None,
            contains: "",
        },
        Case {
            name: "primary below minimum fails",
            setup: |_, s| s.primary_oncall.clear(),
            category: "primary_roster",
            grade: Some(Grade::Fail),
            contains: "0 primary responders on call, fewer than the minimum of 1",
        },
        Case {
            name: "minimum primary 0 accepts nobody",
            setup: |p, s| {
                p.minimum_primary_responders = 0;
                s.primary_oncall.clear();
            },
            category: "primary_roster",
            grade: None,
            contains: "",
        },
        Case {
            name: "two primaries required, one on call",
            setup: |p, _| p.minimum_primary_responders = 2,
            category: "primary_roster",
            grade: Some(Grade::Fail),
            contains: "1 primary responder on call",
        },
        Case {
            name: "secondary below minimum warns",
            setup: |_, s| s.secondary_oncall.clear(),
            category: "secondary_roster",
            grade: Some(Grade::Warn),
            contains: "0 secondary responders",
        },
        Case {
            name: "secondary at minimum",
            setup: |_, _| {},
            category: "secondary_roster",
            grade: None,
            contains: "",
        },
        // --- open incidents: default max 1 → one open warns, two fail
        Case {
            name: "no open incidents",
            setup: |_, _| {},
            category: "open_incidents",
            grade: None,
            contains: "",
        },
        Case {
            name: "one open incident at max 1 warns (approaching)",
            setup: |_, s| s.open_incidents = vec!["a".into()],
            category: "open_incidents",
            grade: Some(Grade::Warn),
            contains: "approaching the maximum of 1",
        },
        Case {
            name: "two open incidents over max 1 fail",
            setup: |_, s| s.open_incidents = vec!["a".into(), "b".into()],
            category: "open_incidents",
            grade: Some(Grade::Fail),
            contains: "2 open incidents exceed the maximum of 1",
        },
        Case {
            name: "one open incident below max 3",
            setup: |p, s| {
                p.maximum_open_incidents = 3;
                s.open_incidents = vec!["a".into()];
            },
            category: "open_incidents",
            grade: None,
            contains: "",
        },
        Case {
            name: "max 0: one open fails",
            setup: |p, s| {
                p.maximum_open_incidents = 0;
                s.open_incidents = vec!["a".into()];
            },
            category: "open_incidents",
            grade: Some(Grade::Fail),
            contains: "maximum of 0",
        },
        // --- postmortem backlog: > SLA warn, > 2x SLA fail, unknown skipped
        Case {
            name: "backlog unknown",
            setup: |_, s| s.postmortem_backlog_hours = None,
            category: "postmortem_backlog",
            grade: None,
            contains: "",
        },
        Case {
            name: "backlog at SLA",
            setup: |_, s| s.postmortem_backlog_hours = Some(24.0),
            category: "postmortem_backlog",
            grade: None,
            contains: "",
        },
        Case {
            name: "backlog over SLA warns",
            setup: |_, s| {
                s.postmortem_backlog_hours = Some(24.5);
                s.postmortems_outstanding = vec!["c".into()];
            },
            category: "postmortem_backlog",
            grade: Some(Grade::Warn),
            contains: "postmortem backlog 24.5h exceeds the 24.0h SLA: link the postmortems of c",
        },
        Case {
            name: "backlog at twice SLA warns",
            setup: |_, s| s.postmortem_backlog_hours = Some(48.0),
            category: "postmortem_backlog",
            grade: Some(Grade::Warn),
            contains: "",
        },
        Case {
            name: "backlog over twice SLA fails",
            setup: |_, s| s.postmortem_backlog_hours = Some(48.1),
            category: "postmortem_backlog",
            grade: Some(Grade::Fail),
            contains: "twice over",
        },
        // --- chatops
        Case {
            name: "chatops ready",
            setup: |_, _| {},
            category: "chatops",
            grade: None,
            contains: "",
        },
        Case {
            name: "chatops required, not ready warns",
            setup: |_, s| s.chatops_ready = false,
            category: "chatops",
            grade: Some(Grade::Warn),
            contains: "not ready",
        },
        Case {
            name: "chatops not required",
            setup: |p, s| {
                p.require_chatops = false;
                s.chatops_ready = false;
            },
            category: "chatops",
            grade: None,
            contains: "",
        },
        // --- major incident review (only if required): warn > 180, fail >= 360
        Case {
            name: "major review not required ignores unknown age",
            setup: |_, s| s.last_major_incident_age_days = None,
            category: "major_incident_review",
            grade: None,
            contains: "",
        },
        Case {
            name: "major review unknown age warns",
            setup: |p, s| {
                p.require_major_incident_history = true;
                s.last_major_incident_age_days = None;
            },
            category: "major_incident_review",
            grade: Some(Grade::Warn),
            contains: "no major incident on record",
        },
        Case {
            name: "major review at interval",
            setup: |p, s| {
                p.require_major_incident_history = true;
                s.last_major_incident_age_days = Some(180.0);
            },
            category: "major_incident_review",
            grade: None,
            contains: "",
        },
        Case {
            name: "major review over interval warns",
            setup: |p, s| {
                p.require_major_incident_history = true;
                s.last_major_incident_age_days = Some(180.5);
            },
            category: "major_incident_review",
            grade: Some(Grade::Warn),
            contains: "over the 180.0-day review interval",
        },
        Case {
            name: "major review just below fail threshold warns",
            setup: |p, s| {
                p.require_major_incident_history = true;
                s.last_major_incident_age_days = Some(359.9);
            },
            category: "major_incident_review",
            grade: Some(Grade::Warn),
            contains: "",
        },
        Case {
            name: "major review at fail threshold fails (inclusive)",
            setup: |p, s| {
                p.require_major_incident_history = true;
                s.last_major_incident_age_days = Some(360.0);
            },
            category: "major_incident_review",
            grade: Some(Grade::Fail),
            contains: "at or over 360.0 days (180.0 × 2.0)",
        },
        Case {
            name: "major review interval 0 never grades a known age",
            setup: |p, s| {
                p.require_major_incident_history = true;
                p.major_incident_review_interval_days = 0.0;
                s.last_major_incident_age_days = Some(9999.0);
            },
            category: "major_incident_review",
            grade: None,
            contains: "",
        },
        // --- MTTA: inclusive
        Case {
            name: "mtta below warn",
            setup: |_, s| metrics(s).mtta_minutes = Some(29.9),
            category: "metrics_mtta",
            grade: None,
            contains: "",
        },
        Case {
            name: "mtta at warn warns",
            setup: |_, s| metrics(s).mtta_minutes = Some(30.0),
            category: "metrics_mtta",
            grade: Some(Grade::Warn),
            contains: "MTTA 30.0min is at or above the warn threshold of 30.0min",
        },
        Case {
            name: "mtta at fail fails",
            setup: |_, s| metrics(s).mtta_minutes = Some(60.0),
            category: "metrics_mtta",
            grade: Some(Grade::Fail),
            contains: "fail threshold of 60.0min",
        },
        Case {
            name: "mtta thresholds disabled",
            setup: |p, s| {
                p.mtta_warn_minutes = None;
                p.mtta_fail_minutes = None;
                metrics(s).mtta_minutes = Some(600.0);
            },
            category: "metrics_mtta",
            grade: None,
            contains: "",
        },
        Case {
            name: "mtta warn disabled, fail still applies",
            setup: |p, s| {
                p.mtta_warn_minutes = None;
                metrics(s).mtta_minutes = Some(45.0);
            },
            category: "metrics_mtta",
            grade: None,
            contains: "",
        },
        // --- MTTR
        Case {
            name: "mttr below warn",
            setup: |_, s| metrics(s).mttr_minutes = Some(179.0),
            category: "metrics_mttr",
            grade: None,
            contains: "",
        },
        Case {
            name: "mttr at warn warns",
            setup: |_, s| metrics(s).mttr_minutes = Some(180.0),
            category: "metrics_mttr",
            grade: Some(Grade::Warn),
            contains: "MTTR 180.0min",
        },
        Case {
            name: "mttr at fail fails",
            setup: |_, s| metrics(s).mttr_minutes = Some(360.0),
            category: "metrics_mttr",
            grade: Some(Grade::Fail),
            contains: "",
        },
        // --- staleness
        Case {
            name: "history age below warn",
            setup: |_, s| metrics(s).data_age_hours = Some(23.9),
            category: "metrics_staleness",
            grade: None,
            contains: "",
        },
        Case {
            name: "history age at warn warns",
            setup: |_, s| metrics(s).data_age_hours = Some(24.0),
            category: "metrics_staleness",
            grade: Some(Grade::Warn),
            contains: "alert history age 24.0h",
        },
        Case {
            name: "history age at fail fails",
            setup: |_, s| metrics(s).data_age_hours = Some(48.0),
            category: "metrics_staleness",
            grade: Some(Grade::Fail),
            contains: "",
        },
        // --- metrics without signal are not graded (age alone does not count)
        Case {
            name: "no signal: staleness not graded",
            setup: |_, s| {
                s.metrics = Some(IncidentResponseMetrics {
                    data_age_hours: Some(100.0),
                    acknowledged_incidents: Some(0),
                    mtta_minutes: Some(0.0),
                    ..Default::default()
                });
            },
            category: "metrics_staleness",
            grade: None,
            contains: "",
        },
        Case {
            name: "no metrics at all",
            setup: |_, s| s.metrics = None,
            category: "metrics_mtta",
            grade: None,
            contains: "",
        },
        // --- input findings become issues of their category
        Case {
            name: "malformed roster finding",
            setup: |_, s| {
                s.findings.push(InputFinding::warn(
                    "roster_file",
                    "roster file r.toml is not a valid roster",
                ))
            },
            category: "roster_file",
            grade: Some(Grade::Warn),
            contains: "r.toml",
        },
        Case {
            name: "unreachable aggregator finding",
            setup: |_, s| {
                s.findings.push(InputFinding::warn(
                    "alert_history",
                    "cannot reach the aggregator",
                ))
            },
            category: "alert_history",
            grade: Some(Grade::Warn),
            contains: "cannot reach",
        },
    ]
}

#[test]
fn every_rule_at_below_and_above_its_threshold() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut p = policy();
        let mut s = healthy();
        (case.setup)(&mut p, &mut s);
        let all = issues(&p, &s);
        let found: Vec<&Issue> = all.iter().filter(|i| i.category == case.category).collect();
        match (case.grade, found.as_slice()) {
            (None, []) => {}
            (Some(g), [issue]) if issue.severity == g && issue.message.contains(case.contains) => {}
            (want, got) => failures.push(format!(
                "{}: want {:?} containing {:?}, got {:?}",
                case.name,
                want,
                case.contains,
                got.iter()
                    .map(|i| (i.severity, i.message.clone()))
                    .collect::<Vec<_>>()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn healthy_state_is_ok_with_every_component() {
    let snapshot = evaluate(
        &policy(),
        &healthy(),
        Source::new("incident-response", "t"),
        now(),
    );
    assert_eq!(snapshot.kind, topics::INCIDENT_RESPONSE);
    assert_eq!(snapshot.status, Grade::Ok, "{}", snapshot.summary);
    assert_eq!(snapshot.validate(), Ok(()));
    let names: Vec<&str> = snapshot
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, COMPONENTS);
    assert!(snapshot
        .summary
        .starts_with("incident response ready: 1 primary, 1 secondary"));
    assert_eq!(snapshot.metrics.get("mtta_minutes"), Some(&5.0));
    assert_eq!(snapshot.metrics.get("issues_fail"), Some(&0.0));
    assert!(snapshot
        .markdown
        .starts_with("**Incident response — incident-response**"));
    assert!(snapshot.markdown.contains("- Missing runbooks: none"));
    assert!(snapshot.markdown.contains("**Reliability metrics**"));
    assert!(!snapshot.markdown.contains("**Issues**"));
}

#[test]
fn overall_is_the_worst_issue_and_issues_round_trip_through_details() {
    let mut s = healthy();
    s.open_incidents = vec!["a".into()];
    s.drill_age_days = None;
    s.primary_oncall.clear();
    let snapshot = evaluate(&policy(), &s, Source::new("incident-response", "t"), now());
    assert_eq!(snapshot.status, Grade::Fail);
    assert_eq!(
        snapshot.component(ROSTER).map(|c| c.status),
        Some(Grade::Fail)
    );
    assert_eq!(
        snapshot.component(INCIDENTS).map(|c| c.status),
        Some(Grade::Warn)
    );
    assert_eq!(
        snapshot.component(DRILLS).map(|c| c.status),
        Some(Grade::Warn)
    );
    assert_eq!(
        snapshot.component(RUNBOOKS).map(|c| c.status),
        Some(Grade::Ok)
    );
    let back = snapshot_issues(&snapshot);
    assert_eq!(back, issues(&policy(), &s));
    let cats: Vec<&str> = back.iter().map(|i| i.category.as_str()).collect();
    assert_eq!(cats, ["drill", "primary_roster", "open_incidents"]);
    assert!(snapshot
        .summary
        .starts_with("incident response FAIL: 3 issues (primary_roster)"));
    assert!(snapshot.markdown.contains("- FAIL `primary_roster`:"));
    let (counts, worst) = issue_counts(&back);
    assert_eq!(counts.get("warn"), Some(&2));
    assert_eq!(worst.get("primary_roster"), Some(&Grade::Fail));
    // the detail survives JSON
    let json = serde_json::to_string(&snapshot).expect("json");
    let decoded: Snapshot = serde_json::from_str(&json).expect("decode");
    assert_eq!(snapshot_issues(&decoded), back);
}

#[test]
fn issue_details_carry_the_spec_fields() {
    let mut p = policy();
    p.require_major_incident_history = true;
    let mut s = healthy();
    s.last_major_incident_age_days = Some(400.0);
    metrics(&mut s).mtta_minutes = Some(31.0);
    metrics(&mut s).data_age_hours = Some(30.0);
    let all = issues(&p, &s);
    let detail = |cat: &str| {
        all.iter()
            .find(|i| i.category == cat)
            .and_then(|i| i.detail.clone())
            .unwrap_or_default()
    };
    let major = detail("major_incident_review");
    for key in [
        "age_days",
        "interval_days",
        "fail_multiplier",
        "fail_threshold_days",
    ] {
        assert!(major.contains_key(key), "{key}");
    }
    assert_eq!(
        major.get("fail_threshold_days"),
        Some(&DetailValue::Float(360.0))
    );
    let mtta = detail("metrics_mtta");
    assert_eq!(mtta.get("value_minutes"), Some(&DetailValue::Float(31.0)));
    assert_eq!(mtta.get("warn_minutes"), Some(&DetailValue::Float(30.0)));
    assert_eq!(mtta.get("fail_minutes"), Some(&DetailValue::Float(60.0)));
    let stale = detail("metrics_staleness");
    for key in ["age_hours", "warn_hours", "fail_hours"] {
        assert!(stale.contains_key(key), "{key}");
    }
}

#[test]
fn without_alert_history_the_reliability_component_says_so() {
    let mut s = healthy();
    s.alert_history = AlertHistoryStatus::default();
    s.metrics = None;
    s.postmortem_backlog_hours = None;
    let snapshot = evaluate(&policy(), &s, Source::new("incident-response", "t"), now());
    let reliability = snapshot.component(RELIABILITY).expect("component");
    assert!(
        reliability.summary.contains("no alert history configured"),
        "{}",
        reliability.summary
    );
    assert_eq!(
        snapshot.component(INCIDENTS).map(|c| c.summary.as_str()),
        Some("no alert history")
    );
}
