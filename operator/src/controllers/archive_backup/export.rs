//! Act, for the export of a Completed run (`plan::backup::exporting`): each function performs
//! the side effect its step names and records it.

use super::super::error::{Context as _, Error};
use super::super::events::publish;
use super::super::Context;
use super::observe::Observed;
use crate::api::{ArchiveBackup, ArchiveBackupStatus, BackupPolicySpec, ConditionStatus, ExportSpec, ExportState, ExportStatus};
use crate::kube::{self as k, export};
use crate::kube::snapshot::VolumeSnapshot;
use crate::plan::conditions;
use crate::plan::export::{on_completion, ExportReport, OnCompletion};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::events::EventType;
use kube::Api;

/// The condition that tells whether the restore point has its off-cluster copy.
pub const EXPORTED: &str = "Exported";

/// Records, in the write that makes a run `Completed`, what it does about its export
/// (`plan::export::on_completion`): `export.state: Pending` (`Exported=Unknown`), or
/// `Exported=False` reason `NotVerified`.
pub fn mark_due(status: &mut ArchiveBackupStatus, policy: Option<&BackupPolicySpec>, now: DateTime<Utc>, generation: Option<i64>) {
    let Some(policy) = policy else { return };
    match on_completion(policy, status.verification.as_ref()) {
        OnCompletion::Off => {}
        OnCompletion::Due => {
            status.export = Some(ExportStatus {
                state: ExportState::Pending,
                repository: None,
                started_at: None,
                finished_at: None,
                bytes_added: None,
                message: None,
                snapshots: Vec::new(),
                manifest: None,
                forget_failed_at: None,
            });
            conditions::set(&mut status.conditions, EXPORTED, ConditionStatus::Unknown, "Pending", "the export is due", now, generation);
        }
        OnCompletion::NotVerified(message) => {
            conditions::set(&mut status.conditions, EXPORTED, ConditionStatus::False, "NotVerified", message, now, generation);
        }
    }
}

/// `BeginExport`: records `Running`, the start and the repository, then publishes
/// `ExportStarted`.
pub async fn begin(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, status: &mut ArchiveBackupStatus, repository: String) -> Result<(), Error> {
    let now = obs.now;
    let items = obs.plan.len();
    if let Some(export) = status.export.as_mut() {
        export.state = ExportState::Running;
        export.started_at = Some(now);
        export.repository = Some(repository.clone());
        export.message = Some(format!("exporting {items} item(s) to {repository}"));
    }
    let message = format!("exporting {items} item(s) to {repository}");
    conditions::set(&mut status.conditions, EXPORTED, ConditionStatus::Unknown, "Running", message.clone(), now, backup.metadata.generation);
    super::act::record(ctx, backup, obs, status).await?;
    publish(ctx, backup, EventType::Normal, "ExportStarted", message).await;
    Ok(())
}

/// `CreateExportClaims`: the scratch PVCs of `indices`, restored from their snapshots.
pub async fn create_claims(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, indices: &[usize]) -> Result<(), Error> {
    let spec = export_spec(obs)?;
    let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &obs.namespace);
    for &i in indices {
        let Some(item) = obs.plan.get(i) else { continue };
        let size = obs.snapshots.get(&item.snapshot).and_then(VolumeSnapshot::restore_size);
        let claim = export::scratch_claim(backup, &obs.plan, i, size, spec);
        k::create_if_absent(&api, &claim).await.during(|| format!("failed to create export scratch PVC for {}", item.snapshot))?;
    }
    Ok(())
}

/// `CreateExportJob`: the export Job, with every scratch PVC mounted.
pub async fn create_job(ctx: &Context, backup: &ArchiveBackup, obs: &Observed) -> Result<(), Error> {
    let spec = export_spec(obs)?;
    let job = export::export_job(backup, &obs.plan, spec);
    let api = Api::<Job>::namespaced(ctx.client.clone(), &obs.namespace);
    k::create_if_absent(&api, &job).await.during(|| format!("failed to create export Job of {}/{}", obs.namespace, obs.name))?;
    Ok(())
}

/// The run's export spec (its policy copy's `export`); an export step without one is an
/// inconsistency.
fn export_spec(obs: &Observed) -> Result<&ExportSpec, Error> {
    obs.policy
        .as_ref()
        .and_then(|p| p.export.as_ref())
        .ok_or_else(|| Error::Inconsistent("the export step needs the run's export spec, which is missing".into()))
}

