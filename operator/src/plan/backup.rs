//! The backup run as a state machine: from what is observed, the one next step.
//!
//! The run's state lives in `ArchiveBackup.status`; every step that has a side effect on the
//! archive is preceded by a step that records it (quiescing starts → `quiesce.quiescedAt`,
//! releasing starts → phase `Releasing`), so a restarted operator knows what to undo.
//!
//! The rules, in the order [`next`] applies them:
//! 1. A finished run (Completed, Failed) has nothing to do.
//! 2. A run that this process did not drive until now (the operator restarted) and that has
//!    quiesced the archive without releasing it: release first, then fail. Capturing on after
//!    an unobserved gap would promise a consistency the run cannot prove.
//! 3. `quiesce.timeoutSeconds` after `quiescedAt`, a run that has not released: release, fail.
//! 4. Otherwise the phase's own rule (see [`Step`]). Metadata items are all cut before any
//!    content item is started; the archive is released as soon as every snapshot is cut,
//!    without waiting for `readyToUse`.

use super::capture::{CaptureStage, ItemSource, PlannedItem};
use crate::api::{
    ArchiveBackupStatus, BackupPhase, BackupPolicySpec, ConditionStatus, QuiesceMode,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

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
    /// The run's recorded state.
    pub status: &'a ArchiveBackupStatus,
    /// The policy spec the run uses: the copy in `status.policySpec` once started, else the
    /// live policy; `None` if the policy does not exist.
    pub policy: Option<&'a BackupPolicySpec>,
    /// True when this operator process did not drive the run so far (it restarted).
    pub resumed_after_restart: bool,
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
        }
    }

    /// Parses [`FailureReason::as_str`].
    pub fn parse(word: &str) -> Option<Self> {
        [
            FailureReason::PolicyNotFound,
            FailureReason::TargetNotFound,
            FailureReason::HookFailed,
            FailureReason::SnapshotFailed,
            FailureReason::DumpFailed,
            FailureReason::QuiesceTimeout,
            FailureReason::OperatorRestarted,
            FailureReason::SecretNotFound,
            FailureReason::InvalidPolicy,
        ]
        .into_iter()
        .find(|r| r.as_str() == word)
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
    /// Record the start: phase `Quiescing`, `startTime`, the policy copy, the planned items.
    Begin,
    /// Record that quiescing starts now (`quiescedAt`, and `originalReplicas` for Stop or the
    /// pods to freeze), before doing it.
    RecordQuiesceStart {
        /// Stop: the replicas to scale back to.
        original_replicas: Option<i32>,
        /// Freeze: the pods to freeze (and later thaw).
        pods: Vec<String>,
    },
    /// Stop: scale the target to 0 (the workload is annotated `archivist.dev/quiesced-by`).
    ScaleToZero,
    /// Freeze: run the freeze hook on these pods; success enters `CapturingMetadata`, failure
    /// begins releasing with [`FailureReason::HookFailed`].
    Freeze {
        /// The pods recorded in `quiesce.pods`.
        pods: Vec<String>,
    },
    /// Record a phase change that has no side effect of its own.
    EnterPhase(BackupPhase),
    /// Create (or clean up) dump Jobs and snapshots.
    Capture(Vec<CaptureAction>),
    /// Record phase `Releasing` (with the failure, if any, in the `Captured` condition).
    BeginRelease {
        /// Why the run failed, if it did.
        failure: Option<Failure>,
    },
    /// Thaw or scale back; record `releasedAt` and the window; then `Finalizing`, or `Failed`
    /// with the recorded failure.
    Release {
        /// The failure recorded when releasing began.
        failure: Option<Failure>,
    },
    /// Record `Completed`.
    Complete,
    /// Record `Failed` (nothing is quiesced).
    Fail(Failure),
    /// The run is finished.
    Done,
}

/// How long to wait before looking again when only a watch event can move the run on.
pub const IDLE_REQUEUE: Duration = Duration::from_secs(30);

/// How often a stopping run looks again for the target's pods to be gone. No watch event is
/// certain to follow a pod's removal (the controller does not watch the target's pods), and
/// every second spent waiting here is a second the archive is unavailable, so poll briefly.
pub const POD_GONE_POLL: Duration = Duration::from_secs(1);

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

