//! The backup run as a state machine: from what is observed, the one next step.
//!
//! The run's state lives in `ArchiveBackup.status`; every step that has a side effect on the
//! archive is preceded by a step that records it (quiescing starts → `quiesce.quiescedAt`,
//! releasing starts → phase `Releasing`), so a restarted operator knows what to undo.
//!
//! The rules, in the order [`next`] applies them:
//! 1. A run in `Releasing` releases, retrying with backoff until the release really happened
//!    (also while the run is being deleted).
//! 2. A run being deleted that may have the archive quiesced begins releasing (failure
//!    `Deleted`); otherwise it drops its workload claim and its finalizer, and goes.
//! 3. A run that no longer holds the archive (Finalizing, Verifying, Completed, Failed) first
//!    drops a claim it still has, then its `archivist.dev/release` finalizer. A finished run
//!    then has nothing to do.
//! 4. A Pending run is checked (its own spec, the policy, the target), then, for Freeze and
//!    Stop, gets the finalizer, then claims the workload (waiting while another run or an
//!    InPlace restore holds it), and only then begins.
//! 5. While the operator shuts down (SIGTERM), no run starts or quiesces, and a run that has
//!    the archive quiesced begins releasing (failure `OperatorShutdown`).
//! 6. A run that this process did not drive until now (the operator restarted) and that has
//!    quiesced the archive without releasing it: release first, then fail. Capturing on after
//!    an unobserved gap would promise a consistency the run cannot prove.
//! 7. `quiesce.timeoutSeconds` after `quiescedAt`, a run that has not released: release, fail.
//! 8. Otherwise the phase's own rule (see [`Step`]). Metadata items are all cut before any
//!    content item is started; the archive is released as soon as every snapshot is cut,
//!    without waiting for `readyToUse`.
//! 9. Nothing waits forever: `Finalizing` waits for `readyToUse` at most
//!    `snapshotReadyTimeoutSeconds` (default 3600) and then fails (`SnapshotReadyTimeout`);
//!    `Verifying` takes at most `verification.timeoutSeconds` (default 1800) and then ends
//!    Completed with verification `Failed` (condition `Verified=False`, reason `Timeout`):
//!    the snapshots are ready, so the run is a restore point whose check did not finish. Both
//!    count from `status.phaseStartTime` (see [`phase_deadline`]); a waiting run looks again at
//!    the deadline at the latest. A run that ended is no longer in progress, so a stuck run
//!    blocks neither the policy's later runs nor its retention beyond its deadline.

use super::capture::{CaptureStage, ItemSource, PlannedItem};
use super::claim::{holds_archive, ClaimObs};
use crate::api::{
    ArchiveBackupStatus, BackupPhase, BackupPolicySpec, ConditionStatus, QuiesceMode,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// The finalizer an ArchiveBackup holds while its run may have the archive quiesced: deleting
/// the run releases the archive before the object goes.
pub const RELEASE_FINALIZER: &str = "archivist.dev/release";

/// The condition type that says whether the archive was released (`False` while a release
/// is being retried, with the last error).
pub const RELEASED: &str = "Released";

pub use super::claim::WORKLOAD_CLAIMED;

/// The condition type that records whether capturing succeeded; `False` while a failed run
/// releases the archive carries the failure (reason and message) to the `Failed` phase.
pub const CAPTURED: &str = "Captured";

/// The target workload as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadObs {
    /// `spec.replicas`.
    pub replicas: i32,
    /// Pods of the workload that still exist (any phase).
    pub live_pods: u32,
    /// Names of the workload's Ready pods.
    pub ready_pods: Vec<String>,
}

/// A VolumeSnapshot of the run as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotObs {
    /// `status.creationTime`: when the cut was made.
    pub cut_at: Option<DateTime<Utc>>,
    /// `status.readyToUse`.
    pub ready_to_use: bool,
    /// `status.error.message`, when the snapshot failed.
    pub error: Option<String>,
}

/// A dump Job of the run as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobObs {
    /// Not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed; the message says why.
    Failed {
        /// Why, from the Job's conditions.
        message: String,
    },
}

