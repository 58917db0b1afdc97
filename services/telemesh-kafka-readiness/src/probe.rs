//! Owns [`KafkaProbe`]: the real I/O against the Kafka cluster that fills a
//! [`ReadinessState`] — metadata (which brokers answer, which topics exist), provisioning of
//! missing topics, recent messages per telemetry topic (from end offsets and offsets for a
//! timestamp) and the committed offsets of consumer groups against high watermarks.
//!
//! Every blocking librdkafka call runs inside `tokio::task::spawn_blocking` with the
//! `[kafka] request_timeout_ms` timeout, so the probe is safe on actix's current-thread
//! runtime. Group clients only read committed offsets: they never subscribe or commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use telemesh_core::config::KafkaSettings;
use telemesh_core::topics;
use telemesh_core::transport::kafka::{client_config, ensure_topics, TopicSpec};

use crate::settings::ReadinessSettings;
use crate::state::{
    ConnectionState, GroupLag, PartitionLag, ProvisioningState, PublisherState, ReadinessState,
    TopicState,
};

/// Probes one Kafka cluster. Keep one per service: it reuses its clients and remembers each
/// group's committed offsets between runs to tell when a consumer last made progress.
pub struct KafkaProbe {
    kafka: KafkaSettings,
    /// Expected topics, prefix applied, normalised.
    topics: Vec<String>,
    groups: Vec<String>,
    publisher_window: chrono::Duration,
    provision: Option<(i32, i32)>,
    /// Topics provisioned with the expected ones but not expected themselves: every kind of
    /// the catalogue and the dead-letter topic, prefix applied, so a producer of any listed
    /// kind (e.g. `telemetry.ci.history`) finds its topic on a broker that does not
    /// auto-create them.
    provision_also: Vec<String>,
    metadata_client: Option<Arc<BaseConsumer>>,
    group_clients: HashMap<String, Arc<BaseConsumer>>,
    progress: HashMap<String, Progress>,
    last_lag: HashMap<String, GroupLag>,
}

impl std::fmt::Debug for KafkaProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProbe")
            .field("kafka", &self.kafka.describe())
            .field("topics", &self.topics)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// A group's committed offsets at its last measurement and when they last moved.
#[derive(Debug, Clone)]
struct Progress {
    committed: BTreeMap<(String, i32), i64>,
    last_progress_at: DateTime<Utc>,
}

/// What the metadata answer says.
#[derive(Debug)]
struct ClusterView {
    brokers: Vec<i32>,
    /// Topics without a metadata error, with their partition counts.
    partitions: HashMap<String, i32>,
}

/// What the offset stage read.
#[derive(Debug, Default)]
struct Offsets {
    publishers: Vec<PublisherState>,
    groups: Vec<(String, Result<Vec<PartitionLag>, String>)>,
    errors: Vec<String>,
}

impl KafkaProbe {
    /// A probe of the cluster of `kafka` for the topics and groups of `settings`. Opens no
    /// connection yet.
    pub fn new(settings: &ReadinessSettings, kafka: KafkaSettings) -> Self {
        let topics: Vec<String> = settings
            .normalized_topics()
            .iter()
            .map(|t| topics::topic_name(&kafka.topic_prefix, t))
            .collect();
        let groups = settings.groups(&kafka.group_id);
        let provision_also = provisioned_topics(&kafka.topic_prefix)
            .into_iter()
            .filter(|t| !topics.contains(t))
            .collect();
        let window_seconds =
            i64::try_from(settings.publisher_window_seconds).unwrap_or(i64::MAX / 1000);
        Self {
            topics,
            groups,
            publisher_window: chrono::Duration::try_seconds(window_seconds)
                .unwrap_or(chrono::Duration::MAX),
            provision: settings.provision_topics.then_some((
                settings.provision_partitions,
                settings.provision_replication_factor,
            )),
            provision_also,
            kafka,
            metadata_client: None,
            group_clients: HashMap::new(),
            progress: HashMap::new(),
            last_lag: HashMap::new(),
        }
    }

