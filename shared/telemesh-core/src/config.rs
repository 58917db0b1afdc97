//! Owns configuration loading and the settings sections every service shares.
//!
//! Layering (later wins): each type's documented defaults → the TOML file → environment
//! variables `TELEMESH__<SECTION>__<KEY>` (`__` separates levels). The environment is passed
//! in as a map so tests never touch process variables. Errors name the offending key.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use crate::codec::Encoding;

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "TELEMESH";
/// Separator between the prefix, sections and keys of an environment override.
pub const ENV_SEPARATOR: &str = "__";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("invalid config key `{key}`: {detail}")]
    Key { key: String, detail: String },
    #[error("invalid config: {0}")]
    Other(String),
}

impl ConfigError {
    /// The dotted key at fault, when there is one (e.g. `http.addr`).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Key { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// A setting that fails validation: the dotted key at fault (e.g. `kafka_readiness.interval_seconds`)
/// and what is wrong with it, saying what to set instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config key `{key}`: {detail}")]
pub struct Invalid {
    pub key: String,
    pub detail: String,
}

impl Invalid {
    /// `key` is dotted from the top of the configuration (`section.key`).
    pub fn new(key: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            detail: detail.into(),
        }
    }
}

impl From<Invalid> for ConfigError {
    fn from(e: Invalid) -> Self {
        ConfigError::Key {
            key: e.key,
            detail: e.detail,
        }
    }
}

/// One section of the configuration file (`[kafka_readiness]`, `[fix_pilot]`, …): its name, the
/// keys whose environment values are comma-separated lists, and its validation.
pub trait Section {
    /// The section's name in the TOML file and in `TELEMESH__<SECTION>__…`.
    fn name(&self) -> &'static str;
    /// Dotted keys (from the top of the file) whose environment values are comma-separated lists.
    fn list_keys() -> &'static [&'static str]
    where
        Self: Sized,
    {
        &[]
    }
    /// Checks the values; the error names the dotted key at fault.
    fn validate(&self) -> Result<(), Invalid>;
}

/// Loads `T` from its defaults, an optional TOML file and the `TELEMESH__…` entries of `env`.
///
/// `list_keys` names the dotted keys whose environment values are comma-separated lists.
pub fn load<T: DeserializeOwned>(
    file: Option<&Path>,
    env: &HashMap<String, String>,
    list_keys: &[&str],
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                detail: "no such file; pass an existing TOML file or leave --config out".into(),
            });
        }
        builder = builder.add_source(
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    let list_vars: Vec<String> = list_keys.iter().map(|k| env_var_name(k)).collect();
    let ours: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
        .map(|(k, v)| {
            let value = if list_vars.contains(k) {
                // `a, b,,c` means [a, b, c]
                v.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                v.clone()
            };
            (k.clone(), value)
        })
        .collect();
    let mut environment = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .try_parsing(true)
        .source(Some(ours));
    if !list_keys.is_empty() {
        environment = environment.list_separator(",");
        for key in list_keys {
            environment = environment.with_list_parse_key(key);
        }
    }
    let built = builder
        .add_source(environment)
        .build()
        .map_err(|e| match file {
            Some(path) => ConfigError::File {
                path: path.display().to_string(),
                detail: e.to_string(),
            },
            None => ConfigError::Other(e.to_string()),
        })?;
    serde_path_to_error::deserialize(built).map_err(|e| {
        let key = e.path().to_string();
        let detail = e.inner().to_string();
        if key.is_empty() || key == "." {
            ConfigError::Other(detail)
        } else {
            ConfigError::Key { key, detail }
        }
    })
}

/// The environment variable that overrides a dotted key: `http.addr` → `TELEMESH__HTTP__ADDR`.
pub fn env_var_name(key: &str) -> String {
    let path: Vec<String> = key.split('.').map(str::to_ascii_uppercase).collect();
    format!("{ENV_PREFIX}{ENV_SEPARATOR}{}", path.join(ENV_SEPARATOR))
}

/// The process environment as a map, for [`load`] at the edges of the program.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars().collect()
}

/// A secret string: never printed by `Debug`/`Display`, serialized as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must hand it to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

