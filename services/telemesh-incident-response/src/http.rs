//! Owns the incident-response domain's own routes: `GET /api/v1/gate` (may we deploy?),
//! `GET /api/v1/snapshot`, `POST /api/v1/activities` (record a drill or training session;
//! needs `Authorization: Bearer <incident_response.api_token>`, checked before the body is
//! read, and is disabled while no token is configured; the domain runs at once after). Health,
//! metrics and the latest snapshots are the framework's. Errors are JSON `{error, detail}` (plus
//! `field` for a rejected activity); a client never gets a 500 for what it sent.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;
use telemesh_core::auth;
use telemesh_core::config::Secret;
use telemesh_service::{refused, Routes, ServiceHandle};

use crate::activity::{self, ActivityError, ActivitySink};
use crate::evaluate::KIND;
use crate::gate::{gate as gate_of, gate_without_snapshot, Gate};
use crate::settings::GateSettings;

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

struct HttpState {
    service: ServiceHandle,
    gate_settings: GateSettings,
    activities: ActivitySink,
    api_token: Secret,
}

impl HttpState {
    /// The gate of the last snapshot (blocked when there is none yet).
    fn gate(&self) -> Gate {
        match self.service.latest_of(KIND) {
            Some(s) => gate_of(&s, &self.gate_settings),
            None => gate_without_snapshot(&self.gate_settings),
        }
    }
}

/// The gate, snapshot and activities routes of the domain running as `service`.
pub fn routes(
    service: ServiceHandle,
    gate_settings: GateSettings,
    activities: ActivitySink,
    api_token: Secret,
) -> Routes {
    let state = web::Data::new(HttpState {
        service,
        gate_settings,
        activities,
        api_token,
    });
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone())
            .route(GATE_PATH, web::get().to(gate))
            .route(SNAPSHOT_PATH, web::get().to(snapshot))
            .service(
                web::resource(ACTIVITIES_PATH)
                    .app_data(web::PayloadConfig::new(MAX_ACTIVITY_BYTES))
                    .route(web::post().to(record_activity)),
            )
            .default_service(web::to(not_found));
    })
}

fn error(
    status: actix_web::http::StatusCode,
    error: &str,
    detail: impl Into<String>,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error, "detail": detail.into() }))
}

async fn gate(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    if !req.query_string().is_empty() {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{GATE_PATH} takes no query parameters; call it as GET {GATE_PATH}"),
        );
    }
    let gate = state.gate();
    if gate.metadata.snapshot_status.is_none() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(gate);
    }
    HttpResponse::Ok().json(gate)
}

async fn snapshot(state: web::Data<HttpState>) -> HttpResponse {
    match state.service.latest_of(KIND) {
        Some(s) => HttpResponse::Ok().json(s),
        None => error(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "no snapshot evaluated yet; retry in a few seconds",
        ),
    }
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
    match state.activities.record(&activity).await {
        Ok(()) => {
            tracing::info!(kind = activity.kind.as_str(), by = %activity.by, at = %activity.at, "activity recorded");
        }
        Err(e @ ActivityError::Write { .. }) => {
            return error(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "activity_log_unwritable",
                e.to_string(),
            )
        }
        Err(e @ ActivityError::Aggregator { .. }) => {
            return error(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "activity_not_recorded",
                e.to_string(),
            )
        }
        Err(e) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_activity",
                e.to_string(),
            )
        }
    }
    let snapshot_status = state
        .service
        .run_now()
        .await
        .into_iter()
        .find(|s| s.kind == KIND)
        .map(|s| s.status);
    HttpResponse::Created().json(json!({
        "recorded": activity,
        "snapshot_status": snapshot_status,
        "gate_status": state.gate().status,
    }))
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
