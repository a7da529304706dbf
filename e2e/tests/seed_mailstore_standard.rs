//! The MailStore standard seed (`examples/seeds/mailstore-standard/`), applied as it is into a
//! test namespace: the server's store folder is one volume; the backup stops the server and
//! leaves the index untrusted (`includeIndexes: false`); the restore reports
//! `IndexRebuildRequired`, its `rebuild-index` hook rebuilds the index from the restored
//! content, and `restore.csv` maps every path.

mod backup_support;
mod restore_support;

use std::path::Path;

use anyhow::{ensure, Context as _};
use archivist::api::{BackupPolicy, ConditionStatus, RestoreRequest};
use archivist_e2e::testing::operator::repo_dir;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PostParams;
use kube::{Api, Client};
use restore_support::{condition, pod_read, reader_pod, wait_restore_completed};

const SEED: &str = "examples/seeds/mailstore-standard";

/// Creates every object of the manifest `file` in `ns` instead of its own namespace (the
/// Namespace object itself is skipped).
async fn apply_seed(client: &Client, ns: &str, file: &str) -> anyhow::Result<()> {
    let path = repo_dir().join(SEED).join(file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let documents = serde_yaml::Deserializer::from_str(&text)
        .map(|d| <serde_json::Value as serde::Deserialize>::deserialize(d))
        .collect::<Result<Vec<_>, _>>()?;
    for mut object in documents {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        if kind == "Namespace" {
            continue;
        }
        object["metadata"]["namespace"] = serde_json::Value::String(ns.to_string());
        let pp = PostParams::default();
        match kind.as_str() {
            "Secret" => drop(Api::<Secret>::namespaced(client.clone(), ns).create(&pp, &serde_json::from_value(object)?).await?),
            "StatefulSet" => drop(Api::<StatefulSet>::namespaced(client.clone(), ns).create(&pp, &serde_json::from_value(object)?).await?),
            "BackupPolicy" => drop(Api::<BackupPolicy>::namespaced(client.clone(), ns).create(&pp, &serde_json::from_value(object)?).await?),
            "RestoreRequest" => drop(Api::<RestoreRequest>::namespaced(client.clone(), ns).create(&pp, &serde_json::from_value(object)?).await?),
            other => anyhow::bail!("{}: a {other} the test does not create", Path::new(file).display()),
        }
    }
    Ok(())
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
