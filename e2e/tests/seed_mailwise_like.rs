//! The Mailwise-like seed (`examples/seeds/mailwise-like/`), applied as it is into a test
//! namespace: the freeze hook's `maint` file stops the server's writes, so the backup's
//! records and messages agree; the InPlace restore puts the backup back and keeps the old
//! volumes, which still hold what was written after the backup.

mod backup_support;
mod restore_support;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist::api::Component;
use archivist_e2e::testing::operator::repo_dir;
use archivist_e2e::testing::volumes::host_dir;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::{Api, Client};
use restore_support::wait_restore_completed;

const SEED: &str = "examples/seeds/mailwise-like";

async fn apply_seed(client: &Client, ns: &str, file: &str) -> anyhow::Result<()> {
    apply_manifest(client, ns, &repo_dir().join(SEED).join(file)).await
}

/// The records of `mailbox.db` in `dir`.
fn records(dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(dir.join("mailbox.db")).unwrap_or_default().lines().map(String::from).collect())
}

async fn server_records(client: &Client, ns: &str) -> anyhow::Result<Vec<String>> {
    let (out, err, ok) = exec(client, ns, "mailwise-0", "server", &["cat", "/meta/mailbox.db"]).await?;
    ensure!(ok, "{err}");
    Ok(out.lines().map(String::from).collect())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_mailwise_seed_backs_up_in_maintenance_mode_and_restores_in_place_keeping_the_old_volumes() {
    with_namespace("seed-mw", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        apply_seed(&client, &ns, "archive.yaml").await?;
        wait_ready_replicas(&client, &ns, "mailwise", 1).await?;
        apply_seed(&client, &ns, "policy.yaml").await?;
        until("the server to archive a few messages", Duration::from_secs(30), || async { Ok(server_records(&client, &ns).await.map(|r| r.len()).unwrap_or(0) >= 3) }).await?;

        // In maintenance mode the server is quiet: every record of the backup has its message.
        start_backup(&client, &ns, "b1", "mailwise").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let meta = restore_to_dir(&client, &ns, &snapshot_of(&b1, Component::Metadata)?, "b1-meta").await?;
        let mail = restore_to_dir(&client, &ns, &snapshot_of(&b1, Component::Content)?, "b1-mail").await?;
        let backed_up = records(&meta)?;
        ensure!(!backed_up.is_empty(), "no records in b1");
        for record in &backed_up {
            ensure!(mail.join(format!("{record}.eml")).exists(), "{record} has no message in b1");
        }
        let files: BTreeSet<String> = file_names(&mail)?.into_keys().collect();
        ensure!(files.len() == backed_up.len(), "b1 holds {} messages for {} records: the server wrote during the freeze", files.len(), backed_up.len());

        // More mail after the backup, then the in-place restore of b1.
        until("more messages after the backup", Duration::from_secs(30), || async { Ok(server_records(&client, &ns).await?.len() >= backed_up.len() + 3) }).await?;
        apply_seed(&client, &ns, "restore.yaml").await?;
        let r = wait_restore_completed(&client, &ns, "mailwise-restore", &mut operator).await?;
        let status = r.status.clone().unwrap_or_default();
        ensure!(status.resolved_backup.as_deref() == Some("b1"), "restored {:?}", status.resolved_backup);
        wait_ready_replicas(&client, &ns, "mailwise", 1).await?;

        // The server runs on b1's data again (and archives on from there).
        let now = server_records(&client, &ns).await?;
        ensure!(now.len() >= backed_up.len() && now[..backed_up.len()] == backed_up[..], "after the restore the server has {now:?}, b1 had {backed_up:?}");

        // The old volumes are kept, with what was written after the backup.
        let pvs = Api::<PersistentVolume>::all(client.clone());
        let retained = status.retained_volumes.iter().find(|v| v.claim == "meta-mailwise-0").context("the old meta volume is not listed as retained")?;
        let pv = pvs.get(&retained.volume).await?;
        ensure!(pv.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Retain"), "{} is not Retain", retained.volume);
        let old = records(&host_dir(&pv)?)?;
        ensure!(old.len() >= backed_up.len() + 3 && old[..backed_up.len()] == backed_up[..], "the old volume holds {} records, b1 {}", old.len(), backed_up.len());
        operator.check_running()?;
        Ok(())
    })
    .await;
}
