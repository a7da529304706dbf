//! Which scheduled run is due now, without a catch-up storm after downtime.

use super::Schedule;
use chrono::{DateTime, TimeDelta, Utc};

/// [`DueRuns::skipped`] is counted exactly up to this many; beyond it, it stays at this value
/// (a minutely schedule missed for more than ~69 days).
pub const SKIPPED_COUNT_LIMIT: u32 = 100_000;

/// What a BackupPolicy's schedule asks for at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueRuns {
    /// The scheduled time to start a backup for now: the newest scheduled time that has
    /// passed and was not started yet. At most one, however many were missed.
    pub run_now: Option<DateTime<Utc>>,
    /// How many older missed scheduled times are not started (they are only counted, for an
    /// Event; capped at [`SKIPPED_COUNT_LIMIT`]).
    pub skipped: u32,
    /// The next scheduled time after `now` (and after the last scheduled run): when to requeue
    /// and what `status.nextScheduleTime` shows.
    pub next: Option<DateTime<Utc>>,
}

/// Decides the scheduled run due at `now`.
///
/// Missed scheduled times are those strictly after `last_schedule_time` (the scheduled time of
/// the last run started; absent before the first run, then `policy_created` counts instead)
/// and at or before `now`. The newest of them is `run_now`; the older ones are `skipped`, so an
/// operator that was down for a week starts one backup, not one per missed slot. A clock that
/// is behind (`now` before `last_schedule_time`) starts nothing. Suspension is not handled
/// here: a suspended policy simply does not act on `run_now`.
pub fn due_runs(
    schedule: &Schedule,
    last_schedule_time: Option<DateTime<Utc>>,
    policy_created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DueRuns {
    let since = last_schedule_time.unwrap_or(policy_created);
    let next = schedule.next_after(since.max(now));
    let Some(run_now) = newest_between(schedule, since, now) else {
        return DueRuns { run_now: None, skipped: 0, next };
    };
    let mut skipped = 0;
    let mut t = since;
    while skipped < SKIPPED_COUNT_LIMIT {
        match schedule.next_after(t) {
            Some(missed) if missed < run_now => {
                skipped += 1;
                t = missed;
            }
            _ => break,
        }
    }
    DueRuns { run_now: Some(run_now), skipped, next }
}

/// The newest scheduled time in `(since, until]`. Looks back through growing windows, so a
/// frequent schedule is found in the last hour and only a rare one is walked from further back.
fn newest_between(schedule: &Schedule, since: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if until <= since {
        return None;
    }
    let windows = [TimeDelta::hours(1), TimeDelta::days(1), TimeDelta::days(32), TimeDelta::days(367)];
    for window in windows.into_iter().map(Some).chain([None]) {
        let from = window.and_then(|w| until.checked_sub_signed(w)).map_or(since, |t| t.max(since));
        let mut newest = None;
        let mut t = from;
        while let Some(run) = schedule.next_after(t).filter(|run| *run <= until) {
            newest = Some(run);
            t = run;
        }
        if newest.is_some() || from == since {
            return newest;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap_or_else(|e| panic!("{rfc3339}: {e}")).to_utc()
    }

    fn opt(rfc3339: Option<&str>) -> Option<DateTime<Utc>> {
        rfc3339.map(at)
    }

    #[test]
    fn due_runs_table() {
        // (name, schedule, time zone, last schedule time, policy created, now, run_now, skipped, next)
        type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str, &'a str, Option<&'a str>, u32, Option<&'a str>);
        let rows: &[Row] = &[
            ("no run yet, not due", "0 2 * * *", "UTC", None, "2026-11-21T10:00:00Z", "2026-11-21T12:00:00Z",
             None, 0, Some("2026-11-22T02:00:00Z")),
            ("no run yet, first slot passed", "0 2 * * *", "UTC", None, "2026-11-21T10:00:00Z", "2026-11-22T02:00:30Z",
             Some("2026-11-22T02:00:00Z"), 0, Some("2026-11-23T02:00:00Z")),
            ("created exactly at a slot: that slot is not run", "0 2 * * *", "UTC", None, "2026-11-22T02:00:00Z", "2026-11-22T12:00:00Z",
             None, 0, Some("2026-11-23T02:00:00Z")),
            ("due exactly now", "0 2 * * *", "UTC", Some("2026-11-21T02:00:00Z"), "2026-01-01T00:00:00Z", "2026-11-22T02:00:00Z",
             Some("2026-11-22T02:00:00Z"), 0, Some("2026-11-23T02:00:00Z")),
            ("last run is the latest slot: not due", "0 2 * * *", "UTC", Some("2026-11-22T02:00:00Z"), "2026-01-01T00:00:00Z", "2026-11-22T23:59:59Z",
             None, 0, Some("2026-11-23T02:00:00Z")),
            ("one missed", "0 2 * * *", "Europe/Istanbul", Some("2026-11-20T23:00:00Z"), "2026-01-01T00:00:00Z", "2026-11-22T08:00:00Z",
             Some("2026-11-21T23:00:00Z"), 0, Some("2026-11-22T23:00:00Z")),
            ("a week missed: one run, six skipped", "0 2 * * *", "UTC", Some("2026-11-15T02:00:00Z"), "2026-01-01T00:00:00Z", "2026-11-22T12:00:00Z",
             Some("2026-11-22T02:00:00Z"), 6, Some("2026-11-23T02:00:00Z")),
            ("hourly, a day missed", "@hourly", "UTC", Some("2026-11-21T12:00:00Z"), "2026-01-01T00:00:00Z", "2026-11-22T12:30:00Z",
             Some("2026-11-22T12:00:00Z"), 23, Some("2026-11-22T13:00:00Z")),
            ("every minute, 30 days missed", "* * * * *", "UTC", Some("2026-10-23T12:00:00Z"), "2026-01-01T00:00:00Z", "2026-11-22T12:00:10Z",
             Some("2026-11-22T12:00:00Z"), 30 * 24 * 60 - 1, Some("2026-11-22T12:01:00Z")),
            ("yearly, three years missed", "@yearly", "UTC", None, "2023-06-01T00:00:00Z", "2026-11-22T12:00:00Z",
             Some("2026-01-01T00:00:00Z"), 2, Some("2027-01-01T00:00:00Z")),
            ("leap day, missed for years", "0 0 29 2 *", "UTC", Some("2016-02-29T00:00:00Z"), "2010-01-01T00:00:00Z", "2029-01-01T00:00:00Z",
             Some("2028-02-29T00:00:00Z"), 2, Some("2032-02-29T00:00:00Z")),
            ("clock behind the last run", "0 2 * * *", "UTC", Some("2026-11-22T02:00:00Z"), "2026-01-01T00:00:00Z", "2026-11-21T12:00:00Z",
             None, 0, Some("2026-11-23T02:00:00Z")),
            ("spring-forward day in New York", "30 2 * * *", "America/New_York", Some("2026-03-07T02:30:00-05:00"), "2026-01-01T00:00:00Z", "2026-03-08T03:00:00-04:00",
             Some("2026-03-08T03:00:00-04:00"), 0, Some("2026-03-09T02:30:00-04:00")),
            ("fall-back day: the second 01:30 is not due again", "30 1 * * *", "America/New_York", Some("2026-11-01T01:30:00-04:00"), "2026-01-01T00:00:00Z", "2026-11-01T01:45:00-05:00",
             None, 0, Some("2026-11-02T01:30:00-05:00")),
        ];
        for (name, expr, tz, last, created, now, run_now, skipped, next) in rows {
            let schedule = Schedule::parse(expr, tz).expect(name);
            let got = due_runs(&schedule, opt(*last), at(created), at(now));
            let want = DueRuns { run_now: opt(*run_now), skipped: *skipped, next: opt(*next) };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn skipped_count_is_capped() {
        let schedule = Schedule::parse("* * * * *", "UTC").expect("valid");
        let got = due_runs(&schedule, None, at("2026-01-01T00:00:00Z"), at("2026-11-22T12:00:00Z"));
        assert_eq!(got.run_now, Some(at("2026-11-22T12:00:00Z")));
        assert_eq!(got.skipped, SKIPPED_COUNT_LIMIT);
    }
}
