//! Owns [`Reconciler`]: matches our side of the executions (the trading session, or the
//! platform's own gateway) against the drop copy, the way a trading operations desk does
//! (FIX.md §3). Pure: no engine types, no I/O, no clock of its own (every call takes `now_ms`).
//!
//! - Key: ExecID (17). The same ExecID on the same side with the same economics is a
//!   duplicate (a PossDup/PossResend replay) and is ignored; with different economics it is a
//!   `duplicate_conflict` break.
//! - Order-status (150=I) and restatement (150=D) reports are kept out of matching.
//! - A matched pair is compared on Side, Symbol, LastQty, CumQty, LeavesQty, LastPx (within the
//!   tick tolerance) and the canonical status (ExecType and OrdStatus codes mapped first).
//! - One side only stays `pending` while the grace window runs; the window clock runs only
//!   while coverage is complete (both sessions logged on, no resend in flight). Otherwise the
//!   reconciler is `degraded` and declares no timing breaks.
//! - Busts (150=H) and corrections (150=G) are matched like any execution; once both sides
//!   have one, it is applied to the execution its ExecRefID (19) names. Seen on one side only
//!   past the window, it is `bust_or_correction_one_sided`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use serde::Serialize;

use crate::codes::{ExecType, Side};
use crate::fasthash::FastHash;
use crate::fixed::Fixed;
use crate::orders::OrderBook;
use crate::report::{ExecReport, Rejection};

/// Which feed a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Our side: the trading session, or the platform's gateway via Kafka.
    Trading,
    /// The venue's drop copy.
    DropCopy,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Trading => "trading",
            Stream::DropCopy => "dropcopy",
        }
    }
}

/// The kinds of reconciliation break, named the way the person on call sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    MissingOnDropcopy,
    UnexpectedOnDropcopy,
    UnexpectedOtherSession,
    QtyMismatch,
    PriceMismatch,
    StatusMismatch,
    AttributeMismatch,
    DuplicateConflict,
    BustOrCorrectionOneSided,
}

