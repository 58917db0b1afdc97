//! Owns logging and tracing setup: human-readable lines by default, JSON lines (tagged with
//! service, instance, version and the operator's `[log] context`) when configured, with a
//! `RUST_LOG`-style filter from `[log] level`; and, when `[tracing]` is enabled, OpenTelemetry
//! spans exported over OTLP (gRPC or HTTP) plus the W3C `traceparent` helpers that carry a
//! trace across message headers.
//!
//! Export never blocks the caller: finished spans go into a bounded queue with `try_send`
//! (full → dropped and counted in `telemesh_tracing_spans_dropped_total`), drained by a
//! dedicated thread that owns its own tokio runtime and the OTLP exporter, so an absent or
//! hanging collector only fills the queue.

use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, Span as SdkSpan, SpanData, SpanExporter as _, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LogSettings, OtlpProtocol, TracingSettings};
use crate::metrics::TracingStats;
use crate::transport::Headers;

/// Why logging or tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {detail}; use e.g. `info` or `info,telemesh_aggregator=debug`")]
    Filter { filter: String, detail: String },
    #[error("invalid [log] context: {0}")]
    Context(String),
    #[error("cannot start the OTLP exporter for {endpoint}: {detail}; check [tracing] endpoint and protocol (or OTEL_EXPORTER_OTLP_ENDPOINT)")]
    Exporter { endpoint: String, detail: String },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Who this process is: stamped on every JSON log line, the spans' resource and build info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The service name without the `telemesh-` prefix, e.g. `aggregator`.
    pub service: String,
    pub instance: String,
    pub version: String,
}

impl Identity {
    pub fn new(
        service: impl Into<String>,
        instance: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            service: service.into(),
            instance: instance.into(),
            version: version.into(),
        }
    }
}

static IDENTITY: OnceLock<Identity> = OnceLock::new();

/// The identity given to [`init`], if it ran in this process.
pub fn identity() -> Option<&'static Identity> {
    IDENTITY.get()
}

/// Keeps the span export pipeline alive; dropping it flushes what is queued (bounded by the
/// export timeout) and stops the export thread.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    stats: TracingStats,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn tracing_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// The export counters of this pipeline.
    pub fn stats(&self) -> &TracingStats {
        &self.stats
    }

    /// Exports every queued span now; blocks the calling thread up to the export timeout, so
    /// call it only off the actix threads or at shutdown.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber for this process (writing to stderr), records `identity`
/// and, when enabled, starts span export counted in [`crate::metrics::global`].
pub fn init(
    log: &LogSettings,
    tracing: &TracingSettings,
    identity: &Identity,
) -> Result<Telemetry, TelemetryError> {
    let (dispatch, telemetry) = build(
        log,
        tracing,
        identity,
        crate::metrics::global().tracing.clone(),
        BoxMakeWriter::new(std::io::stderr),
    )?;
    dispatch
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    let _ = IDENTITY.set(identity.clone());
    if telemetry.tracing_enabled() {
        ::tracing::info!(
            endpoint = %tracing.resolved_endpoint(),
            protocol = ?tracing.protocol,
            "exporting traces over OTLP"
        );
    }
    Ok(telemetry)
}

/// Builds a subscriber without installing it (tests install it per thread with
/// `tracing::dispatcher::set_default`): log lines go to `writer`, span export counts go to
/// `stats`.
pub fn build(
    log: &LogSettings,
    tracing: &TracingSettings,
    identity: &Identity,
    stats: TracingStats,
    writer: BoxMakeWriter,
) -> Result<(Dispatch, Telemetry), TelemetryError> {
    let filter = log_filter(&log.level)?;
    let context = log
        .context_fields()
        .map_err(|e| TelemetryError::Context(e.to_string()))?;
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    match log.format {
        LogFormat::Human => layers.push(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_filter(filter)
                .boxed(),
        ),
        LogFormat::Json => layers.push(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines::new(identity, &context))
                .with_writer(writer)
                .with_filter(filter)
                .boxed(),
        ),
    }
    let provider = if tracing.enabled {
        let provider = tracer_provider(tracing, identity, stats.clone())?;
        let tracer = provider.tracer("telemesh");
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                    meta.target().starts_with("telemesh") && *meta.level() <= Level::INFO
                }))
                .boxed(),
        );
        Some(provider)
    } else {
        None
    };
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layers));
    Ok((dispatch, Telemetry { provider, stats }))
}

