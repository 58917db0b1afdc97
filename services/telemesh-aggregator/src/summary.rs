//! Owns the summary state and the "professional runtime summary": the latest snapshot per
//! (kind, source), graded into one block per domain with age and staleness, plus the overall
//! grade, as JSON and as Markdown. Pure: time comes in as an argument.
//!
//! Producer clocks are not trusted: a snapshot counts as of `min(generated_at, received_at)`,
//! for both "newest per source" and age/staleness, so a snapshot dated in the future can
//! neither pin itself as newest nor look fresh for longer than it is.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use telemesh_core::snapshot::escape_cell;
use telemesh_core::{catalogue, topics};
use telemesh_core::{Grade, Snapshot, Source};

/// The metric through which a source states its publish interval.
pub const INTERVAL_METRIC: &str = "interval_seconds";

/// How staleness is judged.
#[derive(Debug, Clone)]
pub struct StalenessPolicy {
    pub stale_factor: f64,
    pub default_interval_seconds: f64,
    pub expected_kinds: Vec<String>,
}

/// The latest snapshot of every (kind, source).
#[derive(Debug, Default, Clone)]
pub struct SummaryState {
    latest: BTreeMap<(String, Source), Observed>,
}

/// A snapshot and the time it counts as of: `min(generated_at, received_at)`.
#[derive(Debug, Clone)]
struct Observed {
    snapshot: Snapshot,
    at: DateTime<Utc>,
}

/// One source of a domain.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceBlock {
    pub service: String,
    pub instance: String,
    pub status: Grade,
    pub generated_at: DateTime<Utc>,
    pub age_seconds: f64,
    pub stale: bool,
}

/// One domain (snapshot kind) of the summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DomainBlock {
    /// Worst of its sources; a stale source counts as at least `warn`.
    pub status: Grade,
    pub generated_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<f64>,
    pub stale: bool,
    pub expected_interval_seconds: f64,
    /// The snapshot that decided the status (the worst source, newest on ties).
    pub snapshot: Option<Snapshot>,
    pub markdown: String,
    pub sources: Vec<SourceBlock>,
    /// The catalogue's title of the kind, or the kind itself when it is unlisted.
    pub title: String,
    /// False for a producer's kind (`telemetry.<area>.<name>`) the catalogue does not list
    /// ("unlisted"); the aggregator's own blocks (e.g. `telemesh.alerting`) are listed.
    pub listed: bool,
}

/// The runtime summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub status: Grade,
    pub generated_at: DateTime<Utc>,
    /// One line for people.
    pub headline: String,
    /// The readiness roll-ups (data backbone, operational), computed from the domains below
    /// (`rollup.rs`).
    pub readiness: crate::rollup::Readiness,
    pub domains: BTreeMap<String, DomainBlock>,
    /// The execution journal's recent and latest rows (`journal/execution.rs`); filled by
    /// the summary actor when it has a journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_journal: Option<crate::journal::execution::ExecutionJournalView>,
}

impl SummaryState {
    /// Records a snapshot as of its own `generated_at` (see [`SummaryState::observe_received`]).
    pub fn observe(&mut self, snapshot: Snapshot) {
        let at = snapshot.generated_at;
        self.observe_received(snapshot, at);
    }

    /// Records a snapshot received at `received_at` unless a newer one of the same
    /// (kind, source) is already known; "newer" compares `min(generated_at, received_at)`.
    /// A "departed" snapshot (an instance's last word on shutdown) removes its source.
    pub fn observe_received(&mut self, snapshot: Snapshot, received_at: DateTime<Utc>) {
        let at = snapshot.generated_at.min(received_at);
        let key = (snapshot.kind.clone(), snapshot.source.clone());
        if telemesh_alerting::engine::is_departed(&snapshot) {
            if self.latest.get(&key).is_none_or(|known| known.at <= at) {
                self.latest.remove(&key);
            }
            return;
        }
        self.prune_replaced(&snapshot, at);
        match self.latest.get(&key) {
            Some(known) if known.at > at => {}
            _ => {
                self.latest.insert(key, Observed { snapshot, at });
            }
        }
    }

