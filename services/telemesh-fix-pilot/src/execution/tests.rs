//! Execution readiness rules at, below and above each boundary (data-driven tables), the
//! state derived from a real order book, and the snapshot's shape.

use super::*;
use crate::codes::{ExecType, OrdStatus, Side};
use crate::fixed::Fixed;
use crate::orders::NewOrder;
use crate::report::ExecReport;
use crate::state::{QueueState, SessionState, SessionStatus};

fn idle() -> ExecutionState {
    ExecutionState {
        orders_submitted: 0,
        orders_executed: 0,
        orders_failed: 0,
        pending_orders: 0,
        ack_latency: Latency::default(),
        fill_latency: Latency::default(),
        rejections: Vec::new(),
        via_fix: true,
        connection_healthy: true,
        trading_state: "active".into(),
        drop_copy_configured: true,
        drop_copy_active: true,
        drop_copy_lag_seconds: None,
        dropped_messages: 0,
        drop_copy_open_breaks: 0,
        sessions_active: vec!["trading".into(), "dropcopy".into()],
        last_error: None,
        last_execution_ms: None,
    }
}

/// A state with `submitted` orders of which `executed` filled and `failed` rejected.
fn orders(submitted: u64, executed: u64, failed: u64) -> ExecutionState {
    ExecutionState {
        orders_submitted: submitted,
        orders_executed: executed,
        orders_failed: failed,
        ..idle()
    }
}

fn codes(policy: &ExecutionPolicy, s: &ExecutionState, component: &str) -> Vec<(String, Grade)> {
    issues(policy, s)
        .remove(component)
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.code.to_owned(), i.severity))
        .collect()
}

fn one(code: &str, g: Grade) -> Vec<(String, Grade)> {
    vec![(code.to_owned(), g)]
}

const NONE: Vec<(String, Grade)> = Vec::new();

#[test]
fn fill_rate_boundaries() {
    let p = ExecutionPolicy::default(); // min 0.9, fail below 0.72 with >= 5 orders
    let table: Vec<(ExecutionState, Vec<(String, Grade)>)> = vec![
        (orders(0, 0, 0), one("no_orders", Grade::Warn)),
        (orders(10, 9, 0), NONE),   // at the target
        (orders(100, 91, 0), NONE), // above
        (
            orders(100, 89, 0),
            one("fill_rate_below_target", Grade::Warn),
        ), // below
        (
            orders(100, 72, 0),
            one("fill_rate_below_target", Grade::Warn),
        ), // at 0.8 x min
        (
            orders(100, 71, 0),
            one("fill_rate_below_target", Grade::Fail),
        ), // below 0.8 x min
        (orders(4, 0, 0), one("fill_rate_below_target", Grade::Warn)), // too few to fail
        (orders(5, 0, 0), one("fill_rate_below_target", Grade::Fail)), // at min_orders_for_fail
    ];
    for (s, want) in table {
        assert_eq!(codes(&p, &s, "fills"), want, "{s:?}");
    }
}

#[test]
fn rejection_rate_boundaries() {
    let p = ExecutionPolicy::default(); // max 0.05, fail above 0.075 with >= 5 orders
    let table: Vec<(ExecutionState, Vec<(String, Grade)>)> = vec![
        (orders(100, 100, 5), NONE), // at the limit
        (orders(100, 100, 4), NONE), // below
        (orders(100, 100, 6), one("rejection_rate_high", Grade::Warn)), // above
        (
            orders(1000, 1000, 75),
            one("rejection_rate_high", Grade::Warn),
        ), // at 1.5 x max
        (
            orders(1000, 1000, 76),
            one("rejection_rate_high", Grade::Fail),
        ), // above 1.5 x max
        (orders(4, 4, 4), one("rejection_rate_high", Grade::Warn)), // too few to fail
        (orders(5, 5, 5), one("rejection_rate_high", Grade::Fail)),
    ];
    for (s, want) in table {
        assert_eq!(codes(&p, &s, "rejections"), want, "{s:?}");
    }
    // an explicit 0 is a threshold, not "unset" (the original's quirk)
    let strict = ExecutionPolicy {
        max_rejection_rate: 0.0,
        ..ExecutionPolicy::default()
    };
    assert_eq!(codes(&strict, &orders(100, 100, 0), "rejections"), NONE);
    assert_eq!(
        codes(&strict, &orders(100, 100, 1), "rejections"),
        one("rejection_rate_high", Grade::Fail)
    );
}

