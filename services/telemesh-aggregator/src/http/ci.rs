//! Owns the CI history read API (issue 13): `GET /api/v1/ci/tests?since=&commit=&test=&limit=
//! &offset=` (per-test results), `GET /api/v1/ci/coverage?since=&limit=&offset=` (coverage and
//! formatter entries) and `GET /api/v1/ci/runs?since=&commit=&limit=&offset=` (completed
//! pipeline runs), oldest first, from the tables `journal/ci.rs` fills. What the CI domain
//! seeds its state from and `telemesh ci flakes` reads. Hostile parameters are answered 400.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::api::{check_params, parse_time};
use super::{ApiError, AppState};
use crate::actors::journal::CiHistory;
use crate::journal::ci::{CiQuery, CiTable, MAX_LIMIT, MAX_OFFSET};

/// The longest `commit` or `test` parameter.
pub const MAX_FILTER_CHARS: usize = 1024;

fn number(
    name: &'static str,
    code: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(
                code,
                format!(
                    "{name}={:?} must be a whole number from {} to {}",
                    value.chars().take(40).collect::<String>(),
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn filter(name: &'static str, code: &'static str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > MAX_FILTER_CHARS || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            code,
            format!("{name} must be 1 to {MAX_FILTER_CHARS} printable characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Parses the query of one CI endpoint (`allowed` names its parameters).
pub fn parse_query(params: &[(String, String)], allowed: &[&str]) -> Result<CiQuery, ApiError> {
    let mut q = CiQuery::default();
    for (k, v) in check_params(params, allowed)? {
        match k {
            "since" => q.since = Some(parse_time("since", v)?),
            "limit" => q.limit = number("limit", "invalid_limit", v, 1..=MAX_LIMIT)?,
            "offset" => q.offset = number("offset", "invalid_offset", v, 0..=MAX_OFFSET)?,
            "commit" => q.commit = Some(filter("commit", "invalid_commit", v)?),
            "test" => q.test = Some(filter("test", "invalid_test", v)?),
            _ => {}
        }
    }
    Ok(q)
}

/// A page of `GET /api/v1/ci/tests`: `count` rows, oldest first (ask for the next page with
/// `offset` + `count` while `count` = `limit`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CiTestsPage)]
pub struct TestsPageDoc {
    pub count: usize,
    pub entries: Vec<crate::journal::ci::TestResultRow>,
}

/// A page of `GET /api/v1/ci/coverage`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CiCoveragePage)]
pub struct CoveragePageDoc {
    pub count: usize,
    pub entries: Vec<crate::journal::ci::TrendRow>,
}

/// A page of `GET /api/v1/ci/runs`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CiRunsPage)]
pub struct RunsPageDoc {
    pub count: usize,
    pub entries: Vec<crate::journal::ci::RunRow>,
}

async fn read(state: &AppState, table: CiTable, query: CiQuery) -> Result<HttpResponse, ApiError> {
    let page = state
        .journal
        .send(CiHistory(table, query))
        .await
        .map_err(|e| ApiError::unavailable(format!("journal actor: {e}")))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "count": page.len(),
        "entries": page,
    })))
}

#[utoipa::path(get, path = "/api/v1/ci/tests", tag = "ci",
    params(("since" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("commit" = Option<String>, Query, description = "only this commit"),
        ("test" = Option<String>, Query, description = "only this test id (classname::name)"),
        ("limit" = Option<u32>, Query, description = "1 to 10000, default 1000"),
        ("offset" = Option<u32>, Query, description = "rows to skip, 0 to 1000000")),
    responses((status = 200, description = "Per-test results of uploaded reports, oldest first", body = TestsPageDoc), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn tests(
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let query = parse_query(&params, &["since", "commit", "test", "limit", "offset"])?;
    read(&state, CiTable::Tests, query).await
}

#[utoipa::path(get, path = "/api/v1/ci/coverage", tag = "ci",
    params(("since" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("limit" = Option<u32>, Query, description = "1 to 10000, default 1000"),
        ("offset" = Option<u32>, Query, description = "rows to skip, 0 to 1000000")),
    responses((status = 200, description = "Coverage and formatter entries, oldest first", body = CoveragePageDoc), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn coverage(
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let query = parse_query(&params, &["since", "limit", "offset"])?;
    read(&state, CiTable::Trends, query).await
}

#[utoipa::path(get, path = "/api/v1/ci/runs", tag = "ci",
    params(("since" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("commit" = Option<String>, Query, description = "only this commit"),
        ("limit" = Option<u32>, Query, description = "1 to 10000, default 1000"),
        ("offset" = Option<u32>, Query, description = "rows to skip, 0 to 1000000")),
    responses((status = 200, description = "Completed pipeline runs, oldest first", body = RunsPageDoc), (status = 400, description = "Bad query", body = super::openapi::ErrorDoc), (status = 503, description = "A dependency is down", body = super::openapi::ErrorDoc)))]
pub(super) async fn runs(
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let query = parse_query(&params, &["since", "commit", "limit", "offset"])?;
    read(&state, CiTable::Runs, query).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &["since", "commit", "test", "limit", "offset"];

    fn q(pairs: &[(&str, &str)]) -> Result<CiQuery, ApiError> {
        let params: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_query(&params, ALL)
    }

    #[test]
    fn hostile_parameters_are_refused_by_name() {
        let long = "x".repeat(MAX_FILTER_CHARS + 1);
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("limit", "0")], "invalid_limit"),
            (vec![("limit", "10001")], "invalid_limit"),
            (vec![("limit", "-1")], "invalid_limit"),
            (vec![("limit", "1e3")], "invalid_limit"),
            (vec![("limit", "99999999999999999999")], "invalid_limit"),
            (vec![("offset", "1000001")], "invalid_offset"),
            (vec![("since", "yesterday")], "invalid_time"),
            (vec![("since", "2026-13-45T99:00:00Z")], "invalid_time"),
            (vec![("commit", "")], "invalid_commit"),
            (vec![("commit", "a\0b")], "invalid_commit"),
            (vec![("test", "t\nx")], "invalid_test"),
            (vec![("test", &long)], "invalid_test"),
            (vec![("kind", "x")], "unknown_parameter"),
            (vec![("limit", "1"), ("limit", "2")], "repeated_parameter"),
        ];
        for (pairs, code) in cases {
            let err = q(&pairs).expect_err(&format!("{pairs:?}"));
            assert_eq!(err.error, code, "{pairs:?}");
        }
        // a parameter another endpoint takes is unknown here
        let params = vec![("test".to_owned(), "t".to_owned())];
        assert_eq!(
            parse_query(&params, &["since", "limit", "offset"])
                .expect_err("test on coverage")
                .error,
            "unknown_parameter"
        );
    }

    #[test]
    fn the_openapi_document_has_the_three_reads() {
        let doc = crate::http::openapi::document();
        for (path, schema) in [
            ("/api/v1/ci/tests", "CiTestsPage"),
            ("/api/v1/ci/coverage", "CiCoveragePage"),
            ("/api/v1/ci/runs", "CiRunsPage"),
        ] {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
            assert!(
                doc["components"]["schemas"][schema]["properties"]["entries"].is_object(),
                "{schema}"
            );
        }
        assert!(doc["components"]["schemas"]["TestResultRow"].is_object());
    }

    #[test]
    fn good_parameters_set_the_query_at_the_bounds() {
        assert_eq!(q(&[]).expect("empty"), CiQuery::default());
        let got = q(&[
            ("since", "2026-11-30T01:00:00+01:00"),
            ("commit", "abc"),
            ("test", "pkg.mod::test_x[1-2]"),
            ("limit", "10000"),
            ("offset", "1000000"),
        ])
        .expect("valid");
        assert_eq!(
            got.since.map(|t| t.to_rfc3339()),
            Some("2026-11-30T00:00:00+00:00".to_owned())
        );
        assert_eq!(got.commit.as_deref(), Some("abc"));
        assert_eq!(got.test.as_deref(), Some("pkg.mod::test_x[1-2]"));
        assert_eq!((got.limit, got.offset), (MAX_LIMIT, MAX_OFFSET));
        assert_eq!(q(&[("limit", "1"), ("offset", "0")]).expect("low").limit, 1);
    }
}
