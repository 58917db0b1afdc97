//! Owns the CI domain on the framework: gathers a copy of the intake's state, grades it into
//! `telemetry.ci.pipeline`, `telemetry.ci.flakes` and `telemetry.ci.coverage`, and mounts the
//! intake routes; new data re-evaluates at once (`run_now`). Each gather, with
//! `ci.aggregator_url`, first reads the history journaled since the last read (the whole flake
//! window at start) back into the state, so a restarted or second replica grades the same
//! history, then polls and publishes the runs recorded since the last gather as history
//! records.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use telemesh_core::Snapshot;
use telemesh_service::{Domain, Evaluation, NotConfigured, Routes, ServiceHandle};

use crate::evaluate;
use crate::flakes::detect;
use crate::history::{run_record, Recorder};
use crate::http::{configure, CiHttp};
use crate::intake::{Capacity, CiStore, CiView};
use crate::journal::JournalClient;
use crate::kinds;
use crate::poller::{PollOutcome, Poller};
use crate::reports_dir::{record_and_publish, DirStatus, ReportsDir};
use crate::settings::CiSettings;

/// The service name (`serve ci`, `Source.service`).
pub const NAME: &str = "ci";

/// How far back each read of the journal after the first reaches before the newest row it
/// saw (rows journaled late, e.g. another replica's, are still read; known ones are skipped).
pub const JOURNAL_OVERLAP: chrono::Duration = chrono::Duration::minutes(15);

/// The CI domain.
#[derive(Debug)]
pub struct CiDomain {
    settings: CiSettings,
    store: CiStore,
    poller: Option<Poller>,
    /// Set once the service runs (its publisher and source).
    recorder: Arc<OnceLock<Recorder>>,
    journal: Option<JournalClient>,
    /// Where the next journal read starts (`None`: not read yet, the whole window).
    journal_since: Option<DateTime<Utc>>,
    reports_dir: Option<ReportsDir>,
}

/// What one gather found: the intake's state and, when the poller runs, its outcome.
#[derive(Debug, Clone)]
pub struct CiState {
    pub view: CiView,
    pub poll: Option<PollOutcome>,
    /// With `ci.aggregator_url`: the rows read back from the journal, or why not.
    pub journal: Option<Result<usize, String>>,
    /// The reports directory after this gather's scan, when `ci.reports_dir` is set.
    pub reports_dir: Option<DirStatus>,
}

impl CiDomain {
    pub fn new(settings: CiSettings) -> Self {
        let poller = settings.polls().then(|| {
            Poller::new(
                &settings.github_api,
                settings.poll_repository.trim(),
                settings.poll_workflow.trim(),
                settings.github_token.clone(),
                Duration::from_secs(10),
            )
        });
        let journal = (!settings.aggregator_url.trim().is_empty()).then(|| {
            JournalClient::new(
                settings.aggregator_url.trim(),
                settings.aggregator_token.clone(),
                Duration::from_secs(settings.aggregator_timeout_seconds.max(1)),
            )
        });
        let reports_dir =
            (!settings.reports_dir.is_empty()).then(|| ReportsDir::new(&settings.reports_dir));
        Self {
            settings,
            store: CiStore::new(Capacity::default()),
            poller,
            recorder: Arc::new(OnceLock::new()),
            journal,
            journal_since: None,
            reports_dir,
        }
    }

    /// Publishes the runs recorded since the last cycle (put back when that fails).
    async fn publish_runs(&self) {
        let Some(recorder) = self.recorder.get() else {
            return;
        };
        let runs = self.store.take_unpublished_runs();
        let now = Utc::now();
        for (i, run) in runs.iter().enumerate() {
            let record = run_record(run, recorder.source(), now);
            if let Err(detail) = recorder.publish(&[record]).await {
                tracing::warn!(%detail, "run history not published; trying again next cycle");
                self.store.requeue_unpublished_runs(runs[i..].to_vec());
                return;
            }
        }
    }

    /// Reads the history journaled since the last read into the state.
    async fn read_journal(&mut self) -> Option<Result<usize, String>> {
        let client = self.journal.as_ref()?;
        let now = Utc::now();
        let since = self
            .journal_since
            .unwrap_or_else(|| now - self.settings.flake_policy().window);
        Some(match client.fetch(since).await {
            Ok(fetched) => {
                let rows = fetched.rows;
                if let Some(newest) = fetched.newest {
                    self.journal_since = Some((newest - JOURNAL_OVERLAP).max(since));
                } else if self.journal_since.is_none() {
                    self.journal_since = Some(since);
                }
                self.store.merge_journal(
                    fetched.uploads,
                    fetched.coverage,
                    fetched.formatter,
                    fetched.runs,
                );
                Ok(rows)
            }
            Err(e) => {
                tracing::warn!(error = %e, "CI history not read from the journal");
                Err(e.to_string())
            }
        })
    }

