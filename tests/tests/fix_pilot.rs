//! The FIX pilot against a real FIX counterparty: QuickFIX C++ (PyPI wheel `quickfix-ssl`)
//! run by `deploy/fix-venue/venue`, with a trading acceptor and a drop-copy acceptor. Each
//! test starts its own venue on free ports and stops it. Needs the dev services (Kafka,
//! PostgreSQL) and Python 3.11 with venv (the launcher creates the venue's venv on first use).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde_json::{json, Value};
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::kafka::{ensure_topics, KafkaPublisher, KafkaSubscriber, TopicSpec};
use telemesh_core::transport::{OutboundMessage, Publisher, SnapshotPublisher, Subscriber};
use telemesh_core::{topics, Encoding, Grade, Snapshot};
use telemesh_fix_pilot::codes::Side;
use telemesh_fix_pilot::gateway::OrderRequest;
use telemesh_fix_pilot::orders::NewOrder;
use telemesh_fix_pilot::state::{PilotState, SessionStatus};
use telemesh_fix_pilot::{
    Category, FixPilot, FixPilotService, FixPilotSettings, Fixed, GetState, SessionSettings,
    Shutdown, Submit,
};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, create_topics, kafka_aggregator, read_topic,
};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};
use telemesh_service::{RunningService, ServiceOptions};

const GRACE_SECONDS: f64 = 2.0;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running test venue; killed (by its process id) when dropped.
struct Venue {
    child: Option<Child>,
    dir: PathBuf,
    trading_port: u16,
    dropcopy_port: u16,
    control_port: u16,
}

impl Venue {
    fn launcher() -> PathBuf {
        std::env::var_os("TELEMESH_FIX_VENUE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/fix-venue/venue")
            })
    }

    async fn start(dir: &Path) -> Venue {
        let mut venue = Venue::not_started(dir);
        venue.spawn().await;
        venue
    }

    /// A venue with its ports chosen, not running yet (`spawn` starts it).
    fn not_started(dir: &Path) -> Venue {
        Venue {
            child: None,
            dir: dir.to_owned(),
            trading_port: free_port(),
            dropcopy_port: free_port(),
            control_port: free_port(),
        }
    }

    async fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("venue directory");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("venue.out"))
            .expect("venue log file");
        let child = Command::new(Self::launcher())
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--trading-port", &self.trading_port.to_string()])
            .args(["--dropcopy-port", &self.dropcopy_port.to_string()])
            .args(["--control-port", &self.control_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", Self::launcher().display()));
        self.child = Some(child);
        let port = self.control_port;
        let dir = self.dir.clone();
        wait_until(
            "the venue's control channel",
            Duration::from_secs(180),
            || {
                let dir = dir.clone();
                async move {
                    let up = control(port, json!({"cmd": "status"})).is_some();
                    if !up {
                        let out =
                            std::fs::read_to_string(dir.join("venue.out")).unwrap_or_default();
                        assert!(!out.contains("Traceback"), "the venue failed:\n{out}");
                    }
                    up.then_some(())
                }
            },
        )
        .await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn command(&self, cmd: Value) -> Value {
        let reply = control(self.control_port, cmd.clone())
            .unwrap_or_else(|| panic!("venue did not answer {cmd}"));
        assert_eq!(reply["ok"], true, "venue refused {cmd}: {reply}");
        reply
    }

    fn session(&self, sender: &str, target: &str, port: u16, store: &Path) -> SessionSettings {
        SessionSettings {
            host: "127.0.0.1".into(),
            port,
            sender_comp_id: sender.into(),
            target_comp_id: target.into(),
            heartbeat_interval_seconds: 5,
            store_dir: store.display().to_string(),
            reconnect_interval_seconds: 1,
            logon_timeout_seconds: 5,
            reset_on_logon: false,
        }
    }

    fn pilot_settings(&self, ns: &str, store: &Path) -> FixPilotSettings {
        FixPilotSettings {
            interval_seconds: 1,
            grace_seconds: GRACE_SECONDS,
            consumer_group: format!("{ns}-fix-pilot"),
            trading: self.session("PILOT", "VENUE", self.trading_port, store),
            dropcopy: self.session("PILOT_DC", "VENUE_DC", self.dropcopy_port, store),
            other_sessions: vec!["PILOT2".into()],
            tick_size: Fixed::parse("0.01").expect("tick"),
            gateway_store_dir: store.join("gateway").display().to_string(),
            session_wait_seconds: 5.0,
            ..FixPilotSettings::default()
        }
    }

    /// Every NewOrderSingle the venue received, per ClOrdID.
    fn orders(&self) -> Value {
        self.command(json!({"cmd": "orders"}))
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One command on the venue's control channel; `None` when it does not answer.
fn control(port: u16, cmd: Value) -> Option<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    writeln!(stream, "{cmd}").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

struct Bed {
    _tmp: TempDirKeep,
    venue: Venue,
    service: RunningService,
    pilot: Addr<FixPilotService>,
    kafka: KafkaSettings,
    store: PathBuf,
    ns: String,
}

/// The FIX pilot domain of `settings` publishing to Kafka as `instance` (no HTTP), and its
/// sessions' actor.
fn start_domain(
    settings: FixPilotSettings,
    kafka: &KafkaSettings,
    instance: &str,
) -> (RunningService, Addr<FixPilotService>) {
    let transport: Arc<dyn Publisher> =
        Arc::new(KafkaPublisher::new(kafka).expect("kafka publisher"));
    let publisher = SnapshotPublisher::new(transport, Encoding::Json, kafka.topic_prefix.clone());
    let domain = FixPilot::start(settings, kafka);
    let pilot = domain.pilot().cloned().expect("a session is configured");
    let service = telemesh_service::start(
        domain,
        ServiceOptions {
            instance: instance.into(),
            publisher,
            http_addr: None,
        },
    )
    .expect("start the fix pilot domain");
    (service, pilot)
}

/// Both snapshots of one run of the domain, now.
async fn run_now(service: &RunningService) -> (Snapshot, Snapshot) {
    let snapshots = service.handle().run_now().await;
    let of = |kind: &str| {
        snapshots
            .iter()
            .find(|s| s.kind == kind)
            .cloned()
            .unwrap_or_else(|| panic!("a {kind} snapshot"))
    };
    (of(topics::FIX_PILOT), of(topics::DROPCOPY))
}

async fn start_pilot(
    venue: &Venue,
    ns: &str,
    kafka: &KafkaSettings,
    store: &Path,
) -> (RunningService, Addr<FixPilotService>) {
    start_domain(venue.pilot_settings(ns, store), kafka, ns)
}

async fn bed() -> Bed {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 1).await;
    let specs: Vec<TopicSpec> = [
        "execution.orders",
        "execution.reports",
        "execution.order_events",
    ]
    .iter()
    .map(|t| TopicSpec {
        name: topics::topic_name(&kafka.topic_prefix, t),
        partitions: 1,
        replication_factor: 1,
    })
    .collect();
    ensure_topics(&kafka, &specs).await.expect("gateway topics");
    let tmp = tempfile::tempdir().expect("temp dir");
    if std::env::var_os("TELEMESH_FIX_KEEP").is_some() {
        eprintln!("fix test files in {}", tmp.path().display());
    }
    let venue = Venue::start(&tmp.path().join("venue")).await;
    let store = tmp.path().join("pilot-store");
    let (service, pilot) = start_pilot(&venue, &ns, &kafka, &store).await;
    let bed = Bed {
        _tmp: TempDirKeep(Some(tmp)),
        venue,
        service,
        pilot,
        kafka,
        store,
        ns,
    };
    bed.wait("both sessions logged on", |s| {
        s.trading.status == SessionStatus::Active && s.dropcopy.status == SessionStatus::Active
    })
    .await;
    bed
}

impl Bed {
    async fn state(&self) -> PilotState {
        self.pilot.send(GetState).await.expect("pilot answers")
    }

    async fn wait(&self, what: &str, check: impl Fn(&PilotState) -> bool) -> PilotState {
        let pilot = self.pilot.clone();
        let check = &check;
        let last = std::cell::RefCell::new(None);
        let found = tokio::time::timeout(
            Duration::from_secs(60),
            wait_until(what, Duration::from_secs(60), || {
                let pilot = pilot.clone();
                let last = &last;
                async move {
                    let state = pilot.send(GetState).await.ok()?;
                    let ok = check(&state);
                    *last.borrow_mut() = Some(state.clone());
                    ok.then_some(state)
                }
            }),
        )
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "timed out waiting for {what}; last state: {:#?}",
                last.borrow()
            )
        })
    }

    async fn order(&self, cl_ord_id: &str, qty: i64, px: &str) {
        let order = NewOrder {
            cl_ord_id: cl_ord_id.into(),
            symbol: "AAPL".into(),
            side: Side::Buy,
            order_qty: Fixed::from_int(qty),
            price: Some(Fixed::parse(px).expect("price")),
            account: None,
        };
        self.pilot
            .send(Submit(OrderRequest::New(order)))
            .await
            .expect("pilot answers")
            .expect("order accepted");
    }

    async fn snapshots(&self) -> (Snapshot, Snapshot) {
        run_now(&self.service).await
    }

    async fn stop(self) {
        self.service.stop(false).await;
    }
}

