//! Owns the `[event_bus_health]` configuration section: the thresholds of DOMAINS.md §3.9,
//! extended to the Kafka producer and librdkafka's broker statistics.

use serde::{Deserialize, Serialize};

/// `[event_bus_health]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventBusSettings {
    /// Whether the domain runs beside the process's other domains. Default: true.
    pub enabled: bool,
    /// Seconds between two gathers. Default: 30.
    pub interval_seconds: u64,
    /// Whether the bus must be running: not running is then `fail`, else `warn`. Default: true.
    pub expected: bool,
    /// Messages queued at or above this is `warn`. Default: 100.
    pub queue_warn: u64,
    /// ... `fail`. Default: 500.
    pub queue_fail: u64,
    /// Queue depth over capacity at or above this is `warn`. Default: 0.5.
    pub queue_warn_ratio: f64,
    /// ... `fail`. Default: 0.9.
    pub queue_fail_ratio: f64,
    /// Messages dropped since the previous gather at or above this is `warn`. Default: 1.
    pub dropped_warn: u64,
    /// ... `fail`. Default: 5.
    pub dropped_fail: u64,
    /// Failed publishes since the previous gather at or above this is `warn`. Default: 1.
    pub delivery_errors_warn: u64,
    /// ... `fail`. Default: 5.
    pub delivery_errors_fail: u64,
    /// Dead-lettered messages since the previous gather at or above this is `warn`. Default: 1.
    pub handler_errors_warn: u64,
    /// ... `fail`. Default: 3.
    pub handler_errors_fail: u64,
    /// Broker request retries since the previous gather at or above this is `warn`. Default: 1.
    pub retries_warn: u64,
    /// ... `fail`. Default: 100.
    pub retries_fail: u64,
    /// Nothing published for longer than this many seconds is `warn`. Default: 300.
    pub idle_warn_seconds: u64,
    /// A broker's average round trip at or above this (ms) is `warn`. Default: 100.
    pub rtt_warn_ms: f64,
    /// ... `fail`. Default: 1000.
    pub rtt_fail_ms: f64,
    /// librdkafka statistics older than this many seconds are stale (`warn`). Default: 30.
    pub stats_stale_seconds: u64,
}

impl Default for EventBusSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 30,
            expected: true,
            queue_warn: 100,
            queue_fail: 500,
            queue_warn_ratio: 0.5,
            queue_fail_ratio: 0.9,
            dropped_warn: 1,
            dropped_fail: 5,
            delivery_errors_warn: 1,
            delivery_errors_fail: 5,
            handler_errors_warn: 1,
            handler_errors_fail: 3,
            retries_warn: 1,
            retries_fail: 100,
            idle_warn_seconds: 300,
            rtt_warn_ms: 100.0,
            rtt_fail_ms: 1000.0,
            stats_stale_seconds: 30,
        }
    }
}

/// An `[event_bus_health]` value that cannot work. The message starts with the dotted key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event_bus_health.{key} {detail}")]
pub struct SettingsError {
    pub key: &'static str,
    pub detail: String,
}

impl EventBusSettings {
    /// Rejects values that cannot work, naming the key and what to set instead.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let err = |key: &'static str, detail: &str| {
            Err(SettingsError {
                key,
                detail: detail.into(),
            })
        };
        if self.interval_seconds == 0 {
            return err("interval_seconds", "must be at least 1, e.g. 30");
        }
        for (key, warn, fail) in [
            ("queue_fail", self.queue_warn, self.queue_fail),
            ("dropped_fail", self.dropped_warn, self.dropped_fail),
            (
                "delivery_errors_fail",
                self.delivery_errors_warn,
                self.delivery_errors_fail,
            ),
            (
                "handler_errors_fail",
                self.handler_errors_warn,
                self.handler_errors_fail,
            ),
            ("retries_fail", self.retries_warn, self.retries_fail),
        ] {
            if warn == 0 || fail < warn {
                return err(
                    key,
                    "must be at least its warn_ twin, which must be at least 1",
                );
            }
        }
        let ratio = |v: f64| v > 0.0 && v <= 1.0;
        if !ratio(self.queue_warn_ratio)
            || !ratio(self.queue_fail_ratio)
            || self.queue_fail_ratio < self.queue_warn_ratio
        {
            return err(
                "queue_fail_ratio",
                "and queue_warn_ratio must be in (0, 1], fail at least warn",
            );
        }
        if !(self.rtt_warn_ms.is_finite()
            && self.rtt_warn_ms > 0.0
            && self.rtt_fail_ms.is_finite()
            && self.rtt_fail_ms >= self.rtt_warn_ms)
        {
            return err(
                "rtt_fail_ms",
                "must be a number at least rtt_warn_ms, which must be above 0",
            );
        }
        if self.idle_warn_seconds == 0 || self.stats_stale_seconds == 0 {
            return err(
                "idle_warn_seconds",
                "and stats_stale_seconds must be at least 1",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert_eq!(EventBusSettings::default().validate(), Ok(()));
        let bad = |f: fn(&mut EventBusSettings)| {
            let mut s = EventBusSettings::default();
            f(&mut s);
            s.validate().expect_err("invalid").key
        };
        assert_eq!(bad(|s| s.interval_seconds = 0), "interval_seconds");
        assert_eq!(bad(|s| s.queue_fail = 10), "queue_fail");
        assert_eq!(bad(|s| s.dropped_warn = 0), "dropped_fail");
        assert_eq!(bad(|s| s.queue_warn_ratio = 0.0), "queue_fail_ratio");
        assert_eq!(bad(|s| s.rtt_fail_ms = f64::INFINITY), "rtt_fail_ms");
        assert_eq!(bad(|s| s.stats_stale_seconds = 0), "idle_warn_seconds");
        assert!(toml::from_str::<EventBusSettings>("queue_warn = 5\nnope = 1").is_err());
        let s: EventBusSettings = toml::from_str("queue_warn = 5").unwrap();
        assert_eq!(s.queue_warn, 5);
    }
}
