//! Unit tests of the retention rules: coverage, minimum and gap thresholds at, just below and
//! just above their boundaries, empty tables, query errors and the fixed cap/target quirk.

use super::*;

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().expect("time")
}

fn table(optional: bool, max_gap_hours: Option<u32>) -> TablePolicy {
    TablePolicy {
        name: "daily_bars".into(),
        table: "market_data.daily_bars".into(),
        time_column: "ts".into(),
        target_days: 365,
        minimum_days: 300,
        optional,
        max_gap_hours,
    }
}

fn policy(t: TablePolicy) -> RetentionPolicy {
    RetentionPolicy {
        interval_seconds: 60,
        tables: vec![t],
    }
}

fn observed(
    earliest: DateTime<Utc>,
    latest: DateTime<Utc>,
    gaps: Vec<Gap>,
) -> Vec<TableObservation> {
    vec![TableObservation {
        name: "daily_bars".into(),
        result: Ok(TableWindow {
            earliest: Some(earliest),
            latest: Some(latest),
            gaps,
            gap_check: GapCheck::Done,
        }),
    }]
}

fn grade_of(t: TablePolicy, obs: &[TableObservation]) -> (Grade, String) {
    let s = evaluate(&policy(t), &Source::new("ingest", "t"), obs, now());
    assert_eq!(s.validate(), Ok(()));
    (s.components[0].status, s.components[0].summary.clone())
}

fn coverage(earliest: DateTime<Utc>, optional: bool) -> (Grade, String) {
    grade_of(
        table(optional, None),
        &observed(earliest, now(), Vec::new()),
    )
}

#[test]
fn coverage_against_the_target_at_below_and_above() {
    let target = now() - Duration::days(365);
    let (g, summary) = coverage(target, false);
    assert_eq!(g, Grade::Ok, "exactly the target");
    assert_eq!(summary, "coverage 365.0 d (target 365 d)");
    assert_eq!(
        coverage(target + Duration::seconds(1), false).0,
        Grade::Warn,
        "just short of the target"
    );
    assert_eq!(
        coverage(target - Duration::seconds(1), false).0,
        Grade::Ok,
        "just older than the target"
    );
    // quirk 6 fixed: history well beyond the target is fine, nothing caps it
    assert_eq!(coverage(now() - Duration::days(366), false).0, Grade::Ok);
    assert_eq!(coverage(now() - Duration::days(3_000), false).0, Grade::Ok);
}

#[test]
fn coverage_against_the_minimum_at_below_and_above() {
    let minimum = now() - Duration::days(300);
    let (g, summary) = coverage(minimum, false);
    assert_eq!(g, Grade::Warn, "exactly the minimum");
    assert_eq!(summary, "coverage 300.0 d below the 365 d target");
    assert_eq!(
        coverage(minimum - Duration::seconds(1), false).0,
        Grade::Warn
    );
    let (g, summary) = coverage(minimum + Duration::seconds(1), false);
    assert_eq!(g, Grade::Fail, "just short of the minimum");
    assert_eq!(summary, "coverage 300.0 d below the minimum 300 d");
    assert_eq!(
        coverage(minimum + Duration::seconds(1), true).0,
        Grade::Warn,
        "optional"
    );
    // a row stamped in the future counts as no coverage, not negative coverage
    assert_eq!(coverage(now() + Duration::days(1), false).0, Grade::Fail);
}

#[test]
fn empty_tables_and_query_errors() {
    let empty = vec![TableObservation {
        name: "daily_bars".into(),
        result: Ok(TableWindow {
            earliest: None,
            latest: None,
            gaps: Vec::new(),
            gap_check: GapCheck::Done,
        }),
    }];
    let (g, summary) = grade_of(table(false, Some(24)), &empty);
    assert_eq!(g, Grade::Fail);
    assert!(
        summary.starts_with("no rows in market_data.daily_bars"),
        "{summary}"
    );
    assert_eq!(grade_of(table(true, None), &empty).0, Grade::Warn);
    let broken = vec![TableObservation {
        name: "daily_bars".into(),
        result: Err("relation does not exist".into()),
    }];
    let (g, summary) = grade_of(table(true, None), &broken);
    assert_eq!(
        g,
        Grade::Fail,
        "a query error is fail even for optional tables"
    );
    assert_eq!(
        summary,
        "failed to query retention window: relation does not exist"
    );
    let (g, summary) = grade_of(table(false, None), &[]);
    assert_eq!(g, Grade::Fail);
    assert!(summary.contains("not observed"), "{summary}");
}