impl Category {
    pub const ALL: [Category; 9] = [
        Category::MissingOnDropcopy,
        Category::UnexpectedOnDropcopy,
        Category::UnexpectedOtherSession,
        Category::QtyMismatch,
        Category::PriceMismatch,
        Category::StatusMismatch,
        Category::AttributeMismatch,
        Category::DuplicateConflict,
        Category::BustOrCorrectionOneSided,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::MissingOnDropcopy => "missing_on_dropcopy",
            Category::UnexpectedOnDropcopy => "unexpected_on_dropcopy",
            Category::UnexpectedOtherSession => "unexpected_other_session",
            Category::QtyMismatch => "qty_mismatch",
            Category::PriceMismatch => "price_mismatch",
            Category::StatusMismatch => "status_mismatch",
            Category::AttributeMismatch => "attribute_mismatch",
            Category::DuplicateConflict => "duplicate_conflict",
            Category::BustOrCorrectionOneSided => "bust_or_correction_one_sided",
        }
    }

    /// Timing breaks: declared because the other side did not arrive within the window.
    pub fn is_timing(self) -> bool {
        matches!(
            self,
            Category::MissingOnDropcopy
                | Category::UnexpectedOnDropcopy
                | Category::UnexpectedOtherSession
                | Category::BustOrCorrectionOneSided
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One field that differs between the two compared reports (see [`Break::compared`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDiff {
    pub field: &'static str,
    pub left: String,
    pub right: String,
}

/// One reconciliation break.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Break {
    pub id: u64,
    pub category: Category,
    pub exec_id: String,
    pub order_id: String,
    pub cl_ord_id: String,
    pub symbol: String,
    pub side: Side,
    pub exec_type: ExecType,
    /// The side(s) the execution was seen on.
    pub seen_on: Vec<Stream>,
    /// What the `left` and `right` values of [`Break::diffs`] are: `["trading", "dropcopy"]`
    /// for a mismatch, `["first_seen", "now"]` for a duplicate conflict.
    pub compared: [&'static str; 2],
    pub diffs: Vec<FieldDiff>,
    pub detail: String,
    /// Wall-clock time the break was declared (ms since the epoch).
    pub opened_ms: i64,
    /// The coverage clock when the break was declared.
    pub opened_covered_ms: i64,
}

/// The reconciler's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconPolicy {
    /// How long (coverage clock) one side may wait for the other before it is a break.
    pub grace_ms: i64,
    /// LastPx/AvgPx differences up to this are equal (tick size × tolerance ticks).
    pub price_tolerance: Fixed,
    /// Drop-copy sources (OnBehalfOfCompID by default) that are other sessions of ours:
    /// their fills are `unexpected_other_session`, not `unexpected_on_dropcopy`.
    pub other_sessions: Vec<String>,
    /// Whether non-trade events (acks, cancels, replaces, rejects) are matched too, or only
    /// trades, corrections and busts.
    pub match_order_events: bool,
    /// How many recent breaks the summary lists.
    pub recent_breaks: usize,
    /// How many recent input rejections the summary lists.
    pub recent_rejections: usize,
}

impl Default for ReconPolicy {
    fn default() -> Self {
        Self {
            grace_ms: 5_000,
            price_tolerance: Fixed::from_units(10_000), // 0.0001
            other_sessions: Vec::new(),
            match_order_events: true,
            recent_breaks: 10,
            recent_rejections: 5,
        }
    }
}

/// What happened to one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Waiting for the other side.
    Pending,
    /// Both sides agree.
    Matched,
    /// Both sides present but they differ: the break id.
    Mismatch(u64),
    /// A replay of a report already processed on this side.
    Duplicate,
    /// Same ExecID, different economics: the break id.
    DuplicateConflict(u64),
    /// Order-status / restatement report: applied to the order model, not matched.
    StatusReport,
    /// Not matched (an order event while only trades are matched).
    NotMatched,
}

#[derive(Debug)]
enum EntryState {
    Pending,
    Matched,
    Broken(u64),
}

#[derive(Debug)]
struct Entry {
    trading: Option<ExecReport>,
    dropcopy: Option<ExecReport>,
    state: EntryState,
    /// A timing break (missing/unexpected/one-sided) still open for this entry.
    timing_break: Option<u64>,
    busted: bool,
    /// When and on which side the first report arrived (for the drop-copy lag).
    first_seen_ms: i64,
    first_stream: Stream,
}

/// A rejected input, kept for the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedInput {
    pub stream: Stream,
    pub reason: String,
    pub exec_id: Option<String>,
    pub msg_seq_num: Option<String>,
    pub at_ms: i64,
}

/// A break as the summary shows it, with its age.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakView {
    #[serde(flatten)]
    pub brk: Break,
    pub open: bool,
    pub age_ms: i64,
    pub covered_age_ms: i64,
}

/// The reconciliation state the `dropcopy` telemetry is graded from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReconSummary {
    pub reports: BTreeMap<&'static str, u64>,
    pub matched: u64,
    /// Of `matched`, pairs completed after a timing break had been declared.
    pub late_matched: u64,
    pub pending: u64,
    pub duplicates: u64,
    /// Of `duplicates`, the ones flagged PossDup (43=Y) or PossResend (97=Y).
    pub poss_dup_duplicates: u64,
    pub status_reports: u64,
    pub busts_applied: u64,
    pub corrections_applied: u64,
    /// Open breaks per category (every category present).
    pub open_breaks: BTreeMap<&'static str, u64>,
    /// Breaks declared since start (or the last day roll), per category.
    pub total_breaks: BTreeMap<&'static str, u64>,
    pub open_break_count: u64,
    /// Coverage-clock age of the oldest open break of each category that has one.
    pub oldest_covered_age_ms: BTreeMap<&'static str, i64>,
    pub oldest_open_break: Option<BreakView>,
    pub recent_breaks: Vec<BreakView>,
    /// Oldest pending entry, on the coverage clock.
    pub oldest_pending_covered_ms: Option<i64>,
    pub degraded: bool,
    pub degraded_reason: Option<String>,
    pub degraded_for_ms: Option<i64>,
    /// The coverage clock: how long both feeds were complete.
    pub covered_ms: i64,
    pub last_clean_ms: Option<i64>,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    pub recent_rejections: Vec<RejectedInput>,
    pub last_rejection_ms: Option<i64>,
    /// Drop-copy lag of the last execution matched after the trading side: drop-copy receive
    /// time − trading receive time.
    pub dropcopy_lag_last_ms: Option<i64>,
    pub dropcopy_lag_max_ms: i64,
}

