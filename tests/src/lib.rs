//! Owns the integration-test harness: where the real Kafka broker and PostgreSQL server are
//! (from `deploy/local/dev-services`), fresh per-test namespaces (topic prefix, consumer group,
//! database), and `wait_until` helpers instead of sleeps.
//!
//! A test that cannot find its service panics with what to run: it never skips.

use std::future::Future;
use std::time::{Duration, Instant};

use telemesh_core::config::KafkaSettings;

/// The services the tests run against.
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub kafka_brokers: String,
    pub database_url: String,
    /// `deploy/local/dev-services`, for tests that stop and start PostgreSQL.
    pub dev_services: String,
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with `deploy/local/test` (it starts Kafka and PostgreSQL), \
             or `source <(deploy/local/dev-services env)` after `deploy/local/dev-services up`"
        )
    })
}

impl TestEnv {
    /// Reads the service locations; panics with instructions when they are missing.
    pub fn get() -> Self {
        Self {
            kafka_brokers: required("TELEMESH_TEST_KAFKA_BROKERS"),
            database_url: required("TELEMESH_TEST_DATABASE_URL"),
            dev_services: required("TELEMESH_TEST_DEV_SERVICES"),
        }
    }

    /// Kafka settings for one test: its own topic namespace and consumer group.
    pub fn kafka(&self, ns: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: self.kafka_brokers.clone(),
            client_id: format!("telemesh-test-{ns}"),
            topic_prefix: format!("{ns}."),
            group_id: format!("{ns}-aggregator"),
            request_timeout_ms: 5_000,
            message_timeout_ms: 10_000,
            ..KafkaSettings::default()
        }
    }

    /// Creates a fresh, empty database for one test and returns its URL.
    pub async fn fresh_database(&self, ns: &str) -> String {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.database_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at TELEMESH_TEST_DATABASE_URL: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{ns}\""))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let (base, _) = self
            .database_url
            .rsplit_once('/')
            .expect("TELEMESH_TEST_DATABASE_URL ends with /<database>");
        format!("{base}/{ns}")
    }

    /// Runs `deploy/local/dev-services <command>` (e.g. `pg-stop`, `pg-start`).
    pub fn dev_services(&self, command: &str) {
        let status = std::process::Command::new(&self.dev_services)
            .arg(command)
            .status()
            .unwrap_or_else(|e| panic!("run {} {command}: {e}", self.dev_services));
        assert!(status.success(), "{} {command} failed", self.dev_services);
    }
}

/// A short unique namespace for topics, groups and databases of one test (`t` + 12 hex).
pub fn namespace() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("t{}", &id[id.len() - 12..])
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes (then panics with
/// `what`).
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
