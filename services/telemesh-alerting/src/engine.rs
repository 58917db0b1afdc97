//! Owns the alert lifecycle, as a pure state machine driven by snapshots and a clock:
//! pending (for `group_wait`) → firing (open) → appended on change (at most every
//! `group_interval`) and repeated while unchanged (every `repeat_interval`) → resolved on the
//! first healthy snapshot. Unacknowledged alerts escalate at the acknowledgement deadline
//! (business time) and again at each end of business day while they fire. A source that stops
//! reporting fires a staleness alert, unless it departed (it said so in a final snapshot, or a
//! newer instance of its service took over and it stayed silent for `retire_intervals`): then
//! it is retired and its alerts resolve with a "departed" note. While the host's own ingestion
//! is held (journal down, consumer lag) staleness is not evaluated and one cause alert fires
//! instead; the time held does not count toward any source's silence. Time only enters as
//! arguments, so tests control it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use telemesh_core::{Grade, Snapshot};
use uuid::Uuid;

use super::calendar::BusinessCalendar;

/// Which parts of a snapshot a rule watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The snapshot's overall status.
    Snapshot,
    /// Each component (optionally only the named ones).
    Components(Vec<String>),
}

/// When to page, and whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// Kinds the rule applies to; empty = every kind.
    pub kinds: Vec<String>,
    pub target: Target,
    /// Fires at this grade or worse.
    pub grade: Grade,
    /// Channel names; empty = every non-escalation channel.
    pub channels: Vec<String>,
    /// A re-fire within this long after the previous open notification is not paged again.
    pub suppress: Duration,
}

/// Timing and routing of the engine.
#[derive(Debug, Clone)]
pub struct AlertPolicy {
    pub rules: Vec<Rule>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Business time an alert may stay unacknowledged before it escalates.
    pub ack_deadline: Duration,
    pub calendar: BusinessCalendar,
    pub escalation_channels: Vec<String>,
    /// Channels a staleness alert goes to (empty = every non-escalation channel).
    pub stale_channels: Vec<String>,
    pub stale_factor: f64,
    pub default_interval_seconds: f64,
    /// A source silent for this many of its intervals after a newer instance of the same
    /// service appeared is retired (0 = never).
    pub retire_intervals: f64,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Bad, waiting out `group_wait` before the first page.
    Pending,
    Firing,
    Resolved,
}

/// How an alert ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// A healthy snapshot arrived.
    Auto,
    /// Someone resolved it through the API.
    Manual,
    /// It recovered before its first page (never notified).
    ClearedBeforeNotice,
    /// Every bad instance departed (announced its shutdown, or was replaced).
    Departed,
}

/// One alert episode of a fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: Uuid,
    /// Hash of (kind, service, component): stable across restarts and episodes.
    pub fingerprint: String,
    pub rule: String,
    pub kind: String,
    pub service: String,
    /// `None` for the snapshot as a whole; `stale` for a source that stopped reporting.
    pub component: Option<String>,
    pub state: AlertState,
    #[schema(value_type = crate::http::GradeDoc)]
    pub grade: Grade,
    /// `warning` or `critical` (from the grade).
    pub severity: String,
    pub summary: String,
    pub snapshot_id: Option<Uuid>,
    /// Instances whose latest snapshot is bad.
    pub bad_instances: BTreeSet<String>,
    pub channels: Vec<String>,
    pub pending_since: DateTime<Utc>,
    /// When the first page went out.
    pub opened_at: Option<DateTime<Utc>>,
    pub last_notified_at: Option<DateTime<Utc>>,
    /// What the last page said, to detect changes.
    #[schema(value_type = Option<crate::http::GradeDoc>)]
    pub notified_grade: Option<Grade>,
    pub notified_summary: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<Resolution>,
    pub note: Option<String>,
    pub escalations: u32,
    pub deadline_escalated: bool,
    /// The next end of business day at which a still-firing alert escalates.
    pub next_end_of_day: Option<DateTime<Utc>>,
    /// True when this episode's open page was suppressed by the rule.
    pub suppressed: bool,
    pub postmortem_url: Option<String>,
    /// The details of the component the alert watches (for a snapshot-level rule: of the
    /// snapshot's first, headline component), from the newest snapshot that graded it, so a
    /// channel can render kind-specific texts (the CI-failure alert's bullets).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub context: serde_json::Map<String, serde_json::Value>,
}