/// Everything [`next`] decides from.
#[derive(Debug, Clone)]
pub struct RunObservation<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// The run's (ArchiveBackup's) name.
    pub backup_name: &'a str,
    /// The run's recorded state.
    pub status: &'a ArchiveBackupStatus,
    /// The policy spec the run uses: the copy in `status.policySpec` once started, else the
    /// live policy; `None` if the policy does not exist.
    pub policy: Option<&'a BackupPolicySpec>,
    /// True when this operator process did not drive the run so far (it restarted).
    pub resumed_after_restart: bool,
    /// True when the ArchiveBackup is being deleted (`metadata.deletionTimestamp`).
    pub deleting: bool,
    /// True when the operator is shutting down (SIGTERM): no run starts, and a run that has
    /// the archive quiesced releases it and fails.
    pub shutting_down: bool,
    /// Whether the ArchiveBackup has the [`RELEASE_FINALIZER`].
    pub has_release_finalizer: bool,
    /// The target's `archivist.dev/quiesced-by` claim as this run sees it.
    pub claim: &'a ClaimObs,
    /// What is wrong with the ArchiveBackup itself (`field: message`, from
    /// `plan::validate::validate_archive_backup_object`); checked before anything is quiesced.
    pub spec_problems: &'a [String],
    /// What is wrong with the policy (`field: message`, from `plan::validate`); a run of an
    /// invalid policy fails before it quiesces anything.
    pub policy_problems: &'a [String],
    /// Another run of the same policy that is not finished (never two at once).
    pub other_active_run: Option<&'a str>,
    /// The target workload; `None` when it does not exist.
    pub workload: Option<&'a WorkloadObs>,
    /// The capture plan (see [`super::capture::capture_plan`]).
    pub plan: &'a [PlannedItem],
    /// The run's VolumeSnapshots by name.
    pub snapshots: &'a BTreeMap<String, SnapshotObs>,
    /// The run's dump Jobs by name (the dump claim's name).
    pub dump_jobs: &'a BTreeMap<String, JobObs>,
    /// Verification: the scratch PVCs by name, `true` when bound.
    pub verify_claims: &'a BTreeMap<String, bool>,
    /// Verification: the verify Job, if created.
    pub verify_job: Option<&'a JobObs>,
    /// The export (`status.export`): its scratch PVCs, Job, and repository.
    pub export: exporting::ExportObs<'a>,
}

/// What a run records when quiescing starts (with `quiesce.quiescedAt`), before doing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuiesceStart {
    /// Stop: the replicas to scale back to.
    pub original_replicas: Option<i32>,
    /// Freeze: the pods to freeze (and later thaw): the target's Ready pods.
    pub pods: Vec<String>,
}

impl QuiesceStart {
    /// What quiescing `workload` in `mode` records; `None` for mode None.
    pub fn of(mode: QuiesceMode, workload: &WorkloadObs) -> Option<QuiesceStart> {
        match mode {
            QuiesceMode::None => None,
            QuiesceMode::Stop => Some(QuiesceStart { original_replicas: Some(workload.replicas), pods: Vec::new() }),
            QuiesceMode::Freeze => Some(QuiesceStart { original_replicas: None, pods: workload.ready_pods.clone() }),
        }
    }
}

/// Why a run failed: a stable word for Events, conditions and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The BackupPolicy named by the run does not exist.
    PolicyNotFound,
    /// The target workload does not exist.
    TargetNotFound,
    /// A freeze (or thaw) hook failed or timed out.
    HookFailed,
    /// A VolumeSnapshot reported an error.
    SnapshotFailed,
    /// A dump Job failed.
    DumpFailed,
    /// The archive stayed quiesced longer than `quiesce.timeoutSeconds`.
    QuiesceTimeout,
    /// The operator restarted while the archive was quiesced.
    OperatorRestarted,
    /// A Secret named in `master.secrets` does not exist.
    SecretNotFound,
    /// The policy breaks a validation rule (see `plan::validate`).
    InvalidPolicy,
    /// The ArchiveBackup itself breaks a validation rule (a name too long for a label, ...).
    InvalidSpec,
    /// The ArchiveBackup was deleted while the run was in progress.
    Deleted,
    /// The operator shut down (SIGTERM) while the archive was quiesced.
    OperatorShutdown,
    /// A snapshot was not ready to use `snapshotReadyTimeoutSeconds` after the release.
    SnapshotReadyTimeout,
}

impl FailureReason {
    /// The reason as a CamelCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::PolicyNotFound => "PolicyNotFound",
            FailureReason::TargetNotFound => "TargetNotFound",
            FailureReason::HookFailed => "HookFailed",
            FailureReason::SnapshotFailed => "SnapshotFailed",
            FailureReason::DumpFailed => "DumpFailed",
            FailureReason::QuiesceTimeout => "QuiesceTimeout",
            FailureReason::OperatorRestarted => "OperatorRestarted",
            FailureReason::SecretNotFound => "SecretNotFound",
            FailureReason::InvalidPolicy => "InvalidPolicy",
            FailureReason::InvalidSpec => "InvalidSpec",
            FailureReason::Deleted => "Deleted",
            FailureReason::OperatorShutdown => "OperatorShutdown",
            FailureReason::SnapshotReadyTimeout => "SnapshotReadyTimeout",
        }
    }

    /// Every reason.
    pub const ALL: [FailureReason; 13] = [
        FailureReason::PolicyNotFound,
        FailureReason::TargetNotFound,
        FailureReason::HookFailed,
        FailureReason::SnapshotFailed,
        FailureReason::DumpFailed,
        FailureReason::QuiesceTimeout,
        FailureReason::OperatorRestarted,
        FailureReason::SecretNotFound,
        FailureReason::InvalidPolicy,
        FailureReason::InvalidSpec,
        FailureReason::Deleted,
        FailureReason::OperatorShutdown,
        FailureReason::SnapshotReadyTimeout,
    ];

    /// Parses [`FailureReason::as_str`].
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == word)
    }
}

