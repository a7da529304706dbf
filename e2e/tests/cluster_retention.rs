//! The ClusterRetentionPolicy evaluator against the local cluster, with an operator that
//! watches every namespace (the evaluator does not run in a namespace-scoped one):
//! - its status reports the policies and restore points it governs and their storage, and
//!   counts what its ceiling pruned (`prunedTotal`);
//! - a VolumeSnapshot labelled `archivist.dev/backup` whose ArchiveBackup is gone is deleted
//!   after `orphanGracePeriodSeconds`, with an Event and a count; a labelled snapshot whose
//!   backup exists, and an unlabelled one, are left alone.
//!
//! - made invalid, it says so in `Ready` and only protects: its ceiling and orphan collection
//!   stop.
//!
//! Its one test is alone in this binary: the operator it starts acts in every namespace.

mod backup_support;

use std::time::Duration;

use archivist::api::{ArchiveBackup, ClusterRetentionPolicy};
use archivist::plan::restore::shape;
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::operator::{ensure_crds, events_of, Operator};
use archivist_e2e::testing::volumes::snapshot;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_cluster_policy_reports_what_it_governs_counts_its_prunes_and_collects_orphans() {
    with_namespace("crp", |client, ns| async move {
        ensure_crds(&client).await?;
        // The cluster policy selects this namespace only, by a label of its own.
        let label = serde_json::json!({"metadata": {"labels": {"archivist-e2e/crp": ns}}});
        Api::<Namespace>::all(client.clone()).patch(&ns, &PatchParams::default(), &Patch::Merge(&label)).await?;
        let crp_name = format!("crp-{ns}");
        let crp: ClusterRetentionPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "ClusterRetentionPolicy",
            "metadata": {"name": crp_name},
            "spec": {"namespaceSelector": {"matchLabels": {"archivist-e2e/crp": ns}}, "maxRestorePointsPerPolicy": 1, "orphanGracePeriodSeconds": 3},
        }))?;
        let crps = Api::<ClusterRetentionPolicy>::all(client.clone());
        crps.create(&PostParams::default(), &crp).await?;
        let outcome = async {
            let mut operator = Operator::start_cluster_wide(&ns).await?;
            data_pvc(&client, &ns, "meta", &[]).await?;
            data_pvc(&client, &ns, "content", &[]).await?;
            archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
            let spec = "  target: {kind: StatefulSet, name: archive}\n  quiesce: {mode: None}\n  retention: {keepLast: 5}\n  stores:\n  - name: s1\n    metadata: {volumeClaims: [meta]}\n    content: {volumeClaims: [content]}\n";
            policy(&client, &ns, "mail", spec).await?;
            for name in ["b1", "b2"] {
                start_backup(&client, &ns, name, "mail").await?;
                wait_completed(&client, &ns, name, &mut operator).await?;
            }
            // keepLast 5, but the ceiling keeps 1: b1 goes, counted by the cluster policy.
            let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
            until("b1 to be pruned by the ceiling", Duration::from_secs(60), || async { Ok(backups.get_opt("b1").await?.is_none()) }).await?;
            let b2 = backups.get("b2").await?;
            let bytes: f64 = b2.status.iter().flat_map(|s| &s.items).filter_map(|i| i.restore_size.as_deref()).filter_map(shape::bytes).sum();
            let want_bytes = bytes.round() as u64;
            until("the cluster policy's status", Duration::from_secs(90), || async {
                let status = crps.get(&crp_name).await?.status.unwrap_or_default();
                eprintln!("status: {status:?}");
                let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == archivist::api::ConditionStatus::True && c.reason == "Evaluated");
                Ok(ready
                    && status.policies == Some(1)
                    && status.restore_points == Some(1)
                    && status.storage_bytes == Some(want_bytes)
                    && status.pruned_total == Some(1)
                    && status.last_evaluated.is_some())
            })
            .await?;

            // Three snapshots of `meta`: an orphan, one of a backup that exists, one not ours.
            let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
            for (name, label) in [("orphan", Some("gone-run")), ("of-b2", Some("b2")), ("foreign", None)] {
                let mut s = snapshot(name, "meta", None);
                if let Some(backup) = label {
                    s.metadata.labels = Some([("archivist.dev/backup".to_string(), backup.to_string())].into());
                }
                snapshots.create(&PostParams::default(), &s).await?;
            }
            until("the orphan to be deleted", Duration::from_secs(150), || async { Ok(snapshots.get_opt("orphan").await?.is_none()) }).await?;
            for kept in ["of-b2", "foreign"] {
                anyhow::ensure!(snapshots.get_opt(kept).await?.is_some(), "{kept} was deleted");
            }
            until("orphansDeleted 1 and the Event", Duration::from_secs(90), || async {
                let status = crps.get(&crp_name).await?.status.unwrap_or_default();
                let events = events_of(&client, "default", "ClusterRetentionPolicy", &crp_name).await?;
                let noted = events.iter().any(|e| e.reason.as_deref() == Some("OrphanSnapshotDeleted") && e.message.as_deref().is_some_and(|m| m.contains(&format!("{ns}/orphan"))));
                Ok(status.orphans_deleted == Some(1) && noted)
            })
            .await?;

            // Made invalid (a floor above its ceiling): Ready=False names the field, and the
            // policy only protects: its ceiling prunes nothing, it collects no orphan.
            let invalid = serde_json::json!({"spec": {"minKeepDaily": 3}});
            crps.patch(&crp_name, &PatchParams::default(), &Patch::Merge(&invalid)).await?;
            until("Ready=False InvalidSpec", Duration::from_secs(90), || async {
                let status = crps.get(&crp_name).await?.status.unwrap_or_default();
                Ok(status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == archivist::api::ConditionStatus::False && c.reason == "InvalidSpec" && c.message.contains("spec.minKeepDaily")))
            })
            .await?;
            let mut orphan = snapshot("orphan-2", "meta", None);
            orphan.metadata.labels = Some([("archivist.dev/backup".to_string(), "gone-run".to_string())].into());
            snapshots.create(&PostParams::default(), &orphan).await?;
            start_backup(&client, &ns, "b3", "mail").await?;
            wait_completed(&client, &ns, "b3", &mut operator).await?;
            // An evaluation after its grace period (3 s) ended: a valid policy would delete it.
            let grace_ended = chrono::Utc::now() + chrono::Duration::seconds(4);
            until("an evaluation after orphan-2's grace period", Duration::from_secs(120), || async {
                let status = crps.get(&crp_name).await?.status.unwrap_or_default();
                Ok(status.last_evaluated.is_some_and(|t| t > grace_ended))
            })
            .await?;
            for kept in ["b2", "b3"] {
                anyhow::ensure!(backups.get_opt(kept).await?.is_some(), "{kept} was pruned by the ceiling of an invalid cluster policy");
            }
            anyhow::ensure!(snapshots.get_opt("orphan-2").await?.is_some(), "an invalid cluster policy deleted an orphan");
            operator.check_running()
        }
        .await;
        let _ = crps.delete(&crp_name, &Default::default()).await;
        outcome
    })
    .await;
}
