//! Owns the ingest run record (DOMAINS.md §5.3), the normalisation of its status words
//! (§3.6.2) and the validation of run reports posted by ingest jobs.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value};
use telemesh_core::Grade;

use crate::settings::valid_dimension;

/// One row of the platform's ingest journal, as the trend rules read it.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRun {
    pub run_id: String,
    pub dimension: String,
    /// The raw status word as written by the job.
    pub status: String,
    pub rows_written: i64,
    pub freshness_seconds: Option<f64>,
    pub ingest_duration_seconds: Option<f64>,
    /// When the run finished (the journal's `executed_at`).
    pub executed_at: DateTime<Utc>,
    pub source: Option<String>,
    pub symbols: Vec<String>,
}

/// The status words a run may carry, and the grade each stands for (§3.6.2).
pub const STATUS_WORDS: [(&str, Grade); 10] = [
    ("ok", Grade::Ok),
    ("success", Grade::Ok),
    ("skipped", Grade::Ok),
    ("warn", Grade::Warn),
    ("warning", Grade::Warn),
    ("degraded", Grade::Warn),
    ("degrade", Grade::Warn),
    ("fail", Grade::Fail),
    ("failed", Grade::Fail),
    ("error", Grade::Fail),
];

/// The grade of a raw status word (case-insensitive, trimmed); `None` for an unknown word.
pub fn known_status(raw: &str) -> Option<Grade> {
    let word = raw.trim().to_ascii_lowercase();
    STATUS_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, g)| *g)
}

/// The trend grade of a raw status: unknown or missing words count as `warn` (§3.6.2).
pub fn normalize_status(raw: &str) -> Grade {
    known_status(raw).unwrap_or(Grade::Warn)
}

/// How far in the future a reported finish time may lie (clock skew).
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// A validated run report, ready to be written to the platform's runs table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    pub run: IngestRun,
    /// The report's `metadata` object (empty when not given).
    pub metadata: Map<String, Value>,
}

impl RunReport {
    /// The `symbols` column value: a JSON array.
    pub fn symbols_json(&self) -> String {
        Value::from(self.run.symbols.clone()).to_string()
    }

    /// The `metadata` column value: a JSON object.
    pub fn metadata_json(&self) -> String {
        Value::Object(self.metadata.clone()).to_string()
    }

    /// `executed_at` as RFC 3339 UTC with microseconds (`…+00:00`).
    pub fn executed_at_text(&self) -> String {
        self.run
            .executed_at
            .to_rfc3339_opts(SecondsFormat::Micros, false)
    }
}

/// Why a run report was rejected: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidReport {
    /// The JSON field at fault (`body` when the body itself is wrong).
    pub field: String,
    pub problem: String,
}

