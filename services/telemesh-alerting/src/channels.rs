//! Owns the notification channels: Slack incoming webhooks (blocks), generic JSON webhooks,
//! SMTP e-mail and GitHub issues (one issue per fingerprint: open, comment on append, comment and close on
//! resolve, reopen when it fires again). A send reports whether and when to retry (429 and
//! `Retry-After`, GitHub secondary rate limits, 5xx, network errors).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::json;
use telemesh_core::config::Secret;
use uuid::Uuid;

use crate::engine::{Alert, AlertState, Event};
use crate::redact::Redactor;
use crate::ChannelSettings;

/// One page to one or more channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: Uuid,
    pub event: Event,
    pub alert: Alert,
    pub summary_url: String,
    /// True for `telemesh alert drill`.
    pub drill: bool,
}

/// Where GitHub issue numbers of fingerprints are kept.
#[async_trait]
pub trait IssueBook: Send + Sync + std::fmt::Debug {
    async fn issue(&self, fingerprint: &str, channel: &str) -> Option<u64>;
    async fn remember(&self, fingerprint: &str, channel: &str, number: u64);
}

/// An [`IssueBook`] in memory (drills; tests).
#[derive(Debug, Default)]
pub struct MemoryIssueBook(Mutex<HashMap<(String, String), u64>>);

#[async_trait]
impl IssueBook for MemoryIssueBook {
    async fn issue(&self, fingerprint: &str, channel: &str) -> Option<u64> {
        self.0
            .lock()
            .ok()?
            .get(&(fingerprint.to_owned(), channel.to_owned()))
            .copied()
    }

    async fn remember(&self, fingerprint: &str, channel: &str, number: u64) {
        if let Ok(mut map) = self.0.lock() {
            map.insert((fingerprint.to_owned(), channel.to_owned()), number);
        }
    }
}

/// A successful send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sent {
    pub status: u16,
    pub detail: String,
}

/// A failed send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{detail}")]
pub struct SendError {
    pub status: Option<u16>,
    /// How long the receiver asked us to wait.
    pub retry_after: Option<Duration>,
    /// True when retrying cannot help (e.g. 404, bad credentials).
    pub permanent: bool,
    pub detail: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Slack {
        url: Secret,
    },
    Webhook {
        url: Secret,
    },
    GitHub {
        api: String,
        repo: String,
        token: Secret,
        labels: Vec<String>,
    },
    Email {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        to: Vec<Mailbox>,
    },
    /// Appends each notification, one webhook-body JSON line, to a local file (`telemesh demo`,
    /// a laptop with no chat).
    File {
        path: std::path::PathBuf,
    },
}

/// A configured channel.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    kind: Kind,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Removes this channel's secrets (and any URL) from error texts.
    redactor: Redactor,
}

fn secret(
    value: &Secret,
    env_name: &str,
    env: &HashMap<String, String>,
    key: String,
) -> Result<Secret, String> {
    if !env_name.is_empty() {
        return env
            .get(env_name)
            .filter(|v| !v.is_empty())
            .map(|v| Secret::new(v.clone()))
            .ok_or_else(|| format!("{key}_env names {env_name}, which is not set"));
    }
    if value.is_empty() {
        return Err(format!("{key} is empty: set it or {key}_env"));
    }
    Ok(value.clone())
}

