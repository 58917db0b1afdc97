//! Owns reading test reports and coverage from a directory (`ci.reports_dir`), for CI jobs that
//! can write to a shared volume but not reach the upload endpoint: each gather picks up new
//! files that stopped changing, feeds each through the same parse/validate/record path as the
//! HTTP upload ([`CiStore::prepare_report`] / [`CiStore::prepare_coverage`], then kept), exactly once per
//! content, and moves it to `processed/` or, with its reason, to `refused/`.
//!
//! The layout (documented in `docs/ci.md`, "Reports from a directory"):
//!
//! - `<dir>/<name>.xml`: JUnit XML (pytest, cargo-nextest, libtest, Surefire) or, when its root
//!   element is `<coverage>`, Cobertura; `<name>.json`: the plan's `flake_runs.json`;
//!   `<name>.info` / `<name>.lcov`: LCOV. Anything else is refused.
//! - metadata: `<stem>.meta.json` beside it (`commit`, `branch`, `run_id`, `run_url`, `suite`;
//!   `label`, `depth` for coverage), else the file name `<suite>@<commit>.<ext>`; a coverage
//!   file without either is labelled with its stem.
//! - dotfiles and `*.tmp` / `*.part` are never read (write there, then rename); a file is read
//!   at the first gather that sees it (and its sidecar) unchanged since the gather before.
//! - exactly once: the sha256 of the content, the sidecar and the name's commit is appended to
//!   `processed/.ledger` (its newest [`LEDGER_ENTRIES`] are remembered across restarts) before
//!   the file moves to `processed/`; a file whose sha256 is there already is moved without being
//!   recorded again. Upload ids derive from that sha256.
//! - refused (symbolic link, not a regular file, larger than the upload limit, unreadable, bad
//!   sidecar, malformed or invalid report): logged, moved to `refused/`, its reason appended to
//!   `refused/.reasons`; the `reports_dir` component lists `refused report <name>: <reason>`
//!   while the file stays in `refused/`. The next file goes through.
//!
//! A gather runs in three steps so the recording can be anything the intake does (the
//! domain's [`record_and_publish`]: history records published, then kept, like an upload): [`ReportsDir::collect`]
//! (blocking reads), the recording of each [`Candidate`], and [`ReportsDir::settle`] (ledger and
//! moves); a [`Recording::Retry`] leaves the file to be read again next gather.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use telemesh_core::snapshot::escape_cell;
use telemesh_core::{Component, DetailValue, Grade, Snapshot};

use crate::http::MAX_UPLOAD_BYTES;
use crate::intake::{CiStore, UploadMeta};

/// Where recorded files go.
pub const PROCESSED: &str = "processed";
/// Where refused files go.
pub const REFUSED: &str = "refused";
/// The content ledger inside `processed/`.
pub const LEDGER: &str = ".ledger";
/// The refusal reasons inside `refused/`.
pub const REASONS: &str = ".reasons";
/// The sidecar suffix: `<stem>.meta.json`.
pub const SIDECAR_SUFFIX: &str = ".meta.json";
/// Contents remembered as recorded (the ledger is compacted to this many).
pub const LEDGER_ENTRIES: usize = 10_000;
/// The most files read in one gather (the rest wait for the next).
pub const MAX_FILES_PER_SCAN: usize = 256;
/// The most bytes read in one gather (at least one file is always read).
pub const MAX_BYTES_PER_SCAN: u64 = 64 * 1024 * 1024;
/// The largest sidecar.
pub const MAX_SIDECAR_BYTES: u64 = 64 * 1024;
/// Refusals listed in the component (all are counted).
pub const LISTED_REFUSALS: usize = 20;
/// The component on `telemetry.ci.flakes`.
pub const COMPONENT: &str = "reports_dir";

/// What one file's directory entry looked like (size, mtime, inode; and its sidecar's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    sidecar: Option<(u64, i128, u64)>,
}

fn look_of(meta: &fs::Metadata) -> (u64, i128, u64) {
    (
        meta.len(),
        i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        meta.ino(),
    )
}

#[derive(Debug, Default)]
struct State {
    /// The previous gather's look at each file, and whether that look was settled (recorded,
    /// refused or left because it could not be moved): then it is not read again.
    seen: HashMap<OsString, (Look, bool)>,
    ledger: VecDeque<String>,
    ledger_set: HashSet<String>,
    ledger_loaded: bool,
    appended_since_compaction: usize,
    /// Refusal reasons by the file's name in `refused/`.
    reasons: HashMap<String, String>,
    reasons_loaded: bool,
    /// Lines in `refused/.reasons` (compacted when mostly about files no longer there).
    reasons_lines: usize,
    recorded_total: u64,
    duplicates_total: u64,
    refused_total: u64,
}