impl ReconSummary {
    /// Matched / (matched + open breaks), 1.0 when nothing was seen.
    pub fn match_rate(&self) -> f64 {
        let denominator = self.matched + self.open_break_count;
        if denominator == 0 {
            1.0
        } else {
            self.matched as f64 / denominator as f64
        }
    }

    pub fn open(&self, category: Category) -> u64 {
        self.open_breaks.get(category.name()).copied().unwrap_or(0)
    }
}

/// The drop-copy reconciler and the order model of our side.
#[derive(Debug)]
pub struct Reconciler {
    policy: ReconPolicy,
    entries: HashMap<String, Entry, FastHash>,
    /// Pending ExecIDs in the order they became pending (coverage clock ascending).
    pending_queue: VecDeque<(i64, String)>,
    pending: u64,
    open_breaks: BTreeMap<u64, Break>,
    recent: VecDeque<Break>,
    next_break_id: u64,
    orders: OrderBook,
    reports: [u64; 2],
    matched: u64,
    late_matched: u64,
    duplicates: u64,
    poss_dup_duplicates: u64,
    status_reports: u64,
    busts_applied: u64,
    corrections_applied: u64,
    total_breaks: BTreeMap<Category, u64>,
    covered: bool,
    degraded_reason: Option<String>,
    degraded_since_ms: Option<i64>,
    covered_ms: i64,
    clock_ms: Option<i64>,
    last_clean_ms: Option<i64>,
    rejected: u64,
    rejected_by_reason: BTreeMap<&'static str, u64>,
    recent_rejections: VecDeque<RejectedInput>,
    last_lag_ms: Option<i64>,
    max_lag_ms: i64,
}

impl Reconciler {
    /// A reconciler that starts degraded ("sessions not logged on yet") until told otherwise.
    pub fn new(policy: ReconPolicy) -> Self {
        Self {
            policy,
            entries: HashMap::default(),
            pending_queue: VecDeque::new(),
            pending: 0,
            open_breaks: BTreeMap::new(),
            recent: VecDeque::new(),
            next_break_id: 1,
            orders: OrderBook::new(),
            reports: [0; 2],
            matched: 0,
            late_matched: 0,
            duplicates: 0,
            poss_dup_duplicates: 0,
            status_reports: 0,
            busts_applied: 0,
            corrections_applied: 0,
            total_breaks: BTreeMap::new(),
            covered: false,
            degraded_reason: Some("sessions not logged on yet".into()),
            degraded_since_ms: None,
            covered_ms: 0,
            clock_ms: None,
            last_clean_ms: None,
            rejected: 0,
            rejected_by_reason: BTreeMap::new(),
            recent_rejections: VecDeque::new(),
            last_lag_ms: None,
            max_lag_ms: 0,
        }
    }

    pub fn policy(&self) -> &ReconPolicy {
        &self.policy
    }

    /// The order model of our side.
    pub fn orders(&self) -> &OrderBook {
        &self.orders
    }

    pub fn orders_mut(&mut self) -> &mut OrderBook {
        &mut self.orders
    }

    /// Whether coverage is complete right now.
    pub fn is_covered(&self) -> bool {
        self.covered
    }

