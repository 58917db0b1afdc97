//! Data-driven tests of every system-validation rule, at, below and above each threshold.

use chrono::TimeZone;

use super::*;
use crate::report::{parse_report, Check};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0)
        .single()
        .expect("valid time")
}

fn source() -> Source {
    Source::new("system-validation", "test")
}

fn hours_ago(h: f64) -> DateTime<Utc> {
    now() - Duration::milliseconds((h * 3_600_000.0) as i64)
}

/// A report of `passed` passed and `failed` failed checks, `age` hours old.
fn report(passed: usize, failed: usize, age: f64) -> Report {
    let mut checks = Vec::new();
    for i in 0..passed {
        checks.push(Check {
            name: format!("ok{i}"),
            outcome: Outcome::Passed,
            message: None,
        });
    }
    for i in 0..failed {
        checks.push(Check {
            name: format!("bad{i}"),
            outcome: Outcome::Failed,
            message: Some("broken".into()),
        });
    }
    Report {
        timestamp: Some(hours_ago(age)),
        checks,
        ..Report::default()
    }
}

fn run(report: Report, history: Vec<HistoryEntry>) -> Snapshot {
    let s = evaluate(
        &SystemValidationSettings::default(),
        &ValidationState::Report {
            report: Box::new(report),
            origin: Origin::File("/r.json".into()),
            received_at: now(),
            history,
        },
        source(),
        now(),
    );
    s.validate().expect("valid snapshot");
    s
}

fn grade(s: &Snapshot, name: &str) -> Grade {
    s.component(name).expect("component").status
}

#[test]
fn all_checks_passed_on_a_fresh_report_is_ok() {
    let s = run(report(20, 0, 1.0), vec![]);
    assert_eq!(s.status, Grade::Ok, "{:#?}", s.components);
    assert_eq!(s.kind, KIND);
    assert_eq!(s.metrics["success_rate"], 1.0);
}

#[test]
fn check_grades() {
    for (passed, failed, want) in [
        (0, 0, Grade::Warn),  // no checks
        (3, 0, Grade::Ok),    // all passed
        (99, 1, Grade::Warn), // some passed
        (1, 99, Grade::Warn),
        (0, 3, Grade::Fail), // none passed
    ] {
        assert_eq!(
            grade(&run(report(passed, failed, 1.0), vec![]), CHECKS),
            want,
            "{passed} passed {failed} failed"
        );
    }
}

#[test]
fn report_and_summary_status_escalate_but_never_lower() {
    for (status, summary, want) in [
        (Some(Outcome::Passed), None, Grade::Ok),
        (Some(Outcome::Unknown), None, Grade::Ok),
        (Some(Outcome::Warned), None, Grade::Warn),
        (None, Some(Outcome::Failed), Grade::Fail),
        (Some(Outcome::Warned), Some(Outcome::Failed), Grade::Fail),
    ] {
        let mut r = report(5, 0, 1.0);
        r.status = status;
        r.summary_status = summary;
        assert_eq!(
            grade(&run(r, vec![]), CHECKS),
            want,
            "{status:?} {summary:?}"
        );
    }
    let mut r = report(0, 5, 1.0);
    r.status = Some(Outcome::Passed);
    assert_eq!(grade(&run(r, vec![]), CHECKS), Grade::Fail);
}

#[test]
fn reported_counts_are_used_when_consistent() {
    let mut r = report(2, 0, 1.0);
    r.total_checks = Some(10);
    r.passed_checks = Some(9);
    let c = counts(&r);
    assert_eq!((c.total, c.passed, c.failed), (10, 9, 1));
    assert!((c.success_rate - 0.9).abs() < 1e-12);
    // a total below the listed checks is ignored
    r.total_checks = Some(1);
    r.passed_checks = None;
    assert_eq!(counts(&r).total, 2);
    // a reported success rate wins
    r.success_rate = Some(0.5);
    assert_eq!(counts(&r).success_rate, 0.5);
}

#[test]
fn staleness_thresholds() {
    // warn above 24 h, fail above 48 h
    for (age, want) in [
        (23.99, Grade::Ok),
        (24.0, Grade::Ok),
        (24.01, Grade::Warn),
        (48.0, Grade::Warn),
        (48.01, Grade::Fail),
        (1000.0, Grade::Fail),
    ] {
        assert_eq!(
            grade(&run(report(3, 0, age), vec![]), REPORT),
            want,
            "{age} h"
        );
    }
}

#[test]
fn a_report_without_timestamp_ages_from_its_arrival() {
    let mut r = report(3, 0, 0.0);
    r.timestamp = None;
    let s = evaluate(
        &SystemValidationSettings::default(),
        &ValidationState::Report {
            report: Box::new(r),
            origin: Origin::Upload,
            received_at: hours_ago(50.0),
            history: vec![],
        },
        source(),
        now(),
    );
    assert_eq!(grade(&s, REPORT), Grade::Fail);
}

