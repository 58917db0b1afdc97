//! Owns the HTTP intake, `POST /api/v1/snapshots`: producers that do not speak Kafka send one
//! snapshot (a JSON object) or a batch (a JSON array) with a bearer token; each is checked like
//! a Kafka record (envelope, limits of `telemesh_core::limits`, kind pattern, producer clock
//! skew) and, only when every one passes, published to its kind's topic through the
//! aggregator's own publisher. The answer is 202 once the transport acknowledged every one
//! (Kafka: `acks=all`; standalone: the in-process bus accepted it). A bad request publishes
//! nothing and gets a 4xx JSON `{error, detail}` naming the problem (and the `index` of the
//! offending snapshot in a batch).
//!
//! Disabled unless `[aggregator] intake_token` is set: the endpoint then answers 403 naming
//! that setting.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::json;
use telemesh_core::auth;
use telemesh_core::codec::{self, CodecError, ContentType};
use telemesh_core::config::Secret;
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_core::{limits, topics, Encoding, Snapshot};

use super::openapi::{ErrorDoc, IntakeAcceptedDoc, IntakeErrorDoc, IntakePartialDoc};
use super::AppState;
use crate::settings::AggregatorSettings;

/// The configuration key of the intake token, named in refusals.
pub const TOKEN_SETTING: &str = "aggregator.intake_token";

/// Publish attempts per snapshot before the request answers 503 (the client retries the
/// batch; the journal deduplicates by snapshot id).
const PUBLISH_ATTEMPTS: u32 = 3;

/// What the intake handler needs.
#[derive(Debug, Clone)]
pub struct Intake {
    publisher: SnapshotPublisher,
    topic_prefix: String,
    token: Secret,
    max_batch: usize,
    max_body_bytes: usize,
    max_future_skew: chrono::Duration,
}

impl Intake {
    /// Intake over the aggregator's `publisher`, under `topic_prefix`.
    pub fn new(
        settings: &AggregatorSettings,
        publisher: Arc<dyn Publisher>,
        topic_prefix: &str,
    ) -> Self {
        Self {
            publisher: SnapshotPublisher::new(publisher, Encoding::Bincode, topic_prefix)
                .with_max_attempts(PUBLISH_ATTEMPTS),
            topic_prefix: topic_prefix.to_owned(),
            token: settings.intake_token.clone(),
            max_batch: settings.intake_max_batch,
            max_body_bytes: settings.intake_max_body_bytes,
            max_future_skew: chrono::Duration::seconds(
                settings.max_future_skew_seconds.min(i64::MAX as u64) as i64,
            ),
        }
    }
}

/// Why a request body was refused; nothing of it was published.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub error: &'static str,
    pub detail: String,
    /// The offending snapshot's position in a batch (0 for a single snapshot).
    pub index: Option<usize>,
    /// The dead-letter reason the Kafka path would give (`invalid_text`, `too_deep`, …).
    pub reason: Option<&'static str>,
}

impl Problem {
    fn new(status: u16, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            error,
            detail: detail.into(),
            index: None,
            reason: None,
        }
    }

    fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    fn response(&self) -> HttpResponse {
        let mut body = json!({ "error": self.error, "detail": self.detail });
        if let Some(index) = self.index {
            body["index"] = json!(index);
        }
        if let Some(reason) = self.reason {
            body["reason"] = json!(reason);
        }
        HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST))
            .json(body)
    }
}

fn codec_problem(e: CodecError) -> Problem {
    let mut p = Problem::new(400, "invalid_snapshot", e.to_string());
    p.reason = Some(e.class());
    p
}

/// Up to `max` JSON values of an array, refusing the array as soon as it holds more.
struct Bounded {
    max: usize,
}

/// The marker of an over-long batch inside a serde error.
const TOO_MANY: &str = "intake batch longer than the limit";

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Vec<serde_json::Value>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = Vec<serde_json::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an array of at most {} snapshots", self.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(value) = seq.next_element::<serde_json::Value>()? {
            if out.len() == self.max {
                return Err(de::Error::custom(TOO_MANY));
            }
            out.push(value);
        }
        Ok(out)
    }
}

