//! Owns the CI domain's HTTP intake: `POST /api/v1/ci/github` (GitHub webhook: signature
//! checked over the raw body before it is parsed, replayed deliveries ignored, body bounded),
//! `POST /api/v1/ci/reports` (JUnit XML or `flake_runs.json`, bearer token) and
//! `POST /api/v1/ci/coverage` (Cobertura or LCOV, bearer token). Errors are JSON
//! `{error, detail}`; a client never gets a 500 for what it sent and a refused upload stores
//! nothing. An accepted upload is published as `telemetry.ci.history` records (journaled by
//! the aggregator) before it is kept and answered 201; when they cannot be published it is
//! answered 503 and not kept, so the client sends it again. Its id is derived from its
//! content, so the same upload sent twice is answered 200 `already_recorded` (or journaled
//! once). Mounted by the domain's `routes()` (or any actix `App`) with [`configure`].

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use telemesh_core::auth;
use telemesh_core::config::Secret;
use telemesh_service::refused;

use crate::coverage::FormatterMode;
use crate::github::parse_workflow_run_event;
use crate::history::{content_id, coverage_record, formatter_record, upload_records, Recorder};
use crate::intake::{CiStore, UploadError, UploadMeta};
use crate::webhook::{verify_signature, Delivery, ReplayGuard, MAX_WEBHOOK_BYTES};

pub const GITHUB_PATH: &str = "/api/v1/ci/github";
pub const REPORTS_PATH: &str = "/api/v1/ci/reports";
pub const COVERAGE_PATH: &str = "/api/v1/ci/coverage";
/// The largest test-report or coverage upload.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;
/// The setting holding the upload token.
pub const TOKEN_SETTING: &str = "ci.api_token";

/// What the handlers share.
#[derive(Clone)]
pub struct CiHttp {
    pub store: CiStore,
    /// `ci.webhook_secret`: empty disables the webhook (503).
    pub webhook_secret: Secret,
    /// `ci.api_token`: empty disables the uploads.
    pub api_token: Secret,
    /// Called after new data was recorded (the domain re-evaluates at once).
    pub on_change: Arc<dyn Fn() + Send + Sync>,
    /// Publishes accepted uploads as history records; `None` keeps them in memory only.
    pub recorder: Option<Recorder>,
}

impl std::fmt::Debug for CiHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiHttp").finish_non_exhaustive()
    }
}

/// Mounts the three intake routes.
pub fn configure(cfg: &mut web::ServiceConfig, state: CiHttp) {
    cfg.app_data(web::Data::new(state))
        .route(GITHUB_PATH, web::post().to(github))
        .route(REPORTS_PATH, web::post().to(reports))
        .route(COVERAGE_PATH, web::post().to(coverage));
}

fn error(
    status: actix_web::http::StatusCode,
    error: &str,
    detail: impl Into<String>,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": error, "detail": detail.into()}))
}

async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, HttpResponse> {
    use actix_web::http::StatusCode;
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("cannot read the request body: {e}; send it again"),
        )),
        Err(_) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is larger than {limit} bytes; split it or send the file the tool wrote"
            ),
        )),
    }
}

async fn github(req: HttpRequest, state: web::Data<CiHttp>, payload: web::Payload) -> HttpResponse {
    use actix_web::http::StatusCode;
    if state.webhook_secret.expose().is_empty() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "disabled",
            "the webhook is disabled: set ci.webhook_secret (TELEMESH__CI__WEBHOOK_SECRET) to the secret configured in GitHub",
        );
    }
    let body = match read_body(payload, MAX_WEBHOOK_BYTES).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .map(|v| v.as_bytes());
    if let Err(e) = verify_signature(state.webhook_secret.expose().as_bytes(), signature, &body) {
        tracing::warn!(error = %e, "webhook delivery refused");
        return error(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string());
    }
    let delivery =
        match ReplayGuard::parse_id(req.headers().get("x-github-delivery").map(|v| v.as_bytes())) {
            Ok(id) => id,
            Err(e) => return error(StatusCode::BAD_REQUEST, "bad_delivery", e.to_string()),
        };
    let event = req
        .headers()
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if event == "ping" {
        return HttpResponse::Ok().json(json!({"status": "pong"}));
    }
    if event != "workflow_run" {
        return HttpResponse::Accepted().json(json!({"status": "ignored", "detail": format!("event {event:?} is not used; subscribe the webhook to workflow runs only")}));
    }
    if state.store.delivery(&delivery) == Delivery::Replayed {
        tracing::info!(%delivery, "replayed webhook delivery ignored");
        return HttpResponse::Ok().json(json!({"status": "replayed", "delivery": delivery}));
    }
    match parse_workflow_run_event(&body) {
        Ok(Some(run)) => {
            tracing::info!(%delivery, run_id = run.run_id, workflow = %run.workflow, conclusion = run.conclusion.as_str(), "workflow run recorded");
            let body = json!({"status": "recorded", "run_id": run.run_id, "conclusion": run.conclusion.as_str()});
            if state.store.record_run(run) {
                (state.on_change)();
            }
            HttpResponse::Accepted().json(body)
        }
        Ok(None) => HttpResponse::Accepted()
            .json(json!({"status": "ignored", "detail": "the run is not completed"})),
        Err(e) => {
            state.store.forget_delivery(&delivery);
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_payload",
                e.to_string(),
            )
        }
    }
}

