//! Reports read from a directory (`ci.reports_dir`) on the real filesystem: pytest's real JUnit
//! runs (one with a sidecar, one named `<suite>@<commit>.xml`), coverage.py's Cobertura and
//! LCOV go through the upload's record path once a file stopped changing, exactly once per
//! content (also after a restart); hostile files (malformed XML, oversized, a symlink out of the
//! dir, a FIFO, a file still being written, an unreadable one, a non-UTF-8 name, a bad sidecar,
//! no commit) are each refused with a reason and moved to `refused/` while the next file goes
//! through; thousands of files drain over bounded scans; the domain publishes the refusals.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use telemesh_ci::domain::CiDomain;
use telemesh_ci::flakes::{detect, FlakePolicy};
use telemesh_ci::intake::{Capacity, CiStore};
use telemesh_ci::kinds;
use telemesh_ci::reports_dir::{record_in, DirStatus, Recording, ReportsDir, COMPONENT};
use telemesh_ci::settings::CiSettings;
use telemesh_core::{DetailValue, Grade};
use telemesh_service::testing::TestService;

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/ci")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn write(dir: &Path, name: &str, body: &[u8]) {
    std::fs::write(dir.join(name), body).expect("write");
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn store() -> CiStore {
    CiStore::new(Capacity {
        uploads: 5_000,
        ..Capacity::default()
    })
}

/// Scans until nothing is pending (every file read or refused), at most `max` scans.
fn drain(reader: &ReportsDir, store: &CiStore, max: usize) -> DirStatus {
    let mut status = reader.scan(store, Utc::now());
    for _ in 0..max {
        if status.pending == 0 && status.recorded == 0 {
            return status;
        }
        status = reader.scan(store, Utc::now());
    }
    panic!("still pending after {max} scans: {status:?}");
}

#[test]
fn reports_and_coverage_are_recorded_once_when_settled_and_survive_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let store = store();
    let reader = ReportsDir::new(dir);
    write(dir, "pytest@abc123.xml", &fixture("junit/pytest-run1.xml"));
    // Files are read oldest first (by modification time): the first run was written earlier.
    std::fs::File::options()
        .write(true)
        .open(dir.join("pytest@abc123.xml"))
        .expect("open")
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .expect("set mtime");
    write(dir, "b-rerun.xml", &fixture("junit/pytest-run2.xml"));
    write(
        dir,
        "b-rerun.meta.json",
        br#"{"commit": "abc123", "branch": "main", "run_id": 42, "run_url": "https://ci.example/runs/42", "suite": "pytest"}"#,
    );
    write(
        dir,
        "coverage.xml",
        &fixture("coverage/coverage.cobertura.xml"),
    );
    write(dir, "build-7.lcov", &fixture("coverage/coverage.lcov"));
    write(dir, ".in-progress.xml", b"<testsuite");
    write(dir, "c.xml.tmp", b"<testsuite");

    // First sight: nothing is read until a file looks the same on the next gather.
    let first = reader.scan(&store, Utc::now());
    assert_eq!((first.recorded, first.pending), (0, 4), "{first:?}");
    assert!(store.view().uploads.is_empty());

    let second = reader.scan(&store, Utc::now());
    assert_eq!((second.recorded, second.pending), (4, 0), "{second:?}");
    assert_eq!(second.refused_now, 0, "{second:?}");
    let view = store.view();
    assert_eq!(view.uploads.len(), 2);
    let run1 = &view.uploads[0];
    assert_eq!(
        (run1.commit.as_str(), run1.suite.as_deref()),
        ("abc123", Some("pytest"))
    );
    let run2 = &view.uploads[1];
    assert_eq!(run2.branch.as_deref(), Some("main"));
    assert_eq!(run2.run_id.as_deref(), Some("42"));
    assert_eq!(run2.run_url.as_deref(), Some("https://ci.example/runs/42"));
    // The flaky test failed in the first file and passed in the second, for one commit.
    let findings = detect(&view.uploads, &FlakePolicy::default(), Utc::now());
    assert!(
        findings
            .flaky
            .iter()
            .any(|f| f.test_id.ends_with("test_flaky_network")),
        "{findings:?}"
    );
    let labels: Vec<&str> = view
        .coverage
        .trend
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(labels.len(), 2);
    assert!(
        labels.contains(&"coverage") && labels.contains(&"build-7"),
        "{labels:?}"
    );
    assert_eq!(
        names(dir),
        [".in-progress.xml", "c.xml.tmp", "processed", "refused"]
    );
    assert_eq!(
        names(&dir.join("processed")),
        [
            ".ledger",
            "b-rerun.meta.json",
            "b-rerun.xml",
            "build-7.lcov",
            "coverage.xml",
            "pytest@abc123.xml"
        ]
    );

    // The same content again (other names, two at once): moved, not recorded again.
    write(dir, "copy@abc123.xml", &fixture("junit/pytest-run1.xml"));
    write(dir, "copy2@abc123.xml", &fixture("junit/pytest-run1.xml"));
    let again = drain(&reader, &store, 4);
    assert_eq!(again.duplicates_total, 2, "{again:?}");
    assert_eq!(store.view().uploads.len(), 2);
    // Two new copies of one new content in one gather: recorded once.
    write(dir, "twin-a@fff999.xml", &fixture("junit/pytest-run2.xml"));
    write(dir, "twin-b@fff999.xml", &fixture("junit/pytest-run2.xml"));
    let twins = drain(&reader, &store, 4);
    assert_eq!(twins.duplicates_total, 3, "{twins:?}");
    assert_eq!(store.view().uploads.len(), 3);
    write(dir, "pytest@abc123.xml", &fixture("junit/pytest-run1.xml"));
    drain(&reader, &store, 3);
    assert_eq!(store.view().uploads.len(), 3);
    assert!(dir.join("processed/pytest@abc123.xml.1").exists());

    // A restart (new reader, empty memory): the ledger still knows the content.
    let restarted = ReportsDir::new(dir);
    let fresh = self::store();
    write(dir, "pytest@abc123.xml", &fixture("junit/pytest-run1.xml"));
    let status = drain(&restarted, &fresh, 3);
    assert_eq!(status.duplicates_total, 1, "{status:?}");
    assert!(fresh.view().uploads.is_empty());
    // New content still goes through after the restart.
    write(
        dir,
        "d@def456.xml",
        &fixture("junit/surefire-TEST-demo.CalcTest.xml"),
    );
    let status = drain(&restarted, &fresh, 3);
    assert_eq!(status.recorded_total, 1, "{status:?}");
    assert_eq!(fresh.view().uploads[0].commit, "def456");
}