#[test]
fn rejection_trend_boundaries() {
    let p = ExecutionPolicy::default(); // rising and recent >= 3
    let with = |recent: u64, previous: u64| ExecutionState {
        rejections: vec![RejectionReason {
            reason: "risk limit".into(),
            total: recent + previous,
            recent,
            previous,
        }],
        // rates kept within the limit so only the trend speaks
        ..orders(10_000, 10_000, recent + previous)
    };
    let table = [
        (with(3, 2), one("rejection_trend_rising", Grade::Warn)), // at the count, rising
        (with(2, 1), NONE),                                       // rising, below the count
        (with(4, 1), one("rejection_trend_rising", Grade::Warn)), // above
        (with(3, 3), NONE),                                       // steady
        (with(3, 4), NONE),                                       // falling
    ];
    for (s, want) in table {
        assert_eq!(codes(&p, &s, "rejections"), want, "{s:?}");
    }
    assert_eq!(with(3, 2).rejections[0].trend(), Trend::Rising);
    assert_eq!(with(3, 3).rejections[0].trend(), Trend::Steady);
    assert_eq!(with(1, 3).rejections[0].trend(), Trend::Falling);
}

#[test]
fn pending_boundaries() {
    let p = ExecutionPolicy::default(); // max 5, fail at >= 10
    for (pending, want) in [
        (4, NONE),
        (5, NONE),
        (6, one("pending_orders_exceeded", Grade::Warn)),
        (9, one("pending_orders_exceeded", Grade::Warn)),
        (10, one("pending_orders_exceeded", Grade::Fail)),
        (11, one("pending_orders_exceeded", Grade::Fail)),
    ] {
        let s = ExecutionState {
            pending_orders: pending,
            ..orders(100, 100, 0)
        };
        assert_eq!(codes(&p, &s, "pending"), want, "pending {pending}");
    }
}

#[test]
fn latency_boundaries() {
    let p = ExecutionPolicy::default(); // avg 500 (fail > 750), p99 1500
    let with = |avg: f64, p99: f64| ExecutionState {
        ack_latency: Latency {
            samples: 100,
            avg_ms: Some(avg),
            p50_ms: Some(avg),
            p90_ms: Some(avg),
            p99_ms: Some(p99),
            max_ms: Some(p99),
        },
        ..orders(100, 100, 0)
    };
    let table = [
        (with(499.0, 1499.0), NONE),
        (with(500.0, 1500.0), NONE),
        (with(501.0, 1000.0), one("latency_average", Grade::Warn)),
        (with(750.0, 1000.0), one("latency_average", Grade::Warn)),
        (with(751.0, 1000.0), one("latency_average", Grade::Fail)),
        (with(100.0, 1501.0), one("latency_peak", Grade::Warn)),
    ];
    for (s, want) in table {
        assert_eq!(codes(&p, &s, "latency"), want, "{:?}", s.ack_latency);
    }
    // no samples: nothing to grade
    assert_eq!(codes(&p, &orders(100, 100, 0), "latency"), NONE);
}

