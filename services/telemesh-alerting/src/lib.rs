//! telemesh alerting: the `[alerting]` settings, the pure lifecycle engine, business hours,
//! notification channels (Slack, webhook, GitHub issues, SMTP e-mail), their dispatcher with
//! retries and rate-limit handling, the alert actor and the alert HTTP API. Alert state lives
//! behind [`repo::AlertRepo`], which the host (the aggregator's journal) implements: this crate
//! runs no SQL.

pub mod actor;
pub mod calendar;
pub mod channels;
pub mod ci_alert;
pub mod dispatch;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod redact;
pub mod repo;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use telemesh_core::config::{Invalid, Secret, Section};
use telemesh_core::Grade;

pub use engine::{Alert, AlertEngine, AlertPolicy, AlertState, Event, Resolution};

/// `[[alerting.rules]]`: when to page and whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSettings {
    pub name: String,
    /// Kinds the rule applies to; empty = all.
    pub kinds: Vec<String>,
    /// `snapshot` (the overall status) or `components` (each component).
    pub target: String,
    /// With `target = "components"`: only these components (empty = all).
    pub components: Vec<String>,
    /// `fail` (default) or `warn`.
    pub grade: Grade,
    /// Channel names; empty = every channel not listed in `escalation_channels`.
    pub channels: Vec<String>,
    /// A re-fire within this many seconds of the previous page is recorded but not paged.
    pub suppress_seconds: u64,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            name: "failures".into(),
            kinds: Vec::new(),
            target: "snapshot".into(),
            components: Vec::new(),
            grade: Grade::Fail,
            channels: Vec::new(),
            suppress_seconds: 0,
        }
    }
}

/// `[[alerting.channels]]`: where pages go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSettings {
    pub name: String,
    /// `slack`, `webhook`, `github`, `email` or `file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Slack incoming-webhook URL or webhook URL (a secret: prefer `url_env`).
    pub url: Secret,
    /// Name of an environment variable holding `url`.
    pub url_env: String,
    /// GitHub API base.
    pub api_url: String,
    /// GitHub `owner/name`.
    pub repo: String,
    /// GitHub token (a secret: prefer `token_env`).
    pub token: Secret,
    /// Name of an environment variable holding `token`.
    pub token_env: String,
    /// GitHub labels of alert issues.
    pub labels: Vec<String>,
    pub timeout_ms: u64,
    /// Attempts per notification before the channel counts as down for it.
    pub max_attempts: u32,
    /// E-mail: SMTP server.
    pub smtp_host: String,
    pub smtp_port: u16,
    /// E-mail: `starttls` (default), `tls` or `none`.
    pub smtp_tls: String,
    /// E-mail: sender address.
    pub from: String,
    /// E-mail: recipients.
    pub to: Vec<String>,
    /// E-mail: SMTP user (empty = no authentication).
    pub username: String,
    pub password: Secret,
    pub password_env: String,
    /// Channel that takes a notification this channel could not deliver before it expired
    /// (empty = none).
    pub fallback: String,
    /// File channel: the file each notification is appended to (one JSON line).
    pub path: String,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: String::new(),
            url: Secret::default(),
            url_env: String::new(),
            api_url: "https://api.github.com".into(),
            repo: String::new(),
            token: Secret::default(),
            token_env: String::new(),
            labels: vec!["telemesh-alert".into()],
            timeout_ms: 5_000,
            max_attempts: 6,
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            from: String::new(),
            to: Vec::new(),
            username: String::new(),
            password: Secret::default(),
            password_env: String::new(),
            fallback: String::new(),
            path: String::new(),
        }
    }
}

