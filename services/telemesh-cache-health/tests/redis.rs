//! Cache health against a real `redis-server` (started by `deploy/local/dev-services`, URL in
//! `TELEMESH_TEST_REDIS_URL`): healthy, eviction pressure (small `maxmemory`), an outage
//! (`dev-services redis-stop`, then `redis-start`), and hostile servers on the wire (a socket
//! that answers `INFO` with hostile values, one that lies about a reply's length, one that never
//! answers). The tests share one server and change its settings, so they run one at a time.

use std::time::Duration;

use telemesh_cache_health::evaluate::{CONNECTION, EVICTIONS, HIT_RATE, INFO, MEMORY, REPLICATION};
use telemesh_cache_health::{
    evaluate, CacheHealthDomain, CacheHealthSettings, CacheState, RedisProbe, KIND,
};
use telemesh_core::config::SecretUrl;
use telemesh_core::{Grade, Snapshot, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn redis_url() -> String {
    std::env::var("TELEMESH_TEST_REDIS_URL").expect(
        "TELEMESH_TEST_REDIS_URL is not set: run `deploy/local/dev-services up` and source its env file",
    )
}

/// Thresholds that do not depend on this machine's speed (timings are not asserted).
fn settings(url: &str) -> CacheHealthSettings {
    CacheHealthSettings {
        url: SecretUrl::new(url),
        timeout_ms: 5_000,
        warn_ping_ms: 60_000.0,
        fail_ping_ms: 120_000.0,
        ..CacheHealthSettings::default()
    }
}

fn grade_snapshot(settings: &CacheHealthSettings, state: &CacheState) -> Snapshot {
    let s = evaluate(
        settings,
        state,
        Source::new("cache-health", "it"),
        chrono::Utc::now(),
    );
    s.validate().expect("valid snapshot");
    s
}

fn status(s: &Snapshot, name: &str) -> Grade {
    s.component(name)
        .unwrap_or_else(|| panic!("component {name} missing: {:#?}", s.components))
        .status
}

async fn client() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable: is dev-services up?")
}

async fn cmd<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(conn)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[tokio::test]
async fn a_healthy_redis_is_graded_from_its_own_info_over_the_interval() {
    let _serial = SERIAL.lock().await;
    let mut conn = client().await;
    let _: () = cmd(&mut conn, &["SET", "it:healthy:k", "v"]).await;
    let settings = settings(&redis_url());
    let mut probe = RedisProbe::new(&settings);
    let first = probe.probe().await;
    assert!(matches!(first, CacheState::Up(_)), "{first:?}");
    for _ in 0..9 {
        let _: Option<String> = cmd(&mut conn, &["GET", "it:healthy:k"]).await;
    }
    let _: Option<String> = cmd(&mut conn, &["GET", "it:healthy:missing"]).await;
    let second = probe.probe().await;
    let s = grade_snapshot(&settings, &second);
    assert_eq!(s.metrics["hits"], 9.0, "{:#?}", s.components);
    assert_eq!(s.metrics["misses"], 1.0);
    assert_eq!(s.metrics["hit_rate"], 0.9);
    for name in [CONNECTION, HIT_RATE, EVICTIONS, MEMORY, REPLICATION] {
        assert_eq!(status(&s, name), Grade::Ok, "{name}: {:#?}", s.components);
    }
    assert!(s.component(INFO).is_none(), "a real INFO is fully readable");
    assert_eq!(s.status, Grade::Ok, "{:#?}", s.components);
}

/// Restores `maxmemory 0` and empties the database even when the test fails.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(self.0.as_str()) {
            if let Ok(mut c) = client.get_connection() {
                let _: redis::RedisResult<()> = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory")
                    .arg("0")
                    .query(&mut c);
                let _: redis::RedisResult<()> = redis::cmd("FLUSHDB").query(&mut c);
            }
        }
    }
}

#[tokio::test]
async fn eviction_pressure_under_a_small_maxmemory_is_graded() {
    let _serial = SERIAL.lock().await;
    let _restore = Restore(redis_url());
    let mut conn = client().await;
    let info: String = cmd(&mut conn, &["INFO", "memory"]).await;
    let used: u64 = telemesh_cache_health::parse_info(info.as_bytes())
        .used_memory
        .expect("used_memory");
    let limit = (used + 2 * 1024 * 1024).to_string();
    let _: () = cmd(&mut conn, &["CONFIG", "SET", "maxmemory", &limit]).await;
    let _: () = cmd(
        &mut conn,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    )
    .await;
    let settings = settings(&redis_url());
    let mut probe = RedisProbe::new(&settings);
    let before = probe.probe().await;
    assert!(matches!(before, CacheState::Up(_)));
    let value = "x".repeat(4096);
    for i in 0..2000 {
        let _: () = cmd(&mut conn, &["SET", &format!("it:evict:{i}"), &value]).await;
    }
    let s = grade_snapshot(&settings, &probe.probe().await);
    assert!(s.metrics["evicted_keys"] > 0.0, "{:#?}", s.components);
    assert!(status(&s, EVICTIONS) >= Grade::Warn);
    assert!(
        status(&s, MEMORY) >= Grade::Warn,
        "{:#?}",
        s.component(MEMORY)
    );
    assert!(s.summary.contains("runbook"));
}

/// Starts Redis again even when the test fails.
struct Restart;

fn dev_services(command: &str) {
    let script = std::env::var("TELEMESH_TEST_DEV_SERVICES").expect(
        "TELEMESH_TEST_DEV_SERVICES is not set: source the env file of deploy/local/dev-services",
    );
    let status = std::process::Command::new(script)
        .arg(command)
        .status()
        .expect("run dev-services");
    assert!(status.success(), "dev-services {command} failed");
}

