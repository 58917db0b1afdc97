//! Owns the alert API: `GET /api/v1/alerts?state=&limit=`, `GET /api/v1/alerts/channels`,
//! `GET /api/v1/alerts/{id}` (with its notification log), and the mutating
//! `POST /api/v1/alerts/{id}/ack|resolve|postmortem`, which need `Authorization: Bearer
//! <alerting.api_token>` (401 without one, 403 with a wrong one) and change nothing otherwise.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::actors::alert::{Acknowledge, GetChannelHealth, ResolveAlert, SetPostmortem};
use crate::alerting::engine::AlertError;
use crate::alerting::store::StateFilter;

type Params = web::Query<Vec<(String, String)>>;

fn alerting(
    state: &AppState,
) -> Result<
    (
        &actix::Addr<crate::actors::alert::AlertActor>,
        &crate::alerting::store::AlertStore,
    ),
    ApiError,
> {
    match (&state.alerts, &state.alert_store) {
        (Some(actor), Some(store)) => Ok((actor, store)),
        _ => Err(ApiError::not_found(
            "alerting is disabled: set [alerting] enabled = true",
        )),
    }
}

fn unauthorized(detail: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("www-authenticate", "Bearer realm=\"telemesh\""))
        .json(serde_json::json!({ "error": "unauthorized", "detail": detail }))
}

fn forbidden(detail: &str) -> HttpResponse {
    HttpResponse::Forbidden().json(serde_json::json!({ "error": "forbidden", "detail": detail }))
}

/// Checks the bearer token; `Some` is the refusal to send.
fn refuse(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let Some(header) = req.headers().get("authorization") else {
        return Some(unauthorized(
            "send Authorization: Bearer <alerting.api_token>",
        ));
    };
    let Some(token) = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return Some(unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    };
    let expected = state.api_token.expose();
    if expected.is_empty() {
        return Some(forbidden(
            "alert changes are disabled: set [alerting] api_token",
        ));
    }
    // compare every byte, so timing does not reveal a prefix
    let same = token.len() == expected.len()
        && token
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    (!same).then(|| forbidden("invalid token"))
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
    }
}

/// Body of ack and resolve.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Actor {
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
pub(super) struct Postmortem {
    url: String,
}

pub(super) async fn list(
    state: web::Data<AppState>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
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

pub(super) async fn channels(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (actor, _) = alerting(&state)?;
    let health = actor
        .send(GetChannelHealth)
        .await
        .map_err(|e| ApiError::unavailable(format!("alert actor: {e}")))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "channels": health })))
}

pub(super) async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
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
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Actor>,
    change: Change,
) -> Result<HttpResponse, ApiError> {
    if let Some(response) = refuse(&req, &state) {
        return Ok(response);
    }
    let (actor, _) = alerting(&state)?;
    let Actor { by, note } = body.into_inner().checked()?;
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

pub(super) async fn ack(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Actor>,
) -> Result<HttpResponse, ApiError> {
    change(req, state, id, body, Change::Acknowledge).await
}

pub(super) async fn resolve(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Actor>,
) -> Result<HttpResponse, ApiError> {
    change(req, state, id, body, Change::Resolve).await
}

pub(super) async fn postmortem(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Postmortem>,
) -> Result<HttpResponse, ApiError> {
    if let Some(response) = refuse(&req, &state) {
        return Ok(response);
    }
    let (actor, _) = alerting(&state)?;
    let url = body.into_inner().url;
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
        .map_err(|_| ApiError::not_found("no such alert"))?;
    Ok(HttpResponse::Ok().json(alert))
}
