//! Unit tests of both evaluators on hand-built states.

use chrono::TimeZone;

use super::*;
use crate::codes::{ExecType, OrdStatus, Side};
use crate::fixed::Fixed;
use crate::orders::OrderPosture;
use crate::reconciler::{ReconPolicy, Reconciler, Stream};
use crate::report::ExecReport;
use crate::state::{QueueState, SessionStatus};

const NOW: i64 = 1_800_000_000_000;

fn now() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(NOW).single().unwrap()
}

fn source() -> Source {
    Source::new("fix-pilot", "test")
}

fn session(status: SessionStatus) -> SessionState {
    SessionState {
        configured: true,
        endpoint: "PILOT->VENUE@127.0.0.1:5101".into(),
        status,
        since_ms: Some(NOW - 60_000),
        heartbeat_interval_s: 30,
        last_inbound_ms: Some(NOW - 1_000),
        next_sender_seq: Some(5),
        next_target_seq: Some(7),
        logons: 1,
        ..SessionState::default()
    }
}

fn fill(exec_id: &str, px: &str) -> ExecReport {
    ExecReport {
        exec_id: exec_id.into(),
        order_id: "O1".into(),
        cl_ord_id: "C1".into(),
        orig_cl_ord_id: None,
        exec_ref_id: None,
        exec_type: ExecType::Trade,
        ord_status: OrdStatus::Filled,
        side: Side::Buy,
        symbol: "AAPL".into(),
        order_qty: Some(Fixed::from_int(100)),
        price: Some(Fixed::parse("10.5").unwrap()),
        last_qty: Fixed::from_int(100),
        last_px: Fixed::parse(px).unwrap(),
        cum_qty: Fixed::from_int(100),
        leaves_qty: Fixed::ZERO,
        avg_px: None,
        poss_dup: false,
        poss_resend: false,
        account: None,
        source: None,
        transact_time: None,
        text: None,
    }
}

fn healthy() -> (PilotState, Reconciler) {
    let mut r = Reconciler::new(ReconPolicy::default());
    r.set_coverage(true, None, NOW - 10_000);
    r.on_report(Stream::Trading, fill("E1", "10.5"), NOW - 5_000);
    r.on_report(Stream::DropCopy, fill("E1", "10.5"), NOW - 4_900);
    r.tick(NOW);
    let state = PilotState {
        executions_source: ExecutionsSource::Fix,
        trading: session(SessionStatus::Active),
        dropcopy: session(SessionStatus::Active),
        queues: QueueState::default(),
        orders: r.orders().posture(NOW),
        recon: Some(r.summary(NOW)),
        execution: None,
    };
    (state, r)
}

fn grade_of(s: &Snapshot, name: &str) -> Grade {
    s.component(name)
        .unwrap_or_else(|| panic!("no component {name}"))
        .status
}

#[test]
fn a_healthy_pilot_is_ok_and_idle_queues_at_start_up_are_not_a_warning() {
    let (mut state, _) = healthy();
    state.queues = QueueState::default();
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(s.kind, topics::FIX_PILOT);
    let names: Vec<&str> = s.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["sessions", "queues", "orders", "dropcopy"]);
    assert_eq!(s.status, Grade::Ok, "{}", s.markdown);
    assert_eq!(
        s.component("queues").unwrap().details.get("idle"),
        Some(&DetailValue::Bool(true))
    );
    assert_eq!(s.validate(), Ok(()));
    let d = evaluate_dropcopy(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(d.kind, topics::DROPCOPY);
    assert_eq!(d.status, Grade::Ok, "{}", d.markdown);
    assert_eq!(d.summary, "1 matched, 0 pending, no open breaks");
    assert_eq!(d.validate(), Ok(()));
}

