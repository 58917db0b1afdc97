//! Owns `telemesh demo`'s scenario producer: a [`Domain`] named `demo` (instance `demo`, so every
//! snapshot it publishes is labelled demo data) that walks every catalogue kind through
//! ok → warn → fail → recovery, one phase per step, again and again; and the demo's alerting (a
//! file channel appending each page and resolution to `<data dir>/alerts.log`).

use std::path::Path;
use std::time::{Duration, Instant};

use telemesh_alerting::ChannelSettings;
use telemesh_core::{catalogue, Component, Grade, Snapshot};
use telemesh_service::{Domain, Evaluation};

use crate::config::TelemeshConfig;

/// The service and instance name of the demo's snapshots.
pub const DEMO: &str = "demo";

/// The phases of one scenario, in order.
const PHASES: [(Grade, &str); 4] = [
    (Grade::Ok, "healthy"),
    (Grade::Warn, "degrading"),
    (Grade::Fail, "failing"),
    (Grade::Ok, "recovered"),
];

/// The phase of step `step` (0-based, cycling).
pub fn phase(step: u64) -> (Grade, &'static str) {
    PHASES[(step % PHASES.len() as u64) as usize]
}

/// The scenario producer: every catalogue kind, one phase per `step`.
#[derive(Debug)]
pub struct Scenario {
    step: Duration,
    started: Instant,
}

impl Scenario {
    /// A scenario whose phases last `step` each (15 s: the whole walk in a minute).
    pub fn new(step: Duration) -> Self {
        Self {
            step: step.max(Duration::from_millis(100)),
            started: Instant::now(),
        }
    }
}

impl Domain for Scenario {
    /// The step number since start.
    type State = u64;

    fn name(&self) -> &'static str {
        DEMO
    }

    fn kinds(&self) -> Vec<&'static str> {
        catalogue::entries()
            .iter()
            .map(|e| e.kind.as_str())
            .collect()
    }

    fn interval(&self) -> Duration {
        (self.step / 3).max(Duration::from_millis(50))
    }

    async fn gather(&mut self) -> u64 {
        (self.started.elapsed().as_millis() / self.step.as_millis().max(1)) as u64
    }

    fn evaluate(&self, step: &u64, at: &Evaluation) -> Vec<Snapshot> {
        let (grade, name) = phase(*step);
        let number = step % PHASES.len() as u64 + 1;
        self.kinds()
            .into_iter()
            .map(|kind| {
                let mut s = Snapshot::new(kind, at.source.clone(), at.now);
                s.status = grade;
                s.summary =
                    format!("demo data: scenario phase {number} of 4 ({name}); not a real system");
                s.push(
                    Component::new("scenario", grade, s.summary.clone())
                        .detail("phase", name)
                        .detail("step_seconds", self.step.as_secs_f64()),
                );
                s.metric("interval_seconds", self.interval().as_secs_f64().max(1.0));
                s.markdown = s.render_markdown("Demo scenario");
                s
            })
            .collect()
    }
}

/// Makes `cfg` a demo's: unless alert channels are configured, every page and resolution goes
/// to `<data_dir>/alerts.log` at once (no group wait). Returns that file, when set here.
pub fn prepare(cfg: &mut TelemeshConfig, data_dir: &Path) -> Option<std::path::PathBuf> {
    if !cfg.alerting.channels.is_empty() {
        return None;
    }
    let log = data_dir.join("alerts.log");
    cfg.alerting.channels.push(ChannelSettings {
        name: "demo-log".into(),
        kind: "file".into(),
        path: log.display().to_string(),
        ..ChannelSettings::default()
    });
    cfg.alerting.group_wait_seconds = 0.0;
    cfg.alerting.summary_url = format!("http://{}/api/v1/summary?format=markdown", cfg.http.addr);
    Some(log)
}

#[cfg(test)]
mod tests {
    use telemesh_core::Source;

    use super::*;

    #[test]
    fn the_phases_walk_ok_warn_fail_and_recover_then_start_over() {
        let grades: Vec<Grade> = (0..6).map(|s| phase(s).0).collect();
        assert_eq!(
            grades,
            [
                Grade::Ok,
                Grade::Warn,
                Grade::Fail,
                Grade::Ok,
                Grade::Ok,
                Grade::Warn
            ]
        );
    }

    #[test]
    fn every_kind_is_graded_and_labelled_demo() {
        let scenario = Scenario::new(Duration::from_secs(15));
        let at = Evaluation {
            source: Source::new(DEMO, DEMO),
            now: chrono::Utc::now(),
        };
        let snapshots = scenario.evaluate(&2, &at);
        assert_eq!(snapshots.len(), catalogue::entries().len());
        for s in &snapshots {
            assert_eq!(s.status, Grade::Fail);
            assert_eq!(
                (s.source.service.as_str(), s.source.instance.as_str()),
                (DEMO, DEMO)
            );
            assert!(s.summary.starts_with("demo data"), "{}", s.summary);
            assert_eq!(s.validate(), Ok(()));
        }
    }
}
