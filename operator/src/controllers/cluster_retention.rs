//! The ClusterRetentionPolicy evaluator: every [`EVALUATE_INTERVAL`], when a cluster policy's
//! spec changes, and when an orphan's grace period ends, each ClusterRetentionPolicy gets
//! its status (`policies`, `restorePoints`, `storageBytes`, `lastEvaluated`) and collects the
//! orphaned VolumeSnapshots of its namespaces (`plan::retention::governance`).
//!
//! Retention itself stays with the BackupPolicy controller, which re-evaluates every policy at
//! once when a cluster policy changes, and counts what the ceilings prune in `prunedTotal`
//! ([`count_pruned`]).
//!
//! Its `Ready` condition says whether the spec is valid; an invalid cluster policy only
//! protects (`plan::retention::governance::acting_spec`): it collects no orphans here.
//!
//! One evaluation makes two list requests (the BackupPolicies' and the labelled
//! VolumeSnapshots' metadata) and reads the ArchiveBackups and Namespaces from the shared
//! caches; before it deletes an orphan it reads its ArchiveBackup from the API server, and the
//! delete carries the snapshot's uid. An operator that watches one namespace does not run it:
//! a cluster policy's status covers the whole cluster.

use super::Context;
use crate::api::{BackupPolicy, ClusterRetentionPolicy};
use crate::kube::labels::BACKUP;
use crate::kube::snapshot::VolumeSnapshot;
use crate::api::ConditionStatus;
use crate::plan::conditions;
use crate::plan::retention::governance::{governed, orphan_actions, ready, LabelledSnapshot, OrphanAction, DEFAULT_ORPHAN_GRACE_SECONDS};
use crate::plan::validate::validate_cluster_retention_policy_object;
use crate::plan::retention::Reason;
use chrono::{DateTime, Utc};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often every cluster policy is evaluated when nothing wakes the evaluator sooner.
pub const EVALUATE_INTERVAL: Duration = Duration::from_secs(60);
/// The annotation that marks an orphaned VolumeSnapshot with the time it was first seen so.
pub const ORPHANED_SINCE: &str = "archivist.dev/orphaned-since";

/// Evaluates now, then again after [`EVALUATE_INTERVAL`], at the next orphan deadline, or when
/// `wake` is notified (a cluster policy's spec changed), until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, wake: Arc<Notify>, shutdown: impl std::future::Future<Output = ()>) {
    if ctx.namespace.is_some() {
        tracing::info!("one namespace watched: ClusterRetentionPolicies are not evaluated here (their status covers the cluster)");
        return;
    }
    tokio::pin!(shutdown);
    loop {
        let next = evaluate_all(&ctx).await;
        let wait = next.and_then(|at| (at - Utc::now()).to_std().ok()).map_or(EVALUATE_INTERVAL, |d| d.min(EVALUATE_INTERVAL));
        tokio::select! {
            () = tokio::time::sleep(wait.max(Duration::from_secs(1))) => {}
            () = wake.notified() => {}
            () = &mut shutdown => return,
        }
    }
}

