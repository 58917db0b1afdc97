//! Owns the `[ingest]` configuration section and the clamped policies derived from it
//! (DOMAINS.md §3.6 trends and §3.7 retention, with the cap/target flaw of quirk 6 removed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use telemesh_core::config::{Invalid, Secret, SecretUrl, Section};

use crate::source::{Backend, TableName};

/// The list-valued keys of `[ingest]` that may be given as comma lists in the environment.
/// (`ingest.expected_intervals` and `ingest.retention` are lists of tables: TOML only.)
pub const LIST_KEYS: &[&str] = &["ingest.dimensions", "ingest.ignore_dimensions"];

/// `[ingest]`: where the platform's database is and how ingest runs and retention are graded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// The platform's database: `postgres://user:password@host:port/db` or
    /// `sqlite:///path/platform.db`. Read-only except for accepted run reports. Required by
    /// `serve ingest`. Default: empty (not configured).
    pub source_url: SecretUrl,
    /// Connections to the platform's database. Default: 2.
    pub max_connections: u32,
    /// How long a query waits for a connection before the database counts as unreachable.
    /// Default: 5000.
    pub acquire_timeout_ms: u64,
    /// PostgreSQL `statement_timeout` of the service's sessions. Default: 10000.
    pub statement_timeout_ms: u64,
    /// Seconds between two evaluations (stated in each snapshot's `interval_seconds` metric).
    /// Default: 60.
    pub interval_seconds: u64,
    /// The platform's ingest journal table (DOMAINS.md §5.3). A `schema.table` name is
    /// `schema_table` on SQLite. Default: `telemetry.ingest_runs`.
    pub runs_table: String,
    /// How many of its own newest runs each dimension is judged on. Default: 10.
    pub window_runs: u32,
    /// Dimensions expected to report; one that never did is `warn`. Dimensions found in the
    /// runs table are graded too. Default: `daily_bars`, `intraday_trades`, `macro_events`.
    pub dimensions: Vec<String>,
    /// Dimensions found in the runs table that are not graded (retired jobs). Default: empty.
    pub ignore_dimensions: Vec<String>,
    /// Expected seconds between two runs of a dimension without an override; a dimension whose
    /// newest run is older is `warn`. Default: 86400.
    pub default_expected_interval_seconds: u64,
    /// Per-dimension expected intervals. Default: `daily_bars` 86400, `intraday_trades` 3600,
    /// `macro_events` 604800.
    pub expected_intervals: Vec<ExpectedInterval>,
    /// A dimension silent for more than this many expected intervals is `fail`. Default: 3.
    pub silent_fail_factor: f64,
    /// The latest run writing fewer than this share of the average rows of the previous runs
    /// in the window is `warn`. Default: 0.5.
    pub rows_drop_ratio: f64,
    /// The latest freshness above this multiple of the best previous freshness in the window
    /// is `warn`. Default: 1.5.
    pub freshness_regression_ratio: f64,
    /// This many newest runs all failed is `fail` ("consecutive failures"). Default: 2.
    pub consecutive_failures: u32,
    /// A failed run among the newest this-many runs (other than the latest) is `fail`
    /// ("recent history includes failures"); 0 or 1 turns the rule off. Default: 3.
    pub recent_failure_runs: u32,
    /// The tables whose history is graded. Default: the three market-data tables of §3.7.
    pub retention: Vec<RetentionTable>,
    /// Bearer token `POST /api/v1/ingest/runs` requires (it writes to the platform's
    /// database). Default: empty, meaning the endpoint is disabled (403 naming this setting).
    pub api_token: Secret,
}

/// One per-dimension expected interval (`[[ingest.expected_intervals]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedInterval {
    pub dimension: String,
    pub seconds: u64,
}

/// One table whose history is graded (`[[ingest.retention]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionTable {
    /// The dataset name shown in snapshots. Default: the table name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `schema.table` (or `table`); `schema_table` on SQLite.
    pub table: String,
    /// The timestamp column; an index whose leading column it is must exist.
    #[serde(default = "default_time_column")]
    pub time_column: String,
    /// Days of history the table must cover (oldest row at least this old). Older history is
    /// fine: nothing caps it.
    pub target_days: u32,
    /// Less coverage than this is `fail` (`warn` when `optional`). Default: the target;
    /// lowered to the target when above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_days: Option<u32>,
    /// Whether too little history (or none) is only `warn`. Default: false.
    #[serde(default)]
    pub optional: bool,
    /// A stretch without rows longer than this within the target window (or since the newest
    /// row) is `warn`. Default: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gap_hours: Option<u32>,
}

