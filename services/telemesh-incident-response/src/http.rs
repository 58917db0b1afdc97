//! Owns the incident-response HTTP endpoints: `GET /api/v1/gate` (may we deploy?),
//! `GET /api/v1/snapshot`, `POST /api/v1/activities` (record a drill or training session;
//! needs `Authorization: Bearer <incident_response.api_token>`, checked before the body is
//! read, and is disabled while no token is configured), `/health/live` and `/health/ready`.
//! Errors are JSON `{error, detail}` (plus `field` for a rejected activity); a client never
//! gets a 500 for what it sent.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Utc;
use serde_json::json;
use telemesh_core::auth;
use telemesh_core::config::Secret;
use telemesh_core::transport::Publisher;

use crate::activity::{self, ActivityError};
use crate::service::{
    EvaluateNow, GetGate, GetLastSnapshot, IncidentResponseService, RecordActivity,
};

/// The gate a deploy pipeline asks.
pub const GATE_PATH: &str = "/api/v1/gate";
/// The last snapshot.
pub const SNAPSHOT_PATH: &str = "/api/v1/snapshot";
/// Where drills and training sessions are recorded.
pub const ACTIVITIES_PATH: &str = "/api/v1/activities";
/// The largest accepted activity body.
pub const MAX_ACTIVITY_BYTES: usize = 16 * 1024;
/// The setting holding the token of the activities endpoint.
pub const TOKEN_SETTING: &str = "incident_response.api_token";

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({source}): set [http] addr to a free address")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone)]
struct HttpState {
    service: Addr<IncidentResponseService>,
    transport: Option<Arc<dyn Publisher>>,
    api_token: Secret,
}

/// Starts the HTTP server on `addr` (port 0 picks a free port) and returns the bound address
/// and the handle to stop it. `transport`, when given, is checked by `/health/ready`;
/// `api_token` guards `POST /api/v1/activities` (empty disables it). Must run inside an actix
/// system.
pub fn serve_http(
    addr: &str,
    service: Addr<IncidentResponseService>,
    transport: Option<Arc<dyn Publisher>>,
    api_token: Secret,
) -> Result<(SocketAddr, ServerHandle), ServeError> {
    let bind_err = |source| ServeError::Bind {
        addr: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let state = web::Data::new(HttpState {
        service,
        transport,
        api_token,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_ACTIVITY_BYTES))
            .configure(routes)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)
    .map_err(bind_err)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    tracing::info!(http = %local, "incident-response endpoints listening (GET {GATE_PATH})");
    Ok((local, handle))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(GATE_PATH, web::get().to(gate))
        .route(SNAPSHOT_PATH, web::get().to(snapshot))
        .route(ACTIVITIES_PATH, web::post().to(record_activity))
        .route("/health/live", web::get().to(live))
        .route("/metrics", web::get().to(metrics))
        .route("/health/ready", web::get().to(ready))
        .default_service(web::to(not_found));
}

fn error(
    status: actix_web::http::StatusCode,
    error: &str,
    detail: impl Into<String>,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error, "detail": detail.into() }))
}

fn unavailable() -> HttpResponse {
    error(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the incident-response service is stopping; retry against another instance",
    )
}

async fn gate(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    if !req.query_string().is_empty() {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{GATE_PATH} takes no query parameters; call it as GET {GATE_PATH}"),
        );
    }
    let Ok(gate) = state.service.send(GetGate).await else {
        return unavailable();
    };
    if gate.metadata.snapshot_status.is_none() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(gate);
    }
    HttpResponse::Ok().json(gate)
}

async fn snapshot(state: web::Data<HttpState>) -> HttpResponse {
    match state.service.send(GetLastSnapshot).await {
        Ok(Some(s)) => HttpResponse::Ok().json(s),
        Ok(None) => error(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "no snapshot evaluated yet; retry in a few seconds",
        ),
        Err(_) => unavailable(),
    }
}

fn refused(refusal: auth::Refusal) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(refusal.status())
        .unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
    let mut response = HttpResponse::build(status);
    if refusal.challenges() {
        response.insert_header(("www-authenticate", auth::WWW_AUTHENTICATE));
    }
    response.json(refusal.body())
}

async fn record_activity(
    req: HttpRequest,
    state: web::Data<HttpState>,
    payload: web::Payload,
) -> HttpResponse {
    // the token first: an unauthenticated body is never read, let alone parsed
    let header = req.headers().get("authorization").map(|v| v.as_bytes());
    if let Err(refusal) = auth::check_bearer(header, &state.api_token, TOKEN_SETTING) {
        return refused(refusal);
    }
    let body = match payload.to_bytes_limited(MAX_ACTIVITY_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("cannot read the request body: {e}; send it again"),
            )
        }
        Err(_) => {
            return error(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("an activity is at most {MAX_ACTIVITY_BYTES} bytes of JSON"),
            )
        }
    };
    let activity = match activity::validate(&body, Utc::now()) {
        Ok(a) => a,
        Err(e) => {
            return HttpResponse::BadRequest().json(json!({
                "error": "invalid_activity",
                "field": e.field,
                "detail": format!("{} {}", e.field, e.detail),
            }))
        }
    };
    match state.service.send(RecordActivity(activity.clone())).await {
        Ok(Ok(())) => {}
        Ok(Err(e @ ActivityError::Write { .. })) => {
            return error(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "activity_log_unwritable",
                e.to_string(),
            )
        }
        Ok(Err(e @ ActivityError::Aggregator { .. })) => {
            return error(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "activity_not_recorded",
                e.to_string(),
            )
        }
        Ok(Err(e)) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_activity",
                e.to_string(),
            )
        }
        Err(_) => return unavailable(),
    }
    let (Ok(snapshot), Ok(gate)) = (
        state.service.send(EvaluateNow).await,
        state.service.send(GetGate).await,
    ) else {
        return unavailable();
    };
    HttpResponse::Created().json(json!({
        "recorded": activity,
        "snapshot_status": snapshot.status,
        "gate_status": gate.status,
    }))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

async fn ready(state: web::Data<HttpState>) -> HttpResponse {
    if !matches!(state.service.send(GetLastSnapshot).await, Ok(Some(_))) {
        return HttpResponse::ServiceUnavailable().json(json!({
            "status": "not_ready",
            "detail": "no snapshot evaluated yet",
        }));
    }
    if let Some(transport) = &state.transport {
        if let Err(e) = transport.check(CHECK_TIMEOUT).await {
            return HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "not_ready", "detail": e.to_string() }));
        }
    }
    HttpResponse::Ok().json(json!({ "status": "ready" }))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {} {}; try GET {GATE_PATH}, GET {SNAPSHOT_PATH} or POST {ACTIVITIES_PATH}",
            req.method(),
            req.path()
        ),
    )
}

/// `GET /metrics`: publisher, tracing-export and build-info metrics (`docs/metrics.md`).
async fn metrics() -> HttpResponse {
    let registry =
        telemesh_core::metrics::service_registry("incident-response", env!("CARGO_PKG_VERSION"));
    HttpResponse::Ok()
        .content_type(telemesh_core::metrics::TEXT_CONTENT_TYPE)
        .body(telemesh_core::metrics::encode_text(&registry))
}
