//! Owns the grading of cache health: a pure function from [`CacheHealthSettings`] and a
//! probed [`CacheState`] to a `telemetry.cache.health` [`Snapshot`] (DOMAINS.md §3.11, with
//! its flaws fixed). No I/O, no clock: `now` is passed in.
//!
//! Fixed flaws: the "< 10 % hit rate ⇒ fail" rule is checked before the warn rule, so it is
//! reachable; hit rate and evictions are graded over the interval since the previous probe
//! (a Redis that evicted once a month ago is not `warn` forever), falling back to the
//! counters since server start after a restart or on the first probe; the inputs are the
//! server's own `INFO` rather than counters kept by a client wrapper. Thresholds are "at or
//! above" for high-is-bad values and "below" for the hit rate.
//!
//! Components, in order: `connection`, `latency`, `hit_rate`, `evictions`, `memory`,
//! `clients`, `replication`, plus `info` when some `INFO` field was unreadable.

use chrono::{DateTime, Utc};
use telemesh_core::{Component, Grade, Snapshot, Source};

use crate::settings::{CacheHealthSettings, ExpectedRole};
use crate::state::{CacheObservation, CacheState, Counters};

/// The snapshot kind (and topic) this domain publishes.
pub const KIND: &str = "telemetry.cache.health";
/// The Markdown title of the snapshot.
pub const TITLE: &str = "Cache health";
/// The runbook every non-ok cache snapshot links to.
pub const RUNBOOK: &str = "docs/runbooks/redis-cache-outage.md";

pub const CONNECTION: &str = "connection";
pub const LATENCY: &str = "latency";
pub const HIT_RATE: &str = "hit_rate";
pub const EVICTIONS: &str = "evictions";
pub const MEMORY: &str = "memory";
pub const CLIENTS: &str = "clients";
pub const REPLICATION: &str = "replication";
pub const INFO: &str = "info";

