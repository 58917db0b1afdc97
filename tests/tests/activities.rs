//! The drill and training log in the journal database, end to end over real sockets: a real
//! aggregator on a fresh PostgreSQL database and on a SQLite file takes `POST
//! /api/v1/activities` (hostile requests refused and writing nothing), answers `GET
//! /api/v1/activities/latest`, and a real incident-response service pointed at it records
//! through it and grades what it reads back — with no local activity file.

use std::time::Duration;

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{json, Value};
use telemesh_aggregator::settings::JournalSettings;
use telemesh_aggregator::{
    subscribed_topics, Aggregator, AggregatorSettings, Journal, TransportParts,
};
use telemesh_core::config::{Secret, SecretUrl};
use telemesh_core::transport::inproc::InProcessBus;
use telemesh_incident_response::{IncidentResponse, IncidentResponseSettings};
use telemesh_integration_tests::{namespace, TestEnv};
use telemesh_service::testing::TestService;

const TOKEN: &str = "activities-test-token";

async fn aggregator(journal_url: &str) -> Aggregator {
    let journal = Journal::connect(&JournalSettings {
        url: SecretUrl::new(journal_url),
        ..JournalSettings::default()
    })
    .await
    .expect("open journal");
    let bus = InProcessBus::new(64, subscribed_topics(""));
    Aggregator::start(
        &AggregatorSettings {
            activities_token: Secret::new(TOKEN),
            ..AggregatorSettings::default()
        },
        "127.0.0.1:0",
        "",
        journal,
        TransportParts::in_process(bus.subscriber().expect("subscriber"), bus.publisher()),
    )
    .await
    .expect("start aggregator")
}

