//! Restore drills (`verification.drillSchedule`, annotation `archivist.dev/drill-now`): when
//! one starts, which backup it restores, and its one next step. Pure: every input is an
//! argument.
//!
//! Rules:
//! - **Due:** at each time of `drillSchedule` in the policy's `timeZone` (missed times start
//!   one drill, not one each: [`due_runs`]), or on a new value of `archivist.dev/drill-now`.
//!   An invalid policy, or one whose target is gone, starts none; a drill already running
//!   still finishes and is torn down.
//! - **One at a time:** while the recorded drill (`status.lastDrill`) is not torn down, or its
//!   request is still being deleted, a due drill waits (late rather than overlapping). Each
//!   drill starts at least a second after the last one, so its request name is its own.
//! - **Never beside a backup or a restore of the same workload:** a due drill is skipped, with
//!   the Event `DrillSkipped`, while a run of the policy or a RestoreRequest of one of its
//!   backups is unfinished (the drill never touches the original; the rule keeps it from
//!   competing with them for the snapshots and the nodes).
//! - **What it drills:** the newest Completed backup that has settled
//!   (`plan::backup::is_settled`): the run writes nothing to it any more, so the drill's
//!   evidence on it is never overwritten by a stale write of the run. None: skipped.
//! - **Steps:** [`DrillAction::Start`] records `lastDrill` as `Running` before anything is
//!   created; [`DrillAction::CreateRequest`] creates the SideBySide RestoreRequest (a
//!   deterministic name, so a repeat finds it); the drill waits for it to complete, then for a
//!   Ready pod of the copy; [`DrillAction::Probe`] checks the copy; the result is recorded
//!   (`Passed` or `Failed`); [`DrillAction::TearDown`] deletes what the drill restored; then
//!   the drill is recorded torn down and kept in `recentDrills`.
//! - **Databases:** a drill restores SQL dumps into new databases named with its own suffix
//!   ([`database_suffix`]); its teardown drops exactly those whose restore Job succeeded (the
//!   restore script refuses a database that exists, so a succeeded Job created it), before it
//!   deletes the request that records them (`kube::drill::tear_down`).
//! - **Deadline:** `verification.timeoutSeconds` from the start; a drill still waiting then
//!   fails.

use super::super::backup::{is_settled, prune_requested};
use super::super::names::{fit, MAX_LABEL_NAME};
use super::super::schedule::{due_runs, Schedule};
use super::super::sooner;
use crate::api::{
    ArchiveBackup, BackupPhase, BackupPolicy, BackupPolicySpec, BackupPolicyStatus, DrillState, DrillStatus, RestorePhase, RestoreRequest,
};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The label on a drill's RestoreRequest: the policy's name.
pub const DRILL_LABEL: &str = "archivist.dev/drill";
/// The annotation that starts a drill now (any new value).
pub const DRILL_NOW: &str = "archivist.dev/drill-now";
/// How many finished drills `status.recentDrills` keeps.
pub const RECENT_DRILLS: usize = 10;
/// The most of a probe's output recorded.
pub const OUTPUT_LIMIT: usize = 4096;

/// The RestoreRequest of a drill of `policy` started at `at`.
pub fn request_name(policy: &str, at: DateTime<Utc>) -> String {
    fit(&format!("{policy}-drill-{}", at.format("%Y%m%d%H%M%S")), MAX_LABEL_NAME)
}

/// The `sqlTarget.databaseSuffix` of a drill started at `started`: `_d<yyyymmddhhmmss>`,
/// its own per drill of a policy (see [`start_time`]).
pub fn database_suffix(started: DateTime<Utc>) -> String {
    format!("_d{}", started.format("%Y%m%d%H%M%S"))
}

/// The length of [`database_suffix`]: a source database name may be at most 63 minus this.
pub const DATABASE_SUFFIX_LEN: usize = 16;

/// A pod of the drill's copy, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPod {
    /// The pod's name.
    pub name: String,
    /// `status.podIP`.
    pub ip: Option<String>,
    /// Whether its `Ready` condition is True.
    pub ready: bool,
}

/// What a drill is decided from.
#[derive(Debug, Clone, Copy)]
pub struct DrillObs<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// `metadata.creationTimestamp` of the policy (the schedule counts from it at first).
    pub created: DateTime<Utc>,
    /// The policy's name.
    pub policy: &'a str,
    /// The policy's spec.
    pub spec: &'a BackupPolicySpec,
    /// The value of `archivist.dev/drill-now`.
    pub drill_now: Option<&'a str>,
    /// Whether a new drill may start: the spec is valid and the target exists.
    pub may_start: bool,
    /// The policy's ArchiveBackups.
    pub backups: &'a [ArchiveBackup],
    /// The RestoreRequests of the policy's namespace.
    pub restores: &'a [RestoreRequest],
    /// The pods of the recorded drill's copy, when [`copy_pods_needed`] asked for them.
    pub copy_pods: Option<&'a [CopyPod]>,
}

