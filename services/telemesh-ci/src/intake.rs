//! Owns the CI domain's derived state and what goes into it: completed pipeline runs (from
//! the webhook or the poller), test-report uploads and coverage reports, each validated
//! before anything is kept, bounded in size, and the webhook replay guard. The evaluators read
//! a consistent copy of it ([`CiStore::view`]). History read back from the journal
//! ([`CiStore::merge_journal`]) joins it by id (an upload, entry or run known twice is kept
//! once); runs recorded here wait in a bounded outbox until published as history records.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::coverage::{parse_coverage, CoverageError, FormatterMode};
use crate::evaluate::{CoverageEntry, CoverageState};
use crate::flakes::TestUpload;
use crate::github::PipelineRun;
use crate::junit::{parse_report, ReportError};
use crate::webhook::{Delivery, ReplayGuard};

/// How much history the store keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub runs: usize,
    pub uploads: usize,
    pub coverage: usize,
    pub deliveries: usize,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            runs: 1_000,
            uploads: 500,
            coverage: 200,
            deliveries: 10_000,
        }
    }
}

#[derive(Debug)]
struct Inner {
    capacity: Capacity,
    runs: VecDeque<PipelineRun>,
    uploads: VecDeque<TestUpload>,
    /// (entry id, entry), oldest first.
    coverage: VecDeque<(String, CoverageEntry)>,
    formatter: Option<(DateTime<Utc>, FormatterMode)>,
    deliveries: ReplayGuard,
    /// Runs recorded here and not yet published as history records.
    unpublished_runs: VecDeque<PipelineRun>,
}

/// The shared, bounded CI state (cheap to clone).
#[derive(Debug, Clone)]
pub struct CiStore(Arc<Mutex<Inner>>);

/// A copy of the state for one evaluation.
#[derive(Debug, Clone, Default)]
pub struct CiView {
    pub runs: Vec<PipelineRun>,
    pub uploads: Vec<TestUpload>,
    pub coverage: CoverageState,
}

/// What a test-report upload says about itself (query parameters of the upload).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct UploadMeta {
    pub commit: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_url: Option<String>,
    #[serde(default)]
    pub suite: Option<String>,
}

/// Why an upload's metadata is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("{0} is required: pass it as a query parameter, e.g. ?commit=$GITHUB_SHA")]
    Missing(&'static str),
    #[error("{0} must be 1 to 256 printable characters")]
    Invalid(&'static str),
    #[error("run_url must be an http(s) URL")]
    BadUrl,
}

fn check_text(name: &'static str, value: &str) -> Result<(), MetaError> {
    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        Err(MetaError::Invalid(name))
    } else {
        Ok(())
    }
}

impl UploadMeta {
    /// Validates every field (hostile values refused, not stored).
    pub fn validate(&self) -> Result<(), MetaError> {
        if self.commit.trim().is_empty() {
            return Err(MetaError::Missing("commit"));
        }
        check_text("commit", &self.commit)?;
        for (name, value) in [
            ("branch", &self.branch),
            ("run_id", &self.run_id),
            ("suite", &self.suite),
        ] {
            if let Some(v) = value {
                check_text(name, v)?;
            }
        }
        if let Some(url) = &self.run_url {
            check_text("run_url", url)?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(MetaError::BadUrl);
            }
        }
        Ok(())
    }
}

