//! When a BackupPolicy runs: a cron expression evaluated in an IANA time zone.
//!
//! The expression is parsed and matched against wall-clock times by the `croner` crate
//! (5 fields `minute hour day-of-month month day-of-week`, or `@hourly`, `@daily`, `@weekly`,
//! `@monthly`, `@yearly`/`@annually`); this module only decides which real instants those
//! wall-clock times are, and that is where daylight saving time comes in.
//!
//! # Daylight saving time
//!
//! Following classic cron (Vixie/ISC cron, see Debian's `cron(8)`), a schedule is either a
//! **fixed-time** schedule (neither the minute nor the hour field contains `*`, and it is not
//! `@hourly`: `30 2 * * *`, `0 1,13 * * *`, `@daily`) or a **wildcard** schedule (`0 * * * *`,
//! `*/15 * * * *`, `0 */6 * * *`, `@hourly`):
//!
//! - **Clock jumps forward** (a wall-clock time that does not exist that day):
//!   a fixed-time schedule runs once at the first instant after the gap (a daily `30 2 * * *`
//!   in America/New_York runs at 03:00 EDT on the spring-forward day, once; several skipped
//!   times collapse into that one run). A wildcard schedule skips the missing times and keeps
//!   its rhythm in real time (`0 * * * *` runs at 01:00 EST and then 03:00 EDT, one hour apart).
//! - **Clock goes back** (a wall-clock time that happens twice): a fixed-time schedule runs
//!   once, at the first occurrence (01:30 EDT, not again at 01:30 EST). A wildcard schedule
//!   runs at both occurrences, so `0 * * * *` still runs every real hour.
//!
//! So a daily job runs exactly once on both transition days, and an hourly job runs once per
//! real hour. (`croner` on its own treats only single-valued minute and hour fields as fixed:
//! `30 1,13 * * *` would run twice on a fall-back day and `0,30 2 * * *` not at all on a
//! spring-forward day. So this module takes `croner`'s wall-clock matches and maps them to
//! instants itself, with the cron rule above.)
//!
//! # Days
//!
//! Sunday is both `0` and `7`; names `SUN`-`SAT` and `JAN`-`DEC` work in any case. When both
//! day-of-month and day-of-week are restricted, a day matching *either* runs (classic cron and
//! Kubernetes CronJob): `0 0 1 * 1` runs on the 1st and on every Monday. A field that is
//! exactly `*` (or `?`) is unrestricted; `*/2` counts as restricted, as in Kubernetes CronJob.
//! `croner`'s extensions also work: `L` (last day of month), `15W` (nearest weekday),
//! `5#2` (second Friday), and a `+` before day-of-week to require both day fields
//! (`0 0 13 * +5`: Friday the 13th). An expression that never matches a date
//! (`0 0 30 2 *`) is rejected.

mod due;
mod error;

#[cfg(test)]
mod tests;

pub use due::{due_runs, DueRuns, SKIPPED_COUNT_LIMIT};
pub use error::ScheduleError;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// How many wall-clock matches [`Schedule::next_after`] looks at before it gives up (only a
/// schedule whose every match falls into clock gaps gets there).
const SEARCH_LIMIT: usize = 10_000;

/// The longest clock gap this module steps over (real gaps are at most a day: Samoa 2011).
const LONGEST_GAP_MINUTES: i64 = 2 * 24 * 60;

/// A parsed `spec.schedule` in its `spec.timeZone`: produces the run times of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    expression: String,
    time_zone: Tz,
    cron: Cron,
    fixed_time: bool,
}

/// Parses an IANA time zone name (case-sensitive, as in the tz database: `Europe/Istanbul`,
/// `UTC`). The error suggests the right spelling when only the case is wrong.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>().map_err(|_| ScheduleError::UnknownTimeZone {
        name: name.to_string(),
        suggestion: chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(name.trim()))
            .map(|tz| tz.name().to_string()),
    })
}

/// 5 fields only (no seconds, no year). `0/15` is accepted as `0-59/15`, as Kubernetes
/// CronJob does.
fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).sloppy_ranges(true).build()
}

impl Schedule {
    /// Parses a cron expression (5 fields or a macro such as `@daily`) to be evaluated in the
    /// IANA time zone `time_zone`. Errors say which of the two is wrong and why, for example
    /// `bad cron expression "61 * * * *": minute 61 is out of range 0-59`.
    pub fn parse(expr: &str, time_zone: &str) -> Result<Schedule, ScheduleError> {
        let cron = parser()
            .parse(expr)
            .map_err(|err| ScheduleError::bad_cron(expr, error::explain(expr, &err, &parser())))?;
        // A pattern that can never match (30 February) makes croner search up to year 5000 and
        // fail; any real pattern matches within 8 years (29 February).
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        if epoch.is_none_or(|epoch| cron.find_next_occurrence(&epoch, true).is_err()) {
            return Err(ScheduleError::bad_cron(expr, "it never matches any date".to_string()));
        }
        let time_zone = parse_time_zone(time_zone)?;
        Ok(Schedule { expression: expr.trim().to_string(), time_zone, cron, fixed_time: is_fixed_time(expr) })
    }

