//! Owns the `telemetry.ci.history` records: what the CI domain publishes so that the
//! aggregator journals its history (per-test results of each report upload, coverage and
//! formatter entries, completed pipeline runs) in the journal database (`journal/ci.rs`
//! there), and reading that history back from the aggregator's API into the same types.
//!
//! A record is a snapshot of kind [`HISTORY`] graded `ok` with one component naming what it
//! carries (`tests`, `coverage`, `formatter` or `run`). Its id is derived from its content's
//! key (upload id and part, entry id, run id/attempt/conclusion), so publishing it twice
//! journals it once. A report too big for one snapshot (the wire limits: 10,000 detail
//! values, 960,000 bytes) is split into parts of at most [`MAX_PART_CASES`] cases and about
//! [`MAX_PART_BYTES`] bytes of JSON; each part is a record of its own. NUL characters, which
//! the journal cannot store, become U+FFFD. Its `interval_seconds` metric is
//! [`RECORD_INTERVAL_SECONDS`]: a record is not a heartbeat, and silence between uploads is
//! not staleness.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use telemesh_core::{Component, DetailValue, Grade, Snapshot, Source};
use uuid::Uuid;

use crate::coverage::{DomainCoverage, FormatterMode};
use crate::evaluate::CoverageEntry;
use crate::flakes::TestUpload;
use crate::github::PipelineRun;
use crate::junit::{ReportFormat, TestCase, TestReport};
use crate::kinds::HISTORY;

/// The most test cases in one record (each case is at most 7 detail values).
pub const MAX_PART_CASES: usize = 1_000;
/// The JSON bytes of cases one record aims at: far below the payload limit (960,000), so a
/// record stays small where the aggregator keeps the latest one (the summary, the live
/// stream). One case is at most about 25 KB (a 1 KiB id, 4000 escaped characters of failure).
pub const MAX_PART_BYTES: usize = 64 * 1024;
/// The most coverage domains one record carries (the rest are counted, not sent).
pub const MAX_DOMAINS: usize = 1_000;
/// The `interval_seconds` metric of a record: 30 days.
pub const RECORD_INTERVAL_SECONDS: f64 = 30.0 * 86_400.0;

/// A deterministic id from a record's key (UUID version 8 over SHA-256).
pub fn record_id(parts: &[&str]) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"telemesh-ci-history");
    for p in parts {
        hash.update((p.len() as u64).to_be_bytes());
        hash.update(p.as_bytes());
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A content id (hex SHA-256, 32 characters) of an upload: the same bytes and metadata are
/// the same upload.
pub fn content_id(fields: &[&str], body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for f in fields {
        hash.update((f.len() as u64).to_be_bytes());
        hash.update(f.as_bytes());
    }
    hash.update(body);
    hex::encode(&hash.finalize()[..16])
}

fn no_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

fn detail<T: Serialize>(value: &T) -> DetailValue {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| DetailValue::deserialize(v).ok())
        .unwrap_or(DetailValue::Null)
}

fn record(
    id: Uuid,
    source: &Source,
    at: DateTime<Utc>,
    summary: String,
    component: Component,
) -> Snapshot {
    let mut s = Snapshot::new(HISTORY, source.clone(), at);
    s.id = id;
    s.status = Grade::Ok;
    s.summary = summary;
    s.push(component);
    s.metric("interval_seconds", RECORD_INTERVAL_SECONDS);
    s.markdown = s.render_markdown("CI history");
    s
}

/// What a `tests` record says about its upload (besides its cases).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartMeta {
    pub upload_id: String,
    pub part: u32,
    pub parts: u32,
    /// The position of the part's first case in the upload.
    pub first_position: u32,
    pub commit: String,
    pub branch: Option<String>,
    pub run_id: Option<String>,
    pub run_url: Option<String>,
    pub suite: Option<String>,
    pub format: ReportFormat,
}

fn clean_case(c: &TestCase) -> TestCase {
    TestCase {
        test_id: no_nul(&c.test_id),
        outcome: c.outcome,
        duration_seconds: if c.duration_seconds.is_finite() {
            c.duration_seconds
        } else {
            0.0
        },
        failure: c.failure.as_deref().map(no_nul),
        retried_failures: c.retried_failures,
    }
}

