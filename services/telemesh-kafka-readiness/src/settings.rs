//! Owns the `[kafka_readiness]` configuration section and the clamped [`ReadinessPolicy`]
//! derived from it (DOMAINS.md §3.1.2, with the defaults of issue #2).

use serde::{Deserialize, Serialize};
use telemesh_core::config::{Invalid, Section};
use telemesh_core::topics;

/// The list-valued keys of `[kafka_readiness]`, for the config loader (comma lists in env).
pub const LIST_KEYS: &[&str] = &["kafka_readiness.topics", "kafka_readiness.consumer_groups"];

/// `[kafka_readiness]`: what the Kafka readiness service checks and its thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadinessSettings {
    /// Whether the service probes and publishes at all. Default: true.
    pub enabled: bool,
    /// Seconds between two probes. Default: 30.
    pub interval_seconds: u64,
    /// A consumer group whose total lag is strictly above this is `warn`. Default: 1000.
    pub warn_lag_messages: u64,
    /// A consumer group whose total lag is strictly above this is `fail`. Default: 10000;
    /// raised to `warn_lag_messages` when lower.
    pub fail_lag_messages: u64,
    /// A lag measurement older than this, or a lagging group whose committed offsets have not
    /// moved for longer than this, is `warn`. Default: 600.
    pub warn_stale_seconds: f64,
    /// Same as `warn_stale_seconds`, for `fail`. Default: 1800; raised to
    /// `warn_stale_seconds` when lower.
    pub fail_stale_seconds: f64,
    /// How many telemetry topics must have received messages within the window. Default: 1;
    /// 0 makes publishers optional.
    pub min_publishers: u32,
    /// The window, in seconds, in which a topic must have received a message to count as an
    /// active publisher. Default: 900.
    pub publisher_window_seconds: u64,
    /// Whether a missing expected topic (or an empty topic list) is `fail`. Default: true.
    pub require_topics: bool,
    /// Whether consumer lag must be measurable (a group with committed offsets). Default: false.
    pub require_consumer: bool,
    /// Expected topics, without the `[kafka] topic_prefix` (the probe applies it). Default:
    /// every snapshot kind plus the dead-letter topic.
    pub topics: Vec<String>,
    /// Fewest partitions an expected topic should have (fewer is `warn`). Default: 1.
    pub min_partitions: i32,
    /// Consumer groups whose lag is measured. Default: empty, meaning `[kafka] group_id` (the
    /// aggregator's group).
    pub consumer_groups: Vec<String>,
    /// Whether missing expected topics are created. Default: false.
    pub provision_topics: bool,
    /// Partitions of a provisioned topic. Default: 3.
    pub provision_partitions: i32,
    /// Replication factor of a provisioned topic. Default: 1.
    pub provision_replication_factor: i32,
}

impl Default for ReadinessSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 30,
            warn_lag_messages: 1_000,
            fail_lag_messages: 10_000,
            warn_stale_seconds: 600.0,
            fail_stale_seconds: 1_800.0,
            min_publishers: 1,
            publisher_window_seconds: 900,
            require_topics: true,
            require_consumer: false,
            topics: default_topics(),
            min_partitions: 1,
            consumer_groups: Vec::new(),
            provision_topics: false,
            provision_partitions: 3,
            provision_replication_factor: 1,
        }
    }
}

/// Every snapshot kind plus the dead-letter topic, without prefix.
pub fn default_topics() -> Vec<String> {
    topics::SNAPSHOT_KINDS
        .iter()
        .chain(std::iter::once(&topics::DLQ))
        .map(|t| (*t).to_owned())
        .collect()
}

fn invalid(key: &str, detail: impl Into<String>) -> Invalid {
    Invalid::new(format!("kafka_readiness.{key}"), detail)
}

impl Section for ReadinessSettings {
    fn name(&self) -> &'static str {
        "kafka_readiness"
    }

    fn list_keys() -> &'static [&'static str] {
        LIST_KEYS
    }

    /// Rejects values that cannot work, naming the key. Inverted thresholds are not errors:
    /// they are clamped by [`ReadinessSettings::policy`].
    fn validate(&self) -> Result<(), Invalid> {
        self.check()
    }
}