impl Alert {
    /// The synthetic alert of `telemesh alert drill`, firing since `now`.
    pub fn drill(now: DateTime<Utc>) -> Self {
        let (kind, service) = ("telemesh.drill", "telemesh-alert-drill");
        Alert {
            id: Uuid::now_v7(),
            fingerprint: fingerprint(kind, service, None),
            rule: "drill".into(),
            kind: kind.into(),
            service: service.into(),
            component: None,
            state: AlertState::Firing,
            grade: Grade::Fail,
            severity: severity(Grade::Fail).into(),
            summary: "alert drill: a deliberate test of the paging path; no action needed".into(),
            snapshot_id: None,
            bad_instances: BTreeSet::new(),
            channels: Vec::new(),
            pending_since: now,
            opened_at: Some(now),
            last_notified_at: Some(now),
            notified_grade: Some(Grade::Fail),
            notified_summary: None,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolution: None,
            note: None,
            escalations: 0,
            deadline_escalated: false,
            next_end_of_day: None,
            suppressed: false,
            postmortem_url: None,
            context: serde_json::Map::new(),
        }
    }
}

/// Why a notification goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    Open,
    /// The grade or summary changed while firing.
    Append,
    /// Still firing, unchanged, after `repeat_interval`.
    Repeat,
    Resolve,
    /// Not acknowledged by the deadline, or still firing at the end of a business day.
    Escalate {
        reason: String,
    },
    /// Someone acknowledged it.
    Acknowledge,
}

impl Event {
    /// A short name for logs, metrics and the notification log.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Open => "open",
            Event::Append => "append",
            Event::Repeat => "repeat",
            Event::Resolve => "resolve",
            Event::Escalate { .. } => "escalate",
            Event::Acknowledge => "acknowledge",
        }
    }
}

/// What the engine asks the world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store the alert (always emitted before a notification about it).
    Persist(Box<Alert>),
    Notify {
        alert: Box<Alert>,
        event: Event,
        channels: Vec<String>,
    },
}

/// Why an API request on an alert was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("no open alert with id {0}")]
    NotFound(Uuid),
    #[error("this replica is not the alerting leader; retry (another replica holds it)")]
    NotLeader,
}