/// Splits the cases into parts within [`MAX_PART_CASES`] and [`MAX_PART_BYTES`].
fn split(cases: &[TestCase]) -> Vec<Vec<TestCase>> {
    let mut parts: Vec<Vec<TestCase>> = Vec::new();
    let mut current: Vec<TestCase> = Vec::new();
    let mut bytes = 0usize;
    for case in cases.iter().map(clean_case) {
        let size = serde_json::to_string(&case).map_or(MAX_PART_BYTES, |s| s.len());
        if !current.is_empty() && (current.len() >= MAX_PART_CASES || bytes + size > MAX_PART_BYTES)
        {
            parts.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(case);
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    parts
}

/// The records of one accepted upload (one per part, at least one).
pub fn upload_records(upload: &TestUpload, source: &Source) -> Vec<Snapshot> {
    let parts = split(&upload.report.cases);
    let count = parts.len() as u32;
    let mut first = 0u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, cases)| {
            let meta = PartMeta {
                upload_id: upload.upload_id.clone(),
                part: i as u32 + 1,
                parts: count,
                first_position: first,
                commit: upload.commit.clone(),
                branch: upload.branch.clone(),
                run_id: upload.run_id.clone(),
                run_url: upload.run_url.clone(),
                suite: upload.suite.clone(),
                format: upload.report.format,
            };
            first += cases.len() as u32;
            let failed = cases.iter().filter(|c| c.outcome.is_failure()).count();
            let mut c = Component::new(
                "tests",
                Grade::Ok,
                format!("{} test results, {failed} failed", cases.len()),
            );
            if let DetailValue::Map(m) = detail(&meta) {
                c.details.extend(m);
            }
            c.details.insert("cases".into(), detail(&cases));
            record(
                record_id(&["tests", &upload.upload_id, &meta.part.to_string()]),
                source,
                upload.recorded_at,
                format!(
                    "test report {} part {}/{count} of commit {}: {} tests, {failed} failed",
                    upload.upload_id,
                    meta.part,
                    upload.commit,
                    cases.len()
                ),
                c,
            )
        })
        .collect()
}

/// What a `coverage` record carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageRecord {
    pub entry_id: String,
    pub label: String,
    pub percent: f64,
    pub domains: Vec<DomainCoverage>,
    /// Domains not sent (beyond [`MAX_DOMAINS`]).
    pub domains_clipped: usize,
}

/// The record of one coverage entry.
pub fn coverage_record(entry_id: &str, entry: &CoverageEntry, source: &Source) -> Snapshot {
    let mut domains: Vec<DomainCoverage> = entry
        .domains
        .iter()
        .filter(|d| d.percent.is_finite())
        .cloned()
        .map(|mut d| {
            d.domain = no_nul(&d.domain);
            d
        })
        .collect();
    let clipped = domains.len().saturating_sub(MAX_DOMAINS);
    domains.truncate(MAX_DOMAINS);
    let body = CoverageRecord {
        entry_id: entry_id.to_owned(),
        label: no_nul(&entry.label),
        percent: if entry.percent.is_finite() {
            entry.percent
        } else {
            0.0
        },
        domains,
        domains_clipped: clipped,
    };
    let mut c = Component::new(
        "coverage",
        Grade::Ok,
        format!("coverage {:.2}% ({})", body.percent, body.label),
    );
    if let DetailValue::Map(m) = detail(&body) {
        c.details.extend(m);
    }
    record(
        record_id(&["coverage", entry_id]),
        source,
        entry.recorded_at,
        format!("coverage {:.2}% for {}", body.percent, body.label),
        c,
    )
}

/// What a `formatter` record carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatterRecord {
    pub entry_id: String,
    #[serde(flatten)]
    pub mode: FormatterMode,
}