/// A failure: its reason and a message a person understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stable reason.
    pub reason: FailureReason,
    /// What happened, in words.
    pub message: String,
}

impl Failure {
    /// A failure with `reason` and `message`.
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// A side effect of the capture phases, by index into the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureAction {
    /// Create the dump PVC and the dump Job of an SQL item.
    CreateDump(usize),
    /// Create the VolumeSnapshot of an item.
    CreateSnapshot(usize),
    /// Delete the dump Job and PVC of an SQL item whose snapshot is ready.
    DeleteDump(usize),
}

/// The one next step of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to do until something changes; `requeue` when a deadline is near.
    Wait {
        /// What the run waits for, in words.
        what: String,
        /// When to look again even if nothing changes.
        requeue: Option<Duration>,
    },
    /// Add the [`RELEASE_FINALIZER`] (before anything is quiesced).
    AddReleaseFinalizer,
    /// Claim the target: set `archivist.dev/quiesced-by` to this run with a resourceVersion
    /// precondition (a lost race is a conflict, and the next reconcile sees the winner).
    ClaimWorkload,
    /// Wait in Pending: another run or an InPlace restore holds the target.
    WaitForWorkload {
        /// The holder, as written in the annotation.
        holder: String,
    },
    /// Remove this run's claim from a workload it does not hold quiesced (the annotation is
    /// removed only while it still names this run).
    DropClaim,
    /// Remove the [`RELEASE_FINALIZER`]: the run no longer holds the archive.
    RemoveReleaseFinalizer,
    /// Record the start: phase `Quiescing`, `startTime`, the policy copy, the planned items,
    /// and for Freeze and Stop that quiescing starts now (before doing it, in the same write).
    Begin {
        /// Freeze and Stop: what quiescing records; `None` for quiesce mode None.
        quiesce: Option<QuiesceStart>,
    },
    /// Record that quiescing starts now, before doing it: for a run in `Quiescing` without
    /// `quiescedAt` (begun by an operator version that recorded it in a write of its own).
    RecordQuiesceStart(QuiesceStart),
    /// Stop: scale the target to 0 (the workload is annotated `archivist.dev/quiesced-by`).
    ScaleToZero,
    /// Freeze: run the freeze hook on these pods; success enters `CapturingMetadata` (recorded)
    /// and starts its captures at once, failure begins releasing with
    /// [`FailureReason::HookFailed`]. (One reconcile, not two: the archive is frozen.)
    Freeze {
        /// The pods recorded in `quiesce.pods`.
        pods: Vec<String>,
        /// The metadata stage's first captures, started once `CapturingMetadata` is recorded.
        then: Vec<CaptureAction>,
    },
    /// Record a phase change that has no side effect of its own.
    EnterPhase(BackupPhase),
    /// Every master and metadata item is cut: record `CapturingContent`, then start the
    /// content stage's captures at once (one reconcile, not two: the archive is quiesced).
    BeginContent {
        /// The content stage's first captures.
        captures: Vec<CaptureAction>,
    },
    /// Create (or clean up) dump Jobs and snapshots.
    Capture(Vec<CaptureAction>),
    /// Record phase `Releasing` (with the failure, if any, in the `Captured` condition), then
    /// release at once as [`Step::Release`] does (one reconcile, not two).
    BeginRelease {
        /// Why the run failed, if it did.
        failure: Option<Failure>,
    },
    /// Thaw (the recorded pods not thawed yet) or scale back, and remove the claim; record
    /// `releasedAt` and the window; then `Finalizing`, or `Failed` with the recorded failure.
    /// A release that fails is recorded (`Released=False`, `releaseAttempts`), published as
    /// `ReleaseFailed`, and retried after [`release_retry_delay`], with no limit.
    Release {
        /// The failure recorded when releasing began.
        failure: Option<Failure>,
    },
    /// Every snapshot is ready and verification is enabled: record phase `Verifying`.
    BeginVerification,
    /// Create the scratch PVCs of these plan items (restored from their snapshots).
    CreateVerifyClaims(Vec<usize>),
    /// Create the verify Job with every scratch PVC mounted.
    CreateVerifyJob,
    /// Record the verification result, delete the scratch PVCs and the Job, phase `Completed`.
    FinishVerification {
        /// How verification ended.
        result: VerificationResult,
        /// What it reported.
        message: String,
    },
    /// A run whose export is `Pending`: record `Running`, `startedAt` and the repository
    /// (credentials removed), condition `Exported=Unknown`; publish `ExportStarted`.
    BeginExport {
        /// `RESTIC_REPOSITORY`, credentials removed.
        repository: String,
    },
    /// Create the export's scratch PVCs of these plan items (restored from their snapshots).
    CreateExportClaims(Vec<usize>),
    /// Create the export Job with every scratch PVC mounted.
    CreateExportJob,
    /// Delete the export's scratch PVCs, record how the export ended (`Exported` with the
    /// repository snapshots, or `Failed`) and condition `Exported`, then delete the Job (after
    /// the write: a failed write finds the finished Job again) and publish `Exported` or
    /// `ExportFailed`. The run stays Completed either way.
    FinishExport {
        /// What the export Job reported, or why the export failed.
        outcome: Result<super::export::ExportReport, String>,
    },
    /// A pruned run's export is in a repository: create the Job that runs `restic forget` on
    /// these repository snapshots.
    CreateForgetJob(Vec<String>),
    /// Forgetting the repository snapshots failed: record it (`export.forgetFailedAt`,
    /// `export.message`), delete the Job, publish `ForgetFailed`; tried again later.
    ForgetFailed {
        /// Why.
        message: String,
    },
    /// A pruned run with nothing left in a repository: publish `Forgotten` when snapshots were
    /// forgotten, then delete the ArchiveBackup (its VolumeSnapshots and Secrets go with it).
    DeletePruned {
        /// The repository snapshots that were forgotten.
        forgotten: Vec<String>,
    },
    /// Record `Completed`.
    Complete,
    /// Record `Failed` (nothing is quiesced).
    Fail(Failure),
    /// The run is finished.
    Done,
}