    /// The expected topics, prefix applied.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// Topics provisioned besides the expected ones (see the field).
    pub fn provision_also(&self) -> &[String] {
        &self.provision_also
    }

    /// The consumer groups whose lag is measured.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.kafka.request_timeout_ms.max(1))
    }

    /// Topics that count as publishers: expected ones except the dead-letter topic (written
    /// only on failures) and this service's own topic (which would count itself).
    fn is_publisher_topic(&self, topic: &str) -> bool {
        let prefix = &self.kafka.topic_prefix;
        topic != topics::topic_name(prefix, topics::DLQ)
            && topic != topics::topic_name(prefix, topics::KAFKA_READINESS)
    }

    fn metadata_client(&mut self) -> Result<Arc<BaseConsumer>, String> {
        if let Some(client) = &self.metadata_client {
            return Ok(Arc::clone(client));
        }
        let client: BaseConsumer = client_config(&self.kafka)
            .map_err(|e| e.to_string())?
            .create()
            .map_err(|e| format!("cannot create the kafka client: {e}; check [kafka] settings"))?;
        let client = Arc::new(client);
        self.metadata_client = Some(Arc::clone(&client));
        Ok(client)
    }

    fn group_client(&mut self, group: &str) -> Result<Arc<BaseConsumer>, String> {
        if let Some(client) = self.group_clients.get(group) {
            return Ok(Arc::clone(client));
        }
        let client: BaseConsumer = client_config(&self.kafka)
            .map_err(|e| e.to_string())?
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .map_err(|e| format!("cannot create a client for group {group}: {e}"))?;
        let client = Arc::new(client);
        self.group_clients
            .insert(group.to_owned(), Arc::clone(&client));
        Ok(client)
    }

    /// Probes the cluster once. Never fails: what could not be read is reported in the state.
    /// Without configured brokers it returns at once without touching the network.
    pub async fn probe(&mut self, now: DateTime<Utc>) -> ReadinessState {
        let mut state = ReadinessState {
            connection: ConnectionState {
                configured: self.kafka.is_configured(),
                description: self.kafka.describe(),
                brokers_answered: Vec::new(),
                error: None,
            },
            ..ReadinessState::default()
        };
        if !state.connection.configured {
            return state;
        }
        let client = match self.metadata_client() {
            Ok(client) => client,
            Err(e) => {
                state.connection.error = Some(e);
                return state;
            }
        };
        let timeout = self.timeout();
        let view = {
            let client = Arc::clone(&client);
            blocking(move || fetch_metadata(&client, timeout)).await
        };
        let view = match view {
            Ok(view) => view,
            Err(e) => {
                state.connection.error = Some(e);
                return state;
            }
        };
        state.connection.brokers_answered = view.brokers.clone();
        state.topics = self
            .topics
            .iter()
            .map(|name| {
                let partitions = view.partitions.get(name).copied().unwrap_or(0);
                TopicState {
                    name: name.clone(),
                    exists: view.partitions.contains_key(name),
                    partitions,
                }
            })
            .collect();
        if let Some((partitions, replication_factor)) = self.provision {
            let missing: Vec<TopicSpec> = state
                .topics
                .iter()
                .filter(|t| !t.exists)
                .map(|t| &t.name)
                .chain(
                    self.provision_also
                        .iter()
                        .filter(|t| !view.partitions.contains_key(*t)),
                )
                .map(|name| TopicSpec {
                    name: name.clone(),
                    partitions,
                    replication_factor,
                })
                .collect();
            if !missing.is_empty() {
                state.provisioning = Some(
                    self.provision(&missing, &mut state.topics, partitions)
                        .await,
                );
            }
        }
        let existing: Vec<(String, i32)> = state
            .topics
            .iter()
            .filter(|t| t.exists && t.partitions > 0)
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        let publisher_topics: Vec<String> = existing
            .iter()
            .map(|(t, _)| t.clone())
            .filter(|t| self.is_publisher_topic(t))
            .collect();
        let mut groups = Vec::new();
        for group in self.groups.clone() {
            match self.group_client(&group) {
                Ok(c) => groups.push((group, Ok(c))),
                Err(e) => groups.push((group, Err(e))),
            }
        }
        let window_start = (now - self.publisher_window).timestamp_millis().max(0);
        let offsets = blocking(move || {
            read_offsets(
                &client,
                &existing,
                &publisher_topics,
                groups,
                window_start,
                timeout,
            )
        })
        .await
        .unwrap_or_else(|e| Offsets {
            errors: vec![e],
            ..Offsets::default()
        });
        state.publishers = offsets.publishers;
        state.probe_errors = offsets.errors;
        let recorded_at = Utc::now();
        state.lag = offsets
            .groups
            .into_iter()
            .map(|(group, result)| self.group_lag(group, result, recorded_at))
            .collect();
        state
    }

    /// Creates the missing topics; marks the created ones as existing in `topics`.
    async fn provision(
        &self,
        missing: &[TopicSpec],
        topics: &mut [TopicState],
        partitions: i32,
    ) -> ProvisioningState {
        match ensure_topics(&self.kafka, missing).await {
            Ok(report) => {
                let report = ProvisioningState::from(report);
                for t in topics.iter_mut() {
                    if report.created.contains(&t.name) || report.existing.contains(&t.name) {
                        t.exists = true;
                        if t.partitions == 0 {
                            t.partitions = partitions;
                        }
                    }
                }
                if !report.created.is_empty() {
                    tracing::info!(created = ?report.created, "provisioned missing kafka topics");
                }
                report
            }
            Err(e) => ProvisioningState {
                failed: missing
                    .iter()
                    .map(|s| (s.name.clone(), e.to_string()))
                    .collect(),
                ..ProvisioningState::default()
            },
        }
    }

    /// Turns one group's read into its [`GroupLag`], updating the progress memory. A failed
    /// read falls back to the previous measurement (whose age then shows as staleness).
    fn group_lag(
        &mut self,
        group: String,
        result: Result<Vec<PartitionLag>, String>,
        recorded_at: DateTime<Utc>,
    ) -> GroupLag {
        let partitions = match result {
            Ok(partitions) => partitions,
            Err(error) => {
                tracing::warn!(group = %group, error = %error, "cannot read committed offsets");
                return match self.last_lag.get(&group) {
                    Some(previous) => GroupLag {
                        error: Some(error),
                        ..previous.clone()
                    },
                    None => GroupLag::unavailable(group, error),
                };
            }
        };
        let committed: BTreeMap<(String, i32), i64> = partitions
            .iter()
            .filter_map(|p| p.committed.map(|c| ((p.topic.clone(), p.partition), c)))
            .collect();
        let caught_up = partitions.iter().all(|p| p.lag.unwrap_or(0) == 0);
        let last_progress_at = match self.progress.get(&group) {
            Some(previous) if previous.committed == committed && !caught_up => {
                previous.last_progress_at
            }
            _ => recorded_at,
        };
        self.progress.insert(
            group.clone(),
            Progress {
                committed,
                last_progress_at,
            },
        );
        let lag = GroupLag {
            group: group.clone(),
            recorded_at: Some(recorded_at),
            partitions,
            last_progress_at: Some(last_progress_at),
            error: None,
        };
        self.last_lag.insert(group, lag.clone());
        lag
    }
}

