//! Owns the `[fix_pilot]` configuration section (with `[fix_pilot.trading]` and
//! `[fix_pilot.dropcopy]`), its validation, and the policies derived from it.

use serde::{Deserialize, Serialize};
use telemesh_core::config::{Invalid, Section};

use crate::fixed::Fixed;
use crate::reconciler::ReconPolicy;
use crate::report::tags;

/// The longest `session_wait_seconds`: well inside Kafka's default `max.poll.interval.ms`
/// (300 s), which a request waiting for the session holds the consumer for.
pub const MAX_SESSION_WAIT_SECONDS: f64 = 240.0;

/// The list-valued keys of `[fix_pilot]`, for the config loader (comma lists in env).
pub const LIST_KEYS: &[&str] = &["fix_pilot.other_sessions"];

/// Where our side of the executions comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionsSource {
    /// The pilot is the order gateway: our side is its trading session, and it publishes the
    /// execution reports it receives on `executions_topic`.
    #[default]
    Fix,
    /// The platform keeps its own gateway and publishes its execution reports (JSON, the
    /// `ExecReport` schema) on `executions_topic`; the pilot runs no trading session.
    Kafka,
}

/// One FIX 4.4 initiator session. It is configured when `port` is not 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Venue host. Default: 127.0.0.1.
    pub host: String,
    /// Venue port; 0 means the session is not configured. Default: 0.
    pub port: u16,
    /// Our SenderCompID (49).
    pub sender_comp_id: String,
    /// The venue's TargetCompID (56).
    pub target_comp_id: String,
    /// HeartBtInt (108) we propose at logon, seconds. Default: 30.
    pub heartbeat_interval_seconds: u64,
    /// Directory of the sequence-number and message store (one subdirectory per session).
    /// Default: `telemesh-data/fix`.
    pub store_dir: String,
    /// Seconds between reconnect attempts. Default: 5.
    pub reconnect_interval_seconds: u64,
    /// Seconds to wait for the venue's Logon. Default: 10.
    pub logon_timeout_seconds: u64,
    /// Reset sequence numbers at every logon (141=Y). Default: false.
    pub reset_on_logon: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            sender_comp_id: String::new(),
            target_comp_id: String::new(),
            heartbeat_interval_seconds: 30,
            store_dir: "telemesh-data/fix".into(),
            reconnect_interval_seconds: 5,
            logon_timeout_seconds: 10,
            reset_on_logon: false,
        }
    }
}

impl SessionSettings {
    pub fn is_configured(&self) -> bool {
        self.port != 0
    }

    /// `SENDER->TARGET@host:port`, for logs and telemetry.
    pub fn describe(&self) -> String {
        format!(
            "{}->{}@{}:{}",
            self.sender_comp_id, self.target_comp_id, self.host, self.port
        )
    }

    fn check(&self, section: &'static str) -> Result<(), Invalid> {
        if !self.is_configured() {
            return Ok(());
        }
        let e = |key: &'static str, detail: &str| {
            Err(Invalid::new(format!("fix_pilot.{section}.{key}"), detail))
        };
        if self.host.trim().is_empty() {
            return e("host", "is empty: set the venue host, e.g. 127.0.0.1");
        }
        if self.sender_comp_id.trim().is_empty() {
            return e(
                "sender_comp_id",
                "is empty: set our SenderCompID as the venue knows it",
            );
        }
        if self.target_comp_id.trim().is_empty() {
            return e("target_comp_id", "is empty: set the venue's CompID");
        }
        if self.heartbeat_interval_seconds == 0 {
            return e("heartbeat_interval_seconds", "must be at least 1, e.g. 30");
        }
        if self.reconnect_interval_seconds == 0 {
            return e("reconnect_interval_seconds", "must be at least 1, e.g. 5");
        }
        if self.logon_timeout_seconds == 0 {
            return e("logon_timeout_seconds", "must be at least 1, e.g. 10");
        }
        if self.store_dir.trim().is_empty() {
            return e(
                "store_dir",
                "is empty: set a writable directory for the sequence store",
            );
        }
        Ok(())
    }
}