    pub fn latest(&self) -> impl Iterator<Item = &Snapshot> {
        self.latest.values().map(|o| &o.snapshot)
    }

    /// Builds the summary as of `now`.
    pub fn summary(&self, policy: &StalenessPolicy, now: DateTime<Utc>) -> Summary {
        let mut by_kind: BTreeMap<&str, Vec<&Observed>> = BTreeMap::new();
        for ((kind, _), observed) in &self.latest {
            if self.replaced(policy, observed, now) {
                continue;
            }
            by_kind.entry(kind.as_str()).or_default().push(observed);
        }
        let mut domains = BTreeMap::new();
        for (kind, snapshots) in by_kind {
            domains.insert(kind.to_owned(), domain_block(policy, kind, &snapshots, now));
        }
        for kind in &policy.expected_kinds {
            domains.entry(kind.clone()).or_insert_with(|| DomainBlock {
                status: Grade::Warn,
                generated_at: None,
                age_seconds: None,
                stale: true,
                expected_interval_seconds: policy.default_interval_seconds,
                snapshot: None,
                markdown: format!("### {kind}: WARN\n\nno snapshot received yet\n"),
                sources: Vec::new(),
                title: title_of(kind),
                listed: is_listed(kind),
            });
        }
        let status = if domains.is_empty() {
            Grade::Warn
        } else {
            Grade::worst(domains.values().map(|d| d.status))
        };
        let headline = headline(&domains);
        Summary {
            status,
            generated_at: now,
            headline,
            readiness: crate::rollup::readiness(&domains),
            domains,
            execution_journal: None,
        }
    }
}

/// An instance silent for this many of its stated intervals while a sibling reports is
/// forgotten (the default `stale_factor`).
const REPLACED_AFTER_INTERVALS: f64 = 3.0;

