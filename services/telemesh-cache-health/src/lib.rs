//! The cache health domain: probes a real Redis (`PING` round trip and `INFO`), grades hit
//! rate, evictions, memory against `maxmemory`, clients, replication and latency, and
//! publishes `telemetry.cache.health` (DOMAINS.md §3.11 with its flaws fixed).
//!
//! - [`settings`]: the `[cache_health]` section.
//! - [`info`]: the `INFO` text parser (hostile values become "unreadable", never guesses).
//! - [`state`]: what one probe gathers ([`CacheState`]).
//! - [`evaluate`](mod@evaluate): the pure grading ([`evaluate()`]).
//! - [`probe`]: [`RedisProbe`], the real I/O with the `redis` crate.
//! - [`domain`]: [`CacheHealthDomain`], the domain on the framework.

pub mod domain;
pub mod evaluate;
pub mod info;
pub mod probe;
pub mod settings;
pub mod state;

pub use domain::{CacheHealthDomain, SERVICE};
pub use evaluate::{evaluate, KIND, RUNBOOK};
pub use info::{parse_info, InfoFields};
pub use probe::RedisProbe;
pub use settings::{CacheHealthSettings, ExpectedRole, SettingsError};
pub use state::{CacheObservation, CacheState, Counters};