    /// Reads the reports directory: its files (blocking I/O, off the async workers) go
    /// through the intake's record path, then are moved to `processed/` or `refused/`.
    async fn read_reports_dir(&self, dir: ReportsDir) -> DirStatus {
        let recorder = self.recorder.get();
        use actix_web::rt::task::spawn_blocking;
        let failed = |e: actix_web::rt::task::JoinError| DirStatus {
            error: Some(format!("the directory scan failed: {e}")),
            ..DirStatus::default()
        };
        let reader = dir.clone();
        let collected = match spawn_blocking(move || reader.collect(Utc::now())).await {
            Ok(collected) => collected,
            Err(e) => return failed(e),
        };
        let mut results = Vec::with_capacity(collected.candidates.len());
        for candidate in &collected.candidates {
            results.push(record_and_publish(&self.store, recorder, candidate).await);
        }
        spawn_blocking(move || dir.settle(collected, results))
            .await
            .unwrap_or_else(failed)
    }

    /// The intake's state (for tests and for seeding history).
    pub fn store(&self) -> &CiStore {
        &self.store
    }
}

impl Domain for CiDomain {
    type State = CiState;

    fn name(&self) -> &'static str {
        NAME
    }

    fn kinds(&self) -> Vec<&'static str> {
        kinds::ALL.to_vec()
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.interval_seconds.max(1))
    }

    fn not_configured(&self) -> Option<NotConfigured> {
        (self.settings.webhook_secret.expose().is_empty()
            && self.settings.api_token.expose().is_empty()
            && !self.settings.polls()
            && self.reports_dir.is_none())
            .then(|| {
                NotConfigured::new(
                    "ci.webhook_secret",
                    "no CI data can arrive: set the GitHub webhook secret (and ci.api_token for report uploads)",
                )
            })
    }

    async fn gather(&mut self) -> CiState {
        // the journal first: runs it already holds are not published again after a restart
        let journal = self.read_journal().await;
        let poll = match &mut self.poller {
            Some(poller) => {
                let outcome = poller.poll(&self.store, Utc::now()).await;
                if let PollOutcome::Failed(detail) = &outcome {
                    tracing::warn!(%detail, "workflow-run poll failed");
                }
                Some(outcome)
            }
            None => None,
        };
        self.publish_runs().await;
        let reports_dir = match &self.reports_dir {
            Some(dir) => Some(self.read_reports_dir(dir.clone()).await),
            None => None,
        };
        CiState {
            view: self.store.view(),
            poll,
            journal,
            reports_dir,
        }
    }

    fn evaluate(&self, state: &CiState, at: &Evaluation) -> Vec<Snapshot> {
        let policy = self.settings.policy();
        let findings = detect(&state.view.uploads, &self.settings.flake_policy(), at.now);
        let mut pipeline = evaluate::pipeline(&policy, &state.view.runs, at.source.clone(), at.now);
        if let Some(poll) = &state.poll {
            evaluate::add_poller(&mut pipeline, poll);
        }
        let mut flakes = evaluate::flakes(&policy, &findings, at.source.clone(), at.now);
        if let Some(read) = &state.journal {
            evaluate::add_journal(&mut flakes, read);
        }
        if let Some(status) = &state.reports_dir {
            crate::reports_dir::add_component(&mut flakes, status);
        }
        let state = &state.view;
        vec![
            pipeline,
            flakes,
            evaluate::coverage(&policy, &state.coverage, at.source.clone(), at.now),
        ]
    }

    fn routes(&self, service: &ServiceHandle) -> Option<Routes> {
        let recorder = Recorder::new(service.publisher().clone(), service.source().clone());
        let _ = self.recorder.set(recorder.clone());
        let handle = service.clone();
        let state = CiHttp {
            store: self.store.clone(),
            webhook_secret: self.settings.webhook_secret.clone(),
            api_token: self.settings.api_token.clone(),
            on_change: Arc::new(move || {
                let handle = handle.clone();
                actix_web::rt::spawn(async move {
                    handle.run_now().await;
                });
            }),
            recorder: Some(recorder),
        };
        Some(Arc::new(move |cfg| configure(cfg, state.clone())))
    }
}
