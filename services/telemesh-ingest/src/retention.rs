//! Owns the pure data-retention evaluator (`telemetry.data_backbone.retention`, DOMAINS.md
//! §3.7) with the cap/target flaw fixed (quirk 6): history older than the target is fine;
//! too little history, an empty table or a stretch without rows (a gap) is not.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use telemesh_core::snapshot::escape_cell;
use telemesh_core::{topics, Component, DetailValue, Details, Grade, Snapshot, Source};

use crate::render::{human_duration, INTERVAL_METRIC};
use crate::settings::{RetentionPolicy, TablePolicy};

/// The snapshot title in Markdown.
pub const TITLE: &str = "Data retention";

/// A stretch of time without rows: from one row to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Whether and how gaps were looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapCheck {
    /// Every stretch longer than the table's `max_gap_hours` since the window start is listed.
    Done,
    /// The table has no `max_gap_hours`.
    NotConfigured,
    /// The walk stopped after this many index probes; later gaps may be missing.
    Truncated(usize),
    /// The backend cannot check gaps (why).
    Unsupported(String),
}

/// What the source learned about one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableWindow {
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
    /// Stretches between consecutive rows longer than `max_gap_hours`, from the last row at
    /// or before the target window start on (the stretch after the newest row is not listed:
    /// the evaluator adds it).
    pub gaps: Vec<Gap>,
    pub gap_check: GapCheck,
}

/// One table's observation: its window, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct TableObservation {
    /// The policy name ([`TablePolicy::name`]).
    pub name: String,
    pub result: Result<TableWindow, String>,
}

/// Grades every configured table as of `now`; a table without an observation is `fail`.
pub fn evaluate(
    policy: &RetentionPolicy,
    source: &Source,
    observations: &[TableObservation],
    now: DateTime<Utc>,
) -> Snapshot {
    let mut s = Snapshot::new(topics::RETENTION, source.clone(), now);
    let mut rows = Vec::new();
    for table in &policy.tables {
        let result = observations
            .iter()
            .find(|o| o.name == table.name)
            .map(|o| o.result.clone())
            .unwrap_or_else(|| Err("the table was not observed".into()));
        let (component, row) = grade_table(table, &result, now);
        s.push(component);
        rows.push(row);
    }
    let count = |g: Grade| s.components.iter().filter(|c| c.status == g).count();
    let (ok, warn, fail) = (count(Grade::Ok), count(Grade::Warn), count(Grade::Fail));
    s.summary = if policy.tables.is_empty() {
        "no tables configured: add [[ingest.retention]] entries to grade data retention".into()
    } else if ok == policy.tables.len() {
        format!(
            "all {} tables cover their target history",
            policy.tables.len()
        )
    } else {
        let bad: Vec<String> = s
            .components
            .iter()
            .filter(|c| c.status != Grade::Ok)
            .map(|c| format!("{} {}: {}", c.name, c.status, c.summary))
            .collect();
        format!(
            "{} of {} tables need attention: {}",
            bad.len(),
            policy.tables.len(),
            bad.join("; ")
        )
    };
    s.metric(INTERVAL_METRIC, policy.interval_seconds as f64);
    s.metric("tables", policy.tables.len() as f64);
    s.metric("tables_ok", ok as f64);
    s.metric("tables_warn", warn as f64);
    s.metric("tables_fail", fail as f64);
    s.markdown = markdown(&s, &rows);
    s
}

