//! Owns the aggregator's configuration sections: `[aggregator]` and `[journal]`.

use serde::{Deserialize, Serialize};
use telemesh_core::config::{Invalid, Secret, SecretUrl, Section};

/// `[aggregator]`: batching and summary behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregatorSettings {
    /// Most snapshots written in one journal transaction. Default 2,000: a backlog drains at
    /// 0.97 of a raw `COPY` against 0.82 with 500 (journal bench, 1M-row table), while a steady
    /// trickle still commits small batches after `batch_linger_ms`.
    pub batch_size: usize,
    /// How long a batch waits for more messages before it is written.
    pub batch_linger_ms: u64,
    /// A block is stale when older than `stale_factor` × its expected interval.
    pub stale_factor: f64,
    /// Expected publish interval of a source that does not state its own
    /// (sources state theirs in the `interval_seconds` metric).
    pub default_interval_seconds: f64,
    /// Kinds that must report; a missing one shows as a `warn` block in the summary.
    pub expected_kinds: Vec<String>,
    /// On start, the summary is seeded with the newest journaled snapshots of this window.
    pub seed_window_hours: u64,
    /// Capacity of the actors' mailboxes on the ingest path.
    pub mailbox_capacity: usize,
    /// With several replicas, each consumes only its partitions: refresh the summary from the
    /// shared journal this often (0 = off, right for one replica).
    pub summary_refresh_seconds: u64,
    /// How far back a refresh looks for each source's newest snapshot.
    pub summary_refresh_window_minutes: u64,
    /// A snapshot whose `generated_at` is further ahead of the aggregator's clock is
    /// dead-lettered (`future_generated_at`).
    pub max_future_skew_seconds: u64,
    /// A batch also stops growing at this many payload bytes.
    pub max_batch_bytes: usize,
    /// Messages kept while consumption is paused (journal down); at the cap the loop stops polling.
    pub max_pending_messages: usize,
    /// Client-side bound of one journal write (the batch is retried as a journal outage).
    pub journal_write_timeout_ms: u64,
    /// Client-side bound of one journal read (history, ping).
    pub journal_read_timeout_ms: u64,
    /// `/health/live` answers 503 when the ingress loop made no progress this long with work
    /// waiting (0 = never).
    pub liveness_stall_seconds: u64,
    /// After this many failed dead-letter writes of one record, readiness turns 503 and an
    /// error log (`alert=true`) says why.
    pub dlq_alert_after_failures: u32,
    /// After this many failed dead-letter writes of one record, move on without it (it is
    /// lost; counted as `reason="lost_dlq_unavailable"`). 0 = keep retrying (default).
    pub dlq_skip_after_failures: u32,
    /// On SIGTERM, stop within this many seconds even while the journal is failing.
    pub shutdown_grace_seconds: u64,
    /// Bearer token of `POST /api/v1/activities` (drills and training sessions recorded in the
    /// journal database by incident-response or `telemesh alert drill`); empty = refused.
    pub activities_token: Secret,
    /// Bearer token of `POST /api/v1/snapshots` (HTTP intake for producers that do not speak
    /// Kafka). Empty (default) = intake disabled: the endpoint answers 403 naming this key.
    pub intake_token: Secret,
    /// Most snapshots in one intake request (a JSON array). Default 100.
    pub intake_max_batch: usize,
    /// Largest intake request body in bytes. Default 4 MiB.
    pub intake_max_body_bytes: usize,
}

