//! Owns the Kafka topic names of the external contract (one topic per snapshot kind).

/// Kafka readiness snapshots.
pub const KAFKA_READINESS: &str = "telemetry.kafka.readiness";
/// FIX pilot session telemetry.
pub const FIX_PILOT: &str = "telemetry.execution.fix_pilot";
/// Drop-copy reconciliation snapshots.
pub const DROPCOPY: &str = "telemetry.execution.dropcopy";
/// Market-data ingest trends.
pub const INGEST_TRENDS: &str = "telemetry.ingest.trends";
/// Market-data retention coverage.
pub const RETENTION: &str = "telemetry.data_backbone.retention";
/// Incident-response readiness.
pub const INCIDENT_RESPONSE: &str = "telemetry.operational.incident_response";
/// Dead letters: messages the aggregator could not decode.
pub const DLQ: &str = "telemetry.dlq";

/// Every snapshot kind (= topic name) the aggregator consumes, in summary order.
pub const SNAPSHOT_KINDS: [&str; 6] = [
    KAFKA_READINESS,
    FIX_PILOT,
    DROPCOPY,
    INGEST_TRENDS,
    RETENTION,
    INCIDENT_RESPONSE,
];

/// True when `kind` is one of [`SNAPSHOT_KINDS`].
pub fn is_snapshot_kind(kind: &str) -> bool {
    SNAPSHOT_KINDS.contains(&kind)
}

/// The topic a kind travels on, under an optional namespace prefix (`""` in production;
/// tests and shared clusters use e.g. `"t1234."`).
pub fn topic_name(prefix: &str, kind: &str) -> String {
    format!("{prefix}{kind}")
}

/// The kind a topic carries once its namespace prefix is removed, if it is a snapshot topic.
pub fn kind_of_topic<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    topic
        .strip_prefix(prefix)
        .filter(|kind| is_snapshot_kind(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_map_to_kinds_under_a_prefix() {
        assert_eq!(
            topic_name("t1.", KAFKA_READINESS),
            "t1.telemetry.kafka.readiness"
        );
        assert_eq!(
            kind_of_topic("t1.", "t1.telemetry.kafka.readiness"),
            Some(KAFKA_READINESS)
        );
        assert_eq!(kind_of_topic("", "telemetry.dlq"), None);
        assert_eq!(kind_of_topic("t1.", "telemetry.kafka.readiness"), None);
    }
}
