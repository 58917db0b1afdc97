//! Owns the generic domain service: the actor that runs a [`Domain`] on its timer without
//! overlap, keeps its last snapshots, publishes them, and the handle routes use to reach it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context};
use chrono::Utc;
use futures::future::BoxFuture;
use telemesh_core::transport::SnapshotPublisher;
use telemesh_core::{Component, Grade, Snapshot, Source};
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::domain::{Domain, Evaluation};
use crate::http;
use crate::metrics::ServiceMetrics;

/// How a domain service is started.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The instance name of the snapshots' source (`[service] instance`).
    pub instance: String,
    /// Where snapshots go.
    pub publisher: SnapshotPublisher,
    /// The HTTP address (`127.0.0.1:0` in tests); `None` serves no HTTP (its routes are then
    /// unreachable: only for embedding where another server is the front door).
    pub http_addr: Option<String>,
}

/// Why a domain service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot listen on {addr}: {detail}; set [http] addr (TELEMESH__HTTP__ADDR) to a free address")]
    Bind { addr: String, detail: String },
}

type RunNow = Arc<dyn Fn() -> BoxFuture<'static, Vec<Snapshot>> + Send + Sync>;

/// What routes and the binary hold of a running domain service: its last snapshots and a way to
/// run it now.
#[derive(Clone)]
pub struct ServiceHandle {
    core: Arc<Core>,
    run_now: RunNow,
}

impl std::fmt::Debug for ServiceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceHandle")
            .field("name", &self.core.name)
            .field("source", &self.core.source)
            .finish_non_exhaustive()
    }
}

impl ServiceHandle {
    /// The domain's service name.
    pub fn name(&self) -> &'static str {
        self.core.name
    }

    /// The source its snapshots carry.
    pub fn source(&self) -> &Source {
        &self.core.source
    }

    /// The last snapshot of each kind, in kind order (empty before the first gather finished).
    pub fn latest(&self) -> Vec<Snapshot> {
        self.core
            .latest
            .read()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The last snapshot of `kind`, if any.
    pub fn latest_of(&self, kind: &str) -> Option<Snapshot> {
        self.core
            .latest
            .read()
            .ok()
            .and_then(|l| l.get(kind).cloned())
    }

    /// Runs one gather → evaluate → publish now (after the one in progress, if any) and returns
    /// what it produced, once published (or given up on, as the timer's would be).
    pub async fn run_now(&self) -> Vec<Snapshot> {
        (self.run_now)().await
    }

    /// The publisher the service publishes through.
    pub fn publisher(&self) -> &SnapshotPublisher {
        &self.core.publisher
    }
}

/// What the actor, the handle and the HTTP server share.
pub(crate) struct Core {
    pub name: &'static str,
    pub kinds: Vec<&'static str>,
    pub source: Source,
    pub publisher: SnapshotPublisher,
    pub latest: RwLock<BTreeMap<String, Snapshot>>,
    pub metrics: ServiceMetrics,
}

impl Core {
    fn keep(&self, snapshots: &[Snapshot]) {
        let Ok(mut latest) = self.latest.write() else {
            return;
        };
        for snapshot in snapshots {
            let changed = latest
                .get(&snapshot.kind)
                .is_none_or(|l| l.status != snapshot.status);
            if changed {
                tracing::info!(service = self.name, kind = %snapshot.kind, status = %snapshot.status, summary = %snapshot.summary, "domain status");
            } else {
                tracing::debug!(service = self.name, kind = %snapshot.kind, status = %snapshot.status, summary = %snapshot.summary, "domain status");
            }
            latest.insert(snapshot.kind.clone(), snapshot.clone());
        }
    }
}

/// One cycle: gather (bounded) or the not-configured block, evaluate, keep, publish.
async fn cycle<D: Domain>(domain: &mut D, core: &Core) -> Vec<Snapshot> {
    let span = journey_span(core);
    let snapshots = async {
        let snapshots = if let Some(missing) = domain.not_configured() {
            let at = Evaluation {
                source: core.source.clone(),
                now: Utc::now(),
            };
            core.kinds
                .iter()
                .map(|kind| missing.snapshot(kind, core.name, &at))
                .collect()
        } else {
            let limit = domain.gather_timeout();
            let started = Instant::now();
            core.metrics.gathers.inc();
            let gathered = tokio::time::timeout(limit, domain.gather()).await;
            core.metrics
                .gather_seconds
                .observe(started.elapsed().as_secs_f64());
            let at = Evaluation {
                source: core.source.clone(),
                now: Utc::now(),
            };
            match gathered {
                Ok(state) => domain.evaluate(&state, &at),
                Err(_) => {
                    core.metrics.gather_timeouts.inc();
                    tracing::warn!(
                        service = core.name,
                        timeout_ms = limit.as_millis() as u64,
                        "gather timed out; graded fail"
                    );
                    timed_out(core, limit, &at)
                }
            }
        };
        if let [only] = snapshots.as_slice() {
            let span = tracing::Span::current();
            span.record("telemesh.snapshot.id", only.id.to_string());
            span.record("telemesh.snapshot.status", only.status.to_string());
        }
        core.keep(&snapshots);
        for snapshot in &snapshots {
            core.publisher.publish_or_log(snapshot).await;
        }
        snapshots
    }
    .instrument(span)
    .await;
    snapshots
}