impl Step {
    /// Whether the step writes anything (an object other than the run, or the run's status);
    /// such a step is decided from a fresh read of the run, never from a stale cache.
    pub fn has_side_effect(&self) -> bool {
        !matches!(self, Step::Wait { .. } | Step::WaitForWorkload { .. } | Step::Done)
    }
}

/// How a run's verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationResult {
    /// The verify Job succeeded.
    Passed,
    /// The verify Job failed.
    Failed,
    /// `verification.timeoutSeconds` passed first (the Job's `activeDeadlineSeconds`, or the
    /// phase's deadline while the scratch volumes were restored or the Job ran).
    TimedOut,
}

impl VerificationResult {
    /// Whether the backup passed its verification.
    pub fn passed(self) -> bool {
        self == VerificationResult::Passed
    }

    /// The reason of the `Verified` condition: `Passed`, `Failed` or `Timeout`.
    pub fn condition_reason(self) -> &'static str {
        match self {
            VerificationResult::Passed => "Passed",
            VerificationResult::Failed => "Failed",
            VerificationResult::TimedOut => "Timeout",
        }
    }
}

/// When the run entered its current phase: `status.phaseStartTime`; for a run recorded before
/// that field existed, the release time, else the start time (earlier, so its deadline comes
/// sooner rather than never).
pub fn phase_entered(status: &ArchiveBackupStatus) -> Option<DateTime<Utc>> {
    status.phase_start_time.or_else(|| status.quiesce.as_ref().and_then(|q| q.released_at)).or(status.start_time)
}

/// The deadline of the phase the run is in, with the setting that sets it: `Finalizing` ends
/// `snapshotReadyTimeoutSeconds` after it was entered, `Verifying`
/// `verification.timeoutSeconds` after; other phases have none here (while quiesced,
/// `quiesce.timeoutSeconds` applies, see [`quiesce_deadline`]).
pub fn phase_deadline(status: &ArchiveBackupStatus, policy: &BackupPolicySpec) -> Option<(DateTime<Utc>, Deadline)> {
    let deadline = match status.phase? {
        BackupPhase::Finalizing => Deadline::SnapshotReady(policy.snapshot_ready_timeout_seconds),
        BackupPhase::Verifying => {
            Deadline::Verification(policy.verification.clone().unwrap_or_default().timeout_seconds)
        }
        _ => return None,
    };
    Some((phase_entered(status)? + chrono::Duration::seconds(i64::from(deadline.seconds())), deadline))
}

/// A phase deadline and the setting it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// `snapshotReadyTimeoutSeconds`, in seconds.
    SnapshotReady(u32),
    /// `verification.timeoutSeconds`, in seconds.
    Verification(u32),
}

impl Deadline {
    /// The timeout in seconds.
    pub fn seconds(self) -> u32 {
        match self {
            Deadline::SnapshotReady(s) | Deadline::Verification(s) => s,
        }
    }

    /// The setting, as a person writes it in the policy, with its value: for example
    /// `verification.timeoutSeconds (5s)`.
    pub fn describe(self) -> String {
        match self {
            Deadline::SnapshotReady(s) => format!("snapshotReadyTimeoutSeconds ({s}s)"),
            Deadline::Verification(s) => format!("verification.timeoutSeconds ({s}s)"),
        }
    }
}

/// Records the entry into a new phase: when `status.phase` differs from `previous` (the
/// phase recorded before this step), `phaseStartTime` becomes `now`. Called on every status
/// write of a run, so no phase change goes unrecorded.
pub fn stamp_phase_start(status: &mut ArchiveBackupStatus, previous: Option<BackupPhase>, now: DateTime<Utc>) {
    if status.phase != previous {
        status.phase_start_time = Some(now);
    }
}

