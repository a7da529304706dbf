//! proptest invariants of retention (issue 2) and of the cluster floors and ceilings.

use super::cluster::plan_with_cluster;
use super::*;
use crate::api::ClusterRetentionPolicySpec;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};

const ZONES: [Tz; 6] = [
    chrono_tz::UTC,
    chrono_tz::Europe::Istanbul,
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Australia::Lord_Howe,
];

fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).expect("2026-01-01")
}

/// Backups over about three years, some at the same minute (ties), unique names.
fn candidates() -> impl Strategy<Value = Vec<RetentionCandidate>> {
    let one = (
        0i64..1_600_000,
        0u8..10,
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.05),
    );
    prop::collection::vec(one, 0..60).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (minutes, state, verified, hold_roll, hold, pre_restore, restore_source))| RetentionCandidate {
                name: format!("b{i:03}"),
                // Coarse times for every third backup make ties likely.
                time: base_time() - chrono::TimeDelta::minutes(if i % 3 == 0 { minutes / 5000 * 5000 } else { minutes }),
                state: match state {
                    0 => RunState::InProgress,
                    1 | 2 => RunState::Failed,
                    _ => RunState::Completed,
                },
                hold: hold && hold_roll,
                verified,
                pre_restore,
                restore_source,
            })
            .collect()
    })
}

fn rule() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![Just(None), (0u32..6).prop_map(Some)]
}

fn rules() -> impl Strategy<Value = RetentionRules> {
    [rule(), rule(), rule(), rule(), rule(), rule(), rule(), rule()].prop_map(|r| RetentionRules {
        keep_last: r[0],
        keep_hourly: r[1],
        keep_daily: r[2],
        keep_weekly: r[3],
        keep_monthly: r[4],
        keep_yearly: r[5],
        keep_verified: r[6],
        keep_failed: r[7],
    })
}

fn zone() -> impl Strategy<Value = Tz> {
    (0..ZONES.len()).prop_map(|i| ZONES[i])
}

fn kept(decisions: &[Decision]) -> BTreeSet<String> {
    decisions.iter().filter(|d| d.action == Action::Keep).map(|d| d.name.clone()).collect()
}

fn by_name(candidates: &[RetentionCandidate]) -> HashMap<&str, &RetentionCandidate> {
    candidates.iter().map(|c| (c.name.as_str(), c)).collect()
}