impl SummaryState {
    /// Forgets the instances of `snapshot`'s service that were replaced: silent for
    /// [`REPLACED_AFTER_INTERVALS`] of their stated interval before this newer snapshot
    /// (counted as of `at`).
    fn prune_replaced(&mut self, snapshot: &Snapshot, at: DateTime<Utc>) {
        // the instances of this kind and service are adjacent keys: visit only them
        let from = (
            snapshot.kind.clone(),
            Source::new(snapshot.source.service.clone(), String::new()),
        );
        let replaced: Vec<(String, Source)> = self
            .latest
            .range(from..)
            .take_while(|((kind, source), _)| {
                *kind == snapshot.kind && source.service == snapshot.source.service
            })
            .filter(|((_, source), known)| {
                source.instance != snapshot.source.instance
                    && known
                        .snapshot
                        .metrics
                        .get(INTERVAL_METRIC)
                        .filter(|i| i.is_finite() && **i > 0.0)
                        .is_some_and(|interval| {
                            let silent = (at - known.at).num_milliseconds() as f64 / 1000.0;
                            silent > REPLACED_AFTER_INTERVALS * interval
                        })
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in replaced {
            self.latest.remove(&key);
        }
    }

    /// A stale instance whose service has a newer instance reporting was replaced (a rolling
    /// update): it leaves the summary.
    fn replaced(&self, policy: &StalenessPolicy, observed: &Observed, now: DateTime<Utc>) -> bool {
        let snapshot = &observed.snapshot;
        age_seconds(observed, now) > policy.stale_factor * interval_of(policy, snapshot)
            && self.latest.values().any(|other| {
                other.snapshot.kind == snapshot.kind
                    && other.snapshot.source.service == snapshot.source.service
                    && other.snapshot.source.instance != snapshot.source.instance
                    && other.at > observed.at
            })
    }
}

fn interval_of(policy: &StalenessPolicy, snapshot: &Snapshot) -> f64 {
    snapshot
        .metrics
        .get(INTERVAL_METRIC)
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(policy.default_interval_seconds)
}

/// False only for a producer's kind (one matching `telemetry.<area>.<name>`) that the
/// catalogue does not list; the aggregator's own blocks (`telemesh.alerting`) count as listed.
fn is_listed(kind: &str) -> bool {
    catalogue::is_listed(kind) || !topics::is_snapshot_kind(kind)
}

/// The catalogue title of `kind`, or the kind itself when it is unlisted.
pub fn title_of(kind: &str) -> String {
    catalogue::get(kind).map_or_else(|| kind.to_owned(), |e| e.title.clone())
}

fn age_seconds(observed: &Observed, now: DateTime<Utc>) -> f64 {
    ((now - observed.at).num_milliseconds() as f64 / 1000.0).max(0.0)
}

fn domain_block(
    policy: &StalenessPolicy,
    kind: &str,
    observed: &[&Observed],
    now: DateTime<Utc>,
) -> DomainBlock {
    let sources: Vec<(SourceBlock, &Observed, Grade)> = observed
        .iter()
        .map(|o| {
            let s = &o.snapshot;
            let age = age_seconds(o, now);
            let stale = age > policy.stale_factor * interval_of(policy, s);
            let mut effective = s.status;
            if stale {
                effective.escalate(Grade::Warn);
            }
            (
                SourceBlock {
                    service: s.source.service.clone(),
                    instance: s.source.instance.clone(),
                    status: s.status,
                    generated_at: s.generated_at,
                    age_seconds: age,
                    stale,
                },
                *o,
                effective,
            )
        })
        .collect();
    let deciding = sources
        .iter()
        .max_by(|a, b| a.2.cmp(&b.2).then(a.1.at.cmp(&b.1.at)))
        .map(|(_, o, _)| *o);
    let status = Grade::worst(sources.iter().map(|(_, _, g)| *g));
    let stale = sources.iter().any(|(b, _, _)| b.stale);
    let mut markdown = deciding
        .map(|o| o.snapshot.markdown.clone())
        .unwrap_or_default();
    if stale {
        markdown = format!("> **stale**: at least one source stopped reporting\n\n{markdown}");
    }
    DomainBlock {
        status,
        generated_at: deciding.map(|o| o.snapshot.generated_at),
        age_seconds: deciding.map(|o| age_seconds(o, now)),
        stale,
        expected_interval_seconds: deciding
            .map(|o| interval_of(policy, &o.snapshot))
            .unwrap_or(policy.default_interval_seconds),
        snapshot: deciding.map(|o| o.snapshot.clone()),
        markdown,
        sources: sources.into_iter().map(|(b, _, _)| b).collect(),
        title: title_of(kind),
        listed: is_listed(kind),
    }
}

fn headline(domains: &BTreeMap<String, DomainBlock>) -> String {
    if domains.is_empty() {
        return "no snapshots received yet".into();
    }
    let count = |g: Grade| domains.values().filter(|d| d.status == g).count();
    let stale = domains.values().filter(|d| d.stale).count();
    format!(
        "{} domains: {} fail, {} warn, {} ok; {} stale",
        domains.len(),
        count(Grade::Fail),
        count(Grade::Warn),
        count(Grade::Ok),
        stale
    )
}

fn format_age(age: Option<f64>) -> String {
    match age {
        None => "never".into(),
        Some(a) if a < 120.0 => format!("{a:.0}s"),
        Some(a) if a < 7200.0 => format!("{:.0}m", a / 60.0),
        Some(a) => format!("{:.1}h", a / 3600.0),
    }
}

impl Summary {
    /// The summary as Markdown: overall grade, a table of domains (worst first), then each
    /// domain's own Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# telemesh runtime summary: {}\n\n{} (as of {})\n\n{}| Domain | Status | Age | Stale | Summary |\n| --- | --- | --- | --- | --- |\n",
            self.status.as_upper(),
            self.headline,
            self.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.readiness.to_markdown()
        );
        let mut ordered: Vec<(&String, &DomainBlock)> = self.domains.iter().collect();
        ordered.sort_by(|a, b| b.1.status.cmp(&a.1.status).then(a.0.cmp(b.0)));
        for (kind, block) in &ordered {
            let unlisted = if block.listed { "" } else { " (unlisted)" };
            out.push_str(&format!(
                "| {}{unlisted} | {} | {} | {} | {} |\n",
                kind,
                block.status.as_upper(),
                format_age(block.age_seconds),
                if block.stale { "yes" } else { "no" },
                escape_cell(
                    block
                        .snapshot
                        .as_ref()
                        .map_or("no snapshot received yet", |s| s.summary.as_str())
                )
            ));
        }
        for (_, block) in ordered {
            out.push('\n');
            out.push_str(&block.markdown);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemesh_core::Component;

    fn policy() -> StalenessPolicy {
        StalenessPolicy {
            stale_factor: 3.0,
            default_interval_seconds: 10.0,
            expected_kinds: vec![],
        }
    }

    fn snap(kind: &str, instance: &str, grade: Grade, at: DateTime<Utc>) -> Snapshot {
        let mut s = Snapshot::new(kind, Source::new("svc", instance), at);
        s.push(Component::new("c", grade, format!("{grade}")));
        s.summary = format!("{instance} is {grade}");
        s.markdown = s.render_markdown(kind);
        s
    }

    #[test]
    fn newest_snapshot_per_source_wins_and_blocks_take_the_worst_source() {
        let now = Utc::now();
        let mut state = SummaryState::default();
        let newer = snap("k", "a", Grade::Ok, now);
        state.observe(newer.clone());
        state.observe(snap(
            "k",
            "a",
            Grade::Fail,
            now - chrono::Duration::seconds(5),
        ));
        state.observe(snap(
            "k",
            "b",
            Grade::Warn,
            now - chrono::Duration::seconds(2),
        ));
        let summary = state.summary(&policy(), now);
        let block = &summary.domains["k"];
        assert_eq!(block.status, Grade::Warn);
        assert_eq!(block.snapshot.as_ref().unwrap().source.instance, "b");
        assert_eq!(block.sources.len(), 2);
        assert!(!block.stale);
        assert_eq!(summary.status, Grade::Warn);
    }

    #[test]
    fn a_block_is_stale_past_three_intervals_and_counts_as_warn() {
        let now = Utc::now();
        let mut state = SummaryState::default();
        state.observe(snap(
            "k",
            "a",
            Grade::Ok,
            now - chrono::Duration::seconds(30),
        ));
        assert!(
            !state.summary(&policy(), now).domains["k"].stale,
            "exactly 3 intervals is not stale"
        );
        let mut state = SummaryState::default();
        state.observe(snap(
            "k",
            "a",
            Grade::Ok,
            now - chrono::Duration::seconds(31),
        ));
        let summary = state.summary(&policy(), now);
        assert!(summary.domains["k"].stale);
        assert_eq!(summary.domains["k"].status, Grade::Warn);
        // a source stating a longer interval is not stale yet
        let mut s = snap("k", "a", Grade::Ok, now - chrono::Duration::seconds(31));
        s.metric(INTERVAL_METRIC, 60.0);
        let mut state = SummaryState::default();
        state.observe(s);
        assert!(!state.summary(&policy(), now).domains["k"].stale);
    }

    #[test]
    fn a_snapshot_from_the_future_cannot_pin_the_summary() {
        let now = Utc::now();
        let mut state = SummaryState::default();
        // a producer clock 4 minutes ahead: counted as of its receive time
        let future = snap("k", "a", Grade::Fail, now + chrono::Duration::minutes(4));
        state.observe_received(future, now - chrono::Duration::seconds(20));
        // the next snapshot of that source, received later, replaces it
        let honest = snap("k", "a", Grade::Ok, now - chrono::Duration::seconds(10));
        state.observe_received(honest, now - chrono::Duration::seconds(10));
        let block = &state.summary(&policy(), now).domains["k"];
        assert_eq!(block.status, Grade::Ok);
        assert_eq!(block.age_seconds, Some(10.0));
        // and a future-dated snapshot ages from when it arrived: stale after 3 intervals
        let mut state = SummaryState::default();
        let future = snap("k", "a", Grade::Ok, now + chrono::Duration::minutes(4));
        state.observe_received(future, now - chrono::Duration::seconds(31));
        let block = &state.summary(&policy(), now).domains["k"];
        assert!(block.stale, "{block:?}");
        assert_eq!(block.status, Grade::Warn);
        // an old snapshot received late does not replace a newer one
        let mut state = SummaryState::default();
        state.observe_received(snap("k", "a", Grade::Ok, now), now);
        state.observe_received(
            snap("k", "a", Grade::Fail, now - chrono::Duration::seconds(60)),
            now + chrono::Duration::seconds(1),
        );
        assert_eq!(state.summary(&policy(), now).domains["k"].status, Grade::Ok);
    }

    #[test]
    fn empty_and_missing_domains_are_not_ok() {
        let now = Utc::now();
        let state = SummaryState::default();
        assert_eq!(state.summary(&policy(), now).status, Grade::Warn);
        let mut p = policy();
        p.expected_kinds = vec!["telemetry.ingest.trends".into()];
        let summary = state.summary(&p, now);
        assert!(summary.domains["telemetry.ingest.trends"]
            .snapshot
            .is_none());
        assert!(summary.to_markdown().contains("no snapshot received yet"));
    }

    #[test]
    fn markdown_lists_worst_domains_first() {
        let now = Utc::now();
        let mut state = SummaryState::default();
        state.observe(snap("telemetry.kafka.readiness", "x", Grade::Ok, now));
        state.observe(snap("telemetry.team_b.fail", "x", Grade::Fail, now));
        let summary = state.summary(&policy(), now);
        let md = summary.to_markdown();
        assert!(md.starts_with("# telemesh runtime summary: FAIL"));
        assert!(
            md.find("| telemetry.team_b.fail (unlisted) |").unwrap()
                < md.find("| telemetry.kafka.readiness |").unwrap(),
            "{md}"
        );
        let listed = &summary.domains["telemetry.kafka.readiness"];
        assert!(listed.listed);
        assert_eq!(listed.title, "Kafka readiness");
        let unlisted = &summary.domains["telemetry.team_b.fail"];
        assert!(!unlisted.listed);
        assert_eq!(unlisted.title, "telemetry.team_b.fail");
        // the aggregator's own blocks are not producers' kinds: never "unlisted"
        assert!(is_listed("telemesh.alerting"));
    }

    #[test]
    fn departed_and_replaced_instances_leave_the_summary() {
        let now = Utc::now();
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        let mut state = SummaryState::default();
        // a rolling update: "old" stopped 40 s ago (stale), "new" reports
        state.observe(snap("k", "old", Grade::Ok, ago(40)));
        state.observe(snap("k", "new", Grade::Ok, ago(1)));
        // a lone stale instance stays (it is what staleness is about)
        state.observe(snap("lone", "only", Grade::Ok, ago(40)));
        let summary = state.summary(&policy(), now);
        let instances = |kind: &str| -> Vec<String> {
            summary.domains[kind]
                .sources
                .iter()
                .map(|s| s.instance.clone())
                .collect()
        };
        assert_eq!(instances("k"), ["new"]);
        assert!(!summary.domains["k"].stale);
        assert_eq!(instances("lone"), ["only"]);
        // a fresh old instance is not hidden
        let mut state = SummaryState::default();
        state.observe(snap("k", "old", Grade::Ok, ago(5)));
        state.observe(snap("k", "new", Grade::Ok, ago(1)));
        assert_eq!(state.summary(&policy(), now).domains["k"].sources.len(), 2);
        // an instance's departed snapshot removes it at once; an older one does not
        let mut bye = snap("k", "old", Grade::Ok, ago(2));
        bye.metric(telemesh_alerting::engine::DEPARTED_METRIC, 1.0);
        let mut stale_bye = bye.clone();
        stale_bye.generated_at = ago(10);
        stale_bye.source.instance = "new".into();
        state.observe(bye);
        state.observe(stale_bye);
        let left: Vec<String> = state.latest().map(|s| s.source.instance.clone()).collect();
        assert_eq!(left, ["new"]);
    }
}
