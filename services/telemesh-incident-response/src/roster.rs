//! Owns the on-call roster: a TOML schedule of weekly rotations that hand off on Monday at
//! `handoff_hour` local time and cycle, and the computation of who is on call at a moment.
//!
//! ```toml
//! timezone = "Europe/London"   # IANA name, "UTC", or a fixed offset like "+02:00"
//! start = "2026-11-02"         # a Monday: the first rotation takes over then
//! handoff_hour = 9             # optional, 0-23, default 9
//!
//! [[rotation]]
//! primary = ["alice"]
//! secondary = ["bob"]
//!
//! [[rotation]]
//! primary = ["bob"]
//! secondary = ["carol"]
//! ```

use std::path::Path;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone,
    Utc, Weekday,
};
use serde::Deserialize;

use crate::state::RotationInfo;

/// Default local hour of the Monday handoff.
pub const DEFAULT_HANDOFF_HOUR: u32 = 9;

/// A roster file's contents, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterFile {
    #[serde(default = "utc")]
    pub timezone: String,
    pub start: String,
    #[serde(default = "default_handoff_hour")]
    pub handoff_hour: u32,
    #[serde(default)]
    pub rotation: Vec<RotationEntry>,
}

fn utc() -> String {
    "UTC".into()
}

fn default_handoff_hour() -> u32 {
    DEFAULT_HANDOFF_HOUR
}

/// One week's responders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationEntry {
    #[serde(default)]
    pub primary: Vec<String>,
    #[serde(default)]
    pub secondary: Vec<String>,
}

/// The roster's time zone: a named IANA zone or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RosterZone {
    Named(chrono_tz::Tz),
    Fixed(FixedOffset),
}

impl RosterZone {
    /// Parses `Europe/London`, `UTC`, `Z`, `+02:00`, `-0530`, `UTC+01:00`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let offset = s
            .strip_prefix("UTC")
            .or_else(|| s.strip_prefix("GMT"))
            .filter(|rest| rest.starts_with(['+', '-']))
            .unwrap_or(s);
        if offset.starts_with(['+', '-']) {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
            let (h, m) = match digits.len() {
                1 | 2 => (digits.parse::<i32>().ok(), Some(0)),
                4 => (
                    digits[..2].parse::<i32>().ok(),
                    digits[2..].parse::<i32>().ok(),
                ),
                _ => (None, None),
            };
            return match (h, m) {
                (Some(h), Some(m)) if h <= 14 && m < 60 => {
                    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
                        .map(RosterZone::Fixed)
                        .ok_or_else(|| format!("timezone {s:?} is out of range"))
                }
                _ => Err(format!(
                    "timezone {s:?} is not an offset like +02:00 or an IANA name like Europe/London"
                )),
            };
        }
        if s.eq_ignore_ascii_case("utc") || s == "Z" {
            return Ok(RosterZone::Named(chrono_tz::UTC));
        }
        s.parse::<chrono_tz::Tz>()
            .map(RosterZone::Named)
            .map_err(|_| {
                format!("timezone {s:?} is unknown: use an IANA name like Europe/London or an offset like +02:00")
            })
    }

    fn local(self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            RosterZone::Named(tz) => t.with_timezone(&tz).naive_local(),
            RosterZone::Fixed(off) => t.with_timezone(&off).naive_local(),
        }
    }

    /// The UTC instant of a local wall-clock time; in a DST gap the first valid instant after
    /// it, in an overlap the earlier one.
    fn instant_of(self, local: NaiveDateTime) -> DateTime<Utc> {
        fn pick<Tz: TimeZone>(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
            let mut probe = local;
            for _ in 0..8 {
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        return t.with_timezone(&Utc)
                    }
                    LocalResult::None => probe += Duration::minutes(30),
                }
            }
            Utc.from_utc_datetime(&local)
        }
        match self {
            RosterZone::Named(tz) => pick(&tz, local),
            RosterZone::Fixed(off) => pick(&off, local),
        }
    }
}

/// A validated roster.
#[derive(Debug, Clone, PartialEq)]
pub struct Roster {
    pub zone: RosterZone,
    pub timezone: String,
    pub start: NaiveDate,
    pub handoff_hour: u32,
    pub rotations: Vec<RotationEntry>,
}

/// Who is on call at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct OnCall {
    pub primary: Vec<String>,
    pub secondary: Vec<String>,
    pub index: usize,
    pub started_at: DateTime<Utc>,
    pub handoff_at: DateTime<Utc>,
}