/// The record of one formatter-mode entry.
pub fn formatter_record(
    entry_id: &str,
    mode: &FormatterMode,
    at: DateTime<Utc>,
    source: &Source,
) -> Snapshot {
    let body = FormatterRecord {
        entry_id: entry_id.to_owned(),
        mode: mode.clone(),
    };
    let mut c = Component::new("formatter", Grade::Ok, format!("formatter {}", mode.mode));
    if let DetailValue::Map(m) = detail(&body) {
        c.details.extend(m);
    }
    record(
        record_id(&["formatter", entry_id]),
        source,
        at,
        format!("formatter mode {}", mode.mode),
        c,
    )
}

/// The record of one completed pipeline run, as recorded at `now` (when the domain learnt of
/// it: a run is read back with the window it was recorded in, however old the run).
pub fn run_record(run: &PipelineRun, source: &Source, now: DateTime<Utc>) -> Snapshot {
    let mut c = Component::new(
        "run",
        Grade::Ok,
        format!(
            "{} #{}: {}",
            run.workflow,
            run.run_number,
            run.conclusion.as_str()
        ),
    );
    if let DetailValue::Map(m) = detail(&run) {
        c.details.extend(m);
    }
    record(
        record_id(&[
            "run",
            &run.run_id.to_string(),
            &run.run_attempt.to_string(),
            run.conclusion.as_str(),
        ]),
        source,
        now,
        format!(
            "workflow run {} #{} {}",
            run.workflow,
            run.run_number,
            run.conclusion.as_str()
        ),
        c,
    )
}

/// Publishes history records through the domain service's publisher, as its source.
#[derive(Debug, Clone)]
pub struct Recorder {
    publisher: telemesh_core::transport::SnapshotPublisher,
    source: Source,
}

impl Recorder {
    pub fn new(publisher: telemesh_core::transport::SnapshotPublisher, source: Source) -> Self {
        Self { publisher, source }
    }

    /// The source the records carry.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Publishes every record in order; the first failure stops and says why (publishing
    /// the same records again is harmless: their ids are derived from their content).
    pub async fn publish(&self, records: &[Snapshot]) -> Result<(), String> {
        for r in records {
            self.publisher
                .publish(r)
                .await
                .map_err(|e| format!("history record {} not published: {e}", r.id))?;
        }
        Ok(())
    }
}

// ---- reading the journal back (the aggregator's `GET /api/v1/ci/*` answers) ----

/// One row of `GET /api/v1/ci/tests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRow {
    pub upload_id: String,
    pub position: i64,
    pub test_id: String,
    pub outcome: String,
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    #[serde(default)]
    pub failure: Option<String>,
    #[serde(default)]
    pub retried_failures: Option<i64>,
    pub commit: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_url: Option<String>,
    #[serde(default)]
    pub suite: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// Groups journaled test rows into uploads (cases in position order; rows whose outcome is
/// unknown are left out).
pub fn uploads_from_rows(rows: &[TestRow]) -> Vec<TestUpload> {
    let mut by_id: BTreeMap<&str, (TestUpload, BTreeMap<i64, TestCase>)> = BTreeMap::new();
    for row in rows {
        let Ok(outcome) = serde_json::from_value(serde_json::Value::from(row.outcome.as_str()))
        else {
            continue;
        };
        let entry = by_id.entry(row.upload_id.as_str()).or_insert_with(|| {
            (
                TestUpload {
                    upload_id: row.upload_id.clone(),
                    recorded_at: row.recorded_at,
                    commit: row.commit.clone(),
                    branch: row.branch.clone(),
                    run_id: row.run_id.clone(),
                    run_url: row.run_url.clone(),
                    suite: row.suite.clone(),
                    report: TestReport {
                        format: match row.format.as_deref() {
                            Some("flake_runs") => ReportFormat::FlakeRuns,
                            _ => ReportFormat::Junit,
                        },
                        cases: Vec::new(),
                    },
                },
                BTreeMap::new(),
            )
        });
        entry.1.insert(
            row.position,
            TestCase {
                test_id: row.test_id.clone(),
                outcome,
                duration_seconds: row.duration_seconds.unwrap_or(0.0),
                failure: row.failure.clone(),
                retried_failures: row
                    .retried_failures
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
            },
        );
    }
    let mut uploads: Vec<TestUpload> = by_id
        .into_values()
        .map(|(mut upload, cases)| {
            upload.report.cases = cases.into_values().collect();
            upload
        })
        .collect();
    uploads.sort_by(|a, b| (a.recorded_at, &a.upload_id).cmp(&(b.recorded_at, &b.upload_id)));
    uploads
}

