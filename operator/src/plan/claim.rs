//! The workload claim: who may quiesce a workload, and when an orphaned claim is released.
//!
//! A run (or an InPlace restore) claims its target by writing the annotation
//! `archivist.dev/quiesced-by` with a resourceVersion precondition before it quiesces
//! anything, so two claimants can never both win. The value names the holder:
//! - `<namespace>/<name>` for an ArchiveBackup run;
//! - `RestoreRequest/<namespace>/<name>` for an InPlace restore.
//!
//! Every path that ends a run removes the claim (see `plan::backup`); the sweeper
//! ([`sweep`]) removes what a crashed or deleted run left behind. A claimant waiting for
//! another holder is woken when the workload changes (`controllers::caches`, the workload
//! watches), not by a timer.

use crate::api::{ArchiveBackupStatus, BackupPhase};
use std::fmt;

/// The condition type that says whether a run or an in-place restore holds its workload's
/// claim (`False` while it waits for another holder to release the workload).
pub const WORKLOAD_CLAIMED: &str = "WorkloadClaimed";

/// The kind of object that holds a workload claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderKind {
    /// A backup run.
    ArchiveBackup,
    /// An InPlace restore.
    RestoreRequest,
}

/// Who holds a workload claim, as written in `archivist.dev/quiesced-by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's kind.
    pub kind: HolderKind,
    /// The holder's namespace.
    pub namespace: String,
    /// The holder's name.
    pub name: String,
}

impl Holder {
    /// The ArchiveBackup `namespace/name`.
    pub fn backup(namespace: &str, name: &str) -> Self {
        Self { kind: HolderKind::ArchiveBackup, namespace: namespace.into(), name: name.into() }
    }

    /// The RestoreRequest `namespace/name`.
    pub fn restore(namespace: &str, name: &str) -> Self {
        Self { kind: HolderKind::RestoreRequest, namespace: namespace.into(), name: name.into() }
    }

    /// Parses an annotation value; `None` when it is not one Archivist writes (for example
    /// the bare `<backup>` of earlier versions, which names no namespace).
    pub fn parse(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.split('/').collect();
        match parts.as_slice() {
            [ns, name] if !ns.is_empty() && !name.is_empty() => Some(Self::backup(ns, name)),
            ["RestoreRequest", ns, name] if !ns.is_empty() && !name.is_empty() => Some(Self::restore(ns, name)),
            _ => None,
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            HolderKind::ArchiveBackup => write!(f, "{}/{}", self.namespace, self.name),
            HolderKind::RestoreRequest => write!(f, "RestoreRequest/{}/{}", self.namespace, self.name),
        }
    }
}

/// The claim on a workload as one claimant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClaimObs {
    /// Nobody holds the workload.
    #[default]
    Free,
    /// The claimant itself holds it.
    Mine,
    /// Somebody else holds it: the annotation's value.
    HeldBy(String),
}

impl ClaimObs {
    /// The claim as `me` sees the annotation `value` (absent: `None`).
    pub fn of(value: Option<&str>, me: &Holder) -> Self {
        match value {
            None | Some("") => ClaimObs::Free,
            Some(v) if v == me.to_string() => ClaimObs::Mine,
            Some(v) => ClaimObs::HeldBy(v.to_string()),
        }
    }
}

/// Whether a run's status says it may have the archive quiesced: quiescing was recorded and
/// releasing was not finished.
pub fn holds_archive(status: &ArchiveBackupStatus) -> bool {
    status.quiesce.as_ref().is_some_and(|q| q.quiesced_at.is_some() && q.released_at.is_none())
}

/// Whether a run's release finalizer may be removed with no operator running (`archivist
/// release-finalizers`, after `helm uninstall`): only when the run cannot be holding the
/// archive: not [`holds_archive`], and not in a phase where quiescing or releasing may have
/// begun without being recorded yet (Quiescing through Releasing).
pub fn release_finalizer_removable_unattended(status: &ArchiveBackupStatus) -> bool {
    let phase_may_hold = matches!(
        status.phase,
        Some(BackupPhase::Quiescing | BackupPhase::CapturingMetadata | BackupPhase::CapturingContent | BackupPhase::Releasing)
    );
    !holds_archive(status) && !phase_may_hold
}

/// What the sweeper found about a claim's holder.
#[derive(Debug, Clone, PartialEq)]
pub enum HolderState<'a> {
    /// The annotation names no holder Archivist knows how to read.
    Unreadable,
    /// The holder object does not exist.
    Gone,
    /// The holding ArchiveBackup, with its status and whether it is being deleted.
    Backup {
        /// Its status (default when it has none).
        status: &'a ArchiveBackupStatus,
    },
    /// The holding RestoreRequest exists: its controller owns the claim's lifecycle.
    RestoreExists,
}

/// What the sweeper does with one claimed workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepAction {
    /// The holder still holds the workload (or may be about to quiesce it): leave it.
    Keep,
    /// Release the workload and remove the claim. `why` explains it.
    Release {
        /// Why the claim is an orphan, in words.
        why: String,
        /// Stop mode (`archivist.dev/original-replicas` is recorded): scale back to this.
        /// `None`: the holder froze the workload; thaw its pods with the policy's thaw hook.
        scale_to: Option<i32>,
    },
}