/// A temp dir kept on disk when `TELEMESH_FIX_KEEP` is set (to read the venue's logs).
struct TempDirKeep(Option<tempfile::TempDir>);

impl Drop for TempDirKeep {
    fn drop(&mut self) {
        if std::env::var_os("TELEMESH_FIX_KEEP").is_some() {
            if let Some(dir) = self.0.take() {
                let _ = dir.keep();
            }
        }
    }
}

fn recon(s: &PilotState) -> &telemesh_fix_pilot::ReconSummary {
    s.recon.as_ref().expect("a drop copy is configured")
}

fn open(s: &PilotState, c: Category) -> u64 {
    recon(s).open(c)
}

/// The order-events topic read from its start by a group of its own; every event is kept.
struct Events {
    sub: KafkaSubscriber,
    seen: Vec<Value>,
}

impl Events {
    fn new(kafka: &KafkaSettings) -> Events {
        let settings = KafkaSettings {
            group_id: format!(
                "{}-events-{}",
                kafka.group_id,
                uuid::Uuid::now_v7().simple()
            ),
            ..kafka.clone()
        };
        let topic = topics::topic_name(&kafka.topic_prefix, "execution.order_events");
        Events {
            sub: KafkaSubscriber::new(&settings, &[topic]).expect("events reader"),
            seen: Vec::new(),
        }
    }

    /// Reads until `check` holds on every event seen so far; panics with them after `timeout`.
    async fn until(&mut self, what: &str, timeout: Duration, check: impl Fn(&[Value]) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !check(&self.seen) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; order events: {:#?}",
                self.seen
            );
            if let Some(m) = self
                .sub
                .poll(Duration::from_millis(300))
                .await
                .expect("read order events")
            {
                self.seen
                    .push(serde_json::from_slice(&m.payload).expect("a JSON order event"));
            }
        }
    }

    /// The events of one ClOrdID as `outcome` or `outcome:reason`.
    fn of(&self, cl_ord_id: &str) -> Vec<String> {
        of(&self.seen, cl_ord_id)
    }
}