#[test]
fn hostile_files_are_refused_with_a_reason_and_the_next_one_goes_through() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let outside = tempfile::tempdir().expect("outside");
    let secret = outside.path().join("secret.xml");
    std::fs::write(&secret, fixture("junit/pytest-run1.xml")).expect("write");
    let store = store();
    let reader = ReportsDir::new(dir);

    write(dir, "bad@c1.xml", b"<testsuite><testcase name='t'>");
    let big = std::fs::File::create(dir.join("big@c1.xml")).expect("create");
    big.set_len(16 * 1024 * 1024 + 1).expect("sparse");
    drop(big);
    std::os::unix::fs::symlink(&secret, dir.join("link@c1.xml")).expect("symlink");
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("pipe@c1.xml"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    write(dir, "nocommit.xml", &fixture("junit/pytest-run1.xml"));
    write(dir, "notes.txt", b"hello");
    write(dir, "side@c1.xml", &fixture("junit/pytest-run1.xml"));
    write(dir, "side@c1.meta.json", br#"{"commit": 5}"#);
    write(dir, "evil@c1.xml", &fixture("junit/pytest-run1.xml"));
    write(
        dir,
        "evil@c1.meta.json",
        br#"{"commit": "c1", "run_url": "javascript:alert(1)"}"#,
    );
    std::fs::write(
        dir.join(OsStr::from_bytes(b"latin1-\xe9@c1.xml")),
        fixture("junit/pytest-run1.xml"),
    )
    .expect("write");
    write(dir, "locked@c1.xml", &fixture("junit/pytest-run2.xml"));
    std::fs::set_permissions(
        dir.join("locked@c1.xml"),
        std::fs::Permissions::from_mode(0o000),
    )
    .expect("chmod");
    // root reads a mode-000 file anyway: then it is recorded like any other
    let locked_readable = std::fs::File::open(dir.join("locked@c1.xml")).is_ok();
    write(
        dir,
        "good@c1.xml",
        &fixture("junit/surefire-TEST-demo.CalcTest.xml"),
    );
    let partial = fixture("junit/pytest-run2.xml");
    let (head, tail) = partial.split_at(partial.len() / 2);
    write(dir, "growing@c2.xml", head);

    // Links, FIFOs, oversized files and non-UTF-8 names are refused at first sight.
    let first = reader.scan(&store, Utc::now());
    assert_eq!(first.recorded, 0, "{first:?}");
    assert!(secret.exists(), "the link's target is never moved");
    // The growing file changes between two gathers: not read yet.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("growing@c2.xml"))
        .expect("open");
    use std::io::Write;
    file.write_all(&tail[..tail.len() / 2]).expect("append");
    let second = reader.scan(&store, Utc::now());
    assert!(
        !store.view().uploads.iter().any(|u| u.commit == "c2"),
        "a file still being written is not read"
    );
    assert!(second.pending >= 1, "{second:?}");
    file.write_all(&tail[tail.len() / 2..]).expect("append");
    drop(file);
    let status = drain(&reader, &store, 4);

    let commits: Vec<String> = store
        .view()
        .uploads
        .iter()
        .map(|u| format!("{}:{}", u.commit, u.report.cases.len()))
        .collect();
    let mut want = vec!["c1:4".to_owned(), "c2:7".to_owned()];
    if locked_readable {
        want.push("c1:7".to_owned());
    }
    let mut got = commits.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{commits:?}");

    let refusals = status.refusals.join("\n");
    let mut expect = vec![
        ("bad@c1.xml", "report is not well-formed XML"),
        ("big@c1.xml", "upload limit"),
        ("link@c1.xml", "a symbolic link"),
        ("pipe@c1.xml", "not a regular file"),
        ("nocommit.xml", "no commit: write nocommit.meta.json"),
        ("notes.txt", "not a report file"),
        ("side@c1.xml", "bad sidecar side@c1.meta.json"),
        ("evil@c1.xml", "run_url must be an http(s) URL"),
        ("latin1-\u{fffd}@c1.xml", "the file name is not UTF-8"),
    ];
    if !locked_readable {
        expect.push(("locked@c1.xml", "cannot read"));
    }
    for (name, reason) in &expect {
        assert!(
            status
                .refusals
                .iter()
                .any(|r| r.starts_with(&format!("refused report {name}: ")) && r.contains(reason)),
            "{name}: {reason} in\n{refusals}"
        );
    }
    assert_eq!(status.refused_now, expect.len(), "{refusals}");
    assert_eq!(status.refused_total, expect.len() as u64);
    // Everything left the directory; sidecars went with their reports.
    assert_eq!(names(dir), ["processed", "refused"]);
    let refused = names(&dir.join("refused"));
    assert!(
        refused.contains(&"side@c1.meta.json".to_owned())
            && refused.contains(&"link@c1.xml".to_owned()),
        "{refused:?}"
    );

    // After a restart the refusals are still listed, with their reasons.
    let restarted = ReportsDir::new(dir).scan(&store, Utc::now());
    assert_eq!(restarted.refused_now, expect.len());
    assert!(
        restarted
            .refusals
            .iter()
            .any(|r| r.starts_with("refused report bad@c1.xml: report is not well-formed XML")),
        "{:?}",
        restarted.refusals
    );
    // Deleting a refused file clears it from the component.
    std::fs::remove_file(dir.join("refused/bad@c1.xml")).expect("rm");
    let cleared = ReportsDir::new(dir).scan(&store, Utc::now());
    assert_eq!(cleared.refused_now, expect.len() - 1);
}

#[test]
fn a_file_not_recorded_for_a_passing_reason_is_read_again_next_gather() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let store = store();
    let reader = ReportsDir::new(dir);
    write(dir, "r@c1.xml", &fixture("junit/pytest-run1.xml"));
    assert!(
        reader.collect(Utc::now()).candidates.is_empty(),
        "not settled yet"
    );
    // Recording fails for a passing reason (say, the journal is unreachable): kept in place.
    let collected = reader.collect(Utc::now());
    assert_eq!(collected.candidates.len(), 1);
    let candidate = &collected.candidates[0];
    assert_eq!(candidate.file, "r@c1.xml");
    let first_id = candidate.upload_id.clone();
    let status = reader.settle(
        collected,
        vec![Recording::Retry("journal unreachable".into())],
    );
    assert_eq!(
        (status.recorded, status.pending, status.refused_now),
        (0, 1, 0)
    );
    assert!(dir.join("r@c1.xml").exists());
    // The next gather takes it at once, with the same upload id.
    let collected = reader.collect(Utc::now());
    assert_eq!(collected.candidates.len(), 1);
    assert_eq!(collected.candidates[0].upload_id, first_id);
    let results = collected
        .candidates
        .iter()
        .map(|c| record_in(&store, c))
        .collect();
    let status = reader.settle(collected, results);
    assert_eq!(status.recorded, 1);
    assert_eq!(store.view().uploads.len(), 1);
    assert_eq!(store.view().uploads[0].upload_id, first_id);
    assert!(dir.join("processed/r@c1.xml").exists());
}

