//! Partial restore of one store of two (only that store's PVCs, no master), from a backup of a
//! policy with `includeIndexes: false`: `IndexRebuildRequired=True`, and the `postRestore` hook
//! runs with the restored PVCs mounted and must succeed; a failing hook fails the request.

mod backup_support;
mod restore_support;

use anyhow::ensure;
use archivist::api::ConditionStatus;
use archivist_e2e::testing::with_namespace;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use restore_support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn partial_restore_of_one_store_runs_the_index_rebuild_hook() {
    with_namespace("rs-partial", |client, ns| async move {
        let options = ArchiveOptions { sql: false, include_indexes: false, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        let captured: Vec<String> = archive.backup.status.iter().flat_map(|s| &s.items).filter_map(|i| i.source_claim.clone()).collect();
        ensure!(!captured.contains(&"index-s1".to_string()), "includeIndexes: false captured the index: {captured:?}");

        // The hook sees the restored claims of store s2 under /restore/<claim> and writes a
        // marker there (as a journal replay or index rebuild would).
        request(&client, &ns, "r1", r#"  source: {backupName: b1}
  target: {mode: Volumes, nameSuffix: -p}
  stores: [s2]
  includeMaster: false
  postRestore:
  - name: rebuild-index
    image: ignored
    command: [sh, -c, 'test -f /restore/content-s2-p/folder/sub/msg-1.eml && test -f /restore/meta-s2-p/README && echo rebuilt > /restore/content-s2-p/index-rebuilt && ls /restore']
"#).await?;
        let r = wait_restore_completed(&client, &ns, "r1", &mut archive.operator).await?;
        let (rebuild, message) = condition(&r, "IndexRebuildRequired").ok_or_else(|| anyhow::anyhow!("no IndexRebuildRequired"))?;
        ensure!(rebuild == ConditionStatus::True, "IndexRebuildRequired {rebuild:?}: {message}");

        // Only store s2's claims were restored.
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels(&format!("{RESTORE_LABEL}=r1")))
            .await?;
        let mut names: Vec<String> = pvcs.items.iter().map(|p| p.name_any()).collect();
        names.sort();
        ensure!(names == ["content-s2-p", "meta-s2-p"], "restored PVCs {names:?}");
        let mapped: Vec<String> = r.status.iter().flat_map(|s| &s.mapping).map(|m| m.restored.clone()).collect();
        ensure!(mapped.len() == 2, "mapping {mapped:?}");
        let (_, jobs, secrets) = made_by(&client, &ns, "r1").await?;
        ensure!(secrets.is_empty(), "includeMaster: false restored Secrets {secrets:?}");
        ensure!(jobs == ["r1-hook-rebuild-index"], "jobs {jobs:?}");

        // The hook ran on the restored data; the data is otherwise the backup's.
        reader_pod(&client, &ns, "reader", &["content-s2-p".to_string(), "meta-s2-p".to_string()]).await?;
        ensure!(pod_read(&client, &ns, "reader", "main", "/content-s2-p/index-rebuilt").await? == "rebuilt\n", "hook marker missing");
        let seen = pod_checksums(&client, &ns, "reader", "main", "/meta-s2-p").await?;
        ensure!(seen == archive.checksums["meta-s2"], "meta-s2 differs:\n{seen}");
        let reasons = archivist_e2e::testing::operator::event_reasons_through(&client, &ns, "RestoreRequest", "r1", "RestoreCompleted").await?;
        ensure!(reasons == ["RestoreStarted", "VolumesRestored", "HooksCompleted", "RestoreCompleted"], "events {reasons:?}");

        // A failing hook fails the request, with the hook named in the message.
        request(&client, &ns, "r2", r#"  source: {backupName: b1}
  target: {mode: Volumes, nameSuffix: -f}
  stores: [s1]
  includeMaster: false
  postRestore:
  - name: replay-journal
    image: ignored
    command: [sh, -c, 'echo journal corrupt >&2; exit 4']
"#).await?;
        let message = wait_restore_failed(&client, &ns, "r2", &mut archive.operator).await?;
        ensure!(message.contains("replay-journal"), "message does not name the hook: {message}");
        let reasons = archivist_e2e::testing::operator::event_reasons_through(&client, &ns, "RestoreRequest", "r2", "RestoreFailed").await?;
        ensure!(reasons.last().map(String::as_str) == Some("RestoreFailed"), "events {reasons:?}");
        eprintln!("failed hook message: {message}");
        Ok(())
    })
    .await;
}
