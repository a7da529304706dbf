//! What a BackupPolicy's reconcile does: start a scheduled or requested backup, prune by
//! retention, and report its status. Pure: every input is an argument.
//!
//! Rules:
//! - An invalid policy (see `plan::validate`) starts nothing and prunes nothing; `Ready=False`
//!   names the fields.
//! - Never two runs of one policy at once: while a run is unfinished, nothing is started (a
//!   due scheduled run starts when it has finished, late rather than overlapping).
//! - Schedule: at most one missed run is started after downtime ([`super::schedule::due_runs`]);
//!   the older missed ones are counted in `skipped_runs`. A suspended policy starts no
//!   scheduled run; `archivist.dev/backup-now` still works.
//! - Retention runs only when no run is in progress and the newest finished run Completed: a
//!   failed run never triggers pruning of older good backups (nor of itself). A run stuck in
//!   Finalizing or Verifying does not block this forever: `plan::backup` ends it at its
//!   deadline (`snapshotReadyTimeoutSeconds`, `verification.timeoutSeconds`).
//! - Repository maintenance (`export.pruneSchedule`) is decided by [`prune`], restore drills
//!   (`verification.drillSchedule`) by [`drill`].
//! - Retention never prunes a backup that an unfinished RestoreRequest of the namespace reads
//!   from (`restore-source`, see [`super::retention::restores`]) or a `PreRestore` backup
//!   (`pre-restore`).

pub mod drill;
pub mod prune;

use super::names;
use super::retention::cluster::plan_with_cluster;
use super::retention::restores::restore_sources;
use super::retention::{Action, Reason, RetentionCandidate};
use super::schedule::{due_runs, parse_time_zone, Schedule};
use super::conditions;
use crate::api::{
    ArchiveBackup, BackupPhase, BackupPolicySpec, BackupPolicyStatus, BackupReason,
    ClusterRetentionPolicySpec, ConditionStatus, ExportState, PruneState, RestorePhase, RestoreRequest, VerificationState,
};
use super::backup::prune_requested;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The longest a policy waits before it looks at its schedule again.
pub const MAX_REQUEUE: Duration = Duration::from_secs(3600);

/// How often a policy looks at its running repository maintenance Job (its own Job also wakes
/// it when it changes).
pub const PRUNE_POLL: Duration = Duration::from_secs(30);

/// Everything [`decide`] needs.
#[derive(Debug, Clone)]
pub struct PolicyObservation<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// The policy's name.
    pub name: &'a str,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `metadata.creationTimestamp` (the schedule counts from it before the first run).
    pub created: DateTime<Utc>,
    /// The policy's spec.
    pub spec: &'a BackupPolicySpec,
    /// The policy's recorded status.
    pub status: &'a BackupPolicyStatus,
    /// The `archivist.dev/backup-now` annotation's value.
    pub backup_now: Option<&'a str>,
    /// Validation problems (`field: message`).
    pub problems: &'a [String],
    /// Whether the target workload exists.
    pub target_exists: bool,
    /// The policy's ArchiveBackups.
    pub backups: &'a [ArchiveBackup],
    /// The RestoreRequests of the policy's namespace (the unfinished ones protect the backups
    /// they read from).
    pub restores: &'a [RestoreRequest],
    /// The specs of the ClusterRetentionPolicies that select the policy's namespace.
    pub cluster: &'a [ClusterRetentionPolicySpec],
    /// The recorded repository maintenance Job (`status.prune.job`), as observed while it is
    /// Running.
    pub prune_job: Option<&'a super::backup::JobObs>,
    /// The `archivist.dev/drill-now` annotation's value.
    pub drill_now: Option<&'a str>,
    /// The pods of the running drill's copy, when [`drill::copy_pods_needed`] asked for them.
    pub copy_pods: Option<&'a [drill::CopyPod]>,
}

/// A backup to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBackup {
    /// Its deterministic name.
    pub name: String,
    /// Scheduled or Manual.
    pub reason: BackupReason,
}

/// What the reconcile does.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDecision {
    /// A backup to start, if any.
    pub create: Option<NewBackup>,
    /// Missed scheduled runs that are not started (reported in an Event).
    pub skipped_runs: u32,
    /// ArchiveBackups to delete by retention, newest first.
    pub prune: Vec<String>,
    /// Of `prune`, those whose export is in a repository: they are annotated
    /// `archivist.dev/prune` instead of deleted, and delete themselves once their repository
    /// snapshots are forgotten (`plan::backup::exporting::pruning`).
    pub forget_first: Vec<String>,
    /// Of `prune`, how many a cluster ceiling pruned (`max-retention`, `max-restore-points`),
    /// each with the ceiling reasons that pruned it (counted in the cluster policies'
    /// `status.prunedTotal`).
    pub pruned_by_ceilings: Vec<Vec<Reason>>,
    /// The repository maintenance Job to create (its name and scheduled time); recorded in
    /// `status.prune` first.
    pub start_prune: Option<(String, DateTime<Utc>)>,
    /// The restore drill's next action ([`drill`]).
    pub drill: drill::DrillAction,
    /// The status to record.
    pub status: BackupPolicyStatus,
    /// When to look again (the next scheduled time); `None`: on the next change only.
    pub requeue: Option<Duration>,
}