impl ReadinessSettings {
    fn check(&self) -> Result<(), Invalid> {
        if self.interval_seconds == 0 {
            return Err(invalid(
                "interval_seconds",
                "must be at least 1: set how often Kafka is probed, e.g. 30",
            ));
        }
        if self.publisher_window_seconds == 0 {
            return Err(invalid(
                "publisher_window_seconds",
                "must be at least 1: set how recent a message must be to count, e.g. 900",
            ));
        }
        for (key, value) in [
            ("warn_stale_seconds", self.warn_stale_seconds),
            ("fail_stale_seconds", self.fail_stale_seconds),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(invalid(
                    key,
                    format!("is {value}: set a finite number of seconds >= 0"),
                ));
            }
        }
        for (key, value) in [
            ("min_partitions", self.min_partitions),
            ("provision_partitions", self.provision_partitions),
            (
                "provision_replication_factor",
                self.provision_replication_factor,
            ),
        ] {
            if value < 1 {
                return Err(invalid(key, format!("is {value}: set it to at least 1")));
            }
        }
        if self
            .topics
            .iter()
            .any(|t| t.trim().contains(char::is_whitespace))
        {
            return Err(invalid(
                "topics",
                "holds a name with spaces inside: Kafka topic names cannot contain whitespace",
            ));
        }
        Ok(())
    }

    /// The thresholds the evaluator applies: fail thresholds raised to at least the warn ones,
    /// negative or non-finite staleness treated as 0.
    pub fn policy(&self) -> ReadinessPolicy {
        let warn_stale = finite_non_negative(self.warn_stale_seconds);
        let fail_stale = finite_non_negative(self.fail_stale_seconds).max(warn_stale);
        let warn_lag = i64::try_from(self.warn_lag_messages).unwrap_or(i64::MAX);
        let fail_lag = i64::try_from(self.fail_lag_messages)
            .unwrap_or(i64::MAX)
            .max(warn_lag);
        ReadinessPolicy {
            interval_seconds: self.interval_seconds,
            warn_lag_messages: warn_lag,
            fail_lag_messages: fail_lag,
            warn_stale_seconds: warn_stale,
            fail_stale_seconds: fail_stale,
            min_publishers: self.min_publishers as usize,
            publisher_window_seconds: self.publisher_window_seconds,
            require_topics: self.require_topics,
            require_consumer: self.require_consumer,
            min_partitions: self.min_partitions.max(1),
            provision_topics: self.provision_topics,
        }
    }

    /// The expected topics without prefix: trimmed, blanks and duplicates dropped, first-seen
    /// order kept.
    pub fn normalized_topics(&self) -> Vec<String> {
        normalize(&self.topics)
    }

    /// The consumer groups to measure: the configured ones (normalised like topics), else
    /// `aggregator_group` when it is not blank.
    pub fn groups(&self, aggregator_group: &str) -> Vec<String> {
        let groups = normalize(&self.consumer_groups);
        if groups.is_empty() {
            normalize(&[aggregator_group.to_owned()])
        } else {
            groups
        }
    }
}

fn finite_non_negative(v: f64) -> f64 {
    if v.is_finite() {
        v.max(0.0)
    } else {
        0.0
    }
}

/// Trims, drops blanks and duplicates, keeps the first-seen order.
pub fn normalize(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let item = item.trim();
        if !item.is_empty() && !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

/// The clamped thresholds and switches [`evaluate()`](crate::evaluate()) grades with.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadinessPolicy {
    /// Seconds between probes, stated in each snapshot (`interval_seconds` metric) so the
    /// aggregator knows when this source is stale.
    pub interval_seconds: u64,
    pub warn_lag_messages: i64,
    /// Always >= `warn_lag_messages`.
    pub fail_lag_messages: i64,
    pub warn_stale_seconds: f64,
    /// Always >= `warn_stale_seconds`.
    pub fail_stale_seconds: f64,
    pub min_publishers: usize,
    pub publisher_window_seconds: u64,
    pub require_topics: bool,
    pub require_consumer: bool,
    pub min_partitions: i32,
    pub provision_topics: bool,
}