    /// The expression as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone the expression is evaluated in.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// True for a fixed-time schedule (no `*` in the minute or hour field, not `@hourly`),
    /// false for a wildcard schedule; see the module documentation for what that changes.
    pub fn is_fixed_time(&self) -> bool {
        self.fixed_time
    }

    /// The first run time strictly after `after`, or `None` when there is none (only possible
    /// for schedules whose every match falls into clock gaps, or past the year 5000).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let offset = self.time_zone.offset_from_utc_datetime(&after.naive_utc()).fix();
        let local_after = after
            .naive_utc()
            .checked_add_signed(TimeDelta::seconds(offset.local_minus_utc().into()))?
            .with_nanosecond(0)?;
        // When `after` lies in a repeated hour, wall-clock times a little before its own still
        // have a second occurrence after it: start the walk at the beginning of the repeat.
        let repeat = match self.time_zone.from_local_datetime(&local_after) {
            LocalResult::Ambiguous(first, second) => offset_seconds(&first) - offset_seconds(&second),
            _ => 0,
        };
        let mut cursor = local_after.checked_sub_signed(TimeDelta::seconds(repeat.max(0)))?;
        let mut inclusive = true;
        let mut best: Option<DateTime<Utc>> = None;
        for _ in 0..SEARCH_LIMIT {
            let Ok(wall) = self.cron.find_next_occurrence(&cursor, inclusive) else {
                return best;
            };
            let (first, second) = self.instants(wall);
            for candidate in [first, second].into_iter().flatten().filter(|t| *t > after) {
                best = Some(best.map_or(candidate, |b| b.min(candidate)));
            }
            // First occurrences grow with the wall clock, and a second occurrence is always
            // later than the first occurrence of any later wall-clock time: once a first
            // occurrence is past `after`, nothing later can beat `best`.
            if first.is_some_and(|t| t > after) {
                return best;
            }
            cursor = wall;
            inclusive = false;
        }
        best
    }

    /// The next `count` run times strictly after `after`, in order (fewer only when
    /// [`Schedule::next_after`] runs out).
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut runs = Vec::with_capacity(count.min(1024));
        let mut last = after;
        while runs.len() < count {
            match self.next_after(last) {
                Some(next) => {
                    runs.push(next);
                    last = next;
                }
                None => break,
            }
        }
        runs
    }

    /// The real instants of one matching wall-clock time: its first run and, for wildcard
    /// schedules in a repeated hour, its second run.
    fn instants(&self, wall: NaiveDateTime) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        match self.time_zone.from_local_datetime(&wall) {
            LocalResult::Single(t) => (Some(t.to_utc()), None),
            LocalResult::Ambiguous(first, _) if self.fixed_time => (Some(first.to_utc()), None),
            LocalResult::Ambiguous(first, second) => (Some(first.to_utc()), Some(second.to_utc())),
            LocalResult::None if self.fixed_time => (self.end_of_gap(wall), None),
            LocalResult::None => (None, None),
        }
    }

    /// The first instant after the clock gap that swallowed the wall-clock time `wall`.
    fn end_of_gap(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let exists = |t: NaiveDateTime| self.time_zone.from_local_datetime(&t).earliest();
        let minute = wall.with_second(0)?;
        let mut valid = None;
        for step in 1..=LONGEST_GAP_MINUTES {
            let t = minute.checked_add_signed(TimeDelta::minutes(step))?;
            if exists(t).is_some() {
                valid = Some(t);
                break;
            }
        }
        // Gaps start and end on whole minutes nowadays; old local mean times did not, so
        // narrow down to the second between the last missing minute and the first valid one.
        let mut hi = valid?;
        let mut lo = wall.max(hi.checked_sub_signed(TimeDelta::minutes(1))?);
        while hi - lo > TimeDelta::seconds(1) {
            let mid = lo + (hi - lo) / 2;
            let mid = mid.with_nanosecond(0)?;
            if exists(mid).is_some() {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        exists(hi).map(|t| t.to_utc())
    }
}

fn offset_seconds(t: &DateTime<Tz>) -> i64 {
    i64::from(t.offset().fix().local_minus_utc())
}

/// Classic cron's rule: a schedule whose minute or hour field contains `*`, or `@hourly`, is
/// a wildcard schedule; any other is a fixed-time schedule.
fn is_fixed_time(expr: &str) -> bool {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return !expr.eq_ignore_ascii_case("@hourly");
    }
    !expr.split_whitespace().take(2).any(|field| field.contains('*'))
}