fn time_of(backup: &ArchiveBackup) -> Option<DateTime<Utc>> {
    RetentionCandidate::try_from(backup).ok().map(|c| c.time)
}

fn phase_of(backup: &ArchiveBackup) -> BackupPhase {
    backup.status.as_ref().and_then(|s| s.phase).unwrap_or(BackupPhase::Pending)
}

fn newest<'a>(backups: impl Iterator<Item = &'a ArchiveBackup>) -> Option<&'a ArchiveBackup> {
    backups.max_by_key(|b| (time_of(b), b.metadata.name.clone()))
}

/// Decides the reconcile of one BackupPolicy.
pub fn decide(obs: &PolicyObservation<'_>) -> PolicyDecision {
    let mut status = obs.status.clone();
    status.observed_generation = obs.generation;
    let now = obs.now;
    let generation = obs.generation;
    let completed = || obs.backups.iter().filter(|b| phase_of(b) == BackupPhase::Completed);
    let verified = |b: &&ArchiveBackup| {
        b.status.as_ref().and_then(|s| s.verification.as_ref()).is_some_and(|v| v.state == VerificationState::Passed)
    };
    status.last_backup = newest(obs.backups.iter()).and_then(|b| b.metadata.name.clone());
    status.last_successful_backup = newest(completed()).and_then(|b| b.metadata.name.clone());
    status.last_verified_backup = newest(completed().filter(verified)).and_then(|b| b.metadata.name.clone());
    let (suspended, why) = if obs.spec.suspend {
        (ConditionStatus::True, "spec.suspend is true: scheduled backups do not run")
    } else {
        (ConditionStatus::False, "scheduled backups run")
    };
    conditions::set(&mut status.conditions, "Suspended", suspended, if obs.spec.suspend { "Suspended" } else { "Active" }, why, now, generation);

    let mut decision = PolicyDecision { create: None, skipped_runs: 0, prune: Vec::new(), forget_first: Vec::new(), pruned_by_ceilings: Vec::new(), start_prune: None, drill: drill::DrillAction::None, status, requeue: None };
    let set_ready = |d: &mut PolicyDecision, status, reason: &str, message: String| {
        conditions::set(&mut d.status.conditions, "Ready", status, reason, message, now, generation);
    };
    if !obs.problems.is_empty() {
        decision.status.next_schedule_time = None;
        decision.status.restore_points = Some(count(completed()));
        set_ready(&mut decision, ConditionStatus::False, "InvalidSpec", obs.problems.join("; "));
        decide_drill(obs, &mut decision, false);
        return decision;
    }
    let active = obs.backups.iter().any(|b| !phase_of(b).is_finished());

    // Schedule.
    decision.status.next_schedule_time = None;
    let schedule = obs.spec.schedule.as_deref().and_then(|expr| Schedule::parse(expr, &obs.spec.time_zone).ok());
    if let (Some(schedule), false) = (&schedule, obs.spec.suspend) {
        let due = due_runs(schedule, obs.status.last_schedule_time, obs.created, now);
        decision.status.next_schedule_time = due.next;
        if let (Some(at), false, true) = (due.run_now, active, obs.target_exists) {
            decision.create = Some(NewBackup { name: names::scheduled_backup_name(obs.name, at), reason: BackupReason::Scheduled });
            decision.status.last_schedule_time = Some(at);
            decision.skipped_runs = due.skipped;
        }
        decision.requeue = due.next.map(|next| (next - now).to_std().unwrap_or(Duration::from_secs(1)).clamp(Duration::from_secs(1), MAX_REQUEUE));
    }

    // Manual request.
    if let Some(request) = obs.backup_now {
        let new_request = obs.status.last_backup_now_request.as_deref() != Some(request);
        if new_request && !active && decision.create.is_none() && obs.target_exists {
            decision.create = Some(NewBackup { name: names::manual_backup_name(obs.name, request), reason: BackupReason::Manual });
            decision.status.last_backup_now_request = Some(request.to_string());
        }
    }

    // Retention.
    let newest_finished = newest(obs.backups.iter().filter(|b| phase_of(b).is_finished()));
    let last_run_completed = newest_finished.is_some_and(|b| phase_of(b) == BackupPhase::Completed);
    // Not while a run exports: a pruned run's `restic forget` takes the repository's exclusive
    // lock, which would fail the export.
    let exporting = obs.backups.iter().any(|b| b.status.as_ref().is_some_and(super::export::in_flight));
    if !active && !exporting && decision.create.is_none() && last_run_completed {
        if let Ok(tz) = parse_time_zone(&obs.spec.time_zone) {
            let sources = restore_sources(obs.restores, obs.backups);
            // A run already pruned (forgetting its repository snapshots) is on its way out.
            let candidates: Vec<RetentionCandidate> = obs
                .backups
                .iter()
                .filter(|b| !prune_requested(b))
                .filter_map(|b| RetentionCandidate::try_from(b).ok())
                .map(|c| c.reading(&sources))
                .collect();
            let pruned: Vec<_> = plan_with_cluster(&obs.spec.retention, tz, &candidates, now, obs.cluster)
                .into_iter()
                .filter(|d| d.action == Action::Prune)
                .collect();
            decision.pruned_by_ceilings = pruned
                .iter()
                .map(|d| d.reasons.iter().copied().filter(|r| matches!(r, Reason::MaxRetention | Reason::MaxRestorePoints)).collect::<Vec<_>>())
                .filter(|ceilings| !ceilings.is_empty())
                .collect();
            decision.prune = pruned.into_iter().map(|d| d.name).collect();
            decision.forget_first = obs
                .backups
                .iter()
                .filter(|b| b.metadata.name.as_ref().is_some_and(|n| decision.prune.contains(n)))
                .filter(|b| b.status.as_ref().and_then(|s| s.export.as_ref()).is_some_and(|e| e.state == ExportState::Exported))
                .filter_map(|b| b.metadata.name.clone())
                .collect();
        }
    }
    decision.status.restore_points = Some(count(
        completed().filter(|b| !prune_requested(b)).filter(|b| b.metadata.name.as_ref().is_none_or(|n| !decision.prune.contains(n))),
    ));

    // Repository maintenance: not while a run exports or forgets (or is about to forget), nor
    // while a restore of the namespace reads the same repository.
    let secret = obs.spec.export.as_ref().map(|e| e.repository_secret.as_str());
    let restoring_from_it = obs.restores.iter().any(|r| {
        let status = r.status.as_ref();
        let ended = matches!(status.and_then(|s| s.phase), Some(RestorePhase::Completed | RestorePhase::Failed));
        let reads = status.and_then(|s| s.repository.as_ref()).map(|x| x.secret_name.as_str()).or(r.spec.source.repository.as_ref().map(|x| x.secret_name.as_str()));
        !ended && reads.is_some() && reads == secret
    });
    let in_use = exporting || restoring_from_it || obs.backups.iter().any(prune_requested) || !decision.forget_first.is_empty();
    let maintenance = prune::decide(&prune::PruneObs {
        now,
        created: obs.created,
        spec: obs.spec,
        recorded: obs.status.prune.as_ref(),
        job: obs.prune_job,
        repository_in_use: in_use,
    });
    decision.status.prune = maintenance.status;
    decision.status.next_prune_time = maintenance.next;
    decision.start_prune = maintenance.start;
    let running = decision.status.prune.as_ref().is_some_and(|p| p.state == PruneState::Running);
    // While it runs, look again now and then (a shared Job is not this policy's to watch);
    // else at the next due time.
    let prune_requeue = if running { Some(PRUNE_POLL) } else { maintenance.next.map(|next| (next - now).to_std().unwrap_or(Duration::from_secs(1)).clamp(Duration::from_secs(1), MAX_REQUEUE)) };
    decision.requeue = super::sooner(decision.requeue, prune_requeue);

    decide_drill(obs, &mut decision, obs.target_exists);
    if obs.target_exists {
        set_ready(&mut decision, ConditionStatus::True, "Ready", "the spec is valid and the target exists".to_string());
    } else {
        set_ready(
            &mut decision,
            ConditionStatus::False,
            "TargetNotFound",
            format!("{:?} {} does not exist; no backup is started", obs.spec.target.kind, obs.spec.target.name),
        );
        // No poll: the target's coming is an event of the operator's workload cache, which
        // wakes the policy (`controllers::caches`).
    }
    decision
}

/// The drill's part of the decision ([`drill::decide`]); a new drill only when `may_start`.
fn decide_drill(obs: &PolicyObservation<'_>, decision: &mut PolicyDecision, may_start: bool) {
    let drilled = drill::decide(
        &drill::DrillObs {
            now: obs.now,
            created: obs.created,
            policy: obs.name,
            spec: obs.spec,
            drill_now: obs.drill_now,
            may_start,
            backups: obs.backups,
            restores: obs.restores,
            copy_pods: obs.copy_pods,
        },
        &mut decision.status,
    );
    decision.drill = drilled.action;
    decision.requeue = super::sooner(decision.requeue, drilled.requeue);
}

fn count<'a>(backups: impl Iterator<Item = &'a ArchiveBackup>) -> u32 {
    u32::try_from(backups.count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
