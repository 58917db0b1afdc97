//! Data-driven tests of every cache-health rule, at, below and above each threshold.

use chrono::TimeZone;

use super::*;
use crate::info::{parse_info, InfoFields};
use crate::state::Counters;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0)
        .single()
        .expect("valid time")
}

fn source() -> Source {
    Source::new("cache-health", "test")
}

/// A healthy master: 90 hits, 10 misses since start, 1 MiB of 100 MiB, 10 of 100 clients.
fn healthy_info() -> InfoFields {
    parse_info(
        b"redis_version:7.0.15\nuptime_in_seconds:1000\nconnected_clients:10\nmaxclients:100\n\
          used_memory:1000\nmaxmemory:100000\nmaxmemory_policy:allkeys-lru\nkeyspace_hits:90\n\
          keyspace_misses:10\nevicted_keys:0\nexpired_keys:0\nrejected_connections:0\n\
          role:master\nconnected_slaves:0\n",
    )
}

fn observe(info: InfoFields) -> CacheObservation {
    CacheObservation {
        endpoint: "redis://127.0.0.1:6379".into(),
        ping_ms: 1.0,
        ping_reply: None,
        info,
        previous: None,
    }
}

/// `info` of a server that started 10 s ago: counters since start are recent.
fn fresh(mut info: InfoFields) -> InfoFields {
    info.uptime_seconds = Some(10);
    info
}

fn grade_of(settings: &CacheHealthSettings, obs: CacheObservation, component: &str) -> Grade {
    let snapshot = evaluate(settings, &CacheState::Up(Box::new(obs)), source(), now());
    snapshot.validate().expect("valid snapshot");
    snapshot
        .component(component)
        .unwrap_or_else(|| panic!("component {component} missing"))
        .status
}

#[test]
fn a_healthy_cache_is_ok_everywhere() {
    let s = evaluate(
        &CacheHealthSettings::default(),
        &CacheState::Up(Box::new(observe(healthy_info()))),
        source(),
        now(),
    );
    assert_eq!(s.status, Grade::Ok, "{:#?}", s.components);
    assert_eq!(s.kind, KIND);
    let names: Vec<&str> = s.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            CONNECTION,
            LATENCY,
            HIT_RATE,
            EVICTIONS,
            MEMORY,
            CLIENTS,
            REPLICATION
        ]
    );
    assert_eq!(s.metrics["hit_rate"], 0.9);
    assert!(s.markdown.contains(RUNBOOK));
}

#[test]
fn not_configured_and_unreachable() {
    let expected = CacheHealthSettings::default();
    let optional = CacheHealthSettings {
        expected: false,
        ..CacheHealthSettings::default()
    };
    let cases = [
        (&expected, CacheState::NotConfigured, Grade::Fail),
        (&optional, CacheState::NotConfigured, Grade::Warn),
        (
            &optional,
            CacheState::Unreachable {
                endpoint: "redis://h:1".into(),
                error: "connection refused".into(),
            },
            Grade::Fail,
        ),
    ];
    for (settings, state, want) in cases {
        let s = evaluate(settings, &state, source(), now());
        assert_eq!(s.status, want, "{state:?}");
        assert_eq!(s.components.len(), 1);
        assert_eq!(
            s.components[0].details.get("runbook"),
            Some(&RUNBOOK.into())
        );
        assert!(s.summary.contains("url") || s.summary.contains(RUNBOOK));
    }
}

#[test]
fn ping_latency_thresholds() {
    // warn 50 ms, fail 500 ms: at or above
    for (ms, want) in [
        (49.99, Grade::Ok),
        (50.0, Grade::Warn),
        (50.01, Grade::Warn),
        (499.99, Grade::Warn),
        (500.0, Grade::Fail),
        (5000.0, Grade::Fail),
    ] {
        let mut obs = observe(healthy_info());
        obs.ping_ms = ms;
        assert_eq!(
            grade_of(&CacheHealthSettings::default(), obs, LATENCY),
            want,
            "{ms} ms"
        );
    }
}

#[test]
fn a_ping_reply_other_than_pong_warns() {
    let mut obs = observe(healthy_info());
    obs.ping_reply = Some("LOADING".into());
    assert_eq!(
        grade_of(&CacheHealthSettings::default(), obs, CONNECTION),
        Grade::Warn
    );
}

fn with_hits(hits: u64, misses: u64) -> InfoFields {
    let mut info = healthy_info();
    info.keyspace_hits = Some(hits);
    info.keyspace_misses = Some(misses);
    info
}

