//! Owns the grading of event-bus health: a pure function from [`EventBusSettings`] and the
//! transport's [`TransportStats`] (now and at the previous gather) to a
//! `telemetry.event_bus.health` [`Snapshot`] (DOMAINS.md §3.9). No I/O, no clock.
//!
//! Fixed flaws: drops, delivery errors, dead letters and retries are graded over the interval
//! since the previous gather, so one bad minute does not keep the bus `warn`/`fail` for the
//! life of the process; the queue is graded against its capacity as well as in absolute
//! terms; the Kafka producer's brokers (state, round trip, send buffers, errors) are graded
//! from librdkafka's own statistics.
//!
//! Components, in order: `running`, `queue`, `delivery`, `handlers`, `activity`, and
//! `brokers` for Kafka.

use chrono::{DateTime, Utc};
use telemesh_core::transport::TransportStats;
use telemesh_core::{Component, Grade, Snapshot, Source};

use crate::settings::EventBusSettings;

/// The snapshot kind (and topic) this domain publishes.
pub const KIND: &str = "telemetry.event_bus.health";
/// The Markdown title of the snapshot.
pub const TITLE: &str = "Event-bus health";

pub const RUNNING: &str = "running";
pub const QUEUE: &str = "queue";
pub const DELIVERY: &str = "delivery";
pub const HANDLERS: &str = "handlers";
pub const ACTIVITY: &str = "activity";
pub const BROKERS: &str = "brokers";

/// What one gather read from the transport.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BusState {
    /// `None` when the transport keeps no statistics.
    pub stats: Option<TransportStats>,
    /// The statistics of the previous gather.
    pub previous: Option<TransportStats>,
}

/// `fail` at or above `fail`, `warn` at or above `warn`, else `ok`.
fn level<T: PartialOrd>(value: T, warn: T, fail: T) -> Grade {
    if value >= fail {
        Grade::Fail
    } else if value >= warn {
        Grade::Warn
    } else {
        Grade::Ok
    }
}

/// `now - before` when `before` is of the same transport (no counter went back), else `now`.
fn delta(now: u64, before: Option<u64>) -> u64 {
    match before {
        Some(b) if b <= now => now - b,
        _ => now,
    }
}