    /// Advances the coverage clock to `now_ms` (it only runs while covered).
    fn advance(&mut self, now_ms: i64) {
        if let Some(last) = self.clock_ms {
            if self.covered && now_ms > last {
                self.covered_ms += now_ms - last;
            }
        }
        if self.clock_ms.is_none_or(|last| now_ms > last) {
            self.clock_ms = Some(now_ms);
        }
    }

    /// Sets whether both feeds are complete (both sessions logged on, no resend in flight).
    /// `reason` says why not; it is shown while degraded.
    pub fn set_coverage(&mut self, covered: bool, reason: Option<String>, now_ms: i64) {
        self.advance(now_ms);
        if covered {
            self.covered = true;
            self.degraded_reason = None;
            self.degraded_since_ms = None;
        } else {
            if self.covered || self.degraded_since_ms.is_none() {
                self.degraded_since_ms = Some(now_ms);
            }
            self.covered = false;
            self.degraded_reason = Some(reason.unwrap_or_else(|| "coverage incomplete".into()));
        }
    }

    /// Counts a message that could not be read as an execution report.
    pub fn on_rejected(&mut self, stream: Stream, rejection: &Rejection, now_ms: i64) {
        self.rejected += 1;
        *self
            .rejected_by_reason
            .entry(rejection.reason.key())
            .or_default() += 1;
        if self.policy.recent_rejections > 0 {
            if self.recent_rejections.len() == self.policy.recent_rejections {
                self.recent_rejections.pop_front();
            }
            self.recent_rejections.push_back(RejectedInput {
                stream,
                reason: rejection.reason.to_string(),
                exec_id: rejection.exec_id.clone(),
                msg_seq_num: rejection.msg_seq_num.clone(),
                at_ms: now_ms,
            });
        }
    }

    /// Processes one execution report of `stream`.
    pub fn on_report(&mut self, stream: Stream, report: ExecReport, now_ms: i64) -> Outcome {
        self.advance(now_ms);
        self.reports[stream as usize] += 1;
        if report.exec_type.is_status_report() {
            self.status_reports += 1;
            if stream == Stream::Trading {
                self.orders.apply(&report, now_ms);
            }
            return Outcome::StatusReport;
        }
        if !self.policy.match_order_events && !report.exec_type.is_trade() {
            if stream == Stream::Trading {
                self.orders.apply(&report, now_ms);
            }
            return Outcome::NotMatched;
        }
        let covered_ms = self.covered_ms;
        let tolerance = self.policy.price_tolerance;
        let entry = match self.entries.get_mut(report.exec_id.as_str()) {
            Some(entry) => entry,
            None => {
                if stream == Stream::Trading {
                    self.orders.apply(&report, now_ms);
                }
                let exec_id = report.exec_id.clone();
                let (trading, dropcopy) = match stream {
                    Stream::Trading => (Some(report), None),
                    Stream::DropCopy => (None, Some(report)),
                };
                self.entries.insert(
                    exec_id.clone(),
                    Entry {
                        trading,
                        dropcopy,
                        state: EntryState::Pending,
                        timing_break: None,
                        busted: false,
                        first_seen_ms: now_ms,
                        first_stream: stream,
                    },
                );
                self.pending += 1;
                self.pending_queue.push_back((covered_ms, exec_id));
                return Outcome::Pending;
            }
        };
        let slot = match stream {
            Stream::Trading => &entry.trading,
            Stream::DropCopy => &entry.dropcopy,
        };
        if let Some(previous) = slot {
            let diffs = economic_diffs(previous, &report, tolerance);
            if diffs.is_empty() {
                self.duplicates += 1;
                if report.poss_dup || report.poss_resend {
                    self.poss_dup_duplicates += 1;
                }
                return Outcome::Duplicate;
            }
            let detail = format!(
                "ExecID {} arrived twice on the {} feed with different values (first seen vs now): a reused ExecID, not a replay",
                report.exec_id,
                stream.name()
            );
            let id = self.open_break(
                Category::DuplicateConflict,
                &report,
                vec![stream],
                diffs,
                detail,
                now_ms,
            );
            return Outcome::DuplicateConflict(id);
        }
        if stream == Stream::Trading {
            self.orders.apply(&report, now_ms);
        }
        let exec_id = report.exec_id.clone();
        let entry = self
            .entries
            .get_mut(exec_id.as_str())
            .unwrap_or_else(|| unreachable!("entry looked up above"));
        match stream {
            Stream::Trading => entry.trading = Some(report),
            Stream::DropCopy => entry.dropcopy = Some(report),
        }
        self.complete(&exec_id, now_ms)
    }

