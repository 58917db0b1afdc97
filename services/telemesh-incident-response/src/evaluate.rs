//! Owns the grading of incident response: a pure function from an [`IncidentResponsePolicy`]
//! and a collected [`IncidentResponseState`] to a `telemetry.operational.incident_response`
//! [`Snapshot`] (DOMAINS.md §3.8.3, every rule and threshold, strict `>` for ages and backlog,
//! inclusive `>=` for MTTA/MTTR/staleness and the major-review fail). No I/O, no clock.
//!
//! Every rule yields an [`Issue`] (category, severity, message, optional detail). Issues are
//! grouped into components, in evaluation order: `runbooks`, `training`, `drills`, `roster`,
//! `incidents`, `chatops`, `major_review`, `reliability`. Each component lists its issues in
//! its `issues` detail, so the gate ([`crate::gate()`]) can be derived from any snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use telemesh_core::{topics, Component, DetailValue, Details, Grade, Snapshot, Source};

use crate::settings::IncidentResponsePolicy;
use crate::state::IncidentResponseState;

/// The snapshot kind (and topic) this domain publishes.
pub const KIND: &str = topics::INCIDENT_RESPONSE;
/// The Markdown title of the snapshot.
pub const TITLE: &str = "Incident response";

/// Component names, in snapshot order.
pub const RUNBOOKS: &str = "runbooks";
pub const TRAINING: &str = "training";
pub const DRILLS: &str = "drills";
pub const ROSTER: &str = "roster";
pub const INCIDENTS: &str = "incidents";
pub const CHATOPS: &str = "chatops";
pub const MAJOR_REVIEW: &str = "major_review";
pub const RELIABILITY: &str = "reliability";
/// Every component, in snapshot order.
pub const COMPONENTS: [&str; 8] = [
    RUNBOOKS,
    TRAINING,
    DRILLS,
    ROSTER,
    INCIDENTS,
    CHATOPS,
    MAJOR_REVIEW,
    RELIABILITY,
];

/// The component detail that lists a component's issues.
pub const ISSUES_DETAIL: &str = "issues";

/// One graded finding (§3.8.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// E.g. `missing_runbooks`, `training`, `metrics_mtta`, `roster_file`.
    pub category: String,
    pub severity: Grade,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Details>,
}

impl Issue {
    fn new(category: &str, severity: Grade, message: impl Into<String>) -> Self {
        Self {
            category: category.to_owned(),
            severity,
            message: message.into(),
            detail: None,
        }
    }

    fn with(mut self, key: &str, value: impl Into<DetailValue>) -> Self {
        self.detail
            .get_or_insert_with(Details::new)
            .insert(key.to_owned(), value.into());
        self
    }

    /// The issue as a component detail value.
    pub fn to_detail(&self) -> DetailValue {
        let mut m = Details::new();
        m.insert("category".into(), self.category.clone().into());
        m.insert("severity".into(), self.severity.as_str().into());
        m.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.detail {
            m.insert("detail".into(), DetailValue::Map(d.clone()));
        }
        DetailValue::Map(m)
    }

    /// Reads an issue back from a component detail value.
    pub fn from_detail(value: &DetailValue) -> Option<Self> {
        let DetailValue::Map(m) = value else {
            return None;
        };
        let text = |k: &str| match m.get(k) {
            Some(DetailValue::Text(s)) => Some(s.clone()),
            _ => None,
        };
        Some(Self {
            category: text("category")?,
            severity: text("severity")?.parse().ok()?,
            message: text("message")?,
            detail: match m.get("detail") {
                Some(DetailValue::Map(d)) => Some(d.clone()),
                _ => None,
            },
        })
    }
}

/// The issues of a snapshot, in component (= evaluation) order.
pub fn snapshot_issues(snapshot: &Snapshot) -> Vec<Issue> {
    snapshot
        .components
        .iter()
        .filter_map(|c| match c.details.get(ISSUES_DETAIL) {
            Some(DetailValue::List(items)) => Some(items.iter().filter_map(Issue::from_detail)),
            _ => None,
        })
        .flatten()
        .collect()
}

