//! Owns the read API: `/api/v1/summary` (JSON or Markdown), `/api/v1/snapshots` (journal
//! history with validated filters) and `/api/v1/snapshots/latest`.

use std::collections::HashSet;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use telemesh_core::topics;

use super::{ApiError, AppState};
use crate::actors::journal::QuerySnapshots;
use crate::actors::summary::GetLatest;
use crate::journal::SnapshotQuery;

/// Default and maximum of `limit`.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

type Params = web::Query<Vec<(String, String)>>;

/// Rejects unknown and repeated parameters; returns the known ones.
pub(super) fn check_params<'a>(
    params: &'a [(String, String)],
    allowed: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, ApiError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (k, v) in params {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!(
                    "unknown query parameter {k:?}; allowed: {}",
                    allowed.join(", ")
                ),
            ));
        }
        if !seen.insert(k.as_str()) {
            return Err(ApiError::bad_request(
                "repeated_parameter",
                format!("query parameter {k:?} is given twice"),
            ));
        }
        out.push((k.as_str(), v.as_str()));
    }
    Ok(out)
}

pub(super) fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::bad_request(
                "invalid_time",
                format!(
                    "{name}={value:?} is not an RFC 3339 time ({e}); use e.g. 2026-11-28T03:00:00Z"
                ),
            )
        })
}

/// Parses the `/api/v1/snapshots` query.
pub fn parse_snapshot_query(params: &[(String, String)]) -> Result<SnapshotQuery, ApiError> {
    let mut query = SnapshotQuery {
        limit: DEFAULT_LIMIT,
        ..SnapshotQuery::default()
    };
    for (k, v) in check_params(params, &["kind", "service", "since", "until", "limit"])? {
        match k {
            "kind" => {
                if let Some(problem) = topics::kind_problem(v) {
                    return Err(ApiError::bad_request("unknown_kind", problem));
                }
                query.kind = Some(v.to_owned());
            }
            "service" => {
                if v.trim().is_empty() || v.len() > 200 {
                    return Err(ApiError::bad_request(
                        "invalid_service",
                        "service must be 1 to 200 characters",
                    ));
                }
                query.service = Some(v.to_owned());
            }
            "since" => query.since = Some(parse_time("since", v)?),
            "until" => query.until = Some(parse_time("until", v)?),
            "limit" => {
                query.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_limit",
                            format!("limit={v:?} must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
            }
            _ => {}
        }
    }
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if since >= until {
            return Err(ApiError::bad_request(
                "invalid_range",
                "since must be before until",
            ));
        }
    }
    Ok(query)
}

#[utoipa::path(get, path = "/api/v1/summary", tag = "summary",
    params(("format" = Option<String>, Query, description = "`json` (default) or `markdown`"),
        ("Accept-Encoding" = Option<String>, Header, description = "with `gzip` (weight above 0) the body is gzip-compressed (`Content-Encoding: gzip`)")),
    responses((status = 200, description = "The runtime summary", content(
        (super::openapi::SummaryDoc = "application/json"), (String = "text/markdown"))), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn summary(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let mut markdown = false;
    for (k, v) in check_params(&params, &["format"])? {
        if k == "format" {
            markdown = match v {
                "json" => false,
                "markdown" | "md" => true,
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_format",
                        format!("format={other:?}; use json or markdown"),
                    ))
                }
            };
        }
    }
    // rendered by the summary actor once per change (and once a second): served from memory
    let rendered = state.summary_cache.get();
    if rendered.at.is_none() {
        return Err(ApiError::unavailable(
            "the summary is not rendered yet; retry in a second",
        ));
    }
    let (content_type, body, gzipped) = if markdown {
        (
            "text/markdown; charset=utf-8",
            &rendered.markdown,
            &rendered.markdown_gzip,
        )
    } else {
        ("application/json", &rendered.json, &rendered.json_gzip)
    };
    let gzip = !gzipped.is_empty()
        && req
            .headers()
            .get(actix_web::http::header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts_gzip);
    let mut answer = HttpResponse::Ok();
    answer
        .content_type(content_type)
        .insert_header((actix_web::http::header::VARY, "Accept-Encoding"));
    Ok(if gzip {
        answer
            .insert_header((actix_web::http::header::CONTENT_ENCODING, "gzip"))
            .body(gzipped.clone())
    } else {
        answer.body(body.clone())
    })
}