#[test]
fn hit_rate_thresholds_with_the_fail_rule_reachable() {
    // warn: rate < 0.25 with misses >= 5; fail: rate < 0.10 with misses >= 20
    let cases = [
        (0, 0, Grade::Warn),   // never read since start
        (1, 3, Grade::Ok),     // rate 0.25: at the warn boundary (not below)
        (1, 4, Grade::Ok),     // rate 0.2 but only 4 misses: below min misses
        (1, 5, Grade::Warn),   // rate 0.167, misses at 5
        (25, 75, Grade::Ok),   // exactly 0.25
        (24, 76, Grade::Warn), // just below 0.25
        (10, 90, Grade::Warn), // exactly 0.10: warn, not fail
        (9, 91, Grade::Fail),  // just below 0.10 with 91 misses: the fixed fail rule
        (1, 19, Grade::Warn),  // 0.05 but 19 misses: below fail min misses
        (1, 20, Grade::Fail),  // 0.0476, misses at 20
        (0, 20, Grade::Fail),  // all misses
        (100, 0, Grade::Ok),
    ];
    for (hits, misses, want) in cases {
        assert_eq!(
            grade_of(
                &CacheHealthSettings::default(),
                observe(with_hits(hits, misses)),
                HIT_RATE
            ),
            want,
            "{hits} hits / {misses} misses"
        );
    }
}

#[test]
fn counters_are_graded_since_the_previous_probe_unless_the_server_restarted() {
    let previous = Counters {
        uptime_seconds: 900,
        hits: 10,
        misses: 0,
        evicted: 0,
        rejected: 0,
    };
    // since the previous probe: 80 hits, 10 misses: ok; the cumulative rate would be the same
    let mut obs = observe(healthy_info());
    obs.previous = Some(previous);
    let s = evaluate(
        &CacheHealthSettings::default(),
        &CacheState::Up(Box::new(obs)),
        source(),
        now(),
    );
    assert_eq!(s.metrics["hits"], 80.0);
    assert_eq!(
        s.component(HIT_RATE).unwrap().details["window"],
        "since the previous probe".into()
    );
    // idle since the previous probe but reads since start: ok, not "no requests"
    let mut idle = observe(healthy_info());
    idle.previous = Some(Counters {
        uptime_seconds: 900,
        hits: 90,
        misses: 10,
        evicted: 0,
        rejected: 0,
    });
    assert_eq!(
        grade_of(&CacheHealthSettings::default(), idle, HIT_RATE),
        Grade::Ok
    );
    // an old eviction burst before the previous probe is not graded again
    let mut info = healthy_info();
    info.evicted_keys = Some(5000);
    let mut calm = observe(info.clone());
    calm.previous = Some(Counters {
        evicted: 5000,
        ..Counters::of(&healthy_info()).unwrap()
    });
    calm.previous.as_mut().unwrap().uptime_seconds = 990;
    assert_eq!(
        grade_of(&CacheHealthSettings::default(), calm, EVICTIONS),
        Grade::Ok
    );
    // a restart (uptime went back): counters since the (recent) start are graded
    info.uptime_seconds = Some(20);
    let mut restarted = observe(info);
    restarted.previous = Some(Counters {
        uptime_seconds: 5000,
        hits: 0,
        misses: 0,
        evicted: 0,
        rejected: 0,
    });
    let s = evaluate(
        &CacheHealthSettings::default(),
        &CacheState::Up(Box::new(restarted)),
        source(),
        now(),
    );
    assert_eq!(s.component(EVICTIONS).unwrap().status, Grade::Fail);
    assert_eq!(
        s.component(EVICTIONS).unwrap().details["window"],
        "since server start".into()
    );
}

#[test]
fn eviction_thresholds() {
    for (evicted, want) in [
        (0, Grade::Ok),
        (1, Grade::Warn),
        (999, Grade::Warn),
        (1000, Grade::Fail),
        (u64::MAX, Grade::Fail),
    ] {
        let mut info = healthy_info();
        info.evicted_keys = Some(evicted);
        assert_eq!(
            grade_of(
                &CacheHealthSettings::default(),
                observe(fresh(info)),
                EVICTIONS
            ),
            want,
            "{evicted} evicted"
        );
    }
}

#[test]
fn the_first_probe_of_a_long_running_server_reports_old_evictions_without_grading_them() {
    // uptime 1000 s > 2 × 30 s: since-start counters may be months old
    let mut info = healthy_info();
    info.evicted_keys = Some(5000);
    info.rejected_connections = Some(3);
    let s = evaluate(
        &CacheHealthSettings::default(),
        &CacheState::Up(Box::new(observe(info.clone()))),
        source(),
        now(),
    );
    assert_eq!(s.component(EVICTIONS).unwrap().status, Grade::Ok);
    assert!(s
        .component(EVICTIONS)
        .unwrap()
        .summary
        .contains("next probe"));
    assert_eq!(s.component(CLIENTS).unwrap().status, Grade::Ok);
    // at two intervals of uptime they are still graded; one second later no longer
    for (uptime, want) in [(60, Grade::Fail), (61, Grade::Ok)] {
        info.uptime_seconds = Some(uptime);
        assert_eq!(
            grade_of(
                &CacheHealthSettings::default(),
                observe(info.clone()),
                EVICTIONS
            ),
            want,
            "uptime {uptime}"
        );
    }
}

