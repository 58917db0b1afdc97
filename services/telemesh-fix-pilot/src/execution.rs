//! Owns execution readiness, `telemetry.operational.execution` (DOMAINS.md §3.4): the
//! [`ExecutionPolicy`] thresholds (`[fix_pilot.execution]`), the [`ExecutionState`] derived
//! from the pilot's live order book, reconciler and sessions, and the pure
//! [`evaluate_execution`].
//!
//! Flaws of the original fixed here: the state comes from the order book (not from counters
//! typed into config); drop-copy posture is the real drop-copy session and the reconciler's
//! lag (not the trade session's queue counters); `connection_healthy` is the trading
//! session's logon state and `sessions_active` the sessions actually logged on; an explicit
//! `0` threshold is a threshold (not "unset"); the latency limits grade order→ack latency
//! percentiles, so one slow order early in the day does not keep the snapshot at `warn`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use telemesh_core::{Component, DetailValue, Details, Grade, Snapshot, Source};

use crate::codes::Status;
use crate::orders::OrderBook;
use crate::settings::ExecutionsSource;
use crate::state::PilotState;

/// The kind (= topic) of execution readiness snapshots.
pub const EXECUTION_KIND: &str = telemesh_core::topics::EXECUTION;

/// Component names, in snapshot order (the journal reads `connection`, `drop_copy` and
/// `sessions` by name).
pub const COMPONENTS: [&str; 7] = [
    "fills",
    "rejections",
    "pending",
    "latency",
    "connection",
    "drop_copy",
    "sessions",
];

/// `[fix_pilot.execution]`: the execution readiness thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionPolicy {
    /// Orders with at least one fill / orders submitted below this is `warn`. Default: 0.9.
    pub min_fill_rate: f64,
    /// Rejected / submitted above this is `warn`. Default: 0.05.
    pub max_rejection_rate: f64,
    /// The fill and rejection rules only reach `fail` with at least this many orders.
    /// Default: 5.
    pub min_orders_for_fail: u64,
    /// Orders waiting for the venue (pending new, cancel or replace) above this are `warn`,
    /// at twice this `fail`. Default: 5.
    pub max_pending_orders: u64,
    /// Mean order→ack latency above this is `warn`, above 1.5× `fail`. Default: 500.
    pub max_avg_latency_ms: f64,
    /// p99 order→ack latency above this is `warn`. Default: 1500.
    pub max_latency_ms: f64,
    /// A trading session that is not logged on is `fail` (else `warn`). Default: true.
    pub require_connection: bool,
    /// A drop copy that is not configured or not logged on is `fail`. Default: false (a
    /// configured drop copy that is down is `warn`).
    pub require_drop_copy: bool,
    /// Drop-copy lag (last execution matched after the trading side) above this is `warn`.
    /// Default: 10.
    pub max_drop_copy_lag_seconds: f64,
    /// Fewer logged-on sessions than this is `warn` (or `fail`, see below). Default: 0.
    pub min_active_sessions: u64,
    /// Whether too few sessions is `warn` (true) or `fail` (false). Default: true.
    pub warn_on_missing_sessions: bool,
    /// The rejection trend compares the rejections of the last window with the window
    /// before it, per reason. Default: 300.
    pub trend_window_seconds: f64,
    /// A reason whose rejections in the last window exceed the previous window's and
    /// reach this count is a rising trend (`warn`). Default: 3.
    pub min_rising_rejections: u64,
}

impl Default for ExecutionPolicy {
    fn default() -> Self {
        Self {
            min_fill_rate: 0.9,
            max_rejection_rate: 0.05,
            min_orders_for_fail: 5,
            max_pending_orders: 5,
            max_avg_latency_ms: 500.0,
            max_latency_ms: 1500.0,
            require_connection: true,
            require_drop_copy: false,
            max_drop_copy_lag_seconds: 10.0,
            min_active_sessions: 0,
            warn_on_missing_sessions: true,
            trend_window_seconds: 300.0,
            min_rising_rejections: 3,
        }
    }
}

