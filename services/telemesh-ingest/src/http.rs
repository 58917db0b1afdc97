//! Owns the ingest service's HTTP endpoints: `POST /api/v1/ingest/runs` (ingest jobs that do
//! not write the runs table report a run here; it is validated and inserted into the
//! platform's runs table; it needs `Authorization: Bearer <ingest.api_token>`, checked before
//! the body is read, and is disabled while no token is configured), `GET /api/v1/snapshots/latest`, `/health/live` and `/health/ready`.
//! Errors are JSON `{error, detail}` (plus `field` for a rejected report); a client never
//! gets a 500 for what it sent.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix::Addr;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context as _;
use chrono::Utc;
use serde_json::{json, Value};
use telemesh_core::auth;
use telemesh_core::config::Secret;

use crate::run::validate_report;
use crate::service::{EvaluateNow, GetLastSnapshots, IngestService};
use crate::source::{SourceDb, SourceError, TableName};

/// The path ingest jobs post run reports to.
pub const RUNS_PATH: &str = "/api/v1/ingest/runs";
/// The largest accepted report body.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;
/// The setting holding the token of the run-report endpoint.
pub const TOKEN_SETTING: &str = "ingest.api_token";

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the handlers share.
#[derive(Debug, Clone)]
struct HttpState {
    db: SourceDb,
    runs_table: TableName,
    service: Option<Addr<IngestService>>,
    api_token: Secret,
}

/// Starts the HTTP server on `addr` (port 0 picks a free port) and returns the bound address
/// and the handle to stop it. Run reports are written to `runs_table` of `db`; `service`, when
/// given, serves the latest snapshots and re-evaluates after each recorded run; `api_token`
/// guards the run reports (empty disables them). Must run inside an actix system.
pub fn serve_http(
    addr: &str,
    db: SourceDb,
    runs_table: TableName,
    service: Option<Addr<IngestService>>,
    api_token: Secret,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr}; set [http] addr to a free address"))?;
    let local = listener.local_addr()?;
    let state = web::Data::new(HttpState {
        db,
        runs_table,
        service,
        api_token,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_REPORT_BYTES))
            .route(RUNS_PATH, web::post().to(report_run))
            .route("/api/v1/snapshots/latest", web::get().to(latest))
            .route("/health/live", web::get().to(live))
            .route("/metrics", web::get().to(metrics))
            .route("/health/ready", web::get().to(ready))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    tracing::info!(http = %local, "ingest endpoints listening (POST {RUNS_PATH})");
    Ok((local, handle))
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

async fn report_run(
    req: HttpRequest,
    state: web::Data<HttpState>,
    payload: web::Payload,
) -> HttpResponse {
    // the token first: an unauthenticated body is never read, let alone parsed or written
    let header = req.headers().get("authorization").map(|v| v.as_bytes());
    if let Err(refusal) = auth::check_bearer(header, &state.api_token, TOKEN_SETTING) {
        return refused(refusal);
    }
    let body = match payload.to_bytes_limited(MAX_REPORT_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return HttpResponse::BadRequest().json(json!({
                "error": "invalid_body",
                "detail": format!("cannot read the request body: {e}; send it again"),
            }))
        }
        Err(_) => {
            return HttpResponse::PayloadTooLarge().json(json!({
                "error": "too_large",
                "detail": format!("a run report is at most {MAX_REPORT_BYTES} bytes of JSON"),
            }))
        }
    };
    let report = match validate_report(&body, Utc::now()) {
        Ok(r) => r,
        Err(e) => {
            return HttpResponse::BadRequest().json(json!({
                "error": "invalid_run",
                "field": e.field,
                "detail": e.to_string(),
            }))
        }
    };
    let table = state.runs_table.display(state.db.backend());
    match state.db.insert_run(&state.runs_table, &report).await {
        Ok(inserted) => {
            tracing::info!(run_id = %report.run.run_id, dimension = %report.run.dimension, inserted, "run report");
            if let Some(service) = &state.service {
                service.do_send(EvaluateNow);
            }
            let body = json!({
                "status": if inserted { "recorded" } else { "duplicate" },
                "run_id": report.run.run_id,
                "dimension": report.run.dimension,
                "table": table,
            });
            if inserted {
                HttpResponse::Created().json(body)
            } else {
                HttpResponse::Ok().json(body)
            }
        }
        Err(e @ SourceError::Rejected(_)) => HttpResponse::BadRequest().json(json!({
            "error": "rejected_by_table",
            "field": Value::Null,
            "detail": format!("{e}; the run does not fit the columns of {table}"),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "run report not recorded");
            HttpResponse::ServiceUnavailable().json(json!({
                "error": "unavailable",
                "detail": format!("cannot record the run in {table}: {e}; retry later with the same run_id"),
            }))
        }
    }
}

async fn latest(state: web::Data<HttpState>) -> HttpResponse {
    let Some(service) = &state.service else {
        return HttpResponse::NotFound().json(
            json!({"error": "not_found", "detail": "no ingest service runs in this process"}),
        );
    };
    match service.send(GetLastSnapshots).await {
        Ok(last) => {
            let snapshots: Vec<_> = [last.trends, last.retention]
                .into_iter()
                .flatten()
                .collect();
            HttpResponse::Ok().json(json!({ "count": snapshots.len(), "snapshots": snapshots }))
        }
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(json!({"error": "unavailable", "detail": format!("ingest service: {e}")})),
    }
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

async fn ready(state: web::Data<HttpState>) -> HttpResponse {
    match tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Ok(Err(e)) => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not_ready", "detail": e.to_string() })),
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({
            "status": "not_ready",
            "detail": format!("the platform database did not answer within {CHECK_TIMEOUT:?}"),
        })),
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": "not_found",
        "detail": format!("no route for {} {}; see POST {RUNS_PATH}, /api/v1/snapshots/latest, /health/ready", req.method(), req.path()),
    }))
}

/// `GET /metrics`: publisher, tracing-export and build-info metrics (`docs/metrics.md`).
async fn metrics() -> HttpResponse {
    let registry = telemesh_core::metrics::service_registry("ingest", env!("CARGO_PKG_VERSION"));
    HttpResponse::Ok()
        .content_type(telemesh_core::metrics::TEXT_CONTENT_TYPE)
        .body(telemesh_core::metrics::encode_text(&registry))
}