#[test]
fn gaps_inside_the_window_at_below_and_above() {
    let earliest = now() - Duration::days(400);
    let from = now() - Duration::days(100);
    let with_gap = |length: Duration| {
        grade_of(
            table(false, Some(120)),
            &observed(
                earliest,
                now(),
                vec![Gap {
                    from,
                    to: from + length,
                }],
            ),
        )
    };
    assert_eq!(
        with_gap(Duration::hours(120)).0,
        Grade::Ok,
        "exactly the maximum gap"
    );
    assert_eq!(
        with_gap(Duration::hours(120) - Duration::seconds(1)).0,
        Grade::Ok
    );
    let (g, summary) = with_gap(Duration::hours(120) + Duration::seconds(1));
    assert_eq!(g, Grade::Warn, "just above the maximum gap");
    assert!(
        summary.contains("gap of 5.0 d from 2026-08-20T12:00:00Z to 2026-08-25T12:00:01Z"),
        "{summary}"
    );
    // a gap is reported on top of short coverage, never lowering it
    let short = now() - Duration::days(10);
    let (g, _) = grade_of(
        table(false, Some(1)),
        &observed(
            short,
            now(),
            vec![Gap {
                from: short,
                to: short + Duration::hours(2),
            }],
        ),
    );
    assert_eq!(g, Grade::Fail);
}

#[test]
fn gaps_are_clipped_to_the_target_window() {
    let earliest = now() - Duration::days(400);
    let window_start = now() - Duration::days(365);
    let gap_into_window = |hours_inside: i64, extra_seconds: i64| {
        let gap = Gap {
            from: now() - Duration::days(380),
            to: window_start + Duration::hours(hours_inside) + Duration::seconds(extra_seconds),
        };
        grade_of(
            table(false, Some(120)),
            &observed(earliest, now(), vec![gap]),
        )
        .0
    };
    assert_eq!(
        gap_into_window(120, 0),
        Grade::Ok,
        "120 h inside the window"
    );
    assert_eq!(gap_into_window(120, 1), Grade::Warn);
    // entirely before the window: old history may be sparse
    let old = Gap {
        from: now() - Duration::days(399),
        to: now() - Duration::days(370),
    };
    assert_eq!(
        grade_of(
            table(false, Some(120)),
            &observed(earliest, now(), vec![old])
        )
        .0,
        Grade::Ok
    );
}

#[test]
fn the_stretch_since_the_newest_row_counts_as_a_gap() {
    let earliest = now() - Duration::days(400);
    let at = |latest: DateTime<Utc>| {
        grade_of(
            table(false, Some(120)),
            &observed(earliest, latest, Vec::new()),
        )
    };
    assert_eq!(at(now() - Duration::hours(120)).0, Grade::Ok);
    let (g, summary) = at(now() - Duration::hours(120) - Duration::seconds(1));
    assert_eq!(g, Grade::Warn);
    assert!(
        summary.contains("no rows since 2026-11-23T11:59:59Z"),
        "{summary}"
    );
    // without max_gap_hours nothing is checked
    assert_eq!(
        grade_of(
            table(false, None),
            &observed(earliest, now() - Duration::days(30), Vec::new())
        )
        .0,
        Grade::Ok
    );
}

#[test]
fn snapshot_summary_metrics_and_markdown() {
    let p = RetentionPolicy {
        interval_seconds: 30,
        ..RetentionPolicy::default()
    };
    let obs: Vec<TableObservation> = vec![
        TableObservation {
            name: "daily_bars".into(),
            result: observed(now() - Duration::days(400), now(), Vec::new())
                .remove(0)
                .result,
        },
        TableObservation {
            name: "intraday_trades".into(),
            result: observed(now() - Duration::days(3), now(), Vec::new())
                .remove(0)
                .result,
        },
        TableObservation {
            name: "macro_events".into(),
            result: Err("permission denied for table events".into()),
        },
    ];
    let s = evaluate(&p, &Source::new("ingest", "t"), &obs, now());
    assert_eq!(s.kind, topics::RETENTION);
    assert_eq!(s.status, Grade::Fail);
    assert_eq!(s.metrics.get("interval_seconds"), Some(&30.0));
    assert_eq!(
        (s.metrics["tables_ok"], s.metrics["tables_fail"]),
        (1.0, 2.0)
    );
    assert!(
        s.summary.starts_with("2 of 3 tables need attention"),
        "{}",
        s.summary
    );
    assert!(
        s.markdown.starts_with("### Data retention: FAIL"),
        "{}",
        s.markdown
    );
    assert!(
        s.markdown.contains("| Dataset | Status | Summary |"),
        "{}",
        s.markdown
    );
    assert!(s.markdown.contains("| daily_bars | market_data.daily_bars | 2025-10-24T12:00:00Z | 2026-11-28T12:00:00Z | 400.0 | 365 | none |"), "{}", s.markdown);
    let daily = s.component("daily_bars").expect("daily");
    assert_eq!(
        daily.details.get("coverage_days"),
        Some(&DetailValue::Float(400.0))
    );
    assert_eq!(s.validate(), Ok(()));
    let none = evaluate(
        &RetentionPolicy {
            interval_seconds: 60,
            tables: Vec::new(),
        },
        &Source::new("ingest", "t"),
        &[],
        now(),
    );
    assert_eq!(none.status, Grade::Ok);
    assert!(
        none.summary.starts_with("no tables configured"),
        "{}",
        none.summary
    );
}
