//! A run that cannot be what it says fails before it touches the archive: a hand-made
//! ArchiveBackup whose name is too long for the label it puts on its snapshots
//! (`InvalidSpec`), one naming a policy that does not exist (`PolicyNotFound`), a run of an
//! invalid policy (`InvalidPolicy`: verification without `keepVerified`) and a run whose target
//! does not exist (`TargetNotFound`). Each fails with `Ready=False`, that reason and a message
//! naming what is wrong; the archive keeps running, unclaimed, and nothing is snapshotted.

mod backup_support;

use archivist::api::{ArchiveBackup, BackupPhase};
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

const STORE: &str = r#"
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#;

/// The run fails with `Ready=False` reason `reason` and a message holding `says`.
async fn fails_with(client: &Client, ns: &str, name: &str, operator: &mut archivist_e2e::testing::operator::Operator, reason: &str, says: &str) -> anyhow::Result<()> {
    let run = wait_finished(client, ns, name, operator).await?;
    let status = run.status.clone().unwrap_or_default();
    anyhow::ensure!(phase(&run) == BackupPhase::Failed, "{name} ended {:?}: {:?}", phase(&run), status.message);
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    anyhow::ensure!(ready.is_some_and(|c| c.reason == reason), "{name}: Ready condition {ready:?}, not reason {reason}");
    let message = status.message.unwrap_or_default();
    anyhow::ensure!(message.contains(says), "{name}: the message does not say {says:?}: {message}");
    anyhow::ensure!(status.quiesce.and_then(|q| q.quiesced_at).is_none(), "{name} quiesced the archive");
    let reasons = run_event_reasons_through(client, ns, name, "BackupFailed").await?;
    anyhow::ensure!(reasons.iter().any(|r| r == "BackupFailed"), "{name}: no BackupFailed Event: {reasons:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn runs_that_cannot_be_done_fail_before_touching_the_archive() {
    with_namespace("bk-refusals", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        policy(&client, &ns, "archive", &format!("  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {{mode: Stop, timeoutSeconds: 60}}\n{STORE}")).await?;
        policy(&client, &ns, "unverifiable", &format!(
            "  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {{mode: Stop, timeoutSeconds: 60}}\n  retention: {{keepLast: 3}}\n  verification: {{afterBackup: true, image: busybox, command: [\"true\"]}}\n{STORE}"
        ))
        .await?;
        policy(&client, &ns, "elsewhere", &format!("  target: {{kind: StatefulSet, name: no-such-archive}}\n  quiesce: {{mode: Stop, timeoutSeconds: 60}}\n{STORE}")).await?;

        let long = format!("b-{}", "x".repeat(62));
        start_backup(&client, &ns, &long, "archive").await?;
        fails_with(&client, &ns, &long, &mut operator, "InvalidSpec", "metadata.name").await?;
        start_backup(&client, &ns, "b-no-policy", "no-such-policy").await?;
        fails_with(&client, &ns, "b-no-policy", &mut operator, "PolicyNotFound", "spec.policyName").await?;
        start_backup(&client, &ns, "b-invalid-policy", "unverifiable").await?;
        fails_with(&client, &ns, "b-invalid-policy", &mut operator, "InvalidPolicy", "keepVerified").await?;
        start_backup(&client, &ns, "b-no-target", "elsewhere").await?;
        fails_with(&client, &ns, "b-no-target", &mut operator, "TargetNotFound", "target").await?;

        // The archive was never touched: running, unclaimed, nothing snapshotted.
        let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns).get("archive").await?;
        anyhow::ensure!(sts.spec.and_then(|s| s.replicas) == Some(1), "the archive was scaled");
        anyhow::ensure!(!sts.metadata.annotations.unwrap_or_default().contains_key("archivist.dev/quiesced-by"), "the archive was claimed");
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns).list(&ListParams::default()).await?;
        let names: Vec<String> = snapshots.items.iter().map(|s| s.name_any()).collect();
        anyhow::ensure!(names.is_empty(), "refused runs made snapshots: {names:?}");
        // And a good run of the same policy goes ahead.
        start_backup(&client, &ns, "b-good", "archive").await?;
        let good: ArchiveBackup = wait_completed(&client, &ns, "b-good", &mut operator).await?;
        anyhow::ensure!(!snapshots_of(&good, archivist::api::Component::Content).is_empty(), "the good run has no content snapshot");
        wait_ready_replicas(&client, &ns, "archive", 1).await
    })
    .await;
}
