//! The BackupPolicy controller: starts scheduled and requested backups, prunes by retention,
//! reports status, and applies the `deletionPolicy` when the policy is deleted.
//!
//! A policy is reconciled when it changes, and when anything it read from the shared caches
//! changes (`controllers::caches`, mapped by [`affected`]): one of its ArchiveBackups, a
//! RestoreRequest of its namespace (a restore that finishes stops protecting the backup it
//! read from, `restore-source`, so retention may now prune it), its target coming or going,
//! its Namespace's labels, or a ClusterRetentionPolicy; a running drill also by its copy's
//! pods and its database drop Jobs ([`drill_wakeup`]). It observes from those caches and
//! makes no request unless it acts; before pruning it reads everything again from the API
//! server ([`observe_fresh`]).

use super::backoff;
use super::error::{Context as _, Error};
use super::events::publish;
use super::Context;
use crate::api::{
    ArchiveBackup, ArchiveBackupSpec, BackupPolicy, ClusterRetentionPolicy, DeletionPolicy, PruneState, RestoreRequest, TargetKind,
};
use crate::kube::export::prune_job;
use crate::kube::labels::{BACKUP_NOW, POLICY, PRUNE};
use crate::kube::redact::LazyRedactor;
use crate::plan::backup::JobObs;
use crate::plan::policy::prune::{MAINTENANCE_LABEL, REPOSITORY_SECRET_LABEL};
use crate::kube::{self as k, time::from_kube};
use crate::plan::policy::drill::{waiting_on, CopyPod, DRILL_NOW};
use crate::plan::restore::RESTORE_LABEL;
use crate::plan::policy::{decide, PolicyDecision, PolicyObservation};
use super::fresh::{self, Fresh};
use crate::plan::validate::validate_backup_policy_object;
use super::caches::Change;
use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::Instrument;

/// The finalizer that applies `deletionPolicy` before a policy goes.
pub const FINALIZER: &str = "archivist.dev/deletion-policy";

/// Runs the controller until `stop` resolves (the shutdown began), woken by its own watch
/// and by every change of the shared caches it reads (`changes`, see `controllers::caches`).
pub async fn run(ctx: Arc<Context>, changes: UnboundedReceiver<Change>, stop: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    // The controller's own store, without managedFields (no reader uses them; a policy's are
    // about as large as the rest of it).
    let (policies, writer) = kube::runtime::reflector::store::<BackupPolicy>();
    ctx.metrics.backup_gauges.observe_policies(policies.clone());
    let trigger = watcher(ctx.watched::<BackupPolicy>(), watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|p: &mut BackupPolicy| p.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects();
    // Its repository maintenance Jobs (owned by the policy that made them) wake it when they end.
    let wake_by_pod = drill_wakeup(policies.clone());
    let wake_by_job = wake_by_pod.clone();
    let controller = Controller::for_stream(trigger, policies.clone())
        .owns(ctx.watched::<Job>(), watcher::Config::default().labels(&format!("{MAINTENANCE_LABEL}=prune")))
        // A drill's copy pods (their readiness) and its database drop Jobs (their end).
        .watches(ctx.watched::<Pod>(), watcher::Config::default().labels(RESTORE_LABEL), move |pod: Pod| wake_by_pod(&pod.metadata))
        .watches(ctx.watched::<Job>(), watcher::Config::default().labels(RESTORE_LABEL), move |job: Job| wake_by_job(&job.metadata))
        .with_config(super::controller_config());
    let woken = changes.flat_map(move |change| futures::stream::iter(affected(&policies, &change)));
    controller
        .reconcile_on(woken)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "backuppolicy reconcile ended with an error");
            }
        })
        .await;
}

/// The policy a pod or Job labelled `archivist.dev/restore` wakes: the one whose drill follows
/// that restore (`plan::policy::drill::waiting_on`); none for other restores' objects.
fn drill_wakeup(policies: Store<BackupPolicy>) -> impl Fn(&ObjectMeta) -> Option<ObjectRef<BackupPolicy>> + Clone + Send + Sync + 'static {
    move |meta: &ObjectMeta| {
        let request = meta.labels.as_ref()?.get(RESTORE_LABEL)?;
        let state = policies.state();
        waiting_on(state.iter().map(AsRef::as_ref), meta.namespace.as_deref()?, request).map(ObjectRef::from_obj)
    }
}