/// Whether a failed Job's message says Kubernetes stopped it at its `activeDeadlineSeconds`
/// (the Job condition's reason `DeadlineExceeded` starts the message).
pub fn deadline_exceeded(message: &str) -> bool {
    message.starts_with("DeadlineExceeded")
}

/// How long until `deadline`, at most `cap` (zero once it has passed).
fn until(now: DateTime<Utc>, deadline: Option<DateTime<Utc>>, cap: Duration) -> Duration {
    deadline.map_or(cap, |d| (d - now).to_std().unwrap_or(Duration::ZERO).min(cap))
}

/// How long to wait before looking again when only a watch event can move the run on.
pub const IDLE_REQUEUE: Duration = Duration::from_secs(30);

/// The failure recorded on a run that is releasing after a failure.
pub fn recorded_failure(status: &ArchiveBackupStatus) -> Option<Failure> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == CAPTURED && c.status == ConditionStatus::False)
        .map(|c| Failure {
            reason: FailureReason::parse(&c.reason).unwrap_or(FailureReason::SnapshotFailed),
            message: c.message.clone(),
        })
}

/// How long to wait before retrying a release that failed `attempts` times: 1 s, doubling,
/// at most 5 minutes. There is no limit on the attempts.
pub fn release_retry_delay(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exponent).min(Duration::from_secs(300))
}

/// When a release that failed is tried again: the last failure plus
/// [`release_retry_delay`]; `None` when no attempt failed.
pub fn release_retry_at(status: &ArchiveBackupStatus) -> Option<DateTime<Utc>> {
    let quiesce = status.quiesce.as_ref()?;
    let attempts = quiesce.release_attempts.filter(|a| *a > 0)?;
    let last = quiesce.last_release_failure?;
    let delay = chrono::Duration::from_std(release_retry_delay(attempts)).unwrap_or_else(|_| chrono::Duration::seconds(300));
    Some(last + delay)
}

/// Whether a run is settled: finished, holding nothing (the archive released, so its claim
/// dropped), without the release finalizer, and with no export under way. Nothing is left to do for it, so a reconcile
/// returns before observing anything: a finished restore point costs no API request until it
/// changes (a finished run without the finalizer has dropped its claim, since the finalizer is
/// removed only after the claim).
pub fn settled(status: &ArchiveBackupStatus, has_release_finalizer: bool) -> bool {
    status.phase.is_some_and(BackupPhase::is_finished)
        && !holds_archive(status)
        && !has_release_finalizer
        && !super::export::in_flight(status)
}

/// Whether the run `backup` is [`settled`], from its status and its release finalizer, and
/// not pruned ([`prune_requested`]).
pub fn is_settled(backup: &crate::api::ArchiveBackup) -> bool {
    let has_release_finalizer = backup.metadata.finalizers.iter().flatten().any(|f| f == RELEASE_FINALIZER);
    backup.status.as_ref().is_some_and(|s| settled(s, has_release_finalizer)) && !prune_requested(backup)
}

/// Whether retention pruned the run (annotation `archivist.dev/prune`): it is not settled
/// until it forgot its repository snapshots and deleted itself (`exporting::pruning`).
pub fn prune_requested(backup: &crate::api::ArchiveBackup) -> bool {
    backup.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(crate::kube::labels::PRUNE))
}

