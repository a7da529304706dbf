//! Disaster recovery from the off-cluster copy (`BackupPolicy.spec.export`, RestoreRequest
//! `source.repository`), against a real restic REST server on loopback (`rclone serve
//! restic`) and Debian's `restic`, which the simulated kubelet runs for the export and fetch
//! Jobs and the reader pod:
//! 1. an archive (master, two stores, an index, a PostgreSQL metadata store, the master key
//!    Secret) is backed up and exported;
//! 2. its whole namespace is deleted: the VolumeSnapshots, the Secret copy and the
//!    ArchiveBackup go with it;
//! 3. a fresh namespace holds only the repository Secret (and the SQL server's credentials);
//! 4. a RestoreRequest naming only the policy and the repository brings back every volume
//!    byte-identical to the backup, the database into a new database with the dumped rows, the
//!    master key under its new name, and restore.csv; no credential appears in its status,
//!    Events or the operator's log, and the reader pod is gone.
//!
//! And: a restore point whose VolumeSnapshots were deleted is restored (`from: Auto`) from its
//! export, found through its ArchiveBackup's `status.export`; a repository that the Secret's
//! password does not open refuses the request, naming the repository, and leaks nothing; an
//! `InPlace` restore from the repository takes its pre-restore backup, keeps the old volumes
//! and brings the target back on the repository's data.

mod backup_support;
mod restore_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use archivist::api::{ExportState, RestoreRequest, SourceFrom};
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::databases::{PASSWORD as DB_PASSWORD, USER as DB_USER};
use archivist_e2e::testing::restic::ResticServer;
use archivist_e2e::testing::with_namespace;
use backup_support::{repository_secret, wait_export_ended};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::Api;
use restore_support::*;

