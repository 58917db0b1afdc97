//! Owns the summary as a web page: `/` (overall grade, a card per domain with its status
//! history strip, open alerts) and `/domains/{kind}` (sources, components, details, Markdown),
//! server-rendered with minijinja (autoescaped), the vendored CSS/JS under `/static/`, and the
//! HTML error page of these routes. Alerts are read and changed by the page's script through
//! the HTTP API only; live updates arrive over `/api/v1/stream` (server-sent events).

pub mod markdown;

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::{context, Environment};
use serde::Serialize;
use telemesh_core::snapshot::DetailValue;
use telemesh_core::{topics, Grade};

use crate::actors::journal::StatusHistory;
use crate::actors::summary::GetSummary;
use crate::http::AppState;
use crate::journal::history::{bucket_start, HistoryBucket, HistoryQuery};
use crate::summary::{DomainBlock, Summary};

/// The vendored stylesheet and script (no CDN: the page works on an air-gapped cluster).
pub const CSS: &str = include_str!("static/telemesh.css");
pub const JS: &str = include_str!("static/telemesh.js");

/// Status strip windows: (hours, bucket seconds) on the overview and on a domain's page.
const OVERVIEW_HISTORY: (i64, i64) = (6, 900);
const DOMAIN_HISTORY: (i64, i64) = (6, 300);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("macros.html", include_str!("templates/macros.html")),
            ("index.html", include_str!("templates/index.html")),
            ("domain.html", include_str!("templates/domain.html")),
            ("error.html", include_str!("templates/error.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                // the templates are compiled in: a broken one is caught by the unit tests
                tracing::error!(template = name, error = %e, "page template does not parse");
            }
        }
        env
    })
}

fn render(name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
    env().get_template(name)?.render(ctx)
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .insert_header((
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

/// The HTML error page of the page routes.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> HttpResponse {
    let body = render(
        "error.html",
        context! { title => title, detail => detail, status => status.as_u16() },
    )
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "error page template failed");
        format!("<!doctype html><title>{}</title>", status.as_u16())
    });
    html(status, body)
}

fn grade_str(g: Grade) -> &'static str {
    g.as_str()
}

/// Short human name of a kind: `telemetry.kafka.readiness` → `kafka readiness`.
pub fn domain_title(kind: &str) -> String {
    kind.strip_prefix("telemetry.")
        .unwrap_or(kind)
        .replace(['.', '_'], " ")
}

