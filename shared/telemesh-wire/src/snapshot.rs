//! Owns the snapshot envelope v1: what every domain service publishes and the aggregator
//! journals. The field set is the external contract (see `docs/snapshot.md`); extend it only
//! with a new envelope version.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::grade::Grade;

/// Who produced a snapshot: the service name and the instance (pod, host) within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Source {
    pub service: String,
    pub instance: String,
}

impl Source {
    pub fn new(service: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            instance: instance.into(),
        }
    }

    /// The Kafka message key: `<service>/<instance>`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.service, self.instance)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.instance)
    }
}

/// A structured detail value of a component.
///
/// In human-readable encodings (JSON) it is a plain JSON value; in bincode, which cannot
/// decode self-describing data, it is a tagged enum. Floats must be finite.
#[derive(Debug, Clone, PartialEq)]
pub enum DetailValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<DetailValue>),
    Map(BTreeMap<String, DetailValue>),
}

/// The details map of a component.
pub type Details = BTreeMap<String, DetailValue>;

/// The tagged form of [`DetailValue`] used by non-human-readable encodings.
#[derive(Serialize, Deserialize)]
enum TaggedDetail {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<DetailValue>),
    Map(BTreeMap<String, DetailValue>),
}

impl Serialize for DetailValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            match self {
                DetailValue::Null => serializer.serialize_unit(),
                DetailValue::Bool(b) => serializer.serialize_bool(*b),
                DetailValue::Int(i) => serializer.serialize_i64(*i),
                DetailValue::Float(f) => serializer.serialize_f64(*f),
                DetailValue::Text(s) => serializer.serialize_str(s),
                DetailValue::List(items) => items.serialize(serializer),
                DetailValue::Map(map) => map.serialize(serializer),
            }
        } else {
            let tagged = match self.clone() {
                DetailValue::Null => TaggedDetail::Null,
                DetailValue::Bool(b) => TaggedDetail::Bool(b),
                DetailValue::Int(i) => TaggedDetail::Int(i),
                DetailValue::Float(f) => TaggedDetail::Float(f),
                DetailValue::Text(s) => TaggedDetail::Text(s),
                DetailValue::List(items) => TaggedDetail::List(items),
                DetailValue::Map(map) => TaggedDetail::Map(map),
            };
            tagged.serialize(serializer)
        }
    }
}

/// Builds a [`DetailValue`] from a self-describing format (JSON), one level at a time, so
/// the depth guard sees every level as it is read.
struct DetailVisitor;

