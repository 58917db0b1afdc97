//! Owns the health endpoints and `/metrics`: liveness (503 when the ingress loop is wedged:
//! no progress for `liveness_stall_seconds` with work waiting, so Kubernetes restarts the
//! pod), readiness (journal and transport reachable, ingestion not blocked, dead letters
//! accepted; 503 otherwise) and graded runtime health (503 when `fail`) with the runtime
//! health components of `runtime_health` (FIX connectivity, market data, exporters).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Serialize;
use telemesh_core::Grade;

use super::AppState;
use crate::actors::journal::Ping;
use crate::actors::summary::GetSummary;
use crate::metrics::label;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Grade,
    summary: String,
}

async fn journal_check(state: &AppState) -> Check {
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, state.journal.send(Ping)).await;
    let (status, summary) = match outcome {
        Ok(Ok(Ok(()))) => (
            Grade::Ok,
            format!("journal answers ({})", layout_name(state)),
        ),
        Ok(Ok(Err(e))) => (Grade::Fail, e.to_string()),
        Ok(Err(e)) => (Grade::Fail, format!("journal actor: {e}")),
        Err(_) => (
            Grade::Fail,
            format!("journal did not answer within {CHECK_TIMEOUT:?}"),
        ),
    };
    Check {
        name: "journal",
        status,
        summary,
    }
}

fn layout_name(state: &AppState) -> String {
    serde_json::to_value(&state.layout)
        .ok()
        .and_then(|v| v.get("backend").and_then(|b| b.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

async fn transport_check(state: &AppState) -> Check {
    let (status, summary) = match state.transport.check(CHECK_TIMEOUT).await {
        Ok(()) => (
            Grade::Ok,
            format!("{} transport answers", state.transport_name),
        ),
        Err(e) => (Grade::Fail, e.to_string()),
    };
    Check {
        name: "transport",
        status,
        summary,
    }
}

fn ingress_check(state: &AppState) -> Check {
    let status = state.ingress.lock().map(|s| s.clone()).unwrap_or_default();
    let (grade, summary) = if !status.running {
        (Grade::Fail, "ingress is not running".to_owned())
    } else if let Some(why) = &status.dlq_failing {
        (Grade::Fail, why.clone())
    } else if status.paused {
        (
            Grade::Fail,
            format!(
                "consumption paused: journal writes fail ({})",
                status.last_error.unwrap_or_default()
            ),
        )
    } else {
        (
            Grade::Ok,
            format!(
                "consuming: {} consumed, {} journaled, {} duplicates, {} dead-lettered",
                status.consumed, status.journaled, status.duplicates, status.dead_lettered
            ),
        )
    };
    Check {
        name: "ingress",
        status: grade,
        summary,
    }
}

#[utoipa::path(get, path = "/health/live", tag = "health",
    responses(
        (status = 200, description = "The process answers", body = super::openapi::LiveDoc),
        (status = 503, description = "The ingress made no progress for `liveness_stall_seconds` while work was waiting", body = super::openapi::LiveDoc)))]
pub(super) async fn live(state: web::Data<AppState>) -> HttpResponse {
    let wedged = state.ingress.lock().ok().and_then(|s| s.wedged(Utc::now()));
    match wedged {
        None => HttpResponse::Ok().json(serde_json::json!({ "status": "live" })),
        Some(why) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "wedged", "detail": why })),
    }
}

#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "Journal, transport and ingress work", body = super::openapi::ReadyDoc),
        (status = 503, description = "Not ready", body = super::openapi::ReadyDoc)))]
pub(super) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let checks = vec![
        journal_check(&state).await,
        transport_check(&state).await,
        ingress_check(&state),
    ];
    let ready = checks.iter().all(|c| c.status == Grade::Ok);
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": checks,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// This process's OTLP span export counters, with when a failure was last seen (the
/// counters are process-wide, so is the watch).
fn exporter_reading(now: chrono::DateTime<Utc>) -> crate::runtime_health::ExporterReading {
    static WATCH: std::sync::Mutex<crate::runtime_health::ExporterWatch> =
        std::sync::Mutex::new(crate::runtime_health::ExporterWatch::new());
    let t = &telemesh_core::metrics::global().tracing;
    let mut watch = WATCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    watch.observe(
        t.exported.get(),
        t.dropped.get(),
        t.export_failures.get(),
        now,
    )
}

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Graded health (ok or warn)", body = super::openapi::HealthDoc),
        (status = 503, description = "Graded health is fail", body = super::openapi::HealthDoc)))]
pub(super) async fn health(state: web::Data<AppState>) -> HttpResponse {
    let now = Utc::now();
    let mut checks = vec![
        journal_check(&state).await,
        transport_check(&state).await,
        ingress_check(&state),
    ];
    let mut components = Vec::new();
    match state.summary.send(GetSummary { now }).await {
        Ok(summary) => {
            components =
                crate::runtime_health::runtime_components(&summary, &exporter_reading(now), now);
            checks.push(Check {
                name: "domains",
                status: summary.status,
                summary: summary.headline,
            })
        }
        Err(e) => checks.push(Check {
            name: "domains",
            status: Grade::Fail,
            summary: format!("summary actor: {e}"),
        }),
    }
    let status = Grade::worst(
        checks
            .iter()
            .map(|c| c.status)
            .chain(components.iter().map(|c| c.status.grade())),
    );
    let body = serde_json::json!({
        "status": status,
        "generated_at": now,
        "checks": checks,
        "components": components,
    });
    if status == Grade::Fail {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
pub(super) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(summary) = state.summary.send(GetSummary { now: Utc::now() }).await {
        for (kind, block) in &summary.domains {
            let labels = label("kind", kind);
            state
                .metrics
                .domain_grade
                .get_or_create(&labels)
                .set(block.status.as_number());
            state
                .metrics
                .domain_age_seconds
                .get_or_create(&labels)
                .set(block.age_seconds.unwrap_or(f64::NAN));
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.encode())
}
