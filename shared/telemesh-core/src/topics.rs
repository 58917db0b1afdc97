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

/// Professional-readiness snapshots (operational export).
pub const PROFESSIONAL_READINESS: &str = "telemetry.operational.professional_readiness";
/// Security posture snapshots (operational export).
pub const SECURITY: &str = "telemetry.operational.security";
/// End-to-end system validation (operational export).
pub const SYSTEM_VALIDATION: &str = "telemetry.operational.system_validation";
/// Data-backbone readiness (data-backbone export).
pub const DATA_BACKBONE: &str = "telemetry.data_backbone.readiness";
/// Data-backbone validation (data-backbone export).
pub const DATA_BACKBONE_VALIDATION: &str = "telemetry.data_backbone.validation";
/// Ingest scheduler health (data-backbone export).
pub const INGEST_SCHEDULER: &str = "telemetry.ingest.scheduler";
/// Risk limits and engine readiness (risk-compliance export).
pub const RISK: &str = "telemetry.risk.readiness";
/// Order execution health (risk-compliance export).
pub const EXECUTION: &str = "telemetry.operational.execution";
/// Compliance readiness (risk-compliance export).
pub const COMPLIANCE_READINESS: &str = "telemetry.compliance.readiness";
/// Compliance workflows (risk-compliance export).
pub const COMPLIANCE_WORKFLOWS: &str = "telemetry.compliance.workflows";
/// Compliance checks (risk-compliance export).
pub const COMPLIANCE: &str = "telemetry.compliance.checks";
/// KYC checks (risk-compliance export).
pub const KYC: &str = "telemetry.compliance.kyc";

/// Kinds no telemesh service produces yet: a team's own producer fills them (each is a section
/// of a snapshot export, `docs/exports.md`). The aggregator consumes them like the others.
pub const SECTION_KINDS: [&str; 12] = [
    PROFESSIONAL_READINESS,
    SECURITY,
    SYSTEM_VALIDATION,
    DATA_BACKBONE,
    DATA_BACKBONE_VALIDATION,
    INGEST_SCHEDULER,
    RISK,
    EXECUTION,
    COMPLIANCE_READINESS,
    COMPLIANCE_WORKFLOWS,
    COMPLIANCE,
    KYC,
];

/// True when `kind` is one of [`SNAPSHOT_KINDS`] or [`SECTION_KINDS`].
pub fn is_snapshot_kind(kind: &str) -> bool {
    SNAPSHOT_KINDS.contains(&kind) || SECTION_KINDS.contains(&kind)
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