/// A connection URL whose password is redacted whenever it is shown.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The URL with any `user:password@` password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// Replaces the password of `scheme://user:password@host…` with `***`; other text is kept.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// `[service]`: who this process is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSettings {
    /// Instance name in snapshot sources and message keys. Default: the host name.
    pub instance: String,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        let instance = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "local".to_owned());
        Self { instance }
    }
}

impl Section for ServiceSettings {
    fn name(&self) -> &'static str {
        "service"
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.instance.trim().is_empty() || self.instance.chars().any(char::is_control) {
            return Err(Invalid::new(
                "service.instance",
                format!(
                    "{:?} is blank or holds control characters: set a name such as the host name, or leave it out",
                    self.instance
                ),
            ));
        }
        Ok(())
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`: what is logged and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `RUST_LOG`-style filter, e.g. `info` or `info,telemesh_aggregator=debug`.
    pub level: String,
    pub format: LogFormat,
    /// Operator-supplied fields added to every JSON line: comma-separated `key=value` pairs,
    /// e.g. `region=eu,tier=prod`.
    pub context: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Human,
            context: String::new(),
        }
    }
}

impl LogSettings {
    /// The `context` pairs in order; an entry without `=` or with an empty key is an error
    /// naming it.
    pub fn context_fields(&self) -> Result<Vec<(String, String)>, Invalid> {
        let mut out = Vec::new();
        for entry in self.context.split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            match entry.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => {
                    out.push((key.trim().to_owned(), value.trim().to_owned()))
                }
                _ => {
                    return Err(Invalid::new(
                        "log.context",
                        format!("{entry:?} is not `key=value`; write e.g. `region=eu,tier=prod`"),
                    ))
                }
            }
        }
        Ok(out)
    }
}

impl Section for LogSettings {
    fn name(&self) -> &'static str {
        "log"
    }

    fn validate(&self) -> Result<(), Invalid> {
        log_filter_is_valid(&self.level)?;
        self.context_fields().map(|_| ())
    }
}

fn log_filter_is_valid(level: &str) -> Result<(), Invalid> {
    tracing_subscriber::EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| {
            Invalid::new(
                "log.level",
                format!("{level:?} is not a RUST_LOG-style filter ({e}): set e.g. info"),
            )
        })
}

/// Wire protocol of the OTLP exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/gRPC (default port 4317).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318, path `/v1/traces`).
    Http,
}

/// `[tracing]`: OpenTelemetry traces exported over OTLP. Off unless enabled here or by the
/// standard `OTEL_EXPORTER_OTLP_*` variables (see [`TracingSettings::apply_otel_env`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingSettings {
    pub enabled: bool,
    /// Collector endpoint; empty means the protocol's default on localhost. For `http`, a base
    /// URL gets `/v1/traces` appended.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// Spans waiting for export; when full, new spans are dropped and counted
    /// (`telemesh_tracing_spans_dropped_total`), never waited for.
    pub max_queue_size: usize,
    /// Longest one export request may take before it is abandoned (its spans count as dropped).
    pub export_timeout_ms: u64,
    /// Fraction of new traces recorded (parent-based: a sampled parent is always followed).
    pub sample_ratio: f64,
}

impl Default for TracingSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: String::new(),
            protocol: OtlpProtocol::Grpc,
            max_queue_size: 2048,
            export_timeout_ms: 5000,
            sample_ratio: 1.0,
        }
    }
}

impl TracingSettings {
    /// Applies the standard OpenTelemetry variables of `env`: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// or `OTEL_EXPORTER_OTLP_ENDPOINT` set the endpoint and enable tracing;
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`,
    /// `http/protobuf`, `http/json`) set the protocol; `OTEL_SDK_DISABLED=true` turns it off.
    pub fn apply_otel_env(&mut self, env: &HashMap<String, String>) {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(endpoint) =
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        {
            self.endpoint = endpoint.to_owned();
            self.enabled = true;
        }
        if let Some(protocol) =
            get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
        {
            self.protocol = if protocol.starts_with("http") {
                OtlpProtocol::Http
            } else {
                OtlpProtocol::Grpc
            };
        }
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            self.enabled = false;
        }
    }

    /// The URL the exporter sends to.
    pub fn resolved_endpoint(&self) -> String {
        let base = if self.endpoint.trim().is_empty() {
            match self.protocol {
                OtlpProtocol::Grpc => "http://localhost:4317",
                OtlpProtocol::Http => "http://localhost:4318",
            }
        } else {
            self.endpoint.trim()
        };
        match self.protocol {
            OtlpProtocol::Grpc => base.to_owned(),
            OtlpProtocol::Http if base.ends_with("/v1/traces") => base.to_owned(),
            OtlpProtocol::Http => format!("{}/v1/traces", base.trim_end_matches('/')),
        }
    }
}

