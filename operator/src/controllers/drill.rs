//! The act side of restore drills (`plan::policy::drill` decides): each arm performs the one
//! side effect its action names, recording in the policy's status before creating anything.

use super::error::{Context as _, Error};
use super::events::publish;
use super::Context;
use crate::api::{BackupPolicy, BackupPolicyStatus, DrillState, RestoreRequest};
use crate::kube::drill as build;
use crate::kube::probe::{self, ProbeTarget};
use crate::kube::redact::LazyRedactor;
use crate::kube::{self as k};
use crate::plan::policy::drill::{self as plan, CopyPod, DrillAction, OUTPUT_LIMIT};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

/// The pods of the running drill's copy when the decision needs them
/// ([`plan::copy_pods_needed`]): one list request, only while a drill waits for its copy.
pub async fn observe_copy_pods(ctx: &Context, namespace: &str, status: Option<&BackupPolicyStatus>, restores: &[RestoreRequest]) -> Result<Option<Vec<CopyPod>>, Error> {
    let Some(request) = status.and_then(|s| plan::copy_pods_needed(s, restores)) else { return Ok(None) };
    build::copy_pods(&ctx.client, namespace, request)
        .await
        .map(Some)
        .during(|| format!("failed to list the pods of drill {namespace}/{request}'s copy"))
}

/// What acting on a drill did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Acted {
    /// The arm wrote the policy's status (it records before, or right after, its side effect).
    pub recorded: bool,
}

/// Performs `action` of `policy`'s drill. `status` is the status the decision recorded.
pub async fn act(ctx: &Context, policy: &BackupPolicy, namespace: &str, action: &DrillAction, status: &mut BackupPolicyStatus) -> Result<Acted, Error> {
    let recorded = |recorded: bool| Ok(Acted { recorded });
    let name = policy.name_any();
    let api = Api::<BackupPolicy>::namespaced(ctx.client.clone(), namespace);
    let write = |status: BackupPolicyStatus| {
        let api = api.clone();
        let name = name.clone();
        async move { k::apply_status(&api, &name, &status).await.during(|| format!("failed to write status of BackupPolicy {namespace}/{name}")) }
    };
    if let DrillAction::Skip { why } = action {
        publish(ctx, policy, EventType::Normal, "DrillSkipped", format!("the due restore drill was skipped: {why}")).await;
        return recorded(false);
    }
    let Some(drill) = status.last_drill.clone() else { return recorded(false) };
    match action {
        DrillAction::None | DrillAction::Skip { .. } => recorded(false),
        DrillAction::Start { backup } => {
            // Recorded first: the request is named in lastDrill before it exists.
            write(status.clone()).await?;
            build::record_on_backup(&ctx.client, namespace, &drill).await.during(|| format!("failed to record the drill on ArchiveBackup {namespace}/{backup}"))?;
            create_request(ctx, policy, namespace, &drill.restore_request, backup, drill.started_at).await?;
            publish(ctx, policy, EventType::Normal, "DrillStarted", format!("restore drill of {backup} started: RestoreRequest {} restores it side by side", drill.restore_request)).await;
            recorded(true)
        }
        DrillAction::CreateRequest { request, backup } => {
            create_request(ctx, policy, namespace, request, backup, drill.started_at).await?;
            recorded(false)
        }
        DrillAction::Probe { request, pod, ip } => {
            let restored = read_request(ctx, namespace, request).await?;
            let mut secrets = build::restored_secrets(restored.as_ref());
            secrets.extend(policy.spec.master.iter().flat_map(|m| m.secrets.iter().cloned()));
            let redactor = LazyRedactor::new(&ctx.client, namespace, secrets.iter().map(String::as_str));
            let redactor = redactor.or_withhold().await;
            let probe = policy.spec.verification.as_ref().and_then(|v| v.drill_probe.as_ref());
            let target = ProbeTarget { namespace, pod, ip: ip.as_deref() };
            let result = probe::run(&ctx.exec_client, target, probe, OUTPUT_LIMIT, &redactor).await;
            status.last_drill = Some(plan::finish(&drill, result.passed, result.message, result.output, chrono::Utc::now()));
            write(status.clone()).await?;
            finished(ctx, policy, namespace, status).await?;
            recorded(true)
        }
        DrillAction::Failed => {
            write(status.clone()).await?;
            finished(ctx, policy, namespace, status).await?;
            recorded(true)
        }
        DrillAction::TearDown { request } => {
            if !tear_down(ctx, policy, namespace, request).await? {
                // A drop Job runs: its end wakes the policy (`backup_policy::drill_wakeup`).
                return recorded(false);
            }
            plan::torn_down(status);
            recorded(false)
        }
    }
}