fn default_time_column() -> String {
    "ts".into()
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            source_url: SecretUrl::default(),
            max_connections: 2,
            acquire_timeout_ms: 5_000,
            statement_timeout_ms: 10_000,
            interval_seconds: 60,
            runs_table: "telemetry.ingest_runs".into(),
            window_runs: 10,
            dimensions: vec![
                "daily_bars".into(),
                "intraday_trades".into(),
                "macro_events".into(),
            ],
            ignore_dimensions: Vec::new(),
            default_expected_interval_seconds: 86_400,
            expected_intervals: vec![
                ExpectedInterval {
                    dimension: "daily_bars".into(),
                    seconds: 86_400,
                },
                ExpectedInterval {
                    dimension: "intraday_trades".into(),
                    seconds: 3_600,
                },
                ExpectedInterval {
                    dimension: "macro_events".into(),
                    seconds: 604_800,
                },
            ],
            silent_fail_factor: 3.0,
            rows_drop_ratio: 0.5,
            freshness_regression_ratio: 1.5,
            consecutive_failures: 2,
            recent_failure_runs: 3,
            retention: default_retention(),
            api_token: Secret::default(),
        }
    }
}

/// The §3.7 tables: daily bars 365/300 days, intraday trades 30/7, macro events 365/180.
pub fn default_retention() -> Vec<RetentionTable> {
    vec![
        RetentionTable {
            name: "daily_bars".into(),
            table: "market_data.daily_bars".into(),
            time_column: "ts".into(),
            target_days: 365,
            minimum_days: Some(300),
            optional: false,
            max_gap_hours: Some(120),
        },
        RetentionTable {
            name: "intraday_trades".into(),
            table: "market_data.intraday_trades".into(),
            time_column: "ts".into(),
            target_days: 30,
            minimum_days: Some(7),
            optional: false,
            max_gap_hours: Some(72),
        },
        RetentionTable {
            name: "macro_events".into(),
            table: "macro_data.events".into(),
            time_column: "ts".into(),
            target_days: 365,
            minimum_days: Some(180),
            optional: false,
            max_gap_hours: None,
        },
    ]
}

fn invalid(key: impl std::fmt::Display, detail: impl Into<String>) -> Invalid {
    Invalid::new(format!("ingest.{key}"), detail)
}

impl Section for IngestSettings {
    fn name(&self) -> &'static str {
        "ingest"
    }

    fn list_keys() -> &'static [&'static str] {
        LIST_KEYS
    }

    /// Rejects values that cannot work, naming the key.
    fn validate(&self) -> Result<(), Invalid> {
        self.check()
    }
}

impl IngestSettings {
    /// True when a source database is configured.
    pub fn is_configured(&self) -> bool {
        !self.source_url.is_empty()
    }