/// One row of `GET /api/v1/ci/coverage`: a coverage entry (`entry_kind` `coverage`, with
/// `percent` and `detail.domains`) or a formatter entry (`formatter`, `detail` = the mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendRow {
    pub entry_id: String,
    pub entry_kind: String,
    pub label: String,
    #[serde(default)]
    pub percent: Option<f64>,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
    pub recorded_at: DateTime<Utc>,
}

/// The coverage trend and the newest formatter mode of journaled trend rows.
pub fn trend_from_rows(rows: &[TrendRow]) -> (Vec<(String, CoverageEntry)>, Option<FormatterMode>) {
    let mut coverage = Vec::new();
    let mut formatter: Option<(DateTime<Utc>, FormatterMode)> = None;
    for row in rows {
        match row.entry_kind.as_str() {
            "coverage" => {
                let Some(percent) = row.percent.filter(|p| p.is_finite()) else {
                    continue;
                };
                let domains = row
                    .detail
                    .as_ref()
                    .and_then(|d| d.get("domains"))
                    .and_then(|d| serde_json::from_value(d.clone()).ok())
                    .unwrap_or_default();
                coverage.push((
                    row.entry_id.clone(),
                    CoverageEntry {
                        label: row.label.clone(),
                        recorded_at: row.recorded_at,
                        percent,
                        domains,
                    },
                ));
            }
            "formatter" => {
                let Some(mode) = row
                    .detail
                    .as_ref()
                    .and_then(|d| serde_json::from_value::<FormatterMode>(d.clone()).ok())
                else {
                    continue;
                };
                if formatter
                    .as_ref()
                    .is_none_or(|(at, _)| row.recorded_at >= *at)
                {
                    formatter = Some((row.recorded_at, mode));
                }
            }
            _ => {}
        }
    }
    coverage.sort_by_key(|e| e.1.recorded_at);
    (coverage, formatter.map(|(_, m)| m))
}

/// One row of `GET /api/v1/ci/runs`: the run as the CI domain published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

