//! InPlace: a pre-restore backup is taken first, the target is stopped, its claims are replaced
//! by claims restored from the backup, and it comes back on the restored data; the old PVs stay
//! (reclaim policy Retain) with the data written after the backup. The pre-restore backup is
//! taken before the claims are replaced and holds the data they had; each claim comes back
//! with its shape (storage class, access modes, size, volume mode, labels, annotations). An SQL
//! store's dump goes into a new database; the old database and the pre-restore dump keep what
//! was written after the backup.

mod backup_support;
mod restore_support;

use anyhow::{ensure, Context as _};
use chrono::SubsecRound as _;
use std::collections::BTreeMap;

use archivist::api::{ArchiveBackup, BackupPhase, BackupReason};
use archivist::kube::time::from_kube;
use archivist_e2e::testing::volumes::{host_dir, pvc, with_annotations, with_class};
use archivist_e2e::testing::{unique_name, with_namespace};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
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
        let mut old_volumes = BTreeMap::new();
        let mut old_uids = BTreeMap::new();
        for claim in &archive.claims {
            let old = pvcs.get(claim).await?;
            old_uids.insert(claim.clone(), old.metadata.uid.clone().context("no uid")?);
            let pv = old.spec.and_then(|s| s.volume_name).context("unbound")?;
            old_volumes.insert(claim.clone(), pv);
        }
        let changed: std::collections::BTreeMap<String, String> =
            archive.dirs.iter().map(|(c, d)| Ok((c.clone(), host_checksums(d)?))).collect::<anyhow::Result<_>>()?;

        let r = restore_b1_in_place(&client, &ns, &mut archive).await?;
        let status = r.status.clone().unwrap_or_default();
        // Back on b1's data, and every claim on a new volume.
        for claim in &archive.claims {
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

        // It was taken before the claims were replaced: every item was captured, and the backup
        // completed, before the replacing claim was created (creationTimestamp has whole
        // seconds, so the capture is compared at that precision).
        let pre_status = pre_backup.status.clone().unwrap_or_default();
        let completed = pre_status.completion_time.context("the pre-restore backup has no completionTime")?;
        for claim in &archive.claims {
            let now = pvcs.get(claim).await?;
            ensure!(now.metadata.uid.as_ref() != old_uids.get(claim), "{claim} was not replaced");
            let recreated = now.metadata.creation_timestamp.as_ref().map(from_kube).context("no creationTimestamp")?;
            let item = pre_status.items.iter().find(|i| i.source_claim.as_deref() == Some(claim.as_str())).with_context(|| format!("the pre-restore backup has no item of {claim}"))?;
            let captured = item.captured_at.with_context(|| format!("the pre-restore item of {claim} has no capturedAt"))?;
            eprintln!("{claim}: captured {captured}, pre-restore backup completed {completed}, claim recreated {recreated}");
            ensure!(captured <= completed, "{claim}: captured {captured} after the backup completed {completed}");
            ensure!(
                captured.trunc_subsecs(0) <= recreated && completed.trunc_subsecs(0) <= recreated,
                "{claim} was recreated at {recreated}, before the pre-restore backup captured it ({captured}) or completed ({completed})"
            );
        }
        // And it holds the old data: each of its snapshots, restored into a scratch PVC, has the
        // files the claim had just before the restore (written after b1), not b1's.
        for claim in &archive.claims {
            let item = pre_status.items.iter().find(|i| i.source_claim.as_deref() == Some(claim.as_str())).context("item")?;
            let snapshot = item.volume_snapshot.clone().with_context(|| format!("the pre-restore item of {claim} has no VolumeSnapshot"))?;
            let dir = crate::backup_support::restore_to_dir(&client, &ns, &snapshot, &format!("scratch-{claim}")).await?;
            ensure!(host_checksums(&dir)? == changed[claim], "the pre-restore backup of {claim} does not hold the data it had before the restore");
            ensure!(dir.join("after-backup.eml").exists(), "the pre-restore backup of {claim} lacks the file written after b1");
            ensure!(changed[claim] != archive.checksums[claim], "the test needs {claim} changed after b1");
        }

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

/// Restores `b1` in place (RestoreRequest `r1`), waits until it Completed and the target runs
/// again, and checks that every claim holds the backup's files, as the target's pod sees them.
async fn restore_b1_in_place(client: &kube::Client, ns: &str, archive: &mut Archive) -> anyhow::Result<archivist::api::RestoreRequest> {
    request(client, ns, "r1", "  source: {backupName: b1}\n  target: {mode: InPlace}\n").await?;
    let r = wait_restore_completed(client, ns, "r1", &mut archive.operator).await?;
    crate::backup_support::wait_ready_replicas(client, ns, ARCHIVE, 1).await?;
    let pod = format!("{ARCHIVE}-0");
    wait_running(client, ns, &pod).await?;
    for claim in &archive.claims {
        let seen = pod_checksums(client, ns, &pod, "server", &format!("/{claim}")).await?;
        ensure!(seen == archive.checksums[claim], "after the restore {claim} differs from the backup:\n{seen}\nvs\n{}", archive.checksums[claim]);
    }
    Ok(r)
}

/// The claims of the shaped master: a StorageClass of its own (not the default), ReadWriteMany,
/// 2Gi, volume mode Filesystem, labels and annotations (some with empty values).
fn shaped_master(class: &str) -> PersistentVolumeClaim {
    let mut claim = with_annotations(with_class(pvc("master", "2Gi"), class), &[("archivist-e2e/note", "keep me"), ("archivist-e2e/blank", "")]);
    claim.metadata.labels = Some(BTreeMap::from([("tier".to_string(), "gold".to_string()), ("archivist-e2e/empty".to_string(), String::new())]));
    if let Some(spec) = claim.spec.as_mut() {
        spec.access_modes = Some(vec!["ReadWriteMany".to_string()]);
        spec.volume_mode = Some("Filesystem".to_string());
    }
    claim
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn in_place_restore_recreates_each_claim_with_its_shape() {
    with_namespace("rs-shape", |client, ns| async move {
        let class = unique_name("rs-gold");
        let classes = Api::<StorageClass>::all(client.clone());
        let storage_class = StorageClass {
            metadata: ObjectMeta { name: Some(class.clone()), ..ObjectMeta::default() },
            provisioner: "archivist.dev/local".to_owned(),
            reclaim_policy: Some("Delete".to_owned()),
            volume_binding_mode: Some("Immediate".to_owned()),
            ..StorageClass::default()
        };
        classes.create(&PostParams::default(), &storage_class).await?;
        let outcome = async {
            let options = ArchiveOptions { sql: false, stores: 1, master_claim: Some(shaped_master(&class)), ..ArchiveOptions::default() };
            let mut archive = archive_with_backup(&client, &ns, options).await?;
            let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
            let before = pvcs.get("master").await?;
            let before_spec = before.spec.clone().context("spec")?;
            ensure!(before_spec.storage_class_name.as_deref() == Some(class.as_str()), "the test's master claim is of class {:?}", before_spec.storage_class_name);

            request(&client, &ns, "r1", "  source: {backupName: b1}\n  target: {mode: InPlace}\n").await?;
            let r = wait_restore_completed(&client, &ns, "r1", &mut archive.operator).await?;
            crate::backup_support::wait_ready_replicas(&client, &ns, ARCHIVE, 1).await?;

            let after = pvcs.get("master").await?;
            ensure!(after.metadata.uid != before.metadata.uid, "master was not replaced");
            let spec = after.spec.clone().context("spec")?;
            ensure!(spec.storage_class_name == before_spec.storage_class_name, "storage class {:?}, was {:?}", spec.storage_class_name, before_spec.storage_class_name);
            ensure!(spec.access_modes == before_spec.access_modes, "access modes {:?}, were {:?}", spec.access_modes, before_spec.access_modes);
            let size = |s: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec| s.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")).map(|q| q.0.clone());
            ensure!(size(&spec) == size(&before_spec), "size {:?}, was {:?}", size(&spec), size(&before_spec));
            ensure!(spec.volume_mode == before_spec.volume_mode, "volume mode {:?}, was {:?}", spec.volume_mode, before_spec.volume_mode);
            let labels = after.metadata.labels.clone().unwrap_or_default();
            for (key, value) in before.metadata.labels.iter().flatten() {
                ensure!(labels.get(key) == Some(value), "label {key}={value:?} lost: {labels:?}");
            }
            ensure!(labels.get(RESTORE_LABEL).map(String::as_str) == Some("r1"), "the recreated claim is not labelled with the request: {labels:?}");
            let annotations = after.metadata.annotations.clone().unwrap_or_default();
            for key in ["archivist-e2e/note", "archivist-e2e/blank"] {
                ensure!(annotations.get(key) == before.metadata.annotations.as_ref().and_then(|a| a.get(key)), "annotation {key} lost: {annotations:?}");
            }
            let source = spec.data_source.clone().context("the recreated claim has no dataSource")?;
            let snapshot = crate::backup_support::snapshot_of(&archive.backup, archivist::api::Component::Master)?;
            ensure!(source.kind == "VolumeSnapshot" && source.name == snapshot, "dataSource {source:?}, not {snapshot}");
            let pv = Api::<PersistentVolume>::all(client.clone()).get(spec.volume_name.as_deref().context("unbound")?).await?;
            ensure!(pv.spec.and_then(|s| s.storage_class_name).as_deref() == Some(class.as_str()), "the new volume is not of class {class}");

            // The record in status, read back through the API server (empty values included).
            let status = r.status.clone().unwrap_or_default();
            let record = status.replaced_claims.iter().find(|c| c.name == "master").with_context(|| format!("master not in replacedClaims {:?}", status.replaced_claims))?;
            ensure!(record.storage_class_name.as_deref() == Some(class.as_str()), "{record:?}");
            ensure!(record.access_modes == ["ReadWriteMany"] && record.size.as_deref() == Some("2Gi") && record.volume_mode.as_deref() == Some("Filesystem"), "{record:?}");
            ensure!(record.labels.get("archivist-e2e/empty").map(String::as_str) == Some("") && record.labels.get("tier").map(String::as_str) == Some("gold"), "{record:?}");
            ensure!(record.annotations.get("archivist-e2e/blank").map(String::as_str) == Some("") && record.annotations.get("archivist-e2e/note").map(String::as_str) == Some("keep me"), "{record:?}");
            ensure!(!record.annotations.keys().any(|k| k.starts_with("pv.kubernetes.io/")), "the binder's annotations were recorded: {record:?}");
            ensure!(record.volume.is_some() && record.volume == before_spec.volume_name, "{record:?}");
            // The other claims (default class, ReadWriteOnce) keep their shape too.
            for claim in archive.claims.iter().filter(|c| *c != "master") {
                let spec = pvcs.get(claim).await?.spec.context("spec")?;
                ensure!(spec.access_modes == Some(vec!["ReadWriteOnce".to_string()]), "{claim}: {:?}", spec.access_modes);
            }
            Ok(())
        }
        .await;
        classes.delete(&class, &DeleteParams::default()).await?;
        outcome
    })
    .await;
}

/// One quiesce per workload, for in-place restores too: while a backup holds the target
/// stopped, the restore waits (`WorkloadClaimed=False`, naming the holder) and neither stops
/// the target nor records its replicas (0 under the backup's Stop). Once the backup released
/// it, the restore claims it, records the real replicas and brings it back on them.
///
/// Two policies share the archive: `crash` (quiesce None, no indexes) made the backup `b2`
/// that is restored, and whose pre-restore backup needs no claim; `archive` (Stop) runs the
/// backup `blocker`, held on its index snapshot's cut. So `blocker` holds the target exactly
/// when the request is ready to claim it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn in_place_restore_waits_for_a_backup_holding_its_target() {
    with_namespace("rs-inplace-claim", |client, ns| async move {
        let options = ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        let _backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        crate::backup_support::policy(&client, &ns, "crash", &format!(
            "  target: {{kind: StatefulSet, name: {ARCHIVE}}}\n  quiesce: {{mode: None}}\n  master: {{volumeClaims: [master], secrets: [master-key]}}\n  stores:\n  - name: s1\n    metadata: {{volumeClaims: [meta-s1]}}\n    content: {{volumeClaims: [content-s1]}}\n"
        ))
        .await?;
        crate::backup_support::start_backup(&client, &ns, "b2", "crash").await?;
        crate::backup_support::wait_completed(&client, &ns, "b2", &mut archive.operator).await?;

        // The backup `blocker` stops the archive and holds it while its index snapshot is cut.
        crate::backup_support::annotate_pvc(&client, &ns, "index-s1", "sim.archivist.dev/snapshot-cut-delay", Some("20s")).await?;
        crate::backup_support::start_backup(&client, &ns, "blocker", POLICY).await?;
        crate::backup_support::wait_quiesced(&client, &ns, "blocker").await?;

        request(&client, &ns, "r2", "  source: {backupName: b2}\n  target: {mode: InPlace}\n").await?;
        let requests = Api::<archivist::api::RestoreRequest>::namespaced(client.clone(), &ns);
        let waiting = archivist_e2e::testing::wait_for(&requests, "r2", std::time::Duration::from_secs(30), "r2 to wait for the archive", |r| {
            r.is_some_and(|r| condition(r, "WorkloadClaimed").is_some_and(|(s, _)| s == archivist::api::ConditionStatus::False))
        })
        .await?
        .context("r2 vanished")?;
        let (_, message) = condition(&waiting, "WorkloadClaimed").context("no WorkloadClaimed")?;
        ensure!(message.contains(&format!("{ns}/blocker")), "the wait does not name the holder: {message}");
        let status = waiting.status.clone().unwrap_or_default();
        ensure!(status.original_replicas.is_none(), "r2 recorded replicas {:?} while blocker held the archive", status.original_replicas);
        ensure!(status.retained_volumes.is_empty(), "r2 began replacing claims while blocker held the archive");
        let sts = Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(client.clone(), &ns).get(ARCHIVE).await?;
        let holder = sts.metadata.annotations.unwrap_or_default().get("archivist.dev/quiesced-by").cloned();
        ensure!(holder == Some(format!("{ns}/blocker")), "the claim on the archive is {holder:?}, not blocker's");

        let blocker = crate::backup_support::wait_completed(&client, &ns, "blocker", &mut archive.operator).await?;
        ensure!(blocker.status.and_then(|s| s.quiesce).and_then(|q| q.released_at).is_some(), "blocker did not record its release");
        let r = wait_restore_completed(&client, &ns, "r2", &mut archive.operator).await?;
        let status = r.status.clone().unwrap_or_default();
        ensure!(status.original_replicas == Some(1), "r2 recorded originalReplicas {:?}, not the archive's 1", status.original_replicas);
        crate::backup_support::wait_ready_replicas(&client, &ns, ARCHIVE, 1).await?;
        let sts = Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(client.clone(), &ns).get(ARCHIVE).await?;
        let annotations = sts.metadata.annotations.unwrap_or_default();
        ensure!(!annotations.contains_key("archivist.dev/quiesced-by"), "r2 left its claim: {annotations:?}");
        Ok(())
    })
    .await;
}

/// A failed in-place restore whose claims were already replaced leaves the target stopped
/// (starting it would run the archive on a half-restored state) and says where the old data
/// is: the retained volumes and the pre-restore backup. The claim stays the request's, so no
/// backup runs on the half-restored archive and the sweeper leaves it alone.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_failed_in_place_restore_keeps_the_target_stopped_and_says_where_the_old_data_is() {
    with_namespace("rs-inplace-fail", |client, ns| async move {
        let options = ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        request(&client, &ns, "r3", "  source: {backupName: b1}\n  target: {mode: InPlace}\n  postRestore:\n  - name: replay\n    image: ignored\n    command: [sh, -c, 'exit 4']\n").await?;
        let message = wait_restore_failed(&client, &ns, "r3", &mut archive.operator).await?;
        ensure!(message.contains("post-restore hook replay failed"), "the message does not say what failed: {message}");
        ensure!(message.contains("is left stopped"), "the message does not say the target stays stopped: {message}");
        let r = Api::<archivist::api::RestoreRequest>::namespaced(client.clone(), &ns).get("r3").await?;
        let status = r.status.clone().unwrap_or_default();
        ensure!(!status.retained_volumes.is_empty(), "no retained volumes recorded");
        let pvs = Api::<PersistentVolume>::all(client.clone());
        for kept in &status.retained_volumes {
            ensure!(message.contains(&kept.volume), "the message does not name the old volume {}: {message}", kept.volume);
            let pv = pvs.get(&kept.volume).await.with_context(|| format!("old PV {} is gone", kept.volume))?;
            ensure!(pv.spec.and_then(|s| s.persistent_volume_reclaim_policy).as_deref() == Some("Retain"), "old PV {} is not retained", kept.volume);
        }
        let pre = status.pre_restore_backup.clone().context("no pre-restore backup")?;
        let pre_backup = Api::<ArchiveBackup>::namespaced(client.clone(), &ns).get(&pre).await?;
        ensure!(pre_backup.status.and_then(|s| s.phase) == Some(BackupPhase::Completed), "the pre-restore backup {pre} is not Completed");
        // Stopped, and still the request's, a while later (past a sweep at start-up).
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let sts = Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(client.clone(), &ns).get(ARCHIVE).await?;
        ensure!(sts.spec.as_ref().and_then(|s| s.replicas) == Some(0), "the half-restored target was started: {:?}", sts.spec.and_then(|s| s.replicas));
        let holder = sts.metadata.annotations.unwrap_or_default().get("archivist.dev/quiesced-by").cloned();
        ensure!(holder == Some(format!("RestoreRequest/{ns}/r3")), "the claim on the stopped target is {holder:?}");
        Ok(())
    })
    .await;
}