/// Decides the next step of a run.
pub fn next(obs: &RunObservation<'_>) -> Step {
    let phase = obs.status.phase.unwrap_or(BackupPhase::Pending);
    if phase == BackupPhase::Releasing {
        if let Some(retry_at) = release_retry_at(obs.status) {
            if obs.now < retry_at {
                let requeue = (retry_at - obs.now).to_std().unwrap_or(Duration::ZERO);
                return Step::Wait { what: format!("the release failed; retrying at {}", retry_at.to_rfc3339()), requeue: Some(requeue) };
            }
        }
        return Step::Release { failure: recorded_failure(obs.status) };
    }
    let quiesced = holds_archive(obs.status);
    let before_release = matches!(
        phase,
        BackupPhase::Quiescing | BackupPhase::CapturingMetadata | BackupPhase::CapturingContent
    );
    if obs.deleting {
        if quiesced && before_release {
            return Step::BeginRelease {
                failure: Some(Failure::new(
                    FailureReason::Deleted,
                    "the ArchiveBackup was deleted during the run; the archive was released first",
                )),
            };
        }
        return settle(obs).unwrap_or(Step::Done);
    }
    if phase.is_finished() || matches!(phase, BackupPhase::Finalizing | BackupPhase::Verifying) {
        if let Some(step) = settle(obs) {
            return step;
        }
    }
    if phase == BackupPhase::Completed && super::export::in_flight(obs.status) {
        return exporting::next(obs);
    }
    if phase.is_finished() && obs.export.prune_requested {
        return exporting::pruning(obs);
    }
    if phase.is_finished() {
        return Step::Done;
    }
    if obs.shutting_down {
        if quiesced && before_release {
            return Step::BeginRelease {
                failure: Some(Failure::new(
                    FailureReason::OperatorShutdown,
                    "the operator shut down while the archive was quiesced; the archive was released and the run stopped",
                )),
            };
        }
        if phase == BackupPhase::Pending || before_release {
            return Step::Wait { what: "the operator is shutting down; the run starts when it is back".into(), requeue: None };
        }
    }
    if phase == BackupPhase::Pending {
        return begin(obs);
    }
    let Some(policy) = obs.policy else {
        return release_or_fail(obs, Failure::new(FailureReason::PolicyNotFound, "the run has no policy spec"));
    };
    if before_release && quiesced {
        if obs.resumed_after_restart {
            return Step::BeginRelease {
                failure: Some(Failure::new(
                    FailureReason::OperatorRestarted,
                    "the operator restarted while the archive was quiesced; the archive was released and the run stopped",
                )),
            };
        }
        if let Some(deadline) = quiesce_deadline(obs.status, policy) {
            if obs.now >= deadline {
                return Step::BeginRelease {
                    failure: Some(Failure::new(
                        FailureReason::QuiesceTimeout,
                        format!(
                            "the archive stayed quiesced longer than quiesce.timeoutSeconds ({}s); it was released",
                            policy.quiesce.timeout_seconds
                        ),
                    )),
                };
            }
        }
    }
    match phase {
        BackupPhase::Quiescing => quiescing(obs, policy),
        BackupPhase::CapturingMetadata => capturing(obs, policy, CaptureStage::Metadata),
        BackupPhase::CapturingContent => capturing(obs, policy, CaptureStage::Content),
        BackupPhase::Finalizing => finalizing(obs, policy),
        BackupPhase::Verifying => verifying(obs, policy),
        BackupPhase::Pending | BackupPhase::Releasing | BackupPhase::Completed | BackupPhase::Failed => Step::Done,
    }
}

/// When the archive must be released at the latest.
pub fn quiesce_deadline(status: &ArchiveBackupStatus, policy: &BackupPolicySpec) -> Option<DateTime<Utc>> {
    let quiesced_at = status.quiesce.as_ref()?.quiesced_at?;
    Some(quiesced_at + chrono::Duration::seconds(i64::from(policy.quiesce.timeout_seconds)))
}

/// A run that does not hold the archive (or never will): drop a claim it still has, then its
/// finalizer; `None` when neither is left.
fn settle(obs: &RunObservation<'_>) -> Option<Step> {
    if holds_archive(obs.status) {
        return None;
    }
    if *obs.claim == ClaimObs::Mine {
        return Some(Step::DropClaim);
    }
    obs.has_release_finalizer.then_some(Step::RemoveReleaseFinalizer)
}

fn begin(obs: &RunObservation<'_>) -> Step {
    if !obs.spec_problems.is_empty() {
        return Step::Fail(Failure::new(
            FailureReason::InvalidSpec,
            format!("the ArchiveBackup is invalid: {}", obs.spec_problems.join("; ")),
        ));
    }
    if obs.policy.is_none() {
        return Step::Fail(Failure::new(FailureReason::PolicyNotFound, "the BackupPolicy named in spec.policyName does not exist"));
    }
    if !obs.policy_problems.is_empty() {
        return Step::Fail(Failure::new(
            FailureReason::InvalidPolicy,
            format!("the BackupPolicy is invalid: {}", obs.policy_problems.join("; ")),
        ));
    }
    if obs.workload.is_none() {
        return Step::Fail(Failure::new(FailureReason::TargetNotFound, "the policy's target workload does not exist"));
    }
    if let Some(other) = obs.other_active_run {
        return Step::Wait { what: format!("another run of the policy is in progress: {other}"), requeue: Some(IDLE_REQUEUE) };
    }
    let mode = obs.policy.map(|p| p.quiesce.mode).unwrap_or_default();
    if mode != QuiesceMode::None {
        if !obs.has_release_finalizer {
            return Step::AddReleaseFinalizer;
        }
        match obs.claim {
            ClaimObs::HeldBy(holder) => return Step::WaitForWorkload { holder: holder.clone() },
            ClaimObs::Free => return Step::ClaimWorkload,
            ClaimObs::Mine => {}
        }
    }
    Step::Begin { quiesce: obs.workload.and_then(|w| QuiesceStart::of(mode, w)) }
}

/// Fails the run, releasing first if the archive may be quiesced.
fn release_or_fail(obs: &RunObservation<'_>, failure: Failure) -> Step {
    let quiesced = obs.status.quiesce.as_ref().is_some_and(|q| q.quiesced_at.is_some() && q.released_at.is_none());
    if quiesced {
        Step::BeginRelease { failure: Some(failure) }
    } else {
        Step::Fail(failure)
    }
}