/// The reader of one reports directory (cheap to clone; the state is shared).
#[derive(Debug, Clone)]
pub struct ReportsDir {
    dir: PathBuf,
    state: Arc<Mutex<State>>,
}

/// What the directory looked like after a scan: graded into the `reports_dir` component.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirStatus {
    pub dir: String,
    /// Files recorded by this scan.
    pub recorded: usize,
    /// Files left for a later gather (still changing, or over this scan's budget).
    pub pending: usize,
    pub recorded_total: u64,
    pub duplicates_total: u64,
    pub refused_total: u64,
    /// Files in `refused/` now.
    pub refused_now: usize,
    /// `refused report <name>: <reason>`, newest first, at most [`LISTED_REFUSALS`].
    pub refusals: Vec<String>,
    /// The directory itself cannot be used (missing, unreadable, not writable).
    pub error: Option<String>,
}

/// The sidecar `<stem>.meta.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    run_id: Option<serde_json::Value>,
    #[serde(default)]
    run_url: Option<String>,
    #[serde(default)]
    suite: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    depth: Option<usize>,
}

/// What a file holds, from its extension (and, for XML, its root element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    TestReport,
    Coverage,
}

/// What reading one settled file gave.
enum FileRead {
    Candidate(Box<Candidate>),
    Duplicate,
    /// Changed while it was read: left for the next gather.
    Changing,
    Refused(String),
}

/// What a file is recorded as.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A test report (JUnit or `flake_runs.json`) with its upload metadata.
    Tests(UploadMeta),
    /// A coverage report (Cobertura or LCOV) with its label and domain depth.
    Coverage { label: String, depth: usize },
}

/// A settled file, read and checked, to be recorded through the intake.
#[derive(Debug, Clone)]
pub struct Candidate {
    name: OsString,
    look: Look,
    key: String,
    /// The file's name (lossy UTF-8), for logs.
    pub file: String,
    pub report: Report,
    pub body: Vec<u8>,
    /// Derived from the content key: the same content always gets the same id.
    pub upload_id: String,
    /// When it counts as recorded (oldest file first, a microsecond apart).
    pub at: DateTime<Utc>,
}

/// How recording a candidate went.
#[derive(Debug, Clone, PartialEq)]
pub enum Recording {
    Recorded,
    /// Refused for what it holds: moved to `refused/` with this reason.
    Refused(String),
    /// Not recorded for a passing reason (e.g. it could not be published): read again next
    /// gather.
    Retry(String),
}

/// The candidates of one scan, to record and then hand back to [`ReportsDir::settle`].
#[derive(Debug)]
pub struct Collected {
    status: DirStatus,
    pub candidates: Vec<Candidate>,
}

/// A candidate parsed and validated by the upload's own path, nothing kept yet.
#[derive(Debug, Clone)]
pub enum Prepared {
    Tests(crate::flakes::TestUpload),
    Coverage {
        entry_id: String,
        entry: crate::evaluate::CoverageEntry,
    },
}

impl Prepared {
    /// Its `telemetry.ci.history` records (what the journal keeps).
    pub fn records(&self, source: &telemesh_core::Source) -> Vec<telemesh_core::Snapshot> {
        match self {
            Prepared::Tests(upload) => crate::history::upload_records(upload, source),
            Prepared::Coverage { entry_id, entry } => {
                vec![crate::history::coverage_record(entry_id, entry, source)]
            }
        }
    }

    /// Keeps it in the store's state.
    pub fn keep(self, store: &CiStore) {
        match self {
            Prepared::Tests(upload) => store.keep_upload(upload),
            Prepared::Coverage { entry_id, entry } => store.keep_coverage(entry_id, entry),
        }
    }
}

/// Parses and validates a candidate as an upload of the same content would be.
pub fn prepare(candidate: &Candidate) -> Result<Prepared, String> {
    match &candidate.report {
        Report::Tests(meta) => CiStore::prepare_report(
            meta.clone(),
            &candidate.body,
            candidate.upload_id.clone(),
            candidate.at,
        )
        .map(Prepared::Tests),
        Report::Coverage { label, depth } => {
            CiStore::prepare_coverage(label, *depth, &candidate.body, candidate.at).map(|entry| {
                Prepared::Coverage {
                    entry_id: crate::history::content_id(
                        &[label, &depth.to_string()],
                        &candidate.body,
                    ),
                    entry,
                }
            })
        }
    }
    .map_err(|e| e.to_string())
}

/// Records a candidate in the store's memory only (no history records).
pub fn record_in(store: &CiStore, candidate: &Candidate) -> Recording {
    match prepare(candidate) {
        Ok(prepared) => {
            prepared.keep(store);
            Recording::Recorded
        }
        Err(reason) => Recording::Refused(reason),
    }
}

