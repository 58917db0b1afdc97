//! Execution readiness cost per tick: deriving the state from a full trading day's order book
//! (100 000 orders: fills, rejections under three reasons, pending) and grading it, as the
//! pilot does every `interval_seconds`. `cargo bench -p telemesh-fix-pilot --bench execution`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use telemesh_fix_pilot::codes::{ExecType, OrdStatus, Side};
use telemesh_fix_pilot::execution::{evaluate_execution, ExecutionPolicy, ExecutionState};
use telemesh_fix_pilot::orders::{NewOrder, OrderBook};
use telemesh_fix_pilot::settings::ExecutionsSource;
use telemesh_fix_pilot::state::{PilotState, QueueState, SessionState, SessionStatus};
use telemesh_fix_pilot::{ExecReport, Fixed};

const ORDERS: usize = 100_000;

fn report(i: usize, et: ExecType, os: OrdStatus, cum: i64, text: Option<String>) -> ExecReport {
    ExecReport {
        exec_id: format!("E{i}-{}", et.code()),
        order_id: format!("O{i}"),
        cl_ord_id: format!("C{i}"),
        orig_cl_ord_id: None,
        exec_ref_id: None,
        exec_type: et,
        ord_status: os,
        side: Side::Buy,
        symbol: "AAPL".into(),
        order_qty: Some(Fixed::from_int(100)),
        price: Some(Fixed::from_int(10)),
        last_qty: Fixed::from_int(cum),
        last_px: Fixed::from_int(10),
        cum_qty: Fixed::from_int(cum),
        leaves_qty: Fixed::from_int(100 - cum),
        avg_px: None,
        poss_dup: false,
        poss_resend: false,
        account: None,
        source: None,
        transact_time: None,
        text,
    }
}

fn book() -> OrderBook {
    let mut book = OrderBook::new();
    for i in 0..ORDERS {
        let t = i as i64 * 100;
        book.on_sent(
            &NewOrder {
                cl_ord_id: format!("C{i}"),
                symbol: "AAPL".into(),
                side: Side::Buy,
                order_qty: Fixed::from_int(100),
                price: Some(Fixed::from_int(10)),
                account: None,
            },
            t,
        );
        match i % 50 {
            0 => {} // pending
            1..=3 => book.apply(
                &report(
                    i,
                    ExecType::Rejected,
                    OrdStatus::Rejected,
                    0,
                    Some(["risk limit", "price band", "halted"][i % 3].into()),
                ),
                t + 7,
            ),
            _ => {
                book.apply(&report(i, ExecType::New, OrdStatus::New, 0, None), t + 5);
                book.apply(
                    &report(i, ExecType::Trade, OrdStatus::Filled, 100, None),
                    t + 20,
                );
            }
        }
    }
    book
}

fn pilot() -> PilotState {
    let session = SessionState {
        configured: true,
        status: SessionStatus::Active,
        ..SessionState::default()
    };
    PilotState {
        executions_source: ExecutionsSource::Fix,
        trading: session.clone(),
        dropcopy: session,
        queues: QueueState::default(),
        orders: Default::default(),
        recon: None,
        execution: None,
    }
}

fn bench(c: &mut Criterion) {
    let book = book();
    let pilot = pilot();
    let policy = ExecutionPolicy::default();
    let now_ms = ORDERS as i64 * 100;
    let mut group = c.benchmark_group("execution_readiness");
    group.throughput(Throughput::Elements(ORDERS as u64));
    group.bench_function("derive_and_evaluate_100k_orders", |b| {
        b.iter(|| {
            let state = ExecutionState::derive(black_box(&book), &pilot, &policy, now_ms);
            black_box(evaluate_execution(
                &policy,
                &state,
                telemesh_core::Source::new("fix-pilot", "bench"),
                chrono::Utc::now(),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
