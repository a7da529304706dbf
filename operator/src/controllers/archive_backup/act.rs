//! Act and record: performs the one side effect a step names, idempotently, then writes status
//! (server-side apply) and publishes Events.

use super::super::error::{Context as _, Error};
use super::super::events::publish;
use super::super::Context;
use super::observe::Observed;
use crate::api::{
    ArchiveBackup, ArchiveBackupStatus, BackupPhase, CapturedItem, Component, ConditionStatus,
    QuiesceMode, QuiesceStatus, VerificationState, VerificationStatus,
};
use crate::kube::labels::{item_labels, owned_by};
use crate::kube::snapshot::{VolumeSnapshot, VolumeSnapshotSpec, VolumeSnapshotSource};
use crate::kube::{self as k, dump, finalizers, hooks, verify, workload};
use crate::plan::backup::{
    QuiesceStart,
    release_retry_delay, stamp_phase_start, CaptureAction, Failure, FailureReason, Step, CAPTURED, IDLE_REQUEUE, RELEASED,
    RELEASE_FINALIZER, WORKLOAD_CLAIMED,
};
use crate::plan::capture::{ItemSource, PlannedItem};
use crate::plan::{conditions, names};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;
use std::time::Duration;

/// Requeue soon after a step that moved the run on (the status write also triggers a watch
/// event; the scheduler merges the two).
const SOON: Duration = Duration::from_millis(10);
/// How long one thaw hook call may take.
const THAW_TIMEOUT: Duration = Duration::from_secs(30);

