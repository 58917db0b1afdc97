//! Unit tests of the alert lifecycle with a controlled clock.

use super::*;
use telemesh_core::{Component, Source};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn policy() -> AlertPolicy {
    let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| d.to_string())
        .collect();
    AlertPolicy {
        rules: vec![Rule {
            name: "failures".into(),
            kinds: vec![],
            target: Target::Snapshot,
            grade: Grade::Fail,
            channels: vec!["slack".into(), "webhook".into()],
            suppress: Duration::zero(),
        }],
        group_wait: Duration::seconds(5),
        group_interval: Duration::minutes(5),
        repeat_interval: Duration::hours(4),
        ack_deadline: Duration::hours(1),
        calendar: BusinessCalendar::new("UTC", &days, "09:00", "17:00").unwrap(),
        escalation_channels: vec!["manager".into()],
        stale_channels: vec!["slack".into()],
        stale_factor: 3.0,
        // sources state their interval where a test is about staleness
        default_interval_seconds: 1e9,
    }
}

fn snap(grade: Grade, summary: &str, instance: &str, at: DateTime<Utc>) -> Snapshot {
    let mut s = Snapshot::new(
        "telemetry.ingest.trends",
        Source::new("ingest", instance),
        at,
    );
    s.push(Component::new("freshness", grade, summary));
    s.summary = summary.into();
    s
}

fn events(actions: &[Action]) -> Vec<(Event, Vec<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify {
                event, channels, ..
            } => Some((event.clone(), channels.clone())),
            Action::Persist(_) => None,
        })
        .collect()
}

fn first_alert(engine: &AlertEngine) -> Alert {
    engine.open_alerts().next().cloned().expect("an open alert")
}

const T0: &str = "2026-11-25T10:00:00Z"; // a Wednesday, inside business hours

#[test]
fn a_failure_pages_after_group_wait_and_resolves_on_the_first_healthy_snapshot() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    let actions = e.observe(&snap(Grade::Fail, "rows dropped", "a", t0), t0);
    assert!(events(&actions).is_empty(), "pending: no page yet");
    assert!(
        matches!(actions[0], Action::Persist(_)),
        "pending alerts are stored"
    );
    assert!(events(&e.tick(t0 + Duration::seconds(4))).is_empty());
    let opened = e.tick(t0 + Duration::seconds(5));
    assert_eq!(
        events(&opened),
        vec![(Event::Open, vec!["slack".to_owned(), "webhook".to_owned()])]
    );
    assert_eq!(first_alert(&e).state, AlertState::Firing);
    assert_eq!(first_alert(&e).severity, "critical");

    let resolved = e.observe(
        &snap(Grade::Ok, "fine", "a", t0 + Duration::seconds(30)),
        t0 + Duration::seconds(30),
    );
    assert_eq!(events(&resolved)[0].0, Event::Resolve);
    assert_eq!(e.open_alerts().count(), 0);
}

#[test]
fn zero_group_wait_pages_on_the_next_tick() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(AlertPolicy {
        group_wait: Duration::zero(),
        ..policy()
    });
    e.observe(&snap(Grade::Fail, "x", "a", t0), t0);
    assert_eq!(events(&e.tick(t0))[0].0, Event::Open);
}

#[test]
fn a_failure_that_recovers_inside_group_wait_never_pages() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    e.observe(&snap(Grade::Fail, "blip", "a", t0), t0);
    let actions = e.observe(
        &snap(Grade::Ok, "ok", "a", t0 + Duration::seconds(2)),
        t0 + Duration::seconds(2),
    );
    assert!(events(&actions).is_empty());
    let Action::Persist(alert) = &actions[0] else {
        panic!("persisted")
    };
    assert_eq!(alert.resolution, Some(Resolution::ClearedBeforeNotice));
    assert!(events(&e.tick(t0 + Duration::seconds(10))).is_empty());
}

