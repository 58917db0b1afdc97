//! Owns the limits of the snapshot envelope that protect the aggregator from hostile input:
//! what the journal database would refuse (NUL characters, times outside its range), what
//! would cost unbounded stack (nesting, counted while deserialising) or memory (components,
//! detail entries, metrics), and how far in the future a producer clock may be.
//!
//! `codec::encode` and `codec::decode` apply [`check`], so producers learn of a violation
//! when they publish and the aggregator dead-letters it with a typed reason
//! (`docs/snapshot.md` lists them).

use std::cell::Cell;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::codec::CodecError;
use crate::snapshot::{DetailValue, Snapshot};

/// Deepest nesting of detail values: a component's detail value is level 1, a value inside a
/// list or map of it level 2, and so on.
pub const MAX_DETAIL_DEPTH: usize = 32;
/// Most components in one snapshot.
pub const MAX_COMPONENTS: usize = 256;
/// Most detail values in one snapshot, counted over every component and every nesting level.
pub const MAX_DETAIL_ENTRIES: usize = 10_000;
/// Most metrics in one snapshot.
pub const MAX_METRICS: usize = 1_000;
/// Default of how far `generated_at` may be ahead of the aggregator's clock (5 minutes).
pub const DEFAULT_MAX_FUTURE_SKEW_SECONDS: u64 = 300;

/// The earliest `generated_at` accepted: 1970-01-01T00:00:00Z.
pub fn min_generated_at() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// The latest `generated_at` accepted: 9999-12-31T23:59:59.999999Z (inside what PostgreSQL,
/// SQLite's fixed-width text and RFC 3339 can all represent).
pub fn max_generated_at() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static TOO_DEEP: Cell<bool> = const { Cell::new(false) };
}

/// One level of detail nesting while deserialising; leaving the level drops the guard.
/// Deserialisation is synchronous, so a thread-local counter follows the recursion.
pub(crate) struct DepthGuard(());