impl Section for TracingSettings {
    fn name(&self) -> &'static str {
        "tracing"
    }

    /// Checks ranges; the error names the key.
    fn validate(&self) -> Result<(), Invalid> {
        let bad = |key: &str, detail: &str| Invalid::new(key, detail);
        if self.max_queue_size == 0 {
            return Err(bad("tracing.max_queue_size", "must be at least 1"));
        }
        if self.export_timeout_ms == 0 {
            return Err(bad("tracing.export_timeout_ms", "must be > 0"));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(bad(
                "tracing.sample_ratio",
                "must be between 0.0 and 1.0 (1.0 records every trace)",
            ));
        }
        Ok(())
    }
}

/// `[http]`: where the HTTP API listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Listen address; port 0 picks a free port.
    pub addr: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
        }
    }
}

/// `[kafka]`: how to reach the Kafka cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list; empty means Kafka is not configured.
    pub brokers: String,
    pub client_id: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// SASL mechanism (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`) when SASL is used.
    pub sasl_mechanism: String,
    pub username: String,
    pub password: Secret,
    /// CA bundle for TLS, empty for the system store.
    pub ssl_ca_location: String,
    /// Namespace prepended to every topic name (empty in production).
    pub topic_prefix: String,
    /// Encoding of produced snapshots.
    pub encoding: Encoding,
    /// Consumer group of the aggregator.
    pub group_id: String,
    /// How long a produce may wait for `acks=all` before it counts as failed and is retried.
    pub message_timeout_ms: u64,
    /// Timeout of metadata and admin requests.
    pub request_timeout_ms: u64,
    /// How often a consumer refreshes topic metadata (librdkafka
    /// `topic.metadata.refresh.interval.ms`): the aggregator's pattern subscription picks up a
    /// new kind's topic within this time (its messages wait in Kafka meanwhile, nothing is
    /// lost). Default 60 000 (librdkafka's own default is 300 000); the tests use 10 000.
    /// Each refresh fetches the metadata of every topic of the cluster (to match the pattern):
    /// keep it in seconds, not milliseconds.
    pub metadata_refresh_ms: u64,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            client_id: "telemesh".into(),
            security_protocol: "plaintext".into(),
            sasl_mechanism: String::new(),
            username: String::new(),
            password: Secret::default(),
            ssl_ca_location: String::new(),
            topic_prefix: String::new(),
            encoding: Encoding::Bincode,
            group_id: "telemesh-aggregator".into(),
            message_timeout_ms: 30_000,
            request_timeout_ms: 5_000,
            metadata_refresh_ms: 60_000,
        }
    }
}

impl KafkaSettings {
    /// True when at least one broker is configured.
    pub fn is_configured(&self) -> bool {
        !self.broker_list().is_empty()
    }

    /// The configured brokers, trimmed, blanks dropped.
    pub fn broker_list(&self) -> Vec<String> {
        self.brokers
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A description safe to show anywhere: brokers, protocol and whether credentials are set.
    pub fn describe(&self) -> String {
        if !self.is_configured() {
            return "kafka not configured".into();
        }
        let mut parts = vec![
            format!("bootstrap={}", self.broker_list().join(",")),
            format!("security={}", self.security_protocol),
            "acks=all".to_owned(),
            format!("client_id={}", self.client_id),
        ];
        if !self.sasl_mechanism.is_empty() {
            parts.push(format!("sasl={}", self.sasl_mechanism));
        }
        if !self.username.is_empty() {
            parts.push("username=***".into());
        }
        if !self.password.is_empty() {
            parts.push("password=***".into());
        }
        format!("Kafka({})", parts.join(", "))
    }
}

impl Section for HttpSettings {
    fn name(&self) -> &'static str {
        "http"
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.addr.trim().parse::<std::net::SocketAddr>().is_err()
            && !self
                .addr
                .trim()
                .rsplit_once(':')
                .is_some_and(|(host, port)| {
                    !host.is_empty()
                        && !host.contains(char::is_whitespace)
                        && port.parse::<u16>().is_ok()
                })
        {
            return Err(Invalid::new(
                "http.addr",
                format!(
                    "{:?} is not host:port: set e.g. 127.0.0.1:8080 (port 0 picks a free port)",
                    self.addr
                ),
            ));
        }
        Ok(())
    }
}