    fn check(&self) -> Result<(), Invalid> {
        let url = self.source_url.expose().trim();
        if !url.is_empty() && Backend::of_url(url).is_none() {
            return Err(invalid(
                "source_url",
                format!(
                    "{:?} is not supported: use postgres://… or sqlite://…",
                    self.source_url.redacted()
                ),
            ));
        }
        for (key, value) in [
            ("max_connections", u64::from(self.max_connections)),
            ("acquire_timeout_ms", self.acquire_timeout_ms),
            ("statement_timeout_ms", self.statement_timeout_ms),
            ("interval_seconds", self.interval_seconds),
            ("window_runs", u64::from(self.window_runs)),
            (
                "default_expected_interval_seconds",
                self.default_expected_interval_seconds,
            ),
            ("consecutive_failures", u64::from(self.consecutive_failures)),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        TableName::parse(&self.runs_table).map_err(|e| invalid("runs_table", e))?;
        for (key, value, min) in [
            ("silent_fail_factor", self.silent_fail_factor, 1.0),
            ("rows_drop_ratio", self.rows_drop_ratio, 0.0),
            (
                "freshness_regression_ratio",
                self.freshness_regression_ratio,
                1.0,
            ),
        ] {
            if !value.is_finite() || value < min {
                return Err(invalid(
                    key,
                    format!("is {value}: set a finite number >= {min}"),
                ));
            }
        }
        for (key, list) in [
            ("dimensions", &self.dimensions),
            ("ignore_dimensions", &self.ignore_dimensions),
        ] {
            if let Some(bad) = list.iter().find(|d| !valid_dimension(d)) {
                return Err(invalid(
                    key,
                    format!("holds {bad:?}: a dimension is 1-100 characters of letters, digits, _ . : -"),
                ));
            }
        }
        for (i, e) in self.expected_intervals.iter().enumerate() {
            if !valid_dimension(&e.dimension) {
                return Err(invalid(
                    format!("expected_intervals[{i}].dimension"),
                    format!("{:?} is not a dimension name", e.dimension),
                ));
            }
            if e.seconds == 0 {
                return Err(invalid(
                    format!("expected_intervals[{i}].seconds"),
                    "must be at least 1",
                ));
            }
        }
        let mut names = Vec::new();
        for (i, t) in self.retention.iter().enumerate() {
            TableName::parse(&t.table).map_err(|e| invalid(format!("retention[{i}].table"), e))?;
            TableName::parse(&t.time_column)
                .ok()
                .filter(|c| c.schema.is_none())
                .ok_or_else(|| {
                    invalid(
                        format!("retention[{i}].time_column"),
                        format!(
                            "{:?} is not a column name: use letters, digits and _",
                            t.time_column
                        ),
                    )
                })?;
            if t.target_days == 0 {
                return Err(invalid(
                    format!("retention[{i}].target_days"),
                    "must be at least 1",
                ));
            }
            if t.max_gap_hours == Some(0) {
                return Err(invalid(
                    format!("retention[{i}].max_gap_hours"),
                    "must be at least 1 (leave it out to skip the gap check)",
                ));
            }
            let name = t.display_name();
            if names.contains(&name) {
                return Err(invalid(
                    format!("retention[{i}].name"),
                    format!("{name:?} is used twice: give each table its own name"),
                ));
            }
            names.push(name);
        }
        Ok(())
    }

    /// The thresholds [`crate::trends::evaluate`] grades with.
    pub fn trend_policy(&self) -> TrendPolicy {
        let intervals = self
            .expected_intervals
            .iter()
            .map(|e| (e.dimension.trim().to_owned(), e.seconds.max(1)))
            .collect();
        TrendPolicy {
            interval_seconds: self.interval_seconds.max(1),
            window_runs: self.window_runs.max(1) as usize,
            dimensions: normalize(&self.dimensions),
            ignore_dimensions: normalize(&self.ignore_dimensions),
            default_expected_interval_seconds: self.default_expected_interval_seconds.max(1),
            expected_intervals: intervals,
            silent_fail_factor: clamp_finite(self.silent_fail_factor, 1.0, 3.0),
            rows_drop_ratio: clamp_finite(self.rows_drop_ratio, 0.0, 0.5),
            freshness_regression_ratio: clamp_finite(self.freshness_regression_ratio, 1.0, 1.5),
            consecutive_failures: self.consecutive_failures.max(1) as usize,
            recent_failure_runs: self.recent_failure_runs as usize,
        }
    }

    /// The tables [`crate::retention::evaluate`] grades, minimum days clamped to the target.
    pub fn retention_policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            interval_seconds: self.interval_seconds.max(1),
            tables: self
                .retention
                .iter()
                .map(|t| TablePolicy {
                    name: t.display_name(),
                    table: t.table.trim().to_owned(),
                    time_column: t.time_column.trim().to_owned(),
                    target_days: t.target_days,
                    minimum_days: t.minimum_days.unwrap_or(t.target_days).min(t.target_days),
                    optional: t.optional,
                    max_gap_hours: t.max_gap_hours.filter(|h| *h > 0),
                })
                .collect(),
        }
    }
}

impl RetentionTable {
    /// `name`, or the table name when `name` is blank.
    pub fn display_name(&self) -> String {
        if self.name.trim().is_empty() {
            self.table.trim().to_owned()
        } else {
            self.name.trim().to_owned()
        }
    }
}