/// Decides the next step of a run.
pub fn next(obs: &RunObservation<'_>) -> Step {
    let phase = obs.status.phase.unwrap_or(BackupPhase::Pending);
    if phase.is_finished() {
        return Step::Done;
    }
    if phase == BackupPhase::Pending {
        return begin(obs);
    }
    let Some(policy) = obs.policy else {
        return release_or_fail(obs, Failure::new(FailureReason::PolicyNotFound, "the run has no policy spec"));
    };
    let quiesce = obs.status.quiesce.clone().unwrap_or_default();
    let quiesced = quiesce.quiesced_at.is_some() && quiesce.released_at.is_none();
    let before_release = matches!(
        phase,
        BackupPhase::Quiescing | BackupPhase::CapturingMetadata | BackupPhase::CapturingContent
    );
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
        BackupPhase::Releasing => Step::Release { failure: recorded_failure(obs.status) },
        BackupPhase::Finalizing | BackupPhase::Verifying => finalizing(obs),
        BackupPhase::Pending | BackupPhase::Completed | BackupPhase::Failed => Step::Done,
    }
}

/// When the archive must be released at the latest.
pub fn quiesce_deadline(status: &ArchiveBackupStatus, policy: &BackupPolicySpec) -> Option<DateTime<Utc>> {
    let quiesced_at = status.quiesce.as_ref()?.quiesced_at?;
    Some(quiesced_at + chrono::Duration::seconds(i64::from(policy.quiesce.timeout_seconds)))
}

fn begin(obs: &RunObservation<'_>) -> Step {
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
    Step::Begin
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
    match policy.quiesce.mode {
        QuiesceMode::None => Step::EnterPhase(BackupPhase::CapturingMetadata),
        QuiesceMode::Stop => {
            if quiesce.quiesced_at.is_none() {
                return Step::RecordQuiesceStart { original_replicas: Some(workload.replicas), pods: Vec::new() };
            }
            if workload.replicas != 0 {
                return Step::ScaleToZero;
            }
            if workload.live_pods > 0 {
                let poll = deadline_requeue(obs, policy).map_or(POD_GONE_POLL, |left| left.min(POD_GONE_POLL));
                return Step::Wait {
                    what: format!("{} pod(s) of the target still running after scaling to 0", workload.live_pods),
                    requeue: Some(poll),
                };
            }
            Step::EnterPhase(BackupPhase::CapturingMetadata)
        }
        QuiesceMode::Freeze => {
            if quiesce.quiesced_at.is_none() {
                return Step::RecordQuiesceStart { original_replicas: None, pods: workload.ready_pods.clone() };
            }
            Step::Freeze { pods: quiesce.pods }
        }
    }
}

fn capturing(obs: &RunObservation<'_>, policy: &BackupPolicySpec, stage: CaptureStage) -> Step {
    let mut actions = Vec::new();
    let mut pending = 0usize;
    for (index, item) in obs.plan.iter().enumerate().filter(|(_, i)| i.stage == stage) {
        match obs.snapshots.get(&item.snapshot) {
            Some(snapshot) => {
                if let Some(error) = &snapshot.error {
                    return Step::BeginRelease {
                        failure: Some(Failure::new(
                            FailureReason::SnapshotFailed,
                            format!("VolumeSnapshot {} of claim {} failed: {error}", item.snapshot, item.claim()),
                        )),
                    };
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
                        return Step::BeginRelease {
                            failure: Some(Failure::new(
                                FailureReason::DumpFailed,
                                format!("dump Job {dump_claim} of database {} failed: {message}", sql.database),
                            )),
                        }
                    }
                },
            },
        }
    }
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
        CaptureStage::Metadata => Step::EnterPhase(BackupPhase::CapturingContent),
        CaptureStage::Content => Step::BeginRelease { failure: None },
    }
}

fn finalizing(obs: &RunObservation<'_>) -> Step {
    let mut cleanup = Vec::new();
    let mut not_ready = 0usize;
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
            not_ready += 1;
        } else if let ItemSource::Sql { dump_claim, .. } = &item.source {
            if obs.dump_jobs.contains_key(dump_claim) {
                cleanup.push(CaptureAction::DeleteDump(index));
            }
        }
    }
    if !cleanup.is_empty() {
        return Step::Capture(cleanup);
    }
    if not_ready > 0 {
        return Step::Wait { what: format!("{not_ready} snapshot(s) not ready to use yet"), requeue: Some(IDLE_REQUEUE) };
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

#[cfg(test)]
mod tests;