/// The runs of journaled run rows (rows that do not parse are left out).
pub fn runs_from_rows(rows: &[RunRow]) -> Vec<PipelineRun> {
    rows.iter()
        .filter_map(|r| serde_json::from_value(r.run.clone()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::Outcome;
    use telemesh_core::codec::{encode, Encoding};

    fn case(i: usize, outcome: Outcome) -> TestCase {
        TestCase {
            test_id: format!("suite::test_{i}"),
            outcome,
            duration_seconds: 0.5,
            failure: outcome.is_failure().then(|| "assert 1 == 2".to_owned()),
            retried_failures: 0,
        }
    }

    fn upload(cases: Vec<TestCase>) -> TestUpload {
        TestUpload {
            upload_id: "u1".into(),
            recorded_at: DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
            commit: "abc".into(),
            branch: Some("main".into()),
            run_id: Some("7".into()),
            run_url: Some("https://ci/7".into()),
            suite: Some("pytest".into()),
            report: TestReport {
                format: ReportFormat::Junit,
                cases,
            },
        }
    }

    fn source() -> Source {
        Source::new("ci", "a")
    }

    #[test]
    fn records_are_deterministic_and_read_back_into_the_same_upload() {
        let u = upload(vec![case(0, Outcome::Passed), case(1, Outcome::Failed)]);
        let a = upload_records(&u, &source());
        let b = upload_records(&u, &source());
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].id, b[0].id, "publishing twice is the same record");
        assert_eq!(a[0].generated_at, u.recorded_at);
        assert_eq!(a[0].status, Grade::Ok);
        assert_eq!(a[0].metrics["interval_seconds"], RECORD_INTERVAL_SECONDS);
        // the aggregator's row shape, as its API answers it
        let details =
            serde_json::Value::from(&DetailValue::Map(a[0].components[0].details.clone()));
        let rows: Vec<TestRow> = details["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .enumerate()
            .map(|(i, c)| TestRow {
                upload_id: details["upload_id"].as_str().unwrap_or_default().into(),
                position: i as i64,
                test_id: c["test_id"].as_str().unwrap_or_default().into(),
                outcome: c["outcome"].as_str().unwrap_or_default().into(),
                duration_seconds: c["duration_seconds"].as_f64(),
                failure: c["failure"].as_str().map(str::to_owned),
                retried_failures: c["retried_failures"].as_i64(),
                commit: details["commit"].as_str().unwrap_or_default().into(),
                branch: details["branch"].as_str().map(str::to_owned),
                run_id: details["run_id"].as_str().map(str::to_owned),
                run_url: details["run_url"].as_str().map(str::to_owned),
                suite: details["suite"].as_str().map(str::to_owned),
                format: details["format"].as_str().map(str::to_owned),
                recorded_at: a[0].generated_at,
            })
            .collect();
        assert_eq!(uploads_from_rows(&rows), vec![u]);
    }

    #[test]
    fn a_hostile_report_is_split_within_the_wire_limits() {
        // 10,000 tests with 1 KiB names, NUL characters and 4000-character failure texts
        let cases: Vec<TestCase> = (0..10_000)
            .map(|i| TestCase {
                test_id: format!("{i}\0{}", "n".repeat(1000)),
                outcome: if i % 2 == 0 {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                },
                duration_seconds: f64::NAN,
                failure: Some("\u{1}x\0".repeat(1333)),
                retried_failures: 0,
            })
            .collect();
        let records = upload_records(&upload(cases), &source());
        assert!(records.len() > 10, "split into {} parts", records.len());
        let mut total = 0;
        let mut ids = std::collections::BTreeSet::new();
        for (i, r) in records.iter().enumerate() {
            for encoding in [Encoding::Json, Encoding::Bincode] {
                encode(r, encoding).unwrap_or_else(|e| panic!("part {i} {encoding:?}: {e}"));
            }
            let c = &r.components[0];
            assert_eq!(c.details["part"], DetailValue::Int(i as i64 + 1));
            assert_eq!(c.details["first_position"], DetailValue::Int(total as i64));
            let DetailValue::List(cases) = &c.details["cases"] else {
                panic!("cases")
            };
            total += cases.len();
            ids.insert(r.id);
        }
        assert_eq!(total, 10_000, "every case is in exactly one part");
        assert_eq!(ids.len(), records.len(), "each part has its own id");
    }

    #[test]
    fn an_empty_report_is_one_record_and_ids_differ_by_key() {
        assert_eq!(upload_records(&upload(vec![]), &source()).len(), 1);
        assert_ne!(record_id(&["a", "bc"]), record_id(&["ab", "c"]));
        assert_ne!(content_id(&["a"], b"x"), content_id(&["a"], b"y"));
    }

    #[test]
    fn coverage_and_formatter_records_read_back() {
        let entry = CoverageEntry {
            label: "abc".into(),
            recorded_at: DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
            percent: 81.5,
            domains: vec![DomainCoverage {
                domain: "src/a".into(),
                files: 2,
                lines_valid: 10,
                lines_covered: 8,
                percent: 80.0,
            }],
        };
        let r = coverage_record("e1", &entry, &source());
        let details = serde_json::Value::from(&DetailValue::Map(r.components[0].details.clone()));
        let f = formatter_record("f1", &FormatterMode::global(), entry.recorded_at, &source());
        let fd = serde_json::Value::from(&DetailValue::Map(f.components[0].details.clone()));
        let rows = vec![
            TrendRow {
                entry_id: "e1".into(),
                entry_kind: "coverage".into(),
                label: "abc".into(),
                percent: details["percent"].as_f64(),
                detail: Some(details.clone()),
                recorded_at: entry.recorded_at,
            },
            TrendRow {
                entry_id: "f1".into(),
                entry_kind: "formatter".into(),
                label: "global".into(),
                percent: None,
                detail: Some(fd),
                recorded_at: entry.recorded_at,
            },
        ];
        let (trend, formatter) = trend_from_rows(&rows);
        assert_eq!(trend, vec![("e1".to_owned(), entry)]);
        assert_eq!(formatter, Some(FormatterMode::global()));
    }
}