/// Performs `step` for the observed run and records the result.
pub async fn act(backup: &ArchiveBackup, ctx: &Context, obs: Observed, step: Step) -> Result<Action, Error> {
    let before = backup.status.clone().unwrap_or_default();
    let mut status = before.clone();
    sync_items(&mut status, &obs.snapshots);
    let now = obs.now;
    let generation = backup.metadata.generation;
    status.observed_generation = generation;
    let action = match step {
        Step::Done => {
            ctx.set_driven(&obs.uid, false);
            Action::await_change()
        }
        Step::Wait { what, requeue } => {
            status.message = Some(what);
            Action::requeue(requeue.unwrap_or(IDLE_REQUEUE))
        }
        Step::AddReleaseFinalizer | Step::RemoveReleaseFinalizer => {
            let present = matches!(step, Step::AddReleaseFinalizer);
            let api = Api::<ArchiveBackup>::namespaced(ctx.client.clone(), &obs.namespace);
            finalizers::set(&api, backup, RELEASE_FINALIZER, present)
                .await
                .during(|| format!("failed to {} finalizer {RELEASE_FINALIZER} on ArchiveBackup {}/{}", if present { "add" } else { "remove" }, obs.namespace, obs.name))?;
            // The metadata change comes back as a watch event.
            return Ok(Action::await_change());
        }
        Step::ClaimWorkload | Step::DropClaim => {
            let policy = obs.policy.as_ref().expect_policy()?;
            let target = obs.target.as_ref().ok_or_else(|| Error::Inconsistent("the claim step needs the target".into()))?;
            let holder = matches!(step, Step::ClaimWorkload).then(|| obs.holder.to_string());
            workload::set_claim(&ctx.client, &obs.namespace, &policy.target, holder.as_deref(), target.resource_version.as_deref())
                .await
                .during(|| format!("failed to {} {:?} {}/{}", if holder.is_some() { "claim" } else { "drop the claim on" }, policy.target.kind, obs.namespace, policy.target.name))?;
            Action::requeue(SOON)
        }
        Step::WaitForWorkload { holder } => {
            let policy = obs.policy.as_ref().expect_policy()?;
            let what = format!("waiting: {:?} {} is quiesced by {holder}", policy.target.kind, policy.target.name);
            conditions::set(&mut status.conditions, WORKLOAD_CLAIMED, ConditionStatus::False, "HeldByAnother", what.clone(), now, generation);
            status.message = Some(what);
            // The workload's change (the holder dropping its claim) wakes the run.
            Action::requeue(IDLE_REQUEUE)
        }
        Step::Begin { quiesce } => {
            ctx.set_driven(&obs.uid, true);
            begin(&mut status, &obs, now);
            if let Some(start) = quiesce {
                record_quiesce_start(&mut status, start, now);
            }
            if let Some(policy) = obs.policy.as_ref().filter(|p| p.quiesce.mode != QuiesceMode::None) {
                let note = format!("the run holds archivist.dev/quiesced-by on {:?} {}", policy.target.kind, policy.target.name);
                conditions::set(&mut status.conditions, WORKLOAD_CLAIMED, ConditionStatus::True, "Claimed", note, now, generation);
            }
            record(ctx, backup, &obs, &mut status).await?;
            let policy_mode = status.quiesce.as_ref().and_then(|q| q.mode).unwrap_or_default();
            publish(ctx, backup, EventType::Normal, "BackupStarted", format!("Backup started: quiesce mode {policy_mode:?}, {} item(s) to capture", status.items.len())).await;
            return Ok(Action::requeue(SOON));
        }
        Step::RecordQuiesceStart(start) => {
            ctx.set_driven(&obs.uid, true);
            record_quiesce_start(&mut status, start, now);
            Action::requeue(SOON)
        }
        Step::ScaleToZero => {
            let policy = obs.policy.as_ref().expect_policy()?;
            let original = status.quiesce.as_ref().and_then(|q| q.original_replicas);
            workload::scale(&ctx.client, &obs.namespace, &policy.target, 0, Some(&obs.holder.to_string()), original)
                .await
                .during(|| format!("failed to scale {}/{} to 0", obs.namespace, policy.target.name))?;
            status.message = Some(format!("scaled {} to 0; waiting for its pods to stop", policy.target.name));
            // The pods' removal wakes the run.
            Action::requeue(IDLE_REQUEUE)
        }
        Step::Freeze { pods, then } => {
            let policy = obs.policy.as_ref().expect_policy()?;
            let timeout = time_left(&status, policy.quiesce.timeout_seconds, now);
            let results = run_hooks(ctx, &obs, &pods, policy.quiesce.freeze.as_ref(), timeout).await;
            match results.into_iter().find_map(Result::err) {
                None => {
                    if let Some(quiesced) = enter_metadata_stage(ctx, backup, &obs, &mut status, now).await? {
                        let captured = capture(ctx, backup, &obs, &then).await;
                        // After the captures (whatever their outcome): the quiesced archive
                        // waits for them, not for an Event.
                        publish(ctx, backup, EventType::Normal, "Quiesced", quiesced).await;
                        captured?;
                    }
                    // The captures' watch events wake the run.
                    return Ok(Action::requeue(IDLE_REQUEUE));
                }
                Some(e) => begin_release(&mut status, Some(Failure::new(FailureReason::HookFailed, format!("freeze failed: {e}"))), now, generation),
            }
            Action::requeue(SOON)
        }
        Step::EnterPhase(BackupPhase::CapturingMetadata) => {
            if let Some(quiesced) = enter_metadata_stage(ctx, backup, &obs, &mut status, now).await? {
                publish(ctx, backup, EventType::Normal, "Quiesced", quiesced).await;
            }
            return Ok(Action::requeue(SOON));
        }
        Step::EnterPhase(phase) => {
            status.phase = Some(phase);
            status.message = None;
            record(ctx, backup, &obs, &mut status).await?;
            return Ok(Action::requeue(SOON));
        }
        Step::BeginContent { captures } => {
            status.phase = Some(BackupPhase::CapturingContent);
            status.message = None;
            record(ctx, backup, &obs, &mut status).await?;
            let captured = capture(ctx, backup, &obs, &captures).await;
            // After the captures (whatever their outcome): the quiesced archive waits for
            // them, not for an Event.
            let cut = status.items.iter().filter(|i| matches!(i.component, Component::Master | Component::Metadata)).count();
            publish(ctx, backup, EventType::Normal, "MetadataCaptured", format!("{cut} master and metadata item(s) cut; capturing content")).await;
            captured?;
            // The snapshots' watch events wake the run.
            return Ok(Action::requeue(IDLE_REQUEUE));
        }
        Step::Capture(actions) => {
            capture(ctx, backup, &obs, &actions).await?;
            // The snapshots' and dump Jobs' watch events wake the run; this is a safety net.
            Action::requeue(IDLE_REQUEUE)
        }
        Step::BeginRelease { failure } => {
            let captured = failure.is_none();
            begin_release(&mut status, failure.clone(), now, generation);
            record(ctx, backup, &obs, &mut status).await?;
            // Recorded: release now, as `Step::Release` does (the recorded failure, if any),
            // and only then say so: the archive waits for no Event.
            let recorded = status.clone();
            let announce = captured.then_some(ContentCaptured);
            return release_and_record(ctx, backup, &obs, status, &recorded, failure, announce, now, generation).await;
        }
        Step::Release { failure } => return release_and_record(ctx, backup, &obs, status, &before, failure, None, now, generation).await,
        Step::BeginVerification => {
            status.phase = Some(BackupPhase::Verifying);
            status.message = Some("every snapshot is ready; verifying".into());
            conditions::set(&mut status.conditions, "Ready", ConditionStatus::True, "SnapshotsReady", "every snapshot is ready to use", now, generation);
            record(ctx, backup, &obs, &mut status).await?;
            publish(ctx, backup, EventType::Normal, "BackupCompleted", format!("restore point ready: {} item(s); verifying", status.items.len())).await;
            return Ok(Action::requeue(SOON));
        }
        Step::CreateVerifyClaims(indices) => {
            let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &obs.namespace);
            for i in indices {
                let Some(item) = obs.plan.get(i) else { continue };
                let size = obs.snapshots.get(&item.snapshot).and_then(VolumeSnapshot::restore_size);
                let claim = verify::scratch_claim(backup, &obs.plan, i, size);
                k::create_if_absent(&api, &claim).await.during(|| format!("failed to create scratch PVC for {}", item.snapshot))?;
            }
            // Their binding wakes the run (`controllers::caches::RunChildren`).
            Action::requeue(IDLE_REQUEUE)
        }
        Step::CreateVerifyJob => {
            let spec = obs.policy.as_ref().and_then(|p| p.verification.clone()).unwrap_or_default();
            let job = verify::verify_job(backup, &obs.plan, &spec);
            let api = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(ctx.client.clone(), &obs.namespace);
            k::create_if_absent(&api, &job).await.during(|| format!("failed to create verify Job of {}/{}", obs.namespace, obs.name))?;
            // The Job's progress wakes the run.
            Action::requeue(IDLE_REQUEUE)
        }
        Step::FinishVerification { result, message } => {
            cleanup_verification(ctx, &obs).await?;
            let passed = result.passed();
            status.verification = Some(VerificationStatus {
                state: if passed { VerificationState::Passed } else { VerificationState::Failed },
                finished_at: Some(now),
                message: Some(message.clone()),
                reason: None,
            });
            let cond = if passed { ConditionStatus::True } else { ConditionStatus::False };
            conditions::set(&mut status.conditions, "Verified", cond, result.condition_reason(), message.clone(), now, generation);
            status.phase = Some(BackupPhase::Completed);
            status.completion_time = Some(now);
            status.message = None;
            super::export::mark_due(&mut status, obs.policy.as_ref(), now, generation);
            record(ctx, backup, &obs, &mut status).await?;
            ctx.set_driven(&obs.uid, false);
            finished_metric(ctx, backup, &status, true);
            let (type_, reason) = if passed { (EventType::Normal, "Verified") } else { (EventType::Warning, "VerificationFailed") };
            publish(ctx, backup, type_, reason, message).await;
            return Ok(Action::await_change());
        }
        Step::BeginExport { repository } => {
            super::export::begin(ctx, backup, &obs, &mut status, repository).await?;
            return Ok(Action::requeue(SOON));
        }
        Step::CreateExportClaims(indices) => {
            super::export::create_claims(ctx, backup, &obs, &indices).await?;
            // Their binding wakes the run (`controllers::caches::RunChildren`).
            Action::requeue(IDLE_REQUEUE)
        }
        Step::CreateExportJob => {
            super::export::create_job(ctx, backup, &obs).await?;
            // The Job's progress wakes the run.
            Action::requeue(IDLE_REQUEUE)
        }
        Step::FinishExport { outcome } => {
            super::export::finish(ctx, backup, &obs, &mut status, outcome).await?;
            return Ok(Action::await_change());
        }
        Step::CreateForgetJob(ids) => {
            super::export::create_forget_job(ctx, backup, &obs, &ids).await?;
            // The Job's progress wakes the run.
            Action::requeue(IDLE_REQUEUE)
        }
        Step::ForgetFailed { message } => {
            super::export::forget_failed(ctx, backup, &obs, &mut status, message).await?;
            return Ok(Action::requeue(crate::plan::export::FORGET_RETRY));
        }
        Step::DeletePruned { forgotten } => {
            super::export::delete_pruned(ctx, backup, &obs, &forgotten).await?;
            return Ok(Action::await_change());
        }
        Step::Complete => {
            mark_completed(&mut status, obs.policy.as_ref(), now, generation);
            record(ctx, backup, &obs, &mut status).await?;
            announce_completed(ctx, backup, &obs, &status).await;
            return Ok(Action::await_change());
        }
        Step::Fail(failure) => {
            status.phase = Some(BackupPhase::Failed);
            finish_failed(&mut status, &failure, now, generation);
            record(ctx, backup, &obs, &mut status).await?;
            announce_failed(ctx, backup, &obs, &status, failure).await;
            return Ok(Action::await_change());
        }
    };
    if changed_beyond_item_progress(&status, &before) {
        record(ctx, backup, &obs, &mut status).await?;
    }
    Ok(action)
}

