//! Owns where the training and drill log lives, chosen by [`ActivitySink::from_settings`]:
//! with `aggregator_url` set, in the journal database through the aggregator's
//! `POST /api/v1/activities` and `GET /api/v1/activities/latest` ([`ActivityClient`]); without
//! one, the local fallback: a file of JSON lines `{"kind": "drill"|"training", "at": RFC3339,
//! "by": "...", "note": "..."}`. Both are appended by this service's `POST /api/v1/activities`
//! and read at each evaluation. Reading never fails: problems are reported.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use telemesh_core::config::Secret;

use crate::settings::IncidentResponseSettings;

pub use telemesh_core::activity::{
    validate, Activity, ActivityKind, InvalidActivity, LatestActivities, MAX_BY_CHARS,
    MAX_FUTURE_SKEW_SECONDS, MAX_NOTE_CHARS,
};

/// Why an activity could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    #[error("invalid activity: {0}")]
    Invalid(#[from] InvalidActivity),
    #[error("cannot append to the activity log {path} ({source}): check [incident_response] activity_log and that the directory is writable")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the aggregator did not record the activity at {url} ({detail}): check [incident_response] aggregator_url, that aggregator_token equals the aggregator's [aggregator] activities_token, and that the aggregator is up")]
    Aggregator { url: String, detail: String },
}

/// Path of the aggregator's activity endpoint (POST records one).
pub const AGGREGATOR_ACTIVITIES_PATH: &str = "/api/v1/activities";
/// Path of the aggregator's newest-activity endpoint.
pub const AGGREGATOR_LATEST_PATH: &str = "/api/v1/activities/latest";

/// Records activities in, and reads the newest back from, the aggregator's journal database.
#[derive(Debug, Clone)]
pub struct ActivityClient {
    client: reqwest::Client,
    record_url: String,
    latest_url: String,
    token: Secret,
}

impl ActivityClient {
    /// A client of the aggregator at `base_url` (`http://host:port`), giving up on a request
    /// after `timeout`; `token` is sent as the bearer token.
    pub fn new(base_url: &str, token: Secret, timeout: StdDuration) -> Result<Self, String> {
        let base = base_url.trim().trim_end_matches('/');
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for {base}: {e}"))?;
        Ok(Self {
            client,
            record_url: format!("{base}{AGGREGATOR_ACTIVITIES_PATH}"),
            latest_url: format!("{base}{AGGREGATOR_LATEST_PATH}"),
            token,
        })
    }

    /// Records one activity; only a 2xx answer counts.
    pub async fn record(&self, activity: &Activity) -> Result<(), ActivityError> {
        let failed = |detail: String| ActivityError::Aggregator {
            url: self.record_url.clone(),
            detail,
        };
        let response = self
            .client
            .post(&self.record_url)
            .bearer_auth(self.token.expose())
            .json(activity)
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        Err(failed(format!("answered {status}: {body}")))
    }

    /// The newest drill and training session recorded.
    pub async fn latest(&self) -> Result<LatestActivities, String> {
        let mut request = self.client.get(&self.latest_url);
        if !self.token.is_empty() {
            request = request.bearer_auth(self.token.expose());
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "cannot reach the aggregator at {} ({}): check [incident_response] aggregator_url",
                self.latest_url,
                e.without_url()
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "the aggregator answered {status} at {}: see its logs (it needs a [journal] url)",
                self.latest_url
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("cannot read {} ({})", self.latest_url, e.without_url()))?;
        serde_json::from_slice(&body).map_err(|e| {
            format!(
                "the answer of {} is not the expected JSON ({e}); is aggregator_url the aggregator?",
                self.latest_url
            )
        })
    }
}

/// Where activities are recorded: the journal database through the aggregator when
/// `aggregator_url` is set, else the local `activity_log` file.
#[derive(Debug, Clone)]
pub enum ActivitySink {
    Aggregator(ActivityClient),
    File(PathBuf),
    /// `aggregator_url` is set but no client could be built: says why at every use.
    Broken(String),
}

impl ActivitySink {
    pub fn from_settings(settings: &IncidentResponseSettings) -> Self {
        let url = settings.aggregator_url.trim();
        if url.is_empty() {
            return ActivitySink::File(PathBuf::from(&settings.activity_log));
        }
        match ActivityClient::new(
            url,
            settings.aggregator_token.clone(),
            StdDuration::from_secs(settings.aggregator_timeout_seconds.max(1)),
        ) {
            Ok(client) => ActivitySink::Aggregator(client),
            Err(e) => ActivitySink::Broken(e),
        }
    }