impl Default for ReadinessPolicy {
    fn default() -> Self {
        ReadinessSettings::default().policy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = ReadinessSettings::default();
        assert!(s.enabled);
        assert_eq!(s.interval_seconds, 30);
        assert_eq!((s.warn_lag_messages, s.fail_lag_messages), (1_000, 10_000));
        assert_eq!(
            (s.warn_stale_seconds, s.fail_stale_seconds),
            (600.0, 1_800.0)
        );
        assert_eq!((s.min_publishers, s.publisher_window_seconds), (1, 900));
        assert!(s.require_topics && !s.require_consumer && !s.provision_topics);
        assert_eq!(s.topics.len(), topics::SNAPSHOT_KINDS.len() + 1);
        assert!(s.topics.iter().any(|t| t == topics::DLQ));
        assert!(s.topics.iter().all(|t| !t.starts_with('.')));
        assert_eq!(
            (
                s.min_partitions,
                s.provision_partitions,
                s.provision_replication_factor
            ),
            (1, 3, 1)
        );
        assert!(s.consumer_groups.is_empty());
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn fail_thresholds_are_clamped_to_warn() {
        let s = ReadinessSettings {
            warn_lag_messages: 50,
            fail_lag_messages: 10,
            warn_stale_seconds: 100.0,
            fail_stale_seconds: 5.0,
            ..ReadinessSettings::default()
        };
        let p = s.policy();
        assert_eq!((p.warn_lag_messages, p.fail_lag_messages), (50, 50));
        assert_eq!((p.warn_stale_seconds, p.fail_stale_seconds), (100.0, 100.0));
    }

    #[test]
    fn impossible_values_name_their_key() {
        let cases: Vec<(ReadinessSettings, &str)> = vec![
            (
                ReadinessSettings {
                    interval_seconds: 0,
                    ..Default::default()
                },
                "interval_seconds",
            ),
            (
                ReadinessSettings {
                    publisher_window_seconds: 0,
                    ..Default::default()
                },
                "publisher_window_seconds",
            ),
            (
                ReadinessSettings {
                    warn_stale_seconds: -1.0,
                    ..Default::default()
                },
                "warn_stale_seconds",
            ),
            (
                ReadinessSettings {
                    fail_stale_seconds: f64::NAN,
                    ..Default::default()
                },
                "fail_stale_seconds",
            ),
            (
                ReadinessSettings {
                    min_partitions: 0,
                    ..Default::default()
                },
                "min_partitions",
            ),
            (
                ReadinessSettings {
                    provision_partitions: 0,
                    ..Default::default()
                },
                "provision_partitions",
            ),
            (
                ReadinessSettings {
                    provision_replication_factor: -1,
                    ..Default::default()
                },
                "provision_replication_factor",
            ),
            (
                ReadinessSettings {
                    topics: vec!["a b".into()],
                    ..Default::default()
                },
                "topics",
            ),
        ];
        for (settings, key) in cases {
            let err = settings.validate().expect_err(key);
            assert_eq!(err.key, format!("kafka_readiness.{key}"));
            assert!(
                err.to_string()
                    .contains(&format!("`kafka_readiness.{key}`")),
                "{err}"
            );
        }
    }

    #[test]
    fn topics_and_groups_are_normalised() {
        let s = ReadinessSettings {
            topics: vec![" a ".into(), "".into(), "b".into(), "a".into()],
            ..Default::default()
        };
        assert_eq!(s.normalized_topics(), vec!["a", "b"]);
        assert_eq!(s.groups("agg"), vec!["agg"]);
        assert!(s.groups(" ").is_empty());
        let s = ReadinessSettings {
            consumer_groups: vec!["g1".into(), " g1".into(), "g2".into()],
            ..Default::default()
        };
        assert_eq!(s.groups("agg"), vec!["g1", "g2"]);
    }

    #[test]
    fn section_parses_with_unknown_keys_rejected() {
        let s: ReadinessSettings =
            toml::from_str("warn_lag_messages = 5\ntopics = [\"x\"]\n").expect("parse");
        assert_eq!(s.warn_lag_messages, 5);
        assert_eq!(s.topics, vec!["x"]);
        assert_eq!(s.interval_seconds, 30);
        assert!(toml::from_str::<ReadinessSettings>("warn_lag = 5\n").is_err());
    }
}