/// `FinishExport`: deletes the scratch PVCs, records the outcome and `Exported=True|False`,
/// then deletes the Job, publishes `Exported` or `ExportFailed`, and counts it.
///
/// The Job goes only after the outcome is recorded: when the status write fails, the next
/// reconcile finds the finished Job and records the same outcome, instead of exporting again.
pub async fn finish(
    ctx: &Context,
    backup: &ArchiveBackup,
    obs: &Observed,
    status: &mut ArchiveBackupStatus,
    outcome: Result<ExportReport, String>,
) -> Result<(), Error> {
    delete_claims(ctx, obs).await?;
    let now = obs.now;
    let Some(export) = status.export.as_mut() else { return Ok(()) };
    let repository = export.repository.clone().unwrap_or_else(|| "the repository".into());
    export.finished_at = Some(now);
    let duration = export.started_at.and_then(|s| (now - s).to_std().ok()).map(|d| d.as_secs_f64());
    let (exported, bytes_added, message) = match outcome {
        Ok(report) => {
            let added = report.bytes_added;
            let message = format!("{} item(s) and the manifest exported to {repository}; {added} byte(s) added", report.snapshots.len());
            export.state = ExportState::Exported;
            export.snapshots = report.snapshots;
            export.manifest = Some(report.manifest);
            export.bytes_added = Some(added);
            (true, added, message)
        }
        Err(why) => {
            export.state = ExportState::Failed;
            (false, 0, format!("export to {repository} failed: {why}"))
        }
    };
    export.message = Some(message.clone());
    let (condition, reason) = if exported { (ConditionStatus::True, "Exported") } else { (ConditionStatus::False, "ExportFailed") };
    conditions::set(&mut status.conditions, EXPORTED, condition, reason, message.clone(), now, backup.metadata.generation);
    super::act::record(ctx, backup, obs, status).await?;
    // The run is settled now: it is not reconciled again, so a failure here is only logged
    // (the finished Job holds no data, and goes with the ArchiveBackup it is owned by).
    if let Err(e) = delete_job(ctx, obs).await {
        tracing::warn!(error = %e, "the finished export Job was not deleted; it goes with its ArchiveBackup");
    }
    ctx.metrics.export_finished(&obs.namespace, &backup.spec.policy_name, exported, duration, bytes_added);
    let type_ = if exported { EventType::Normal } else { EventType::Warning };
    publish(ctx, backup, type_, reason, message).await;
    Ok(())
}

/// Deletes the export Job with its pods; already gone is fine.
async fn delete_job(ctx: &Context, obs: &Observed) -> Result<(), Error> {
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &obs.namespace);
    let job = crate::plan::export::export_job_name(&obs.name);
    k::delete_if_present(&jobs, &job, &kube::api::DeleteParams::background())
        .await
        .during(|| format!("failed to delete export Job {}/{job}", obs.namespace))?;
    Ok(())
}

/// Deletes the export's scratch PVCs; already gone is fine.
async fn delete_claims(ctx: &Context, obs: &Observed) -> Result<(), Error> {
    let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &obs.namespace);
    for claim in obs.export_claims.keys() {
        k::delete_if_present(&claims, claim, &kube::api::DeleteParams::default())
            .await
            .during(|| format!("failed to delete export scratch PVC {}/{claim}", obs.namespace))?;
    }
    Ok(())
}

/// `CreateForgetJob`: the Job running `restic forget` on the pruned run's repository snapshots.
pub async fn create_forget_job(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, ids: &[String]) -> Result<(), Error> {
    let spec = obs
        .policy
        .as_ref()
        .and_then(|p| p.export.as_ref())
        .ok_or_else(|| Error::Inconsistent("forgetting needs the run's export spec, which is missing".into()))?;
    let job = export::forget_job(backup, spec, ids);
    let api = Api::<Job>::namespaced(ctx.client.clone(), &obs.namespace);
    k::create_if_absent(&api, &job).await.during(|| format!("failed to create forget Job of {}/{}", obs.namespace, obs.name))?;
    Ok(())
}

/// `ForgetFailed`: records when and why (the restore point stays), deletes the failed Job so
/// that the retry makes a new one, and publishes `ForgetFailed`.
pub async fn forget_failed(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, status: &mut ArchiveBackupStatus, why: String) -> Result<(), Error> {
    let retry = crate::plan::export::FORGET_RETRY.as_secs() / 60;
    let Some(export) = status.export.as_mut() else { return Ok(()) };
    let repository = export.repository.clone().unwrap_or_else(|| "the repository".into());
    let message = format!("retention pruned this restore point, but forgetting its snapshots in {repository} failed: {why}; retrying in {retry} minutes");
    export.forget_failed_at = Some(obs.now);
    export.message = Some(message.clone());
    super::act::record(ctx, backup, obs, status).await?;
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &obs.namespace);
    let job = crate::plan::export::forget_job_name(&obs.name);
    k::delete_if_present(&jobs, &job, &kube::api::DeleteParams::background())
        .await
        .during(|| format!("failed to delete forget Job {}/{job}", obs.namespace))?;
    publish(ctx, backup, EventType::Warning, "ForgetFailed", message).await;
    Ok(())
}

/// `DeletePruned`: publishes `Forgotten` (when repository snapshots were forgotten), then
/// deletes the ArchiveBackup, as retention would have.
pub async fn delete_pruned(ctx: &Context, backup: &ArchiveBackup, obs: &Observed, forgotten: &[String]) -> Result<(), Error> {
    if !forgotten.is_empty() {
        let repository = obs.status_export_repository().unwrap_or_else(|| "the repository".into());
        let note = format!("retention pruned this restore point; its {} snapshot(s) in {repository} were forgotten", forgotten.len());
        publish(ctx, backup, EventType::Normal, "Forgotten", note).await;
    }
    let api = Api::<ArchiveBackup>::namespaced(ctx.client.clone(), &obs.namespace);
    k::delete_if_present(&api, &obs.name, &kube::api::DeleteParams::background())
        .await
        .during(|| format!("failed to delete pruned ArchiveBackup {}/{}", obs.namespace, obs.name))?;
    Ok(())
}

