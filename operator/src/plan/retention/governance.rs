//! What a ClusterRetentionPolicy reports and collects (pure): the policies and restore points
//! it governs, the storage they hold, and the orphaned VolumeSnapshots of its namespaces.
//!
//! **Orphans.** A VolumeSnapshot labelled `archivist.dev/backup: B` whose ArchiveBackup `B` (in
//! its namespace) is gone is an orphan. The first evaluation that sees it marks it with the time
//! (annotation `archivist.dev/orphaned-since`); once it has been an orphan for the grace period
//! it is deleted. A marked snapshot whose ArchiveBackup exists again is unmarked. A snapshot
//! without the label is never looked at; a mark that does not parse counts as made now (it is
//! written again), so a typed value never deletes anything early.

//!
//! **An invalid cluster policy only protects.** Its floors and its legal hold still apply (a
//! typo must never lift a hold), but its ceilings prune nothing and it collects no orphans
//! ([`acting_spec`]); its `Ready` condition names the fields ([`ready`]).

use crate::api::{ArchiveBackup, BackupPhase, ClusterRetentionPolicy, ClusterRetentionPolicySpec, ConditionStatus};
use crate::plan::validate::{validate_cluster_retention_policy_object, FieldError};
use crate::plan::restore::shape;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// The spec retention acts on: as it is when the policy is valid; without its ceilings
/// (`maxRetentionDays`, `maxRestorePointsPerPolicy`) when it is not, so that an invalid
/// policy only keeps restore points.
pub fn acting_spec(policy: &ClusterRetentionPolicy) -> ClusterRetentionPolicySpec {
    let mut spec = policy.spec.clone();
    if !validate_cluster_retention_policy_object(policy).is_empty() {
        spec.max_retention_days = None;
        spec.max_restore_points_per_policy = None;
    }
    spec
}

/// The `Ready` condition of a cluster policy with these validation `problems` and this
/// `summary`: (status, reason, message).
pub fn ready(problems: &[FieldError], summary: &Governed, namespaces: usize) -> (ConditionStatus, &'static str, String) {
    if problems.is_empty() {
        let message = format!("governs {} BackupPolicies with {} restore points in {namespaces} namespace(s)", summary.policies, summary.restore_points);
        return (ConditionStatus::True, "Evaluated", message);
    }
    let fields: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let message = format!("{}; until it is fixed its floors and legal hold apply, its ceilings and orphan collection do not", fields.join("; "));
    (ConditionStatus::False, "InvalidSpec", message)
}

/// The default `orphanGracePeriodSeconds`: a day.
pub const DEFAULT_ORPHAN_GRACE_SECONDS: u32 = 86_400;

/// What a cluster policy governs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Governed {
    /// BackupPolicies in the matching namespaces.
    pub policies: u32,
    /// Their Completed ArchiveBackups.
    pub restore_points: u32,
    /// The sum of those restore points' items' `restoreSize`, in bytes.
    pub storage_bytes: u64,
}

/// Sums up what the `policies` (namespace, name) of the matching namespaces govern among
/// `backups` (any namespace; those of other policies are not counted).
pub fn governed<'a>(policies: &BTreeSet<(String, String)>, backups: impl IntoIterator<Item = &'a ArchiveBackup>) -> Governed {
    let mut out = Governed { policies: u32::try_from(policies.len()).unwrap_or(u32::MAX), ..Governed::default() };
    for backup in backups {
        let key = (backup.metadata.namespace.clone().unwrap_or_default(), backup.spec.policy_name.clone());
        let status = backup.status.as_ref();
        if !policies.contains(&key) || status.and_then(|s| s.phase) != Some(BackupPhase::Completed) {
            continue;
        }
        out.restore_points = out.restore_points.saturating_add(1);
        let bytes: f64 = status.iter().flat_map(|s| &s.items).filter_map(|i| i.restore_size.as_deref()).filter_map(shape::bytes).sum();
        // Sizes are whole bytes; the float only carries the unit arithmetic.
        out.storage_bytes = out.storage_bytes.saturating_add(bytes.max(0.0).round() as u64);
    }
    out
}

/// A labelled VolumeSnapshot as the orphan collection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledSnapshot {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its `archivist.dev/backup` label.
    pub backup: String,
    /// Its `archivist.dev/orphaned-since` annotation, as written.
    pub orphaned_since: Option<String>,
    /// It is being deleted already.
    pub deleting: bool,
}