/// Whether `status` differs from `before` in more than the items' progress (cut times,
/// readiness, sizes: [`sync_items`]) and `observedGeneration`. These alone are not written:
/// they go with the next write the run makes anyway (every phase change, every new wait
/// message), which saves a status write per snapshot event, and one for a pending run's claim.
fn changed_beyond_item_progress(status: &ArchiveBackupStatus, before: &ArchiveBackupStatus) -> bool {
    let progress_only = ArchiveBackupStatus { items: before.items.clone(), observed_generation: before.observed_generation, ..status.clone() };
    progress_only != *before
}

/// The `ContentCaptured` Event is due: published by [`release_and_record`] right after the
/// release (whatever its outcome), before the Events of the release itself, so the archive is
/// not kept quiesced for an Event and the Events still come in the order of the steps.
struct ContentCaptured;

/// Releases the archive and records the outcome (`Step::Release`, and the second half of
/// `Step::BeginRelease`): `Finalizing`, or `Failed` with the failure recorded when releasing
/// began; a failed attempt is recorded and retried after its backoff; a conflict on the
/// workload is retried at once, without counting an attempt.
#[allow(clippy::too_many_arguments)]
async fn release_and_record(
    ctx: &Context,
    backup: &ArchiveBackup,
    obs: &Observed,
    mut status: ArchiveBackupStatus,
    before: &ArchiveBackupStatus,
    failure: Option<Failure>,
    announce: Option<ContentCaptured>,
    now: DateTime<Utc>,
    generation: Option<i64>,
) -> Result<Action, Error> {
    let released = release(ctx, obs, &mut status).await;
    if announce.is_some() {
        publish(ctx, backup, EventType::Normal, "ContentCaptured", "every snapshot is cut; releasing the archive".to_string()).await;
    }
    if let Err(why) = released {
        if let ReleaseError::Conflict(source) = why {
            // The workload changed since it was read (often only its status): read it
            // again and retry soon, without counting a failed attempt.
            if status != *before {
                record(ctx, backup, obs, &mut status).await?;
            }
            return Err(Error::Kube { action: format!("releasing {}/{}: the workload changed while it was read", obs.namespace, obs.name), source });
        }
        let why = why.to_string();
        let quiesce = status.quiesce.get_or_insert_with(QuiesceStatus::default);
        let attempts = quiesce.release_attempts.unwrap_or(0).saturating_add(1);
        quiesce.release_attempts = Some(attempts);
        quiesce.last_release_failure = Some(now);
        let delay = release_retry_delay(attempts);
        let message = format!("releasing the archive failed (attempt {attempts}; retrying in {}s): {why}", delay.as_secs());
        conditions::set(&mut status.conditions, RELEASED, ConditionStatus::False, "ReleaseFailed", message.clone(), now, generation);
        status.message = Some(message.clone());
        record(ctx, backup, obs, &mut status).await?;
        publish(ctx, backup, EventType::Warning, "ReleaseFailed", message).await;
        return Ok(Action::requeue(delay));
    }
    let complete = failure.is_none() && obs.completes_at_release(ctx);
    let window = status.quiesce.as_ref().and_then(|q| q.window_seconds);
    match &failure {
        Some(f) => {
            status.phase = Some(BackupPhase::Failed);
            finish_failed(&mut status, f, now, generation);
        }
        None if complete => mark_completed(&mut status, obs.policy.as_ref(), now, generation),
        None => {
            status.phase = Some(BackupPhase::Finalizing);
            status.message = None;
        }
    }
    record(ctx, backup, obs, &mut status).await?;
    if let Some(window) = window {
        ctx.metrics.quiesce_window.observe(window);
        publish(ctx, backup, EventType::Normal, "Released", format!("archive released after {window:.3}s")).await;
    }
    if let Some(f) = failure {
        announce_failed(ctx, backup, obs, &status, f).await;
    } else if complete {
        announce_completed(ctx, backup, obs, &status).await;
    }
    Ok(Action::requeue(SOON))
}

