//! Owns the small HTTP server of a domain service (`serve kafka-readiness`, …): liveness,
//! readiness (the transport answers), the last snapshot, for Kubernetes probes and people, and
//! `/metrics` (publisher, tracing export and build info; see `docs/metrics.md`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context as _;
use futures::future::BoxFuture;
use telemesh_core::transport::Publisher;
use telemesh_core::Snapshot;

/// Asks the service for its last snapshot.
pub type LastSnapshot = Arc<dyn Fn() -> BoxFuture<'static, Option<Snapshot>> + Send + Sync>;

/// Brings a service's own metric families up to date before a scrape.
pub type Refresh = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone)]
struct State {
    transport: Arc<dyn Publisher>,
    last: LastSnapshot,
    metrics: Arc<prometheus_client::registry::Registry>,
    refresh: Option<Refresh>,
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    if let Some(refresh) = &state.refresh {
        refresh().await;
    }
    HttpResponse::Ok()
        .content_type(telemesh_core::metrics::TEXT_CONTENT_TYPE)
        .body(telemesh_core::metrics::encode_text(&state.metrics))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

async fn ready(state: web::Data<State>) -> HttpResponse {
    match state.transport.check(Duration::from_secs(2)).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "not_ready", "detail": e.to_string() })),
    }
}

async fn snapshot(state: web::Data<State>) -> HttpResponse {
    let last: Option<Snapshot> = (state.last)().await;
    match last {
        Some(s) => HttpResponse::Ok().json(s),
        None => HttpResponse::NotFound().json(
            serde_json::json!({ "error": "not_found", "detail": "no snapshot evaluated yet" }),
        ),
    }
}

/// Starts the server on `addr`; returns its handle (stop it on shutdown).
pub fn start(
    addr: &str,
    transport: Arc<dyn Publisher>,
    last: LastSnapshot,
) -> anyhow::Result<actix_web::dev::ServerHandle> {
    start_with_metrics(addr, transport, last, |_| {}, None)
}

/// Like [`start`], with the service's own metric families (`register`) refreshed before each
/// scrape (`refresh`).
pub fn start_with_metrics(
    addr: &str,
    transport: Arc<dyn Publisher>,
    last: LastSnapshot,
    register: impl FnOnce(&mut prometheus_client::registry::Registry),
    refresh: Option<Refresh>,
) -> anyhow::Result<actix_web::dev::ServerHandle> {
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr}; set [http] addr"))?;
    tracing::info!(http = %listener.local_addr()?, "service endpoints listening");
    let service = telemesh_core::telemetry::identity()
        .map(|i| i.service.as_str())
        .unwrap_or("service");
    let mut registry = telemesh_core::metrics::service_registry(service, env!("CARGO_PKG_VERSION"));
    register(&mut registry);
    let state = web::Data::new(State {
        transport,
        last,
        metrics: Arc::new(registry),
        refresh,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .route("/api/v1/snapshot", web::get().to(snapshot))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(handle)
}