/// `[alerting]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingSettings {
    pub enabled: bool,
    /// Bearer token of the mutating alert endpoints (ack, resolve, postmortem); empty = those
    /// endpoints refuse every request.
    pub api_token: Secret,
    /// Link to the summary page put in every message.
    pub summary_url: String,
    pub group_wait_seconds: f64,
    pub group_interval_seconds: f64,
    pub repeat_interval_seconds: f64,
    /// Business minutes an alert may stay unacknowledged before it escalates.
    pub ack_deadline_minutes: f64,
    /// IANA time zone of the business hours.
    pub timezone: String,
    pub business_days: Vec<String>,
    pub business_start: String,
    pub business_end: String,
    /// Channels that receive escalations (e.g. the engineering manager); empty = the alert's own.
    pub escalation_channels: Vec<String>,
    /// Channels of staleness alerts; empty = every non-escalation channel.
    pub stale_channels: Vec<String>,
    pub rules: Vec<RuleSettings>,
    pub channels: Vec<ChannelSettings>,
    /// How often timers (group_wait, repeats, escalations, staleness) are checked.
    pub tick_ms: u64,
    /// Where `telemesh alert drill` records the drill (the incident-response service's
    /// activities endpoint); empty = not recorded.
    pub drill_record_url: String,
    /// Bearer token for `drill_record_url` (the incident-response service's
    /// `incident_response.api_token`).
    pub drill_record_token: Secret,
    /// A source silent for this many of its intervals after a newer instance of its service
    /// appeared is retired (its alerts resolve as departed); 0 = never. Keep it below
    /// `aggregator.stale_factor` so a rolling update does not page.
    pub retire_intervals: f64,
    /// The outbox retries a notification until it is delivered or this old, then gives up
    /// (and hands it to the channel's `fallback`).
    pub outbox_expire_seconds: f64,
    /// First wait between two attempts; doubles per attempt (with jitter) up to
    /// `retry_max_seconds`. A receiver's `Retry-After` (seconds or HTTP date) wins.
    pub retry_initial_seconds: f64,
    pub retry_max_seconds: f64,
    /// With several replicas: how often a follower tries to take the alerting leadership and
    /// the leader checks it still holds it (see docs/on-call.md).
    pub leader_poll_ms: u64,
    /// With several replicas: how often the leader reads the newest snapshot of every source
    /// from the journal (snapshots consumed by other replicas); 0 = off (one replica).
    pub journal_poll_seconds: f64,
    /// A consumer backlog above this many messages counts as lagging: staleness alerts are
    /// held and one cause alert fires.
    pub lag_hold_messages: u64,
    /// Without word of ingestion progress for this long (a journal write hanging before it
    /// fails), staleness alerts are held. Keep it below the shortest stale window.
    pub stall_hold_ms: u64,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            api_token: Secret::default(),
            summary_url: "http://127.0.0.1:8080/api/v1/summary?format=markdown".into(),
            group_wait_seconds: 5.0,
            group_interval_seconds: 300.0,
            repeat_interval_seconds: 4.0 * 3600.0,
            ack_deadline_minutes: 60.0,
            timezone: "UTC".into(),
            business_days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            business_start: "09:00".into(),
            business_end: "17:00".into(),
            escalation_channels: Vec::new(),
            stale_channels: Vec::new(),
            rules: vec![RuleSettings::default()],
            channels: Vec::new(),
            tick_ms: 250,
            drill_record_url: String::new(),
            drill_record_token: Secret::default(),
            retire_intervals: 2.0,
            outbox_expire_seconds: 24.0 * 3600.0,
            retry_initial_seconds: 0.5,
            retry_max_seconds: 300.0,
            leader_poll_ms: 1_000,
            journal_poll_seconds: 0.0,
            lag_hold_messages: 10_000,
            stall_hold_ms: 1_000,
        }
    }
}

/// The list-valued keys of `[alerting]`, for the config loader.
pub const LIST_KEYS: &[&str] = &[
    "alerting.business_days",
    "alerting.escalation_channels",
    "alerting.stale_channels",
];

fn seconds(key: &str, v: f64) -> Result<Duration, Invalid> {
    if v.is_finite() && v >= 0.0 {
        Ok(Duration::milliseconds((v * 1000.0) as i64))
    } else {
        Err(Invalid::new(
            key,
            format!("is {v}: set a finite number >= 0"),
        ))
    }
}

impl Section for AlertingSettings {
    fn name(&self) -> &'static str {
        "alerting"
    }

    fn list_keys() -> &'static [&'static str] {
        LIST_KEYS
    }

    /// Everything [`AlertingSettings::policy`] checks; the staleness inputs come from
    /// `[aggregator]`, which validates them itself.
    fn validate(&self) -> Result<(), Invalid> {
        self.policy(1.0, 1.0).map(|_| ())
    }
}

impl AlertingSettings {
    /// Names of the channels that take ordinary pages.
    pub fn default_channels(&self) -> Vec<String> {
        self.channels
            .iter()
            .map(|c| c.name.clone())
            .filter(|n| !self.escalation_channels.contains(n))
            .collect()
    }