/// Every catalogue kind's topic and the dead-letter topic under `prefix`: what provisioning
/// creates besides the expected topics.
fn provisioned_topics(prefix: &str) -> Vec<String> {
    telemesh_core::catalogue::entries()
        .iter()
        .map(|e| e.kind.as_str())
        .chain(std::iter::once(topics::DLQ))
        .map(|kind| topics::topic_name(prefix, kind))
        .collect()
}

/// Runs a blocking librdkafka call off the async runtime's thread.
async fn blocking<T, F>(f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("probe task failed: {e}"))?
}

fn fetch_metadata(client: &BaseConsumer, timeout: Duration) -> Result<ClusterView, String> {
    let metadata = client.fetch_metadata(None, timeout).map_err(|e| {
        format!(
            "metadata request failed within {}ms: {e}",
            timeout.as_millis()
        )
    })?;
    // serve the client's event queue (errors, logs); there are no messages without assignment
    let _ = client.poll(Duration::ZERO);
    Ok(ClusterView {
        brokers: metadata.brokers().iter().map(|b| b.id()).collect(),
        partitions: metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| {
                (
                    t.name().to_owned(),
                    i32::try_from(t.partitions().len()).unwrap_or(i32::MAX),
                )
            })
            .collect(),
    })
}

/// Reads high watermarks of every partition of `existing`, the first offsets at or after
/// `window_start_ms` of the publisher topics, and each group's committed offsets.
fn read_offsets(
    client: &BaseConsumer,
    existing: &[(String, i32)],
    publisher_topics: &[String],
    groups: Vec<(String, Result<Arc<BaseConsumer>, String>)>,
    window_start_ms: i64,
    timeout: Duration,
) -> Result<Offsets, String> {
    let mut out = Offsets::default();
    let mut high: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (topic, partitions) in existing {
        for partition in 0..*partitions {
            match client.fetch_watermarks(topic, partition, timeout) {
                Ok((_, hw)) => {
                    high.insert((topic.clone(), partition), hw);
                }
                Err(e) => out
                    .errors
                    .push(format!("watermarks of {topic}/{partition}: {e}")),
            }
        }
    }
    out.publishers = read_publishers(
        client,
        &high,
        publisher_topics,
        window_start_ms,
        timeout,
        &mut out.errors,
    );
    for (group, consumer) in groups {
        let result = consumer.and_then(|consumer| {
            let lag = read_committed(&consumer, &high, timeout);
            let _ = consumer.poll(Duration::ZERO);
            lag.map_err(|e| format!("committed offsets of group {group}: {e}"))
        });
        out.groups.push((group, result));
    }
    let _ = client.poll(Duration::ZERO);
    Ok(out)
}

