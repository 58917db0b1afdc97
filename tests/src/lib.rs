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
            // the aggregator's pattern subscription sees a topic created mid-test within 10 s
            // (1 s made every consumer fetch the whole, test-crowded cluster metadata each second)
            metadata_refresh_ms: 10_000,
            ..KafkaSettings::default()
        }
    }

    /// Creates a fresh, empty database for one test and returns its URL.
    pub async fn fresh_database(&self, ns: &str) -> String {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.database_url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot reach PostgreSQL at TELEMESH_TEST_DATABASE_URL: {e}")
            });
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

/// The PGlite+TimescaleDB server of `deploy/local/dev-services` (one connection at a time);
/// panics with what to run when it is not set.
pub fn timescale_url() -> String {
    required("TELEMESH_TEST_TIMESCALE_URL")
}

/// Journal settings for the one-connection TimescaleDB server at `url`: one write connection,
/// reads share it, TimescaleDB required.
pub fn timescale_settings(url: &str) -> telemesh_aggregator::settings::JournalSettings {
    telemesh_aggregator::settings::JournalSettings {
        url: telemesh_core::config::SecretUrl::new(url),
        max_connections: 1,
        read_max_connections: 0,
        acquire_timeout_ms: 30_000,
        timescale: telemesh_aggregator::settings::TimescaleMode::Required,
        ..Default::default()
    }
}

/// A connection of its own (no journal statement timeout), clean of the prepared statements an
/// earlier client of the one-session TimescaleDB server left (harmless on PostgreSQL).
pub async fn raw_connection(url: &str) -> sqlx::PgConnection {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("cannot reach {url} ({e}); run deploy/local/dev-services up and source its env file")
    });
    conn.execute("DEALLOCATE ALL").await.expect("deallocate");
    conn
}

/// Empties the shared TimescaleDB server's public schema (tables of earlier tests), keeping
/// the extension.
pub async fn reset_timescale(url: &str) {
    use sqlx::Connection;
    let mut conn = raw_connection(url).await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(&mut conn)
            .await
            .expect("list tables");
    for table in tables {
        sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\" CASCADE"))
            .execute(&mut conn)
            .await
            .expect("drop table");
    }
    conn.close().await.expect("close");
}

/// The notifications among an alert engine's `actions`, as the dispatcher would send them
/// (a fresh id each, the summary link `http://telemesh.example/`).
pub fn notifications_of(
    actions: Vec<telemesh_alerting::engine::Action>,
) -> Vec<telemesh_alerting::channels::Notification> {
    use telemesh_alerting::engine::Action;
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Notify { alert, event, .. } => {
                Some(telemesh_alerting::channels::Notification {
                    id: uuid::Uuid::now_v7(),
                    event,
                    alert: *alert,
                    summary_url: "http://telemesh.example/".into(),
                    drill: false,
                })
            }
            Action::Persist(_) => None,
        })
        .collect()
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
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub mod fuzz;

pub mod fixtures {
    //! Snapshots, topics and a Kafka-backed aggregator for tests.

    use std::sync::Arc;
    use std::time::Duration;

    use chrono::Utc;
    use telemesh_aggregator::settings::JournalSettings;
    use telemesh_aggregator::{
        catalogue_topics, subscribed_topics, Aggregator, AggregatorSettings, AlertingParts,
        Journal, TransportParts,
    };
    use telemesh_alerting::actor::SystemClock;
    use telemesh_alerting::AlertingSettings;
    use telemesh_core::config::{KafkaSettings, Secret, SecretUrl};
    use telemesh_core::transport::inproc::InProcessBus;
    use telemesh_core::transport::kafka::{
        ensure_topics, KafkaPublisher, KafkaSubscriber, TopicSpec,
    };
    use telemesh_core::transport::SnapshotPublisher;
    use telemesh_core::transport::{InboundMessage, Publisher, Subscriber};
    use telemesh_core::Encoding;
    use telemesh_core::{topics, Component, Grade, Snapshot, Source};

    /// A snapshot of `kind` from `service/instance` graded `grade`.
    pub fn snapshot(kind: &str, service: &str, instance: &str, grade: Grade) -> Snapshot {
        let mut s = Snapshot::new(kind, Source::new(service, instance), Utc::now());
        s.push(Component::new("probe", grade, format!("probe is {grade}")));
        s.summary = format!("{service} is {grade}");
        s.metric("interval_seconds", 30.0);
        s.markdown = s.render_markdown(kind);
        s
    }

