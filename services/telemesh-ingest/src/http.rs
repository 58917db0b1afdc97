//! Owns the ingest domain's own route: `POST /api/v1/ingest/runs` (ingest jobs that do not
//! write the runs table report a run here; it is validated and inserted into the platform's
//! runs table, then the domain runs at once; it needs `Authorization: Bearer
//! <ingest.api_token>`, checked before the body is read, and is disabled while no token is
//! configured). Health, metrics and the latest snapshots are the framework's. Errors are JSON
//! `{error, detail}` (plus `field` for a rejected report); a client never gets a 500 for what it
//! sent.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::{json, Value};
use telemesh_core::auth;
use telemesh_core::config::Secret;
use telemesh_service::{refused, Routes, ServiceHandle};

use crate::run::validate_report;
use crate::source::{SourceDb, SourceError, TableName};

/// The path ingest jobs post run reports to.
pub const RUNS_PATH: &str = "/api/v1/ingest/runs";
/// The largest accepted report body.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;
/// The setting holding the token of the run-report endpoint.
pub const TOKEN_SETTING: &str = "ingest.api_token";

/// What the handler shares.
#[derive(Debug, Clone)]
struct HttpState {
    db: SourceDb,
    runs_table: TableName,
    service: ServiceHandle,
    api_token: Secret,
}

/// The run-report route: reports are written to `runs_table` of `db`, then `service` runs at
/// once; `api_token` guards them (empty disables them).
pub fn routes(
    db: SourceDb,
    runs_table: TableName,
    service: ServiceHandle,
    api_token: Secret,
) -> Routes {
    let state = web::Data::new(HttpState {
        db,
        runs_table,
        service,
        api_token,
    });
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::resource(RUNS_PATH)
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(MAX_REPORT_BYTES))
                .route(web::post().to(report_run)),
        );
    })
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
            let service = state.service.clone();
            actix_rt::spawn(async move {
                service.run_now().await;
            });
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