/// Grades `state` into a snapshot generated at `now`.
pub fn evaluate(
    settings: &EventBusSettings,
    state: &BusState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut snapshot = Snapshot::new(KIND, source, now);
    let Some(stats) = &state.stats else {
        let summary = "this transport keeps no statistics: event-bus health cannot be graded";
        snapshot.push(Component::new(RUNNING, Grade::Warn, summary));
        snapshot.summary = summary.into();
        snapshot.markdown = snapshot.render_markdown(TITLE);
        return snapshot;
    };
    let prev = state.previous.as_ref();
    let window = if prev.is_some() {
        "since the previous gather"
    } else {
        "since start"
    };

    // running (forced fail when expected: telemetry will be dropped)
    let running = if stats.running {
        Component::new(
            RUNNING,
            Grade::Ok,
            format!("{} transport running", stats.system),
        )
    } else {
        let why = if stats.system == "kafka" {
            "no broker is UP"
        } else {
            "the consuming side has stopped"
        };
        let grade = if settings.expected {
            Grade::Fail
        } else {
            Grade::Warn
        };
        let mut summary = format!(
            "{} transport not running: {why}; telemetry will be dropped",
            stats.system
        );
        if let Some(e) = &stats.last_error {
            summary.push_str(&format!(" (last error: {e})"));
        }
        Component::new(RUNNING, grade, summary)
    }
    .detail("system", stats.system.as_str())
    .detail("running", stats.running)
    .detail("expected", settings.expected);
    snapshot.push(running);

    // queue
    let mut grade = level(stats.queue_depth, settings.queue_warn, settings.queue_fail);
    let mut summary = format!("{} queued", stats.queue_depth);
    let mut queue = Component::new(QUEUE, Grade::Ok, "");
    if let Some(capacity) = stats.queue_capacity.filter(|c| *c > 0) {
        let ratio = stats.queue_depth as f64 / capacity as f64;
        grade.escalate(level(
            ratio,
            settings.queue_warn_ratio,
            settings.queue_fail_ratio,
        ));
        summary = format!(
            "{} of {capacity} queued ({:.1}%)",
            stats.queue_depth,
            ratio * 100.0
        );
        queue = queue
            .detail("queue_capacity", capacity)
            .detail("ratio", ratio);
        snapshot.metric("queue_capacity", capacity as f64);
    }
    summary.push_str(&format!(", {} publishes in flight", stats.in_flight));
    if grade != Grade::Ok {
        summary.push_str(": the consumer or broker is not keeping up");
    }
    queue.status = grade;
    queue.summary = summary;
    snapshot.push(
        queue
            .detail("queue_depth", stats.queue_depth)
            .detail("in_flight", stats.in_flight),
    );
    snapshot.metric("queue_depth", stats.queue_depth as f64);
    snapshot.metric("in_flight", stats.in_flight as f64);

    // delivery: failed publishes, drops, retries
    let errors = delta(stats.delivery_errors, prev.map(|p| p.delivery_errors));
    let dropped = delta(stats.dropped, prev.map(|p| p.dropped));
    let retries = delta(stats.retries, prev.map(|p| p.retries));
    let mut grade = level(
        errors,
        settings.delivery_errors_warn,
        settings.delivery_errors_fail,
    );
    grade.escalate(level(dropped, settings.dropped_warn, settings.dropped_fail));
    grade.escalate(level(retries, settings.retries_warn, settings.retries_fail));
    let mut summary =
        format!("{errors} failed publishes, {dropped} dropped, {retries} retries {window}");
    if errors > 0 {
        if let Some(e) = &stats.last_error {
            summary.push_str(&format!("; last error: {e}"));
        }
    }
    snapshot.push(
        Component::new(DELIVERY, grade, summary)
            .detail("delivery_errors", errors)
            .detail("dropped", dropped)
            .detail("retries", retries)
            .detail("delivery_errors_total", stats.delivery_errors)
            .detail("dropped_total", stats.dropped),
    );
    snapshot.metric("delivery_errors", errors as f64);
    snapshot.metric("dropped", dropped as f64);
    snapshot.metric("retries", retries as f64);

    // handlers: dead letters and consumers
    let dead = delta(stats.handler_errors, prev.map(|p| p.handler_errors));
    let mut grade = level(
        dead,
        settings.handler_errors_warn,
        settings.handler_errors_fail,
    );
    let mut summary = format!(
        "{dead} message{} dead-lettered {window}",
        if dead == 1 { "" } else { "s" }
    );
    if let Some(subscribers) = stats.subscribers {
        summary.push_str(&format!(", {subscribers} consumer(s)"));
        if subscribers == 0 && settings.expected {
            grade.escalate(Grade::Warn);
            summary.push_str(": nothing consumes this bus");
        }
    }
    snapshot.push(
        Component::new(HANDLERS, grade, summary)
            .detail("handler_errors", dead)
            .detail("subscribers", stats.subscribers),
    );
    snapshot.metric("handler_errors", dead as f64);

    // activity
    snapshot.metric("published_total", stats.published as f64);
    let activity = if stats.published == 0 {
        Component::new(
            ACTIVITY,
            if settings.expected {
                Grade::Warn
            } else {
                Grade::Ok
            },
            "nothing published yet: check the publishers",
        )
    } else {
        match stats.last_published_at {
            Some(last) => {
                let idle = (now - last).num_seconds().max(0);
                snapshot.metric("idle_seconds", idle as f64);
                let grade = if settings.expected && idle as u64 > settings.idle_warn_seconds {
                    Grade::Warn
                } else {
                    Grade::Ok
                };
                Component::new(
                    ACTIVITY,
                    grade,
                    format!("{} published, the last {idle} s ago", stats.published),
                )
                .detail("last_published_at", last.to_rfc3339())
            }
            None => Component::new(
                ACTIVITY,
                Grade::Ok,
                format!("{} published", stats.published),
            ),
        }
    }
    .detail("published", stats.published);
    snapshot.push(activity);

    if stats.system == "kafka" {
        let brokers = brokers(settings, stats, prev, now, &mut snapshot);
        snapshot.push(brokers);
    }

    let bad: Vec<String> = snapshot
        .components
        .iter()
        .filter(|c| c.status == snapshot.status && c.status != Grade::Ok)
        .map(|c| format!("{}: {}", c.name, c.summary))
        .collect();
    snapshot.summary = if bad.is_empty() {
        format!(
            "{} bus healthy: {} published",
            stats.system, stats.published
        )
    } else {
        bad.join("; ")
    };
    snapshot.markdown = snapshot.render_markdown(TITLE);
    snapshot
}

