//! Table-driven tests of the cluster floors and ceilings.

use super::cluster::{effective_rules, plan_with_cluster, ClusterLimits};
use super::tests::{done, now, render};
use super::*;
use crate::api::ClusterRetentionPolicySpec;

/// A Completed backup `days` days before [`now`].
fn ago(name: &str, days: i64) -> RetentionCandidate {
    RetentionCandidate { time: now() - chrono::TimeDelta::days(days), ..done(name, "2000-01-01T00:00:00Z") }
}

fn spec(f: impl FnOnce(&mut ClusterRetentionPolicySpec)) -> ClusterRetentionPolicySpec {
    let mut s = ClusterRetentionPolicySpec::default();
    f(&mut s);
    s
}

#[test]
fn limits_combine_highest_floor_and_lowest_ceiling() {
    let a = spec(|s| {
        s.min_keep_daily = Some(3);
        s.min_retention_days = Some(10);
        s.max_retention_days = Some(90);
        s.max_restore_points_per_policy = Some(0);
    });
    let b = spec(|s| {
        s.min_keep_daily = Some(7);
        s.min_keep_verified = Some(1);
        s.max_retention_days = Some(30);
        s.max_restore_points_per_policy = Some(20);
    });
    assert_eq!(
        ClusterLimits::combine([&a, &b]),
        ClusterLimits {
            min_keep_daily: 7,
            min_keep_verified: 1,
            min_retention_days: 10,
            max_retention_days: Some(30),
            max_restore_points: Some(20),
            legal_hold: false,
        }
    );
    let held = spec(|s| s.legal_hold = true);
    assert!(ClusterLimits::combine([&a, &held, &b]).legal_hold, "one legal hold is enough");
    assert_eq!(ClusterLimits::combine([]), ClusterLimits::default());
}

#[test]
fn floors_raise_rules_but_never_turn_keep_everything_into_pruning() {
    let limits = ClusterLimits { min_keep_daily: 7, min_keep_verified: 2, ..ClusterLimits::default() };
    let cases = [
        (RetentionRules { keep_daily: Some(3), ..Default::default() }, Some(7), Some(2)),
        (RetentionRules { keep_daily: Some(9), keep_verified: Some(0), ..Default::default() }, Some(9), Some(2)),
        (RetentionRules { keep_last: Some(1), ..Default::default() }, Some(7), Some(2)),
        (RetentionRules::default(), None, None),
        (RetentionRules { keep_daily: Some(0), ..Default::default() }, Some(0), None),
    ];
    for (rules, daily, verified) in cases {
        let got = effective_rules(&rules, &limits);
        assert_eq!((got.keep_daily, got.keep_verified), (daily, verified), "{rules:?}");
        assert_eq!(got.keep_last, rules.keep_last);
    }
}

struct Case {
    name: &'static str,
    rules: RetentionRules,
    cluster: Vec<ClusterRetentionPolicySpec>,
    backups: Vec<RetentionCandidate>,
    want: &'static [&'static str],
}

