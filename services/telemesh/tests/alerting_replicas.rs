//! Two aggregator replicas (the built binary, real Kafka and PostgreSQL) with alerting on:
//! exactly one pages. The leader is killed with SIGKILL while its alert fires; the survivor
//! takes the alerting leadership (the PostgreSQL advisory lock freed with the dead session),
//! restores the firing alert without paging it again, and pages its resolution once.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;
use telemesh_core::transport::kafka::KafkaPublisher;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{topics, Encoding, Grade};
use telemesh_integration_tests::fake_http::FakeReceiver;
use telemesh_integration_tests::fixtures::{create_topics, snapshot};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Replica {
    child: tokio::process::Child,
    base: String,
}

impl Replica {
    fn start(config: &std::path::Path, env: &[(String, String)]) -> Self {
        let port = free_port();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_telemesh"));
        for (key, _) in std::env::vars() {
            if key.starts_with("TELEMESH__") {
                cmd.env_remove(key);
            }
        }
        cmd.args(["serve", "aggregator", "--config"])
            .arg(config)
            .envs(env.iter().cloned())
            .env("TELEMESH__HTTP__ADDR", format!("127.0.0.1:{port}"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        Self {
            child: cmd.spawn().expect("the telemesh binary starts"),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn channels(&self) -> Option<Value> {
        reqwest::get(format!("{}/api/v1/alerts/channels", self.base))
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    async fn wait_leader(&self, what: &str, timeout: Duration) {
        wait_until(what, timeout, || async {
            (self.channels().await?["leader"] == true).then_some(())
        })
        .await;
    }
}

fn events(receiver: &FakeReceiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .map(|r| r.body["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[actix_rt::test]
async fn two_replicas_page_once_and_the_survivor_of_a_sigkill_takes_over() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 2).await;
    let db = env.fresh_database(&ns).await;
    let receiver = FakeReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("telemesh.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[aggregator]
batch_linger_ms = 20

[alerting]
group_wait_seconds = 0
tick_ms = 50
leader_poll_ms = 200
journal_poll_seconds = 0.5
retry_initial_seconds = 0.1
retry_max_seconds = 1

[[alerting.channels]]
name = "ops"
type = "webhook"
url = "{}/hook"
"#,
            receiver.url
        ),
    )
    .unwrap();
    let vars = vec![
        ("TELEMESH__KAFKA__BROKERS".to_owned(), kafka.brokers.clone()),
        (
            "TELEMESH__KAFKA__TOPIC_PREFIX".to_owned(),
            kafka.topic_prefix.clone(),
        ),
        (
            "TELEMESH__KAFKA__GROUP_ID".to_owned(),
            kafka.group_id.clone(),
        ),
        ("TELEMESH__JOURNAL__URL".to_owned(), db.clone()),
        ("TELEMESH__LOG__LEVEL".to_owned(), "warn".to_owned()),
    ];
    let mut first = Replica::start(&config, &vars);
    first
        .wait_leader("the first replica leads", Duration::from_secs(60))
        .await;
    let second = Replica::start(&config, &vars);
    wait_until(
        "the second replica answers",
        Duration::from_secs(60),
        || async { second.channels().await.map(|_| ()) },
    )
    .await;
    assert_eq!(
        second.channels().await.unwrap()["leader"],
        false,
        "one leader at a time"
    );

    let transport = std::sync::Arc::new(KafkaPublisher::new(&kafka).expect("kafka publisher"));
    let publisher = SnapshotPublisher::new(transport, Encoding::Json, kafka.topic_prefix.clone());
    let mut bad = snapshot(topics::INGEST_TRENDS, "ingest", "pod-1", Grade::Fail);
    bad.metric("interval_seconds", 600.0);
    publisher.publish(&bad).await.unwrap();
    wait_until("the open page", Duration::from_secs(60), || {
        let got = events(&receiver);
        async move { (!got.is_empty()).then_some(()) }
    })
    .await;
    // the page is recorded as delivered before the leader dies
    let alerts: Value = reqwest::get(format!("{}/api/v1/alerts", first.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    wait_until("the open page recorded", Duration::from_secs(20), || {
        let url = format!("{}/api/v1/alerts/{id}", first.base);
        async move {
            let d: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            (d["notifications"][0]["outcome"] == "delivered").then_some(())
        }
    })
    .await;

    first.child.start_kill().expect("SIGKILL the leader");
    let killed = Instant::now();
    first.child.wait().await.unwrap();
    second
        .wait_leader("the survivor takes over", Duration::from_secs(30))
        .await;
    println!("takeover after SIGKILL: {:?}", killed.elapsed());

    let mut good = snapshot(topics::INGEST_TRENDS, "ingest", "pod-1", Grade::Ok);
    good.metric("interval_seconds", 600.0);
    publisher.publish(&good).await.unwrap();
    // the survivor may wait for the Kafka group to notice the dead member (session timeout)
    wait_until("the resolve page", Duration::from_secs(90), || {
        let got = events(&receiver);
        async move { (got.len() >= 2).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        events(&receiver),
        ["open", "resolve"],
        "exactly one page per transition across the takeover"
    );
}