/// The filter of log lines: a plain `target=level` list is a [`Targets`] filter; anything
/// richer (span or field directives) falls back to [`EnvFilter`].
fn log_filter(
    level: &str,
) -> Result<Box<dyn tracing_subscriber::layer::Filter<Registry> + Send + Sync>, TelemetryError> {
    if let Ok(targets) = level.trim().parse::<Targets>() {
        if !level.contains('[') {
            return Ok(Box::new(targets));
        }
    }
    let filter = EnvFilter::try_new(level).map_err(|e| TelemetryError::Filter {
        filter: level.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(Box::new(filter))
}

// ---------------------------------------------------------------------------------------------
// JSON lines

/// One JSON object per event: timestamp, level, target, the event's fields, the names of the
/// spans it happened in, the operator's context fields, then service, instance and version.
#[derive(Debug, Clone)]
struct JsonLines {
    fixed: Map<String, Value>,
}

impl JsonLines {
    fn new(identity: &Identity, context: &[(String, String)]) -> Self {
        let mut fixed = Map::new();
        for (k, v) in context {
            fixed.insert(k.clone(), Value::String(v.clone()));
        }
        fixed.insert("service".into(), identity.service.clone().into());
        fixed.insert("instance".into(), identity.instance.clone().into());
        fixed.insert("version".into(), identity.version.clone().into());
        Self { fixed }
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        event.record(&mut JsonVisitor(&mut line));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|s| s.name().into()).collect();
            if !spans.is_empty() {
                line.insert("spans".into(), Value::Array(spans));
            }
        }
        for (k, v) in &self.fixed {
            line.insert(k.clone(), v.clone());
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

// ---------------------------------------------------------------------------------------------
// Span export

/// Spans per export request at most.
const MAX_EXPORT_BATCH: usize = 512;
/// How long a span may wait in the queue before it is exported.
const SCHEDULE_DELAY: Duration = Duration::from_millis(200);

enum Control {
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// The span processor: hands finished spans to the export thread without ever waiting.
#[derive(Debug)]
struct QueueProcessor {
    spans: SyncSender<SpanData>,
    control: mpsc::Sender<Control>,
    stats: TracingStats,
    wait: Duration,
}

impl QueueProcessor {
    fn ask(&self, make: fn(SyncSender<()>) -> Control) -> OTelSdkResult {
        let (ack, done) = mpsc::sync_channel(1);
        self.control
            .send(make(ack))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        done.recv_timeout(self.wait)
            .map_err(|_| OTelSdkError::Timeout(self.wait))
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Control::Flush(_) => "Flush",
            Control::Shutdown(_) => "Shutdown",
        })
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut SdkSpan, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.spans.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.inc();
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Control::Flush)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.ask(Control::Shutdown)
    }
}

fn tracer_provider(
    settings: &TracingSettings,
    identity: &Identity,
    stats: TracingStats,
) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(format!("telemesh-{}", identity.service))
        .with_attributes([
            KeyValue::new("service.instance.id", identity.instance.clone()),
            KeyValue::new("service.version", identity.version.clone()),
        ])
        .build();
    let (spans_tx, spans_rx) = mpsc::sync_channel(settings.max_queue_size.max(1));
    let (control_tx, control_rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let export_timeout = Duration::from_millis(settings.export_timeout_ms.max(1));
    let endpoint = settings.resolved_endpoint();
    let protocol = settings.protocol;
    let thread_stats = stats.clone();
    let thread_resource = resource.clone();
    let thread_endpoint = endpoint.clone();
    std::thread::Builder::new()
        .name("telemesh-otlp".into())
        .spawn(move || {
            export_thread(
                protocol,
                thread_endpoint,
                export_timeout,
                thread_resource,
                spans_rx,
                control_rx,
                ready_tx,
                thread_stats,
            )
        })
        .map_err(|e| TelemetryError::Exporter {
            endpoint: endpoint.clone(),
            detail: e.to_string(),
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(detail)) => return Err(TelemetryError::Exporter { endpoint, detail }),
        Err(_) => {
            return Err(TelemetryError::Exporter {
                endpoint,
                detail: "the export thread stopped while starting".into(),
            })
        }
    }
    let processor = QueueProcessor {
        spans: spans_tx,
        control: control_tx,
        stats,
        wait: export_timeout + Duration::from_secs(1),
    };
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler)
        .with_resource(resource)
        .build())
}