    /// Both sides of `exec_id` are present: compare them, settle any pending or timing state.
    fn complete(&mut self, exec_id: &str, now_ms: i64) -> Outcome {
        let tolerance = self.policy.price_tolerance;
        let Some(entry) = self.entries.get_mut(exec_id) else {
            return Outcome::NotMatched;
        };
        let (Some(t), Some(d)) = (&entry.trading, &entry.dropcopy) else {
            return Outcome::Pending;
        };
        let diffs = pair_diffs(t, d, tolerance);
        let was_pending = matches!(entry.state, EntryState::Pending);
        if entry.first_stream == Stream::Trading && was_pending {
            let lag = now_ms.saturating_sub(entry.first_seen_ms).max(0);
            self.last_lag_ms = Some(lag);
            self.max_lag_ms = self.max_lag_ms.max(lag);
        }
        let timing = entry.timing_break.take();
        let reference = d
            .exec_ref_id
            .clone()
            .filter(|_| matches!(d.exec_type, ExecType::TradeCancel | ExecType::TradeCorrect));
        let exec_type = t.exec_type;
        let corrected = (t.last_qty, t.last_px, d.last_qty, d.last_px);
        let report_for_break = if diffs.is_empty() {
            None
        } else {
            Some(t.clone())
        };
        if was_pending && timing.is_none() {
            self.pending = self.pending.saturating_sub(1);
        }
        if let Some(id) = timing {
            self.open_breaks.remove(&id);
            self.late_matched += 1;
        }
        let outcome = if let Some(report_for_break) = report_for_break {
            let category = primary_category(&diffs);
            let detail = format!(
                "{} differ between the trading session and the drop copy",
                diffs.iter().map(|d| d.field).collect::<Vec<_>>().join(", ")
            );
            let id = self.open_break(
                category,
                &report_for_break,
                vec![Stream::Trading, Stream::DropCopy],
                diffs,
                detail,
                now_ms,
            );
            if let Some(entry) = self.entries.get_mut(exec_id) {
                entry.state = EntryState::Broken(id);
            }
            Outcome::Mismatch(id)
        } else {
            if let Some(entry) = self.entries.get_mut(exec_id) {
                entry.state = EntryState::Matched;
            }
            self.matched += 1;
            if let Some(reference) = reference {
                self.apply_reference(exec_type, &reference, corrected, now_ms);
            }
            Outcome::Matched
        };
        self.note_clean(now_ms);
        outcome
    }

    /// A bust or correction both sides agree on: apply it to the execution it references.
    fn apply_reference(
        &mut self,
        exec_type: ExecType,
        reference: &str,
        values: (Fixed, Fixed, Fixed, Fixed),
        now_ms: i64,
    ) {
        let tolerance = self.policy.price_tolerance;
        let Some(target) = self.entries.get_mut(reference) else {
            return;
        };
        match exec_type {
            ExecType::TradeCancel => {
                target.busted = true;
                self.busts_applied += 1;
                // a busted execution's disagreement no longer matters
                if let EntryState::Broken(id) = target.state {
                    self.open_breaks.remove(&id);
                    target.state = EntryState::Matched;
                }
            }
            ExecType::TradeCorrect => {
                self.corrections_applied += 1;
                let (tq, tp, dq, dp) = values;
                if let Some(t) = target.trading.as_mut() {
                    t.last_qty = tq;
                    t.last_px = tp;
                }
                if let Some(d) = target.dropcopy.as_mut() {
                    d.last_qty = dq;
                    d.last_px = dp;
                }
                if let (EntryState::Broken(id), Some(t), Some(d)) =
                    (&target.state, &target.trading, &target.dropcopy)
                {
                    let id = *id;
                    if pair_diffs(t, d, tolerance).is_empty() {
                        self.open_breaks.remove(&id);
                        target.state = EntryState::Matched;
                    }
                }
            }
            _ => {}
        }
        self.note_clean(now_ms);
    }

