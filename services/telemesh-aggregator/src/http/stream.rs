//! Owns `GET /api/v1/stream?kind=&service=`: every newly journaled snapshot as a server-sent
//! event (`event: snapshot`, `id: <snapshot id>`, `data: <snapshot JSON>`), with a keep-alive
//! comment every 15 s and an `event: lagged` when a slow reader missed some. Read by the
//! summary page (live updates) and `telemesh tail`.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use telemesh_core::{topics, Snapshot};
use tokio::sync::broadcast::error::RecvError;

use super::api::check_params;
use super::{ApiError, AppState};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A `kind` parameter, checked against the kind pattern (listed in the catalogue or not).
pub(super) fn known_kind(v: &str) -> Result<String, ApiError> {
    match topics::kind_problem(v) {
        None => Ok(v.to_owned()),
        Some(problem) => Err(ApiError::bad_request("unknown_kind", problem)),
    }
}

/// Which snapshots a reader wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFilter {
    pub kind: Option<String>,
    pub service: Option<String>,
}

impl StreamFilter {
    pub fn parse(params: &[(String, String)]) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        for (k, v) in check_params(params, &["kind", "service"])? {
            match k {
                "kind" => filter.kind = Some(known_kind(v)?),
                _ if v.trim().is_empty() || v.len() > 200 => {
                    return Err(ApiError::bad_request(
                        "invalid_service",
                        "service must be 1 to 200 characters",
                    ))
                }
                _ => filter.service = Some(v.to_owned()),
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, s: &Snapshot) -> bool {
        self.kind.as_ref().is_none_or(|k| *k == s.kind)
            && self.service.as_ref().is_none_or(|v| *v == s.source.service)
    }
}

/// One snapshot as an SSE event (JSON has no raw newlines, so one `data:` line).
pub fn event(s: &Snapshot) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "{}".into());
    format!("event: snapshot\nid: {}\ndata: {json}\n\n", s.id)
}

#[utoipa::path(get, path = "/api/v1/stream", tag = "summary",
    params(("kind" = Option<String>, Query, description = "only this snapshot kind"),
        ("service" = Option<String>, Query, description = "only this service")),
    responses((status = 200, description = "Server-sent events: `event: snapshot`, `data:` a Snapshot (JSON)", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad filter", body = super::openapi::ErrorDoc)))]
pub(super) async fn stream(
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let filter = StreamFilter::parse(&params)?;
    let rx = state.live.subscribe();
    let mut tick = tokio::time::interval(KEEP_ALIVE);
    tick.reset(); // the first tick comes after KEEP_ALIVE, not at once
    let hello = futures::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b"retry: 2000\n: connected\n\n"))
    });
    let events = futures::stream::unfold(
        (rx, tick, filter),
        |(mut rx, mut tick, filter)| async move {
            loop {
                let chunk = tokio::select! {
                    received = rx.recv() => match received {
                        Ok(s) if filter.matches(&s) => event(&s),
                        Ok(_) => continue,
                        Err(RecvError::Lagged(n)) => format!("event: lagged\ndata: {n}\n\n"),
                        Err(RecvError::Closed) => return None,
                    },
                    _ = tick.tick() => ": keep-alive\n\n".to_owned(),
                };
                return Some((Ok::<_, Infallible>(Bytes::from(chunk)), (rx, tick, filter)));
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(futures::StreamExt::chain(hello, events)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemesh_core::Source;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_parse_and_hostile_ones_are_refused() {
        let f = StreamFilter::parse(&p(&[
            ("kind", "telemetry.kafka.readiness"),
            ("service", "kr"),
        ]))
        .unwrap();
        let mut s = Snapshot::new(
            "telemetry.kafka.readiness",
            Source::new("kr", "a"),
            chrono::Utc::now(),
        );
        assert!(f.matches(&s));
        s.source.service = "other".into();
        assert!(!f.matches(&s));
        for (pairs, code) in [
            (vec![("kind", "<script>")], "unknown_kind"),
            (vec![("service", "")], "invalid_service"),
            (vec![("service", &"x".repeat(201)[..])], "invalid_service"),
            (vec![("x", "1")], "unknown_parameter"),
            (vec![("kind", "a"), ("kind", "b")], "repeated_parameter"),
        ] {
            let err = StreamFilter::parse(&p(&pairs)).unwrap_err();
            assert_eq!((err.status, err.error), (400, code), "{pairs:?}");
        }
    }

    #[test]
    fn an_event_is_one_data_line() {
        let mut s = Snapshot::new("k", Source::new("a", "b"), chrono::Utc::now());
        s.summary = "line one\nline two\r\n: not a comment".into();
        let e = event(&s);
        assert_eq!(e.matches("\ndata: ").count(), 1);
        assert!(e.ends_with("\n\n"));
        assert_eq!(e.lines().filter(|l| !l.is_empty()).count(), 3);
    }
}
