//! Owns `telemesh dlq replay`: reads `telemetry.dlq` from the beginning with a throwaway
//! consumer group (nothing is committed, so every run sees the whole topic), keeps the dead
//! letters that match `--since` / `--reason` / `--stage`, and publishes each back to the topic
//! named in its `__connect.errors.topic` header with its original key, headers and payload.
//! Replaying twice is harmless: the journal's insert is idempotent on the snapshot id.
//!
//! Dead letters written after the replay started (e.g. a replayed record refused again) are
//! not replayed in the same run, so the command always ends. A truncated dead letter
//! (`__connect.errors.payload.truncated`) cannot be replayed and is reported.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use telemesh_aggregator::ingress::{DLQ_HEADER_PREFIX, DLQ_TRUNCATED_HEADER};
use telemesh_core::config::KafkaSettings;
use telemesh_core::topics;
use telemesh_core::transport::kafka::{KafkaPublisher, KafkaSubscriber};
use telemesh_core::transport::{InboundMessage, OutboundMessage, Publisher, Subscriber};

use crate::config::TelemeshConfig;

/// What to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Only dead letters written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only these reasons (`__connect.errors.exception.class.name`); empty = all.
    pub reasons: Vec<String>,
    /// Only this stage (`decode`, `journal`).
    pub stage: Option<String>,
    /// List what would be replayed without publishing.
    pub dry_run: bool,
    /// Stop when the topic has been quiet this long.
    pub idle: Duration,
}

/// What a replay did, by reason.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub read: u64,
    pub replayed: BTreeMap<String, u64>,
    pub filtered_out: u64,
    pub truncated: u64,
    pub unroutable: u64,
}

fn meta<'a>(m: &'a InboundMessage, name: &str) -> Option<&'a str> {
    m.header(&format!("{DLQ_HEADER_PREFIX}{name}"))
}

/// The original message of a dead letter, or why it cannot be replayed.
fn original(m: &InboundMessage, prefix: &str) -> Result<OutboundMessage, &'static str> {
    if m.header(DLQ_TRUNCATED_HEADER).is_some() {
        return Err("truncated");
    }
    let topic = meta(m, "topic").ok_or("unroutable")?;
    // only back onto the telemetry topics of this namespace
    if topics::kind_of_topic(prefix, topic).is_none() {
        return Err("unroutable");
    }
    Ok(OutboundMessage {
        topic: topic.to_owned(),
        key: m
            .key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned()),
        headers: m
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with(DLQ_HEADER_PREFIX))
            .cloned()
            .collect(),
        payload: m.payload.clone(),
    })
}

fn wanted(m: &InboundMessage, options: &ReplayOptions) -> bool {
    if let (Some(since), Some(at)) = (options.since, m.timestamp) {
        if at < since {
            return false;
        }
    }
    if let Some(stage) = &options.stage {
        if meta(m, "stage") != Some(stage.as_str()) {
            return false;
        }
    }
    options.reasons.is_empty()
        || meta(m, "exception.class.name").is_some_and(|r| options.reasons.iter().any(|w| w == r))
}

/// Replays the dead-letter topic of `kafka` (see the module docs).
pub async fn replay(
    kafka: &KafkaSettings,
    options: &ReplayOptions,
) -> anyhow::Result<ReplayReport> {
    let started = Utc::now();
    let dlq_topic = topics::topic_name(&kafka.topic_prefix, topics::DLQ);
    let reader = KafkaSettings {
        group_id: format!(
            "{}-dlq-replay-{}",
            kafka.group_id,
            uuid::Uuid::now_v7().simple()
        ),
        ..kafka.clone()
    };
    let mut subscriber = KafkaSubscriber::new(&reader, std::slice::from_ref(&dlq_topic))
        .context("cannot read the dead-letter topic; check [kafka] brokers")?;
    let publisher = KafkaPublisher::new(kafka).context("cannot create the replay producer")?;
    let mut report = ReplayReport::default();
    let mut quiet_since = std::time::Instant::now();
    loop {
        let message = subscriber
            .poll(Duration::from_millis(250))
            .await
            .with_context(|| format!("reading {dlq_topic}"))?;
        let Some(m) = message else {
            if quiet_since.elapsed() >= options.idle {
                break;
            }
            continue;
        };
        quiet_since = std::time::Instant::now();
        if m.timestamp.is_some_and(|at| at > started) {
            continue; // written during this run (possibly by it): next run
        }
        report.read += 1;
        if !wanted(&m, options) {
            report.filtered_out += 1;
            continue;
        }
        let out = match original(&m, &kafka.topic_prefix) {
            Ok(out) => out,
            Err("truncated") => {
                report.truncated += 1;
                eprintln!(
                    "skip {}@{}: payload was truncated in the DLQ; the original is not available",
                    m.partition, m.offset
                );
                continue;
            }
            Err(_) => {
                report.unroutable += 1;
                eprintln!(
                    "skip {}@{}: no telemetry topic in {DLQ_HEADER_PREFIX}topic",
                    m.partition, m.offset
                );
                continue;
            }
        };
        let reason = meta(&m, "exception.class.name")
            .unwrap_or("unknown")
            .to_owned();
        if !options.dry_run {
            publisher
                .publish(out.clone())
                .await
                .with_context(|| format!("republishing to {}", out.topic))?;
        }
        println!(
            "{} {}@{} → {} ({reason})",
            if options.dry_run {
                "would replay"
            } else {
                "replayed"
            },
            m.partition,
            m.offset,
            out.topic
        );
        *report.replayed.entry(reason).or_default() += 1;
    }
    let _ = subscriber.close().await;
    Ok(report)
}

