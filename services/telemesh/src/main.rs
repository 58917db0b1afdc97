//! The `telemesh` binary: parses the command line, loads configuration, installs tracing and
//! runs one of the subcommands (standalone, serve <service>, check-config).

mod config;
mod dlq;
mod drill;
mod feeds;
mod operator;
mod run;
mod service_http;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::TelemeshConfig;

/// telemesh: graded telemetry for a trading platform, carried over Kafka, journaled in
/// TimescaleDB/PostgreSQL, summarised over HTTP.
#[derive(Debug, Parser)]
#[command(name = "telemesh", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in one process: in-process transport, SQLite journal, HTTP API.
    Standalone {
        /// TOML configuration file (environment `TELEMESH__SECTION__KEY` overrides it).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address of the HTTP API [default: [http] addr, 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Directory of the SQLite journal [default: [standalone] data_dir, ./telemesh-data].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Run one service (what each Kubernetes Deployment runs).
    Serve {
        service: ServiceName,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Alert operations.
    Alert {
        #[command(subcommand)]
        command: AlertCommand,
    },
    /// Dead-letter topic operations.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Print the effective configuration (secrets redacted); exit 2 naming the bad key.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print a running aggregator's summary (exit 1 unreachable, 2 refused).
    Summary {
        #[command(flatten)]
        target: operator::Target,
        /// Redraw every --interval seconds until interrupted.
        #[arg(long)]
        watch: bool,
        #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
        interval: f64,
    },
    /// Follow newly journaled snapshots live, one line each (or JSON lines).
    Tail {
        #[command(flatten)]
        target: operator::Target,
        /// Only this snapshot kind (e.g. telemetry.kafka.readiness).
        #[arg(long)]
        kind: Option<String>,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// One snapshot JSON per line.
        #[arg(long)]
        json: bool,
    },
    /// List open alerts, or acknowledge / resolve one (bearer token: --token or TELEMESH_API_TOKEN).
    Alerts {
        #[command(flatten)]
        target: operator::Target,
        /// Which alerts to list: open, firing, pending, resolved or all.
        #[arg(long, default_value = "open")]
        state: String,
        #[command(subcommand)]
        action: Option<operator::AlertsAction>,
    },
    /// Write a snapshot export as JSON (exit 2 naming the missing kinds unless --allow-missing).
    Export {
        #[command(flatten)]
        target: operator::Target,
        /// operational, data-backbone or risk-compliance.
        name: String,
        /// Only these sections (repeatable).
        #[arg(long = "section", value_name = "NAME")]
        sections: Vec<String>,
        /// Export even when a section has no snapshot yet.
        #[arg(long)]
        allow_missing: bool,
        /// Write to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AlertCommand {
    /// Fire a test alert through every configured channel, resolve it, print each answer.
    Drill {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Publish dead letters back to their telemetry topics once the cause is fixed.
    Replay {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Only dead letters written at or after this RFC 3339 time.
        #[arg(long, value_name = "TIME")]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only this reason (repeatable), e.g. journal_refused, future_generated_at.
        #[arg(long, value_name = "REASON")]
        reason: Vec<String>,
        /// Only this stage: decode or journal.
        #[arg(long, value_name = "STAGE")]
        stage: Option<String>,
        /// List what would be replayed, publish nothing.
        #[arg(long)]
        dry_run: bool,
        /// Stop after the topic was quiet this many milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 3000)]
        idle_ms: u64,
    },
}

/// The services `serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServiceName {
    Aggregator,
    FixPilot,
    Ingest,
    KafkaReadiness,
    IncidentResponse,
    CacheHealth,
    SystemValidation,
}

fn load(file: Option<&PathBuf>) -> Result<TelemeshConfig, ExitCode> {
    TelemeshConfig::load(
        file.map(PathBuf::as_path),
        &telemesh_core::config::process_env(),
    )
    .map_err(|e| {
        eprintln!("telemesh: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::CheckConfig { config } => {
            return match load(config.as_ref()) {
                Ok(cfg) => {
                    print!("{}", cfg.to_redacted_toml());
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            };
        }
        Command::Summary {
            target,
            watch,
            interval,
        } => return operator::summary(&target, watch, interval),
        Command::Tail {
            target,
            kind,
            service,
            json,
        } => return operator::tail(&target, kind.as_deref(), service.as_deref(), json),
        Command::Alerts {
            target,
            state,
            action,
        } => return operator::alerts(&target, &state, action.as_ref()),
        Command::Export {
            target,
            name,
            sections,
            allow_missing,
            output,
        } => return operator::export(&target, &name, &sections, allow_missing, output.as_ref()),
        Command::Standalone {
            config,
            http,
            data_dir,
        } => {
            let mut cfg = match load(config.as_ref()) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            if let Some(http) = http {
                cfg.http.addr = http;
            }
            if let Some(dir) = data_dir {
                cfg.standalone.data_dir = dir.display().to_string();
            }
            telemesh_aggregator::startup::exit_on_panic();
            run::with_system(cfg, "standalone", run::standalone)
        }
        Command::Alert {
            command: AlertCommand::Drill { config },
        } => {
            let cfg = match load(config.as_ref()) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            run::with_system(cfg, "alert-drill", drill::run)
        }
        Command::Dlq {
            command:
                DlqCommand::Replay {
                    config,
                    since,
                    reason,
                    stage,
                    dry_run,
                    idle_ms,
                },
        } => {
            let cfg = match load(config.as_ref()) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let options = dlq::ReplayOptions {
                since,
                reasons: reason,
                stage,
                dry_run,
                idle: std::time::Duration::from_millis(idle_ms),
            };
            run::with_system(cfg, "dlq-replay", |cfg| dlq::run(cfg, options))
        }
        Command::Serve { service, config } => {
            let cfg = match load(config.as_ref()) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            telemesh_aggregator::startup::exit_on_panic();
            match service {
                ServiceName::Aggregator => run::with_system(cfg, "aggregator", run::aggregator),
                ServiceName::FixPilot => run::with_system(cfg, "fix-pilot", run::fix_pilot),
                ServiceName::Ingest => run::with_system(cfg, "ingest", run::ingest),
                ServiceName::IncidentResponse => {
                    run::with_system(cfg, "incident-response", run::incident_response)
                }
                ServiceName::KafkaReadiness => {
                    run::with_system(cfg, "kafka-readiness", run::kafka_readiness)
                }
                ServiceName::CacheHealth => {
                    run::with_system(cfg, "cache-health", feeds::cache_health)
                }
                ServiceName::SystemValidation => {
                    run::with_system(cfg, "system-validation", feeds::system_validation)
                }
            }
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telemesh: {e:#}");
            ExitCode::FAILURE
        }
    }
}
