//! Owns a stand-alone producer for the tests: a process of its own (not the aggregator's) that
//! creates a kind's topic and publishes one snapshot of that kind over real Kafka, the way a
//! team's producer outside telemesh would. Prints the snapshot id on success.
//!
//! Usage: `produce_snapshot <brokers> <topic_prefix> <kind> <grade>`

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::Utc;
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::kafka::{ensure_topics, KafkaPublisher, TopicSpec};
use telemesh_core::transport::{Publisher, SnapshotPublisher};
use telemesh_core::{topics, Component, Encoding, Grade, Snapshot, Source};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, prefix, kind, grade] = args.as_slice() else {
        bail!("usage: produce_snapshot <brokers> <topic_prefix> <kind> <grade>");
    };
    let grade: Grade = grade.parse().map_err(anyhow::Error::msg)?;
    if let Some(problem) = topics::kind_problem(kind) {
        bail!("{problem}");
    }
    let kafka = KafkaSettings {
        brokers: brokers.clone(),
        client_id: "team-x-producer".into(),
        topic_prefix: prefix.clone(),
        message_timeout_ms: 10_000,
        ..KafkaSettings::default()
    };
    let report = ensure_topics(
        &kafka,
        &[TopicSpec {
            name: topics::topic_name(prefix, kind),
            partitions: 1,
            replication_factor: 1,
        }],
    )
    .await
    .context("create the kind's topic")?;
    if !report.failed.is_empty() {
        bail!("topic creation failed: {:?}", report.failed);
    }
    let transport: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(&kafka)?);
    let publisher = SnapshotPublisher::new(transport, Encoding::Json, prefix.clone());
    let mut snapshot = Snapshot::new(
        kind.as_str(),
        Source::new("team-x", "separate-process"),
        Utc::now(),
    );
    snapshot.push(Component::new("feed", grade, format!("feed is {grade}")));
    snapshot.status = grade;
    snapshot.summary = format!("team x feed is {grade}");
    snapshot.metric("interval_seconds", 60.0);
    snapshot.markdown = snapshot.render_markdown("Team X feed");
    tokio::time::timeout(Duration::from_secs(30), publisher.publish(&snapshot))
        .await
        .context("publish timed out")??;
    println!("{}", snapshot.id);
    Ok(())
}