/// An InPlace restore of a policy with an SQL store: the volumes are replaced in place, but the
/// database is never overwritten. The backup's dump goes into a NEW database (the mapping and
/// the message name it, and say the target still uses the old one); the old database keeps
/// what was written after the backup, and so does the pre-restore backup's dump.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn in_place_restore_of_an_sql_store_restores_into_a_new_database_and_keeps_the_old_one() {
    with_namespace("rs-inplace-sql", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions::default()).await?;
        archive.change_after_backup()?;
        let pg = archive.postgres.take().context("the archive has no PostgreSQL store")?;
        let rows_before = pg.psql(SQL_DATABASE, "SELECT id, subject FROM messages ORDER BY id")?;
        ensure!(rows_before != archive.sql_rows && rows_before.contains("after the backup"), "the test needs the database changed after b1");

        let r = restore_b1_in_place(&client, &ns, &mut archive).await?;
        let status = r.status.clone().unwrap_or_default();

        // b1's dump went into a new database; the old one is untouched.
        let restored = restored_name(&r, SQL_DATABASE)?;
        ensure!(restored == format!("{SQL_DATABASE}_restored"), "the database was restored into {restored}");
        let rows = pg.psql(&restored, "SELECT id, subject FROM messages ORDER BY id")?;
        ensure!(rows == archive.sql_rows, "{restored} does not hold b1's rows ({} vs {} lines)", rows.lines().count(), archive.sql_rows.lines().count());
        ensure!(pg.psql(SQL_DATABASE, "SELECT id, subject FROM messages ORDER BY id")? == rows_before, "the in-place restore changed the original database");
        ensure!(databases(&pg, SQL_DATABASE)? == [SQL_DATABASE.to_string(), restored.clone()], "databases: {:?}", databases(&pg, SQL_DATABASE)?);

        // The message says where the metadata went and that the target still uses the old one.
        let message = status.message.clone().unwrap_or_default();
        ensure!(
            message.contains(&format!("database {restored}")) && message.contains(&format!("still uses {SQL_DATABASE}")),
            "the message does not say where the SQL metadata went: {message}"
        );

        // The pre-restore backup's dump holds the database as it was just before the restore.
        let pre = status.pre_restore_backup.clone().context("no preRestoreBackup in status")?;
        let pre_backup = Api::<ArchiveBackup>::namespaced(client.clone(), &ns).get(&pre).await?;
        let dump = pre_backup
            .status
            .as_ref()
            .and_then(|s| s.items.iter().find(|i| i.source_sql.is_some()))
            .and_then(|i| i.volume_snapshot.clone())
            .context("the pre-restore backup has no SQL dump")?;
        let dir = crate::backup_support::restore_to_dir(&client, &ns, &dump, "scratch-pre-dump").await?;
        pg.restore_into_new_database(&dir.join("dump.pgdump"), "pre_restore_check")?;
        ensure!(pg.psql("pre_restore_check", "SELECT id, subject FROM messages ORDER BY id")? == rows_before, "the pre-restore dump does not hold the database as it was before the restore");
        archive.operator.check_running()?;
        Ok(())
    })
    .await;
}
