//! What people look at, against a running aggregator with real snapshots (real PostgreSQL
//! journal): the summary page in headless Chromium through chromedriver (cards and grades, a
//! grade change arriving live, acknowledging an alert through the page, light and dark
//! screenshots under the cargo target dir), hostile input to every new route, the exports
//! section by section, and the OpenAPI document (every registered route documented, real
//! responses valid against it).
//!
//! chromedriver comes from `deploy/local/dev-services` (`TELEMESH_TEST_WEBDRIVER`); a test that
//! cannot reach it fails.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use telemesh_aggregator::Aggregator;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Component, Grade, Snapshot};
use telemesh_integration_tests::fixtures::{in_process_aggregator, snapshot, InProcessAggregator};
use telemesh_integration_tests::wait_until;

const TOKEN: &str = "page-test-token";
const XSS: &str = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">";
const WAIT: Duration = Duration::from_secs(20);

struct Running {
    aggregator: Aggregator,
    publisher: SnapshotPublisher,
    base: String,
    http: reqwest::Client,
}

async fn start() -> Running {
    let InProcessAggregator {
        aggregator,
        publisher,
        url,
    } = in_process_aggregator(TOKEN).await;
    Running {
        aggregator,
        publisher,
        base: url,
        http: reqwest::Client::new(),
    }
}

impl Running {
    async fn publish(&self, s: &Snapshot) {
        self.publisher.publish(s).await.expect("publish snapshot");
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, ct, r.text().await.unwrap_or_default())
    }

    async fn json(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.get(path).await;
        (
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
        )
    }

    /// POSTs JSON with an optional bearer token; the status and the JSON answer.
    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.expect("POST");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
        )
    }

    /// Waits until the summary's domain `kind` has `grade`.
    async fn wait_grade(&self, kind: &str, grade: &str) {
        wait_until(&format!("{kind} = {grade}"), WAIT, || async move {
            let (_, summary) = self.json("/api/v1/summary").await;
            (summary["domains"][kind]["status"] == grade).then_some(())
        })
        .await;
    }
}

fn graded(kind: &str, service: &str, grade: Grade, summary: &str) -> Snapshot {
    let mut s = snapshot(kind, service, "pod-1", grade);
    s.summary = summary.into();
    s
}

fn hostile() -> Snapshot {
    let mut s = snapshot(topics::FIX_PILOT, "fix-pilot", "pod-1", Grade::Ok);
    s.components = vec![Component::new("session", Grade::Ok, XSS).detail(XSS, XSS)];
    s.summary = XSS.into();
    s.markdown = format!("## {XSS}\n\n[click](javascript:window.__pwned=3)\n");
    s
}

async fn browser(dark: bool) -> Client {
    let url = std::env::var("TELEMESH_TEST_WEBDRIVER").unwrap_or_else(|_| {
        panic!(
            "TELEMESH_TEST_WEBDRIVER is not set: run `deploy/local/dev-services up` (it starts \
             chromedriver) and source its env file, or use deploy/local/test"
        )
    });
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1100",
    ];
    if dark {
        args.push("--force-dark-mode");
        args.push("--blink-settings=preferredColorScheme=0");
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({ "args": args }));
    // chromedriver listens on loopback over plain HTTP: no TLS connector needed
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach chromedriver at {url}: {e}"))
}

fn artefact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("telemesh-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir.join(name)
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(artefact(name), png).expect("write screenshot");
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("execute script")
}

async fn card_grade(c: &Client, kind: &str) -> Option<String> {
    let card = c
        .find(Locator::Css(&format!("li.card[data-kind=\"{kind}\"]")))
        .await
        .ok()?;
    card.attr("data-grade").await.ok().flatten()
}

