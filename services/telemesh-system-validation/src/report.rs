//! Owns the parsing of a system-validation report (DOMAINS.md §3.10.1) into a [`Report`].
//! The report comes from outside (a file another job writes, or an HTTP upload), so every
//! field is optional, bounded and checked; what cannot be read is listed in
//! [`Report::problems`] instead of being guessed.
//!
//! Fixed flaw: a check's `status` string is parsed (`"failed"` is a failure), not taken as
//! truthy; an unrecognised status is `unknown`, which is not a pass.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// Reports larger than this are refused.
pub const MAX_REPORT_BYTES: usize = 4 << 20;
/// At most this many checks are read; the rest are counted but not listed.
pub const MAX_CHECKS: usize = 10_000;
/// Names and messages are cut to this many characters.
const MAX_TEXT: usize = 500;

/// The outcome of one check, or of a status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Passed,
    Warned,
    Failed,
    /// A status word that is none of the known ones.
    Unknown,
}

impl Outcome {
    /// `pass,passed,ok,green,healthy,success,true` → passed; `warn,warning,partial,degraded`
    /// → warned; `fail,failed,error,critical,false` → failed (case-insensitive, trimmed).
    pub fn parse_word(word: &str) -> Outcome {
        match word.trim().to_ascii_lowercase().as_str() {
            "pass" | "passed" | "ok" | "green" | "healthy" | "success" | "true" => Outcome::Passed,
            "warn" | "warning" | "partial" | "degraded" => Outcome::Warned,
            "fail" | "failed" | "error" | "critical" | "false" => Outcome::Failed,
            _ => Outcome::Unknown,
        }
    }

    fn of_value(value: &Value) -> Outcome {
        match value {
            Value::Bool(true) => Outcome::Passed,
            Value::Bool(false) => Outcome::Failed,
            Value::String(s) => Outcome::parse_word(s),
            _ => Outcome::Unknown,
        }
    }
}

/// One check of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    pub message: Option<String>,
}

/// A parsed report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// `timestamp`, when present and readable (naive times are UTC).
    pub timestamp: Option<DateTime<Utc>>,
    pub checks: Vec<Check>,
    /// Checks beyond [`MAX_CHECKS`], counted but not kept.
    pub checks_dropped: usize,
    pub total_checks: Option<u64>,
    pub passed_checks: Option<u64>,
    /// 0..=1 (a value in 1..=100 was a percentage and is divided by 100).
    pub success_rate: Option<f64>,
    pub summary_status: Option<Outcome>,
    pub summary_message: Option<String>,
    pub status: Option<Outcome>,
    pub validator: Option<String>,
    pub version: Option<String>,
    /// What could not be read, one sentence each.
    pub problems: Vec<String>,
}

/// Why a report was refused as a whole.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the report is {0} bytes, over the {MAX_REPORT_BYTES}-byte limit: trim its check messages"
    )]
    TooLarge(usize),
    #[error("the report is not JSON: {0}; write the validator's JSON report as is")]
    NotJson(String),
    #[error("the report must be a JSON object with `results` or `checks`, got {0}")]
    NotAnObject(&'static str),
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Text cut to [`MAX_TEXT`] characters with control characters replaced.
fn text(s: &str) -> String {
    s.chars()
        .take(MAX_TEXT)
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

fn opt_text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(text)
}

/// Parses the bytes of a report.
pub fn parse_report(bytes: &[u8]) -> Result<Report, ReportError> {
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge(bytes.len()));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ReportError::NotJson(text(&e.to_string())))?;
    let Value::Object(map) = value else {
        return Err(ReportError::NotAnObject(type_name(&value)));
    };
    Ok(parse_object(&map))
}