    /// Validates and builds the engine policy.
    pub fn policy(
        &self,
        stale_factor: f64,
        default_interval_seconds: f64,
    ) -> Result<AlertPolicy, Invalid> {
        let calendar = calendar::BusinessCalendar::new(
            &self.timezone,
            &self.business_days,
            &self.business_start,
            &self.business_end,
        )
        .map_err(|e| Invalid::new(e.key(), e.detail()))?;
        let names: Vec<&str> = self.channels.iter().map(|c| c.name.as_str()).collect();
        for (i, c) in self.channels.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err(Invalid::new(
                    format!("alerting.channels[{i}].name"),
                    "is empty: give every channel a name",
                ));
            }
            if names[..i].contains(&c.name.as_str()) {
                return Err(Invalid::new(
                    format!("alerting.channels[{i}].name"),
                    format!("{:?} is used twice: give each channel its own name", c.name),
                ));
            }
            if !["slack", "webhook", "github", "email", "file"].contains(&c.kind.as_str()) {
                return Err(Invalid::new(
                    format!("alerting.channels[{i}].type"),
                    format!("{:?}: use slack, webhook, github, email or file", c.kind),
                ));
            }
            if c.kind == "email" && (c.smtp_host.is_empty() || c.from.is_empty() || c.to.is_empty())
            {
                let missing = [
                    ("smtp_host", c.smtp_host.is_empty()),
                    ("from", c.from.is_empty()),
                    ("to", c.to.is_empty()),
                ]
                .into_iter()
                .find(|(_, empty)| *empty)
                .map_or("smtp_host", |(field, _)| field);
                return Err(Invalid::new(
                    format!("alerting.channels[{i}].{missing}"),
                    "is empty: an email channel needs smtp_host, from and to",
                ));
            }
            if c.kind == "github" && c.repo.split('/').filter(|p| !p.is_empty()).count() != 2 {
                return Err(Invalid::new(
                    format!("alerting.channels[{i}].repo"),
                    format!("{:?}: write the repository as owner/name", c.repo),
                ));
            }
            if !c.fallback.is_empty()
                && (c.fallback == c.name || !names.contains(&c.fallback.as_str()))
            {
                return Err(Invalid::new(
                    format!("alerting.channels[{i}].fallback"),
                    format!("{:?}: name another configured channel", c.fallback),
                ));
            }
        }
        let check_names = |key: &str, list: &[String]| {
            list.iter()
                .find(|n| !names.contains(&n.as_str()))
                .map_or(Ok(()), |n| {
                    Err(Invalid::new(
                        key,
                        format!("unknown channel {n:?}: name a configured [[alerting.channels]]"),
                    ))
                })
        };
        check_names("alerting.escalation_channels", &self.escalation_channels)?;
        check_names("alerting.stale_channels", &self.stale_channels)?;
        let default_channels = self.default_channels();
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            check_names(&format!("alerting.rules[{i}].channels"), &r.channels)?;
            if let Some(problem) = r
                .kinds
                .iter()
                .find_map(|k| telemesh_core::topics::kind_problem(k))
            {
                return Err(Invalid::new(format!("alerting.rules[{i}].kinds"), problem));
            }
            let target = match r.target.as_str() {
                "snapshot" => engine::Target::Snapshot,
                "components" => engine::Target::Components(r.components.clone()),
                other => {
                    return Err(Invalid::new(
                        format!("alerting.rules[{i}].target"),
                        format!("{other:?}: use snapshot or components"),
                    ))
                }
            };
            if r.grade == Grade::Ok {
                return Err(Invalid::new(
                    format!("alerting.rules[{i}].grade"),
                    "is ok: use warn or fail",
                ));
            }
            rules.push(engine::Rule {
                name: if r.name.is_empty() {
                    format!("rule-{i}")
                } else {
                    r.name.clone()
                },
                kinds: r.kinds.clone(),
                target,
                grade: r.grade,
                channels: if r.channels.is_empty() {
                    default_channels.clone()
                } else {
                    r.channels.clone()
                },
                suppress: Duration::seconds(r.suppress_seconds as i64),
            });
        }
        if self.tick_ms == 0 {
            return Err(Invalid::new("alerting.tick_ms", "must be at least 1"));
        }
        if self.leader_poll_ms == 0 {
            return Err(Invalid::new(
                "alerting.leader_poll_ms",
                "must be at least 1",
            ));
        }
        seconds("alerting.retire_intervals", self.retire_intervals)?;
        seconds("alerting.journal_poll_seconds", self.journal_poll_seconds)?;
        self.outbox()?;
        Ok(AlertPolicy {
            rules,
            group_wait: seconds("alerting.group_wait_seconds", self.group_wait_seconds)?,
            group_interval: seconds(
                "alerting.group_interval_seconds",
                self.group_interval_seconds,
            )?,
            repeat_interval: seconds(
                "alerting.repeat_interval_seconds",
                self.repeat_interval_seconds,
            )?,
            ack_deadline: seconds(
                "alerting.ack_deadline_minutes",
                self.ack_deadline_minutes * 60.0,
            )?,
            calendar,
            escalation_channels: self.escalation_channels.clone(),
            stale_channels: if self.stale_channels.is_empty() {
                default_channels
            } else {
                self.stale_channels.clone()
            },
            stale_factor,
            default_interval_seconds,
            retire_intervals: self.retire_intervals,
        })
    }

    /// The outbox schedule, validated.
    pub fn outbox(&self) -> Result<dispatch::RetrySchedule, Invalid> {
        let to_std = |key: &str, v: f64| {
            seconds(key, v).map(|d| d.to_std().unwrap_or(std::time::Duration::ZERO))
        };
        let schedule = dispatch::RetrySchedule {
            initial: to_std("alerting.retry_initial_seconds", self.retry_initial_seconds)?,
            max: to_std("alerting.retry_max_seconds", self.retry_max_seconds)?,
            expire_after: to_std("alerting.outbox_expire_seconds", self.outbox_expire_seconds)?,
        };
        if schedule.initial.is_zero() || schedule.max < schedule.initial {
            return Err(Invalid::new(
                "alerting.retry_initial_seconds",
                "must be > 0 and <= alerting.retry_max_seconds",
            ));
        }
        Ok(schedule)
    }
}