/// Records a candidate as an HTTP upload is: its history records are published first (when
/// the service publishes them) and only then is it kept; a failed publish leaves the file for
/// the next gather.
pub async fn record_and_publish(
    store: &CiStore,
    recorder: Option<&crate::history::Recorder>,
    candidate: &Candidate,
) -> Recording {
    let prepared = match prepare(candidate) {
        Ok(prepared) => prepared,
        Err(reason) => return Recording::Refused(reason),
    };
    if let Some(recorder) = recorder {
        if let Err(e) = recorder.publish(&prepared.records(recorder.source())).await {
            return Recording::Retry(format!("its history records were not published: {e}"));
        }
    }
    prepared.keep(store);
    Recording::Recorded
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a name is never read: dotfiles, in-progress writes and sidecars.
fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with('~')
        || name.ends_with(SIDECAR_SUFFIX)
}

fn stem_and_ext(name: &str) -> (&str, &str) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, ext),
        _ => (name, ""),
    }
}

/// The name of the root element of an XML document, skipping the declaration, comments and a
/// doctype (a cheap look; the parser decides whether the document is well-formed).
fn xml_root(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?") {
            rest = after.split_once("?>")?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->")?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix("<!") {
            rest = after.split_once('>')?.1.trim_start();
        } else {
            let after = rest.strip_prefix('<')?;
            let end = after
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(after.len());
            return Some(after[..end].to_owned());
        }
    }
}

fn kind_of(ext: &str, body: &[u8]) -> Result<FileKind, String> {
    match ext.to_ascii_lowercase().as_str() {
        "xml" => Ok(if xml_root(body).as_deref() == Some("coverage") {
            FileKind::Coverage
        } else {
            FileKind::TestReport
        }),
        "json" => Ok(FileKind::TestReport),
        "info" | "lcov" => Ok(FileKind::Coverage),
        _ => Err(
            "not a report file: name it .xml (JUnit or Cobertura), .json (flake_runs.json), \
             .info or .lcov (LCOV)"
                .to_owned(),
        ),
    }
}

/// Reads at most `limit` bytes; `Err` when the file holds more.
fn read_bounded(file: &mut File, limit: u64) -> std::io::Result<Result<Vec<u8>, ()>> {
    let mut body = Vec::new();
    file.take(limit + 1).read_to_end(&mut body)?;
    Ok(if body.len() as u64 > limit {
        Err(())
    } else {
        Ok(body)
    })
}

