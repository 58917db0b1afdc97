//! Owns the kind pattern (`telemetry.<area>.<name>`) and the Kafka topic of a kind (one topic
//! per kind, under an optional namespace prefix), plus the names of the kinds telemesh knows.

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

/// The kinds telemesh's own services publish, in summary order. Any other kind matching the
/// pattern (see [`validate_kind`]) is accepted too; [`catalogue`](crate::catalogue) lists the
/// known ones.
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
/// of a snapshot export, `docs/exports.md`). The aggregator consumes them like any other kind.
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

/// What every kind starts with.
pub const KIND_ROOT: &str = "telemetry.";

/// The longest kind, in bytes (a Kafka topic name holds 249 characters; the rest is left
/// for a namespace prefix).
pub const MAX_KIND_LEN: usize = 120;

/// Why a name is not a snapshot kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKind {
    #[error("kind is empty; use telemetry.<area>.<name>, e.g. telemetry.kafka.readiness")]
    Empty,
    #[error("kind is {len} bytes long; at most {max} are allowed", max = MAX_KIND_LEN)]
    TooLong { len: usize },
    #[error(
        "kind does not match telemetry.<area>.<name> (two lowercase segments of a-z, 0-9 and \
         _, each starting with a letter), e.g. telemetry.kafka.readiness"
    )]
    Pattern { kind: String },
}

/// Checks `kind` against the documented pattern `telemetry.<area>.<name>`: `<area>` and
/// `<name>` are each one segment of lowercase ASCII letters, digits and `_` that starts with a
/// letter; at most [`MAX_KIND_LEN`] bytes in all. [`DLQ`] (`telemetry.dlq`) has two segments
/// and so is never a kind.
pub fn validate_kind(kind: &str) -> Result<(), InvalidKind> {
    if kind.is_empty() {
        return Err(InvalidKind::Empty);
    }
    if kind.len() > MAX_KIND_LEN {
        return Err(InvalidKind::TooLong { len: kind.len() });
    }
    let segments = kind.strip_prefix(KIND_ROOT).map(|rest| {
        let mut parts = rest.split('.');
        (parts.next(), parts.next(), parts.next())
    });
    match segments {
        Some((Some(area), Some(name), None)) if is_segment(area) && is_segment(name) => Ok(()),
        _ => Err(InvalidKind::Pattern {
            kind: kind.to_owned(),
        }),
    }
}

/// `None` for a valid kind, else the text for an error response: the offending value quoted
/// (escaped, cut at [`MAX_KIND_LEN`] characters) and what a kind looks like.
pub fn kind_problem(kind: &str) -> Option<String> {
    let e = validate_kind(kind).err()?;
    let shown: String = kind.chars().take(MAX_KIND_LEN).collect();
    let cut = if shown.len() < kind.len() { "…" } else { "" };
    Some(format!("unknown kind {shown:?}{cut}: {e}"))
}

fn is_segment(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// True when `kind` matches the kind pattern (see [`validate_kind`]), listed in the
/// [`catalogue`](crate::catalogue) or not.
pub fn is_snapshot_kind(kind: &str) -> bool {
    validate_kind(kind).is_ok()
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

/// The librdkafka regex subscription (a leading `^` makes it a pattern) for every snapshot
/// topic under `prefix`: exactly the topics [`kind_of_topic`] accepts, except for the length
/// bound (checked again on receipt). `telemetry.dlq` and topics outside `telemetry.` (the FIX
/// pilot's `execution.*` order topics) do not match. The regex is POSIX extended, which is
/// what librdkafka compiles.
pub fn subscription_pattern(prefix: &str) -> String {
    let mut pattern = String::from("^");
    for c in prefix.chars() {
        if ".[]{}()\\*+?^$|".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str(r"telemetry\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$");
    pattern
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
        assert_eq!(
            kind_of_topic("t1.", "t1.telemetry.team_x.orders_2"),
            Some("telemetry.team_x.orders_2")
        );
        assert_eq!(kind_of_topic("", "execution.order_events"), None);
    }

    #[test]
    fn kind_pattern_table() {
        let at_limit = format!(
            "telemetry.a.{}",
            "b".repeat(MAX_KIND_LEN - "telemetry.a.".len())
        );
        let over_limit = format!("{at_limit}c");
        let cases: &[(&str, bool)] = &[
            ("telemetry.kafka.readiness", true),
            ("telemetry.a.b", true),
            ("telemetry.ci.pipeline_2", true),
            ("telemetry.a1.b_", true),
            (&at_limit, true),
            (&over_limit, false),
            ("", false),
            ("telemetry.dlq", false),
            ("telemetry.", false),
            ("telemetry..x", false),
            ("telemetry.a.", false),
            ("telemetry.a.b.c", false),
            ("telemetry.A.b", false),
            ("telemetry.a.B", false),
            ("telemetry.1a.b", false),
            ("telemetry._a.b", false),
            ("telemetry.a.b-c", false),
            ("telemetry.a.b c", false),
            ("telemetry.a.b\0", false),
            ("telemetry.a.\u{e9}t\u{e9}", false),
            ("Telemetry.a.b", false),
            ("metrics.a.b", false),
            ("execution.order_events", false),
            (" telemetry.a.b", false),
            ("telemetry.a.b\n", false),
        ];
        for (kind, valid) in cases {
            assert_eq!(is_snapshot_kind(kind), *valid, "{kind:?}");
        }
        assert_eq!(validate_kind(""), Err(InvalidKind::Empty));
        assert_eq!(
            validate_kind(&over_limit),
            Err(InvalidKind::TooLong {
                len: MAX_KIND_LEN + 1
            })
        );
        let message = kind_problem("telemetry.a.b\0").unwrap();
        assert!(message.contains("\\0"), "NUL is escaped: {message}");
        assert!(message.contains("telemetry.<area>.<name>"), "{message}");
        let long = kind_problem(&"x".repeat(10_000)).unwrap();
        assert!(long.len() < 400, "the quoted value is cut: {long}");
        assert_eq!(kind_problem(KAFKA_READINESS), None);
        for kind in SNAPSHOT_KINDS.iter().chain(&SECTION_KINDS) {
            assert!(is_snapshot_kind(kind), "{kind}");
        }
        assert!(!is_snapshot_kind(DLQ));
    }

    #[test]
    fn subscription_pattern_escapes_the_prefix() {
        assert_eq!(
            subscription_pattern(""),
            r"^telemetry\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
        );
        assert_eq!(
            subscription_pattern("t1.a+b"),
            r"^t1\.a\+btelemetry\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
        );
    }
}