#[allow(clippy::too_many_arguments)]
fn export_thread(
    protocol: OtlpProtocol,
    endpoint: String,
    export_timeout: Duration,
    resource: Resource,
    spans: mpsc::Receiver<SpanData>,
    control: mpsc::Receiver<Control>,
    ready: SyncSender<Result<(), String>>,
    stats: TracingStats,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let built = runtime.block_on(async {
        let builder = opentelemetry_otlp::SpanExporter::builder();
        match protocol {
            OtlpProtocol::Grpc => builder
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(export_timeout)
                .build(),
            OtlpProtocol::Http => builder
                .with_http()
                .with_endpoint(endpoint.clone())
                .with_timeout(export_timeout)
                .build(),
        }
    });
    let mut exporter = match built {
        Ok(exporter) => exporter,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    exporter.set_resource(&resource);
    let _ = ready.send(Ok(()));

    let mut batch: Vec<SpanData> = Vec::new();
    let mut deadline = Instant::now() + SCHEDULE_DELAY;
    let mut last_warning: Option<Instant> = None;
    let mut export = |batch: &mut Vec<SpanData>| {
        if batch.is_empty() {
            return;
        }
        let spans = std::mem::take(batch);
        let n = spans.len() as u64;
        let outcome = runtime
            .block_on(async { tokio::time::timeout(export_timeout, exporter.export(spans)).await });
        let error = match outcome {
            Ok(Ok(())) => {
                stats.exported.inc_by(n);
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {export_timeout:?}"),
        };
        stats.export_failures.inc();
        stats.dropped.inc_by(n);
        if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            last_warning = Some(Instant::now());
            ::tracing::warn!(
                endpoint = %endpoint,
                error = %error,
                dropped = n,
                "span export failed; spans are dropped and counted in telemesh_tracing_spans_dropped_total (warned at most once a minute)"
            );
        }
    };
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match spans.recv_timeout(wait) {
            Ok(span) => batch.push(span),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                export(&mut batch);
                return;
            }
        }
        while batch.len() < MAX_EXPORT_BATCH {
            match spans.try_recv() {
                Ok(span) => batch.push(span),
                Err(_) => break,
            }
        }
        match control.try_recv() {
            Ok(Control::Flush(ack)) => {
                while let Ok(span) = spans.try_recv() {
                    batch.push(span);
                    if batch.len() >= MAX_EXPORT_BATCH {
                        export(&mut batch);
                    }
                }
                export(&mut batch);
                let _ = ack.send(());
            }
            Ok(Control::Shutdown(ack)) => {
                while let Ok(span) = spans.try_recv() {
                    batch.push(span);
                }
                export(&mut batch);
                let _ = runtime.block_on(async { exporter.shutdown() });
                let _ = ack.send(());
                return;
            }
            Err(_) => {}
        }
        if batch.len() >= MAX_EXPORT_BATCH || Instant::now() >= deadline {
            export(&mut batch);
            deadline = Instant::now() + SCHEDULE_DELAY;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// W3C trace context in message headers

/// Header names of the W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.0.push((key.to_owned(), value.into_bytes()));
    }
}

