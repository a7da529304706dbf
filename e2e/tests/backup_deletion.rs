//! Deleting a run mid-flight releases the archive before the object goes (the
//! `archivist.dev/release` finalizer), and deleting a policy with `deletionPolicy: Delete`
//! never deletes a held backup.

mod backup_support;

use std::time::Duration;

use archivist::api::{ArchiveBackup, BackupPolicy};
use archivist_e2e::testing::{wait_for, with_namespace};
use backup_support::*;
use kube::api::DeleteParams;
use kube::{Api, Client, ResourceExt};

const HOLD: (&str, &str) = ("sim.archivist.dev/snapshot-cut-delay", "30s");

/// Waits until `b1` captures content with the archive quiesced, and checks it holds the
/// release finalizer then.
async fn wait_quiesced(client: &Client, ns: &str) -> anyhow::Result<()> {
    let b1 = backup_support::wait_quiesced(client, ns, "b1").await?;
    anyhow::ensure!(b1.finalizers().iter().any(|f| f == "archivist.dev/release"), "no release finalizer while quiesced: {:?}", b1.finalizers());
    Ok(())
}

/// Deletes `b1` and waits until it is gone.
async fn delete_and_wait_gone(client: &Client, ns: &str) -> anyhow::Result<()> {
    let api = Api::<ArchiveBackup>::namespaced(client.clone(), ns);
    api.delete("b1", &DeleteParams::default()).await?;
    wait_for(&api, "b1", Duration::from_secs(60), "the deleted run to go", |b| b.is_none()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn deleting_a_stopping_run_scales_the_archive_back_before_it_goes() {
    with_namespace("bk-del-stop", |client, ns| async move {
        let _operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[HOLD]).await?;
        archive_statefulset(&client, &ns, "archive", 2, &[]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce: {mode: Stop, timeoutSeconds: 300}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        wait_quiesced(&client, &ns).await?;
        anyhow::ensure!(replicas(&client, &ns, "archive").await? == 0, "the archive was not stopped");
        // The run must release before it goes: watch replicas while it still exists.
        let api = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        api.delete("b1", &DeleteParams::default()).await?;
        let mut seen_gone = false;
        for _ in 0..600 {
            let exists = api.get_opt("b1").await?.is_some();
            let r = replicas(&client, &ns, "archive").await?;
            if !exists {
                anyhow::ensure!(r == 2, "b1 went while the archive had {r} replica(s)");
                seen_gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::ensure!(seen_gone, "the deleted run never went");
        let sts = Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(client.clone(), &ns).get("archive").await?;
        anyhow::ensure!(!sts.annotations().contains_key("archivist.dev/quiesced-by"), "the claim is left: {:?}", sts.annotations());
        wait_ready_replicas(&client, &ns, "archive", 2).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn deleting_a_freezing_run_thaws_the_archive_before_it_goes() {
    with_namespace("bk-del-freeze", |client, ns| async move {
        let _operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let live = data_pvc(&client, &ns, "content", &[HOLD]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &["content"]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce:
    mode: Freeze
    freeze: {exec: {container: server, command: [sh, -c, "echo frozen > /content/FROZEN"]}}
    thaw: {exec: {container: server, command: [sh, -c, "rm -f /content/FROZEN; echo thawed >> /content/thaw.log"]}}
    timeoutSeconds: 300
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        wait_quiesced(&client, &ns).await?;
        anyhow::ensure!(live.join("FROZEN").exists(), "the archive was not frozen");
        delete_and_wait_gone(&client, &ns).await?;
        anyhow::ensure!(!live.join("FROZEN").exists(), "the run went while the archive was still frozen");
        let thaws = std::fs::read_to_string(live.join("thaw.log")).unwrap_or_default().lines().count();
        anyhow::ensure!(thaws == 1, "the thaw hook ran {thaws} time(s), expected once");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn deleting_a_policy_with_delete_keeps_held_backups() {
    with_namespace("bk-del-hold", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce: {mode: None}
  deletionPolicy: Delete
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        wait_completed(&client, &ns, "b1", &mut operator).await?;
        create::<ArchiveBackup>(&client, &ns, "apiVersion: archivist.dev/v1alpha1\nkind: ArchiveBackup\nmetadata: {name: held}\nspec: {policyName: archive, reason: Manual, hold: true}").await?;
        wait_completed(&client, &ns, "held", &mut operator).await?;
        Api::<BackupPolicy>::namespaced(client.clone(), &ns).delete("archive", &DeleteParams::default()).await?;
        let policies = Api::<BackupPolicy>::namespaced(client.clone(), &ns);
        wait_for(&policies, "archive", Duration::from_secs(60), "the policy to go", |p| p.is_none()).await?;
        let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        wait_for(&backups, "b1", Duration::from_secs(60), "the unheld backup to be deleted", |b| b.is_none()).await?;
        anyhow::ensure!(backups.get_opt("held").await?.is_some(), "the held backup was deleted with its policy");
        let reasons = archivist_e2e::testing::operator::event_reasons_through(&client, &ns, "BackupPolicy", "archive", "HeldBackupsKept").await?;
        anyhow::ensure!(reasons.iter().any(|r| r == "HeldBackupsKept"), "no HeldBackupsKept Event: {reasons:?}");
        Ok(())
    })
    .await;
}