#[test]
fn connection_drop_copy_and_session_rules() {
    let p = ExecutionPolicy::default();
    let down = ExecutionState {
        connection_healthy: false,
        trading_state: "disconnected".into(),
        last_error: Some("venue closed the session".into()),
        ..orders(10, 10, 0)
    };
    assert_eq!(
        codes(&p, &down, "connection"),
        vec![
            ("connection_down".to_owned(), Grade::Fail),
            ("last_error".to_owned(), Grade::Warn)
        ]
    );
    let lenient = ExecutionPolicy {
        require_connection: false,
        ..ExecutionPolicy::default()
    };
    assert_eq!(codes(&lenient, &down, "connection")[0].1, Grade::Warn);

    // drop copy: (configured, active, required, lag, dropped) -> issues
    let dc = |configured: bool, active: bool, lag: Option<f64>, dropped: u64| ExecutionState {
        drop_copy_configured: configured,
        drop_copy_active: active,
        drop_copy_lag_seconds: lag,
        dropped_messages: dropped,
        ..orders(10, 10, 0)
    };
    let required = ExecutionPolicy {
        require_drop_copy: true,
        ..ExecutionPolicy::default()
    };
    let table = [
        (&p, dc(false, false, None, 0), NONE),
        (
            &required,
            dc(false, false, None, 0),
            one("drop_copy_inactive", Grade::Fail),
        ),
        (
            &p,
            dc(true, false, None, 0),
            one("drop_copy_inactive", Grade::Warn),
        ),
        (
            &required,
            dc(true, false, None, 0),
            one("drop_copy_inactive", Grade::Fail),
        ),
        (&p, dc(true, true, Some(10.0), 0), NONE), // at the lag limit
        (&p, dc(true, true, Some(9.9), 0), NONE),
        (
            &p,
            dc(true, true, Some(10.1), 0),
            one("drop_copy_lag", Grade::Warn),
        ),
        (
            &p,
            dc(true, true, None, 1),
            one("drop_copy_dropped_messages", Grade::Warn),
        ),
        (&p, dc(true, true, None, 0), NONE),
    ];
    for (policy, s, want) in table {
        assert_eq!(codes(policy, &s, "drop_copy"), want, "{s:?}");
    }

    // sessions: min 2 with 1, 2, 3 active, warn or fail
    let need = |warn: bool| ExecutionPolicy {
        min_active_sessions: 2,
        warn_on_missing_sessions: warn,
        ..ExecutionPolicy::default()
    };
    let with = |n: usize| ExecutionState {
        sessions_active: (0..n).map(|i| format!("s{i}")).collect(),
        ..orders(10, 10, 0)
    };
    assert_eq!(
        codes(&need(true), &with(1), "sessions"),
        one("missing_sessions", Grade::Warn)
    );
    assert_eq!(
        codes(&need(false), &with(1), "sessions"),
        one("missing_sessions", Grade::Fail)
    );
    assert_eq!(codes(&need(true), &with(2), "sessions"), NONE);
    assert_eq!(codes(&need(true), &with(3), "sessions"), NONE);
    assert_eq!(codes(&p, &with(0), "sessions"), NONE, "min 0 needs none");
}

#[test]
fn percentiles_are_nearest_rank() {
    let l = Latency::of((1..=100).collect());
    assert_eq!(l.samples, 100);
    assert_eq!(l.p50_ms, Some(50.0));
    assert_eq!(l.p90_ms, Some(90.0));
    assert_eq!(l.p99_ms, Some(99.0));
    assert_eq!(l.max_ms, Some(100.0));
    assert_eq!(l.avg_ms, Some(50.5));
    let one = Latency::of(vec![7]);
    assert_eq!((one.p50_ms, one.p99_ms), (Some(7.0), Some(7.0)));
    // a clock step backwards is clamped, never a negative latency
    assert_eq!(Latency::of(vec![-5, 3]).p50_ms, Some(0.0));
    assert_eq!(Latency::of(Vec::new()), Latency::default());
}