impl Drop for Restart {
    fn drop(&mut self) {
        dev_services("redis-start");
    }
}

#[tokio::test]
async fn an_outage_fails_and_the_next_probe_after_recovery_is_ok() {
    let _serial = SERIAL.lock().await;
    let settings = settings(&redis_url());
    let mut probe = RedisProbe::new(&settings);
    assert!(matches!(probe.probe().await, CacheState::Up(_)));
    {
        let _restart = Restart;
        dev_services("redis-stop");
        let down = probe.probe().await;
        let s = grade_snapshot(&settings, &down);
        assert!(matches!(down, CacheState::Unreachable { .. }), "{down:?}");
        assert_eq!(s.status, Grade::Fail);
        assert!(
            s.summary.contains("docs/runbooks/redis-cache-outage.md"),
            "{}",
            s.summary
        );
        assert_eq!(s.metrics["up"], 0.0);
    }
    let up = probe.probe().await;
    let s = grade_snapshot(&settings, &up);
    assert_eq!(status(&s, CONNECTION), Grade::Ok, "{:#?}", s.components);
}

/// A TCP server speaking just enough RESP: `CLIENT …` (sent by the client library on connect)
/// gets `+OK`, `PING` gets `ping`, `INFO` gets `info`; an empty reply means never answer.
async fn hostile_server(ping: Vec<u8>, info: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (ping, info) = (ping.clone(), info.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_uppercase();
                    let mut commands: Vec<(usize, &[u8])> = Vec::new();
                    for (word, reply) in [
                        ("$6\r\nCLIENT", &b"+OK\r\n"[..]),
                        ("$4\r\nPING", &ping[..]),
                        ("$4\r\nINFO", &info[..]),
                    ] {
                        commands.extend(text.match_indices(word).map(|(i, _)| (i, reply)));
                    }
                    commands.sort_by_key(|(i, _)| *i);
                    for (_, reply) in commands {
                        if reply.is_empty() {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        if socket.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("redis://{addr}")
}

fn bulk(text: &str) -> Vec<u8> {
    format!("${}\r\n{text}\r\n", text.len()).into_bytes()
}

#[tokio::test]
async fn hostile_info_values_on_the_wire_warn_and_never_panic() {
    let info = "# Server\r\nredis_version:<script>\r\nuptime_in_seconds:-1\r\n\
                connected_clients:99999999999999999999999\r\nmaxclients:0\r\n\
                used_memory:NaN\r\nmaxmemory:1e3\r\nkeyspace_hits:12.5\r\nkeyspace_misses:\r\n\
                evicted_keys:18446744073709551615\r\nrejected_connections:7\r\nrole:\u{0}\r\n";
    let url = hostile_server(b"+PONG\r\n".to_vec(), bulk(info)).await;
    let settings = settings(&url);
    let state = RedisProbe::new(&settings).probe().await;
    let CacheState::Up(obs) = &state else {
        panic!("a server that answers is up: {state:?}");
    };
    assert!(obs.info.unreadable.len() >= 7, "{:?}", obs.info.unreadable);
    let s = grade_snapshot(&settings, &state);
    assert_eq!(s.status, Grade::Warn, "{:#?}", s.components);
    assert_eq!(status(&s, INFO), Grade::Warn);
}

#[tokio::test]
async fn a_lying_or_silent_server_is_unreachable_within_the_timeout() {
    for (ping, info) in [
        (&b"+PONG\r\n"[..], &b"$999999999999\r\nabc"[..]), // a length it never sends
        (b"-ERR nope\r\n", b"-ERR nope\r\n"),              // commands refused
        (b"+PONG\r\n", b""),                               // INFO never answered
        (b"*-5\r\n", b":-7\r\n"),                          // nonsense replies
        (b"+PONG\r\n", b"\x00\xff garbage\r\n"),           // not RESP at all
    ] {
        let replies = (String::from_utf8_lossy(ping), String::from_utf8_lossy(info));
        let url = hostile_server(ping.to_vec(), info.to_vec()).await;
        let settings = CacheHealthSettings {
            timeout_ms: 500,
            ..settings(&url)
        };
        let state = RedisProbe::new(&settings).probe().await;
        let s = grade_snapshot(&settings, &state);
        assert!(
            s.status >= Grade::Warn,
            "{replies:?} graded {:?}: {state:?}",
            s.status
        );
    }
}

#[actix::test]
async fn the_domain_publishes_on_the_framework_and_not_configured_names_the_setting() {
    let _serial = SERIAL.lock().await;
    let service = telemesh_service::testing::TestService::start(CacheHealthDomain::new(
        CacheHealthSettings {
            interval_seconds: 3600,
            ..settings(&redis_url())
        },
    ))
    .expect("start");
    let published = service
        .wait_published(KIND, 1, Duration::from_secs(30))
        .await;
    let s = published.first().expect("a cache snapshot");
    assert_eq!(s.source.service, "cache-health");
    assert_eq!(status(s, CONNECTION), Grade::Ok, "{:#?}", s.components);

    let unconfigured = telemesh_service::testing::TestService::start(CacheHealthDomain::new(
        CacheHealthSettings::default(),
    ))
    .expect("start");
    let published = unconfigured
        .wait_published(KIND, 1, Duration::from_secs(30))
        .await;
    let s = published.first().expect("a not-configured block");
    assert_eq!(s.status, Grade::Fail, "a cache is expected by default");
    assert!(s.summary.contains("cache_health.url"), "{}", s.summary);
}