#[test]
fn thousands_of_files_drain_over_bounded_scans() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let store = store();
    let reader = ReportsDir::new(dir);
    for i in 0..2_000 {
        let body = if i % 100 == 7 {
            b"<testsuite><testcase".to_vec()
        } else {
            format!("<testsuite><testcase classname='c' name='t{i}'/></testsuite>").into_bytes()
        };
        write(dir, &format!("r{i:04}@commit{i}.xml"), &body);
    }
    let first = reader.scan(&store, Utc::now());
    assert_eq!(first.pending, 2_000);
    let second = reader.scan(&store, Utc::now());
    assert!(
        second.recorded < 2_000 && second.pending > 0,
        "one scan is bounded: {second:?}"
    );
    let status = drain(&reader, &store, 20);
    assert_eq!(status.recorded_total, 1_980, "{status:?}");
    assert_eq!(status.refused_now, 20);
    assert_eq!(store.view().uploads.len(), 1_980);
    assert_eq!(names(dir), ["processed", "refused"]);
}

#[test]
fn a_missing_directory_or_planted_links_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let reader = ReportsDir::new(tmp.path().join("nope"));
    let status = reader.scan(&store(), Utc::now());
    let error = status.error.expect("error");
    assert!(error.contains("create it or fix ci.reports_dir"), "{error}");

    // processed/ planted as a link out of the directory: nothing is read or moved through it.
    let dir = tmp.path().join("reports");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, dir.join("processed")).expect("symlink");
    write(&dir, "r@c1.xml", &fixture("junit/pytest-run1.xml"));
    let reader = ReportsDir::new(&dir);
    let store = store();
    reader.scan(&store, Utc::now());
    let status = reader.scan(&store, Utc::now());
    let error = status.error.expect("error");
    assert!(error.contains("not a plain directory"), "{error}");
    assert!(store.view().uploads.is_empty());
    assert!(
        names(&elsewhere).is_empty(),
        "nothing written through the link"
    );
    // A ledger planted as a link is refused the same way.
    std::fs::remove_file(dir.join("processed")).expect("rm link");
    std::fs::create_dir_all(dir.join("processed")).expect("mkdir");
    std::os::unix::fs::symlink(elsewhere.join("x"), dir.join("processed/.ledger"))
        .expect("symlink");
    let status = ReportsDir::new(&dir).scan(&store, Utc::now());
    assert!(status.error.is_some(), "a planted ledger link is reported");
    let status = ReportsDir::new(&dir).scan(&store, Utc::now());
    assert!(status.error.is_some());
    assert!(
        !elsewhere.join("x").exists(),
        "nothing appended through the link"
    );
    assert!(store.view().uploads.is_empty());
}

