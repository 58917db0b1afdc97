//! Owns the GitHub REST poller, for environments without inbound HTTP: lists the configured
//! workflow's runs (`GET /repos/{owner}/{repo}/actions/workflows/{workflow}/runs`) with a
//! token, sends `If-None-Match` with the last ETag (a 304 costs no rate limit), and honours
//! the rate-limit headers: after `x-ratelimit-remaining: 0` (or a 403/429 with `Retry-After`)
//! it makes no request until the reset time.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use telemesh_core::config::Secret;

use crate::github::parse_workflow_run_list;
use crate::intake::CiStore;

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// 200: this many completed runs were new or changed.
    Fetched { changed: usize },
    /// 304: nothing changed since the last ETag.
    NotModified,
    /// No request made: the rate limit is exhausted until then.
    RateLimited { until: DateTime<Utc> },
    /// The request failed; the detail says what to check.
    Failed(String),
}

/// Polls one workflow's runs.
#[derive(Debug)]
pub struct Poller {
    client: reqwest::Client,
    url: String,
    token: Secret,
    etag: Option<String>,
    blocked_until: Option<DateTime<Utc>>,
}

impl Poller {
    /// `api` is the API base (`https://api.github.com`), `repository` `owner/name`, `workflow`
    /// the workflow file name (`ci.yml`) or id.
    pub fn new(
        api: &str,
        repository: &str,
        workflow: &str,
        token: Secret,
        timeout: Duration,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent("telemesh-ci")
            .build()
            .unwrap_or_default();
        Self {
            client,
            url: format!(
                "{}/repos/{repository}/actions/workflows/{workflow}/runs?per_page=50",
                api.trim_end_matches('/')
            ),
            token,
            etag: None,
            blocked_until: None,
        }
    }

    /// One poll at `now`: fetches (unless rate-limited) and records completed runs in `store`.
    pub async fn poll(&mut self, store: &CiStore, now: DateTime<Utc>) -> PollOutcome {
        if let Some(until) = self.blocked_until {
            if now < until {
                return PollOutcome::RateLimited { until };
            }
            self.blocked_until = None;
        }
        let mut request = self
            .client
            .get(&self.url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28");
        if !self.token.expose().is_empty() {
            request = request.bearer_auth(self.token.expose());
        }
        if let Some(etag) = &self.etag {
            request = request.header("if-none-match", etag);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return PollOutcome::Failed(format!(
                    "github api unreachable: {}; check ci.github_api and the network",
                    e.without_url()
                ))
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let reset = header("x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single());
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|s| (0..=86_400).contains(s))
            .map(|s| now + chrono::Duration::seconds(s));
        if header("x-ratelimit-remaining") == Some("0") {
            self.blocked_until = retry_after.or(reset).filter(|t| *t > now);
        }
        match status {
            304 => PollOutcome::NotModified,
            200 => {
                let body = match response.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        return PollOutcome::Failed(format!(
                            "reading the run list: {}",
                            e.without_url()
                        ))
                    }
                };
                match parse_workflow_run_list(&body) {
                    Ok(runs) => {
                        self.etag = header("etag").map(str::to_owned);
                        let changed = runs
                            .into_iter()
                            .filter(|r| store.record_run(r.clone()))
                            .count();
                        PollOutcome::Fetched { changed }
                    }
                    Err(e) => PollOutcome::Failed(e.to_string()),
                }
            }
            403 | 429 => {
                if let Some(until) = retry_after.or(reset).filter(|t| *t > now) {
                    self.blocked_until = Some(until);
                    PollOutcome::RateLimited { until }
                } else {
                    PollOutcome::Failed(format!(
                        "github answered {status}: check that ci.github_token may read actions of the repository"
                    ))
                }
            }
            other => PollOutcome::Failed(format!(
                "github answered {other}: check ci.poll_repository and ci.poll_workflow"
            )),
        }
    }
}
