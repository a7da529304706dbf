//! Cluster-wide floors and ceilings (ClusterRetentionPolicy) on top of a policy's own retention.
//!
//! Which ClusterRetentionPolicies match a BackupPolicy (by its namespace's labels) is the
//! controller's business; this module takes the matching specs and decides.
//!
//! How several cluster policies combine: the highest floor and the lowest ceiling win. A
//! ceiling of 0 (like an absent one) sets no limit, as a retention rule of 0 keeps nothing
//! rather than everything.
//!
//! The steps, on top of [`plan`](super::plan):
//! 1. **Effective rules**: `keepDaily` and `keepVerified` are raised to `minKeepDaily` and
//!    `minKeepVerified`. Exception: when every rule of the policy is 0 or absent the policy keeps
//!    everything, and a floor does not turn that into pruning; the rules stay as they are.
//! 2. **`minRetentionDays`**: a Completed backup younger than that many days at `now`
//!    (`now - time < days * 24h`; a time in the future counts as young) is kept, reason
//!    `min-retention` (added to its other reasons).
//! 3. **Ceilings**, over the backups still kept: a finished backup (Completed or Failed: a failed
//!    run's snapshots hold mail data too) older than `maxRetentionDays` (`now - time >
//!    days * 24h`) is pruned (`max-retention`); then, of the kept Completed backups newest first,
//!    those after the first `maxRestorePointsPerPolicy` are pruned (`max-restore-points`; they
//!    count every kept Completed backup, protected ones included). A pruned decision lists only
//!    the ceilings that prune it.
//!
//! **Protected from ceilings**: in-progress and held backups, backups an unfinished
//! RestoreRequest reads from (`restore-source`), `PreRestore` backups, the newest Completed backup whose
//! verification passed (never drop the last verified restore point), and everything a floor
//! keeps: the backups the `minKeepDaily` daily buckets and the `minKeepVerified` verified rule
//! would keep on their own, and the `minRetentionDays` backups. So when a floor and a ceiling
//! conflict (say `minRetentionDays: 30` and `maxRestorePointsPerPolicy: 10` with daily backups)
//! **the floor wins** and the ceiling is exceeded: deleting is the one step that cannot be
//! undone, so conflicting configuration errs on keeping. Ceilings still prune what only the
//! policy's own rules keep.
//!
//! **Legal hold**: when any matching cluster policy has `legalHold: true`, every backup, of any
//! phase, is kept with reason `cluster-hold` (added to its other reasons): neither the policy's
//! rules nor a ceiling prunes anything.
//!
//! With no cluster policy, [`plan_with_cluster`] decides exactly like [`plan`](super::plan).

use super::{
    all_rules_zero, evaluate, newest_first, Action, Decision, Reason, ReasonSet, RetentionCandidate,
    RunState,
};
use crate::api::{ClusterRetentionPolicySpec, RetentionRules};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

/// The floors and ceilings of every matching cluster policy, combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterLimits {
    /// Floor on `keepDaily` (0: none).
    pub min_keep_daily: u32,
    /// Floor on `keepVerified` (0: none).
    pub min_keep_verified: u32,
    /// Completed backups younger than this many days are kept (0: none).
    pub min_retention_days: u32,
    /// Finished backups older than this many days are pruned (`None`: no limit).
    pub max_retention_days: Option<u32>,
    /// At most this many kept Completed backups (`None`: no limit).
    pub max_restore_points: Option<u32>,
    /// Some matching policy has `legalHold: true`: every backup is kept.
    pub legal_hold: bool,
}

impl ClusterLimits {
    /// Combines cluster policies: the highest floor and the lowest ceiling win; 0 or absent
    /// sets nothing.
    pub fn combine<'a>(specs: impl IntoIterator<Item = &'a ClusterRetentionPolicySpec>) -> Self {
        let floor = |a: u32, b: Option<u32>| a.max(b.unwrap_or(0));
        let ceiling = |a: Option<u32>, b: Option<u32>| match (a, b.filter(|n| *n > 0)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        specs.into_iter().fold(ClusterLimits::default(), |acc, s| ClusterLimits {
            min_keep_daily: floor(acc.min_keep_daily, s.min_keep_daily),
            min_keep_verified: floor(acc.min_keep_verified, s.min_keep_verified),
            min_retention_days: floor(acc.min_retention_days, s.min_retention_days),
            max_retention_days: ceiling(acc.max_retention_days, s.max_retention_days),
            max_restore_points: ceiling(acc.max_restore_points, s.max_restore_points_per_policy),
            legal_hold: acc.legal_hold || s.legal_hold,
        })
    }
}

