//! Owns the `[cache_health]` configuration section: which Redis is watched and the thresholds
//! of DOMAINS.md §3.11, extended to what `INFO` tells (memory, clients, replication, latency).

use serde::{Deserialize, Serialize};
use telemesh_core::config::SecretUrl;

/// The replication role the watched Redis must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedRole {
    /// Either role; only a replica's link to its master is graded.
    Any,
    Master,
    Replica,
}

/// `[cache_health]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheHealthSettings {
    /// Whether the domain runs at all. Default: true.
    pub enabled: bool,
    /// `redis://[user:password@]host:port[/db]` of the cache (`redis+unix:///path` also
    /// works). Default: empty = not configured.
    pub url: SecretUrl,
    /// Whether the platform must have its Redis: not configured is then `fail` (the platform
    /// fell back to its in-memory cache), else `warn`. Default: true.
    pub expected: bool,
    /// The cache's key namespace, shown in the snapshot. Default: `emp:cache`.
    pub namespace: String,
    /// Seconds between two probes. Default: 30.
    pub interval_seconds: u64,
    /// Connect / command timeout in milliseconds. Default: 2000.
    pub timeout_ms: u64,
    /// Hit rate below this with at least `warn_min_misses` misses is `warn`. Default: 0.25.
    pub warn_hit_rate: f64,
    /// Hit rate below this with at least `fail_min_misses` misses is `fail`. Default: 0.10.
    pub fail_hit_rate: f64,
    /// Default: 5.
    pub warn_min_misses: u64,
    /// Default: 20.
    pub fail_min_misses: u64,
    /// `used_memory / maxmemory` at or above this is `warn`. Default: 0.85.
    pub warn_memory_ratio: f64,
    /// Same, `fail`. Default: 0.95.
    pub fail_memory_ratio: f64,
    /// Evicted keys since the previous probe at or above this is `warn`. Default: 1.
    pub warn_evictions: u64,
    /// Same, `fail`. Default: 1000.
    pub fail_evictions: u64,
    /// `connected_clients / maxclients` at or above this is `warn`. Default: 0.80.
    pub warn_clients_ratio: f64,
    /// Same, `fail`. Default: 0.95.
    pub fail_clients_ratio: f64,
    /// `PING` round trip at or above this (milliseconds) is `warn`. Default: 50.
    pub warn_ping_ms: f64,
    /// Same, `fail`. Default: 500.
    pub fail_ping_ms: f64,
    /// The role the server must have. Default: `any`.
    pub role: ExpectedRole,
    /// A master with fewer connected replicas is `warn`. Default: 0.
    pub min_replicas: u64,
}

impl Default for CacheHealthSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            url: SecretUrl::default(),
            expected: true,
            namespace: "emp:cache".into(),
            interval_seconds: 30,
            timeout_ms: 2000,
            warn_hit_rate: 0.25,
            fail_hit_rate: 0.10,
            warn_min_misses: 5,
            fail_min_misses: 20,
            warn_memory_ratio: 0.85,
            fail_memory_ratio: 0.95,
            warn_evictions: 1,
            fail_evictions: 1000,
            warn_clients_ratio: 0.80,
            fail_clients_ratio: 0.95,
            warn_ping_ms: 50.0,
            fail_ping_ms: 500.0,
            role: ExpectedRole::Any,
            min_replicas: 0,
        }
    }
}

/// A `[cache_health]` value that cannot work. The message starts with the dotted key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cache_health.{key} {detail}")]
pub struct SettingsError {
    pub key: &'static str,
    pub detail: String,
}

fn invalid(key: &'static str, detail: impl Into<String>) -> SettingsError {
    SettingsError {
        key,
        detail: detail.into(),
    }
}