#[test]
fn a_configured_but_down_drop_copy_is_a_warning_and_a_down_trading_session_fails() {
    let (mut state, mut r) = healthy();
    state.dropcopy.status = SessionStatus::Disconnected;
    state.dropcopy.last_logout_reason = Some("connection reset".into());
    r.set_coverage(false, Some("drop copy disconnected".into()), NOW - 1_000);
    state.recon = Some(r.summary(NOW));
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "sessions"), Grade::Warn);
    assert_eq!(grade_of(&s, "dropcopy"), Grade::Warn);
    assert!(s
        .component("sessions")
        .unwrap()
        .summary
        .contains("connection reset"));
    assert_eq!(s.status, Grade::Warn);
    let d = evaluate_dropcopy(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&d, "coverage"), Grade::Warn);
    assert_eq!(grade_of(&d, "breaks"), Grade::Ok, "degraded, not breaks");
    assert!(
        d.summary.starts_with("degraded (drop copy disconnected)"),
        "{}",
        d.summary
    );

    state.trading.status = SessionStatus::AwaitingLogon;
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "sessions"), Grade::Fail);
}

#[test]
fn degraded_for_too_long_fails() {
    let (mut state, mut r) = healthy();
    r.set_coverage(false, Some("resend in flight".into()), NOW - 1_000_000);
    state.recon = Some(r.summary(NOW));
    let d = evaluate_dropcopy(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&d, "coverage"), Grade::Fail);
}

#[test]
fn no_drop_copy_configured_is_reported_and_fails_only_when_required() {
    let (mut state, _) = healthy();
    state.dropcopy = SessionState::default();
    state.recon = None;
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "dropcopy"), Grade::Ok);
    let required = PilotPolicy {
        require_dropcopy: true,
        ..PilotPolicy::default()
    };
    let s = evaluate_pilot(&required, &state, source(), now());
    assert_eq!(grade_of(&s, "dropcopy"), Grade::Fail);
    let d = evaluate_dropcopy(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(d.status, Grade::Warn);
    assert!(d.summary.contains("no drop copy configured"));
}

#[test]
fn the_trading_session_is_optional_when_the_platform_feeds_its_executions() {
    let (mut state, _) = healthy();
    state.trading = SessionState::default();
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "sessions"), Grade::Fail);
    let kafka = PilotPolicy {
        executions_source: ExecutionsSource::Kafka,
        ..PilotPolicy::default()
    };
    let s = evaluate_pilot(&kafka, &state, source(), now());
    assert_eq!(grade_of(&s, "sessions"), Grade::Ok);
}

#[test]
fn resends_stale_heartbeats_and_rejects_warn_on_sessions() {
    let (mut state, mut r) = healthy();
    state.dropcopy.status = SessionStatus::AwaitingResend {
        begin: 5,
        end: 9,
        attempts: 1,
    };
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "sessions"), Grade::Warn);
    assert!(s
        .component("sessions")
        .unwrap()
        .summary
        .contains("resend 5..9"));

    let (mut state, _) = healthy();
    state.trading.last_inbound_ms = Some(NOW - 100_000);
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "sessions"), Grade::Warn);

    let (mut state, _) = healthy();
    r.on_rejected(
        Stream::DropCopy,
        &crate::report::Rejection {
            reason: crate::report::RejectReason::UnknownExecType("Z".into()),
            exec_id: Some("BAD1".into()),
            cl_ord_id: None,
            msg_seq_num: None,
        },
        NOW - 1_000,
    );
    state.dropcopy.rejected = 1;
    state.recon = Some(r.summary(NOW));
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "sessions"), Grade::Warn);
    assert_eq!(
        s.component("sessions")
            .unwrap()
            .details
            .get("rejected_by_reason"),
        Some(&DetailValue::Map(
            [("unknown_exec_type".to_owned(), DetailValue::Int(1))].into()
        ))
    );
    let d = evaluate_dropcopy(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&d, "input"), Grade::Warn);
    assert!(d
        .component("input")
        .unwrap()
        .summary
        .contains("1 unknown_exec_type"));
}

