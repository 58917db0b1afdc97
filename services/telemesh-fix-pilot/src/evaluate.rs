//! Owns the pure grading of both snapshots:
//!
//! - [`evaluate_pilot`]: `telemetry.execution.fix_pilot`, components `sessions`, `queues`,
//!   `orders`, `dropcopy` (DOMAINS.md §3.2 with quirk 3 fixed: an idle queue at start-up is
//!   fine, a configured-but-down drop copy is `warn`, and `orders` can degrade).
//! - [`evaluate_dropcopy`]: `telemetry.execution.dropcopy`, components `coverage`,
//!   `matching`, `breaks`, `input`: counts per category, the oldest open break and its age,
//!   the most recent breaks with their fields.
//!
//! Roll-up of the reconciliation (FIX.md §3): any unexpected fill, mismatch or duplicate
//! conflict is `fail`; a missing or one-sided break is `warn` until it has been open for
//! `escalate_seconds` of coverage, then `fail`; degraded coverage is `warn`, `fail` after
//! `degraded_fail_seconds`.

use chrono::{DateTime, Utc};
use telemesh_core::snapshot::escape_cell;
use telemesh_core::{topics, Component, DetailValue, Details, Grade, Snapshot, Source};

use crate::reconciler::{BreakView, Category, ReconSummary};
use crate::settings::{ExecutionsSource, PilotPolicy};
use crate::state::{PilotState, SessionState};

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn map<I, K, V>(items: I) -> DetailValue
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<DetailValue>,
{
    DetailValue::Map(
        items
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
    )
}

fn with_issues(mut c: Component, issues: Vec<String>) -> Component {
    if !issues.is_empty() {
        c.summary = issues.join("; ");
        c = c.detail("issues", issues);
    }
    c
}

/// Grade and issues of one session.
fn grade_session(
    name: &str,
    s: &SessionState,
    down_grade: Grade,
    policy: &PilotPolicy,
    now_ms: i64,
    issues: &mut Vec<String>,
) -> Grade {
    let mut grade = Grade::Ok;
    if !s.configured {
        return grade;
    }
    if !s.status.is_logged_on() {
        grade.escalate(down_grade);
        let mut issue = format!("{name} session {} ({})", s.status.name(), s.endpoint);
        if let Some(reason) = &s.last_logout_reason {
            issue.push_str(&format!(", last logout: {reason}"));
        }
        issues.push(issue);
        return grade;
    }
    if let Some((begin, end)) = s.resend_in_flight() {
        grade.escalate(Grade::Warn);
        issues.push(format!(
            "{name} session recovering a gap: resend {begin}..{end} in flight"
        ));
    }
    if let Some(age) = s.heartbeat_age_ms(now_ms) {
        let limit = s.heartbeat_interval_s as f64 * 1000.0 * policy.heartbeat_grace_factor;
        if s.heartbeat_interval_s > 0 && age as f64 > limit {
            grade.escalate(Grade::Warn);
            issues.push(format!(
                "{name} session heard nothing from the venue for {:.0}s (HeartBtInt {}s)",
                seconds(age),
                s.heartbeat_interval_s
            ));
        }
    }
    grade
}

fn session_details(s: &SessionState, now_ms: i64) -> DetailValue {
    if !s.configured {
        return map([("configured", DetailValue::Bool(false))]);
    }
    map([
        ("configured", DetailValue::Bool(true)),
        ("endpoint", s.endpoint.clone().into()),
        ("state", s.status.name().into()),
        ("logged_on", s.status.is_logged_on().into()),
        (
            "since_seconds",
            s.since_ms.map(|t| seconds(now_ms - t)).into(),
        ),
        ("heartbeat_interval_seconds", s.heartbeat_interval_s.into()),
        (
            "heartbeat_age_seconds",
            s.heartbeat_age_ms(now_ms).map(seconds).into(),
        ),
        ("next_sender_seq", s.next_sender_seq.into()),
        ("next_target_seq", s.next_target_seq.into()),
        ("gaps", s.gaps.into()),
        ("resend_requests", s.resend_requests.into()),
        (
            "resend_in_flight",
            s.resend_in_flight()
                .map(|(b, e)| DetailValue::from(format!("{b}..{e}")))
                .unwrap_or(DetailValue::Null),
        ),
        ("messages_in", s.messages_in.into()),
        ("poss_dup_in", s.poss_dup_in.into()),
        ("logons", s.logons.into()),
        ("reconnects", s.reconnects.into()),
        ("disconnects", s.disconnects.into()),
        ("last_logout_reason", s.last_logout_reason.clone().into()),
        ("rejected", s.rejected.into()),
    ])
}