#[cfg(test)]
mod section_tests {
    use super::*;

    fn channel(name: &str, kind: &str) -> ChannelSettings {
        ChannelSettings {
            name: name.into(),
            kind: kind.into(),
            ..ChannelSettings::default()
        }
    }

    /// Hostile `[alerting]` values, one at a time: each is rejected naming exactly its key.
    #[test]
    fn hostile_values_name_their_key() {
        assert_eq!(AlertingSettings::default().validate(), Ok(()));
        type Spoil = Box<dyn Fn(&mut AlertingSettings)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "alerting.timezone",
                Box::new(|s| s.timezone = "Mars/Olympus".into()),
            ),
            (
                "alerting.business_days",
                Box::new(|s| s.business_days = vec!["funday".into()]),
            ),
            (
                "alerting.business_start",
                Box::new(|s| s.business_start = "25:61".into()),
            ),
            (
                "alerting.business_end",
                Box::new(|s| s.business_end = "08:00".into()),
            ),
            (
                "alerting.channels[0].name",
                Box::new(|s| s.channels = vec![channel(" ", "slack")]),
            ),
            (
                "alerting.channels[1].name",
                Box::new(|s| s.channels = vec![channel("a", "slack"), channel("a", "slack")]),
            ),
            (
                "alerting.channels[0].type",
                Box::new(|s| s.channels = vec![channel("a", "pager")]),
            ),
            (
                "alerting.channels[0].smtp_host",
                Box::new(|s| s.channels = vec![channel("a", "email")]),
            ),
            (
                "alerting.channels[0].repo",
                Box::new(|s| s.channels = vec![channel("a", "github")]),
            ),
            (
                "alerting.channels[0].fallback",
                Box::new(|s| {
                    let mut c = channel("a", "slack");
                    c.fallback = "a".into();
                    s.channels = vec![c];
                }),
            ),
            (
                "alerting.escalation_channels",
                Box::new(|s| s.escalation_channels = vec!["nobody".into()]),
            ),
            (
                "alerting.stale_channels",
                Box::new(|s| s.stale_channels = vec!["nobody".into()]),
            ),
            (
                "alerting.rules[0].kinds",
                Box::new(|s| s.rules[0].kinds = vec!["telemetry.nope\u{0}".into()]),
            ),
            (
                "alerting.rules[0].target",
                Box::new(|s| s.rules[0].target = "everything".into()),
            ),
            (
                "alerting.rules[0].grade",
                Box::new(|s| s.rules[0].grade = Grade::Ok),
            ),
            ("alerting.tick_ms", Box::new(|s| s.tick_ms = 0)),
            (
                "alerting.leader_poll_ms",
                Box::new(|s| s.leader_poll_ms = 0),
            ),
            (
                "alerting.retire_intervals",
                Box::new(|s| s.retire_intervals = f64::NAN),
            ),
            (
                "alerting.journal_poll_seconds",
                Box::new(|s| s.journal_poll_seconds = -1.0),
            ),
            (
                "alerting.group_wait_seconds",
                Box::new(|s| s.group_wait_seconds = f64::INFINITY),
            ),
            (
                "alerting.retry_initial_seconds",
                Box::new(|s| s.retry_initial_seconds = 0.0),
            ),
            (
                "alerting.retry_initial_seconds",
                Box::new(|s| s.retry_max_seconds = 0.1),
            ),
        ];
        for (key, spoil) in cases {
            let mut s = AlertingSettings::default();
            spoil(&mut s);
            let err = s.validate().expect_err(key);
            assert_eq!(err.key, key, "{err}");
            assert!(
                !err.detail.starts_with(key),
                "the key is not repeated: {err}"
            );
        }
        let edge = AlertingSettings {
            journal_poll_seconds: 0.0,
            retry_max_seconds: 0.5,
            ..AlertingSettings::default()
        };
        assert_eq!(edge.validate(), Ok(()));
    }
}
