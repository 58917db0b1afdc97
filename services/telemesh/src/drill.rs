//! Owns `telemesh alert drill`: fires a test alert through every configured channel, waits for
//! each to accept it, resolves it, prints what each channel answered, and records the drill
//! with the incident-response service when `alerting.drill_record_url` is set.

use std::time::Instant;

use anyhow::bail;
use chrono::Utc;
use telemesh_alerting::channels::{Channel, MemoryIssueBook, Notification};
use telemesh_alerting::dispatch::deliver;
use telemesh_alerting::{Alert, AlertState, Event, Resolution};
use uuid::Uuid;

use crate::config::TelemeshConfig;

/// Runs the drill; fails when any channel did not accept both the page and the resolve.
pub async fn run(cfg: TelemeshConfig) -> anyhow::Result<()> {
    let env = telemesh_core::config::process_env();
    if cfg.alerting.channels.is_empty() {
        bail!("no alert channels configured: add [[alerting.channels]] to the config file");
    }
    let channels = cfg
        .alerting
        .channels
        .iter()
        .map(|c| Channel::from_settings(c, &env))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("telemesh/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let issues = MemoryIssueBook::default();
    let mut alert = Alert::drill(Utc::now());
    alert.channels = channels.iter().map(|c| c.name.clone()).collect();
    println!(
        "alert drill {} through {} channel(s)",
        alert.id,
        channels.len()
    );
    let mut failures = 0;
    let mut report = Vec::new();
    for (event, label) in [(Event::Open, "open"), (Event::Resolve, "resolve")] {
        if event == Event::Resolve {
            alert.state = AlertState::Resolved;
            alert.resolved_at = Some(Utc::now());
            alert.resolution = Some(Resolution::Manual);
        }
        let n = Notification {
            id: Uuid::now_v7(),
            event,
            alert: alert.clone(),
            summary_url: cfg.alerting.summary_url.clone(),
            drill: true,
        };
        for channel in &channels {
            let started = Instant::now();
            let (result, attempts) = deliver(&client, channel, &n, &issues, None).await;
            let elapsed = started.elapsed().as_millis();
            let line = match &result {
                Ok(sent) => format!(
                    "{label:<8} {:<20} {:<8} ok     http {} {} ({attempts} attempt(s), {elapsed} ms)",
                    channel.name,
                    channel.kind_name(),
                    sent.status,
                    sent.detail
                ),
                Err(e) => {
                    failures += 1;
                    format!(
                        "{label:<8} {:<20} {:<8} FAILED {e} ({attempts} attempt(s), {elapsed} ms)",
                        channel.name,
                        channel.kind_name()
                    )
                }
            };
            println!("{line}");
            report.push(line);
        }
    }
    if !cfg.alerting.drill_record_url.is_empty() {
        let body = serde_json::json!({
            "kind": "drill",
            "at": Utc::now(),
            "by": "telemesh alert drill",
            "note": report.join("\n"),
        });
        match client
            .post(&cfg.alerting.drill_record_url)
            .bearer_auth(cfg.alerting.drill_record_token.expose())
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                println!("drill recorded at {}", cfg.alerting.drill_record_url)
            }
            Ok(r) => println!(
                "drill NOT recorded: {} answered {}",
                cfg.alerting.drill_record_url,
                r.status()
            ),
            Err(e) => println!(
                "drill NOT recorded: {}",
                telemesh_alerting::redact::scrub_urls(&e.without_url().to_string())
            ),
        }
    }
    if failures > 0 {
        bail!("{failures} channel answer(s) failed: the paging path is broken");
    }
    println!("alert drill passed: every channel opened and resolved the test alert");
    Ok(())
}
