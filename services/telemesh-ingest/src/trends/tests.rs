//! Unit tests of the trend rules: every threshold at, just below and just above its boundary.

use chrono::Duration;

use super::*;

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().expect("time")
}

/// A run `minutes_ago` before `now`.
fn run(
    dimension: &str,
    minutes_ago: i64,
    status: &str,
    rows: i64,
    freshness: Option<f64>,
) -> IngestRun {
    IngestRun {
        run_id: format!("{dimension}-{minutes_ago}"),
        dimension: dimension.into(),
        status: status.into(),
        rows_written: rows,
        freshness_seconds: freshness,
        ingest_duration_seconds: Some(1.0),
        executed_at: now() - Duration::minutes(minutes_ago),
        source: Some("vendor".into()),
        symbols: vec!["AAPL".into()],
    }
}

fn policy() -> TrendPolicy {
    TrendPolicy {
        dimensions: Vec::new(),
        default_expected_interval_seconds: 3_600,
        expected_intervals: BTreeMap::new(),
        ..TrendPolicy::default()
    }
}

/// Runs of dimension `d`, newest first, one per minute: (status, rows, freshness).
fn series(d: &str, runs: &[(&str, i64, Option<f64>)]) -> Vec<IngestRun> {
    runs.iter()
        .enumerate()
        .map(|(i, (s, r, f))| run(d, i as i64, s, *r, *f))
        .collect()
}

fn grade(runs: &[(&str, i64, Option<f64>)]) -> DimensionTrend {
    evaluate_dimension(&policy(), "d", &series("d", runs), now())
}

#[test]
fn latest_status_sets_the_start_grade() {
    let t = grade(&[("ok", 10, None)]);
    assert_eq!((t.status, t.issues.len()), (Grade::Ok, 0));
    let t = grade(&[("warning", 10, None), ("ok", 10, None)]);
    assert_eq!(t.status, Grade::Warn);
    assert_eq!(t.issues, vec!["latest run completed with warnings"]);
    let t = grade(&[("pending", 10, None)]);
    assert_eq!(t.status, Grade::Warn);
    assert!(
        t.issues[0].contains("unknown status \"pending\""),
        "{:?}",
        t.issues
    );
    let t = grade(&[("error", 10, None), ("ok", 10, None)]);
    assert_eq!(t.status, Grade::Fail);
    assert_eq!(t.issues, vec!["latest run failed"]);
}

#[test]
fn two_consecutive_failures_fail() {
    let t = grade(&[("failed", 10, None), ("error", 10, None), ("ok", 10, None)]);
    assert_eq!(t.status, Grade::Fail);
    assert!(
        t.issues.contains(&"2 consecutive failures".to_owned()),
        "{:?}",
        t.issues
    );
    // one failure is not two in a row
    let t = grade(&[("failed", 10, None), ("ok", 10, None)]);
    assert!(
        !t.issues.iter().any(|i| i.contains("consecutive")),
        "{:?}",
        t.issues
    );
}

#[test]
fn a_failure_among_runs_two_and_three_fails_but_not_run_four() {
    let t = grade(&[("ok", 10, None), ("fail", 10, None)]);
    assert_eq!(t.status, Grade::Fail);
    assert!(t.issues[0].contains("run #2"), "{:?}", t.issues);
    let t = grade(&[("ok", 10, None), ("ok", 10, None), ("fail", 10, None)]);
    assert_eq!(t.status, Grade::Fail);
    assert!(t.issues[0].contains("run #3"), "{:?}", t.issues);
    let t = grade(&[
        ("ok", 10, None),
        ("ok", 10, None),
        ("ok", 10, None),
        ("fail", 10, None),
    ]);
    assert_eq!((t.status, t.issues.len()), (Grade::Ok, 0), "{:?}", t.issues);
    // turned off
    let p = TrendPolicy {
        recent_failure_runs: 1,
        ..policy()
    };
    let t = evaluate_dimension(
        &p,
        "d",
        &series("d", &[("ok", 10, None), ("fail", 10, None)]),
        now(),
    );
    assert_eq!(t.status, Grade::Ok);
}