fn one(v: f64) -> String {
    format!("{v:.1}")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The component each issue category belongs to.
pub fn component_of(category: &str) -> &'static str {
    match category {
        "missing_runbooks" | "runbook_review" | "runbook_file" => RUNBOOKS,
        "training" | "activity_log" => TRAINING,
        "drill" => DRILLS,
        "primary_roster" | "secondary_roster" | "roster_file" => ROSTER,
        "open_incidents" | "postmortem_backlog" | "alert_history" => INCIDENTS,
        "chatops" => CHATOPS,
        "major_incident_review" => MAJOR_REVIEW,
        _ => RELIABILITY,
    }
}

/// Every issue of `state` under `policy`, in evaluation order.
pub fn issues(policy: &IncidentResponsePolicy, state: &IncidentResponseState) -> Vec<Issue> {
    let mut out = Vec::new();
    let findings = |out: &mut Vec<Issue>, category: &str| {
        for f in state.findings.iter().filter(|f| f.category == category) {
            out.push(Issue::new(f.category, f.severity, f.message.clone()));
        }
    };

    // --- runbooks
    findings(&mut out, "runbook_file");
    let mut missing: Vec<String> = policy
        .required_runbooks
        .iter()
        .filter(|r| {
            !state
                .available_runbooks
                .iter()
                .any(|a| a.eq_ignore_ascii_case(r))
        })
        .cloned()
        .collect();
    missing.sort();
    if !missing.is_empty() {
        out.push(
            Issue::new(
                "missing_runbooks",
                Grade::Fail,
                format!(
                    "missing required runbooks: {}; add them to the runbook directory with id front matter",
                    missing.join(", ")
                ),
            )
            .with("missing", missing),
        );
    }
    for r in &state.runbooks {
        if r.age_days > i64::from(r.interval_days) {
            out.push(
                Issue::new(
                    "runbook_review",
                    Grade::Warn,
                    format!(
                        "runbook {} ({}, owner {}) was last reviewed {} days ago, over its {}-day review interval: review it and update last_reviewed",
                        r.id, r.file, r.owner, r.age_days, r.interval_days
                    ),
                )
                .with("runbook", r.id.clone())
                .with("age_days", r.age_days)
                .with("interval_days", r.interval_days),
            );
        }
    }

    // --- training and drills
    findings(&mut out, "activity_log");
    age_rule(
        &mut out,
        "training",
        "training",
        state.training_age_days,
        policy.training_interval_days,
    );
    age_rule(
        &mut out,
        "drill",
        "drill",
        state.drill_age_days,
        policy.drill_interval_days,
    );

    // --- roster
    findings(&mut out, "roster_file");
    let primary = state.primary_oncall.len();
    if primary < policy.minimum_primary_responders {
        out.push(
            Issue::new(
                "primary_roster",
                Grade::Fail,
                format!(
                    "{} on call, fewer than the minimum of {}: fix the roster so someone is primary now",
                    plural(primary, "primary responder", "primary responders"),
                    policy.minimum_primary_responders
                ),
            )
            .with("count", primary)
            .with("minimum", policy.minimum_primary_responders),
        );
    }
    let secondary = state.secondary_oncall.len();
    if secondary < policy.minimum_secondary_responders {
        out.push(
            Issue::new(
                "secondary_roster",
                Grade::Warn,
                format!(
                    "{} on call, fewer than the minimum of {}: add a secondary to the current rotation",
                    plural(secondary, "secondary responder", "secondary responders"),
                    policy.minimum_secondary_responders
                ),
            )
            .with("count", secondary)
            .with("minimum", policy.minimum_secondary_responders),
        );
    }

    // --- incidents
    findings(&mut out, "alert_history");
    let open = state.open_incidents.len();
    let max = policy.maximum_open_incidents;
    if open > max {
        out.push(
            Issue::new(
                "open_incidents",
                Grade::Fail,
                format!(
                    "{open} open incidents exceed the maximum of {max}: acknowledge and resolve them before deploying"
                ),
            )
            .with("count", open)
            .with("maximum", max)
            .with("ids", state.open_incidents.clone()),
        );
    } else if open > 0 && open == max {
        out.push(
            Issue::new(
                "open_incidents",
                Grade::Warn,
                format!("{open} open incidents, approaching the maximum of {max}"),
            )
            .with("count", open)
            .with("maximum", max)
            .with("ids", state.open_incidents.clone()),
        );
    }
    if let Some(backlog) = state.postmortem_backlog_hours {
        let sla = policy.postmortem_sla_hours;
        if backlog > sla {
            let grade = if backlog > 2.0 * sla {
                Grade::Fail
            } else {
                Grade::Warn
            };
            out.push(
                Issue::new(
                    "postmortem_backlog",
                    grade,
                    format!(
                        "postmortem backlog {}h exceeds the {}h SLA{}: link the postmortems of {}",
                        one(backlog),
                        one(sla),
                        if grade == Grade::Fail {
                            " twice over"
                        } else {
                            ""
                        },
                        state.postmortems_outstanding.join(", ")
                    ),
                )
                .with("backlog_hours", backlog)
                .with("sla_hours", sla)
                .with("alert_ids", state.postmortems_outstanding.clone()),
            );
        }
    }

    // --- chatops
    if policy.require_chatops && !state.chatops_ready {
        let why = state.chatops_detail.clone().unwrap_or_else(|| {
            "connect the paging channels, then set [incident_response] chatops_ready = true".into()
        });
        out.push(Issue::new(
            "chatops",
            Grade::Warn,
            format!("chatops is required but not ready: {why}"),
        ));
    }

    // --- major incident review
    if policy.require_major_incident_history {
        let interval = policy.major_incident_review_interval_days;
        let multiplier = policy.major_incident_fail_multiplier;
        let threshold = interval * multiplier;
        let base = |i: Issue| {
            i.with("age_days", state.last_major_incident_age_days)
                .with("interval_days", interval)
                .with("fail_multiplier", multiplier)
                .with("fail_threshold_days", threshold)
        };
        match state.last_major_incident_age_days {
            None => out.push(base(Issue::new(
                "major_incident_review",
                Grade::Warn,
                "no major incident on record: run a major-incident review exercise (game day) so the process is known to work",
            ))),
            Some(age) if interval > 0.0 && age >= threshold => out.push(base(Issue::new(
                "major_incident_review",
                Grade::Fail,
                format!(
                    "last major incident was {} days ago, at or over {} days ({} × {}): run a major-incident review exercise",
                    one(age),
                    one(threshold),
                    one(interval),
                    one(multiplier)
                ),
            ))),
            Some(age) if interval > 0.0 && age > interval => out.push(base(Issue::new(
                "major_incident_review",
                Grade::Warn,
                format!(
                    "last major incident was {} days ago, over the {}-day review interval: schedule a review exercise",
                    one(age),
                    one(interval)
                ),
            ))),
            Some(_) => {}
        }
    }

    // --- reliability metrics
    if let Some(m) = state.metrics.as_ref().filter(|m| m.has_signal()) {
        metric_rule(
            &mut out,
            "metrics_mtta",
            "MTTA",
            m.mtta_minutes,
            policy.mtta_warn_minutes,
            policy.mtta_fail_minutes,
            ("value_minutes", "warn_minutes", "fail_minutes"),
            "min",
            "acknowledge pages faster (check paging routes and the roster)",
        );
        metric_rule(
            &mut out,
            "metrics_mttr",
            "MTTR",
            m.mttr_minutes,
            policy.mttr_warn_minutes,
            policy.mttr_fail_minutes,
            ("value_minutes", "warn_minutes", "fail_minutes"),
            "min",
            "review recent incidents for slow recovery steps and improve the runbooks",
        );
        metric_rule(
            &mut out,
            "metrics_staleness",
            "alert history age",
            m.data_age_hours,
            policy.metrics_stale_warn_hours,
            policy.metrics_stale_fail_hours,
            ("age_hours", "warn_hours", "fail_hours"),
            "h",
            "the aggregator's alert history could not be fetched lately; check aggregator_url and the aggregator",
        );
    }
    out
}

