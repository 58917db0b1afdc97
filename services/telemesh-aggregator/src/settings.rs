//! Owns the aggregator's configuration sections: `[aggregator]` and `[journal]`.

use serde::{Deserialize, Serialize};
use telemesh_core::config::SecretUrl;

/// `[aggregator]`: batching and summary behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregatorSettings {
    /// Most snapshots written in one journal transaction.
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
    /// Bearer token of `POST /api/v1/snapshots` (HTTP intake for producers that do not speak
    /// Kafka). Empty (default) = intake disabled: the endpoint answers 403 naming this key.
    pub intake_token: telemesh_core::config::Secret,
    /// Most snapshots in one intake request (a JSON array). Default 100.
    pub intake_max_batch: usize,
    /// Largest intake request body in bytes. Default 4 MiB.
    pub intake_max_body_bytes: usize,
}

impl Default for AggregatorSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
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
            intake_token: Default::default(),
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

impl AggregatorSettings {
    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("aggregator.batch_size must be at least 1".into());
        }
        if !(self.stale_factor.is_finite() && self.stale_factor >= 1.0) {
            return Err("aggregator.stale_factor must be a number >= 1".into());
        }
        if !(self.default_interval_seconds.is_finite() && self.default_interval_seconds > 0.0) {
            return Err("aggregator.default_interval_seconds must be > 0".into());
        }
        if self.mailbox_capacity == 0 {
            return Err("aggregator.mailbox_capacity must be at least 1".into());
        }
        if !(1..=10_000).contains(&self.intake_max_batch) {
            return Err("aggregator.intake_max_batch must be between 1 and 10000, e.g. 100".into());
        }
        if self.intake_max_body_bytes < 1024 {
            return Err(
                "aggregator.intake_max_body_bytes must be at least 1024, e.g. 4194304".into(),
            );
        }
        if let Some(problem) = self
            .expected_kinds
            .iter()
            .find_map(|k| telemesh_core::topics::kind_problem(k))
        {
            return Err(format!("aggregator.expected_kinds: {problem}"));
        }
        Ok(())
    }
}

impl JournalSettings {
    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_interval_hours == 0 {
            return Err("journal.chunk_interval_hours must be at least 1".into());
        }
        if self.retention_interval_minutes == 0 {
            return Err("journal.retention_interval_minutes must be at least 1".into());
        }
        if self.read_timeout_ms < 100 {
            return Err("journal.read_timeout_ms must be at least 100".into());
        }
        if self.retention_days > 36_500 {
            return Err("journal.retention_days must be at most 36500 (0 keeps everything)".into());
        }
        Ok(())
    }
}
