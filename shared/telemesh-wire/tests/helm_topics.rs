//! Owns the check that the Helm chart's topics Job creates the topic of every catalogue kind
//! and the dead-letter topic: the chart cannot read `catalogue.toml`, so its list is a copy.

use std::path::PathBuf;

use telemesh_wire::{catalogue, topics};

#[test]
fn the_chart_topics_job_creates_every_catalogue_kind_and_the_dead_letter_topic() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../helm/telemesh/templates/topics-job.yaml");
    let template =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let start = template
        .find("{{- range list")
        .expect("the topics Job ranges over a list of kinds");
    let end = start + template[start..].find("}}").expect("the list closes");
    let listed: Vec<&str> = template[start..end].split('"').skip(1).step_by(2).collect();
    let mut want: Vec<&str> = catalogue::entries()
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    want.push(topics::DLQ);
    assert_eq!(
        listed, want,
        "helm/telemesh/templates/topics-job.yaml must list the catalogue's kinds in order, then telemetry.dlq"
    );
}
