//! Wake-ups on a target's changes: a run or an in-place restore that waits on its target
//! workload (a claim another run holds, pods still to stop after scaling to zero) is woken by
//! the events of the workloads and pods of its namespace, not by a timer.
//!
//! The mapping is by namespace: the workload and pod watches carry no link to the runs, and a
//! pod carries only its workload's labels. Every waiting run of the namespace is woken and
//! looks at its own target again (a GET and its pods); a run that is not waiting is not woken.

use crate::api::{ArchiveBackup, BackupPhase, RestoreMode, RestorePhase, RestoreRequest};
use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

/// Whether a run waits on its target: pending (for a claim another run holds, or to begin)
/// or quiescing (a stopped workload's pods to go).
pub fn backup_waits_on_target(backup: &ArchiveBackup) -> bool {
    let phase = backup.status.as_ref().and_then(|s| s.phase).unwrap_or(BackupPhase::Pending);
    matches!(phase, BackupPhase::Pending | BackupPhase::Quiescing)
}

/// Whether a restore may wait on its target: an unfinished in-place one (it claims, stops and
/// starts its target). Other restores never wait on a workload, and are not woken by every pod
/// of their namespace (their own hook Jobs' pods among them).
pub fn restore_waits_on_target(request: &RestoreRequest) -> bool {
    let phase = request.status.as_ref().and_then(|s| s.phase).unwrap_or(RestorePhase::Pending);
    request.spec.target.mode == RestoreMode::InPlace && !matches!(phase, RestorePhase::Completed | RestorePhase::Failed)
}

/// Wakes the runs and restores waiting on a target.
pub struct TargetWaiters {
    /// The ArchiveBackup cache.
    pub backups: Store<ArchiveBackup>,
    /// The RestoreRequest cache.
    pub restores: Store<RestoreRequest>,
    /// The ArchiveBackup controller's trigger.
    pub backup_tx: UnboundedSender<ObjectRef<ArchiveBackup>>,
    /// The RestoreRequest controller's trigger.
    pub restore_tx: UnboundedSender<ObjectRef<RestoreRequest>>,
}