impl Channel {
    /// Builds a channel; secrets come from the settings or the named environment variables.
    pub fn from_settings(
        s: &ChannelSettings,
        env: &HashMap<String, String>,
    ) -> Result<Self, String> {
        let key = |field: &str| format!("alerting.channels.{}.{field}", s.name);
        let kind = match s.kind.as_str() {
            "slack" => Kind::Slack {
                url: secret(&s.url, &s.url_env, env, key("url"))?,
            },
            "webhook" => Kind::Webhook {
                url: secret(&s.url, &s.url_env, env, key("url"))?,
            },
            "github" => Kind::GitHub {
                api: s.api_url.trim_end_matches('/').to_owned(),
                repo: s.repo.clone(),
                token: secret(&s.token, &s.token_env, env, key("token"))?,
                labels: s.labels.clone(),
            },
            "email" => email(s, env)?,
            "file" if !s.path.trim().is_empty() => Kind::File {
                path: s.path.clone().into(),
            },
            "file" => {
                return Err(format!(
                    "{} is empty: set the file to append to",
                    key("path")
                ))
            }
            other => return Err(format!("{}: unknown channel type {other:?}", key("type"))),
        };
        let redactor = match &kind {
            Kind::Slack { url } | Kind::Webhook { url } => Redactor::new([url.expose()]),
            Kind::GitHub { token, .. } => Redactor::new([token.expose()]),
            Kind::Email { .. } => {
                let password = if s.username.is_empty() {
                    Secret::default()
                } else {
                    secret(&s.password, &s.password_env, env, key("password"))?
                };
                Redactor::new([password.expose()])
            }
            Kind::File { .. } => Redactor::new(std::iter::empty::<&str>()),
        };
        Ok(Self {
            name: s.name.clone(),
            redactor,
            kind,
            timeout: Duration::from_millis(s.timeout_ms.max(100)),
            max_attempts: s.max_attempts.max(1),
        })
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Slack { .. } => "slack",
            Kind::Webhook { .. } => "webhook",
            Kind::GitHub { .. } => "github",
            Kind::Email { .. } => "email",
            Kind::File { .. } => "file",
        }
    }

    /// Sends one notification once (the dispatcher retries). Neither the answer nor the
    /// error carries a URL or a secret of the channel.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        n: &Notification,
        issues: &dyn IssueBook,
    ) -> Result<Sent, SendError> {
        self.send_raw(client, n, issues)
            .await
            .map(|sent| Sent {
                detail: self.redactor.redact(&sent.detail),
                ..sent
            })
            .map_err(|e| SendError {
                detail: self.redactor.redact(&e.detail),
                ..e
            })
    }

    async fn send_raw(
        &self,
        client: &reqwest::Client,
        n: &Notification,
        issues: &dyn IssueBook,
    ) -> Result<Sent, SendError> {
        match &self.kind {
            Kind::Slack { url } => {
                post(client, url.expose(), None, &slack_payload(n), self.timeout).await
            }
            Kind::Webhook { url } => {
                post(
                    client,
                    url.expose(),
                    None,
                    &webhook_payload(n),
                    self.timeout,
                )
                .await
            }
            Kind::Email {
                transport,
                from,
                to,
            } => send_email(transport, from, to, n).await,
            Kind::File { path } => append_line(path, &webhook_payload(n)),
            Kind::GitHub {
                api,
                repo,
                token,
                labels,
            } => {
                let gh = GitHub {
                    client,
                    api,
                    repo,
                    token: token.expose(),
                    timeout: self.timeout,
                };
                gh.send(&self.name, n, labels, issues).await
            }
        }
    }
}

fn email(s: &ChannelSettings, env: &HashMap<String, String>) -> Result<Kind, String> {
    let key = |field: &str| format!("alerting.channels.{}.{field}", s.name);
    let mut builder = match s.smtp_tls.as_str() {
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.smtp_host)
            .map_err(|e| format!("{}: {e}", key("smtp_host")))?,
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.smtp_host)
            .map_err(|e| format!("{}: {e}", key("smtp_host")))?,
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.smtp_host),
        other => {
            return Err(format!(
                "{} {other:?}: use starttls, tls or none",
                key("smtp_tls")
            ))
        }
    }
    .port(s.smtp_port)
    .timeout(Some(Duration::from_millis(s.timeout_ms.max(100))));
    if !s.username.is_empty() {
        let password = secret(&s.password, &s.password_env, env, key("password"))?;
        builder = builder.credentials(Credentials::new(
            s.username.clone(),
            password.expose().to_owned(),
        ));
    }
    let mailbox = |field: &str, v: &str| {
        v.parse::<Mailbox>()
            .map_err(|e| format!("{} {v:?}: {e}", key(field)))
    };
    Ok(Kind::Email {
        transport: builder.build(),
        from: mailbox("from", &s.from)?,
        to: s
            .to
            .iter()
            .map(|t| mailbox("to", t))
            .collect::<Result<_, _>>()?,
    })
}