fn of(events: &[Value], cl_ord_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["cl_ord_id"] == cl_ord_id)
        .map(|e| match e["reason"].as_str() {
            Some(reason) => format!("{}:{reason}", e["outcome"].as_str().unwrap_or("?")),
            None => e["outcome"].as_str().unwrap_or("?").to_owned(),
        })
        .collect()
}

/// Publishes one order request; answers its offset.
async fn publish_request(kafka: &KafkaSettings, key: &str, payload: Vec<u8>) -> i64 {
    let producer = KafkaPublisher::new(kafka).expect("publisher");
    producer
        .publish(OutboundMessage {
            topic: topics::topic_name(&kafka.topic_prefix, "execution.orders"),
            key: Some(key.into()),
            headers: Vec::new(),
            payload,
        })
        .await
        .expect("order request published")
        .offset
}

/// The events answering the request at `offset`, as `outcome` or `outcome:reason`.
fn answers(events: &[Value], offset: i64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["request"]["offset"] == offset)
        .map(|e| match e["reason"].as_str() {
            Some(reason) => format!("{}:{reason}", e["outcome"].as_str().unwrap_or("?")),
            None if e["replayed"] == true => "sent:replayed".to_owned(),
            None => e["outcome"].as_str().unwrap_or("?").to_owned(),
        })
        .collect()
}

fn new_order_json(cl_ord_id: &str, created_at: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    let mut order = json!({"type": "new", "cl_ord_id": cl_ord_id, "symbol": "AAPL", "side": "buy", "order_qty": "10", "price": "10.5"});
    if let Some(t) = created_at {
        order["created_at"] = json!(t.to_rfc3339());
    }
    order
}

