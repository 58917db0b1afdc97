//! Owns what both evaluators share: human-readable durations and the `fail` snapshot published
//! when the platform's database cannot be read.

use chrono::{DateTime, Utc};
use telemesh_core::{Component, Grade, Snapshot, Source};

/// The metric through which a snapshot states its publish interval (read by the aggregator).
pub const INTERVAL_METRIC: &str = "interval_seconds";

/// `45 s`, `12.5 min`, `3.2 h`, `9.0 d`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7_200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3_600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// A `fail` snapshot of `kind` saying the source database could not be read, and why.
pub fn unavailable(
    kind: &str,
    title: &str,
    source: &Source,
    interval_seconds: u64,
    error: &str,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut s = Snapshot::new(kind, source.clone(), now);
    let summary = format!(
        "cannot read the platform database: {error}; check [ingest] source_url, that the database accepts connections and the service's grants"
    );
    s.push(Component::new("source_database", Grade::Fail, summary.clone()).detail("error", error));
    s.summary = summary;
    s.metric(INTERVAL_METRIC, interval_seconds as f64);
    s.markdown = s.render_markdown(title);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(human_duration(-3.0), "0 s");
        assert_eq!(human_duration(45.0), "45 s");
        assert_eq!(human_duration(900.0), "15.0 min");
        assert_eq!(human_duration(3.0 * 3_600.0), "3.0 h");
        assert_eq!(human_duration(9.0 * 86_400.0), "9.0 d");
    }

    #[test]
    fn unavailable_is_fail_and_says_why() {
        let s = unavailable(
            "telemetry.ingest.trends",
            "Ingest trends",
            &Source::new("ingest", "a"),
            60,
            "connection refused",
            Utc::now(),
        );
        assert_eq!(s.status, Grade::Fail);
        assert!(s.summary.contains("connection refused"), "{}", s.summary);
        assert_eq!(s.metrics.get(INTERVAL_METRIC), Some(&60.0));
        assert!(s.markdown.contains("FAIL"));
        assert_eq!(s.validate(), Ok(()));
    }
}