impl ExecutionPolicy {
    /// Rejects values that cannot work: `(key under fix_pilot.execution, detail)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (key, value) in [
            ("min_fill_rate", self.min_fill_rate),
            ("max_rejection_rate", self.max_rejection_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err((
                    format!("execution.{key}"),
                    format!("is {value}: set a fraction from 0 to 1, e.g. 0.9"),
                ));
            }
        }
        for (key, value) in [
            ("max_avg_latency_ms", self.max_avg_latency_ms),
            ("max_latency_ms", self.max_latency_ms),
            ("max_drop_copy_lag_seconds", self.max_drop_copy_lag_seconds),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err((
                    format!("execution.{key}"),
                    format!("is {value}: set a finite number >= 0"),
                ));
            }
        }
        if !self.trend_window_seconds.is_finite() || self.trend_window_seconds <= 0.0 {
            return Err((
                "execution.trend_window_seconds".into(),
                format!(
                    "is {}: set a window in seconds > 0, e.g. 300",
                    self.trend_window_seconds
                ),
            ));
        }
        Ok(())
    }
}

/// Latency distribution of one leg (order→ack or order→fill), milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Latency {
    /// Nearest-rank percentiles of the samples (negative samples, a clock step, count as 0).
    pub fn of(mut samples: Vec<i64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        for s in &mut samples {
            *s = (*s).max(0);
        }
        samples.sort_unstable();
        let n = samples.len();
        let rank = |q: f64| {
            let k = (q * n as f64).ceil() as usize;
            samples[k.clamp(1, n) - 1] as f64
        };
        let sum: f64 = samples.iter().map(|&s| s as f64).sum();
        Self {
            samples: n as u64,
            avg_ms: Some(sum / n as f64),
            p50_ms: Some(rank(0.50)),
            p90_ms: Some(rank(0.90)),
            p99_ms: Some(rank(0.99)),
            max_ms: samples.last().map(|&s| s as f64),
        }
    }

    fn details(&self) -> DetailValue {
        let mut d = Details::new();
        d.insert("samples".into(), self.samples.into());
        d.insert("avg_ms".into(), self.avg_ms.into());
        d.insert("p50_ms".into(), self.p50_ms.into());
        d.insert("p90_ms".into(), self.p90_ms.into());
        d.insert("p99_ms".into(), self.p99_ms.into());
        d.insert("max_ms".into(), self.max_ms.into());
        DetailValue::Map(d)
    }
}

/// Which way a rejection reason is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// More in the last window than in the one before.
    Rising,
    /// Fewer in the last window than in the one before.
    Falling,
    /// As many (possibly none) in both windows.
    Steady,
}

impl Trend {
    pub fn name(self) -> &'static str {
        match self {
            Trend::Rising => "rising",
            Trend::Falling => "falling",
            Trend::Steady => "steady",
        }
    }
}

/// Rejections of one reason (the venue's Text 58).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectionReason {
    pub reason: String,
    pub total: u64,
    /// In the last trend window.
    pub recent: u64,
    /// In the window before it.
    pub previous: u64,
}

impl RejectionReason {
    pub fn trend(&self) -> Trend {
        match self.recent.cmp(&self.previous) {
            std::cmp::Ordering::Greater => Trend::Rising,
            std::cmp::Ordering::Less => Trend::Falling,
            std::cmp::Ordering::Equal => Trend::Steady,
        }
    }
}

/// Everything execution readiness is graded from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionState {
    /// Orders of the trading day (sent by us, or known from their reports).
    pub orders_submitted: u64,
    /// Orders with at least one fill.
    pub orders_executed: u64,
    /// Orders the venue rejected.
    pub orders_failed: u64,
    /// Orders waiting for the venue (pending new, cancel or replace).
    pub pending_orders: u64,
    pub ack_latency: Latency,
    pub fill_latency: Latency,
    /// Per reason, most rejections first.
    pub rejections: Vec<RejectionReason>,
    /// Executions come from our FIX trading session (else from the platform over Kafka).
    pub via_fix: bool,
    pub connection_healthy: bool,
    /// The trading session's state name.
    pub trading_state: String,
    pub drop_copy_configured: bool,
    pub drop_copy_active: bool,
    pub drop_copy_lag_seconds: Option<f64>,
    /// Inbound messages the sessions dropped because the queue was full.
    pub dropped_messages: u64,
    pub drop_copy_open_breaks: u64,
    /// Names of the sessions logged on (`trading`, `dropcopy`).
    pub sessions_active: Vec<String>,
    /// The trading session's last logout reason while it is not logged on.
    pub last_error: Option<String>,
    /// When the last fill arrived (ms since the epoch).
    pub last_execution_ms: Option<i64>,
}

