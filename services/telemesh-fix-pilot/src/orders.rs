//! Owns [`OrderBook`], the order model of our side of the executions: orders we sent and
//! the execution reports of our trading session (or of the platform's own gateway), linked
//! by OrderID, ClOrdID and OrigClOrdID chains, and the [`OrderPosture`] derived from them.

use std::collections::{BTreeMap, HashMap};

use crate::fasthash::FastHash;

use serde::{Deserialize, Serialize};

use crate::codes::{ExecType, Side, Status};
use crate::fixed::Fixed;
use crate::report::ExecReport;

/// A new order we sent (or are about to send) to the venue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOrder {
    pub cl_ord_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_qty: Fixed,
    /// Limit price; `None` for a market order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Fixed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// One order as our side knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// The latest ClOrdID of the chain.
    pub cl_ord_id: String,
    pub order_id: Option<String>,
    pub symbol: String,
    pub side: Side,
    pub order_qty: Fixed,
    pub price: Option<Fixed>,
    pub cum_qty: Fixed,
    pub leaves_qty: Fixed,
    pub avg_px: Option<Fixed>,
    pub last_px: Option<Fixed>,
    pub status: Status,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// When we sent it (`None` for an order we only know from its reports).
    pub sent_ms: Option<i64>,
    /// When the venue's first report for it arrived (ack, reject or fill).
    pub acked_ms: Option<i64>,
    /// When its first fill arrived.
    pub first_fill_ms: Option<i64>,
    /// Why the venue rejected it (Text 58, else `unspecified`).
    pub reject_reason: Option<String>,
}

impl Order {
    /// The price its open quantity is valued at: the limit price, else the last fill price.
    pub fn valuation_price(&self) -> Option<Fixed> {
        self.price.or(self.last_px).or(self.avg_px)
    }

    /// LeavesQty = OrderQty − CumQty must hold while the order works (FIX 4.4, tag 151).
    pub fn is_consistent(&self) -> bool {
        !self.status.is_open()
            || self.order_qty.is_zero()
            || self.leaves_qty == self.order_qty.saturating_sub(self.cum_qty)
    }
}

/// Open quantity and notional of one symbol and side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposure {
    pub symbol: String,
    pub side: String,
    pub open_orders: u64,
    pub open_qty: f64,
    pub open_notional: f64,
}

/// What the `orders` telemetry component shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrderPosture {
    pub total_orders: u64,
    pub open_orders: u64,
    pub open_by_status: BTreeMap<String, u64>,
    pub open_qty: f64,
    pub open_notional: f64,
    pub exposures: Vec<Exposure>,
    pub filled_qty: f64,
    pub rejected_orders: u64,
    /// Open orders whose LeavesQty ≠ OrderQty − CumQty.
    pub inconsistent_orders: u64,
    /// Age of the oldest order waiting for the venue (pending new, cancel or replace), ms.
    pub oldest_pending_ms: Option<i64>,
}

/// Every order of the trading day, indexed by each id it has been known by.
#[derive(Debug, Default)]
pub struct OrderBook {
    orders: Vec<Order>,
    by_order_id: HashMap<String, usize, FastHash>,
    by_cl_ord_id: HashMap<String, usize, FastHash>,
}

