//! Graceful shutdown: on SIGTERM the operator releases every archive it holds quiesced (here a
//! stopped one and a frozen one), fails those runs with `OperatorShutdown`, and exits well
//! within the chart's 30 s `terminationGracePeriodSeconds`.

mod backup_support;

use std::time::Duration;

use archivist::api::{ArchiveBackup, BackupPhase};
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use kube::Api;

const HOLD: (&str, &str) = ("sim.archivist.dev/snapshot-cut-delay", "60s");

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn sigterm_releases_every_quiesced_archive_before_exiting() {
    with_namespace("bk-sigterm", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        for claim in ["meta-a", "meta-b"] {
            data_pvc(&client, &ns, claim, &[]).await?;
        }
        data_pvc(&client, &ns, "content-a", &[HOLD]).await?;
        let live_b = data_pvc(&client, &ns, "content-b", &[HOLD]).await?;
        archive_statefulset(&client, &ns, "stopped", 2, &[]).await?;
        archive_statefulset(&client, &ns, "frozen", 1, &["content-b"]).await?;
        policy(&client, &ns, "stop", r#"
  target: {kind: StatefulSet, name: stopped}
  quiesce: {mode: Stop, timeoutSeconds: 300}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta-a]}
    content: {volumeClaims: [content-a]}
"#).await?;
        policy(&client, &ns, "freeze", r#"
  target: {kind: StatefulSet, name: frozen}
  quiesce:
    mode: Freeze
    freeze: {exec: {container: server, command: [sh, -c, "echo frozen > /content-b/FROZEN"]}}
    thaw: {exec: {container: server, command: [rm, -f, /content-b/FROZEN]}}
    timeoutSeconds: 300
  stores:
  - name: s1
    metadata: {volumeClaims: [meta-b]}
    content: {volumeClaims: [content-b]}
"#).await?;
        start_backup(&client, &ns, "a", "stop").await?;
        start_backup(&client, &ns, "b", "freeze").await?;
        wait_quiesced(&client, &ns, "a").await?;
        wait_quiesced(&client, &ns, "b").await?;
        anyhow::ensure!(replicas(&client, &ns, "stopped").await? == 0, "not stopped");
        anyhow::ensure!(live_b.join("FROZEN").exists(), "not frozen");

        let (took, status) = operator.terminate(Duration::from_secs(30)).await?;
        eprintln!("the operator exited {status} {:.2} s after SIGTERM", took.as_secs_f64());
        anyhow::ensure!(status.success(), "the operator exited with {status}");
        anyhow::ensure!(replicas(&client, &ns, "stopped").await? == 2, "exited with the archive still stopped");
        anyhow::ensure!(!live_b.join("FROZEN").exists(), "exited with the archive still frozen");
        let api = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        for name in ["a", "b"] {
            let run = api.get(name).await?;
            let status = run.status.clone().unwrap_or_default();
            let message = status.message.clone().unwrap_or_default();
            anyhow::ensure!(phase(&run) == BackupPhase::Failed, "{name} is {:?} after the shutdown: {message}", phase(&run));
            anyhow::ensure!(message.contains("shut down"), "{name}'s message does not say why: {message}");
            anyhow::ensure!(status.quiesce.and_then(|q| q.released_at).is_some(), "{name} has no releasedAt");
        }
        wait_ready_replicas(&client, &ns, "stopped", 2).await
    })
    .await;
}
