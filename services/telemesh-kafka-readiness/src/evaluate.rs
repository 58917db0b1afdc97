//! Owns the grading of Kafka readiness: a pure function from a [`ReadinessPolicy`] and a
//! probed [`ReadinessState`] to a `telemetry.kafka.readiness` [`Snapshot`] (DOMAINS.md §3.1.3
//! with its flaws fixed). No I/O, no clock: `now` is passed in.
//!
//! Components, in order: `connection`, `topics`, `publishers`, `consumer_lag`. Thresholds are
//! strictly greater-than. When Kafka is not configured every component is `warn` at most, so
//! standalone mode is `warn`, never `fail`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use telemesh_core::snapshot::escape_cell;
use telemesh_core::{topics, Component, DetailValue, Details, Grade, Snapshot, Source};

use crate::settings::ReadinessPolicy;
use crate::state::{GroupLag, ReadinessState};

/// The snapshot kind (and topic) this domain publishes.
pub const KIND: &str = topics::KAFKA_READINESS;
/// The Markdown title of the snapshot.
pub const TITLE: &str = "Kafka readiness";

/// Component names, in snapshot order.
pub const CONNECTION: &str = "connection";
pub const TOPICS: &str = "topics";
pub const PUBLISHERS: &str = "publishers";
pub const CONSUMER_LAG: &str = "consumer_lag";

/// Grades `state` under `policy` into a `telemetry.kafka.readiness` snapshot generated at `now`.
pub fn evaluate(
    policy: &ReadinessPolicy,
    state: &ReadinessState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut snapshot = Snapshot::new(KIND, source, now);
    let connection = connection(state);
    let skipped = if !state.connection.configured {
        Some("kafka not configured")
    } else if connection.status == Grade::Fail {
        Some("kafka unreachable")
    } else {
        None
    };
    snapshot.push(connection);
    match skipped {
        Some(reason) => {
            for name in [TOPICS, PUBLISHERS, CONSUMER_LAG] {
                snapshot.push(
                    Component::new(name, Grade::Warn, format!("skipped: {reason}"))
                        .detail("checked", false),
                );
            }
        }
        None => {
            snapshot.push(topics(policy, state));
            snapshot.push(publishers(policy, state));
            let (lag, groups) = consumer_lag(policy, state, now);
            snapshot.push(lag);
            add_lag_metrics(&mut snapshot, &groups);
        }
    }
    add_metrics(&mut snapshot, policy, state, skipped.is_none());
    snapshot.summary = summary(&snapshot, state);
    snapshot.markdown = markdown(&snapshot, state, skipped.is_none(), now);
    snapshot
}

/// Collects the grade and summary fragments of one component.
#[derive(Debug, Default)]
struct Verdict {
    grade: Grade,
    parts: Vec<String>,
}

impl Verdict {
    fn add(&mut self, grade: Grade, text: impl Into<String>) {
        self.grade.escalate(grade);
        self.parts.push(text.into());
    }

