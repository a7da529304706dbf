//! Releasing the archive: a thaw that fails is retried with backoff until it succeeds (the run
//! keeps its finalizer and the workload's claim meanwhile, and says so); a run whose target
//! object is deleted mid-run (`--cascade=orphan`) thaws the recorded pods and fails with a
//! message; and the archive is released at the cut, long before the snapshots are ready.

mod backup_support;

use std::time::Duration;

use archivist::api::{ArchiveBackup, BackupPhase, ConditionStatus};
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::{wait_for, with_namespace};
use backup_support::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{DeleteParams, ListParams, PropagationPolicy};
use kube::{Api, ResourceExt};

const STORE: &str = r#"
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#;

/// How many times `ReleaseFailed` was reported about b1 (Events and their series).
async fn release_failures(client: &kube::Client, ns: &str) -> anyhow::Result<i32> {
    archivist_e2e::testing::operator::event_count(client, ns, "ArchiveBackup", "b1", "ReleaseFailed").await
}

fn released_condition(b: &ArchiveBackup) -> Option<ConditionStatus> {
    b.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Released").map(|c| c.status)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_failing_thaw_is_retried_until_it_succeeds() {
    with_namespace("bk-rel-retry", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let live = data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &["content"]).await?;
        // The thaw hook fails while /content/THAW_FAIL exists.
        std::fs::write(live.join("THAW_FAIL"), "")?;
        policy(&client, &ns, "archive", &format!(r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce:
    mode: Freeze
    freeze: {{exec: {{container: server, command: [sh, -c, "echo frozen > /content/FROZEN"]}}}}
    thaw: {{exec: {{container: server, command: [sh, -c, "test ! -e /content/THAW_FAIL || exit 7; rm -f /content/FROZEN; echo thawed >> /content/thaw.log"]}}}}
    timeoutSeconds: 300
{STORE}"#)).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        // Repeats of one Event are a series (kube's recorder aggregates them): count them.
        until("ReleaseFailed reported twice (a retry)", Duration::from_secs(60), || async {
            Ok(release_failures(&client, &ns).await? >= 2)
        })
        .await?;
        // Backoff: after the second failure the next tries come 2 s, then 4 s later; without
        // it, every status write would trigger another try at once.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let b1 = Api::<ArchiveBackup>::namespaced(client.clone(), &ns).get("b1").await?;
        anyhow::ensure!(phase(&b1) == BackupPhase::Releasing, "the run left Releasing before the thaw succeeded: {:?}", phase(&b1));
        anyhow::ensure!(released_condition(&b1) == Some(ConditionStatus::False), "no Released=False condition: {:?}", b1.status);
        anyhow::ensure!(b1.finalizers().iter().any(|f| f == "archivist.dev/release"), "the finalizer went before the release");
        let attempts = b1.status.as_ref().and_then(|s| s.quiesce.as_ref()).and_then(|q| q.release_attempts).unwrap_or(0);
        anyhow::ensure!((2..=5).contains(&attempts), "releaseAttempts {attempts} within about 8 s: the retries did not back off");
        let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns).get("archive").await?;
        anyhow::ensure!(
            sts.annotations().get("archivist.dev/quiesced-by") == Some(&format!("{ns}/b1")),
            "the claim went before the release: {:?}",
            sts.annotations()
        );
        anyhow::ensure!(live.join("FROZEN").exists(), "the marker is gone although every thaw failed");
        std::fs::remove_file(live.join("THAW_FAIL"))?;
        let failures = release_failures(&client, &ns).await?;
        anyhow::ensure!(failures <= attempts as i32 + 3, "{failures} ReleaseFailed reports for {attempts} recorded attempts");
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        anyhow::ensure!(released_condition(&b1) == Some(ConditionStatus::True), "no Released=True condition: {:?}", b1.status);
        anyhow::ensure!(!live.join("FROZEN").exists(), "still frozen after the run");
        let thaws = std::fs::read_to_string(live.join("thaw.log")).unwrap_or_default().lines().count();
        anyhow::ensure!(thaws == 1, "the thaw hook succeeded {thaws} time(s), expected once");
        let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns).get("archive").await?;
        anyhow::ensure!(!sts.annotations().contains_key("archivist.dev/quiesced-by"), "the claim is left after the release");
        until("the finalizer to go", Duration::from_secs(10), || async {
            let b1 = Api::<ArchiveBackup>::namespaced(client.clone(), &ns).get("b1").await?;
            Ok(!b1.finalizers().iter().any(|f| f == "archivist.dev/release"))
        })
        .await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_target_deleted_mid_run_is_thawed_by_the_recorded_pods_and_the_run_fails() {
    with_namespace("bk-rel-orphan", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let live = data_pvc(&client, &ns, "content", &[("sim.archivist.dev/snapshot-cut-delay", "30s")]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &["content"]).await?;
        policy(&client, &ns, "archive", &format!(r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce:
    mode: Freeze
    freeze: {{exec: {{container: server, command: [sh, -c, "echo frozen > /content/FROZEN"]}}}}
    thaw: {{exec: {{container: server, command: [sh, -c, "rm -f /content/FROZEN"]}}}}
    timeoutSeconds: 300
{STORE}"#)).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let api = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        wait_for(&api, "b1", Duration::from_secs(60), "b1 to capture content while frozen", |b| {
            b.is_some_and(|b| phase(b) == BackupPhase::CapturingContent)
        })
        .await?;
        anyhow::ensure!(live.join("FROZEN").exists(), "the archive was not frozen");
        let orphan = DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..Default::default() };
        Api::<StatefulSet>::namespaced(client.clone(), &ns).delete("archive", &orphan).await?;
        let b1 = wait_finished(&client, &ns, "b1", &mut operator).await?;
        let message = b1.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
        anyhow::ensure!(phase(&b1) == BackupPhase::Failed, "the run ended {:?}: {message}", phase(&b1));
        anyhow::ensure!(message.contains("disappeared"), "the message does not say the target disappeared: {message}");
        anyhow::ensure!(!live.join("FROZEN").exists(), "the orphaned pod is still frozen");
        let items = b1.status.as_ref().map(|s| s.items.len()).unwrap_or(0);
        anyhow::ensure!(items >= 2, "the recorded plan shrank to {items} item(s)");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_archive_is_released_at_the_cut_not_when_snapshots_are_ready() {
    with_namespace("bk-rel-cut", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        let slow = ("sim.archivist.dev/snapshot-ready-delay", "30s");
        data_pvc(&client, &ns, "meta", &[slow]).await?;
        data_pvc(&client, &ns, "content", &[slow]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        policy(&client, &ns, "archive", &format!("  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {{mode: Stop, timeoutSeconds: 120}}\n{STORE}")).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let api = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        wait_for(&api, "b1", Duration::from_secs(60), "b1 to release", |b| {
            b.is_some_and(|b| b.status.as_ref().and_then(|s| s.quiesce.as_ref()).is_some_and(|q| q.released_at.is_some()))
        })
        .await?;
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns).list(&ListParams::default().labels("archivist.dev/backup=b1")).await?;
        anyhow::ensure!(snapshots.items.len() == 2, "expected 2 snapshots, found {}", snapshots.items.len());
        for s in &snapshots.items {
            let status = s.status.clone().unwrap_or_default();
            anyhow::ensure!(status.creation_time.is_some(), "{} released before its cut", s.name_any());
            anyhow::ensure!(status.ready_to_use != Some(true), "{} was ready before the release: the release waited for readiness", s.name_any());
        }
        anyhow::ensure!(replicas(&client, &ns, "archive").await? == 1, "released, but not scaled back");
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let q = b1.status.and_then(|s| s.quiesce).unwrap_or_default();
        let (Some(start), Some(end)) = (q.quiesced_at, q.released_at) else { anyhow::bail!("no window: {q:?}") };
        anyhow::ensure!((end - start).num_seconds() < 25, "the window {q:?} covers the 30 s ready delay");
        Ok(())
    })
    .await;
}
