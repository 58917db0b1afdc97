//! Owns the one configuration file of the `telemesh` binary: every section of every service,
//! loaded by `telemesh_core::config::load` and validated as a whole.

use std::path::Path;

use serde::{Deserialize, Serialize};
use telemesh_aggregator::{AggregatorSettings, JournalSettings};
use telemesh_alerting::AlertingSettings;
use telemesh_cache_health::CacheHealthSettings;
use telemesh_ci::settings::CiSettings;
use telemesh_core::config::{
    self, ConfigError, HttpSettings, Invalid, KafkaSettings, LogSettings, Section, ServiceSettings,
    TracingSettings,
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

impl Section for StandaloneSettings {
    fn name(&self) -> &'static str {
        "standalone"
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.channel_capacity == 0 {
            return Err(Invalid::new(
                "standalone.channel_capacity",
                "must be at least 1: set how many snapshots may wait in the channel, e.g. 1024",
            ));
        }
        if self.data_dir.trim().is_empty() {
            return Err(Invalid::new(
                "standalone.data_dir",
                "is blank: set a directory for the SQLite journal, e.g. telemesh-data",
            ));
        }
        Ok(())
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
    pub ci: CiSettings,
}

impl TelemeshConfig {
    /// Loads defaults ← `file` ← `TELEMESH__…` variables of `env`, then validates.
    pub fn load(
        file: Option<&Path>,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let list_keys: Vec<&str> = [
            AggregatorSettings::list_keys(),
            ReadinessSettings::list_keys(),
            AlertingSettings::list_keys(),
            FixPilotSettings::list_keys(),
            IngestSettings::list_keys(),
            IncidentResponseSettings::list_keys(),
            CiSettings::list_keys(),
        ]
        .concat();
        let mut config: TelemeshConfig = config::load(file, env, &list_keys)?;
        config.tracing.apply_otel_env(env);
        config.validate()?;
        Ok(config)
    }

    /// Every section, in file order, for validation.
    pub fn sections(&self) -> [&dyn Section; 17] {
        [
            &self.service,
            &self.log,
            &self.tracing,
            &self.http,
            &self.kafka,
            &self.journal,
            &self.aggregator,
            &self.alerting,
            &self.kafka_readiness,
            &self.fix_pilot,
            &self.ingest,
            &self.incident_response,
            &self.standalone,
            &self.cache_health,
            &self.event_bus_health,
            &self.system_validation,
            &self.ci,
        ]
    }

    /// Checks values serde cannot: each section's [`Section::validate`], then the one check
    /// across sections (alerting's policy with the aggregator's staleness inputs).
    pub fn validate(&self) -> Result<(), Invalid> {
        for section in self.sections() {
            section.validate()?;
        }
        self.alerting
            .policy(
                self.aggregator.stale_factor,
                self.aggregator.default_interval_seconds,
            )
            .map(|_| ())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `[section]` of the file is validated by exactly one `Section` of that name.
    #[test]
    fn every_section_of_the_file_is_validated() {
        let config = TelemeshConfig::default();
        let rendered: toml::Table = toml::from_str(&config.to_redacted_toml()).expect("toml");
        let mut in_file: Vec<&str> = rendered.keys().map(String::as_str).collect();
        let mut validated: Vec<&str> = config.sections().iter().map(|s| s.name()).collect();
        in_file.sort_unstable();
        validated.sort_unstable();
        assert_eq!(in_file, validated);
        assert_eq!(config.validate(), Ok(()));
    }

    /// A value each section accepts alone but alerting's policy rejects across sections still
    /// names its key, and the loader turns it into `ConfigError::Key`.
    #[test]
    fn load_names_the_key_from_invalid() {
        let env = [(
            "TELEMESH__ALERTING__STALE_CHANNELS".to_owned(),
            "nobody".to_owned(),
        )]
        .into_iter()
        .collect();
        let err = TelemeshConfig::load(None, &env).expect_err("unknown channel");
        assert_eq!(err.key(), Some("alerting.stale_channels"), "{err}");
    }
}