#[test]
fn rows_drop_threshold_at_below_and_above() {
    // previous average 100, ratio 0.5: the boundary is 50
    let prev = [("ok", 100, None), ("ok", 80, None), ("ok", 120, None)];
    let with_latest = |rows: i64| {
        let mut runs = vec![("ok", rows, None)];
        runs.extend_from_slice(&prev);
        grade(&runs)
    };
    assert_eq!(with_latest(50).status, Grade::Ok, "at the boundary");
    assert_eq!(with_latest(51).status, Grade::Ok, "above");
    let t = with_latest(49);
    assert_eq!(t.status, Grade::Warn, "below");
    assert_eq!(t.issues, vec!["rows dropped from ~100 to 49"]);
    let t = with_latest(0);
    assert_eq!(t.status, Grade::Warn);
    assert_eq!(
        t.issues,
        vec!["latest run wrote 0 rows after a non-zero average of ~100"]
    );
    // a zero average has no baseline; a single run has none either
    assert_eq!(
        grade(&[("ok", 0, None), ("skipped", 0, None)]).status,
        Grade::Ok
    );
    assert_eq!(grade(&[("ok", 0, None)]).status, Grade::Ok);
}

#[test]
fn freshness_regression_threshold_at_below_and_above() {
    // best previous freshness 10 s, ratio 1.5: the boundary is 15 s
    let with_latest = |f: Option<f64>| {
        grade(&[
            ("ok", 10, f),
            ("ok", 10, Some(20.0)),
            ("ok", 10, Some(10.0)),
            ("ok", 10, None),
        ])
    };
    assert_eq!(with_latest(Some(15.0)).status, Grade::Ok, "at the boundary");
    assert_eq!(with_latest(Some(14.9)).status, Grade::Ok, "below");
    let t = with_latest(Some(15.1));
    assert_eq!(t.status, Grade::Warn, "above");
    assert_eq!(t.issues, vec!["freshness regressed from 10.0 s to 15.1 s"]);
    assert_eq!(
        with_latest(None).status,
        Grade::Ok,
        "unknown latest freshness"
    );
    assert_eq!(
        grade(&[("ok", 10, Some(99.0)), ("ok", 10, Some(0.0))]).status,
        Grade::Ok,
        "best <= 0"
    );
    assert_eq!(
        grade(&[("ok", 10, Some(99.0)), ("ok", 10, None)]).status,
        Grade::Ok,
        "no previous known"
    );
}

#[test]
fn silence_threshold_at_below_and_above() {
    // expected every hour; fail after 3 hours
    let at = |seconds: i64| {
        let mut r = run("d", 0, "ok", 10, None);
        r.executed_at = now() - Duration::seconds(seconds);
        evaluate_dimension(&policy(), "d", &[r], now())
    };
    assert_eq!(at(3_599).status, Grade::Ok);
    assert_eq!(at(3_600).status, Grade::Ok, "exactly one interval");
    let t = at(3_601);
    assert_eq!(t.status, Grade::Warn);
    assert!(
        t.issues[0].starts_with("no run for 60.0 min (expected every 60.0 min)"),
        "{:?}",
        t.issues
    );
    assert_eq!(at(10_799).status, Grade::Warn);
    assert_eq!(at(10_800).status, Grade::Warn, "exactly three intervals");
    let t = at(10_801);
    assert_eq!(t.status, Grade::Fail);
    assert!(
        t.issues[0].starts_with("stopped reporting"),
        "{:?}",
        t.issues
    );
    // a run stamped in the future is not silence
    assert_eq!(at(-60).status, Grade::Ok);
    // per-dimension override
    let p = TrendPolicy {
        expected_intervals: [("d".to_owned(), 60u64)].into_iter().collect(),
        ..policy()
    };
    let mut r = run("d", 0, "ok", 10, None);
    r.executed_at = now() - Duration::seconds(61);
    assert_eq!(evaluate_dimension(&p, "d", &[r], now()).status, Grade::Warn);
}