impl TargetWaiters {
    /// Wakes the waiting runs and restores of `namespace` (`None`: of every namespace, after
    /// a watch listed everything again and may have missed an event).
    pub fn wake(&self, namespace: Option<&str>) {
        let here = |ns: Option<String>| namespace.is_none() || ns.as_deref() == namespace;
        for b in self.backups.state_filter(|b| here(b.namespace()) && backup_waits_on_target(b)) {
            if let Some(ns) = b.namespace() {
                let _ = self.backup_tx.unbounded_send(ObjectRef::new(&b.name_any()).within(&ns));
            }
        }
        for r in self.restores.state_filter(|r| here(r.namespace()) && restore_waits_on_target(r)) {
            if let Some(ns) = r.namespace() {
                let _ = self.restore_tx.unbounded_send(ObjectRef::new(&r.name_any()).within(&ns));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ArchiveBackupSpec, ArchiveBackupStatus, BackupReason, RestoreRequestStatus};

    #[test]
    fn only_runs_that_may_wait_on_their_target_are_woken() {
        let cases = [
            (None, true),
            (Some(BackupPhase::Pending), true),
            (Some(BackupPhase::Quiescing), true),
            (Some(BackupPhase::CapturingMetadata), false),
            (Some(BackupPhase::CapturingContent), false),
            (Some(BackupPhase::Releasing), false),
            (Some(BackupPhase::Finalizing), false),
            (Some(BackupPhase::Verifying), false),
            (Some(BackupPhase::Completed), false),
            (Some(BackupPhase::Failed), false),
        ];
        for (phase, waits) in cases {
            assert_eq!(backup_waits_on_target(&backup("mail", "b1", phase)), waits, "{phase:?}");
        }
    }

    fn backup(namespace: &str, name: &str, phase: Option<BackupPhase>) -> ArchiveBackup {
        let mut b = ArchiveBackup::new(name, ArchiveBackupSpec { policy_name: "p".into(), reason: BackupReason::Manual, hold: false });
        b.metadata.namespace = Some(namespace.into());
        b.status = phase.map(|p| ArchiveBackupStatus { phase: Some(p), ..Default::default() });
        b
    }

    fn restore(namespace: &str, name: &str, phase: Option<RestorePhase>) -> RestoreRequest {
        restore_in_mode(namespace, name, phase, "InPlace")
    }

    fn restore_in_mode(namespace: &str, name: &str, phase: Option<RestorePhase>, mode: &str) -> RestoreRequest {
        let mut r: RestoreRequest = serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "RestoreRequest",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": {"backupName": "b1"}, "target": {"mode": mode}}
        }))
        .expect("a RestoreRequest");
        r.status = phase.map(|p| RestoreRequestStatus { phase: Some(p), ..Default::default() });
        r
    }

    /// What was sent on `rx` so far, as sorted `namespace/name`s.
    fn drain<K: kube::Resource<DynamicType = ()>>(rx: &mut futures::channel::mpsc::UnboundedReceiver<ObjectRef<K>>) -> Vec<String> {
        use futures::StreamExt;
        let mut woken: Vec<String> = Vec::new();
        while let Some(Some(r)) = futures::executor::block_on(futures::future::poll_immediate(rx.next())) {
            woken.push(format!("{}/{}", r.namespace.unwrap_or_default(), r.name));
        }
        woken.sort();
        woken
    }

    /// A workload or pod event of a namespace wakes that namespace's waiting runs and restores,
    /// and only them; a relist (no namespace) wakes every waiting one.
    #[test]
    fn a_namespace_event_wakes_its_waiting_runs_and_restores() {
        let (backups, mut backups_writer) = kube::runtime::reflector::store::<ArchiveBackup>();
        let (restores, mut restores_writer) = kube::runtime::reflector::store::<RestoreRequest>();
        for b in [
            backup("mail", "pending", Some(BackupPhase::Pending)),
            backup("mail", "new", None),
            backup("mail", "stopping", Some(BackupPhase::Quiescing)),
            backup("mail", "capturing", Some(BackupPhase::CapturingContent)),
            backup("mail", "done", Some(BackupPhase::Completed)),
            backup("other", "pending", Some(BackupPhase::Pending)),
        ] {
            backups_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(b));
        }
        for r in [
            restore("mail", "in-place", Some(RestorePhase::Restoring)),
            restore("mail", "done", Some(RestorePhase::Completed)),
            restore_in_mode("mail", "side-by-side", Some(RestorePhase::Restoring), "SideBySide"),
            restore("other", "r", None),
        ] {
            restores_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(r));
        }
        let (backup_tx, mut backup_rx) = futures::channel::mpsc::unbounded();
        let (restore_tx, mut restore_rx) = futures::channel::mpsc::unbounded();
        let waiters = TargetWaiters { backups, restores, backup_tx, restore_tx };
        waiters.wake(Some("mail"));
        assert_eq!(drain(&mut backup_rx), ["mail/new", "mail/pending", "mail/stopping"]);
        assert_eq!(drain(&mut restore_rx), ["mail/in-place"]);
        waiters.wake(Some("empty"));
        assert!(drain(&mut backup_rx).is_empty() && drain(&mut restore_rx).is_empty());
        waiters.wake(None);
        assert_eq!(drain(&mut backup_rx), ["mail/new", "mail/pending", "mail/stopping", "other/pending"]);
        assert_eq!(drain(&mut restore_rx), ["mail/in-place", "other/r"]);
    }

    #[test]
    fn only_unfinished_in_place_restores_are_woken() {
        let cases = [
            (None, true),
            (Some(RestorePhase::Pending), true),
            (Some(RestorePhase::Restoring), true),
            (Some(RestorePhase::RunningHooks), true),
            (Some(RestorePhase::Completed), false),
            (Some(RestorePhase::Failed), false),
        ];
        for (phase, waits) in cases {
            assert_eq!(restore_waits_on_target(&restore("mail", "r1", phase)), waits, "{phase:?}");
            for mode in ["Volumes", "SideBySide"] {
                assert!(!restore_waits_on_target(&restore_in_mode("mail", "r1", phase, mode)), "{mode} {phase:?}");
            }
        }
    }
}
