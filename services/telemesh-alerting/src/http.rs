//! Owns the alert API: `GET /api/v1/alerts?state=&limit=`, `GET /api/v1/alerts/channels`
//! (channel health and whether this replica is the alerting leader),
//! `GET /api/v1/alerts/{id}` (with its notification log), and the mutating
//! `POST /api/v1/alerts/{id}/ack|resolve|postmortem`, which need `Authorization: Bearer
//! <alerting.api_token>` (401 without one, 403 with a wrong one; checked before the body is
//! read) and change nothing otherwise. Errors are JSON `{error, detail}`. `AlertApiDoc` is
//! their OpenAPI description (the `#[utoipa::path]` annotations below), merged by the host
//! into its document.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use telemesh_core::auth;
use telemesh_core::config::Secret;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

use crate::actor::{
    Acknowledge, AlertActor, GetChannelHealth, IsLeader, ResolveAlert, SetPostmortem,
};
use crate::dispatch::ChannelHealth;
use crate::engine::{Alert, AlertError};
use crate::repo::{AlertRepo, LoggedNotification, StateFilter};

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
    Some(telemesh_service::refused(refusal))
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
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AlertChange)]
#[serde(deny_unknown_fields)]
struct Actor {
    /// Who acts (1 to 200 characters).
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
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AlertPostmortem)]
#[serde(deny_unknown_fields)]
struct Postmortem {
    /// An http(s) link.
    url: String,
}

/// `GET /api/v1/alerts`.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    params(("state" = Option<String>, Query, description = "`open` (default: pending or firing), `pending`, `firing`, `acknowledged`, `resolved` or `all`"),
        ("limit" = Option<u32>, Query, description = "at most this many alerts, 1 to 1000 (default 100)")),
    responses((status = 200, description = "Alerts, newest first", body = AlertListDoc),
        (status = 400, description = "Bad query", body = ErrorDoc),
        (status = 404, description = "Alerting is disabled", body = ErrorDoc),
        (status = 503, description = "The alert store is down", body = ErrorDoc)))]
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

/// `GET /api/v1/alerts/channels`.
#[utoipa::path(get, path = "/api/v1/alerts/channels", tag = "alerts",
    responses((status = 200, description = "Health of every notification channel, and whether this replica is the alerting leader", body = AlertChannelsDoc),
        (status = 404, description = "Alerting is disabled", body = ErrorDoc),
        (status = 503, description = "The alert actor is down", body = ErrorDoc)))]
async fn channels(state: web::Data<AlertApi>) -> Result<HttpResponse, ApiError> {
    let (actor, _) = alerting(&state)?;
    let health = actor
        .send(GetChannelHealth)
        .await
        .map_err(|e| ApiError::unavailable(format!("alert actor: {e}")))?;
    let leader = actor.send(IsLeader).await.unwrap_or(false);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "channels": health, "leader": leader })))
}

/// `GET /api/v1/alerts/{id}`.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = String, Path, description = "alert id (uuid)")),
    responses((status = 200, description = "The alert and its notification log", body = AlertDetailDoc),
        (status = 400, description = "Not an alert id", body = ErrorDoc),
        (status = 404, description = "No such alert, or alerting is disabled", body = ErrorDoc),
        (status = 503, description = "The alert store is down", body = ErrorDoc)))]
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

/// `POST /api/v1/alerts/{id}/ack`.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts",
    params(("id" = String, Path, description = "alert id (uuid)")),
    request_body(content = Actor, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 200, description = "The acknowledged alert", body = Alert),
        (status = 400, description = "Bad body or id", body = ErrorDoc),
        (status = 401, description = "No bearer token, or a malformed one", body = ErrorDoc),
        (status = 403, description = "Wrong token, or no token configured (alerting.api_token)", body = ErrorDoc),
        (status = 404, description = "No such open alert, or alerting is disabled", body = ErrorDoc),
        (status = 503, description = "This replica is not the alerting leader, or the alert actor is down", body = ErrorDoc)))]
async fn ack(
    req: HttpRequest,
    state: web::Data<AlertApi>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    change(req, state, id, body, Change::Acknowledge).await
}

/// `POST /api/v1/alerts/{id}/resolve`.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts",
    params(("id" = String, Path, description = "alert id (uuid)")),
    request_body(content = Actor, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 200, description = "The resolved alert", body = Alert),
        (status = 400, description = "Bad body or id", body = ErrorDoc),
        (status = 401, description = "No bearer token, or a malformed one", body = ErrorDoc),
        (status = 403, description = "Wrong token, or no token configured (alerting.api_token)", body = ErrorDoc),
        (status = 404, description = "No such open alert, or alerting is disabled", body = ErrorDoc),
        (status = 503, description = "This replica is not the alerting leader, or the alert actor is down", body = ErrorDoc)))]
async fn resolve(
    req: HttpRequest,
    state: web::Data<AlertApi>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    change(req, state, id, body, Change::Resolve).await
}

/// `POST /api/v1/alerts/{id}/postmortem`.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/postmortem", tag = "alerts",
    params(("id" = String, Path, description = "alert id (uuid)")),
    request_body(content = Postmortem, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 200, description = "The alert with its postmortem link", body = Alert),
        (status = 400, description = "Bad body or id", body = ErrorDoc),
        (status = 401, description = "No bearer token, or a malformed one", body = ErrorDoc),
        (status = 403, description = "Wrong token, or no token configured (alerting.api_token)", body = ErrorDoc),
        (status = 404, description = "No such open alert, or alerting is disabled", body = ErrorDoc),
        (status = 503, description = "This replica is not the alerting leader, or the alert actor is down", body = ErrorDoc)))]
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

/// A grade (the JSON of `telemesh_core::Grade`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Grade)]
#[serde(rename_all = "lowercase")]
pub enum GradeDoc {
    Ok,
    Warn,
    Fail,
}

/// Every error of the alert API: a machine-readable code and what to do next.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
#[serde(deny_unknown_fields)]
pub struct ErrorDoc {
    pub error: String,
    pub detail: String,
}

/// `GET /api/v1/alerts`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertList)]
#[serde(deny_unknown_fields)]
pub struct AlertListDoc {
    pub count: usize,
    pub alerts: Vec<Alert>,
}

/// `GET /api/v1/alerts/channels`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertChannels)]
#[serde(deny_unknown_fields)]
pub struct AlertChannelsDoc {
    pub channels: BTreeMap<String, ChannelHealth>,
    pub leader: bool,
}

/// `GET /api/v1/alerts/{id}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertDetail)]
#[serde(deny_unknown_fields)]
pub struct AlertDetailDoc {
    pub alert: Alert,
    pub notifications: Vec<LoggedNotification>,
}

/// Declares the `bearer` security scheme of the mutating routes.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI description of the alert routes, for the host to merge into its document.
#[derive(OpenApi)]
#[openapi(
    paths(list, channels, get, ack, resolve, postmortem),
    modifiers(&BearerScheme)
)]
#[derive(Debug)]
pub struct AlertApiDoc;