#[actix_rt::test]
async fn the_page_shows_grades_updates_live_and_acknowledges_an_alert() {
    let run = start().await;
    run.publish(&graded(
        topics::KAFKA_READINESS,
        "kafka-readiness",
        Grade::Ok,
        "brokers ready",
    ))
    .await;
    run.publish(&graded(
        topics::INGEST_TRENDS,
        "ingest",
        Grade::Warn,
        "ingest lagging",
    ))
    .await;
    run.publish(&graded(
        topics::RETENTION,
        "retention",
        Grade::Fail,
        "coverage gap",
    ))
    .await;
    run.publish(&hostile()).await;
    run.wait_grade(topics::RETENTION, "fail").await;
    run.wait_grade(topics::FIX_PILOT, "ok").await;

    let c = browser(false).await;
    c.goto(&run.base).await.expect("open /");
    // cards and grades
    for (kind, grade) in [
        (topics::KAFKA_READINESS, "ok"),
        (topics::INGEST_TRENDS, "warn"),
        (topics::RETENTION, "fail"),
        (topics::FIX_PILOT, "ok"),
    ] {
        assert_eq!(card_grade(&c, kind).await.as_deref(), Some(grade), "{kind}");
    }
    let overall = c.find(Locator::Css(".overall h1")).await.unwrap();
    assert!(overall.text().await.unwrap().contains("FAIL"));
    // the hostile snapshot is text, and nothing it carries ran
    let fix_card = c
        .find(Locator::Css(&format!(
            "li.card[data-kind=\"{}\"] .summary",
            topics::FIX_PILOT
        )))
        .await
        .unwrap();
    assert_eq!(
        fix_card.text().await.unwrap(),
        XSS,
        "{}",
        fix_card.html(false).await.unwrap()
    );
    assert_eq!(
        js(&c, "return window.__pwned === undefined;").await,
        json!(true)
    );
    // status strips are there, with words
    let strip = c
        .find(Locator::Css(&format!(
            "li.card[data-kind=\"{}\"] .strip figcaption",
            topics::RETENTION
        )))
        .await
        .unwrap();
    assert!(strip.text().await.unwrap().contains("1 fail"));
    // live channel open
    wait_until("live status", WAIT, || {
        let c = c.clone();
        async move {
            let t = c
                .find(Locator::Id("live-status"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            t.starts_with("live").then_some(())
        }
    })
    .await;
    screenshot(&c, "overview-light.png").await;

    // a grade change arrives without a reload
    js(&c, "window.__sameDocument = true; return null;").await;
    run.publish(&graded(
        topics::RETENTION,
        "retention",
        Grade::Ok,
        "coverage restored",
    ))
    .await;
    wait_until("retention card turns ok live", WAIT, || {
        let c = c.clone();
        async move { (card_grade(&c, topics::RETENTION).await.as_deref() == Some("ok")).then_some(()) }
    })
    .await;
    assert_eq!(
        js(&c, "return window.__sameDocument === true;").await,
        json!(true),
        "the page must update in place, not reload"
    );

    // the domain page: components, details, Markdown rendered, hostile values as text
    c.goto(&format!("{}/domains/{}", run.base, topics::FIX_PILOT))
        .await
        .unwrap();
    let summary = c
        .find(Locator::Css("details.component summary"))
        .await
        .unwrap();
    assert!(summary.text().await.unwrap().contains(XSS));
    let dt = c.find(Locator::Css("details.component dt")).await.unwrap();
    // (an ok component's details start closed: read the text the element holds)
    assert_eq!(dt.prop("textContent").await.unwrap().as_deref(), Some(XSS));
    let report = c
        .find(Locator::Css(".report h2:not(#report-title)"))
        .await
        .unwrap();
    assert_eq!(report.text().await.unwrap(), XSS);
    let link = c.find(Locator::Css(".report a")).await.unwrap();
    assert_eq!(link.attr("href").await.unwrap().as_deref(), Some("#"));
    assert_eq!(
        js(&c, "return window.__pwned === undefined;").await,
        json!(true)
    );
    screenshot(&c, "domain-light.png").await;

    // an alert, acknowledged through the page
    run.publish(&graded(
        topics::INGEST_TRENDS,
        "ingest",
        Grade::Fail,
        "ingest stopped",
    ))
    .await;
    let alert_id = wait_until("an open alert", WAIT, || async {
        let (_, body) = run.json("/api/v1/alerts").await;
        body["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["kind"] == topics::INGEST_TRENDS && a["state"] == "firing")
            .and_then(|a| a["id"].as_str().map(str::to_owned))
    })
    .await;
    c.goto(&run.base).await.unwrap();
    let row = format!("tr[data-alert-id=\"{alert_id}\"]");
    let ack = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("{row} button[data-action=\"ack\"]")))
        .await
        .expect("ack button of the alert");
    // a wrong token is refused and said so
    ack.click().await.unwrap();
    let form = c.find(Locator::Id("alert-action")).await.unwrap();
    form.find(Locator::Css("input[name=by]"))
        .await
        .unwrap()
        .send_keys("Ada")
        .await
        .unwrap();
    let token = form.find(Locator::Css("input[name=token]")).await.unwrap();
    token.send_keys("wrong").await.unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let action_result = || {
        let c = c.clone();
        async move {
            c.find(Locator::Id("alert-action-result"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        }
    };
    wait_until("refusal shown", WAIT, || async {
        action_result()
            .await
            .filter(|t| t.contains("Refused (403)"))
    })
    .await;
    // a snapshot arriving re-renders the page and reloads the alert list; the refusal stays
    // (it used to share the list's status line and vanish within two seconds)
    js(
        &c,
        "document.getElementById('alerts-status').textContent = 'marker'; return null;",
    )
    .await;
    run.publish(&graded(
        topics::INGEST_TRENDS,
        "ingest",
        Grade::Fail,
        "ingest still stopped",
    ))
    .await;
    wait_until("the alert list reloaded after the snapshot", WAIT, || {
        let c = c.clone();
        async move {
            let t = c
                .find(Locator::Id("alerts-status"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            t.ends_with("open alert.").then_some(())
        }
    })
    .await;
    let kept = action_result().await.unwrap_or_default();
    assert!(
        kept.contains("Refused (403)"),
        "the refusal outlives a refresh, got {kept:?}"
    );
    token.clear().await.unwrap();
    token.send_keys(TOKEN).await.unwrap();
    screenshot(&c, "alert-ack-form-light.png").await;
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until("alert acknowledged by Ada", WAIT, || async {
        let (_, body) = run.json(&format!("/api/v1/alerts/{alert_id}")).await;
        (body["alert"]["acknowledged_by"] == "Ada").then_some(())
    })
    .await;
    wait_until("acknowledgement said", WAIT, || async {
        action_result()
            .await
            .filter(|t| t.contains("Acknowledged by Ada."))
    })
    .await;
    wait_until("owner shown on the page", WAIT, || {
        let c = c.clone();
        let row = row.clone();
        async move {
            let t = c.find(Locator::Css(&row)).await.ok()?.text().await.ok()?;
            t.contains("Ada").then_some(())
        }
    })
    .await;
    screenshot(&c, "overview-alert-acknowledged-light.png").await;
    c.close().await.unwrap();

    // dark
    let dark = browser(true).await;
    dark.goto(&run.base).await.unwrap();
    assert_eq!(
        js(
            &dark,
            "return matchMedia('(prefers-color-scheme: dark)').matches;"
        )
        .await,
        json!(true)
    );
    let bg = js(
        &dark,
        "return getComputedStyle(document.body).backgroundColor;",
    )
    .await;
    assert_eq!(bg, json!("rgb(13, 17, 23)"), "dark background");
    screenshot(&dark, "overview-dark.png").await;
    dark.goto(&format!("{}/domains/{}", run.base, topics::INGEST_TRENDS))
        .await
        .unwrap();
    screenshot(&dark, "domain-dark.png").await;
    // phone width
    dark.set_window_size(390, 844).await.unwrap();
    dark.goto(&run.base).await.unwrap();
    let overflow = js(
        &dark,
        "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
    )
    .await;
    assert_eq!(overflow, json!(true), "no horizontal scrolling on a phone");
    screenshot(&dark, "overview-phone-dark.png").await;
    dark.close().await.unwrap();
    run.aggregator.stop().await;
}

#[actix_rt::test]
async fn hostile_input_to_every_new_route_is_a_4xx_never_a_500() {
    let run = start().await;
    run.publish(&hostile()).await;
    run.wait_grade(topics::FIX_PILOT, "ok").await;
    // HTML routes answer an HTML error page, never echoing markup
    for path in [
        "/domains/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/domains/telemetry.nope",
        "/domains/%00",
        &format!("/domains/{}", "x".repeat(5000)),
        "/static/..%2F..%2Fetc%2Fpasswd",
        "/static/telemesh.css%00",
        "/domains/%FF%FE",
        "/static/%C0%AF",
    ] {
        let (status, ct, body) = run.get(path).await;
        assert!((400..500).contains(&status), "{path}: {status}");
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        assert!(!body.contains("<script>alert"), "{path}: {body}");
    }
    // JSON routes answer {error, detail}
    for path in [
        "/api/v1/stream?kind=%3Cscript%3E",
        "/api/v1/stream?service=",
        "/api/v1/stream?bogus=1",
        "/api/v1/stream?kind=a&kind=b",
        "/api/v1/history?hours=-1",
        "/api/v1/history?hours=99999999999999999999",
        "/api/v1/history?bucket_seconds=1",
        "/api/v1/history?bucket_seconds=60&hours=168",
        "/api/v1/history?hours=48&bucket_seconds=3600",
        "/api/v1/history?kind=%27%3B%20DROP%20TABLE%20x",
        "/api/v1/history?x=1",
        "/api/v1/export/%3Cimg%3E",
        "/api/v1/export/operational?allow_missing=maybe",
        "/api/v1/export/operational?allow_missing=true&allow_missing=false",
        "/api/v1/export/operational?section=%3Cscript%3E",
        &format!("/api/v1/export/operational?section={}", "s".repeat(101)),
        "/api/v1/export/operational?format=xml",
    ] {
        let (status, ct, body) = run.get(path).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"].is_string() && v["detail"].is_string(),
            "{path}: {v}"
        );
    }
    // the page itself, with the hostile snapshot, carries it only escaped
    let (status, ct, body) = run.get("/").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"));
    assert!(!body.contains("<script>window.__pwned"), "{body}");
    assert!(body.contains("&lt;script&gt;window.__pwned"), "{body}");
    let (_, _, body) = run.get(&format!("/domains/{}", topics::FIX_PILOT)).await;
    assert!(!body.contains("<script>window") && !body.contains("javascript:"));
    run.aggregator.stop().await;
}

#[actix_rt::test]
async fn exports_are_built_section_by_section_and_refuse_missing_sections() {
    let run = start().await;
    // data-backbone with only what telemesh's own services produce: 409 naming the rest
    let grades = [Grade::Ok, Grade::Warn, Grade::Fail];
    let sections: Vec<(&str, Snapshot)> = [
        ("data_backbone", topics::DATA_BACKBONE),
        ("data_backbone_validation", topics::DATA_BACKBONE_VALIDATION),
        ("data_retention", topics::RETENTION),
        ("ingest_trends", topics::INGEST_TRENDS),
        ("ingest_scheduler", topics::INGEST_SCHEDULER),
        ("kafka_readiness", topics::KAFKA_READINESS),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (section, kind))| {
        let summary = format!("{section} report");
        (
            section,
            graded(kind, &section.replace('_', "-"), grades[i % 3], &summary),
        )
    })
    .collect();
    let own = ["data_retention", "ingest_trends", "kafka_readiness"];
    for (section, s) in &sections {
        if own.contains(section) {
            run.publish(s).await;
            run.wait_grade(&s.kind, s.status.as_str()).await;
        }
    }
    let (status, body) = run.json("/api/v1/export/data-backbone").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "missing_sections");
    assert_eq!(
        body["missing_sections"],
        json!([
            "data_backbone",
            "data_backbone_validation",
            "ingest_scheduler"
        ])
    );
    assert_eq!(
        body["missing_kinds"],
        json!([
            topics::DATA_BACKBONE,
            topics::DATA_BACKBONE_VALIDATION,
            topics::INGEST_SCHEDULER
        ])
    );
    // with allow_missing: section by section, what is there and unknown rows for the rest
    let (status, body) = run
        .json("/api/v1/export/data-backbone?allow_missing=true")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["missing_sections"],
        json!([
            "data_backbone",
            "data_backbone_validation",
            "ingest_scheduler"
        ])
    );
    for (i, (section, s)) in sections.iter().enumerate() {
        let row = &body["rows"][i];
        assert_eq!(row["section"], *section);
        assert_eq!(row["kind"], s.kind.as_str(), "{section}");
        if own.contains(section) {
            assert_eq!(body["snapshots"][section]["summary"], s.summary.as_str());
            assert_eq!(row["status"], s.status.as_str(), "{section}");
        } else {
            assert!(body["snapshots"].get(section).is_none(), "{section}");
            assert_eq!(row["status"], "unknown", "{section}");
            assert_eq!(row["status_code"], 3, "{section}");
        }
    }
    assert_eq!(body["status"], "fail");
    // only present sections, requested by name (repeats collapse)
    let (status, body) = run
        .json("/api/v1/export/data-backbone?section=kafka_readiness&section=data_retention&section=kafka_readiness")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["sections_requested"],
        json!(["kafka_readiness", "data_retention"])
    );
    // every section present: each block is the newest snapshot of its kind
    for (section, s) in &sections {
        if !own.contains(section) {
            run.publish(s).await;
            run.wait_grade(&s.kind, s.status.as_str()).await;
        }
    }
    let (status, body) = run.json("/api/v1/export/data-backbone").await;
    assert_eq!(status, 200, "{body}");
    for (section, s) in &sections {
        let block = &body["snapshots"][section];
        assert_eq!(block["kind"], s.kind.as_str(), "{section}");
        assert_eq!(block["status"], s.status.as_str(), "{section}");
        assert_eq!(block["summary"], s.summary.as_str(), "{section}");
        assert_eq!(block["components"][0]["name"], "probe", "{section}");
        assert_eq!(block["metrics"]["interval_seconds"], 30.0, "{section}");
    }
    let codes: Vec<i64> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![0, 1, 2, 0, 1, 2]);
    assert_eq!(body["status"], "fail");
    assert_eq!(body["missing_sections"], json!([]));
    assert_eq!(body["config"]["journal"], "postgresql");
    // the other exports: every default section missing, named with its kind
    let (status, body) = run.json("/api/v1/export/operational").await;
    assert_eq!(status, 409);
    assert_eq!(
        body["missing_kinds"],
        json!([
            topics::PROFESSIONAL_READINESS,
            topics::SECURITY,
            topics::INCIDENT_RESPONSE,
            topics::SYSTEM_VALIDATION
        ])
    );
    // risk-compliance: the extra execution sections only by name
    run.publish(&graded(
        topics::FIX_PILOT,
        "fix-pilot",
        Grade::Ok,
        "sessions up",
    ))
    .await;
    run.publish(&graded(
        topics::DROPCOPY,
        "fix-pilot",
        Grade::Warn,
        "1 break",
    ))
    .await;
    run.wait_grade(topics::DROPCOPY, "warn").await;
    let (status, body) = run.json("/api/v1/export/risk-compliance").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["missing_sections"].as_array().unwrap().len(), 6);
    let (status, body) = run
        .json("/api/v1/export/risk-compliance?section=execution_dropcopy&section=fix_pilot")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshots"]["fix_pilot"]["summary"], "sessions up");
    assert_eq!(
        body["snapshots"]["execution_dropcopy"]["summary"],
        "1 break"
    );
    let (status, body) = run
        .json("/api/v1/export/risk-compliance?section=fix_pilot&section=kyc")
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["missing_kinds"], json!([topics::KYC]));
    run.aggregator.stop().await;
}

