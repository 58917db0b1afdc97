//! Owns the aggregator's HTTP API (actix-web): health, metrics, summary and snapshot history.

mod activities;
mod api;
mod ci;
mod error;
mod execution;
mod export;
mod health;
pub mod intake;
pub mod openapi;
mod stream;

use std::net::TcpListener;
use std::sync::Arc;

use actix::Addr;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use telemesh_alerting::http::AlertApi;
use telemesh_core::transport::Publisher;

pub use activities::ActivityApi;
pub use error::ApiError;

use crate::actors::journal::{JournalActor, JournalHealth};
use crate::actors::summary::{SummaryActor, SummaryCache};
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
    /// The alert routes' state (telemesh-alerting); empty parts when alerting is disabled.
    pub alert_api: AlertApi,
    /// The summary as last rendered by the summary actor (served from memory).
    pub summary_cache: SummaryCache,
    /// Newly journaled snapshots, for `/api/v1/stream` (the live page, `telemesh tail`).
    pub live: tokio::sync::broadcast::Sender<telemesh_core::Snapshot>,
    pub activities: activities::ActivityApi,
    /// `POST /api/v1/snapshots` (HTTP intake).
    pub intake: Arc<intake::Intake>,
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
    .route(
        "/api/v1/execution/journal",
        web::get().to(execution::journal),
    )
    .route("/api/v1/snapshots", web::post().to(intake::publish))
    .route("/api/v1/ci/tests", web::get().to(ci::tests))
    .route("/api/v1/ci/coverage", web::get().to(ci::coverage))
    .route("/api/v1/ci/runs", web::get().to(ci::runs))
    .configure(telemesh_alerting::http::configure)
    .route(
        "/api/v1/activities/latest",
        web::get().to(activities::latest),
    )
    .route("/api/v1/activities", web::post().to(activities::record))
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
    let alert_api = web::Data::new(state.alert_api.clone());
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(alert_api.clone())
            .configure(configure)
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok((server.handle(), server))
}