/// Completed backups newest first, in the order retention walks them.
fn completed_newest_first(candidates: &[RetentionCandidate]) -> Vec<&RetentionCandidate> {
    newest_first(candidates)
        .into_iter()
        .map(|i| &candidates[i])
        .filter(|c| c.state == RunState::Completed)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_backup_gets_exactly_one_decision_newest_first(
        cs in candidates(), r in rules(), tz in zone()
    ) {
        let decisions = plan(&r, tz, &cs, base_time());
        prop_assert_eq!(decisions.len(), cs.len());
        let names: BTreeSet<&str> = decisions.iter().map(|d| d.name.as_str()).collect();
        prop_assert_eq!(names.len(), cs.len());
        let index = by_name(&cs);
        for pair in decisions.windows(2) {
            prop_assert!(index[pair[0].name.as_str()].time >= index[pair[1].name.as_str()].time);
        }
        for d in &decisions {
            match d.action {
                Action::Prune => prop_assert_eq!(&d.reasons, &vec![Reason::Expired]),
                Action::Keep => prop_assert!(!d.reasons.is_empty() || all_rules_zero(&r)),
            }
        }
    }

    #[test]
    fn in_progress_held_restore_source_and_pre_restore_backups_are_never_pruned(cs in candidates(), r in rules(), tz in zone()) {
        let index = by_name(&cs);
        for d in plan(&r, tz, &cs, base_time()) {
            let c = index[d.name.as_str()];
            if c.hold || c.state == RunState::InProgress || c.restore_source || c.pre_restore {
                prop_assert_eq!(d.action, Action::Keep, "{:?}", c);
            }
            // Each protection is named among the reasons.
            for (applies, reason) in [
                (c.hold, Reason::Hold),
                (c.state == RunState::InProgress, Reason::InProgress),
                (c.restore_source, Reason::RestoreSource),
                (c.pre_restore, Reason::PreRestore),
            ] {
                prop_assert_eq!(d.reasons.contains(&reason), applies, "{:?}: {:?}", c, d);
            }
        }
    }

    /// Whatever cluster policies say, protected backups stay (floors and ceilings alike).
    #[test]
    fn no_cluster_policy_prunes_a_protected_backup(
        cs in candidates(), r in rules(), tz in zone(),
        max_days in prop::option::of(0u32..400), max_points in prop::option::of(0u32..6),
        min_daily in prop::option::of(0u32..4), min_days in prop::option::of(0u32..400),
    ) {
        let spec = ClusterRetentionPolicySpec {
            max_retention_days: max_days,
            max_restore_points_per_policy: max_points,
            min_keep_daily: min_daily,
            min_retention_days: min_days,
            ..Default::default()
        };
        let index = by_name(&cs);
        for d in plan_with_cluster(&r, tz, &cs, base_time(), &[spec]) {
            let c = index[d.name.as_str()];
            if c.protected() {
                prop_assert_eq!(d.action, Action::Keep, "{:?}: {:?}", c, d);
            }
        }
    }

    #[test]
    fn keep_last_keeps_the_n_newest_completed(cs in candidates(), r in rules(), n in 1u32..8, tz in zone()) {
        let r = RetentionRules { keep_last: Some(n), ..r };
        let kept = kept(&plan(&r, tz, &cs, base_time()));
        for c in completed_newest_first(&cs).into_iter().take(n as usize) {
            prop_assert!(kept.contains(&c.name), "{} not kept", c.name);
        }
    }

    #[test]
    fn keep_verified_keeps_the_n_newest_verified(cs in candidates(), r in rules(), n in 1u32..5, tz in zone()) {
        let r = RetentionRules { keep_verified: Some(n), ..r };
        let kept = kept(&plan(&r, tz, &cs, base_time()));
        for c in completed_newest_first(&cs).into_iter().filter(|c| c.verified).take(n as usize) {
            prop_assert!(kept.contains(&c.name), "{} not kept", c.name);
        }
    }

    /// Adding a rule or raising one never prunes what was kept (starting from rules that are
    /// not all zero: "all zero" keeps everything, and any rule then prunes).
    #[test]
    fn adding_or_raising_a_rule_never_prunes_what_was_kept(
        cs in candidates(), r in rules(), extra in rules(), tz in zone()
    ) {
        prop_assume!(!all_rules_zero(&r));
        let add = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        let more = RetentionRules {
            keep_last: add(r.keep_last, extra.keep_last),
            keep_hourly: add(r.keep_hourly, extra.keep_hourly),
            keep_daily: add(r.keep_daily, extra.keep_daily),
            keep_weekly: add(r.keep_weekly, extra.keep_weekly),
            keep_monthly: add(r.keep_monthly, extra.keep_monthly),
            keep_yearly: add(r.keep_yearly, extra.keep_yearly),
            keep_verified: add(r.keep_verified, extra.keep_verified),
            keep_failed: add(r.keep_failed, extra.keep_failed),
        };
        let before = kept(&plan(&r, tz, &cs, base_time()));
        let after = kept(&plan(&more, tz, &cs, base_time()));
        prop_assert!(before.is_subset(&after), "lost: {:?}", before.difference(&after).collect::<Vec<_>>());
    }

    #[test]
    fn no_cluster_policy_changes_nothing(cs in candidates(), r in rules(), tz in zone()) {
        prop_assert_eq!(plan_with_cluster(&r, tz, &cs, base_time(), &[]), plan(&r, tz, &cs, base_time()));
    }

    #[test]
    fn ceilings_never_prune_held_in_progress_or_the_newest_verified(
        cs in candidates(), r in rules(), tz in zone(),
        max_days in prop::option::of(0u32..400), max_points in prop::option::of(0u32..6),
    ) {
        let spec = ClusterRetentionPolicySpec {
            max_retention_days: max_days,
            max_restore_points_per_policy: max_points,
            ..Default::default()
        };
        let without = kept(&plan(&r, tz, &cs, base_time()));
        let with = plan_with_cluster(&r, tz, &cs, base_time(), &[spec]);
        let newest_verified = completed_newest_first(&cs).into_iter().find(|c| c.verified).map(|c| c.name.clone());
        let index = by_name(&cs);
        let mut unprotected_points = 0;
        for d in &with {
            let c = index[d.name.as_str()];
            let protected = c.protected() || Some(&c.name) == newest_verified.as_ref();
            if protected && without.contains(&c.name) {
                prop_assert_eq!(d.action, Action::Keep, "{:?}", c);
            }
            if d.action == Action::Keep {
                prop_assert!(without.contains(&c.name), "ceilings kept {} that the policy prunes", c.name);
                if c.state == RunState::Completed && !protected {
                    unprotected_points += 1;
                }
            }
        }
        if let Some(max) = max_points.filter(|m| *m > 0) {
            prop_assert!(unprotected_points <= max);
        }
    }

    #[test]
    fn floors_never_prune_what_the_policy_keeps(
        cs in candidates(), r in rules(), tz in zone(),
        min_daily in 0u32..5, min_verified in 0u32..3, min_days in 0u32..400,
    ) {
        let spec = ClusterRetentionPolicySpec {
            min_keep_daily: Some(min_daily),
            min_keep_verified: Some(min_verified),
            min_retention_days: Some(min_days),
            ..Default::default()
        };
        let without = kept(&plan(&r, tz, &cs, base_time()));
        let with = kept(&plan_with_cluster(&r, tz, &cs, base_time(), &[spec]));
        prop_assert!(without.is_subset(&with));
    }
}