/// What to do with one labelled snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrphanAction {
    /// Mark it an orphan since this time.
    Mark(DateTime<Utc>),
    /// Its ArchiveBackup is back: remove the mark.
    Unmark,
    /// An orphan for the whole grace period: delete it.
    Delete,
}

/// The actions on `snapshots` (of the matching namespaces), given the ArchiveBackups that exist
/// as (namespace, name), at `now`, with `grace_seconds`; snapshots that need nothing are left
/// out. Also returns when the next orphan's grace period ends, to look again then.
pub fn orphan_actions<'a>(
    snapshots: &'a [LabelledSnapshot],
    backups: &BTreeSet<(String, String)>,
    now: DateTime<Utc>,
    grace_seconds: u32,
) -> (Vec<(&'a LabelledSnapshot, OrphanAction)>, Option<DateTime<Utc>>) {
    let grace = chrono::Duration::seconds(i64::from(grace_seconds));
    let mut actions = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    for snapshot in snapshots.iter().filter(|s| !s.deleting) {
        let exists = backups.contains(&(snapshot.namespace.clone(), snapshot.backup.clone()));
        let since = snapshot.orphaned_since.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
        match (exists, snapshot.orphaned_since.is_some(), since) {
            (true, true, _) => actions.push((snapshot, OrphanAction::Unmark)),
            (true, false, _) => {}
            (false, _, Some(since)) if since <= now && now - since >= grace => actions.push((snapshot, OrphanAction::Delete)),
            (false, _, Some(since)) if since <= now => next = Some(earliest(next, since + grace)),
            // Unmarked, unparsable, or in the future: the grace period starts now.
            (false, _, _) => {
                actions.push((snapshot, OrphanAction::Mark(now)));
                next = Some(earliest(next, now + grace));
            }
        }
    }
    (actions, next)
}

fn earliest(current: Option<DateTime<Utc>>, candidate: DateTime<Utc>) -> DateTime<Utc> {
    current.map_or(candidate, |c| c.min(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ArchiveBackupSpec, ArchiveBackupStatus, CapturedItem};

    fn backup(ns: &str, name: &str, policy: &str, phase: BackupPhase, sizes: &[&str]) -> ArchiveBackup {
        let mut b = ArchiveBackup::new(name, ArchiveBackupSpec { policy_name: policy.into(), reason: Default::default(), hold: false });
        b.metadata.namespace = Some(ns.into());
        let item = |size: &str| CapturedItem {
            component: crate::api::Component::Content,
            store: "s1".into(),
            source_claim: None,
            source_sql: None,
            volume_snapshot: None,
            captured_at: None,
            ready_to_use: true,
            restore_size: Some(size.into()),
        };
        let items = sizes.iter().map(|s| item(s)).collect();
        b.status = Some(ArchiveBackupStatus { phase: Some(phase), items, ..Default::default() });
        b
    }

    #[test]
    fn counts_the_completed_restore_points_of_governed_policies_and_their_sizes() {
        let policies: BTreeSet<(String, String)> = [("a", "mail"), ("b", "mail")].iter().map(|(n, p)| (n.to_string(), p.to_string())).collect();
        let backups = [
            backup("a", "b1", "mail", BackupPhase::Completed, &["1Gi", "512Mi"]),
            backup("b", "b1", "mail", BackupPhase::Completed, &["1000"]),
            backup("a", "b2", "mail", BackupPhase::Failed, &["1Gi"]),
            backup("a", "b3", "mail", BackupPhase::CapturingContent, &["1Gi"]),
            backup("a", "x1", "other", BackupPhase::Completed, &["1Gi"]),
            backup("c", "b1", "mail", BackupPhase::Completed, &["1Gi"]),
        ];
        let want = Governed { policies: 2, restore_points: 2, storage_bytes: (1 << 30) + (512 << 20) + 1000 };
        assert_eq!(governed(&policies, &backups), want);
        assert_eq!(governed(&BTreeSet::new(), &backups), Governed::default());
    }

    #[test]
    fn orphans_are_marked_then_deleted_after_the_grace_period_and_unmarked_when_their_backup_returns() {
        let now: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().expect("time");
        let snapshot = |name: &str, backup: &str, since: Option<&str>, deleting: bool| LabelledSnapshot {
            namespace: "a".into(),
            name: name.into(),
            backup: backup.into(),
            orphaned_since: since.map(Into::into),
            deleting,
        };
        let backups: BTreeSet<(String, String)> = [("a".to_string(), "live".to_string())].into();
        // (case, snapshot, the action wanted)
        let cases = [
            ("backup exists", snapshot("s1", "live", None, false), None),
            ("backup exists, marked", snapshot("s2", "live", Some("2026-12-01T00:00:00Z"), false), Some(OrphanAction::Unmark)),
            ("gone, unmarked", snapshot("s3", "gone", None, false), Some(OrphanAction::Mark(now))),
            ("gone, marked an hour ago", snapshot("s4", "gone", Some("2026-12-04T11:00:00Z"), false), None),
            ("gone, marked a day ago", snapshot("s5", "gone", Some("2026-12-03T12:00:00Z"), false), Some(OrphanAction::Delete)),
            ("gone, mark unparsable", snapshot("s6", "gone", Some("yesterday"), false), Some(OrphanAction::Mark(now))),
            ("gone, mark in the future", snapshot("s7", "gone", Some("2027-01-01T00:00:00Z"), false), Some(OrphanAction::Mark(now))),
            ("gone, being deleted", snapshot("s8", "gone", Some("2026-12-01T00:00:00Z"), true), None),
            ("same backup name, other namespace", LabelledSnapshot { namespace: "b".into(), ..snapshot("s9", "live", None, false) }, Some(OrphanAction::Mark(now))),
        ];
        for (case, snapshot, want) in cases {
            let snapshots = [snapshot];
            let (actions, _) = orphan_actions(&snapshots, &backups, now, DEFAULT_ORPHAN_GRACE_SECONDS);
            assert_eq!(actions.first().map(|(_, a)| a.clone()), want, "{case}");
        }
        let snapshots = [snapshot("s4", "gone", Some("2026-12-04T11:00:00Z"), false), snapshot("s3", "gone", None, false)];
        let (_, next) = orphan_actions(&snapshots, &backups, now, DEFAULT_ORPHAN_GRACE_SECONDS);
        assert_eq!(next, Some("2026-12-05T11:00:00Z".parse().expect("time")), "looks again when the first grace period ends");
    }

    #[test]
    fn an_invalid_cluster_policy_keeps_its_floors_and_hold_and_loses_its_ceilings() {
        let policy = |spec: serde_json::Value| -> ClusterRetentionPolicy {
            serde_json::from_value(serde_json::json!({"apiVersion": "archivist.dev/v1alpha1", "kind": "ClusterRetentionPolicy", "metadata": {"name": "crp"}, "spec": spec})).expect("crp")
        };
        type Case = (&'static str, serde_json::Value, Option<u32>, Option<u32>, bool, ConditionStatus);
        let cases: Vec<Case> = vec![
            ("valid: as written", serde_json::json!({"maxRetentionDays": 30, "maxRestorePointsPerPolicy": 10, "minKeepDaily": 7}), Some(30), Some(10), false, ConditionStatus::True),
            (
                "a floor above a ceiling: the ceilings go, the floor and the hold stay",
                serde_json::json!({"maxRetentionDays": 30, "maxRestorePointsPerPolicy": 5, "minKeepDaily": 7, "legalHold": true}),
                None,
                None,
                true,
                ConditionStatus::False,
            ),
            (
                "a bad selector operator",
                serde_json::json!({"maxRetentionDays": 30, "namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "in", "values": ["gold"]}]}}),
                None,
                None,
                false,
                ConditionStatus::False,
            ),
        ];
        for (name, spec, max_days, max_points, hold, status) in cases {
            let crp = policy(spec);
            let acting = acting_spec(&crp);
            assert_eq!((acting.max_retention_days, acting.max_restore_points_per_policy, acting.legal_hold), (max_days, max_points, hold), "{name}");
            assert_eq!(acting.min_keep_daily, crp.spec.min_keep_daily, "{name}: floors stay");
            let problems = validate_cluster_retention_policy_object(&crp);
            let (got, reason, message) = ready(&problems, &Governed { policies: 2, restore_points: 9, storage_bytes: 0 }, 1);
            assert_eq!(got, status, "{name}: {reason} {message}");
            if status == ConditionStatus::False {
                assert!(message.starts_with("spec.") && message.contains("ceilings and orphan collection do not"), "{name}: {message}");
            } else {
                assert_eq!(message, "governs 2 BackupPolicies with 9 restore points in 1 namespace(s)");
            }
        }
    }
}