impl Default for AggregatorSettings {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            batch_linger_ms: 50,
            stale_factor: 3.0,
            default_interval_seconds: 30.0,
            expected_kinds: Vec::new(),
            seed_window_hours: 24,
            mailbox_capacity: 64,
            summary_refresh_seconds: 0,
            summary_refresh_window_minutes: 60,
            max_future_skew_seconds: telemesh_core::limits::DEFAULT_MAX_FUTURE_SKEW_SECONDS,
            max_batch_bytes: 16 * 1024 * 1024,
            max_pending_messages: 5_000,
            journal_write_timeout_ms: 10_000,
            journal_read_timeout_ms: 10_000,
            liveness_stall_seconds: 120,
            dlq_alert_after_failures: 5,
            dlq_skip_after_failures: 0,
            shutdown_grace_seconds: 10,
            activities_token: Secret::default(),
            intake_token: Secret::default(),
            intake_max_batch: 100,
            intake_max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Whether to use TimescaleDB when the server has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimescaleMode {
    /// Create the extension and a hypertable when available; plain PostgreSQL otherwise.
    #[default]
    Auto,
    /// Never use TimescaleDB.
    Off,
    /// Use TimescaleDB or refuse to start, saying what to change on the server.
    Required,
}

/// `[journal]`: where snapshots are journaled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalSettings {
    /// `postgres://user:password@host:port/db` or `sqlite:///path/telemesh.db`. Required by
    /// `serve aggregator`; standalone defaults to a SQLite file in `--data-dir`.
    pub url: SecretUrl,
    pub max_connections: u32,
    /// How long a write waits for a connection before it counts as a journal outage.
    pub acquire_timeout_ms: u64,
    pub timescale: TimescaleMode,
    /// Chunk interval of the TimescaleDB hypertable (new chunks only), in hours.
    pub chunk_interval_hours: u64,
    /// Journal rows whose `generated_at` is older than this many days are removed
    /// (`drop_chunks` on a hypertable, batched `DELETE` elsewhere); 0 keeps everything.
    pub retention_days: u64,
    /// How often the retention job runs, in minutes.
    pub retention_interval_minutes: u64,
    /// Server-side `statement_timeout` of every journal connection (0 = the server's default).
    pub statement_timeout_ms: u64,
    /// Connections of the separate read pool (history queries, summary refreshes), so reads
    /// never wait behind writes; 0 = reads share the write pool (a one-connection server).
    pub read_max_connections: u32,
    /// A read (history query, summary refresh) fails after this long: client-side timeout and
    /// the read pool's server-side `statement_timeout`.
    pub read_timeout_ms: u64,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::default(),
            max_connections: 5,
            acquire_timeout_ms: 3_000,
            timescale: TimescaleMode::Auto,
            chunk_interval_hours: 24,
            retention_days: 0,
            retention_interval_minutes: 60,
            statement_timeout_ms: 30_000,
            read_max_connections: 2,
            read_timeout_ms: 5_000,
        }
    }
}

/// The list-valued keys of these sections, for the config loader.
pub const LIST_KEYS: &[&str] = &["aggregator.expected_kinds"];

impl Section for AggregatorSettings {
    fn name(&self) -> &'static str {
        "aggregator"
    }

    fn list_keys() -> &'static [&'static str] {
        LIST_KEYS
    }

    /// Rejects values that cannot work, naming the key.
    fn validate(&self) -> Result<(), Invalid> {
        if self.batch_size == 0 {
            return Err(Invalid::new(
                "aggregator.batch_size",
                "must be at least 1: set how many snapshots one transaction writes, e.g. 500",
            ));
        }
        if !(self.stale_factor.is_finite() && self.stale_factor >= 1.0) {
            return Err(Invalid::new(
                "aggregator.stale_factor",
                format!("is {}: set a number >= 1, e.g. 3", self.stale_factor),
            ));
        }
        if !(self.default_interval_seconds.is_finite() && self.default_interval_seconds > 0.0) {
            return Err(Invalid::new(
                "aggregator.default_interval_seconds",
                format!(
                    "is {}: set a number of seconds > 0, e.g. 30",
                    self.default_interval_seconds
                ),
            ));
        }
        if self.mailbox_capacity == 0 {
            return Err(Invalid::new(
                "aggregator.mailbox_capacity",
                "must be at least 1",
            ));
        }
        if !(1..=10_000).contains(&self.intake_max_batch) {
            return Err(Invalid::new(
                "aggregator.intake_max_batch",
                "must be between 1 and 10000, e.g. 100",
            ));
        }
        if self.intake_max_body_bytes < 1024 {
            return Err(Invalid::new(
                "aggregator.intake_max_body_bytes",
                "must be at least 1024, e.g. 4194304",
            ));
        }
        if let Some(problem) = self
            .expected_kinds
            .iter()
            .find_map(|k| telemesh_core::topics::kind_problem(k))
        {
            return Err(Invalid::new("aggregator.expected_kinds", problem));
        }
        Ok(())
    }
}