/// The one thing a drill does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrillAction {
    /// Nothing.
    None,
    /// A drill of `backup` starts: `lastDrill` (Running) is recorded first; publish
    /// `DrillStarted` and mark the backup's `status.drill`.
    Start {
        /// The backup drilled.
        backup: String,
    },
    /// A due drill is skipped (its time or request is recorded): publish `DrillSkipped`.
    Skip {
        /// Why, in words.
        why: String,
    },
    /// Create the drill's RestoreRequest (already recorded in `lastDrill`).
    CreateRequest {
        /// Its name.
        request: String,
        /// The backup it restores.
        backup: String,
    },
    /// Check the copy through `pod` (the probe runs, then its result is recorded).
    Probe {
        /// The RestoreRequest.
        request: String,
        /// A Ready pod of the copy.
        pod: String,
        /// Its IP.
        ip: Option<String>,
    },
    /// The drill failed before any probe (recorded in `lastDrill`): publish `DrillFailed` and
    /// mark the backup's `status.drill`.
    Failed,
    /// Delete what the drill restored, then record it torn down ([`torn_down`]).
    TearDown {
        /// The drill's RestoreRequest.
        request: String,
    },
}

impl DrillAction {
    /// Whether acting on it writes anything: such an action is decided again from a fresh
    /// read of the policy when the cached one was stale.
    pub fn has_side_effect(&self) -> bool {
        !matches!(self, DrillAction::None)
    }
}

/// The drill decision: the action, and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillDecision {
    /// What to do.
    pub action: DrillAction,
    /// When to look again (a deadline, the next scheduled drill, a copy's readiness).
    pub requeue: Option<Duration>,
}

/// The drill's RestoreRequest whose copy's pods must be observed before deciding: the
/// recorded drill is Running and its request Completed.
pub fn copy_pods_needed<'a>(status: &'a BackupPolicyStatus, restores: &[RestoreRequest]) -> Option<&'a str> {
    let drill = status.last_drill.as_ref().filter(|d| d.state == DrillState::Running)?;
    let request = find(restores, &drill.restore_request)?;
    (phase(request) == Some(RestorePhase::Completed)).then_some(drill.restore_request.as_str())
}

fn find<'a>(restores: &'a [RestoreRequest], name: &str) -> Option<&'a RestoreRequest> {
    restores.iter().find(|r| r.metadata.name.as_deref() == Some(name))
}

fn phase(request: &RestoreRequest) -> Option<RestorePhase> {
    request.status.as_ref().and_then(|s| s.phase)
}

fn backup_phase(backup: &ArchiveBackup) -> BackupPhase {
    backup.status.as_ref().and_then(|s| s.phase).unwrap_or(BackupPhase::Pending)
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO).max(Duration::from_secs(1))
}

/// Decides the drill of a policy, updating `status` (`lastDrill`, the schedule fields).
pub fn decide(obs: &DrillObs<'_>, status: &mut BackupPolicyStatus) -> DrillDecision {
    let verification = obs.spec.verification.as_ref();
    let schedule = verification.and_then(|v| v.drill_schedule.as_deref()).and_then(|e| Schedule::parse(e, &obs.spec.time_zone).ok());
    let due = schedule.as_ref().map(|s| due_runs(s, status.last_drill_schedule_time, obs.created, obs.now));
    status.next_drill_time = due.as_ref().and_then(|d| d.run_now.or(d.next));
    let next_requeue = due.as_ref().and_then(|d| d.next).map(|next| until(obs.now, next));
    let with = |action: DrillAction, requeue: Option<Duration>| DrillDecision { action, requeue: sooner(requeue, next_requeue) };

    if let Some(drill) = status.last_drill.clone().filter(|d| !d.torn_down) {
        let (action, requeue) = ongoing(obs, status, drill);
        return with(action, requeue).with_deadline(obs, status);
    }
    let last_request = status.last_drill.as_ref().and_then(|d| find(obs.restores, &d.restore_request));
    if last_request.is_some_and(|r| made_by_drill(r, obs.policy)) {
        // The last drill's request is still being deleted (its deletion wakes the policy): the
        // next drill waits, so two drills' objects never overlap.
        return with(DrillAction::None, None);
    }
    let scheduled = due.as_ref().and_then(|d| d.run_now);
    let requested = obs.drill_now.filter(|r| status.last_drill_now_request.as_deref() != Some(*r));
    if scheduled.is_none() && requested.is_none() {
        return with(DrillAction::None, None);
    }
    if !obs.may_start || verification.is_none() {
        // Not recorded: the drill starts once the policy is valid and its target exists.
        return with(DrillAction::None, None);
    }
    if let Some(until_settled) = settling(obs) {
        // Not recorded: the drill waits for the run to settle (its change wakes the policy).
        return with(DrillAction::None, Some(until_settled));
    }
    if let Some(at) = scheduled {
        status.last_drill_schedule_time = Some(at);
    }
    if let Some(request) = requested {
        status.last_drill_now_request = Some(request.to_string());
    }
    status.next_drill_time = due.as_ref().and_then(|d| d.next);
    if let Some(why) = busy(obs) {
        return with(DrillAction::Skip { why }, None);
    }
    let Some(backup) = drillable(obs.backups) else {
        return with(DrillAction::Skip { why: "no settled Completed backup to drill".into() }, None);
    };
    let backup = backup.metadata.name.clone().unwrap_or_default();
    let started = start_time(obs.now, status.last_drill.as_ref());
    status.last_drill = Some(DrillStatus {
        state: DrillState::Running,
        backup: backup.clone(),
        restore_request: request_name(obs.policy, started),
        started_at: started,
        finished_at: None,
        message: None,
        output: None,
        torn_down: false,
    });
    with(DrillAction::Start { backup }, None)
}

