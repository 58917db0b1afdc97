//! Owns the real I/O of cache health: [`RedisProbe`] connects to the configured Redis with
//! the `redis` crate (tokio), times one `PING` and reads `INFO`, each bounded by the configured
//! timeout. A fresh connection per probe: an outage and the recovery after it show up on the
//! very next probe, with no reconnect state to go stale.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::info::parse_info;
use crate::settings::CacheHealthSettings;
use crate::state::{CacheObservation, CacheState, Counters};

/// Probes one Redis; remembers the counters of its last successful probe.
#[derive(Debug)]
pub struct RedisProbe {
    url: String,
    endpoint: String,
    timeout: Duration,
    previous: Option<Counters>,
}

impl RedisProbe {
    pub fn new(settings: &CacheHealthSettings) -> Self {
        Self {
            url: settings.url.expose().trim().to_owned(),
            endpoint: settings.url.redacted(),
            timeout: Duration::from_millis(settings.timeout_ms),
            previous: None,
        }
    }

    /// One probe: connect, `PING`, `INFO`. Never fails: an error is a [`CacheState`].
    pub async fn probe(&mut self) -> CacheState {
        if self.url.is_empty() {
            return CacheState::NotConfigured;
        }
        match self.observe().await {
            Ok(mut obs) => {
                obs.previous = self.previous;
                if let Some(counters) = Counters::of(&obs.info) {
                    self.previous = Some(counters);
                }
                CacheState::Up(Box::new(obs))
            }
            Err(error) => CacheState::Unreachable {
                endpoint: self.endpoint.clone(),
                error,
            },
        }
    }

    async fn observe(&self) -> Result<CacheObservation, String> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| format!("invalid [cache_health] url: {e}"))?;
        let mut conn = self
            .bounded("connect", client.get_multiplexed_async_connection())
            .await?;
        let started = Instant::now();
        let pong: Value = self
            .bounded("PING", redis::cmd("PING").query_async(&mut conn))
            .await?;
        let ping_ms = started.elapsed().as_secs_f64() * 1000.0;
        let ping_reply = match &pong {
            Value::SimpleString(s) if s == "PONG" => None,
            other => Some(format!("{other:?}").chars().take(80).collect()),
        };
        let raw: Vec<u8> = info(&mut conn, self).await?;
        Ok(CacheObservation {
            endpoint: self.endpoint.clone(),
            ping_ms,
            ping_reply,
            info: parse_info(&raw),
            previous: None,
        })
    }

    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!(
                "{what} failed: {e}; check the server is up and [cache_health] url (host, port, credentials)"
            )),
            Err(_) => Err(format!(
                "{what} timed out after {} ms; check network reachability of the cache",
                self.timeout.as_millis()
            )),
        }
    }
}

async fn info(conn: &mut MultiplexedConnection, probe: &RedisProbe) -> Result<Vec<u8>, String> {
    probe
        .bounded("INFO", redis::cmd("INFO").query_async(conn))
        .await
}