#[test]
fn changes_append_at_most_every_group_interval_and_unchanged_alerts_repeat() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    e.observe(&snap(Grade::Fail, "rows dropped 40%", "a", t0), t0);
    e.tick(t0 + Duration::seconds(5));
    // same content again: nothing
    e.observe(
        &snap(
            Grade::Fail,
            "rows dropped 40%",
            "a",
            t0 + Duration::seconds(30),
        ),
        t0 + Duration::seconds(30),
    );
    assert!(events(&e.tick(t0 + Duration::seconds(31))).is_empty());
    // a change inside group_interval waits, then appends once
    e.observe(
        &snap(
            Grade::Fail,
            "rows dropped 80%",
            "a",
            t0 + Duration::seconds(60),
        ),
        t0 + Duration::seconds(60),
    );
    assert!(events(&e.tick(t0 + Duration::seconds(61))).is_empty());
    assert_eq!(
        events(&e.tick(t0 + Duration::seconds(305)))[0].0,
        Event::Append
    );
    assert!(events(&e.tick(t0 + Duration::seconds(306))).is_empty());
    // unchanged for repeat_interval: repeat (acknowledge to stop escalations first)
    let id = first_alert(&e).id;
    let t_ack = t0 + Duration::seconds(400);
    e.acknowledge(id, "alice", None, t_ack).unwrap();
    let later = events(&e.tick(t0 + Duration::seconds(305) + Duration::hours(4)));
    assert!(
        later.is_empty(),
        "acknowledged alerts do not repeat: {later:?}"
    );

    let mut e = AlertEngine::new(AlertPolicy {
        ack_deadline: Duration::hours(100),
        ..policy()
    });
    let sat = utc("2026-11-28T10:00:00Z"); // outside business hours: no end-of-day escalation today
    e.observe(&snap(Grade::Fail, "x", "a", sat), sat);
    e.tick(sat + Duration::seconds(5));
    assert_eq!(
        events(&e.tick(sat + Duration::seconds(5) + Duration::hours(4)))[0].0,
        Event::Repeat
    );
}

#[test]
fn the_acknowledgement_deadline_counts_business_time_and_escalates_once() {
    let t0 = utc("2026-11-25T16:30:00Z"); // Wednesday 16:30: one business hour ends Thursday 09:30
    let mut e = AlertEngine::new(policy());
    e.observe(&snap(Grade::Fail, "x", "a", t0), t0);
    e.tick(t0 + Duration::seconds(5));
    // 17:00 Wednesday: end of the business day escalates
    let eod = e.tick(utc("2026-11-25T17:00:00Z"));
    assert!(
        matches!(&events(&eod)[0], (Event::Escalate { reason }, ch) if reason.contains("end of the business day") && ch == &vec!["manager".to_owned()])
    );
    let escalations = |evs: Vec<(Event, Vec<String>)>| {
        evs.into_iter()
            .filter(|(e, _)| matches!(e, Event::Escalate { .. }))
            .count()
    };
    assert_eq!(
        escalations(events(&e.tick(utc("2026-11-26T09:29:00Z")))),
        0,
        "overnight does not count"
    );
    let late = e.tick(utc("2026-11-26T09:30:05Z"));
    assert!(events(&late).iter().any(
        |(e, _)| matches!(e, Event::Escalate { reason } if reason.contains("not acknowledged"))
    ));
    assert_eq!(
        escalations(events(&e.tick(utc("2026-11-26T10:00:00Z")))),
        0,
        "the deadline escalates once"
    );
    // still firing at Thursday's close: escalates again
    assert_eq!(escalations(events(&e.tick(utc("2026-11-26T17:00:01Z")))), 1);
    assert_eq!(first_alert(&e).escalations, 3);
}

#[test]
fn acknowledging_before_the_deadline_prevents_escalation() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    e.observe(&snap(Grade::Fail, "x", "a", t0), t0);
    e.tick(t0 + Duration::seconds(5));
    let id = first_alert(&e).id;
    let acked = e
        .acknowledge(
            id,
            "alice",
            Some("looking".into()),
            t0 + Duration::minutes(10),
        )
        .unwrap();
    assert_eq!(events(&acked)[0].0, Event::Acknowledge);
    assert!(events(&e.tick(t0 + Duration::hours(2))).is_empty());
    let eod = events(&e.tick(utc("2026-11-25T17:00:01Z")));
    assert!(eod.is_empty(), "{eod:?}");
    let alert = first_alert(&e);
    assert_eq!(alert.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(alert.escalations, 0);
    let unknown = Uuid::now_v7();
    assert_eq!(
        e.acknowledge(unknown, "bob", None, t0),
        Err(AlertError::NotFound(unknown))
    );
}

#[test]
fn a_refire_opens_a_new_alert_with_the_same_fingerprint_unless_suppressed() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    e.observe(&snap(Grade::Fail, "x", "a", t0), t0);
    e.tick(t0 + Duration::seconds(5));
    let first = first_alert(&e);
    e.observe(
        &snap(Grade::Ok, "ok", "a", t0 + Duration::seconds(10)),
        t0 + Duration::seconds(10),
    );
    e.observe(
        &snap(Grade::Fail, "x", "a", t0 + Duration::seconds(20)),
        t0 + Duration::seconds(20),
    );
    assert_eq!(
        events(&e.tick(t0 + Duration::seconds(25)))[0].0,
        Event::Open
    );
    let second = first_alert(&e);
    assert_eq!(second.fingerprint, first.fingerprint);
    assert_ne!(second.id, first.id);

    let mut p = policy();
    p.rules[0].suppress = Duration::minutes(10);
    let mut e = AlertEngine::new(p);
    e.observe(&snap(Grade::Fail, "x", "a", t0), t0);
    e.tick(t0 + Duration::seconds(5));
    e.observe(
        &snap(Grade::Ok, "ok", "a", t0 + Duration::seconds(10)),
        t0 + Duration::seconds(10),
    );
    e.observe(
        &snap(Grade::Fail, "x", "a", t0 + Duration::seconds(20)),
        t0 + Duration::seconds(20),
    );
    assert!(
        events(&e.tick(t0 + Duration::seconds(25))).is_empty(),
        "suppressed re-fire"
    );
    assert!(first_alert(&e).suppressed);
}

