//! Owns the GitHub Actions data model: the `workflow_run` webhook event and the REST API's
//! workflow-run list (one `WorkflowRun` shape for both), normalised into a [`PipelineRun`],
//! and the §8.2 decision of what a completed run does to the CI-failure alert.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A `workflow_run` webhook delivery (only the fields telemesh reads).
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRunEvent {
    pub action: String,
    pub workflow_run: WorkflowRun,
    #[serde(default)]
    pub workflow: Option<Workflow>,
    #[serde(default)]
    pub repository: Option<Repository>,
}

/// The REST API's `GET /repos/{owner}/{repo}/actions/workflows/{workflow}/runs` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRunList {
    #[serde(default)]
    pub total_count: u64,
    pub workflow_runs: Vec<WorkflowRun>,
}

/// A workflow run as GitHub sends it in webhooks and the REST API.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_title: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub run_number: u64,
    #[serde(default)]
    pub run_attempt: Option<u64>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    pub head_sha: String,
    pub html_url: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub actor: Option<Account>,
    #[serde(default)]
    pub triggering_actor: Option<Account>,
    #[serde(default)]
    pub repository: Option<Repository>,
}

/// The workflow a run belongs to.
#[derive(Debug, Clone, Deserialize)]
pub struct Workflow {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

/// A GitHub user or bot.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub login: String,
}

/// A repository.
#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// How a completed run ended, as far as the alert cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    Success,
    Failure,
    TimedOut,
    Cancelled,
    /// skipped, neutral, action_required, stale, startup_failure, …: the alert ignores them.
    Other(String),
}

impl Conclusion {
    pub fn parse(s: &str) -> Self {
        match s {
            "success" => Self::Success,
            "failure" => Self::Failure,
            "timed_out" => Self::TimedOut,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        }
    }

    /// failure, timed_out and cancelled open or append to the alert (§8.2 step 1).
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failure | Self::TimedOut | Self::Cancelled)
    }
}

/// A completed workflow run, normalised from either intake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRun {
    pub run_id: u64,
    /// The workflow's name (the run's name, else the workflow's, else its path).
    pub workflow: String,
    pub workflow_path: Option<String>,
    pub run_number: u64,
    pub run_attempt: u64,
    /// The run's display title, else "<workflow> #<number>".
    pub display_title: String,
    pub event: Option<String>,
    pub conclusion: Conclusion,
    pub branch: Option<String>,
    pub commit: String,
    /// actor login, else triggering actor login (§8.2).
    pub actor: Option<String>,
    pub url: String,
    pub repository: Option<String>,
    pub repository_url: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// When the run completed (the run's `updated_at`).
    pub completed_at: Option<DateTime<Utc>>,
}

/// Why a payload is refused (answers 400 or 422).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not a workflow_run event: {0}; send GitHub's JSON unchanged")]
    Json(#[from] serde_json::Error),
    #[error("{field} is too long ({len} bytes, at most {max}): not a GitHub payload")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

/// The longest text field kept from a payload.
pub const MAX_FIELD_BYTES: usize = 1024;

impl WorkflowRun {
    /// Normalises a run; `None` while the run is not completed (no conclusion yet).
    pub fn completed(
        &self,
        workflow: Option<&Workflow>,
        repository: Option<&Repository>,
    ) -> Result<Option<PipelineRun>, PayloadError> {
        let Some(conclusion) = self.conclusion.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        if self.status.as_deref().is_some_and(|s| s != "completed") {
            return Ok(None);
        }
        let nonblank = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
        let path = nonblank(&self.path).or_else(|| workflow.and_then(|w| nonblank(&w.path)));
        let name = nonblank(&self.name)
            .or_else(|| workflow.and_then(|w| nonblank(&w.name)))
            .or_else(|| path.clone())
            .unwrap_or_else(|| "workflow".to_owned());
        let display_title =
            nonblank(&self.display_title).unwrap_or_else(|| format!("{name} #{}", self.run_number));
        let actor = self
            .actor
            .as_ref()
            .or(self.triggering_actor.as_ref())
            .map(|a| a.login.clone())
            .filter(|l| !l.is_empty());
        let repository = self.repository.as_ref().or(repository);
        let run = PipelineRun {
            run_id: self.id,
            workflow: name,
            workflow_path: path,
            run_number: self.run_number,
            run_attempt: self.run_attempt.unwrap_or(1),
            display_title,
            event: nonblank(&self.event),
            conclusion: Conclusion::parse(conclusion),
            branch: nonblank(&self.head_branch),
            commit: self.head_sha.clone(),
            actor,
            url: self.html_url.clone(),
            repository: repository.map(|r| r.full_name.clone()),
            repository_url: repository.and_then(|r| r.html_url.clone()),
            started_at: self.run_started_at.or(self.created_at),
            completed_at: self.updated_at,
        };
        run.check_lengths()?;
        Ok(Some(run))
    }
}

impl PipelineRun {
    fn check_lengths(&self) -> Result<(), PayloadError> {
        let fields: [(&'static str, Option<&str>); 8] = [
            ("workflow", Some(&self.workflow)),
            ("workflow path", self.workflow_path.as_deref()),
            ("display title", Some(&self.display_title)),
            ("branch", self.branch.as_deref()),
            ("head sha", Some(&self.commit)),
            ("actor", self.actor.as_deref()),
            ("run url", Some(&self.url)),
            ("repository", self.repository.as_deref()),
        ];
        for (field, value) in fields {
            let len = value.map_or(0, str::len);
            if len > MAX_FIELD_BYTES {
                return Err(PayloadError::TooLong {
                    field,
                    len,
                    max: MAX_FIELD_BYTES,
                });
            }
        }
        Ok(())
    }

    /// Whether this run is of the configured main pipeline: its workflow name or its
    /// workflow file path equals `main_workflow`.
    pub fn is_workflow(&self, main_workflow: &str) -> bool {
        self.workflow == main_workflow || self.workflow_path.as_deref() == Some(main_workflow)
    }

    /// What this run does to the CI-failure alert (§8.2).
    pub fn alert_action(&self) -> AlertAction {
        match &self.conclusion {
            c if c.is_failure() => AlertAction::OpenOrAppend,
            Conclusion::Success => AlertAction::Resolve,
            _ => AlertAction::Nothing,
        }
    }
}

/// The §8.2 lifecycle step a completed main-pipeline run triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    OpenOrAppend,
    Resolve,
    Nothing,
}

/// Parses a `workflow_run` webhook body: `Ok(None)` for actions other than `completed` or
/// runs without a conclusion.
pub fn parse_workflow_run_event(body: &[u8]) -> Result<Option<PipelineRun>, PayloadError> {
    let event: WorkflowRunEvent = serde_json::from_slice(body)?;
    if event.action != "completed" {
        return Ok(None);
    }
    event
        .workflow_run
        .completed(event.workflow.as_ref(), event.repository.as_ref())
}

/// Parses the REST API's workflow-run list, keeping completed runs, oldest first.
pub fn parse_workflow_run_list(body: &[u8]) -> Result<Vec<PipelineRun>, PayloadError> {
    let list: WorkflowRunList = serde_json::from_slice(body)?;
    let mut runs = Vec::new();
    for run in &list.workflow_runs {
        if let Some(run) = run.completed(None, None)? {
            runs.push(run);
        }
    }
    runs.sort_by_key(|r| (r.completed_at, r.run_id, r.run_attempt));
    Ok(runs)
}
