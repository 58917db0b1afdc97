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
        retire_intervals: 2.0,
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

fn every(s: Snapshot, interval: f64) -> Snapshot {
    let mut s = s;
    s.metric(INTERVAL_METRIC, interval);
    s
}

fn resolutions(actions: &[Action]) -> Vec<(Resolution, Option<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Persist(alert) if alert.state == AlertState::Resolved => {
                Some((alert.resolution?, alert.note.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_rolling_update_retires_the_old_instance_without_a_page() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(policy());
    e.observe(&every(snap(Grade::Ok, "ok", "old", t0), 10.0), t0);
    // the new pod starts and reports; the old one stops
    for s in [5, 15, 25, 35, 45] {
        let at = t0 + Duration::seconds(s);
        e.observe(&every(snap(Grade::Ok, "ok", "new", at), 10.0), at);
        assert!(events(&e.tick(at)).is_empty(), "no page at {s}s");
    }
    assert_eq!(
        e.watched().map(|k| k.2.as_str()).collect::<Vec<_>>(),
        ["new"],
        "old retired after 2 silent intervals, before 3 would make it stale"
    );
    assert!(e.open_alerts().next().is_none());
}

#[test]
fn a_stale_alert_of_a_replaced_instance_resolves_as_departed() {
    let t0 = utc(T0);
    let mut p = policy();
    p.retire_intervals = 5.0; // larger than stale_factor: the old instance pages first
    p.group_wait = Duration::zero();
    let mut e = AlertEngine::new(p);
    e.observe(&every(snap(Grade::Ok, "ok", "old", t0), 10.0), t0);
    let mut paged = Vec::new();
    let mut resolved = Vec::new();
    for s in (5..=70).step_by(5) {
        let at = t0 + Duration::seconds(s);
        let mut actions = e.observe(&every(snap(Grade::Ok, "ok", "new", at), 10.0), at);
        actions.extend(e.tick(at));
        paged.extend(events(&actions).into_iter().map(|(ev, _)| ev));
        resolved.extend(resolutions(&actions));
    }
    assert_eq!(
        paged,
        [Event::Open, Event::Resolve],
        "one page that closes itself"
    );
    let (resolution, note) = resolved.last().cloned().unwrap();
    assert_eq!(resolution, Resolution::Departed);
    assert!(note.unwrap().contains("replaced by new"));
}

#[test]
fn a_departed_snapshot_retires_its_instance_at_once() {
    let t0 = utc(T0);
    let mut p = policy();
    p.group_wait = Duration::zero();
    let mut e = AlertEngine::new(p);
    e.observe(&every(snap(Grade::Fail, "broken", "a", t0), 10.0), t0);
    assert_eq!(events(&e.tick(t0))[0].0, Event::Open);
    let mut last = every(snap(Grade::Fail, "shutting down", "a", t0), 10.0);
    last.generated_at = t0 + Duration::seconds(1);
    last.metric(DEPARTED_METRIC, 1.0);
    let actions = e.observe(&last, t0 + Duration::seconds(1));
    assert_eq!(events(&actions)[0].0, Event::Resolve);
    assert_eq!(resolutions(&actions)[0].0, Resolution::Departed);
    assert_eq!(e.watched().count(), 0);
    assert!(
        events(&e.tick(t0 + Duration::hours(1))).is_empty(),
        "never stale"
    );
}

#[test]
fn a_manual_resolve_of_a_stale_alert_forgets_the_instance() {
    let t0 = utc(T0);
    let mut p = policy();
    p.group_wait = Duration::zero();
    let mut e = AlertEngine::new(p);
    e.observe(&every(snap(Grade::Ok, "ok", "gone", t0), 10.0), t0);
    assert_eq!(
        events(&e.tick(t0 + Duration::seconds(31)))[0].0,
        Event::Open
    );
    let id = first_alert(&e).id;
    e.resolve(id, "alice", None, t0 + Duration::seconds(40))
        .unwrap();
    for s in [41, 100, 1000] {
        assert!(
            events(&e.tick(t0 + Duration::seconds(s))).is_empty(),
            "not re-opened at {s}s"
        );
    }
}

#[test]
fn while_ingestion_is_held_one_cause_alert_fires_and_no_source_turns_stale() {
    let t0 = utc(T0);
    let mut p = policy();
    p.group_wait = Duration::zero();
    let mut e = AlertEngine::new(p);
    for i in ["a", "b", "c"] {
        e.observe(&every(snap(Grade::Ok, "ok", i, t0), 10.0), t0);
    }
    let held_at = t0 + Duration::seconds(5);
    let mut actions = e.ingestion_held("journal down: connection refused", held_at);
    // the ingress repeats it while the outage lasts: still one alert
    actions.extend(e.ingestion_held(
        "journal down: connection refused",
        held_at + Duration::seconds(1),
    ));
    let mut paged = Vec::new();
    for s in (10..=300).step_by(10) {
        actions.extend(e.tick(t0 + Duration::seconds(s)));
    }
    paged.extend(events(&actions));
    assert_eq!(paged.len(), 1, "{paged:?}");
    let cause = first_alert(&e);
    assert_eq!(cause.kind, CAUSE_KIND);
    assert!(cause.summary.contains("journal down"));
    // recovery: the cause resolves, and the held time does not count as silence
    let back = t0 + Duration::seconds(300);
    let resumed = e.ingestion_resumed(back);
    assert_eq!(events(&resumed)[0].0, Event::Resolve);
    assert!(events(&e.tick(back + Duration::seconds(20))).is_empty());
    for i in ["a", "b", "c"] {
        let at = back + Duration::seconds(21);
        e.observe(&every(snap(Grade::Ok, "ok", i, at), 10.0), at);
    }
    assert!(
        events(&e.tick(back + Duration::seconds(40))).is_empty(),
        "no storm after recovery"
    );
    assert!(e.open_alerts().next().is_none());
}

#[test]
fn remembered_sources_turn_stale_and_replays_are_ignored() {
    let t0 = utc(T0);
    let mut p = policy();
    p.group_wait = Duration::zero();
    let mut e = AlertEngine::new(p);
    // rebuilt from the journal after a restart: this source died while we were down
    e.remember(&every(snap(Grade::Ok, "ok", "dead", t0), 10.0));
    assert_eq!(
        events(&e.tick(t0 + Duration::seconds(31)))[0].0,
        Event::Open
    );
    // an older snapshot (a replay) neither clears nor re-evaluates
    let replay = every(
        snap(Grade::Ok, "ok", "dead", t0 - Duration::seconds(10)),
        10.0,
    );
    assert!(events(&e.observe(&replay, t0 + Duration::seconds(32))).is_empty());
    assert!(e.open_alerts().next().is_some());
}

#[test]
fn snapshots_generated_while_held_and_consumed_later_are_not_stale() {
    let t0 = utc(T0);
    let mut p = policy();
    p.group_wait = Duration::zero();
    let mut e = AlertEngine::new(p);
    e.observe(&every(snap(Grade::Ok, "ok", "a", t0), 1.0), t0);
    e.ingestion_held("journal down", t0 + Duration::seconds(1));
    let back = t0 + Duration::seconds(60);
    e.ingestion_resumed(back);
    // the backlog drains: a snapshot from the middle of the outage arrives after recovery
    let late = every(snap(Grade::Ok, "ok", "a", t0 + Duration::seconds(2)), 1.0);
    e.observe(&late, back + Duration::milliseconds(500));
    let actions = e.tick(back + Duration::milliseconds(1500));
    assert!(events(&actions).is_empty(), "{:?}", events(&actions));
    // but real silence after recovery still counts
    let actions = e.tick(back + Duration::seconds(5));
    assert_eq!(events(&actions).len(), 1);
}

#[test]
fn the_alert_carries_its_components_details_and_the_recovery_carries_the_healthy_ones() {
    let t0 = utc(T0);
    let mut e = AlertEngine::new(AlertPolicy {
        group_wait: Duration::zero(),
        ..policy()
    });
    let with_run = |grade: Grade, run: i64, at: DateTime<Utc>| {
        let mut s = snap(grade, "ci", "a", at);
        s.components[0] = Component::new("freshness", grade, "run").detail("run_number", run);
        s.status = grade;
        s
    };
    e.observe(&with_run(Grade::Fail, 7, t0), t0);
    assert_eq!(first_alert(&e).context["run_number"], 7);
    e.observe(
        &with_run(Grade::Fail, 8, t0 + Duration::seconds(1)),
        t0 + Duration::seconds(1),
    );
    assert_eq!(
        first_alert(&e).context["run_number"],
        8,
        "follows the newest failing snapshot"
    );
    e.tick(t0 + Duration::seconds(2));
    let resolved = e.observe(
        &with_run(Grade::Ok, 9, t0 + Duration::seconds(3)),
        t0 + Duration::seconds(3),
    );
    let alert = resolved
        .iter()
        .find_map(|a| match a {
            Action::Notify {
                alert,
                event: Event::Resolve,
                ..
            } => Some(alert.clone()),
            _ => None,
        })
        .expect("a resolve page");
    assert_eq!(
        alert.context["run_number"], 9,
        "the recovering snapshot's details"
    );
    // Serialised alerts without it (stored before this field existed) still load.
    let mut json = serde_json::to_value(&*alert).expect("json");
    json.as_object_mut().expect("object").remove("context");
    let back: Alert = serde_json::from_value(json).expect("loads");
    assert!(back.context.is_empty());
}