fn keep_last(n: u32) -> RetentionRules {
    RetentionRules { keep_last: Some(n), ..RetentionRules::default() }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "minKeepDaily raises keepDaily",
            rules: RetentionRules { keep_daily: Some(1), ..Default::default() },
            cluster: vec![spec(|s| s.min_keep_daily = Some(3))],
            backups: vec![ago("d1", 1), ago("d2", 2), ago("d3", 3), ago("d4", 4)],
            want: &["d1 keep daily", "d2 keep daily", "d3 keep daily", "d4 prune expired"],
        },
        Case {
            name: "minKeepVerified raises keepVerified",
            rules: keep_last(1),
            cluster: vec![spec(|s| s.min_keep_verified = Some(2))],
            backups: vec![
                ago("new", 1),
                RetentionCandidate { verified: true, ..ago("v1", 2) },
                RetentionCandidate { verified: true, ..ago("v2", 3) },
                RetentionCandidate { verified: true, ..ago("v3", 4) },
            ],
            want: &["new keep last", "v1 keep verified", "v2 keep verified", "v3 prune expired"],
        },
        Case {
            name: "minRetentionDays keeps young Completed backups, not Failed ones",
            rules: RetentionRules { keep_last: Some(1), keep_failed: Some(0), ..Default::default() },
            cluster: vec![spec(|s| s.min_retention_days = Some(7))],
            backups: vec![
                ago("d1", 1),
                ago("d2", 2),
                RetentionCandidate { state: RunState::Failed, ..ago("f3", 3) },
                ago("d7", 7),
                ago("d10", 10),
            ],
            want: &["d1 keep last,min-retention", "d2 keep min-retention", "f3 prune expired", "d7 prune expired", "d10 prune expired"],
        },
        Case {
            name: "maxRetentionDays prunes old finished backups, never held or in-progress ones",
            rules: RetentionRules::default(),
            cluster: vec![spec(|s| s.max_retention_days = Some(30))],
            backups: vec![
                ago("d1", 1),
                ago("d30", 30),
                ago("d40", 40),
                RetentionCandidate { hold: true, ..ago("held", 41) },
                RetentionCandidate { state: RunState::Failed, ..ago("failed", 50) },
                RetentionCandidate { state: RunState::InProgress, ..ago("stuck", 60) },
            ],
            want: &[
                "d1 keep ",
                "d30 keep ",
                "d40 prune max-retention",
                "held keep hold",
                "failed prune max-retention",
                "stuck keep in-progress",
            ],
        },
        Case {
            name: "maxRetentionDays never drops the newest verified restore point",
            rules: RetentionRules { keep_last: Some(1), keep_verified: Some(2), ..Default::default() },
            cluster: vec![spec(|s| s.max_retention_days = Some(30))],
            backups: vec![
                ago("d1", 1),
                RetentionCandidate { verified: true, ..ago("v100", 100) },
                RetentionCandidate { verified: true, ..ago("v200", 200) },
            ],
            want: &["d1 keep last", "v100 keep verified", "v200 prune max-retention"],
        },
        Case {
            name: "maxRestorePointsPerPolicy keeps the newest, protected ones count but stay",
            rules: RetentionRules::default(),
            cluster: vec![spec(|s| s.max_restore_points_per_policy = Some(2))],
            backups: vec![
                ago("d1", 1),
                RetentionCandidate { hold: true, ..ago("held", 2) },
                ago("d3", 3),
                RetentionCandidate { verified: true, ..ago("v4", 4) },
                ago("d5", 5),
                RetentionCandidate { state: RunState::Failed, ..ago("f6", 6) },
            ],
            want: &[
                "d1 keep ",
                "held keep hold",
                "d3 prune max-restore-points",
                "v4 keep ",
                "d5 prune max-restore-points",
                "f6 keep ",
            ],
        },
        Case {
            name: "conflict: minRetentionDays wins over maxRestorePointsPerPolicy",
            rules: keep_last(10),
            cluster: vec![
                spec(|s| s.min_retention_days = Some(3)),
                spec(|s| s.max_restore_points_per_policy = Some(1)),
            ],
            backups: vec![ago("d0", 0), ago("d1", 1), ago("d2", 2), ago("d3", 3), ago("d4", 4)],
            want: &[
                "d0 keep last,min-retention",
                "d1 keep last,min-retention",
                "d2 keep last,min-retention",
                "d3 prune max-restore-points",
                "d4 prune max-restore-points",
            ],
        },
        Case {
            name: "conflict: minRetentionDays wins over maxRetentionDays",
            rules: keep_last(10),
            cluster: vec![spec(|s| {
                s.min_retention_days = Some(20);
                s.max_retention_days = Some(10);
            })],
            backups: vec![ago("d5", 5), ago("d15", 15), ago("d25", 25)],
            want: &["d5 keep last,min-retention", "d15 keep last,min-retention", "d25 prune max-retention"],
        },
        Case {
            name: "conflict: minKeepDaily wins over maxRestorePointsPerPolicy, the policy's own keeps do not",
            rules: keep_last(5),
            cluster: vec![spec(|s| {
                s.min_keep_daily = Some(2);
                s.max_restore_points_per_policy = Some(1);
            })],
            backups: vec![ago("d1", 1), ago("d2", 2), ago("d3", 3), ago("d4", 4)],
            want: &["d1 keep last,daily", "d2 keep last,daily", "d3 prune max-restore-points", "d4 prune max-restore-points"],
        },
        Case {
            name: "ceilings never prune a restore's source or a PreRestore backup",
            rules: RetentionRules::default(),
            cluster: vec![spec(|s| {
                s.max_retention_days = Some(30);
                s.max_restore_points_per_policy = Some(1);
            })],
            backups: vec![
                ago("d1", 1),
                RetentionCandidate { restore_source: true, ..ago("read", 2) },
                RetentionCandidate { pre_restore: true, ..ago("pre", 3) },
                ago("d4", 4),
                RetentionCandidate { restore_source: true, ..ago("read-old", 100) },
                RetentionCandidate { pre_restore: true, state: RunState::Failed, ..ago("pre-failed-old", 200) },
                ago("d300", 300),
            ],
            want: &[
                "d1 keep ",
                "read keep restore-source",
                "pre keep pre-restore",
                "d4 prune max-restore-points",
                "read-old keep restore-source",
                "pre-failed-old keep pre-restore",
                "d300 prune max-retention",
            ],
        },
        Case {
            name: "a legal hold keeps every backup, whatever the rules and ceilings",
            rules: RetentionRules { keep_last: Some(1), keep_failed: Some(0), ..Default::default() },
            cluster: vec![
                spec(|s| {
                    s.max_retention_days = Some(3);
                    s.max_restore_points_per_policy = Some(1);
                }),
                spec(|s| s.legal_hold = true),
            ],
            backups: vec![
                ago("d1", 1),
                ago("d2", 2),
                RetentionCandidate { state: RunState::Failed, ..ago("f3", 3) },
                ago("d9", 9),
                RetentionCandidate { state: RunState::InProgress, ..ago("run", 10) },
            ],
            want: &["d1 keep cluster-hold,last", "d2 keep cluster-hold", "f3 keep cluster-hold", "d9 keep cluster-hold", "run keep in-progress,cluster-hold"],
        },
        Case {
            name: "what the policy prunes stays pruned, reason expired",
            rules: keep_last(1),
            cluster: vec![spec(|s| s.max_retention_days = Some(3))],
            backups: vec![ago("d1", 1), ago("d2", 2), ago("d9", 9)],
            want: &["d1 keep last", "d2 prune expired", "d9 prune expired"],
        },
    ]
}

#[test]
fn cluster_table() {
    for case in cases() {
        let got = render(&plan_with_cluster(&case.rules, chrono_tz::UTC, &case.backups, now(), &case.cluster));
        assert_eq!(got, case.want, "case: {}", case.name);
    }
}
