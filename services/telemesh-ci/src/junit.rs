//! Owns test-report parsing: JUnit XML as written by pytest (`--junitxml`), cargo-nextest and
//! libtest (`--format junit`) and Maven Surefire, and the plan's `flake_runs.json` (§9.1),
//! into [`TestCase`]s with failure text clipped as the plan says (4000 characters including
//! the note of how many were cut).

use serde::{Deserialize, Serialize};

/// The most characters of failure text kept, including the truncation note (§9.1).
pub const MAX_FAILURE_CHARS: usize = 4000;
/// The most test cases one report may hold.
pub const MAX_CASES: usize = 100_000;
/// The longest test id kept.
pub const MAX_TEST_ID_BYTES: usize = 1024;

/// How one test case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
    /// An expected failure (pytest's xfail): not a failure (the summariser's gap, §9.1).
    XFailed,
}

impl Outcome {
    /// failed or error.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Error)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Skipped => "skipped",
            Self::XFailed => "xfailed",
        }
    }
}

/// One test case of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    /// `classname::name` (or `name` alone when there is no class name).
    pub test_id: String,
    pub outcome: Outcome,
    /// Seconds; 0 when absent or unparsable.
    pub duration_seconds: f64,
    /// The failure or error text, clipped to [`MAX_FAILURE_CHARS`].
    pub failure: Option<String>,
    /// Failed attempts before the final outcome within the same run (Surefire / nextest
    /// `flakyFailure`/`rerunFailure`): a flake inside one run.
    pub retried_failures: u32,
}

/// Which tool wrote a report (from its shape; informational).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Junit,
    FlakeRuns,
}

/// A parsed report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub format: ReportFormat,
    pub cases: Vec<TestCase>,
}

/// Why a report is refused (answers 422, nothing stored).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("report is not well-formed XML: {0}; upload the file the test tool wrote")]
    Xml(#[from] roxmltree::Error),
    #[error("report root is <{0}>, expected <testsuites> or <testsuite>: upload a JUnit XML file")]
    NotJunit(String),
    #[error("report has no test cases: upload the report of a run that executed tests")]
    Empty,
    #[error("report has more than {MAX_CASES} test cases: split it")]
    TooManyCases,
    #[error("a test case has no name: the report is damaged")]
    UnnamedCase,
    #[error("test id longer than {MAX_TEST_ID_BYTES} bytes: the report is damaged")]
    TestIdTooLong,
    #[error("flake_runs.json is not valid: {0}; upload the file the conftest hook wrote")]
    FlakeRuns(#[from] serde_json::Error),
}

/// Clips failure text as §9.1 says: trailing newlines removed, at most
/// [`MAX_FAILURE_CHARS`] characters including a suffix saying how many were cut.
pub fn clip_failure(text: &str) -> String {
    let text = text.trim_end_matches(['\n', '\r']);
    let total = text.chars().count();
    if total <= MAX_FAILURE_CHARS {
        return text.to_owned();
    }
    // The suffix length depends on the cut count; two rounds settle it.
    let mut keep = MAX_FAILURE_CHARS;
    for _ in 0..2 {
        let suffix = format!("\n... [{} characters truncated]", total - keep);
        keep = MAX_FAILURE_CHARS - suffix.chars().count();
    }
    let suffix = format!("\n... [{} characters truncated]", total - keep);
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&suffix);
    out
}

/// Parses a JUnit XML report. DTDs are refused (no entity expansion).
pub fn parse_junit(xml: &str) -> Result<TestReport, ReportError> {
    let doc = roxmltree::Document::parse(xml)?;
    let root = doc.root_element();
    let root_name = root.tag_name().name();
    if root_name != "testsuites" && root_name != "testsuite" {
        return Err(ReportError::NotJunit(root_name.chars().take(64).collect()));
    }
    let mut cases = Vec::new();
    for node in root.descendants().filter(|n| n.has_tag_name("testcase")) {
        if cases.len() == MAX_CASES {
            return Err(ReportError::TooManyCases);
        }
        cases.push(case(node)?);
    }
    if cases.is_empty() {
        return Err(ReportError::Empty);
    }
    Ok(TestReport {
        format: ReportFormat::Junit,
        cases,
    })
}