/// Decides whether a claim is an orphan: its run is finished, gone, or not holding it.
///
/// A Pending run keeps its claim (it claims right before it begins); a run in an active
/// phase keeps it while it has not released. A RestoreRequest's claim is left to the restore
/// controller while the request exists, since a failed in-place restore deliberately keeps
/// its target stopped when the target's claims were being replaced.
///
/// `original_replicas` is the workload's `archivist.dev/original-replicas` annotation, parsed.
pub fn sweep(holder: &HolderState<'_>, original_replicas: Option<i32>) -> SweepAction {
    let release = |why: String| SweepAction::Release { why, scale_to: original_replicas };
    match holder {
        HolderState::Unreadable => SweepAction::Keep,
        HolderState::RestoreExists => SweepAction::Keep,
        HolderState::Gone => release("the run named in archivist.dev/quiesced-by no longer exists".into()),
        HolderState::Backup { status } => {
            let phase = status.phase.unwrap_or(BackupPhase::Pending);
            if phase.is_finished() {
                return release(format!("the run that quiesced it is {phase:?}"));
            }
            let released = status.quiesce.as_ref().is_some_and(|q| q.released_at.is_some());
            if released {
                return release("the run that quiesced it has released it".into());
            }
            SweepAction::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::QuiesceStatus;
    use chrono::{TimeZone, Utc};

    /// Each case: the run's phase, whether it recorded quiescing and releasing, and whether its
    /// release finalizer may go with no operator running.
    #[test]
    fn a_release_finalizer_goes_unattended_only_when_the_run_cannot_hold_the_archive() {
        use BackupPhase::*;
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).single();
        let cases = [
            (None, None, None, true),
            (Some(Pending), None, None, true),
            (Some(Quiescing), None, None, false),
            (Some(CapturingMetadata), at, None, false),
            (Some(CapturingContent), at, None, false),
            (Some(Releasing), at, at, false),
            (Some(Finalizing), at, at, true),
            (Some(Verifying), at, at, true),
            (Some(Completed), at, at, true),
            (Some(Failed), at, at, true),
            (Some(Failed), at, None, false),
        ];
        for (phase, quiesced_at, released_at, removable) in cases {
            let status = ArchiveBackupStatus {
                phase,
                quiesce: Some(QuiesceStatus { quiesced_at, released_at, ..Default::default() }),
                ..Default::default()
            };
            assert_eq!(release_finalizer_removable_unattended(&status), removable, "{phase:?} {quiesced_at:?} {released_at:?}");
        }
    }

    #[test]
    fn holders_round_trip_and_refuse_what_archivist_never_writes() {
        let cases = [
            ("mail/b1", Some(Holder::backup("mail", "b1"))),
            ("RestoreRequest/mail/r1", Some(Holder::restore("mail", "r1"))),
            ("b1", None),
            ("/b1", None),
            ("mail/", None),
            ("Other/mail/r1", None),
            ("a/b/c/d", None),
        ];
        for (value, want) in cases {
            let got = Holder::parse(value);
            assert_eq!(got, want, "{value}");
            if let Some(h) = got {
                assert_eq!(h.to_string(), value);
            }
        }
    }

    #[test]
    fn a_claimant_sees_free_mine_or_held() {
        let me = Holder::backup("mail", "b2");
        assert_eq!(ClaimObs::of(None, &me), ClaimObs::Free);
        assert_eq!(ClaimObs::of(Some(""), &me), ClaimObs::Free);
        assert_eq!(ClaimObs::of(Some("mail/b2"), &me), ClaimObs::Mine);
        assert_eq!(ClaimObs::of(Some("mail/b1"), &me), ClaimObs::HeldBy("mail/b1".into()));
        assert_eq!(ClaimObs::of(Some("other/b2"), &me), ClaimObs::HeldBy("other/b2".into()));
        assert_eq!(ClaimObs::of(Some("RestoreRequest/mail/b2"), &me), ClaimObs::HeldBy("RestoreRequest/mail/b2".into()));
    }

    #[test]
    fn sweep_releases_only_what_no_live_run_holds() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).single().expect("time");
        let status = |phase: Option<BackupPhase>, released: bool| ArchiveBackupStatus {
            phase,
            quiesce: Some(QuiesceStatus { quiesced_at: Some(t), released_at: released.then_some(t), ..Default::default() }),
            ..Default::default()
        };
        let pending = ArchiveBackupStatus::default();
        let capturing = status(Some(BackupPhase::CapturingContent), false);
        let releasing = status(Some(BackupPhase::Releasing), false);
        let finalizing = status(Some(BackupPhase::Finalizing), true);
        let failed_unreleased = status(Some(BackupPhase::Failed), false);
        let completed = status(Some(BackupPhase::Completed), true);
        let cases: Vec<(&str, HolderState<'_>, bool)> = vec![
            ("unreadable value: never touched", HolderState::Unreadable, false),
            ("a restore's claim is the restore controller's", HolderState::RestoreExists, false),
            ("gone run", HolderState::Gone, true),
            ("pending run about to quiesce", HolderState::Backup { status: &pending }, false),
            ("capturing run", HolderState::Backup { status: &capturing }, false),
            ("releasing run: it retries itself", HolderState::Backup { status: &releasing }, false),
            ("released run", HolderState::Backup { status: &finalizing }, true),
            ("failed run", HolderState::Backup { status: &failed_unreleased }, true),
            ("completed run", HolderState::Backup { status: &completed }, true),
        ];
        for (name, holder, release) in cases {
            assert_eq!(matches!(sweep(&holder, None), SweepAction::Release { .. }), release, "{name}");
        }
        match sweep(&HolderState::Gone, Some(3)) {
            SweepAction::Release { scale_to, .. } => assert_eq!(scale_to, Some(3), "a stopped orphan is scaled back to the recorded replicas"),
            other => panic!("{other:?}"),
        }
    }
}
