//! Owns the bucketed status-history query of the journal: the worst grade and the number of
//! snapshots per (kind, time bucket), for the status strips of the summary page. TimescaleDB
//! uses `time_bucket`, plain PostgreSQL `date_bin`, SQLite integer division of the Unix time;
//! all three align buckets on 2000-01-01T00:00:00Z, so they agree on the same rows.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::Row;
use telemesh_core::Grade;

use super::{ts, Journal, JournalError, Layout};

/// Longest window and most buckets one query may ask for.
pub const MAX_WINDOW_HOURS: i64 = 24 * 7;
pub const MAX_BUCKETS: i64 = 500;

/// A status-history query.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    /// One kind, or every kind.
    pub kind: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub bucket_seconds: i64,
}

/// Why a history query is refused before reaching the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryQueryError {
    #[error("since must be before until")]
    EmptyRange,
    #[error("bucket must be 10 s to 1 day, got {0} s")]
    BadBucket(i64),
    #[error("the window may span at most {MAX_WINDOW_HOURS} hours")]
    TooLong,
    #[error("the window holds {0} buckets; at most {MAX_BUCKETS}: use a wider bucket")]
    TooManyBuckets(i64),
}

impl HistoryQuery {
    /// Checks the bounds that keep the query cheap.
    pub fn validate(&self) -> Result<(), HistoryQueryError> {
        if self.since >= self.until {
            return Err(HistoryQueryError::EmptyRange);
        }
        if !(10..=86_400).contains(&self.bucket_seconds) {
            return Err(HistoryQueryError::BadBucket(self.bucket_seconds));
        }
        let span = (self.until - self.since).num_seconds();
        if span > MAX_WINDOW_HOURS * 3600 {
            return Err(HistoryQueryError::TooLong);
        }
        let buckets = (span + self.bucket_seconds - 1) / self.bucket_seconds;
        if buckets > MAX_BUCKETS {
            return Err(HistoryQueryError::TooManyBuckets(buckets));
        }
        Ok(())
    }
}

/// One non-empty bucket of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HistoryBucket {
    pub kind: String,
    pub start: DateTime<Utc>,
    /// The worst grade journaled in the bucket.
    #[schema(value_type = crate::http::openapi::GradeDoc)]
    pub worst: Grade,
    pub snapshots: i64,
}

/// The bucket origin shared by every backend.
fn origin() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The start of the bucket holding `t` (same arithmetic as the SQL).
pub fn bucket_start(t: DateTime<Utc>, bucket_seconds: i64) -> DateTime<Utc> {
    let o = origin();
    let offset = (t - o).num_seconds().div_euclid(bucket_seconds) * bucket_seconds;
    o + chrono::Duration::seconds(offset)
}

fn grade_of(rank: i64) -> Grade {
    match rank {
        r if r >= 2 => Grade::Fail,
        1 => Grade::Warn,
        _ => Grade::Ok,
    }
}

const RANK: &str = "max(CASE status WHEN 'fail' THEN 2 WHEN 'warn' THEN 1 ELSE 0 END)";