/// The reconciliation roll-up grade and its issues.
pub fn recon_grade(policy: &PilotPolicy, r: &ReconSummary) -> (Grade, Vec<String>) {
    let mut grade = Grade::Ok;
    let mut issues = Vec::new();
    for category in Category::ALL {
        let n = r.open(category);
        if n == 0 {
            continue;
        }
        let severity = match category {
            Category::UnexpectedOnDropcopy
            | Category::QtyMismatch
            | Category::PriceMismatch
            | Category::StatusMismatch
            | Category::AttributeMismatch
            | Category::DuplicateConflict => Grade::Fail,
            Category::MissingOnDropcopy
            | Category::BustOrCorrectionOneSided
            | Category::UnexpectedOtherSession => {
                let aged = r
                    .oldest_covered_age_ms
                    .get(category.name())
                    .is_some_and(|age| *age >= policy.escalate_ms);
                if aged && category != Category::UnexpectedOtherSession {
                    Grade::Fail
                } else {
                    Grade::Warn
                }
            }
        };
        grade.escalate(severity);
        issues.push(format!("{n} {}", category.name()));
    }
    if r.degraded {
        let for_ms = r.degraded_for_ms.unwrap_or(0);
        let severity = if for_ms >= policy.degraded_fail_ms {
            Grade::Fail
        } else {
            Grade::Warn
        };
        grade.escalate(severity);
        issues.push(format!(
            "degraded for {:.0}s: {}",
            seconds(for_ms),
            r.degraded_reason
                .as_deref()
                .unwrap_or("coverage incomplete")
        ));
    }
    (grade, issues)
}

fn now_ms(now: DateTime<Utc>) -> i64 {
    now.timestamp_millis()
}

