//! Schedule and retention: a policy with `* * * * *` produces runs, and `keepLast: 1` prunes
//! the older restore point (a `Pruned` Event on the policy; the ArchiveBackup and its
//! VolumeSnapshots are gone).

mod backup_support;

use std::time::Duration;

use archivist::api::{ArchiveBackup, BackupPhase, BackupReason};
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::operator::events_of;
use archivist_e2e::testing::{eventually, with_namespace};
use backup_support::*;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn every_minute_schedule_runs_and_keep_last_prunes() {
    with_namespace("bk-schedule", |client, ns| async move {
        let _operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        // A manual run right away (backup-now), then the schedule's: keepLast 1 prunes the first.
        let yaml = r#"
apiVersion: archivist.dev/v1alpha1
kind: BackupPolicy
metadata:
  name: archive
  annotations: {archivist.dev/backup-now: "first"}
spec:
  target: {kind: StatefulSet, name: archive}
  schedule: "* * * * *"
  quiesce: {mode: None}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
  retention: {keepLast: 1}
"#;
        create::<archivist::api::BackupPolicy>(&client, &ns, yaml).await?;
        let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);

        // The manual run completes.
        let first = eventually("the backup-now run to complete", Duration::from_secs(60), || {
            let backups = backups.clone();
            async move {
                let items = backups.list(&ListParams::default()).await?.items;
                Ok(match items.iter().find(|b| phase(b) == BackupPhase::Completed) {
                    Some(b) => Ok(b.name_any()),
                    None => Err(format!("runs: {:?}", items.iter().map(|b| (b.name_any(), phase(b))).collect::<Vec<_>>())),
                })
            }
        })
        .await?;
        let first_snapshots: Vec<String> = snapshots
            .list(&ListParams::default().labels(&format!("archivist.dev/backup={first}")))
            .await?
            .items
            .iter()
            .map(|s| s.name_any())
            .collect();
        anyhow::ensure!(!first_snapshots.is_empty(), "the first run has no labelled VolumeSnapshots");

        // A scheduled run (within about 70 s) completes and retention prunes the first run.
        let scheduled = eventually("a scheduled run to complete", Duration::from_secs(80), || {
            let backups = backups.clone();
            async move {
                let items = backups.list(&ListParams::default()).await?.items;
                let done = items.iter().find(|b| b.spec.reason == BackupReason::Scheduled && phase(b) == BackupPhase::Completed);
                Ok(match done {
                    Some(b) => Ok(b.name_any()),
                    None => Err(format!("runs: {:?}", items.iter().map(|b| (b.name_any(), phase(b))).collect::<Vec<_>>())),
                })
            }
        })
        .await?;
        eprintln!("scheduled run {scheduled} completed; the first run was {first}");
        until("the first run to be pruned with its snapshots", Duration::from_secs(30), || {
            let (backups, snapshots, first, first_snapshots) = (backups.clone(), snapshots.clone(), first.clone(), first_snapshots.clone());
            async move {
                if backups.get_opt(&first).await?.is_some() {
                    return Ok(false);
                }
                for name in &first_snapshots {
                    if snapshots.get_opt(name).await?.is_some() {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        })
        .await?;
        let events = events_of(&client, &ns, "BackupPolicy", "archive").await?;
        let pruned = events.iter().find(|e| e.reason.as_deref() == Some("Pruned"));
        let note = pruned.and_then(|e| e.message.clone()).unwrap_or_default();
        anyhow::ensure!(note.contains(&first), "no Pruned Event naming {first}: {:?}", events.iter().map(|e| (&e.reason, &e.message)).collect::<Vec<_>>());
        anyhow::ensure!(backups.get_opt(&scheduled).await?.is_some(), "the newest run was pruned");
        Ok(())
    })
    .await;
}