impl Roster {
    /// Parses and checks a roster file's text; the error says what is wrong and how to fix it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: RosterFile = toml::from_str(text).map_err(|e| {
            format!(
                "is not a valid roster ({}): see docs/incident-response.md for the format",
                e.message()
            )
        })?;
        let zone = RosterZone::parse(&file.timezone)?;
        let start = NaiveDate::parse_from_str(file.start.trim(), "%Y-%m-%d").map_err(|e| {
            format!(
                "start {:?} is not a date ({e}): write it as YYYY-MM-DD",
                file.start
            )
        })?;
        if start.weekday() != Weekday::Mon {
            return Err(format!(
                "start {start} is a {}: rotations hand off on Mondays, so start on one",
                start.weekday()
            ));
        }
        if file.handoff_hour > 23 {
            return Err(format!(
                "handoff_hour {} is not an hour of the day (0-23)",
                file.handoff_hour
            ));
        }
        if file.rotation.is_empty() {
            return Err(
                "has no [[rotation]] entries: add one per week with primary = [..] and secondary = [..]"
                    .into(),
            );
        }
        let clean = |names: &[String]| crate::settings::normalize(names);
        let rotations = file
            .rotation
            .iter()
            .map(|r| RotationEntry {
                primary: clean(&r.primary),
                secondary: clean(&r.secondary),
            })
            .collect();
        Ok(Self {
            zone,
            timezone: file.timezone.trim().to_owned(),
            start,
            handoff_hour: file.handoff_hour,
            rotations,
        })
    }

    fn handoff_utc(&self, date: NaiveDate) -> DateTime<Utc> {
        let local = date
            .and_hms_opt(self.handoff_hour, 0, 0)
            .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN));
        self.zone.instant_of(local)
    }

    /// The rotation on call at `now`; `None` before the first handoff.
    pub fn on_call(&self, now: DateTime<Utc>) -> Option<OnCall> {
        let local = self.zone.local(now);
        let monday =
            local.date() - Duration::days(i64::from(local.date().weekday().num_days_from_monday()));
        let mut handoff_date = monday;
        if now < self.handoff_utc(monday) {
            handoff_date = monday - Duration::days(7);
        }
        if handoff_date < self.start {
            return None;
        }
        let weeks = (handoff_date - self.start).num_days() / 7;
        let n = self.rotations.len() as i64;
        let index = usize::try_from(weeks.rem_euclid(n.max(1))).unwrap_or(0);
        let rotation = self.rotations.get(index)?;
        Some(OnCall {
            primary: rotation.primary.clone(),
            secondary: rotation.secondary.clone(),
            index,
            started_at: self.handoff_utc(handoff_date),
            handoff_at: self.handoff_utc(handoff_date + Duration::days(7)),
        })
    }

    /// The first handoff (UTC).
    pub fn first_handoff(&self) -> DateTime<Utc> {
        self.handoff_utc(self.start)
    }
}

/// What reading a roster file at `now` gives: the responders, the rotation, or a problem.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterReading {
    pub primary: Vec<String>,
    pub secondary: Vec<String>,
    pub rotation: Option<RotationInfo>,
    pub problem: Option<String>,
}

/// Reads `path` and computes who is on call at `now`. Never fails: problems are described.
pub fn read(path: &Path, now: DateTime<Utc>) -> RosterReading {
    let name = path.display().to_string();
    let mut reading = RosterReading {
        primary: Vec::new(),
        secondary: Vec::new(),
        rotation: None,
        problem: None,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            reading.problem = Some(format!(
                "roster file {name} cannot be read ({e}): set [incident_response] roster_file to the on-call schedule"
            ));
            return reading;
        }
    };
    let roster = match Roster::parse(&text) {
        Ok(r) => r,
        Err(problem) => {
            reading.problem = Some(format!("roster file {name} {problem}"));
            return reading;
        }
    };
    match roster.on_call(now) {
        Some(on_call) => {
            reading.primary = on_call.primary;
            reading.secondary = on_call.secondary;
            reading.rotation = Some(RotationInfo {
                file: name,
                index: on_call.index,
                rotations: roster.rotations.len(),
                started_at: on_call.started_at,
                handoff_at: on_call.handoff_at,
                timezone: roster.timezone,
            });
        }
        None => {
            reading.problem = Some(format!(
                "roster file {name} starts at {}: nobody is on call before the first handoff; move start earlier",
                roster.first_handoff().to_rfc3339()
            ));
        }
    }
    reading
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROSTER: &str = r#"
timezone = "Europe/London"
start = "2026-11-02"