fn read_publishers(
    client: &BaseConsumer,
    high: &BTreeMap<(String, i32), i64>,
    publisher_topics: &[String],
    window_start_ms: i64,
    timeout: Duration,
    errors: &mut Vec<String>,
) -> Vec<PublisherState> {
    let mut publishers: Vec<PublisherState> = publisher_topics
        .iter()
        .map(|topic| PublisherState {
            topic: topic.clone(),
            messages_in_window: 0,
            end_offset: high
                .iter()
                .filter(|((t, _), _)| t == topic)
                .map(|(_, hw)| *hw)
                .sum(),
        })
        .collect();
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in high.keys().filter(|(t, _)| publisher_topics.contains(t)) {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(window_start_ms))
        {
            errors.push(format!("offset request for {topic}/{partition}: {e}"));
        }
    }
    if tpl.count() == 0 {
        return publishers;
    }
    match client.offsets_for_times(tpl, timeout) {
        Ok(answer) => {
            for elem in answer.elements() {
                if let Err(e) = elem.error() {
                    errors.push(format!(
                        "offset for time of {}/{}: {e}",
                        elem.topic(),
                        elem.partition()
                    ));
                    continue;
                }
                let Some(hw) = high.get(&(elem.topic().to_owned(), elem.partition())) else {
                    continue;
                };
                // the first offset with a timestamp >= the window start; `End` when none is
                let recent = match elem.offset() {
                    Offset::Offset(first) if first < *hw => hw - first,
                    _ => 0,
                };
                if let Some(p) = publishers.iter_mut().find(|p| p.topic == elem.topic()) {
                    p.messages_in_window += recent;
                }
            }
        }
        Err(e) => errors.push(format!("offsets for the publisher window: {e}")),
    }
    publishers
}