fn upload_error(e: UploadError) -> HttpResponse {
    use actix_web::http::StatusCode;
    match e {
        UploadError::Meta(e) => error(StatusCode::BAD_REQUEST, "invalid_query", e.to_string()),
        UploadError::Report(e) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
            e.to_string(),
        ),
        UploadError::Coverage(e) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_coverage",
            e.to_string(),
        ),
    }
}

async fn reports(
    req: HttpRequest,
    state: web::Data<CiHttp>,
    payload: web::Payload,
) -> HttpResponse {
    let header = req.headers().get("authorization").map(|v| v.as_bytes());
    if let Err(refusal) = auth::check_bearer(header, &state.api_token, TOKEN_SETTING) {
        return refused(refusal);
    }
    let meta = match web::Query::<UploadMeta>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("{e}; pass ?commit=<sha>[&branch=&run_id=&run_url=&suite=]"),
            )
        }
    };
    let body = match read_body(payload, MAX_UPLOAD_BYTES).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let id = content_id(
        &[
            &meta.commit,
            meta.branch.as_deref().unwrap_or(""),
            meta.run_id.as_deref().unwrap_or(""),
            meta.run_url.as_deref().unwrap_or(""),
            meta.suite.as_deref().unwrap_or(""),
        ],
        &body,
    );
    if state.store.has_upload(&id) {
        return HttpResponse::Ok().json(json!({"status": "already_recorded", "upload_id": id}));
    }
    let upload = match CiStore::prepare_report(meta, &body, id, Utc::now()) {
        Ok(upload) => upload,
        Err(e) => return upload_error(e),
    };
    let records = match &state.recorder {
        Some(recorder) => {
            let records = upload_records(&upload, recorder.source());
            if let Err(e) = recorder.publish(&records).await {
                return not_journaled(&e);
            }
            records.len()
        }
        None => 0,
    };
    state.store.keep_upload(upload.clone());
    (state.on_change)();
    let failed = upload
        .report
        .cases
        .iter()
        .filter(|c| c.outcome.is_failure())
        .count();
    HttpResponse::Created().json(json!({
        "status": "recorded",
        "upload_id": upload.upload_id,
        "cases": upload.report.cases.len(),
        "failures": failed,
        "records": records,
    }))
}

/// 503: the history records could not be published; nothing was kept.
fn not_journaled(detail: &str) -> HttpResponse {
    tracing::warn!(%detail, "upload not kept: its history records were not published");
    error(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "not_journaled",
        format!("{detail}; nothing was kept: check the mesh transport (Kafka) and send the upload again"),
    )
}

/// Query of a coverage upload.
#[derive(Debug, Deserialize)]
struct CoverageQuery {
    label: String,
    #[serde(default = "default_depth")]
    depth: usize,
    /// `global` or `allowlist`; with `allowlist` the body is the allowlist, not coverage.
    #[serde(default)]
    formatter: Option<String>,
}

fn default_depth() -> usize {
    2
}

async fn coverage(
    req: HttpRequest,
    state: web::Data<CiHttp>,
    payload: web::Payload,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let header = req.headers().get("authorization").map(|v| v.as_bytes());
    if let Err(refusal) = auth::check_bearer(header, &state.api_token, TOKEN_SETTING) {
        return refused(refusal);
    }
    let query = match web::Query::<CoverageQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!(
                    "{e}; pass ?label=<commit or build>[&depth=2][&formatter=global|allowlist]"
                ),
            )
        }
    };
    if !(1..=16).contains(&query.depth) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "depth must be 1 to 16",
        );
    }
    let body = match read_body(payload, MAX_UPLOAD_BYTES).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let now = Utc::now();
    let mode = match query.formatter.as_deref() {
        Some("global") => Some(FormatterMode::global()),
        Some("allowlist") => {
            let Ok(text) = std::str::from_utf8(&body) else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_allowlist",
                    "the allowlist is not UTF-8 text",
                );
            };
            Some(FormatterMode::allowlist(text))
        }
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("formatter {other:?} is neither global nor allowlist"),
            )
        }
        None => None,
    };
    if let Some(mode) = mode {
        if let Some(recorder) = &state.recorder {
            let id = content_id(&["formatter", &mode.mode, &now.to_rfc3339()], &body);
            let record = formatter_record(&id, &mode, now, recorder.source());
            if let Err(e) = recorder.publish(&[record]).await {
                return not_journaled(&e);
            }
        }
        let (name, entries) = (mode.mode.clone(), mode.total_entries);
        state.store.record_formatter(mode, now);
        (state.on_change)();
        return HttpResponse::Created()
            .json(json!({"status": "recorded", "formatter": name, "entries": entries}));
    }
    let id = content_id(&[&query.label, &query.depth.to_string()], &body);
    if state.store.has_coverage(&id) {
        return HttpResponse::Ok().json(json!({"status": "already_recorded", "entry_id": id}));
    }
    let entry = match CiStore::prepare_coverage(&query.label, query.depth, &body, now) {
        Ok(entry) => entry,
        Err(e) => return upload_error(e),
    };
    if let Some(recorder) = &state.recorder {
        let record = coverage_record(&id, &entry, recorder.source());
        if let Err(e) = recorder.publish(&[record]).await {
            return not_journaled(&e);
        }
    }
    state.store.keep_coverage(id.clone(), entry.clone());
    (state.on_change)();
    HttpResponse::Created().json(json!({
        "status": "recorded",
        "entry_id": id,
        "percent": entry.percent,
        "domains": entry.domains.len(),
    }))
}