#[test]
fn memory_thresholds() {
    // warn at 0.85, fail at 0.95 of maxmemory; 0 = unlimited
    for (used, max, want) in [
        (84, 100, Grade::Ok),
        (85, 100, Grade::Warn),
        (86, 100, Grade::Warn),
        (94, 100, Grade::Warn),
        (95, 100, Grade::Fail),
        (200, 100, Grade::Fail),
        (u64::MAX, 0, Grade::Ok),
    ] {
        let mut info = healthy_info();
        info.used_memory = Some(used);
        info.maxmemory = Some(max);
        assert_eq!(
            grade_of(&CacheHealthSettings::default(), observe(info), MEMORY),
            want,
            "{used}/{max}"
        );
    }
    let mut info = healthy_info();
    info.used_memory = Some(96);
    info.maxmemory = Some(100);
    info.maxmemory_policy = Some("noeviction".into());
    let s = evaluate(
        &CacheHealthSettings::default(),
        &CacheState::Up(Box::new(observe(info))),
        source(),
        now(),
    );
    assert!(s
        .component(MEMORY)
        .unwrap()
        .summary
        .contains("writes are refused"));
}

#[test]
fn client_thresholds_and_rejections() {
    for (connected, max, rejected, want) in [
        (79, 100, 0, Grade::Ok),
        (80, 100, 0, Grade::Warn),
        (94, 100, 0, Grade::Warn),
        (95, 100, 0, Grade::Fail),
        (10, 0, 0, Grade::Ok), // maxclients 0 is not a ratio
        (10, 100, 1, Grade::Warn),
    ] {
        let mut info = healthy_info();
        info.connected_clients = Some(connected);
        info.maxclients = Some(max);
        info.rejected_connections = Some(rejected);
        assert_eq!(
            grade_of(
                &CacheHealthSettings::default(),
                observe(fresh(info)),
                CLIENTS
            ),
            want,
            "{connected}/{max} rejected {rejected}"
        );
    }
}

#[test]
fn replication_rules() {
    let role = |role: &str, link: Option<&str>, replicas: u64| {
        let mut info = healthy_info();
        info.role = Some(role.into());
        info.master_link_status = link.map(Into::into);
        info.connected_slaves = Some(replicas);
        info
    };
    let any = CacheHealthSettings::default();
    let master = CacheHealthSettings {
        role: ExpectedRole::Master,
        min_replicas: 1,
        ..CacheHealthSettings::default()
    };
    let replica = CacheHealthSettings {
        role: ExpectedRole::Replica,
        ..CacheHealthSettings::default()
    };
    for (settings, info, want) in [
        (&any, role("master", None, 0), Grade::Ok),
        (&any, role("slave", Some("up"), 0), Grade::Ok),
        (&any, role("slave", Some("down"), 0), Grade::Fail),
        (&any, role("slave", None, 0), Grade::Fail),
        (&master, role("master", None, 0), Grade::Warn), // below min replicas
        (&master, role("master", None, 1), Grade::Ok),   // at min replicas
        (&master, role("slave", Some("up"), 0), Grade::Fail),
        (&replica, role("master", None, 3), Grade::Fail),
        (&replica, role("slave", Some("up"), 0), Grade::Ok),
    ] {
        assert_eq!(
            grade_of(settings, observe(info.clone()), REPLICATION),
            want,
            "{:?} {:?}",
            settings.role,
            info.role
        );
    }
}

#[test]
fn missing_or_hostile_info_fields_warn_and_never_panic() {
    let hostile = parse_info(
        b"keyspace_hits:-1\nkeyspace_misses:1e99\nused_memory:NaN\nmaxmemory:99999999999999999999\n\
          role:<b>\nconnected_clients:\xff\n",
    );
    let s = evaluate(
        &CacheHealthSettings::default(),
        &CacheState::Up(Box::new(observe(hostile))),
        source(),
        now(),
    );
    s.validate().expect("a valid snapshot from hostile INFO");
    assert_eq!(s.status, Grade::Warn);
    for name in [HIT_RATE, EVICTIONS, MEMORY, CLIENTS, REPLICATION, INFO] {
        assert_eq!(s.component(name).unwrap().status, Grade::Warn, "{name}");
    }
    assert!(s.metrics.values().all(|v| v.is_finite()));
    // an empty INFO: everything unknown is warn, not ok and not fail
    let s = evaluate(
        &CacheHealthSettings::default(),
        &CacheState::Up(Box::new(observe(InfoFields::default()))),
        source(),
        now(),
    );
    assert_eq!(s.status, Grade::Warn);
}