    fn open_break(
        &mut self,
        category: Category,
        report: &ExecReport,
        seen_on: Vec<Stream>,
        diffs: Vec<FieldDiff>,
        detail: String,
        now_ms: i64,
    ) -> u64 {
        let id = self.next_break_id;
        self.next_break_id += 1;
        let brk = Break {
            id,
            category,
            exec_id: report.exec_id.clone(),
            order_id: report.order_id.clone(),
            cl_ord_id: report.cl_ord_id.clone(),
            symbol: report.symbol.clone(),
            side: report.side,
            exec_type: report.exec_type,
            compared: if category == Category::DuplicateConflict {
                ["first_seen", "now"]
            } else {
                ["trading", "dropcopy"]
            },
            seen_on,
            diffs,
            detail,
            opened_ms: now_ms,
            opened_covered_ms: self.covered_ms,
        };
        *self.total_breaks.entry(category).or_default() += 1;
        if self.policy.recent_breaks > 0 {
            if self.recent.len() == self.policy.recent_breaks {
                self.recent.pop_front();
            }
            self.recent.push_back(brk.clone());
        }
        self.open_breaks.insert(id, brk);
        id
    }

    fn note_clean(&mut self, now_ms: i64) {
        if self.open_breaks.is_empty() && self.pending == 0 {
            self.last_clean_ms = Some(now_ms);
        }
    }

    /// Advances the clocks and declares the timing breaks whose window has passed (only
    /// while covered: while degraded the window clock is frozen).
    pub fn tick(&mut self, now_ms: i64) {
        self.advance(now_ms);
        if !self.covered {
            return;
        }
        while let Some((since, _)) = self.pending_queue.front() {
            if self.covered_ms - since < self.policy.grace_ms {
                break;
            }
            let Some((_, exec_id)) = self.pending_queue.pop_front() else {
                break;
            };
            self.expire(&exec_id, now_ms);
        }
        self.note_clean(now_ms);
    }

    fn expire(&mut self, exec_id: &str, now_ms: i64) {
        let Some(entry) = self.entries.get(exec_id) else {
            return;
        };
        if !matches!(entry.state, EntryState::Pending) || entry.timing_break.is_some() {
            return;
        }
        let (category, report, stream, detail) = match (&entry.trading, &entry.dropcopy) {
            (Some(t), None) if t.exec_type.is_trade() && t.exec_type != ExecType::Trade => (
                Category::BustOrCorrectionOneSided,
                t.clone(),
                Stream::Trading,
                format!(
                    "{} of ExecID {} seen on the trading session only",
                    t.exec_type,
                    t.exec_ref_id.as_deref().unwrap_or("?")
                ),
            ),
            (Some(t), None) => (
                Category::MissingOnDropcopy,
                t.clone(),
                Stream::Trading,
                "the trading session reported it; the drop copy has not within the window"
                    .to_owned(),
            ),
            (None, Some(d)) if d.exec_type.is_trade() && d.exec_type != ExecType::Trade => (
                Category::BustOrCorrectionOneSided,
                d.clone(),
                Stream::DropCopy,
                format!(
                    "{} of ExecID {} seen on the drop copy only",
                    d.exec_type,
                    d.exec_ref_id.as_deref().unwrap_or("?")
                ),
            ),
            (None, Some(d)) => {
                let other = d
                    .source
                    .as_ref()
                    .is_some_and(|s| self.policy.other_sessions.iter().any(|o| o == s));
                let known = self.orders.find(d).is_some();
                let detail = match (other, known) {
                    (true, _) => format!(
                        "the drop copy reports it for our other session {}",
                        d.source.as_deref().unwrap_or("?")
                    ),
                    (false, true) => "the drop copy reports a fill of our order that the trading session never received".to_owned(),
                    (false, false) => "the drop copy reports an execution of an order we never sent".to_owned(),
                };
                let category = if other {
                    Category::UnexpectedOtherSession
                } else {
                    Category::UnexpectedOnDropcopy
                };
                (category, d.clone(), Stream::DropCopy, detail)
            }
            _ => return,
        };
        let id = self.open_break(category, &report, vec![stream], Vec::new(), detail, now_ms);
        if let Some(entry) = self.entries.get_mut(exec_id) {
            entry.timing_break = Some(id);
        }
        self.pending = self.pending.saturating_sub(1);
    }