/// `[fix_pilot]`: the FIX pilot service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FixPilotSettings {
    /// Whether the service runs at all. Default: true.
    pub enabled: bool,
    /// Seconds between two snapshots. Default: 10.
    pub interval_seconds: u64,
    /// `fix` (the pilot is the gateway) or `kafka` (the platform's gateway feeds its execution
    /// reports). Default: fix.
    pub executions_source: ExecutionsSource,
    /// Order requests (JSON NewOrderSingle / cancel) the pilot sends on the trading session,
    /// without the `[kafka] topic_prefix`. Default: `execution.orders`.
    pub orders_topic: String,
    /// Execution reports: published by the pilot (source `fix`) or consumed (source `kafka`).
    /// Default: `execution.reports`.
    pub executions_topic: String,
    /// Consumer group for `orders_topic` / `executions_topic`. Default: `telemesh-fix-pilot`.
    pub consumer_group: String,
    pub trading: SessionSettings,
    pub dropcopy: SessionSettings,
    /// Coverage seconds one side may wait for the other before it is a break. Default: 5.
    pub grace_seconds: f64,
    /// Coverage seconds after which an open missing / one-sided break is `fail`. Default: 300.
    pub escalate_seconds: f64,
    /// Seconds of incomplete coverage after which `degraded` is `fail`. Default: 900.
    pub degraded_fail_seconds: f64,
    /// Price tick. Default: 0.0001.
    pub tick_size: Fixed,
    /// LastPx/AvgPx may differ by this many ticks and still match. Default: 1.
    pub price_tolerance_ticks: u32,
    /// Match acks, cancels and replaces too, not only trades, busts and corrections.
    /// Default: true.
    pub match_order_events: bool,
    /// Drop-copy sources that are other sessions of ours. Default: none.
    pub other_sessions: Vec<String>,
    /// The tag naming an execution's originating session on the drop copy. Default: 115
    /// (OnBehalfOfCompID).
    pub source_tag: u32,
    /// Recent breaks listed in the dropcopy snapshot. Default: 10.
    pub recent_breaks: usize,
    /// Whether a missing drop-copy configuration is `fail` (else it is reported). Default:
    /// false. A configured drop copy that is down is `warn` either way.
    pub require_dropcopy: bool,
    /// Inbound messages dropped (queue full) above this are `warn`. Default: 0.
    pub max_queue_drops: u64,
    /// Inbound messages waiting to be processed above this are `warn`. Default: 1000.
    pub max_inbound_backlog: u64,
    /// Orders waiting to be sent above this are `warn`. Default: 100.
    pub max_outbound_pending: u64,
    /// Drop-copy lag above this is `warn`. Default: 30.
    pub max_dropcopy_lag_seconds: f64,
    /// An order waiting for the venue (pending new/cancel/replace) longer than this is
    /// `warn`. Default: 60.
    pub stuck_order_seconds: f64,
    /// A rejected (malformed) message within this many seconds is `warn`. Default: 900.
    pub reject_warn_seconds: f64,
    /// No message from the venue for more than this many heartbeat intervals is `warn`.
    /// Default: 2.5.
    pub heartbeat_grace_factor: f64,
    /// Time of day (UTC, `HH:MM`) at which a new trading day starts: ExecIDs are unique per
    /// day only, so matching starts over and closed orders are forgotten. Default: empty,
    /// never (restart the service between trading days).
    pub day_roll_utc: String,
    /// Where the gateway answers every order request: `sent` or `rejected` with a reason
    /// (JSON, `docs/fix-pilot.md`), without the `[kafka] topic_prefix`. Default:
    /// `execution.order_events`.
    pub order_events_topic: String,
    /// An order request older than this (from its `created_at`, else its Kafka timestamp)
    /// when it would be sent is rejected (`aged`), never sent. Default: 30.
    pub max_request_age_seconds: f64,
    /// How long a request waits for the trading session to be logged on before it is
    /// rejected (`no_session`). Meanwhile the next requests wait behind it. Default: 10.
    pub session_wait_seconds: f64,
    /// Directory of the gateway's ClOrdID journal (`cl_ord_ids.jsonl`, fsync'd before each
    /// send): duplicates are refused across restarts. Keep it on persistent storage next to
    /// the sequence store. Default: `telemesh-data/fix-gateway`.
    pub gateway_store_dir: String,
    /// `[fix_pilot.execution]`: execution readiness thresholds
    /// (`telemetry.operational.execution`).
    pub execution: crate::execution::ExecutionPolicy,
}