/// The policies a change of the caches concerns.
pub fn affected(policies: &Store<BackupPolicy>, change: &Change) -> Vec<ObjectRef<BackupPolicy>> {
    let of = |keep: &dyn Fn(&BackupPolicy) -> bool| policies.state().iter().filter(|p| keep(p)).map(|p| ObjectRef::from_obj(p.as_ref())).collect();
    match change {
        Change::Backup { namespace, policy } => vec![ObjectRef::new(policy).within(namespace)],
        // Which policy owns the backup a restore reads is not known from the request alone,
        // and restores are rare: every policy of the namespace.
        Change::Restores { namespace } | Change::Namespace { name: namespace } => of(&|p| p.namespace().as_deref() == Some(namespace)),
        Change::Target { namespace, kind, name } => {
            of(&|p| p.namespace().as_deref() == Some(namespace) && p.spec.target.kind == *kind && p.spec.target.name == *name)
        }
        Change::All => of(&|_| true),
    }
}

fn error_policy(policy: Arc<BackupPolicy>, error: &FinalizerError, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&backoff::key("BackupPolicy", policy.namespace().as_deref(), &policy.name_any()));
    tracing::warn!(namespace = policy.namespace().unwrap_or_default(), name = policy.name_any(), %error, retry_in_ms = delay.as_millis() as u64, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// The error of a reconcile wrapped by the finalizer helper.
pub type FinalizerError = kube::runtime::finalizer::Error<Error>;

/// One reconcile of one BackupPolicy.
pub async fn reconcile(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action, FinalizerError> {
    let namespace = policy.namespace().unwrap_or_default();
    let api = Api::<BackupPolicy>::namespaced(ctx.client.clone(), &namespace);
    let key = backoff::key("BackupPolicy", Some(&namespace), &policy.name_any());
    let span = tracing::info_span!("reconcile", kind = "BackupPolicy", namespace = %namespace, name = policy.name_any());
    let result = finalizer(&api, FINALIZER, policy, |event| async {
        match event {
            Finalizer::Apply(policy) => apply(&policy, &ctx).await,
            Finalizer::Cleanup(policy) => cleanup(&policy, &ctx).await,
        }
    })
    .instrument(span)
    .await;
    if result.is_ok() {
        ctx.backoff.succeeded(&key);
    }
    result
}

async fn policy_backups(ctx: &Context, namespace: &str, policy: &str) -> Result<Vec<ArchiveBackup>, Error> {
    let all = Api::<ArchiveBackup>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .during(|| format!("failed to list ArchiveBackups in {namespace}"))?;
    Ok(all.items.into_iter().filter(|b| b.spec.policy_name == policy).collect())
}

/// The RestoreRequests of `namespace` (the unfinished ones protect their source backups).
async fn restore_requests(ctx: &Context, namespace: &str) -> Result<Vec<RestoreRequest>, Error> {
    Api::<RestoreRequest>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map(|list| list.items)
        .during(|| format!("failed to list RestoreRequests in {namespace}"))
}

async fn target_exists(ctx: &Context, namespace: &str, policy: &BackupPolicy) -> Result<bool, Error> {
    let target = &policy.spec.target;
    let found = match target.kind {
        TargetKind::StatefulSet => Api::<StatefulSet>::namespaced(ctx.client.clone(), namespace).get_opt(&target.name).await.map(|o| o.is_some()),
        TargetKind::Deployment => Api::<Deployment>::namespaced(ctx.client.clone(), namespace).get_opt(&target.name).await.map(|o| o.is_some()),
    };
    found.during(|| format!("failed to read target {:?} {namespace}/{}", target.kind, target.name))
}

/// The specs of the ClusterRetentionPolicies whose `namespaceSelector` matches `namespace`.
async fn cluster_policies(ctx: &Context, namespace: &str) -> Result<Vec<crate::api::ClusterRetentionPolicySpec>, Error> {
    let policies = Api::<ClusterRetentionPolicy>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .during(|| "failed to list ClusterRetentionPolicies".to_string())?;
    if policies.items.is_empty() {
        return Ok(Vec::new());
    }
    let labels: BTreeMap<String, String> = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(namespace)
        .await
        .during(|| format!("failed to read Namespace {namespace}"))?
        .and_then(|ns| ns.metadata.labels)
        .unwrap_or_default();
    Ok(policies
        .items
        .into_iter()
        .filter(|p| p.spec.namespace_selector.as_ref().is_none_or(|s| s.matches(&labels)))
        .map(|p| crate::plan::retention::governance::acting_spec(&p))
        .collect())
}

/// What a policy reconcile reads.
struct Observed {
    backups: Vec<ArchiveBackup>,
    restores: Vec<RestoreRequest>,
    target_exists: bool,
    cluster: Vec<crate::api::ClusterRetentionPolicySpec>,
}

/// Reads from the shared caches (`controllers::caches`): no request.
async fn observe_cached(policy: &BackupPolicy, ctx: &Context, namespace: &str) -> Observed {
    let caches = &ctx.caches;
    caches.ready().await;
    let target = &policy.spec.target;
    Observed {
        backups: caches.backups_of(namespace, &policy.name_any()),
        restores: caches.restores_in(namespace),
        target_exists: caches.target_exists(namespace, target.kind, &target.name),
        cluster: caches.cluster_policies_for(namespace),
    }
}

/// Reads from the API server: before pruning, since deleting restore points must not follow a
/// cache that may not show yet a hold, a restore or a run that began since.
async fn observe_fresh(policy: &BackupPolicy, ctx: &Context, namespace: &str) -> Result<Observed, Error> {
    Ok(Observed {
        backups: policy_backups(ctx, namespace, &policy.name_any()).await?,
        restores: restore_requests(ctx, namespace).await?,
        target_exists: target_exists(ctx, namespace, policy).await?,
        cluster: cluster_policies(ctx, namespace).await?,
    })
}

async fn apply(policy: &BackupPolicy, ctx: &Context) -> Result<Action, Error> {
    let namespace = policy.namespace().ok_or_else(|| Error::MissingNamespace(policy.name_any()))?;
    let mut policy = std::borrow::Cow::Borrowed(policy);
    let mut read_again = true;
    loop {
        let prune_job = observe_prune_job(&policy, ctx, &namespace).await?;
        let cached = observe_cached(&policy, ctx, &namespace).await;
        let copy_pods = super::drill::observe_copy_pods(ctx, &namespace, policy.status.as_ref(), &cached.restores).await?;
        let mut decision = decide_from(&policy, &cached, prune_job.as_ref(), copy_pods.as_deref());
        if decision.drill.has_side_effect() && std::mem::take(&mut read_again) {
            // A drill step decided from a stale status could repeat itself (start a second
            // drill, recreate a torn-down request): the policy is read again first
            // (`controllers::fresh`).
            let api = Api::<BackupPolicy>::namespaced(ctx.client.clone(), &namespace);
            match fresh::read_again(&api, &policy).await.during(|| format!("failed to read BackupPolicy {namespace}/{}", policy.name_any()))? {
                Fresh::Gone => return Ok(Action::await_change()),
                Fresh::Newer(newer) => {
                    policy = std::borrow::Cow::Owned(newer);
                    continue;
                }
                Fresh::Current => {}
            }
        }
        if !decision.prune.is_empty() {
            decision = decide_from(&policy, &observe_fresh(&policy, ctx, &namespace).await?, prune_job.as_ref(), copy_pods.as_deref());
        }
        return act_on(&policy, ctx, &namespace, &decision).await;
    }
}

/// The recorded repository maintenance Job (`status.prune.job`) while it is Running: one list
/// of the namespace's prune Jobs of the repository Secret (a failed one's message quotes its
/// pod's last lines, with the Secret's values replaced). `None` otherwise, or when it is gone.
async fn observe_prune_job(policy: &BackupPolicy, ctx: &Context, namespace: &str) -> Result<Option<JobObs>, Error> {
    let recorded = policy.status.as_ref().and_then(|s| s.prune.as_ref()).filter(|p| p.state == PruneState::Running);
    let (Some(recorded), Some(export)) = (recorded, policy.spec.export.as_ref()) else { return Ok(None) };
    let selector = format!("{MAINTENANCE_LABEL}=prune,{REPOSITORY_SECRET_LABEL}={}", export.repository_secret);
    let redactor = LazyRedactor::new(&ctx.client, namespace, [export.repository_secret.as_str()]);
    let mut jobs = crate::kube::jobs::list(&ctx.client, namespace, &selector, &redactor)
        .await
        .during(|| format!("failed to list the prune Jobs of {namespace}/{}", export.repository_secret))?;
    Ok(jobs.remove(&recorded.job))
}

/// The pure decision (`plan::policy::decide`) from what was observed.
fn decide_from(policy: &BackupPolicy, observed: &Observed, prune_job: Option<&JobObs>, copy_pods: Option<&[CopyPod]>) -> PolicyDecision {
    let name = policy.name_any();
    let problems: Vec<String> = validate_backup_policy_object(policy).iter().map(ToString::to_string).collect();
    let status = policy.status.clone().unwrap_or_default();
    let created = policy.metadata.creation_timestamp.as_ref().map(from_kube).unwrap_or_else(chrono::Utc::now);
    decide(&PolicyObservation {
        now: chrono::Utc::now(),
        name: &name,
        generation: policy.metadata.generation,
        created,
        spec: &policy.spec,
        status: &status,
        backup_now: policy.annotations().get(BACKUP_NOW).map(String::as_str),
        problems: &problems,
        target_exists: observed.target_exists,
        backups: &observed.backups,
        restores: &observed.restores,
        cluster: &observed.cluster,
        prune_job,
        drill_now: policy.annotations().get(DRILL_NOW).map(String::as_str),
        copy_pods,
    })
}

/// Creates the run, prunes, publishes and writes the status the decision says.
async fn act_on(policy: &BackupPolicy, ctx: &Context, namespace: &str, decision: &PolicyDecision) -> Result<Action, Error> {
    let namespace = namespace.to_string();
    let name = policy.name_any();
    let backup_api = Api::<ArchiveBackup>::namespaced(ctx.client.clone(), &namespace);
    if let Some(new) = &decision.create {
        let mut backup = ArchiveBackup::new(&new.name, ArchiveBackupSpec { policy_name: name.clone(), reason: new.reason, hold: false });
        backup.metadata.namespace = Some(namespace.clone());
        backup.metadata.labels = Some(BTreeMap::from([(POLICY.to_string(), name.clone())]));
        let created = k::create_if_absent(&backup_api, &backup)
            .await
            .during(|| format!("failed to create ArchiveBackup {namespace}/{}", new.name))?;
        if created {
            publish(ctx, policy, EventType::Normal, "BackupCreated", format!("{:?} backup {} created", new.reason, new.name)).await;
        }
        if decision.skipped_runs > 0 {
            publish(
                ctx,
                policy,
                EventType::Warning,
                "MissedSchedules",
                format!("{} scheduled run(s) were missed (operator down or a run in progress); started only the newest", decision.skipped_runs),
            )
            .await;
        }
    }
    if !decision.prune.is_empty() {
        for pruned in &decision.prune {
            if decision.forget_first.contains(pruned) {
                // Its export goes first: the run forgets its repository snapshots, then
                // deletes itself (`plan::backup::exporting::pruning`).
                let patch = serde_json::json!({"metadata": {"annotations": {PRUNE: "retention"}}});
                match backup_api.patch(pruned, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(e) => return Err(e).during(|| format!("failed to mark ArchiveBackup {namespace}/{pruned} pruned")),
                }
                continue;
            }
            k::delete_if_present(&backup_api, pruned, &DeleteParams::background())
                .await
                .during(|| format!("failed to prune ArchiveBackup {namespace}/{pruned}"))?;
        }
        publish(ctx, policy, EventType::Normal, "Pruned", format!("retention pruned {}", decision.prune.join(", "))).await;
        super::cluster_retention::count_pruned(ctx, &namespace, &decision.pruned_by_ceilings).await;
    }
    let status_api = Api::<BackupPolicy>::namespaced(ctx.client.clone(), &namespace);
    let mut status = decision.status.clone();
    let drilled = super::drill::act(ctx, policy, &namespace, &decision.drill, &mut status).await?;
    let mut recorded = drilled.recorded;
    if let (Some((job, at)), Some(export)) = (&decision.start_prune, policy.spec.export.as_ref()) {
        // Recorded first: status.prune names the Job as Running before it exists.
        k::apply_status(&status_api, &name, &status).await.during(|| format!("failed to write status of BackupPolicy {namespace}/{name}"))?;
        recorded = true;
        let created = k::create_if_absent(&Api::<Job>::namespaced(ctx.client.clone(), &namespace), &prune_job(policy, job, export))
            .await
            .during(|| format!("failed to create prune Job {namespace}/{job}"))?;
        let how = if created { "started" } else { "joined (another policy of the same repository Secret started it)" };
        publish(ctx, policy, EventType::Normal, "RepositoryPruneStarted", format!("repository maintenance (restic prune) of Secret {}'s repository, scheduled {at}: Job {job} {how}", export.repository_secret)).await;
    }
    let before = policy.status.as_ref().and_then(|s| s.prune.as_ref());
    if let (Some(before), Some(after)) = (before, decision.status.prune.as_ref()) {
        if before.state == PruneState::Running && before.job == after.job {
            match after.state {
                PruneState::Succeeded => publish(ctx, policy, EventType::Normal, "RepositoryPruned", format!("restic prune (Job {}) succeeded", after.job)).await,
                PruneState::Failed => {
                    let why = after.message.clone().unwrap_or_default();
                    publish(ctx, policy, EventType::Warning, "RepositoryPruneFailed", format!("restic prune (Job {}) failed: {why}; the next scheduled time tries again", after.job)).await;
                }
                PruneState::Running => {}
            }
        }
    }
    if !recorded && policy.status.as_ref() != Some(&status) {
        k::apply_status(&status_api, &name, &status)
            .await
            .during(|| format!("failed to write status of BackupPolicy {namespace}/{name}"))?;
    }
    Ok(decision.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Tears down a drill still going, then applies `deletionPolicy`: `Delete` deletes the policy's ArchiveBackups (and with them
/// their snapshots), except held ones (legal hold wins; an Event says which were kept);
/// `Retain` keeps them. A run still in progress is deleted too: its `archivist.dev/release`
/// finalizer makes it release the archive before it goes.
async fn cleanup(policy: &BackupPolicy, ctx: &Context) -> Result<Action, Error> {
    let namespace = policy.namespace().ok_or_else(|| Error::MissingNamespace(policy.name_any()))?;
    // A drill still going: what it restored is deleted (its request goes with the policy).
    super::drill::tear_down_on_deletion(ctx, policy, &namespace).await?;
    if policy.spec.deletion_policy == DeletionPolicy::Delete {
        let backups = policy_backups(ctx, &namespace, &policy.name_any()).await?;
        let api = Api::<ArchiveBackup>::namespaced(ctx.client.clone(), &namespace);
        let (held, deletable): (Vec<&ArchiveBackup>, Vec<&ArchiveBackup>) = backups.iter().partition(|b| b.spec.hold);
        for backup in deletable {
            let name = backup.name_any();
            k::delete_if_present(&api, &name, &DeleteParams::background())
                .await
                .during(|| format!("failed to delete ArchiveBackup {namespace}/{name}"))?;
        }
        if !held.is_empty() {
            let names: Vec<String> = held.iter().map(|b| b.name_any()).collect();
            publish(
                ctx,
                policy,
                EventType::Warning,
                "HeldBackupsKept",
                format!("deletionPolicy Delete: kept {} held backup(s) (legal hold wins): {}", names.len(), names.join(", ")),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}


#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store;

    fn policy(namespace: &str, name: &str, target: &str) -> BackupPolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "BackupPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"target": {"kind": "StatefulSet", "name": target}, "stores": []}
        }))
        .expect("a valid policy")
    }

    #[test]
    fn each_change_wakes_the_policies_it_concerns() {
        let (reader, mut writer) = store::<BackupPolicy>();
        for p in [policy("a", "p1", "archive"), policy("a", "p2", "other"), policy("b", "p1", "archive")] {
            writer.apply_watcher_event(&watcher::Event::Apply(p));
        }
        let names = |change: Change| {
            let mut refs: Vec<String> = affected(&reader, &change).iter().map(|r| format!("{}/{}", r.namespace.clone().unwrap_or_default(), r.name)).collect();
            refs.sort();
            refs
        };
        let cases: Vec<(Change, Vec<&str>)> = vec![
            (Change::Backup { namespace: "a".into(), policy: "p2".into() }, vec!["a/p2"]),
            (Change::Restores { namespace: "a".into() }, vec!["a/p1", "a/p2"]),
            (Change::Namespace { name: "b".into() }, vec!["b/p1"]),
            (Change::Target { namespace: "a".into(), kind: TargetKind::StatefulSet, name: "archive".into() }, vec!["a/p1"]),
            (Change::Target { namespace: "a".into(), kind: TargetKind::Deployment, name: "archive".into() }, vec![]),
            (Change::All, vec!["a/p1", "a/p2", "b/p1"]),
        ];
        for (change, want) in cases {
            assert_eq!(names(change.clone()), want, "{change:?}");
        }
    }
}