/// A drill's start time: `now` in whole seconds, and at least a second after the last drill's
/// start, so each drill of a policy has its own request name (and history entry) even when
/// two start within one second.
fn start_time(now: DateTime<Utc>, last: Option<&DrillStatus>) -> DateTime<Utc> {
    let whole = DateTime::<Utc>::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    match last {
        Some(last) => whole.max(last.started_at + chrono::Duration::seconds(1)),
        None => whole,
    }
}

impl DrillDecision {
    /// A Running drill looks again at its deadline at the latest.
    fn with_deadline(mut self, obs: &DrillObs<'_>, status: &BackupPolicyStatus) -> Self {
        if let Some(drill) = status.last_drill.as_ref().filter(|d| d.state == DrillState::Running) {
            let at = drill.started_at + chrono::Duration::seconds(i64::from(timeout_seconds(obs.spec)));
            self.requeue = sooner(self.requeue, Some(until(obs.now, at)));
        }
        self
    }
}

fn timeout_seconds(spec: &BackupPolicySpec) -> u32 {
    spec.verification.as_ref().map_or(1800, |v| v.timeout_seconds)
}

/// The next step of the recorded drill (not torn down yet), and when to look again.
fn ongoing(obs: &DrillObs<'_>, status: &mut BackupPolicyStatus, drill: DrillStatus) -> (DrillAction, Option<Duration>) {
    if drill.state != DrillState::Running {
        return (DrillAction::TearDown { request: drill.restore_request }, None);
    }
    let deadline = drill.started_at + chrono::Duration::seconds(i64::from(timeout_seconds(obs.spec)));
    let fail = |status: &mut BackupPolicyStatus, message: String| {
        status.last_drill = Some(finish(&drill, false, message, None, obs.now));
        DrillAction::Failed
    };
    let Some(request) = find(obs.restores, &drill.restore_request) else {
        if obs.now >= deadline {
            return (fail(status, format!("timed out after {}s: RestoreRequest {} was never seen", timeout_seconds(obs.spec), drill.restore_request)), None);
        }
        return (DrillAction::CreateRequest { request: drill.restore_request.clone(), backup: drill.backup.clone() }, None);
    };
    if !made_by_drill(request, obs.policy) {
        return (fail(status, format!("RestoreRequest {} exists and was not made by this policy's drill; it is left as it is", drill.restore_request)), None);
    }
    // The request's changes wake the policy, and so do its copy's pods ([`waiting_on`]).
    let waiting = match phase(request) {
        Some(RestorePhase::Failed) => {
            let why = request.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_else(|| "no reason given".into());
            return (fail(status, format!("the restore failed: {why}")), None);
        }
        Some(RestorePhase::Completed) => {
            let pods = obs.copy_pods.unwrap_or_default();
            if let Some(pod) = pods.iter().filter(|p| p.ready).min_by(|a, b| a.name.cmp(&b.name)) {
                return (DrillAction::Probe { request: drill.restore_request.clone(), pod: pod.name.clone(), ip: pod.ip.clone() }, None);
            }
            format!("a Ready pod of the restored copy ({} pod(s), none Ready)", pods.len())
        }
        other => format!("RestoreRequest {} to complete (phase {})", drill.restore_request, other.map_or("Pending".to_string(), |p| format!("{p:?}"))),
    };
    if obs.now >= deadline {
        return (fail(status, format!("timed out after {}s waiting for {waiting}", timeout_seconds(obs.spec))), None);
    }
    (DrillAction::None, None)
}