fn parse_object(map: &Map<String, Value>) -> Report {
    let mut report = Report::default();
    match map.get("timestamp") {
        None | Some(Value::Null) => report
            .problems
            .push("no timestamp: the time the report was received is used".into()),
        Some(Value::String(s)) => match parse_time(s) {
            Some(t) => report.timestamp = Some(t),
            None => report.problems.push(format!(
                "timestamp {:?} is not ISO-8601: the time the report was received is used",
                text(s)
            )),
        },
        Some(other) => report.problems.push(format!(
            "timestamp is {}, not an ISO-8601 string",
            type_name(other)
        )),
    }
    match map.get("results").or_else(|| map.get("checks")) {
        Some(Value::Object(checks)) => {
            for (name, value) in checks {
                report.push_check(name, value);
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                let name = match item {
                    Value::Object(o) => o
                        .get("name")
                        .or_else(|| o.get("check"))
                        .and_then(Value::as_str)
                        .unwrap_or("unknown"),
                    _ => "unknown",
                };
                report.push_check(name, item);
            }
        }
        None | Some(Value::Null) => report.problems.push("no `results` or `checks`".into()),
        Some(other) => report.problems.push(format!(
            "`results` is {}, not an object or an array",
            type_name(other)
        )),
    }
    report.total_checks = count(map, "total_checks", &mut report.problems);
    report.passed_checks = count(map, "passed_checks", &mut report.problems);
    if let (Some(total), Some(passed)) = (report.total_checks, report.passed_checks) {
        if passed > total {
            report.problems.push(format!(
                "passed_checks {passed} exceeds total_checks {total}: both ignored"
            ));
            report.total_checks = None;
            report.passed_checks = None;
        }
    }
    match map.get("success_rate") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => match n.as_f64() {
            Some(r) if r.is_finite() && (0.0..=1.0).contains(&r) => report.success_rate = Some(r),
            Some(r) if r.is_finite() && r > 1.0 && r <= 100.0 => {
                report.success_rate = Some(r / 100.0)
            }
            _ => report.problems.push(format!(
                "success_rate {n} is neither a ratio (0..1) nor a percentage (0..100): ignored"
            )),
        },
        Some(other) => report.problems.push(format!(
            "success_rate is {}, not a number: ignored",
            type_name(other)
        )),
    }
    if let Some(Value::Object(summary)) = map.get("summary") {
        report.summary_status = summary.get("status").map(Outcome::of_value);
        report.summary_message = opt_text(summary.get("message"));
    }
    report.status = map.get("status").map(Outcome::of_value);
    report.validator = opt_text(map.get("validator"));
    report.version = opt_text(map.get("version"));
    report
}

fn count(map: &Map<String, Value>, key: &str, problems: &mut Vec<String>) -> Option<u64> {
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Some(v),
            None => {
                problems.push(format!("{key} {n} is not a non-negative integer: ignored"));
                None
            }
        },
        Some(other) => {
            problems.push(format!(
                "{key} is {}, not a number: ignored",
                type_name(other)
            ));
            None
        }
    }
}

impl Report {
    fn push_check(&mut self, name: &str, value: &Value) {
        if self.checks.len() >= MAX_CHECKS {
            self.checks_dropped += 1;
            return;
        }
        let (outcome, message) = match value {
            Value::Object(o) => {
                let outcome = match (o.get("passed"), o.get("status")) {
                    (Some(p @ Value::Bool(_)), _) => Outcome::of_value(p),
                    (_, Some(s)) => Outcome::of_value(s),
                    (Some(p), None) => Outcome::of_value(p),
                    (None, None) => Outcome::Unknown,
                };
                (outcome, opt_text(o.get("message")))
            }
            other => (Outcome::of_value(other), None),
        };
        self.checks.push(Check {
            name: text(name),
            outcome,
            message,
        });
    }
}

