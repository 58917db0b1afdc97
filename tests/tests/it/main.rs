//! One integration-test binary for every scenario that runs against the real Kafka broker and
//! PostgreSQL server started by `deploy/local/dev-services` (see `deploy/local/test`).
//! The journal-outage scenario stops PostgreSQL, so it lives in its own binary (`outage`).

mod delivery;
mod e2e;
mod hostile;
mod http_api;
mod kafka_readiness;
mod poison;