/// An age for people: `12s`, `4m`, `2.5h`, `never`.
pub fn human_age(age: Option<f64>) -> String {
    match age {
        None => "never".into(),
        Some(a) if a < 120.0 => format!("{a:.0}s"),
        Some(a) if a < 7200.0 => format!("{:.0}m", a / 60.0),
        Some(a) if a < 172_800.0 => format!("{:.1}h", a / 3600.0),
        Some(a) => format!("{:.0}d", a / 86_400.0),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One cell of a status strip.
#[derive(Debug, Serialize, PartialEq)]
pub struct Cell {
    pub start: String,
    /// `ok`, `warn`, `fail` or `none` (nothing journaled).
    pub grade: &'static str,
    pub snapshots: i64,
}

/// A status strip: a cell per bucket from `since` to `now`, oldest first, plus a one-line
/// text equivalent (colour is never the only signal).
#[derive(Debug, Serialize, PartialEq)]
pub struct Strip {
    pub cells: Vec<Cell>,
    pub label: String,
}

/// Lays the journal's non-empty buckets of one kind on a gap-free strip.
pub fn strip(
    buckets: &[HistoryBucket],
    kind: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    bucket_seconds: i64,
    hours: i64,
) -> Strip {
    let mut cells = Vec::new();
    let mut t = bucket_start(since, bucket_seconds);
    let (mut ok, mut warn, mut fail, mut none) = (0, 0, 0, 0);
    while t <= now {
        let found = buckets.iter().find(|b| b.kind == kind && b.start == t);
        let grade = match found.map(|b| b.worst) {
            Some(Grade::Ok) => {
                ok += 1;
                "ok"
            }
            Some(Grade::Warn) => {
                warn += 1;
                "warn"
            }
            Some(Grade::Fail) => {
                fail += 1;
                "fail"
            }
            None => {
                none += 1;
                "none"
            }
        };
        cells.push(Cell {
            start: rfc3339(t),
            grade,
            snapshots: found.map_or(0, |b| b.snapshots),
        });
        t += chrono::Duration::seconds(bucket_seconds);
    }
    let minutes = bucket_seconds / 60;
    Strip {
        label: format!(
            "last {hours} h in {minutes}-minute buckets: {fail} fail, {warn} warn, {ok} ok, {none} without data"
        ),
        cells,
    }
}

#[derive(Debug, Serialize)]
struct SourceView {
    service: String,
    instance: String,
    status: &'static str,
    generated_at: String,
    age: String,
    stale: bool,
}

#[derive(Debug, Serialize)]
struct ComponentView {
    name: String,
    status: &'static str,
    summary: String,
    details: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
struct DomainView {
    kind: String,
    title: String,
    href: String,
    status: &'static str,
    generated_at: Option<String>,
    age: String,
    stale: bool,
    summary: String,
    service: Option<String>,
    sources: Vec<SourceView>,
    components: Vec<ComponentView>,
    markdown_html: String,
    history: Option<Strip>,
    /// False for a kind the catalogue does not list: the page marks it "unlisted".
    listed: bool,
}

fn detail_text(value: &DetailValue) -> String {
    match value {
        DetailValue::Text(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn domain_view(kind: &str, block: &DomainBlock, history: Option<Strip>, full: bool) -> DomainView {
    let snapshot = block.snapshot.as_ref();
    DomainView {
        kind: kind.to_owned(),
        title: if telemesh_core::catalogue::is_listed(kind) {
            block.title.clone()
        } else {
            domain_title(kind)
        },
        href: format!("/domains/{kind}"),
        status: grade_str(block.status),
        generated_at: block.generated_at.map(rfc3339),
        age: human_age(block.age_seconds),
        stale: block.stale,
        summary: snapshot.map_or_else(|| "no snapshot received yet".into(), |s| s.summary.clone()),
        service: snapshot.map(|s| s.source.key()),
        sources: block
            .sources
            .iter()
            .map(|s| SourceView {
                service: s.service.clone(),
                instance: s.instance.clone(),
                status: grade_str(s.status),
                generated_at: rfc3339(s.generated_at),
                age: human_age(Some(s.age_seconds)),
                stale: s.stale,
            })
            .collect(),
        components: if full {
            snapshot
                .map(|s| {
                    s.components
                        .iter()
                        .map(|c| ComponentView {
                            name: c.name.clone(),
                            status: grade_str(c.status),
                            summary: c.summary.clone(),
                            details: c
                                .details
                                .iter()
                                .map(|(k, v)| (k.clone(), detail_text(v)))
                                .collect(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        },
        markdown_html: if full {
            markdown::to_safe_html(&block.markdown)
        } else {
            String::new()
        },
        history,
        listed: block.listed,
    }
}

/// Worst first, then by name (the order people read a board in).
fn ordered(summary: &Summary) -> Vec<(&String, &DomainBlock)> {
    let mut v: Vec<_> = summary.domains.iter().collect();
    v.sort_by(|a, b| b.1.status.cmp(&a.1.status).then(a.0.cmp(b.0)));
    v
}

async fn history(
    state: &AppState,
    kind: Option<&str>,
    (hours, bucket): (i64, i64),
    now: DateTime<Utc>,
) -> Option<Vec<HistoryBucket>> {
    let query = HistoryQuery {
        kind: kind.map(str::to_owned),
        since: now - chrono::Duration::hours(hours),
        until: now + chrono::Duration::seconds(1),
        bucket_seconds: bucket,
    };
    match state.journal.send(StatusHistory(query)).await {
        Ok(Ok(buckets)) => Some(buckets),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status history unavailable");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "journal actor unavailable");
            None
        }
    }
}

async fn summary_now(state: &AppState, now: DateTime<Utc>) -> Result<Summary, HttpResponse> {
    state.summary.send(GetSummary { now }).await.map_err(|e| {
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "summary unavailable",
            &format!("the summary actor did not answer ({e}); reload in a moment"),
        )
    })
}

fn page(name: &str, ctx: minijinja::Value) -> HttpResponse {
    match render(name, ctx) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(error = %e, template = name, "page rendering failed");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "page unavailable",
                "the page could not be rendered; the JSON summary is at /api/v1/summary",
            )
        }
    }
}

/// `GET /`: the overview.
#[utoipa::path(get, path = "/", tag = "page",
    responses((status = 200, description = "The summary page", content_type = "text/html", body = String), (status = 503, description = "Summary unavailable (HTML error page)", content_type = "text/html", body = String)))]
pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let now = Utc::now();
    let summary = match summary_now(&state, now).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let buckets = history(&state, None, OVERVIEW_HISTORY, now).await;
    let (hours, bucket) = OVERVIEW_HISTORY;
    let since = now - chrono::Duration::hours(hours);
    let domains: Vec<DomainView> = ordered(&summary)
        .into_iter()
        .map(|(kind, block)| {
            let strip = buckets
                .as_ref()
                .map(|b| strip(b, kind, since, now, bucket, hours));
            domain_view(kind, block, strip, false)
        })
        .collect();
    page(
        "index.html",
        context! {
            status => grade_str(summary.status),
            headline => summary.headline,
            generated_at => rfc3339(summary.generated_at),
            readiness => minijinja::Value::from_serialize(&summary.readiness),
            domains => domains,
            history_available => buckets.is_some(),
            live_kind => "",
        },
    )
}

/// `GET /domains/{kind}`: one domain in full.
#[utoipa::path(get, path = "/domains/{kind}", tag = "page",
    params(("kind" = String, Path, description = "snapshot kind")),
    responses((status = 200, description = "One domain's page", content_type = "text/html", body = String),
        (status = 404, description = "No such domain (HTML error page)", content_type = "text/html", body = String), (status = 503, description = "Summary unavailable (HTML error page)", content_type = "text/html", body = String)))]
pub async fn domain(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    // read from the match info rather than a `web::Path` extractor, so that even an
    // undecodable segment answers this route's HTML error page
    let kind = req.match_info().query("kind").to_owned();
    let now = Utc::now();
    let summary = match summary_now(&state, now).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let Some(block) = summary.domains.get(&kind) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "no such domain",
            &format!(
                "no domain {kind:?} has reported; a kind is telemetry.<area>.<name>, \
                 e.g. {}",
                topics::KAFKA_READINESS
            ),
        );
    };
    let buckets = history(&state, Some(&kind), DOMAIN_HISTORY, now).await;
    let (hours, bucket) = DOMAIN_HISTORY;
    let since = now - chrono::Duration::hours(hours);
    let strip = buckets
        .as_ref()
        .map(|b| strip(b, &kind, since, now, bucket, hours));
    let view = domain_view(&kind, block, strip, true);
    page(
        "domain.html",
        context! {
            status => grade_str(summary.status),
            headline => summary.headline,
            generated_at => rfc3339(summary.generated_at),
            domain => view,
            history_available => buckets.is_some(),
            live_kind => kind,
        },
    )
}

