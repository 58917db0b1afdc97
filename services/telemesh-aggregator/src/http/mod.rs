//! Owns the aggregator's HTTP API (actix-web): health, metrics, summary and snapshot history.

mod alerts;
mod api;
mod error;
mod export;
mod health;
pub mod openapi;
mod stream;

use std::net::TcpListener;
use std::sync::Arc;

use actix::Addr;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use telemesh_core::config::Secret;
use telemesh_core::transport::Publisher;

pub use error::ApiError;

use crate::actors::alert::AlertActor;
use crate::actors::journal::{JournalActor, JournalHealth};
use crate::actors::summary::SummaryActor;
use crate::alerting::store::AlertStore;
use crate::ingress::SharedIngressStatus;
use crate::journal::Layout;
use crate::metrics::AggregatorMetrics;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub journal: Addr<JournalActor>,
    pub summary: Addr<SummaryActor>,
    pub journal_health: Arc<JournalHealth>,
    pub transport: Arc<dyn Publisher>,
    pub transport_name: &'static str,
    pub ingress: SharedIngressStatus,
    pub metrics: Arc<AggregatorMetrics>,
    pub layout: Layout,
    /// The alert actor and store, when alerting is enabled.
    pub alerts: Option<Addr<AlertActor>>,
    pub alert_store: Option<AlertStore>,
    /// Bearer token of the mutating alert endpoints.
    pub api_token: Secret,
    /// Newly journaled snapshots, for `/api/v1/stream` (the live page, `telemesh tail`).
    pub live: tokio::sync::broadcast::Sender<telemesh_core::Snapshot>,
}

/// Registers every route on an actix-web app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|err, _| ApiError::bad_request("invalid_query", err.to_string()).into()),
    )
    .app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|err, _| ApiError::bad_request("invalid_body", err.to_string()).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|err, _| ApiError::bad_request("invalid_path", err.to_string()).into()),
    )
    .route("/health/live", web::get().to(health::live))
    .route("/health/ready", web::get().to(health::ready))
    .route("/health", web::get().to(health::health))
    .route("/metrics", web::get().to(health::metrics))
    .route("/api/v1/summary", web::get().to(api::summary))
    .route("/api/v1/snapshots/latest", web::get().to(api::latest))
    .route("/api/v1/snapshots", web::get().to(api::snapshots))
    .route("/api/v1/alerts", web::get().to(alerts::list))
    .route("/api/v1/alerts/channels", web::get().to(alerts::channels))
    .route("/api/v1/alerts/{id}", web::get().to(alerts::get))
    .route("/api/v1/alerts/{id}/ack", web::post().to(alerts::ack))
    .route(
        "/api/v1/alerts/{id}/resolve",
        web::post().to(alerts::resolve),
    )
    .route(
        "/api/v1/alerts/{id}/postmortem",
        web::post().to(alerts::postmortem),
    )
    .route("/api/v1/stream", web::get().to(stream::stream))
    .route("/api/v1/history", web::get().to(export::history))
    .route("/api/v1/export/{name}", web::get().to(export::export))
    .route("/api/v1/openapi.json", web::get().to(openapi::serve))
    .route("/", web::get().to(crate::web::index))
    .route("/domains/{kind}", web::get().to(crate::web::domain))
    .route("/static/{file}", web::get().to(crate::web::asset))
    .default_service(web::to(api::not_found));
}

/// Starts the server on an already bound listener (so port 0 works); returns its handle.
pub fn serve(
    listener: TcpListener,
    state: AppState,
) -> std::io::Result<(ServerHandle, actix_web::dev::Server)> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(configure))
        .workers(2)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)?
        .run();
    Ok((server.handle(), server))
}