/// Checks one snapshot's JSON exactly as the Kafka path decodes a JSON record, then its kind
/// and clock.
fn check_one(json: &[u8], now: DateTime<Utc>, skew: chrono::Duration) -> Result<Snapshot, Problem> {
    let content_type = ContentType::current(Encoding::Json).to_string();
    let snapshot = codec::decode(Some(&content_type), json).map_err(codec_problem)?;
    if let Some(problem) = topics::kind_problem(&snapshot.kind) {
        let mut p = Problem::new(400, "invalid_kind", problem);
        p.reason = Some("malformed");
        return Err(p);
    }
    limits::check_clock(&snapshot, now, skew).map_err(codec_problem)?;
    Ok(snapshot)
}

/// Parses and checks a request body: one snapshot object or an array of 1 to `max_batch`.
/// Every snapshot must pass; the first that does not decides the answer.
pub fn parse_body(
    body: &[u8],
    max_batch: usize,
    now: DateTime<Utc>,
    skew: chrono::Duration,
) -> Result<Vec<Snapshot>, Problem> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'{') => Ok(vec![check_one(body, now, skew).map_err(|p| p.at(0))?]),
        Some(b'[') => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let values = Bounded { max: max_batch }
                .deserialize(&mut de)
                .and_then(|v| de.end().map(|()| v))
                .map_err(|e| {
                    if e.to_string().contains(TOO_MANY) {
                        Problem::new(
                            413,
                            "batch_too_large",
                            format!(
                                "a batch holds at most {max_batch} snapshots \
                                 ([aggregator] intake_max_batch); split it"
                            ),
                        )
                    } else {
                        Problem::new(400, "invalid_json", format!("the body is not JSON: {e}"))
                    }
                })?;
            if values.is_empty() {
                return Err(Problem::new(
                    400,
                    "empty_batch",
                    "the array holds no snapshot; send one snapshot object or a non-empty array",
                ));
            }
            values
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    if !value.is_object() {
                        return Err(Problem::new(
                            400,
                            "invalid_snapshot",
                            "each element of the array must be a snapshot object",
                        )
                        .at(i));
                    }
                    let bytes = serde_json::to_vec(value)
                        .map_err(|e| Problem::new(400, "invalid_json", e.to_string()).at(i))?;
                    check_one(&bytes, now, skew).map_err(|p| p.at(i))
                })
                .collect()
        }
        _ => Err(Problem::new(
            400,
            "invalid_json",
            "the body must be one snapshot (a JSON object) or a JSON array of snapshots \
             (docs/snapshot.md)",
        )),
    }
}

/// One published snapshot in the 202 answer.
#[derive(Debug, Serialize)]
struct Accepted {
    id: uuid::Uuid,
    kind: String,
    topic: String,
    partition: i32,
    offset: i64,
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v.ends_with("+json"))
}

/// `POST /api/v1/snapshots`.
#[utoipa::path(post, path = "/api/v1/snapshots", tag = "snapshots",
    request_body(content = Object, content_type = "application/json",
        description = "One snapshot (the envelope of docs/snapshot.md, components.schemas.Snapshot) or an array of 1 to [aggregator] intake_max_batch (default 100) of them; at most [aggregator] intake_max_body_bytes (default 4 MiB)"),
    security(("bearer" = [])),
    responses((status = 202, description = "Every snapshot was published to its kind's topic and acknowledged by the transport", body = IntakeAcceptedDoc),
        (status = 400, description = "Malformed JSON, a snapshot that breaks the contract or a limit, an invalid kind, a clock too far ahead; nothing was published", body = IntakeErrorDoc),
        (status = 401, description = "No bearer token, or a malformed Authorization header", body = ErrorDoc),
        (status = 403, description = "Wrong token, or intake disabled (no [aggregator] intake_token)", body = ErrorDoc),
        (status = 413, description = "Body or batch larger than the limits; nothing was published", body = IntakeErrorDoc),
        (status = 415, description = "Content-Type is not application/json", body = ErrorDoc),
        (status = 503, description = "The transport did not acknowledge every snapshot; retry the whole request (the journal deduplicates by snapshot id)", body = IntakePartialDoc)))]