async fn send_email(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    to: &[Mailbox],
    n: &Notification,
) -> Result<Sent, SendError> {
    let mut builder = Message::builder().from(from.clone()).subject(headline(n));
    for recipient in to {
        builder = builder.to(recipient.clone());
    }
    let a = &n.alert;
    let body = format!(
        "{}\n\n{}\n\nkind: {}\nsource: {}\ngrade: {}\nalert id: {}\nfingerprint: {}\n\nruntime summary: {}\n",
        headline(n), a.summary, a.kind, a.service, a.grade, a.id, a.fingerprint, n.summary_url
    );
    let message = builder.body(body).map_err(|e| SendError {
        status: None,
        retry_after: None,
        permanent: true,
        detail: format!("cannot build the e-mail: {e}"),
    })?;
    match transport.send(message).await {
        Ok(response) => Ok(Sent {
            status: u16::from(response.code().severity as u8) * 100,
            detail: format!(
                "accepted by smtp: {}",
                response.message().collect::<Vec<_>>().join(" ")
            ),
        }),
        Err(e) => Err(SendError {
            status: None,
            retry_after: None,
            permanent: e.is_permanent(),
            detail: format!("smtp: {e}"),
        }),
    }
}

fn title(n: &Notification) -> String {
    let a = &n.alert;
    let component = a
        .component
        .as_deref()
        .map(|c| format!(" / {c}"))
        .unwrap_or_default();
    let drill = if n.drill { "[DRILL] " } else { "" };
    format!(
        "{drill}[{}] {} from {}{component}",
        a.severity.to_uppercase(),
        a.kind,
        a.service
    )
}

fn headline(n: &Notification) -> String {
    match &n.event {
        Event::Open => format!("FIRING: {}", title(n)),
        Event::Append => format!("CHANGED: {}", title(n)),
        Event::Repeat => format!("STILL FIRING: {}", title(n)),
        Event::Resolve => format!("RESOLVED: {}", title(n)),
        Event::Escalate { reason } => format!("ESCALATED ({reason}): {}", title(n)),
        Event::Acknowledge => format!(
            "ACKNOWLEDGED by {}: {}",
            n.alert.acknowledged_by.as_deref().unwrap_or("someone"),
            title(n)
        ),
    }
}

/// Slack Block Kit message with status, kind, source, summary and a link to the summary page.
pub fn slack_payload(n: &Notification) -> serde_json::Value {
    if crate::ci_alert::applies(n) {
        return crate::ci_alert::slack_payload(n);
    }
    let a = &n.alert;
    let status = if a.state == AlertState::Resolved {
        "resolved".to_owned()
    } else {
        a.grade.to_string()
    };
    json!({
        "text": format!("{}: {}", headline(n), a.summary),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline(n).chars().take(150).collect::<String>()}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Status*\n{status}")},
                {"type": "mrkdwn", "text": format!("*Kind*\n{}", a.kind)},
                {"type": "mrkdwn", "text": format!("*Source*\n{}", a.service)},
                {"type": "mrkdwn", "text": format!("*Event*\n{}", n.event.name())},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": a.summary}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("<{}|runtime summary> · alert `{}` · fingerprint `{}`", n.summary_url, a.id, a.fingerprint)}
            ]}
        ]
    })
}

/// The generic webhook body.
pub fn webhook_payload(n: &Notification) -> serde_json::Value {
    json!({
        "version": "1",
        "notification_id": n.id,
        "event": n.event.name(),
        "reason": match &n.event { Event::Escalate { reason } => Some(reason.clone()), _ => None },
        "status": if n.alert.state == AlertState::Resolved { "resolved" } else { "firing" },
        "title": title(n),
        "drill": n.drill,
        "summary_url": n.summary_url,
        "sent_at": Utc::now(),
        "alert": n.alert,
    })
}