/// A run recorded `Completed`: no longer driven, counted, published (`BackupCompleted`).
async fn announce_completed(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, status: &ArchiveBackupStatus) {
    ctx.set_driven(&obs.uid, false);
    finished_metric(ctx, backup, status, true);
    publish(ctx, backup, EventType::Normal, "BackupCompleted", format!("restore point ready: {} item(s)", status.items.len())).await;
}

/// A run recorded `Failed`: no longer driven, counted, published (`BackupFailed`).
async fn announce_failed(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, status: &ArchiveBackupStatus, failure: Failure) {
    ctx.set_driven(&obs.uid, false);
    finished_metric(ctx, backup, status, false);
    publish(ctx, backup, EventType::Warning, "BackupFailed", failure.message).await;
}

/// A run whose snapshots are all ready: phase `Completed` (`Ready=True`), and its export due
/// when the policy exports (`export::mark_due`).
fn mark_completed(status: &mut ArchiveBackupStatus, policy: Option<&crate::api::BackupPolicySpec>, now: DateTime<Utc>, generation: Option<i64>) {
    status.phase = Some(BackupPhase::Completed);
    status.completion_time = Some(now);
    status.message = None;
    conditions::set(&mut status.conditions, "Ready", ConditionStatus::True, "Completed", "every snapshot is ready to use", now, generation);
    super::export::mark_due(status, policy, now, generation);
}

trait ExpectPolicy<'a> {
    fn expect_policy(self) -> Result<&'a crate::api::BackupPolicySpec, Error>;
}