/// Publishes unreadable probes until the gateway answers one: from then on its consumer group
/// has a committed offset, so every later request is read (a new group starts at `latest`,
/// which skips what came before its first assignment — on purpose).
async fn gateway_consuming(kafka: &KafkaSettings, events: &mut Events) {
    for i in 0..120 {
        let before = events.seen.len();
        publish_request(kafka, "probe", json!({"probe": i}).to_string().into_bytes()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while tokio::time::Instant::now() < deadline {
            if let Some(m) = events
                .sub
                .poll(Duration::from_millis(200))
                .await
                .expect("read order events")
            {
                events
                    .seen
                    .push(serde_json::from_slice(&m.payload).expect("a JSON order event"));
            }
        }
        if events.seen[before..]
            .iter()
            .any(|e| e["reason"] == "invalid")
        {
            return;
        }
    }
    panic!(
        "the order gateway never answered a probe: {:#?}",
        events.seen
    );
}

#[actix_rt::test]
async fn orders_from_kafka_fill_and_every_fill_is_matched() {
    let bed = bed().await;
    gateway_consuming(&bed.kafka, &mut Events::new(&bed.kafka)).await;
    let orders = KafkaPublisher::new(&bed.kafka).expect("publisher");
    let topic = topics::topic_name(&bed.kafka.topic_prefix, "execution.orders");
    for (cl, qty) in [("K1", 100), ("K2", 50), ("PART-K3", 80)] {
        let payload = json!({"type": "new", "cl_ord_id": cl, "symbol": "AAPL", "side": "buy", "order_qty": qty.to_string(), "price": "10.5"});
        orders
            .publish(OutboundMessage {
                topic: topic.clone(),
                key: Some(cl.into()),
                headers: Vec::new(),
                payload: payload.to_string().into_bytes(),
            })
            .await
            .expect("order request published");
    }
    // 3 acks + 2 fills + 2 partial fills = 7 executions, each on both sessions
    let s = bed
        .wait("7 executions matched", |s| recon(s).matched == 7)
        .await;
    let r = recon(&s);
    assert_eq!(
        (r.pending, r.open_break_count, r.duplicates),
        (0, 0, 0),
        "{r:#?}"
    );
    assert_eq!(s.orders.total_orders, 3);
    assert_eq!(s.orders.open_orders, 0);
    assert_eq!(s.queues.orders_sent, 3);
    // the pilot published the execution reports it received for the platform
    let reports = read_topic(
        &bed.kafka,
        &topics::topic_name(&bed.kafka.topic_prefix, "execution.reports"),
        7,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(reports.len(), 7);
    let first: Value = serde_json::from_slice(&reports[0].payload).expect("json report");
    assert_eq!(first["exec_type"], "0");
    tokio::time::sleep(Duration::from_secs_f64(GRACE_SECONDS + 0.5)).await;
    let (pilot, dropcopy) = bed.snapshots().await;
    assert_eq!(pilot.status, Grade::Ok, "{}", pilot.markdown);
    assert_eq!(dropcopy.status, Grade::Ok, "{}", dropcopy.markdown);
    assert_eq!(dropcopy.summary, "7 matched, 0 pending, no open breaks");
    bed.stop().await;
}

#[actix_rt::test]
async fn a_drop_copy_outage_is_degraded_and_the_resend_recovers_without_false_breaks() {
    let bed = bed().await;
    bed.venue.command(json!({"cmd": "dc_block"}));
    bed.wait("the drop copy down", |s| {
        s.dropcopy.status != SessionStatus::Active
    })
    .await;
    bed.order("D1", 100, "10.5").await;
    bed.order("D2", 100, "10.5").await;
    bed.wait("both orders filled on the trading session", |s| {
        recon(s).reports.get("trading") == Some(&4)
    })
    .await;
    // well past the grace window: degraded, no breaks
    tokio::time::sleep(Duration::from_secs_f64(GRACE_SECONDS * 2.0)).await;
    let s = bed.state().await;
    let r = recon(&s);
    assert!(r.degraded, "{r:#?}");
    assert_eq!((r.pending, r.open_break_count), (4, 0), "{r:#?}");
    let (pilot, dropcopy) = bed.snapshots().await;
    assert_eq!(
        pilot.component("dropcopy").expect("dropcopy").status,
        Grade::Warn
    );
    assert_eq!(
        dropcopy.component("coverage").expect("coverage").status,
        Grade::Warn
    );
    assert_eq!(
        dropcopy.component("breaks").expect("breaks").status,
        Grade::Ok
    );

    bed.venue.command(json!({"cmd": "dc_unblock"}));
    let s = bed
        .wait("the resend recovered all 4", |s| {
            recon(s).matched == 4 && !recon(s).degraded
        })
        .await;
    assert!(
        s.dropcopy.poss_dup_in >= 4,
        "the missed copies came as PossDup resends: {:#?}",
        s.dropcopy
    );
    assert!(s.dropcopy.reconnects >= 1);
    assert!(
        s.dropcopy.gaps >= 1 && s.dropcopy.resend_requests >= 1,
        "the gap was recovered by a resend: {:#?}",
        s.dropcopy
    );
    // the venue replays two copies again (PossResend): not counted twice
    bed.venue.command(json!({"cmd": "replay_dc", "n": 2}));
    let s = bed
        .wait("the replays seen as duplicates", |s| {
            recon(s).duplicates == 2
        })
        .await;
    let r = recon(&s);
    assert_eq!(
        (r.matched, r.poss_dup_duplicates, r.open_break_count),
        (4, 2, 0),
        "{r:#?}"
    );
    tokio::time::sleep(Duration::from_secs_f64(GRACE_SECONDS + 0.5)).await;
    let (_, dropcopy) = bed.snapshots().await;
    assert_eq!(dropcopy.status, Grade::Ok, "{}", dropcopy.markdown);
    bed.stop().await;
}

#[actix_rt::test]
async fn an_altered_last_px_on_the_drop_copy_is_a_price_mismatch_with_both_values() {
    let bed = bed().await;
    bed.order("PX-1", 100, "10.5").await;
    let s = bed
        .wait("a price mismatch", |s| {
            open(s, Category::PriceMismatch) == 1
        })
        .await;
    let b = recon(&s).oldest_open_break.clone().expect("the break");
    assert_eq!(b.brk.cl_ord_id, "PX-1");
    let diff = b
        .brk
        .diffs
        .iter()
        .find(|d| d.field == "last_px")
        .expect("last_px differs");
    assert_eq!((diff.left.as_str(), diff.right.as_str()), ("10.5", "10.75"));
    let (pilot, dropcopy) = bed.snapshots().await;
    assert_eq!(
        dropcopy.component("breaks").expect("breaks").status,
        Grade::Fail
    );
    assert!(
        dropcopy
            .markdown
            .contains("last_px trading=10.5 dropcopy=10.75"),
        "{}",
        dropcopy.markdown
    );
    assert_eq!(
        pilot.component("dropcopy").expect("dropcopy").status,
        Grade::Fail
    );
    bed.stop().await;
}

#[actix_rt::test]
async fn a_fill_that_never_reaches_the_drop_copy_is_pending_then_missing() {
    let bed = bed().await;
    bed.order("SKIP-1", 100, "10.5").await;
    let s = bed
        .wait("the fill on the trading session", |s| {
            s.orders.open_orders == 0 && s.orders.total_orders == 1
        })
        .await;
    let r = recon(&s);
    assert_eq!(
        open(&s, Category::MissingOnDropcopy),
        0,
        "inside the window it is pending: {r:#?}"
    );
    assert_eq!(r.pending, 1, "{r:#?}");
    let s = bed
        .wait("missing on the drop copy", |s| {
            open(s, Category::MissingOnDropcopy) == 1
        })
        .await;
    assert_eq!(recon(&s).pending, 0);
    let (_, dropcopy) = bed.snapshots().await;
    assert_eq!(
        dropcopy.component("breaks").expect("breaks").status,
        Grade::Warn
    );
    bed.stop().await;
}

#[actix_rt::test]
async fn a_drop_copy_fill_we_never_saw_is_unexpected_and_other_sessions_are_told_apart() {
    let bed = bed().await;
    bed.venue
        .command(json!({"cmd": "dc_only_fill", "cl_ord_id": "GHOST-1"}));
    bed.venue
        .command(json!({"cmd": "dc_only_fill", "cl_ord_id": "SIB-1", "source": "PILOT2"}));
    let s = bed.wait("pending first", |s| recon(s).pending == 2).await;
    assert_eq!(recon(&s).open_break_count, 0);
    let s = bed
        .wait("unexpected fills", |s| {
            open(s, Category::UnexpectedOnDropcopy) == 1
                && open(s, Category::UnexpectedOtherSession) == 1
        })
        .await;
    assert_eq!(recon(&s).open_break_count, 2);
    let (_, dropcopy) = bed.snapshots().await;
    assert_eq!(dropcopy.status, Grade::Fail, "{}", dropcopy.markdown);
    bed.stop().await;
}

#[actix_rt::test]
async fn a_venue_restart_is_a_counted_reconnect_and_sequence_numbers_continue() {
    let mut bed = bed().await;
    bed.order("R1", 100, "10.5").await;
    let before = bed
        .wait("R1 matched and the sequence numbers polled", |s| {
            recon(s).matched == 2 && s.trading.next_sender_seq.is_some_and(|n| n > 2)
        })
        .await;
    let sender_before = before.trading.next_sender_seq.expect("seq");
    let target_before = before.trading.next_target_seq.expect("seq");
    assert!(
        sender_before > 2 && target_before > 2,
        "{:#?}",
        before.trading
    );

    bed.venue.kill();
    bed.wait("the trading session down", |s| {
        !s.trading.status.is_logged_on()
    })
    .await;
    bed.venue.spawn().await;
    let after = bed
        .wait("both sessions back, sequence numbers polled", |s| {
            s.trading.status == SessionStatus::Active
                && s.dropcopy.status == SessionStatus::Active
                && s.trading.next_sender_seq.is_some_and(|n| n > sender_before)
        })
        .await;
    assert!(after.trading.reconnects >= 1, "{:#?}", after.trading);
    assert!(after.trading.disconnects >= 1);
    assert!(after.dropcopy.reconnects >= 1);
    let seq = after.trading.next_sender_seq.expect("seq");
    assert!(
        seq > sender_before,
        "sequence numbers continue, not reset: {seq} after {sender_before}"
    );
    bed.order("R2", 100, "10.5").await;
    let s = bed
        .wait("R2 matched after the restart", |s| {
            recon(s).matched == 4
                && s.trading
                    .next_target_seq
                    .is_some_and(|n| n > target_before + 2)
        })
        .await;
    assert_eq!(recon(&s).open_break_count, 0, "{:#?}", recon(&s));
    assert_eq!(
        recon(&s).duplicates,
        0,
        "the venue's new ExecIDs did not collide with old ones"
    );
    // the sequence numbers live in the pilot's file store
    assert!(bed.store.read_dir().map(|d| d.count()).unwrap_or(0) > 0);
    bed.stop().await;
}

#[actix_rt::test]
async fn malformed_reports_are_counted_as_rejected_and_the_sessions_stay_up() {
    let bed = bed().await;
    bed.venue
        .command(json!({"cmd": "malformed", "session": "dropcopy", "kind": "missing_exec_id"}));
    bed.venue
        .command(json!({"cmd": "malformed", "session": "trading", "kind": "unknown_exec_type"}));
    bed.venue
        .command(json!({"cmd": "malformed", "session": "dropcopy", "kind": "bad_qty"}));
    let s = bed
        .wait("three rejections", |s| recon(s).rejected == 3)
        .await;
    let r = recon(&s);
    assert_eq!(r.rejected_by_reason.get("missing_tag"), Some(&1), "{r:#?}");
    assert_eq!(r.rejected_by_reason.get("unknown_exec_type"), Some(&1));
    assert_eq!(r.rejected_by_reason.get("not_a_number"), Some(&1));
    assert_eq!((s.trading.rejected, s.dropcopy.rejected), (1, 2));
    assert_eq!(s.trading.status, SessionStatus::Active);
    assert_eq!(s.dropcopy.status, SessionStatus::Active);
    // and the next order still trades and matches
    bed.order("M1", 100, "10.5").await;
    let s = bed.wait("M1 matched", |s| recon(s).matched == 2).await;
    assert_eq!(recon(&s).open_break_count, 0);
    let (pilot, dropcopy) = bed.snapshots().await;
    assert_eq!(
        pilot.component("sessions").expect("sessions").status,
        Grade::Warn
    );
    assert!(pilot
        .component("sessions")
        .expect("sessions")
        .summary
        .contains("3 malformed"));
    assert_eq!(
        dropcopy.component("input").expect("input").status,
        Grade::Warn
    );
    bed.stop().await;
}

#[actix_rt::test]
async fn both_snapshots_appear_in_the_aggregator_summary() {
    let bed = bed().await;
    let env = TestEnv::get();
    let db = env.fresh_database(&bed.ns).await;
    let aggregator = kafka_aggregator(&bed.kafka, &db, &aggregator_settings()).await;
    bed.order("S1", 100, "10.5").await;
    bed.wait("S1 matched", |s| recon(s).matched == 2).await;
    let url = format!("http://{}/api/v1/summary", aggregator.http_addr);
    let domains: Value = wait_until(
        "both fix kinds in the summary",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let body = reqwest::get(url).await.ok()?.text().await.ok()?;
                let json: Value = serde_json::from_str(&body).ok()?;
                let domains = json["domains"].clone();
                (domains[topics::FIX_PILOT]["snapshot"].is_object()
                    && domains[topics::DROPCOPY]["snapshot"].is_object())
                .then_some(domains)
            }
        },
    )
    .await;
    assert_eq!(
        domains[topics::FIX_PILOT]["snapshot"]["source"]["service"],
        "fix-pilot"
    );
    let names: Vec<&str> = domains[topics::DROPCOPY]["snapshot"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["coverage", "matching", "breaks", "input"]);
    aggregator.stop().await;
    bed.stop().await;
}

