//! Owns business hours: the acknowledgement deadline counts business time only, and a
//! failure still firing at the end of a business day escalates again.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

/// Working days and hours in one time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessCalendar {
    pub tz: Tz,
    /// Business days, Monday = index 0.
    pub days: [bool; 7],
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// Why business hours cannot be built from settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "alerting.timezone: unknown time zone {0:?}; use an IANA name such as Europe/London or UTC"
    )]
    TimeZone(String),
    #[error("alerting.business_days: unknown day {0:?}; use mon, tue, wed, thu, fri, sat, sun")]
    Day(String),
    #[error("alerting.business_{0}: {1:?} is not a HH:MM time")]
    Time(&'static str, String),
    #[error("alerting.business_end must be after alerting.business_start, and some business day must be set")]
    Empty,
}

impl CalendarError {
    /// The dotted configuration key at fault.
    pub fn key(&self) -> String {
        match self {
            CalendarError::TimeZone(_) => "alerting.timezone".into(),
            CalendarError::Day(_) => "alerting.business_days".into(),
            CalendarError::Time(which, _) => format!("alerting.business_{which}"),
            CalendarError::Empty => "alerting.business_end".into(),
        }
    }

    /// The message without the leading key.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        text.strip_prefix(&self.key())
            .map(|rest| rest.trim_start_matches([':', ' ']).to_owned())
            .unwrap_or(text)
    }
}

impl BusinessCalendar {
    pub fn new(tz: &str, days: &[String], start: &str, end: &str) -> Result<Self, CalendarError> {
        let tz: Tz = tz
            .parse()
            .map_err(|_| CalendarError::TimeZone(tz.to_owned()))?;
        let mut set = [false; 7];
        for day in days {
            let index = match day.trim().to_ascii_lowercase().get(..3) {
                Some("mon") => 0,
                Some("tue") => 1,
                Some("wed") => 2,
                Some("thu") => 3,
                Some("fri") => 4,
                Some("sat") => 5,
                Some("sun") => 6,
                _ => return Err(CalendarError::Day(day.clone())),
            };
            set[index] = true;
        }
        let parse = |which, s: &str| {
            NaiveTime::parse_from_str(s.trim(), "%H:%M")
                .map_err(|_| CalendarError::Time(which, s.to_owned()))
        };
        let (start, end) = (parse("start", start)?, parse("end", end)?);
        if end <= start || !set.contains(&true) {
            return Err(CalendarError::Empty);
        }
        Ok(Self {
            tz,
            days: set,
            start,
            end,
        })
    }

    fn is_business_day(&self, date: NaiveDate) -> bool {
        self.days[date.weekday().num_days_from_monday() as usize]
    }

    fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        // in a DST gap take the later instant, in an overlap the earlier one
        match self.tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => self
                .tz
                .from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
                .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc)),
        }
    }

    /// Business hours `[start, end)` of a local date, in UTC, if it is a business day.
    fn window(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.is_business_day(date).then(|| {
            (
                self.to_utc(date.and_time(self.start)),
                self.to_utc(date.and_time(self.end)),
            )
        })
    }

    /// The instant `amount` of business time after `from` (time outside business hours does not count).
    pub fn add_business_time(&self, from: DateTime<Utc>, amount: Duration) -> DateTime<Utc> {
        let mut remaining = amount;
        let mut date = from.with_timezone(&self.tz).date_naive();
        let mut cursor = from;
        for _ in 0..3660 {
            if let Some((open, close)) = self.window(date) {
                let begin = cursor.max(open);
                if begin < close {
                    let available = close - begin;
                    if remaining <= available {
                        return begin + remaining;
                    }
                    remaining -= available;
                }
            }
            date = date.succ_opt().unwrap_or(date);
            cursor = cursor.max(self.to_utc(date.and_time(NaiveTime::MIN)));
        }
        from + amount
    }

    /// The first end of a business day strictly after `t`.
    pub fn next_end_of_day(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut date = t.with_timezone(&self.tz).date_naive();
        for _ in 0..3660 {
            if let Some((_, close)) = self.window(date) {
                if close > t {
                    return close;
                }
            }
            date = date.succ_opt().unwrap_or(date);
        }
        t + Duration::days(1)
    }

    /// The weekday of an instant in this calendar's zone (for messages).
    pub fn weekday(&self, t: DateTime<Utc>) -> Weekday {
        t.with_timezone(&self.tz).weekday()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(tz: &str) -> BusinessCalendar {
        let days: Vec<String> = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| d.to_string())
            .collect();
        BusinessCalendar::new(tz, &days, "09:00", "17:00").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn one_business_hour_skips_nights_and_weekends() {
        let c = cal("UTC");
        // Wednesday 10:00 → 11:00 the same day
        assert_eq!(
            c.add_business_time(utc("2026-11-25T10:00:00Z"), Duration::hours(1)),
            utc("2026-11-25T11:00:00Z")
        );
        // Wednesday 16:30 → Thursday 09:30
        assert_eq!(
            c.add_business_time(utc("2026-11-25T16:30:00Z"), Duration::hours(1)),
            utc("2026-11-26T09:30:00Z")
        );
        // Friday 20:00 → Monday 10:00
        assert_eq!(
            c.add_business_time(utc("2026-11-27T20:00:00Z"), Duration::hours(1)),
            utc("2026-11-30T10:00:00Z")
        );
        // Saturday → Monday 10:00
        assert_eq!(
            c.add_business_time(utc("2026-11-28T12:00:00Z"), Duration::hours(1)),
            utc("2026-11-30T10:00:00Z")
        );
    }

    #[test]
    fn end_of_day_is_the_next_business_close() {
        let c = cal("UTC");
        assert_eq!(
            c.next_end_of_day(utc("2026-11-25T10:00:00Z")),
            utc("2026-11-25T17:00:00Z")
        );
        assert_eq!(
            c.next_end_of_day(utc("2026-11-25T17:00:00Z")),
            utc("2026-11-26T17:00:00Z")
        );
        assert_eq!(
            c.next_end_of_day(utc("2026-11-27T18:00:00Z")),
            utc("2026-11-30T17:00:00Z")
        );
    }

    #[test]
    fn time_zones_shift_the_window() {
        let c = cal("America/New_York");
        // 09:00 in New York on a November Wednesday is 14:00 UTC
        assert_eq!(
            c.add_business_time(utc("2026-11-25T12:00:00Z"), Duration::hours(1)),
            utc("2026-11-25T15:00:00Z")
        );
    }

    #[test]
    fn bad_settings_name_the_key() {
        assert!(
            BusinessCalendar::new("Mars/Olympus", &["mon".into()], "09:00", "17:00")
                .unwrap_err()
                .to_string()
                .contains("alerting.timezone")
        );
        assert!(
            BusinessCalendar::new("UTC", &["someday".into()], "09:00", "17:00")
                .unwrap_err()
                .to_string()
                .contains("alerting.business_days")
        );
        assert!(
            BusinessCalendar::new("UTC", &["mon".into()], "9am", "17:00")
                .unwrap_err()
                .to_string()
                .contains("alerting.business_start")
        );
        assert_eq!(
            BusinessCalendar::new("UTC", &["mon".into()], "17:00", "09:00"),
            Err(CalendarError::Empty)
        );
    }
}