pub(super) async fn publish(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let intake = &state.intake;
    // the token first: an unauthenticated body is never read
    let header = req.headers().get("authorization").map(|v| v.as_bytes());
    if let Err(refusal) = auth::check_bearer(header, &intake.token, TOKEN_SETTING) {
        return telemesh_service::refused(refusal);
    }
    if !is_json(&req) {
        return Problem::new(
            415,
            "unsupported_media_type",
            "send Content-Type: application/json",
        )
        .response();
    }
    let body = match payload.to_bytes_limited(intake.max_body_bytes).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return Problem::new(
                400,
                "invalid_body",
                format!("cannot read the request body: {e}; send it again"),
            )
            .response()
        }
        Err(_) => {
            return Problem::new(
                413,
                "body_too_large",
                format!(
                    "the body is larger than {} bytes ([aggregator] intake_max_body_bytes); \
                     send fewer snapshots per request",
                    intake.max_body_bytes
                ),
            )
            .response()
        }
    };
    let snapshots = match parse_body(&body, intake.max_batch, Utc::now(), intake.max_future_skew) {
        Ok(s) => s,
        Err(problem) => {
            tracing::info!(error = problem.error, detail = %problem.detail, index = ?problem.index, "intake request refused");
            return problem.response();
        }
    };
    // all at once (the transport enqueues them in request order and awaits every
    // acknowledgement together), so a batch costs about one round trip, not one per snapshot
    let outcomes = futures::future::join_all(
        snapshots
            .iter()
            .map(|snapshot| intake.publisher.publish(snapshot)),
    )
    .await;
    let mut accepted = Vec::with_capacity(snapshots.len());
    let mut failed = Vec::new();
    for (i, (snapshot, outcome)) in snapshots.iter().zip(outcomes).enumerate() {
        match outcome {
            Ok(delivered) => accepted.push(Accepted {
                id: snapshot.id,
                kind: snapshot.kind.clone(),
                topic: topics::topic_name(&intake.topic_prefix, &snapshot.kind),
                partition: delivered.partition,
                offset: delivered.offset,
            }),
            Err(e) => {
                tracing::warn!(error = %e, kind = %snapshot.kind, id = %snapshot.id, "intake publish failed");
                failed.push(format!("snapshot {i} ({}): {e}", snapshot.id));
            }
        }
    }
    if !failed.is_empty() {
        return HttpResponse::ServiceUnavailable().json(json!({
            "error": "unavailable",
            "detail": format!(
                "{} of {} snapshots were not acknowledged ({}); retry the whole request \
                 (snapshots already published are journaled once, by id)",
                failed.len(),
                snapshots.len(),
                failed.join("; ")
            ),
            "published": accepted,
        }));
    }
    tracing::info!(count = accepted.len(), "intake request published");
    HttpResponse::Accepted().json(json!({ "accepted": accepted.len(), "snapshots": accepted }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemesh_core::{Component, Grade, Source};

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn skew() -> chrono::Duration {
        chrono::Duration::seconds(300)
    }

    fn valid(kind: &str) -> serde_json::Value {
        let mut s = Snapshot::new(kind, Source::new("team-x", "host-1"), Utc::now());
        s.push(Component::new("feed", Grade::Ok, "fresh"));
        s.summary = "fresh".into();
        serde_json::to_value(&s).unwrap()
    }

    fn problem(body: &[u8]) -> Problem {
        parse_body(body, 3, now(), skew()).unwrap_err()
    }

    #[test]
    fn one_object_or_a_bounded_array_of_valid_snapshots_passes() {
        let one = serde_json::to_vec(&valid("telemetry.team_x.feed")).unwrap();
        assert_eq!(parse_body(&one, 3, now(), skew()).unwrap().len(), 1);
        let three = serde_json::to_vec(&json!([
            valid("telemetry.team_x.feed"),
            valid("telemetry.kafka.readiness"),
            valid("telemetry.team_y.other")
        ]))
        .unwrap();
        let parsed = parse_body(&three, 3, now(), skew()).unwrap();
        assert_eq!(parsed[2].kind, "telemetry.team_y.other");
    }

    #[test]
    fn hostile_bodies_are_refused_naming_the_problem() {
        let mut nul = valid("telemetry.team_x.feed");
        nul["summary"] = json!("a\u{0}b");
        let mut wrong_type = valid("telemetry.team_x.feed");
        wrong_type["status"] = json!(3);
        let mut bad_kind = valid("telemetry.team_x.feed");
        bad_kind["kind"] = json!("telemetry.dlq");
        let mut future = valid("telemetry.team_x.feed");
        future["generated_at"] = json!((Utc::now() + chrono::Duration::hours(1)).to_rfc3339());
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        let mut too_deep = valid("telemetry.team_x.feed");
        too_deep["components"][0]["details"] = json!({ "x": deep });
        let four = json!([
            valid("telemetry.a.b"),
            valid("telemetry.a.b"),
            valid("telemetry.a.b"),
            valid("telemetry.a.b")
        ]);
        // (body, status, error, index, reason)
        type Case = (
            Vec<u8>,
            u16,
            &'static str,
            Option<usize>,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (b"".to_vec(), 400, "invalid_json", None, None),
            (b"not json".to_vec(), 400, "invalid_json", None, None),
            (b"\"a string\"".to_vec(), 400, "invalid_json", None, None),
            (
                b"{".to_vec(),
                400,
                "invalid_snapshot",
                Some(0),
                Some("malformed"),
            ),
            (b"[".to_vec(), 400, "invalid_json", None, None),
            (b"[] trailing".to_vec(), 400, "invalid_json", None, None),
            (b"[]".to_vec(), 400, "empty_batch", None, None),
            (b"[1]".to_vec(), 400, "invalid_snapshot", Some(0), None),
            (
                b"{}".to_vec(),
                400,
                "invalid_snapshot",
                Some(0),
                Some("malformed"),
            ),
            (
                serde_json::to_vec(&nul).unwrap(),
                400,
                "invalid_snapshot",
                Some(0),
                Some("invalid_text"),
            ),
            (
                serde_json::to_vec(&wrong_type).unwrap(),
                400,
                "invalid_snapshot",
                Some(0),
                Some("malformed"),
            ),
            (
                serde_json::to_vec(&bad_kind).unwrap(),
                400,
                "invalid_kind",
                Some(0),
                Some("malformed"),
            ),
            (
                serde_json::to_vec(&future).unwrap(),
                400,
                "invalid_snapshot",
                Some(0),
                Some("future_generated_at"),
            ),
            (
                serde_json::to_vec(&too_deep).unwrap(),
                400,
                "invalid_snapshot",
                Some(0),
                Some("too_deep"),
            ),
            (
                serde_json::to_vec(&json!([valid("telemetry.a.b"), bad_kind])).unwrap(),
                400,
                "invalid_kind",
                Some(1),
                Some("malformed"),
            ),
            (
                serde_json::to_vec(&four).unwrap(),
                413,
                "batch_too_large",
                None,
                None,
            ),
        ];
        for (body, status, error, index, reason) in cases {
            let p = problem(&body);
            let shown = String::from_utf8_lossy(&body);
            assert_eq!((p.status, p.error), (status, error), "{shown}: {p:?}");
            assert_eq!(p.index, index, "{shown}: {p:?}");
            if reason.is_some() {
                assert_eq!(p.reason, reason, "{shown}: {p:?}");
            }
            assert!(!p.detail.is_empty());
        }
    }
}
