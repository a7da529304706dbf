//! Retention on the cluster, where it must not prune:
//! - after a failed run: nothing is pruned (not even the failed run, which `keepFailed: 0`
//!   would prune) until a run Completes again; then the older restore point and the failed
//!   run go (`keepFailed` absent keeps no failed run) and the new one stays;
//! - while an unfinished RestoreRequest reads a backup: it is kept (`restore-source`), and
//!   pruned once the restore has finished;
//! - under a ClusterRetentionPolicy's `legalHold` matching the namespace: nothing is pruned,
//!   and once the hold is lifted the next run prunes as the policy says.

mod backup_support;

use std::time::Duration;

use archivist::api::{ArchiveBackup, BackupPhase, RestorePhase, RestoreRequest};
use archivist_e2e::testing::operator::events_of;
use archivist_e2e::testing::volumes::host_dir;
use archivist_e2e::testing::{wait_for, with_namespace};
use backup_support::*;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::{Api, Client};

/// Long enough for the policy to have reconciled after the event that could have pruned.
const SETTLE: Duration = Duration::from_secs(5);

async fn archive(client: &Client, ns: &str) -> anyhow::Result<()> {
    data_pvc(client, ns, "meta", &[]).await?;
    data_pvc(client, ns, "content", &[]).await?;
    archive_statefulset(client, ns, "archive", 1, &[]).await?;
    policy(client, ns, "archive", r#"  target: {kind: StatefulSet, name: archive}
  quiesce: {mode: None}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
  retention: {keepLast: 1}
"#)
    .await?;
    Ok(())
}

/// The messages of the policy's `Pruned` Events.
async fn pruned_events(client: &Client, ns: &str) -> anyhow::Result<Vec<String>> {
    Ok(events_of(client, ns, "BackupPolicy", "archive")
        .await?
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Pruned"))
        .map(|e| e.message.unwrap_or_default())
        .collect())
}

async fn exists(client: &Client, ns: &str, name: &str) -> anyhow::Result<bool> {
    Ok(Api::<ArchiveBackup>::namespaced(client.clone(), ns).get_opt(name).await?.is_some())
}

/// Waits until every backup of `names` is gone and a `Pruned` Event names each.
async fn wait_pruned(client: &Client, ns: &str, names: &[&str]) -> anyhow::Result<()> {
    until(&format!("{names:?} to be pruned"), Duration::from_secs(30), || async {
        for name in names {
            if exists(client, ns, name).await? {
                return Ok(false);
            }
        }
        let events = pruned_events(client, ns).await?;
        Ok(names.iter().all(|n| events.iter().any(|m| m.contains(n))))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn no_pruning_after_a_failed_run() {
    with_namespace("bk-ret-failed", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        archive(&client, &ns).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        wait_completed(&client, &ns, "b1", &mut operator).await?;

        annotate_pvc(&client, &ns, "content", "sim.archivist.dev/fail-snapshot", Some("true")).await?;
        start_backup(&client, &ns, "b2", "archive").await?;
        let b2 = wait_finished(&client, &ns, "b2", &mut operator).await?;
        anyhow::ensure!(phase(&b2) == BackupPhase::Failed, "b2 ended {:?}", phase(&b2));
        // The policy reconciles on b2's change; give it time to (not) prune.
        tokio::time::sleep(SETTLE).await;
        let pruned = pruned_events(&client, &ns).await?;
        anyhow::ensure!(pruned.is_empty(), "retention pruned after a failed run: {pruned:?}");
        anyhow::ensure!(exists(&client, &ns, "b1").await?, "b1, the last good restore point, is gone");
        anyhow::ensure!(exists(&client, &ns, "b2").await?, "the failed b2 was pruned right after it failed");

        // A good run again: now retention runs; keepLast 1 keeps b3 only, keepFailed absent
        // keeps no failed run.
        annotate_pvc(&client, &ns, "content", "sim.archivist.dev/fail-snapshot", None).await?;
        start_backup(&client, &ns, "b3", "archive").await?;
        wait_completed(&client, &ns, "b3", &mut operator).await?;
        wait_pruned(&client, &ns, &["b1", "b2"]).await?;
        anyhow::ensure!(exists(&client, &ns, "b3").await?, "the newest restore point b3 was pruned");
        eprintln!("Pruned Events: {:?}", pruned_events(&client, &ns).await?);
        Ok(())
    })
    .await;
}

/// The host directory of the PVC `claim`.
async fn claim_dir(client: &Client, ns: &str, claim: &str) -> anyhow::Result<std::path::PathBuf> {
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns).get(claim).await?;
    let volume = pvc.spec.and_then(|s| s.volume_name).ok_or_else(|| anyhow::anyhow!("PVC {claim} is not bound"))?;
    host_dir(&Api::<PersistentVolume>::all(client.clone()).get(&volume).await?)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn an_unfinished_restore_keeps_its_source_from_retention() {
    with_namespace("bk-ret-restore", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        archive(&client, &ns).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        wait_completed(&client, &ns, "b1", &mut operator).await?;

        // A restore of b1 whose hook waits until the test lets it finish.
        create::<RestoreRequest>(&client, &ns, r#"
apiVersion: archivist.dev/v1alpha1
kind: RestoreRequest
metadata: {name: r1}
spec:
  source: {backupName: b1}
  target: {mode: Volumes, nameSuffix: "-r1"}
  postRestore:
  - name: wait
    image: busybox
    command: [sh, -c, "until [ -e /restore/content-r1/DONE ]; do sleep 0.2; done"]
"#)
        .await?;
        let requests = Api::<RestoreRequest>::namespaced(client.clone(), &ns);
        let phase_of = |r: Option<&RestoreRequest>| r.and_then(|r| r.status.as_ref()).and_then(|s| s.phase);
        wait_for(&requests, "r1", Duration::from_secs(90), "r1 to run its hook", |r| phase_of(r) == Some(RestorePhase::RunningHooks))
            .await?;

        // b2 completes: keepLast 1 alone would prune b1, which r1 reads.
        start_backup(&client, &ns, "b2", "archive").await?;
        wait_completed(&client, &ns, "b2", &mut operator).await?;
        tokio::time::sleep(SETTLE).await;
        let pruned = pruned_events(&client, &ns).await?;
        anyhow::ensure!(pruned.is_empty(), "retention pruned while a restore read its source: {pruned:?}");
        anyhow::ensure!(exists(&client, &ns, "b1").await?, "b1 was pruned while r1 was restoring from it");
        let r1 = requests.get("r1").await?;
        anyhow::ensure!(phase_of(Some(&r1)) == Some(RestorePhase::RunningHooks), "r1 is {:?}", phase_of(Some(&r1)));

        // The restore finishes: nothing protects b1 any more, and the policy hears of it.
        std::fs::write(claim_dir(&client, &ns, "content-r1").await?.join("DONE"), "")?;
        wait_for(&requests, "r1", Duration::from_secs(60), "r1 to complete", |r| phase_of(r) == Some(RestorePhase::Completed)).await?;
        wait_pruned(&client, &ns, &["b1"]).await?;
        anyhow::ensure!(exists(&client, &ns, "b2").await?, "b2 was pruned");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_cluster_legal_hold_keeps_every_restore_point_until_lifted() {
    with_namespace("bk-ret-hold", |client, ns| async move {
        use archivist::api::ClusterRetentionPolicy;
        use k8s_openapi::api::core::v1::Namespace;
        use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

        let mut operator = start_operator(&client, &ns).await?;
        // A hold that matches this namespace alone, by a label only it carries.
        let namespaces = Api::<Namespace>::all(client.clone());
        let label = serde_json::json!({"metadata": {"labels": {"e2e.archivist.dev/legal-hold": ns.clone()}}});
        namespaces.patch(&ns, &PatchParams::default(), &Patch::Merge(&label)).await?;
        let holds = Api::<ClusterRetentionPolicy>::all(client.clone());
        let hold: ClusterRetentionPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "ClusterRetentionPolicy",
            "metadata": {"name": format!("hold-{ns}")},
            "spec": {"namespaceSelector": {"matchLabels": {"e2e.archivist.dev/legal-hold": ns.clone()}}, "legalHold": true},
        }))?;
        holds.create(&PostParams::default(), &hold).await?;
        let result = async {
            archive(&client, &ns).await?;
            for name in ["b1", "b2"] {
                start_backup(&client, &ns, name, "archive").await?;
                wait_completed(&client, &ns, name, &mut operator).await?;
            }
            // keepLast 1 would prune b1 after b2; the hold keeps it.
            tokio::time::sleep(SETTLE).await;
            let pruned = pruned_events(&client, &ns).await?;
            anyhow::ensure!(pruned.is_empty(), "retention pruned under a legal hold: {pruned:?}");
            anyhow::ensure!(exists(&client, &ns, "b1").await?, "b1 is gone under a legal hold");

            // Lifted: the next run prunes as the policy says.
            let lift = serde_json::json!({"spec": {"legalHold": false}});
            holds.patch(&format!("hold-{ns}"), &PatchParams::default(), &Patch::Merge(&lift)).await?;
            start_backup(&client, &ns, "b3", "archive").await?;
            wait_completed(&client, &ns, "b3", &mut operator).await?;
            wait_pruned(&client, &ns, &["b1", "b2"]).await?;
            anyhow::ensure!(exists(&client, &ns, "b3").await?, "the newest restore point b3 was pruned");
            Ok(())
        }
        .await;
        holds.delete(&format!("hold-{ns}"), &DeleteParams::default()).await?;
        result
    })
    .await;
}
