//! Owns [`TransportStats`], what a transport tells about its own health at any moment
//! (queue depth and capacity, in-flight publishes, delivery errors, drops, dead letters,
//! librdkafka's per-broker statistics), and [`StatsRecorder`], the counters both transports
//! keep. The event-bus health domain grades these; nothing here grades.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::topics;

/// One broker as librdkafka's statistics describe it (`statistics.interval.ms` JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerStats {
    /// `host:port/id`.
    pub name: String,
    /// `UP`, `DOWN`, `CONNECT`, `AUTH`, `INIT`, …
    pub state: String,
    /// Average round-trip time of requests in the last window, milliseconds.
    pub rtt_avg_ms: Option<f64>,
    /// 99th percentile of the same, milliseconds.
    pub rtt_p99_ms: Option<f64>,
    /// Requests waiting to be sent.
    pub outbuf_cnt: u64,
    /// Messages in those requests.
    pub outbuf_msg_cnt: u64,
    /// Requests sent, waiting for a response.
    pub waitresp_cnt: u64,
    /// Total send errors.
    pub txerrs: u64,
    /// Total request retries.
    pub txretries: u64,
    /// Total request timeouts.
    pub req_timeouts: u64,
}

/// A transport's health at one moment. Counters are totals since the transport was created.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransportStats {
    /// `kafka` or `telemesh_inproc`.
    pub system: String,
    /// Whether the transport can deliver now: for Kafka at least one broker `UP` in the last
    /// statistics (or no statistics yet), for the in-process bus its subscriber is alive.
    pub running: bool,
    /// Messages waiting in the producer queue or channel.
    pub queue_depth: u64,
    /// What that queue holds at most, when bounded.
    pub queue_capacity: Option<u64>,
    /// Publish calls waiting for their acknowledgement.
    pub in_flight: u64,
    /// Messages delivered.
    pub published: u64,
    /// Publish calls that failed (the caller may retry them).
    pub delivery_errors: u64,
    /// Messages lost by the transport itself (in-process: retained buffer overflow).
    pub dropped: u64,
    /// Messages a consumer could not handle and dead-lettered (published to `telemetry.dlq`
    /// through this transport).
    pub handler_errors: u64,
    /// Request retries (librdkafka `txretries`, summed over brokers).
    pub retries: u64,
    /// Consumers attached (in-process: 0 or 1); `None` when the transport cannot know.
    pub subscribers: Option<u64>,
    pub last_published_at: Option<DateTime<Utc>>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When librdkafka last emitted statistics (Kafka only).
    pub stats_at: Option<DateTime<Utc>>,
    /// Per broker (Kafka only), bootstrap and learned brokers, sorted by name.
    pub brokers: Vec<BrokerStats>,
}

/// The counters a transport keeps as it publishes.
#[derive(Debug, Default)]
pub struct StatsRecorder {
    in_flight: AtomicU64,
    published: AtomicU64,
    delivery_errors: AtomicU64,
    dropped: AtomicU64,
    handler_errors: AtomicU64,
    times: Mutex<Times>,
}

#[derive(Debug, Default)]
struct Times {
    last_published_at: Option<DateTime<Utc>>,
    last_error_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

/// Counts one publish as in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a StatsRecorder);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StatsRecorder {
    /// Marks a publish as started; it stays in flight until the guard is dropped.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// A message to `topic` was delivered.
    pub fn delivered(&self, topic: &str) {
        self.published.fetch_add(1, Ordering::Relaxed);
        if topic.ends_with(topics::DLQ) {
            self.handler_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.times().last_published_at = Some(Utc::now());
    }

    /// A publish failed.
    pub fn failed(&self, error: &str) {
        self.delivery_errors.fetch_add(1, Ordering::Relaxed);
        self.error(error);
    }

    /// The transport lost a message.
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes an error of the transport (e.g. a librdkafka error callback) without counting a
    /// failed publish.
    pub fn error(&self, error: &str) {
        let mut times = self.times();
        times.last_error_at = Some(Utc::now());
        times.last_error = Some(error.chars().take(300).collect());
    }

    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters, into a [`TransportStats`] of `system` (other fields default).
    pub fn snapshot(&self, system: &str) -> TransportStats {
        let times = self.times();
        TransportStats {
            system: system.to_owned(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            delivery_errors: self.delivery_errors.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            handler_errors: self.handler_errors.load(Ordering::Relaxed),
            last_published_at: times.last_published_at,
            last_error_at: times.last_error_at,
            last_error: times.last_error.clone(),
            ..TransportStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_publishes() {
        let r = StatsRecorder::default();
        {
            let _a = r.start();
            let _b = r.start();
            assert_eq!(r.snapshot("x").in_flight, 2);
        }
        r.delivered("telemetry.cache.health");
        r.delivered("t1.telemetry.dlq");
        r.failed("broker down");
        r.dropped();
        let s = r.snapshot("kafka");
        assert_eq!(
            (
                s.in_flight,
                s.published,
                s.handler_errors,
                s.delivery_errors,
                s.dropped
            ),
            (0, 2, 1, 1, 1)
        );
        assert_eq!(s.last_error.as_deref(), Some("broker down"));
        assert!(s.last_published_at.is_some() && s.last_error_at.is_some());
    }
}
