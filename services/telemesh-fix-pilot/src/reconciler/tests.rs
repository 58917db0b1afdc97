//! Unit tests of the reconciler on synthetic execution reports.

use super::*;
use crate::codes::{OrdStatus, Status};

const GRACE: i64 = 5_000;

fn px(s: &str) -> Fixed {
    Fixed::parse(s).unwrap()
}

fn report(
    exec_id: &str,
    et: ExecType,
    os: OrdStatus,
    last: i64,
    price: &str,
    cum: i64,
    leaves: i64,
) -> ExecReport {
    ExecReport {
        exec_id: exec_id.into(),
        order_id: "O1".into(),
        cl_ord_id: "C1".into(),
        orig_cl_ord_id: None,
        exec_ref_id: None,
        exec_type: et,
        ord_status: os,
        side: Side::Buy,
        symbol: "AAPL".into(),
        order_qty: Some(Fixed::from_int(cum + leaves)),
        price: Some(px("10.5")),
        last_qty: Fixed::from_int(last),
        last_px: px(price),
        cum_qty: Fixed::from_int(cum),
        leaves_qty: Fixed::from_int(leaves),
        avg_px: None,
        poss_dup: false,
        poss_resend: false,
        account: None,
        source: Some("PILOT".into()),
        transact_time: None,
        text: None,
    }
}

fn fill(exec_id: &str, last: i64, cum: i64, leaves: i64) -> ExecReport {
    let os = if leaves == 0 {
        OrdStatus::Filled
    } else {
        OrdStatus::PartiallyFilled
    };
    report(exec_id, ExecType::Trade, os, last, "10.5", cum, leaves)
}

fn ack(exec_id: &str, qty: i64) -> ExecReport {
    report(exec_id, ExecType::New, OrdStatus::New, 0, "0", 0, qty)
}

fn covered() -> Reconciler {
    let mut r = Reconciler::new(ReconPolicy {
        grace_ms: GRACE,
        other_sessions: vec!["PILOT2".into()],
        ..ReconPolicy::default()
    });
    r.set_coverage(true, None, 0);
    r
}

fn both(r: &mut Reconciler, er: &ExecReport, now: i64) -> Outcome {
    assert_eq!(
        r.on_report(Stream::Trading, er.clone(), now),
        Outcome::Pending
    );
    r.on_report(Stream::DropCopy, er.clone(), now)
}

#[test]
fn every_fill_on_both_sides_matches_in_either_order() {
    let mut r = covered();
    assert_eq!(both(&mut r, &ack("E0", 100), 1), Outcome::Matched);
    assert_eq!(both(&mut r, &fill("E1", 40, 40, 60), 2), Outcome::Matched);
    // the drop copy may be first
    assert_eq!(
        r.on_report(Stream::DropCopy, fill("E2", 60, 100, 0), 3),
        Outcome::Pending
    );
    assert_eq!(
        r.on_report(Stream::Trading, fill("E2", 60, 100, 0), 4),
        Outcome::Matched
    );
    r.tick(60_000);
    let s = r.summary(60_000);
    assert_eq!((s.matched, s.pending, s.open_break_count), (3, 0, 0));
    assert_eq!(s.reports.get("trading"), Some(&3));
    assert_eq!(s.match_rate(), 1.0);
    assert_eq!(s.last_clean_ms, Some(60_000));
    assert_eq!(
        (s.dropcopy_lag_last_ms, s.dropcopy_lag_max_ms),
        (Some(0), 0)
    );
    assert!(!s.degraded);
    assert_eq!(r.orders().posture(60_000).open_orders, 0);
}

#[test]
fn poss_dup_replays_are_not_new_fills() {
    let mut r = covered();
    both(&mut r, &fill("E1", 100, 100, 0), 1);
    let mut replay = fill("E1", 100, 100, 0);
    replay.poss_dup = true;
    assert_eq!(
        r.on_report(Stream::DropCopy, replay.clone(), 2),
        Outcome::Duplicate
    );
    assert_eq!(r.on_report(Stream::DropCopy, replay, 3), Outcome::Duplicate);
    // a replay without the flag is still the same execution
    assert_eq!(
        r.on_report(Stream::Trading, fill("E1", 100, 100, 0), 4),
        Outcome::Duplicate
    );
    r.tick(60_000);
    let s = r.summary(60_000);
    assert_eq!(
        (
            s.matched,
            s.duplicates,
            s.poss_dup_duplicates,
            s.open_break_count
        ),
        (1, 3, 2, 0)
    );
    assert_eq!(
        r.orders().posture(60_000).filled_qty,
        100.0,
        "the replay did not double the fill"
    );
}

