//! Owns the CI domain on the framework: gathers a copy of the intake's state, grades it into
//! `telemetry.ci.pipeline`, `telemetry.ci.flakes` and `telemetry.ci.coverage`, and mounts the
//! intake routes; new data re-evaluates at once (`run_now`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use telemesh_core::Snapshot;
use telemesh_service::{Domain, Evaluation, NotConfigured, Routes, ServiceHandle};

use crate::evaluate;
use crate::flakes::detect;
use crate::http::{configure, CiHttp};
use crate::intake::{Capacity, CiStore, CiView};
use crate::kinds;
use crate::poller::{PollOutcome, Poller};
use crate::reports_dir::{record_in, DirStatus, ReportsDir};
use crate::settings::CiSettings;

/// The service name (`serve ci`, `Source.service`).
pub const NAME: &str = "ci";

/// The CI domain.
#[derive(Debug)]
pub struct CiDomain {
    settings: CiSettings,
    store: CiStore,
    poller: Option<Poller>,
    reports_dir: Option<ReportsDir>,
}

/// What one gather found: the intake's state and, when the poller runs, its outcome.
#[derive(Debug, Clone)]
pub struct CiState {
    pub view: CiView,
    pub poll: Option<PollOutcome>,
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
        let reports_dir =
            (!settings.reports_dir.is_empty()).then(|| ReportsDir::new(&settings.reports_dir));
        Self {
            settings,
            store: CiStore::new(Capacity::default()),
            poller,
            reports_dir,
        }
    }

    /// Reads the reports directory: its files (blocking I/O, off the async workers) go
    /// through the intake's record path, then are moved to `processed/` or `refused/`.
    async fn read_reports_dir(&self, dir: ReportsDir) -> DirStatus {
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
        let results = collected
            .candidates
            .iter()
            .map(|c| record_in(&self.store, c))
            .collect();
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
        let reports_dir = match &self.reports_dir {
            Some(dir) => Some(self.read_reports_dir(dir.clone()).await),
            None => None,
        };
        CiState {
            view: self.store.view(),
            poll,
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
        };
        Some(Arc::new(move |cfg| configure(cfg, state.clone())))
    }
}