impl Default for FixPilotSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 10,
            executions_source: ExecutionsSource::Fix,
            orders_topic: "execution.orders".into(),
            executions_topic: "execution.reports".into(),
            consumer_group: "telemesh-fix-pilot".into(),
            trading: SessionSettings::default(),
            dropcopy: SessionSettings::default(),
            grace_seconds: 5.0,
            escalate_seconds: 300.0,
            degraded_fail_seconds: 900.0,
            tick_size: Fixed::from_units(10_000),
            price_tolerance_ticks: 1,
            match_order_events: true,
            other_sessions: Vec::new(),
            source_tag: tags::ON_BEHALF_OF_COMP_ID,
            recent_breaks: 10,
            require_dropcopy: false,
            max_queue_drops: 0,
            max_inbound_backlog: 1_000,
            max_outbound_pending: 100,
            max_dropcopy_lag_seconds: 30.0,
            stuck_order_seconds: 60.0,
            reject_warn_seconds: 900.0,
            heartbeat_grace_factor: 2.5,
            day_roll_utc: String::new(),
            order_events_topic: "execution.order_events".into(),
            max_request_age_seconds: 30.0,
            session_wait_seconds: 10.0,
            gateway_store_dir: "telemesh-data/fix-gateway".into(),
            execution: crate::execution::ExecutionPolicy::default(),
        }
    }
}

impl Section for FixPilotSettings {
    fn name(&self) -> &'static str {
        "fix_pilot"
    }

    fn list_keys() -> &'static [&'static str] {
        LIST_KEYS
    }

    /// Rejects values that cannot work, naming the key.
    fn validate(&self) -> Result<(), Invalid> {
        self.check()
    }
}

/// The grading thresholds of both snapshots, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct PilotPolicy {
    pub executions_source: ExecutionsSource,
    pub require_dropcopy: bool,
    pub escalate_ms: i64,
    pub degraded_fail_ms: i64,
    pub max_queue_drops: u64,
    pub max_inbound_backlog: u64,
    pub max_outbound_pending: u64,
    pub max_dropcopy_lag_ms: i64,
    pub stuck_order_ms: i64,
    pub reject_warn_ms: i64,
    pub heartbeat_grace_factor: f64,
}

impl Default for PilotPolicy {
    fn default() -> Self {
        FixPilotSettings::default().policy()
    }
}

fn ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