[[rotation]]
primary = ["alice"]
secondary = ["bob"]

[[rotation]]
primary = ["bob", " bob"]
secondary = ["carol"]

[[rotation]]
primary = ["carol"]
secondary = []
"#;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn weekly_rotations_hand_off_monday_morning_local_and_cycle() {
        let roster = Roster::parse(ROSTER).expect("parses");
        let cases = [
            // before the first handoff (Monday 09:00 GMT = 09:00 UTC in November)
            ("2026-11-02T08:59:59Z", None),
            ("2026-11-02T09:00:00Z", Some(("alice", 0))),
            ("2026-11-08T23:00:00Z", Some(("alice", 0))),
            ("2026-11-09T08:59:00Z", Some(("alice", 0))),
            ("2026-11-09T09:00:00Z", Some(("bob", 1))),
            ("2026-11-16T10:00:00Z", Some(("carol", 2))),
            // cycles back to the first rotation
            ("2026-11-23T09:00:00Z", Some(("alice", 0))),
            // summer time: Monday 09:00 BST = 08:00 UTC (weeks since start: 29 → index 2)
            ("2027-05-24T08:00:00Z", Some(("carol", 2))),
            ("2027-05-24T07:59:00Z", Some(("bob", 1))),
        ];
        for (now, expected) in cases {
            let got = roster
                .on_call(at(now))
                .map(|o| (o.primary[0].clone(), o.index));
            assert_eq!(got, expected.map(|(p, i)| (p.to_owned(), i)), "at {now}");
        }
        let o = roster.on_call(at("2026-11-10T12:00:00Z")).expect("on call");
        assert_eq!(o.primary, vec!["bob"]);
        assert_eq!(o.started_at, at("2026-11-09T09:00:00Z"));
        assert_eq!(o.handoff_at, at("2026-11-16T09:00:00Z"));
    }

    #[test]
    fn fixed_offsets_and_handoff_hour() {
        let roster = Roster::parse(
            "timezone = \"+02:00\"\nstart = \"2026-11-02\"\nhandoff_hour = 0\n[[rotation]]\nprimary = [\"a\"]\n",
        )
        .expect("parses");
        assert!(roster.on_call(at("2026-11-01T21:59:00Z")).is_none());
        assert!(roster.on_call(at("2026-11-01T22:00:00Z")).is_some());
        for z in ["UTC", "Z", "UTC+01:00", "-0530", "+2", "America/New_York"] {
            assert!(RosterZone::parse(z).is_ok(), "{z}");
        }
        for z in ["Mars/Olympus", "+25:00", "+1:2:3"] {
            assert!(RosterZone::parse(z).is_err(), "{z}");
        }
    }

    #[test]
    fn malformed_rosters_say_what_to_fix() {
        let cases = [
            ("start = ", "is not a valid roster"),
            (
                "start = \"2026-11-03\"\n[[rotation]]\nprimary=[\"a\"]\n",
                "is a Tue",
            ),
            ("start = \"2026-11-02\"\n", "no [[rotation]]"),
            (
                "start = \"2026-11-02\"\nhandoff_hour = 24\n[[rotation]]\n",
                "handoff_hour",
            ),
            (
                "timezone = \"Nowhere/City\"\nstart = \"2026-11-02\"\n[[rotation]]\n",
                "unknown",
            ),
            ("start = \"02.11.2026\"\n[[rotation]]\n", "YYYY-MM-DD"),
            (
                "start = \"2026-11-02\"\n[[rotation]]\nprimry = [\"a\"]\n",
                "primry",
            ),
        ];
        for (text, expected) in cases {
            let err = Roster::parse(text).expect_err(expected);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn read_reports_problems_instead_of_failing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("roster.toml");
        let r = read(&path, at("2026-11-10T00:00:00Z"));
        assert!(r
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("cannot be read")));
        std::fs::write(&path, ROSTER).expect("write");
        let r = read(&path, at("2026-11-05T00:00:00Z"));
        assert_eq!(r.problem, None);
        assert_eq!(
            (r.primary, r.secondary),
            (vec!["alice".to_owned()], vec!["bob".to_owned()])
        );
        let r = read(&path, at("2026-10-10T00:00:00Z"));
        assert!(r
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("first handoff")));
    }
}