/// Why an upload was refused (nothing stored).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Coverage(#[from] CoverageError),
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, capacity: usize) {
    if queue.len() >= capacity.max(1) {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// Replaces a run with the same id and attempt, or adds it; false when nothing changed.
fn upsert_run(inner: &mut Inner, run: PipelineRun) -> bool {
    if let Some(existing) = inner
        .runs
        .iter_mut()
        .find(|r| r.run_id == run.run_id && r.run_attempt == run.run_attempt)
    {
        let changed = *existing != run;
        *existing = run;
        return changed;
    }
    let capacity = inner.capacity.runs;
    push_bounded(&mut inner.runs, run, capacity);
    true
}

/// Adds an upload in time order, or completes one already kept (a part read earlier).
fn merge_upload(inner: &mut Inner, upload: TestUpload) {
    if let Some(existing) = inner
        .uploads
        .iter_mut()
        .find(|u| u.upload_id == upload.upload_id)
    {
        if upload.report.cases.len() > existing.report.cases.len() {
            *existing = upload;
        }
        return;
    }
    let capacity = inner.capacity.uploads;
    let at = inner
        .uploads
        .iter()
        .position(|u| u.recorded_at > upload.recorded_at)
        .unwrap_or(inner.uploads.len());
    inner.uploads.insert(at, upload);
    while inner.uploads.len() > capacity.max(1) {
        inner.uploads.pop_front();
    }
}

/// Adds a coverage entry in time order unless its id is kept.
fn merge_coverage(inner: &mut Inner, id: String, entry: CoverageEntry) {
    if inner.coverage.iter().any(|(known, _)| *known == id) {
        return;
    }
    let capacity = inner.capacity.coverage;
    let at = inner
        .coverage
        .iter()
        .position(|(_, e)| e.recorded_at > entry.recorded_at)
        .unwrap_or(inner.coverage.len());
    inner.coverage.insert(at, (id, entry));
    while inner.coverage.len() > capacity.max(1) {
        inner.coverage.pop_front();
    }
}

impl CiStore {
    pub fn new(capacity: Capacity) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            capacity,
            runs: VecDeque::new(),
            uploads: VecDeque::new(),
            coverage: VecDeque::new(),
            formatter: None,
            deliveries: ReplayGuard::new(capacity.deliveries),
            unpublished_runs: VecDeque::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a webhook delivery id; `Replayed` when it was seen before.
    pub fn delivery(&self, id: &str) -> Delivery {
        self.lock().deliveries.check(id)
    }

    /// Forgets a delivery id whose processing failed (so GitHub's redelivery is taken).
    pub fn forget_delivery(&self, id: &str) {
        self.lock().deliveries.forget(id);
    }

    /// Records a completed run; a run already known (same id and attempt) is replaced.
    /// Returns false when it was already known with the same conclusion. A new or changed
    /// run waits in the outbox ([`CiStore::take_unpublished_runs`]).
    pub fn record_run(&self, run: PipelineRun) -> bool {
        let mut inner = self.lock();
        if !upsert_run(&mut inner, run.clone()) {
            return false;
        }
        let capacity = inner.capacity.runs;
        push_bounded(&mut inner.unpublished_runs, run, capacity);
        true
    }

    /// The runs recorded since the last call (to publish as history records).
    pub fn take_unpublished_runs(&self) -> Vec<PipelineRun> {
        self.lock().unpublished_runs.drain(..).collect()
    }

    /// Puts back runs whose publishing failed (tried again on the next cycle).
    pub fn requeue_unpublished_runs(&self, runs: Vec<PipelineRun>) {
        let mut inner = self.lock();
        let capacity = inner.capacity.runs;
        for run in runs.into_iter().rev() {
            if inner.unpublished_runs.len() < capacity.max(1) {
                inner.unpublished_runs.push_front(run);
            }
        }
    }

    /// Whether an upload with this id is already kept (the same report sent again).
    pub fn has_upload(&self, upload_id: &str) -> bool {
        self.lock().uploads.iter().any(|u| u.upload_id == upload_id)
    }

    /// Whether a coverage entry with this id is already kept.
    pub fn has_coverage(&self, entry_id: &str) -> bool {
        self.lock().coverage.iter().any(|(id, _)| id == entry_id)
    }

    /// Validates and parses a test report without keeping it.
    pub fn prepare_report(
        meta: UploadMeta,
        body: &[u8],
        upload_id: String,
        now: DateTime<Utc>,
    ) -> Result<TestUpload, UploadError> {
        meta.validate()?;
        let report = parse_report(body)?;
        Ok(TestUpload {
            upload_id,
            recorded_at: now,
            commit: meta.commit,
            branch: meta.branch,
            run_id: meta.run_id,
            run_url: meta.run_url,
            suite: meta.suite,
            report,
        })
    }

    /// Keeps an upload (one with the same id is replaced when this one has more cases).
    pub fn keep_upload(&self, upload: TestUpload) {
        let mut inner = self.lock();
        merge_upload(&mut inner, upload);
    }

    /// Validates and parses a coverage report without keeping it.
    pub fn prepare_coverage(
        label: &str,
        depth: usize,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CoverageEntry, UploadError> {
        check_text("label", label)?;
        let report = parse_coverage(body)?;
        Ok(CoverageEntry {
            label: label.to_owned(),
            recorded_at: now,
            percent: report.percent(),
            domains: report.domains(depth),
        })
    }

    /// Keeps a coverage entry under its id (once).
    pub fn keep_coverage(&self, entry_id: String, entry: CoverageEntry) {
        let mut inner = self.lock();
        merge_coverage(&mut inner, entry_id, entry);
    }

    /// Joins history read back from the journal: uploads, coverage entries and runs by id,
    /// the formatter mode when it is newer than the one kept.
    pub fn merge_journal(
        &self,
        uploads: Vec<TestUpload>,
        coverage: Vec<(String, CoverageEntry)>,
        formatter: Option<(DateTime<Utc>, FormatterMode)>,
        runs: Vec<PipelineRun>,
    ) {
        let mut inner = self.lock();
        for upload in uploads {
            merge_upload(&mut inner, upload);
        }
        for (id, entry) in coverage {
            merge_coverage(&mut inner, id, entry);
        }
        if let Some((at, mode)) = formatter {
            if inner.formatter.as_ref().is_none_or(|(kept, _)| at >= *kept) {
                inner.formatter = Some((at, mode));
            }
        }
        for run in runs {
            upsert_run(&mut inner, run);
        }
    }

    /// Records the formatter mode (as of `at`).
    pub fn record_formatter(&self, mode: FormatterMode, at: DateTime<Utc>) {
        self.lock().formatter = Some((at, mode));
    }

    /// A consistent copy for one evaluation.
    pub fn view(&self) -> CiView {
        let inner = self.lock();
        CiView {
            runs: inner.runs.iter().cloned().collect(),
            uploads: inner.uploads.iter().cloned().collect(),
            coverage: CoverageState {
                trend: inner.coverage.iter().map(|(_, e)| e.clone()).collect(),
                formatter: inner.formatter.as_ref().map(|(_, m)| m.clone()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl CiStore {
        /// What an upload does, without the history records: prepared, then kept.
        fn record_report_for_test(
            &self,
            meta: UploadMeta,
            body: &[u8],
            upload_id: String,
            now: DateTime<Utc>,
        ) -> Result<TestUpload, UploadError> {
            let upload = Self::prepare_report(meta, body, upload_id, now)?;
            self.keep_upload(upload.clone());
            Ok(upload)
        }
    }

    #[test]
    fn hostile_upload_metadata_is_refused() {
        let ok = UploadMeta {
            commit: "abc".into(),
            ..UploadMeta::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (UploadMeta::default(), MetaError::Missing("commit")),
            (
                UploadMeta {
                    commit: "a\nb".into(),
                    ..ok.clone()
                },
                MetaError::Invalid("commit"),
            ),
            (
                UploadMeta {
                    commit: "x".repeat(257),
                    ..ok.clone()
                },
                MetaError::Invalid("commit"),
            ),
            (
                UploadMeta {
                    branch: Some(String::new()),
                    ..ok.clone()
                },
                MetaError::Invalid("branch"),
            ),
            (
                UploadMeta {
                    suite: Some("\u{0}".into()),
                    ..ok.clone()
                },
                MetaError::Invalid("suite"),
            ),
            (
                UploadMeta {
                    run_url: Some("javascript:alert(1)".into()),
                    ..ok.clone()
                },
                MetaError::BadUrl,
            ),
        ];
        for (meta, want) in cases {
            assert_eq!(meta.validate(), Err(want.clone()), "{meta:?}");
        }
    }

    #[test]
    fn journal_history_joins_by_id_and_is_never_republished() {
        use crate::junit::{Outcome, ReportFormat, TestCase, TestReport};
        let store = CiStore::new(Capacity::default());
        let xml = b"<testsuite><testcase name='t'/></testsuite>";
        let meta = UploadMeta {
            commit: "c".into(),
            ..UploadMeta::default()
        };
        let t = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).expect("time");
        let local = store
            .record_report_for_test(meta, xml, "u1".into(), t(10))
            .expect("valid");
        // the journal holds u1 with more cases (a part read later) and an older u0
        let mut fuller = local.clone();
        fuller.report.cases.push(TestCase {
            test_id: "t2".into(),
            outcome: Outcome::Failed,
            duration_seconds: 0.0,
            failure: None,
            retried_failures: 0,
        });
        let older = crate::flakes::TestUpload {
            upload_id: "u0".into(),
            recorded_at: t(0),
            report: TestReport {
                format: ReportFormat::Junit,
                cases: vec![],
            },
            ..local.clone()
        };
        let entry = CoverageEntry {
            label: "b".into(),
            recorded_at: t(5),
            percent: 80.0,
            domains: vec![],
        };
        let run: PipelineRun = serde_json::from_value(serde_json::json!({
            "run_id": 1, "workflow": "CI", "workflow_path": null, "run_number": 1,
            "run_attempt": 1, "display_title": "t", "event": null, "conclusion": "success",
            "branch": null, "commit": "c", "actor": null, "url": "https://gh/1",
            "repository": null, "repository_url": null, "started_at": null, "completed_at": null
        }))
        .expect("run");
        for _ in 0..2 {
            store.merge_journal(
                vec![fuller.clone(), older.clone()],
                vec![("e1".into(), entry.clone())],
                Some((t(1), FormatterMode::global())),
                vec![run.clone()],
            );
        }
        let view = store.view();
        let ids: Vec<_> = view.uploads.iter().map(|u| u.upload_id.as_str()).collect();
        assert_eq!(ids, ["u0", "u1"], "time order, each once");
        assert_eq!(
            view.uploads[1].report.cases.len(),
            2,
            "the fuller copy wins"
        );
        assert_eq!(view.coverage.trend.len(), 1);
        assert_eq!(view.coverage.formatter, Some(FormatterMode::global()));
        assert_eq!(view.runs.len(), 1);
        assert!(
            store.take_unpublished_runs().is_empty(),
            "journal runs are not republished"
        );
        assert!(store.has_upload("u1") && store.has_coverage("e1"));
        // a newer local formatter is not replaced by an older journaled one
        store.record_formatter(FormatterMode::allowlist("src/\n"), t(20));
        store.merge_journal(
            vec![],
            vec![],
            Some((t(2), FormatterMode::global())),
            vec![],
        );
        assert_eq!(
            store.view().coverage.formatter.map(|f| f.mode),
            Some("allowlist".into())
        );
        // a run recorded here waits in the outbox once
        let mut failed = run.clone();
        failed.run_attempt = 2;
        assert!(store.record_run(failed.clone()));
        assert!(!store.record_run(failed));
        assert_eq!(store.take_unpublished_runs().len(), 1);
    }

    #[test]
    fn a_refused_report_stores_nothing_and_capacity_bounds_history() {
        let store = CiStore::new(Capacity {
            uploads: 2,
            ..Capacity::default()
        });
        let meta = UploadMeta {
            commit: "c".into(),
            ..UploadMeta::default()
        };
        assert!(store
            .record_report_for_test(meta.clone(), b"<testsuite>", "u0".into(), Utc::now())
            .is_err());
        assert!(store.view().uploads.is_empty());
        let xml = b"<testsuite><testcase name='t'/></testsuite>";
        for i in 0..3 {
            store
                .record_report_for_test(meta.clone(), xml, format!("u{i}"), Utc::now())
                .expect("valid");
        }
        let ids: Vec<_> = store
            .view()
            .uploads
            .into_iter()
            .map(|u| u.upload_id)
            .collect();
        assert_eq!(ids, ["u1", "u2"]);
    }
}