#[test]
fn policy_validation_names_the_key() {
    assert!(ExecutionPolicy::default().validate().is_ok());
    for (p, key) in [
        (
            ExecutionPolicy {
                min_fill_rate: 1.5,
                ..ExecutionPolicy::default()
            },
            "execution.min_fill_rate",
        ),
        (
            ExecutionPolicy {
                max_rejection_rate: f64::NAN,
                ..ExecutionPolicy::default()
            },
            "execution.max_rejection_rate",
        ),
        (
            ExecutionPolicy {
                max_latency_ms: -1.0,
                ..ExecutionPolicy::default()
            },
            "execution.max_latency_ms",
        ),
        (
            ExecutionPolicy {
                trend_window_seconds: 0.0,
                ..ExecutionPolicy::default()
            },
            "execution.trend_window_seconds",
        ),
    ] {
        assert_eq!(p.validate().unwrap_err().0, key);
    }
}

fn new_order(cl: &str) -> NewOrder {
    NewOrder {
        cl_ord_id: cl.into(),
        symbol: "AAPL".into(),
        side: Side::Buy,
        order_qty: Fixed::from_int(10),
        price: Some(Fixed::parse("10").expect("price")),
        account: None,
    }
}

fn report(cl: &str, oid: &str, et: ExecType, os: OrdStatus, last: i64, cum: i64) -> ExecReport {
    ExecReport {
        exec_id: format!("{oid}-{cum}-{}", et.code()),
        order_id: oid.into(),
        cl_ord_id: cl.into(),
        orig_cl_ord_id: None,
        exec_ref_id: None,
        exec_type: et,
        ord_status: os,
        side: Side::Buy,
        symbol: "AAPL".into(),
        order_qty: Some(Fixed::from_int(10)),
        price: Some(Fixed::parse("10").expect("price")),
        last_qty: Fixed::from_int(last),
        last_px: Fixed::parse("10").expect("price"),
        cum_qty: Fixed::from_int(cum),
        leaves_qty: Fixed::from_int(10 - cum),
        avg_px: None,
        poss_dup: false,
        poss_resend: false,
        account: None,
        source: None,
        transact_time: None,
        text: None,
    }
}

fn pilot(trading: SessionStatus, dropcopy: Option<SessionStatus>) -> PilotState {
    PilotState {
        executions_source: ExecutionsSource::Fix,
        trading: SessionState {
            configured: true,
            status: trading,
            last_logout_reason: Some("heartbeat timeout".into()),
            ..SessionState::default()
        },
        dropcopy: SessionState {
            configured: dropcopy.is_some(),
            status: dropcopy.unwrap_or_default(),
            ..SessionState::default()
        },
        queues: QueueState::default(),
        orders: Default::default(),
        recon: None,
        execution: None,
    }
}

