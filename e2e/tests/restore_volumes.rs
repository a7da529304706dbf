//! Volumes mode: every restored file is byte-identical to what was backed up, the restored
//! database holds the rows of the dump, the Secret copy is restored under a new name, and the
//! originals (volumes and database changed after the backup) are untouched.

mod backup_support;
mod restore_support;

use anyhow::ensure;
use archivist::api::ConditionStatus;
use archivist_e2e::testing::with_namespace;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use restore_support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn volumes_restore_is_byte_identical_and_leaves_the_originals_alone() {
    with_namespace("rs-volumes", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions::default()).await?;
        archive.change_after_backup()?;
        let originals_after: Vec<(String, String)> = archive
            .dirs
            .iter()
            .map(|(c, d)| Ok((c.clone(), host_checksums(d)?)))
            .collect::<anyhow::Result<_>>()?;
        let pg = archive.postgres.as_ref().expect("sql");
        let source_rows_after = pg.psql(SQL_DATABASE, "SELECT id, subject FROM messages ORDER BY id")?;

        request(&client, &ns, "r1", "  source: {backupName: b1}\n  target: {mode: Volumes, nameSuffix: -restored}\n").await?;
        let r = wait_restore_completed(&client, &ns, "r1", &mut archive.operator).await?;
        let status = r.status.clone().unwrap_or_default();
        ensure!(status.resolved_backup.as_deref() == Some(BACKUP), "resolvedBackup {:?}", status.resolved_backup);
        ensure!(condition(&r, "Ready").map(|c| c.0) == Some(ConditionStatus::True), "Ready: {:?}", condition(&r, "Ready"));
        ensure!(condition(&r, "IndexRebuildRequired").map(|c| c.0) == Some(ConditionStatus::False), "{:?}", condition(&r, "IndexRebuildRequired"));

        // Every captured volume has a restored PVC `<original>-restored`, mounted by one pod.
        let restored: Vec<String> = archive.claims.iter().map(|c| restored_name(&r, c)).collect::<anyhow::Result<_>>()?;
        for (claim, name) in archive.claims.iter().zip(&restored) {
            ensure!(*name == format!("{claim}-restored"), "{claim} restored as {name}");
        }
        reader_pod(&client, &ns, "reader", &restored).await?;
        for (claim, name) in archive.claims.iter().zip(&restored) {
            let seen = pod_checksums(&client, &ns, "reader", "main", &format!("/{name}")).await?;
            ensure!(seen == archive.checksums[claim], "restored {name} differs from the backup of {claim}:\n{seen}\nvs\n{}", archive.checksums[claim]);
            ensure!(seen.lines().count() >= 3, "too few files in {name}: {seen}");
        }

        // The dump went into a NEW database with the rows of the dump.
        let db = restored_name(&r, SQL_DATABASE)?;
        ensure!(db == format!("{SQL_DATABASE}_restored"), "database restored as {db}");
        let rows = pg.psql(&db, "SELECT id, subject FROM messages ORDER BY id")?;
        ensure!(rows == archive.sql_rows, "restored rows differ from the dump ({} vs {} lines)", rows.lines().count(), archive.sql_rows.lines().count());
        ensure!(rows.lines().count() == 500, "expected 500 rows, got {}", rows.lines().count());

        // The Secret copy, under the new name.
        let secret = Api::<Secret>::namespaced(client.clone(), &ns).get("master-key-restored").await?;
        let key = secret.data.unwrap_or_default().get("MailStoreMaster.key").map(|b| b.0.clone());
        ensure!(key.as_deref() == Some(b"s3cr3t-key".as_slice()), "restored Secret holds {key:?}");

        // The mapping ConfigMap.
        let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns).get("r1-mapping").await?;
        let csv = cm.data.unwrap_or_default().get("restore.csv").cloned().unwrap_or_default();
        ensure!(csv.starts_with("component,store,original,restored\n"), "{csv}");
        ensure!(csv.contains("content,s1,content-s1,content-s1-restored"), "{csv}");
        ensure!(csv.contains(&format!("metadata,s2,{SQL_DATABASE},{SQL_DATABASE}_restored")), "{csv}");

        // The originals are untouched: the volumes hold what was written after the backup,
        // the source database its changed rows.
        for (claim, sums) in &originals_after {
            let now = host_checksums(&archive.dirs[claim])?;
            ensure!(now == *sums, "original {claim} changed during the restore");
            ensure!(archive.dirs[claim].join("after-backup.eml").exists(), "original {claim} lost its new file");
        }
        ensure!(pg.psql(SQL_DATABASE, "SELECT id, subject FROM messages ORDER BY id")? == source_rows_after, "the source database changed");

        let reasons = archivist_e2e::testing::operator::event_reasons_through(&client, &ns, "RestoreRequest", "r1", "RestoreCompleted").await?;
        ensure!(reasons == ["RestoreStarted", "VolumesRestored", "RestoreCompleted"], "events: {reasons:?}");
        Ok(())
    })
    .await;
}