/// training / drill: unknown → warn; > 2 × interval → fail; > interval → warn (strict).
fn age_rule(out: &mut Vec<Issue>, category: &str, what: &str, age: Option<f64>, interval: f64) {
    let issue = match age {
        None => Issue::new(
            category,
            Grade::Warn,
            format!("no {what} recorded: record one with POST /api/v1/activities (kind {what})"),
        ),
        Some(age) if age > 2.0 * interval => Issue::new(
            category,
            Grade::Fail,
            format!(
                "last {what} was {} days ago, more than twice the {}-day interval: run one now",
                one(age),
                one(interval)
            ),
        ),
        Some(age) if age > interval => Issue::new(
            category,
            Grade::Warn,
            format!(
                "last {what} was {} days ago, over the {}-day interval: schedule one",
                one(age),
                one(interval)
            ),
        ),
        Some(_) => return,
    };
    out.push(issue.with("age_days", age).with("interval_days", interval));
}

/// MTTA / MTTR / staleness: >= fail → fail; else >= warn → warn (inclusive).
#[allow(clippy::too_many_arguments)]
fn metric_rule(
    out: &mut Vec<Issue>,
    category: &str,
    label: &str,
    value: Option<f64>,
    warn: Option<f64>,
    fail: Option<f64>,
    keys: (&str, &str, &str),
    unit: &str,
    hint: &str,
) {
    let Some(v) = value else { return };
    let (grade, threshold, which) = match (warn, fail) {
        (_, Some(f)) if v >= f => (Grade::Fail, f, "fail"),
        (Some(w), _) if v >= w => (Grade::Warn, w, "warn"),
        _ => return,
    };
    out.push(
        Issue::new(
            category,
            grade,
            format!(
                "{label} {}{unit} is at or above the {which} threshold of {}{unit}: {hint}",
                one(v),
                one(threshold)
            ),
        )
        .with(keys.0, v)
        .with(keys.1, warn)
        .with(keys.2, fail),
    );
}