/// `telemesh dlq replay`: prints one line per record and a total.
pub async fn run(cfg: TelemeshConfig, options: ReplayOptions) -> anyhow::Result<()> {
    let report = replay(&cfg.kafka, &options).await?;
    let replayed: u64 = report.replayed.values().sum();
    println!(
        "{} {replayed} of {} dead letters ({} filtered out, {} truncated, {} unroutable); by reason: {:?}",
        if options.dry_run { "would replay" } else { "replayed" },
        report.read,
        report.filtered_out,
        report.truncated,
        report.unroutable,
        report.replayed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_letter(headers: &[(&str, &str)]) -> InboundMessage {
        InboundMessage {
            topic: "telemetry.dlq".into(),
            partition: 0,
            offset: 3,
            key: Some(b"svc/i".to_vec()),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            payload: b"payload".to_vec(),
            timestamp: Some(Utc::now()),
        }
    }

    #[test]
    fn the_original_is_rebuilt_without_dlq_headers() {
        let m = dead_letter(&[
            ("content-type", "application/vnd.telemesh.snapshot.v1+json"),
            ("__connect.errors.topic", "telemetry.kafka.readiness"),
            ("__connect.errors.exception.class.name", "journal_refused"),
        ]);
        let out = original(&m, "").unwrap();
        assert_eq!(out.topic, "telemetry.kafka.readiness");
        assert_eq!(out.key.as_deref(), Some("svc/i"));
        assert_eq!(out.headers.len(), 1);
        assert_eq!(out.payload, b"payload");
    }

    #[test]
    fn hostile_dead_letters_are_not_replayed() {
        // truncated, no topic, a topic outside the telemetry namespace, the DLQ itself
        let cases = [
            vec![
                ("__connect.errors.topic", "telemetry.kafka.readiness"),
                (DLQ_TRUNCATED_HEADER, "999000"),
            ],
            vec![],
            vec![("__connect.errors.topic", "orders.new")],
            vec![("__connect.errors.topic", "telemetry.dlq")],
        ];
        for headers in cases {
            assert!(original(&dead_letter(&headers), "").is_err(), "{headers:?}");
        }
    }

    #[test]
    fn filters_select_by_reason_stage_and_time() {
        let m = dead_letter(&[
            ("__connect.errors.stage", "journal"),
            ("__connect.errors.exception.class.name", "journal_refused"),
        ]);
        let all = ReplayOptions::default();
        assert!(wanted(&m, &all));
        let by_reason = |r: &str| ReplayOptions {
            reasons: vec![r.into()],
            ..ReplayOptions::default()
        };
        assert!(wanted(&m, &by_reason("journal_refused")));
        assert!(!wanted(&m, &by_reason("malformed")));
        let stage = ReplayOptions {
            stage: Some("decode".into()),
            ..ReplayOptions::default()
        };
        assert!(!wanted(&m, &stage));
        let later = ReplayOptions {
            since: Some(Utc::now() + chrono::Duration::minutes(1)),
            ..ReplayOptions::default()
        };
        assert!(!wanted(&m, &later));
    }
}
