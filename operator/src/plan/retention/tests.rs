//! Table-driven tests of api.md's retention semantics.

use super::*;
use crate::api::{ArchiveBackupSpec, ArchiveBackupStatus, VerificationStatus};
use chrono_tz::Tz;

pub(super) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("rfc3339").with_timezone(&Utc)
}

/// A Completed, unheld, unverified backup named after its time.
pub(super) fn done(name: &str, time: &str) -> RetentionCandidate {
    RetentionCandidate {
        name: name.to_string(),
        time: utc(time),
        state: RunState::Completed,
        hold: false,
        verified: false,
        pre_restore: false,
        restore_source: false,
    }
}

fn failed(name: &str, time: &str) -> RetentionCandidate {
    RetentionCandidate { state: RunState::Failed, ..done(name, time) }
}

fn running(name: &str, time: &str) -> RetentionCandidate {
    RetentionCandidate { state: RunState::InProgress, ..done(name, time) }
}

fn held(c: RetentionCandidate) -> RetentionCandidate {
    RetentionCandidate { hold: true, ..c }
}

fn verified(c: RetentionCandidate) -> RetentionCandidate {
    RetentionCandidate { verified: true, ..c }
}

fn pre_restore(c: RetentionCandidate) -> RetentionCandidate {
    RetentionCandidate { pre_restore: true, ..c }
}

fn read_by_restore(c: RetentionCandidate) -> RetentionCandidate {
    RetentionCandidate { restore_source: true, ..c }
}

/// Renders decisions as `name action reason,reason` lines.
pub(super) fn render(decisions: &[Decision]) -> Vec<String> {
    decisions
        .iter()
        .map(|d| {
            let reasons: Vec<&str> = d.reasons.iter().map(|r| r.as_str()).collect();
            format!("{} {} {}", d.name, d.action, reasons.join(","))
        })
        .collect()
}

pub(super) fn now() -> DateTime<Utc> {
    utc("2030-01-01T00:00:00Z")
}

struct Case {
    name: &'static str,
    rules: RetentionRules,
    tz: Tz,
    backups: Vec<RetentionCandidate>,
    want: &'static [&'static str],
}

fn rules(f: impl FnOnce(&mut RetentionRules)) -> RetentionRules {
    let mut r = RetentionRules::default();
    f(&mut r);
    r
}

