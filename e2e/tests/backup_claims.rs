//! One quiesce per workload: two runs of two policies on one workload never quiesce it at once
//! (the second waits in Pending, saying for whom, and records the real replicas, never 0), and
//! the sweeper releases a claim whose run is gone, even with no ArchiveBackup left: a stopped
//! orphan is scaled back, a frozen one thawed with the thaw hook of the policy that targets it.

mod backup_support;

use std::time::Duration;

use archivist::api::{ArchiveBackup, BackupPhase, ConditionStatus};
use archivist_e2e::testing::{wait_for, with_namespace};
use backup_support::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{Api, ResourceExt};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn two_policies_on_one_workload_take_turns() {
    with_namespace("bk-claims", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[("sim.archivist.dev/snapshot-cut-delay", "4s")]).await?;
        archive_statefulset(&client, &ns, "archive", 2, &[]).await?;
        for name in ["first", "second"] {
            policy(&client, &ns, name, r#"
  target: {kind: StatefulSet, name: archive}
  quiesce: {mode: Stop, timeoutSeconds: 120}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        }
        start_backup(&client, &ns, "a", "first").await?;
        wait_quiesced(&client, &ns, "a").await?;
        let api = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        start_backup(&client, &ns, "b", "second").await?;
        let waiting = wait_for(&api, "b", Duration::from_secs(30), "run b to wait for the workload", |b| {
            b.is_some_and(|b| {
                b.status.as_ref().is_some_and(|s| {
                    s.conditions.iter().any(|c| c.type_ == "WorkloadClaimed" && c.status == ConditionStatus::False)
                })
            })
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("b vanished"))?;
        anyhow::ensure!(phase(&waiting) == BackupPhase::Pending, "b does not wait in Pending: {:?}", phase(&waiting));
        let message = waiting.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
        anyhow::ensure!(message.contains(&format!("{ns}/a")), "b's message does not name the holder: {message}");
        let a = wait_completed(&client, &ns, "a", &mut operator).await?;
        let b = wait_completed(&client, &ns, "b", &mut operator).await?;
        let qa = a.status.and_then(|s| s.quiesce).unwrap_or_default();
        let qb = b.status.and_then(|s| s.quiesce).unwrap_or_default();
        anyhow::ensure!(qb.original_replicas == Some(2), "b recorded originalReplicas {:?}, not 2", qb.original_replicas);
        let (Some(a_released), Some(b_quiesced)) = (qa.released_at, qb.quiesced_at) else {
            anyhow::bail!("missing times: a {qa:?}, b {qb:?}");
        };
        anyhow::ensure!(a_released <= b_quiesced, "the two runs overlapped: a released {a_released}, b quiesced {b_quiesced}");
        // a dropping its claim wakes b (the workload watch), not b's 30 s safety net (which a
        // missing wake-up would meet within 5 s only by chance, one time in six; the mapping
        // itself is pinned by `caches::target_waiters`' unit tests).
        let waited = (b_quiesced - a_released).num_milliseconds();
        println!("b quiesced {waited} ms after a released the archive");
        anyhow::ensure!(waited < 5_000, "b quiesced {waited} ms after a released the archive: it was not woken by the release");
        anyhow::ensure!(replicas(&client, &ns, "archive").await? == 2, "the archive was not scaled back to 2");
        wait_ready_replicas(&client, &ns, "archive", 2).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_sweeper_releases_a_claim_whose_run_is_gone() {
    with_namespace("bk-sweep", |client, ns| async move {
        archive_statefulset(&client, &ns, "archive", 2, &[]).await?;
        // What a crashed run of an earlier operator left: stopped, claimed, no ArchiveBackup.
        merge_patch::<StatefulSet>(&client, &ns, "archive", serde_json::json!({
            "metadata": {"annotations": {"archivist.dev/quiesced-by": format!("{ns}/vanished"), "archivist.dev/original-replicas": "2"}},
            "spec": {"replicas": 0}
        }))
        .await?;
        let _operator = start_operator(&client, &ns).await?;
        let api = Api::<StatefulSet>::namespaced(client.clone(), &ns);
        let sts = wait_for(&api, "archive", Duration::from_secs(30), "the orphaned claim to be released", |s| {
            s.is_some_and(|s| !s.annotations().contains_key("archivist.dev/quiesced-by"))
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("the StatefulSet vanished"))?;
        anyhow::ensure!(sts.spec.and_then(|s| s.replicas) == Some(2), "not scaled back to the recorded 2 replicas");
        anyhow::ensure!(!sts.metadata.annotations.unwrap_or_default().contains_key("archivist.dev/original-replicas"));
        wait_orphan_released_event(&client, &ns).await?;
        wait_ready_replicas(&client, &ns, "archive", 2).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_sweeper_thaws_a_frozen_orphan_with_the_policys_thaw_hook() {
    with_namespace("bk-sweep-thaw", |client, ns| async move {
        data_pvc(&client, &ns, "meta", &[]).await?;
        let live = data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 2, &["content"]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce:
    mode: Freeze
    freeze: {exec: {container: server, command: [sh, -c, "echo frozen > /content/FROZEN"]}}
    thaw: {exec: {container: server, command: [sh, -c, "rm -f /content/FROZEN; echo thawed >> /content/thaw.log"]}}
    timeoutSeconds: 120
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        // What a crashed Freeze run of an earlier operator left: frozen, claimed, no
        // ArchiveBackup (so no recorded pods: the policy's thaw hook on the current pods).
        std::fs::write(live.join("FROZEN"), "frozen\n")?;
        merge_patch::<StatefulSet>(&client, &ns, "archive", serde_json::json!({
            "metadata": {"annotations": {"archivist.dev/quiesced-by": format!("{ns}/vanished")}}
        }))
        .await?;
        let _operator = start_operator(&client, &ns).await?;
        let api = Api::<StatefulSet>::namespaced(client.clone(), &ns);
        let sts = wait_for(&api, "archive", Duration::from_secs(60), "the frozen orphan to be thawed and unclaimed", |s| {
            s.is_some_and(|s| !s.annotations().contains_key("archivist.dev/quiesced-by"))
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("the StatefulSet vanished"))?;
        anyhow::ensure!(!live.join("FROZEN").exists(), "the claim went but the archive is still frozen");
        let thaws = std::fs::read_to_string(live.join("thaw.log")).unwrap_or_default().lines().count();
        anyhow::ensure!(thaws == 2, "the thaw hook ran {thaws} time(s), not once in each of the 2 pods");
        anyhow::ensure!(sts.spec.and_then(|s| s.replicas) == Some(2), "a Freeze orphan was scaled");
        wait_orphan_released_event(&client, &ns).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn two_runs_of_one_policy_go_one_after_the_other() {
    with_namespace("bk-one-policy", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[("sim.archivist.dev/snapshot-cut-delay", "4s")]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce: {mode: Stop, timeoutSeconds: 120}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "a", "archive").await?;
        wait_quiesced(&client, &ns, "a").await?;
        start_backup(&client, &ns, "b", "archive").await?;
        let api = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        let waiting = wait_for(&api, "b", Duration::from_secs(30), "run b to wait for run a", |b| {
            b.is_some_and(|b| b.status.as_ref().and_then(|s| s.message.as_deref()).is_some_and(|m| m.contains("another run of the policy is in progress")))
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("b vanished"))?;
        anyhow::ensure!(phase(&waiting) == BackupPhase::Pending, "b does not wait in Pending: {:?}", phase(&waiting));
        let message = waiting.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
        anyhow::ensure!(message.contains(": a"), "b's message does not name run a: {message}");
        let a = wait_completed(&client, &ns, "a", &mut operator).await?;
        let b = wait_completed(&client, &ns, "b", &mut operator).await?;
        let a_done = a.status.and_then(|s| s.quiesce).and_then(|q| q.released_at);
        let b_quiesced = b.status.and_then(|s| s.quiesce).and_then(|q| q.quiesced_at);
        anyhow::ensure!(a_done.is_some() && b_quiesced.is_some() && a_done <= b_quiesced, "the runs overlapped: a released {a_done:?}, b quiesced {b_quiesced:?}");
        wait_ready_replicas(&client, &ns, "archive", 1).await
    })
    .await;
}

/// Waits for the sweeper's `OrphanReleased` Event on the StatefulSet `archive` (it is
/// published after the release is written).
async fn wait_orphan_released_event(client: &kube::Client, ns: &str) -> anyhow::Result<()> {
    until("an OrphanReleased Event on the StatefulSet", Duration::from_secs(10), || async {
        let reasons = archivist_e2e::testing::operator::event_reasons(client, ns, "StatefulSet", "archive").await?;
        Ok(reasons.iter().any(|r| r == "OrphanReleased"))
    })
    .await
}