#[test]
fn same_exec_id_with_different_values_is_a_conflict_not_a_duplicate() {
    let mut r = covered();
    both(&mut r, &fill("E1", 100, 100, 0), 1);
    let reused = report("E1", ExecType::Trade, OrdStatus::Filled, 50, "11", 50, 0);
    let Outcome::DuplicateConflict(id) = r.on_report(Stream::DropCopy, reused, 2) else {
        panic!("expected a conflict");
    };
    let s = r.summary(3);
    assert_eq!(s.open(Category::DuplicateConflict), 1);
    let b = r.open_breaks().find(|b| b.id == id).unwrap();
    assert_eq!(b.compared, ["first_seen", "now"]);
    assert!(b
        .diffs
        .iter()
        .any(|d| d.field == "last_qty" && d.left == "100" && d.right == "50"));
    assert_eq!(b.seen_on, vec![Stream::DropCopy]);
}

#[test]
fn an_altered_last_px_is_a_price_mismatch_with_both_values() {
    let mut r = covered();
    r.on_report(Stream::Trading, fill("E1", 100, 100, 0), 1);
    let altered = report(
        "E1",
        ExecType::Trade,
        OrdStatus::Filled,
        100,
        "10.75",
        100,
        0,
    );
    let Outcome::Mismatch(id) = r.on_report(Stream::DropCopy, altered, 2) else {
        panic!("expected a mismatch");
    };
    let b = r.open_breaks().find(|b| b.id == id).unwrap().clone();
    assert_eq!(b.category, Category::PriceMismatch);
    assert_eq!(b.compared, ["trading", "dropcopy"]);
    assert_eq!(
        b.diffs,
        vec![FieldDiff {
            field: "last_px",
            left: "10.5".into(),
            right: "10.75".into()
        }]
    );
    let s = r.summary(10_002);
    assert_eq!(s.open(Category::PriceMismatch), 1);
    let oldest = s.oldest_open_break.unwrap();
    assert_eq!((oldest.brk.id, oldest.age_ms), (id, 10_000));
    assert_eq!(s.recent_breaks.len(), 1);
}

#[test]
fn prices_within_the_tick_tolerance_match() {
    let mut r = covered();
    r.on_report(Stream::Trading, fill("E1", 100, 100, 0), 1);
    let close = report(
        "E1",
        ExecType::Trade,
        OrdStatus::Filled,
        100,
        "10.50005",
        100,
        0,
    );
    assert_eq!(r.on_report(Stream::DropCopy, close, 2), Outcome::Matched);
}

#[test]
fn quantity_status_and_attribute_differences_have_their_own_category() {
    let mut r = covered();
    // quantity
    r.on_report(Stream::Trading, fill("Q", 40, 40, 60), 1);
    r.on_report(Stream::DropCopy, fill("Q", 50, 50, 50), 1);
    // status: same quantities, the drop copy says canceled
    r.on_report(Stream::Trading, fill("S", 40, 40, 60), 1);
    r.on_report(
        Stream::DropCopy,
        report(
            "S",
            ExecType::Trade,
            OrdStatus::Canceled,
            40,
            "10.5",
            40,
            60,
        ),
        1,
    );
    // attribute: other side
    r.on_report(Stream::Trading, fill("A", 40, 40, 60), 1);
    let mut sell = fill("A", 40, 40, 60);
    sell.side = Side::Sell;
    r.on_report(Stream::DropCopy, sell, 1);
    let s = r.summary(2);
    assert_eq!(s.open(Category::QtyMismatch), 1);
    assert_eq!(s.open(Category::StatusMismatch), 1);
    assert_eq!(s.open(Category::AttributeMismatch), 1);
    let status = r
        .open_breaks()
        .find(|b| b.category == Category::StatusMismatch)
        .unwrap();
    assert!(status
        .diffs
        .iter()
        .any(|d| d.field == "status" && d.left == "partially_filled" && d.right == "canceled"));
}