/// Appends `body` as one JSON line to `path` (created when missing).
fn append_line(path: &std::path::Path, body: &serde_json::Value) -> Result<Sent, SendError> {
    use std::io::Write as _;
    let line = format!("{body}\n");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map(|()| Sent {
            status: 200,
            detail: format!("appended to {}", path.display()),
        })
        .map_err(|e| SendError {
            status: None,
            retry_after: None,
            permanent: false,
            detail: format!(
                "cannot append to {}: {e}; check the directory exists and is writable",
                path.display()
            ),
        })
}

/// Longest `Retry-After` taken from a receiver (a day: the outbox expires earlier anyway).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A `Retry-After` value: delay-seconds, or an HTTP date (RFC 9110 IMF-fixdate / RFC 2822)
/// measured from `now`. A date in the past means "now"; garbage means "not given".
pub fn parse_retry_after(value: &str, now: chrono::DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = (at.with_timezone(&Utc) - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(wait) = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, Utc::now()))
    {
        return Some(wait);
    }
    // GitHub primary limit: x-ratelimit-remaining 0 with a reset epoch
    let remaining = headers
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok());
    let reset = headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    match (remaining, reset) {
        (Some("0"), Some(reset)) => Some(Duration::from_secs(
            (reset - Utc::now().timestamp()).clamp(1, 3600) as u64,
        )),
        _ => None,
    }
}

async fn classify(response: reqwest::Response) -> Result<(u16, serde_json::Value), SendError> {
    let status = response.status();
    let code = status.as_u16();
    let wait = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok((
            code,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        ));
    }
    let snippet: String = body.chars().take(200).collect();
    let limited =
        code == 429 || (code == 403 && (wait.is_some() || snippet.contains("rate limit")));
    Err(SendError {
        status: Some(code),
        retry_after: wait.or(limited.then_some(Duration::from_secs(60))),
        permanent: !(limited || status.is_server_error() || code == 408),
        detail: format!("http {code}: {snippet}"),
    })
}

