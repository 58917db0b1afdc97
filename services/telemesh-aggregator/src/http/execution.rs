//! Owns `GET /api/v1/execution/journal?since=&limit=&service=`: the execution journal's
//! recent rows (newest first), the latest one and the totals (DOMAINS.md §5.4).

use actix_web::{web, HttpResponse};

use super::api::{check_params, parse_time};
use super::{ApiError, AppState};
use crate::actors::journal::ExecutionJournal;
use crate::journal::execution::{ExecutionQuery, MAX_LIMIT};

/// Parses the query: `since` (RFC 3339), `limit` (1 to [`MAX_LIMIT`], default
/// `journal::execution::DEFAULT_LIMIT`), `service`.
pub fn parse_query(params: &[(String, String)]) -> Result<ExecutionQuery, ApiError> {
    let mut q = ExecutionQuery::default();
    for (k, v) in check_params(params, &["since", "limit", "service"])? {
        match k {
            "since" => q.since = Some(parse_time("since", v)?),
            "limit" => {
                q.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_limit",
                            format!("limit={v:?} must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?
            }
            "service" => {
                if v.trim().is_empty() || v.len() > 200 {
                    return Err(ApiError::bad_request(
                        "invalid_service",
                        "service must be 1 to 200 characters",
                    ));
                }
                q.service = Some(v.to_owned());
            }
            _ => {}
        }
    }
    Ok(q)
}

#[utoipa::path(get, path = "/api/v1/execution/journal", tag = "journal",
    params(("since" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 5"),
        ("service" = Option<String>, Query, description = "service name")),
    responses((status = 200, description = "Execution journal rows, newest first, the latest and the totals", body = super::openapi::ExecutionJournalDoc), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn journal(
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let query = parse_query(&params)?;
    let view = state
        .journal
        .send(ExecutionJournal(query))
        .await
        .map_err(|e| ApiError::unavailable(format!("journal actor: {e}")))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "count": view.recent.len(),
        "entries": view.recent,
        "latest": view.latest,
        "totals": view.totals,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<ExecutionQuery, ApiError> {
        let params: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_query(&params)
    }

    #[test]
    fn hostile_queries_are_refused_with_a_reason() {
        for (pairs, code) in [
            (vec![("since", "yesterday")], "invalid_time"),
            (vec![("since", "2026-13-45T99:00:00Z")], "invalid_time"),
            (vec![("limit", "0")], "invalid_limit"),
            (vec![("limit", "-1")], "invalid_limit"),
            (vec![("limit", "501")], "invalid_limit"),
            (vec![("limit", "99999999999999999999")], "invalid_limit"),
            (vec![("service", "")], "invalid_service"),
            (vec![("strategy", "x")], "unknown_parameter"),
            (vec![("limit", "1"), ("limit", "2")], "repeated_parameter"),
        ] {
            let err = q(&pairs).unwrap_err();
            assert_eq!((err.status, err.error), (400, code), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn good_queries_parse_at_the_limits() {
        assert_eq!(q(&[]).unwrap(), ExecutionQuery::default());
        assert_eq!(q(&[("limit", "1")]).unwrap().limit, 1);
        assert_eq!(q(&[("limit", "500")]).unwrap().limit, MAX_LIMIT);
        let with = q(&[
            ("since", "2026-11-30T01:00:00+01:00"),
            ("service", "fix-pilot"),
        ])
        .unwrap();
        assert_eq!(
            with.since.unwrap().to_rfc3339(),
            "2026-11-30T00:00:00+00:00"
        );
        assert_eq!(with.service.as_deref(), Some("fix-pilot"));
    }
}
