//! Tracing in process, against a real OTLP/gRPC receiver and the real broker and database:
//! the in-process bus of standalone mode carries the same trace context as Kafka; and an absent
//! or hanging collector neither stops nor slows the mesh (the same publish → journal workload
//! timed with tracing off, exporting to a live receiver, to a hanging one and to a closed
//! port), while the spans it could not export are counted.
//!
//! The subscriber is installed per thread (`tracing::dispatcher::set_default`): the test's
//! actix system, the aggregator's actors and its ingress loop all run on this thread. Own test
//! binary, one test: `tracing` caches callsite interest process-wide, so aggregators running
//! on other test threads without a subscriber would make spans vanish from this one.

#[actix_rt::test]
async fn tracing_follows_snapshots_and_never_slows_the_mesh() {
    the_in_process_bus_carries_the_same_trace_as_kafka().await;
    an_absent_or_hanging_collector_does_not_slow_the_mesh_and_drops_are_counted().await;
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use telemesh_aggregator::{subscribed_topics, Aggregator, TransportParts};
use telemesh_core::config::{LogSettings, TracingSettings};
use telemesh_core::metrics::TracingStats;
use telemesh_core::telemetry::{self, Identity, Telemetry};
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, pg_journal, snapshot, wait_for_rows, KafkaTestbed,
};
use telemesh_integration_tests::{namespace, TestEnv};
use tracing::Instrument;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

fn tracing_to(endpoint: &str, max_queue_size: usize) -> (tracing::Dispatch, Telemetry) {
    let settings = TracingSettings {
        enabled: true,
        endpoint: endpoint.to_owned(),
        max_queue_size,
        export_timeout_ms: 1000,
        ..TracingSettings::default()
    };
    let log = LogSettings {
        level: "warn".into(),
        ..LogSettings::default()
    };
    telemetry::build(
        &log,
        &settings,
        &Identity::new("test", "it", "0"),
        TracingStats::default(),
        BoxMakeWriter::new(std::io::stderr),
    )
    .expect("tracing pipeline")
}

async fn collect(
    collector: &mut FakeCollectorServer,
    timeout: Duration,
    done: impl Fn(&[ExportedSpan]) -> bool,
) -> Vec<ExportedSpan> {
    let deadline = Instant::now() + timeout;
    let mut spans = Vec::new();
    while !done(&spans) {
        assert!(
            Instant::now() < deadline,
            "spans missing; got {:?}",
            spans
                .iter()
                .map(|s: &ExportedSpan| &s.name)
                .collect::<Vec<_>>()
        );
        spans.extend(
            collector
                .exported_spans(1, Duration::from_millis(300))
                .await,
        );
    }
    spans
}

async fn the_in_process_bus_carries_the_same_trace_as_kafka() {
    let env = TestEnv::get();
    let ns = namespace();
    let db = env.fresh_database(&ns).await;
    let mut collector = FakeCollectorServer::start().await.expect("otlp receiver");
    let (dispatch, _telemetry) = tracing_to(&collector.endpoint(), 1024);
    let _guard = tracing::dispatcher::set_default(&dispatch);

    let bus = InProcessBus::new(16, subscribed_topics(""));
    let aggregator = Aggregator::start(
        &aggregator_settings(),
        "127.0.0.1:0",
        "",
        pg_journal(&db).await,
        TransportParts::in_process(bus.subscriber().unwrap(), bus.publisher()),
    )
    .await
    .unwrap();
    let publisher = SnapshotPublisher::new(bus.publisher(), Encoding::Json, "");
    let s = snapshot(topics::KAFKA_READINESS, "kafka-readiness", "it", Grade::Ok);
    let root = tracing::info_span!(target: "telemesh_test", "evaluate");
    publisher
        .publish(&s)
        .instrument(root.clone())
        .await
        .unwrap();
    drop(root);
    wait_for_rows(&db, 1, Duration::from_secs(30)).await;

    let topic = topics::KAFKA_READINESS;
    let spans = collect(&mut collector, Duration::from_secs(30), |spans| {
        ["evaluate", "journal.append", "summary.update"]
            .iter()
            .map(|n| n.to_string())
            .chain([format!("send {topic}"), format!("process {topic}")])
            .all(|n| spans.iter().any(|s| s.name == n))
    })
    .await;
    let find = |name: &str| spans.iter().find(|s| s.name == name).unwrap();
    let root = find("evaluate");
    let send = find(&format!("send {topic}"));
    let process = find(&format!("process {topic}"));
    for span in [
        send,
        process,
        find("journal.append"),
        find("summary.update"),
    ] {
        assert_eq!(span.trace_id, root.trace_id, "{}", span.name);
    }
    assert_eq!(process.parent_span_id, send.span_id);
    assert!(process.attributes["messaging.system"].contains("telemesh_inproc"));
    assert!(process.attributes["telemesh.dispatch_lag_seconds"].contains("DoubleValue"));
    assert!(process.attributes.contains_key("telemesh.bus.backlog"));
    aggregator.stop().await;
}