/// Runs the query on the journal's backend; buckets come ordered by kind, then time.
pub async fn status_history(
    journal: &Journal,
    q: &HistoryQuery,
) -> Result<Vec<HistoryBucket>, JournalError> {
    let rows = match journal {
        Journal::Postgres(pg) => {
            let bucket = match journal.layout() {
                Layout::Timescale { .. } => {
                    "time_bucket(make_interval(secs => $1), generated_at, $5::timestamptz)"
                }
                _ => "date_bin(make_interval(secs => $1), generated_at, $5::timestamptz)",
            };
            let sql = format!(
                "SELECT kind, {bucket} AS bucket, {RANK}::int8 AS rank, count(*)::int8 AS n \
                 FROM telemetry_snapshots \
                 WHERE ($2::text IS NULL OR kind = $2) AND generated_at >= $3 AND generated_at < $4 \
                 GROUP BY kind, bucket ORDER BY kind, bucket"
            );
            sqlx::query(&sql)
                .bind(q.bucket_seconds as f64)
                .bind(&q.kind)
                .bind(q.since)
                .bind(q.until)
                .bind(origin())
                .fetch_all(pg.pool())
                .await?
                .into_iter()
                .map(|row| {
                    Ok(HistoryBucket {
                        kind: row.try_get("kind")?,
                        start: row.try_get("bucket")?,
                        worst: grade_of(row.try_get("rank")?),
                        snapshots: row.try_get("n")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }
        Journal::Sqlite(lite) => {
            let sql = format!(
                "SELECT kind, \
                   ((CAST(strftime('%s', generated_at) AS INTEGER) - ?1) / ?2) * ?2 + ?1 AS bucket, \
                   {RANK} AS rank, count(*) AS n \
                 FROM telemetry_snapshots \
                 WHERE (?3 IS NULL OR kind = ?3) AND generated_at >= ?4 AND generated_at < ?5 \
                 GROUP BY kind, bucket ORDER BY kind, bucket"
            );
            sqlx::query(&sql)
                .bind(origin().timestamp())
                .bind(q.bucket_seconds)
                .bind(&q.kind)
                .bind(ts(q.since))
                .bind(ts(q.until))
                .fetch_all(lite.pool())
                .await?
                .into_iter()
                .map(|row| {
                    let secs: i64 = row.try_get("bucket")?;
                    Ok(HistoryBucket {
                        kind: row.try_get("kind")?,
                        start: Utc.timestamp_opt(secs, 0).single().unwrap_or_default(),
                        worst: grade_of(row.try_get("rank")?),
                        snapshots: row.try_get("n")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }
    };
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalRecord;
    use crate::settings::JournalSettings;
    use telemesh_core::{Component, Snapshot, Source};

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, s).unwrap()
    }

    fn record(kind: &str, grade: Grade, t: DateTime<Utc>) -> JournalRecord {
        let mut s = Snapshot::new(kind, Source::new("svc", "i1"), t);
        s.push(Component::new("c", grade, "x"));
        JournalRecord {
            snapshot: s,
            received_at: t,
            kafka: None,
        }
    }

    #[test]
    fn bounds_are_checked() {
        let q = |since, until, bucket| HistoryQuery {
            kind: None,
            since,
            until,
            bucket_seconds: bucket,
        };
        assert_eq!(
            q(at(2, 0, 0), at(1, 0, 0), 60).validate(),
            Err(HistoryQueryError::EmptyRange)
        );
        assert_eq!(
            q(at(1, 0, 0), at(2, 0, 0), 5).validate(),
            Err(HistoryQueryError::BadBucket(5))
        );
        assert_eq!(
            q(at(0, 0, 0), at(23, 0, 0), 60).validate(),
            Err(HistoryQueryError::TooManyBuckets(1380))
        );
        let long = q(at(0, 0, 0) - chrono::Duration::days(8), at(0, 0, 0), 86_400);
        assert_eq!(long.validate(), Err(HistoryQueryError::TooLong));
        assert!(q(at(0, 0, 0), at(6, 0, 0), 300).validate().is_ok());
    }

    #[test]
    fn buckets_align_on_the_shared_origin() {
        assert_eq!(bucket_start(at(3, 7, 59), 300), at(3, 5, 0));
        assert_eq!(bucket_start(at(3, 5, 0), 300), at(3, 5, 0));
        assert_eq!(bucket_start(at(3, 59, 59), 3600), at(3, 0, 0));
    }

    #[tokio::test]
    async fn sqlite_buckets_hold_the_worst_grade_and_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::connect(&JournalSettings {
            url: telemesh_core::config::SecretUrl::new(format!(
                "sqlite://{}/h.db",
                dir.path().display()
            )),
            ..JournalSettings::default()
        })
        .await
        .unwrap();
        journal
            .insert_batch(&[
                record("a", Grade::Ok, at(3, 0, 1)),
                record("a", Grade::Fail, at(3, 4, 59)),
                record("a", Grade::Warn, at(3, 5, 0)),
                record("b", Grade::Ok, at(3, 1, 0)),
                record("a", Grade::Fail, at(2, 59, 59)), // before the window
            ])
            .await
            .unwrap();
        let q = HistoryQuery {
            kind: None,
            since: at(3, 0, 0),
            until: at(4, 0, 0),
            bucket_seconds: 300,
        };
        let got = status_history(&journal, &q).await.unwrap();
        let simple: Vec<(&str, DateTime<Utc>, Grade, i64)> = got
            .iter()
            .map(|b| (b.kind.as_str(), b.start, b.worst, b.snapshots))
            .collect();
        assert_eq!(
            simple,
            vec![
                ("a", at(3, 0, 0), Grade::Fail, 2),
                ("a", at(3, 5, 0), Grade::Warn, 1),
                ("b", at(3, 0, 0), Grade::Ok, 1),
            ]
        );
        let only_b = status_history(
            &journal,
            &HistoryQuery {
                kind: Some("b".into()),
                ..q
            },
        )
        .await
        .unwrap();
        assert_eq!(only_b.len(), 1);
    }
}
