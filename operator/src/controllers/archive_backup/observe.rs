//! Observe: everything the backup state machine decides from.

use super::super::error::{Context as _, Error};
use super::super::Context;
use crate::api::{ArchiveBackup, BackupPhase, BackupPolicy, BackupPolicySpec, ExportState};
use crate::plan::backup::exporting::ExportObs;
use crate::plan::export;
use crate::kube::snapshot::VolumeSnapshot;
use crate::kube::workload::{self, Target};
use crate::kube::dump;
use crate::kube::redact::LazyRedactor;
use crate::kube::jobs;
use super::super::caches::Children;
use crate::plan::backup::{self, JobObs, RunObservation, SnapshotObs, Step, RELEASE_FINALIZER};
use crate::plan::capture::{capture_plan, recorded_plan, PlannedItem};
use crate::plan::claim::{ClaimObs, Holder};
use chrono::{DateTime, Utc};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;

/// What was observed for one run.
pub struct Observed {
    /// The namespace of the run.
    pub namespace: String,
    /// The run's name.
    pub name: String,
    /// The run's uid.
    pub uid: String,
    /// When the observation was made.
    pub now: DateTime<Utc>,
    /// The policy spec the run uses (the recorded copy once started).
    pub policy: Option<BackupPolicySpec>,
    /// The target workload.
    pub target: Option<Target>,
    /// The capture plan.
    pub plan: Vec<PlannedItem>,
    /// The run's snapshots by name.
    pub snapshots: BTreeMap<String, VolumeSnapshot>,
    /// The run's dump Jobs by name.
    pub jobs: BTreeMap<String, JobObs>,
    /// The verify Job.
    pub verify_job: Option<JobObs>,
    /// The scratch PVCs of verification by name, `true` when bound.
    pub verify_claims: BTreeMap<String, bool>,
    /// The export Job.
    pub export_job: Option<JobObs>,
    /// The export's scratch PVCs by name, `true` when bound.
    pub export_claims: BTreeMap<String, bool>,
    /// The export Job's log, once it succeeded.
    export_log: Option<String>,
    /// The export's repository (redacted), or why it cannot be used; read while `Pending`.
    export_repository: Option<Result<String, String>>,
    /// Another run exporting to the same repository now (`<namespace>/<name>`).
    other_export: Option<String>,
    /// Whether retention pruned the run (`archivist.dev/prune`).
    prune_requested: bool,
    /// The Job forgetting a pruned run's repository snapshots.
    pub forget_job: Option<JobObs>,
    /// Another unfinished run of the same policy.
    pub other_active_run: Option<String>,
    /// Validation problems of the policy (`field: message`).
    pub policy_problems: Vec<String>,
    /// Replaces the values of the Secrets the run references in hook stderr and Job logs.
    pub redactor: LazyRedactor,
    /// Validation problems of the ArchiveBackup itself (`field: message`).
    pub spec_problems: Vec<String>,
    /// This run as a claim holder (`<namespace>/<name>`).
    pub holder: Holder,
    /// The target's claim as this run sees it.
    pub claim: ClaimObs,
    /// Whether the ArchiveBackup is being deleted.
    pub deleting: bool,
    /// Whether the ArchiveBackup has the release finalizer.
    pub has_release_finalizer: bool,
    snapshot_obs: BTreeMap<String, SnapshotObs>,
    status: crate::api::ArchiveBackupStatus,
}

/// Where a pending run reads the other runs of its policy from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherRuns {
    /// The shared ArchiveBackup cache (`controllers::caches`): no request.
    Cached,
    /// A LIST: before the run begins (a side effect), since a cache that does not show yet a
    /// run that began meanwhile would let two runs of one policy start.
    Fresh,
}