fn cases() -> Vec<Case> {
    let utc_tz = chrono_tz::UTC;
    let ist = chrono_tz::Europe::Istanbul;
    vec![
        Case {
            name: "keepLast alone",
            rules: rules(|r| r.keep_last = Some(2)),
            tz: utc_tz,
            backups: vec![
                done("a", "2026-03-01T02:00:00Z"),
                done("c", "2026-03-03T02:00:00Z"),
                done("b", "2026-03-02T02:00:00Z"),
                done("d", "2026-03-03T01:00:00Z"),
            ],
            want: &["c keep last", "d keep last", "b prune expired", "a prune expired"],
        },
        Case {
            name: "keepHourly alone: newest of each hour that has a backup",
            rules: rules(|r| r.keep_hourly = Some(2)),
            tz: utc_tz,
            backups: vec![
                done("h10a", "2026-03-01T10:05:00Z"),
                done("h10b", "2026-03-01T10:40:00Z"),
                done("h09", "2026-03-01T09:50:00Z"),
                done("h07", "2026-03-01T07:10:00Z"),
            ],
            want: &["h10b keep hourly", "h10a prune expired", "h09 keep hourly", "h07 prune expired"],
        },
        Case {
            name: "keepDaily alone: days without backups are not counted",
            rules: rules(|r| r.keep_daily = Some(3)),
            tz: utc_tz,
            backups: vec![
                done("d10b", "2026-03-10T22:00:00Z"),
                done("d10a", "2026-03-10T02:00:00Z"),
                done("d08", "2026-03-08T02:00:00Z"),
                done("d01", "2026-03-01T02:00:00Z"),
                done("f28", "2026-02-28T02:00:00Z"),
            ],
            want: &["d10b keep daily", "d10a prune expired", "d08 keep daily", "d01 keep daily", "f28 prune expired"],
        },
        Case {
            name: "keepWeekly alone: ISO weeks start on Monday",
            rules: rules(|r| r.keep_weekly = Some(2)),
            tz: utc_tz,
            backups: vec![
                done("mon", "2026-03-09T02:00:00Z"),
                done("sun", "2026-03-08T23:00:00Z"),
                done("sat", "2026-03-07T02:00:00Z"),
                done("prev", "2026-03-01T02:00:00Z"),
            ],
            want: &["mon keep weekly", "sun keep weekly", "sat prune expired", "prev prune expired"],
        },
        Case {
            name: "keepMonthly alone",
            rules: rules(|r| r.keep_monthly = Some(2)),
            tz: utc_tz,
            backups: vec![
                done("apr", "2026-04-01T00:00:00Z"),
                done("mar31", "2026-03-31T23:59:59Z"),
                done("mar01", "2026-03-01T00:00:00Z"),
                done("jan", "2026-01-15T00:00:00Z"),
            ],
            want: &["apr keep monthly", "mar31 keep monthly", "mar01 prune expired", "jan prune expired"],
        },
        Case {
            name: "keepYearly alone",
            rules: rules(|r| r.keep_yearly = Some(2)),
            tz: utc_tz,
            backups: vec![
                done("y27", "2027-01-01T00:00:00Z"),
                done("y26b", "2026-12-31T23:00:00Z"),
                done("y26a", "2026-01-01T00:00:00Z"),
                done("y25", "2025-06-01T00:00:00Z"),
            ],
            want: &["y27 keep yearly", "y26b keep yearly", "y26a prune expired", "y25 prune expired"],
        },
        Case {
            name: "keepVerified alone: the newest verified, not the newest",
            rules: rules(|r| r.keep_verified = Some(2)),
            tz: utc_tz,
            backups: vec![
                done("new", "2026-03-04T00:00:00Z"),
                verified(done("v3", "2026-03-03T00:00:00Z")),
                verified(done("v2", "2026-03-02T00:00:00Z")),
                verified(done("v1", "2026-03-01T00:00:00Z")),
                verified(failed("vf", "2026-03-05T00:00:00Z")),
            ],
            want: &["vf prune expired", "new prune expired", "v3 keep verified", "v2 keep verified", "v1 prune expired"],
        },
        Case {
            name: "keepFailed alone: Completed backups are pruned, as the rules say",
            rules: rules(|r| r.keep_failed = Some(1)),
            tz: utc_tz,
            backups: vec![
                failed("f2", "2026-03-02T00:00:00Z"),
                failed("f1", "2026-03-01T00:00:00Z"),
                done("c", "2026-03-03T00:00:00Z"),
            ],
            want: &["c prune expired", "f2 keep failed", "f1 prune expired"],
        },
        Case {
            name: "failed backups never count for the Completed rules",
            rules: rules(|r| {
                r.keep_last = Some(1);
                r.keep_daily = Some(1);
            }),
            tz: utc_tz,
            backups: vec![failed("f", "2026-03-02T10:00:00Z"), done("c", "2026-03-02T09:00:00Z")],
            want: &["f prune expired", "c keep last,daily"],
        },
        Case {
            name: "in-progress backups are kept and never counted",
            rules: rules(|r| r.keep_last = Some(1)),
            tz: utc_tz,
            backups: vec![
                running("run", "2026-03-03T00:00:00Z"),
                done("c2", "2026-03-02T00:00:00Z"),
                done("c1", "2026-03-01T00:00:00Z"),
                running("old-run", "2020-03-01T00:00:00Z"),
            ],
            want: &["run keep in-progress", "c2 keep last", "c1 prune expired", "old-run keep in-progress"],
        },
        Case {
            name: "held backups are kept and still take part in the rules",
            rules: rules(|r| {
                r.keep_last = Some(1);
                r.keep_failed = Some(1);
            }),
            tz: utc_tz,
            backups: vec![
                held(done("h-new", "2026-03-05T00:00:00Z")),
                done("c", "2026-03-04T00:00:00Z"),
                held(done("h-old", "2026-03-01T00:00:00Z")),
                held(failed("hf", "2026-03-03T00:00:00Z")),
                failed("f", "2026-03-02T00:00:00Z"),
                held(running("hr", "2026-03-06T00:00:00Z")),
            ],
            want: &[
                "hr keep in-progress,hold",
                "h-new keep hold,last",
                "c prune expired",
                "hf keep hold,failed",
                "f prune expired",
                "h-old keep hold",
            ],
        },
        Case {
            name: "a backup an unfinished restore reads is kept and still takes part in the rules",
            rules: rules(|r| r.keep_last = Some(1)),
            tz: utc_tz,
            backups: vec![
                done("new", "2026-03-05T00:00:00Z"),
                read_by_restore(done("read-old", "2026-03-01T00:00:00Z")),
                done("mid", "2026-03-03T00:00:00Z"),
                read_by_restore(done("read-new", "2026-03-06T00:00:00Z")),
                read_by_restore(failed("read-failed", "2026-03-04T00:00:00Z")),
            ],
            want: &[
                "read-new keep restore-source,last",
                "new prune expired",
                "read-failed keep restore-source",
                "mid prune expired",
                "read-old keep restore-source",
            ],
        },
        Case {
            name: "PreRestore backups are never pruned, whatever their phase",
            rules: rules(|r| {
                r.keep_last = Some(1);
                r.keep_failed = Some(0);
            }),
            tz: utc_tz,
            backups: vec![
                done("new", "2026-03-05T00:00:00Z"),
                pre_restore(done("pre-old", "2026-03-01T00:00:00Z")),
                pre_restore(failed("pre-failed", "2026-03-02T00:00:00Z")),
                pre_restore(running("pre-running", "2026-03-06T00:00:00Z")),
                done("old", "2026-03-03T00:00:00Z"),
                pre_restore(read_by_restore(held(done("all", "2026-02-01T00:00:00Z")))),
            ],
            want: &[
                "pre-running keep in-progress,pre-restore",
                "new keep last",
                "old prune expired",
                "pre-failed keep pre-restore",
                "pre-old keep pre-restore",
                "all keep hold,restore-source,pre-restore",
            ],
        },
        Case {
            name: "rules combined: several reasons on one backup",
            rules: RetentionRules {
                keep_last: Some(1),
                keep_hourly: Some(1),
                keep_daily: Some(2),
                keep_weekly: Some(2),
                keep_monthly: Some(2),
                keep_yearly: Some(2),
                keep_verified: Some(1),
                keep_failed: Some(1),
            },
            tz: utc_tz,
            backups: vec![
                done("t0", "2026-03-10T02:00:00Z"),
                verified(done("t1", "2026-03-10T01:00:00Z")),
                done("t2", "2026-03-09T02:00:00Z"),
                done("t3", "2026-03-01T02:00:00Z"),
                done("t4", "2026-02-20T02:00:00Z"),
                done("t5", "2025-12-20T02:00:00Z"),
                done("t6", "2024-12-20T02:00:00Z"),
                failed("f", "2026-03-10T03:00:00Z"),
            ],
            want: &[
                "f keep failed",
                "t0 keep last,hourly,daily,weekly,monthly,yearly",
                "t1 keep verified",
                "t2 keep daily",
                "t3 keep weekly",
                "t4 keep monthly",
                "t5 keep yearly",
                "t6 prune expired",
            ],
        },
        Case {
            name: "every rule zero or absent: nothing is pruned, no rule reason",
            rules: RetentionRules { keep_last: Some(0), keep_daily: Some(0), ..RetentionRules::default() },
            tz: utc_tz,
            backups: vec![
                done("c", "2026-03-03T00:00:00Z"),
                failed("f", "2026-03-02T00:00:00Z"),
                held(done("h", "2026-03-01T00:00:00Z")),
                running("r", "2026-03-04T00:00:00Z"),
                pre_restore(done("p", "2026-02-28T00:00:00Z")),
                read_by_restore(done("s", "2026-02-27T00:00:00Z")),
            ],
            want: &["r keep in-progress", "c keep ", "f keep ", "h keep hold", "p keep pre-restore", "s keep restore-source"],
        },
        Case {
            name: "UTC days: 20:30Z and 23:30Z are the same day",
            rules: rules(|r| r.keep_daily = Some(2)),
            tz: utc_tz,
            backups: vec![
                done("late", "2026-03-10T23:30:00Z"),
                done("evening", "2026-03-10T20:30:00Z"),
                done("before", "2026-03-09T22:00:00Z"),
            ],
            want: &["late keep daily", "evening prune expired", "before keep daily"],
        },
        Case {
            name: "Istanbul days: 23:30Z is the next day there (UTC+3)",
            rules: rules(|r| r.keep_daily = Some(2)),
            tz: ist,
            backups: vec![
                done("late", "2026-03-10T23:30:00Z"),
                done("evening", "2026-03-10T20:30:00Z"),
                done("before", "2026-03-09T22:00:00Z"),
            ],
            want: &["late keep daily", "evening keep daily", "before prune expired"],
        },
        Case {
            name: "ISO week 53 of 2026 spans the new year",
            rules: rules(|r| r.keep_weekly = Some(2)),
            tz: utc_tz,
            backups: vec![
                done("w1-2027", "2027-01-04T12:00:00Z"),
                done("jan1", "2027-01-01T12:00:00Z"),
                done("dec31", "2026-12-31T12:00:00Z"),
                done("w52", "2026-12-27T12:00:00Z"),
            ],
            want: &["w1-2027 keep weekly", "jan1 keep weekly", "dec31 prune expired", "w52 prune expired"],
        },
        Case {
            name: "ISO week 53 of 2020 holds 2020-12-31 and 2021-01-03",
            rules: rules(|r| {
                r.keep_weekly = Some(2);
                r.keep_yearly = Some(2);
            }),
            tz: utc_tz,
            backups: vec![
                done("w1-2021", "2021-01-04T12:00:00Z"),
                done("sun", "2021-01-03T12:00:00Z"),
                done("thu", "2020-12-31T12:00:00Z"),
                done("w52", "2020-12-25T12:00:00Z"),
            ],
            want: &["w1-2021 keep weekly,yearly", "sun keep weekly", "thu keep yearly", "w52 prune expired"],
        },
        Case {
            name: "Istanbul ISO week: Sunday 22:30Z is already Monday there",
            rules: rules(|r| r.keep_weekly = Some(1)),
            tz: ist,
            backups: vec![done("sun-late", "2026-03-08T22:30:00Z"), done("sun", "2026-03-08T12:00:00Z")],
            want: &["sun-late keep weekly", "sun prune expired"],
        },
        Case {
            name: "ties in time are ordered by name",
            rules: rules(|r| r.keep_last = Some(1)),
            tz: utc_tz,
            backups: vec![done("b", "2026-03-01T00:00:00Z"), done("a", "2026-03-01T00:00:00Z")],
            want: &["a keep last", "b prune expired"],
        },
        Case {
            name: "no backups",
            rules: rules(|r| r.keep_last = Some(1)),
            tz: utc_tz,
            backups: vec![],
            want: &[],
        },
    ]
}