/// `(METHOD, path)` of every `.route(...)` in the aggregator's `configure` and in the alerting
/// crate's (which the aggregator mounts), read from their source so that a route added there
/// without documentation fails this test.
fn registered_routes() -> Vec<(String, String)> {
    let source = [
        include_str!("../../services/telemesh-aggregator/src/http/mod.rs"),
        include_str!("../../services/telemesh-alerting/src/http.rs"),
    ]
    .concat();
    let compact: String = source.split_whitespace().collect();
    let mut routes = Vec::new();
    let mut rest = compact.as_str();
    while let Some(at) = rest.find(".route(\"") {
        rest = &rest[at + 8..];
        let Some(end) = rest.find('"') else { break };
        let path = rest[..end].to_owned();
        let method = rest[end..]
            .split_once("web::")
            .and_then(|(_, m)| m.split_once("()"))
            .map(|(m, _)| m.to_uppercase())
            .unwrap_or_default();
        routes.push((method, path));
    }
    routes
}

fn validate(doc: &Value, path: &str, method: &str, status: u16, body: &Value) {
    let escaped = path.replace('~', "~0").replace('/', "~1");
    let pointer = format!(
        "#/paths/{escaped}/{}/responses/{status}/content/application~1json/schema",
        method.to_lowercase()
    );
    assert!(
        doc.pointer(&pointer[1..]).is_some(),
        "{method} {path} answered {status}, which the document does not describe ({pointer})"
    );
    let mut schema = doc.clone();
    // a URI fragment: braces must be percent-encoded
    schema["$ref"] = json!(pointer.replace('{', "%7B").replace('}', "%7D"));
    let validator = jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("schema of {method} {path} {status}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{body}"
    );
}