fn brokers(
    settings: &EventBusSettings,
    stats: &TransportStats,
    prev: Option<&TransportStats>,
    now: DateTime<Utc>,
    snapshot: &mut Snapshot,
) -> Component {
    let Some(at) = stats.stats_at else {
        return Component::new(BROKERS, Grade::Ok, "no librdkafka statistics yet");
    };
    let mut grade = Grade::Ok;
    let mut parts = Vec::new();
    let age = (now - at).num_seconds().max(0);
    if age as u64 > settings.stats_stale_seconds {
        grade.escalate(Grade::Warn);
        parts.push(format!(
            "statistics {age} s old: the producer's event loop may be stuck"
        ));
    }
    let up = stats.brokers.iter().filter(|b| b.state == "UP").count();
    parts.insert(0, format!("{up} of {} brokers UP", stats.brokers.len()));
    let mut worst_rtt: Option<f64> = None;
    let mut txerrs: u64 = 0;
    let mut outbuf: u64 = 0;
    for b in &stats.brokers {
        if let Some(rtt) = b.rtt_avg_ms {
            worst_rtt = Some(worst_rtt.map_or(rtt, |w: f64| w.max(rtt)));
            let g = level(rtt, settings.rtt_warn_ms, settings.rtt_fail_ms);
            if g != Grade::Ok {
                grade.escalate(g);
                parts.push(format!("{} round trip {rtt:.1} ms", b.name));
            }
        }
        let before = prev.and_then(|p| p.brokers.iter().find(|x| x.name == b.name));
        txerrs = delta(b.txerrs, before.map(|x| x.txerrs)).saturating_add(txerrs);
        outbuf = outbuf.saturating_add(b.outbuf_msg_cnt);
        if b.state != "UP" && b.state != "INIT" && up > 0 && !b.name.contains("bootstrap") {
            grade.escalate(Grade::Warn);
            parts.push(format!("{} is {}", b.name, b.state));
        }
    }
    let g = level(outbuf, settings.queue_warn, settings.queue_fail);
    if g != Grade::Ok {
        grade.escalate(g);
        parts.push(format!("{outbuf} messages waiting in broker send buffers"));
    }
    if txerrs > 0 {
        grade.escalate(Grade::Warn);
        parts.push(format!("{txerrs} send errors since the previous gather"));
    }
    if let Some(rtt) = worst_rtt {
        snapshot.metric("broker_rtt_avg_ms_max", rtt);
    }
    snapshot.metric("brokers_up", up as f64);
    snapshot.metric("broker_outbuf_msgs", outbuf as f64);
    Component::new(BROKERS, grade, parts.join(", "))
        .detail("brokers_up", up)
        .detail("brokers", stats.brokers.len())
        .detail("rtt_avg_ms_max", worst_rtt)
        .detail("outbuf_msg_cnt", outbuf)
        .detail("txerrs", txerrs)
        .detail("stats_age_seconds", age)
}

#[cfg(test)]
mod tests;