/// The `fail` snapshots of a gather that overran its timeout.
fn timed_out(core: &Core, limit: Duration, at: &Evaluation) -> Vec<Snapshot> {
    core.kinds
        .iter()
        .map(|kind| {
            let mut snapshot = Snapshot::new(*kind, at.source.clone(), at.now);
            snapshot.status = Grade::Fail;
            snapshot.summary = format!(
                "{} could not gather its state within {:.1} s; check what it watches is reachable, or raise its timeout",
                core.name,
                limit.as_secs_f64()
            );
            snapshot.push(
                Component::new("gather", Grade::Fail, snapshot.summary.clone())
                    .detail("timeout_ms", limit.as_millis() as i64),
            );
            snapshot.markdown = snapshot.render_markdown(core.name);
            snapshot
        })
        .collect()
}

/// The root span of one cycle's snapshots (gather → evaluate → publish → … → journal).
fn journey_span(core: &Core) -> tracing::Span {
    let kind = core.kinds.first().copied().unwrap_or_default();
    tracing::info_span!(
        parent: None,
        "evaluate",
        otel.name = %format!("evaluate {}", if core.kinds.len() == 1 { kind } else { core.name }),
        telemesh.service = core.name,
        telemesh.snapshot.kind = kind,
        telemesh.source = %core.source.key(),
        telemesh.snapshot.id = tracing::field::Empty,
        telemesh.snapshot.status = tracing::field::Empty,
    )
}

/// The actor owning a domain's timer.
struct DomainService<D: Domain> {
    domain: Arc<Mutex<D>>,
    core: Arc<Core>,
    interval: Duration,
}

impl<D: Domain> DomainService<D> {
    fn tick(&mut self) {
        let Ok(mut domain) = Arc::clone(&self.domain).try_lock_owned() else {
            self.core.metrics.skipped_ticks.inc();
            tracing::warn!(
                service = self.core.name,
                "previous gather still running; skipping this tick (raise the domain's interval if this repeats)"
            );
            return;
        };
        let core = Arc::clone(&self.core);
        // spawned on the runtime, not the actor's context: stopping the timer lets a gather in
        // progress finish (shutdown waits for it through the domain's lock)
        actix_rt::spawn(async move {
            cycle(&mut *domain, &core).await;
        });
    }
}

impl<D: Domain> Actor for DomainService<D> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(
            service = self.core.name,
            interval_ms = self.interval.as_millis() as u64,
            "domain service started"
        );
        self.tick();
        ctx.run_interval(self.interval, |act, _| act.tick());
    }
}

/// A started domain service.
pub struct RunningService {
    handle: ServiceHandle,
    http_addr: Option<SocketAddr>,
    server: Option<actix_web::dev::ServerHandle>,
    stop: Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>,
    timer: actix::Recipient<StopTimer>,
}

impl std::fmt::Debug for RunningService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningService")
            .field("name", &self.handle.name())
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

/// Stops a domain service's timer (a gather in progress runs to its end).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub(crate) struct StopTimer;

impl<D: Domain> actix::Handler<StopTimer> for DomainService<D> {
    type Result = ();

    fn handle(&mut self, _: StopTimer, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl RunningService {
    /// The handle routes and the binary use.
    pub fn handle(&self) -> &ServiceHandle {
        &self.handle
    }

    /// Where its HTTP server listens, when it serves HTTP.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Stops the timer, stops the HTTP server (finishing requests in flight), waits for a running
    /// gather, calls the domain's `stop`; with `depart`, publishes a departed snapshot per kind (bounded: 5 s per kind) so
    /// the aggregator retires this instance at once.
    pub async fn stop(self, depart: bool) {
        let _ = self.timer.send(StopTimer).await;
        if let Some(server) = self.server {
            server.stop(true).await;
        }
        (self.stop)().await;
        if depart {
            let core = &self.handle.core;
            core.publisher
                .publish_departed(&core.kinds, &core.source, Duration::from_secs(5))
                .await;
        }
    }
}

/// Starts `domain` as a service: its timer (first gather at once), its HTTP server when
/// `options.http_addr` is set. Must run inside an actix system.
pub fn start<D: Domain>(
    domain: D,
    options: ServiceOptions,
) -> Result<RunningService, ServiceError> {
    let name = domain.name();
    let core = Arc::new(Core {
        name,
        kinds: domain.kinds(),
        source: Source::new(name, options.instance.clone()),
        publisher: options.publisher.clone(),
        latest: RwLock::new(BTreeMap::new()),
        metrics: ServiceMetrics::default(),
    });
    let interval = domain.interval().max(Duration::from_millis(10));
    let mut registry = telemesh_core::metrics::service_registry(name, env!("CARGO_PKG_VERSION"));
    core.metrics.register(&mut registry);
    domain.register_metrics(&mut registry);
    let domain = Arc::new(Mutex::new(domain));
    let run_now: RunNow = {
        let (domain, core) = (Arc::clone(&domain), Arc::clone(&core));
        Arc::new(move || {
            let (domain, core) = (Arc::clone(&domain), Arc::clone(&core));
            Box::pin(async move {
                let mut domain = domain.lock().await;
                cycle(&mut *domain, &core).await
            })
        })
    };
    let handle = ServiceHandle {
        core: Arc::clone(&core),
        run_now,
    };
    let routes = domain.try_lock().ok().and_then(|d| d.routes(&handle));
    let (http_addr, server) = match &options.http_addr {
        Some(addr) => {
            let (bound, server) = http::serve(addr, handle.clone(), registry, routes)?;
            (Some(bound), Some(server))
        }
        None => (None, None),
    };
    let timer = DomainService {
        domain: Arc::clone(&domain),
        core,
        interval,
    }
    .start()
    .recipient();
    let stop = Box::new(move || -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut domain = domain.lock().await;
            domain.stop().await;
        })
    });
    Ok(RunningService {
        handle,
        http_addr,
        server,
        stop,
        timer,
    })
}
