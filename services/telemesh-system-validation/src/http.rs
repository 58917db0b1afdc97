//! Owns `POST /api/v1/system-validation/report`: a validation run uploads its JSON report with
//! `Authorization: Bearer <system_validation.api_token>`; a readable report is graded at once
//! (the service runs now) and the answer carries the snapshot's grade. The token is checked
//! before the body is read; the body is bounded; a report that is not one is refused with 400
//! and never replaces the current report.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;
use telemesh_core::auth;
use telemesh_core::config::Secret;
use telemesh_service::{refused, Routes, ServiceHandle};

use crate::domain::{digest, Arrival, Inbox};
use crate::evaluate::KIND;
use crate::report::{parse_report, MAX_REPORT_BYTES};
use crate::state::Origin;

/// The upload path.
pub const REPORT_PATH: &str = "/api/v1/system-validation/report";
/// The setting that holds the upload token.
pub const TOKEN_SETTING: &str = "system_validation.api_token";

#[derive(Clone)]
struct Upload {
    token: Secret,
    inbox: Inbox,
    service: ServiceHandle,
}

pub(crate) fn routes(token: Secret, inbox: Inbox, service: ServiceHandle) -> Routes {
    let upload = Upload {
        token,
        inbox,
        service,
    };
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(upload.clone()))
            .route(REPORT_PATH, web::post().to(upload_report));
    })
}

fn error(status: StatusCode, error: &str, detail: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error, "detail": detail.into() }))
}

async fn upload_report(
    req: HttpRequest,
    state: web::Data<Upload>,
    payload: web::Payload,
) -> HttpResponse {
    let header = req.headers().get("authorization").map(|v| v.as_bytes());
    if let Err(refusal) = auth::check_bearer(header, &state.token, TOKEN_SETTING) {
        return refused(refusal);
    }
    let body = match payload.to_bytes_limited(MAX_REPORT_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("cannot read the request body: {e}; send it again"),
            )
        }
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("a report is at most {MAX_REPORT_BYTES} bytes of JSON"),
            )
        }
    };
    let report = match parse_report(&body) {
        Ok(report) => report,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_report", e.to_string()),
    };
    let problems = report.problems.clone();
    *state.inbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arrival {
        origin: Origin::Upload,
        received_at: Utc::now(),
        parsed: Ok(report),
        digest: digest(&body),
    });
    let snapshots = state.service.run_now().await;
    match snapshots.iter().find(|s| s.kind == KIND) {
        Some(s) => HttpResponse::Accepted().json(json!({
            "id": s.id,
            "status": s.status,
            "summary": s.summary,
            "problems": problems,
        })),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the report was accepted but the service is stopping; it is graded by the next instance only if uploaded again",
        ),
    }
}