fn case(node: roxmltree::Node<'_, '_>) -> Result<TestCase, ReportError> {
    let name = node.attribute("name").unwrap_or("").trim();
    if name.is_empty() {
        return Err(ReportError::UnnamedCase);
    }
    let test_id = match node.attribute("classname").map(str::trim) {
        Some(class) if !class.is_empty() => format!("{class}::{name}"),
        _ => name.to_owned(),
    };
    if test_id.len() > MAX_TEST_ID_BYTES {
        return Err(ReportError::TestIdTooLong);
    }
    let duration_seconds = node
        .attribute("time")
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0)
        .unwrap_or(0.0);
    let mut outcome = Outcome::Passed;
    let mut failure = None;
    let mut retried_failures = 0u32;
    for child in node.children().filter(|c| c.is_element()) {
        match child.tag_name().name() {
            "failure" => {
                outcome = Outcome::Failed;
                failure = Some(failure_text(child));
            }
            "error" => {
                outcome = Outcome::Error;
                failure = Some(failure_text(child));
            }
            "skipped" if outcome == Outcome::Passed => {
                outcome = if child.attribute("type") == Some("pytest.xfail") {
                    Outcome::XFailed
                } else {
                    Outcome::Skipped
                };
            }
            "flakyFailure" | "flakyError" | "rerunFailure" | "rerunError" => {
                retried_failures = retried_failures.saturating_add(1);
            }
            _ => {}
        }
    }
    Ok(TestCase {
        test_id,
        outcome,
        duration_seconds,
        failure,
        retried_failures,
    })
}

fn failure_text(node: roxmltree::Node<'_, '_>) -> String {
    let message = node.attribute("message").unwrap_or("").trim();
    let body: String = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    let body = body.trim();
    let text = match (message.is_empty(), body.is_empty()) {
        (_, true) => message.to_owned(),
        (true, false) => body.to_owned(),
        (false, false) if body.starts_with(message) => body.to_owned(),
        (false, false) => format!("{message}\n{body}"),
    };
    clip_failure(&text)
}

/// The plan's `flake_runs.json` (§9.1).
#[derive(Debug, Clone, Deserialize)]
pub struct FlakeRuns {
    #[serde(default)]
    pub meta: FlakeRunsMeta,
    pub events: Vec<FlakeEvent>,
    /// Never written by the plan's hook (its gap); read when present.
    #[serde(default)]
    pub history: Vec<FlakeHistory>,
}

/// `flake_runs.json` `meta`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FlakeRunsMeta {
    #[serde(default)]
    pub session_start: Option<f64>,
    #[serde(default)]
    pub session_end: Option<f64>,
    #[serde(default)]
    pub exit_status: Option<i64>,
    #[serde(default)]
    pub python: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub ci: Option<bool>,
    #[serde(default)]
    pub event_count: Option<u64>,
}

/// One recorded event (failed / error call phases and xfails).
#[derive(Debug, Clone, Deserialize)]
pub struct FlakeEvent {
    pub nodeid: String,
    pub outcome: String,
    #[serde(default)]
    pub duration: serde_json::Value,
    #[serde(default)]
    pub was_xfail: bool,
    #[serde(default)]
    pub longrepr: Option<String>,
}

/// One `history` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct FlakeHistory {
    pub run_id: serde_json::Value,
    #[serde(default)]
    pub conclusion: Option<String>,
}