/// True for 1-100 characters of ASCII letters, digits, `_`, `.`, `:` and `-`.
pub fn valid_dimension(d: &str) -> bool {
    (1..=100).contains(&d.len())
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

fn clamp_finite(v: f64, min: f64, fallback: f64) -> f64 {
    if v.is_finite() {
        v.max(min)
    } else {
        fallback
    }
}

/// Trims, drops blanks and duplicates, keeps the first-seen order.
fn normalize(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let item = item.trim();
        if !item.is_empty() && !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

/// The clamped thresholds of the trend rules (§3.6.3 plus silence).
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPolicy {
    pub interval_seconds: u64,
    /// Runs per dimension (>= 1).
    pub window_runs: usize,
    pub dimensions: Vec<String>,
    pub ignore_dimensions: Vec<String>,
    pub default_expected_interval_seconds: u64,
    pub expected_intervals: BTreeMap<String, u64>,
    /// >= 1.
    pub silent_fail_factor: f64,
    pub rows_drop_ratio: f64,
    /// >= 1.
    pub freshness_regression_ratio: f64,
    /// >= 1.
    pub consecutive_failures: usize,
    pub recent_failure_runs: usize,
}

impl TrendPolicy {
    /// The expected seconds between two runs of `dimension`.
    pub fn expected_interval(&self, dimension: &str) -> u64 {
        self.expected_intervals
            .get(dimension)
            .copied()
            .unwrap_or(self.default_expected_interval_seconds)
    }
}

impl Default for TrendPolicy {
    fn default() -> Self {
        IngestSettings::default().trend_policy()
    }
}

/// The tables retention grades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub interval_seconds: u64,
    pub tables: Vec<TablePolicy>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        IngestSettings::default().retention_policy()
    }
}