impl FixPilotSettings {
    fn check(&self) -> Result<(), Invalid> {
        let e = |key: &str, detail: String| Err(Invalid::new(format!("fix_pilot.{key}"), detail));
        if self.interval_seconds == 0 {
            return e(
                "interval_seconds",
                "must be at least 1: set how often snapshots are published, e.g. 10".into(),
            );
        }
        for (key, value) in [
            ("grace_seconds", self.grace_seconds),
            ("escalate_seconds", self.escalate_seconds),
            ("degraded_fail_seconds", self.degraded_fail_seconds),
            ("max_dropcopy_lag_seconds", self.max_dropcopy_lag_seconds),
            ("stuck_order_seconds", self.stuck_order_seconds),
            ("reject_warn_seconds", self.reject_warn_seconds),
            ("heartbeat_grace_factor", self.heartbeat_grace_factor),
        ] {
            if !value.is_finite() || value < 0.0 {
                return e(key, format!("is {value}: set a finite number >= 0"));
            }
        }
        if self.tick_size.is_negative() || self.tick_size.is_zero() {
            return e(
                "tick_size",
                format!("is {}: set a positive tick, e.g. 0.01", self.tick_size),
            );
        }
        if !self.max_request_age_seconds.is_finite() || self.max_request_age_seconds <= 0.0 {
            return e(
                "max_request_age_seconds",
                format!(
                    "is {}: set how old an order request may be when it is sent, e.g. 30",
                    self.max_request_age_seconds
                ),
            );
        }
        if !self.session_wait_seconds.is_finite()
            || !(0.0..=MAX_SESSION_WAIT_SECONDS).contains(&self.session_wait_seconds)
        {
            return e(
                "session_wait_seconds",
                format!(
                    "is {}: set 0 to {MAX_SESSION_WAIT_SECONDS} (the consumer must poll Kafka within its max.poll.interval), e.g. 10",
                    self.session_wait_seconds
                ),
            );
        }
        if let Err((key, detail)) = self.execution.validate() {
            return e(&key, detail);
        }
        if self.gateway_store_dir.trim().is_empty() {
            return e(
                "gateway_store_dir",
                "is empty: set a writable directory on persistent storage for the ClOrdID journal"
                    .into(),
            );
        }
        for (key, topic) in [
            ("orders_topic", &self.orders_topic),
            ("executions_topic", &self.executions_topic),
            ("order_events_topic", &self.order_events_topic),
        ] {
            if topic.trim().is_empty() || topic.contains(char::is_whitespace) {
                return e(
                    key,
                    format!("is {topic:?}: set a Kafka topic name without spaces"),
                );
            }
        }
        if !self.day_roll_utc.trim().is_empty() && self.day_roll().is_none() {
            return e(
                "day_roll_utc",
                format!(
                    "is {:?}: set a UTC time of day as HH:MM, e.g. 22:00, or leave it empty",
                    self.day_roll_utc
                ),
            );
        }
        self.trading.check("trading")?;
        self.dropcopy.check("dropcopy")?;
        if self.executions_source == ExecutionsSource::Fix
            && self.enabled
            && !self.trading.is_configured()
            && self.dropcopy.is_configured()
        {
            return e(
                "trading.port",
                "is 0 while executions_source = \"fix\": configure the trading session, or set executions_source = \"kafka\" when the platform feeds its own execution reports".into(),
            );
        }
        Ok(())
    }

    /// The UTC time of day a trading day starts, when configured.
    pub fn day_roll(&self) -> Option<chrono::NaiveTime> {
        chrono::NaiveTime::parse_from_str(self.day_roll_utc.trim(), "%H:%M").ok()
    }

    /// The reconciler's parameters.
    pub fn recon_policy(&self) -> ReconPolicy {
        ReconPolicy {
            grace_ms: ms(self.grace_seconds),
            price_tolerance: self.tick_size.times(self.price_tolerance_ticks),
            other_sessions: self.other_sessions.clone(),
            match_order_events: self.match_order_events,
            recent_breaks: self.recent_breaks,
            recent_rejections: 5,
        }
    }