/// Parses `flake_runs.json` into test cases: xfail events become [`Outcome::XFailed`] (not
/// failures: the summariser's gap fixed), `error` stays an error, anything else failed.
pub fn parse_flake_runs(json: &[u8]) -> Result<TestReport, ReportError> {
    let runs: FlakeRuns = serde_json::from_slice(json)?;
    if runs.events.len() > MAX_CASES {
        return Err(ReportError::TooManyCases);
    }
    let mut cases = Vec::with_capacity(runs.events.len());
    for event in runs.events {
        let test_id = event.nodeid.trim().to_owned();
        if test_id.is_empty() {
            return Err(ReportError::UnnamedCase);
        }
        if test_id.len() > MAX_TEST_ID_BYTES {
            return Err(ReportError::TestIdTooLong);
        }
        let outcome = if event.was_xfail || event.outcome == "skipped" {
            Outcome::XFailed
        } else if event.outcome == "error" {
            Outcome::Error
        } else if event.outcome == "passed" {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        let duration_seconds = match &event.duration {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|d: &f64| d.is_finite() && *d >= 0.0)
        .unwrap_or(0.0);
        cases.push(TestCase {
            test_id,
            outcome,
            duration_seconds,
            failure: event.longrepr.as_deref().map(clip_failure),
            retried_failures: 0,
        });
    }
    Ok(TestReport {
        format: ReportFormat::FlakeRuns,
        cases,
    })
}

/// Parses a report of either format, chosen by its first non-blank byte (`<` XML, `{` JSON).
pub fn parse_report(body: &[u8]) -> Result<TestReport, ReportError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'{') {
        return parse_flake_runs(body);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ReportError::NotJunit("non-UTF-8 bytes".to_owned()))?;
    parse_junit(text.trim_start_matches('\u{feff}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_is_at_most_4000_characters_and_says_how_many_were_cut() {
        assert_eq!(clip_failure("boom\n\n"), "boom");
        let exact = "x".repeat(MAX_FAILURE_CHARS);
        assert_eq!(clip_failure(&exact), exact);
        for len in [MAX_FAILURE_CHARS + 1, 5_000, 123_456] {
            let long = "é".repeat(len);
            let clipped = clip_failure(&long);
            assert_eq!(clipped.chars().count(), MAX_FAILURE_CHARS, "len {len}");
            let kept = clipped.chars().take_while(|c| *c == 'é').count();
            assert!(
                clipped.ends_with(&format!("[{} characters truncated]", len - kept)),
                "{}",
                &clipped[clipped.len() - 40..]
            );
        }
    }

    #[test]
    fn hostile_xml_is_refused() {
        let cases = [
            "",
            "not xml",
            "<testsuites><testcase name='a'>",
            "<html><body/></html>",
            "<testsuites></testsuites>",
            "<testsuite><testcase name=''/></testsuite>",
            // Entity expansion ("billion laughs") is refused with the DTD.
            "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]><testsuite><testcase name='&lol2;'/></testsuite>",
        ];
        for xml in cases {
            assert!(parse_junit(xml).is_err(), "{xml}");
        }
        let long = format!(
            "<testsuite><testcase name='{}'/></testsuite>",
            "a".repeat(2000)
        );
        assert!(matches!(
            parse_junit(&long),
            Err(ReportError::TestIdTooLong)
        ));
        assert!(parse_report(b"\xff\xfe<").is_err());
        assert!(parse_report(b"{\"events\": 3}").is_err());
        assert!(
            parse_report(b"{\"events\": [{\"nodeid\": \"\", \"outcome\": \"failed\"}]}").is_err()
        );
    }

    #[test]
    fn retries_and_hostile_times_are_read() {
        let xml = r#"<testsuite name="s">
            <testcase classname="a.B" name="t" time="NaN"><flakyFailure message="m"/><flakyFailure/></testcase>
            <testcase name="u" time="-3"><error message="e">trace</error></testcase>
            <testcase name="v" time="1e400"/>
        </testsuite>"#;
        let report = parse_junit(xml).expect("parses");
        let [t, u, v] = &report.cases[..] else {
            panic!("three cases")
        };
        assert_eq!(
            (t.test_id.as_str(), t.outcome, t.retried_failures),
            ("a.B::t", Outcome::Passed, 2)
        );
        assert_eq!(t.duration_seconds, 0.0);
        assert_eq!(
            (u.outcome, u.failure.as_deref()),
            (Outcome::Error, Some("e\ntrace"))
        );
        assert_eq!(u.duration_seconds, 0.0);
        assert_eq!(v.duration_seconds, 0.0);
    }

    #[test]
    fn flake_runs_json_counts_xfail_as_expected_not_failed() {
        let json = br#"{"meta": {"session_start": 1.5, "exit_status": 1, "event_count": 3},
            "events": [
              {"nodeid": "tests/a.py::t", "outcome": "failed", "duration": "0.25", "was_xfail": false, "longrepr": "boom\n"},
              {"nodeid": "tests/a.py::x", "outcome": "skipped", "duration": 0.1, "was_xfail": true},
              {"nodeid": "tests/a.py::e", "outcome": "error", "duration": "n/a"}
            ]}"#;
        let report = parse_report(json).expect("parses");
        let outcomes: Vec<_> = report
            .cases
            .iter()
            .map(|c| (c.outcome, c.duration_seconds))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Outcome::Failed, 0.25),
                (Outcome::XFailed, 0.1),
                (Outcome::Error, 0.0)
            ]
        );
        assert_eq!(report.cases[0].failure.as_deref(), Some("boom"));
    }
}