impl OrderBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Records an order we sent, status `pending_new` until the venue answers.
    pub fn on_sent(&mut self, order: &NewOrder, now_ms: i64) {
        if self.by_cl_ord_id.contains_key(&order.cl_ord_id) {
            return;
        }
        let index = self.orders.len();
        self.orders.push(Order {
            cl_ord_id: order.cl_ord_id.clone(),
            order_id: None,
            symbol: order.symbol.clone(),
            side: order.side,
            order_qty: order.order_qty,
            price: order.price,
            cum_qty: Fixed::ZERO,
            leaves_qty: order.order_qty,
            avg_px: None,
            last_px: None,
            status: Status::PendingNew,
            created_ms: now_ms,
            updated_ms: now_ms,
            sent_ms: Some(now_ms),
            acked_ms: None,
            first_fill_ms: None,
            reject_reason: None,
        });
        self.by_cl_ord_id.insert(order.cl_ord_id.clone(), index);
    }

    /// Links a cancel or replace request's new ClOrdID to the order of `orig_cl_ord_id` and
    /// marks it pending; false when that order is unknown.
    pub fn on_cancel_sent(&mut self, cl_ord_id: &str, orig_cl_ord_id: &str, now_ms: i64) -> bool {
        let Some(&index) = self.by_cl_ord_id.get(orig_cl_ord_id) else {
            return false;
        };
        self.by_cl_ord_id.insert(cl_ord_id.to_owned(), index);
        let order = &mut self.orders[index];
        if order.status.is_open() {
            order.status = Status::PendingCancel;
            order.updated_ms = now_ms;
        }
        true
    }

    /// The order a report belongs to: by OrderID, then ClOrdID, then OrigClOrdID.
    pub fn find(&self, report: &ExecReport) -> Option<&Order> {
        self.resolve(report).map(|i| &self.orders[i])
    }

    /// The order known by ClOrdID (any of its chain).
    pub fn by_cl_ord_id(&self, cl_ord_id: &str) -> Option<&Order> {
        self.by_cl_ord_id.get(cl_ord_id).map(|&i| &self.orders[i])
    }

    fn resolve(&self, report: &ExecReport) -> Option<usize> {
        let known = |id: &str| !id.is_empty() && id != "NONE";
        if known(&report.order_id) {
            if let Some(&i) = self.by_order_id.get(&report.order_id) {
                return Some(i);
            }
        }
        if !report.cl_ord_id.is_empty() {
            if let Some(&i) = self.by_cl_ord_id.get(&report.cl_ord_id) {
                return Some(i);
            }
        }
        report
            .orig_cl_ord_id
            .as_deref()
            .and_then(|orig| self.by_cl_ord_id.get(orig).copied())
    }

    /// Applies one (deduplicated) execution report of our side: links its ids to the order
    /// (creating it if we never sent it) and takes its state unless it is older than what we
    /// have (a lower CumQty on a non-correcting report).
    pub fn apply(&mut self, report: &ExecReport, now_ms: i64) {
        let index = match self.resolve(report) {
            Some(i) => i,
            None => {
                let index = self.orders.len();
                self.orders.push(Order {
                    cl_ord_id: report.cl_ord_id.clone(),
                    order_id: None,
                    symbol: report.symbol.clone(),
                    side: report.side,
                    order_qty: report
                        .order_qty
                        .unwrap_or(report.cum_qty.saturating_add(report.leaves_qty)),
                    price: report.price,
                    cum_qty: Fixed::ZERO,
                    leaves_qty: Fixed::ZERO,
                    avg_px: None,
                    last_px: None,
                    status: Status::PendingNew,
                    created_ms: now_ms,
                    updated_ms: now_ms,
                    sent_ms: None,
                    acked_ms: None,
                    first_fill_ms: None,
                    reject_reason: None,
                });
                index
            }
        };
        let known = |id: &str| !id.is_empty() && id != "NONE";
        if known(&report.order_id) && !self.by_order_id.contains_key(&report.order_id) {
            self.by_order_id.insert(report.order_id.clone(), index);
        }
        if !report.cl_ord_id.is_empty() && !self.by_cl_ord_id.contains_key(&report.cl_ord_id) {
            self.by_cl_ord_id.insert(report.cl_ord_id.clone(), index);
        }
        if let Some(orig) = &report.orig_cl_ord_id {
            if !self.by_cl_ord_id.contains_key(orig) {
                self.by_cl_ord_id.insert(orig.clone(), index);
            }
        }
        let order = &mut self.orders[index];
        if known(&report.order_id) && order.order_id.as_deref() != Some(report.order_id.as_str()) {
            order.order_id = Some(report.order_id.clone());
        }
        order.acked_ms.get_or_insert(now_ms);
        if matches!(report.exec_type, ExecType::Trade) && !report.last_qty.is_zero() {
            order.first_fill_ms.get_or_insert(now_ms);
        }
        let corrects = matches!(
            report.exec_type,
            ExecType::TradeCancel
                | ExecType::TradeCorrect
                | ExecType::Restated
                | ExecType::OrderStatus
        );
        if report.cum_qty < order.cum_qty && !corrects {
            return; // stale: an older report arriving late
        }
        if matches!(report.exec_type, ExecType::Replaced)
            && !report.cl_ord_id.is_empty()
            && order.cl_ord_id != report.cl_ord_id
        {
            order.cl_ord_id = report.cl_ord_id.clone();
        }
        if let Some(qty) = report.order_qty {
            order.order_qty = qty;
        }
        if report.price.is_some() {
            order.price = report.price;
        }
        order.cum_qty = report.cum_qty;
        order.leaves_qty = report.leaves_qty;
        if report.avg_px.is_some() {
            order.avg_px = report.avg_px;
        }
        if !report.last_qty.is_zero() {
            order.last_px = Some(report.last_px);
        }
        order.status = report.status();
        order.updated_ms = now_ms;
        if order.status == Status::Rejected && order.reject_reason.is_none() {
            order.reject_reason = Some(
                report
                    .text
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .unwrap_or("unspecified")
                    .to_owned(),
            );
        }
    }

    /// Every order of the trading day, in the order we learnt of them.
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    /// Forgets every order that can no longer trade (start of a new trading day).
    pub fn prune_closed(&mut self) {
        self.orders.retain(|o| o.status.is_open());
        self.by_order_id.clear();
        self.by_cl_ord_id.clear();
        for (i, o) in self.orders.iter().enumerate() {
            self.by_cl_ord_id.insert(o.cl_ord_id.clone(), i);
            if let Some(id) = &o.order_id {
                self.by_order_id.insert(id.clone(), i);
            }
        }
    }

    /// The open orders, open quantity and notional, per status and per symbol and side.
    pub fn posture(&self, now_ms: i64) -> OrderPosture {
        let mut p = OrderPosture {
            total_orders: self.orders.len() as u64,
            ..OrderPosture::default()
        };
        let mut exposures: BTreeMap<(String, &'static str), Exposure> = BTreeMap::new();
        for o in &self.orders {
            p.filled_qty += o.cum_qty.to_f64();
            if o.status == Status::Rejected {
                p.rejected_orders += 1;
            }
            if !o.status.is_open() {
                continue;
            }
            p.open_orders += 1;
            *p.open_by_status
                .entry(o.status.name().to_owned())
                .or_default() += 1;
            let qty = o.leaves_qty.to_f64();
            let notional = o
                .valuation_price()
                .map_or(0.0, |px| o.leaves_qty.mul_f64(px));
            p.open_qty += qty;
            p.open_notional += notional;
            let e = exposures
                .entry((o.symbol.clone(), o.side.name()))
                .or_insert_with(|| Exposure {
                    symbol: o.symbol.clone(),
                    side: o.side.name().to_owned(),
                    open_orders: 0,
                    open_qty: 0.0,
                    open_notional: 0.0,
                });
            e.open_orders += 1;
            e.open_qty += qty;
            e.open_notional += notional;
            if !o.is_consistent() {
                p.inconsistent_orders += 1;
            }
            if matches!(
                o.status,
                Status::PendingNew | Status::PendingCancel | Status::PendingReplace
            ) {
                let age = now_ms.saturating_sub(o.updated_ms);
                p.oldest_pending_ms = Some(p.oldest_pending_ms.map_or(age, |a| a.max(age)));
            }
        }
        p.exposures = exposures.into_values().collect();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::OrdStatus;

    fn new_order(cl: &str, qty: i64, px: &str) -> NewOrder {
        NewOrder {
            cl_ord_id: cl.into(),
            symbol: "AAPL".into(),
            side: Side::Buy,
            order_qty: Fixed::from_int(qty),
            price: Some(Fixed::parse(px).unwrap()),
            account: None,
        }
    }

    pub(crate) fn er(
        cl: &str,
        oid: &str,
        et: ExecType,
        os: OrdStatus,
        last: i64,
        cum: i64,
        leaves: i64,
    ) -> ExecReport {
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
            order_qty: Some(Fixed::from_int(cum + leaves)),
            price: Some(Fixed::parse("10").unwrap()),
            last_qty: Fixed::from_int(last),
            last_px: Fixed::parse("10").unwrap(),
            cum_qty: Fixed::from_int(cum),
            leaves_qty: Fixed::from_int(leaves),
            avg_px: None,
            poss_dup: false,
            poss_resend: false,
            account: None,
            source: None,
            transact_time: None,
            text: None,
        }
    }

    #[test]
    fn sent_orders_are_pending_until_acked_then_follow_their_reports() {
        let mut book = OrderBook::new();
        book.on_sent(&new_order("C1", 100, "10"), 0);
        let p = book.posture(5_000);
        assert_eq!(p.open_by_status.get("pending_new"), Some(&1));
        assert_eq!(p.oldest_pending_ms, Some(5_000));
        assert_eq!(p.open_notional, 1000.0);
        book.apply(
            &er("C1", "O1", ExecType::New, OrdStatus::New, 0, 0, 100),
            10,
        );
        book.apply(
            &er(
                "C1",
                "O1",
                ExecType::Trade,
                OrdStatus::PartiallyFilled,
                40,
                40,
                60,
            ),
            20,
        );
        let p = book.posture(30);
        assert_eq!(p.open_by_status.get("partially_filled"), Some(&1));
        assert_eq!(p.open_qty, 60.0);
        assert_eq!(p.filled_qty, 40.0);
        assert_eq!(p.oldest_pending_ms, None);
        // a late, older report does not move the order back
        book.apply(
            &er("C1", "O1", ExecType::New, OrdStatus::New, 0, 0, 100),
            40,
        );
        assert_eq!(book.posture(50).open_qty, 60.0);
        book.apply(
            &er("C1", "O1", ExecType::Trade, OrdStatus::Filled, 60, 100, 0),
            60,
        );
        let p = book.posture(70);
        assert_eq!(p.open_orders, 0);
        assert_eq!(p.total_orders, 1);
    }

    #[test]
    fn cancel_chains_link_through_orig_cl_ord_id() {
        let mut book = OrderBook::new();
        book.on_sent(&new_order("C1", 100, "10"), 0);
        book.apply(&er("C1", "O1", ExecType::New, OrdStatus::New, 0, 0, 100), 1);
        assert!(book.on_cancel_sent("C2", "C1", 2));
        assert_eq!(
            book.by_cl_ord_id("C2").unwrap().status,
            Status::PendingCancel
        );
        assert!(!book.on_cancel_sent("C9", "nope", 2));
        // the venue answers on the new ClOrdID with OrigClOrdID and no OrderID
        let mut cancel = er("C2", "", ExecType::Canceled, OrdStatus::Canceled, 0, 0, 0);
        cancel.orig_cl_ord_id = Some("C1".into());
        book.apply(&cancel, 3);
        assert_eq!(book.len(), 1);
        assert_eq!(book.by_cl_ord_id("C1").unwrap().status, Status::Canceled);
        assert_eq!(book.posture(4).open_orders, 0);
        book.prune_closed();
        assert!(book.is_empty());
    }

    #[test]
    fn unknown_orders_are_adopted_and_inconsistency_is_counted() {
        let mut book = OrderBook::new();
        let mut r = er(
            "X1",
            "O9",
            ExecType::Trade,
            OrdStatus::PartiallyFilled,
            10,
            10,
            80,
        );
        r.order_qty = Some(Fixed::from_int(100));
        book.apply(&r, 0);
        let p = book.posture(1);
        assert_eq!(p.open_orders, 1);
        assert_eq!(p.inconsistent_orders, 1, "leaves 80 != 100 - 10");
        assert!(book.find(&r).is_some());
    }
}
