//! Reconciler throughput: execution reports per second on one core, on a mixed stream of
//! acks, partial fills, fills, PossDup replays and breaks (altered prices, fills missing on
//! the drop copy, drop-copy fills we never saw). `cargo bench -p telemesh-fix-pilot`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use telemesh_fix_pilot::codes::{ExecType, OrdStatus, Side};
use telemesh_fix_pilot::{ExecReport, Fixed, ReconPolicy, Reconciler, Stream};

const ORDERS: usize = 25_000;

#[allow(clippy::too_many_arguments)] // one argument per FIX field of the report
fn er(
    order: usize,
    seq: usize,
    et: ExecType,
    os: OrdStatus,
    last: i64,
    cum: i64,
    leaves: i64,
    px: i64,
) -> ExecReport {
    ExecReport {
        exec_id: format!("E{order}-{seq}"),
        order_id: format!("O{order}"),
        cl_ord_id: format!("C{order}"),
        orig_cl_ord_id: None,
        exec_ref_id: None,
        exec_type: et,
        ord_status: os,
        side: if order % 2 == 0 {
            Side::Buy
        } else {
            Side::Sell
        },
        symbol: ["AAPL", "MSFT", "ESZ6", "EURUSD"][order % 4].to_owned(),
        order_qty: Some(Fixed::from_int(300)),
        price: Some(Fixed::from_units(px)),
        last_qty: Fixed::from_int(last),
        last_px: Fixed::from_units(px),
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

/// Per order: ack, two partial fills and a final fill on both sides, with the drop copy a few
/// reports behind; every 20th order's drop-copy fills are replayed with PossDup, every 100th
/// has an altered drop-copy price, every 150th a fill missing on the drop copy, every 200th an
/// extra drop-copy fill.
fn stream() -> Vec<(Stream, ExecReport)> {
    let mut out = Vec::with_capacity(ORDERS * 9);
    let mut lagged: Vec<(Stream, ExecReport)> = Vec::new();
    for o in 0..ORDERS {
        let px = 1_050_000_000 + (o as i64 % 100) * 1_000_000;
        let events = [
            er(o, 0, ExecType::New, OrdStatus::New, 0, 0, 300, px),
            er(
                o,
                1,
                ExecType::Trade,
                OrdStatus::PartiallyFilled,
                100,
                100,
                200,
                px,
            ),
            er(
                o,
                2,
                ExecType::Trade,
                OrdStatus::PartiallyFilled,
                100,
                200,
                100,
                px,
            ),
            er(o, 3, ExecType::Trade, OrdStatus::Filled, 100, 300, 0, px),
        ];
        for (i, e) in events.into_iter().enumerate() {
            out.push((Stream::Trading, e.clone()));
            if o % 150 == 0 && i == 3 {
                continue; // missing on the drop copy
            }
            let mut copy = e;
            if o % 100 == 0 && i == 2 {
                copy.last_px = copy.last_px.saturating_add(Fixed::from_int(1));
            }
            lagged.push((Stream::DropCopy, copy.clone()));
            if o % 20 == 0 && i > 0 {
                copy.poss_dup = true;
                lagged.push((Stream::DropCopy, copy));
            }
        }
        if o % 200 == 0 {
            lagged.push((
                Stream::DropCopy,
                er(o, 9, ExecType::Trade, OrdStatus::Filled, 5, 305, 0, px),
            ));
        }
        if lagged.len() > 16 {
            out.append(&mut lagged);
        }
    }
    out.append(&mut lagged);
    out
}

fn bench(c: &mut Criterion) {
    let input = stream();
    let mut group = c.benchmark_group("reconciler");
    group.throughput(Throughput::Elements(input.len() as u64));
    group.sample_size(20);
    group.bench_function("mixed_stream", |b| {
        b.iter_batched(
            || {
                let mut r = Reconciler::new(ReconPolicy {
                    grace_ms: 5_000,
                    ..ReconPolicy::default()
                });
                r.set_coverage(true, None, 0);
                (r, input.clone())
            },
            |(mut r, reports)| {
                for (i, (stream, report)) in reports.into_iter().enumerate() {
                    let now = i as i64; // one report per millisecond
                    black_box(r.on_report(stream, report, now));
                    if i % 1_000 == 0 {
                        r.tick(now);
                    }
                }
                r.tick(i64::MAX / 2);
                black_box(r.summary(i64::MAX / 2));
                // the day's state is dropped once a day, outside the measurement
                r
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