#[actix_rt::test]
async fn a_platform_with_its_own_gateway_feeds_its_execution_reports_from_kafka() {
    // pilot A is only a gateway (trading session, no drop copy): it publishes the execution
    // reports it receives on execution.reports; pilot B reconciles that topic against the
    // drop copy (executions_source = "kafka"), as a platform with its own gateway would
    let bed = bed().await;
    let _ = bed.pilot.send(Shutdown).await;
    let store_a = bed.store.join("a");
    let mut gateway = bed.venue.pilot_settings(&bed.ns, &store_a);
    gateway.dropcopy.port = 0;
    gateway.consumer_group = format!("{}-gateway", bed.ns);
    let mut reconciler = bed.venue.pilot_settings(&bed.ns, &bed.store.join("b"));
    reconciler.trading.port = 0;
    reconciler.executions_source = telemesh_fix_pilot::ExecutionsSource::Kafka;
    reconciler.consumer_group = format!("{}-reconciler", bed.ns);
    let (a_service, a) = start_domain(gateway, &bed.kafka, "gateway");
    let (b_service, b) = start_domain(reconciler, &bed.kafka, "reconciler");
    let wait = |addr: Addr<FixPilotService>, what: &'static str, check: fn(&PilotState) -> bool| async move {
        wait_until(what, Duration::from_secs(60), || {
            let addr = addr.clone();
            async move {
                let s = addr.send(GetState).await.ok()?;
                check(&s).then_some(s)
            }
        })
        .await
    };
    wait(a.clone(), "the gateway logged on", |s| {
        s.trading.status == SessionStatus::Active
    })
    .await;
    wait(b.clone(), "the drop copy logged on", |s| {
        s.dropcopy.status == SessionStatus::Active
    })
    .await;
    let order = NewOrder {
        cl_ord_id: "G1".into(),
        symbol: "AAPL".into(),
        side: Side::Sell,
        order_qty: Fixed::from_int(10),
        price: Some(Fixed::parse("99.5").expect("price")),
        account: None,
    };
    a.send(Submit(OrderRequest::New(order)))
        .await
        .expect("gateway answers")
        .expect("order accepted");
    let s = wait(b.clone(), "both executions matched from kafka", |s| {
        s.recon.as_ref().is_some_and(|r| r.matched == 2)
    })
    .await;
    let r = recon(&s);
    assert_eq!(
        (r.reports.get("trading"), r.open_break_count),
        (Some(&2), 0),
        "{r:#?}"
    );
    assert_eq!(
        s.orders.total_orders, 1,
        "the platform's orders are modelled from its reports"
    );
    let (pilot, _) = run_now(&b_service).await;
    assert_eq!(
        pilot.component("sessions").expect("sessions").status,
        Grade::Ok,
        "no trading session is needed: {}",
        pilot.markdown
    );
    a_service.stop(false).await;
    b_service.stop(false).await;
}