impl DepthGuard {
    /// Enters one level; `Err` (and the "too deep" flag set) past [`MAX_DETAIL_DEPTH`].
    pub(crate) fn enter() -> Result<Self, String> {
        let depth = DEPTH.with(|d| {
            let next = d.get() + 1;
            d.set(next);
            next
        });
        let guard = DepthGuard(());
        if depth > MAX_DETAIL_DEPTH {
            TOO_DEEP.with(|f| f.set(true));
            return Err(format!(
                "details nest deeper than {MAX_DETAIL_DEPTH} levels"
            ));
        }
        Ok(guard)
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Clears the "too deep" flag before a decode.
pub(crate) fn reset_too_deep() {
    TOO_DEEP.with(|f| f.set(false));
}

/// Whether the last decode on this thread hit [`MAX_DETAIL_DEPTH`].
pub(crate) fn was_too_deep() -> bool {
    TOO_DEEP.with(Cell::get)
}

fn nul_free(field: impl FnOnce() -> String, value: &str) -> Result<(), CodecError> {
    if value.contains('\0') {
        return Err(CodecError::InvalidText {
            field: field(),
            detail: "contains a NUL character, which PostgreSQL cannot store".into(),
        });
    }
    Ok(())
}

/// Walks a detail value: NUL-free keys and texts, depth and entry count within limits.
fn check_detail(
    path: &str,
    value: &DetailValue,
    depth: usize,
    entries: &mut usize,
) -> Result<(), CodecError> {
    *entries += 1;
    if *entries > MAX_DETAIL_ENTRIES {
        return Err(CodecError::TooMany {
            what: "detail entries",
            max: MAX_DETAIL_ENTRIES,
        });
    }
    if depth > MAX_DETAIL_DEPTH {
        return Err(CodecError::TooDeep {
            max: MAX_DETAIL_DEPTH,
        });
    }
    match value {
        DetailValue::Text(s) => nul_free(|| path.to_owned(), s),
        DetailValue::List(items) => items
            .iter()
            .try_for_each(|v| check_detail(path, v, depth + 1, entries)),
        DetailValue::Map(map) => map.iter().try_for_each(|(k, v)| {
            nul_free(|| format!("{path} key {k:?}"), k)?;
            check_detail(path, v, depth + 1, entries)
        }),
        _ => Ok(()),
    }
}

/// Checks every limit of this module except the clock (see [`check_clock`]).
pub fn check(snapshot: &Snapshot) -> Result<(), CodecError> {
    if snapshot.components.len() > MAX_COMPONENTS {
        return Err(CodecError::TooMany {
            what: "components",
            max: MAX_COMPONENTS,
        });
    }
    if snapshot.metrics.len() > MAX_METRICS {
        return Err(CodecError::TooMany {
            what: "metrics",
            max: MAX_METRICS,
        });
    }
    let at = snapshot.generated_at;
    if at < min_generated_at() || at > max_generated_at() {
        return Err(CodecError::TimeOutOfRange(at.to_rfc3339()));
    }
    nul_free(|| "kind".into(), &snapshot.kind)?;
    nul_free(|| "source.service".into(), &snapshot.source.service)?;
    nul_free(|| "source.instance".into(), &snapshot.source.instance)?;
    nul_free(|| "summary".into(), &snapshot.summary)?;
    nul_free(|| "markdown".into(), &snapshot.markdown)?;
    for name in snapshot.metrics.keys() {
        nul_free(|| format!("metric {name:?}"), name)?;
    }
    let mut entries = 0;
    for c in &snapshot.components {
        nul_free(|| "component name".into(), &c.name)?;
        let path = || format!("component {:?}", c.name);
        nul_free(|| format!("{} summary", path()), &c.summary)?;
        for (key, value) in &c.details {
            nul_free(|| format!("{} detail key {key:?}", path()), key)?;
            check_detail(
                &format!("{} detail {key:?}", path()),
                value,
                1,
                &mut entries,
            )?;
        }
    }
    Ok(())
}

/// Rejects a `generated_at` more than `max_skew` ahead of `now` (the receiver's clock): a
/// producer clock in the future would otherwise pin its snapshot as "newest".
pub fn check_clock(
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<(), CodecError> {
    let ahead = snapshot.generated_at - now;
    if ahead > max_skew {
        return Err(CodecError::FromTheFuture {
            ahead_seconds: ahead.num_seconds(),
            max_seconds: max_skew.num_seconds(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Component, Source};
    use crate::Grade;

    fn base() -> Snapshot {
        let mut s = Snapshot::new(
            "telemetry.kafka.readiness",
            Source::new("svc", "i"),
            Utc::now(),
        );
        s.push(Component::new("probe", Grade::Ok, "fine"));
        s
    }

    fn nested(depth: usize) -> DetailValue {
        let mut v = DetailValue::Int(1);
        for _ in 1..depth {
            v = DetailValue::List(vec![v]);
        }
        v
    }

    #[test]
    fn limits_table() {
        type Mutate = fn(&mut Snapshot);
        let cases: Vec<(&str, Mutate, Option<&str>)> = vec![
            ("valid", |_| {}, None),
            (
                "nul in summary",
                |s| s.summary = "a\0b".into(),
                Some("invalid_text"),
            ),
            (
                "nul in instance",
                |s| s.source.instance = "\0".into(),
                Some("invalid_text"),
            ),
            (
                "nul in metric name",
                |s| s.metric("a\0", 1.0),
                Some("invalid_text"),
            ),
            (
                "nul in detail key",
                |s| {
                    s.components[0].details.insert("k\0".into(), 1.into());
                },
                Some("invalid_text"),
            ),
            (
                "nul in nested text",
                |s| {
                    s.components[0]
                        .details
                        .insert("k".into(), vec!["ok", "x\0"].into());
                },
                Some("invalid_text"),
            ),
            (
                "depth at the limit",
                |s| {
                    s.components[0]
                        .details
                        .insert("k".into(), nested(MAX_DETAIL_DEPTH));
                },
                None,
            ),
            (
                "depth over the limit",
                |s| {
                    s.components[0]
                        .details
                        .insert("k".into(), nested(MAX_DETAIL_DEPTH + 1));
                },
                Some("too_deep"),
            ),
            (
                "too many components",
                |s| {
                    for i in 0..MAX_COMPONENTS {
                        s.push(Component::new(format!("c{i}"), Grade::Ok, ""));
                    }
                },
                Some("too_many"),
            ),
            (
                "too many detail entries",
                |s| {
                    let list: Vec<i64> = (0..MAX_DETAIL_ENTRIES as i64).collect();
                    s.components[0].details.insert("k".into(), list.into());
                },
                Some("too_many"),
            ),
            (
                "too many metrics",
                |s| {
                    for i in 0..=MAX_METRICS {
                        s.metric(format!("m{i}"), 1.0);
                    }
                },
                Some("too_many"),
            ),
            (
                "before 1970",
                |s| s.generated_at = min_generated_at() - Duration::microseconds(1),
                Some("time_out_of_range"),
            ),
            ("at 1970", |s| s.generated_at = min_generated_at(), None),
            ("at the max", |s| s.generated_at = max_generated_at(), None),
            (
                "far future",
                |s| s.generated_at = DateTime::<Utc>::MAX_UTC,
                Some("time_out_of_range"),
            ),
        ];
        for (name, mutate, want) in cases {
            let mut s = base();
            mutate(&mut s);
            let got = check(&s).err().map(|e| e.class());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn clock_skew_is_bounded() {
        let now = Utc::now();
        let skew = Duration::seconds(300);
        let mut s = base();
        s.generated_at = now + Duration::seconds(299);
        assert_eq!(check_clock(&s, now, skew), Ok(()));
        s.generated_at = now - Duration::days(3650);
        assert_eq!(check_clock(&s, now, skew), Ok(()), "old is not rejected");
        s.generated_at = now + Duration::seconds(301);
        assert_eq!(
            check_clock(&s, now, skew).map_err(|e| e.class()),
            Err("future_generated_at")
        );
    }
}
