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

use actix::{Actor, Addr};
use serde_json::{json, Value};
use telemesh_core::config::KafkaSettings;
use telemesh_core::transport::kafka::{ensure_topics, KafkaPublisher, TopicSpec};
use telemesh_core::transport::{OutboundMessage, Publisher, SnapshotPublisher};
use telemesh_core::{topics, Encoding, Grade, Snapshot, Source};
use telemesh_fix_pilot::codes::Side;
use telemesh_fix_pilot::gateway::OrderRequest;
use telemesh_fix_pilot::orders::NewOrder;
use telemesh_fix_pilot::state::{PilotState, SessionStatus};
use telemesh_fix_pilot::{
    Category, FixPilotService, FixPilotSettings, Fixed, GetState, PublishNow, SessionSettings,
    Shutdown, Submit,
};
use telemesh_integration_tests::fixtures::{
    aggregator_settings, create_topics, kafka_aggregator, read_topic,
};
use telemesh_integration_tests::{namespace, wait_until, TestEnv};

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
        let mut venue = Venue {
            child: None,
            dir: dir.to_owned(),
            trading_port: free_port(),
            dropcopy_port: free_port(),
            control_port: free_port(),
        };
        venue.spawn().await;
        venue
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
            ..FixPilotSettings::default()
        }
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
    pilot: Addr<FixPilotService>,
    kafka: KafkaSettings,
    store: PathBuf,
    ns: String,
}

async fn start_pilot(
    venue: &Venue,
    ns: &str,
    kafka: &KafkaSettings,
    store: &Path,
) -> Addr<FixPilotService> {
    let transport: Arc<dyn Publisher> =
        Arc::new(KafkaPublisher::new(kafka).expect("kafka publisher"));
    let publisher = SnapshotPublisher::new(transport, Encoding::Json, kafka.topic_prefix.clone());
    FixPilotService::new(
        venue.pilot_settings(ns, store),
        kafka.clone(),
        Source::new("fix-pilot", ns),
        publisher,
    )
    .start()
}

async fn bed() -> Bed {
    let env = TestEnv::get();
    let ns = namespace();
    let kafka = env.kafka(&ns);
    create_topics(&kafka, 1).await;
    let specs: Vec<TopicSpec> = ["execution.orders", "execution.reports"]
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
    let pilot = start_pilot(&venue, &ns, &kafka, &store).await;
    let bed = Bed {
        _tmp: TempDirKeep(Some(tmp)),
        venue,
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
        let s = self.pilot.send(PublishNow).await.expect("pilot answers");
        (
            s.pilot.expect("pilot snapshot"),
            s.dropcopy.expect("dropcopy snapshot"),
        )
    }

    async fn stop(self) {
        let _ = self.pilot.send(Shutdown).await;
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

#[actix_rt::test]
async fn orders_from_kafka_fill_and_every_fill_is_matched() {
    let bed = bed().await;
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
    let start = |settings: FixPilotSettings, name: &str| {
        let transport: Arc<dyn Publisher> =
            Arc::new(KafkaPublisher::new(&bed.kafka).expect("kafka publisher"));
        let publisher =
            SnapshotPublisher::new(transport, Encoding::Json, bed.kafka.topic_prefix.clone());
        FixPilotService::new(
            settings,
            bed.kafka.clone(),
            Source::new("fix-pilot", name),
            publisher,
        )
        .start()
    };
    let a = start(gateway, "gateway");
    let b = start(reconciler, "reconciler");
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
    let snapshots = b.send(PublishNow).await.expect("reconciler answers");
    let pilot = snapshots.pilot.expect("pilot snapshot");
    assert_eq!(
        pilot.component("sessions").expect("sessions").status,
        Grade::Ok,
        "no trading session is needed: {}",
        pilot.markdown
    );
    let _ = a.send(Shutdown).await;
    let _ = b.send(Shutdown).await;
}
