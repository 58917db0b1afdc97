//! Owns a domain service's HTTP server: liveness, readiness (the transport answers), the last
//! snapshots, `/metrics`, and the domain's own routes; and the JSON answer to a refused token.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus_client::registry::Registry;
use telemesh_core::auth::Refusal;

use crate::domain::Routes;
use crate::service::{ServiceError, ServiceHandle};

#[derive(Clone)]
struct State {
    service: ServiceHandle,
    metrics: Arc<Registry>,
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

/// Ready when the transport answers within 2 s.
async fn ready(state: web::Data<State>) -> HttpResponse {
    let transport = state.service.publisher().transport();
    match transport.check(Duration::from_secs(2)).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "not_ready", "detail": e.to_string() })),
    }
}

/// The last snapshot of each kind, as a JSON array (empty before the first gather finished).
async fn latest(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.service.latest())
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(telemesh_core::metrics::TEXT_CONTENT_TYPE)
        .body(telemesh_core::metrics::encode_text(&state.metrics))
}

/// Binds `addr` and serves the framework's routes plus `routes`; returns the bound address and
/// the server's handle (stopped by the service's `stop`).
pub(crate) fn serve(
    addr: &str,
    service: ServiceHandle,
    registry: Registry,
    routes: Option<Routes>,
) -> Result<(SocketAddr, actix_web::dev::ServerHandle), ServiceError> {
    let bind_error = |e: std::io::Error| ServiceError::Bind {
        addr: addr.to_owned(),
        detail: e.to_string(),
    };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    tracing::info!(service = service.name(), http = %bound, "service endpoints listening");
    let state = web::Data::new(State {
        service,
        metrics: Arc::new(registry),
    });
    let server = HttpServer::new(move || {
        let app = App::new()
            .app_data(state.clone())
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .route("/api/v1/snapshots/latest", web::get().to(latest))
            .route("/metrics", web::get().to(metrics));
        match &routes {
            Some(routes) => app.configure(|cfg| routes(cfg)),
            None => app,
        }
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok((bound, handle))
}

/// The answer to a request whose bearer token was refused: 401 (with `WWW-Authenticate: Bearer`)
/// or 403, and the JSON `{error, detail}` saying what to send.
pub fn refused(refusal: Refusal) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(refusal.status())
        .unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
    let mut response = HttpResponse::build(status);
    if refusal.challenges() {
        response.insert_header(("www-authenticate", telemesh_core::auth::WWW_AUTHENTICATE));
    }
    response.json(refusal.body())
}
