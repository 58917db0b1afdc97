//! The framework's own tests: a test-only domain (one struct, one `impl Domain`) run through the
//! generic service on port 0 — timer, gather timeout, not-configured block, extra routes, HTTP,
//! run-now, stop with departed snapshots.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use telemesh_core::transport::DEPARTED_METRIC;
use telemesh_core::{Grade, Snapshot};
use telemesh_service::testing::TestService;
use telemesh_service::{Domain, Evaluation, NotConfigured, Routes, ServiceHandle};

const KIND: &str = "telemetry.test.counter";

/// Counts its gathers; grades `warn` from `warn_from` on; can be made slow or unconfigured.
struct Counter {
    gathers: Arc<AtomicU32>,
    warn_from: u32,
    gather_delay: Duration,
    configured: bool,
}

impl Counter {
    fn new() -> Self {
        Self {
            gathers: Arc::default(),
            warn_from: u32::MAX,
            gather_delay: Duration::ZERO,
            configured: true,
        }
    }
}

impl Domain for Counter {
    type State = u32;

    fn name(&self) -> &'static str {
        "counter"
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec![KIND]
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(3600)
    }

    fn gather_timeout(&self) -> Duration {
        Duration::from_millis(200)
    }

    fn not_configured(&self) -> Option<NotConfigured> {
        (!self.configured).then(|| NotConfigured::new("counter.target", "what to count"))
    }

    async fn gather(&mut self) -> u32 {
        tokio::time::sleep(self.gather_delay).await;
        self.gathers.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn evaluate(&self, state: &u32, at: &Evaluation) -> Vec<Snapshot> {
        let mut snapshot = Snapshot::new(KIND, at.source.clone(), at.now);
        snapshot.status = if *state >= self.warn_from {
            Grade::Warn
        } else {
            Grade::Ok
        };
        snapshot.summary = format!("gathered {state} times");
        snapshot.metric("gathers", f64::from(*state));
        vec![snapshot]
    }

    fn routes(&self, service: &ServiceHandle) -> Option<Routes> {
        let service = service.clone();
        Some(Arc::new(move |cfg: &mut web::ServiceConfig| {
            let service = service.clone();
            cfg.route(
                "/api/v1/counter/bump",
                web::post().to(move || {
                    let service = service.clone();
                    async move { HttpResponse::Accepted().json(service.run_now().await) }
                }),
            );
        }))
    }
}

async fn latest(svc: &TestService) -> Vec<Snapshot> {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let answer: Vec<Snapshot> = client
            .get(svc.url("/api/v1/snapshots/latest"))
            .send()
            .await
            .expect("service answers")
            .json()
            .await
            .expect("a JSON array");
        if !answer.is_empty() {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no snapshot within 2 s");
}

#[actix::test]
async fn a_domain_is_gathered_at_start_published_and_served() {
    let svc = TestService::start(Counter::new()).expect("service starts");
    let first = latest(&svc).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, KIND);
    assert_eq!(first[0].source.service, "counter");
    assert_eq!(first[0].source.instance, "test");
    assert_eq!(first[0].metrics["gathers"], 1.0);
    let published = svc.wait_published(KIND, 1, Duration::from_secs(2)).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].id, first[0].id);

    let client = reqwest::Client::new();
    let live = client.get(svc.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = client.get(svc.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = client
        .get(svc.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("telemesh_domain_gathers_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("telemesh_build_info"), "{metrics}");
}

#[actix::test]
async fn the_domains_own_route_runs_it_now_and_answers_after_publishing() {
    let svc = TestService::start(Counter {
        warn_from: 2,
        ..Counter::new()
    })
    .expect("service starts");
    latest(&svc).await;
    let bumped: Vec<Snapshot> = reqwest::Client::new()
        .post(svc.url("/api/v1/counter/bump"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bumped.len(), 1);
    assert_eq!(bumped[0].status, Grade::Warn);
    assert_eq!(bumped[0].metrics["gathers"], 2.0);
    // answered after publishing: the bus already holds it
    let published = svc.published(KIND);
    assert_eq!(published.last().map(|s| s.id), Some(bumped[0].id));
    assert_eq!(
        svc.service.handle().latest_of(KIND).map(|s| s.id),
        Some(bumped[0].id)
    );
}

#[actix::test]
async fn a_gather_that_overruns_its_timeout_is_graded_fail() {
    let svc = TestService::start(Counter {
        gather_delay: Duration::from_secs(5),
        ..Counter::new()
    })
    .expect("service starts");
    let snapshot = latest(&svc).await.remove(0);
    assert_eq!(snapshot.status, Grade::Fail);
    assert!(
        snapshot.summary.contains("within 0.2 s"),
        "{}",
        snapshot.summary
    );
    assert_eq!(snapshot.components[0].name, "gather");
}

#[actix::test]
async fn an_unconfigured_domain_is_a_graded_block_naming_the_setting() {
    let counter = Counter {
        configured: false,
        ..Counter::new()
    };
    let gathers = Arc::clone(&counter.gathers);
    let svc = TestService::start(counter).expect("service starts");
    let snapshot = latest(&svc).await.remove(0);
    assert_eq!(snapshot.status, Grade::Warn);
    assert!(
        snapshot.summary.contains("counter.target"),
        "{}",
        snapshot.summary
    );
    assert!(
        snapshot.summary.contains("TELEMESH__COUNTER__TARGET"),
        "{}",
        snapshot.summary
    );
    assert!(snapshot.markdown.contains("counter.target"));
    assert_eq!(gathers.load(Ordering::SeqCst), 0, "never gathers");
}

#[actix::test]
async fn ticks_never_overlap_and_stop_waits_for_the_gather_then_departs() {
    let counter = Counter {
        gather_delay: Duration::from_millis(150),
        ..Counter::new()
    };
    let gathers = Arc::clone(&counter.gathers);
    let svc = TestService::start(counter).expect("service starts");
    // five concurrent run-nows queue behind each other and the start gather
    let handle = svc.service.handle().clone();
    let runs = futures::future::join_all((0..5).map(|_| {
        let handle = handle.clone();
        async move { handle.run_now().await }
    }))
    .await;
    let mut counts: Vec<f64> = runs.iter().map(|r| r[0].metrics["gathers"]).collect();
    counts.sort_by(f64::total_cmp);
    counts.dedup();
    assert_eq!(counts.len(), 5, "each run is its own gather: {counts:?}");
    let before = gathers.load(Ordering::SeqCst);
    let TestService { service, bus, .. } = svc;
    service.stop(true).await;
    assert_eq!(gathers.load(Ordering::SeqCst), before);
    let departed: Vec<Snapshot> = bus
        .retained(KIND)
        .iter()
        .filter_map(|m| {
            telemesh_core::codec::decode(
                m.header(telemesh_core::codec::CONTENT_TYPE_HEADER),
                &m.payload,
            )
            .ok()
        })
        .filter(|s| s.metrics.contains_key(DEPARTED_METRIC))
        .collect();
    assert_eq!(departed.len(), 1);
}
