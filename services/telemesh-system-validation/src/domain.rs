//! Owns [`SystemValidationDomain`], system validation as a [`Domain`] of the framework: each
//! gather re-reads the report file (bounded) and takes the newest upload; a report that differs
//! from the current one replaces it and pushes the current one into the reliability history
//! (kept in memory, at most `history_limit` entries: a restart starts a new history).

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use telemesh_core::config::{Invalid, Section};
use telemesh_core::Snapshot;
use telemesh_service::{Domain, Evaluation, NotConfigured, Routes, ServiceHandle};

use crate::evaluate::{checks_grade, counts, evaluate, report_time, KIND};
use crate::report::{parse_report, Report, MAX_REPORT_BYTES};
use crate::settings::SystemValidationSettings;
use crate::state::{HistoryEntry, Origin, ValidationState};

/// The service name (`serve system-validation`, `Source.service`).
pub const SERVICE: &str = "system-validation";

/// A report as it arrived, read or not.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    pub origin: Origin,
    pub received_at: DateTime<Utc>,
    pub parsed: Result<Report, String>,
    /// Identifies the bytes, so an unchanged file is not a new report.
    pub digest: u64,
}

/// Where uploads wait for the next gather.
pub(crate) type Inbox = Arc<Mutex<Option<Arrival>>>;

/// System validation on the domain framework.
#[derive(Debug)]
pub struct SystemValidationDomain {
    settings: SystemValidationSettings,
    inbox: Inbox,
    current: Option<Arrival>,
    last_file_digest: Option<u64>,
    history: VecDeque<HistoryEntry>,
}

impl SystemValidationDomain {
    pub fn new(settings: SystemValidationSettings) -> Self {
        Self {
            settings,
            inbox: Arc::default(),
            current: None,
            last_file_digest: None,
            history: VecDeque::new(),
        }
    }

    /// Reads the report file: `None` when there is no path or no file.
    fn read_file(&self) -> Option<Arrival> {
        let path = self.settings.report_path.trim();
        if path.is_empty() {
            return None;
        }
        let origin = Origin::File(path.to_owned());
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                return Some(Arrival {
                    origin,
                    received_at: Utc::now(),
                    parsed: Err(format!("cannot open it: {e}; check its permissions")),
                    digest: 0,
                })
            }
        };
        let received_at = file
            .metadata()
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        let mut bytes = Vec::new();
        let read = file
            .take(MAX_REPORT_BYTES as u64 + 1)
            .read_to_end(&mut bytes);
        let parsed = match read {
            Ok(_) => parse_report(&bytes).map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot read it: {e}")),
        };
        Some(Arrival {
            origin,
            received_at,
            parsed,
            digest: digest(&bytes),
        })
    }

    /// Makes `arrival` the current report, moving the current one into the history.
    fn accept(&mut self, arrival: Arrival) {
        if let Some(Arrival {
            parsed: Ok(report),
            received_at,
            ..
        }) = self.current.take()
        {
            self.history.push_front(HistoryEntry {
                at: report_time(&report, received_at),
                grade: checks_grade(&report),
                success_rate: counts(&report).success_rate,
            });
            self.history.truncate(self.settings.history_limit);
        }
        self.current = Some(arrival);
    }

    fn state(&self) -> ValidationState {
        match &self.current {
            None => ValidationState::NoReport {
                expected_at: Some(self.settings.report_path.trim().to_owned())
                    .filter(|p| !p.is_empty()),
            },
            Some(Arrival {
                origin,
                received_at,
                parsed: Err(error),
                ..
            }) => ValidationState::Unreadable {
                origin: origin.clone(),
                received_at: *received_at,
                error: error.clone(),
            },
            Some(Arrival {
                origin,
                received_at,
                parsed: Ok(report),
                ..
            }) => ValidationState::Report {
                report: Box::new(report.clone()),
                origin: origin.clone(),
                received_at: *received_at,
                history: self.history.iter().copied().collect(),
            },
        }
    }

    fn gather_now(&mut self) -> ValidationState {
        let mut arrivals = Vec::new();
        if let Some(file) = self.read_file() {
            if self.last_file_digest != Some(file.digest) || file.parsed.is_err() {
                self.last_file_digest = Some(file.digest);
                arrivals.push(file);
            }
        }
        if let Some(upload) = self.inbox.lock().unwrap_or_else(|e| e.into_inner()).take() {
            arrivals.push(upload);
        }
        arrivals.sort_by_key(|a| a.received_at);
        for arrival in arrivals {
            let same = self.current.as_ref().is_some_and(|c| {
                c.digest == arrival.digest && c.parsed.is_ok() == arrival.parsed.is_ok()
            });
            if !same {
                self.accept(arrival);
            }
        }
        self.state()
    }
}

pub(crate) fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl Domain for SystemValidationDomain {
    type State = ValidationState;

    fn name(&self) -> &'static str {
        SERVICE
    }

    fn kinds(&self) -> Vec<&'static str> {
        vec![KIND]
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.interval_seconds)
    }

    fn not_configured(&self) -> Option<NotConfigured> {
        (!self.settings.is_configured()).then(|| {
            NotConfigured::new(
                "system_validation.report_path",
                "the JSON report the validation run writes (or set system_validation.api_token and POST it to /api/v1/system-validation/report)",
            )
        })
    }

    fn gather(&mut self) -> impl std::future::Future<Output = ValidationState> + Send + '_ {
        std::future::ready(self.gather_now())
    }

    fn evaluate(&self, state: &ValidationState, at: &Evaluation) -> Vec<Snapshot> {
        vec![evaluate(&self.settings, state, at.source.clone(), at.now)]
    }

    fn routes(&self, service: &ServiceHandle) -> Option<Routes> {
        Some(crate::http::routes(
            self.settings.api_token.clone(),
            Arc::clone(&self.inbox),
            service.clone(),
        ))
    }
}

impl Section for SystemValidationSettings {
    fn name(&self) -> &'static str {
        "system_validation"
    }

    fn validate(&self) -> Result<(), Invalid> {
        SystemValidationSettings::validate(self)
            .map_err(|e| Invalid::new(format!("system_validation.{}", e.key), e.detail))
    }
}