    /// Starts a new trading day: ExecIDs are unique per day only, so matching state and the
    /// counters start over; open orders are kept.
    pub fn roll_day(&mut self) {
        let policy = self.policy.clone();
        let mut orders = std::mem::take(&mut self.orders);
        orders.prune_closed();
        let (covered, reason, since, clock, covered_ms) = (
            self.covered,
            self.degraded_reason.take(),
            self.degraded_since_ms,
            self.clock_ms,
            self.covered_ms,
        );
        *self = Reconciler::new(policy);
        self.orders = orders;
        self.covered = covered;
        self.degraded_reason = reason;
        self.degraded_since_ms = since;
        self.clock_ms = clock;
        self.covered_ms = covered_ms;
    }

    fn view(&self, brk: &Break, now_ms: i64) -> BreakView {
        BreakView {
            brk: brk.clone(),
            open: self.open_breaks.contains_key(&brk.id),
            age_ms: now_ms.saturating_sub(brk.opened_ms).max(0),
            covered_age_ms: (self.covered_ms - brk.opened_covered_ms).max(0),
        }
    }

    /// The reconciliation state at `now_ms`.
    pub fn summary(&self, now_ms: i64) -> ReconSummary {
        let mut open_breaks: BTreeMap<&'static str, u64> =
            Category::ALL.iter().map(|c| (c.name(), 0)).collect();
        let mut oldest_covered_age_ms: BTreeMap<&'static str, i64> = BTreeMap::new();
        for b in self.open_breaks.values() {
            *open_breaks.entry(b.category.name()).or_default() += 1;
            let age = (self.covered_ms - b.opened_covered_ms).max(0);
            let e = oldest_covered_age_ms
                .entry(b.category.name())
                .or_insert(age);
            *e = (*e).max(age);
        }
        let total_breaks = Category::ALL
            .iter()
            .map(|c| (c.name(), self.total_breaks.get(c).copied().unwrap_or(0)))
            .collect();
        let oldest = self
            .open_breaks
            .values()
            .min_by_key(|b| (b.opened_ms, b.id))
            .map(|b| self.view(b, now_ms));
        let oldest_pending = self
            .pending_queue
            .iter()
            .find(|(_, id)| {
                self.entries.get(id).is_some_and(|e| {
                    matches!(e.state, EntryState::Pending) && e.timing_break.is_none()
                })
            })
            .map(|(since, _)| self.covered_ms - since);
        ReconSummary {
            reports: [
                (Stream::Trading.name(), self.reports[0]),
                (Stream::DropCopy.name(), self.reports[1]),
            ]
            .into_iter()
            .collect(),
            matched: self.matched,
            late_matched: self.late_matched,
            pending: self.pending,
            duplicates: self.duplicates,
            poss_dup_duplicates: self.poss_dup_duplicates,
            status_reports: self.status_reports,
            busts_applied: self.busts_applied,
            corrections_applied: self.corrections_applied,
            open_breaks,
            total_breaks,
            open_break_count: self.open_breaks.len() as u64,
            oldest_covered_age_ms,
            oldest_open_break: oldest,
            recent_breaks: self
                .recent
                .iter()
                .rev()
                .map(|b| self.view(b, now_ms))
                .collect(),
            oldest_pending_covered_ms: oldest_pending,
            degraded: !self.covered,
            degraded_reason: if self.covered {
                None
            } else {
                self.degraded_reason.clone()
            },
            degraded_for_ms: self
                .degraded_since_ms
                .map(|s| now_ms.saturating_sub(s).max(0)),
            covered_ms: self.covered_ms,
            last_clean_ms: self.last_clean_ms,
            rejected: self.rejected,
            rejected_by_reason: self.rejected_by_reason.clone(),
            recent_rejections: self.recent_rejections.iter().rev().cloned().collect(),
            last_rejection_ms: self.recent_rejections.back().map(|r| r.at_ms),
            dropcopy_lag_last_ms: self.last_lag_ms,
            dropcopy_lag_max_ms: self.max_lag_ms,
        }
    }