#[test]
fn future_dates_and_unreadable_fields_warn() {
    let r = report(3, 0, -1.0);
    assert_eq!(grade(&run(r, vec![]), REPORT), Grade::Warn);
    let r = report(3, 0, -0.05); // 3 minutes ahead: within tolerance
    assert_eq!(grade(&run(r, vec![]), REPORT), Grade::Ok);
    let mut r = report(3, 0, 1.0);
    r.problems.push("success_rate 250 is neither…".into());
    assert_eq!(grade(&run(r, vec![]), REPORT), Grade::Warn);
}

fn entry(age: f64, grade: Grade, rate: f64) -> HistoryEntry {
    HistoryEntry {
        at: hours_ago(age),
        grade,
        success_rate: rate,
    }
}

#[test]
fn success_rate_thresholds_over_the_window() {
    // warn below 0.95, fail below 0.85 (average of the window, current included)
    for (passed, failed, want) in [
        (95, 5, Grade::Ok),    // 0.95: at warn
        (94, 6, Grade::Warn),  // 0.94
        (85, 15, Grade::Warn), // 0.85: at fail
        (84, 16, Grade::Fail), // 0.84
    ] {
        assert_eq!(
            grade(&run(report(passed, failed, 1.0), vec![]), RELIABILITY),
            want,
            "{passed}/{failed}"
        );
    }
    // history in the window lifts the average; history outside it does not count
    let good = vec![entry(10.0, Grade::Ok, 1.0), entry(20.0, Grade::Ok, 1.0)];
    let s = run(report(80, 20, 1.0), good);
    assert!((s.metrics["average_success_rate"] - (0.8 + 2.0) / 3.0).abs() < 1e-9);
    let old = vec![entry(100.0, Grade::Ok, 1.0)];
    let s = run(report(80, 20, 1.0), old);
    assert_eq!(s.metrics["average_success_rate"], 0.8);
    assert_eq!(grade(&s, RELIABILITY), Grade::Fail);
}

#[test]
fn streaks() {
    let failed = |age| entry(age, Grade::Fail, 0.0);
    let warned = |age| entry(age, Grade::Warn, 0.99);
    let fine = |age| entry(age, Grade::Ok, 1.0);
    // settings: fail streak >= 1 warn, >= 2 fail; warn streak >= 2 warn. Rates kept high by
    // giving the current report 100 % reported success so only streaks grade.
    let with_status = |outcome: Option<Outcome>| {
        let mut r = report(10, 0, 1.0);
        r.status = outcome;
        r.success_rate = Some(1.0);
        r
    };
    let s = run(with_status(Some(Outcome::Failed)), vec![fine(2.0)]);
    assert_eq!(
        s.component(RELIABILITY).unwrap().details["fail_streak"],
        1u32.into()
    );
    let cases = [
        (None, vec![fine(2.0)], Grade::Ok),
        (Some(Outcome::Failed), vec![fine(2.0)], Grade::Warn), // streak 1
        (Some(Outcome::Failed), vec![failed(200.0)], Grade::Fail), // streak 2 (outside window still counts)
        (None, vec![failed(200.0), failed(201.0)], Grade::Ok),     // streak broken by the current
        (Some(Outcome::Warned), vec![fine(2.0)], Grade::Ok),       // warn streak 1
        (Some(Outcome::Warned), vec![warned(2.0)], Grade::Warn),   // warn streak 2
    ];
    for (i, (status, history, want)) in cases.into_iter().enumerate() {
        let s = run(with_status(status), history);
        assert_eq!(
            grade(&s, RELIABILITY),
            want,
            "case {i}: {:?}",
            s.component(RELIABILITY)
        );
    }
}

#[test]
fn missing_and_unreadable_reports() {
    let settings = SystemValidationSettings::default();
    let s = evaluate(
        &settings,
        &ValidationState::NoReport {
            expected_at: Some("/r.json".into()),
        },
        source(),
        now(),
    );
    assert_eq!(s.status, Grade::Warn);
    assert!(s.summary.contains("/r.json"));
    let s = evaluate(
        &settings,
        &ValidationState::Unreadable {
            origin: Origin::Upload,
            received_at: now(),
            error: "not JSON".into(),
        },
        source(),
        now(),
    );
    assert_eq!(s.status, Grade::Fail);
}

#[test]
fn a_hostile_report_grades_without_panicking() {
    let r = parse_report(
        br#"{"timestamp":"9999-12-31T23:59:59Z","results":{"a":{"status":null},"b":[1]},
             "total_checks":18446744073709551615,"passed_checks":0,"success_rate":1e308}"#,
    )
    .unwrap();
    let s = run(r, vec![]);
    assert_eq!(s.status, Grade::Fail);
    assert!(s.metrics.values().all(|v| v.is_finite()));
}