#[actix_rt::test]
async fn replayed_aged_duplicate_and_hostile_order_requests_are_rejected_with_reasons() {
    let bed = bed().await;
    let mut events = Events::new(&bed.kafka);
    gateway_consuming(&bed.kafka, &mut events).await;
    let now = chrono::Utc::now();
    let g1 = new_order_json("G1", Some(now)).to_string().into_bytes();
    let requests: Vec<(&str, Vec<u8>, &str)> = vec![
        ("G1", g1.clone(), "sent"),
        // the same request again: its ClOrdID is taken
        ("G1", g1.clone(), "rejected:duplicate_cl_ord_id"),
        (
            "G2",
            new_order_json("G2", Some(now - chrono::Duration::minutes(10)))
                .to_string()
                .into_bytes(),
            "rejected:aged",
        ),
        (
            "G3",
            new_order_json("G3", Some(now + chrono::Duration::hours(1)))
                .to_string()
                .into_bytes(),
            "rejected:from_the_future",
        ),
        // no created_at: aged by its Kafka timestamp, fresh here
        ("G4", new_order_json("G4", None).to_string().into_bytes(), "sent"),
        (
            "G5",
            json!({"type": "cancel", "cl_ord_id": "G5", "orig_cl_ord_id": "NOPE"})
                .to_string()
                .into_bytes(),
            "rejected:unknown_order",
        ),
        (
            "G6",
            new_order_json("G\u{1}6", Some(now)).to_string().into_bytes(),
            "rejected:invalid",
        ),
        ("bad", b"not json at all".to_vec(), "rejected:invalid"),
        ("bad", vec![0xff; 64 * 1024], "rejected:invalid"),
        (
            "G7",
            json!({"type": "new", "cl_ord_id": "G7", "symbol": "AAPL", "side": "buy", "order_qty": "-5"})
                .to_string()
                .into_bytes(),
            "rejected:invalid",
        ),
    ];
    let mut offsets = Vec::new();
    for (key, payload, expected) in &requests {
        offsets.push((
            publish_request(&bed.kafka, key, payload.clone()).await,
            *expected,
        ));
    }
    events
        .until(
            "an answer to every request",
            Duration::from_secs(60),
            |seen| offsets.iter().all(|(o, _)| !answers(seen, *o).is_empty()),
        )
        .await;
    for (offset, expected) in &offsets {
        assert_eq!(
            answers(&events.seen, *offset),
            [*expected],
            "request at offset {offset}: {:#?}",
            events.seen
        );
    }
    let venue_has = |orders: &Value| orders["received"] == json!({"G1": 1, "G4": 1});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !venue_has(&bed.venue.orders()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the venue got {}",
            bed.venue.orders()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // the pilot restarts with its group's offsets reset to the start of the topic (lost or
    // reset by an operator): it reads every request again; nothing reaches the venue twice
    let _ = bed.pilot.send(Shutdown).await;
    let mut settings = bed.venue.pilot_settings(&bed.ns, &bed.store);
    settings.consumer_group = format!("{}-fix-pilot-reset", bed.ns);
    reset_group_to_start(&bed.kafka, &settings.consumer_group);
    let (pilot_service, _pilot) = start_domain(settings, &bed.kafka, &bed.ns);
    let replayed = |seen: &[Value]| offsets.iter().all(|(o, _)| answers(seen, *o).len() == 2);
    events
        .until(
            "a second answer to every replayed request",
            Duration::from_secs(60),
            replayed,
        )
        .await;
    for (offset, expected) in &offsets {
        let again = match *expected {
            "sent" => "sent:replayed",
            other => other,
        };
        assert_eq!(
            answers(&events.seen, *offset),
            [*expected, again],
            "request at offset {offset}"
        );
    }
    // the platform publishes G1 again after the restart: the journal remembers it
    let offset = publish_request(&bed.kafka, "G1", g1).await;
    events
        .until(
            "the re-published G1 answered",
            Duration::from_secs(60),
            |seen| !answers(seen, offset).is_empty(),
        )
        .await;
    assert_eq!(
        answers(&events.seen, offset),
        ["rejected:duplicate_cl_ord_id"]
    );
    let orders = bed.venue.orders();
    assert!(venue_has(&orders), "nothing was sent twice: {orders}");
    assert_eq!(orders["duplicates"], 0, "{orders}");
    pilot_service.stop(false).await;
}

/// Commits offset 0 of the orders topic for the (empty) consumer group `group`, as
/// `kafka-consumer-groups --reset-offsets --to-earliest` would.
fn reset_group_to_start(kafka: &KafkaSettings, group: &str) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("admin consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(
        &topics::topic_name(&kafka.topic_prefix, "execution.orders"),
        0,
        rdkafka::Offset::Offset(0),
    )
    .expect("partition");
    consumer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("cannot reset {group}: {e}"));
}