struct HeaderExtractor<'a>(&'a [(String, Vec<u8>)]);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Writes `span`'s trace context into `headers` as `traceparent` (and `tracestate`); writes
/// nothing when tracing is off.
pub fn inject_context(span: &tracing::Span, headers: &mut Headers) {
    let cx = span.context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the trace context carried in `headers`, if any.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &[(String, Vec<u8>)]) {
    let extractor = HeaderExtractor(headers);
    if extractor.get(TRACEPARENT_HEADER).is_none() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&extractor);
    let _ = span.set_parent(cx);
}

/// Sets an OpenTelemetry attribute on `span` (a no-op when tracing is off).
pub fn set_attribute(
    span: &tracing::Span,
    key: &'static str,
    value: impl Into<opentelemetry::Value>,
) {
    span.set_attribute(key, value);
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_identity_and_context() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let log = LogSettings {
            level: "info".into(),
            format: LogFormat::Json,
            context: "region=eu,tier=prod".into(),
        };
        let (dispatch, _t) = build(
            &log,
            &TracingSettings::default(),
            &Identity::new("svc", "i-1", "9.9.9"),
            TracingStats::default(),
            BoxMakeWriter::new(move || writer.clone()),
        )
        .unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("outer");
            let _g = span.enter();
            tracing::info!(count = 3, "hello \"world\"");
            tracing::debug!("filtered out");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = &lines[0];
        assert_eq!(line["message"], "hello \"world\"");
        assert_eq!(line["count"], 3);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["service"], "svc");
        assert_eq!(line["instance"], "i-1");
        assert_eq!(line["version"], "9.9.9");
        assert_eq!(line["region"], "eu");
        assert_eq!(line["tier"], "prod");
        assert_eq!(line["spans"][0], "outer");
    }

    #[test]
    fn a_bad_filter_or_context_is_named() {
        let bad = LogSettings {
            level: "info,=[".into(),
            ..LogSettings::default()
        };
        let id = Identity::new("s", "i", "v");
        let err = build(
            &bad,
            &TracingSettings::default(),
            &id,
            TracingStats::default(),
            BoxMakeWriter::new(std::io::sink),
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid log filter"), "{err}");
    }

    #[test]
    fn an_unreachable_collector_drops_and_counts_without_blocking() {
        // a closed port: the exporter fails, spans are dropped and counted
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tracing_settings = TracingSettings {
            enabled: true,
            endpoint: format!("http://127.0.0.1:{port}"),
            max_queue_size: 4,
            export_timeout_ms: 500,
            ..TracingSettings::default()
        };
        let stats = TracingStats::default();
        let (dispatch, telemetry) = build(
            &LogSettings::default(),
            &tracing_settings,
            &Identity::new("s", "i", "v"),
            stats.clone(),
            BoxMakeWriter::new(std::io::sink),
        )
        .unwrap();
        let started = Instant::now();
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..200 {
                let span = tracing::info_span!("work");
                let mut headers = Headers::new();
                inject_context(&span, &mut headers);
                assert!(headers[0].0 == TRACEPARENT_HEADER, "{headers:?}");
            }
        });
        assert!(started.elapsed() < Duration::from_secs(2));
        telemetry.flush();
        assert!(stats.dropped.get() > 0);
        assert_eq!(stats.exported.get(), 0);
    }

    #[test]
    fn traceparent_round_trips_through_headers() {
        let stats = TracingStats::default();
        let settings = TracingSettings {
            enabled: true,
            endpoint: "http://127.0.0.1:9".into(),
            export_timeout_ms: 100,
            ..TracingSettings::default()
        };
        let (dispatch, _t) = build(
            &LogSettings::default(),
            &settings,
            &Identity::new("s", "i", "v"),
            stats,
            BoxMakeWriter::new(std::io::sink),
        )
        .unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            let producer = tracing::info_span!("send");
            let mut headers = Headers::new();
            inject_context(&producer, &mut headers);
            let consumer = tracing::info_span!("process");
            set_parent_from_headers(&consumer, &headers);
            use opentelemetry::trace::TraceContextExt;
            let a = producer.context().span().span_context().trace_id();
            let b = consumer.context().span().span_context().trace_id();
            assert_eq!(a, b);
        });
    }
}