impl InvalidReport {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The fields a report may carry.
pub const REPORT_FIELDS: [&str; 11] = [
    "run_id",
    "dimension",
    "status",
    "rows_written",
    "freshness_seconds",
    "ingest_duration_seconds",
    "started_at",
    "finished_at",
    "source",
    "symbols",
    "metadata",
];

/// Validates a run report (a JSON object) received at `now`. A missing `run_id` gets a fresh
/// UUID v7; a missing `ingest_duration_seconds` is `finished_at − started_at` when both are
/// given. `executed_at` is accepted as another name for `finished_at`.
pub fn validate_report(body: &[u8], now: DateTime<Utc>) -> Result<RunReport, InvalidReport> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        InvalidReport::new(
            "body",
            format!("is not valid JSON ({e}); send one JSON object per run"),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(InvalidReport::new(
            "body",
            "must be a JSON object with the run's fields",
        ));
    };
    if let Some(v) = obj.remove("executed_at") {
        if obj.contains_key("finished_at") {
            return Err(InvalidReport::new(
                "executed_at",
                "give either finished_at or executed_at, not both",
            ));
        }
        obj.insert("finished_at".into(), v);
    }
    if let Some(unknown) = obj.keys().find(|k| !REPORT_FIELDS.contains(&k.as_str())) {
        return Err(InvalidReport::new(
            unknown.clone(),
            format!("is not a run field; allowed: {}", REPORT_FIELDS.join(", ")),
        ));
    }
    let run_id = match optional_text(&obj, "run_id")? {
        Some(id) if id.is_empty() || id.len() > 200 => {
            return Err(InvalidReport::new("run_id", "must be 1 to 200 characters"))
        }
        Some(id) => id,
        None => uuid::Uuid::now_v7().to_string(),
    };
    let dimension = required_text(&obj, "dimension")?;
    if !valid_dimension(&dimension) {
        return Err(InvalidReport::new(
            "dimension",
            format!("{dimension:?} must be 1-100 characters of letters, digits, _ . : - (e.g. daily_bars)"),
        ));
    }
    let status = required_text(&obj, "status")?.to_ascii_lowercase();
    if known_status(&status).is_none() {
        let words: Vec<&str> = STATUS_WORDS.iter().map(|(w, _)| *w).collect();
        return Err(InvalidReport::new(
            "status",
            format!(
                "{status:?} is not a known status; use one of {}",
                words.join(", ")
            ),
        ));
    }
    let rows_written = match obj.get("rows_written") {
        None | Some(Value::Null) => return Err(InvalidReport::new("rows_written", "is required")),
        Some(v) => v.as_i64().ok_or_else(|| {
            InvalidReport::new("rows_written", format!("must be a whole number, got {v}"))
        })?,
    };
    if rows_written < 0 {
        return Err(InvalidReport::new(
            "rows_written",
            format!("must be >= 0, got {rows_written}"),
        ));
    }
    let freshness_seconds = non_negative_number(&obj, "freshness_seconds")?;
    let mut ingest_duration_seconds = non_negative_number(&obj, "ingest_duration_seconds")?;
    let finished_at = optional_time(&obj, "finished_at")?.ok_or_else(|| {
        InvalidReport::new(
            "finished_at",
            "is required: when the run finished (RFC 3339)",
        )
    })?;
    if finished_at > now + Duration::seconds(MAX_CLOCK_SKEW_SECONDS) {
        return Err(InvalidReport::new(
            "finished_at",
            format!("{finished_at} is in the future; send the time the run finished, in UTC or with an offset"),
        ));
    }
    if let Some(started_at) = optional_time(&obj, "started_at")? {
        if finished_at < started_at {
            return Err(InvalidReport::new(
                "finished_at",
                format!("{finished_at} is before started_at {started_at}: a run cannot finish before it starts"),
            ));
        }
        if ingest_duration_seconds.is_none() {
            ingest_duration_seconds =
                Some((finished_at - started_at).num_microseconds().unwrap_or(0) as f64 / 1e6);
        }
    }
    let source = optional_text(&obj, "source")?;
    let symbols = match obj.get("symbols") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| InvalidReport::new("symbols", "must be an array of strings"))?,
        Some(_) => return Err(InvalidReport::new("symbols", "must be an array of strings")),
    };
    let metadata = match obj.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(InvalidReport::new("metadata", "must be a JSON object")),
    };
    Ok(RunReport {
        run: IngestRun {
            run_id,
            dimension,
            status,
            rows_written,
            freshness_seconds,
            ingest_duration_seconds,
            executed_at: finished_at,
            source,
            symbols,
        },
        metadata,
    })
}

fn optional_text(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, InvalidReport> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(v) => Err(InvalidReport::new(
            field,
            format!("must be a string, got {v}"),
        )),
    }
}

fn required_text(obj: &Map<String, Value>, field: &str) -> Result<String, InvalidReport> {
    match optional_text(obj, field)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(InvalidReport::new(field, "is required")),
    }
}

fn non_negative_number(
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<f64>, InvalidReport> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
            Some(n) => Err(InvalidReport::new(
                field,
                format!("must be >= 0 seconds, got {n}"),
            )),
            None => Err(InvalidReport::new(
                field,
                format!("must be a number of seconds, got {v}"),
            )),
        },
    }
}