/// The built `telemesh` binary: `TELEMESH_BIN`, else next to this test's directory
/// (`target/debug/telemesh`, built by `cargo build -p telemesh` or `cargo test --workspace`).
fn telemesh_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TELEMESH_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|debug| debug.join("telemesh"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p telemesh` first (or set TELEMESH_BIN)",
        bin.display()
    );
    bin
}

/// `telemesh serve fix-pilot` as its own process, killed with SIGKILL when asked or dropped.
struct PilotProcess {
    child: Child,
}

impl PilotProcess {
    fn spawn(config: &Path, log: &Path) -> PilotProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("pilot log");
        let child = Command::new(telemesh_bin())
            .args(["serve", "fix-pilot", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("run telemesh serve fix-pilot");
        PilotProcess { child }
    }

    /// SIGKILL (`Child::kill` on Unix), no shutdown of any kind.
    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PilotProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

#[actix_rt::test]
async fn a_kill_9_of_the_pilot_between_queue_and_send_neither_loses_nor_duplicates_an_order() {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    let specs: Vec<TopicSpec> = [
        "execution.orders",
        "execution.reports",
        "execution.order_events",
    ]
    .iter()
    .map(|t| TopicSpec {
        name: topics::topic_name(&kafka.topic_prefix, t),
        partitions: 1,
        replication_factor: 1,
    })
    .collect();
    ensure_topics(&kafka, &specs).await.expect("gateway topics");
    let tmp = TempDirKeep(Some(tempfile::tempdir().expect("temp dir")));
    let dir = tmp.0.as_ref().expect("dir").path().to_owned();
    // the venue is not up yet: requests queue in the gateway, waiting for the session
    let mut venue = Venue::not_started(&dir.join("venue"));
    let config = dir.join("pilot.toml");
    std::fs::write(
        &config,
        format!(
            r#"[http]
addr = "127.0.0.1:0"

[kafka]
brokers = "{brokers}"
topic_prefix = "{prefix}"
client_id = "{ns}-pilot"
encoding = "json"

[fix_pilot]
interval_seconds = 1
consumer_group = "{ns}-fix-pilot"
session_wait_seconds = 120
max_request_age_seconds = 600
gateway_store_dir = "{store}/gateway"

[fix_pilot.trading]
host = "127.0.0.1"
port = {port}
sender_comp_id = "PILOT"
target_comp_id = "VENUE"
heartbeat_interval_seconds = 5
store_dir = "{store}"
reconnect_interval_seconds = 1
logon_timeout_seconds = 5
"#,
            brokers = kafka.brokers,
            prefix = kafka.topic_prefix,
            store = dir.join("pilot-store").display(),
            port = venue.trading_port,
        ),
    )
    .expect("pilot config");
    let log = dir.join("pilot.log");
    let mut pilot = PilotProcess::spawn(&config, &log);
    let mut events = Events::new(&kafka);
    gateway_consuming(&kafka, &mut events).await;

    // 1. killed while the first request waits for the session (queued, not sent)
    let now = chrono::Utc::now();
    let first: Vec<String> = (1..=5).map(|i| format!("Q{i}")).collect();
    for cl in &first {
        publish_request(
            &kafka,
            cl,
            new_order_json(cl, Some(now)).to_string().into_bytes(),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        first.iter().all(|cl| events.of(cl).is_empty()),
        "nothing is answered while the session is down: {:#?}",
        events.seen
    );
    pilot.kill_9();
    venue.spawn().await;
    let mut pilot = PilotProcess::spawn(&config, &log);
    events
        .until(
            "the queued requests sent after the restart",
            Duration::from_secs(90),
            |seen| {
                first
                    .iter()
                    .all(|cl| of(seen, cl).contains(&"sent".to_owned()))
            },
        )
        .await;

    // 2. killed in the middle of a burst, twice
    let burst: Vec<String> = (1..=30).map(|i| format!("B{i}")).collect();
    for cl in &burst {
        publish_request(
            &kafka,
            cl,
            new_order_json(cl, Some(chrono::Utc::now()))
                .to_string()
                .into_bytes(),
        )
        .await;
    }
    for round in 0..2 {
        let sent_before = events
            .seen
            .iter()
            .filter(|e| e["outcome"] == "sent")
            .count();
        events
            .until(
                "a few more of the burst sent",
                Duration::from_secs(60),
                |seen| {
                    seen.iter().filter(|e| e["outcome"] == "sent").count()
                        >= sent_before + 3 + round
                },
            )
            .await;
        pilot.kill_9();
        pilot = PilotProcess::spawn(&config, &log);
    }
    events
        .until(
            "every request of the burst sent",
            Duration::from_secs(120),
            |seen| {
                burst
                    .iter()
                    .all(|cl| of(seen, cl).contains(&"sent".to_owned()))
            },
        )
        .await;
    // a kill between the send and the offset commit answers `sent` again (replayed), never
    // anything else
    for cl in first.iter().chain(&burst) {
        let answers = events.of(cl);
        assert!(
            answers.iter().all(|a| a == "sent"),
            "{cl}: {answers:?} (pilot log in {})",
            log.display()
        );
    }
    // the venue: every order exactly once
    let expected: serde_json::Map<String, Value> = first
        .iter()
        .chain(&burst)
        .map(|cl| (cl.clone(), json!(1)))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let orders = venue.orders();
        if orders["accepted"] == Value::Object(expected.clone()) {
            eprintln!(
                "venue: {} orders accepted once each; {} duplicate NewOrderSingles refused, {} PossResend",
                expected.len(),
                orders["duplicates"],
                orders["poss_resend"]
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the venue's orders: {orders}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    pilot.kill_9();
}

/// Execution readiness (`telemetry.operational.execution`) graded from the live order book
/// against the real venue: fills, the venue's rejections by reason, order→ack and
/// order→fill latency samples, the drop-copy session; the snapshot journaled once in
/// `execution_snapshots` and served by `/api/v1/execution/journal` and the summary.
#[actix_rt::test]
async fn execution_readiness_is_graded_from_the_live_order_book_and_journaled() {
    let bed = bed().await;
    let env = TestEnv::get();
    let db = env.fresh_database(&bed.ns).await;
    let aggregator = kafka_aggregator(&bed.kafka, &db, &aggregator_settings()).await;
    for cl in ["E1", "E2", "E3", "REJ-1", "REJ-2"] {
        bed.order(cl, 10, "10.5").await;
    }
    bed.wait("five orders answered", |s| {
        s.orders.total_orders == 5 && s.orders.rejected_orders == 2 && s.orders.open_orders == 0
    })
    .await;
    let execution = bed
        .service
        .handle()
        .run_now()
        .await
        .into_iter()
        .find(|s| s.kind == topics::EXECUTION)
        .expect("execution snapshot");
    assert_eq!(execution.kind, topics::EXECUTION);
    assert_eq!(execution.metrics["orders_submitted"], 5.0);
    assert_eq!(execution.metrics["orders_executed"], 3.0);
    assert_eq!(execution.metrics["orders_failed"], 2.0);
    assert_eq!(execution.metrics["fill_rate"], 0.6);
    assert_eq!(execution.metrics["failure_rate"], 0.4);
    assert!(execution.metrics["ack_p99_ms"] >= execution.metrics["ack_p50_ms"]);
    assert!(execution.metrics.contains_key("fill_p50_ms"));
    // 40% rejected with 5 orders (>= min_orders_for_fail): fail, by reason
    assert_eq!(execution.status, Grade::Fail, "{}", execution.summary);
    let rejections = execution.component("rejections").expect("rejections");
    let by_reason = serde_json::to_value(&rejections.details["by_reason"]).expect("json");
    assert_eq!(
        by_reason[0]["reason"], "rejected by test venue",
        "{by_reason}"
    );
    assert_eq!(by_reason[0]["total"], 2);
    assert_eq!(by_reason[0]["recent"], 2);
    let latency = execution.component("latency").expect("latency");
    let ack = serde_json::to_value(&latency.details["order_to_ack"]).expect("json");
    assert_eq!(ack["samples"], 5, "{ack}");
    let fill = serde_json::to_value(&latency.details["order_to_fill"]).expect("json");
    assert_eq!(fill["samples"], 3, "{fill}");
    let connection = execution.component("connection").expect("connection");
    assert_eq!(connection.status, Grade::Ok);
    let drop_copy = execution.component("drop_copy").expect("drop_copy");
    assert_eq!(drop_copy.status, Grade::Ok, "{}", drop_copy.summary);
    let sessions =
        serde_json::to_value(&execution.component("sessions").expect("sessions").details["active"])
            .expect("json");
    assert_eq!(sessions, json!(["trading", "dropcopy"]));

    // journaled once, served by the API and the summary
    let url = format!(
        "http://{}/api/v1/execution/journal?limit=50",
        aggregator.http_addr
    );
    let journal: Value = wait_until(
        "the execution snapshot in the execution journal",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            let id = execution.id.to_string();
            async move {
                let body: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
                body["entries"]
                    .as_array()?
                    .iter()
                    .any(|e| e["snapshot_id"] == id.as_str())
                    .then_some(body)
            }
        },
    )
    .await;
    let id = execution.id.to_string();
    let rows: Vec<&Value> = journal["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["snapshot_id"] == id.as_str())
        .collect();
    assert_eq!(rows.len(), 1, "journaled once: {journal}");
    assert_eq!(rows[0]["orders_submitted"], 5);
    assert_eq!(rows[0]["orders_failed"], 2);
    assert_eq!(rows[0]["status"], "fail");
    assert_eq!(rows[0]["connection_healthy"], true);
    assert_eq!(rows[0]["drop_copy_active"], true);
    let bad = reqwest::get(format!(
        "http://{}/api/v1/execution/journal?limit=0",
        aggregator.http_addr
    ))
    .await
    .expect("answer");
    assert_eq!(bad.status().as_u16(), 400);
    let summary_url = format!("http://{}/api/v1/summary", aggregator.http_addr);
    let summary: Value = wait_until(
        "the execution journal block in the summary",
        Duration::from_secs(60),
        || {
            let url = summary_url.clone();
            async move {
                let body: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
                (body["execution_journal"]["latest"]["orders_submitted"] == 5
                    && body["domains"][topics::EXECUTION]["snapshot"].is_object())
                .then_some(body)
            }
        },
    )
    .await;
    assert!(
        summary["execution_journal"]["totals"]["total_snapshots"]
            .as_i64()
            .is_some_and(|n| n >= 1),
        "{}",
        summary["execution_journal"]
    );
    aggregator.stop().await;
    bed.stop().await;
}
