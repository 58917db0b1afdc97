//! Owns the test harness: a domain started on port 0 over the in-process transport, with the
//! bus it publishes to, for the framework's tests and every domain crate's.

use std::sync::Arc;

use telemesh_core::transport::inproc::InProcessBus;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{Encoding, Snapshot};

use crate::domain::Domain;
use crate::service::{start, RunningService, ServiceError, ServiceOptions};

/// A domain service under test: its HTTP base URL and the in-process bus it publishes to.
#[derive(Debug)]
pub struct TestService {
    pub service: RunningService,
    pub bus: Arc<InProcessBus>,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
}

impl TestService {
    /// Starts `domain` on `127.0.0.1:0`, instance `test`, publishing JSON to an in-process bus
    /// that routes no topic, so it retains everything published. Must run inside an actix system
    /// (`#[actix::test]`).
    pub fn start<D: Domain>(domain: D) -> Result<Self, ServiceError> {
        let bus = InProcessBus::new(1024, Vec::<String>::new());
        let publisher = SnapshotPublisher::new(bus.publisher(), Encoding::Json, "");
        let service = start(
            domain,
            ServiceOptions {
                instance: "test".into(),
                publisher,
                http_addr: Some("127.0.0.1:0".into()),
            },
        )?;
        let base_url = match service.http_addr() {
            Some(addr) => format!("http://{addr}"),
            None => String::new(),
        };
        Ok(Self {
            service,
            bus,
            base_url,
        })
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The snapshots published on `kind`'s topic so far, decoded, oldest first.
    pub fn published(&self, kind: &str) -> Vec<Snapshot> {
        self.bus
            .retained(kind)
            .iter()
            .filter_map(|m| {
                telemesh_core::codec::decode(
                    m.header(telemesh_core::codec::CONTENT_TYPE_HEADER),
                    &m.payload,
                )
                .ok()
            })
            .collect()
    }

    /// Waits up to `within` until at least `count` snapshots of `kind` were published.
    pub async fn wait_published(
        &self,
        kind: &str,
        count: usize,
        within: std::time::Duration,
    ) -> Vec<Snapshot> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let published = self.published(kind);
            if published.len() >= count || tokio::time::Instant::now() >= deadline {
                return published;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