/// The policy of `policies` (in `namespace`) whose recorded drill is followed through
/// RestoreRequest `request`, not yet torn down: the one a pod or Job labelled
/// `archivist.dev/restore: <request>` wakes (the copy's pods becoming Ready, the teardown's
/// database drop Jobs ending). `None` for any other restore's objects.
pub fn waiting_on<'a>(policies: impl IntoIterator<Item = &'a BackupPolicy>, namespace: &str, request: &str) -> Option<&'a BackupPolicy> {
    policies.into_iter().find(|p| {
        let drill = p.status.as_ref().and_then(|s| s.last_drill.as_ref());
        p.metadata.namespace.as_deref() == Some(namespace) && drill.is_some_and(|d| d.restore_request == request && !d.torn_down)
    })
}

/// Whether `request` is a drill request of `policy` (labelled `archivist.dev/drill: <policy>`):
/// only such a request is followed, and torn down.
pub fn made_by_drill(request: &RestoreRequest, policy: &str) -> bool {
    request.metadata.labels.as_ref().and_then(|l| l.get(DRILL_LABEL)).map(String::as_str) == Some(policy)
}

/// Why a drill cannot run now: a run of the policy, or a restore of one of its backups, is
/// unfinished.
fn busy(obs: &DrillObs<'_>) -> Option<String> {
    if let Some(run) = obs.backups.iter().find(|b| !backup_phase(b).is_finished()) {
        return Some(format!("backup {} is running", run.metadata.name.clone().unwrap_or_default()));
    }
    let ours = |name: &str| obs.backups.iter().any(|b| b.metadata.name.as_deref() == Some(name));
    let restore = obs.restores.iter().find(|r| {
        let status = r.status.as_ref();
        let finished = matches!(status.and_then(|s| s.phase), Some(RestorePhase::Completed | RestorePhase::Failed));
        let source = status.and_then(|s| s.resolved_backup.as_deref()).or(r.spec.source.backup_name.as_deref());
        let of_policy = r.spec.source.policy_name.as_deref() == Some(obs.policy);
        !finished && (source.is_some_and(ours) || of_policy)
    });
    restore.map(|r| format!("RestoreRequest {} of this policy's backups is running", r.metadata.name.clone().unwrap_or_default()))
}

/// How long a due drill waits for a Completed run of the policy that has finished but not
/// settled yet (its release finalizer is still on, or its export is under way): the drill
/// restores the newest settled Completed backup, which that run is about to be, so a drill
/// requested right after a backup drills that backup rather than being skipped or drilling an
/// older one. The wait ends when the run settles (its change wakes the policy) or at the
/// latest `verification.timeoutSeconds` after the run's completion (a run that never settles
/// must not hold drills back forever); `None` when there is nothing to wait for.
fn settling(obs: &DrillObs<'_>) -> Option<Duration> {
    let limit = chrono::Duration::seconds(i64::from(timeout_seconds(obs.spec)));
    obs.backups
        .iter()
        .filter(|b| backup_phase(b) == BackupPhase::Completed && !is_settled(b) && !prune_requested(b))
        .filter_map(|b| {
            let deadline = b.status.as_ref()?.completion_time? + limit;
            (obs.now < deadline).then(|| until(obs.now, deadline))
        })
        .min()
}

/// The backup a drill restores: the newest Completed one that has settled.
fn drillable(backups: &[ArchiveBackup]) -> Option<&ArchiveBackup> {
    backups
        .iter()
        .filter(|b| backup_phase(b) == BackupPhase::Completed && is_settled(b))
        .max_by_key(|b| (super::super::retention::RetentionCandidate::try_from(*b).ok().map(|c| c.time), b.metadata.name.clone()))
}

/// The finished record of `drill`.
pub fn finish(drill: &DrillStatus, passed: bool, message: String, output: Option<String>, now: DateTime<Utc>) -> DrillStatus {
    DrillStatus {
        state: if passed { DrillState::Passed } else { DrillState::Failed },
        finished_at: Some(now),
        message: Some(message),
        output: output.map(|o| cut(&o, OUTPUT_LIMIT)),
        ..drill.clone()
    }
}

/// `text` cut to at most `limit` bytes, at a character boundary.
fn cut(text: &str, limit: usize) -> String {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Records the finished drill torn down: `lastDrill.tornDown`, and a copy first in
/// `recentDrills` (at most [`RECENT_DRILLS`]).
pub fn torn_down(status: &mut BackupPolicyStatus) {
    let Some(drill) = status.last_drill.as_mut() else { return };
    drill.torn_down = true;
    let record = drill.clone();
    status.recent_drills.retain(|d| d.restore_request != record.restore_request);
    status.recent_drills.insert(0, record);
    status.recent_drills.truncate(RECENT_DRILLS);
}

#[cfg(test)]
mod tests;