fn quiescing(obs: &RunObservation<'_>, policy: &BackupPolicySpec) -> Step {
    let quiesce = obs.status.quiesce.clone().unwrap_or_default();
    let Some(workload) = obs.workload else {
        return release_or_fail(obs, Failure::new(FailureReason::TargetNotFound, "the target workload disappeared while quiescing"));
    };
    if quiesce.quiesced_at.is_none() {
        // Begun by an operator version that recorded the quiesce start in a write of its own.
        if let Some(start) = QuiesceStart::of(policy.quiesce.mode, workload) {
            return Step::RecordQuiesceStart(start);
        }
    }
    match policy.quiesce.mode {
        QuiesceMode::None => Step::EnterPhase(BackupPhase::CapturingMetadata),
        QuiesceMode::Stop => {
            if workload.replicas != 0 {
                return Step::ScaleToZero;
            }
            if workload.live_pods > 0 {
                // Each pod's removal wakes the run (`controllers::caches`, the pod watch); the
                // requeue is only the quiesce deadline.
                return Step::Wait {
                    what: format!("{} pod(s) of the target still running after scaling to 0", workload.live_pods),
                    requeue: deadline_requeue(obs, policy),
                };
            }
            Step::EnterPhase(BackupPhase::CapturingMetadata)
        }
        QuiesceMode::Freeze => Step::Freeze { pods: quiesce.pods, then: first_captures(obs, CaptureStage::Metadata) },
    }
}