#[test]
fn codes_and_words_for_the_same_status_are_not_a_mismatch() {
    // the platform's gateway says "FILLED" where the venue says 39=2: both are `filled`
    let mut r = covered();
    let mut ours = fill("E1", 100, 100, 0);
    ours.ord_status = OrdStatus::parse("FILLED").unwrap();
    r.on_report(Stream::Trading, ours, 1);
    assert_eq!(
        r.on_report(Stream::DropCopy, fill("E1", 100, 100, 0), 2),
        Outcome::Matched
    );
    assert_eq!(
        r.orders().by_cl_ord_id("C1").unwrap().status,
        Status::Filled
    );
}

#[test]
fn status_and_restatement_reports_stay_out_of_matching() {
    let mut r = covered();
    let status = report(
        "0",
        ExecType::OrderStatus,
        OrdStatus::PartiallyFilled,
        0,
        "0",
        40,
        60,
    );
    let restated = report(
        "R1",
        ExecType::Restated,
        OrdStatus::PartiallyFilled,
        0,
        "0",
        40,
        60,
    );
    assert_eq!(
        r.on_report(Stream::Trading, status.clone(), 1),
        Outcome::StatusReport
    );
    assert_eq!(
        r.on_report(Stream::Trading, status, 1),
        Outcome::StatusReport
    );
    assert_eq!(
        r.on_report(Stream::DropCopy, restated, 1),
        Outcome::StatusReport
    );
    r.tick(60_000);
    let s = r.summary(60_000);
    assert_eq!(
        (
            s.pending,
            s.open_break_count,
            s.status_reports,
            s.duplicates
        ),
        (0, 0, 3, 0)
    );
}

#[test]
fn a_fill_missing_on_the_drop_copy_is_pending_then_a_break_then_matched_late() {
    let mut r = covered();
    r.on_report(Stream::Trading, fill("E1", 100, 100, 0), 1_000);
    r.tick(1_000 + GRACE - 1);
    let s = r.summary(1_000 + GRACE - 1);
    assert_eq!((s.pending, s.open_break_count), (1, 0));
    assert_eq!(s.oldest_pending_covered_ms, Some(GRACE - 1));
    r.tick(1_000 + GRACE);
    let s = r.summary(1_000 + GRACE);
    assert_eq!((s.pending, s.open(Category::MissingOnDropcopy)), (0, 1));
    let b = s.oldest_open_break.unwrap();
    assert_eq!(b.brk.exec_id, "E1");
    assert_eq!(b.brk.seen_on, vec![Stream::Trading]);
    // it arrives after all: the break closes, the match counts as late
    assert_eq!(
        r.on_report(Stream::DropCopy, fill("E1", 100, 100, 0), 20_000),
        Outcome::Matched
    );
    let s = r.summary(20_000);
    assert_eq!((s.matched, s.late_matched, s.open_break_count), (1, 1, 0));
    assert_eq!(s.dropcopy_lag_last_ms, Some(19_000));
    assert_eq!(s.total_breaks.get("missing_on_dropcopy"), Some(&1));
}

#[test]
fn while_degraded_the_window_clock_stops_and_no_timing_break_is_declared() {
    let mut r = covered();
    r.on_report(Stream::Trading, fill("E1", 100, 100, 0), 1_000);
    r.set_coverage(false, Some("drop copy logged out".into()), 2_000);
    r.on_report(Stream::Trading, fill("E2", 100, 100, 0), 3_000);
    r.tick(600_000);
    let s = r.summary(600_000);
    assert!(s.degraded);
    assert_eq!(s.degraded_reason.as_deref(), Some("drop copy logged out"));
    assert_eq!(s.degraded_for_ms, Some(598_000));
    assert_eq!((s.pending, s.open_break_count), (2, 0));
    // back: the resend recovers both, nothing was declared missing
    r.set_coverage(true, None, 600_000);
    let mut e1 = fill("E1", 100, 100, 0);
    e1.poss_dup = true;
    r.on_report(Stream::DropCopy, e1, 600_100);
    r.on_report(Stream::DropCopy, fill("E2", 100, 100, 0), 600_100);
    r.tick(700_000);
    let s = r.summary(700_000);
    assert!(!s.degraded);
    assert_eq!(
        (s.matched, s.late_matched, s.open_break_count, s.duplicates),
        (2, 0, 0, 0)
    );
}

