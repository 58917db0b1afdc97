//! Owns reading the CI history back from the journal through the aggregator's API
//! (`GET /api/v1/ci/tests`, `/api/v1/ci/coverage`, `/api/v1/ci/runs`, oldest first, paged by
//! `offset`): what a restarted or second replica of the CI domain seeds its state from
//! (`ci.aggregator_url`). Services never open the journal database themselves.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use telemesh_core::config::Secret;

use crate::coverage::FormatterMode;
use crate::evaluate::CoverageEntry;
use crate::flakes::TestUpload;
use crate::github::PipelineRun;
use crate::history::{
    runs_from_rows, trend_from_rows, uploads_from_rows, RunRow, TestRow, TrendRow,
};

/// Rows asked for per request (the aggregator's maximum).
pub const PAGE: usize = 10_000;
/// The most pages read per endpoint in one fetch (the rest waits for the next one).
pub const MAX_PAGES: usize = 50;

/// What one read of the journal found.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub uploads: Vec<TestUpload>,
    pub coverage: Vec<(String, CoverageEntry)>,
    pub formatter: Option<(DateTime<Utc>, FormatterMode)>,
    pub runs: Vec<PipelineRun>,
    /// Rows read over all endpoints.
    pub rows: usize,
    /// The newest `recorded_at` among them.
    pub newest: Option<DateTime<Utc>>,
}

/// Why the journal could not be read (the domain keeps what it has and tries again).
#[derive(Debug, thiserror::Error)]
pub enum JournalReadError {
    #[error("aggregator {url} unreachable: {detail}; check ci.aggregator_url and that the aggregator runs")]
    Unreachable { url: String, detail: String },
    #[error("aggregator answered {status} to {url}: {detail}; check ci.aggregator_token and the aggregator's journal")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("aggregator answer of {url} is not the CI history: {detail}; check ci.aggregator_url points at a telemesh aggregator")]
    Invalid { url: String, detail: String },
}

#[derive(Deserialize)]
struct Page<T> {
    entries: Vec<T>,
}

/// Reads the CI history from an aggregator.
#[derive(Debug, Clone)]
pub struct JournalClient {
    client: reqwest::Client,
    base: String,
    token: Secret,
}

impl JournalClient {
    /// `base` is the aggregator's URL (`http://host:port`).
    pub fn new(base: &str, token: Secret, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent("telemesh-ci")
            .build()
            .unwrap_or_default();
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    async fn page<T: DeserializeOwned>(
        &self,
        path: &str,
        since: DateTime<Utc>,
        offset: usize,
    ) -> Result<Vec<T>, JournalReadError> {
        let url = format!("{}{path}", self.base);
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut request = self.client.get(&url).query(&[
            ("since", since.as_str()),
            ("limit", &PAGE.to_string()),
            ("offset", &offset.to_string()),
        ]);
        if !self.token.expose().is_empty() {
            request = request.bearer_auth(self.token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| JournalReadError::Unreachable {
                url: url.clone(),
                detail: e.without_url().to_string(),
            })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| JournalReadError::Unreachable {
                url: url.clone(),
                detail: e.without_url().to_string(),
            })?;
        if status != 200 {
            let detail = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(JournalReadError::Status {
                url,
                status,
                detail,
            });
        }
        serde_json::from_slice::<Page<T>>(&body)
            .map(|p| p.entries)
            .map_err(|e| JournalReadError::Invalid {
                url,
                detail: e.to_string(),
            })
    }

    async fn all<T: DeserializeOwned>(
        &self,
        path: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<T>, JournalReadError> {
        let mut rows = Vec::new();
        for page in 0..MAX_PAGES {
            let got = self.page::<T>(path, since, page * PAGE).await?;
            let full = got.len() >= PAGE;
            rows.extend(got);
            if !full {
                return Ok(rows);
            }
        }
        tracing::warn!(
            path,
            rows = rows.len(),
            "more CI history than one read takes; the rest is read on the next cycle"
        );
        Ok(rows)
    }

    /// Reads every history row recorded at or after `since`.
    pub async fn fetch(&self, since: DateTime<Utc>) -> Result<Fetched, JournalReadError> {
        let tests: Vec<TestRow> = self.all("/api/v1/ci/tests", since).await?;
        let trend: Vec<TrendRow> = self.all("/api/v1/ci/coverage", since).await?;
        let runs: Vec<RunRow> = self.all("/api/v1/ci/runs", since).await?;
        let newest = tests
            .iter()
            .map(|r| r.recorded_at)
            .chain(trend.iter().map(|r| r.recorded_at))
            .chain(runs.iter().map(|r| r.recorded_at))
            .max();
        let (coverage, _) = trend_from_rows(&trend);
        let formatter = trend
            .iter()
            .filter(|r| r.entry_kind == "formatter")
            .max_by_key(|r| r.recorded_at)
            .and_then(|r| {
                let (_, mode) = trend_from_rows(std::slice::from_ref(r));
                mode.map(|m| (r.recorded_at, m))
            });
        Ok(Fetched {
            uploads: uploads_from_rows(&tests),
            coverage,
            formatter,
            runs: runs_from_rows(&runs),
            rows: tests.len() + trend.len() + runs.len(),
            newest,
        })
    }
}
