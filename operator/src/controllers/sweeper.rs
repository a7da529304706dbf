//! The orphan sweeper: at start-up and then every [`SWEEP_INTERVAL`], every StatefulSet and
//! Deployment in scope that carries `archivist.dev/quiesced-by` (found in the shared caches)
//! is checked, and released when
//! the run named there is finished, gone, or no longer holding it (`plan::claim::sweep`).
//! This works even when every ArchiveBackup is gone: Stop mode scales back to the
//! `archivist.dev/original-replicas` annotation, Freeze mode thaws the pods with the thaw hook
//! of the holder's recorded policy copy, else of a BackupPolicy that targets the workload.
//! Every write carries the workload's resourceVersion, so a run that claimed the workload in
//! the meantime is never disturbed. Each release is published as an `OrphanReleased` Event on
//! the workload.

use super::events::publish;
use super::Context;
use crate::api::{ArchiveBackup, BackupPolicy, BackupPolicySpec, Hook, QuiesceMode, RestoreRequest, TargetKind, TargetRef};
use crate::kube::redact::Redactor;
use crate::kube::{dump, hooks};
use crate::kube::labels::{ORIGINAL_REPLICAS, QUIESCED_BY};
use crate::kube::workload;
use crate::plan::claim::{self, Holder, HolderKind, HolderState, SweepAction};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// How often claimed workloads are checked for orphaned claims.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(120);
/// How long one thaw hook call of the sweeper may take.
const THAW_TIMEOUT: Duration = Duration::from_secs(30);

/// Sweeps now and then every [`SWEEP_INTERVAL`] until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        sweep_once(&ctx).await;
        tokio::select! {
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            () = &mut shutdown => return,
        }
    }
}

/// One sweep over every claimed workload in scope; failures are logged and retried at the
/// next sweep. The claimed workloads are found in the shared metadata caches
/// (`controllers::caches`), so a sweep with nothing claimed makes no request; each one found
/// is read again from the API server before anything is decided, since every release is
/// written against its resourceVersion.
pub async fn sweep_once(ctx: &Context) {
    ctx.caches.ready().await;
    for (namespace, name) in claimed(&ctx.caches.stateful_sets) {
        sweep_named::<StatefulSet>(ctx, &namespace, &name, TargetKind::StatefulSet).await;
    }
    for (namespace, name) in claimed(&ctx.caches.deployments) {
        sweep_named::<Deployment>(ctx, &namespace, &name, TargetKind::Deployment).await;
    }
}

/// The namespace and name of every cached workload that carries a claim.
fn claimed<K>(store: &Store<PartialObjectMeta<K>>) -> Vec<(String, String)>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state_filter(|w| w.annotations().contains_key(QUIESCED_BY))
        .iter()
        .filter_map(|w| Some((w.namespace()?, w.name_any())))
        .collect()
}

async fn sweep_named<K>(ctx: &Context, namespace: &str, name: &str, kind: TargetKind)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + ResourceExt + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match Api::<K>::namespaced(ctx.client.clone(), namespace).get_opt(name).await {
        Ok(Some(workload)) => sweep_workload(ctx, &workload, kind).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, %namespace, %name, "sweeper: cannot read a claimed workload"),
    }
}

/// How many times a sweep of one workload is retried at once after a conflict (the workload
/// changed since it was read, usually only its status).
const CONFLICT_RETRIES: u32 = 5;

async fn sweep_workload<K>(ctx: &Context, listed: &K, kind: TargetKind)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + ResourceExt + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some(namespace) = listed.namespace() else { return };
    let api = Api::<K>::namespaced(ctx.client.clone(), &namespace);
    let mut object = listed.clone();
    for _ in 0..CONFLICT_RETRIES {
        match sweep_object(ctx, &object, kind).await {
            Swept::Conflict => match api.get_opt(&listed.name_any()).await {
                Ok(Some(fresh)) => object = fresh,
                Ok(None) => return,
                Err(e) => return tracing::warn!(error = %e, "sweeper: cannot read the workload again"),
            },
            Swept::Done => return,
        }
    }
}

/// The outcome of sweeping one workload object as read.
enum Swept {
    /// Released, kept, or failed (logged; retried at the next sweep).
    Done,
    /// The workload changed since it was read: read it again and decide again.
    Conflict,
}