impl ExecutionState {
    /// Derives the state from the live order book and the pilot's sessions and reconciler.
    pub fn derive(
        book: &OrderBook,
        pilot: &PilotState,
        policy: &ExecutionPolicy,
        now_ms: i64,
    ) -> Self {
        let window_ms = (policy.trend_window_seconds * 1000.0).round() as i64;
        let mut submitted = 0;
        let mut executed = 0;
        let mut failed = 0;
        let mut pending = 0;
        let mut acks = Vec::new();
        let mut fills = Vec::new();
        let mut last_execution_ms: Option<i64> = None;
        let mut reasons: BTreeMap<String, RejectionReason> = BTreeMap::new();
        for o in book.orders() {
            submitted += 1;
            if !o.cum_qty.is_zero() {
                executed += 1;
            }
            if matches!(
                o.status,
                Status::PendingNew | Status::PendingCancel | Status::PendingReplace
            ) {
                pending += 1;
            }
            if let (Some(sent), Some(acked)) = (o.sent_ms, o.acked_ms) {
                acks.push(acked - sent);
            }
            if let (Some(sent), Some(filled)) = (o.sent_ms, o.first_fill_ms) {
                fills.push(filled - sent);
            }
            if o.first_fill_ms.is_some() {
                last_execution_ms =
                    Some(last_execution_ms.map_or(o.updated_ms, |t| t.max(o.updated_ms)));
            }
            if o.status == Status::Rejected {
                failed += 1;
                let reason = o
                    .reject_reason
                    .clone()
                    .unwrap_or_else(|| "unspecified".into());
                let r = reasons
                    .entry(reason.clone())
                    .or_insert_with(|| RejectionReason {
                        reason,
                        total: 0,
                        recent: 0,
                        previous: 0,
                    });
                r.total += 1;
                let age = now_ms - o.updated_ms;
                if age < window_ms {
                    r.recent += 1;
                } else if age < 2 * window_ms {
                    r.previous += 1;
                }
            }
        }
        let mut rejections: Vec<RejectionReason> = reasons.into_values().collect();
        rejections.sort_by(|a, b| b.total.cmp(&a.total).then(a.reason.cmp(&b.reason)));
        let via_fix = pilot.executions_source == ExecutionsSource::Fix;
        let trading_on = pilot.trading.status.is_logged_on();
        let drop_copy_active = pilot.dropcopy.configured && pilot.dropcopy.status.is_logged_on();
        let mut sessions_active = Vec::new();
        if pilot.trading.configured && trading_on {
            sessions_active.push("trading".to_owned());
        }
        if drop_copy_active {
            sessions_active.push("dropcopy".to_owned());
        }
        let recon = pilot.recon.as_ref();
        Self {
            orders_submitted: submitted,
            orders_executed: executed,
            orders_failed: failed,
            pending_orders: pending,
            ack_latency: Latency::of(acks),
            fill_latency: Latency::of(fills),
            rejections,
            via_fix,
            connection_healthy: !via_fix || (pilot.trading.configured && trading_on),
            trading_state: if via_fix {
                pilot.trading.status.name().to_owned()
            } else {
                "executions from kafka".to_owned()
            },
            drop_copy_configured: pilot.dropcopy.configured,
            drop_copy_active,
            drop_copy_lag_seconds: recon
                .and_then(|r| r.dropcopy_lag_last_ms)
                .map(|ms| ms as f64 / 1000.0),
            dropped_messages: pilot.queues.inbound_drops,
            drop_copy_open_breaks: recon.map_or(0, |r| r.open_break_count),
            sessions_active,
            last_error: if via_fix && !trading_on {
                pilot.trading.last_logout_reason.clone()
            } else {
                None
            },
            last_execution_ms,
        }
    }

    /// Orders executed / submitted; `None` before the first order.
    pub fn fill_rate(&self) -> Option<f64> {
        (self.orders_submitted > 0)
            .then(|| self.orders_executed as f64 / self.orders_submitted as f64)
    }

