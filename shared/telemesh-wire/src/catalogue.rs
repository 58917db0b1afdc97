//! Owns the catalogue of known snapshot kinds: data (`catalogue.toml` in this crate, compiled
//! in and parsed once), not an enum. A kind that matches the pattern but is not listed is
//! still valid; consumers show it as "unlisted".

use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

/// One known kind.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The kind (= topic name without namespace prefix).
    pub kind: String,
    /// What people read in the summary, e.g. "Kafka readiness".
    pub title: String,
    /// How often a healthy producer publishes, in seconds.
    pub interval_seconds: u64,
    /// The service or team that publishes it.
    pub owner: String,
    /// Where its grading is explained (a path in the repository).
    pub docs: String,
}

impl Entry {
    /// The expected publish interval.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    kind: Vec<Entry>,
}

const CATALOGUE_TOML: &str = include_str!("../catalogue.toml");

/// Parses a catalogue file and checks every entry (valid kind, no duplicates, non-empty
/// title, owner and docs, interval of at least one second).
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let file: File = toml::from_str(text).map_err(|e| format!("catalogue: {e}"))?;
    let mut seen = std::collections::BTreeSet::new();
    for entry in &file.kind {
        crate::topics::validate_kind(&entry.kind).map_err(|e| format!("catalogue: {e}"))?;
        if !seen.insert(entry.kind.as_str()) {
            return Err(format!("catalogue: {} is listed twice", entry.kind));
        }
        if entry.title.trim().is_empty() || entry.owner.trim().is_empty() {
            return Err(format!(
                "catalogue: {} needs a title and an owner",
                entry.kind
            ));
        }
        if entry.docs.trim().is_empty() {
            return Err(format!("catalogue: {} needs a docs link", entry.kind));
        }
        if entry.interval_seconds == 0 {
            return Err(format!(
                "catalogue: {} needs interval_seconds of at least 1",
                entry.kind
            ));
        }
    }
    Ok(file.kind)
}

/// Every known kind, in catalogue order (the summary's order for listed kinds).
pub fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        // The file is compiled in and checked by this module's tests: it cannot fail at run
        // time unless the tests were skipped, and then an empty catalogue only marks every
        // kind "unlisted".
        parse(CATALOGUE_TOML).unwrap_or_default()
    })
}

/// The catalogue entry of `kind`, if it is listed.
pub fn get(kind: &str) -> Option<&'static Entry> {
    entries().iter().find(|e| e.kind == kind)
}

/// True when `kind` is in the catalogue.
pub fn is_listed(kind: &str) -> bool {
    get(kind).is_some()
}

/// Where `kind` sorts in the summary: listed kinds in catalogue order, then unlisted ones.
pub fn position(kind: &str) -> usize {
    entries()
        .iter()
        .position(|e| e.kind == kind)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics;

    #[test]
    fn the_shipped_catalogue_parses_and_lists_every_named_kind() {
        let parsed = parse(CATALOGUE_TOML).unwrap();
        assert_eq!(parsed.len(), entries().len());
        for kind in topics::SNAPSHOT_KINDS.iter().chain(&topics::SECTION_KINDS) {
            assert!(is_listed(kind), "{kind} is not in catalogue.toml");
        }
        let kafka = get(topics::KAFKA_READINESS).unwrap();
        assert_eq!(kafka.title, "Kafka readiness");
        assert_eq!(kafka.interval(), Duration::from_secs(30));
        assert!(!is_listed("telemetry.team_x.orders"));
        assert_eq!(position(topics::KAFKA_READINESS), 0);
        assert_eq!(position("telemetry.team_x.orders"), usize::MAX);
    }

    #[test]
    fn every_docs_link_names_a_file_of_the_repository() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for entry in entries() {
            let path = entry.docs.split('#').next().unwrap_or_default();
            assert!(root.join(path).is_file(), "{}: {path}", entry.kind);
        }
    }

    #[test]
    fn bad_catalogues_are_refused_with_the_reason() {
        let entry = |kind: &str, interval: u64| {
            format!(
                "[[kind]]\nkind = {kind:?}\ntitle = \"T\"\ninterval_seconds = {interval}\n\
                 owner = \"o\"\ndocs = \"d\"\n"
            )
        };
        let cases = [
            (entry("telemetry.dlq", 30), "does not match"),
            (entry("telemetry.a.b", 0), "interval_seconds"),
            (
                format!("{}{}", entry("telemetry.a.b", 1), entry("telemetry.a.b", 1)),
                "listed twice",
            ),
            (
                "[[kind]]\nkind = \"telemetry.a.b\"\n".to_string(),
                "missing field",
            ),
            (
                format!("{}extra = 1\n", entry("telemetry.a.b", 1)),
                "unknown field",
            ),
        ];
        for (text, reason) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }
}
