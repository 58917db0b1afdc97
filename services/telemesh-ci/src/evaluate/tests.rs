//! Data-driven tests of every grading rule of `evaluate`, at, below and above each threshold.

use chrono::TimeZone;

use super::*;
use crate::flakes::{FlakeFindings, FlakyTest};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("time")
}

fn source() -> Source {
    Source::new("ci", "test")
}

fn run(
    workflow: &str,
    number: u64,
    conclusion: &str,
    branch: &str,
    minutes_ago: i64,
) -> PipelineRun {
    PipelineRun {
        run_id: 1000 + number,
        workflow: workflow.into(),
        workflow_path: Some(".github/workflows/ci.yml".into()),
        run_number: number,
        run_attempt: 1,
        display_title: format!("{workflow} #{number}"),
        event: Some("push".into()),
        conclusion: Conclusion::parse(conclusion),
        branch: Some(branch.into()),
        commit: format!("{number:040}"),
        actor: Some("octocat".into()),
        url: format!("https://github.com/o/r/actions/runs/{number}"),
        repository: Some("o/r".into()),
        repository_url: Some("https://github.com/o/r".into()),
        started_at: Some(now() - Duration::minutes(minutes_ago + 5)),
        completed_at: Some(now() - Duration::minutes(minutes_ago)),
    }
}

fn grade_of(s: &Snapshot, component: &str) -> Grade {
    s.component(component).expect("component").status
}

#[test]
fn main_pipeline_grade_follows_the_last_decisive_conclusion() {
    let policy = CiPolicy::default();
    // (conclusions oldest first, expected main_pipeline grade, expected streak)
    let table: &[(&[&str], Grade, f64)] = &[
        (&[], Grade::Warn, 0.0),
        (&["success"], Grade::Ok, 0.0),
        (&["failure"], Grade::Fail, 1.0),
        (&["timed_out"], Grade::Fail, 1.0),
        (&["cancelled"], Grade::Fail, 1.0),
        (&["failure", "success"], Grade::Ok, 0.0),
        (&["success", "failure", "cancelled"], Grade::Fail, 2.0),
        // Other conclusions do nothing (§8.2 step 3): the grade stays with the last decisive run.
        (&["failure", "skipped"], Grade::Fail, 1.0),
        (&["success", "neutral", "action_required"], Grade::Ok, 0.0),
        (&["skipped"], Grade::Warn, 0.0),
    ];
    for (conclusions, want, streak) in table {
        let runs: Vec<_> = conclusions
            .iter()
            .enumerate()
            .map(|(i, c)| run("CI", i as u64 + 1, c, "main", 100 - i as i64))
            .collect();
        let s = pipeline(&policy, &runs, source(), now());
        assert_eq!(grade_of(&s, MAIN_PIPELINE), *want, "{conclusions:?}");
        assert_eq!(s.metrics["failure_streak"], *streak, "{conclusions:?}");
        assert!(s.validate().is_ok());
    }
}

#[test]
fn main_pipeline_is_matched_by_name_or_path_and_branches() {
    let by_path = CiPolicy {
        main_workflow: ".github/workflows/ci.yml".into(),
        ..CiPolicy::default()
    };
    let s = pipeline(
        &by_path,
        &[run("Build", 1, "failure", "main", 1)],
        source(),
        now(),
    );
    assert_eq!(grade_of(&s, MAIN_PIPELINE), Grade::Fail);
    let main_only = CiPolicy {
        main_branches: vec!["main".into()],
        ..CiPolicy::default()
    };
    let s = pipeline(
        &main_only,
        &[run("CI", 1, "failure", "feature", 1)],
        source(),
        now(),
    );
    assert_eq!(
        grade_of(&s, MAIN_PIPELINE),
        Grade::Warn,
        "feature branch does not count"
    );
    // …but it is listed with the other workflows, where a failure warns.
    assert_eq!(grade_of(&s, WORKFLOWS), Grade::Warn);
}

#[test]
fn freshness_warns_strictly_after_stale_after() {
    let policy = CiPolicy::default(); // 7 days
    let week = 7 * 24 * 60;
    for (minutes_ago, want) in [
        (week - 1, Grade::Ok),
        (week, Grade::Ok),
        (week + 1, Grade::Warn),
    ] {
        let s = pipeline(
            &policy,
            &[run("CI", 1, "success", "main", minutes_ago)],
            source(),
            now(),
        );
        assert_eq!(grade_of(&s, FRESHNESS), want, "{minutes_ago} min");
    }
}

#[test]
fn other_workflows_warn_only_while_their_last_run_fails() {
    let policy = CiPolicy::default();
    let table: &[(&[&str], Grade)] = &[
        (&["success"], Grade::Ok),
        (&["failure"], Grade::Warn),
        (&["failure", "success"], Grade::Ok),
        (&["success", "timed_out"], Grade::Warn),
    ];
    for (conclusions, want) in table {
        let runs: Vec<_> = conclusions
            .iter()
            .enumerate()
            .map(|(i, c)| run("Nightly", i as u64 + 1, c, "main", 100 - i as i64))
            .collect();
        let s = pipeline(&policy, &runs, source(), now());
        assert_eq!(grade_of(&s, WORKFLOWS), *want, "{conclusions:?}");
    }
}

