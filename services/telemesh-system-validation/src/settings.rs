//! Owns the `[system_validation]` configuration section: where the report comes from (a
//! file, an HTTP upload, or both), when it is stale, and the reliability thresholds of
//! DOMAINS.md §3.10.3.

use serde::{Deserialize, Serialize};
use telemesh_core::config::Secret;

/// `[system_validation]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SystemValidationSettings {
    /// Whether the domain runs at all. Default: true.
    pub enabled: bool,
    /// The report file an external validation run writes. Default: empty (no file).
    pub report_path: String,
    /// Bearer token of `POST /api/v1/system-validation/report`. Default: empty (uploads
    /// refused). With neither a path nor a token the domain is not configured.
    pub api_token: Secret,
    /// Seconds between two gathers (re-reading the file). Default: 60.
    pub interval_seconds: u64,
    /// A report older than this many hours is `warn`. Default: 24.
    pub warn_stale_hours: f64,
    /// ... `fail`. Default: 48.
    pub fail_stale_hours: f64,
    /// Average success rate over the window below this is `warn`. Default: 0.95.
    pub warn_success_rate: f64,
    /// ... `fail`. Default: 0.85.
    pub fail_success_rate: f64,
    /// This many consecutive failed reports (newest first) is `warn`. Default: 1.
    pub warn_fail_streak: u32,
    /// ... `fail`. Default: 2.
    pub fail_fail_streak: u32,
    /// This many consecutive `warn` reports (and no failed one) is `warn`. Default: 2.
    pub warn_warn_streak: u32,
    /// Reports within this many hours count for the average. Default: 72.
    pub window_hours: f64,
    /// How many earlier reports are remembered for streaks and the average. Default: 50.
    pub history_limit: usize,
}

impl Default for SystemValidationSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            report_path: String::new(),
            api_token: Secret::default(),
            interval_seconds: 60,
            warn_stale_hours: 24.0,
            fail_stale_hours: 48.0,
            warn_success_rate: 0.95,
            fail_success_rate: 0.85,
            warn_fail_streak: 1,
            fail_fail_streak: 2,
            warn_warn_streak: 2,
            window_hours: 72.0,
            history_limit: 50,
        }
    }
}

/// A `[system_validation]` value that cannot work. The message starts with the dotted key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("system_validation.{key} {detail}")]
pub struct SettingsError {
    pub key: &'static str,
    pub detail: String,
}

fn invalid(key: &'static str, detail: &str) -> SettingsError {
    SettingsError {
        key,
        detail: detail.into(),
    }
}

impl SystemValidationSettings {
    /// Rejects values that cannot work, naming the key and what to set instead.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.interval_seconds == 0 {
            return Err(invalid("interval_seconds", "must be at least 1, e.g. 60"));
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.warn_stale_hours) || !positive(self.fail_stale_hours) {
            return Err(invalid(
                "warn_stale_hours",
                "and fail_stale_hours must be above 0, e.g. 24 and 48",
            ));
        }
        if self.fail_stale_hours < self.warn_stale_hours {
            return Err(invalid(
                "fail_stale_hours",
                "must not be below warn_stale_hours",
            ));
        }
        let ratio = |v: f64| (0.0..=1.0).contains(&v);
        if !ratio(self.warn_success_rate) || !ratio(self.fail_success_rate) {
            return Err(invalid(
                "warn_success_rate",
                "and fail_success_rate must be ratios between 0 and 1",
            ));
        }
        if self.fail_success_rate > self.warn_success_rate {
            return Err(invalid(
                "fail_success_rate",
                "must not be above warn_success_rate",
            ));
        }
        if self.warn_fail_streak == 0
            || self.fail_fail_streak < self.warn_fail_streak
            || self.warn_warn_streak == 0
        {
            return Err(invalid(
                "fail_fail_streak",
                "must be at least warn_fail_streak; both streaks and warn_warn_streak at least 1",
            ));
        }
        if !positive(self.window_hours) {
            return Err(invalid("window_hours", "must be above 0, e.g. 72"));
        }
        if self.history_limit == 0 || self.history_limit > 10_000 {
            return Err(invalid(
                "history_limit",
                "must be between 1 and 10000, e.g. 50",
            ));
        }
        Ok(())
    }

    /// Whether a report can arrive at all (a file path or an upload token).
    pub fn is_configured(&self) -> bool {
        !self.report_path.trim().is_empty() || !self.api_token.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        let d = SystemValidationSettings::default();
        assert_eq!(d.validate(), Ok(()));
        assert!(!d.is_configured());
        let bad = |f: fn(&mut SystemValidationSettings)| {
            let mut s = SystemValidationSettings::default();
            f(&mut s);
            s.validate().expect_err("invalid").key
        };
        assert_eq!(bad(|s| s.interval_seconds = 0), "interval_seconds");
        assert_eq!(bad(|s| s.warn_stale_hours = f64::NAN), "warn_stale_hours");
        assert_eq!(bad(|s| s.fail_stale_hours = 1.0), "fail_stale_hours");
        assert_eq!(bad(|s| s.warn_success_rate = 95.0), "warn_success_rate");
        assert_eq!(bad(|s| s.fail_success_rate = 0.99), "fail_success_rate");
        assert_eq!(bad(|s| s.fail_fail_streak = 0), "fail_fail_streak");
        assert_eq!(bad(|s| s.window_hours = 0.0), "window_hours");
        assert_eq!(bad(|s| s.history_limit = 0), "history_limit");
    }

    #[test]
    fn the_section_reads_from_toml_and_hides_the_token() {
        let s: SystemValidationSettings =
            toml::from_str("report_path = \"/var/run/sysval.json\"\napi_token = \"s3cret\"\n")
                .unwrap();
        assert!(s.is_configured());
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(toml::from_str::<SystemValidationSettings>("nope = 1").is_err());
    }
}