fn optional_time(
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, InvalidReport> {
    match optional_text(obj, field)? {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                InvalidReport::new(
                    field,
                    format!("{s:?} is not an RFC 3339 time ({e}); use e.g. 2026-11-28T03:00:00Z"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-11-28T12:00:00Z".parse().expect("time")
    }

    fn good() -> Value {
        json!({
            "run_id": "r-1",
            "dimension": "daily_bars",
            "status": "OK",
            "rows_written": 120,
            "freshness_seconds": 30.5,
            "started_at": "2026-11-28T11:00:00Z",
            "finished_at": "2026-11-28T11:10:00Z",
            "source": "vendor",
            "symbols": ["AAPL", "MSFT"],
            "metadata": {"plan": "nightly"}
        })
    }

    fn check(v: &Value) -> Result<RunReport, InvalidReport> {
        validate_report(v.to_string().as_bytes(), now())
    }

    #[test]
    fn statuses_normalise_like_the_journal_table() {
        for (w, g) in [
            ("ok", Grade::Ok),
            (" Success ", Grade::Ok),
            ("skipped", Grade::Ok),
            ("DEGRADED", Grade::Warn),
            ("warning", Grade::Warn),
            ("error", Grade::Fail),
            ("failed", Grade::Fail),
            ("", Grade::Warn),
            ("pending", Grade::Warn),
        ] {
            assert_eq!(normalize_status(w), g, "{w:?}");
        }
        assert_eq!(known_status("pending"), None);
    }

    #[test]
    fn a_good_report_is_accepted_and_normalised() {
        let r = check(&good()).expect("valid");
        assert_eq!(r.run.status, "ok");
        assert_eq!(r.run.ingest_duration_seconds, Some(600.0));
        assert_eq!(r.symbols_json(), r#"["AAPL","MSFT"]"#);
        assert_eq!(r.metadata_json(), r#"{"plan":"nightly"}"#);
        assert_eq!(r.executed_at_text(), "2026-11-28T11:10:00.000000+00:00");
        let mut minimal = json!({"dimension": "macro_events", "status": "skipped", "rows_written": 0, "executed_at": "2026-11-28T11:00:00+01:00"});
        let r = check(&minimal).expect("minimal");
        assert_eq!(r.run.executed_at.to_rfc3339(), "2026-11-28T10:00:00+00:00");
        assert!(!r.run.run_id.is_empty());
        minimal["finished_at"] = json!("2026-11-28T11:00:00Z");
        assert_eq!(check(&minimal).unwrap_err().field, "executed_at");
    }

    #[test]
    fn bad_reports_name_the_field() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("rows_written", json!(-1), "rows_written"),
            ("rows_written", json!(1.5), "rows_written"),
            ("rows_written", Value::Null, "rows_written"),
            ("status", json!("done"), "status"),
            ("status", json!(""), "status"),
            ("dimension", json!("daily bars"), "dimension"),
            ("dimension", json!(7), "dimension"),
            ("finished_at", json!("2026-11-28T10:59:59Z"), "finished_at"),
            ("finished_at", json!("2026-11-28T12:05:01Z"), "finished_at"),
            ("finished_at", json!("yesterday"), "finished_at"),
            ("started_at", json!("noon"), "started_at"),
            ("freshness_seconds", json!(-0.1), "freshness_seconds"),
            (
                "ingest_duration_seconds",
                json!("5"),
                "ingest_duration_seconds",
            ),
            ("symbols", json!("AAPL"), "symbols"),
            ("symbols", json!([1]), "symbols"),
            ("metadata", json!([]), "metadata"),
            ("run_id", json!(""), "run_id"),
            ("rowz", json!(1), "rowz"),
        ];
        for (field, value, expected) in cases {
            let mut body = good();
            body[field] = value;
            let err = check(&body).expect_err(field);
            assert_eq!(err.field, expected, "{field}: {err}");
        }
        for missing in ["dimension", "status", "rows_written", "finished_at"] {
            let mut body = good();
            body.as_object_mut().expect("object").remove(missing);
            assert_eq!(check(&body).expect_err(missing).field, missing);
        }
        assert_eq!(validate_report(b"{", now()).unwrap_err().field, "body");
        assert_eq!(validate_report(b"[1]", now()).unwrap_err().field, "body");
        // finishing exactly when it started, and at the skew limit, is fine
        let mut body = good();
        body["finished_at"] = json!("2026-11-28T11:00:00Z");
        assert_eq!(
            check(&body)
                .expect("same instant")
                .run
                .ingest_duration_seconds,
            Some(0.0)
        );
        body["started_at"] = Value::Null;
        body["finished_at"] = json!("2026-11-28T12:05:00Z");
        assert!(check(&body).is_ok());
    }
}
