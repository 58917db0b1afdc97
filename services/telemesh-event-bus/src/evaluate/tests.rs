//! Data-driven tests of every event-bus rule, at, below and above each threshold.

use chrono::{Duration, TimeZone};
use telemesh_core::transport::BrokerStats;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0)
        .single()
        .expect("valid time")
}

fn source() -> Source {
    Source::new("event-bus", "test")
}

/// A healthy in-process bus: 10 published, 1 subscriber, capacity 10000 (ratios stay low).
fn inproc() -> TransportStats {
    TransportStats {
        system: "telemesh_inproc".into(),
        running: true,
        queue_depth: 0,
        queue_capacity: Some(10_000),
        published: 10,
        subscribers: Some(1),
        last_published_at: Some(now() - Duration::seconds(5)),
        ..TransportStats::default()
    }
}

fn broker(name: &str, state: &str, rtt: Option<f64>) -> BrokerStats {
    BrokerStats {
        name: name.into(),
        state: state.into(),
        rtt_avg_ms: rtt,
        rtt_p99_ms: rtt,
        outbuf_cnt: 0,
        outbuf_msg_cnt: 0,
        waitresp_cnt: 0,
        txerrs: 0,
        txretries: 0,
        req_timeouts: 0,
    }
}

fn kafka() -> TransportStats {
    TransportStats {
        system: "kafka".into(),
        queue_capacity: Some(100_000),
        subscribers: None,
        stats_at: Some(now() - Duration::seconds(2)),
        brokers: vec![
            broker("127.0.0.1:9092/bootstrap", "INIT", None),
            broker("localhost:9092/1", "UP", Some(2.0)),
        ],
        ..inproc()
    }
}

fn eval(stats: TransportStats, previous: Option<TransportStats>) -> Snapshot {
    eval_with(&EventBusSettings::default(), stats, previous)
}

fn eval_with(
    settings: &EventBusSettings,
    stats: TransportStats,
    previous: Option<TransportStats>,
) -> Snapshot {
    let s = evaluate(
        settings,
        &BusState {
            stats: Some(stats),
            previous,
        },
        source(),
        now(),
    );
    s.validate().expect("valid snapshot");
    s
}