/// The policy's rules with the floors applied (step 1 of the module documentation).
pub fn effective_rules(rules: &RetentionRules, limits: &ClusterLimits) -> RetentionRules {
    if all_rules_zero(rules) {
        return rules.clone();
    }
    let raise = |rule: Option<u32>, floor: u32| match rule {
        Some(n) if n >= floor => Some(n),
        _ if floor > 0 => Some(floor),
        other => other,
    };
    RetentionRules {
        keep_daily: raise(rules.keep_daily, limits.min_keep_daily),
        keep_verified: raise(rules.keep_verified, limits.min_keep_verified),
        ..rules.clone()
    }
}

/// Decides, for every backup of one policy, whether to keep or prune it under the policy's
/// rules and the matching cluster policies (see the module documentation). One decision per
/// candidate, newest first (ties by name).
pub fn plan_with_cluster(
    rules: &RetentionRules,
    tz: Tz,
    candidates: &[RetentionCandidate],
    now: DateTime<Utc>,
    cluster: &[ClusterRetentionPolicySpec],
) -> Vec<Decision> {
    let limits = ClusterLimits::combine(cluster);
    let order = newest_first(candidates);
    let effective = effective_rules(rules, &limits);
    let keep_all = all_rules_zero(&effective);
    let mut reasons = evaluate(&effective, tz, candidates, &order);
    let floor_rules = RetentionRules {
        keep_daily: Some(limits.min_keep_daily),
        keep_verified: Some(limits.min_keep_verified),
        ..RetentionRules::default()
    };
    let floors = if all_rules_zero(&floor_rules) {
        vec![ReasonSet::default(); order.len()]
    } else {
        evaluate(&floor_rules, tz, candidates, &order)
    };
    let days = |n: u32| TimeDelta::days(i64::from(n));
    let newest_verified = order
        .iter()
        .position(|&i| candidates[i].state == RunState::Completed && candidates[i].verified);

    let mut pruned = vec![ReasonSet::default(); order.len()];
    let mut restore_points = 0u32;
    for (pos, &i) in order.iter().enumerate() {
        let c = &candidates[i];
        let age = now.signed_duration_since(c.time);
        if limits.legal_hold {
            reasons[pos].insert(Reason::ClusterHold);
        }
        if c.state == RunState::Completed
            && limits.min_retention_days > 0
            && age < days(limits.min_retention_days)
        {
            reasons[pos].insert(Reason::MinRetention);
        }
        if reasons[pos].is_empty() && !keep_all {
            continue; // already pruned by the policy's own rules
        }
        let protected = c.protected()
            || limits.legal_hold
            || Some(pos) == newest_verified
            || !floors[pos].is_empty()
            || reasons[pos].contains(Reason::MinRetention);
        if let Some(max) = limits.max_retention_days {
            if c.state != RunState::InProgress && age > days(max) && !protected {
                pruned[pos].insert(Reason::MaxRetention);
            }
        }
        if c.state == RunState::Completed && pruned[pos].is_empty() {
            restore_points += 1;
            if limits.max_restore_points.is_some_and(|max| restore_points > max) && !protected {
                pruned[pos].insert(Reason::MaxRestorePoints);
                restore_points -= 1;
            }
        }
    }

    order
        .iter()
        .enumerate()
        .map(|(pos, &i)| {
            let name = candidates[i].name.clone();
            if !pruned[pos].is_empty() {
                Decision { name, action: Action::Prune, reasons: pruned[pos].to_vec() }
            } else if reasons[pos].is_empty() && !keep_all {
                Decision { name, action: Action::Prune, reasons: vec![Reason::Expired] }
            } else {
                Decision { name, action: Action::Keep, reasons: reasons[pos].to_vec() }
            }
        })
        .collect()
}