#[actix_rt::test]
async fn every_route_is_documented_and_real_responses_validate() {
    let run = start().await;
    let (status, doc) = run.json("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let routes = registered_routes();
    assert!(routes.len() >= 20, "{routes:?}");
    for (method, path) in &routes {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{method} {path} is registered but not in the OpenAPI document"
        );
    }
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(
            routes.iter().any(|(_, p)| p == path),
            "{path} is documented but not registered"
        );
    }
    // real responses against the document
    for s in [
        graded(topics::KAFKA_READINESS, "kafka-readiness", Grade::Ok, "ok"),
        graded(topics::INGEST_TRENDS, "ingest", Grade::Warn, "lagging"),
        hostile(),
    ] {
        run.publish(&s).await;
    }
    run.wait_grade(topics::INGEST_TRENDS, "warn").await;
    run.wait_grade(topics::FIX_PILOT, "ok").await;
    let calls: [(&str, &str); 19] = [
        ("/api/v1/summary", "/api/v1/summary"),
        ("/api/v1/snapshots/latest", "/api/v1/snapshots/latest"),
        ("/api/v1/snapshots", "/api/v1/snapshots?limit=5"),
        ("/api/v1/snapshots", "/api/v1/snapshots?limit=0"),
        ("/api/v1/history", "/api/v1/history"),
        (
            "/api/v1/history",
            "/api/v1/history?kind=telemetry.ingest.trends&hours=1&bucket_seconds=60",
        ),
        ("/api/v1/history", "/api/v1/history?hours=0"),
        ("/api/v1/export/{name}", "/api/v1/export/data-backbone"),
        (
            "/api/v1/export/{name}",
            "/api/v1/export/data-backbone?allow_missing=true",
        ),
        ("/api/v1/export/{name}", "/api/v1/export/nope"),
        (
            "/api/v1/export/{name}",
            "/api/v1/export/operational?section=x",
        ),
        ("/health/live", "/health/live"),
        ("/health/ready", "/health/ready"),
        ("/health", "/health"),
        ("/api/v1/stream", "/api/v1/stream?kind=x"),
        ("/api/v1/summary", "/api/v1/summary?format=xml"),
        ("/api/v1/snapshots", "/api/v1/snapshots?since=yesterday"),
        (
            "/api/v1/execution/journal",
            "/api/v1/execution/journal?limit=5",
        ),
        (
            "/api/v1/execution/journal",
            "/api/v1/execution/journal?limit=0",
        ),
    ];
    for (template, url) in calls {
        let (status, body) = run.json(url).await;
        validate(&doc, template, "GET", status, &body);
    }
    // the alert API: an alert, read, refused and acknowledged
    run.publish(&graded(
        topics::INGEST_TRENDS,
        "ingest",
        Grade::Fail,
        "ingest stopped",
    ))
    .await;
    let alert_id = wait_until("a firing alert", WAIT, || async {
        let (_, body) = run.json("/api/v1/alerts").await;
        body["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["kind"] == topics::INGEST_TRENDS && a["state"] == "firing")
            .and_then(|a| a["id"].as_str().map(str::to_owned))
    })
    .await;
    let one = format!("/api/v1/alerts/{alert_id}");
    for (template, url, expected) in [
        ("/api/v1/alerts", "/api/v1/alerts", 200),
        ("/api/v1/alerts", "/api/v1/alerts?state=all&limit=5", 200),
        ("/api/v1/alerts", "/api/v1/alerts?state=bogus", 400),
        ("/api/v1/alerts/channels", "/api/v1/alerts/channels", 200),
        ("/api/v1/alerts/{id}", one.as_str(), 200),
        ("/api/v1/alerts/{id}", "/api/v1/alerts/not-a-uuid", 400),
        (
            "/api/v1/alerts/{id}",
            "/api/v1/alerts/00000000-0000-0000-0000-000000000000",
            404,
        ),
    ] {
        let (status, body) = run.json(url).await;
        assert_eq!(status, expected, "{url}: {body}");
        validate(&doc, template, "GET", status, &body);
    }
    let ack = format!("{one}/ack");
    let by = json!({ "by": "Ada", "note": "looking" });
    for (token, body, expected) in [
        (None, &by, 401),
        (Some("wrong-token"), &by, 403),
        (Some(TOKEN), &json!({ "by": "" }), 400),
        (Some(TOKEN), &json!({ "who": "Ada" }), 400),
        (Some(TOKEN), &by, 200),
    ] {
        let (status, answer) = run.post(&ack, token, body).await;
        assert_eq!(status, expected, "{token:?} {body}: {answer}");
        validate(&doc, "/api/v1/alerts/{id}/ack", "POST", status, &answer);
    }
    let (_, detail) = run.json(&one).await;
    assert_eq!(detail["alert"]["acknowledged_by"], "Ada");
    validate(&doc, "/api/v1/alerts/{id}", "GET", 200, &detail);
    let (status, answer) = run
        .post(
            "/api/v1/alerts/not-a-uuid/postmortem",
            Some(TOKEN),
            &json!({ "url": "https://wiki.example/pm/1" }),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    validate(
        &doc,
        "/api/v1/alerts/{id}/postmortem",
        "POST",
        status,
        &answer,
    );
    // HTTP intake (the fixture's intake token is TOKEN too)
    let one = serde_json::to_value(graded(
        "telemetry.team_x.feed",
        "team-x",
        Grade::Ok,
        "fresh",
    ))
    .unwrap();
    let mut nul = one.clone();
    nul["summary"] = json!("a\u{0}b");
    let many = Value::Array(vec![one.clone(); 101]);
    for (token, body, expected) in [
        (None, &one, 401),
        (Some("wrong-token"), &one, 403),
        (Some(TOKEN), &json!([]), 400),
        (Some(TOKEN), &json!([one.clone(), nul]), 400),
        (Some(TOKEN), &many, 413),
        (Some(TOKEN), &json!([one.clone()]), 202),
    ] {
        let (status, answer) = run.post("/api/v1/snapshots", token, body).await;
        assert_eq!(status, expected, "{token:?}: {answer}");
        validate(&doc, "/api/v1/snapshots", "POST", status, &answer);
    }
    // text responses carry the documented content types
    for (url, ct) in [
        ("/", "text/html"),
        ("/domains/telemetry.ingest.trends", "text/html"),
        ("/static/telemesh.css", "text/css"),
        ("/metrics", "text/plain"),
        ("/api/v1/summary?format=markdown", "text/markdown"),
    ] {
        let (status, got, _) = run.get(url).await;
        assert_eq!(status, 200, "{url}");
        assert!(got.starts_with(ct), "{url}: {got}");
    }
    run.aggregator.stop().await;
}

/// `/api/v1/summary` in gzip for clients that accept it (compressed once per rendering), the
/// identity body for every other `Accept-Encoding`, hostile ones included; both vary on it.
#[actix_rt::test]
async fn the_summary_is_served_gzipped_to_clients_that_accept_it() {
    use std::io::Read;
    let run = start().await;
    run.publish(&graded(
        topics::INGEST_TRENDS,
        "ingest",
        Grade::Warn,
        "ingest lagging",
    ))
    .await;
    run.wait_grade(topics::INGEST_TRENDS, "warn").await;
    let fetch = |path: &'static str, accept: Option<&'static str>| {
        let (http, base) = (run.http.clone(), run.base.clone());
        async move {
            let mut request = http.get(format!("{base}{path}"));
            if let Some(accept) = accept {
                request = request.header("Accept-Encoding", accept);
            }
            let r = request.send().await.expect("GET summary");
            assert_eq!(r.status().as_u16(), 200, "{path} {accept:?}");
            let header = |name: &str| {
                r.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let (encoding, vary) = (header("content-encoding"), header("vary"));
            (encoding, vary, r.bytes().await.expect("body").to_vec())
        }
    };
    for path in ["/api/v1/summary", "/api/v1/summary?format=markdown"] {
        // a rendering happens at most once a second: fetch both until they are of one rendering
        wait_until(
            "gzip and identity bodies of one rendering",
            WAIT,
            || async {
                let (encoding, vary, gzipped) = fetch(path, Some("br;q=1, gzip;q=0.8")).await;
                let (plain_encoding, _, plain) = fetch(path, None).await;
                assert_eq!(encoding.as_deref(), Some("gzip"), "{path}");
                assert_eq!(vary.as_deref(), Some("Accept-Encoding"), "{path}");
                assert_eq!(plain_encoding, None, "{path}");
                assert!(gzipped.len() < plain.len(), "{path}: compressed");
                let mut unzipped = Vec::new();
                flate2::read::GzDecoder::new(gzipped.as_slice())
                    .read_to_end(&mut unzipped)
                    .expect("a valid gzip stream");
                (unzipped == plain).then_some(())
            },
        )
        .await;
    }
    let long: &'static str = "deflate;q=0.5, ".repeat(400).leak();
    for hostile in [
        "gzip;q=0",
        "*;q=0",
        "identity",
        "gzip;q=-5",
        "gzip;q=NaN",
        ";;;,,,==",
        long,
    ] {
        let (encoding, _, body) = fetch("/api/v1/summary", Some(hostile)).await;
        assert_eq!(encoding, None, "{hostile:?}");
        let summary: Value = serde_json::from_slice(&body).expect("identity JSON");
        assert_eq!(summary["domains"][topics::INGEST_TRENDS]["status"], "warn");
    }
    // not a visible string at all (obs-text): still the identity body
    let r = run
        .http
        .get(format!("{}/api/v1/summary", run.base))
        .header(
            "Accept-Encoding",
            reqwest::header::HeaderValue::from_bytes(b"gzip\xff").expect("obs-text header"),
        )
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    run.aggregator.stop().await;
}