impl CacheHealthSettings {
    /// Rejects values that cannot work, naming the key and what to set instead.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.interval_seconds == 0 {
            return Err(invalid("interval_seconds", "must be at least 1, e.g. 30"));
        }
        if self.timeout_ms == 0 {
            return Err(invalid("timeout_ms", "must be at least 1, e.g. 2000"));
        }
        let url = self.url.expose().trim();
        if !(url.is_empty() || url.starts_with("redis://") || url.starts_with("redis+unix://")) {
            return Err(invalid(
                "url",
                "must start with redis:// or redis+unix:// (TLS rediss:// is not supported: reach the cache through a TLS sidecar)",
            ));
        }
        for (key, warn, fail) in [
            ("fail_hit_rate", self.warn_hit_rate, self.fail_hit_rate),
            (
                "fail_memory_ratio",
                self.warn_memory_ratio,
                self.fail_memory_ratio,
            ),
            (
                "fail_clients_ratio",
                self.warn_clients_ratio,
                self.fail_clients_ratio,
            ),
        ] {
            if !(0.0..=1.0).contains(&warn) || !(0.0..=1.0).contains(&fail) {
                return Err(invalid(
                    key,
                    "and its warn_ twin must be ratios between 0 and 1",
                ));
            }
        }
        if self.fail_hit_rate > self.warn_hit_rate {
            return Err(invalid("fail_hit_rate", "must not be above warn_hit_rate"));
        }
        if self.fail_memory_ratio < self.warn_memory_ratio {
            return Err(invalid(
                "fail_memory_ratio",
                "must not be below warn_memory_ratio",
            ));
        }
        if self.fail_clients_ratio < self.warn_clients_ratio {
            return Err(invalid(
                "fail_clients_ratio",
                "must not be below warn_clients_ratio",
            ));
        }
        if self.fail_evictions < self.warn_evictions || self.warn_evictions == 0 {
            return Err(invalid(
                "fail_evictions",
                "must be at least warn_evictions, which must be at least 1",
            ));
        }
        if !(self.warn_ping_ms.is_finite()
            && self.warn_ping_ms > 0.0
            && self.fail_ping_ms.is_finite()
            && self.fail_ping_ms >= self.warn_ping_ms)
        {
            return Err(invalid(
                "fail_ping_ms",
                "must be a number at least warn_ping_ms, which must be above 0",
            ));
        }
        Ok(())
    }

    /// Whether a Redis URL is set.
    pub fn is_configured(&self) -> bool {
        !self.url.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert_eq!(CacheHealthSettings::default().validate(), Ok(()));
        let bad = |f: fn(&mut CacheHealthSettings)| {
            let mut s = CacheHealthSettings::default();
            f(&mut s);
            s.validate().expect_err("invalid").key
        };
        assert_eq!(bad(|s| s.interval_seconds = 0), "interval_seconds");
        assert_eq!(bad(|s| s.timeout_ms = 0), "timeout_ms");
        assert_eq!(bad(|s| s.url = SecretUrl::new("rediss://h:6380")), "url");
        assert_eq!(bad(|s| s.url = SecretUrl::new("http://h")), "url");
        assert_eq!(bad(|s| s.fail_hit_rate = 0.5), "fail_hit_rate");
        assert_eq!(bad(|s| s.warn_memory_ratio = 1.5), "fail_memory_ratio");
        assert_eq!(bad(|s| s.fail_memory_ratio = 0.5), "fail_memory_ratio");
        assert_eq!(bad(|s| s.fail_clients_ratio = 0.1), "fail_clients_ratio");
        assert_eq!(bad(|s| s.warn_evictions = 0), "fail_evictions");
        assert_eq!(bad(|s| s.fail_ping_ms = f64::NAN), "fail_ping_ms");
    }

    #[test]
    fn the_section_reads_from_toml() {
        let s: CacheHealthSettings =
            toml::from_str("url = \"redis://:pw@127.0.0.1:6379/0\"\nrole = \"replica\"\n")
                .expect("valid toml");
        assert!(s.is_configured());
        assert_eq!(s.role, ExpectedRole::Replica);
        assert!(!format!("{s:?}").contains("pw@"));
        assert!(toml::from_str::<CacheHealthSettings>("nope = 1").is_err());
    }
}