    /// Creates every snapshot topic and the dead-letter topic of the namespace.
    pub async fn create_topics(kafka: &KafkaSettings, partitions: i32) {
        let mut specs: Vec<TopicSpec> = catalogue_topics(&kafka.topic_prefix)
            .into_iter()
            .map(|name| TopicSpec {
                name,
                partitions,
                replication_factor: 1,
            })
            .collect();
        specs.push(TopicSpec {
            name: topics::topic_name(&kafka.topic_prefix, topics::DLQ),
            partitions: 1,
            replication_factor: 1,
        });
        let report = ensure_topics(kafka, &specs)
            .await
            .expect("create test topics");
        assert!(
            report.failed.is_empty(),
            "topic creation failed: {:?}",
            report.failed
        );
    }

    /// Aggregator settings suited to tests (small linger).
    pub fn aggregator_settings() -> AggregatorSettings {
        AggregatorSettings {
            batch_linger_ms: 20,
            ..AggregatorSettings::default()
        }
    }

    /// Opens the PostgreSQL journal at `url`.
    pub async fn pg_journal(url: &str) -> Journal {
        Journal::connect(&JournalSettings {
            url: SecretUrl::new(url),
            ..JournalSettings::default()
        })
        .await
        .expect("open postgres journal")
    }

    /// An aggregator on the in-process bus with a fresh PostgreSQL journal and alerting on
    /// (mutating alert routes take bearer `token`), serving HTTP on a free port: what the page
    /// and operator-CLI tests drive.
    #[derive(Debug)]
    pub struct InProcessAggregator {
        pub aggregator: Aggregator,
        pub publisher: SnapshotPublisher,
        /// `http://host:port` of its API.
        pub url: String,
    }

    /// Starts an [`InProcessAggregator`].
    pub async fn in_process_aggregator(token: &str) -> InProcessAggregator {
        let env = crate::TestEnv::get();
        let db = env.fresh_database(&crate::namespace()).await;
        let bus = InProcessBus::new(64, subscribed_topics(""));
        let aggregator = Aggregator::start_with(
            &AggregatorSettings {
                intake_token: Secret::new(token),
                ..aggregator_settings()
            },
            "127.0.0.1:0",
            "",
            pg_journal(&db).await,
            TransportParts::in_process(
                bus.subscriber().expect("in-process subscriber"),
                bus.publisher(),
            ),
            Some(AlertingParts {
                settings: AlertingSettings {
                    api_token: Secret::new(token),
                    group_wait_seconds: 0.2,
                    tick_ms: 50,
                    ..AlertingSettings::default()
                },
                env: Default::default(),
                clock: Arc::new(SystemClock),
            }),
        )
        .await
        .expect("start aggregator");
        InProcessAggregator {
            url: format!("http://{}", aggregator.http_addr),
            aggregator,
            publisher: SnapshotPublisher::new(bus.publisher(), Encoding::Json, ""),
        }
    }

    /// A snapshot publisher to the namespace's topics in `encoding`, over a Kafka producer of
    /// its own.
    pub fn kafka_publisher(kafka: &KafkaSettings, encoding: Encoding) -> SnapshotPublisher {
        let transport: Arc<dyn Publisher> =
            Arc::new(KafkaPublisher::new(kafka).expect("kafka publisher"));
        SnapshotPublisher::new(transport, encoding, kafka.topic_prefix.clone())
    }

    /// Starts an aggregator consuming the namespace's topics from Kafka into `journal_url`.
    pub async fn kafka_aggregator(
        kafka: &KafkaSettings,
        journal_url: &str,
        settings: &AggregatorSettings,
    ) -> Aggregator {
        let subscriber = KafkaSubscriber::new(kafka, &subscribed_topics(&kafka.topic_prefix))
            .expect("kafka subscriber");
        let publisher: Arc<dyn Publisher> =
            Arc::new(KafkaPublisher::new(kafka).expect("kafka publisher"));
        Aggregator::start(
            settings,
            "127.0.0.1:0",
            &kafka.topic_prefix,
            pg_journal(journal_url).await,
            TransportParts::kafka(subscriber, publisher),
        )
        .await
        .expect("start aggregator")
    }