fn grade(s: &Snapshot, name: &str) -> Grade {
    s.component(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .status
}

#[test]
fn healthy_buses_are_ok() {
    let s = eval(inproc(), None);
    assert_eq!(s.status, Grade::Ok, "{:#?}", s.components);
    assert!(s.component(BROKERS).is_none());
    let s = eval(kafka(), None);
    assert_eq!(s.status, Grade::Ok, "{:#?}", s.components);
    assert_eq!(s.metrics["brokers_up"], 1.0);
    assert_eq!(s.kind, KIND);
}

#[test]
fn no_statistics_warns() {
    let s = evaluate(
        &EventBusSettings::default(),
        &BusState::default(),
        source(),
        now(),
    );
    assert_eq!(s.status, Grade::Warn);
}

#[test]
fn not_running_is_forced_fail_when_expected() {
    let down = TransportStats {
        running: false,
        last_error: Some("all brokers down".into()),
        ..kafka()
    };
    let s = eval(down.clone(), None);
    assert_eq!(grade(&s, RUNNING), Grade::Fail);
    assert!(s.summary.contains("all brokers down"));
    let optional = EventBusSettings {
        expected: false,
        ..EventBusSettings::default()
    };
    assert_eq!(
        grade(&eval_with(&optional, down, None), RUNNING),
        Grade::Warn
    );
}

#[test]
fn queue_thresholds_absolute_and_against_capacity() {
    // absolute: warn 100, fail 500; ratio: warn 0.5, fail 0.9
    for (depth, capacity, want) in [
        (99, Some(100_000), Grade::Ok),
        (100, Some(100_000), Grade::Warn),
        (499, Some(100_000), Grade::Warn),
        (500, Some(100_000), Grade::Fail),
        (49, Some(100), Grade::Ok),
        (50, Some(100), Grade::Warn), // ratio at 0.5 (absolute below 100)
        (89, Some(100), Grade::Warn),
        (90, Some(100), Grade::Fail), // ratio at 0.9
        (99, None, Grade::Ok),
        (0, Some(0), Grade::Ok), // a zero capacity is not a ratio
    ] {
        let stats = TransportStats {
            queue_depth: depth,
            queue_capacity: capacity,
            ..inproc()
        };
        assert_eq!(
            grade(&eval(stats, None), QUEUE),
            want,
            "{depth} of {capacity:?}"
        );
    }
}

#[test]
fn delivery_errors_drops_and_retries_since_the_previous_gather() {
    // errors warn 1 fail 5; dropped warn 1 fail 5; retries warn 1 fail 100
    let with = |errors, dropped, retries| TransportStats {
        delivery_errors: errors,
        dropped,
        retries,
        ..inproc()
    };
    for ((e, d, r), want) in [
        ((0, 0, 0), Grade::Ok),
        ((1, 0, 0), Grade::Warn),
        ((4, 0, 0), Grade::Warn),
        ((5, 0, 0), Grade::Fail),
        ((0, 1, 0), Grade::Warn),
        ((0, 5, 0), Grade::Fail),
        ((0, 0, 99), Grade::Warn),
        ((0, 0, 100), Grade::Fail),
    ] {
        assert_eq!(
            grade(&eval(with(e, d, r), None), DELIVERY),
            want,
            "{e} {d} {r}"
        );
    }
    // 50 errors long ago, none since the previous gather: ok
    assert_eq!(
        grade(&eval(with(50, 7, 300), Some(with(50, 7, 300))), DELIVERY),
        Grade::Ok
    );
    // 4 more since the previous gather: warn
    assert_eq!(
        grade(&eval(with(54, 7, 300), Some(with(50, 7, 300))), DELIVERY),
        Grade::Warn
    );
    // a counter that went back (a new transport): the totals count
    assert_eq!(
        grade(&eval(with(6, 0, 0), Some(with(50, 0, 0))), DELIVERY),
        Grade::Fail
    );
}

#[test]
fn dead_letters_and_missing_consumers() {
    // warn 1, fail 3
    for (dead, subscribers, want) in [
        (0, Some(1), Grade::Ok),
        (1, Some(1), Grade::Warn),
        (2, Some(1), Grade::Warn),
        (3, Some(1), Grade::Fail),
        (0, Some(0), Grade::Warn),
        (0, None, Grade::Ok),
    ] {
        let stats = TransportStats {
            handler_errors: dead,
            subscribers,
            ..inproc()
        };
        assert_eq!(
            grade(&eval(stats, None), HANDLERS),
            want,
            "{dead} {subscribers:?}"
        );
    }
}

#[test]
fn activity_idle_and_nothing_published() {
    for (published, idle, want) in [
        (0, None, Grade::Warn),
        (5, Some(300), Grade::Ok),
        (5, Some(301), Grade::Warn),
        (5, None, Grade::Ok),
    ] {
        let stats = TransportStats {
            published,
            last_published_at: idle.map(|s| now() - Duration::seconds(s)),
            ..inproc()
        };
        assert_eq!(
            grade(&eval(stats, None), ACTIVITY),
            want,
            "{published} {idle:?}"
        );
    }
}

#[test]
fn broker_rtt_outbuf_errors_and_stale_statistics() {
    let with_rtt = |rtt| TransportStats {
        brokers: vec![broker("b/1", "UP", Some(rtt))],
        ..kafka()
    };
    for (rtt, want) in [
        (99.9, Grade::Ok),
        (100.0, Grade::Warn),
        (999.9, Grade::Warn),
        (1000.0, Grade::Fail),
    ] {
        assert_eq!(grade(&eval(with_rtt(rtt), None), BROKERS), want, "{rtt} ms");
    }
    let mut stats = kafka();
    stats.brokers[1].outbuf_msg_cnt = 500;
    assert_eq!(grade(&eval(stats, None), BROKERS), Grade::Fail);
    let mut stats = kafka();
    stats.brokers[1].txerrs = 3;
    let mut before = kafka();
    before.brokers[1].txerrs = 3;
    assert_eq!(
        grade(&eval(stats.clone(), Some(before)), BROKERS),
        Grade::Ok
    );
    assert_eq!(grade(&eval(stats, None), BROKERS), Grade::Warn);
    for (age, want) in [(30, Grade::Ok), (31, Grade::Warn)] {
        let stats = TransportStats {
            stats_at: Some(now() - Duration::seconds(age)),
            ..kafka()
        };
        assert_eq!(grade(&eval(stats, None), BROKERS), want, "{age} s");
    }
    // a learned broker down while another is UP
    let mut stats = kafka();
    stats.brokers.push(broker("c/2", "DOWN", None));
    assert_eq!(grade(&eval(stats, None), BROKERS), Grade::Warn);
}

#[test]
fn hostile_counters_do_not_panic() {
    let stats = TransportStats {
        queue_depth: u64::MAX,
        queue_capacity: Some(1),
        delivery_errors: u64::MAX,
        dropped: u64::MAX,
        handler_errors: u64::MAX,
        retries: u64::MAX,
        published: u64::MAX,
        last_published_at: Some(now() + Duration::days(365)),
        brokers: vec![BrokerStats {
            outbuf_msg_cnt: u64::MAX,
            ..broker("b/1", "UP", Some(f64::MAX))
        }],
        ..kafka()
    };
    let s = eval(stats.clone(), Some(stats));
    assert_eq!(s.status, Grade::Fail);
}