fn capturing(obs: &RunObservation<'_>, policy: &BackupPolicySpec, stage: CaptureStage) -> Step {
    if obs.workload.is_none() {
        return release_or_fail(obs, Failure::new(FailureReason::TargetNotFound, "the target workload disappeared during the run; the archive was released"));
    }
    let (actions, pending) = match survey(obs, stage) {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    if !actions.is_empty() {
        return Step::Capture(actions);
    }
    if pending > 0 {
        return Step::Wait {
            what: format!("{pending} {} item(s) not cut yet", stage_word(stage)),
            requeue: deadline_requeue(obs, policy),
        };
    }
    match stage {
        CaptureStage::Metadata => Step::BeginContent { captures: first_captures(obs, CaptureStage::Content) },
        CaptureStage::Content => Step::BeginRelease { failure: None },
    }
}

/// The captures a stage starts with, before any of its items exists.
fn first_captures(obs: &RunObservation<'_>, stage: CaptureStage) -> Vec<CaptureAction> {
    survey(obs, stage).map(|(actions, _)| actions).unwrap_or_default()
}

/// A stage's items: the captures to start now and how many are still being cut (or dumped);
/// or the step that releases because one failed.
fn survey(obs: &RunObservation<'_>, stage: CaptureStage) -> Result<(Vec<CaptureAction>, usize), Step> {
    let mut actions = Vec::new();
    let mut pending = 0usize;
    for (index, item) in obs.plan.iter().enumerate().filter(|(_, i)| i.stage == stage) {
        match obs.snapshots.get(&item.snapshot) {
            Some(snapshot) => {
                if let Some(error) = &snapshot.error {
                    return Err(Step::BeginRelease {
                        failure: Some(Failure::new(
                            FailureReason::SnapshotFailed,
                            format!("VolumeSnapshot {} of claim {} failed: {error}", item.snapshot, item.claim()),
                        )),
                    });
                }
                if snapshot.cut_at.is_none() {
                    pending += 1;
                }
            }
            None => match &item.source {
                ItemSource::Claim(_) => actions.push(CaptureAction::CreateSnapshot(index)),
                ItemSource::Sql { dump_claim, sql } => match obs.dump_jobs.get(dump_claim) {
                    None => actions.push(CaptureAction::CreateDump(index)),
                    Some(JobObs::Running) => pending += 1,
                    Some(JobObs::Succeeded) => actions.push(CaptureAction::CreateSnapshot(index)),
                    Some(JobObs::Failed { message }) => {
                        return Err(Step::BeginRelease {
                            failure: Some(Failure::new(
                                FailureReason::DumpFailed,
                                format!("dump Job {dump_claim} of database {} failed: {message}", sql.database),
                            )),
                        })
                    }
                },
            },
        }
    }
    Ok((actions, pending))
}

/// The scratch PVC that verification restores plan item `index` into.
pub fn verify_claim_name(backup: &str, index: usize) -> String {
    super::names::fit(&format!("{backup}-verify-{index}"), super::names::MAX_NAME)
}

/// The verify Job of a run.
pub fn verify_job_name(backup: &str) -> String {
    super::names::fit(&format!("{backup}-verify"), super::names::MAX_LABEL_NAME)
}

fn verifying(obs: &RunObservation<'_>, policy: &BackupPolicySpec) -> Step {
    let deadline = phase_deadline(obs.status, policy);
    let timed_out = |what: &str| {
        let setting = deadline.map_or_else(|| "verification.timeoutSeconds".to_string(), |(_, d)| d.describe());
        Step::FinishVerification {
            result: VerificationResult::TimedOut,
            message: format!("verification did not finish within {setting}: {what}"),
        }
    };
    match obs.verify_job {
        Some(JobObs::Succeeded) => {
            return Step::FinishVerification { result: VerificationResult::Passed, message: "the verify Job succeeded".into() }
        }
        Some(JobObs::Failed { message }) if deadline_exceeded(message) => {
            return timed_out(&format!("the verify Job was stopped at its activeDeadlineSeconds ({message})"))
        }
        Some(JobObs::Failed { message }) => {
            return Step::FinishVerification { result: VerificationResult::Failed, message: format!("the verify Job failed: {message}") }
        }
        Some(JobObs::Running) | None => {}
    }
    let past = deadline.is_some_and(|(at, _)| obs.now >= at);
    let at = deadline.map(|(at, _)| at);
    if obs.verify_job.is_some() {
        if past {
            return timed_out("the verify Job was still running");
        }
        return Step::Wait { what: "the verify Job is running".into(), requeue: Some(until(obs.now, at, IDLE_REQUEUE)) };
    }
    let missing: Vec<usize> =
        (0..obs.plan.len()).filter(|i| !obs.verify_claims.contains_key(&verify_claim_name(obs.backup_name, *i))).collect();
    let unbound = obs.verify_claims.values().filter(|bound| !**bound).count();
    if past {
        return timed_out(&format!("{} of {} scratch PVC(s) were not restored yet", missing.len() + unbound, obs.plan.len()));
    }
    if !missing.is_empty() {
        return Step::CreateVerifyClaims(missing);
    }
    if unbound > 0 {
        return Step::Wait { what: format!("{unbound} scratch PVC(s) to bind"), requeue: Some(until(obs.now, at, Duration::from_secs(2))) };
    }
    Step::CreateVerifyJob
}

/// Whether a run that releases now is complete at once: every snapshot is already ready to
/// use, no dump is left to delete and no verification follows (what `Finalizing` would find on
/// its first look). Then the release records `Completed` instead of `Finalizing`: one status
/// write less, for snapshots that are ready when cut.
pub fn completes_at_release(obs: &RunObservation<'_>) -> bool {
    obs.policy.is_some_and(|policy| finalizing(obs, policy) == Step::Complete)
}

fn finalizing(obs: &RunObservation<'_>, policy: &BackupPolicySpec) -> Step {
    let mut cleanup = Vec::new();
    let mut not_ready = Vec::new();
    for (index, item) in obs.plan.iter().enumerate() {
        let snapshot = obs.snapshots.get(&item.snapshot);
        if let Some(error) = snapshot.and_then(|s| s.error.as_ref()) {
            return Step::Fail(Failure::new(
                FailureReason::SnapshotFailed,
                format!("VolumeSnapshot {} of claim {} failed: {error}", item.snapshot, item.claim()),
            ));
        }
        let ready = snapshot.is_some_and(|s| s.ready_to_use);
        if !ready {
            not_ready.push(item.snapshot.as_str());
        } else if let ItemSource::Sql { dump_claim, .. } = &item.source {
            if obs.dump_jobs.contains_key(dump_claim) {
                cleanup.push(CaptureAction::DeleteDump(index));
            }
        }
    }
    if !cleanup.is_empty() {
        return Step::Capture(cleanup);
    }
    if !not_ready.is_empty() {
        let deadline = phase_deadline(obs.status, policy);
        if let Some((_, setting)) = deadline.filter(|(at, _)| obs.now >= *at) {
            return Step::Fail(Failure::new(
                FailureReason::SnapshotReadyTimeout,
                format!(
                    "{} snapshot(s) were not ready to use within {} of the release: {}",
                    not_ready.len(),
                    setting.describe(),
                    not_ready.join(", ")
                ),
            ));
        }
        return Step::Wait {
            what: format!("{} snapshot(s) not ready to use yet", not_ready.len()),
            requeue: Some(until(obs.now, deadline.map(|(at, _)| at), IDLE_REQUEUE)),
        };
    }
    if policy.verification.as_ref().is_some_and(|v| v.after_backup) {
        return Step::BeginVerification;
    }
    Step::Complete
}

fn deadline_requeue(obs: &RunObservation<'_>, policy: &BackupPolicySpec) -> Option<Duration> {
    let deadline = quiesce_deadline(obs.status, policy)?;
    let left = (deadline - obs.now).to_std().unwrap_or(Duration::ZERO);
    Some(left.min(IDLE_REQUEUE))
}

fn stage_word(stage: CaptureStage) -> &'static str {
    match stage {
        CaptureStage::Metadata => "metadata",
        CaptureStage::Content => "content",
    }
}

pub mod cached;
pub mod exporting;
#[cfg(test)]
mod tests;
