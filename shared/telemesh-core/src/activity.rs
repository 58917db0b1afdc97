//! Owns the drill and training activity record shared by incident-response (which grades how
//! long ago the last one was) and the aggregator (which journals them): the type, and the
//! validation of a JSON body received from outside, which names the field at fault.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How far in the future an activity's `at` may lie (clock skew).
pub const MAX_FUTURE_SKEW_SECONDS: i64 = 300;
/// Longest accepted `by`.
pub const MAX_BY_CHARS: usize = 200;
/// Longest accepted `note`.
pub const MAX_NOTE_CHARS: usize = 8000;

/// What kind of readiness activity happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    /// An incident drill (game day, alert drill, failover exercise).
    Drill,
    /// An incident-response training session.
    Training,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Drill => "drill",
            ActivityKind::Training => "training",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    pub kind: ActivityKind,
    pub at: DateTime<Utc>,
    pub by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A rejected activity: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct InvalidActivity {
    pub field: String,
    pub detail: String,
}

impl InvalidActivity {
    fn new(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// The body `POST /api/v1/activities` accepts: `at` defaults to the time it is received.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityRequest {
    kind: Option<serde_json::Value>,
    at: Option<serde_json::Value>,
    by: Option<serde_json::Value>,
    note: Option<serde_json::Value>,
}

/// Validates a JSON activity body received at `now`; the error names the field at fault.
pub fn validate(body: &[u8], now: DateTime<Utc>) -> Result<Activity, InvalidActivity> {
    let raw: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        InvalidActivity::new(
            "body",
            format!("is not JSON ({e}): send {{\"kind\": \"drill\", \"by\": \"alice\"}}"),
        )
    })?;
    if !raw.is_object() {
        return Err(InvalidActivity::new(
            "body",
            "must be a JSON object with kind, by and optionally at and note",
        ));
    }
    let req: ActivityRequest = serde_json::from_value(raw).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.starts_with("unknown field"))
            .unwrap_or("body")
            .to_owned();
        InvalidActivity {
            field,
            detail: "is not accepted: send only kind, at, by and note".into(),
        }
    })?;
    let kind = match req.kind.as_ref().and_then(|v| v.as_str()) {
        Some(k) if k.trim().eq_ignore_ascii_case("drill") => ActivityKind::Drill,
        Some(k) if k.trim().eq_ignore_ascii_case("training") => ActivityKind::Training,
        Some(k) => {
            return Err(InvalidActivity::new(
                "kind",
                format!("{k:?} is not an activity kind: use \"drill\" or \"training\""),
            ))
        }
        None => {
            return Err(InvalidActivity::new(
                "kind",
                "is required: \"drill\" or \"training\"",
            ))
        }
    };
    let at = match &req.at {
        None | Some(serde_json::Value::Null) => now,
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                InvalidActivity::new(
                    "at",
                    format!("{s:?} is not an RFC 3339 time ({e}): e.g. 2026-11-02T10:00:00Z, or leave it out for now"),
                )
            })?,
        Some(other) => {
            return Err(InvalidActivity::new(
                "at",
                format!("{other} is not a string: send an RFC 3339 time such as 2026-11-02T10:00:00Z"),
            ))
        }
    };
    if at > now + Duration::seconds(MAX_FUTURE_SKEW_SECONDS) {
        return Err(InvalidActivity::new(
            "at",
            format!(
                "{} lies in the future: record activities that happened",
                at.to_rfc3339()
            ),
        ));
    }
    let by = match req.by.as_ref().and_then(|v| v.as_str()).map(str::trim) {
        Some(by) if !by.is_empty() && by.chars().count() <= MAX_BY_CHARS => by.to_owned(),
        Some(by) if !by.is_empty() => {
            return Err(InvalidActivity::new(
                "by",
                format!("is longer than {MAX_BY_CHARS} characters"),
            ))
        }
        _ => {
            return Err(InvalidActivity::new(
                "by",
                "is required: who ran or attended it, e.g. \"alice\"",
            ))
        }
    };
    let note = match &req.note {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(n)) if n.chars().count() <= MAX_NOTE_CHARS => {
            n.trim().to_owned()
        }
        Some(serde_json::Value::String(_)) => {
            return Err(InvalidActivity::new(
                "note",
                format!("is longer than {MAX_NOTE_CHARS} characters"),
            ))
        }
        Some(_) => return Err(InvalidActivity::new("note", "must be a string")),
    };
    Ok(Activity { kind, at, by, note })
}

/// The newest activity of each kind, as the aggregator's `GET /api/v1/activities/latest`
/// answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatestActivities {
    pub last_drill: Option<Activity>,
    pub last_training: Option<Activity>,
    /// How many activities are recorded in all.
    pub entries: u64,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn validation_names_the_field() {
        let cases: [(&str, &str); 12] = [
            ("not json", "body"),
            ("[1]", "body"),
            (r#"{"by":"a"}"#, "kind"),
            (r#"{"kind":"party","by":"a"}"#, "kind"),
            (r#"{"kind":"drill"}"#, "by"),
            (r#"{"kind":"drill","by":"  "}"#, "by"),
            (r#"{"kind":"drill","by":7}"#, "by"),
            (r#"{"kind":"drill","by":"a","at":"yesterday"}"#, "at"),
            (r#"{"kind":"drill","by":"a","at":5}"#, "at"),
            (
                r#"{"kind":"drill","by":"a","at":"2026-11-11T12:00:00Z"}"#,
                "at",
            ),
            (r#"{"kind":"drill","by":"a","note":5}"#, "note"),
            (r#"{"kind":"drill","by":"a","whom":"b"}"#, "whom"),
        ];
        for (body, field) in cases {
            let err = validate(body.as_bytes(), now()).expect_err(body);
            assert_eq!(err.field, field, "{body}: {err}");
        }
        let a = validate(
            br#"{"kind":"Drill","by":" alice ","note":"failover"}"#,
            now(),
        )
        .expect("valid");
        assert_eq!(
            (a.kind, a.at, a.by.as_str(), a.note.as_str()),
            (ActivityKind::Drill, now(), "alice", "failover")
        );
    }
}