/// Grades `telemetry.execution.fix_pilot`.
pub fn evaluate_pilot(
    policy: &PilotPolicy,
    state: &PilotState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let now_ms = now_ms(now);
    let mut snapshot = Snapshot::new(topics::FIX_PILOT, source, now);

    // sessions
    let mut issues = Vec::new();
    let mut grade = Grade::Ok;
    match (policy.executions_source, state.trading.configured) {
        (ExecutionsSource::Fix, false) => {
            grade.escalate(Grade::Fail);
            issues.push("trading session not configured: set [fix_pilot.trading] port, sender_comp_id and target_comp_id".into());
        }
        _ => grade.escalate(grade_session(
            "trading",
            &state.trading,
            Grade::Fail,
            policy,
            now_ms,
            &mut issues,
        )),
    }
    grade.escalate(grade_session(
        "dropcopy",
        &state.dropcopy,
        Grade::Warn,
        policy,
        now_ms,
        &mut issues,
    ));
    let rejected = state.trading.rejected + state.dropcopy.rejected;
    let recent_reject = state
        .recon
        .as_ref()
        .and_then(|r| r.last_rejection_ms)
        .is_some_and(|t| now_ms - t <= policy.reject_warn_ms);
    if rejected > 0 && recent_reject {
        grade.escalate(Grade::Warn);
        issues.push(format!(
            "{rejected} malformed messages rejected (sessions stay up)"
        ));
    }
    let summary = match (state.trading.configured, state.dropcopy.configured) {
        (true, true) => format!(
            "trading {}, dropcopy {}",
            state.trading.status.name(),
            state.dropcopy.status.name()
        ),
        (true, false) => format!("trading {}, no drop copy", state.trading.status.name()),
        (false, true) => format!("dropcopy {}", state.dropcopy.status.name()),
        (false, false) => "no session configured".into(),
    };
    let mut rejected_by_reason = Details::new();
    if let Some(r) = &state.recon {
        for (k, v) in &r.rejected_by_reason {
            rejected_by_reason.insert((*k).to_owned(), (*v).into());
        }
    }
    let c = Component::new("sessions", grade, summary)
        .detail("trading", session_details(&state.trading, now_ms))
        .detail("dropcopy", session_details(&state.dropcopy, now_ms))
        .detail("rejected", rejected)
        .detail("rejected_by_reason", DetailValue::Map(rejected_by_reason));
    snapshot.push(with_issues(c, issues));

    // queues
    let q = &state.queues;
    let mut issues = Vec::new();
    let mut grade = Grade::Ok;
    if q.inbound_drops > policy.max_queue_drops {
        grade.escalate(Grade::Warn);
        issues.push(format!(
            "{} inbound messages dropped (> {})",
            q.inbound_drops, policy.max_queue_drops
        ));
    }
    if q.inbound_backlog > policy.max_inbound_backlog {
        grade.escalate(Grade::Warn);
        issues.push(format!(
            "inbound backlog {} > {}",
            q.inbound_backlog, policy.max_inbound_backlog
        ));
    }
    if q.outbound_pending > policy.max_outbound_pending {
        grade.escalate(Grade::Warn);
        issues.push(format!(
            "{} orders waiting to be sent > {}",
            q.outbound_pending, policy.max_outbound_pending
        ));
    }
    if q.executions_publish_failed > 0 {
        grade.escalate(Grade::Warn);
        issues.push(format!(
            "{} execution reports not published to Kafka",
            q.executions_publish_failed
        ));
    }
    let idle = q.inbound_processed == 0 && q.orders_sent == 0;
    let summary = if idle {
        "idle: nothing received yet".to_owned()
    } else {
        format!(
            "{} in, {} orders sent, backlog {}",
            q.inbound_processed, q.orders_sent, q.inbound_backlog
        )
    };
    let c = Component::new("queues", grade, summary)
        .detail("inbound_backlog", q.inbound_backlog)
        .detail("inbound_processed", q.inbound_processed)
        .detail("drops", q.inbound_drops)
        .detail("outbound_pending", q.outbound_pending)
        .detail("orders_sent", q.orders_sent)
        .detail("orders_refused", q.orders_refused)
        .detail("executions_published", q.executions_published)
        .detail("executions_publish_failed", q.executions_publish_failed)
        .detail("idle", idle);
    snapshot.push(with_issues(c, issues));

    // orders
    let o = &state.orders;
    let mut issues = Vec::new();
    let mut grade = Grade::Ok;
    if o.inconsistent_orders > 0 {
        grade.escalate(Grade::Warn);
        issues.push(format!(
            "{} open orders with LeavesQty != OrderQty - CumQty",
            o.inconsistent_orders
        ));
    }
    if let Some(age) = o.oldest_pending_ms.filter(|a| *a > policy.stuck_order_ms) {
        grade.escalate(Grade::Warn);
        issues.push(format!(
            "an order has waited {:.0}s for the venue to answer",
            seconds(age)
        ));
    }
    let exposures: Vec<DetailValue> = o
        .exposures
        .iter()
        .take(20)
        .map(|e| {
            map([
                ("symbol", DetailValue::from(e.symbol.clone())),
                ("side", e.side.clone().into()),
                ("open_orders", e.open_orders.into()),
                ("open_qty", e.open_qty.into()),
                ("open_notional", e.open_notional.into()),
            ])
        })
        .collect();
    let c = Component::new(
        "orders",
        grade,
        format!(
            "{} open of {}, open notional {:.2}",
            o.open_orders, o.total_orders, o.open_notional
        ),
    )
    .detail("total_orders", o.total_orders)
    .detail("open_orders", o.open_orders)
    .detail(
        "open_by_status",
        map(o.open_by_status.iter().map(|(k, v)| (k.clone(), *v))),
    )
    .detail("open_qty", o.open_qty)
    .detail("open_notional", o.open_notional)
    .detail("filled_qty", o.filled_qty)
    .detail("rejected_orders", o.rejected_orders)
    .detail("inconsistent_orders", o.inconsistent_orders)
    .detail("oldest_pending_seconds", o.oldest_pending_ms.map(seconds))
    .detail("exposures", DetailValue::List(exposures));
    snapshot.push(with_issues(c, issues));

    // dropcopy
    let mut issues = Vec::new();
    let mut grade = Grade::Ok;
    let dc = &state.dropcopy;
    let c = if !dc.configured {
        if policy.require_dropcopy {
            grade.escalate(Grade::Fail);
            issues.push("drop copy required but not configured: set [fix_pilot.dropcopy]".into());
        }
        Component::new(
            "dropcopy",
            grade,
            "no drop copy configured: executions are not reconciled",
        )
        .detail("configured", false)
        .detail("running", false)
    } else {
        if !dc.status.is_logged_on() {
            grade.escalate(Grade::Warn);
            issues.push(format!("drop copy {}", dc.status.name()));
        }
        let mut c = Component::new("dropcopy", Grade::Ok, "reconciling")
            .detail("configured", true)
            .detail("running", dc.status.is_logged_on());
        if let Some(r) = &state.recon {
            if let Some(lag) = r
                .dropcopy_lag_last_ms
                .filter(|l| *l > policy.max_dropcopy_lag_ms)
            {
                grade.escalate(Grade::Warn);
                issues.push(format!("drop-copy lag {:.1}s", seconds(lag)));
            }
            let (recon, recon_issues) = recon_grade(policy, r);
            grade.escalate(recon);
            issues.extend(recon_issues);
            c = c
                .detail("backlog", r.pending)
                .detail("lag_seconds", r.dropcopy_lag_last_ms.map(seconds))
                .detail("lag_max_seconds", seconds(r.dropcopy_lag_max_ms))
                .detail(
                    "reconciliation",
                    map([
                        ("status", DetailValue::from(recon.as_str())),
                        ("matched", r.matched.into()),
                        ("pending", r.pending.into()),
                        ("open_breaks", r.open_break_count.into()),
                        ("degraded", r.degraded.into()),
                        ("match_rate", r.match_rate().into()),
                    ]),
                );
        }
        c.status = grade;
        c
    };
    snapshot.push(with_issues(c, issues));

    snapshot.summary = pilot_summary(&snapshot);
    snapshot.metric(
        "trading_logged_on",
        f64::from(u8::from(state.trading.status.is_logged_on())),
    );
    snapshot.metric(
        "dropcopy_logged_on",
        f64::from(u8::from(dc.status.is_logged_on())),
    );
    snapshot.metric("open_orders", o.open_orders as f64);
    snapshot.metric("open_notional", o.open_notional);
    snapshot.metric("inbound_backlog", q.inbound_backlog as f64);
    snapshot.metric(
        "reconnects",
        (state.trading.reconnects + dc.reconnects) as f64,
    );
    snapshot.metric("rejected", rejected as f64);
    snapshot.markdown = snapshot.render_markdown("FIX pilot");
    snapshot
}

