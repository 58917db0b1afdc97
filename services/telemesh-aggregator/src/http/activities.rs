//! Owns the drill and training log endpoints: `POST /api/v1/activities` (bearer
//! `aggregator.activities_token`; body `{"kind": "drill"|"training", "by": …, "at"?, "note"?}`,
//! validated by `telemesh_core::activity::validate`, journaled, answered 201) and
//! `GET /api/v1/activities/latest` (the newest drill and training session, for
//! incident-response's grading). Bad bodies get 4xx JSON naming the field and change nothing.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::DateTime;
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use telemesh_core::activity;
use telemesh_core::auth;
use telemesh_core::config::Secret;
use utoipa::ToSchema;

use super::openapi::ErrorDoc;
use super::{ApiError, AppState};
use crate::journal::ActivityStore;

/// The largest accepted activity body.
pub const MAX_ACTIVITY_BYTES: usize = 16 * 1024;

/// What the activity endpoints need.
#[derive(Debug, Clone, Default)]
pub struct ActivityApi {
    /// `None` when there is no journal to write to.
    pub store: Option<ActivityStore>,
    /// Bearer token of `POST`; empty = every `POST` is refused.
    pub token: Secret,
}

fn store(state: &AppState) -> Result<&ActivityStore, ApiError> {
    state.activities.store.as_ref().ok_or_else(|| {
        ApiError::unavailable("no journal database: set [journal] url to record activities")
    })
}

/// One activity as recorded.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Activity)]
#[serde(deny_unknown_fields)]
pub struct ActivityDoc {
    /// `drill` or `training`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub by: String,
    pub note: Option<String>,
}

/// The answer to a recorded activity.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RecordedActivity)]
#[serde(deny_unknown_fields)]
pub struct RecordedDoc {
    pub id: uuid::Uuid,
    pub recorded: ActivityDoc,
}

/// A rejected activity: the field at fault and what to send instead.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = InvalidActivity)]
#[serde(deny_unknown_fields)]
pub struct InvalidActivityDoc {
    pub error: String,
    pub field: String,
    pub detail: String,
}

/// The newest drill and training session.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LatestActivities)]
#[serde(deny_unknown_fields)]
pub struct LatestDoc {
    pub last_drill: Option<ActivityDoc>,
    pub last_training: Option<ActivityDoc>,
    pub entries: u64,
}

#[utoipa::path(post, path = "/api/v1/activities", tag = "incident response",
    request_body(content = Object, description = "{\"kind\": \"drill\"|\"training\", \"by\": \"alice\", \"at\"?: RFC 3339, \"note\"?: text}", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded in the journal database", body = RecordedDoc),
        (status = 400, description = "Not a valid activity; `field` names what is wrong", body = InvalidActivityDoc),
        (status = 401, description = "No bearer token, or a malformed one", body = ErrorDoc),
        (status = 403, description = "Wrong token, or aggregator.activities_token not set", body = ErrorDoc),
        (status = 413, description = "Body over 16 KiB", body = ErrorDoc),
        (status = 503, description = "The journal database is unavailable", body = ErrorDoc),
    ))]
pub(super) async fn record(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let header = req.headers().get("authorization").map(|v| v.as_bytes());
    if let Err(refusal) = auth::check_bearer(
        header,
        &state.activities.token,
        "aggregator.activities_token",
    ) {
        return Ok(telemesh_service::refused(refusal));
    }
    let body = match payload.to_bytes_limited(MAX_ACTIVITY_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("cannot read the body ({e})"),
            ))
        }
        Err(_) => {
            return Ok(HttpResponse::PayloadTooLarge().json(json!({
                "error": "body_too_large",
                "detail": format!("an activity is at most {MAX_ACTIVITY_BYTES} bytes of JSON"),
            })))
        }
    };
    let now = Utc::now();
    let activity = match activity::validate(&body, now) {
        Ok(a) => a,
        Err(e) => {
            return Ok(HttpResponse::BadRequest().json(json!({
                "error": "invalid_activity",
                "field": e.field,
                "detail": e.detail,
            })))
        }
    };
    let id = store(&state)?
        .record(&activity, now)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot record the activity: {e}")))?;
    Ok(HttpResponse::Created().json(json!({ "id": id, "recorded": activity })))
}

#[utoipa::path(get, path = "/api/v1/activities/latest", tag = "incident response",
    responses(
        (status = 200, description = "The newest drill and training session", body = LatestDoc),
        (status = 503, description = "The journal database is unavailable", body = ErrorDoc),
    ))]
pub(super) async fn latest(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let latest = store(&state)?
        .latest()
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot read the activities: {e}")))?;
    Ok(HttpResponse::Ok().json(latest))
}