/// Whether an `Accept-Encoding` value (RFC 9110 §12.5.3) accepts gzip: listed (as `gzip` or
/// `x-gzip`) with a non-zero weight, or not listed and `*` with a non-zero weight. Anything
/// unparsable counts as not accepting it (the identity body always works).
pub(super) fn accepts_gzip(header: &str) -> bool {
    let mut star = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut weight = 1.0f32;
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("q") {
                weight = match v.trim().parse::<f32>() {
                    Ok(q) if (0.0..=1.0).contains(&q) => q,
                    _ => 0.0,
                };
            }
        }
        match coding.as_str() {
            "gzip" | "x-gzip" => return weight > 0.0,
            "*" => star = Some(weight > 0.0),
            _ => {}
        }
    }
    star.unwrap_or(false)
}

#[utoipa::path(get, path = "/api/v1/snapshots", tag = "journal",
    params(("kind" = Option<String>, Query, description = "snapshot kind"),
        ("service" = Option<String>, Query, description = "service name"),
        ("since" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("until" = Option<String>, Query, description = "RFC 3339, exclusive"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, description = "Journaled snapshots, newest first", body = super::openapi::HistoryListDoc), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn snapshots(
    state: web::Data<AppState>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let query = parse_snapshot_query(&params)?;
    let rows = state
        .journal
        .send(QuerySnapshots(query))
        .await
        .map_err(|e| ApiError::unavailable(format!("journal actor: {e}")))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": rows.len(), "snapshots": rows })))
}

#[utoipa::path(get, path = "/api/v1/snapshots/latest", tag = "summary",
    responses((status = 200, description = "The newest snapshot of every source", body = super::openapi::LatestDoc), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn latest(
    state: web::Data<AppState>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    check_params(&params, &[])?;
    let latest = state
        .summary
        .send(GetLatest)
        .await
        .map_err(|e| ApiError::unavailable(format!("summary actor: {e}")))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": latest.len(), "snapshots": latest })))
}

pub(super) async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::not_found(format!(
        "no route for {} {}; see /api/v1/summary, /api/v1/snapshots, /health, /metrics",
        req.method(),
        req.path()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_decides_gzip_by_weight() {
        for (header, gzip) in [
            ("gzip", true),
            ("gzip, deflate, br", true),
            ("br;q=1.0, GZIP;q=0.5", true),
            ("x-gzip", true),
            ("*", true),
            ("*;q=0.1, br", true),
            ("gzip;q=0", false),
            ("gzip;q=0.000", false),
            ("gzip;q=0, *", false),
            ("*;q=0", false),
            ("identity", false),
            ("deflate, br", false),
            ("", false),
            ("gzip;q=2", false),
            ("gzip;q=nan", false),
            ("gzip;q=-1", false),
            (";;;,,,=", false),
            ("gzip;level=9", true),
        ] {
            assert_eq!(accepts_gzip(header), gzip, "{header:?}");
        }
        assert!(!accepts_gzip(&"x,".repeat(100_000)));
    }

    fn q(pairs: &[(&str, &str)]) -> Result<SnapshotQuery, ApiError> {
        let params: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_snapshot_query(&params)
    }

    #[test]
    fn bad_filters_are_rejected_with_a_reason() {
        for (pairs, code) in [
            (vec![("since", "yesterday")], "invalid_time"),
            (vec![("limit", "-1")], "invalid_limit"),
            (vec![("limit", "0")], "invalid_limit"),
            (vec![("limit", "1001")], "invalid_limit"),
            (vec![("kind", "telemetry.nope")], "unknown_kind"),
            (vec![("bogus", "1")], "unknown_parameter"),
            (vec![("limit", "1"), ("limit", "2")], "repeated_parameter"),
            (
                vec![
                    ("since", "2026-11-28T03:00:00Z"),
                    ("until", "2026-11-28T02:00:00Z"),
                ],
                "invalid_range",
            ),
        ] {
            let err = q(&pairs).unwrap_err();
            assert_eq!((err.status, err.error), (400, code), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn good_filters_parse() {
        let query = q(&[
            ("kind", "telemetry.kafka.readiness"),
            ("service", "kafka-readiness"),
            ("since", "2026-11-28T02:00:00+01:00"),
            ("limit", "5"),
        ])
        .unwrap();
        assert_eq!(query.limit, 5);
        assert_eq!(
            query.since.unwrap().to_rfc3339(),
            "2026-11-28T01:00:00+00:00"
        );
        assert_eq!(q(&[]).unwrap().limit, DEFAULT_LIMIT);
    }
}