/// Publishes `n` snapshots one after another and waits until the journal holds `rows` rows;
/// returns the elapsed time.
async fn workload(bed: &KafkaTestbed, n: usize, rows: i64) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        let s = snapshot(
            topics::KAFKA_READINESS,
            "kafka-readiness",
            &format!("w{i}"),
            Grade::Ok,
        );
        let root = tracing::info_span!(target: "telemesh_test", "evaluate");
        bed.publisher
            .publish(&s)
            .instrument(root)
            .await
            .expect("publish");
    }
    bed.wait_for_rows(rows, Duration::from_secs(120)).await;
    started.elapsed()
}

async fn an_absent_or_hanging_collector_does_not_slow_the_mesh_and_drops_are_counted() {
    const N: usize = 100;
    let bed = KafkaTestbed::start(1, &aggregator_settings(), Encoding::Bincode).await;
    // warm-up: group joined, connections open
    let _ = workload(&bed, 5, 5).await;
    let mut rows = 5;

    rows += N as i64;
    let off = workload(&bed, N, rows).await;

    let mut collector = FakeCollectorServer::start().await.expect("otlp receiver");
    let (dispatch, live_telemetry) = tracing_to(&collector.endpoint(), 2048);
    rows += N as i64;
    let live = {
        let _guard = tracing::dispatcher::set_default(&dispatch);
        workload(&bed, N, rows).await
    };
    let exported = collect(&mut collector, Duration::from_secs(30), |spans| {
        spans
            .iter()
            .filter(|s| s.name.starts_with("process "))
            .count()
            >= N
    })
    .await;
    assert!(exported.len() >= 3 * N, "{} spans", exported.len());

    // accepts connections (kernel backlog) but never answers
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (dispatch, hanging_telemetry) =
        tracing_to(&format!("http://{}", hanging.local_addr().unwrap()), 16);
    rows += N as i64;
    let hung = {
        let _guard = tracing::dispatcher::set_default(&dispatch);
        workload(&bed, N, rows).await
    };

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (dispatch, closed_telemetry) = tracing_to(&format!("http://{closed_port}"), 16);
    rows += N as i64;
    let closed = {
        let _guard = tracing::dispatcher::set_default(&dispatch);
        workload(&bed, N, rows).await
    };

    let ratio = |d: Duration| d.as_secs_f64() / off.as_secs_f64();
    println!(
        "tracing overhead, {N} snapshots publish → journal over Kafka: off {off:?}; \
         live receiver {live:?} (x{:.2}); hanging collector {hung:?} (x{:.2}); \
         closed port {closed:?} (x{:.2}); dropped: hanging {}, closed {}",
        ratio(live),
        ratio(hung),
        ratio(closed),
        hanging_telemetry.stats().dropped.get(),
        closed_telemetry.stats().dropped.get(),
    );
    assert_eq!(live_telemetry.stats().dropped.get(), 0);
    // a shared, noisy machine: only a generous bound
    for (what, d) in [("live", live), ("hanging", hung), ("closed", closed)] {
        assert!(
            ratio(d) < 5.0,
            "{what} took {d:?} vs {off:?} with tracing off"
        );
    }
    // the dropped count is exact only once the export thread gave up on what it held
    let deadline = Instant::now() + Duration::from_secs(10);
    while hanging_telemetry.stats().dropped.get() == 0
        || closed_telemetry.stats().dropped.get() == 0
    {
        assert!(Instant::now() < deadline, "dropped spans not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(hanging);
    let aggregator = Arc::new(bed.aggregator);
    if let Ok(aggregator) = Arc::try_unwrap(aggregator) {
        aggregator.stop().await;
    }
}