#[test]
fn the_window_counts_covered_time_only() {
    let mut r = covered();
    r.on_report(Stream::Trading, fill("E1", 100, 100, 0), 0);
    r.tick(GRACE - 1_000); // 4 s covered
    r.set_coverage(false, Some("resend in flight".into()), GRACE - 1_000);
    r.tick(100_000);
    r.set_coverage(true, None, 100_000);
    r.tick(100_999);
    assert_eq!(r.summary(100_999).open_break_count, 0);
    r.tick(101_000);
    let s = r.summary(101_000);
    assert_eq!(s.open(Category::MissingOnDropcopy), 1);
    assert_eq!(s.covered_ms, GRACE + (101_000 - 100_000) - 1_000);
}

#[test]
fn a_drop_copy_fill_we_never_saw_is_unexpected_and_other_sessions_are_a_sub_class() {
    let mut r = covered();
    let mut stranger = fill("X1", 10, 10, 0);
    stranger.cl_ord_id = "NOT-OURS".into();
    stranger.order_id = "O77".into();
    r.on_report(Stream::DropCopy, stranger, 0);
    let mut sibling = fill("X2", 10, 10, 0);
    sibling.order_id = "O78".into();
    sibling.cl_ord_id = "SIB".into();
    sibling.source = Some("PILOT2".into());
    r.on_report(Stream::DropCopy, sibling, 0);
    // a fill of an order we know whose ER never reached the trading session
    r.on_report(Stream::Trading, ack("A1", 100), 0);
    r.on_report(Stream::DropCopy, ack("A1", 100), 0);
    r.on_report(Stream::DropCopy, fill("X3", 100, 100, 0), 0);
    r.tick(GRACE);
    let s = r.summary(GRACE);
    assert_eq!(s.open(Category::UnexpectedOnDropcopy), 2);
    assert_eq!(s.open(Category::UnexpectedOtherSession), 1);
    let details: Vec<&str> = r.open_breaks().map(|b| b.detail.as_str()).collect();
    assert!(
        details.iter().any(|d| d.contains("never sent")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("never received")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("other session PILOT2")),
        "{details:?}"
    );
}

#[test]
fn an_agreed_bust_removes_the_fill_and_settles_its_break() {
    let mut r = covered();
    r.on_report(Stream::Trading, fill("E1", 100, 100, 0), 1);
    r.on_report(
        Stream::DropCopy,
        report(
            "E1",
            ExecType::Trade,
            OrdStatus::Filled,
            100,
            "10.6",
            100,
            0,
        ),
        1,
    );
    assert_eq!(r.summary(2).open(Category::PriceMismatch), 1);
    let mut bust = report(
        "B1",
        ExecType::TradeCancel,
        OrdStatus::New,
        100,
        "10.5",
        0,
        100,
    );
    bust.exec_ref_id = Some("E1".into());
    r.on_report(Stream::Trading, bust.clone(), 3);
    assert_eq!(r.on_report(Stream::DropCopy, bust, 3), Outcome::Matched);
    let s = r.summary(4);
    assert_eq!((s.busts_applied, s.open_break_count), (1, 0));
    assert!(r.is_busted("E1"));
    let order = r.orders().by_cl_ord_id("C1").unwrap();
    assert_eq!(
        (order.cum_qty, order.status),
        (Fixed::ZERO, Status::Working)
    );
}

#[test]
fn an_agreed_correction_replaces_the_values_it_references() {
    let mut r = covered();
    r.on_report(Stream::Trading, fill("E1", 100, 100, 0), 1);
    r.on_report(
        Stream::DropCopy,
        report(
            "E1",
            ExecType::Trade,
            OrdStatus::Filled,
            100,
            "10.6",
            100,
            0,
        ),
        1,
    );
    let mut correct = report(
        "G1",
        ExecType::TradeCorrect,
        OrdStatus::Filled,
        100,
        "10.55",
        100,
        0,
    );
    correct.exec_ref_id = Some("E1".into());
    r.on_report(Stream::Trading, correct.clone(), 2);
    r.on_report(Stream::DropCopy, correct, 2);
    let s = r.summary(3);
    assert_eq!((s.corrections_applied, s.open_break_count), (1, 0));
}

