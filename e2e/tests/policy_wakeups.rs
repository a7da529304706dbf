//! A policy is woken by the events of what it reads, not by a timer (issue 12, "wake on events,
//! never on timers"): its observation comes from the operator's shared caches, and each change
//! of those caches reaches the policies it concerns (`controllers::caches`).
//!
//! - Its target appearing: a policy whose target is missing says `TargetNotFound`, and turns
//!   Ready as soon as the StatefulSet is created (there is no poll: it used to be 60 s).
//! - A restore point deleted by hand: `status.restorePoints` follows at once.

mod backup_support;

use std::time::Duration;

use archivist::api::{BackupPolicy, ConditionStatus};
use archivist_e2e::testing::{wait_for, with_namespace};
use backup_support::*;
use kube::api::DeleteParams;
use kube::{Api, Client};

/// Far below the 60 s a missing target used to be polled at, and far above a watch event's
/// latency on the local cluster.
const AT_ONCE: Duration = Duration::from_secs(15);

const STORE: &str = "  stores:\n  - name: s1\n    metadata: {volumeClaims: [meta]}\n    content: {volumeClaims: [content]}\n";

/// Waits until the policy's `Ready` condition has `reason`.
async fn wait_ready_reason(client: &Client, ns: &str, name: &str, status: ConditionStatus, reason: &str, timeout: Duration) -> anyhow::Result<BackupPolicy> {
    let api = Api::<BackupPolicy>::namespaced(client.clone(), ns);
    wait_for(&api, name, timeout, &format!("policy {name} Ready={status:?} ({reason})"), |p| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == status && c.reason == reason)
    })
    .await?
    .ok_or_else(|| anyhow::anyhow!("policy {name} is gone"))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_policy_sees_its_target_appear_at_once() {
    with_namespace("pol-target", |client, ns| async move {
        let _operator = start_operator(&client, &ns).await?;
        policy(&client, &ns, "archive", &format!("  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {{mode: None}}\n{STORE}")).await?;
        let missing = wait_ready_reason(&client, &ns, "archive", ConditionStatus::False, "TargetNotFound", Duration::from_secs(30)).await?;
        let message = missing.status.and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready")).map(|c| c.message).unwrap_or_default();
        anyhow::ensure!(message.contains("archive"), "the message does not name the target: {message}");
        archive_statefulset(&client, &ns, "archive", 0, &[]).await?;
        wait_ready_reason(&client, &ns, "archive", ConditionStatus::True, "Ready", AT_ONCE).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_restore_point_deleted_by_hand_is_counted_at_once() {
    with_namespace("pol-count", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 0, &[]).await?;
        policy(&client, &ns, "archive", &format!("  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {{mode: None}}\n{STORE}")).await?;
        for run in ["b1", "b2"] {
            start_backup(&client, &ns, run, "archive").await?;
            wait_completed(&client, &ns, run, &mut operator).await?;
        }
        let api = Api::<BackupPolicy>::namespaced(client.clone(), &ns);
        let points = |p: Option<&BackupPolicy>| p.and_then(|p| p.status.as_ref()).and_then(|s| s.restore_points);
        wait_for(&api, "archive", Duration::from_secs(30), "2 restore points", |p| points(p) == Some(2)).await?;
        Api::<archivist::api::ArchiveBackup>::namespaced(client.clone(), &ns).delete("b1", &DeleteParams::background()).await?;
        wait_for(&api, "archive", AT_ONCE, "1 restore point after b1 was deleted", |p| points(p) == Some(1)).await?;
        Ok(())
    })
    .await;
}
