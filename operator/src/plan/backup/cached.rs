//! What the shared ArchiveBackup cache (`controllers::caches`) keeps of a settled run.
//!
//! A cluster holds thousands of finished restore points, and the operator caches every one.
//! Of a settled run ([`super::settled`]) its readers need little:
//! - the ArchiveBackup controller only sees that it is settled (phase, the quiesce times of
//!   `holds_archive`, the finalizers) and returns;
//! - the BackupPolicy controller (`plan::policy`, retention) reads its name, spec (policy,
//!   reason, hold), creation time, phase, `startTime` and verification state;
//! - the gauges (`crate::gauges`) read the verification's and the export's state and end;
//! - a pending run of the same policy reads its phase and creation time;
//! - the ClusterRetentionPolicy evaluator (`plan::retention::governance`) reads each item's
//!   `restoreSize` (kept with the item's component, nothing else of it);
//! - the cache's own feed reads the label `archivist.dev/restore` (a pre-restore backup wakes
//!   its RestoreRequest).
//!
//! Everything else (the rest of the items, conditions, the copy of the policy spec, messages, the other
//! labels, the `last-applied-configuration` annotation) is dropped: about 3 KB of a typical
//! run's 4 KB in memory. Whoever needs a settled run's whole
//! status reads it from the API server: the RestoreRequest controller lists its namespace's
//! ArchiveBackups, and the sweeper GETs a claim's holder.
//!
//! A run that is not settled is cached whole, and a settled run never becomes unsettled (a
//! finished phase is final, and the finalizer is never added back), so a reconcile that acts
//! never reads a slimmed object.

use super::is_settled;
use crate::api::{ArchiveBackup, ArchiveBackupStatus, CapturedItem, ExportStatus, QuiesceStatus, VerificationStatus};
use crate::plan::restore::RESTORE_LABEL;
use std::collections::BTreeMap;