/// `GET /static/{file}`: the vendored assets.
#[utoipa::path(get, path = "/static/{file}", tag = "page",
    params(("file" = String, Path, description = "`telemesh.css` or `telemesh.js`")),
    responses((status = 200, description = "A vendored asset", content_type = "text/css", body = String),
        (status = 404, description = "No such file (HTML error page)", content_type = "text/html", body = String)))]
pub async fn asset(req: HttpRequest) -> HttpResponse {
    let (body, content_type) = match req.match_info().query("file") {
        "telemesh.css" => (CSS, "text/css; charset=utf-8"),
        "telemesh.js" => (JS, "text/javascript; charset=utf-8"),
        _ => {
            return error_page(
                StatusCode::NOT_FOUND,
                "no such file",
                "the page's assets are /static/telemesh.css and /static/telemesh.js",
            )
        }
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "public, max-age=300"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{StalenessPolicy, SummaryState};
    use telemesh_core::{Component, Snapshot, Source};

    const XSS: &str = "<script>alert('x')</script><img src=x onerror=alert(1)>";

    fn summary_with(snapshot: Snapshot) -> Summary {
        let mut state = SummaryState::default();
        state.observe(snapshot);
        state.summary(
            &StalenessPolicy {
                stale_factor: 3.0,
                default_interval_seconds: 30.0,
                expected_kinds: vec![],
            },
            Utc::now(),
        )
    }

    fn hostile() -> Snapshot {
        let mut s = Snapshot::new(
            "telemetry.kafka.readiness",
            Source::new(XSS, "i\"><b>1"),
            Utc::now(),
        );
        s.push(
            Component::new(XSS, Grade::Fail, XSS)
                .detail(XSS, XSS)
                .detail("n", 3i64),
        );
        s.summary = XSS.into();
        s.markdown = format!("# {XSS}\n\n[x](javascript:alert(1))\n");
        s
    }

    fn render_domain(summary: &Summary) -> String {
        let (kind, block) = summary.domains.iter().next().unwrap();
        render(
            "domain.html",
            context! {
                status => grade_str(summary.status),
                headline => summary.headline,
                generated_at => rfc3339(summary.generated_at),
                domain => domain_view(kind, block, None, true),
                history_available => false,
                live_kind => kind,
            },
        )
        .unwrap()
    }

    #[test]
    fn every_template_parses() {
        for name in [
            "base.html",
            "macros.html",
            "index.html",
            "domain.html",
            "error.html",
        ] {
            env().get_template(name).unwrap();
        }
    }

    #[test]
    fn snapshot_text_renders_as_text_never_as_markup() {
        let summary = summary_with(hostile());
        let page = render_domain(&summary);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(!page.contains("javascript:"), "{page}");
        assert!(!page.contains("\"><b>1"), "{page}");
        assert!(page.contains("&lt;script&gt;alert("), "{page}");
        let (kind, block) = summary.domains.iter().next().unwrap();
        let index = render(
            "index.html",
            context! {
                status => "fail", headline => XSS, generated_at => "t",
                readiness => minijinja::Value::from_serialize(&summary.readiness),
                domains => vec![domain_view(kind, block, None, false)],
                history_available => false, live_kind => "",
            },
        )
        .unwrap();
        assert!(!index.contains("<script>alert"), "{index}");
        assert!(index.contains("&lt;script&gt;alert("), "{index}");
        // the hostile kafka readiness is the data-backbone roll-up's kafka_streaming input
        assert!(index.contains("<h2 id=\"readiness-title\">"), "{index}");
        assert!(index.contains("<td>kafka_streaming</td>"), "{index}");
        let error = error_page(StatusCode::NOT_FOUND, XSS, XSS);
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn strips_fill_gaps_and_say_in_words_what_the_colours_say() {
        let t = |m: i64| {
            bucket_start(
                DateTime::parse_from_rfc3339("2026-11-28T03:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
                300,
            ) + chrono::Duration::minutes(m)
        };
        let buckets = vec![
            HistoryBucket {
                kind: "k".into(),
                start: t(0),
                worst: Grade::Fail,
                snapshots: 3,
            },
            HistoryBucket {
                kind: "other".into(),
                start: t(5),
                worst: Grade::Ok,
                snapshots: 1,
            },
            HistoryBucket {
                kind: "k".into(),
                start: t(10),
                worst: Grade::Ok,
                snapshots: 1,
            },
        ];
        let s = strip(&buckets, "k", t(0), t(12), 300, 1);
        let grades: Vec<&str> = s.cells.iter().map(|c| c.grade).collect();
        assert_eq!(grades, vec!["fail", "none", "ok"]);
        assert_eq!(
            s.label,
            "last 1 h in 5-minute buckets: 1 fail, 0 warn, 1 ok, 1 without data"
        );
    }

    #[test]
    fn ages_and_titles_read_well() {
        assert_eq!(human_age(None), "never");
        assert_eq!(human_age(Some(5.2)), "5s");
        assert_eq!(human_age(Some(600.0)), "10m");
        assert_eq!(human_age(Some(9000.0)), "2.5h");
        assert_eq!(human_age(Some(400_000.0)), "5d");
        assert_eq!(domain_title("telemetry.kafka.readiness"), "kafka readiness");
    }
}