impl<'de> de::Visitor<'de> for DetailVisitor {
    type Value = DetailValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<DetailValue, E> {
        Ok(DetailValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<DetailValue, E> {
        Ok(DetailValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<DetailValue, D::Error> {
        DetailValue::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<DetailValue, E> {
        Ok(DetailValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DetailValue, E> {
        Ok(DetailValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DetailValue, E> {
        Ok(DetailValue::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DetailValue, E> {
        Ok(DetailValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DetailValue, E> {
        Ok(DetailValue::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<DetailValue, E> {
        Ok(DetailValue::Text(v))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<DetailValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<DetailValue>()? {
            items.push(item);
        }
        Ok(DetailValue::List(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<DetailValue, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, DetailValue>()? {
            out.insert(k, v);
        }
        Ok(DetailValue::Map(out))
    }
}

impl<'de> Deserialize<'de> for DetailValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // counted while deserialising: a hostile nesting fails here, before the stack does
        let _level = crate::limits::DepthGuard::enter().map_err(de::Error::custom)?;
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(DetailVisitor)
        } else {
            Ok(match TaggedDetail::deserialize(deserializer)? {
                TaggedDetail::Null => DetailValue::Null,
                TaggedDetail::Bool(b) => DetailValue::Bool(b),
                TaggedDetail::Int(i) => DetailValue::Int(i),
                TaggedDetail::Float(f) => DetailValue::Float(f),
                TaggedDetail::Text(s) => DetailValue::Text(s),
                TaggedDetail::List(items) => DetailValue::List(items),
                TaggedDetail::Map(map) => DetailValue::Map(map),
            })
        }
    }
}

impl TryFrom<serde_json::Value> for DetailValue {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        use serde_json::Value;
        Ok(match value {
            Value::Null => DetailValue::Null,
            Value::Bool(b) => DetailValue::Bool(b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => DetailValue::Int(i),
                (None, Some(f)) => DetailValue::Float(f),
                (None, None) => return Err(format!("detail number {n} is out of range")),
            },
            Value::String(s) => DetailValue::Text(s),
            Value::Array(items) => DetailValue::List(
                items
                    .into_iter()
                    .map(DetailValue::try_from)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => DetailValue::Map(
                map.into_iter()
                    .map(|(k, v)| DetailValue::try_from(v).map(|v| (k, v)))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

impl From<&DetailValue> for serde_json::Value {
    fn from(value: &DetailValue) -> Self {
        use serde_json::Value;
        match value {
            DetailValue::Null => Value::Null,
            DetailValue::Bool(b) => Value::Bool(*b),
            DetailValue::Int(i) => Value::from(*i),
            DetailValue::Float(f) => Value::from(*f),
            DetailValue::Text(s) => Value::String(s.clone()),
            DetailValue::List(items) => Value::Array(items.iter().map(Value::from).collect()),
            DetailValue::Map(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

macro_rules! detail_from {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {
        $(impl From<$t> for DetailValue {
            fn from(v: $t) -> Self { DetailValue::$variant(<$conv>::from(v)) }
        })*
    };
}
detail_from!(bool => Bool as bool, i32 => Int as i64, i64 => Int as i64, u32 => Int as i64, f64 => Float as f64, String => Text as String, &str => Text as String);

impl From<u64> for DetailValue {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or(DetailValue::Float(v as f64), DetailValue::Int)
    }
}

impl From<usize> for DetailValue {
    fn from(v: usize) -> Self {
        DetailValue::from(v as u64)
    }
}

impl<T: Into<DetailValue>> From<Vec<T>> for DetailValue {
    fn from(items: Vec<T>) -> Self {
        DetailValue::List(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<DetailValue>> From<Option<T>> for DetailValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(DetailValue::Null, Into::into)
    }
}

impl From<Details> for DetailValue {
    fn from(map: Details) -> Self {
        DetailValue::Map(map)
    }
}

impl DetailValue {
    fn is_finite(&self) -> bool {
        match self {
            DetailValue::Float(f) => f.is_finite(),
            DetailValue::List(items) => items.iter().all(DetailValue::is_finite),
            DetailValue::Map(map) => map.values().all(DetailValue::is_finite),
            _ => true,
        }
    }
}

/// One graded part of a snapshot (e.g. `connection`, `topics`, `consumer_lag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub status: Grade,
    pub summary: String,
    pub details: Details,
}

impl Component {
    pub fn new(name: impl Into<String>, status: Grade, summary: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            summary: summary.into(),
            details: Details::new(),
        }
    }

    /// Adds one detail (builder style).
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<DetailValue>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

/// The snapshot envelope, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// UUID v7: unique, and sorts by creation time.
    pub id: Uuid,
    /// The snapshot kind, which is also its topic name (e.g. `telemetry.kafka.readiness`).
    pub kind: String,
    pub source: Source,
    /// When the evaluator graded the state (UTC, microsecond precision).
    pub generated_at: DateTime<Utc>,
    /// The overall grade: never better than the worst component.
    pub status: Grade,
    /// One line a person reads first.
    pub summary: String,
    pub components: Vec<Component>,
    /// Numeric observations; finite values only.
    pub metrics: BTreeMap<String, f64>,
    /// The snapshot rendered for people.
    pub markdown: String,
}

/// Why a snapshot cannot be published as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidSnapshot {
    #[error("snapshot kind is empty: set it to the topic name, e.g. telemetry.kafka.readiness")]
    EmptyKind,
    #[error("snapshot source service is empty")]
    EmptyService,
    #[error("metric {0:?} is not a finite number: drop it or report it as a detail")]
    NonFiniteMetric(String),
    #[error("a detail of component {0:?} holds a non-finite float")]
    NonFiniteDetail(String),
    #[error("snapshot status {status} is better than its worst component ({worst})")]
    StatusBelowComponents { status: Grade, worst: Grade },
}

impl Snapshot {
    /// Starts a snapshot of `kind` from `source` generated at `generated_at`, with a fresh
    /// UUID v7 id. Status starts at `ok` and escalates with each [`Snapshot::push`].
    pub fn new(kind: impl Into<String>, source: Source, generated_at: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: kind.into(),
            source,
            generated_at: generated_at.trunc_subsecs(6),
            status: Grade::Ok,
            summary: String::new(),
            components: Vec::new(),
            metrics: BTreeMap::new(),
            markdown: String::new(),
        }
    }

    /// Appends a component and escalates the overall status to at least its grade.
    pub fn push(&mut self, component: Component) {
        self.status.escalate(component.status);
        self.components.push(component);
    }

    /// Records a metric; non-finite values are rejected by [`Snapshot::validate`].
    pub fn metric(&mut self, name: impl Into<String>, value: f64) {
        self.metrics.insert(name.into(), value);
    }

    /// The component with that name, if any.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// Checks the invariants every encoder relies on.
    pub fn validate(&self) -> Result<(), InvalidSnapshot> {
        if self.kind.trim().is_empty() {
            return Err(InvalidSnapshot::EmptyKind);
        }
        if self.source.service.trim().is_empty() {
            return Err(InvalidSnapshot::EmptyService);
        }
        if let Some((name, _)) = self.metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(InvalidSnapshot::NonFiniteMetric(name.clone()));
        }
        for c in &self.components {
            if !c.details.values().all(DetailValue::is_finite) {
                return Err(InvalidSnapshot::NonFiniteDetail(c.name.clone()));
            }
        }
        let worst = Grade::worst(self.components.iter().map(|c| c.status));
        if self.status < worst {
            return Err(InvalidSnapshot::StatusBelowComponents {
                status: self.status,
                worst,
            });
        }
        Ok(())
    }

    /// The standard Markdown of a snapshot: a heading, the summary and a
    /// Component | Status | Summary table (header and divider only when there are none).
    pub fn render_markdown(&self, title: &str) -> String {
        let mut out = format!(
            "### {title}: {}\n\n{}\n\n| Component | Status | Summary |\n| --- | --- | --- |\n",
            self.status.as_upper(),
            self.summary
        );
        for c in &self.components {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                escape_cell(&c.name),
                c.status.as_upper(),
                escape_cell(&c.summary)
            ));
        }
        out
    }
}

/// Makes a string safe inside one Markdown table cell.
pub fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        let mut s = Snapshot::new(
            "telemetry.kafka.readiness",
            Source::new("kafka-readiness", "pod-1"),
            Utc::now(),
        );
        s.push(Component::new("connection", Grade::Ok, "brokers answer"));
        s.push(Component::new("topics", Grade::Warn, "one | missing"));
        s
    }

    #[test]
    fn push_escalates_and_validate_accepts() {
        let s = sample();
        assert_eq!(s.status, Grade::Warn);
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_what_encoders_cannot_carry() {
        let mut s = sample();
        s.metric("lag", f64::NAN);
        assert_eq!(
            s.validate(),
            Err(InvalidSnapshot::NonFiniteMetric("lag".into()))
        );
        let mut s = sample();
        s.status = Grade::Ok;
        assert!(matches!(
            s.validate(),
            Err(InvalidSnapshot::StatusBelowComponents { .. })
        ));
        let mut s = sample();
        s.kind = " ".into();
        assert_eq!(s.validate(), Err(InvalidSnapshot::EmptyKind));
    }

    #[test]
    fn markdown_is_a_table_with_escaped_cells() {
        let md = sample().render_markdown("Kafka readiness");
        assert!(md.starts_with("### Kafka readiness: WARN"));
        assert!(md.contains("| topics | WARN | one \\| missing |"));
    }
}
