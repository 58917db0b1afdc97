//! Owns [`CacheState`]: the plain data one probe of the cache gathers, including the counters
//! of the previous probe so the evaluator can grade what happened since then.

use crate::info::InfoFields;

/// What one gather saw.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheState {
    /// No `[cache_health] url`.
    NotConfigured,
    /// Connecting, `PING` or `INFO` failed.
    Unreachable {
        /// The URL with its password redacted.
        endpoint: String,
        error: String,
    },
    /// The server answered.
    Up(Box<CacheObservation>),
}

/// A server that answered `PING` and `INFO`.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheObservation {
    /// The URL with its password redacted.
    pub endpoint: String,
    /// Round trip of one `PING`, in milliseconds.
    pub ping_ms: f64,
    /// What the reply to `PING` was when it was not `PONG` (e.g. `LOADING`).
    pub ping_reply: Option<String>,
    pub info: InfoFields,
    /// The counters of the previous successful probe, if any.
    pub previous: Option<Counters>,
}

/// The cumulative `INFO` counters graded as "since the previous probe".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub uptime_seconds: u64,
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
    pub rejected: u64,
}

impl Counters {
    /// The counters of `info`, when all of them were reported.
    pub fn of(info: &InfoFields) -> Option<Counters> {
        Some(Counters {
            uptime_seconds: info.uptime_seconds?,
            hits: info.keyspace_hits?,
            misses: info.keyspace_misses?,
            evicted: info.evicted_keys?,
            rejected: info.rejected_connections?,
        })
    }

    /// `self - previous` when `previous` is of the same server run (uptime did not go back
    /// and no counter decreased, i.e. no restart and no `CONFIG RESETSTAT`); `None` otherwise.
    pub fn since(&self, previous: &Counters) -> Option<Counters> {
        Some(Counters {
            uptime_seconds: self.uptime_seconds.checked_sub(previous.uptime_seconds)?,
            hits: self.hits.checked_sub(previous.hits)?,
            misses: self.misses.checked_sub(previous.misses)?,
            evicted: self.evicted.checked_sub(previous.evicted)?,
            rejected: self.rejected.checked_sub(previous.rejected)?,
        })
    }
}