/// One graded table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePolicy {
    pub name: String,
    pub table: String,
    pub time_column: String,
    pub target_days: u32,
    /// Always <= `target_days`.
    pub minimum_days: u32,
    pub optional: bool,
    pub max_gap_hours: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = IngestSettings::default();
        assert!(!s.is_configured());
        assert_eq!(
            (s.interval_seconds, s.window_runs, s.max_connections),
            (60, 10, 2)
        );
        assert_eq!(s.runs_table, "telemetry.ingest_runs");
        assert_eq!(
            s.dimensions,
            vec!["daily_bars", "intraday_trades", "macro_events"]
        );
        assert_eq!(
            (
                s.rows_drop_ratio,
                s.freshness_regression_ratio,
                s.silent_fail_factor
            ),
            (0.5, 1.5, 3.0)
        );
        assert_eq!((s.consecutive_failures, s.recent_failure_runs), (2, 3));
        let p = s.trend_policy();
        assert_eq!(p.expected_interval("intraday_trades"), 3_600);
        assert_eq!(p.expected_interval("other"), 86_400);
        let r = s.retention_policy();
        let days: Vec<(&str, u32, u32)> = r
            .tables
            .iter()
            .map(|t| (t.name.as_str(), t.target_days, t.minimum_days))
            .collect();
        assert_eq!(
            days,
            vec![
                ("daily_bars", 365, 300),
                ("intraday_trades", 30, 7),
                ("macro_events", 365, 180)
            ]
        );
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn minimum_is_clamped_to_target_and_name_defaults_to_table() {
        let s = IngestSettings {
            retention: vec![RetentionTable {
                name: " ".into(),
                table: "public.bars".into(),
                time_column: "ts".into(),
                target_days: 10,
                minimum_days: Some(20),
                optional: false,
                max_gap_hours: None,
            }],
            ..IngestSettings::default()
        };
        let t = &s.retention_policy().tables[0];
        assert_eq!((t.name.as_str(), t.minimum_days), ("public.bars", 10));
    }

    #[test]
    fn impossible_values_name_their_key() {
        let table = |f: fn(&mut RetentionTable)| {
            let mut t = default_retention().remove(0);
            f(&mut t);
            IngestSettings {
                retention: vec![t],
                ..IngestSettings::default()
            }
        };
        let cases: Vec<(IngestSettings, &str)> = vec![
            (
                IngestSettings {
                    interval_seconds: 0,
                    ..Default::default()
                },
                "interval_seconds",
            ),
            (
                IngestSettings {
                    window_runs: 0,
                    ..Default::default()
                },
                "window_runs",
            ),
            (
                IngestSettings {
                    max_connections: 0,
                    ..Default::default()
                },
                "max_connections",
            ),
            (
                IngestSettings {
                    source_url: SecretUrl::new("mysql://u:p@h/db"),
                    ..Default::default()
                },
                "source_url",
            ),
            (
                IngestSettings {
                    runs_table: "telemetry.runs; drop".into(),
                    ..Default::default()
                },
                "runs_table",
            ),
            (
                IngestSettings {
                    rows_drop_ratio: -0.1,
                    ..Default::default()
                },
                "rows_drop_ratio",
            ),
            (
                IngestSettings {
                    freshness_regression_ratio: f64::NAN,
                    ..Default::default()
                },
                "freshness_regression_ratio",
            ),
            (
                IngestSettings {
                    silent_fail_factor: 0.5,
                    ..Default::default()
                },
                "silent_fail_factor",
            ),
            (
                IngestSettings {
                    dimensions: vec!["a b".into()],
                    ..Default::default()
                },
                "dimensions",
            ),
            (
                IngestSettings {
                    expected_intervals: vec![ExpectedInterval {
                        dimension: "x".into(),
                        seconds: 0,
                    }],
                    ..Default::default()
                },
                "expected_intervals[0].seconds",
            ),
            (table(|t| t.table = "1bars".into()), "retention[0].table"),
            (
                table(|t| t.time_column = "a.ts".into()),
                "retention[0].time_column",
            ),
            (table(|t| t.target_days = 0), "retention[0].target_days"),
            (
                table(|t| t.max_gap_hours = Some(0)),
                "retention[0].max_gap_hours",
            ),
        ];
        for (settings, key) in cases {
            let err = settings.validate().expect_err(key);
            assert_eq!(err.key, format!("ingest.{key}"), "{err}");
            assert!(
                err.to_string().contains(&format!("`ingest.{key}`")),
                "{err}"
            );
        }
        let mut dup = IngestSettings::default();
        dup.retention[1].name = "daily_bars".into();
        assert_eq!(dup.validate().unwrap_err().key, "ingest.retention[1].name");
    }

    #[test]
    fn the_config_loader_reads_the_section_from_toml_and_env() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct Whole {
            ingest: IngestSettings,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("telemesh.toml");
        std::fs::write(
            &path,
            "[ingest]\nwindow_runs = 4\n[[ingest.expected_intervals]]\ndimension = \"fx\"\nseconds = 900\n\
             [[ingest.retention]]\nname = \"fx\"\ntable = \"market_data.fx\"\ntarget_days = 30\nmax_gap_hours = 48\n",
        )
        .expect("write config");
        let env: std::collections::HashMap<String, String> = [
            ("TELEMESH__INGEST__DIMENSIONS", "fx, daily_bars"),
            (
                "TELEMESH__INGEST__SOURCE_URL",
                "postgres://u:hunter2@db/platform",
            ),
            ("TELEMESH__INGEST__ROWS_DROP_RATIO", "0.25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let whole: Whole = telemesh_core::config::load(Some(&path), &env, LIST_KEYS).expect("load");
        let s = whole.ingest;
        assert_eq!(s.window_runs, 4);
        assert_eq!(s.dimensions, vec!["fx", "daily_bars"]);
        assert_eq!(s.rows_drop_ratio, 0.25);
        assert_eq!(s.source_url.expose(), "postgres://u:hunter2@db/platform");
        assert_eq!(s.trend_policy().expected_interval("fx"), 900);
        assert_eq!(s.retention.len(), 1);
        assert_eq!(
            (s.retention[0].target_days, s.retention[0].max_gap_hours),
            (30, Some(48))
        );
        assert_eq!(s.validate(), Ok(()));
        let err = telemesh_core::config::load::<Whole>(
            None,
            &[(
                "TELEMESH__INGEST__WINDOW_RUNS".to_owned(),
                "many".to_owned(),
            )]
            .into_iter()
            .collect(),
            LIST_KEYS,
        )
        .expect_err("bad number");
        assert_eq!(err.key(), Some("ingest.window_runs"), "{err}");
    }

    #[test]
    fn section_parses_with_unknown_keys_rejected() {
        let s: IngestSettings = toml::from_str(
            "window_runs = 5\n[[retention]]\ntable = \"market_data.bars\"\ntarget_days = 7\nmax_gap_hours = 24\n",
        )
        .expect("parse");
        assert_eq!(s.window_runs, 5);
        assert_eq!(s.retention.len(), 1);
        assert_eq!(s.retention[0].time_column, "ts");
        assert_eq!(s.retention[0].max_gap_hours, Some(24));
        assert_eq!(s.validate(), Ok(()));
        assert!(toml::from_str::<IngestSettings>("window = 5\n").is_err());
        assert!(toml::from_str::<IngestSettings>(
            "[[retention]]\ntable = \"t\"\ntarget_days = 1\ncap_days = 1\n"
        )
        .is_err());
        let rendered = toml::to_string(&IngestSettings {
            source_url: SecretUrl::new("postgres://u:hunter2@db/platform"),
            ..Default::default()
        })
        .expect("render");
        assert!(!rendered.contains("hunter2"), "{rendered}");
    }
}
