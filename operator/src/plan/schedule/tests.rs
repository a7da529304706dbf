//! Table-driven tests of [`Schedule`]: time zones, DST both ways, month ends, macros, bad input.
//! Expected times are written as local times with their offset, compared as instants.

use super::*;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap_or_else(|e| panic!("{rfc3339}: {e}")).to_utc()
}

/// One row: expression, time zone, "after", the expected next run times.
type Row = (&'static str, &'static str, &'static str, &'static [&'static str]);

fn check(rows: &[Row]) {
    for (expr, tz, after, want) in rows {
        let schedule = Schedule::parse(expr, tz).unwrap_or_else(|e| panic!("{expr} {tz}: {e}"));
        let got = schedule.upcoming(at(after), want.len());
        let want: Vec<_> = want.iter().map(|t| at(t)).collect();
        assert_eq!(got, want, "{expr:?} in {tz} after {after}");
        // next_after agrees with upcoming, and is strictly after.
        assert_eq!(schedule.next_after(at(after)), want.first().copied(), "{expr:?} in {tz} next_after");
        for run in &got {
            assert!(schedule.next_after(*run).is_some_and(|n| n > *run), "{expr:?}: next after {run}");
        }
    }
}

#[test]
fn time_zones() {
    check(&[
        ("0 2 * * *", "UTC", "2026-11-21T12:00:00Z", &["2026-11-22T02:00:00Z", "2026-11-23T02:00:00Z"]),
        ("0 2 * * *", "Europe/Istanbul", "2026-11-21T12:00:00Z", &["2026-11-22T02:00:00+03:00", "2026-11-23T02:00:00+03:00"]),
        ("0 2 * * *", "America/New_York", "2026-11-21T12:00:00Z", &["2026-11-22T02:00:00-05:00"]),
        ("0 2 * * *", "America/New_York", "2026-07-01T12:00:00Z", &["2026-07-02T02:00:00-04:00"]),
        ("0 2 * * *", "Australia/Lord_Howe", "2026-07-01T00:00:00Z", &["2026-07-02T02:00:00+10:30"]),
        ("0 2 * * *", "Asia/Kolkata", "2026-07-01T00:00:00Z", &["2026-07-02T02:00:00+05:30"]),
        // Exactly at a run time: the next one, strictly after.
        ("0 2 * * *", "UTC", "2026-11-22T02:00:00Z", &["2026-11-23T02:00:00Z"]),
        ("0 2 * * *", "UTC", "2026-11-22T01:59:59.999Z", &["2026-11-22T02:00:00Z"]),
        ("0 2 * * *", "UTC", "2026-11-22T02:00:00.001Z", &["2026-11-23T02:00:00Z"]),
        ("*/20 * * * *", "Europe/Istanbul", "2026-11-22T02:05:00Z", &["2026-11-22T05:20:00+03:00", "2026-11-22T05:40:00+03:00", "2026-11-22T06:00:00+03:00"]),
    ]);
}

#[test]
fn clock_jumps_forward() {
    check(&[
        // A daily fixed-time job in the gap runs once, at the first instant after it.
        ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00-05:00", &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]),
        ("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00+01:00", &["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]),
        // Lord Howe's half-hour change: 02:00 becomes 02:30.
        ("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", &["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]),
        ("45 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", &["2026-10-04T02:45:00+11:00"]),
        // Several skipped times of a fixed-time job collapse into one run.
        ("0,30 2 * * *", "America/New_York", "2026-03-08T01:00:00-05:00", &["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"]),
        ("30 2,14 * * *", "America/New_York", "2026-03-08T00:00:00-05:00", &["2026-03-08T03:00:00-04:00", "2026-03-08T14:30:00-04:00"]),
        // Just before and at the first instant after the gap.
        ("30 2 * * *", "America/New_York", "2026-03-08T01:59:59-05:00", &["2026-03-08T03:00:00-04:00"]),
        ("30 2 * * *", "America/New_York", "2026-03-08T03:00:00-04:00", &["2026-03-09T02:30:00-04:00"]),
        // A fixed 03:00 job coincides with the gap end and still runs once.
        ("0 3 * * *", "America/New_York", "2026-03-08T00:00:00-05:00", &["2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"]),
        // Wildcard jobs skip the missing hour and keep their rhythm in real time.
        ("0 * * * *", "America/New_York", "2026-03-08T00:30:00-05:00", &["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]),
        ("@hourly", "Europe/Berlin", "2026-03-29T01:30:00+01:00", &["2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"]),
        ("*/15 * * * *", "America/New_York", "2026-03-08T01:50:00-05:00", &["2026-03-08T03:00:00-04:00", "2026-03-08T03:15:00-04:00"]),
        ("* 2 * * *", "America/New_York", "2026-03-08T01:00:00-05:00", &["2026-03-09T02:00:00-04:00"]),
        ("0 * * * *", "Australia/Lord_Howe", "2026-10-04T00:30:00+10:30", &["2026-10-04T01:00:00+10:30", "2026-10-04T03:00:00+11:00"]),
        ("*/30 * * * *", "Australia/Lord_Howe", "2026-10-04T01:15:00+10:30", &["2026-10-04T01:30:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T03:00:00+11:00"]),
    ]);
}

#[test]
fn clock_goes_back() {
    check(&[
        // A daily fixed-time job in the repeated hour runs once, at the first occurrence.
        ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00-04:00", &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),
        ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+02:00", &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
        ("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00+11:00", &["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"]),
        ("30 1,13 * * *", "America/New_York", "2026-11-01T00:00:00-04:00", &["2026-11-01T01:30:00-04:00", "2026-11-01T13:30:00-05:00"]),
        // Starting inside the repeated hour: no second run of a fixed-time job.
        ("30 1 * * *", "America/New_York", "2026-11-01T01:10:00-05:00", &["2026-11-02T01:30:00-05:00"]),
        ("30 1 * * *", "America/New_York", "2026-11-01T01:10:00-04:00", &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),
        // Wildcard jobs run at both occurrences: every real hour.
        ("0 * * * *", "America/New_York", "2026-11-01T00:30:00-04:00", &["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"]),
        ("@hourly", "Europe/Berlin", "2026-10-25T01:30:00+02:00", &["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"]),
        ("*/30 * * * *", "America/New_York", "2026-11-01T00:45:00-04:00", &["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"]),
        // Starting inside the repeated hour, in its first or its second pass.
        ("*/30 * * * *", "America/New_York", "2026-11-01T01:10:00-04:00", &["2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00"]),
        ("*/30 * * * *", "America/New_York", "2026-11-01T01:10:00-05:00", &["2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"]),
        ("*/20 * * * *", "America/New_York", "2026-11-01T01:30:00-04:00", &["2026-11-01T01:40:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00"]),
        ("*/30 * * * *", "Australia/Lord_Howe", "2026-04-05T01:15:00+11:00", &["2026-04-05T01:30:00+11:00", "2026-04-05T01:30:00+10:30", "2026-04-05T02:00:00+10:30"]),
    ]);
}

#[test]
fn month_ends_and_leap_years() {
    check(&[
        ("0 0 31 * *", "UTC", "2026-01-31T12:00:00Z", &["2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z"]),
        ("0 0 30 * *", "UTC", "2026-01-31T00:00:00Z", &["2026-03-30T00:00:00Z"]),
        ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
        ("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", &["2104-02-29T00:00:00Z"]),
        ("0 0 L 2 *", "UTC", "2026-01-01T00:00:00Z", &["2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2028-02-29T00:00:00Z"]),
        ("0 0 L * *", "Europe/Istanbul", "2028-01-31T00:00:00+03:00", &["2028-02-29T00:00:00+03:00", "2028-03-31T00:00:00+03:00", "2028-04-30T00:00:00+03:00"]),
        ("59 23 31 12 *", "Australia/Lord_Howe", "2026-06-01T00:00:00Z", &["2026-12-31T23:59:00+11:00", "2027-12-31T23:59:00+11:00"]),
    ]);
}

#[test]
fn macros() {
    check(&[
        ("@hourly", "UTC", "2026-11-22T02:10:00Z", &["2026-11-22T03:00:00Z", "2026-11-22T04:00:00Z"]),
        ("@daily", "Europe/Istanbul", "2026-11-22T02:10:00Z", &["2026-11-23T00:00:00+03:00", "2026-11-24T00:00:00+03:00"]),
        ("@weekly", "UTC", "2026-11-20T00:00:00Z", &["2026-11-22T00:00:00Z", "2026-11-29T00:00:00Z"]),
        ("@monthly", "America/New_York", "2026-11-20T00:00:00Z", &["2026-12-01T00:00:00-05:00", "2027-01-01T00:00:00-05:00"]),
        ("@yearly", "UTC", "2026-11-20T00:00:00Z", &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
        ("@annually", "UTC", "2026-11-20T00:00:00Z", &["2027-01-01T00:00:00Z"]),
        ("@DAILY", "UTC", "2026-11-20T00:00:00Z", &["2026-11-21T00:00:00Z"]),
        ("  @daily  ", "UTC", "2026-11-20T00:00:00Z", &["2026-11-21T00:00:00Z"]),
    ]);
}

#[test]
fn days_of_week_and_month() {
    check(&[
        // Sunday is 0 and 7 (2026-11-22 is a Sunday).
        ("0 0 * * 0", "UTC", "2026-11-20T00:00:00Z", &["2026-11-22T00:00:00Z", "2026-11-29T00:00:00Z"]),
        ("0 0 * * 7", "UTC", "2026-11-20T00:00:00Z", &["2026-11-22T00:00:00Z", "2026-11-29T00:00:00Z"]),
        ("0 0 * * sun", "UTC", "2026-11-20T00:00:00Z", &["2026-11-22T00:00:00Z"]),
        ("0 0 * * 5-7", "UTC", "2026-11-19T00:00:00Z", &["2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z", "2026-11-27T00:00:00Z"]),
        ("0 0 * * MON-FRI", "UTC", "2026-11-20T00:00:00Z", &["2026-11-23T00:00:00Z"]),
        ("0 0 * JAN,jul *", "UTC", "2026-11-20T00:00:00Z", &["2027-01-01T00:00:00Z"]),
        // Both day fields restricted: either matches (1 June 2026 is a Monday).
        ("0 0 1 * 1", "UTC", "2026-06-01T00:00:00Z", &["2026-06-08T00:00:00Z", "2026-06-15T00:00:00Z", "2026-06-22T00:00:00Z", "2026-06-29T00:00:00Z", "2026-07-01T00:00:00Z", "2026-07-06T00:00:00Z"]),
        ("0 0 */10 * 0", "UTC", "2026-11-20T00:00:00Z", &["2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z", "2026-11-29T00:00:00Z", "2026-12-01T00:00:00Z"]),
        // Only one restricted: that one alone.
        ("0 0 15 * *", "UTC", "2026-11-20T00:00:00Z", &["2026-12-15T00:00:00Z"]),
        ("0 0 ? * 3", "UTC", "2026-11-20T00:00:00Z", &["2026-11-25T00:00:00Z"]),
        // "+": both must match (Friday the 13th).
        ("0 0 13 * +5", "UTC", "2026-01-01T00:00:00Z", &["2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z", "2026-11-13T00:00:00Z"]),
        // Steps, ranges and Kubernetes' "0/15".
        ("0/15 9-10 * * *", "UTC", "2026-11-20T10:20:00Z", &["2026-11-20T10:30:00Z", "2026-11-20T10:45:00Z", "2026-11-21T09:00:00Z"]),
        ("10-50/20 * * * *", "UTC", "2026-11-20T10:20:00Z", &["2026-11-20T10:30:00Z", "2026-11-20T10:50:00Z", "2026-11-20T11:10:00Z"]),
    ]);
}

#[test]
fn fixed_time_or_wildcard() {
    let cases = [
        ("30 2 * * *", true),
        ("0,30 2 * * *", true),
        ("0 1-5 * * *", true),
        ("@daily", true),
        ("@weekly", true),
        ("0 * * * *", false),
        ("*/15 2 * * *", false),
        ("0 */6 * * *", false),
        ("@hourly", false),
        ("@HOURLY", false),
    ];
    for (expr, fixed) in cases {
        let schedule = Schedule::parse(expr, "UTC").expect(expr);
        assert_eq!(schedule.is_fixed_time(), fixed, "{expr}");
    }
}

#[test]
fn bad_expressions() {
    let cases = [
        ("61 * * * *", r#"bad cron expression "61 * * * *": minute 61 is out of range 0-59"#),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month 32 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)"),
        ("0 0 1,40 * *", "day-of-month 40 is out of range 1-31"),
        ("5-1 * * * *", "minute range 5-1 runs backwards"),
        ("*/0 * * * *", r#"minute field "*/0": step cannot be zero"#),
        ("x 2 * * *", r#"minute field "x" holds a character"#),
        ("0 2 * * funday", r#"day-of-week field "funday""#),
        ("0 2 * *", "has 4 fields, expected 5: minute hour day-of-month month day-of-week"),
        ("0 0 2 * * *", "has 6 fields, expected 5: minute hour day-of-month month day-of-week (seconds and years"),
        ("", r#"bad cron expression "": it is empty"#),
        ("   ", "it is empty"),
        ("@fortnightly", r#"bad cron expression "@fortnightly": unknown macro; expected @hourly, @daily"#),
        ("0 0 30 2 *", r#"bad cron expression "0 0 30 2 *": it never matches any date"#),
        ("0 0 31 4,6 *", "it never matches any date"),
    ];
    for (expr, want) in cases {
        let err = Schedule::parse(expr, "UTC").expect_err(expr);
        assert!(matches!(err, ScheduleError::BadCron { .. }), "{expr}: {err:?}");
        assert_eq!(err.reason(), "InvalidSchedule");
        let message = err.to_string();
        assert!(message.contains(want), "{expr:?}: {message:?} should contain {want:?}");
        assert!(!message.contains('\n'), "{message:?}");
    }
}

#[test]
fn bad_time_zones() {
    let cases = [
        ("Europe/Atlantis", r#"unknown time zone "Europe/Atlantis" (expected an IANA name"#),
        ("europe/istanbul", r#"unknown time zone "europe/istanbul" (did you mean "Europe/Istanbul"?)"#),
        ("", r#"unknown time zone """#),
        ("+03:00", r#"unknown time zone "+03:00""#),
        ("EST5EDT ", "unknown time zone"),
    ];
    for (tz, want) in cases {
        let err = Schedule::parse("0 2 * * *", tz).expect_err(tz);
        assert!(matches!(err, ScheduleError::UnknownTimeZone { .. }), "{tz}: {err:?}");
        assert_eq!(err.reason(), "UnknownTimeZone");
        assert!(err.to_string().contains(want), "{tz:?}: {err} should contain {want:?}");
        assert_eq!(parse_time_zone(tz).expect_err(tz), err);
    }
    assert_eq!(parse_time_zone("UTC").ok(), Some(chrono_tz::UTC));
    assert_eq!(parse_time_zone("Etc/GMT-3").map(|tz| tz.name()).ok(), Some("Etc/GMT-3"));
}

#[test]
fn upcoming_counts_and_accessors() {
    let schedule = Schedule::parse(" 0 2 * * * ", "Europe/Istanbul").expect("valid");
    assert_eq!(schedule.expression(), "0 2 * * *");
    assert_eq!(schedule.time_zone(), chrono_tz::Europe::Istanbul);
    let after = at("2026-11-21T12:00:00Z");
    assert!(schedule.upcoming(after, 0).is_empty());
    let runs = schedule.upcoming(after, 400);
    assert_eq!(runs.len(), 400);
    assert!(runs.windows(2).all(|w| w[1] - w[0] == TimeDelta::days(1)));
}

#[test]
fn extreme_times_do_not_panic() {
    let times = [
        at("0000-01-01T00:00:00Z"),
        at("0001-01-01T00:00:00+14:00"),
        at("4999-12-31T23:30:00Z"),
        at("9999-12-31T23:59:59Z"),
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
    ];
    for (expr, tz) in [("30 2 * * *", "America/New_York"), ("*/30 * * * *", "Australia/Lord_Howe"), ("@daily", "Pacific/Kiritimati")] {
        let schedule = Schedule::parse(expr, tz).expect(expr);
        for t in times {
            let runs = schedule.upcoming(t, 3);
            assert!(runs.iter().all(|run| *run > t), "{expr} {tz} {t}: {runs:?}");
            let _ = due_runs(&schedule, Some(t), t, t);
        }
    }
    // Croner stops at the year 5000.
    let schedule = Schedule::parse("@yearly", "UTC").expect("valid");
    assert_eq!(schedule.next_after(at("4999-06-01T00:00:00Z")), Some(at("5000-01-01T00:00:00Z")));
    assert_eq!(schedule.next_after(at("9999-06-01T00:00:00Z")), None);
}