async fn post(url: &str, authorization: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let r = request.send().await.expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn latest(base: &str) -> Value {
    let r = reqwest::get(format!("{base}/api/v1/activities/latest"))
        .await
        .expect("GET latest");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("json")
}

/// Hostile requests are refused and change nothing; valid ones are journaled and read back.
async fn journals_activities(journal_url: &str) {
    let agg = aggregator(journal_url).await;
    let base = format!("http://{}", agg.http_addr);
    let url = format!("{base}/api/v1/activities");
    let bearer = format!("Bearer {TOKEN}");
    let empty = json!({"last_drill": null, "last_training": null, "entries": 0});
    assert_eq!(latest(&base).await, empty);

    let good = r#"{"kind":"drill","by":"alice"}"#;
    let future = format!(
        r#"{{"kind":"drill","by":"a","at":"{}"}}"#,
        (Utc::now() + ChronoDuration::days(1)).to_rfc3339()
    );
    let huge = format!(r#"{{"kind":"drill","by":"{}"}}"#, "x".repeat(20 * 1024));
    let long_by = format!(r#"{{"kind":"drill","by":"{}"}}"#, "b".repeat(201));
    let cases: Vec<(Option<&str>, &str, u16, &str)> = vec![
        (None, good, 401, ""),
        (Some("Bearer wrong"), good, 403, ""),
        (Some("Basic YTpi"), good, 401, ""),
        (Some(&bearer), "not json", 400, "body"),
        (Some(&bearer), "[1,2]", 400, "body"),
        (Some(&bearer), r#"{"kind":"party","by":"a"}"#, 400, "kind"),
        (Some(&bearer), r#"{"kind":"drill"}"#, 400, "by"),
        (
            Some(&bearer),
            r#"{"kind":"drill","by":"a","at":"soon"}"#,
            400,
            "at",
        ),
        (Some(&bearer), &future, 400, "at"),
        (Some(&bearer), &long_by, 400, "by"),
        (
            Some(&bearer),
            r#"{"kind":"drill","by":"a","note":7}"#,
            400,
            "note",
        ),
        (
            Some(&bearer),
            r#"{"kind":"drill","by":"a'); DROP TABLE telemesh_incident_activities; --","id":1}"#,
            400,
            "id",
        ),
        (Some(&bearer), &huge, 413, ""),
    ];
    for (auth, body, status, field) in cases {
        let (got, answer) = post(&url, auth, body).await;
        assert_eq!(
            got,
            status,
            "{auth:?} {}: {answer}",
            &body[..body.len().min(60)]
        );
        assert!(answer["error"].is_string(), "{answer}");
        if !field.is_empty() {
            assert_eq!(answer["field"], field, "{answer}");
        }
        assert!(!answer.to_string().contains(TOKEN));
    }
    assert_eq!(latest(&base).await, empty, "refused requests write nothing");

    // valid activities, one with SQL-looking text that is stored as text
    let old = (Utc::now() - ChronoDuration::days(10)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let hostile_by = "bob'); DROP TABLE telemesh_incident_activities; --";
    for body in [
        json!({"kind": "drill", "by": "alice", "at": old, "note": "game day"}),
        json!({"kind": "drill", "by": hostile_by, "note": "failover \u{1F525}"}),
        json!({"kind": "Training", "by": "carol"}),
    ] {
        let (status, answer) = post(&url, Some(&bearer), &body.to_string()).await;
        assert_eq!(status, 201, "{answer}");
        assert!(answer["id"].is_string(), "{answer}");
    }
    let got = latest(&base).await;
    assert_eq!(got["entries"], 3, "{got}");
    assert_eq!(
        got["last_drill"]["by"], hostile_by,
        "the newest drill wins: {got}"
    );
    assert_eq!(got["last_drill"]["note"], "failover \u{1F525}");
    assert_eq!(got["last_training"]["kind"], "training");
    assert_eq!(got["last_training"]["by"], "carol");

    // incident-response records through the aggregator and reads back from it
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("activity.jsonl");
    let settings = IncidentResponseSettings {
        interval_seconds: 3600,
        aggregator_url: base.clone(),
        aggregator_token: Secret::new(TOKEN),
        activity_log: file.display().to_string(),
        ..IncidentResponseSettings::default()
    };
    let svc = TestService::start(IncidentResponse::new(IncidentResponseSettings {
        api_token: Secret::new("ir-token"),
        ..settings
    }))
    .expect("serve incident response");
    let (status, answer) = post(
        &svc.url("/api/v1/activities"),
        Some("Bearer ir-token"),
        r#"{"kind":"training","by":"dave","note":"tabletop"}"#,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let got = latest(&base).await;
    assert_eq!(got["entries"], 4, "{got}");
    assert_eq!(got["last_training"]["by"], "dave");
    assert!(!file.exists(), "no local activity file with an aggregator");
    let snapshot = svc
        .service
        .handle()
        .run_now()
        .await
        .into_iter()
        .next()
        .expect("an incident-response snapshot");
    let training_age = *snapshot
        .metrics
        .get("training_age_days")
        .expect("training_age_days metric");
    assert!(
        training_age < 0.01,
        "read back from the aggregator: {training_age}"
    );
    svc.service.stop(false).await;

    // a wrong token towards the aggregator is an error naming what to fix, and writes nothing
    let wrong = IncidentResponseSettings {
        aggregator_url: base.clone(),
        aggregator_token: Secret::new("not-the-token"),
        interval_seconds: 3600,
        ..IncidentResponseSettings::default()
    };
    let svc = TestService::start(IncidentResponse::new(IncidentResponseSettings {
        api_token: Secret::new("ir-token"),
        ..wrong
    }))
    .expect("serve");
    let (status, answer) = post(
        &svc.url("/api/v1/activities"),
        Some("Bearer ir-token"),
        r#"{"kind":"drill","by":"eve"}"#,
    )
    .await;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("activities_token")),
        "{answer}"
    );
    assert_eq!(latest(&base).await["entries"], 4);
    svc.service.stop(false).await;
    agg.stop().await;
}

#[actix_rt::test]
async fn activities_are_journaled_in_postgres() {
    let db = TestEnv::get().fresh_database(&namespace()).await;
    tokio::time::timeout(Duration::from_secs(120), journals_activities(&db))
        .await
        .expect("within two minutes");
}

#[actix_rt::test]
async fn activities_are_journaled_in_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/journal.db", dir.path().display());
    tokio::time::timeout(Duration::from_secs(120), journals_activities(&url))
        .await
        .expect("within two minutes");
}