async fn sweep_object<K>(ctx: &Context, object: &K, kind: TargetKind) -> Swept
where
    K: Resource<DynamicType = ()> + ResourceExt,
{
    let Some(namespace) = object.namespace() else { return Swept::Done };
    if !object.annotations().contains_key(QUIESCED_BY) {
        return Swept::Done;
    }
    let name = object.name_any();
    let value = object.annotations().get(QUIESCED_BY).cloned().unwrap_or_default();
    let original = object.annotations().get(ORIGINAL_REPLICAS).and_then(|r| r.parse::<i32>().ok());
    let holder = Holder::parse(&value);
    let holder_backup = match &holder {
        Some(h) if h.kind == HolderKind::ArchiveBackup => match Api::<ArchiveBackup>::namespaced(ctx.client.clone(), &h.namespace).get_opt(&h.name).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, %namespace, %name, "sweeper: cannot read the claim's holder");
                return Swept::Done;
            }
        },
        _ => None,
    };
    let holder_status = holder_backup.as_ref().map(|b| b.status.clone().unwrap_or_default());
    let state = match (&holder, &holder_status) {
        (None, _) => HolderState::Unreadable,
        (Some(h), _) if h.kind == HolderKind::RestoreRequest => {
            match Api::<RestoreRequest>::namespaced(ctx.client.clone(), &h.namespace).get_opt(&h.name).await {
                Ok(Some(_)) => HolderState::RestoreExists,
                Ok(None) => HolderState::Gone,
                Err(e) => {
                    tracing::warn!(error = %e, %namespace, %name, "sweeper: cannot read the claim's holder");
                    return Swept::Done;
                }
            }
        }
        (Some(_), Some(status)) => HolderState::Backup { status },
        (Some(_), None) => HolderState::Gone,
    };
    let SweepAction::Release { why, scale_to } = claim::sweep(&state, original) else { return Swept::Done };
    let target = TargetRef { kind, name: name.clone() };
    let resource_version = object.resource_version();
    let written = match scale_to {
        Some(replicas) => workload::release_stopped(&ctx.client, &namespace, &target, replicas, resource_version.as_deref())
            .await
            .map_err(|e| (format!("failed to scale back to {replicas}"), e)),
        None => match thaw_orphan(ctx, &namespace, &target, holder_backup.as_ref()).await {
            // The claim stays until every pod is thawed.
            Err(e) => {
                tracing::warn!(%namespace, %name, error = %e, "sweeper: thawing an orphaned claim failed; retrying at the next sweep");
                return Swept::Done;
            }
            Ok(()) => workload::set_claim(&ctx.client, &namespace, &target, None, resource_version.as_deref())
                .await
                .map_err(|e| ("failed to remove the claim".to_string(), e)),
        },
    };
    let result = match written {
        Err((_, e)) if crate::kube::is_conflict(&e) => return Swept::Conflict,
        Err((what, e)) => Err(format!("{what}: {e}")),
        Ok(()) => Ok(()),
    };
    match result {
        Ok(()) => {
            let how = scale_to.map_or_else(|| "thawed and unclaimed".to_string(), |r| format!("scaled back to {r}"));
            let note = format!("released an orphaned claim of {value}: {why}; {how}");
            tracing::info!(%namespace, %name, "{note}");
            publish(ctx, object, EventType::Warning, "OrphanReleased", note).await;
        }
        Err(e) => tracing::warn!(%namespace, %name, error = %e, "sweeper: releasing an orphaned claim failed; retrying at the next sweep"),
    }
    Swept::Done
}

/// Thaws the pods of a workload whose freezing run is finished or gone: the run's recorded
/// pods and policy copy when it still exists, else the current pods and the thaw hook of a
/// BackupPolicy in the namespace that targets the workload in Freeze mode. A workload no
/// policy freezes has nothing to thaw.
async fn thaw_orphan(ctx: &Context, namespace: &str, target: &TargetRef, holder: Option<&ArchiveBackup>) -> Result<(), String> {
    let recorded = holder.and_then(|b| b.status.as_ref());
    let (spec, pods): (Option<BackupPolicySpec>, Option<Vec<String>>) = match recorded.and_then(|s| s.policy_spec.as_ref()) {
        Some(spec) => {
            let q = recorded.and_then(|s| s.quiesce.clone()).unwrap_or_default();
            let pods = q.pods.iter().filter(|p| !q.thawed_pods.contains(p)).cloned().collect();
            (Some(spec.as_ref().clone()), Some(pods))
        }
        None => {
            let policies = Api::<BackupPolicy>::namespaced(ctx.client.clone(), namespace)
                .list(&ListParams::default())
                .await
                .map_err(|e| format!("failed to list BackupPolicies: {e}"))?;
            let spec = policies.items.into_iter().map(|p| p.spec).find(|s| s.target == *target && freeze_thaw(s).is_some());
            (spec, None)
        }
    };
    let Some((spec, hook)) = spec.and_then(|s| freeze_thaw(&s).map(|h| (s, h))) else { return Ok(()) };
    // The thaw's stderr is quoted in the sweeper's log line: no Secret value of the policy in it.
    let redactor = Redactor::load(&ctx.client, namespace, dump::referenced_secrets(&spec))
        .await
        .map_err(|e| format!("failed to read the Secrets of the policy (to redact them): {e}"))?;
    let observed = workload::observe(&ctx.client, namespace, target).await.map_err(|e| format!("failed to read the workload: {e}"))?;
    let pod_ips = observed.map(|t| t.pod_ips).unwrap_or_default();
    let pods = pods.unwrap_or_else(|| pod_ips.keys().cloned().collect());
    let mut errors = Vec::new();
    for pod in pods {
        let ip = match pod_ips.get(&pod) {
            Some(ip) => Some(ip.clone()),
            None => match workload::pod_ip(&ctx.client, namespace, &pod).await {
                Ok(None) => continue,
                Ok(Some(ip)) => ip,
                Err(e) => {
                    errors.push(format!("failed to read pod {pod}: {e}"));
                    continue;
                }
            },
        };
        if let Err(e) = hooks::run(&ctx.exec_client, namespace, &pod, ip.as_deref(), &hook, THAW_TIMEOUT, &redactor).await {
            errors.push(e.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("thaw failed: {}", errors.join("; ")))
    }
}

fn freeze_thaw(spec: &BackupPolicySpec) -> Option<Hook> {
    (spec.quiesce.mode == QuiesceMode::Freeze).then(|| spec.quiesce.thaw.clone()).flatten()
}