impl Section for JournalSettings {
    fn name(&self) -> &'static str {
        "journal"
    }

    /// Rejects values that cannot work, naming the key.
    fn validate(&self) -> Result<(), Invalid> {
        if self.chunk_interval_hours == 0 {
            return Err(Invalid::new(
                "journal.chunk_interval_hours",
                "must be at least 1",
            ));
        }
        if self.retention_interval_minutes == 0 {
            return Err(Invalid::new(
                "journal.retention_interval_minutes",
                "must be at least 1",
            ));
        }
        if self.read_timeout_ms < 100 {
            return Err(Invalid::new(
                "journal.read_timeout_ms",
                "must be at least 100",
            ));
        }
        if self.retention_days > 36_500 {
            return Err(Invalid::new(
                "journal.retention_days",
                "must be at most 36500 (0 keeps everything)",
            ));
        }
        let url = self.url.expose().trim();
        if !url.is_empty()
            && !["postgres://", "postgresql://", "sqlite:"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        {
            return Err(Invalid::new(
                "journal.url",
                format!(
                    "{:?} is neither postgres://… nor sqlite:…: set a PostgreSQL or SQLite URL",
                    self.url.redacted()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile values, one key at a time: each is rejected naming exactly that key.
    #[test]
    fn hostile_values_name_their_key() {
        type Spoil<T> = Box<dyn Fn(&mut T)>;
        let cases: Vec<(&str, Spoil<AggregatorSettings>)> = vec![
            ("aggregator.batch_size", Box::new(|s| s.batch_size = 0)),
            (
                "aggregator.stale_factor",
                Box::new(|s| s.stale_factor = f64::NAN),
            ),
            (
                "aggregator.stale_factor",
                Box::new(|s| s.stale_factor = 0.99),
            ),
            (
                "aggregator.default_interval_seconds",
                Box::new(|s| s.default_interval_seconds = f64::INFINITY),
            ),
            (
                "aggregator.default_interval_seconds",
                Box::new(|s| s.default_interval_seconds = 0.0),
            ),
            (
                "aggregator.mailbox_capacity",
                Box::new(|s| s.mailbox_capacity = 0),
            ),
            (
                "aggregator.expected_kinds",
                Box::new(|s| s.expected_kinds = vec!["telemetry.kafka.readiness\n; drop".into()]),
            ),
        ];
        assert_eq!(AggregatorSettings::default().validate(), Ok(()));
        for (key, spoil) in cases {
            let mut s = AggregatorSettings::default();
            spoil(&mut s);
            assert_eq!(s.validate().expect_err(key).key, key);
        }
        let at_bound = AggregatorSettings {
            stale_factor: 1.0,
            ..AggregatorSettings::default()
        };
        assert_eq!(at_bound.validate(), Ok(()));

        let journal: Vec<(&str, Spoil<JournalSettings>)> = vec![
            (
                "journal.chunk_interval_hours",
                Box::new(|s| s.chunk_interval_hours = 0),
            ),
            (
                "journal.retention_interval_minutes",
                Box::new(|s| s.retention_interval_minutes = 0),
            ),
            (
                "journal.read_timeout_ms",
                Box::new(|s| s.read_timeout_ms = 99),
            ),
            (
                "journal.retention_days",
                Box::new(|s| s.retention_days = 36_501),
            ),
            (
                "journal.url",
                Box::new(|s| s.url = SecretUrl::new("mysql://u:hunter2@db/x")),
            ),
        ];
        assert_eq!(JournalSettings::default().validate(), Ok(()));
        for (key, spoil) in journal {
            let mut s = JournalSettings::default();
            spoil(&mut s);
            let err = s.validate().expect_err(key);
            assert_eq!(err.key, key);
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let edge = JournalSettings {
            read_timeout_ms: 100,
            retention_days: 36_500,
            ..JournalSettings::default()
        };
        assert_eq!(edge.validate(), Ok(()));
    }
}
