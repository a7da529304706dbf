//! The MailStore standard seed (`examples/seeds/mailstore-standard/`), applied as it is into a
//! test namespace: the server's store folder is one volume; the backup stops the server and
//! leaves the index untrusted (`includeIndexes: false`); the restore reports
//! `IndexRebuildRequired`, its `rebuild-index` hook rebuilds the index from the restored
//! content, and `restore.csv` maps every path.

mod backup_support;
mod restore_support;

use anyhow::ensure;
use archivist::api::ConditionStatus;
use archivist_e2e::testing::operator::repo_dir;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use restore_support::{condition, pod_read, reader_pod, wait_restore_completed};

const SEED: &str = "examples/seeds/mailstore-standard";

async fn apply_seed(client: &Client, ns: &str, file: &str) -> anyhow::Result<()> {
    apply_manifest(client, ns, &repo_dir().join(SEED).join(file)).await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_mailstore_standard_seed_backs_up_a_store_folder_and_rebuilds_its_index_after_restore() {
    with_namespace("seed-mss", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        apply_seed(&client, &ns, "archive.yaml").await?;
        wait_ready_replicas(&client, &ns, "mailstore", 1).await?;
        apply_seed(&client, &ns, "policy.yaml").await?;
        start_backup(&client, &ns, "b1", "mailstore").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        ensure!(b1.status.as_ref().and_then(|s| s.indexes_included) == Some(false), "{}", timeline(&b1));
        wait_ready_replicas(&client, &ns, "mailstore", 1).await?;

        apply_seed(&client, &ns, "restore.yaml").await?;
        let r = wait_restore_completed(&client, &ns, "mailstore-restore", &mut operator).await?;
        ensure!(condition(&r, "IndexRebuildRequired").map(|c| c.0) == Some(ConditionStatus::True), "{:?}", condition(&r, "IndexRebuildRequired"));

        // The hook rebuilt the index of the restored store from its three messages.
        let store = "store-2024-mailstore-0-restored";
        reader_pod(&client, &ns, "reader", &[store.to_string()]).await?;
        let rebuilt = pod_read(&client, &ns, "reader", "main", &format!("/{store}/FullText/REBUILT")).await?;
        ensure!(rebuilt.trim() == "rebuilt: 3 entries", "REBUILT: {rebuilt:?}");
        let terms = pod_read(&client, &ns, "reader", "main", &format!("/{store}/FullText/terms.idx")).await?;
        ensure!(terms.lines().collect::<Vec<_>>() == ["archived message 1", "archived message 2", "archived message 3"], "terms.idx: {terms:?}");

        // restore.csv maps the master, the store folder and the key.
        let csv = Api::<ConfigMap>::namespaced(client.clone(), &ns).get("mailstore-restore-mapping").await?.data.unwrap_or_default().remove("restore.csv").unwrap_or_default();
        for line in ["master,,master-mailstore-0,master-mailstore-0-restored", "store,store-2024,store-2024-mailstore-0,store-2024-mailstore-0-restored", "secrets,,mailstore-key,mailstore-key-restored"] {
            ensure!(csv.lines().any(|l| l == line), "restore.csv lacks {line:?}:\n{csv}");
        }
        operator.check_running()?;
        Ok(())
    })
    .await;
}