/// One evaluation of every cluster policy; failures are logged and retried at the next one.
/// Returns when the next orphan's grace period ends.
async fn evaluate_all(ctx: &Context) -> Option<DateTime<Utc>> {
    ctx.caches.ready().await;
    let cluster_policies = ctx.caches.cluster_policies.state();
    if cluster_policies.is_empty() {
        return None;
    }
    let policies = match Api::<BackupPolicy>::all(ctx.client.clone()).list_metadata(&ListParams::default()).await {
        Ok(list) => list.items.iter().filter_map(|p| Some((p.namespace()?, p.name_any()))).collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(error = %e, "cluster retention: cannot list BackupPolicies");
            return None;
        }
    };
    let snapshots = match Api::<VolumeSnapshot>::all(ctx.client.clone()).list_metadata(&ListParams::default().labels(BACKUP)).await {
        Ok(list) => list.items,
        Err(e) => {
            tracing::warn!(error = %e, "cluster retention: cannot list the labelled VolumeSnapshots");
            return None;
        }
    };
    // Read by reference: the cache holds every restore point of the cluster.
    let backups = ctx.caches.backups.state();
    let existing: BTreeSet<(String, String)> = backups.iter().filter_map(|b| Some((b.namespace()?, b.name_any()))).collect();
    let uids: BTreeMap<(String, String), Option<String>> = snapshots.iter().filter_map(|s| Some(((s.namespace()?, s.name_any()), s.uid()))).collect();
    let now = Utc::now();
    let mut next: Option<DateTime<Utc>> = None;
    for crp in cluster_policies {
        let namespaces = matching_namespaces(ctx, &crp);
        let governed_policies: BTreeSet<(String, String)> = policies.iter().filter(|(ns, _)| namespaces.contains(ns)).cloned().collect();
        let labelled: Vec<LabelledSnapshot> = snapshots
            .iter()
            .filter_map(|s| {
                let namespace = s.namespace()?;
                namespaces.contains(&namespace).then(|| LabelledSnapshot {
                    namespace,
                    name: s.name_any(),
                    backup: s.labels().get(BACKUP).cloned().unwrap_or_default(),
                    orphaned_since: s.annotations().get(ORPHANED_SINCE).cloned(),
                    deleting: s.metadata.deletion_timestamp.is_some(),
                })
            })
            .collect();
        let problems = validate_cluster_retention_policy_object(&crp);
        let grace = crp.spec.orphan_grace_period_seconds.unwrap_or(DEFAULT_ORPHAN_GRACE_SECONDS);
        // An invalid cluster policy collects no orphans (it only protects).
        let (actions, due) = if problems.is_empty() { orphan_actions(&labelled, &existing, now, grace) } else { (Vec::new(), None) };
        next = crate::plan::sooner(next, due);
        let mut deleted = 0u64;
        for (snapshot, action) in actions {
            let uid = uids.get(&(snapshot.namespace.clone(), snapshot.name.clone())).cloned().flatten();
            match act_on_orphan(ctx, &crp, snapshot, &action, uid).await {
                Ok(true) => deleted += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, namespace = %snapshot.namespace, name = %snapshot.name, "cluster retention: orphan collection failed"),
            }
        }
        let summary = governed(&governed_policies, backups.iter().map(AsRef::as_ref));
        let condition = ready(&problems, &summary, namespaces.len());
        if let Err(e) = record(ctx, &crp.name_any(), summary, condition, deleted, now).await {
            tracing::warn!(error = %e, policy = %crp.name_any(), "cluster retention: cannot write status");
        }
    }
    next
}

/// The namespaces in scope whose labels `crp`'s `namespaceSelector` matches.
fn matching_namespaces(ctx: &Context, crp: &ClusterRetentionPolicy) -> BTreeSet<String> {
    ctx.caches
        .namespaces
        .state()
        .iter()
        .filter(|ns| {
            let labels = ns.metadata.labels.clone().unwrap_or_default();
            crp.spec.namespace_selector.as_ref().is_none_or(|s| s.matches(&labels))
        })
        .map(|ns| ns.name_any())
        .collect()
}

/// Performs one orphan action; returns whether a snapshot was deleted.
async fn act_on_orphan(ctx: &Context, crp: &ClusterRetentionPolicy, snapshot: &LabelledSnapshot, action: &OrphanAction, uid: Option<String>) -> Result<bool, kube::Error> {
    let api = Api::<VolumeSnapshot>::namespaced(ctx.client.clone(), &snapshot.namespace);
    let mark = |value: serde_json::Value| serde_json::json!({"metadata": {"annotations": {ORPHANED_SINCE: value}}});
    match action {
        OrphanAction::Mark(at) => {
            api.patch(&snapshot.name, &PatchParams::default(), &Patch::Merge(&mark(serde_json::json!(at.to_rfc3339())))).await?;
            Ok(false)
        }
        OrphanAction::Unmark => {
            api.patch(&snapshot.name, &PatchParams::default(), &Patch::Merge(&mark(serde_json::Value::Null))).await?;
            Ok(false)
        }
        OrphanAction::Delete => {
            // The cache may lag: the ArchiveBackup is read again first, and one that exists
            // keeps its snapshot (the mark goes at the next evaluation).
            let backups = Api::<crate::api::ArchiveBackup>::namespaced(ctx.client.clone(), &snapshot.namespace);
            if backups.get_opt(&snapshot.backup).await?.is_some() {
                return Ok(false);
            }
            let params = DeleteParams { preconditions: Some(Preconditions { uid, resource_version: None }), ..DeleteParams::default() };
            match api.delete(&snapshot.name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => return Ok(false),
                Err(e) => return Err(e),
            }
            let note = format!(
                "deleted VolumeSnapshot {}/{}: an orphan of ArchiveBackup {} (gone) for {}s or more",
                snapshot.namespace,
                snapshot.name,
                snapshot.backup,
                crp.spec.orphan_grace_period_seconds.unwrap_or(DEFAULT_ORPHAN_GRACE_SECONDS)
            );
            tracing::info!(policy = %crp.name_any(), "{note}");
            super::events::publish(ctx, crp, kube::runtime::events::EventType::Normal, "OrphanSnapshotDeleted", note).await;
            Ok(true)
        }
    }
}

