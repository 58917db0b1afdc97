//! Owns the alert API: `GET /api/v1/alerts?state=&limit=`, `GET /api/v1/alerts/channels`
//! (channel health and whether this replica is the alerting leader),
//! `GET /api/v1/alerts/{id}` (with its notification log), and the mutating
//! `POST /api/v1/alerts/{id}/ack|resolve|postmortem`, which need `Authorization: Bearer
//! <alerting.api_token>` (401 without one, 403 with a wrong one; checked before the body is
//! read) and change nothing otherwise. Errors are JSON `{error, detail}`.

use std::sync::Arc;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use telemesh_core::auth;
use telemesh_core::config::Secret;
use uuid::Uuid;

use crate::actor::{
    Acknowledge, AlertActor, GetChannelHealth, IsLeader, ResolveAlert, SetPostmortem,
};
use crate::engine::AlertError;
use crate::repo::{AlertRepo, StateFilter};

type Params = web::Query<Vec<(String, String)>>;

/// What the alert routes need; `None` parts answer 404 "alerting is disabled".
#[derive(Debug, Clone, Default)]
pub struct AlertApi {
    pub actor: Option<Addr<AlertActor>>,
    pub repo: Option<Arc<dyn AlertRepo>>,
    /// Bearer token of the mutating endpoints; empty = they refuse every request.
    pub api_token: Secret,
}

/// Registers the alert routes; the app must hold a `web::Data<AlertApi>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/alerts", web::get().to(list))
        .route("/api/v1/alerts/channels", web::get().to(channels))
        .route("/api/v1/alerts/{id}", web::get().to(get))
        .route("/api/v1/alerts/{id}/ack", web::post().to(ack))
        .route("/api/v1/alerts/{id}/resolve", web::post().to(resolve))
        .route("/api/v1/alerts/{id}/postmortem", web::post().to(postmortem));
}

/// An error answered by the alert API: `{error, detail}` with a 4xx status for bad input and
/// 503 when the store or the actor is down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {detail}")]
pub struct ApiError {
    pub status: u16,
    pub error: &'static str,
    pub detail: String,
}

impl ApiError {
    fn new(status: u16, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            error,
            detail: crate::redact::scrub_urls(&detail.into()),
        }
    }

    fn bad_request(error: &'static str, detail: impl Into<String>) -> Self {
        Self::new(400, error, detail)
    }

    fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not_found", detail)
    }

    fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "unavailable", detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": self.error, "detail": self.detail }))
    }
}

fn alerting(state: &AlertApi) -> Result<(&Addr<AlertActor>, &dyn AlertRepo), ApiError> {
    match (&state.actor, &state.repo) {
        (Some(actor), Some(repo)) => Ok((actor, repo.as_ref())),
        _ => Err(ApiError::not_found(
            "alerting is disabled: set [alerting] enabled = true",
        )),
    }
}

/// Parses a JSON body, after the token was checked.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("{e}; send the documented JSON object"),
        )
    })
}

/// Checks the bearer token (`telemesh_core::auth`: constant time, before the body is read);
/// `Some` is the refusal to send.
fn refuse(req: &HttpRequest, state: &AlertApi) -> Option<HttpResponse> {
    let header = req.headers().get("authorization").map(|v| v.as_bytes());
    let refusal = auth::check_bearer(header, &state.api_token, "alerting.api_token").err()?;
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = HttpResponse::build(status);
    if refusal.challenges() {
        response.insert_header(("www-authenticate", auth::WWW_AUTHENTICATE));
    }
    Some(response.json(refusal.body()))
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad_request("invalid_id", format!("{raw:?} is not an alert id (uuid)"))
    })
}

fn engine_error(e: AlertError) -> ApiError {
    match e {
        AlertError::NotFound(id) => {
            ApiError::not_found(format!("no open alert {id}; it may be resolved already"))
        }
        AlertError::NotLeader => ApiError::unavailable(
            "this replica is not the alerting leader; retry, the request may reach the leader",
        ),
    }
}