fn read_committed(
    consumer: &BaseConsumer,
    high: &BTreeMap<(String, i32), i64>,
    timeout: Duration,
) -> Result<Vec<PartitionLag>, String> {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in high.keys() {
        tpl.add_partition(topic, *partition);
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    let answer = consumer
        .committed_offsets(tpl, timeout)
        .map_err(|e| e.to_string())?;
    let mut partitions = Vec::with_capacity(answer.count());
    for elem in answer.elements() {
        let Some(hw) = high.get(&(elem.topic().to_owned(), elem.partition())) else {
            continue;
        };
        let committed = match (elem.error(), elem.offset()) {
            (Ok(()), Offset::Offset(c)) => Some(c),
            _ => None,
        };
        partitions.push(PartitionLag::new(
            elem.topic(),
            elem.partition(),
            committed,
            *hw,
        ));
    }
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn not_configured_returns_without_touching_the_network() {
        let mut probe = KafkaProbe::new(&ReadinessSettings::default(), KafkaSettings::default());
        let state = probe.probe(Utc::now()).await;
        assert!(!state.connection.configured);
        assert_eq!(state.connection.description, "kafka not configured");
        assert!(state.topics.is_empty() && state.lag.is_empty() && state.publishers.is_empty());
    }

    #[test]
    fn topics_get_the_prefix_and_the_group_defaults_to_the_aggregator() {
        let kafka = KafkaSettings {
            topic_prefix: "t1.".into(),
            group_id: "agg".into(),
            ..KafkaSettings::default()
        };
        let probe = KafkaProbe::new(&ReadinessSettings::default(), kafka);
        assert!(probe
            .topics()
            .iter()
            .all(|t| t.starts_with("t1.telemetry.")));
        assert_eq!(probe.groups(), ["agg"]);
        // every catalogue kind is provisioned too, without becoming expected
        assert!(probe
            .provision_also()
            .contains(&"t1.telemetry.ci.history".to_owned()));
        assert!(probe
            .provision_also()
            .iter()
            .all(|t| t.starts_with("t1.telemetry.") && !probe.topics().contains(t)));
        let catalogue = telemesh_core::catalogue::entries().len();
        assert_eq!(
            probe.topics().len() + probe.provision_also().len(),
            catalogue + 1,
            "the expected topics are catalogue kinds and the dead-letter topic"
        );
        assert!(!probe.is_publisher_topic("t1.telemetry.dlq"));
        assert!(!probe.is_publisher_topic("t1.telemetry.kafka.readiness"));
        assert!(probe.is_publisher_topic("t1.telemetry.execution.fix_pilot"));
    }

    #[test]
    fn progress_moves_with_committed_offsets_or_when_caught_up() {
        let mut probe = KafkaProbe::new(&ReadinessSettings::default(), KafkaSettings::default());
        let t0 = Utc::now();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let lagging = |committed| Ok(vec![PartitionLag::new("a", 0, Some(committed), 100)]);
        // first sight counts as progress
        assert_eq!(
            probe
                .group_lag("g".into(), lagging(10), at(0))
                .last_progress_at,
            Some(at(0))
        );
        // unchanged offsets with lag: no progress
        assert_eq!(
            probe
                .group_lag("g".into(), lagging(10), at(60))
                .last_progress_at,
            Some(at(0))
        );
        // offsets moved
        assert_eq!(
            probe
                .group_lag("g".into(), lagging(20), at(120))
                .last_progress_at,
            Some(at(120))
        );
        // caught up counts as progress even without movement
        assert_eq!(
            probe
                .group_lag("g".into(), lagging(100), at(180))
                .last_progress_at,
            Some(at(180))
        );
        assert_eq!(
            probe
                .group_lag("g".into(), lagging(100), at(240))
                .last_progress_at,
            Some(at(240))
        );
        // a failed read keeps the previous measurement and says why
        let failed = probe.group_lag("g".into(), Err("timed out".into()), at(300));
        assert_eq!(failed.recorded_at, Some(at(240)));
        assert_eq!(failed.error.as_deref(), Some("timed out"));
        // a group never measured is unavailable
        let never = probe.group_lag("h".into(), Err("timed out".into()), at(300));
        assert_eq!(never.recorded_at, None);
    }
}