    /// Open breaks, oldest first.
    pub fn open_breaks(&self) -> impl Iterator<Item = &Break> {
        self.open_breaks.values()
    }

    /// Whether this ExecID was busted by an agreed bust.
    pub fn is_busted(&self, exec_id: &str) -> bool {
        self.entries.get(exec_id).is_some_and(|e| e.busted)
    }
}

fn diff(field: &'static str, a: impl fmt::Display, b: impl fmt::Display) -> FieldDiff {
    FieldDiff {
        field,
        left: a.to_string(),
        right: b.to_string(),
    }
}

fn opt(v: Option<Fixed>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Trading vs drop-copy comparison of one execution.
fn pair_diffs(t: &ExecReport, d: &ExecReport, tolerance: Fixed) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    if t.side != d.side {
        diffs.push(diff("side", t.side, d.side));
    }
    if t.symbol != d.symbol {
        diffs.push(diff("symbol", &t.symbol, &d.symbol));
    }
    if t.last_qty != d.last_qty {
        diffs.push(diff("last_qty", t.last_qty, d.last_qty));
    }
    if t.cum_qty != d.cum_qty {
        diffs.push(diff("cum_qty", t.cum_qty, d.cum_qty));
    }
    if t.leaves_qty != d.leaves_qty {
        diffs.push(diff("leaves_qty", t.leaves_qty, d.leaves_qty));
    }
    if t.last_px.abs_diff(d.last_px) > tolerance {
        diffs.push(diff("last_px", t.last_px, d.last_px));
    }
    if let (Some(a), Some(b)) = (t.avg_px, d.avg_px) {
        if a.abs_diff(b) > tolerance {
            diffs.push(diff("avg_px", a, b));
        }
    }
    if t.exec_type != d.exec_type {
        diffs.push(diff("exec_type", t.exec_type, d.exec_type));
    }
    let (ts, ds) = (t.status(), d.status());
    if ts != ds {
        diffs.push(diff("status", ts, ds));
    }
    diffs
}

/// First-seen vs now comparison of two reports with one ExecID on one side.
fn economic_diffs(first: &ExecReport, now: &ExecReport, tolerance: Fixed) -> Vec<FieldDiff> {
    let mut diffs = pair_diffs(first, now, tolerance);
    if first.order_id != now.order_id {
        diffs.push(diff("order_id", &first.order_id, &now.order_id));
    }
    if first.order_qty != now.order_qty {
        diffs.push(diff("order_qty", opt(first.order_qty), opt(now.order_qty)));
    }
    diffs
}

/// The category a set of differences is filed under: attributes first (the execution may
/// not even be the same trade), then quantity, price, status.
fn primary_category(diffs: &[FieldDiff]) -> Category {
    let has = |names: &[&str]| diffs.iter().any(|d| names.contains(&d.field));
    if has(&["side", "symbol"]) {
        Category::AttributeMismatch
    } else if has(&["last_qty", "cum_qty", "leaves_qty"]) {
        Category::QtyMismatch
    } else if has(&["last_px", "avg_px"]) {
        Category::PriceMismatch
    } else {
        Category::StatusMismatch
    }
}

#[cfg(test)]
mod tests;