/// The annotation `kubectl apply` leaves: a whole copy of the object as last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Slims `backup` to what its cache readers need when it is settled; leaves any other run as
/// it is. `managedFields` are dropped from every run (no reader uses them).
pub fn cached_form(backup: &mut ArchiveBackup) {
    backup.metadata.managed_fields = None;
    if !is_settled(backup) {
        return;
    }
    let Some(status) = backup.status.as_ref() else { return };
    let restore = backup.metadata.labels.as_ref().and_then(|l| l.get(RESTORE_LABEL)).cloned();
    backup.metadata.labels = restore.map(|r| BTreeMap::from([(RESTORE_LABEL.to_string(), r)]));
    if let Some(annotations) = backup.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            backup.metadata.annotations = None;
        }
    }
    backup.status = Some(ArchiveBackupStatus {
        phase: status.phase,
        start_time: status.start_time,
        completion_time: status.completion_time,
        quiesce: status.quiesce.as_ref().map(|q| QuiesceStatus {
            mode: q.mode,
            quiesced_at: q.quiesced_at,
            released_at: q.released_at,
            ..Default::default()
        }),
        verification: status.verification.as_ref().map(|v| VerificationStatus { state: v.state, finished_at: v.finished_at, message: None, reason: v.reason }),
        items: status
            .items
            .iter()
            .map(|i| CapturedItem {
                component: i.component,
                store: String::new(),
                source_claim: None,
                source_sql: None,
                volume_snapshot: None,
                captured_at: None,
                ready_to_use: false,
                restore_size: i.restore_size.clone(),
            })
            .collect(),
        export: status.export.as_ref().map(|e| ExportStatus {
            state: e.state,
            repository: None,
            started_at: None,
            finished_at: e.finished_at,
            bytes_added: None,
            message: None,
            snapshots: Vec::new(),
            manifest: None,
                forget_failed_at: None,
        }),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::backup::settled;
    use crate::api::{ArchiveBackupSpec, BackupPhase, BackupReason, Component, QuiesceMode, VerificationState};
    use chrono::{TimeZone, Utc};

    /// A run as the operator writes it, with everything a finished run carries.
    fn run(phase: BackupPhase, released: bool, finalizer: bool) -> ArchiveBackup {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).single().expect("time");
        let mut b = ArchiveBackup::new("p-1", ArchiveBackupSpec { policy_name: "p".into(), reason: BackupReason::Scheduled, hold: true });
        b.metadata.annotations = Some([(LAST_APPLIED.to_string(), "{\"big\": true}".to_string())].into());
        b.metadata.labels = Some([("archivist.dev/policy".to_string(), "p".to_string()), (RESTORE_LABEL.to_string(), "r1".to_string())].into());
        if finalizer {
            b.metadata.finalizers = Some(vec![super::super::RELEASE_FINALIZER.to_string()]);
        }
        b.status = Some(ArchiveBackupStatus {
            phase: Some(phase),
            start_time: Some(at),
            completion_time: Some(at),
            phase_start_time: Some(at),
            quiesce: Some(QuiesceStatus {
                mode: Some(QuiesceMode::Freeze),
                quiesced_at: Some(at),
                released_at: released.then_some(at),
                pods: vec!["archive-0".into()],
                ..Default::default()
            }),
            items: vec![CapturedItem {
                component: Component::Metadata,
                store: "s1".into(),
                source_claim: Some("meta".into()),
                source_sql: None,
                volume_snapshot: Some("p-1-meta".into()),
                captured_at: Some(at),
                ready_to_use: true,
                restore_size: Some("1Gi".into()),
            }],
            verification: Some(VerificationStatus { state: VerificationState::Passed, finished_at: Some(at), message: Some("ok".into()), reason: None }),
            message: Some("restore point ready".into()),
            policy_spec: Some(serde_json::from_value(serde_json::json!({"target": {"kind": "StatefulSet", "name": "archive"}})).expect("spec")),
            ..Default::default()
        });
        b
    }

    #[test]
    fn only_settled_runs_are_slimmed_and_they_stay_settled() {
        // (phase, released, release finalizer, slimmed)
        let cases = [
            (BackupPhase::Completed, true, false, true),
            (BackupPhase::Failed, true, false, true),
            (BackupPhase::Completed, true, true, false),
            (BackupPhase::Failed, false, false, false),
            (BackupPhase::CapturingContent, false, true, false),
            (BackupPhase::Verifying, true, false, false),
        ];
        for (phase, released, finalizer, want_slim) in cases {
            let full = run(phase, released, finalizer);
            let mut cached = full.clone();
            cached_form(&mut cached);
            assert!(cached.metadata.managed_fields.is_none());
            let slimmed = cached.status.as_ref().is_some_and(|s| s.items.iter().all(|i| i.volume_snapshot.is_none()) && s.policy_spec.is_none());
            assert_eq!(slimmed, want_slim, "{phase:?} released={released} finalizer={finalizer}");
            let status = |b: &ArchiveBackup| b.status.clone().unwrap_or_default();
            let fin = |b: &ArchiveBackup| b.metadata.finalizers.iter().flatten().any(|f| f == super::super::RELEASE_FINALIZER);
            assert_eq!(settled(&status(&cached), fin(&cached)), settled(&status(&full), fin(&full)));
            if want_slim {
                let s = status(&cached);
                assert_eq!((s.phase, s.start_time, s.verification.map(|v| v.state)), (Some(phase), status(&full).start_time, Some(VerificationState::Passed)));
                assert_eq!(cached.spec, full.spec);
                assert_eq!(cached.metadata.labels, Some([(RESTORE_LABEL.to_string(), "r1".to_string())].into()), "only the restore label is kept");
                assert!(cached.metadata.annotations.is_none());
                let sizes: Vec<Option<String>> = s.items.iter().map(|i| i.restore_size.clone()).collect();
                assert_eq!(sizes, [Some("1Gi".to_string())], "the items' sizes stay (storageBytes)");
            } else {
                assert_eq!(cached.status, full.status);
            }
        }
    }
}