/// FNV-1a 64 of the parts: stable across builds and platforms.
pub fn fingerprint(kind: &str, service: &str, component: Option<&str>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [kind, "\u{1f}", service, "\u{1f}", component.unwrap_or("")] {
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn severity(grade: Grade) -> &'static str {
    match grade {
        Grade::Fail => "critical",
        _ => "warning",
    }
}

/// The metric in which a source states its publish interval (as the aggregator's summary reads it).
pub const INTERVAL_METRIC: &str = "interval_seconds";

/// The component name staleness alerts use.
pub const STALE_COMPONENT: &str = "stale";

/// A snapshot with this metric > 0 is an instance's last word (published on SIGTERM by
/// `SnapshotPublisher::publish_departed`).
pub use telemesh_core::transport::DEPARTED_METRIC;

/// Kind, service and component of the cause alert raised while ingestion is held.
pub const CAUSE_KIND: &str = "telemesh.aggregator";
pub const CAUSE_SERVICE: &str = "telemesh-aggregator";
pub const CAUSE_COMPONENT: &str = "ingestion";

/// Whether a snapshot announces that its instance is going away.
pub fn is_departed(snapshot: &Snapshot) -> bool {
    snapshot
        .metrics
        .get(DEPARTED_METRIC)
        .is_some_and(|v| v.is_finite() && *v > 0.0)
}

#[derive(Debug, Clone)]
struct SeenSource {
    id: Uuid,
    generated_at: DateTime<Utc>,
    interval_seconds: f64,
    /// When this instance was first seen (a later first-seen instance is "newer").
    first_seen: DateTime<Utc>,
}

/// How many past hold periods are remembered (older ones no longer overlap any silence
/// worth measuring).
const MAX_HOLDS: usize = 64;

/// Seconds of `seen`'s silence at `now` that count: time while ingestion was held is not
/// silence (the snapshots may be waiting in the backlog).
fn silence(seen: &SeenSource, holds: &[(DateTime<Utc>, DateTime<Utc>)], now: DateTime<Utc>) -> f64 {
    let mut silent = now - seen.generated_at;
    for (start, end) in holds {
        let from = (*start).max(seen.generated_at);
        let to = (*end).min(now);
        if to > from {
            silent -= to - from;
        }
    }
    silent.num_milliseconds() as f64 / 1000.0
}

type SourceKey = (String, String, String);

/// The engine: the open alert of each fingerprint plus the bookkeeping for suppression and
/// staleness.
#[derive(Debug)]
pub struct AlertEngine {
    policy: AlertPolicy,
    open: BTreeMap<String, Alert>,
    /// When each fingerprint last paged an open (for suppression).
    last_open_page: BTreeMap<String, DateTime<Utc>>,
    seen: BTreeMap<SourceKey, SeenSource>,
    /// Since when ingestion is held, while it is.
    held_since: Option<DateTime<Utc>>,
    /// Past hold periods, oldest first.
    holds: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl AlertEngine {
    pub fn new(policy: AlertPolicy) -> Self {
        Self {
            policy,
            open: BTreeMap::new(),
            last_open_page: BTreeMap::new(),
            seen: BTreeMap::new(),
            held_since: None,
            holds: Vec::new(),
        }
    }

    pub fn policy(&self) -> &AlertPolicy {
        &self.policy
    }

    /// Takes back the open alerts stored before a restart.
    pub fn restore(&mut self, alerts: Vec<Alert>) {
        for alert in alerts {
            if alert.state != AlertState::Resolved {
                if let Some(at) = alert.opened_at {
                    self.last_open_page.insert(alert.fingerprint.clone(), at);
                }
                self.open.insert(alert.fingerprint.clone(), alert);
            }
        }
    }

    /// Remembers the newest snapshot of a source without evaluating it (rebuilding staleness
    /// from the journal after a restart or a leadership change).
    pub fn remember(&mut self, snapshot: &Snapshot) {
        if is_departed(snapshot) {
            return;
        }
        let key = source_key(snapshot);
        if self
            .seen
            .get(&key)
            .is_some_and(|s| s.generated_at >= snapshot.generated_at)
        {
            return;
        }
        let interval = self.interval_of(snapshot);
        self.seen.insert(
            key,
            SeenSource {
                id: snapshot.id,
                generated_at: snapshot.generated_at,
                interval_seconds: interval,
                first_seen: snapshot.generated_at,
            },
        );
    }

    /// Takes in a snapshot read back from the journal (taking the lead, or snapshots other
    /// replicas consumed): evaluated like a consumed one while it is fresh; a stale one is
    /// only remembered, so it neither clears a staleness alert nor re-evaluates old news.
    pub fn catch_up(&mut self, snapshot: &Snapshot, now: DateTime<Utc>) -> Vec<Action> {
        let age = (now - snapshot.generated_at).num_milliseconds() as f64 / 1000.0;
        if age <= self.policy.stale_factor * self.interval_of(snapshot) {
            self.observe(snapshot, now)
        } else {
            self.remember(snapshot);
            Vec::new()
        }
    }

    /// Instances watched for staleness, as (kind, service, instance).
    pub fn watched(&self) -> impl Iterator<Item = &SourceKey> {
        self.seen.keys()
    }

    fn interval_of(&self, snapshot: &Snapshot) -> f64 {
        snapshot
            .metrics
            .get(INTERVAL_METRIC)
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(self.policy.default_interval_seconds)
    }

    /// The host's ingestion stopped (`cause` says why): staleness is held and one cause
    /// alert fires (after `group_wait`) until [`AlertEngine::ingestion_resumed`].
    pub fn ingestion_held(&mut self, cause: &str, now: DateTime<Utc>) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.held_since.is_none() {
            self.held_since = Some(now);
        }
        let report = BadReport {
            fp: fingerprint(CAUSE_KIND, CAUSE_SERVICE, Some(CAUSE_COMPONENT)),
            rule: "ingestion-held".into(),
            suppress: Duration::zero(),
            kind: CAUSE_KIND.into(),
            service: CAUSE_SERVICE.into(),
            component: Some(CAUSE_COMPONENT.into()),
            instance: CAUSE_COMPONENT.into(),
            grade: Grade::Fail,
            summary: format!(
                "the aggregator stopped taking in snapshots ({cause}); staleness alerts are held until it recovers"
            ),
            snapshot_id: None,
            channels: self.policy.stale_channels.clone(),
            context: serde_json::Map::new(),
        };
        let unchanged = self
            .open
            .get(&report.fp)
            .is_some_and(|a| a.summary == report.summary);
        if !unchanged {
            self.mark_bad(report, now, &mut actions);
        }
        actions
    }

    /// Ingestion is back: the held time stops counting as any source's silence (also for
    /// snapshots generated while held and consumed later) and the cause alert resolves.
    pub fn ingestion_resumed(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(since) = self.held_since.take() {
            self.holds.push((since, now));
            if self.holds.len() > MAX_HOLDS {
                self.holds.remove(0);
            }
        }
        let fp = fingerprint(CAUSE_KIND, CAUSE_SERVICE, Some(CAUSE_COMPONENT));
        self.clear_instance(&fp, CAUSE_COMPONENT, now, None, &mut actions);
        actions
    }

    /// Holds staleness without a cause alert (taking the lead, while the host catches up)
    /// until [`AlertEngine::ingestion_resumed`].
    pub fn hold(&mut self, now: DateTime<Utc>) {
        if self.held_since.is_none() {
            self.held_since = Some(now);
        }
    }

    /// True while ingestion is held.
    pub fn is_held(&self) -> bool {
        self.held_since.is_some()
    }

    /// Retires one instance: it is no longer watched and its alerts resolve with `note`.
    fn retire(
        &mut self,
        key: &SourceKey,
        note: &str,
        now: DateTime<Utc>,
        actions: &mut Vec<Action>,
    ) {
        self.seen.remove(key);
        let (kind, service, instance) = key;
        let fps: Vec<String> = self
            .open
            .values()
            .filter(|a| {
                &a.kind == kind && &a.service == service && a.bad_instances.contains(instance)
            })
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in fps {
            self.clear_instance(&fp, instance, now, Some(note), actions);
        }
    }

    /// Retires instances silent for `retire_intervals` after a newer instance appeared.
    fn retire_replaced(&mut self, now: DateTime<Utc>, actions: &mut Vec<Action>) {
        let factor = self.policy.retire_intervals;
        if !(factor.is_finite() && factor > 0.0) {
            return;
        }
        let replaced: Vec<(SourceKey, String)> = self
            .seen
            .iter()
            .filter(|(_, seen)| silence(seen, &self.holds, now) > factor * seen.interval_seconds)
            .filter_map(|(key, seen)| {
                self.seen
                    .iter()
                    .find(|(other, o)| {
                        other.0 == key.0
                            && other.1 == key.1
                            && other.2 != key.2
                            && o.first_seen > seen.first_seen
                            && o.generated_at > seen.generated_at
                    })
                    .map(|(other, _)| (key.clone(), other.2.clone()))
            })
            .collect();
        for (key, newer) in replaced {
            let note = format!(
                "departed: instance {} of {} was replaced by {newer}",
                key.2, key.1
            );
            tracing::info!(kind = %key.0, service = %key.1, instance = %key.2, newer = %newer, "source retired");
            self.retire(&key, &note, now, actions);
        }
    }

    /// Open (pending or firing) alerts.
    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.open.values()
    }

    /// Feeds one snapshot; returns what to store and whom to notify.
    pub fn observe(&mut self, snapshot: &Snapshot, now: DateTime<Utc>) -> Vec<Action> {
        let mut actions = Vec::new();
        let instance = snapshot.source.instance.clone();
        let service = snapshot.source.service.clone();
        let key = source_key(snapshot);
        if is_departed(snapshot) {
            let note = format!("departed: instance {instance} of {service} shut down");
            self.retire(&key, &note, now, &mut actions);
            return actions;
        }
        let previous = self.seen.get(&key);
        if previous.is_some_and(|p| p.id == snapshot.id || p.generated_at > snapshot.generated_at) {
            // already evaluated, or older than what we have (a replay)
            return actions;
        }
        let first_seen = previous.map_or(snapshot.generated_at, |p| p.first_seen);
        let interval = self.interval_of(snapshot);
        self.seen.insert(
            key,
            SeenSource {
                id: snapshot.id,
                generated_at: snapshot.generated_at,
                interval_seconds: interval,
                first_seen,
            },
        );
        // a fresh snapshot clears this source's staleness
        let stale_fp = fingerprint(&snapshot.kind, &service, Some(STALE_COMPONENT));
        self.clear_instance(&stale_fp, &instance, now, None, &mut actions);

        let rules = self.policy.rules.clone();
        for rule in rules
            .iter()
            .filter(|r| r.kinds.is_empty() || r.kinds.contains(&snapshot.kind))
        {
            let targets: Vec<(Option<String>, Grade, String)> = match &rule.target {
                Target::Snapshot => vec![(None, snapshot.status, snapshot.summary.clone())],
                Target::Components(names) => snapshot
                    .components
                    .iter()
                    .filter(|c| names.is_empty() || names.contains(&c.name))
                    .map(|c| {
                        (
                            Some(c.name.clone()),
                            c.status,
                            format!("{}: {}", c.name, c.summary),
                        )
                    })
                    .collect(),
            };
            for (component, grade, summary) in targets {
                let fp = fingerprint(&snapshot.kind, &service, component.as_deref());
                let context = context_of(snapshot, component.as_deref());
                if grade >= rule.grade {
                    let channels = rule.channels.clone();
                    self.mark_bad(
                        BadReport {
                            fp,
                            rule: rule.name.clone(),
                            suppress: rule.suppress,
                            kind: snapshot.kind.clone(),
                            service: service.clone(),
                            component,
                            instance: instance.clone(),
                            grade,
                            summary,
                            snapshot_id: Some(snapshot.id),
                            channels,
                            context,
                        },
                        now,
                        &mut actions,
                    );
                } else {
                    // the recovering snapshot's details, for the channels' resolve texts
                    if let Some(alert) = self.open.get_mut(&fp) {
                        alert.context = context;
                    }
                    self.clear_instance(&fp, &instance, now, None, &mut actions);
                }
            }
        }
        actions
    }

    fn mark_bad(&mut self, report: BadReport, now: DateTime<Utc>, actions: &mut Vec<Action>) {
        match self.open.get_mut(&report.fp) {
            Some(alert) => {
                alert.bad_instances.insert(report.instance);
                alert.grade = report.grade;
                alert.severity = severity(report.grade).into();
                alert.summary = report.summary;
                alert.snapshot_id = report.snapshot_id.or(alert.snapshot_id);
                alert.context = report.context;
                actions.push(Action::Persist(Box::new(alert.clone())));
            }
            None => {
                let suppressed = self
                    .last_open_page
                    .get(&report.fp)
                    .is_some_and(|at| now - *at < report.suppress);
                let alert = Alert {
                    id: Uuid::now_v7(),
                    fingerprint: report.fp.clone(),
                    rule: report.rule,
                    kind: report.kind,
                    service: report.service,
                    component: report.component,
                    state: AlertState::Pending,
                    grade: report.grade,
                    severity: severity(report.grade).into(),
                    summary: report.summary,
                    snapshot_id: report.snapshot_id,
                    bad_instances: BTreeSet::from([report.instance]),
                    channels: report.channels,
                    pending_since: now,
                    opened_at: None,
                    last_notified_at: None,
                    notified_grade: None,
                    notified_summary: None,
                    acknowledged_at: None,
                    acknowledged_by: None,
                    resolved_at: None,
                    resolution: None,
                    note: None,
                    escalations: 0,
                    deadline_escalated: false,
                    next_end_of_day: None,
                    suppressed,
                    postmortem_url: None,
                    context: report.context,
                };
                actions.push(Action::Persist(Box::new(alert.clone())));
                self.open.insert(report.fp, alert);
            }
        }
    }

    /// Removes `instance` from an alert's bad instances; the last one out resolves it
    /// (with `departed` as the note when the instance went away rather than recovered).
    fn clear_instance(
        &mut self,
        fp: &str,
        instance: &str,
        now: DateTime<Utc>,
        departed: Option<&str>,
        actions: &mut Vec<Action>,
    ) {
        let Some(alert) = self.open.get_mut(fp) else {
            return;
        };
        alert.bad_instances.remove(instance);
        if !alert.bad_instances.is_empty() {
            return;
        }
        let Some(mut alert) = self.open.remove(fp) else {
            return;
        };
        let notified = alert.opened_at.is_some() && !alert.suppressed;
        alert.state = AlertState::Resolved;
        alert.resolved_at = Some(now);
        alert.resolution = Some(match (alert.opened_at.is_some(), departed) {
            (false, _) => Resolution::ClearedBeforeNotice,
            (true, None) => Resolution::Auto,
            (true, Some(_)) => Resolution::Departed,
        });
        if let Some(note) = departed {
            alert.note = Some(note.to_owned());
        }
        actions.push(Action::Persist(Box::new(alert.clone())));
        if notified {
            let channels = alert.channels.clone();
            actions.push(Action::Notify {
                alert: Box::new(alert),
                event: Event::Resolve,
                channels,
            });
        }
    }

    /// Advances time: first pages, appends, repeats, escalations and staleness.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        let mut actions = Vec::new();
        self.retire_replaced(now, &mut actions);
        if self.held_since.is_none() {
            self.check_staleness(now, &mut actions);
        }
        let policy = self.policy.clone();
        for alert in self.open.values_mut() {
            match alert.state {
                AlertState::Pending if now - alert.pending_since >= policy.group_wait => {
                    alert.state = AlertState::Firing;
                    alert.opened_at = Some(now);
                    alert.next_end_of_day = Some(policy.calendar.next_end_of_day(now));
                    alert.last_notified_at = Some(now);
                    alert.notified_grade = Some(alert.grade);
                    alert.notified_summary = Some(alert.summary.clone());
                    actions.push(Action::Persist(Box::new(alert.clone())));
                    if !alert.suppressed {
                        self.last_open_page.insert(alert.fingerprint.clone(), now);
                        actions.push(notify(alert, Event::Open, alert.channels.clone()));
                    }
                }
                AlertState::Firing => {
                    let last = alert.last_notified_at.unwrap_or(alert.pending_since);
                    let changed = alert.notified_grade != Some(alert.grade)
                        || alert.notified_summary.as_deref() != Some(alert.summary.as_str());
                    let event = if changed && now - last >= policy.group_interval {
                        Some(Event::Append)
                    } else if !changed
                        && alert.acknowledged_at.is_none()
                        && now - last >= policy.repeat_interval
                    {
                        Some(Event::Repeat)
                    } else {
                        None
                    };
                    if let Some(event) = event {
                        alert.last_notified_at = Some(now);
                        alert.notified_grade = Some(alert.grade);
                        alert.notified_summary = Some(alert.summary.clone());
                        actions.push(Action::Persist(Box::new(alert.clone())));
                        if !alert.suppressed {
                            actions.push(notify(alert, event, alert.channels.clone()));
                        }
                    }
                    escalate(alert, &policy, now, &mut actions);
                }
                _ => {}
            }
        }
        actions
    }

    fn check_staleness(&mut self, now: DateTime<Utc>, actions: &mut Vec<Action>) {
        let stale: Vec<(SourceKey, SeenSource)> = self
            .seen
            .iter()
            .filter(|(_, seen)| {
                silence(seen, &self.holds, now) > self.policy.stale_factor * seen.interval_seconds
            })
            .map(|(key, seen)| (key.clone(), seen.clone()))
            .collect();
        for ((kind, service, instance), seen) in stale {
            let fp = fingerprint(&kind, &service, Some(STALE_COMPONENT));
            if self
                .open
                .get(&fp)
                .is_some_and(|a| a.bad_instances.contains(&instance))
            {
                continue;
            }
            let channels = self.policy.stale_channels.clone();
            self.mark_bad(
                BadReport {
                    fp,
                    rule: "stale-source".into(),
                    suppress: Duration::zero(),
                    summary: format!(
                        "{service} stopped reporting {kind}: expected every {:.0}s, last snapshot at {}",
                        seen.interval_seconds,
                        seen.generated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                    kind,
                    service,
                    component: Some(STALE_COMPONENT.into()),
                    instance,
                    grade: Grade::Fail,
                    snapshot_id: None,
                    channels,
                    context: serde_json::Map::new(),
                },
                now,
                actions,
            );
        }
    }

    /// Records an acknowledgement; stops repeats and escalations.
    pub fn acknowledge(
        &mut self,
        id: Uuid,
        by: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Action>, AlertError> {
        let alert = self
            .open
            .values_mut()
            .find(|a| a.id == id)
            .ok_or(AlertError::NotFound(id))?;
        if alert.acknowledged_at.is_none() {
            alert.acknowledged_at = Some(now);
            alert.acknowledged_by = Some(by.to_owned());
        }
        if note.is_some() {
            alert.note = note;
        }
        let mut actions = vec![Action::Persist(Box::new(alert.clone()))];
        if alert.opened_at.is_some() && !alert.suppressed {
            actions.push(notify(alert, Event::Acknowledge, alert.channels.clone()));
        }
        Ok(actions)
    }

    /// Sets the postmortem link of an open alert; `None` when it is not open.
    pub fn set_postmortem(&mut self, id: Uuid, url: &str) -> Option<Alert> {
        let alert = self.open.values_mut().find(|a| a.id == id)?;
        alert.postmortem_url = Some(url.to_owned());
        Some(alert.clone())
    }

    /// Resolves by hand. A later failing snapshot opens a new alert.
    pub fn resolve(
        &mut self,
        id: Uuid,
        by: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Action>, AlertError> {
        let fp = self
            .open
            .values()
            .find(|a| a.id == id)
            .map(|a| a.fingerprint.clone())
            .ok_or(AlertError::NotFound(id))?;
        let Some(mut alert) = self.open.remove(&fp) else {
            return Err(AlertError::NotFound(id));
        };
        // forget the instances, so a silent one does not re-open the alert on the next tick
        for instance in &alert.bad_instances {
            self.seen
                .remove(&(alert.kind.clone(), alert.service.clone(), instance.clone()));
        }
        alert.state = AlertState::Resolved;
        alert.resolved_at = Some(now);
        alert.resolution = Some(Resolution::Manual);
        alert.note = Some(match note {
            Some(n) => format!("resolved by {by}: {n}"),
            None => format!("resolved by {by}"),
        });
        let mut actions = vec![Action::Persist(Box::new(alert.clone()))];
        if alert.opened_at.is_some() && !alert.suppressed {
            let channels = alert.channels.clone();
            actions.push(notify(&alert, Event::Resolve, channels));
        }
        Ok(actions)
    }
}

fn source_key(snapshot: &Snapshot) -> SourceKey {
    (
        snapshot.kind.clone(),
        snapshot.source.service.clone(),
        snapshot.source.instance.clone(),
    )
}

struct BadReport {
    fp: String,
    rule: String,
    suppress: Duration,
    kind: String,
    service: String,
    component: Option<String>,
    instance: String,
    grade: Grade,
    summary: String,
    snapshot_id: Option<Uuid>,
    channels: Vec<String>,
    context: serde_json::Map<String, serde_json::Value>,
}

/// The details of `component` (or, for the snapshot as a whole, of its first component) as JSON.
fn context_of(
    snapshot: &Snapshot,
    component: Option<&str>,
) -> serde_json::Map<String, serde_json::Value> {
    let found = match component {
        Some(name) => snapshot.component(name),
        None => snapshot.components.first(),
    };
    found
        .map(|c| {
            c.details
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn notify(alert: &Alert, event: Event, channels: Vec<String>) -> Action {
    Action::Notify {
        alert: Box::new(alert.clone()),
        event,
        channels,
    }
}

fn escalate(
    alert: &mut Alert,
    policy: &AlertPolicy,
    now: DateTime<Utc>,
    actions: &mut Vec<Action>,
) {
    if alert.acknowledged_at.is_some() || alert.suppressed {
        return;
    }
    let Some(opened) = alert.opened_at else {
        return;
    };
    let mut reason = None;
    if !alert.deadline_escalated
        && now
            >= policy
                .calendar
                .add_business_time(opened, policy.ack_deadline)
    {
        alert.deadline_escalated = true;
        reason = Some(format!(
            "not acknowledged within {} business minutes",
            policy.ack_deadline.num_minutes()
        ));
    }
    let end_of_day = alert
        .next_end_of_day
        .unwrap_or_else(|| policy.calendar.next_end_of_day(opened));
    if now >= end_of_day {
        alert.next_end_of_day = Some(policy.calendar.next_end_of_day(now));
        reason = Some(match reason {
            Some(r) => format!("{r}; still firing at the end of the business day"),
            None => "still firing at the end of the business day".into(),
        });
    }
    if let Some(reason) = reason {
        alert.escalations += 1;
        actions.push(Action::Persist(Box::new(alert.clone())));
        let mut channels = policy.escalation_channels.clone();
        if channels.is_empty() {
            channels = alert.channels.clone();
        }
        actions.push(notify(alert, Event::Escalate { reason }, channels));
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