/// Reads the policy (until the run recorded it), the target (a GET and its pods: the claim,
/// the replicas and the pods to hook must be current), the run's children from the shared
/// index, and other runs of the policy (as `runs` says).
pub async fn observe(backup: &ArchiveBackup, ctx: &Context, runs: OtherRuns) -> Result<Observed, Error> {
    let namespace = backup.namespace().ok_or_else(|| Error::MissingNamespace(backup.name_any()))?;
    let name = backup.name_any();
    let client = &ctx.client;
    let status = backup.status.clone().unwrap_or_default();
    let policy = match status.policy_spec.clone() {
        Some(spec) => Some(*spec),
        None => Api::<BackupPolicy>::namespaced(client.clone(), &namespace)
            .get_opt(&backup.spec.policy_name)
            .await
            .during(|| format!("failed to read BackupPolicy {namespace}/{}", backup.spec.policy_name))?
            .map(|p| p.spec),
    };
    let target = match &policy {
        Some(p) => workload::observe(client, &namespace, &p.target)
            .await
            .during(|| format!("failed to read target {:?} {namespace}/{}", p.target.kind, p.target.name))?,
        None => None,
    };
    let begun = status.phase.is_some_and(|p| p != BackupPhase::Pending);
    let plan = match (&policy, &target) {
        // Frozen at the start: a target that scales or vanishes mid-run cannot shrink it.
        (Some(p), _) if begun => recorded_plan(&status.items, p),
        (Some(p), Some(t)) => capture_plan(&name, p, &t.shape),
        _ => Vec::new(),
    };
    // What the run made carries the label `archivist.dev/backup: <name>`, and is read from the
    // index of the unfinished runs' children (`controllers::caches::RunChildren`), which woke
    // this reconcile when it changed. A name too long for a label value cannot carry it: such a
    // run never made anything, and fails `InvalidSpec` before it begins (`spec_problems`).
    let label_safe = name.len() <= crate::plan::validate::names::LABEL_VALUE_MAX;
    let children = if label_safe { ctx.caches.children.of(&namespace, &name) } else { Children::default() };
    let snapshots = children.snapshots;
    let snapshot_obs = snapshots.iter().map(|(n, s)| (n.clone(), s.observe())).collect();
    // The Secrets are read only if there is something to redact (a failed Job, a hook).
    let redactor = LazyRedactor::new(client, &namespace, policy.as_ref().map(dump::referenced_secrets).unwrap_or_default());
    let mut jobs = jobs::observe_all(client, &namespace, children.jobs.values(), &redactor)
        .await
        .during(|| format!("failed to read why a Job of {namespace}/{name} failed"))?;
    let verify_job = jobs.remove(&backup::verify_job_name(&name));
    let bound_with_prefix = |prefix: String| -> BTreeMap<String, bool> {
        children
            .claims
            .iter()
            .filter(|(claim, _)| claim.starts_with(&prefix))
            .map(|(claim, c)| (claim.clone(), c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")))
            .collect()
    };
    let verify_claims = bound_with_prefix(format!("{name}-verify-"));
    let export_job_name = export::export_job_name(&name);
    let export_job = jobs.remove(&export_job_name);
    let forget_job = jobs.remove(&export::forget_job_name(&name));
    let export_claims = bound_with_prefix(format!("{name}-export-"));
    let export_state = status.export.as_ref().map(|e| e.state);
    // The Job's result lines: read once, when it succeeded and before they are recorded.
    let export_log = if export_state == Some(ExportState::Running) && export_job == Some(JobObs::Succeeded) {
        jobs::job_log(client, &namespace, &export_job_name)
            .await
            .during(|| format!("failed to read the log of export Job {namespace}/{export_job_name}"))?
    } else {
        None
    };
    // The repository, when the export starts: a fresh GET (a Secret is not cached).
    let export_repository = match (export_state, policy.as_ref().and_then(|p| p.export.as_ref())) {
        (Some(ExportState::Pending), Some(spec)) => Some(
            crate::kube::export::repository(client, &namespace, &spec.repository_secret)
                .await
                .during(|| format!("failed to read Secret {namespace}/{} (export.repositorySecret)", spec.repository_secret))?,
        ),
        _ => None,
    };
    let other_export = match (&export_repository, policy.as_ref().and_then(|p| p.export.as_ref())) {
        (Some(Ok(repository)), Some(spec)) => match ctx.caches.export_running_to(repository, &namespace, &name) {
            Some(run) => Some(format!("{run} is exporting to {repository}")),
            // A prune or forget Job holds the repository's exclusive lock: one list of the
            // namespace's Jobs of that Secret, only while the export is Pending.
            None => crate::kube::export::running_exclusive_job(client, &namespace, &spec.repository_secret)
                .await
                .during(|| format!("failed to list the maintenance Jobs of {namespace}/{}", spec.repository_secret))?
                .map(|job| format!("the maintenance Job {job} of {repository} runs")),
        },
        _ => None,
    };
    let phase = status.phase.unwrap_or(BackupPhase::Pending);
    let other_active_run = if phase == BackupPhase::Pending {
        let runs: Vec<ArchiveBackup> = match runs {
            OtherRuns::Cached => ctx.caches.backups_of(&namespace, &backup.spec.policy_name),
            OtherRuns::Fresh => Api::<ArchiveBackup>::namespaced(client.clone(), &namespace)
                .list(&ListParams::default())
                .await
                .during(|| format!("failed to list ArchiveBackups in {namespace}"))?
                .items,
        };
        runs.into_iter()
            .filter(|b| b.name_any() != name && b.spec.policy_name == backup.spec.policy_name)
            .find(|b| {
                let other_phase = b.status.as_ref().and_then(|s| s.phase).unwrap_or(BackupPhase::Pending);
                // Started runs block; of two pending runs the older (then smaller name) goes first.
                !other_phase.is_finished()
                    && (other_phase != BackupPhase::Pending
                        || (b.metadata.creation_timestamp.as_ref().map(|t| t.0), b.name_any())
                            < (backup.metadata.creation_timestamp.as_ref().map(|t| t.0), name.clone()))
            })
            .map(|b| b.name_any())
    } else {
        None
    };
    let policy_problems = policy
        .as_ref()
        .map(|p| crate::plan::validate::validate_backup_policy(p).iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let spec_problems = crate::plan::validate::validate_archive_backup_object(backup).iter().map(ToString::to_string).collect();
    let holder = Holder::backup(&namespace, &name);
    let claim = ClaimObs::of(target.as_ref().and_then(|t| t.claim_holder()), &holder);
    Ok(Observed {
        spec_problems,
        holder,
        claim,
        deleting: backup.metadata.deletion_timestamp.is_some(),
        has_release_finalizer: backup.finalizers().iter().any(|f| f == RELEASE_FINALIZER),
        policy_problems,
        redactor,
        namespace,
        name,
        uid: backup.uid().unwrap_or_default(),
        now: Utc::now(),
        policy,
        target,
        plan,
        snapshots,
        jobs,
        verify_job,
        verify_claims,
        export_job,
        export_claims,
        export_log,
        export_repository,
        other_export,
        prune_requested: backup::prune_requested(backup),
        forget_job,
        other_active_run,
        snapshot_obs,
        status,
    })
}

impl Observed {
    /// The repository the run's export went to, as recorded (credentials removed).
    pub fn status_export_repository(&self) -> Option<String> {
        self.status.export.as_ref().and_then(|e| e.repository.clone())
    }

    /// Decides the next step (pure: `plan::backup::next`).
    pub fn next_step(&self, ctx: &Context) -> Step {
        backup::next(&self.run_observation(ctx))
    }

    /// Whether releasing now completes the run at once (pure:
    /// `plan::backup::completes_at_release`).
    pub fn completes_at_release(&self, ctx: &Context) -> bool {
        backup::completes_at_release(&self.run_observation(ctx))
    }

    fn run_observation(&self, ctx: &Context) -> RunObservation<'_> {
        let phase = self.status.phase.unwrap_or(BackupPhase::Pending);
        let active = !phase.is_finished() && phase != BackupPhase::Pending;
        RunObservation {
            now: self.now,
            backup_name: &self.name,
            verify_claims: &self.verify_claims,
            verify_job: self.verify_job.as_ref(),
            status: &self.status,
            policy: self.policy.as_ref(),
            resumed_after_restart: active && !ctx.drives(&self.uid),
            deleting: self.deleting,
            shutting_down: ctx.is_shutting_down(),
            has_release_finalizer: self.has_release_finalizer,
            claim: &self.claim,
            spec_problems: &self.spec_problems,
            policy_problems: &self.policy_problems,
            other_active_run: self.other_active_run.as_deref(),
            workload: self.target.as_ref().map(|t| &t.obs),
            plan: &self.plan,
            snapshots: &self.snapshot_obs,
            dump_jobs: &self.jobs,
            export: ExportObs {
                claims: &self.export_claims,
                job: self.export_job.as_ref(),
                log: self.export_log.as_deref(),
                repository: self.export_repository.as_ref(),
                other_export: self.other_export.as_deref(),
                prune_requested: self.prune_requested,
                forget_job: self.forget_job.as_ref(),
            },
        }
    }
}