/// One line of the Markdown coverage table.
struct Row {
    name: String,
    table: String,
    oldest: String,
    newest: String,
    coverage: String,
    target: u32,
    gap: String,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn days(d: Duration) -> f64 {
    (d.num_milliseconds() as f64 / 86_400_000.0).max(0.0)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A gap clipped to the target window, with whether it is the stretch since the newest row.
struct FoundGap {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tail: bool,
}

impl FoundGap {
    fn hours(&self) -> f64 {
        (self.to - self.from).num_milliseconds() as f64 / 3_600_000.0
    }

    fn describe(&self) -> String {
        if self.tail {
            format!(
                "no rows since {} ({})",
                iso(self.from),
                human_duration((self.to - self.from).num_seconds() as f64)
            )
        } else {
            format!(
                "gap of {} from {} to {}",
                human_duration((self.to - self.from).num_seconds() as f64),
                iso(self.from),
                iso(self.to)
            )
        }
    }
}

fn grade_table(
    t: &TablePolicy,
    result: &Result<TableWindow, String>,
    now: DateTime<Utc>,
) -> (Component, Row) {
    let short = if t.optional { Grade::Warn } else { Grade::Fail };
    let mut row = Row {
        name: t.name.clone(),
        table: t.table.clone(),
        oldest: "n/a".into(),
        newest: "n/a".into(),
        coverage: "n/a".into(),
        target: t.target_days,
        gap: "n/a".into(),
    };
    let base = |status: Grade, summary: String| {
        let mut c = Component::new(t.name.clone(), status, summary)
            .detail("table", t.table.clone())
            .detail("time_column", t.time_column.clone())
            .detail("target_days", t.target_days)
            .detail("minimum_days", t.minimum_days)
            .detail("max_gap_hours", t.max_gap_hours);
        if t.optional {
            c = c.detail("optional", true);
        }
        c
    };
    let window = match result {
        Err(e) => {
            let c = base(
                Grade::Fail,
                format!("failed to query retention window: {e}"),
            )
            .detail("error", e.clone());
            return (c, row);
        }
        Ok(w) => w,
    };
    let (Some(earliest), Some(latest)) = (window.earliest, window.latest) else {
        let c = base(
            short,
            format!("no rows in {}: nothing is retained", t.table),
        )
        .detail("coverage_days", 0.0)
        .detail("span_days", 0.0);
        return (c, row);
    };
    let coverage = now - earliest;
    let target = Duration::days(i64::from(t.target_days));
    let minimum = Duration::days(i64::from(t.minimum_days));
    let coverage_days = days(coverage);
    let (mut status, mut summary) = if coverage >= target {
        (
            Grade::Ok,
            format!("coverage {coverage_days:.1} d (target {} d)", t.target_days),
        )
    } else if coverage >= minimum {
        (
            Grade::Warn,
            format!(
                "coverage {coverage_days:.1} d below the {} d target",
                t.target_days
            ),
        )
    } else {
        (
            short,
            format!(
                "coverage {coverage_days:.1} d below the minimum {} d",
                t.minimum_days
            ),
        )
    };

    let mut gaps: Vec<FoundGap> = Vec::new();
    if let Some(max_hours) = t.max_gap_hours {
        let max_gap = Duration::hours(i64::from(max_hours));
        let window_start = now - target;
        for g in &window.gaps {
            let from = g.from.max(window_start);
            if g.to > from && g.to - from > max_gap {
                gaps.push(FoundGap {
                    from,
                    to: g.to,
                    tail: false,
                });
            }
        }
        if now - latest > max_gap {
            gaps.push(FoundGap {
                from: latest,
                to: now,
                tail: true,
            });
        }
        gaps.sort_by_key(|g| std::cmp::Reverse(g.to - g.from));
    }
    if let Some(largest) = gaps.first() {
        status.escalate(Grade::Warn);
        summary.push_str(&format!("; {}", largest.describe()));
        if gaps.len() > 1 {
            summary.push_str(&format!(" (+{} more)", gaps.len() - 1));
        }
        row.gap = format!("{:.1} h", largest.hours());
    } else if t.max_gap_hours.is_some() {
        row.gap = "none".into();
    }
    match &window.gap_check {
        GapCheck::Truncated(steps) => {
            summary.push_str(&format!("; gap check stopped after {steps} probes"))
        }
        GapCheck::Unsupported(why) if t.max_gap_hours.is_some() => {
            summary.push_str(&format!("; gaps not checked: {why}"));
        }
        _ => {}
    }
    row.oldest = iso(earliest);
    row.newest = iso(latest);
    row.coverage = format!("{coverage_days:.1}");
    let gap_details: Vec<DetailValue> = gaps
        .iter()
        .map(|g| {
            let mut m = Details::new();
            m.insert("from".into(), iso(g.from).into());
            m.insert("to".into(), iso(g.to).into());
            m.insert("hours".into(), round2(g.hours()).into());
            m.insert("since_newest_row".into(), g.tail.into());
            DetailValue::Map(m)
        })
        .collect();
    let gap_check = match &window.gap_check {
        GapCheck::Done => "done".to_owned(),
        GapCheck::NotConfigured => "not configured".to_owned(),
        GapCheck::Truncated(n) => format!("truncated after {n} probes"),
        GapCheck::Unsupported(why) => format!("unsupported: {why}"),
    };
    let c = base(status, summary)
        .detail("coverage_days", round2(coverage_days))
        .detail("span_days", round2(days(latest - earliest)))
        .detail("earliest", iso(earliest))
        .detail("latest", iso(latest))
        .detail(
            "newest_row_age_seconds",
            (now - latest).num_seconds().max(0),
        )
        .detail("gaps", DetailValue::List(gap_details))
        .detail("gap_check", gap_check);
    (c, row)
}

fn markdown(s: &Snapshot, rows: &[Row]) -> String {
    let mut out = format!(
        "### {TITLE}: {}\n\n{}\n\n| Dataset | Status | Summary |\n| --- | --- | --- |\n",
        s.status.as_upper(),
        s.summary
    );
    for c in &s.components {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            escape_cell(&c.name),
            c.status.as_upper(),
            escape_cell(&c.summary)
        ));
    }
    if !rows.is_empty() {
        out.push_str(
            "\n| Dataset | Table | Oldest row | Newest row | Coverage (d) | Target (d) | Largest gap |\n| --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for r in rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                escape_cell(&r.name),
                escape_cell(&r.table),
                r.oldest,
                r.newest,
                r.coverage,
                r.target,
                r.gap
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