/// Writes the cluster policy `name`'s status: the summary, `lastEvaluated`, and
/// `orphansDeleted` raised by `deleted`, against a fresh read (its resourceVersion guards the
/// counter; a conflict is tried once more).
async fn record(ctx: &Context, name: &str, summary: crate::plan::retention::governance::Governed, condition: (ConditionStatus, &str, String), deleted: u64, now: DateTime<Utc>) -> Result<(), kube::Error> {
    let api = Api::<ClusterRetentionPolicy>::all(ctx.client.clone());
    for attempt in 0..2 {
        let Some(current) = api.get_opt(name).await? else { return Ok(()) };
        let orphans = current.status.as_ref().and_then(|s| s.orphans_deleted).unwrap_or(0) + deleted;
        let mut conditions = current.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
        conditions::set(&mut conditions, "Ready", condition.0, condition.1, condition.2.clone(), now, current.metadata.generation);
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": current.resource_version()},
            "status": {
                "conditions": conditions,
                "observedGeneration": current.metadata.generation,
                "policies": summary.policies,
                "restorePoints": summary.restore_points,
                "storageBytes": summary.storage_bytes,
                "orphansDeleted": orphans,
                "lastEvaluated": now,
            }
        });
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(()),
            Err(e) if crate::kube::is_conflict(&e) && attempt == 0 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Counts restore points a policy in `namespace` pruned by cluster ceilings (`ceilings`: the
/// ceiling reasons of each) in `status.prunedTotal` of every matching cluster policy that sets
/// the ceiling: `maxRetentionDays` for `max-retention`, `maxRestorePointsPerPolicy` for
/// `max-restore-points`. Failures are logged: the count is a report, never a reason to prune
/// again.
pub async fn count_pruned(ctx: &Context, namespace: &str, ceilings: &[Vec<Reason>]) {
    if ceilings.is_empty() {
        return;
    }
    let labels = ctx
        .caches
        .namespaces
        .get(&kube::runtime::reflector::ObjectRef::new(namespace))
        .and_then(|ns| ns.metadata.labels.clone())
        .unwrap_or_default();
    let api = Api::<ClusterRetentionPolicy>::all(ctx.client.clone());
    for crp in ctx.caches.cluster_policies.state() {
        if !crp.spec.namespace_selector.as_ref().is_none_or(|s| s.matches(&labels)) {
            continue;
        }
        let sets = |reason: &Reason| match reason {
            Reason::MaxRetention => crp.spec.max_retention_days.is_some_and(|d| d > 0),
            Reason::MaxRestorePoints => crp.spec.max_restore_points_per_policy.is_some_and(|n| n > 0),
            _ => false,
        };
        let count = ceilings.iter().filter(|reasons| reasons.iter().any(sets)).count() as u64;
        if count == 0 {
            continue;
        }
        let name = crp.name_any();
        for attempt in 0..3 {
            let result = async {
                let Some(current) = api.get_opt(&name).await? else { return Ok(()) };
                let total = current.status.as_ref().and_then(|s| s.pruned_total).unwrap_or(0) + count;
                let patch = serde_json::json!({"metadata": {"resourceVersion": current.resource_version()}, "status": {"prunedTotal": total}});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
            }
            .await;
            match result {
                Ok(()) => break,
                Err(e) if crate::kube::is_conflict(&e) && attempt < 2 => continue,
                Err(e) => {
                    tracing::warn!(error = %e, policy = %name, "cannot count pruned restore points in status.prunedTotal");
                    break;
                }
            }
        }
    }
}
