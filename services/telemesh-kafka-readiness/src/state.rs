//! Owns [`ReadinessState`]: the plain data the probe gathers from the cluster and the
//! evaluator grades. No I/O and no grading here.

use chrono::{DateTime, Utc};
use telemesh_core::transport::kafka::EnsureTopicsReport;

/// Everything one probe run learned about the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadinessState {
    pub connection: ConnectionState,
    /// One entry per expected topic (prefix applied), in configured order. Empty when the
    /// topics were not checked (not configured, unreachable) or none are configured.
    pub topics: Vec<TopicState>,
    /// What provisioning did, when `provision_topics` is on and topics were missing.
    pub provisioning: Option<ProvisioningState>,
    /// One entry per telemetry topic that counts as a publisher (existing expected topics
    /// except the dead-letter topic and this service's own topic).
    pub publishers: Vec<PublisherState>,
    /// One entry per consumer group measured.
    pub lag: Vec<GroupLag>,
    /// Calls that failed without making the whole probe fail (e.g. one watermark fetch).
    pub probe_errors: Vec<String>,
}

/// Whether and how the cluster answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionState {
    /// True when `[kafka] brokers` is set.
    pub configured: bool,
    /// `KafkaSettings::describe()`: safe to show anywhere.
    pub description: String,
    /// Ids of the brokers listed in the metadata answer.
    pub brokers_answered: Vec<i32>,
    /// Why the metadata request failed, if it did.
    pub error: Option<String>,
}

/// One expected topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    /// The full topic name (prefix applied).
    pub name: String,
    pub exists: bool,
    /// Partition count; 0 when the topic does not exist.
    pub partitions: i32,
}

/// The outcome of provisioning the missing topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisioningState {
    pub created: Vec<String>,
    pub existing: Vec<String>,
    /// (topic, error) per topic that could not be created.
    pub failed: Vec<(String, String)>,
}

impl From<EnsureTopicsReport> for ProvisioningState {
    fn from(r: EnsureTopicsReport) -> Self {
        Self {
            created: r.created,
            existing: r.existing,
            failed: r.failed,
        }
    }
}

/// Whether a telemetry topic received messages within the publisher window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherState {
    pub topic: String,
    /// Messages appended within the window (sum over partitions of high watermark minus the
    /// first offset at or after the window start).
    pub messages_in_window: i64,
    /// Sum of the partitions' high watermarks (end offsets).
    pub end_offset: i64,
}

impl PublisherState {
    /// True when the topic received at least one message within the window.
    pub fn active(&self) -> bool {
        self.messages_in_window > 0
    }
}

/// The lag of one consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLag {
    pub group: String,
    /// When `partitions` was read; `None` when the group was never measured. When the latest
    /// read failed, the previous measurement is kept with its original time, so its age shows
    /// as staleness.
    pub recorded_at: Option<DateTime<Utc>>,
    pub partitions: Vec<PartitionLag>,
    /// The last time the group's committed offsets were seen to move, or the group was seen
    /// caught up (lag 0), or (first observation) when it was first measured.
    pub last_progress_at: Option<DateTime<Utc>>,
    /// Why the latest read failed, if it did.
    pub error: Option<String>,
}

impl GroupLag {
    /// A group that could not be measured at all.
    pub fn unavailable(group: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            recorded_at: None,
            partitions: Vec::new(),
            last_progress_at: None,
            error: Some(error.into()),
        }
    }

    /// Sum of the known partition lags; `None` when no partition has a committed offset.
    pub fn total_lag(&self) -> Option<i64> {
        let known: Vec<i64> = self.partitions.iter().filter_map(|p| p.lag).collect();
        (!known.is_empty()).then(|| known.iter().fold(0i64, |a, b| a.saturating_add(*b)))
    }

    /// The largest known partition lag.
    pub fn max_lag(&self) -> Option<i64> {
        self.partitions.iter().filter_map(|p| p.lag).max()
    }

    /// Partitions without a committed offset.
    pub fn uncommitted(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.committed.is_none())
            .count()
    }
}

/// The lag of one partition for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset (the next offset it will read), if it committed one.
    pub committed: Option<i64>,
    pub high_watermark: i64,
    /// `max(high_watermark - committed, 0)`; `None` without a committed offset.
    pub lag: Option<i64>,
}

impl PartitionLag {
    pub fn new(
        topic: impl Into<String>,
        partition: i32,
        committed: Option<i64>,
        high_watermark: i64,
    ) -> Self {
        Self {
            topic: topic.into(),
            partition,
            committed,
            high_watermark,
            lag: committed.map(|c| high_watermark.saturating_sub(c).max(0)),
        }
    }
}