fn pilot_summary(s: &Snapshot) -> String {
    let bad: Vec<String> = s
        .components
        .iter()
        .filter(|c| c.status != Grade::Ok)
        .map(|c| format!("{}: {}", c.name, c.summary))
        .collect();
    if bad.is_empty() {
        s.component("sessions")
            .map(|c| c.summary.clone())
            .unwrap_or_default()
    } else {
        bad.join(" | ")
    }
}

fn break_detail(b: &BreakView) -> DetailValue {
    let diffs: Vec<DetailValue> = b
        .brk
        .diffs
        .iter()
        .map(|d| {
            map([
                ("field", DetailValue::from(d.field)),
                (b.brk.compared[0], d.left.clone().into()),
                (b.brk.compared[1], d.right.clone().into()),
            ])
        })
        .collect();
    map([
        ("id", DetailValue::from(b.brk.id)),
        ("category", b.brk.category.name().into()),
        ("open", b.open.into()),
        ("exec_id", b.brk.exec_id.clone().into()),
        ("order_id", b.brk.order_id.clone().into()),
        ("cl_ord_id", b.brk.cl_ord_id.clone().into()),
        ("symbol", b.brk.symbol.clone().into()),
        ("side", b.brk.side.name().into()),
        ("exec_type", b.brk.exec_type.name().into()),
        (
            "seen_on",
            DetailValue::List(
                b.brk
                    .seen_on
                    .iter()
                    .map(|s| DetailValue::from(s.name()))
                    .collect(),
            ),
        ),
        ("diffs", DetailValue::List(diffs)),
        ("detail", b.brk.detail.clone().into()),
        ("age_seconds", seconds(b.age_ms).into()),
        ("covered_age_seconds", seconds(b.covered_age_ms).into()),
    ])
}