#[test]
fn retention_table() {
    for case in cases() {
        let got = render(&plan(&case.rules, case.tz, &case.backups, now()));
        assert_eq!(got, case.want, "case: {}", case.name);
    }
}

#[test]
fn now_does_not_change_api_md_rules() {
    let r = rules(|r| r.keep_daily = Some(1));
    let backups = vec![done("a", "2026-03-01T00:00:00Z"), done("b", "2026-02-01T00:00:00Z")];
    let early = plan(&r, chrono_tz::UTC, &backups, utc("2000-01-01T00:00:00Z"));
    assert_eq!(early, plan(&r, chrono_tz::UTC, &backups, now()));
}

#[test]
fn candidates_from_archive_backups() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let backup = |start: Option<&str>, created: Option<&str>, phase, verification: Option<VerificationState>| {
        let mut b = ArchiveBackup::new(
            "b",
            ArchiveBackupSpec { policy_name: "p".into(), reason: Default::default(), hold: true },
        );
        b.metadata.creation_timestamp =
            created.map(|c| Time(c.parse::<k8s_openapi::jiff::Timestamp>().expect("jiff")));
        b.status = Some(ArchiveBackupStatus {
            phase,
            start_time: start.map(utc),
            verification: verification
                .map(|state| VerificationStatus { state, finished_at: None, message: None, reason: None }),
            ..Default::default()
        });
        b
    };
    let c = RetentionCandidate::try_from(&backup(
        Some("2026-03-01T02:00:00Z"),
        Some("2026-03-01T01:59:58.5Z"),
        Some(BackupPhase::Completed),
        Some(VerificationState::Passed),
    ))
    .expect("candidate");
    assert_eq!(c.time, utc("2026-03-01T02:00:00Z"));
    assert_eq!((c.state, c.hold, c.verified), (RunState::Completed, true, true));
    assert_eq!((c.pre_restore, c.restore_source), (false, false), "a Manual backup read by no restore");
    let mut pre = backup(Some("2026-03-01T02:00:00Z"), None, Some(BackupPhase::Completed), None);
    pre.spec.reason = crate::api::BackupReason::PreRestore;
    let c = RetentionCandidate::try_from(&pre).expect("candidate");
    assert!(c.pre_restore, "spec.reason PreRestore");
    let sources = std::collections::BTreeSet::from(["b".to_string()]);
    assert!(c.clone().reading(&sources).restore_source);
    assert!(!c.reading(&std::collections::BTreeSet::new()).restore_source);

    let c = RetentionCandidate::try_from(&backup(
        None,
        Some("2026-03-01T01:59:58.5Z"),
        Some(BackupPhase::Verifying),
        Some(VerificationState::Failed),
    ))
    .expect("candidate");
    assert_eq!(c.time, utc("2026-03-01T01:59:58.5Z"));
    assert_eq!((c.state, c.verified), (RunState::InProgress, false));

    let mut no_status = backup(None, Some("2026-03-01T00:00:00Z"), None, None);
    no_status.status = None;
    let c = RetentionCandidate::try_from(&no_status).expect("candidate");
    assert_eq!(c.state, RunState::InProgress);

    let err = RetentionCandidate::try_from(&backup(None, None, Some(BackupPhase::Failed), None));
    assert_eq!(err, Err(CandidateError::MissingTime));
    let mut nameless = backup(None, Some("2026-03-01T00:00:00Z"), None, None);
    nameless.metadata.name = None;
    assert_eq!(RetentionCandidate::try_from(&nameless), Err(CandidateError::MissingName));
}

#[test]
fn jiff_conversion_keeps_subseconds_before_the_epoch() {
    let ts: k8s_openapi::jiff::Timestamp = "1969-12-31T23:59:59.25Z".parse().expect("jiff");
    assert_eq!(from_jiff(ts), Some(utc("1969-12-31T23:59:59.25Z")));
}

#[test]
fn bucket_walk_handles_keys_out_of_order() {
    // Days as wall-clock times, in the order a walk might meet them around an unaligned fold.
    let day = |d: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 3, d).expect("date").and_hms_opt(12, 0, 0).expect("time")
    };
    let mut walk = BucketWalk::new(Period::Day, Reason::Daily, 5);
    let got: Vec<bool> = [20, 20, 18, 19, 18, 19, 20, 17, 25, 25, 16]
        .into_iter()
        .map(|d| walk.takes(day(d)))
        .collect();
    assert_eq!(got, [true, false, true, true, false, false, false, true, true, false, false]);
    assert_eq!(walk.left, 0);
}