#[test]
fn a_bust_or_correction_on_one_side_only_is_its_own_break() {
    let mut r = covered();
    both(&mut r, &fill("E1", 100, 100, 0), 0);
    let mut bust = report(
        "B1",
        ExecType::TradeCancel,
        OrdStatus::New,
        100,
        "10.5",
        0,
        100,
    );
    bust.exec_ref_id = Some("E1".into());
    r.on_report(Stream::DropCopy, bust, 0);
    r.tick(GRACE);
    let s = r.summary(GRACE);
    assert_eq!(s.open(Category::BustOrCorrectionOneSided), 1);
    assert_eq!(s.open(Category::UnexpectedOnDropcopy), 0);
    assert!(!r.is_busted("E1"));
}

#[test]
fn trades_only_mode_ignores_order_events() {
    let mut r = Reconciler::new(ReconPolicy {
        match_order_events: false,
        grace_ms: GRACE,
        ..ReconPolicy::default()
    });
    r.set_coverage(true, None, 0);
    assert_eq!(
        r.on_report(Stream::Trading, ack("A1", 100), 0),
        Outcome::NotMatched
    );
    r.tick(GRACE * 2);
    assert_eq!(r.summary(GRACE * 2).open_break_count, 0);
    assert_eq!(r.orders().posture(0).open_orders, 1);
}

#[test]
fn rejected_inputs_are_counted_with_their_reason() {
    use crate::report::{RejectReason, Rejection};
    let mut r = covered();
    let rejection = Rejection {
        reason: RejectReason::UnknownExecType("Z".into()),
        exec_id: Some("E9".into()),
        cl_ord_id: None,
        msg_seq_num: Some("7".into()),
    };
    r.on_rejected(Stream::DropCopy, &rejection, 5);
    r.on_rejected(
        Stream::Trading,
        &Rejection {
            reason: RejectReason::MissingTag(17),
            ..rejection.clone()
        },
        6,
    );
    let s = r.summary(7);
    assert_eq!(s.rejected, 2);
    assert_eq!(s.rejected_by_reason.get("unknown_exec_type"), Some(&1));
    assert_eq!(s.rejected_by_reason.get("missing_tag"), Some(&1));
    assert_eq!(
        s.recent_rejections[0].reason,
        "required tag 17 (ExecID) is missing"
    );
    assert_eq!(s.last_rejection_ms, Some(6));
    assert_eq!(s.open_break_count, 0, "a rejection is not a break");
}

#[test]
fn it_starts_degraded_and_a_day_roll_starts_matching_over() {
    let mut r = Reconciler::new(ReconPolicy::default());
    let s = r.summary(0);
    assert!(s.degraded);
    assert_eq!(
        s.degraded_reason.as_deref(),
        Some("sessions not logged on yet")
    );
    r.set_coverage(true, None, 0);
    r.on_report(Stream::Trading, fill("E1", 40, 40, 60), 0);
    r.roll_day();
    let s = r.summary(1);
    assert_eq!((s.pending, s.matched), (0, 0));
    assert!(!s.degraded);
    assert_eq!(
        r.orders().posture(1).open_orders,
        1,
        "open orders survive the roll"
    );
    // the same ExecID on the new day is a new execution
    assert_eq!(
        r.on_report(Stream::Trading, fill("E1", 40, 40, 60), 2),
        Outcome::Pending
    );
}

#[test]
fn recent_breaks_are_bounded_newest_first() {
    let mut r = Reconciler::new(ReconPolicy {
        recent_breaks: 3,
        grace_ms: GRACE,
        ..ReconPolicy::default()
    });
    r.set_coverage(true, None, 0);
    for i in 0..5 {
        r.on_report(Stream::Trading, fill(&format!("E{i}"), 1, 1, 0), i);
    }
    r.tick(GRACE + 10);
    let s = r.summary(GRACE + 10);
    assert_eq!(s.open(Category::MissingOnDropcopy), 5);
    let ids: Vec<&str> = s
        .recent_breaks
        .iter()
        .map(|b| b.brk.exec_id.as_str())
        .collect();
    assert_eq!(ids, vec!["E4", "E3", "E2"]);
    assert_eq!(s.oldest_open_break.unwrap().brk.exec_id, "E0");
}