    /// Reads `n` messages of `topic` from the beginning with a throwaway group.
    pub async fn read_topic(
        kafka: &KafkaSettings,
        topic: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<InboundMessage> {
        let settings = KafkaSettings {
            group_id: format!(
                "{}-reader-{}",
                kafka.group_id,
                uuid::Uuid::now_v7().simple()
            ),
            ..kafka.clone()
        };
        let mut sub = KafkaSubscriber::new(&settings, &[topic.to_owned()]).expect("reader");
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n && tokio::time::Instant::now() < deadline {
            if let Some(m) = sub
                .poll(Duration::from_millis(500))
                .await
                .expect("read topic")
            {
                out.push(m);
            }
        }
        out
    }

    /// One test's Kafka namespace (topics created), fresh database and running aggregator,
    /// with a snapshot publisher on the same namespace.
    #[derive(Debug)]
    pub struct KafkaTestbed {
        pub kafka: KafkaSettings,
        pub db: String,
        pub aggregator: Aggregator,
        pub transport: Arc<dyn Publisher>,
        pub publisher: telemesh_core::transport::SnapshotPublisher,
    }

    impl KafkaTestbed {
        /// Sets everything up: `partitions` per snapshot topic, `settings` for the aggregator.
        pub async fn start(
            partitions: i32,
            settings: &AggregatorSettings,
            encoding: telemesh_core::Encoding,
        ) -> Self {
            let env = crate::TestEnv::get();
            let ns = crate::namespace();
            let kafka = env.kafka(&ns);
            create_topics(&kafka, partitions).await;
            let db = env.fresh_database(&ns).await;
            let aggregator = kafka_aggregator(&kafka, &db, settings).await;
            let transport: Arc<dyn Publisher> =
                Arc::new(KafkaPublisher::new(&kafka).expect("kafka publisher"));
            let publisher = telemesh_core::transport::SnapshotPublisher::new(
                Arc::clone(&transport),
                encoding,
                kafka.topic_prefix.clone(),
            );
            Self {
                kafka,
                db,
                aggregator,
                transport,
                publisher,
            }
        }

        /// Waits until the journal holds exactly `rows` rows.
        pub async fn wait_for_rows(&self, rows: i64, timeout: Duration) {
            wait_for_rows(&self.db, rows, timeout).await;
        }
    }

    /// Waits until the journal at `url` holds exactly `rows` rows.
    pub async fn wait_for_rows(url: &str, rows: i64, timeout: Duration) {
        crate::wait_until(&format!("{rows} journal rows"), timeout, || async move {
            (journal_counts(url).await.0 == rows).then_some(())
        })
        .await;
    }

    /// Rows in the journal at `url`: (all rows, distinct ids).
    pub async fn journal_counts(url: &str) -> (i64, i64) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("connect journal db");
        sqlx::query_as("SELECT count(*), count(DISTINCT id) FROM telemetry_snapshots")
            .fetch_one(&mut conn)
            .await
            .expect("count journal rows")
    }
}

pub mod fake_http {
    //! Local HTTP receivers that stand in for Slack, a webhook endpoint and the GitHub API in
    //! alerting tests: real sockets, every request recorded, scripted failures (429 with
    //! `Retry-After`, 500) on demand.

    use std::collections::VecDeque;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

    /// One received request.
    #[derive(Debug, Clone)]
    pub struct Received {
        pub method: String,
        pub path: String,
        pub body: serde_json::Value,
        pub authorization: Option<String>,
        pub at: Instant,
    }

    #[derive(Debug, Default)]
    struct Inner {
        received: Mutex<Vec<Received>>,
        /// Status codes (and Retry-After seconds) to answer before answering normally.
        script: Mutex<VecDeque<(u16, Option<u64>)>>,
        /// Status codes with a raw `Retry-After` value (e.g. an HTTP date), answered first.
        script_raw: Mutex<VecDeque<(u16, String)>>,
        next_issue: AtomicU64,
    }

    /// A running receiver.
    #[derive(Debug, Clone)]
    pub struct FakeReceiver {
        pub url: String,
        inner: Arc<Inner>,
        handle: actix_web::dev::ServerHandle,
    }

