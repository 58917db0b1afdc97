//! Owns `GET /api/v1/export/{name}?section=&allow_missing=` (the snapshot exports, see
//! `crate::export`) and `GET /api/v1/history?kind=&hours=&bucket_seconds=` (the bucketed status
//! history behind the page's strips). A missing section answers 409 naming the missing kinds.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::Utc;

use super::{ApiError, AppState};
use crate::actors::journal::StatusHistory;
use crate::actors::summary::GetSummary;
use crate::export::{self, ExportError, ExportName};
use crate::journal::history::HistoryQuery;
use crate::journal::Layout;

type Params = web::Query<Vec<(String, String)>>;

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(ApiError::bad_request(
            "invalid_flag",
            format!("{name}={other:?}; use true or false"),
        )),
    }
}

fn journal_name(layout: &Layout) -> &'static str {
    match layout {
        Layout::Timescale { .. } => "timescaledb",
        Layout::PlainPostgres => "postgresql",
        Layout::Sqlite => "sqlite",
    }
}

#[utoipa::path(get, path = "/api/v1/export/{name}", tag = "exports",
    params(("name" = String, Path, description = "`operational`, `data-backbone` or `risk-compliance`"),
        ("section" = Option<Vec<String>>, Query, description = "a section to include (repeatable); default: every section of the export"),
        ("allow_missing" = Option<bool>, Query, description = "export even when a section has no snapshot")),
    responses((status = 200, description = "The export", body = crate::export::Export),
        (status = 404, description = "No such export", body = super::openapi::ErrorDoc),
        (status = 409, description = "A section has no snapshot and allow_missing is not set", body = super::openapi::MissingDoc), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn export(
    state: web::Data<AppState>,
    name: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let Some(name) = ExportName::parse(&name) else {
        return Err(ApiError::not_found(format!(
            "no export {:?}; exports: operational, data-backbone, risk-compliance",
            name.as_str()
        )));
    };
    let mut sections = Vec::new();
    let mut allow_missing = None;
    for (k, v) in params.iter() {
        match k.as_str() {
            "section" if v.len() <= 100 => sections.push(v.clone()),
            "section" => {
                return Err(ApiError::bad_request(
                    "invalid_section",
                    "a section name has at most 100 characters",
                ))
            }
            "allow_missing" if allow_missing.is_none() => {
                allow_missing = Some(parse_bool("allow_missing", v)?)
            }
            "allow_missing" => {
                return Err(ApiError::bad_request(
                    "repeated_parameter",
                    "query parameter \"allow_missing\" is given twice",
                ))
            }
            other => {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!("unknown query parameter {other:?}; allowed: section, allow_missing"),
                ))
            }
        }
    }
    if sections.len() > 20 {
        return Err(ApiError::bad_request(
            "invalid_section",
            "at most 20 sections per request",
        ));
    }
    let summary = state
        .summary
        .send(GetSummary { now: Utc::now() })
        .await
        .map_err(|e| ApiError::unavailable(format!("summary actor: {e}")))?;
    let config = BTreeMap::from([
        ("journal".to_owned(), journal_name(&state.layout).to_owned()),
        ("transport".to_owned(), state.transport_name.to_owned()),
    ]);
    match export::build(
        name,
        &summary,
        &sections,
        allow_missing.unwrap_or(false),
        config,
    ) {
        Ok(payload) => Ok(HttpResponse::Ok().json(payload)),
        Err(e @ ExportError::UnknownSection { .. }) => {
            Err(ApiError::bad_request("unknown_section", e.to_string()))
        }
        Err(ExportError::Missing { sections, kinds }) => Ok(HttpResponse::Conflict().json(
            serde_json::json!({
                "error": "missing_sections",
                "detail": format!(
                    "no snapshot yet of {}: wait for their services to report, or pass allow_missing=true",
                    kinds.join(", ")
                ),
                "missing_sections": sections,
                "missing_kinds": kinds,
            }),
        )),
    }
}

#[utoipa::path(get, path = "/api/v1/history", tag = "journal",
    params(("kind" = Option<String>, Query, description = "one snapshot kind; default every kind"),
        ("hours" = Option<i64>, Query, description = "window, hours back from now (default 6): 1 to 24 over every kind, up to 168 with kind"),
        ("bucket_seconds" = Option<i64>, Query, description = "bucket width, 10 s to 1 day (default 300); at most 500 buckets")),
    responses((status = 200, description = "Worst grade per kind and bucket", body = super::openapi::StatusHistoryDoc), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn history(
    state: web::Data<AppState>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let mut kind = None;
    let mut hours: i64 = 6;
    let mut bucket: i64 = 300;
    for (k, v) in super::api::check_params(&params, &["kind", "hours", "bucket_seconds"])? {
        match k {
            "kind" => kind = Some(super::stream::known_kind(v)?),
            "hours" => {
                hours = v
                    .parse()
                    .ok()
                    .filter(|h| (1..=168).contains(h))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_hours",
                            format!("hours={v:?} must be 1 to 168"),
                        )
                    })?
            }
            _ => {
                bucket = v.parse().ok().ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_bucket",
                        format!("bucket_seconds={v:?} must be a whole number of seconds"),
                    )
                })?
            }
        }
    }
    if kind.is_none() && hours > 24 {
        // every kind over a week reads the whole journal: name a kind for long windows
        return Err(ApiError::bad_request(
            "invalid_hours",
            format!("hours={hours} over every kind; at most 24 without kind=, up to 168 with one"),
        ));
    }
    let now = Utc::now();
    let query = HistoryQuery {
        kind,
        since: now - chrono::Duration::hours(hours),
        until: now,
        bucket_seconds: bucket,
    };
    query
        .validate()
        .map_err(|e| ApiError::bad_request("invalid_window", e.to_string()))?;
    let buckets = state
        .journal
        .send(StatusHistory(query.clone()))
        .await
        .map_err(|e| ApiError::unavailable(format!("journal actor: {e}")))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "since": query.since,
        "until": query.until,
        "bucket_seconds": query.bucket_seconds,
        "buckets": buckets,
    })))
}