impl Section for KafkaSettings {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn validate(&self) -> Result<(), Invalid> {
        let protocols = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
        if !protocols.contains(&self.security_protocol.to_ascii_lowercase().as_str()) {
            return Err(Invalid::new(
                "kafka.security_protocol",
                format!(
                    "{:?} is not one of {}",
                    self.security_protocol,
                    protocols.join(", ")
                ),
            ));
        }
        if self.message_timeout_ms == 0 {
            return Err(Invalid::new(
                "kafka.message_timeout_ms",
                "must be > 0: set how long a produce may wait for acks, e.g. 30000",
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(Invalid::new(
                "kafka.request_timeout_ms",
                "must be > 0: set the metadata/admin request timeout, e.g. 5000",
            ));
        }
        if let Some(broker) = self
            .broker_list()
            .into_iter()
            .find(|b| b.contains(char::is_whitespace))
        {
            return Err(Invalid::new(
                "kafka.brokers",
                format!("{broker:?} holds whitespace: list brokers as a:9092,b:9092"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        http: HttpSettings,
        kafka: KafkaSettings,
        log: LogSettings,
        list: ListSection,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct ListSection {
        items: Vec<String>,
        count: u32,
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let s: Sample = load(None, &HashMap::new(), &[]).unwrap();
        assert_eq!(s.http.addr, "127.0.0.1:8080");
        assert!(!s.kafka.is_configured());
        assert_eq!(s.kafka.describe(), "kafka not configured");
    }

    #[test]
    fn env_overrides_file_and_lists_split_on_commas() {
        let dir = std::env::temp_dir().join(format!("telemesh-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            "[http]\naddr = \"0.0.0.0:1\"\n[kafka]\nbrokers = \"a:1\"\n",
        )
        .unwrap();
        let s: Sample = load(
            Some(&path),
            &env(&[
                ("TELEMESH__HTTP__ADDR", "127.0.0.1:9"),
                ("TELEMESH__KAFKA__PASSWORD", "12345"),
                ("TELEMESH__LIST__ITEMS", "x, y"),
                ("TELEMESH__LIST__COUNT", "7"),
                ("OTHER__HTTP__ADDR", "ignored"),
            ]),
            &["list.items"],
        )
        .unwrap();
        assert_eq!(s.http.addr, "127.0.0.1:9");
        assert_eq!(s.kafka.broker_list(), vec!["a:1"]);
        assert_eq!(s.kafka.password.expose(), "12345");
        assert_eq!(s.list.items, vec!["x", "y"]);
        assert_eq!(s.list.count, 7);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn errors_name_the_bad_key() {
        let err =
            load::<Sample>(None, &env(&[("TELEMESH__LIST__COUNT", "many")]), &[]).unwrap_err();
        assert_eq!(err.key(), Some("list.count"), "{err}");
        let err = load::<Sample>(None, &env(&[("TELEMESH__HTTP__PORTT", "1")]), &[]).unwrap_err();
        assert!(err.to_string().contains("portt"), "{err}");
    }

    #[test]
    fn log_context_and_otel_env() {
        let log = LogSettings {
            context: "region=eu, tier=prod,".into(),
            ..LogSettings::default()
        };
        assert_eq!(
            log.context_fields().unwrap(),
            vec![
                ("region".into(), "eu".into()),
                ("tier".into(), "prod".into())
            ]
        );
        let bad = LogSettings {
            context: "region".into(),
            ..LogSettings::default()
        };
        assert_eq!(bad.context_fields().unwrap_err().key, "log.context");

        let mut t = TracingSettings::default();
        t.apply_otel_env(&HashMap::new());
        assert!(!t.enabled);
        t.apply_otel_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]));
        assert!(t.enabled);
        assert_eq!(t.protocol, OtlpProtocol::Http);
        assert_eq!(t.resolved_endpoint(), "http://collector:4318/v1/traces");
        t.apply_otel_env(&env(&[("OTEL_SDK_DISABLED", "true")]));
        assert!(!t.enabled);
        assert_eq!(
            TracingSettings::default().resolved_endpoint(),
            "http://localhost:4317"
        );
    }

    /// Hostile values of the shared sections, one at a time: each names exactly its key;
    /// values at the boundary pass.
    #[test]
    fn shared_sections_reject_hostile_values_naming_the_key() {
        assert_eq!(ServiceSettings::default().validate(), Ok(()));
        assert_eq!(LogSettings::default().validate(), Ok(()));
        assert_eq!(TracingSettings::default().validate(), Ok(()));
        assert_eq!(HttpSettings::default().validate(), Ok(()));
        assert_eq!(KafkaSettings::default().validate(), Ok(()));
        let cases: Vec<(Box<dyn Section>, &str)> = vec![
            (
                Box::new(ServiceSettings {
                    instance: " ".into(),
                }),
                "service.instance",
            ),
            (
                Box::new(ServiceSettings {
                    instance: "a\u{0}b".into(),
                }),
                "service.instance",
            ),
            (
                Box::new(LogSettings {
                    level: "telemesh=loud".into(),
                    ..LogSettings::default()
                }),
                "log.level",
            ),
            (
                Box::new(LogSettings {
                    context: "=eu".into(),
                    ..LogSettings::default()
                }),
                "log.context",
            ),
            (
                Box::new(TracingSettings {
                    max_queue_size: 0,
                    ..TracingSettings::default()
                }),
                "tracing.max_queue_size",
            ),
            (
                Box::new(TracingSettings {
                    export_timeout_ms: 0,
                    ..TracingSettings::default()
                }),
                "tracing.export_timeout_ms",
            ),
            (
                Box::new(TracingSettings {
                    sample_ratio: f64::NAN,
                    ..TracingSettings::default()
                }),
                "tracing.sample_ratio",
            ),
            (
                Box::new(TracingSettings {
                    sample_ratio: 1.000_001,
                    ..TracingSettings::default()
                }),
                "tracing.sample_ratio",
            ),
            (
                Box::new(HttpSettings {
                    addr: "127.0.0.1:99999".into(),
                }),
                "http.addr",
            ),
            (
                Box::new(HttpSettings {
                    addr: "no port".into(),
                }),
                "http.addr",
            ),
            (
                Box::new(KafkaSettings {
                    security_protocol: "ssl; rm -rf /".into(),
                    ..KafkaSettings::default()
                }),
                "kafka.security_protocol",
            ),
            (
                Box::new(KafkaSettings {
                    message_timeout_ms: 0,
                    ..KafkaSettings::default()
                }),
                "kafka.message_timeout_ms",
            ),
            (
                Box::new(KafkaSettings {
                    request_timeout_ms: 0,
                    ..KafkaSettings::default()
                }),
                "kafka.request_timeout_ms",
            ),
            (
                Box::new(KafkaSettings {
                    brokers: "a:9092, b c:9092".into(),
                    ..KafkaSettings::default()
                }),
                "kafka.brokers",
            ),
        ];
        for (section, key) in cases {
            let err = section.validate().expect_err(key);
            assert_eq!(err.key, key, "{err}");
            assert!(key.starts_with(section.name()), "{key}");
            assert_eq!(ConfigError::from(err).key(), Some(key));
        }
        for ok in [0.0, 1.0] {
            let t = TracingSettings {
                sample_ratio: ok,
                ..TracingSettings::default()
            };
            assert_eq!(t.validate(), Ok(()));
        }
        for addr in ["0.0.0.0:0", "[::1]:8080", "aggregator:8080"] {
            let h = HttpSettings { addr: addr.into() };
            assert_eq!(h.validate(), Ok(()), "{addr}");
        }
        let k = KafkaSettings {
            brokers: "a:9092,b".into(),
            security_protocol: "SASL_SSL".into(),
            ..KafkaSettings::default()
        };
        assert_eq!(k.validate(), Ok(()));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let url = SecretUrl::new("postgres://u:hunter2@db:5432/t?sslmode=require");
        assert_eq!(url.redacted(), "postgres://u:***@db:5432/t?sslmode=require");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