#[actix::test]
async fn the_domain_reads_the_directory_and_publishes_its_refusals() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let settings = CiSettings {
        interval_seconds: 3600,
        reports_dir: dir.display().to_string(),
        ..CiSettings::default()
    };
    let svc = TestService::start(CiDomain::new(settings)).expect("start");
    svc.wait_published(kinds::FLAKES, 1, Duration::from_secs(10))
        .await;
    write(dir, "run1@abc.xml", &fixture("junit/pytest-run1.xml"));
    write(dir, "broken@abc.xml", b"<testsuites><oops");
    svc.service.handle().run_now().await;
    svc.service.handle().run_now().await;
    let flakes = svc
        .service
        .handle()
        .latest_of(kinds::FLAKES)
        .expect("flakes");
    let c = flakes.component(COMPONENT).expect("reports_dir component");
    assert_eq!(c.status, Grade::Warn, "{}", c.summary);
    let DetailValue::List(refusals) = &c.details["refusals"] else {
        panic!("refusals: {:?}", c.details);
    };
    assert_eq!(refusals.len(), 1);
    assert!(
        matches!(&refusals[0], DetailValue::Text(t) if t.starts_with("refused report broken@abc.xml: report is not well-formed XML")),
        "{refusals:?}"
    );
    assert!(flakes.markdown.contains("refused report broken@abc.xml"));
    let reports = flakes.component("reports").expect("reports");
    assert!(
        reports.summary.starts_with("1 upload"),
        "{}",
        reports.summary
    );
    svc.service.stop(false).await;
}