    /// Orders rejected / submitted; `None` before the first order.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.orders_submitted > 0)
            .then(|| self.orders_failed as f64 / self.orders_submitted as f64)
    }
}

/// One finding: a stable `code`, its grade and a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub code: &'static str,
    pub severity: Grade,
    pub message: String,
}

fn issue(code: &'static str, severity: Grade, message: String) -> Issue {
    Issue {
        code,
        severity,
        message,
    }
}

/// Rates and their derived limits (0.8 × 0.9 is 0.7200000000000001 in binary floating
/// point): a value within 1e-9 of its limit is at the limit, not beyond it.
const EPSILON: f64 = 1e-9;

fn below(value: f64, limit: f64) -> bool {
    value < limit - EPSILON
}

fn above(value: f64, limit: f64) -> bool {
    value > limit + EPSILON
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn ms_text(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |v| format!("{v:.1} ms"))
}

/// A component graded by its issues; `summary` is used when it has none.
fn component(name: &str, issues: &[Issue], summary: String, policy: Details) -> Component {
    let status = Grade::worst(issues.iter().map(|i| i.severity));
    let summary = if issues.is_empty() {
        summary
    } else {
        issues
            .iter()
            .map(|i| i.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let list: Vec<DetailValue> = issues
        .iter()
        .map(|i| {
            let mut m = Details::new();
            m.insert("code".into(), i.code.into());
            m.insert("severity".into(), i.severity.as_str().into());
            m.insert("message".into(), i.message.clone().into());
            DetailValue::Map(m)
        })
        .collect();
    Component::new(name, status, summary)
        .detail("issues", list)
        .detail("policy", policy)
}

fn policy_map<const N: usize>(items: [(&str, DetailValue); N]) -> Details {
    items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The rules of §3.4.3 on one state, per component (pure; the tests' boundary tables run
/// against this).
pub fn issues(policy: &ExecutionPolicy, s: &ExecutionState) -> BTreeMap<&'static str, Vec<Issue>> {
    let mut out: BTreeMap<&'static str, Vec<Issue>> =
        COMPONENTS.iter().map(|&c| (c, Vec::new())).collect();
    let mut add = |c: &'static str, i: Issue| out.entry(c).or_default().push(i);
    let enough = s.orders_submitted >= policy.min_orders_for_fail;

    // fills
    if s.orders_submitted == 0 {
        add(
            "fills",
            issue(
                "no_orders",
                Grade::Warn,
                "no orders yet today: readiness is unproven until one executes".into(),
            ),
        );
    }
    if let Some(rate) = s.fill_rate() {
        if below(rate, policy.min_fill_rate) {
            let severity = if enough && below(rate, 0.8 * policy.min_fill_rate) {
                Grade::Fail
            } else {
                Grade::Warn
            };
            add(
                "fills",
                issue(
                    "fill_rate_below_target",
                    severity,
                    format!(
                        "fill rate {} of {} orders is below the target {}",
                        pct(rate),
                        s.orders_submitted,
                        pct(policy.min_fill_rate)
                    ),
                ),
            );
        }
    }

    // rejections
    if let Some(rate) = s.failure_rate() {
        if above(rate, policy.max_rejection_rate) {
            let severity = if enough && above(rate, 1.5 * policy.max_rejection_rate) {
                Grade::Fail
            } else {
                Grade::Warn
            };
            let top = s
                .rejections
                .first()
                .map(|r| format!(", mostly {:?} ({})", r.reason, r.total))
                .unwrap_or_default();
            add(
                "rejections",
                issue(
                    "rejection_rate_high",
                    severity,
                    format!(
                        "rejection rate {} ({} of {}) is above {}{top}",
                        pct(rate),
                        s.orders_failed,
                        s.orders_submitted,
                        pct(policy.max_rejection_rate)
                    ),
                ),
            );
        }
    }
    for r in &s.rejections {
        if r.trend() == Trend::Rising && r.recent >= policy.min_rising_rejections {
            add(
                "rejections",
                issue(
                    "rejection_trend_rising",
                    Grade::Warn,
                    format!(
                        "rejections {:?} rising: {} in the last {:.0}s against {} before",
                        r.reason, r.recent, policy.trend_window_seconds, r.previous
                    ),
                ),
            );
        }
    }

    // pending
    if s.pending_orders > policy.max_pending_orders {
        let severity = if s.pending_orders >= 2 * policy.max_pending_orders {
            Grade::Fail
        } else {
            Grade::Warn
        };
        add(
            "pending",
            issue(
                "pending_orders_exceeded",
                severity,
                format!(
                    "{} orders wait for the venue (limit {})",
                    s.pending_orders, policy.max_pending_orders
                ),
            ),
        );
    }

    // latency
    if let Some(avg) = s.ack_latency.avg_ms {
        if avg > policy.max_avg_latency_ms {
            let severity = if avg > 1.5 * policy.max_avg_latency_ms {
                Grade::Fail
            } else {
                Grade::Warn
            };
            add(
                "latency",
                issue(
                    "latency_average",
                    severity,
                    format!(
                        "mean order→ack latency {avg:.1} ms is above {:.1} ms",
                        policy.max_avg_latency_ms
                    ),
                ),
            );
        }
    }
    if let Some(p99) = s.ack_latency.p99_ms {
        if p99 > policy.max_latency_ms {
            add(
                "latency",
                issue(
                    "latency_peak",
                    Grade::Warn,
                    format!(
                        "p99 order→ack latency {p99:.1} ms is above {:.1} ms",
                        policy.max_latency_ms
                    ),
                ),
            );
        }
    }

    // connection
    if !s.connection_healthy {
        let severity = if policy.require_connection {
            Grade::Fail
        } else {
            Grade::Warn
        };
        add(
            "connection",
            issue(
                "connection_down",
                severity,
                format!(
                    "trading session {}: no order can reach the venue",
                    s.trading_state
                ),
            ),
        );
    }
    if let Some(e) = &s.last_error {
        add(
            "connection",
            issue("last_error", Grade::Warn, format!("last error: {e}")),
        );
    }

    // drop copy
    if !s.drop_copy_active {
        let severity = if policy.require_drop_copy {
            Grade::Fail
        } else if s.drop_copy_configured {
            Grade::Warn
        } else {
            Grade::Ok
        };
        if severity != Grade::Ok {
            let message = if s.drop_copy_configured {
                "drop-copy session is not logged on: executions are not confirmed".to_owned()
            } else {
                "no drop copy configured: set [fix_pilot.dropcopy] to confirm executions".to_owned()
            };
            add("drop_copy", issue("drop_copy_inactive", severity, message));
        }
    } else if let Some(lag) = s.drop_copy_lag_seconds {
        if lag > policy.max_drop_copy_lag_seconds {
            add(
                "drop_copy",
                issue(
                    "drop_copy_lag",
                    Grade::Warn,
                    format!(
                        "drop copy lags {lag:.1}s behind the trading session (limit {:.1}s)",
                        policy.max_drop_copy_lag_seconds
                    ),
                ),
            );
        }
    }
    if s.dropped_messages > 0 {
        add(
            "drop_copy",
            issue(
                "drop_copy_dropped_messages",
                Grade::Warn,
                format!(
                    "{} inbound FIX messages dropped (queue full)",
                    s.dropped_messages
                ),
            ),
        );
    }

    // sessions
    if policy.min_active_sessions > 0
        && (s.sessions_active.len() as u64) < policy.min_active_sessions
    {
        let severity = if policy.warn_on_missing_sessions {
            Grade::Warn
        } else {
            Grade::Fail
        };
        add(
            "sessions",
            issue(
                "missing_sessions",
                severity,
                format!(
                    "{} sessions logged on, {} required",
                    s.sessions_active.len(),
                    policy.min_active_sessions
                ),
            ),
        );
    }
    out
}

/// Grades `telemetry.operational.execution`.
pub fn evaluate_execution(
    policy: &ExecutionPolicy,
    s: &ExecutionState,
    source: Source,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut snapshot = Snapshot::new(EXECUTION_KIND, source, now);
    let mut by = issues(policy, s);
    let mut take = |c: &str| by.remove(c).unwrap_or_default();
    let opt = |x: Option<f64>| -> DetailValue { x.into() };

    snapshot.push(
        component(
            "fills",
            &take("fills"),
            format!(
                "{} of {} orders filled ({})",
                s.orders_executed,
                s.orders_submitted,
                s.fill_rate().map_or("n/a".into(), pct)
            ),
            policy_map([
                ("min_fill_rate", policy.min_fill_rate.into()),
                ("min_orders_for_fail", policy.min_orders_for_fail.into()),
            ]),
        )
        .detail("orders_submitted", s.orders_submitted)
        .detail("orders_executed", s.orders_executed)
        .detail("fill_rate", opt(s.fill_rate())),
    );

    let by_reason: Vec<DetailValue> = s
        .rejections
        .iter()
        .map(|r| {
            DetailValue::Map(policy_map([
                ("reason", r.reason.clone().into()),
                ("total", r.total.into()),
                ("recent", r.recent.into()),
                ("previous", r.previous.into()),
                ("trend", r.trend().name().into()),
            ]))
        })
        .collect();
    snapshot.push(
        component(
            "rejections",
            &take("rejections"),
            format!(
                "{} rejected ({})",
                s.orders_failed,
                s.failure_rate().map_or("n/a".into(), pct)
            ),
            policy_map([
                ("max_rejection_rate", policy.max_rejection_rate.into()),
                ("trend_window_seconds", policy.trend_window_seconds.into()),
                ("min_rising_rejections", policy.min_rising_rejections.into()),
            ]),
        )
        .detail("orders_failed", s.orders_failed)
        .detail("failure_rate", opt(s.failure_rate()))
        .detail("by_reason", by_reason),
    );

    snapshot.push(
        component(
            "pending",
            &take("pending"),
            format!("{} orders wait for the venue", s.pending_orders),
            policy_map([("max_pending_orders", policy.max_pending_orders.into())]),
        )
        .detail("pending_orders", s.pending_orders),
    );

    snapshot.push(
        component(
            "latency",
            &take("latency"),
            format!(
                "order→ack p50 {}, p99 {}; order→fill p50 {}",
                ms_text(s.ack_latency.p50_ms),
                ms_text(s.ack_latency.p99_ms),
                ms_text(s.fill_latency.p50_ms)
            ),
            policy_map([
                ("max_avg_latency_ms", policy.max_avg_latency_ms.into()),
                ("max_latency_ms", policy.max_latency_ms.into()),
            ]),
        )
        .detail("order_to_ack", s.ack_latency.details())
        .detail("order_to_fill", s.fill_latency.details()),
    );

    snapshot.push(
        component(
            "connection",
            &take("connection"),
            format!("trading session {}", s.trading_state),
            policy_map([("require_connection", policy.require_connection.into())]),
        )
        .detail("healthy", s.connection_healthy)
        .detail("via_fix", s.via_fix)
        .detail("trading_state", s.trading_state.clone())
        .detail("last_error", s.last_error.clone()),
    );

    snapshot.push(
        component(
            "drop_copy",
            &take("drop_copy"),
            if s.drop_copy_active {
                format!(
                    "drop copy logged on, lag {}, {} open breaks",
                    s.drop_copy_lag_seconds
                        .map_or("n/a".into(), |l| format!("{l:.1}s")),
                    s.drop_copy_open_breaks
                )
            } else {
                "no drop copy configured".into()
            },
            policy_map([
                ("require_drop_copy", policy.require_drop_copy.into()),
                (
                    "max_drop_copy_lag_seconds",
                    policy.max_drop_copy_lag_seconds.into(),
                ),
            ]),
        )
        .detail("configured", s.drop_copy_configured)
        .detail("active", s.drop_copy_active)
        .detail("lag_seconds", opt(s.drop_copy_lag_seconds))
        .detail("dropped_messages", s.dropped_messages)
        .detail("open_breaks", s.drop_copy_open_breaks),
    );

    snapshot.push(
        component(
            "sessions",
            &take("sessions"),
            if s.sessions_active.is_empty() {
                "no session logged on".into()
            } else {
                format!("logged on: {}", s.sessions_active.join(", "))
            },
            policy_map([
                ("min_active_sessions", policy.min_active_sessions.into()),
                (
                    "warn_on_missing_sessions",
                    policy.warn_on_missing_sessions.into(),
                ),
            ]),
        )
        .detail("active", s.sessions_active.clone())
        .detail(
            "last_execution_at",
            s.last_execution_ms
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|t| t.to_rfc3339()),
        ),
    );

    for (name, value) in [
        ("orders_submitted", Some(s.orders_submitted as f64)),
        ("orders_executed", Some(s.orders_executed as f64)),
        ("orders_failed", Some(s.orders_failed as f64)),
        ("pending_orders", Some(s.pending_orders as f64)),
        ("fill_rate", s.fill_rate()),
        ("failure_rate", s.failure_rate()),
        ("avg_latency_ms", s.ack_latency.avg_ms),
        ("max_latency_ms", s.ack_latency.max_ms),
        ("ack_p50_ms", s.ack_latency.p50_ms),
        ("ack_p90_ms", s.ack_latency.p90_ms),
        ("ack_p99_ms", s.ack_latency.p99_ms),
        ("fill_p50_ms", s.fill_latency.p50_ms),
        ("fill_p90_ms", s.fill_latency.p90_ms),
        ("fill_p99_ms", s.fill_latency.p99_ms),
        ("drop_copy_lag_seconds", s.drop_copy_lag_seconds),
    ] {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            snapshot.metric(name, v);
        }
    }

    let issue_count: usize = snapshot
        .components
        .iter()
        .map(|c| match c.details.get("issues") {
            Some(DetailValue::List(l)) => l.len(),
            _ => 0,
        })
        .sum();
    snapshot.summary = format!(
        "fill {}, rejections {}, {} pending, ack p99 {}, {}",
        s.fill_rate().map_or("n/a".into(), pct),
        s.failure_rate().map_or("n/a".into(), pct),
        s.pending_orders,
        ms_text(s.ack_latency.p99_ms),
        match issue_count {
            0 => "no issues".to_owned(),
            1 => "1 issue".to_owned(),
            n => format!("{n} issues"),
        }
    );
    snapshot.markdown = render_markdown(&snapshot, s);
    snapshot
}

/// Grades the execution readiness a [`PilotState`] carries (`None` when the service has not
/// derived it): what the pilot publishes beside its two other kinds.
pub fn evaluate_pilot_execution(
    policy: &ExecutionPolicy,
    state: &PilotState,
    source: Source,
    now: DateTime<Utc>,
) -> Option<Snapshot> {
    state
        .execution
        .as_ref()
        .map(|s| evaluate_execution(policy, s, source, now))
}

/// §3.4.5: the standard table, the figures as bullets, then the issues with their severity.
fn render_markdown(snapshot: &Snapshot, s: &ExecutionState) -> String {
    let mut out = snapshot.render_markdown("Execution readiness");
    out.push('\n');
    let lines = [
        format!("- status: {}", snapshot.status.as_str()),
        format!("- fill rate: {}", s.fill_rate().map_or("n/a".into(), pct)),
        format!(
            "- failure rate: {}",
            s.failure_rate().map_or("n/a".into(), pct)
        ),
        format!("- pending orders: {}", s.pending_orders),
        format!(
            "- average order→ack latency: {}",
            ms_text(s.ack_latency.avg_ms)
        ),
        format!("- max order→ack latency: {}", ms_text(s.ack_latency.max_ms)),
        format!(
            "- drop-copy lag: {}",
            s.drop_copy_lag_seconds
                .map_or("n/a".into(), |l| format!("{l:.1} s"))
        ),
        format!("- drop-copy active: {}", s.drop_copy_active),
        format!(
            "- connection healthy: {}",
            if s.connection_healthy { "yes" } else { "no" }
        ),
        format!(
            "- active sessions: {}",
            if s.sessions_active.is_empty() {
                "n/a".to_owned()
            } else {
                s.sessions_active.join(", ")
            }
        ),
    ];
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    let mut issues = Vec::new();
    for c in &snapshot.components {
        if let Some(DetailValue::List(list)) = c.details.get("issues") {
            for i in list {
                if let DetailValue::Map(m) = i {
                    let text = |k: &str| match m.get(k) {
                        Some(DetailValue::Text(t)) => t.clone(),
                        _ => String::new(),
                    };
                    issues.push(format!("- [{}] {}", text("severity"), text("message")));
                }
            }
        }
    }
    if !issues.is_empty() {
        out.push_str("\n**Issues**\n\n");
        out.push_str(&issues.join("\n"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