/// The drill's RestoreRequest, read from the API server: its mapping names what the drill
/// restored, and a cache that has not seen the request yet would name nothing.
async fn read_request(ctx: &Context, namespace: &str, request: &str) -> Result<Option<RestoreRequest>, Error> {
    Api::<RestoreRequest>::namespaced(ctx.client.clone(), namespace)
        .get_opt(request)
        .await
        .during(|| format!("failed to read RestoreRequest {namespace}/{request}"))
}

/// Deletes what the drill's `request` restored (`kube::drill::tear_down`, from a fresh read of
/// the request), with a Warning Event naming what was not the drill's to delete, or could not
/// be dropped. False while its databases are being dropped.
async fn tear_down(ctx: &Context, policy: &BackupPolicy, namespace: &str, request: &str) -> Result<bool, Error> {
    let restored = read_request(ctx, namespace, request).await?;
    let done = build::tear_down(&ctx.client, namespace, &policy.name_any(), restored.as_ref()).await.during(|| format!("failed to tear down drill {namespace}/{request}"))?;
    if !done.complete {
        return Ok(false);
    }
    if !done.kept.is_empty() {
        let kept = done.kept.join(", ");
        publish(ctx, policy, EventType::Warning, "DrillLeftovers", format!("restore drill {request}: kept {kept}: not made by this drill, so not deleted")).await;
    }
    if !done.databases_kept.is_empty() {
        let kept = done.databases_kept.join(", ");
        publish(ctx, policy, EventType::Warning, "DrillLeftovers", format!("restore drill {request}: could not drop the database(s) it restored: {kept}; drop them by hand")).await;
    }
    Ok(true)
}

/// Tears down the policy's drill that is not torn down yet, as the policy is deleted: its
/// request goes with the policy (owned by it), but the PVCs and Secrets it restored would not.
pub async fn tear_down_on_deletion(ctx: &Context, policy: &BackupPolicy, namespace: &str) -> Result<(), Error> {
    let Some(drill) = policy.status.as_ref().and_then(|s| s.last_drill.as_ref()).filter(|d| !d.torn_down) else { return Ok(()) };
    let request = &drill.restore_request;
    if tear_down(ctx, policy, namespace, request).await? {
        Ok(())
    } else {
        // Its databases are being dropped: the policy's deletion waits (the finalizer stays).
        Err(Error::Inconsistent(format!("restore drill {request}: dropping the databases it restored; the policy goes once they are dropped")))
    }
}

async fn create_request(ctx: &Context, policy: &BackupPolicy, namespace: &str, request: &str, backup: &str, started: chrono::DateTime<chrono::Utc>) -> Result<(), Error> {
    let api = Api::<RestoreRequest>::namespaced(ctx.client.clone(), namespace);
    k::create_if_absent(&api, &build::drill_request(policy, request, backup, started))
        .await
        .during(|| format!("failed to create the drill's RestoreRequest {namespace}/{request}"))?;
    Ok(())
}

/// A recorded Passed or Failed drill: the evidence on the backup, the Event and the metric.
async fn finished(ctx: &Context, policy: &BackupPolicy, namespace: &str, status: &BackupPolicyStatus) -> Result<(), Error> {
    let Some(drill) = status.last_drill.as_ref() else { return Ok(()) };
    let present = build::record_on_backup(&ctx.client, namespace, drill)
        .await
        .during(|| format!("failed to record the drill on ArchiveBackup {namespace}/{}", drill.backup))?;
    let gone = if present { String::new() } else { format!(" (ArchiveBackup {} is gone; the evidence is on the policy only)", drill.backup) };
    let message = drill.message.clone().unwrap_or_default();
    let passed = drill.state == DrillState::Passed;
    ctx.metrics.drill_finished(passed);
    if passed {
        publish(ctx, policy, EventType::Normal, "DrillPassed", format!("restore drill of {} passed: {message}{gone}", drill.backup)).await;
    } else {
        publish(ctx, policy, EventType::Warning, "DrillFailed", format!("restore drill of {} failed: {message}{gone}", drill.backup)).await;
    }
    Ok(())
}
