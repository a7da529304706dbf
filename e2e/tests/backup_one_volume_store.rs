//! A one-volume store (`stores[].volumeClaims`: a MailStore standard store keeps metadata,
//! content and index in one folder): captured with the content, after every metadata item,
//! and restored whole into a new PVC.

mod backup_support;
mod restore_support;

use anyhow::{ensure, Context as _};
use archivist::api::Component;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use restore_support::{host_checksums, pod_checksums, reader_pod, request, restored_name, wait_restore_completed};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_one_volume_store_is_cut_after_the_metadata_and_restored_whole() {
    with_namespace("bk-onevol", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        let master = data_pvc(&client, &ns, "master", &[]).await?;
        let store = data_pvc(&client, &ns, "store-standard", &[]).await?;
        std::fs::write(master.join("MailStoreMaster.db"), "master database\n")?;
        for (path, text) in [("Metadata/folders.db", "folders\n"), ("Content/0001.eml", "Subject: one\n\nbody\n"), ("Index/words.idx", "one body\n")] {
            let file = store.join(path);
            std::fs::create_dir_all(file.parent().context("parent")?)?;
            std::fs::write(file, text)?;
        }
        let backed_up = host_checksums(&store)?;
        archive_statefulset(&client, &ns, "archive", 1, &["master", "store-standard"]).await?;
        policy(&client, &ns, "archive", "  target: {kind: StatefulSet, name: archive}\n  quiesce: {mode: Stop, timeoutSeconds: 60}\n  master: {volumeClaims: [master]}\n  stores:\n  - name: standard\n    volumeClaims: [store-standard]\n").await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let items = b1.status.as_ref().map(|s| s.items.clone()).unwrap_or_default();
        let order: Vec<(Component, String)> = items.iter().filter(|i| i.component != Component::Secrets).map(|i| (i.component, i.store.clone())).collect();
        ensure!(order == vec![(Component::Master, String::new()), (Component::Store, "standard".to_string())], "items {order:?}");
        let cut = |component: Component| items.iter().find(|i| i.component == component).and_then(|i| i.captured_at);
        let (Some(master_cut), Some(store_cut)) = (cut(Component::Master), cut(Component::Store)) else { anyhow::bail!("cut times missing: {}", timeline(&b1)) };
        ensure!(master_cut <= store_cut, "the store was cut before the master: {}", timeline(&b1));

        request(&client, &ns, "r1", "  source: {backupName: b1}\n  target: {mode: Volumes, nameSuffix: -r}\n").await?;
        let r1 = wait_restore_completed(&client, &ns, "r1", &mut operator).await?;
        let restored = restored_name(&r1, "store-standard")?;
        ensure!(restored == "store-standard-r", "restored as {restored}");
        let mapping = r1.status.as_ref().map(|s| s.mapping.clone()).unwrap_or_default();
        ensure!(mapping.iter().any(|m| m.component == Component::Store && m.store == "standard"), "mapping {mapping:?}");
        reader_pod(&client, &ns, "reader", &[restored.clone()]).await?;
        let seen = pod_checksums(&client, &ns, "reader", "main", &format!("/{restored}")).await?;
        ensure!(seen == backed_up, "the restored store differs:\n{seen}\nvs\n{backed_up}");
        operator.check_running()?;
        Ok(())
    })
    .await;
}
