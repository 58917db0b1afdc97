//! Owns [`CacheHealthDomain`], cache health as a [`Domain`] of the framework: the Redis probe
//! is its gather, [`evaluate`](crate::evaluate()) its grading. Not configured (no URL) is the
//! framework's graded block naming `cache_health.url`: `fail` when a cache is expected.

use std::time::Duration;

use telemesh_core::config::{Invalid, Section};
use telemesh_core::{Grade, Snapshot};
use telemesh_service::{Domain, Evaluation, NotConfigured};

use crate::evaluate::{evaluate, KIND, RUNBOOK};
use crate::probe::RedisProbe;
use crate::settings::CacheHealthSettings;
use crate::state::CacheState;

/// The service name (`serve cache-health`, `Source.service`).
pub const SERVICE: &str = "cache-health";

/// Cache health on the domain framework.
#[derive(Debug)]
pub struct CacheHealthDomain {
    settings: CacheHealthSettings,
    probe: RedisProbe,
}

impl CacheHealthDomain {
    pub fn new(settings: CacheHealthSettings) -> Self {
        let probe = RedisProbe::new(&settings);
        Self { settings, probe }
    }
}

impl Domain for CacheHealthDomain {
    type State = CacheState;

    fn name(&self) -> &'static str {
        SERVICE
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec![KIND]
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.interval_seconds)
    }

    fn gather_timeout(&self) -> Duration {
        // connect, PING and INFO are each bounded by timeout_ms
        (Duration::from_millis(self.settings.timeout_ms) * 3 + Duration::from_secs(1))
            .min(self.interval())
    }

    fn not_configured(&self) -> Option<NotConfigured> {
        if self.settings.is_configured() {
            return None;
        }
        let detail = format!(
            "the Redis the platform caches in, e.g. redis://cache:6379/0; without it the platform runs on its in-memory fallback (runbook {RUNBOOK})"
        );
        let grade = if self.settings.expected {
            Grade::Fail
        } else {
            Grade::Warn
        };
        Some(NotConfigured::new("cache_health.url", detail).graded(grade))
    }

    fn gather(&mut self) -> impl std::future::Future<Output = CacheState> + Send + '_ {
        self.probe.probe()
    }

    fn evaluate(&self, state: &CacheState, at: &Evaluation) -> Vec<Snapshot> {
        vec![evaluate(&self.settings, state, at.source.clone(), at.now)]
    }
}

impl Section for CacheHealthSettings {
    fn name(&self) -> &'static str {
        "cache_health"
    }

    fn validate(&self) -> Result<(), Invalid> {
        CacheHealthSettings::validate(self)
            .map_err(|e| Invalid::new(format!("cache_health.{}", e.key), e.detail))
    }
}