#[test]
fn the_window_is_per_dimension_and_bounded() {
    // a failure just outside the window of 3 runs does not count; unordered input is sorted
    let p = TrendPolicy {
        window_runs: 3,
        recent_failure_runs: 4,
        ..policy()
    };
    let mut runs = series(
        "d",
        &[
            ("ok", 10, None),
            ("ok", 10, None),
            ("ok", 10, None),
            ("fail", 10, None),
        ],
    );
    runs.reverse();
    let t = evaluate_dimension(&p, "d", &runs, now());
    assert_eq!(t.window.len(), 3);
    assert_eq!(t.window[0].run_id, "d-0");
    assert_eq!(t.status, Grade::Ok);
}

#[test]
fn snapshot_grades_every_dimension_and_skips_ignored_ones() {
    let p = TrendPolicy {
        dimensions: vec!["daily_bars".into(), "macro_events".into()],
        ignore_dimensions: vec!["retired".into()],
        ..policy()
    };
    let mut runs = RunsByDimension::new();
    runs.insert(
        "daily_bars".into(),
        series(
            "daily_bars",
            &[("ok", 10, Some(5.0)), ("ok", 12, Some(5.0))],
        ),
    );
    runs.insert(
        "intraday_trades".into(),
        series("intraday_trades", &[("ok", 1, None), ("ok", 100, None)]),
    );
    runs.insert("retired".into(), series("retired", &[("fail", 0, None)]));
    let s = evaluate(&p, &Source::new("ingest", "t"), &runs, now());
    let names: Vec<&str> = s.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["daily_bars", "macro_events", "intraday_trades"]);
    assert_eq!(
        s.component("macro_events").map(|c| c.status),
        Some(Grade::Warn),
        "configured but never reported"
    );
    assert_eq!(
        s.component("intraday_trades").map(|c| c.status),
        Some(Grade::Warn)
    );
    assert_eq!(s.status, Grade::Warn);
    assert_eq!(s.kind, topics::INGEST_TRENDS);
    assert_eq!(s.metrics.get("interval_seconds"), Some(&60.0));
    assert_eq!(s.metrics.get("dimensions_warn"), Some(&2.0));
    assert!(
        s.summary.starts_with("2 of 3 dimensions need attention"),
        "{}",
        s.summary
    );
    assert!(
        s.markdown.starts_with("### Ingest trends: WARN"),
        "{}",
        s.markdown
    );
    assert!(
        s.markdown.contains("#### intraday_trades: WARN"),
        "{}",
        s.markdown
    );
    assert!(
        s.markdown.contains("- rows written: 1, 100"),
        "{}",
        s.markdown
    );
    assert!(
        s.markdown.contains("- freshness: 5.0s, 5.0s"),
        "{}",
        s.markdown
    );
    assert!(s.markdown.contains("∅"), "{}", s.markdown);
    let daily = s.component("daily_bars").expect("daily");
    assert_eq!(daily.status, Grade::Ok);
    assert!(matches!(daily.details.get("recent_runs"), Some(DetailValue::List(l)) if l.len() == 2));
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn no_history_at_all_is_warn() {
    let s = evaluate(
        &policy(),
        &Source::new("ingest", "t"),
        &RunsByDimension::new(),
        now(),
    );
    assert_eq!(s.status, Grade::Warn);
    assert_eq!(s.components[0].name, "history");
    assert!(s.summary.contains("no ingest history"), "{}", s.summary);
    let s = evaluate(
        &TrendPolicy::default(),
        &Source::new("ingest", "t"),
        &RunsByDimension::new(),
        now(),
    );
    assert_eq!(s.status, Grade::Warn);
    assert_eq!(s.components.len(), 3);
    assert!(s.summary.contains("no ingest history"), "{}", s.summary);
}
