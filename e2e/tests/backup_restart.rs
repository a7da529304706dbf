//! The operator process is killed (SIGKILL) while the archive is frozen and while it is
//! stopped: a new operator process releases it within 10 s, and the run ends Failed
//! (OperatorRestarted), never stuck and never Completed.

mod backup_support;

use std::time::{Duration, Instant};

use archivist::api::BackupPhase;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use kube::Client;

const HOLD: (&str, &str) = ("sim.archivist.dev/snapshot-cut-delay", "20s");

/// Waits until the run is in CapturingContent with `quiescedAt` set, kills the operator,
/// starts another and returns it with the time it started.
async fn kill_while_quiesced(client: &Client, ns: &str, operator: &mut archivist_e2e::testing::operator::Operator) -> anyhow::Result<(archivist_e2e::testing::operator::Operator, Instant)> {
    wait_quiesced(client, ns, "b1").await?;
    operator.kill().await?;
    let started = Instant::now();
    let second = start_operator(client, ns).await?;
    Ok((second, started))
}

async fn assert_run_ends(client: &Client, ns: &str, operator: &mut archivist_e2e::testing::operator::Operator) -> anyhow::Result<()> {
    let backup = wait_finished(client, ns, "b1", operator).await?;
    let status = backup.status.clone().unwrap_or_default();
    // Resumed while quiesced: capturing on after an unobserved gap would promise a consistency
    // the run cannot prove, so the run must release and fail, never complete.
    let message = status.message.clone().unwrap_or_default();
    anyhow::ensure!(phase(&backup) == BackupPhase::Failed, "a run resumed while quiesced ended {:?}: {message}", phase(&backup));
    anyhow::ensure!(message.contains("restarted"), "Failed for another reason: {message}");
    let quiesce = status.quiesce.clone().unwrap_or_default();
    anyhow::ensure!(quiesce.released_at.is_some(), "Failed without recording the release: {quiesce:?}");
    eprintln!("run after restart: {:?}: {:?}; {}", phase(&backup), status.message, timeline(&backup));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn killed_while_stopped_a_new_operator_scales_back() {
    with_namespace("bk-kill-stop", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[HOLD]).await?;
        archive_statefulset(&client, &ns, "archive", 2, &[]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce: {mode: Stop, timeoutSeconds: 120}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let (mut second, started) = kill_while_quiesced(&client, &ns, &mut operator).await?;
        anyhow::ensure!(replicas(&client, &ns, "archive").await? == 0, "the archive was not stopped");
        until("replicas back to 2", Duration::from_secs(10), || {
            let client = client.clone();
            let ns = ns.clone();
            async move { Ok(replicas(&client, &ns, "archive").await? == 2) }
        })
        .await?;
        eprintln!("stopped archive released {:.2} s after the new operator started", started.elapsed().as_secs_f64());
        wait_ready_replicas(&client, &ns, "archive", 2).await?;
        assert_run_ends(&client, &ns, &mut second).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn killed_while_frozen_a_new_operator_thaws() {
    with_namespace("bk-kill-freeze", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let live = data_pvc(&client, &ns, "content", &[HOLD]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &["content"]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce:
    mode: Freeze
    freeze: {exec: {container: server, command: [sh, -c, "echo frozen > /content/FROZEN"]}}
    thaw: {exec: {container: server, command: [rm, -f, /content/FROZEN]}}
    timeoutSeconds: 120
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let (mut second, started) = kill_while_quiesced(&client, &ns, &mut operator).await?;
        anyhow::ensure!(live.join("FROZEN").exists(), "the archive was not frozen");
        until("the thaw hook to remove the marker", Duration::from_secs(10), || {
            let marker = live.join("FROZEN");
            async move { Ok(!marker.exists()) }
        })
        .await?;
        eprintln!("frozen archive released {:.2} s after the new operator started", started.elapsed().as_secs_f64());
        assert_run_ends(&client, &ns, &mut second).await
    })
    .await;
}
