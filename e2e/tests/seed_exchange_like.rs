//! The Exchange-like seed (`examples/seeds/exchange-like/`), applied as it is into a test
//! namespace: frozen for seconds only, every restored page checked against the log's checksum
//! before a backup counts as verified, and the last verified backup kept when a newer one
//! fails verification.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::ensure;
use archivist::api::{ArchiveBackup, BackupPolicy, VerificationState};
use archivist_e2e::testing::operator::repo_dir;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use kube::{Api, Client};
use restore_support::{pod_read, reader_pod, restored_name, wait_restore_completed};

const SEED: &str = "examples/seeds/exchange-like";

async fn apply_seed(client: &Client, ns: &str, file: &str) -> anyhow::Result<()> {
    apply_manifest(client, ns, &repo_dir().join(SEED).join(file)).await
}

fn verification(backup: &ArchiveBackup) -> Option<VerificationState> {
    backup.status.as_ref().and_then(|s| s.verification.as_ref()).map(|v| v.state)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_exchange_seed_verifies_every_page_and_keeps_the_last_verified_backup() {
    with_namespace("seed-exch", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        apply_seed(&client, &ns, "archive.yaml").await?;
        wait_ready_replicas(&client, &ns, "exchange", 1).await?;
        apply_seed(&client, &ns, "policy.yaml").await?;
        let pod = "exchange-0";
        until("the server to write a few pages", Duration::from_secs(30), || async {
            let (out, _, ok) = exec(&client, &ns, pod, "server", &["sh", "-c", "wc -l < /logs/checksums.sha256"]).await?;
            Ok(ok && out.trim().parse::<u32>().unwrap_or(0) >= 3)
        })
        .await?;

        // A good backup: frozen for seconds, verified page by page.
        start_backup(&client, &ns, "b1", "exchange").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let window = b1.status.as_ref().and_then(|s| s.quiesce.as_ref()).and_then(|q| q.window_seconds).unwrap_or(f64::MAX);
        ensure!(window < 10.0, "frozen for {window} s: {}", timeline(&b1));
        let b1 = wait_verified(&client, &ns, "b1").await?;
        ensure!(verification(&b1) == Some(VerificationState::Passed), "b1: {:?}", b1.status.as_ref().and_then(|s| s.verification.clone()));

        // A page rots after its checksum was logged: the next backup is Completed (a restore
        // point) but fails verification.
        let (_, err, ok) = exec(&client, &ns, pod, "server", &["sh", "-c", "echo rotten > /mailbox/db/page-000001.edb"]).await?;
        ensure!(ok, "{err}");
        start_backup(&client, &ns, "b2", "exchange").await?;
        wait_completed(&client, &ns, "b2", &mut operator).await?;
        let b2 = wait_verified(&client, &ns, "b2").await?;
        ensure!(verification(&b2) == Some(VerificationState::Failed), "b2: {:?}", b2.status.as_ref().and_then(|s| s.verification.clone()));
        let message = b2.status.as_ref().and_then(|s| s.verification.as_ref()).and_then(|v| v.message.clone()).unwrap_or_default();
        ensure!(message.contains("page-000001.edb"), "the failure does not name the rotten page: {message}");

        // keepLast 1 keeps b2, keepVerified 1 keeps b1: the last verified backup survives.
        let policies = Api::<BackupPolicy>::namespaced(client.clone(), &ns);
        until("the policy to see b2", Duration::from_secs(30), || async {
            let status = policies.get("exchange").await?.status.unwrap_or_default();
            Ok(status.last_backup.as_deref() == Some("b2") && status.last_verified_backup.as_deref() == Some("b1"))
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        ensure!(backups.get_opt("b1").await?.is_some(), "the last verified backup b1 was pruned");
        ensure!(backups.get_opt("b2").await?.is_some(), "b2 was pruned");

        // The restore of the last verified backup has the page as it was.
        apply_seed(&client, &ns, "restore.yaml").await?;
        let r = wait_restore_completed(&client, &ns, "exchange-restore", &mut operator).await?;
        ensure!(r.status.as_ref().and_then(|s| s.resolved_backup.as_deref()) == Some("b1"), "restored {:?}", r.status.as_ref().and_then(|s| s.resolved_backup.clone()));
        let mailbox = restored_name(&r, "mailbox-exchange-0")?;
        reader_pod(&client, &ns, "reader", &[mailbox.clone()]).await?;
        let page = pod_read(&client, &ns, "reader", "main", &format!("/{mailbox}/db/page-000001.edb")).await?;
        ensure!(page.starts_with("mailbox page 1 "), "restored page: {page:?}");
        operator.check_running()?;
        Ok(())
    })
    .await;
}

/// Waits until the run's verification has ended (Passed or Failed).
async fn wait_verified(client: &Client, ns: &str, name: &str) -> anyhow::Result<ArchiveBackup> {
    let backups = Api::<ArchiveBackup>::namespaced(client.clone(), ns);
    until(&format!("{name}'s verification to end"), Duration::from_secs(120), || async {
        Ok(matches!(verification(&backups.get(name).await?), Some(VerificationState::Passed | VerificationState::Failed)))
    })
    .await?;
    Ok(backups.get(name).await?)
}