fn network(e: reqwest::Error) -> SendError {
    // reqwest names the URL in its error text, and the URL may be the secret itself
    let e = e.without_url();
    let mut detail = format!("request failed: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        detail.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    SendError {
        status: None,
        retry_after: None,
        permanent: false,
        detail: crate::redact::scrub_urls(&detail),
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<Sent, SendError> {
    let mut request = client.post(url).timeout(timeout).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let (status, _) = classify(request.send().await.map_err(network)?).await?;
    Ok(Sent {
        status,
        detail: "delivered".into(),
    })
}

struct GitHub<'a> {
    client: &'a reqwest::Client,
    api: &'a str,
    repo: &'a str,
    token: &'a str,
    timeout: Duration,
}

impl GitHub<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(u16, serde_json::Value), SendError> {
        let mut request = self
            .client
            .request(method, format!("{}/repos/{}{path}", self.api, self.repo))
            .timeout(self.timeout)
            .bearer_auth(self.token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "telemesh");
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(network)?;
        classify(response).await
    }

    fn body(n: &Notification) -> String {
        let a = &n.alert;
        format!(
            "**{}**\n\n{}\n\n| | |\n| --- | --- |\n| kind | `{}` |\n| source | `{}` |\n| grade | {} |\n| alert id | `{}` |\n| fingerprint | `{}` |\n\n[Runtime summary]({})\n",
            headline(n), a.summary, a.kind, a.service, a.grade, a.id, a.fingerprint, n.summary_url
        )
    }

    async fn comment(
        &self,
        number: u64,
        n: &Notification,
    ) -> Result<(u16, serde_json::Value), SendError> {
        self.call(
            reqwest::Method::POST,
            &format!("/issues/{number}/comments"),
            json!({ "body": Self::body(n) }),
        )
        .await
    }

    async fn set_state(
        &self,
        number: u64,
        open: bool,
    ) -> Result<(u16, serde_json::Value), SendError> {
        let body = if open {
            json!({"state": "open"})
        } else {
            json!({"state": "closed", "state_reason": "completed"})
        };
        self.call(reqwest::Method::PATCH, &format!("/issues/{number}"), body)
            .await
    }

    async fn create(
        &self,
        channel: &str,
        n: &Notification,
        labels: &[String],
        issues: &dyn IssueBook,
    ) -> Result<u64, SendError> {
        let mut all = labels.to_vec();
        all.push(format!("fp-{}", n.alert.fingerprint));
        let (_, created) = self
            .call(
                reqwest::Method::POST,
                "/issues",
                json!({ "title": title(n), "body": Self::body(n), "labels": all }),
            )
            .await?;
        let number = created["number"].as_u64().ok_or_else(|| SendError {
            status: None,
            retry_after: None,
            permanent: false,
            detail: "github answered without an issue number".into(),
        })?;
        issues.remember(&n.alert.fingerprint, channel, number).await;
        Ok(number)
    }

    /// The open issue titled "CI failure alerts", looked up over the open issues (100 a page,
    /// at most 10 pages; pull requests skipped).
    async fn find_ci_issue(&self) -> Result<Option<u64>, SendError> {
        for page in 1..=10 {
            let (_, list) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/issues?state=open&per_page=100&page={page}"),
                    serde_json::Value::Null,
                )
                .await?;
            let Some(items) = list.as_array() else {
                return Ok(None);
            };
            let found = items.iter().find(|i| {
                i["title"].as_str() == Some(crate::ci_alert::ISSUE_TITLE)
                    && i.get("pull_request").is_none()
            });
            if let Some(number) = found.and_then(|i| i["number"].as_u64()) {
                return Ok(Some(number));
            }
            if items.len() < 100 {
                break;
            }
        }
        Ok(None)
    }

    /// Creates the `ci-alert` label when the lookup answers 404; other errors abort the send.
    async fn ensure_ci_label(&self) -> Result<(), SendError> {
        use crate::ci_alert::{LABEL, LABEL_COLOR, LABEL_DESCRIPTION};
        match self
            .call(
                reqwest::Method::GET,
                &format!("/labels/{LABEL}"),
                serde_json::Value::Null,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status == Some(404) => self
                .call(
                    reqwest::Method::POST,
                    "/labels",
                    json!({"name": LABEL, "color": LABEL_COLOR, "description": LABEL_DESCRIPTION}),
                )
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    }

    /// The CI-failure alert (§8.2): one "CI failure alerts" issue, failures commented on it,
    /// "CI recovered" and closed on the first success.
    async fn send_ci(
        &self,
        channel: &str,
        n: &Notification,
        labels: &[String],
        issues: &dyn IssueBook,
    ) -> Result<Sent, SendError> {
        use crate::ci_alert::{failure_body, issue_body, recovery_comment, ISSUE_TITLE, LABEL};
        let ctx = &n.alert.context;
        if matches!(n.event, Event::Open | Event::Append) {
            // the plan's order: the label first (a lookup error other than 404 aborts), then the issue
            self.ensure_ci_label().await?;
        }
        let known = match issues.issue(&n.alert.fingerprint, channel).await {
            Some(number) => Some(number),
            None => self.find_ci_issue().await?,
        };
        let detail = match (&n.event, known) {
            (Event::Resolve, None) => "no open CI failure issue to close".to_owned(),
            (Event::Resolve, Some(number)) => {
                self.call(
                    reqwest::Method::POST,
                    &format!("/issues/{number}/comments"),
                    json!({ "body": recovery_comment(ctx) }),
                )
                .await?;
                self.set_state(number, false).await?;
                format!("CI recovered: commented and closed issue #{number}")
            }
            (Event::Repeat | Event::Escalate { .. }, Some(number)) => {
                format!("no new CI run to append to issue #{number}")
            }
            // still failing, no new run, and no open issue (closed by hand): a reminder must not
            // open a second "CI failure alerts" issue; the next failing run opens one
            (Event::Repeat | Event::Escalate { .. }, None) => {
                "no open CI failure issue and no new CI run: the next failing run opens one"
                    .to_owned()
            }
            (event, Some(number)) => {
                if *event == Event::Open {
                    self.set_state(number, true).await?;
                }
                issues.remember(&n.alert.fingerprint, channel, number).await;
                self.call(
                    reqwest::Method::POST,
                    &format!("/issues/{number}/comments"),
                    json!({ "body": failure_body(ctx) }),
                )
                .await?;
                format!("CI failure appended to issue #{number}")
            }
            (_, None) => {
                let mut all = labels.to_vec();
                all.push(LABEL.to_owned());
                let (_, created) = self
                    .call(
                        reqwest::Method::POST,
                        "/issues",
                        json!({ "title": ISSUE_TITLE, "body": issue_body(ctx), "labels": all }),
                    )
                    .await?;
                let number = created["number"].as_u64().ok_or_else(|| SendError {
                    status: None,
                    retry_after: None,
                    permanent: false,
                    detail: "github answered without an issue number".into(),
                })?;
                issues.remember(&n.alert.fingerprint, channel, number).await;
                format!("opened CI failure issue #{number}")
            }
        };
        Ok(Sent {
            status: 200,
            detail,
        })
    }

    async fn send(
        &self,
        channel: &str,
        n: &Notification,
        labels: &[String],
        issues: &dyn IssueBook,
    ) -> Result<Sent, SendError> {
        if crate::ci_alert::applies(n) && n.event != Event::Acknowledge {
            return self.send_ci(channel, n, labels, issues).await;
        }
        let known = issues.issue(&n.alert.fingerprint, channel).await;
        let detail = match (&n.event, known) {
            (Event::Open, Some(number)) => {
                self.set_state(number, true).await?;
                self.comment(number, n).await?;
                format!("reopened issue #{number}")
            }
            (Event::Open, None) => format!(
                "opened issue #{}",
                self.create(channel, n, labels, issues).await?
            ),
            (Event::Resolve, Some(number)) => {
                self.comment(number, n).await?;
                self.set_state(number, false).await?;
                format!("commented and closed issue #{number}")
            }
            (Event::Resolve, None) => "no issue to close".into(),
            (_, Some(number)) => {
                self.comment(number, n).await?;
                format!("commented on issue #{number}")
            }
            (_, None) => format!(
                "opened issue #{}",
                self.create(channel, n, labels, issues).await?
            ),
        };
        Ok(Sent {
            status: 200,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases: &[(&str, Option<u64>)] = &[
            ("120", Some(120)),
            (" 7 ", Some(7)),
            ("0", Some(0)),
            ("Wed, 25 Nov 2026 10:00:30 GMT", Some(30)),
            ("Wed, 25 Nov 2026 09:00:00 GMT", Some(0)),
            ("Wed, 25 Nov 2026 10:00:30 +0000", Some(30)),
            ("99999999999999999999", None),
            ("-5", None),
            ("soon", None),
            ("", None),
            ("25 Nov 2099 10:00:00 GMT", Some(24 * 3600)),
            ("18446744073709551615", Some(24 * 3600)),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_retry_after(value, now).map(|d| d.as_secs()),
                *expected,
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_file_channel_needs_a_path_and_appends_one_line_per_notification() {
        let settings = |path: &str| ChannelSettings {
            name: "local".into(),
            kind: "file".into(),
            path: path.into(),
            ..ChannelSettings::default()
        };
        let env = HashMap::new();
        let refused = Channel::from_settings(&settings(" "), &env).unwrap_err();
        assert!(
            refused.contains("alerting.channels.local.path"),
            "{refused}"
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("alerts.log");
        let channel = Channel::from_settings(&settings(&log.display().to_string()), &env).unwrap();
        assert_eq!(channel.kind_name(), "file");
        for n in 0..2 {
            let sent = append_line(&log, &json!({"n": n})).unwrap();
            assert_eq!(sent.status, 200);
        }
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text, "{\"n\":0}\n{\"n\":1}\n");
        // a file that cannot be opened is a retryable error naming it, not a panic
        let missing = dir.path().join("no-such-dir").join("alerts.log");
        let error = append_line(&missing, &json!({})).unwrap_err();
        assert!(!error.permanent);
        assert!(error.detail.contains("no-such-dir"), "{}", error.detail);
    }
}
