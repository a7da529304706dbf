//! InPlace: a pre-restore backup is taken first, the target is stopped, its claims are replaced
//! by claims restored from the backup, and it comes back on the restored data; the old PVs stay
//! (reclaim policy Retain) with the data written after the backup.

mod backup_support;
mod restore_support;

use anyhow::{ensure, Context as _};
use archivist::api::{ArchiveBackup, BackupPhase, BackupReason};
use archivist_e2e::testing::volumes::host_dir;
use archivist_e2e::testing::with_namespace;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use restore_support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn in_place_restore_brings_the_target_back_on_restored_data_and_keeps_the_old_volumes() {
    with_namespace("rs-inplace", |client, ns| async move {
        let options = ArchiveOptions { sql: false, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        // The archive's pod idles (`sleep infinity`): it never rewrites its files at start.
        archive.change_after_backup()?;
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        let mut old_volumes = std::collections::BTreeMap::new();
        for claim in &archive.claims {
            let pv = pvcs.get(claim).await?.spec.and_then(|s| s.volume_name).context("unbound")?;
            old_volumes.insert(claim.clone(), pv);
        }
        let changed: std::collections::BTreeMap<String, String> =
            archive.dirs.iter().map(|(c, d)| Ok((c.clone(), host_checksums(d)?))).collect::<anyhow::Result<_>>()?;

        request(&client, &ns, "r1", "  source: {backupName: b1}\n  target: {mode: InPlace}\n").await?;
        let r = wait_restore_completed(&client, &ns, "r1", &mut archive.operator).await?;
        let status = r.status.clone().unwrap_or_default();

        // The target is back with its replicas, on the restored data.
        crate::backup_support::wait_ready_replicas(&client, &ns, ARCHIVE, 1).await?;
        let pod = format!("{ARCHIVE}-0");
        wait_running(&client, &ns, &pod).await?;
        for claim in &archive.claims {
            let seen = pod_checksums(&client, &ns, &pod, "server", &format!("/{claim}")).await?;
            ensure!(seen == archive.checksums[claim], "after the restore {claim} differs from the backup:\n{seen}\nvs\n{}", archive.checksums[claim]);
            let now = pvcs.get(claim).await?;
            let pv = now.spec.and_then(|s| s.volume_name).context("restored claim unbound")?;
            ensure!(pv != old_volumes[claim], "{claim} is still on its old volume {pv}");
        }
        ensure!(status.original_replicas == Some(1), "originalReplicas {:?}", status.original_replicas);

        // The pre-restore backup is Completed and holds the state before the restore.
        let pre = status.pre_restore_backup.clone().context("no preRestoreBackup in status")?;
        let pre_backup = Api::<ArchiveBackup>::namespaced(client.clone(), &ns).get(&pre).await?;
        ensure!(pre_backup.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed), "pre-restore backup {pre}: {:?}", pre_backup.status);
        ensure!(pre_backup.spec.reason == BackupReason::PreRestore, "reason {:?}", pre_backup.spec.reason);

        // Each old PV still exists, reclaim policy Retain, with the data written after the
        // backup (read through its hostPath directory).
        ensure!(status.retained_volumes.len() == archive.claims.len(), "retainedVolumes {:?}", status.retained_volumes);
        let pvs = Api::<PersistentVolume>::all(client.clone());
        for (claim, volume) in &old_volumes {
            ensure!(status.retained_volumes.iter().any(|v| v.claim == *claim && v.volume == *volume), "{claim}/{volume} not in {:?}", status.retained_volumes);
            let pv = pvs.get(volume).await.with_context(|| format!("old PV {volume} of {claim} is gone"))?;
            let policy = pv.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.clone());
            ensure!(policy.as_deref() == Some("Retain"), "old PV {volume}: reclaim policy {policy:?}");
            let dir = host_dir(&pv)?;
            ensure!(host_checksums(&dir)? == changed[claim], "old PV {volume} of {claim} lost its post-backup data");
        }
        let message = status.message.clone().unwrap_or_default();
        ensure!(message.contains("Retain") && message.contains(&pre), "message does not say where the old data is: {message}");
        Ok(())
    })
    .await;
}