impl<'a> ExpectPolicy<'a> for Option<&'a crate::api::BackupPolicySpec> {
    fn expect_policy(self) -> Result<&'a crate::api::BackupPolicySpec, Error> {
        self.ok_or_else(|| Error::Inconsistent("the step needs the run's policy spec, which is missing".into()))
    }
}

/// Writes the run's status (server-side apply), stamping `phaseStartTime` when the phase
/// differs from the one the step was decided from.
pub(super) async fn record(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, status: &mut ArchiveBackupStatus) -> Result<(), Error> {
    stamp_phase_start(status, backup.status.as_ref().and_then(|s| s.phase), obs.now);
    let api = Api::<ArchiveBackup>::namespaced(ctx.client.clone(), &obs.namespace);
    k::apply_status(&api, &obs.name, status)
        .await
        .during(|| format!("failed to write status of ArchiveBackup {}/{}", obs.namespace, backup.name_any()))
}

fn finished_metric(ctx: &Context, backup: &ArchiveBackup, status: &ArchiveBackupStatus, completed: bool) {
    let duration = match (status.start_time, status.completion_time) {
        (Some(start), Some(end)) => Some((end - start).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    ctx.metrics.backup_finished(&backup.namespace().unwrap_or_default(), &backup.spec.policy_name, completed, duration);
}


/// The start of a run: phase, start time, the policy copy and the planned items.
fn begin(status: &mut ArchiveBackupStatus, obs: &Observed, now: DateTime<Utc>) {
    let Some(policy) = obs.policy.clone() else { return };
    status.phase = Some(BackupPhase::Quiescing);
    status.start_time = Some(now);
    status.quiesce = Some(QuiesceStatus { mode: Some(policy.quiesce.mode), ..Default::default() });
    status.items = obs
        .plan
        .iter()
        .map(|item| CapturedItem {
            component: item.component,
            store: item.store.clone(),
            source_claim: Some(item.claim().to_string()),
            source_sql: match &item.source {
                ItemSource::Sql { sql, .. } => Some(format!(
                    "{:?}://{}:{}/{}",
                    sql.engine,
                    sql.host,
                    sql.port.unwrap_or_else(|| dump::default_port(sql.engine)),
                    sql.database
                )),
                ItemSource::Claim(_) => None,
            },
            volume_snapshot: Some(item.snapshot.clone()),
            captured_at: None,
            ready_to_use: false,
            restore_size: None,
        })
        .collect();
    status.indexes_included = Some(policy.include_indexes);
    let verify = policy.verification.as_ref().is_some_and(|v| v.after_backup);
    status.verification = Some(VerificationStatus {
        state: if verify { VerificationState::Pending } else { VerificationState::Skipped },
        finished_at: None,
        message: None,
        reason: None,
    });
    status.policy_spec = Some(Box::new(policy));
    status.message = None;
}

/// Quiescing starts now: `quiescedAt`, and what to undo (the replicas or the frozen pods).
fn record_quiesce_start(status: &mut ArchiveBackupStatus, start: QuiesceStart, now: DateTime<Utc>) {
    let quiesce = status.quiesce.get_or_insert_with(QuiesceStatus::default);
    quiesce.quiesced_at = Some(now);
    quiesce.original_replicas = start.original_replicas;
    quiesce.pods = start.pods;
    status.message = Some("quiescing the archive".into());
}

/// Copies the item states (cut time, readiness, size) from the observed snapshots.
fn sync_items(status: &mut ArchiveBackupStatus, snapshots: &BTreeMap<String, VolumeSnapshot>) {
    for item in &mut status.items {
        let Some(snapshot) = item.volume_snapshot.as_ref().and_then(|n| snapshots.get(n)) else { continue };
        let seen = snapshot.observe();
        item.captured_at = seen.cut_at;
        item.ready_to_use = seen.ready_to_use;
        item.restore_size = snapshot.restore_size();
    }
}

fn time_left(status: &ArchiveBackupStatus, timeout_seconds: u32, now: DateTime<Utc>) -> Duration {
    let quiesced_at = status.quiesce.as_ref().and_then(|q| q.quiesced_at).unwrap_or(now);
    let deadline = quiesced_at + chrono::Duration::seconds(i64::from(timeout_seconds));
    (deadline - now).to_std().unwrap_or(Duration::from_secs(1)).max(Duration::from_secs(1))
}

async fn run_hooks(ctx: &Context, obs: &Observed, pods: &[String], hook: Option<&crate::api::Hook>, timeout: Duration) -> Vec<Result<(), hooks::HookError>> {
    let Some(hook) = hook else { return vec![Err(hooks::HookError::Empty)] };
    let ips = obs.target.as_ref().map(|t| t.pod_ips.clone()).unwrap_or_default();
    let redactor = obs.redactor.or_withhold().await;
    let redactor = &*redactor;
    let calls = pods.iter().map(|pod| {
        let ip = ips.get(pod).cloned();
        async move { hooks::run(&ctx.exec_client, &obs.namespace, pod, ip.as_deref(), hook, timeout, redactor).await }
    });
    futures::future::join_all(calls).await
}

/// Copies the master secrets, then enters `CapturingMetadata` (or begins releasing when a
/// secret is missing), and records the status. Returns the note of the `Quiesced` Event when
/// it entered `CapturingMetadata`; the caller publishes it after the stage's captures, which
/// the quiesced archive waits for.
async fn enter_metadata_stage(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, status: &mut ArchiveBackupStatus, now: DateTime<Utc>) -> Result<Option<String>, Error> {
    let generation = backup.metadata.generation;
    match copy_secrets(ctx, backup, obs).await? {
        Err(failure) => {
            begin_release(status, Some(failure), now, generation);
            record(ctx, backup, obs, status).await?;
            return Ok(None);
        }
        Ok(Some(copy)) => {
            status.secret_copy = Some(copy.clone());
            if !status.items.iter().any(|i| i.component == Component::Secrets) {
                status.items.insert(0, CapturedItem {
                    component: Component::Secrets,
                    store: String::new(),
                    source_claim: None,
                    source_sql: None,
                    volume_snapshot: None,
                    captured_at: Some(now),
                    ready_to_use: true,
                    restore_size: None,
                });
            }
        }
        Ok(None) => {}
    }
    let mode = status.quiesce.as_ref().and_then(|q| q.mode).unwrap_or_default();
    status.phase = Some(BackupPhase::CapturingMetadata);
    status.message = None;
    let (cond, reason, note) = match mode {
        QuiesceMode::Freeze => (ConditionStatus::True, "Frozen", "freeze hook ran on every ready pod".to_string()),
        QuiesceMode::Stop => (ConditionStatus::True, "Stopped", "the target is scaled to 0 and its pods are gone".to_string()),
        QuiesceMode::None => (ConditionStatus::False, "NotRequired", "quiesce mode None: capturing while running (crash-consistent)".to_string()),
    };
    conditions::set(&mut status.conditions, "Quiesced", cond, reason, note.clone(), now, generation);
    record(ctx, backup, obs, status).await?;
    Ok(Some(note))
}

/// Copies `master.secrets` into `<backup>-secrets` (keys `<secret>.<key>`). Returns the copy's
/// name, `None` when there is nothing to copy, or the failure when a secret is missing.
async fn copy_secrets(ctx: &Context, backup: &ArchiveBackup, obs: &Observed) -> Result<Result<Option<String>, Failure>, Error> {
    let Some(policy) = obs.policy.as_ref() else { return Ok(Ok(None)) };
    let secrets = policy.master.as_ref().map(|m| m.secrets.clone()).unwrap_or_default();
    if secrets.is_empty() {
        return Ok(Ok(None));
    }
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &obs.namespace);
    let copy_name = names::secret_copy_name(&obs.name);
    let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
    for name in &secrets {
        let Some(secret) = api.get_opt(name).await.during(|| format!("failed to read Secret {}/{name}", obs.namespace))? else {
            return Ok(Err(Failure::new(FailureReason::SecretNotFound, format!("Secret {name} named in master.secrets does not exist"))));
        };
        for (key, value) in secret.data.unwrap_or_default() {
            data.insert(format!("{name}.{key}"), value);
        }
    }
    let copy = Secret {
        metadata: ObjectMeta {
            name: Some(copy_name.clone()),
            namespace: Some(obs.namespace.clone()),
            labels: Some(item_labels(&backup.spec.policy_name, &obs.name, Component::Secrets, "")),
            owner_references: Some(owned_by(backup)),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    k::create_if_absent(&api, &copy).await.during(|| format!("failed to create Secret {}/{copy_name}", obs.namespace))?;
    Ok(Ok(Some(copy_name)))
}

async fn capture(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, actions: &[CaptureAction]) -> Result<(), Error> {
    let Some(policy) = obs.policy.as_ref() else { return Ok(()) };
    // A stage's snapshots are cut together (the archive is quiesced meanwhile): created at
    // once, not one request after another.
    let snapshots = actions.iter().filter_map(|action| match *action {
        CaptureAction::CreateSnapshot(i) => obs.plan.get(i),
        _ => None,
    });
    futures::future::try_join_all(snapshots.map(|item| create_snapshot(ctx, backup, obs, policy, item))).await?;
    for action in actions {
        match *action {
            CaptureAction::CreateSnapshot(_) => {}
            CaptureAction::CreateDump(i) => {
                let Some(item) = obs.plan.get(i) else { continue };
                let ItemSource::Sql { sql, .. } = &item.source else { continue };
                let dump_spec = policy.dump.clone().unwrap_or(crate::api::DumpSpec { storage_class_name: None, size: "10Gi".into(), image: None });
                let (pvc, job) = dump::dump_objects(backup, &backup.spec.policy_name, item, sql, &dump_spec);
                let pvcs = Api::namespaced(ctx.client.clone(), &obs.namespace);
                k::create_if_absent(&pvcs, &pvc).await.during(|| format!("failed to create dump PVC {}/{}", obs.namespace, item.claim()))?;
                let jobs = Api::namespaced(ctx.client.clone(), &obs.namespace);
                k::create_if_absent(&jobs, &job).await.during(|| format!("failed to create dump Job {}/{}", obs.namespace, item.claim()))?;
            }
            CaptureAction::DeleteDump(i) => {
                let Some(item) = obs.plan.get(i) else { continue };
                dump::delete_dump(&ctx.client, &obs.namespace, item.claim())
                    .await
                    .during(|| format!("failed to delete dump {}/{}", obs.namespace, item.claim()))?;
            }
        }
    }
    Ok(())
}

/// Creates the VolumeSnapshot of a plan item (already there is fine).
async fn create_snapshot(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, policy: &crate::api::BackupPolicySpec, item: &PlannedItem) -> Result<(), Error> {
    let snapshot = VolumeSnapshot {
        metadata: ObjectMeta {
            name: Some(item.snapshot.clone()),
            namespace: Some(obs.namespace.clone()),
            labels: Some(item_labels(&backup.spec.policy_name, &obs.name, item.component, &item.store)),
            owner_references: Some(owned_by(backup)),
            ..Default::default()
        },
        spec: VolumeSnapshotSpec {
            source: VolumeSnapshotSource { persistent_volume_claim_name: Some(item.claim().to_string()), volume_snapshot_content_name: None },
            volume_snapshot_class_name: policy.volume_snapshot_class_name.clone(),
        },
        status: None,
    };
    let api = Api::<VolumeSnapshot>::namespaced(ctx.client.clone(), &obs.namespace);
    k::create_if_absent(&api, &snapshot)
        .await
        .during(|| format!("failed to create VolumeSnapshot {}/{} of claim {}", obs.namespace, item.snapshot, item.claim()))?;
    Ok(())
}

/// Deletes the verify Job and the scratch PVCs; already gone is fine.
async fn cleanup_verification(ctx: &Context, obs: &Observed) -> Result<(), Error> {
    let background = kube::api::DeleteParams::background();
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(ctx.client.clone(), &obs.namespace);
    let job = crate::plan::backup::verify_job_name(&obs.name);
    k::delete_if_present(&jobs, &job, &background)
        .await
        .during(|| format!("failed to delete verify Job {}/{job}", obs.namespace))?;
    let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &obs.namespace);
    for claim in obs.verify_claims.keys() {
        k::delete_if_present(&claims, claim, &kube::api::DeleteParams::default())
            .await
            .during(|| format!("failed to delete scratch PVC {}/{claim}", obs.namespace))?;
    }
    Ok(())
}

fn begin_release(status: &mut ArchiveBackupStatus, failure: Option<Failure>, now: DateTime<Utc>, generation: Option<i64>) {
    status.phase = Some(BackupPhase::Releasing);
    match failure {
        Some(f) => {
            conditions::set(&mut status.conditions, CAPTURED, ConditionStatus::False, f.reason.as_str(), f.message.clone(), now, generation);
            status.message = Some(f.message);
        }
        None => {
            conditions::set(&mut status.conditions, CAPTURED, ConditionStatus::True, "AllCut", "every snapshot of the run is cut", now, generation);
            status.message = None;
        }
    }
}

/// Why a release attempt did not finish.
#[derive(Debug, thiserror::Error)]
enum ReleaseError {
    /// The workload changed since it was read: retry at once with a fresh read.
    #[error("conflict: {0}")]
    Conflict(kube::Error),
    /// The attempt failed; retried with backoff.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for ReleaseError {
    fn from(message: String) -> Self {
        ReleaseError::Failed(message)
    }
}

/// A workload write's error: a conflict, or a failure described by `what`.
fn workload_error(what: String) -> impl FnOnce(kube::Error) -> ReleaseError {
    move |e| if k::is_conflict(&e) { ReleaseError::Conflict(e) } else { ReleaseError::Failed(format!("{what}: {e}")) }
}

/// Releases the archive: thaws the recorded pods not thawed yet (a pod that is gone is not
/// frozen), or scales the target back to the recorded replicas, and removes this run's claim;
/// then records `releasedAt`, the window and `Released=True`. Works from the status alone
/// when the workload object is gone. Returns what failed, in words, when the release must be
/// retried; the pods thawed so far stay recorded in `quiesce.thawedPods`.
async fn release(ctx: &Context, obs: &Observed, status: &mut ArchiveBackupStatus) -> Result<(), ReleaseError> {
    let quiesce = status.quiesce.clone().unwrap_or_default();
    let Some(quiesced_at) = quiesce.quiesced_at else {
        if quiesce.mode == Some(QuiesceMode::None) && quiesce.window_seconds.is_none() {
            // Captured while running: the archive was never unavailable.
            status.quiesce.get_or_insert_with(QuiesceStatus::default).window_seconds = Some(0.0);
        }
        return Ok(());
    };
    if quiesce.released_at.is_some() {
        return Ok(());
    }
    let policy = obs.policy.as_ref().ok_or_else(|| ReleaseError::Failed("the run has no policy spec to release with".into()))?;
    let target = obs.target.as_ref();
    let mine = obs.claim == crate::plan::claim::ClaimObs::Mine;
    let resource_version = target.and_then(|t| t.resource_version.as_deref());
    // When the archive became available again: after the scale-back, or once every pod is
    // thawed (dropping the claim afterwards is the operator's own bookkeeping, not part of the
    // archive's unavailability).
    let released_at = match quiesce.mode.unwrap_or(policy.quiesce.mode) {
        QuiesceMode::Stop => {
            match (target, &obs.claim) {
                // Gone: nothing runs, nothing to scale back. Held by another: it is theirs now.
                (None, _) | (Some(_), crate::plan::claim::ClaimObs::HeldBy(_)) => {}
                (Some(_), _) => {
                    let replicas = quiesce.original_replicas.unwrap_or(1);
                    workload::release_stopped(&ctx.client, &obs.namespace, &policy.target, replicas, resource_version)
                        .await
                        .map_err(workload_error(format!("failed to scale {}/{} back to {replicas}", obs.namespace, policy.target.name)))?;
                }
            }
            Utc::now()
        }
        QuiesceMode::Freeze => {
            let thawed = thaw(ctx, obs, policy, &quiesce).await;
            let errors: Vec<String> = thawed.iter().filter_map(|(_, r)| r.clone().err()).collect();
            let q = status.quiesce.get_or_insert_with(QuiesceStatus::default);
            for (pod, result) in &thawed {
                if result.is_ok() && !q.thawed_pods.contains(pod) {
                    q.thawed_pods.push(pod.clone());
                }
            }
            if !errors.is_empty() {
                return Err(ReleaseError::Failed(format!("thaw failed, the archive may still be frozen: {}", errors.join("; "))));
            }
            let thawed_at = Utc::now();
            if target.is_some() && mine {
                workload::set_claim(&ctx.client, &obs.namespace, &policy.target, None, resource_version)
                    .await
                    .map_err(workload_error(format!("failed to remove archivist.dev/quiesced-by from {}/{}", obs.namespace, policy.target.name)))?;
            }
            thawed_at
        }
        QuiesceMode::None => Utc::now(),
    };
    let now = released_at;
    let q = status.quiesce.get_or_insert_with(QuiesceStatus::default);
    q.released_at = Some(released_at);
    q.window_seconds = Some((released_at - quiesced_at).num_milliseconds() as f64 / 1000.0);
    let generation = status.observed_generation;
    conditions::set(&mut status.conditions, "Quiesced", ConditionStatus::False, "Released", "the archive was released", now, generation);
    conditions::set(&mut status.conditions, RELEASED, ConditionStatus::True, "Released", "the archive was released", now, generation);
    Ok(())
}

/// Runs the thaw hook on every recorded pod that is not thawed yet; a pod that no longer
/// exists counts as thawed. Returns each pod with its result.
async fn thaw(ctx: &Context, obs: &Observed, policy: &crate::api::BackupPolicySpec, quiesce: &QuiesceStatus) -> Vec<(String, Result<(), String>)> {
    let Some(hook) = policy.quiesce.thaw.as_ref() else {
        return vec![(String::new(), Err("the policy has no thaw hook".to_string()))];
    };
    let pending: Vec<&String> = quiesce.pods.iter().filter(|p| !quiesce.thawed_pods.contains(p)).collect();
    let redactor = obs.redactor.or_withhold().await;
    let redactor = &*redactor;
    let calls = pending.into_iter().map(|pod| async move {
        let known_ip = obs.target.as_ref().and_then(|t| t.pod_ips.get(pod).cloned());
        let ip = match known_ip {
            Some(ip) => Some(ip),
            None => match workload::pod_ip(&ctx.client, &obs.namespace, pod).await {
                Ok(None) => return (pod.clone(), Ok(())),
                Ok(Some(ip)) => ip,
                Err(e) => return (pod.clone(), Err(format!("failed to read pod {pod}: {e}"))),
            },
        };
        let result = hooks::run(&ctx.exec_client, &obs.namespace, pod, ip.as_deref(), hook, THAW_TIMEOUT, redactor).await;
        (pod.clone(), result.map_err(|e| e.to_string()))
    });
    futures::future::join_all(calls).await
}

fn finish_failed(status: &mut ArchiveBackupStatus, failure: &Failure, now: DateTime<Utc>, generation: Option<i64>) {
    status.completion_time = Some(now);
    status.message = Some(failure.message.clone());
    conditions::set(&mut status.conditions, "Ready", ConditionStatus::False, failure.reason.as_str(), failure.message.clone(), now, generation);
}