/// Grades `state` under `settings` into a `telemetry.cache.health` snapshot at `now`.
pub fn evaluate(
    settings: &CacheHealthSettings,
    state: &CacheState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut snapshot = Snapshot::new(KIND, source, now);
    match state {
        CacheState::NotConfigured => {
            let (grade, why) = if settings.expected {
                (
                    Grade::Fail,
                    "no Redis configured but one is expected: the platform runs on its in-memory fallback; set [cache_health] url",
                )
            } else {
                (
                    Grade::Warn,
                    "no Redis configured: cache metrics unavailable; set [cache_health] url",
                )
            };
            snapshot.push(
                Component::new(CONNECTION, grade, why)
                    .detail("configured", false)
                    .detail("expected", settings.expected)
                    .detail("runbook", RUNBOOK),
            );
            snapshot.summary = why.to_owned();
        }
        CacheState::Unreachable { endpoint, error } => {
            let why = format!("Redis at {endpoint} unreachable: {error}; follow {RUNBOOK}");
            snapshot.push(
                Component::new(CONNECTION, Grade::Fail, why.clone())
                    .detail("configured", true)
                    .detail("endpoint", endpoint.as_str())
                    .detail("error", error.as_str())
                    .detail("runbook", RUNBOOK),
            );
            snapshot.metric("up", 0.0);
            snapshot.summary = why;
        }
        CacheState::Up(obs) => up(settings, obs, &mut snapshot),
    }
    snapshot.markdown = markdown(settings, &snapshot);
    snapshot
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

/// The interval the counters are graded over.
struct Window {
    counters: Counters,
    /// "since the previous probe" or "since server start".
    label: &'static str,
    /// Whether evictions and rejections in it are recent enough to grade: since the previous
    /// probe, or since a start within two intervals. The first probe of a long-running server
    /// only reports them (they may be months old) and grades from the next probe on.
    recent: bool,
}

fn window(settings: &CacheHealthSettings, obs: &CacheObservation) -> Option<Window> {
    let now = Counters::of(&obs.info)?;
    if let Some(delta) = obs.previous.as_ref().and_then(|p| now.since(p)) {
        return Some(Window {
            counters: delta,
            label: "since the previous probe",
            recent: true,
        });
    }
    Some(Window {
        counters: now,
        label: "since server start",
        recent: now.uptime_seconds <= settings.interval_seconds.saturating_mul(2),
    })
}

fn up(settings: &CacheHealthSettings, obs: &CacheObservation, snapshot: &mut Snapshot) {
    let info = &obs.info;
    snapshot.metric("up", 1.0);
    let mut connection = Component::new(
        CONNECTION,
        Grade::Ok,
        format!(
            "Redis {} at {} answers",
            info.redis_version.as_deref().unwrap_or("(version unknown)"),
            obs.endpoint
        ),
    )
    .detail("configured", true)
    .detail("endpoint", obs.endpoint.as_str())
    .detail("namespace", settings.namespace.as_str());
    if let Some(reply) = &obs.ping_reply {
        connection.status = Grade::Warn;
        connection.summary = format!("PING answered {reply:?} instead of PONG (loading or busy?)");
    }
    snapshot.push(connection);
    snapshot.push(latency(settings, obs.ping_ms));
    snapshot.metric("ping_ms", obs.ping_ms);

    let window = window(settings, obs);
    let graded = [
        hit_rate(settings, info, window.as_ref(), snapshot),
        evictions(settings, window.as_ref(), snapshot),
        memory(settings, info, snapshot),
        clients(settings, info, window.as_ref(), snapshot),
        replication(settings, info),
    ];
    for component in graded {
        snapshot.push(component);
    }
    if !info.unreadable.is_empty() || info.truncated {
        let mut names: Vec<&str> = info.unreadable.keys().map(String::as_str).collect();
        if info.truncated {
            names.push("(INFO truncated)");
        }
        snapshot.push(
            Component::new(
                INFO,
                Grade::Warn,
                format!("INFO fields unreadable: {}", names.join(", ")),
            )
            .detail(
                "unreadable",
                names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ),
        );
    }
    let worst: Vec<String> = snapshot
        .components
        .iter()
        .filter(|c| c.status == snapshot.status && c.status != Grade::Ok)
        .map(|c| format!("{}: {}", c.name, c.summary))
        .collect();
    snapshot.summary = if worst.is_empty() {
        format!("Redis at {} healthy", obs.endpoint)
    } else {
        format!("{}; runbook {RUNBOOK}", worst.join("; "))
    };
}

fn latency(settings: &CacheHealthSettings, ping_ms: f64) -> Component {
    let grade = level(ping_ms, settings.warn_ping_ms, settings.fail_ping_ms);
    Component::new(LATENCY, grade, format!("PING {ping_ms:.2} ms"))
        .detail("ping_ms", ping_ms)
        .detail("warn_ping_ms", settings.warn_ping_ms)
        .detail("fail_ping_ms", settings.fail_ping_ms)
}

fn hit_rate(
    settings: &CacheHealthSettings,
    info: &crate::info::InfoFields,
    window: Option<&Window>,
    snapshot: &mut Snapshot,
) -> Component {
    let Some(window) = window else {
        return Component::new(
            HIT_RATE,
            Grade::Warn,
            "keyspace hits/misses (or uptime, evicted_keys, rejected_connections) not reported by INFO",
        );
    };
    let Counters { hits, misses, .. } = window.counters;
    let requests = hits.saturating_add(misses);
    snapshot.metric("hits", hits as f64);
    snapshot.metric("misses", misses as f64);
    if requests == 0 {
        let total = info
            .keyspace_hits
            .unwrap_or(0)
            .saturating_add(info.keyspace_misses.unwrap_or(0));
        return if total == 0 {
            Component::new(
                HIT_RATE,
                Grade::Warn,
                "no reads since server start: is the platform using this cache?",
            )
        } else {
            Component::new(HIT_RATE, Grade::Ok, format!("no reads {}", window.label))
        }
        .detail("hits", hits)
        .detail("misses", misses);
    }
    let rate = hits as f64 / requests as f64;
    snapshot.metric("hit_rate", rate);
    let grade = if rate < settings.fail_hit_rate && misses >= settings.fail_min_misses {
        Grade::Fail
    } else if rate < settings.warn_hit_rate && misses >= settings.warn_min_misses {
        Grade::Warn
    } else {
        Grade::Ok
    };
    Component::new(
        HIT_RATE,
        grade,
        format!(
            "{:.2}% hit rate ({hits} hits, {misses} misses {})",
            rate * 100.0,
            window.label
        ),
    )
    .detail("hit_rate", rate)
    .detail("hits", hits)
    .detail("misses", misses)
    .detail("window", window.label)
}

fn evictions(
    settings: &CacheHealthSettings,
    window: Option<&Window>,
    snapshot: &mut Snapshot,
) -> Component {
    let Some(window) = window else {
        return Component::new(EVICTIONS, Grade::Warn, "evicted_keys not reported by INFO");
    };
    let evicted = window.counters.evicted;
    snapshot.metric("evicted_keys", evicted as f64);
    let grade = if window.recent {
        level(evicted, settings.warn_evictions, settings.fail_evictions)
    } else {
        Grade::Ok
    };
    let summary = if evicted == 0 {
        format!("no evictions {}", window.label)
    } else if !window.recent {
        format!(
            "{evicted} keys evicted {} ({} s ago): graded from the next probe on",
            window.label, window.counters.uptime_seconds
        )
    } else {
        format!(
            "{evicted} keys evicted {}: maxmemory may be too low",
            window.label
        )
    };
    Component::new(EVICTIONS, grade, summary)
        .detail("evicted_keys", evicted)
        .detail("window", window.label)
}

fn memory(
    settings: &CacheHealthSettings,
    info: &crate::info::InfoFields,
    snapshot: &mut Snapshot,
) -> Component {
    let (Some(used), Some(max)) = (info.used_memory, info.maxmemory) else {
        return Component::new(
            MEMORY,
            Grade::Warn,
            "used_memory/maxmemory not reported by INFO",
        );
    };
    snapshot.metric("used_memory_bytes", used as f64);
    snapshot.metric("maxmemory_bytes", max as f64);
    let policy = info.maxmemory_policy.as_deref().unwrap_or("unknown");
    if max == 0 {
        return Component::new(
            MEMORY,
            Grade::Ok,
            format!("{used} bytes used, no maxmemory limit (policy {policy})"),
        )
        .detail("used_memory", used)
        .detail("maxmemory", 0u64)
        .detail("maxmemory_policy", policy);
    }
    let ratio = used as f64 / max as f64;
    snapshot.metric("memory_ratio", ratio);
    let grade = level(
        ratio,
        settings.warn_memory_ratio,
        settings.fail_memory_ratio,
    );
    let mut summary = format!(
        "{:.1}% of maxmemory ({used} of {max} bytes, policy {policy})",
        ratio * 100.0
    );
    if grade != Grade::Ok && policy == "noeviction" {
        summary.push_str(": writes are refused once full");
    }
    Component::new(MEMORY, grade, summary)
        .detail("used_memory", used)
        .detail("maxmemory", max)
        .detail("ratio", ratio)
        .detail("maxmemory_policy", policy)
}

fn clients(
    settings: &CacheHealthSettings,
    info: &crate::info::InfoFields,
    window: Option<&Window>,
    snapshot: &mut Snapshot,
) -> Component {
    let Some(connected) = info.connected_clients else {
        return Component::new(
            CLIENTS,
            Grade::Warn,
            "connected_clients not reported by INFO",
        );
    };
    snapshot.metric("connected_clients", connected as f64);
    let mut grade = Grade::Ok;
    let mut parts = vec![format!("{connected} connected")];
    let mut component = Component::new(CLIENTS, Grade::Ok, "").detail("connected", connected);
    if let Some(max) = info.maxclients.filter(|m| *m > 0) {
        let ratio = connected as f64 / max as f64;
        grade.escalate(level(
            ratio,
            settings.warn_clients_ratio,
            settings.fail_clients_ratio,
        ));
        parts[0] = format!("{connected} of {max} connected ({:.1}%)", ratio * 100.0);
        component = component.detail("maxclients", max).detail("ratio", ratio);
    }
    if let Some(window) = window {
        let rejected = window.counters.rejected;
        if rejected > 0 && window.recent {
            grade.escalate(Grade::Warn);
            parts.push(format!(
                "{rejected} connections rejected {} (maxclients reached)",
                window.label
            ));
        }
        component = component.detail("rejected_connections", rejected);
    }
    component.status = grade;
    component.summary = parts.join("; ");
    component
}

fn replication(settings: &CacheHealthSettings, info: &crate::info::InfoFields) -> Component {
    let Some(role) = info.role.as_deref() else {
        return Component::new(REPLICATION, Grade::Warn, "role not reported by INFO");
    };
    let is_replica = role == "slave" || role == "replica";
    let shown = if is_replica { "replica" } else { role };
    let mut component = Component::new(REPLICATION, Grade::Ok, "").detail("role", shown);
    let mut grade = Grade::Ok;
    let mut parts = vec![format!("role {shown}")];
    match settings.role {
        ExpectedRole::Master if is_replica => {
            grade.escalate(Grade::Fail);
            parts.push("expected a master: the cache is read-only".into());
        }
        ExpectedRole::Replica if !is_replica => {
            grade.escalate(Grade::Fail);
            parts.push("expected a replica".into());
        }
        _ => {}
    }
    if is_replica {
        let link = info.master_link_status.as_deref().unwrap_or("unknown");
        component = component.detail("master_link_status", link);
        if link != "up" {
            grade.escalate(Grade::Fail);
            parts.push(format!("link to master {link}: reads may be stale"));
        } else {
            parts.push("link to master up".into());
        }
    } else {
        let replicas = info.connected_slaves.unwrap_or(0);
        component = component.detail("connected_replicas", replicas);
        parts.push(format!("{replicas} replicas connected"));
        if replicas < settings.min_replicas {
            grade.escalate(Grade::Warn);
            parts.push(format!("expected at least {}", settings.min_replicas));
        }
    }
    component.status = grade;
    component.summary = parts.join(", ");
    component
}

fn markdown(settings: &CacheHealthSettings, snapshot: &Snapshot) -> String {
    let mut out = snapshot.render_markdown(TITLE);
    out.push_str(&format!(
        "\nNamespace `{}`; expected: {}. Runbook: [Redis cache outage]({RUNBOOK}).\n",
        settings.namespace.replace('`', "'"),
        if settings.expected { "yes" } else { "no" }
    ));
    out
}

#[cfg(test)]
mod tests;
