//! The Winconnection-like seed (`examples/seeds/winconnection-like/`), applied as it is into a
//! test namespace: a hot copy (quiesce None) of database, journal and partition; the backed-up
//! database is behind its journal, and only the restore's replay hook makes it whole; a deleted
//! message is recovered from a SideBySide copy.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist::api::ArchiveBackup;
use archivist_e2e::testing::operator::repo_dir;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use kube::Client;
use restore_support::{pod_read, reader_pod, wait_restore_completed, wait_running};

const SEED: &str = "examples/seeds/winconnection-like";

async fn apply_seed(client: &Client, ns: &str, file: &str) -> anyhow::Result<()> {
    apply_manifest(client, ns, &repo_dir().join(SEED).join(file)).await
}

/// Restores the backup's snapshot of `claim` into a scratch directory on this host.
async fn restored_claim(client: &Client, ns: &str, backup: &ArchiveBackup, claim: &str) -> anyhow::Result<std::path::PathBuf> {
    let item = backup.status.iter().flat_map(|s| &s.items).find(|i| i.source_claim.as_deref() == Some(claim)).with_context(|| format!("no item of {claim}"))?;
    let snapshot = item.volume_snapshot.clone().context("no snapshot")?;
    restore_to_dir(client, ns, &snapshot, &format!("check-{claim}")).await
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_winconnection_seed_replays_the_journal_after_a_hot_copy_and_recovers_a_deleted_message() {
    with_namespace("seed-wc", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        apply_seed(&client, &ns, "archive.yaml").await?;
        wait_ready_replicas(&client, &ns, "winconnection", 1).await?;
        apply_seed(&client, &ns, "policy.yaml").await?;
        let pod = "winconnection-0";
        until("the server to journal a few messages", Duration::from_secs(30), || async {
            let (out, _, ok) = exec(&client, &ns, pod, "server", &["sh", "-c", "wc -l < /journal/journal.log"]).await?;
            Ok(ok && out.trim().parse::<u32>().unwrap_or(0) >= 8)
        })
        .await?;

        start_backup(&client, &ns, "b1", "winconnection").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        // The hot copy: every journaled message has its body (journal cut before partition),
        // and the database copy is behind the journal.
        let journal: Vec<String> = lines(&restored_claim(&client, &ns, &b1, "journal-winconnection-0").await?.join("journal.log"))
            .iter()
            .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
            .collect();
        let db = lines(&restored_claim(&client, &ns, &b1, "db-winconnection-0").await?.join("messages.db"));
        let partition = restored_claim(&client, &ns, &b1, "partition-winconnection-0").await?;
        for message in &journal {
            ensure!(partition.join(format!("{message}.eml")).exists(), "{message} is journaled but has no body in b1: {}", timeline(&b1));
        }
        ensure!(db.len() < journal.len() && journal[..db.len()] == db[..], "b1's database ({} messages) should be a prefix of its journal ({}), behind it", db.len(), journal.len());

        // A user deletes message 2 after the backup.
        let (_, err, ok) = exec(&client, &ns, pod, "server", &["rm", "/partition/msg-2.eml"]).await?;
        ensure!(ok, "{err}");

        // The restore's hook replays the journal: the restored database holds every message.
        apply_seed(&client, &ns, "restore.yaml").await?;
        wait_restore_completed(&client, &ns, "winconnection-restore", &mut operator).await?;
        let restored_db = "db-winconnection-0-restored";
        reader_pod(&client, &ns, "reader", &[restored_db.to_string()]).await?;
        let replayed: Vec<String> = pod_read(&client, &ns, "reader", "main", &format!("/{restored_db}/messages.db")).await?.lines().map(String::from).collect();
        ensure!(replayed == journal, "after the replay the database holds {} messages, the journal {}", replayed.len(), journal.len());

        // Item-level recovery: message 2 is read from the side-by-side copy and put back.
        apply_seed(&client, &ns, "recover.yaml").await?;
        wait_restore_completed(&client, &ns, "winconnection-recover", &mut operator).await?;
        let copy = "winconnection-recovery-0";
        wait_running(&client, &ns, copy).await?;
        let message = pod_read(&client, &ns, copy, "server", "/partition/msg-2.eml").await?;
        ensure!(message == "Subject: message 2\n", "the copy holds {message:?}");
        let (_, err, ok) = exec(&client, &ns, pod, "server", &["sh", "-c", &format!("printf '%s' '{}' > /partition/msg-2.eml", message.replace('\'', ""))]).await?;
        ensure!(ok, "{err}");
        ensure!(pod_read(&client, &ns, pod, "server", "/partition/msg-2.eml").await? == message, "message 2 was not put back");
        operator.check_running()?;
        Ok(())
    })
    .await;
}