#[test]
fn queue_drops_backlog_and_stuck_or_inconsistent_orders_warn() {
    let (mut state, _) = healthy();
    state.queues = QueueState {
        inbound_drops: 3,
        inbound_backlog: 5_000,
        inbound_processed: 10,
        ..QueueState::default()
    };
    state.orders = OrderPosture {
        open_orders: 2,
        inconsistent_orders: 1,
        oldest_pending_ms: Some(120_000),
        ..OrderPosture::default()
    };
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "queues"), Grade::Warn);
    assert_eq!(grade_of(&s, "orders"), Grade::Warn);
    let q = s.component("queues").unwrap();
    assert!(
        q.summary.contains("3 inbound messages dropped"),
        "{}",
        q.summary
    );
}

#[test]
fn a_price_mismatch_fails_and_lists_both_values() {
    let (mut state, mut r) = healthy();
    r.on_report(Stream::Trading, fill("E2", "10.5"), NOW - 3_000);
    r.on_report(Stream::DropCopy, fill("E2", "10.75"), NOW - 3_000);
    state.recon = Some(r.summary(NOW));
    let d = evaluate_dropcopy(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&d, "breaks"), Grade::Fail);
    assert_eq!(d.status, Grade::Fail);
    let breaks = d.component("breaks").unwrap();
    let Some(DetailValue::Map(open)) = breaks.details.get("open") else {
        panic!("open counts")
    };
    assert_eq!(open.get("price_mismatch"), Some(&DetailValue::Int(1)));
    assert_eq!(open.get("missing_on_dropcopy"), Some(&DetailValue::Int(0)));
    let Some(DetailValue::List(recent)) = breaks.details.get("recent") else {
        panic!("recent")
    };
    let DetailValue::Map(first) = &recent[0] else {
        panic!("a break")
    };
    let Some(DetailValue::List(diffs)) = first.get("diffs") else {
        panic!("diffs")
    };
    let DetailValue::Map(diff) = &diffs[0] else {
        panic!("a diff")
    };
    assert_eq!(diff.get("trading"), Some(&DetailValue::Text("10.5".into())));
    assert_eq!(
        diff.get("dropcopy"),
        Some(&DetailValue::Text("10.75".into()))
    );
    assert!(
        d.markdown.contains("last_px trading=10.5 dropcopy=10.75"),
        "{}",
        d.markdown
    );
    assert_eq!(d.metrics.get("open_breaks.price_mismatch"), Some(&1.0));
    let s = evaluate_pilot(&PilotPolicy::default(), &state, source(), now());
    assert_eq!(grade_of(&s, "dropcopy"), Grade::Fail);
}

#[test]
fn a_missing_fill_warns_then_fails_once_aged_past_the_escalation() {
    let (mut state, mut r) = healthy();
    r.on_report(Stream::Trading, fill("E3", "10.5"), NOW);
    r.tick(NOW + 6_000);
    state.recon = Some(r.summary(NOW + 6_000));
    let policy = PilotPolicy::default();
    let later = |ms: i64| Utc.timestamp_millis_opt(ms).single().unwrap();
    let d = evaluate_dropcopy(&policy, &state, source(), later(NOW + 6_000));
    assert_eq!(grade_of(&d, "breaks"), Grade::Warn, "{}", d.markdown);
    assert!(d.summary.contains("1 missing_on_dropcopy"), "{}", d.summary);
    let at = NOW + 6_000 + policy.escalate_ms;
    r.tick(at);
    state.recon = Some(r.summary(at));
    let d = evaluate_dropcopy(&policy, &state, source(), later(at));
    assert_eq!(grade_of(&d, "breaks"), Grade::Fail);
    assert!(
        d.metrics
            .get("oldest_open_break_age_seconds")
            .copied()
            .unwrap_or_default()
            >= 300.0
    );
}