#[test]
fn time_to_recovery_and_alert_details() {
    let policy = CiPolicy::default();
    let runs = [
        run("CI", 1, "failure", "main", 90),
        run("CI", 2, "failure", "main", 60),
        run("CI", 3, "success", "main", 30),
    ];
    let s = pipeline(&policy, &runs, source(), now());
    assert_eq!(s.metrics["time_to_recovery_seconds"], 3600.0);
    let s = pipeline(&policy, &runs[..2], source(), now());
    let c = s.component(MAIN_PIPELINE).expect("main");
    for key in [
        "workflow",
        "run_number",
        "conclusion",
        "branch",
        "commit",
        "actor",
        "run_url",
    ] {
        assert!(c.details.contains_key(key), "{key}");
    }
    assert_eq!(c.details["conclusion"], DetailValue::Text("failure".into()));
    assert!(
        s.markdown.contains("2 failing runs in a row"),
        "{}",
        s.markdown
    );
}

fn findings(flaky: usize, uploads: usize) -> FlakeFindings {
    FlakeFindings {
        window_start: now() - Duration::days(7),
        uploads,
        cases: 10,
        failures: flaky,
        flaky: (0..flaky)
            .map(|i| FlakyTest {
                test_id: format!("t{i}|`x`"),
                reasons: vec!["failed then passed on commit abc".into()],
                failures: 1,
                passes: 1,
                last_failure_at: None,
                last_failure: None,
                last_run_url: None,
            })
            .collect(),
        newest_failures: Vec::new(),
    }
}

#[test]
fn flaky_count_at_below_and_above_each_boundary() {
    let policy = CiPolicy {
        warn_flaky: 2,
        fail_flaky: 4,
        ..CiPolicy::default()
    };
    for (n, want) in [
        (0, Grade::Ok),
        (1, Grade::Ok),
        (2, Grade::Warn),
        (3, Grade::Warn),
        (4, Grade::Fail),
        (5, Grade::Fail),
    ] {
        let s = flakes(&policy, &findings(n, 2), source(), now());
        assert_eq!(grade_of(&s, FLAKY_TESTS), want, "{n} flaky");
        assert!(s.validate().is_ok());
    }
    let s = flakes(&policy, &findings(0, 0), source(), now());
    assert_eq!(
        grade_of(&s, REPORTS),
        Grade::Warn,
        "no upload in the window"
    );
    let s = flakes(&policy, &findings(1, 1), source(), now());
    assert!(
        s.markdown.contains("t0\\|'x'"),
        "cell escaped: {}",
        s.markdown
    );
}

fn entry(label: &str, hours_ago: i64, percent: f64, domains: &[(&str, f64)]) -> CoverageEntry {
    CoverageEntry {
        label: label.into(),
        recorded_at: now() - Duration::hours(hours_ago),
        percent,
        domains: domains
            .iter()
            .map(|(d, p)| DomainCoverage {
                domain: (*d).into(),
                files: 1,
                lines_valid: 100,
                lines_covered: *p as u64,
                percent: *p,
            })
            .collect(),
    }
}

#[test]
fn coverage_floor_and_drop_at_below_and_above_each_boundary() {
    let policy = CiPolicy {
        coverage_floor: 70.0,
        max_coverage_drop: 1.0,
        ..CiPolicy::default()
    };
    // (previous, latest, expected overall grade)
    let table = [
        (None, 69.99, Grade::Fail),
        (None, 70.0, Grade::Ok),
        (None, 70.01, Grade::Ok),
        (Some(80.0), 79.01, Grade::Ok),   // drop 0.99
        (Some(80.0), 79.0, Grade::Ok),    // drop 1.00, at the boundary
        (Some(80.0), 78.99, Grade::Warn), // drop 1.01
        (Some(71.5), 69.0, Grade::Fail),  // below floor wins over drop
        (Some(60.0), 75.0, Grade::Ok),    // a rise
    ];
    for (previous, latest, want) in table {
        let mut trend = vec![entry("now", 1, latest, &[])];
        if let Some(p) = previous {
            trend.push(entry("before", 2, p, &[]));
        }
        let state = CoverageState {
            trend,
            formatter: None,
        };
        let s = coverage(&policy, &state, source(), now());
        assert_eq!(grade_of(&s, OVERALL), want, "{previous:?} → {latest}");
        assert!(s.validate().is_ok());
    }
    let s = coverage(&policy, &CoverageState::default(), source(), now());
    assert_eq!(grade_of(&s, OVERALL), Grade::Warn, "no report yet");
}

#[test]
fn lagging_domains_at_below_and_above_the_threshold() {
    let policy = CiPolicy::default(); // 80 %
    for (domain_percent, want, lagging) in [
        (79.99, Grade::Warn, 1),
        (80.0, Grade::Ok, 0),
        (80.01, Grade::Ok, 0),
    ] {
        let state = CoverageState {
            trend: vec![entry(
                "now",
                1,
                90.0,
                &[("src/a", 95.0), ("src/b", domain_percent)],
            )],
            formatter: Some(FormatterMode::global()),
        };
        let s = coverage(&policy, &state, source(), now());
        let c = s.component(DOMAINS).expect("domains");
        assert_eq!(c.status, want, "{domain_percent}");
        assert_eq!(c.details["lagging_count"], DetailValue::Int(lagging));
        assert_eq!(c.details["worst_domain"], DetailValue::Text("src/b".into()));
        assert_eq!(grade_of(&s, FORMATTER), Grade::Ok);
    }
}