fn diff_text(b: &BreakView) -> String {
    if b.brk.diffs.is_empty() {
        return b.brk.detail.clone();
    }
    b.brk
        .diffs
        .iter()
        .map(|d| {
            format!(
                "{} {}={} {}={}",
                d.field, b.brk.compared[0], d.left, b.brk.compared[1], d.right
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Grades `telemetry.execution.dropcopy`.
pub fn evaluate_dropcopy(
    policy: &PilotPolicy,
    state: &PilotState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let now_ms = now_ms(now);
    let mut snapshot = Snapshot::new(topics::DROPCOPY, source, now);
    let Some(r) = state.recon.as_ref().filter(|_| state.dropcopy.configured) else {
        let grade = if policy.require_dropcopy {
            Grade::Fail
        } else {
            Grade::Warn
        };
        snapshot.push(Component::new(
            "coverage",
            grade,
            "no drop copy configured: set [fix_pilot.dropcopy] to reconcile executions",
        ));
        snapshot.summary = "reconciliation off: no drop copy configured".into();
        snapshot.markdown = snapshot.render_markdown("Drop-copy reconciliation");
        return snapshot;
    };

    // coverage
    let mut c = Component::new(
        "coverage",
        Grade::Ok,
        "both feeds complete: the window clock runs",
    )
    .detail("degraded", r.degraded)
    .detail("covered_seconds", seconds(r.covered_ms))
    .detail("trading", state.trading.status.name())
    .detail("dropcopy", state.dropcopy.status.name());
    if r.degraded {
        let for_ms = r.degraded_for_ms.unwrap_or(0);
        c.status = if for_ms >= policy.degraded_fail_ms {
            Grade::Fail
        } else {
            Grade::Warn
        };
        c.summary = format!(
            "degraded for {:.0}s: {}; no timing breaks are declared until coverage is back",
            seconds(for_ms),
            r.degraded_reason
                .as_deref()
                .unwrap_or("coverage incomplete")
        );
        c = c
            .detail("reason", r.degraded_reason.clone())
            .detail("degraded_seconds", seconds(for_ms));
    }
    snapshot.push(c);

    // matching
    let reports = map(r.reports.iter().map(|(k, v)| (*k, *v)));
    let c = Component::new(
        "matching",
        Grade::Ok,
        format!(
            "{} matched, {} pending, {} duplicates ignored",
            r.matched, r.pending, r.duplicates
        ),
    )
    .detail("reports", reports)
    .detail("matched", r.matched)
    .detail("late_matched", r.late_matched)
    .detail("pending", r.pending)
    .detail(
        "oldest_pending_seconds",
        r.oldest_pending_covered_ms.map(seconds),
    )
    .detail("duplicates", r.duplicates)
    .detail("poss_dup_duplicates", r.poss_dup_duplicates)
    .detail("status_reports", r.status_reports)
    .detail("busts_applied", r.busts_applied)
    .detail("corrections_applied", r.corrections_applied)
    .detail("match_rate", r.match_rate())
    .detail("lag_seconds", r.dropcopy_lag_last_ms.map(seconds))
    .detail("lag_max_seconds", seconds(r.dropcopy_lag_max_ms))
    .detail(
        "last_clean_seconds_ago",
        r.last_clean_ms.map(|t| seconds(now_ms - t)),
    );
    snapshot.push(c);

    // breaks
    let mut recon_only = r.clone();
    recon_only.degraded = false; // graded by `coverage`
    let (grade, issues) = recon_grade(policy, &recon_only);
    let summary = match &r.oldest_open_break {
        None => "no open breaks".to_owned(),
        Some(b) => format!(
            "{} open ({}); oldest {} {} {:.0}s",
            r.open_break_count,
            issues.join(", "),
            b.brk.category.name(),
            b.brk.exec_id,
            seconds(b.age_ms)
        ),
    };
    let c = Component::new("breaks", grade, summary)
        .detail("open", map(r.open_breaks.iter().map(|(k, v)| (*k, *v))))
        .detail("total", map(r.total_breaks.iter().map(|(k, v)| (*k, *v))))
        .detail("open_count", r.open_break_count)
        .detail(
            "oldest_open",
            r.oldest_open_break
                .as_ref()
                .map_or(DetailValue::Null, break_detail),
        )
        .detail(
            "oldest_open_age_seconds",
            r.oldest_open_break.as_ref().map(|b| seconds(b.age_ms)),
        )
        .detail(
            "recent",
            DetailValue::List(r.recent_breaks.iter().map(break_detail).collect()),
        );
    snapshot.push(c);

    // input
    let recent_reject = r
        .last_rejection_ms
        .is_some_and(|t| now_ms - t <= policy.reject_warn_ms);
    let grade = if recent_reject {
        Grade::Warn
    } else {
        Grade::Ok
    };
    let summary = if r.rejected == 0 {
        "no malformed reports".to_owned()
    } else {
        format!(
            "{} reports rejected: {}",
            r.rejected,
            r.rejected_by_reason
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let recent: Vec<DetailValue> = r
        .recent_rejections
        .iter()
        .map(|x| {
            map([
                ("stream", DetailValue::from(x.stream.name())),
                ("reason", x.reason.clone().into()),
                ("exec_id", x.exec_id.clone().into()),
                ("msg_seq_num", x.msg_seq_num.clone().into()),
                ("age_seconds", seconds(now_ms - x.at_ms).into()),
            ])
        })
        .collect();
    snapshot.push(
        Component::new("input", grade, summary)
            .detail("rejected", r.rejected)
            .detail(
                "by_reason",
                map(r.rejected_by_reason.iter().map(|(k, v)| (*k, *v))),
            )
            .detail("recent", DetailValue::List(recent)),
    );

    snapshot.summary = if r.degraded {
        format!(
            "degraded ({}): {} matched, {} pending, {} open breaks",
            r.degraded_reason
                .as_deref()
                .unwrap_or("coverage incomplete"),
            r.matched,
            r.pending,
            r.open_break_count
        )
    } else if r.open_break_count == 0 {
        format!(
            "{} matched, {} pending, no open breaks",
            r.matched, r.pending
        )
    } else {
        snapshot
            .component("breaks")
            .map(|c| c.summary.clone())
            .unwrap_or_default()
    };
    snapshot.metric("matched", r.matched as f64);
    snapshot.metric("pending", r.pending as f64);
    snapshot.metric("duplicates", r.duplicates as f64);
    snapshot.metric("open_breaks", r.open_break_count as f64);
    snapshot.metric("rejected", r.rejected as f64);
    snapshot.metric("degraded", f64::from(u8::from(r.degraded)));
    snapshot.metric("match_rate", r.match_rate());
    for (k, v) in &r.open_breaks {
        snapshot.metric(format!("open_breaks.{k}"), *v as f64);
    }
    if let Some(b) = &r.oldest_open_break {
        snapshot.metric("oldest_open_break_age_seconds", seconds(b.age_ms));
    }
    let mut md = snapshot.render_markdown("Drop-copy reconciliation");
    if !r.recent_breaks.is_empty() {
        md.push_str("\n| Break | Category | ExecID | ClOrdID | Symbol | Age | What differs |\n| --- | --- | --- | --- | --- | --- | --- |\n");
        for b in &r.recent_breaks {
            md.push_str(&format!(
                "| {}{} | {} | {} | {} | {} | {:.0}s | {} |\n",
                b.brk.id,
                if b.open { "" } else { " (closed)" },
                b.brk.category.name(),
                escape_cell(&b.brk.exec_id),
                escape_cell(&b.brk.cl_ord_id),
                escape_cell(&b.brk.symbol),
                seconds(b.age_ms),
                escape_cell(&diff_text(b)),
            ));
        }
    }
    snapshot.markdown = md;
    snapshot
}

#[cfg(test)]
mod tests;