/// A deterministic upload id from the content key (a v4-shaped UUID of its first 16 bytes).
fn upload_id(key: &[u8; 32]) -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&key[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

impl ReportsDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// One whole scan, recording in `store` ([`Self::collect`], [`record_in`],
    /// [`Self::settle`]). Blocking file I/O: run it off the async workers.
    pub fn scan(&self, store: &CiStore, now: DateTime<Utc>) -> DirStatus {
        let collected = self.collect(now);
        let results = collected
            .candidates
            .iter()
            .map(|c| record_in(store, c))
            .collect();
        self.settle(collected, results)
    }

    /// Lists the directory, refuses what needs no read, and reads the settled files (oldest
    /// first, within this gather's budget) into candidates. Blocking file I/O.
    pub fn collect(&self, now: DateTime<Utc>) -> Collected {
        let mut state = lock(&self.state);
        let mut candidates = Vec::new();
        let mut status = DirStatus {
            dir: self.dir.display().to_string(),
            ..DirStatus::default()
        };
        if let Err(e) = self.prepare(&mut state) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "reports directory unusable");
            status.error = Some(e);
            return Collected { status, candidates };
        }
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                status.error = Some(format!(
                    "cannot list {}: {e}; create it or fix ci.reports_dir",
                    self.dir.display()
                ));
                return Collected { status, candidates };
            }
        };
        let mut present: HashSet<OsString> = HashSet::new();
        let mut ready: Vec<(OsString, Look)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let shown = name.to_string_lossy().into_owned();
            if ignored(&shown) || shown == PROCESSED || shown == REFUSED {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue; // gone since it was listed
            };
            if meta.is_dir() {
                continue; // other directories are left alone
            }
            present.insert(name.clone());
            let look = self.look(&shown, &meta);
            if state.seen.get(&name) == Some(&(look, true)) {
                continue; // settled (it could not be moved): not again while unchanged
            }
            if let Some(reason) = Self::refuse_early(&name, &meta) {
                // Refused without reading: no need to wait for it to settle.
                self.refuse(&mut state, &name, &reason, &mut status);
                continue;
            }
            match state.seen.get(&name) {
                Some((before, settled)) if *before == look => {
                    if !settled {
                        ready.push((name, look));
                    }
                }
                _ => {
                    state.seen.insert(name, (look, false));
                    status.pending += 1;
                }
            }
        }
        state.seen.retain(|name, _| present.contains(name));

        // Oldest first, so a commit's runs are recorded in the order they were written.
        ready.sort_by_key(|(name, look)| (look.mtime_ns, name.clone()));
        let mut budget = MAX_BYTES_PER_SCAN;
        for (i, (name, look)) in ready.iter().enumerate() {
            if i >= MAX_FILES_PER_SCAN || (i > 0 && look.size > budget) {
                status.pending += ready.len() - i;
                break;
            }
            budget = budget.saturating_sub(look.size);
            let shown = name.to_string_lossy().into_owned();
            // Oldest file first and a microsecond apart: the flake detector orders uploads by
            // when they were recorded, so "failed, then passed" keeps the files' order.
            let at = now + chrono::Duration::microseconds(i as i64);
            match self.read(&mut state, name, &shown, *look, at) {
                FileRead::Candidate(candidate) => {
                    if candidates.iter().any(|c| c.key == candidate.key) {
                        // the same content twice in one gather: the second waits for the
                        // ledger to say whether the first was recorded
                        status.pending += 1;
                    } else {
                        candidates.push(*candidate);
                    }
                }
                FileRead::Duplicate => {
                    state.duplicates_total += 1;
                    tracing::info!(file = %shown, "report already recorded (same content): moved to processed/");
                    self.settle_name(&mut state, name, *look);
                }
                FileRead::Changing => {
                    state.seen.remove(name);
                    status.pending += 1;
                }
                FileRead::Refused(reason) => self.refuse(&mut state, name, &reason, &mut status),
            }
        }
        Collected { status, candidates }
    }

    /// Finishes a scan with how each candidate's recording went: recorded ones are entered in
    /// the ledger and moved to `processed/`, refused ones to `refused/`, the others are read
    /// again next gather. Blocking file I/O.
    pub fn settle(&self, collected: Collected, results: Vec<Recording>) -> DirStatus {
        let mut state = lock(&self.state);
        let Collected {
            mut status,
            candidates,
        } = collected;
        for (candidate, result) in candidates.iter().zip(
            results
                .into_iter()
                .chain(std::iter::repeat(Recording::Retry("not recorded".into()))),
        ) {
            let (name, shown) = (&candidate.name, &candidate.file);
            match result {
                Recording::Recorded => {
                    if let Err(e) = self.append_ledger(&mut state, &candidate.key, shown) {
                        tracing::warn!(file = %shown, error = %e, "cannot append to processed/.ledger: a restart may record this report again");
                    }
                    tracing::info!(file = %shown, "report read from the reports directory");
                    if let Err(e) = self.move_to(PROCESSED, name, shown) {
                        tracing::warn!(file = %shown, error = %e, "cannot move a recorded report to processed/; it will not be read again while it is unchanged");
                    }
                    state.recorded_total += 1;
                    status.recorded += 1;
                    self.settle_name(&mut state, name, candidate.look);
                }
                Recording::Refused(reason) => self.refuse(&mut state, name, &reason, &mut status),
                Recording::Retry(reason) => {
                    tracing::warn!(file = %shown, %reason, "report not recorded; read again next gather");
                    status.pending += 1;
                }
            }
        }
        self.finish(&mut state, status)
    }

    /// Creates `processed/` and `refused/`, loads the ledger and the reasons once.
    fn prepare(&self, state: &mut State) -> Result<(), String> {
        let meta = fs::metadata(&self.dir).map_err(|e| {
            format!(
                "cannot read {}: {e}; create it or fix ci.reports_dir",
                self.dir.display()
            )
        })?;
        if !meta.is_dir() {
            return Err(format!(
                "{} is not a directory: point ci.reports_dir at one",
                self.dir.display()
            ));
        }
        for sub in [PROCESSED, REFUSED] {
            let path = self.dir.join(sub);
            fs::create_dir_all(&path).map_err(|e| {
                format!(
                    "cannot create {}: {e}; the directory must be writable",
                    path.display()
                )
            })?;
            // Never follow a link planted in the directory: files would be moved, and the
            // ledger or the reasons appended to, wherever it points.
            let real_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            let own = [LEDGER, REASONS]
                .iter()
                .all(|f| fs::symlink_metadata(path.join(f)).map_or(true, |m| m.is_file()));
            if !real_dir || !own {
                return Err(format!(
                    "{} (or its {LEDGER} / {REASONS}) is not a plain directory (file): a link or \
                     something else was put there; remove it",
                    path.display()
                ));
            }
        }
        if !state.ledger_loaded {
            self.load_ledger(state);
            state.ledger_loaded = true;
        }
        if !state.reasons_loaded {
            if let Ok(file) = File::open(self.dir.join(REFUSED).join(REASONS)) {
                for line in BufReader::new(file.take(4 * 1024 * 1024))
                    .lines()
                    .map_while(Result::ok)
                {
                    state.reasons_lines += 1;
                    if let Some((name, reason)) = line.split_once('\t') {
                        state.reasons.insert(name.to_owned(), reason.to_owned());
                    }
                }
            }
            state.reasons_loaded = true;
        }
        Ok(())
    }

    fn load_ledger(&self, state: &mut State) {
        let path = self.dir.join(PROCESSED).join(LEDGER);
        let Ok(file) = File::open(&path) else {
            return;
        };
        let mut lines = 0usize;
        for line in BufReader::new(file.take(64 * 1024 * 1024))
            .lines()
            .map_while(Result::ok)
        {
            lines += 1;
            let key = line.split(' ').next().unwrap_or_default();
            if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                Self::remember(state, key.to_owned());
            }
        }
        if lines > LEDGER_ENTRIES {
            self.compact_ledger(state);
        }
    }

    fn remember(state: &mut State, key: String) {
        if state.ledger_set.insert(key.clone()) {
            state.ledger.push_back(key);
            while state.ledger.len() > LEDGER_ENTRIES {
                if let Some(old) = state.ledger.pop_front() {
                    state.ledger_set.remove(&old);
                }
            }
        }
    }

    /// Rewrites the ledger with the remembered keys (temp file + rename).
    fn compact_ledger(&self, state: &mut State) {
        let path = self.dir.join(PROCESSED).join(LEDGER);
        let tmp = self.dir.join(PROCESSED).join(".ledger.tmp");
        let written = (|| -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            for key in &state.ledger {
                writeln!(file, "{key}")?;
            }
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        match written {
            Ok(()) => state.appended_since_compaction = 0,
            Err(e) => tracing::warn!(error = %e, "cannot compact the reports ledger"),
        }
    }

    /// Rewrites `refused/.reasons` with the reasons of the files still there.
    fn compact_reasons(&self, state: &mut State) {
        let path = self.dir.join(REFUSED).join(REASONS);
        let tmp = self.dir.join(REFUSED).join(".reasons.tmp");
        let written = (|| -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            for (name, reason) in &state.reasons {
                writeln!(file, "{name}\t{reason}")?;
            }
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        match written {
            Ok(()) => state.reasons_lines = state.reasons.len(),
            Err(e) => tracing::warn!(error = %e, "cannot compact refused/.reasons"),
        }
    }

    /// Appends a recorded content's key to the ledger (synced before the file moves).
    fn append_ledger(&self, state: &mut State, key: &str, shown: &str) -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(PROCESSED).join(LEDGER))?;
        writeln!(file, "{key} {}", shown.replace(['\n', '\r'], "?"))?;
        file.sync_data()?;
        Self::remember(state, key.to_owned());
        state.appended_since_compaction += 1;
        if state.appended_since_compaction >= LEDGER_ENTRIES {
            self.compact_ledger(state);
        }
        Ok(())
    }

    /// How a file and its sidecar look now.
    fn look(&self, shown: &str, meta: &fs::Metadata) -> Look {
        let (size, mtime_ns, ino) = look_of(meta);
        let sidecar = fs::symlink_metadata(self.sidecar_path(shown))
            .ok()
            .map(|m| look_of(&m));
        Look {
            size,
            mtime_ns,
            ino,
            sidecar,
        }
    }

    fn sidecar_path(&self, shown: &str) -> PathBuf {
        let (stem, _) = stem_and_ext(shown);
        self.dir.join(format!("{stem}{SIDECAR_SUFFIX}"))
    }

    /// A refusal that needs no read: a link, not a regular file, too large, a non-UTF-8 name.
    fn refuse_early(name: &OsString, meta: &fs::Metadata) -> Option<String> {
        if meta.file_type().is_symlink() {
            return Some(
                "a symbolic link (links are not followed): copy the file into the directory"
                    .to_owned(),
            );
        }
        if !meta.is_file() {
            return Some("not a regular file: write reports as plain files".to_owned());
        }
        if meta.len() > MAX_UPLOAD_BYTES as u64 {
            return Some(format!(
                "{} bytes is larger than the {MAX_UPLOAD_BYTES}-byte upload limit: split it or \
                 write the file the tool wrote",
                meta.len()
            ));
        }
        if name.to_str().is_none() {
            return Some("the file name is not UTF-8: rename it".to_owned());
        }
        None
    }

    /// Reads one settled file and its sidecar into a candidate.
    fn read(
        &self,
        state: &mut State,
        name: &OsString,
        shown: &str,
        look: Look,
        at: DateTime<Utc>,
    ) -> FileRead {
        let path = self.dir.join(name);
        let before = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) => return FileRead::Refused(format!("cannot read: {e}")),
        };
        if let Some(reason) = Self::refuse_early(name, &before) {
            return FileRead::Refused(reason);
        }
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) => {
                return FileRead::Refused(format!("cannot read: {e}; make it readable by telemesh"))
            }
        };
        // The file opened must be the one looked at (not swapped for a link or a FIFO).
        match file.metadata() {
            Ok(opened) if opened.is_file() && opened.ino() == before.ino() => {}
            Ok(_) => return FileRead::Changing,
            Err(e) => return FileRead::Refused(format!("cannot read: {e}")),
        }
        let body = match read_bounded(&mut file, MAX_UPLOAD_BYTES as u64) {
            Ok(Ok(body)) => body,
            Ok(Err(())) => {
                return FileRead::Refused(format!(
                    "larger than the {MAX_UPLOAD_BYTES}-byte upload limit: split it"
                ))
            }
            Err(e) => {
                return FileRead::Refused(format!("cannot read: {e}; make it readable by telemesh"))
            }
        };
        match fs::symlink_metadata(&path) {
            Ok(after) if look_of(&after) == look_of(&before) => {}
            _ => return FileRead::Changing,
        }
        let (stem, ext) = stem_and_ext(shown);
        let (sidecar, sidecar_bytes) = match self.read_sidecar(shown) {
            Ok(found) => found,
            Err(reason) => return FileRead::Refused(reason),
        };
        let kind = match kind_of(ext, &body) {
            Ok(kind) => kind,
            Err(reason) => return FileRead::Refused(reason),
        };
        let (name_suite, name_commit) = match stem.rsplit_once('@') {
            Some((suite, commit)) if !commit.is_empty() => {
                (Some(suite).filter(|s| !s.is_empty()), Some(commit))
            }
            _ => (None, None),
        };
        // The content key: the report, its sidecar and the commit its name gives.
        let mut hasher = Sha256::new();
        hasher.update(&body);
        hasher.update([0u8]);
        hasher.update(&sidecar_bytes);
        hasher.update([0u8]);
        hasher.update(name_commit.unwrap_or_default().as_bytes());
        let digest: [u8; 32] = hasher.finalize().into();
        let key = hex::encode(digest);
        if state.ledger_set.contains(&key) {
            return match self.move_to(PROCESSED, name, shown) {
                Ok(()) => FileRead::Duplicate,
                Err(e) => {
                    tracing::warn!(file = %shown, error = %e, "cannot move a recorded report to processed/; it will not be read again while it is unchanged");
                    FileRead::Duplicate
                }
            };
        }
        let report = match kind {
            FileKind::TestReport => {
                let run_id = match sidecar.run_id {
                    None => None,
                    Some(serde_json::Value::String(s)) => Some(s),
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    Some(_) => {
                        return FileRead::Refused(format!(
                        "bad sidecar {stem}{SIDECAR_SUFFIX}: run_id must be a string or a number"
                    ))
                    }
                };
                let Some(commit) = sidecar.commit.or_else(|| name_commit.map(str::to_owned)) else {
                    return FileRead::Refused(format!(
                        "no commit: write {stem}{SIDECAR_SUFFIX} with {{\"commit\": \"<sha>\"}} \
                         beside it, or name the file <suite>@<commit>.{ext}"
                    ));
                };
                Report::Tests(UploadMeta {
                    commit,
                    branch: sidecar.branch,
                    run_id,
                    run_url: sidecar.run_url,
                    suite: sidecar.suite.or_else(|| name_suite.map(str::to_owned)),
                })
            }
            FileKind::Coverage => {
                let depth = sidecar.depth.unwrap_or(2);
                if !(1..=16).contains(&depth) {
                    return FileRead::Refused(format!(
                        "bad sidecar {stem}{SIDECAR_SUFFIX}: depth must be 1 to 16"
                    ));
                }
                let label = sidecar
                    .label
                    .or(sidecar.commit)
                    .or_else(|| name_commit.map(str::to_owned))
                    .unwrap_or_else(|| stem.to_owned());
                Report::Coverage { label, depth }
            }
        };
        FileRead::Candidate(Box::new(Candidate {
            name: name.clone(),
            look,
            key,
            file: shown.to_owned(),
            report,
            body,
            upload_id: upload_id(&digest),
            at,
        }))
    }

    /// The sidecar's fields and raw bytes (empty when there is none).
    fn read_sidecar(&self, shown: &str) -> Result<(Sidecar, Vec<u8>), String> {
        let path = self.sidecar_path(shown);
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Sidecar::default(), Vec::new()))
            }
            Err(e) => return Err(format!("bad sidecar {label}: {e}")),
        };
        if !meta.is_file() {
            return Err(format!(
                "bad sidecar {label}: not a regular file (links are not followed)"
            ));
        }
        let mut file = File::open(&path).map_err(|e| format!("bad sidecar {label}: {e}"))?;
        let bytes = match read_bounded(&mut file, MAX_SIDECAR_BYTES) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(())) => {
                return Err(format!(
                    "bad sidecar {label}: larger than {MAX_SIDECAR_BYTES} bytes"
                ))
            }
            Err(e) => return Err(format!("bad sidecar {label}: {e}")),
        };
        let sidecar: Sidecar = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "bad sidecar {label}: {e}; it is a JSON object with commit, branch, run_id, \
                 run_url, suite (reports) or label, depth (coverage)"
            )
        })?;
        Ok((sidecar, bytes))
    }

    /// Moves a file and its sidecar into `sub/` under a free name; returns the name used.
    fn move_to(&self, sub: &str, name: &OsString, shown: &str) -> std::io::Result<()> {
        self.move_named(sub, name, shown).map(|_| ())
    }

    fn move_named(&self, sub: &str, name: &OsString, shown: &str) -> std::io::Result<String> {
        let target_dir = self.dir.join(sub);
        let mut target = shown.to_owned();
        let mut n = 0u32;
        while target_dir.join(&target).symlink_metadata().is_ok() {
            n += 1;
            if n > 1_000 {
                return Err(std::io::Error::other(format!(
                    "{sub}/ holds 1000 files named {shown}: clear it"
                )));
            }
            target = format!("{shown}.{n}");
        }
        fs::rename(self.dir.join(name), target_dir.join(&target))?;
        let sidecar = self.sidecar_path(shown);
        if sidecar.symlink_metadata().is_ok() {
            let side_name = sidecar
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let side_target = if n == 0 {
                side_name
            } else {
                format!("{side_name}.{n}")
            };
            if let Err(e) = fs::rename(&sidecar, target_dir.join(side_target)) {
                tracing::warn!(file = %sidecar.display(), error = %e, "cannot move the sidecar");
            }
        }
        Ok(target)
    }

    fn settle_name(&self, state: &mut State, name: &OsString, look: Look) {
        state.seen.insert(name.clone(), (look, true));
    }

    /// Logs, counts and moves a refused file to `refused/` with its reason.
    fn refuse(&self, state: &mut State, name: &OsString, reason: &str, status: &mut DirStatus) {
        let shown = name.to_string_lossy().into_owned();
        tracing::warn!(file = %shown, %reason, "refused report in the reports directory");
        state.refused_total += 1;
        let reason_line = reason.replace(['\n', '\r', '\t'], " ");
        match self.move_named(REFUSED, name, &shown) {
            Ok(target) => {
                state.seen.remove(name);
                let appended = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(REFUSED).join(REASONS))
                    .and_then(|mut f| writeln!(f, "{target}\t{reason_line}"));
                match appended {
                    Ok(()) => state.reasons_lines += 1,
                    Err(e) => tracing::warn!(error = %e, "cannot append to refused/.reasons"),
                }
                state.reasons.insert(target, reason_line);
            }
            Err(e) => {
                tracing::warn!(file = %shown, error = %e, "cannot move a refused report to refused/; it will not be read again while it is unchanged");
                if let Ok(meta) = fs::symlink_metadata(self.dir.join(name)) {
                    let look = self.look(&shown, &meta);
                    state.seen.insert(name.clone(), (look, true));
                }
                status.error.get_or_insert(format!(
                    "cannot move {shown} to refused/: {e}; the directory must be writable"
                ));
            }
        }
    }

    /// Lists `refused/` (newest first) into the status.
    fn finish(&self, state: &mut State, mut status: DirStatus) -> DirStatus {
        status.recorded_total = state.recorded_total;
        status.duplicates_total = state.duplicates_total;
        status.refused_total = state.refused_total;
        let mut refused: Vec<(i128, String)> = fs::read_dir(self.dir.join(REFUSED))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name.ends_with(SIDECAR_SUFFIX) {
                    return None;
                }
                let mtime = e
                    .path()
                    .symlink_metadata()
                    .map(|m| look_of(&m).1)
                    .unwrap_or_default();
                Some((mtime, name))
            })
            .collect();
        refused.sort_by(|a, b| b.cmp(a));
        let names: HashSet<&String> = refused.iter().map(|(_, n)| n).collect();
        state.reasons.retain(|name, _| names.contains(name));
        if status.error.is_none()
            && state.reasons_lines > 1_000
            && state.reasons_lines > 2 * state.reasons.len()
        {
            self.compact_reasons(state);
        }
        status.refused_now = refused.len();
        status.refusals = refused
            .iter()
            .take(LISTED_REFUSALS)
            .map(|(_, name)| {
                let reason = state
                    .reasons
                    .get(name)
                    .map_or("reason not recorded", String::as_str);
                format!("refused report {name}: {reason}")
            })
            .collect();
        status
    }
}