/// Body of ack and resolve.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Actor {
    by: String,
    #[serde(default)]
    note: Option<String>,
}

impl Actor {
    fn checked(self) -> Result<Self, ApiError> {
        if self.by.trim().is_empty() || self.by.len() > 200 {
            return Err(ApiError::bad_request(
                "invalid_by",
                "by must name who acts (1 to 200 characters)",
            ));
        }
        Ok(self)
    }
}

/// Body of postmortem.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Postmortem {
    url: String,
}

async fn list(state: web::Data<AlertApi>, params: Params) -> Result<HttpResponse, ApiError> {
    let (_, store) = alerting(&state)?;
    let mut filter = StateFilter::Open;
    let mut limit = 100u32;
    for (k, v) in params.iter() {
        match k.as_str() {
            "state" => {
                filter = v
                    .parse()
                    .map_err(|e: String| ApiError::bad_request("invalid_state", e))?
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=1000).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_limit",
                            format!("limit={v:?} must be 1 to 1000"),
                        )
                    })?
            }
            other => {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!("unknown query parameter {other:?}; allowed: state, limit"),
                ))
            }
        }
    }
    let alerts = store
        .list(filter, limit)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": alerts.len(), "alerts": alerts })))
}

async fn channels(state: web::Data<AlertApi>) -> Result<HttpResponse, ApiError> {
    let (actor, _) = alerting(&state)?;
    let health = actor
        .send(GetChannelHealth)
        .await
        .map_err(|e| ApiError::unavailable(format!("alert actor: {e}")))?;
    let leader = actor.send(IsLeader).await.unwrap_or(false);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "channels": health, "leader": leader })))
}

async fn get(state: web::Data<AlertApi>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, store) = alerting(&state)?;
    let id = parse_id(&id)?;
    let alert = store
        .get(id)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let notifications = store
        .notifications(id)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "alert": alert, "notifications": notifications })))
}

/// Which change a person asks for.
#[derive(Debug, Clone, Copy)]
enum Change {
    Acknowledge,
    Resolve,
}

async fn change(
    req: HttpRequest,
    state: web::Data<AlertApi>,
    id: web::Path<String>,
    body: web::Bytes,
    change: Change,
) -> Result<HttpResponse, ApiError> {
    if let Some(response) = refuse(&req, &state) {
        return Ok(response);
    }
    let (actor, _) = alerting(&state)?;
    let Actor { by, note } = parse_body::<Actor>(&body)?.checked()?;
    let id = parse_id(&id)?;
    let answer = match change {
        Change::Acknowledge => actor.send(Acknowledge { id, by, note }).await,
        Change::Resolve => actor.send(ResolveAlert { id, by, note }).await,
    };
    let alert = answer
        .map_err(|e| ApiError::unavailable(format!("alert actor: {e}")))?
        .map_err(engine_error)?;
    Ok(HttpResponse::Ok().json(alert))
}

async fn ack(
    req: HttpRequest,
    state: web::Data<AlertApi>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    change(req, state, id, body, Change::Acknowledge).await
}

async fn resolve(
    req: HttpRequest,
    state: web::Data<AlertApi>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    change(req, state, id, body, Change::Resolve).await
}

async fn postmortem(
    req: HttpRequest,
    state: web::Data<AlertApi>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    if let Some(response) = refuse(&req, &state) {
        return Ok(response);
    }
    let (actor, _) = alerting(&state)?;
    let url = parse_body::<Postmortem>(&body)?.url;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::bad_request(
            "invalid_url",
            "url must be an http(s) link",
        ));
    }
    let alert = actor
        .send(SetPostmortem {
            id: parse_id(&id)?,
            url,
        })
        .await
        .map_err(|e| ApiError::unavailable(format!("alert actor: {e}")))?
        .map_err(|e| match e {
            AlertError::NotLeader => engine_error(e),
            AlertError::NotFound(_) => ApiError::not_found("no such alert"),
        })?;
    Ok(HttpResponse::Ok().json(alert))
}
