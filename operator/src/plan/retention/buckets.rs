//! Calendar buckets for the `keepHourly|Daily|Weekly|Monthly|Yearly` rules.
//!
//! A bucket is a calendar hour, day, ISO week (Monday start, numbered in its ISO week-year, so
//! 2027-01-01 falls in week 53 of 2026), month or year of the backup's time *in the policy's time
//! zone*. Each bucket is reduced to one `i64` key; two times share a bucket exactly when their
//! keys are equal.
//!
//! Hours are wall-clock hours: when clocks go back, the repeated hour (for example 02:00-03:00
//! twice in Europe/Berlin in October) is one calendar hour, so one bucket; when clocks go
//! forward, the skipped hour simply has no backups.

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;

/// The calendar periods retention buckets are made of, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Period {
    /// A calendar hour.
    Hour,
    /// A calendar day.
    Day,
    /// An ISO 8601 week (Monday to Sunday) of its ISO week-year.
    Week,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
}

impl Period {
    /// Every period, finest first (the order of the `keep*` rules in api.md).
    pub(super) const ALL: [Period; 5] = [Period::Hour, Period::Day, Period::Week, Period::Month, Period::Year];
}

/// The wall-clock time of an instant in a time zone.
pub(super) fn local_time(time: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    time.with_timezone(&tz).naive_local()
}

/// The key of the bucket of `period` that a wall-clock time falls in.
pub(super) fn bucket_key(local: NaiveDateTime, period: Period) -> i64 {
    let date = local.date();
    match period {
        Period::Hour => i64::from(date.num_days_from_ce()) * 24 + i64::from(local.hour()),
        Period::Day => i64::from(date.num_days_from_ce()),
        Period::Week => {
            let week = date.iso_week();
            i64::from(week.year()) * 64 + i64::from(week.week())
        }
        Period::Month => i64::from(date.year()) * 12 + i64::from(date.month0()),
        Period::Year => i64::from(date.year()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("rfc3339").with_timezone(&Utc)
    }

    fn same(a: &str, b: &str, tz: Tz, period: Period) -> bool {
        bucket_key(local_time(utc(a), tz), period) == bucket_key(local_time(utc(b), tz), period)
    }

    #[test]
    fn buckets_follow_the_calendar_of_the_time_zone() {
        let ist = chrono_tz::Europe::Istanbul;
        let berlin = chrono_tz::Europe::Berlin;
        let cases = [
            // (a, b, zone, period, same bucket?)
            ("2026-03-10T20:30:00Z", "2026-03-10T23:30:00Z", chrono_tz::UTC, Period::Day, true),
            // 23:30 UTC is 02:30 the next day in Istanbul (UTC+3).
            ("2026-03-10T20:30:00Z", "2026-03-10T23:30:00Z", ist, Period::Day, false),
            ("2026-03-10T21:30:00Z", "2026-03-10T23:30:00Z", ist, Period::Day, true),
            ("2026-03-10T10:05:00Z", "2026-03-10T10:55:00Z", chrono_tz::UTC, Period::Hour, true),
            ("2026-03-10T10:55:00Z", "2026-03-10T11:05:00Z", chrono_tz::UTC, Period::Hour, false),
            // Asia/Kolkata is UTC+05:30: its hours start at half past in UTC.
            ("2026-03-10T10:05:00Z", "2026-03-10T10:55:00Z", chrono_tz::Asia::Kolkata, Period::Hour, false),
            // The repeated hour 02:00-03:00 on 2026-10-25 in Berlin (00:xx UTC then 01:xx UTC).
            ("2026-10-25T00:30:00Z", "2026-10-25T01:10:00Z", berlin, Period::Hour, true),
            // ISO weeks: Monday 2026-12-28 .. Sunday 2027-01-03 is week 53 of 2026.
            ("2026-12-31T12:00:00Z", "2027-01-01T12:00:00Z", chrono_tz::UTC, Period::Week, true),
            ("2026-12-28T00:00:00Z", "2027-01-03T23:59:59Z", chrono_tz::UTC, Period::Week, true),
            ("2027-01-03T23:59:59Z", "2027-01-04T00:00:00Z", chrono_tz::UTC, Period::Week, false),
            ("2026-12-27T23:59:59Z", "2026-12-28T00:00:00Z", chrono_tz::UTC, Period::Week, false),
            // 2020-12-31 (Thursday) is in week 53 of 2020, like 2021-01-03 (Sunday).
            ("2020-12-31T12:00:00Z", "2021-01-03T12:00:00Z", chrono_tz::UTC, Period::Week, true),
            // 2019-12-30 (Monday) is week 1 of 2020.
            ("2019-12-30T12:00:00Z", "2020-01-05T12:00:00Z", chrono_tz::UTC, Period::Week, true),
            ("2026-12-31T12:00:00Z", "2027-01-01T12:00:00Z", chrono_tz::UTC, Period::Month, false),
            ("2026-12-31T12:00:00Z", "2027-01-01T12:00:00Z", chrono_tz::UTC, Period::Year, false),
            // 2026-12-31T22:30Z is already 2027 in Istanbul.
            ("2026-12-31T22:30:00Z", "2027-01-01T12:00:00Z", ist, Period::Year, true),
            ("2026-12-31T22:30:00Z", "2027-01-01T12:00:00Z", ist, Period::Month, true),
            ("2026-01-01T00:00:00Z", "2026-12-31T23:59:59Z", chrono_tz::UTC, Period::Year, true),
        ];
        for (a, b, tz, period, want) in cases {
            assert_eq!(same(a, b, tz, period), want, "{a} / {b} in {tz} by {period:?}");
        }
    }

    #[test]
    fn keys_never_increase_going_back_in_time_outside_dst_folds() {
        let tz = chrono_tz::America::New_York;
        let mut previous = [i64::MAX; 5];
        let start = Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).single().expect("time");
        for hours in 0..(24 * 800) {
            let local = local_time(start - chrono::Duration::hours(hours), tz);
            for (i, period) in Period::ALL.into_iter().enumerate() {
                let key = bucket_key(local, period);
                if period != Period::Hour {
                    assert!(key <= previous[i], "{period:?} at {local}");
                }
                previous[i] = key;
            }
        }
    }
}