/// ISO-8601 with an offset or `Z`; a naive date-time is UTC.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_form_reads_bools_maps_and_status_words() {
        let r = parse_report(
            br#"{"timestamp":"2026-11-30T01:00:00Z","results":{
                "db": true, "kafka": false,
                "fix": {"passed": false, "message": "logon refused"},
                "cache": {"status": "failed"}, "disk": {"status": "OK"},
                "x": {"status": "meh"}, "y": {"status": "degraded"}},
                "validator":"sysval","version":"1.2","summary":{"status":"warn","message":"m"}}"#,
        )
        .expect("valid report");
        assert_eq!(
            r.timestamp,
            Some(parse_time("2026-11-30T01:00:00+00:00").unwrap())
        );
        let outcome = |n: &str| r.checks.iter().find(|c| c.name == n).unwrap().outcome;
        assert_eq!(outcome("db"), Outcome::Passed);
        assert_eq!(outcome("kafka"), Outcome::Failed);
        assert_eq!(outcome("fix"), Outcome::Failed);
        assert_eq!(
            outcome("cache"),
            Outcome::Failed,
            "the truthy-string quirk is fixed"
        );
        assert_eq!(outcome("disk"), Outcome::Passed);
        assert_eq!(outcome("x"), Outcome::Unknown);
        assert_eq!(outcome("y"), Outcome::Warned);
        assert_eq!(r.summary_status, Some(Outcome::Warned));
        assert_eq!(r.validator.as_deref(), Some("sysval"));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn the_list_form_names_checks_by_name_or_check() {
        let r = parse_report(
            br#"{"timestamp":"2026-11-30 01:00:00","checks":[{"name":"a","passed":true},{"check":"b","status":"error"},{"status":"pass"},7]}"#,
        )
        .unwrap();
        let names: Vec<_> = r
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.outcome))
            .collect();
        assert_eq!(
            names,
            [
                ("a", Outcome::Passed),
                ("b", Outcome::Failed),
                ("unknown", Outcome::Passed),
                ("unknown", Outcome::Unknown)
            ]
        );
        assert!(r.timestamp.is_some(), "naive times are UTC");
    }

    #[test]
    fn hostile_reports_are_refused_or_read_with_problems() {
        assert!(matches!(
            parse_report(b"[1,2]"),
            Err(ReportError::NotAnObject("an array"))
        ));
        assert!(matches!(parse_report(b"{"), Err(ReportError::NotJson(_))));
        assert!(matches!(
            parse_report(b"\xff\xfe"),
            Err(ReportError::NotJson(_))
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse_report(deep.as_bytes()),
            Err(ReportError::NotJson(_))
        ));
        let big = vec![b' '; MAX_REPORT_BYTES + 1];
        assert!(matches!(parse_report(&big), Err(ReportError::TooLarge(_))));

        let r = parse_report(
            br#"{"timestamp":"yesterday","results":"all good","total_checks":-3,
                 "passed_checks":1.5,"success_rate":250,"status":{"nested":true}}"#,
        )
        .unwrap();
        assert_eq!(r.timestamp, None);
        assert!(r.checks.is_empty());
        assert_eq!(
            (r.total_checks, r.passed_checks, r.success_rate),
            (None, None, None)
        );
        assert_eq!(r.status, Some(Outcome::Unknown));
        assert_eq!(r.problems.len(), 5, "{:?}", r.problems);

        let r = parse_report(br#"{"timestamp":"2026-01-01T00:00:00Z","results":{},"total_checks":2,"passed_checks":3,"success_rate":-0.5}"#).unwrap();
        assert_eq!(
            (r.total_checks, r.passed_checks, r.success_rate),
            (None, None, None)
        );
        let r =
            parse_report(br#"{"timestamp":"2026-01-01T00:00:00Z","results":{},"success_rate":95}"#)
                .unwrap();
        assert_eq!(r.success_rate, Some(0.95));

        let long = format!(r#"{{"results":{{"{}\u0000":true}}}}"#, "n".repeat(2000));
        let r = parse_report(long.as_bytes()).unwrap();
        assert_eq!(r.checks[0].name.chars().count(), MAX_TEXT);
    }

    #[test]
    fn checks_beyond_the_limit_are_counted_not_kept() {
        let items: Vec<String> = (0..MAX_CHECKS + 5)
            .map(|i| format!(r#"{{"name":"c{i}","passed":true}}"#))
            .collect();
        let body = format!(r#"{{"checks":[{}]}}"#, items.join(","));
        let r = parse_report(body.as_bytes()).unwrap();
        assert_eq!((r.checks.len(), r.checks_dropped), (MAX_CHECKS, 5));
    }
}