    fn summary(&self, when_empty: &str) -> String {
        if self.parts.is_empty() {
            when_empty.to_owned()
        } else {
            self.parts.join("; ")
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn connection(state: &ReadinessState) -> Component {
    let c = &state.connection;
    let (grade, summary) = if !c.configured {
        (
            Grade::Warn,
            "kafka not configured (standalone mode): set [kafka] brokers (TELEMESH__KAFKA__BROKERS) to check a cluster"
                .to_owned(),
        )
    } else if let Some(error) = &c.error {
        (
            Grade::Fail,
            format!(
                "cannot reach kafka: {error}; check [kafka] brokers, credentials and that the cluster is up"
            ),
        )
    } else if c.brokers_answered.is_empty() {
        (
            Grade::Fail,
            "kafka metadata listed no brokers: check the cluster's advertised listeners".to_owned(),
        )
    } else {
        let ids: Vec<String> = c.brokers_answered.iter().map(i32::to_string).collect();
        let answered = format!(
            "{} answered (ids {})",
            plural(ids.len(), "broker", "brokers"),
            ids.join(", ")
        );
        match state.probe_errors.first() {
            None => (Grade::Ok, answered),
            Some(first) => (
                Grade::Warn,
                format!(
                    "{answered}, but {} failed (first: {first}); see the probe_errors detail",
                    plural(state.probe_errors.len(), "probe call", "probe calls")
                ),
            ),
        }
    };
    let mut component = Component::new(CONNECTION, grade, summary)
        .detail("configured", c.configured)
        .detail("description", c.description.clone());
    if c.configured {
        component = component.detail("brokers_answered", c.brokers_answered.clone());
    }
    if let Some(error) = &c.error {
        component = component.detail("error", error.clone());
    }
    if !state.probe_errors.is_empty() {
        component = component.detail("probe_errors", state.probe_errors.clone());
    }
    component
}

fn topics(policy: &ReadinessPolicy, state: &ReadinessState) -> Component {
    let expected: Vec<String> = state.topics.iter().map(|t| t.name.clone()).collect();
    let missing: Vec<String> = state
        .topics
        .iter()
        .filter(|t| !t.exists)
        .map(|t| t.name.clone())
        .collect();
    let thin: Vec<String> = state
        .topics
        .iter()
        .filter(|t| t.exists && t.partitions < policy.min_partitions)
        .map(|t| format!("{} ({})", t.name, t.partitions))
        .collect();
    let mut v = Verdict::default();
    if expected.is_empty() {
        if policy.require_topics {
            v.add(
                Grade::Fail,
                "topics are required but none are configured: set [kafka_readiness] topics",
            );
        } else {
            v.add(Grade::Warn, "no topics configured (optional for this run)");
        }
    }
    if let Some(p) = &state.provisioning {
        // an expected topic that could not be created fails; a catalogue kind's topic that is
        // provisioned ahead of its producer only warns
        let (failed, also): (Vec<_>, Vec<_>) =
            p.failed.iter().partition(|(t, _)| expected.contains(t));
        let list = |failed: &[&(String, String)]| {
            failed
                .iter()
                .map(|(t, e)| format!("{t}: {e}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !failed.is_empty() {
            v.add(
                Grade::Fail,
                format!(
                    "provisioning failed for {} ({}); check broker logs and the client's create-topic ACLs",
                    plural(failed.len(), "topic", "topics"),
                    list(&failed)
                ),
            );
        }
        if !also.is_empty() {
            v.add(
                Grade::Warn,
                format!(
                    "provisioning failed for {} of catalogue kinds not expected here ({}); their producers will find no topic: check broker logs and the client's create-topic ACLs",
                    plural(also.len(), "topic", "topics"),
                    list(&also)
                ),
            );
        }
    }
    let unprovisioned: Vec<&String> = missing
        .iter()
        .filter(|m| {
            state
                .provisioning
                .as_ref()
                .is_none_or(|p| !p.failed.iter().any(|(t, _)| &t == m))
        })
        .collect();
    if !unprovisioned.is_empty() {
        let names: Vec<&str> = unprovisioned.iter().map(|s| s.as_str()).collect();
        let text = format!(
            "{} of {} missing: {}",
            unprovisioned.len(),
            plural(expected.len(), "topic", "topics"),
            names.join(", ")
        );
        let hint = if policy.provision_topics {
            "they were not visible after provisioning; the next probe checks again"
        } else {
            "create them or set [kafka_readiness] provision_topics = true"
        };
        if policy.require_topics {
            v.add(Grade::Fail, format!("{text}; {hint}"));
        } else {
            v.add(Grade::Warn, format!("{text} (topics not required); {hint}"));
        }
    }
    if !thin.is_empty() {
        v.add(
            Grade::Warn,
            format!(
                "fewer partitions than min_partitions {}: {}",
                policy.min_partitions,
                thin.join(", ")
            ),
        );
    }
    let created = state
        .provisioning
        .as_ref()
        .map_or(&[][..], |p| &p.created[..]);
    let mut ok = format!("all {} exist", plural(expected.len(), "topic", "topics"));
    if !created.is_empty() {
        ok.push_str(&format!(
            " ({} just created: {})",
            created.len(),
            created.join(", ")
        ));
    }
    let partitions: Details = state
        .topics
        .iter()
        .filter(|t| t.exists)
        .map(|t| (t.name.clone(), DetailValue::from(t.partitions)))
        .collect();
    let mut component = Component::new(TOPICS, v.grade, v.summary(&ok))
        .detail("expected", expected)
        .detail("missing", missing)
        .detail("required", policy.require_topics)
        .detail("min_partitions", policy.min_partitions)
        .detail("partitions", partitions);
    if let Some(p) = &state.provisioning {
        let failed: Details = p
            .failed
            .iter()
            .map(|(t, e)| (t.clone(), DetailValue::from(e.clone())))
            .collect();
        let mut prov = Details::new();
        prov.insert("created".into(), p.created.clone().into());
        prov.insert("existing".into(), p.existing.clone().into());
        prov.insert("failed".into(), failed.into());
        component = component.detail("provisioning", prov);
    }
    component
}

fn publishers(policy: &ReadinessPolicy, state: &ReadinessState) -> Component {
    let active: Vec<String> = state
        .publishers
        .iter()
        .filter(|p| p.active())
        .map(|p| p.topic.clone())
        .collect();
    let inactive: Vec<String> = state
        .publishers
        .iter()
        .filter(|p| !p.active())
        .map(|p| p.topic.clone())
        .collect();
    let count = active.len();
    let total = state.publishers.len();
    let min = policy.min_publishers;
    let window = policy.publisher_window_seconds;
    let of_total = format!(
        "{count} of {}",
        plural(total, "telemetry topic", "telemetry topics")
    );
    // min = 0 is checked first, so "optional" is reachable (the spec's rule order hid it).
    let (grade, summary) = if min == 0 {
        (
            Grade::Ok,
            format!("{of_total} received messages in the last {window}s (publishers optional)"),
        )
    } else if count >= min {
        (
            Grade::Ok,
            format!(
                "{of_total} received messages in the last {window}s: {}",
                active.join(", ")
            ),
        )
    } else if count == 0 {
        (
            Grade::Fail,
            format!(
                "no telemetry topic received messages in the last {window}s (need {min}): domain services are not publishing"
            ),
        )
    } else {
        (
            Grade::Warn,
            format!(
                "only {of_total} received messages in the last {window}s, below min_publishers {min}: {}",
                active.join(", ")
            ),
        )
    };
    let in_window: Details = state
        .publishers
        .iter()
        .map(|p| (p.topic.clone(), DetailValue::from(p.messages_in_window)))
        .collect();
    Component::new(PUBLISHERS, grade, summary)
        .detail("active", active)
        .detail("inactive", inactive)
        .detail("min_required", min)
        .detail("window_seconds", window)
        .detail("messages_in_window", in_window)
}

/// Seconds from `then` to `now`, never negative (a clock ahead of ours is not staleness).
fn age_seconds(then: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    ((now - then).num_milliseconds() as f64 / 1000.0).max(0.0)
}

/// The graded view of one group, for the component, the metrics and the Markdown table.
#[derive(Debug)]
struct GroupVerdict<'a> {
    lag: &'a GroupLag,
    grade: Grade,
    summary: String,
    staleness: Option<f64>,
    idle: Option<f64>,
}

fn group_verdict<'a>(
    policy: &ReadinessPolicy,
    g: &'a GroupLag,
    now: DateTime<Utc>,
) -> GroupVerdict<'a> {
    let mut v = Verdict::default();
    let mut staleness = None;
    let mut idle = None;
    let name = &g.group;
    match g.recorded_at {
        None => {
            let why = g.error.as_deref().unwrap_or("never measured");
            let grade = if policy.require_consumer {
                Grade::Fail
            } else {
                Grade::Warn
            };
            v.add(grade, format!("lag unavailable ({why})"));
        }
        Some(recorded_at) => {
            if let Some(error) = &g.error {
                v.add(
                    Grade::Ok,
                    format!("latest read failed ({error}); showing the previous measurement"),
                );
            }
            let total = g.total_lag();
            if g.partitions.is_empty() {
                v.add(Grade::Ok, "no partitions to measure (see topics)");
            } else if total.is_none() {
                if policy.require_consumer {
                    v.add(
                        Grade::Fail,
                        "no committed offsets: the consumer is required but has not consumed; is it running?",
                    );
                } else {
                    v.add(
                        Grade::Ok,
                        "no committed offsets yet (consumer not required)",
                    );
                }
            }
            if let Some(total) = total {
                if total > policy.fail_lag_messages {
                    v.add(
                        Grade::Fail,
                        format!("lag {total} > fail {}", policy.fail_lag_messages),
                    );
                } else if total > policy.warn_lag_messages {
                    v.add(
                        Grade::Warn,
                        format!("lag {total} > warn {}", policy.warn_lag_messages),
                    );
                }
            }
            let age = age_seconds(recorded_at, now);
            staleness = Some(age);
            if age > policy.fail_stale_seconds {
                v.add(
                    Grade::Fail,
                    format!(
                        "measurement is {age:.0}s old > fail {:.0}s",
                        policy.fail_stale_seconds
                    ),
                );
            } else if age > policy.warn_stale_seconds {
                v.add(
                    Grade::Warn,
                    format!(
                        "measurement is {age:.0}s old > warn {:.0}s",
                        policy.warn_stale_seconds
                    ),
                );
            }
            if let (Some(total), Some(progress)) = (total, g.last_progress_at) {
                if total > 0 {
                    let stalled = age_seconds(progress, now);
                    idle = Some(stalled);
                    if stalled > policy.fail_stale_seconds {
                        v.add(
                            Grade::Fail,
                            format!(
                                "stalled: lag {total} but no committed progress for {stalled:.0}s > fail {:.0}s",
                                policy.fail_stale_seconds
                            ),
                        );
                    } else if stalled > policy.warn_stale_seconds {
                        v.add(
                            Grade::Warn,
                            format!(
                                "stalled: lag {total} but no committed progress for {stalled:.0}s > warn {:.0}s",
                                policy.warn_stale_seconds
                            ),
                        );
                    }
                }
            }
            if v.grade == Grade::Ok {
                if let Some(total) = total {
                    v.add(
                        Grade::Ok,
                        format!(
                            "lag {total} within thresholds (warn > {})",
                            policy.warn_lag_messages
                        ),
                    );
                }
            }
        }
    }
    GroupVerdict {
        lag: g,
        grade: v.grade,
        summary: format!("group {name}: {}", v.summary("ok")),
        staleness,
        idle,
    }
}

fn group_details(gv: &GroupVerdict<'_>) -> DetailValue {
    let g = gv.lag;
    let mut topic_lag: BTreeMap<String, i64> = BTreeMap::new();
    for p in &g.partitions {
        if let Some(lag) = p.lag {
            *topic_lag.entry(p.topic.clone()).or_default() += lag;
        }
    }
    let mut d = Details::new();
    d.insert("status".into(), gv.grade.as_str().into());
    d.insert("total_lag".into(), g.total_lag().into());
    d.insert("max_lag".into(), g.max_lag().into());
    d.insert("partitions".into(), g.partitions.len().into());
    d.insert("uncommitted_partitions".into(), g.uncommitted().into());
    d.insert(
        "topic_lag".into(),
        DetailValue::Map(
            topic_lag
                .into_iter()
                .map(|(t, l)| (t, DetailValue::from(l)))
                .collect(),
        ),
    );
    d.insert(
        "recorded_at".into(),
        g.recorded_at.map(|t| t.to_rfc3339()).into(),
    );
    d.insert("staleness_seconds".into(), gv.staleness.into());
    d.insert(
        "last_progress_at".into(),
        g.last_progress_at.map(|t| t.to_rfc3339()).into(),
    );
    d.insert("seconds_without_progress".into(), gv.idle.into());
    d.insert("error".into(), g.error.clone().into());
    DetailValue::Map(d)
}

fn consumer_lag<'a>(
    policy: &ReadinessPolicy,
    state: &'a ReadinessState,
    now: DateTime<Utc>,
) -> (Component, Vec<GroupVerdict<'a>>) {
    let groups: Vec<GroupVerdict<'a>> = state
        .lag
        .iter()
        .map(|g| group_verdict(policy, g, now))
        .collect();
    let (grade, summary) = if groups.is_empty() {
        if policy.require_consumer {
            (
                Grade::Fail,
                "consumer lag is required but no consumer group is configured: set [kafka_readiness] consumer_groups or [kafka] group_id"
                    .to_owned(),
            )
        } else {
            (
                Grade::Ok,
                "no consumer group to measure (consumer not required)".to_owned(),
            )
        }
    } else {
        let grade = Grade::worst(groups.iter().map(|g| g.grade));
        let parts: Vec<&str> = groups.iter().map(|g| g.summary.as_str()).collect();
        (grade, parts.join("; "))
    };
    let details: Details = groups
        .iter()
        .map(|g| (g.lag.group.clone(), group_details(g)))
        .collect();
    let component = Component::new(CONSUMER_LAG, grade, summary)
        .detail("groups", details)
        .detail("required", policy.require_consumer)
        .detail("warn_lag_messages", policy.warn_lag_messages)
        .detail("fail_lag_messages", policy.fail_lag_messages)
        .detail("warn_stale_seconds", policy.warn_stale_seconds)
        .detail("fail_stale_seconds", policy.fail_stale_seconds);
    (component, groups)
}

fn add_lag_metrics(snapshot: &mut Snapshot, groups: &[GroupVerdict<'_>]) {
    snapshot.metric("consumer_groups", groups.len() as f64);
    let totals: Vec<i64> = groups.iter().filter_map(|g| g.lag.total_lag()).collect();
    if !totals.is_empty() {
        snapshot.metric("total_lag", totals.iter().sum::<i64>() as f64);
    }
    if let Some(max) = groups.iter().filter_map(|g| g.lag.max_lag()).max() {
        snapshot.metric("max_lag", max as f64);
    }
    if let Some(stale) = groups.iter().filter_map(|g| g.staleness).reduce(f64::max) {
        snapshot.metric("lag_staleness_seconds", stale);
    }
    if let Some(idle) = groups.iter().filter_map(|g| g.idle).reduce(f64::max) {
        snapshot.metric("lag_seconds_without_progress", idle);
    }
}

fn add_metrics(
    snapshot: &mut Snapshot,
    policy: &ReadinessPolicy,
    state: &ReadinessState,
    checked: bool,
) {
    snapshot.metric("interval_seconds", policy.interval_seconds as f64);
    snapshot.metric(
        "kafka_configured",
        if state.connection.configured {
            1.0
        } else {
            0.0
        },
    );
    snapshot.metric("brokers_up", state.connection.brokers_answered.len() as f64);
    if checked {
        let missing = state.topics.iter().filter(|t| !t.exists).count();
        snapshot.metric("topics_expected", state.topics.len() as f64);
        snapshot.metric("topics_missing", missing as f64);
        if let Some(p) = &state.provisioning {
            snapshot.metric("topics_created", p.created.len() as f64);
            snapshot.metric("topics_provision_failed", p.failed.len() as f64);
        }
        let active = state.publishers.iter().filter(|p| p.active()).count();
        snapshot.metric("active_publishers", active as f64);
        snapshot.metric("publisher_topics", state.publishers.len() as f64);
    }
    snapshot.metric("probe_errors", state.probe_errors.len() as f64);
}

fn summary(snapshot: &Snapshot, state: &ReadinessState) -> String {
    if !state.connection.configured {
        return "kafka not configured: readiness checks skipped (standalone mode); set [kafka] brokers to check a cluster"
            .to_owned();
    }
    if snapshot.status == Grade::Ok {
        let metric = |name: &str| snapshot.metrics.get(name).copied().unwrap_or(0.0);
        let mut line = format!(
            "kafka ready: {}, {} exist, {} active",
            plural(metric("brokers_up") as usize, "broker", "brokers"),
            plural(metric("topics_expected") as usize, "topic", "topics"),
            plural(
                metric("active_publishers") as usize,
                "publisher topic",
                "publisher topics"
            ),
        );
        if let Some(total) = snapshot.metrics.get("total_lag") {
            line.push_str(&format!(", consumer lag {total:.0}"));
        }
        return line;
    }
    let problems: Vec<String> = snapshot
        .components
        .iter()
        .filter(|c| c.status != Grade::Ok)
        .map(|c| format!("{} {}: {}", c.name, c.status, c.summary))
        .collect();
    format!(
        "kafka {}: {}",
        snapshot.status.as_upper(),
        problems.join(" | ")
    )
}

fn markdown(
    snapshot: &Snapshot,
    state: &ReadinessState,
    checked: bool,
    now: DateTime<Utc>,
) -> String {
    let mut out = snapshot.render_markdown(TITLE);
    if checked && !state.lag.is_empty() {
        out.push_str(
            "\n| Consumer group | Total lag | Max partition lag | Uncommitted partitions | Measured | No progress for |\n| --- | --- | --- | --- | --- | --- |\n",
        );
        let opt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
        for g in &state.lag {
            let measured = g.recorded_at.map_or("never".to_owned(), |t| {
                format!("{:.0}s ago", age_seconds(t, now))
            });
            let idle = match (g.total_lag(), g.last_progress_at) {
                (Some(total), Some(p)) if total > 0 => format!("{:.0}s", age_seconds(p, now)),
                _ => "-".to_owned(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                escape_cell(&g.group),
                opt(g.total_lag()),
                opt(g.max_lag()),
                g.uncommitted(),
                measured,
                idle
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