    async fn handle(
        req: HttpRequest,
        body: web::Bytes,
        inner: web::Data<Arc<Inner>>,
    ) -> HttpResponse {
        let received = Received {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            authorization: req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at: Instant::now(),
        };
        let is_create = received.method == "POST" && received.path.ends_with("/issues");
        inner.received.lock().unwrap().push(received);
        if let Some((status, retry_after)) = inner.script_raw.lock().unwrap().pop_front() {
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                .insert_header(("retry-after", retry_after))
                .json(serde_json::json!({ "message": "scripted failure" }));
        }
        if let Some((status, retry_after)) = inner.script.lock().unwrap().pop_front() {
            let mut response =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
            if let Some(secs) = retry_after {
                response.insert_header(("retry-after", secs.to_string()));
            }
            return response.json(serde_json::json!({ "message": "scripted failure" }));
        }
        if is_create {
            let number = inner.next_issue.fetch_add(1, Ordering::SeqCst) + 1;
            return HttpResponse::Created().json(serde_json::json!({ "number": number }));
        }
        HttpResponse::Ok().json(serde_json::json!({ "ok": true }))
    }

    impl FakeReceiver {
        /// Starts a receiver on a free loopback port (inside an actix system).
        pub fn start() -> Self {
            Self::start_on("127.0.0.1:0")
        }

        /// Starts a receiver on `addr` (e.g. the address of one that was stopped: a receiver
        /// that was down and is back).
        pub fn start_on(addr: &str) -> Self {
            let listener = TcpListener::bind(addr).unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let inner = Arc::new(Inner::default());
            let data = web::Data::new(Arc::clone(&inner));
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .default_service(web::to(handle))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
            let handle = server.handle();
            actix_rt::spawn(server);
            Self { url, inner, handle }
        }

        /// Answers the next requests with these statuses (and Retry-After seconds).
        pub fn fail_next(&self, answers: &[(u16, Option<u64>)]) {
            self.inner
                .script
                .lock()
                .unwrap()
                .extend(answers.iter().copied());
        }

        /// Answers the next request with `status` and this raw `Retry-After` value.
        pub fn fail_next_raw(&self, status: u16, retry_after: &str) {
            self.inner
                .script_raw
                .lock()
                .unwrap()
                .push_back((status, retry_after.to_owned()));
        }

        /// `host:port` of the receiver.
        pub fn addr(&self) -> &str {
            self.url.trim_start_matches("http://")
        }

        pub fn received(&self) -> Vec<Received> {
            self.inner.received.lock().unwrap().clone()
        }

        pub async fn stop(&self) {
            self.handle.stop(false).await;
        }
    }
}

pub mod fake_smtp {
    //! A minimal SMTP receiver for e-mail channel tests: a real socket speaking enough SMTP
    //! (EHLO, MAIL, RCPT, DATA, QUIT) to accept messages, which it records.

    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A running SMTP receiver.
    #[derive(Debug, Clone)]
    pub struct FakeSmtp {
        pub port: u16,
        messages: Arc<Mutex<Vec<String>>>,
    }

    impl FakeSmtp {
        pub async fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let messages: Arc<Mutex<Vec<String>>> = Arc::default();
            let store = Arc::clone(&messages);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        let (read, mut write) = stream.into_split();
                        let mut lines = BufReader::new(read).lines();
                        let _ = write.write_all(b"220 fake.smtp ESMTP\r\n").await;
                        let mut data: Option<String> = None;
                        while let Ok(Some(line)) = lines.next_line().await {
                            if let Some(body) = data.as_mut() {
                                if line == "." {
                                    store.lock().unwrap().push(std::mem::take(body));
                                    data = None;
                                    let _ = write.write_all(b"250 2.0.0 queued\r\n").await;
                                } else {
                                    body.push_str(&line);
                                    body.push('\n');
                                }
                                continue;
                            }
                            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                            let reply: &[u8] = match verb.as_str() {
                                "EHLO" | "HELO" => b"250-fake.smtp\r\n250 8BITMIME\r\n",
                                "DATA" => {
                                    data = Some(String::new());
                                    b"354 end with <CRLF>.<CRLF>\r\n"
                                }
                                "QUIT" => {
                                    let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                                    break;
                                }
                                _ => b"250 2.0.0 ok\r\n",
                            };
                            let _ = write.write_all(reply).await;
                        }
                    });
                }
            });
            Self { port, messages }
        }

        /// Accepted messages (headers and body).
        pub fn messages(&self) -> Vec<String> {
            self.messages.lock().unwrap().clone()
        }
    }
}