#[test]
fn every_bad_instance_must_recover_before_the_alert_resolves() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    e.observe(&snap(Grade::Fail, "x", "a", t0), t0);
    e.observe(&snap(Grade::Fail, "x", "b", t0), t0);
    e.tick(t0 + Duration::seconds(5));
    assert!(events(&e.observe(
        &snap(Grade::Ok, "ok", "a", t0 + Duration::seconds(9)),
        t0 + Duration::seconds(9)
    ))
    .is_empty());
    assert_eq!(
        events(&e.observe(
            &snap(Grade::Ok, "ok", "b", t0 + Duration::seconds(9)),
            t0 + Duration::seconds(9)
        ))[0]
            .0,
        Event::Resolve
    );
}

#[test]
fn a_source_that_stops_reporting_fires_a_staleness_alert_until_it_reports() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    let mut s = snap(Grade::Ok, "ok", "a", t0);
    s.metric("interval_seconds", 10.0);
    e.observe(&s, t0);
    assert!(
        events(&e.tick(t0 + Duration::seconds(30))).is_empty(),
        "exactly 3 intervals is not stale"
    );
    e.tick(t0 + Duration::seconds(31));
    let opened = e.tick(t0 + Duration::seconds(36));
    assert_eq!(
        events(&opened),
        vec![(Event::Open, vec!["slack".to_owned()])]
    );
    let alert = first_alert(&e);
    assert_eq!(alert.component.as_deref(), Some(STALE_COMPONENT));
    assert!(alert.summary.contains("stopped reporting"));
    assert!(
        events(&e.tick(t0 + Duration::seconds(60))).is_empty(),
        "no append while it stays silent"
    );
    let back = e.observe(
        &snap(Grade::Ok, "ok", "a", t0 + Duration::seconds(70)),
        t0 + Duration::seconds(70),
    );
    assert_eq!(events(&back)[0].0, Event::Resolve);
}

#[test]
fn component_rules_fire_per_component_at_their_grade() {
    let t0 = utc(T0);
    let mut p = policy();
    p.rules = vec![Rule {
        name: "freshness-warn".into(),
        kinds: vec!["telemetry.ingest.trends".into()],
        target: Target::Components(vec!["freshness".into()]),
        grade: Grade::Warn,
        channels: vec!["webhook".into()],
        suppress: Duration::zero(),
    }];
    let mut e = AlertEngine::new(p);
    e.observe(&snap(Grade::Warn, "stale data", "a", t0), t0);
    e.tick(t0 + Duration::seconds(5));
    let alert = first_alert(&e);
    assert_eq!(alert.component.as_deref(), Some("freshness"));
    assert_eq!(alert.severity, "warning");
    assert_eq!(
        alert.fingerprint,
        fingerprint("telemetry.ingest.trends", "ingest", Some("freshness"))
    );
}

#[test]
fn restored_alerts_do_not_page_again() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    e.observe(&snap(Grade::Fail, "x", "a", t0), t0);
    e.tick(t0 + Duration::seconds(5));
    let stored: Vec<Alert> = e.open_alerts().cloned().collect();
    let mut restarted = AlertEngine::new(policy());
    restarted.restore(stored);
    restarted.observe(
        &snap(Grade::Fail, "x", "a", t0 + Duration::seconds(20)),
        t0 + Duration::seconds(20),
    );
    assert!(
        events(&restarted.tick(t0 + Duration::seconds(30))).is_empty(),
        "no second page after a restart"
    );
    assert_eq!(
        events(&restarted.observe(
            &snap(Grade::Ok, "ok", "a", t0 + Duration::seconds(40)),
            t0 + Duration::seconds(40)
        ))[0]
            .0,
        Event::Resolve
    );
}

#[test]
fn fingerprints_are_stable() {
    assert_eq!(fingerprint("k", "s", None), fingerprint("k", "s", None));
    assert_ne!(
        fingerprint("k", "s", None),
        fingerprint("k", "s", Some("c"))
    );
    assert_eq!(
        fingerprint("telemetry.kafka.readiness", "kafka-readiness", None).len(),
        16
    );
}