/// Grades `state` under `policy` into a `telemetry.operational.incident_response` snapshot
/// generated at `now`.
pub fn evaluate(
    policy: &IncidentResponsePolicy,
    state: &IncidentResponseState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let all = issues(policy, state);
    let mut snapshot = Snapshot::new(KIND, source, now);
    for name in COMPONENTS {
        let mine: Vec<&Issue> = all
            .iter()
            .filter(|i| component_of(&i.category) == name)
            .collect();
        let grade = Grade::worst(mine.iter().map(|i| i.severity));
        let summary = if mine.is_empty() {
            ok_summary(name, policy, state)
        } else {
            mine.iter()
                .map(|i| i.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut component = Component::new(name, grade, summary).detail(
            ISSUES_DETAIL,
            DetailValue::List(mine.iter().map(|i| i.to_detail()).collect()),
        );
        component.details.extend(facts(name, policy, state));
        snapshot.push(component);
    }
    add_metrics(&mut snapshot, policy, state, &all);
    snapshot.summary = summary(&snapshot, state, &all);
    snapshot.markdown = markdown(&snapshot, state, &all);
    snapshot
}

fn ok_summary(
    name: &str,
    policy: &IncidentResponsePolicy,
    state: &IncidentResponseState,
) -> String {
    match name {
        RUNBOOKS => format!(
            "{} available, all reviewed in time{}",
            plural(state.available_runbooks.len(), "runbook", "runbooks"),
            if policy.required_runbooks.is_empty() {
                String::new()
            } else {
                format!(", all {} required present", policy.required_runbooks.len())
            }
        ),
        TRAINING => format!(
            "last training {} days ago (interval {} days)",
            state.training_age_days.map_or("-".into(), one),
            one(policy.training_interval_days)
        ),
        DRILLS => format!(
            "last drill {} days ago (interval {} days)",
            state.drill_age_days.map_or("-".into(), one),
            one(policy.drill_interval_days)
        ),
        ROSTER => format!(
            "on call: primary {}; secondary {}",
            names(&state.primary_oncall),
            names(&state.secondary_oncall)
        ),
        INCIDENTS => {
            if state.alert_history.fetched_at.is_none() {
                "no alert history".to_owned()
            } else {
                format!(
                    "{} (maximum {}), postmortem backlog {}h",
                    plural(
                        state.open_incidents.len(),
                        "open incident",
                        "open incidents"
                    ),
                    policy.maximum_open_incidents,
                    one(state.postmortem_backlog_hours.unwrap_or(0.0))
                )
            }
        }
        CHATOPS => {
            if state.chatops_ready {
                "chatops ready".to_owned()
            } else {
                "chatops not required".to_owned()
            }
        }
        MAJOR_REVIEW => {
            if policy.require_major_incident_history {
                format!(
                    "last major incident {} days ago (review interval {} days)",
                    state.last_major_incident_age_days.map_or("-".into(), one),
                    one(policy.major_incident_review_interval_days)
                )
            } else {
                "major incident history not required".to_owned()
            }
        }
        _ => match state.metrics.as_ref().filter(|m| m.has_signal()) {
            Some(m) => format!(
                "MTTA {} min, MTTR {} min over {} days",
                m.mtta_minutes.map_or("-".into(), one),
                m.mttr_minutes.map_or("-".into(), one),
                m.sample_window_days.map_or("-".into(), one)
            ),
            None if state.alert_history.configured => {
                "no acknowledged or resolved incidents in the window".to_owned()
            }
            None => {
                "no alert history configured: set [incident_response] aggregator_url".to_owned()
            }
        },
    }
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "nobody".to_owned()
    } else {
        list.join(", ")
    }
}

/// The observed facts and thresholds of one component.
fn facts(name: &str, policy: &IncidentResponsePolicy, state: &IncidentResponseState) -> Details {
    let mut d = Details::new();
    let mut put = |k: &str, v: DetailValue| {
        d.insert(k.to_owned(), v);
    };
    match name {
        RUNBOOKS => {
            put("available", state.available_runbooks.clone().into());
            put("required", policy.required_runbooks.clone().into());
            let reviews: Details = state
                .runbooks
                .iter()
                .map(|r| {
                    let mut m = Details::new();
                    m.insert("file".into(), r.file.clone().into());
                    m.insert("owner".into(), r.owner.clone().into());
                    m.insert("last_reviewed".into(), r.last_reviewed.to_string().into());
                    m.insert("age_days".into(), r.age_days.into());
                    m.insert("interval_days".into(), r.interval_days.into());
                    (r.id.clone(), DetailValue::Map(m))
                })
                .collect();
            put("runbooks", reviews.into());
        }
        TRAINING => {
            put("age_days", state.training_age_days.into());
            put("interval_days", policy.training_interval_days.into());
        }
        DRILLS => {
            put("age_days", state.drill_age_days.into());
            put("interval_days", policy.drill_interval_days.into());
        }
        ROSTER => {
            put("primary", state.primary_oncall.clone().into());
            put("secondary", state.secondary_oncall.clone().into());
            put("minimum_primary", policy.minimum_primary_responders.into());
            put(
                "minimum_secondary",
                policy.minimum_secondary_responders.into(),
            );
            if let Some(r) = &state.rotation {
                let mut m = Details::new();
                m.insert("file".into(), r.file.clone().into());
                m.insert("index".into(), r.index.into());
                m.insert("rotations".into(), r.rotations.into());
                m.insert("started_at".into(), r.started_at.to_rfc3339().into());
                m.insert("handoff_at".into(), r.handoff_at.to_rfc3339().into());
                m.insert("timezone".into(), r.timezone.clone().into());
                put("rotation", m.into());
            }
        }
        INCIDENTS => {
            let h = &state.alert_history;
            put("alert_history_configured", h.configured.into());
            put(
                "alert_history_fetched_at",
                h.fetched_at.map(|t| t.to_rfc3339()).into(),
            );
            put("alerts", h.alerts.into());
            put("alert_history_error", h.error.clone().into());
            put("open_incident_ids", state.open_incidents.clone().into());
            put("open_incident_count", state.open_incidents.len().into());
            put(
                "maximum_open_incidents",
                policy.maximum_open_incidents.into(),
            );
            put(
                "postmortem_backlog_hours",
                state.postmortem_backlog_hours.into(),
            );
            put("postmortem_sla_hours", policy.postmortem_sla_hours.into());
            put(
                "postmortems_outstanding",
                state.postmortems_outstanding.clone().into(),
            );
        }
        CHATOPS => {
            put("required", policy.require_chatops.into());
            put("ready", state.chatops_ready.into());
            put("detail", state.chatops_detail.clone().into());
        }
        MAJOR_REVIEW => {
            put("required", policy.require_major_incident_history.into());
            put("age_days", state.last_major_incident_age_days.into());
            put(
                "interval_days",
                policy.major_incident_review_interval_days.into(),
            );
            put(
                "fail_multiplier",
                policy.major_incident_fail_multiplier.into(),
            );
        }
        _ => {
            let m = state.metrics.clone().unwrap_or_default();
            put("has_signal", m.has_signal().into());
            put("mtta_minutes", m.mtta_minutes.into());
            put("mttr_minutes", m.mttr_minutes.into());
            put("acknowledged_incidents", m.acknowledged_incidents.into());
            put("resolved_incidents", m.resolved_incidents.into());
            put("sample_window_days", m.sample_window_days.into());
            put("data_age_hours", m.data_age_hours.into());
            put("mtta_warn_minutes", policy.mtta_warn_minutes.into());
            put("mtta_fail_minutes", policy.mtta_fail_minutes.into());
            put("mttr_warn_minutes", policy.mttr_warn_minutes.into());
            put("mttr_fail_minutes", policy.mttr_fail_minutes.into());
            put("stale_warn_hours", policy.metrics_stale_warn_hours.into());
            put("stale_fail_hours", policy.metrics_stale_fail_hours.into());
        }
    }
    d
}

fn add_metrics(
    snapshot: &mut Snapshot,
    policy: &IncidentResponsePolicy,
    state: &IncidentResponseState,
    all: &[Issue],
) {
    snapshot.metric("interval_seconds", policy.interval_seconds as f64);
    snapshot.metric("runbooks_available", state.available_runbooks.len() as f64);
    snapshot.metric("primary_responders", state.primary_oncall.len() as f64);
    snapshot.metric("secondary_responders", state.secondary_oncall.len() as f64);
    snapshot.metric("open_incidents", state.open_incidents.len() as f64);
    snapshot.metric(
        "postmortem_backlog_hours",
        state.postmortem_backlog_hours.unwrap_or(0.0),
    );
    let mut opt = |name: &str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            snapshot.metric(name, v);
        }
    };
    opt("training_age_days", state.training_age_days);
    opt("drill_age_days", state.drill_age_days);
    opt(
        "last_major_incident_age_days",
        state.last_major_incident_age_days,
    );
    if let Some(m) = state.metrics.as_ref().filter(|m| m.has_signal()) {
        opt("mtta_minutes", m.mtta_minutes);
        opt("mttr_minutes", m.mttr_minutes);
        opt(
            "acknowledged_incidents",
            m.acknowledged_incidents.map(|v| v as f64),
        );
        opt("resolved_incidents", m.resolved_incidents.map(|v| v as f64));
        opt("data_age_hours", m.data_age_hours);
    }
    let count = |g: Grade| all.iter().filter(|i| i.severity == g).count() as f64;
    snapshot.metric("issues_fail", count(Grade::Fail));
    snapshot.metric("issues_warn", count(Grade::Warn));
}