const REPOSITORY_PASSWORD: &str = "dr-repo-pw-5Kx81";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_deleted_namespace_comes_back_from_the_repository() {
    let server = Arc::new(ResticServer::start().expect("restic server"));
    with_namespace("dr-source", move |client, source| async move {
        let repo = format!("repo-{source}");
        let url = server.url(&repo);
        repository_secret(&client, &source, "archive-repo", &url, REPOSITORY_PASSWORD).await?;
        let options = ArchiveOptions { export: Some("archive-repo".into()), content_bytes: 1024 * 1024, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &source, options).await?;
        let run = wait_export_ended(&client, &source, BACKUP, &archive.operator).await?;
        let export = run.status.and_then(|s| s.export).ok_or_else(|| anyhow::anyhow!("no status.export"))?;
        ensure!(export.state == ExportState::Exported, "export {:?}: {:?}", export.state, export.message);

        // The disaster: the namespace goes, and its snapshots, Secret copy and restore point
        // with it. The data the test compares with stays on this host (the checksums taken at
        // the backup, the PostgreSQL server).
        let namespaces = Api::<Namespace>::all(client.clone());
        namespaces.delete(&source, &Default::default()).await?;
        until("the source namespace to be gone", Duration::from_secs(120), || async { Ok(namespaces.get_opt(&source).await?.is_none()) }).await?;
        archive.operator.terminate(Duration::from_secs(10)).await?;

        let checksums = archive.checksums.clone();
        let claims = archive.claims.clone();
        let sql_rows = archive.sql_rows.clone();
        let postgres = archive.postgres.take();
        with_namespace("dr-target", move |client, ns| async move {
            // The fresh namespace holds the repository Secret, and the SQL server's
            // credentials (never part of a backup).
            repository_secret(&client, &ns, "archive-repo", &url, REPOSITORY_PASSWORD).await?;
            backup_support::create::<Secret>(&client, &ns, &format!("metadata: {{name: pg-credentials}}\nstringData: {{username: {DB_USER}, password: {DB_PASSWORD}}}")).await?;
            let mut operator = backup_support::start_operator(&client, &ns).await?;
            request(
                &client,
                &ns,
                "r1",
                &format!("  source: {{policyName: {POLICY}, select: Latest, repository: {{secretName: archive-repo}}}}\n  target: {{mode: Volumes, nameSuffix: -dr}}\n"),
            )
            .await?;
            let r = wait_restore_completed(&client, &ns, "r1", &mut operator).await?;
            let status = r.status.clone().unwrap_or_default();
            ensure!(status.resolved_backup.as_deref() == Some(BACKUP), "resolvedBackup {:?}", status.resolved_backup);
            ensure!(status.resolved_from == Some(SourceFrom::Repository), "resolvedFrom {:?}", status.resolved_from);
            let recorded = status.repository.clone().ok_or_else(|| anyhow::anyhow!("no status.repository"))?;
            ensure!(recorded.repository.as_deref() == Some(url.as_str()) && recorded.manifest.is_some(), "{recorded:?}");

            // Every volume, byte-identical to the backup, under its new name.
            let restored: Vec<String> = claims.iter().map(|c| restored_name(&r, c)).collect::<anyhow::Result<_>>()?;
            for (claim, name) in claims.iter().zip(&restored) {
                ensure!(*name == format!("{claim}-dr"), "{claim} restored as {name}");
            }
            reader_pod(&client, &ns, "reader", &restored).await?;
            for (claim, name) in claims.iter().zip(&restored) {
                let seen = pod_checksums(&client, &ns, "reader", "main", &format!("/{name}")).await?;
                ensure!(seen == checksums[claim], "restored {name} differs from the backup of {claim}:\n{seen}\nvs\n{}", checksums[claim]);
                ensure!(seen.lines().count() >= 3, "too few files in {name}: {seen}");
            }

            // The SQL metadata store, from its exported dump, into a new database.
            let pg = postgres.as_ref().ok_or_else(|| anyhow::anyhow!("no PostgreSQL"))?;
            let db = restored_name(&r, SQL_DATABASE)?;
            ensure!(db == format!("{SQL_DATABASE}_restored"), "database restored as {db}");
            let rows = pg.psql(&db, "SELECT id, subject FROM messages ORDER BY id")?;
            ensure!(rows == sql_rows && rows.lines().count() == 500, "restored rows differ from the dump ({} lines)", rows.lines().count());

            // The master key, read back from the repository into a Secret under its new name.
            let key = Api::<Secret>::namespaced(client.clone(), &ns).get("master-key-dr").await?;
            let value = key.data.unwrap_or_default().get("MailStoreMaster.key").map(|b| b.0.clone());
            ensure!(value.as_deref() == Some(b"s3cr3t-key".as_slice()), "restored master key {value:?}");

            let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns).get("r1-mapping").await?;
            let csv = cm.data.unwrap_or_default().get("restore.csv").cloned().unwrap_or_default();
            for line in ["secrets,,master-key,master-key-dr", "content,s1,content-s1,content-s1-dr", "index,s1,index-s1,index-s1-dr", &format!("metadata,s2,{SQL_DATABASE},{SQL_DATABASE}_restored")] {
                ensure!(csv.lines().any(|l| l == line), "restore.csv lacks {line:?}:\n{csv}");
            }

            let reasons = archivist_e2e::testing::operator::event_reasons_through(&client, &ns, "RestoreRequest", "r1", "RestoreCompleted").await?;
            ensure!(reasons == ["RestorePointFound", "RestoreStarted", "VolumesRestored", "RestoreCompleted"], "events: {reasons:?}");
            let pods = Api::<Pod>::namespaced(client.clone(), &ns);
            until("the reader pod to be deleted", Duration::from_secs(30), || async { Ok(pods.get_opt("r1-repository").await?.is_none()) }).await?;

            // No credential anywhere: the request's status and Events, the operator's log.
            let events = archivist_e2e::testing::operator::events_of(&client, &ns, "RestoreRequest", "r1").await?;
            let request: RestoreRequest = Api::namespaced(client.clone(), &ns).get("r1").await?;
            for text in [serde_json::to_string(&request.status)?, serde_json::to_string(&events)?, operator.log_tail(3000)] {
                ensure!(!text.contains(REPOSITORY_PASSWORD) && !text.contains("s3cr3t-key"), "a secret leaked: {text}");
            }
            operator.check_running()
        })
        .await;
        Ok(())
    })
    .await;
}