#[test]
fn the_state_is_derived_from_the_order_book() {
    let mut book = OrderBook::new();
    // F1: acked after 20 ms, filled after 50 ms
    book.on_sent(&new_order("F1"), 1_000);
    book.apply(
        &report("F1", "O1", ExecType::New, OrdStatus::New, 0, 0),
        1_020,
    );
    book.apply(
        &report("F1", "O1", ExecType::Trade, OrdStatus::Filled, 10, 10),
        1_050,
    );
    // R1, R2: rejected; R1 in the previous window, R2 in the last one
    book.on_sent(&new_order("R1"), 2_000);
    let mut rej = report("R1", "NONE", ExecType::Rejected, OrdStatus::Rejected, 0, 0);
    rej.text = Some("risk limit".into());
    book.apply(&rej, 2_010);
    book.on_sent(&new_order("R2"), 400_000);
    let mut rej = report("R2", "NONE", ExecType::Rejected, OrdStatus::Rejected, 0, 0);
    rej.text = Some("  risk limit ".into());
    book.apply(&rej, 400_030);
    // R3: rejected without a Text
    book.on_sent(&new_order("R3"), 400_000);
    book.apply(
        &report("R3", "NONE", ExecType::Rejected, OrdStatus::Rejected, 0, 0),
        400_040,
    );
    // P1: sent, never answered
    book.on_sent(&new_order("P1"), 400_000);
    // X1: only known from its fill (the platform's gateway): no latency sample
    book.apply(
        &report("X1", "O9", ExecType::Trade, OrdStatus::Filled, 10, 10),
        400_050,
    );

    let policy = ExecutionPolicy::default();
    let live = pilot(SessionStatus::Active, Some(SessionStatus::Active));
    let s = ExecutionState::derive(&book, &live, &policy, 500_000);
    assert_eq!(
        (
            s.orders_submitted,
            s.orders_executed,
            s.orders_failed,
            s.pending_orders
        ),
        (6, 2, 3, 1)
    );
    assert_eq!(s.ack_latency.samples, 4, "F1, R1, R2, R3");
    assert_eq!(s.ack_latency.p50_ms, Some(20.0));
    assert_eq!(s.ack_latency.max_ms, Some(40.0));
    assert_eq!(s.fill_latency.samples, 1);
    assert_eq!(s.fill_latency.p50_ms, Some(50.0));
    assert_eq!(
        s.rejections,
        vec![
            RejectionReason {
                reason: "risk limit".into(),
                total: 2,
                recent: 1,
                previous: 1
            },
            RejectionReason {
                reason: "unspecified".into(),
                total: 1,
                recent: 1,
                previous: 0
            },
        ]
    );
    assert!(s.connection_healthy && s.drop_copy_active && s.last_error.is_none());
    assert_eq!(s.sessions_active, ["trading", "dropcopy"]);
    assert_eq!(s.last_execution_ms, Some(400_050));

    let down = pilot(SessionStatus::Disconnected, None);
    let s = ExecutionState::derive(&book, &down, &policy, 500_000);
    assert!(!s.connection_healthy && !s.drop_copy_active && !s.drop_copy_configured);
    assert_eq!(s.trading_state, "disconnected");
    assert_eq!(s.last_error.as_deref(), Some("heartbeat timeout"));
    assert!(s.sessions_active.is_empty());
}

#[test]
fn the_snapshot_has_every_component_metric_and_issue() {
    let policy = ExecutionPolicy::default();
    let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
    let idle_snapshot = evaluate_execution(&policy, &idle(), Source::new("fix-pilot", "t"), now);
    assert_eq!(idle_snapshot.kind, "telemetry.operational.execution");
    assert_eq!(
        idle_snapshot.status,
        Grade::Warn,
        "an idle service is never ok"
    );
    assert!(idle_snapshot.validate().is_ok());
    let names: Vec<&str> = idle_snapshot
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, COMPONENTS);
    assert!(
        !idle_snapshot.metrics.contains_key("fill_rate"),
        "n/a before the first order"
    );

    let mut s = orders(10, 6, 4);
    s.ack_latency = Latency::of(vec![10, 20, 30]);
    s.rejections = vec![RejectionReason {
        reason: "rejected by test venue".into(),
        total: 4,
        recent: 4,
        previous: 0,
    }];
    let snap = evaluate_execution(&policy, &s, Source::new("fix-pilot", "t"), now);
    assert!(snap.validate().is_ok());
    assert_eq!(snap.status, Grade::Fail);
    assert_eq!(snap.metrics["fill_rate"], 0.6);
    assert_eq!(snap.metrics["failure_rate"], 0.4);
    assert_eq!(snap.metrics["ack_p50_ms"], 20.0);
    assert_eq!(snap.metrics["orders_submitted"], 10.0);
    let rejections = snap.component("rejections").expect("rejections");
    assert_eq!(rejections.status, Grade::Fail);
    assert!(
        snap.markdown.contains("- fill rate: 60.00%"),
        "{}",
        snap.markdown
    );
    assert!(snap.markdown.contains("**Issues**"), "{}", snap.markdown);
    assert!(
        snap.markdown.contains("[fail] rejection rate 40.00%"),
        "{}",
        snap.markdown
    );
    assert!(
        snap.summary.starts_with("fill 60.00%, rejections 40.00%"),
        "{}",
        snap.summary
    );
}
