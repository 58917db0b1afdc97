//! The readiness roll-ups at the top of the summary (data backbone §3.12, operational §3.13)
//! and the runtime health components of `/health` (§4), over real snapshots through the
//! in-process transport and a real PostgreSQL journal.

use std::time::Duration;

use serde_json::Value;
use telemesh_core::{topics, Component, Grade, Snapshot, Source};
use telemesh_fix_pilot::execution::{evaluate_execution, ExecutionPolicy, ExecutionState, Latency};
use telemesh_integration_tests::fixtures::in_process_aggregator;
use telemesh_integration_tests::wait_until;

fn snapshot(kind: &str, service: &str, components: Vec<Component>, summary: &str) -> Snapshot {
    let mut s = Snapshot::new(kind, Source::new(service, "a"), chrono::Utc::now());
    for c in components {
        s.push(c);
    }
    s.summary = summary.into();
    s.metric("interval_seconds", 30.0);
    s
}

fn execution() -> Snapshot {
    let state = ExecutionState {
        orders_submitted: 10,
        orders_executed: 10,
        orders_failed: 0,
        pending_orders: 0,
        ack_latency: Latency::of(vec![3, 4, 5]),
        fill_latency: Latency::of(vec![8]),
        rejections: Vec::new(),
        via_fix: true,
        connection_healthy: true,
        trading_state: "active".into(),
        drop_copy_configured: true,
        drop_copy_active: true,
        drop_copy_lag_seconds: Some(0.1),
        dropped_messages: 0,
        drop_copy_open_breaks: 0,
        sessions_active: vec!["trading".into(), "dropcopy".into()],
        last_error: None,
        last_execution_ms: None,
    };
    evaluate_execution(
        &ExecutionPolicy::default(),
        &state,
        Source::new("fix-pilot", "a"),
        chrono::Utc::now(),
    )
}

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("aggregator answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[actix_rt::test]
async fn rollups_and_runtime_health_over_real_snapshots() {
    let agg = in_process_aggregator("token").await;
    // before any input: no roll-up, the runtime components are not applicable
    let (_, health) = get(&format!("{}/health", agg.url)).await;
    let names: Vec<&str> = health["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["fix_connectivity", "market_data", "telemetry_exporters"]
    );
    assert_eq!(health["components"][0]["status"], "not_applicable");
    assert_eq!(health["components"][1]["status"], "not_applicable");

    let inputs = [
        snapshot(
            topics::INGEST_TRENDS,
            "ingest",
            vec![
                Component::new("daily", Grade::Ok, "fresh").detail("latest_age_seconds", 60.0),
                Component::new("intraday", Grade::Ok, "aging").detail("latest_age_seconds", 1000.0),
            ],
            "ingest ok",
        ),
        snapshot(
            topics::RETENTION,
            "ingest",
            vec![Component::new("market_data.daily", Grade::Warn, "short")],
            "retention short",
        ),
        snapshot(
            topics::FIX_PILOT,
            "fix-pilot",
            vec![
                Component::new("sessions", Grade::Fail, "trading disconnected")
                    .detail("trading", "disconnected"),
            ],
            "trading down",
        ),
        snapshot(
            topics::INCIDENT_RESPONSE,
            "incident-response",
            vec![Component::new("runbooks", Grade::Warn, "1 runbook missing")],
            "1 runbook missing",
        ),
        snapshot(
            topics::SYSTEM_VALIDATION,
            "validation",
            vec![Component::new("checks", Grade::Ok, "12/12 checks passed")],
            "12/12 checks passed",
        ),
        execution(),
    ];
    for s in &inputs {
        agg.publisher.publish(s).await.expect("publish");
    }
    let url = format!("{}/api/v1/summary", agg.url);
    let summary: Value = wait_until("both roll-ups", Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let (_, body) = get(&url).await;
            (body["readiness"]["operational"]["component_count"] == 3
                && body["readiness"]["data_backbone"]["component_count"] == 2)
                .then_some(body)
        }
    })
    .await;
    let db = &summary["readiness"]["data_backbone"];
    assert_eq!(db["kind"], "telemetry.data_backbone.readiness");
    assert_eq!(db["status"], "warn", "{db}");
    assert_eq!(db["components"][0]["name"], "ingest_health");
    assert_eq!(db["components"][1]["name"], "retention");
    assert_eq!(db["components"][1]["status"], "warn");
    let op = &summary["readiness"]["operational"];
    let statuses: Vec<(&str, &str)> = op["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("system_validation", "ok"),
            ("incident_response", "warn"),
            ("execution", "ok"),
        ]
    );
    assert_eq!(op["status"], "warn");
    // at the top: before the domains in the JSON and the Markdown
    let text = reqwest::get(&url)
        .await
        .expect("summary")
        .text()
        .await
        .expect("body");
    assert!(
        text.find("\"readiness\"") < text.find("\"domains\""),
        "{text}"
    );
    let md = reqwest::get(format!("{url}?format=markdown"))
        .await
        .expect("markdown")
        .text()
        .await
        .expect("body");
    let readiness_at = md.find("## Readiness").expect("readiness section");
    assert!(
        readiness_at < md.find("| Domain |").expect("domain table"),
        "{md}"
    );

    let (status, health) = get(&format!("{}/health", agg.url)).await;
    let component = |name: &str| {
        health["components"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("{name} in {health}"))
    };
    let fix = component("fix_connectivity");
    assert_eq!(fix["status"], "fail");
    assert_eq!(fix["metadata"]["trading"], "disconnected");
    assert!(fix["age_seconds"].as_f64().is_some_and(|a| a >= 0.0));
    let market = component("market_data");
    assert_eq!(
        market["status"], "warn",
        "intraday 1000 s > 900 s: {market}"
    );
    assert!(market["age_seconds"].as_f64().is_some_and(|a| a >= 1000.0));
    assert_eq!(component("telemetry_exporters")["status"], "ok");
    assert_eq!(health["status"], "fail");
    assert_eq!(status, 503, "graded health fail answers 503");
    agg.aggregator.stop().await;
}