/// A one-store archive (no SQL) backed up as [`BACKUP`] and exported to its own repository on
/// `server`, through the repository Secret `archive-repo`.
async fn exported_archive(client: &kube::Client, ns: &str, server: &ResticServer) -> anyhow::Result<Archive> {
    let url = server.url(&format!("repo-{ns}"));
    repository_secret(client, ns, "archive-repo", &url, REPOSITORY_PASSWORD).await?;
    let options = ArchiveOptions { export: Some("archive-repo".into()), sql: false, stores: 1, ..ArchiveOptions::default() };
    let archive = archive_with_backup(client, ns, options).await?;
    let run = wait_export_ended(client, ns, BACKUP, &archive.operator).await?;
    ensure!(run.status.and_then(|s| s.export).map(|e| e.state) == Some(ExportState::Exported), "not exported");
    Ok(archive)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_restore_point_whose_snapshots_are_gone_comes_from_its_export() {
    let server = Arc::new(ResticServer::start().expect("restic server"));
    with_namespace("dr-snapshots-gone", move |client, ns| async move {
        let mut archive = exported_archive(&client, &ns, &server).await?;
        // The storage system lost the snapshots; the ArchiveBackup is still there.
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        for snapshot in snapshots.list(&Default::default()).await?.items {
            snapshots.delete(&snapshot.metadata.name.unwrap_or_default(), &Default::default()).await?;
        }
        until("the VolumeSnapshots to be gone", Duration::from_secs(60), || async { Ok(snapshots.list(&Default::default()).await?.items.is_empty()) }).await?;

        request(&client, &ns, "r1", &format!("  source: {{backupName: {BACKUP}}}\n  target: {{mode: Volumes, nameSuffix: -x}}\n")).await?;
        let r = wait_restore_completed(&client, &ns, "r1", &mut archive.operator).await?;
        let status = r.status.clone().unwrap_or_default();
        ensure!(status.resolved_from == Some(SourceFrom::Repository), "resolvedFrom {:?}", status.resolved_from);
        let recorded = status.repository.clone().ok_or_else(|| anyhow::anyhow!("no status.repository"))?;
        ensure!(recorded.secret_name == "archive-repo" && recorded.manifest.is_none(), "the policy's repository, no manifest read: {recorded:?}");
        let restored: Vec<String> = archive.claims.iter().map(|c| restored_name(&r, c)).collect::<anyhow::Result<_>>()?;
        reader_pod(&client, &ns, "reader", &restored).await?;
        for (claim, name) in archive.claims.iter().zip(&restored) {
            let seen = pod_checksums(&client, &ns, "reader", "main", &format!("/{name}")).await?;
            ensure!(seen == archive.checksums[claim], "restored {name} differs from the backup of {claim}");
        }
        let key = Api::<Secret>::namespaced(client.clone(), &ns).get("master-key-x").await?;
        ensure!(key.data.unwrap_or_default().get("MailStoreMaster.key").map(|b| b.0.as_slice()) == Some(b"s3cr3t-key".as_slice()), "master key");
        archive.operator.check_running()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn an_in_place_restore_from_the_repository_keeps_the_old_volumes() {
    use anyhow::Context as _;
    use archivist::api::{ArchiveBackup, BackupPhase, BackupReason};
    use archivist_e2e::testing::volumes::host_dir;
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let server = Arc::new(ResticServer::start().expect("restic server"));
    with_namespace("dr-in-place", move |client, ns| async move {
        let mut archive = exported_archive(&client, &ns, &server).await?;
        archive.change_after_backup()?;
        let changed: std::collections::BTreeMap<String, String> =
            archive.dirs.iter().map(|(c, d)| Ok((c.clone(), host_checksums(d)?))).collect::<anyhow::Result<_>>()?;
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        let mut old_volumes = std::collections::BTreeMap::new();
        for claim in &archive.claims {
            let pv = pvcs.get(claim).await?.spec.and_then(|s| s.volume_name).context("unbound")?;
            old_volumes.insert(claim.clone(), pv);
        }

        request(&client, &ns, "r1", &format!("  source: {{backupName: {BACKUP}, from: Repository}}\n  target: {{mode: InPlace}}\n")).await?;
        let r = wait_restore_completed(&client, &ns, "r1", &mut archive.operator).await?;
        let status = r.status.clone().unwrap_or_default();
        ensure!(status.resolved_from == Some(SourceFrom::Repository), "resolvedFrom {:?}", status.resolved_from);

        // The target is back, on its own claim names, with the repository's data.
        crate::backup_support::wait_ready_replicas(&client, &ns, ARCHIVE, 1).await?;
        let pod = format!("{ARCHIVE}-0");
        wait_running(&client, &ns, &pod).await?;
        for claim in &archive.claims {
            let seen = pod_checksums(&client, &ns, &pod, "server", &format!("/{claim}")).await?;
            ensure!(seen == archive.checksums[claim], "after the restore {claim} differs from the backup:\n{seen}\nvs\n{}", archive.checksums[claim]);
            let pv = pvcs.get(claim).await?.spec.and_then(|s| s.volume_name).context("restored claim unbound")?;
            ensure!(pv != old_volumes[claim], "{claim} is still on its old volume {pv}");
        }
        // The pre-restore backup was taken, and each old volume is kept with the newer data.
        let pre = status.pre_restore_backup.clone().context("no preRestoreBackup")?;
        let pre_backup = Api::<ArchiveBackup>::namespaced(client.clone(), &ns).get(&pre).await?;
        ensure!(pre_backup.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed), "pre-restore backup {pre}: {:?}", pre_backup.status);
        ensure!(pre_backup.spec.reason == BackupReason::PreRestore, "reason {:?}", pre_backup.spec.reason);
        let pvs = Api::<PersistentVolume>::all(client.clone());
        for (claim, volume) in &old_volumes {
            let pv = pvs.get(volume).await.with_context(|| format!("old PV {volume} of {claim} is gone"))?;
            let policy = pv.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.clone());
            ensure!(policy.as_deref() == Some("Retain"), "old PV {volume}: reclaim policy {policy:?}");
            ensure!(host_checksums(&host_dir(&pv)?)? == changed[claim], "old PV {volume} of {claim} lost its post-backup data");
        }
        archive.operator.check_running()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_repository_the_password_does_not_open_refuses_the_restore_and_stays_secret() {
    let server = Arc::new(ResticServer::start().expect("restic server"));
    with_namespace("dr-bad-password", move |client, ns| async move {
        let repo = format!("repo-{ns}");
        server.restic(&repo, REPOSITORY_PASSWORD, &["init"])?;
        let url = server.url(&repo);
        let wrong = "not-the-password-Qz7";
        repository_secret(&client, &ns, "archive-repo", &url, wrong).await?;
        let mut operator = backup_support::start_operator(&client, &ns).await?;
        request(&client, &ns, "r1", &format!("  source: {{policyName: {POLICY}, repository: {{secretName: archive-repo}}}}\n")).await?;
        let message = wait_restore_failed(&client, &ns, "r1", &mut operator).await?;
        ensure!(message.starts_with(&format!("repository {url}: ")), "the message names the repository: {message}");
        ensure!(message.contains("wrong password"), "the message says why: {message}");
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        until("the reader pod to be deleted", Duration::from_secs(30), || async { Ok(pods.get_opt("r1-repository").await?.is_none()) }).await?;
        let events = archivist_e2e::testing::operator::events_of(&client, &ns, "RestoreRequest", "r1").await?;
        let request: RestoreRequest = Api::namespaced(client.clone(), &ns).get("r1").await?;
        for text in [serde_json::to_string(&request.status)?, serde_json::to_string(&events)?, operator.log_tail(3000)] {
            ensure!(!text.contains(wrong) && !text.contains(REPOSITORY_PASSWORD), "a password leaked: {text}");
        }
        operator.check_running()
    })
    .await;
}