/// Adds the `reports_dir` component (pure): `warn` while `refused/` holds files or the directory
/// cannot be used, else `ok`.
pub fn add_component(snapshot: &mut Snapshot, status: &DirStatus) {
    let (grade, summary) = if let Some(error) = &status.error {
        (Grade::Warn, format!("reports directory unusable: {error}"))
    } else if status.refused_now > 0 {
        (
            Grade::Warn,
            format!(
                "{} refused report{} in {}/{REFUSED}: fix and move back, or delete",
                status.refused_now,
                if status.refused_now == 1 { "" } else { "s" },
                status.dir
            ),
        )
    } else {
        (
            Grade::Ok,
            format!(
                "{} report{} read from {}, {} waiting",
                status.recorded_total,
                if status.recorded_total == 1 { "" } else { "s" },
                status.dir,
                status.pending
            ),
        )
    };
    snapshot.push(
        Component::new(COMPONENT, grade, summary.clone())
            .detail("dir", status.dir.clone())
            .detail("recorded", status.recorded_total as i64)
            .detail("duplicates", status.duplicates_total as i64)
            .detail("refused", status.refused_total as i64)
            .detail("refused_now", status.refused_now as i64)
            .detail("pending", status.pending as i64)
            .detail(
                "refusals",
                DetailValue::List(
                    status
                        .refusals
                        .iter()
                        .cloned()
                        .map(DetailValue::Text)
                        .collect(),
                ),
            ),
    );
    snapshot.metric("reports_dir_refused", status.refused_now as f64);
    snapshot.markdown.push_str(&format!(
        "\nReports directory: {}.\n",
        escape_cell(&summary)
    ));
    for refusal in &status.refusals {
        snapshot
            .markdown
            .push_str(&format!("- {}\n", escape_cell(refusal)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert!(ignored(".hidden.xml") && ignored("a.xml.tmp") && ignored("a.meta.json"));
        assert!(!ignored("a.xml") && !ignored("flake_runs.json"));
        assert_eq!(stem_and_ext("pytest@abc.xml"), ("pytest@abc", "xml"));
        assert_eq!(stem_and_ext("noext"), ("noext", ""));
        assert_eq!(stem_and_ext(".xml"), (".xml", ""));
        assert_eq!(
            xml_root(b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- c --><!DOCTYPE coverage><coverage line-rate='1'>"),
            Some("coverage".into())
        );
        assert_eq!(xml_root(b"<testsuites>"), Some("testsuites".into()));
        assert_eq!(xml_root(b"<?xml"), None);
        assert_eq!(kind_of("XML", b"<coverage/>"), Ok(FileKind::Coverage));
        assert_eq!(kind_of("xml", b"<testsuite/>"), Ok(FileKind::TestReport));
        assert_eq!(kind_of("json", b"{}"), Ok(FileKind::TestReport));
        assert_eq!(kind_of("lcov", b""), Ok(FileKind::Coverage));
        assert!(kind_of("txt", b"").is_err());
        let a = upload_id(&[7u8; 32]);
        assert_eq!(a, upload_id(&[7u8; 32]));
        assert_ne!(a, upload_id(&[8u8; 32]));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn the_component_warns_while_refused_files_wait_and_lists_them() {
        let at = Utc::now();
        let source = telemesh_core::Source::new("ci", "ci-0");
        let mut ok = Snapshot::new(crate::kinds::FLAKES, source.clone(), at);
        add_component(
            &mut ok,
            &DirStatus {
                dir: "/r".into(),
                recorded_total: 3,
                ..DirStatus::default()
            },
        );
        assert_eq!(ok.status, Grade::Ok);
        let mut warn = Snapshot::new(crate::kinds::FLAKES, source.clone(), at);
        add_component(
            &mut warn,
            &DirStatus {
                dir: "/r".into(),
                refused_now: 1,
                refusals: vec!["refused report a.xml: bad".into()],
                ..DirStatus::default()
            },
        );
        assert_eq!(warn.status, Grade::Warn);
        let c = warn.component(COMPONENT).expect("component");
        assert_eq!(
            c.details["refusals"],
            DetailValue::List(vec![DetailValue::Text("refused report a.xml: bad".into())])
        );
        let mut broken = Snapshot::new(crate::kinds::FLAKES, source, at);
        add_component(
            &mut broken,
            &DirStatus {
                error: Some("gone".into()),
                ..DirStatus::default()
            },
        );
        assert_eq!(broken.status, Grade::Warn);
    }
}