    /// Records one validated activity.
    pub async fn record(&self, activity: &Activity) -> Result<(), ActivityError> {
        match self {
            ActivitySink::Aggregator(client) => client.record(activity).await,
            ActivitySink::File(path) => append(path, activity),
            ActivitySink::Broken(detail) => Err(ActivityError::Aggregator {
                url: String::new(),
                detail: detail.clone(),
            }),
        }
    }

    /// Reads the newest of each kind; never fails (problems are in the result).
    pub async fn read(&self) -> ActivityLog {
        match self {
            ActivitySink::File(path) => read(path),
            ActivitySink::Broken(detail) => ActivityLog {
                problems: vec![detail.clone()],
                ..ActivityLog::default()
            },
            ActivitySink::Aggregator(client) => match client.latest().await {
                Ok(latest) => ActivityLog {
                    last_training: latest.last_training,
                    last_drill: latest.last_drill,
                    entries: usize::try_from(latest.entries).unwrap_or(usize::MAX),
                    exists: true,
                    problems: Vec::new(),
                },
                Err(problem) => ActivityLog {
                    problems: vec![problem],
                    ..ActivityLog::default()
                },
            },
        }
    }
}

/// Appends one activity as a JSON line, creating the file (not its directory) if needed.
pub fn append(path: &Path, activity: &Activity) -> Result<(), ActivityError> {
    let write_err = |source| ActivityError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut line =
        serde_json::to_string(activity).map_err(|e| write_err(std::io::Error::other(e)))?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_err)?;
    file.write_all(line.as_bytes()).map_err(write_err)?;
    file.flush().map_err(write_err)
}

/// What reading the log found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityLog {
    /// Newest training session, if any.
    pub last_training: Option<Activity>,
    /// Newest drill, if any.
    pub last_drill: Option<Activity>,
    /// Valid lines read.
    pub entries: usize,
    /// False when the file does not exist (nothing recorded yet).
    pub exists: bool,
    /// Problems: an unreadable file, or bad lines (first few named).
    pub problems: Vec<String>,
}

/// Most bad lines named individually before they are summarised.
const MAX_LINE_PROBLEMS: usize = 3;

/// Reads the log at `path`. A missing file is an empty log.
pub fn read(path: &Path) -> ActivityLog {
    let mut log = ActivityLog::default();
    let name = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return log,
        Err(e) => {
            log.exists = true;
            log.problems.push(format!(
                "activity log {name} cannot be read ({e}): check its permissions or set [incident_response] activity_log"
            ));
            return log;
        }
    };
    log.exists = true;
    let mut bad = 0usize;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Activity>(line) {
            Ok(a) => {
                log.entries += 1;
                let slot = match a.kind {
                    ActivityKind::Drill => &mut log.last_drill,
                    ActivityKind::Training => &mut log.last_training,
                };
                if slot.as_ref().is_none_or(|s| a.at > s.at) {
                    *slot = Some(a);
                }
            }
            Err(e) => {
                bad += 1;
                if bad <= MAX_LINE_PROBLEMS {
                    log.problems.push(format!(
                        "activity log {name} line {} is not an activity ({e}); fix or delete it",
                        i + 1
                    ));
                }
            }
        }
    }
    if bad > MAX_LINE_PROBLEMS {
        log.problems.push(format!(
            "activity log {name} has {} more bad lines",
            bad - MAX_LINE_PROBLEMS
        ));
    }
    log
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, TimeZone, Utc};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn append_then_read_finds_the_newest_of_each_kind_and_bad_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.jsonl");
        assert_eq!(read(&path), ActivityLog::default());
        for (kind, days) in [
            (ActivityKind::Drill, 10),
            (ActivityKind::Drill, 3),
            (ActivityKind::Training, 40),
        ] {
            append(
                &path,
                &Activity {
                    kind,
                    at: now() - Duration::days(days),
                    by: "alice".into(),
                    note: String::new(),
                },
            )
            .expect("append");
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        for _ in 0..5 {
            writeln!(f, "{{broken").expect("write");
        }
        let log = read(&path);
        assert!(log.exists);
        assert_eq!(log.entries, 3);
        assert_eq!(
            log.last_drill.map(|a| a.at),
            Some(now() - Duration::days(3))
        );
        assert_eq!(
            log.last_training.map(|a| a.at),
            Some(now() - Duration::days(40))
        );
        assert_eq!(log.problems.len(), 4, "{:?}", log.problems);
        assert!(log.problems[0].contains("line 4"));
        assert!(log.problems[3].contains("2 more bad lines"));
        let err = append(
            &dir.path().join("no/such/dir.jsonl"),
            &validate(br#"{"kind":"drill","by":"a"}"#, now()).expect("valid"),
        )
        .expect_err("no directory");
        assert!(err.to_string().contains("activity_log"));
    }
}