    /// The grading thresholds.
    pub fn policy(&self) -> PilotPolicy {
        PilotPolicy {
            executions_source: self.executions_source,
            require_dropcopy: self.require_dropcopy,
            escalate_ms: ms(self.escalate_seconds),
            degraded_fail_ms: ms(self.degraded_fail_seconds),
            max_queue_drops: self.max_queue_drops,
            max_inbound_backlog: self.max_inbound_backlog,
            max_outbound_pending: self.max_outbound_pending,
            max_dropcopy_lag_ms: ms(self.max_dropcopy_lag_seconds),
            stuck_order_ms: ms(self.stuck_order_seconds),
            reject_warn_ms: ms(self.reject_warn_seconds),
            heartbeat_grace_factor: self.heartbeat_grace_factor,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Root {
        fix_pilot: FixPilotSettings,
    }

    #[test]
    fn defaults_validate_and_derive_policies() {
        let s = FixPilotSettings::default();
        assert_eq!(s.validate(), Ok(()));
        assert!(!s.trading.is_configured());
        let p = s.recon_policy();
        assert_eq!(p.grace_ms, 5_000);
        assert_eq!(p.price_tolerance, Fixed::parse("0.0001").unwrap());
    }

    #[test]
    fn toml_and_env_configure_both_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "[fix_pilot]\ntick_size = \"0.01\"\n[fix_pilot.trading]\nport = 5101\nsender_comp_id = \"PILOT\"\ntarget_comp_id = \"VENUE\"\n",
        )
        .unwrap();
        let env: HashMap<String, String> = [
            ("TELEMESH__FIX_PILOT__DROPCOPY__PORT", "5102"),
            ("TELEMESH__FIX_PILOT__DROPCOPY__SENDER_COMP_ID", "PILOT_DC"),
            ("TELEMESH__FIX_PILOT__DROPCOPY__TARGET_COMP_ID", "VENUE_DC"),
            ("TELEMESH__FIX_PILOT__OTHER_SESSIONS", "PILOT2, PILOT3"),
            ("TELEMESH__FIX_PILOT__PRICE_TOLERANCE_TICKS", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let root: Root = telemesh_core::config::load(Some(&path), &env, LIST_KEYS).unwrap();
        let s = root.fix_pilot;
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.trading.describe(), "PILOT->VENUE@127.0.0.1:5101");
        assert_eq!(s.dropcopy.port, 5102);
        assert_eq!(s.other_sessions, vec!["PILOT2", "PILOT3"]);
        assert_eq!(
            s.recon_policy().price_tolerance,
            Fixed::parse("0.02").unwrap()
        );
    }

    #[test]
    fn the_effective_configuration_prints_as_toml_and_reads_back() {
        let mut root = Root::default();
        root.fix_pilot.trading.port = 5101;
        root.fix_pilot.other_sessions = vec!["PILOT2".into()];
        let text = toml::to_string(&root).unwrap();
        assert!(text.contains("tick_size = \"0.0001\""), "{text}");
        let back: Root = toml::from_str(&text).unwrap();
        assert_eq!(back.fix_pilot, root.fix_pilot);
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut s = FixPilotSettings::default();
        s.dropcopy.port = 5102;
        s.dropcopy.sender_comp_id = "PILOT_DC".into();
        s.dropcopy.target_comp_id = "VENUE_DC".into();
        let err = s.validate().unwrap_err();
        assert_eq!(err.key, "fix_pilot.trading.port", "{err}");
        s.executions_source = ExecutionsSource::Kafka;
        assert_eq!(s.validate(), Ok(()));
        s.dropcopy.target_comp_id.clear();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`fix_pilot.dropcopy.target_comp_id`"));
        let s = FixPilotSettings {
            grace_seconds: -1.0,
            ..FixPilotSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().key, "fix_pilot.grace_seconds");
        let s = FixPilotSettings {
            day_roll_utc: "25:00".into(),
            ..FixPilotSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().key, "fix_pilot.day_roll_utc");
        let s = FixPilotSettings {
            day_roll_utc: "22:00".into(),
            ..FixPilotSettings::default()
        };
        assert_eq!(s.day_roll(), chrono::NaiveTime::from_hms_opt(22, 0, 0));
        let s = FixPilotSettings {
            tick_size: Fixed::ZERO,
            ..FixPilotSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().key, "fix_pilot.tick_size");
        for (s, key) in [
            (
                FixPilotSettings {
                    max_request_age_seconds: 0.0,
                    ..FixPilotSettings::default()
                },
                "max_request_age_seconds",
            ),
            (
                FixPilotSettings {
                    max_request_age_seconds: f64::NAN,
                    ..FixPilotSettings::default()
                },
                "max_request_age_seconds",
            ),
            (
                FixPilotSettings {
                    session_wait_seconds: 301.0,
                    ..FixPilotSettings::default()
                },
                "session_wait_seconds",
            ),
            (
                FixPilotSettings {
                    gateway_store_dir: " ".into(),
                    ..FixPilotSettings::default()
                },
                "gateway_store_dir",
            ),
            (
                FixPilotSettings {
                    order_events_topic: "a b".into(),
                    ..FixPilotSettings::default()
                },
                "order_events_topic",
            ),
        ] {
            assert_eq!(s.validate().unwrap_err().key, format!("fix_pilot.{key}"));
        }
    }
}