fn summary(snapshot: &Snapshot, state: &IncidentResponseState, all: &[Issue]) -> String {
    let base = format!(
        "{} primary, {} secondary on call, {}",
        state.primary_oncall.len(),
        state.secondary_oncall.len(),
        plural(
            state.open_incidents.len(),
            "open incident",
            "open incidents"
        ),
    );
    if all.is_empty() {
        return format!("incident response ready: {base}");
    }
    let worst: Vec<&str> = all
        .iter()
        .filter(|i| i.severity == snapshot.status)
        .map(|i| i.category.as_str())
        .collect();
    let mut cats: Vec<&str> = Vec::new();
    for c in worst {
        if !cats.contains(&c) {
            cats.push(c);
        }
    }
    format!(
        "incident response {}: {} ({}); {base}",
        snapshot.status.as_upper(),
        plural(all.len(), "issue", "issues"),
        cats.join(", ")
    )
}

/// §3.8.5: bold title, status bullets, optional reliability metrics and issues sections, then
/// the component table.
fn markdown(snapshot: &Snapshot, state: &IncidentResponseState, all: &[Issue]) -> String {
    let mut out = format!(
        "**{TITLE} — {}**\n\n- Status: {}\n- Generated: {}\n- Primary responders: {}\n- Secondary responders: {}\n- Open incidents: {}\n",
        snapshot.source.service,
        snapshot.status.as_upper(),
        snapshot.generated_at.to_rfc3339(),
        state.primary_oncall.len(),
        state.secondary_oncall.len(),
        state.open_incidents.len()
    );
    if let Some(age) = state.training_age_days {
        out.push_str(&format!("- Training age: {} days\n", one(age)));
    }
    if let Some(age) = state.drill_age_days {
        out.push_str(&format!("- Drill age: {} days\n", one(age)));
    }
    let mut missing: Vec<String> = all
        .iter()
        .filter(|i| i.category == "missing_runbooks")
        .filter_map(|i| match i.detail.as_ref().and_then(|d| d.get("missing")) {
            Some(DetailValue::List(l)) => Some(l.iter().filter_map(|v| match v {
                DetailValue::Text(s) => Some(s.clone()),
                _ => None,
            })),
            _ => None,
        })
        .flatten()
        .collect();
    missing.sort();
    out.push_str(&format!(
        "- Missing runbooks: {}\n",
        if missing.is_empty() {
            "none".to_owned()
        } else {
            missing.join(", ")
        }
    ));
    if let Some(b) = state.postmortem_backlog_hours {
        out.push_str(&format!("- Postmortem backlog: {} hours\n", one(b)));
    }
    if let Some(m) = state.metrics.as_ref().filter(|m| m.has_signal()) {
        out.push_str("\n**Reliability metrics**\n\n");
        let rows: [(&str, Option<String>); 6] = [
            (
                "MTTA",
                m.mtta_minutes.map(|v| format!("{} minutes", one(v))),
            ),
            (
                "MTTR",
                m.mttr_minutes.map(|v| format!("{} minutes", one(v))),
            ),
            (
                "Acknowledged",
                m.acknowledged_incidents.map(|v| v.to_string()),
            ),
            ("Resolved", m.resolved_incidents.map(|v| v.to_string())),
            (
                "Window",
                m.sample_window_days.map(|v| format!("{} days", one(v))),
            ),
            (
                "Data age",
                m.data_age_hours.map(|v| format!("{} hours", one(v))),
            ),
        ];
        for (k, v) in rows {
            if let Some(v) = v {
                out.push_str(&format!("- {k}: {v}\n"));
            }
        }
    }
    if !all.is_empty() {
        out.push_str("\n**Issues**\n\n");
        for i in all {
            out.push_str(&format!(
                "- {} `{}`: {}\n",
                i.severity.as_upper(),
                i.category,
                i.message
            ));
        }
    }
    out.push('\n');
    out.push_str(&snapshot.render_markdown(TITLE));
    out
}

/// Counts of issues per severity and the worst severity per category (§3.8.4 metadata).
pub fn issue_counts(all: &[Issue]) -> (BTreeMap<String, usize>, BTreeMap<String, Grade>) {
    let mut counts = BTreeMap::new();
    let mut worst: BTreeMap<String, Grade> = BTreeMap::new();
    for i in all {
        *counts.entry(i.severity.as_str().to_owned()).or_insert(0) += 1;
        worst
            .entry(i.category.clone())
            .or_insert(Grade::Ok)
            .escalate(i.severity);
    }
    (counts, worst)
}

#[cfg(test)]
mod tests;
