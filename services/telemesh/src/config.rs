//! Owns the one configuration file of the `telemesh` binary: every section of every service,
//! loaded by `telemesh_core::config::load` and validated as a whole.

use std::path::Path;

use serde::{Deserialize, Serialize};
use telemesh_aggregator::{AggregatorSettings, JournalSettings};
use telemesh_alerting::AlertingSettings;
use telemesh_cache_health::CacheHealthSettings;
use telemesh_core::config::{
    self, ConfigError, HttpSettings, KafkaSettings, LogSettings, ServiceSettings, TracingSettings,
};
use telemesh_event_bus::EventBusSettings;
use telemesh_fix_pilot::FixPilotSettings;
use telemesh_incident_response::IncidentResponseSettings;
use telemesh_ingest::IngestSettings;
use telemesh_kafka_readiness::ReadinessSettings;
use telemesh_system_validation::SystemValidationSettings;

/// `[standalone]`: the laptop mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StandaloneSettings {
    /// Where the SQLite journal lives (overridden by `--data-dir`).
    pub data_dir: String,
    /// Capacity of the in-process channel; publishers wait when it is full.
    pub channel_capacity: usize,
}

impl Default for StandaloneSettings {
    fn default() -> Self {
        Self {
            data_dir: "telemesh-data".into(),
            channel_capacity: 1024,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemeshConfig {
    pub service: ServiceSettings,
    pub log: LogSettings,
    pub tracing: TracingSettings,
    pub http: HttpSettings,
    pub kafka: KafkaSettings,
    pub journal: JournalSettings,
    pub aggregator: AggregatorSettings,
    pub alerting: AlertingSettings,
    pub kafka_readiness: ReadinessSettings,
    pub fix_pilot: FixPilotSettings,
    pub ingest: IngestSettings,
    pub incident_response: IncidentResponseSettings,
    pub standalone: StandaloneSettings,
    pub cache_health: CacheHealthSettings,
    pub event_bus_health: EventBusSettings,
    pub system_validation: SystemValidationSettings,
}

impl TelemeshConfig {
    /// Loads defaults ← `file` ← `TELEMESH__…` variables of `env`, then validates.
    pub fn load(
        file: Option<&Path>,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let list_keys: Vec<&str> = telemesh_aggregator::settings::LIST_KEYS
            .iter()
            .chain(telemesh_kafka_readiness::settings::LIST_KEYS)
            .chain(telemesh_alerting::LIST_KEYS)
            .chain(telemesh_fix_pilot::LIST_KEYS)
            .chain(telemesh_ingest::LIST_KEYS)
            .chain(telemesh_incident_response::LIST_KEYS)
            .copied()
            .collect();
        let mut config: TelemeshConfig = config::load(file, env, &list_keys)?;
        config.tracing.apply_otel_env(env);
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: ranges, known kinds, consistent thresholds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key_error = |detail: String| {
            let key = detail
                .split([' ', ':'])
                .next()
                .unwrap_or_default()
                .to_owned();
            ConfigError::Key { key, detail }
        };
        self.aggregator.validate().map_err(key_error)?;
        self.alerting
            .policy(
                self.aggregator.stale_factor,
                self.aggregator.default_interval_seconds,
            )
            .map_err(key_error)?;
        self.tracing.validate()?;
        self.log.context_fields()?;
        self.ingest
            .validate()
            .map_err(|e| key_error(e.to_string()))?;
        self.incident_response
            .validate()
            .map_err(|e| key_error(e.to_string()))?;
        self.fix_pilot
            .validate()
            .map_err(|e| key_error(e.to_string()))?;
        self.kafka_readiness
            .validate()
            .map_err(|e| key_error(e.to_string()))?;
        self.cache_health
            .validate()
            .map_err(|e| key_error(e.to_string()))?;
        self.event_bus_health
            .validate()
            .map_err(|e| key_error(e.to_string()))?;
        self.system_validation
            .validate()
            .map_err(|e| key_error(e.to_string()))?;
        if self.standalone.channel_capacity == 0 {
            return Err(key_error(
                "standalone.channel_capacity must be at least 1".into(),
            ));
        }
        let protocols = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
        if !protocols.contains(&self.kafka.security_protocol.to_ascii_lowercase().as_str()) {
            return Err(key_error(format!(
                "kafka.security_protocol: {:?} is not one of {}",
                self.kafka.security_protocol,
                protocols.join(", ")
            )));
        }
        if self.kafka.message_timeout_ms == 0 || self.kafka.request_timeout_ms == 0 {
            return Err(key_error(
                "kafka.message_timeout_ms and kafka.request_timeout_ms must be > 0".into(),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}
